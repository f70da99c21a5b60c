//! Topics through Redis off tokio: one node spawning on async-std and one on smol, the redis
//! crate on smol's reactor, sharing a `redis-server` of the test's own (127.0.0.1, a free
//! port, no persistence, stopped by its PID). What one node's client publishes reaches the
//! other node's session once and in order, and the publishing node's own session once.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use sockjs::topics::{RedisBackend, RedisConfig};
use sockjs::{Options, Topics};
use sockjs_async_std::Server;

const LIMIT: Duration = Duration::from_secs(10);

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have_redis_server() -> bool {
    let found = || {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !found() {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "redis-server"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    found()
}

fn start_redis() -> (Redis, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let redis = Redis(child);
    let deadline = Instant::now() + LIMIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (redis, port)
}

/// One request on a fresh connection; the body.
async fn request(addr: SocketAddr, path: &str, body: &str) -> String {
    let mut s = Async::<TcpStream>::connect(addr).await.expect("connect");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let read = async {
        s.read_to_end(&mut out).await.expect("read");
        true
    };
    let late = async {
        Timer::after(LIMIT).await;
        false
    };
    assert!(future::or(read, late).await, "response in time");
    let text = String::from_utf8(out).expect("utf-8");
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Polls until `n` messages arrived.
async fn collect(addr: SocketAddr, sid: &str, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        let body = request(addr, &format!("/t/0/{sid}/xhr"), "").await;
        let more: Vec<String> = body
            .strip_prefix('a')
            .and_then(|a| serde_json::from_str(a.trim_end()).ok())
            .unwrap_or_default();
        assert!(!more.is_empty(), "unexpected {body:?} after {got:?}");
        got.extend(more);
    }
    got
}

async fn node(builder: sockjs_async_std::Builder, port: u16, id: &str) -> (SocketAddr, Topics) {
    let builder: sockjs::Builder<_> = builder.into();
    let mut config = RedisConfig::new(format!("redis://127.0.0.1:{port}"), id);
    config.backoff_min = Duration::from_millis(20);
    let topics = Topics::with_backend(
        RedisBackend::new(Arc::clone(builder.runtime()), config).expect("backend"),
    );
    let t = topics.clone();
    let server = builder
        .endpoint("/t", Options::default(), move |mut session| {
            let topics = t.clone();
            async move {
                topics
                    .subscribe("room", &session.handle())
                    .expect("subscribe");
                while let Some(msg) = session.recv().await {
                    topics.publish("room", &msg);
                }
            }
        })
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    async_std::task::spawn(async move {
        let _ = server.run().await;
    });
    (addr, topics)
}

#[test]
fn async_std_and_smol_nodes_share_a_topic_through_redis() {
    if !have_redis_server() {
        eprintln!(
            "SKIPPED: redis-server is not installed and could not be (apt-get install redis-server)"
        );
        return;
    }
    let (_redis, port) = start_redis();
    async_std::task::block_on(async {
        let (a, ta) = node(Server::builder().spawn_with_async_std(), port, "a").await;
        let (b, tb) = node(Server::builder().spawn_with_smol(), port, "b").await;
        assert_eq!(request(a, "/t/0/s1/xhr", "").await, "o\n");
        assert_eq!(request(b, "/t/0/s2/xhr", "").await, "o\n");
        let deadline = Instant::now() + LIMIT;
        while ![&ta, &tb].iter().all(|t| {
            let s = t.stats();
            s.backend.connected && s.backend.subscribed == 1 && s.subscriptions == 1
        }) {
            assert!(Instant::now() < deadline, "nodes not ready");
            Timer::after(Duration::from_millis(10)).await;
        }
        let sent: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        let body = serde_json::to_string(&sent).unwrap();
        assert_eq!(request(a, "/t/0/s1/xhr_send", &body).await, "");
        assert_eq!(collect(b, "s2", 50).await, sent);
        assert_eq!(collect(a, "s1", 50).await, sent);
        let deadline = Instant::now() + LIMIT;
        while ta.stats().backend.echoes < 50 {
            assert!(Instant::now() < deadline, "echoes not dropped");
            Timer::after(Duration::from_millis(10)).await;
        }
        assert_eq!(tb.stats().backend.received, 50);
        assert_eq!(ta.stats().backend.received, 0);
    });
}
