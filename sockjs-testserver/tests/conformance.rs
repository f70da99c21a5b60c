//! The adapter conformance suite: the same byte-level checks over real TCP against the test
//! server on every runtime, so a behaviour difference between adapters is a failing test.
//! Each test starts its own server process.

mod support;

use std::time::Duration;

use support::{Conn, TestServer, exchange, sid};

const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";

fn greeting_info_and_iframe(rt: &str) {
    let s = TestServer::start(rt);
    let r = exchange(s.addr, "GET", "/echo", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "Welcome to SockJS!\n"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    let r = exchange(
        s.addr,
        "GET",
        "/echo/info",
        &[("Origin", "http://a.test")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("cache-control"), Some(NO_CACHE));
    let text = r.text();
    assert!(
        text.starts_with(r#"{"websocket":true,"origins":["*:*"],"cookie_needed":false,"entropy":"#),
        "{text}"
    );
    let r = exchange(s.addr, "GET", "/disabled_websocket_echo/info", &[], b"");
    assert!(r.text().starts_with(r#"{"websocket":false,"#));
    let r = exchange(s.addr, "GET", "/cookie_needed_echo/info", &[], b"");
    assert!(r.text().contains(r#""cookie_needed":true"#));
    let r = exchange(s.addr, "GET", "/echo/iframe.html", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("etag"),
        Some("\"4f732408563f2492d07dcf51cf0a56a0\"")
    );
    assert_eq!(r.body.len(), 444);
    let r = exchange(
        s.addr,
        "GET",
        "/echo/iframe-1.2.3.html",
        &[("If-None-Match", "\"4f732408563f2492d07dcf51cf0a56a0\"")],
        b"",
    );
    assert_eq!(r.status, 304);
    assert_eq!(r.header("content-type"), None);
    assert_eq!(
        exchange(s.addr, "GET", "/echo/a/b/xhr;x", &[], b"").status,
        404
    );
    assert_eq!(exchange(s.addr, "GET", "/elsewhere", &[], b"").status, 404);
    let r = exchange(s.addr, "POST", "/echo", &[], b"");
    assert_eq!(
        (r.status, r.header("allow"), r.header("content-type")),
        (405, Some("GET"), None)
    );
}

fn xhr_polling_round_trip(rt: &str) {
    let s = TestServer::start(rt);
    let base = format!("/echo/000/{}", sid());
    let r = exchange(s.addr, "POST", &format!("{base}/xhr"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"o\n");
    assert_eq!(
        r.header("content-type"),
        Some("application/javascript; charset=UTF-8")
    );
    let r = exchange(
        s.addr,
        "POST",
        &format!("{base}/xhr_send"),
        &[],
        br#"["a","\u2028","</script>"]"#,
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    // The handler echoes each message as it takes it, so a poll may come before the last
    // echoes are queued: join the frames of successive polls (each holds at least one).
    let expected = br#""a","\u2028","</script>""#;
    let mut echoed = Vec::new();
    for _ in 0..3 {
        let r = exchange(s.addr, "POST", &format!("{base}/xhr"), &[], b"");
        let Some(frame) = r
            .body
            .strip_prefix(&b"a["[..])
            .and_then(|b| b.strip_suffix(&b"]\n"[..]))
        else {
            panic!(
                "not a message frame: {:?}",
                String::from_utf8_lossy(&r.body)
            );
        };
        if !echoed.is_empty() {
            echoed.push(b',');
        }
        echoed.extend_from_slice(frame);
        if echoed.len() >= expected.len() {
            break;
        }
    }
    assert_eq!(echoed, expected);
    for (body, text) in [
        (&b""[..], "Payload expected."),
        (b"[\"x", "Broken JSON encoding."),
        (b"[1]", "Broken JSON encoding."),
    ] {
        let r = exchange(s.addr, "POST", &format!("{base}/xhr_send"), &[], body);
        assert_eq!((r.status, r.text().as_str()), (500, text));
    }
    let r = exchange(
        s.addr,
        "POST",
        &format!("/echo/000/{}/xhr_send", sid()),
        &[],
        br#"["x"]"#,
    );
    assert_eq!(r.status, 404);
}

fn xhr_streaming_frames_and_response_limit(rt: &str) {
    let s = TestServer::start(rt);
    let base = format!("/echo/000/{}", sid());
    let mut c = Conn::open(s.addr);
    c.request("POST", &format!("{base}/xhr_streaming"), &[], b"");
    let r = c.head();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let mut prelude = vec![b'h'; 2048];
    prelude.push(b'\n');
    assert_eq!(c.chunk(), prelude);
    assert_eq!(c.chunk(), b"o\n");
    let msg = format!("\"{}\"", "x".repeat(128));
    for _ in 0..31 {
        let r = exchange(
            s.addr,
            "POST",
            &format!("{base}/xhr_send"),
            &[],
            format!("[{msg}]").as_bytes(),
        );
        assert_eq!(r.status, 204);
        assert_eq!(c.chunk(), format!("a[{msg}]\n").into_bytes());
    }
    // 4096 bytes of frames: the response ends; the session stays.
    assert_eq!(c.chunk(), b"");
    exchange(
        s.addr,
        "POST",
        &format!("{base}/xhr_send"),
        &[],
        br#"["y"]"#,
    );
    let r = exchange(s.addr, "POST", &format!("{base}/xhr"), &[], b"");
    assert_eq!(r.body, b"a[\"y\"]\n");
}

fn eventsource_htmlfile_jsonp(rt: &str) {
    let s = TestServer::start(rt);
    let base = format!("/echo/000/{}", sid());
    let mut es = Conn::open(s.addr);
    es.request("GET", &format!("{base}/eventsource"), &[], b"");
    let r = es.head();
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(es.chunk(), b"\r\n");
    assert_eq!(es.chunk(), b"data: o\r\n\r\n");
    exchange(
        s.addr,
        "POST",
        &format!("{base}/xhr_send"),
        &[],
        br#"["100%"]"#,
    );
    assert_eq!(es.chunk(), b"data: a[\"100%25\"]\r\n\r\n");
    drop(es);

    let base = format!("/echo/000/{}", sid());
    let mut hf = Conn::open(s.addr);
    hf.request("GET", &format!("{base}/htmlfile?c=%63b"), &[], b"");
    assert_eq!(
        hf.head().header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    let page = hf.chunk();
    assert!(page.len() > 1024);
    assert!(String::from_utf8_lossy(&page).contains("var c = parent.cb;"));
    assert_eq!(hf.chunk(), b"<script>\np(\"o\");\n</script>\r\n");
    exchange(
        s.addr,
        "POST",
        &format!("{base}/xhr_send"),
        &[],
        br#"["</script>"]"#,
    );
    assert_eq!(
        hf.chunk(),
        br#"<script>
p("a[\"\u003c/script\u003e\"]");
</script>"#
            .iter()
            .chain(b"\r\n")
            .copied()
            .collect::<Vec<_>>()
    );
    drop(hf);

    let base = format!("/echo/000/{}", sid());
    let r = exchange(s.addr, "GET", &format!("{base}/jsonp?c=x"), &[], b"");
    assert_eq!(r.body, b"/**/x(\"o\");\r\n");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = exchange(
        s.addr,
        "POST",
        &format!("{base}/jsonp_send"),
        &form,
        b"d=%5B%22x%22%5D",
    );
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    let r = exchange(s.addr, "GET", &format!("{base}/jsonp?c=x"), &[], b"");
    assert_eq!(r.body, b"/**/x(\"a[\\\"x\\\"]\");\r\n");
    let r = exchange(s.addr, "GET", &format!("{base}/jsonp?c=a(b"), &[], b"");
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "invalid \"callback\" parameter")
    );
}

fn one_receiver_at_a_time_and_abort(rt: &str) {
    let s = TestServer::start(rt);
    let base = format!("/echo/000/{}", sid());
    assert_eq!(
        exchange(s.addr, "POST", &format!("{base}/xhr"), &[], b"").body,
        b"o\n"
    );
    let mut parked = Conn::open(s.addr);
    parked.request("POST", &format!("{base}/xhr"), &[], b"");
    std::thread::sleep(Duration::from_millis(100));
    let r = exchange(s.addr, "POST", &format!("{base}/xhr"), &[], b"");
    assert_eq!(r.body, b"c[2010,\"Another connection still open\"]\n");
    drop(parked);
    std::thread::sleep(Duration::from_millis(100));
    let r = exchange(s.addr, "POST", &format!("{base}/xhr"), &[], b"");
    assert_eq!(r.body, b"c[1002,\"Connection interrupted\"]\n");
}

fn app_close_is_repeated(rt: &str) {
    let s = TestServer::start(rt);
    let base = format!("/close/000/{}", sid());
    assert_eq!(
        exchange(s.addr, "POST", &format!("{base}/xhr"), &[], b"").body,
        b"o\n"
    );
    for _ in 0..2 {
        let r = exchange(s.addr, "POST", &format!("{base}/xhr"), &[], b"");
        assert_eq!(r.body, b"c[3000,\"Go away!\"]\n");
    }
}

fn http10_streaming_and_http11_pipelining(rt: &str) {
    let s = TestServer::start(rt);
    let mut c = Conn::open(s.addr);
    c.send(
        format!(
            "POST /close/000/{}/xhr_streaming HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
            sid()
        )
        .as_bytes(),
    );
    let r = c.head();
    assert_eq!(
        (r.header("transfer-encoding"), r.header("content-length")),
        (None, None)
    );
    let rest = c.read_to_end();
    let mut expected = vec![b'h'; 2048];
    expected.extend_from_slice(b"\no\nc[3000,\"Go away!\"]\n");
    assert_eq!(rest, expected);

    let mut c = Conn::open(s.addr);
    c.send(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\nGET /echo/info HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.response().body, b"Welcome to SockJS!\n");
    assert!(c.response().text().starts_with("{\"websocket\":true"));
}

fn websocket_transport(rt: &str) {
    let s = TestServer::start(rt);
    let mut ws = Conn::websocket(s.addr, &format!("/echo/000/{}/websocket", sid()));
    assert_eq!(ws.ws_read_text(), "o");
    ws.ws_text("");
    ws.ws_text("[]");
    ws.ws_text(r#"["a","\ud83d\ude00"]"#);
    let echoed = ws.ws_read_text();
    assert!(
        echoed == r#"a["a","\ud83d\ude00"]"# || echoed == r#"a["a"]"#,
        "{echoed}"
    );
    if echoed == r#"a["a"]"# {
        assert_eq!(ws.ws_read_text(), r#"a["\ud83d\ude00"]"#);
    }
    ws.ws_send(9, b"ping!");
    assert_eq!(ws.ws_read(), (10, b"ping!".to_vec()));
    ws.ws_text("[\"a");
    let (op, payload) = ws.ws_read();
    assert_eq!(op, 8);
    assert_eq!(&payload[..2], &3000u16.to_be_bytes());
    assert!(ws.is_closed());

    let mut ws = Conn::websocket(s.addr, &format!("/close/000/{}/websocket", sid()));
    assert_eq!(ws.ws_read_text(), "o");
    assert_eq!(ws.ws_read_text(), "c[3000,\"Go away!\"]");
    let (op, _) = ws.ws_read();
    assert_eq!(op, 8);
    ws.ws_send(8, &1000u16.to_be_bytes());
    assert!(ws.is_closed());
}

fn raw_websocket_and_hixie76(rt: &str) {
    let s = TestServer::start(rt);
    let mut ws = Conn::websocket(s.addr, "/echo/websocket");
    ws.ws_text("Hello world!\u{ffff}");
    assert_eq!(ws.ws_read_text(), "Hello world!\u{ffff}");
    let mut ws = Conn::websocket(s.addr, "/close/websocket");
    let (op, payload) = ws.ws_read();
    assert_eq!(op, 8);
    assert_eq!(payload, [&3000u16.to_be_bytes()[..], b"Go away!"].concat());

    let mut c = Conn::open(s.addr);
    let path = format!("/echo/000/{}/websocket", sid());
    c.request(
        "GET",
        &path,
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "WebSocket"),
            ("Origin", "http://127.0.0.1"),
            ("Sec-WebSocket-Key1", "4 @1  46546xW%0l 1 5"),
            ("Sec-WebSocket-Key2", "12998 5 Y3 1  .P00"),
        ],
        b"",
    );
    let r = c.head();
    assert_eq!(r.status, 101);
    assert_eq!(
        r.header("sec-websocket-location"),
        Some(format!("ws://127.0.0.1{path}").as_str())
    );
    assert_eq!(r.header("content-length"), None);
    c.send(b"aaaaaaaa");
    assert_eq!(c.take(16), b"\xca4\x00\xd8\xa5\x08G\x97,\xd5qZ\xba\xbfC{");
    assert_eq!(c.take(3), b"\x00o\xff");
    c.send(b"\x00[\"hi\"]\xff");
    assert_eq!(c.take(9), b"\x00a[\"hi\"]\xff");
}

fn websocket_upgrade_errors(rt: &str) {
    let s = TestServer::start(rt);
    let path = format!("/echo/000/{}/websocket", sid());
    let r = exchange(s.addr, "GET", &path, &[], b"");
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "Can \"Upgrade\" only to \"WebSocket\".")
    );
    let r = exchange(
        s.addr,
        "GET",
        &path,
        &[("Upgrade", "WebSocket"), ("Connection", "close")],
        b"",
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "\"Connection\" must be \"Upgrade\".")
    );
    let r = exchange(
        s.addr,
        "POST",
        &path,
        &[("Upgrade", "WebSocket"), ("Connection", "Upgrade")],
        b"",
    );
    assert_eq!((r.status, r.header("content-type")), (405, None));
    let r = exchange(
        s.addr,
        "GET",
        "/disabled_websocket_echo/websocket",
        &[],
        b"",
    );
    assert_eq!(r.status, 404);
    // An Upgrade header where no WebSocket is served is answered normally.
    let r = exchange(
        s.addr,
        "GET",
        "/echo/info",
        &[("Upgrade", "websocket"), ("Connection", "Upgrade")],
        b"",
    );
    assert_eq!(r.status, 200);
}

fn jsessionid_cookie(s: &TestServer) {
    let r = exchange(
        s.addr,
        "POST",
        &format!("/cookie_needed_echo/000/{}/xhr", sid()),
        &[("Cookie", "JSESSIONID=abc")],
        b"",
    );
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=abc; path=/"));
    let r = exchange(
        s.addr,
        "POST",
        &format!("/cookie_needed_echo/000/{}/xhr", sid()),
        &[],
        b"",
    );
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=dummy; path=/"));
}

fn cookies(rt: &str) {
    jsessionid_cookie(&TestServer::start(rt));
}

fn cookies_broadcast_and_amplify(rt: &str) {
    let s = TestServer::start(rt);
    jsessionid_cookie(&s);
    let mut a = Conn::websocket(s.addr, &format!("/broadcast/000/{}/websocket", sid()));
    let mut b = Conn::websocket(s.addr, &format!("/broadcast/000/{}/websocket", sid()));
    assert_eq!(a.ws_read_text(), "o");
    assert_eq!(b.ws_read_text(), "o");
    std::thread::sleep(Duration::from_millis(100)); // both handlers registered
    a.ws_text(r#"["hello all"]"#);
    assert_eq!(a.ws_read_text(), r#"a["hello all"]"#);
    assert_eq!(b.ws_read_text(), r#"a["hello all"]"#);

    let mut amp = Conn::websocket(s.addr, &format!("/amplify/000/{}/websocket", sid()));
    assert_eq!(amp.ws_read_text(), "o");
    amp.ws_text(r#"["17"]"#);
    assert_eq!(
        amp.ws_read_text(),
        format!("a[\"{}\"]", "x".repeat(1 << 17))
    );
}

fn hostile_requests_then_normal_service(rt: &str) {
    let s = TestServer::start(rt);
    let mut c = Conn::open(s.addr);
    c.send(format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000)).as_bytes());
    assert_eq!(c.response().status, 431);
    let mut c = Conn::open(s.addr);
    c.send(b"POST /echo/0/x/xhr_send HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(c.response().status, 400);
    let mut c = Conn::open(s.addr);
    c.send(b"POST /echo/0/x/xhr_send HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n");
    assert_eq!(c.response().status, 413);
    let mut c = Conn::open(s.addr);
    c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n");
    assert_eq!(c.response().status, 400);
    assert!(c.is_closed());
    let r = exchange(
        s.addr,
        "POST",
        &format!("/echo/000/{}/xhr", sid()),
        &[],
        b"",
    );
    assert_eq!(r.body, b"o\n");
}

fn graceful_shutdown_on_sigterm(rt: &str) {
    let mut s = TestServer::start(rt);
    let mut c = Conn::open(s.addr);
    c.request(
        "POST",
        &format!("/echo/000/{}/xhr_streaming", sid()),
        &[],
        b"",
    );
    c.head();
    c.chunk();
    assert_eq!(c.chunk(), b"o\n");
    assert!(s.terminate(), "exited after SIGTERM");
    assert_eq!(c.chunk(), b"c[1001,\"Server shutting down\"]\n");
    assert_eq!(c.chunk(), b"");
}

macro_rules! conformance {
    ($($runtime:ident => $name:literal),* $(,)?) => {$(
        mod $runtime {
            #[test] fn greeting_info_and_iframe() { super::greeting_info_and_iframe($name) }
            #[test] fn xhr_polling_round_trip() { super::xhr_polling_round_trip($name) }
            #[test] fn xhr_streaming_frames_and_response_limit() { super::xhr_streaming_frames_and_response_limit($name) }
            #[test] fn eventsource_htmlfile_jsonp() { super::eventsource_htmlfile_jsonp($name) }
            #[test] fn one_receiver_at_a_time_and_abort() { super::one_receiver_at_a_time_and_abort($name) }
            #[test] fn app_close_is_repeated() { super::app_close_is_repeated($name) }
            #[test] fn http10_streaming_and_http11_pipelining() { super::http10_streaming_and_http11_pipelining($name) }
            #[test] fn websocket_transport() { super::websocket_transport($name) }
            #[test] fn raw_websocket_and_hixie76() { super::raw_websocket_and_hixie76($name) }
            #[test] fn websocket_upgrade_errors() { super::websocket_upgrade_errors($name) }
            #[test] fn cookies_broadcast_and_amplify() { super::cookies_broadcast_and_amplify($name) }
            #[test] fn hostile_requests_then_normal_service() { super::hostile_requests_then_normal_service($name) }
            #[test] fn graceful_shutdown_on_sigterm() { super::graceful_shutdown_on_sigterm($name) }
        }
    )*};
    // A host serving only some of the test server's endpoints: the tests listed.
    ($runtime:ident => $name:literal: $($test:ident),* $(,)?) => {
        mod $runtime {
            $(#[test] fn $test() { super::$test($name) })*
        }
    };
}

conformance!(tokio => "tokio", async_std => "async-std", smol => "smol");

// Through axum (`--via axum`). Not here: the parsing limits of
// hostile_requests_then_normal_service, which are hyper's for paths outside SockJS.
conformance!(axum => "axum":
    greeting_info_and_iframe,
    xhr_polling_round_trip,
    xhr_streaming_frames_and_response_limit,
    eventsource_htmlfile_jsonp,
    graceful_shutdown_on_sigterm,
    one_receiver_at_a_time_and_abort,
    app_close_is_repeated,
    http10_streaming_and_http11_pipelining,
    websocket_transport,
    raw_websocket_and_hixie76,
    websocket_upgrade_errors,
    cookies_broadcast_and_amplify,
);

// sockjs-core's example host: no /broadcast, /amplify or /ticker, and no SIGTERM handling.
conformance!(event_loop => "event_loop":
    greeting_info_and_iframe,
    xhr_polling_round_trip,
    xhr_streaming_frames_and_response_limit,
    eventsource_htmlfile_jsonp,
    one_receiver_at_a_time_and_abort,
    app_close_is_repeated,
    http10_streaming_and_http11_pipelining,
    websocket_transport,
    raw_websocket_and_hixie76,
    websocket_upgrade_errors,
    cookies,
    hostile_requests_then_normal_service,
);
