//! A whole `Server` driven as a host would drive it, on a virtual clock, with the
//! invariants of the core's run-loop contract checked after every call.
//!
//! The host side follows the contract on `sockjs_core::Server`: after each call the harness
//! drains `poll_event` and `poll_io` completely. Output stays in the core until the harness
//! writes it: [`Harness::write`] takes up to `k` bytes of `Server::output` (a partial write
//! may end inside a chunk), hands them to the client, and reports them with
//! `handle_written`. What a client "received" is exactly what was written this way.
//!
//! Checked after every call:
//! - `Io` names only accepted connections, and nothing comes for a connection after its
//!   `Io::Close` or after `handle_closed`; `Io::Shutdown` comes at most once, only when
//!   `output_len` is 0, and no `Io::Write` follows it; `is_connection` is false exactly for
//!   connections after their `Io::Close` or `handle_closed`, and `connection_count()` is
//!   the number of the others;
//! - an `Io::Write` announces output: a live connection has output waiting exactly when an
//!   `Io::Write` came for it since it last had none (no output the host is not told of, no
//!   second `Io::Write` while output waits);
//! - a connection's first bytes written are an HTTP response;
//! - connections served (accepted and not answered 503 at once, and not yet shut down:
//!   lingering ones do not count against it) never exceed `max_connections`;
//!   `session_count()` never exceeds `max_sessions` and is at least the sessions the
//!   application sees open;
//! - `output_len(conn)` stays within `max_unflushed_bytes`, plus the largest single message
//!   frame the application has caused (its `a[...]` frame, or its close frame, as the
//!   worst transport encodes it: see [`Harness::output_bound`]), plus a slack for what the
//!   client's own input and the timers produce (a response per request head, pongs no
//!   longer than the pings, a heartbeat per timer call while output waits);
//! - `Opened` names a new session (and none opens after `shutdown`), `Message` and `Closed`
//!   only a session that opened and has not closed: at most one `Closed` each;
//! - `Event::Message.connection` is a connection that was live when the call began and has
//!   been fed bytes: in a feed, the connection fed (elsewhere, one whose pipelined request
//!   was read once the response before it ended); a WebSocket session's messages always
//!   come on the connection that opened it;
//! - after `handle_timeout(now)`, `poll_timeout()` is later than `now`; with no connection
//!   and no session left, `poll_timeout()` is None;
//! - after `shutdown`, the first `handle_timeout` at or past `shutdown_timeout` leaves
//!   `connection_count()` at 0;
//! - `send`, `send_many` and `close` answer as the session's state says they must (a send
//!   refused closes its session for a full queue or for the memory budget);
//! - `buffered_bytes()` is at least the output waiting on all connections, 0 with no
//!   connection and no session, and after a send the core took, the total buffered bytes
//!   never exceed the budget (`max_buffered_bytes`) by more than one message (as the
//!   wordiest transport frames it), plus a slack for a polling head and the close frames of
//!   sessions the budget closed, and, per connection whose pipelined requests the send let
//!   the core read, `max_unflushed_bytes` and one response (see `check_budget`).
//!
//! [`Harness::finish`] then writes out every connection's output, ends every connection and
//! runs the clock until nothing is left: every session that opened must have closed, and no
//! session, connection or timer remains. Last, it reads back what each WebSocket client
//! received (on connections whose first bytes were the 101): only well-formed server frames,
//! and the messages the application sent, in order, none lost between two that arrived,
//! none twice; when the server closed the session, all of them if its `c[...]` frame
//! arrived (unless that frame, or a raw WebSocket's close frame, is the memory budget's: a
//! session closed already whose queue the budget dropped gets it instead of its own), or else (on RFC 6455) if nothing cut the session short: no output of the
//! connection was dropped (an aborted close, or `handle_closed` with output waiting), the
//! peer did not half-close it (after `handle_eof` the core writes what is on the connection,
//! then ends the session as lost, dropping what it still queued), it sent no close frame
//! (answered at once, RFC 6455 5.5.1, with what the session still queued dropped) and the
//! WebSocket was not failed for the client's protocol error (a close frame with 1002, 1003,
//! 1007 or 1009).
//!
//! Restated from the transmit contract this harness checked before: "no transmit after
//! `After::Abort`, at most an empty `After::Abort` after `After::Close`" is now the `Io`
//! order above; `connection_count()` counts every connection the core has not forgotten
//! (lingering ones too) instead of those open or closing with bytes unreported; the bound on
//! bytes sent and not reported written, which allowed whole batches of queued messages, is
//! now the bound on `output_len`, which allows one frame past `max_unflushed_bytes`.
//!
//! `seeds/server/regress_htmlfile_batch_escaping_past_unflushed` and
//! `regress_shutdown_timeout_lost_when_idle` reproduce the two core bugs these checks found
//! (both fixed).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use sockjs_core::bytes::BytesMut;
use sockjs_core::http::Request;
use sockjs_core::transport::{eventsource, htmlfile, jsonp, xhr};
use sockjs_core::{
    Authorization, CloseKind, CloseReason, Config, ConnectionId, Event, Io, Limits, RequestExtras,
    Response, ResponseBody, Server, SessionBinding, SessionId, SessionTransport, frame,
};

use crate::{peer, ws_read};

/// Bytes of the output kept per connection for targets to inspect.
const KEPT_OUTPUT: usize = 64 * 1024;
/// Timer wake-ups one advance may take before it is called a busy loop.
const MAX_WAKEUPS: usize = 200_000;
/// Rounds of writes one "write everything" may take before it is called a loop.
const MAX_WRITE_ROUNDS: usize = 100_000;
/// The longest callback the core accepts, for the JSONP frame bound.
const LONGEST_CALLBACK: &[u8] = b"cccccccccccccccccccccccccccccccc";
/// A WebSocket frame header (payload length in 64 bits) or a chunk-size line with its CRLFs.
const FRAMING: usize = 16;
/// Bytes one complete request's response may add beyond session frames: the largest fixed
/// answer (a streaming response head with its 2 KiB prelude, the iframe page, an htmlfile
/// prelude) with a `100 Continue` before it.
const RESPONSE_MAX: usize = 4096;
/// Output no single input causes: a 503 or error answer, server close frames
/// (`c[1001,"Server shutting down"]` and the like, with a WebSocket close frame), a polling
/// response's head written with its frame.
const SLACK: usize = 2048;
/// How many times `max_unflushed_bytes` the session frames waiting may take: 1, as the core
/// promises, however a transport's escaping expands a frame (`<` written `\u003c` in an
/// htmlfile or JSONP script string: the core budgets batches for that,
/// `seeds/server/regress_htmlfile_batch_escaping_past_unflushed`).
const WIRE_EXPANSION: usize = 1;
/// What closing one session for the memory budget may add to output: its close frame and a
/// WebSocket close frame after it.
const BUDGET_CLOSE: usize = 128;
/// What one timer call may add to waiting output: a heartbeat frame as the wordiest
/// transport writes it, with a WebSocket ping.
const PER_TIMER: usize = 128;

