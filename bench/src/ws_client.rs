//! A minimal RFC 6455 client connection for load generation.
//!
//! Outgoing text frames are masked and queued with [`WsConn::queue_text`], then written in
//! one go by [`WsConn::flush`]; incoming frames are decoded from the connection's buffer by
//! [`WsConn::recv`] (cancel-safe: it only ever waits on a socket read). Pings are answered,
//! fragmented messages reassembled, and every size is bounded by `max_message`.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tungstenite::handshake::client::generate_key;
use tungstenite::handshake::derive_accept_key;

use crate::http_client::{MAX_HEAD, invalid};
use crate::rng::Rng;

const READ_CHUNK: usize = 16 * 1024;

/// One message or the end of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A complete text message.
    Text(String),
    /// A complete binary message.
    Binary(Vec<u8>),
    /// The server sent a close frame with this status code, if any.
    Close(Option<u16>),
}

/// One client WebSocket connection.
#[derive(Debug)]
pub struct WsConn {
    stream: TcpStream,
    decoder: FrameDecoder,
    rbuf: Vec<u8>,
    start: usize,
    wbuf: Vec<u8>,
    rng: Rng,
}

impl WsConn {
    /// Connects to `addr`, upgrades `path` and checks the server's accept key.
    pub async fn connect(
        addr: SocketAddr,
        path: &str,
        seed: u64,
        max_message: usize,
    ) -> io::Result<Self> {
        Self::connect_with(addr, path, seed, max_message, None).await
    }

