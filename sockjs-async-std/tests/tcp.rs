//! The adapter over real loopback TCP, each test run once under async-std and once under
//! smol: xhr polling through the session stream, a hand-framed WebSocket (request info,
//! close with code and reason), an application close seen over xhr, callbacks, a custom
//! spawner, graceful shutdown of a streaming response, and inbound backpressure.

use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt, future};
use sockjs_async_std::{
    Builder, Callbacks, CloseReason, Options, Server, ServerHandle, Session, SessionHandle,
};

const LIMIT: Duration = Duration::from_secs(10);

/// The executor a test runs on.
#[derive(Clone, Copy)]
enum Runtime {
    AsyncStd,
    Smol,
}

impl Runtime {
    fn builder(self) -> Builder {
        match self {
            Runtime::AsyncStd => Server::builder().spawn_with_async_std(),
            Runtime::Smol => Server::builder().spawn_with_smol(),
        }
    }

    fn block_on(self, test: impl Future<Output = ()>) {
        match self {
            Runtime::AsyncStd => async_std::task::block_on(test),
            Runtime::Smol => smol::block_on(test),
        }
    }

    fn spawn(self, task: impl Future<Output = ()> + Send + 'static) {
        match self {
            Runtime::AsyncStd => drop(async_std::task::spawn(task)),
            Runtime::Smol => smol::spawn(task).detach(),
        }
    }
}

/// Runs each named test once per runtime.
macro_rules! on_both_runtimes {
    ($($name:ident),* $(,)?) => {
        mod on_async_std {
            $(#[test]
            fn $name() {
                super::Runtime::AsyncStd.block_on(super::$name(super::Runtime::AsyncStd));
            })*
        }
        mod on_smol {
            $(#[test]
            fn $name() {
                super::Runtime::Smol.block_on(super::$name(super::Runtime::Smol));
            })*
        }
    };
}

on_both_runtimes!(
    xhr_polling_echo_through_the_session_stream,
    websocket_echo_request_info_and_close_with_code_and_reason,
    application_close_reaches_an_xhr_client,
    callbacks_see_open_message_and_close,
    every_task_goes_through_the_given_spawner,
    shutdown_closes_a_streaming_session_and_run_returns,
    a_backlogged_session_stops_its_connection_being_read,
);

/// `fut`, or a panic naming `what` once [`LIMIT`] has passed.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    let late = async {
        Timer::after(LIMIT).await;
        panic!("{what}: not done within {LIMIT:?}");
    };
    future::or(fut, late).await
}

/// A running server: its address, its handle, and a channel that closes when `run` returns.
struct Running {
    addr: SocketAddr,
    handle: ServerHandle,
    done: async_channel::Receiver<()>,
}

impl Running {
    async fn start(rt: Runtime, builder: Builder) -> Running {
        let server = builder.bind("127.0.0.1:0").await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let handle = server.handle();
        let (done_tx, done) = async_channel::bounded::<()>(1);
        rt.spawn(async move {
            server.run().await.expect("run");
            done_tx.close();
        });
        Running { addr, handle, done }
    }

    /// Shuts the server down and waits for `run` to return.
    async fn shutdown(self) {
        self.handle.shutdown();
        self.finished().await;
    }

    /// Waits for `run` to return.
    async fn finished(self) {
        let done = self.done.recv();
        within("run after shutdown", done)
            .await
            .expect_err("closed, not sent");
    }
}

async fn echo(mut session: Session) {
    while let Some(msg) = session.recv().await {
        if session.send(&msg).is_err() {
            break;
        }
    }
}

