//! A session's state shared by its handles, its connection and the driver: the messages the
//! client sent and the application has not taken, their wakers, and the close reason.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use event_listener::Event as Notify;

use crate::authorize::AuthData;
use sockjs_core::{CloseReason, RequestInfo, SessionId};

/// State shared by a session's handles and the driver.
pub(crate) struct SessionShared {
    pub(crate) id: SessionId,
    pub(crate) info: RequestInfo,
    /// What the endpoint's authorizer attached when it accepted the opening request.
    pub(crate) authorization: Option<AuthData>,
    /// The session's span: its handler runs in it, and its open and close are logged in it.
    pub(crate) span: tracing::Span,
    /// Messages delivered and not yet received by the application.
    inbox: Mutex<Inbox>,
    /// Bytes delivered and not yet received by the application.
    inbound: AtomicUsize,
    /// The same over every session of the server, which the core counts toward its memory
    /// budget.
    total_inbound: Arc<AtomicUsize>,
    drained: Notify,
    /// Connections waiting in [`SessionShared::wait_drained`]: taking a message notifies no
    /// one while this is zero.
    drain_waiters: AtomicUsize,
    reason: Mutex<Option<CloseReason>>,
    pub(crate) closed: Notify,
    /// Run once when the session closes (topics it leaves); `None` once it has.
    close_hooks: Mutex<Option<Vec<CloseHook>>>,
    /// The extensions of the request that opened the session, when a host's HTTP stack
    /// served it (empty otherwise).
    #[cfg(feature = "tower")]
    pub(crate) extensions: http::Extensions,
}

/// What runs when a session closes: it is called once, with the session's id.
pub(crate) type CloseHook = Box<dyn FnOnce(SessionId) + Send>;

/// Messages waiting for the application.
struct Inbox {
    queue: VecDeque<String>,
    /// False once the session closed or the application dropped its `Session`.
    accepting: bool,
    waker: Option<Waker>,
}

impl SessionShared {
    pub(crate) fn new(
        id: SessionId,
        info: RequestInfo,
        span: tracing::Span,
        total_inbound: Arc<AtomicUsize>,
    ) -> Self {
        SessionShared {
            id,
            info,
            authorization: None,
            span,
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                accepting: true,
                waker: None,
            }),
            inbound: AtomicUsize::new(0),
            total_inbound,
            drained: Notify::new(),
            drain_waiters: AtomicUsize::new(0),
            reason: Mutex::new(None),
            closed: Notify::new(),
            close_hooks: Mutex::new(Some(Vec::new())),
            #[cfg(feature = "tower")]
            extensions: http::Extensions::new(),
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
        self.total_inbound.fetch_add(len, Ordering::SeqCst);
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
        let hooks = self
            .close_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        for hook in hooks.into_iter().flatten() {
            hook(self.id);
        }
    }

    /// Runs `hook` when the session closes; gives it back if it has closed already. Hooks run
    /// under the core's lock: they must not call into the server.
    pub(crate) fn on_close(&self, hook: CloseHook) -> Result<(), CloseHook> {
        match self
            .close_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            Some(hooks) => {
                hooks.push(hook);
                Ok(())
            }
            None => Err(hook),
        }
    }

    /// More messages wait to be received.
    pub(crate) fn has_pending(&self) -> bool {
        !self.inbox().queue.is_empty()
    }

    /// The next message, `None` once closed and empty, or pending (waking `cx` later).
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<String>> {
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

    /// The application dropped its `Session`: nothing more is kept for it.
    pub(crate) fn receiver_gone(&self) {
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
        self.drain_waiters.fetch_add(1, Ordering::SeqCst);
        let _done = DecrementOnDrop(&self.drain_waiters);
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
        self.total_inbound.fetch_sub(len, Ordering::SeqCst);
        if self.drain_waiters.load(Ordering::SeqCst) > 0 {
            self.drained.notify(usize::MAX);
        }
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Decrements a counter when dropped, however the future holding it ends.
struct DecrementOnDrop<'a>(&'a AtomicUsize);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
