//! The callback form of a session handler.

use std::sync::Arc;

use sockjs_core::CloseReason;

use crate::session::{Session, SessionHandle};

/// The callback form of a session handler, as event-emitter servers offer it: implement
/// what you need; each session's callbacks run in order on the session's own task.
pub trait Callbacks: Send + Sync + 'static {
    /// A session opened.
    fn on_open(&self, session: &SessionHandle) {
        let _ = session;
    }
    /// A message arrived.
    fn on_message(&self, session: &SessionHandle, message: String) {
        let _ = (session, message);
    }
    /// The session closed.
    fn on_close(&self, session: &SessionHandle, reason: &CloseReason) {
        let _ = (session, reason);
    }
}

/// Runs `callbacks` for one session until it closes.
pub(crate) async fn run_callbacks<C: Callbacks>(callbacks: Arc<C>, mut session: Session) {
    let handle = session.handle();
    callbacks.on_open(&handle);
    while let Some(msg) = session.recv().await {
        callbacks.on_message(&handle, msg);
    }
    let reason = handle.closed().await;
    callbacks.on_close(&handle, &reason);
}
