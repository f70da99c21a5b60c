//! The [`Harness`]: a [`Server`] on a virtual clock, driven the way a host drives it, and the
//! clients connected to it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::http_client::BodyMode;
use super::{WALL_CLOCK_SECS, lossy};
use crate::http::Request;
use crate::{
    Config, ConnectionId, Error, Event, Io, Limits, Notice, Options, RequestExtras, Response,
    Server, SessionId,
};

/// Wake-ups one `advance` may take before the harness calls it a busy loop.
const MAX_WAKEUPS: usize = 100_000;
/// Rounds of write/written reports one drain may take.
const MAX_DRAIN_ROUNDS: usize = 100_000;
/// The first local port [`Harness::connect`] uses.
const FIRST_PORT: u16 = 40_000;

/// How the server ended a connection, as its client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Everything was written, then the server shut its side down ([`Io::Shutdown`], or an
    /// [`Io::Close`] that dropped nothing).
    Close,
    /// The server dropped the connection with output unwritten ([`Io::Close`] `aborted`).
    Abort,
}

/// A [`Server`] on a virtual clock, the host around it, and the clients talking to it.
///
/// The clock starts at one `Instant::now()` and only moves by [`Harness::advance`] (or
/// [`Harness::fire_timer_late`]): nothing sleeps. After every call into the server the
/// harness drains [`Server::poll_event`] and [`Server::poll_io`] completely, as the run-loop
/// contract asks, keeps the events for the test ([`Harness::take_events`]) and the notices
/// ([`Harness::take_notices`]), and writes each
/// connection's [`Server::output`] to its client, reporting it with
/// [`Server::handle_written`], for every client that is reading (all of them unless the test
/// calls [`Harness::stop_reading`]: a client that does not read is a socket that takes
/// nothing, so its output waits in the server).
///
/// What a client received stays in the harness until the test consumes it with the read
/// helpers: [`Harness::read_response`], [`Harness::read_head`], [`Harness::chunk`],
/// [`Harness::ws_read`], [`Harness::hixie_read`], [`Harness::take_unread`].
///
/// # Panics
///
/// The harness is test code: it checks the host contract as it drives the server and panics
/// with a message saying what broke when the server breaks it (an [`Io`] for a connection
/// already closed, [`Io::Shutdown`] with output unwritten, a deadline left in the past, a
/// busy timer, a [`Server::buffered_bytes`] that differs from a recount). Methods named after an expectation ([`Harness::opened`],
/// [`Harness::app_send`], [`Harness::read_response`], ...) panic when it is not met, as their
/// docs say; their `try_` or `Option` counterparts do not. Methods taking a
/// [`ConnectionId`] panic if the harness never opened that connection.
pub struct Harness {
    /// The server under test. Read it freely; after calling one of its methods that takes
    /// `now` directly, call [`Harness::drain`] as a host would.
    pub server: Server,
    now: Instant,
    start: Instant,
    conns: HashMap<ConnectionId, Client>,
    events: VecDeque<Event>,
    notices: VecDeque<Notice>,
    next_port: u16,
}

/// One client connection as the harness sees it.
#[derive(Debug, Default)]
pub(super) struct Client {
    /// Everything the client has read, from the first byte.
    pub(super) received: Vec<u8>,
    /// How much of `received` the test has consumed with the read helpers.
    pub(super) consumed: usize,
    /// Whether output is left waiting instead of being read at once.
    stalled: bool,
    /// How the server ended the connection, if it did.
    closed: Option<After>,
    /// The server has forgotten the connection ([`Io::Close`]).
    released: bool,
    /// The client side went away (`handle_closed` was called).
    gone: bool,
    /// The body framing of the response whose head was read with `read_head`.
    pub(super) body: Option<BodyMode>,
    /// The connection is an exchange ([`Server::handle_request`]).
    exchange: bool,
    /// An exchange's response head, taken on [`Io::Respond`].
    response: Option<Response>,
}

impl Client {
    /// The bytes read and not consumed yet.
    pub(super) fn unread(&self) -> &[u8] {
        &self.received[self.consumed..]
    }
}

