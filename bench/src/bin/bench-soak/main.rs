//! A fault-injection soak: the test server on every runtime at once, each under a mix of
//! well-behaved echo clients on every transport (WebSocket, xhr_streaming, xhr polling,
//! eventsource, JSONP) that check every message, and misbehaving clients that abort in the
//! middle of responses, stall, read slowly, reconnect and abandon sessions, and send
//! malformed input. Then checks, per server:
//!
//! - messages lost on sessions that stayed open, and messages duplicated, reordered or
//!   altered on any session: 0;
//! - every session the server opened closed exactly once (its debug log names each session's
//!   open and close), and its metrics agree (opened = closed, none open) once the clients
//!   have left and the sessions have timed out;
//! - no panic in its log, and it still answers `/echo/info`;
//! - its RSS after the soak (clients gone, sessions timed out, memory settled) within 10% of
//!   the RSS after a warm-up with the same mix, settled the same way;
//! - the well-behaved clients' p99 latency during the soak (reported).
//!
//! Exits 1 when any check fails, 2 on a usage error.
//!
//! ```text
//! bench-soak [--duration 30m] [--warmup 20s] [--settle 12s] [--runtimes tokio,async-std,smol]
//!            [--server-bin PATH] [--port-base 18400] [--echo-clients 2] [--fault-clients 6]
//!            [--log-dir DIR] [--json]
//! ```
//!
//! Durations take `s`, `m` or `h` (plain numbers are seconds). Everything listens on and
//! targets 127.0.0.1; every server started is killed by its PID when the soak ends, however
//! it ends.

mod check;
mod echo;
mod faults;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use sockjs_bench::cli::{CliError, Flags};
use sockjs_bench::procfs;

use crate::check::Shared;

const USAGE: &str = "\
usage: bench-soak [--duration 30m] [--warmup 20s] [--settle 12s]
                  [--runtimes tokio,async-std,smol] [--server-bin PATH] [--port-base 18400]
                  [--echo-clients N] [--fault-clients N] [--log-dir DIR] [--json]

  --duration D       the soak, after the warm-up (s, m or h; plain numbers are seconds) [30m]
  --warmup D         the same mix first, before the memory baseline                   [20s]
  --settle D         after the clients leave and every session has closed, before RSS [12s]
  --runtimes LIST    one test server per runtime, all at once          [tokio,async-std,smol]
  --server-bin PATH  the test server            [target/release/sockjs-testserver beside this]
  --port-base P      server i listens on P+2i, its metrics on P+2i+1                     [18400]
  --echo-clients N   well-behaved clients per transport per server                         [2]
  --fault-clients N  misbehaving clients per server                                        [6]
  --log-dir DIR      server logs                                        [target/bench/soak-*]
  --json             print the result as one JSON line on stdout
";

/// RSS after may exceed RSS before by this share at most.
const RSS_TOLERANCE: f64 = 0.10;
/// How long the sessions may take to close once the clients have left.
const CLOSE_WAIT: Duration = Duration::from_secs(90);

struct Settings {
    duration: Duration,
    warmup: Duration,
    settle: Duration,
    runtimes: Vec<String>,
    server_bin: PathBuf,
    port_base: u16,
    echo_clients: usize,
    fault_clients: usize,
    log_dir: PathBuf,
    json: bool,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let settings = match settings(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench-soak: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match soak(&settings) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bench-soak: {e}");
            ExitCode::from(1)
        }
    }
}

