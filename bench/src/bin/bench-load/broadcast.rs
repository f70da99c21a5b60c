//! `parked-polls` and `xhr-streaming`: many receiving sessions on a broadcast prefix while
//! one WebSocket session broadcasts numbered messages at a fixed rate.
//!
//! The broadcaster remembers when it sent each message; a delivery's latency is the time
//! from that send to the receiving session reading it. A parked-polls session always has an
//! `xhr` poll outstanding and re-polls as soon as one returns (messages that arrive in
//! between are queued by the server and come with the next poll). An xhr-streaming session
//! reads frames out of a chunked response and, when the server ends the response at its
//! `response_limit`, opens the next one on the same session (counted as a reconnect).

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sockjs_bench::http_client::{HttpConn, ResponseHead};
use sockjs_bench::sockjs::{Frame, clip, parse_frame, payload, payload_seq, send_body, take_lines};
use sockjs_bench::ws_client::WsEvent;
use tokio::time::{MissedTickBehavior, timeout};

use crate::http_poll::unexpected;
use crate::run::{Phase, Ready, Shared, reached};
use crate::ws_echo::{CONNECT_TIMEOUT, closed, open};

/// Most broadcasts one run may send (bounds the send-time table).
const MAX_BROADCASTS: usize = 4_000_000;
const MAX_BODY: usize = 16 << 20;
const MAX_LINE: usize = 1 << 20;

/// The shape of the load.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) size: usize,
    /// Broadcasts per second.
    pub(crate) rate: f64,
}

/// Send times of every broadcast so far, indexed by sequence number.
#[derive(Debug, Default)]
pub(crate) struct Board {
    sent_at: RefCell<Vec<Instant>>,
}

impl Board {
    fn deliver(&self, sh: &Shared, index: usize, m: &str) -> io::Result<()> {
        let sent = payload_seq(m).and_then(|seq| self.sent_at.borrow().get(seq as usize).copied());
        match sent {
            Some(at) => {
                sh.record(index, at.elapsed());
                Ok(())
            }
            None => Err(io::Error::other(format!(
                "delivery of a message never broadcast: {:?}",
                clip(m)
            ))),
        }
    }

    /// Handles one received frame; `Ok(true)` for `o`.
    fn frame(&self, sh: &Shared, index: usize, line: &str) -> io::Result<bool> {
        match parse_frame(line).map_err(io::Error::other)? {
            Frame::Messages(list) => {
                for m in &list {
                    self.deliver(sh, index, m)?;
                }
                Ok(false)
            }
            Frame::Heartbeat | Frame::Prelude => Ok(false),
            Frame::Open => Ok(true),
            Frame::Close(reason) => Err(io::Error::other(format!("session closed: c{reason}"))),
        }
    }
}

