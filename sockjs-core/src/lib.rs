//! A sans-IO SockJS server: every SockJS transport, WebSockets, sessions and their timers,
//! as a deterministic state machine with no I/O, no clock, no threads and no randomness.
//!
//! A host (the `sockjs` crate's async layer, or any event loop) accepts connections, feeds
//! their bytes to a [`Server`], writes what [`Server::output`] holds when [`Server::poll_io`]
//! says so, runs one timer for [`Server::poll_timeout`], and hands [`Event`]s to the
//! application, which answers with [`Server::send`] and [`Server::close`]. Every call takes
//! the current `Instant`; the same inputs give the same outputs, which makes the core
//! testable with a virtual clock, fuzzable, and embeddable anywhere. The whole run-loop
//! contract is on [`Server`]; `examples/event_loop.rs` is a complete host on `mio`.
//!
//! ```
//! use std::time::{Instant, SystemTime};
//! use sockjs_core::{Config, Event, Io, Options, Server};
//!
//! let now = Instant::now();
//! let config = Config::new().endpoint("/echo", Options::default());
//! let mut server = Server::new(config, now, SystemTime::now(), Box::new(|| 4));
//! let conn = server.accept(now, "127.0.0.1:50000".parse().unwrap());
//! server.handle_bytes(now, conn, b"POST /echo/000/abc/xhr HTTP/1.1\r\nHost: x\r\n\r\n");
//! assert!(matches!(server.poll_event(), Some(Event::Opened { .. })));
//! assert_eq!(server.poll_io(), Some(Io::Write(conn)));
//! let reply: Vec<u8> = server.output(conn).concat();
//! assert!(reply.ends_with(b"\r\n\r\no\n"));
//! // The socket took it all: the connection is idle again, waiting for the next poll.
//! server.handle_written(now, conn, reply.len());
//! assert_eq!(server.output_len(conn), 0);
//! ```
//!
//! Along the data path: [`http`] (request decoding, response encoding), the server's
//! dispatch (routing under a prefix, see [`route`]), then [`transport`] (each transport's
//! wire shapes) or [`ws`] (WebSocket codecs), with [`frame`] (SockJS frames and escaping)
//! and [`payload`] (what clients send); [`io`] is the contract with the host, and
//! [`stats`] what the server counts for its operator ([`Server::stats`],
//! [`Server::session_stats`], [`Server::poll_notice`]).
//!
//! # Features
//!
//! - `testing` (off by default): the `testing` module, a virtual-clock harness with scripted
//!   byte-level clients and `proptest` strategies, for applications to test their SockJS
//!   logic with time jumps, no sockets and no sleeps. Brings in `proptest`; meant for
//!   `[dev-dependencies]`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod config;
mod forwarded;
pub mod frame;
pub mod http;
pub mod io;
pub mod pages;
pub mod payload;
pub mod route;
mod server;
pub mod stats;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;
pub mod ws;

pub use bytes;
pub use config::{Config, Endpoint, IpRange, LimitError, Limits, Options, SessionBinding};
pub use io::{
    Authorization, CloseReason, ConnectionId, Error, Event, Io, RequestExtras, RequestInfo,
    Response, ResponseBody, SessionId,
};
pub use server::{Entropy, Server};
pub use stats::{CloseKind, Limit, Notice, RefusalCause, SessionStats, SessionTransport, Stats};

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
