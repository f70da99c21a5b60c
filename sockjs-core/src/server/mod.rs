//! The [`Server`]: connections, sessions and timers tied together, driven by the host.
//!
//! The data path, one file each: [`connection`] (a connection's output, its life from accept
//! to close, its timeouts), [`dispatch`] (requests read from a connection, routed, and the
//! answers that are complete at once: greeting, `/info`, iframe, preflights, `xhr_send`,
//! `jsonp_send`, errors), then either [`receiver`] (sessions and the HTTP responses that
//! carry their frames) or [`websocket`] (upgrades and WebSocket connections). What only the
//! server uses lives beside them: [`session`] (a session's queue and deadlines), [`budget`]
//! (the server-wide memory budget), [`headers`] (CORS, caching, cookies), [`timer`],
//! [`arena`].

mod arena;
mod budget;
mod connection;
mod dispatch;
mod headers;
mod peers;
mod receiver;
mod session;
mod timer;
mod websocket;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::config::{Config, Limits, Options};
use crate::io::{CloseReason, ConnectionId, Error, Event, Io, SessionId};
use crate::pages::IframePage;

use self::arena::Arena;
use self::connection::{Closing, ConnState, Connection};
use self::peers::Peers;
use self::session::{Session, SessionKind};
use self::timer::{TimerOwner, TimerQueue};

/// Rounds of due timers one `handle_timeout` runs (each round runs what the last one made due).
const MAX_TIMEOUT_ROUNDS: usize = 16;

/// A source of unpredictable numbers for `/info`'s `entropy` field; the core has no
/// randomness of its own.
pub type Entropy = Box<dyn FnMut() -> u32 + Send>;

/// The SockJS server state machine.
///
/// # The run-loop contract
///
/// The host owns the sockets, one timer and the application; the core owns every protocol
/// decision and every byte count. A host does exactly this:
///
/// 1. **Accept** a connection: [`Server::accept`] gives its [`ConnectionId`] (its
///    [`ConnectionId::index`] fits a slab or an event-loop token).
/// 2. **Read**: pass the bytes to [`Server::handle_bytes`]. At end of stream (the peer
///    half-closed), call [`Server::handle_eof`]; on a read or write error (the peer is gone),
///    call [`Server::handle_closed`], which forgets the connection at once.
/// 3. **Drain after every call that takes `now`** ([`Server::accept`], every `handle_*`,
///    [`Server::send`], [`Server::send_many`], [`Server::close`], [`Server::shutdown`]):
///    - [`Server::poll_event`] until `None`, handing each [`Event`] to the application (which
///      may call [`Server::send`] or [`Server::close`]; drain again after those);
///    - [`Server::poll_io`] until `None`, doing what each [`Io`] says: on [`Io::Write`],
///      write [`Server::output`] and report every write with [`Server::handle_written`]
///      until the output is empty or the socket would block (then again once writable); on
///      [`Io::Shutdown`], shut the write side down and keep reading; on [`Io::Close`], close
///      the socket.
/// 4. **Time**: re-arm one timer for [`Server::poll_timeout`] and call
///    [`Server::handle_timeout`] when it fires (early or late is harmless: what is due runs).
///
/// The host keeps no byte counts and no per-connection buffers of its own: a connection's
/// unwritten output stays in the core, which moves no more session messages onto it while
/// more than [`Limits::max_unflushed_bytes`] wait (one frame may pass that when a single
/// message is larger), and aborts it when the peer takes nothing for
/// [`Limits::write_timeout`]. Ids the core has forgotten are ignored by every call.
///
/// **Backpressure on input** is the host's: [`Event::Message`] names the connection that
/// carried the message; a host whose application is behind stops reading that connection
/// until it catches up (the async layer does so past its `max_inbound_bytes`).
///
/// **Shutdown**: after [`Server::shutdown`], keep running the loop until
/// [`Server::connection_count`] is zero; connections still open at
/// [`Limits::shutdown_timeout`] are closed by the core ([`Io::Close`] with `aborted`).
pub struct Server {
    endpoints: Vec<EndpointState>,
    limits: Limits,
    conns: Arena<ConnectionId, Connection>,
    sessions: Arena<SessionId, Session>,
    timers: TimerQueue,
    events: VecDeque<Event>,
    io: VecDeque<Io>,
    /// Connections whose response ended, to look for pipelined requests after this call.
    resume: Vec<ConnectionId>,
    clock: WallClock,
    /// The latest `now` any call passed: the core's idea of the present.
    last_now: Instant,
    entropy: Entropy,
    /// Set by [`Server::shutdown`]: when connections still open are ended.
    shutdown_deadline: Option<Instant>,
    /// Connections in [`ConnState::Lingering`].
    lingering: usize,
    /// The shutdown's entry in the timer queue, if it is there.
    shutdown_timer: Option<Instant>,
    /// Connections and sessions per client address, when per-peer limits are set.
    peers: Peers,
    /// Bytes held for everyone (see [`Server::buffered_bytes`]).
    buffered: usize,
    /// Bytes of inbound messages the host last reported held ([`Server::set_held_inbound`]).
    held_inbound: usize,
    /// Sessions queueing at least `rank_floor` bytes, by bytes queued: who the memory
    /// budget closes first.
    ranking: BTreeSet<(usize, SessionId)>,
    /// Connections with at least `rank_floor` bytes of output waiting, by those bytes.
    output_ranking: BTreeSet<(usize, ConnectionId)>,
    rank_floor: usize,
}

