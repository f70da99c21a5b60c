//! The listener: endpoints and their handlers, the spawner, the accept loop, graceful
//! shutdown.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_io::{Async, Timer};
use futures_lite::future;
use sockjs_core::{Config, Limits, Options};

use crate::connection;
use crate::driver::{Driver, Spawner};
use crate::session::{Callbacks, Handler, Session, run_callbacks};

/// Builds a [`Server`]: endpoints (prefix, options, handler), limits, and the executor its
/// tasks are spawned on.
pub struct Builder {
    config: Config,
    handlers: Vec<Handler>,
    spawner: Option<Spawner>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            config: Config::new(),
            handlers: Vec::new(),
            spawner: default_spawner(),
        }
    }
}

/// async-std's executor when that feature is on, else smol's, else none.
#[cfg(feature = "async-std")]
fn default_spawner() -> Option<Spawner> {
    Some(Arc::new(spawn_on_async_std))
}

#[cfg(all(feature = "smol", not(feature = "async-std")))]
fn default_spawner() -> Option<Spawner> {
    Some(Arc::new(spawn_on_smol))
}

#[cfg(not(any(feature = "smol", feature = "async-std")))]
fn default_spawner() -> Option<Spawner> {
    None
}

#[cfg(feature = "async-std")]
fn spawn_on_async_std(task: Pin<Box<dyn Future<Output = ()> + Send>>) {
    // Dropping async-std's handle detaches the task.
    drop(async_std::task::spawn(task));
}

#[cfg(feature = "smol")]
fn spawn_on_smol(task: Pin<Box<dyn Future<Output = ()> + Send>>) {
    smol::spawn(task).detach();
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

    /// Spawns the server's tasks (one per connection, per session its handler, one timer)
    /// with `spawn`, which must run each future to completion on some executor without
    /// blocking the caller.
    pub fn spawner<S>(mut self, spawn: S) -> Self
    where
        S: Fn(Pin<Box<dyn Future<Output = ()> + Send>>) + Send + Sync + 'static,
    {
        self.spawner = Some(Arc::new(spawn));
        self
    }

    /// Spawns the server's tasks on async-std's executor (the default with this feature).
    #[cfg(feature = "async-std")]
    pub fn spawn_with_async_std(self) -> Self {
        self.spawner(spawn_on_async_std)
    }

    /// Spawns the server's tasks on smol's global executor (`SMOL_THREADS` sets its
    /// threads).
    #[cfg(feature = "smol")]
    pub fn spawn_with_smol(self) -> Self {
        self.spawner(spawn_on_smol)
    }

    /// Binds a listener. A host name is resolved with the standard library's blocking
    /// resolver; pass an address to avoid that.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        Ok(self.listen(listener))
    }

    /// Serves on an already bound listener (blocking or not; [`Server::run`] makes it
    /// non-blocking).
    pub fn listen(self, listener: TcpListener) -> Server {
        let shutdown_timeout = self.config.limits.shutdown_timeout;
        let entropy: sockjs_core::Entropy = Box::new(random_u32);
        let core =
            sockjs_core::Server::new(self.config, Instant::now(), SystemTime::now(), entropy);
        let driver = Driver::new(core, self.handlers, self.spawner);
        let (stop, stop_rx) = async_channel::bounded(1);
        Server {
            listener,
            driver: Arc::new(driver),
            stop_rx,
            handle: ServerHandle {
                stop,
                timeout: shutdown_timeout,
            },
        }
    }
}

/// A SockJS server on one listener; [`Server::run`] serves until shutdown.
pub struct Server {
    listener: TcpListener,
    driver: Arc<Driver>,
    /// Closed by [`ServerHandle::shutdown`]; nothing is ever sent on it.
    stop_rx: async_channel::Receiver<()>,
    handle: ServerHandle,
}

/// Stops a running [`Server`] gracefully; cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    stop: async_channel::Sender<()>,
    timeout: Duration,
}

impl ServerHandle {
    /// Asks the server to shut down: it stops accepting, closes every session with
    /// `c[1001,"Server shutting down"]`, flushes, and [`Server::run`] returns once every
    /// connection has finished or the shutdown timeout has passed (those still open are
    /// then dropped).
    pub fn shutdown(&self) {
        self.stop.close();
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
    ///
    /// Fails at once if the builder has no spawner (neither runtime feature is enabled and
    /// [`Builder::spawner`] was not called), or if the listener cannot be registered with
    /// the reactor.
    pub async fn run(self) -> io::Result<()> {
        if !self.driver.can_spawn() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no spawner: enable the async-std or smol feature, or call Builder::spawner",
            ));
        }
        let listener = Async::new(self.listener)?;
        self.driver.spawn(Box::pin(self.driver.clone().run_timer()));
        loop {
            let stopped = async {
                let _ = self.stop_rx.recv().await;
                None
            };
            match future::or(stopped, async { Some(listener.accept().await) }).await {
                Some(Ok((stream, peer))) => connection::spawn(self.driver.clone(), stream, peer),
                // Out of descriptors and the like: wait a little rather than spin.
                Some(Err(_)) => {
                    Timer::after(Duration::from_millis(50)).await;
                }
                None => break,
            }
        }
        drop(listener);
        self.driver.with_core(|s, now| s.shutdown(now));
        let deadline = Instant::now() + self.handle.timeout;
        loop {
            let idle = self.driver.idle.listen();
            if self.driver.open_connections() == 0 {
                break;
            }
            let timed_out = async {
                Timer::at(deadline).await;
                true
            };
            if future::or(timed_out, async {
                idle.await;
                false
            })
            .await
            {
                break;
            }
        }
        self.driver.stop();
        Ok(())
    }
}

/// An unpredictable `u32` for `/info`'s entropy: the standard library's hasher with fresh
/// random keys (seeded from the operating system once per thread, then stepped per call).
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
