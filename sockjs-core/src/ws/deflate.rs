//! RFC 7692 permessage-deflate: negotiation and per-message compression.
//!
//! Three pieces, all sans-IO:
//!
//! - [`negotiate`] reads a client's `Sec-WebSocket-Extensions` offers and, given the
//!   server's [`DeflateConfig`], picks the first acceptable `permessage-deflate` offer: the
//!   [`Agreement`] holds the agreed [`DeflateParams`] and the extension string to answer
//!   with. No acceptable offer means no extension (the handshake goes on without it).
//! - [`Deflater`] compresses the messages a server sends on one connection;
//!   [`encode_compressed_text`] and [`encode_compressed_binary`] frame them with RSV1 set.
//! - [`Inflater`] decompresses what a client sends, incrementally and never past a size
//!   limit; [`FrameDecoder::with_deflate`](super::FrameDecoder::with_deflate) drives it from
//!   the RSV1 bit of the frames it decodes.
//!
//! The [`Server`](crate::Server) uses all three on the WebSockets of an endpoint whose
//! [`Options::compression`](crate::Options::compression) is set, and counts the state they
//! hold in [`Server::deflate_memory`](crate::Server::deflate_memory).
//!
//! # Window sizes with this backend
//!
//! Compression is raw DEFLATE from a pure-Rust backend that always uses a 32 KiB (15-bit)
//! LZ77 window, compressing and decompressing: it can neither compress with a smaller
//! window nor save memory by decompressing with one. Hence:
//!
//! - an offer whose `server_max_window_bits` is below 15 asks the server for a smaller
//!   window than it can keep to, and is declined (RFC 7692, section 7.1.2.1: the server
//!   "MUST either decline the offer or include the server_max_window_bits extension
//!   parameter in the response with a value equal to or smaller than" the offered one);
//!   the next offer, typically one without the parameter, is tried;
//! - any client window (8 to 15 bits) inflates correctly, so `client_max_window_bits` is
//!   only a courtesy to the client's memory (section 7.1.2.2).
//!
//! # Memory
//!
//! A [`Deflater`] allocates its state ([`DEFLATER_MEMORY`], about 312 KiB) when it first
//! compresses, an [`Inflater`] its state ([`INFLATER_MEMORY`], about 42 KiB) when it first
//! inflates; both measured with a counting allocator (`tests/deflate_memory.rs`). With
//! context takeover a direction keeps its state for the connection's life, as the window
//! must survive between messages; without it (`server_no_context_takeover`,
//! `client_no_context_takeover`) the state is freed after each message, so an idle
//! connection holds nothing, at the cost of allocating the state again for each message.
//! [`Deflater::memory`] and [`Inflater::memory`] tell what is held now, for a memory
//! budget.

use std::fmt::Write as _;

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::{self, ProtocolError};

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// Longest `Sec-WebSocket-Extensions` input [`negotiate`] reads, all header values together;
/// anything longer negotiates nothing. Browsers send well under 100 bytes.
pub const MAX_HEADER_LEN: usize = 4096;

/// Most extension offers (list elements, any extension) [`negotiate`] reads; more
/// negotiates nothing.
pub const MAX_OFFERS: usize = 32;

/// Most parameters one offer may carry; more negotiates nothing. `permessage-deflate`
/// defines four.
pub const MAX_PARAMS: usize = 16;

/// Approximate heap bytes one [`Deflater`] holds for its whole life: measured 319,326
/// bytes (about 312 KiB: the backend's 32 KiB window, its hash chains and its output
/// buffers), whatever the level (`tests/deflate_memory.rs`).
pub const DEFLATER_MEMORY: usize = 312 * 1024;

/// Approximate heap bytes one [`Inflater`] holds for its whole life: measured 43,296
/// bytes (about 42 KiB: the 32 KiB window and the decoder's tables;
/// `tests/deflate_memory.rs`).
pub const INFLATER_MEMORY: usize = 42 * 1024;

/// The trailer a sync flush ends with, removed before sending and appended before
/// inflating (RFC 7692, sections 7.2.1 and 7.2.2).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The only window this backend compresses with, and the largest the RFC allows.
const WINDOW_BITS: u8 = 15;

/// The first output allocation when inflating a message; it then doubles, up to the limit.
const MIN_INFLATE_CHUNK: usize = 1024;

const CORRUPT: ProtocolError = ProtocolError {
    code: ProtocolError::INVALID_PAYLOAD,
    reason: "invalid compressed data",
};

/// What a server accepts of permessage-deflate.
///
/// Defaults: context takeover in both directions (the best compression: each message may
/// refer to the ones before; the state is kept anyway, see the module docs), no request
/// to shrink the client's window, messages under 64 bytes sent uncompressed, level 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Compress each message on its own (always answered `server_no_context_takeover`).
    /// Costs ratio, saves nothing with this backend until the state is freed between
    /// messages; a client may also ask for it, which is honoured.
    pub server_no_context_takeover: bool,
    /// Ask clients to compress each message on its own (answered
    /// `client_no_context_takeover` even when not offered, as section 7.1.1.2 allows).
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window, as a power of 2 (8 to 15, others are clamped), the client
    /// should compress with. Only sent to clients whose offer names
    /// `client_max_window_bits` (section 7.1.2.2); an offer without it is still accepted,
    /// as the inflater handles any window.
    pub client_max_window_bits: u8,
    /// Messages shorter than this many bytes are sent uncompressed (RSV1 clear): under a
    /// few dozen bytes deflate rarely saves anything and costs a compressor call.
    pub min_message_size: usize,
    /// Compression level, 0 (stored) to 9 (best); others are clamped. 1 keeps most of the
    /// gain on JSON text for a fraction of the CPU of higher levels, which matters on a
    /// server compressing every message of every connection.
    pub level: u32,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            client_max_window_bits: WINDOW_BITS,
            min_message_size: 64,
            level: 1,
        }
    }
}

/// The parameters both sides agreed on for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server compresses each message on its own.
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own; the server's inflater resets
    /// between messages.
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window as a power of 2: always 15 with this backend.
    pub server_max_window_bits: u8,
    /// The client's LZ77 window as a power of 2 (15 unless the answer lowered it).
    pub client_max_window_bits: u8,
}

/// An accepted offer: the agreed parameters and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// The parameters to build the connection's [`Deflater`] and [`Inflater`] with.
    pub params: DeflateParams,
    /// The `Sec-WebSocket-Extensions` value of the 101 response, for example
    /// `permessage-deflate; server_no_context_takeover`.
    pub response: String,
}

