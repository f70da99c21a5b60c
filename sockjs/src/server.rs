//! The listener: endpoints and their handlers, the accept loop, graceful shutdown.

use std::future::{Future, poll_fn};
use std::io;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use futures_lite::future;
use sockjs_core::{Config, Limits, Options, RequestInfo, Stats};

use crate::authorize::{Authorizer, Decision};
use crate::callbacks::{Callbacks, run_callbacks};
use crate::connection;
use crate::driver::{Driver, Handler};
use crate::rt::Runtime;
use crate::session::Session;
use crate::signal::Signal;

/// How long the accept loop pauses after a failed accept (out of descriptors and the like)
/// rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What a runtime crate names its servers by: `Server<ItsBinding>::builder()` starts the
/// builder it defines, on its runtime. Only the name differs; the server is the same.
pub trait Binding: 'static {
    /// The builder `Server::builder()` returns.
    type Builder;

    /// A builder on this binding's runtime.
    fn builder() -> Self::Builder;
}

/// The default of [`Builder::metrics_interval`].
#[cfg(feature = "metrics")]
const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(1);
/// The default of [`Builder::max_inbound_bytes`].
const DEFAULT_MAX_INBOUND_BYTES: usize = 1024 * 1024;
/// How long after the core's shutdown timeout [`Server::run`] still waits for connection
/// tasks before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Builds a [`Server`]: endpoints (prefix, options, handler), limits, and the runtime its
/// tasks run on. `B` only names the runtime crate's [`Binding`].
pub struct Builder<B = ()> {
    config: Config,
    max_inbound_bytes: usize,
    #[cfg(feature = "metrics")]
    metrics_interval: Duration,
    handlers: Vec<Handler>,
    authorizers: Vec<Option<Authorizer>>,
    runtime: Arc<dyn Runtime>,
    binding: PhantomData<fn() -> B>,
}

impl<B> Builder<B> {
    /// A builder whose server runs on `runtime`.
    pub fn new(runtime: Arc<dyn Runtime>) -> Self {
        Builder {
            config: Config::new(),
            max_inbound_bytes: DEFAULT_MAX_INBOUND_BYTES,
            #[cfg(feature = "metrics")]
            metrics_interval: DEFAULT_METRICS_INTERVAL,
            handlers: Vec::new(),
            authorizers: Vec::new(),
            runtime,
            binding: PhantomData,
        }
    }

    /// The runtime the server will run on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// Runs the server on `runtime` instead.
    pub fn with_runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.runtime = runtime;
        self
    }

    /// Serves SockJS under `prefix` with `options`, running `handler` for each new session.
    pub fn endpoint<F, Fut>(mut self, prefix: &str, options: Options, handler: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.config = self.config.endpoint(prefix, options);
        self.handlers.push(Arc::new(move |shared, driver| {
            Box::pin(handler(Session::new(shared, driver)))
        }));
        self.authorizers.push(None);
        self
    }

    /// Has every request that would open a session under `prefix` (an endpoint added
    /// before) decided by `hook` first: it sees the opening request (peer, client address,
    /// path, query, headers and cookies, transport) and accepts it, optionally with data the
    /// session's handler reads with [`Session::authorization`], or refuses it with a status
    /// and a short body, which the client gets instead of a session. `/info` and the iframe
    /// page stay public. A hook that takes longer than
    /// [`Limits::authorization_timeout`] has its request answered `503`.
    ///
    /// # Panics
    ///
    /// If no endpoint was added under `prefix`.
    pub fn authorize<F, Fut>(mut self, prefix: &str, hook: F) -> Self
    where
        F: Fn(RequestInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Decision> + Send + 'static,
    {
        let prefix = prefix.trim_end_matches('/');
        let Some(i) = self
            .config
            .endpoints
            .iter()
            .position(|e| e.prefix == prefix)
        else {
            panic!("authorize: no endpoint under {prefix:?} was added before");
        };
        self.config.endpoints[i].options.authorize = true;
        self.authorizers[i] = Some(Arc::new(move |info| Box::pin(hook(info))));
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

    /// Bytes of received messages a session may hold for an application that has not taken
    /// them; past that, the connection that carried them is not read until the application
    /// catches up. Default 1 MiB.
    pub fn max_inbound_bytes(mut self, bytes: usize) -> Self {
        self.max_inbound_bytes = bytes;
        self
    }

    /// How often the server's figures are copied into the `metrics` recorder (the `metrics`
    /// feature; see docs/METRICS.md). Default 1 s; they are copied once more when the server
    /// stops. The recorder must be installed before the server is built
    /// ([`Builder::bind`], [`Builder::listen`]): its handles are registered then.
    #[cfg(feature = "metrics")]
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets [`Limits::shutdown_timeout`]: how long [`ServerHandle::shutdown`] waits for
    /// connections to finish. Default 10 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.limits.shutdown_timeout = timeout;
        self
    }

    /// The driver of the server this builds, with the prefixes it serves and its limits.
    pub(crate) fn into_driver(self) -> (Driver, Vec<String>, Limits) {
        let prefixes = self
            .config
            .endpoints
            .iter()
            .map(|e| e.prefix.clone())
            .collect();
        let limits = self.config.limits.clone();
        let entropy: sockjs_core::Entropy = Box::new(random_u32);
        let core =
            sockjs_core::Server::new(self.config, Instant::now(), SystemTime::now(), entropy);
        #[allow(unused_mut)]
        let mut driver = Driver::new(
            core,
            self.handlers,
            self.authorizers,
            self.runtime,
            self.max_inbound_bytes,
        );
        #[cfg(feature = "metrics")]
        {
            driver.metrics_interval = self.metrics_interval;
        }
        (driver, prefixes, limits)
    }

    /// Binds a listener. A host name is resolved with the standard library's blocking
    /// resolver; pass an address to avoid that.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<Server<B>> {
        let listener = TcpListener::bind(addr)?;
        Ok(self.listen(listener))
    }

    /// Serves on an already bound listener (blocking or not; [`Server::run`] registers it
    /// with the runtime).
    pub fn listen(self, listener: TcpListener) -> Server<B> {
        let (driver, _, limits) = self.into_driver();
        let shutdown_timeout = limits.shutdown_timeout;
        let driver = Arc::new(driver);
        Server {
            listener,
            handle: ServerHandle {
                stop: Arc::new(Signal::new()),
                timeout: shutdown_timeout,
                driver: Arc::downgrade(&driver),
            },
            driver,
            binding: PhantomData,
        }
    }
}

