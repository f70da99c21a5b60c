//! A wake-up for one waiting task that is kept if it comes before the task waits. Allocates
//! nothing: it is polled on every wake-up of a connection's task.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

pub(crate) struct Signal {
    pending: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    pub(crate) fn new() -> Self {
        Signal {
            pending: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }

    /// Wakes the waiting task, or the next one to wait.
    pub(crate) fn notify(&self) {
        self.pending.store(true, Ordering::SeqCst);
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Ready (consuming the wake-up) once notified.
    pub(crate) fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.swap(false, Ordering::SeqCst) {
            return Poll::Ready(());
        }
        {
            let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        // A notification between the first check and storing the waker.
        if self.pending.swap(false, Ordering::SeqCst) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
