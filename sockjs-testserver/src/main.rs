//! The SockJS test server: the endpoints the SockJS protocol suite and sockjs-client's tests
//! expect, on 127.0.0.1:8081 by default.
//!
//! ```text
//! sockjs-testserver [--host 127.0.0.1] [--port 8081] [--sockjs-url URL]
//!                    [--runtime tokio|async-std|smol] [--via axum [--tls]]
//!                    [--limit NAME=VALUE]... [--compression] [--metrics 127.0.0.1:PORT]
//!                    [--redis redis://127.0.0.1:6379] [--node-id NAME]
//! ```
//!
//! `--redis URL` makes the server a node of a cluster: `/broadcast` goes through a topic
//! whose publishes cross to every node on the same Redis (docs/TOPICS.md). `--node-id NAME`
//! names the node (1 to 64 of `A-Z a-z 0-9 . _ -`; default `<hostname>-<port>`): every log
//! line starts with `node=NAME`, and Redis tells the nodes apart by it.
//!
//! `--via axum` (tokio only) serves the same endpoints through an axum `Router` that also
//! answers `GET /` with `hello world`; `--tls` adds TLS with a self-signed certificate
//! (HTTP/2 and HTTP/1.1 by ALPN).
//!
//! `--limit` sets one field of `sockjs_core::Limits` (sizes in bytes, durations in
//! milliseconds: `--limit max_sessions=1000 --limit write_timeout=5000`), or the async
//! layer's `max_inbound_bytes`; repeat it for several.
//!
//! `--compression` accepts permessage-deflate on every endpoint's WebSockets, with the core's
//! default terms (context takeover both ways, messages under 64 bytes left uncompressed,
//! level 1).
//!
//! `--metrics` serves the server's metrics (docs/METRICS.md) in the Prometheus text format
//! on that loopback address. `RUST_LOG` sets the log filter (`tracing-subscriber`'s env
//! filter syntax; default `warn`): `RUST_LOG=sockjs=debug` logs every session's open and
//! close.
//!
//! - `/echo`: echoes every message (response_limit 4096, so streaming responses end often).
//! - `/disabled_websocket_echo`: the same without WebSockets.
//! - `/cookie_needed_echo`: the same with JSESSIONID cookies.
//! - `/close`: closes every session at once with 3000 "Go away!".
//! - `/ticker`: sends "tick!" every second.
//! - `/broadcast`: sends every message to every open session.
//! - `/auth_echo`: echoes, for requests whose `Cookie` header carries `auth=ok`; every
//!   other request that would open a session is refused with 403.
//! - `/amplify`: answers a number n (0 < n < 19, else 1) with 2^n `x`.

mod endpoints;
mod via_axum;

/// jemalloc with background purging: after a burst of sessions ends, their memory goes back to
/// the operating system within seconds (glibc's allocator keeps it for reuse instead).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::ExitCode;

use endpoints::serve;

/// Parsed command line.
struct Args {
    host: String,
    port: u16,
    sockjs_url: String,
    runtime: String,
    compression: bool,
    limits: sockjs_core::Limits,
    max_inbound_bytes: Option<usize>,
    /// `axum`: through an axum Router and hyper.
    via: Option<String>,
    tls: bool,
    /// Where to serve metrics, if anywhere.
    metrics: Option<std::net::SocketAddr>,
    /// Redis, for topics across nodes (`/broadcast`).
    redis: Option<String>,
    /// The node's name, in every log line and on Redis; `None` until defaulted.
    node_id: Option<String>,
}

