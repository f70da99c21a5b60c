//! RFC 6455 frames as a server reads and writes them.
//!
//! [`FrameDecoder`] turns the bytes a client sends into whole messages and
//! control frames; the `encode_*` functions write the unmasked frames a server
//! sends. Without an extension any RSV bit is a protocol error; a decoder made
//! with [`FrameDecoder::with_deflate`] reads RSV1 as permessage-deflate's
//! "compressed message" bit (RFC 7692, section 6).

use std::fmt;
use std::io::Cursor;

use bytes::{Buf, Bytes, BytesMut};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::deflate::Inflater;

/// Largest payload a control frame may carry (RFC 6455, section 5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Largest close reason that fits a control frame next to its 2-byte code.
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// Returns the `Sec-WebSocket-Accept` value answering a `Sec-WebSocket-Key`.
///
/// Pass the header value as received (surrounding whitespace already trimmed);
/// the key is not validated here.
pub fn accept_key(sec_websocket_key: &[u8]) -> String {
    tungstenite::handshake::derive_accept_key(sec_websocket_key)
}

/// Size bounds for what a [`FrameDecoder`] will accept from a client.
///
/// Defaults: 1 MiB for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of a single frame, in bytes; a frame declaring more is
    /// refused from its header, before its payload is buffered.
    pub max_frame_size: usize,
    /// Largest message, in bytes, once its fragments are joined.
    pub max_message_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
        }
    }
}

/// What a client sent: a whole data message or one control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A text message, fragments joined, UTF-8 validated.
    Text(String),
    /// A binary message, fragments joined.
    Binary(Bytes),
    /// A ping; the server should answer with a pong carrying the same payload.
    Ping(Bytes),
    /// A pong, solicited or not.
    Pong(Bytes),
    /// The client started or answered the closing handshake: the close code and
    /// reason, or `None` if the frame had no payload. Nothing valid follows it.
    Close(Option<(u16, String)>),
}

/// Why the client's bytes were refused, with the close code to answer with.
///
/// The connection cannot continue: send a close frame with `code` (the
/// `reason` is fit to send as its reason), then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError {
    /// Close code: [`ProtocolError::PROTOCOL_ERROR`],
    /// [`ProtocolError::INVALID_PAYLOAD`] or [`ProtocolError::MESSAGE_TOO_BIG`].
    pub code: u16,
    /// Short, human-readable description of the violation.
    pub reason: &'static str,
}

impl ProtocolError {
    /// Close code 1002: the client broke the framing rules.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Close code 1007: text that is not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Close code 1009: a frame or message over the configured limits.
    pub const MESSAGE_TOO_BIG: u16 = 1009;

    const fn protocol(reason: &'static str) -> Self {
        ProtocolError {
            code: Self::PROTOCOL_ERROR,
            reason,
        }
    }
}

impl ProtocolError {
    /// The limit this error is the hit of, if it is one.
    pub fn limit(&self) -> Option<crate::stats::Limit> {
        if *self == FRAME_TOO_BIG {
            Some(crate::stats::Limit::FrameSize)
        } else if *self == MESSAGE_TOO_BIG {
            Some(crate::stats::Limit::MessageSize)
        } else {
            None
        }
    }
}

pub(super) const INVALID_UTF8: ProtocolError = ProtocolError {
    code: ProtocolError::INVALID_PAYLOAD,
    reason: "invalid UTF-8 in text",
};
pub(super) const MESSAGE_TOO_BIG: ProtocolError = ProtocolError {
    code: ProtocolError::MESSAGE_TOO_BIG,
    reason: "message too big",
};
const FRAME_TOO_BIG: ProtocolError = ProtocolError {
    code: ProtocolError::MESSAGE_TOO_BIG,
    reason: "frame too big",
};
const RESERVED_OPCODE: ProtocolError = ProtocolError::protocol("reserved opcode");
pub(super) const RSV_BITS: ProtocolError = ProtocolError::protocol("reserved bits set");
pub(super) const RSV1_CONTROL: ProtocolError = ProtocolError::protocol("compressed control frame");
pub(super) const RSV1_CONTINUATION: ProtocolError =
    ProtocolError::protocol("RSV1 on a continuation frame");
const UNMASKED: ProtocolError = ProtocolError::protocol("unmasked client frame");
const MASKED: ProtocolError = ProtocolError::protocol("masked server frame");
const FRAGMENTED_CONTROL: ProtocolError = ProtocolError::protocol("fragmented control frame");
const CONTROL_TOO_LONG: ProtocolError = ProtocolError::protocol("control frame over 125 bytes");
const LENGTH_HIGH_BIT: ProtocolError = ProtocolError::protocol("payload length high bit set");
const CONTINUATION_WITHOUT_START: ProtocolError =
    ProtocolError::protocol("continuation frame without a message");
const DATA_INSIDE_FRAGMENTED: ProtocolError =
    ProtocolError::protocol("new data frame inside a fragmented message");
const CLOSE_ONE_BYTE: ProtocolError = ProtocolError::protocol("close payload of 1 byte");
const INVALID_CLOSE_CODE: ProtocolError = ProtocolError::protocol("invalid close code");

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSocket {} (close code {})", self.reason, self.code)
    }
}

impl std::error::Error for ProtocolError {}

