//! What the tokio adapter's tests share: an echo handler and a one-request HTTP/1.1 client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use sockjs_tokio::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long any one step of a test may take.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// Sends every message back.
pub(crate) async fn echo(mut session: Session) {
    while let Some(msg) = session.recv().await {
        if session.send(&msg).is_err() {
            break;
        }
    }
}

/// One HTTP/1.1 request on a fresh connection; returns the whole response (the server closes
/// because of `Connection: close`).
pub(crate) async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    request_with(addr, method, path, "", body).await
}

/// [`request`] with more header lines (each ending in `\r\n`).
pub(crate) async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    timeout(LIMIT, s.read_to_end(&mut out))
        .await
        .expect("response in time")
        .expect("read");
    String::from_utf8(out).expect("utf-8")
}

/// A response's body (after the head).
pub(crate) fn body(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("")
}

/// A response's header `name` (case-insensitive), if any.
pub(crate) fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split_once("\r\n\r\n").map_or(response, |(h, _)| h);
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
