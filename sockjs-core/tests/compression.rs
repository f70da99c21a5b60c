//! permessage-deflate (RFC 7692) on the server's WebSockets: negotiation in the handshake,
//! compressed messages both ways, decompression bombs, split-invariance of compressed input,
//! the memory total, broadcasts compressed once, and clients that do not offer it.

use sockjs_core::testing::{
    self, After, Harness, SUITE_WS_ACCEPT, WsFrame, limits, request_bytes, ws_frame, ws_headers,
};
use sockjs_core::ws::deflate::{
    DEFLATER_MEMORY, DeflateConfig, DeflateParams, Deflater, INFLATER_MEMORY, Inflater, negotiate,
};
use sockjs_core::{CloseReason, ConnectionId, Event, Limit, Limits, Options, SessionId};

const WS_URL: &str = "/echo/000/s/websocket";
const RAW_URL: &str = "/echo/websocket";
/// What Chromium and Firefox offer.
const BROWSER_OFFER: &str = "permessage-deflate; client_max_window_bits";
const NO_TAKEOVER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

fn compressing(config: DeflateConfig) -> Harness {
    Harness::with_options(Options::default().compression(Some(config)))
}

fn compressing_with_limits(config: DeflateConfig, limits: Limits) -> Harness {
    Harness::with_limits(Options::default().compression(Some(config)), limits)
}

/// The extension the server answered `offer` with, on a SockJS WebSocket.
fn answer(h: &mut Harness, path: &str, version: &'static str, offer: &str) -> Option<String> {
    let c = h.connect();
    let mut headers = ws_headers(version);
    headers.push(("Sec-WebSocket-Extensions", offer));
    h.request(c, "GET", path, &headers, b"");
    let r = h.read_head(c);
    assert_eq!(r.status, 101, "{}", r.head);
    r.header("Sec-WebSocket-Extensions").map(str::to_string)
}

/// A client's side of a negotiated connection: what it compresses with and inflates with.
struct Client {
    conn: ConnectionId,
    session: SessionId,
    deflater: Deflater,
    inflater: Inflater,
}

/// The client-side codec for what the server answered: the client compresses as the
/// answer's `client_*` parameters say and inflates what the server's `server_*` ones allow.
fn client_codec(answer: &str) -> (Deflater, Inflater) {
    let agreed = negotiate(&DeflateConfig::default(), [answer.as_bytes()])
        .expect("the answer is itself acceptable")
        .params;
    let sending = DeflateParams {
        server_no_context_takeover: agreed.client_no_context_takeover,
        ..agreed
    };
    let receiving = DeflateParams {
        client_no_context_takeover: agreed.server_no_context_takeover,
        ..agreed
    };
    let config = DeflateConfig {
        min_message_size: 0,
        ..DeflateConfig::default()
    };
    (Deflater::new(&sending, &config), Inflater::new(&receiving))
}

/// Opens a SockJS WebSocket offering `offer`, which the server must accept; reads `o`.
fn open(h: &mut Harness, path: &str, offer: &str) -> Client {
    let (conn, r) = h.ws_connect_offering(path, offer);
    let answer = r
        .header("Sec-WebSocket-Extensions")
        .unwrap_or_else(|| panic!("not negotiated: {}", r.head))
        .to_string();
    let (deflater, mut inflater) = client_codec(&answer);
    if path != RAW_URL {
        assert_eq!(
            h.ws_read_inflated(conn, &mut inflater),
            Some((WsFrame::text("o"), false))
        );
    }
    Client {
        conn,
        session: h.opened(),
        deflater,
        inflater,
    }
}

/// The application echoes every message it has received.
fn echo(h: &mut Harness) {
    for event in h.take_events() {
        if let Event::Message { session, text, .. } = event {
            h.app_send(session, &text);
        }
    }
}

