//! The [`Server`]: connections, sessions and timers tied together, driven by the host.
//!
//! The data path, one file each: [`connection`] (a connection's output, its life from accept
//! to close, its timeouts), [`dispatch`] (requests read from a connection, routed, and the
//! answers that are complete at once: greeting, `/info`, iframe, preflights, `xhr_send`,
//! `jsonp_send`, errors), then either [`receiver`] (sessions and the HTTP responses that
//! carry their frames) or [`websocket`] (upgrades and WebSocket connections). Every response
//! head goes through [`respond`], which writes HTTP/1.1 or records it for an [`exchange`] (a
//! request a host's own HTTP stack handed over). What only the server uses lives beside them:
//! [`session`] (a session's queue and deadlines), [`budget`] (the server-wide memory
//! budget), [`headers`] (CORS, caching, cookies), [`timer`], [`arena`].

mod arena;
mod authorize;
mod budget;
mod connection;
mod dispatch;
mod exchange;
mod headers;
mod peers;
mod receiver;
mod respond;
mod session;
mod timer;
mod websocket;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::config::{Config, Limits, Options};
use crate::io::{CloseReason, ConnectionId, Error, Event, Io, SessionId};
use crate::pages::IframePage;
use crate::stats::{Limit, Notice, RefusalCause, SessionStats, SessionTransport, Stats};

use self::arena::Arena;
use self::connection::{Closing, ConnState, Connection};
use self::peers::Peers;
use self::session::{Session, SessionKind};
use self::timer::{TimerOwner, TimerQueue};
use self::websocket::Broadcast;