/// Whether `SOCKJS_FUZZ_TRACE` is set: then every `Io`, event and write is printed (and
/// the targets print their operations), for reading what a failing input does.
pub fn tracing() -> bool {
    static TRACING: OnceLock<bool> = OnceLock::new();
    *TRACING.get_or_init(|| std::env::var_os("SOCKJS_FUZZ_TRACE").is_some())
}

/// The one base instant every harness starts from (the core only ever sees differences).
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Where a connection is in its life, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Open.
    Open,
    /// `Io::Shutdown` came: the write side is shut, input is still read until `Io::Close`.
    Lingering,
    /// `Io::Close` came: the core has forgotten it.
    Closed {
        /// Output was dropped.
        aborted: bool,
    },
    /// The host reported it gone (`handle_closed`).
    Gone,
}

/// What the harness knows of one accepted connection.
#[derive(Debug)]
pub struct Conn {
    /// The core's id for it.
    pub id: ConnectionId,
    /// The port it was accepted from (`RequestInfo::peer` names it).
    pub port: u16,
    /// The address it was accepted from.
    pub ip: IpAddr,
    /// The `Forwarded`, `X-Forwarded-For` and `Cookie` headers of each distinct kind of
    /// request fed to it (see [`Harness::note_request`]).
    pub carried: Vec<Headers>,
    /// Bytes were fed to it whose headers the harness does not know (raw bytes).
    pub unknown_headers: bool,
    /// An `Event::Authorize` came for it at this time and no answer has ended it yet.
    pub pending: Option<Instant>,
    /// Its held request was accepted and has not opened a session yet (a hixie-76
    /// handshake opens once its key bytes arrive, after the `Accept`).
    pub accepted: bool,
    /// Where it is in its life.
    pub phase: Phase,
    /// Bytes fed to it.
    pub fed: usize,
    /// Request heads fed to it, counted as blank lines ending a head (`\n\n`, `\n\r\n`);
    /// an over-estimate, which only loosens the output bound.
    pub heads: usize,
    /// The last two bytes fed, to find head ends across feeds.
    tail: [u8; 2],
    /// The last byte fed, to find a close frame's first two bytes across feeds.
    last_fed: Option<u8>,
    /// The first 64 KiB written to it (`KEPT_OUTPUT`): what its client received.
    pub output: Vec<u8>,
    /// Every byte written to it.
    pub sent: usize,
    /// An `Io::Write` came and its output has not been written out since.
    pub write_pending: bool,
    /// An `Io::Write` came and `output` has not been called since: the core announces new
    /// output once per call of `output`.
    pub announced: bool,
    /// `handle_eof` was called for it.
    pub eof: bool,
    /// Bytes fed to it may hold a client's WebSocket close frame: the two bytes that start
    /// a final, masked RFC 6455 close frame (`0x88`, then a length byte with the mask bit)
    /// anywhere in what was fed (an over-estimate, which only loosens the delivery check).
    pub peer_close: bool,
    /// Output was dropped: an aborted `Io::Close`, or `handle_closed` with output waiting.
    pub dropped: bool,
    /// `handle_timeout` calls since it last had no output waiting.
    pub timer_calls: usize,
    /// It was refused on accept: its first output is a 503.
    pub refused: bool,
    /// For an exchange (`Server::handle_request`): what its host knows of it.
    pub exchange: Option<ExchangeModel>,
}

/// Header lines (name, value) that say who a client is.
pub type Headers = Vec<(Vec<u8>, Vec<u8>)>;

/// What the host knows of an exchange.
#[derive(Debug, Default)]
pub struct ExchangeModel {
    /// The head taken on `Io::Respond`.
    pub response: Option<Response>,
}

impl ExchangeModel {
    /// Whether its head switched protocols.
    pub fn upgraded(&self) -> bool {
        self.response.as_ref().is_some_and(|r| r.upgrade)
    }
}

impl Conn {
    /// Whether the core still tracks it.
    pub fn live(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Lingering)
    }
}

/// What the application knows of one session.
#[derive(Debug)]
pub struct SessionModel {
    /// The core's id for it.
    pub id: SessionId,
    /// Its endpoint's index.
    pub endpoint: usize,
    /// Its transport, from the request that opened it.
    pub protocol: &'static str,
    /// Why it closed, once it has.
    pub closed: Option<CloseReason>,
    /// Messages received from the client.
    pub messages: usize,
    /// The connection whose request opened it (found by the request's peer address).
    pub opened_on: Option<usize>,
    /// For a WebSocket session, the connection it runs on, whose output is read back at
    /// the end (when its first bytes were the 101).
    pub websocket_conn: Option<usize>,
    /// Messages the core took for it, in order.
    pub sent: Vec<String>,
    /// The address of the connection that opened it (what per-address limits count).
    pub peer_ip: IpAddr,
    /// What it is bound to: the opener's client address or cookie, by its endpoint's
    /// `session_binding` (`None` for an unbound endpoint).
    pub binding: Option<Bound>,
    /// Whether `sent` is exact (a `send_many` naming it twice and closing it leaves it
    /// unknown how many copies were taken).
    pub sent_known: bool,
}

/// What a session is bound to, as the harness models it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// The client address of the request that opened it.
    Ip(IpAddr),
    /// The value of the named cookie on that request (or none).
    Cookie(String, Option<Vec<u8>>),
}

/// The call being made, for the checks on what it produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// Bytes fed to this connection.
    Feed(usize),
    /// Anything else.
    Other,
}

/// A `Server` on a virtual clock, its connections and sessions as a host and an
/// application see them.
pub struct Harness {
    /// The server under test.
    pub server: Server,
    /// The virtual present.
    pub now: Instant,
    limits: Limits,
    /// Connections in the order they were accepted.
    pub conns: Vec<Conn>,
    by_conn: HashMap<ConnectionId, usize>,
    by_port: HashMap<u16, usize>,
    /// Sessions in the order they opened.
    pub sessions: Vec<SessionModel>,
    by_session: HashMap<SessionId, usize>,
    shut_down: bool,
    /// When the shutdown timeout ends, until the first `handle_timeout` past it.
    shutdown_deadline: Option<Instant>,
    next_port: u16,
    /// The longest frame one message (or one application close) the application caused can
    /// take on the wire, on any transport.
    largest_frame: usize,
    /// The call being made.
    call: Call,
    /// Which connections were live when the call began.
    live_at_call: Vec<bool>,
    /// Each connection's waiting output when the current call began.
    out_at_call: Vec<usize>,
    /// Whether the configuration trusts [`peer::trusted_ranges`] as proxies.
    trust: bool,
    /// The connection whose held request is being accepted by the call (`Server::authorize`
    /// with `Accept`): the one connection that may open a session on an authorizing
    /// endpoint.
    accepting: Option<usize>,
    /// Answers given to `Server::authorize`: (true, false) returns.
    pub authorize_results: (usize, usize),
}

