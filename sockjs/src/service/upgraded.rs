//! A poll-based stream (hyper's `rt::Read` + `rt::Write`, such as an upgraded connection) as
//! a readiness-based [`AsyncSocket`], so that the connection task drives it like a native
//! socket.
//!
//! Readiness is emulated without buffers: a read or write polls the stream with a waker of
//! its own direction; when the stream says `Pending`, the direction is marked blocked and the
//! call answers `WouldBlock`. That waker clears the mark and wakes the task that last waited
//! in `poll_read_ready` / `poll_write_ready`, which are ready unless their direction is
//! blocked. Nothing is buffered while idle: the bytes a read takes go straight into the
//! caller's buffer.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use hyper::rt::{Read, ReadBuf, Write};

use crate::rt::AsyncSocket;

/// One direction's readiness.
struct Direction {
    /// The last poll of the stream in this direction was `Pending` and its waker has not
    /// fired since.
    blocked: AtomicBool,
    /// The task waiting for this direction.
    waiter: Mutex<Option<Waker>>,
}

impl Direction {
    fn new() -> Arc<Self> {
        Arc::new(Direction {
            blocked: AtomicBool::new(false),
            waiter: Mutex::new(None),
        })
    }

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.blocked.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        {
            let mut slot = self.waiter.lock().unwrap_or_else(|e| e.into_inner());
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        // The stream's waker fired between the check and storing the waiter.
        if !self.blocked.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Wake for Direction {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.blocked.store(false, Ordering::SeqCst);
        let waiter = self.waiter.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

/// A poll-based stream as an [`AsyncSocket`].
pub(crate) struct PollSocket<S> {
    io: Mutex<S>,
    read: Arc<Direction>,
    write: Arc<Direction>,
    read_waker: Waker,
    write_waker: Waker,
    /// Written bytes the stream may still hold (a flush was pending).
    unflushed: AtomicBool,
    /// The stream needs flushing after writes (a TLS layer); a plain upgraded socket does not.
    flushes: bool,
}

impl<S> PollSocket<S>
where
    S: Read + Write + Unpin + Send + 'static,
{
    /// Wraps `io`; with `flushes`, every write is followed by a flush, and output the stream
    /// still holds is pushed out before the next write (see [`AsyncSocket::holds_output`]).
    pub(crate) fn new(io: S, flushes: bool) -> Self {
        let read = Direction::new();
        let write = Direction::new();
        PollSocket {
            io: Mutex::new(io),
            read_waker: Waker::from(read.clone()),
            write_waker: Waker::from(write.clone()),
            read,
            write,
            unflushed: AtomicBool::new(false),
            flushes,
        }
    }

    fn io(&self) -> std::sync::MutexGuard<'_, S> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Polls `f` on the stream with `dir`'s waker; `Pending` marks `dir` blocked.
    fn poll_with<T>(
        dir: &Direction,
        waker: &Waker,
        f: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> io::Result<T> {
        // Marked first: a wake-up during the poll clears it, so none is lost.
        dir.blocked.store(true, Ordering::SeqCst);
        let mut cx = Context::from_waker(waker);
        match f(&mut cx) {
            Poll::Ready(r) => {
                dir.blocked.store(false, Ordering::SeqCst);
                r
            }
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Flushes what the stream holds; `WouldBlock` if it cannot now.
    fn flush(&self, io: &mut S) -> io::Result<()> {
        Self::poll_with(&self.write, &self.write_waker, |cx| {
            Pin::new(&mut *io).poll_flush(cx)
        })?;
        self.unflushed.store(false, Ordering::SeqCst);
        Ok(())
    }
}

impl<S> AsyncSocket for PollSocket<S>
where
    S: Read + Write + Unpin + Send + 'static,
{
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.read.poll_ready(cx).map(Ok)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.write.poll_ready(cx).is_pending() {
                return Poll::Pending;
            }
            if !self.unflushed.load(Ordering::SeqCst) {
                return Poll::Ready(Ok(()));
            }
            match self.flush(&mut self.io()) {
                Ok(()) => return Poll::Ready(Ok(())),
                // Blocked again: wait (the loop stores the waiter).
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut io = self.io();
        Self::poll_with(&self.read, &self.read_waker, |cx| {
            let mut rb = ReadBuf::new(buf);
            match Pin::new(&mut *io).poll_read(cx, rb.unfilled()) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut io = self.io();
        if self.unflushed.load(Ordering::SeqCst) {
            self.flush(&mut io)?;
        }
        let n = Self::poll_with(&self.write, &self.write_waker, |cx| {
            Pin::new(&mut *io).poll_write_vectored(cx, bufs)
        })?;
        if self.flushes && n > 0 {
            self.unflushed.store(true, Ordering::SeqCst);
            match self.flush(&mut io) {
                Ok(()) => {}
                // Pushed out once writable (`holds_output`).
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {} // the next write fails
            }
        }
        Ok(n)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        let mut io = self.io();
        match Self::poll_with(&self.write, &self.write_waker, |cx| {
            Pin::new(&mut *io).poll_shutdown(cx)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            r => r,
        }
    }

    fn holds_output(&self) -> bool {
        self.unflushed.load(Ordering::SeqCst)
    }
}
