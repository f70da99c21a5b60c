//! The timer queue: one deadline per connection or session at a time, found in a heap.
//!
//! An owner records the deadline it has queued. Moving a deadline later queues nothing: the
//! earlier entry fires, the owner finds nothing due and queues the real one. Moving it
//! earlier queues a new entry and the old one is skipped as stale when it comes up. So the
//! heap holds a few entries per owner however often deadlines move.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::io::{ConnectionId, SessionId};

/// What a timer entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerOwner {
    Connection(ConnectionId),
    Session(SessionId),
    /// The end of a graceful shutdown's wait.
    Shutdown,
}

#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TimerOwner)>>,
}

impl TimerQueue {
    /// Queues `at` for `owner` unless `scheduled` (the owner's queued deadline) is already
    /// at or before it; updates `scheduled`.
    pub(crate) fn schedule(
        &mut self,
        owner: TimerOwner,
        scheduled: &mut Option<Instant>,
        at: Option<Instant>,
    ) {
        let Some(at) = at else { return };
        if scheduled.is_some_and(|s| s <= at) {
            return;
        }
        *scheduled = Some(at);
        self.heap.push(Reverse((at, owner)));
    }

    /// Queues an entry that is not one of an owner's moving deadlines.
    pub(crate) fn push(&mut self, owner: TimerOwner, at: Instant) {
        self.heap.push(Reverse((at, owner)));
    }

    /// The earliest queued deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The earliest entry.
    pub(crate) fn peek(&self) -> Option<(Instant, TimerOwner)> {
        self.heap.peek().map(|Reverse(e)| *e)
    }

    /// Drops the earliest entry.
    pub(crate) fn pop(&mut self) {
        self.heap.pop();
    }

    /// Pops one entry due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerOwner)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}
