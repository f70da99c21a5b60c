//! Sessions and their receivers: opening a session from a receiving request, moving queued
//! messages onto the receiver as frames, heartbeats, the disconnect delay, and closing.
//!
//! A receiver is whatever carries a session's frames to the client: an HTTP response
//! (polling or streaming, [`Receiver`]) or a WebSocket. A session has at most one; a second
//! concurrent one gets `c[2010,"Another connection still open"]`. A receiver is detached as
//! the frame that ends its response is written, so a client polling again at once never sees
//! 2010.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::Server;
use super::connection::ConnState;
use super::headers::{NO_CACHE, ResponseContext};
use super::respond::{Finished, Head};
use super::session::{Binding, Session, SessionKind, SessionState};
use crate::config::SessionBinding;
use crate::frame;
use crate::http::response::{write_chunk_header, write_last_chunk};
use crate::http::{BodyFraming, Request, Version};
use crate::io::{CloseReason, ConnectionId, Event, RequestInfo, SessionId};
use crate::stats::{Limit, RefusalCause, SessionTransport};
use crate::transport::{ReceiverKind, Transport};

/// An HTTP response carrying a session's frames.
pub(super) struct Receiver {
    /// The session it receives for; None for a response that only carries a 2010 refusal.
    pub(super) session: Option<SessionId>,
    kind: ReceiverKind,
    body: ReceiverBody,
    /// Body bytes written so far (frames only, not the prelude).
    sent: usize,
    /// `response_limit` for streaming.
    limit: usize,
    keep_alive: bool,
}

enum ReceiverBody {
    /// Polling: the head waits (without its framing line) until the one frame is known, so
    /// the response goes out with a Content-Length; None once it went.
    Polling(Option<Head>),
    Chunked,
    /// HTTP/1.0 streaming, where the body ends when the connection closes; and every stream
    /// on an exchange, whose host frames the body.
    CloseDelimited,
}

/// A frame for a receiver.
pub(super) enum Frame<'a> {
    Open,
    Heartbeat,
    Messages(&'a VecDeque<Bytes>),
    Close(&'a [u8]),
}

impl Frame<'_> {
    /// The frame's bytes for an HTTP receiver, written into `scratch`.
    fn render<'s>(&self, scratch: &'s mut BytesMut) -> &'s [u8] {
        scratch.clear();
        match self {
            Frame::Open => scratch.put_slice(frame::OPEN),
            Frame::Heartbeat => scratch.put_slice(frame::HEARTBEAT),
            Frame::Messages(m) => frame::write_array_frame(scratch, m.iter()),
            Frame::Close(c) => scratch.put_slice(c),
        }
        &scratch[..]
    }
}

