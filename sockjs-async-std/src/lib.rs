//! SockJS on async-std or smol: one listener serving any number of SockJS endpoints, each
//! with its options and handler, driving the [`sockjs_core`] state machine.
//!
//! Built on the layer both runtimes share (`async-io` for sockets and timers,
//! `async-channel`, `futures-lite`), so the crate runs under either; only spawning is the
//! runtime's, and the builder takes it: [`Builder::spawn_with_async_std`] (the default with
//! the `async-std` feature), [`Builder::spawn_with_smol`], or any executor through
//! [`Builder::spawner`].
//!
//! ```no_run
//! use sockjs_async_std::{Options, Server};
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
//! that can also `send`, `close(code, reason)` and show the `request` that opened it; its
//! [`SessionHandle`] does the same from other tasks. The [`Callbacks`] trait is the
//! event-style alternative (`on_open`, `on_message`, `on_close`). The API is that of
//! `sockjs-tokio`, name for name.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod connection;
mod driver;
mod server;
mod session;

pub use server::{Builder, Server, ServerHandle};
pub use session::{Callbacks, Session, SessionError, SessionHandle};
pub use sockjs_core::{CloseReason, Limits, Options, RequestInfo, SessionId};

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
