//! Session rules over HTTP receivers: opening, queueing, one receiver at a time, aborts,
//! closing, the close frame served until the session is forgotten, heartbeats and the
//! disconnect delay, all on the virtual clock.

use std::net::SocketAddr;

use sockjs_core::testing::{After, Harness, ms, secs, session_url};
use sockjs_core::{CloseReason, Event, Options, RequestInfo};

/// Starts an `xhr` poll on a new connection and checks it is parked (no answer yet).
#[track_caller]
fn park_poll(h: &mut Harness, url: &str) -> sockjs_core::ConnectionId {
    let c = h.connect();
    h.request(c, "POST", &format!("{url}/xhr"), &[], b"");
    h.assert_nothing_unread(c);
    c
}

#[test]
fn session_is_created_by_the_first_receiver_with_an_open_frame() {
    let mut h = Harness::echo();
    let peer: SocketAddr = "10.1.2.3:4567".parse().unwrap();
    let c = h.connect_from(peer);
    h.request(
        c,
        "POST",
        "/echo/000/s1/xhr?t=1",
        &[("Origin", "http://o"), ("X-A", "b")],
        b"",
    );
    assert_eq!(h.read_response(c).text(), "o\n");
    let events = h.take_events();
    let [
        Event::Opened {
            session,
            endpoint,
            info,
        },
    ] = &events[..]
    else {
        panic!("one Opened event, got {events:?}");
    };
    assert_eq!(*endpoint, 0);
    assert_eq!(
        **info,
        RequestInfo {
            peer,
            client_ip: peer.ip(),
            prefix: "/echo".into(),
            path: "/echo/000/s1/xhr".into(),
            query: "t=1".into(),
            headers: vec![
                ("host".into(), "test".into()),
                ("origin".into(), "http://o".into()),
                ("x-a".into(), "b".into()),
            ],
            protocol: "xhr-polling",
        }
    );
    assert_eq!(info.header("x-a"), Some("b"));
    assert_eq!(h.server.session_count(), 1);
    // The next receiver on the id attaches to the same session: no second `o`, no event.
    let c = park_poll(&mut h, "/echo/000/s1");
    h.app_send(*session, "m");
    assert_eq!(h.read_response(c).text(), "a[\"m\"]\n");
    assert!(h.take_events().is_empty());
}

#[test]
fn opened_event_names_the_transport_protocol() {
    let mut h = Harness::echo();
    let cases = [
        ("POST", "xhr", "xhr-polling"),
        ("POST", "xhr_streaming", "xhr-streaming"),
        ("GET", "eventsource", "eventsource"),
        ("GET", "htmlfile?c=f", "htmlfile"),
        ("GET", "jsonp?c=f", "jsonp-polling"),
    ];
    for (i, (method, t, protocol)) in cases.into_iter().enumerate() {
        let c = h.connect();
        h.request(c, method, &format!("/echo/000/{i}/{t}"), &[], b"");
        match h.next_event() {
            Some(Event::Opened { info, .. }) => assert_eq!(info.protocol, protocol, "{t}"),
            other => panic!("{t}: {other:?}"),
        }
    }
    let c = h.ws_connect("/echo/000/w/websocket");
    assert_eq!(h.ws_text(c), "o");
    match h.next_event() {
        Some(Event::Opened { info, .. }) => assert_eq!(info.protocol, "websocket"),
        other => panic!("{other:?}"),
    }
    h.ws_connect("/echo/websocket");
    match h.next_event() {
        Some(Event::Opened { info, .. }) => assert_eq!(info.protocol, "websocket-raw"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sending_opens_no_session() {
    let mut h = Harness::echo();
    assert_eq!(h.post("/echo/000/s/xhr_send", br#"["a"]"#).status, 404);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(
        h.fetch("POST", "/echo/000/s/jsonp_send", &form, b"d=%5B%5D")
            .status,
        404
    );
    assert_eq!(h.server.session_count(), 0);
    assert!(h.take_events().is_empty());
}

#[test]
fn messages_queued_without_a_receiver_go_out_in_order_in_one_frame() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    for m in ["a", "b", "c", "d"] {
        h.app_send(s, m);
    }
    assert_eq!(h.xhr(&url), "a[\"a\",\"b\",\"c\",\"d\"]\n");
    // The queue is empty afterwards: the next poll waits.
    park_poll(&mut h, &url);
}

#[test]
fn a_parked_poll_takes_the_first_message_and_ends() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let c = park_poll(&mut h, &url);
    h.app_send(s, "a");
    h.app_send(s, "b");
    assert_eq!(h.read_response(c).text(), "a[\"a\"]\n");
    h.assert_nothing_unread(c);
    assert_eq!(h.xhr(&url), "a[\"b\"]\n");
}

#[test]
fn second_receiver_gets_2010_and_the_first_is_unaffected() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let first = park_poll(&mut h, &url);
    assert_eq!(h.xhr(&url), "c[2010,\"Another connection still open\"]\n");
    h.assert_nothing_unread(first);
    assert!(h.take_events().is_empty());
    h.app_send(s, "x");
    assert_eq!(h.read_response(first).text(), "a[\"x\"]\n");
}

#[test]
fn second_streaming_receiver_gets_2010_and_its_response_ends() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let first = h.open_streaming(&url);
    assert_eq!(h.chunk(first), "o\n");
    let s = h.opened();
    let second = h.open_streaming(&url);
    assert_eq!(
        h.chunk(second),
        "c[2010,\"Another connection still open\"]\n"
    );
    assert_eq!(h.read_chunk(second), Some(Vec::new()));
    assert_eq!(h.closed(second), None);
    h.app_send(s, "x");
    assert_eq!(h.chunk(first), "a[\"x\"]\n");
    h.assert_nothing_unread(second);
}

