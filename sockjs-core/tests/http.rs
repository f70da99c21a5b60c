//! HTTP/1.x at the connection level: versions and persistence, pipelining, `Expect:
//! 100-continue`, request limits, the request and keep-alive timeouts, and the connection
//! limit.

use sockjs_core::testing::{self, After, Harness, limits, ms, secs, session_url};
use sockjs_core::{Event, Options};

const GREETING: &str = "Welcome to SockJS!\n";

/// The bytes of a response refusing a request at the HTTP level.
fn refusal(status_line: &str, text: &str) -> String {
    format!(
        "HTTP/1.1 {status_line}\r\nContent-Type: text/plain; charset=UTF-8\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{text}\n",
        text.len() + 1
    )
}

// ----- versions and persistence -----

#[test]
fn http_1_0_keep_alive_gets_content_length_and_the_connection_stays() {
    let mut h = Harness::echo();
    let c = h.connect();
    for _ in 0..2 {
        h.send_bytes(c, b"GET /echo HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        let r = h.read_response(c);
        assert_eq!(
            r.head,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\n\
             Connection: keep-alive\r\nContent-Length: 19\r\n\r\n"
        );
        assert_eq!(r.text(), GREETING);
        assert_eq!(h.closed(c), None);
    }
}

#[test]
fn http_1_0_without_keep_alive_closes_after_the_response() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(c, b"GET /echo HTTP/1.0\r\n\r\n");
    assert_eq!(
        h.take_unread(c),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nConnection: close\r\n\
          Content-Length: 19\r\n\r\nWelcome to SockJS!\n"
    );
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn http_1_0_streaming_is_close_delimited_and_closes_after() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(
        c,
        b"POST /echo/000/s/xhr_streaming HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    );
    let head = h.read_head(c);
    assert_eq!(
        head.head,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/javascript; charset=UTF-8\r\n\
             Cache-Control: {}\r\nAccess-Control-Allow-Origin: *\r\nVary: Origin\r\n\
             Connection: close\r\n\r\n",
            testing::NO_CACHE
        )
    );
    assert!(!head.has("Content-Length") && !head.has("Transfer-Encoding"));
    assert_eq!(
        h.read_exact(c, 2049),
        format!("{}\n", "h".repeat(2048)).as_bytes()
    );
    assert_eq!(h.read_exact(c, 2), b"o\n");
    let s = h.opened();
    h.app_send(s, "x");
    assert_eq!(h.read_exact(c, 7), b"a[\"x\"]\n");
    assert_eq!(h.closed(c), None);
    h.app_close(s, 3000, "Go away!");
    assert_eq!(h.take_unread(c), b"c[3000,\"Go away!\"]\n");
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn http_1_0_polling_keeps_content_length_and_keep_alive() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(
        c,
        b"POST /echo/000/s/xhr HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    let r = h.read_response(c);
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    assert_eq!(r.header("Content-Length"), Some("2"));
    assert_eq!(r.text(), "o\n");
    assert_eq!(h.closed(c), None);
}

#[test]
fn http_1_1_keeps_the_connection_alive_by_default() {
    let mut h = Harness::echo();
    let c = h.connect();
    for path in ["/echo", "/echo/info", "/echo"] {
        h.request(c, "GET", path, &[("Connection", "Keep-Alive")], b"");
        let r = h.read_response(c);
        assert_eq!(r.status, 200, "{path}");
        assert!(!r.has("Connection"));
    }
    assert_eq!(h.closed(c), None);
}

#[test]
fn http_1_1_connection_close_is_honoured() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", "/echo", &[("Connection", "close")], b"");
    let r = h.read_response(c);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn http_1_1_streaming_ends_with_the_last_chunk_and_the_connection_serves_again() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let c = h.open_streaming(&url);
    h.chunk(c);
    let s = h.opened();
    h.app_close(s, 3000, "Go away!");
    assert_eq!(h.chunk(c), "c[3000,\"Go away!\"]\n");
    assert_eq!(h.unread(c), b"0\r\n\r\n");
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
    h.request(c, "GET", "/echo", &[], b"");
    assert_eq!(h.read_response(c).text(), GREETING);
}

