//! The core's figures as `metrics` counters and gauges (the `metrics` feature), under the
//! names docs/METRICS.md lists.
//!
//! Nothing is counted here per message: the core counts ([`sockjs_core::Stats`]), and the
//! timer task copies its figures into handles registered once, every
//! [`Builder::metrics_interval`](crate::Builder::metrics_interval) and when the server
//! stops. Only the broadcast latency histogram is recorded as it happens, once per
//! broadcast.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use sockjs_core::{CloseKind, Limit, RefusalCause, SessionTransport, Stats};

/// Handles for every figure, registered with the recorder installed when the server was
/// built.
pub(crate) struct Exporter {
    connections: Gauge,
    connections_accepted: Counter,
    sessions: [Gauge; SessionTransport::COUNT],
    sessions_opened: [Counter; SessionTransport::COUNT],
    sessions_closed: [Counter; CloseKind::COUNT],
    messages: [Counter; 2],
    bytes: [Counter; 2],
    network_bytes: [Counter; 2],
    refused: [Counter; RefusalCause::COUNT],
    refused_by_status: Vec<(u16, Counter)>,
    limit_hits: [Counter; Limit::COUNT],
    pub(crate) broadcast_latency: Histogram,
}

impl Exporter {
    pub(crate) fn new() -> Self {
        let direction = |name: &'static str| {
            [
                counter!(name, "direction" => "in"),
                counter!(name, "direction" => "out"),
            ]
        };
        let transport = |i: usize| SessionTransport::ALL[i].name();
        Exporter {
            connections: gauge!("sockjs_connections"),
            connections_accepted: counter!("sockjs_connections_accepted_total"),
            sessions: std::array::from_fn(
                |i| gauge!("sockjs_sessions", "transport" => transport(i)),
            ),
            sessions_opened: std::array::from_fn(
                |i| counter!("sockjs_sessions_opened_total", "transport" => transport(i)),
            ),
            sessions_closed: std::array::from_fn(
                |i| counter!("sockjs_sessions_closed_total", "reason" => CloseKind::ALL[i].name()),
            ),
            messages: direction("sockjs_messages_total"),
            bytes: direction("sockjs_bytes_total"),
            network_bytes: direction("sockjs_network_bytes_total"),
            refused: std::array::from_fn(
                |i| counter!("sockjs_refused_total", "cause" => RefusalCause::ALL[i].name()),
            ),
            refused_by_status: Stats::default()
                .refused_by_status()
                .map(|(status, _)| {
                    let c =
                        counter!("sockjs_refused_by_status_total", "status" => status.to_string());
                    (status, c)
                })
                .collect(),
            limit_hits: std::array::from_fn(
                |i| counter!("sockjs_limit_hits_total", "limit" => Limit::ALL[i].name()),
            ),
            broadcast_latency: histogram!("sockjs_broadcast_delivery_seconds"),
        }
    }

    /// Sets every handle to the core's figure.
    pub(crate) fn export(&self, stats: &Stats) {
        self.connections.set(stats.connections() as f64);
        self.connections_accepted
            .absolute(stats.connections_accepted());
        for t in SessionTransport::ALL {
            self.sessions[t.index()].set(stats.sessions(t) as f64);
            self.sessions_opened[t.index()].absolute(stats.sessions_opened(t));
        }
        for k in CloseKind::ALL {
            self.sessions_closed[k.index()].absolute(stats.sessions_closed(k));
        }
        self.messages[0].absolute(stats.messages_in());
        self.messages[1].absolute(stats.messages_out());
        self.bytes[0].absolute(stats.message_bytes_in());
        self.bytes[1].absolute(stats.message_bytes_out());
        self.network_bytes[0].absolute(stats.bytes_read());
        self.network_bytes[1].absolute(stats.bytes_written());
        for c in RefusalCause::ALL {
            self.refused[c.index()].absolute(stats.refused(c));
        }
        for ((_, handle), (_, n)) in self.refused_by_status.iter().zip(stats.refused_by_status()) {
            handle.absolute(n);
        }
        for l in Limit::ALL {
            self.limit_hits[l.index()].absolute(stats.limit_hits(l));
        }
    }
}
