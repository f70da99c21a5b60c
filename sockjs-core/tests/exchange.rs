//! The request-level entry (`Server::handle_request`, "exchanges"): for the same request, an
//! exchange's status, headers and body are those the built-in HTTP/1 path writes, but for
//! what the host's HTTP layer owns (framing, persistence, `Date`); streaming bodies stay
//! bounded under a host that takes nothing; a client going away ends its session as on the
//! built-in path; WebSockets (RFC 6455, hixie-76, raw, RFC 8441 extended CONNECT) run over
//! the upgraded stream.

use bytes::Bytes;
use sockjs_core::http::{Request, reason_phrase};
use sockjs_core::testing::{
    self, After, Harness, HixieFrame, WsFrame, client_messages, decode_request, limits, request,
    secs, session_url, ws_frame, ws_headers,
};
use sockjs_core::{
    CloseReason, Config, ConnectionId, Event, Options, RequestExtras, Response, ResponseBody,
};

const KEY1: &str = "4 @1  46546xW%0l 1 5";
const KEY2: &str = "12998 5 Y3 1  .P00";
const HIXIE_ANSWER: &[u8; 16] = b"\xca4\x00\xd8\xa5\x08G\x97,\xd5qZ\xba\xbfC{";
const MAX_BODY: usize = 4096;

/// The endpoints the table runs against: the defaults, a cookie one, one without
/// WebSockets, one with an origin list, and one whose streams end after a few bytes.
fn config() -> Config {
    Config::new()
        .endpoint("/echo", Options::default())
        .endpoint("/cookie", Options::default().cookie_needed(true))
        .endpoint("/nows", Options::default().websocket(false))
        .endpoint(
            "/strict",
            Options::default().allowed_origins(["http://good.example"]),
        )
        .endpoint("/small", Options::default().response_limit(16))
        .limits(limits(|l| {
            l.max_body_size = MAX_BODY;
            l.max_headers = 16;
        }))
}

/// A response as the host's HTTP stack would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: u16,
    reason: String,
    headers: Vec<(String, Vec<u8>)>,
    body: ResponseBody,
    upgrade: bool,
    /// The body bytes (framing removed), then for an upgrade the stream's bytes.
    bytes: Vec<u8>,
}

/// Parses what the built-in path wrote: the head (framing and persistence headers dropped),
/// the body de-chunked, and whatever followed a head without a body (an upgraded stream).
fn parse_native(wire: &[u8]) -> Seen {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let end = match r.parse(wire) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("no whole head ({other:?}) in {:?}", testing::lossy(wire)),
    };
    let status = r.code.unwrap();
    let reason = r.reason.unwrap().to_string();
    let mut length = None;
    let mut chunked = false;
    let mut kept = Vec::new();
    for h in r.headers.iter() {
        let name = h.name.to_string();
        let lower = name.to_ascii_lowercase();
        let value = h.value.to_vec();
        match lower.as_str() {
            "content-length" => {
                length = Some(std::str::from_utf8(&value).unwrap().parse().unwrap())
            }
            "transfer-encoding" => {
                assert_eq!(value, b"chunked");
                chunked = true;
            }
            "date" => {}
            "connection"
                if value.eq_ignore_ascii_case(b"close")
                    || value.eq_ignore_ascii_case(b"keep-alive") => {}
            _ => kept.push((name, value)),
        }
    }
    let rest = &wire[end..];
    let upgrade = status == 101 || (status == 200 && kept.is_empty());
    let (body, bytes) = match (length, chunked) {
        (Some(n), false) => {
            assert!(rest.len() >= n, "a body shorter than its length");
            assert_eq!(rest.len(), n, "bytes after a body of known length");
            (ResponseBody::Length(n), rest.to_vec())
        }
        (None, true) => {
            let mut out = Vec::new();
            let mut at = 0;
            while let Some((chunk, n)) = testing::parse_chunk(&rest[at..]) {
                at += n;
                if chunk.is_empty() {
                    break;
                }
                out.extend_from_slice(&chunk);
            }
            assert_eq!(at, rest.len(), "bytes after the last chunk");
            (ResponseBody::Stream, out)
        }
        (None, false) if matches!(status, 101 | 204 | 304) => (ResponseBody::Empty, rest.to_vec()),
        // HTTP/1.0 streaming: delimited by the close.
        (None, false) => (ResponseBody::Stream, rest.to_vec()),
        (Some(_), true) => panic!("both framings"),
    };
    Seen {
        status,
        reason,
        headers: kept,
        body,
        upgrade: status == 101 && upgrade,
        bytes,
    }
}

/// What an exchange's host received: the head it took and the bytes after it.
fn exchange_seen(r: &Response, bytes: Vec<u8>) -> Seen {
    Seen {
        status: r.status,
        reason: r.reason.unwrap_or(reason_phrase(r.status)).to_string(),
        headers: r
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect(),
        body: r.body,
        upgrade: r.upgrade,
        bytes,
    }
}

