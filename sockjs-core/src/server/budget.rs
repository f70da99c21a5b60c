//! The server-wide memory budget ([`Limits::max_buffered_bytes`]): a running total of the
//! bytes held for every session and connection, and the ranking of sessions by bytes queued
//! that picks who is closed when a send would pass it.
//!
//! The total changes where the bytes do, by the amount they change: a message queued or
//! taken from a queue, output appended to a connection or reported written, a session or a
//! connection forgotten with bytes still held, and the host's report of inbound messages its
//! application holds. Nothing is scanned to keep it.
//!
//! Two rankings pick the victims: an ordered set of `(bytes queued, session)` and one of
//! `(bytes of output waiting, connection)`, each holding only those at or above a floor
//! (`max(1, min(64 KiB, budget / 1024))`). A client that reads keeps its session's queue and
//! its connection's output near empty and never touches them (one comparison per change);
//! a session or connection piling up bytes pays one `O(log n)` update per change. The
//! largest holder is a set's last entry, so closing the `k` largest under pressure costs
//! `O(k log n)`, never a pass over all sessions.
//!
//! A victim is whichever holds more: the session with the largest queue is closed with
//! `c[1013,"Server memory budget exceeded"]` and its queue dropped (its client, if it reads
//! again, gets what was already on its connection, then that frame); the connection with the
//! most output waiting (a client that has taken nothing, most often of a session closed so
//! already) is aborted, its session closed for the budget first. Queues are far larger than
//! output ([`Limits::max_queued_bytes`] against [`Limits::max_unflushed_bytes`] plus one
//! message), so under pressure the queues go first and clients that read again get the
//! close frame; output goes only when dropping every queue was not enough.
//!
//! [`Limits::max_buffered_bytes`]: crate::Limits::max_buffered_bytes
//! [`Limits::max_unflushed_bytes`]: crate::Limits::max_unflushed_bytes
//! [`Limits::max_queued_bytes`]: crate::Limits::max_queued_bytes

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Server;
use super::connection::Closing;
#[cfg(feature = "testing")]
use super::connection::ConnState;
use crate::io::{CloseReason, ConnectionId, SessionId};

/// The most a session must queue to be ranked (less with a small budget).
const MAX_RANK_FLOOR: usize = 64 * 1024;

/// The fewest bytes a session must queue to be ranked for a budget of `budget`.
pub(super) fn rank_floor(budget: usize) -> usize {
    (budget / 1024).clamp(1, MAX_RANK_FLOOR)
}

