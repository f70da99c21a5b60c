//! WebSockets: RFC 6455 handshakes (versions 13, 8, 7) and hixie-76, upgrade errors, SockJS
//! frames over WebSocket, pings, heartbeats and closing handshakes, and the raw
//! `/websocket` endpoint.

use sockjs_core::testing::{
    self, After, Harness, HixieFrame, SUITE_WS_ACCEPT, WsFrame, limits, ms, secs, ws_frame,
    ws_headers,
};
use sockjs_core::{CloseReason, Event, Options};

const WS_URL: &str = "/echo/000/s/websocket";

/// Opens a SockJS WebSocket and reads the open frame; returns the connection and session.
fn open(h: &mut Harness) -> (sockjs_core::ConnectionId, sockjs_core::SessionId) {
    let c = h.ws_connect(WS_URL);
    assert_eq!(h.ws_text(c), "o");
    let s = h.opened();
    (c, s)
}

fn closed(s: sockjs_core::SessionId, reason: CloseReason) -> Event {
    Event::Closed { session: s, reason }
}

// ----- RFC 6455 handshake -----

#[test]
fn rfc6455_handshake_answers_the_suites_key_without_content_length() {
    let mut h = Harness::echo();
    let c = h.connect();
    let headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Origin", "http://asd"),
        ("Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw=="),
    ];
    h.request(c, "GET", WS_URL, &headers, b"");
    assert_eq!(
        h.take_unread(c),
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n\r\n\x81\x01o"
    );
    assert_eq!(SUITE_WS_ACCEPT, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

#[test]
fn versions_13_8_and_7_are_accepted() {
    let mut h = Harness::echo();
    for version in ["13", "8", "7"] {
        let c = h.connect();
        h.request(c, "GET", WS_URL, &ws_headers(version), b"");
        let r = h.read_head(c);
        assert_eq!(r.status, 101, "{version}");
        assert_eq!(r.header("Sec-WebSocket-Accept"), Some(SUITE_WS_ACCEPT));
        assert_eq!(h.ws_text(c), "o");
    }
}

#[test]
fn header_tokens_are_matched_case_insensitively_in_lists() {
    let mut h = Harness::echo();
    let c = h.connect();
    let headers = [
        ("Upgrade", "WebSocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", testing::SUITE_WS_KEY),
    ];
    h.request(c, "GET", WS_URL, &headers, b"");
    assert_eq!(h.read_head(c).status, 101);
}

#[test]
fn unsupported_version_is_426_and_closes() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", WS_URL, &ws_headers("12"), b"");
    assert_eq!(
        h.take_unread(c),
        b"HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=UTF-8\r\n\
          Sec-WebSocket-Version: 13, 8, 7\r\nConnection: close\r\nContent-Length: 30\r\n\r\n\
          Unsupported WebSocket version."
    );
    assert_eq!(h.closed(c), Some(After::Close));
    assert_eq!(h.server.session_count(), 0);
}

fn error_400(text: &str) -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=UTF-8\r\n\
         Content-Length: {}\r\n\r\n{text}",
        text.len()
    )
}

#[test]
fn plain_get_on_a_websocket_url_is_400_upgrade_only() {
    let mut h = Harness::echo();
    for path in [WS_URL, "/echo/websocket"] {
        let c = h.connect();
        h.request(c, "GET", path, &[], b"");
        assert_eq!(
            testing::lossy(&h.take_unread(c)),
            error_400("Can \"Upgrade\" only to \"WebSocket\"."),
            "{path}"
        );
        let c = h.connect();
        h.request(
            c,
            "GET",
            path,
            &[("Upgrade", "h2c"), ("Connection", "Upgrade")],
            b"",
        );
        assert_eq!(
            h.read_response(c).text(),
            "Can \"Upgrade\" only to \"WebSocket\"."
        );
    }
}

