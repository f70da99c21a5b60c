//! The tokio adapter over real loopback TCP: the session API (stream, send, close, request
//! info, handles, callbacks), WebSockets through a WebSocket client, graceful shutdown, and a
//! stalled client not holding up another.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_core::Stream;
use sockjs_tokio::{Callbacks, CloseReason, Options, Server, ServerHandle, Session, SessionHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

mod support;
use support::{LIMIT, body, echo, request, request_with};

async fn start(
    builder: sockjs_tokio::Builder,
) -> (SocketAddr, ServerHandle, tokio::task::JoinHandle<()>) {
    let server = builder.bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let handle = server.handle();
    let task = tokio::spawn(async move {
        server.run().await.expect("run");
    });
    (addr, handle, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xhr_polling_echo_through_the_session_stream() {
    let (addr, handle, task) =
        start(Server::builder().endpoint("/echo", Options::default(), echo)).await;
    let r = request(addr, "POST", "/echo/0/s1/xhr", "").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert_eq!(body(&r), "o\n");
    let r = request(addr, "POST", "/echo/0/s1/xhr_send", r#"["hello","wörld"]"#).await;
    assert!(r.starts_with("HTTP/1.1 204 No Content\r\n"), "{r}");
    // The echo may take a moment to come back through the application task.
    let r = request(addr, "POST", "/echo/0/s1/xhr", "").await;
    assert_eq!(body(&r), "a[\"hello\",\"wörld\"]\n");
    handle.shutdown();
    timeout(LIMIT, task)
        .await
        .expect("shut down in time")
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_close_and_request_info() {
    let seen: Arc<Mutex<Option<(String, String, String)>>> = Arc::default();
    let seen2 = seen.clone();
    let builder = Server::builder().endpoint("/echo", Options::default(), move |mut session| {
        let seen = seen2.clone();
        async move {
            let info = session.request();
            *seen.lock().unwrap() = Some((
                info.protocol.to_string(),
                info.path.clone(),
                info.header("x-test").unwrap_or_default().to_string(),
            ));
            while let Some(msg) = session.recv().await {
                if msg == "bye" {
                    session.close(3001, "bye \"now\"").unwrap();
                    break;
                }
                session.send(format!("echo:{msg}")).unwrap();
            }
        }
    });
    let (addr, handle, task) = start(builder).await;
    let url = format!("ws://{addr}/echo/000/abc/websocket");
    let stream = TcpStream::connect(addr).await.unwrap().into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    let result = tokio::task::spawn_blocking(move || {
        use tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("X-Test", "yes".parse().unwrap());
        let (mut ws, resp) = tungstenite::client(req, stream).expect("handshake");
        assert_eq!(resp.status(), 101);
        let mut got = Vec::new();
        got.push(ws.read().unwrap().into_text().unwrap().to_string());
        ws.send(tungstenite::Message::text(r#"["a","b"]"#)).unwrap();
        got.push(ws.read().unwrap().into_text().unwrap().to_string());
        got.push(ws.read().unwrap().into_text().unwrap().to_string());
        ws.send(tungstenite::Message::text(r#""bye""#)).unwrap();
        got.push(ws.read().unwrap().into_text().unwrap().to_string());
        let close = loop {
            match ws.read() {
                Ok(tungstenite::Message::Close(c)) => break c,
                Ok(_) => continue,
                Err(e) => panic!("no close frame: {e}"),
            }
        };
        (got, close.map(|c| u16::from(c.code)))
    })
    .await
    .unwrap();
    // Messages may arrive in one frame or two, depending on how fast the echo task runs.
    let frames = result.0;
    assert_eq!(frames[0], "o");
    let joined: Vec<&str> = frames[1..3].iter().map(String::as_str).collect();
    assert!(
        joined == ["a[\"echo:a\"]", "a[\"echo:b\"]"] || frames[1] == "a[\"echo:a\",\"echo:b\"]",
        "{frames:?}"
    );
    assert!(
        frames.contains(&"c[3001,\"bye \\\"now\\\"\"]".to_string()),
        "{frames:?}"
    );
    assert_eq!(result.1, Some(1000));
    assert_eq!(
        seen.lock().unwrap().clone(),
        Some((
            "websocket".into(),
            "/echo/000/abc/websocket".into(),
            "yes".into()
        ))
    );
    handle.shutdown();
    timeout(LIMIT, task).await.unwrap().unwrap();
}

#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<String>>,
}

struct Shared(Arc<Recorder>);

impl Callbacks for Shared {
    fn on_open(&self, session: &SessionHandle) {
        self.0
            .log
            .lock()
            .unwrap()
            .push(format!("open {}", session.request().protocol));
    }
    fn on_message(&self, session: &SessionHandle, message: String) {
        self.0
            .log
            .lock()
            .unwrap()
            .push(format!("message {message}"));
        session.send(message.to_uppercase()).unwrap();
    }
    fn on_close(&self, _session: &SessionHandle, reason: &CloseReason) {
        self.0.log.lock().unwrap().push(format!("close {reason}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_see_open_message_and_close() {
    let rec = Arc::new(Recorder::default());
    let opts = Options::default().disconnect_delay(Duration::from_millis(200));
    let (addr, handle, task) =
        start(Server::builder().endpoint_callbacks("/cb", opts, Shared(rec.clone()))).await;
    assert_eq!(body(&request(addr, "POST", "/cb/0/x/xhr", "").await), "o\n");
    request(addr, "POST", "/cb/0/x/xhr_send", r#"["hi"]"#).await;
    assert_eq!(
        body(&request(addr, "POST", "/cb/0/x/xhr", "").await),
        "a[\"HI\"]\n"
    );
    // No receiver comes back: the session times out after the disconnect delay.
    timeout(LIMIT, async {
        while !rec
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("close"))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("closed by the disconnect delay");
    assert_eq!(
        *rec.log.lock().unwrap(),
        vec![
            "open xhr-polling",
            "message hi",
            "close 1000 Session timed out"
        ]
    );
    handle.shutdown();
    timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_implements_stream() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let builder = Server::builder().endpoint("/s", Options::default(), move |mut session| {
        let tx = tx.clone();
        async move {
            let mut got = Vec::new();
            while got.len() < 2 {
                let next =
                    std::future::poll_fn(|cx| std::pin::Pin::new(&mut session).poll_next(cx));
                match next.await {
                    Some(m) => got.push(m),
                    None => break,
                }
            }
            tx.send(got).unwrap();
        }
    });
    let (addr, handle, task) = start(builder).await;
    request(addr, "POST", "/s/0/y/xhr", "").await;
    request(addr, "POST", "/s/0/y/xhr_send", r#"["1","2"]"#).await;
    let got = timeout(LIMIT, rx.recv()).await.unwrap().unwrap();
    assert_eq!(got, vec!["1", "2"]);
    handle.shutdown();
    timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_sessions_with_1001() {
    let (addr, handle, task) =
        start(Server::builder().endpoint("/echo", Options::default(), echo)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo/0/z/xhr_streaming HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("o\n") {
        let n = timeout(LIMIT, s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    handle.shutdown();
    timeout(LIMIT, s.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.ends_with("1f\r\nc[1001,\"Server shutting down\"]\n\r\n0\r\n\r\n"),
        "{text}"
    );
    timeout(LIMIT, task).await.unwrap().unwrap();
    // Nothing listens any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_does_not_hold_up_another() {
    let everyone: Arc<Mutex<Vec<SessionHandle>>> = Arc::default();
    let all = everyone.clone();
    let builder = Server::builder()
        .endpoint("/echo", Options::default(), echo)
        .endpoint("/flood", Options::default(), move |session| {
            all.lock().unwrap().push(session.handle());
            async move {
                session.closed().await;
            }
        });
    let (addr, handle, task) = start(builder).await;
    // A WebSocket client that never reads while the server floods it.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(
            b"GET /flood/0/f/websocket HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    timeout(LIMIT, async {
        while everyone.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let flood = everyone.lock().unwrap()[0].clone();
    let chunk = "x".repeat(64 * 1024);
    let mut sent = 0;
    while flood.send(&chunk).is_ok() && sent < 1000 {
        sent += 1;
    }
    // The queue filled and the session closed, instead of memory growing without bound.
    assert!(
        sent < 1000,
        "sent {sent} chunks without the queue limit closing the session"
    );
    assert_eq!(flood.closed().await, CloseReason::QueueFull);
    // Meanwhile another client is served normally.
    let r = request(addr, "POST", "/echo/0/other/xhr", "").await;
    assert_eq!(body(&r), "o\n");
    drop(stalled);
    handle.shutdown();
    timeout(LIMIT, task).await.unwrap().unwrap();
}

/// One request with extra header lines; the whole response.
#[derive(Debug, PartialEq)]
struct User(String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizer_decides_and_its_data_reaches_the_handler() {
    let builder = Server::builder()
        .endpoint("/chat", Options::default(), |session: Session| async move {
            let name = session.authorization::<User>().map(|u| u.0.clone());
            let _ = session.send(format!("hello {}", name.unwrap_or_default()));
        })
        .authorize("/chat", |request| async move {
            // An async decision: the hook may look things up before answering.
            tokio::task::yield_now().await;
            let user = request
                .header("cookie")
                .and_then(|c| c.strip_prefix("user="))
                .map(str::to_string);
            match user {
                Some(name) => sockjs_tokio::Decision::accept_with(User(name)),
                None => sockjs_tokio::Decision::refuse(401, "Who are you?"),
            }
        });
    let (addr, handle, task) = start(builder).await;
    let r = request_with(addr, "POST", "/chat/0/a/xhr", "", "").await;
    assert!(r.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{r}");
    assert_eq!(body(&r), "Who are you?");
    let r = request_with(addr, "POST", "/chat/0/b/xhr", "Cookie: user=ada\r\n", "").await;
    assert_eq!(body(&r), "o\n");
    let r = request_with(addr, "POST", "/chat/0/b/xhr", "", "").await;
    assert_eq!(
        body(&r),
        "a[\"hello ada\"]\n",
        "an open session is not asked again"
    );
    handle.shutdown();
    timeout(LIMIT, task)
        .await
        .expect("shut down in time")
        .expect("join");
}
