//! The [`sockjs::Runtime`] trait on tokio: its spawner, its timers, its reactor.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use sockjs::{AsyncListener, AsyncSocket, AsyncTimer, Binding, Connecting, Runtime, Task};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// Tokio as a [`Runtime`]: tasks go to `tokio::spawn`, so a server runs on the runtime its
/// `run` is polled on (and is built inside one). Also the [`Binding`] that makes
/// [`crate::Server::builder`] start on tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Binding for Tokio {
    type Builder = sockjs::Builder<Tokio>;

    fn builder() -> Self::Builder {
        sockjs::Builder::new(Arc::new(Tokio))
    }
}

impl Runtime for Tokio {
    fn spawn(&self, task: Task) {
        tokio::spawn(task);
    }

    fn new_timer(&self, at: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer(Box::pin(tokio::time::sleep_until(at.into()))))
    }

    fn wrap_listener(&self, listener: std::net::TcpListener) -> io::Result<Box<dyn AsyncListener>> {
        listener.set_nonblocking(true)?;
        Ok(Box::new(Listener(TcpListener::from_std(listener)?)))
    }

    fn connect(&self, host: &str, port: u16) -> Connecting {
        let host = host.to_string();
        Box::pin(async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(Socket(stream)) as Box<dyn AsyncSocket>)
        })
    }
}

/// tokio's sleep, boxed so that it can be reset through a plain `&mut`.
struct Timer(Pin<Box<Sleep>>);

impl AsyncTimer for Timer {
    fn reset(mut self: Pin<&mut Self>, at: Instant) {
        self.0.as_mut().reset(at.into());
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

struct Listener(TcpListener);

impl AsyncListener for Listener {
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn AsyncSocket>, SocketAddr)>> {
        self.0.poll_accept(cx).map_ok(|(stream, peer)| {
            let _ = stream.set_nodelay(true);
            (Box::new(Socket(stream)) as Box<dyn AsyncSocket>, peer)
        })
    }
}

/// A tokio stream: its readiness, and reads and writes that clear it on `WouldBlock`.
struct Socket(TcpStream);

impl AsyncSocket for Socket {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_read_ready(cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_write_ready(cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        // tokio shuts a stream down only through `&mut`; the socket itself allows it shared.
        socket2::SockRef::from(&self.0).shutdown(std::net::Shutdown::Write)
    }
}