/// Picks the first acceptable `permessage-deflate` offer from the values of the request's
/// `Sec-WebSocket-Extensions` header fields (in the order received; several fields are one
/// list, RFC 6455 section 9.1).
///
/// Returns `None`, meaning "answer without the extension", when no offer is acceptable,
/// and also when the header is malformed anywhere or over [`MAX_HEADER_LEN`],
/// [`MAX_OFFERS`] or [`MAX_PARAMS`]. An offer is declined, and the next tried, if it has
/// an unknown or repeated parameter, a value where none belongs, a missing or invalid
/// window size (decimal 8 to 15, no leading zero, bare or quoted), or a
/// `server_max_window_bits` under 15 (see the module docs). Extension and parameter names
/// compare ASCII case-insensitively, as HTTP tokens do.
///
/// One pass over the bytes, no backtracking and no allocation but the answer.
pub fn negotiate<'a, I>(config: &DeflateConfig, header_values: I) -> Option<Agreement>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut total = 0usize;
    let mut offers = 0usize;
    let mut chosen = None;
    for value in header_values {
        total = total.saturating_add(value.len());
        if total > MAX_HEADER_LEN {
            return None;
        }
        let mut cursor = Cursor {
            bytes: value,
            at: 0,
        };
        loop {
            cursor.skip_ows();
            match cursor.peek() {
                None => break,
                // An empty list element, which the list syntax tolerates.
                Some(b',') => {
                    cursor.at += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name = cursor.token()?;
            offers += 1;
            if offers > MAX_OFFERS {
                return None;
            }
            let ours = name.eq_ignore_ascii_case(EXTENSION_NAME.as_bytes());
            let mut offer = Offer::default();
            let mut params = 0usize;
            loop {
                cursor.skip_ows();
                match cursor.peek() {
                    None => break,
                    Some(b',') => {
                        cursor.at += 1;
                        break;
                    }
                    Some(b';') => {
                        cursor.at += 1;
                        cursor.skip_ows();
                        let param = cursor.token()?;
                        params += 1;
                        if params > MAX_PARAMS {
                            return None;
                        }
                        cursor.skip_ows();
                        let value = if cursor.peek() == Some(b'=') {
                            cursor.at += 1;
                            cursor.skip_ows();
                            Some(cursor.value()?)
                        } else {
                            None
                        };
                        if ours {
                            offer.add(param, value);
                        }
                    }
                    Some(_) => return None,
                }
            }
            if ours && chosen.is_none() {
                chosen = offer.accept(config);
            }
        }
    }
    chosen
}

/// A position in one header value.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Skips optional whitespace: spaces and tabs.
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// Reads a non-empty token (RFC 9110, section 5.6.2).
    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| &self.bytes[start..self.at])
    }

    /// Reads a parameter value: a token or a quoted string, unescaped.
    fn value(&mut self) -> Option<Value> {
        if self.peek() != Some(b'"') {
            return self.token().map(Value::of);
        }
        self.at += 1;
        let mut value = Value::default();
        loop {
            let byte = self.peek()?;
            self.at += 1;
            match byte {
                b'"' => return Some(value),
                b'\\' => {
                    let escaped = self
                        .peek()
                        .filter(|&b| is_qdtext(b) || b == b'"' || b == b'\\')?;
                    self.at += 1;
                    value.push(escaped);
                }
                b if is_qdtext(b) => value.push(b),
                _ => return None,
            }
        }
    }
}

fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A character allowed unescaped in a quoted string (RFC 9110, section 5.6.4).
fn is_qdtext(byte: u8) -> bool {
    matches!(byte, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

/// A parameter value, of which only the first bytes are kept: every value this extension
/// defines is one or two digits, so longer ones need only be known to be longer.
#[derive(Debug, Default, Clone, Copy)]
struct Value {
    bytes: [u8; 2],
    len: usize,
}

impl Value {
    fn of(token: &[u8]) -> Value {
        let mut value = Value::default();
        for &byte in token {
            value.push(byte);
        }
        value
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
        }
        self.len = self.len.saturating_add(1);
    }

    /// The value as a window size: decimal 8 to 15 without leading zeros (RFC 7692,
    /// sections 7.1.2.1 and 7.1.2.2).
    fn window_bits(&self) -> Option<u8> {
        let digits = self.bytes.get(..self.len)?;
        match digits {
            [d @ b'8'..=b'9'] => Some(d - b'0'),
            [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
            _ => None,
        }
    }
}

/// One `permessage-deflate` offer's parameters as read so far.
#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: named without a value.
    client_max_window_bits: Option<Option<u8>>,
    /// Names seen, to refuse repeats.
    seen: [bool; 4],
    /// An unknown, repeated or invalid parameter: the offer must be declined (RFC 7692,
    /// section 7.1).
    invalid: bool,
}

impl Offer {
    fn add(&mut self, name: &[u8], value: Option<Value>) {
        const NAMES: [&str; 4] = [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        ];
        let Some(index) = NAMES
            .iter()
            .position(|known| name.eq_ignore_ascii_case(known.as_bytes()))
        else {
            self.invalid = true;
            return;
        };
        if std::mem::replace(&mut self.seen[index], true) {
            self.invalid = true;
            return;
        }
        let bits = value.map(|v| v.window_bits());
        match (index, bits) {
            (0, None) => self.server_no_context_takeover = true,
            (1, None) => self.client_no_context_takeover = true,
            (2, Some(Some(bits))) => self.server_max_window_bits = Some(bits),
            (3, None) => self.client_max_window_bits = Some(None),
            (3, Some(Some(bits))) => self.client_max_window_bits = Some(Some(bits)),
            _ => self.invalid = true,
        }
    }

    /// The answer to this offer under `config`, or `None` to decline it.
    fn accept(&self, config: &DeflateConfig) -> Option<Agreement> {
        if self.invalid {
            return None;
        }
        // Section 7.1.2.1: answer with the offered value or less, or decline. This backend
        // compresses with 15 bits only.
        if self
            .server_max_window_bits
            .is_some_and(|bits| bits < WINDOW_BITS)
        {
            return None;
        }
        let wanted_client_bits = config.client_max_window_bits.clamp(8, WINDOW_BITS);
        // Section 7.1.2.2: never name the client's window unless the offer did; when it
        // gave a value, answer with that or less.
        let (client_bits, announce_client_bits) = match self.client_max_window_bits {
            None => (WINDOW_BITS, None),
            Some(None) => (
                wanted_client_bits,
                (wanted_client_bits < WINDOW_BITS).then_some(wanted_client_bits),
            ),
            Some(Some(offered)) => {
                let bits = offered.min(wanted_client_bits);
                (bits, Some(bits))
            }
        };
        let params = DeflateParams {
            // Section 7.1.1.1: an offered server_no_context_takeover must be answered; the
            // server may add it unasked.
            server_no_context_takeover: self.server_no_context_takeover
                || config.server_no_context_takeover,
            // Section 7.1.1.2: the server may add it unasked, and may answer an offered one,
            // which lets its inflater reset between messages.
            client_no_context_takeover: self.client_no_context_takeover
                || config.client_no_context_takeover,
            server_max_window_bits: WINDOW_BITS,
            client_max_window_bits: client_bits,
        };
        let mut response = String::from(EXTENSION_NAME);
        if params.server_no_context_takeover {
            response.push_str("; server_no_context_takeover");
        }
        if params.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits.is_some() {
            let _ = write!(response, "; server_max_window_bits={WINDOW_BITS}");
        }
        if let Some(bits) = announce_client_bits {
            let _ = write!(response, "; client_max_window_bits={bits}");
        }
        Some(Agreement { params, response })
    }
}

/// Compresses the messages a server sends on one connection (RFC 7692, section 7.2.1).
///
/// Keeps the LZ77 window between messages unless `server_no_context_takeover` was agreed.
#[derive(Debug)]
pub struct Deflater {
    compress: Context<Compress>,
    level: Compression,
    min_message_size: usize,
}

/// The state of one direction's codec, kept between messages with context takeover:
/// allocated on first use, dropped after each message without context takeover.
struct Context<T> {
    state: Option<T>,
    no_context_takeover: bool,
    /// Heap bytes `state` holds while it is there.
    size: usize,
}

impl<T> Context<T> {
    fn new(no_context_takeover: bool, size: usize) -> Self {
        Context {
            state: None,
            no_context_takeover,
            size,
        }
    }

    fn memory(&self) -> usize {
        if self.state.is_some() { self.size } else { 0 }
    }

    fn get_or_insert_with(&mut self, make: impl FnOnce() -> T) -> &mut T {
        self.state.get_or_insert_with(make)
    }

    /// A message is done: its state goes without context takeover, or when `reset`.
    fn end_message(&mut self, reset: bool) {
        if reset || self.no_context_takeover {
            self.state = None;
        }
    }
}

impl<T> std::fmt::Debug for Context<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("memory", &self.memory())
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// Creates the compressor for one connection: `params` from the [`Agreement`], the
    /// level and threshold from the server's `config`. Allocates nothing until the first
    /// message.
    pub fn new(params: &DeflateParams, config: &DeflateConfig) -> Self {
        Deflater {
            compress: Context::new(params.server_no_context_takeover, DEFLATER_MEMORY),
            level: Compression::new(config.level.min(9)),
            min_message_size: config.min_message_size,
        }
    }

    /// Heap bytes the compression state holds now, about: [`DEFLATER_MEMORY`] from the
    /// first message on with context takeover, else 0 between messages.
    pub fn memory(&self) -> usize {
        self.compress.memory()
    }

    /// Whether a message of `len` bytes should be compressed; shorter ones are sent as
    /// plain frames (RSV1 clear), which leaves the compression context untouched.
    pub fn should_compress(&self, len: usize) -> bool {
        len >= self.min_message_size
    }

    /// Appends one message's compressed payload, the concatenation of `parts`, to `out`:
    /// raw DEFLATE ending with a sync flush whose `00 00 ff ff` is removed. Returns false,
    /// with `out` as it was and the context reset, if the backend failed (it reports
    /// errors only for misuse, which this never does); send the message uncompressed then.
    pub fn compress(&mut self, parts: &[&[u8]], out: &mut BytesMut) -> bool {
        let start = out.len();
        // A sync flush ends with the trailer, unless it had nothing at all to write (an
        // empty message right after another flush): an empty payload inflates to nothing.
        let ok = self.compress_parts(parts, out)
            && (out.len() == start || out[start..].ends_with(&TRAILER));
        if ok {
            out.truncate(out.len().saturating_sub(TRAILER.len()).max(start));
        } else {
            out.truncate(start);
        }
        self.compress.end_message(!ok);
        ok
    }

    fn compress_parts(&mut self, parts: &[&[u8]], out: &mut BytesMut) -> bool {
        let level = self.level;
        let compress = self
            .compress
            .get_or_insert_with(|| Compress::new(level, false));
        let last = parts.len().saturating_sub(1);
        for index in 0..=last {
            let mut input = parts.get(index).copied().unwrap_or_default();
            let flush = if index == last {
                FlushCompress::Sync
            } else {
                FlushCompress::None
            };
            loop {
                if out.capacity() - out.len() < 64 {
                    out.reserve((input.len() / 2).max(1024));
                }
                let len = out.len();
                let room = out.capacity() - len;
                out.resize(len + room, 0);
                let (in_before, out_before) = (compress.total_in(), compress.total_out());
                let status = compress.compress(input, &mut out[len..], flush);
                let consumed = (compress.total_in() - in_before) as usize;
                let written = (compress.total_out() - out_before) as usize;
                out.truncate(len + written);
                input = &input[consumed..];
                match status {
                    Ok(Status::Ok | Status::BufError) => {}
                    Ok(Status::StreamEnd) | Err(_) => return false,
                }
                // A sync flush is complete once it stops filling the output; other parts
                // only need their input taken.
                let done = match flush {
                    FlushCompress::Sync => input.is_empty() && written < room,
                    _ => input.is_empty(),
                };
                if done {
                    break;
                }
                if consumed == 0 && written == 0 && room >= 64 {
                    return false;
                }
            }
        }
        true
    }
}

