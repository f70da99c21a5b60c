//! The server-wide memory budget (`Limits::max_buffered_bytes`): sessions whose clients do
//! not read are closed, largest first, when a send would pass it; everyone else keeps
//! working; the total stays within the budget plus one message. The harness checks after
//! every call that the core's running total equals a recount.

use sockjs_core::testing::{
    After, Harness, WsFrame, client_messages, frame_messages, limits, session_url,
};
use sockjs_core::{CloseReason, ConnectionId, Error, Event, Limits, Options, SessionId};

const BUDGET: usize = 200 * 1024;
const CLOSE: &str = "c[1013,\"Server memory budget exceeded\"]";

fn budget_limits() -> Limits {
    limits(|l| {
        l.max_buffered_bytes = BUDGET;
        l.max_unflushed_bytes = 4096;
        l.max_queued_bytes = 64 * 1024;
    })
}

fn harness() -> Harness {
    Harness::with_limits(Options::default(), budget_limits())
}

/// A SockJS WebSocket session whose client has read `o`.
fn ws_session(h: &mut Harness, id: &str) -> (ConnectionId, SessionId) {
    let conn = h.ws_connect(&format!("/echo/000/{id}/websocket"));
    assert_eq!(h.ws_text(conn), "o");
    (conn, h.opened())
}

/// Sends 1000-byte messages to `s` until `bytes` are queued in it (its client not reading).
fn fill(h: &mut Harness, s: SessionId, bytes: usize) -> Vec<String> {
    let mut sent = Vec::new();
    let mut i = 0;
    while h.server.queued(s).expect("open").0 < bytes {
        let text = format!("{i:04}{}", "x".repeat(996));
        h.app_send(s, &text);
        sent.push(text);
        i += 1;
    }
    sent
}

fn queued(h: &Harness, s: SessionId) -> usize {
    h.server.queued(s).map_or(0, |q| q.0)
}

/// The budget holds to within one message of `largest` bytes (quoted) and the slack of
/// control frames and response heads.
fn assert_within(h: &Harness, largest: usize) {
    let total = h.server.buffered_bytes();
    assert!(
        total <= BUDGET + largest + 4096,
        "{total} bytes held, budget {BUDGET}, largest message {largest}"
    );
}

fn closed_for_budget(s: SessionId) -> Event {
    Event::Closed {
        session: s,
        reason: CloseReason::MemoryBudget,
    }
}

/// The messages of the `a[...]` frames among `frames`, and the frames that are not.
fn split_frames(frames: Vec<WsFrame>) -> (Vec<String>, Vec<WsFrame>) {
    let mut messages = Vec::new();
    let mut others = Vec::new();
    for f in frames {
        match f.opcode {
            1 if f.payload.first() == Some(&b'a') => {
                let text = String::from_utf8(f.payload).unwrap();
                messages.extend(frame_messages(&text).unwrap());
            }
            _ => others.push(f),
        }
    }
    (messages, others)
}

