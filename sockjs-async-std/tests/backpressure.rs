//! `send_wait` on async-std and on smol: a producer of ten times the queue limit, a client
//! polling now and then over xhr, and every message arriving in order without the queue
//! overflowing.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use sockjs_async_std::{Builder, Limits, Options, Server};

const QUEUE: usize = 2048;
const COUNT: usize = 10 * QUEUE / 50;

fn numbered(i: usize) -> String {
    format!("{i:06}{}", "y".repeat(44))
}

async fn poll(addr: SocketAddr) -> String {
    let mut c = Async::<TcpStream>::connect(addr).await.expect("connect");
    c.write_all(
        b"POST /q/0/a/xhr HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .expect("write");
    let mut raw = String::new();
    let read = async {
        c.read_to_string(&mut raw).await.expect("read");
        true
    };
    let late = async {
        Timer::after(Duration::from_secs(20)).await;
        false
    };
    assert!(future::or(read, late).await, "a poll answered in time");
    raw.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

async fn paced(builder: Builder) {
    let mut limits = Limits::default();
    limits.max_queued_bytes = QUEUE;
    let server = builder
        .limits(limits)
        .endpoint("/q", Options::default(), |session| async move {
            for i in 0..COUNT {
                session.send_wait(numbered(i)).await.expect("never refused");
            }
            session.close(3001, "all sent").expect("still open");
        })
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    let handle = server.handle();
    let running = async { server.run().await.expect("run") };
    let client = async {
        assert_eq!(poll(addr).await, "o\n");
        let mut next = 0;
        for _ in 0..10 * COUNT {
            Timer::after(Duration::from_millis(10)).await;
            let body = poll(addr).await;
            if body.starts_with('c') {
                assert_eq!(body, "c[3001,\"all sent\"]\n");
                break;
            }
            let inner = body
                .strip_prefix("a[\"")
                .and_then(|b| b.strip_suffix("\"]\n"));
            for m in inner.expect("a message frame").split("\",\"") {
                assert_eq!(m, numbered(next));
                next += 1;
            }
        }
        assert_eq!(next, COUNT, "every message, in order");
        handle.shutdown();
    };
    future::zip(running, client).await;
}

#[test]
fn send_wait_paces_a_producer_on_async_std() {
    async_std::task::block_on(paced(Server::builder().spawn_with_async_std()));
}

#[test]
fn send_wait_paces_a_producer_on_smol() {
    smol::block_on(paced(Server::builder().spawn_with_smol()));
}