#[test]
fn unsupported_http_versions_are_refused() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(c, b"GET /echo HTTP/2.0\r\n\r\n");
    assert_eq!(
        h.take_unread(c),
        refusal(
            "505 HTTP Version Not Supported",
            "HTTP version not supported"
        )
        .as_bytes()
    );
    assert_eq!(h.closed(c), Some(After::Close));
}

// ----- pipelining -----

#[test]
fn two_pipelined_requests_in_one_write_are_answered_in_order() {
    let mut h = Harness::echo();
    let c = h.connect();
    let mut bytes = testing::request_bytes("GET", "/echo", &[], b"");
    bytes.extend(testing::request_bytes("GET", "/echo/info", &[], b""));
    bytes.extend(testing::request_bytes("POST", "/echo/000/s/xhr", &[], b""));
    h.send_bytes(c, &bytes);
    assert_eq!(h.read_response(c).text(), GREETING);
    assert!(h.read_response(c).text().starts_with("{\"websocket\":true"));
    assert_eq!(h.read_response(c).text(), "o\n");
    h.assert_nothing_unread(c);
}

#[test]
fn requests_split_at_every_byte_are_served_the_same() {
    let mut h = Harness::echo();
    let mut bytes = testing::request_bytes("POST", "/echo/000/s/xhr", &[], b"");
    bytes.extend(testing::request_bytes("GET", "/echo", &[], b""));
    let c = h.connect();
    for b in &bytes {
        h.send_bytes(c, std::slice::from_ref(b));
    }
    assert_eq!(h.read_response(c).text(), "o\n");
    assert_eq!(h.read_response(c).text(), GREETING);
}

#[test]
fn request_pipelined_behind_a_parked_poll_is_answered_after_the_poll_ends() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let c = h.connect();
    let mut bytes = testing::request_bytes("POST", &format!("{url}/xhr"), &[], b"");
    bytes.extend(testing::request_bytes("GET", "/echo", &[], b""));
    h.send_bytes(c, &bytes);
    h.assert_nothing_unread(c);
    h.app_send(s, "x");
    assert_eq!(h.read_response(c).text(), "a[\"x\"]\n");
    assert_eq!(h.read_response(c).text(), GREETING);
    h.assert_nothing_unread(c);
}

#[test]
fn request_pipelined_behind_a_poll_ended_by_a_heartbeat_is_answered() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let c = h.connect();
    let mut bytes = testing::request_bytes("POST", &format!("{url}/xhr"), &[], b"");
    bytes.extend(testing::request_bytes("GET", "/echo", &[], b""));
    h.send_bytes(c, &bytes);
    h.advance(secs(25));
    assert_eq!(h.read_response(c).text(), "h\n");
    assert_eq!(h.read_response(c).text(), GREETING);
}

#[test]
fn request_pipelined_behind_a_stream_is_answered_when_it_ends() {
    let mut h = Harness::with_options(Options::default().response_limit(8));
    let c = h.connect();
    let mut bytes = testing::request_bytes("POST", "/echo/000/s/xhr_streaming", &[], b"");
    bytes.extend(testing::request_bytes("GET", "/echo", &[], b""));
    h.send_bytes(c, &bytes);
    let r = h.read_head(c);
    assert_eq!(r.status, 200);
    h.chunk(c);
    assert_eq!(h.chunk(c), "o\n");
    assert_eq!(h.read_chunk(c), None);
    let s = h.opened();
    h.app_send(s, "abc");
    assert_eq!(h.chunk(c), "a[\"abc\"]\n");
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
    assert_eq!(h.read_response(c).text(), GREETING);
}

#[test]
fn pipelined_requests_wait_while_their_answers_are_unread() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.stop_reading(c);
    let one = testing::request_bytes("GET", "/echo", &[], b"");
    let n = 2000; // about 300 KB of answers, more than the output may hold
    h.send_bytes(c, &one.repeat(n));
    let max = sockjs_core::Limits::default().max_unflushed_bytes + 1024;
    assert!(h.in_flight(c) <= max, "{} bytes held", h.in_flight(c));
    h.resume_reading(c);
    for _ in 0..n {
        assert_eq!(h.read_response(c).text(), GREETING);
    }
    h.assert_nothing_unread(c);
}

