//! The listener: endpoints and their handlers, the accept loop, graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sockjs_core::{Config, Limits, Options};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;

use crate::connection;
use crate::driver::Driver;
use crate::session::{Callbacks, Handler, Session, run_callbacks};

/// Builds a [`Server`]: endpoints (prefix, options, handler) and limits.
pub struct Builder {
    config: Config,
    handlers: Vec<Handler>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            config: Config::new(),
            handlers: Vec::new(),
        }
    }
}

impl Builder {
    /// Serves SockJS under `prefix` with `options`, running `handler` for each new session.
    pub fn endpoint<F, Fut>(mut self, prefix: &str, options: Options, handler: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.config = self.config.endpoint(prefix, options);
        self.handlers.push(Arc::new(move |s| Box::pin(handler(s))));
        self
    }

    /// Serves SockJS under `prefix`, calling `callbacks` as sessions open, receive messages
    /// and close.
    pub fn endpoint_callbacks<C: Callbacks>(
        self,
        prefix: &str,
        options: Options,
        callbacks: C,
    ) -> Self {
        let callbacks = Arc::new(callbacks);
        self.endpoint(prefix, options, move |session| {
            run_callbacks(callbacks.clone(), session)
        })
    }

    /// Replaces the limits (see [`Limits`] for each and its default).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config = self.config.limits(limits);
        self
    }

    /// Sets [`Limits::max_inbound_bytes`]: received messages a session may hold for an
    /// application that has not taken them; past that, the client's connection is not read
    /// until it catches up. Default 1 MiB.
    pub fn max_inbound_bytes(mut self, bytes: usize) -> Self {
        self.config.limits.max_inbound_bytes = bytes;
        self
    }

    /// Sets [`Limits::shutdown_timeout`]: how long [`ServerHandle::shutdown`] waits for
    /// connections to finish. Default 10 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.limits.shutdown_timeout = timeout;
        self
    }

    /// Binds a listener.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        Ok(self.listen(listener))
    }

    /// Serves on an already bound listener.
    pub fn listen(self, listener: TcpListener) -> Server {
        let shutdown_timeout = self.config.limits.shutdown_timeout;
        let entropy: sockjs_core::Entropy = Box::new(random_u32);
        let core =
            sockjs_core::Server::new(self.config, Instant::now(), SystemTime::now(), entropy);
        let driver = Arc::new(Driver::new(core, self.handlers));
        let (stop_tx, stop_rx) = watch::channel(false);
        Server {
            listener,
            driver,
            stop_rx,
            handle: ServerHandle {
                stop: Arc::new(stop_tx),
                timeout: shutdown_timeout,
            },
        }
    }
}

/// A SockJS server on one listener; [`Server::run`] serves until shutdown.
pub struct Server {
    listener: TcpListener,
    driver: Arc<Driver>,
    stop_rx: watch::Receiver<bool>,
    handle: ServerHandle,
}

/// Stops a running [`Server`] gracefully; cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    stop: Arc<watch::Sender<bool>>,
    timeout: Duration,
}

impl ServerHandle {
    /// Asks the server to shut down: it stops accepting, closes every session with
    /// `c[1001,"Server shutting down"]`, flushes, and [`Server::run`] returns once every
    /// connection has finished or the shutdown timeout has passed.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Server {
    /// A builder.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to shut the server down.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Serves until [`ServerHandle::shutdown`] is called, then shuts down gracefully.
    pub async fn run(mut self) -> io::Result<()> {
        // Aborted however `run` ends, even if its future is dropped.
        let _timer = AbortOnDrop(tokio::spawn(self.driver.clone().run_timer()));
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => connection::spawn(self.driver.clone(), stream, peer),
                    // Out of descriptors and the like: wait a little rather than spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
                _ = self.stop_rx.changed() => break,
            }
        }
        drop(self.listener);
        self.driver.with_core(|s, now| s.shutdown(now));
        let deadline = tokio::time::Instant::now() + self.handle.timeout;
        loop {
            let idle = self.driver.idle.notified();
            if self
                .driver
                .open_connections
                .load(std::sync::atomic::Ordering::SeqCst)
                == 0
            {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                // Out of time: whatever is still open ends now.
                self.driver.abort_all();
                break;
            }
        }
        Ok(())
    }
}

/// An unpredictable `u32` for `/info`'s entropy, from the standard library's randomly keyed
/// hasher (seeded from the operating system once per thread, then stepped per call).
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let v = h.finish();
    (v ^ (v >> 32)) as u32
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
