//! A minimal HTTP/1.1 keep-alive client connection for load generation.
//!
//! One request at a time per connection: [`HttpConn::send_request`], then
//! [`HttpConn::read_head`], then [`HttpConn::read_body_some`] until the body is done (or
//! [`HttpConn::request`] for all three). Every wait is on a single cancel-safe socket read,
//! so any of these futures may be dropped in a `select!`; the connection is then in the
//! middle of a response and only fit to be dropped. Protocol errors are `io::Error`s of kind
//! `InvalidData`.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::chunked::BodyDecoder;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// The parts of a response head the load generator needs.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
    /// How the body is framed; feed it to [`HttpConn::read_body_some`].
    pub body: BodyDecoder,
}

/// One client connection.
#[derive(Debug)]
pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    host: String,
    reusable: bool,
}

/// An `InvalidData` error with the given text.
pub fn invalid(text: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text.into())
}

impl HttpConn {
    /// Connects to `addr` (with `TCP_NODELAY`).
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(HttpConn {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            host: addr.to_string(),
            reusable: true,
        })
    }

    /// Whether the last response allows another request on this connection.
    pub fn is_reusable(&self) -> bool {
        self.reusable
    }

    /// Writes one request with `body` (and its `Content-Length`) in a single write.
    pub async fn send_request(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<()> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.stream.write_all(&req).await
    }

    /// Reads and parses the next response head.
    pub async fn read_head(&mut self) -> io::Result<ResponseHead> {
        loop {
            if let Some(head) = self.parse_head()? {
                self.reusable = head.keep_alive;
                return Ok(head);
            }
            if self.buf.len() - self.start > MAX_HEAD {
                return Err(invalid("response head too large"));
            }
            if self.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response head",
                ));
            }
        }
    }

    /// Waits for more of the body: appends decoded body bytes to `out` and returns once some
    /// input was consumed or the body is complete (`body.is_done()`).
    pub async fn read_body_some(
        &mut self,
        body: &mut BodyDecoder,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        loop {
            if body.is_done() {
                return Ok(());
            }
            let used = body
                .decode(&self.buf[self.start..], out)
                .map_err(|e| invalid(e.to_string()))?;
            self.start += used;
            if used > 0 || body.is_done() {
                return Ok(());
            }
            if self.fill().await? == 0 {
                self.reusable = false;
                return body.finish_at_eof().map_err(|e| invalid(e.to_string()));
            }
        }
    }

    /// Sends a request and reads the whole response; a body over `max_body` bytes is an error.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        max_body: usize,
    ) -> io::Result<(u16, Vec<u8>)> {
        self.send_request(method, path, body).await?;
        let mut head = self.read_head().await?;
        let mut out = Vec::new();
        while !head.body.is_done() {
            self.read_body_some(&mut head.body, &mut out).await?;
            if out.len() > max_body {
                return Err(invalid(format!("response body over {max_body} bytes")));
            }
        }
        Ok((head.status, out))
    }

    fn parse_head(&mut self) -> io::Result<Option<ResponseHead>> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(&self.buf[self.start..]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(invalid(format!("bad response head: {e}"))),
        };
        let status = resp.code.unwrap_or(0);
        let mut keep_alive = resp.version == Some(1);
        let mut chunked = false;
        let mut length = None;
        for h in resp.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| invalid("bad Content-Length"))?;
                length = Some(v);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = h.value.eq_ignore_ascii_case(b"chunked");
                if !chunked {
                    return Err(invalid("unsupported Transfer-Encoding"));
                }
            } else if h.name.eq_ignore_ascii_case("connection") {
                if h.value.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
        let body = if (100..200).contains(&status) || status == 204 || status == 304 {
            BodyDecoder::Done
        } else if chunked {
            BodyDecoder::chunked()
        } else if let Some(n) = length {
            BodyDecoder::length(n)
        } else {
            keep_alive = false;
            BodyDecoder::UntilClose
        };
        self.start += len;
        Ok(Some(ResponseHead {
            status,
            keep_alive,
            body,
        }))
    }

    /// Reads more bytes into the buffer; returns how many (0 at end of stream).
    async fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > READ_CHUNK {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(READ_CHUNK);
        self.stream.read_buf(&mut self.buf).await
    }
}