#[test]
fn repolling_at_once_after_a_poll_completes_never_sees_2010() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let c = park_poll(&mut h, &url);
    // The client is slow to read: the frame ending the poll is written but not yet read.
    h.stop_reading(c);
    h.app_send(s, "x");
    assert!(h.in_flight(c) > 0);
    // A new poll on another connection at the same instant is a normal receiver.
    let d = park_poll(&mut h, &url);
    h.app_send(s, "y");
    assert_eq!(h.read_response(d).text(), "a[\"y\"]\n");
    h.resume_reading(c);
    assert_eq!(h.read_response(c).text(), "a[\"x\"]\n");
    // And on the same keep-alive connection, right after its answer.
    let e = park_poll(&mut h, &url);
    h.app_send(s, "z");
    assert_eq!(h.read_response(e).text(), "a[\"z\"]\n");
    h.request(e, "POST", &format!("{url}/xhr"), &[], b"");
    h.assert_nothing_unread(e);
    h.app_send(s, "w");
    assert_eq!(h.read_response(e).text(), "a[\"w\"]\n");
}

#[test]
fn aborted_poll_closes_the_session_as_interrupted() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let c = park_poll(&mut h, &url);
    h.client_closes(c);
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: s,
            reason: CloseReason::Interrupted
        }]
    );
    assert_eq!(h.xhr(&url), "c[1002,\"Connection interrupted\"]\n");
    assert_eq!(
        h.try_app_send(s, "late"),
        Err(sockjs_core::Error::SessionClosed)
    );
}

#[test]
fn aborted_stream_closes_the_session_as_interrupted() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let c = h.open_streaming(&url);
    h.chunk(c);
    let s = h.opened();
    h.client_closes(c);
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: s,
            reason: CloseReason::Interrupted
        }]
    );
    let d = h.open_streaming(&url);
    assert_eq!(h.chunk(d), "c[1002,\"Connection interrupted\"]\n");
    assert_eq!(h.read_chunk(d), Some(Vec::new()));
}

#[test]
fn client_going_away_between_polls_does_not_close_the_session() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let c = h.connect();
    h.request(c, "POST", &format!("{url}/xhr"), &[], b"");
    assert_eq!(h.read_response(c).text(), "o\n");
    let s = h.opened();
    h.client_closes(c);
    assert!(h.take_events().is_empty());
    h.app_send(s, "still here");
    assert_eq!(h.xhr(&url), "a[\"still here\"]\n");
}

#[test]
fn app_close_sends_any_code_and_a_json_escaped_reason() {
    for (code, reason, frame) in [
        (3000, "Go away!", r#"c[3000,"Go away!"]"#),
        (
            4999,
            "quote \" back \\ nl \n",
            r#"c[4999,"quote \" back \\ nl \n"]"#,
        ),
        (0, "", r#"c[0,""]"#),
        (
            65535,
            "\u{2028}\u{1f600}",
            r#"c[65535,"\u2028\ud83d\ude00"]"#,
        ),
    ] {
        let mut h = Harness::echo();
        let url = session_url("s");
        h.xhr(&url);
        let s = h.opened();
        h.app_close(s, code, reason);
        assert_eq!(
            h.take_events(),
            [Event::Closed {
                session: s,
                reason: CloseReason::Application {
                    code,
                    reason: reason.into()
                }
            }]
        );
        assert_eq!(h.xhr(&url), format!("{frame}\n"));
        assert_eq!(
            h.server.close(h.now(), s, 1, ""),
            Err(sockjs_core::Error::SessionClosed)
        );
    }
}

#[test]
fn app_close_ends_a_parked_poll_with_the_close_frame() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let c = park_poll(&mut h, &url);
    h.app_close(s, 3000, "Go away!");
    assert_eq!(h.read_response(c).text(), "c[3000,\"Go away!\"]\n");
    assert_eq!(h.closed(c), None);
}

#[test]
fn app_close_ends_a_stream_after_the_close_frame() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let c = h.open_streaming(&url);
    h.chunk(c);
    let s = h.opened();
    h.app_close(s, 3000, "Go away!");
    assert_eq!(h.chunk(c), "c[3000,\"Go away!\"]\n");
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
    // A new stream on the closed session gets the close frame and ends too.
    let d = h.open_streaming(&url);
    assert_eq!(h.chunk(d), "c[3000,\"Go away!\"]\n");
    assert_eq!(h.read_chunk(d), Some(Vec::new()));
}

