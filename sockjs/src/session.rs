//! The application's side of a session: receive messages as a stream, send (at once, or
//! waiting for room), close, and read the request that opened it.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use sockjs_core::{CloseReason, RequestInfo, SessionId, SessionStats};

use crate::driver::{Driver, Refused};
use crate::inbox::SessionShared;

/// Why a send or close was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The session is closed (or its send queue overflowed and closed it).
    Closed,
    /// The server has been dropped.
    ServerGone,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Closed => f.write_str("the session is closed"),
            SessionError::ServerGone => f.write_str("the server is gone"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<Refused> for SessionError {
    fn from(_: Refused) -> Self {
        SessionError::Closed
    }
}

/// A handle to a session that can send and close from anywhere; cheap to clone.
///
/// It is also a [`futures_sink::Sink`] of `String`: `poll_ready` waits as
/// [`SessionHandle::send_wait`] does, `start_send` sends, and flushing or closing the sink
/// has nothing to wait for (the message is with the server; closing the sink does not close
/// the session: [`SessionHandle::close`] does).
#[derive(Clone)]
pub struct SessionHandle {
    pub(crate) shared: Arc<SessionShared>,
    pub(crate) driver: Weak<Driver>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl PartialEq for SessionHandle {
    fn eq(&self, other: &Self) -> bool {
        self.shared.id == other.shared.id
    }
}

impl Eq for SessionHandle {}

impl std::hash::Hash for SessionHandle {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.shared.id.hash(state)
    }
}

impl SessionHandle {
    fn driver(&self) -> Result<Arc<Driver>, SessionError> {
        self.driver.upgrade().ok_or(SessionError::ServerGone)
    }

    /// The session's identity (not the client's session id, which stays private).
    pub fn id(&self) -> SessionId {
        self.shared.id
    }

    /// The request that opened the session: peer address, path, query, headers, transport.
    pub fn request(&self) -> &RequestInfo {
        &self.shared.info
    }

    /// What the endpoint's authorizer attached when it accepted the request that opened the
    /// session ([`crate::Decision::accept_with`]), if it is a `T`.
    pub fn authorization<T: std::any::Any>(&self) -> Option<&T> {
        self.shared.authorization.as_deref()?.downcast_ref()
    }

    /// The extensions of the request that opened the session, when it came through the
    /// [`SockJsService`](crate::service::SockJsService) (what the application's middleware
    /// put there: state, an authenticated user); empty with the built-in listener.
    #[cfg(feature = "tower")]
    pub fn extensions(&self) -> &http::Extensions {
        &self.shared.extensions
    }

    /// Queues a message for the client. Never waits: the server holds messages the client
    /// has not taken yet, up to [`Limits::max_queued_bytes`](crate::Limits) (and
    /// `max_queued_messages`), beyond which the session closes with
    /// [`CloseReason::QueueFull`]. A producer that may outrun its client uses
    /// [`SessionHandle::send_wait`] instead.
    pub fn send(&self, message: impl AsRef<str>) -> Result<(), SessionError> {
        self.send_inner(message.as_ref(), false)
    }

    /// Sends; with `defer_write`, the bytes are left for a write moments later (this task's
    /// next send, or the connection's task) instead of a system call of their own.
    fn send_inner(&self, message: &str, defer_write: bool) -> Result<(), SessionError> {
        Ok(self.driver()?.send(self.shared.id, message, defer_write)?)
    }

    /// Queues a message for the client, first waiting while the session's queue holds half
    /// its limits or more ([`Limits::max_queued_bytes`](crate::Limits) and
    /// `max_queued_messages`, halved): a producer faster than its client is slowed to the
    /// client's pace instead of overflowing the queue. The wait ends as the client takes
    /// messages; it fails if the session closes meanwhile. Waiting costs the server nothing
    /// while no one waits.
    pub async fn send_wait(&self, message: impl AsRef<str>) -> Result<(), SessionError> {
        let driver = self.driver()?;
        let message = message.as_ref();
        poll_fn(|cx| driver.poll_send(self.shared.id, Some(message), cx)).await?;
        Ok(())
    }

    /// Ready when [`SessionHandle::send_wait`] would send at once.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Result<(), SessionError>> {
        match self.driver() {
            Ok(driver) => driver
                .poll_send(self.shared.id, None, cx)
                .map_err(Into::into),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Closes the session: the client gets `code` and `reason` after what is queued.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), SessionError> {
        Ok(self.driver()?.close(self.shared.id, code, reason)?)
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason()
    }

    /// The session's figures (messages and bytes each way, queue depth), while the server
    /// still knows it.
    pub fn stats(&self) -> Option<SessionStats> {
        self.driver.upgrade()?.session_stats(self.shared.id)
    }

    /// Sends one message to many sessions, encoding it once. Returns how many took it
    /// (closed sessions are skipped).
    pub fn broadcast<'a>(
        sessions: impl IntoIterator<Item = &'a SessionHandle>,
        message: &str,
    ) -> usize {
        let mut ids = Vec::new();
        let mut driver = None;
        for s in sessions {
            if driver.is_none() {
                driver = s.driver.upgrade();
            }
            ids.push(s.shared.id);
        }
        let Some(driver) = driver else { return 0 };
        driver.broadcast(&ids, message)
    }

    /// Waits until the session closes and returns why.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let closed = self.shared.closed.listen();
            if let Some(r) = self.shared.close_reason() {
                return r;
            }
            if self.driver.strong_count() == 0 {
                return CloseReason::Shutdown;
            }
            closed.await;
        }
    }
}