#[test]
fn upgrade_without_connection_upgrade_is_400() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(
        c,
        "GET",
        WS_URL,
        &[("Upgrade", "WebSocket"), ("Connection", "keep-alive")],
        b"",
    );
    assert_eq!(
        testing::lossy(&h.take_unread(c)),
        error_400("\"Connection\" must be \"Upgrade\".")
    );
    assert_eq!(h.closed(c), None);
    // With `Connection: close` the refusal also closes.
    let c = h.connect();
    h.request(
        c,
        "GET",
        WS_URL,
        &[("Upgrade", "WebSocket"), ("Connection", "close")],
        b"",
    );
    let r = h.read_response(c);
    assert_eq!(
        (r.status, r.text()),
        (400, "\"Connection\" must be \"Upgrade\".")
    );
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn missing_key_is_400() {
    let mut h = Harness::echo();
    let c = h.connect();
    let headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
    ];
    h.request(c, "GET", WS_URL, &headers, b"");
    assert_eq!(
        testing::lossy(&h.take_unread(c)),
        error_400("Missing \"Sec-WebSocket-Key\".")
    );
}

#[test]
fn pathological_extensions_header_is_ignored() {
    let mut h = Harness::echo();
    let c = h.connect();
    let ext = "permessage-deflate; ".repeat(400) + &",".repeat(4000);
    let mut headers = ws_headers("13");
    headers.push(("Sec-WebSocket-Extensions", &ext));
    h.request(c, "GET", WS_URL, &headers, b"");
    let r = h.read_head(c);
    assert_eq!(r.status, 101);
    assert!(!r.has("Sec-WebSocket-Extensions"));
}

