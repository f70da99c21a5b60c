//! The test server's metrics endpoint and logs against known traffic: every counter equals
//! what the traffic made, and `RUST_LOG=sockjs=debug` shows one open and one close line per
//! session, with its reason.

mod support;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use support::{Conn, TIMEOUT, TestServer, exchange};

/// Waits a moment before a client answers the server's last output by ending the
/// connection. The driver reports a write to the core with its next call, and a write that
/// finishes while another thread's call closes the connection is reported only by the next
/// call after it (at the latest the write timeout's): without the pause the close could wait
/// for that.
fn settle() {
    std::thread::sleep(Duration::from_millis(50));
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The sockjs samples of a Prometheus text page: `name{labels}` to value.
fn scrape(metrics: SocketAddr) -> BTreeMap<String, f64> {
    let r = exchange(metrics, "GET", "/metrics", &[("Connection", "close")], b"");
    assert_eq!(r.status, 200, "{}", r.head);
    r.text()
        .lines()
        .filter(|l| l.starts_with("sockjs_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Known traffic, as the client side counts it.
struct Traffic {
    sent: usize,
    received: usize,
    accepted: usize,
}

impl Traffic {
    /// Counts a connection done with.
    fn done(&mut self, c: Conn) {
        self.sent += c.sent;
        self.received += c.received;
        self.accepted += 1;
    }
}

/// Sessions on three transports and three endpoints, messages both ways, a broadcast, an
/// application close, client closes, interrupted receivers, and three refused requests.
fn make_traffic(addr: SocketAddr) -> Traffic {
    let mut t = Traffic {
        sent: 0,
        received: 0,
        accepted: 0,
    };

    // WebSocket echo: one message each way (5 bytes), then the client closes.
    let mut ws = Conn::websocket(addr, "/echo/000/a/websocket");
    assert_eq!(ws.ws_read_text(), "o");
    ws.ws_text(r#"["hello"]"#);
    assert_eq!(ws.ws_read_text(), r#"a["hello"]"#);
    settle();
    ws.ws_send(8, &[0x03, 0xe8]);
    assert_eq!(ws.ws_read().0, 8);
    ws.read_to_end();
    t.done(ws);

    // The application closes at once.
    let mut ws = Conn::websocket(addr, "/close/000/b/websocket");
    assert_eq!(ws.ws_read_text(), "o");
    assert_eq!(ws.ws_read_text(), r#"c[3000,"Go away!"]"#);
    assert_eq!(ws.ws_read().0, 8);
    settle();
    ws.ws_send(8, &[0x03, 0xe8]);
    ws.read_to_end();
    t.done(ws);

    // xhr polling: two messages each way (3 bytes), then a poll whose connection goes away:
    // interrupted.
    let mut c = Conn::open(addr);
    c.request("POST", "/echo/000/c/xhr", &[], b"");
    assert_eq!(c.response().text(), "o\n");
    c.request("POST", "/echo/000/c/xhr_send", &[], br#"["ab","c"]"#);
    assert_eq!(c.response().status, 204);
    // The echoes may come in one poll or two.
    let mut echoed = String::new();
    for _ in 0..2 {
        c.request("POST", "/echo/000/c/xhr", &[], b"");
        echoed.push_str(&c.response().text());
        if echoed.contains("\"c\"") {
            break;
        }
    }
    assert!(
        echoed == "a[\"ab\",\"c\"]\n" || echoed == "a[\"ab\"]\na[\"c\"]\n",
        "{echoed:?}"
    );
    t.done(c);
    let mut parked = Conn::open(addr);
    parked.request("POST", "/echo/000/c/xhr", &[], b"");
    parked
        .stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    parked.read_to_end();
    t.done(parked);

    // eventsource: opened, then the client goes: interrupted.
    let mut es = Conn::open(addr);
    es.request("GET", "/echo/000/d/eventsource", &[], b"");
    assert_eq!(es.head().status, 200);
    assert_eq!(es.chunk(), b"\r\n");
    assert_eq!(es.chunk(), b"data: o\r\n\r\n");
    es.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    es.read_to_end();
    t.done(es);

    // A broadcast to the one session on /broadcast: one message each way (3 bytes).
    let mut ws = Conn::websocket(addr, "/broadcast/000/e/websocket");
    assert_eq!(ws.ws_read_text(), "o");
    ws.ws_text(r#"["hey"]"#);
    assert_eq!(ws.ws_read_text(), r#"a["hey"]"#);
    settle();
    ws.ws_send(8, &[0x03, 0xe8]);
    assert_eq!(ws.ws_read().0, 8);
    ws.read_to_end();
    t.done(ws);

    // Refused: 404, bad framing (400), a body over max_body_size (413).
    let mut c = Conn::open(addr);
    c.request("GET", "/nothing", &[], b"");
    assert_eq!(c.response().status, 404);
    c.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    c.read_to_end();
    t.done(c);
    let mut c = Conn::open(addr);
    c.send(b"GARBAGE\r\n\r\n");
    assert_eq!(c.response().status, 400);
    c.read_to_end();
    t.done(c);
    let mut c = Conn::open(addr);
    c.send(b"POST /echo/000/f/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n");
    assert_eq!(c.response().status, 413);
    c.read_to_end();
    t.done(c);
    t
}

/// What the metrics must read after [`make_traffic`]: every sockjs sample but the
/// histogram's; those not listed must be 0.
fn expected(t: &Traffic) -> BTreeMap<String, f64> {
    [
        ("sockjs_connections", 0),
        ("sockjs_connections_accepted_total", t.accepted),
        (r#"sockjs_sessions_opened_total{transport="websocket"}"#, 3),
        (
            r#"sockjs_sessions_opened_total{transport="xhr-polling"}"#,
            1,
        ),
        (
            r#"sockjs_sessions_opened_total{transport="eventsource"}"#,
            1,
        ),
        (r#"sockjs_sessions_closed_total{reason="client_closed"}"#, 2),
        (r#"sockjs_sessions_closed_total{reason="application"}"#, 1),
        (r#"sockjs_sessions_closed_total{reason="interrupted"}"#, 2),
        (r#"sockjs_messages_total{direction="in"}"#, 4),
        (r#"sockjs_messages_total{direction="out"}"#, 4),
        (r#"sockjs_bytes_total{direction="in"}"#, 5 + 3 + 3),
        (r#"sockjs_bytes_total{direction="out"}"#, 5 + 3 + 3),
        (r#"sockjs_network_bytes_total{direction="in"}"#, t.sent),
        (r#"sockjs_network_bytes_total{direction="out"}"#, t.received),
        (r#"sockjs_refused_total{cause="not_found"}"#, 1),
        (r#"sockjs_refused_total{cause="framing"}"#, 1),
        (r#"sockjs_refused_total{cause="limit"}"#, 1),
        (r#"sockjs_refused_by_status_total{status="400"}"#, 1),
        (r#"sockjs_refused_by_status_total{status="404"}"#, 1),
        (r#"sockjs_refused_by_status_total{status="413"}"#, 1),
        (r#"sockjs_limit_hits_total{limit="max_body_size"}"#, 1),
        ("sockjs_broadcast_delivery_seconds_count", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v as f64))
    .collect()
}

/// Compares a scrape with what is expected: equal where listed, zero elsewhere (the
/// histogram's quantiles and sum aside).
fn mismatches(scraped: &BTreeMap<String, f64>, want: &BTreeMap<String, f64>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in want {
        match scraped.get(k) {
            Some(got) if got == v => {}
            got => out.push(format!("{k}: want {v}, got {got:?}")),
        }
    }
    for (k, v) in scraped {
        let histogram = k.starts_with("sockjs_broadcast_delivery_seconds");
        if !histogram && !want.contains_key(k) && *v != 0.0 {
            out.push(format!("{k}: want 0, got {v}"));
        }
    }
    out
}

fn metrics_match_traffic_on(runtime: &str) {
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let server = TestServer::start_with(
        runtime,
        &["--metrics", &metrics.to_string()],
        &[("RUST_LOG", "sockjs=debug")],
    );
    let traffic = make_traffic(server.addr);
    let want = expected(&traffic);

    // The figures are exported every 500 ms: wait for the traffic to show.
    let start = Instant::now();
    let mut wrong = loop {
        let wrong = mismatches(&scrape(metrics), &want);
        if wrong.is_empty() || start.elapsed() > TIMEOUT {
            break wrong;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    wrong.sort();
    assert!(wrong.is_empty(), "{runtime}: {wrong:#?}");
    // Every gauge and labelled counter is there, zeros included.
    let scraped = scrape(metrics);
    for t in [
        "websocket",
        "websocket-raw",
        "xhr-polling",
        "xhr-streaming",
        "eventsource",
        "htmlfile",
        "jsonp-polling",
    ] {
        assert_eq!(
            scraped.get(&format!("sockjs_sessions{{transport=\"{t}\"}}")),
            Some(&0.0),
            "{runtime}: sessions on {t}"
        );
    }
    assert_eq!(
        scraped.get(r#"sockjs_refused_total{cause="authorization"}"#),
        Some(&0.0)
    );

    // One open and one close line per session, the close with its reason.
    let log = server.log_lines();
    let opened: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("session opened"))
        .collect();
    let closed: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("session closed"))
        .collect();
    assert_eq!(opened.len(), 5, "{runtime}: {log:#?}");
    assert_eq!(closed.len(), 5, "{runtime}: {log:#?}");
    for line in &opened {
        assert!(line.contains("DEBUG"), "{line}");
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
    }
    let id = |line: &str| {
        let at = line.find("session{id=").expect("a session span") + "session{id=".len();
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let mut open_ids: Vec<String> = opened.iter().map(|l| id(l)).collect();
    let mut close_ids: Vec<String> = closed.iter().map(|l| id(l)).collect();
    open_ids.sort();
    close_ids.sort();
    assert_eq!(
        open_ids, close_ids,
        "{runtime}: every session opened and closed once"
    );
    let mut reasons: Vec<&str> = closed
        .iter()
        .map(|l| {
            ["client_closed", "application", "interrupted"]
                .into_iter()
                .find(|r| {
                    l.contains(&format!("reason=\"{r}\"")) || l.contains(&format!("reason={r}"))
                })
                .unwrap_or_else(|| panic!("no reason in {l}"))
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "application",
            "client_closed",
            "client_closed",
            "interrupted",
            "interrupted"
        ]
    );
    assert!(
        closed
            .iter()
            .any(|l| l.contains("transport=\"eventsource\"") && l.contains("endpoint=/echo")),
        "{closed:#?}"
    );
    // The refusals are warnings.
    let refused = log
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("request refused"))
        .count();
    assert_eq!(refused, 3, "{runtime}: {log:#?}");
}

#[test]
fn metrics_match_traffic_on_tokio() {
    metrics_match_traffic_on("tokio");
}

#[test]
fn metrics_match_traffic_on_smol() {
    metrics_match_traffic_on("smol");
}

/// Without `RUST_LOG` only warnings are logged: no line per session.
#[test]
fn default_logs_only_warnings() {
    let server = TestServer::start("tokio");
    let mut ws = Conn::websocket(server.addr, "/echo/000/q/websocket");
    assert_eq!(ws.ws_read_text(), "o");
    settle();
    ws.ws_send(8, &[0x03, 0xe8]);
    assert_eq!(ws.ws_read().0, 8);
    ws.read_to_end();
    assert_eq!(
        exchange(server.addr, "GET", "/nothing", &[], b"").status,
        404
    );
    let start = Instant::now();
    while server.log_lines().is_empty() && start.elapsed() < TIMEOUT {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = server.log_lines();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert!(
        log[0].contains("WARN")
            && log[0].contains("request refused")
            && log[0].contains("status=404"),
        "{log:#?}"
    );
}

/// `--metrics` takes a loopback address only.
#[test]
fn metrics_only_on_loopback() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sockjs-testserver"))
        .args(["--port", "0", "--metrics", "0.0.0.0:9"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
