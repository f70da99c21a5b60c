//! What ties requests to the client behind them: per-address limits
//! (`max_connections_per_peer`, `max_sessions_per_peer`: one address past its share gets a
//! 503 while every other address is served), session binding (a request for a bound session
//! that does not match is answered as if the session did not exist), and the client address
//! behind trusted proxies.

use std::net::SocketAddr;

use sockjs_core::testing::{self, After, Harness, limits, secs, session_url};
use sockjs_core::{Config, Event, IpRange, Options, SessionBinding};

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

// ----- session binding -----

const NOT_FOUND: &str = "404 Error: Page not found\n";

/// A request on a fresh connection from `peer`; the response.
fn fetch_from(
    h: &mut Harness,
    peer: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> testing::Response {
    let c = h.connect_from(peer);
    h.request(c, method, path, headers, body);
    h.read_response(c)
}

#[test]
fn a_session_bound_to_the_peer_address_ignores_other_addresses() {
    let options = Options::default().session_binding(SessionBinding::PeerAddress);
    let mut h = Harness::with_options(options);
    let owner = from("10.0.0.1", 1000);
    let thief = from("10.0.0.2", 1000);
    let url = session_url("s");
    let r = fetch_from(&mut h, owner, "POST", &format!("{url}/xhr"), &[], b"");
    assert_eq!(r.text(), "o\n");
    let s = h.opened();
    // Another address can neither send nor receive on it, and the session never knows.
    let r = fetch_from(
        &mut h,
        thief,
        "POST",
        &format!("{url}/xhr_send"),
        &[],
        b"[\"x\"]",
    );
    assert_eq!((r.status, r.text()), (404, NOT_FOUND));
    let r = fetch_from(&mut h, thief, "POST", &format!("{url}/xhr"), &[], b"");
    assert_eq!((r.status, r.text()), (404, NOT_FOUND));
    let r = fetch_from(&mut h, thief, "GET", &format!("{url}/jsonp?c=f"), &[], b"");
    assert_eq!(r.status, 404);
    let r = fetch_from(
        &mut h,
        thief,
        "POST",
        &format!("{url}/jsonp_send"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"d=%5B%22x%22%5D",
    );
    assert_eq!(r.status, 404);
    assert_eq!(h.server.binding_refusals(), 4);
    assert!(h.take_events().is_empty());
    // Its owner, from another port of the same address, goes on as before.
    let owner2 = from("10.0.0.1", 2000);
    let r = fetch_from(
        &mut h,
        owner2,
        "POST",
        &format!("{url}/xhr_send"),
        &[],
        b"[\"mine\"]",
    );
    assert_eq!(r.status, 204);
    assert_eq!(h.messages(s), ["mine"]);
    h.app_send(s, "for the owner");
    let r = fetch_from(&mut h, owner, "POST", &format!("{url}/xhr"), &[], b"");
    assert_eq!(r.text(), "a[\"for the owner\"]\n");
    assert_eq!(h.server.binding_refusals(), 4);
}

#[test]
fn a_session_bound_to_a_cookie_needs_the_same_value() {
    let options = Options::default().session_binding(SessionBinding::Cookie("JSESSIONID".into()));
    let mut h = Harness::with_options(options);
    let peer = from("10.0.0.1", 1000);
    let url = session_url("s");
    let mine = [("Cookie", "theme=dark; JSESSIONID=abc123")];
    let r = fetch_from(&mut h, peer, "POST", &format!("{url}/xhr"), &mine, b"");
    assert_eq!(r.text(), "o\n");
    let s = h.opened();
    for cookies in [
        vec![("Cookie", "JSESSIONID=abc124")],
        vec![("Cookie", "theme=dark")],
        vec![],
    ] {
        let r = fetch_from(
            &mut h,
            peer,
            "POST",
            &format!("{url}/xhr_send"),
            &cookies,
            b"[\"x\"]",
        );
        assert_eq!((r.status, r.text()), (404, NOT_FOUND), "{cookies:?}");
    }
    assert_eq!(h.server.binding_refusals(), 3);
    // From anywhere, with the right cookie (in another Cookie header, too), it works.
    let elsewhere = from("192.0.2.7", 9);
    let split = [("Cookie", "theme=dark"), ("Cookie", "JSESSIONID=abc123")];
    let r = fetch_from(
        &mut h,
        elsewhere,
        "POST",
        &format!("{url}/xhr_send"),
        &split,
        b"[\"ok\"]",
    );
    assert_eq!(r.status, 204);
    assert_eq!(h.messages(s), ["ok"]);
    // A session opened without the cookie serves only requests without it.
    let bare = session_url("t");
    assert_eq!(
        fetch_from(&mut h, peer, "POST", &format!("{bare}/xhr"), &[], b"").text(),
        "o\n"
    );
    h.opened();
    let r = fetch_from(
        &mut h,
        peer,
        "POST",
        &format!("{bare}/xhr_send"),
        &mine,
        b"[\"x\"]",
    );
    assert_eq!(r.status, 404);
    let r = fetch_from(
        &mut h,
        peer,
        "POST",
        &format!("{bare}/xhr_send"),
        &[],
        b"[\"y\"]",
    );
    assert_eq!(r.status, 204);
}

#[test]
fn unbound_sessions_serve_anyone_as_the_protocol_says() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let r = fetch_from(
        &mut h,
        from("10.0.0.1", 1),
        "POST",
        &format!("{url}/xhr"),
        &[],
        b"",
    );
    assert_eq!(r.text(), "o\n");
    let s = h.opened();
    let r = fetch_from(
        &mut h,
        from("10.0.0.2", 1),
        "POST",
        &format!("{url}/xhr_send"),
        &[],
        b"[\"x\"]",
    );
    assert_eq!(r.status, 204);
    assert_eq!(h.messages(s), ["x"]);
    assert_eq!(h.server.binding_refusals(), 0);
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let proxy = from("10.0.0.1", 5000);
    let config = Config::new()
        .endpoint(
            "/echo",
            Options::default().session_binding(SessionBinding::PeerAddress),
        )
        .trusted_proxy("10.0.0.0/8".parse::<IpRange>().unwrap());
    let mut h = Harness::new(config);
    let url = session_url("s");
    let alice = [("X-Forwarded-For", "203.0.113.5")];
    let r = fetch_from(&mut h, proxy, "POST", &format!("{url}/xhr"), &alice, b"");
    assert_eq!(r.text(), "o\n");
    let Some(Event::Opened { info, .. }) = h.next_event() else {
        panic!("opened");
    };
    assert_eq!(
        info.client_ip,
        "203.0.113.5".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(info.peer, proxy);
    // Through the same proxy, another client (even one claiming alice's address further
    // out) is refused; alice, through another trusted hop, is served.
    let mallory = [("X-Forwarded-For", "203.0.113.5, 198.51.100.9")];
    let r = fetch_from(
        &mut h,
        proxy,
        "POST",
        &format!("{url}/xhr_send"),
        &mallory,
        b"[\"m\"]",
    );
    assert_eq!(r.status, 404);
    let via = [("Forwarded", "for=203.0.113.5, for=10.9.0.1")];
    let r = fetch_from(
        &mut h,
        proxy,
        "POST",
        &format!("{url}/xhr_send"),
        &via,
        b"[\"a\"]",
    );
    assert_eq!(r.status, 204);
    // A client that is not a trusted proxy cannot claim an address.
    let r = fetch_from(
        &mut h,
        from("203.0.113.77", 1),
        "POST",
        &format!("{url}/xhr_send"),
        &alice,
        b"[\"spoof\"]",
    );
    assert_eq!(r.status, 404);
    assert_eq!(h.server.binding_refusals(), 2);
}
