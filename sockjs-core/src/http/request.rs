//! Incremental HTTP/1.x request decoding.
//!
//! Bytes go in with [`RequestDecoder::feed`], complete requests come out of
//! [`RequestDecoder::decode`]. Any split of the input yields the same requests: the decoder
//! only looks at what it has buffered, and it looks for the end of a head with a linear scan
//! that resumes where the previous one stopped, so a client sending one byte at a time costs
//! no more than one sending everything at once.

use bytes::{Buf, Bytes, BytesMut};

use super::HttpError;

/// The most header lines one request may carry, whatever the configuration says.
pub const MAX_HEADERS_CAP: usize = 256;

/// Bounds applied while decoding requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Largest request head (request line and headers), in bytes; larger gets 431.
    pub max_head_size: usize,
    /// Most header lines; more gets 431. Capped at [`MAX_HEADERS_CAP`].
    pub max_headers: usize,
    /// Largest request body, in bytes; larger gets 413.
    pub max_body_size: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_head_size: 16 * 1024,
            max_headers: 64,
            max_body_size: 4 * 1024 * 1024,
        }
    }
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: no chunked encoding, connection closes unless asked to stay.
    Http10,
    /// HTTP/1.1: persistent connections and chunked encoding.
    Http11,
}

/// The request method, as far as SockJS cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `OPTIONS`
    Options,
    /// Any other method (answered 405 or 404).
    Other(Bytes),
}

impl Method {
    /// The method named `m` (case-sensitive, as HTTP methods are).
    pub fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"POST" => Method::Post,
            b"OPTIONS" => Method::Options,
            other => Method::Other(Bytes::copy_from_slice(other)),
        }
    }

    /// The method as it appeared on the request line.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Options => "OPTIONS",
            Method::Other(b) => std::str::from_utf8(b).unwrap_or("?"),
        }
    }
}

/// One request header; the name keeps the case the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name as sent.
    pub name: Bytes,
    /// Header value, without surrounding whitespace.
    pub value: Bytes,
}

/// A complete request: head and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target as sent (path and query), made origin-form if it was absolute-form.
    pub target: Bytes,
    /// The protocol version.
    pub version: Version,
    /// The headers, in order.
    pub headers: Vec<Header>,
    /// The body, de-chunked.
    pub body: Bytes,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
}

impl Request {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| &h.value[..])
    }

    /// Every `name` header's value, in order (ASCII case-insensitive).
    pub fn header_values<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| &h.value[..])
    }

    /// Whether any `name` header holds `token` in its comma-separated list (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .any(|h| has_token(&h.value, token))
    }

    /// The path part of the target (before `?`).
    pub fn path(&self) -> &[u8] {
        let t = &self.target[..];
        match t.iter().position(|&b| b == b'?') {
            Some(i) => &t[..i],
            None => t,
        }
    }

    /// The query part of the target (after `?`), empty if none.
    pub fn query(&self) -> &[u8] {
        let t = &self.target[..];
        match t.iter().position(|&b| b == b'?') {
            Some(i) => &t[i + 1..],
            None => &[],
        }
    }
}

/// Whether a comma-separated header value holds `token` (ASCII case-insensitive).
pub fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

#[derive(Debug)]
enum State {
    Head,
    Body {
        head: Head,
        remaining: usize,
    },
    Chunked {
        head: Head,
        chunk: ChunkState,
        body: BytesMut,
    },
    Failed(HttpError),
}

#[derive(Debug)]
struct Head {
    method: Method,
    target: Bytes,
    version: Version,
    headers: Vec<Header>,
    keep_alive: bool,
    expect_continue: bool,
}

#[derive(Debug, Clone, Copy)]
enum ChunkState {
    /// Reading a chunk-size line; `seen` bytes of it consumed so far.
    Size { seen: usize },
    /// Reading chunk data.
    Data { remaining: usize },
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading trailer lines; `seen` bytes consumed so far.
    Trailer { seen: usize },
}

const MAX_CHUNK_LINE: usize = 1024;

