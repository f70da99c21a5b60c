//! SockJS on any async runtime: one listener serving any number of SockJS endpoints, each
//! with its options and handler, driving the [`sockjs_core`] state machine.
//!
//! This crate is everything above the runtime, written once: sessions and their handles,
//! the callbacks, the builder, the server and its graceful shutdown, the connection tasks
//! and the driver that feeds the core and routes its output. What it needs of a runtime is
//! the small [`Runtime`] trait (spawn, a resettable timer, a listener, readiness-based
//! sockets). `sockjs-tokio` and `sockjs-async-std` implement it; most applications use one
//! of those, whose `Server::builder()` starts on their runtime.
//!
//! ```no_run
//! # async fn run(runtime: std::sync::Arc<dyn sockjs::Runtime>) -> std::io::Result<()> {
//! use sockjs::{Builder, Options};
//!
//! let server = Builder::<()>::new(runtime)
//!     .endpoint("/echo", Options::default(), |mut session| async move {
//!         while let Some(message) = session.recv().await {
//!             // Waits while the client lags instead of overflowing its queue.
//!             if session.send_wait(&message).await.is_err() {
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
//! that can also `send` (at once, failing when the client's queue overflows), `send_wait`
//! (waiting for room; also as a `futures_sink::Sink`), `close(code, reason)` and show the
//! `request` that opened it; its [`SessionHandle`] does the same from other tasks. The
//! [`Callbacks`] trait is the event-style alternative (`on_open`, `on_message`, `on_close`).
//!
//! [`Topics`] are named groups of sessions: `subscribe`, `unsubscribe`, `publish` (encoded
//! once per node), across several nodes through a [`topics::Backend`] (Redis pub/sub with
//! the `redis` feature; docs/TOPICS.md).
//!
//! The [`client`] module is the other end: [`client::connect`] opens a session to any SockJS
//! server (websocket, xhr_streaming, eventsource or xhr polling, with sockjs-client's
//! fallback) and returns a [`client::ClientSession`] of the same shape.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod authorize;
mod callbacks;
pub mod client;
mod connection;
mod driver;
mod inbox;
#[cfg(feature = "lock-stats")]
mod lock_stats;
#[cfg(feature = "metrics")]
mod metrics;
mod output;
mod rt;
mod server;
#[cfg(feature = "tower")]
pub mod service;
mod session;
mod signal;
pub mod topics;

pub use bytes;

/// The application's side of the API, as each runtime binding re-exports it.
pub mod api {
    /// The client: what `connect` takes and gives.
    pub use crate::client::{
        ClientError, ClientOptions, ClientSession, Close, ClosedBy, ConnectError, ErrorKind,
        Transport, UsageError,
    };
    pub use crate::topics;
    pub use crate::{
        Callbacks, CloseKind, CloseReason, Decision, Limit, Limits, Options, RefusalCause,
        RequestInfo, Runtime, ServerHandle, Session, SessionBinding, SessionError, SessionHandle,
        SessionId, SessionStats, SessionTransport, Stats, TopicError, Topics,
    };
}
pub use authorize::Decision;
pub use callbacks::Callbacks;
#[cfg(feature = "lock-stats")]
pub use lock_stats::{LockStats, lock_stats};
pub use rt::{AsyncListener, AsyncSocket, AsyncTimer, Connecting, Runtime, Task};
pub use server::{Binding, Builder, Server, ServerHandle};
pub use session::{Session, SessionError, SessionHandle};
pub use sockjs_core::{
    CloseKind, Limit, Notice, RefusalCause, SessionStats, SessionTransport, Stats,
};
pub use sockjs_core::{CloseReason, Limits, Options, RequestInfo, SessionBinding, SessionId};
pub use topics::{TopicError, Topics};
