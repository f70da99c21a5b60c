//! The server's counters against known traffic: sessions on every transport, messages and
//! bytes each way, every close reason the traffic causes, refused requests by status and
//! cause, limits hit, and the notices that tell the host of them.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use sockjs_core::testing::{
    Harness, Receiver, WsFrame, client_messages, limits, secs, session_url, ws_headers,
};
use sockjs_core::{
    CloseKind, CloseReason, Config, Event, Limit, Notice, Options, RefusalCause, Server,
    SessionStats, SessionTransport, Stats,
};

/// Every counter of `stats` that the test does not name is zero: `expect` lists the rest.
struct Expect {
    connections: u64,
    accepted: u64,
    open: Vec<(SessionTransport, u64)>,
    opened: Vec<(SessionTransport, u64)>,
    closed: Vec<(CloseKind, u64)>,
    messages_in: u64,
    bytes_in: u64,
    messages_out: u64,
    bytes_out: u64,
    refused: Vec<(RefusalCause, u64)>,
    statuses: Vec<(u16, u64)>,
    limits: Vec<(Limit, u64)>,
}

#[track_caller]
fn check(stats: &Stats, e: &Expect) {
    let of = |list: &[(SessionTransport, u64)], t| {
        list.iter().find(|(x, _)| *x == t).map_or(0, |(_, n)| *n)
    };
    assert_eq!(stats.connections(), e.connections, "connections");
    assert_eq!(stats.connections_accepted(), e.accepted, "accepted");
    for t in SessionTransport::ALL {
        assert_eq!(stats.sessions(t), of(&e.open, t), "sessions open on {t}");
        assert_eq!(stats.sessions_opened(t), of(&e.opened, t), "opened on {t}");
    }
    for k in CloseKind::ALL {
        let want = e
            .closed
            .iter()
            .find(|(x, _)| *x == k)
            .map_or(0, |(_, n)| *n);
        assert_eq!(stats.sessions_closed(k), want, "closed as {k}");
    }
    assert_eq!(stats.messages_in(), e.messages_in, "messages in");
    assert_eq!(stats.message_bytes_in(), e.bytes_in, "bytes in");
    assert_eq!(stats.messages_out(), e.messages_out, "messages out");
    assert_eq!(stats.message_bytes_out(), e.bytes_out, "bytes out");
    for c in RefusalCause::ALL {
        let want = e
            .refused
            .iter()
            .find(|(x, _)| *x == c)
            .map_or(0, |(_, n)| *n);
        assert_eq!(stats.refused(c), want, "refused for {c}");
    }
    let statuses: Vec<(u16, u64)> = stats.refused_by_status().filter(|(_, n)| *n > 0).collect();
    assert_eq!(statuses, e.statuses, "refused by status");
    assert_eq!(
        stats.refused_total(),
        e.statuses.iter().map(|(_, n)| n).sum::<u64>()
    );
    for l in Limit::ALL {
        let want = e
            .limits
            .iter()
            .find(|(x, _)| *x == l)
            .map_or(0, |(_, n)| *n);
        assert_eq!(stats.limit_hits(l), want, "hits of {l}");
    }
}

fn refusals(notices: &[Notice]) -> Vec<(u16, RefusalCause, Option<Limit>)> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Refused {
                status,
                cause,
                limit,
                ..
            } => Some((*status, *cause, *limit)),
            Notice::LimitHit { .. } => None,
        })
        .collect()
}

fn limit_hits(notices: &[Notice]) -> Vec<Limit> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::LimitHit { limit, .. } => Some(*limit),
            Notice::Refused { .. } => None,
        })
        .collect()
}