impl Server {
    /// Bytes held for all sessions and connections: queued messages, output not yet
    /// written, inbound messages the host last reported held ([`Server::set_held_inbound`]),
    /// and the permessage-deflate state of every connection that agreed to compression, at
    /// the most it may hold (a compressor with the server's context takeover, a
    /// decompressor with the client's: [`Server::deflate_memory`] is what they hold now).
    /// Kept as running totals: reading it costs nothing.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered + self.deflate_reserved.load(Ordering::Relaxed)
    }

    /// Tells the core how many bytes of inbound messages ([`crate::Event::Message`]) the
    /// application has not taken yet, in all: they count toward
    /// [`crate::Limits::max_buffered_bytes`]. A host that hands messages over as it polls
    /// them never calls this (they count as 0). The async layer reports its inboxes' total
    /// after every call, so the core's figure is exact as of the last call (the application
    /// only takes messages away between calls, so it is never an undercount).
    pub fn set_held_inbound(&mut self, bytes: usize) {
        self.buffered = self.buffered - self.held_inbound + bytes;
        self.held_inbound = bytes;
    }

    /// The total counted from scratch: what [`Server::buffered_bytes`] must equal. A pass
    /// over every session and connection, for tests.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn recount_buffered(&self) -> usize {
        let queued: usize = self.sessions.values().map(|s| s.queued_bytes).sum();
        let output: usize = self.conns.values().map(|c| c.out.len()).sum();
        let deflate: usize = self
            .conns
            .values()
            .map(|c| match &c.state {
                ConnState::WebSocket(ws) => ws.deflate_reserved(),
                _ => 0,
            })
            .sum();
        queued + output + self.held_inbound + deflate
    }

    /// Moves connection `id` to its place in the output ranking after its output changed.
    /// Brings the total up to date with `id`'s output (grown by appends, shrunk by writes),
    /// and its rank with it.
    pub(super) fn count_output(&mut self, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let len = c.out.len();
        if len != c.counted {
            self.buffered = self.buffered + len - c.counted;
            c.counted = len;
            self.rerank_output(id);
        }
    }

    pub(super) fn rerank_output(&mut self, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let len = c.out.len();
        let key = (len >= self.rank_floor).then_some(len);
        if key == c.ranked {
            return;
        }
        if let Some(old) = c.ranked {
            self.output_ranking.remove(&(old, id));
        }
        if let Some(new) = key {
            self.output_ranking.insert((new, id));
        }
        c.ranked = key;
    }

    /// `bytes` were taken from `session`'s queue (moved onto a connection, or dropped).
    pub(super) fn dequeued(&mut self, session: SessionId, bytes: usize) {
        self.buffered -= bytes;
        self.rerank(session);
    }

    /// `bytes` were added to `session`'s queue.
    pub(super) fn queued_more(&mut self, session: SessionId, bytes: usize) {
        self.buffered += bytes;
        self.rerank(session);
    }

    /// Moves `session` to its place in the ranking after its queue changed.
    fn rerank(&mut self, session: SessionId) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let key = (s.queued_bytes >= self.rank_floor).then_some(s.queued_bytes);
        if key == s.ranked {
            return;
        }
        if let Some(old) = s.ranked {
            self.ranking.remove(&(old, session));
        }
        if let Some(new) = key {
            self.ranking.insert((new, session));
        }
        s.ranked = key;
    }

    /// A session is being forgotten: its queue leaves the total and the ranking.
    pub(super) fn unrank(&mut self, session: SessionId, queued: usize, ranked: Option<usize>) {
        self.buffered -= queued;
        if let Some(key) = ranked {
            self.ranking.remove(&(key, session));
        }
    }

    /// Before `len` more bytes are queued for `session`: while they would take the total
    /// past the budget, closes the largest ranked holder (see the module docs). Returns false
    /// when the bytes must not be queued: `session` was closed so, or nothing ranked is left
    /// and the total is past the budget already (then `session` is closed too). Within the
    /// budget, one message may pass it when nothing can be closed.
    pub(super) fn make_room(&mut self, now: Instant, session: SessionId, len: usize) -> bool {
        let budget = self.limits.max_buffered_bytes;
        while self.buffered_bytes().saturating_add(len) > budget {
            let queue = self.ranking.last().copied();
            let output = self.output_ranking.last().copied();
            match (queue, output) {
                (Some((q, s)), Some((o, _))) if q >= o => self.budget_close(now, s),
                (Some((_, s)), None) => self.budget_close(now, s),
                (_, Some((_, c))) => self.budget_abort(now, c),
                (None, None) => break,
            }
            if !self.sessions.get(session).is_some_and(|s| s.is_open()) {
                return false;
            }
        }
        if self.buffered_bytes() > budget {
            self.budget_close(now, session);
            return false;
        }
        true
    }

    /// Aborts connection `id` for the budget, closing the sessions whose frames it carries
    /// for the budget first.
    fn budget_abort(&mut self, now: Instant, id: ConnectionId) {
        let carried = self.conns.get(id).and_then(|c| c.carried);
        for s in [self.receiving_session(id), carried].into_iter().flatten() {
            if self.sessions.get(s).is_some_and(|s| s.is_open()) {
                self.budget_close(now, s);
            }
        }
        self.connection_lost(now, id, Closing::Abort);
        if let Some(c) = self.conns.get(id) {
            // Not possible (an abort forgets it); never loop on it.
            let key = c.ranked;
            if let Some(key) = key {
                self.output_ranking.remove(&(key, id));
            }
        }
    }

    /// Closes `session` for the budget, dropping its queue: the close frame follows what is
    /// already on its connection. A session closed already (delivering its last messages)
    /// loses those, and gets its close frame at once.
    fn budget_close(&mut self, now: Instant, session: SessionId) {
        let Some(s) = self.sessions.get_mut(session) else {
            // Not possible (forgotten sessions leave the ranking); never loop on it.
            self.ranking.retain(|&(_, id)| id != session);
            return;
        };
        let open = s.is_open();
        let before = s.queued_bytes;
        s.take_queue();
        self.dequeued(session, before);
        if open {
            self.close_session(now, session, CloseReason::MemoryBudget);
        } else {
            self.deliver(now, session);
        }
    }
}
