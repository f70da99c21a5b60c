//! A sans-IO SockJS client: the same protocol from the other end, as a deterministic state
//! machine with no I/O, no clock and no randomness of its own.
//!
//! A [`Client`] is made from a base URL ([`Url`]) and [`ClientOptions`]. It asks `/info`
//! first, then tries the allowed transports in sockjs-client's order (websocket unless
//! `/info` says `"websocket":false`, then xhr_streaming, eventsource, xhr polling), moving to
//! the next when one fails or does not open in time. Once open it reads `o`, `h`, `a[...]`
//! and `c[...]` frames, reopens streaming responses the server ends at its
//! `response_limit` (the server keeps what arrives in between, so no frame is lost), batches
//! the messages sent while an `xhr_send` is in flight into the next one, and watches for
//! heartbeats.
//!
//! # The run-loop contract
//!
//! The host owns the sockets and one timer; the client owns every protocol decision. After
//! every call that takes `now` (and after [`Client::new`]), the host drains
//! [`Client::poll_io`] and [`Client::poll_event`] until both return `None`, then arms its
//! timer for [`Client::poll_timeout`] and calls [`Client::handle_timeout`] when it fires:
//!
//! - [`Io::Connect`]: open a TCP connection (TLS when [`Url::tls`]) to [`Url::host`] and
//!   [`Url::port`] for this connection id. [`Io::Write`]s for it may follow at once: write
//!   them, in order, once connected.
//! - [`Io::Write`]: write all the bytes to that connection.
//! - [`Io::Close`]: write what is still queued for it, then close it; it is forgotten.
//! - Bytes read go to [`Client::handle_bytes`]; the end of the stream (or a failed connect,
//!   or any socket error) to [`Client::handle_eof`], after which the connection is gone.
//!
//! The application calls [`Client::send`] and [`Client::close`] and receives [`Event`]s:
//! [`Event::Opened`] once, [`Event::Message`]s, [`Event::Error`]s (each failure, including
//! a transport given up for the next one), and [`Event::Closed`] last. No server answer,
//! however malformed, panics: it is an [`Event::Error`], then a fallback or a close.
//!
//! Memory is bounded: per connection, one response head (`max_head_size`) and one frame or
//! response body (`max_frame_size`) plus what the host feeds in one call; messages leave
//! through [`Client::poll_event`] as they are decoded.
//!
//! ```
//! use std::time::Instant;
//! use sockjs_core::client::{Client, ClientOptions, Io, Url};
//!
//! let now = Instant::now();
//! let url = Url::parse("http://127.0.0.1:8081/echo").unwrap();
//! let mut n = 0u32;
//! let entropy = Box::new(move || { n += 1; n });
//! let mut client = Client::new(url, ClientOptions::default(), now, entropy);
//! let Some(Io::Connect(conn)) = client.poll_io() else { panic!() };
//! let Some(Io::Write(_, request)) = client.poll_io() else { panic!() };
//! assert!(request.starts_with(b"GET /echo/info HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n"));
//! client.handle_bytes(now, conn, b"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n{\"websocket\":true}");
//! // The websocket transport is next: a new connection and its upgrade request.
//! assert!(matches!(client.poll_io(), Some(Io::Connect(_))));
//! ```

mod receive;
mod url;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use crate::Entropy;
use crate::frame::quote_message;
use crate::http::response_decoder::{ResponseDecoder, ResponseHead, ResponsePart};
use crate::payload::{parse_array, parse_close, parse_info};
use crate::ws::{FrameDecoder, Incoming, Limits as WsLimits};
use receive::Body;
pub use url::{Url, UrlError};

/// A SockJS transport the client can use, in the order it tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// A WebSocket on `<session>/websocket`.
    WebSocket,
    /// A streaming `POST <session>/xhr_streaming`, reopened when the server ends it.
    XhrStreaming,
    /// A `GET <session>/eventsource` event stream, reopened when the server ends it.
    EventSource,
    /// Long polling: `POST <session>/xhr`, one frame per response.
    XhrPolling,
}

impl Transport {
    /// Every transport, in the order sockjs-client tries them.
    pub const ALL: [Transport; 4] = [
        Transport::WebSocket,
        Transport::XhrStreaming,
        Transport::EventSource,
        Transport::XhrPolling,
    ];

