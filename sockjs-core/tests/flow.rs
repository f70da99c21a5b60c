//! Output and capacity: broadcasts encoded once, flow control towards clients that stop
//! reading, the write timeout, the session limit, graceful shutdown, and the timer contract.

use sockjs_core::testing::{self, After, Harness, WsFrame, limits, ms, secs, session_url};
use sockjs_core::{CloseReason, Error, Event, Options};

fn closed(s: sockjs_core::SessionId, reason: CloseReason) -> Event {
    Event::Closed { session: s, reason }
}

// ----- send_many -----

#[test]
fn send_many_gives_every_session_the_same_frame_and_skips_closed_ones() {
    let mut h = Harness::echo();
    let stream = h.open_streaming(&session_url("a"));
    h.chunk(stream);
    let a = h.opened();
    let ws = h.ws_connect("/echo/000/b/websocket");
    assert_eq!(h.ws_text(ws), "o");
    let b = h.opened();
    let raw = h.ws_connect("/echo/websocket");
    let r = h.opened();
    h.xhr(&session_url("c"));
    let c = h.opened();
    h.xhr(&session_url("d"));
    let d = h.opened();
    h.app_close(d, 3000, "gone");
    h.take_events();

    let text = "x\u{2028}\"y";
    assert_eq!(h.app_send_many(&[a, b, r, c, d], text), 4);
    let frame = "a[\"x\\u2028\\\"y\"]";
    assert_eq!(h.chunk(stream), format!("{frame}\n"));
    assert_eq!(h.ws_text(ws), frame);
    assert_eq!(h.ws_read_all(raw), [WsFrame::text(text)]);
    assert_eq!(h.xhr(&session_url("c")), format!("{frame}\n"));
    // Sending to no one, or to sessions that are all gone, is fine.
    assert_eq!(h.app_send_many(&[], text), 0);
    assert_eq!(h.app_send_many(&[d, d], text), 0);
}

#[test]
fn send_many_keeps_per_session_order_with_single_sends() {
    let mut h = Harness::echo();
    h.xhr(&session_url("a"));
    let a = h.opened();
    h.xhr(&session_url("b"));
    let b = h.opened();
    h.app_send(a, "1");
    assert_eq!(h.app_send_many(&[a, b], "2"), 2);
    h.app_send(b, "3");
    assert_eq!(h.xhr(&session_url("a")), "a[\"1\",\"2\"]\n");
    assert_eq!(h.xhr(&session_url("b")), "a[\"2\",\"3\"]\n");
}

// ----- flow control -----

const UNFLUSHED: usize = 4096;
const QUEUED: usize = 16 * 1024;

fn small_buffers() -> sockjs_core::Limits {
    limits(|l| {
        l.max_unflushed_bytes = UNFLUSHED;
        l.max_queued_bytes = QUEUED;
    })
}