/// A client connection with its unread bytes.
struct Client {
    stream: Async<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = Async::<TcpStream>::connect(addr).await.expect("connect");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads more; false at end of stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = within("read", self.stream.read(&mut chunk))
            .await
            .expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(
                self.fill().await,
                "end of stream with {:?} of {n} bytes",
                self.buf
            );
        }
        self.buf.drain(..n).collect()
    }

    /// Everything up to and including the first `\r\n\r\n`, as text.
    async fn head(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = self.take(i + 4).await;
                return String::from_utf8(head).expect("utf-8 head");
            }
            assert!(self.fill().await, "end of stream in a head: {:?}", self.buf);
        }
    }

    /// Everything until the server closes, as text.
    async fn rest(&mut self) -> String {
        while self.fill().await {}
        String::from_utf8(std::mem::take(&mut self.buf)).expect("utf-8")
    }

    /// One unmasked server frame: (opcode, payload).
    async fn ws_frame(&mut self) -> (u8, Vec<u8>) {
        let h = self.take(2).await;
        assert_eq!(h[0] & 0x80, 0x80, "FIN");
        assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
        let len = match h[1] & 0x7f {
            126 => u16::from_be_bytes(self.take(2).await.try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(self.take(8).await.try_into().unwrap()) as usize,
            n => n as usize,
        };
        (h[0] & 0x0f, self.take(len).await)
    }

    /// Sends one masked client frame.
    async fn ws_send(&mut self, opcode: u8, payload: &[u8]) {
        assert!(payload.len() < 126);
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.write(&frame).await;
    }
}

/// One HTTP/1.1 request with `Connection: close`; the whole response.
async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut c = Client::connect(addr).await;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write(req.as_bytes()).await;
    c.rest().await
}

fn body(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("")
}