/// Reads the next frame as text: its text and whether it came compressed.
#[track_caller]
fn read_text(h: &mut Harness, c: &mut Client) -> (String, bool) {
    match h.ws_read_inflated(c.conn, &mut c.inflater) {
        Some((
            WsFrame {
                fin: true,
                opcode: 1,
                payload,
            },
            compressed,
        )) => (String::from_utf8(payload).expect("UTF-8"), compressed),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Tiny deterministic generator.
fn pseudo_random_text(seed: u64, chars: usize) -> String {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..chars)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Printable ASCII and a slice of the BMP above the surrogates: little to compress.
            let n = (state >> 20) as u32;
            if n.is_multiple_of(4) {
                char::from_u32(0x20 + n % 95).unwrap_or('x')
            } else {
                char::from_u32(0xe000 + n % 0x1000).unwrap_or('x')
            }
        })
        .collect()
}

fn awkward_messages() -> Vec<String> {
    vec![
        String::new(),
        "x".into(),
        "ünïcödé ✓ 𝄞 \u{2028} \" \\ \u{0}".into(),
        "ünïcödé ✓ 𝄞 ".repeat(500),
        "{\"user\":\"ann\",\"text\":\"hello there, how is it going today?\"}".into(),
        "a".repeat(1 << 20),
        pseudo_random_text(1, 100_000),
        String::new(),
    ]
}

// ----- negotiation -----

#[test]
fn off_by_default_and_a_client_offering_it_is_answered_byte_for_byte_as_before() {
    let mut h = Harness::echo();
    let c = h.connect();
    let mut headers = ws_headers("13");
    headers.push(("Sec-WebSocket-Extensions", BROWSER_OFFER));
    h.request(c, "GET", WS_URL, &headers, b"");
    let expected = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {SUITE_WS_ACCEPT}\r\n\r\n"
    );
    let mut expected = expected.into_bytes();
    expected.extend_from_slice(b"\x81\x01o");
    assert_eq!(h.take_unread(c), expected);
    // A compressed frame from it is a protocol error, as RSV1 always was.
    h.send_bytes(
        c,
        &ws_frame(true, 0x41, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
    );
    assert_eq!(
        h.ws_read(c),
        Some(WsFrame::close(1002, "reserved bits set"))
    );
}

#[test]
fn a_client_that_does_not_offer_it_is_unaffected() {
    // Compression on, no offer: the same bytes as without the option, every frame plain.
    let plain = |options: Options| {
        let mut h = Harness::with_options(options);
        let c = h.connect();
        h.request(c, "GET", WS_URL, &ws_headers("13"), b"");
        let s = h.opened();
        let long = "a long message that would be worth compressing ".repeat(20);
        h.send_bytes(
            c,
            &ws_frame(true, 1, testing::client_messages(&[&long]).as_bytes()),
        );
        echo(&mut h);
        h.send_bytes(c, &ws_frame(true, 9, b"ping"));
        h.app_close(s, 3000, "Go away!");
        (h.take_unread(c), h.server.deflate_memory())
    };
    let without = plain(Options::default());
    let with = plain(Options::default().compression(Some(DeflateConfig::default())));
    assert_eq!(testing::lossy(&with.0), testing::lossy(&without.0));
    assert_eq!((with.1, without.1), (0, 0));
}

#[test]
fn browser_offer_is_accepted_on_every_rfc6455_version_and_the_raw_endpoint() {
    let mut h = compressing(DeflateConfig::default());
    for version in ["13", "8", "7"] {
        for path in [WS_URL, RAW_URL] {
            assert_eq!(
                answer(&mut h, path, version, BROWSER_OFFER).as_deref(),
                Some("permessage-deflate"),
                "{version} {path}"
            );
        }
    }
}

