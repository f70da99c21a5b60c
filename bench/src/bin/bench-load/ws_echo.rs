//! `ws-echo`: sessions send numbered messages over WebSocket and time each echo.
//!
//! Against a SockJS server a session opens `<prefix>/000/<id>/websocket`, waits for `o`,
//! sends `["<payload>"]` frames and expects the payloads back in `a[...]` frames (the
//! server may batch several per frame); against `bench-raw-ws` it sends and expects the bare
//! payload. At most `window` messages are in flight per session. With a rate, each session
//! sends on its own evenly phased ticker (a tick that finds the window full is counted as
//! skipped); without one, every echo is answered with the next message at once.

use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sockjs_bench::sockjs::{Frame, parse_frame, payload, payload_seq, send_body};
use sockjs_bench::ws_client::{WsConn, WsEvent};
use tokio::time::{Interval, MissedTickBehavior};

use crate::run::{Phase, Ready, Shared, Target, reached};

/// Limit on one incoming message.
pub(crate) const MAX_MESSAGE: usize = 1 << 20;
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The shape of the load.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) window: usize,
    pub(crate) size: usize,
    /// Total messages per second over all sessions; 0 means as fast as the window allows.
    pub(crate) rate: f64,
}

/// Opens a WebSocket session (and for SockJS waits for its `o` frame).
pub(crate) async fn open(sh: &Shared, path: &str) -> io::Result<WsConn> {
    let c = &sh.common;
    let attempt = async {
        let mut ws = WsConn::connect(c.addr, path, sh.seed(), MAX_MESSAGE).await?;
        if c.target == Target::Sockjs {
            match ws.recv().await? {
                Some(WsEvent::Text(t)) if t == "o" => {}
                other => return Err(io::Error::other(format!("expected o, got {other:?}"))),
            }
        }
        Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "session open timed out"))?
}

/// A ticker for one of `sessions` sessions sharing `rate` messages per second, phased so
/// the sessions' ticks spread evenly over a period.
pub(crate) fn ticker(rate: f64, sessions: usize, index: usize) -> Interval {
    let period = Duration::from_secs_f64(sessions as f64 / rate);
    let offset = period.mul_f64(index as f64 / sessions as f64);
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    t.set_missed_tick_behavior(MissedTickBehavior::Burst);
    t
}

/// Waits for the next tick, or forever without a ticker.
pub(crate) async fn tick(t: &mut Option<Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

pub(crate) async fn session(index: usize, sh: Rc<Shared>, opts: Rc<Opts>, ready: Ready) {
    let path = sh.common.session_url(&sh.session_id(), "websocket");
    let ws = {
        let _permit = sh.gate.acquire().await;
        open(&sh, &path).await
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            sh.error(format!("open: {e}"));
            return;
        }
    };
    ready.ok();
    if let Err(e) = echo_loop(index, &sh, &opts, ws).await {
        sh.error(format!("session {index}: {e}"));
    }
}

struct InFlight {
    sent: VecDeque<(u32, Instant)>,
    next_seq: u64,
}

async fn echo_loop(index: usize, sh: &Shared, opts: &Opts, mut ws: WsConn) -> io::Result<()> {
    let mut phases = sh.phases();
    reached(&mut phases, Phase::Warmup).await;
    let sockjs = sh.common.target == Target::Sockjs;
    let mut flight = InFlight {
        sent: VecDeque::with_capacity(opts.window),
        next_seq: 0,
    };
    let send = |ws: &mut WsConn, flight: &mut InFlight| {
        let p = payload(flight.next_seq, opts.size);
        if sockjs {
            ws.queue_text(send_body(&[&p]).as_bytes());
        } else {
            ws.queue_text(p.as_bytes());
        }
        flight
            .sent
            .push_back((flight.next_seq as u32, Instant::now()));
        flight.next_seq += 1;
    };
    let fixed = opts.rate > 0.0;
    let mut ticker = fixed.then(|| ticker(opts.rate, sh.common.sessions, index));
    if !fixed {
        for _ in 0..opts.window {
            send(&mut ws, &mut flight);
        }
        ws.flush().await?;
    }
    loop {
        tokio::select! {
            biased;
            _ = reached(&mut phases, Phase::Done) => return Ok(()),
            event = ws.recv() => {
                let Some(mut ev) = event? else {
                    return Err(closed());
                };
                loop {
                    receive(index, sh, opts, sockjs, &mut flight, ev)?;
                    match ws.next_buffered()? {
                        Some(next) => ev = next,
                        None => break,
                    }
                }
                if !fixed {
                    while flight.sent.len() < opts.window {
                        send(&mut ws, &mut flight);
                    }
                }
                ws.flush().await?;
            }
            _ = tick(&mut ticker) => {
                if flight.sent.len() < opts.window {
                    send(&mut ws, &mut flight);
                    ws.flush().await?;
                } else {
                    sh.count(|s| s.skipped += 1);
                }
            }
        }
    }
}

fn receive(
    index: usize,
    sh: &Shared,
    opts: &Opts,
    sockjs: bool,
    flight: &mut InFlight,
    event: WsEvent,
) -> io::Result<()> {
    let text = match event {
        WsEvent::Text(t) => t,
        WsEvent::Close(code) => {
            return Err(io::Error::other(format!("server sent close {code:?}")));
        }
        WsEvent::Binary(_) => return Err(io::Error::other("unexpected binary message")),
    };
    if !sockjs {
        return echoed(index, sh, opts, flight, &text);
    }
    match parse_frame(&text).map_err(io::Error::other)? {
        Frame::Messages(list) => {
            for m in &list {
                echoed(index, sh, opts, flight, m)?;
            }
            Ok(())
        }
        Frame::Heartbeat => Ok(()),
        Frame::Close(reason) => Err(io::Error::other(format!("session closed: c{reason}"))),
        other => Err(io::Error::other(format!("unexpected frame {other:?}"))),
    }
}

fn echoed(
    index: usize,
    sh: &Shared,
    opts: &Opts,
    flight: &mut InFlight,
    m: &str,
) -> io::Result<()> {
    let Some((seq, sent)) = flight.sent.pop_front() else {
        return Err(io::Error::other("echo of a message never sent"));
    };
    if m.len() != opts.size.max(8) || payload_seq(m) != Some(seq) {
        return Err(io::Error::other(format!(
            "echo out of order or altered: expected #{seq}, got {:?}",
            sockjs_bench::sockjs::clip(m)
        )));
    }
    sh.record(index, sent.elapsed());
    Ok(())
}

/// The error for a server that closed the connection in the middle of a session.
pub(crate) fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection")
}
