//! The client's address behind trusted proxies: `Forwarded` (RFC 7239) or `X-Forwarded-For`,
//! believed only when the connection comes from a proxy the configuration trusts, and then
//! only for the hops that trusted proxies added.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::http::Request;

/// An address or a CIDR block (`10.0.0.0/8`, `::1`, `fd00::/8`), as a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

/// Text that is not an address or a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadIpRange(pub String);

impl fmt::Display for BadIpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an IP address or CIDR block: {:?}", self.0)
    }
}

impl std::error::Error for BadIpRange {}

impl FromStr for IpRange {
    type Err = BadIpRange;

    fn from_str(s: &str) -> Result<Self, BadIpRange> {
        let bad = || BadIpRange(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(IpRange { addr, prefix })
    }
}

impl IpRange {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let whole = usize::from(bits / 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

/// Hops looked at, at most: a longer chain is cut at this many from the right.
const MAX_HOPS: usize = 32;

/// The client's address for a request that came from `peer`: `peer` itself unless it is a
/// trusted proxy; then, walking the forwarded chain from the nearest hop outward, the first
/// address that is not a trusted proxy. `Forwarded` is read when present, else
/// `X-Forwarded-For`. A hop that is not an address (`unknown`, an obfuscated name, garbage)
/// ends the walk at the last address believed.
pub(crate) fn client_ip(peer: IpAddr, req: &Request, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded = req.header_values("forwarded");
    let hops: Vec<Option<IpAddr>> = if forwarded.clone().next().is_some() {
        forwarded
            .flat_map(|v| v.split(|&b| b == b','))
            .map(forwarded_for)
            .collect()
    } else {
        req.header_values("x-forwarded-for")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|hop| parse_node(hop.trim_ascii()))
            .collect()
    };
    let mut client = peer;
    for hop in hops.into_iter().rev().take(MAX_HOPS) {
        match hop {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// The `for=` node of one `Forwarded` element, if it is an address.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    element.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let (name, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
        if !name.trim_ascii().eq_ignore_ascii_case(b"for") {
            return None;
        }
        let value = value[1..].trim_ascii();
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        parse_node(value)
    })
}

/// An address, maybe with a port: `192.0.2.60`, `192.0.2.60:443`, `[2001:db8::1]:4711`,
/// `2001:db8::1`.
fn parse_node(node: &[u8]) -> Option<IpAddr> {
    let node = std::str::from_utf8(node).ok()?;
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        crate::testing::request("GET", "/", headers, b"")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ranges(list: &[&str]) -> Vec<IpRange> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn ranges_parse_and_match() {
        let r: IpRange = "10.1.0.0/16".parse().unwrap();
        assert!(r.contains(ip("10.1.200.3")));
        assert!(!r.contains(ip("10.2.0.1")));
        assert!(r.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped");
        let r: IpRange = "fd00::/8".parse().unwrap();
        assert!(r.contains(ip("fd12::1")));
        assert!(!r.contains(ip("fe80::1")));
        let r: IpRange = "10.0.0.5/29".parse().unwrap();
        assert!(r.contains(ip("10.0.0.7")) && !r.contains(ip("10.0.0.8")));
        assert!(
            "127.0.0.1"
                .parse::<IpRange>()
                .unwrap()
                .contains(ip("127.0.0.1"))
        );
        assert!(
            "0.0.0.0/0"
                .parse::<IpRange>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "host",
            "10.0.0.0/x",
        ] {
            assert_eq!(bad.parse::<IpRange>(), Err(BadIpRange(bad.into())), "{bad}");
        }
    }

    #[test]
    fn untrusted_peers_are_believed_and_headers_ignored() {
        let r = req(&[("X-Forwarded-For", "1.2.3.4"), ("Forwarded", "for=1.2.3.4")]);
        assert_eq!(client_ip(ip("9.9.9.9"), &r, &[]), ip("9.9.9.9"));
        let trusted = ranges(&["10.0.0.0/8"]);
        assert_eq!(client_ip(ip("9.9.9.9"), &r, &trusted), ip("9.9.9.9"));
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = ranges(&["10.0.0.0/8"]);
        // A spoofed leftmost entry is never reached past an untrusted hop.
        let r = req(&[("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &r, &trusted), ip("1.2.3.4"));
        let r = req(&[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-For", "1.2.3.4"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &r, &trusted), ip("1.2.3.4"));
        // Every hop trusted: the farthest one.
        let r = req(&[("X-Forwarded-For", "10.0.0.9, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &r, &trusted), ip("10.0.0.9"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &req(&[]), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn forwarded_wins_and_is_parsed_as_rfc_7239_says() {
        let trusted = ranges(&["10.0.0.0/8", "fd00::/8"]);
        let r = req(&[
            ("X-Forwarded-For", "7.7.7.7"),
            (
                "Forwarded",
                "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=\"10.0.0.3:80\"",
            ),
        ]);
        assert_eq!(
            client_ip(ip("fd00::1"), &r, &trusted),
            ip("2001:db8:cafe::17")
        );
        let r = req(&[("Forwarded", "proto=http;For=192.0.2.60;by=203.0.113.43")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &r, &trusted), ip("192.0.2.60"));
        // `unknown` or an obfuscated node stops the walk at the last address believed.
        let r = req(&[("Forwarded", "for=1.2.3.4, for=unknown, for=10.0.0.7")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &r, &trusted), ip("10.0.0.7"));
        let r = req(&[("Forwarded", "for=_hidden")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &r, &trusted), ip("10.0.0.1"));
        let r = req(&[("X-Forwarded-For", "1.2.3.4:5678")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &r, &trusted), ip("1.2.3.4"));
    }

    #[test]
    fn a_long_chain_is_walked_no_further_than_max_hops() {
        let trusted = ranges(&["10.0.0.0/8"]);
        let chain = std::iter::once("1.2.3.4".to_string())
            .chain((0..100).map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1)))
            .collect::<Vec<_>>()
            .join(",");
        let r = req(&[("X-Forwarded-For", &chain)]);
        let got = client_ip(ip("10.0.0.1"), &r, &trusted);
        assert!(
            trusted[0].contains(got),
            "stopped inside the trusted chain: {got}"
        );
    }
}