/// The longest encoding of one SockJS frame on any transport, with its framing.
fn wire_len(sockjs_frame: &[u8]) -> usize {
    let mut longest = 0;
    let mut out = BytesMut::new();
    let encoders: [&dyn Fn(&mut BytesMut); 4] = [
        &|o| xhr::write_frame(o, sockjs_frame),
        &|o| eventsource::write_frame(o, sockjs_frame),
        &|o| htmlfile::write_frame(o, sockjs_frame),
        &|o| jsonp::write_frame(o, LONGEST_CALLBACK, sockjs_frame),
    ];
    for encode in encoders {
        out.clear();
        encode(&mut out);
        longest = longest.max(out.len());
    }
    // A WebSocket carries the frame as it is.
    longest.max(sockjs_frame.len()) + FRAMING
}

impl Harness {
    /// A harness around a server for `config`; `/info` entropy comes from a counter.
    pub fn new(config: Config) -> Self {
        let limits = config.limits.clone();
        let trust = !config.trusted_proxies.is_empty();
        let mut counter = 0u32;
        let entropy = Box::new(move || {
            counter = counter.wrapping_add(1);
            counter
        });
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let now = base();
        Harness {
            server: Server::new(config, now, wall, entropy),
            now,
            limits,
            conns: Vec::new(),
            by_conn: HashMap::new(),
            by_port: HashMap::new(),
            sessions: Vec::new(),
            by_session: HashMap::new(),
            shut_down: false,
            shutdown_deadline: None,
            next_port: 40000,
            largest_frame: 0,
            call: Call::Other,
            live_at_call: Vec::new(),
            out_at_call: Vec::new(),
            trust,
            accepting: None,
            authorize_results: (0, 0),
        }
    }

    /// Notes what is live as a call begins.
    fn begin(&mut self, call: Call) {
        self.call = call;
        self.live_at_call = self.conns.iter().map(Conn::live).collect();
        self.out_at_call = self
            .conns
            .iter()
            .map(|c| self.server.output_len(c.id))
            .collect();
    }

    /// Accepts a connection from 127.0.0.1; returns its index in [`Harness::conns`].
    pub fn accept(&mut self) -> usize {
        self.accept_from(peer::ADDRESSES[0])
    }

    /// Accepts a connection from `ip`; returns its index in [`Harness::conns`].
    pub fn accept_from(&mut self, ip: IpAddr) -> usize {
        let (port, peer) = self.next_peer(ip);
        self.begin(Call::Other);
        let id = self.server.accept(self.now, peer);
        let i = self.register(id, port, ip, None);
        let first = self.server.output(id).first().cloned().unwrap_or_default();
        self.conns[i].refused = first.starts_with(b"HTTP/1.1 503 ");
        self.conns[i].announced = false;
        self.drain();
        i
    }

    /// The port and address of the next connection from `ip`.
    fn next_peer(&mut self, ip: IpAddr) -> (u16, SocketAddr) {
        self.next_port = self.next_port.wrapping_add(1);
        (self.next_port, SocketAddr::new(ip, self.next_port))
    }

    /// Records a connection the core just made (from `accept`, or an exchange when
    /// `exchange` holds the identity headers of its request); returns its index.
    fn register(
        &mut self,
        id: ConnectionId,
        port: u16,
        ip: IpAddr,
        exchange: Option<Headers>,
    ) -> usize {
        assert!(
            !self.by_conn.contains_key(&id),
            "a new connection reused a live or past id {id}"
        );
        let i = self.conns.len();
        self.by_conn.insert(id, i);
        self.by_port.insert(port, i);
        self.conns.push(Conn {
            id,
            port,
            ip,
            heads: usize::from(exchange.is_some()),
            carried: exchange.iter().cloned().collect(),
            exchange: exchange.map(|_| ExchangeModel::default()),
            unknown_headers: false,
            pending: None,
            accepted: false,
            phase: Phase::Open,
            fed: 0,
            tail: [0; 2],
            last_fed: None,
            output: Vec::new(),
            sent: 0,
            write_pending: false,
            announced: false,
            eof: false,
            peer_close: false,
            dropped: false,
            timer_calls: 0,
            refused: false,
        });
        i
    }

    /// Hands a parsed request over as an exchange (`Server::handle_request`); returns its
    /// index in [`Harness::conns`]. The call counts as a feed of the new connection.
    pub fn exchange(&mut self, request: Request, extras: RequestExtras) -> usize {
        self.exchange_from(peer::ADDRESSES[0], request, extras)
    }

    /// [`Harness::exchange`] from `ip`.
    pub fn exchange_from(&mut self, ip: IpAddr, request: Request, extras: RequestExtras) -> usize {
        let (port, peer) = self.next_peer(ip);
        let carried: Headers = request
            .headers
            .iter()
            .filter(|h| is_identity_header(&h.name))
            .map(|h| (h.name.to_vec(), h.value.to_vec()))
            .collect();
        let fed = 64
            + request.target.len()
            + request.body.len()
            + request
                .headers
                .iter()
                .map(|h| h.name.len() + h.value.len() + 4)
                .sum::<usize>();
        self.begin(Call::Feed(self.conns.len()));
        let id = self.server.handle_request(self.now, peer, request, extras);
        let i = self.register(id, port, ip, Some(carried));
        self.conns[i].fed = fed;
        // Live for the checks on what the call produced.
        self.live_at_call.push(true);
        self.drain();
        i
    }

    /// Feeds bytes to connection `i` (also after it ended: a stale id must be harmless).
    pub fn feed(&mut self, i: usize, data: &[u8]) {
        let c = &mut self.conns[i];
        if c.carried.is_empty() && c.exchange.is_none() && !c.output.starts_with(b"HTTP/1.1 101 ") {
            // Bytes fed without `note_request` first (the `ws_handshake` target's requests):
            // what they say of the client is not known.
            c.unknown_headers = true;
        }
        if c.live() {
            c.fed += data.len();
            let mut prev = c.tail;
            for &b in data {
                if b == b'\n' && (prev[1] == b'\n' || prev == [b'\n', b'\r']) {
                    c.heads += 1;
                }
                prev = [prev[1], b];
            }
            c.tail = prev;
            let mut last = c.last_fed;
            for &b in data {
                c.peer_close |= last == Some(0x88) && b & 0x80 != 0;
                last = Some(b);
            }
            c.last_fed = last;
        }
        let id = c.id;
        self.begin(Call::Feed(i));
        self.server.handle_bytes(self.now, id, data);
        self.drain();
    }

    /// Notes the headers of a request about to be fed to connection `i` (only those that
    /// say who the client is are kept), for the session-binding checks.
    pub fn note_request<N: AsRef<[u8]>, V: AsRef<[u8]>>(&mut self, i: usize, headers: &[(N, V)]) {
        let carried: Headers = headers
            .iter()
            .filter(|(n, _)| is_identity_header(n.as_ref()))
            .map(|(n, v)| (n.as_ref().to_vec(), v.as_ref().to_vec()))
            .collect();
        let c = &mut self.conns[i];
        if !c.carried.contains(&carried) {
            c.carried.push(carried);
        }
    }

