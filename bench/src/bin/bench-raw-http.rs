//! Raw HTTP/1.1 server: the floor that SockJS HTTP polling figures are compared with.
//!
//! `bench-raw-http [--host 127.0.0.1] [--port 18091] [--threads N]` answers every request,
//! whatever its method and path, with `200` and the 7-byte body `a["x"]\n` (what a SockJS
//! xhr poll returns for one message). Keep-alive, pipelining and request bodies framed by
//! `Content-Length` are handled (bodies are skipped, not buffered); chunked request bodies
//! get `501` and the connection closes, as does anything malformed (`400`) or a head over
//! 8 KiB (`431`). Prints `listening on ADDR` once bound (`--port 0` picks a free port).

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 8192;
/// Larger declared bodies are refused rather than skipped.
const MAX_BODY: u64 = 16 << 20;
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/javascript; charset=UTF-8\r\nContent-Length: 7\r\n\r\na[\"x\"]\n";

fn main() -> ExitCode {
    sockjs_bench::cli::server_main("bench-raw-http", 18091, serve)
}

async fn serve(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("bench-raw-http: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = connection(stream).await;
        });
    }
}

/// What to do after the requests found in the buffer so far.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Read more and carry on.
    Continue,
    /// Write what was produced, then close.
    Close,
}

/// The connection's request parser: consumes complete requests from `buf`, appending one
/// response per request to `out`.
#[derive(Debug, Default)]
struct Parser {
    /// Body bytes of the current request still to skip.
    skip: u64,
}

impl Parser {
    fn feed(&mut self, buf: &mut Vec<u8>, out: &mut Vec<u8>) -> Next {
        let mut pos = 0;
        let next = loop {
            if self.skip > 0 {
                let take = self.skip.min((buf.len() - pos) as u64);
                pos += take as usize;
                self.skip -= take;
                if self.skip > 0 {
                    break Next::Continue;
                }
            }
            if pos == buf.len() {
                break Next::Continue;
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            let head_len = match req.parse(&buf[pos..]) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if buf.len() - pos <= MAX_HEAD => {
                    break Next::Continue;
                }
                Ok(httparse::Status::Partial) => {
                    out.extend_from_slice(
                        b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    break Next::Close;
                }
                Err(_) => {
                    out.extend_from_slice(BAD_REQUEST);
                    break Next::Close;
                }
            };
            let mut keep_alive = req.version == Some(1);
            let mut length: Option<u64> = None;
            let mut refuse: Option<&[u8]> = None;
            for h in req.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    let parsed = std::str::from_utf8(h.value)
                        .ok()
                        .map(str::trim)
                        .and_then(|v| v.parse::<u64>().ok());
                    match (parsed, length) {
                        (Some(n), None) => length = Some(n),
                        (Some(n), Some(m)) if n == m => {}
                        // An empty value counts as no body (SockJS clients send it).
                        (None, None) if h.value.trim_ascii().is_empty() => length = Some(0),
                        _ => refuse = Some(BAD_REQUEST),
                    }
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    refuse = Some(
                        b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                } else if h.name.eq_ignore_ascii_case("connection") {
                    if h.value.eq_ignore_ascii_case(b"close") {
                        keep_alive = false;
                    } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    }
                }
            }
            if length.is_some_and(|n| n > MAX_BODY) {
                refuse = Some(
                    b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
            if let Some(answer) = refuse {
                out.extend_from_slice(answer);
                break Next::Close;
            }
            pos += head_len;
            self.skip = length.unwrap_or(0);
            out.extend_from_slice(RESPONSE);
            if !keep_alive {
                break Next::Close;
            }
        };
        buf.drain(..pos);
        next
    }
}

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

async fn connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut parser = Parser::default();
    let mut buf = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(1024);
    loop {
        buf.reserve(4096);
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let next = parser.feed(&mut buf, &mut out);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if next == Next::Close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(parser: &mut Parser, buf: &mut Vec<u8>, input: &[u8]) -> (Vec<u8>, Next) {
        buf.extend_from_slice(input);
        let mut out = Vec::new();
        let next = parser.feed(buf, &mut out);
        (out, next)
    }

    #[test]
    fn pipelined_requests_with_bodies_split_anywhere() {
        let input: &[u8] = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\n[\"x\"]\
                             GET /b HTTP/1.1\r\n\r\n\
                             POST /c HTTP/1.1\r\nContent-Length:\r\n\r\n";
        for step in 1..=input.len() {
            let mut parser = Parser::default();
            let mut buf = Vec::new();
            let mut out = Vec::new();
            for piece in input.chunks(step) {
                let (o, next) = run(&mut parser, &mut buf, piece);
                assert_eq!(next, Next::Continue);
                out.extend(o);
            }
            assert_eq!(out, RESPONSE.repeat(3), "step {step}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn close_cases() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"GET / HTTP/1.0\r\n\r\n", RESPONSE),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", RESPONSE),
            (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", BAD_REQUEST),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                BAD_REQUEST,
            ),
            (b"\x00\x01 nonsense\r\n\r\n", BAD_REQUEST),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
                b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ),
        ];
        for (input, want) in cases {
            let (out, next) = run(&mut Parser::default(), &mut Vec::new(), input);
            assert_eq!(next, Next::Close, "{input:?}");
            assert_eq!(out, want, "{input:?}");
        }
        let (out, next) = run(
            &mut Parser::default(),
            &mut Vec::new(),
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(next, Next::Close);
        assert!(out.starts_with(b"HTTP/1.1 501"));
        let (out, next) = run(
            &mut Parser::default(),
            &mut Vec::new(),
            &[b'a'; MAX_HEAD + 1],
        );
        assert_eq!(next, Next::Close);
        assert!(out.starts_with(b"HTTP/1.1 431"));
    }
}
