//! The URLs under a prefix that are not sessions: the greeting, 404 and 405 rules, `/info`,
//! CORS preflights and the iframe page.

use sockjs_core::testing::{self, EXPIRES_AT_START, Harness, NO_CACHE, secs};
use sockjs_core::{Config, Options};

const TEXT: &str = "text/plain; charset=UTF-8";
const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=UTF-8\r\n\
                         Content-Length: 26\r\n\r\n";

#[test]
fn greeting_with_and_without_trailing_slash() {
    let mut h = Harness::echo();
    for path in ["/echo", "/echo/"] {
        let r = h.get(path);
        assert_eq!(
            r.head,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\n\
             Content-Length: 19\r\n\r\n"
        );
        assert_eq!(r.text(), "Welcome to SockJS!\n");
    }
}

#[test]
fn greeting_under_the_empty_prefix_and_longest_prefix_wins() {
    let config = Config::new()
        .endpoint("", Options::default())
        .endpoint("/deeper/", Options::default().websocket(false));
    let mut h = Harness::new(config);
    assert_eq!(h.get("/").text(), "Welcome to SockJS!\n");
    assert_eq!(h.get("/deeper").text(), "Welcome to SockJS!\n");
    // The second endpoint answers its own /info.
    assert!(
        h.get("/deeper/info")
            .text()
            .starts_with("{\"websocket\":false,")
    );
    assert!(h.get("/info").text().starts_with("{\"websocket\":true,"));
}

#[test]
fn not_found_under_the_prefix() {
    let mut h = Harness::echo();
    for suffix in ["/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a/"] {
        let r = h.get(&format!("/echo{suffix}"));
        assert_eq!(r.head, NOT_FOUND, "{suffix}");
        assert_eq!(r.text(), "404 Error: Page not found\n");
    }
}

#[test]
fn not_found_outside_every_prefix() {
    let mut h = Harness::echo();
    for path in ["/", "/echoes", "/ech", "/other/info", "*"] {
        let r = h.get(path);
        assert_eq!(r.head, NOT_FOUND, "{path}");
        assert_eq!(r.text(), "404 Error: Page not found\n");
    }
}

