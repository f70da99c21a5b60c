//! The timer queue: one deadline per connection or session at a time, found in a heap.
//!
//! An owner records the deadline it has queued. Moving a deadline later queues nothing: the
//! earlier entry fires, the owner finds nothing due and queues the real one. Moving it
//! earlier queues a new entry and the old one is skipped as stale when it comes up. So the
//! heap holds a few entries per owner however often deadlines move.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a timer entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerOwner {
    Connection(u64),
    Session(u64),
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

    /// The earliest queued deadline (possibly stale: waking for it is harmless).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one entry due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerOwner)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}
