//! Topics: publish-to-deliver latency and deliveries per second with many WebSocket
//! subscribers, on one node (the in-process backend) and on 3 nodes through Redis, in one
//! run and one process (servers and clients share a tokio runtime of 2 worker threads).
//!
//! ```text
//! bench-topics [--subscribers 1000] [--rate 20] [--seconds 5] [--burst 200] [--json]
//! ```
//!
//! Each case opens `--subscribers` SockJS WebSocket sessions (spread over the nodes), each
//! subscribed to one topic, then node 0 publishes: `--rate` messages a second for
//! `--seconds` (after a second of warmup), each carrying its send time, for the latency
//! percentiles; then `--burst` messages back to back, for deliveries per second (every
//! subscriber's last message of the burst received, over the time since the first publish).
//! The 3-node case starts its own `redis-server` (127.0.0.1, a free port, no persistence,
//! stopped by its PID); it is skipped with a note if there is none.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sockjs_bench::histogram::Histogram;
use sockjs_bench::sockjs::{Frame, parse_frame};
use sockjs_bench::ws_client::{WsConn, WsEvent};
use sockjs_tokio::topics::{RedisBackend, RedisConfig};
use sockjs_tokio::{Options, Server, ServerHandle, Topics};

const TOPIC: &str = "bench";

