//! A whole `Server` driven as an adapter would drive it, on a virtual clock, with the
//! invariants of the core's contract checked after every call.
//!
//! After each call the harness drains `poll_transmit` and `poll_event` completely (the
//! run-loop contract) and checks:
//! - a transmit names a connection that was accepted, is not after one that carried
//!   `After::Abort` nor after `handle_closed`, and after one that carried `After::Close` is at
//!   most an `After::Abort` with no data (the core keeps a closing connection until its last
//!   byte is reported written, and aborts it if that stalls); a connection's first bytes are
//!   an HTTP response;
//! - `connection_count()` equals the connections open or closing with bytes unreported, and
//!   the open ones never exceed `max_connections`; `session_count()` never exceeds
//!   `max_sessions` and is at least the sessions the application sees open;
//! - `Opened` names a new session (and none opens after `shutdown`), `Message` and `Closed`
//!   only a session that opened and has not closed: at most one `Closed` each;
//! - the bytes a connection was sent and has not reported written stay under a bound made of
//!   the limits and what the client itself sent (see [`Harness::unreported_bound`]);
//! - after `handle_timeout(now)`, `poll_timeout()` is later than `now`;
//! - `send`, `send_many` and `close` answer as the session's state says they must.
//!
//! [`Harness::finish`] then ends every connection and runs the clock until nothing is left:
//! every session that opened must have closed, and no session, connection or timer remains.
//! Last, it reads back what each WebSocket client received (on connections whose first bytes
//! were the 101): only well-formed server frames, and the messages the application sent, in
//! order, none lost between two that arrived, none twice; all of them if the server closed
//! the session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use sockjs_core::{After, CloseReason, Config, ConnectionId, Event, Limits, Server, SessionId};

use crate::ws_read;

/// Bytes of the output kept per connection for targets to inspect.
const KEPT_OUTPUT: usize = 64 * 1024;
/// Timer wake-ups one advance may take before it is called a busy loop.
const MAX_WAKEUPS: usize = 200_000;

/// The one base instant every harness starts from (the core only ever sees differences).
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Where a connection is in its life, as the adapter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Open.
    Open,
    /// A transmit carried `After::Close` while bytes were unreported: the core keeps it
    /// until they are reported written, or aborts it.
    Closing,
    /// The core has forgotten it: `After::Abort`, or `After::Close` with everything written.
    Ended,
    /// The adapter reported it gone (`handle_closed`).
    Gone,
}

/// What the harness knows of one accepted connection.
#[derive(Debug)]
pub struct Conn {
    /// The core's id for it.
    pub id: ConnectionId,
    /// Where it is in its life.
    pub phase: Phase,
    /// Bytes fed to it.
    pub fed: usize,
    /// Request heads fed to it, counted as blank lines ending a head (`\n\n`, `\n\r\n`);
    /// an over-estimate, which only loosens the output bound.
    pub heads: usize,
    /// The last two bytes fed, to find head ends across feeds.
    tail: [u8; 2],
    /// The first [`KEPT_OUTPUT`] bytes it was sent.
    pub output: Vec<u8>,
    /// Every byte it was sent.
    pub sent: usize,
    /// Bytes sent and not yet reported with `handle_written`.
    pub unreported: usize,
    /// `handle_timeout` calls made since it was accepted.
    pub timer_calls: usize,
}

impl Conn {
    /// Whether the core still tracks it.
    pub fn live(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Closing)
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
    /// For a WebSocket session on a connection whose first bytes were its 101: that
    /// connection, whose output is read back at the end.
    pub websocket_conn: Option<usize>,
    /// Messages the core took for it, in order.
    pub sent: Vec<String>,
    /// Whether `sent` is exact (a `send_many` naming it twice and closing it leaves it
    /// unknown how many copies were taken).
    pub sent_known: bool,
}

/// A `Server` on a virtual clock, its connections and sessions as an adapter and an
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
    /// Sessions in the order they opened.
    pub sessions: Vec<SessionModel>,
    by_session: HashMap<SessionId, usize>,
    shut_down: bool,
    next_port: u16,
    /// The longest text the application sent, in bytes: a message that long is queued
    /// even past `max_queued_bytes` when the queue is empty.
    longest_send: usize,
    /// The connection being fed, while it is.
    feeding: Option<usize>,
}