    /// The transport's name in URLs (`websocket`, `xhr_streaming`, `eventsource`, `xhr`).
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::XhrStreaming => "xhr_streaming",
            Transport::EventSource => "eventsource",
            Transport::XhrPolling => "xhr",
        }
    }

    /// The transport called `name` (as [`Transport::name`] writes it; `xhr_polling` too).
    pub fn from_name(name: &str) -> Option<Transport> {
        match name {
            "websocket" => Some(Transport::WebSocket),
            "xhr_streaming" => Some(Transport::XhrStreaming),
            "eventsource" => Some(Transport::EventSource),
            "xhr" | "xhr_polling" => Some(Transport::XhrPolling),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a client connects; [`ClientOptions::default`] does what sockjs-client does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The transports allowed, tried in [`Transport::ALL`] order whatever the order here.
    /// Default: all four.
    pub transports: Vec<Transport>,
    /// How long `/info` may take before the client gives up (sockjs-client: 8 s).
    pub info_timeout: Duration,
    /// The least time a transport has to open before the next is tried. The time allowed
    /// is the larger of this and sockjs-client's estimate from the `/info` round trip
    /// (twice 300 ms plus the round trip, or twice four round trips when over 100 ms).
    /// Default 2 s.
    pub transport_timeout: Duration,
    /// How long an open session may go without a frame before it is given up as lost;
    /// `None` never. Default 60 s (servers send `h` every 25 s by default).
    pub heartbeat_timeout: Option<Duration>,
    /// Headers added to every request (HTTP and the WebSocket upgrade).
    pub headers: Vec<(String, String)>,
    /// Cookies sent with every request; `Set-Cookie` answers add to them and replace them.
    pub cookies: Vec<(String, String)>,
    /// Largest frame, WebSocket message or whole response body buffered. Default 16 MiB.
    pub max_frame_size: usize,
    /// Largest response head. Default 64 KiB.
    pub max_head_size: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            transports: Transport::ALL.to_vec(),
            info_timeout: Duration::from_secs(8),
            transport_timeout: Duration::from_secs(2),
            heartbeat_timeout: Some(Duration::from_secs(60)),
            headers: Vec::new(),
            cookies: Vec::new(),
            max_frame_size: 16 << 20,
            max_head_size: 64 << 10,
        }
    }
}

impl ClientOptions {
    /// Only these transports (tried in [`Transport::ALL`] order).
    pub fn transports(mut self, transports: impl IntoIterator<Item = Transport>) -> Self {
        self.transports = transports.into_iter().collect();
        self
    }

    /// Adds a header to every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a cookie to every request.
    pub fn cookie(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cookies.push((name.into(), value.into()));
        self
    }

    /// See [`ClientOptions::heartbeat_timeout`].
    pub fn heartbeat_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// See [`ClientOptions::transport_timeout`].
    pub fn transport_timeout(mut self, timeout: Duration) -> Self {
        self.transport_timeout = timeout;
        self
    }

    /// See [`ClientOptions::max_frame_size`].
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }
}

/// One connection the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What the host must do with its connections (see the run-loop contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    /// Open a connection to the URL's host and port.
    Connect(ConnId),
    /// Write these bytes to the connection.
    Write(ConnId, Bytes),
    /// Write what is queued, then close the connection.
    Close(ConnId),
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The session is open (the server's `o`) on this transport.
    Opened(Transport),
    /// A message from the server.
    Message(String),
    /// Something failed: a transport that is given up for the next, or the cause of the
    /// close that follows.
    Error(ClientError),
    /// The session is closed; nothing follows.
    Closed(Close),
}

/// Who ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy {
    /// The server, with a `c[code,"reason"]` frame.
    Server,
    /// The application, with [`Client::close`].
    Application,
    /// A failure: no transport worked, the connection was lost, the server answered
    /// something that is not SockJS. An [`Event::Error`] came first.
    Failure,
}

/// How a session ended: sockjs-client's close code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The code: the server's, the application's, or for failures 1002 (no `/info`), 2000
    /// (every transport failed), 1006 (connection lost, heartbeat timeout, send failed) or
    /// 1002 (frames that are not SockJS).
    pub code: u16,
    /// The reason.
    pub reason: String,
    /// Who ended it.
    pub by: ClosedBy,
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The connection failed or ended too early.
    Connection,
    /// An unexpected HTTP status.
    Status(u16),
    /// An answer that is not HTTP, WebSocket or SockJS as it must be.
    Malformed,
    /// A frame or body over `max_frame_size`.
    TooLarge,
    /// `/info` or a transport did not answer in time.
    Timeout,
    /// No frame for `heartbeat_timeout`.
    Heartbeat,
}

