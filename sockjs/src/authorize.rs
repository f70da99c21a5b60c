//! Authorization before a session opens: the application's async hook sees the opening
//! request and accepts it (optionally with data the session handler can read) or refuses
//! it with a status and a short body.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sockjs_core::{Authorization, RequestInfo};

/// Data an authorizer attached to the sessions it accepted
/// ([`crate::SessionHandle::authorization`]).
pub(crate) type AuthData = Arc<dyn Any + Send + Sync>;

/// An endpoint's authorization hook, boxed.
pub(crate) type Authorizer =
    Arc<dyn Fn(RequestInfo) -> Pin<Box<dyn Future<Output = Decision> + Send>> + Send + Sync>;

/// What an authorization hook ([`crate::Builder::authorize`]) decides about a request that
/// would open a session.
#[derive(Clone)]
pub enum Decision {
    /// Open the session, with data its handler can read, if any.
    Accept(Option<AuthData>),
    /// Answer the request with `status` (4xx or 5xx; anything else is sent as 403) and
    /// `body` as `text/plain` (at most 1 KiB): no session opens.
    Refuse {
        /// The status, such as 401, 403 or 429.
        status: u16,
        /// A short explanation for the client.
        body: String,
    },
}

impl Decision {
    /// Opens the session.
    pub fn accept() -> Self {
        Decision::Accept(None)
    }

    /// Opens the session with `data`, which its handler reads with
    /// [`crate::Session::authorization`].
    pub fn accept_with<T: Any + Send + Sync>(data: T) -> Self {
        Decision::Accept(Some(Arc::new(data)))
    }

    /// Refuses the request with `status` and `body`.
    pub fn refuse(status: u16, body: impl Into<String>) -> Self {
        Decision::Refuse {
            status,
            body: body.into(),
        }
    }

    /// The core's form, and the data to attach.
    pub(crate) fn split(self) -> (Authorization, Option<AuthData>) {
        match self {
            Decision::Accept(data) => (Authorization::Accept, data),
            Decision::Refuse { status, body } => (Authorization::Refuse { status, body }, None),
        }
    }
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Accept(data) => f
                .debug_tuple("Accept")
                .field(&data.as_ref().map(|_| "..."))
                .finish(),
            Decision::Refuse { status, body } => f
                .debug_struct("Refuse")
                .field("status", status)
                .field("body", body)
                .finish(),
        }
    }
}
