//! Invariants over generated inputs, on the virtual clock: output does not depend on how the
//! input bytes are split; messages reach the client in order, each once, whatever the
//! client's reading pattern and the timers do; every opened session is closed exactly once.

use std::collections::HashMap;

use proptest::prelude::*;
use sockjs_core::testing::strategies::{self, ClientOp};
use sockjs_core::testing::{
    self, Harness, Receiver, limits, ms, request_bytes, secs, ws_frame, ws_headers,
};
use sockjs_core::{ConnectionId, Event, Options};

/// Feeds `bytes` to a new connection of a new `/echo` server in pieces of the given sizes
/// (cycled; all at once if empty); returns what the client received and the events.
fn run_split(bytes: &[u8], pieces: &[usize]) -> (Vec<u8>, Vec<Event>) {
    run_split_on(Options::default(), bytes, pieces)
}

/// As [`run_split`], with the `/echo` endpoint's `options`.
fn run_split_on(options: Options, bytes: &[u8], pieces: &[usize]) -> (Vec<u8>, Vec<Event>) {
    let mut h = Harness::with_options(options);
    let c = h.connect();
    h.send_in_pieces(c, bytes, pieces);
    (h.take_unread(c), h.take_events())
}

fn http_script() -> Vec<u8> {
    let mut b = request_bytes("POST", "/echo/000/s/xhr", &[("Origin", "o")], b"");
    b.extend(request_bytes(
        "POST",
        "/echo/000/s/xhr_send",
        &[],
        "[\"a\",\"b\u{2028}\"]".as_bytes(),
    ));
    b.extend(request_bytes(
        "GET",
        "/echo/info",
        &[("Origin", "null")],
        b"",
    ));
    b.extend(b"\r\n");
    b.extend(request_bytes(
        "OPTIONS",
        "/echo/000/s/xhr",
        &[("Access-Control-Request-Headers", "x")],
        b"",
    ));
    b.extend(
        &b"POST /echo/000/s/xhr_send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
           3\r\n[\"c\r\n2\r\n\"]\r\n0\r\n\r\n"[..],
    );
    b.extend(request_bytes("GET", "/echo/iframe-1.html", &[], b""));
    b.extend(request_bytes("GET", "/echo/000/j/jsonp?c=cb", &[], b""));
    b.extend(request_bytes("POST", "/echo/000/s/xhr", &[], b""));
    b.extend(request_bytes("GET", "/echo", &[], b""));
    b
}

fn websocket_script() -> Vec<u8> {
    let mut b = request_bytes("GET", "/echo/000/w/websocket", &ws_headers("13"), b"");
    b.extend(ws_frame(true, 1, br#"["a"]"#));
    b.extend(ws_frame(true, 9, b"ping"));
    b.extend(ws_frame(false, 1, b"[\"b"));
    b.extend(ws_frame(true, 10, b""));
    b.extend(ws_frame(true, 0, b"\"]"));
    b.extend(ws_frame(true, 1, b""));
    b.extend(ws_frame(true, 1, "\"\u{e9}\u{1f600}\"".as_bytes()));
    b.extend(ws_frame(
        true,
        1,
        format!("[\"{}\"]", "x".repeat(300)).as_bytes(),
    ));
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    b.extend(ws_frame(true, 8, &close));
    b
}

/// An upgrade offering permessage-deflate, then compressed messages (one fragmented, with a
/// ping between its fragments), a plain one, and a close.
fn deflate_script() -> Vec<u8> {
    use sockjs_core::ws::deflate::{DeflateConfig, Deflater, negotiate};
    let mut headers = ws_headers("13");
    headers.push((
        "Sec-WebSocket-Extensions",
        "permessage-deflate; client_max_window_bits",
    ));
    let mut b = request_bytes("GET", "/echo/000/d/websocket", &headers, b"");
    let params = negotiate(&DeflateConfig::default(), [&b"permessage-deflate"[..]])
        .expect("accepted")
        .params;
    let mut deflater = Deflater::new(&params, &DeflateConfig::default());
    let mut compress = |text: &str| {
        let mut out = sockjs_core::bytes::BytesMut::new();
        assert!(deflater.compress(&[text.as_bytes()], &mut out));
        out.to_vec()
    };
    b.extend(ws_frame(true, 0x41, &compress(r#"["a","a","a"]"#)));
    let long = compress(&format!("[\"{}\"]", "x\u{e9}".repeat(100)));
    b.extend(ws_frame(false, 0x41, &long[..long.len() / 2]));
    b.extend(ws_frame(true, 9, b"ping"));
    b.extend(ws_frame(true, 0, &long[long.len() / 2..]));
    b.extend(ws_frame(true, 1, br#"["plain"]"#));
    b.extend(ws_frame(true, 0x41, &compress(r#"["a","a","a"]"#)));
    b.extend(ws_frame(true, 8, &1000u16.to_be_bytes()));
    b
}

fn hixie_script() -> Vec<u8> {
    let headers = [
        ("Connection", "Upgrade"),
        ("Upgrade", "WebSocket"),
        ("Sec-WebSocket-Key1", "4 @1  46546xW%0l 1 5"),
        ("Sec-WebSocket-Key2", "12998 5 Y3 1  .P00"),
    ];
    let mut b = request_bytes("GET", "/echo/000/x/websocket", &headers, b"");
    b.extend(b"aaaaaaaa\x00[\"a\"]\xff\x00\"b\"\xff\xff\x00");
    b
}

proptest! {
    #![proptest_config(strategies::config(64))]

    #[test]
    fn http_output_is_the_same_however_the_input_is_split(
        pieces in strategies::pieces(63, 19)
    ) {
        let script = http_script();
        let whole = run_split(&script, &[]);
        prop_assert_eq!(run_split(&script, &pieces), whole);
    }

    #[test]
    fn websocket_output_is_the_same_however_the_input_is_split(
        pieces in strategies::pieces(31, 19)
    ) {
        for script in [websocket_script(), hixie_script()] {
            let whole = run_split(&script, &[]);
            prop_assert_eq!(run_split(&script, &pieces), whole);
        }
    }

    #[test]
    fn compressed_websocket_output_is_the_same_however_the_input_is_split(
        pieces in strategies::pieces(31, 19)
    ) {
        let options = Options::default()
            .compression(Some(sockjs_core::ws::deflate::DeflateConfig::default()));
        let script = deflate_script();
        let whole = run_split_on(options.clone(), &script, &[]);
        prop_assert_eq!(run_split_on(options, &script, &pieces), whole);
    }
}

#[test]
fn the_deflate_script_does_what_it_says() {
    let options =
        Options::default().compression(Some(sockjs_core::ws::deflate::DeflateConfig::default()));
    let (out, events) = run_split_on(options, &deflate_script(), &[]);
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let long = "x\u{e9}".repeat(100);
    assert_eq!(texts, ["a", "a", "a", &long, "plain", "a", "a", "a"]);
    assert!(matches!(events.last(), Some(Event::Closed { .. })));
    let head = testing::lossy(&out);
    assert!(head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"));
}

#[test]
fn the_split_scripts_do_what_they_say() {
    let (bytes, events) = run_split(&http_script(), &[]);
    let text = testing::lossy(&bytes);
    // The last poll waits (no application echoes), and the greeting behind it too.
    assert_eq!(text.matches("HTTP/1.1 ").count(), 7, "{text}");
    assert!(text.ends_with("\r\n\r\n/**/cb(\"o\");\r\n"), "{text}");
    assert_eq!(events.len(), 5, "{events:?}");
    let (bytes, events) = run_split(&websocket_script(), &[]);
    assert!(bytes.ends_with(b"\x8a\x04ping\x88\x02\x03\xe8"));
    assert_eq!(events.len(), 6, "{events:?}");
    let (_, events) = run_split(&hixie_script(), &[]);
    assert_eq!(events.len(), 4, "{events:?}");
}

/// What a streaming client and its application do, one step at a time.
#[derive(Debug, Clone)]
enum StreamOp {
    /// The application sends a message with this much padding.
    Send(usize),
    /// The client reads, stalls, or lets time pass.
    Client(ClientOp),
}

fn stream_op() -> impl Strategy<Value = StreamOp> {
    prop_oneof![
        4 => (0usize..200).prop_map(StreamOp::Send),
        6 => strategies::client_op(ms(4000), false).prop_map(StreamOp::Client),
    ]
}

/// An `xhr_streaming` client that reconnects whenever a response ends, collecting messages.
struct StreamClient {
    conn: ConnectionId,
    url: String,
    received: Vec<String>,
    closed: bool,
    /// Inside a response body (its head has been read).
    in_body: bool,
}

impl StreamClient {
    fn reconnect(&mut self, h: &mut Harness) {
        h.request(
            self.conn,
            "POST",
            &format!("{}/xhr_streaming", self.url),
            &[],
            b"",
        );
    }

    /// Reads every complete head and chunk that has arrived, reconnecting after each response.
    fn read(&mut self, h: &mut Harness) {
        loop {
            if h.closed(self.conn).is_some() {
                return;
            }
            if !self.in_body {
                // Between responses: the next bytes are a head, perhaps only part of one.
                if testing::parse_head(h.unread(self.conn)).is_none() {
                    return;
                }
                h.read_head(self.conn);
                self.in_body = true;
                continue;
            }
            if h.unread(self.conn).is_empty() {
                return;
            }
            let Some(chunk) = h.read_chunk(self.conn) else {
                return;
            };
            let chunk = String::from_utf8(chunk).unwrap();
            if chunk.is_empty() {
                self.in_body = false;
                if !self.closed {
                    self.reconnect(h);
                }
            } else if chunk.starts_with("a[") {
                let frame: Vec<String> = serde_json::from_str(&chunk[1..chunk.len() - 1]).unwrap();
                self.received.extend(frame);
            } else if chunk.starts_with("c[") {
                self.closed = true;
            } else {
                assert!(
                    chunk == "o\n" || chunk == "h\n" || chunk.starts_with("hhhh"),
                    "{chunk}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(strategies::config(64))]

    #[test]
    fn messages_reach_a_streaming_client_in_order_and_once(
        ops in proptest::collection::vec(stream_op(), 1..80)
    ) {
        let options = Options::default()
            .response_limit(700)
            .heartbeat_delay(ms(1500));
        let l = limits(|l| {
            l.max_unflushed_bytes = 512;
            l.max_queued_bytes = 1 << 20;
        });
        let mut h = Harness::with_limits(options, l);
        let url = "/echo/000/p".to_string();
        let conn = h.connect();
        let mut client = StreamClient { conn, url, received: Vec::new(), closed: false, in_body: false };
        client.reconnect(&mut h);
        client.read(&mut h);
        let session = h.opened();
        let mut sent = Vec::new();
        let mut session_closed = false;
        for op in ops {
            match op {
                StreamOp::Send(pad) => {
                    let text = format!("{}:{}", sent.len(), "p".repeat(pad));
                    if h.try_app_send(session, &text).is_ok() {
                        sent.push(text);
                    }
                }
                StreamOp::Client(op) => op.apply(&mut h, conn),
            }
            for e in h.take_events() {
                match e {
                    Event::Closed { session: s, .. } if s == session => session_closed = true,
                    // After a timeout the client's reconnection opens a new session.
                    Event::Opened { .. } | Event::Closed { .. } if session_closed => {}
                    other => prop_assert!(false, "unexpected event {:?}", other),
                }
            }
            client.read(&mut h);
            // Never reordered or duplicated, whatever has arrived so far.
            prop_assert_eq!(&sent[..client.received.len()], &client.received[..]);
        }
        h.resume_reading(conn);
        client.read(&mut h);
        prop_assert_eq!(&sent[..client.received.len()], &client.received[..]);
        if !session_closed {
            // Nothing lost while the session lives.
            prop_assert_eq!(client.received.len(), sent.len());
        }
    }
}

/// Steps over several sessions and transports, for the once-only close.
#[derive(Debug, Clone)]
enum SessionOp {
    Poll(u8),
    Stream(u8),
    WebSocket,
    Send(u8),
    AppClose(u8),
    DropConnection(u8),
    Advance(u64),
}

fn session_op() -> impl Strategy<Value = SessionOp> {
    prop_oneof![
        (0u8..3).prop_map(SessionOp::Poll),
        (0u8..3).prop_map(SessionOp::Stream),
        Just(SessionOp::WebSocket),
        (0u8..8).prop_map(SessionOp::Send),
        (0u8..8).prop_map(SessionOp::AppClose),
        (0u8..16).prop_map(SessionOp::DropConnection),
        (0u64..8000).prop_map(SessionOp::Advance),
    ]
}

proptest! {
    #![proptest_config(strategies::config(64))]

    #[test]
    fn every_opened_session_is_closed_exactly_once(
        ops in proptest::collection::vec(session_op(), 1..60)
    ) {
        let mut h = Harness::echo();
        let mut conns: Vec<ConnectionId> = Vec::new();
        let mut sessions = Vec::new();
        let mut closes: HashMap<sockjs_core::SessionId, usize> = HashMap::new();
        let mut record = |h: &mut Harness, sessions: &mut Vec<_>| {
            for e in h.take_events() {
                match e {
                    Event::Opened { session, .. } => sessions.push(session),
                    Event::Closed { session, .. } => *closes.entry(session).or_default() += 1,
                    Event::Message { .. } => {}
                    Event::Authorize { .. } => unreachable!("no endpoint authorizes here"),
                }
            }
        };
        for op in ops {
            match op {
                SessionOp::Poll(id) => {
                    let c = h.connect();
                    h.request(c, "POST", &format!("/echo/0/{id}/xhr"), &[], b"");
                    conns.push(c);
                }
                SessionOp::Stream(id) => {
                    let c = h.connect();
                    h.request(c, "GET", &format!("/echo/0/{id}/eventsource"), &[], b"");
                    conns.push(c);
                }
                SessionOp::WebSocket => {
                    let c = h.ws_connect("/echo/0/w/websocket");
                    conns.push(c);
                }
                SessionOp::Send(i) => {
                    if let Some(&s) = sessions.get(i as usize) {
                        let _ = h.try_app_send(s, "m");
                    }
                }
                SessionOp::AppClose(i) => {
                    if let Some(&s) = sessions.get(i as usize) {
                        let _ = h.try_app_close(s, 3000, "bye");
                    }
                }
                SessionOp::DropConnection(i) => {
                    if let Some(&c) = conns.get(i as usize)
                        && h.closed(c).is_none()
                    {
                        h.client_closes(c);
                    }
                }
                SessionOp::Advance(t) => h.advance(ms(t)),
            }
            record(&mut h, &mut sessions);
        }
        h.shutdown();
        record(&mut h, &mut sessions);
        h.advance(secs(3600));
        record(&mut h, &mut sessions);
        for s in &sessions {
            prop_assert_eq!(closes.get(s).copied(), Some(1), "{} of {:?}", s, sessions);
        }
        prop_assert_eq!(closes.len(), sessions.len());
        prop_assert_eq!(h.server.session_count(), 0);
        prop_assert_eq!(h.server.connection_count(), 0);
    }
}

/// Steps of a client mixing transports on one session, and of its application.
#[derive(Debug, Clone)]
enum MixOp {
    /// A new receiving request of this kind.
    Receive(Receiver),
    /// The client drops the receiving connection it is reading (an abort), after taking what
    /// had already arrived on it; what was still in flight is lost.
    Abort,
    /// The `n`-th receiving connection stops reading / reads again.
    Stall(usize),
    Resume(usize),
    /// The application sends a message.
    Send(usize),
    /// Time passes.
    Advance(u64),
}

fn mix_op() -> impl Strategy<Value = MixOp> {
    prop_oneof![
        3 => strategies::receiver().prop_map(MixOp::Receive),
        1 => Just(MixOp::Abort),
        1 => (0usize..4).prop_map(MixOp::Stall),
        1 => (0usize..4).prop_map(MixOp::Resume),
        4 => (0usize..120).prop_map(MixOp::Send),
        2 => (0u64..7000).prop_map(MixOp::Advance),
    ]
}

/// One receiving request of the mixing client, read as its frames arrive.
struct Receiving {
    conn: ConnectionId,
    kind: Receiver,
    head_read: bool,
    done: bool,
}

impl Receiving {
    /// Every frame that has completely arrived.
    fn frames(&mut self, h: &mut Harness) -> Vec<String> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if !self.head_read {
            if testing::parse_head(h.unread(self.conn)).is_none() {
                return out;
            }
            h.read_head(self.conn);
            self.head_read = true;
        }
        match self.kind {
            Receiver::Xhr | Receiver::Jsonp => {
                let closed = h.closed(self.conn).is_some();
                // The head is consumed; the body is the rest of a Content-Length response.
                let unread = h.unread(self.conn).to_vec();
                let _ = closed;
                if let Some(frame) = (!unread.is_empty())
                    .then(|| self.kind.unwrap_frame(&unread))
                    .flatten()
                {
                    h.take_unread(self.conn);
                    out.push(frame);
                    self.done = true;
                }
            }
            _ => {
                while let Some(chunk) = h.read_chunk(self.conn) {
                    if chunk.is_empty() {
                        self.done = true;
                        break;
                    }
                    if let Some(frame) = self.kind.unwrap_frame(&chunk) {
                        out.push(frame);
                    }
                }
            }
        }
        out
    }
}

proptest! {
    #![proptest_config(strategies::config(256))]

    /// For any mix of polling and streaming receivers, aborts, stalls, timeouts and sends:
    /// every message the application sent reaches the client exactly once and in order, or
    /// the session is reported closed (and what did arrive is still in order, once each).
    #[test]
    fn messages_reach_a_client_mixing_receivers_once_and_in_order(
        ops in proptest::collection::vec(mix_op(), 1..60)
    ) {
        let options = Options::default()
            .response_limit(600)
            .heartbeat_delay(ms(2500))
            .disconnect_delay(ms(5000));
        let l = limits(|l| {
            l.max_unflushed_bytes = 256;
            l.max_queued_bytes = 1 << 20;
        });
        let mut h = Harness::with_limits(options, l);
        let url = "/echo/000/mix";
        let mut receivers: Vec<Receiving> = Vec::new();
        let mut session = None;
        let mut session_closed = false;
        let mut sent: Vec<String> = Vec::new();
        let mut received: Vec<String> = Vec::new();
        // Like a SockJS client, it reads its responses in the order it made the requests: a
        // later response is only looked at once the earlier ones have ended.
        let collect = |h: &mut Harness, receivers: &mut Vec<Receiving>, received: &mut Vec<String>| {
            for r in receivers.iter_mut() {
                for frame in r.frames(h) {
                    if let Some(body) = frame.strip_prefix('a') {
                        let msgs: Vec<String> = serde_json::from_str(body).expect("a JSON array");
                        received.extend(msgs);
                    }
                }
                if !r.done {
                    break;
                }
            }
            receivers.retain(|r| !r.done && h.closed(r.conn).is_none());
        };
        for op in ops {
            match op {
                MixOp::Receive(k) => {
                    let c = h.open_receiver(k, url);
                    receivers.push(Receiving { conn: c, kind: k, head_read: false, done: false });
                }
                MixOp::Abort => {
                    if !receivers.is_empty() {
                        let mut r = receivers.remove(0);
                        for frame in r.frames(&mut h) {
                            if let Some(body) = frame.strip_prefix('a') {
                                let msgs: Vec<String> = serde_json::from_str(body).expect("a JSON array");
                                received.extend(msgs);
                            }
                        }
                        h.client_closes(r.conn);
                    }
                }
                MixOp::Stall(i) => {
                    if let Some(r) = receivers.get(i) {
                        h.stop_reading(r.conn);
                    }
                }
                MixOp::Resume(i) => {
                    if let Some(r) = receivers.get(i) {
                        h.resume_reading(r.conn);
                    }
                }
                MixOp::Send(pad) => {
                    if let Some(s) = session.filter(|_| !session_closed) {
                        let text = format!("{}:{}", sent.len(), "m".repeat(pad));
                        if h.try_app_send(s, &text).is_ok() {
                            sent.push(text);
                        }
                    }
                }
                MixOp::Advance(t) => h.advance(ms(t)),
            }
            for e in h.take_events() {
                match e {
                    Event::Opened { session: s, .. } if session.is_none() => session = Some(s),
                    Event::Closed { session: s, .. } if Some(s) == session => session_closed = true,
                    // After the first session is gone, a new receiver opens a new one.
                    Event::Opened { .. } | Event::Closed { .. } => prop_assert!(session_closed),
                    Event::Message { .. } => prop_assert!(false, "no client sends here"),
                    Event::Authorize { .. } => prop_assert!(false, "no endpoint authorizes"),
                }
            }
            collect(&mut h, &mut receivers, &mut received);
            in_order_once(&sent, &received, session_closed)?;
        }
        // The client settles: everything it holds is read, and it polls until nothing is left.
        for r in &receivers {
            h.resume_reading(r.conn);
        }
        collect(&mut h, &mut receivers, &mut received);
        for _ in 0..(sent.len() + 2) {
            if session_closed || received.len() == sent.len() {
                break;
            }
            for r in std::mem::take(&mut receivers) {
                h.client_closes(r.conn);
            }
            for e in h.take_events() {
                if let Event::Closed { session: s, .. } = e
                    && Some(s) == session
                {
                    session_closed = true;
                }
            }
            let c = h.connect();
            h.request(c, "POST", &format!("{url}/xhr"), &[], b"");
            receivers.push(Receiving { conn: c, kind: Receiver::Xhr, head_read: false, done: false });
            collect(&mut h, &mut receivers, &mut received);
        }
        in_order_once(&sent, &received, session_closed)?;
        if !session_closed {
            prop_assert_eq!(received.len(), sent.len(), "lost messages on a live session");
        }
    }
}

/// What the client received is in the order sent, each message at most once; and while the
/// session has not been reported closed, nothing is missing from it either.
fn in_order_once(sent: &[String], received: &[String], closed: bool) -> Result<(), TestCaseError> {
    let index = |m: &String| m.split(':').next().and_then(|i| i.parse::<usize>().ok());
    let indices: Vec<usize> = received
        .iter()
        .map(|m| index(m).expect("a numbered message"))
        .collect();
    prop_assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "reordered or duplicated: {:?}",
        indices
    );
    for (i, m) in indices.iter().zip(received) {
        prop_assert_eq!(sent.get(*i), Some(m));
    }
    if !closed {
        prop_assert_eq!(
            &sent[..received.len().min(sent.len())],
            received,
            "a gap on a live session"
        );
    }
    Ok(())
}

/// Steps of a WebSocket client and its application.
#[derive(Debug, Clone)]
enum WsOp {
    /// The application sends a message with this much padding.
    Send(usize),
    /// The client reads, stalls, lets time pass or loses the connection.
    Client(ClientOp),
}

fn ws_op() -> impl Strategy<Value = WsOp> {
    prop_oneof![
        5 => (0usize..300).prop_map(WsOp::Send),
        7 => strategies::client_op(ms(15_000), true).prop_map(WsOp::Client),
    ]
}

proptest! {
    #![proptest_config(strategies::config(256))]

    /// The same over a WebSocket, with pings, pong timeouts, stalls, partial reads and a lost
    /// connection: in order and once, and all of it unless the session was reported closed.
    #[test]
    fn messages_reach_a_websocket_client_once_and_in_order(
        ops in proptest::collection::vec(ws_op(), 1..60)
    ) {
        let options = Options::default().heartbeat_delay(ms(4000));
        let l = limits(|l| {
            l.max_unflushed_bytes = 300;
            l.max_queued_bytes = 1 << 20;
        });
        let mut h = Harness::with_limits(options, l);
        let conn = h.ws_connect("/echo/000/w/websocket");
        let session = h.opened();
        let mut closed = false;
        let mut sent = Vec::new();
        let mut received: Vec<String> = Vec::new();
        let read = |h: &mut Harness, received: &mut Vec<String>| {
            while let Some(f) = h.ws_read(conn) {
                if f.opcode == 1 && f.payload.first() == Some(&b'a') {
                    let msgs: Vec<String> = serde_json::from_slice(&f.payload[1..]).expect("a JSON array");
                    received.extend(msgs);
                } else if f.opcode == 9 {
                    // A live client answers pings.
                    if h.closed(conn).is_none() {
                        h.ws_send(conn, 10, &f.payload);
                    }
                }
            }
        };
        for op in ops {
            match op {
                WsOp::Send(pad) => {
                    let text = format!("{}:{}", sent.len(), "w".repeat(pad));
                    if h.try_app_send(session, &text).is_ok() {
                        sent.push(text);
                    }
                }
                WsOp::Client(op) => {
                    if op == ClientOp::Drop && h.closed(conn).is_none() {
                        // What had arrived is read before the connection goes.
                        read(&mut h, &mut received);
                    }
                    op.apply(&mut h, conn);
                }
            }
            for e in h.take_events() {
                match e {
                    Event::Closed { session: s, .. } if s == session => closed = true,
                    other => prop_assert!(false, "unexpected event {:?}", other),
                }
            }
            read(&mut h, &mut received);
            in_order_once(&sent, &received, closed)?;
        }
        h.resume_reading(conn);
        read(&mut h, &mut received);
        in_order_once(&sent, &received, closed)?;
        if !closed {
            prop_assert_eq!(received.len(), sent.len(), "lost messages on a live session");
        }
    }
}
