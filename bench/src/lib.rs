//! Benchmark support for sockjs-rs: the pieces the load generator and the raw reference
//! servers share.
//!
//! Everything here talks to servers on this machine only; the binaries take the address on
//! the command line and the driver script (`bench/run`) only ever passes 127.0.0.1.
//! Every reader in here treats the peer as hostile: sizes are bounded and malformed input
//! is an error, never a panic.

pub mod chunked;
pub mod cli;
pub mod histogram;
pub mod http_client;
pub mod procfs;
pub mod rng;
pub mod sockjs;
pub mod summary;
pub mod ws_client;