    /// Notes that bytes whose headers the harness does not know are about to be fed to
    /// connection `i` (raw bytes, or frames before its 101 was written): its requests are
    /// no longer checked against session bindings.
    pub fn note_raw(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if !c.output.starts_with(b"HTTP/1.1 101 ") && c.exchange.is_none() {
            c.unknown_headers = true;
        }
    }

    /// The application answers the authorization held on connection `i` (which may be one
    /// no request is held on, or one long gone: the answer must then be ignored). Checks
    /// that `authorize` returns true exactly when an `Event::Authorize` for it is pending.
    pub fn authorize(&mut self, i: usize, answer: Authorization) -> bool {
        let id = self.conns[i].id;
        let pending = self.conns[i].pending.take().is_some();
        let accept = answer == Authorization::Accept;
        self.begin(Call::Other);
        self.accepting = accept.then_some(i);
        let result = self.server.authorize(self.now, id, answer);
        // Set before the drain: an RFC 6455 session opens within the call, a hixie-76
        // one once its key bytes arrive. An answer for a connection with nothing pending is
        // ignored by the core, and leaves what an earlier `Accept` did alone (a hixie-76
        // handshake accepted, then answered again before its key bytes came:
        // `seeds/exchange/regress_authorize_late_answer_after_hixie_accept`).
        if pending {
            self.conns[i].accepted = accept;
        }
        self.drain();
        self.accepting = None;
        assert_eq!(
            result, pending,
            "authorize({id}) returned {result}; an authorization pending: {pending}"
        );
        if result {
            self.authorize_results.0 += 1;
        } else {
            self.authorize_results.1 += 1;
        }
        result
    }

    /// Indices of connections with an authorization pending.
    pub fn pending_authorizations(&self) -> Vec<usize> {
        (0..self.conns.len())
            .filter(|&i| self.conns[i].pending.is_some())
            .collect()
    }

    /// The peer of connection `i` ends its side (end of stream).
    pub fn eof(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if c.live() {
            c.eof = true;
        }
        if c.exchange.is_none() {
            // A held request's client is gone: nothing is served for it.
            c.pending = None;
        }
        let id = c.id;
        self.begin(Call::Other);
        self.server.handle_eof(self.now, id);
        self.drain();
    }

    /// One write of up to `max` bytes of connection `i`'s output (a partial write when
    /// `max` is less than what waits), handed to its client and reported; returns how many.
    pub fn write(&mut self, i: usize, max: usize) -> usize {
        let id = self.conns[i].id;
        let waiting = self.server.output_len(id);
        let mut taken = Vec::new();
        self.conns[i].announced = false;
        for chunk in self.server.output(id) {
            let n = chunk.len().min(max - taken.len());
            taken.extend_from_slice(&chunk[..n]);
            if taken.len() == max {
                break;
            }
        }
        let n = taken.len();
        if tracing() && n > 0 {
            let shown = String::from_utf8_lossy(&taken[..n.min(200)]);
            eprintln!("  write {i}: {n} of {waiting} bytes: {shown:?}");
        }
        let c = &mut self.conns[i];
        if n == 0 {
            return 0;
        }
        assert!(c.live(), "output for {} after the core forgot it", c.id);
        assert!(n <= waiting, "{}: output gave more than output_len", c.id);
        let before = c.output.len();
        let keep = KEPT_OUTPUT.saturating_sub(before).min(n);
        c.output.extend_from_slice(&taken[..keep]);
        c.sent += n;
        match &c.exchange {
            None => {
                let head = c.output.len().min(9);
                assert_eq!(
                    &c.output[..head],
                    &b"HTTP/1.1 "[..head],
                    "{} began with {:?}",
                    c.id,
                    String::from_utf8_lossy(&c.output[..c.output.len().min(40)])
                );
            }
            Some(x) => {
                let r = x.response.as_ref();
                assert!(r.is_some(), "body bytes for {} before its head", c.id);
                if let Some(Response {
                    body: ResponseBody::Length(len),
                    ..
                }) = r
                {
                    assert!(c.sent <= *len, "{}: {} body bytes of {len}", c.id, c.sent);
                }
                if let Some(Response {
                    body: ResponseBody::Empty,
                    upgrade: false,
                    ..
                }) = r
                {
                    panic!("body bytes for {}, whose response has none", c.id);
                }
            }
        }
        if n == waiting {
            // Written out: the next output is announced with a new `Io::Write`.
            c.write_pending = false;
        }
        self.begin(Call::Other);
        self.server.handle_written(self.now, id, n);
        self.drain();
        n
    }

    /// Writes connection `i`'s output until none is left, as a host whose socket takes
    /// everything would (the core may move more onto it after each write).
    pub fn write_all(&mut self, i: usize) {
        for _ in 0..MAX_WRITE_ROUNDS {
            if self.write(i, usize::MAX) == 0 {
                return;
            }
        }
        panic!(
            "{} kept producing output for {MAX_WRITE_ROUNDS} writes",
            self.conns[i].id
        );
    }

    /// Reports connection `i` gone.
    pub fn closed(&mut self, i: usize) {
        let id = self.conns[i].id;
        let waiting = self.server.output_len(id);
        let c = &mut self.conns[i];
        if c.live() {
            c.phase = Phase::Gone;
            c.dropped |= waiting > 0;
        }
        c.pending = None;
        self.begin(Call::Other);
        self.server.handle_closed(self.now, id);
        assert!(
            !self.server.is_connection(id),
            "{id} still known after handle_closed"
        );
        self.drain();
    }

    /// Moves the clock `by` ahead. With `step`, wakes at every deadline on the way, as a
    /// host's timer would; else jumps straight there, as a late timer would.
    pub fn advance(&mut self, by: Duration, step: bool) {
        let target = self.now + by;
        if step {
            let mut wakeups = 0;
            while let Some(at) = self.server.poll_timeout() {
                if at > target {
                    break;
                }
                wakeups += 1;
                assert!(wakeups < MAX_WAKEUPS, "timer busy loop: {wakeups} wake-ups");
                self.timeout(at.max(self.now));
            }
        }
        self.timeout(target);
    }

    /// Runs `handle_timeout` at `at` (not before the present).
    fn timeout(&mut self, at: Instant) {
        assert!(at >= self.now, "the harness clock ran backwards");
        self.now = at;
        let timeout = self.limits.authorization_timeout;
        for c in &mut self.conns {
            c.timer_calls += 1;
            // Past its timeout a held request is answered 503.
            if c.pending.is_some_and(|since| since + timeout <= at) {
                c.pending = None;
            }
        }
        self.begin(Call::Other);
        self.server.handle_timeout(self.now);
        self.drain();
        if let Some(next) = self.server.poll_timeout() {
            assert!(
                next > self.now,
                "poll_timeout {:?} after handle_timeout at {:?}",
                next - base(),
                self.now - base()
            );
        }
        if let Some(deadline) = self.shutdown_deadline
            && deadline <= self.now
        {
            // Connections accepted after an idle shutdown too
            // (`seeds/server/regress_shutdown_timeout_lost_when_idle`).
            let left = self.conns.iter().filter(|c| c.live()).count();
            assert_eq!(
                left,
                0,
                "connections left {:?} past the shutdown timeout",
                self.now - deadline
            );
            self.shutdown_deadline = None;
        }
    }