#[test]
fn requests_pipelined_past_unread_answers_are_bounded() {
    let limits = limits(|l| {
        l.max_unflushed_bytes = 1024;
        l.max_head_size = 1024;
        l.max_body_size = 1024;
    });
    let mut h = Harness::with_limits(Options::default(), limits);
    let c = h.connect();
    h.stop_reading(c);
    let one = testing::request_bytes("GET", "/echo", &[], b"");
    while h.closed(c).is_none() {
        h.send_bytes(c, &one);
        assert!(
            h.in_flight(c) <= 2048 + 1024,
            "{} bytes held",
            h.in_flight(c)
        );
    }
    assert_eq!(h.closed(c), Some(After::Abort));
}

#[test]
fn pipelining_past_a_parked_poll_is_bounded() {
    let limits = limits(|l| {
        l.max_head_size = 1024;
        l.max_body_size = 1024;
    });
    let mut h = Harness::with_limits(Options::default(), limits);
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let c = h.connect();
    h.request(c, "POST", &format!("{url}/xhr"), &[], b"");
    h.send_bytes(c, &[b'x'; 2048]);
    h.assert_nothing_unread(c);
    assert_eq!(h.closed(c), None);
    h.send_bytes(c, b"x");
    assert_eq!(h.closed(c), Some(After::Abort));
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: s,
            reason: sockjs_core::CloseReason::Interrupted
        }]
    );
}

// ----- Expect: 100-continue -----

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let c = h.connect();
    h.send_bytes(
        c,
        b"POST /echo/000/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\
          Expect: 100-continue\r\n\r\n",
    );
    assert_eq!(h.take_unread(c), b"HTTP/1.1 100 Continue\r\n\r\n");
    h.send_bytes(c, b"[\"a\"]");
    assert_eq!(h.read_response(c).status, 204);
    assert_eq!(h.messages(s), ["a"]);
}

#[test]
fn expect_100_continue_with_the_body_already_sent_gets_no_interim_response() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let c = h.connect();
    h.request(
        c,
        "POST",
        &format!("{url}/xhr_send"),
        &[("Expect", "100-continue")],
        b"[\"a\"]",
    );
    let r = h.read_response(c);
    assert_eq!(r.status, 204);
    h.assert_nothing_unread(c);
}

// ----- limits -----

#[test]
fn head_larger_than_max_head_size_is_431_and_closes() {
    let limits = limits(|l| {
        l.max_head_size = 1024;
    });
    let mut h = Harness::with_limits(Options::default(), limits);
    let c = h.connect();
    let mut head = b"GET /echo HTTP/1.1\r\nX-Big: ".to_vec();
    head.extend_from_slice(&[b'a'; 990]);
    h.send_bytes(c, &head);
    assert_eq!(h.closed(c), None, "1,017 bytes so far: might still fit");
    h.assert_nothing_unread(c);
    h.send_bytes(c, b"b");
    h.assert_nothing_unread(c);
    h.send_bytes(c, &[b'a'; 100]);
    assert_eq!(
        h.take_unread(c),
        refusal(
            "431 Request Header Fields Too Large",
            "Request header too large"
        )
        .as_bytes()
    );
    assert_eq!(h.closed(c), Some(After::Close));
    // Bytes after the close go nowhere.
    h.send_bytes(c, b"\r\n\r\nGET /echo HTTP/1.1\r\n\r\n");
    h.assert_nothing_unread(c);
}

