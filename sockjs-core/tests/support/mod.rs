//! A virtual-clock harness driving a `sockjs_core::Server` the way an adapter would, with
//! clients that speak raw HTTP/1.x and WebSocket bytes.
//!
//! The clock starts at one `Instant::now()` and only ever moves by [`Harness::advance`],
//! which jumps from one `poll_timeout` deadline to the next and runs `handle_timeout` there:
//! nothing sleeps. After every call into the server the harness drains `poll_event` and
//! `poll_io` completely, as the run-loop contract asks, and writes each connection's
//! `output` to its client, reporting it with `handle_written`, for every client that is
//! reading (all of them unless a test calls [`Harness::stop_reading`]: a client that does not
//! read is a socket that takes nothing, so its output waits in the server).
//!
//! Responses are parsed byte for byte: the head as sent, the body by `Content-Length`, by
//! chunks (boundaries kept, since streaming transports send one frame per chunk), or up to
//! the close. WebSocket clients send masked RFC 6455 frames or hixie-76 frames and read the
//! server's frames one at a time.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sockjs_core::{Config, ConnectionId, Event, Io, Limits, Options, Server, SessionId};

/// How the server ended a connection, as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Everything was written, then the server shut its side down ([`Io::Shutdown`], or an
    /// [`Io::Close`] that dropped nothing).
    Close,
    /// The server dropped the connection with output unwritten ([`Io::Close`] `aborted`).
    Abort,
}

/// The wall clock the server is created with: Tue, 14 Nov 2023 22:13:20 GMT.
pub(crate) const WALL_CLOCK_SECS: u64 = 1_700_000_000;
/// `Expires` for a response cached for a year, sent at [`WALL_CLOCK_SECS`].
pub(crate) const EXPIRES_AT_START: &str = "Wed, 13 Nov 2024 22:13:20 GMT";
/// The `Cache-Control` of every dynamic response.
pub(crate) const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";
/// The WebSocket key of the protocol suite's `test_headersSanity`.
pub(crate) const SUITE_WS_KEY: &str = "x3JJHMbDL1EzLkh9GBhXDw==";
/// Its accept value.
pub(crate) const SUITE_WS_ACCEPT: &str = "HSmrc0sMlYUkAGmm5OPpG2HaGWk=";
/// The mask every client frame is sent with (the example mask of RFC 6455, section 5.7).
pub(crate) const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Wake-ups one `advance` may take before the harness calls it a busy loop.
const MAX_WAKEUPS: usize = 100_000;
/// Rounds of transmit/written reports one drain may take.
const MAX_DRAIN_ROUNDS: usize = 100_000;

/// A server, its clock, and the clients talking to it.
pub(crate) struct Harness {
    pub(crate) server: Server,
    /// The virtual present.
    pub(crate) now: Instant,
    start: Instant,
    conns: HashMap<ConnectionId, Client>,
    events: VecDeque<Event>,
    next_port: u16,
}

/// One client connection as the harness sees it.
#[derive(Debug, Default)]
struct Client {
    /// Everything the client has read, from the first byte.
    received: Vec<u8>,
    /// How much of `received` the test has consumed with the read helpers.
    consumed: usize,
    /// Whether output is read (and reported to the server) at once.
    stalled: bool,
    /// How the server ended the connection, if it did.
    closed: Option<After>,
    /// The server has forgotten the connection ([`Io::Close`]).
    released: bool,
    /// Whether the client side went away (`handle_closed` was called).
    gone: bool,
    /// The body framing of the response whose head was read with `read_head`.
    body: Option<BodyMode>,
}

/// How the body after a head read with [`Harness::read_head`] is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyMode {
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body runs until the connection closes.
    UntilClose,
    /// No body (1xx, 204, 304).
    Empty,
}

/// A parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The head exactly as sent, from the status line to the blank line.
    pub(crate) head: String,
    /// The status code.
    pub(crate) status: u16,
    /// The headers in order, names as sent.
    pub(crate) headers: Vec<(String, String)>,
    /// The body, chunks joined.
    pub(crate) body: Vec<u8>,
    /// The data chunks of a chunked body, in order (the last, empty chunk not included).
    pub(crate) chunks: Vec<Vec<u8>>,
    /// How the body was delimited.
    pub(crate) mode: BodyMode,
}

impl Response {
    /// The first header called `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a header called `name` was sent.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The header names in order.
    pub(crate) fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The body as text.
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }
}

