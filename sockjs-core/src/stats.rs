//! What the server counts for its operator: [`Stats`] (connections, sessions by transport and
//! by close reason, messages and bytes each way, refused requests, limits hit), the figures of
//! one session ([`SessionStats`]), and the [`Notice`]s a host logs (a request refused, a limit
//! hit).
//!
//! Counting is plain integer arithmetic on arrays indexed by the enums below: no allocation,
//! no map, nothing per message beyond a few additions. Each enum has a stable `name` (the
//! label value a metrics exporter uses) and `ALL`, its values in order.
//!
//! Messages and bytes are counted as the application sees them: a message in is one
//! [`crate::Event::Message`], a message out is one [`crate::Server::send`] (or one session of
//! a [`crate::Server::send_many`]) that a session took; their bytes are the text's UTF-8
//! length, before any framing or escaping. What crossed the sockets is counted apart, in
//! [`Stats::bytes_read`] and [`Stats::bytes_written`].

use std::net::SocketAddr;

use crate::io::{CloseReason, ConnectionId, SessionId};
use crate::transport::Transport;

macro_rules! labelled {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $label:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every value, in order (the order of [`Self::index`]).
            pub const ALL: [$name; [$($label),*].len()] = [$($name::$variant),*];
            /// How many values there are.
            pub const COUNT: usize = Self::ALL.len();

            /// Its label value for metrics and logs: lowercase, stable.
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )*
                }
            }

            /// Its position in [`Self::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

labelled! {
    /// How a session's frames reach its client: the transport it was opened with (an HTTP
    /// session's later requests may use another of the HTTP transports; it keeps this one).
    /// The names are those of [`crate::RequestInfo::protocol`].
    pub enum SessionTransport {
        /// SockJS frames over a WebSocket.
        WebSocket => "websocket",
        /// The raw `/websocket` endpoint: messages without SockJS framing.
        RawWebSocket => "websocket-raw",
        /// `xhr` polling.
        XhrPolling => "xhr-polling",
        /// `xhr_streaming`.
        XhrStreaming => "xhr-streaming",
        /// `eventsource`.
        EventSource => "eventsource",
        /// `htmlfile`.
        HtmlFile => "htmlfile",
        /// `jsonp` polling.
        JsonpPolling => "jsonp-polling",
    }
}

impl SessionTransport {
    /// The session transport a receiving request's transport opens (the send-only
    /// transports name the polling transport they go with).
    pub fn of(transport: Transport) -> SessionTransport {
        match transport {
            Transport::WebSocket => SessionTransport::WebSocket,
            Transport::Xhr | Transport::XhrSend => SessionTransport::XhrPolling,
            Transport::XhrStreaming => SessionTransport::XhrStreaming,
            Transport::EventSource => SessionTransport::EventSource,
            Transport::HtmlFile => SessionTransport::HtmlFile,
            Transport::Jsonp | Transport::JsonpSend => SessionTransport::JsonpPolling,
        }
    }
}

labelled! {
    /// Why a session closed, without the details [`CloseReason`] carries.
    pub enum CloseKind {
        /// [`CloseReason::Application`].
        Application => "application",
        /// [`CloseReason::ClientClosed`].
        ClientClosed => "client_closed",
        /// [`CloseReason::Interrupted`].
        Interrupted => "interrupted",
        /// [`CloseReason::TimedOut`].
        TimedOut => "timed_out",
        /// [`CloseReason::ProtocolError`].
        ProtocolError => "protocol_error",
        /// [`CloseReason::QueueFull`].
        QueueFull => "queue_full",
        /// [`CloseReason::HeartbeatTimeout`].
        HeartbeatTimeout => "heartbeat_timeout",
        /// [`CloseReason::Shutdown`].
        Shutdown => "shutdown",
        /// [`CloseReason::MemoryBudget`].
        MemoryBudget => "memory_budget",
    }
}

impl CloseReason {
    /// The kind of reason, for counting.
    pub fn kind(&self) -> CloseKind {
        match self {
            CloseReason::Application { .. } => CloseKind::Application,
            CloseReason::ClientClosed { .. } => CloseKind::ClientClosed,
            CloseReason::Interrupted => CloseKind::Interrupted,
            CloseReason::TimedOut => CloseKind::TimedOut,
            CloseReason::ProtocolError(_) => CloseKind::ProtocolError,
            CloseReason::QueueFull => CloseKind::QueueFull,
            CloseReason::HeartbeatTimeout => CloseKind::HeartbeatTimeout,
            CloseReason::Shutdown => CloseKind::Shutdown,
            CloseReason::MemoryBudget => CloseKind::MemoryBudget,
        }
    }
}