/// One row of the table.
struct Case {
    name: &'static str,
    /// Done on both servers first, over the built-in path.
    setup: fn(&mut Harness),
    /// The request under test, as bytes on the wire.
    request: Vec<u8>,
    /// The host saw a body longer than `max_body_size` (sent only up to it).
    too_large: bool,
}

fn case(name: &'static str, request: Vec<u8>) -> Case {
    Case {
        name,
        setup: |_| {},
        request,
        too_large: false,
    }
}

fn with_setup(mut c: Case, setup: fn(&mut Harness)) -> Case {
    c.setup = setup;
    c
}

fn req(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    testing::request_bytes(method, path, headers, body)
}

fn hixie_headers(origin: bool) -> Vec<(&'static str, &'static str)> {
    let mut h = vec![
        ("Connection", "Upgrade"),
        ("Upgrade", "WebSocket"),
        ("Sec-WebSocket-Key1", KEY1),
        ("Sec-WebSocket-Key2", KEY2),
    ];
    if origin {
        h.push(("Origin", "http://localhost"));
    }
    h
}

/// Opens session `s1` on `/echo` over xhr polling, and queues a message for its client.
fn open_s1(h: &mut Harness) {
    h.xhr(&session_url("s1"));
    let s = h.opened();
    h.app_send(s, "queued");
}

/// Opens session `s1` with an xhr_streaming receiver that stays attached.
fn attach_s1(h: &mut Harness) {
    h.open_streaming(&session_url("s1"));
    h.take_events();
}

fn etag() -> String {
    let mut h = Harness::new(config());
    h.get("/echo/iframe.html")
        .header("etag")
        .expect("an ETag")
        .to_string()
}

