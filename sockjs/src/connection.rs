//! One accepted TCP connection: one task that reads into the core, finishes writes the
//! socket could not take at once, and does what the core asks (shut down, close).
//!
//! Nothing is buffered while idle: reads go through a per-thread scratch buffer once the
//! socket is readable, and after a read that filled it the task reads again before asking
//! the reactor. A session whose application lags past its inbound limit stops its
//! connection being read until it catches up. Lingering after a close is the core's: the
//! task keeps reading (the core drops the bytes) until the core says close.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use tracing::Instrument;

use crate::driver::Driver;
use crate::inbox::SessionShared;
use crate::output::Conn;
use crate::rt::AsyncSocket;

const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// Serves one connection until it closes.
pub(crate) fn spawn(driver: Arc<Driver>, socket: Box<dyn AsyncSocket>, peer: SocketAddr) {
    let conn = driver.register(peer, socket);
    let span = tracing::debug_span!(parent: None, "connection", id = conn.id.to_raw(), %peer);
    let task = run(driver.clone(), conn);
    if span.is_disabled() {
        driver.runtime.spawn(Box::pin(task));
    } else {
        driver.runtime.spawn(Box::pin(task.instrument(span)));
    }
}

/// What woke the task.
enum Wake {
    Signal,
    Writable(bool),
    Readable(bool),
    Drained,
}

/// Drives `conn` (which has a socket) until it closes; it counts as open until then.
pub(crate) async fn run(driver: Arc<Driver>, conn: Arc<Conn>) {
    let Some(socket) = conn.socket.as_deref() else {
        driver.forget(conn.id);
        driver.connection_closed();
        return;
    };
    let mut reading = true;
    let mut shut_down = false;
    let mut backlog: Vec<Arc<SessionShared>> = Vec::new();
    // After a read that filled the buffer, more is likely waiting.
    let mut more = false;
    let forgotten = loop {
        let (blocked, shutdown) = {
            let state = conn.state();
            if state.closed {
                // The core has forgotten the connection.
                break true;
            }
            if state.failed {
                break false;
            }
            (state.blocked, state.shutdown)
        };
        if shutdown && !shut_down {
            shut_down = true;
            let _ = socket.shutdown_write();
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
                if blocked && let Poll::Ready(r) = socket.poll_write_ready(cx) {
                    return Poll::Ready(Wake::Writable(r.is_ok()));
                }
                if reading
                    && !paused
                    && let Poll::Ready(r) = socket.poll_read_ready(cx)
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
            Wake::Signal => driver.flush(&conn),
            Wake::Writable(false) | Wake::Readable(false) => break false,
            Wake::Writable(true) => {
                conn.state().blocked = false;
                driver.flush(&conn);
            }
            Wake::Readable(true) => match read_once(&driver, &conn, socket) {
                Read::Fed(n, more_backlog) => {
                    more = n == READ_CHUNK;
                    backlog = more_backlog;
                }
                Read::Again => {}
                Read::Eof => {
                    reading = false;
                    driver.eof(conn.id);
                }
                Read::Failed => break false,
            },
            Wake::Drained => backlog.clear(),
        }
    };
    if !forgotten {
        driver.forget(conn.id);
    }
    driver.connection_closed();
}

enum Read {
    /// This many bytes were fed; the sessions listed are backlogged.
    Fed(usize, Vec<Arc<SessionShared>>),
    /// Nothing there after all.
    Again,
    /// End of stream: the peer is done sending.
    Eof,
    /// The socket failed.
    Failed,
}

fn read_once(driver: &Arc<Driver>, conn: &Arc<Conn>, socket: &dyn AsyncSocket) -> Read {
    SCRATCH.with(|buf| {
        let mut buf = buf.borrow_mut();
        match socket.try_read(&mut buf) {
            Ok(0) => Read::Eof,
            Ok(n) => Read::Fed(n, driver.feed(conn.id, &buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Again,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Read::Again,
            Err(_) => Read::Failed,
        }
    })
}