struct EndpointState {
    prefix: String,
    options: Options,
    iframe: IframePage,
    /// HTTP sessions by the client's session id.
    sessions: BTreeMap<Box<[u8]>, SessionId>,
}

/// Maps the monotonic `now` the host passes to wall-clock seconds, for `Expires`.
struct WallClock {
    start: Instant,
    start_unix: u64,
}

impl WallClock {
    fn unix(&self, now: Instant) -> u64 {
        self.start_unix + now.saturating_duration_since(self.start).as_secs()
    }
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
        let config_limits = config.limits.clone();
        Server {
            endpoints,
            limits: config.limits,
            conns: Arena::new(),
            sessions: Arena::new(),
            timers: TimerQueue::default(),
            events: VecDeque::new(),
            io: VecDeque::new(),
            resume: Vec::new(),
            clock: WallClock {
                start: now,
                start_unix,
            },
            last_now: now,
            entropy,
            shutdown_deadline: None,
            lingering: 0,
            shutdown_timer: None,
            peers: Peers::new(&config_limits),
            buffered: 0,
            held_inbound: 0,
            ranking: BTreeSet::new(),
            output_ranking: BTreeSet::new(),
            rank_floor: budget::rank_floor(config_limits.max_buffered_bytes),
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

    /// Connections the core has not forgotten: those the host must keep serving.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether the core still knows `conn` (it forgets a connection with [`Io::Close`] and on
    /// [`Server::handle_closed`]).
    pub fn is_connection(&self, conn: ConnectionId) -> bool {
        self.conns.contains(conn)
    }

    /// Sessions alive (open, or closed and still answering with their close frame).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The bytes and the number of messages queued in an open session for its client and
    /// not yet moved onto a connection, or `None` if the session is closed or unknown.
    /// Read-only: a host uses it to hold a producer back before [`Server::send`] would
    /// overflow [`Limits::max_queued_bytes`] or [`Limits::max_queued_messages`].
    pub fn queued(&self, session: SessionId) -> Option<(usize, usize)> {
        let s = self.sessions.get(session)?;
        s.is_open().then_some((s.queued_bytes, s.queue.len()))
    }

    /// Registers a connection the host accepted from `peer`.
    pub fn accept(&mut self, now: Instant, peer: SocketAddr) -> ConnectionId {
        self.tick(now);
        // Lingering connections are done with: they do not keep a new one out.
        let over_limit = self.conns.len() - self.lingering >= self.limits.max_connections;
        let mut connection = Connection::new(peer, &self.limits, now);
        let per_peer = self.peers.add_connection(peer.ip());
        connection.peer_counted = per_peer == Some(true);
        let id = self.conns.insert(connection);
        if let Some(at) = self.shutdown_deadline {
            if self.shutdown_timer.is_none() {
                // The shutdown's end still bounds this one, however late it came.
                let at = at.max(now);
                self.shutdown_timer = Some(at);
                self.timers.push(TimerOwner::Shutdown, at);
            }
            self.respond_error_and_close(id, 503, "Server busy");
        } else if over_limit {
            self.respond_error_and_close(id, 503, "Server busy");
        } else if per_peer == Some(false) {
            self.respond_error_and_close(id, 503, "Too many connections from this address");
        } else {
            self.schedule_connection(id);
        }
        self.finish_call(now);
        id
    }

    /// Feeds bytes read from a connection.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnectionId, data: &[u8]) {
        self.tick(now);
        self.connection_input(now, conn, data);
        self.finish_call(now);
    }

