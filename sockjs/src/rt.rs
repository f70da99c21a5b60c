//! What the server needs of an async runtime, as trait objects: spawning, a resettable timer,
//! a listener and its sockets. A runtime crate implements these once; everything else is
//! written against them.
//!
//! Sockets are readiness-based: the connection's task waits for readability or writability
//! and then reads or writes without blocking, so no buffer is held while a connection is
//! idle and a burst of output goes out in one vectored write.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A task for the runtime's executor.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An async runtime: spawns tasks, makes timers, and registers listeners with its reactor.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `task` to completion in the background, without blocking the caller.
    fn spawn(&self, task: Task);

    /// A timer that fires at `at` (at once if that has passed).
    fn new_timer(&self, at: Instant) -> Pin<Box<dyn AsyncTimer>>;

    /// Registers a bound listener with the reactor (making it non-blocking).
    fn wrap_listener(&self, listener: std::net::TcpListener) -> io::Result<Box<dyn AsyncListener>>;

    /// Opens a TCP connection to `host` (a name or an address) and `port`, with
    /// `TCP_NODELAY` set, registered with the reactor: what the client needs. The default
    /// refuses (`Unsupported`), for runtimes that only serve.
    fn connect(&self, host: &str, port: u16) -> Connecting {
        let _ = (host, port);
        Box::pin(async {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this runtime does not open connections",
            ))
        })
    }
}

/// A connection being opened by [`Runtime::connect`].
pub type Connecting = Pin<Box<dyn Future<Output = io::Result<Box<dyn AsyncSocket>>> + Send>>;

/// A timer that can be moved to another deadline without being made anew. A pinned boxed
/// timer is itself a future (`timer.as_mut().await` or `(&mut timer).await`).
pub trait AsyncTimer: Send + 'static {
    /// Makes the timer fire at `at` instead.
    fn reset(self: Pin<&mut Self>, at: Instant);

    /// Ready once the deadline has passed.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

impl Future for dyn AsyncTimer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        AsyncTimer::poll(self, cx)
    }
}

/// A listening socket registered with the reactor.
pub trait AsyncListener: Send + Sync + 'static {
    /// The next accepted connection (with `TCP_NODELAY` set) and its peer's address.
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn AsyncSocket>, SocketAddr)>>;
}

/// A connected, non-blocking TCP socket registered with the reactor. One task waits on its
/// readiness; any task may read or write it.
pub trait AsyncSocket: Send + Sync + 'static {
    /// Ready when a read may make progress (or the socket failed).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Ready when a write may make progress (or the socket failed).
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Reads without blocking; `WouldBlock` when nothing is there (and the readiness the
    /// runtime tracks is cleared).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes without blocking; `WouldBlock` when the socket takes nothing now.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Sends the end of stream: this side writes no more.
    fn shutdown_write(&self) -> io::Result<()>;

    /// Bytes `try_write_vectored` took are still held in user space (a TLS layer's records
    /// the socket did not take): the connection's task then waits for
    /// [`AsyncSocket::poll_write_ready`], which pushes them out before it is ready. A plain
    /// socket holds nothing.
    fn holds_output(&self) -> bool {
        false
    }
}
