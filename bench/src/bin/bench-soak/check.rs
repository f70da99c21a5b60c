//! What the well-behaved clients check: every message they sent comes back once, unchanged
//! and in order, on a session that stayed open; and what all clients add up to.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sockjs_bench::histogram::Histogram;

/// Filler for messages: characters SockJS and its transports must escape (quotes, backslash,
/// `<`, `>`, `&`, `%`, U+2028, control characters) and non-ASCII text.
const FILLER: &[&str] = &[
    "x", "\"", "\\", "/", "<", ">", "&", "%", "é", "€", "\u{2028}", "\u{1}", "\t", "日本", " ",
];

/// The message with sequence number `seq`: its number in 8 hex digits, then `len` pieces of
/// filler chosen by `pick`.
pub(crate) fn message(seq: u64, len: usize, mut pick: impl FnMut() -> u64) -> String {
    let mut text = format!("{:08x}", seq as u32);
    for _ in 0..len {
        text.push_str(FILLER[(pick() % FILLER.len() as u64) as usize]);
    }
    text
}

/// One well-behaved session's view of its echoes.
#[derive(Debug, Default)]
pub(crate) struct Echoes {
    /// Sent and not yet received, oldest first: sequence number, text, when sent.
    in_flight: VecDeque<(u64, String, Instant)>,
    /// Sequence numbers passed over by a later one (lost unless they turn up).
    skipped: HashSet<u64>,
    /// Sequence numbers received.
    next_seq: u64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) duplicated: u64,
    pub(crate) reordered: u64,
    pub(crate) corrupted: u64,
}

impl Echoes {
    /// The next message to send, recorded as sent now.
    pub(crate) fn send(&mut self, len: usize, pick: impl FnMut() -> u64) -> String {
        let seq = self.next_seq;
        self.next_seq += 1;
        let text = message(seq, len, pick);
        self.in_flight
            .push_back((seq, text.clone(), Instant::now()));
        self.sent += 1;
        text
    }

    /// Messages waiting for their echo.
    pub(crate) fn outstanding(&self) -> usize {
        self.in_flight.len()
    }

    /// An echo arrived at `at`; returns its latency in microseconds when it is the one
    /// expected (or one passed over before, arriving late).
    pub(crate) fn received(&mut self, text: &str, at: Instant) -> Option<u64> {
        let Some(seq) = text
            .get(..8)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        else {
            self.corrupted += 1;
            return None;
        };
        let Some(pos) = self.in_flight.iter().position(|(s, _, _)| *s == seq) else {
            if self.skipped.remove(&seq) {
                // Passed over, then here after all: out of order, not lost.
                self.reordered += 1;
                self.received += 1;
            } else {
                self.duplicated += 1;
            }
            return None;
        };
        // Everything sent before it and still in flight was passed over.
        for (s, _, _) in self.in_flight.drain(..pos) {
            self.skipped.insert(s);
        }
        let (_, sent, when) = self.in_flight.pop_front().expect("found above");
        self.received += 1;
        if sent != text {
            self.corrupted += 1;
        }
        Some(at.saturating_duration_since(when).as_micros() as u64)
    }

    /// Sent and never received: those still in flight and those passed over.
    pub(crate) fn missing(&self) -> u64 {
        (self.in_flight.len() + self.skipped.len()) as u64
    }
}

/// What every client of one server adds up to.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Well-behaved sessions started, and those that stayed open until their client ended
    /// them.
    pub(crate) sessions: u64,
    pub(crate) stayed_open: u64,
    /// Well-behaved sessions the server closed, or whose connection failed, by why.
    pub(crate) cut_short: BTreeMap<String, u64>,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    /// On sessions that stayed open: sent and never received.
    pub(crate) lost: u64,
    /// On any session: received twice, out of order, or altered.
    pub(crate) duplicated: u64,
    pub(crate) reordered: u64,
    pub(crate) corrupted: u64,
    /// Per transport: sessions and messages received.
    pub(crate) by_transport: BTreeMap<&'static str, (u64, u64)>,
    /// Latency of the well-behaved clients' echoes while measuring (microseconds).
    pub(crate) latency: Histogram,
    /// Misbehaving clients: what each kind did, how often.
    pub(crate) faults: BTreeMap<&'static str, u64>,
}

impl Tally {
    /// Adds one finished well-behaved session.
    pub(crate) fn session(&mut self, transport: &'static str, e: &Echoes, cut: Option<String>) {
        self.sessions += 1;
        self.sent += e.sent;
        self.received += e.received;
        self.duplicated += e.duplicated;
        self.reordered += e.reordered;
        self.corrupted += e.corrupted;
        let t = self.by_transport.entry(transport).or_default();
        t.0 += 1;
        t.1 += e.received;
        match cut {
            None => {
                self.stayed_open += 1;
                self.lost += e.missing();
            }
            Some(why) => {
                // Keep the kinds few: the start of the reason only.
                let key: String = why.chars().take(60).collect();
                *self
                    .cut_short
                    .entry(format!("{transport}: {key}"))
                    .or_default() += 1;
            }
        }
    }
}

/// What the clients of one server share: the tally, and whether latencies count yet.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) tally: Arc<Mutex<Tally>>,
    pub(crate) measuring: Arc<AtomicBool>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            tally: Arc::default(),
            measuring: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn latency(&self, micros: u64) {
        if self.measuring.load(Ordering::Relaxed) {
            self.lock().latency.record(micros);
        }
    }

    pub(crate) fn fault(&self, kind: &'static str) {
        *self.lock().faults.entry(kind).or_default() += 1;
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_late_duplicate_and_missing() {
        let mut n = 0;
        let mut e = Echoes::default();
        let texts: Vec<String> = (0..5)
            .map(|_| {
                e.send(3, || {
                    n += 1;
                    n
                })
            })
            .collect();
        let now = Instant::now();
        assert!(e.received(&texts[0], now).is_some());
        // 1 passed over by 2, then late; 3 never comes; 0 again is a duplicate.
        assert!(e.received(&texts[2], now).is_some());
        assert!(e.received(&texts[1], now).is_none());
        assert!(e.received(&texts[0], now).is_none());
        assert!(e.received(&texts[4], now).is_some());
        assert_eq!((e.received, e.reordered, e.duplicated), (4, 1, 1));
        assert_eq!(e.missing(), 1);
        assert_eq!(e.corrupted, 0);
        let mut f = Echoes::default();
        let t = f.send(0, || 0);
        assert_eq!(t, "00000000");
        f.received(&format!("{t}!"), now);
        assert_eq!(f.corrupted, 1);
    }
}