    /// The application sends `text` to session `j`.
    pub fn send(&mut self, j: usize, text: &str) {
        let id = self.sessions[j].id;
        let was_open = self.sessions[j].closed.is_none();
        self.note_message(text);
        self.begin(Call::Other);
        let result = self.server.send(self.now, id, text);
        self.drain();
        match result {
            Ok(()) => {
                assert!(was_open, "send to closed {id} succeeded");
                self.sessions[j].sent.push(text.to_string());
                self.check_budget();
            }
            Err(_) if was_open => assert!(
                matches!(
                    self.sessions[j].closed,
                    Some(CloseReason::QueueFull | CloseReason::MemoryBudget)
                ),
                "send to open {id} failed without closing it for a full queue or the budget: {:?}",
                self.sessions[j].closed
            ),
            Err(_) => {}
        }
    }

    /// After a send the core took: the bytes it holds pass the memory budget by at most one
    /// message (as the wordiest transport frames it), plus a slack for a polling response's
    /// head, the close frames of the sessions the budget closed, and the answers to requests
    /// the send let the core read.
    ///
    /// That last part: a send that ends a polling response (or a streaming one at its
    /// `response_limit`) lets the core read the requests its client pipelined behind it,
    /// and answer them. The budget does not govern those answers (it is enforced where
    /// messages are queued, as the 503s at `accept` are not held to it either): the core
    /// bounds them per connection instead, reading no further request once
    /// `max_unflushed_bytes` are waiting, so each connection the call resumed may hold that
    /// and one more response (`seeds/server/regress_send_resumes_pipelined_requests`). Such a
    /// connection had a request head fed after the one being answered, and its output grew.
    fn check_budget(&self) {
        let budget = self.limits.max_buffered_bytes;
        let closes = self.sessions.len() * BUDGET_CLOSE;
        let resumed = self
            .conns
            .iter()
            .enumerate()
            .filter(|&(i, c)| {
                c.heads >= 2
                    && self.server.output_len(c.id) > self.out_at_call.get(i).copied().unwrap_or(0)
            })
            .count();
        let answers = resumed * (self.limits.max_unflushed_bytes + RESPONSE_MAX);
        let bound = budget + self.largest_frame + SLACK + closes + answers;
        let held = self.server.buffered_bytes();
        assert!(
            held <= bound,
            "{held} bytes held after a send, budget {budget}, bound {bound}"
        );
    }

    /// The application sends `text` to the sessions `js` (indices, repeats allowed).
    pub fn send_many(&mut self, js: &[usize], text: &str) {
        let ids: Vec<SessionId> = js.iter().map(|&j| self.sessions[j].id).collect();
        let open_before = js
            .iter()
            .filter(|&&j| self.sessions[j].closed.is_none())
            .count();
        self.note_message(text);
        self.begin(Call::Other);
        let delivered = self.server.send_many(self.now, &ids, text);
        self.drain();
        for (k, &j) in js.iter().enumerate() {
            if js[..k].contains(&j) {
                continue;
            }
            let copies = js.iter().filter(|&&x| x == j).count();
            let s = &mut self.sessions[j];
            match &s.closed {
                // Still open: every copy was taken.
                None => s.sent.extend(std::iter::repeat_n(text.to_string(), copies)),
                // Closed by this call: the one copy was refused; of several, some may not be.
                Some(CloseReason::QueueFull) if copies > 1 => s.sent_known = false,
                // Closed for the budget: by this call perhaps, after its copy was taken (and
                // moved onto its connection) or before.
                Some(CloseReason::MemoryBudget) => s.sent_known = false,
                _ => {}
            }
        }
        assert!(
            delivered <= open_before,
            "send_many delivered {delivered} of {open_before} open"
        );
        if delivered < open_before {
            let refused = js.iter().any(|&j| {
                matches!(
                    self.sessions[j].closed,
                    Some(CloseReason::QueueFull | CloseReason::MemoryBudget)
                )
            });
            assert!(
                refused,
                "send_many skipped an open session without closing it"
            );
        } else if delivered > 0 {
            self.check_budget();
        }
    }

    /// The application closes session `j` with `code` and `reason`.
    pub fn close(&mut self, j: usize, code: u16, reason: &str) {
        let id = self.sessions[j].id;
        let was_open = self.sessions[j].closed.is_none();
        let close = frame::close_frame(code, reason);
        self.largest_frame = self.largest_frame.max(wire_len(&close));
        self.begin(Call::Other);
        let result = self.server.close(self.now, id, code, reason);
        self.drain();
        if was_open {
            assert!(result.is_ok(), "close of open {id} failed");
            let expected = CloseReason::Application {
                code,
                reason: reason.to_string(),
            };
            assert_eq!(
                self.sessions[j].closed.as_ref(),
                Some(&expected),
                "close of {id}"
            );
        } else {
            assert!(result.is_err(), "close of closed {id} succeeded");
        }
    }

    /// Starts a graceful shutdown: every open session must close at once, and the first
    /// `handle_timeout` past `shutdown_timeout` must find no connection left.
    pub fn shutdown(&mut self) {
        self.begin(Call::Other);
        self.server.shutdown(self.now);
        // Held requests are refused.
        for c in &mut self.conns {
            c.pending = None;
        }
        if !self.shut_down {
            self.shutdown_deadline = Some(self.now + self.limits.shutdown_timeout);
        }
        self.shut_down = true;
        self.drain();
        for s in &self.sessions {
            assert!(s.closed.is_some(), "{} still open after shutdown", s.id);
        }
    }

    /// Writes out every connection's output, ends every connection and runs the clock until
    /// everything is forgotten: every session that opened must have closed, and no session,
    /// connection or timer may remain.
    pub fn finish(&mut self) {
        for i in 0..self.conns.len() {
            self.write_all(i);
        }
        for i in 0..self.conns.len() {
            if self.conns[i].live() {
                self.closed(i);
            }
        }
        // Longer than any delay or timeout the targets configure.
        self.advance(Duration::from_secs(3600), true);
        for s in &self.sessions {
            assert!(s.closed.is_some(), "{} never closed", s.id);
        }
        assert_eq!(self.server.connection_count(), 0, "connections left");
        assert_eq!(self.server.session_count(), 0, "sessions left");
        assert_eq!(self.server.poll_timeout(), None, "timers left");
        for j in 0..self.sessions.len() {
            self.check_websocket_delivery(j);
        }
        if std::env::var_os("SOCKJS_FUZZ_SUMMARY").is_some() {
            // What an input reached, for checking that seeds do what they are named after.
            let messages: usize = self.sessions.iter().map(|s| s.messages).sum();
            let refused = self.conns.iter().filter(|c| c.refused).count();
            eprintln!(
                "summary: {} connections ({refused} refused), {} sessions, {messages} messages, \
                 authorize true/false {:?}, binding refusals {}",
                self.conns.len(),
                self.sessions.len(),
                self.authorize_results,
                self.server.binding_refusals()
            );
        }
    }

