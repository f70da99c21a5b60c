//! The SockJS client (`sockjs::client`, through `sockjs_tokio::connect` and the async-std and
//! smol bindings) against two servers, on every transport: this project's test server and
//! the reference, sockjs-node (npm `sockjs` 0.3.24, served by the shared
//! `tools/sockjs-node-server.js`). The sockjs-node tests skip, saying so, only when `node` is
//! not installed; the package is installed into `~/.cache/sockjs-bench/node` (or
//! `$SOCKJS_NODE_DIR`) with npm when missing, as `bench/run` does.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sockjs_tokio::{ClientOptions, ClosedBy, Transport};
use support::TestServer;

/// A server to test against.
enum Server {
    Ours(TestServer),
    Node(NodeServer),
}

impl Server {
    fn addr(&self) -> SocketAddr {
        match self {
            Server::Ours(s) => s.addr,
            Server::Node(n) => n.addr,
        }
    }

    fn url(&self, prefix: &str) -> String {
        format!("http://{}{prefix}", self.addr())
    }

    fn is_node(&self) -> bool {
        matches!(self, Server::Node(_))
    }

    /// Kills the server (SIGKILL): it is gone mid-stream.
    fn kill(&mut self) {
        let child = match self {
            Server::Ours(s) => s.pid(),
            Server::Node(n) => n.child.id(),
        };
        let _ = Command::new("kill")
            .args(["-KILL", &child.to_string()])
            .status();
    }
}

/// sockjs-node serving the shared endpoint table, killed when dropped.
struct NodeServer {
    child: Child,
    addr: SocketAddr,
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shared `tools/sockjs-node-server.js`: the first that exists of
/// `$SOCKJS_NODE_SERVER`, `$SHARED_DIR/tools/`, and a `shared/tools/` beside the repository
/// or one of its parents (a worktree sits a level deeper).
fn node_script() -> Option<PathBuf> {
    let from_env = |var: &str, tail: &str| std::env::var_os(var).map(|v| Path::new(&v).join(tail));
    let ancestors = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/tools/sockjs-node-server.js"));
    from_env("SOCKJS_NODE_SERVER", "")
        .into_iter()
        .chain(from_env("SHARED_DIR", "tools/sockjs-node-server.js"))
        .chain(ancestors)
        .find(|p| p.is_file())
}

/// Installs the npm package once per test process (tests start servers in parallel).
fn install_sockjs_node(dir: &Path) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if dir.join("node_modules/sockjs").is_dir() {
        return;
    }
    let status = Command::new("npm")
        .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .arg("sockjs@0.3.24")
        .status()
        .expect("node is installed but npm is not: install npm to run the sockjs-node tests");
    assert!(status.success(), "npm install of sockjs@0.3.24 failed");
}

/// sockjs-node, or why it cannot run here (`node` missing is the one reason to skip).
fn start_node() -> Option<NodeServer> {
    if Command::new("node").arg("--version").output().is_err() {
        // CI sets SOCKJS_CLIENT_NODE=require: there a missing node is a failure.
        let required = std::env::var("SOCKJS_CLIENT_NODE").is_ok_and(|v| v == "require");
        assert!(
            !required,
            "node is not installed and SOCKJS_CLIENT_NODE=require"
        );
        eprintln!("SKIPPED: node is not installed: no sockjs-node tests");
        return None;
    }
    let script = node_script()
        .expect("tools/sockjs-node-server.js not found: set SOCKJS_NODE_SERVER or SHARED_DIR");
    let dir = std::env::var_os("SOCKJS_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            cache.join("sockjs-bench/node")
        });
    install_sockjs_node(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new("node")
        .arg(&script)
        .env("NODE_PATH", dir.join("node_modules"))
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read node's first line");
    assert!(
        line.contains("sockjs-node reference on"),
        "node said {line:?}"
    );
    Some(NodeServer {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    })
}

fn server(which: &str) -> Option<Server> {
    match which {
        "ours" => Some(Server::Ours(TestServer::start("tokio"))),
        _ => start_node().map(Server::Node),
    }
}