    /// [`WsConn::connect`] with the socket's receive buffer set to `rcvbuf` bytes first (the
    /// kernel doubles it and bounds it by `net.core.rmem_max`), for a client that stops
    /// reading and should hold no more than a slow reader on a real network would.
    pub async fn connect_with(
        addr: SocketAddr,
        path: &str,
        seed: u64,
        max_message: usize,
        rcvbuf: Option<u32>,
    ) -> io::Result<Self> {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        if let Some(n) = rcvbuf {
            socket.set_recv_buffer_size(n)?;
        }
        let mut stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        let key = generate_key();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut rbuf = Vec::with_capacity(1024);
        let head_len = loop {
            if stream.read_buf(&mut rbuf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during the WebSocket handshake",
                ));
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&rbuf) {
                Ok(httparse::Status::Complete(len)) => {
                    if resp.code != Some(101) {
                        return Err(invalid(format!(
                            "WebSocket handshake answered {:?}",
                            resp.code
                        )));
                    }
                    let want = derive_accept_key(key.as_bytes());
                    let accept = resp
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"));
                    if accept.map(|h| h.value) != Some(want.as_bytes()) {
                        return Err(invalid("wrong or missing Sec-WebSocket-Accept"));
                    }
                    break len;
                }
                Ok(httparse::Status::Partial) if rbuf.len() <= MAX_HEAD => {}
                Ok(httparse::Status::Partial) => return Err(invalid("handshake head too large")),
                Err(e) => return Err(invalid(format!("bad handshake response: {e}"))),
            }
        };
        Ok(WsConn {
            stream,
            decoder: FrameDecoder::new(max_message),
            rbuf,
            start: head_len,
            wbuf: Vec::new(),
            rng: Rng::new(seed),
        })
    }

    /// Queues one masked text frame carrying `payload`; nothing is written until `flush`.
    pub fn queue_text(&mut self, payload: &[u8]) {
        let mask = (self.rng.next_u64() as u32).to_ne_bytes();
        encode_client_frame(&mut self.wbuf, 0x1, payload, mask);
    }

    /// Queues one masked, final frame with any `opcode` (a close frame, say).
    pub fn queue_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = (self.rng.next_u64() as u32).to_ne_bytes();
        encode_client_frame(&mut self.wbuf, opcode, payload, mask);
    }

    /// Queues bytes as they are, framed or not (for sending a server malformed input).
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.wbuf.extend_from_slice(bytes);
    }

    /// Whether frames are queued and waiting for [`flush`](Self::flush).
    pub fn has_pending_writes(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// Writes every queued frame. Not cancel-safe: do not race it in a `select!`.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// The next message; `None` when the server closed the connection without a close frame.
    ///
    /// A ping's pong is queued (send it with [`flush`](Self::flush)).
    pub async fn recv(&mut self) -> io::Result<Option<WsEvent>> {
        loop {
            if let Some(event) = self.next_buffered()? {
                return Ok(Some(event));
            }
            if self.start == self.rbuf.len() {
                self.rbuf.clear();
                self.start = 0;
            } else if self.start > READ_CHUNK {
                self.rbuf.drain(..self.start);
                self.start = 0;
            }
            self.rbuf.reserve(READ_CHUNK);
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// The next message already in the buffer, without waiting.
    pub fn next_buffered(&mut self) -> io::Result<Option<WsEvent>> {
        loop {
            let (used, frame) = self.decoder.decode(&self.rbuf[self.start..])?;
            self.start += used;
            match frame {
                None => return Ok(None),
                Some(Decoded::Event(event)) => return Ok(Some(event)),
                Some(Decoded::Ping(payload)) => {
                    let mask = (self.rng.next_u64() as u32).to_ne_bytes();
                    encode_client_frame(&mut self.wbuf, 0xA, &payload, mask);
                }
                Some(Decoded::Pong) => {}
            }
        }
    }
}

/// Appends one masked, final frame with `opcode` and `payload` to `out`.
pub fn encode_client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// What one decoded frame amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A message completed (or a close frame arrived).
    Event(WsEvent),
    /// A ping with its payload, to be answered.
    Ping(Vec<u8>),
    /// A pong, to be ignored.
    Pong,
}

/// Decodes server-to-client frames, reassembling fragmented messages.
#[derive(Debug)]
pub struct FrameDecoder {
    max_message: usize,
    partial: Option<(u8, Vec<u8>)>,
}

impl FrameDecoder {
    /// A decoder that refuses messages over `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        FrameDecoder {
            max_message,
            partial: None,
        }
    }

    /// Decodes at most one frame from `input`; returns the bytes used (0 if the frame is not
    /// complete yet) and what the frame amounted to (`None` for an incomplete frame or a
    /// non-final fragment).
    pub fn decode(&mut self, input: &[u8]) -> io::Result<(usize, Option<Decoded>)> {
        if input.len() < 2 {
            return Ok((0, None));
        }
        let fin = input[0] & 0x80 != 0;
        if input[0] & 0x70 != 0 {
            return Err(invalid("reserved bits set in a frame"));
        }
        let opcode = input[0] & 0x0f;
        let masked = input[1] & 0x80 != 0;
        let (len, mut pos) = match input[1] & 0x7f {
            126 if input.len() < 4 => return Ok((0, None)),
            126 => (u64::from(u16::from_be_bytes([input[2], input[3]])), 4),
            127 if input.len() < 10 => return Ok((0, None)),
            127 => (
                u64::from_be_bytes(input[2..10].try_into().unwrap_or([0xff; 8])),
                10,
            ),
            n => (u64::from(n), 2),
        };
        if len > self.max_message as u64 {
            return Err(invalid(format!("frame of {len} bytes is over the limit")));
        }
        let mask = if masked {
            if input.len() < pos + 4 {
                return Ok((0, None));
            }
            let m = [input[pos], input[pos + 1], input[pos + 2], input[pos + 3]];
            pos += 4;
            Some(m)
        } else {
            None
        };
        let len = len as usize;
        if input.len() < pos + len {
            return Ok((0, None));
        }
        let mut payload = input[pos..pos + len].to_vec();
        if let Some(m) = mask {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= m[i % 4]);
        }
        let used = pos + len;
        let decoded = match opcode {
            0x8..=0xA if !fin || len > 125 => {
                return Err(invalid("fragmented or oversized control frame"));
            }
            0x8 => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                Some(Decoded::Event(WsEvent::Close(code)))
            }
            0x9 => Some(Decoded::Ping(payload)),
            0xA => Some(Decoded::Pong),
            0x1 | 0x2 => {
                if self.partial.is_some() {
                    return Err(invalid("new message inside a fragmented one"));
                }
                if fin {
                    Some(Decoded::Event(finish(opcode, payload)?))
                } else {
                    self.partial = Some((opcode, payload));
                    None
                }
            }
            0x0 => {
                let Some((first, mut data)) = self.partial.take() else {
                    return Err(invalid("continuation frame without a message"));
                };
                if data.len() + payload.len() > self.max_message {
                    return Err(invalid("fragmented message over the limit"));
                }
                data.extend_from_slice(&payload);
                if fin {
                    Some(Decoded::Event(finish(first, data)?))
                } else {
                    self.partial = Some((first, data));
                    None
                }
            }
            other => return Err(invalid(format!("unknown opcode {other}"))),
        };
        Ok((used, decoded))
    }
}

