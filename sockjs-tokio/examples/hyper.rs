//! SockJS in a plain hyper server (no framework): hyper-util's server for HTTP/1.1 and
//! HTTP/2 (extended CONNECT on, so WebSockets work over HTTP/2 too), `GET /` answered by the
//! application, `/echo` by SockJS.
//!
//! ```text
//! cargo run -p sockjs-tokio --features tower --example hyper
//! ```

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use sockjs_tokio::service::SockJsBody;
use sockjs_tokio::{Options, Server};
use tower_layer::Layer;
use tower_service::Service;

/// The application's own service: `hello world` for everything SockJS does not take.
#[derive(Clone)]
struct Hello;

impl Service<Request<Incoming>> for Hello {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Incoming>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(
            b"hello world",
        )))))
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let sockjs = Server::builder()
        .endpoint("/echo", Options::default(), |mut session| async move {
            while let Some(message) = session.recv().await {
                if session.send(&message).is_err() {
                    break;
                }
            }
        })
        .into_layer();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("listening on http://{}", listener.local_addr()?);
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http2().enable_connect_protocol();
    loop {
        let (stream, peer) = listener.accept().await?;
        let mut service = sockjs.layer(Hello);
        let http = http.clone();
        tokio::spawn(async move {
            // The SockJS service reads the client's address from this extension.
            let service = tower_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(peer);
                service.call(request)
            });
            let _ = http
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .await;
        });
    }
}

/// A closure as a tower service.
fn tower_fn<F, Fut>(f: F) -> TowerFn<F>
where
    F: FnMut(Request<Incoming>) -> Fut,
    Fut: Future<Output = Result<Response<SockJsBody<Full<Bytes>>>, Infallible>>,
{
    TowerFn(f)
}

#[derive(Clone)]
struct TowerFn<F>(F);

impl<F, Fut> Service<Request<Incoming>> for TowerFn<F>
where
    F: FnMut(Request<Incoming>) -> Fut,
    Fut: Future<Output = Result<Response<SockJsBody<Full<Bytes>>>, Infallible>>,
{
    type Response = Response<SockJsBody<Full<Bytes>>>;
    type Error = Infallible;
    type Future = Fut;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Fut {
        (self.0)(request)
    }
}
