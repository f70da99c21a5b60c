//! Response encoding: status line, headers and body framing, written into a `BytesMut`.

use bytes::{BufMut, BytesMut};

use super::reason_phrase;

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`; write chunks with [`write_chunk`] and end with
    /// [`write_last_chunk`].
    Chunked,
    /// Neither header: the body ends when the connection closes (HTTP/1.0 streaming).
    CloseDelimited,
    /// No body and no length header (101, 204, 304).
    None,
}

/// Writes one response head; dropping it without [`ResponseHead::finish`] leaves a
/// truncated head, so always finish.
pub struct ResponseHead<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> ResponseHead<'a> {
    /// Starts a head with the status's usual reason phrase.
    pub fn new(buf: &'a mut BytesMut, status: u16) -> Self {
        Self::with_reason(buf, status, reason_phrase(status))
    }

    /// Starts a head with a chosen reason phrase.
    pub fn with_reason(buf: &'a mut BytesMut, status: u16, reason: &str) -> Self {
        write_status_line(buf, status, reason);
        ResponseHead { buf }
    }

    /// Adds a header. The value must not contain CR or LF (request header values never do:
    /// the decoder refuses them).
    pub fn header(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        write_header(self.buf, name, value.as_ref());
        self
    }

    /// Adds the framing header and ends the head.
    pub fn finish(self, framing: BodyFraming) {
        finish_head(self.buf, framing);
    }
}

/// Writes a status line (`HTTP/1.1 <status> <reason>`), reserving room for a usual head.
pub fn write_status_line(buf: &mut BytesMut, status: u16, reason: &str) {
    buf.reserve(256);
    buf.put_slice(b"HTTP/1.1 ");
    put_decimal(buf, status as usize);
    buf.put_u8(b' ');
    buf.put_slice(reason.as_bytes());
    buf.put_slice(b"\r\n");
}

/// Writes one header line. The value must not contain CR or LF.
pub fn write_header(buf: &mut BytesMut, name: &str, value: &[u8]) {
    debug_assert!(!value.iter().any(|&b| b == b'\r' || b == b'\n'));
    buf.put_slice(name.as_bytes());
    buf.put_slice(b": ");
    buf.put_slice(value);
    buf.put_slice(b"\r\n");
}

/// Ends a head written so far into `buf` (status line and headers) with the framing header
/// and the blank line; for heads completed later than they were started.
pub fn finish_head(buf: &mut BytesMut, framing: BodyFraming) {
    match framing {
        BodyFraming::Length(n) => {
            buf.put_slice(b"Content-Length: ");
            put_decimal(buf, n);
            buf.put_slice(b"\r\n");
        }
        BodyFraming::Chunked => buf.put_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::CloseDelimited | BodyFraming::None => {}
    }
    buf.put_slice(b"\r\n");
}

/// Writes one chunk of a chunked body (nothing for empty data: an empty chunk ends the body).
pub fn write_chunk(buf: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    write_chunk_header(buf, data.len());
    buf.put_slice(data);
    buf.put_slice(b"\r\n");
}

/// Writes the size line of a chunk of `len` bytes; the caller writes the data and `\r\n`.
pub fn write_chunk_header(buf: &mut BytesMut, len: usize) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = len;
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf.reserve(len + 20);
    buf.put_slice(&digits[i..]);
    buf.put_slice(b"\r\n");
}

/// Ends a chunked body.
pub fn write_last_chunk(buf: &mut BytesMut) {
    buf.put_slice(b"0\r\n\r\n");
}

/// Writes `n` in decimal.
pub fn put_decimal(buf: &mut BytesMut, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_with_length() {
        let mut b = BytesMut::new();
        let mut h = ResponseHead::new(&mut b, 200);
        h.header("Content-Type", "text/plain; charset=UTF-8");
        h.finish(BodyFraming::Length(19));
        assert_eq!(
            &b[..],
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 19\r\n\r\n"
        );
    }

    #[test]
    fn chunked_framing() {
        let mut b = BytesMut::new();
        ResponseHead::new(&mut b, 200).finish(BodyFraming::Chunked);
        write_chunk(&mut b, b"o\n");
        write_chunk(&mut b, &[b'h'; 2049]);
        write_chunk(&mut b, b"");
        write_last_chunk(&mut b);
        let mut expected =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\no\n\r\n801\r\n".to_vec();
        expected.extend_from_slice(&[b'h'; 2049]);
        expected.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(&b[..], &expected[..]);
    }

    #[test]
    fn no_body_heads() {
        let mut b = BytesMut::new();
        ResponseHead::new(&mut b, 204).finish(BodyFraming::None);
        assert_eq!(&b[..], b"HTTP/1.1 204 No Content\r\n\r\n");
        let mut b = BytesMut::new();
        ResponseHead::with_reason(&mut b, 101, "WebSocket Protocol Handshake")
            .finish(BodyFraming::None);
        assert_eq!(&b[..], b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n\r\n");
    }

    #[test]
    fn decimals() {
        for n in [0usize, 9, 10, 4096, usize::MAX] {
            let mut b = BytesMut::new();
            put_decimal(&mut b, n);
            assert_eq!(&b[..], n.to_string().as_bytes());
        }
    }
}
