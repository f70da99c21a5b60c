//! Reading what a server sent on a WebSocket connection, as a client would, to check that
//! the application's messages arrive whole, in order, once.

use sockjs_core::ws::deflate::{DeflateConfig, Inflater, negotiate};

/// One frame a server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// A text message.
    Text(Vec<u8>),
    /// A ping.
    Ping,
    /// A pong.
    Pong,
    /// The closing frame, with its status code if it has one (never on hixie-76) and the
    /// reason after it; nothing may follow it.
    Close(Option<u16>, Vec<u8>),
}

/// The frames in `bytes`, everything after the 101 response head (and, for hixie-76, after
/// its 16-byte challenge answer). Panics on anything a server must not send: masked,
/// fragmented or reserved frames, bytes after the close, a frame cut short unless `cut` (the
/// connection's output was dropped, so the last frame may be incomplete). With `deflate`
/// (the 101 agreed to permessage-deflate) a text frame may have RSV1 set: it is inflated,
/// and must inflate.
pub fn frames(bytes: &[u8], hixie: bool, cut: bool, deflate: bool) -> Vec<ServerFrame> {
    let mut out = Vec::new();
    let mut inflater = deflate.then(|| {
        // Keeping the window is right whether or not the server resets its own.
        let params = negotiate(&DeflateConfig::default(), [&b"permessage-deflate"[..]])
            .expect("the plain offer is accepted")
            .params;
        Inflater::new(&params)
    });
    let mut rest = bytes;
    while !rest.is_empty() {
        if cut && !is_complete(rest, hixie) {
            break;
        }
        assert!(
            !matches!(out.last(), Some(ServerFrame::Close(..))),
            "{} bytes after the close frame",
            rest.len()
        );
        let (frame, used) = if hixie {
            hixie_frame(rest)
        } else {
            rfc6455_frame(rest, inflater.as_mut())
        };
        out.push(frame);
        rest = &rest[used..];
    }
    out
}

/// Whether `b` starts with a whole frame.
fn is_complete(b: &[u8], hixie: bool) -> bool {
    if hixie {
        return match b.first() {
            Some(0x00) => b.contains(&0xff),
            _ => b.len() >= 2,
        };
    }
    let Some(&len) = b.get(1) else {
        return false;
    };
    let (len, header) = match len & 0x7f {
        126 => match b.get(2..4) {
            Some(n) => (usize::from(u16::from_be_bytes([n[0], n[1]])), 4),
            None => return false,
        },
        127 => match b.get(2..10) {
            Some(n) => {
                let n = u64::from_be_bytes(n.try_into().expect("8 bytes"));
                (usize::try_from(n).unwrap_or(usize::MAX), 10)
            }
            None => return false,
        },
        n => (usize::from(n), 2),
    };
    b.len() - header >= len
}

fn rfc6455_frame(b: &[u8], inflater: Option<&mut Inflater>) -> (ServerFrame, usize) {
    assert!(b.len() >= 2, "a frame header cut short: {b:?}");
    let compressed = inflater.is_some() && b[0] & 0x40 != 0;
    assert_eq!(
        b[0] & if compressed { 0xbf } else { 0xf0 },
        0x80 | if compressed { 1 } else { 0 },
        "a server frame not final, or with RSV bits (or a compressed one not text): {:#04x}",
        b[0]
    );
    assert_eq!(b[1] & 0x80, 0, "a masked server frame");
    let (len, header) = match b[1] & 0x7f {
        126 => {
            assert!(b.len() >= 4, "a frame header cut short");
            (usize::from(u16::from_be_bytes([b[2], b[3]])), 4)
        }
        127 => {
            assert!(b.len() >= 10, "a frame header cut short");
            let n = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
            (usize::try_from(n).expect("frame length fits"), 10)
        }
        n => (usize::from(n), 2),
    };
    let end = header + len;
    assert!(
        b.len() >= end,
        "a frame of {len} bytes cut short at {}",
        b.len() - header
    );
    let inflated;
    let mut payload = &b[header..end];
    if compressed && let Some(inflater) = inflater {
        inflated = inflater
            .inflate_message(payload, usize::MAX - 1)
            .expect("a compressed server frame inflates");
        payload = &inflated;
    }
    let frame = match b[0] & 0x0f {
        1 => ServerFrame::Text(payload.to_vec()),
        8 => ServerFrame::Close(
            payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])),
            payload.get(2..).unwrap_or_default().to_vec(),
        ),
        9 => ServerFrame::Ping,
        10 => ServerFrame::Pong,
        op => panic!("a server frame with opcode {op}"),
    };
    (frame, end)
}

fn hixie_frame(b: &[u8]) -> (ServerFrame, usize) {
    match b[0] {
        0x00 => {
            let end = b
                .iter()
                .position(|&x| x == 0xff)
                .expect("a hixie-76 frame cut short");
            (ServerFrame::Text(b[1..end].to_vec()), end + 1)
        }
        0xff => {
            assert_eq!(b.get(1), Some(&0x00), "a hixie-76 close frame");
            (ServerFrame::Close(None, Vec::new()), 2)
        }
        other => panic!("a hixie-76 frame of type {other:#04x}"),
    }
}

/// The application messages in a SockJS session's frames: `o` first, then `h`, `a[...]`
/// (JSON arrays of strings) and at most one `c[...]`, last.
pub fn sockjs_messages(frames: &[ServerFrame]) -> Vec<String> {
    let mut texts = frames.iter().filter_map(|f| match f {
        ServerFrame::Text(t) => Some(t),
        _ => None,
    });
    match texts.next() {
        Some(first) => assert_eq!(first, b"o", "the first SockJS frame"),
        None => return Vec::new(),
    }
    let mut messages = Vec::new();
    let mut closed = false;
    for t in texts {
        assert!(!closed, "a SockJS frame after c[...]");
        match t.first() {
            Some(b'h') if t.len() == 1 => {}
            Some(b'a') => {
                let batch: Vec<String> =
                    serde_json::from_slice(&t[1..]).expect("a[...] holds a JSON array of strings");
                assert!(!batch.is_empty(), "an empty a[] frame");
                messages.extend(batch);
            }
            Some(b'c') => {
                let _: (u16, String) = serde_json::from_slice(&t[1..]).expect("c[code,reason]");
                closed = true;
            }
            _ => panic!("a SockJS frame {:?}", String::from_utf8_lossy(t)),
        }
    }
    messages
}
