//! `--compression` over real TCP on every runtime: permessage-deflate negotiated with a
//! browser's offer, compressed messages both ways on `/echo` and `/broadcast`, a
//! decompression bomb closing only its own connection, and a client that offers nothing
//! served as before. (tungstenite, the WebSocket crate the workspace pins, has no
//! permessage-deflate, so the client side is the core's own codec.)

mod support;

use sockjs_core::bytes::BytesMut;
use sockjs_core::testing::ws_frame;
use sockjs_core::ws::deflate::{DeflateConfig, Deflater, Inflater, negotiate};
use support::{Conn, TestServer, sid};

const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// A WebSocket that offered permessage-deflate, with the client's codec for the answer.
struct Deflating {
    conn: Conn,
    deflater: Deflater,
    inflater: Inflater,
}

impl Deflating {
    fn open(s: &TestServer, path: &str) -> Deflating {
        let mut conn = Conn::open(s.addr);
        conn.request("GET", path, &upgrade(Some(OFFER)), b"");
        let r = conn.head();
        assert_eq!(r.status, 101, "{}", r.head);
        let answer = r.header("sec-websocket-extensions").expect("negotiated");
        assert_eq!(answer, "permessage-deflate");
        let params = negotiate(&DeflateConfig::default(), [answer.as_bytes()])
            .unwrap()
            .params;
        let config = DeflateConfig {
            min_message_size: 0,
            ..DeflateConfig::default()
        };
        Deflating {
            conn,
            deflater: Deflater::new(&params, &config),
            inflater: Inflater::new(&params),
        }
    }

    fn send_compressed(&mut self, text: &str) {
        let mut payload = BytesMut::new();
        assert!(self.deflater.compress(&[text.as_bytes()], &mut payload));
        self.conn.send(&ws_frame(true, 0x41, &payload));
    }

    /// The next frame: opcode, payload (inflated), whether it was compressed.
    fn read(&mut self) -> (u8, Vec<u8>, bool) {
        let h = self.conn.take(2);
        assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
        let len = match h[1] & 0x7f {
            126 => u16::from_be_bytes(self.conn.take(2).try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(self.conn.take(8).try_into().unwrap()) as usize,
            n => n as usize,
        };
        let payload = self.conn.take(len);
        let compressed = h[0] & 0x40 != 0;
        let payload = if compressed {
            self.inflater.inflate_message(&payload, 1 << 24).unwrap()
        } else {
            payload
        };
        (h[0] & 0x0f, payload, compressed)
    }

    /// The next text frame, pings and pongs skipped.
    fn read_text(&mut self) -> (String, bool) {
        loop {
            match self.read() {
                (1, payload, compressed) => {
                    return (String::from_utf8(payload).unwrap(), compressed);
                }
                (9 | 10, _, _) => continue,
                other => panic!("expected text, got {other:?}"),
            }
        }
    }
}

fn upgrade(extensions: Option<&str>) -> Vec<(&str, &str)> {
    let mut headers = vec![
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    if let Some(e) = extensions {
        headers.push(("Sec-WebSocket-Extensions", e));
    }
    headers
}

fn compressed_echo_broadcast_and_bomb(rt: &str) {
    let s = TestServer::start_with(rt, &["--compression"], &[]);
    let long =
        "{\"user\":\"ann\",\"text\":\"hello, is anyone in the room tonight? anyone at all?\"}";
    let quoted = format!("[{}]", serde_quote(long));

    let mut echo = Deflating::open(&s, &format!("/echo/000/{}/websocket", sid()));
    assert_eq!(echo.read_text(), ("o".to_string(), false));
    echo.send_compressed(&quoted);
    assert_eq!(echo.read_text(), (format!("a{quoted}"), true));
    // Plain messages on the same connection still work, and short answers stay plain.
    echo.conn.send(&ws_frame(true, 1, b"[\"hi\"]"));
    assert_eq!(echo.read_text(), ("a[\"hi\"]".to_string(), false));

    // The raw endpoint.
    let mut raw = Deflating::open(&s, "/echo/websocket");
    raw.send_compressed(long);
    assert_eq!(raw.read_text(), (long.to_string(), true));

    // A broadcast reaches two compressed clients, compressed.
    let mut a = Deflating::open(&s, &format!("/broadcast/000/{}/websocket", sid()));
    let mut b = Deflating::open(&s, &format!("/broadcast/000/{}/websocket", sid()));
    assert_eq!(a.read_text().0, "o");
    assert_eq!(b.read_text().0, "o");
    std::thread::sleep(std::time::Duration::from_millis(100)); // both handlers registered
    a.send_compressed(&quoted);
    assert_eq!(a.read_text(), (format!("a{quoted}"), true));
    assert_eq!(b.read_text(), (format!("a{quoted}"), true));

    // A bomb: about 10 KiB that inflate to 2 MiB, past the 1 MiB default limit.
    let mut bomber = Deflating::open(&s, &format!("/echo/000/{}/websocket", sid()));
    assert_eq!(bomber.read_text().0, "o");
    let spaces = vec![b' '; 1 << 20];
    let mut payload = BytesMut::new();
    assert!(
        bomber
            .deflater
            .compress(&[b"[\"", &spaces, &spaces, b"\"]"], &mut payload)
    );
    assert!(payload.len() < 16 * 1024, "{}", payload.len());
    bomber.conn.send(&ws_frame(true, 0x41, &payload));
    let (op, close, _) = bomber.read();
    assert_eq!(op, 8);
    assert_eq!(&close[..2], &1009u16.to_be_bytes());
    assert!(bomber.conn.is_closed());
    // Only that one.
    echo.send_compressed(&quoted);
    assert_eq!(echo.read_text(), (format!("a{quoted}"), true));

    // A client that offers nothing gets the plain handshake and plain frames.
    let mut plain = Conn::open(s.addr);
    plain.request(
        "GET",
        &format!("/echo/000/{}/websocket", sid()),
        &upgrade(None),
        b"",
    );
    let r = plain.head();
    assert_eq!(r.status, 101);
    assert_eq!(r.header("sec-websocket-extensions"), None);
    assert_eq!(plain.ws_read_text(), "o");
    plain.ws_text(&quoted);
    assert_eq!(plain.ws_read_text(), format!("a{quoted}"));
}

/// `text` as a JSON string literal (it holds no character that needs escaping but `"`).
fn serde_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\\\""))
}

#[test]
fn tokio() {
    compressed_echo_broadcast_and_bomb("tokio");
}

#[test]
fn async_std() {
    compressed_echo_broadcast_and_bomb("async-std");
}

#[test]
fn smol() {
    compressed_echo_broadcast_and_bomb("smol");
}
