//! Authorization before a session opens: a request that would open a session on an
//! endpoint with `Options::authorize` is held and shown to the application, and only an
//! accepted one opens its session; refused, timed out, or gone, it leaves no session behind.

use sockjs_core::testing::{self, Harness, limits, ms, secs, session_url};
use sockjs_core::{Authorization, ConnectionId, Event, Options};

fn harness() -> Harness {
    Harness::with_options(Options::default().authorize(true))
}

/// The held request's `Event::Authorize`, checked to be the only event.
#[track_caller]
fn held(h: &mut Harness) -> (ConnectionId, Box<sockjs_core::RequestInfo>) {
    match h.take_events().as_slice() {
        [
            Event::Authorize {
                connection,
                endpoint: 0,
                info,
            },
        ] => (*connection, info.clone()),
        other => panic!("one Authorize event, got {other:?}"),
    }
}

/// A new connection whose `xhr` poll for session `id`, carrying `headers`, is held: the
/// connection and what `Event::Authorize` showed of the request.
#[track_caller]
fn held_poll(
    h: &mut Harness,
    id: &str,
    headers: &[(&str, &str)],
) -> (ConnectionId, Box<sockjs_core::RequestInfo>) {
    let c = h.connect();
    h.request(c, "POST", &format!("{}/xhr", session_url(id)), headers, b"");
    let (conn, info) = held(h);
    assert_eq!(conn, c);
    (c, info)
}

fn answer(h: &mut Harness, conn: ConnectionId, a: Authorization) -> bool {
    let now = h.now();
    let known = h.server.authorize(now, conn, a);
    h.drain();
    known
}

fn refuse(status: u16, body: &str) -> Authorization {
    Authorization::Refuse {
        status,
        body: body.into(),
    }
}

#[test]
fn an_accepted_poll_opens_its_session() {
    let mut h = harness();
    let url = session_url("s");
    let (c, info) = held_poll(&mut h, "s", &[("Cookie", "auth=ok")]);
    assert_eq!(info.header("cookie"), Some("auth=ok"));
    assert_eq!(info.protocol, "xhr-polling");
    assert_eq!(h.unread(c), b"", "nothing is answered while held");
    assert!(answer(&mut h, c, Authorization::Accept));
    assert_eq!(h.read_response(c).text(), "o\n");
    let s = h.opened();
    // The open session is served without asking again.
    h.app_send(s, "hi");
    assert_eq!(h.xhr(&url), "a[\"hi\"]\n");
    assert!(h.take_events().is_empty());
    // Answering twice changes nothing.
    assert!(!answer(&mut h, c, Authorization::Accept));
}

#[test]
fn a_refused_request_gets_its_status_and_no_session() {
    let mut h = harness();
    let url = session_url("s");
    let (c, _) = held_poll(&mut h, "s", &[("Origin", "http://app")]);
    assert!(answer(&mut h, c, refuse(403, "Forbidden: no auth cookie")));
    let expected = "HTTP/1.1 403 Forbidden\r\nCache-Control: no-store, no-cache, no-transform, \
                    must-revalidate, max-age=0\r\nAccess-Control-Allow-Origin: http://app\r\n\
                    Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n\
                    Content-Type: text/plain; charset=UTF-8\r\nContent-Length: 25\r\n\r\n\
                    Forbidden: no auth cookie";
    assert_eq!(testing::lossy(&h.take_unread(c)), expected);
    assert!(h.take_events().is_empty(), "no Opened");
    assert_eq!(h.server.session_count(), 0);
    // The session does not exist: sends to it are 404, and the connection is reusable.
    h.request(c, "POST", &format!("{url}/xhr_send"), &[], b"[\"x\"]");
    assert_eq!(h.read_response(c).status, 404);
    // A request for the same id asks again.
    h.request(c, "POST", &format!("{url}/xhr"), &[], b"");
    held(&mut h);
}