    /// Records the wire size of the frame holding `text` alone (quoted, `a[...]`, on the
    /// wordiest transport; or raw, for the raw WebSocket endpoint).
    fn note_message(&mut self, text: &str) {
        let quoted = frame::quote_message(text);
        let mut array = BytesMut::new();
        frame::write_array_frame(&mut array, [&quoted]);
        let longest = wire_len(&array).max(text.len() + FRAMING);
        self.largest_frame = self.largest_frame.max(longest);
    }

    /// Reads back what WebSocket session `j`'s client received: well-formed frames, and the
    /// application's messages in order, none twice, none invented; all of them when the
    /// session was closed by the server (which flushes the queue first) and no output was
    /// dropped, a prefix otherwise.
    fn check_websocket_delivery(&self, j: usize) {
        let s = &self.sessions[j];
        let Some(i) = s.websocket_conn else { return };
        let c = &self.conns[i];
        if c.sent > c.output.len() || !s.sent_known {
            return;
        }
        let out = &c.output[..];
        let (head_end, hixie, deflate) = match &c.exchange {
            // An exchange's output after its upgrade is the stream itself; its head (and
            // whether it agreed to permessage-deflate) is the structured response.
            Some(x) => match &x.response {
                Some(r) if r.upgrade => {
                    let deflate = r
                        .header("sec-websocket-extensions")
                        .is_some_and(|v| v.starts_with(b"permessage-deflate"));
                    (0, r.reason.is_some(), deflate)
                }
                _ => return,
            },
            None => {
                if !c.output.starts_with(b"HTTP/1.1 101 ") {
                    return;
                }
                let Some(head_end) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return;
                };
                let hixie = out.starts_with(b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n");
                let deflate = !hixie
                    && String::from_utf8_lossy(&out[..head_end + 4])
                        .to_ascii_lowercase()
                        .contains("\r\nsec-websocket-extensions: permessage-deflate");
                (head_end + 4, hixie, deflate)
            }
        };
        let start = if hixie { head_end + 16 } else { head_end };
        let deflate = !hixie && deflate;
        let frames = ws_read::frames(
            out.get(start..).unwrap_or_default(),
            hixie,
            c.dropped,
            deflate,
        );
        let received: Vec<String> = if s.protocol == "websocket-raw" {
            frames
                .iter()
                .filter_map(|f| match f {
                    ws_read::ServerFrame::Text(t) => {
                        Some(String::from_utf8(t.clone()).expect("UTF-8 text"))
                    }
                    _ => None,
                })
                .collect()
        } else {
            ws_read::sockjs_messages(&frames)
        };
        assert!(
            s.sent.starts_with(&received),
            "{} received {received:?}, sent {:?}",
            s.id,
            s.sent
        );
        let flushed = matches!(
            s.closed,
            Some(
                CloseReason::Application { .. }
                    | CloseReason::Shutdown
                    | CloseReason::QueueFull
                    | CloseReason::HeartbeatTimeout
            )
        );
        // Once the session's `c[...]` frame arrived, everything queued before it must have.
        // Without it, the full delivery is owed only if nothing cut the session short: output
        // dropped, the peer's half-close (the core writes what is on the connection, then
        // ends the session as lost), the peer's close frame (answered at once, as RFC 6455
        // 5.5.1 asks, with what the session still queued dropped:
        // `seeds/exchange/regress_ws_client_close_before_queue_flushed`), or a WebSocket
        // failed for the client's protocol error (seen as a close frame with 1002, 1003,
        // 1007 or 1009; a hixie-76 close frame has no code, so there only the `c[...]`
        // frame counts).
        let sockjs_closed = s.protocol == "websocket"
            && frames
                .iter()
                .any(|f| matches!(f, ws_read::ServerFrame::Text(t) if t.first() == Some(&b'c')));
        let failed = frames.iter().any(|f| {
            matches!(
                f,
                ws_read::ServerFrame::Close(Some(1002 | 1003 | 1007 | 1009), _)
            )
        }) && !matches!(
            s.closed,
            Some(CloseReason::Application {
                code: 1002 | 1003 | 1007 | 1009,
                ..
            })
        );
        // A session closed already whose queue the memory budget dropped gets the budget's
        // close frame instead of its own, saying that messages were lost: its `c[...]`
        // frame, or on a raw WebSocket the close frame's reason
        // (`seeds/exchange/regress_budget_drops_closed_session_queue`).
        let (budget_code, budget_text) = CloseReason::MemoryBudget.code_and_reason();
        let budget_frame = frame::close_frame(budget_code, budget_text);
        let budget_dropped = frames.iter().any(|f| match f {
            ws_read::ServerFrame::Text(t) => {
                s.protocol == "websocket" && t.as_slice() == budget_frame.as_ref()
            }
            ws_read::ServerFrame::Close(Some(code), reason) => {
                s.protocol == "websocket-raw"
                    && *code == budget_code
                    && reason.as_slice() == budget_text.as_bytes()
            }
            _ => false,
        });
        let owed = !budget_dropped
            && (sockjs_closed || (!hixie && !c.dropped && !c.eof && !failed && !c.peer_close));
        if flushed && owed {
            assert_eq!(
                received, s.sent,
                "{} closed by the server before delivering",
                s.id
            );
        }
    }

    /// The bound on connection `i`'s waiting output: `max_unflushed_bytes`, the largest
    /// single frame the application caused (the one frame that may pass the limit) and a
    /// close frame after it, a slack, and what the client's input and the timers add: a
    /// complete response per request head fed, pongs (never longer than the pings fed), and
    /// a heartbeat per timer call since its output was last empty.
    pub fn output_bound(&self, i: usize) -> usize {
        let c = &self.conns[i];
        WIRE_EXPANSION * self.limits.max_unflushed_bytes
            + 2 * self.largest_frame
            + SLACK
            + c.heads * RESPONSE_MAX
            + c.fed
            + PER_TIMER * c.timer_calls
    }