/// Returns whether a peer may send `code` in a close frame (RFC 6455,
/// section 7.4, with 1012-1014 from the IANA registry).
///
/// 1004-1006 and 1015 are reserved and never sent, 1016-2999 are unassigned,
/// 3000-4999 are for libraries and applications.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A data message whose first fragments have arrived.
#[derive(Debug)]
struct Fragmented {
    text: bool,
    /// The message so far; inflated if it is compressed.
    payload: Vec<u8>,
    /// Bytes of `payload` known to be valid UTF-8; a character split across
    /// fragments stays unchecked until its remaining bytes arrive.
    utf8_checked: usize,
    /// Compressed bytes received so far, for a compressed message (RSV1 on its
    /// first frame).
    compressed: Option<usize>,
}

/// Largest compressed size a message of `max_message_size` bytes may arrive
/// in: the limit plus DEFLATE's worst-case growth on incompressible data (5
/// bytes per stored block of up to 64 KiB, so 1/64 is ample) and a little.
fn compressed_limit(max_message_size: usize) -> usize {
    max_message_size
        .saturating_add(max_message_size / 64)
        .saturating_add(64)
}

/// Incremental decoder for the frames a client sends (RFC 6455, section 5).
///
/// Call [`feed`](Self::feed) with bytes as they arrive, then
/// [`next`](Self::next) until it returns `Ok(None)`. However the input is
/// split, the results are the same. Memory stays bounded by the [`Limits`]:
/// after `next` returns `Ok(None)` at most one incomplete frame (header plus
/// `max_frame_size`) is buffered, and fragments of one message up to
/// `max_message_size`.
///
/// With permessage-deflate ([`with_deflate`](Self::with_deflate)), compressed
/// frames are inflated as they arrive, so the same bounds hold for what they
/// inflate to; their compressed bytes count against a message bound of
/// `max_message_size` plus 1/64 (DEFLATE's growth on incompressible data).
#[derive(Debug)]
pub struct FrameDecoder {
    limits: Limits,
    buf: BytesMut,
    fragmented: Option<Fragmented>,
    /// Present when permessage-deflate was negotiated.
    inflater: Option<Inflater>,
    error: Option<ProtocolError>,
    /// Reading a server's frames (a client's decoder): frames must be unmasked.
    from_server: bool,
}

impl FrameDecoder {
    /// Creates a decoder that enforces `limits`.
    pub fn new(limits: Limits) -> Self {
        FrameDecoder {
            limits,
            buf: BytesMut::new(),
            fragmented: None,
            inflater: None,
            error: None,
            from_server: false,
        }
    }

    /// Creates a decoder for the frames a server sends to a client: the same rules and
    /// limits, except that frames must be unmasked (RFC 6455, section 5.1: a masked server
    /// frame is a protocol error).
    pub fn for_client(limits: Limits) -> Self {
        FrameDecoder {
            from_server: true,
            ..FrameDecoder::new(limits)
        }
    }

    /// Creates a decoder for a connection that negotiated permessage-deflate
    /// (RFC 7692): a text or binary frame with RSV1 set starts a compressed
    /// message, which `inflater` decompresses; [`next`](Self::next) returns it
    /// inflated, UTF-8 validated if text (1007 if not), and refuses it with
    /// 1009 as soon as it inflates past `max_message_size`. RSV1 on a
    /// continuation or control frame is a protocol error (1002), as are RSV2
    /// and RSV3; invalid compressed data is refused with 1007.
    pub fn with_deflate(limits: Limits, inflater: Inflater) -> Self {
        FrameDecoder {
            inflater: Some(inflater),
            ..FrameDecoder::new(limits)
        }
    }

    /// The permessage-deflate inflater, if negotiated: for
    /// [`Inflater::memory`](super::deflate::Inflater::memory). Gone after an
    /// error, which frees it.
    pub fn inflater(&self) -> Option<&Inflater> {
        self.inflater.as_ref()
    }

    /// Capacity of the buffer holding the message being reassembled (or
    /// inflated), 0 between messages: for checking memory bounds.
    pub fn message_capacity(&self) -> usize {
        self.fragmented.as_ref().map_or(0, |f| f.payload.capacity())
    }