/// Known traffic on every transport, an application close, a client close, an interrupted
/// receiver, a timeout, a queue overflow, a frame too big, and refused requests; then every
/// counter is exactly what that traffic makes it.
#[test]
fn counters_match_the_traffic() {
    let options = Options::default().allowed_origins(["http://good.example"]);
    let mut h = Harness::with_limits(
        options,
        limits(|l| {
            l.max_body_size = 1000;
            l.max_queued_messages = 3;
            l.max_frame_size = 64;
        }),
    );

    // A WebSocket session: two messages in, both echoed, then the client closes.
    let ws = h.ws_connect(&format!("{}/websocket", session_url("ws")));
    let s_ws = h.opened();
    assert_eq!(h.ws_text(ws), "o");
    h.ws_send_text(ws, &client_messages(&["hi", "there"]));
    assert_eq!(h.messages(s_ws), ["hi", "there"]);
    h.app_send(s_ws, "hi");
    h.app_send(s_ws, "there");
    let s = h.server.session_stats(s_ws).expect("open");
    assert_eq!(
        (s.transport, s.open, s.messages_in, s.bytes_in),
        (SessionTransport::WebSocket, true, 2, 7)
    );
    assert_eq!((s.messages_out, s.bytes_out, s.queued_messages), (2, 7, 0));
    h.ws_send(ws, 8, &WsFrame::close(1000, "bye").payload);
    assert!(matches!(
        h.take_events()[..],
        [Event::Closed {
            reason: CloseReason::ClientClosed { code: 1000, .. },
            ..
        }]
    ));

    // xhr polling: one message in (3 bytes), one out, then the application closes it.
    let url = session_url("poll");
    assert_eq!(h.xhr(&url), "o\n");
    let s_poll = h.opened();
    h.xhr_send(&url, &client_messages(&["abc"]));
    assert_eq!(h.messages(s_poll), ["abc"]);
    h.app_send(s_poll, "abc");
    assert_eq!(h.xhr(&url), "a[\"abc\"]\n");
    h.app_close(s_poll, 3000, "Go away!");
    h.take_events();
    assert_eq!(h.xhr(&url), "c[3000,\"Go away!\"]\n");

    // xhr_streaming: a message out (a 2-byte character), then the client goes away while
    // the response is attached: interrupted.
    let url = session_url("stream");
    let stream = h.open_streaming(&url);
    let s_stream = h.opened();
    assert_eq!(h.chunk(stream), "o\n");
    h.app_send(s_stream, "é");
    assert_eq!(h.chunk(stream), "a[\"é\"]\n");
    h.client_closes(stream);
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: s_stream,
            reason: CloseReason::Interrupted
        }]
    );

    // eventsource and htmlfile stay open.
    let _es = h.open_receiver(Receiver::EventSource, &session_url("es"));
    let s_es = h.opened();
    let _hf = h.open_receiver(Receiver::HtmlFile, &session_url("hf"));
    let _s_hf = h.opened();

    // jsonp: one message in by jsonp_send, then no poll comes back: timed out.
    let url = session_url("jsonp");
    h.get(&format!("{url}/jsonp?c=cb"));
    let s_jsonp = h.opened();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = h.fetch(
        "POST",
        &format!("{url}/jsonp_send"),
        &form,
        b"d=%5B%22xy%22%5D",
    );
    assert_eq!(r.status, 200);
    assert_eq!(h.messages(s_jsonp), ["xy"]);

    // The raw WebSocket endpoint: a message in of 3 bytes.
    let raw = h.ws_connect("/echo/websocket");
    let s_raw = h.opened();
    h.ws_send_text(raw, "raw");
    assert_eq!(h.messages(s_raw), ["raw"]);

    // A queue overflow: three messages wait for a client that is not polling, the fourth
    // is refused and closes the session.
    let url = session_url("full");
    assert_eq!(h.xhr(&url), "o\n");
    let s_full = h.opened();
    for m in ["1", "2", "3"] {
        h.app_send(s_full, m);
    }
    let s = h.server.session_stats(s_full).expect("open");
    assert_eq!(
        (s.messages_out, s.queued_messages, s.queued_bytes),
        (3, 3, 9)
    );
    assert!(h.try_app_send(s_full, "4").is_err());
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: s_full,
            reason: CloseReason::QueueFull
        }]
    );
    let notices = h.take_notices();
    assert_eq!(limit_hits(&notices), [Limit::QueuedMessages]);
    assert_eq!(refusals(&notices), []);

    // A WebSocket frame over max_frame_size: protocol error 1009.
    let big = h.ws_connect(&format!("{}/websocket", session_url("big")));
    let s_big = h.opened();
    h.ws_send_text(big, &format!("[\"{}\"]", "x".repeat(100)));
    assert!(matches!(
        h.take_events()[..],
        [Event::Closed { session, reason: CloseReason::ProtocolError(_) }] if session == s_big
    ));

    // Refused requests.
    let evil = [("Origin", "http://evil.example")];
    assert_eq!(h.fetch("GET", "/echo/info", &evil, b"").status, 403);
    assert_eq!(h.get("/nothing").status, 404);
    assert_eq!(
        h.post(&format!("{}/xhr_send", session_url("nobody")), b"[\"x\"]")
            .status,
        404
    );
    assert_eq!(h.get(&format!("{}/xhr", session_url("m"))).status, 405);
    let url = session_url("es");
    let r = h.post(&format!("{url}/xhr_send"), &[b'x'; 1001]);
    assert_eq!(r.status, 413);
    assert_eq!(h.post(&format!("{url}/xhr_send"), b"[\"x\"").status, 500);
    let conn = h.connect();
    h.send_bytes(conn, b"GARBAGE\r\n\r\n");
    assert_eq!(h.read_response(conn).status, 400);
    let mut headers = ws_headers("13");
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case("upgrade"));
    let r = h.fetch(
        "GET",
        &format!("{}/websocket", session_url("up")),
        &headers,
        b"",
    );
    assert_eq!(r.status, 400);
    let notices = h.take_notices();
    assert_eq!(
        refusals(&notices),
        [
            (403, RefusalCause::Origin, None),
            (404, RefusalCause::NotFound, None),
            (404, RefusalCause::NotFound, None),
            (405, RefusalCause::NotFound, None),
            (413, RefusalCause::Limit, Some(Limit::BodySize)),
            (500, RefusalCause::Framing, None),
            (400, RefusalCause::Framing, None),
            (400, RefusalCause::Framing, None),
        ]
    );
    // The frame too big came before them.
    assert_eq!(limit_hits(&notices), [Limit::FrameSize]);

    // The jsonp session times out (the xhr polling sessions closed before are forgotten on
    // the way); the eventsource, htmlfile and raw WebSocket sessions stay open.
    h.advance(secs(6));
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: s_jsonp,
            reason: CloseReason::TimedOut
        }]
    );
    assert!(h.server.session_stats(s_es).is_some_and(|s| s.open));

    let stats = h.server.stats().clone();
    check(
        &stats,
        &Expect {
            connections: h.server.connection_count() as u64,
            accepted: stats.connections_accepted(),
            open: vec![
                (SessionTransport::EventSource, 1),
                (SessionTransport::HtmlFile, 1),
                (SessionTransport::RawWebSocket, 1),
            ],
            opened: vec![
                (SessionTransport::WebSocket, 2),
                (SessionTransport::RawWebSocket, 1),
                (SessionTransport::XhrPolling, 2),
                (SessionTransport::XhrStreaming, 1),
                (SessionTransport::EventSource, 1),
                (SessionTransport::HtmlFile, 1),
                (SessionTransport::JsonpPolling, 1),
            ],
            closed: vec![
                (CloseKind::ClientClosed, 1),
                (CloseKind::Application, 1),
                (CloseKind::Interrupted, 1),
                (CloseKind::QueueFull, 1),
                (CloseKind::ProtocolError, 1),
                (CloseKind::TimedOut, 1),
            ],
            // hi, there, abc, xy, raw
            messages_in: 5,
            bytes_in: 2 + 5 + 3 + 2 + 3,
            // hi, there, abc, é, 1, 2, 3
            messages_out: 7,
            bytes_out: 2 + 5 + 3 + 2 + 3,
            refused: vec![
                (RefusalCause::Origin, 1),
                (RefusalCause::NotFound, 3),
                (RefusalCause::Limit, 1),
                (RefusalCause::Framing, 3),
            ],
            statuses: vec![(400, 2), (403, 1), (404, 2), (405, 1), (413, 1), (500, 1)],
            limits: vec![
                (Limit::BodySize, 1),
                (Limit::FrameSize, 1),
                (Limit::QueuedMessages, 1),
            ],
        },
    );
    // Every connection the harness opened was accepted once.
    assert!(stats.connections_accepted() >= 20);
    assert_eq!(
        stats.sessions_total(),
        3,
        "the gauges add up to the sessions open"
    );
}

