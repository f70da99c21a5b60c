//! Legacy hixie-76 WebSockets (draft-hixie-thewebsocketprotocol-76): the
//! handshake answer and the 0x00 .. 0xFF framing.
//!
//! Old browsers and some proxies still speak it, and the SockJS protocol suite
//! tests it. Only text frames carry messages; a client closes with 0xFF 0x00.

use bytes::{Buf, BufMut, BytesMut};

use super::frame::{INVALID_UTF8, Incoming, MESSAGE_TOO_BIG, ProtocolError};
use super::md5::md5;

/// Returns the number a `Sec-WebSocket-Key1` or `Sec-WebSocket-Key2` value
/// encodes: its digits read as one decimal number, divided by its count of
/// spaces.
///
/// Returns `None` (the handshake must be refused) if the key has no digits or
/// no spaces, the division is not exact, or the number does not fit.
pub fn key_number(key: &str) -> Option<u32> {
    let mut number: u64 = 0;
    let mut digits = 0usize;
    let mut spaces: u64 = 0;
    for byte in key.bytes() {
        match byte {
            b'0'..=b'9' => {
                number = number
                    .checked_mul(10)?
                    .checked_add(u64::from(byte - b'0'))?;
                digits += 1;
            }
            b' ' => spaces += 1,
            _ => {}
        }
    }
    if digits == 0 || spaces == 0 || !number.is_multiple_of(spaces) {
        return None;
    }
    u32::try_from(number / spaces).ok()
}

/// Returns the 16 bytes a server sends after its hixie-76 101 response: MD5 of
/// the two key numbers (big-endian) followed by the 8 bytes of request body.
///
/// Returns `None` if either key is invalid (see [`key_number`]).
pub fn challenge_response(key1: &str, key2: &str, key3: &[u8; 8]) -> Option<[u8; 16]> {
    let mut challenge = [0u8; 16];
    challenge[..4].copy_from_slice(&key_number(key1)?.to_be_bytes());
    challenge[4..8].copy_from_slice(&key_number(key2)?.to_be_bytes());
    challenge[8..].copy_from_slice(key3);
    Some(md5(&challenge))
}

/// Where the decoder is inside the client's byte stream.
#[derive(Debug)]
enum State {
    /// Expecting a frame type byte.
    FrameType,
    /// Inside a 0x00 text frame, collecting bytes until 0xFF.
    Text(Vec<u8>),
    /// Inside a sentinel frame of another type, discarding until 0xFF.
    DiscardToEnd,
    /// Reading the 7-bit groups of a length-prefixed frame's length.
    Length { frame_type: u8, length: u64 },
    /// Discarding the payload of a length-prefixed frame.
    Skip(u64),
}

/// Incremental decoder for the frames a hixie-76 client sends.
///
/// Call [`feed`](Self::feed) with bytes as they arrive, then
/// [`next`](Self::next) until it returns `Ok(None)`. However the input is
/// split, the results are the same. Only text arrives as messages; frames of
/// other types are discarded without being buffered; a length-prefixed frame
/// of type 0xFF and length 0 is the close. Memory stays bounded by
/// `max_message_size` plus the bytes fed since the last call to `next`.
#[derive(Debug)]
pub struct Hixie76Decoder {
    max_message_size: usize,
    buf: BytesMut,
    state: State,
    error: Option<ProtocolError>,
}