const USAGE: &str = "usage: sockjs-testserver [--host HOST] [--port PORT] [--sockjs-url URL] \
                     [--runtime tokio|async-std|smol] [--via axum [--tls]] \
                     [--limit NAME=VALUE]... [--compression] [--metrics 127.0.0.1:PORT] \
                     [--redis redis://HOST:PORT] [--node-id NAME]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 8081,
        sockjs_url: sockjs_core::config::DEFAULT_SOCKJS_URL.into(),
        runtime: "tokio".into(),
        compression: false,
        limits: sockjs_core::Limits::default(),
        max_inbound_bytes: None,
        via: None,
        tls: false,
        metrics: None,
        redis: None,
        node_id: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        if name == "--help" || name == "-h" {
            return Err(String::new());
        }
        if name == "--compression" && inline.is_none() {
            args.compression = true;
            continue;
        }
        if name == "--tls" {
            args.tls = true;
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        match name.as_str() {
            "--host" => args.host = value,
            "--port" => args.port = value.parse().map_err(|_| format!("bad port: {value}"))?,
            "--sockjs-url" => args.sockjs_url = value,
            "--runtime" => args.runtime = value,
            "--limit" => set_limit(&mut args, &value)?,
            "--via" if value == "axum" => args.via = Some(value),
            "--via" => return Err(format!("unknown --via: {value} (axum)")),
            "--metrics" => {
                let addr: std::net::SocketAddr = value
                    .parse()
                    .map_err(|_| format!("bad metrics address: {value}"))?;
                if !addr.ip().is_loopback() {
                    return Err(format!(
                        "--metrics serves on a loopback address only: {value}"
                    ));
                }
                args.metrics = Some(addr);
            }
            "--redis" => {
                if !(value.starts_with("redis://") || value.starts_with("unix://")) {
                    return Err(format!("--redis wants redis://HOST:PORT, not {value:?}"));
                }
                args.redis = Some(value);
            }
            "--node-id" => {
                if !valid_node_id(&value) {
                    return Err(format!(
                        "bad --node-id {value:?}: 1 to 64 of A-Z a-z 0-9 . _ -"
                    ));
                }
                args.node_id = Some(value);
            }
            other => return Err(format!("unknown flag: {other}")),
        }
    }
    if args.node_id.is_none() {
        args.node_id = Some(default_node_id(args.port));
    }
    Ok(args)
}

/// 1 to 64 of `A-Z a-z 0-9 . _ -` (what Redis messages carry).
fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `<hostname>-<port>`, the hostname cut down to the characters a node id may have.
fn default_node_id(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let mut host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(48)
        .collect();
    if host.is_empty() {
        host = "node".into();
    }
    format!("{host}-{port}")
}

/// Applies one `--limit NAME=VALUE`.
fn set_limit(args: &mut Args, setting: &str) -> Result<(), String> {
    let (name, value) = setting
        .split_once('=')
        .ok_or_else(|| format!("--limit wants NAME=VALUE, not {setting:?}"))?;
    if name == "max_inbound_bytes" {
        let bytes = value
            .trim()
            .parse()
            .map_err(|_| format!("bad value {value:?} for max_inbound_bytes"))?;
        args.max_inbound_bytes = Some(bytes);
        return Ok(());
    }
    args.limits.set(name, value).map_err(|e| e.to_string())
}

