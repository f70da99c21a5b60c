//! The client against scripted server answers, on a virtual clock, requests byte for byte.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;

const URL: &str = "http://127.0.0.1:8081/echo";
const INFO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n\
Content-Length: 78\r\n\r\n{\"websocket\":true,\"origins\":[\"*:*\"],\"cookie_needed\":false,\"entropy\":123456789}";
const INFO_NO_WS: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 41\r\n\r\n{\"websocket\":false,\"cookie_needed\":false}";

/// A client and what it asked of its host so far.
struct Run {
    client: Client,
    now: Instant,
    io: Vec<Io>,
    events: Vec<Event>,
}

/// Entropy counting 0, 1, 2...: server id `000`, the first session `bcdefghi`.
fn counter() -> Entropy {
    let mut n = 0u32;
    Box::new(move || {
        let v = n;
        n += 1;
        v
    })
}

impl Run {
    fn new(options: ClientOptions) -> Run {
        let now = Instant::now();
        let client = Client::new(Url::parse(URL).unwrap(), options, now, counter());
        let mut run = Run {
            client,
            now,
            io: Vec::new(),
            events: Vec::new(),
        };
        run.drain();
        run
    }

    fn drain(&mut self) {
        while let Some(io) = self.client.poll_io() {
            self.io.push(io);
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    fn feed(&mut self, conn: ConnId, bytes: &[u8]) {
        self.client.handle_bytes(self.now, conn, bytes);
        self.drain();
    }

    fn eof(&mut self, conn: ConnId) {
        self.client.handle_eof(self.now, conn);
        self.drain();
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        self.drain();
    }

    /// The I/O asked for since the last call.
    fn take_io(&mut self) -> Vec<Io> {
        std::mem::take(&mut self.io)
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The one request written since the last call, and its connection: asserts that it
    /// went on a new connection when `fresh`.
    fn request(&mut self, fresh: bool) -> (ConnId, String) {
        let io = self.take_io();
        let (conn, bytes) = match &io[..] {
            [Io::Connect(c), Io::Write(w, b)] if fresh && c == w => (*c, b.clone()),
            [Io::Write(w, b)] if !fresh => (*w, b.clone()),
            other => panic!("expected one request (fresh: {fresh}), got {other:?}"),
        };
        (conn, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// Answers `/info` with `info`; returns the transport's first request.
    fn past_info(&mut self, info: &[u8]) -> (ConnId, String) {
        let (conn, req) = self.request(true);
        assert_eq!(
            req,
            "GET /echo/info HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n\r\n"
        );
        self.feed(conn, info);
        let io = self.take_io();
        // The info connection is kept alive and reused by the next HTTP request.
        let (c, b) = match &io[..] {
            [Io::Connect(c), Io::Write(w, b)] if c == w => (*c, b.clone()),
            [Io::Write(w, b)] => (*w, b.clone()),
            other => panic!("expected a request, got {other:?}"),
        };
        (c, String::from_utf8(b.to_vec()).unwrap())
    }
}

fn chunk(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n", data.len())
}

const STREAM_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/javascript; charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n";

fn ws_accept_101(request: &str) -> Vec<u8> {
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        crate::ws::accept_key(key.as_bytes())
    )
    .into_bytes()
}

fn server_text(text: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    crate::ws::frame::encode_text(&mut out, text);
    out.to_vec()
}

fn messages(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn websocket_session_byte_for_byte() {
    let mut run = Run::new(ClientOptions::default());
    let (conn, req) = run.past_info(INFO);
    // Entropy 0 made the server id; 1..=8 the session id; 9..=12 the key.
    let key = base64(&[0, 0, 0, 9, 0, 0, 0, 10, 0, 0, 0, 11, 0, 0, 0, 12]);
    assert_eq!(key, "AAAACQAAAAoAAAALAAAADA==");
    assert_eq!(
        req,
        format!(
            "GET /echo/000/bcdefghi/websocket HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    );
    let mut answer = ws_accept_101(&req);
    answer.extend(server_text("o"));
    run.feed(conn, &answer);
    assert_eq!(run.take_events(), [Event::Opened(Transport::WebSocket)]);
    assert_eq!(run.client.transport(), Some(Transport::WebSocket));
    // The kept-alive /info connection has no further use.
    assert_eq!(run.take_io(), [Io::Close(ConnId(0))]);

    run.client.send("x\"\u{2028}").unwrap();
    run.drain();
    let mut want = BytesMut::new();
    crate::ws::frame::encode_masked_text(&mut want, br#"["x\"\u2028"]"#, 13u32.to_be_bytes());
    assert_eq!(run.take_io(), [Io::Write(conn, want.freeze())]);

    // Split anywhere: a frame carrying two messages, a heartbeat, a ping.
    let mut bytes = server_text(r#"a["y","\ud83d\ude00"]"#);
    bytes.extend(server_text("h"));
    bytes.extend([0x89, 0x01, b'p']);
    for b in bytes {
        run.feed(conn, &[b]);
    }
    assert_eq!(messages(&run.take_events()), ["y", "\u{1f600}"]);
    let mut pong = BytesMut::new();
    crate::ws::frame::encode_masked_pong(&mut pong, b"p", 14u32.to_be_bytes());
    assert_eq!(run.take_io(), [Io::Write(conn, pong.freeze())]);

    run.feed(conn, &server_text(r#"c[3000,"Go away!"]"#));
    assert_eq!(
        run.take_events(),
        [Event::Closed(Close {
            code: 3000,
            reason: "Go away!".into(),
            by: ClosedBy::Server
        })]
    );
    assert_eq!(run.take_io(), [Io::Close(conn)]);
    assert_eq!(run.client.connection_count(), 0);
    assert_eq!(run.client.poll_timeout(), None);
    assert_eq!(run.client.send("late"), Err(UsageError::Closed));
}

/// A client open on a websocket, its I/O and events taken.
fn open_websocket() -> (Run, ConnId) {
    let mut run = Run::new(ClientOptions::default());
    let (conn, req) = run.past_info(INFO);
    let mut answer = ws_accept_101(&req);
    answer.extend(server_text("o"));
    run.feed(conn, &answer);
    assert_eq!(run.take_events(), [Event::Opened(Transport::WebSocket)]);
    run.take_io();
    (run, conn)
}

#[test]
fn application_close_on_a_websocket_sends_a_close_frame() {
    let (mut run, conn) = open_websocket();
    assert_eq!(run.client.close(1001, "no"), Err(UsageError::InvalidCode));
    run.client.close(3001, "bye").unwrap();
    run.drain();
    let mut frame = BytesMut::new();
    crate::ws::frame::encode_masked_close(&mut frame, 1000, 13u32.to_be_bytes());
    assert_eq!(
        run.take_io(),
        [Io::Write(conn, frame.freeze()), Io::Close(conn)]
    );
    assert_eq!(
        run.take_events(),
        [Event::Closed(Close {
            code: 3001,
            reason: "bye".into(),
            by: ClosedBy::Application
        })]
    );
}

#[test]
fn info_without_websocket_starts_with_xhr_streaming_and_reopens_at_the_response_limit() {
    let mut run = Run::new(ClientOptions::default());
    let (conn, req) = run.past_info(INFO_NO_WS);
    assert_eq!(
        req,
        "POST /echo/000/bcdefghi/xhr_streaming HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nContent-Length: 0\r\n\r\n"
    );
    let first = format!(
        "{STREAM_HEAD}{}{}{}{}0\r\n\r\n",
        chunk(&("h".repeat(2048) + "\n")),
        chunk("o\n"),
        chunk("a[\"one\"]\na[\"tw"),
        chunk("o\"]\n")
    );
    // The server ended the response (its response_limit): the same keep-alive connection
    // carries the next one.
    run.feed(conn, first.as_bytes());
    let events = run.take_events();
    assert_eq!(events[0], Event::Opened(Transport::XhrStreaming));
    assert_eq!(messages(&events), ["one", "two"]);
    let (again, req) = run.request(false);
    assert_eq!(again, conn);
    assert!(req.starts_with("POST /echo/000/bcdefghi/xhr_streaming HTTP/1.1\r\n"));
    let second = format!("{STREAM_HEAD}{}", chunk("a[\"three\"]\n"));
    run.feed(conn, second.as_bytes());
    assert_eq!(messages(&run.take_events()), ["three"]);
}

#[test]
fn sends_made_while_an_xhr_send_is_in_flight_go_in_the_next_one() {
    let mut run = Run::new(ClientOptions::default().transports([Transport::XhrPolling]));
    let (poll, req) = run.past_info(INFO);
    assert_eq!(
        req,
        "POST /echo/000/bcdefghi/xhr HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nContent-Length: 0\r\n\r\n"
    );
    run.feed(poll, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no\n");
    assert_eq!(run.take_events(), [Event::Opened(Transport::XhrPolling)]);
    let (poll2, req) = run.request(false);
    assert_eq!(poll2, poll, "the poll goes again on the same connection");
    assert!(req.starts_with("POST /echo/000/bcdefghi/xhr "));

    run.client.send("a").unwrap();
    run.drain();
    let (sender, req) = run.request(true);
    assert_eq!(
        req,
        "POST /echo/000/bcdefghi/xhr_send HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n\
Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 5\r\n\r\n[\"a\"]"
    );
    run.client.send("b").unwrap();
    run.client.send("c\n").unwrap();
    run.drain();
    assert_eq!(
        run.take_io(),
        [],
        "nothing until the first send is answered"
    );
    run.feed(sender, b"HTTP/1.1 204 No Content\r\n\r\n");
    let (again, req) = run.request(false);
    assert_eq!(again, sender);
    assert!(
        req.ends_with("Content-Length: 11\r\n\r\n[\"b\",\"c\\n\"]"),
        "{req}"
    );

    run.feed(
        poll,
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\na[\"a\",\"b\"]\n",
    );
    assert_eq!(messages(&run.take_events()), ["a", "b"]);
    // A failed send closes the session.
    run.feed(
        sender,
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    let events = run.take_events();
    assert!(matches!(&events[0], Event::Error(e) if e.sending && e.kind == ErrorKind::Status(404)));
    assert!(matches!(&events[1], Event::Closed(c) if c.code == 1006 && c.by == ClosedBy::Failure));
}

#[test]
fn a_refused_websocket_falls_back_to_xhr_streaming() {
    let mut run = Run::new(ClientOptions::default());
    let (ws, _) = run.past_info(INFO);
    run.feed(ws, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let events = run.take_events();
    assert!(
        matches!(&events[..], [Event::Error(e)] if e.kind == ErrorKind::Status(404) && e.transport == Some(Transport::WebSocket)),
        "{events:?}"
    );
    let io = run.take_io();
    assert_eq!(io[0], Io::Close(ws));
    // A new session id for the next transport, on the kept-alive info connection.
    let Io::Write(_, req) = &io[1] else {
        panic!("{io:?}")
    };
    assert!(req.starts_with(b"POST /echo/000/nopqrstu/xhr_streaming HTTP/1.1\r\n"));
}

#[test]
fn a_transport_that_does_not_open_in_time_is_given_up() {
    let mut run = Run::new(
        ClientOptions::default().transports([Transport::WebSocket, Transport::EventSource]),
    );
    let (ws, _) = run.past_info(INFO);
    run.advance(Duration::from_millis(1999));
    assert_eq!(run.take_io(), []);
    run.advance(Duration::from_millis(1));
    let events = run.take_events();
    assert!(matches!(&events[..], [Event::Error(e)] if e.kind == ErrorKind::Timeout));
    let io = run.take_io();
    assert_eq!(io[0], Io::Close(ws));
    let Io::Write(es, req) = &io[1] else {
        panic!("{io:?}")
    };
    let req = String::from_utf8(req.to_vec()).unwrap();
    assert!(req.starts_with("GET /echo/000/nopqrstu/eventsource HTTP/1.1\r\n"));
    assert!(req.ends_with("Accept: text/event-stream\r\n\r\n"));
    let answer =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    let body = chunk("\r\n") + &chunk("data: o\r\n\r\n") + &chunk("data: a[\"50%25\"]\r\n\r\n");
    run.feed(*es, format!("{answer}{body}").as_bytes());
    let events = run.take_events();
    assert_eq!(events[0], Event::Opened(Transport::EventSource));
    assert_eq!(messages(&events), ["50%"]);
    // The server gone once open: the session is lost (no fallback after open).
    run.eof(*es);
    let events = run.take_events();
    assert!(matches!(&events[1], Event::Closed(c) if c.code == 1006));
}

#[test]
fn all_transports_failing_closes_with_2000_and_no_info_with_1002() {
    let mut run = Run::new(ClientOptions::default().transports([Transport::XhrPolling]));
    let (poll, _) = run.past_info(INFO);
    run.feed(poll, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nxyz\n");
    let events = run.take_events();
    assert!(matches!(&events[0], Event::Error(e) if e.kind == ErrorKind::Malformed));
    assert_eq!(
        events[1],
        Event::Closed(Close {
            code: 2000,
            reason: "All transports failed".into(),
            by: ClosedBy::Failure
        })
    );

    let mut run = Run::new(ClientOptions::default());
    let (info, _) = run.request(true);
    run.feed(info, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{nope");
    let events = run.take_events();
    assert!(
        matches!(&events[1], Event::Closed(c) if c.code == 1002 && c.reason == "Cannot connect to server")
    );

    let mut run = Run::new(ClientOptions::default());
    run.advance(Duration::from_secs(8));
    assert!(matches!(&run.take_events()[1], Event::Closed(c) if c.code == 1002));
}

#[test]
fn a_silent_session_times_out_and_heartbeats_keep_it() {
    let mut run = Run::new(ClientOptions::default().transports([Transport::XhrStreaming]));
    let (conn, _) = run.past_info(INFO);
    run.feed(conn, format!("{STREAM_HEAD}{}", chunk("o\n")).as_bytes());
    run.take_events();
    for _ in 0..3 {
        run.advance(Duration::from_secs(25));
        run.feed(conn, chunk("h\n").as_bytes());
    }
    assert_eq!(run.take_events(), []);
    run.advance(Duration::from_secs(60));
    let events = run.take_events();
    assert!(matches!(&events[0], Event::Error(e) if e.kind == ErrorKind::Heartbeat));
    assert!(
        matches!(&events[1], Event::Closed(c) if c.code == 1006 && c.reason == "Heartbeat timeout")
    );
}

#[test]
fn a_websocket_ping_counts_as_a_heartbeat() {
    // sockjs-node sends WebSocket pings instead of `h` frames on websockets.
    let (mut run, conn) = open_websocket();
    for _ in 0..3 {
        run.advance(Duration::from_secs(25));
        run.feed(conn, &[0x89, 0x00]);
    }
    assert_eq!(run.take_events(), []);
    run.advance(Duration::from_secs(60));
    assert!(matches!(&run.take_events()[1], Event::Closed(c) if c.reason == "Heartbeat timeout"));
}

#[test]
fn malformed_frames_after_open_close_the_session() {
    for bad in ["a[1]", "c[x]", "q", "o"] {
        let mut run = Run::new(ClientOptions::default().transports([Transport::XhrStreaming]));
        let (conn, _) = run.past_info(INFO);
        run.feed(
            conn,
            format!("{STREAM_HEAD}{}", chunk(&format!("o\n{bad}\n"))).as_bytes(),
        );
        let events = run.take_events();
        assert!(
            matches!(&events[1], Event::Error(e) if e.kind == ErrorKind::Malformed),
            "{bad}: {events:?}"
        );
        assert!(
            matches!(&events[2], Event::Closed(c) if c.code == 1002),
            "{bad}"
        );
    }
}

#[test]
fn the_server_gone_mid_stream_is_a_lost_connection() {
    let mut run = Run::new(ClientOptions::default().transports([Transport::XhrStreaming]));
    let (conn, _) = run.past_info(INFO);
    run.feed(
        conn,
        format!("{STREAM_HEAD}{}", chunk("o\na[\"x")).as_bytes(),
    );
    run.eof(conn);
    let events = run.take_events();
    assert_eq!(events[0], Event::Opened(Transport::XhrStreaming));
    assert!(matches!(&events[1], Event::Error(e) if e.kind == ErrorKind::Connection));
    assert_eq!(
        events[2],
        Event::Closed(Close {
            code: 1006,
            reason: "Connection dropped by remote peer".into(),
            by: ClosedBy::Failure
        })
    );
}

#[test]
fn cookies_and_headers_go_on_every_request() {
    let options = ClientOptions::default()
        .transports([Transport::XhrPolling])
        .header("X-Token", "t")
        .cookie("a", "1");
    let mut run = Run::new(options);
    let (info, req) = run.request(true);
    assert_eq!(
        req,
        "GET /echo/info HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nX-Token: t\r\nCookie: a=1\r\n\r\n"
    );
    run.feed(
        info,
        b"HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=dummy; path=/\r\nContent-Length: 2\r\n\r\n{}",
    );
    let (_, req) = run.request(false);
    assert!(
        req.contains("\r\nCookie: a=1; JSESSIONID=dummy\r\n"),
        "{req}"
    );
}

#[test]
fn oversized_frames_are_errors_not_memory() {
    let mut run = Run::new(
        ClientOptions::default()
            .transports([Transport::XhrStreaming])
            .max_frame_size(1000),
    );
    let (conn, _) = run.past_info(INFO);
    run.feed(conn, format!("{STREAM_HEAD}{}", chunk("o\n")).as_bytes());
    let big = "a".repeat(600);
    run.feed(conn, chunk(&big).as_bytes());
    assert!(run.client.buffered_bytes() <= 1000);
    run.feed(conn, chunk(&big).as_bytes());
    let events = run.take_events();
    assert!(
        matches!(&events[1], Event::Error(e) if e.kind == ErrorKind::TooLarge),
        "{events:?}"
    );
    assert_eq!(run.client.buffered_bytes(), 0);
}

proptest! {
    /// Whatever a server answers, however split: no panic, memory within the bounds, and
    /// `Closed` at most once and last.
    #[test]
    fn any_answer_is_an_event_never_a_panic(
        transport in 0usize..4,
        answers in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..8),
        prefix in prop_oneof![
            Just(&b""[..]),
            Just(STREAM_HEAD.as_bytes()),
            Just(&b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"[..]),
            Just(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no\n"[..]),
        ],
    ) {
        let options = ClientOptions::default()
            .transports([Transport::ALL[transport]])
            .max_frame_size(256);
        let mut run = Run::new(options);
        let (conn, _) = run.past_info(INFO);
        run.feed(conn, prefix);
        for (eof, bytes) in answers {
            let targets: Vec<ConnId> = run.client.conns.keys().copied().collect();
            for c in targets {
                run.feed(c, &bytes);
                prop_assert!(run.client.buffered_bytes() <= 256 * 4 + 64 * 1024 + 400);
                if eof {
                    run.eof(c);
                }
            }
            run.advance(Duration::from_secs(3));
        }
        let closed = run.events.iter().filter(|e| matches!(e, Event::Closed(_))).count();
        prop_assert!(closed <= 1);
        if closed == 1 {
            prop_assert!(matches!(run.events.last(), Some(Event::Closed(_))));
        }
    }
}
