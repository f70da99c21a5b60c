//! A sans-IO SockJS server.
#![forbid(unsafe_code)]

pub mod ws;