/// A failure, with the transport it happened on (`None` for `/info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// What failed.
    pub kind: ErrorKind,
    /// The transport in use, if any.
    pub transport: Option<Transport>,
    /// Whether it was the sending side (`xhr_send`).
    pub sending: bool,
    /// A description for people.
    pub detail: String,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.sending { "xhr_send" } else { "" };
        match (self.transport, self.sending) {
            (_, true) => write!(f, "{what}: ")?,
            (Some(t), false) => write!(f, "{t}: ")?,
            (None, false) => f.write_str("info: ")?,
        }
        match self.kind {
            ErrorKind::Status(s) => write!(f, "HTTP status {s}: {}", self.detail),
            _ => f.write_str(&self.detail),
        }
    }
}

impl std::error::Error for ClientError {}

/// Why [`Client::send`] or [`Client::close`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// The session is not open (not yet, or not any more).
    NotOpen,
    /// The session is closed.
    Closed,
    /// A close code other than 1000 or 3000-4999.
    InvalidCode,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UsageError::NotOpen => "the session is not open",
            UsageError::Closed => "the session is closed",
            UsageError::InvalidCode => "close codes are 1000 or 3000-4999",
        })
    }
}

impl std::error::Error for UsageError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Info,
    Connecting,
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Info,
    Receiver,
    Sender,
    /// A keep-alive connection between requests.
    Idle,
}

/// A WebSocket connection's state: the key it sent, then its decoder once upgraded.
#[derive(Debug)]
struct Ws {
    key: String,
    frames: Option<FrameDecoder>,
}

#[derive(Debug)]
struct Conn {
    role: Role,
    http: ResponseDecoder,
    head: Option<ResponseHead>,
    body: Body,
    ws: Option<Ws>,
    /// The host reported its end: no [`Io`] may name it any more.
    gone: bool,
}

/// What reading one connection's bytes came to, applied in order once it is decoded.
#[derive(Debug)]
enum Step {
    Head(ResponseHead),
    Frame(Bytes),
    /// The response is complete (its frames are the steps before).
    End,
    Ping(Bytes),
    /// The server's WebSocket close frame.
    WsClosed,
    Fail(ErrorKind, String),
}

/// The SockJS client state machine; see the [module docs](self) for the contract.
pub struct Client {
    url: Url,
    options: ClientOptions,
    entropy: Entropy,
    server_id: String,
    /// `<prefix>/<server>/<session>` of the transport being tried or in use.
    session_path: String,
    candidates: VecDeque<Transport>,
    transport: Option<Transport>,
    phase: Phase,
    conns: BTreeMap<ConnId, Conn>,
    receiver: Option<ConnId>,
    sender: Option<ConnId>,
    /// Quoted messages waiting for the next `xhr_send`.
    outbox: Vec<Bytes>,
    next_conn: u64,
    io: VecDeque<Io>,
    events: VecDeque<Event>,
    info_sent: Instant,
    /// The time a transport gets to open (from the `/info` round trip).
    open_timeout: Duration,
    info_deadline: Option<Instant>,
    open_deadline: Option<Instant>,
    heartbeat_deadline: Option<Instant>,
    cookies: Vec<(String, String)>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("phase", &self.phase)
            .field("transport", &self.transport)
            .field("connections", &self.conns.len())
            .finish()
    }
}

/// Keep-alive connections kept for later requests, at most.
const MAX_IDLE: usize = 2;
/// The alphabet of sockjs-client's session ids.
const ID_CHARS: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz012345";

impl Client {
    /// A client for the endpoint at `url`; it asks for `/info` at once (drain
    /// [`Client::poll_io`]). `entropy` gives the server and session ids and the WebSocket
    /// keys and masks: use a cryptographic source in production.
    pub fn new(url: Url, options: ClientOptions, now: Instant, mut entropy: Entropy) -> Client {
        let server_id = format!("{:03}", entropy() % 1000);
        let candidates = Transport::ALL
            .into_iter()
            .filter(|t| options.transports.contains(t))
            .collect();
        let cookies = options.cookies.clone();
        let mut client = Client {
            url,
            options,
            entropy,
            server_id,
            session_path: String::new(),
            candidates,
            transport: None,
            phase: Phase::Info,
            conns: BTreeMap::new(),
            receiver: None,
            sender: None,
            outbox: Vec::new(),
            next_conn: 0,
            io: VecDeque::new(),
            events: VecDeque::new(),
            info_sent: now,
            open_timeout: Duration::ZERO,
            info_deadline: None,
            open_deadline: None,
            heartbeat_deadline: None,
            cookies,
        };
        let path = format!("{}/info{}", client.url.prefix, client.url.query);
        let request = client.request_bytes("GET", &path, &[], b"");
        client.receiver = Some(client.start_request(Role::Info, Body::whole(), request));
        client.info_deadline = Some(now + client.options.info_timeout);
        client
    }

