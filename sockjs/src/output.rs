//! A connection as the driver and its task share it: the socket, who is writing it, and what
//! the core has asked of it.
//!
//! The bytes waiting for a connection stay in the core. A writer takes a batch of them (cheap
//! clones of the core's chunks) under the core's lock and writes it once the lock is
//! released; the bytes written are reported to the core with the next call into it, or at
//! once when the core waits on them (to close the connection, or to move held-back messages
//! onto it). Output is written eagerly by whichever task produced it, so an echo costs no
//! extra task wake-up; only when the socket would block does the connection's task wait for
//! it to become writable. One writer at a time: one that finds the connection busy leaves
//! the news in `dirty`, and the busy one goes on with what came meanwhile.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::{Buf, Bytes};
use sockjs_core::ConnectionId;

use crate::rt::AsyncSocket;
use crate::signal::Signal;

/// Chunks handed to one vectored write.
pub(crate) const WRITE_BATCH: usize = 32;

/// A connection as the driver and its task share it.
pub(crate) struct Conn {
    pub(crate) id: ConnectionId,
    /// The socket; `None` for an exchange (a request from a host's HTTP stack), whose
    /// output its response body takes.
    pub(crate) socket: Option<Box<dyn AsyncSocket>>,
    /// Wakes the task: the socket would block or failed, the core asked for a shutdown or a
    /// close, or output was left for it.
    pub(crate) wake: Signal,
    /// Bytes written and not yet reported to the core.
    pub(crate) unreported: AtomicUsize,
    /// In the driver's list of connections with unreported writes.
    pub(crate) listed: AtomicBool,
    /// A writer holds the connection (it took a batch and has not finished writing it).
    writing: AtomicBool,
    /// The core announced output since the writer took its batch.
    pub(crate) dirty: AtomicBool,
    state: Mutex<ConnState>,
    /// An exchange's request extensions, until a session it opens takes them.
    #[cfg(feature = "tower")]
    extensions: Mutex<Option<http::Extensions>>,
}

/// What the task acts on.
#[derive(Default)]
pub(crate) struct ConnState {
    /// The last write would block: the task waits for writability.
    pub(crate) blocked: bool,
    /// A write failed: the peer is gone.
    pub(crate) failed: bool,
    /// The core asked for the write side to be shut down.
    pub(crate) shutdown: bool,
    /// The core has forgotten the connection: the task drops it.
    pub(crate) closed: bool,
    /// ... and said to reset it (an exchange's response body is cut short).
    pub(crate) aborted: bool,
    /// A buffer the writer borrows, so that a write allocates nothing.
    spare: Vec<Bytes>,
}

/// Output taken from the core, to write once its lock is released.
pub(crate) struct Batch {
    chunks: Vec<Bytes>,
    /// The core waits to hear of these writes (see `Server::awaits_written`).
    pub(crate) urgent: bool,
    /// The core had more than one batch waiting.
    more: bool,
}

/// How writing a batch went.
pub(crate) struct Written {
    pub(crate) bytes: usize,
    pub(crate) urgent: bool,
    /// The writer should take again: output was left or announced meanwhile.
    pub(crate) again: bool,
}

impl Conn {
    pub(crate) fn new(id: ConnectionId, socket: Option<Box<dyn AsyncSocket>>) -> Conn {
        Conn {
            id,
            socket,
            wake: Signal::new(),
            unreported: AtomicUsize::new(0),
            listed: AtomicBool::new(false),
            writing: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            state: Mutex::new(ConnState::default()),
            #[cfg(feature = "tower")]
            extensions: Mutex::new(None),
        }
    }

    /// An exchange's connection, carrying its request's extensions.
    #[cfg(feature = "tower")]
    pub(crate) fn exchange(id: ConnectionId, extensions: http::Extensions) -> Conn {
        let conn = Conn::new(id, None);
        *conn.extensions.lock().unwrap_or_else(|e| e.into_inner()) = Some(extensions);
        conn
    }

    /// The request extensions, for the session the connection opens.
    #[cfg(feature = "tower")]
    pub(crate) fn take_extensions(&self) -> Option<http::Extensions> {
        self.extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Has the connection's task write what waits, soon.
    pub(crate) fn nudge(&self) {
        self.wake.notify();
    }

    /// The server stopped: the task drops the connection.
    pub(crate) fn abort(&self) {
        self.state().closed = true;
        self.wake.notify();
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Under the core's lock: becomes the connection's writer, unless another writer holds it
    /// (which goes on with what is new, told by `dirty`) or the socket is blocked or gone.
    pub(crate) fn claim(&self) -> bool {
        if self.socket.is_none() || self.writing.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.dirty.store(false, Ordering::SeqCst);
        let state = self.state();
        if state.blocked || state.failed || state.closed {
            drop(state);
            self.writing.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// After [`Conn::claim`], under the same hold of the core's lock: takes a batch of
    /// `output` (the core's chunks for this connection), or gives the claim up if there is
    /// none.
    pub(crate) fn take(&self, output: &[Bytes], urgent: bool) -> Option<Batch> {
        if output.is_empty() {
            self.writing.store(false, Ordering::SeqCst);
            return None;
        }
        let mut chunks = std::mem::take(&mut self.state().spare);
        let n = output.len().min(WRITE_BATCH);
        chunks.extend(output[..n].iter().cloned());
        Some(Batch {
            chunks,
            urgent,
            more: output.len() > n,
        })
    }

    /// Writes a batch taken with [`Conn::take`] as far as the socket takes it without
    /// blocking, and gives the connection up for the next writer.
    pub(crate) fn write(&self, mut batch: Batch) -> Written {
        let result = match &self.socket {
            Some(socket) => write_batch(&**socket, &mut batch.chunks),
            // Never claimed (see `claim`).
            None => Ok((0, false)),
        };
        let mut state = self.state();
        let bytes = match result {
            // A socket that holds written bytes in user space (a TLS layer) pushes them out
            // once writable: the task waits for that.
            Ok((n, false)) if self.socket.as_ref().is_some_and(|s| s.holds_output()) => {
                state.blocked = true;
                n
            }
            Ok((n, false)) => n,
            Ok((n, true)) => {
                state.blocked = true;
                n
            }
            Err(_) => {
                state.failed = true;
                0
            }
        };
        let stop = state.blocked || state.failed;
        batch.chunks.clear();
        if state.spare.capacity() < batch.chunks.capacity() {
            state.spare = batch.chunks;
        }
        drop(state);
        if bytes > 0 {
            self.unreported.fetch_add(bytes, Ordering::SeqCst);
        }
        self.writing.store(false, Ordering::SeqCst);
        if stop {
            // The task waits for writability, or ends the connection.
            self.wake.notify();
        }
        Written {
            bytes,
            urgent: batch.urgent,
            again: !stop && (batch.more || self.dirty.load(Ordering::SeqCst)),
        }
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
