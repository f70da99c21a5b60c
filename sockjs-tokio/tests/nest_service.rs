//! The tower service mounted the way most axum apps will mount it: `nest_service("/echo",
//! ...)` with the endpoint at `""` (axum strips the mount path), beside the app's own routes;
//! and its graceful shutdown while a poll is parked.

#![cfg(feature = "tower")]

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use sockjs_tokio::service::{NotFound, SockJsService};
use sockjs_tokio::{Options, Server};
use tokio::net::TcpListener;
use tokio::time::timeout;

mod support;
use support::{LIMIT, body, echo, header, request};

/// An axum app: `GET /` says hello world, SockJS echo under `/echo`.
async fn start() -> (SocketAddr, SockJsService<NotFound>) {
    let echo = Server::builder()
        .endpoint("", Options::default(), echo)
        .into_service();
    let app = Router::new()
        .route("/", get(|| async { "hello world" }))
        .nest_service("/echo", echo.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (addr, echo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_at_its_mount_path_beside_the_apps_routes() {
    let (addr, _service) = start().await;
    let r = request(addr, "GET", "/", "").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert_eq!(body(&r), "hello world");

    let r = request(addr, "GET", "/echo/info", "").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert_eq!(
        header(&r, "content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert!(body(&r).starts_with(r#"{"websocket":true,"#), "{r}");

    let r = request(addr, "POST", "/echo/000/nest1/xhr", "").await;
    assert_eq!(body(&r), "o\n", "{r}");
    let r = request(addr, "POST", "/echo/000/nest1/xhr_send", r#"["a","b"]"#).await;
    assert!(r.starts_with("HTTP/1.1 204 No Content\r\n"), "{r}");
    let r = request(addr, "POST", "/echo/000/nest1/xhr", "").await;
    assert_eq!(body(&r), "a[\"a\",\"b\"]\n", "{r}");

    // Outside SockJS's paths under the mount, and outside the mount: 404.
    let r = request(addr, "GET", "/echo/nope", "").await;
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
    let r = request(addr, "GET", "/elsewhere", "").await;
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_a_parked_poll_with_1001_and_refuses_new_requests() {
    let (addr, service) = start().await;
    let r = request(addr, "POST", "/echo/000/down1/xhr", "").await;
    assert_eq!(body(&r), "o\n", "{r}");
    // A poll parks on the open session; the shutdown answers it.
    let parked =
        tokio::spawn(async move { request(addr, "POST", "/echo/000/down1/xhr", "").await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !parked.is_finished(),
        "the poll parks while the session has nothing to say"
    );
    service.shutdown();
    let r = timeout(LIMIT, parked)
        .await
        .expect("answered in time")
        .expect("join");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert_eq!(body(&r), "c[1001,\"Server shutting down\"]\n");

    let r = request(addr, "GET", "/echo/info", "").await;
    assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
    // The app's own routes keep working.
    let r = request(addr, "GET", "/", "").await;
    assert_eq!(body(&r), "hello world");
}