#[test]
fn websocket_hogs_are_closed_largest_first_and_the_others_keep_receiving() {
    let mut h = harness();
    let good: Vec<_> = (0..50)
        .map(|i| ws_session(&mut h, &format!("good{i}")))
        .collect();
    let hogs: Vec<_> = (0..3)
        .map(|i| ws_session(&mut h, &format!("hog{i}")))
        .collect();
    for &(conn, _) in &hogs {
        h.stop_reading(conn);
    }
    // Hog 1 queues the most, then hog 2, then hog 0.
    let sent: Vec<Vec<String>> = [(0, 40), (1, 62), (2, 52)]
        .iter()
        .map(|&(i, kib)| fill(&mut h, hogs[i].1, kib * 1024))
        .collect();
    h.take_events();
    let held = h.server.buffered_bytes();
    assert!(held < BUDGET, "{held}");
    // Everyone reading keeps getting everything while the total stays under the budget.
    for &(conn, s) in &good {
        h.app_send(s, "hello");
        assert_eq!(h.ws_text(conn), "a[\"hello\"]");
    }
    assert_eq!(h.take_events(), []);

    // A message that fits once the largest hog's queue is gone.
    let (q0, q1, q2) = (
        queued(&h, hogs[0].1),
        queued(&h, hogs[1].1),
        queued(&h, hogs[2].1),
    );
    assert!(q1 > q2 && q2 > q0);
    let held = h.server.buffered_bytes();
    let len = BUDGET - held + q1 / 2;
    let big = "b".repeat(len);
    h.app_send(good[0].1, &big);
    assert_eq!(h.take_events(), [closed_for_budget(hogs[1].1)]);
    assert_within(&h, len + 2);
    assert_eq!(h.ws_text(good[0].0), format!("a[\"{big}\"]"));
    assert!(h.server.queued(hogs[0].1).is_some() && h.server.queued(hogs[2].1).is_some());

    // One that needs both remaining hogs closed: the larger goes first.
    let held = h.server.buffered_bytes();
    let len = BUDGET - held + q2 + q0 / 2;
    let big = "c".repeat(len);
    h.app_send(good[1].1, &big);
    assert_eq!(
        h.take_events(),
        [closed_for_budget(hogs[2].1), closed_for_budget(hogs[0].1)]
    );
    assert_eq!(h.ws_text(good[1].0), format!("a[\"{big}\"]"));

    // Every other session is still open and served.
    for &(conn, s) in &good {
        h.app_send(s, "still here");
        assert_eq!(h.ws_text(conn), "a[\"still here\"]");
    }
    assert_eq!(h.take_events(), []);

    // A hog that reads again gets what was on its connection already, a prefix of what was
    // sent, then the exact close frame and the WebSocket close.
    for (i, &(conn, _)) in hogs.iter().enumerate() {
        h.resume_reading(conn);
        let (messages, rest) = split_frames(h.ws_read_all(conn));
        assert!(!messages.is_empty() && sent[i].starts_with(&messages));
        assert!(messages.len() < sent[i].len(), "the queue was dropped");
        assert_eq!(
            rest,
            [WsFrame::text(CLOSE), WsFrame::close(1000, "Normal closure")]
        );
    }
    // The hogs' queues are gone: what is left is about what good[1]'s big message took.
    assert!(
        h.server.buffered_bytes() < 1024,
        "{}",
        h.server.buffered_bytes()
    );
}