#[test]
fn complete_head_larger_than_max_head_size_is_431() {
    let limits = limits(|l| {
        l.max_head_size = 64;
    });
    let mut h = Harness::with_limits(Options::default(), limits);
    let c = h.connect();
    h.request(c, "GET", "/echo", &[("X-Pad", &"p".repeat(40))], b"");
    assert_eq!(h.read_response(c).status, 431);
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn too_many_headers_is_431() {
    let limits = limits(|l| {
        l.max_headers = 4;
    });
    let mut h = Harness::with_limits(Options::default(), limits);
    let headers = [("A", "1"), ("B", "2"), ("C", "3")];
    assert_eq!(h.fetch("GET", "/echo", &headers, b"").status, 200);
    let c = h.connect();
    let headers = [("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")];
    h.request(c, "GET", "/echo", &headers, b"");
    assert_eq!(
        h.take_unread(c),
        refusal(
            "431 Request Header Fields Too Large",
            "Too many request headers"
        )
        .as_bytes()
    );
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn body_larger_than_max_body_size_is_413_before_it_arrives() {
    let limits = limits(|l| {
        l.max_body_size = 100;
    });
    let mut h = Harness::with_limits(Options::default(), limits);
    let url = session_url("s");
    h.xhr(&url);
    let c = h.connect();
    h.send_bytes(
        c,
        b"POST /echo/000/s/xhr_send HTTP/1.1\r\nContent-Length: 101\r\n\r\n",
    );
    assert_eq!(
        h.take_unread(c),
        refusal("413 Content Too Large", "Payload too large").as_bytes()
    );
    assert_eq!(h.closed(c), Some(After::Close));
    // Exactly the limit is fine.
    let body = format!("[\"{}\"]", "x".repeat(96));
    assert_eq!(body.len(), 100);
    assert_eq!(
        h.post(&format!("{url}/xhr_send"), body.as_bytes()).status,
        204
    );
}

#[test]
fn chunked_body_larger_than_max_body_size_is_413() {
    let limits = limits(|l| {
        l.max_body_size = 100;
    });
    let mut h = Harness::with_limits(Options::default(), limits);
    h.xhr(&session_url("s"));
    let c = h.connect();
    h.send_bytes(
        c,
        b"POST /echo/000/s/xhr_send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n",
    );
    h.send_bytes(c, &[b' '; 64]);
    h.send_bytes(c, b"\r\n40\r\n");
    assert_eq!(h.read_response(c).status, 413);
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn malformed_requests_are_400_and_close() {
    for bytes in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /echo HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET echo HTTP/1.1\r\n\r\n",
    ] {
        let mut h = Harness::echo();
        let c = h.connect();
        h.send_bytes(c, bytes);
        assert_eq!(
            h.take_unread(c),
            refusal("400 Bad Request", "Bad request").as_bytes()
        );
        assert_eq!(h.closed(c), Some(After::Close));
    }
}

#[test]
fn conflicting_lengths_are_400_and_unknown_codings_501() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(
        c,
        b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    );
    assert_eq!(
        h.take_unread(c),
        refusal("400 Bad Request", "Conflicting or invalid message framing").as_bytes()
    );
    let c = h.connect();
    h.send_bytes(
        c,
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
    );
    assert_eq!(h.read_response(c).status, 400);
    let c = h.connect();
    h.send_bytes(c, b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert_eq!(
        h.take_unread(c),
        refusal("501 Not Implemented", "Unsupported transfer encoding").as_bytes()
    );
    assert_eq!(h.closed(c), Some(After::Close));
}

// ----- timeouts -----

#[test]
fn slow_head_gets_408_request_timeout_from_its_first_byte() {
    let mut h = Harness::echo();
    let c = h.connect();
    let head = b"GET /echo HTTP/1.1\r\nHost: slow\r\nX-Slow: ........................";
    // One byte a second: the 15th second after the first byte is the limit.
    for b in &head[..15] {
        h.send_bytes(c, std::slice::from_ref(b));
        h.advance(secs(1) - ms(1));
        h.assert_nothing_unread(c);
        h.advance(ms(1));
    }
    assert_eq!(
        h.take_unread(c),
        refusal("408 Request Timeout", "Request timeout").as_bytes()
    );
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn request_finished_inside_the_timeout_is_served_and_the_next_one_is_timed_afresh() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(c, b"GET /echo HTTP/1.1\r\n");
    h.advance(secs(15) - ms(1));
    h.send_bytes(c, b"\r\n");
    assert_eq!(h.read_response(c).text(), GREETING);
    h.advance(secs(10));
    h.send_bytes(c, b"GET /echo HTTP/1.1\r\n");
    h.advance(secs(15) - ms(1));
    assert_eq!(h.closed(c), None);
    h.advance(ms(1));
    assert_eq!(h.read_response(c).status, 408);
}

#[test]
fn slow_body_counts_towards_the_request_timeout() {
    let mut h = Harness::echo();
    h.xhr(&session_url("s"));
    let c = h.connect();
    h.send_bytes(
        c,
        b"POST /echo/000/s/xhr_send HTTP/1.1\r\nContent-Length: 5\r\n\r\n[",
    );
    h.advance(secs(14));
    h.send_bytes(c, b"\"a");
    h.advance(secs(1));
    assert_eq!(h.read_response(c).status, 408);
}

#[test]
fn keep_alive_connection_idle_for_the_timeout_is_closed() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", "/echo", &[], b"");
    h.read_response(c);
    h.advance(secs(60) - ms(1));
    assert_eq!(h.closed(c), None);
    h.advance(ms(1));
    assert_eq!(h.closed(c), Some(After::Close));
    h.assert_nothing_unread(c);
    // Shut down, it lingers (input is read and dropped) for `linger_timeout`, then closes.
    assert!(h.server.is_connection(c));
    h.send_bytes(c, b"late bytes are dropped");
    h.assert_nothing_unread(c);
    h.advance(secs(2) - ms(1));
    assert!(h.server.is_connection(c));
    h.advance(ms(1));
    assert!(!h.server.is_connection(c));
    assert_eq!(h.server.connection_count(), 0);
    assert_eq!(h.server.poll_timeout(), None, "no deadline is left behind");
}

#[test]
fn keep_alive_timeout_restarts_with_each_request_and_is_configurable() {
    let limits = limits(|l| {
        l.keep_alive_timeout = secs(5);
    });
    let mut h = Harness::with_limits(Options::default(), limits);
    let c = h.connect();
    for _ in 0..4 {
        h.advance(secs(5) - ms(1));
        h.request(c, "GET", "/echo", &[], b"");
        h.read_response(c);
    }
    h.advance(secs(5) - ms(1));
    assert_eq!(h.closed(c), None);
    h.advance(ms(1));
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn connection_that_never_sends_is_closed_after_the_keep_alive_timeout() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.advance(secs(60) - ms(1));
    assert_eq!(h.closed(c), None);
    h.advance(ms(1));
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn blank_lines_between_requests_do_not_start_the_request_timer() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(c, b"\r\n");
    h.advance(secs(30));
    assert_eq!(h.closed(c), None);
    h.send_bytes(c, b"\r\nGET /echo HTTP/1.1\r\n\r\n");
    assert_eq!(h.read_response(c).text(), GREETING);
}

#[test]
fn no_idle_timeout_while_a_response_is_streaming() {
    let mut h = Harness::echo();
    let c = h.open_streaming(&session_url("s"));
    h.chunk(c);
    h.advance(secs(600));
    assert_eq!(h.closed(c), None);
    assert_eq!(h.chunk(c), "h\n");
}

// ----- connection limit -----

#[test]
fn connections_past_max_connections_get_503_and_are_closed() {
    let limits = limits(|l| {
        l.max_connections = 2;
    });
    let mut h = Harness::with_limits(Options::default(), limits);
    let a = h.connect();
    let b = h.connect();
    let c = h.connect();
    assert_eq!(
        h.take_unread(c),
        refusal("503 Service Unavailable", "Server busy").as_bytes()
    );
    assert_eq!(h.closed(c), Some(After::Close));
    // It lingers until its client, having read the 503, ends its side.
    h.client_eof(c);
    assert!(!h.server.is_connection(c));
    assert_eq!(h.server.connection_count(), 2);
    for conn in [a, b] {
        h.request(conn, "GET", "/echo", &[], b"");
        assert_eq!(h.read_response(conn).text(), GREETING);
    }
    h.client_closes(a);
    let d = h.connect();
    h.request(d, "GET", "/echo", &[], b"");
    assert_eq!(h.read_response(d).text(), GREETING);
}

#[test]
fn a_chunk_extension_outside_the_grammar_is_a_400_and_closes() {
    let mut h = Harness::echo();
    h.xhr(&session_url("s"));
    h.opened();
    for ext in ["3;x=\"a", "3;x\u{1}", "3;=y", "3 x"] {
        let c = h.connect();
        let head = format!(
            "POST {}/xhr_send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{ext}\r\n",
            session_url("s")
        );
        h.send_bytes(c, head.as_bytes());
        assert_eq!(h.read_response(c).status, 400, "{ext:?}");
        assert_eq!(h.closed(c), Some(After::Close), "{ext:?}");
    }
    let c = h.connect();
    let ok = format!(
        "POST {}/xhr_send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;n=\"v\"\r\n[\"x\"]\r\n0\r\n\r\n",
        session_url("s")
    );
    h.send_bytes(c, ok.as_bytes());
    assert_eq!(h.read_response(c).status, 204);
}
