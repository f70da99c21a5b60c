//! The sans-IO SockJS client (`client::Client`) against a hostile server: a program of server
//! answers (arbitrary bytes, or canned good ones that reach deeper states: `/info`, the
//! WebSocket 101 with the right accept key, a streaming head, frames), connection ends, time
//! and application calls.
//!
//! Input: one byte choosing the allowed transports and `max_frame_size`, then operations of
//! one byte each (`op % 8`) with their operands:
//! - 0 `k n bytes[n]`: those bytes to connection `k` (modulo the live ones);
//! - 1 `k`: that connection ends;
//! - 2 `t`: time moves `t * 50` ms, and the timer fires if due;
//! - 3 `n bytes[n]`: the application sends them as a message (lossy UTF-8);
//! - 4 `c`: the application closes with code `c`-chosen (valid or not);
//! - 5 `k w`: a canned answer `w % 7` to connection `k` (an `/info` with or without
//!   websocket, the 101 its request asks for, a chunked streaming head, a chunk holding
//!   `o\n` or `a["x"]\n`, an xhr answer `o\n`);
//! - 6 `k w`: a WebSocket text frame `o`, `h`, `a["x"]`, `c[3000,"x"]`, a ping, or garbage;
//! - 7: nothing.
//!
//! Checks after every call: no panic; I/O only for connections the client asked to open and
//! has not closed; `buffered_bytes` within one head and a few frames per connection;
//! `Opened` at most once and before any `Message`; `Closed` at most once and nothing after;
//! once closed, no connection and no timer; after `handle_timeout(now)` the next deadline
//! is later than `now`.
#![no_main]

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sockjs_core::client::{Client, ClientOptions, ConnId, Event, Io, Transport, Url};

struct Host {
    client: Client,
    now: Instant,
    live: BTreeSet<ConnId>,
    /// The last request written to each connection.
    requests: HashMap<ConnId, Vec<u8>>,
    opened: bool,
    closed: bool,
    max_frame: usize,
}

impl Host {
    fn drain(&mut self) {
        while let Some(io) = self.client.poll_io() {
            match io {
                Io::Connect(c) => assert!(self.live.insert(c), "{c:?} opened twice"),
                Io::Write(c, bytes) => {
                    assert!(self.live.contains(&c), "write to {c:?}, not open");
                    self.requests.insert(c, bytes.to_vec());
                }
                Io::Close(c) => assert!(self.live.remove(&c), "close of {c:?}, not open"),
            }
        }
        while let Some(event) = self.client.poll_event() {
            assert!(!self.closed, "{event:?} after Closed");
            match event {
                Event::Opened(_) => {
                    assert!(!self.opened, "opened twice");
                    self.opened = true;
                }
                Event::Message(_) => assert!(self.opened, "a message before Opened"),
                Event::Error(_) => {}
                Event::Closed(_) => self.closed = true,
            }
        }
        let per_conn = 64 * 1024 + 4 * self.max_frame + 512;
        let bound = per_conn * self.client.connection_count().max(1) + self.max_frame * 2;
        assert!(
            self.client.buffered_bytes() <= bound,
            "{} bytes buffered",
            self.client.buffered_bytes()
        );
        if self.closed {
            assert_eq!(
                self.client.connection_count(),
                0,
                "connections after Closed"
            );
            assert_eq!(self.client.poll_timeout(), None, "a timer after Closed");
        }
    }

    fn pick(&self, k: u8) -> Option<ConnId> {
        let n = self.live.len();
        (n > 0).then(|| *self.live.iter().nth(k as usize % n).unwrap_or(&ConnId(0)))
    }

    fn feed(&mut self, k: u8, bytes: &[u8]) {
        if let Some(c) = self.pick(k) {
            self.client.handle_bytes(self.now, c, bytes);
        }
        self.drain();
    }

    fn upgrade_answer(&self, c: ConnId) -> Vec<u8> {
        let request = self.requests.get(&c).cloned().unwrap_or_default();
        let text = String::from_utf8_lossy(&request);
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap_or("");
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: {}\r\n\r\n",
            sockjs_core::ws::accept_key(key.as_bytes())
        )
        .into_bytes()
    }
}