#[test]
fn refusals_are_held_to_an_error_status_and_a_short_body() {
    let mut h = harness();
    for (status, sent) in [
        (200, 403),
        (101, 403),
        (600, 403),
        (401, 401),
        (429, 429),
        (503, 503),
    ] {
        let c = h.connect();
        h.request(
            c,
            "GET",
            &format!("{}/eventsource", session_url("s")),
            &[],
            b"",
        );
        held(&mut h);
        let long = "é".repeat(1000);
        answer(&mut h, c, refuse(status, &long));
        let r = h.read_response(c);
        assert_eq!(r.status, sent, "{status}");
        // 1 KiB at most, cut at a character boundary.
        assert_eq!(r.text(), "é".repeat(512));
    }
    assert!(h.take_events().is_empty());
}

#[test]
fn websocket_handshakes_wait_for_the_answer() {
    let mut h = harness();
    let c = h.connect();
    h.request(
        c,
        "GET",
        "/echo/000/w/websocket",
        &testing::ws_headers("13"),
        b"",
    );
    let (_, info) = held(&mut h);
    assert_eq!(info.protocol, "websocket");
    assert_eq!(h.unread(c), b"");
    answer(&mut h, c, Authorization::Accept);
    assert_eq!(h.read_head(c).status, 101);
    assert_eq!(h.ws_text(c), "o");
    h.opened();
    // Refused: the handshake gets the status, and no session opens.
    let d = h.connect();
    h.request(d, "GET", "/echo/websocket", &testing::ws_headers("13"), b"");
    let (_, info) = held(&mut h);
    assert_eq!(info.protocol, "websocket-raw");
    answer(&mut h, d, refuse(401, "Log in first"));
    let r = h.read_response(d);
    assert_eq!((r.status, r.text()), (401, "Log in first"));
    assert!(h.take_events().is_empty());
}

#[test]
fn info_greeting_and_iframe_stay_public() {
    let mut h = harness();
    assert_eq!(h.get("/echo/info").status, 200);
    assert_eq!(h.get("/echo").status, 200);
    assert_eq!(h.get("/echo/iframe.html").status, 200);
    assert!(h.take_events().is_empty());
}

#[test]
fn an_unanswered_request_times_out_with_503() {
    let mut h = Harness::with_limits(
        Options::default().authorize(true),
        limits(|l| l.authorization_timeout = secs(2)),
    );
    let (c, _) = held_poll(&mut h, "s", &[]);
    h.advance(ms(1999));
    assert_eq!(h.unread(c), b"");
    h.advance(ms(1));
    let r = h.read_response(c);
    assert_eq!((r.status, r.text()), (503, "Authorization timed out"));
    // A late answer is ignored.
    assert!(!answer(&mut h, c, Authorization::Accept));
    assert!(h.take_events().is_empty());
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn a_client_that_leaves_while_held_leaves_nothing() {
    let mut h = harness();
    let (c, _) = held_poll(&mut h, "s", &[]);
    h.client_closes(c);
    assert!(!answer(&mut h, c, Authorization::Accept));
    assert!(h.take_events().is_empty());
    // Likewise at end of stream.
    let (d, _) = held_poll(&mut h, "t", &[]);
    h.client_eof(d);
    assert!(!answer(&mut h, d, Authorization::Accept));
    assert!(h.take_events().is_empty());
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn requests_pipelined_behind_a_held_one_wait_for_it() {
    let mut h = harness();
    let c = h.connect();
    let mut bytes = testing::request_bytes("POST", &format!("{}/xhr", session_url("s")), &[], b"");
    bytes.extend(testing::request_bytes("GET", "/echo/info", &[], b""));
    h.send_bytes(c, &bytes);
    held(&mut h);
    assert_eq!(h.unread(c), b"", "the pipelined /info waits its turn");
    answer(&mut h, c, Authorization::Accept);
    assert_eq!(h.read_response(c).text(), "o\n");
    assert_eq!(h.read_response(c).status, 200);
    h.opened();
}

#[test]
fn shutting_down_answers_held_requests() {
    let mut h = harness();
    let (c, _) = held_poll(&mut h, "s", &[]);
    h.shutdown();
    let r = h.read_response(c);
    assert_eq!((r.status, r.text()), (503, "Server shutting down"));
    assert!(!answer(&mut h, c, Authorization::Accept));
    assert!(h.take_events().is_empty());
}

#[test]
fn endpoints_without_authorize_never_ask() {
    let mut h = Harness::echo();
    assert_eq!(h.xhr(&session_url("s")), "o\n");
    h.opened();
}