#[test]
fn rfc7692_example_offers() {
    let mut h = compressing(DeflateConfig::default());
    for (offer, expected) in [
        // Section 5: the plain offer.
        ("permessage-deflate", Some("permessage-deflate")),
        // Section 7.1.3: two offers, the first asking for a 10-bit server window, which this
        // backend cannot keep to: declined, and the fallback accepted.
        (
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
             permessage-deflate; client_max_window_bits",
            Some("permessage-deflate"),
        ),
        // Section 7.1.1: context takeover parameters are answered.
        (
            "permessage-deflate; server_no_context_takeover",
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            Some("permessage-deflate; client_no_context_takeover"),
        ),
        // Section 7.1.2.1: 15 bits is what this server has.
        (
            "permessage-deflate; server_max_window_bits=15",
            Some("permessage-deflate; server_max_window_bits=15"),
        ),
        (
            "permessage-deflate; client_max_window_bits=12",
            Some("permessage-deflate; client_max_window_bits=12"),
        ),
        // Another extension first, then ours.
        (
            "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits",
            Some("permessage-deflate"),
        ),
        // Refused: answered without the extension, never with a broken one.
        ("permessage-deflate; server_max_window_bits=10", None),
        ("permessage-deflate; unknown_parameter", None),
        ("permessage-deflate; client_max_window_bits=16", None),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("x-webkit-deflate-frame", None),
        ("permessage-deflate;", None),
    ] {
        assert_eq!(
            answer(&mut h, WS_URL, "13", offer).as_deref(),
            expected,
            "{offer}"
        );
    }
}

#[test]
fn several_header_fields_are_one_list() {
    let mut h = compressing(DeflateConfig::default());
    let c = h.connect();
    let mut headers = ws_headers("13");
    headers.push((
        "Sec-WebSocket-Extensions",
        "permessage-deflate; server_max_window_bits=9",
    ));
    headers.push((
        "Sec-WebSocket-Extensions",
        "permessage-deflate; client_no_context_takeover",
    ));
    h.request(c, "GET", WS_URL, &headers, b"");
    let r = h.read_head(c);
    assert_eq!(
        r.header("Sec-WebSocket-Extensions"),
        Some("permessage-deflate; client_no_context_takeover")
    );
}

#[test]
fn the_servers_terms_go_into_the_answer() {
    let config = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        client_max_window_bits: 10,
        ..DeflateConfig::default()
    };
    let mut h = compressing(config);
    assert_eq!(
        answer(&mut h, WS_URL, "13", BROWSER_OFFER).as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             client_max_window_bits=10"
        )
    );
    // The client window is named only when the offer named it.
    assert_eq!(
        answer(&mut h, WS_URL, "13", "permessage-deflate").as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
}

#[test]
fn a_refused_offer_leaves_a_plain_connection() {
    let mut h = compressing(DeflateConfig::default());
    let (c, r) = h.ws_connect_offering(WS_URL, "permessage-deflate; server_max_window_bits=8");
    assert!(!r.has("Sec-WebSocket-Extensions"));
    assert_eq!(h.ws_text(c), "o");
    let s = h.opened();
    let long = "plain text all the way, plain text all the way".repeat(4);
    h.ws_send_text(c, &testing::client_messages(&[&long]));
    echo(&mut h);
    assert_eq!(h.ws_text(c), format!("a[\"{long}\"]"));
    h.send_bytes(c, &ws_frame(true, 0x41, &[0x00]));
    assert_eq!(
        h.ws_read(c),
        Some(WsFrame::close(1002, "reserved bits set"))
    );
    assert!(matches!(&h.take_events()[..], [Event::Closed { session, .. }] if *session == s));
}

#[test]
fn hixie76_never_negotiates() {
    let mut h = compressing(DeflateConfig::default());
    let c = h.connect();
    let headers = [
        ("Connection", "Upgrade"),
        ("Upgrade", "WebSocket"),
        ("Sec-WebSocket-Key1", "4 @1  46546xW%0l 1 5"),
        ("Sec-WebSocket-Key2", "12998 5 Y3 1  .P00"),
        ("Sec-WebSocket-Extensions", BROWSER_OFFER),
    ];
    h.request(c, "GET", WS_URL, &headers, b"");
    let r = h.read_head(c);
    assert_eq!(r.status, 101);
    assert!(!r.has("Sec-WebSocket-Extensions"));
}