#[test]
fn client_that_stops_reading_gets_no_frames_past_max_unflushed_then_the_queue_fills() {
    let mut h = Harness::with_limits(Options::default(), small_buffers());
    let url = session_url("s");
    let c = h.open_streaming(&url);
    assert_eq!(h.chunk(c), "o\n");
    let s = h.opened();
    h.stop_reading(c);

    let msg = "m".repeat(1000);
    let frame_on_wire = 5 + 1002 + 3 + 1 + 2; // chunk size line, a["..."]\n, CRLF
    let mut accepted = 0;
    let mut in_flight = Vec::new();
    let result = loop {
        match h.try_app_send(s, &msg) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        in_flight.push(h.in_flight(c));
        assert!(accepted < 1000, "the queue never filled");
    };
    assert_eq!(result, Error::SessionClosed);
    // Frames stop being moved onto the connection once more than max_unflushed_bytes wait.
    let moved = in_flight.iter().max().copied().unwrap();
    assert!(
        moved > UNFLUSHED && moved <= UNFLUSHED + frame_on_wire,
        "{moved}"
    );
    let frames_moved = moved / frame_on_wire;
    assert_eq!(frames_moved, 5);
    assert!(
        in_flight[frames_moved..].iter().all(|&n| n == moved),
        "{in_flight:?}"
    );
    // The queue took what max_queued_bytes allows (1002 bytes per quoted message).
    assert_eq!(accepted - frames_moved, QUEUED / 1002);
    assert_eq!(h.take_events(), [closed(s, CloseReason::QueueFull)]);
    // Memory stays bounded: what the connection holds is the limits' worth, and later
    // sends are refused without adding anything.
    let held = h.in_flight(c);
    assert!(held <= UNFLUSHED + frame_on_wire + QUEUED + 100, "{held}");
    for _ in 0..10 {
        assert_eq!(h.try_app_send(s, &msg), Err(Error::SessionClosed));
    }
    assert_eq!(h.in_flight(c), held);

    // When the client reads again it finds every accepted message, in order, then the close.
    h.resume_reading(c);
    let mut received = 0;
    loop {
        let chunk = h.chunk(c);
        if chunk.starts_with("c[") {
            assert_eq!(chunk, "c[1013,\"Send queue full\"]\n");
            break;
        }
        let frame: Vec<String> = serde_json::from_str(&chunk[1..chunk.len() - 1]).unwrap();
        assert!(frame.iter().all(|m| *m == msg));
        received += frame.len();
    }
    assert_eq!(received, accepted);
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
    assert_eq!(h.xhr(&url), "c[1013,\"Send queue full\"]\n");
}

