#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod runtime;

pub use runtime::Tokio;
pub use sockjs::api::*;
/// SockJS as a tower service for axum and hyper (the `tower` feature).
#[cfg(feature = "tower")]
pub use sockjs::service;

/// Opens a SockJS client session to `url` on tokio (see [`sockjs::client::connect`]): call it
/// inside a tokio runtime.
pub async fn connect(url: &str, options: ClientOptions) -> Result<ClientSession, ConnectError> {
    sockjs::client::connect(std::sync::Arc::new(Tokio), url, options).await
}

/// Builds a [`Server`]: endpoints (prefix, options, handler) and limits.
pub type Builder = sockjs::Builder<Tokio>;

/// A SockJS server on one listener, on tokio; [`Server::run`](sockjs::Server::run) serves
/// until shutdown.
pub type Server = sockjs::Server<Tokio>;