    /// Reports that the peer ended its side of the connection (end of stream). What is still
    /// to be written is written; a session receiving on the connection then ends as if the
    /// connection were lost, since its client cannot send again. Calls after the first are
    /// ignored (an edge-triggered host may read end of stream again).
    pub fn handle_eof(&mut self, now: Instant, conn: ConnectionId) {
        self.tick(now);
        self.connection_eof(now, conn);
        self.finish_call(now);
    }

    /// Reports that `n` bytes from the front of [`Server::output`] reached the socket.
    pub fn handle_written(&mut self, now: Instant, conn: ConnectionId, n: usize) {
        self.tick(now);
        self.connection_written(now, conn, n);
        self.finish_call(now);
    }

    /// Reports that a connection is gone (reading or writing failed, or the host dropped
    /// it): the core forgets it at once, and no [`Io`] comes for it any more. A session
    /// receiving on it is closed as interrupted (WebSocket sessions as closed by the client).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnectionId) {
        self.tick(now);
        self.connection_lost(now, conn, Closing::Forget);
        self.finish_call(now);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        // A deadline that moved earlier than its queued entry is found when the entry is
        // pruned: run it now too, so that nothing due is left for after this call.
        for _ in 0..MAX_TIMEOUT_ROUNDS {
            self.run_due(now);
            self.finish_call(now);
            if self.timers.next().is_none_or(|t| t > now) {
                return;
            }
        }
    }

    fn run_due(&mut self, now: Instant) {
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
                TimerOwner::Shutdown => {
                    if self.shutdown_timer == Some(at) {
                        self.shutdown_timer = None;
                        for id in self.conns.ids() {
                            self.connection_lost(now, id, Closing::Abort);
                        }
                    }
                }
            }
        }
    }

    /// Queues a message for a session's client.
    pub fn send(&mut self, now: Instant, session: SessionId, text: &str) -> Result<(), Error> {
        self.tick(now);
        let s = self.sessions.get(session).ok_or(Error::SessionClosed)?;
        if !s.is_open() {
            return Err(Error::SessionClosed);
        }
        let msg = match s.kind {
            SessionKind::RawWebSocket => Bytes::copy_from_slice(text.as_bytes()),
            _ => crate::frame::quote_message(text),
        };
        let result = self.enqueue(now, session, msg);
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
        for &session in sessions {
            let Some(s) = self.sessions.get(session) else {
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
            if self.enqueue(now, session, msg).is_ok() {
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
        if !self.sessions.get(session).is_some_and(Session::is_open) {
            return Err(Error::SessionClosed);
        }
        let reason = CloseReason::Application {
            code,
            reason: reason.to_string(),
        };
        self.close_session(now, session, reason);
        self.finish_call(now);
        Ok(())
    }

    /// Starts a graceful shutdown: every open session is closed with
    /// `c[1001,"Server shutting down"]`, idle connections are closed (others once the request
    /// under way is answered), and new connections and sessions are refused with 503.
    /// Connections still open [`Limits::shutdown_timeout`] later are closed with
    /// [`Io::Close`] `aborted`. The host runs its loop until [`Server::connection_count`] is 0.
    pub fn shutdown(&mut self, now: Instant) {
        self.tick(now);
        if self.shutdown_deadline.is_none() {
            let at = now + self.limits.shutdown_timeout;
            self.shutdown_deadline = Some(at);
            self.shutdown_timer = Some(at);
            self.timers.push(TimerOwner::Shutdown, at);
        }
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
                self.close_connection(id, Closing::Graceful);
            }
        }
        self.finish_call(now);
    }

    /// Whether [`Server::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// The bytes waiting to be written to `conn`, oldest first, in chunks for one vectored
    /// write (empty if none wait or the connection is unknown). Report what the socket took
    /// with [`Server::handle_written`]; the chunks are cheap to clone for a write made
    /// elsewhere, as long as one writer at a time writes a connection.
    pub fn output(&mut self, conn: ConnectionId) -> &[Bytes] {
        match self.conns.get_mut(conn) {
            Some(c) => {
                c.announced = false;
                c.out.chunks()
            }
            None => &[],
        }
    }

    /// Whether the core is waiting to hear of writes to `conn` before it does more for it:
    /// the connection is closing or its peer has ended its side (it closes once its output
    /// is written), or messages are held back until its output drains. A host may report
    /// writes lazily, with its next call into the core, except while this is true.
    pub fn awaits_written(&self, conn: ConnectionId) -> bool {
        let Some(c) = self.conns.get(conn) else {
            return false;
        };
        if c.eof || matches!(c.state, ConnState::Closed) {
            return true;
        }
        self.receiving_session(conn)
            .and_then(|s| self.sessions.get(s))
            .is_some_and(|s| !s.queue.is_empty() || !s.is_open())
    }

    /// How many bytes wait to be written to `conn`.
    pub fn output_len(&self, conn: ConnectionId) -> usize {
        self.conns.get(conn).map_or(0, |c| c.out.len())
    }

    /// The next thing the host must do with a connection, or None.
    pub fn poll_io(&mut self) -> Option<Io> {
        self.io.pop_front()
    }

    /// The next event for the application, or None.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Server::handle_timeout`] should next be called: the earliest deadline of a
    /// connection or session the core still has, or None when there is nothing to time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Records the present; time never runs backwards for the core.
    fn tick(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    /// Work left for the end of every public call: requests pipelined behind a response
    /// that has just ended, and the timer queue cleared of deadlines nobody has any more.
    fn finish_call(&mut self, now: Instant) {
        while let Some(id) = self.resume.pop() {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            if matches!(c.state, ConnState::Http) {
                self.read_requests(now, id);
            }
        }
        self.prune_timers();
    }

    /// Drops stale entries from the top of the timer queue, so that [`Server::poll_timeout`]
    /// is a deadline someone still has: owners that are gone, entries superseded by an
    /// earlier one, and entries for a deadline that has since moved later (queued again at
    /// its real time).
    fn prune_timers(&mut self) {
        while let Some((at, owner)) = self.timers.peek() {
            let real = match owner {
                TimerOwner::Connection(id) => match self.conns.get(id) {
                    Some(c) if c.scheduled == Some(at) => Some(c.deadline(&self.limits)),
                    _ => None,
                },
                TimerOwner::Session(id) => match self.sessions.get(id) {
                    Some(s) if s.scheduled == Some(at) => Some(s.next_deadline()),
                    _ => None,
                },
                TimerOwner::Shutdown => {
                    if self.shutdown_timer == Some(at) {
                        if !self.conns.is_empty() {
                            return;
                        }
                        // Nothing to end: queued again if a connection comes (see `accept`).
                        self.shutdown_timer = None;
                    }
                    None
                }
            };
            if real == Some(Some(at)) {
                return;
            }
            self.timers.pop();
            match (owner, real) {
                (TimerOwner::Connection(id), Some(_)) => {
                    if let Some(c) = self.conns.get_mut(id) {
                        c.scheduled = None;
                    }
                    self.schedule_connection(id);
                }
                (TimerOwner::Session(id), Some(_)) => {
                    if let Some(s) = self.sessions.get_mut(id) {
                        s.scheduled = None;
                    }
                    self.schedule_session(id);
                }
                _ => {}
            }
        }
    }

    fn schedule_session(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let at = s.next_deadline();
        self.timers
            .schedule(TimerOwner::Session(id), &mut s.scheduled, at);
    }

    fn next_entropy(&mut self) -> u32 {
        (self.entropy)()
    }
}