    /// The URL the client connects to (the host connects to its host and port).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The transport in use once open (or being tried while connecting).
    pub fn transport(&self) -> Option<Transport> {
        self.transport
    }

    /// Whether the session is open (messages can be sent).
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether the session is closed ([`Event::Closed`] was emitted or is waiting).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Connections the client holds.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Bytes the client holds for responses not yet complete (heads, bodies, frames): what
    /// its memory bound is about.
    pub fn buffered_bytes(&self) -> usize {
        self.conns
            .values()
            .map(|c| {
                c.http.buffered()
                    + c.body.buffered()
                    + c.ws
                        .as_ref()
                        .and_then(|w| w.frames.as_ref())
                        .map_or(0, |d| d.buffered_len() + d.message_capacity())
            })
            .sum::<usize>()
            + self.outbox.iter().map(Bytes::len).sum::<usize>()
    }

    /// The next thing to do with a connection.
    pub fn poll_io(&mut self) -> Option<Io> {
        self.io.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.info_deadline,
            self.open_deadline,
            self.heartbeat_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The timer fired: gives up `/info`, a transport or a silent session whose time is up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.info_deadline.is_some_and(|d| d <= now) {
            self.fail(now, ErrorKind::Timeout, false, "no answer in time".into());
        }
        if self.open_deadline.is_some_and(|d| d <= now) {
            self.fail(
                now,
                ErrorKind::Timeout,
                false,
                "did not open in time".into(),
            );
        }
        if self.heartbeat_deadline.is_some_and(|d| d <= now) {
            self.fail(
                now,
                ErrorKind::Heartbeat,
                false,
                "no heartbeat in time".into(),
            );
        }
    }

    /// Sends a message: on a WebSocket at once, else with the next `xhr_send` (messages
    /// sent while one is in flight go together in the one after it).
    pub fn send(&mut self, message: &str) -> Result<(), UsageError> {
        match self.phase {
            Phase::Open => {}
            Phase::Closed => return Err(UsageError::Closed),
            _ => return Err(UsageError::NotOpen),
        }
        let quoted = quote_message(message);
        if self.transport == Some(Transport::WebSocket) {
            let Some(id) = self.receiver else {
                return Err(UsageError::NotOpen);
            };
            let mut payload = BytesMut::with_capacity(quoted.len() + 2);
            payload.put_u8(b'[');
            payload.put_slice(&quoted);
            payload.put_u8(b']');
            let mut out = BytesMut::with_capacity(payload.len() + 14);
            let mask = self.mask();
            crate::ws::frame::encode_masked_text(&mut out, &payload, mask);
            self.io.push_back(Io::Write(id, out.freeze()));
        } else {
            self.outbox.push(quoted);
            self.flush_sends();
        }
        Ok(())
    }