/// Rounds of due timers one `handle_timeout` runs (each round runs what the last one made due).
const MAX_TIMEOUT_ROUNDS: usize = 16;
/// [`Notice`]s kept for a host that does not take them; older ones are dropped.
const MAX_NOTICES: usize = 1024;

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
/// **Hosts with their own HTTP stack** (hyper, say) hand over parsed requests instead of
/// bytes: [`Server::handle_request`] makes each an *exchange*, a connection that carries that
/// one request and its response, served by the same dispatch as requests the core decodes.
/// The run loop is the same, with one more [`Io`] and one rule for the end:
///
/// - [`Io::Respond`]: the response head is ready; [`Server::take_response`] gives it (status,
///   headers but for framing and persistence, the body's kind), and may end a response
///   without a body at once, so drain [`Server::poll_io`] after it.
/// - [`Io::Write`] and [`Server::output`]: the body's bytes, unframed. Take them when the
///   host's HTTP stack has room for more (its backpressure) and report them with
///   [`Server::handle_written`] as it accepts them; the core bounds and times them as on any
///   connection.
/// - [`Io::Close`]: the body is complete (`aborted: false`: end it) or must be reset. There
///   is no [`Io::Shutdown`] for an exchange: one request, one response, no keep-alive.
///   [`Server::handle_closed`] says the client went away. Input
///   ([`Server::handle_bytes`], [`Server::handle_eof`]) has no place before an upgrade
///   and is ignored.
/// - A head with [`Response::upgrade`](crate::Response::upgrade) (a `101`, or the `200`
///   of an RFC 8441 extended CONNECT): the host switches protocols; output waiting is the
///   upgraded stream's, which from then on is driven as a connection from
///   [`Server::accept`] (input, [`Io::Shutdown`] and [`Io::Close`] with their usual
///   meaning). A host that cannot upgrade calls [`Server::handle_closed`].
///
/// An application mounted under a path is reached with the full original path: the
/// endpoints' prefixes include the mount path.
///
/// **Shutdown**: after [`Server::shutdown`], keep running the loop until
/// [`Server::connection_count`] is zero; connections still open at
/// [`Limits::shutdown_timeout`] are closed by the core ([`Io::Close`] with `aborted`).
///
/// **Observability** asks nothing of the host: [`Server::stats`] and
/// [`Server::session_stats`] can be read at any time, and a host that logs takes
/// [`Server::poll_notice`] until `None` with its drain (a host that does not loses only the
/// oldest notices, past a thousand).
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
    /// Heap bytes the permessage-deflate state of every connection holds together: each
    /// connection adds and takes out its share, and its share leaves with it.
    deflate_memory: Arc<AtomicUsize>,
    /// The most deflate state every connection that agreed to compression may hold
    /// together: what the memory budget charges for it.
    deflate_reserved: Arc<AtomicUsize>,
    /// During [`Server::send_many`]: the message, and its compressed frames once made.
    broadcast: Option<Broadcast>,
    /// Messages the compressor ran for (a broadcast frame reused counts once).
    deflate_runs: u64,
    /// Connections and sessions per client address, when per-peer limits are set.
    peers: Peers,
    /// Proxies believed about their clients' addresses.
    trusted_proxies: Vec<crate::config::IpRange>,
    /// Requests answered as if their session did not exist, for not matching its binding.
    binding_refusals: u64,
    stats: Stats,
    notices: VecDeque<Notice>,
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
            deflate_memory: Arc::default(),
            deflate_reserved: Arc::default(),
            broadcast: None,
            deflate_runs: 0,
            peers: Peers::new(&config_limits),
            trusted_proxies: config.trusted_proxies,
            binding_refusals: 0,
            stats: Stats::default(),
            notices: VecDeque::new(),
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

    /// Heap bytes the permessage-deflate state of all connections holds now, about (the
    /// codec's [`DEFLATER_MEMORY`](crate::ws::deflate::DEFLATER_MEMORY) and
    /// [`INFLATER_MEMORY`](crate::ws::deflate::INFLATER_MEMORY) for each compressor and
    /// decompressor allocated): the figure a server-wide memory budget counts.
    ///
    /// A connection with context takeover holds its state from its first compressed message
    /// in each direction until it closes: about 354 KiB once both directions have compressed.
    /// Without context takeover the state is allocated for one message and freed after it,
    /// so it is never held between calls and this counts none of it. Connections that did
    /// not negotiate compression count nothing.
    pub fn deflate_memory(&self) -> usize {
        self.deflate_memory.load(Ordering::Relaxed)
    }

    /// How many messages the server's compressors have compressed (a broadcast frame
    /// compressed once and copied to many connections counts once): for tests.
    #[cfg(feature = "testing")]
    pub fn deflate_runs(&self) -> u64 {
        self.deflate_runs
    }

    /// Requests for a session that did not match its [`crate::SessionBinding`] (answered as
    /// if the session did not exist), since the server started.
    pub fn binding_refusals(&self) -> u64 {
        self.binding_refusals
    }

    /// The server's counters and gauges, as of now.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The figures of a session the core still knows (open, or closed and still answering
    /// with its close frame), or `None`.
    pub fn session_stats(&self, session: SessionId) -> Option<SessionStats> {
        let s = self.sessions.get(session)?;
        Some(SessionStats {
            transport: s.transport,
            open: s.is_open(),
            messages_in: s.messages_in,
            bytes_in: s.bytes_in,
            messages_out: s.messages_out,
            bytes_out: s.bytes_out,
            queued_messages: s.queue.len(),
            queued_bytes: s.queued_bytes,
        })
    }

    /// The next [`Notice`] for the operator's logs (a request refused, a limit hit), or
    /// None. Optional: see the run-loop contract.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// Registers a connection the host accepted from `peer`.
    pub fn accept(&mut self, now: Instant, peer: SocketAddr) -> ConnectionId {
        self.tick(now);
        let mut connection = Connection::new(peer, &self.limits, now);
        // Only accepted connections count toward their address's share: an exchange rides
        // on a connection the host's HTTP stack accepted and holds.
        let per_peer = self.peers.add_connection(peer.ip());
        connection.peer_counted = per_peer == Some(true);
        let (id, admitted) = self.admit(now, connection, per_peer == Some(false));
        if admitted {
            self.schedule_connection(id);
        }
        self.finish_call(now);
        id
    }

    /// Registers a new connection, or answers it `503` if the server is shutting down, at
    /// [`Limits::max_connections`], or its address at its share (`per_peer_refused`);
    /// returns whether it was let in.
    fn admit(
        &mut self,
        now: Instant,
        conn: Connection,
        per_peer_refused: bool,
    ) -> (ConnectionId, bool) {
        // Lingering connections are done with: they do not keep a new one out.
        let over_limit = self.conns.len() - self.lingering >= self.limits.max_connections;
        let id = self.conns.insert(conn);
        self.stats.connections_accepted += 1;
        if let Some(at) = self.shutdown_deadline {
            if self.shutdown_timer.is_none() {
                // The shutdown's end still bounds this one, however late it came.
                let at = at.max(now);
                self.shutdown_timer = Some(at);
                self.timers.push(TimerOwner::Shutdown, at);
            }
            self.refused(id, 503, RefusalCause::Shutdown, None);
            self.respond_error_and_close(id, 503, "Server busy");
            (id, false)
        } else if over_limit {
            self.refused(id, 503, RefusalCause::Limit, Some(Limit::Connections));
            self.respond_error_and_close(id, 503, "Server busy");
            (id, false)
        } else if per_peer_refused {
            self.refused(
                id,
                503,
                RefusalCause::Limit,
                Some(Limit::ConnectionsPerPeer),
            );
            self.respond_error_and_close(id, 503, "Too many connections from this address");
            (id, false)
        } else {
            (id, true)
        }
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
    /// ignored (an edge-triggered host may read end of stream again), and so are calls for an
    /// exchange before its upgrade.
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
                            self.limit_hit(Limit::ShutdownTimeout, Some(id), None);
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
        let result = self.enqueue(now, session, msg, text.len());
        self.finish_call(now);
        result
    }

    /// Queues one message for many sessions, encoding it once. Returns how many took it;
    /// closed or unknown sessions are skipped.
    ///
    /// With permessage-deflate ([`Options::compression`]): every WebSocket that agreed to
    /// `server_no_context_takeover` and takes the message at once, in a frame of its own,
    /// gets the same compressed frame, compressed once for all of them (per compression
    /// level, and once more for raw `/websocket` sessions, whose frame has no SockJS
    /// framing). A connection with context takeover compresses the message against its own
    /// window: one compression per such connection (the CPU `BENCHMARKS.md` measures per
    /// message), which is what the better ratio costs. A message that waits in a session's
    /// queue is compressed with the others of its frame when it is moved onto the connection.
    pub fn send_many(&mut self, now: Instant, sessions: &[SessionId], text: &str) -> usize {
        self.tick(now);
        // The queues and the compressed-frame cache share the message's allocations.
        self.broadcast = Some(Broadcast::default());
        let mut delivered = 0;
        for &session in sessions {
            let Some(s) = self.sessions.get(session) else {
                continue;
            };
            if !s.is_open() {
                continue;
            }
            let b = self.broadcast.get_or_insert_with(Broadcast::default);
            let msg = match s.kind {
                SessionKind::RawWebSocket => b
                    .raw
                    .get_or_insert_with(|| Bytes::copy_from_slice(text.as_bytes()))
                    .clone(),
                _ => b
                    .quoted
                    .get_or_insert_with(|| crate::frame::quote_message(text))
                    .clone(),
            };
            if self.enqueue(now, session, msg, text.len()).is_ok() {
                delivered += 1;
            }
        }
        // Its frames are for this message only.
        self.broadcast = None;
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
            // A request held for authorization would only be refused once answered.
            self.refuse_held_now(now, id, "Server shutting down");
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

    // ----- counting (see `crate::stats`) -----

    fn notice(&mut self, notice: Notice) {
        if self.notices.len() >= MAX_NOTICES {
            self.notices.pop_front();
            self.stats.notices_dropped += 1;
        }
        self.notices.push_back(notice);
    }

    /// Counts a request on `id` refused with `status`, and tells the host.
    fn refused(
        &mut self,
        id: ConnectionId,
        status: u16,
        cause: RefusalCause,
        limit: Option<Limit>,
    ) {
        let Some(c) = self.conns.get(id) else { return };
        let peer = c.peer;
        self.stats.refusal(status, cause, limit);
        self.notice(Notice::Refused {
            connection: id,
            peer,
            status,
            cause,
            limit,
        });
    }

    /// Counts a request the HTTP decoder refused (or one that timed out).
    fn refused_http(&mut self, id: ConnectionId, e: crate::http::HttpError) {
        use crate::http::HttpError;
        let limit = match e {
            HttpError::HEAD_TOO_LARGE => Some(Limit::HeadSize),
            HttpError::TOO_MANY_HEADERS => Some(Limit::Headers),
            HttpError::BODY_TOO_LARGE => Some(Limit::BodySize),
            HttpError::TIMEOUT => Some(Limit::RequestTimeout),
            _ => None,
        };
        let cause = match limit {
            Some(_) => RefusalCause::Limit,
            None => RefusalCause::Framing,
        };
        self.refused(id, e.status, cause, limit);
    }

    /// Counts a limit that ended a connection or a session, and tells the host.
    fn limit_hit(
        &mut self,
        limit: Limit,
        connection: Option<ConnectionId>,
        session: Option<SessionId>,
    ) {
        self.stats.limit_hits[limit.index()] += 1;
        let peer = connection.and_then(|id| self.conns.get(id)).map(|c| c.peer);
        self.notice(Notice::LimitHit {
            limit,
            connection,
            session,
            peer,
        });
    }

    /// Counts a session opened on `transport`.
    fn session_opened(&mut self, transport: SessionTransport) {
        self.stats.sessions_opened[transport.index()] += 1;
        self.stats.sessions_open[transport.index()] += 1;
    }

    /// Tells the application a session closed, and counts it: every [`Event::Closed`]
    /// goes out here, while the session is still known.
    fn session_closed(&mut self, session: SessionId, reason: CloseReason) {
        if let Some(s) = self.sessions.get(session) {
            let t = s.transport.index();
            self.stats.sessions_open[t] = self.stats.sessions_open[t].saturating_sub(1);
        }
        self.stats.sessions_closed[reason.kind().index()] += 1;
        self.events.push_back(Event::Closed { session, reason });
    }

    /// Gives the application a message from the client, and counts it.
    fn message_in(&mut self, session: SessionId, connection: ConnectionId, text: String) {
        let len = text.len() as u64;
        self.stats.messages_in += 1;
        self.stats.message_bytes_in += len;
        if let Some(s) = self.sessions.get_mut(session) {
            s.messages_in += 1;
            s.bytes_in += len;
        }
        self.events.push_back(Event::Message {
            session,
            connection,
            text,
        });
    }
}