// ----- messages -----

fn round_trip(path: &str, offer: &str) {
    let lim = limits(|l| {
        l.max_frame_size = 8 << 20;
        l.max_message_size = 8 << 20;
        l.max_queued_bytes = 16 << 20;
        l.max_unflushed_bytes = 16 << 20;
    });
    let mut h = compressing_with_limits(DeflateConfig::default(), lim);
    let mut c = open(&mut h, path, offer);
    let raw = path == RAW_URL;
    for (i, message) in awkward_messages().iter().enumerate() {
        let sent = if raw {
            message.clone()
        } else {
            testing::client_messages(&[message])
        };
        // Every other message goes uncompressed: both kinds on one connection.
        if i % 2 == 0 {
            h.ws_send_compressed(c.conn, &mut c.deflater, 1, sent.as_bytes());
        } else {
            h.ws_send_text(c.conn, &sent);
        }
        assert_eq!(
            h.messages(c.session),
            std::slice::from_ref(message),
            "message {i} in"
        );
        h.app_send(c.session, message);
        let (text, compressed) = read_text(&mut h, &mut c);
        let expected = if raw {
            message.clone()
        } else {
            format!("a{}", testing::client_messages(&[message]))
        };
        assert_eq!(text, expected, "message {i} out ({path}, {offer})");
        assert_eq!(compressed, expected.len() >= 64, "message {i}: compressed");
    }
    h.assert_nothing_unread(c.conn);
}

#[test]
fn awkward_messages_round_trip_with_context_takeover() {
    round_trip(WS_URL, BROWSER_OFFER);
    round_trip(RAW_URL, BROWSER_OFFER);
}

#[test]
fn awkward_messages_round_trip_without_context_takeover() {
    round_trip(WS_URL, NO_TAKEOVER);
    round_trip(RAW_URL, NO_TAKEOVER);
}

#[test]
fn fragmented_compressed_messages_with_control_frames_between() {
    let mut h = compressing(DeflateConfig::default());
    let mut c = open(&mut h, WS_URL, BROWSER_OFFER);
    let text = testing::client_messages(&["fragmented ✓", "and compressed"]);
    let mut compressed = bytes::BytesMut::new();
    assert!(c.deflater.compress(&[text.as_bytes()], &mut compressed));
    let third = compressed.len() / 3;
    let mut bytes = ws_frame(false, 0x41, &compressed[..third]);
    bytes.extend(ws_frame(true, 9, b"p"));
    bytes.extend(ws_frame(false, 0, &compressed[third..2 * third]));
    bytes.extend(ws_frame(true, 0, &compressed[2 * third..]));
    h.send_bytes(c.conn, &bytes);
    // The pong comes first, never compressed.
    assert_eq!(
        h.ws_read_inflated(c.conn, &mut c.inflater),
        Some((WsFrame::control(10, b"p"), false))
    );
    assert_eq!(h.messages(c.session), ["fragmented ✓", "and compressed"]);
}