    /// Closes the session with `code` (1000 or 3000-4999) and `reason`, which the
    /// application gets back in [`Event::Closed`]; the server sees the connections end.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), UsageError> {
        if self.phase == Phase::Closed {
            return Err(UsageError::Closed);
        }
        if code != 1000 && !(3000..=4999).contains(&code) {
            return Err(UsageError::InvalidCode);
        }
        if self.transport == Some(Transport::WebSocket)
            && let Some(id) = self.receiver
            && self
                .conns
                .get(&id)
                .is_some_and(|c| c.ws.as_ref().is_some_and(|w| w.frames.is_some()))
        {
            let mut out = BytesMut::new();
            let mask = self.mask();
            crate::ws::frame::encode_masked_close(&mut out, 1000, mask);
            self.io.push_back(Io::Write(id, out.freeze()));
        }
        self.finish(code, reason.to_string(), ClosedBy::Application);
        Ok(())
    }

    /// Bytes read from a connection.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let max_frame = self.options.max_frame_size;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let steps = c.read(data, max_frame);
        self.apply(now, conn, steps);
    }

    /// The connection ended (closed by the peer, failed, or never connected); it is gone.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.gone = true;
        let mut steps = Vec::new();
        if c.ws.is_none() {
            match c.http.finish() {
                Ok(Some(ResponsePart::End)) => c.end_body(&mut steps),
                Ok(_) => {}
                Err(e) => steps.push(Step::Fail(ErrorKind::Connection, e.to_string())),
            }
        }
        self.apply(now, conn, steps);
        if let Some(c) = self.conns.remove(&conn) {
            // Unless it was idle, the response it carried did not end as it should have.
            let detail = "connection closed".into();
            self.conn_failed(now, conn, c.role, ErrorKind::Connection, detail);
        }
    }

    fn apply(&mut self, now: Instant, id: ConnId, steps: Vec<Step>) {
        for step in steps {
            let Some(c) = self.conns.get(&id) else {
                return;
            };
            let role = c.role;
            match step {
                Step::Head(head) => self.on_head(now, id, role, head),
                Step::Frame(frame) => {
                    if role == Role::Receiver {
                        self.on_frame(now, &frame);
                    }
                }
                Step::End => self.on_end(now, id, role),
                Step::Ping(payload) => {
                    // sockjs-node's heartbeat on a WebSocket is a ping, not `h`.
                    self.touch(now);
                    let mut out = BytesMut::new();
                    let mask = self.mask();
                    crate::ws::frame::encode_masked_pong(&mut out, &payload, mask);
                    self.io.push_back(Io::Write(id, out.freeze()));
                }
                Step::WsClosed => {
                    self.drop_conn(id);
                    self.conn_failed(
                        now,
                        id,
                        role,
                        ErrorKind::Connection,
                        "WebSocket closed without a close frame".into(),
                    );
                }
                Step::Fail(kind, detail) => {
                    self.drop_conn(id);
                    self.conn_failed(now, id, role, kind, detail);
                }
            }
        }
    }

    /// A connection that had a job failed (it is already forgotten).
    fn conn_failed(
        &mut self,
        now: Instant,
        id: ConnId,
        role: Role,
        kind: ErrorKind,
        detail: String,
    ) {
        match role {
            Role::Idle => {}
            Role::Sender => {
                self.sender = None;
                self.fail(now, kind, true, detail);
            }
            Role::Info | Role::Receiver => {
                if self.receiver == Some(id) {
                    self.receiver = None;
                    self.fail(now, kind, false, detail);
                }
            }
        }
    }

    fn on_head(&mut self, now: Instant, id: ConnId, role: Role, head: ResponseHead) {
        for h in &head.headers {
            if h.name.eq_ignore_ascii_case(b"set-cookie") {
                self.store_cookie(&h.value);
            }
        }
        let status = head.status;
        let ok = match role {
            Role::Sender => (200..300).contains(&status),
            _ => status == 200 || status == 101,
        };
        if !ok {
            self.drop_conn(id);
            self.conn_failed(
                now,
                id,
                role,
                ErrorKind::Status(status),
                "unexpected answer".into(),
            );
        }
    }

    fn on_end(&mut self, now: Instant, id: ConnId, role: Role) {
        let keep_alive = self
            .conns
            .get(&id)
            .and_then(|c| c.head.as_ref())
            .is_some_and(|h| h.keep_alive);
        let body = self.conns.get_mut(&id).map(|c| c.body.take_whole());
        if keep_alive && self.phase != Phase::Closed && self.idle_count() < MAX_IDLE {
            if let Some(c) = self.conns.get_mut(&id) {
                c.role = Role::Idle;
                c.head = None;
            }
        } else {
            self.drop_conn(id);
        }
        match role {
            Role::Idle => {}
            Role::Info => {
                self.receiver = None;
                self.info_deadline = None;
                match parse_info(&body.unwrap_or_default()) {
                    Ok(info) => {
                        if !info.websocket {
                            self.candidates.retain(|&t| t != Transport::WebSocket);
                        }
                        let rtt = now.saturating_duration_since(self.info_sent);
                        let rto = if rtt > Duration::from_millis(100) {
                            rtt * 4
                        } else {
                            rtt + Duration::from_millis(300)
                        };
                        self.open_timeout = (rto * 2).max(self.options.transport_timeout);
                        self.next_transport(now);
                    }
                    Err(e) => {
                        self.fail(now, ErrorKind::Malformed, false, format!("bad /info: {e}"))
                    }
                }
            }
            Role::Sender => {
                self.sender = None;
                self.flush_sends();
            }
            Role::Receiver => {
                if self.receiver != Some(id) {
                    return;
                }
                self.receiver = None;
                match self.phase {
                    Phase::Open => self.open_receiver(),
                    Phase::Connecting => self.fail(
                        now,
                        ErrorKind::Malformed,
                        false,
                        "the response ended before the open frame".into(),
                    ),
                    _ => {}
                }
            }
        }
    }

    /// The server showed it is there: the heartbeat timeout starts again.
    fn touch(&mut self, now: Instant) {
        if self.phase == Phase::Open
            && let Some(t) = self.options.heartbeat_timeout
        {
            self.heartbeat_deadline = Some(now + t);
        }
    }

    fn on_frame(&mut self, now: Instant, frame: &[u8]) {
        self.touch(now);
        match (frame.first(), self.phase) {
            (_, Phase::Closed | Phase::Info) => {}
            (Some(b'o'), Phase::Connecting) if frame.len() == 1 => {
                self.phase = Phase::Open;
                self.open_deadline = None;
                if self.transport == Some(Transport::WebSocket) {
                    // No HTTP request follows on a WebSocket session.
                    let idle: Vec<ConnId> = self
                        .conns
                        .iter()
                        .filter(|(_, c)| c.role == Role::Idle)
                        .map(|(&id, _)| id)
                        .collect();
                    idle.into_iter().for_each(|id| self.drop_conn(id));
                }
                self.heartbeat_deadline = self.options.heartbeat_timeout.map(|t| now + t);
                if let Some(t) = self.transport {
                    self.events.push_back(Event::Opened(t));
                }
                self.flush_sends();
            }
            (Some(b'h'), _) if frame.len() == 1 => {}
            (Some(b'a'), Phase::Open) => match parse_array(&frame[1..]) {
                Ok(messages) => self.events.extend(messages.into_iter().map(Event::Message)),
                Err(_) => self.protocol_error(now, frame),
            },
            (Some(b'c'), _) => match parse_close(&frame[1..]) {
                Ok((code, reason)) => self.finish(code, reason, ClosedBy::Server),
                Err(_) => self.protocol_error(now, frame),
            },
            _ => self.protocol_error(now, frame),
        }
    }

    fn protocol_error(&mut self, now: Instant, frame: &[u8]) {
        let shown: String = String::from_utf8_lossy(&frame[..frame.len().min(60)]).into_owned();
        self.fail(
            now,
            ErrorKind::Malformed,
            false,
            format!("not a SockJS frame: {shown:?}"),
        );
    }

    /// Reports a failure, then moves on: to the next transport while connecting, else to
    /// the close.
    fn fail(&mut self, now: Instant, kind: ErrorKind, sending: bool, detail: String) {
        if self.phase == Phase::Closed {
            return;
        }
        self.events.push_back(Event::Error(ClientError {
            kind,
            transport: self.transport.filter(|_| self.phase != Phase::Info),
            sending,
            detail,
        }));
        match self.phase {
            Phase::Info => self.finish(1002, "Cannot connect to server".into(), ClosedBy::Failure),
            Phase::Connecting => {
                self.abandon_transport();
                self.next_transport(now);
            }
            Phase::Open => {
                let (code, reason) = match (kind, sending) {
                    (_, true) => (1006, "Sending error"),
                    (ErrorKind::Heartbeat, _) => (1006, "Heartbeat timeout"),
                    (ErrorKind::Malformed | ErrorKind::TooLarge, _) => (1002, "Broken framing"),
                    _ => (1006, "Connection dropped by remote peer"),
                };
                self.finish(code, reason.into(), ClosedBy::Failure);
            }
            Phase::Closed => {}
        }
    }

    fn finish(&mut self, code: u16, reason: String, by: ClosedBy) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        for (id, c) in std::mem::take(&mut self.conns) {
            if !c.gone {
                self.io.push_back(Io::Close(id));
            }
        }
        self.receiver = None;
        self.sender = None;
        self.outbox.clear();
        self.info_deadline = None;
        self.open_deadline = None;
        self.heartbeat_deadline = None;
        self.events
            .push_back(Event::Closed(Close { code, reason, by }));
    }

    /// Drops the connections of a transport that failed to open.
    fn abandon_transport(&mut self) {
        for id in [self.receiver.take(), self.sender.take()]
            .into_iter()
            .flatten()
        {
            self.drop_conn(id);
        }
        self.outbox.clear();
        self.open_deadline = None;
    }

    fn next_transport(&mut self, now: Instant) {
        let Some(transport) = self.candidates.pop_front() else {
            self.finish(2000, "All transports failed".into(), ClosedBy::Failure);
            return;
        };
        let session: String = (0..8)
            .map(|_| ID_CHARS[(self.entropy)() as usize % ID_CHARS.len()] as char)
            .collect();
        self.session_path = format!("{}/{}/{}", self.url.prefix, self.server_id, session);
        self.transport = Some(transport);
        self.phase = Phase::Connecting;
        self.open_deadline = Some(now + self.open_timeout);
        self.open_receiver();
    }

    /// Starts the receiving request of the current transport.
    fn open_receiver(&mut self) {
        let Some(transport) = self.transport else {
            return;
        };
        let path = format!(
            "{}/{}{}",
            self.session_path,
            transport.name(),
            self.url.query
        );
        let id = match transport {
            Transport::WebSocket => {
                let key = self.websocket_key();
                let extra = [
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", key.as_str()),
                    ("Sec-WebSocket-Version", "13"),
                ];
                let request = self.request_bytes("GET", &path, &extra, b"");
                let id = self.new_conn(Role::Receiver, Body::whole());
                if let Some(c) = self.conns.get_mut(&id) {
                    c.ws = Some(Ws { key, frames: None });
                }
                self.io.push_back(Io::Write(id, request));
                id
            }
            Transport::XhrStreaming => {
                let request = self.request_bytes("POST", &path, &[], b"");
                self.start_request(Role::Receiver, Body::lines(), request)
            }
            Transport::EventSource => {
                let extra = [("Accept", "text/event-stream")];
                let request = self.request_bytes("GET", &path, &extra, b"");
                self.start_request(Role::Receiver, Body::events(), request)
            }
            Transport::XhrPolling => {
                let request = self.request_bytes("POST", &path, &[], b"");
                self.start_request(Role::Receiver, Body::whole(), request)
            }
        };
        self.receiver = Some(id);
    }

    /// Sends what the outbox holds in one `xhr_send`, unless one is in flight.
    fn flush_sends(&mut self) {
        if self.phase != Phase::Open
            || self.sender.is_some()
            || self.outbox.is_empty()
            || self.transport == Some(Transport::WebSocket)
        {
            return;
        }
        let mut body =
            BytesMut::with_capacity(self.outbox.iter().map(|m| m.len() + 1).sum::<usize>() + 2);
        crate::frame::write_array_frame(&mut body, self.outbox.iter());
        self.outbox.clear();
        // `write_array_frame` writes the `a` of an `a[...]` frame; the body is the array.
        let body = body.split_off(1);
        let path = format!("{}/xhr_send{}", self.session_path, self.url.query);
        let extra = [("Content-Type", "text/plain;charset=UTF-8")];
        let request = self.request_bytes("POST", &path, &extra, &body);
        self.sender = Some(self.start_request(Role::Sender, Body::whole(), request));
    }

    /// Writes `request` on an idle keep-alive connection, or a new one.
    fn start_request(&mut self, role: Role, body: Body, request: Bytes) -> ConnId {
        let idle = self
            .conns
            .iter()
            .find(|(_, c)| c.role == Role::Idle)
            .map(|(&id, _)| id);
        let id = match idle {
            Some(id) => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.role = role;
                    c.body = body;
                }
                id
            }
            None => self.new_conn(role, body),
        };
        self.io.push_back(Io::Write(id, request));
        id
    }

    fn new_conn(&mut self, role: Role, body: Body) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                role,
                http: ResponseDecoder::new(self.options.max_head_size),
                head: None,
                body,
                ws: None,
                gone: false,
            },
        );
        self.io.push_back(Io::Connect(id));
        id
    }

    fn drop_conn(&mut self, id: ConnId) {
        if self.conns.remove(&id).is_some_and(|c| !c.gone) {
            self.io.push_back(Io::Close(id));
        }
    }

    fn idle_count(&self) -> usize {
        self.conns.values().filter(|c| c.role == Role::Idle).count()
    }

    /// A request: the request line, `Host`, the application's headers, the cookies, the
    /// transport's headers, a `Content-Length` on a POST, then the body.
    fn request_bytes(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Bytes {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
            self.url.authority
        );
        for (name, value) in &self.options.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut out = BytesMut::with_capacity(head.len() + body.len());
        out.put_slice(head.as_bytes());
        out.put_slice(body);
        out.freeze()
    }

    fn store_cookie(&mut self, set_cookie: &[u8]) {
        let pair = set_cookie.split(|&b| b == b';').next().unwrap_or(&[]);
        let Ok(pair) = std::str::from_utf8(pair) else {
            return;
        };
        let Some((name, value)) = pair.split_once('=') else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        let valid = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        };
        if name.is_empty() || !valid(name) || !valid(value) || self.cookies.len() >= 32 {
            return;
        }
        self.cookies.retain(|(n, _)| n != name);
        self.cookies.push((name.to_string(), value.to_string()));
    }

    fn mask(&mut self) -> [u8; 4] {
        (self.entropy)().to_be_bytes()
    }

    /// A `Sec-WebSocket-Key`: 16 bytes of entropy in base64.
    fn websocket_key(&mut self) -> String {
        let mut raw = [0u8; 16];
        for chunk in raw.chunks_mut(4) {
            chunk.copy_from_slice(&(self.entropy)().to_be_bytes());
        }
        base64(&raw)
    }
}