impl Harness {
    /// A harness around a server for `config`; `/info` entropy comes from a counter.
    pub fn new(config: Config) -> Self {
        let limits = config.limits.clone();
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
            sessions: Vec::new(),
            by_session: HashMap::new(),
            shut_down: false,
            next_port: 40000,
            longest_send: 0,
            feeding: None,
        }
    }

    /// Accepts a connection; returns its index in [`Harness::conns`].
    pub fn accept(&mut self) -> usize {
        self.next_port = self.next_port.wrapping_add(1);
        let peer = SocketAddr::from(([127, 0, 0, 1], self.next_port));
        let id = self.server.accept(self.now, peer);
        assert!(
            !self.by_conn.contains_key(&id),
            "accept reused a live or past id {id}"
        );
        self.by_conn.insert(id, self.conns.len());
        self.conns.push(Conn {
            id,
            phase: Phase::Open,
            fed: 0,
            heads: 0,
            tail: [0; 2],
            output: Vec::new(),
            sent: 0,
            unreported: 0,
            timer_calls: 0,
        });
        self.drain();
        self.conns.len() - 1
    }

    /// Feeds bytes to connection `i` (also after it ended: a stale id must be harmless).
    pub fn feed(&mut self, i: usize, data: &[u8]) {
        let c = &mut self.conns[i];
        if c.phase == Phase::Open {
            c.fed += data.len();
            let mut prev = c.tail;
            for &b in data {
                if b == b'\n' && (prev[1] == b'\n' || prev == [b'\n', b'\r']) {
                    c.heads += 1;
                }
                prev = [prev[1], b];
            }
            c.tail = prev;
        }
        let id = c.id;
        self.feeding = Some(i);
        self.server.handle_bytes(self.now, id, data);
        self.drain();
        self.feeding = None;
    }

    /// Reports up to `n` more bytes of connection `i` written (0: all of them).
    pub fn written(&mut self, i: usize, n: usize) {
        let c = &mut self.conns[i];
        let n = if n == 0 {
            c.unreported
        } else {
            n.min(c.unreported)
        };
        if n == 0 {
            return;
        }
        c.unreported -= n;
        if c.phase == Phase::Closing && c.unreported == 0 {
            // The core forgets a closing connection once its last byte is written.
            c.phase = Phase::Ended;
        }
        let id = c.id;
        self.server.handle_written(self.now, id, n);
        self.drain();
    }

    /// Reports connection `i` gone.
    pub fn closed(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let id = c.id;
        if c.live() {
            c.phase = Phase::Gone;
        }
        self.server.handle_closed(self.now, id);
        self.drain();
    }

    /// Moves the clock `by` ahead. With `step`, wakes at every deadline on the way, as an
    /// adapter's timer would; else jumps straight there, as a late timer would.
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
        for c in &mut self.conns {
            c.timer_calls += 1;
        }
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
    }

    /// The application sends `text` to session `j`.
    pub fn send(&mut self, j: usize, text: &str) {
        let id = self.sessions[j].id;
        let was_open = self.sessions[j].closed.is_none();
        self.longest_send = self.longest_send.max(text.len());
        let result = self.server.send(self.now, id, text);
        self.drain();
        match result {
            Ok(()) => {
                assert!(was_open, "send to closed {id} succeeded");
                self.sessions[j].sent.push(text.to_string());
            }
            Err(_) if was_open => assert_eq!(
                self.sessions[j].closed,
                Some(CloseReason::QueueFull),
                "send to open {id} failed without closing it for a full queue"
            ),
            Err(_) => {}
        }
    }

    /// The application sends `text` to the sessions `js` (indices, repeats allowed).
    pub fn send_many(&mut self, js: &[usize], text: &str) {
        let ids: Vec<SessionId> = js.iter().map(|&j| self.sessions[j].id).collect();
        let open_before = js
            .iter()
            .filter(|&&j| self.sessions[j].closed.is_none())
            .count();
        self.longest_send = self.longest_send.max(text.len());
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
                _ => {}
            }
        }
        assert!(
            delivered <= open_before,
            "send_many delivered {delivered} of {open_before} open"
        );
        if delivered < open_before {
            let queue_full = js
                .iter()
                .any(|&j| self.sessions[j].closed == Some(CloseReason::QueueFull));
            assert!(
                queue_full,
                "send_many skipped an open session without closing it"
            );
        }
    }

    /// The application closes session `j` with `code` and `reason`.
    pub fn close(&mut self, j: usize, code: u16, reason: &str) {
        let id = self.sessions[j].id;
        let was_open = self.sessions[j].closed.is_none();
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

    /// Starts a graceful shutdown: every open session must close at once.
    pub fn shutdown(&mut self) {
        self.server.shutdown(self.now);
        self.shut_down = true;
        self.drain();
        for s in &self.sessions {
            assert!(s.closed.is_some(), "{} still open after shutdown", s.id);
        }
    }

    /// Ends every connection and runs the clock until everything is forgotten: every session
    /// that opened must have closed, and no session, connection or timer may remain.
    pub fn finish(&mut self) {
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
    }

    /// Reads back what WebSocket session `j`'s client received: well-formed frames, and the
    /// application's messages in order, none twice, none invented; all of them when the
    /// session was closed by the server (which flushes the queue first), a prefix otherwise.
    fn check_websocket_delivery(&self, j: usize) {
        let s = &self.sessions[j];
        let Some(i) = s.websocket_conn else { return };
        let c = &self.conns[i];
        if c.sent > c.output.len() || !s.sent_known {
            return;
        }
        let out = &c.output[..];
        let head_end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("the 101 head ends")
            + 4;
        let hixie = out.starts_with(b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n");
        let start = if hixie { head_end + 16 } else { head_end };
        let frames = ws_read::frames(out.get(start..).unwrap_or_default(), hixie);
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
        if flushed {
            assert_eq!(
                received, s.sent,
                "{} closed by the server before delivering",
                s.id
            );
        }
    }

    /// The bound on bytes connection `i` may have been sent and not reported written: the
    /// unflushed limit, two batches of queued messages (the one that crossed the limit, and a
    /// close flushing the rest; a batch is `max_queued_bytes`, or one message of any size
    /// when the queue was empty, quoted at most 6 times longer), each at most 8 times larger
    /// once framed and escaped, for
    /// every request head a complete response with one batch, 32 times what the client sent
    /// (pongs, close frames), and a heartbeat frame and ping per timer call.
    pub fn unreported_bound(&self, i: usize) -> usize {
        let c = &self.conns[i];
        let queued = self.limits.max_queued_bytes.max(6 * self.longest_send + 2);
        let batch = 8 * queued + 1024;
        self.limits.max_unflushed_bytes
            + 2 * batch
            + 4096
            + c.heads * (batch + 8192)
            + 32 * c.fed
            + 128 * c.timer_calls
    }

    /// Drains transmits and events, checking every invariant in the module docs.
    pub fn drain(&mut self) {
        while let Some(t) = self.server.poll_transmit() {
            let Some(&i) = self.by_conn.get(&t.connection) else {
                panic!("transmit for {} that was never accepted", t.connection);
            };
            let c = &mut self.conns[i];
            match c.phase {
                Phase::Open => {}
                Phase::Closing => assert!(
                    t.after == After::Abort && t.data.is_empty(),
                    "transmit for {} after its Close: {:?} with {} bytes",
                    c.id,
                    t.after,
                    t.data.len()
                ),
                Phase::Ended => panic!("transmit for {} after the core forgot it", c.id),
                Phase::Gone => panic!("transmit for {} after handle_closed", c.id),
            }
            if c.sent == 0 && !t.data.is_empty() {
                assert!(
                    t.data.starts_with(b"HTTP/1.1 "),
                    "{} began with {:?}",
                    c.id,
                    String::from_utf8_lossy(&t.data[..t.data.len().min(40)])
                );
            }
            c.sent += t.data.len();
            c.unreported += t.data.len();
            let keep = KEPT_OUTPUT.saturating_sub(c.output.len()).min(t.data.len());
            c.output.extend_from_slice(&t.data[..keep]);
            match t.after {
                After::KeepOpen => {}
                After::Close if c.unreported > 0 => c.phase = Phase::Closing,
                After::Close | After::Abort => c.phase = Phase::Ended,
            }
        }
        while let Some(e) = self.server.poll_event() {
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
                    self.by_session.insert(session, self.sessions.len());
                    self.sessions.push(SessionModel {
                        id: session,
                        endpoint,
                        protocol: info.protocol,
                        closed: None,
                        messages: 0,
                        websocket_conn: self.feeding.filter(|&i| {
                            info.protocol.starts_with("websocket")
                                && self.conns[i].output.starts_with(b"HTTP/1.1 101 ")
                        }),
                        sent: Vec::new(),
                        sent_known: true,
                    });
                }
                Event::Message { session, .. } => {
                    let Some(&j) = self.by_session.get(&session) else {
                        panic!("message for {session} that never opened");
                    };
                    let s = &mut self.sessions[j];
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
            }
        }
        self.check_counts();
    }

    fn check_counts(&self) {
        let live = self.conns.iter().filter(|c| c.live()).count();
        let count = self.server.connection_count();
        assert_eq!(
            count, live,
            "connection_count against connections open or closing"
        );
        // Closing connections (a 503 refusal among them) are kept until their last bytes
        // are written, so only open ones are bounded by the limit.
        let open = self.conns.iter().filter(|c| c.phase == Phase::Open).count();
        assert!(
            open <= self.limits.max_connections,
            "{open} open connections"
        );
        let sessions = self.server.session_count();
        assert!(sessions <= self.limits.max_sessions, "{sessions} sessions");
        let open = self.sessions.iter().filter(|s| s.closed.is_none()).count();
        assert!(
            sessions >= open,
            "session_count {sessions} under {open} open sessions"
        );
        for (i, c) in self.conns.iter().enumerate() {
            if c.live() {
                let bound = self.unreported_bound(i);
                assert!(
                    c.unreported <= bound,
                    "{} holds {} unreported bytes, bound {bound}",
                    c.id,
                    c.unreported
                );
            }
        }
    }

    /// The limits the server runs with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}
