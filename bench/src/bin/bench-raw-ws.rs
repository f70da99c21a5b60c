//! Raw WebSocket echo server: the floor that SockJS-over-WebSocket figures are compared with.
//!
//! `bench-raw-ws [--host 127.0.0.1] [--port 18090] [--threads N]` accepts an RFC 6455 upgrade
//! on any path and echoes every text or binary message, with no SockJS framing. It is tokio
//! plus tungstenite and nothing else: tungstenite reads the socket directly through tokio's
//! non-blocking `try_read`/`try_write`, 4 KiB at a time (its read buffer size), and all
//! echoes produced by one batch of reads go out in one flush. Prints `listening on ADDR`
//! once bound (`--port 0` picks a free port).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tungstenite::error::Error as WsError;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Message, Role, WebSocketConfig, WebSocketContext};

const READ_BUFFER: usize = 4096;
const MAX_HEAD: usize = 8192;
const MAX_MESSAGE: usize = 1 << 20;
/// Echoed bytes allowed to pile up before the connection stops reading to flush them.
const FLUSH_AFTER: usize = 64 * 1024;

fn main() -> ExitCode {
    sockjs_bench::cli::server_main("bench-raw-ws", 18090, serve)
}

async fn serve(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            // Out of descriptors and the like: keep serving the connections we have.
            Err(e) => {
                eprintln!("bench-raw-ws: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            // A failed connection concerns only that client.
            let _ = connection(stream).await;
        });
    }
}

/// Lets tungstenite read and write the socket without blocking; `WouldBlock` means "wait".
struct SocketIo<'a>(&'a TcpStream);

impl Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for SocketIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn would_block(e: &WsError) -> bool {
    matches!(e, WsError::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

async fn connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let leftover = match handshake(&mut stream).await? {
        Some(leftover) => leftover,
        None => return Ok(()),
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .max_write_buffer_size(4 * FLUSH_AFTER);
    let mut ws = WebSocketContext::from_partially_read(leftover, Role::Server, Some(config));
    loop {
        let mut pending = 0;
        loop {
            match ws.read(&mut SocketIo(&stream)) {
                Ok(Message::Text(text)) => {
                    pending += text.len();
                    echo(&mut ws, &stream, Message::Text(text))?;
                }
                Ok(Message::Binary(data)) => {
                    pending += data.len();
                    echo(&mut ws, &stream, Message::Binary(data))?;
                }
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(_) => return Ok(()),
            }
            if pending >= FLUSH_AFTER {
                flush(&mut ws, &stream).await?;
                pending = 0;
            }
        }
        flush(&mut ws, &stream).await?;
        stream.readable().await?;
    }
}

fn echo(ws: &mut WebSocketContext, stream: &TcpStream, msg: Message) -> io::Result<()> {
    match ws.write(&mut SocketIo(stream), msg) {
        Ok(()) => Ok(()),
        Err(e) if would_block(&e) => Ok(()),
        Err(e) => Err(io::Error::other(e)),
    }
}

async fn flush(ws: &mut WebSocketContext, stream: &TcpStream) -> io::Result<()> {
    loop {
        match ws.flush(&mut SocketIo(stream)) {
            Ok(()) => return Ok(()),
            Err(e) if would_block(&e) => stream.writable().await?,
            Err(e) => return Err(io::Error::other(e)),
        }
    }
}

/// Reads the upgrade request and answers it; returns bytes read past the head, or `None`
/// after refusing a request that is not a WebSocket upgrade.
async fn handshake(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() > MAX_HEAD {
            stream
                .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await?;
            return Ok(None);
        }
        buf.reserve(1024);
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => continue,
            Err(_) => {
                stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await?;
                return Ok(None);
            }
        };
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        let upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"));
        let version = header("sec-websocket-version") == Some(b"13");
        let key = header("sec-websocket-key");
        let (true, true, Some(key), Some("GET")) = (upgrade, version, key, req.method) else {
            stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await?;
            return Ok(None);
        };
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key)
        );
        stream.write_all(response.as_bytes()).await?;
        return Ok(Some(buf.split_off(head_len)));
    }
}
