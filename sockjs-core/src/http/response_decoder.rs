//! Incremental HTTP/1.x response decoding, for clients.
//!
//! Bytes go in with [`ResponseDecoder::feed`]; [`ResponseDecoder::next`] hands out the head,
//! then the body as it arrives (framed by `Content-Length`, chunked, or running to the end of
//! the connection), then its end; a keep-alive connection's next response follows. Body bytes
//! are passed on as soon as they are fed, never collected, so memory stays at the largest
//! feed plus one head (at most `max_head` bytes) or one chunk-size line (at most 4096 bytes).
//! Any split of the input yields the same parts.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::request::{Header, parse_chunk_size};

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;
/// Most header lines accepted in one head.
const MAX_HEADERS: usize = 64;

/// Why a response could not be read: the connection cannot be used further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseError(pub &'static str);

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed HTTP response: {}", self.0)
    }
}

impl std::error::Error for ResponseError {}

/// A response's status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<Header>,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
}

impl ResponseHead {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| &h.value[..])
    }
}

/// One part of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponsePart {
    /// The head. After a 101 nothing more is decoded: the rest of the connection's bytes
    /// belong to the upgraded protocol ([`ResponseDecoder::take_remaining`]).
    Head(ResponseHead),
    /// Some of the body, in order.
    Body(Bytes),
    /// The body is complete.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailer,
    UntilClose,
    /// A 101 was decoded, or an error: nothing more.
    Stopped,
}

/// Decodes the responses on one client connection; see the module docs.
#[derive(Debug)]
pub struct ResponseDecoder {
    buf: BytesMut,
    state: State,
    max_head: usize,
    /// The request the next response answers was a HEAD (no body whatever the headers say).
    head_request: bool,
}

impl ResponseDecoder {
    /// A decoder that refuses a head over `max_head` bytes.
    pub fn new(max_head: usize) -> Self {
        ResponseDecoder {
            buf: BytesMut::new(),
            state: State::Head,
            max_head,
            head_request: false,
        }
    }

