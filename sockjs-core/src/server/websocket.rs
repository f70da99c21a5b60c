//! WebSocket connections: the upgrade (RFC 6455 versions 13, 8 and 7, and hixie-76), frames
//! in and out, pings, and the closing handshake. A SockJS WebSocket session lives exactly as
//! long as its connection; the raw `/websocket` endpoint carries messages without SockJS
//! framing. An endpoint with [`Options::compression`](crate::Options::compression) accepts
//! a permessage-deflate offer in RFC 6455 handshakes (never hixie-76): the connection then
//! inflates compressed input within `max_message_size`, compresses text frames of at least
//! the configured size (control frames never), and counts its deflate state in the server's
//! total.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::Server;
use super::connection::{Closing, ConnState};
use super::headers::ResponseContext;
use super::receiver::{Frame, heartbeat_deadline};
use super::session::{Session, SessionKind};
use crate::frame;
use crate::http::{BodyFraming, Request};
use crate::io::{CloseReason, ConnectionId, Event, RequestInfo, SessionId};
use crate::stats::{Limit, RefusalCause, SessionTransport};
use crate::ws::deflate::{self, DeflateConfig, DeflateParams, Deflater, Inflater};
use crate::ws::{self, FrameDecoder, Hixie76Decoder, Incoming, ProtocolError};

/// A connection switched to WebSocket.
pub(super) struct WsConnection {
    pub(super) session: SessionId,
    decoder: Decoder,
    /// permessage-deflate, when negotiated: the server's compressor (the inflater is in the
    /// decoder) and the memory both hold.
    deflate: Option<Box<WsDeflate>>,
    /// After our close frame: when to stop waiting for the peer's.
    pub(super) close_deadline: Option<Instant>,
}

enum Decoder {
    Rfc6455(FrameDecoder),
    Hixie76(Hixie76Decoder),
}

impl Decoder {
    fn feed(&mut self, data: &[u8]) {
        match self {
            Decoder::Rfc6455(d) => d.feed(data),
            Decoder::Hixie76(d) => d.feed(data),
        }
    }

    fn next(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        match self {
            Decoder::Rfc6455(d) => d.next(),
            Decoder::Hixie76(d) => d.next(),
        }
    }

    fn is_hixie(&self) -> bool {
        matches!(self, Decoder::Hixie76(_))
    }
}

/// The permessage-deflate side of one connection that negotiated it.
struct WsDeflate {
    deflater: Deflater,
    params: DeflateParams,
    /// The endpoint's compression level, which with `params` decides the compressed bytes.
    level: u32,
    held: Held,
}

/// Bytes of deflate state one connection holds, counted in the server's running total
/// ([`Server::deflate_memory`]) for as long as the connection lives, and the most it may
/// hold, charged to the memory budget ([`Server::buffered_bytes`]) from the agreement on:
/// dropping it (whichever way the connection state goes) takes both shares out.
struct Held {
    total: Arc<AtomicUsize>,
    bytes: usize,
    reserved_total: Arc<AtomicUsize>,
    reserved: usize,
}

impl Held {
    fn set(&mut self, bytes: usize) {
        if bytes > self.bytes {
            self.total.fetch_add(bytes - self.bytes, Ordering::Relaxed);
        } else if bytes < self.bytes {
            self.total.fetch_sub(self.bytes - bytes, Ordering::Relaxed);
        }
        self.bytes = bytes;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.set(0);
        self.reserved_total
            .fetch_sub(self.reserved, Ordering::Relaxed);
    }
}

/// The most deflate state a connection with `params` holds between calls: a compressor with
/// the server's context takeover, a decompressor with the client's. Without context
/// takeover the state lives for one message within a call and is never held.
pub(super) fn deflate_reservation(params: &DeflateParams) -> usize {
    let deflater = if params.server_no_context_takeover {
        0
    } else {
        deflate::DEFLATER_MEMORY
    };
    let inflater = if params.client_no_context_takeover {
        0
    } else {
        deflate::INFLATER_MEMORY
    };
    deflater + inflater
}