#[test]
fn messages_queued_before_an_app_close_are_delivered_before_the_close_frame() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    h.app_send(s, "a");
    h.app_send(s, "b");
    h.app_close(s, 3000, "Go away!");
    assert_eq!(h.xhr(&url), "a[\"a\",\"b\"]\n");
    assert_eq!(h.xhr(&url), "c[3000,\"Go away!\"]\n");
    assert_eq!(h.xhr(&url), "c[3000,\"Go away!\"]\n");
}

#[test]
fn messages_queued_before_an_app_close_precede_it_on_a_stream() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    h.app_send(s, "a");
    h.app_send(s, "b");
    h.app_close(s, 3000, "Go away!");
    let c = h.open_streaming(&url);
    assert_eq!(h.chunk(c), "a[\"a\",\"b\"]\n");
    assert_eq!(h.chunk(c), "c[3000,\"Go away!\"]\n");
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
}

#[test]
fn close_frame_is_repeated_until_the_session_is_forgotten_then_a_fresh_open() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    h.app_close(s, 3000, "Go away!");
    h.take_events();
    // Each answer is a receiver leaving: the session lives disconnect_delay after the last.
    for _ in 0..3 {
        h.advance(secs(5) - ms(1));
        assert_eq!(h.xhr(&url), "c[3000,\"Go away!\"]\n");
    }
    h.advance(secs(5) - ms(1));
    assert_eq!(h.server.session_count(), 1);
    h.advance(ms(1));
    assert_eq!(h.server.session_count(), 0);
    // Closed was reported once, at the close; forgetting reports nothing more.
    assert!(h.take_events().is_empty());
    assert_eq!(h.xhr(&url), "o\n");
    let t = h.opened();
    assert_ne!(s, t);
}

#[test]
fn disconnect_delay_times_the_session_out_after_the_last_receiver_left() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    h.advance(secs(5) - ms(1));
    assert!(h.take_events().is_empty());
    h.advance(ms(1));
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: s,
            reason: CloseReason::TimedOut
        }]
    );
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(
        h.try_app_send(s, "x"),
        Err(sockjs_core::Error::SessionClosed)
    );
    assert_eq!(h.xhr(&url), "o\n");
}

#[test]
fn disconnect_delay_is_configurable_and_restarts_with_each_receiver() {
    let mut h = Harness::with_options(Options::default().disconnect_delay(secs(2)));
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    for _ in 0..5 {
        h.advance(secs(2) - ms(1));
        h.app_send(s, "x");
        assert_eq!(h.xhr(&url), "a[\"x\"]\n");
    }
    h.advance(secs(2) - ms(1));
    assert!(h.take_events().is_empty());
    h.advance(ms(1));
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: s,
            reason: CloseReason::TimedOut
        }]
    );
}

#[test]
fn no_disconnect_timeout_while_a_receiver_is_attached() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let c = h.open_streaming(&url);
    h.chunk(c);
    h.opened();
    h.advance(secs(300));
    assert!(h.take_events().is_empty());
    assert_eq!(h.server.session_count(), 1);
    // Only heartbeats went out meanwhile: one each 25 s.
    for _ in 0..12 {
        assert_eq!(h.chunk(c), "h\n");
    }
    assert_eq!(h.read_chunk(c), None);
}

#[test]
fn heartbeat_ends_a_parked_poll_after_heartbeat_delay_of_silence() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    h.advance(secs(3));
    let c = park_poll(&mut h, &url);
    h.advance(secs(25) - ms(1));
    h.assert_nothing_unread(c);
    h.advance(ms(1));
    assert_eq!(h.read_response(c).text(), "h\n");
    // The session is open; the disconnect delay runs from the heartbeat's answer.
    assert!(h.take_events().is_empty());
    h.advance(secs(5) - ms(1));
    assert!(h.take_events().is_empty());
    h.advance(ms(1));
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: s,
            reason: CloseReason::TimedOut
        }]
    );
}

