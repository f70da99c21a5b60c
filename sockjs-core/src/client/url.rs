//! The base URL a client connects to: `http://host:port/prefix` (or `https`, `ws`, `wss`).

use std::fmt;

/// A SockJS endpoint's base URL, split into what requests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https` or `wss`: the host wraps connections in TLS.
    pub tls: bool,
    /// The host name or address to connect to (an IPv6 address without its brackets).
    pub host: String,
    /// The port to connect to (80 or 443 when the URL gives none).
    pub port: u16,
    /// The `Host` header value: the host as written, with the port unless it is the default.
    pub authority: String,
    /// The endpoint's prefix, without a trailing `/` (empty for the root).
    pub prefix: String,
    /// The query string with its `?`, kept on every request (empty if none).
    pub query: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlError(pub &'static str);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad SockJS URL: {}", self.0)
    }
}

impl std::error::Error for UrlError {}

impl Url {
    /// Parses `scheme://host[:port][/prefix][?query]`; `ws` reads as `http` and `wss` as
    /// `https`, as sockjs-client does. A fragment is dropped.
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let (scheme, rest) = text.split_once("://").ok_or(UrlError("no scheme"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            _ => return Err(UrlError("the scheme must be http, https, ws or wss")),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let (rest, query) = match rest.find('?') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(UrlError("credentials in the URL are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or(UrlError("unclosed ["))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(UrlError("junk after ]"))?),
            };
            (addr, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError("no host"));
        }
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if !printable(host) || !printable(path) || !printable(query) {
            return Err(UrlError("spaces or control characters in the URL"));
        }
        let default_port = if tls { 443 } else { 80 };
        let port = match port {
            None => default_port,
            Some(p) => p.parse().map_err(|_| UrlError("bad port"))?,
        };
        let default_suffix = format!(":{port}");
        let authority = match port == default_port {
            true => authority
                .strip_suffix(default_suffix.as_str())
                .unwrap_or(authority),
            false => authority,
        };
        Ok(Url {
            tls,
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            prefix: path.trim_end_matches('/').to_string(),
            query: query.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let u = Url::parse("http://127.0.0.1:8081/echo/").unwrap();
        assert_eq!(
            u,
            Url {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8081,
                authority: "127.0.0.1:8081".into(),
                prefix: "/echo".into(),
                query: String::new(),
            }
        );
        let u = Url::parse("wss://example.test/a/b?x=1#frag").unwrap();
        assert!(u.tls);
        assert_eq!((u.port, u.authority.as_str()), (443, "example.test"));
        assert_eq!((u.prefix.as_str(), u.query.as_str()), ("/a/b", "?x=1"));
        let u = Url::parse("http://[::1]:80").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert_eq!((u.authority.as_str(), u.prefix.as_str()), ("[::1]", ""));
        for bad in [
            "echo",
            "ftp://x/",
            "http://:80/",
            "http://x:99999/",
            "http://u@x/",
            "http://x/a b",
            "http://[::1/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