/// One message being broadcast by [`Server::send_many`]: its compressed frames, made once
/// and copied to every connection that compresses alike (no context takeover, same level).
#[derive(Default)]
pub(super) struct Broadcast {
    /// The message as queued for SockJS sessions and for raw ones (the same allocations the
    /// queues hold, so a batch carrying it is known by pointer).
    pub(super) quoted: Option<Bytes>,
    pub(super) raw: Option<Bytes>,
    /// Compressed frames made so far: (raw, level, frame).
    frames: Vec<(bool, u32, Bytes)>,
}

impl Broadcast {
    fn carries(&self, raw: bool, msg: &Bytes) -> bool {
        let ours = if raw { &self.raw } else { &self.quoted };
        ours.as_ref()
            .is_some_and(|b| b.as_ptr() == msg.as_ptr() && b.len() == msg.len())
    }
}

impl WsConnection {
    /// What this connection's deflate state is charged to the memory budget.
    #[cfg(feature = "testing")]
    pub(super) fn deflate_reserved(&self) -> usize {
        self.deflate.as_ref().map_or(0, |d| d.held.reserved)
    }

    /// Brings the server's deflate total up to date with what this connection holds now.
    fn sync_deflate_memory(&mut self) {
        let Some(d) = self.deflate.as_deref_mut() else {
            return;
        };
        let inflater = match &self.decoder {
            Decoder::Rfc6455(decoder) => decoder.inflater().map_or(0, Inflater::memory),
            Decoder::Hixie76(_) => 0,
        };
        d.held.set(d.deflater.memory() + inflater);
    }
}

/// Writes one text message of `parts` (`len` bytes together) on a connection that
/// negotiated permessage-deflate: compressed if it is long enough, reusing the broadcast's
/// frame when `shared` says the message is the one being broadcast and this connection
/// compresses each message on its own. Returns whether the compressor ran.
fn write_deflated(
    out: &mut BytesMut,
    d: &mut WsDeflate,
    parts: &[&[u8]],
    len: usize,
    shared: Option<(&mut Broadcast, bool)>,
) -> bool {
    if !d.deflater.should_compress(len) {
        ws::frame::encode_text_header(out, len);
        for part in parts {
            out.put_slice(part);
        }
        return false;
    }
    let shared = shared.filter(|_| d.params.server_no_context_takeover);
    let Some((broadcast, raw)) = shared else {
        deflate::encode_compressed_text_parts(out, &mut d.deflater, parts);
        return true;
    };
    let level = d.level;
    if let Some((_, _, frame)) = broadcast
        .frames
        .iter()
        .find(|(r, l, _)| *r == raw && *l == level)
    {
        out.extend_from_slice(frame);
        return false;
    }
    let mut frame = BytesMut::new();
    deflate::encode_compressed_text_parts(&mut frame, &mut d.deflater, parts);
    out.extend_from_slice(&frame);
    broadcast.frames.push((raw, level, frame.freeze()));
    true
}

/// The bytes of a SockJS frame other than `a[...]`.
fn fixed_frame<'a>(f: &Frame<'a>) -> &'a [u8] {
    match f {
        Frame::Open => frame::OPEN,
        Frame::Heartbeat => frame::HEARTBEAT,
        Frame::Close(c) => c,
        Frame::Messages(_) => unreachable!("messages are framed as a[...]"),
    }
}

/// A hixie-76 handshake whose 101 has been sent, waiting for the 8 key bytes that follow the
/// request head (sent before them, as proxies that hold the body back require).
pub(super) struct PendingHixie {
    endpoint: usize,
    raw: bool,
    key1: String,
    key2: String,
    key3: Vec<u8>,
    info: RequestInfo,
    pub(super) started: Instant,
}

const UPGRADE_ONLY: &str = "Can \"Upgrade\" only to \"WebSocket\".";
const CONNECTION_UPGRADE: &str = "\"Connection\" must be \"Upgrade\".";

