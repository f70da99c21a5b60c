//! The I/O contract: what the core asks of the host for each connection ([`Io`]), what it
//! tells the application ([`Event`]), the identifiers both refer to, and the errors of API
//! misuse.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// A connection the host accepted, as numbered by [`crate::Server::accept`].
///
/// [`ConnectionId::index`] is small and unique among live connections (a slab index or an
/// event-loop token); [`ConnectionId::to_raw`] is unique for the server's life, so a stale id
/// kept by the host finds nothing instead of a newer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(crate) u64);

/// A SockJS session, as the application sees it. Not the session id in the client's URLs,
/// which the protocol keeps from the application. Its index and raw forms behave as
/// [`ConnectionId`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub(crate) u64);

macro_rules! id_accessors {
    ($t:ident) => {
        impl $t {
            /// A small index, unique among those alive now and reused after: for a slab or
            /// an event-loop token.
            pub fn index(self) -> usize {
                (self.0 & 0xffff_ffff) as usize
            }

            /// The whole id, unique for the server's life (index and generation).
            pub fn to_raw(self) -> u64 {
                self.0
            }

            /// The id [`Self::to_raw`] gave. An id the server never gave finds nothing.
            pub fn from_raw(raw: u64) -> Self {
                $t(raw)
            }
        }
    };
}
id_accessors!(ConnectionId);
id_accessors!(SessionId);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session#{}", self.0)
    }
}

/// What the host must do with a connection, from [`crate::Server::poll_io`].
///
/// A connection's life, as the host sees it: [`crate::Server::accept`] gives its id; any
/// number of [`Io::Write`]s follow; then either [`Io::Shutdown`] and, after the linger,
/// [`Io::Close`], or an [`Io::Close`] at once. After [`Io::Close`] (or after the host called
/// [`crate::Server::handle_closed`]) the core has forgotten the id and nothing more comes for it.
///
/// An exchange ([`crate::Server::handle_request`]) has one [`Io::Respond`] first, then any
/// number of [`Io::Write`]s for its body, then [`Io::Close`]; after an upgrade it goes on as
/// a connection from `accept` does (so [`Io::Shutdown`] only ever comes after an upgrade).
///
/// Not `#[non_exhaustive]`: a new instruction would be one a host must carry out, so it is a
/// breaking change that a host's `match` should fail to compile over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// New output is waiting for the connection: write [`crate::Server::output`], reporting
    /// each write with [`crate::Server::handle_written`], until it is empty or the socket
    /// would block; when the socket is writable again, go on. One `Write` comes for output
    /// added since the host last called `output` for the connection, so a host that writes
    /// elsewhere (another thread, a write in flight) learns of what came meanwhile; a
    /// `Write` while the socket is known to be blocked can be ignored.
    Write(ConnectionId),
    /// The server is done sending on the connection and all its output is written: shut down
    /// the write side (a TCP half-close). Keep reading it and passing what arrives to
    /// [`crate::Server::handle_bytes`], which discards it, until [`Io::Close`]: the peer then
    /// gets the last response rather than a reset for bytes it had sent.
    Shutdown(ConnectionId),
    /// An exchange's response head is ready (see [`crate::Server::handle_request`]): take it
    /// with [`crate::Server::take_response`] and start the response. Comes once per
    /// exchange, before any [`Io::Write`] for it; never for a connection from
    /// [`crate::Server::accept`].
    Respond(ConnectionId),
    /// Close the socket: the core has forgotten the connection.
    ///
    /// For an exchange not upgraded: the response's body is complete (`aborted: false`, all
    /// output was reported written), or it must be reset (`aborted: true`).
    Close {
        /// The connection.
        connection: ConnectionId,
        /// Output still waiting was dropped: the peer stopped reading for `write_timeout`,
        /// the shutdown timeout passed, or the client broke the protocol past answering.
        aborted: bool,
    },
}

/// What a host with its own HTTP stack knows about a request beyond its head and body, for
/// [`crate::Server::handle_request`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestExtras {
    /// The body was longer than [`crate::Limits::max_body_size`]: the host stopped reading it
    /// (the request's body holds at most that much). Answered as the built-in HTTP/1 path
    /// answers a body too large (`413`).
    pub body_too_large: bool,
    /// The `:protocol` pseudo-header of an extended CONNECT (RFC 8441, HTTP/2; the method is
    /// `CONNECT`). `websocket` on a WebSocket URL opens a WebSocket (version 13) answered
    /// with `200` and an upgrade; anything else leaves the request a plain `CONNECT`.
    pub connect_protocol: Option<Bytes>,
}

/// A response head for an exchange, from [`crate::Server::take_response`]: what the host's
/// HTTP stack sends. Framing (`Content-Length`, `Transfer-Encoding`, chunks), persistence
/// (`Connection: close` / `keep-alive`) and `Date` are the host's and are not among the
/// headers; everything else is, in the order the built-in HTTP/1 path writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// A reason phrase to send instead of the status's usual one, where the protocol wants
    /// it (`101 WebSocket Protocol Handshake` for hixie-76) and the HTTP version has one.
    pub reason: Option<&'static str>,
    /// The headers, names as the built-in path spells them, in order.
    pub headers: Vec<(&'static str, Bytes)>,
    /// The body that follows.
    pub body: ResponseBody,
    /// The host must switch protocols: after sending this head (a `101`, or the `200` of an
    /// extended CONNECT), the connection's output ([`crate::Server::output`]) is for the
    /// upgraded stream, and what the peer sends on it goes to
    /// [`crate::Server::handle_bytes`]. The body is [`ResponseBody::Empty`].
    pub upgrade: bool,
}