impl Hixie76Decoder {
    /// Creates a decoder refusing text messages and declared frame lengths
    /// over `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        Hixie76Decoder {
            max_message_size,
            buf: BytesMut::new(),
            state: State::FrameType,
            error: None,
        }
    }

    /// Appends bytes received from the client; call [`next`](Self::next) after.
    ///
    /// Bytes fed after an error are dropped.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Returns the next text message, or [`Incoming::Close`]`(None)` for the
    /// closing handshake.
    ///
    /// Returns `Ok(None)` if more bytes are needed. Errors carry close code
    /// 1009 (message or declared length over the limit) or 1007 (invalid
    /// UTF-8), like [`FrameDecoder`](super::FrameDecoder)'s; hixie-76 has no
    /// close codes on the wire, so the caller just closes. After an `Err`,
    /// every later call returns the same error.
    #[expect(
        clippy::should_implement_trait,
        reason = "not an iterator: None means feed more bytes, not the end"
    )]
    pub fn next(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let result = self.decode();
        if let Err(error) = result {
            self.error = Some(error);
            self.buf = BytesMut::new();
            self.state = State::FrameType;
        }
        result
    }

    fn decode(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        let max = self.max_message_size;
        loop {
            match &mut self.state {
                State::FrameType => {
                    let Some(&frame_type) = self.buf.first() else {
                        return Ok(None);
                    };
                    self.buf.advance(1);
                    self.state = match frame_type {
                        0x00 => State::Text(Vec::new()),
                        0x80..=0xFF => State::Length {
                            frame_type,
                            length: 0,
                        },
                        _ => State::DiscardToEnd,
                    };
                }
                State::Text(text) => {
                    let end = self.buf.iter().position(|&b| b == 0xFF);
                    let chunk = end.unwrap_or(self.buf.len());
                    if text.len().saturating_add(chunk) > max {
                        return Err(MESSAGE_TOO_BIG);
                    }
                    text.extend_from_slice(&self.buf[..chunk]);
                    let Some(end) = end else {
                        self.buf.clear();
                        return Ok(None);
                    };
                    self.buf.advance(end + 1);
                    let text = std::mem::take(text);
                    self.state = State::FrameType;
                    let text = String::from_utf8(text).map_err(|_| INVALID_UTF8)?;
                    return Ok(Some(Incoming::Text(text)));
                }
                State::DiscardToEnd => match self.buf.iter().position(|&b| b == 0xFF) {
                    Some(end) => {
                        self.buf.advance(end + 1);
                        self.state = State::FrameType;
                    }
                    None => {
                        self.buf.clear();
                        return Ok(None);
                    }
                },
                State::Length { frame_type, length } => {
                    let Some(&byte) = self.buf.first() else {
                        return Ok(None);
                    };
                    self.buf.advance(1);
                    *length = length
                        .checked_mul(128)
                        .and_then(|l| l.checked_add(u64::from(byte & 0x7F)))
                        .filter(|&l| l <= max as u64)
                        .ok_or(MESSAGE_TOO_BIG)?;
                    if byte & 0x80 == 0 {
                        if *frame_type == 0xFF && *length == 0 {
                            self.state = State::FrameType;
                            return Ok(Some(Incoming::Close(None)));
                        }
                        self.state = State::Skip(*length);
                    }
                }
                State::Skip(remaining) => {
                    if *remaining == 0 {
                        self.state = State::FrameType;
                        continue;
                    }
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let skipped = self
                        .buf
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    self.buf.advance(skipped);
                    *remaining -= skipped as u64;
                }
            }
        }
    }
}

/// Appends a text message to `out` as a hixie-76 frame: 0x00, the text, 0xFF.
///
/// UTF-8 never contains 0xFF, so any `&str` frames safely.
pub fn encode_text(out: &mut BytesMut, text: &str) {
    out.reserve(text.len() + 2);
    out.put_u8(0x00);
    out.extend_from_slice(text.as_bytes());
    out.put_u8(0xFF);
}