#[test]
fn control_frames_are_never_compressed() {
    // Compress everything that may be: the SockJS frames, even `o` and `h`.
    let config = DeflateConfig {
        min_message_size: 0,
        ..DeflateConfig::default()
    };
    let mut h = compressing(config);
    let (conn, _) = h.ws_connect_offering(WS_URL, BROWSER_OFFER);
    let (_, mut inflater) = client_codec("permessage-deflate");
    assert_eq!(
        h.ws_read_inflated(conn, &mut inflater),
        Some((WsFrame::text("o"), true))
    );
    let s = h.opened();
    h.send_bytes(conn, &ws_frame(true, 9, b"are you there"));
    assert_eq!(
        h.ws_read_inflated(conn, &mut inflater),
        Some((WsFrame::control(10, b"are you there"), false))
    );
    // The heartbeat: `h` compressed, the ping not.
    h.advance(testing::secs(25));
    assert_eq!(
        h.ws_read_inflated(conn, &mut inflater),
        Some((WsFrame::text("h"), true))
    );
    assert_eq!(
        h.ws_read_inflated(conn, &mut inflater),
        Some((WsFrame::control(9, b""), false))
    );
    h.app_close(s, 3000, "Go away!");
    assert_eq!(
        h.ws_read_inflated(conn, &mut inflater),
        Some((WsFrame::text("c[3000,\"Go away!\"]"), true))
    );
    assert_eq!(
        h.ws_read_inflated(conn, &mut inflater),
        Some((WsFrame::close(1000, "Normal closure"), false))
    );
    // A compressed control frame from the client is a protocol error.
    let mut h = compressing(DeflateConfig::default());
    let c = open(&mut h, WS_URL, BROWSER_OFFER);
    h.send_bytes(c.conn, &ws_frame(true, 0x49, b""));
    assert_eq!(
        h.ws_read(c.conn),
        Some(WsFrame::close(1002, "compressed control frame"))
    );
}

#[test]
fn binary_and_broken_compressed_messages_close_as_plain_ones_do() {
    let mut h = compressing(DeflateConfig::default());
    let mut c = open(&mut h, WS_URL, BROWSER_OFFER);
    h.ws_send_compressed(c.conn, &mut c.deflater, 2, b"binary");
    assert_eq!(
        h.ws_read(c.conn),
        Some(WsFrame::close(1003, "Binary messages are not supported"))
    );
    let _ = h.take_events();
    let c = open(&mut h, WS_URL, BROWSER_OFFER);
    h.send_bytes(c.conn, &ws_frame(true, 0x41, &[0xff, 0xff]));
    assert_eq!(
        h.ws_read(c.conn),
        Some(WsFrame::close(1007, "invalid compressed data"))
    );
    let _ = h.take_events();
    let mut c2 = open(&mut h, WS_URL, BROWSER_OFFER);
    h.ws_send_compressed(c2.conn, &mut c2.deflater, 1, b"[\"a\xffb\"]");
    assert_eq!(
        h.ws_read(c2.conn),
        Some(WsFrame::close(1007, "invalid UTF-8 in text"))
    );
}

/// A compressed payload of a few KiB that inflates to `mib` MiB of spaces inside a JSON
/// string.
fn bomb(deflater: &mut Deflater, mib: usize) -> bytes::BytesMut {
    let spaces = vec![b' '; 1 << 20];
    let mut parts: Vec<&[u8]> = vec![b"[\""];
    parts.extend(std::iter::repeat_n(&spaces[..], mib));
    parts.push(b"\"]");
    let mut out = bytes::BytesMut::new();
    assert!(deflater.compress(&parts, &mut out));
    out
}

#[test]
fn a_bomb_closes_only_its_own_connection_with_1009() {
    let mut h = compressing(DeflateConfig::default());
    let mut victim = open(&mut h, WS_URL, BROWSER_OFFER);
    let mut bystander = open(&mut h, WS_URL, BROWSER_OFFER);
    // 2 MiB from about 10 KiB, against the default 1 MiB limit.
    let payload = bomb(&mut victim.deflater, 2);
    assert!(payload.len() < 16 * 1024, "{} bytes", payload.len());
    h.send_bytes(victim.conn, &ws_frame(true, 0x41, &payload));
    assert_eq!(
        h.ws_read(victim.conn),
        Some(WsFrame::close(1009, "message too big"))
    );
    assert_eq!(h.closed(victim.conn), Some(After::Close));
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: victim.session,
            reason: CloseReason::ProtocolError("message too big"),
        }]
    );
    // A fragmented bomb too: each fragment small, the whole far past the limit.
    let mut fragmented = open(&mut h, WS_URL, BROWSER_OFFER);
    let payload = bomb(&mut fragmented.deflater, 64);
    let mut bytes = Vec::new();
    let chunks: Vec<&[u8]> = payload.chunks(1024).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let first = if i == 0 { 0x41 } else { 0 };
        bytes.extend(ws_frame(i == chunks.len() - 1, first, chunk));
    }
    h.send_bytes(fragmented.conn, &bytes);
    assert_eq!(
        h.ws_read(fragmented.conn),
        Some(WsFrame::close(1009, "message too big"))
    );
    let _ = h.take_events();
    // The other connection goes on as before.
    let text = testing::client_messages(&["still here, still compressing, still here"]);
    h.ws_send_compressed(bystander.conn, &mut bystander.deflater, 1, text.as_bytes());
    assert_eq!(
        h.messages(bystander.session),
        ["still here, still compressing, still here"]
    );
    let answer = "and the answer is compressed, being long enough for it to pay";
    h.app_send(bystander.session, answer);
    assert_eq!(
        read_text(&mut h, &mut bystander),
        (format!("a[\"{answer}\"]"), true)
    );
}