#[test]
fn client_stalled_after_its_queue_filled_is_aborted_without_a_second_close() {
    let mut h = Harness::with_limits(Options::default(), small_buffers());
    let c = h.open_streaming(&session_url("s"));
    h.chunk(c);
    let s = h.opened();
    h.stop_reading(c);
    while h.try_app_send(s, &"m".repeat(1000)).is_ok() {}
    assert_eq!(h.take_events(), [closed(s, CloseReason::QueueFull)]);
    h.advance(secs(30));
    assert_eq!(h.closed(c), Some(After::Abort));
    assert!(h.take_events().is_empty());
    assert_eq!(h.server.connection_count(), 0);
    h.advance(secs(5));
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn queued_messages_flow_again_in_one_frame_when_the_client_catches_up() {
    let mut h = Harness::with_limits(Options::default(), small_buffers());
    let c = h.open_streaming(&session_url("s"));
    h.chunk(c);
    let s = h.opened();
    h.stop_reading(c);
    let big = "b".repeat(UNFLUSHED);
    h.app_send(s, &big);
    let held = h.in_flight(c);
    h.app_send(s, "q1");
    h.app_send(s, "q2");
    assert_eq!(h.in_flight(c), held, "held back");
    h.resume_reading(c);
    assert_eq!(h.chunk(c), format!("a[\"{big}\"]\n"));
    assert_eq!(h.chunk(c), "a[\"q1\",\"q2\"]\n");
    assert_eq!(h.read_chunk(c), None);
    assert!(h.take_events().is_empty());
}

#[test]
fn max_queued_messages_bounds_the_queue_too() {
    let l = limits(|l| l.max_queued_messages = 3);
    let mut h = Harness::with_limits(Options::default(), l);
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    for m in ["1", "2", "3"] {
        h.app_send(s, m);
    }
    assert_eq!(h.try_app_send(s, "4"), Err(Error::SessionClosed));
    assert_eq!(h.take_events(), [closed(s, CloseReason::QueueFull)]);
    assert_eq!(h.xhr(&url), "a[\"1\",\"2\",\"3\"]\n");
    assert_eq!(h.xhr(&url), "c[1013,\"Send queue full\"]\n");
}

#[test]
fn websocket_client_that_stops_reading_is_closed_when_its_queue_fills() {
    let mut h = Harness::with_limits(Options::default(), small_buffers());
    let c = h.ws_connect("/echo/000/s/websocket");
    assert_eq!(h.ws_text(c), "o");
    let s = h.opened();
    h.stop_reading(c);
    let msg = "w".repeat(1000);
    let mut accepted = 0;
    while h.try_app_send(s, &msg).is_ok() {
        accepted += 1;
        assert!(h.in_flight(c) <= UNFLUSHED + 1010 + QUEUED + 200);
        assert!(accepted < 1000);
    }
    assert_eq!(h.take_events(), [closed(s, CloseReason::QueueFull)]);
    h.resume_reading(c);
    let frames = h.ws_read_all(c);
    let (data, last2) = frames.split_at(frames.len() - 2);
    let received: usize = data
        .iter()
        .map(|f| {
            serde_json::from_slice::<Vec<String>>(&f.payload[1..])
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(received, accepted);
    assert_eq!(
        last2,
        [
            WsFrame::text("c[1013,\"Send queue full\"]"),
            WsFrame::close(1000, "Normal closure")
        ]
    );
}

#[test]
fn write_timeout_aborts_a_connection_that_never_drains() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let c = h.open_streaming(&url);
    h.chunk(c);
    let s = h.opened();
    h.stop_reading(c);
    h.app_send(s, "unread");
    h.advance(secs(30) - ms(1));
    assert_eq!(h.closed(c), None);
    assert!(h.take_events().is_empty());
    h.advance(ms(1));
    assert_eq!(h.closed(c), Some(After::Abort));
    assert_eq!(h.take_events(), [closed(s, CloseReason::Interrupted)]);
    assert_eq!(h.server.connection_count(), 0);
    assert_eq!(h.xhr(&url), "c[1002,\"Connection interrupted\"]\n");
}

#[test]
fn write_timeout_counts_from_the_last_progress() {
    let mut h = Harness::echo();
    let c = h.open_streaming(&session_url("s"));
    h.chunk(c);
    let s = h.opened();
    h.stop_reading(c);
    for i in 0..5 {
        h.app_send(s, &format!("{i}"));
        h.advance(secs(20));
        // The client takes a few bytes: progress, so the clock restarts.
        h.client_reads(c, 3);
        assert_eq!(h.closed(c), None);
    }
    h.advance(secs(30));
    assert_eq!(h.closed(c), Some(After::Abort));
}

#[test]
fn write_timeout_applies_to_plain_responses_and_websockets() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.stop_reading(c);
    h.request(c, "GET", "/echo/iframe.html", &[], b"");
    h.advance(secs(30));
    assert_eq!(h.closed(c), Some(After::Abort));

    let c = h.ws_connect("/echo/websocket");
    let s = h.opened();
    h.stop_reading(c);
    h.app_send(s, "x");
    h.advance(secs(30));
    assert_eq!(h.closed(c), Some(After::Abort));
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
}

#[test]
fn a_slow_client_does_not_delay_another() {
    let mut h = Harness::with_limits(Options::default(), small_buffers());
    let slow = h.open_streaming(&session_url("slow"));
    h.chunk(slow);
    let a = h.opened();
    let fast = h.open_streaming(&session_url("fast"));
    h.chunk(fast);
    let b = h.opened();
    h.stop_reading(slow);
    h.app_send(a, &"x".repeat(UNFLUSHED + 1));
    let held = h.in_flight(slow);
    for i in 0..100 {
        let text = format!("{i}");
        assert_eq!(h.app_send_many(&[a, b], &text), 2);
        assert_eq!(h.chunk(fast), format!("a[\"{text}\"]\n"));
    }
    assert_eq!(h.in_flight(slow), held);
    assert!(h.take_events().is_empty());
}

// ----- session limit -----

#[test]
fn sessions_past_max_sessions_get_503() {
    let l = limits(|l| l.max_sessions = 2);
    let mut h = Harness::with_limits(Options::default(), l);
    h.xhr(&session_url("a"));
    let a = h.opened();
    let c = h.ws_connect("/echo/000/b/websocket");
    h.ws_text(c);
    h.opened();
    let busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=UTF-8\r\n\
                Content-Length: 17\r\n\r\nToo many sessions";
    let d = h.connect();
    h.request(d, "POST", "/echo/000/c/xhr", &[], b"");
    assert_eq!(testing::lossy(&h.take_unread(d)), busy);
    assert_eq!(h.closed(d), None);
    h.request(
        d,
        "GET",
        "/echo/000/c/websocket",
        &testing::ws_headers("13"),
        b"",
    );
    assert_eq!(testing::lossy(&h.take_unread(d)), busy);
    h.request(d, "GET", "/echo/websocket", &testing::ws_headers("13"), b"");
    assert_eq!(h.read_response(d).status, 503);
    assert!(h.take_events().is_empty());
    // Existing sessions are served; when one goes, a new one fits.
    h.app_send(a, "still here");
    assert_eq!(h.xhr(&session_url("a")), "a[\"still here\"]\n");
    h.advance(secs(5));
    h.take_events();
    assert_eq!(h.xhr(&session_url("c")), "o\n");
}

// ----- graceful shutdown -----

#[test]
fn shutdown_closes_open_sessions_with_1001_and_refuses_new_work() {
    let mut h = Harness::echo();
    let stream = h.open_streaming(&session_url("a"));
    h.chunk(stream);
    let a = h.opened();
    h.xhr(&session_url("b"));
    let b = h.opened();
    let ws = h.ws_connect("/echo/000/c/websocket");
    h.ws_text(ws);
    let c = h.opened();
    let idle = h.connect();
    h.request(idle, "GET", "/echo", &[], b"");
    h.read_response(idle);

    h.shutdown();
    let events = h.take_events();
    for s in [a, b, c] {
        assert!(
            events.contains(&closed(s, CloseReason::Shutdown)),
            "{s}: {events:?}"
        );
    }
    assert_eq!(events.len(), 3);
    assert_eq!(h.chunk(stream), "c[1001,\"Server shutting down\"]\n");
    assert_eq!(h.read_chunk(stream), Some(Vec::new()));
    assert_eq!(h.closed(stream), Some(After::Close));
    assert_eq!(
        h.ws_read_all(ws),
        [
            WsFrame::text("c[1001,\"Server shutting down\"]"),
            WsFrame::close(1000, "Normal closure")
        ]
    );
    h.ws_send(ws, 8, &1000u16.to_be_bytes());
    assert_eq!(h.closed(ws), Some(After::Close));
    assert_eq!(h.closed(idle), Some(After::Close));
    h.assert_nothing_unread(idle);
    // Each (with the idle one that carried b's poll) lingers after its shut-down, then
    // closes.
    assert_eq!(h.server.connection_count(), 4);
    h.advance(sockjs_core::Limits::default().linger_timeout);
    assert_eq!(h.server.connection_count(), 0);

    let late = h.connect();
    assert_eq!(h.read_response(late).status, 503);
    assert_eq!(h.closed(late), Some(After::Close));
}

#[test]
fn shutdown_refuses_new_sessions_on_requests_already_under_way() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(c, b"POST /echo/000/new/xhr HTTP/1.1\r\n");
    h.shutdown();
    h.send_bytes(c, b"\r\n");
    let r = h.read_response(c);
    assert_eq!((r.status, r.text()), (503, "Server shutting down"));
    assert_eq!(h.server.session_count(), 0);
    assert!(h.take_events().is_empty());
}

