//! Load generator and benchmark driver for SockJS servers and the raw reference servers.
//!
//! ```text
//! bench-load SCENARIO --addr 127.0.0.1:PORT [--target sockjs|raw] [--server-pid PID] [flags]
//! bench-load summarize FILE...        table of medians from --json result lines
//! bench-load wait-port --addr A [--timeout S]
//! ```
//! Scenarios: ws-echo, http-poll, parked-polls, xhr-streaming, idle-ws, idle-poll (see
//! bench/README.md). Everything runs on one thread (pin it with taskset); every run is
//! bounded by its warmup, duration and setup timeout, and by its session count.

mod broadcast;
mod hogs;
mod http_poll;
mod idle;
mod run;
mod ws_echo;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sockjs_bench::cli::{CliError, Flags};

use crate::run::{Common, Run, Target};

const USAGE: &str = "\
usage: bench-load SCENARIO --addr 127.0.0.1:PORT [flags]
       bench-load summarize FILE...
       bench-load wait-port --addr 127.0.0.1:PORT [--timeout SECS]

scenarios:
  ws-echo        WebSocket echo round trips (--sessions --window --size --rate)
  http-poll      xhr_send + xhr poll round trips (--sessions --rate)
  parked-polls   xhr polls parked on /broadcast while one session broadcasts
                 (--sessions --broadcast-rate --size)
  xhr-streaming  xhr_streaming receivers on /broadcast (--sessions --broadcast-rate --size)
  idle-ws        open N idle websocket sessions, weigh server memory (--sessions)
  idle-poll      open N sessions with a parked xhr poll, weigh server memory (--sessions)
  hogs           --hogs WebSocket sessions ask /amplify for --requests answers of
                 2^--amplify bytes and never read, while --sessions others echo on /echo
                 (ws-echo's flags); weighs server RSS and kernel TCP memory (--settle)

flags:
  --addr A               server address (127.0.0.1:PORT)
  --target sockjs|raw    SockJS server, or bench-raw-ws / bench-raw-http      [sockjs]
  --prefix P             SockJS prefix         [/echo; /broadcast for broadcast scenarios]
  --server-pid PID       sample the server's CPU time and RSS from /proc
  --sessions N           concurrent sessions
  --window W             ws-echo: messages in flight per session                       [4]
  --size S               message size in bytes (at least 8)                            [32]
  --rate R               offered load, messages (round trips) per second in total;
                         0 = saturation                                                [0]
  --broadcast-rate B     broadcasts per second                                         [20]
  --warmup S             seconds of load before measuring                              [1]
  --duration S           seconds measured                                              [5]
  --settle S             idle scenarios: seconds between the last open and the RSS sample;
                         hogs: seconds after the measure before the settled sample  [1]
  --hogs N               hogs: sessions that ask and never read                        [300]
  --amplify E            hogs: each answer is 2^E bytes (1..18)                        [18]
  --requests K           hogs: answers each hog asks for                               [16]
  --hog-prefix P         hogs: the amplifying endpoint                            [/amplify]
  --hog-rcvbuf B         hogs: set each socket's receive buffer to B bytes first (0: leave it)
  --setup-timeout S      bound on opening all sessions                                [60]
  --connect-concurrency K  sessions opening at once                                    [64]
  --label L  --case C  --raw-ref L   names recorded in the result (for summarize)
  --json                 print the result as one JSON line on stdout (summary on stderr)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("summarize") => summarize(&args[1..]),
        Some(_) => match run_command(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("bench-load: {e}\n\n{USAGE}");
                ExitCode::from(2)
            }
        },
    }
}

fn summarize(files: &[String]) -> ExitCode {
    let mut records = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("bench-load summarize: {file}: {e}");
                return ExitCode::FAILURE;
            }
        };
        for line in text.lines().filter(|l| l.starts_with('{')) {
            match serde_json::from_str::<Value>(line) {
                Ok(v) => records.push(v),
                Err(e) => eprintln!("bench-load summarize: {file}: skipping a bad line: {e}"),
            }
        }
    }
    print!("{}", sockjs_bench::summary::render(&records));
    ExitCode::SUCCESS
}

