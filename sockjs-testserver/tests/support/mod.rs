//! A test-server process per test and a small byte-level HTTP / WebSocket client.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An RFC 6455 (version 13) handshake's headers, with the suite's sample key.
pub const WS_HEADERS: [(&str, &str); 4] = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// The `sockjs_url` the tests' iframe page expectations are computed for.
const SOCKJS_URL: &str = "http://localhost:8080/lib/sockjs.js";

/// A running `sockjs-testserver` (or the core's example host), killed when dropped.
pub struct TestServer {
    child: Child,
    pub addr: SocketAddr,
    /// Every line the server wrote to stderr after its first.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    /// The test server on `runtime`; `"event_loop"` is [`TestServer::start_example`],
    /// `"axum"` the tokio server through axum (`--via axum`).
    pub fn start(runtime: &str) -> TestServer {
        if runtime == "event_loop" {
            return TestServer::start_example();
        }
        TestServer::start_with(runtime, &[], &[])
    }

    /// The test server on `runtime` with more arguments and environment variables (and
    /// `RUST_LOG` unset unless `env` sets it).
    pub fn start_with(runtime: &str, args: &[&str], env: &[(&str, &str)]) -> TestServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sockjs-testserver"));
        command.args(["--host", "127.0.0.1", "--port", "0"]);
        match runtime {
            // Through an axum Router, by hyper.
            "axum" => command.args(["--via", "axum"]),
            _ => command.args(["--runtime", runtime]),
        };
        command
            .args(["--sockjs-url", SOCKJS_URL])
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied());
        TestServer::spawn(command)
    }

    /// The lines the server has written to stderr so far, after its first.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// sockjs-core's example host (`examples/event_loop.rs`: `/echo`, `/close`,
    /// `/disabled_websocket_echo`, `/cookie_needed_echo`), built on first use.
    pub fn start_example() -> TestServer {
        let mut command = Command::new(example_host());
        command.args(["127.0.0.1:0", SOCKJS_URL]);
        TestServer::spawn(command)
    }

    /// Runs `command`, which prints its address as the last word of its first stderr line.
    fn spawn(mut command: Command) -> TestServer {
        let mut child = command
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let line = lines.next().expect("a first line").expect("read stderr");
        let addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        // Keep draining stderr so the server never blocks on it.
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        TestServer { child, addr, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the process to exit, returning whether it exited in time.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// The example host binary beside the test server's, in the same target dir and profile,
/// built (once per test process, so it is never stale) with the cargo that runs the tests.
fn example_host() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = Path::new(env!("CARGO_BIN_EXE_sockjs-testserver"))
                .parent()
                .expect("the test server binary is in a profile directory");
            let target_dir = profile_dir.parent().expect("a target directory");
            let mut build = Command::new(option_env!("CARGO").unwrap_or("cargo"));
            build
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["build", "-p", "sockjs-core", "--example", "event_loop"])
                .arg("--target-dir")
                .arg(target_dir);
            match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") => {}
                Some("release") => {
                    build.arg("--release");
                }
                Some(other) => {
                    build.args(["--profile", other]);
                }
                None => panic!("no profile in {}", profile_dir.display()),
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "{build:?} failed");
            let name = format!("event_loop{}", std::env::consts::EXE_SUFFIX);
            profile_dir.join("examples").join(name)
        })
        .clone()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed response; `chunks` keeps chunk boundaries of a chunked body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunks: Vec<Vec<u8>>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes written to the server and read from it so far.
    pub sent: usize,
    pub received: usize,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::with_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// A connection from another loopback address (`127.0.0.2` and so on), as a second
    /// client machine.
    pub fn open_from(addr: SocketAddr, local: std::net::IpAddr) -> Conn {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
        socket
            .bind(&SocketAddr::new(local, 0).into())
            .expect("bind the client");
        socket.connect(&addr.into()).expect("connect");
        Conn::with_stream(socket.into())
    }

    fn with_stream(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
            sent: 0,
            received: 0,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
        self.sent += bytes.len();
    }

    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if method == "POST" || !body.is_empty() {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes);
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 16384];
        match self.stream.read(&mut tmp) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                self.received += n;
                true
            }
            Err(e) => panic!(
                "read failed: {e} (have {:?})",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    fn take_until(&mut self, pat: &[u8]) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.windows(pat.len()).position(|w| w == pat) {
                let rest = self.buf.split_off(i + pat.len());
                return std::mem::replace(&mut self.buf, rest);
            }
            assert!(
                self.fill(),
                "closed before {:?}: {:?}",
                pat,
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    pub fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill(), "closed before {n} bytes");
        }
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Reads a response head.
    pub fn head(&mut self) -> Response {
        let head = String::from_utf8(self.take_until(b"\r\n\r\n")).expect("ascii head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            .collect();
        Response {
            status,
            head,
            headers,
            body: Vec::new(),
            chunks: Vec::new(),
        }
    }

    /// Reads one chunk of a chunked body; empty at the end.
    pub fn chunk(&mut self) -> Vec<u8> {
        let line = self.take_until(b"\r\n");
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16).expect("chunk size");
        let data = self.take(size);
        assert_eq!(self.take(2), b"\r\n");
        data
    }

    /// Reads a whole response, by its framing.
    pub fn response(&mut self) -> Response {
        let mut r = self.head();
        if r.status == 101 || r.status == 204 || r.status == 304 {
            return r;
        }
        if r.header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let c = self.chunk();
                if c.is_empty() {
                    break;
                }
                r.body.extend_from_slice(&c);
                r.chunks.push(c);
            }
        } else if let Some(n) = r.header("content-length") {
            r.body = self.take(n.parse().expect("length"));
        } else {
            r.body = self.read_to_end();
        }
        r
    }

    pub fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }

    /// True if the server closed the connection (nothing more to read).
    pub fn is_closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill()
    }

    /// Upgrades to an RFC 6455 WebSocket at `path`.
    pub fn websocket(addr: SocketAddr, path: &str) -> Conn {
        let mut c = Conn::open(addr);
        c.request("GET", path, &WS_HEADERS, b"");
        let r = c.head();
        assert_eq!(r.status, 101, "{}", r.head);
        assert_eq!(
            r.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        c
    }

    /// Sends a masked client frame.
    pub fn ws_send(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut f = vec![0x80 | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.send(&f);
    }

    pub fn ws_text(&mut self, text: &str) {
        self.ws_send(1, text.as_bytes());
    }

    /// Reads one server frame: (opcode, payload).
    pub fn ws_read(&mut self) -> (u8, Vec<u8>) {
        let h = self.take(2);
        assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
        let len = match h[1] & 0x7f {
            126 => u16::from_be_bytes(self.take(2).try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(self.take(8).try_into().unwrap()) as usize,
            n => n as usize,
        };
        (h[0] & 0x0f, self.take(len))
    }

    /// Reads the next text frame, answering nothing else.
    pub fn ws_read_text(&mut self) -> String {
        loop {
            let (op, payload) = self.ws_read();
            match op {
                1 => return String::from_utf8(payload).expect("utf-8"),
                9 | 10 => continue,
                other => panic!("expected text, got opcode {other} {payload:?}"),
            }
        }
    }
}

/// One request on a fresh connection, read whole.
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut c = Conn::open(addr);
    c.request(method, path, headers, body);
    c.response()
}

/// A fresh random-enough session id.
pub fn sid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("s{t:x}{}", N.fetch_add(1, Ordering::Relaxed))
}