#[test]
fn frames_sent_with_the_handshake_are_read() {
    let mut h = Harness::echo();
    let c = h.connect();
    let mut bytes = testing::request_bytes("GET", WS_URL, &ws_headers("13"), b"");
    bytes.extend(ws_frame(true, 1, br#"["early"]"#));
    h.send_bytes(c, &bytes);
    assert_eq!(h.read_head(c).status, 101);
    assert_eq!(h.ws_text(c), "o");
    let s = h.opened();
    assert_eq!(h.messages(s), ["early"]);
}

// ----- SockJS frames over WebSocket -----

#[test]
fn messages_in_and_out_as_sockjs_frames() {
    let mut h = Harness::echo();
    let (c, s) = open(&mut h);
    h.ws_send_text(c, r#"["a","b"]"#);
    h.ws_send_text(c, r#""c""#);
    assert_eq!(h.messages(s), ["a", "b", "c"]);
    h.app_send(s, "a");
    assert_eq!(h.take_unread(c), b"\x81\x06a[\"a\"]");
    h.app_send(s, "\u{1f600}\"");
    assert_eq!(h.ws_text(c), r#"a["\ud83d\ude00\""]"#);
}

#[test]
fn long_frames_use_extended_lengths() {
    let mut h = Harness::echo();
    let (c, s) = open(&mut h);
    let long = "x".repeat(70_000);
    h.app_send(s, &"y".repeat(200));
    h.app_send(s, &long);
    let frame = h.ws_read(c).unwrap();
    assert_eq!(frame.payload.len(), 205);
    assert_eq!(h.ws_text(c), format!("a[\"{long}\"]"));
    // Client frames with 16- and 64-bit lengths are read too.
    h.ws_send_text(c, &format!("[\"{long}\"]"));
    h.ws_send_text(c, &format!("[\"{}\"]", "z".repeat(300)));
    assert_eq!(h.messages(s), [long, "z".repeat(300)]);
}

#[test]
fn fragmented_client_messages_are_joined() {
    let mut h = Harness::echo();
    let (c, s) = open(&mut h);
    let mut bytes = ws_frame(false, 1, b"[\"ab");
    bytes.extend(ws_frame(true, 9, b"p")); // a ping between the fragments
    bytes.extend(ws_frame(true, 0, b"c\"]"));
    h.send_bytes(c, &bytes);
    assert_eq!(h.messages(s), ["abc"]);
    assert_eq!(h.ws_read_all(c), [WsFrame::control(10, b"p")]);
}

#[test]
fn empty_frames_and_empty_arrays_are_ignored() {
    let mut h = Harness::echo();
    let (c, s) = open(&mut h);
    h.ws_send_text(c, "");
    h.ws_send_text(c, "[]");
    h.ws_send_text(c, " [ ] ");
    assert!(h.take_events().is_empty());
    h.ws_send_text(c, r#"["a"]"#);
    assert_eq!(h.messages(s), ["a"]);
    assert_eq!(h.closed(c), None);
}

#[test]
fn broken_json_closes_the_connection() {
    for bad in [
        r#"["a"#,
        "[1]",
        "[null]",
        "{}",
        "1",
        "null",
        r#"["a"]x"#,
        "[\"a\",]",
    ] {
        let mut h = Harness::echo();
        let (c, s) = open(&mut h);
        h.ws_send_text(c, bad);
        assert_eq!(
            h.ws_read_all(c),
            [WsFrame::close(3000, "Broken framing.")],
            "{bad}"
        );
        assert_eq!(h.closed(c), Some(After::Close), "{bad}");
        assert_eq!(
            h.take_events(),
            [closed(s, CloseReason::ProtocolError("Broken framing."))]
        );
        assert_eq!(h.server.session_count(), 0);
    }
}

#[test]
fn binary_messages_close_with_1003() {
    let mut h = Harness::echo();
    let (c, s) = open(&mut h);
    h.ws_send(c, 2, b"\x01\x02");
    assert_eq!(
        h.ws_read_all(c),
        [WsFrame::close(1003, "Binary messages are not supported")]
    );
    assert_eq!(h.closed(c), Some(After::Close));
    assert_eq!(
        h.take_events(),
        [closed(
            s,
            CloseReason::ProtocolError("Binary messages are not supported")
        )]
    );
}

#[test]
fn unmasked_client_frames_and_oversized_frames_close() {
    let mut h = Harness::echo();
    let (c, _) = open(&mut h);
    h.send_bytes(c, b"\x81\x02[]");
    let frames = h.ws_read_all(c);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].opcode, 8);
    assert_eq!(&frames[0].payload[..2], 1002u16.to_be_bytes());
    assert_eq!(h.closed(c), Some(After::Close));

    let limits = limits(|l| {
        l.max_frame_size = 16;
    });
    let mut h = Harness::with_limits(Options::default(), limits);
    let (c, s) = open(&mut h);
    // 16 bytes of payload pass, 17 do not.
    h.ws_send_text(c, &format!("[\"{}\"]", "x".repeat(12)));
    assert_eq!(h.messages(s), ["x".repeat(12)]);
    h.ws_send_text(c, &format!("[\"{}\"]", "x".repeat(13)));
    assert_eq!(h.ws_read_all(c), [WsFrame::close(1009, "frame too big")]);
    assert_eq!(
        h.take_events(),
        [closed(s, CloseReason::ProtocolError("frame too big"))]
    );
}

#[test]
fn fragmented_messages_past_max_message_size_close_with_1009() {
    let l = limits(|l| l.max_message_size = 16);
    let mut h = Harness::with_limits(Options::default(), l);
    let (c, s) = open(&mut h);
    let mut bytes = ws_frame(false, 1, b"[\"0123456");
    bytes.extend(ws_frame(true, 0, b"789ab\"]"));
    h.send_bytes(c, &bytes);
    assert_eq!(h.messages(s), ["0123456789ab"]);
    let mut bytes = ws_frame(false, 1, b"[\"0123456");
    bytes.extend(ws_frame(true, 0, b"789abc\"]"));
    h.send_bytes(c, &bytes);
    assert_eq!(h.ws_read_all(c), [WsFrame::close(1009, "message too big")]);
    assert_eq!(h.closed(c), Some(After::Close));
    assert_eq!(
        h.take_events(),
        [closed(s, CloseReason::ProtocolError("message too big"))]
    );
}

#[test]
fn allowed_origins_refuse_websockets_from_other_origins() {
    let mut h = Harness::with_options(Options::default().allowed_origins(["http://good"]));
    for path in [WS_URL, "/echo/websocket"] {
        let c = h.connect();
        let mut headers = ws_headers("13");
        headers.push(("Origin", "http://evil"));
        h.request(c, "GET", path, &headers, b"");
        let r = h.read_response(c);
        assert_eq!((r.status, r.text()), (403, "Origin not allowed"), "{path}");
        let c = h.connect();
        let mut headers = hixie_headers();
        headers.retain(|(n, _)| *n != "Origin");
        headers.push(("Origin", "http://evil"));
        h.request(c, "GET", path, &headers, b"");
        assert_eq!(h.read_response(c).status, 403, "hixie {path}");
    }
    assert_eq!(h.server.session_count(), 0);
    let c = h.connect();
    let mut headers = ws_headers("13");
    headers.push(("Origin", "http://good"));
    h.request(c, "GET", WS_URL, &headers, b"");
    assert_eq!(h.read_head(c).status, 101);
}

#[test]
fn ping_is_answered_with_pong() {
    let mut h = Harness::echo();
    let (c, _) = open(&mut h);
    h.ws_send(c, 9, b"are you there");
    assert_eq!(h.ws_read_all(c), [WsFrame::control(10, b"are you there")]);
    h.ws_send(c, 10, b"unsolicited");
    assert!(h.ws_read_all(c).is_empty());
}

#[test]
fn pings_from_a_peer_that_reads_no_pongs_are_bounded() {
    let mut h = Harness::echo();
    let (c, _) = open(&mut h);
    h.stop_reading(c);
    let payload = [b'p'; 125];
    for _ in 0..10_000 {
        h.ws_send(c, 9, &payload);
    }
    // 1.27 MB of pongs were asked for; the output stops at the limit plus one pong.
    let max = sockjs_core::Limits::default().max_unflushed_bytes + 127;
    assert!(h.in_flight(c) <= max, "{} bytes held", h.in_flight(c));
    h.resume_reading(c);
    h.ws_send(c, 9, b"again");
    let frames = h.ws_read_all(c);
    assert_eq!(frames.last(), Some(&WsFrame::control(10, b"again")));
}

#[test]
fn heartbeat_sends_h_and_a_ping_and_a_pong_keeps_the_session() {
    let mut h = Harness::echo();
    let (c, _) = open(&mut h);
    h.advance(secs(25) - ms(1));
    assert!(h.ws_read_all(c).is_empty());
    h.advance(ms(1));
    assert_eq!(
        h.ws_read_all(c),
        [WsFrame::text("h"), WsFrame::control(9, b"")]
    );
    h.advance(secs(9));
    h.ws_send(c, 10, b"");
    h.advance(secs(16));
    assert_eq!(
        h.ws_read_all(c),
        [WsFrame::text("h"), WsFrame::control(9, b"")]
    );
    assert!(h.take_events().is_empty());
    // Any frame shows the peer is alive, not only a pong.
    h.advance(secs(5));
    h.ws_send_text(c, "[]");
    h.advance(secs(20));
    assert_eq!(
        h.ws_read_all(c),
        [WsFrame::text("h"), WsFrame::control(9, b"")]
    );
    assert!(h.take_events().is_empty());
    assert_eq!(h.server.session_count(), 1);
}

#[test]
fn unanswered_heartbeat_ping_closes_the_session() {
    let mut h = Harness::echo();
    let (c, s) = open(&mut h);
    h.advance(secs(25));
    assert_eq!(
        h.ws_read_all(c),
        [WsFrame::text("h"), WsFrame::control(9, b"")]
    );
    h.advance(secs(10) - ms(1));
    assert!(h.take_events().is_empty());
    h.advance(ms(1));
    assert_eq!(h.take_events(), [closed(s, CloseReason::HeartbeatTimeout)]);
    assert_eq!(
        h.ws_read_all(c),
        [
            WsFrame::text("c[3000,\"No response from heartbeat\"]"),
            WsFrame::close(1000, "Normal closure")
        ]
    );
    // The peer does not answer the close either: the connection goes after close_timeout.
    h.advance(secs(5) - ms(1));
    assert_eq!(h.closed(c), None);
    h.advance(ms(1));
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn heartbeat_ping_can_be_disabled() {
    let mut h = Harness::with_options(Options::default().websocket_ping_timeout(None));
    let (c, _) = open(&mut h);
    h.advance(secs(100));
    assert_eq!(h.ws_read_all(c), vec![WsFrame::text("h"); 4]);
    assert!(h.take_events().is_empty());
}

#[test]
fn client_close_frame_is_echoed_and_closes() {
    let mut h = Harness::echo();
    let (c, s) = open(&mut h);
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    h.ws_send(c, 8, &payload);
    assert_eq!(h.take_unread(c), b"\x88\x02\x03\xe8");
    assert_eq!(h.closed(c), Some(After::Close));
    assert_eq!(
        h.take_events(),
        [closed(
            s,
            CloseReason::ClientClosed {
                code: 1000,
                reason: "bye".into()
            }
        )]
    );
    assert_eq!(
        h.try_app_send(s, "late"),
        Err(sockjs_core::Error::SessionClosed)
    );
}

#[test]
fn client_close_without_a_code_is_1005() {
    let mut h = Harness::echo();
    let (c, s) = open(&mut h);
    h.ws_send(c, 8, b"");
    assert_eq!(h.take_unread(c), b"\x88\x00");
    assert_eq!(
        h.take_events(),
        [closed(
            s,
            CloseReason::ClientClosed {
                code: 1005,
                reason: String::new()
            }
        )]
    );
}

#[test]
fn lost_connection_is_1006() {
    let mut h = Harness::echo();
    let (c, s) = open(&mut h);
    h.client_closes(c);
    assert_eq!(
        h.take_events(),
        [closed(
            s,
            CloseReason::ClientClosed {
                code: 1006,
                reason: String::new()
            }
        )]
    );
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn app_close_sends_the_close_frame_then_a_websocket_close() {
    let mut h = Harness::echo();
    let (c, s) = open(&mut h);
    h.app_send(s, "last");
    h.app_close(s, 3000, "Go away!");
    assert_eq!(
        h.ws_read_all(c),
        [
            WsFrame::text("a[\"last\"]"),
            WsFrame::text("c[3000,\"Go away!\"]"),
            WsFrame::close(1000, "Normal closure"),
        ]
    );
    assert_eq!(h.closed(c), None, "waiting for the peer's close");
    // Frames after our close are ignored; the peer's close ends the connection.
    h.ws_send_text(c, r#"["ignored"]"#);
    h.ws_send(c, 8, &1000u16.to_be_bytes());
    assert!(h.ws_read_all(c).is_empty(), "no second close frame");
    assert_eq!(h.closed(c), Some(After::Close));
    assert_eq!(
        h.take_events(),
        [closed(
            s,
            CloseReason::Application {
                code: 3000,
                reason: "Go away!".into()
            }
        )]
    );
}

#[test]
fn websocket_sessions_may_share_an_id() {
    let mut h = Harness::echo();
    let (a, sa) = open(&mut h);
    let (b, sb) = open(&mut h);
    assert_ne!(sa, sb);
    h.ws_send_text(a, r#"["a"]"#);
    h.ws_send_text(b, r#"["b"]"#);
    assert_eq!(
        h.take_events(),
        [
            Event::Message {
                session: sa,
                connection: a,
                text: "a".into()
            },
            Event::Message {
                session: sb,
                connection: b,
                text: "b".into()
            }
        ]
    );
    h.client_closes(a);
    h.client_closes(b);
    h.take_events();
    let (_, sc) = open(&mut h);
    assert_ne!(sc, sa);
    // An HTTP session on the same id is a different session.
    assert_eq!(h.xhr("/echo/000/s"), "o\n");
}

// ----- hixie-76 -----

const KEY1: &str = "4 @1  46546xW%0l 1 5";
const KEY2: &str = "12998 5 Y3 1  .P00";
const HIXIE_ANSWER: &[u8; 16] = b"\xca4\x00\xd8\xa5\x08G\x97,\xd5qZ\xba\xbfC{";

fn hixie_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Connection", "Upgrade"),
        ("Upgrade", "WebSocket"),
        ("Origin", "http://localhost"),
        ("Sec-WebSocket-Key1", KEY1),
        ("Sec-WebSocket-Key2", KEY2),
    ]
}

#[test]
fn hixie76_sends_the_101_before_the_key_bytes_arrive() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", WS_URL, &hixie_headers(), b"");
    assert_eq!(
        testing::lossy(&h.take_unread(c)),
        "HTTP/1.1 101 WebSocket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Origin: http://localhost\r\n\
         Sec-WebSocket-Location: ws://test/echo/000/s/websocket\r\n\r\n"
    );
    assert!(h.take_events().is_empty(), "no session before the key");
    h.send_bytes(c, b"aaa");
    h.assert_nothing_unread(c);
    h.send_bytes(c, b"aaaaa");
    assert_eq!(h.read_exact(c, 16), HIXIE_ANSWER);
    assert_eq!(h.hixie_read(c), Some(HixieFrame::Text("o".into())));
    let s = h.opened();
    h.hixie_send(c, r#"["a"]"#);
    assert_eq!(h.messages(s), ["a"]);
    h.app_send(s, "a");
    assert_eq!(h.take_unread(c), b"\x00a[\"a\"]\xff");
}

#[test]
fn hixie76_key_bytes_with_the_head_and_frames_after_them() {
    let mut h = Harness::echo();
    let c = h.connect();
    let mut body = b"aaaaaaaa".to_vec();
    body.extend_from_slice(b"\x00[\"x\"]\xff");
    let mut bytes = testing::request_bytes("GET", WS_URL, &hixie_headers(), b"");
    bytes.extend(body);
    h.send_bytes(c, &bytes);
    assert_eq!(h.read_head(c).status, 101);
    assert_eq!(h.read_exact(c, 16), HIXIE_ANSWER);
    assert_eq!(h.hixie_read(c), Some(HixieFrame::Text("o".into())));
    let s = h.opened();
    assert_eq!(h.messages(s), ["x"]);
}

#[test]
fn hixie76_location_follows_x_forwarded_proto() {
    let mut h = Harness::echo();
    let c = h.connect();
    let mut headers = hixie_headers();
    headers.push(("X-Forwarded-Proto", "https"));
    h.request(c, "GET", "/echo/websocket?x=1", &headers, b"");
    let r = h.read_head(c);
    assert_eq!(
        r.header("Sec-WebSocket-Location"),
        Some("wss://test/echo/websocket?x=1")
    );
}

#[test]
fn hixie76_heartbeat_has_no_ping_and_close_is_ff_00() {
    let mut h = Harness::echo();
    let c = h.connect();
    let mut bytes = testing::request_bytes("GET", WS_URL, &hixie_headers(), b"");
    bytes.extend_from_slice(b"aaaaaaaa");
    h.send_bytes(c, &bytes);
    h.read_head(c);
    h.read_exact(c, 16);
    h.hixie_read(c);
    let s = h.opened();
    h.advance(secs(60));
    assert_eq!(h.hixie_read(c), Some(HixieFrame::Text("h".into())));
    assert_eq!(h.hixie_read(c), Some(HixieFrame::Text("h".into())));
    h.assert_nothing_unread(c);
    assert!(
        h.take_events().is_empty(),
        "no pong is expected from hixie-76"
    );
    h.app_close(s, 3000, "Go away!");
    assert_eq!(
        h.hixie_read(c),
        Some(HixieFrame::Text("c[3000,\"Go away!\"]".into()))
    );
    assert_eq!(h.hixie_read(c), Some(HixieFrame::Close));
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn hixie76_broken_json_and_client_close() {
    let mut h = Harness::echo();
    let open_hixie = |h: &mut Harness| {
        let c = h.connect();
        let mut bytes = testing::request_bytes("GET", WS_URL, &hixie_headers(), b"");
        bytes.extend_from_slice(b"aaaaaaaa");
        h.send_bytes(c, &bytes);
        h.read_head(c);
        h.read_exact(c, 16);
        h.hixie_read(c);
        (c, h.opened())
    };
    let (c, s) = open_hixie(&mut h);
    h.hixie_send(c, "[\"a");
    assert_eq!(h.hixie_read(c), Some(HixieFrame::Close));
    assert_eq!(h.closed(c), Some(After::Close));
    assert_eq!(
        h.take_events(),
        [closed(s, CloseReason::ProtocolError("Broken framing."))]
    );

    let (c, s) = open_hixie(&mut h);
    h.send_bytes(c, b"\xff\x00");
    assert_eq!(h.hixie_read(c), Some(HixieFrame::Close));
    assert_eq!(h.closed(c), Some(After::Close));
    assert_eq!(
        h.take_events(),
        [closed(
            s,
            CloseReason::ClientClosed {
                code: 1005,
                reason: String::new()
            }
        )]
    );
}

#[test]
fn hixie76_with_bad_keys_is_400() {
    let mut h = Harness::echo();
    let c = h.connect();
    let headers = [
        ("Connection", "Upgrade"),
        ("Upgrade", "WebSocket"),
        ("Sec-WebSocket-Key1", "nospaces123"),
        ("Sec-WebSocket-Key2", KEY2),
    ];
    h.request(c, "GET", WS_URL, &headers, b"");
    assert_eq!(
        testing::lossy(&h.take_unread(c)),
        error_400("Unsupported WebSocket version.")
    );
}

#[test]
fn hixie76_key_bytes_that_never_come_time_out() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", WS_URL, &hixie_headers(), b"");
    h.read_head(c);
    h.send_bytes(c, b"aaaa");
    h.advance(secs(15) - ms(1));
    assert_eq!(h.closed(c), None);
    h.advance(ms(1));
    assert_eq!(h.closed(c), Some(After::Close));
    assert!(h.take_events().is_empty());
    assert_eq!(h.server.session_count(), 0);
}

// ----- raw /websocket -----

#[test]
fn raw_websocket_carries_text_without_framing() {
    let mut h = Harness::echo();
    let c = h.ws_connect("/echo/websocket");
    h.assert_nothing_unread(c);
    let s = h.opened();
    h.ws_send_text(c, "Hello world!\u{ffff}");
    h.ws_send_text(c, "[\"not parsed\"]");
    assert_eq!(h.messages(s), ["Hello world!\u{ffff}", "[\"not parsed\"]"]);
    h.app_send(s, "Hello world!\u{ffff}");
    assert_eq!(h.ws_read_all(c), [WsFrame::text("Hello world!\u{ffff}")]);
    // Queued together, still one message each.
    h.app_send(s, "a");
    assert_eq!(h.ws_read_all(c), [WsFrame::text("a")]);
}

#[test]
fn raw_websocket_has_no_heartbeat_frames_but_pings() {
    let mut h = Harness::echo();
    let c = h.ws_connect("/echo/websocket");
    h.opened();
    h.advance(secs(25));
    assert_eq!(h.ws_read_all(c), [WsFrame::control(9, b"")]);
}

#[test]
fn raw_websocket_app_close_sends_the_code_and_reason() {
    let mut h = Harness::echo();
    let c = h.ws_connect("/echo/websocket");
    let s = h.opened();
    h.app_close(s, 3000, "Go away!");
    assert_eq!(h.ws_read_all(c), [WsFrame::close(3000, "Go away!")]);
    h.ws_send(c, 8, &3000u16.to_be_bytes());
    assert_eq!(h.closed(c), Some(After::Close));
    h.take_events();

    // A code a WebSocket may not carry becomes 1000, the reason kept.
    let c = h.ws_connect("/echo/websocket");
    let s = h.opened();
    h.app_close(s, 1005, "odd");
    assert_eq!(h.ws_read_all(c), [WsFrame::close(1000, "odd")]);
}

#[test]
fn raw_websocket_over_hixie76() {
    let mut h = Harness::echo();
    let c = h.connect();
    let mut bytes = testing::request_bytes("GET", "/echo/websocket", &hixie_headers(), b"");
    bytes.extend_from_slice(b"aaaaaaaa");
    h.send_bytes(c, &bytes);
    h.read_head(c);
    assert_eq!(h.read_exact(c, 16), HIXIE_ANSWER);
    h.assert_nothing_unread(c);
    let s = h.opened();
    h.hixie_send(c, "raw");
    assert_eq!(h.messages(s), ["raw"]);
    h.app_send(s, "back");
    assert_eq!(h.hixie_read(c), Some(HixieFrame::Text("back".into())));
}