struct Args {
    subscribers: usize,
    rate: u64,
    seconds: u64,
    burst: u64,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        subscribers: 1000,
        rate: 20,
        seconds: 5,
        burst: 200,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            args.json = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value.parse().map_err(|_| format!("bad {flag}: {value}"))?;
        match flag.as_str() {
            "--subscribers" => args.subscribers = (n as usize).clamp(1, 10_000),
            "--rate" => args.rate = n.clamp(1, 1000),
            "--seconds" => args.seconds = n.clamp(1, 60),
            "--burst" => args.burst = n.clamp(1, 10_000),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

/// Our `redis-server`, killed by its PID when dropped.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_redis() -> Option<(Redis, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let redis = Redis(child);
    for _ in 0..250 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some((redis, port));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn start_node(topics: Topics) -> (SocketAddr, ServerHandle) {
    let server = Server::builder()
        .endpoint("/t", Options::default(), move |session| {
            let topics = topics.clone();
            async move {
                let _ = topics.subscribe(TOPIC, &session.handle());
                session.closed().await;
            }
        })
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    let handle = server.handle();
    tokio::spawn(async move {
        let _ = server.run().await;
    });
    (addr, handle)
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    /// Nanoseconds from publish to receipt of each measured message.
    latencies: Vec<u64>,
    /// When the last burst message arrived.
    burst_done: Option<Instant>,
}

/// A message: phase (`w` warmup, `m` measured, `b` burst, `e` the burst's last), sequence
/// number, and send time in nanoseconds since `base`.
fn message(phase: char, seq: u64, base: Instant) -> String {
    format!("{phase}{seq:08x}{:016x}", base.elapsed().as_nanos() as u64)
}

async fn subscriber(mut ws: WsConn, base: Instant, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut mine = Seen::default();
    while let Ok(Ok(Some(WsEvent::Text(text)))) =
        tokio::time::timeout(Duration::from_secs(5), ws.recv()).await
    {
        let Ok(Frame::Messages(msgs)) = parse_frame(&text) else {
            continue;
        };
        let now = base.elapsed().as_nanos() as u64;
        for m in msgs {
            let sent = m
                .get(9..25)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or(now);
            match m.as_bytes().first() {
                Some(b'm') => {
                    mine.latencies.push(now.saturating_sub(sent));
                }
                Some(b'e') => mine.burst_done = Some(Instant::now()),
                _ => {}
            }
        }
        if mine.burst_done.is_some() {
            break;
        }
    }
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(mine);
}

struct Outcome {
    case: String,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    delivered_ratio: f64,
    burst_deliveries_per_s: f64,
    complete: usize,
}

async fn run_case(case: &str, nodes: Vec<Topics>, args: &Args) -> Outcome {
    let mut addrs = Vec::new();
    let mut servers = Vec::new();
    for t in &nodes {
        let (addr, handle) = start_node(t.clone()).await;
        addrs.push(addr);
        servers.push(handle);
    }
    let base = Instant::now();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let mut tasks = Vec::new();
    for i in 0..args.subscribers {
        let addr = addrs[i % addrs.len()];
        let mut ws = WsConn::connect(addr, &format!("/t/000/s{i}/websocket"), i as u64, 1 << 20)
            .await
            .expect("connect");
        match ws.recv().await {
            Ok(Some(WsEvent::Text(t))) if t == "o" => {}
            other => panic!("expected o, got {other:?}"),
        }
        tasks.push(tokio::spawn(subscriber(ws, base, seen.clone())));
    }
    // Every session subscribed, and every node's subscription through Redis in place.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let subscribed: usize = nodes.iter().map(|t| t.subscribers(TOPIC)).sum();
        let ready = nodes.iter().all(|t| {
            let b = t.stats().backend;
            b.connected && (nodes.len() == 1 || b.subscribed == 1)
        });
        if subscribed == args.subscribers && ready {
            break;
        }
        assert!(Instant::now() < deadline, "{case}: subscribers not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let publisher = &nodes[0];
    let period = Duration::from_nanos(1_000_000_000 / args.rate);
    let mut next = Instant::now();
    let mut seq = 0u64;
    let warmup = args.rate;
    let measured = args.rate * args.seconds;
    for i in 0..warmup + measured {
        tokio::time::sleep_until(next.into()).await;
        publisher.publish(
            TOPIC,
            &message(if i < warmup { 'w' } else { 'm' }, seq, base),
        );
        seq += 1;
        next += period;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let burst_start = Instant::now();
    for i in 0..args.burst {
        let phase = if i + 1 == args.burst { 'e' } else { 'b' };
        publisher.publish(TOPIC, &message(phase, seq, base));
        seq += 1;
        if i % 16 == 15 {
            tokio::task::yield_now().await;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    let mut all = Histogram::new();
    let mut got = 0;
    let mut last = burst_start;
    let mut complete = 0;
    for s in &seen {
        for &l in &s.latencies {
            all.record(l);
        }
        got += s.latencies.len();
        if let Some(t) = s.burst_done {
            last = last.max(t);
            complete += 1;
        }
    }
    for s in servers {
        s.shutdown();
    }
    let secs = last.duration_since(burst_start).as_secs_f64().max(1e-9);
    Outcome {
        case: case.to_string(),
        p50_ms: all.quantile(0.5) as f64 / 1e6,
        p99_ms: all.quantile(0.99) as f64 / 1e6,
        max_ms: all.max() as f64 / 1e6,
        delivered_ratio: got as f64 / (measured as f64 * args.subscribers as f64),
        burst_deliveries_per_s: (args.burst as f64 * complete as f64) / secs,
        complete,
    }
}

fn redis_topics(port: u16, node: &str) -> Topics {
    let rt: Arc<dyn sockjs_tokio::Runtime> = Arc::new(sockjs_tokio::Tokio);
    let config = RedisConfig::new(format!("redis://127.0.0.1:{port}"), node);
    Topics::with_backend(RedisBackend::new(rt, config).expect("backend"))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "{e}\nusage: bench-topics [--subscribers N] [--rate R] [--seconds S] [--burst B] [--json]"
            );
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let results = rt.block_on(async {
        let mut results = vec![run_case("1 node", vec![Topics::new()], &args).await];
        match start_redis().await {
            Some((redis, port)) => {
                let nodes = (0..3)
                    .map(|i| redis_topics(port, &format!("n{i}")))
                    .collect();
                results.push(run_case("3 nodes, Redis", nodes, &args).await);
                drop(redis);
            }
            None => eprintln!("bench-topics: no redis-server: the 3-node case is skipped"),
        }
        results
    });
    println!(
        "{} subscribers; {} publishes/s for {} s (latency), then a burst of {}",
        args.subscribers, args.rate, args.seconds, args.burst
    );
    println!("| case | p50 ms | p99 ms | max ms | delivered | burst deliveries/s |");
    println!("|---|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.4} | {:.0} ({} of {} complete) |",
            r.case,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.delivered_ratio,
            r.burst_deliveries_per_s,
            r.complete,
            args.subscribers
        );
        if args.json {
            println!(
                "{{\"case\":{:?},\"p50_ms\":{},\"p99_ms\":{},\"max_ms\":{},\"delivered_ratio\":{},\"burst_deliveries_per_s\":{}}}",
                r.case, r.p50_ms, r.p99_ms, r.max_ms, r.delivered_ratio, r.burst_deliveries_per_s
            );
        }
    }
}
