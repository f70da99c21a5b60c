//! The builder: the `sockjs` builder plus the choice of executor.

use std::future::Future;
use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use sockjs::{Callbacks, Decision, Limits, Options, RequestInfo, Session, Task};

use crate::Server;
use crate::runtime::{AsyncIo, Spawner};

/// Builds a [`Server`]: endpoints (prefix, options, handler), limits, and the executor its
/// tasks are spawned on.
pub struct Builder {
    inner: sockjs::Builder<AsyncIo>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            inner: sockjs::Builder::new(Arc::new(AsyncIo {
                spawner: default_spawner(),
            })),
        }
    }
}

/// async-std's executor when that feature is on, else smol's, else none.
pub(crate) fn default_spawner() -> Option<Spawner> {
    #[cfg(feature = "async-std")]
    return Some(Arc::new(spawn_on_async_std));
    #[cfg(all(feature = "smol", not(feature = "async-std")))]
    return Some(Arc::new(spawn_on_smol));
    #[cfg(not(any(feature = "smol", feature = "async-std")))]
    None
}

#[cfg(feature = "async-std")]
fn spawn_on_async_std(task: Task) {
    // Dropping async-std's handle detaches the task.
    drop(async_std::task::spawn(task));
}

#[cfg(feature = "smol")]
pub(crate) fn spawn_on_smol(task: Task) {
    smol::spawn(task).detach();
}

impl From<Builder> for sockjs::Builder<AsyncIo> {
    /// The `sockjs` builder underneath, with the executor chosen so far.
    fn from(builder: Builder) -> Self {
        builder.inner
    }
}

impl Builder {
    fn map(self, f: impl FnOnce(sockjs::Builder<AsyncIo>) -> sockjs::Builder<AsyncIo>) -> Self {
        Builder {
            inner: f(self.inner),
        }
    }

    /// Serves SockJS under `prefix` with `options`, running `handler` for each new session
    /// (as [`sockjs::Builder::endpoint`]).
    pub fn endpoint<F, Fut>(self, prefix: &str, options: Options, handler: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.map(|b| b.endpoint(prefix, options, handler))
    }

    /// As [`sockjs::Builder::endpoint_callbacks`].
    pub fn endpoint_callbacks(
        self,
        prefix: &str,
        options: Options,
        callbacks: impl Callbacks,
    ) -> Self {
        self.map(|b| b.endpoint_callbacks(prefix, options, callbacks))
    }

    /// As [`sockjs::Builder::authorize`].
    pub fn authorize<F, Fut>(self, prefix: &str, hook: F) -> Self
    where
        F: Fn(RequestInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Decision> + Send + 'static,
    {
        self.map(|b| b.authorize(prefix, hook))
    }

    /// As [`sockjs::Builder::limits`].
    pub fn limits(self, limits: Limits) -> Self {
        self.map(|b| b.limits(limits))
    }

    /// As [`sockjs::Builder::max_inbound_bytes`].
    pub fn max_inbound_bytes(self, bytes: usize) -> Self {
        self.map(|b| b.max_inbound_bytes(bytes))
    }

    /// As [`sockjs::Builder::shutdown_timeout`].
    pub fn shutdown_timeout(self, timeout: Duration) -> Self {
        self.map(|b| b.shutdown_timeout(timeout))
    }

    /// Spawns the server's tasks (one per connection, per session its handler, one timer)
    /// with `spawn`, which must run each future to completion on some executor without
    /// blocking the caller.
    pub fn spawner<S>(self, spawn: S) -> Self
    where
        S: Fn(Task) + Send + Sync + 'static,
    {
        self.map(|b| {
            b.with_runtime(Arc::new(AsyncIo {
                spawner: Some(Arc::new(spawn)),
            }))
        })
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

    /// As [`sockjs::Builder::bind`].
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<Server> {
        self.inner.bind(addr).await
    }

    /// As [`sockjs::Builder::listen`]. Running fails at once without a spawner (neither
    /// runtime feature is enabled and [`Builder::spawner`] was not called).
    pub fn listen(self, listener: TcpListener) -> Server {
        self.inner.listen(listener)
    }
}