fn table() -> Vec<Case> {
    let etag = etag();
    let s1 = session_url("s1");
    let origin = [("Origin", "http://a.example")];
    let mut cases = vec![
        case("greeting", req("GET", "/echo", &[], b"")),
        case("greeting slash", req("GET", "/echo/", &[], b"")),
        case("greeting http/1.0", b"GET /echo HTTP/1.0\r\n\r\n".to_vec()),
        case(
            "greeting http/1.0 keep-alive",
            b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec(),
        ),
        case(
            "greeting connection close",
            req("GET", "/echo", &[("Connection", "close")], b""),
        ),
        case(
            "greeting absolute-form",
            b"GET http://x.example/echo HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        case("info", req("GET", "/echo/info", &[], b"")),
        case("info with origin", req("GET", "/echo/info", &origin, b"")),
        case("info cookie", req("GET", "/cookie/info", &[], b"")),
        case("info no websocket", req("GET", "/nows/info", &[], b"")),
        case("iframe", req("GET", "/echo/iframe.html", &[], b"")),
        case(
            "iframe versioned",
            req("GET", "/echo/iframe-1.2.3.html", &[], b""),
        ),
        case(
            "iframe if-none-match",
            req("GET", "/echo/iframe.html", &[("If-None-Match", &etag)], b""),
        ),
        case(
            "iframe stale if-none-match",
            req(
                "GET",
                "/echo/iframe.html",
                &[("If-None-Match", "\"x\"")],
                b"",
            ),
        ),
        case(
            "info preflight",
            req(
                "OPTIONS",
                "/echo/info",
                &[
                    ("Origin", "http://a.example"),
                    ("Access-Control-Request-Headers", "X-Custom"),
                ],
                b"",
            ),
        ),
        case(
            "xhr preflight",
            req("OPTIONS", &format!("{s1}/xhr"), &origin, b""),
        ),
        case(
            "xhr_send preflight cookie",
            req(
                "OPTIONS",
                "/cookie/000/s1/xhr_send",
                &[("Cookie", "JSESSIONID=abc")],
                b"",
            ),
        ),
        case("xhr opens", req("POST", &format!("{s1}/xhr"), &origin, b"")),
        case(
            "xhr cookie",
            req(
                "POST",
                "/cookie/000/s1/xhr",
                &[("Cookie", "a=b; JSESSIONID=xyz")],
                b"",
            ),
        ),
        case(
            "xhr cookie dummy",
            req("POST", "/cookie/000/s1/xhr", &[], b""),
        ),
        case(
            "xhr connection close",
            req(
                "POST",
                &format!("{s1}/xhr"),
                &[("Connection", "close")],
                b"",
            ),
        ),
        with_setup(
            case(
                "xhr second poll",
                req("POST", &format!("{s1}/xhr"), &[], b""),
            ),
            open_s1,
        ),
        with_setup(
            case("xhr 2010", req("POST", &format!("{s1}/xhr"), &[], b"")),
            attach_s1,
        ),
        with_setup(
            case(
                "xhr_send",
                req("POST", &format!("{s1}/xhr_send"), &origin, br#"["a","b"]"#),
            ),
            open_s1,
        ),
        with_setup(
            case(
                "xhr_send bad json",
                req("POST", &format!("{s1}/xhr_send"), &[], b"[\"a"),
            ),
            open_s1,
        ),
        with_setup(
            case(
                "xhr_send empty payload",
                req("POST", &format!("{s1}/xhr_send"), &[], b""),
            ),
            open_s1,
        ),
        case(
            "xhr_send no session",
            req("POST", &format!("{s1}/xhr_send"), &[], br#"["a"]"#),
        ),
        case(
            "xhr_streaming",
            req("POST", &format!("{s1}/xhr_streaming"), &origin, b""),
        ),
        case(
            "xhr_streaming http/1.0",
            b"POST /echo/000/s1/xhr_streaming HTTP/1.0\r\n\r\n".to_vec(),
        ),
        case(
            "xhr_streaming past response_limit",
            req("POST", "/small/000/s1/xhr_streaming", &[], b""),
        ),
        case(
            "eventsource",
            req("GET", &format!("{s1}/eventsource"), &[], b""),
        ),
        case(
            "htmlfile",
            req("GET", &format!("{s1}/htmlfile?c=callback"), &[], b""),
        ),
        case(
            "htmlfile no callback",
            req("GET", &format!("{s1}/htmlfile"), &[], b""),
        ),
        case("jsonp", req("GET", &format!("{s1}/jsonp?c=cb.x"), &[], b"")),
        case(
            "jsonp bad callback",
            req("GET", &format!("{s1}/jsonp?c=%3Cscript"), &[], b""),
        ),
        with_setup(
            case(
                "jsonp_send form",
                req(
                    "POST",
                    &format!("{s1}/jsonp_send"),
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    b"d=%5B%22x%22%5D",
                ),
            ),
            open_s1,
        ),
        with_setup(
            case(
                "jsonp_send raw",
                req("POST", &format!("{s1}/jsonp_send"), &[], br#"["x"]"#),
            ),
            open_s1,
        ),
        with_setup(
            case(
                "jsonp_send empty",
                req("POST", &format!("{s1}/jsonp_send"), &[], b""),
            ),
            open_s1,
        ),
        case("404 other prefix", req("GET", "/other", &[], b"")),
        case("404 under prefix", req("GET", "/echo/a/b", &[], b"")),
        case("404 bad session", req("POST", "/echo/a.b/c/xhr", &[], b"")),
        case("405 info", req("PUT", "/echo/info", &[], b"")),
        case("405 greeting", req("POST", "/echo", &[], b"")),
        case("405 xhr get", req("GET", &format!("{s1}/xhr"), &[], b"")),
        case(
            "403 origin",
            req(
                "POST",
                "/strict/000/s/xhr",
                &[("Origin", "http://evil")],
                b"",
            ),
        ),
        case(
            "strict origin allowed",
            req(
                "POST",
                "/strict/000/s/xhr",
                &[("Origin", "http://good.example")],
                b"",
            ),
        ),
        case(
            "strict greeting any origin",
            req("GET", "/strict", &[("Origin", "http://evil")], b""),
        ),
        case(
            "body too large by length",
            req(
                "POST",
                &format!("{s1}/xhr_send"),
                &[],
                &vec![b'x'; MAX_BODY + 1],
            ),
        ),
        case(
            "too many headers",
            req(
                "GET",
                "/echo",
                &[("A", "1"); 20]
                    .iter()
                    .map(|&(n, v)| (n, v))
                    .collect::<Vec<_>>(),
                b"",
            ),
        ),
        case(
            "websocket 13",
            req("GET", &format!("{s1}/websocket"), &ws_headers("13"), b""),
        ),
        case(
            "websocket 8",
            req("GET", &format!("{s1}/websocket"), &ws_headers("8"), b""),
        ),
        case(
            "websocket 7 raw",
            req("GET", "/echo/websocket", &ws_headers("7"), b""),
        ),
        case(
            "websocket bad version",
            req("GET", &format!("{s1}/websocket"), &ws_headers("99"), b""),
        ),
        case(
            "websocket no key",
            req(
                "GET",
                &format!("{s1}/websocket"),
                &ws_headers("13")[..3],
                b"",
            ),
        ),
        case(
            "websocket no upgrade",
            req("GET", &format!("{s1}/websocket"), &[], b""),
        ),
        case(
            "websocket connection not upgrade",
            req(
                "GET",
                &format!("{s1}/websocket"),
                &[("Upgrade", "websocket"), ("Connection", "keep-alive")],
                b"",
            ),
        ),
        case(
            "websocket post",
            req("POST", &format!("{s1}/websocket"), &ws_headers("13"), b""),
        ),
        case(
            "websocket disabled",
            req("GET", "/nows/000/s1/websocket", &ws_headers("13"), b""),
        ),
        case(
            "raw websocket disabled",
            req("GET", "/nows/websocket", &ws_headers("13"), b""),
        ),
        case(
            "websocket origin refused",
            req(
                "GET",
                "/strict/000/s1/websocket",
                &[ws_headers("13"), vec![("Origin", "http://evil")]].concat(),
                b"",
            ),
        ),
        case(
            "hixie-76",
            [
                req("GET", &format!("{s1}/websocket"), &hixie_headers(true), b""),
                b"aaaaaaaa".to_vec(),
            ]
            .concat(),
        ),
        case(
            "hixie-76 raw https",
            [
                req(
                    "GET",
                    "/echo/websocket",
                    &[hixie_headers(false), vec![("X-Forwarded-Proto", "https")]].concat(),
                    b"",
                ),
                b"aaaaaaaa".to_vec(),
            ]
            .concat(),
        ),
        case(
            "hixie-76 missing key2",
            req(
                "GET",
                &format!("{s1}/websocket"),
                &hixie_headers(false)[..3],
                b"",
            ),
        ),
    ];
    let mut too_large = case(
        "body too large, cut by the host",
        req(
            "POST",
            &format!("{s1}/xhr_send"),
            &[],
            &vec![b'x'; MAX_BODY + 100],
        ),
    );
    too_large.too_large = true;
    cases.push(too_large);
    cases
}

/// What the application does once the request is served, on both servers alike: every
/// session that opened gets a message, then is closed.
fn application(h: &mut Harness, events: &[Event]) {
    for e in events {
        if let Event::Opened { session, .. } = e {
            h.app_send(*session, "hi \u{2713} \"q\"");
            let _ = h.try_app_close(*session, 3000, "bye");
        }
    }
}

/// Serves `c` natively; returns what the client read and the events.
fn run_native(c: &Case) -> (Seen, Vec<Event>, ConnectionId, Option<After>) {
    let mut h = Harness::new(config());
    (c.setup)(&mut h);
    let conn = h.connect();
    h.send_bytes(conn, &c.request);
    let mut events = h.take_events();
    application(&mut h, &events);
    events.extend(h.take_events());
    let seen = parse_native(&h.take_unread(conn));
    (seen, events, conn, h.closed(conn))
}

/// Serves `c` as an exchange; the bytes after the request head go to the upgraded stream.
fn run_exchange(c: &Case) -> (Seen, Vec<Event>, ConnectionId, Option<After>) {
    let mut h = Harness::new(config());
    (c.setup)(&mut h);
    let (mut request, mut rest) = decode_request(&c.request);
    if c.too_large {
        // The host read what the limit allows and saw there was more.
        request.body = request.body.slice(..MAX_BODY);
        rest.clear();
    }
    let extras = RequestExtras {
        body_too_large: c.too_large,
        ..RequestExtras::default()
    };
    let conn = h.exchange(request, extras);
    let response = h.response(conn).cloned();
    if response.as_ref().is_some_and(|r| r.upgrade) && !rest.is_empty() {
        h.send_bytes(conn, &rest);
    }
    let mut events = h.take_events();
    application(&mut h, &events);
    events.extend(h.take_events());
    let response = response.expect("the exchange has a response head");
    let seen = exchange_seen(&response, h.take_unread(conn));
    (seen, events, conn, h.closed(conn))
}

#[test]
fn exchanges_answer_as_the_built_in_path_writes() {
    let cases = table();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for c in &cases {
        eprintln!("case: {}", c.name);
        let (native, native_events, nconn, _) = run_native(c);
        let (exchange, exchange_events, xconn, closed) = run_exchange(c);
        assert_eq!(nconn, xconn, "{}: the same connection ids", c.name);
        assert_eq!(exchange, native, "{}", c.name);
        assert_eq!(exchange_events, native_events, "{}: events", c.name);
        if let ResponseBody::Length(n) = exchange.body {
            assert_eq!(exchange.bytes.len(), n, "{}: body length", c.name);
        }
        // A response that ended ends its exchange, gracefully.
        let ended = match exchange.body {
            _ if exchange.upgrade => false,
            ResponseBody::Empty | ResponseBody::Length(_) => true,
            ResponseBody::Stream => exchange.bytes.windows(3).any(|w| w == b"c[3"),
        };
        if ended {
            assert_eq!(
                closed,
                Some(After::Close),
                "{}: closed after the body",
                c.name
            );
        }
    }
}

#[test]
fn the_table_covers_every_answer_shape() {
    let mut statuses: Vec<u16> = table()
        .iter()
        .map(|c| {
            eprintln!("case: {}", c.name);
            run_exchange(c).0.status
        })
        .collect();
    statuses.sort();
    statuses.dedup();
    assert_eq!(
        statuses,
        [101, 200, 204, 304, 400, 403, 404, 405, 413, 426, 431, 500]
    );
}

// ----- building requests by hand, as a host does -----

fn extended_connect() -> RequestExtras {
    RequestExtras {
        connect_protocol: Some(Bytes::from_static(b"websocket")),
        ..RequestExtras::default()
    }
}

#[test]
fn io_respond_comes_once_and_first_and_a_bodiless_answer_closes_on_take() {
    let h = Harness::echo();
    let now = h.now();
    let mut server = h.server;
    let peer = "127.0.0.1:1".parse().unwrap();
    let id = server.handle_request(
        now,
        peer,
        request("OPTIONS", "/echo/info", &[], b""),
        RequestExtras::default(),
    );
    assert!(server.is_exchange_connection(id));
    assert_eq!(server.poll_io(), Some(sockjs_core::Io::Respond(id)));
    assert_eq!(server.poll_io(), None, "nothing before the head is taken");
    let r = server.take_response(id).unwrap();
    assert_eq!(
        (r.status, r.body, r.upgrade),
        (204, ResponseBody::Empty, false)
    );
    assert_eq!(
        server.poll_io(),
        Some(sockjs_core::Io::Close {
            connection: id,
            aborted: false
        })
    );
    assert!(!server.is_connection(id));
    assert_eq!(server.take_response(id), None);

    // With a body: Respond, then Write, then Close once it is all written.
    let id = server.handle_request(
        now,
        peer,
        request("GET", "/echo", &[], b""),
        RequestExtras::default(),
    );
    assert_eq!(server.poll_io(), Some(sockjs_core::Io::Respond(id)));
    assert_eq!(server.poll_io(), Some(sockjs_core::Io::Write(id)));
    let r = server.take_response(id).unwrap();
    assert_eq!(r.body, ResponseBody::Length(19));
    assert_eq!(server.poll_io(), None);
    let body: Vec<u8> = server.output(id).concat();
    assert_eq!(body, b"Welcome to SockJS!\n");
    server.handle_written(now, id, 10);
    assert_eq!(server.poll_io(), None);
    server.handle_written(now, id, 9);
    assert_eq!(
        server.poll_io(),
        Some(sockjs_core::Io::Close {
            connection: id,
            aborted: false
        })
    );
    assert_eq!(server.connection_count(), 0);
    // Input before an upgrade is the host's HTTP stack's: ignored.
    let id = server.handle_request(
        now,
        peer,
        request("POST", "/echo/000/s/xhr_streaming", &[], b""),
        RequestExtras::default(),
    );
    server.handle_bytes(now, id, b"GET /echo HTTP/1.1\r\n\r\n");
    server.handle_eof(now, id);
    assert_eq!(server.poll_io(), Some(sockjs_core::Io::Respond(id)));
    assert_eq!(server.poll_io(), Some(sockjs_core::Io::Write(id)));
    assert_eq!(server.poll_io(), None);
    // A poll waiting for its frame ignores an end of stream too: no Io::Close before the head.
    let mut h = Harness::echo();
    h.xhr(&session_url("t"));
    let s = h.opened();
    let id = h.exchange(
        request("POST", "/echo/000/t/xhr", &[], b""),
        RequestExtras::default(),
    );
    assert!(h.response(id).is_none(), "the poll waits");
    h.client_eof(id);
    assert_eq!(h.closed(id), None);
    h.app_send(s, "late");
    assert_eq!(h.response(id).unwrap().body, ResponseBody::Length(10));
    assert_eq!(h.take_unread(id), b"a[\"late\"]\n");
    assert_eq!(h.closed(id), Some(After::Close));
}

#[test]
fn a_head_never_taken_is_aborted_at_the_write_timeout() {
    let mut h = Harness::echo();
    let now = h.now();
    let id = h.server.handle_request(
        now,
        "127.0.0.1:1".parse().unwrap(),
        request("GET", "/echo/info", &[], b""),
        RequestExtras::default(),
    );
    assert_eq!(h.server.poll_io(), Some(sockjs_core::Io::Respond(id)));
    assert_eq!(h.server.poll_io(), Some(sockjs_core::Io::Write(id)));
    let timeout = h.server.limits().write_timeout;
    let at = h.server.poll_timeout().unwrap();
    assert_eq!(at, now + timeout);
    h.server.handle_timeout(at);
    assert_eq!(
        h.server.poll_io(),
        Some(sockjs_core::Io::Close {
            connection: id,
            aborted: true
        })
    );
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn shutdown_and_connection_limit_answer_503_as_accept_does() {
    let mut h = Harness::with_limits(Options::default(), limits(|l| l.max_connections = 1));
    let streaming = h.exchange_stalled(
        request("POST", "/echo/000/a/xhr_streaming", &[], b""),
        RequestExtras::default(),
    );
    let busy = h.exchange(request("GET", "/echo", &[], b""), RequestExtras::default());
    let r = h.response(busy).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(h.take_unread(busy), b"Server busy\n");
    assert_eq!(h.closed(busy), Some(After::Close));
    h.client_closes(streaming);
    h.take_events();
    h.shutdown();
    let late = h.exchange(request("GET", "/echo", &[], b""), RequestExtras::default());
    assert_eq!(h.response(late).unwrap().status, 503);
    assert_eq!(h.closed(late), Some(After::Close));
    assert_eq!(h.server.connection_count(), 0);
}

// ----- streaming under a host that takes nothing -----

#[test]
fn a_stream_nobody_reads_stays_bounded_and_is_aborted_at_the_write_timeout() {
    let lim = limits(|l| {
        l.max_unflushed_bytes = 4096;
        l.max_queued_bytes = usize::MAX / 2;
        l.max_queued_messages = usize::MAX / 2;
    });
    for transport in ["xhr_streaming", "eventsource", "htmlfile?c=f"] {
        let mut h =
            Harness::with_limits(Options::default().response_limit(usize::MAX), lim.clone());
        let method = if transport == "xhr_streaming" {
            "POST"
        } else {
            "GET"
        };
        let c = h.exchange_stalled(
            request(method, &format!("/echo/000/s/{transport}"), &[], b""),
            RequestExtras::default(),
        );
        assert_eq!(h.response(c).unwrap().body, ResponseBody::Stream);
        let s = h.opened();
        let message = "x".repeat(1000);
        let mut peak = 0;
        for _ in 0..200 {
            h.app_send(s, &message);
            peak = peak.max(h.in_flight(c));
        }
        // One frame may pass the bound.
        // The prelude, then at most one frame past the bound.
        assert!(
            peak <= 2 * 4096 + 6 * 1100,
            "{transport}: {peak} bytes waiting"
        );
        assert!(
            h.server.queued(s).unwrap().0 > 100_000,
            "{transport}: the rest is queued"
        );
        let timeout = h.server.limits().write_timeout;
        h.advance(timeout + secs(1));
        assert_eq!(h.closed(c), Some(After::Abort), "{transport}");
        assert!(
            h.take_events()
                .iter()
                .any(|e| matches!(e, Event::Closed { session, reason: CloseReason::Interrupted } if *session == s)),
            "{transport}: the session is interrupted"
        );
    }
}

#[test]
fn a_slow_host_gets_the_stream_as_it_takes_it() {
    let mut h = Harness::with_limits(Options::default(), limits(|l| l.max_unflushed_bytes = 1024));
    let c = h.exchange_stalled(
        request("POST", "/echo/000/s/xhr_streaming", &[], b""),
        RequestExtras::default(),
    );
    let s = h.opened();
    for i in 0..50 {
        h.app_send(s, &format!("m{i}-{}", "y".repeat(200)));
    }
    let mut got = Vec::new();
    for _ in 0..1000 {
        let before = got.len();
        h.client_reads(c, 300);
        got.extend(h.take_unread(c));
        // The prelude and open frame, or the bound and one message past it.
        assert!(h.in_flight(c) <= 2051, "{} waiting", h.in_flight(c));
        if got.len() == before {
            break;
        }
    }
    let text = String::from_utf8(got).unwrap();
    for i in 0..50 {
        assert!(text.contains(&format!("m{i}-")), "message {i} arrived");
    }
    assert!(text.starts_with(&format!("{}\no\n", "h".repeat(2048))));
}

// ----- the client going away -----

#[test]
fn a_client_gone_mid_stream_interrupts_its_session_as_on_the_built_in_path() {
    let run = |exchange: bool| {
        let mut h = Harness::echo();
        let c = if exchange {
            h.exchange(
                request("POST", "/echo/000/s/xhr_streaming", &[], b""),
                RequestExtras::default(),
            )
        } else {
            let c = h.connect();
            h.send_bytes(c, &req("POST", "/echo/000/s/xhr_streaming", &[], b""));
            c
        };
        let s = h.opened();
        h.app_send(s, "one");
        h.client_closes(c);
        let events = h.take_events();
        // The session answers the next receiver with its close frame.
        let next = h.xhr(&session_url("s"));
        (
            events,
            next,
            h.server.is_connection(c),
            h.try_app_send(s, "x"),
        )
    };
    let native = run(false);
    let exchange = run(true);
    assert_eq!(exchange, native);
    assert!(matches!(
        &exchange.0[..],
        [Event::Closed {
            reason: CloseReason::Interrupted,
            ..
        }]
    ));
    assert_eq!(exchange.1, "c[1002,\"Connection interrupted\"]\n");
    assert!(!exchange.2);
}

#[test]
fn a_client_gone_during_a_poll_leaves_no_connection() {
    let mut h = Harness::echo();
    let c = h.exchange_stalled(
        request("POST", "/echo/000/s/xhr", &[], b""),
        RequestExtras::default(),
    );
    h.opened();
    assert_eq!(h.in_flight(c), 2);
    h.client_closes(c);
    assert_eq!(h.server.connection_count(), 0);
    assert_eq!(h.closed(c), None, "no Io::Close after handle_closed");
}

// ----- WebSockets over an exchange -----

#[test]
fn rfc6455_over_an_exchange_upgrades_and_echoes() {
    let mut h = Harness::echo();
    let c = h.exchange(
        request("GET", "/echo/000/s/websocket", &ws_headers("13"), b""),
        RequestExtras::default(),
    );
    let r = h.response(c).unwrap().clone();
    assert_eq!(
        (r.status, r.upgrade, r.body),
        (101, true, ResponseBody::Empty)
    );
    assert_eq!(
        r.headers,
        [
            ("Upgrade", Bytes::from_static(b"websocket")),
            ("Connection", Bytes::from_static(b"Upgrade")),
            (
                "Sec-WebSocket-Accept",
                Bytes::from_static(testing::SUITE_WS_ACCEPT.as_bytes())
            ),
        ]
    );
    // The first bytes on the upgraded stream: the open frame.
    assert_eq!(h.ws_read(c), Some(WsFrame::text("o")));
    let s = h.opened();
    h.ws_send_text(c, &client_messages(&["hello"]));
    assert_eq!(h.messages(s), ["hello"]);
    h.app_send(s, "hello");
    assert_eq!(h.ws_read(c), Some(WsFrame::text("a[\"hello\"]")));
    // Close from the client: the native closing handshake, then Shutdown/Close as native.
    h.send_bytes(c, &ws_frame(true, 8, &[0x03, 0xe8]));
    assert_eq!(h.ws_read(c), Some(WsFrame::close(1000, "")));
    assert_eq!(h.closed(c), Some(After::Close));
}

#[test]
fn hixie76_over_an_exchange_answers_the_key_as_the_first_bytes_after_the_head() {
    let mut h = Harness::echo();
    let c = h.exchange(
        request("GET", "/echo/000/s/websocket", &hixie_headers(true), b""),
        RequestExtras::default(),
    );
    let r = h.response(c).unwrap().clone();
    assert_eq!(
        (r.status, r.reason, r.upgrade),
        (101, Some("WebSocket Protocol Handshake"), true)
    );
    assert_eq!(
        r.header("sec-websocket-location"),
        Some(&b"ws:///echo/000/s/websocket"[..]),
        "no Host header in this request"
    );
    h.assert_nothing_unread(c);
    // The 8 key bytes arrive on the upgraded stream.
    h.send_bytes(c, b"aaaa");
    h.assert_nothing_unread(c);
    h.send_bytes(c, b"aaaa\x00[\"x\"]\xff");
    assert_eq!(h.read_exact(c, 16), HIXIE_ANSWER);
    assert_eq!(h.hixie_read(c), Some(HixieFrame::Text("o".into())));
    let s = h.opened();
    assert_eq!(h.messages(s), ["x"]);
    h.app_send(s, "y");
    assert_eq!(h.hixie_read(c), Some(HixieFrame::Text("a[\"y\"]".into())));
}

#[test]
fn extended_connect_is_answered_200_and_carries_frames() {
    for (path, raw) in [("/echo/000/s/websocket", false), ("/echo/websocket", true)] {
        let mut h = Harness::echo();
        let c = h.exchange(
            request("CONNECT", path, &[("Sec-WebSocket-Version", "13")], b""),
            extended_connect(),
        );
        let r = h.response(c).unwrap().clone();
        assert_eq!(
            r,
            Response {
                status: 200,
                reason: None,
                headers: vec![],
                body: ResponseBody::Empty,
                upgrade: true,
            },
            "{path}"
        );
        let s = h.opened();
        if raw {
            h.ws_send_text(c, "plain");
            assert_eq!(h.messages(s), ["plain"]);
            h.app_send(s, "back");
            assert_eq!(h.ws_read(c), Some(WsFrame::text("back")));
        } else {
            assert_eq!(h.ws_read(c), Some(WsFrame::text("o")));
            h.ws_send_text(c, &client_messages(&["a"]));
            assert_eq!(h.messages(s), ["a"]);
            h.app_close(s, 3000, "done");
            assert_eq!(h.ws_read(c), Some(WsFrame::text("c[3000,\"done\"]")));
            assert_eq!(h.ws_read(c), Some(WsFrame::close(1000, "Normal closure")));
        }
    }
}

#[test]
fn extended_connect_refusals() {
    let answer = |r: Request, extras: RequestExtras| {
        let mut h = Harness::echo();
        let c = h.exchange(r, extras);
        let r = h.response(c).unwrap().clone();
        (r.status, testing::lossy(&h.take_unread(c)), h.take_events())
    };
    // Not a WebSocket URL: a plain CONNECT, refused as the built-in path refuses it.
    let (status, _, _) = answer(
        request("CONNECT", "/echo/info", &[], b""),
        extended_connect(),
    );
    assert_eq!(status, 405);
    // Another protocol, or none: a plain CONNECT.
    let other = RequestExtras {
        connect_protocol: Some(Bytes::from_static(b"chat")),
        ..RequestExtras::default()
    };
    let hdr = [("Sec-WebSocket-Version", "13")];
    assert_eq!(
        answer(request("CONNECT", "/echo/websocket", &hdr, b""), other).0,
        405
    );
    assert_eq!(
        answer(
            request("CONNECT", "/echo/websocket", &hdr, b""),
            RequestExtras::default()
        )
        .0,
        405
    );
    // A `:protocol` on a GET changes nothing: no upgrade headers, 400.
    let (status, body, _) = answer(
        request("GET", "/echo/websocket", &hdr, b""),
        extended_connect(),
    );
    assert_eq!(
        (status, body.as_str()),
        (400, "Can \"Upgrade\" only to \"WebSocket\".")
    );
    // Versions as for an upgrade.
    let (status, _, _) = answer(
        request(
            "CONNECT",
            "/echo/websocket",
            &[("Sec-WebSocket-Version", "99")],
            b"",
        ),
        extended_connect(),
    );
    assert_eq!(status, 426);
    let (status, body, events) = answer(
        request("CONNECT", "/echo/websocket", &[], b""),
        extended_connect(),
    );
    assert_eq!(
        (status, body.as_str()),
        (400, "Unsupported WebSocket version.")
    );
    assert!(events.is_empty());
    // WebSockets off: 404 as for a GET.
    let mut h = Harness::with_options(Options::default().websocket(false));
    let c = h.exchange(
        request("CONNECT", "/echo/websocket", &hdr, b""),
        extended_connect(),
    );
    assert_eq!(h.response(c).unwrap().status, 404);
}

#[test]
fn an_upgrade_the_host_cannot_make_is_reported_closed() {
    let mut h = Harness::echo();
    let c = h.exchange_stalled(
        request("GET", "/echo/000/s/websocket", &ws_headers("13"), b""),
        RequestExtras::default(),
    );
    let s = h.opened();
    h.client_closes(c);
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: s,
            reason: CloseReason::ClientClosed {
                code: 1006,
                reason: String::new()
            }
        }]
    );
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn a_mounted_prefix_is_the_full_path() {
    let mut h = Harness::new(Config::new().endpoint("/api/v1/sockjs", Options::default()));
    let c = h.exchange(
        request("GET", "/api/v1/sockjs/info?t=1", &[], b""),
        RequestExtras::default(),
    );
    assert_eq!(h.response(c).unwrap().status, 200);
    let c = h.exchange(
        request("GET", "/sockjs/info", &[], b""),
        RequestExtras::default(),
    );
    assert_eq!(h.response(c).unwrap().status, 404);
}

#[test]
fn an_exchange_target_neither_origin_nor_absolute_form_is_400() {
    let mut h = Harness::echo();
    let c = h.exchange(request("GET", "echo", &[], b""), RequestExtras::default());
    assert_eq!(h.response(c).unwrap().status, 400);
    assert_eq!(h.take_unread(c), b"Bad request\n");
}

#[test]
fn hixie76_key_after_a_shutdown_opens_no_session() {
    for exchange in [false, true] {
        let mut h = Harness::echo();
        let headers = hixie_headers(true);
        let c = if exchange {
            h.exchange(
                request("GET", "/echo/000/s/websocket", &headers, b""),
                RequestExtras::default(),
            )
        } else {
            let c = h.connect();
            h.send_bytes(c, &req("GET", "/echo/000/s/websocket", &headers, b""));
            c
        };
        h.take_unread(c);
        h.shutdown();
        h.send_bytes(c, b"aaaaaaaa");
        assert!(h.take_events().is_empty(), "no session after the shutdown");
        assert_eq!(h.server.session_count(), 0);
        h.assert_nothing_unread(c);
        assert!(h.closed(c).is_some(), "exchange {exchange}: closed");
    }
}

#[test]
fn hixie76_key_past_the_session_limit_opens_no_session() {
    let mut h = Harness::with_limits(Options::default(), limits(|l| l.max_sessions = 1));
    let c = h.exchange(
        request("GET", "/echo/000/s/websocket", &hixie_headers(true), b""),
        RequestExtras::default(),
    );
    h.xhr(&session_url("other"));
    h.opened();
    h.send_bytes(c, b"aaaaaaaa");
    assert!(h.take_events().is_empty());
    assert_eq!(h.server.session_count(), 1);
    assert!(h.closed(c).is_some());
}

/// A host sends each `Bytes` of an exchange's output as one piece of the body (an HTTP/1.1
/// chunk, an HTTP/2 DATA frame): a stream's prelude and each frame are pieces of their own,
/// where the built-in path ends a chunk, so clients that read chunk by chunk see the same.
#[test]
fn a_streams_output_keeps_the_chunk_boundaries_of_the_built_in_path() {
    for (transport, prelude_len, open, frame) in [
        ("xhr_streaming", 2049, "o\n", "a[\"x\"]\n"),
        (
            "eventsource",
            2,
            "data: o\r\n\r\n",
            "data: a[\"x\"]\r\n\r\n",
        ),
    ] {
        let mut h = Harness::echo();
        let c = h.exchange_stalled(
            request(
                if transport == "eventsource" {
                    "GET"
                } else {
                    "POST"
                },
                &format!("/echo/000/s/{transport}"),
                &[],
                b"",
            ),
            RequestExtras::default(),
        );
        let s = h.opened();
        h.app_send(s, "x");
        let chunks: Vec<Vec<u8>> = h.server.output(c).iter().map(|b| b.to_vec()).collect();
        assert_eq!(chunks.len(), 3, "{transport}: {chunks:?}");
        assert_eq!(chunks[0].len(), prelude_len, "{transport}");
        assert_eq!(chunks[1], open.as_bytes(), "{transport}");
        assert_eq!(chunks[2], frame.as_bytes(), "{transport}");
    }
}