fn chunked(data: &str) -> Vec<u8> {
    format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
}

fuzz_target!(|input: &[u8]| {
    let Some((&setup, mut program)) = input.split_first() else {
        return;
    };
    let transports: Vec<Transport> = Transport::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| setup & (1 << i) != 0)
        .map(|(_, t)| t)
        .collect();
    let max_frame = [64, 256, 4096, 1 << 16][(setup >> 4) as usize % 4];
    let options = ClientOptions::default()
        .transports(transports)
        .max_frame_size(max_frame);
    let now = Instant::now();
    let mut n = 0u32;
    let entropy = Box::new(move || {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        n
    });
    let url = Url::parse("http://127.0.0.1:8081/echo").expect("a good URL");
    let mut host = Host {
        client: Client::new(url, options, now, entropy),
        now,
        live: BTreeSet::new(),
        requests: HashMap::new(),
        opened: false,
        closed: false,
        max_frame,
    };
    host.drain();

    let next = |program: &mut &[u8]| -> u8 {
        let Some((&b, rest)) = program.split_first() else {
            return 0;
        };
        *program = rest;
        b
    };
    let mut steps = 0;
    while !program.is_empty() && steps < 400 {
        steps += 1;
        let op = next(&mut program) % 8;
        match op {
            0 => {
                let k = next(&mut program);
                let len = (next(&mut program) as usize).min(program.len());
                let (bytes, rest) = program.split_at(len);
                program = rest;
                host.feed(k, bytes);
            }
            1 => {
                if let Some(c) = host.pick(next(&mut program)) {
                    host.client.handle_eof(host.now, c);
                    host.live.remove(&c);
                }
                host.drain();
            }
            2 => {
                host.now += Duration::from_millis(50 * u64::from(next(&mut program)));
                if host.client.poll_timeout().is_some_and(|t| t <= host.now) {
                    host.client.handle_timeout(host.now);
                    host.drain();
                    if let Some(t) = host.client.poll_timeout() {
                        assert!(t > host.now, "the timer would fire at once again");
                    }
                }
            }
            3 => {
                let len = (next(&mut program) as usize).min(program.len());
                let (bytes, rest) = program.split_at(len);
                program = rest;
                let _ = host.client.send(&String::from_utf8_lossy(bytes));
                host.drain();
            }
            4 => {
                let code = [1000, 3000, 4999, 1001, 0][next(&mut program) as usize % 5];
                let _ = host.client.close(code, "bye");
                host.drain();
            }
            5 => {
                let k = next(&mut program);
                let which = next(&mut program) % 7;
                let Some(c) = host.pick(k) else { continue };
                let answer: Vec<u8> = match which {
                    0 => b"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n{\"websocket\":true}"
                        .to_vec(),
                    1 => b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n{\"websocket\":false}"
                        .to_vec(),
                    2 => host.upgrade_answer(c),
                    3 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                    4 => chunked("o\n"),
                    5 => chunked("a[\"x\"]\n"),
                    _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no\n".to_vec(),
                };
                host.feed(k, &answer);
            }
            6 => {
                let k = next(&mut program);
                let which = next(&mut program) % 6;
                let mut frame = BytesMut::new();
                match which {
                    0 => sockjs_core::ws::frame::encode_text(&mut frame, "o"),
                    1 => sockjs_core::ws::frame::encode_text(&mut frame, "h"),
                    2 => sockjs_core::ws::frame::encode_text(&mut frame, "a[\"x\"]"),
                    3 => sockjs_core::ws::frame::encode_text(&mut frame, "c[3000,\"x\"]"),
                    4 => sockjs_core::ws::frame::encode_ping(&mut frame, b"p"),
                    _ => sockjs_core::ws::frame::encode_text(&mut frame, "a[1,"),
                }
                host.feed(k, &frame);
            }
            _ => {}
        }
    }
});