/// A frame the server sent on an RFC 6455 connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WsFrame {
    /// The FIN bit.
    pub(crate) fin: bool,
    /// The opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub(crate) opcode: u8,
    /// The payload (servers never mask).
    pub(crate) payload: Vec<u8>,
}

impl WsFrame {
    /// A final text frame, for comparisons.
    pub(crate) fn text(s: &str) -> WsFrame {
        WsFrame {
            fin: true,
            opcode: 1,
            payload: s.as_bytes().to_vec(),
        }
    }

    /// A close frame with a code and reason, for comparisons.
    pub(crate) fn close(code: u16, reason: &str) -> WsFrame {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        WsFrame {
            fin: true,
            opcode: 8,
            payload,
        }
    }

    /// A control frame with a payload, for comparisons.
    pub(crate) fn control(opcode: u8, payload: &[u8]) -> WsFrame {
        WsFrame {
            fin: true,
            opcode,
            payload: payload.to_vec(),
        }
    }
}

/// What the server sent on a hixie-76 connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HixieFrame {
    /// `0x00 text 0xff`.
    Text(String),
    /// `0xff 0x00`.
    Close,
}

impl Harness {
    /// A server for `config`, at the start of virtual time.
    pub(crate) fn new(config: Config) -> Self {
        let start = Instant::now();
        let wall = Harness::wall_clock();
        let mut counter = 0u32;
        let entropy = Box::new(move || {
            counter += 1;
            counter
        });
        Harness {
            server: Server::new(config, start, wall, entropy),
            now: start,
            start,
            conns: HashMap::new(),
            events: VecDeque::new(),
            next_port: 40_000,
        }
    }

    /// A server with one endpoint, `/echo`, with `options`.
    pub(crate) fn with_options(options: Options) -> Self {
        Harness::new(Config::new().endpoint("/echo", options))
    }

    /// A server with one endpoint, `/echo`, with `options` and `limits`.
    pub(crate) fn with_limits(options: Options, limits: Limits) -> Self {
        Harness::new(Config::new().endpoint("/echo", options).limits(limits))
    }

    /// A server with one endpoint, `/echo`, with default options.
    pub(crate) fn echo() -> Self {
        Harness::with_options(Options::default())
    }