#[test]
fn shutdown_closes_connections_once_their_last_response_is_written() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(c, b"GET /echo HTTP/1.1\r\n");
    h.shutdown();
    assert_eq!(h.closed(c), None, "the request under way is answered");
    h.send_bytes(c, b"\r\n");
    let r = h.read_response(c);
    assert_eq!(r.text(), "Welcome to SockJS!\n");
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(h.closed(c), Some(After::Close));
    h.client_eof(c);
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn shutdown_lets_a_closed_session_be_forgotten() {
    let mut h = Harness::echo();
    h.xhr(&session_url("s"));
    h.opened();
    h.shutdown();
    assert_eq!(h.server.session_count(), 1);
    h.advance(secs(5));
    assert_eq!(h.server.session_count(), 0);
    // Stale timer entries may still wake the adapter once; then nothing is left.
    h.advance(secs(60));
    assert_eq!(h.server.poll_timeout(), None);
}

// ----- the timer contract -----

#[test]
fn poll_timeout_is_never_in_the_past_after_a_late_handle_timeout() {
    let mut h = Harness::echo();
    let stream = h.open_streaming(&session_url("a"));
    h.chunk(stream);
    let a = h.opened();
    h.xhr(&session_url("b"));
    let b = h.opened();
    let ws = h.ws_connect("/echo/000/c/websocket");
    h.ws_text(ws);
    let c = h.opened();
    let slow = h.connect();
    h.send_bytes(slow, b"GET /ec");
    // The adapter's timer fires 100 s late, past many deadlines at once.
    h.fire_timer_late(secs(100));
    // Each overdue deadline ran once: one heartbeat, not four.
    assert_eq!(h.chunk(stream), "h\n");
    assert_eq!(h.read_chunk(stream), None);
    assert_eq!(
        h.ws_read_all(ws),
        [WsFrame::text("h"), WsFrame::control(9, b"")]
    );
    assert_eq!(h.read_response(slow).status, 408);
    assert_eq!(h.take_events(), [closed(b, CloseReason::TimedOut)]);
    // And the clock carries on from there.
    h.advance(secs(10));
    assert_eq!(h.take_events(), [closed(c, CloseReason::HeartbeatTimeout)]);
    h.advance(secs(15));
    assert_eq!(h.chunk(stream), "h\n");
    assert_eq!(h.server.session_count(), 1);
    h.app_send(a, "still open");
    assert_eq!(h.chunk(stream), "a[\"still open\"]\n");
}

