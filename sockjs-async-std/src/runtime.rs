//! The [`sockjs::Runtime`] trait on the layer async-std and smol share: `async-io` for
//! sockets and timers, and a spawner for the executor.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_io::{Async, Timer};
use sockjs::{AsyncListener, AsyncSocket, AsyncTimer, Binding, Connecting, Runtime, Task};

/// Runs tasks on the application's executor.
pub(crate) type Spawner = Arc<dyn Fn(Task) + Send + Sync>;

/// `async-io`'s reactor and timers with tasks spawned by a spawner, as a [`Runtime`]; the
/// [`Binding`] that makes [`crate::Server::builder`] start on it.
#[derive(Clone)]
pub struct AsyncIo {
    /// Runs the server's tasks; without one, the server refuses to run.
    pub(crate) spawner: Option<Spawner>,
}

impl Binding for AsyncIo {
    type Builder = crate::Builder;

    fn builder() -> crate::Builder {
        crate::Builder::default()
    }
}

impl Runtime for AsyncIo {
    fn spawn(&self, task: Task) {
        if let Some(spawn) = &self.spawner {
            spawn(task);
        }
    }

    fn new_timer(&self, at: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(IoTimer(Timer::at(at)))
    }

    /// Fails without a spawner: nothing would run the server's tasks.
    fn wrap_listener(&self, listener: TcpListener) -> io::Result<Box<dyn AsyncListener>> {
        if self.spawner.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no spawner: enable the async-std or smol feature, or call Builder::spawner",
            ));
        }
        Ok(Box::new(IoListener(Async::new(listener)?)))
    }

    /// Resolves `host` with the standard library (blocking, as name lookups are: instant for
    /// an address or `localhost`), then connects without blocking.
    fn connect(&self, host: &str, port: u16) -> Connecting {
        use std::net::ToSocketAddrs;
        let addrs: io::Result<Vec<SocketAddr>> =
            (host, port).to_socket_addrs().map(Iterator::collect);
        Box::pin(async move {
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for the host");
            for addr in addrs? {
                match Async::<TcpStream>::connect(addr).await {
                    Ok(stream) => {
                        stream.get_ref().set_nodelay(true)?;
                        return Ok(Box::new(IoSocket(stream)) as Box<dyn AsyncSocket>);
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
    }
}

struct IoTimer(Timer);

impl AsyncTimer for IoTimer {
    fn reset(mut self: Pin<&mut Self>, at: Instant) {
        self.0.set_at(at);
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        std::future::Future::poll(Pin::new(&mut self.0), cx).map(drop)
    }
}

struct IoListener(Async<TcpListener>);

impl AsyncListener for IoListener {
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn AsyncSocket>, SocketAddr)>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let socket: Box<dyn AsyncSocket> = Box::new(IoSocket(Async::new(stream)?));
                    return Poll::Ready(Ok((socket, peer)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_readable(cx))?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// A stream registered with `async-io`; reads and writes go to the standard library's
/// non-blocking socket.
struct IoSocket(Async<TcpStream>);

impl AsyncSocket for IoSocket {
    fn shutdown_write(&self) -> io::Result<()> {
        self.0.get_ref().shutdown(Shutdown::Write)
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.get_ref().write_vectored(bufs)
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.get_ref().read(buf)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_writable(cx)
    }
}