/// An incremental request decoder for one connection.
#[derive(Debug)]
pub struct RequestDecoder {
    buf: BytesMut,
    limits: DecoderLimits,
    state: State,
    /// How far into `buf` the search for the end of the head has looked.
    scanned: usize,
    /// Whether the current request asked for `100 Continue` and has not been told yet.
    continue_pending: bool,
}

impl RequestDecoder {
    /// A decoder with the given bounds.
    pub fn new(limits: DecoderLimits) -> Self {
        RequestDecoder {
            buf: BytesMut::new(),
            limits,
            state: State::Head,
            scanned: 0,
            continue_pending: false,
        }
    }

    /// Appends bytes read from the connection.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as part of a request.
    pub fn buffered(&self) -> usize {
        self.buf.len()
            + match &self.state {
                State::Chunked { body, .. } => body.len(),
                _ => 0,
            }
    }

    /// Whether part of a request has arrived but not all of it.
    pub fn in_request(&self) -> bool {
        !matches!(self.state, State::Head) || self.buf.iter().any(|b| !b.is_ascii_whitespace())
    }

    /// Whether the head being decoded asked for `100 Continue` and has not been told yet;
    /// reading it clears it, so the caller answers once.
    pub fn take_continue(&mut self) -> bool {
        std::mem::take(&mut self.continue_pending)
    }

    /// Takes every byte still buffered (for a connection switching protocols).
    pub fn take_remaining(&mut self) -> BytesMut {
        self.scanned = 0;
        std::mem::take(&mut self.buf)
    }

