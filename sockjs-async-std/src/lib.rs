#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod runtime;

pub use builder::Builder;
pub use runtime::AsyncIo;
pub use sockjs::api::*;

/// Opens a SockJS client session to `url` (see [`sockjs::client::connect`]), its tasks
/// spawned on async-std's executor (smol's without the `async-std` feature).
pub async fn connect(url: &str, options: ClientOptions) -> Result<ClientSession, ConnectError> {
    let runtime = AsyncIo {
        spawner: builder::default_spawner(),
    };
    sockjs::client::connect(std::sync::Arc::new(runtime), url, options).await
}

/// [`connect`], its tasks spawned on smol's executor.
#[cfg(feature = "smol")]
pub async fn connect_with_smol(
    url: &str,
    options: ClientOptions,
) -> Result<ClientSession, ConnectError> {
    let runtime = AsyncIo {
        spawner: Some(std::sync::Arc::new(builder::spawn_on_smol)),
    };
    sockjs::client::connect(std::sync::Arc::new(runtime), url, options).await
}

/// A SockJS server on one listener, on async-std or smol;
/// [`Server::run`](sockjs::Server::run) serves until shutdown.
pub type Server = sockjs::Server<AsyncIo>;
