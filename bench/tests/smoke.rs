//! End-to-end runs of bench-load against the raw reference servers on 127.0.0.1.
//!
//! Each run is short (well under two seconds) and every server started here is killed by
//! its handle when the test ends, pass or fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// A server child process, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &str) -> Server {
    let mut child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", "0", "--threads", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server { child, addr }
}

fn load(server: &Server, args: &[&str]) -> Value {
    let pid = server.child.id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_bench-load"))
        .args(args)
        .args([
            "--addr",
            &server.addr,
            "--target",
            "raw",
            "--server-pid",
            &pid,
        ])
        .args(["--json", "--warmup", "0.2", "--duration", "0.8"])
        .output()
        .expect("run bench-load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench-load failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn ws_echo_against_raw_ws() {
    let server = start(env!("CARGO_BIN_EXE_bench-raw-ws"));
    for rate in ["0", "2000"] {
        let r = load(
            &server,
            &[
                "ws-echo",
                "--sessions",
                "8",
                "--size",
                "100",
                "--rate",
                rate,
            ],
        );
        assert_eq!(r["errors"], 0, "{r}");
        assert!(num(&r, "per_session_min") > 0.0, "{r}");
        assert!(num(&r, "p50_us") > 0.0, "{r}");
        assert!(num(&r, "server_cpu_s") >= 0.0, "{r}");
        if rate != "0" {
            // Paced, not saturating: never much above the offered 2000/s. On a busy machine
            // echoes come late and ticks that find the window full are skipped, but the
            // ticks themselves keep coming.
            let t = num(&r, "throughput");
            assert!(t > 0.0 && t < 2400.0, "{r}");
            let ticks = (num(&r, "messages") + num(&r, "skipped")) / num(&r, "measured_s");
            assert!(ticks > 1000.0, "{r}");
        }
    }
}

#[test]
fn http_poll_and_idle_against_raw_http() {
    let server = start(env!("CARGO_BIN_EXE_bench-raw-http"));
    let r = load(&server, &["http-poll", "--sessions", "4"]);
    assert_eq!(r["errors"], 0, "{r}");
    assert!(num(&r, "per_session_min") > 0.0, "{r}");
    let r = load(
        &server,
        &["idle-poll", "--sessions", "200", "--settle", "0.2"],
    );
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["opened"], 200, "{r}");
    assert!(num(&r, "rss_after_kib") > 0.0, "{r}");
}

#[test]
fn idle_ws_against_raw_ws_weighs_sessions() {
    let server = start(env!("CARGO_BIN_EXE_bench-raw-ws"));
    let r = load(
        &server,
        &["idle-ws", "--sessions", "300", "--settle", "0.2"],
    );
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["opened"], 300, "{r}");
    // Each upgraded connection holds at least tungstenite's 4 KiB read buffer.
    assert!(num(&r, "kib_per_session") > 2.0, "{r}");
}

#[test]
fn bad_flags_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-load"))
        .args(["ws-echo", "--addr", "127.0.0.1:9", "--sesions", "3"])
        .output()
        .expect("run bench-load");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag(s): --sesions"));
    let out = Command::new(env!("CARGO_BIN_EXE_bench-load"))
        .args(["parked-polls", "--addr", "127.0.0.1:9", "--target", "raw"])
        .output()
        .expect("run bench-load");
    assert_eq!(out.status.code(), Some(2));
}
