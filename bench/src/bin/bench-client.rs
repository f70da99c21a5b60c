//! The SockJS client's CPU per message against the load generator's hand-written client, in
//! one run against one server: both echo the same payloads one at a time (send, wait for the
//! echo), on a WebSocket session and on an xhr polling session (`xhr_send` plus a poll per
//! message), rounds interleaving the two clients.
//!
//!     bench-client --addr 127.0.0.1:PORT [--messages N] [--size BYTES] [--rounds N] [--json]
//!
//! The figure is this thread's CPU time (`/proc/thread-self/schedstat`; the runtime is
//! tokio's current-thread one, so every task of either client runs here) per echoed message:
//! encoding and sending, reading and decoding, checking the echo. The server runs in its own
//! process and is not counted. The hand-written client frames bytes the load generator's
//! way (`ws_client`, `http_client`, `sockjs` modules); the SockJS client goes through
//! `sockjs_tokio::connect`.

use std::net::SocketAddr;
use std::time::Duration;

use sockjs_bench::http_client::HttpConn;
use sockjs_bench::procfs::thread_cpu_ns;
use sockjs_bench::rng::Rng;
use sockjs_bench::sockjs::{Frame, parse_frame, payload, payload_seq, send_body};
use sockjs_bench::ws_client::{WsConn, WsEvent};
use sockjs_tokio::{ClientOptions, Transport};

const USAGE: &str =
    "usage: bench-client --addr HOST:PORT [--messages N] [--size BYTES] [--rounds N] [--json]";

type Result<T> = std::result::Result<T, String>;

struct Args {
    addr: SocketAddr,
    messages: u64,
    size: usize,
    rounds: usize,
    json: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
        messages: 5000,
        size: 32,
        rounds: 3,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--messages" => args.messages = value()?.parse().map_err(|e| format!("{e}"))?,
            "--size" => args.size = value()?.parse().map_err(|e| format!("{e}"))?,
            "--rounds" => args.rounds = value()?.parse().map_err(|e| format!("{e}"))?,
            "--json" => args.json = true,
            _ => return Err(String::new()),
        }
    }
    Ok(args)
}

