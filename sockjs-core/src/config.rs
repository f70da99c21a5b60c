//! Server configuration: the prefixes served, each with its SockJS options, and the limits
//! that bound every buffer and timer.

use std::time::Duration;

use crate::ws::deflate::DeflateConfig;

/// The default `sockjs_url`: the sockjs-client 1.x build the iframe page loads.
pub const DEFAULT_SOCKJS_URL: &str =
    "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js";

/// Options of one SockJS endpoint (one prefix). Defaults match the reference server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Bytes a streaming response (xhr_streaming, eventsource, htmlfile) carries before it is
    /// ended so the client reconnects and frees memory. Default 128 KiB.
    pub response_limit: usize,
    /// Silence on an open receiver after which a heartbeat frame `h` is sent. Default 25 s;
    /// zero turns heartbeats off.
    pub heartbeat_delay: Duration,
    /// How long a session without a receiver lives before it is forgotten (and how long a
    /// closed session keeps answering with its close frame). Default 5 s.
    pub disconnect_delay: Duration,
    /// Whether the `websocket` transport and the raw `/websocket` endpoint are served.
    /// Default true.
    pub websocket: bool,
    /// Whether session responses set a `JSESSIONID` cookie (for sticky load balancers), which
    /// `/info` also reports. Default false.
    pub cookie_needed: bool,
    /// The sockjs-client script the iframe page loads.
    pub sockjs_url: String,
    /// WebSocket sessions also get a WebSocket ping with every heartbeat; a peer that does not
    /// answer (with anything) within this long is dropped. `None` disables pings. Default 10 s.
    pub websocket_ping_timeout: Option<Duration>,
    /// When set, only these `Origin` values may open WebSockets or receive CORS grants;
    /// others get 403. `None` (the default, as the protocol's `origins: ["*:*"]` says) allows
    /// every origin.
    pub allowed_origins: Option<Vec<String>>,
    /// permessage-deflate (RFC 7692) on this endpoint's WebSockets (the SockJS `websocket`
    /// transport and the raw `/websocket` endpoint, RFC 6455 versions 13, 8 and 7; never
    /// hixie-76): `Some` accepts a client's offer on these terms, `None` (the default) answers
    /// every handshake without the extension, byte for byte as without this option.
    ///
    /// Cost: with context takeover (the [`DeflateConfig`] default) an idle connection that has
    /// compressed in both directions holds about 354 KiB of deflate state
    /// ([`DEFLATER_MEMORY`](crate::ws::deflate::DEFLATER_MEMORY) +
    /// [`INFLATER_MEMORY`](crate::ws::deflate::INFLATER_MEMORY)); with
    /// `server_no_context_takeover` and `client_no_context_takeover` it holds none between
    /// messages, and a broadcast ([`crate::Server::send_many`]) is compressed once for every
    /// such connection. [`crate::Server::deflate_memory`] counts what all connections hold.
    /// A compressed message is inflated within [`Limits::max_message_size`]: one that would
    /// inflate past it closes its connection with 1009 before it is allocated.
    pub compression: Option<DeflateConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            response_limit: 128 * 1024,
            heartbeat_delay: Duration::from_secs(25),
            disconnect_delay: Duration::from_secs(5),
            websocket: true,
            cookie_needed: false,
            sockjs_url: DEFAULT_SOCKJS_URL.to_string(),
            websocket_ping_timeout: Some(Duration::from_secs(10)),
            allowed_origins: None,
            compression: None,
        }
    }
}

impl Options {
    /// Sets [`Options::response_limit`].
    pub fn response_limit(mut self, bytes: usize) -> Self {
        self.response_limit = bytes;
        self
    }
    /// Sets [`Options::heartbeat_delay`].
    pub fn heartbeat_delay(mut self, d: Duration) -> Self {
        self.heartbeat_delay = d;
        self
    }
    /// Sets [`Options::disconnect_delay`].
    pub fn disconnect_delay(mut self, d: Duration) -> Self {
        self.disconnect_delay = d;
        self
    }
    /// Sets [`Options::websocket`].
    pub fn websocket(mut self, on: bool) -> Self {
        self.websocket = on;
        self
    }
    /// Sets [`Options::cookie_needed`].
    pub fn cookie_needed(mut self, on: bool) -> Self {
        self.cookie_needed = on;
        self
    }
    /// Sets [`Options::sockjs_url`].
    pub fn sockjs_url(mut self, url: impl Into<String>) -> Self {
        self.sockjs_url = url.into();
        self
    }
    /// Sets [`Options::websocket_ping_timeout`].
    pub fn websocket_ping_timeout(mut self, t: Option<Duration>) -> Self {
        self.websocket_ping_timeout = t;
        self
    }
    /// Sets [`Options::allowed_origins`].
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }
    /// Sets [`Options::compression`].
    pub fn compression(mut self, config: Option<DeflateConfig>) -> Self {
        self.compression = config;
        self
    }
}

