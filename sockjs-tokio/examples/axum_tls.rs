//! SockJS in an axum app over TLS and HTTP/2: rustls (ring provider) with a self-signed
//! certificate for `localhost` made at start, ALPN `h2` and `http/1.1`, served by hyper-util
//! with HTTP/2's extended CONNECT (RFC 8441) on, so WebSockets can run over HTTP/2 too.
//!
//! ```text
//! cargo run -p sockjs-tokio --features tower --example axum_tls
//! curl -k --http2 https://localhost:8443/          # hello world
//! curl -k --http2 https://localhost:8443/echo/info
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sockjs_tokio::{Options, Server};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower_service::Service;

#[tokio::main]
async fn main() -> io::Result<()> {
    let sockjs = Server::builder()
        .endpoint(
            "/echo",
            Options::default().response_limit(4096),
            |mut session| async move {
                while let Some(message) = session.recv().await {
                    if session.send(&message).is_err() {
                        break;
                    }
                }
            },
        )
        .into_layer();
    // SockJS as a layer: it takes `/echo/...`, the rest goes to the app's routes.
    let app = Router::new()
        .route("/", get(|| async { "hello world" }))
        .layer(sockjs);
    let tls = tls_acceptor()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
    println!(
        "listening on https://localhost:{}",
        listener.local_addr()?.port()
    );
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http2().enable_connect_protocol();
    loop {
        let (stream, peer) = listener.accept().await?;
        let (app, http, tls) = (app.clone(), http.clone(), tls.clone());
        tokio::spawn(async move {
            let Ok(stream) = tls.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |mut request| {
                // The SockJS service reads the client's address from this extension.
                request.extensions_mut().insert::<SocketAddr>(peer);
                app.clone().call(request)
            });
            let _ = http
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, offering HTTP/2 and HTTP/1.1.
fn tls_acceptor() -> io::Result<TlsAcceptor> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(io::Error::other)?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