impl Harness {
    /// A server for `config`, at the start of virtual time, with the wall clock at
    /// [`WALL_CLOCK_SECS`] and `/info` entropy counting 1, 2, 3...
    pub fn new(config: Config) -> Self {
        let start = Instant::now();
        let mut counter = 0u32;
        let entropy = Box::new(move || {
            counter = counter.wrapping_add(1);
            counter
        });
        Harness {
            server: Server::new(config, start, Harness::wall_clock(), entropy),
            now: start,
            start,
            conns: HashMap::new(),
            events: VecDeque::new(),
            notices: VecDeque::new(),
            next_port: FIRST_PORT,
        }
    }

    /// A server with one endpoint, `/echo`, with `options` (see [`super::session_url`]).
    pub fn with_options(options: Options) -> Self {
        Harness::new(Config::new().endpoint("/echo", options))
    }

    /// A server with one endpoint, `/echo`, with `options` and `limits`.
    pub fn with_limits(options: Options, limits: Limits) -> Self {
        Harness::new(Config::new().endpoint("/echo", options).limits(limits))
    }

    /// A server with one endpoint, `/echo`, with default options.
    pub fn echo() -> Self {
        Harness::with_options(Options::default())
    }

    /// The virtual present: the `now` every call into the server is given.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the harness started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The wall clock the server is given: [`WALL_CLOCK_SECS`] after the Unix epoch.
    pub fn wall_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(WALL_CLOCK_SECS)
    }

    // ----- driving the server -----

    /// Moves the clock forward by `d`, stopping at every deadline [`Server::poll_timeout`]
    /// gives on the way to run [`Server::handle_timeout`] there, as a host's timer would.
    ///
    /// # Panics
    ///
    /// If a deadline is still in the past after `handle_timeout`, or the server asks for more
    /// than 100 000 wake-ups in one call (a busy timer).
    #[track_caller]
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..MAX_WAKEUPS {
            match self.server.poll_timeout() {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.server.handle_timeout(self.now);
                    self.drain();
                    self.assert_no_stale_deadline();
                }
                _ => {
                    self.now = target;
                    return;
                }
            }
        }
        panic!("more than {MAX_WAKEUPS} timer wake-ups in one advance: a busy timer");
    }

    /// Moves the clock forward by `d` in one jump and runs [`Server::handle_timeout`] once
    /// there, as a host whose timer fired late would.
    ///
    /// # Panics
    ///
    /// If a deadline is still in the past afterwards.
    #[track_caller]
    pub fn fire_timer_late(&mut self, d: Duration) {
        self.now += d;
        self.server.handle_timeout(self.now);
        self.drain();
        self.assert_no_stale_deadline();
    }

    #[track_caller]
    fn assert_no_stale_deadline(&self) {
        if let Some(next) = self.server.poll_timeout() {
            assert!(
                next > self.now,
                "poll_timeout is {:?} in the past after handle_timeout",
                self.now - next
            );
        }
    }

    /// Does what a host does after every call into the server: takes every event and I/O
    /// instruction, and writes the output of every client that is reading, until the server
    /// has nothing more to say. Every other method calls it; call it yourself after calling a
    /// [`Harness::server`] method that takes `now`.
    ///
    /// # Panics
    ///
    /// If the server breaks the host contract: an [`Io`] for a connection it closed or was
    /// told is closed, [`Io::Shutdown`] with output unwritten, or output that never ends.
    #[track_caller]
    pub fn drain(&mut self) {
        for _ in 0..MAX_DRAIN_ROUNDS {
            let mut progressed = false;
            while let Some(e) = self.server.poll_event() {
                self.events.push_back(e);
            }
            while let Some(n) = self.server.poll_notice() {
                self.notices.push_back(n);
            }
            while let Some(io) = self.server.poll_io() {
                progressed = true;
                self.apply(io);
            }
            let reading: Vec<ConnectionId> = self
                .conns
                .iter()
                .filter(|(_, c)| !c.stalled && !c.gone && !c.released)
                .map(|(id, _)| *id)
                .collect();
            for id in reading {
                if self.write_to_client(id, usize::MAX) > 0 {
                    progressed = true;
                }
            }
            if !progressed {
                assert_eq!(
                    self.server.buffered_bytes(),
                    self.server.recount_buffered(),
                    "the running total of buffered bytes drifted from a recount"
                );
                return;
            }
        }
        panic!("the server kept producing output for {MAX_DRAIN_ROUNDS} rounds");
    }

    /// Carries out one I/O instruction, checking it against the connection's life.
    #[track_caller]
    fn apply(&mut self, io: Io) {
        match io {
            Io::Write(id) => {
                let client = self.conns.entry(id).or_default();
                assert!(!client.released, "Io::Write after Io::Close");
                assert!(!client.gone, "Io::Write for a connection reported closed");
                assert!(
                    !client.exchange || client.response.is_some(),
                    "Io::Write for an exchange before its Io::Respond"
                );
            }
            Io::Respond(id) => {
                let client = self.conns.entry(id).or_default();
                assert!(client.exchange, "Io::Respond for a connection from accept");
                assert!(!client.released, "Io::Respond after Io::Close");
                assert!(!client.gone, "Io::Respond for a connection reported closed");
                assert!(client.response.is_none(), "a second Io::Respond");
                let response = self.server.take_response(id);
                assert!(response.is_some(), "Io::Respond without a response to take");
                assert_eq!(
                    self.server.take_response(id),
                    None,
                    "a response taken twice"
                );
                self.conns.entry(id).or_default().response = response;
            }
            Io::Shutdown(id) => {
                let client = self.conns.entry(id).or_default();
                assert!(!client.released, "Io::Shutdown after Io::Close");
                assert_eq!(
                    self.server.output_len(id),
                    0,
                    "Io::Shutdown with output unwritten"
                );
                client.closed = Some(After::Close);
            }
            Io::Close {
                connection,
                aborted,
            } => {
                let client = self.conns.entry(connection).or_default();
                assert!(!client.released, "a second Io::Close");
                assert!(!client.gone, "Io::Close for a connection reported closed");
                client.released = true;
                assert!(
                    !client.exchange || aborted || client.response.is_some(),
                    "an exchange ended without a response"
                );
                if aborted {
                    client.closed = Some(After::Abort);
                } else {
                    client.closed.get_or_insert(After::Close);
                }
                assert!(
                    !self.server.is_connection(connection),
                    "the server still knows a connection after Io::Close"
                );
            }
        }
    }

    /// Moves up to `max` bytes of the server's output for `id` to its client, reporting them
    /// written; returns how many.
    fn write_to_client(&mut self, id: ConnectionId, max: usize) -> usize {
        let mut taken = Vec::new();
        for chunk in self.server.output(id) {
            let n = chunk.len().min(max - taken.len());
            taken.extend_from_slice(&chunk[..n]);
            if taken.len() == max {
                break;
            }
        }
        if taken.is_empty() {
            return 0;
        }
        let n = taken.len();
        self.conns
            .entry(id)
            .or_default()
            .received
            .extend_from_slice(&taken);
        self.server.handle_written(self.now, id, n);
        n
    }

    /// Opens a connection from a fresh local port on 127.0.0.1.
    pub fn connect(&mut self) -> ConnectionId {
        let port = self.next_port;
        self.next_port = self.next_port.checked_add(1).unwrap_or(FIRST_PORT);
        self.connect_from(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Opens a connection from `peer`.
    pub fn connect_from(&mut self, peer: SocketAddr) -> ConnectionId {
        let id = self.server.accept(self.now, peer);
        self.conns.entry(id).or_default();
        self.drain();
        id
    }

    /// Opens a connection from a fresh local port whose client reads nothing (see
    /// [`Harness::stop_reading`]) from the start.
    pub fn connect_stalled(&mut self) -> ConnectionId {
        let port = self.next_port;
        self.next_port = self.next_port.checked_add(1).unwrap_or(FIRST_PORT);
        let id = self
            .server
            .accept(self.now, SocketAddr::from(([127, 0, 0, 1], port)));
        self.conns.entry(id).or_default().stalled = true;
        self.drain();
        id
    }

    /// A host with its own HTTP stack hands over `request` from a fresh local port
    /// ([`Server::handle_request`]): an exchange. The harness takes its head on
    /// [`Io::Respond`] ([`Harness::response`]); what the connection's client receives is
    /// the body, then (after an upgrade) the upgraded stream's bytes.
    pub fn exchange(&mut self, request: Request, extras: RequestExtras) -> ConnectionId {
        self.exchange_with(request, extras, false)
    }

    /// [`Harness::exchange`] whose client reads nothing from the start (see
    /// [`Harness::stop_reading`]): a host whose HTTP stack takes no body bytes.
    pub fn exchange_stalled(&mut self, request: Request, extras: RequestExtras) -> ConnectionId {
        self.exchange_with(request, extras, true)
    }

    fn exchange_with(
        &mut self,
        request: Request,
        extras: RequestExtras,
        stalled: bool,
    ) -> ConnectionId {
        let port = self.next_port;
        self.next_port = self.next_port.checked_add(1).unwrap_or(FIRST_PORT);
        let peer = SocketAddr::from(([127, 0, 0, 1], port));
        let id = self.server.handle_request(self.now, peer, request, extras);
        let client = self.conns.entry(id).or_default();
        client.exchange = true;
        client.stalled = stalled;
        self.drain();
        id
    }

    /// The response head of exchange `conn`, once the server gave it.
    pub fn response(&self, conn: ConnectionId) -> Option<&Response> {
        self.conns.get(&conn).and_then(|c| c.response.as_ref())
    }

    /// The client writes `bytes`.
    pub fn send_bytes(&mut self, conn: ConnectionId, bytes: &[u8]) {
        self.server.handle_bytes(self.now, conn, bytes);
        self.drain();
    }

    /// The client writes `bytes` in pieces of the sizes in `pieces`, taken in turn and
    /// repeated (all at once if `pieces` is empty; a size of 0 counts as 1), each piece read
    /// by the server as one `handle_bytes`. See [`super::strategies::pieces`].
    pub fn send_in_pieces(&mut self, conn: ConnectionId, bytes: &[u8], pieces: &[usize]) {
        if pieces.is_empty() {
            self.send_bytes(conn, bytes);
            return;
        }
        let mut rest = bytes;
        for n in pieces.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*n).clamp(1, rest.len()));
            self.send_bytes(conn, now);
            rest = later;
        }
    }

    /// The client's side of the connection goes away (it closed or the socket failed):
    /// [`Server::handle_closed`].
    pub fn client_closes(&mut self, conn: ConnectionId) {
        self.server.handle_closed(self.now, conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.gone = true;
        }
        self.drain();
    }

    /// The client ends its side of the connection (a TCP half-close): [`Server::handle_eof`].
    pub fn client_eof(&mut self, conn: ConnectionId) {
        self.server.handle_eof(self.now, conn);
        self.drain();
    }

    /// From now on the client reads nothing: bytes stay in the server, unwritten.
    ///
    /// # Panics
    ///
    /// If the harness did not open `conn`.
    #[track_caller]
    pub fn stop_reading(&mut self, conn: ConnectionId) {
        self.client(conn).stalled = true;
    }

    /// The client reads `n` of the bytes waiting for it (all of them if fewer), reported to
    /// the server as written. Nothing happens on a connection that is gone.
    ///
    /// # Panics
    ///
    /// If the harness did not open `conn`.
    #[track_caller]
    pub fn client_reads(&mut self, conn: ConnectionId, n: usize) {
        let c = self.client(conn);
        if c.gone || c.released {
            return;
        }
        if self.write_to_client(conn, n) > 0 {
            self.drain();
        }
    }

    /// The client reads again: everything waiting is read, and so is everything later.
    ///
    /// # Panics
    ///
    /// If the harness did not open `conn`.
    #[track_caller]
    pub fn resume_reading(&mut self, conn: ConnectionId) {
        self.client(conn).stalled = false;
        self.client_reads(conn, usize::MAX);
    }

    /// Bytes the server holds for the client that the client has not read.
    pub fn in_flight(&self, conn: ConnectionId) -> usize {
        self.server.output_len(conn)
    }

    // ----- the application -----

    /// The application sends `text` to `session`.
    ///
    /// # Panics
    ///
    /// If the session does not take it (it is closed or unknown).
    #[track_caller]
    pub fn app_send(&mut self, session: SessionId, text: &str) {
        if let Err(e) = self.try_app_send(session, text) {
            panic!("{session} does not take the message: {e}");
        }
    }

    /// The application sends `text` to `session`; returns what [`Server::send`] said.
    pub fn try_app_send(&mut self, session: SessionId, text: &str) -> Result<(), Error> {
        let r = self.server.send(self.now, session, text);
        self.drain();
        r
    }

    /// The application sends `text` to many sessions at once; returns how many took it
    /// ([`Server::send_many`]).
    pub fn app_send_many(&mut self, sessions: &[SessionId], text: &str) -> usize {
        let n = self.server.send_many(self.now, sessions, text);
        self.drain();
        n
    }

    /// The application closes `session`.
    ///
    /// # Panics
    ///
    /// If the session is not open.
    #[track_caller]
    pub fn app_close(&mut self, session: SessionId, code: u16, reason: &str) {
        if let Err(e) = self.try_app_close(session, code, reason) {
            panic!("{session} cannot be closed: {e}");
        }
    }

    /// The application closes `session`; returns what [`Server::close`] said.
    pub fn try_app_close(
        &mut self,
        session: SessionId,
        code: u16,
        reason: &str,
    ) -> Result<(), Error> {
        let r = self.server.close(self.now, session, code, reason);
        self.drain();
        r
    }

    /// The server starts shutting down ([`Server::shutdown`]).
    pub fn shutdown(&mut self) {
        self.server.shutdown(self.now);
        self.drain();
    }

    // ----- events -----

    /// Takes the oldest event not taken yet.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Takes every event not taken yet, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// Takes every [`Notice`] (refusals, limit hits) not taken yet, oldest first.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        self.notices.drain(..).collect()
    }

    /// Takes the next event and returns its session.
    ///
    /// # Panics
    ///
    /// If the next event is not [`Event::Opened`].
    #[track_caller]
    pub fn opened(&mut self) -> SessionId {
        match self.next_event() {
            Some(Event::Opened { session, .. }) => session,
            other => panic!("expected Opened, got {other:?}"),
        }
    }

    /// Takes every event so far and returns the texts of the messages.
    ///
    /// # Panics
    ///
    /// If any of them is not an [`Event::Message`] on `session`.
    #[track_caller]
    pub fn messages(&mut self, session: SessionId) -> Vec<String> {
        self.take_events()
            .into_iter()
            .map(|e| match e {
                Event::Message {
                    session: s, text, ..
                } if s == session => text,
                other => panic!("expected a message on {session}, got {other:?}"),
            })
            .collect()
    }

    // ----- what the client received -----

    /// The harness's side of `conn`.
    ///
    /// # Panics
    ///
    /// If the harness did not open `conn`.
    #[track_caller]
    pub(super) fn client(&mut self, conn: ConnectionId) -> &mut Client {
        match self.conns.get_mut(&conn) {
            Some(c) => c,
            None => panic!("{conn} is not a connection the harness opened"),
        }
    }

    /// How the server ended the connection: None while it is open (or unknown).
    pub fn closed(&self, conn: ConnectionId) -> Option<After> {
        self.conns.get(&conn).and_then(|c| c.closed)
    }

    /// Bytes the client has read and the test has not consumed yet (none for a connection
    /// the harness did not open).
    pub fn unread(&self, conn: ConnectionId) -> &[u8] {
        self.conns.get(&conn).map_or(&[], Client::unread)
    }

    /// Consumes and returns every unread byte.
    ///
    /// # Panics
    ///
    /// If the harness did not open `conn`.
    #[track_caller]
    pub fn take_unread(&mut self, conn: ConnectionId) -> Vec<u8> {
        let c = self.client(conn);
        let out = c.unread().to_vec();
        c.consumed = c.received.len();
        out
    }

    /// Consumes exactly `n` unread bytes.
    ///
    /// # Panics
    ///
    /// If fewer than `n` have arrived.
    #[track_caller]
    pub fn read_exact(&mut self, conn: ConnectionId, n: usize) -> Vec<u8> {
        let c = self.client(conn);
        let unread = c.unread();
        assert!(
            unread.len() >= n,
            "wanted {n} bytes, {} arrived: {:?}",
            unread.len(),
            lossy(unread)
        );
        let out = unread[..n].to_vec();
        c.consumed += n;
        out
    }

    /// Asserts the client has nothing unread.
    ///
    /// # Panics
    ///
    /// If it has.
    #[track_caller]
    pub fn assert_nothing_unread(&self, conn: ConnectionId) {
        assert_eq!(lossy(self.unread(conn)), "", "unexpected bytes for {conn}");
    }
}
