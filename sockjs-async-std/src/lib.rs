#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod runtime;

pub use builder::Builder;
pub use runtime::AsyncIo;
pub use sockjs::api::*;

/// A SockJS server on one listener, on async-std or smol;
/// [`Server::run`](sockjs::Server::run) serves until shutdown.
pub type Server = sockjs::Server<AsyncIo>;