#[test]
fn compressed_input_split_at_every_byte_gives_the_same_output() {
    let config = DeflateConfig {
        min_message_size: 0,
        ..DeflateConfig::default()
    };
    // The client's bytes: handshake with the offer, then compressed and plain messages,
    // fragmented, with pings between fragments, then a close.
    let mut headers = ws_headers("13");
    headers.push(("Sec-WebSocket-Extensions", BROWSER_OFFER));
    let mut script = request_bytes("GET", WS_URL, &headers, b"");
    let (mut deflater, _) = client_codec("permessage-deflate");
    for (i, text) in [
        testing::client_messages(&["Hello"]),
        testing::client_messages(&["Hello", "Hello ✓ 𝄞"]),
        testing::client_messages(&[""]),
        testing::client_messages(&["plain"]),
        testing::client_messages(&[&"ab".repeat(100)]),
    ]
    .iter()
    .enumerate()
    {
        if i == 3 {
            script.extend(ws_frame(false, 1, &text.as_bytes()[..3]));
            script.extend(ws_frame(true, 0, &text.as_bytes()[3..]));
            continue;
        }
        let mut compressed = bytes::BytesMut::new();
        assert!(deflater.compress(&[text.as_bytes()], &mut compressed));
        let cut = compressed.len() / 2;
        if i % 2 == 0 {
            script.extend(ws_frame(true, 0x41, &compressed));
        } else {
            script.extend(ws_frame(false, 0x41, &compressed[..cut]));
            script.extend(ws_frame(true, 9, b"ping"));
            script.extend(ws_frame(true, 0, &compressed[cut..]));
        }
    }
    script.extend(ws_frame(true, 8, &1000u16.to_be_bytes()));
    let run = |pieces: &[&[u8]]| {
        let mut h = compressing(config);
        let c = h.connect();
        for piece in pieces {
            h.send_bytes(c, piece);
        }
        (h.take_unread(c), h.take_events())
    };
    let whole = run(&[&script]);
    // The server compressed its `o` (RSV1 on the first frame after the head).
    let head_end = whole.0.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(whole.0[head_end], 0xc1, "`o` compressed");
    assert!(matches!(whole.1.last(), Some(Event::Closed { .. })));
    for cut in 0..=script.len() {
        assert_eq!(
            run(&[&script[..cut], &script[cut..]]),
            whole,
            "cut at {cut}"
        );
    }
    let bytes: Vec<&[u8]> = script.chunks(1).collect();
    assert_eq!(run(&bytes), whole);
}

// ----- memory and broadcasts -----

