//! `proptest` strategies for the core's inputs: byte streams cut at arbitrary points,
//! messages full of the characters SockJS escapes, receiving transports, and what a client
//! does between the server's writes.
//!
//! ```
//! use proptest::prelude::*;
//! use sockjs_core::testing::strategies::{message, pieces};
//! use sockjs_core::testing::{Harness, client_messages, session_url};
//!
//! proptest!(|(text in message(), cuts in pieces(16, 8))| {
//!     let mut h = Harness::echo();
//!     let url = session_url("s");
//!     h.xhr(&url);
//!     let session = h.opened();
//!     let send = client_messages(&[&text]);
//!     let bytes = sockjs_core::testing::request_bytes(
//!         "POST", &format!("{url}/xhr_send"), &[], send.as_bytes());
//!     let conn = h.connect();
//!     h.send_in_pieces(conn, &bytes, &cuts);
//!     prop_assert_eq!(h.messages(session), vec![text]);
//! });
//! ```

use std::time::Duration;

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;

use super::harness::Harness;
use super::http_client::Receiver;
use crate::ConnectionId;

/// A config running `cases` cases, or `PROPTEST_CASES` when that is set (for long runs).
pub fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Piece sizes for [`Harness::send_in_pieces`]: 1 to `most` sizes, each from 1 to
/// `largest`, repeated until the bytes run out.
pub fn pieces(largest: usize, most: usize) -> impl Strategy<Value = Vec<usize>> {
    vec(1..=largest.max(1), 1..=most.max(1))
}

/// `bytes` cut at up to 32 arbitrary points: the pieces, in order, joined give `bytes`;
/// none is empty unless `bytes` is. Send each with [`Harness::send_bytes`].
///
/// ```
/// use proptest::prelude::*;
/// use sockjs_core::testing::strategies::split;
///
/// let request = b"GET /echo/info HTTP/1.1\r\n\r\n".to_vec();
/// proptest!(|(pieces in split(request.clone()))| {
///     prop_assert!(pieces.iter().all(|p| !p.is_empty()));
///     prop_assert_eq!(pieces.concat(), request.clone());
/// });
/// ```
pub fn split(bytes: Vec<u8>) -> BoxedStrategy<Vec<Vec<u8>>> {
    if bytes.len() < 2 {
        return Just(vec![bytes]).boxed();
    }
    let len = bytes.len();
    btree_set(1..len, 0..=(len - 1).min(32))
        .prop_map(move |cuts| {
            let mut out = Vec::with_capacity(cuts.len() + 1);
            let mut from = 0;
            for at in cuts.into_iter().chain([len]) {
                out.push(bytes[from..at].to_vec());
                from = at;
            }
            out
        })
        .boxed()
}

/// A character a SockJS message may hold, weighted towards those the protocol treats
/// specially: JSON's `"` and `\`, control characters, the ranges SockJS escapes as `\uXXXX`
/// (U+200C-200F, U+2028-202F, U+2060-206F, U+FFF0-FFFF), characters outside the BMP (sent
/// as escaped surrogate pairs), and the `%`, CR and NUL that `eventsource` escapes.
pub fn awkward_char() -> impl Strategy<Value = char> {
    let range = |lo: u32, hi: u32| (lo..=hi).prop_filter_map("a char", char::from_u32);
    prop_oneof![
        4 => range(0x20, 0x7e),
        2 => prop_oneof![Just('"'), Just('\\'), Just('%'), Just('\r'), Just('\n'), Just('\0')],
        1 => range(0x00, 0x1f),
        1 => range(0x7f, 0x9f),
        1 => range(0x200c, 0x200f),
        1 => range(0x2028, 0x202f),
        1 => range(0x2060, 0x206f),
        1 => range(0xfff0, 0xffff),
        1 => range(0x1_0000, 0x10_ffff),
        1 => any::<char>(),
    ]
}

/// A message of up to 40 [`awkward_char`]s (perhaps empty).
pub fn message() -> impl Strategy<Value = String> {
    vec(awkward_char(), 0..=40).prop_map(String::from_iter)
}

/// 1 to `most` [`message`]s.
pub fn messages(most: usize) -> impl Strategy<Value = Vec<String>> {
    vec(message(), 1..=most.max(1))
}

/// Any of the five HTTP [`Receiver`]s.
pub fn receiver() -> impl Strategy<Value = Receiver> {
    prop_oneof![
        Just(Receiver::Xhr),
        Just(Receiver::Jsonp),
        Just(Receiver::XhrStreaming),
        Just(Receiver::EventSource),
        Just(Receiver::HtmlFile),
    ]
}

/// Something a client does, or lets happen, while the application talks to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// Virtual time passes ([`Harness::advance`]).
    Advance(Duration),
    /// The client stops reading ([`Harness::stop_reading`]).
    StopReading,
    /// The client reads everything again ([`Harness::resume_reading`]).
    ResumeReading,
    /// The client reads this many bytes ([`Harness::client_reads`]).
    Read(usize),
    /// The connection is lost ([`Harness::client_closes`]).
    Drop,
}

impl ClientOp {
    /// Does it on `conn` (a connection already closed is not closed again).
    ///
    /// # Panics
    ///
    /// As the [`Harness`] method it stands for.
    #[track_caller]
    pub fn apply(&self, h: &mut Harness, conn: ConnectionId) {
        match self {
            ClientOp::Advance(d) => h.advance(*d),
            ClientOp::StopReading => h.stop_reading(conn),
            ClientOp::ResumeReading => h.resume_reading(conn),
            ClientOp::Read(n) => h.client_reads(conn, *n),
            ClientOp::Drop => {
                if h.closed(conn).is_none() {
                    h.client_closes(conn);
                }
            }
        }
    }
}

/// A [`ClientOp`]: time jumps of up to `longest`, reads of up to 600 bytes, stalls and
/// resumes, and (if `drops`) a rarer lost connection.
pub fn client_op(longest: Duration, drops: bool) -> BoxedStrategy<ClientOp> {
    let longest = u64::try_from(longest.as_millis()).unwrap_or(u64::MAX);
    let ops = prop_oneof![
        2 => (0..=longest).prop_map(|t| ClientOp::Advance(Duration::from_millis(t))),
        1 => Just(ClientOp::StopReading),
        1 => Just(ClientOp::ResumeReading),
        2 => (0usize..600).prop_map(ClientOp::Read),
    ];
    if drops {
        prop_oneof![6 => ops, 1 => Just(ClientOp::Drop)].boxed()
    } else {
        ops.boxed()
    }
}
