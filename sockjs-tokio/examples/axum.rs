//! SockJS mounted in an axum app, beside the app's own routes, on one port:
//!
//! - `GET /`: hello world
//! - `/echo`: a SockJS echo endpoint (response_limit 4096)
//! - `GET /page`: a page that connects to `/echo` with sockjs-client and echoes what you type
//! - `GET /sockjs.min.js`: sockjs-client, read from the file `SOCKJS_CLIENT` names
//!   (for instance `e2e/node_modules/sockjs-client/dist/sockjs.min.js` after `npm ci` in e2e/)
//!
//! ```text
//! SOCKJS_CLIENT=e2e/node_modules/sockjs-client/dist/sockjs.min.js \
//!     cargo run -p sockjs-tokio --features tower --example axum
//! ```
//! then open <http://127.0.0.1:8080/page>.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use sockjs_tokio::{Options, Server};

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>SockJS echo</title>
<script src="/sockjs.min.js"></script>
<input id="text" placeholder="say something"> <button id="send">send</button>
<pre id="log"></pre>
<script>
  const log = (line) => { document.getElementById('log').textContent += line + '\n'; };
  const sock = new SockJS('/echo');
  sock.onopen = () => log('open (' + sock.transport + ')');
  sock.onmessage = (e) => log('echo: ' + e.data);
  sock.onclose = (e) => log('closed: ' + e.code + ' ' + e.reason);
  document.getElementById('send').onclick = () => {
    sock.send(document.getElementById('text').value);
  };
</script>
"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Under `nest_service("/echo", ...)` axum strips `/echo` from the path, so the endpoint
    // is configured at "" (the mount point is axum's).
    let echo = Server::builder()
        .endpoint(
            "",
            Options::default()
                .response_limit(4096)
                .sockjs_url("/sockjs.min.js"),
            |mut session| async move {
                while let Some(message) = session.recv().await {
                    if session.send(&message).is_err() {
                        break;
                    }
                }
            },
        )
        .into_service()
        // The client's address, as axum's `into_make_service_with_connect_info` records it.
        .peer_addr(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0));
    let app = Router::new()
        .route("/", get(|| async { "hello world" }))
        .route("/page", get(|| async { Html(PAGE) }))
        .route("/sockjs.min.js", get(sockjs_client))
        .nest_service("/echo", echo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// sockjs-client from the file `SOCKJS_CLIENT` names.
async fn sockjs_client() -> impl IntoResponse {
    let Some(path) = std::env::var_os("SOCKJS_CLIENT") else {
        return (
            StatusCode::NOT_FOUND,
            "set SOCKJS_CLIENT to the path of sockjs.min.js",
        )
            .into_response();
    };
    match std::fs::read(path) {
        Ok(js) => ([("content-type", "application/javascript")], js).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, format!("SOCKJS_CLIENT: {e}")).into_response(),
    }
}