/// Appends the hixie-76 closing handshake frame (0xFF 0x00) to `out`.
pub fn encode_close(out: &mut BytesMut) {
    out.extend_from_slice(&[0xFF, 0x00]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(max: usize, input: &[u8]) -> Vec<Result<Incoming, ProtocolError>> {
        decode_split(max, input, &[])
    }

    fn decode_split(
        max: usize,
        input: &[u8],
        cuts: &[usize],
    ) -> Vec<Result<Incoming, ProtocolError>> {
        let mut decoder = Hixie76Decoder::new(max);
        let mut results = Vec::new();
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
        cuts.sort_unstable();
        cuts.push(input.len());
        let mut start = 0;
        for cut in cuts {
            decoder.feed(&input[start..cut]);
            start = cut;
            loop {
                match decoder.next() {
                    Ok(Some(incoming)) => results.push(Ok(incoming)),
                    Ok(None) => break,
                    Err(error) => {
                        results.push(Err(error));
                        return results;
                    }
                }
            }
        }
        results
    }

    fn text(s: &str) -> Result<Incoming, ProtocolError> {
        Ok(Incoming::Text(s.to_owned()))
    }

    #[test]
    fn key_numbers() {
        // The draft's example: 1868545188 / 12 and 1733470270 / 10.
        assert_eq!(
            key_number("18x 6]8vM;54 *(5:  {   U1]8  z [  8"),
            Some(155_712_099)
        );
        assert_eq!(
            key_number("1_ tx7X d  <  nw  334J702) 7]o}` 0"),
            Some(173_347_027)
        );
        assert_eq!(key_number("4 @1  46546xW%0l 1 5"), Some(829_309_203));
        assert_eq!(key_number("12998 5 Y3 1  .P00"), Some(259_970_620));

        assert_eq!(key_number("123"), None, "no spaces");
        assert_eq!(key_number(" x "), None, "no digits");
        assert_eq!(key_number("1 0 1"), None, "101 / 2 is not exact");
        assert_eq!(key_number(" 0"), Some(0));
        assert_eq!(key_number(" 4294967295"), Some(u32::MAX));
        assert_eq!(key_number(" 4294967296"), None, "over u32");
        assert_eq!(key_number("  8589934590"), Some(u32::MAX));
        assert_eq!(
            key_number(&format!(" {}", "9".repeat(40))),
            None,
            "over u64"
        );
        assert_eq!(key_number(&format!(" {}1", "0".repeat(1000))), Some(1));
    }

    #[test]
    fn challenge_response_sockjs_suite_vector() {
        assert_eq!(
            challenge_response("4 @1  46546xW%0l 1 5", "12998 5 Y3 1  .P00", b"aaaaaaaa"),
            Some([
                0xca, 0x34, 0x00, 0xd8, 0xa5, 0x08, 0x47, 0x97, 0x2c, 0xd5, 0x71, 0x5a, 0xba, 0xbf,
                0x43, 0x7b
            ])
        );
    }

    #[test]
    fn challenge_response_draft_example() {
        assert_eq!(
            challenge_response(
                "18x 6]8vM;54 *(5:  {   U1]8  z [  8",
                "1_ tx7X d  <  nw  334J702) 7]o}` 0",
                b"Tm[K T2u"
            ),
            Some(*b"fQJ,fN/4F4!~K~MH")
        );
    }

    #[test]
    fn challenge_response_refuses_bad_keys() {
        assert_eq!(challenge_response("123", " 1", b"aaaaaaaa"), None);
        assert_eq!(challenge_response(" 1", "1 0 1", b"aaaaaaaa"), None);
    }

    #[test]
    fn encoders() {
        let mut out = BytesMut::new();
        encode_text(&mut out, "a[\"x\"]");
        encode_text(&mut out, "");
        encode_close(&mut out);
        assert_eq!(&out[..], b"\x00a[\"x\"]\xff\x00\xff\xff\x00");
        assert_eq!(
            decode_all(100, &out),
            [text("a[\"x\"]"), text(""), Ok(Incoming::Close(None))]
        );
    }

    #[test]
    fn decodes_text_and_close() {
        let input = [
            &[0x00][..],
            "héllo".as_bytes(),
            &[0xFF, 0x00, 0xFF, 0xFF, 0x00],
        ]
        .concat();
        assert_eq!(
            decode_all(100, &input),
            [text("héllo"), text(""), Ok(Incoming::Close(None))]
        );
    }

    #[test]
    fn discards_other_frames() {
        let input = [
            &[0x80, 0x03, 1, 2, 3][..], // binary, 3 bytes
            &[0x00, b'a', 0xFF],        // text
            &[0x81, 0x81, 0x00][..],    // length 128 in two groups
            &[0u8; 128],                //   its payload
            &[0x7F, 1, 2, 0xFF],        // sentinel frame of another type
            &[0xFF, 0x01, 0x00],        // type 0xFF with length 1: not a close
            &[0xFE, 0x00],              // empty length-prefixed frame
            &[0x00, b'b', 0xFF],        // text
            &[0xFF, 0x80, 0x00],        // length 0 spelled in two groups: close
        ]
        .concat();
        assert_eq!(
            decode_all(1000, &input),
            [text("a"), text("b"), Ok(Incoming::Close(None))]
        );
    }

    #[test]
    fn refuses_invalid_utf8() {
        let results = decode_all(100, &[0x00, b'a', 0xFF, 0x00, 0xC3, 0x28, 0xFF]);
        assert_eq!(results, [text("a"), Err(INVALID_UTF8)]);
        assert_eq!(INVALID_UTF8.code, 1007);
    }

    #[test]
    fn text_limit() {
        assert_eq!(decode_all(3, b"\x00abc\xff"), [text("abc")]);
        assert_eq!(decode_all(3, b"\x00abcd\xff"), [Err(MESSAGE_TOO_BIG)]);
        assert_eq!(MESSAGE_TOO_BIG.code, 1009);

        // An unterminated text frame is refused as soon as it passes the limit,
        // and what is held stays within it.
        let mut decoder = Hixie76Decoder::new(3);
        decoder.feed(b"\x00abc");
        assert_eq!(decoder.next(), Ok(None));
        assert_eq!(decoder.buf.len(), 0);
        decoder.feed(b"d");
        assert_eq!(decoder.next(), Err(MESSAGE_TOO_BIG));
        decoder.feed(b"\xff");
        assert_eq!(decoder.next(), Err(MESSAGE_TOO_BIG));
    }

    #[test]
    fn length_limit_refuses_before_payload() {
        assert_eq!(decode_all(128, &[0x80, 0x81, 0x00]), []);
        assert_eq!(decode_all(127, &[0x80, 0x81, 0x00]), [Err(MESSAGE_TOO_BIG)]);
        // Endless length groups: refused once past the limit, not buffered.
        let mut decoder = Hixie76Decoder::new(1 << 20);
        decoder.feed(&[0x80]);
        decoder.feed(&[0xFF; 100]);
        assert_eq!(decoder.next(), Err(MESSAGE_TOO_BIG));
    }

    #[test]
    fn discarded_payloads_are_not_buffered() {
        let mut decoder = Hixie76Decoder::new(1 << 20);
        decoder.feed(&[0x80, 0xBF, 0xFF, 0x7F]); // 2^20 - 1 bytes follow
        assert_eq!(decoder.next(), Ok(None));
        for _ in 0..100 {
            decoder.feed(&[7; 1000]);
            assert_eq!(decoder.next(), Ok(None));
            assert_eq!(decoder.buf.len(), 0);
        }
        decoder.feed(&[0x01, 2, 3]);
        assert_eq!(decoder.next(), Ok(None));
        assert_eq!(decoder.buf.len(), 0);
    }

    /// A frame a hixie-76 client could send.
    #[derive(Debug, Clone)]
    enum Sent {
        Text(String),
        Length(u8, Vec<u8>),
        Sentinel(u8, Vec<u8>),
        Close,
    }

    fn sent() -> impl Strategy<Value = Sent> {
        prop_oneof![
            ".{0,20}".prop_map(Sent::Text),
            (0x80u8..=0xFF, prop::collection::vec(any::<u8>(), 0..300))
                .prop_filter("0xFF with length 0 is the close", |(t, p)| {
                    *t != 0xFF || !p.is_empty()
                })
                .prop_map(|(t, p)| Sent::Length(t, p)),
            (0x01u8..=0x7F, prop::collection::vec(0u8..0xFF, 0..20))
                .prop_map(|(t, p)| Sent::Sentinel(t, p)),
            Just(Sent::Close),
        ]
    }

    fn client_bytes(frames: &[Sent]) -> (Vec<u8>, Vec<Result<Incoming, ProtocolError>>) {
        let mut out = Vec::new();
        let mut expected = Vec::new();
        for frame in frames {
            match frame {
                Sent::Text(s) => {
                    out.push(0x00);
                    out.extend_from_slice(s.as_bytes());
                    out.push(0xFF);
                    expected.push(text(s));
                }
                Sent::Length(frame_type, payload) => {
                    out.push(*frame_type);
                    let len = payload.len();
                    let mut groups = vec![(len & 0x7F) as u8];
                    let mut rest = len >> 7;
                    while rest > 0 {
                        groups.push(0x80 | (rest & 0x7F) as u8);
                        rest >>= 7;
                    }
                    out.extend(groups.iter().rev());
                    out.extend_from_slice(payload);
                }
                Sent::Sentinel(frame_type, payload) => {
                    out.push(*frame_type);
                    out.extend_from_slice(payload);
                    out.push(0xFF);
                }
                Sent::Close => {
                    out.extend_from_slice(&[0xFF, 0x00]);
                    expected.push(Ok(Incoming::Close(None)));
                }
            }
        }
        (out, expected)
    }

    proptest! {
        #[test]
        fn any_split_decodes_what_was_sent(
            frames in prop::collection::vec(sent(), 0..10),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let (input, expected) = client_bytes(&frames);
            let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            prop_assert_eq!(&decode_all(1000, &input), &expected);
            prop_assert_eq!(&decode_split(1000, &input, &cuts), &expected);
        }

        #[test]
        fn any_split_gives_the_same_results(
            frames in prop::collection::vec(sent(), 0..10),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            noise in prop::collection::vec(any::<u8>(), 0..50),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
            max in 0usize..300,
        ) {
            let (mut input, _) = client_bytes(&frames);
            if !input.is_empty() {
                for (at, xor) in &flips {
                    let at = at.index(input.len());
                    input[at] ^= xor;
                }
            }
            input.extend_from_slice(&noise);
            let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            prop_assert_eq!(decode_all(max, &input), decode_split(max, &input, &cuts));
        }
    }
}