/// Bounds on what any client can make the server hold or wait for. Each has a documented
/// default and a defined answer when hit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest request head; larger is answered 431 and the connection closed. Default 16 KiB.
    pub max_head_size: usize,
    /// Most header lines per request; more is answered 431. Default 64 (at most 256).
    pub max_headers: usize,
    /// Largest request body (xhr_send, jsonp_send); larger is answered 413. Default 4 MiB
    /// (room for a 1 MiB message after JSON and form encoding).
    pub max_body_size: usize,
    /// Largest WebSocket frame payload; larger closes with 1009. Default 1 MiB.
    pub max_frame_size: usize,
    /// Largest WebSocket message (all fragments); larger closes with 1009. Default 1 MiB.
    pub max_message_size: usize,
    /// Bytes of messages a session may hold for a client that is not taking them; more closes
    /// the session with `c[1013,"Send queue full"]` after what was queued. An empty queue
    /// always takes one message, whatever its size. Default 4 MiB.
    pub max_queued_bytes: usize,
    /// Messages a session may hold likewise. Default 65 536.
    pub max_queued_messages: usize,
    /// Sessions alive at once over all prefixes; a request for one more is answered 503.
    /// Default 100 000.
    pub max_sessions: usize,
    /// Connections served at once; one more is answered 503 and closed. Default 100 000.
    pub max_connections: usize,
    /// Bytes waiting to be written to a connection (its [`crate::Server::output`]) above
    /// which no more queued messages are moved onto it; messages are moved in frames that keep
    /// it within this, except that a single larger message goes in a frame of its own. Above
    /// it, pipelined requests also wait unread and WebSocket pings get no pong. Default 64 KiB.
    pub max_unflushed_bytes: usize,
    /// Time from the first byte of a request to its last; slower is answered 408 and closed.
    /// Default 15 s.
    pub request_timeout: Duration,
    /// How long an idle keep-alive connection stays open. Default 60 s.
    pub keep_alive_timeout: Duration,
    /// How long a connection's output may wait without the peer taking any of it before the
    /// peer is considered gone and the connection is aborted. Default 30 s.
    pub write_timeout: Duration,
    /// After sending a WebSocket close frame, how long to wait for the peer's before closing
    /// the connection anyway. Default 5 s.
    pub close_timeout: Duration,
    /// After the server is done with a connection and has shut its side down
    /// ([`crate::Io::Shutdown`]), how long input is still read and dropped (at most 256 KiB of
    /// it), so the peer receives the last response rather than a reset caused by bytes it
    /// sent that were never read; then [`crate::Io::Close`]. Zero closes at once. Default 2 s.
    pub linger_timeout: Duration,
    /// How long a graceful shutdown ([`crate::Server::shutdown`]) waits for connections to
    /// finish before closing them ([`crate::Io::Close`] `aborted`). Default 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_size: 16 * 1024,
            max_headers: 64,
            max_body_size: 4 * 1024 * 1024,
            max_frame_size: 1024 * 1024,
            max_message_size: 1024 * 1024,
            max_queued_bytes: 4 * 1024 * 1024,
            max_queued_messages: 65_536,
            max_sessions: 100_000,
            max_connections: 100_000,
            max_unflushed_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(15),
            keep_alive_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            linger_timeout: Duration::from_secs(2),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// One SockJS endpoint: a path prefix and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The prefix, such as `/echo`: empty or starting with `/`, without a trailing `/`.
    pub prefix: String,
    /// Its options.
    pub options: Options,
}

/// Everything a [`crate::Server`] needs to know up front.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The endpoints, matched by longest prefix.
    pub endpoints: Vec<Endpoint>,
    /// The limits.
    pub limits: Limits,
}

impl Config {
    /// An empty configuration with default limits.
    pub fn new() -> Self {
        Config::default()
    }

    /// Adds an endpoint. A trailing `/` on the prefix is dropped.
    pub fn endpoint(mut self, prefix: &str, options: Options) -> Self {
        let prefix = prefix.trim_end_matches('/').to_string();
        self.endpoints.push(Endpoint { prefix, options });
        self
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}
