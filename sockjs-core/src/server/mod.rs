//! The [`Server`]: connections, sessions and timers tied together, driven by the adapter.
//!
//! Data path, one file each: [`http`] (a connection reading requests, routing them, answering
//! the fixed pages and the `*_send` transports), [`receiver`] (sessions and the HTTP responses
//! that carry their frames), [`websocket`] (upgrades and WebSocket connections).

mod http;
mod receiver;
mod websocket;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use crate::arena::Arena;
use crate::config::{Config, Limits, Options};
use crate::event::{After, CloseReason, ConnectionId, Error, Event, SessionId, Transmit};
use crate::http::{DecoderLimits, RequestDecoder};
use crate::pages::IframePage;
use crate::session::{Session, SessionKind};
use crate::timer::{TimerOwner, TimerQueue};

use self::receiver::Receiver;
use self::websocket::{PendingHixie, WsConnection};

/// A source of unpredictable numbers for `/info`'s `entropy` field; the core has no
/// randomness of its own.
pub type Entropy = Box<dyn FnMut() -> u32 + Send>;

/// The SockJS server state machine.
///
/// The run-loop contract: after **every** call that takes `now` (`accept`, `handle_*`, `send`,
/// `close`, `shutdown`), drain [`Server::poll_transmit`] and [`Server::poll_event`] until they
/// return `None`, then re-arm one timer for [`Server::poll_timeout`] and call
/// [`Server::handle_timeout`] when it fires. Report bytes as they reach the socket with
/// [`Server::handle_written`]: the core stops feeding a connection that has more than
/// [`Limits::max_unflushed_bytes`] unreported, and aborts one that reports no progress for
/// [`Limits::write_timeout`].
pub struct Server {
    endpoints: Vec<EndpointState>,
    limits: Limits,
    conns: Arena<Connection>,
    sessions: Arena<Session>,
    timers: TimerQueue,
    /// Connections with bytes or a close waiting for `poll_transmit`.
    dirty: VecDeque<u64>,
    events: VecDeque<Event>,
    /// Connections whose response ended, to look for pipelined requests after this call.
    resume: Vec<u64>,
    clock: WallClock,
    /// The latest `now` any call passed: the core's idea of the present.
    last_now: Instant,
    entropy: Entropy,
    shutting_down: bool,
}

struct EndpointState {
    prefix: String,
    options: Options,
    iframe: IframePage,
    /// HTTP sessions by the client's session id.
    sessions: BTreeMap<Box<[u8]>, u64>,
}

/// Maps the monotonic `now` the adapter passes to wall-clock seconds, for `Expires`.
struct WallClock {
    start: Instant,
    start_unix: u64,
}

impl WallClock {
    fn unix(&self, now: Instant) -> u64 {
        self.start_unix + now.saturating_duration_since(self.start).as_secs()
    }
}

struct Connection {
    peer: SocketAddr,
    decoder: RequestDecoder,
    state: ConnState,
    /// Bytes produced and not yet taken by `poll_transmit`.
    out: BytesMut,
    /// In `Server::dirty`.
    dirty: bool,
    /// What the next transmit asks after its data.
    after: After,
    /// Closed, and its last bytes are still being written: forgotten once they are, aborted
    /// if they are not within `write_timeout`.
    draining: bool,
    /// Bytes taken by `poll_transmit` and not yet reported written.
    unflushed: usize,
    /// The HTTP session whose frames are among the bytes not yet written, if any.
    carried: Option<u64>,
    /// Last time the peer took bytes (or the first unflushed byte went out).
    write_progress: Instant,
    /// When the request now arriving started, if one is.
    request_started: Option<Instant>,
    /// When the connection last became idle between requests.
    idle_since: Instant,
    scheduled: Option<Instant>,
}

enum ConnState {
    /// Reading requests (or idle between them).
    Http,
    /// Answering with a response that carries session frames.
    Receiving(Receiver),
    /// A hixie-76 handshake answered, waiting for its 8 key bytes.
    AwaitingKey3(Box<PendingHixie>),
    /// Switched to WebSocket.
    WebSocket(Box<WsConnection>),
    /// Closing: input is ignored, the close is waiting for `poll_transmit`.
    Closed,
}

impl Server {
    /// A server for `config`. `now` and `wall_clock` are the same moment on the monotonic and
    /// the system clock (the core reads neither; the wall clock only dates `Expires` headers).
    /// `entropy` feeds `/info`.
    pub fn new(config: Config, now: Instant, wall_clock: SystemTime, entropy: Entropy) -> Self {
        let endpoints = config
            .endpoints
            .into_iter()
            .map(|e| EndpointState {
                iframe: IframePage::new(&e.options.sockjs_url),
                prefix: e.prefix,
                options: e.options,
                sessions: BTreeMap::new(),
            })
            .collect();
        let start_unix = wall_clock
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        Server {
            endpoints,
            limits: config.limits,
            conns: Arena::new(),
            sessions: Arena::new(),
            timers: TimerQueue::default(),
            dirty: VecDeque::new(),
            events: VecDeque::new(),
            resume: Vec::new(),
            clock: WallClock {
                start: now,
                start_unix,
            },
            last_now: now,
            entropy,
            shutting_down: false,
        }
    }

