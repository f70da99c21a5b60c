//! A connection: the output waiting to be written to it, and its life from accept to close
//! (reading requests, carrying a response or a WebSocket, closing, lingering), with its
//! timeouts.
//!
//! Closing goes: [`ConnState::Closed`] while the last output is written, then
//! [`Io::Shutdown`] and [`ConnState::Lingering`], during which input is read and dropped so
//! the peer gets the last response rather than a reset, then [`Io::Close`]. An abort skips
//! to [`Io::Close`] and drops the output.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use super::Server;
use super::receiver::Receiver;
use super::websocket::{PendingHixie, WsConnection};
use crate::config::Limits;
use crate::http::{DecoderLimits, RequestDecoder};
use crate::io::{ConnectionId, Io, Response, SessionId};

/// Input a lingering connection may still read before it is closed anyway.
const LINGER_BUDGET: usize = 256 * 1024;

pub(super) struct Connection {
    pub(super) peer: SocketAddr,
    pub(super) decoder: RequestDecoder,
    pub(super) state: ConnState,
    /// Output not yet reported written.
    pub(super) out: Output,
    /// The HTTP session whose frames are among the bytes not yet written, if any.
    pub(super) carried: Option<SessionId>,
    /// Last time the peer took bytes (or output appeared on a connection that had none).
    pub(super) write_progress: Instant,
    /// When the request now arriving started, if one is.
    pub(super) request_started: Option<Instant>,
    /// When the connection last became idle between requests.
    pub(super) idle_since: Instant,
    /// The deadline queued in the timer queue.
    pub(super) scheduled: Option<Instant>,
    /// The peer ended its side (end of stream).
    pub(super) eof: bool,
    /// An [`Io::Write`] went out for output the host has not taken with `output` since.
    pub(super) announced: bool,
    /// Counted toward [`Limits::max_connections_per_peer`] for its address.
    pub(super) peer_counted: bool,
    /// The application accepted the request now being served: it may open its session.
    pub(super) authorized: bool,
    /// Who frames the connection's HTTP.
    pub(super) framing: Framing,
    /// An exchange's response head, until the host takes it.
    pub(super) response: Option<Response>,
    /// The output length it is ranked under for the memory budget, if ranked.
    pub(super) ranked: Option<usize>,
    /// Of its output, the bytes [`Server::buffered_bytes`] counts now.
    pub(super) counted: usize,
}

/// Who frames a connection's HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// The core: requests are decoded from the bytes read, responses written as HTTP/1.1.
    Native,
    /// The host's HTTP stack, for one request ([`Server::handle_request`]): the response
    /// head is recorded, the output is its body, and the exchange ends with it.
    Exchange,
    /// An exchange whose response switched protocols: from then on its output and input are
    /// the upgraded stream's bytes, and it closes as a native connection does.
    Upgraded,
}

pub(super) enum ConnState {
    /// Reading requests (or idle between them).
    Http,
    /// Answering with a response that carries session frames.
    Receiving(Receiver),
    /// A request that would open a session, waiting for the application's
    /// [`crate::Server::authorize`].
    Authorizing(Box<Held>),
    /// A hixie-76 handshake answered, waiting for its 8 key bytes.
    AwaitingKey3(Box<PendingHixie>),
    /// Switched to WebSocket.
    WebSocket(Box<WsConnection>),
    /// Closed by the server: the last output is being written; input is ignored.
    Closed,
    /// Output written and the write side shut down: input is dropped until `until`, or until
    /// `budget` more bytes have come.
    Lingering { until: Instant, budget: usize },
}

/// A request held for the application's authorization.
pub(super) struct Held {
    pub(super) request: crate::http::Request,
    pub(super) endpoint: usize,
    /// An extended CONNECT for a WebSocket (RFC 8441).
    pub(super) connect_websocket: bool,
    pub(super) since: Instant,
}

/// How a connection is to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closing {
    /// Write what is waiting, shut down, linger, close.
    Graceful,
    /// Close now, dropping what is waiting.
    Abort,
    /// The host already dropped it: forget it without telling.
    Forget,
}

/// Bytes waiting for a connection: sealed chunks the host may be writing, then the chunk
/// being built.
#[derive(Default)]
pub(super) struct Output {
    chunks: VecDeque<Bytes>,
    building: BytesMut,
    sealed: usize,
}

