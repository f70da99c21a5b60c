#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod runtime;

pub use runtime::Tokio;
pub use sockjs::api::*;
/// SockJS as a tower service for axum and hyper (the `tower` feature).
#[cfg(feature = "tower")]
pub use sockjs::service;

/// Builds a [`Server`]: endpoints (prefix, options, handler) and limits.
pub type Builder = sockjs::Builder<Tokio>;

/// A SockJS server on one listener, on tokio; [`Server::run`](sockjs::Server::run) serves
/// until shutdown.
pub type Server = sockjs::Server<Tokio>;