#[test]
fn heartbeat_on_a_stream_does_not_end_it() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let c = h.open_streaming(&url);
    h.chunk(c);
    let s = h.opened();
    h.advance(secs(25) - ms(1));
    assert_eq!(h.read_chunk(c), None);
    h.advance(ms(1));
    assert_eq!(h.chunk(c), "h\n");
    h.advance(secs(25));
    assert_eq!(h.chunk(c), "h\n");
    assert_eq!(h.read_chunk(c), None);
    h.app_send(s, "m");
    assert_eq!(h.chunk(c), "a[\"m\"]\n");
}

#[test]
fn heartbeat_measures_silence_from_the_last_frame() {
    let mut h = Harness::with_options(Options::default().heartbeat_delay(secs(10)));
    let url = session_url("s");
    let c = h.open_streaming(&url);
    h.chunk(c);
    let s = h.opened();
    h.advance(secs(7));
    h.app_send(s, "m");
    assert_eq!(h.chunk(c), "a[\"m\"]\n");
    // 10 s of silence from the message, not from the open.
    h.advance(secs(10) - ms(1));
    assert_eq!(h.read_chunk(c), None);
    h.advance(ms(1));
    assert_eq!(h.chunk(c), "h\n");
}

#[test]
fn heartbeat_in_each_transports_framing() {
    let mut h = Harness::echo();
    let cases = [
        ("GET", "eventsource", "data: h\r\n\r\n"),
        ("GET", "htmlfile?c=f", "<script>\np(\"h\");\n</script>\r\n"),
    ];
    for (i, (method, t, frame)) in cases.into_iter().enumerate() {
        let c = h.connect();
        h.request(c, method, &format!("/echo/000/{i}/{t}"), &[], b"");
        h.read_head(c);
        h.chunk(c);
        h.chunk(c);
        h.advance(secs(25));
        assert_eq!(h.chunk(c), frame, "{t}");
        h.client_closes(c);
    }
    let url = session_url("j");
    h.get(&format!("{url}/jsonp?c=f"));
    let c = h.connect();
    h.request(c, "GET", &format!("{url}/jsonp?c=f"), &[], b"");
    h.advance(secs(25));
    assert_eq!(h.read_response(c).text(), "/**/f(\"h\");\r\n");
}

#[test]
fn polling_session_lives_on_heartbeats_while_the_client_keeps_polling() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    h.opened();
    let c = h.connect();
    for _ in 0..10 {
        h.request(c, "POST", &format!("{url}/xhr"), &[], b"");
        h.advance(secs(25));
        assert_eq!(h.read_response(c).text(), "h\n");
    }
    assert!(h.take_events().is_empty());
    assert_eq!(h.elapsed(), secs(250));
}

#[test]
fn streaming_session_serves_several_responses_in_turn() {
    let mut h = Harness::with_options(Options::default().response_limit(10));
    let url = session_url("s");
    let c = h.open_streaming(&url);
    h.chunk(c);
    let s = h.opened();
    h.app_send(s, "123456");
    assert_eq!(h.chunk(c), "a[\"123456\"]\n");
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
    // Sent while no receiver: queued for the next response.
    h.app_send(s, "q1");
    h.app_send(s, "q2");
    let d = h.open_streaming(&url);
    assert_eq!(h.chunk(d), "a[\"q1\",\"q2\"]\n");
    assert_eq!(h.read_chunk(d), Some(Vec::new()));
    assert_eq!(h.closed(c), None);
}

#[test]
fn sessions_are_per_endpoint() {
    let config = sockjs_core::Config::new()
        .endpoint("/a", Options::default())
        .endpoint("/b", Options::default());
    let mut h = Harness::new(config);
    assert_eq!(h.xhr("/a/0/s"), "o\n");
    let a = h.opened();
    assert_eq!(h.xhr("/b/0/s"), "o\n");
    let b = match h.next_event() {
        Some(Event::Opened {
            session,
            endpoint: 1,
            ..
        }) => session,
        other => panic!("{other:?}"),
    };
    assert_ne!(a, b);
    h.app_send(a, "for a");
    assert_eq!(h.xhr("/a/0/s"), "a[\"for a\"]\n");
    assert_eq!(h.server.endpoint_prefix(1), Some("/b"));
}

#[test]
fn http_session_connection_ends_after_heartbeat_for_http_1_0() {
    // HTTP/1.0 without keep-alive: the poll's answer closes the connection.
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(c, b"POST /echo/000/s/xhr HTTP/1.0\r\n\r\n");
    let r = h.read_response(c);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.text(), "o\n");
    assert_eq!(h.closed(c), Some(After::Close));
    let c = h.connect();
    h.send_bytes(c, b"POST /echo/000/s/xhr HTTP/1.0\r\n\r\n");
    h.advance(secs(25));
    assert_eq!(h.read_response(c).text(), "h\n");
    assert_eq!(h.closed(c), Some(After::Close));
}