    /// The options of endpoint `index` (as numbered in [`Event::Opened`]).
    pub fn endpoint_options(&self, index: usize) -> Option<&Options> {
        self.endpoints.get(index).map(|e| &e.options)
    }

    /// The prefix of endpoint `index`.
    pub fn endpoint_prefix(&self, index: usize) -> Option<&str> {
        self.endpoints.get(index).map(|e| e.prefix.as_str())
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Connections the core is tracking.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Sessions alive (open, or closed and still answering with their close frame).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Registers a connection the adapter accepted from `peer`.
    pub fn accept(&mut self, now: Instant, peer: SocketAddr) -> ConnectionId {
        self.tick(now);
        let over_limit = self.conns.len() >= self.limits.max_connections;
        let id = self.conns.insert(Connection {
            peer,
            decoder: RequestDecoder::new(DecoderLimits {
                max_head_size: self.limits.max_head_size,
                max_headers: self.limits.max_headers,
                max_body_size: self.limits.max_body_size,
            }),
            state: ConnState::Http,
            out: BytesMut::new(),
            dirty: false,
            after: After::KeepOpen,
            draining: false,
            unflushed: 0,
            carried: None,
            write_progress: now,
            request_started: None,
            idle_since: now,
            scheduled: None,
        });
        if over_limit || self.shutting_down {
            self.respond_error_and_close(id, 503, "Server busy");
        } else {
            self.schedule_connection(id);
        }
        ConnectionId(id)
    }

    /// Feeds bytes read from a connection.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnectionId, data: &[u8]) {
        self.tick(now);
        let id = conn.0;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        match &c.state {
            ConnState::Closed => {}
            ConnState::WebSocket(_) | ConnState::AwaitingKey3(_) => {
                self.websocket_input(now, id, data)
            }
            ConnState::Http | ConnState::Receiving(_) => {
                c.decoder.feed(data);
                if c.request_started.is_none() && c.decoder.in_request() {
                    c.request_started = Some(now);
                }
                if matches!(c.state, ConnState::Http) {
                    self.read_requests(now, id);
                } else if c.decoder.buffered()
                    > self.limits.max_head_size + self.limits.max_body_size
                {
                    // Pipelining past a response that is still going: bounded, then refused.
                    self.connection_lost(now, id, After::Abort);
                }
            }
        }
        self.finish_call(now);
    }

    /// Reports that `n` more bytes of this connection's transmits reached the socket.
    pub fn handle_written(&mut self, now: Instant, conn: ConnectionId, n: usize) {
        self.tick(now);
        let id = conn.0;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let was_blocked = c.unflushed + c.out.len() > self.limits.max_unflushed_bytes;
        c.unflushed = c.unflushed.saturating_sub(n);
        c.write_progress = now;
        if c.unflushed == 0 && c.out.is_empty() {
            c.carried = None;
        }
        if c.draining && c.unflushed == 0 {
            self.conns.remove(id);
            self.finish_call(now);
            return;
        }
        let unblocked = c.unflushed + c.out.len() <= self.limits.max_unflushed_bytes;
        if was_blocked
            && unblocked
            && let Some(session) = self.receiving_session(id)
        {
            self.deliver(now, session, false);
        }
        self.schedule_connection(id);
        self.finish_call(now);
    }