async fn xhr_polling_echo_through_the_session_stream(rt: Runtime) {
    // The handler reads through `Stream`, not `recv`.
    let builder = rt
        .builder()
        .endpoint("/echo", Options::default(), |mut session| async move {
            while let Some(msg) = session.next().await {
                session.send(format!("<{msg}>")).unwrap();
            }
        });
    let server = Running::start(rt, builder).await;
    let r = request(server.addr, "POST", "/echo/0/s1/xhr", "").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert_eq!(body(&r), "o\n");
    let r = request(
        server.addr,
        "POST",
        "/echo/0/s1/xhr_send",
        r#"["hello","wörld"]"#,
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 204 No Content\r\n"), "{r}");
    assert_eq!(body(&r), "");
    // A long poll: answered once the application has echoed both.
    let mut got = String::new();
    while !got.contains("wörld") {
        got += body(&request(server.addr, "POST", "/echo/0/s1/xhr", "").await);
    }
    assert!(
        got == "a[\"<hello>\",\"<wörld>\"]\n" || got == "a[\"<hello>\"]\na[\"<wörld>\"]\n",
        "{got:?}"
    );
    server.shutdown().await;
}

async fn websocket_echo_request_info_and_close_with_code_and_reason(rt: Runtime) {
    let (seen_tx, seen) = async_channel::unbounded::<(String, String, String, CloseReason)>();
    let builder = rt
        .builder()
        .endpoint("/echo", Options::default(), move |mut session| {
            let seen_tx = seen_tx.clone();
            async move {
                let info = session.request();
                let (protocol, path) = (info.protocol.to_string(), info.path.clone());
                let header = info.header("x-test").unwrap_or_default().to_string();
                while let Some(msg) = session.recv().await {
                    if msg == "bye" {
                        session.close(3001, "bye \"now\"").unwrap();
                        assert_eq!(
                            session.send("late"),
                            Err(sockjs_async_std::SessionError::Closed)
                        );
                    } else {
                        session.send(format!("echo:{msg}")).unwrap();
                    }
                }
                let reason = session.closed().await;
                seen_tx.try_send((protocol, path, header, reason)).unwrap();
            }
        });
    let server = Running::start(rt, builder).await;
    let mut c = Client::connect(server.addr).await;
    c.write(
        b"GET /echo/000/abc/websocket HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\nX-Test: yes\r\n\r\n",
    )
    .await;
    let head = c.head().await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    assert_eq!(c.ws_frame().await, (1, b"o".to_vec()));
    c.ws_send(1, br#"["a"]"#).await;
    assert_eq!(c.ws_frame().await, (1, br#"a["echo:a"]"#.to_vec()));
    c.ws_send(1, br#""bye""#).await;
    assert_eq!(
        c.ws_frame().await,
        (1, br#"c[3001,"bye \"now\""]"#.to_vec())
    );
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"Normal closure");
    assert_eq!(c.ws_frame().await, (8, close));
    c.ws_send(8, &1000u16.to_be_bytes()).await;
    assert_eq!(
        c.rest().await,
        "",
        "nothing after the close frame, then end of stream"
    );
    drop(c);
    let (protocol, path, header, reason) = within("handler", seen.recv()).await.unwrap();
    assert_eq!(
        (protocol.as_str(), path.as_str(), header.as_str()),
        ("websocket", "/echo/000/abc/websocket", "yes")
    );
    assert_eq!(
        reason,
        CloseReason::Application {
            code: 3001,
            reason: "bye \"now\"".into()
        }
    );
    server.shutdown().await;
}

async fn application_close_reaches_an_xhr_client(rt: Runtime) {
    let builder = rt
        .builder()
        .endpoint("/close", Options::default(), |session| async move {
            session.close(3000, "Go away!").unwrap();
        });
    let server = Running::start(rt, builder).await;
    assert_eq!(
        body(&request(server.addr, "POST", "/close/0/s/xhr", "").await),
        "o\n"
    );
    for _ in 0..2 {
        // Every later request on the id gets the same close frame.
        let r = request(server.addr, "POST", "/close/0/s/xhr", "").await;
        assert_eq!(body(&r), "c[3000,\"Go away!\"]\n");
    }
    server.shutdown().await;
}

/// Callbacks that log what they see.
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
}

impl Callbacks for Recorder {
    fn on_open(&self, session: &SessionHandle) {
        self.log
            .lock()
            .unwrap()
            .push(format!("open {}", session.request().protocol));
        session.send("welcome").unwrap();
    }
    fn on_message(&self, session: &SessionHandle, message: String) {
        self.log.lock().unwrap().push(format!("message {message}"));
        session.close(3002, "done").unwrap();
    }
    fn on_close(&self, _: &SessionHandle, reason: &CloseReason) {
        self.log.lock().unwrap().push(format!("close {reason:?}"));
    }
}

async fn callbacks_see_open_message_and_close(rt: Runtime) {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorder = Recorder { log: log.clone() };
    let builder = rt
        .builder()
        .endpoint_callbacks("/cb", Options::default(), recorder);
    let server = Running::start(rt, builder).await;
    assert_eq!(
        body(&request(server.addr, "POST", "/cb/0/s/xhr", "").await),
        "o\n"
    );
    assert_eq!(
        body(&request(server.addr, "POST", "/cb/0/s/xhr", "").await),
        "a[\"welcome\"]\n"
    );
    let r = request(server.addr, "POST", "/cb/0/s/xhr_send", r#"["hi"]"#).await;
    assert!(r.starts_with("HTTP/1.1 204 "), "{r}");
    assert_eq!(
        body(&request(server.addr, "POST", "/cb/0/s/xhr", "").await),
        "c[3002,\"done\"]\n"
    );
    within("on_close", async {
        while log.lock().unwrap().len() < 3 {
            Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        [
            "open xhr-polling",
            "message hi",
            "close Application { code: 3002, reason: \"done\" }"
        ]
    );
    server.shutdown().await;
}

async fn every_task_goes_through_the_given_spawner(rt: Runtime) {
    let spawned = Arc::new(AtomicUsize::new(0));
    let counter = spawned.clone();
    let builder = rt
        .builder()
        .endpoint("/echo", Options::default(), echo)
        .spawner(move |task| {
            counter.fetch_add(1, Ordering::SeqCst);
            rt.spawn(task);
        });
    let server = Running::start(rt, builder).await;
    assert_eq!(
        body(&request(server.addr, "POST", "/echo/0/s/xhr", "").await),
        "o\n"
    );
    // The timer; one task per connection; the session's handler (spawned once the
    // connection's task has released the core, possibly after the response went out).
    within("the handler's spawn", async {
        while spawned.load(Ordering::SeqCst) < 1 + 1 + 1 {
            Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await;
    server.shutdown().await;
    assert_eq!(spawned.load(Ordering::SeqCst), 1 + 1 + 1);
}

async fn shutdown_closes_a_streaming_session_and_run_returns(rt: Runtime) {
    let (closed_tx, closed) = async_channel::unbounded();
    let builder = rt
        .builder()
        .endpoint("/echo", Options::default(), move |session| {
            let closed_tx = closed_tx.clone();
            async move {
                closed_tx.try_send(session.closed().await).unwrap();
            }
        });
    let server = Running::start(rt, builder).await;
    let mut c = Client::connect(server.addr).await;
    c.write(b"POST /echo/0/s/xhr_streaming HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        .await;
    let head = c.head().await;
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    let prelude = format!("801\r\n{}\n\r\n2\r\no\n\r\n", "h".repeat(2048));
    assert_eq!(c.take(prelude.len()).await, prelude.as_bytes());
    let addr = server.addr;
    server.handle.shutdown();
    // The close frame, the end of the chunked body, and the end of the connection.
    let close = "c[1001,\"Server shutting down\"]\n";
    assert_eq!(
        c.rest().await,
        format!("{:x}\r\n{close}\r\n0\r\n\r\n", close.len())
    );
    drop(c);
    server.finished().await;
    assert_eq!(
        within("handler", closed.recv()).await.unwrap(),
        CloseReason::Shutdown
    );
    assert!(
        Async::<TcpStream>::connect(addr).await.is_err(),
        "no longer listening"
    );
}

async fn a_backlogged_session_stops_its_connection_being_read(rt: Runtime) {
    // The handler takes nothing until told to: the first message puts the session over its
    // inbound limit, so the WebSocket is not read past it, and the client's close frame
    // behind it is not seen until the handler catches up.
    let (go_tx, go) = async_channel::bounded::<()>(1);
    let (got_tx, got) = async_channel::unbounded::<Result<SessionHandle, String>>();
    let builder = rt.builder().max_inbound_bytes(4).endpoint(
        "/echo",
        Options::default(),
        move |mut session| {
            let (go, got_tx) = (go.clone(), got_tx.clone());
            async move {
                got_tx.try_send(Ok(session.handle())).unwrap();
                let _ = go.recv().await;
                while let Some(msg) = session.recv().await {
                    got_tx.try_send(Err(msg)).unwrap();
                }
            }
        },
    );
    let server = Running::start(rt, builder).await;
    let mut c = Client::connect(server.addr).await;
    c.write(
        b"GET /echo/websocket HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    c.head().await;
    let Ok(handle) = within("open", got.recv()).await.unwrap() else {
        panic!("no handle")
    };
    c.ws_send(1, b"first message").await;
    Timer::after(Duration::from_millis(250)).await;
    c.ws_send(1, b"second").await;
    c.ws_send(8, &1000u16.to_be_bytes()).await;
    Timer::after(Duration::from_millis(200)).await;
    assert_eq!(
        handle.close_reason(),
        None,
        "the close frame is not read while backlogged"
    );
    go_tx.try_send(()).unwrap();
    for expected in ["first message", "second"] {
        assert_eq!(
            within(expected, got.recv()).await.unwrap(),
            Err(expected.to_string())
        );
    }
    let reason = within("close", handle.closed()).await;
    assert_eq!(
        reason,
        CloseReason::ClientClosed {
            code: 1000,
            reason: String::new()
        }
    );
    drop(c);
    server.shutdown().await;
}