impl Conn {
    /// Decodes what `data` completes on this connection.
    fn read(&mut self, data: &[u8], max_frame: usize) -> Vec<Step> {
        let mut steps = Vec::new();
        if let Some(frames) = self.ws.as_mut().and_then(|w| w.frames.as_mut()) {
            frames.feed(data);
            read_ws(frames, &mut steps);
            return steps;
        }
        self.http.feed(data);
        loop {
            match self.http.next() {
                Ok(None) => break,
                Ok(Some(ResponsePart::Head(head))) => {
                    if let Some(ws) = self.ws.as_mut() {
                        match check_upgrade(&head, &ws.key) {
                            Ok(()) => {
                                let mut frames = FrameDecoder::for_client(WsLimits {
                                    max_frame_size: max_frame,
                                    max_message_size: max_frame,
                                });
                                frames.feed(&self.http.take_remaining());
                                read_ws(&mut frames, &mut steps);
                                ws.frames = Some(frames);
                            }
                            Err(kind) => {
                                let detail = match kind {
                                    ErrorKind::Status(_) => "upgrade refused",
                                    _ => "bad WebSocket handshake answer",
                                };
                                steps.push(Step::Fail(kind, detail.into()));
                            }
                        }
                        return steps;
                    }
                    if head.status == 101 {
                        steps.push(Step::Fail(
                            ErrorKind::Malformed,
                            "unasked-for upgrade".into(),
                        ));
                        return steps;
                    }
                    self.head = Some(head.clone());
                    steps.push(Step::Head(head));
                }
                Ok(Some(ResponsePart::Body(bytes))) => {
                    let mut frames = Vec::new();
                    let fed = self.body.feed(&bytes, max_frame, &mut frames);
                    steps.extend(frames.into_iter().map(Step::Frame));
                    if let Err(e) = fed {
                        steps.push(Step::Fail(ErrorKind::TooLarge, e.into()));
                        return steps;
                    }
                }
                Ok(Some(ResponsePart::End)) => self.end_body(&mut steps),
                Err(e) => {
                    steps.push(Step::Fail(ErrorKind::Malformed, e.to_string()));
                    return steps;
                }
            }
        }
        steps
    }

