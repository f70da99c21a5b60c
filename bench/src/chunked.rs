//! Incremental decoding of an HTTP/1.1 response body: by `Content-Length`, chunked, or up to
//! the end of the connection.
//!
//! The decoder holds no buffer of its own: the caller passes whatever bytes it has, the
//! decoder appends body bytes to `out` and says how many input bytes it consumed. Chunk size
//! lines and trailers are bounded; anything malformed is a [`BodyError`].

use std::fmt;

const MAX_LINE: usize = 4096;

/// A malformed or truncated body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(pub &'static str);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad response body: {}", self.0)
    }
}

impl std::error::Error for BodyError {}

/// Where the decoder stands within the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDecoder {
    /// This many body bytes are still to come.
    Length(u64),
    /// A chunked body, at the given point of its framing.
    Chunked(ChunkState),
    /// The body ends when the connection does.
    UntilClose,
    /// The body is complete.
    Done,
}

/// A point within chunked framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkState {
    /// Expecting a chunk size line.
    Size,
    /// Inside a chunk's data with this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line.
    Trailer,
}

impl BodyDecoder {
    /// A decoder for a chunked body.
    pub fn chunked() -> Self {
        BodyDecoder::Chunked(ChunkState::Size)
    }

    /// A decoder for a body of exactly `len` bytes.
    pub fn length(len: u64) -> Self {
        if len == 0 {
            BodyDecoder::Done
        } else {
            BodyDecoder::Length(len)
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        *self == BodyDecoder::Done
    }

    /// Decodes what it can of `input`, appending body bytes to `out`; returns the number of
    /// input bytes consumed. Bytes after the end of the body are left unconsumed.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, BodyError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self {
                BodyDecoder::Done => return Ok(pos),
                BodyDecoder::UntilClose => {
                    out.extend_from_slice(rest);
                    return Ok(input.len());
                }
                BodyDecoder::Length(left) => {
                    let take = (*left).min(rest.len() as u64) as usize;
                    out.extend_from_slice(&rest[..take]);
                    pos += take;
                    *left -= take as u64;
                    if *left == 0 {
                        *self = BodyDecoder::Done;
                    }
                    return Ok(pos);
                }
                BodyDecoder::Chunked(state) => match *state {
                    ChunkState::Size => {
                        let Some(line) = take_line(rest)? else {
                            return Ok(pos);
                        };
                        pos += line.len() + 2;
                        let size = parse_chunk_size(line)?;
                        *state = if size == 0 {
                            ChunkState::Trailer
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    ChunkState::Data(left) => {
                        let take = left.min(rest.len() as u64) as usize;
                        if take == 0 {
                            return Ok(pos);
                        }
                        out.extend_from_slice(&rest[..take]);
                        pos += take;
                        *state = if left == take as u64 {
                            ChunkState::DataEnd
                        } else {
                            ChunkState::Data(left - take as u64)
                        };
                    }
                    ChunkState::DataEnd => {
                        if rest.len() < 2 {
                            return Ok(pos);
                        }
                        if &rest[..2] != b"\r\n" {
                            return Err(BodyError("chunk data not followed by CRLF"));
                        }
                        pos += 2;
                        *state = ChunkState::Size;
                    }
                    ChunkState::Trailer => {
                        let Some(line) = take_line(rest)? else {
                            return Ok(pos);
                        };
                        pos += line.len() + 2;
                        if line.is_empty() {
                            *self = BodyDecoder::Done;
                        }
                    }
                },
            }
        }
    }

    /// Tells the decoder the connection has ended: fine for a body that ends with the
    /// connection, an error for any other unfinished body.
    pub fn finish_at_eof(&mut self) -> Result<(), BodyError> {
        match self {
            BodyDecoder::Done => Ok(()),
            BodyDecoder::UntilClose => {
                *self = BodyDecoder::Done;
                Ok(())
            }
            _ => Err(BodyError("connection closed inside the body")),
        }
    }
}

/// The line before the first CRLF in `input`, `None` if there is no CRLF yet.
fn take_line(input: &[u8]) -> Result<Option<&[u8]>, BodyError> {
    match input.windows(2).position(|w| w == b"\r\n") {
        Some(end) if end <= MAX_LINE => Ok(Some(&input[..end])),
        Some(_) => Err(BodyError("chunk framing line too long")),
        None if input.len() > MAX_LINE => Err(BodyError("chunk framing line too long")),
        None => Ok(None),
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or(&[]);
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 12 {
        return Err(BodyError("bad chunk size"));
    }
    let mut size = 0u64;
    for &d in digits {
        let v = (d as char)
            .to_digit(16)
            .ok_or(BodyError("bad chunk size"))?;
        size = size * 16 + u64::from(v);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nNEXT";

    fn decode_split(input: &[u8], step: usize) -> (Vec<u8>, usize) {
        let mut d = BodyDecoder::chunked();
        let mut out = Vec::new();
        let mut pending = Vec::new();
        let mut consumed_total = 0;
        for piece in input.chunks(step) {
            pending.extend_from_slice(piece);
            let n = d.decode(&pending, &mut out).unwrap();
            consumed_total += n;
            pending.drain(..n);
            if d.is_done() {
                break;
            }
        }
        assert!(d.is_done());
        (out, consumed_total)
    }

    #[test]
    fn chunked_body_decodes_the_same_however_it_is_split() {
        for step in [1, 2, 3, 7, BODY.len()] {
            let (out, consumed) = decode_split(BODY, step);
            assert_eq!(out, b"hello 0123456789", "step {step}");
            assert_eq!(consumed, BODY.len() - 4, "step {step}");
        }
    }

    #[test]
    fn length_body_stops_at_its_end() {
        let mut d = BodyDecoder::length(5);
        let mut out = Vec::new();
        assert_eq!(d.decode(b"abc", &mut out).unwrap(), 3);
        assert!(!d.is_done());
        assert_eq!(d.decode(b"deHTTP", &mut out).unwrap(), 2);
        assert!(d.is_done());
        assert_eq!(out, b"abcde");
        assert!(BodyDecoder::length(0).is_done());
    }

    #[test]
    fn malformed_chunks_are_errors() {
        let mut out = Vec::new();
        for bad in [&b"zz\r\n"[..], b"3\r\nabcX\r\n", b"1234567890abc\r\n"] {
            assert!(
                BodyDecoder::chunked().decode(bad, &mut out).is_err(),
                "{bad:?}"
            );
        }
        let long = vec![b'1'; MAX_LINE + 1];
        assert!(BodyDecoder::chunked().decode(&long, &mut out).is_err());
        assert!(BodyDecoder::chunked().finish_at_eof().is_err());
        let mut until_close = BodyDecoder::UntilClose;
        assert!(until_close.finish_at_eof().is_ok());
        assert!(until_close.is_done());
    }
}
