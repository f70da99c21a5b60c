//! Shared pieces of the fuzz targets: cutting input into feeds, writing the bytes a client
//! sends (HTTP requests, WebSocket frames), and a harness that drives a whole
//! `sockjs_core::Server` the way an adapter would while checking its invariants.
//!
//! Every check is an `assert!`: libFuzzer reports a failed assertion like any other panic,
//! with the input that caused it.
#![forbid(unsafe_code)]

pub mod client;
pub mod harness;
pub mod peer;
pub mod setup;
pub mod split;
pub mod ws_read;
