//! One accepted TCP connection: one task that reads into the core and finishes writes the
//! socket could not take at once.
//!
//! Output is written eagerly by whichever task produced it, right after the core's lock is
//! released, so an echo costs no extra task wake-up; only when the socket would block does
//! this connection's task wait for it to become writable. Nothing is buffered while idle:
//! reads go through a per-thread scratch buffer once the socket is readable.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use bytes::{Buf, Bytes};
use event_listener::Event;
use futures_lite::future;
use sockjs_core::ConnectionId;

use crate::driver::Driver;
use crate::session::SessionShared;

const READ_CHUNK: usize = 16 * 1024;
/// Buffers handed to one vectored write.
const WRITE_BATCH: usize = 32;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// A wake-up for one waiting task that is kept if it comes before the task waits.
struct Signal {
    pending: AtomicBool,
    event: Event,
}

impl Signal {
    fn new() -> Self {
        Signal {
            pending: AtomicBool::new(false),
            event: Event::new(),
        }
    }

    fn notify(&self) {
        self.pending.store(true, Ordering::SeqCst);
        self.event.notify(1);
    }

    async fn wait(&self) {
        loop {
            let listener = self.event.listen();
            if self.pending.swap(false, Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }
}

/// A connection as the driver and its task share it.
pub(crate) struct Conn {
    pub(crate) id: ConnectionId,
    stream: Async<TcpStream>,
    output: Mutex<Output>,
    /// Wakes the task: the socket would block, the connection must end, or a close is ready.
    wake: Signal,
    /// Bytes written and not yet reported to the core.
    pub(crate) unreported: AtomicUsize,
    /// Bytes the core handed out and has not heard are written (kept under the core's lock).
    pub(crate) core_unflushed: AtomicUsize,
    /// In the driver's list of connections with unreported writes.
    pub(crate) listed: AtomicBool,
}

/// What waits to be written, and what happens after.
#[derive(Default)]
struct Output {
    queue: VecDeque<Bytes>,
    /// An empty buffer the flusher borrows for the bytes it writes.
    spare: Vec<Bytes>,
    /// A flusher is writing (bytes taken from the queue are in its hands).
    writing: bool,
    /// The last write would block: the task waits for writability.
    blocked: bool,
    /// A write failed: the peer is gone.
    failed: bool,
    /// Close once the queue is written.
    close: bool,
    /// End now, dropping what is queued.
    abort: bool,
}

impl Conn {
    pub(crate) fn new(id: ConnectionId, stream: Async<TcpStream>) -> Conn {
        Conn {
            id,
            stream,
            output: Mutex::new(Output::default()),
            wake: Signal::new(),
            unreported: AtomicUsize::new(0),
            core_unflushed: AtomicUsize::new(0),
            listed: AtomicBool::new(false),
        }
    }

    fn output(&self) -> MutexGuard<'_, Output> {
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
            let result = write_batch(self.stream.get_ref(), &mut batch);
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
fn write_batch(mut stream: &TcpStream, batch: &mut Vec<Bytes>) -> io::Result<(usize, bool)> {
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
        match stream.write_vectored(&slices[..count]) {
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

/// Serves one connection until it closes.
pub(crate) fn spawn(driver: Arc<Driver>, stream: Async<TcpStream>, peer: SocketAddr) {
    let _ = stream.get_ref().set_nodelay(true);
    let conn = driver.register(peer, stream);
    driver.spawn(Box::pin(run(driver.clone(), conn)));
}

/// How a connection's task ended.
enum End {
    /// The server closed it: linger, then drop.
    Closed,
    /// Aborted: drop at once.
    Aborted,
    /// The peer closed it or it failed.
    Lost,
}

/// What woke the task.
enum Wake {
    Signal,
    Writable(bool),
    Readable(bool),
    Drained,
}

async fn run(driver: Arc<Driver>, conn: Arc<Conn>) {
    let mut reading = true;
    let mut backlog: Vec<Arc<SessionShared>> = Vec::new();
    // After a read that filled the buffer, more is likely waiting: read again before asking
    // the reactor.
    let mut more = false;
    let end = loop {
        let (blocked, ended) = {
            let out = conn.output();
            let ended = if out.abort {
                Some(End::Aborted)
            } else if out.failed {
                Some(End::Lost)
            } else if out.close && out.queue.is_empty() && !out.writing {
                Some(End::Closed)
            } else if !reading && out.queue.is_empty() && !out.writing {
                // The peer closed and everything before that is written.
                Some(End::Lost)
            } else {
                None
            };
            (out.blocked, ended)
        };
        if let Some(end) = ended {
            break end;
        }
        let paused = !backlog.is_empty();
        let wake = if more && reading && !paused {
            Wake::Readable(true)
        } else {
            let signal = async {
                conn.wake.wait().await;
                Wake::Signal
            };
            let writable = async {
                if blocked {
                    Wake::Writable(conn.stream.writable().await.is_ok())
                } else {
                    future::pending().await
                }
            };
            let readable = async {
                if reading && !paused {
                    Wake::Readable(conn.stream.readable().await.is_ok())
                } else {
                    future::pending().await
                }
            };
            let drained = async {
                if paused {
                    for session in &backlog {
                        session.wait_drained(driver.max_inbound_bytes).await;
                    }
                    Wake::Drained
                } else {
                    future::pending().await
                }
            };
            future::or(future::or(signal, writable), future::or(readable, drained)).await
        };
        more = false;
        match wake {
            // Output left for this task, or news about the connection's state.
            Wake::Signal => driver.flushed(&conn, conn.flush()),
            Wake::Writable(false) => break End::Lost,
            Wake::Writable(true) => {
                conn.output().blocked = false;
                driver.flushed(&conn, conn.flush());
            }
            Wake::Readable(false) => reading = false,
            Wake::Readable(true) => match read_once(&driver, &conn) {
                ReadOutcome::Fed(n, more_backlog) => {
                    more = n == READ_CHUNK;
                    backlog = more_backlog;
                }
                ReadOutcome::Again => {}
                ReadOutcome::Closed => reading = false,
            },
            Wake::Drained => backlog.clear(),
        }
    };
    driver.forget(conn.id);
    if let End::Closed = end {
        let _ = conn.stream.get_ref().shutdown(Shutdown::Write);
        linger(&conn.stream, driver.linger).await;
    }
    driver.connection_closed();
}

enum ReadOutcome {
    /// This many bytes were fed; the sessions listed are backlogged.
    Fed(usize, Vec<Arc<SessionShared>>),
    /// Spurious wake-up.
    Again,
    /// End of stream or error.
    Closed,
}

fn read_once(driver: &Arc<Driver>, conn: &Arc<Conn>) -> ReadOutcome {
    SCRATCH.with(|buf| {
        let mut buf = buf.borrow_mut();
        match conn.stream.get_ref().read(&mut buf) {
            Ok(0) => ReadOutcome::Closed,
            Ok(n) => {
                let id = conn.id;
                let (_, actions) = driver.with_core(|s, now| s.handle_bytes(now, id, &buf[..n]));
                ReadOutcome::Fed(n, actions.backlogged)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::Again,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadOutcome::Again,
            Err(_) => ReadOutcome::Closed,
        }
    })
}

/// Reads and discards until the peer closes, a little data has passed, or `time` ends:
/// the peer gets the last response rather than a reset for bytes it sent that were never read.
async fn linger(stream: &Async<TcpStream>, time: Duration) {
    let deadline = Instant::now() + time;
    let mut budget: usize = 256 * 1024;
    while budget > 0 {
        let timed_out = async {
            Timer::at(deadline).await;
            true
        };
        let ready = async { stream.readable().await.is_err() };
        if future::or(timed_out, ready).await {
            return;
        }
        let n = SCRATCH.with(|buf| match stream.get_ref().read(&mut buf.borrow_mut()) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Some(0),
            Err(_) => None,
        });
        match n {
            Some(n) => budget = budget.saturating_sub(n),
            None => return,
        }
    }
}