impl Output {
    pub(super) fn len(&self) -> usize {
        self.sealed + self.building.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where new output goes.
    pub(super) fn buf(&mut self) -> &mut BytesMut {
        &mut self.building
    }

    /// Everything waiting, as chunks.
    pub(super) fn chunks(&mut self) -> &[Bytes] {
        self.seal();
        self.chunks.make_contiguous()
    }

    /// Ends the chunk being built, so that what comes next starts a chunk of its own: an
    /// exchange's host sends each chunk as one piece of its body (an HTTP/1.1 chunk, an
    /// HTTP/2 DATA frame), where the built-in path would have ended a chunk.
    pub(super) fn seal(&mut self) {
        if !self.building.is_empty() {
            let chunk = self.building.split().freeze();
            self.sealed += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Drops `n` written bytes from the front (never more than were handed out as chunks);
    /// returns how many were dropped.
    fn consume(&mut self, n: usize) -> usize {
        let n = n.min(self.sealed);
        let mut left = n;
        while left > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if left >= front.len() {
                left -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(left);
                left = 0;
            }
        }
        self.sealed -= n;
        n
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.building.clear();
        self.sealed = 0;
    }
}

impl Connection {
    pub(super) fn new(peer: SocketAddr, limits: &Limits, now: Instant) -> Self {
        Connection {
            peer,
            decoder: RequestDecoder::new(DecoderLimits {
                max_head_size: limits.max_head_size,
                max_headers: limits.max_headers,
                max_body_size: limits.max_body_size,
            }),
            state: ConnState::Http,
            out: Output::default(),
            carried: None,
            write_progress: now,
            request_started: None,
            idle_since: now,
            scheduled: None,
            eof: false,
            announced: false,
            peer_counted: false,
            authorized: false,
            framing: Framing::Native,
            response: None,
            ranked: None,
            counted: 0,
        }
    }

    /// The connection's next deadline: its state's, or the write timeout while output waits.
    pub(super) fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let state = match &self.state {
            ConnState::Http => Some(match self.request_started {
                Some(t) => t + limits.request_timeout,
                None => self.idle_since + limits.keep_alive_timeout,
            }),
            ConnState::WebSocket(ws) => ws.close_deadline,
            ConnState::AwaitingKey3(p) => Some(p.started + limits.request_timeout),
            ConnState::Receiving(_) | ConnState::Closed => None,
            ConnState::Authorizing(h) => Some(h.since + limits.authorization_timeout),
            ConnState::Lingering { until, .. } => Some(*until),
        };
        // An exchange's head the host has not taken counts as output waiting.
        let waiting = !self.out.is_empty() || self.response.is_some();
        let write = waiting.then(|| self.write_progress + limits.write_timeout);
        [state, write].into_iter().flatten().min()
    }
}

impl Server {
    /// Appends to a connection's output, announced with [`Io::Write`] unless an earlier
    /// announcement has not been taken up yet.
    pub(super) fn write(&mut self, id: ConnectionId, f: impl FnOnce(&mut BytesMut)) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let before = c.out.len();
        f(c.out.buf());
        self.announce(id, before == 0);
    }

    /// After output was appended to `id` (which had none if `was_empty`): an [`Io::Write`]
    /// unless one is still to be taken up, and the write timeout starts.
    pub(super) fn announce(&mut self, id: ConnectionId, was_empty: bool) {
        // Every path that appends output announces it: the memory budget counts it here.
        self.count_output(id);
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if c.out.is_empty() {
            return;
        }
        if !c.announced {
            c.announced = true;
            self.io.push_back(Io::Write(id));
        }
        if was_empty {
            c.write_progress = self.last_now;
            self.schedule_connection(id);
        }
    }

