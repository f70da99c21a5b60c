//! The application's side of a session: receive messages as a stream, send, close, and read
//! the request that opened it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use event_listener::Event as Notify;
use futures_lite::Stream;
use sockjs_core::{CloseReason, RequestInfo, SessionId};

use crate::driver::Driver;

/// What an endpoint runs for each new session.
pub(crate) type Handler =
    Arc<dyn Fn(Session) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// State shared by a session's handles and the driver.
pub(crate) struct SessionShared {
    id: SessionId,
    info: RequestInfo,
    driver: Weak<Driver>,
    /// Messages delivered and not yet received by the application.
    inbox: Mutex<Inbox>,
    /// Bytes delivered and not yet received by the application.
    inbound: AtomicUsize,
    drained: Notify,
    reason: Mutex<Option<CloseReason>>,
    closed: Notify,
}

impl SessionShared {
    pub(crate) fn new(id: SessionId, info: RequestInfo, driver: Weak<Driver>) -> Self {
        SessionShared {
            id,
            info,
            driver,
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                accepting: true,
                waker: None,
            }),
            inbound: AtomicUsize::new(0),
            drained: Notify::new(),
            reason: Mutex::new(None),
            closed: Notify::new(),
        }
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a message to the application; returns the bytes now waiting.
    pub(crate) fn deliver(&self, text: String) -> usize {
        let len = text.len();
        let mut inbox = self.inbox();
        if !inbox.accepting {
            return 0;
        }
        inbox.queue.push_back(text);
        let waker = inbox.waker.take();
        // Counted before the application can see it, so it is never taken before counted.
        let waiting = self.inbound.fetch_add(len, Ordering::SeqCst) + len;
        drop(inbox);
        if let Some(w) = waker {
            w.wake();
        }
        waiting
    }

    /// The session is closed: no more messages after those already delivered.
    pub(crate) fn closed(&self, reason: CloseReason) {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
        let waker = {
            let mut inbox = self.inbox();
            inbox.accepting = false;
            inbox.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        self.closed.notify(usize::MAX);
        self.drained.notify(usize::MAX);
    }

    /// The next message, `None` once closed and empty, or pending (waking `cx` later).
    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let mut inbox = self.inbox();
        if let Some(msg) = inbox.queue.pop_front() {
            drop(inbox);
            self.received(msg.len());
            return Poll::Ready(Some(msg));
        }
        if !inbox.accepting {
            return Poll::Ready(None);
        }
        inbox.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The application dropped its [`Session`]: nothing more is kept for it.
    fn receiver_gone(&self) {
        let dropped: usize = {
            let mut inbox = self.inbox();
            inbox.accepting = false;
            inbox.waker = None;
            inbox.queue.drain(..).map(|m| m.len()).sum()
        };
        if dropped > 0 {
            self.received(dropped);
        }
    }

    /// Waits until the application has taken messages down to `limit` bytes, or the session
    /// closed.
    pub(crate) async fn wait_drained(&self, limit: usize) {
        loop {
            let drained = self.drained.listen();
            if self.inbound.load(Ordering::SeqCst) <= limit || self.close_reason().is_some() {
                return;
            }
            drained.await;
        }
    }

    fn received(&self, len: usize) {
        self.inbound.fetch_sub(len, Ordering::SeqCst);
        self.drained.notify(usize::MAX);
    }

    fn close_reason(&self) -> Option<CloseReason> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

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

/// A handle to a session that can send and close from anywhere; cheap to clone.
#[derive(Clone)]
pub struct SessionHandle {
    shared: Arc<SessionShared>,
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
    /// The session's identity (not the client's session id, which stays private).
    pub fn id(&self) -> SessionId {
        self.shared.id
    }

    /// The request that opened the session: peer address, path, query, headers, transport.
    pub fn request(&self) -> &RequestInfo {
        &self.shared.info
    }

    /// Queues a message for the client. Never waits: the core holds messages the client
    /// has not taken yet, up to its `max_queued_bytes`, beyond which the session closes.
    pub fn send(&self, message: impl AsRef<str>) -> Result<(), SessionError> {
        self.send_inner(message.as_ref(), false)
    }

    /// Sends; with `defer_write`, the bytes are left for a write moments later (this task's
    /// next send, or the connection's task) instead of a system call of their own.
    fn send_inner(&self, message: &str, defer_write: bool) -> Result<(), SessionError> {
        let driver = self
            .shared
            .driver
            .upgrade()
            .ok_or(SessionError::ServerGone)?;
        let id = self.shared.id;
        let send = |s: &mut sockjs_core::Server, now| s.send(now, id, message);
        let (r, _) = if defer_write {
            driver.with_core_deferring_writes(send)
        } else {
            driver.with_core(send)
        };
        r.map_err(|_| SessionError::Closed)
    }

    /// Closes the session: the client gets `code` and `reason` after what is queued.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), SessionError> {
        let driver = self
            .shared
            .driver
            .upgrade()
            .ok_or(SessionError::ServerGone)?;
        let id = self.shared.id;
        let (r, _) = driver.with_core(|s, now| s.close(now, id, code, reason));
        r.map_err(|_| SessionError::Closed)
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason()
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
                driver = s.shared.driver.upgrade();
            }
            ids.push(s.shared.id);
        }
        let Some(driver) = driver else { return 0 };
        driver.with_core(|s, now| s.send_many(now, &ids, message)).0
    }

    /// Waits until the session closes and returns why.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let closed = self.shared.closed.listen();
            if let Some(r) = self.shared.close_reason() {
                return r;
            }
            if self.shared.driver.strong_count() == 0 {
                return crate::driver::dropped_reason();
            }
            closed.await;
        }
    }
}

/// Messages waiting for the application.
struct Inbox {
    queue: VecDeque<String>,
    /// False once the session closed or the application dropped its [`Session`].
    accepting: bool,
    waker: Option<Waker>,
}

/// A session as its handler receives it: a stream of messages from the client, plus
/// everything a [`SessionHandle`] does.
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
    pub(crate) fn new(shared: Arc<SessionShared>) -> Self {
        Session {
            handle: SessionHandle { shared },
        }
    }

    /// The next message from the client; `None` once the session is closed and every
    /// message that arrived before has been received.
    pub async fn recv(&mut self) -> Option<String> {
        std::future::poll_fn(|cx| self.handle.shared.poll_recv(cx)).await
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

    /// See [`SessionHandle::send`].
    ///
    /// While more of the client's messages wait to be received, a reply is written together
    /// with the next one rather than on its own: answering a burst costs one system call.
    pub fn send(&self, message: impl AsRef<str>) -> Result<(), SessionError> {
        let more_coming = !self.handle.shared.inbox().queue.is_empty();
        self.handle.send_inner(message.as_ref(), more_coming)
    }

    /// See [`SessionHandle::close`].
    pub fn close(&self, code: u16, reason: &str) -> Result<(), SessionError> {
        self.handle.close(code, reason)
    }

    /// See [`SessionHandle::close_reason`].
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.handle.close_reason()
    }

    /// See [`SessionHandle::closed`].
    pub async fn closed(&self) -> CloseReason {
        self.handle.closed().await
    }
}

impl Stream for Session {
    type Item = String;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        self.handle.shared.poll_recv(cx)
    }
}

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