/// `/amplify`'s answer to `message`: 2^n `x` for 0 < n < 19, else 2 of them.
fn amplify(message: &str) -> String {
    let n = message
        .trim()
        .parse::<f64>()
        .map(|v| v.floor())
        .unwrap_or(f64::NAN);
    let n = if n > 0.0 && n < 19.0 { n as u32 } else { 1 };
    "x".repeat(1 << n)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.tls && args.via.is_none() {
        eprintln!("--tls needs --via axum");
        return ExitCode::from(2);
    }
    init_logs(args.node_id.as_deref().unwrap_or("node"));
    if let Some(addr) = args.metrics
        && let Err(e) = metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
    {
        eprintln!("sockjs-testserver: cannot serve metrics on {addr}: {e}");
        return ExitCode::FAILURE;
    }
    let result = match args.runtime.as_str() {
        "tokio" if args.via.is_some() => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .and_then(|rt| rt.block_on(via_axum::serve(&args))),
        _ if args.via.is_some() => {
            eprintln!("--via axum runs on tokio only");
            return ExitCode::from(2);
        }
        // tokio's multi-threaded runtime runs the tasks and the accept loop.
        "tokio" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .and_then(|rt| rt.block_on(serve(&args, sockjs_tokio::Server::builder(), "tokio"))),
        // async-std's executor runs the tasks, its `block_on` the accept loop.
        "async-std" => {
            let builder = sockjs_async_std::Server::builder().spawn_with_async_std();
            async_std::task::block_on(serve(&args, builder.into(), "async-std"))
        }
        // smol's global executor (`SMOL_THREADS` threads) runs the tasks, its `block_on`
        // the accept loop.
        "smol" => {
            let builder = sockjs_async_std::Server::builder().spawn_with_smol();
            smol::block_on(serve(&args, builder.into(), "smol"))
        }
        other => {
            eprintln!("unknown runtime: {other} (tokio, async-std, smol)");
            return ExitCode::from(2);
        }
    };
    #[cfg(feature = "lock-stats")]
    print_lock_stats();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sockjs-testserver: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (warnings only by default, so protocol suite runs
/// stay quiet), every line starting with `node=NODE`.
fn init_logs(node: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .event_format(NodeFirst {
            node: node.to_string(),
            inner: tracing_subscriber::fmt::format().with_ansi(false),
        })
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A log line format that starts with the node's name, then formats as `inner` does.
struct NodeFirst<F> {
    node: String,
    inner: F,
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for NodeFirst<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "node={} ", self.node)?;
        self.inner.format_event(ctx, writer, event)
    }
}

/// How long the core's lock was held, against the CPU time the process used: the share of
/// the server's work done under the lock.
#[cfg(feature = "lock-stats")]
fn print_lock_stats() {
    let stats = sockjs::lock_stats();
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 a second on
    // Linux unless the kernel was built otherwise).
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(std::time::Duration::from_millis(ticks * 10))
        });
    let share = cpu
        .filter(|c| !c.is_zero())
        .map(|c| format!("{:.1}%", 100.0 * stats.held.as_secs_f64() / c.as_secs_f64()))
        .unwrap_or_else(|| "?".into());
    eprintln!(
        "lock-stats: {} holds, held {:.1} ms in all, longest {} us; process CPU {:?}; held share {share}",
        stats.holds,
        stats.held.as_secs_f64() * 1e3,
        stats.longest.as_micros(),
        cpu.unwrap_or_default(),
    );
}

#[cfg(test)]
mod tests {
    use super::{Args, amplify, set_limit};
    use std::time::Duration;

    #[test]
    fn limits_from_the_command_line() {
        let mut args = Args {
            host: String::new(),
            port: 0,
            sockjs_url: String::new(),
            runtime: String::new(),
            compression: false,
            limits: sockjs_core::Limits::default(),
            max_inbound_bytes: None,
            via: None,
            tls: false,
            metrics: None,
            redis: None,
            node_id: None,
        };
        set_limit(&mut args, "max_sessions=3").unwrap();
        set_limit(&mut args, "write_timeout=1500").unwrap();
        set_limit(&mut args, "max_inbound_bytes=4096").unwrap();
        assert_eq!(args.limits.max_sessions, 3);
        assert_eq!(args.limits.write_timeout, Duration::from_millis(1500));
        assert_eq!(args.max_inbound_bytes, Some(4096));
        assert!(set_limit(&mut args, "max_sessions").is_err());
        assert!(
            set_limit(&mut args, "nonsense=1")
                .unwrap_err()
                .contains("unknown limit")
        );
        assert!(set_limit(&mut args, "max_body_size=big").is_err());
        assert!(set_limit(&mut args, "max_inbound_bytes=-1").is_err());
    }

    #[test]
    fn node_ids() {
        assert!(super::valid_node_id("node-1"));
        assert!(!super::valid_node_id("node 1"));
        assert!(!super::valid_node_id(""));
        let id = super::default_node_id(8091);
        assert!(id.ends_with("-8091") && super::valid_node_id(&id), "{id}");
    }

    #[test]
    fn amplify_sizes() {
        assert_eq!(amplify("1").len(), 2);
        assert_eq!(amplify("3").len(), 8);
        assert_eq!(amplify("18").len(), 1 << 18);
        assert_eq!(amplify("19").len(), 2);
        assert_eq!(amplify("0").len(), 2);
        assert_eq!(amplify("-4").len(), 2);
        assert_eq!(amplify("x").len(), 2);
        assert_eq!(amplify("2.9").len(), 4);
    }
}
