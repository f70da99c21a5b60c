//! One accepted TCP connection: a reader task feeding the core and a writer task writing what
//! the core produced for it. Neither holds the core's lock across an await, and neither
//! keeps a buffer while idle: reads go through a per-thread scratch buffer once the socket is
//! readable.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sockjs_core::{After, ConnectionId};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::driver::{ConnSignals, Driver, WriterCommand};

const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// Serves one connection until it closes.
pub(crate) fn spawn(driver: Arc<Driver>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let signals = Arc::new(ConnSignals::new());
    driver.open_connections.fetch_add(1, Ordering::SeqCst);
    let id = driver.register(peer, tx.clone(), signals.clone());
    tokio::spawn(write_loop(driver.clone(), id, write, rx, signals.clone()));
    tokio::spawn(read_loop(driver, id, read, tx, signals));
}

enum ReadOutcome {
    /// Bytes were fed; the sessions listed are backlogged.
    Fed(Vec<Arc<crate::session::SessionShared>>),
    /// Spurious wake-up.
    Again,
    /// End of stream or error.
    Closed,
}

async fn read_loop(
    driver: Arc<Driver>,
    id: ConnectionId,
    read: OwnedReadHalf,
    writer: mpsc::UnboundedSender<WriterCommand>,
    signals: Arc<ConnSignals>,
) {
    loop {
        tokio::select! {
            r = read.readable() => {
                if r.is_err() {
                    break;
                }
            }
            _ = signals.stop_reading.notified() => {
                driver.forget(id);
                if !signals.aborted.load(Ordering::SeqCst) {
                    linger(&read, driver.linger).await;
                }
                driver.connection_closed();
                return;
            }
        }
        let outcome = SCRATCH.with(|buf| {
            let mut buf = buf.borrow_mut();
            match read.try_read(&mut buf) {
                Ok(0) => ReadOutcome::Closed,
                Ok(n) => {
                    let (_, actions) =
                        driver.with_core(|s, now| s.handle_bytes(now, id, &buf[..n]));
                    ReadOutcome::Fed(actions.backlogged)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::Again,
                Err(_) => ReadOutcome::Closed,
            }
        });
        match outcome {
            ReadOutcome::Fed(backlogged) => {
                // The application is behind on these sessions: stop reading this client
                // until it catches up.
                for session in backlogged {
                    tokio::select! {
                        _ = session.wait_drained(driver.max_inbound_bytes) => {}
                        // The writer finished (the server closed the connection): stop now.
                        _ = signals.stop_reading.notified() => {
                            signals.stop_reading.notify_one();
                            break;
                        }
                    }
                }
            }
            ReadOutcome::Again => {}
            ReadOutcome::Closed => break,
        }
    }
    // The peer closed. The writer reports it after finishing what it was writing, so bytes
    // that did reach the socket count as written rather than lost.
    if writer.send(WriterCommand::PeerClosed).is_ok() {
        signals.stop_reading.notified().await;
    }
    driver.forget(id);
    driver.connection_closed();
}

/// Reads and discards until the peer closes, a little data has passed, or `time` ends:
/// the peer gets the last response rather than a reset for bytes it sent that were never read.
async fn linger(read: &OwnedReadHalf, time: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + time;
    let mut budget: usize = 256 * 1024;
    while budget > 0 {
        match tokio::time::timeout_at(deadline, read.readable()).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        let n = SCRATCH.with(|buf| match read.try_read(&mut buf.borrow_mut()) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(0),
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
    mut write: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<WriterCommand>,
    signals: Arc<ConnSignals>,
) {
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = signals.abort.notified() => break,
        };
        let (data, after) = match cmd {
            Some(WriterCommand::Data(data, after)) => (data, after),
            Some(WriterCommand::PeerClosed) => {
                driver.forget(id);
                break;
            }
            None => break,
        };
        if !data.is_empty() {
            let written = tokio::select! {
                r = write.write_all(&data) => r.is_ok(),
                _ = signals.abort.notified() => false,
            };
            if !written {
                break;
            }
            let n = data.len();
            driver.with_core(|s, now| s.handle_written(now, id, n));
        }
        if after != After::KeepOpen {
            let _ = write.shutdown().await;
            break;
        }
    }
    drop(write);
    signals.stop_reading.notify_one();
}