    /// Drains `Io` instructions and events, checking every invariant in the module docs.
    pub fn drain(&mut self) {
        while let Some(io) = self.server.poll_io() {
            if tracing() {
                eprintln!("  io {io:?}");
            }
            let id = match io {
                Io::Write(id) | Io::Shutdown(id) | Io::Respond(id) => id,
                Io::Close { connection, .. } => connection,
            };
            let Some(&i) = self.by_conn.get(&id) else {
                panic!("{io:?} for {id}, which was never accepted");
            };
            let waiting = self.server.output_len(id);
            let c = &mut self.conns[i];
            match c.phase {
                Phase::Open | Phase::Lingering => {}
                Phase::Closed { .. } => panic!("{io:?} after the Io::Close of {id}"),
                Phase::Gone => panic!("{io:?} after handle_closed of {id}"),
            }
            match io {
                Io::Write(_) if c.exchange.as_ref().is_some_and(|x| x.response.is_none()) => {
                    panic!("Io::Write for {id} before its Io::Respond");
                }
                Io::Write(_) => {
                    assert_eq!(
                        c.phase,
                        Phase::Open,
                        "Io::Write for {id} after Io::Shutdown"
                    );
                    assert!(
                        !c.announced,
                        "a second Io::Write for {id} before its output was taken"
                    );
                    c.announced = true;
                    c.write_pending = true;
                }
                Io::Respond(_) => {
                    let Some(x) = &mut c.exchange else {
                        panic!("Io::Respond for {id}, which came from accept");
                    };
                    assert!(x.response.is_none(), "a second Io::Respond for {id}");
                    assert!(
                        !c.announced && c.sent == 0,
                        "Io::Respond for {id} after an Io::Write"
                    );
                    let Some(r) = self.server.take_response(id) else {
                        panic!("Io::Respond for {id} without a response to take");
                    };
                    assert_eq!(self.server.take_response(id), None, "{id}: taken twice");
                    check_response(id, &r);
                    c.refused = r.status == 503;
                    x.response = Some(r);
                }
                Io::Shutdown(_) if c.exchange.as_ref().is_some_and(|x| !x.upgraded()) => {
                    panic!("Io::Shutdown for {id}, an exchange not upgraded");
                }
                Io::Shutdown(_) => {
                    assert_eq!(c.phase, Phase::Open, "a second Io::Shutdown for {id}");
                    assert_eq!(waiting, 0, "Io::Shutdown for {id} with output waiting");
                    c.phase = Phase::Lingering;
                }
                Io::Close { aborted, .. } => {
                    assert!(
                        !self.server.is_connection(id),
                        "{id} still known after its Io::Close"
                    );
                    if let Some(x) = &c.exchange
                        && !aborted
                        && !x.upgraded()
                    {
                        // A complete body: the head came, and all of its length.
                        let Some(r) = &x.response else {
                            panic!("{id} ended without a response");
                        };
                        match r.body {
                            ResponseBody::Length(n) => {
                                assert_eq!(c.sent, n, "{id} ended after {} of {n}", c.sent)
                            }
                            ResponseBody::Empty => assert_eq!(c.sent, 0, "{id}: a body"),
                            ResponseBody::Stream => {}
                        }
                    }
                    c.phase = Phase::Closed { aborted };
                    c.pending = None;
                    c.dropped |= aborted;
                    c.write_pending = false;
                }
            }
        }
        while let Some(e) = self.server.poll_event() {
            if tracing() {
                eprintln!("  event {e:?}");
            }
            match e {
                Event::Opened {
                    session,
                    endpoint,
                    info,
                } => {
                    assert!(!self.shut_down, "{session} opened after shutdown");
                    assert!(
                        !self.by_session.contains_key(&session),
                        "{session} opened twice"
                    );
                    let opened_on = self.by_port.get(&info.peer.port()).copied();
                    assert!(
                        opened_on.is_some(),
                        "{session} opened from {}, which no connection has",
                        info.peer
                    );
                    let accepted_earlier = opened_on.is_some_and(|i| {
                        std::mem::take(&mut self.conns[i].accepted)
                            && info.protocol.starts_with("websocket")
                    });
                    let options = self.server.endpoint_options(endpoint).expect("endpoint");
                    if options.authorize {
                        assert!(
                            (self.accepting.is_some() && self.accepting == opened_on)
                                || accepted_earlier,
                            "{session} opened on authorizing endpoint {endpoint} from {} \
                             without an Accept for it (accepting {:?})",
                            info.peer,
                            self.accepting
                        );
                    }
                    let binding = match &options.session_binding {
                        SessionBinding::PeerAddress => Some(Bound::Ip(info.client_ip)),
                        SessionBinding::Cookie(name) => {
                            let headers: Vec<(&[u8], &[u8])> = info
                                .headers
                                .iter()
                                .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
                                .collect();
                            Some(Bound::Cookie(name.clone(), peer::cookie(&headers, name)))
                        }
                        _ => None,
                    };
                    let i = opened_on.expect("checked");
                    assert_eq!(info.peer.ip(), self.conns[i].ip, "{session}: peer address");
                    if !self.conns[i].unknown_headers {
                        // The core's client address is the model's for one of the requests
                        // the connection carried.
                        let models: Vec<IpAddr> = self.conns[i]
                            .carried
                            .iter()
                            .map(|h| self.client_of(i, h))
                            .collect();
                        assert!(
                            models.contains(&info.client_ip),
                            "{session}: client_ip {} from {}, the model says one of {models:?}",
                            info.client_ip,
                            info.peer
                        );
                    }
                    self.by_session.insert(session, self.sessions.len());
                    self.sessions.push(SessionModel {
                        id: session,
                        endpoint,
                        protocol: info.protocol,
                        closed: None,
                        messages: 0,
                        opened_on,
                        websocket_conn: opened_on
                            .filter(|_| info.protocol.starts_with("websocket")),
                        sent: Vec::new(),
                        sent_known: true,
                        peer_ip: info.peer.ip(),
                        binding,
                    });
                }
                Event::Message {
                    session,
                    connection,
                    ..
                } => {
                    let Some(&j) = self.by_session.get(&session) else {
                        panic!("message for {session} that never opened");
                    };
                    let Some(&i) = self.by_conn.get(&connection) else {
                        panic!("message for {session} on {connection}, never accepted");
                    };
                    assert!(
                        self.live_at_call.get(i).copied().unwrap_or(false),
                        "message for {session} on {connection}, not live when the call began"
                    );
                    assert!(
                        self.conns[i].fed > 0,
                        "message for {session} on {connection}, which was fed nothing"
                    );
                    if let Call::Feed(k) = self.call {
                        assert_eq!(
                            k, i,
                            "message for {session} on {connection} while another was fed"
                        );
                    }
                    if self.sessions[j].websocket_conn.is_none()
                        && let Some(bound) = &self.sessions[j].binding
                        && !self.conns[i].unknown_headers
                    {
                        // Some request the connection carried matches the binding.
                        let c = &self.conns[i];
                        let matches = c.carried.iter().any(|h| match bound {
                            Bound::Ip(ip) => self.client_of(i, h) == *ip,
                            Bound::Cookie(name, value) => peer::cookie(&pairs(h), name) == *value,
                        });
                        assert!(
                            matches,
                            "a message for {session} bound to {bound:?} on {connection} from {}, \
                             whose requests carried {:?}",
                            c.ip, c.carried
                        );
                    }
                    let s = &mut self.sessions[j];
                    if let Some(w) = s.websocket_conn {
                        assert_eq!(w, i, "a message for WebSocket {session} on {connection}");
                    }
                    assert!(s.closed.is_none(), "message for {session} after Closed");
                    s.messages += 1;
                }
                Event::Closed { session, reason } => {
                    let Some(&j) = self.by_session.get(&session) else {
                        panic!("{session} closed without opening");
                    };
                    let s = &mut self.sessions[j];
                    assert!(
                        s.closed.is_none(),
                        "{session} closed twice: {:?}, {reason:?}",
                        s.closed
                    );
                    s.closed = Some(reason);
                }
                Event::Authorize {
                    connection,
                    endpoint,
                    info,
                } => {
                    let Some(&i) = self.by_conn.get(&connection) else {
                        panic!("Event::Authorize for {connection}, never accepted");
                    };
                    assert!(
                        !self.shut_down,
                        "Event::Authorize for {connection} after shutdown"
                    );
                    let authorizes = self
                        .server
                        .endpoint_options(endpoint)
                        .is_some_and(|o| o.authorize);
                    assert!(
                        authorizes,
                        "Event::Authorize on endpoint {endpoint}, which does not"
                    );
                    assert_eq!(info.peer.port(), self.conns[i].port, "Authorize: its peer");
                    let live_before = self.live_at_call.get(i).copied().unwrap_or(false);
                    let c = &mut self.conns[i];
                    assert!(
                        c.pending.is_none(),
                        "a second Event::Authorize for {connection} while one is pending"
                    );
                    if c.live() {
                        c.pending = Some(self.now);
                    } else {
                        // Held, then ended within the same call (its Io::Close was drained
                        // first): nothing is pending.
                        assert!(
                            live_before,
                            "Event::Authorize for {connection}, in {:?}",
                            c.phase
                        );
                    }
                }
            }
        }
        self.check_state();
    }

