//! Well-behaved clients: each runs one session after another on its transport until the
//! deadline, sending numbered messages to `/echo` and checking every echo.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sockjs_bench::chunked::BodyDecoder;
use sockjs_bench::http_client::HttpConn;
use sockjs_bench::rng::Rng;
use sockjs_bench::sockjs::{Frame, parse_frame, take_lines};
use sockjs_bench::ws_client::{WsConn, WsEvent};
use tokio::sync::mpsc;
use tokio::time::{sleep, sleep_until, timeout};

use crate::check::{Echoes, Shared};

/// The transports a well-behaved client may use.
pub(crate) const TRANSPORTS: [&str; 5] =
    ["websocket", "xhr_streaming", "xhr", "eventsource", "jsonp"];

/// Largest frame or message a client reads.
const MAX_FRAME: usize = 1 << 20;
/// How long a session waits for its last echoes before it ends.
const DRAIN: Duration = Duration::from_secs(10);
/// How long one request may take before the session counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs sessions on `transport` until `deadline`.
pub(crate) async fn client(
    addr: SocketAddr,
    transport: &'static str,
    seed: u64,
    shared: Shared,
    deadline: Instant,
) {
    let mut rng = Rng::new(seed);
    while Instant::now() < deadline {
        let messages = 20 + rng.next_u64() % 180;
        let mut echoes = Echoes::default();
        let cut = match timeout(
            Duration::from_secs(600),
            session(addr, transport, &mut rng, &mut echoes, messages, &shared),
        )
        .await
        {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(_) => Some("session took over 600 s".to_string()),
        };
        let failed = cut.is_some();
        shared.lock().session(transport, &echoes, cut);
        if failed {
            // Not in a tight loop, whatever went wrong.
            sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One session: `messages` numbered messages at a random pace, a few in flight at a time;
/// then the last echoes, and the end (a close frame on a WebSocket; HTTP sessions are left
/// to time out). An error is why the session did not stay open.
async fn session(
    addr: SocketAddr,
    transport: &'static str,
    rng: &mut Rng,
    echoes: &mut Echoes,
    messages: u64,
    shared: &Shared,
) -> Result<(), String> {
    let path = format!("/echo/{:03}/{}", rng.next_u64() % 1000, rng.session_id());
    let window = 1 + (rng.next_u64() % 4) as usize;
    let pace = Duration::from_millis(5 + rng.next_u64() % 40);
    if transport == "websocket" {
        return websocket(addr, &path, rng, echoes, messages, window, pace, shared).await;
    }
    let (tx, mut rx) = mpsc::channel::<Result<(Frame, Instant), String>>(256);
    let receiver = tokio::spawn(receive(addr, path.clone(), transport, tx));
    let result = async {
        // The session is open once `o` arrives (after xhr_streaming's prelude).
        loop {
            match rx.recv().await {
                Some(Ok((Frame::Open, _))) => break,
                Some(Ok((Frame::Prelude, _))) => {}
                Some(Ok((f, _))) => return Err(format!("first frame {f:?}")),
                Some(Err(e)) => return Err(e),
                None => return Err("receiver ended before o".into()),
            }
        }
        let mut sender = HttpConn::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (send_path, jsonp) = if transport == "jsonp" {
            (format!("{path}/jsonp_send"), true)
        } else {
            (format!("{path}/xhr_send"), false)
        };
        let mut next = tokio::time::Instant::now();
        let mut drain_until = None;
        loop {
            if echoes.sent >= messages && echoes.outstanding() == 0 {
                return Ok(());
            }
            if echoes.sent >= messages && drain_until.is_none() {
                drain_until = Some(tokio::time::Instant::now() + DRAIN);
            }
            let can_send = echoes.sent < messages && echoes.outstanding() < window;
            tokio::select! {
                frame = rx.recv() => match frame {
                    Some(Ok((frame, at))) => on_frame(frame, at, echoes, shared)?,
                    Some(Err(e)) => return Err(e),
                    None => return Err("receiver ended".into()),
                },
                _ = sleep_until(next), if can_send => {
                    let len = (rng.next_u64() % 200) as usize;
                    let text = echoes.send(len, || rng.next_u64());
                    let body = serde_json::to_string(&[text]).expect("a string array");
                    let (status, answer) = timeout(
                        REQUEST_TIMEOUT,
                        sender.request("POST", &send_path, body.as_bytes(), 4096),
                    )
                    .await
                    .map_err(|_| "send timed out".to_string())?
                    .map_err(|e| format!("send: {e}"))?;
                    let ok = if jsonp { status == 200 && answer == b"ok" } else { status == 204 };
                    if !ok {
                        return Err(format!("send answered {status}"));
                    }
                    if !sender.is_reusable() {
                        sender = HttpConn::connect(addr)
                            .await
                            .map_err(|e| format!("connect: {e}"))?;
                    }
                    next += pace;
                },
                _ = sleep_until(drain_until.unwrap_or_else(far)), if drain_until.is_some() => {
                    return Ok(());
                }
            }
        }
    }
    .await;
    receiver.abort();
    result
}

fn far() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}

/// Takes one received frame: echoes are checked, a close ends the session.
fn on_frame(frame: Frame, at: Instant, echoes: &mut Echoes, shared: &Shared) -> Result<(), String> {
    match frame {
        Frame::Messages(texts) => {
            for text in texts {
                if let Some(us) = echoes.received(&text, at) {
                    shared.latency(us);
                }
            }
            Ok(())
        }
        Frame::Heartbeat | Frame::Prelude => Ok(()),
        Frame::Open => Err("a second o".into()),
        Frame::Close(c) => Err(format!("closed by the server: c{c}")),
    }
}

/// The receiving side of an HTTP session: polls or streams, one request after another, and
/// hands every frame on with the time it arrived.
async fn receive(
    addr: SocketAddr,
    path: String,
    transport: &'static str,
    tx: mpsc::Sender<Result<(Frame, Instant), String>>,
) {
    let result = async {
        let (method, url) = match transport {
            "xhr_streaming" => ("POST", format!("{path}/xhr_streaming")),
            "xhr" => ("POST", format!("{path}/xhr")),
            "eventsource" => ("GET", format!("{path}/eventsource")),
            _ => ("GET", format!("{path}/jsonp?c=cb")),
        };
        let mut conn = HttpConn::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        loop {
            if !conn.is_reusable() {
                conn = HttpConn::connect(addr)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
            }
            conn.send_request(method, &url, b"")
                .await
                .map_err(|e| format!("receive: {e}"))?;
            let mut head = timeout(REQUEST_TIMEOUT, conn.read_head())
                .await
                .map_err(|_| "receive head timed out".to_string())?
                .map_err(|e| format!("receive: {e}"))?;
            if head.status != 200 {
                return Err(format!("receive answered {}", head.status));
            }
            let mut body = Vec::new();
            while !head.body.is_done() {
                timeout(
                    Duration::from_secs(60),
                    conn.read_body_some(&mut head.body, &mut body),
                )
                .await
                .map_err(|_| "receive body stalled".to_string())?
                .map_err(|e| format!("receive: {e}"))?;
                let at = Instant::now();
                let lines = take_lines(&mut body, MAX_FRAME)?;
                for line in lines {
                    let Some(frame) = frame_of(transport, &line)? else {
                        continue;
                    };
                    let close = matches!(frame, Frame::Close(_));
                    if tx.send(Ok((frame, at))).await.is_err() || close {
                        return Ok(());
                    }
                }
            }
            if !matches!(head.body, BodyDecoder::Done) && !body.is_empty() {
                return Err("a response ended inside a frame".into());
            }
        }
    }
    .await;
    if let Err(e) = result {
        let _ = tx.send(Err(e)).await;
    }
}

/// The SockJS frame in one line of a transport's body, if the line holds one.
fn frame_of(transport: &str, line: &str) -> Result<Option<Frame>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    match transport {
        "eventsource" => {
            if line.is_empty() {
                return Ok(None);
            }
            let data = line
                .strip_prefix("data: ")
                .ok_or_else(|| format!("eventsource line {line:?}"))?;
            parse_frame(&unescape_eventsource(data)).map(Some)
        }
        "jsonp" => {
            let inner = line
                .strip_prefix("/**/cb(")
                .and_then(|l| l.strip_suffix(");"))
                .ok_or_else(|| format!("jsonp line {:?}", clip(line)))?;
            let frame: String =
                serde_json::from_str(inner).map_err(|e| format!("jsonp string: {e}"))?;
            parse_frame(&frame).map(Some)
        }
        _ => parse_frame(line).map(Some),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Undoes the eventsource escaping of `%`, CR, LF and NUL.
fn unescape_eventsource(data: &str) -> String {
    let mut out = String::with_capacity(data.len());
    let mut rest = data;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3);
        let c = match code {
            Some("25") => '%',
            Some("0D") => '\r',
            Some("0A") => '\n',
            Some("00") => '\0',
            _ => {
                out.push('%');
                rest = &rest[i + 1..];
                continue;
            }
        };
        out.push(c);
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    out
}

/// A SockJS WebSocket session.
#[allow(clippy::too_many_arguments)]
async fn websocket(
    addr: SocketAddr,
    path: &str,
    rng: &mut Rng,
    echoes: &mut Echoes,
    messages: u64,
    window: usize,
    pace: Duration,
    shared: &Shared,
) -> Result<(), String> {
    let mut ws = WsConn::connect(
        addr,
        &format!("{path}/websocket"),
        rng.next_u64(),
        MAX_FRAME,
    )
    .await
    .map_err(|e| format!("connect: {e}"))?;
    match timeout(REQUEST_TIMEOUT, ws.recv()).await {
        Ok(Ok(Some(WsEvent::Text(t)))) if t == "o" => {}
        other => return Err(format!("instead of o: {other:?}")),
    }
    let mut next = tokio::time::Instant::now();
    let mut drain_until = None;
    loop {
        if echoes.sent >= messages
            && (echoes.outstanding() == 0
                || drain_until
                    .is_some_and(|d: tokio::time::Instant| d <= tokio::time::Instant::now()))
        {
            break;
        }
        if echoes.sent >= messages && drain_until.is_none() {
            drain_until = Some(tokio::time::Instant::now() + DRAIN);
        }
        let can_send = echoes.sent < messages && echoes.outstanding() < window;
        tokio::select! {
            ev = ws.recv() => {
                let at = Instant::now();
                match ev.map_err(|e| format!("websocket: {e}"))? {
                    Some(WsEvent::Text(t)) => on_frame(parse_frame(&t)?, at, echoes, shared)?,
                    Some(other) => return Err(format!("websocket: {other:?}")),
                    None => return Err("websocket ended without a close frame".into()),
                }
                if ws.has_pending_writes() {
                    ws.flush().await.map_err(|e| format!("websocket: {e}"))?;
                }
            }
            _ = sleep_until(next), if can_send => {
                let len = (rng.next_u64() % 200) as usize;
                let text = echoes.send(len, || rng.next_u64());
                let frame = serde_json::to_string(&[text]).expect("a string array");
                ws.queue_text(frame.as_bytes());
                ws.flush().await.map_err(|e| format!("websocket: {e}"))?;
                next += pace;
            }
            _ = sleep_until(drain_until.unwrap_or_else(far)), if drain_until.is_some() => {}
        }
    }
    // A clean end: our close frame, then the server's.
    ws.queue_frame(8, &1000u16.to_be_bytes());
    ws.flush()
        .await
        .map_err(|e| format!("websocket close: {e}"))?;
    let end = timeout(Duration::from_secs(5), async {
        loop {
            match ws.recv().await {
                Ok(Some(WsEvent::Close(_))) | Ok(None) | Err(_) => return,
                Ok(Some(_)) => {}
            }
        }
    })
    .await;
    if end.is_err() {
        sleep(Duration::from_millis(1)).await;
        return Err("no close frame in answer to ours".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_each_transport() {
        assert_eq!(frame_of("xhr", "o"), Ok(Some(Frame::Open)));
        assert_eq!(frame_of("eventsource", "\r"), Ok(None));
        assert_eq!(
            frame_of("eventsource", "data: a[\"100%25 \\\"x\\\"\"]\r"),
            Ok(Some(Frame::Messages(vec!["100% \"x\"".into()])))
        );
        assert_eq!(
            frame_of("jsonp", "/**/cb(\"a[\\\"\\u003c\\\"]\");\r"),
            Ok(Some(Frame::Messages(vec!["<".into()])))
        );
        assert!(frame_of("jsonp", "cb(\"o\")").is_err());
        assert!(frame_of("eventsource", "event: x").is_err());
        assert_eq!(unescape_eventsource("%0D%0A%00%25%zz"), "\r\n\0%%zz");
    }
}
