//! How long the core's lock is held (the `lock-stats` feature): the figures the next step,
//! spreading the core over several cores, is planned from. Off by default: it reads the
//! clock twice per hold.

use std::ops::{Deref, DerefMut};
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static HOLDS: AtomicU64 = AtomicU64::new(0);
static HELD_NANOS: AtomicU64 = AtomicU64::new(0);
static LONGEST_NANOS: AtomicU64 = AtomicU64::new(0);

/// The lock's figures since the process started (over every server in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockStats {
    /// Times the lock was taken.
    pub holds: u64,
    /// Time it was held, in all.
    pub held: Duration,
    /// The longest single hold.
    pub longest: Duration,
}

/// The figures so far.
pub fn lock_stats() -> LockStats {
    LockStats {
        holds: HOLDS.load(Ordering::Relaxed),
        held: Duration::from_nanos(HELD_NANOS.load(Ordering::Relaxed)),
        longest: Duration::from_nanos(LONGEST_NANOS.load(Ordering::Relaxed)),
    }
}

/// A guard that records how long it was held.
pub(crate) struct Timed<'a, T> {
    guard: MutexGuard<'a, T>,
    since: Instant,
}

impl<'a, T> Timed<'a, T> {
    pub(crate) fn new(guard: MutexGuard<'a, T>) -> Self {
        Timed {
            guard,
            since: Instant::now(),
        }
    }
}

impl<T> Drop for Timed<'_, T> {
    fn drop(&mut self) {
        let nanos = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        HOLDS.fetch_add(1, Ordering::Relaxed);
        HELD_NANOS.fetch_add(nanos, Ordering::Relaxed);
        LONGEST_NANOS.fetch_max(nanos, Ordering::Relaxed);
    }
}

impl<T> Deref for Timed<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for Timed<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}