fn finish(opcode: u8, payload: Vec<u8>) -> io::Result<WsEvent> {
    if opcode == 0x1 {
        String::from_utf8(payload)
            .map(WsEvent::Text)
            .map_err(|_| invalid("text message is not UTF-8"))
    } else {
        Ok(WsEvent::Binary(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first];
        if payload.len() < 126 {
            f.push(payload.len() as u8);
        } else {
            f.push(126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn client_frames_are_masked() {
        let mut out = Vec::new();
        encode_client_frame(&mut out, 1, b"abc", [1, 2, 3, 4]);
        assert_eq!(out, [0x81, 0x83, 1, 2, 3, 4, b'a' ^ 1, b'b' ^ 2, b'c' ^ 3]);
        let mut out = Vec::new();
        encode_client_frame(&mut out, 1, &[0; 300], [0; 4]);
        assert_eq!(&out[..4], [0x81, 0x80 | 126, 1, 44]);
        assert_eq!(out.len(), 4 + 4 + 300);
    }

    #[test]
    fn decodes_split_fragmented_and_control_frames() {
        let mut input = server_frame(0x01, b"hel");
        input.extend(server_frame(0x89, b"p"));
        input.extend(server_frame(0x80, b"lo"));
        input.extend(server_frame(0x81, &[b'x'; 200]));
        input.extend(server_frame(0x88, &[0x03, 0xe8]));
        let mut d = FrameDecoder::new(1000);
        let mut got = Vec::new();
        let mut pos = 0;
        // Feed one more byte at a time: an incomplete frame must use nothing.
        let mut end = 0;
        while pos < input.len() {
            end = (end + 1).min(input.len());
            let (used, frame) = d.decode(&input[pos..end]).unwrap();
            pos += used;
            if let Some(f) = frame {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            [
                Decoded::Ping(b"p".to_vec()),
                Decoded::Event(WsEvent::Text("hello".into())),
                Decoded::Event(WsEvent::Text("x".repeat(200))),
                Decoded::Event(WsEvent::Close(Some(1000))),
            ]
        );
    }

    #[test]
    fn rejects_bad_frames() {
        let cases: [&[u8]; 5] = [
            &[0xC1, 0],                           // reserved bit
            &[0x80, 0],                           // continuation without a start
            &[0x83, 0],                           // unknown opcode
            &[0x09, 0],                           // fragmented ping
            &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0], // over the limit
        ];
        for bad in cases {
            assert!(FrameDecoder::new(1000).decode(bad).is_err(), "{bad:?}");
        }
        assert!(
            FrameDecoder::new(10)
                .decode(&[0x81, 2, 0xff, 0xfe])
                .is_err()
        );
    }
}