/// Every character the protocol suite expects escaped in frames (controls, U+200C-200F,
/// U+2028-202F, U+2060-206F, U+FFF0-FFFF, astral characters as surrogate pairs), and the
/// characters that break the other transports' framing when left raw.
fn awkward_strings() -> Vec<String> {
    let mut all = vec![
        "\"\\/\u{8}\u{c}\n\r\t".to_string(),
        (0u32..0x20).filter_map(char::from_u32).collect(),
        "\u{200c}\u{200d}\u{200e}\u{200f}".into(),
        (0x2028..=0x202f).filter_map(char::from_u32).collect(),
        (0x2060..=0x206f).filter_map(char::from_u32).collect(),
        (0xfff0..=0xffff).filter_map(char::from_u32).collect(),
        "\u{1f600}\u{10000}\u{10ffff}".into(),
        "</script><b>&amp; 100% %zz".into(),
        "\u{feff}é€\u{7f}".into(),
        String::new(),
        " ".into(),
    ];
    // The suite's whole range, U+0000 to U+FFFF, in one message.
    all.push((0u32..0x10000).filter_map(char::from_u32).collect());
    all
}

/// A per-test bound on everything that waits.
const DEADLINE: Duration = Duration::from_secs(60);

async fn echo_case(server: &Server, transport: Transport) {
    let url = server.url("/echo");
    let options = ClientOptions::default().transports([transport]);
    let mut session = sockjs_tokio::connect(&url, options).await.expect("connect");
    assert_eq!(session.transport(), transport);
    let strings = awkward_strings();
    for s in &strings {
        session.send(s).expect("send");
    }
    // A large message too: past /echo's 4 KiB response_limit many times.
    let large: String = "0123456789abcdef".repeat(16 * 1024);
    session.send(&large).expect("send");
    for s in strings.iter().chain([&large]) {
        let got = session.recv().await.expect("an echo");
        assert_eq!(&got, s, "{transport} echo of {:?}", &s[..s.len().min(40)]);
    }
    session.close(1000, "done").expect("close");
    assert_eq!(session.recv().await, None);
}

async fn close_case(server: &Server, transport: Transport) {
    let options = ClientOptions::default().transports([transport]);
    let mut session = sockjs_tokio::connect(&server.url("/close"), options)
        .await
        .expect("connect");
    assert_eq!(session.recv().await, None);
    let close = session.close_reason().expect("closed");
    assert_eq!(
        (close.code, close.reason.as_str(), close.by),
        (3000, "Go away!", ClosedBy::Server)
    );
}

async fn amplify_case(server: &Server, transport: Transport) {
    let options = ClientOptions::default().transports([transport]);
    let mut session = sockjs_tokio::connect(&server.url("/amplify"), options)
        .await
        .expect("connect");
    // 2^17 bytes three times: each past the default 128 KiB response_limit, so streaming
    // responses end after each and are reopened.
    for _ in 0..3 {
        session.send("17").expect("send");
    }
    for _ in 0..3 {
        let got = session.recv().await.expect("amplified");
        assert_eq!(got.len(), 1 << 17);
        assert!(got.bytes().all(|b| b == b'x'));
    }
}

async fn gone_case(mut server: Server, transport: Transport) {
    let options = ClientOptions::default().transports([transport]);
    let mut session = sockjs_tokio::connect(&server.url("/echo"), options)
        .await
        .expect("connect");
    session.send("before").unwrap();
    assert_eq!(session.recv().await.as_deref(), Some("before"));
    server.kill();
    assert_eq!(session.recv().await, None);
    let close = session.close_reason().expect("closed");
    assert_eq!(close.by, ClosedBy::Failure, "{close:?}");
    assert_eq!(close.code, 1006, "{close:?}");
}

async fn heartbeat_case(server: &Server, transport: Transport) {
    // Servers send `h` after 25 s of silence: with a 27 s timeout the session survives
    // 30 s of silence only if it arrived.
    let options = ClientOptions::default()
        .transports([transport])
        .heartbeat_timeout(Some(Duration::from_secs(27)));
    let mut session = sockjs_tokio::connect(&server.url("/echo"), options)
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_secs(30)).await;
    session
        .send("still here")
        .expect("still open after 30 s of heartbeats only");
    assert_eq!(session.recv().await.as_deref(), Some("still here"));
}