#[test]
fn an_idle_server_asks_for_no_timer() {
    let mut h = Harness::echo();
    assert_eq!(h.server.poll_timeout(), None);
    h.xhr(&session_url("s"));
    h.opened();
    h.advance(secs(3600));
    assert_eq!(h.server.connection_count(), 0);
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(h.server.poll_timeout(), None);
}

#[test]
fn deadlines_are_exact_on_the_virtual_clock() {
    let mut h = Harness::with_options(Options::default().heartbeat_delay(ms(1500)));
    let c = h.open_streaming(&session_url("s"));
    h.chunk(c);
    h.opened();
    let start = h.elapsed();
    let mut at = Vec::new();
    for _ in 0..4 {
        h.advance(ms(1500) - ms(1));
        assert_eq!(h.read_chunk(c), None);
        h.advance(ms(1));
        assert_eq!(h.chunk(c), "h\n");
        at.push(h.elapsed() - start);
    }
    assert_eq!(at, [ms(1500), ms(3000), ms(4500), ms(6000)]);
}

#[test]
fn a_closing_connection_is_kept_until_its_last_bytes_are_written() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.stop_reading(c);
    h.send_bytes(c, b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(
        h.closed(c),
        None,
        "not shut down while the response is unwritten"
    );
    assert!(h.in_flight(c) > 0);
    h.resume_reading(c);
    assert_eq!(
        h.closed(c),
        Some(After::Close),
        "shut down once it is written"
    );
    assert_eq!(h.read_response(c).text(), "Welcome to SockJS!\n");
    assert_eq!(h.server.connection_count(), 1, "lingering");
    h.client_eof(c);
    assert_eq!(
        h.server.connection_count(),
        0,
        "forgotten once the client is done"
    );
}

