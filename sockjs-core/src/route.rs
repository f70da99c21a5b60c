//! Routing: which endpoint a request path belongs to, and what under it is asked for.
//!
//! Matching is on the raw (not percent-decoded) path, as the protocol defines it. Every URL
//! may carry one trailing `/`.

use crate::http::Method;
use crate::transport::Transport;

/// What a path under an endpoint's prefix asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/prefix` or `/prefix/`: the greeting.
    Greeting,
    /// `/prefix/info`.
    Info,
    /// `/prefix/iframe.html` and versioned variants.
    Iframe,
    /// `/prefix/websocket`: WebSocket without SockJS framing.
    RawWebSocket,
    /// `/prefix/<server>/<session>/<transport>`.
    Session {
        /// The session id chosen by the client.
        session_id: &'a [u8],
        /// The transport.
        transport: Transport,
    },
    /// Anything else under the prefix.
    NotFound,
}

impl Target<'_> {
    /// The methods this target answers, as the `Allow` header lists them.
    pub fn allowed_methods(&self) -> &'static str {
        match self {
            Target::Greeting | Target::Iframe | Target::RawWebSocket => "GET",
            Target::Info => "OPTIONS, GET",
            Target::Session { transport, .. } => transport.allowed_methods(),
            Target::NotFound => "",
        }
    }

    /// Whether `method` is one this target answers.
    pub fn allows(&self, method: &Method) -> bool {
        let name = method.as_str();
        self.allowed_methods().split(", ").any(|m| m == name)
    }
}

/// Finds the endpoint owning `path` (longest prefix first) and what is asked for under it.
/// `prefixes` are the endpoints' prefixes, in configuration order; the index returned is
/// into that list.
pub fn route<'p, P: AsRef<str>>(prefixes: &[P], path: &'p [u8]) -> Option<(usize, Target<'p>)> {
    let (index, prefix_len) = prefixes
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            let p = p.as_ref().as_bytes();
            path.starts_with(p) && (path.len() == p.len() || path[p.len()] == b'/')
        })
        .map(|(i, p)| (i, p.as_ref().len()))
        .max_by_key(|&(i, len)| (len, std::cmp::Reverse(i)))?;
    Some((index, target(&path[prefix_len..])))
}

/// Classifies the rest of a path after the prefix (empty or starting with `/`).
fn target(rest: &[u8]) -> Target<'_> {
    let rest = rest.strip_suffix(b"/").unwrap_or(rest);
    if rest.is_empty() {
        return Target::Greeting;
    }
    let Some(rest) = rest.strip_prefix(b"/") else {
        return Target::NotFound;
    };
    match rest {
        b"info" => return Target::Info,
        b"websocket" => return Target::RawWebSocket,
        _ => {}
    }
    if is_iframe(rest) {
        return Target::Iframe;
    }
    let mut parts = rest.split(|&b| b == b'/');
    let (Some(server), Some(session), Some(transport), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Target::NotFound;
    };
    let id_ok = |s: &[u8]| !s.is_empty() && !s.contains(&b'.');
    match Transport::from_segment(transport) {
        Some(transport) if id_ok(server) && id_ok(session) => Target::Session {
            session_id: session,
            transport,
        },
        _ => Target::NotFound,
    }
}

/// `iframe` + `[0-9a-z_.-]*` + `.html`.
fn is_iframe(s: &[u8]) -> bool {
    s.strip_prefix(b"iframe")
        .and_then(|s| s.strip_suffix(b".html"))
        .is_some_and(|mid| {
            mid.iter()
                .all(|&b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"_.-".contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(path: &str) -> Option<(usize, Target<'_>)> {
        route(&["/echo", "/echo/deeper", "/close"], path.as_bytes())
    }

    #[test]
    fn prefixes() {
        assert_eq!(r("/echo"), Some((0, Target::Greeting)));
        assert_eq!(r("/echo/"), Some((0, Target::Greeting)));
        assert_eq!(r("/echoes"), None);
        assert_eq!(r("/"), None);
        assert_eq!(r("/echo/deeper/info"), Some((1, Target::Info)));
        assert_eq!(r("/close/info/"), Some((2, Target::Info)));
        assert_eq!(route(&[""], b"/info"), Some((0, Target::Info)));
        assert_eq!(route(&[""], b"/"), Some((0, Target::Greeting)));
    }

    #[test]
    fn not_found_under_prefix() {
        for p in [
            "/echo//",
            "/echo///",
            "/echo/a",
            "/echo/a.html",
            "/echo/a/a",
            "/echo/a/a/",
            "/echo//xhr",
            "/echo/a./a/xhr",
            "/echo/a/a./xhr",
            "/echo/././/xhr",
            "/echo///xhr",
            "/echo/a/b/xhr;x",
            "/echo/a/b/jsonp;setup.bat",
            "/echo/a/b/xhr.bat",
            "/echo/a/b/c/xhr",
            "/echo/a/b/XHR",
            "/echo/a/b/xhr//",
        ] {
            assert_eq!(r(p), Some((0, Target::NotFound)), "{p}");
        }
    }

    #[test]
    fn iframes() {
        for p in [
            "/echo/iframe.html",
            "/echo/iframe-a.html",
            "/echo/iframe-.html",
            "/echo/iframe-0.1.2.html",
            "/echo/iframe-0.1.2abc-dirty.2144.html",
            "/echo/iframe.html/",
        ] {
            assert_eq!(r(p), Some((0, Target::Iframe)), "{p}");
        }
        for p in [
            "/echo/iframe.htm",
            "/echo/iframe",
            "/echo/IFRAME.HTML",
            "/echo/IFRAME",
            "/echo/iframe.HTML",
            "/echo/iframe.xml",
            "/echo/iframe-/.html",
        ] {
            assert_eq!(r(p), Some((0, Target::NotFound)), "{p}");
        }
    }

    #[test]
    fn sessions() {
        assert_eq!(
            r("/echo/000/abc%20/xhr_send/"),
            Some((
                0,
                Target::Session {
                    session_id: b"abc%20",
                    transport: Transport::XhrSend
                }
            ))
        );
        assert_eq!(
            r("/echo/_/_/websocket"),
            Some((
                0,
                Target::Session {
                    session_id: b"_",
                    transport: Transport::WebSocket
                }
            ))
        );
        assert_eq!(r("/echo/websocket"), Some((0, Target::RawWebSocket)));
    }

    #[test]
    fn methods() {
        assert!(Target::Info.allows(&Method::Options));
        assert!(!Target::Greeting.allows(&Method::Post));
        let xhr = Target::Session {
            session_id: b"a",
            transport: Transport::Xhr,
        };
        assert_eq!(xhr.allowed_methods(), "POST, OPTIONS");
        assert!(!xhr.allows(&Method::Get));
    }
}
