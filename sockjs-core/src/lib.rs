//! A sans-IO SockJS server: every SockJS transport, WebSockets, sessions and their timers,
//! as a deterministic state machine with no I/O, no clock and no threads.
//!
//! The adapter (such as `sockjs-tokio`) accepts connections, feeds their bytes to a
//! [`Server`], writes what [`Server::poll_transmit`] returns, runs one timer for
//! [`Server::poll_timeout`], and hands [`Event`]s to the application, which answers with
//! [`Server::send`] and [`Server::close`]. Every call takes the current `Instant`; the
//! same inputs give the same outputs, which makes the core testable with a virtual clock,
//! fuzzable, and embeddable in any event loop.
//!
//! ```
//! use std::time::{Instant, SystemTime};
//! use sockjs_core::{Config, Event, Options, Server};
//!
//! let now = Instant::now();
//! let config = Config::new().endpoint("/echo", Options::default());
//! let mut server = Server::new(config, now, SystemTime::now(), Box::new(|| 4));
//! let conn = server.accept(now, "127.0.0.1:50000".parse().unwrap());
//! server.handle_bytes(now, conn, b"POST /echo/000/abc/xhr HTTP/1.1\r\nHost: x\r\n\r\n");
//! let reply = server.poll_transmit().unwrap();
//! assert!(reply.data.ends_with(b"\r\n\r\no\n"));
//! assert!(matches!(server.poll_event(), Some(Event::Opened { .. })));
//! ```
//!
//! Layers, each usable alone: [`http`] (request decoding, response encoding), [`ws`]
//! (WebSocket codecs), [`frame`] (SockJS frames and escaping), [`payload`] (what clients
//! send), [`transport`] (per-transport wire shapes), [`route`], and the [`Server`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod arena;
pub mod config;
pub mod event;
pub mod frame;
mod headers;
pub mod http;
pub mod pages;
pub mod payload;
pub mod route;
mod server;
mod session;
mod timer;
pub mod transport;
pub mod ws;

pub use config::{Config, Endpoint, Limits, Options};
pub use event::{After, CloseReason, ConnectionId, Error, Event, RequestInfo, SessionId, Transmit};
pub use server::{Entropy, Server};

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