#[test]
fn deflate_memory_counts_what_connections_hold() {
    let mut h = compressing(DeflateConfig::default());
    assert_eq!(h.server.deflate_memory(), 0);
    let mut c = open(&mut h, WS_URL, BROWSER_OFFER);
    // Nothing is allocated before the first compressed message.
    assert_eq!(h.server.deflate_memory(), 0);
    let text = testing::client_messages(&[
        "a message long enough to be compressed on its way there and on its way back",
    ]);
    h.ws_send_compressed(c.conn, &mut c.deflater, 1, text.as_bytes());
    assert_eq!(h.server.deflate_memory(), INFLATER_MEMORY);
    echo(&mut h);
    assert!(read_text(&mut h, &mut c).1);
    assert_eq!(h.server.deflate_memory(), INFLATER_MEMORY + DEFLATER_MEMORY);
    let mut other = open(&mut h, RAW_URL, BROWSER_OFFER);
    h.ws_send_compressed(other.conn, &mut other.deflater, 1, text.as_bytes());
    let _ = h.take_events();
    assert_eq!(
        h.server.deflate_memory(),
        2 * INFLATER_MEMORY + DEFLATER_MEMORY
    );
    // A bomb frees the state of its connection.
    let payload = bomb(&mut other.deflater, 4);
    h.send_bytes(other.conn, &ws_frame(true, 0x41, &payload));
    assert_eq!(h.server.deflate_memory(), INFLATER_MEMORY + DEFLATER_MEMORY);
    // Closing frees it, whichever way the connection ends.
    h.client_closes(c.conn);
    assert_eq!(h.server.deflate_memory(), 0);
    let _ = h.take_events();
    let mut c = open(&mut h, WS_URL, BROWSER_OFFER);
    h.ws_send_compressed(c.conn, &mut c.deflater, 1, text.as_bytes());
    echo(&mut h);
    assert_ne!(h.server.deflate_memory(), 0);
    h.app_close(c.session, 3000, "bye");
    h.send_bytes(c.conn, &ws_frame(true, 8, &1000u16.to_be_bytes()));
    assert_eq!(h.server.deflate_memory(), 0);

    // Without context takeover nothing is held between messages.
    let _ = h.take_events();
    let mut lean = open(&mut h, WS_URL, NO_TAKEOVER);
    for _ in 0..3 {
        h.ws_send_compressed(lean.conn, &mut lean.deflater, 1, text.as_bytes());
        echo(&mut h);
        assert!(read_text(&mut h, &mut lean).1);
        assert_eq!(h.server.deflate_memory(), 0);
    }
}

#[test]
fn deflate_state_is_charged_to_the_memory_budget_from_the_handshake_on() {
    let reserve = DEFLATER_MEMORY + INFLATER_MEMORY;
    let budget = 2 * reserve + 64 * 1024;
    let mut h = compressing_with_limits(
        DeflateConfig::default(),
        limits(|l| {
            l.max_buffered_bytes = budget;
            l.max_queued_bytes = 128 * 1024;
            l.max_unflushed_bytes = 4096;
        }),
    );
    // Charged at the most it may hold, before anything is allocated.
    let mut a = open(&mut h, "/echo/000/a/websocket", BROWSER_OFFER);
    assert_eq!(h.server.deflate_memory(), 0);
    assert_eq!(h.server.buffered_bytes(), reserve);
    // Allocating it changes what is held, not what is charged.
    let text = testing::client_messages(&[&"long enough to be compressed, both ways, ".repeat(3)]);
    h.ws_send_compressed(a.conn, &mut a.deflater, 1, text.as_bytes());
    echo(&mut h);
    assert!(read_text(&mut h, &mut a).1);
    assert_eq!(h.server.deflate_memory(), reserve);
    assert_eq!(h.server.buffered_bytes(), reserve);
    let b = open(&mut h, "/echo/000/b/websocket", BROWSER_OFFER);
    assert_eq!(h.server.buffered_bytes(), 2 * reserve);

    // A third would take the total past the budget: answered without the extension, and
    // counted; its session works uncompressed.
    assert_eq!(
        answer(&mut h, "/echo/000/c/websocket", "13", BROWSER_OFFER),
        None
    );
    assert_eq!(h.server.stats().limit_hits(Limit::BufferedBytes), 1);
    assert_eq!(h.server.buffered_bytes(), 2 * reserve);
    // Without context takeover nothing is held between calls, so nothing is charged.
    let _ = h.take_events();
    let lean = open(&mut h, "/echo/000/d/websocket", NO_TAKEOVER);
    assert_eq!(h.server.buffered_bytes(), 2 * reserve);
    assert_eq!(h.server.stats().limit_hits(Limit::BufferedBytes), 1);

    // Queues come on top of it: a client that does not read is closed for the budget when a
    // send would pass it, and the others keep working.
    h.stop_reading(b.conn);
    let mut queued = 0;
    while queued < 40 * 1024 {
        h.app_send(b.session, &"q".repeat(1000));
        queued = h.server.queued(b.session).map_or(0, |q| q.0);
    }
    h.app_send(lean.session, &"l".repeat(30 * 1024));
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: b.session,
            reason: CloseReason::MemoryBudget,
        }]
    );
    assert!(h.server.buffered_bytes() <= budget + 31 * 1024);

    // A connection that ends gives its share back, and the next handshake is agreed again.
    h.client_closes(b.conn);
    assert_eq!(h.server.buffered_bytes() - h.server.recount_buffered(), 0);
    assert!(h.server.buffered_bytes() < reserve + 40 * 1024);
    let _ = h.take_events();
    open(&mut h, "/echo/000/e/websocket", BROWSER_OFFER);
    h.client_closes(a.conn);
    h.client_closes(lean.conn);
    let _ = h.take_events();
}

