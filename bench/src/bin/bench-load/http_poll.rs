//! `http-poll`: sessions time one polling round trip: `xhr_send` of `["x"]`, then an `xhr`
//! poll that returns `a["x"]\n`.
//!
//! Against a SockJS server each session first opens with an `xhr` poll (answered `o\n`),
//! then repeats the round trip on one keep-alive connection; `xhr_send` must answer 204
//! and the poll exactly `a["x"]\n`. Against `bench-raw-http` the same two requests are
//! made and both must answer 200 with `a["x"]\n`. With a rate, each session starts round
//! trips on its own evenly phased ticker; without one, back to back.

use std::io;
use std::rc::Rc;
use std::time::Instant;

use sockjs_bench::http_client::HttpConn;
use tokio::time::timeout;

use crate::run::{Phase, Ready, Shared, Target, reached};
use crate::ws_echo::{CONNECT_TIMEOUT, tick, ticker};

const MAX_BODY: usize = 64 * 1024;

/// The shape of the load.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    /// Total round trips per second over all sessions; 0 means back to back.
    pub(crate) rate: f64,
}

struct Urls {
    send: String,
    poll: String,
}

/// Connects and, for SockJS, opens the session with its first poll.
async fn open(sh: &Shared, urls: &Urls) -> io::Result<HttpConn> {
    let attempt = async {
        let mut conn = HttpConn::connect(sh.common.addr).await?;
        if sh.common.target == Target::Sockjs {
            let (status, body) = conn.request("POST", &urls.poll, b"", MAX_BODY).await?;
            if status != 200 || body != b"o\n" {
                return Err(unexpected("opening poll", status, &body));
            }
        }
        Ok(conn)
    };
    timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "session open timed out"))?
}

/// An error describing an answer that was not the expected one.
pub(crate) fn unexpected(what: &str, status: u16, body: &[u8]) -> io::Error {
    let body = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
    io::Error::other(format!("{what}: got {status} {body:?}"))
}

pub(crate) async fn session(index: usize, sh: Rc<Shared>, opts: Rc<Opts>, ready: Ready) {
    let id = sh.session_id();
    let urls = Urls {
        send: sh.common.session_url(&id, "xhr_send"),
        poll: sh.common.session_url(&id, "xhr"),
    };
    let conn = {
        let _permit = sh.gate.acquire().await;
        open(&sh, &urls).await
    };
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            sh.error(format!("open: {e}"));
            return;
        }
    };
    ready.ok();
    if let Err(e) = poll_loop(index, &sh, &opts, &urls, conn).await {
        sh.error(format!("session {index}: {e}"));
    }
}

async fn poll_loop(
    index: usize,
    sh: &Shared,
    opts: &Opts,
    urls: &Urls,
    mut conn: HttpConn,
) -> io::Result<()> {
    let mut phases = sh.phases();
    reached(&mut phases, Phase::Warmup).await;
    let mut ticker = (opts.rate > 0.0).then(|| ticker(opts.rate, sh.common.sessions, index));
    let sockjs = sh.common.target == Target::Sockjs;
    loop {
        if ticker.is_some() {
            tokio::select! {
                biased;
                _ = reached(&mut phases, Phase::Done) => return Ok(()),
                _ = tick(&mut ticker) => {}
            }
        }
        let started = Instant::now();
        tokio::select! {
            biased;
            _ = reached(&mut phases, Phase::Done) => return Ok(()),
            r = round_trip(&mut conn, urls, sockjs) => r?,
        }
        sh.record(index, started.elapsed());
        if !conn.is_reusable() {
            conn = HttpConn::connect(sh.common.addr).await?;
            sh.count(|s| s.reconnects += 1);
        }
    }
}

async fn round_trip(conn: &mut HttpConn, urls: &Urls, sockjs: bool) -> io::Result<()> {
    let (status, body) = conn
        .request("POST", &urls.send, b"[\"x\"]", MAX_BODY)
        .await?;
    let send_ok = if sockjs {
        status == 204 && body.is_empty()
    } else {
        status == 200 && body == b"a[\"x\"]\n"
    };
    if !send_ok {
        return Err(unexpected("xhr_send", status, &body));
    }
    let (status, body) = conn.request("POST", &urls.poll, b"", MAX_BODY).await?;
    if status != 200 || body != b"a[\"x\"]\n" {
        return Err(unexpected("xhr poll", status, &body));
    }
    Ok(())
}