impl Server {
    /// A receiving request (`xhr`, `xhr_streaming`, `eventsource`, `htmlfile`, `jsonp`):
    /// starts the response, then opens or attaches to the session.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn receive(
        &mut self,
        now: Instant,
        id: ConnectionId,
        ep: usize,
        ctx: &ResponseContext,
        req: &Request,
        session_id: &[u8],
        transport: Transport,
        kind: ReceiverKind,
    ) {
        let existing = self.endpoints[ep].sessions.get(session_id).copied();
        if existing.is_none()
            && let Some((text, cause, limit)) = self.session_refusal(id)
        {
            self.refused(id, 503, cause, limit);
            return self.answer_text(id, ctx, 503, text);
        }
        if existing.is_none()
            && self.hold_for_authorization(now, id, ep, req, transport.protocol_name(), false)
        {
            return;
        }
        if let Some(s) = existing
            && !self.binding_matches(s, id, ep, req)
        {
            let cors = matches!(kind, ReceiverKind::XhrPolling | ReceiverKind::XhrStreaming);
            return self.session_not_found(id, ep, ctx, cors);
        }
        self.start_receiver(now, id, ep, ctx, kind);
        let session = match existing {
            Some(s) => s,
            None => {
                let key: Box<[u8]> = session_id.into();
                let t = SessionTransport::of(transport);
                let mut session = Session::new(ep, SessionKind::Http, t, Some(key.clone()));
                self.count_session_peer(id, &mut session);
                session.binding = self.binding_of(id, ep, req);
                let s = self.sessions.insert(session);
                self.endpoints[ep].sessions.insert(key, s);
                self.session_opened(t);
                let info = self.request_info(id, ep, req, transport.protocol_name());
                self.events.push_back(Event::Opened {
                    session: s,
                    endpoint: ep,
                    info: Box::new(info),
                });
                self.attach(now, s, id, true);
                return;
            }
        };
        if self
            .sessions
            .get(session)
            .is_some_and(|s| s.receiver.is_some())
        {
            // One receiver at a time; the attached one is left alone.
            let close = frame::close_frame(2010, "Another connection still open");
            self.emit(now, id, Frame::Close(&close));
            self.end_response(now, id);
            return;
        }
        self.attach(now, session, id, false);
    }

    /// Writes the head (and prelude) of a receiving response and makes the connection a
    /// receiver, not yet attached to a session.
    fn start_receiver(
        &mut self,
        now: Instant,
        id: ConnectionId,
        ep: usize,
        ctx: &ResponseContext,
        kind: ReceiverKind,
    ) {
        let _ = now;
        let mut head = self.head(id, 200);
        let options = &self.endpoints[ep].options;
        head.header("Content-Type", kind.content_type());
        ctx.cookie(&mut head, options);
        head.header("Cache-Control", NO_CACHE);
        match kind {
            ReceiverKind::XhrPolling | ReceiverKind::XhrStreaming | ReceiverKind::EventSource => {
                ctx.cors(&mut head);
            }
            ReceiverKind::Jsonp { .. } => {
                head.header("X-Content-Type-Options", "nosniff");
            }
            ReceiverKind::HtmlFile { .. } => {}
        }
        let streaming = !kind.is_polling();
        // HTTP/1.0 cannot chunk: a stream is delimited by closing the connection.
        let keep_alive = ctx.keep_alive && !(streaming && ctx.version == Version::Http10);
        let mut head_ctx = ctx.clone();
        head_ctx.keep_alive = keep_alive;
        head_ctx.connection(&mut head);
        let body = if !streaming {
            // The head is finished when the frame is known.
            ReceiverBody::Polling(Some(head))
        } else {
            let mut prelude = BytesMut::new();
            kind.write_prelude(&mut prelude);
            if ctx.version == Version::Http10 || self.is_exchange(id) {
                self.respond(id, head, BodyFraming::CloseDelimited, &prelude);
                ReceiverBody::CloseDelimited
            } else {
                self.respond(id, head, BodyFraming::Chunked, &prelude);
                ReceiverBody::Chunked
            }
        };
        let limit = self.endpoints[ep].options.response_limit;
        if let Some(c) = self.conns.get_mut(id) {
            c.state = ConnState::Receiving(Receiver {
                session: None,
                kind,
                body,
                sent: 0,
                limit,
                keep_alive,
            });
        }
    }

    /// Attaches a receiver to a session (`opening`: the session was just created). A closed
    /// session's receiver gets what was still queued, else the close frame.
    fn attach(&mut self, now: Instant, session: SessionId, id: ConnectionId, opening: bool) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        s.disconnect_at = None;
        s.receiver = Some(id);
        s.heartbeat_at = heartbeat_deadline(&self.endpoints[s.endpoint].options, now);
        if let Some(ConnState::Receiving(r)) = self.conns.get_mut(id).map(|c| &mut c.state) {
            r.session = Some(session);
        }
        if opening && self.emit(now, id, Frame::Open) {
            self.detach(now, session, id);
            return;
        }
        self.deliver(now, session);
        self.schedule_session(session);
    }

    /// The session whose receiver this connection is, if any.
    pub(super) fn receiving_session(&self, id: ConnectionId) -> Option<SessionId> {
        match &self.conns.get(id)?.state {
            ConnState::Receiving(r) => r.session,
            ConnState::WebSocket(ws) => Some(ws.session),
            _ => None,
        }
    }

    /// Queues a message (`text_len` bytes of the application's text) for a session and
    /// delivers it if a receiver can take it; closes the session if its queue is full.
    pub(super) fn enqueue(
        &mut self,
        now: Instant,
        session: SessionId,
        msg: Bytes,
        text_len: usize,
    ) -> Result<(), crate::io::Error> {
        let max_bytes = self.limits.max_queued_bytes;
        let max_messages = self.limits.max_queued_messages;
        let Some(s) = self.sessions.get(session) else {
            return Err(crate::io::Error::SessionClosed);
        };
        let len = msg.len();
        if !s.fits(len, max_bytes, max_messages) {
            let limit = if s.queue.len() >= max_messages {
                Limit::QueuedMessages
            } else {
                Limit::QueuedBytes
            };
            let receiver = s.receiver;
            self.limit_hit(limit, receiver, Some(session));
            self.close_session(now, session, CloseReason::QueueFull);
            return Err(crate::io::Error::SessionClosed);
        }
        if !self.make_room(now, session, len) {
            return Err(crate::io::Error::SessionClosed);
        }
        let Some(s) = self.sessions.get_mut(session) else {
            return Err(crate::io::Error::SessionClosed);
        };
        s.push(msg);
        s.messages_out += 1;
        s.bytes_out += text_len as u64;
        self.queued_more(session, len);
        self.stats.messages_out += 1;
        self.stats.message_bytes_out += text_len as u64;
        self.deliver(now, session);
        Ok(())
    }

    /// Moves queued messages onto the session's receiver as one frame, as many as keep the
    /// connection's waiting output within `max_unflushed_bytes` (at least one message when it
    /// is within already); the rest follow as it drains. Once a closed session's queue is
    /// empty, its close frame follows.
    pub(super) fn deliver(&mut self, now: Instant, session: SessionId) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let Some(id) = s.receiver else { return };
        let Some(c) = self.conns.get(id) else { return };
        if !s.queue.is_empty() {
            let limit = self.limits.max_unflushed_bytes;
            let waiting = c.out.len();
            if waiting > limit {
                return;
            }
            // What the transport makes of a frame's bytes counts against the bound.
            let expansion = match &c.state {
                ConnState::Receiving(r) => r.kind.max_expansion(),
                _ => 1,
            };
            let Some(s) = self.sessions.get_mut(session) else {
                return;
            };
            let before = s.queued_bytes;
            let mut batch = s.take_batch((limit - waiting) / expansion);
            let raw = s.kind == SessionKind::RawWebSocket;
            let taken = before - s.queued_bytes;
            self.dequeued(session, taken);
            let ended = if raw {
                self.websocket_send_raw(id, &batch);
                false
            } else {
                self.emit(now, id, Frame::Messages(&batch))
            };
            // The queue's buffer serves the next messages instead of a new allocation.
            batch.clear();
            if let Some(s) = self.sessions.get_mut(session)
                && s.queue.is_empty()
                && s.queue.capacity() < batch.capacity()
            {
                s.queue = batch;
            }
            if ended {
                self.detach(now, session, id);
                return;
            }
        }
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        if !s.queue.is_empty() || s.receiver != Some(id) {
            return;
        }
        let SessionState::Closing(close, reason) = &s.state else {
            return;
        };
        let (close, reason) = (close.clone(), reason.clone());
        match s.kind {
            SessionKind::Http => {
                self.emit(now, id, Frame::Close(&close));
                self.end_response(now, id);
                self.detach(now, session, id);
            }
            SessionKind::WebSocket | SessionKind::RawWebSocket => {
                self.websocket_close(now, id, &close, &reason);
                self.forget_session(session);
            }
        }
    }

    /// Writes one frame to a receiver. Returns true if that ended an HTTP response (polling,
    /// or the streaming `response_limit` reached); the caller detaches the session.
    pub(super) fn emit(&mut self, now: Instant, id: ConnectionId, f: Frame<'_>) -> bool {
        let Some(c) = self.conns.get_mut(id) else {
            return false;
        };
        let mut recorded = None;
        let (session, ended) = match &mut c.state {
            ConnState::WebSocket(ws) => (Some(ws.session), None),
            ConnState::Receiving(r) => {
                let mut scratch = BytesMut::new();
                let frame = f.render(&mut scratch);
                let mut wrapped = BytesMut::with_capacity(frame.len() + 32);
                r.kind.write_frame(&mut wrapped, frame);
                r.sent += wrapped.len();
                let before = c.out.len();
                let was_empty = before == 0;
                let out = c.out.buf();
                let ended = match &mut r.body {
                    ReceiverBody::Polling(head) => {
                        let head = head.take();
                        match head.map(|h| h.finish(BodyFraming::Length(wrapped.len()))) {
                            Some(Finished::Wire(head)) => out.unsplit(head),
                            Some(Finished::Record(head)) => recorded = Some(head),
                            // A second frame on one poll (not expected): it still goes out.
                            None => {}
                        }
                        out.unsplit(wrapped);
                        true
                    }
                    ReceiverBody::Chunked => {
                        write_chunk_header(out, wrapped.len());
                        out.unsplit(wrapped);
                        out.put_slice(b"\r\n");
                        r.sent >= r.limit
                    }
                    ReceiverBody::CloseDelimited => {
                        out.unsplit(wrapped);
                        r.sent >= r.limit
                    }
                };
                if matches!(r.body, ReceiverBody::CloseDelimited) {
                    // One frame, one piece of the body: an exchange's host sends it as one
                    // chunk (or DATA frame), as the built-in path's chunked encoding does.
                    c.out.seal();
                }
                if r.session.is_some() {
                    c.carried = r.session;
                }
                (r.session, Some((was_empty, ended)))
            }
            ConnState::Http
            | ConnState::AwaitingKey3(_)
            | ConnState::Authorizing(_)
            | ConnState::Closed
            | ConnState::Lingering { .. } => return false,
        };
        if let Some(head) = recorded {
            self.record_response(id, head);
        }
        self.rerank_output(id);
        let ended = ended.map(|(was_empty, ended)| {
            self.announce(id, was_empty);
            ended
        });
        match ended {
            None => self.websocket_frame(id, &f),
            Some(true) => {
                self.end_response(now, id);
                return true;
            }
            Some(false) => {}
        }
        // Anything written resets the silence the heartbeat measures.
        if let Some(s) = session.and_then(|s| self.sessions.get_mut(s)) {
            s.heartbeat_at = heartbeat_deadline(&self.endpoints[s.endpoint].options, now);
        }
        false
    }

    /// Ends a receiving HTTP response (if still going) and frees the connection.
    pub(super) fn end_response(&mut self, now: Instant, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if !matches!(c.state, ConnState::Receiving(_)) {
            return;
        }
        let ConnState::Receiving(r) = std::mem::replace(&mut c.state, ConnState::Http) else {
            unreachable!("checked above")
        };
        let keep_alive = r.keep_alive && !matches!(r.body, ReceiverBody::CloseDelimited);
        match r.body {
            ReceiverBody::Polling(Some(head)) => {
                // Ended without a frame (not expected): an empty answer keeps the framing.
                self.respond(id, head, BodyFraming::Length(0), b"");
            }
            ReceiverBody::Polling(None) => {}
            ReceiverBody::Chunked => self.write(id, write_last_chunk),
            ReceiverBody::CloseDelimited => {}
        }
        self.response_ended(now, id, keep_alive);
    }

    /// The session's receiver has gone (its response ended): the disconnect delay starts.
    pub(super) fn detach(&mut self, now: Instant, session: SessionId, id: ConnectionId) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.receiver == Some(id) {
            s.receiver = None;
        }
        self.detached(now, session);
    }

    fn detached(&mut self, now: Instant, session: SessionId) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.receiver.is_none() {
            s.disconnect_at = Some(now + self.endpoints[s.endpoint].options.disconnect_delay);
            s.heartbeat_at = None;
        }
        self.schedule_session(session);
    }

    /// An attached HTTP receiver's connection was lost: the session is interrupted.
    pub(super) fn receiver_lost(&mut self, now: Instant, session: SessionId, id: ConnectionId) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.receiver != Some(id) {
            return;
        }
        s.receiver = None;
        self.close_session(now, session, CloseReason::Interrupted);
        self.detached(now, session);
    }

    /// Closes an open session: what is queued and then the close frame go to the receiver,
    /// if any; HTTP sessions then answer with the close frame until forgotten.
    pub(super) fn close_session(&mut self, now: Instant, session: SessionId, reason: CloseReason) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if !s.is_open() {
            return;
        }
        let (code, text) = reason.code_and_reason();
        let close = frame::close_frame(code, text);
        if reason == CloseReason::Interrupted {
            // What the lost receiver had in flight may never have arrived: delivering later
            // messages would leave a gap the client cannot see. It gets the close frame only.
            let dropped = s.queued_bytes;
            s.take_queue();
            self.dequeued(session, dropped);
        }
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        s.state = SessionState::Closing(close, reason.clone());
        let kind = s.kind;
        let receiver = s.receiver;
        self.session_closed(session, reason);
        match (kind, receiver) {
            (_, Some(_)) => self.deliver(now, session),
            (SessionKind::Http, None) => self.detached(now, session),
            (SessionKind::WebSocket | SessionKind::RawWebSocket, None) => {
                self.forget_session(session)
            }
        }
    }

    /// Why connection `id` may not open a session now, if it may not: the answer's text, and
    /// how the refusal is counted.
    pub(super) fn session_refusal(
        &self,
        id: ConnectionId,
    ) -> Option<(&'static str, RefusalCause, Option<Limit>)> {
        if self.shutdown_deadline.is_some() {
            Some(("Server shutting down", RefusalCause::Shutdown, None))
        } else if self.sessions.len() >= self.limits.max_sessions {
            Some((
                "Too many sessions",
                RefusalCause::Limit,
                Some(Limit::Sessions),
            ))
        } else if let Some(c) = self.conns.get(id)
            && !self.peers.session_allowed(c.peer.ip())
        {
            Some((
                "Too many sessions from this address",
                RefusalCause::Limit,
                Some(Limit::SessionsPerPeer),
            ))
        } else {
            None
        }
    }

    /// Counts a session about to open on connection `id` toward its address's sessions.
    pub(super) fn count_session_peer(&mut self, id: ConnectionId, session: &mut Session) {
        if let Some(c) = self.conns.get(id)
            && self.peers.add_session(c.peer.ip())
        {
            session.counted_peer = Some(c.peer.ip());
        }
    }

    /// Removes a session for good.
    pub(super) fn forget_session(&mut self, session: SessionId) {
        let Some(s) = self.sessions.remove(session) else {
            return;
        };
        self.unrank(session, s.queued_bytes, s.ranked);
        if let Some(ip) = s.counted_peer {
            self.peers.remove_session(ip);
        }
        if let Some(key) = s.id {
            let table = &mut self.endpoints[s.endpoint].sessions;
            if table.get(&key) == Some(&session) {
                table.remove(&key);
            }
        }
    }

    /// A session's deadline came: heartbeat, disconnect, or WebSocket pong.
    pub(super) fn session_timeout(&mut self, now: Instant, session: SessionId) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        if s.receiver.is_none() && s.disconnect_at.is_some_and(|t| t <= now) {
            if s.is_open() {
                self.session_closed(session, CloseReason::TimedOut);
            }
            self.forget_session(session);
            return;
        }
        if !s.is_open() {
            // Closed and still delivering its last messages: no heartbeats.
            return;
        }
        if s.pong_deadline.is_some_and(|t| t <= now) {
            self.close_session(now, session, CloseReason::HeartbeatTimeout);
            return;
        }
        if let Some(id) = s.receiver
            && s.heartbeat_at.is_some_and(|t| t <= now)
        {
            if self.emit(now, id, Frame::Heartbeat) {
                self.detach(now, session, id);
            }
            self.websocket_ping(now, session, id);
        }
    }

    /// The client's address for a request on connection `id` (see
    /// [`crate::Config::trusted_proxies`]).
    fn client_ip(&self, id: ConnectionId, req: &Request) -> IpAddr {
        let peer = self
            .conns
            .get(id)
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.peer.ip());
        crate::forwarded::client_ip(peer, req, &self.trusted_proxies)
    }

    /// What a session opened by `req` on connection `id` is bound to, by its endpoint's
    /// [`SessionBinding`].
    fn binding_of(&self, id: ConnectionId, ep: usize, req: &Request) -> Option<Binding> {
        match &self.endpoints[ep].options.session_binding {
            SessionBinding::PeerAddress => Some(Binding::Ip(self.client_ip(id, req))),
            SessionBinding::Cookie(name) => Some(Binding::Cookie(
                req.header_values("cookie")
                    .find_map(|v| crate::http::query::cookie(v, name))
                    .map(Box::from),
            )),
            SessionBinding::None => None,
        }
    }

    /// Whether `req` on connection `id` may use `session`; a mismatch is counted.
    pub(super) fn binding_matches(
        &mut self,
        session: SessionId,
        id: ConnectionId,
        ep: usize,
        req: &Request,
    ) -> bool {
        let Some(bound) = self.sessions.get(session).and_then(|s| s.binding.as_ref()) else {
            return true;
        };
        let ok = match bound {
            Binding::Ip(ip) => {
                let ip = *ip;
                self.client_ip(id, req) == ip
            }
            Binding::Cookie(_) => self.binding_of(id, ep, req).as_ref() == Some(bound),
        };
        if !ok {
            self.binding_refusals += 1;
            self.refused(id, 404, RefusalCause::Binding, None);
        }
        ok
    }

    /// What the application learns about the request that opened a session.
    pub(super) fn request_info(
        &self,
        id: ConnectionId,
        ep: usize,
        req: &Request,
        protocol: &'static str,
    ) -> RequestInfo {
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        RequestInfo {
            peer: self
                .conns
                .get(id)
                .map(|c| c.peer)
                .unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
            client_ip: self.client_ip(id, req),
            prefix: self.endpoints[ep].prefix.clone(),
            path: lossy(req.path()),
            query: lossy(req.query()),
            headers: req
                .headers
                .iter()
                .map(|h| (lossy(&h.name).to_ascii_lowercase(), lossy(&h.value)))
                .collect(),
            protocol,
        }
    }
}

/// When the next heartbeat is due on a receiver attached at `now`; never with a zero
/// `heartbeat_delay`, which turns heartbeats off.
pub(super) fn heartbeat_deadline(
    options: &crate::config::Options,
    now: Instant,
) -> Option<Instant> {
    let delay = options.heartbeat_delay;
    (!delay.is_zero()).then(|| now + delay)
}
