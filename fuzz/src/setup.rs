//! The configuration the whole-server targets (`server`, `exchange`) read from the first 13
//! bytes of their input: small limits, so that every bound gets hit.
//!
//! ```text
//! setup = heartbeat disconnect response_limit ping_timeout max_sessions max_connections
//!         max_queued_bytes max_queued_messages max_unflushed max_frame max_message
//!         max_body max_head
//! ```
//!
//! One byte each, scaled; bit 7 of `max_head` turns permessage-deflate on for `/echo`, bit 7
//! of `max_body` asks for no context takeover both ways, bit 7 of `max_message` for a
//! minimum message size of 0; the memory budget is 64 + 40 x the `max_queued_bytes` byte,
//! about 2.5 send queues (plus one connection's deflate state when compression is on with
//! context takeover). Two endpoints: `/echo` (every transport) and `/strict` (no
//! WebSocket, a cookie needed, one allowed origin), each with the authorization and binding
//! [`Security`] gives it.

use std::time::Duration;

use sockjs_core::ws::deflate::{DEFLATER_MEMORY, DeflateConfig, INFLATER_MEMORY};
use sockjs_core::{Config, Limits, Options};

use crate::peer::Security;

/// The configuration for `setup` and `security`.
pub fn config(setup: [u8; 13], security: &Security) -> Config {
    let [
        heartbeat,
        disconnect,
        response_limit,
        ping_timeout,
        max_sessions,
        max_connections,
        max_queued_bytes,
        max_queued_messages,
        max_unflushed,
        max_frame,
        max_message,
        max_body,
        max_head,
    ] = setup.map(usize::from);
    let compression = (max_head & 0x80 != 0).then(|| DeflateConfig {
        server_no_context_takeover: max_body & 0x80 != 0,
        client_no_context_takeover: max_body & 0x80 != 0,
        min_message_size: if max_message & 0x80 != 0 { 0 } else { 64 },
        ..DeflateConfig::default()
    });
    let (max_head, max_body, max_message) = (max_head & 0x7f, max_body & 0x7f, max_message & 0x7f);
    let ms = |n: usize, unit: usize| Duration::from_millis((50 + n * unit) as u64);
    let echo = Options::default()
        .heartbeat_delay(ms(heartbeat, 40))
        .disconnect_delay(ms(disconnect, 40))
        .response_limit(response_limit * 32)
        .websocket_ping_timeout((ping_timeout != 0).then(|| ms(ping_timeout, 40)))
        .compression(compression);
    let echo = security.apply(0, echo);
    let strict = Options::default()
        .websocket(false)
        .cookie_needed(true)
        .heartbeat_delay(ms(heartbeat, 20))
        .disconnect_delay(ms(disconnect, 20))
        .allowed_origins(["http://good.example"]);
    let strict = security.apply(1, strict);
    let mut limits = Limits::default();
    limits.max_head_size = 256 + max_head * 8;
    limits.max_headers = 24;
    limits.max_body_size = max_body * 8;
    limits.max_frame_size = max_frame * 4;
    limits.max_message_size = max_message * 8;
    limits.max_queued_bytes = max_queued_bytes * 16;
    limits.max_queued_messages = max_queued_messages % 32;
    limits.max_sessions = 1 + max_sessions % 6;
    limits.max_connections = 1 + max_connections % 8;
    limits.max_unflushed_bytes = max_unflushed * 32;
    // A small budget, about two and a half send queues, so that it bites; with compression,
    // room on top for one connection's deflate state, which the budget charges from the
    // handshake on (a second connection with context takeover is answered without it).
    let takeover = compression
        .as_ref()
        .is_some_and(|c| !c.server_no_context_takeover || !c.client_no_context_takeover);
    let deflate_room = if takeover {
        DEFLATER_MEMORY + INFLATER_MEMORY
    } else {
        0
    };
    limits.max_buffered_bytes = 64 + max_queued_bytes * 40 + deflate_room;
    limits.request_timeout = Duration::from_secs(3);
    limits.keep_alive_timeout = Duration::from_secs(8);
    limits.write_timeout = Duration::from_secs(5);
    limits.close_timeout = Duration::from_secs(2);
    security.limits(&mut limits);
    security.config(
        Config::new()
            .endpoint("/echo", echo)
            .endpoint("/strict", strict)
            .limits(limits),
    )
}