/// `30m`, `20s`, `1h`, `90`.
fn parse_duration(text: &str) -> Result<Duration, CliError> {
    let bad = || CliError(format!("not a duration: {text}"));
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        's' => n,
        'm' => n * 60.0,
        'h' => n * 3600.0,
        _ => return Err(bad()),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn settings(args: Vec<String>) -> Result<Settings, CliError> {
    let mut f = Flags::parse(args, &["json"])?;
    let duration = parse_duration(&f.string("duration").unwrap_or_else(|| "30m".into()))?;
    let warmup = parse_duration(&f.string("warmup").unwrap_or_else(|| "20s".into()))?;
    let settle = parse_duration(&f.string("settle").unwrap_or_else(|| "12s".into()))?;
    let runtimes: Vec<String> = f
        .string("runtimes")
        .unwrap_or_else(|| "tokio,async-std,smol".into())
        .split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    if runtimes.is_empty() {
        return Err(CliError("--runtimes names none".into()));
    }
    let here = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let server_bin = f
        .string("server-bin")
        .map(PathBuf::from)
        .unwrap_or_else(|| here.join("sockjs-testserver"));
    let port_base = f.number("port-base", 18400u16, 1024, 60000)?;
    let echo_clients = f.number("echo-clients", 2usize, 0, 100)?;
    let fault_clients = f.number("fault-clients", 6usize, 0, 100)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let log_dir = f
        .string("log-dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("target/bench/soak-{stamp}")));
    let json = f.switch("json");
    if !f.positional().is_empty() {
        return Err(CliError(format!("unexpected {:?}", f.positional())));
    }
    f.finish()?;
    Ok(Settings {
        duration,
        warmup,
        settle,
        runtimes,
        server_bin,
        port_base,
        echo_clients,
        fault_clients,
        log_dir,
        json,
    })
}

/// A test server this soak started: killed by its PID when dropped.
struct Server {
    runtime: String,
    child: Child,
    addr: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(s: &Settings, i: usize, runtime: &str) -> Result<Server, String> {
        let port = s.port_base + 2 * i as u16;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let metrics: SocketAddr = ([127, 0, 0, 1], port + 1).into();
        let log = s.log_dir.join(format!("server-{runtime}.log"));
        let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(&s.server_bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--runtime", runtime, "--metrics", &metrics.to_string()])
            // Stalled connections go sooner than the default 30 s, so more come and go.
            .args(["--limit", "write_timeout=10000"])
            .env("RUST_LOG", "sockjs=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| format!("{}: {e}", s.server_bin.display()))?;
        let server = Server {
            runtime: runtime.to_string(),
            child,
            addr,
            metrics,
            log,
        };
        let until = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() || TcpStream::connect(metrics).is_err() {
            if Instant::now() > until {
                return Err(format!("{runtime}: not listening on {addr} after 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// One blocking HTTP/1.0 GET on loopback: status and body.
fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.take(16 << 20)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "no status in {:?}",
                text.chars().take(60).collect::<String>()
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// Sums of the metrics the checks read: sessions opened, closed, open now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Metrics {
    opened: u64,
    closed: u64,
    open: u64,
}

fn metrics(addr: SocketAddr) -> Result<Metrics, String> {
    let (status, body) = get(addr, "/metrics")?;
    if status != 200 {
        return Err(format!("metrics answered {status}"));
    }
    let mut m = Metrics::default();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = name.split('{').next().unwrap_or(name);
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        match name {
            "sockjs_sessions_opened_total" => m.opened += v as u64,
            "sockjs_sessions_closed_total" => m.closed += v as u64,
            "sockjs_sessions" => m.open += v as u64,
            _ => {}
        }
    }
    Ok(m)
}

/// Waits until the server says no session is open (and the figures have been exported
/// since), for at most [`CLOSE_WAIT`]; returns the last figures.
fn wait_closed(server: &Server) -> Metrics {
    let until = Instant::now() + CLOSE_WAIT;
    let mut last = Metrics::default();
    loop {
        if let Ok(m) = metrics(server.metrics) {
            if m.open == 0 && m.opened == m.closed && m == last {
                return m;
            }
            last = m;
        }
        if Instant::now() > until {
            return last;
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
}

/// What the server's debug log says of its sessions and panics.
#[derive(Debug, Default)]
struct Log {
    opened: u64,
    /// Sessions closed exactly once, closed twice or more, never closed, closed unopened.
    closed_once: u64,
    closed_twice: u64,
    never_closed: u64,
    closed_unopened: u64,
    panics: u64,
    close_reasons: BTreeMap<String, u64>,
}

fn read_log(path: &Path) -> Result<Log, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut per_session: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    let mut log = Log::default();
    for line in text.lines() {
        if line.contains("panicked") {
            log.panics += 1;
        }
        let Some(rest) = line.split_once("session{id=").map(|(_, r)| r) else {
            continue;
        };
        let id = rest.split([' ', '}']).next().unwrap_or("");
        if line.ends_with("session opened") {
            per_session.entry(id).or_default().0 += 1;
        } else if line.contains(" session closed: ") {
            per_session.entry(id).or_default().1 += 1;
            if let Some(reason) = line
                .split("reason=")
                .nth(1)
                .and_then(|r| r.split(' ').next())
            {
                *log.close_reasons.entry(reason.to_string()).or_default() += 1;
            }
        }
    }
    for (_, (opened, closed)) in per_session {
        log.opened += u64::from(opened.min(1));
        match (opened, closed) {
            (0, _) => log.closed_unopened += 1,
            (_, 0) => log.never_closed += 1,
            (_, 1) => log.closed_once += 1,
            _ => log.closed_twice += 1,
        }
    }
    Ok(log)
}

/// Runs the clients of every server for `length`; latencies count when `measure`.
fn run_clients(
    rt: &tokio::runtime::Runtime,
    s: &Settings,
    servers: &[Server],
    shared: &[Shared],
    length: Duration,
    measure: bool,
    seed: u64,
) {
    let deadline = Instant::now() + length;
    rt.block_on(async {
        let mut tasks = Vec::new();
        for (i, server) in servers.iter().enumerate() {
            shared[i].measuring.store(measure, Ordering::Relaxed);
            for (t, transport) in echo::TRANSPORTS.iter().enumerate() {
                for k in 0..s.echo_clients {
                    let seed = seed ^ ((i as u64) << 40 | (t as u64) << 20 | k as u64);
                    tasks.push(tokio::spawn(echo::client(
                        server.addr,
                        transport,
                        seed,
                        shared[i].clone(),
                        deadline,
                    )));
                }
            }
            for k in 0..s.fault_clients {
                let seed = seed ^ ((i as u64) << 40 | 1 << 32 | k as u64);
                tasks.push(tokio::spawn(faults::client(
                    server.addr,
                    seed,
                    shared[i].clone(),
                    deadline,
                )));
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        for sh in shared {
            sh.measuring.store(false, Ordering::Relaxed);
        }
    });
}

fn soak(s: &Settings) -> Result<bool, String> {
    std::fs::create_dir_all(&s.log_dir).map_err(|e| format!("{}: {e}", s.log_dir.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut servers = Vec::new();
    for (i, runtime) in s.runtimes.iter().enumerate() {
        servers.push(Server::start(s, i, runtime)?);
    }
    let shared: Vec<Shared> = servers.iter().map(|_| Shared::new()).collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!(
        "bench-soak: {} servers ({}), {} well-behaved and {} misbehaving clients each; \
         warm-up {:?}, soak {:?}; logs in {}",
        servers.len(),
        s.runtimes.join(", "),
        s.echo_clients * echo::TRANSPORTS.len(),
        s.fault_clients,
        s.warmup,
        s.duration,
        s.log_dir.display()
    );

    // Warm-up, then the baseline: clients gone, sessions closed, memory settled.
    run_clients(&rt, s, &servers, &shared, s.warmup, false, seed);
    let mut before = Vec::new();
    for server in &servers {
        wait_closed(server);
    }
    std::thread::sleep(s.settle);
    for server in &servers {
        before.push(procfs::rss_kib(server.pid()).unwrap_or(0));
    }
    eprintln!("bench-soak: baseline RSS (KiB): {before:?}; soaking");

    let started = Instant::now();
    let cpu_start: Vec<f64> = servers
        .iter()
        .map(|sv| procfs::cpu_seconds(sv.pid()).unwrap_or(0.0))
        .collect();
    let peak_sampler = {
        let pids: Vec<u32> = servers.iter().map(Server::pid).collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = vec![0u64; pids.len()];
            while !stop2.load(Ordering::Relaxed) {
                for (i, pid) in pids.iter().enumerate() {
                    peak[i] = peak[i].max(procfs::rss_kib(*pid).unwrap_or(0));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            peak
        });
        (stop, handle)
    };
    run_clients(
        &rt,
        s,
        &servers,
        &shared,
        s.duration,
        true,
        seed.rotate_left(17),
    );
    let soaked = started.elapsed();
    let cpu: Vec<f64> = servers
        .iter()
        .zip(&cpu_start)
        .map(|(sv, c0)| procfs::cpu_seconds(sv.pid()).unwrap_or(0.0) - c0)
        .collect();
    peak_sampler.0.store(true, Ordering::Relaxed);
    let peaks = peak_sampler.1.join().unwrap_or_default();

    // The clients are gone: every session must close, and memory go back.
    let mut closed = Vec::new();
    for server in &servers {
        closed.push(wait_closed(server));
    }
    std::thread::sleep(s.settle);
    let mut all_ok = true;
    let mut results = Vec::new();
    for (i, server) in servers.iter_mut().enumerate() {
        let after = procfs::rss_kib(server.pid()).unwrap_or(0);
        let info = get(server.addr, "/echo/info").map(|(st, _)| st);
        let alive = server.alive() && info == Ok(200);
        let log = read_log(&server.log)?;
        let t = shared[i].lock();
        let m = closed[i];
        let rss_ok = before[i] > 0 && (after as f64) <= before[i] as f64 * (1.0 + RSS_TOLERANCE);
        let mut failures = Vec::new();
        let mut fail = |ok: bool, what: String| {
            if !ok {
                failures.push(what);
            }
        };
        fail(t.lost == 0, format!("{} messages lost", t.lost));
        fail(t.duplicated == 0, format!("{} duplicated", t.duplicated));
        fail(t.reordered == 0, format!("{} reordered", t.reordered));
        fail(t.corrupted == 0, format!("{} altered", t.corrupted));
        fail(
            t.cut_short.is_empty(),
            format!("well-behaved sessions cut short: {:?}", t.cut_short),
        );
        fail(
            t.sessions > 0 && t.received > 0,
            "no well-behaved traffic".into(),
        );
        fail(
            log.closed_twice == 0 && log.never_closed == 0 && log.closed_unopened == 0,
            format!(
                "sessions closed twice {}, never {}, without opening {}",
                log.closed_twice, log.never_closed, log.closed_unopened
            ),
        );
        fail(
            m.open == 0 && m.opened == m.closed && m.opened == log.opened,
            format!("metrics {m:?} against {} opened in the log", log.opened),
        );
        fail(log.panics == 0, format!("{} panics", log.panics));
        fail(
            alive,
            format!("not alive at the end (/echo/info: {info:?})"),
        );
        fail(
            rss_ok,
            format!("RSS {after} KiB after, {} KiB before", before[i]),
        );
        all_ok &= failures.is_empty();
        let p = |q: f64| t.latency.quantile(q) as f64 / 1000.0;
        eprintln!(
            "bench-soak: {}: {}",
            server.runtime,
            if failures.is_empty() {
                "PASS".to_string()
            } else {
                format!("FAIL: {}", failures.join("; "))
            }
        );
        eprintln!(
            "  well-behaved: {} sessions ({} stayed open), {} sent, {} received, lost {}, \
             duplicated {}, reordered {}, altered {}; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            t.sessions,
            t.stayed_open,
            t.sent,
            t.received,
            t.lost,
            t.duplicated,
            t.reordered,
            t.corrupted,
            p(0.5),
            p(0.99),
            t.latency.max() as f64 / 1000.0
        );
        eprintln!("  per transport (sessions, messages): {:?}", t.by_transport);
        eprintln!("  misbehaving: {:?}", t.faults);
        eprintln!(
            "  server: {} sessions opened, closed once {}, twice {}, never {}; metrics {:?}; \
             closes {:?}; panics {}",
            log.opened,
            log.closed_once,
            log.closed_twice,
            log.never_closed,
            m,
            log.close_reasons,
            log.panics
        );
        eprintln!(
            "  RSS before {} KiB, peak {} KiB, after {} KiB ({:+.1}%); CPU {:.1} s in {:.0} s",
            before[i],
            peaks.get(i).copied().unwrap_or(0),
            after,
            (after as f64 / before[i].max(1) as f64 - 1.0) * 100.0,
            cpu[i],
            soaked.as_secs_f64()
        );
        results.push(json!({
            "runtime": server.runtime,
            "pass": failures.is_empty(),
            "failures": failures,
            "soak_seconds": soaked.as_secs_f64(),
            "sessions": t.sessions,
            "stayed_open": t.stayed_open,
            "sent": t.sent,
            "received": t.received,
            "lost": t.lost,
            "duplicated": t.duplicated,
            "reordered": t.reordered,
            "altered": t.corrupted,
            "cut_short": t.cut_short,
            "by_transport": t.by_transport,
            "faults": t.faults,
            "latency_ms": {"p50": p(0.5), "p90": p(0.9), "p99": p(0.99), "max": t.latency.max() as f64 / 1000.0},
            "server_sessions_opened": log.opened,
            "closed_once": log.closed_once,
            "closed_twice": log.closed_twice,
            "never_closed": log.never_closed,
            "close_reasons": log.close_reasons,
            "metrics": {"opened": m.opened, "closed": m.closed, "open": m.open},
            "panics": log.panics,
            "alive": alive,
            "rss_kib": {"before": before[i], "peak": peaks.get(i).copied().unwrap_or(0), "after": after},
            "cpu_seconds": cpu[i],
        }));
    }
    if s.json {
        println!("{}", json!({ "soak": results }));
    }
    eprintln!(
        "bench-soak: {}",
        if all_ok {
            "all checks passed"
        } else {
            "FAILED"
        }
    );
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn log_counts_opens_closes_and_panics() {
        let dir = std::env::temp_dir().join(format!("bench-soak-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let open = |id: u64| {
            format!(
                "2026-12-02T00:00:00Z DEBUG session{{id={id} peer=127.0.0.1:1 endpoint=/echo \
                 transport=\"xhr-polling\"}}: sockjs::driver: session opened\n"
            )
        };
        let close = |id: u64| {
            format!(
                "2026-12-02T00:00:01Z DEBUG session{{id={id} peer=127.0.0.1:1 endpoint=/echo \
                 transport=\"xhr-polling\"}}: sockjs::driver: session closed: timed out \
                 reason=\"timed_out\" code=1000\n"
            )
        };
        let text = [
            open(1),
            close(1),
            open(2),
            close(2),
            close(2),
            open(3),
            close(4),
            "thread 'x' panicked at src/a.rs:1:1:\n".to_string(),
        ]
        .concat();
        std::fs::write(&path, text).unwrap();
        let log = read_log(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            (
                log.opened,
                log.closed_once,
                log.closed_twice,
                log.never_closed,
                log.closed_unopened,
                log.panics
            ),
            (3, 1, 1, 1, 1, 1)
        );
        assert_eq!(log.close_reasons.get("\"timed_out\""), Some(&4));
    }
}