    /// Appends bytes received; call [`next`](Self::next) after.
    pub fn feed(&mut self, data: &[u8]) {
        if self.state != State::Stopped {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes fed and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the decoder is between responses (nothing of the next one decoded yet).
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && self.buf.is_empty()
    }

    /// The bytes after a 101 head: the start of the upgraded protocol.
    pub fn take_remaining(&mut self) -> BytesMut {
        std::mem::take(&mut self.buf)
    }

    /// The next part of the response; `Ok(None)` when more bytes are needed.
    #[expect(
        clippy::should_implement_trait,
        reason = "not an iterator: None means feed more bytes, not the end"
    )]
    pub fn next(&mut self) -> Result<Option<ResponsePart>, ResponseError> {
        let result = self.decode();
        if result.is_err() {
            self.state = State::Stopped;
            self.buf = BytesMut::new();
        }
        result
    }

    /// The connection ended: the end of a body that runs to it, `None` between responses,
    /// and an error inside any other response.
    pub fn finish(&mut self) -> Result<Option<ResponsePart>, ResponseError> {
        match self.state {
            State::UntilClose => {
                self.state = State::Stopped;
                Ok(Some(ResponsePart::End))
            }
            State::Head if self.buf.is_empty() => Ok(None),
            State::Stopped => Ok(None),
            _ => {
                self.state = State::Stopped;
                Err(ResponseError("connection closed inside a response"))
            }
        }
    }

    fn decode(&mut self) -> Result<Option<ResponsePart>, ResponseError> {
        loop {
            match self.state {
                State::Stopped => return Ok(None),
                State::Head => return self.head(),
                State::Length(0) => {
                    self.state = State::Head;
                    return Ok(Some(ResponsePart::End));
                }
                State::Length(left) => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let take = left.min(self.buf.len() as u64) as usize;
                    self.state = State::Length(left - take as u64);
                    return Ok(Some(ResponsePart::Body(self.buf.split_to(take).freeze())));
                }
                State::UntilClose => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    return Ok(Some(ResponsePart::Body(self.buf.split().freeze())));
                }
                State::ChunkSize => {
                    let Some(line) = self.line()? else {
                        return Ok(None);
                    };
                    let size = parse_chunk_size(&line)
                        .map_err(|_| ResponseError("bad chunk size line"))?;
                    self.state = match size {
                        0 => State::Trailer,
                        n => State::ChunkData(n as u64),
                    };
                }
                State::ChunkData(left) => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let take = left.min(self.buf.len() as u64) as usize;
                    let data = self.buf.split_to(take).freeze();
                    self.state = match left - take as u64 {
                        0 => State::ChunkDataEnd,
                        n => State::ChunkData(n),
                    };
                    return Ok(Some(ResponsePart::Body(data)));
                }
                State::ChunkDataEnd => {
                    if self.buf.len() < 2 {
                        return Ok(None);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(ResponseError("chunk data not followed by CRLF"));
                    }
                    self.buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailer => {
                    let Some(line) = self.line()? else {
                        return Ok(None);
                    };
                    if line.is_empty() {
                        self.state = State::Head;
                        return Ok(Some(ResponsePart::End));
                    }
                }
            }
        }
    }

    /// A CRLF-terminated line (without the CRLF), bounded by [`MAX_LINE`].
    fn line(&mut self) -> Result<Option<Bytes>, ResponseError> {
        match self.buf.windows(2).position(|w| w == b"\r\n") {
            Some(end) if end <= MAX_LINE => {
                let line = self.buf.split_to(end).freeze();
                self.buf.advance(2);
                Ok(Some(line))
            }
            None if self.buf.len() <= MAX_LINE => Ok(None),
            _ => Err(ResponseError("chunk framing line too long")),
        }
    }

    fn head(&mut self) -> Result<Option<ResponsePart>, ResponseError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) if len <= self.max_head => len,
            Ok(httparse::Status::Partial) if self.buf.len() <= self.max_head => return Ok(None),
            Ok(_) => return Err(ResponseError("head too large")),
            Err(httparse::Error::TooManyHeaders) => return Err(ResponseError("too many headers")),
            Err(_) => return Err(ResponseError("bad status line or header")),
        };
        let status = resp.code.unwrap_or(0);
        let mut keep_alive = resp.version == Some(1);
        let mut chunked = false;
        let mut length: Option<u64> = None;
        let mut out = Vec::with_capacity(resp.headers.len());
        for h in resp.headers.iter() {
            let value = h.value.trim_ascii();
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or(ResponseError("bad Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(ResponseError("conflicting Content-Length"));
                }
                length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if !value.eq_ignore_ascii_case(b"chunked") || chunked {
                    return Err(ResponseError("unsupported Transfer-Encoding"));
                }
                chunked = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                if super::request::has_token(value, "close") {
                    keep_alive = false;
                } else if super::request::has_token(value, "keep-alive") {
                    keep_alive = true;
                }
            }
            out.push(Header {
                name: Bytes::copy_from_slice(h.name.as_bytes()),
                value: Bytes::copy_from_slice(value),
            });
        }
        self.buf.advance(len);
        let no_body = (100..200).contains(&status) || status == 204 || status == 304;
        self.state = if status == 101 {
            State::Stopped
        } else if no_body || std::mem::take(&mut self.head_request) {
            State::Length(0)
        } else if chunked {
            State::ChunkSize
        } else if let Some(n) = length {
            State::Length(n)
        } else {
            keep_alive = false;
            State::UntilClose
        };
        if (100..200).contains(&status) && status != 101 {
            // An interim answer: the real one follows.
            self.state = State::Head;
        }
        Ok(Some(ResponsePart::Head(ResponseHead {
            status,
            headers: out,
            keep_alive,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(input: &[u8], step: usize) -> Result<Vec<ResponsePart>, ResponseError> {
        let mut d = ResponseDecoder::new(1024);
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            d.feed(piece);
            while let Some(p) = d.next()? {
                out.push(p);
            }
        }
        if let Some(p) = d.finish()? {
            out.push(p);
        }
        // Body pieces depend on the split: join them.
        let mut joined: Vec<ResponsePart> = Vec::new();
        for p in out {
            match (joined.last_mut(), p) {
                (Some(ResponsePart::Body(a)), ResponsePart::Body(b)) => {
                    let mut v = a.to_vec();
                    v.extend_from_slice(&b);
                    *a = Bytes::from(v);
                }
                (_, p) => joined.push(p),
            }
        }
        Ok(joined)
    }

    fn body(b: &[u8]) -> ResponsePart {
        ResponsePart::Body(Bytes::copy_from_slice(b))
    }

    #[test]
    fn keep_alive_responses_in_sequence_however_split() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\no\n\nHTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhh\r\n3;x=\"y\"\r\na[]\r\n0\r\nT: 1\r\n\r\n\
HTTP/1.0 200 OK\r\n\r\nrest";
        for step in [1, 2, 5, input.len()] {
            let got = parts(input, step).unwrap();
            let statuses: Vec<_> = got
                .iter()
                .filter_map(|p| match p {
                    ResponsePart::Head(h) => Some((h.status, h.keep_alive)),
                    _ => None,
                })
                .collect();
            assert_eq!(
                statuses,
                [(200, true), (204, true), (200, true), (200, false)]
            );
            let rest: Vec<_> = got
                .into_iter()
                .filter(|p| !matches!(p, ResponsePart::Head(_)))
                .collect();
            assert_eq!(
                rest,
                [
                    body(b"o\n\n"),
                    ResponsePart::End,
                    ResponsePart::End,
                    body(b"hha[]"),
                    ResponsePart::End,
                    body(b"rest"),
                    ResponsePart::End
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn upgrade_leaves_the_rest() {
        let mut d = ResponseDecoder::new(1024);
        d.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x01o");
        let Some(ResponsePart::Head(h)) = d.next().unwrap() else {
            panic!("no head")
        };
        assert_eq!(h.status, 101);
        assert_eq!(h.header("upgrade"), Some(&b"websocket"[..]));
        assert_eq!(d.next(), Ok(None));
        assert_eq!(&d.take_remaining()[..], b"\x81\x01o");
    }

    #[test]
    fn malformed_responses_are_errors() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            b"NOPE\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n",
        ] {
            assert!(parts(bad, 3).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut d = ResponseDecoder::new(16);
        d.feed(b"HTTP/1.1 200 OK\r\nX: aaaaaaaaaaaaaaaaaaa");
        assert!(d.next().is_err());
        let mut d = ResponseDecoder::new(1024);
        d.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        d.feed(&[b'1'; MAX_LINE + 1]);
        assert!(matches!(d.next(), Ok(Some(ResponsePart::Head(_)))));
        assert!(d.next().is_err());
        assert_eq!(d.next(), Ok(None), "stopped after an error");
    }
}
