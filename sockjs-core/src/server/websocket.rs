//! WebSocket connections: the upgrade (RFC 6455 versions 13, 8 and 7, and hixie-76), frames
//! in and out, pings, and the closing handshake. A SockJS WebSocket session lives exactly as
//! long as its connection; the raw `/websocket` endpoint carries messages without SockJS
//! framing.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::Server;
use super::connection::{Closing, ConnState};
use super::headers::ResponseContext;
use super::receiver::{Frame, heartbeat_deadline};
use super::session::{Session, SessionKind};
use crate::frame;
use crate::http::{BodyFraming, Request, ResponseHead};
use crate::io::{CloseReason, ConnectionId, Event, RequestInfo, SessionId};
use crate::ws::{self, FrameDecoder, Hixie76Decoder, Incoming, ProtocolError};

/// A connection switched to WebSocket.
pub(super) struct WsConnection {
    pub(super) session: SessionId,
    decoder: Decoder,
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
        if !req.header_has_token("upgrade", "websocket") {
            return self.answer_text(id, ctx, 400, UPGRADE_ONLY);
        }
        if !req.header_has_token("connection", "upgrade") {
            return self.answer_text(id, ctx, 400, CONNECTION_UPGRADE);
        }
        if let Some(refusal) = self.session_refusal(id) {
            return self.answer_text(id, ctx, 503, refusal);
        }
        let protocol = if raw { "websocket-raw" } else { "websocket" };
        let info = self.request_info(id, ep, req, protocol);
        match req.header("sec-websocket-version") {
            Some(b"13" | b"8" | b"7") => {
                let Some(key) = req.header("sec-websocket-key").filter(|k| !k.is_empty()) else {
                    return self.answer_text(id, ctx, 400, "Missing \"Sec-WebSocket-Key\".");
                };
                let mut out = BytesMut::new();
                let mut head = ResponseHead::new(&mut out, 101);
                head.header("Upgrade", "websocket");
                head.header("Connection", "Upgrade");
                head.header("Sec-WebSocket-Accept", ws::accept_key(key));
                head.finish(BodyFraming::None);
                self.write(id, |o| o.unsplit(out));
                let limits = ws::Limits {
                    max_frame_size: self.limits.max_frame_size,
                    max_message_size: self.limits.max_message_size,
                };
                self.open_websocket(
                    now,
                    id,
                    ep,
                    raw,
                    Decoder::Rfc6455(FrameDecoder::new(limits)),
                    info,
                );
            }
            Some(_) => {
                let mut out = BytesMut::new();
                let mut head = ResponseHead::new(&mut out, 426);
                head.header("Content-Type", "text/plain; charset=UTF-8");
                head.header("Sec-WebSocket-Version", "13, 8, 7");
                let body = b"Unsupported WebSocket version.";
                head.header("Connection", "close");
                head.finish(BodyFraming::Length(body.len()));
                out.extend_from_slice(body);
                self.write(id, |o| o.unsplit(out));
                self.close_connection(id, Closing::Graceful);
            }
            None => {
                let key = |name: &str| {
                    req.header(name)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .filter(|v| ws::hixie76::key_number(v).is_some())
                        .map(str::to_string)
                };
                let (Some(key1), Some(key2)) =
                    (key("sec-websocket-key1"), key("sec-websocket-key2"))
                else {
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
                let mut out = BytesMut::new();
                let mut head =
                    ResponseHead::with_reason(&mut out, 101, "WebSocket Protocol Handshake");
                head.header("Upgrade", "WebSocket");
                head.header("Connection", "Upgrade");
                if let Some(origin) = req.header("origin") {
                    head.header("Sec-WebSocket-Origin", origin);
                }
                head.header("Sec-WebSocket-Location", location);
                head.finish(BodyFraming::None);
                self.write(id, |o| o.unsplit(out));
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

    /// The handshake is done: the session opens and bytes after the handshake are read as
    /// WebSocket frames.
    fn open_websocket(
        &mut self,
        now: Instant,
        id: ConnectionId,
        ep: usize,
        raw: bool,
        decoder: Decoder,
        info: RequestInfo,
    ) {
        let kind = if raw {
            SessionKind::RawWebSocket
        } else {
            SessionKind::WebSocket
        };
        let mut session = Session::new(ep, kind, None);
        self.count_session_peer(id, &mut session);
        session.receiver = Some(id);
        session.heartbeat_at = heartbeat_deadline(&self.endpoints[ep].options, now);
        let s = self.sessions.insert(session);
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let rest = c.decoder.take_remaining();
        c.state = ConnState::WebSocket(Box::new(WsConnection {
            session: s,
            decoder,
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
            let Some(answer) = ws::hixie76::challenge_response(&p.key1, &p.key2, &key3) else {
                self.close_connection(id, Closing::Graceful);
                return;
            };
            self.write(id, |o| o.put_slice(&answer));
            let decoder = Decoder::Hixie76(Hixie76Decoder::new(self.limits.max_message_size));
            self.open_websocket(now, id, p.endpoint, p.raw, decoder, p.info);
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
            self.events.push_back(Event::Message {
                session,
                connection: id,
                text,
            });
            return;
        }
        match crate::payload::parse_websocket_message(text.as_bytes()) {
            Ok(messages) => {
                for text in messages {
                    self.events.push_back(Event::Message {
                        session,
                        connection: id,
                        text,
                    });
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
        self.close_connection(id, Closing::Graceful);
        if self.sessions.get(session).is_some_and(Session::is_open) {
            self.events.push_back(Event::Closed {
                session,
                reason: CloseReason::ProtocolError(e.reason),
            });
        }
        self.forget_session(session);
        let _ = now;
    }

    /// A SockJS frame on a WebSocket: one text message.
    pub(super) fn websocket_frame(&mut self, id: ConnectionId, f: &Frame<'_>) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let ConnState::WebSocket(ws) = &c.state else {
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
                let bytes: &[u8] = match other {
                    Frame::Open => frame::OPEN,
                    Frame::Heartbeat => frame::HEARTBEAT,
                    Frame::Close(c) => c,
                    Frame::Messages(_) => unreachable!("handled above"),
                };
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
            self.events.push_back(Event::Closed {
                session,
                reason: CloseReason::ClientClosed {
                    code,
                    reason: reason.to_string(),
                },
            });
        }
        self.forget_session(session);
    }
}
