//! `--via axum`: every endpoint served through an axum `Router` (as a layer in front of the
//! application's own routes, which here answer `GET /` with `hello world`), by hyper's HTTP/1
//! and HTTP/2 server; with `--tls`, over rustls with a self-signed certificate made at start
//! (ALPN `h2` and `http/1.1`; HTTP/2 has RFC 8441's extended CONNECT enabled).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_signal::Signals;
use axum::Router;
use axum::routing::get;
use futures_lite::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower_service::Service;

use crate::Args;
use crate::endpoints::{SHUTDOWN_SIGNALS, endpoints};

/// Serves until a shutdown signal (tokio only).
pub(crate) async fn serve(args: &Args) -> io::Result<()> {
    let layer = endpoints(args, sockjs_tokio::Server::builder()).into_layer();
    let app: Router = Router::new()
        .route("/", get(|| async { "hello world" }))
        .layer(layer.clone());
    let tls = if args.tls {
        Some(tls_acceptor()?)
    } else {
        None
    };
    let listener = TcpListener::bind((args.host.as_str(), args.port)).await?;
    eprintln!(
        "sockjs-testserver (tokio, via axum{}) listening on {}",
        if tls.is_some() { ", tls" } else { "" },
        listener.local_addr()?
    );
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http2().enable_connect_protocol();
    let http = Arc::new(http);
    let mut signals = Signals::new(SHUTDOWN_SIGNALS)?;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = signals.next() => break,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let http = http.clone();
        let tls = tls.clone();
        // The peer's address, where the SockJS service looks for it.
        let log = tls.is_some();
        let service =
            tower::ServiceFn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                if log && request.method() == hyper::Method::CONNECT {
                    // What the TLS e2e run reports: WebSockets over HTTP/2 (RFC 8441).
                    eprintln!("extended CONNECT {} from {peer}", request.uri().path());
                }
                request.extensions_mut().insert(peer);
                app.clone().call(request)
            });
        let service = TowerToHyperService::new(service);
        // One task type per case: a plain connection's task does not carry the size of a
        // TLS stream's state.
        match tls {
            None => {
                tokio::spawn(async move {
                    let _ = http
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let alpn = stream
                        .get_ref()
                        .1
                        .alpn_protocol()
                        .map(String::from_utf8_lossy);
                    eprintln!(
                        "tls connection from {peer}: alpn {}",
                        alpn.as_deref().unwrap_or("none")
                    );
                    let _ = http
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
    // Sessions are closed with `c[1001,"Server shutting down"]`; their last bytes go out
    // before the process ends.
    layer.shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// A TLS acceptor with a self-signed certificate for `localhost` and `127.0.0.1`, offering
/// HTTP/2 and HTTP/1.1.
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

/// A `tower::service_fn` without the tower crate: a closure as a service.
mod tower {
    use std::convert::Infallible;
    use std::future::Future;
    use std::task::{Context, Poll};

    #[derive(Clone)]
    pub(crate) struct ServiceFn<F>(pub(crate) F);

    impl<F, R, Fut, T> tower_service::Service<R> for ServiceFn<F>
    where
        F: FnMut(R) -> Fut,
        Fut: Future<Output = Result<T, Infallible>>,
    {
        type Response = T;
        type Error = Infallible;
        type Future = Fut;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: R) -> Fut {
            (self.0)(request)
        }
    }
}
