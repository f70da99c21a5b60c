//! A connection's output as the driver and the connection's task share it: bytes from the
//! core waiting to be written, and what happens after them.
//!
//! Output is written eagerly by whichever task produced it, right after the core's lock is
//! released, so an echo costs no extra task wake-up; only when the socket would block does
//! the connection's task wait for it to become writable. A burst is one vectored write from
//! a kept batch: nothing is allocated per write.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::{Buf, Bytes};
use sockjs_core::ConnectionId;

use crate::rt::AsyncSocket;
use crate::signal::Signal;

/// Buffers handed to one vectored write.
const WRITE_BATCH: usize = 32;

/// A connection as the driver and its task share it.
pub(crate) struct Conn {
    pub(crate) id: ConnectionId,
    pub(crate) socket: Box<dyn AsyncSocket>,
    output: Mutex<Output>,
    /// Wakes the task: the socket would block, the connection must end, or a close is ready.
    pub(crate) wake: Signal,
    /// Bytes written and not yet reported to the core.
    pub(crate) unreported: AtomicUsize,
    /// Bytes the core handed out and has not heard are written (kept under the core's lock).
    pub(crate) core_unflushed: AtomicUsize,
    /// In the driver's list of connections with unreported writes.
    pub(crate) listed: AtomicBool,
}

/// What waits to be written, and what happens after.
#[derive(Default)]
pub(crate) struct Output {
    pub(crate) queue: VecDeque<Bytes>,
    /// An empty buffer the flusher borrows for the bytes it writes.
    spare: Vec<Bytes>,
    /// A flusher is writing (bytes taken from the queue are in its hands).
    pub(crate) writing: bool,
    /// The last write would block: the task waits for writability.
    pub(crate) blocked: bool,
    /// A write failed: the peer is gone.
    pub(crate) failed: bool,
    /// Close once the queue is written.
    pub(crate) close: bool,
    /// End now, dropping what is queued.
    pub(crate) abort: bool,
}

impl Conn {
    pub(crate) fn new(id: ConnectionId, socket: Box<dyn AsyncSocket>) -> Conn {
        Conn {
            id,
            socket,
            output: Mutex::new(Output::default()),
            wake: Signal::new(),
            unreported: AtomicUsize::new(0),
            core_unflushed: AtomicUsize::new(0),
            listed: AtomicBool::new(false),
        }
    }

    pub(crate) fn output(&self) -> MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues bytes from the core (called in order, under the core's lock).
    pub(crate) fn push(&self, data: Bytes, close: bool) {
        let mut out = self.output();
        if !data.is_empty() && !out.abort {
            out.queue.push_back(data);
        }
        out.close |= close;
    }

    /// Has the connection's task write what is queued, soon.
    pub(crate) fn nudge(&self) {
        self.wake.notify();
    }

    /// The core aborted the connection (or the server stopped): drop what is queued and end.
    pub(crate) fn abort(&self) {
        let mut out = self.output();
        out.abort = true;
        out.queue.clear();
        drop(out);
        self.wake.notify();
    }

    /// Writes what is queued, as far as the socket takes it without blocking. Returns the bytes
    /// written. Only one flusher writes at a time; another finds it busy and leaves, and the
    /// busy one picks up what was queued meanwhile.
    pub(crate) fn flush(&self) -> usize {
        let mut total = 0;
        let mut batch: Vec<Bytes> = std::mem::take(&mut self.output().spare);
        loop {
            {
                let mut out = self.output();
                if out.writing || out.blocked || out.failed || out.abort {
                    break;
                }
                if out.queue.is_empty() {
                    if out.close {
                        // Everything is written: the task shuts the socket down.
                        self.wake.notify();
                    }
                    break;
                }
                out.writing = true;
                let n = out.queue.len().min(WRITE_BATCH);
                batch.extend(out.queue.drain(..n));
            }
            let result = write_batch(&*self.socket, &mut batch);
            let mut out = self.output();
            out.writing = false;
            for rest in batch.drain(..).rev() {
                out.queue.push_front(rest);
            }
            match result {
                Ok((n, would_block)) => {
                    total += n;
                    if would_block {
                        out.blocked = true;
                        drop(out);
                        self.wake.notify();
                        break;
                    }
                }
                Err(_) => {
                    out.failed = true;
                    out.queue.clear();
                    drop(out);
                    self.wake.notify();
                    break;
                }
            }
        }
        // The buffer is kept for the next flush: no allocation per write.
        let mut out = self.output();
        if out.spare.capacity() < batch.capacity() {
            out.spare = batch;
        }
        drop(out);
        if total > 0 {
            self.unreported.fetch_add(total, Ordering::SeqCst);
        }
        total
    }
}

/// Writes `batch` until done or the socket would block; written bytes are consumed from it.
fn write_batch(socket: &dyn AsyncSocket, batch: &mut Vec<Bytes>) -> io::Result<(usize, bool)> {
    let mut written = 0;
    let mut done = 0; // buffers fully written
    let result = loop {
        if done == batch.len() {
            break Ok((written, false));
        }
        let mut slices = [IoSlice::new(&[]); WRITE_BATCH];
        let count = (batch.len() - done).min(WRITE_BATCH);
        for (slice, bytes) in slices.iter_mut().zip(&batch[done..done + count]) {
            *slice = IoSlice::new(bytes);
        }
        match socket.try_write_vectored(&slices[..count]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(mut n) => {
                written += n;
                while n > 0 {
                    let first = &mut batch[done];
                    if n >= first.len() {
                        n -= first.len();
                        done += 1;
                    } else {
                        first.advance(n);
                        n = 0;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok((written, true)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    batch.drain(..done);
    result
}
