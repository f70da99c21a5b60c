//! Topics over real loopback TCP on tokio: membership (subscribe, unsubscribe, leaving on
//! close), one encoding per publish, a slow subscriber not holding up a publish, and, with
//! the `redis` feature and a `redis-server` of our own, two nodes on one Redis: delivery once
//! and in order across nodes, no echo of a node's own publish, Redis killed (bounded buffer,
//! counted drops, local delivery goes on) and restarted (cross-node delivery resumes).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sockjs_tokio::topics::{Backend, Inbound};
use sockjs_tokio::{CloseReason, Limits, Options, Server, ServerHandle, SessionHandle, Topics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

mod support;
use support::LIMIT;

/// A `POST` on a fresh connection; returns the body.
async fn request(addr: SocketAddr, path: &str, body: &str) -> String {
    support::body(&support::request(addr, "POST", path, body).await).to_string()
}

/// The messages of one xhr poll's `a[...]` answer (none for anything else).
fn messages(body: &str) -> Vec<String> {
    body.strip_prefix('a')
        .and_then(|a| serde_json::from_str::<Vec<String>>(a.trim_end()).ok())
        .unwrap_or_default()
}

/// Polls session `sid` until `n` messages arrived (or a poll brings none within `wait`).
async fn collect(addr: SocketAddr, sid: &str, n: usize, wait: Duration) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    while got.len() < n && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, request(addr, &format!("/t/0/{sid}/xhr"), "")).await {
            // The poll an earlier `collect` gave up on may still hold the session for a
            // moment.
            Ok(body) if body.starts_with("c[2010,") => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Ok(body) if body.starts_with('c') => break,
            Ok(body) => got.extend(messages(&body)),
            Err(_) => break,
        }
    }
    got
}

/// Polls session `sid` until `last` arrives.
async fn collect_through(addr: SocketAddr, sid: &str, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    while !got.iter().any(|m| m == last) {
        let more = collect(addr, sid, 1, LIMIT).await;
        assert!(!more.is_empty(), "{last:?} did not come after {got:?}");
        got.extend(more);
    }
    got
}

/// Nothing waits for the session (checked a moment later, without polling: a poll given
/// up would close the session).
async fn nothing_more(session: &SessionHandle) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(session.stats().map(|s| s.queued_messages), Some(0));
}

/// A server whose `/t` sessions subscribe to `topic` and whose handles come out on the
/// channel.
async fn node(
    topics: Topics,
    topic: &'static str,
    limits: Limits,
) -> (
    SocketAddr,
    ServerHandle,
    mpsc::UnboundedReceiver<SessionHandle>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let builder =
        Server::builder()
            .limits(limits)
            .endpoint("/t", Options::default(), move |mut session| {
                let topics = topics.clone();
                let tx = tx.clone();
                async move {
                    topics
                        .subscribe(topic, &session.handle())
                        .expect("subscribe");
                    let _ = tx.send(session.handle());
                    // Messages from the client are published on the topic.
                    while let Some(msg) = session.recv().await {
                        topics.publish(topic, &msg);
                    }
                }
            });
    let server = builder.bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let handle = server.handle();
    tokio::spawn(async move {
        let _ = server.run().await;
    });
    (addr, handle, rx)
}

/// Opens session `sid` on `/t` and waits for its handle.
async fn open(
    addr: SocketAddr,
    sid: &str,
    handles: &mut mpsc::UnboundedReceiver<SessionHandle>,
) -> SessionHandle {
    assert_eq!(request(addr, &format!("/t/0/{sid}/xhr"), "").await, "o\n");
    timeout(LIMIT, handles.recv())
        .await
        .expect("handler in time")
        .expect("handle")
}

/// Waits until `cond` holds (checked every 10 ms, for `LIMIT` at most).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A backend that records what it is asked.
#[derive(Clone, Default)]
struct Recording {
    calls: Arc<Mutex<Vec<String>>>,
    inbound: Arc<Mutex<Option<Inbound>>>,
}

