//! Who a client is: the addresses the harness connects from, the proxies it trusts, the
//! `X-Forwarded-For` / `Forwarded` / `Cookie` headers a connection's requests carry, and a
//! plain restatement of how the core finds the client's address and cookie from them (for
//! the session-binding checks of [`crate::harness`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use sockjs_core::config::IpRange;
use sockjs_core::{Config, Limits, Options, SessionBinding};

/// The addresses connections come from (and forwarded hops name): loopback, two trusted
/// proxies, an untrusted IPv4, IPv6 loopback, a trusted IPv6 proxy, an untrusted IPv6, and
/// an IPv4-mapped trusted proxy. They are values only: nothing is sent anywhere.
pub const ADDRESSES: [IpAddr; 9] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5)),
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0003)),
];

/// The trusted proxy ranges, as the configuration takes them.
pub fn trusted_ranges() -> Vec<IpRange> {
    ["10.0.0.0/8", "fd00::/8"]
        .iter()
        .map(|r| r.parse().expect("a range"))
        .collect()
}

/// Whether `ip` is in [`trusted_ranges`] (an IPv4-mapped address counting as its IPv4 one),
/// restated without the core's range code.
pub fn is_trusted(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 10,
        IpAddr::V6(v6) => v6.octets()[0] == 0xfd,
    }
}

/// What a connection's requests say about their client, chosen by the fuzzer: forwarded
/// hops and a cookie.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// 0 nothing, 1 `X-Forwarded-For`, 2 `Forwarded`, 3 both.
    pub mode: u8,
    /// Hops, nearest last: an index into [`ADDRESSES`] (bit 7: with a port), 9 `unknown`,
    /// 10 an obfuscated node.
    pub hops: Vec<u8>,
    /// 0 no `Cookie`, 1 `sid=1`, 2 `sid=2`, 3 `other=1; sid=1; JSESSIONID=x`.
    pub cookie: u8,
}

impl Profile {
    /// A profile from three bytes and up to three hop bytes.
    pub fn decode(mode: u8, hops: &[u8], cookie: u8) -> Self {
        Profile {
            mode: mode % 4,
            hops: hops.iter().take(3).copied().collect(),
            cookie: cookie % 4,
        }
    }

    /// The header lines it adds to every request.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let hop = |b: u8, forwarded: bool| {
            let port = b & 0x80 != 0;
            match b & 0x7f {
                n @ 0..=8 => match ADDRESSES[usize::from(n)] {
                    IpAddr::V4(v4) if forwarded && port => format!("for=\"{v4}:4711\""),
                    IpAddr::V4(v4) if forwarded => format!("for={v4}"),
                    IpAddr::V4(v4) if port => format!("{v4}:4711"),
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) if forwarded && port => format!("for=\"[{v6}]:4711\""),
                    IpAddr::V6(v6) if forwarded => format!("proto=http;for=\"[{v6}]\""),
                    IpAddr::V6(v6) if port => format!("[{v6}]:4711"),
                    IpAddr::V6(v6) => v6.to_string(),
                },
                9 if forwarded => "for=unknown".to_string(),
                9 => "unknown".to_string(),
                _ if forwarded => "for=_hidden".to_string(),
                _ => "_hidden".to_string(),
            }
        };
        let list = |forwarded: bool| {
            self.hops
                .iter()
                .map(|&b| hop(b, forwarded))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.mode & 1 != 0 {
            out.push(("X-Forwarded-For", list(false)));
        }
        if self.mode & 2 != 0 {
            out.push(("Forwarded", list(true)));
        }
        match self.cookie {
            1 => out.push(("Cookie", "sid=1".to_string())),
            2 => out.push(("Cookie", "sid=2".to_string())),
            3 => out.push(("Cookie", "other=1; sid=1; JSESSIONID=x".to_string())),
            _ => {}
        }
        out
    }
}

/// The values of the headers named `name` (any case), in order.
fn values<'a>(
    headers: &'a [(&'a [u8], &'a [u8])],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| *v)
}

