//! SockJS on tokio: one listener serving any number of SockJS endpoints, each with its
//! options and handler, driving the `sockjs-core` state machine.
//!
//! ```no_run
//! use sockjs_tokio::{Options, Server};
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = Server::builder()
//!     .endpoint("/echo", Options::default(), |mut session| async move {
//!         while let Some(message) = session.recv().await {
//!             if session.send(&message).is_err() {
//!                 break;
//!             }
//!         }
//!     })
//!     .bind("127.0.0.1:8081")
//!     .await?;
//! server.run().await
//! # }
//! ```
//!
//! A [`Session`] is a stream of the client's messages (`recv`, or `futures_core::Stream`)
//! that can also `send`, `send_wait` (waiting while the client lags), `close(code, reason)`
//! and show the `request` that opened it; its [`SessionHandle`] does the same from other
//! tasks. The [`Callbacks`] trait is the event-style alternative (`on_open`, `on_message`,
//! `on_close`).
//!
//! Everything above the runtime is the [`sockjs`] crate's; this one is its [`Runtime`]
//! on tokio. A server's tasks are spawned on the tokio runtime its `run` is polled on.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod runtime;

pub use runtime::Tokio;
pub use sockjs::{
    Callbacks, CloseReason, Limits, Options, RequestInfo, Runtime, ServerHandle, Session,
    SessionError, SessionHandle, SessionId,
};

/// Builds a [`Server`]: endpoints (prefix, options, handler) and limits.
pub type Builder = sockjs::Builder<Tokio>;

/// A SockJS server on one listener, on tokio; [`Server::run`](sockjs::Server::run) serves
/// until shutdown.
pub type Server = sockjs::Server<Tokio>;