    /// Returns the next complete request, `Ok(None)` if more bytes are needed, or the error
    /// that ends this connection (the decoder keeps returning it).
    pub fn decode(&mut self) -> Result<Option<Request>, HttpError> {
        loop {
            match &mut self.state {
                State::Failed(e) => return Err(*e),
                State::Head => match self.decode_head() {
                    Ok(None) => return Ok(None),
                    Ok(Some(())) => {}
                    Err(e) => {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                },
                State::Body { remaining, .. } => {
                    if self.buf.len() < *remaining {
                        return Ok(None);
                    }
                    let n = *remaining;
                    let State::Body { head, .. } = std::mem::replace(&mut self.state, State::Head)
                    else {
                        unreachable!("matched Body above")
                    };
                    let body = self.buf.split_to(n).freeze();
                    return Ok(Some(finish(head, body)));
                }
                State::Chunked { .. } => match self.decode_chunked() {
                    Ok(None) => return Ok(None),
                    Ok(Some(req)) => return Ok(Some(req)),
                    Err(e) => {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                },
            }
        }
    }

    /// Parses a head if one is complete; moves to a body state or returns the request.
    fn decode_head(&mut self) -> Result<Option<()>, HttpError> {
        // Empty lines before a request line are allowed (RFC 9112, 2.2).
        let lead = self
            .buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if lead > 0 {
            self.buf.advance(lead);
            self.scanned = self.scanned.saturating_sub(lead);
        }
        let Some(end) = self.find_head_end() else {
            if self.buf.len() > self.limits.max_head_size {
                return Err(HttpError::HEAD_TOO_LARGE);
            }
            return Ok(None);
        };
        if end > self.limits.max_head_size {
            return Err(HttpError::HEAD_TOO_LARGE);
        }
        self.scanned = 0;
        let head_bytes = self.buf.split_to(end).freeze();
        let head = parse_head(&head_bytes, &self.limits)?;
        let framing = body_framing(&head.headers, head.version, &self.limits)?;
        match framing {
            Framing::Length(0) => {
                self.state = State::Body { head, remaining: 0 };
            }
            Framing::Length(n) => {
                self.continue_pending = head.expect_continue && self.buf.len() < n;
                self.state = State::Body { head, remaining: n };
            }
            Framing::Chunked => {
                self.continue_pending = head.expect_continue;
                self.state = State::Chunked {
                    head,
                    chunk: ChunkState::Size { seen: 0 },
                    body: BytesMut::new(),
                };
            }
        }
        Ok(Some(()))
    }

    /// The index just past the blank line ending the head, if it has arrived.
    fn find_head_end(&mut self) -> Option<usize> {
        let buf = &self.buf[..];
        // Resume a little before where the last scan stopped so a terminator split across
        // feeds is still found.
        let mut i = self.scanned.saturating_sub(3);
        while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
            let nl = i + off;
            if buf.get(nl + 1) == Some(&b'\n') {
                return Some(nl + 2);
            }
            if buf.get(nl + 1) == Some(&b'\r') && buf.get(nl + 2) == Some(&b'\n') {
                return Some(nl + 3);
            }
            i = nl + 1;
        }
        self.scanned = buf.len();
        None
    }

    fn decode_chunked(&mut self) -> Result<Option<Request>, HttpError> {
        let max_body = self.limits.max_body_size;
        let max_trailer = self.limits.max_head_size;
        let State::Chunked { chunk, body, .. } = &mut self.state else {
            unreachable!("only called in the chunked state")
        };
        loop {
            match *chunk {
                ChunkState::Size { seen } => {
                    let Some(nl) = self.buf[seen..].iter().position(|&b| b == b'\n') else {
                        if self.buf.len() > MAX_CHUNK_LINE {
                            return Err(HttpError::BAD_CHUNK);
                        }
                        *chunk = ChunkState::Size {
                            seen: self.buf.len(),
                        };
                        return Ok(None);
                    };
                    let line_len = seen + nl + 1;
                    if line_len > MAX_CHUNK_LINE {
                        return Err(HttpError::BAD_CHUNK);
                    }
                    let line = self.buf.split_to(line_len);
                    let size = parse_chunk_size(&line)?;
                    if body.len().saturating_add(size) > max_body {
                        return Err(HttpError::BODY_TOO_LARGE);
                    }
                    *chunk = if size == 0 {
                        ChunkState::Trailer { seen: 0 }
                    } else {
                        ChunkState::Data { remaining: size }
                    };
                }
                ChunkState::Data { remaining } => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let n = remaining.min(self.buf.len());
                    body.extend_from_slice(&self.buf.split_to(n));
                    *chunk = if n == remaining {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data {
                            remaining: remaining - n,
                        }
                    };
                }
                ChunkState::DataEnd => {
                    if self.buf.starts_with(b"\r\n") {
                        self.buf.advance(2);
                    } else if self.buf.starts_with(b"\n") {
                        self.buf.advance(1);
                    } else if self.buf.is_empty() || &self.buf[..] == b"\r" {
                        return Ok(None);
                    } else {
                        return Err(HttpError::BAD_CHUNK);
                    }
                    *chunk = ChunkState::Size { seen: 0 };
                }
                ChunkState::Trailer { seen } => {
                    let Some(nl) = self.buf[seen..].iter().position(|&b| b == b'\n') else {
                        if self.buf.len() > max_trailer {
                            return Err(HttpError::HEAD_TOO_LARGE);
                        }
                        *chunk = ChunkState::Trailer {
                            seen: self.buf.len(),
                        };
                        return Ok(None);
                    };
                    let line_end = seen + nl + 1;
                    // A trailer line counts against the head bound, however it arrives.
                    if line_end > max_trailer {
                        return Err(HttpError::HEAD_TOO_LARGE);
                    }
                    let line = self.buf.split_to(line_end);
                    // Only an empty line ends the trailers; anything else is a field.
                    if &line[..] == b"\r\n" || &line[..] == b"\n" {
                        let State::Chunked { head, body, .. } =
                            std::mem::replace(&mut self.state, State::Head)
                        else {
                            unreachable!("matched Chunked above")
                        };
                        return Ok(Some(finish(head, body.freeze())));
                    }
                    // A trailer field: ignored.
                    *chunk = ChunkState::Trailer { seen: 0 };
                }
            }
        }
    }
}

fn finish(head: Head, body: Bytes) -> Request {
    Request {
        method: head.method,
        target: head.target,
        version: head.version,
        headers: head.headers,
        body,
        keep_alive: head.keep_alive,
    }
}