impl Response {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }
}

/// The body of an exchange's [`Response`]: its bytes are the connection's output
/// ([`crate::Server::output`], announced by [`Io::Write`]), and it ends with
/// [`Io::Close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body (`204`, `304`, `101`, an upgrade); no length header either.
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(usize),
    /// A stream of unknown length (a streaming transport): chunked, or an HTTP/2 stream.
    Stream,
}

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A session opened.
    Opened {
        /// The new session.
        session: SessionId,
        /// Index of its endpoint in [`crate::Config::endpoints`].
        endpoint: usize,
        /// The request that opened it.
        info: Box<RequestInfo>,
    },
    /// A message arrived on a session.
    Message {
        /// The session.
        session: SessionId,
        /// The connection that carried it (a WebSocket, or the `xhr_send` / `jsonp_send`
        /// request): the one to stop reading while the application is behind.
        connection: ConnectionId,
        /// The message.
        text: String,
    },
    /// A request would open a session on an endpoint with
    /// [`crate::Options::authorize`]: it is held until the application answers with
    /// [`crate::Server::authorize`] for `connection` (or until
    /// [`crate::Limits::authorization_timeout`], then `503`). Accepted, it is served (and
    /// opens the session unless another request opened it meanwhile); refused, it gets the
    /// refusal and no session exists. If the client goes away first, nothing more comes.
    Authorize {
        /// The connection holding the request: the one to answer for.
        connection: ConnectionId,
        /// Index of its endpoint in [`crate::Config::endpoints`].
        endpoint: usize,
        /// The request (peer, client address, path, query, headers, transport).
        info: Box<RequestInfo>,
    },
    /// A session closed; it takes no more sends. Sent exactly once per opened session.
    Closed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
}

/// The application's answer to [`Event::Authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// Serve the request: it opens its session.
    Accept,
    /// Answer it with `status` (a 4xx or 5xx; anything else is sent as 403) and `body` as
    /// `text/plain` (at most 1 KiB of it): no session, no `o` frame, no
    /// [`Event::Opened`].
    Refuse {
        /// The status, such as 401, 403 or 429.
        status: u16,
        /// A short explanation for the client.
        body: String,
    },
}

/// Why a session closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application closed it with this code and reason.
    Application {
        /// The code given.
        code: u16,
        /// The reason given.
        reason: String,
    },
    /// The client closed its WebSocket, or the WebSocket connection was lost (code 1006).
    ClientClosed {
        /// The code from the client's close frame, or 1005 if it had none, 1006 if the
        /// connection was lost without one.
        code: u16,
        /// The reason from the client's close frame.
        reason: String,
    },
    /// An HTTP receiver went away while attached (`c[1002,"Connection interrupted"]`).
    Interrupted,
    /// No receiver came back within the disconnect delay.
    TimedOut,
    /// The client broke the protocol (bad framing, bad WebSocket frames).
    ProtocolError(&'static str),
    /// The client stopped taking messages and the send queue overflowed its limit.
    QueueFull,
    /// The WebSocket peer did not answer a heartbeat ping in time.
    HeartbeatTimeout,
    /// The server's memory budget ([`crate::Limits::max_buffered_bytes`]) was reached and
    /// this session held the most bytes not yet sent (or a send to it did not fit).
    MemoryBudget,
    /// The server is shutting down.
    Shutdown,
}

impl CloseReason {
    /// The close code and reason the client is given.
    pub fn code_and_reason(&self) -> (u16, &str) {
        match self {
            CloseReason::Application { code, reason } => (*code, reason),
            CloseReason::ClientClosed { code, reason } => (*code, reason),
            CloseReason::Interrupted => (1002, "Connection interrupted"),
            CloseReason::TimedOut => (1000, "Session timed out"),
            CloseReason::ProtocolError(r) => (3000, r),
            CloseReason::QueueFull => (1013, "Send queue full"),
            CloseReason::HeartbeatTimeout => (3000, "No response from heartbeat"),
            CloseReason::MemoryBudget => (1013, "Server memory budget exceeded"),
            CloseReason::Shutdown => (1001, "Server shutting down"),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, reason) = self.code_and_reason();
        write!(f, "{code} {reason}")
    }
}

/// The request that opened a session, for the application to inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The client's address as the adapter saw it.
    pub peer: SocketAddr,
    /// The client's IP address: the peer's, or behind a proxy listed in
    /// [`crate::Config::trusted_proxies`] the one it forwarded (`Forwarded`,
    /// `X-Forwarded-For`).
    pub client_ip: std::net::IpAddr,
    /// The endpoint's prefix.
    pub prefix: String,
    /// The request path (not percent-decoded).
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// The request headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The transport: `websocket`, `websocket-raw`, `xhr-polling`, `xhr-streaming`,
    /// `eventsource`, `htmlfile` or `jsonp-polling`.
    pub protocol: &'static str,
}

impl RequestInfo {
    /// The first header named `name` (give it lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Misuse of the API: the application named a session that cannot take the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The session is closed or never existed.
    SessionClosed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::SessionClosed => f.write_str("the session is closed"),
        }
    }
}

impl std::error::Error for Error {}
