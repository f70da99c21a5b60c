//! Hostile clients over real TCP: each bad input that broke other SockJS servers, and each
//! limit, gets its answer (status or close), and a normal client is served right after.

mod support;

use std::time::Duration;

use support::{Conn, TestServer, WS_HEADERS, exchange, sid};

/// A normal client gets a normal session.
fn still_serving(s: &TestServer) {
    let r = exchange(
        s.addr,
        "POST",
        &format!("/echo/000/{}/xhr", sid()),
        &[],
        b"",
    );
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"o\n"[..]),
        "normal service after the attack"
    );
}

fn upgrade_headers_on_every_http_route(rt: &str) {
    let s = TestServer::start(rt);
    let up = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let base = format!("/echo/000/{}", sid());
    for (method, path, status) in [
        ("GET", "/echo".to_string(), 200),
        ("GET", "/echo/info".into(), 200),
        ("OPTIONS", "/echo/info".into(), 204),
        ("GET", "/echo/iframe.html".into(), 200),
        ("POST", format!("{base}/xhr"), 200),
        ("POST", format!("{base}/xhr_send"), 500),
        ("GET", format!("/echo/000/{}/jsonp?c=x", sid()), 200),
        ("GET", "/nowhere".into(), 404),
    ] {
        let r = exchange(s.addr, method, &path, &up, b"");
        assert_eq!(r.status, status, "{method} {path}");
    }
    still_serving(&s);
}

fn pathological_websocket_extensions(rt: &str) {
    let s = TestServer::start(rt);
    // A long, backtracking-bait extension list: parsed in linear time or ignored, never
    // negotiated.
    let ext = format!(
        "permessage-deflate; {}x",
        "client_max_window_bits, ".repeat(500)
    );
    let mut c = Conn::open(s.addr);
    c.request(
        "GET",
        &format!("/echo/000/{}/websocket", sid()),
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Extensions", &ext),
        ],
        b"",
    );
    let r = c.head();
    assert_eq!(r.status, 101);
    assert_eq!(r.header("sec-websocket-extensions"), None);
    assert_eq!(c.ws_read_text(), "o");
    still_serving(&s);
}

fn callback_injection_and_reflected_file_download(rt: &str) {
    let s = TestServer::start(rt);
    for cb in [
        "alert(1)//",
        "a%3Bb",
        "%3Cscript%3E",
        "a%20b",
        &"a".repeat(33),
        "",
    ] {
        for t in ["jsonp", "htmlfile"] {
            let r = exchange(
                s.addr,
                "GET",
                &format!("/echo/000/{}/{t}?c={cb}", sid()),
                &[],
                b"",
            );
            assert_eq!(r.status, 500, "{t} c={cb}");
            assert_eq!(r.text(), "invalid \"callback\" parameter");
        }
    }
    for t in [
        "xhr;x",
        "jsonp;setup.bat",
        "xhr.bat",
        "xhr_send;.cmd",
        "htmlfile%3B.bat",
    ] {
        for method in ["GET", "POST"] {
            let r = exchange(
                s.addr,
                method,
                &format!("/echo/000/{}/{t}", sid()),
                &[],
                b"",
            );
            assert_eq!(r.status, 404, "{method} {t}");
        }
    }
    still_serving(&s);
}

