//! A SockJS session: the queue of messages for the client, the one receiver slot, and the
//! deadlines (heartbeat, disconnect, WebSocket pong). What moves frames between a session and
//! its receiver lives in the server; this is the state and its rules.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::io::{CloseReason, ConnectionId};
use crate::stats::SessionTransport;

/// Whether the session still takes messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionState {
    /// Open: messages flow both ways.
    Open,
    /// Closed: what is still queued goes out, then every receiver gets this close frame
    /// until the session is forgotten.
    Closing(Bytes, CloseReason),
}

/// What carries a session's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionKind {
    /// HTTP receivers, one after another, found by the session id in the URL.
    Http,
    /// One SockJS-framed WebSocket for the session's whole life.
    WebSocket,
    /// One raw WebSocket: messages are sent as they are, without SockJS framing.
    RawWebSocket,
}

#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) endpoint: usize,
    pub(crate) kind: SessionKind,
    /// The transport it was opened with, for its figures.
    pub(crate) transport: SessionTransport,
    /// Messages from the client and their bytes; messages the session took for the client
    /// and theirs (see [`crate::stats`]).
    pub(crate) messages_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) bytes_out: u64,
    /// The client's session id (HTTP sessions only): the key in the endpoint's table.
    pub(crate) id: Option<Box<[u8]>>,
    pub(crate) state: SessionState,
    /// Messages for the client: quoted JSON literals, or plain text for raw WebSockets.
    pub(crate) queue: VecDeque<Bytes>,
    pub(crate) queued_bytes: usize,
    /// The connection receiving frames now, if any.
    pub(crate) receiver: Option<ConnectionId>,
    /// When the session is forgotten (set while no receiver is attached).
    pub(crate) disconnect_at: Option<Instant>,
    /// When the next heartbeat is due (set while a receiver is attached).
    pub(crate) heartbeat_at: Option<Instant>,
    /// When an unanswered WebSocket ping times out.
    pub(crate) pong_deadline: Option<Instant>,
    /// The deadline queued in the timer queue.
    pub(crate) scheduled: Option<Instant>,
    /// The address it was opened from, when counted toward
    /// [`crate::Limits::max_sessions_per_peer`].
    pub(crate) counted_peer: Option<IpAddr>,
    /// The bytes queued it is ranked under for the memory budget, if ranked.
    pub(crate) ranked: Option<usize>,
    /// What later requests for it must match ([`crate::SessionBinding`]).
    pub(crate) binding: Option<Binding>,
}

/// What an HTTP session is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Binding {
    /// The client's address.
    Ip(IpAddr),
    /// A cookie's value, or its absence.
    Cookie(Option<Box<[u8]>>),
}

impl Session {
    pub(crate) fn new(
        endpoint: usize,
        kind: SessionKind,
        transport: SessionTransport,
        id: Option<Box<[u8]>>,
    ) -> Self {
        Session {
            endpoint,
            kind,
            transport,
            messages_in: 0,
            bytes_in: 0,
            messages_out: 0,
            bytes_out: 0,
            id,
            state: SessionState::Open,
            queue: VecDeque::new(),
            queued_bytes: 0,
            receiver: None,
            disconnect_at: None,
            heartbeat_at: None,
            pong_deadline: None,
            scheduled: None,
            counted_peer: None,
            ranked: None,
            binding: None,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state == SessionState::Open
    }

    /// Whether a message of `len` bytes fits within `max_bytes` and `max_messages`. An empty
    /// queue always takes one message, however large: the limits bound what piles up for a
    /// client that is not reading, not the size of what the application sends.
    pub(crate) fn fits(&self, len: usize, max_bytes: usize, max_messages: usize) -> bool {
        self.queue.is_empty()
            || (self.queue.len() < max_messages && self.queued_bytes + len <= max_bytes)
    }

    /// Adds a message (after [`Session::fits`]).
    pub(crate) fn push(&mut self, msg: Bytes) {
        self.queued_bytes += msg.len();
        self.queue.push_back(msg);
    }

    /// Takes every queued message.
    pub(crate) fn take_queue(&mut self) -> VecDeque<Bytes> {
        self.queued_bytes = 0;
        std::mem::take(&mut self.queue)
    }

    /// Takes the oldest messages that fit in `budget` bytes (at least one): a frame's worth
    /// for a connection that may hold that much more.
    pub(crate) fn take_batch(&mut self, budget: usize) -> VecDeque<Bytes> {
        // Separators and brackets: a byte per message, and a few for the frame.
        if self.queued_bytes + self.queue.len() + 3 <= budget {
            return self.take_queue();
        }
        let mut batch = VecDeque::new();
        let mut size = 3;
        while let Some(front) = self.queue.front() {
            if !batch.is_empty() && size + front.len() + 1 > budget {
                break;
            }
            size += front.len() + 1;
            if let Some(m) = self.queue.pop_front() {
                self.queued_bytes -= m.len();
                batch.push_back(m);
            }
        }
        batch
    }

    /// The earliest of the session's deadlines.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        // A closed session still delivering its last messages sends no heartbeats.
        let open = self.is_open();
        let heartbeat = self.receiver.and(self.heartbeat_at).filter(|_| open);
        let pong = self.pong_deadline.filter(|_| open);
        [self.disconnect_at, heartbeat, pong]
            .into_iter()
            .flatten()
            .min()
    }
}
