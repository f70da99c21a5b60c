//! One accepted TCP connection: one task that reads into the core and finishes writes the
//! socket could not take at once.
//!
//! Nothing is buffered while idle: reads go through a per-thread scratch buffer once the
//! socket is readable, and after a read that filled it the task reads again before asking
//! the reactor. A session whose application lags past its inbound limit stops its
//! connection being read until it catches up.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use crate::driver::Driver;
use crate::inbox::SessionShared;
use crate::output::Conn;
use crate::rt::{AsyncSocket, AsyncTimer};

const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// Serves one connection until it closes.
pub(crate) fn spawn(driver: Arc<Driver>, socket: Box<dyn AsyncSocket>, peer: SocketAddr) {
    let conn = driver.register(peer, socket);
    driver.runtime.spawn(Box::pin(run(driver.clone(), conn)));
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
    // After a read that filled the buffer, more is likely waiting.
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
            let mut drained = pin!(async {
                for session in &backlog {
                    session.wait_drained(driver.max_inbound_bytes).await;
                }
            });
            poll_fn(|cx| {
                if conn.wake.poll_wait(cx).is_ready() {
                    return Poll::Ready(Wake::Signal);
                }
                if blocked && let Poll::Ready(r) = conn.socket.poll_write_ready(cx) {
                    return Poll::Ready(Wake::Writable(r.is_ok()));
                }
                if reading
                    && !paused
                    && let Poll::Ready(r) = conn.socket.poll_read_ready(cx)
                {
                    return Poll::Ready(Wake::Readable(r.is_ok()));
                }
                if paused && drained.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Drained);
                }
                Poll::Pending
            })
            .await
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
                Read::Fed(n, more_backlog) => {
                    more = n == READ_CHUNK;
                    backlog = more_backlog;
                }
                Read::Again => {}
                Read::Closed => reading = false,
            },
            Wake::Drained => backlog.clear(),
        }
    };
    driver.forget(conn.id);
    if let End::Closed = end {
        let _ = conn.socket.shutdown_write();
        linger(&driver, &*conn.socket).await;
    }
    driver.connection_closed();
}

enum Read {
    /// This many bytes were fed; the sessions listed are backlogged.
    Fed(usize, Vec<Arc<SessionShared>>),
    /// Nothing there after all.
    Again,
    /// End of stream or error.
    Closed,
}

fn read_once(driver: &Arc<Driver>, conn: &Arc<Conn>) -> Read {
    SCRATCH.with(|buf| {
        let mut buf = buf.borrow_mut();
        match conn.socket.try_read(&mut buf) {
            Ok(0) => Read::Closed,
            Ok(n) => Read::Fed(n, driver.feed(conn.id, &buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Again,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Read::Again,
            Err(_) => Read::Closed,
        }
    })
}

/// Reads and discards until the peer closes, a little data has passed, or the linger time
/// ends: the peer gets the last response rather than a reset for bytes it sent that were
/// never read.
async fn linger(driver: &Driver, socket: &dyn AsyncSocket) {
    let mut timer = driver.runtime.new_timer(Instant::now() + driver.linger);
    let mut budget: usize = 256 * 1024;
    while budget > 0 {
        let ready = poll_fn(|cx| {
            if AsyncTimer::poll(timer.as_mut(), cx).is_ready() {
                return Poll::Ready(false);
            }
            socket.poll_read_ready(cx).map(|r| r.is_ok())
        })
        .await;
        if !ready {
            return;
        }
        let n = SCRATCH.with(|buf| match socket.try_read(&mut buf.borrow_mut()) {
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
