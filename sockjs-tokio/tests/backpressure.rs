//! Outbound backpressure over real loopback TCP: a producer sending ten times the session's
//! queue limit to a client that polls slowly (xhr polling: nothing leaves the session's
//! queue between polls) finishes with every message delivered in order when it waits for
//! room, through `send_wait` or the `Sink`, and overflows the queue when it does not.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_sink::Sink;
use sockjs_tokio::{CloseReason, Limits, Options, Server, Session, SessionError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// What the producer saw: its result, and the session's close reason when it was done.
type Outcome = (Result<usize, SessionError>, Option<CloseReason>);

const LIMIT: Duration = Duration::from_secs(20);
const MAX_QUEUED: usize = 4096;
/// Each message is 100 bytes: `m` and a five-digit number, then padding.
const MESSAGES: usize = 10 * MAX_QUEUED / 100;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Producer {
    SendWait,
    Sink,
    Send,
}

fn message(i: usize) -> String {
    format!("m{i:05}{}", "x".repeat(94))
}

/// Sends every message as `how` says; returns how many were taken.
async fn produce(how: Producer, session: &mut Session) -> Result<usize, SessionError> {
    for i in 0..MESSAGES {
        match how {
            Producer::SendWait => session.send_wait(message(i)).await?,
            Producer::Sink => {
                poll_fn(|cx| Pin::new(&mut *session).poll_ready(cx)).await?;
                Pin::new(&mut *session).start_send(message(i))?;
            }
            Producer::Send => session.send(message(i))?,
        }
    }
    Ok(MESSAGES)
}

/// The body of a bodiless POST to `path` on a fresh connection.
async fn request(addr: SocketAddr, path: &str) -> String {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        let head = format!("POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
        s.write_all(format!("{head}Content-Length: 0\r\n\r\n").as_bytes())
            .await?;
        let mut response = String::new();
        s.read_to_string(&mut response).await?;
        std::io::Result::Ok(response)
    };
    let response = timeout(LIMIT, exchange)
        .await
        .expect("in time")
        .expect("exchange");
    match response.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_string(),
        None => panic!("no body in {response:?}"),
    }
}

/// Runs a producer against a client polling every 20 ms; returns the messages the client
/// got, the close frame that ended the session, and the producer's result and close reason.
async fn run(
    how: Producer,
) -> (
    Vec<String>,
    String,
    Result<usize, SessionError>,
    Option<CloseReason>,
) {
    let mut limits = Limits::default();
    limits.max_queued_bytes = MAX_QUEUED;
    let outcome: Arc<Mutex<Option<Outcome>>> = Arc::default();
    let seen = outcome.clone();
    let builder =
        Server::builder()
            .limits(limits)
            .endpoint("/p", Options::default(), move |mut session| {
                let seen = seen.clone();
                async move {
                    let result = produce(how, &mut session).await;
                    *seen.lock().unwrap() = Some((result, session.close_reason()));
                    let _ = session.close(3000, "done");
                }
            });
    let server = builder.bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let handle = server.handle();
    let task = tokio::spawn(async move { server.run().await.expect("run") });
    assert_eq!(request(addr, "/p/0/s/xhr").await, "o\n");
    let mut got = Vec::new();
    let close = loop {
        assert!(got.len() <= MESSAGES, "more messages than sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let frame = request(addr, "/p/0/s/xhr").await;
        if let Some(batch) = frame
            .strip_prefix("a[\"")
            .and_then(|f| f.strip_suffix("\"]\n"))
        {
            got.extend(batch.split("\",\"").map(str::to_string));
        } else if frame.starts_with('c') {
            break frame;
        } else {
            panic!("unexpected frame {frame:?}");
        }
    };
    handle.shutdown();
    timeout(LIMIT, task)
        .await
        .expect("shut down")
        .expect("join");
    let (result, reason) = outcome
        .lock()
        .unwrap()
        .take()
        .expect("the producer finished");
    (got, close, result, reason)
}

fn assert_all_in_order(
    how: Producer,
    got: &[String],
    close: &str,
    result: Result<usize, SessionError>,
    reason: Option<CloseReason>,
) {
    assert_eq!(result, Ok(MESSAGES), "{how:?}");
    assert_eq!(reason, None, "{how:?}: still open when done");
    assert_eq!(close, "c[3000,\"done\"]\n", "{how:?}");
    assert_eq!(got.len(), MESSAGES, "{how:?}");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(*m, message(i), "{how:?}: message {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_wait_paces_a_producer_to_a_slow_client() {
    let (got, close, result, reason) = run(Producer::SendWait).await;
    assert_all_in_order(Producer::SendWait, &got, &close, result, reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_paces_a_producer_to_a_slow_client() {
    let (got, close, result, reason) = run(Producer::Sink).await;
    assert_all_in_order(Producer::Sink, &got, &close, result, reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_without_waiting_overflows_the_queue() {
    let (got, close, result, reason) = run(Producer::Send).await;
    assert_eq!(result, Err(SessionError::Closed));
    assert_eq!(reason, Some(CloseReason::QueueFull));
    assert_eq!(close, "c[1013,\"Send queue full\"]\n");
    assert!(got.len() < MESSAGES, "{}", got.len());
}
