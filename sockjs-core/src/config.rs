//! Server configuration: the prefixes served, each with its SockJS options, and the limits
//! that bound every buffer and timer.

use std::time::Duration;

pub use crate::forwarded::{BadIpRange, IpRange};
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
    /// such connection. [`crate::Server::deflate_memory`] counts what all connections hold;
    /// the memory budget ([`Limits::max_buffered_bytes`]) charges each connection the most it
    /// may hold, and a handshake whose state would take it past the budget is answered
    /// without compression.
    /// A compressed message is inflated within [`Limits::max_message_size`]: one that would
    /// inflate past it closes its connection with 1009 before it is allocated.
    pub compression: Option<DeflateConfig>,
    /// What an HTTP session is tied to once opened; a later request for it that does not
    /// match is answered as if the session did not exist. Default [`SessionBinding::None`].
    pub session_binding: SessionBinding,
    /// Whether a request that would open a session is first shown to the application
    /// ([`crate::Event::Authorize`]) and held until it answers with
    /// [`crate::Server::authorize`], or until [`Limits::authorization_timeout`] (then `503`).
    /// `/info`, the greeting and the iframe page stay public. Default false.
    pub authorize: bool,
}

/// What ties an HTTP session (polling and streaming transports; a WebSocket session is its
/// one connection) to the client that opened it, so that a leaked session id is of no use
/// to anyone else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionBinding {
    /// Nothing: whoever knows the session id may use it (the protocol's behaviour).
    #[default]
    None,
    /// The client's IP address: the connection's peer, or behind proxies listed in
    /// [`Config::trusted_proxies`] the address they forwarded.
    PeerAddress,
    /// The value of this cookie (for example `JSESSIONID`, or the application's own
    /// session cookie); a session opened without it only serves requests without it.
    Cookie(String),
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
            session_binding: SessionBinding::None,
            authorize: false,
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
    /// Sets [`Options::authorize`].
    pub fn authorize(mut self, on: bool) -> Self {
        self.authorize = on;
        self
    }

    /// Sets [`Options::session_binding`].
    pub fn session_binding(mut self, binding: SessionBinding) -> Self {
        self.session_binding = binding;
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
    /// Connections served at once from one IP address (lingering ones included); one more
    /// is answered 503 `Too many connections from this address` and closed. Default: no
    /// limit (`usize::MAX`), since many clients may share one address behind NAT or a proxy;
    /// a server facing clients directly should set one.
    pub max_connections_per_peer: usize,
    /// Sessions alive at once opened from one IP address; a request for one more is answered
    /// 503 `Too many sessions from this address`. Default: no limit (`usize::MAX`).
    pub max_sessions_per_peer: usize,
    /// Bytes waiting to be written to a connection (its [`crate::Server::output`]) above
    /// which no more queued messages are moved onto it; messages are moved in frames that keep
    /// it within this, except that a single larger message goes in a frame of its own. Above
    /// it, pipelined requests also wait unread and WebSocket pings get no pong. Default 64 KiB.
    pub max_unflushed_bytes: usize,
    /// Bytes held for all sessions and connections together: messages queued in sessions,
    /// output not yet written to connections ([`crate::Server::output`]), inbound messages
    /// the host reports its application has not taken yet
    /// ([`crate::Server::set_held_inbound`]), and the permessage-deflate state of
    /// connections that agreed to compression, charged at the most each may hold from its
    /// handshake on (about 354 KiB with context takeover both ways, nothing without it; a
    /// handshake whose agreement would take the total past the budget is answered without
    /// the extension, and counted as [`crate::stats::Limit::BufferedBytes`]). A send that would take the total past it first
    /// frees the largest holders until the message fits: the session with the most bytes
    /// queued is closed with `c[1013,"Server memory budget exceeded"]`
    /// ([`crate::CloseReason::MemoryBudget`]) and its queue dropped (its client, if it reads
    /// again, gets what was already on its connection, then that frame), or, when a
    /// connection's unwritten output is larger than any queue, that connection is aborted
    /// (its session closed so first). If the message still does not fit and the total is past
    /// the budget already, the session sent to is closed instead. So the total passes the
    /// budget by at most one message, plus what is not a message: answers to requests and
    /// control frames (each connection's share bounded by `max_unflushed_bytes`). Only
    /// queues and outputs of at least `max(1, min(64 KiB, budget / 1024))` bytes are ranked
    /// as holders. Default 1 GiB: the core cannot know the machine's memory; set it to what
    /// the process may spend on buffers.
    pub max_buffered_bytes: usize,
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
    /// How long a request that would open a session on an endpoint with
    /// [`Options::authorize`] waits for the application's answer; then it is answered `503`
    /// `Authorization timed out`. Default 10 s.
    pub authorization_timeout: Duration,
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
            max_connections_per_peer: usize::MAX,
            max_sessions_per_peer: usize::MAX,
            max_unflushed_bytes: 64 * 1024,
            max_buffered_bytes: 1024 * 1024 * 1024,
            request_timeout: Duration::from_secs(15),
            keep_alive_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            linger_timeout: Duration::from_secs(2),
            authorization_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// A limit named by [`Limits::set`], or a value it could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// No field of [`Limits`] has this name.
    UnknownName(String),
    /// The value is not a non-negative decimal integer (bytes, a count, or milliseconds).
    BadValue {
        /// The limit.
        name: String,
        /// The value given.
        value: String,
    },
}