labelled! {
    /// Why a request was refused (answered with an error status).
    pub enum RefusalCause {
        /// A limit was hit ([`Notice::Refused`] says which): 408, 413, 431, or 503 for too
        /// many sessions or connections.
        Limit => "limit",
        /// The request was malformed: HTTP framing (400, 501, 505), a broken `xhr_send` /
        /// `jsonp_send` payload or a bad `callback` (500), a WebSocket handshake the server
        /// cannot answer (400, 426).
        Framing => "framing",
        /// The `Origin` is not allowed (403).
        Origin => "origin",
        /// Nothing is served at the URL (404, also for an unknown session's `xhr_send` and
        /// WebSockets on an endpoint without them), or not with that method (405).
        NotFound => "not_found",
        /// The server is shutting down (503).
        Shutdown => "shutdown",
        /// The application's authorization hook refused the request (its status), or did not
        /// answer within [`crate::Limits::authorization_timeout`] (503).
        Authorization => "authorization",
        /// A request for a session bound to another client ([`crate::SessionBinding`]),
        /// answered 404 as if the session did not exist.
        Binding => "binding",
    }
}

labelled! {
    /// A bound the server enforces, named as its [`crate::Limits`] field.
    pub enum Limit {
        /// [`crate::Limits::max_head_size`]: answered 431.
        HeadSize => "max_head_size",
        /// [`crate::Limits::max_headers`]: answered 431.
        Headers => "max_headers",
        /// [`crate::Limits::max_body_size`]: answered 413.
        BodySize => "max_body_size",
        /// [`crate::Limits::max_frame_size`]: the WebSocket session closes with 1009.
        FrameSize => "max_frame_size",
        /// [`crate::Limits::max_message_size`]: the WebSocket session closes with 1009.
        MessageSize => "max_message_size",
        /// [`crate::Limits::max_queued_bytes`]: the session closes as queue full.
        QueuedBytes => "max_queued_bytes",
        /// [`crate::Limits::max_queued_messages`]: the session closes as queue full.
        QueuedMessages => "max_queued_messages",
        /// [`crate::Limits::max_sessions`]: answered 503.
        Sessions => "max_sessions",
        /// [`crate::Limits::max_connections`]: answered 503.
        Connections => "max_connections",
        /// [`crate::Limits::max_connections_per_peer`]: answered 503.
        ConnectionsPerPeer => "max_connections_per_peer",
        /// [`crate::Limits::max_sessions_per_peer`]: answered 503.
        SessionsPerPeer => "max_sessions_per_peer",
        /// [`crate::Limits::authorization_timeout`]: answered 503.
        AuthorizationTimeout => "authorization_timeout",
        /// [`crate::Limits::request_timeout`]: answered 408.
        RequestTimeout => "request_timeout",
        /// [`crate::Limits::write_timeout`]: the connection is aborted.
        WriteTimeout => "write_timeout",
        /// [`crate::Limits::shutdown_timeout`]: a connection still open is aborted.
        ShutdownTimeout => "shutdown_timeout",
        /// Input pipelined past a response still going, beyond one request's worth
        /// (`max_head_size + max_body_size`): the connection is aborted.
        PipelinedInput => "pipelined_input",
        /// [`crate::Limits::max_buffered_bytes`]: a WebSocket handshake is answered without
        /// permessage-deflate, whose state would take the total past the budget. (Sessions
        /// the budget closes are counted as closes, [`CloseKind::MemoryBudget`].)
        BufferedBytes => "max_buffered_bytes",
    }
}

/// The statuses refusals are counted by; any other falls in the last slot.
const STATUSES: [u16; 12] = [400, 403, 404, 405, 408, 413, 426, 431, 500, 501, 503, 505];

fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|&s| s == status)
        .unwrap_or(STATUSES.len())
}

/// Something an operator wants in the logs, from [`crate::Server::poll_notice`]. The
/// application has nothing to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A request was answered with an error status.
    Refused {
        /// The connection it came on.
        connection: ConnectionId,
        /// The client's address.
        peer: SocketAddr,
        /// The status it was answered with.
        status: u16,
        /// Why.
        cause: RefusalCause,
        /// The limit hit, when [`RefusalCause::Limit`].
        limit: Option<Limit>,
    },
    /// A limit ended a session or a connection (refusals that hit a limit come as
    /// [`Notice::Refused`] instead).
    LimitHit {
        /// The limit.
        limit: Limit,
        /// The connection concerned, if one is.
        connection: Option<ConnectionId>,
        /// The session concerned, if one is.
        session: Option<SessionId>,
        /// The client's address, if a connection is concerned.
        peer: Option<SocketAddr>,
    },
}