    /// Reports that a connection is gone: the peer closed it, or reading or writing failed.
    /// A session receiving on it is closed as interrupted (WebSocket sessions as closed by
    /// the client).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnectionId) {
        self.tick(now);
        self.connection_lost(now, conn.0, After::Abort);
        // The adapter has the socket gone already: nothing more goes to it.
        if self
            .conns
            .get(conn.0)
            .is_some_and(|c| matches!(c.state, ConnState::Closed))
        {
            self.conns.remove(conn.0);
        }
        self.finish_call(now);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        while let Some((at, owner)) = self.timers.pop_due(now) {
            match owner {
                TimerOwner::Connection(id) => {
                    let Some(c) = self.conns.get_mut(id) else {
                        continue;
                    };
                    if c.scheduled != Some(at) {
                        continue;
                    }
                    c.scheduled = None;
                    self.connection_timeout(now, id);
                    self.schedule_connection(id);
                }
                TimerOwner::Session(id) => {
                    let Some(s) = self.sessions.get_mut(id) else {
                        continue;
                    };
                    if s.scheduled != Some(at) {
                        continue;
                    }
                    s.scheduled = None;
                    self.session_timeout(now, id);
                    self.schedule_session(id);
                }
            }
        }
        self.finish_call(now);
    }

    /// Queues a message for a session's client.
    pub fn send(&mut self, now: Instant, session: SessionId, text: &str) -> Result<(), Error> {
        self.tick(now);
        let s = self.sessions.get(session.0).ok_or(Error::SessionClosed)?;
        if !s.is_open() {
            return Err(Error::SessionClosed);
        }
        let msg = match s.kind {
            SessionKind::RawWebSocket => Bytes::copy_from_slice(text.as_bytes()),
            _ => crate::frame::quote_message(text),
        };
        let result = self.enqueue(now, session.0, msg);
        self.finish_call(now);
        result
    }

    /// Queues one message for many sessions, encoding it once. Returns how many took it;
    /// closed or unknown sessions are skipped.
    pub fn send_many(&mut self, now: Instant, sessions: &[SessionId], text: &str) -> usize {
        self.tick(now);
        let mut quoted: Option<Bytes> = None;
        let mut raw: Option<Bytes> = None;
        let mut delivered = 0;
        for session in sessions {
            let Some(s) = self.sessions.get(session.0) else {
                continue;
            };
            if !s.is_open() {
                continue;
            }
            let msg = match s.kind {
                SessionKind::RawWebSocket => raw
                    .get_or_insert_with(|| Bytes::copy_from_slice(text.as_bytes()))
                    .clone(),
                _ => quoted
                    .get_or_insert_with(|| crate::frame::quote_message(text))
                    .clone(),
            };
            if self.enqueue(now, session.0, msg).is_ok() {
                delivered += 1;
            }
        }
        self.finish_call(now);
        delivered
    }

    /// Closes a session with `code` and `reason`: the client gets `c[code,"reason"]` (or, on
    /// a raw WebSocket, a close frame with them) after any messages still queued.
    pub fn close(
        &mut self,
        now: Instant,
        session: SessionId,
        code: u16,
        reason: &str,
    ) -> Result<(), Error> {
        self.tick(now);
        if !self.sessions.get(session.0).is_some_and(Session::is_open) {
            return Err(Error::SessionClosed);
        }
        let reason = CloseReason::Application {
            code,
            reason: reason.to_string(),
        };
        self.close_session(now, session.0, reason);
        self.finish_call(now);
        Ok(())
    }

    /// Starts a graceful shutdown: every open session is closed with
    /// `c[1001,"Server shutting down"]`, idle connections are closed (others once the request
    /// under way is answered), and new connections and sessions are refused with 503. The
    /// adapter then flushes and waits until [`Server::connection_count`] reaches zero (or its
    /// own deadline).
    pub fn shutdown(&mut self, now: Instant) {
        self.tick(now);
        self.shutting_down = true;
        for id in self.sessions.ids() {
            if self.sessions.get(id).is_some_and(Session::is_open) {
                self.close_session(now, id, CloseReason::Shutdown);
            }
        }
        for id in self.conns.ids() {
            let idle = self
                .conns
                .get(id)
                .is_some_and(|c| matches!(c.state, ConnState::Http) && c.request_started.is_none());
            if idle {
                self.close_connection(id, After::Close);
            }
        }
        self.finish_call(now);
    }

    /// The next bytes to write, or None.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(id) = self.dirty.pop_front() {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            c.dirty = false;
            let data = c.out.split().freeze();
            let after = c.after;
            if c.unflushed == 0 && !data.is_empty() {
                // Writes stall from now if the peer takes nothing.
                c.write_progress = self.last_now;
            }
            c.unflushed += data.len();
            match after {
                After::KeepOpen => {
                    if !data.is_empty() {
                        self.schedule_connection(id);
                    }
                }
                After::Close if c.unflushed > 0 => {
                    // Kept until the last byte is reported written, so a peer that stops
                    // reading now is still aborted after `write_timeout`.
                    c.draining = true;
                    c.after = After::KeepOpen;
                    self.schedule_connection(id);
                }
                After::Close | After::Abort => {
                    self.conns.remove(id);
                }
            }
            return Some(Transmit {
                connection: ConnectionId(id),
                data,
                after,
            });
        }
        None
    }

    /// The next event for the application, or None.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The bytes and the number of messages queued in an open session for its client and
    /// not yet moved onto a connection, or `None` if the session is closed or unknown.
    /// Read-only: an adapter uses it to hold a producer back before [`Server::send`] would
    /// overflow [`Limits::max_queued_bytes`] or [`Limits::max_queued_messages`].
    pub fn queued(&self, session: SessionId) -> Option<(usize, usize)> {
        let s = self.sessions.get(session.0)?;
        s.is_open().then_some((s.queued_bytes, s.queue.len()))
    }

    /// When [`Server::handle_timeout`] should next be called. It may be called earlier or
    /// later; it runs what is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Records the present; time never runs backwards for the core.
    fn tick(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    /// Work left for the end of every public call: requests pipelined behind a response
    /// that has just ended.
    fn finish_call(&mut self, now: Instant) {
        while let Some(id) = self.resume.pop() {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            if matches!(c.state, ConnState::Http) {
                self.read_requests(now, id);
            }
        }
    }

    /// Appends to a connection's output.
    fn write(&mut self, id: u64, f: impl FnOnce(&mut BytesMut)) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        f(&mut c.out);
        if !c.dirty {
            c.dirty = true;
            self.dirty.push_back(id);
        }
    }

    /// Ends a connection once what it has queued is written (`After::Close`), or at once.
    fn close_connection(&mut self, id: u64, after: After) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.state = ConnState::Closed;
        c.after = after;
        if !c.dirty {
            c.dirty = true;
            self.dirty.push_back(id);
        }
    }

    /// The connection is no use any more (gone, or too slow): detaches and ends whatever it
    /// carried, then closes it with `after`.
    fn connection_lost(&mut self, now: Instant, id: u64, after: After) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let state = std::mem::replace(&mut c.state, ConnState::Closed);
        // Frames of a session that never reached the socket are lost with it.
        let undelivered = c.carried.filter(|_| c.unflushed > 0 || !c.out.is_empty());
        match state {
            ConnState::Receiving(r) => {
                if let Some(session) = r.session {
                    self.receiver_lost(now, session, id);
                }
            }
            ConnState::WebSocket(ws) => {
                self.websocket_lost(now, ws.session, 1006, "");
            }
            ConnState::Http | ConnState::AwaitingKey3(_) | ConnState::Closed => {}
        }
        if let Some(session) = undelivered {
            // A response that had ended (polling, or past `response_limit`) but whose bytes
            // were not all written: the client may have missed messages, so the session
            // cannot go on as if it had them.
            self.close_session(now, session, CloseReason::Interrupted);
        }
        self.close_connection(id, after);
    }

    fn schedule_connection(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let limits = &self.limits;
        let state_deadline = match &c.state {
            ConnState::Http => Some(match c.request_started {
                Some(t) => t + limits.request_timeout,
                None => c.idle_since + limits.keep_alive_timeout,
            }),
            ConnState::WebSocket(ws) => ws.close_deadline,
            ConnState::AwaitingKey3(p) => Some(p.started + limits.request_timeout),
            ConnState::Receiving(_) => None,
            // Closed and flushing its last bytes: only the write deadline counts. Otherwise
            // only waiting for `poll_transmit` to take the close: nothing left to time out (a
            // write deadline already passed would fire again at once, forever).
            ConnState::Closed if c.draining && c.after == After::KeepOpen => None,
            ConnState::Closed => return,
        };
        let write_deadline = (c.unflushed > 0).then(|| c.write_progress + limits.write_timeout);
        let at = [state_deadline, write_deadline].into_iter().flatten().min();
        self.timers
            .schedule(TimerOwner::Connection(id), &mut c.scheduled, at);
    }

    fn schedule_session(&mut self, id: u64) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let at = s.next_deadline();
        self.timers
            .schedule(TimerOwner::Session(id), &mut s.scheduled, at);
    }

    fn connection_timeout(&mut self, now: Instant, id: u64) {
        let Some(c) = self.conns.get(id) else { return };
        if c.unflushed > 0 && c.write_progress + self.limits.write_timeout <= now {
            self.connection_lost(now, id, After::Abort);
            return;
        }
        match &c.state {
            ConnState::Http => match c.request_started {
                Some(t) if t + self.limits.request_timeout <= now => {
                    let e = crate::http::HttpError::TIMEOUT;
                    self.respond_error_and_close(id, e.status, e.reason);
                }
                None if c.idle_since + self.limits.keep_alive_timeout <= now => {
                    self.close_connection(id, After::Close);
                }
                _ => {}
            },
            ConnState::WebSocket(ws) => {
                if ws.close_deadline.is_some_and(|t| t <= now) {
                    self.close_connection(id, After::Close);
                }
            }
            ConnState::AwaitingKey3(p) => {
                if p.started + self.limits.request_timeout <= now {
                    self.close_connection(id, After::Close);
                }
            }
            ConnState::Receiving(_) | ConnState::Closed => {}
        }
    }

    fn next_entropy(&mut self) -> u32 {
        (self.entropy)()
    }
}