/// Parses a chunk-size line (with its line end) by RFC 9112's grammar, section 7.1.1:
/// `1*HEXDIG *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`. Anything
/// else is refused, control characters included: a parser more lenient than a proxy in
/// front of it is how requests get smuggled past the proxy.
pub(crate) fn parse_chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, mut rest) = line.split_at(digits_end);
    if digits.is_empty() || digits.len() > 16 {
        return Err(HttpError::BAD_CHUNK);
    }
    let mut n: usize = 0;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        n = n
            .checked_mul(16)
            .and_then(|n| n.checked_add(v as usize))
            .ok_or(HttpError::BAD_CHUNK)?;
    }
    loop {
        rest = skip_bws(rest);
        if rest.is_empty() {
            return Ok(n);
        }
        rest = rest.strip_prefix(b";").ok_or(HttpError::BAD_CHUNK)?;
        rest = skip_token(skip_bws(rest))?;
        let after_name = skip_bws(rest);
        if let Some(value) = after_name.strip_prefix(b"=") {
            let value = skip_bws(value);
            rest = if value.first() == Some(&b'"') {
                skip_quoted_string(value)?
            } else {
                skip_token(value)?
            };
        }
    }
}

/// Skips optional spaces and tabs.
fn skip_bws(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

/// Skips a token (at least one `tchar`).
fn skip_token(s: &[u8]) -> Result<&[u8], HttpError> {
    let is_tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    match s.iter().take_while(|b| is_tchar(b)).count() {
        0 => Err(HttpError::BAD_CHUNK),
        n => Ok(&s[n..]),
    }
}

/// Skips a quoted string (`s` starts at its opening quote), with its quoted pairs.
fn skip_quoted_string(s: &[u8]) -> Result<&[u8], HttpError> {
    let text = |b: u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
    let mut i = 1;
    while let Some(&b) = s.get(i) {
        match b {
            b'"' => return Ok(&s[i + 1..]),
            b'\\' => match s.get(i + 1) {
                Some(&q) if text(q) => i += 2,
                _ => return Err(HttpError::BAD_CHUNK),
            },
            b if text(b) => i += 1,
            _ => return Err(HttpError::BAD_CHUNK),
        }
    }
    Err(HttpError::BAD_CHUNK)
}

fn parse_head(bytes: &Bytes, limits: &DecoderLimits) -> Result<Head, HttpError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS_CAP];
    let cap = limits.max_headers.clamp(1, MAX_HEADERS_CAP);
    let mut req = httparse::Request::new(&mut storage[..cap]);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HttpError::BAD_REQUEST),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TOO_MANY_HEADERS),
        Err(httparse::Error::Version) => return Err(HttpError::BAD_VERSION),
        Err(_) => return Err(HttpError::BAD_REQUEST),
    }
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::BAD_REQUEST);
    };
    let version = match version {
        0 => Version::Http10,
        1 => Version::Http11,
        _ => return Err(HttpError::BAD_VERSION),
    };
    let target = origin_form(bytes.slice_ref(path.as_bytes()))?;
    let headers: Vec<Header> = req
        .headers
        .iter()
        .map(|h| Header {
            name: bytes.slice_ref(h.name.as_bytes()),
            value: if h.value.is_empty() {
                Bytes::new()
            } else {
                bytes.slice_ref(h.value.trim_ascii())
            },
        })
        .collect();
    let connection_has = |token: &str| {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(b"connection"))
            .any(|h| has_token(&h.value, token))
    };
    let keep_alive = match version {
        Version::Http11 => !connection_has("close"),
        Version::Http10 => connection_has("keep-alive") && !connection_has("close"),
    };
    let expect_continue = version == Version::Http11
        && headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case(b"expect") && h.value.eq_ignore_ascii_case(b"100-continue")
        });
    Ok(Head {
        method: Method::from_bytes(method.as_bytes()),
        target,
        version,
        headers,
        keep_alive,
        expect_continue,
    })
}