fn non_string_json_values(rt: &str) {
    let s = TestServer::start(rt);
    let base = format!("/echo/000/{}", sid());
    exchange(s.addr, "POST", &format!("{base}/xhr"), &[], b"");
    for body in [
        &b"[1]"[..],
        b"[null]",
        b"{}",
        b"[{}]",
        b"[[\"a\"]]",
        b"true",
        b"\"x\"",
        b"[\"a\",1]",
    ] {
        let r = exchange(s.addr, "POST", &format!("{base}/xhr_send"), &[], body);
        assert_eq!(
            (r.status, r.text().as_str()),
            (500, "Broken JSON encoding."),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = exchange(
        s.addr,
        "POST",
        &format!("{base}/jsonp_send"),
        &form,
        b"d=%5B1%5D",
    );
    assert_eq!(r.status, 500);
    // Nothing reached the application: the session is intact and empty.
    exchange(
        s.addr,
        "POST",
        &format!("{base}/xhr_send"),
        &[],
        br#"["ok"]"#,
    );
    assert_eq!(
        exchange(s.addr, "POST", &format!("{base}/xhr"), &[], b"").body,
        b"a[\"ok\"]\n"
    );
    for bad in ["[1]", "[null]", "{}", "1"] {
        let mut ws = Conn::websocket(s.addr, &format!("/echo/000/{}/websocket", sid()));
        assert_eq!(ws.ws_read_text(), "o");
        ws.ws_text(bad);
        let (op, _) = ws.ws_read();
        assert_eq!(op, 8, "{bad} closes the WebSocket");
    }
    still_serving(&s);
}

fn credentials_never_with_a_wildcard_origin(rt: &str) {
    let s = TestServer::start(rt);
    for (method, path) in [
        ("GET", "/echo/info".to_string()),
        ("OPTIONS", "/echo/info".into()),
        ("POST", format!("/echo/000/{}/xhr", sid())),
    ] {
        let r = exchange(s.addr, method, &path, &[], b"");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.header("access-control-allow-credentials"), None);
    }
    let a = exchange(s.addr, "GET", "/echo/info", &[], b"").text();
    let b = exchange(s.addr, "GET", "/echo/info", &[], b"").text();
    assert_ne!(a, b, "entropy differs between calls");
}

fn oversized_heads_bodies_and_frames(rt: &str) {
    let s = TestServer::start(rt);
    let mut c = Conn::open(s.addr);
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    c.send(format!("GET /echo HTTP/1.1\r\n{many}\r\n").as_bytes());
    assert_eq!(c.response().status, 431);
    assert!(c.is_closed());
    let mut c = Conn::open(s.addr);
    c.send(
        format!(
            "GET /echo HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "b".repeat(17 * 1024)
        )
        .as_bytes(),
    );
    assert_eq!(c.response().status, 431);
    // A chunked body announcing more than the limit is refused at the chunk's size line.
    let mut c = Conn::open(s.addr);
    c.send(b"POST /echo/0/x/xhr_send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n500000\r\n");
    assert_eq!(c.response().status, 413);
    // A WebSocket frame over the 1 MiB limit is refused from its header.
    let mut ws = Conn::websocket(s.addr, &format!("/echo/000/{}/websocket", sid()));
    assert_eq!(ws.ws_read_text(), "o");
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(2u64 * 1024 * 1024).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    ws.send(&header);
    let (op, payload) = ws.ws_read();
    assert_eq!((op, &payload[..2]), (8, &1009u16.to_be_bytes()[..]));
    // Unmasked client frames are a protocol error.
    let mut ws = Conn::websocket(s.addr, &format!("/echo/000/{}/websocket", sid()));
    assert_eq!(ws.ws_read_text(), "o");
    ws.send(b"\x81\x02[]");
    let (op, payload) = ws.ws_read();
    assert_eq!((op, &payload[..2]), (8, &1002u16.to_be_bytes()[..]));
    still_serving(&s);
}

/// `--limit` reaches the server: each limit set on the command line is the one enforced.
fn limits_from_the_command_line(rt: &str) {
    let s = TestServer::start_with(
        rt,
        &[
            "--limit",
            "max_sessions=1",
            "--limit=max_body_size=64",
            "--limit",
            "max_headers=4",
        ],
        &[],
    );
    let first = sid();
    let r = exchange(s.addr, "POST", &format!("/echo/000/{first}/xhr"), &[], b"");
    assert_eq!((r.status, r.text()), (200, "o\n".to_string()));
    let r = exchange(
        s.addr,
        "POST",
        &format!("/echo/000/{}/xhr", sid()),
        &[],
        b"",
    );
    assert_eq!(r.status, 503, "a second session past max_sessions=1");
    let send = format!("/echo/000/{first}/xhr_send");
    let r = exchange(
        s.addr,
        "POST",
        &send,
        &[],
        format!("[\"{}\"]", "a".repeat(70)).as_bytes(),
    );
    assert_eq!(r.status, 413, "a body past max_body_size=64");
    let r = exchange(s.addr, "POST", &send, &[], b"[\"fits\"]");
    assert_eq!(r.status, 204);
    let r = exchange(s.addr, "POST", &format!("/echo/000/{first}/xhr"), &[], b"");
    assert_eq!(r.text(), "a[\"fits\"]\n");
    let many = [
        ("X-A", "1"),
        ("X-B", "2"),
        ("X-C", "3"),
        ("X-D", "4"),
        ("X-E", "5"),
    ];
    let r = exchange(s.addr, "GET", "/echo/info", &many, b"");
    assert_eq!(r.status, 431, "more headers than max_headers=4");
}

/// `/auth_echo` opens sessions only for `Cookie: auth=ok`; the rest get 403 on their first
/// receiving request or handshake, and the server serves everyone else throughout.
fn authorization_refuses_before_a_session_opens(rt: &str) {
    let s = TestServer::start(rt);
    let ok = [("Cookie", "theme=dark; auth=ok")];
    let bad = [("Cookie", "auth=no")];
    for headers in [&bad[..], &[]] {
        for (method, transport) in [
            ("POST", "xhr"),
            ("POST", "xhr_streaming"),
            ("GET", "eventsource"),
        ] {
            let path = format!("/auth_echo/000/{}/{transport}", sid());
            let r = exchange(s.addr, method, &path, headers, b"");
            assert_eq!(
                (r.status, r.text()),
                (403, "Forbidden".to_string()),
                "{path}"
            );
        }
        let mut ws = Conn::open(s.addr);
        let mut h = headers.to_vec();
        h.extend(WS_HEADERS);
        ws.request(
            "GET",
            &format!("/auth_echo/000/{}/websocket", sid()),
            &h,
            b"",
        );
        assert_eq!(ws.response().status, 403);
    }
    // /info stays public.
    assert_eq!(
        exchange(s.addr, "GET", "/auth_echo/info", &[], b"").status,
        200
    );
    // With the cookie: a session that echoes, on polling and on WebSocket.
    let url = format!("/auth_echo/000/{}", sid());
    let r = exchange(s.addr, "POST", &format!("{url}/xhr"), &ok, b"");
    assert_eq!(r.text(), "o\n");
    let r = exchange(
        s.addr,
        "POST",
        &format!("{url}/xhr_send"),
        &ok,
        b"[\"hey\"]",
    );
    assert_eq!(r.status, 204);
    let r = exchange(s.addr, "POST", &format!("{url}/xhr"), &ok, b"");
    assert_eq!(r.text(), "a[\"hey\"]\n");
    let mut ws = Conn::open(s.addr);
    let mut h = ok.to_vec();
    h.extend(WS_HEADERS);
    ws.request(
        "GET",
        &format!("/auth_echo/000/{}/websocket", sid()),
        &h,
        b"",
    );
    assert_eq!(ws.head().status, 101);
    assert_eq!(ws.ws_read_text(), "o");
    ws.ws_text("[\"ws\"]");
    assert_eq!(ws.ws_read_text(), "a[\"ws\"]");
    still_serving(&s);
}

/// Per-address limits refuse one address past its share and serve every other one.
fn per_peer_limits(rt: &str) {
    let s = TestServer::start_with(
        rt,
        &[
            "--limit",
            "max_connections_per_peer=3",
            "--limit",
            "max_sessions_per_peer=1",
        ],
        &[],
    );
    let a: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let b: std::net::IpAddr = "127.0.0.3".parse().unwrap();
    let held: Vec<Conn> = (0..3).map(|_| Conn::open_from(s.addr, a)).collect();
    // The fourth from the same address is refused and closed, whatever it asks.
    let mut fourth = Conn::open_from(s.addr, a);
    fourth.request("GET", "/echo", &[], b"");
    let r = fourth.response();
    assert_eq!(
        (r.status, r.text()),
        (503, "Too many connections from this address\n".to_string())
    );
    assert!(fourth.is_closed());
    // Another address is served meanwhile.
    let mut other = Conn::open_from(s.addr, b);
    other.request("GET", "/echo", &[], b"");
    assert_eq!(other.response().text(), "Welcome to SockJS!\n");
    for mut c in held {
        c.request("GET", "/echo", &[], b"");
        assert_eq!(c.response().status, 200);
    }
    // One session per address: the second from `b` gets 503, on polling and WebSocket.
    let mut c = Conn::open_from(s.addr, b);
    c.request("POST", &format!("/echo/000/{}/xhr", sid()), &[], b"");
    assert_eq!(c.response().text(), "o\n");
    c.request("POST", &format!("/echo/000/{}/xhr", sid()), &[], b"");
    let r = c.response();
    assert_eq!(
        (r.status, r.text()),
        (503, "Too many sessions from this address".to_string())
    );
    let mut ws = Conn::open_from(s.addr, b);
    let path = format!("/echo/000/{}/websocket", sid());
    let headers = WS_HEADERS;
    ws.request("GET", &path, &headers, b"");
    assert_eq!(ws.response().status, 503);
    still_serving(&s);
}

fn a_client_that_stops_reading_is_cut_off(rt: &str) {
    let s = TestServer::start(rt);
    // Ask for 256 KiB answers over a WebSocket and never read them: the session's queue
    // fills and the server closes it instead of buffering without bound.
    let mut ws = Conn::websocket(s.addr, &format!("/amplify/000/{}/websocket", sid()));
    assert_eq!(ws.ws_read_text(), "o");
    ws.stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    for _ in 0..200 {
        ws.ws_text(r#"["18","18","18","18"]"#);
    }
    // Meanwhile, others are served; the stalled client reads nothing for a while, so the
    // session's queue fills.
    for _ in 0..10 {
        still_serving(&s);
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut got = Vec::new();
    let mut closed = false;
    ws.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut error = None;
    loop {
        let n = match std::io::Read::read(&mut ws.stream, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        if n == 0 {
            closed = true;
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.len() > 64 * 1024 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        closed,
        "the connection was closed: {error:?} after {} bytes, close frame seen: {}",
        got.len(),
        text.contains("c[1013")
    );
    assert!(text.contains("c[1013,\"Send queue full\"]"), "told why");
    assert!(got.len() < 16 * 1024 * 1024, "bounded: {} bytes", got.len());
}

fn slow_headers_do_not_block_others(rt: &str) {
    let s = TestServer::start(rt);
    let mut slow = Conn::open(s.addr);
    for b in b"GET /echo HTTP/1.1\r\nHost: x" {
        slow.send(&[*b]);
        std::thread::sleep(Duration::from_millis(5));
        if b % 7 == 0 {
            still_serving(&s);
        }
    }
    slow.send(b"\r\n\r\n");
    assert_eq!(slow.response().status, 200);
}

macro_rules! hostile {
    ($($runtime:ident => $name:literal),* $(,)?) => {$(
        mod $runtime {
            #[test] fn upgrade_headers_on_every_http_route() { super::upgrade_headers_on_every_http_route($name) }
            #[test] fn pathological_websocket_extensions() { super::pathological_websocket_extensions($name) }
            #[test] fn callback_injection_and_reflected_file_download() { super::callback_injection_and_reflected_file_download($name) }
            #[test] fn non_string_json_values() { super::non_string_json_values($name) }
            #[test] fn credentials_never_with_a_wildcard_origin() { super::credentials_never_with_a_wildcard_origin($name) }
            #[test] fn oversized_heads_bodies_and_frames() { super::oversized_heads_bodies_and_frames($name) }
            #[test] fn a_client_that_stops_reading_is_cut_off() { super::a_client_that_stops_reading_is_cut_off($name) }
            #[test] fn slow_headers_do_not_block_others() { super::slow_headers_do_not_block_others($name) }
            #[test] fn limits_from_the_command_line() { super::limits_from_the_command_line($name) }
            #[test] fn per_peer_limits() { super::per_peer_limits($name) }
            #[test] fn authorization_refuses_before_a_session_opens() { super::authorization_refuses_before_a_session_opens($name) }
        }
    )*};
    // A host serving only some of the test server's endpoints: the tests listed.
    ($runtime:ident => $name:literal: $($test:ident),* $(,)?) => {
        mod $runtime {
            $(#[test] fn $test() { super::$test($name) })*
        }
    };
}

hostile!(tokio => "tokio", async_std => "async-std", smol => "smol");

// sockjs-core's example host: everything but /amplify.
hostile!(event_loop => "event_loop":
    upgrade_headers_on_every_http_route,
    pathological_websocket_extensions,
    callback_injection_and_reflected_file_download,
    non_string_json_values,
    credentials_never_with_a_wildcard_origin,
    oversized_heads_bodies_and_frames,
    slow_headers_do_not_block_others,
);