#[test]
fn a_broadcast_is_compressed_once_for_connections_without_context_takeover() {
    let mut h = compressing(DeflateConfig::default());
    let mut lean: Vec<Client> = (0..5).map(|_| open(&mut h, WS_URL, NO_TAKEOVER)).collect();
    let mut lean_raw: Vec<Client> = (0..2).map(|_| open(&mut h, RAW_URL, NO_TAKEOVER)).collect();
    let mut keeping: Vec<Client> = (0..3)
        .map(|_| open(&mut h, WS_URL, BROWSER_OFFER))
        .collect();
    let mut plain = Vec::new();
    for _ in 0..2 {
        let c = h.ws_connect(WS_URL);
        assert_eq!(h.ws_text(c), "o");
        plain.push((c, h.opened()));
    }
    let sessions: Vec<SessionId> = lean
        .iter()
        .chain(&lean_raw)
        .chain(&keeping)
        .map(|c| c.session)
        .chain(plain.iter().map(|p| p.1))
        .collect();
    let text = "{\"user\":\"ann\",\"text\":\"a broadcast to everyone in the room, compressed\"}";
    let before = h.server.deflate_runs();
    assert_eq!(h.app_send_many(&sessions, text), sessions.len());
    // Once for the SockJS connections without takeover, once for the raw ones, once for
    // each connection that keeps its context.
    assert_eq!(h.server.deflate_runs() - before, 1 + 1 + 3);
    let quoted = format!("a{}", testing::client_messages(&[text]));
    let mut frames = Vec::new();
    for c in &mut lean {
        frames.push(h.unread(c.conn).to_vec());
        assert_eq!(read_text(&mut h, c), (quoted.clone(), true));
    }
    assert!(frames.windows(2).all(|w| w[0] == w[1]));
    for c in &mut lean_raw {
        assert_eq!(read_text(&mut h, c), (text.to_string(), true));
    }
    for c in &mut keeping {
        assert_eq!(read_text(&mut h, c), (quoted.clone(), true));
    }
    for (c, _) in &plain {
        assert_eq!(h.ws_text(*c), quoted);
    }
    // The next broadcast is compressed anew: the frames were for one message only.
    assert_eq!(
        h.app_send_many(
            &sessions,
            "another broadcast, long enough to be compressed on every connection"
        ),
        12
    );
    assert_eq!(h.server.deflate_runs() - before, 2 * 5);
    for c in &mut lean {
        assert_eq!(
            read_text(&mut h, c).0,
            "a[\"another broadcast, long enough to be compressed on every connection\"]"
        );
    }
}