/// Decompresses the messages a client sends on one connection (RFC 7692, section 7.2.2),
/// incrementally and within a hard size limit.
///
/// Feed a message's compressed bytes with [`inflate`](Self::inflate) as they arrive, then
/// call [`finish`](Self::finish). The output never grows past the limit: a few KiB that
/// would inflate to gigabytes stop with close code 1009 once the limit is passed, having
/// allocated about the limit. Keeps the window between messages unless
/// `client_no_context_takeover` was agreed.
#[derive(Debug)]
pub struct Inflater {
    decompress: Context<Decompress>,
    /// The current message's DEFLATE stream ended with a final block (BFINAL set, section
    /// 7.2.3.4): later bytes of the message are ignored and the next message starts a new
    /// stream.
    ended: bool,
}

impl Inflater {
    /// Creates the decompressor for one connection with the agreed `params`. Allocates
    /// nothing until the first compressed message.
    pub fn new(params: &DeflateParams) -> Self {
        Inflater {
            decompress: Context::new(params.client_no_context_takeover, INFLATER_MEMORY),
            ended: false,
        }
    }

    /// Heap bytes the decompression state holds now, about: [`INFLATER_MEMORY`] from the
    /// first compressed message on with context takeover, else 0 between messages.
    pub fn memory(&self) -> usize {
        self.decompress.memory()
    }

    /// Inflates the next compressed bytes of the current message, appending to `out`
    /// (which holds what the message inflated to so far).
    ///
    /// On success `out` holds at most `limit` bytes; it is refused with 1009 as soon as
    /// it reaches `limit + 1`. Its capacity stays at most `limit + 1` if it starts so: it
    /// grows by doubling from 1 KiB, capped there. Invalid compressed data is refused with
    /// 1007. After an error the inflater must not be used again.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        self.run(input, out, limit, FlushDecompress::None)
    }

    /// Ends the current message: inflates the removed `00 00 ff ff` trailer, then resets
    /// for the next message if the client compresses each on its own (or ended its stream).
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), ProtocolError> {
        self.run(&TRAILER, out, limit, FlushDecompress::Sync)?;
        self.decompress.end_message(self.ended);
        self.ended = false;
        Ok(())
    }

    /// Inflates one whole message's payload; see [`inflate`](Self::inflate).
    pub fn inflate_message(
        &mut self,
        payload: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, ProtocolError> {
        let mut out = Vec::new();
        self.inflate(payload, &mut out, limit)?;
        self.finish(&mut out, limit)?;
        Ok(out)
    }

    fn run(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
        flush: FlushDecompress,
    ) -> Result<(), ProtocolError> {
        let cap_limit = limit.saturating_add(1);
        let decompress = self
            .decompress
            .get_or_insert_with(|| Decompress::new(false));
        loop {
            if self.ended {
                return Ok(());
            }
            if out.len() > limit {
                return Err(frame::MESSAGE_TOO_BIG);
            }
            if out.len() == out.capacity() {
                let target = out
                    .capacity()
                    .saturating_mul(2)
                    .max(MIN_INFLATE_CHUNK)
                    .min(cap_limit);
                if target <= out.len() {
                    // Only possible when `out` came in longer than the limit allows.
                    return Err(frame::MESSAGE_TOO_BIG);
                }
                out.reserve_exact(target - out.len());
            }
            let room = out.capacity() - out.len();
            let (in_before, out_before) = (decompress.total_in(), out.len());
            let status = decompress
                .decompress_vec(input, out, flush)
                .map_err(|_| CORRUPT)?;
            let consumed = (decompress.total_in() - in_before) as usize;
            let produced = out.len() - out_before;
            input = &input[consumed..];
            if out.len() > limit {
                return Err(frame::MESSAGE_TOO_BIG);
            }
            if status == Status::StreamEnd {
                self.ended = true;
                continue;
            }
            // All input taken and room left over: nothing is pending in the decoder.
            if input.is_empty() && produced < room {
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                return Err(CORRUPT);
            }
        }
    }
}

/// Appends `text` to `out` as one compressed, final text frame (RSV1 set).
///
/// Falls back to a plain frame in the one case [`Deflater::compress`] fails. Whether to
/// compress at all is the caller's choice: see [`Deflater::should_compress`].
pub fn encode_compressed_text(out: &mut BytesMut, deflater: &mut Deflater, text: &str) {
    encode_compressed(out, deflater, frame::OPCODE_TEXT, &[text.as_bytes()]);
}

/// Appends a text message made of `parts` (whose concatenation must be UTF-8) as one
/// compressed, final text frame, without first joining them.
pub fn encode_compressed_text_parts(out: &mut BytesMut, deflater: &mut Deflater, parts: &[&[u8]]) {
    encode_compressed(out, deflater, frame::OPCODE_TEXT, parts);
}

