//! The fixed answers under a prefix: the greeting, `/info`, and the iframe page.

use bytes::Bytes;

/// The greeting body.
pub const GREETING: &[u8] = b"Welcome to SockJS!\n";

/// The body of a 404 inside or outside a prefix.
pub const NOT_FOUND: &[u8] = b"404 Error: Page not found\n";

/// The `/info` body.
pub fn info(websocket: bool, cookie_needed: bool, entropy: u32) -> String {
    format!(
        "{{\"websocket\":{websocket},\"origins\":[\"*:*\"],\"cookie_needed\":{cookie_needed},\"entropy\":{entropy}}}"
    )
}

/// The iframe page for one endpoint, with its ETag.
#[derive(Debug, Clone)]
pub struct IframePage {
    /// The page.
    pub body: Bytes,
    /// Its quoted ETag: the MD5 of the page in hex.
    pub etag: Bytes,
}

impl IframePage {
    /// The page loading the client from `sockjs_url` (HTML-escaped into the attribute).
    pub fn new(sockjs_url: &str) -> Self {
        let mut url = String::with_capacity(sockjs_url.len());
        for c in sockjs_url.chars() {
            match c {
                '"' => url.push_str("&quot;"),
                '<' => url.push_str("&lt;"),
                '>' => url.push_str("&gt;"),
                '&' => url.push_str("&amp;"),
                c => url.push(c),
            }
        }
        let body = format!(
            "<!DOCTYPE html>
<html>
<head>
  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />
  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />
  <script src=\"{url}\"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"
        );
        let digest = crate::ws::md5::md5(body.as_bytes());
        let mut etag = String::with_capacity(34);
        etag.push('"');
        for b in digest {
            etag.push_str(&format!("{b:02x}"));
        }
        etag.push('"');
        IframePage {
            body: Bytes::from(body),
            etag: Bytes::from(etag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_body() {
        assert_eq!(
            info(true, false, 42),
            r#"{"websocket":true,"origins":["*:*"],"cookie_needed":false,"entropy":42}"#
        );
    }

    #[test]
    fn iframe_page_and_etag() {
        let p = IframePage::new("http://localhost:8080/lib/sockjs.js");
        assert_eq!(p.body.len(), 444);
        // The same page gets the same ETag as any other implementation serving it.
        assert_eq!(&p.etag[..], b"\"4f732408563f2492d07dcf51cf0a56a0\"");
        let escaped = IframePage::new("x\"><script>");
        assert!(
            std::str::from_utf8(&escaped.body)
                .unwrap()
                .contains("src=\"x&quot;&gt;&lt;script&gt;\"")
        );
    }
}