    /// Virtual time since the harness started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The wall clock the server is given.
    pub(crate) fn wall_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(WALL_CLOCK_SECS)
    }

    // ----- driving the server -----

    /// Moves the clock forward by `d`, stopping at every deadline `poll_timeout` gives on the
    /// way to run `handle_timeout` there. Checks that no deadline is left in the past after
    /// a `handle_timeout`.
    pub(crate) fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..MAX_WAKEUPS {
            match self.server.poll_timeout() {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.server.handle_timeout(self.now);
                    self.drain();
                    if let Some(next) = self.server.poll_timeout() {
                        assert!(
                            next > self.now,
                            "poll_timeout is {:?} in the past after handle_timeout",
                            self.now - next
                        );
                    }
                }
                _ => {
                    self.now = target;
                    return;
                }
            }
        }
        panic!("more than {MAX_WAKEUPS} timer wake-ups in one advance: a busy timer");
    }

    /// Moves the clock forward by `d` in one jump and runs `handle_timeout` once there, as an
    /// adapter whose timer fired late would; checks no deadline is left in the past.
    pub(crate) fn fire_timer_late(&mut self, d: Duration) {
        self.now += d;
        self.server.handle_timeout(self.now);
        self.drain();
        if let Some(next) = self.server.poll_timeout() {
            assert!(
                next > self.now,
                "poll_timeout is {:?} in the past",
                self.now - next
            );
        }
    }

    /// Takes every event and I/O instruction, and writes the output of every client that is
    /// reading, until the server has nothing more to say.
    fn drain(&mut self) {
        for _ in 0..MAX_DRAIN_ROUNDS {
            let mut progressed = false;
            while let Some(e) = self.server.poll_event() {
                self.events.push_back(e);
            }
            while let Some(io) = self.server.poll_io() {
                progressed = true;
                match io {
                    Io::Write(id) => {
                        let client = self.conns.entry(id).or_default();
                        assert!(!client.released, "Io::Write after Io::Close");
                        assert!(!client.gone, "Io::Write for a connection reported closed");
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
                        if aborted {
                            client.closed = Some(After::Abort);
                        } else {
                            client.closed.get_or_insert(After::Close);
                        }
                        assert!(!self.server.is_connection(connection));
                    }
                    _ => unreachable!("no other Io"),
                }
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
                return;
            }
        }
        panic!("the server kept producing output for {MAX_DRAIN_ROUNDS} rounds");
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

    /// Opens a connection from a fresh local port.
    pub(crate) fn connect(&mut self) -> ConnectionId {
        let port = self.next_port;
        self.next_port += 1;
        self.connect_from(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Opens a connection from `peer`.
    pub(crate) fn connect_from(&mut self, peer: SocketAddr) -> ConnectionId {
        let id = self.server.accept(self.now, peer);
        self.conns.entry(id).or_default();
        self.drain();
        id
    }

    /// Opens a connection from a fresh local port whose client reads nothing (see
    /// [`Harness::stop_reading`]) from the start.
    pub(crate) fn connect_stalled(&mut self) -> ConnectionId {
        let port = self.next_port;
        self.next_port += 1;
        let id = self
            .server
            .accept(self.now, SocketAddr::from(([127, 0, 0, 1], port)));
        self.conns.entry(id).or_default().stalled = true;
        self.drain();
        id
    }

    /// The client writes `bytes`.
    pub(crate) fn send_bytes(&mut self, conn: ConnectionId, bytes: &[u8]) {
        self.server.handle_bytes(self.now, conn, bytes);
        self.drain();
    }

    /// The client writes an HTTP/1.1 request (see [`request_bytes`]).
    pub(crate) fn request(
        &mut self,
        conn: ConnectionId,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        let bytes = request_bytes(method, path, headers, body);
        self.send_bytes(conn, &bytes);
    }

    /// The client's side of the connection goes away (it closed or the socket failed).
    pub(crate) fn client_closes(&mut self, conn: ConnectionId) {
        self.server.handle_closed(self.now, conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.gone = true;
        }
        self.drain();
    }

    /// The client ends its side of the connection (a TCP half-close: end of stream).
    pub(crate) fn client_eof(&mut self, conn: ConnectionId) {
        self.server.handle_eof(self.now, conn);
        self.drain();
    }

    /// From now on the client reads nothing: bytes stay in flight and are not reported.
    pub(crate) fn stop_reading(&mut self, conn: ConnectionId) {
        self.client(conn).stalled = true;
    }

    /// The client reads `n` of the bytes waiting for it (all of them if fewer), reported to
    /// the server as written.
    pub(crate) fn client_reads(&mut self, conn: ConnectionId, n: usize) {
        let c = self.client(conn);
        if c.gone || c.released {
            return;
        }
        if self.write_to_client(conn, n) > 0 {
            self.drain();
        }
    }

    /// The client reads again: everything waiting is read, and so is everything later.
    pub(crate) fn resume_reading(&mut self, conn: ConnectionId) {
        self.client(conn).stalled = false;
        self.client_reads(conn, usize::MAX);
    }

    /// Bytes the server has for the client and the client has not read.
    pub(crate) fn in_flight(&self, conn: ConnectionId) -> usize {
        self.server.output_len(conn)
    }

    /// The application sends `text` to `session`, which must take it.
    pub(crate) fn app_send(&mut self, session: SessionId, text: &str) {
        self.server
            .send(self.now, session, text)
            .expect("the session takes the message");
        self.drain();
    }

    /// The application sends `text` to `session`; returns what `send` said.
    pub(crate) fn try_app_send(
        &mut self,
        session: SessionId,
        text: &str,
    ) -> Result<(), sockjs_core::Error> {
        let r = self.server.send(self.now, session, text);
        self.drain();
        r
    }

    /// The application sends `text` to many sessions at once.
    pub(crate) fn app_send_many(&mut self, sessions: &[SessionId], text: &str) -> usize {
        let n = self.server.send_many(self.now, sessions, text);
        self.drain();
        n
    }

    /// The application closes `session`.
    pub(crate) fn app_close(&mut self, session: SessionId, code: u16, reason: &str) {
        self.server
            .close(self.now, session, code, reason)
            .expect("the session is open");
        self.drain();
    }

    /// The application closes `session`; returns what `close` said.
    pub(crate) fn try_app_close(
        &mut self,
        session: SessionId,
        code: u16,
        reason: &str,
    ) -> Result<(), sockjs_core::Error> {
        let r = self.server.close(self.now, session, code, reason);
        self.drain();
        r
    }

    /// The server starts shutting down.
    pub(crate) fn shutdown(&mut self) {
        self.server.shutdown(self.now);
        self.drain();
    }

    // ----- what the server did -----

    fn client(&mut self, conn: ConnectionId) -> &mut Client {
        self.conns
            .get_mut(&conn)
            .expect("a connection the harness opened")
    }

    /// How the server ended the connection: None while it is open.
    pub(crate) fn closed(&self, conn: ConnectionId) -> Option<After> {
        self.conns.get(&conn).and_then(|c| c.closed)
    }

    /// Bytes the client has read and the test has not consumed yet.
    pub(crate) fn unread(&self, conn: ConnectionId) -> &[u8] {
        let c = &self.conns[&conn];
        &c.received[c.consumed..]
    }

    /// Consumes and returns every unread byte.
    pub(crate) fn take_unread(&mut self, conn: ConnectionId) -> Vec<u8> {
        let c = self.client(conn);
        let out = c.received[c.consumed..].to_vec();
        c.consumed = c.received.len();
        out
    }

    /// Consumes exactly `n` unread bytes; panics if fewer arrived.
    pub(crate) fn read_exact(&mut self, conn: ConnectionId, n: usize) -> Vec<u8> {
        let c = self.client(conn);
        let unread = c.received.len() - c.consumed;
        assert!(
            unread >= n,
            "wanted {n} bytes, {unread} arrived: {:?}",
            lossy(&c.received[c.consumed..])
        );
        let out = c.received[c.consumed..c.consumed + n].to_vec();
        c.consumed += n;
        out
    }

    /// Asserts the client has nothing unread.
    #[track_caller]
    pub(crate) fn assert_nothing_unread(&self, conn: ConnectionId) {
        assert_eq!(lossy(self.unread(conn)), "", "unexpected bytes for {conn}");
    }

    /// Consumes one complete response; panics if it has not fully arrived.
    #[track_caller]
    pub(crate) fn read_response(&mut self, conn: ConnectionId) -> Response {
        let closed = self.closed(conn).is_some();
        let c = self.client(conn);
        let buf = &c.received[c.consumed..];
        match parse_response(buf, closed) {
            Some((r, used)) => {
                c.consumed += used;
                r
            }
            None => panic!("no complete response for {conn}: {:?}", lossy(buf)),
        }
    }

    /// Consumes the head of a response whose body is still coming; the body is then read
    /// with [`Harness::read_chunk`] (chunked) or [`Harness::read_exact`].
    #[track_caller]
    pub(crate) fn read_head(&mut self, conn: ConnectionId) -> Response {
        let c = self.client(conn);
        let buf = &c.received[c.consumed..];
        let Some((mut r, used)) = parse_head(buf) else {
            panic!("no complete head for {conn}: {:?}", lossy(buf));
        };
        c.consumed += used;
        c.body = Some(r.mode);
        r.body.clear();
        r
    }

    /// Consumes the next chunk of a chunked body whose head was read: `Some(data)`, or
    /// `Some(empty)` for the last chunk, or None if no complete chunk has arrived.
    pub(crate) fn read_chunk(&mut self, conn: ConnectionId) -> Option<Vec<u8>> {
        let c = self.client(conn);
        assert_eq!(
            c.body,
            Some(BodyMode::Chunked),
            "read_chunk on a body that is not chunked"
        );
        let (data, used) = parse_chunk(&c.received[c.consumed..])?;
        c.consumed += used;
        if data.is_empty() {
            c.body = None;
        }
        Some(data)
    }

    /// The next chunk as text; panics if none has arrived.
    #[track_caller]
    pub(crate) fn chunk(&mut self, conn: ConnectionId) -> String {
        let data = self.read_chunk(conn).unwrap_or_else(|| {
            panic!(
                "no complete chunk for {conn}: {:?}",
                lossy(self.unread(conn))
            )
        });
        String::from_utf8(data).expect("a UTF-8 chunk")
    }

    /// Takes the next event.
    pub(crate) fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Takes every event so far.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// Takes the next event, which must be `Opened`, and returns its session.
    #[track_caller]
    pub(crate) fn opened(&mut self) -> SessionId {
        match self.next_event() {
            Some(Event::Opened { session, .. }) => session,
            other => panic!("expected Opened, got {other:?}"),
        }
    }

    /// Takes the events so far, which must be messages on `session`, and returns their texts.
    #[track_caller]
    pub(crate) fn messages(&mut self, session: SessionId) -> Vec<String> {
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

    // ----- one-request conveniences -----

    /// Opens a connection, sends one request and reads the complete response.
    #[track_caller]
    pub(crate) fn fetch(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let conn = self.connect();
        self.request(conn, method, path, headers, body);
        self.read_response(conn)
    }

    /// `GET path` on a new connection.
    #[track_caller]
    pub(crate) fn get(&mut self, path: &str) -> Response {
        self.fetch("GET", path, &[], b"")
    }

    /// `POST path` with `body` on a new connection.
    #[track_caller]
    pub(crate) fn post(&mut self, path: &str, body: &[u8]) -> Response {
        self.fetch("POST", path, &[], body)
    }

    /// An `xhr` poll on a new connection that must complete at once; returns its body.
    #[track_caller]
    pub(crate) fn xhr(&mut self, session_url: &str) -> String {
        let r = self.post(&format!("{session_url}/xhr"), b"");
        assert_eq!(r.status, 200, "{}", r.head);
        r.text().to_string()
    }

    /// An `xhr_send` on a new connection that must succeed with 204.
    #[track_caller]
    pub(crate) fn xhr_send(&mut self, session_url: &str, body: &str) {
        let r = self.post(&format!("{session_url}/xhr_send"), body.as_bytes());
        assert_eq!((r.status, r.text()), (204, ""), "{}", r.head);
    }

    /// Opens an `xhr_streaming` receiver and reads its head and prelude chunk.
    #[track_caller]
    pub(crate) fn open_streaming(&mut self, session_url: &str) -> ConnectionId {
        let conn = self.connect();
        self.request(
            conn,
            "POST",
            &format!("{session_url}/xhr_streaming"),
            &[],
            b"",
        );
        let head = self.read_head(conn);
        assert_eq!(head.status, 200, "{}", head.head);
        let prelude = self.chunk(conn);
        assert_eq!(prelude, format!("{}\n", "h".repeat(2048)));
        conn
    }

    // ----- WebSocket clients -----

    /// Opens an RFC 6455 WebSocket (version 13, the suite's key) to `path` and reads the 101.
    #[track_caller]
    pub(crate) fn ws_connect(&mut self, path: &str) -> ConnectionId {
        let conn = self.connect();
        self.request(conn, "GET", path, &ws_headers("13"), b"");
        let r = self.read_head(conn);
        assert_eq!(r.status, 101, "{}", r.head);
        conn
    }

    /// Sends one masked, final frame.
    pub(crate) fn ws_send(&mut self, conn: ConnectionId, opcode: u8, payload: &[u8]) {
        let bytes = ws_frame(true, opcode, payload);
        self.send_bytes(conn, &bytes);
    }

    /// Sends a text message.
    pub(crate) fn ws_send_text(&mut self, conn: ConnectionId, text: &str) {
        self.ws_send(conn, 1, text.as_bytes());
    }

    /// Consumes the next complete server frame, if one has arrived.
    pub(crate) fn ws_read(&mut self, conn: ConnectionId) -> Option<WsFrame> {
        let c = self.client(conn);
        let (frame, used) = parse_ws_frame(&c.received[c.consumed..])?;
        c.consumed += used;
        Some(frame)
    }

    /// Consumes every complete server frame that has arrived.
    pub(crate) fn ws_read_all(&mut self, conn: ConnectionId) -> Vec<WsFrame> {
        std::iter::from_fn(|| self.ws_read(conn)).collect()
    }

    /// Consumes the next frame, which must be a text frame, and returns its text.
    #[track_caller]
    pub(crate) fn ws_text(&mut self, conn: ConnectionId) -> String {
        match self.ws_read(conn) {
            Some(WsFrame {
                fin: true,
                opcode: 1,
                payload,
            }) => String::from_utf8(payload).expect("UTF-8 text"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Sends a hixie-76 text frame.
    pub(crate) fn hixie_send(&mut self, conn: ConnectionId, text: &str) {
        let mut bytes = vec![0x00];
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0xff);
        self.send_bytes(conn, &bytes);
    }

    /// Consumes the next complete hixie-76 frame, if one has arrived.
    pub(crate) fn hixie_read(&mut self, conn: ConnectionId) -> Option<HixieFrame> {
        let c = self.client(conn);
        let buf = &c.received[c.consumed..];
        match buf.first()? {
            0x00 => {
                let end = buf.iter().position(|&b| b == 0xff)?;
                let text = String::from_utf8(buf[1..end].to_vec()).expect("UTF-8 text");
                c.consumed += end + 1;
                Some(HixieFrame::Text(text))
            }
            0xff if buf.len() >= 2 => {
                assert_eq!(buf[1], 0x00, "a hixie-76 close frame");
                c.consumed += 2;
                Some(HixieFrame::Close)
            }
            0xff => None,
            other => panic!("not a hixie-76 frame type: {other:#04x}"),
        }
    }
}

/// An HTTP/1.1 request: the request line, `Host: test`, `headers` as given, and a
/// `Content-Length` when there is a body.
pub(crate) fn request_bytes(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The headers of an RFC 6455 upgrade with the suite's key and `version`.
pub(crate) fn ws_headers(version: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", version),
        ("Sec-WebSocket-Key", SUITE_WS_KEY),
    ]
}

/// A client frame: masked with [`MASK`].
pub(crate) fn ws_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Parses one server frame from the front of `buf`: the frame and the bytes it took.
/// Panics on a masked frame (servers must not mask).
pub(crate) fn parse_ws_frame(buf: &[u8]) -> Option<(WsFrame, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b1 & 0x80, 0, "a server frame must not be masked");
    let (len, at) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    assert_eq!(b0 & 0x70, 0, "no RSV bits");
    Some((
        WsFrame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0f,
            payload,
        },
        at + len,
    ))
}

/// Parses a response head from the front of `buf`: the response (body empty) and the bytes
/// the head took.
pub(crate) fn parse_head(buf: &[u8]) -> Option<(Response, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end])
        .expect("an ASCII head")
        .to_string();
    let mut lines = head[..end - 4].split("\r\n");
    let status_line = lines.next().expect("a status line");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "the status line: {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("a header line: {l:?}"));
            (n.to_string(), v.to_string())
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let mode = if (100..200).contains(&status) || status == 204 || status == 304 {
        assert!(
            find("content-length").is_none(),
            "no Content-Length on a {status}"
        );
        assert!(
            find("transfer-encoding").is_none(),
            "no Transfer-Encoding on a {status}"
        );
        BodyMode::Empty
    } else if let Some(te) = find("transfer-encoding") {
        assert_eq!(te, "chunked");
        assert!(
            find("content-length").is_none(),
            "Content-Length with chunked"
        );
        BodyMode::Chunked
    } else if let Some(n) = find("content-length") {
        BodyMode::Length(n.parse().expect("a numeric Content-Length"))
    } else {
        BodyMode::UntilClose
    };
    let response = Response {
        head,
        status,
        headers,
        body: Vec::new(),
        chunks: Vec::new(),
        mode,
    };
    Some((response, end))
}

/// Parses one chunk (`size CRLF data CRLF`) from the front of `buf`: its data (empty for the
/// last chunk, which must have no trailers) and the bytes it took.
pub(crate) fn parse_chunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let size_text = std::str::from_utf8(&buf[..line_end]).expect("an ASCII chunk size");
    assert!(
        !size_text.is_empty() && size_text.bytes().all(|b| b.is_ascii_hexdigit()),
        "a bare hex chunk size: {size_text:?}"
    );
    let size = usize::from_str_radix(size_text, 16).expect("a chunk size");
    let data_start = line_end + 2;
    let data = buf.get(data_start..data_start + size)?;
    let tail = buf.get(data_start + size..data_start + size + 2)?;
    assert_eq!(tail, b"\r\n", "chunk data ends with CRLF");
    Some((data.to_vec(), data_start + size + 2))
}

/// Parses one complete response from the front of `buf`; a body delimited by the close is
/// complete only if `closed`.
pub(crate) fn parse_response(buf: &[u8], closed: bool) -> Option<(Response, usize)> {
    let (mut r, mut used) = parse_head(buf)?;
    match r.mode {
        BodyMode::Empty => {}
        BodyMode::Length(n) => {
            r.body = buf.get(used..used + n)?.to_vec();
            used += n;
        }
        BodyMode::Chunked => loop {
            let (data, n) = parse_chunk(&buf[used..])?;
            used += n;
            if data.is_empty() {
                break;
            }
            r.body.extend_from_slice(&data);
            r.chunks.push(data);
        },
        BodyMode::UntilClose => {
            if !closed {
                return None;
            }
            r.body = buf[used..].to_vec();
            used = buf.len();
        }
    }
    Some((r, used))
}

/// Bytes as text for messages, invalid UTF-8 replaced.
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `/echo/000/<id>`: a session URL.
pub(crate) fn session_url(id: &str) -> String {
    format!("/echo/000/{id}")
}

/// Default limits changed by `f` (`Limits` cannot be built field by field).
pub(crate) fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

/// Milliseconds.
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Seconds.
pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