impl futures_sink::Sink<String> for SessionHandle {
    type Error = SessionError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SessionError>> {
        self.poll_room(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: String) -> Result<(), SessionError> {
        self.send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), SessionError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), SessionError>> {
        Poll::Ready(Ok(()))
    }
}

/// A session as its handler receives it: a stream of messages from the client, plus
/// everything a [`SessionHandle`] does (a [`futures_sink::Sink`] of `String` too).
pub struct Session {
    handle: SessionHandle,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.handle.shared.receiver_gone();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.handle.id())
            .finish()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<SessionShared>, driver: Weak<Driver>) -> Self {
        Session {
            handle: SessionHandle { shared, driver },
        }
    }

    /// The next message from the client; `None` once the session is closed and every
    /// message that arrived before has been received.
    pub async fn recv(&mut self) -> Option<String> {
        poll_fn(|cx| self.handle.shared.poll_recv(cx)).await
    }

    /// A handle for sending from elsewhere (other tasks, broadcasts).
    pub fn handle(&self) -> SessionHandle {
        self.handle.clone()
    }

    /// See [`SessionHandle::id`].
    pub fn id(&self) -> SessionId {
        self.handle.id()
    }

    /// See [`SessionHandle::request`].
    pub fn request(&self) -> &RequestInfo {
        self.handle.request()
    }

    /// See [`SessionHandle::authorization`].
    pub fn authorization<T: std::any::Any>(&self) -> Option<&T> {
        self.handle.authorization()
    }

    /// See [`SessionHandle::extensions`].
    #[cfg(feature = "tower")]
    pub fn extensions(&self) -> &http::Extensions {
        self.handle.extensions()
    }

    /// See [`SessionHandle::send`].
    ///
    /// While more of the client's messages wait to be received, a reply is written together
    /// with the next one rather than on its own: answering a burst costs one system call.
    pub fn send(&self, message: impl AsRef<str>) -> Result<(), SessionError> {
        let more_coming = self.handle.shared.has_pending();
        self.handle.send_inner(message.as_ref(), more_coming)
    }

    /// See [`SessionHandle::send_wait`].
    pub async fn send_wait(&self, message: impl AsRef<str>) -> Result<(), SessionError> {
        self.handle.send_wait(message).await
    }

    /// See [`SessionHandle::close`].
    pub fn close(&self, code: u16, reason: &str) -> Result<(), SessionError> {
        self.handle.close(code, reason)
    }

    /// See [`SessionHandle::close_reason`].
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.handle.close_reason()
    }

    /// See [`SessionHandle::stats`].
    pub fn stats(&self) -> Option<SessionStats> {
        self.handle.stats()
    }

    /// See [`SessionHandle::closed`].
    pub async fn closed(&self) -> CloseReason {
        self.handle.closed().await
    }
}

impl futures_core::Stream for Session {
    type Item = String;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        self.handle.shared.poll_recv(cx)
    }
}

impl futures_sink::Sink<String> for Session {
    type Error = SessionError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SessionError>> {
        self.handle.poll_room(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: String) -> Result<(), SessionError> {
        self.handle.send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), SessionError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), SessionError>> {
        Poll::Ready(Ok(()))
    }
}