/// Turns an absolute-form target (`http://host/path`) into origin-form (`/path`).
pub(crate) fn origin_form(target: Bytes) -> Result<Bytes, HttpError> {
    if target.starts_with(b"/") || &target[..] == b"*" {
        return Ok(target);
    }
    let scheme_len = if starts_with_ignore_case(&target, b"http://") {
        7
    } else if starts_with_ignore_case(&target, b"https://") {
        8
    } else {
        return Err(HttpError::BAD_REQUEST);
    };
    match target[scheme_len..]
        .iter()
        .position(|&b| b == b'/' || b == b'?')
    {
        Some(i) if target[scheme_len + i] == b'/' => Ok(target.slice(scheme_len + i..)),
        Some(i) => {
            // `http://host?q`: the path is `/`.
            let mut t = BytesMut::with_capacity(target.len() - scheme_len - i + 1);
            t.extend_from_slice(b"/");
            t.extend_from_slice(&target[scheme_len + i..]);
            Ok(t.freeze())
        }
        None => Ok(Bytes::from_static(b"/")),
    }
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

enum Framing {
    Length(usize),
    Chunked,
}

fn body_framing(
    headers: &[Header],
    version: Version,
    limits: &DecoderLimits,
) -> Result<Framing, HttpError> {
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case(b"content-length") {
            // An empty value is read as zero; a list of equal values is one value.
            let mut value: Option<usize> = None;
            for part in h.value.split(|&b| b == b',') {
                let part = part.trim_ascii();
                let n = if part.is_empty() {
                    0
                } else if part.len() <= 19 && part.iter().all(u8::is_ascii_digit) {
                    part.iter()
                        .fold(0usize, |n, d| n * 10 + (d - b'0') as usize)
                } else {
                    return Err(HttpError::BAD_LENGTH);
                };
                if value.is_some_and(|v| v != n) {
                    return Err(HttpError::BAD_LENGTH);
                }
                value = Some(n);
            }
            let n = value.unwrap_or(0);
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::BAD_LENGTH);
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
            for coding in h.value.split(|&b| b == b',') {
                let coding = coding.trim_ascii();
                if coding.is_empty() {
                    continue;
                }
                if chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                    // Only a single `chunked` coding is understood.
                    return Err(HttpError::UNSUPPORTED_ENCODING);
                }
                chunked = true;
            }
        }
    }
    if transfer_encoding {
        if length.is_some() || version == Version::Http10 || !chunked {
            return Err(HttpError::BAD_LENGTH);
        }
        return Ok(Framing::Chunked);
    }
    let n = length.unwrap_or(0);
    if n > limits.max_body_size {
        return Err(HttpError::BODY_TOO_LARGE);
    }
    Ok(Framing::Length(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], limits: DecoderLimits) -> (Vec<Request>, Option<HttpError>) {
        let mut d = RequestDecoder::new(limits);
        d.feed(input);
        let mut out = Vec::new();
        loop {
            match d.decode() {
                Ok(Some(r)) => out.push(r),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    fn one(input: &str) -> Request {
        let (mut reqs, err) = decode_all(input.as_bytes(), DecoderLimits::default());
        assert_eq!(err, None);
        assert_eq!(reqs.len(), 1);
        reqs.remove(0)
    }

    fn error_of(input: &str) -> HttpError {
        decode_all(input.as_bytes(), DecoderLimits::default())
            .1
            .expect("an error")
    }

    #[test]
    fn simple_get() {
        let r = one("GET /echo/info?t=1 HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n\r\n");
        assert_eq!(r.method, Method::Get);
        assert_eq!(&r.target[..], b"/echo/info?t=1");
        assert_eq!(r.path(), b"/echo/info");
        assert_eq!(r.query(), b"t=1");
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.header("origin"), Some(&b"http://a"[..]));
        assert!(r.keep_alive);
        assert!(r.body.is_empty());
    }

    #[test]
    fn content_length_body_and_pipelining() {
        let (reqs, err) = decode_all(
            b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\n[\"x\"]GET /b HTTP/1.1\r\n\r\n",
            DecoderLimits::default(),
        );
        assert_eq!(err, None);
        assert_eq!(reqs.len(), 2);
        assert_eq!(&reqs[0].body[..], b"[\"x\"]");
        assert_eq!(&reqs[1].target[..], b"/b");
    }

    #[test]
    fn empty_content_length_is_zero() {
        let r = one("POST /a HTTP/1.1\r\nContent-Length:\r\n\r\n");
        assert!(r.body.is_empty());
    }

    #[test]
    fn post_without_length_has_empty_body() {
        let r = one("POST /a HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.body.is_empty());
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let r = one(
            "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n[\"a\r\n2\r\n\"]\r\n0\r\nX-T: 1\r\n\r\n",
        );
        assert_eq!(&r.body[..], b"[\"a\"]");
    }

    #[test]
    fn chunk_extensions_follow_the_grammar() {
        for ok in [
            "3;x",
            "3;x=y",
            "3 ; x = y",
            "3;x=\"a b;c\\\"d\"",
            "3;x=y;z",
            "3;x=\"\"",
            "3\t;\tx",
            "3  ",
        ] {
            assert_eq!(
                parse_chunk_size(format!("{ok}\r\n").as_bytes()),
                Ok(3),
                "{ok:?}"
            );
        }
        for bad in [
            "",
            " 3",
            "3;",
            "3;=y",
            "3;x=",
            "3;x y",
            "3 x",
            "3;x=\"a",
            "3;x=\"a\x01\"",
            "3;x\x00",
            "3;x=y\x7f",
            "3\r;x",
            "3;x=\"a\\\x01\"",
            "3;\"x\"",
            "g",
            "3;x=y\"z\"",
        ] {
            assert_eq!(
                parse_chunk_size(format!("{bad}\r\n").as_bytes()),
                Err(HttpError::BAD_CHUNK),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn http10_keep_alive_rules() {
        assert!(!one("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(one("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!one("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(one("GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n").keep_alive);
    }

    #[test]
    fn absolute_form_target() {
        assert_eq!(
            &one("GET http://h:1/echo?x HTTP/1.1\r\n\r\n").target[..],
            b"/echo?x"
        );
        assert_eq!(&one("GET http://h:1 HTTP/1.1\r\n\r\n").target[..], b"/");
        assert_eq!(&one("GET http://h?q HTTP/1.1\r\n\r\n").target[..], b"/?q");
    }

    #[test]
    fn leading_blank_lines_are_skipped() {
        assert_eq!(&one("\r\n\r\nGET /x HTTP/1.1\r\n\r\n").target[..], b"/x");
    }

    #[test]
    fn framing_conflicts_are_refused() {
        assert_eq!(
            error_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HttpError::BAD_LENGTH
        );
        assert_eq!(
            error_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            HttpError::BAD_LENGTH
        );
        assert_eq!(
            error_of("POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n"),
            HttpError::BAD_LENGTH
        );
        assert_eq!(
            error_of("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            HttpError::BAD_LENGTH
        );
        assert_eq!(
            error_of("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"),
            HttpError::BAD_LENGTH
        );
        assert_eq!(
            error_of("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            HttpError::UNSUPPORTED_ENCODING
        );
        assert_eq!(
            error_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HttpError::BAD_LENGTH
        );
        // Equal duplicates are one length.
        let r = one("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nab");
        assert_eq!(&r.body[..], b"ab");
    }

    #[test]
    fn limits_give_their_errors() {
        let limits = DecoderLimits {
            max_head_size: 64,
            max_headers: 2,
            max_body_size: 4,
        };
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
        assert_eq!(
            decode_all(long.as_bytes(), limits).1,
            Some(HttpError::HEAD_TOO_LARGE)
        );
        // Too large even before the end of the head arrives.
        assert_eq!(
            decode_all(&long.as_bytes()[..80], limits).1,
            Some(HttpError::HEAD_TOO_LARGE)
        );
        assert_eq!(
            decode_all(b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n", limits).1,
            Some(HttpError::TOO_MANY_HEADERS)
        );
        assert_eq!(
            decode_all(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", limits).1,
            Some(HttpError::BODY_TOO_LARGE)
        );
        assert_eq!(
            decode_all(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\n",
                limits
            )
            .1,
            Some(HttpError::BODY_TOO_LARGE)
        );
    }

    #[test]
    fn malformed_requests_are_400() {
        assert_eq!(error_of("GET\r\n\r\n"), HttpError::BAD_REQUEST);
        assert_eq!(
            error_of("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"),
            HttpError::BAD_REQUEST
        );
        assert_eq!(error_of("GET / HTTP/2.0\r\n\r\n"), HttpError::BAD_VERSION);
        assert_eq!(
            error_of("GET nothing HTTP/1.1\r\n\r\n"),
            HttpError::BAD_REQUEST
        );
        assert_eq!(
            error_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            HttpError::BAD_CHUNK
        );
    }

    #[test]
    fn a_long_blank_looking_trailer_line_is_refused_however_it_arrives() {
        let limits = DecoderLimits {
            max_head_size: 56,
            ..DecoderLimits::default()
        };
        let input = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n{}\n",
            " ".repeat(73)
        );
        assert_eq!(
            decode_all(input.as_bytes(), limits).1,
            Some(HttpError::HEAD_TOO_LARGE)
        );
        let mut d = RequestDecoder::new(limits);
        let mut result = Ok(None);
        for piece in input.as_bytes().chunks(20) {
            d.feed(piece);
            result = d.decode();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HttpError::HEAD_TOO_LARGE));
    }

    #[test]
    fn expect_continue_is_reported_once() {
        let mut d = RequestDecoder::new(DecoderLimits::default());
        d.feed(b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(d.decode(), Ok(None));
        assert!(d.take_continue());
        assert!(!d.take_continue());
        d.feed(b"ok");
        assert_eq!(&d.decode().unwrap().unwrap().body[..], b"ok");
    }

    #[test]
    fn errors_are_sticky() {
        let mut d = RequestDecoder::new(DecoderLimits::default());
        d.feed(b"BAD\r\n\r\n");
        assert!(d.decode().is_err());
        d.feed(b"GET / HTTP/1.1\r\n\r\n");
        assert!(d.decode().is_err());
    }

    mod split_invariance {
        use super::*;
        use proptest::prelude::*;

        const INPUTS: &[&str] = &[
            "GET /echo HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo/1/2/xhr_send HTTP/1.1\r\nContent-Length: 5\r\n\r\n[\"x\"]",
            "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
            "\r\nGET /x HTTP/1.1\nHost: y\n\nGET /z HTTP/1.1\r\n\r\n",
            "POST /a HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
        ];

        fn run(input: &[u8], cuts: &[usize]) -> (Vec<Request>, Option<HttpError>) {
            let mut d = RequestDecoder::new(DecoderLimits::default());
            let mut out = Vec::new();
            let mut last = 0;
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            points.sort_unstable();
            points.push(input.len());
            for p in points {
                d.feed(&input[last..p]);
                last = p;
                loop {
                    match d.decode() {
                        Ok(Some(r)) => out.push(r),
                        Ok(None) => break,
                        Err(e) => return (out, Some(e)),
                    }
                }
            }
            (out, None)
        }

        proptest! {
            #[test]
            fn any_split_gives_the_same_requests(
                which in 0..INPUTS.len(),
                cuts in proptest::collection::vec(any::<usize>(), 0..12),
            ) {
                let input = INPUTS[which].as_bytes();
                prop_assert_eq!(run(input, &cuts), run(input, &[]));
            }

            #[test]
            fn arbitrary_bytes_never_panic_and_split_the_same(
                input in proptest::collection::vec(any::<u8>(), 0..300),
                cuts in proptest::collection::vec(any::<usize>(), 0..8),
            ) {
                prop_assert_eq!(run(&input, &cuts), run(&input, &[]));
            }
        }
    }
}