#[test]
fn polling_hogs_are_closed_and_their_next_poll_gets_the_close_frame() {
    let mut h = harness();
    let mut good = Vec::new();
    for i in 0..20 {
        let url = session_url(&format!("good{i}"));
        let conn = h.open_streaming(&url);
        assert_eq!(h.chunk(conn), "o\n");
        good.push((conn, h.opened()));
    }
    // Polling sessions whose clients stopped polling: their messages wait in the queue.
    let mut hogs = Vec::new();
    for i in 0..4 {
        let url = session_url(&format!("hog{i}"));
        assert_eq!(h.xhr(&url), "o\n");
        hogs.push((url, h.opened()));
    }
    for (i, (_, s)) in hogs.iter().enumerate() {
        fill(&mut h, *s, (20 + 10 * i) * 1024);
    }
    h.take_events();
    // A broadcast of a message that fits once the two largest hogs are gone: the hogs get
    // it too (they are in the list), until each is closed.
    let everyone: Vec<SessionId> = good.iter().map(|g| g.1).collect();
    let held = h.server.buffered_bytes();
    let len = (BUDGET - held) / 20 + 1024;
    let text = "z".repeat(len);
    let mut all = everyone.clone();
    all.extend(hogs.iter().map(|g| g.1));
    let took = h.app_send_many(&all, &text);
    let events = h.take_events();
    let victims: Vec<SessionId> = events
        .iter()
        .map(|e| match e {
            Event::Closed {
                session,
                reason: CloseReason::MemoryBudget,
            } => *session,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // Largest first, and only hogs.
    assert!(!victims.is_empty());
    let expected: Vec<SessionId> = hogs.iter().rev().map(|g| g.1).take(victims.len()).collect();
    assert_eq!(victims, expected);
    assert_eq!(took, all.len() - victims.len());
    assert_within(&h, len + 2);
    for &(conn, _) in &good {
        assert_eq!(h.chunk(conn), format!("a[\"{text}\"]\n"));
    }
    // A closed hog's next poll: the close frame, its queue dropped.
    for (url, s) in &hogs {
        if victims.contains(s) {
            assert_eq!(h.xhr(url), format!("{CLOSE}\n"));
        }
    }
}

#[test]
fn the_session_sent_to_is_closed_when_it_is_the_largest_holder() {
    let mut limits = budget_limits();
    limits.max_queued_bytes = BUDGET * 2;
    let mut h2 = Harness::with_limits(Options::default(), limits);
    let (conn2, s2) = ws_session(&mut h2, "only");
    h2.stop_reading(conn2);
    let msg = "q".repeat(10_000);
    let mut accepted = 0;
    loop {
        match h2.try_app_send(s2, &msg) {
            Ok(()) => accepted += 1,
            Err(Error::SessionClosed) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(accepted < 100, "the budget never bit");
        assert_within(&h2, msg.len() + 2);
    }
    assert_eq!(h2.take_events(), [closed_for_budget(s2)]);
    assert!(accepted >= BUDGET / 10_002 - 1, "{accepted}");
    // Its queue is gone at once; what is left is what was on its connection.
    assert!(h2.server.buffered_bytes() <= 4096 + 10_100);
    h2.resume_reading(conn2);
    let (_, rest) = split_frames(h2.ws_read_all(conn2));
    assert_eq!(
        rest,
        [WsFrame::text(CLOSE), WsFrame::close(1000, "Normal closure")]
    );
}

#[test]
fn one_message_may_pass_the_budget_when_nothing_can_be_closed() {
    let mut h = harness();
    let (conn, s) = ws_session(&mut h, "a");
    h.stop_reading(conn);
    // Larger than the budget: an empty server takes it (onto the connection), like an
    // empty queue takes one message of any size.
    let huge = "h".repeat(BUDGET + 10);
    h.app_send(s, &huge);
    assert!(h.server.buffered_bytes() > BUDGET);
    assert_within(&h, huge.len() + 2);
    // The next send finds the total past the budget and nothing queued to drop: the
    // largest holder is the connection's output, which is aborted, its session closed for
    // the budget; so the send is refused.
    assert_eq!(h.try_app_send(s, "more"), Err(Error::SessionClosed));
    assert_eq!(h.take_events(), [closed_for_budget(s)]);
    assert_eq!(h.closed(conn), Some(After::Abort));
    assert_eq!(h.server.buffered_bytes(), 0);
}

#[test]
fn without_holders_large_enough_to_rank_the_session_sent_to_is_closed() {
    // A million-byte budget ranks holders from 976 bytes: sessions each holding a little
    // under that (one 900-byte message on their connection) cannot be ranked, so once the
    // total is past the budget, the session sent to is the one closed.
    let mut h = Harness::with_limits(
        Options::default(),
        limits(|l| {
            l.max_buffered_bytes = 1_000_000;
            l.max_unflushed_bytes = 1_000_000;
        }),
    );
    let mut hogs = Vec::new();
    for i in 0..1200 {
        let (conn, s) = ws_session(&mut h, &format!("s{i}"));
        h.stop_reading(conn);
        hogs.push(s);
    }
    let text = "w".repeat(900);
    let mut refused = None;
    for &s in &hogs {
        if h.try_app_send(s, &text).is_err() {
            refused = Some(s);
            break;
        }
    }
    let s = refused.expect("the budget never bit");
    assert_eq!(h.take_events(), [closed_for_budget(s)]);
    assert!(h.server.buffered_bytes() <= 1_000_000 + 2000);
}

#[test]
fn inbound_bytes_the_host_reports_count_toward_the_budget() {
    let mut h = harness();
    let (good_conn, good) = ws_session(&mut h, "good");
    let (hog_conn, hog) = ws_session(&mut h, "hog");
    h.stop_reading(hog_conn);
    fill(&mut h, hog, 30 * 1024);
    let before = h.server.buffered_bytes();
    // The application holds messages it has not taken: the host says so.
    h.server.set_held_inbound(BUDGET - before - 1000);
    assert_eq!(h.server.buffered_bytes(), BUDGET - 1000);
    h.drain();
    // A small message still fits.
    h.app_send(good, "fits");
    assert_eq!(h.ws_text(good_conn), "a[\"fits\"]");
    // One that does not: the hog goes.
    h.app_send(good, &"y".repeat(2000));
    assert_eq!(h.take_events(), [closed_for_budget(hog)]);
    // Taken by the application: the total drops by as much.
    let now = h.server.buffered_bytes();
    h.server.set_held_inbound(0);
    assert_eq!(h.server.buffered_bytes(), now - (BUDGET - before - 1000));
    h.drain();
}

#[test]
fn under_sustained_pressure_the_total_stays_within_one_message() {
    // Many sessions, a tenth of them never reading; every session gets a stream of messages
    // of varied sizes. Hogs are closed as the budget needs; readers never are.
    let mut h = harness();
    let mut sessions = Vec::new();
    for i in 0..200 {
        let (conn, s) = ws_session(&mut h, &format!("s{i}"));
        let hog = i % 10 == 3;
        if hog {
            h.stop_reading(conn);
        }
        sessions.push((conn, s, hog));
    }
    let mut largest = 0;
    let mut closed = Vec::new();
    for round in 0..40 {
        for (j, &(conn, s, hog)) in sessions.iter().enumerate() {
            if closed.contains(&s) {
                continue;
            }
            let len = 200 + (round * 131 + j * 17) % 3000;
            largest = largest.max(len + 2);
            let text = "m".repeat(len);
            match h.try_app_send(s, &text) {
                Ok(()) => {}
                Err(_) => assert!(hog, "a reader's send was refused"),
            }
            if !hog {
                assert_eq!(h.ws_text(conn), format!("a[\"{text}\"]"));
            }
            assert_within(&h, largest);
            for e in h.take_events() {
                match e {
                    Event::Closed {
                        session,
                        reason: CloseReason::MemoryBudget,
                    } => {
                        let &(_, _, was_hog) = sessions.iter().find(|x| x.1 == session).unwrap();
                        assert!(was_hog, "a reader was closed");
                        closed.push(session);
                    }
                    Event::Closed {
                        session,
                        reason: CloseReason::QueueFull,
                    } => closed.push(session),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }
    assert!(!closed.is_empty(), "the budget never bit");
}

#[test]
fn messages_the_client_sends_are_unaffected() {
    let mut h = harness();
    let (conn, s) = ws_session(&mut h, "a");
    h.ws_send_text(conn, &client_messages(&["one", "two"]));
    assert_eq!(h.messages(s), ["one", "two"]);
}

#[test]
fn large_and_small_messages_held_for_a_client_arrive_byte_exact_and_are_uncounted_after() {
    // Held in the queue and the output while the clients do not read, batched together on
    // SockJS and raw WebSockets; once read, nothing is counted any more.
    let mut h = Harness::echo();
    let (conn, s) = ws_session(&mut h, "a");
    let raw = h.ws_connect("/echo/websocket");
    let r = h.opened();
    h.stop_reading(conn);
    h.stop_reading(raw);
    let big = "\u{e9}\"".repeat(3000);
    let texts = ["small", big.as_str(), "mid", big.as_str(), "end"];
    for t in texts {
        h.app_send(s, t);
        h.app_send(r, t);
    }
    h.resume_reading(conn);
    h.resume_reading(raw);
    let (messages, rest) = split_frames(h.ws_read_all(conn));
    assert_eq!(messages, texts);
    assert_eq!(rest, []);
    let frames: Vec<WsFrame> = texts.iter().map(|t| WsFrame::text(t)).collect();
    assert_eq!(h.ws_read_all(raw), frames);
    assert_eq!(h.server.buffered_bytes(), 0);
}

/// A session closed already still delivers what it queued before its close frame. When the
/// budget drops that queue, the client must not get its ordinary close frame after the gap
/// (a `c[...]` frame says everything before it arrived): it gets the budget's instead. Found
/// by the `exchange` fuzz target (a WebSocket session closed for a full queue).
#[test]
fn a_closed_sessions_queue_dropped_for_the_budget_ends_with_the_budget_close_frame() {
    let mut h = harness();
    let url = session_url("closing");
    assert_eq!(h.xhr(&url), "o\n");
    let closing = h.opened();
    fill(&mut h, closing, 60 * 1024);
    h.app_close(closing, 3000, "Go away");
    assert_eq!(
        h.take_events(),
        [Event::Closed {
            session: closing,
            reason: CloseReason::Application {
                code: 3000,
                reason: "Go away".into(),
            },
        }]
    );
    let (conn, s) = ws_session(&mut h, "other");
    let held = h.server.buffered_bytes();
    let big = "b".repeat(BUDGET - held + 1024);
    h.app_send(s, &big);
    // The closing session was the largest holder; it reported its close already.
    assert_eq!(h.take_events(), []);
    assert_within(&h, big.len() + 2);
    assert_eq!(h.ws_text(conn), format!("a[\"{big}\"]"));
    assert_eq!(h.xhr(&url), format!("{CLOSE}\n"));
    // And so does every later poll, until the session is forgotten.
    assert_eq!(h.xhr(&url), format!("{CLOSE}\n"));
}