/// A SockJS server on one listener; [`Server::run`] serves until shutdown.
pub struct Server<B = ()> {
    listener: TcpListener,
    driver: Arc<Driver>,
    handle: ServerHandle,
    binding: PhantomData<fn() -> B>,
}

/// Stops a running [`Server`] gracefully; cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    stop: Arc<Signal>,
    timeout: Duration,
    driver: std::sync::Weak<Driver>,
}

impl ServerHandle {
    /// Asks the server to shut down: it stops accepting, closes every session with
    /// `c[1001,"Server shutting down"]`, flushes, and [`Server::run`] returns once every
    /// connection has finished or the shutdown timeout has passed (those still open are
    /// then dropped).
    pub fn shutdown(&self) {
        self.stop.notify();
    }

    /// The server's counters and gauges now (see [`Stats`]), or `None` once the server is
    /// gone.
    pub fn stats(&self) -> Option<Stats> {
        Some(self.driver.upgrade()?.stats())
    }
}

impl<B: Binding> Server<B> {
    /// A builder on the binding's runtime.
    pub fn builder() -> B::Builder {
        B::builder()
    }
}

impl<B> Server<B> {
    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to shut the server down and read its figures.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// The server's counters and gauges now (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        self.driver.stats()
    }

    /// Serves until [`ServerHandle::shutdown`] is called, then shuts down gracefully.
    ///
    /// Fails at once if the runtime cannot register the listener.
    pub async fn run(self) -> io::Result<()> {
        let driver = self.driver;
        let listener = driver.runtime.wrap_listener(self.listener)?;
        driver.runtime.spawn(Box::pin(driver.clone().run_timer()));
        // The timer task ends and connections still open are dropped however `run` ends,
        // even if its future is dropped.
        let _stop = StopOnDrop(&driver);
        let stop = &self.handle.stop;
        loop {
            let next = poll_fn(|cx| {
                if stop.poll_wait(cx).is_ready() {
                    return Poll::Ready(None);
                }
                listener.poll_accept(cx).map(Some)
            })
            .await;
            match next {
                Some(Ok((socket, peer))) => connection::spawn(driver.clone(), socket, peer),
                Some(Err(_)) => {
                    driver
                        .runtime
                        .new_timer(Instant::now() + ACCEPT_BACKOFF)
                        .await
                }
                None => break,
            }
        }
        drop(listener);
        // The core closes what is still open at the shutdown timeout; this one is a backstop
        // for connections whose tasks do not end.
        driver.shutdown();
        let mut deadline = driver
            .runtime
            .new_timer(Instant::now() + self.handle.timeout + SHUTDOWN_GRACE);
        loop {
            let idle = driver.idle.listen();
            if driver.open_connections() == 0 {
                break;
            }
            let timed_out = async {
                (&mut deadline).await;
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
        Ok(())
    }
}

struct StopOnDrop<'a>(&'a Driver);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// An unpredictable `u32` for `/info`'s entropy: the standard library's hasher with fresh
/// random keys (seeded from the operating system once per thread, then stepped per call).
pub(crate) fn random_u32() -> u32 {
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
