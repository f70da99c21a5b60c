//! The bytes a client sends: HTTP/1.x requests, masked RFC 6455 frames, hixie-76 frames and
//! handshake keys.

/// How a request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length: n`.
    Length,
    /// `Transfer-Encoding: chunked`, the body cut into chunks of at most this many bytes.
    Chunked(usize),
}

/// An HTTP/1.x request as a client writes it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method, such as `GET`.
    pub method: String,
    /// The request target (path and query).
    pub target: Vec<u8>,
    /// HTTP/1.0 instead of HTTP/1.1.
    pub http10: bool,
    /// Header lines, written in order as `name: value`.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body and its framing; `None` sends no framing header at all.
    pub body: Option<(Vec<u8>, BodyFraming)>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: &str, target: impl Into<Vec<u8>>) -> Self {
        Request {
            method: method.to_string(),
            target: target.into(),
            http10: false,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header line.
    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The request's bytes: request line, headers (plus the body framing header), blank
    /// line, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(if self.http10 {
            b" HTTP/1.0\r\n"
        } else {
            b" HTTP/1.1\r\n"
        });
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        match &self.body {
            None => out.extend_from_slice(b"\r\n"),
            Some((body, BodyFraming::Length)) => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            Some((body, BodyFraming::Chunked(size))) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for chunk in body.chunks((*size).max(1)) {
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        out
    }
}

/// One RFC 6455 frame as a client writes it: `opcode` with the FIN and RSV bits given,
/// masked with `mask` unless it is `None`.
pub fn ws_frame(opcode: u8, fin: bool, rsv: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(u8::from(fin) << 7 | (rsv & 7) << 4 | (opcode & 0x0f));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A hixie-76 text frame: 0x00, the bytes, 0xFF.
pub fn hixie_text(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    out.push(0x00);
    out.extend_from_slice(text);
    out.push(0xff);
    out
}

/// A `Sec-WebSocket-Key1/2` value encoding `number` with `spaces` spaces (at least one): the
/// digits of `number * spaces` with the spaces inside them, wrapped in letters so that
/// trimming the header value keeps every space.
pub fn hixie_key(number: u32, spaces: u8) -> String {
    let spaces = u64::from(spaces.clamp(1, 12));
    let digits = (u64::from(number) * spaces).to_string();
    let (first, rest) = digits.split_at(1);
    format!("P{first}{}{rest}x", " ".repeat(spaces as usize))
}
