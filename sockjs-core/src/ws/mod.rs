//! WebSocket codecs: RFC 6455 and legacy hixie-76 frames, handshake answers,
//! and the RFC 7692 permessage-deflate extension.
//!
//! Pure functions and incremental decoders over bytes; the handshake's HTTP
//! side and the connection state live elsewhere. Both decoders report what a
//! client sent as [`Incoming`] and refuse bad input with a [`ProtocolError`]
//! carrying the close code to answer with, so a caller treats them alike.

pub mod deflate;
pub mod frame;
pub mod hixie76;
pub mod md5;

pub use frame::{FrameDecoder, Incoming, Limits, ProtocolError, accept_key, is_valid_close_code};
pub use hixie76::Hixie76Decoder;
