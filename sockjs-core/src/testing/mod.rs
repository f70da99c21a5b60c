//! Testing SockJS logic without sockets, sleeps or threads: a virtual-clock [`Harness`]
//! that drives a [`Server`](crate::Server) exactly as a host would, clients that speak raw
//! HTTP/1.1 and WebSocket bytes, and [`strategies`] for property tests.
//!
//! Enabled by the `testing` feature (which brings in `proptest`); meant for
//! `[dev-dependencies]`:
//!
//! ```toml
//! [dev-dependencies]
//! sockjs-core = { version = "0.1", features = ["testing"] }
//! ```
//!
//! The harness owns the clock: [`Harness::advance`] jumps from one deadline the server asks
//! for to the next, so a test of a 25-second heartbeat or a 5-second disconnect delay runs
//! in microseconds and always the same way. Between calls the test plays both sides: the
//! application, answering [`Event`](crate::Event)s with [`Harness::app_send`] and friends
//! (or with its own code given `&mut Harness`), and the clients, sending requests and frames
//! and reading back the bytes the server wrote, parsed byte for byte ([`Response`],
//! [`WsFrame`], [`HixieFrame`]).
//!
//! The helpers assume the endpoint [`Harness::echo`] creates, `/echo`, where a prefix is
//! needed ([`session_url`]); [`Harness::new`] takes any [`Config`](crate::Config).
//!
//! # Example
//!
//! An application that answers every message in upper case, tested over `xhr` polling, and a
//! session that times out when its client stops polling:
//!
//! ```
//! use sockjs_core::testing::{Harness, client_messages, frame_messages, secs, session_url};
//! use sockjs_core::{CloseReason, Event};
//!
//! /// The application under test.
//! fn shout(h: &mut Harness) {
//!     for event in h.take_events() {
//!         if let Event::Message { session, text, .. } = event {
//!             h.app_send(session, &text.to_uppercase());
//!         }
//!     }
//! }
//!
//! let mut h = Harness::echo();
//! let url = session_url("abc");
//! assert_eq!(h.xhr(&url), "o\n");
//! let session = h.opened();
//! h.xhr_send(&url, &client_messages(&["hello", "wörld"]));
//! shout(&mut h);
//! assert_eq!(frame_messages(&h.xhr(&url)), Some(vec!["HELLO".into(), "WÖRLD".into()]));
//!
//! // No poll for longer than the disconnect delay (5 s): the session times out. Nothing
//! // sleeps; the harness jumps to the server's deadline.
//! h.advance(secs(6));
//! assert_eq!(h.take_events(), [Event::Closed { session, reason: CloseReason::TimedOut }]);
//! ```
//!
//! The integration test `tests/app_logic.rs` of this crate is a longer example: a chat
//! broadcasting to sessions on several transports, and a property test over message
//! contents with [`strategies`].
//!
//! # Panics
//!
//! This is test code: a harness method named after an expectation panics, with a message
//! saying what was expected and what arrived, when the expectation fails, and the harness
//! panics when the server breaks its host contract. Each method's docs say when.

mod harness;
mod http_client;
pub mod strategies;
mod ws_client;

use std::time::Duration;

use bytes::BytesMut;

use crate::Limits;

pub use harness::{After, Harness};
pub use http_client::{
    BodyMode, Receiver, Response, parse_chunk, parse_head, parse_response, request_bytes,
};
pub use ws_client::{
    HixieFrame, MASK, SUITE_WS_ACCEPT, SUITE_WS_KEY, WsFrame, parse_ws_frame, ws_frame, ws_headers,
};

/// The wall clock every harness's server is created with, in seconds since the Unix epoch:
/// Tue, 14 Nov 2023 22:13:20 GMT.
pub const WALL_CLOCK_SECS: u64 = 1_700_000_000;
/// The `Expires` of a response cached for a year, sent at [`WALL_CLOCK_SECS`].
pub const EXPIRES_AT_START: &str = "Wed, 13 Nov 2024 22:13:20 GMT";
/// The `Cache-Control` of every response that must not be cached.
pub const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";

/// `/echo/000/<id>`: the URL of session `id` on the `/echo` endpoint, to which the
/// transport's name is appended (`/xhr`, `/websocket`, ...).
pub fn session_url(id: &str) -> String {
    format!("/echo/000/{id}")
}

/// The default [`Limits`] changed by `f` (`Limits` is not built field by field).
pub fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

/// Decodes one request from the front of `bytes` as the built-in HTTP/1 path would, with
/// bounds too large to refuse anything: what a host's own HTTP stack would hand over to
/// [`crate::Server::handle_request`] for those bytes. Returns the request and the bytes after
/// it (for an upgrade, the first bytes of the upgraded stream).
///
/// # Panics
///
/// If `bytes` does not start with a whole request.
#[track_caller]
pub fn decode_request(bytes: &[u8]) -> (crate::http::Request, Vec<u8>) {
    let mut decoder = crate::http::RequestDecoder::new(crate::http::DecoderLimits {
        max_head_size: usize::MAX,
        max_headers: crate::http::request::MAX_HEADERS_CAP,
        max_body_size: usize::MAX,
    });
    decoder.feed(bytes);
    match decoder.decode() {
        Ok(Some(request)) => (request, decoder.take_remaining().to_vec()),
        other => panic!("not a whole request ({other:?}): {:?}", lossy(bytes)),
    }
}

/// A request built field by field, as a host's own HTTP stack hands one over to
/// [`crate::Server::handle_request`]: HTTP/1.1, keep-alive, the headers in order.
pub fn request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> crate::http::Request {
    crate::http::Request {
        method: crate::http::Method::from_bytes(method.as_bytes()),
        target: bytes::Bytes::copy_from_slice(target.as_bytes()),
        version: crate::http::Version::Http11,
        headers: headers
            .iter()
            .map(|(n, v)| crate::http::Header {
                name: bytes::Bytes::copy_from_slice(n.as_bytes()),
                value: bytes::Bytes::copy_from_slice(v.as_bytes()),
            })
            .collect(),
        body: bytes::Bytes::copy_from_slice(body),
        keep_alive: true,
    }
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Bytes as text for assertion messages, invalid UTF-8 replaced.
pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What a SockJS client sends for `messages`: a JSON array of strings, quoted as the server
/// quotes (a body for [`Harness::xhr_send`], a text for [`Harness::ws_send_text`]).
pub fn client_messages(messages: &[&str]) -> String {
    let mut out = BytesMut::new();
    out.extend_from_slice(b"[");
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",");
        }
        crate::frame::quote(m, &mut out);
    }
    out.extend_from_slice(b"]");
    // Quoting escapes into ASCII, and the rest is copied from `&str`s: always UTF-8.
    String::from_utf8_lossy(&out).into_owned()
}

/// The messages of an `a[...]` frame, escapes decoded, or None if `frame` is another frame
/// or broken. One trailing newline (as polling and `xhr_streaming` send) is allowed.
pub fn frame_messages(frame: &str) -> Option<Vec<String>> {
    let frame = frame.strip_suffix('\n').unwrap_or(frame);
    crate::payload::parse_array(frame.strip_prefix('a')?.as_bytes()).ok()
}