    pub(super) fn connection_input(&mut self, now: Instant, id: ConnectionId, data: &[u8]) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        self.stats.bytes_read += data.len() as u64;
        match &mut c.state {
            ConnState::Closed => {}
            ConnState::Lingering { budget, .. } => {
                *budget = budget.saturating_sub(data.len());
                if *budget == 0 {
                    self.release(id, false);
                }
            }
            ConnState::WebSocket(_) | ConnState::AwaitingKey3(_) => {
                self.websocket_input(now, id, data)
            }
            // Before its upgrade, an exchange's input is its host's HTTP stack's.
            ConnState::Http | ConnState::Receiving(_) | ConnState::Authorizing(_)
                if c.framing == Framing::Exchange => {}
            ConnState::Http | ConnState::Receiving(_) | ConnState::Authorizing(_) => {
                c.decoder.feed(data);
                if c.request_started.is_none() && c.decoder.in_request() {
                    c.request_started = Some(now);
                }
                if matches!(c.state, ConnState::Http) {
                    self.read_requests(now, id);
                }
                // Pipelining past a response that is still going, or past unread answers:
                // bounded, then refused. (Requests read leave less than one request behind.)
                if self.conns.get(id).is_some_and(|c| {
                    c.decoder.buffered() > self.limits.max_head_size + self.limits.max_body_size
                }) {
                    self.limit_hit(crate::stats::Limit::PipelinedInput, Some(id), None);
                    self.connection_lost(now, id, Closing::Abort);
                }
            }
        }
    }

    pub(super) fn connection_eof(&mut self, now: Instant, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if c.framing == Framing::Exchange {
            // Before its upgrade, an exchange's input is its host's HTTP stack's, which says
            // a client went away with `handle_closed`.
            return;
        }
        c.eof = true;
        match c.state {
            ConnState::Lingering { .. } => self.release(id, false),
            // Closing already: it ends once written.
            ConnState::Closed => {}
            // No request can come any more (a partial one never completes).
            // A held request's client is gone: nothing is served for it.
            ConnState::Http | ConnState::Authorizing(_) => {
                self.close_connection(id, Closing::Graceful)
            }
            ConnState::Receiving(_) | ConnState::WebSocket(_) | ConnState::AwaitingKey3(_) => {
                // What was written before the client left still counts as delivered: the
                // loss is reported once it is out.
                if c.out.is_empty() {
                    self.connection_lost(now, id, Closing::Graceful);
                }
            }
        }
    }

    pub(super) fn connection_written(&mut self, now: Instant, id: ConnectionId, n: usize) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let consumed = c.out.consume(n);
        if consumed > 0 {
            c.write_progress = now;
            self.stats.bytes_written += n as u64;
        }
        let empty = c.out.is_empty();
        if empty {
            c.carried = None;
        }
        if consumed > 0 {
            self.count_output(id);
        }
        let Some(c) = self.conns.get(id) else {
            return;
        };
        match c.state {
            ConnState::Closed if empty => return self.finish_close(id),
            ConnState::Closed | ConnState::Lingering { .. } => {}
            _ if c.eof && empty => return self.connection_lost(now, id, Closing::Graceful),
            // Requests held back while the output was full are read again.
            ConnState::Http if c.out.len() <= self.limits.max_unflushed_bytes => {
                self.resume.push(id)
            }
            _ => {
                if c.out.len() <= self.limits.max_unflushed_bytes
                    && let Some(session) = self.receiving_session(id)
                {
                    self.deliver(now, session);
                }
            }
        }
        self.schedule_connection(id);
    }

    /// Ends a connection: see [`Closing`].
    pub(super) fn close_connection(&mut self, id: ConnectionId, how: Closing) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        match how {
            Closing::Graceful => {
                if matches!(c.state, ConnState::Lingering { .. }) {
                    return;
                }
                c.state = ConnState::Closed;
                if c.out.is_empty() {
                    self.finish_close(id);
                } else {
                    self.schedule_connection(id);
                }
            }
            Closing::Abort => self.release(id, true),
            Closing::Forget => {
                self.remove_connection(id);
            }
        }
    }

    /// The last output of a closed connection is written: shut down and linger, or close at
    /// once if the peer has ended its side already.
    pub(super) fn finish_close(&mut self, id: ConnectionId) {
        let linger = self.limits.linger_timeout;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        match c.framing {
            // The host takes the head before the exchange ends.
            Framing::Exchange if c.response.is_some() => return,
            // The response is complete: the host's HTTP stack ends it.
            Framing::Exchange => return self.release(id, false),
            Framing::Native | Framing::Upgraded => {}
        }
        if c.eof || linger.is_zero() {
            return self.release(id, false);
        }
        c.state = ConnState::Lingering {
            until: self.last_now + linger,
            budget: LINGER_BUDGET,
        };
        self.lingering += 1;
        self.io.push_back(Io::Shutdown(id));
        self.schedule_connection(id);
    }

    /// Forgets a connection, keeping the counts that include it right.
    fn remove_connection(&mut self, id: ConnectionId) -> Option<Connection> {
        let c = self.conns.remove(id)?;
        self.stats.connections_closed += 1;
        self.buffered -= c.counted;
        if let Some(key) = c.ranked {
            self.output_ranking.remove(&(key, id));
        }
        if matches!(c.state, ConnState::Lingering { .. }) {
            self.lingering -= 1;
        }
        if c.peer_counted {
            self.peers.remove_connection(c.peer.ip());
        }
        Some(c)
    }

    /// Tells the host to close the socket, and forgets the connection.
    fn release(&mut self, id: ConnectionId, aborted: bool) {
        if let Some(mut c) = self.remove_connection(id) {
            c.out.clear();
            self.io.push_back(Io::Close {
                connection: id,
                aborted,
            });
        }
    }

    /// The connection is no use any more (gone, or too slow): detaches and ends whatever it
    /// carried, then closes it `how`.
    pub(super) fn connection_lost(&mut self, now: Instant, id: ConnectionId, how: Closing) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let state = std::mem::replace(&mut c.state, ConnState::Closed);
        // Frames of a session that never reached the socket are lost with it.
        let undelivered = c.carried.filter(|_| !c.out.is_empty());
        match state {
            ConnState::Receiving(r) => {
                if let Some(session) = r.session {
                    self.receiver_lost(now, session, id);
                }
            }
            ConnState::WebSocket(ws) => {
                self.websocket_lost(now, ws.session, 1006, "");
            }
            ConnState::Lingering { .. } => {
                // Already shut down: only the close is left.
                self.lingering -= 1;
                if let Some(c) = self.conns.get_mut(id) {
                    c.eof = true;
                }
            }
            ConnState::Http
            | ConnState::AwaitingKey3(_)
            | ConnState::Authorizing(_)
            | ConnState::Closed => {}
        }
        if let Some(session) = undelivered {
            // A response that had ended (polling, or past `response_limit`) but whose bytes
            // were not all written: the client may have missed messages, so the session
            // cannot go on as if it had them.
            self.close_session(now, session, crate::io::CloseReason::Interrupted);
        }
        if how == Closing::Graceful
            && let Some(c) = self.conns.get_mut(id)
        {
            // Lost, so nothing will be read: no linger.
            c.eof = true;
        }
        self.close_connection(id, how);
    }

    pub(super) fn schedule_connection(&mut self, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let at = c.deadline(&self.limits);
        self.timers
            .schedule(super::TimerOwner::Connection(id), &mut c.scheduled, at);
    }

    pub(super) fn connection_timeout(&mut self, now: Instant, id: ConnectionId) {
        let Some(c) = self.conns.get(id) else { return };
        let waiting = !c.out.is_empty() || c.response.is_some();
        if waiting && c.write_progress + self.limits.write_timeout <= now {
            self.limit_hit(crate::stats::Limit::WriteTimeout, Some(id), None);
            self.connection_lost(now, id, Closing::Abort);
            return;
        }
        match &c.state {
            ConnState::Http => match c.request_started {
                Some(t) if t + self.limits.request_timeout <= now => {
                    let e = crate::http::HttpError::TIMEOUT;
                    self.refused_http(id, e);
                    self.respond_error_and_close(id, e.status, e.reason);
                }
                None if c.idle_since + self.limits.keep_alive_timeout <= now => {
                    self.close_connection(id, Closing::Graceful);
                }
                _ => {}
            },
            ConnState::WebSocket(ws) => {
                if ws.close_deadline.is_some_and(|t| t <= now) {
                    self.close_connection(id, Closing::Graceful);
                }
            }
            ConnState::AwaitingKey3(p) => {
                if p.started + self.limits.request_timeout <= now {
                    self.close_connection(id, Closing::Graceful);
                }
            }
            ConnState::Lingering { until, .. } => {
                if *until <= now {
                    self.release(id, false);
                }
            }
            ConnState::Authorizing(h) => {
                if h.since + self.limits.authorization_timeout <= now {
                    self.authorization_expired(now, id);
                }
            }
            ConnState::Receiving(_) | ConnState::Closed => {}
        }
    }
}