impl Backend for Recording {
    fn start(&self, inbound: Inbound) {
        *self.inbound.lock().unwrap() = Some(inbound);
    }
    fn subscribe(&self, topic: &str) {
        self.calls.lock().unwrap().push(format!("sub {topic}"));
    }
    fn unsubscribe(&self, topic: &str) {
        self.calls.lock().unwrap().push(format!("unsub {topic}"));
    }
    fn publish(&self, topic: &str, message: &str) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("pub {topic} {message}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_publish_and_leaving_on_close() {
    let backend = Recording::default();
    let topics = Topics::with_backend(backend.clone());
    let (addr, server, mut handles) = node(topics.clone(), "a", Limits::default()).await;
    let s1 = open(addr, "s1", &mut handles).await;
    let s2 = open(addr, "s2", &mut handles).await;
    assert_eq!(topics.subscribers("a"), 2);
    topics.subscribe("b", &s1).unwrap();
    topics.subscribe("b", &s1).unwrap();
    assert_eq!(topics.topics_of(&s1), ["a", "b"]);
    assert_eq!(topics.subscribers("b"), 1);
    assert_eq!(
        topics.subscribe("", &s1),
        Err(sockjs_tokio::TopicError::BadName)
    );
    assert_eq!(
        topics.subscribe(&"x".repeat(257), &s1),
        Err(sockjs_tokio::TopicError::BadName)
    );

    assert_eq!(topics.publish("a", "to a"), 2);
    assert_eq!(topics.publish("b", "to b"), 1);
    assert_eq!(topics.publish("nobody", "lost"), 0);
    assert_eq!(collect(addr, "s1", 2, LIMIT).await, ["to a", "to b"]);
    assert_eq!(collect(addr, "s2", 1, LIMIT).await, ["to a"]);

    assert!(topics.unsubscribe("a", &s2));
    assert!(!topics.unsubscribe("a", &s2));
    assert_eq!(topics.publish("a", "again"), 1);
    assert_eq!(collect(addr, "s1", 1, LIMIT).await, ["again"]);

    // A message from another node reaches this node's subscribers.
    let inbound = backend.inbound.lock().unwrap().clone().unwrap();
    assert_eq!(inbound.deliver("b", "from afar"), 1);
    assert_eq!(collect(addr, "s1", 1, LIMIT).await, ["from afar"]);

    // Closing leaves every topic: nothing is kept for it.
    s1.close(3000, "bye").unwrap();
    until("s1 to leave its topics", || {
        topics.stats().subscriptions == 0
    })
    .await;
    let stats = topics.stats();
    assert_eq!((stats.topics, stats.sessions), (0, 0));
    assert_eq!(topics.topics_of(&s1), Vec::<String>::new());
    // A closed session cannot subscribe.
    assert_eq!(
        topics.subscribe("a", &s1),
        Err(sockjs_tokio::TopicError::Closed)
    );
    assert_eq!(topics.stats().subscriptions, 0);

    let mut calls = backend.calls.lock().unwrap().clone();
    // The order a closing session leaves its topics in is not defined.
    calls[6..].sort();
    assert_eq!(
        calls,
        [
            "sub a",
            "sub b",
            "pub a to a",
            "pub b to b",
            "pub nobody lost",
            "pub a again",
            "unsub a",
            "unsub b",
        ]
    );
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sessions_closing_leave_nothing_behind() {
    let topics = Topics::new();
    let (addr, server, mut handles) = node(topics.clone(), "a", Limits::default()).await;
    for round in 0..3 {
        let mut open_now = Vec::new();
        for i in 0..50 {
            let h = open(addr, &format!("r{round}s{i}"), &mut handles).await;
            topics.subscribe("b", &h).unwrap();
            open_now.push(h);
        }
        assert_eq!(topics.stats().subscriptions, 100);
        for h in &open_now {
            h.close(3000, "bye").unwrap();
        }
        until("every session to leave", || {
            let s = topics.stats();
            (s.topics, s.subscriptions, s.sessions) == (0, 0, 0)
        })
        .await;
    }
    // The server going away closes the rest.
    let last = open(addr, "last", &mut handles).await;
    assert_eq!(topics.subscribers("a"), 1);
    server.shutdown();
    timeout(LIMIT, last.closed()).await.expect("closed");
    until("the last session to leave", || topics.subscribers("a") == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_encoding_per_publish_and_a_slow_subscriber_does_not_hold_it_up() {
    let topics = Topics::new();
    let mut limits = Limits::default();
    limits.max_queued_messages = 100;
    let (addr, server, mut handles) = node(topics.clone(), "a", limits).await;
    let mut all = Vec::new();
    for i in 0..200 {
        all.push(open(addr, &format!("s{i}"), &mut handles).await);
    }
    let before = topics.stats().local_broadcasts;
    assert_eq!(topics.publish("a", "one"), 200);
    assert_eq!(topics.stats().local_broadcasts, before + 1, "encoded once");
    assert_eq!(topics.stats().deliveries, 200);
    // Session s0 polls; the others never do: their queues overflow and they close, while
    // every publish returns at once.
    let started = Instant::now();
    for i in 0..150 {
        topics.publish("a", &format!("m{i}"));
        if i % 50 == 0 {
            let got = collect(addr, "s0", 1, LIMIT).await;
            assert!(!got.is_empty());
        }
    }
    assert!(started.elapsed() < LIMIT);
    until("the laggards to close and leave", || {
        topics.subscribers("a") <= 1
    })
    .await;
    assert_eq!(all[1].close_reason(), Some(CloseReason::QueueFull));
    assert!(all[0].close_reason().is_none());
    server.shutdown();
}

mod redis {
    //! Two nodes on one `redis-server` of the test's own (127.0.0.1, a free port, no
    //! persistence), stopped by its PID.

    use super::*;
    use sockjs_tokio::topics::{RedisBackend, RedisConfig};
    use std::process::{Child, Command, Stdio};

    /// Our `redis-server`; killed when dropped.
    struct Redis {
        child: Child,
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Whether `redis-server` is there, installing it (Debian's package) if it is not and
    /// we may.
    fn have_redis_server() -> bool {
        static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAVE.get_or_init(|| {
            let found = || {
                Command::new("redis-server")
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if found() {
                return true;
            }
            let _ = Command::new("apt-get")
                .args(["install", "-y", "-qq", "redis-server"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            found()
        })
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Starts `redis-server` on `port` and waits until it answers.
    async fn start_redis(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Redis { child };
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await {
                let _ = s.write_all(b"PING\r\n").await;
                let mut buf = [0; 7];
                if timeout(Duration::from_secs(1), s.read_exact(&mut buf))
                    .await
                    .is_ok_and(|r| r.is_ok())
                    && &buf == b"+PONG\r\n"
                {
                    return redis;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn redis_topics(port: u16, node: &str, max_buffered: usize) -> Topics {
        let mut config = RedisConfig::new(format!("redis://127.0.0.1:{port}"), node);
        config.max_buffered_messages = max_buffered;
        config.backoff_min = Duration::from_millis(20);
        config.backoff_max = Duration::from_millis(200);
        config.connect_timeout = Duration::from_millis(500);
        config.response_timeout = Duration::from_millis(500);
        let rt: Arc<dyn sockjs_tokio::Runtime> = Arc::new(sockjs_tokio::Tokio);
        Topics::with_backend(RedisBackend::new(rt, config).expect("backend"))
    }

    async fn ready(topics: &[&Topics]) {
        until("the nodes to connect and subscribe", || {
            topics.iter().all(|t| {
                let b = t.stats().backend;
                b.connected && b.subscribed as usize == t.stats().topics
            })
        })
        .await;
    }

    /// A `redis-server` of the test's own and node `n1` on it (topic `room`, buffering up to
    /// `max_buffered` messages while Redis is away).
    async fn redis_and_node(
        max_buffered: usize,
    ) -> (
        u16,
        Redis,
        Topics,
        (
            SocketAddr,
            ServerHandle,
            mpsc::UnboundedReceiver<SessionHandle>,
        ),
    ) {
        let port = free_port();
        let redis = start_redis(port).await;
        let t1 = redis_topics(port, "n1", max_buffered);
        let node = node(t1.clone(), "room", Limits::default()).await;
        (port, redis, t1, node)
    }

    macro_rules! need_redis {
        () => {
            if !have_redis_server() {
                eprintln!(
                    "SKIPPED: redis-server is not installed and could not be \
                     (apt-get install redis-server)"
                );
                return;
            }
        };
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_deliver_once_in_order_and_survive_a_redis_restart() {
        need_redis!();
        let (port, redis, t1, (a1, srv1, mut h1)) = redis_and_node(300).await;
        let t2 = redis_topics(port, "n2", 300);
        let (a2, srv2, mut h2) = node(t2.clone(), "room", Limits::default()).await;
        let s1 = open(a1, "s1", &mut h1).await;
        let s2 = open(a2, "s2", &mut h2).await;
        ready(&[&t1, &t2]).await;

        // n1 publishes 200: its own session gets each once (locally, never the echo), the
        // session on n2 gets each once, in order.
        let sent: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
        for m in &sent {
            t1.publish("room", m);
        }
        assert_eq!(collect(a2, "s2", 200, LIMIT).await, sent);
        assert_eq!(collect(a1, "s1", 200, LIMIT).await, sent);
        // Nothing more comes for either.
        nothing_more(&s1).await;
        nothing_more(&s2).await;
        until("n1 to see its echoes", || t1.stats().backend.echoes == 200).await;
        assert_eq!(t2.stats().backend.received, 200);
        assert_eq!(t1.stats().backend.received, 0);

        // A client of n2 publishes through its session: n1's session gets it.
        assert_eq!(request(a2, "/t/0/s2/xhr_send", r#"["from n2"]"#).await, "");
        assert_eq!(collect(a1, "s1", 1, LIMIT).await, ["from n2"]);
        assert_eq!(collect(a2, "s2", 1, LIMIT).await, ["from n2"]);

        // Redis goes away: publishing goes on, bounded, drops counted, local delivery
        // unaffected.
        drop(redis);
        until("n1 to notice", || !t1.stats().backend.connected).await;
        let local: Vec<String> = (0..1000).map(|i| format!("down{i}")).collect();
        // At most 300 waiting, plus one batch (64) taken when Redis went.
        for m in &local {
            t1.publish("room", m);
            assert!(t1.stats().backend.buffered <= 364);
        }
        let b = t1.stats().backend;
        assert!(b.dropped >= 1000 - 364, "{b:?}");
        assert!(b.buffered_bytes <= 364 * 64, "{b:?}");
        let got = collect(a1, "s1", 1000, LIMIT).await;
        assert_eq!(got, local);

        // Redis back on the same port: both nodes reconnect and subscribe again by
        // themselves; what was buffered may or may not reach n2 (it may not be subscribed
        // yet), but never twice and never out of order, and new publishes cross again.
        let _redis = start_redis(port).await;
        ready(&[&t1, &t2]).await;
        until("n1's buffer to drain", || t1.stats().backend.buffered == 0).await;
        t1.publish("room", "after");
        let mut got = collect_through(a2, "s2", "after").await;
        assert_eq!(got.pop().as_deref(), Some("after"), "{got:?}");
        // Some of the buffered ones, each once, in order.
        let at: Vec<usize> = got
            .iter()
            .map(|m| local.iter().position(|l| l == m).expect("one of n1's"))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert!(t1.stats().backend.reconnects >= 2);
        assert_eq!(collect(a1, "s1", 1, LIMIT).await, ["after"]);
        srv1.shutdown();
        srv2.shutdown();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn garbage_on_the_channel_is_rejected_not_delivered() {
        need_redis!();
        let (port, _redis, t1, (a1, srv1, mut h1)) = redis_and_node(100).await;
        let s1 = open(a1, "s1", &mut h1).await;
        ready(&[&t1]).await;
        // Another client of the same Redis publishes junk on the topic's channel.
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut cmds = Vec::new();
        for junk in [
            &b"hello"[..],
            b"sockjs1 x 1 1",
            b"sockjs1 bad:node 1 1\nx",
            b"sockjs1 n9 1 1\n\xff\xfe",
            b"sockjs1 n9 1 1\nvalid",
            b"sockjs1 n9 1 1\nrepeat",
        ] {
            cmds.extend_from_slice(
                format!(
                    "*3\r\n$7\r\nPUBLISH\r\n$17\r\nsockjs:topic:room\r\n${}\r\n",
                    junk.len()
                )
                .as_bytes(),
            );
            cmds.extend_from_slice(junk);
            cmds.extend_from_slice(b"\r\n");
        }
        s.write_all(&cmds).await.unwrap();
        assert_eq!(collect(a1, "s1", 1, LIMIT).await, ["valid"]);
        until("the junk to be counted", || {
            let b = t1.stats().backend;
            b.rejected == 4 && b.duplicates == 1
        })
        .await;
        nothing_more(&s1).await;
        srv1.shutdown();
    }
}
