//! The WebSocket side of the harness's clients: RFC 6455 frames sent masked and read one at
//! a time, and hixie-76 frames.

use bytes::BytesMut;

use super::harness::Harness;
use super::http_client::Response;
use super::lossy;
use crate::ConnectionId;
use crate::ws::deflate::{Deflater, Inflater};

/// The WebSocket key of the SockJS protocol suite's `test_headersSanity`, which
/// [`ws_headers`] sends.
pub const SUITE_WS_KEY: &str = "x3JJHMbDL1EzLkh9GBhXDw==";
/// The `Sec-WebSocket-Accept` the server answers [`SUITE_WS_KEY`] with.
pub const SUITE_WS_ACCEPT: &str = "HSmrc0sMlYUkAGmm5OPpG2HaGWk=";
/// The mask every client frame is sent with (the example mask of RFC 6455, section 5.7).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame the server sent on an RFC 6455 connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsFrame {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// The payload (servers never mask).
    pub payload: Vec<u8>,
}

impl WsFrame {
    /// A final text frame, for comparisons.
    pub fn text(s: &str) -> WsFrame {
        WsFrame::control(1, s.as_bytes())
    }

    /// A close frame with a code and reason, for comparisons.
    pub fn close(code: u16, reason: &str) -> WsFrame {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        WsFrame {
            fin: true,
            opcode: 8,
            payload,
        }
    }

    /// A final frame with any opcode (a control frame, usually), for comparisons.
    pub fn control(opcode: u8, payload: &[u8]) -> WsFrame {
        WsFrame {
            fin: true,
            opcode,
            payload: payload.to_vec(),
        }
    }
}

/// What the server sent on a hixie-76 connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HixieFrame {
    /// `0x00 text 0xff`.
    Text(String),
    /// `0xff 0x00`.
    Close,
}

/// The headers of an RFC 6455 upgrade with [`SUITE_WS_KEY`] and `version`, for
/// [`Harness::request`] or [`super::request_bytes`].
pub fn ws_headers(version: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", version),
        ("Sec-WebSocket-Key", SUITE_WS_KEY),
    ]
}

/// A client frame, masked with [`MASK`]. `fin` and `opcode` are taken as given, so
/// fragments and invalid frames can be built too (bits 4-6 of `opcode` land in RSV1-3).
pub fn ws_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Parses one server frame from the front of `buf`: the frame and the bytes it took, or None
/// if it has not completely arrived.
///
/// # Panics
///
/// If the frame is masked or has RSV bits set (the server negotiates no extension), or its
/// length does not fit a `usize`.
#[track_caller]
pub fn parse_ws_frame(buf: &[u8]) -> Option<(WsFrame, usize)> {
    let (frame, rsv1, used) = parse_frame(buf)?;
    assert!(!rsv1, "no RSV bits");
    Some((frame, used))
}

/// As [`parse_ws_frame`], but RSV1 (permessage-deflate's "compressed") may be set: returns
/// it too. RSV2 and RSV3 still panic.
#[track_caller]
fn parse_frame(buf: &[u8]) -> Option<(WsFrame, bool, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b1 & 0x80, 0, "a server frame must not be masked");
    assert_eq!(b0 & 0x30, 0, "no RSV2 or RSV3 bits");
    let (len, at) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let Some(end) = usize::try_from(len).ok().and_then(|n| n.checked_add(at)) else {
        panic!("a frame length that does not fit: {len}");
    };
    let payload = buf.get(at..end)?.to_vec();
    let frame = WsFrame {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        payload,
    };
    Some((frame, b0 & 0x40 != 0, end))
}

impl Harness {
    /// Opens an RFC 6455 WebSocket (version 13, [`SUITE_WS_KEY`]) to `path` and reads the 101.
    ///
    /// # Panics
    ///
    /// If the answer is not a 101.
    #[track_caller]
    pub fn ws_connect(&mut self, path: &str) -> ConnectionId {
        let conn = self.connect();
        self.request(conn, "GET", path, &ws_headers("13"), b"");
        let r = self.read_head(conn);
        assert_eq!(r.status, 101, "{}", r.head);
        conn
    }

    /// Opens an RFC 6455 WebSocket like [`Harness::ws_connect`], offering `extensions` in
    /// `Sec-WebSocket-Extensions` (for example `permessage-deflate; client_max_window_bits`,
    /// as browsers offer); returns the connection and the 101, whose
    /// `Sec-WebSocket-Extensions` says what the server accepted.
    ///
    /// # Panics
    ///
    /// If the answer is not a 101.
    #[track_caller]
    pub fn ws_connect_offering(
        &mut self,
        path: &str,
        extensions: &str,
    ) -> (ConnectionId, Response) {
        let conn = self.connect();
        let mut headers = ws_headers("13");
        headers.push(("Sec-WebSocket-Extensions", extensions));
        self.request(conn, "GET", path, &headers, b"");
        let r = self.read_head(conn);
        assert_eq!(r.status, 101, "{}", r.head);
        (conn, r)
    }