async fn fallback_case(server: &Server) {
    // `/info` says websocket:false: the client goes to xhr_streaming.
    let mut session = sockjs_tokio::connect(
        &server.url("/disabled_websocket_echo"),
        ClientOptions::default(),
    )
    .await
    .expect("connect");
    assert_eq!(session.transport(), Transport::XhrStreaming);
    session.send("x").unwrap();
    assert_eq!(session.recv().await.as_deref(), Some("x"));
    // Only websocket allowed there: nothing left to try.
    let only_ws = ClientOptions::default().transports([Transport::WebSocket]);
    let err = sockjs_tokio::connect(&server.url("/disabled_websocket_echo"), only_ws)
        .await
        .expect_err("no transport");
    assert!(err.to_string().contains("2000"), "{err}");
}

fn run<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(DEADLINE, f)
            .await
            .expect("the test's deadline");
    });
}

macro_rules! per_transport {
    ($($name:ident: $server:literal, $transport:expr;)*) => {
        mod echo {
            use super::*;
            $(#[test] fn $name() { if let Some(s) = server($server) { run(echo_case(&s, $transport)); } })*
        }
        mod close {
            use super::*;
            $(#[test] fn $name() { if let Some(s) = server($server) { run(close_case(&s, $transport)); } })*
        }
        mod amplify {
            use super::*;
            $(#[test] fn $name() { if let Some(s) = server($server) { run(amplify_case(&s, $transport)); } })*
        }
        mod server_gone {
            use super::*;
            $(#[test] fn $name() { if let Some(s) = server($server) { run(gone_case(s, $transport)); } })*
        }
    };
}

per_transport! {
    ours_websocket: "ours", Transport::WebSocket;
    ours_xhr_streaming: "ours", Transport::XhrStreaming;
    ours_eventsource: "ours", Transport::EventSource;
    ours_xhr: "ours", Transport::XhrPolling;
    node_websocket: "node", Transport::WebSocket;
    node_xhr_streaming: "node", Transport::XhrStreaming;
    node_eventsource: "node", Transport::EventSource;
    node_xhr: "node", Transport::XhrPolling;
}

/// Every transport at once (each waits 30 s): one test per server.
async fn heartbeats_on_every_transport(server: &Server) {
    tokio::join!(
        heartbeat_case(server, Transport::WebSocket),
        heartbeat_case(server, Transport::XhrStreaming),
        heartbeat_case(server, Transport::EventSource),
        heartbeat_case(server, Transport::XhrPolling),
    );
}

#[test]
fn heartbeats_ours() {
    if let Some(s) = server("ours") {
        run(heartbeats_on_every_transport(&s));
    }
}

#[test]
fn heartbeats_node() {
    if let Some(s) = server("node") {
        run(heartbeats_on_every_transport(&s));
    }
}

#[test]
fn fallback_ours() {
    if let Some(s) = server("ours") {
        run(fallback_case(&s));
    }
}

#[test]
fn fallback_node() {
    if let Some(s) = server("node") {
        assert!(s.is_node());
        run(fallback_case(&s));
    }
}

/// The same client on async-std's and smol's executors.
#[test]
fn async_std_and_smol() {
    let s = server("ours").expect("our server");
    let url = s.url("/echo");
    async_std::task::block_on(async {
        let mut session = sockjs_async_std::connect(&url, ClientOptions::default())
            .await
            .expect("connect on async-std");
        assert_eq!(session.transport(), Transport::WebSocket);
        session.send("a").unwrap();
        assert_eq!(session.recv().await.as_deref(), Some("a"));
    });
    smol::block_on(async {
        let options = ClientOptions::default().transports([Transport::XhrStreaming]);
        let mut session = sockjs_async_std::connect_with_smol(&url, options)
            .await
            .expect("connect on smol");
        session.send("b").unwrap();
        assert_eq!(session.recv().await.as_deref(), Some("b"));
    });
}