#[test]
fn a_final_write_that_never_drains_is_aborted_after_write_timeout() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.stop_reading(c);
    h.send_bytes(c, b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(h.closed(c), None);
    h.advance(sockjs_core::Limits::default().write_timeout - ms(1));
    assert_eq!(h.closed(c), None);
    h.advance(ms(1));
    assert_eq!(h.closed(c), Some(After::Abort));
    assert_eq!(h.server.connection_count(), 0);
}

// ----- the host contract -----

/// Frame overhead on top of one message: quotes, brackets, headers.
const FRAME_SLACK: usize = 16;

#[test]
fn a_closing_session_moves_its_queue_onto_a_stalled_websocket_a_frame_at_a_time() {
    let l = limits(|l| {
        l.max_unflushed_bytes = UNFLUSHED;
        l.max_queued_bytes = 1 << 20;
    });
    let mut h = Harness::with_limits(Options::default(), l);
    let ws = h.ws_connect("/echo/000/s/websocket");
    h.ws_text(ws);
    let s = h.opened();
    h.stop_reading(ws);
    let msg = "m".repeat(100);
    // What may wait: the bound, plus one frame of one message that started within it.
    let bound = UNFLUSHED + msg.len() + FRAME_SLACK;
    for _ in 0..2000 {
        h.app_send(s, &msg);
        assert!(h.in_flight(ws) <= bound, "{}", h.in_flight(ws));
    }
    h.app_close(s, 3000, "bye");
    assert!(h.in_flight(ws) <= bound, "{}", h.in_flight(ws));
    assert_eq!(
        h.take_events(),
        [closed(
            s,
            CloseReason::Application {
                code: 3000,
                reason: "bye".into()
            }
        )]
    );
    assert!(
        h.try_app_send(s, "late").is_err(),
        "closed at once for the application"
    );
    // The client reads a little at a time: the output never grows past the bound, every
    // message arrives once and in order, then the close frame.
    let mut got = 0;
    let mut tail = Vec::new();
    for _ in 0..10_000 {
        h.client_reads(ws, 1000);
        assert!(h.in_flight(ws) <= bound);
        for f in h.ws_read_all(ws) {
            let text = String::from_utf8_lossy(&f.payload).into_owned();
            if let Some(batch) = text.strip_prefix("a[").filter(|_| f.opcode == 1) {
                got += batch.matches(&msg).count();
            } else {
                tail.push(f);
            }
        }
        if h.in_flight(ws) == 0 {
            break;
        }
    }
    assert_eq!(got, 2000);
    assert_eq!(
        tail,
        [
            WsFrame::text("c[3000,\"bye\"]"),
            WsFrame::close(1000, "Normal closure")
        ]
    );
}

#[test]
fn a_closing_streaming_session_drains_its_queue_within_the_bound() {
    let mut h = Harness::with_limits(Options::default(), small_buffers());
    let c = h.open_streaming(&session_url("s"));
    h.chunk(c);
    let s = h.opened();
    h.stop_reading(c);
    for i in 0..12 {
        h.app_send(s, &format!("{i:04}{}", "x".repeat(996)));
    }
    h.app_close(s, 3000, "bye");
    assert!(
        h.in_flight(c) <= UNFLUSHED + 1000 + FRAME_SLACK,
        "{}",
        h.in_flight(c)
    );
    h.resume_reading(c);
    let mut seen = Vec::new();
    loop {
        let chunk = h.chunk(c);
        if chunk.starts_with("c[") {
            assert_eq!(chunk, "c[3000,\"bye\"]\n");
            break;
        }
        for i in 0..12 {
            if chunk.contains(&format!("\"{i:04}")) {
                seen.push(i);
            }
        }
    }
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
    assert_eq!(h.read_chunk(c), Some(Vec::new()), "the response ends");
}