/// Bytes read and written are what crossed the (virtual) socket, exactly.
#[test]
fn wire_bytes_are_what_the_sockets_carried() {
    let mut h = Harness::echo();
    let conn = h.connect();
    let request = b"GET /echo/info HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\n\r\n";
    h.send_bytes(conn, request);
    let answered = h.take_unread(conn);
    assert!(answered.ends_with(b"Welcome to SockJS!\n"));
    assert_eq!(h.server.stats().bytes_read(), request.len() as u64);
    assert_eq!(h.server.stats().bytes_written(), answered.len() as u64);

    // Output the client has not read is not written yet.
    let stalled = h.connect_stalled();
    h.send_bytes(stalled, b"GET /echo HTTP/1.1\r\n\r\n");
    assert_eq!(h.server.stats().bytes_written(), answered.len() as u64);
    h.client_reads(stalled, 10);
    assert_eq!(h.server.stats().bytes_written(), answered.len() as u64 + 10);
}

/// Sessions refused for a limit, connections refused for a limit, and timeouts: each is a
/// refusal with its status and limit, a limit hit, and a notice naming the peer.
#[test]
fn limits_refuse_with_their_status() {
    let mut h = Harness::with_limits(
        Options::default(),
        limits(|l| {
            l.max_sessions = 1;
            l.max_head_size = 300;
        }),
    );
    assert_eq!(h.xhr(&session_url("one")), "o\n");
    h.opened();
    // A second session: 503 by max_sessions, on polling and on WebSocket alike.
    assert_eq!(
        h.post(&format!("{}/xhr", session_url("two")), b"").status,
        503
    );
    let r = h.fetch(
        "GET",
        &format!("{}/websocket", session_url("three")),
        &ws_headers("13"),
        b"",
    );
    assert_eq!(r.status, 503);
    // A head over 300 bytes: 431.
    let conn = h.connect();
    let long = format!("GET /echo HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(400));
    h.send_bytes(conn, long.as_bytes());
    assert_eq!(h.read_response(conn).status, 431);
    // A request that never ends: 408 after request_timeout.
    let slow = h.connect();
    h.send_bytes(slow, b"GET /echo HTTP/1.1\r\n");
    h.advance(secs(16));
    assert_eq!(h.read_response(slow).status, 408);
    let notices = h.take_notices();
    assert_eq!(
        refusals(&notices),
        [
            (503, RefusalCause::Limit, Some(Limit::Sessions)),
            (503, RefusalCause::Limit, Some(Limit::Sessions)),
            (431, RefusalCause::Limit, Some(Limit::HeadSize)),
            (408, RefusalCause::Limit, Some(Limit::RequestTimeout)),
        ]
    );
    assert!(matches!(
        notices.last(),
        Some(Notice::Refused { connection, peer, .. })
            if *connection == slow && peer.ip().is_loopback()
    ));
    let stats = h.server.stats();
    assert_eq!(stats.refused(RefusalCause::Limit), 4);
    assert_eq!(stats.refused_with_status(503), 2);
    assert_eq!(stats.refused_with_status(431), 1);
    assert_eq!(stats.refused_with_status(408), 1);
    assert_eq!(stats.limit_hits(Limit::Sessions), 2);
    assert_eq!(stats.limit_hits(Limit::HeadSize), 1);
    assert_eq!(stats.limit_hits(Limit::RequestTimeout), 1);
}

/// Connections over max_connections: 503 at accept, for the limit.
#[test]
fn connections_over_the_limit() {
    let mut h = Harness::with_limits(Options::default(), limits(|l| l.max_connections = 2));
    let _a = h.connect();
    let _b = h.connect();
    let over = h.connect();
    assert_eq!(h.read_response(over).status, 503);
    assert_eq!(
        refusals(&h.take_notices()),
        [(503, RefusalCause::Limit, Some(Limit::Connections))]
    );
    assert_eq!(h.server.stats().limit_hits(Limit::Connections), 1);
    // Two open, and the refused one lingering.
    assert_eq!(h.server.stats().connections(), 3);
    assert_eq!(h.server.stats().connections_accepted(), 3);
}

/// Refused while shutting down: cause `shutdown`; sessions closed by the shutdown count as
/// such, and the gauges fall to zero.
#[test]
fn shutdown_refusals_and_closes() {
    let mut h = Harness::echo();
    let ws = h.ws_connect(&format!("{}/websocket", session_url("a")));
    h.opened();
    assert_eq!(h.ws_text(ws), "o");
    assert_eq!(h.xhr(&session_url("b")), "o\n");
    h.opened();
    h.shutdown();
    assert_eq!(h.take_events().len(), 2);
    let late = h.connect();
    assert_eq!(h.read_response(late).status, 503);
    let stats = h.server.stats();
    assert_eq!(stats.sessions_closed(CloseKind::Shutdown), 2);
    assert_eq!(stats.sessions_total(), 0);
    assert_eq!(stats.refused(RefusalCause::Shutdown), 1);
    assert_eq!(stats.refused_with_status(503), 1);
    assert_eq!(stats.refused(RefusalCause::Authorization), 0);
    assert_eq!(stats.refused(RefusalCause::Binding), 0);
}

/// A write timeout aborts the connection and counts as a limit hit.
#[test]
fn write_timeout_is_a_limit_hit() {
    let mut h = Harness::echo();
    let conn = h.connect_stalled();
    h.send_bytes(conn, b"GET /echo HTTP/1.1\r\n\r\n");
    h.advance(secs(31));
    assert_eq!(h.server.stats().limit_hits(Limit::WriteTimeout), 1);
    assert!(matches!(
        h.take_notices()[..],
        [Notice::LimitHit { limit: Limit::WriteTimeout, connection: Some(c), .. }] if c == conn
    ));
    assert_eq!(h.server.stats().connections(), 0);
}

/// A host that never takes its notices keeps only the last thousand and a count of the rest.
#[test]
fn notices_are_bounded() {
    let config = Config::new()
        .endpoint("/echo", Options::default())
        .limits(limits(|l| l.max_connections = 0));
    let now = Instant::now();
    let mut server = Server::new(config, now, SystemTime::now(), Box::new(|| 4));
    let peer: SocketAddr = ([127, 0, 0, 1], 1).into();
    for _ in 0..1100 {
        let id = server.accept(now, peer);
        server.handle_closed(now, id);
        while server.poll_io().is_some() {}
    }
    assert_eq!(server.stats().refused_with_status(503), 1100);
    assert_eq!(server.stats().notices_dropped(), 76);
    assert_eq!(server.stats().connections(), 0);
    let mut kept = 0;
    while server.poll_notice().is_some() {
        kept += 1;
    }
    assert_eq!(kept, 1024);
}

/// Per-session figures follow the session and end with it.
#[test]
fn session_stats_follow_the_session() {
    let mut h = Harness::echo();
    let url = session_url("s");
    assert_eq!(h.xhr(&url), "o\n");
    let s = h.opened();
    h.xhr_send(&url, &client_messages(&["ab", "cde"]));
    h.take_events();
    h.app_send(s, "\u{1F600}");
    let stats = h.server.session_stats(s).expect("open");
    assert_eq!(
        (
            stats.messages_in,
            stats.bytes_in,
            stats.messages_out,
            stats.bytes_out
        ),
        (2, 5, 1, 4)
    );
    assert_eq!(stats.transport, SessionTransport::XhrPolling);
    assert!(stats.queued_messages == 1 && stats.queued_bytes > 0);
    h.xhr(&url);
    let after: SessionStats = h.server.session_stats(s).expect("open");
    assert_eq!((after.queued_messages, after.queued_bytes), (0, 0));
    h.app_close(s, 3000, "bye");
    assert!(h.server.session_stats(s).is_some_and(|s| !s.open));
    h.advance(secs(6));
    assert_eq!(h.server.session_stats(s), None);
}

/// The label names are stable and distinct.
#[test]
fn names_are_labels() {
    let names: Vec<&str> = SessionTransport::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(
        names,
        [
            "websocket",
            "websocket-raw",
            "xhr-polling",
            "xhr-streaming",
            "eventsource",
            "htmlfile",
            "jsonp-polling"
        ]
    );
    assert_eq!(CloseReason::QueueFull.kind().name(), "queue_full");
    assert_eq!(RefusalCause::NotFound.name(), "not_found");
    assert_eq!(Limit::QueuedBytes.name(), "max_queued_bytes");
    for (i, l) in Limit::ALL.iter().enumerate() {
        assert_eq!(l.index(), i);
    }
}
