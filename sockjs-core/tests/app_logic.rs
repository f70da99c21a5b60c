//! How an application tests its own SockJS logic with `sockjs_core::testing`: a small chat
//! that broadcasts every message to every open session, driven on the virtual clock over
//! several transports at once, then checked for any message contents with `proptest`.

use proptest::prelude::*;
use sockjs_core::testing::strategies::{self, messages, receiver};
use sockjs_core::testing::{Harness, Receiver, client_messages, frame_messages, secs, session_url};
use sockjs_core::{ConnectionId, Event, SessionId};

/// The application under test: it keeps the open sessions and sends each message it
/// receives to all of them, the sender included.
#[derive(Default)]
struct Chat {
    members: Vec<SessionId>,
}

impl Chat {
    /// Handles every event the server has produced, as the application's event loop would.
    fn handle_events(&mut self, h: &mut Harness) {
        for event in h.take_events() {
            match event {
                Event::Opened { session, .. } => self.members.push(session),
                Event::Message { text, .. } => {
                    let reached = h.app_send_many(&self.members, &text);
                    assert_eq!(reached, self.members.len(), "every member takes it");
                }
                Event::Closed { session, .. } => self.members.retain(|&s| s != session),
                Event::Authorize { .. } => unreachable!("no endpoint authorizes here"),
            }
        }
    }
}

/// The messages in the frames a client received.
fn texts(frames: impl IntoIterator<Item = String>) -> Vec<String> {
    frames
        .into_iter()
        .filter_map(|f| frame_messages(&f))
        .flatten()
        .collect()
}

/// Three members that stay connected, one on each streaming transport.
struct Listeners {
    ws: ConnectionId,
    stream: ConnectionId,
    events: ConnectionId,
}

impl Listeners {
    /// What each of them has heard since the last look.
    fn heard(&self, h: &mut Harness) -> Vec<Vec<String>> {
        vec![
            texts([h.ws_text(self.ws)]),
            texts([h.chunk(self.stream)]),
            texts(h.receiver_frames(self.events, Receiver::EventSource)),
        ]
    }
}

#[test]
fn a_message_reaches_members_on_every_transport_and_a_silent_one_times_out() {
    let mut h = Harness::echo();
    let mut chat = Chat::default();

    // Four members, each on its own transport.
    let ws = h.ws_connect(&format!("{}/websocket", session_url("ws")));
    assert_eq!(h.ws_text(ws), "o");
    let stream = h.open_streaming(&session_url("stream"));
    assert_eq!(h.chunk(stream), "o\n");
    let events = h.open_receiver(Receiver::EventSource, &session_url("es"));
    assert_eq!(h.receiver_frames(events, Receiver::EventSource), ["o"]);
    let poller = session_url("poll");
    assert_eq!(h.xhr(&poller), "o\n");
    chat.handle_events(&mut h);
    assert_eq!(chat.members.len(), 4);
    let listeners = Listeners { ws, stream, events };

    // The WebSocket member speaks; everyone hears it, the speaker too.
    let text = "hello, \u{2028}world \u{1f600}";
    h.ws_send_text(ws, &client_messages(&[text]));
    chat.handle_events(&mut h);
    assert_eq!(listeners.heard(&mut h), vec![vec![text.to_string()]; 3]);
    assert_eq!(
        frame_messages(&h.xhr(&poller)),
        Some(vec![text.to_string()])
    );

    // The poller stops polling. Past the disconnect delay (5 s) its session times out and
    // the chat forgets it: a test of a timeout that takes no time.
    let poller_session = chat.members[3];
    h.advance(secs(6));
    chat.handle_events(&mut h);
    assert_eq!(chat.members.len(), 3);
    assert!(!chat.members.contains(&poller_session));

    // The streaming member speaks over xhr_send; the three left hear it.
    h.xhr_send(&session_url("stream"), &client_messages(&["still here?"]));
    chat.handle_events(&mut h);
    assert_eq!(
        listeners.heard(&mut h),
        vec![vec!["still here?".to_string()]; 3]
    );
    assert_eq!(h.xhr(&poller), "o\n", "a new session for the same URL");
}

proptest! {
    #![proptest_config(strategies::config(64))]

    /// Whatever the messages hold (quotes, control characters, the Unicode SockJS escapes,
    /// characters outside the BMP) and whichever transport the listener receives on, the
    /// chat delivers them unchanged and in order.
    #[test]
    fn any_messages_reach_a_listener_on_any_receiver_unchanged(
        sent in messages(5),
        listener in receiver(),
    ) {
        let mut h = Harness::echo();
        let mut chat = Chat::default();
        let url = session_url("listener");
        let conn = h.open_receiver(listener, &url);
        let speaker = h.ws_connect("/echo/000/speaker/websocket");
        chat.handle_events(&mut h);

        for text in &sent {
            h.ws_send_text(speaker, &client_messages(&[text]));
        }
        chat.handle_events(&mut h);

        let mut frames = h.receiver_frames(conn, listener);
        if !listener.is_streaming() {
            // The first poll ended with the open frame; the next one takes the messages.
            let poll = h.open_receiver(listener, &url);
            frames.extend(h.receiver_frames(poll, listener));
        }
        prop_assert_eq!(texts(frames), sent);
    }
}