pub(crate) async fn broadcaster(sh: Rc<Shared>, opts: Rc<Opts>, board: Rc<Board>, ready: Ready) {
    let path = sh.common.session_url(&sh.session_id(), "websocket");
    let ws = {
        let _permit = sh.gate.acquire().await;
        open(&sh, &path).await
    };
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            sh.error(format!("broadcaster open: {e}"));
            return;
        }
    };
    ready.ok();
    let mut phases = sh.phases();
    reached(&mut phases, Phase::Warmup).await;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let result: io::Result<()> = async {
        loop {
            tokio::select! {
                biased;
                _ = reached(&mut phases, Phase::Done) => return Ok(()),
                // Its own copies of the broadcasts come back too: read and drop them.
                event = ws.recv() => {
                    match event? {
                        None => return Err(closed()),
                        Some(WsEvent::Close(code)) => {
                            return Err(io::Error::other(format!("server sent close {code:?}")));
                        }
                        Some(_) => {}
                    }
                    ws.flush().await?;
                }
                _ = ticker.tick() => {
                    let seq = board.sent_at.borrow().len();
                    if seq >= MAX_BROADCASTS {
                        return Err(io::Error::other("broadcast limit reached"));
                    }
                    ws.queue_text(send_body(&[&payload(seq as u64, opts.size)]).as_bytes());
                    board.sent_at.borrow_mut().push(Instant::now());
                    ws.flush().await?;
                    sh.count(|s| s.broadcasts += 1);
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        sh.error(format!("broadcaster: {e}"));
    }
}

pub(crate) async fn parked_poller(index: usize, sh: Rc<Shared>, board: Rc<Board>, ready: Ready) {
    let url = sh.common.session_url(&sh.session_id(), "xhr");
    let conn = {
        let _permit = sh.gate.acquire().await;
        let attempt = async {
            let mut conn = HttpConn::connect(sh.common.addr).await?;
            let (status, body) = conn.request("POST", &url, b"", MAX_BODY).await?;
            if status != 200 || body != b"o\n" {
                return Err(unexpected("opening poll", status, &body));
            }
            Ok(conn)
        };
        timeout(CONNECT_TIMEOUT, attempt).await
    };
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return sh.error(format!("open: {e}")),
        Err(_) => return sh.error("open: timed out".into()),
    };
    ready.ok();
    let mut phases = sh.phases();
    let result: io::Result<()> = async {
        loop {
            let (status, body) = tokio::select! {
                biased;
                _ = reached(&mut phases, Phase::Done) => return Ok(()),
                r = conn.request("POST", &url, b"", MAX_BODY) => r?,
            };
            if status != 200 {
                return Err(unexpected("poll", status, &body));
            }
            let text = std::str::from_utf8(&body).map_err(io::Error::other)?;
            for line in text.split_terminator('\n') {
                if board.frame(&sh, index, line)? {
                    return Err(io::Error::other("session opened again"));
                }
            }
            if !conn.is_reusable() {
                conn = HttpConn::connect(sh.common.addr).await?;
                sh.count(|s| s.reconnects += 1);
            }
        }
    }
    .await;
    if let Err(e) = result {
        sh.error(format!("session {index}: {e}"));
    }
}

/// One xhr_streaming receiver: its connection, the current response and a partial line.
struct Stream {
    conn: HttpConn,
    head: ResponseHead,
    pending: Vec<u8>,
    body: Vec<u8>,
}

impl Stream {
    async fn start(conn: Option<HttpConn>, sh: &Shared, url: &str) -> io::Result<Self> {
        let mut conn = match conn {
            Some(c) if c.is_reusable() => c,
            _ => HttpConn::connect(sh.common.addr).await?,
        };
        conn.send_request("POST", url, b"").await?;
        let head = conn.read_head().await?;
        if head.status != 200 {
            return Err(unexpected("xhr_streaming", head.status, b""));
        }
        Ok(Stream {
            conn,
            head,
            pending: Vec::new(),
            body: Vec::new(),
        })
    }

    /// Reads more of the response; returns complete frames.
    async fn frames(&mut self) -> io::Result<Vec<String>> {
        self.body.clear();
        self.conn
            .read_body_some(&mut self.head.body, &mut self.body)
            .await?;
        self.pending.extend_from_slice(&self.body);
        take_lines(&mut self.pending, MAX_LINE).map_err(io::Error::other)
    }
}

pub(crate) async fn streamer(index: usize, sh: Rc<Shared>, board: Rc<Board>, ready: Ready) {
    let url = sh.common.session_url(&sh.session_id(), "xhr_streaming");
    let opened = {
        let _permit = sh.gate.acquire().await;
        let attempt = async {
            let mut stream = Stream::start(None, &sh, &url).await?;
            loop {
                for line in stream.frames().await? {
                    if board.frame(&sh, index, &line)? {
                        return Ok(stream);
                    }
                }
                if stream.head.body.is_done() {
                    return Err(io::Error::other("response ended before o"));
                }
            }
        };
        timeout(CONNECT_TIMEOUT, attempt).await
    };
    let mut stream = match opened {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return sh.error(format!("open: {e}")),
        Err(_) => return sh.error("open: timed out".into()),
    };
    ready.ok();
    let mut phases = sh.phases();
    let result: io::Result<()> = async {
        loop {
            let frames = tokio::select! {
                biased;
                _ = reached(&mut phases, Phase::Done) => return Ok(()),
                r = stream.frames() => r?,
            };
            for line in frames {
                if board.frame(&sh, index, &line)? {
                    return Err(io::Error::other("session opened again"));
                }
            }
            if stream.head.body.is_done() {
                if !stream.pending.is_empty() {
                    return Err(io::Error::other("response ended inside a frame"));
                }
                sh.count(|s| s.reconnects += 1);
                let conn = stream.conn;
                stream = tokio::select! {
                    biased;
                    _ = reached(&mut phases, Phase::Done) => return Ok(()),
                    s = Stream::start(Some(conn), &sh, &url) => s?,
                };
            }
        }
    }
    .await;
    if let Err(e) = result {
        sh.error(format!("session {index}: {e}"));
    }
}