    fn end_body(&mut self, steps: &mut Vec<Step>) {
        if self.role == Role::Receiver {
            let mut frames = Vec::new();
            let ended = self.body.end(&mut frames);
            steps.extend(frames.into_iter().map(Step::Frame));
            if let Err(e) = ended {
                steps.push(Step::Fail(ErrorKind::Malformed, e.into()));
                return;
            }
        }
        steps.push(Step::End);
    }
}

/// The frames a WebSocket's decoder holds, as steps.
fn read_ws(frames: &mut FrameDecoder, steps: &mut Vec<Step>) {
    loop {
        match frames.next() {
            Ok(None) => return,
            Ok(Some(Incoming::Text(text))) => steps.push(Step::Frame(Bytes::from(text))),
            Ok(Some(Incoming::Ping(payload))) => steps.push(Step::Ping(payload)),
            Ok(Some(Incoming::Pong(_))) => {}
            Ok(Some(Incoming::Close(_))) => {
                steps.push(Step::WsClosed);
                return;
            }
            Ok(Some(Incoming::Binary(_))) => {
                steps.push(Step::Fail(
                    ErrorKind::Malformed,
                    "binary WebSocket message".into(),
                ));
                return;
            }
            Err(e) => {
                steps.push(Step::Fail(ErrorKind::Malformed, format!("WebSocket: {e}")));
                return;
            }
        }
    }
}

/// Checks a WebSocket upgrade answer (RFC 6455, section 4.1).
fn check_upgrade(head: &ResponseHead, key: &str) -> Result<(), ErrorKind> {
    if head.status != 101 {
        return Err(ErrorKind::Status(head.status));
    }
    let upgrade = head
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"));
    let connection = head
        .header("connection")
        .is_some_and(|v| crate::http::request::has_token(v, "upgrade"));
    let accept = head.header("sec-websocket-accept")
        == Some(crate::ws::accept_key(key.as_bytes()).as_bytes());
    let extensions = head.header("sec-websocket-extensions").is_some();
    if upgrade && connection && accept && !extensions {
        Ok(())
    } else {
        Err(ErrorKind::Malformed)
    }
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