    /// Appends bytes received from the client; call [`next`](Self::next) after.
    ///
    /// Bytes fed after an error are dropped.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Number of bytes fed but not yet consumed by a returned result.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete message or control frame.
    ///
    /// Returns `Ok(None)` if more bytes are needed; nothing is consumed in that
    /// case. Control frames arriving between the fragments of a message are
    /// returned as they come, before the message. After an `Err`, every later
    /// call returns the same error and the buffered bytes are dropped.
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
            self.fragmented = None;
            self.inflater = None;
        }
        result
    }

    fn decode(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        loop {
            let mut cursor = Cursor::new(&self.buf[..]);
            // The only error `parse` reports on an in-memory cursor is a
            // reserved opcode.
            let Some((header, declared_len)) =
                FrameHeader::parse(&mut cursor).map_err(|_| RESERVED_OPCODE)?
            else {
                return Ok(None);
            };
            let header_len = usize::try_from(cursor.position()).map_err(|_| FRAME_TOO_BIG)?;
            let (payload_len, mask) = self.check_header(&header, declared_len)?;
            if self.buf.len() - header_len < payload_len {
                return Ok(None);
            }
            self.buf.advance(header_len);

            match header.opcode {
                OpCode::Control(control) => {
                    let mut payload = self.buf.split_to(payload_len);
                    if let Some(mask) = mask {
                        unmask(&mut payload, mask);
                    }
                    let incoming = match control {
                        Control::Ping => Incoming::Ping(payload.freeze()),
                        Control::Pong => Incoming::Pong(payload.freeze()),
                        _ => parse_close(&payload)?,
                    };
                    return Ok(Some(incoming));
                }
                OpCode::Data(data) => {
                    let mut payload = self.buf[..payload_len].to_vec();
                    self.buf.advance(payload_len);
                    if let Some(mask) = mask {
                        unmask(&mut payload, mask);
                    }
                    if let Some(message) =
                        self.data_frame(data, header.is_final, header.rsv1, payload)?
                    {
                        return Ok(Some(message));
                    }
                }
            }
        }
    }

    /// Validates a header against the protocol and the limits; returns the
    /// payload length and the mask.
    fn check_header(
        &self,
        header: &FrameHeader,
        declared_len: u64,
    ) -> Result<(usize, Option<[u8; 4]>), ProtocolError> {
        if header.rsv2 || header.rsv3 || (header.rsv1 && self.inflater.is_none()) {
            return Err(RSV_BITS);
        }
        // RFC 7692, section 6.1: only the first frame of a data message
        // carries the "compressed" bit.
        if header.rsv1 {
            match header.opcode {
                OpCode::Control(_) => return Err(RSV1_CONTROL),
                OpCode::Data(Data::Continue) => return Err(RSV1_CONTINUATION),
                OpCode::Data(_) => {}
            }
        }
        let mask = match (header.mask, self.from_server) {
            (Some(_), true) => return Err(MASKED),
            (None, false) => return Err(UNMASKED),
            (mask, _) => mask,
        };
        if declared_len > i64::MAX as u64 {
            return Err(LENGTH_HIGH_BIT);
        }
        match header.opcode {
            OpCode::Control(_) => {
                if !header.is_final {
                    return Err(FRAGMENTED_CONTROL);
                }
                if declared_len > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(CONTROL_TOO_LONG);
                }
            }
            OpCode::Data(Data::Continue) if self.fragmented.is_none() => {
                return Err(CONTINUATION_WITHOUT_START);
            }
            OpCode::Data(Data::Continue) => {}
            OpCode::Data(_) if self.fragmented.is_some() => return Err(DATA_INSIDE_FRAGMENTED),
            OpCode::Data(_) => {}
        }
        if declared_len > self.limits.max_frame_size as u64 {
            return Err(FRAME_TOO_BIG);
        }
        if let OpCode::Data(_) = header.opcode {
            let compressed = match &self.fragmented {
                Some(f) => f.compressed,
                None => header.rsv1.then_some(0),
            };
            // A compressed message's inflated size is checked as it inflates.
            let (so_far, limit) = match compressed {
                Some(so_far) => (so_far, compressed_limit(self.limits.max_message_size)),
                None => (
                    self.fragmented.as_ref().map_or(0, |f| f.payload.len()),
                    self.limits.max_message_size,
                ),
            };
            if so_far as u64 + declared_len > limit as u64 {
                return Err(MESSAGE_TOO_BIG);
            }
        }
        // Both limits are usize, so the length now fits one.
        let len = usize::try_from(declared_len).map_err(|_| FRAME_TOO_BIG)?;
        Ok((len, mask))
    }

    /// Takes one data frame whose header passed [`check_header`](Self::check_header);
    /// returns the message it completes, if any.
    fn data_frame(
        &mut self,
        data: Data,
        is_final: bool,
        rsv1: bool,
        payload: Vec<u8>,
    ) -> Result<Option<Incoming>, ProtocolError> {
        let mut message = self.fragmented.take().unwrap_or(Fragmented {
            text: data == Data::Text,
            payload: Vec::new(),
            utf8_checked: 0,
            compressed: rsv1.then_some(0),
        });
        match &mut message.compressed {
            None if message.payload.is_empty() => message.payload = payload,
            None => message.payload.extend_from_slice(&payload),
            Some(compressed) => {
                // `check_header` only lets RSV1 through with an inflater.
                let Some(inflater) = self.inflater.as_mut() else {
                    return Err(RSV_BITS);
                };
                *compressed += payload.len();
                let limit = self.limits.max_message_size;
                inflater.inflate(&payload, &mut message.payload, limit)?;
                if is_final {
                    inflater.finish(&mut message.payload, limit)?;
                }
            }
        }
        if !is_final {
            if message.text {
                // Fail fast on bad UTF-8 instead of waiting for the last
                // fragment; only the trailing bytes of a character split
                // across fragments may stay unchecked.
                match std::str::from_utf8(&message.payload[message.utf8_checked..]) {
                    Ok(_) => message.utf8_checked = message.payload.len(),
                    Err(e) if e.error_len().is_none() => message.utf8_checked += e.valid_up_to(),
                    Err(_) => return Err(INVALID_UTF8),
                }
            }
            self.fragmented = Some(message);
            return Ok(None);
        }
        Ok(Some(if message.text {
            Incoming::Text(String::from_utf8(message.payload).map_err(|_| INVALID_UTF8)?)
        } else {
            Incoming::Binary(Bytes::from(message.payload))
        }))
    }
}

/// XORs `payload` with the client's masking key (RFC 6455, section 5.3); the
/// same call masks and unmasks.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let (words, rest) = payload.as_chunks_mut::<4>();
    let key = u32::from_ne_bytes(mask);
    for word in words {
        *word = (u32::from_ne_bytes(*word) ^ key).to_ne_bytes();
    }
    for (byte, key) in rest.iter_mut().zip(mask) {
        *byte ^= key;
    }
}

fn parse_close(payload: &[u8]) -> Result<Incoming, ProtocolError> {
    match payload {
        [] => Ok(Incoming::Close(None)),
        [_] => Err(CLOSE_ONE_BYTE),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !is_valid_close_code(code) {
                return Err(INVALID_CLOSE_CODE);
            }
            let reason = std::str::from_utf8(reason).map_err(|_| INVALID_UTF8)?;
            Ok(Incoming::Close(Some((code, reason.to_owned()))))
        }
    }
}