    /// Sends one message compressed with `deflater` (permessage-deflate: RSV1 set, the
    /// payload raw DEFLATE without its `00 00 ff ff` tail) as one final frame.
    pub fn ws_send_compressed(
        &mut self,
        conn: ConnectionId,
        deflater: &mut Deflater,
        opcode: u8,
        payload: &[u8],
    ) {
        let mut compressed = BytesMut::new();
        assert!(deflater.compress(&[payload], &mut compressed));
        let bytes = ws_frame(true, 0x40 | opcode, &compressed);
        self.send_bytes(conn, &bytes);
    }

    /// Consumes the next complete server frame on a connection that negotiated
    /// permessage-deflate, inflating it with `inflater` if it is compressed: the frame (its
    /// payload inflated) and whether it was compressed.
    ///
    /// # Panics
    ///
    /// As [`parse_ws_frame`] but for RSV1; if a compressed frame does not inflate, is not
    /// final, or is a control frame.
    #[track_caller]
    pub fn ws_read_inflated(
        &mut self,
        conn: ConnectionId,
        inflater: &mut Inflater,
    ) -> Option<(WsFrame, bool)> {
        let c = self.client(conn);
        let (mut frame, compressed, used) = parse_frame(c.unread())?;
        c.consumed += used;
        if compressed {
            assert!(
                frame.fin && frame.opcode < 8,
                "a compressed frame: {frame:?}"
            );
            frame.payload = match inflater.inflate_message(&frame.payload, usize::MAX - 1) {
                Ok(inflated) => inflated,
                Err(e) => panic!("a compressed frame that does not inflate: {e}"),
            };
        }
        Some((frame, compressed))
    }

    /// Sends one masked, final frame.
    pub fn ws_send(&mut self, conn: ConnectionId, opcode: u8, payload: &[u8]) {
        let bytes = ws_frame(true, opcode, payload);
        self.send_bytes(conn, &bytes);
    }

    /// Sends a text message (on a SockJS WebSocket, a JSON string or array of strings: see
    /// [`super::client_messages`]).
    pub fn ws_send_text(&mut self, conn: ConnectionId, text: &str) {
        self.ws_send(conn, 1, text.as_bytes());
    }

    /// Consumes the next complete server frame, if one has arrived.
    ///
    /// # Panics
    ///
    /// As [`parse_ws_frame`].
    #[track_caller]
    pub fn ws_read(&mut self, conn: ConnectionId) -> Option<WsFrame> {
        let c = self.client(conn);
        let (frame, used) = parse_ws_frame(c.unread())?;
        c.consumed += used;
        Some(frame)
    }

    /// Consumes every complete server frame that has arrived.
    ///
    /// # Panics
    ///
    /// As [`parse_ws_frame`].
    #[track_caller]
    pub fn ws_read_all(&mut self, conn: ConnectionId) -> Vec<WsFrame> {
        std::iter::from_fn(|| self.ws_read(conn)).collect()
    }

    /// Consumes the next frame and returns its text.
    ///
    /// # Panics
    ///
    /// If the next frame has not arrived, or is not a final text frame of UTF-8.
    #[track_caller]
    pub fn ws_text(&mut self, conn: ConnectionId) -> String {
        match self.ws_read(conn) {
            Some(WsFrame {
                fin: true,
                opcode: 1,
                payload,
            }) => match String::from_utf8(payload) {
                Ok(text) => text,
                Err(e) => panic!("a text frame that is not UTF-8: {:?}", lossy(e.as_bytes())),
            },
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Sends a hixie-76 text frame.
    pub fn hixie_send(&mut self, conn: ConnectionId, text: &str) {
        let mut bytes = vec![0x00];
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0xff);
        self.send_bytes(conn, &bytes);
    }

    /// Consumes the next complete hixie-76 frame, if one has arrived.
    ///
    /// # Panics
    ///
    /// If the bytes are not a hixie-76 frame the server may send, or a text frame is not
    /// UTF-8.
    #[track_caller]
    pub fn hixie_read(&mut self, conn: ConnectionId) -> Option<HixieFrame> {
        let c = self.client(conn);
        let buf = c.unread();
        match *buf.first()? {
            0x00 => {
                let end = buf.iter().position(|&b| b == 0xff)?;
                let Ok(text) = String::from_utf8(buf[1..end].to_vec()) else {
                    panic!("a hixie-76 text frame that is not UTF-8: {:?}", lossy(buf));
                };
                c.consumed += end + 1;
                Some(HixieFrame::Text(text))
            }
            0xff => {
                let second = *buf.get(1)?;
                assert_eq!(second, 0x00, "a hixie-76 close frame");
                c.consumed += 2;
                Some(HixieFrame::Close)
            }
            other => panic!("not a hixie-76 frame type: {other:#04x}"),
        }
    }
}