fn run_command(args: Vec<String>) -> Result<ExitCode, CliError> {
    let mut flags = Flags::parse(args, &["json"])?;
    let scenario = match flags.positional() {
        [one] => one.clone(),
        _ => return Err(CliError("expected exactly one scenario".into())),
    };
    let addr: SocketAddr = flags
        .string("addr")
        .ok_or_else(|| CliError("--addr is required".into()))?
        .parse()
        .map_err(|_| CliError("--addr: expected IP:PORT".into()))?;
    if scenario == "wait-port" {
        let secs: f64 = flags.number("timeout", 10.0, 0.0, 600.0)?;
        flags.finish()?;
        return Ok(wait_port(addr, Duration::from_secs_f64(secs)));
    }
    let (scenario, broadcast): (&'static str, bool) = match scenario.as_str() {
        "ws-echo" => ("ws-echo", false),
        "http-poll" => ("http-poll", false),
        "parked-polls" => ("parked-polls", true),
        "xhr-streaming" => ("xhr-streaming", true),
        "idle-ws" => ("idle-ws", false),
        "idle-poll" => ("idle-poll", false),
        "hogs" => ("hogs", false),
        other => return Err(CliError(format!("unknown scenario {other:?}"))),
    };
    let target = match flags.string("target").as_deref() {
        None | Some("sockjs") => Target::Sockjs,
        Some("raw") => Target::Raw,
        Some(other) => return Err(CliError(format!("--target: unknown {other:?}"))),
    };
    if broadcast && target == Target::Raw {
        return Err(CliError(format!("{scenario} needs a SockJS server")));
    }
    let default_prefix = if broadcast { "/broadcast" } else { "/echo" };
    let prefix = flags
        .string("prefix")
        .unwrap_or_else(|| default_prefix.into());
    if !prefix.starts_with('/') || prefix.contains(char::is_whitespace) {
        return Err(CliError(
            "--prefix must start with / and hold no spaces".into(),
        ));
    }
    let default_sessions = match scenario {
        "ws-echo" => 100,
        "http-poll" => 50,
        "parked-polls" => 500,
        "xhr-streaming" => 100,
        _ => 1000,
    };
    let sessions: usize = flags.number("sessions", default_sessions, 1, 100_000)?;
    let window: usize = flags.number("window", 4, 1, 10_000)?;
    let size: usize = flags.number("size", 32, 8, 1 << 20)?;
    let rate: f64 = flags.number("rate", 0.0, 0.0, 10_000_000.0)?;
    let broadcast_rate: f64 = flags.number("broadcast-rate", 20.0, 0.01, 100_000.0)?;
    let secs = |flags: &mut Flags, name: &str, default: f64, min: f64, max: f64| {
        flags
            .number(name, default, min, max)
            .map(Duration::from_secs_f64)
    };
    let warmup = secs(&mut flags, "warmup", 1.0, 0.0, 600.0)?;
    let duration = secs(&mut flags, "duration", 5.0, 0.1, 3600.0)?;
    let settle = secs(&mut flags, "settle", 1.0, 0.0, 600.0)?;
    let setup_timeout = secs(&mut flags, "setup-timeout", 60.0, 1.0, 3600.0)?;
    let connect_concurrency: usize = flags.number("connect-concurrency", 64, 1, 10_000)?;
    let hogs: usize = flags.number("hogs", 300, 0, 100_000)?;
    let exponent: u32 = flags.number("amplify", 18, 1, 18)?;
    let requests: usize = flags.number("requests", 16, 1, 10_000)?;
    let hog_rcvbuf: Option<u32> = match flags.number("hog-rcvbuf", 0u32, 0, 1 << 30)? {
        0 => None,
        n => Some(n),
    };
    let hog_prefix = flags
        .string("hog-prefix")
        .unwrap_or_else(|| "/amplify".into());
    let server_pid: Option<u32> = match flags.string("server-pid") {
        None => None,
        Some(p) => Some(
            p.parse()
                .map_err(|_| CliError("--server-pid: not a pid".into()))?,
        ),
    };
    if let Some(pid) = server_pid
        && sockjs_bench::procfs::cpu_seconds(pid).is_err()
    {
        return Err(CliError(format!(
            "--server-pid: cannot read /proc/{pid}/stat"
        )));
    }
    let label = flags.string("label").unwrap_or_else(|| addr.to_string());
    let case = flags.string("case").unwrap_or_else(|| scenario.to_string());
    let raw_ref = flags.string("raw-ref");
    let json = flags.switch("json");
    flags.finish()?;

    let load = if rate > 0.0 {
        format!("{rate} msg/s offered")
    } else {
        "saturation".to_string()
    };
    let params = match scenario {
        "ws-echo" => format!("{sessions} sessions, window {window}, {size} B, {load}"),
        "http-poll" => format!(
            "{sessions} sessions, {}",
            load.replace("msg/s", "round trips/s")
        ),
        "parked-polls" | "xhr-streaming" => format!(
            "{sessions} sessions, {broadcast_rate} broadcasts/s of {size} B \
             ({} deliveries/s offered)",
            broadcast_rate * sessions as f64
        ),
        "hogs" => format!(
            "{hogs} hogs asking {requests} x 2^{exponent} B and never reading \
             ({:.0} MiB in all), {sessions} echoing sessions ({size} B, window {window}, {load})",
            (hogs * requests) as f64 * f64::from(1u32 << exponent) / 1048576.0
        ),
        _ => format!("{sessions} sessions, {connect_concurrency} opening at once"),
    };
    let common = Common {
        scenario,
        addr,
        target,
        prefix,
        sessions,
        warmup,
        duration,
        setup_timeout,
        connect_concurrency,
        server_pid,
        label,
        case,
        raw_ref,
        params,
        memory: scenario == "hogs",
        settle,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the runtime: {e}")))?;
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&runtime, async move {
        let mut run = Run::new(common);
        match scenario {
            "ws-echo" => {
                let opts = Rc::new(ws_echo::Opts { window, size, rate });
                for i in 0..sessions {
                    let opts = opts.clone();
                    run.spawn(move |sh, ready| ws_echo::session(i, sh, opts, ready));
                }
                run.load(Map::new()).await
            }
            "http-poll" => {
                let opts = Rc::new(http_poll::Opts { rate });
                for i in 0..sessions {
                    let opts = opts.clone();
                    run.spawn(move |sh, ready| http_poll::session(i, sh, opts, ready));
                }
                run.load(Map::new()).await
            }
            "parked-polls" | "xhr-streaming" => {
                let board = Rc::new(broadcast::Board::default());
                for i in 0..sessions {
                    let board = board.clone();
                    if scenario == "parked-polls" {
                        run.spawn(move |sh, ready| broadcast::parked_poller(i, sh, board, ready));
                    } else {
                        run.spawn(move |sh, ready| broadcast::streamer(i, sh, board, ready));
                    }
                }
                let opts = Rc::new(broadcast::Opts {
                    size,
                    rate: broadcast_rate,
                });
                run.spawn(move |sh, ready| broadcast::broadcaster(sh, opts, board, ready));
                let mut report = run.load(Map::new()).await;
                let broadcasts = report
                    .get("broadcasts")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let expected = broadcasts * sessions as f64;
                let delivered = report
                    .get("messages")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                report.insert(
                    "delivery_ratio".into(),
                    (if expected > 0.0 {
                        (delivered / expected * 1000.0).round() / 1000.0
                    } else {
                        0.0
                    })
                    .into(),
                );
                report
            }
            "hogs" => {
                let opts = Rc::new(ws_echo::Opts { window, size, rate });
                for i in 0..sessions {
                    let opts = opts.clone();
                    run.spawn(move |sh, ready| ws_echo::session(i, sh, opts, ready));
                }
                let hog_opts = Rc::new(hogs::Opts {
                    prefix: hog_prefix,
                    exponent,
                    requests,
                    rcvbuf: hog_rcvbuf,
                });
                for _ in 0..hogs {
                    let opts = hog_opts.clone();
                    run.spawn(move |sh, ready| hogs::hog(sh, opts, ready));
                }
                let mut extra = Map::new();
                extra.insert("hogs".into(), hogs.into());
                run.load(extra).await
            }
            "idle-ws" => {
                for _ in 0..sessions {
                    run.spawn(idle::idle_ws);
                }
                run.idle(settle).await
            }
            _ => {
                for _ in 0..sessions {
                    run.spawn(idle::idle_poll);
                }
                run.idle(settle).await
            }
        }
    });
    eprint!("{}", human(&report));
    if json {
        println!("{}", Value::Object(report.clone()));
    }
    let errors = report.get("errors").and_then(Value::as_u64).unwrap_or(0);
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn human(r: &Map<String, Value>) -> String {
    let get = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
    let num = |k: &str| r.get(k).and_then(Value::as_f64);
    let ms = |k: &str| num(k).map_or("-".into(), |v| format!("{:.2}", v / 1000.0));
    let mut out = format!(
        "{} {} on {} ({}): {}\n",
        get("scenario").as_str().unwrap_or(""),
        get("server").as_str().unwrap_or(""),
        get("addr").as_str().unwrap_or(""),
        get("target").as_str().unwrap_or(""),
        get("params").as_str().unwrap_or(""),
    );
    if r.contains_key("opened") {
        out += &format!(
            "  opened {} in {} s; server rss {} -> {} KiB = {} KiB/session; cpu {} us/open\n",
            get("opened"),
            get("open_s"),
            get("rss_before_kib"),
            get("rss_after_kib"),
            get("kib_per_session"),
            get("cpu_us_per_open"),
        );
    } else {
        out += &format!(
            "  measured {} s: {} msgs = {} msgs/s; latency ms p50 {} p90 {} p99 {} max {}\n",
            get("measured_s"),
            get("messages"),
            get("throughput"),
            ms("p50_us"),
            ms("p90_us"),
            ms("p99_us"),
            ms("max_us"),
        );
        out += &format!(
            "  per session min {} max {}; skipped {}; reconnects {}{}\n",
            get("per_session_min"),
            get("per_session_max"),
            get("skipped"),
            get("reconnects"),
            r.get("delivery_ratio")
                .map(|v| format!("; delivery ratio {v}"))
                .unwrap_or_default(),
        );
        if r.contains_key("rss_peak_kib") {
            out += &format!(
                "  server rss baseline {} KiB, growth peak {} MiB, {} MiB after {} s more; \
                 kernel tcp memory growth {} MiB, {} MiB after\n",
                get("rss_baseline_kib"),
                get("rss_peak_growth_mib"),
                get("rss_settled_growth_mib"),
                get("settle_s"),
                get("tcp_mem_growth_mib"),
                get("tcp_mem_settled_growth_mib"),
            );
        }
        out += &format!(
            "  server cpu {} s ({} of a core) = {} us/msg; client cpu {} of a core; rss {} -> {} KiB\n",
            get("server_cpu_s"),
            get("server_cpu_util"),
            get("cpu_us_per_msg"),
            get("client_cpu_util"),
            get("rss_before_kib"),
            get("rss_after_kib"),
        );
        if num("client_cpu_util").is_some_and(|u| u > 0.9) {
            out += "  warning: the load generator used over 90% of its core; throughput may be its limit\n";
        }
    }
    out += &format!("  errors {}", get("errors"));
    if let Some(samples) = r.get("error_samples").and_then(Value::as_array)
        && !samples.is_empty()
    {
        out += &format!(": {}", Value::Array(samples.clone()));
    }
    out.push('\n');
    out
}

/// Waits until something accepts connections at `addr`; exit status 0 if it did in time.
fn wait_port(addr: SocketAddr, limit: Duration) -> ExitCode {
    let start = Instant::now();
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return ExitCode::SUCCESS;
        }
        if start.elapsed() >= limit {
            eprintln!("bench-load wait-port: nothing listening on {addr}");
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