/// Returns the size of the header a server frame with `payload_len` bytes of
/// payload gets (2, 4 or 10 bytes), for sizing output buffers.
pub fn text_frame_header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Writes one final, unmasked frame.
fn encode_frame(out: &mut BytesMut, opcode: OpCode, payload: &[u8]) {
    encode_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}

/// Writes the header of one final, unmasked frame of `len` payload bytes.
fn encode_header(out: &mut BytesMut, opcode: OpCode, len: usize) {
    out.reserve(text_frame_header_len(len) + len);
    let (header, header_len) = header_bytes(0x80 | u8::from(opcode), len);
    out.extend_from_slice(&header[..header_len]);
}

/// The text opcode, for [`header_bytes`].
pub(super) const OPCODE_TEXT: u8 = 0x1;
/// The binary opcode, for [`header_bytes`].
pub(super) const OPCODE_BINARY: u8 = 0x2;
/// The RSV1 bit of a frame's first byte: a compressed message (RFC 7692).
pub(super) const RSV1: u8 = 0x40;

/// The header of an unmasked frame with first byte `first` (FIN, RSV bits and
/// opcode) and `len` payload bytes, and how many of the 10 bytes it uses.
pub(super) fn header_bytes(first: u8, len: usize) -> ([u8; 10], usize) {
    let mut header = [0u8; 10];
    header[0] = first;
    let used = match len {
        0..=125 => {
            header[1] = len as u8;
            2
        }
        126..=0xFFFF => {
            header[1] = 126;
            header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            header[1] = 127;
            header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    (header, used)
}

/// Appends the header of a final, unmasked text frame of `payload_len` bytes; the caller
/// appends exactly that many bytes of UTF-8 after it. Lets a message be framed without first
/// being assembled in a buffer of its own.
pub fn encode_text_header(out: &mut BytesMut, payload_len: usize) {
    encode_header(out, OpCode::Data(Data::Text), payload_len);
}

/// Appends one final frame as a client writes it: `opcode`, masked with `mask` (which the
/// client draws from its entropy for every frame, RFC 6455 section 5.3).
fn encode_masked(out: &mut BytesMut, opcode: OpCode, payload: &[u8], mask: [u8; 4]) {
    let (mut header, header_len) = header_bytes(0x80 | u8::from(opcode), payload.len());
    header[1] |= 0x80;
    out.reserve(header_len + 4 + payload.len());
    out.extend_from_slice(&header[..header_len]);
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    unmask(&mut out[start..], mask);
}

/// Appends a text message to `out` as one frame masked with `mask`, as a client sends it.
pub fn encode_masked_text(out: &mut BytesMut, text: &[u8], mask: [u8; 4]) {
    encode_masked(out, OpCode::Data(Data::Text), text, mask);
}

/// Appends a pong frame masked with `mask`, as a client answers a ping; payload bytes past
/// 125 are dropped.
pub fn encode_masked_pong(out: &mut BytesMut, payload: &[u8], mask: [u8; 4]) {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    encode_masked(out, OpCode::Control(Control::Pong), payload, mask);
}

/// Appends a close frame with `code` and no reason, masked with `mask`, as a client ends
/// the connection.
pub fn encode_masked_close(out: &mut BytesMut, code: u16, mask: [u8; 4]) {
    encode_masked(
        out,
        OpCode::Control(Control::Close),
        &code.to_be_bytes(),
        mask,
    );
}

/// Appends a text message to `out` as one unmasked frame.
pub fn encode_text(out: &mut BytesMut, text: &str) {
    encode_frame(out, OpCode::Data(Data::Text), text.as_bytes());
}

/// Appends a binary message to `out` as one unmasked frame.
pub fn encode_binary(out: &mut BytesMut, data: &[u8]) {
    encode_frame(out, OpCode::Data(Data::Binary), data);
}

/// Appends a ping frame to `out`; payload bytes past 125 are dropped, as a
/// control frame cannot carry more.
pub fn encode_ping(out: &mut BytesMut, payload: &[u8]) {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    encode_frame(out, OpCode::Control(Control::Ping), payload);
}

/// Appends a pong frame to `out`; payload bytes past 125 are dropped, as a
/// control frame cannot carry more.
pub fn encode_pong(out: &mut BytesMut, payload: &[u8]) {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    encode_frame(out, OpCode::Control(Control::Pong), payload);
}

/// Appends a close frame to `out`: empty for `None`, else the code and the
/// reason cut to at most 123 bytes at a character boundary.
///
/// The code is written as given; pass one that [`is_valid_close_code`] accepts.
pub fn encode_close(out: &mut BytesMut, close: Option<(u16, &str)>) {
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    let len = match close {
        None => 0,
        Some((code, reason)) => {
            let mut cut = reason.len().min(MAX_CLOSE_REASON);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            payload[..2].copy_from_slice(&code.to_be_bytes());
            payload[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
            2 + cut
        }
    };
    encode_frame(out, OpCode::Control(Control::Close), &payload[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A frame as a client writes it: masked unless `mask` is None.
    fn client_frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![first];
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            len @ 0..=125 => out.push(mask_bit | len as u8),
            len @ 126..=0xFFFF => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let mut payload = payload.to_vec();
        if let Some(mask) = mask {
            out.extend_from_slice(&mask);
            unmask(&mut payload, mask);
        }
        out.extend_from_slice(&payload);
        out
    }

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        client_frame(first, payload, Some(MASK))
    }

    /// Feeds `input` in one piece and collects results up to the first
    /// `Ok(None)` or error.
    fn decode_all(limits: Limits, input: &[u8]) -> Vec<Result<Incoming, ProtocolError>> {
        let mut decoder = FrameDecoder::new(limits);
        decoder.feed(input);
        let mut results = Vec::new();
        drain(&mut decoder, &mut results);
        results
    }

    /// Collects results until more bytes are needed; returns false after an error.
    fn drain(
        decoder: &mut FrameDecoder,
        results: &mut Vec<Result<Incoming, ProtocolError>>,
    ) -> bool {
        loop {
            match decoder.next() {
                Ok(Some(incoming)) => results.push(Ok(incoming)),
                Ok(None) => return true,
                Err(error) => {
                    results.push(Err(error));
                    return false;
                }
            }
        }
    }

    fn decode_split(
        limits: Limits,
        input: &[u8],
        cuts: &[usize],
    ) -> Vec<Result<Incoming, ProtocolError>> {
        let mut decoder = FrameDecoder::new(limits);
        let mut results = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
        cuts.sort_unstable();
        cuts.push(input.len());
        for cut in cuts {
            decoder.feed(&input[start..cut]);
            start = cut;
            if !drain(&mut decoder, &mut results) {
                break;
            }
        }
        results
    }

    fn error_of(input: &[u8]) -> ProtocolError {
        match decode_all(Limits::default(), input).pop() {
            Some(Err(error)) => error,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn text(s: &str) -> Result<Incoming, ProtocolError> {
        Ok(Incoming::Text(s.to_owned()))
    }

    #[test]
    fn accept_key_rfc6455_example() {
        // RFC 6455, section 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn encodes_rfc6455_unmasked_examples() {
        // RFC 6455, section 5.7.
        let mut out = BytesMut::new();
        encode_text(&mut out, "Hello");
        assert_eq!(&out[..], [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);

        let mut out = BytesMut::new();
        encode_ping(&mut out, b"Hello");
        assert_eq!(&out[..], [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);

        let mut out = BytesMut::new();
        encode_pong(&mut out, b"Hello");
        assert_eq!(&out[..], [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);

        let data = vec![0xa5; 256];
        let mut out = BytesMut::new();
        encode_binary(&mut out, &data);
        assert_eq!(&out[..4], [0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(&out[4..], &data[..]);

        let data = vec![0x5a; 65536];
        let mut out = BytesMut::new();
        encode_binary(&mut out, &data);
        assert_eq!(
            &out[..10],
            [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(&out[10..], &data[..]);
    }

    #[test]
    fn decodes_rfc6455_masked_examples() {
        // RFC 6455, section 5.7: masked "Hello" and masked pong "Hello".
        let text_frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(masked(0x81, b"Hello"), text_frame);
        assert_eq!(decode_all(Limits::default(), &text_frame), [text("Hello")]);

        let pong_frame = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            decode_all(Limits::default(), &pong_frame),
            [Ok(Incoming::Pong(Bytes::from_static(b"Hello")))]
        );
    }

    #[test]
    fn decodes_fragmented_hello() {
        // RFC 6455, section 5.7 "Hel" + "lo", masked as a client must.
        let mut input = masked(0x01, b"Hel");
        input.extend(masked(0x80, b"lo"));
        assert_eq!(decode_all(Limits::default(), &input), [text("Hello")]);

        // The section's own bytes are unmasked: a server refuses them.
        let unmasked = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        assert_eq!(error_of(&unmasked), UNMASKED);
    }

    #[test]
    fn decodes_large_binary_headers() {
        let data: Vec<u8> = (0..=255).collect();
        let input = masked(0x82, &data);
        assert_eq!(&input[..4], [0x82, 0xfe, 0x01, 0x00]);
        assert_eq!(
            decode_all(Limits::default(), &input),
            [Ok(Incoming::Binary(Bytes::from(data)))]
        );

        let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let input = masked(0x82, &data);
        assert_eq!(
            &input[..10],
            [0x82, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(
            decode_all(Limits::default(), &input),
            [Ok(Incoming::Binary(Bytes::from(data)))]
        );
    }

    #[test]
    fn control_frames_between_fragments_come_first() {
        let mut input = masked(0x01, b"Hel");
        input.extend(masked(0x89, b"p1"));
        input.extend(masked(0x00, b"l"));
        input.extend(masked(0x8a, b"p2"));
        input.extend(masked(0x80, b"o"));
        assert_eq!(
            decode_all(Limits::default(), &input),
            [
                Ok(Incoming::Ping(Bytes::from_static(b"p1"))),
                Ok(Incoming::Pong(Bytes::from_static(b"p2"))),
                text("Hello"),
            ]
        );
    }

    #[test]
    fn decodes_close_frames() {
        assert_eq!(
            decode_all(Limits::default(), &masked(0x88, b"")),
            [Ok(Incoming::Close(None))]
        );
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice("bye ✓".as_bytes());
        assert_eq!(
            decode_all(Limits::default(), &masked(0x88, &payload)),
            [Ok(Incoming::Close(Some((1000, "bye ✓".to_owned()))))]
        );
        for code in [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
            assert_eq!(
                decode_all(Limits::default(), &masked(0x88, &u16::to_be_bytes(code))),
                [Ok(Incoming::Close(Some((code, String::new()))))],
                "code {code}"
            );
        }
    }

    #[test]
    fn refuses_protocol_violations_with_1002() {
        let cases: Vec<(&str, Vec<u8>, ProtocolError)> = vec![
            ("unmasked", client_frame(0x81, b"hi", None), UNMASKED),
            ("rsv1", masked(0xc1, b"hi"), RSV_BITS),
            ("rsv2", masked(0xa1, b"hi"), RSV_BITS),
            ("rsv3", masked(0x91, b"hi"), RSV_BITS),
            ("data opcode 3", masked(0x83, b""), RESERVED_OPCODE),
            ("data opcode 7", masked(0x87, b""), RESERVED_OPCODE),
            ("control opcode 0xb", masked(0x8b, b""), RESERVED_OPCODE),
            ("control opcode 0xf", masked(0x8f, b""), RESERVED_OPCODE),
            ("fragmented ping", masked(0x09, b""), FRAGMENTED_CONTROL),
            ("fragmented close", masked(0x08, b""), FRAGMENTED_CONTROL),
            ("126-byte ping", masked(0x89, &[0; 126]), CONTROL_TOO_LONG),
            (
                "continuation without start",
                masked(0x80, b"x"),
                CONTINUATION_WITHOUT_START,
            ),
            (
                "text inside fragmented",
                [masked(0x01, b"a"), masked(0x81, b"b")].concat(),
                DATA_INSIDE_FRAGMENTED,
            ),
            (
                "binary inside fragmented",
                [masked(0x02, b"a"), masked(0x02, b"b")].concat(),
                DATA_INSIDE_FRAGMENTED,
            ),
            ("1-byte close", masked(0x88, &[0x03]), CLOSE_ONE_BYTE),
            (
                "64-bit length with the high bit",
                [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4].to_vec(),
                LENGTH_HIGH_BIT,
            ),
        ];
        for (name, input, expected) in cases {
            let error = error_of(&input);
            assert_eq!(error, expected, "{name}");
            assert_eq!(error.code, 1002, "{name}");
        }
    }

    #[test]
    fn refuses_invalid_close_codes() {
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            let error = error_of(&masked(0x88, &code.to_be_bytes()));
            assert_eq!(error, INVALID_CLOSE_CODE, "code {code}");
            assert_eq!(error.code, 1002);
        }
        for code in 0..=u16::MAX {
            let accepted = matches!(
                decode_all(Limits::default(), &masked(0x88, &code.to_be_bytes()))[..],
                [Ok(_)]
            );
            let forbidden =
                code < 1000 || matches!(code, 1004..=1006 | 1015 | 1016..=2999) || code >= 5000;
            assert_eq!(accepted, !forbidden, "code {code}");
        }
    }

    #[test]
    fn refuses_invalid_utf8_with_1007() {
        let error = error_of(&masked(0x81, &[0x48, 0xff]));
        assert_eq!((error, error.code), (INVALID_UTF8, 1007));

        // A truncated character at the end of the final fragment.
        let error = error_of(&[masked(0x01, b"a"), masked(0x80, &[0xe2, 0x82])].concat());
        assert_eq!(error.code, 1007);

        // Invalid bytes in a first fragment are refused before the last arrives.
        let error = error_of(&masked(0x01, &[0xc0, 0x80]));
        assert_eq!(error.code, 1007);

        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(&[0xce, 0xba, 0xe1]);
        let error = error_of(&masked(0x88, &close));
        assert_eq!((error, error.code), (INVALID_UTF8, 1007));

        // Binary messages are not UTF-8 checked.
        assert_eq!(
            decode_all(Limits::default(), &masked(0x82, &[0xff])),
            [Ok(Incoming::Binary(Bytes::from_static(&[0xff])))]
        );
    }

    #[test]
    fn utf8_split_across_fragments() {
        // "€" is e2 82 ac; "𝄞" is f0 9d 84 9e.
        let mut input = masked(0x01, &[b'a', 0xe2]);
        input.extend(masked(0x00, &[0x82]));
        input.extend(masked(0x00, &[0xac, 0xf0, 0x9d]));
        input.extend(masked(0x00, &[]));
        input.extend(masked(0x80, &[0x84, 0x9e, b'z']));
        assert_eq!(decode_all(Limits::default(), &input), [text("a€𝄞z")]);

        // A continuation that cannot complete the split character.
        let mut input = masked(0x01, &[0xe2]);
        input.extend(masked(0x00, &[0x41]));
        assert_eq!(error_of(&input).code, 1007);
    }

    #[test]
    fn frame_limit_refuses_from_the_header() {
        let limits = Limits {
            max_frame_size: 10,
            max_message_size: 100,
        };
        // Exactly at the limit is accepted.
        assert_eq!(
            decode_all(limits, &masked(0x81, b"0123456789")),
            [text("0123456789")]
        );
        // The header alone of an 11-byte frame is refused: no payload needed.
        let mut decoder = FrameDecoder::new(limits);
        decoder.feed(&[0x82, 0x8b, 1, 2, 3, 4]);
        assert_eq!(decoder.next(), Err(FRAME_TOO_BIG));
        assert_eq!(FRAME_TOO_BIG.code, 1009);

        // A declared 2^62-byte frame is refused without waiting for it.
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.feed(&[0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(decoder.next(), Err(FRAME_TOO_BIG));

        // Control frames count against the frame limit too.
        let tiny = Limits {
            max_frame_size: 4,
            max_message_size: 4,
        };
        assert_eq!(error_of_with(tiny, &masked(0x89, b"12345")), FRAME_TOO_BIG);
    }

    fn error_of_with(limits: Limits, input: &[u8]) -> ProtocolError {
        match decode_all(limits, input).pop() {
            Some(Err(error)) => error,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn message_limit_counts_all_fragments() {
        let limits = Limits {
            max_frame_size: 4,
            max_message_size: 10,
        };
        let ok = [
            masked(0x02, b"abcd"),
            masked(0x00, b"efgh"),
            masked(0x80, b"ij"),
        ]
        .concat();
        assert_eq!(
            decode_all(limits, &ok),
            [Ok(Incoming::Binary(Bytes::from_static(b"abcdefghij")))]
        );

        // The third fragment's header pushes the message to 11 bytes: refused
        // before its payload arrives.
        let mut decoder = FrameDecoder::new(limits);
        decoder.feed(&[masked(0x02, b"abcd"), masked(0x00, b"efgh")].concat());
        assert_eq!(decoder.next(), Ok(None));
        decoder.feed(&[0x80, 0x83, 1, 2, 3, 4]);
        assert_eq!(decoder.next(), Err(MESSAGE_TOO_BIG));
        assert_eq!(MESSAGE_TOO_BIG.code, 1009);

        // A single frame over the message limit.
        let limits = Limits {
            max_frame_size: 100,
            max_message_size: 3,
        };
        assert_eq!(
            error_of_with(limits, &masked(0x81, b"abcd")),
            MESSAGE_TOO_BIG
        );
    }

    #[test]
    fn incomplete_frames_consume_nothing() {
        let input = [masked(0x81, b"Hello"), masked(0x89, b"")].concat();
        let mut decoder = FrameDecoder::new(Limits::default());
        for (i, byte) in input[..10].iter().enumerate() {
            decoder.feed(&[*byte]);
            assert_eq!(decoder.next(), Ok(None));
            assert_eq!(decoder.buffered_len(), i + 1);
        }
        decoder.feed(&input[10..]);
        assert_eq!(decoder.next(), Ok(Some(Incoming::Text("Hello".into()))));
        assert_eq!(decoder.buffered_len(), 6);
        assert_eq!(decoder.next(), Ok(Some(Incoming::Ping(Bytes::new()))));
        assert_eq!(decoder.buffered_len(), 0);
        assert_eq!(decoder.next(), Ok(None));
    }

    #[test]
    fn error_is_sticky() {
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.feed(&client_frame(0x81, b"x", None));
        assert_eq!(decoder.next(), Err(UNMASKED));
        assert_eq!(decoder.buffered_len(), 0);
        decoder.feed(&masked(0x81, b"fine"));
        assert_eq!(decoder.buffered_len(), 0);
        assert_eq!(decoder.next(), Err(UNMASKED));
        assert_eq!(decoder.next(), Err(UNMASKED));
    }

    #[test]
    fn a_clients_decoder_reads_unmasked_frames_and_refuses_masked_ones() {
        let mut d = FrameDecoder::for_client(Limits::default());
        let mut out = BytesMut::new();
        encode_text(&mut out, "a[\"x\"]");
        encode_ping(&mut out, b"p");
        d.feed(&out);
        assert_eq!(d.next(), Ok(Some(Incoming::Text("a[\"x\"]".into()))));
        assert_eq!(d.next(), Ok(Some(Incoming::Ping(Bytes::from_static(b"p")))));
        assert_eq!(d.next(), Ok(None));
        d.feed(&client_frame(0x81, b"x", Some(MASK)));
        assert_eq!(d.next(), Err(MASKED));
    }

    #[test]
    fn masked_encodings_are_what_a_servers_decoder_reads() {
        let mut out = BytesMut::new();
        encode_masked_text(&mut out, b"abc", [1, 2, 3, 4]);
        assert_eq!(
            &out[..],
            [0x81, 0x83, 1, 2, 3, 4, b'a' ^ 1, b'b' ^ 2, b'c' ^ 3]
        );
        let long = "y".repeat(70_000);
        encode_masked_text(&mut out, long.as_bytes(), MASK);
        encode_masked_pong(&mut out, b"pp", MASK);
        encode_masked_close(&mut out, 1000, MASK);
        let mut d = FrameDecoder::new(Limits::default());
        d.feed(&out);
        assert_eq!(d.next(), Ok(Some(Incoming::Text("abc".into()))));
        assert_eq!(d.next(), Ok(Some(Incoming::Text(long))));
        assert_eq!(
            d.next(),
            Ok(Some(Incoming::Pong(Bytes::from_static(b"pp"))))
        );
        assert_eq!(
            d.next(),
            Ok(Some(Incoming::Close(Some((1000, String::new())))))
        );
    }

    #[test]
    fn encode_close_payloads() {
        let mut out = BytesMut::new();
        encode_close(&mut out, None);
        assert_eq!(&out[..], [0x88, 0x00]);

        let mut out = BytesMut::new();
        encode_close(&mut out, Some((3000, "Go away!")));
        assert_eq!(&out[..], b"\x88\x0a\x0b\xb8Go away!");

        // 122 ASCII bytes then a 2-byte character: it would end at byte 124,
        // past the 123 allowed, so it is dropped whole.
        let reason = format!("{}é", "r".repeat(122));
        let mut out = BytesMut::new();
        encode_close(&mut out, Some((1000, &reason)));
        assert_eq!(out.len(), 2 + 2 + 122);
        assert_eq!(out[1], 124);
        assert_eq!(&out[4..], "r".repeat(122).as_bytes());

        let reason = "x".repeat(500);
        let mut out = BytesMut::new();
        encode_close(&mut out, Some((1000, &reason)));
        assert_eq!(out[1], 125);
        assert_eq!(out.len(), 127);

        // What the server writes, a client-side reading accepts.
        let mut out = BytesMut::new();
        encode_close(&mut out, Some((4000, "ünïcödé")));
        let mut frame = out.to_vec();
        frame[1] |= 0x80;
        frame.splice(2..2, [0, 0, 0, 0]);
        assert_eq!(
            decode_all(Limits::default(), &frame),
            [Ok(Incoming::Close(Some((4000, "ünïcödé".to_owned()))))]
        );
    }

    #[test]
    fn control_payloads_are_capped() {
        let mut out = BytesMut::new();
        encode_ping(&mut out, &[7; 200]);
        assert_eq!(out.len(), 2 + 125);
        assert_eq!(out[1], 125);
        let mut out = BytesMut::new();
        encode_pong(&mut out, &[7; 126]);
        assert_eq!(out.len(), 2 + 125);
    }

    #[test]
    fn header_len_matches_encoding() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload = "a".repeat(len);
            let mut out = BytesMut::new();
            encode_text(&mut out, &payload);
            assert_eq!(text_frame_header_len(len), out.len() - len, "len {len}");
        }
    }

    /// A message a client sends, and how it is cut into frames.
    #[derive(Debug, Clone)]
    enum Sent {
        Text(String, Vec<usize>),
        Binary(Vec<u8>, Vec<usize>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<(u16, String)>),
    }

    fn sent() -> impl Strategy<Value = Sent> {
        let cuts = || prop::collection::vec(0usize..64, 0..4);
        prop_oneof![
            (".{0,20}", cuts()).prop_map(|(s, c)| Sent::Text(s, c)),
            (prop::collection::vec(any::<u8>(), 0..300), cuts())
                .prop_map(|(b, c)| Sent::Binary(b, c)),
            prop::collection::vec(any::<u8>(), 0..=125).prop_map(Sent::Ping),
            prop::collection::vec(any::<u8>(), 0..=125).prop_map(Sent::Pong),
            prop::option::of((
                prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999],
                ".{0,10}"
            ))
            .prop_map(Sent::Close),
        ]
    }

    /// Encodes `messages` as a client would, with `masks` cycled over frames,
    /// and returns the bytes and what the decoder must return.
    fn client_bytes(
        messages: &[Sent],
        masks: &[[u8; 4]],
    ) -> (Vec<u8>, Vec<Result<Incoming, ProtocolError>>) {
        let mut masks = masks.iter().copied().cycle();
        let mut out = Vec::new();
        let mut expected = Vec::new();
        let mut data_frames = |out: &mut Vec<u8>, opcode: u8, data: &[u8], cuts: &[usize]| {
            let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(data.len())).collect();
            cuts.sort_unstable();
            cuts.push(data.len());
            let mut start = 0;
            for (i, &cut) in cuts.iter().enumerate() {
                let first_byte = if i == 0 { opcode } else { 0 };
                let fin = if i == cuts.len() - 1 { 0x80 } else { 0 };
                out.extend(client_frame(
                    fin | first_byte,
                    &data[start..cut],
                    masks.next(),
                ));
                start = cut;
            }
        };
        for message in messages {
            match message {
                Sent::Text(s, cuts) => {
                    data_frames(&mut out, 1, s.as_bytes(), cuts);
                    expected.push(Ok(Incoming::Text(s.clone())));
                }
                Sent::Binary(b, cuts) => {
                    data_frames(&mut out, 2, b, cuts);
                    expected.push(Ok(Incoming::Binary(Bytes::from(b.clone()))));
                }
                Sent::Ping(p) => {
                    data_frames(&mut out, 9, p, &[]);
                    expected.push(Ok(Incoming::Ping(Bytes::from(p.clone()))));
                }
                Sent::Pong(p) => {
                    data_frames(&mut out, 10, p, &[]);
                    expected.push(Ok(Incoming::Pong(Bytes::from(p.clone()))));
                }
                Sent::Close(close) => {
                    let payload = match close {
                        None => Vec::new(),
                        Some((code, reason)) => {
                            [&code.to_be_bytes()[..], reason.as_bytes()].concat()
                        }
                    };
                    data_frames(&mut out, 8, &payload, &[]);
                    expected.push(Ok(Incoming::Close(close.clone())));
                }
            }
        }
        (out, expected)
    }

    proptest! {
        #[test]
        fn any_split_decodes_what_was_sent(
            messages in prop::collection::vec(sent(), 0..8),
            masks in prop::collection::vec(any::<[u8; 4]>(), 1..4),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let (input, expected) = client_bytes(&messages, &masks);
            let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            prop_assert_eq!(&decode_all(Limits::default(), &input), &expected);
            prop_assert_eq!(&decode_split(Limits::default(), &input, &cuts), &expected);
        }

        #[test]
        fn any_split_gives_the_same_results_on_corrupted_input(
            messages in prop::collection::vec(sent(), 0..6),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
            max_frame_size in 0usize..200,
            max_message_size in 0usize..400,
        ) {
            let (mut input, _) = client_bytes(&messages, &[[1, 2, 3, 4]]);
            if !input.is_empty() {
                for (at, xor) in &flips {
                    let at = at.index(input.len());
                    input[at] ^= xor;
                }
            }
            let limits = Limits { max_frame_size, max_message_size };
            let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            prop_assert_eq!(decode_all(limits, &input), decode_split(limits, &input, &cuts));
        }

        #[test]
        fn any_split_gives_the_same_results_on_random_bytes(
            input in prop::collection::vec(any::<u8>(), 0..200),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let limits = Limits { max_frame_size: 64, max_message_size: 128 };
            let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            prop_assert_eq!(decode_all(limits, &input), decode_split(limits, &input, &cuts));
        }
    }
}
