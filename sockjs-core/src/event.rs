//! What the core hands back: bytes to write ([`Transmit`]), things for the application
//! ([`Event`]), and the identifiers both refer to.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// A connection the adapter accepted, as numbered by [`crate::Server::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(crate) u64);

/// A SockJS session, as the application sees it. Not the session id in the client's URLs,
/// which the protocol keeps from the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub(crate) u64);

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

/// Bytes for one connection, and what to do with the connection after writing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The connection to write to.
    pub connection: ConnectionId,
    /// The bytes, in order after those of earlier transmits for the same connection.
    pub data: Bytes,
    /// What to do once `data` is written.
    pub after: After,
}

/// What a [`Transmit`] asks of the connection once its data is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep it open.
    KeepOpen,
    /// Flush, then close it. The core keeps the connection until [`crate::Server::handle_written`]
    /// reports the last byte written, and may still send an `Abort` for it if that stalls
    /// past `write_timeout`.
    Close,
    /// Close it now, dropping anything still unwritten (the peer stopped reading). The core
    /// has forgotten the connection.
    Abort,
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
        /// The message.
        text: String,
    },
    /// A session closed; it takes no more sends. Sent exactly once per opened session.
    Closed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
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