#[test]
fn no_deadline_outlives_the_connections_and_sessions_it_was_for() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", "/echo", &[], b"");
    h.read_response(c);
    let ws = h.ws_connect("/echo/000/s/websocket");
    h.ws_text(ws);
    h.opened();
    h.client_closes(c);
    h.client_closes(ws);
    h.take_events();
    assert_eq!(h.server.connection_count(), 0);
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(h.server.poll_timeout(), None);
}

#[test]
fn end_of_stream_on_an_idle_connection_closes_it() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", "/echo", &[], b"");
    h.read_response(c);
    h.client_eof(c);
    assert_eq!(h.closed(c), Some(After::Close));
    assert!(!h.server.is_connection(c));
}

#[test]
fn end_of_stream_after_a_request_still_gets_the_answer() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.stop_reading(c);
    h.request(c, "GET", "/echo/info", &[], b"");
    h.client_eof(c);
    assert_eq!(h.closed(c), None, "the answer is still being written");
    h.resume_reading(c);
    assert_eq!(h.read_response(c).status, 200);
    assert_eq!(h.closed(c), Some(After::Close));
    assert!(!h.server.is_connection(c));
}

#[test]
fn end_of_stream_under_a_receiver_ends_its_session_after_what_was_written() {
    let mut h = Harness::echo();
    let c = h.open_streaming(&session_url("s"));
    h.chunk(c);
    let s = h.opened();
    h.stop_reading(c);
    h.app_send(s, "last");
    h.client_eof(c);
    assert!(h.take_events().is_empty(), "not before the frame is out");
    h.resume_reading(c);
    assert_eq!(h.chunk(c), "a[\"last\"]\n");
    assert_eq!(h.take_events(), [closed(s, CloseReason::Interrupted)]);
    assert!(!h.server.is_connection(c));
}

#[test]
fn end_of_stream_on_a_websocket_is_a_lost_connection() {
    let mut h = Harness::echo();
    let ws = h.ws_connect("/echo/000/s/websocket");
    h.ws_text(ws);
    let s = h.opened();
    h.client_eof(ws);
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
    assert!(!h.server.is_connection(ws));
}

#[test]
fn lingering_ends_when_the_client_sends_too_much() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", "/echo", &[("Connection", "close")], b"");
    h.read_response(c);
    assert_eq!(h.closed(c), Some(After::Close));
    let junk = vec![b'x'; 64 * 1024];
    for _ in 0..3 {
        h.send_bytes(c, &junk);
        assert!(h.server.is_connection(c));
    }
    h.send_bytes(c, &junk);
    assert!(
        !h.server.is_connection(c),
        "256 KiB read while lingering, then closed"
    );
}

#[test]
fn shutdown_timeout_aborts_what_is_still_open() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.stop_reading(c);
    h.request(c, "GET", "/echo/info", &[], b"");
    h.shutdown();
    h.advance(sockjs_core::Limits::default().shutdown_timeout - ms(1));
    assert!(h.server.is_connection(c));
    h.advance(ms(1));
    assert_eq!(h.closed(c), Some(After::Abort));
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn ids_work_as_indices_and_round_trip_raw() {
    let mut h = Harness::echo();
    let a = h.connect();
    let b = h.connect();
    assert_ne!(a.index(), b.index());
    assert_eq!(sockjs_core::ConnectionId::from_raw(a.to_raw()), a);
    h.client_closes(a);
    let c = h.connect();
    assert_eq!(c.index(), a.index(), "a freed index is reused");
    assert_ne!(c, a, "but the id is new");
    h.request(a, "GET", "/echo", &[], b"");
    assert!(h.server.is_connection(c));
    assert!(h.take_unread(c).is_empty(), "a stale id reaches nobody");
}