/// The hand-written WebSocket client: `n` echoes, one at a time.
async fn hand_ws(args: &Args, rng: &mut Rng) -> Result<()> {
    let path = format!("/echo/000/{}/websocket", rng.session_id());
    let mut ws = WsConn::connect(args.addr, &path, rng.next_u64(), 1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    expect_open(ws.recv().await.map_err(|e| e.to_string())?)?;
    for seq in 0..args.messages {
        let p = payload(seq, args.size);
        ws.queue_text(send_body(&[&p]).as_bytes());
        ws.flush().await.map_err(|e| e.to_string())?;
        loop {
            match ws.recv().await.map_err(|e| e.to_string())? {
                Some(WsEvent::Text(t)) => match parse_frame(&t)? {
                    Frame::Messages(m)
                        if m.len() == 1 && payload_seq(&m[0]) == Some(seq as u32) =>
                    {
                        break;
                    }
                    Frame::Heartbeat => {}
                    other => return Err(format!("unexpected {other:?}")),
                },
                other => return Err(format!("unexpected {other:?}")),
            }
        }
    }
    Ok(())
}

fn expect_open(event: Option<WsEvent>) -> Result<()> {
    match event {
        Some(WsEvent::Text(t)) if t == "o" => Ok(()),
        other => Err(format!("expected o, got {other:?}")),
    }
}

/// The hand-written HTTP client: per message an `xhr_send` and an `xhr` poll, each on its
/// keep-alive connection, as the load generator's http-poll scenario does.
async fn hand_xhr(args: &Args, rng: &mut Rng) -> Result<()> {
    let session = format!("/echo/000/{}", rng.session_id());
    let err = |e: std::io::Error| e.to_string();
    let mut poll = HttpConn::connect(args.addr).await.map_err(err)?;
    let mut send = HttpConn::connect(args.addr).await.map_err(err)?;
    let xhr = format!("{session}/xhr");
    let xhr_send = format!("{session}/xhr_send");
    let (_, open) = poll
        .request("POST", &xhr, b"", 1 << 20)
        .await
        .map_err(err)?;
    if open != b"o\n" {
        return Err(format!("expected o, got {open:?}"));
    }
    for seq in 0..args.messages {
        let p = payload(seq, args.size);
        let (status, _) = send
            .request("POST", &xhr_send, send_body(&[&p]).as_bytes(), 1024)
            .await
            .map_err(err)?;
        if status != 204 {
            return Err(format!("xhr_send answered {status}"));
        }
        let (_, body) = poll
            .request("POST", &xhr, b"", 1 << 20)
            .await
            .map_err(err)?;
        let text = std::str::from_utf8(&body).map_err(|e| e.to_string())?;
        match parse_frame(text.trim_end_matches('\n'))? {
            Frame::Messages(m) if m.len() == 1 && payload_seq(&m[0]) == Some(seq as u32) => {}
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    Ok(())
}

/// The SockJS client on `transport`: `n` echoes, one at a time.
async fn sockjs_client(args: &Args, transport: Transport) -> Result<()> {
    let url = format!("http://{}/echo", args.addr);
    let options = ClientOptions::default().transports([transport]);
    let mut session = sockjs_tokio::connect(&url, options)
        .await
        .map_err(|e| e.to_string())?;
    for seq in 0..args.messages {
        session
            .send(payload(seq, args.size))
            .map_err(|e| e.to_string())?;
        let echo = session.recv().await.ok_or("session closed")?;
        if payload_seq(&echo) != Some(seq as u32) {
            return Err(format!("unexpected echo {echo:?}"));
        }
    }
    Ok(())
}

/// Runs one measurement; returns microseconds of CPU per message.
async fn measure<F: std::future::Future<Output = Result<()>>>(n: u64, f: F) -> Result<f64> {
    let t0 = thread_cpu_ns();
    tokio::time::timeout(Duration::from_secs(300), f)
        .await
        .map_err(|_| "timed out".to_string())??;
    Ok((thread_cpu_ns() - t0) as f64 / 1000.0 / n as f64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "{}{USAGE}",
                if e.is_empty() {
                    String::new()
                } else {
                    e + "\n"
                }
            );
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = rt.block_on(async {
        let mut rng = Rng::from_clock();
        let n = args.messages;
        let (mut hw, mut cw, mut hx, mut cx) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.rounds {
            hw.push(measure(n, hand_ws(&args, &mut rng)).await?);
            cw.push(measure(n, sockjs_client(&args, Transport::WebSocket)).await?);
            hx.push(measure(n, hand_xhr(&args, &mut rng)).await?);
            cx.push(measure(n, sockjs_client(&args, Transport::XhrPolling)).await?);
        }
        Ok::<_, String>([
            ("websocket", median(&mut hw), median(&mut cw)),
            ("xhr", median(&mut hx), median(&mut cx)),
        ])
    });
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("bench-client: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!(
        "client CPU per echoed message ({} messages of {} bytes, median of {} rounds)",
        args.messages, args.size, args.rounds
    );
    println!(
        "{:<10} {:>14} {:>14} {:>8}",
        "transport", "hand us/msg", "client us/msg", "x hand"
    );
    for (name, hand, client) in rows {
        println!(
            "{name:<10} {hand:>14.2} {client:>14.2} {:>8.2}",
            client / hand
        );
        if args.json {
            println!(
                "{{\"case\":\"client-cpu\",\"transport\":\"{name}\",\"hand_us_per_msg\":{hand:.3},\"client_us_per_msg\":{client:.3},\"messages\":{},\"size\":{}}}",
                args.messages, args.size
            );
        }
    }
    std::process::ExitCode::SUCCESS
}