impl Server {
    /// Answers a GET on a WebSocket URL: the handshake, or the error that refuses it.
    pub(super) fn upgrade(
        &mut self,
        now: Instant,
        id: ConnectionId,
        ep: usize,
        ctx: &ResponseContext,
        req: &Request,
        raw: bool,
    ) {
        // An extended CONNECT (RFC 8441) names the protocol in `:protocol`, not in headers.
        let connect = ctx.connect_websocket;
        if !connect && !req.header_has_token("upgrade", "websocket") {
            self.refused(id, 400, RefusalCause::Framing, None);
            return self.answer_text(id, ctx, 400, UPGRADE_ONLY);
        }
        if !connect && !req.header_has_token("connection", "upgrade") {
            self.refused(id, 400, RefusalCause::Framing, None);
            return self.answer_text(id, ctx, 400, CONNECTION_UPGRADE);
        }
        if let Some((text, cause, limit)) = self.session_refusal(id) {
            self.refused(id, 503, cause, limit);
            return self.answer_text(id, ctx, 503, text);
        }
        let protocol = if raw { "websocket-raw" } else { "websocket" };
        if self.hold_for_authorization(now, id, ep, req, protocol, connect) {
            return;
        }
        let info = self.request_info(id, ep, req, protocol);
        match req.header("sec-websocket-version") {
            Some(b"13" | b"8" | b"7") => {
                // Only an acceptable offer is answered; anything else gets the plain answer.
                let agreement = self.endpoints[ep].options.compression.and_then(|config| {
                    let offers = req
                        .headers
                        .iter()
                        .filter(|h| h.name.eq_ignore_ascii_case(b"sec-websocket-extensions"))
                        .map(|h| &h.value[..]);
                    deflate::negotiate(&config, offers).map(|a| (a, config))
                });
                // Compression state counts toward the memory budget: an agreement whose
                // state could take the total past it is not made (the plain answer instead).
                let reservation = agreement
                    .as_ref()
                    .map_or(0, |(a, _)| deflate_reservation(&a.params));
                let agreement = if reservation > 0
                    && self.buffered_bytes().saturating_add(reservation)
                        > self.limits.max_buffered_bytes
                {
                    self.limit_hit(Limit::BufferedBytes, Some(id), None);
                    None
                } else {
                    agreement
                };
                let extension = agreement.as_ref().map(|(a, _)| a.response.clone());
                if connect {
                    // RFC 8441, 5: no key, and a 200 without the upgrade headers.
                    let mut head = self.head(id, 200);
                    head.upgrade();
                    if let Some(extension) = &extension {
                        head.header("Sec-WebSocket-Extensions", extension.as_str());
                    }
                    self.respond(id, head, BodyFraming::None, b"");
                } else {
                    let Some(key) = req.header("sec-websocket-key").filter(|k| !k.is_empty())
                    else {
                        self.refused(id, 400, RefusalCause::Framing, None);
                        return self.answer_text(id, ctx, 400, "Missing \"Sec-WebSocket-Key\".");
                    };
                    let mut head = self.head(id, 101);
                    head.header("Upgrade", "websocket");
                    head.header("Connection", "Upgrade");
                    head.header("Sec-WebSocket-Accept", ws::accept_key(key));
                    if let Some(extension) = &extension {
                        head.header("Sec-WebSocket-Extensions", extension.as_str());
                    }
                    self.respond(id, head, BodyFraming::None, b"");
                }
                let limits = ws::Limits {
                    max_frame_size: self.limits.max_frame_size,
                    max_message_size: self.limits.max_message_size,
                };
                let (decoder, deflate) = match agreement {
                    None => (FrameDecoder::new(limits), None),
                    Some((agreement, config)) => {
                        let params = agreement.params;
                        let decoder = FrameDecoder::with_deflate(limits, Inflater::new(&params));
                        let deflate = self.new_ws_deflate(&params, &config);
                        (decoder, Some(deflate))
                    }
                };
                self.open_websocket(now, id, ep, raw, Decoder::Rfc6455(decoder), deflate, info);
            }
            Some(_) => {
                self.refused(id, 426, RefusalCause::Framing, None);
                let mut head = self.head(id, 426);
                head.header("Content-Type", "text/plain; charset=UTF-8");
                head.header("Sec-WebSocket-Version", "13, 8, 7");
                let body = b"Unsupported WebSocket version.";
                head.persistence("close");
                self.respond(id, head, BodyFraming::Length(body.len()), body);
                self.close_connection(id, Closing::Graceful);
            }
            None => {
                let key = |name: &str| {
                    req.header(name)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .filter(|v| ws::hixie76::key_number(v).is_some())
                        .map(str::to_string)
                };
                let (Some(key1), Some(key2), false) = (
                    key("sec-websocket-key1"),
                    key("sec-websocket-key2"),
                    connect,
                ) else {
                    self.refused(id, 400, RefusalCause::Framing, None);
                    return self.answer_text(id, ctx, 400, "Unsupported WebSocket version.");
                };
                let scheme = if req
                    .header("x-forwarded-proto")
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"https"))
                {
                    "wss"
                } else {
                    "ws"
                };
                let mut location = Vec::with_capacity(64);
                location.extend_from_slice(scheme.as_bytes());
                location.extend_from_slice(b"://");
                location.extend_from_slice(req.header("host").unwrap_or_default());
                location.extend_from_slice(&req.target);
                let mut head = self.head_with_reason(id, 101, Some("WebSocket Protocol Handshake"));
                head.header("Upgrade", "WebSocket");
                head.header("Connection", "Upgrade");
                if let Some(origin) = req.header("origin") {
                    head.header("Sec-WebSocket-Origin", origin);
                }
                head.header("Sec-WebSocket-Location", location);
                self.respond(id, head, BodyFraming::None, b"");
                let Some(c) = self.conns.get_mut(id) else {
                    return;
                };
                let rest = c.decoder.take_remaining();
                c.state = ConnState::AwaitingKey3(Box::new(PendingHixie {
                    endpoint: ep,
                    raw,
                    key1,
                    key2,
                    key3: Vec::with_capacity(8),
                    info,
                    started: now,
                }));
                if !rest.is_empty() {
                    self.websocket_input(now, id, &rest);
                }
            }
        }
    }

    fn new_ws_deflate(&self, params: &DeflateParams, config: &DeflateConfig) -> Box<WsDeflate> {
        let reserved = deflate_reservation(params);
        self.deflate_reserved.fetch_add(reserved, Ordering::Relaxed);
        Box::new(WsDeflate {
            deflater: Deflater::new(params, config),
            params: *params,
            level: config.level,
            held: Held {
                total: Arc::clone(&self.deflate_memory),
                bytes: 0,
                reserved_total: Arc::clone(&self.deflate_reserved),
                reserved,
            },
        })
    }

    /// The handshake is done: the session opens and bytes after the handshake are read as
    /// WebSocket frames.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per handshake kind"
    )]
    fn open_websocket(
        &mut self,
        now: Instant,
        id: ConnectionId,
        ep: usize,
        raw: bool,
        decoder: Decoder,
        deflate: Option<Box<WsDeflate>>,
        info: RequestInfo,
    ) {
        let kind = if raw {
            SessionKind::RawWebSocket
        } else {
            SessionKind::WebSocket
        };
        let transport = if raw {
            SessionTransport::RawWebSocket
        } else {
            SessionTransport::WebSocket
        };
        let mut session = Session::new(ep, kind, transport, None);
        self.count_session_peer(id, &mut session);
        session.receiver = Some(id);
        session.heartbeat_at = heartbeat_deadline(&self.endpoints[ep].options, now);
        let s = self.sessions.insert(session);
        self.session_opened(transport);
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let rest = c.decoder.take_remaining();
        c.state = ConnState::WebSocket(Box::new(WsConnection {
            session: s,
            decoder,
            deflate,
            close_deadline: None,
        }));
        c.request_started = None;
        self.events.push_back(Event::Opened {
            session: s,
            endpoint: ep,
            info: Box::new(info),
        });
        if !raw {
            self.emit(now, id, Frame::Open);
        }
        self.schedule_session(s);
        self.schedule_connection(id);
        if !rest.is_empty() {
            self.websocket_input(now, id, &rest);
        }
    }

    /// Bytes from a WebSocket connection (or one finishing a hixie-76 handshake).
    pub(super) fn websocket_input(&mut self, now: Instant, id: ConnectionId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if let ConnState::AwaitingKey3(p) = &mut c.state {
            let take = (8 - p.key3.len()).min(data.len());
            p.key3.extend_from_slice(&data[..take]);
            if p.key3.len() < 8 {
                return;
            }
            let ConnState::AwaitingKey3(p) = std::mem::replace(&mut c.state, ConnState::Http)
            else {
                unreachable!("matched above")
            };
            let key3: [u8; 8] = p.key3[..8].try_into().unwrap_or_default();
            // The 101 went out before the key came: a shutdown or the session limit reached
            // since then leaves no answer but closing.
            let refused = self.session_refusal(id).is_some();
            let answer = ws::hixie76::challenge_response(&p.key1, &p.key2, &key3);
            let Some(answer) = answer.filter(|_| !refused) else {
                self.close_connection(id, Closing::Graceful);
                return;
            };
            self.write(id, |o| o.put_slice(&answer));
            let decoder = Decoder::Hixie76(Hixie76Decoder::new(self.limits.max_message_size));
            self.open_websocket(now, id, p.endpoint, p.raw, decoder, None, p.info);
            return self.websocket_input(now, id, &data[take..]);
        }
        let ConnState::WebSocket(ws) = &mut c.state else {
            return;
        };
        ws.decoder.feed(data);
        let session = ws.session;
        if !data.is_empty() {
            // Anything from the peer shows it is alive.
            if let Some(s) = self.sessions.get_mut(session) {
                s.pong_deadline = None;
            }
        }
        loop {
            let Some(c) = self.conns.get_mut(id) else {
                return;
            };
            let ConnState::WebSocket(ws) = &mut c.state else {
                return;
            };
            let closing = ws.close_deadline.is_some();
            let hixie = ws.decoder.is_hixie();
            let item = ws.decoder.next();
            ws.sync_deflate_memory();
            match item {
                Ok(None) => return,
                Ok(Some(_)) if closing && !matches!(item, Ok(Some(Incoming::Close(_)))) => {}
                Ok(Some(Incoming::Text(text))) => self.websocket_text(now, id, session, text),
                Ok(Some(Incoming::Binary(_))) => {
                    let e = ProtocolError {
                        code: 1003,
                        reason: "Binary messages are not supported",
                    };
                    return self.websocket_fail(now, id, session, e);
                }
                Ok(Some(Incoming::Ping(payload))) => {
                    // A peer that does not read its pongs must not grow the output without
                    // bound; RFC 6455 (5.5.3) lets an endpoint behind on pongs skip some.
                    let behind = c.out.len() > self.limits.max_unflushed_bytes;
                    if !behind {
                        self.write(id, |o| ws::frame::encode_pong(o, &payload));
                    }
                }
                Ok(Some(Incoming::Pong(_))) => {}
                Ok(Some(Incoming::Close(close))) => {
                    if !closing {
                        if hixie {
                            self.write(id, ws::hixie76::encode_close);
                        } else {
                            let code = close.as_ref().map(|(code, _)| *code);
                            self.write(id, |o| ws::frame::encode_close(o, code.map(|c| (c, ""))));
                        }
                    }
                    let (code, reason) = close.unwrap_or((1005, String::new()));
                    self.close_connection(id, Closing::Graceful);
                    self.websocket_lost(now, session, code, &reason);
                    return;
                }
                // Our close frame is out: one per side, so nothing more is written.
                Err(_) if closing => return self.close_connection(id, Closing::Graceful),
                Err(e) => return self.websocket_fail(now, id, session, e),
            }
        }
    }

    fn websocket_text(&mut self, now: Instant, id: ConnectionId, session: SessionId, text: String) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        if !s.is_open() {
            return;
        }
        if s.kind == SessionKind::RawWebSocket {
            self.message_in(session, id, text);
            return;
        }
        match crate::payload::parse_websocket_message(text.as_bytes()) {
            Ok(messages) => {
                for text in messages {
                    self.message_in(session, id, text);
                }
            }
            Err(_) => {
                let e = ProtocolError {
                    code: 3000,
                    reason: "Broken framing.",
                };
                self.websocket_fail(now, id, session, e);
            }
        }
    }

    /// The peer broke the protocol: close frame with the error, session closed, connection
    /// closed without waiting for an answer.
    fn websocket_fail(
        &mut self,
        now: Instant,
        id: ConnectionId,
        session: SessionId,
        e: ProtocolError,
    ) {
        let hixie = matches!(
            self.conns.get(id).map(|c| &c.state),
            Some(ConnState::WebSocket(ws)) if ws.decoder.is_hixie()
        );
        if hixie {
            self.write(id, ws::hixie76::encode_close);
        } else {
            self.write(id, |o| ws::frame::encode_close(o, Some((e.code, e.reason))));
        }
        if let Some(limit) = e.limit() {
            self.limit_hit(limit, Some(id), Some(session));
        }
        self.close_connection(id, Closing::Graceful);
        if self.sessions.get(session).is_some_and(Session::is_open) {
            self.session_closed(session, CloseReason::ProtocolError(e.reason));
        }
        self.forget_session(session);
        let _ = now;
    }

    /// A SockJS frame on a WebSocket: one text message.
    pub(super) fn websocket_frame(&mut self, id: ConnectionId, f: &Frame<'_>) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let ConnState::WebSocket(ws) = &mut c.state else {
            return;
        };
        let hixie = ws.decoder.is_hixie();
        let raw = self
            .sessions
            .get(ws.session)
            .is_some_and(|s| s.kind == SessionKind::RawWebSocket);
        if raw {
            return; // No SockJS framing on the raw endpoint.
        }
        if let Some(d) = ws.deflate.as_deref_mut() {
            let was_empty = c.out.is_empty();
            let out = c.out.buf();
            let ran = match f {
                Frame::Messages(m) => {
                    let len = frame::array_frame_len(m.iter());
                    let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * m.len() + 1);
                    parts.push(b"a[");
                    for (i, msg) in m.iter().enumerate() {
                        if i > 0 {
                            parts.push(b",");
                        }
                        parts.push(msg);
                    }
                    parts.push(b"]");
                    let shared = match (self.broadcast.as_mut(), m.front()) {
                        (Some(b), Some(msg)) if m.len() == 1 && b.carries(false, msg) => {
                            Some((b, false))
                        }
                        _ => None,
                    };
                    write_deflated(out, d, &parts, len, shared)
                }
                other => {
                    let bytes = fixed_frame(other);
                    write_deflated(out, d, &[bytes], bytes.len(), None)
                }
            };
            ws.sync_deflate_memory();
            self.deflate_runs += u64::from(ran);
            self.announce(id, was_empty);
            return;
        }
        self.write(id, |out| match f {
            Frame::Messages(m) => {
                let len = frame::array_frame_len(m.iter());
                if hixie {
                    out.reserve(len + 2);
                    out.put_u8(0x00);
                } else {
                    ws::frame::encode_text_header(out, len);
                }
                frame::write_array_frame(out, m.iter());
                if hixie {
                    out.put_u8(0xff);
                }
            }
            other => {
                let bytes = fixed_frame(other);
                if hixie {
                    out.put_u8(0x00);
                    out.put_slice(bytes);
                    out.put_u8(0xff);
                } else {
                    ws::frame::encode_text_header(out, bytes.len());
                    out.put_slice(bytes);
                }
            }
        });
    }

    /// Messages on the raw endpoint: each its own text message.
    pub(super) fn websocket_send_raw(&mut self, id: ConnectionId, messages: &VecDeque<Bytes>) {
        if let Some(c) = self.conns.get_mut(id)
            && let ConnState::WebSocket(ws) = &mut c.state
            && let Some(d) = ws.deflate.as_deref_mut()
        {
            let was_empty = c.out.is_empty();
            let out = c.out.buf();
            let mut ran = 0;
            for m in messages {
                let shared = match self.broadcast.as_mut() {
                    Some(b) if b.carries(true, m) => Some((b, true)),
                    _ => None,
                };
                ran += u64::from(write_deflated(out, d, &[m], m.len(), shared));
            }
            ws.sync_deflate_memory();
            self.deflate_runs += ran;
            self.announce(id, was_empty);
            return;
        }
        let hixie = matches!(
            self.conns.get(id).map(|c| &c.state),
            Some(ConnState::WebSocket(ws)) if ws.decoder.is_hixie()
        );
        self.write(id, |out| {
            for m in messages {
                if hixie {
                    out.put_u8(0x00);
                    out.put_slice(m);
                    out.put_u8(0xff);
                } else {
                    ws::frame::encode_text_header(out, m.len());
                    out.put_slice(m);
                }
            }
        });
    }

    /// Closes a WebSocket session's connection from our side: the SockJS close frame (not on
    /// the raw endpoint), then the WebSocket close frame, then wait for the peer's.
    pub(super) fn websocket_close(
        &mut self,
        now: Instant,
        id: ConnectionId,
        close: &[u8],
        reason: &CloseReason,
    ) {
        let Some(c) = self.conns.get(id) else { return };
        let ConnState::WebSocket(ws) = &c.state else {
            return;
        };
        if ws.close_deadline.is_some() {
            return;
        }
        let hixie = ws.decoder.is_hixie();
        let raw = self
            .sessions
            .get(ws.session)
            .is_some_and(|s| s.kind == SessionKind::RawWebSocket);
        if !raw {
            self.websocket_frame(id, &Frame::Close(close));
        }
        if hixie {
            self.write(id, ws::hixie76::encode_close);
            self.close_connection(id, Closing::Graceful);
            return;
        }
        let (code, text) = if raw {
            match reason.code_and_reason() {
                (code, text) if ws::is_valid_close_code(code) => (code, text.to_string()),
                (_, text) => (1000, text.to_string()),
            }
        } else {
            (1000, "Normal closure".to_string())
        };
        self.write(id, |o| ws::frame::encode_close(o, Some((code, &text))));
        let deadline = now + self.limits.close_timeout;
        if let Some(ConnState::WebSocket(ws)) = self.conns.get_mut(id).map(|c| &mut c.state) {
            ws.close_deadline = Some(deadline);
        }
        self.schedule_connection(id);
    }

    /// Heartbeat ping on an RFC 6455 connection, when configured; the pong deadline starts.
    pub(super) fn websocket_ping(&mut self, now: Instant, session: SessionId, id: ConnectionId) {
        let Some(c) = self.conns.get(id) else { return };
        let ConnState::WebSocket(ws) = &c.state else {
            return;
        };
        if ws.decoder.is_hixie() || ws.close_deadline.is_some() {
            return;
        }
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let Some(timeout) = self.endpoints[s.endpoint].options.websocket_ping_timeout else {
            return;
        };
        if s.pong_deadline.is_none() {
            s.pong_deadline = Some(now + timeout);
        }
        self.write(id, |o| ws::frame::encode_ping(o, b""));
        self.schedule_session(session);
    }

    /// A WebSocket session's connection is gone (closed by the peer, or lost).
    pub(super) fn websocket_lost(
        &mut self,
        now: Instant,
        session: SessionId,
        code: u16,
        reason: &str,
    ) {
        let _ = now;
        if self.sessions.get(session).is_some_and(Session::is_open) {
            let reason = CloseReason::ClientClosed {
                code,
                reason: reason.to_string(),
            };
            self.session_closed(session, reason);
        }
        self.forget_session(session);
    }
}
