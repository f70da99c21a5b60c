//! The headers SockJS responses share: CORS, caching, the JSESSIONID cookie and connection
//! persistence, all derived from the request once.

use bytes::Bytes;

use super::respond::Head;
use crate::config::Options;
use crate::http::{Request, Version};

/// `Cache-Control` for anything dynamic (iOS caches POSTs without it).
pub(crate) const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";
/// One year, the cache lifetime of static answers and preflights.
pub(crate) const YEAR_SECS: u64 = 365 * 24 * 60 * 60;

/// What response headers depend on in a request.
#[derive(Debug, Clone)]
pub(crate) struct ResponseContext {
    /// `Origin`, if sent.
    pub(crate) origin: Option<Bytes>,
    /// `Access-Control-Request-Headers`, if sent and not empty.
    pub(crate) request_headers: Option<Bytes>,
    /// The request's `JSESSIONID` cookie, if it had a usable one.
    pub(crate) jsessionid: Option<Bytes>,
    /// The request's version.
    pub(crate) version: Version,
    /// Whether the connection stays open after this response.
    pub(crate) keep_alive: bool,
    /// The request is an extended CONNECT for a WebSocket (RFC 8441).
    pub(crate) connect_websocket: bool,
}

impl ResponseContext {
    pub(crate) fn new(req: &Request) -> Self {
        let find = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
        };
        let jsessionid = req
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(b"cookie"))
            .find_map(|h| {
                crate::http::query::cookie(&h.value, "JSESSIONID").map(|v| h.value.slice_ref(v))
            });
        ResponseContext {
            // An origin that cannot be echoed safely (a literal `*`, say) is treated as
            // absent: `Allow-Origin: *` never goes with `Allow-Credentials: true`.
            origin: find("origin")
                .map(|h| h.value.clone())
                .filter(|v| is_echoable_origin(v)),
            request_headers: find("access-control-request-headers")
                .map(|h| h.value.clone())
                .filter(|v| !v.is_empty()),
            jsessionid,
            version: req.version,
            keep_alive: req.keep_alive,
            connect_websocket: false,
        }
    }

    /// Whether the request's origin may be granted access under `options`.
    pub(crate) fn origin_allowed(&self, options: &Options) -> bool {
        match (&options.allowed_origins, &self.origin) {
            (None, _) | (_, None) => true,
            (Some(list), Some(origin)) => list.iter().any(|o| o.as_bytes() == &origin[..]),
        }
    }

    /// CORS grant: the origin echoed with credentials, or `*` without.
    pub(crate) fn cors(&self, head: &mut Head) {
        match &self.origin {
            Some(origin) => {
                head.header("Access-Control-Allow-Origin", origin);
                head.header("Access-Control-Allow-Credentials", "true");
            }
            None => {
                head.header("Access-Control-Allow-Origin", "*");
            }
        }
        head.header("Vary", "Origin");
        if let Some(h) = &self.request_headers {
            head.header("Access-Control-Allow-Headers", h);
        }
    }

    /// The `JSESSIONID` cookie, echoed or set to `dummy`, when the endpoint asks for it.
    pub(crate) fn cookie(&self, head: &mut Head, options: &Options) {
        if options.cookie_needed {
            let mut value = Vec::with_capacity(32);
            value.extend_from_slice(b"JSESSIONID=");
            value.extend_from_slice(self.jsessionid.as_deref().unwrap_or(b"dummy"));
            value.extend_from_slice(b"; path=/");
            head.header("Set-Cookie", value);
        }
    }

    /// `Connection`, when persistence differs from the version's default.
    pub(crate) fn connection(&self, head: &mut Head) {
        match (self.version, self.keep_alive) {
            (Version::Http10, true) => {
                head.persistence("keep-alive");
            }
            (_, false) => {
                head.persistence("close");
            }
            (Version::Http11, true) => {}
        }
    }
}

/// Caching for a year: `Cache-Control` and `Expires` (`now_unix` is the wall clock).
pub(crate) fn cache_for_year(head: &mut Head, now_unix: u64) {
    head.header("Cache-Control", "public, max-age=31536000");
    head.header(
        "Expires",
        crate::http::date::http_date(now_unix + YEAR_SECS),
    );
}

/// Whether an `Origin` value can be echoed as `Access-Control-Allow-Origin` beside
/// `Access-Control-Allow-Credentials: true`: not empty, and not `*` or a list (which would
/// grant every origin, or none, with credentials). Other values are echoed as they are: the
/// protocol suite sends `Origin: test` and expects it back.
fn is_echoable_origin(v: &[u8]) -> bool {
    let v = v.trim_ascii();
    !v.is_empty() && !v.iter().any(|b| matches!(b, b'*' | b',' | b' ' | b'\t'))
}

#[cfg(test)]
mod tests {
    use super::is_echoable_origin;

    #[test]
    fn echoable_origins() {
        for ok in [
            "null",
            "test",
            "http://a",
            "https://example.com:8443",
            "http://[::1]:80",
        ] {
            assert!(is_echoable_origin(ok.as_bytes()), "{ok}");
        }
        for bad in ["*", "", "  ", "http://a, http://b", "http://*", "* ", "a b"] {
            assert!(!is_echoable_origin(bad.as_bytes()), "{bad}");
        }
    }
}
