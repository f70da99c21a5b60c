//! Connections and sessions per client address, for [`Limits::max_connections_per_peer`] and
//! [`Limits::max_sessions_per_peer`]. Counted only when a limit is set, so a server without
//! per-peer limits pays nothing; an address is forgotten when it holds nothing, so the table
//! never outgrows the connections and sessions it counts.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::Limits;

#[derive(Default, Clone, Copy)]
struct Held {
    connections: usize,
    sessions: usize,
}

pub(super) struct Peers {
    max_connections: usize,
    max_sessions: usize,
    held: HashMap<IpAddr, Held>,
}

impl Peers {
    pub(super) fn new(limits: &Limits) -> Self {
        Peers {
            max_connections: limits.max_connections_per_peer,
            max_sessions: limits.max_sessions_per_peer,
            held: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip`: `Some(true)` counted, `Some(false)` refused (the
    /// address holds its limit), `None` when connections are not counted.
    pub(super) fn add_connection(&mut self, ip: IpAddr) -> Option<bool> {
        if self.max_connections == usize::MAX {
            return None;
        }
        let held = self.held.entry(ip).or_default();
        if held.connections >= self.max_connections {
            if held.connections == 0 && held.sessions == 0 {
                self.held.remove(&ip);
            }
            return Some(false);
        }
        held.connections += 1;
        Some(true)
    }

    /// Whether `ip` may open one more session.
    pub(super) fn session_allowed(&self, ip: IpAddr) -> bool {
        self.max_sessions == usize::MAX
            || self.held.get(&ip).map_or(0, |h| h.sessions) < self.max_sessions
    }

    /// Counts a session opened from `ip`; whether it was counted (to be released later).
    pub(super) fn add_session(&mut self, ip: IpAddr) -> bool {
        if self.max_sessions == usize::MAX {
            return false;
        }
        self.held.entry(ip).or_default().sessions += 1;
        true
    }

    pub(super) fn remove_connection(&mut self, ip: IpAddr) {
        self.release(ip, |h| &mut h.connections);
    }

    pub(super) fn remove_session(&mut self, ip: IpAddr) {
        self.release(ip, |h| &mut h.sessions);
    }

    fn release(&mut self, ip: IpAddr, count: impl Fn(&mut Held) -> &mut usize) {
        if let Some(held) = self.held.get_mut(&ip) {
            let n = count(held);
            *n = n.saturating_sub(1);
            if held.connections == 0 && held.sessions == 0 {
                self.held.remove(&ip);
            }
        }
    }

    /// Addresses holding anything.
    #[cfg(test)]
    pub(super) fn addresses(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(connections: usize, sessions: usize) -> Limits {
        Limits {
            max_connections_per_peer: connections,
            max_sessions_per_peer: sessions,
            ..Limits::default()
        }
    }

    #[test]
    fn counts_per_address_and_forgets_empty_ones() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        let mut p = Peers::new(&limits(2, 1));
        assert_eq!(p.add_connection(a), Some(true));
        assert_eq!(p.add_connection(a), Some(true));
        assert_eq!(p.add_connection(a), Some(false));
        assert_eq!(p.add_connection(b), Some(true));
        assert!(p.session_allowed(a));
        assert!(p.add_session(a));
        assert!(!p.session_allowed(a));
        assert!(p.session_allowed(b));
        p.remove_connection(a);
        assert_eq!(p.add_connection(a), Some(true));
        p.remove_connection(a);
        p.remove_connection(a);
        p.remove_session(a);
        p.remove_connection(b);
        assert_eq!(p.addresses(), 0);
        // Releasing what was never counted changes nothing.
        p.remove_session(a);
        assert_eq!(p.addresses(), 0);
    }

    #[test]
    fn nothing_is_counted_without_limits() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mut p = Peers::new(&Limits::default());
        assert_eq!(p.add_connection(a), None);
        assert!(!p.add_session(a));
        assert!(p.session_allowed(a));
        assert_eq!(p.addresses(), 0);
    }

    #[test]
    fn a_zero_limit_refuses_everything() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mut p = Peers::new(&limits(0, 0));
        assert_eq!(p.add_connection(a), Some(false));
        assert!(!p.session_allowed(a));
        assert_eq!(p.addresses(), 0);
    }
}