#[test]
fn session_paths_with_empty_or_dotted_ids_are_not_found_for_get_and_post() {
    let mut h = Harness::echo();
    for middle in ["//", "/a./a", "/a/a.", "/./.", "/", "///", "/a/b/c"] {
        for method in ["GET", "POST"] {
            let r = h.fetch(method, &format!("/echo{middle}/xhr"), &[], b"");
            assert_eq!(r.head, NOT_FOUND, "{method} {middle}");
        }
    }
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn transport_segments_carrying_anything_extra_are_not_found() {
    // Reflected file download: the transport segment must match exactly.
    let mut h = Harness::echo();
    for t in [
        "xhr;x",
        "jsonp;setup.bat",
        "xhr.bat",
        "XHR",
        "xhr_send.bat",
        "jsonp.js",
        "xhr%3Bx",
        "eventsource;",
        "htmlfile.html",
        "websocket;x",
    ] {
        let r = h.fetch("POST", &format!("/echo/a/b/{t}"), &[], b"");
        assert_eq!(r.head, NOT_FOUND, "POST {t}");
        let r = h.fetch("GET", &format!("/echo/a/b/{t}?c=x"), &[], b"");
        assert_eq!(r.head, NOT_FOUND, "GET {t}");
    }
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn wrong_method_is_405_with_allow_and_no_content_type() {
    let mut h = Harness::echo();
    let cases = [
        ("POST", "/echo", "GET"),
        ("PUT", "/echo/", "GET"),
        ("POST", "/echo/iframe.html", "GET"),
        ("DELETE", "/echo/info", "OPTIONS, GET"),
        ("POST", "/echo/info", "OPTIONS, GET"),
        ("GET", "/echo/a/b/xhr", "POST, OPTIONS"),
        ("GET", "/echo/a/b/xhr_send", "POST, OPTIONS"),
        ("GET", "/echo/a/b/xhr_streaming", "POST, OPTIONS"),
        ("GET", "/echo/a/b/jsonp_send", "POST"),
        ("POST", "/echo/a/b/jsonp", "GET"),
        ("POST", "/echo/a/b/eventsource", "GET"),
        ("POST", "/echo/a/b/htmlfile", "GET"),
        ("POST", "/echo/a/b/websocket", "GET"),
        ("POST", "/echo/websocket", "GET"),
        ("OPTIONS", "/echo/a/b/jsonp", "GET"),
    ];
    for (method, path, allow) in cases {
        let r = h.fetch(method, path, &[], b"");
        assert_eq!(
            r.head,
            format!(
                "HTTP/1.1 405 Method Not Allowed\r\nAllow: {allow}\r\nContent-Length: 0\r\n\r\n"
            ),
            "{method} {path}"
        );
        assert!(r.body.is_empty());
    }
}

#[test]
fn websocket_post_with_upgrade_headers_is_405() {
    let mut h = Harness::echo();
    let upgrade = [("Upgrade", "WebSocket"), ("Connection", "Upgrade")];
    let r = h.fetch("POST", "/echo/0/0/websocket", &upgrade, b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET"));
    assert!(!r.has("Content-Type"));
}

#[test]
fn info_json_shape_with_entropy_from_the_source() {
    let mut h = Harness::echo();
    let r = h.get("/echo/info");
    let body = r#"{"websocket":true,"origins":["*:*"],"cookie_needed":false,"entropy":1}"#;
    assert_eq!(
        r.head,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n\
             Cache-Control: {NO_CACHE}\r\nAccess-Control-Allow-Origin: *\r\nVary: Origin\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
    );
    assert_eq!(r.text(), body);
    // Each answer draws a new number from the entropy source (the harness counts).
    assert!(h.get("/echo/info").text().ends_with(r#""entropy":2}"#));
    assert!(h.get("/echo/info/").text().ends_with(r#""entropy":3}"#));
}

#[test]
fn info_reports_websocket_and_cookie_options() {
    let config = Config::new()
        .endpoint("/a", Options::default().websocket(false))
        .endpoint("/b", Options::default().cookie_needed(true));
    let mut h = Harness::new(config);
    assert_eq!(
        h.get("/a/info").text(),
        r#"{"websocket":false,"origins":["*:*"],"cookie_needed":false,"entropy":1}"#
    );
    let r = h.fetch("GET", "/b/info", &[("Cookie", "JSESSIONID=abc")], b"");
    assert_eq!(
        r.text(),
        r#"{"websocket":true,"origins":["*:*"],"cookie_needed":true,"entropy":2}"#
    );
    // /info reports the cookie but never sets it.
    assert!(!r.has("Set-Cookie"));
}

#[test]
fn info_cors_echoes_the_origin_with_credentials() {
    let mut h = Harness::echo();
    for origin in ["test", "null", "https://example.com:8443"] {
        let r = h.fetch("GET", "/echo/info", &[("Origin", origin)], b"");
        assert_eq!(r.status, 200);
        let cors: Vec<_> = r.headers[2..5].to_vec();
        assert_eq!(
            cors,
            vec![
                ("Access-Control-Allow-Origin".into(), origin.into()),
                ("Access-Control-Allow-Credentials".into(), "true".into()),
                ("Vary".into(), "Origin".into()),
            ]
        );
        assert_eq!(r.header("Cache-Control"), Some(NO_CACHE));
        assert!(!r.has("Expires") && !r.has("Last-Modified") && !r.has("Set-Cookie"));
    }
}

#[test]
fn info_without_origin_grants_star_without_credentials() {
    let mut h = Harness::echo();
    let r = h.get("/echo/info");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(!r.has("Access-Control-Allow-Credentials"));
}

#[test]
fn upgrade_headers_on_non_websocket_routes_are_ignored() {
    let mut h = Harness::echo();
    let upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade")];
    let r = h.fetch("GET", "/echo/info", &upgrade, b"");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("{\"websocket\":true"));
    let r = h.fetch("GET", "/echo", &upgrade, b"");
    assert_eq!(r.text(), "Welcome to SockJS!\n");
    let r = h.fetch("POST", "/echo/0/s/xhr", &upgrade, b"");
    assert_eq!((r.status, r.text()), (200, "o\n"));
}

#[test]
fn info_preflight_is_204_cached_for_a_year() {
    let mut h = Harness::echo();
    let headers = [
        ("Origin", "test"),
        ("Access-Control-Request-Method", "OPTIONS, GET"),
    ];
    let r = h.fetch("OPTIONS", "/echo/info", &headers, b"");
    assert_eq!(
        r.head,
        format!(
            "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: test\r\n\
             Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n\
             Cache-Control: public, max-age=31536000\r\nExpires: {EXPIRES_AT_START}\r\n\
             Access-Control-Allow-Methods: OPTIONS, GET\r\nAccess-Control-Max-Age: 31536000\r\n\r\n"
        )
    );
    assert!(r.body.is_empty());
}

#[test]
fn preflight_expires_a_year_after_the_virtual_now() {
    let mut h = Harness::echo();
    h.advance(secs(90));
    let r = h.fetch("OPTIONS", "/echo/info", &[], b"");
    assert_eq!(r.header("Expires"), Some("Wed, 13 Nov 2024 22:14:50 GMT"));
}

#[test]
fn preflight_with_null_origin_echoes_null() {
    let mut h = Harness::echo();
    let headers = [
        ("Origin", "null"),
        ("Access-Control-Request-Method", "POST"),
    ];
    let r = h.fetch("OPTIONS", "/echo/info", &headers, b"");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("null"));
    assert_eq!(r.header("Access-Control-Allow-Credentials"), Some("true"));
}

#[test]
fn preflight_without_origin_grants_star() {
    let mut h = Harness::echo();
    let r = h.fetch("OPTIONS", "/echo/a/b/xhr", &[], b"");
    assert_eq!(
        r.head,
        format!(
            "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\nVary: Origin\r\n\
             Cache-Control: public, max-age=31536000\r\nExpires: {EXPIRES_AT_START}\r\n\
             Access-Control-Allow-Methods: OPTIONS, POST\r\nAccess-Control-Max-Age: 31536000\r\n\r\n"
        )
    );
}

#[test]
fn session_url_preflights_allow_options_and_post() {
    let mut h = Harness::echo();
    for t in ["xhr", "xhr_send", "xhr_streaming"] {
        for origin in ["test", "null"] {
            let headers = [
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
            ];
            let r = h.fetch("OPTIONS", &format!("/echo/abc/abc/{t}"), &headers, b"");
            assert_eq!(r.status, 204, "{t}");
            assert_eq!(
                r.header("Access-Control-Allow-Methods"),
                Some("OPTIONS, POST")
            );
            assert_eq!(r.header("Access-Control-Max-Age"), Some("31536000"));
            assert_eq!(r.header("Cache-Control"), Some("public, max-age=31536000"));
            assert_eq!(r.header("Expires"), Some(EXPIRES_AT_START));
            assert_eq!(r.header("Access-Control-Allow-Origin"), Some(origin));
            assert!(r.body.is_empty() && !r.has("Content-Type") && !r.has("Content-Length"));
        }
    }
    // A preflight opens no session.
    assert_eq!(h.server.session_count(), 0);
    assert!(h.take_events().is_empty());
}

#[test]
fn preflight_echoes_request_headers_only_when_non_empty() {
    let mut h = Harness::echo();
    let with = [
        ("Origin", "test"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "a, b, c"),
    ];
    let r = h.fetch("OPTIONS", "/echo/000/x/xhr", &with, b"");
    assert_eq!(r.header("Access-Control-Allow-Headers"), Some("a, b, c"));
    assert_eq!(
        r.header_names()[..4],
        [
            "Access-Control-Allow-Origin",
            "Access-Control-Allow-Credentials",
            "Vary",
            "Access-Control-Allow-Headers"
        ]
    );

    let empty = [("Origin", "test"), ("Access-Control-Request-Headers", "")];
    let r = h.fetch("OPTIONS", "/echo/000/x/xhr", &empty, b"");
    assert_eq!(r.status, 204);
    assert!(!r.has("Access-Control-Allow-Headers"));

    let r = h.fetch("OPTIONS", "/echo/000/x/xhr", &[("Origin", "test")], b"");
    assert!(!r.has("Access-Control-Allow-Headers"));
}

#[test]
fn allowed_origins_refuse_other_origins_with_403() {
    let options = Options::default().allowed_origins(["https://good.example"]);
    let mut h = Harness::with_options(options);
    let r = h.fetch(
        "GET",
        "/echo/info",
        &[("Origin", "https://evil.example")],
        b"",
    );
    assert_eq!(
        r.head,
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=UTF-8\r\n\
         Content-Length: 18\r\n\r\n"
    );
    assert_eq!(r.text(), "Origin not allowed");
    let r = h.fetch(
        "POST",
        "/echo/0/s/xhr",
        &[("Origin", "https://evil.example")],
        b"",
    );
    assert_eq!(r.status, 403);
    assert_eq!(h.server.session_count(), 0);
    let r = h.fetch(
        "GET",
        "/echo/info",
        &[("Origin", "https://good.example")],
        b"",
    );
    assert_eq!(
        r.header("Access-Control-Allow-Origin"),
        Some("https://good.example")
    );
    // The greeting and the iframe page are not CORS resources.
    let r = h.fetch("GET", "/echo", &[("Origin", "https://evil.example")], b"");
    assert_eq!(r.status, 200);
}

const IFRAME_URL: &str = "http://localhost:8080/lib/sockjs.js";
const IFRAME_ETAG: &str = "\"4f732408563f2492d07dcf51cf0a56a0\"";

fn iframe_page(url: &str) -> String {
    format!(
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
    )
}

#[test]
fn iframe_page_is_cacheable_with_an_etag() {
    let mut h = Harness::with_options(Options::default().sockjs_url(IFRAME_URL));
    let r = h.get("/echo/iframe.html");
    let page = iframe_page(IFRAME_URL);
    assert_eq!(
        r.head,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\nETag: {IFRAME_ETAG}\r\n\
             Cache-Control: public, max-age=31536000\r\nExpires: {EXPIRES_AT_START}\r\n\
             Content-Length: {}\r\n\r\n",
            page.len()
        )
    );
    assert_eq!(r.text(), page);
    assert!(!r.has("Last-Modified") && !r.has("Set-Cookie"));
}

#[test]
fn iframe_default_url_loads_sockjs_client_1() {
    let mut h = Harness::echo();
    let r = h.get("/echo/iframe.html");
    assert_eq!(
        r.text(),
        iframe_page(sockjs_core::config::DEFAULT_SOCKJS_URL)
    );
    assert!(sockjs_core::config::DEFAULT_SOCKJS_URL.starts_with("https://"));
}

#[test]
fn iframe_sockjs_url_is_html_escaped() {
    let mut h = Harness::with_options(Options::default().sockjs_url("/x\"><script>&"));
    let r = h.get("/echo/iframe.html");
    assert!(
        r.text()
            .contains("<script src=\"/x&quot;&gt;&lt;script&gt;&amp;\"></script>")
    );
}

#[test]
fn iframe_versioned_and_queried_names_serve_the_same_page() {
    let mut h = Harness::with_options(Options::default().sockjs_url(IFRAME_URL));
    for suffix in [
        "/iframe-a.html",
        "/iframe-.html",
        "/iframe-0.1.2.html",
        "/iframe-0.1.2abc-dirty.2144.html",
        "/iframe-a.html?t=1234",
        "/iframe-0.1.2.html?t=123414",
        "/iframe-0.1.2abc-dirty.2144.html?t=qweqweq123",
        "/iframe.html/",
    ] {
        let r = h.get(&format!("/echo{suffix}"));
        assert_eq!(r.status, 200, "{suffix}");
        assert_eq!(r.header("ETag"), Some(IFRAME_ETAG));
        assert_eq!(r.text(), iframe_page(IFRAME_URL));
    }
}

#[test]
fn iframe_invalid_names_are_not_found() {
    let mut h = Harness::echo();
    for suffix in [
        "/iframe.htm",
        "/iframe",
        "/IFRAME.HTML",
        "/IFRAME",
        "/iframe.HTML",
        "/iframe.xml",
        "/iframe-/.html",
        "/iframe-A.html",
        "/iframe;.html",
    ] {
        let r = h.get(&format!("/echo{suffix}"));
        assert_eq!(r.head, NOT_FOUND, "{suffix}");
    }
}

#[test]
fn iframe_if_none_match_gives_304_without_body_or_content_type() {
    let mut h = Harness::with_options(Options::default().sockjs_url(IFRAME_URL));
    let r = h.fetch(
        "GET",
        "/echo/iframe.html",
        &[("If-None-Match", IFRAME_ETAG)],
        b"",
    );
    assert_eq!(
        r.head,
        format!(
            "HTTP/1.1 304 Not Modified\r\nETag: {IFRAME_ETAG}\r\n\
             Cache-Control: public, max-age=31536000\r\nExpires: {EXPIRES_AT_START}\r\n\r\n"
        )
    );
    assert!(r.body.is_empty());
    // Another tag gets the page.
    let r = h.fetch(
        "GET",
        "/echo/iframe.html",
        &[("If-None-Match", "\"other\"")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=UTF-8"));
}

#[test]
fn iframe_304_leaves_the_connection_ready_for_the_next_request() {
    let mut h = Harness::with_options(Options::default().sockjs_url(IFRAME_URL));
    let c = h.connect();
    h.request(
        c,
        "GET",
        "/echo/iframe.html",
        &[("If-None-Match", IFRAME_ETAG)],
        b"",
    );
    h.request(c, "GET", "/echo", &[], b"");
    assert_eq!(h.read_response(c).status, 304);
    assert_eq!(h.read_response(c).text(), "Welcome to SockJS!\n");
    h.assert_nothing_unread(c);
}

#[test]
fn greeting_iframe_and_info_set_no_cookie_even_when_cookie_needed() {
    let mut h = Harness::with_options(Options::default().cookie_needed(true));
    let cookie = [("Cookie", "JSESSIONID=abc")];
    for path in ["/echo", "/echo/iframe.html", "/echo/info"] {
        let r = h.fetch("GET", path, &cookie, b"");
        assert_eq!(r.status, 200, "{path}");
        assert!(!r.has("Set-Cookie"), "{path}");
    }
}

#[test]
fn session_preflight_sets_the_cookie_when_cookie_needed() {
    let mut h = Harness::with_options(Options::default().cookie_needed(true));
    let r = h.fetch("OPTIONS", "/echo/a/b/xhr", &[], b"");
    assert_eq!(r.status, 204);
    assert_eq!(
        r.headers[0],
        ("Set-Cookie".into(), "JSESSIONID=dummy; path=/".into())
    );
}

#[test]
fn websocket_disabled_makes_both_websocket_urls_404_for_get() {
    let mut h = Harness::with_options(Options::default().websocket(false));
    let headers = testing::ws_headers("13");
    for path in ["/echo/websocket", "/echo/0/0/websocket"] {
        let r = h.fetch("GET", path, &headers, b"");
        assert_eq!(
            r.head,
            format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: {TEXT}\r\n\
                 Cache-Control: public, max-age=31536000\r\nExpires: {EXPIRES_AT_START}\r\n\
                 Content-Length: 26\r\n\r\n"
            ),
            "{path}"
        );
        assert_eq!(r.text(), "404 Error: Page not found\n");
        // As in the reference server, only GET is routed there: other methods stay 405.
        let r = h.fetch("POST", path, &[], b"");
        assert_eq!(
            (r.status, r.header("Allow")),
            (405, Some("GET")),
            "POST {path}"
        );
    }
    assert!(
        h.get("/echo/info")
            .text()
            .starts_with("{\"websocket\":false,")
    );
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn an_origin_of_star_is_never_granted_with_credentials() {
    let mut h = Harness::echo();
    for origin in ["*", "", "http://a, http://b"] {
        let c = h.connect();
        h.request(c, "GET", "/echo/info", &[("Origin", origin)], b"");
        let r = h.read_response(c);
        assert_eq!(
            r.header("Access-Control-Allow-Origin"),
            Some("*"),
            "{origin:?}"
        );
        assert!(!r.has("Access-Control-Allow-Credentials"), "{origin:?}");
    }
}