impl std::fmt::Display for LimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitError::UnknownName(name) => write!(
                f,
                "unknown limit {name:?} (known: {})",
                Limits::NAMES.join(", ")
            ),
            LimitError::BadValue { name, value } => write!(
                f,
                "bad value {value:?} for {name}: a non-negative integer (bytes, a count, or milliseconds)"
            ),
        }
    }
}

impl std::error::Error for LimitError {}

impl Limits {
    /// The name of every field, as [`Limits::set`] takes them.
    pub const NAMES: &'static [&'static str] = &[
        "max_head_size",
        "max_headers",
        "max_body_size",
        "max_frame_size",
        "max_message_size",
        "max_queued_bytes",
        "max_queued_messages",
        "max_sessions",
        "max_connections",
        "max_connections_per_peer",
        "max_sessions_per_peer",
        "max_unflushed_bytes",
        "max_buffered_bytes",
        "request_timeout",
        "keep_alive_timeout",
        "write_timeout",
        "close_timeout",
        "linger_timeout",
        "authorization_timeout",
        "shutdown_timeout",
    ];

    /// Sets the field called `name` from text, for configuration files and command lines:
    /// sizes in bytes, counts as numbers, durations in milliseconds. `max_headers` is held to
    /// at most 256 when the server starts, as its documentation says.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), LimitError> {
        let bad = || LimitError::BadValue {
            name: name.to_string(),
            value: value.to_string(),
        };
        let number: u64 = value.trim().parse().map_err(|_| bad())?;
        let size = || usize::try_from(number).map_err(|_| bad());
        let millis = Duration::from_millis(number);
        match name {
            "max_head_size" => self.max_head_size = size()?,
            "max_headers" => self.max_headers = size()?,
            "max_body_size" => self.max_body_size = size()?,
            "max_frame_size" => self.max_frame_size = size()?,
            "max_message_size" => self.max_message_size = size()?,
            "max_queued_bytes" => self.max_queued_bytes = size()?,
            "max_queued_messages" => self.max_queued_messages = size()?,
            "max_sessions" => self.max_sessions = size()?,
            "max_connections" => self.max_connections = size()?,
            "max_connections_per_peer" => self.max_connections_per_peer = size()?,
            "max_sessions_per_peer" => self.max_sessions_per_peer = size()?,
            "max_unflushed_bytes" => self.max_unflushed_bytes = size()?,
            "max_buffered_bytes" => self.max_buffered_bytes = size()?,
            "request_timeout" => self.request_timeout = millis,
            "keep_alive_timeout" => self.keep_alive_timeout = millis,
            "write_timeout" => self.write_timeout = millis,
            "close_timeout" => self.close_timeout = millis,
            "linger_timeout" => self.linger_timeout = millis,
            "authorization_timeout" => self.authorization_timeout = millis,
            "shutdown_timeout" => self.shutdown_timeout = millis,
            _ => return Err(LimitError::UnknownName(name.to_string())),
        }
        Ok(())
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
    /// Proxies whose `Forwarded` / `X-Forwarded-For` headers are believed for the client's
    /// address ([`crate::RequestInfo::client_ip`], [`SessionBinding::PeerAddress`]). Empty by
    /// default: the headers are ignored, since any client can send them.
    pub trusted_proxies: Vec<IpRange>,
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

    /// Trusts one more proxy (an address or CIDR block, such as `10.0.0.0/8`) to say who its
    /// clients are.
    pub fn trusted_proxy(mut self, range: IpRange) -> Self {
        self.trusted_proxies.push(range);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Field names as `Debug` prints them, so a field added without a name in
    /// [`Limits::NAMES`] and [`Limits::set`] fails here.
    fn field_names() -> Vec<String> {
        let debug = format!("{:?}", Limits::default());
        let inner = debug
            .strip_prefix("Limits { ")
            .and_then(|s| s.strip_suffix(" }"))
            .expect("Limits debug form");
        inner
            .split(", ")
            .filter_map(|field| field.split_once(": ").map(|(n, _)| n.to_string()))
            .filter(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect()
    }

    #[test]
    fn every_field_is_named_and_settable() {
        let fields = field_names();
        assert_eq!(fields, Limits::NAMES, "Limits::NAMES lags the struct");
        for (i, name) in Limits::NAMES.iter().enumerate() {
            let mut limits = Limits::default();
            let value = 1000 + i as u64;
            limits.set(name, &value.to_string()).unwrap();
            assert_ne!(limits, Limits::default(), "{name} did not change");
            let debug = format!("{limits:?}");
            let shown = if name.ends_with("_timeout") {
                format!("{name}: {:?}", Duration::from_millis(value))
            } else {
                format!("{name}: {value}")
            };
            assert!(debug.contains(&shown), "{name}: {debug}");
        }
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        let mut limits = Limits::default();
        assert_eq!(
            limits.set("max_sessoins", "5"),
            Err(LimitError::UnknownName("max_sessoins".into()))
        );
        for value in ["", "-1", "1.5", "1k", "18446744073709551616"] {
            assert_eq!(
                limits.set("max_sessions", value),
                Err(LimitError::BadValue {
                    name: "max_sessions".into(),
                    value: value.into()
                }),
                "{value:?}"
            );
        }
        assert_eq!(limits, Limits::default());
        limits.set("write_timeout", "250").unwrap();
        assert_eq!(limits.write_timeout, Duration::from_millis(250));
        limits.set("max_connections", " 7 ").unwrap();
        assert_eq!(limits.max_connections, 7);
    }
}