/// The server's counters and gauges, from [`crate::Server::stats`]. Counters only grow
/// (wrapping after 2^64); gauges go up and down. See the [module docs](self) for what a
/// message and its bytes are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub(crate) connections_accepted: u64,
    pub(crate) connections_closed: u64,
    pub(crate) sessions_open: [u64; SessionTransport::COUNT],
    pub(crate) sessions_opened: [u64; SessionTransport::COUNT],
    pub(crate) sessions_closed: [u64; CloseKind::COUNT],
    pub(crate) messages_in: u64,
    pub(crate) message_bytes_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) message_bytes_out: u64,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) refused: [u64; RefusalCause::COUNT],
    pub(crate) refused_by_status: [u64; STATUSES.len() + 1],
    pub(crate) limit_hits: [u64; Limit::COUNT],
    pub(crate) notices_dropped: u64,
}

impl Stats {
    /// Gauge: connections the core knows now (as [`crate::Server::connection_count`]).
    pub fn connections(&self) -> u64 {
        self.connections_accepted
            .wrapping_sub(self.connections_closed)
    }

    /// Connections accepted.
    pub fn connections_accepted(&self) -> u64 {
        self.connections_accepted
    }

    /// Gauge: sessions open on `transport` (opened, and not yet closed).
    pub fn sessions(&self, transport: SessionTransport) -> u64 {
        self.sessions_open[transport.index()]
    }

    /// Gauge: sessions open on every transport.
    pub fn sessions_total(&self) -> u64 {
        self.sessions_open.iter().sum()
    }

    /// Sessions opened on `transport`.
    pub fn sessions_opened(&self, transport: SessionTransport) -> u64 {
        self.sessions_opened[transport.index()]
    }

    /// Sessions closed for `kind` of reason (one per [`crate::Event::Closed`]).
    pub fn sessions_closed(&self, kind: CloseKind) -> u64 {
        self.sessions_closed[kind.index()]
    }

    /// Messages from clients ([`crate::Event::Message`]s).
    pub fn messages_in(&self) -> u64 {
        self.messages_in
    }

    /// UTF-8 bytes of the messages from clients.
    pub fn message_bytes_in(&self) -> u64 {
        self.message_bytes_in
    }

    /// Messages the application sent that a session took.
    pub fn messages_out(&self) -> u64 {
        self.messages_out
    }

    /// UTF-8 bytes of the messages the application sent that a session took.
    pub fn message_bytes_out(&self) -> u64 {
        self.message_bytes_out
    }

    /// Bytes read from connections ([`crate::Server::handle_bytes`] on a known connection).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Bytes written to connections ([`crate::Server::handle_written`]).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Requests refused for `cause`.
    pub fn refused(&self, cause: RefusalCause) -> u64 {
        self.refused[cause.index()]
    }

    /// Requests refused, for every cause.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    /// Requests refused with `status`.
    pub fn refused_with_status(&self, status: u16) -> u64 {
        let slot = status_slot(status);
        if slot == STATUSES.len() {
            return 0;
        }
        self.refused_by_status[slot]
    }

    /// Every status a refusal can have, with how many were refused with it (zeros
    /// included), ascending.
    pub fn refused_by_status(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        STATUSES.iter().copied().zip(self.refused_by_status)
    }

    /// Times `limit` was hit (refusals included).
    pub fn limit_hits(&self, limit: Limit) -> u64 {
        self.limit_hits[limit.index()]
    }

    /// [`Notice`]s dropped because the host did not take them
    /// ([`crate::Server::poll_notice`]) and more than a thousand were waiting.
    pub fn notices_dropped(&self) -> u64 {
        self.notices_dropped
    }

    pub(crate) fn refusal(&mut self, status: u16, cause: RefusalCause, limit: Option<Limit>) {
        self.refused[cause.index()] += 1;
        self.refused_by_status[status_slot(status)] += 1;
        if let Some(limit) = limit {
            self.limit_hits[limit.index()] += 1;
        }
    }
}

/// One session's figures, from [`crate::Server::session_stats`]. Messages and bytes are
/// counted as in [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// The transport it was opened with.
    pub transport: SessionTransport,
    /// Whether it is open (a closed session is known while it answers with its close frame).
    pub open: bool,
    /// Messages from its client.
    pub messages_in: u64,
    /// Their UTF-8 bytes.
    pub bytes_in: u64,
    /// Messages the application sent it that it took.
    pub messages_out: u64,
    /// Their UTF-8 bytes.
    pub bytes_out: u64,
    /// Messages queued for its client, not yet moved onto a connection.
    pub queued_messages: usize,
    /// Bytes of those, as framed for the client (JSON-quoted but for a raw WebSocket).
    pub queued_bytes: usize,
}
