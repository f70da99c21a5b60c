//! Per-address limits: `max_connections_per_peer` and `max_sessions_per_peer` refuse one
//! address past its share with a 503 while every other address is served, and a refused
//! address gets its room back as its connections and sessions go.

use std::net::SocketAddr;

use sockjs_core::testing::{self, After, Harness, limits, secs, session_url};
use sockjs_core::{Event, Options};

const GREETING: &str = "Welcome to SockJS!\n";

fn from(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

#[test]
fn connections_past_the_per_peer_limit_get_503_and_others_are_served() {
    let mut h = Harness::with_limits(
        Options::default(),
        limits(|l| l.max_connections_per_peer = 2),
    );
    let a1 = h.connect_from(from("10.0.0.1", 1000));
    let a2 = h.connect_from(from("10.0.0.1", 1001));
    let a3 = h.connect_from(from("10.0.0.1", 1002));
    let refusal = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=UTF-8\r\n\
                   Connection: close\r\nContent-Length: 39\r\n\r\n\
                   Too many connections from this address\n";
    assert_eq!(testing::lossy(&h.take_unread(a3)), refusal);
    assert_eq!(h.closed(a3), Some(After::Close));
    // Another address, IPv6 included, is not held to the first one's count.
    let b = h.connect_from(from("10.0.0.2", 1000));
    let c = h.connect_from(from("::1", 1000));
    for conn in [a1, a2, b, c] {
        h.request(conn, "GET", "/echo", &[], b"");
        assert_eq!(h.read_response(conn).text(), GREETING);
    }
    // The refused one, lingering, still counts until it is gone; then a new one fits.
    let a4 = h.connect_from(from("10.0.0.1", 1003));
    assert_eq!(h.read_response(a4).status, 503);
    h.client_eof(a3);
    h.client_eof(a4);
    h.client_closes(a1);
    let a5 = h.connect_from(from("10.0.0.1", 1004));
    h.request(a5, "GET", "/echo", &[], b"");
    assert_eq!(h.read_response(a5).text(), GREETING);
}

#[test]
fn sessions_past_the_per_peer_limit_get_503_on_every_transport() {
    let mut h = Harness::with_limits(Options::default(), limits(|l| l.max_sessions_per_peer = 2));
    let busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=UTF-8\r\n\
                Content-Length: 35\r\n\r\nToo many sessions from this address";
    // Harness::connect comes from 127.0.0.1: two sessions there, one polling, one WebSocket.
    assert_eq!(h.xhr(&session_url("a")), "o\n");
    let a = h.opened();
    let ws = h.ws_connect("/echo/000/b/websocket");
    assert_eq!(h.ws_text(ws), "o");
    h.opened();
    let d = h.connect();
    for (method, path, headers) in [
        ("POST", "/echo/000/c/xhr", vec![]),
        ("POST", "/echo/000/c/xhr_streaming", vec![]),
        ("GET", "/echo/000/c/eventsource", vec![]),
        ("GET", "/echo/000/c/websocket", testing::ws_headers("13")),
    ] {
        h.request(d, method, path, &headers, b"");
        assert_eq!(testing::lossy(&h.take_unread(d)), busy, "{path}");
    }
    h.request(d, "GET", "/echo/websocket", &testing::ws_headers("13"), b"");
    assert_eq!(h.read_response(d).status, 503);
    assert!(h.take_events().is_empty(), "no session opened");
    // The sessions it has are served, and another address opens its own.
    h.app_send(a, "still here");
    assert_eq!(h.xhr(&session_url("a")), "a[\"still here\"]\n");
    let other = h.connect_from(from("10.9.9.9", 5000));
    h.request(other, "POST", "/echo/000/e/xhr", &[], b"");
    assert_eq!(h.read_response(other).text(), "o\n");
    assert!(matches!(h.next_event(), Some(Event::Opened { .. })));
    // When one of its sessions is gone, the address may open one more.
    h.client_closes(ws);
    h.take_events();
    assert_eq!(h.xhr(&session_url("f")), "o\n");
    h.opened();
    h.request(d, "POST", "/echo/000/g/xhr", &[], b"");
    assert_eq!(testing::lossy(&h.take_unread(d)), busy);
    // A polling session counts until it is forgotten after the disconnect delay.
    h.advance(secs(6));
    h.take_events();
    assert_eq!(h.xhr(&session_url("g")), "o\n");
}