    fn check_state(&mut self) {
        let live = self.conns.iter().filter(|c| c.live()).count();
        let count = self.server.connection_count();
        assert_eq!(count, live, "connection_count against connections live");
        // Lingering connections are done with and do not keep new ones out; refused ones
        // are only answered 503.
        let open = self
            .conns
            .iter()
            .filter(|c| c.phase == Phase::Open && !c.refused)
            .count();
        assert!(
            open <= self.limits.max_connections,
            "{open} open connections"
        );
        let sessions = self.server.session_count();
        assert!(sessions <= self.limits.max_sessions, "{sessions} sessions");
        // Per address: accepted connections the core still knows (lingering ones too, but
        // not those refused on accept), and sessions opened from it not yet closed.
        let mut per_peer: HashMap<IpAddr, (usize, usize)> = HashMap::new();
        for c in &self.conns {
            if c.live() && !c.refused && c.exchange.is_none() {
                per_peer.entry(c.ip).or_default().0 += 1;
            }
        }
        for s in &self.sessions {
            if s.closed.is_none() {
                per_peer.entry(s.peer_ip).or_default().1 += 1;
            }
        }
        for (ip, (conns, sessions)) in per_peer {
            assert!(
                conns <= self.limits.max_connections_per_peer,
                "{conns} connections from {ip}"
            );
            assert!(
                sessions <= self.limits.max_sessions_per_peer,
                "{sessions} sessions from {ip}"
            );
        }
        let open = self.sessions.iter().filter(|s| s.closed.is_none()).count();
        assert!(
            sessions >= open,
            "session_count {sessions} under {open} open sessions"
        );
        // The core's figures agree with what the host saw.
        let stats = self.server.stats();
        assert_eq!(stats.connections(), count as u64, "the connections gauge");
        assert_eq!(stats.sessions_total(), open as u64, "the sessions gauge");
        let opened: u64 = SessionTransport::ALL
            .iter()
            .map(|&t| stats.sessions_opened(t))
            .sum();
        assert_eq!(opened, self.sessions.len() as u64, "sessions opened");
        let closed: u64 = CloseKind::ALL
            .iter()
            .map(|&k| stats.sessions_closed(k))
            .sum();
        assert_eq!(
            closed,
            self.sessions.len() as u64 - open as u64,
            "sessions closed"
        );
        let messages: usize = self.sessions.iter().map(|s| s.messages).sum();
        assert_eq!(stats.messages_in(), messages as u64, "messages in");
        while self.server.poll_notice().is_some() {}
        let output: usize = self
            .conns
            .iter()
            .map(|c| self.server.output_len(c.id))
            .sum();
        assert!(
            output <= self.server.buffered_bytes(),
            "{output} bytes of output waiting, buffered_bytes {}",
            self.server.buffered_bytes()
        );
        if live == 0 && sessions == 0 {
            assert_eq!(self.server.buffered_bytes(), 0, "bytes held for no one");
        }
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            let known = self.server.is_connection(c.id);
            assert_eq!(known, c.live(), "is_connection({}) in {:?}", c.id, c.phase);
            let waiting = self.server.output_len(c.id);
            if !c.live() {
                assert_eq!(waiting, 0, "output for {}, which is forgotten", c.id);
                continue;
            }
            assert_eq!(
                waiting > 0,
                c.write_pending,
                "{} has {waiting} bytes waiting; announced by an Io::Write: {}",
                c.id,
                c.write_pending
            );
            let bound = self.output_bound(i);
            assert!(
                waiting <= bound,
                "{} holds {waiting} bytes of output, bound {bound} (largest frame {})",
                c.id,
                self.largest_frame
            );
            if waiting == 0 {
                self.conns[i].timer_calls = 0;
            }
        }
        if live == 0 && sessions == 0 {
            assert_eq!(
                self.server.poll_timeout(),
                None,
                "a deadline with no connection and no session"
            );
        }
    }

    /// The client address the model finds for a request with `headers` on connection `i`.
    fn client_of(&self, i: usize, headers: &Headers) -> IpAddr {
        peer::client_ip(self.conns[i].ip, &pairs(headers), self.trust)
    }

    /// The limits the server runs with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Whether a header says who the client is (and so is kept by [`Harness::note_request`]).
fn is_identity_header(name: &[u8]) -> bool {
    ["forwarded", "x-forwarded-for", "cookie"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

/// Borrowed header pairs.
fn pairs(headers: &Headers) -> Vec<(&[u8], &[u8])> {
    headers
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect()
}

/// What an exchange's head may hold: no header its host's HTTP layer owns, a status, and
/// an empty body on an upgrade (a `101`, or the `200` of an extended CONNECT).
fn check_response(id: ConnectionId, r: &Response) {
    assert!((100..600).contains(&r.status), "{id}: status {}", r.status);
    for (name, value) in &r.headers {
        let owned = ["content-length", "transfer-encoding", "date", "keep-alive"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n));
        assert!(!owned, "{id}: the host's header {name} in the head");
        if name.eq_ignore_ascii_case("connection") {
            assert!(
                r.status == 101 && value.eq_ignore_ascii_case(b"upgrade"),
                "{id}: Connection: {value:?} in a {}",
                r.status
            );
        }
        assert!(
            !value.iter().any(|&b| b == b'\r' || b == b'\n'),
            "{id}: a line break in {name}"
        );
    }
    assert_eq!(
        r.status == 101,
        r.upgrade && r.status != 200,
        "{id}: upgrade on {}",
        r.status
    );
    if r.upgrade {
        assert!(
            matches!(r.status, 101 | 200),
            "{id}: upgrade on {}",
            r.status
        );
        assert_eq!(r.body, ResponseBody::Empty, "{id}: a body on an upgrade");
    }
    assert_eq!(
        r.reason.is_some(),
        r.status == 101 && r.header("sec-websocket-accept").is_none(),
        "{id}: reason {:?} on {}",
        r.reason,
        r.status
    );
}