/// Appends `data` to `out` as one compressed, final binary frame (RSV1 set).
pub fn encode_compressed_binary(out: &mut BytesMut, deflater: &mut Deflater, data: &[u8]) {
    encode_compressed(out, deflater, frame::OPCODE_BINARY, &[data]);
}

/// Compresses after room for the longest header, then writes the header and moves the
/// payload back to meet it: one buffer, no copy of the message.
fn encode_compressed(out: &mut BytesMut, deflater: &mut Deflater, opcode: u8, parts: &[&[u8]]) {
    const GAP: usize = 10;
    let start = out.len();
    out.resize(start + GAP, 0);
    if !deflater.compress(parts, out) {
        out.truncate(start);
        let len = parts.iter().map(|p| p.len()).sum();
        let (header, header_len) = frame::header_bytes(0x80 | opcode, len);
        out.reserve(header_len + len);
        out.extend_from_slice(&header[..header_len]);
        for part in parts {
            out.extend_from_slice(part);
        }
        return;
    }
    let len = out.len() - start - GAP;
    let (header, header_len) = frame::header_bytes(0x80 | frame::RSV1 | opcode, len);
    out[start..start + header_len].copy_from_slice(&header[..header_len]);
    out.copy_within(start + GAP.., start + header_len);
    out.truncate(start + header_len + len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ws_frame;
    use crate::ws::frame::{RSV_BITS, RSV1_CONTINUATION, RSV1_CONTROL};
    use crate::ws::{FrameDecoder, Incoming, Limits};
    use bytes::Bytes;
    use proptest::prelude::*;

    fn answer(config: &DeflateConfig, header: &str) -> Option<String> {
        negotiate(config, [header.as_bytes()]).map(|a| a.response)
    }

    fn default_answer(header: &str) -> Option<String> {
        answer(&DeflateConfig::default(), header)
    }

    fn params_of(header: &str) -> DeflateParams {
        negotiate(&DeflateConfig::default(), [header.as_bytes()])
            .expect("accepted")
            .params
    }

    fn agreed() -> DeflateParams {
        params_of("permessage-deflate")
    }

    #[test]
    fn plain_offer_is_accepted_as_is() {
        // RFC 7692, section 5 and 7.1.3: the simplest offer and answer.
        let agreement = negotiate(&DeflateConfig::default(), [&b"permessage-deflate"[..]]).unwrap();
        assert_eq!(agreement.response, "permessage-deflate");
        assert_eq!(
            agreement.params,
            DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            }
        );
    }

    #[test]
    fn rfc7692_examples() {
        // Section 7.1.3: a client offering the same extension twice, the first asking for
        // a smaller server window. This backend cannot keep to 10 bits, so it declines
        // the first (as section 7.1.2.1 allows) and accepts the fallback.
        assert_eq!(
            default_answer(
                "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
                 permessage-deflate; client_max_window_bits"
            )
            .as_deref(),
            Some("permessage-deflate")
        );
        // Section 7.1.3: a server that wants the client's window smaller answers the bare
        // client_max_window_bits with a value.
        let narrow = DeflateConfig {
            client_max_window_bits: 10,
            ..DeflateConfig::default()
        };
        assert_eq!(
            answer(&narrow, "permessage-deflate; client_max_window_bits").as_deref(),
            Some("permessage-deflate; client_max_window_bits=10")
        );
        // Section 5's example offer, as browsers send it.
        assert_eq!(
            default_answer("permessage-deflate; client_max_window_bits").as_deref(),
            Some("permessage-deflate")
        );
        // Section 7.1.3: "permessage-deflate; server_max_window_bits=10" answered when the
        // offer allows 15 at most: here the offer of 15 is echoed.
        assert_eq!(
            default_answer("permessage-deflate; server_max_window_bits=15").as_deref(),
            Some("permessage-deflate; server_max_window_bits=15")
        );
    }

    #[test]
    fn server_no_context_takeover() {
        // Section 7.1.1.1: offered, it must be answered.
        let a = negotiate(
            &DeflateConfig::default(),
            [&b"permessage-deflate; server_no_context_takeover"[..]],
        )
        .unwrap();
        assert_eq!(a.response, "permessage-deflate; server_no_context_takeover");
        assert!(a.params.server_no_context_takeover);
        // The server may add it unasked.
        let config = DeflateConfig {
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert_eq!(
            answer(&config, "permessage-deflate").as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn client_no_context_takeover() {
        // Section 7.1.1.2: an offered one is answered, so the inflater may reset.
        let a = negotiate(
            &DeflateConfig::default(),
            [&b"permessage-deflate; client_no_context_takeover"[..]],
        )
        .unwrap();
        assert_eq!(a.response, "permessage-deflate; client_no_context_takeover");
        assert!(a.params.client_no_context_takeover);
        assert!(!a.params.server_no_context_takeover);
        // The server may ask for it unoffered.
        let config = DeflateConfig {
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert_eq!(
            answer(&config, "permessage-deflate").as_deref(),
            Some("permessage-deflate; client_no_context_takeover")
        );
        // Both, in the answer's fixed order whatever the offer's.
        assert_eq!(
            default_answer(
                "permessage-deflate; client_no_context_takeover; server_no_context_takeover"
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
    }

    #[test]
    fn server_max_window_bits() {
        // Section 7.1.2.1: 15 is answered with 15; below 15 is declined by this backend.
        for bits in 8..=14 {
            assert_eq!(
                default_answer(&format!(
                    "permessage-deflate; server_max_window_bits={bits}"
                )),
                None,
                "{bits}"
            );
        }
        assert_eq!(
            params_of("permessage-deflate; server_max_window_bits=15").server_max_window_bits,
            15
        );
        // It always needs a value.
        assert_eq!(
            default_answer("permessage-deflate; server_max_window_bits"),
            None
        );
        // Never answered unoffered.
        assert_eq!(
            default_answer("permessage-deflate").as_deref(),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn client_max_window_bits() {
        let narrow = |bits| DeflateConfig {
            client_max_window_bits: bits,
            ..DeflateConfig::default()
        };
        // Section 7.1.2.2: not offered, never answered, whatever the config wants; the
        // client keeps 15, which the inflater handles.
        let a = negotiate(&narrow(9), [&b"permessage-deflate"[..]]).unwrap();
        assert_eq!(a.response, "permessage-deflate");
        assert_eq!(a.params.client_max_window_bits, 15);
        // Offered bare: the config's value, if it is below 15.
        let a = negotiate(
            &narrow(9),
            [&b"permessage-deflate; client_max_window_bits"[..]],
        )
        .unwrap();
        assert_eq!(a.response, "permessage-deflate; client_max_window_bits=9");
        assert_eq!(a.params.client_max_window_bits, 9);
        // Offered with a value: the smaller of it and the config's, always answered.
        for (offered, config, expected) in [(12, 15, 12), (12, 10, 10), (8, 15, 8), (15, 15, 15)] {
            let a = negotiate(
                &narrow(config),
                [format!("permessage-deflate; client_max_window_bits={offered}").as_bytes()],
            )
            .unwrap();
            assert_eq!(
                a.response,
                format!("permessage-deflate; client_max_window_bits={expected}")
            );
            assert_eq!(a.params.client_max_window_bits, expected);
        }
        // Config values out of range are clamped.
        assert_eq!(
            answer(&narrow(3), "permessage-deflate; client_max_window_bits").as_deref(),
            Some("permessage-deflate; client_max_window_bits=8")
        );
        assert_eq!(
            answer(&narrow(200), "permessage-deflate; client_max_window_bits").as_deref(),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn every_parameter_at_once() {
        let config = DeflateConfig {
            client_max_window_bits: 11,
            ..DeflateConfig::default()
        };
        let a = negotiate(
            &config,
            [
                &b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                server_max_window_bits=15; client_max_window_bits=12"[..],
            ],
        )
        .unwrap();
        assert_eq!(
            a.response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=15; client_max_window_bits=11"
        );
        assert_eq!(
            a.params,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 15,
                client_max_window_bits: 11,
            }
        );
        // The answer is itself an offer this server accepts, with the same outcome.
        assert_eq!(negotiate(&config, [a.response.as_bytes()]), Some(a));
    }

    #[test]
    fn quoted_values_and_case() {
        for header in [
            "permessage-deflate; client_max_window_bits=\"10\"",
            "permessage-deflate; client_max_window_bits=\"1\\0\"",
            "PerMessage-Deflate; Client_Max_Window_Bits=10",
            "permessage-deflate ;\tclient_max_window_bits = 10 ",
        ] {
            assert_eq!(
                default_answer(header).as_deref(),
                Some("permessage-deflate; client_max_window_bits=10"),
                "{header}"
            );
        }
        assert_eq!(
            default_answer("permessage-deflate; server_max_window_bits=\"15\"").as_deref(),
            Some("permessage-deflate; server_max_window_bits=15")
        );
    }

    #[test]
    fn invalid_offers_are_declined_and_the_next_tried() {
        for offer in [
            "permessage-deflate; unknown",
            "permessage-deflate; unknown=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=015",
            "permessage-deflate; server_max_window_bits=\"\"",
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; client_max_window_bits=08",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits=\"1 0\"",
            "permessage-deflate; client_max_window_bits=+9",
            "permessage-deflate; client_max_window_bits=100000000000000000009",
        ] {
            assert_eq!(default_answer(offer), None, "{offer}");
            assert_eq!(
                default_answer(&format!(
                    "{offer}, permessage-deflate; server_no_context_takeover"
                ))
                .as_deref(),
                Some("permessage-deflate; server_no_context_takeover"),
                "{offer}"
            );
        }
    }

    #[test]
    fn first_acceptable_offer_wins_among_other_extensions() {
        assert_eq!(
            default_answer(
                "x-webkit-deflate-frame, foo; bar=\"a,b;c=\\\"d\"; baz, \
                 permessage-deflate; client_no_context_takeover, permessage-deflate"
            )
            .as_deref(),
            Some("permessage-deflate; client_no_context_takeover")
        );
        // Several header fields are one list.
        let a = negotiate(
            &DeflateConfig::default(),
            [
                &b"foo"[..],
                b"permessage-deflate; server_max_window_bits=9",
                b"permessage-deflate; server_no_context_takeover",
            ],
        );
        assert_eq!(
            a.map(|a| a.response).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        // Empty list elements are tolerated.
        assert_eq!(
            default_answer(" , ,permessage-deflate,, ").as_deref(),
            Some("permessage-deflate")
        );
        // Only other extensions, or nothing.
        for header in ["", " ", ",", "x-webkit-deflate-frame", "deflate-frame; a=1"] {
            assert_eq!(default_answer(header), None, "{header:?}");
        }
        assert_eq!(
            negotiate(&DeflateConfig::default(), Vec::<&[u8]>::new()),
            None
        );
    }

    #[test]
    fn malformed_headers_negotiate_nothing() {
        for header in [
            "permessage-deflate;",
            "permessage-deflate; ",
            "permessage-deflate;;",
            "permessage-deflate; =1",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; client_max_window_bits=\"10",
            "permessage-deflate; client_max_window_bits=\"10\\",
            "permessage-deflate; client_max_window_bits=10 11",
            "permessage-deflate x",
            "permessage-deflate, ;",
            "=",
            "\"permessage-deflate\"",
            "permessage-deflate; a=\"\x01\"",
            "permessage-deflate\u{e9}",
            "permessage-deflate\r\n",
            // A good offer does not save a header that is broken later.
            "permessage-deflate, foo;",
        ] {
            assert_eq!(default_answer(header), None, "{header:?}");
        }
        assert_eq!(
            negotiate(
                &DeflateConfig::default(),
                [&b"permessage-deflate; a=\"\xff\""[..]]
            ),
            negotiate(&DeflateConfig::default(), [&b"permessage-deflate; a"[..]]),
        );
    }

    #[test]
    fn hostile_headers_are_bounded() {
        // Length: exactly the bound is read, one byte more is not.
        let at_bound = format!("{:1$}permessage-deflate", "", MAX_HEADER_LEN - 18);
        assert_eq!(at_bound.len(), MAX_HEADER_LEN);
        assert!(default_answer(&at_bound).is_some());
        let over = format!(" {at_bound}");
        assert_eq!(default_answer(&over), None);
        // Across several header values too.
        let half = " ".repeat(MAX_HEADER_LEN / 2);
        let values = [half.as_bytes(), half.as_bytes(), b"permessage-deflate"];
        assert_eq!(negotiate(&DeflateConfig::default(), values), None);

        // Offers.
        let offers = |n: usize| {
            let mut header = "x, ".repeat(n - 1);
            header.push_str("permessage-deflate");
            header
        };
        assert!(default_answer(&offers(MAX_OFFERS)).is_some());
        assert_eq!(default_answer(&offers(MAX_OFFERS + 1)), None);

        // Parameters, counted for every extension.
        let params = |n: usize| format!("x{}, permessage-deflate", "; a".repeat(n));
        assert!(default_answer(&params(MAX_PARAMS)).is_some());
        assert_eq!(default_answer(&params(MAX_PARAMS + 1)), None);

        // Shapes that make backtracking parsers slow are read in one pass.
        for header in [
            format!("permessage-deflate; a=\"{}", "\\\"".repeat(2000)),
            format!("permessage-deflate{}", " ;".repeat(2000)),
            "\t".repeat(MAX_HEADER_LEN),
            format!("permessage-deflate; a={}", "9".repeat(4000)),
        ] {
            let header = &header[..header.len().min(MAX_HEADER_LEN)];
            assert_eq!(default_answer(header), None);
        }
    }

    /// A masked client frame with first byte `first` (FIN, RSV bits, opcode).
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        ws_frame(first & 0x80 != 0, first & 0x7f, payload)
    }

    fn decoder(params: &DeflateParams, limits: Limits) -> FrameDecoder {
        FrameDecoder::with_deflate(limits, Inflater::new(params))
    }

    /// Feeds `pieces` one after the other, collecting results until an error.
    fn decode_pieces(
        decoder: &mut FrameDecoder,
        pieces: &[&[u8]],
    ) -> Vec<Result<Incoming, ProtocolError>> {
        let mut results = Vec::new();
        for piece in pieces {
            decoder.feed(piece);
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

    fn decode(params: &DeflateParams, input: &[u8]) -> Vec<Result<Incoming, ProtocolError>> {
        decode_pieces(&mut decoder(params, Limits::default()), &[input])
    }

    fn text(s: &str) -> Result<Incoming, ProtocolError> {
        Ok(Incoming::Text(s.to_owned()))
    }

    #[test]
    fn rfc7692_payload_vectors_inflate() {
        let params = agreed();
        // Section 7.2.3.1: "Hello" in one frame, then in two.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(decode(&params, &masked(0xc1, &hello)), [text("Hello")]);
        let two = [masked(0x41, &hello[..3]), masked(0x80, &hello[3..])].concat();
        assert_eq!(decode(&params, &two), [text("Hello")]);

        // Section 7.2.3.2: the second "Hello" refers to the first.
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        let input = [masked(0xc1, &hello), masked(0xc1, &second)].concat();
        assert_eq!(decode(&params, &input), [text("Hello"), text("Hello")]);
        // Without the first, the reference points before the stream: this backend reads
        // zeros there rather than refusing it, still within the limits.
        assert_eq!(decode(&params, &masked(0xc1, &second)), [text("H\0\0\0\0")]);

        // Section 7.2.3.3: a stored (uncompressed) block.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(decode(&params, &masked(0xc1, &stored)), [text("Hello")]);

        // Section 7.2.3.4: a final block (BFINAL set); the trailing byte is ignored, and
        // the next message starts a new stream.
        let final_block = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let input = [masked(0xc1, &final_block), masked(0xc1, &hello)].concat();
        assert_eq!(decode(&params, &input), [text("Hello"), text("Hello")]);
        assert_eq!(
            decode(&params, &masked(0xc1, &final_block[..7])),
            [text("Hello")]
        );

        // Section 7.2.3.5: two blocks in one message.
        let two_blocks = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(decode(&params, &masked(0xc1, &two_blocks)), [text("Hello")]);

        // Section 7.2.3.6: an empty message is a single 0x00.
        assert_eq!(decode(&params, &masked(0xc1, &[0x00])), [text("")]);
        // And an empty payload inflates to nothing too.
        assert_eq!(
            decode(&params, &masked(0xc2, &[])),
            [Ok(Incoming::Binary(Bytes::new()))]
        );
    }

    #[test]
    fn deflater_matches_rfc7692_vectors() {
        // At level 6 this backend writes the RFC's exact bytes (sections 7.2.3.1, 7.2.3.2
        // and 7.2.3.6); the default level 1 writes other, equally valid bytes.
        let config = DeflateConfig {
            level: 6,
            ..DeflateConfig::default()
        };
        let mut deflater = Deflater::new(&agreed(), &config);
        let mut out = BytesMut::new();
        encode_compressed_text(&mut out, &mut deflater, "Hello");
        assert_eq!(
            &out[..],
            [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        let mut out = BytesMut::new();
        encode_compressed_text(&mut out, &mut deflater, "Hello");
        assert_eq!(&out[..], [0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
        let mut out = BytesMut::new();
        encode_compressed_binary(&mut out, &mut deflater, b"");
        assert_eq!(&out[..], [0xc2, 0x01, 0x00]);

        // Without context takeover every "Hello" is the first.
        let params = params_of("permessage-deflate; server_no_context_takeover");
        let mut deflater = Deflater::new(&params, &config);
        for _ in 0..3 {
            let mut out = BytesMut::new();
            encode_compressed_text(&mut out, &mut deflater, "Hello");
            assert_eq!(
                &out[..],
                [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
            );
        }
    }

    /// Tiny deterministic generator for test data.
    fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    fn awkward_messages() -> Vec<Vec<u8>> {
        let mut messages = vec![
            Vec::new(),
            vec![0],
            vec![0xff],
            (0..=255).collect(),
            (0..=255).rev().collect(),
            "ünïcödé ✓ 𝄞 ".repeat(100).into_bytes(),
            b"a".repeat(100_000),
            b"[\"hello\",\"hello\",\"hello\"]".to_vec(),
            Vec::new(),
            pseudo_random(1, 1 << 20),
            b"[\"hello\",\"hello\",\"hello\"]".to_vec(),
        ];
        messages.push(messages[9][..70_000].to_vec());
        messages
    }

    /// Compresses every message with a Deflater and reads the frames back with a decoder.
    fn round_trip(header: &str, level: u32) {
        let params = params_of(header);
        let config = DeflateConfig {
            level,
            ..DeflateConfig::default()
        };
        let mut deflater = Deflater::new(&params, &config);
        let limits = Limits {
            max_frame_size: 2 << 20,
            max_message_size: 1 << 20,
        };
        let mut decoder = decoder(&params, limits);
        let mut inflater = Inflater::new(&params);
        for (i, message) in awkward_messages().iter().enumerate() {
            let mut out = BytesMut::new();
            encode_compressed_binary(&mut out, &mut deflater, message);
            assert_eq!(out[0], 0xc2, "message {i}: RSV1 and FIN set");
            // Undo the framing to feed the payload to a lone inflater as well.
            let payload_start = match out[1] {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            assert_eq!(
                inflater
                    .inflate_message(&out[payload_start..], 1 << 20)
                    .as_deref(),
                Ok(&message[..]),
                "message {i} through an inflater"
            );
            let frame = masked(0xc2, &out[payload_start..]);
            assert_eq!(
                decode_pieces(&mut decoder, &[&frame]),
                [Ok(Incoming::Binary(Bytes::from(message.clone())))],
                "message {i} through a decoder ({header}, level {level})"
            );
        }
    }

    #[test]
    fn round_trips_with_context_takeover() {
        round_trip("permessage-deflate", 1);
        round_trip("permessage-deflate", 9);
    }

    #[test]
    fn round_trips_without_context_takeover() {
        round_trip(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            1,
        );
        round_trip("permessage-deflate; server_no_context_takeover", 0);
    }

    #[test]
    fn many_messages_on_one_context() {
        let params = agreed();
        let mut deflater = Deflater::new(&params, &DeflateConfig::default());
        let mut inflater = Inflater::new(&params);
        let mut total_compressed = 0;
        let mut total_plain = 0;
        for i in 0..2000u32 {
            let message = format!("a[\"message number {i} of a long chat\"]");
            let mut out = BytesMut::new();
            assert!(deflater.compress(&[message.as_bytes()], &mut out));
            total_compressed += out.len();
            total_plain += message.len();
            assert_eq!(
                inflater.inflate_message(&out, 1024).as_deref(),
                Ok(message.as_bytes())
            );
        }
        // The shared context pays: repeated text shrinks to a fraction.
        assert!(
            total_compressed * 3 < total_plain,
            "{total_compressed} of {total_plain}"
        );
    }

    #[test]
    fn text_parts_compress_like_the_whole() {
        let params = agreed();
        let mut whole = Deflater::new(&params, &DeflateConfig::default());
        let mut parts = Deflater::new(&params, &DeflateConfig::default());
        let mut inflater = Inflater::new(&params);
        for message in ["a[\"x\",", "", "a[\"hello ✓\",\"more\"]"] {
            let mut a = BytesMut::new();
            encode_compressed_text(&mut a, &mut whole, message);
            let mut b = BytesMut::new();
            let bytes = message.as_bytes();
            let mid = bytes.len() / 2;
            encode_compressed_text_parts(&mut b, &mut parts, &[&bytes[..mid], b"", &bytes[mid..]]);
            let payload = &b[2..];
            assert_eq!(inflater.inflate_message(payload, 100).as_deref(), Ok(bytes));
            assert_eq!(a[0], b[0]);
        }
        // No parts at all is the empty message.
        let mut out = BytesMut::new();
        encode_compressed_text_parts(
            &mut out,
            &mut Deflater::new(&params, &DeflateConfig::default()),
            &[],
        );
        assert_eq!(&out[..], [0xc1, 0x01, 0x00]);
    }

    #[test]
    fn small_messages_stay_uncompressed() {
        let deflater = Deflater::new(&agreed(), &DeflateConfig::default());
        assert!(!deflater.should_compress(63));
        assert!(deflater.should_compress(64));
        let config = DeflateConfig {
            min_message_size: 0,
            ..DeflateConfig::default()
        };
        assert!(Deflater::new(&agreed(), &config).should_compress(0));
        // An uncompressed message between compressed ones leaves the context alone.
        let params = agreed();
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        let input = [
            masked(0xc1, &hello),
            masked(0x81, b"plain"),
            masked(0xc1, &second),
        ]
        .concat();
        assert_eq!(
            decode(&params, &input),
            [text("Hello"), text("plain"), text("Hello")]
        );
    }

    /// A compressed payload that inflates to `mib` MiB of zeros.
    fn bomb(mib: usize) -> Vec<u8> {
        let zeros = vec![0u8; 1 << 20];
        let parts = vec![&zeros[..]; mib];
        let config = DeflateConfig {
            level: 1,
            ..DeflateConfig::default()
        };
        let mut deflater = Deflater::new(&agreed(), &config);
        let mut out = BytesMut::new();
        assert!(deflater.compress(&parts, &mut out));
        out.to_vec()
    }

    #[test]
    fn decompression_bomb_stops_at_the_limit() {
        let limit = 1 << 20;
        // A few KiB that inflate to 1 MiB, four times a 256 KiB limit.
        let small = bomb(1);
        assert!(small.len() < 8 * 1024, "{} bytes", small.len());
        let mut inflater = Inflater::new(&agreed());
        let mut out = Vec::new();
        assert_eq!(
            inflater.inflate(&small, &mut out, limit / 4),
            Err(frame::MESSAGE_TOO_BIG)
        );
        assert!(
            out.capacity() <= limit / 4 + 1,
            "capacity {}",
            out.capacity()
        );
        assert_eq!(frame::MESSAGE_TOO_BIG.code, 1009);

        // Through the decoder: compressed zeros that would inflate to 256 MiB, fragmented,
        // refused with 1009 without growing past the limit.
        let big = bomb(256);
        let limits = Limits {
            max_frame_size: 64 * 1024,
            max_message_size: limit,
        };
        let mut decoder = decoder(&agreed(), limits);
        let mut chunks = big.chunks(60 * 1024);
        let first = chunks.next().unwrap();
        let mut input = masked(0x42, first);
        for chunk in chunks {
            input.extend(masked(0x00, chunk));
        }
        input.extend(masked(0x80, &[]));
        let mut peak = 0;
        let mut result = None;
        for piece in input.chunks(4096) {
            decoder.feed(piece);
            match decoder.next() {
                Ok(None) => peak = peak.max(decoder.message_capacity()),
                other => {
                    result = Some(other);
                    break;
                }
            }
        }
        assert_eq!(result, Some(Err(frame::MESSAGE_TOO_BIG)));
        assert!(
            decoder.inflater().is_none(),
            "the state is freed after an error"
        );
        assert!(peak <= limit + 1, "peak capacity {peak}");
        assert_eq!(decoder.message_capacity(), 0);
    }

    #[test]
    fn a_message_exactly_at_the_limit_passes() {
        let params = agreed();
        let mut deflater = Deflater::new(&params, &DeflateConfig::default());
        let limits = Limits {
            max_frame_size: 1 << 20,
            max_message_size: 1000,
        };
        for (len, ok) in [(1000, true), (1001, false)] {
            let message = pseudo_random(len as u64, len);
            let mut out = BytesMut::new();
            assert!(deflater.compress(&[&message], &mut out));
            let results = decode_pieces(&mut decoder(&params, limits), &[&masked(0xc2, &out)]);
            if ok {
                assert_eq!(results, [Ok(Incoming::Binary(Bytes::from(message)))]);
            } else {
                assert_eq!(results, [Err(frame::MESSAGE_TOO_BIG)]);
            }
        }
        // Random bytes grow a little when compressed: still within the compressed bound.
        assert!(deflater.should_compress(1000));
    }

    #[test]
    fn compressed_bytes_are_bounded_too() {
        // Empty stored blocks inflate to nothing; a client may not send them forever.
        let params = agreed();
        let limits = Limits {
            max_frame_size: 1000,
            max_message_size: 1000,
        };
        let empty_blocks: Vec<u8> = TRAILER.iter().copied().cycle().take(1000).collect();
        let mut decoder = decoder(&params, limits);
        let mut input = masked(0x42, &[0x00]);
        for _ in 0..2 {
            input.extend(masked(0x00, &empty_blocks));
        }
        assert_eq!(
            decode_pieces(&mut decoder, &[&input]),
            [Err(frame::MESSAGE_TOO_BIG)]
        );
    }

    #[test]
    fn invalid_compressed_data_and_utf8() {
        let params = agreed();
        // BTYPE 11 is reserved.
        assert_eq!(
            decode(&params, &masked(0xc1, &[0xff, 0xff])),
            [Err(CORRUPT)]
        );
        assert_eq!(CORRUPT.code, 1007);
        // Text that inflates to invalid UTF-8: 1007.
        let mut deflater = Deflater::new(&params, &DeflateConfig::default());
        let mut out = BytesMut::new();
        assert!(deflater.compress(&[&[b'a', 0xff, b'b']], &mut out));
        let results = decode(&params, &masked(0xc1, &out));
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].as_ref().unwrap_err().code, 1007);
        // The same bytes as binary are fine.
        assert_eq!(
            decode(&params, &masked(0xc2, &out)),
            [Ok(Incoming::Binary(Bytes::from_static(&[
                b'a', 0xff, b'b'
            ])))]
        );
    }

    #[test]
    fn decoder_reports_the_inflater_state() {
        let hello = masked(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        let mut keeps = decoder(&agreed(), Limits::default());
        assert_eq!(keeps.inflater().map(Inflater::memory), Some(0));
        assert_eq!(decode_pieces(&mut keeps, &[&hello]), [text("Hello")]);
        assert_eq!(
            keeps.inflater().map(Inflater::memory),
            Some(INFLATER_MEMORY)
        );

        let params = params_of("permessage-deflate; client_no_context_takeover");
        let mut frees = decoder(&params, Limits::default());
        assert_eq!(
            decode_pieces(&mut frees, &[&hello, &hello]),
            [text("Hello"), text("Hello")]
        );
        assert_eq!(frees.inflater().map(Inflater::memory), Some(0));
        assert!(FrameDecoder::new(Limits::default()).inflater().is_none());
    }

    #[test]
    fn rsv1_rules() {
        let params = agreed();
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let protocol = |results: Vec<Result<Incoming, ProtocolError>>| match results.last() {
            Some(Err(e)) => e.code,
            other => panic!("expected an error, got {other:?}"),
        };
        // RSV1 on a continuation frame.
        let input = [masked(0x41, &hello[..3]), masked(0xc0, &hello[3..])].concat();
        assert_eq!(decode(&params, &input), [Err(RSV1_CONTINUATION)]);
        assert_eq!(protocol(decode(&params, &input)), 1002);
        // RSV1 on control frames, between fragments or alone.
        for control in [0xc9, 0xca, 0xc8] {
            assert_eq!(decode(&params, &masked(control, b"")), [Err(RSV1_CONTROL)]);
            let input = [masked(0x41, &hello[..3]), masked(control, b"")].concat();
            assert_eq!(protocol(decode(&params, &input)), 1002);
        }
        // RSV2 and RSV3 stay errors.
        for first in [0xa1, 0x91, 0xe1, 0xf1] {
            assert_eq!(decode(&params, &masked(first, &hello)), [Err(RSV_BITS)]);
        }
        // Without deflate, RSV1 is an error as it always was.
        let mut plain = FrameDecoder::new(Limits::default());
        assert_eq!(
            decode_pieces(&mut plain, &[&masked(0xc1, &hello)]),
            [Err(RSV_BITS)]
        );
        // Control frames between compressed fragments come first, uncompressed.
        let input = [
            masked(0x41, &hello[..3]),
            masked(0x89, b"ping"),
            masked(0x80, &hello[3..]),
        ]
        .concat();
        assert_eq!(
            decode(&params, &input),
            [
                Ok(Incoming::Ping(Bytes::from_static(b"ping"))),
                text("Hello")
            ]
        );
        // A plain message fragmented after a compressed one, and vice versa.
        let input = [
            masked(0xc1, &hello),
            masked(0x01, b"He"),
            masked(0x80, b"llo"),
        ]
        .concat();
        assert_eq!(decode(&params, &input), [text("Hello"), text("Hello")]);
    }

    /// Client bytes with compressed and plain messages, fragments, control frames between
    /// fragments, and what they decode to.
    fn mixed_stream() -> (Vec<u8>, Vec<Result<Incoming, ProtocolError>>) {
        let params = agreed();
        let mut deflater = Deflater::new(&params, &DeflateConfig::default());
        let mut input = Vec::new();
        let mut expected = Vec::new();
        let messages = [
            "Hello".to_owned(),
            "Hello".to_owned(),
            String::new(),
            "ünïcödé ✓ 𝄞".repeat(20),
            "a[\"x\"]".to_owned(),
        ];
        for (i, message) in messages.iter().enumerate() {
            let mut out = BytesMut::new();
            assert!(deflater.compress(&[message.as_bytes()], &mut out));
            // Cut into 1 to 3 fragments, with a ping between the first two.
            let cuts = [out.len() / 3, out.len() * 2 / 3];
            let pieces: Vec<&[u8]> = match i % 3 {
                0 => vec![&out[..]],
                1 => vec![&out[..cuts[0]], &out[cuts[0]..]],
                _ => vec![&out[..cuts[0]], &out[cuts[0]..cuts[1]], &out[cuts[1]..]],
            };
            for (j, piece) in pieces.iter().enumerate() {
                let fin = if j == pieces.len() - 1 { 0x80 } else { 0 };
                let first = if j == 0 { 0x41 } else { 0x00 };
                input.extend(masked(fin | first, piece));
                if j == 0 && pieces.len() > 1 {
                    input.extend(masked(0x89, b"p"));
                    expected.push(Ok(Incoming::Ping(Bytes::from_static(b"p"))));
                }
            }
            expected.push(text(message));
            input.extend(masked(0x81, b"plain"));
            expected.push(text("plain"));
        }
        input.extend(masked(0x88, &1000u16.to_be_bytes()));
        expected.push(Ok(Incoming::Close(Some((1000, String::new())))));
        (input, expected)
    }

    #[test]
    fn split_at_every_byte_decodes_the_same() {
        let params = agreed();
        let (input, expected) = mixed_stream();
        assert_eq!(decode(&params, &input), expected);
        for cut in 0..=input.len() {
            let results = decode_pieces(
                &mut decoder(&params, Limits::default()),
                &[&input[..cut], &input[cut..]],
            );
            assert_eq!(results, expected, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            decode_pieces(&mut decoder(&params, Limits::default()), &bytes),
            expected
        );
    }

    #[test]
    fn inflater_capacity_never_passes_the_limit() {
        // Whatever the limit and the data, output capacity stays within limit + 1.
        let params = agreed();
        let data = [b"a".repeat(50_000), pseudo_random(7, 50_000)].concat();
        let mut deflater = Deflater::new(&params, &DeflateConfig::default());
        let mut compressed = BytesMut::new();
        assert!(deflater.compress(&[&data], &mut compressed));
        for limit in [0, 1, 1023, 1024, 1025, 4096, 99_999, 100_000, 100_001] {
            let mut inflater = Inflater::new(&params);
            let mut out = Vec::new();
            let result = inflater
                .inflate(&compressed, &mut out, limit)
                .and_then(|()| inflater.finish(&mut out, limit));
            assert!(
                out.capacity() <= limit + 1,
                "limit {limit}: {}",
                out.capacity()
            );
            assert_eq!(result.is_ok(), limit >= data.len(), "limit {limit}");
            if result.is_ok() {
                assert_eq!(out, data);
            }
        }
    }

    /// A message a client sends: text or binary, compressed or not, cut into fragments.
    #[derive(Debug, Clone)]
    struct Sent {
        text: bool,
        compressed: bool,
        data: Vec<u8>,
        cuts: Vec<usize>,
    }

    fn sent() -> impl Strategy<Value = Sent> {
        (
            any::<bool>(),
            any::<bool>(),
            prop_oneof![
                ".{0,40}".prop_map(String::into_bytes),
                prop::collection::vec(any::<u8>(), 0..400),
                (0usize..2000).prop_map(|n| b"ab".repeat(n)),
            ],
            prop::collection::vec(0usize..400, 0..3),
        )
            .prop_map(|(text, compressed, data, cuts)| Sent {
                text: text && std::str::from_utf8(&data).is_ok(),
                compressed,
                data,
                cuts,
            })
    }

    /// Client bytes for `messages` with a ping after every first fragment, on `params`.
    fn client_bytes(
        params: &DeflateParams,
        messages: &[Sent],
    ) -> (Vec<u8>, Vec<Result<Incoming, ProtocolError>>) {
        let mut deflater = Deflater::new(params, &DeflateConfig::default());
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for message in messages {
            let mut compressed = BytesMut::new();
            let payload: &[u8] = if message.compressed {
                assert!(deflater.compress(&[&message.data], &mut compressed));
                &compressed
            } else {
                &message.data
            };
            let mut cuts: Vec<usize> = message.cuts.iter().map(|&c| c.min(payload.len())).collect();
            cuts.sort_unstable();
            cuts.push(payload.len());
            let mut start = 0;
            for (i, &cut) in cuts.iter().enumerate() {
                let mut first = if i == cuts.len() - 1 { 0x80 } else { 0 };
                if i == 0 {
                    first |= if message.text { 0x01 } else { 0x02 };
                    if message.compressed {
                        first |= 0x40;
                    }
                }
                input.extend(masked(first, &payload[start..cut]));
                start = cut;
                if i == 0 && cuts.len() > 1 {
                    input.extend(masked(0x89, b"p"));
                    expected.push(Ok(Incoming::Ping(Bytes::from_static(b"p"))));
                }
            }
            expected.push(Ok(if message.text {
                Incoming::Text(String::from_utf8(message.data.clone()).unwrap())
            } else {
                Incoming::Binary(Bytes::from(message.data.clone()))
            }));
        }
        (input, expected)
    }

    proptest! {
        #[test]
        fn any_split_decodes_compressed_traffic(
            messages in prop::collection::vec(sent(), 0..8),
            server_nct in any::<bool>(),
            client_nct in any::<bool>(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let params = DeflateParams {
                server_no_context_takeover: server_nct,
                client_no_context_takeover: client_nct,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            };
            // The client compresses as our Deflater does: both sides reset alike.
            let client = DeflateParams { server_no_context_takeover: client_nct, ..params };
            let (input, expected) = client_bytes(&client, &messages);
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([input.len()]) {
                pieces.push(&input[start..cut]);
                start = cut;
            }
            prop_assert_eq!(&decode(&params, &input), &expected);
            prop_assert_eq!(
                &decode_pieces(&mut decoder(&params, Limits::default()), &pieces),
                &expected
            );
        }

        #[test]
        fn any_split_gives_the_same_results_on_corrupted_compressed_input(
            messages in prop::collection::vec(sent(), 0..5),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in any::<prop::sample::Index>(),
            max_message_size in 0usize..600,
        ) {
            let params = agreed();
            let (mut input, _) = client_bytes(&params, &messages);
            if !input.is_empty() {
                for (at, xor) in &flips {
                    let at = at.index(input.len());
                    input[at] ^= xor;
                }
            }
            let limits = Limits { max_frame_size: 4096, max_message_size };
            let cut = cut.index(input.len() + 1);
            let whole = decode_pieces(&mut decoder(&params, limits), &[&input]);
            let split = decode_pieces(&mut decoder(&params, limits), &[&input[..cut], &input[cut..]]);
            prop_assert_eq!(&whole, &split);
            for result in &whole {
                match result {
                    Ok(Incoming::Text(t)) => prop_assert!(t.len() <= max_message_size),
                    Ok(Incoming::Binary(b)) => prop_assert!(b.len() <= max_message_size),
                    _ => {}
                }
            }
        }
    }
}