/// An address node: `a.b.c.d`, `a.b.c.d:port`, `[v6]`, `[v6]:port`, a bare IPv6 address.
fn node(text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client's address for a request from `peer` with `headers`, as
/// `Config::trusted_proxies` describes it: the peer unless it is trusted; then the hops of
/// `Forwarded` (or, without it, `X-Forwarded-For`) from the nearest outward, up to the first
/// address that is not trusted, stopping at a hop that is no address.
pub fn client_ip(peer: IpAddr, headers: &[(&[u8], &[u8])], trust: bool) -> IpAddr {
    if !trust || !is_trusted(peer) {
        return peer;
    }
    let forwarded = values(headers, "forwarded");
    let hops: Vec<Option<IpAddr>> = if forwarded.clone().next().is_some() {
        forwarded
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|element| {
                element.split(|&b| b == b';').find_map(|pair| {
                    let pair = std::str::from_utf8(pair).ok()?.trim();
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| node(value.as_bytes()))?
                })
            })
            .collect()
    } else {
        values(headers, "x-forwarded-for")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(node)
            .collect()
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        let Some(ip) = hop else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// The value of cookie `name` in the first `Cookie` header that has it.
pub fn cookie(headers: &[(&[u8], &[u8])], name: &str) -> Option<Vec<u8>> {
    values(headers, "cookie").find_map(|v| {
        v.split(|&b| b == b';').find_map(|pair| {
            let pair = pair.trim_ascii();
            let i = pair.iter().position(|&b| b == b'=')?;
            (pair[..i].trim_ascii() == name.as_bytes()).then(|| pair[i + 1..].trim_ascii().to_vec())
        })
    })
}

/// The security settings (after a leading `0xff`; all off without it), one byte each:
/// `/echo` and `/strict` options (bit 0 authorize, bits 1-2 binding: none, peer address,
/// cookie), `max_connections_per_peer` and `max_sessions_per_peer` (0 unlimited, else
/// `n % 5`), `authorization_timeout`, `linger_timeout`, `shutdown_timeout`, and flags
/// (bit 0 trust the proxies of [`trusted_ranges`], bit 1 bind the `JSESSIONID` cookie
/// instead of `sid`).
#[derive(Debug, Default)]
pub struct Security(pub Option<[u8; 8]>);

impl Security {
    /// Endpoint `endpoint`'s options with its authorization and binding.
    pub fn apply(&self, endpoint: usize, options: Options) -> Options {
        let Some(s) = self.0 else { return options };
        let bits = s[endpoint];
        let name = if s[7] & 2 != 0 { "JSESSIONID" } else { "sid" };
        let binding = match bits >> 1 & 3 {
            1 => SessionBinding::PeerAddress,
            2 => SessionBinding::Cookie(name.to_string()),
            _ => SessionBinding::None,
        };
        options.authorize(bits & 1 != 0).session_binding(binding)
    }

    /// Sets the per-address limits and the timeouts.
    pub fn limits(&self, limits: &mut Limits) {
        let Some(s) = self.0 else { return };
        let per_peer = |n: u8| match n {
            0 => usize::MAX,
            n => usize::from(n % 5),
        };
        limits.max_connections_per_peer = per_peer(s[2]);
        limits.max_sessions_per_peer = per_peer(s[3]);
        limits.authorization_timeout = Duration::from_millis(50 + u64::from(s[4]) * 40);
        limits.linger_timeout = Duration::from_millis(u64::from(s[5]) * 20);
        limits.shutdown_timeout = Duration::from_millis(u64::from(s[6]) * 40);
    }

    /// Adds the trusted proxies.
    pub fn config(&self, config: Config) -> Config {
        match self.0 {
            Some(s) if s[7] & 1 != 0 => trusted_ranges()
                .into_iter()
                .fold(config, Config::trusted_proxy),
            _ => config,
        }
    }
}

impl Security {
    /// Reads the settings when the input starts with `0xff` (and then consumes 9 bytes).
    pub fn decode(input: &[u8]) -> (Security, &[u8]) {
        match input.split_first() {
            Some((0xff, rest)) => {
                let mut s = [0u8; 8];
                let n = rest.len().min(8);
                s[..n].copy_from_slice(&rest[..n]);
                (Security(Some(s)), &rest[n..])
            }
            _ => (Security(None), input),
        }
    }
}