#[test]
fn messages_name_the_connection_that_carried_them() {
    let mut h = Harness::echo();
    h.xhr(&session_url("s"));
    let s = h.opened();
    let c = h.connect();
    h.request(
        c,
        "POST",
        &format!("{}/xhr_send", session_url("s")),
        &[],
        b"[\"x\"]",
    );
    assert_eq!(h.read_response(c).status, 204);
    assert_eq!(
        h.take_events(),
        [Event::Message {
            session: s,
            connection: c,
            text: "x".into()
        }]
    );
}

#[test]
fn io_write_comes_again_for_output_added_after_the_host_took_some() {
    use sockjs_core::{Config, Io, Server};
    let now = std::time::Instant::now();
    let config = Config::new().endpoint("/echo", Options::default());
    let mut server = Server::new(config, now, Harness::wall_clock(), Box::new(|| 1));
    let c = server.accept(now, "127.0.0.1:1".parse().unwrap());
    let get = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    server.handle_bytes(now, c, get);
    assert_eq!(server.poll_io(), Some(Io::Write(c)));
    server.handle_bytes(now, c, get);
    assert_eq!(server.poll_io(), None, "announced already, not taken yet");
    let first: Vec<u8> = server.output(c).concat();
    // The host writes those bytes elsewhere; meanwhile more output comes.
    server.handle_bytes(now, c, get);
    assert_eq!(server.poll_io(), Some(Io::Write(c)));
    server.handle_written(now, c, first.len());
    let rest: Vec<u8> = server.output(c).concat();
    assert_eq!(rest.len(), first.len() / 2, "the third answer, after two");
    server.handle_written(now, c, rest.len());
    assert_eq!(server.output_len(c), 0);
    assert_eq!(server.poll_io(), None);
}

#[test]
fn awaits_written_says_when_a_lazy_host_must_report_at_once() {
    let mut h = Harness::with_limits(Options::default(), small_buffers());
    let c = h.open_streaming(&session_url("s"));
    h.chunk(c);
    let s = h.opened();
    assert!(!h.server.awaits_written(c), "an idle stream");
    h.stop_reading(c);
    h.app_send(s, &"b".repeat(UNFLUSHED));
    assert!(!h.server.awaits_written(c), "nothing held back yet");
    h.app_send(s, "held");
    assert!(
        h.server.awaits_written(c),
        "a message waits for the output to drain"
    );
    h.resume_reading(c);
    assert!(!h.server.awaits_written(c));
    let p = h.connect();
    h.stop_reading(p);
    h.request(p, "GET", "/echo", &[("Connection", "close")], b"");
    assert!(h.server.awaits_written(p), "it closes once written");
}

#[test]
fn a_connection_that_comes_during_an_idle_shutdown_is_still_bounded_by_it() {
    let mut h = Harness::echo();
    h.shutdown();
    assert_eq!(h.server.poll_timeout(), None, "nothing to wait for");
    h.advance(secs(1));
    let c = h.connect_stalled();
    assert!(h.in_flight(c) > 0, "its 503 waits");
    h.advance(sockjs_core::Limits::default().shutdown_timeout - secs(1) - ms(1));
    assert!(h.server.is_connection(c));
    h.advance(ms(1));
    assert_eq!(h.closed(c), Some(After::Abort));
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn htmlfile_frames_stay_within_the_bound_when_escaping_grows_them() {
    let mut h = Harness::with_limits(Options::default(), small_buffers());
    let c = h.connect();
    h.request(
        c,
        "GET",
        &format!("{}/htmlfile?c=cb", session_url("s")),
        &[],
        b"",
    );
    h.read_head(c);
    h.read_chunk(c);
    h.read_chunk(c);
    let s = h.opened();
    h.stop_reading(c);
    // `<` is one byte in the queue and six (`\u003c`) in an htmlfile script block.
    let msg = "<".repeat(100);
    for _ in 0..100 {
        h.app_send(s, &msg);
        assert!(
            h.in_flight(c) <= UNFLUSHED + 6 * (msg.len() + FRAME_SLACK),
            "{}",
            h.in_flight(c)
        );
    }
}
