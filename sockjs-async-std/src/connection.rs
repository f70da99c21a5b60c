//! One accepted TCP connection: a reader task feeding the core and a writer task writing what
//! the core produced for it. Neither holds the core's lock across an await, and neither
//! keeps a buffer while idle: the reader waits for readability, then reads through a
//! per-thread scratch buffer.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncWriteExt, future};
use sockjs_core::{After, ConnectionId};

use crate::driver::{ConnSignals, Driver, WriterCommand};
use crate::session::SessionShared;

const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// Serves one connection until it closes.
pub(crate) fn spawn(driver: Arc<Driver>, stream: Async<TcpStream>, peer: SocketAddr) {
    let _ = stream.get_ref().set_nodelay(true);
    let stream = Arc::new(stream);
    let (tx, rx) = async_channel::unbounded();
    let signals = Arc::new(ConnSignals::new());
    let id = driver.register(peer, tx.clone(), signals.clone());
    driver.spawn(Box::pin(write_loop(
        driver.clone(),
        id,
        stream.clone(),
        rx,
        signals.clone(),
    )));
    driver.spawn(Box::pin(read_loop(driver.clone(), id, stream, tx, signals)));
}

enum ReadOutcome {
    /// This many bytes were fed; the sessions listed are backlogged.
    Fed(usize, Vec<Arc<SessionShared>>),
    /// Spurious wake-up.
    Again,
    /// End of stream or error.
    Closed,
}

async fn read_loop(
    driver: Arc<Driver>,
    id: ConnectionId,
    stream: Arc<Async<TcpStream>>,
    writer: async_channel::Sender<WriterCommand>,
    signals: Arc<ConnSignals>,
) {
    // After a read that filled the buffer, more is likely waiting: read again before asking
    // the reactor.
    let mut more = false;
    let closed_by_us = loop {
        if signals.stop_reading.is_raised() {
            break true;
        }
        if !more {
            let stop = async {
                signals.stop_reading.wait().await;
                None
            };
            match future::or(stop, async { Some(stream.readable().await.is_ok()) }).await {
                None => break true,
                Some(false) => break false,
                Some(true) => {}
            }
        }
        let outcome = SCRATCH.with(|buf| {
            let mut buf = buf.borrow_mut();
            match stream.get_ref().read(&mut buf) {
                Ok(0) => ReadOutcome::Closed,
                Ok(n) => {
                    let (_, actions) =
                        driver.with_core(|s, now| s.handle_bytes(now, id, &buf[..n]));
                    ReadOutcome::Fed(n, actions.backlogged)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::Again,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadOutcome::Again,
                Err(_) => ReadOutcome::Closed,
            }
        });
        more = false;
        match outcome {
            ReadOutcome::Fed(n, backlogged) => {
                more = n == READ_CHUNK;
                // The application is behind on these sessions: stop reading this client
                // until it catches up (or the connection is closed from our side).
                for session in backlogged {
                    let caught_up = async {
                        session.wait_drained(driver.max_inbound_bytes).await;
                        true
                    };
                    let stop = async {
                        signals.stop_reading.wait().await;
                        false
                    };
                    if !future::or(caught_up, stop).await {
                        break;
                    }
                }
            }
            ReadOutcome::Again => {}
            ReadOutcome::Closed => break false,
        }
    };
    if !closed_by_us && writer.try_send(WriterCommand::PeerClosed).is_ok() {
        // The peer closed. The writer reports it after finishing what it was writing, so
        // bytes that did reach the socket count as written rather than lost.
        signals.stop_reading.wait().await;
    }
    driver.forget(id);
    if closed_by_us {
        linger(&stream, driver.linger).await;
    }
    driver.connection_closed();
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
        if future::or(timed_out, async { stream.readable().await.is_err() }).await {
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

async fn write_loop(
    driver: Arc<Driver>,
    id: ConnectionId,
    stream: Arc<Async<TcpStream>>,
    rx: async_channel::Receiver<WriterCommand>,
    signals: Arc<ConnSignals>,
) {
    loop {
        let cmd = unless_aborted(&signals, rx.recv()).await;
        let (data, after) = match cmd {
            Some(Ok(WriterCommand::Data(data, after))) => (data, after),
            Some(Ok(WriterCommand::PeerClosed)) => {
                driver.forget(id);
                break;
            }
            _ => break,
        };
        if !data.is_empty() {
            let written = unless_aborted(&signals, (&*stream).write_all(&data)).await;
            if !matches!(written, Some(Ok(()))) {
                break;
            }
            let n = data.len();
            driver.with_core(|s, now| s.handle_written(now, id, n));
        }
        if after != After::KeepOpen {
            break;
        }
    }
    // Our side is done, however it ended: the peer sees the end of stream now, while the
    // reader lingers.
    let _ = stream.get_ref().shutdown(Shutdown::Write);
    signals.stop_reading.raise();
}

/// Runs `work` unless the connection is aborted first (`None`). Abort is polled first, so
/// bytes still queued when it is raised are dropped.
async fn unless_aborted<T>(signals: &ConnSignals, work: impl Future<Output = T>) -> Option<T> {
    let aborted = async {
        signals.abort.wait().await;
        None
    };
    future::or(aborted, async { Some(work.await) }).await
}
