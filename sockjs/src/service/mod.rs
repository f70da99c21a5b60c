//! SockJS as a tower [`Service`](tower_service::Service) for hyper 1 and axum: the
//! configured SockJS prefixes are served, every other request goes to an inner service.
//!
//! ```no_run
//! # fn app(runtime: std::sync::Arc<dyn sockjs::Runtime>) {
//! use sockjs::{Builder, Options};
//!
//! // Mounted by its own full prefixes: SockJS takes `/echo/...`, the rest goes on.
//! let layer = Builder::<()>::new(runtime)
//!     .endpoint("/echo", Options::default(), |mut session| async move {
//!         while let Some(message) = session.recv().await {
//!             if session.send(&message).is_err() {
//!                 break;
//!             }
//!         }
//!     })
//!     .into_layer();
//! // axum: Router::new().route("/", get(hello)).layer(layer)
//! # let _ = layer;
//! # }
//! ```
//!
//! Under a router that strips its mount path (axum's `nest_service("/echo", service)`),
//! configure the endpoint at `""`: the service then sees `/info`, `/000/abc/xhr` and so on.
//!
//! Request bodies are read up to [`Limits::max_body_size`](crate::Limits) and handed to the
//! core with the head; the response body takes the core's output chunk by chunk as hyper
//! asks for it (so a client that stops reading stops the core's output moving, and the
//! core's limits hold), and ends when the core says. Dropping it (the client went away) tells
//! the core. A WebSocket handshake the core accepts is answered `101` (or `200` for an
//! HTTP/2 extended CONNECT, RFC 8441) and the upgraded stream is then driven like a native
//! connection. Sessions reach the handlers as with the built-in listener; the request's
//! extensions are in [`Session::extensions`](crate::Session::extensions).
//!
//! hixie-76 works over hyper's HTTP/1: hyper keeps the 8 key bytes that follow the head in
//! the upgraded stream, where the connection task reads them, and writes no body on a `101`,
//! so the core's 16-byte answer is the first thing written after the head (hyper writes the
//! `101 WebSocket Protocol Handshake` reason phrase the core asks for). The conformance
//! tests check it through axum. Over HTTP/2 only RFC 6455 (extended CONNECT) exists.
//!
//! Over HTTP/2 and TLS every transport works; Chromium opens its WebSockets by extended
//! CONNECT when the server's HTTP/2 settings allow it (hyper-util:
//! `http2().enable_connect_protocol()`), which the e2e run over TLS confirms.

mod upgraded;

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use sockjs_core::http::{Header, Method, Version};
use sockjs_core::{RequestExtras, ResponseBody};

use crate::driver::Driver;
use crate::output::Conn;
use crate::server::Builder;

/// Errors of the bodies this service produces.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the service finds the client's address in a request's extensions (hyper does not
/// record it): by default a [`SocketAddr`] extension, else `0.0.0.0:0`.
pub type PeerAddr = fn(&http::Extensions) -> Option<SocketAddr>;

/// What the services of one server share; the last one dropped stops its timer task.
struct Shared {
    driver: Arc<Driver>,
    prefixes: Vec<String>,
    max_body_size: usize,
    peer_addr: PeerAddr,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.driver.stop();
    }
}

impl<B> Builder<B> {
    /// The server as a tower service answering `404` outside its prefixes (for hyper alone,
    /// or axum's `nest_service` / `fallback_service`). Its timer task starts on the
    /// builder's runtime now and stops when the last clone is dropped.
    pub fn into_service(self) -> SockJsService<NotFound> {
        tower_layer::Layer::layer(&self.into_layer(), NotFound)
    }

    /// The server as a tower layer: requests under its prefixes are served, every other one
    /// goes to the service it wraps.
    pub fn into_layer(self) -> SockJsLayer {
        let (driver, prefixes, limits) = self.into_driver();
        let max_body_size = limits.max_body_size;
        let driver = Arc::new(driver);
        driver.runtime.spawn(Box::pin(driver.clone().run_timer()));
        SockJsLayer {
            shared: Arc::new(Shared {
                driver,
                prefixes,
                max_body_size,
                peer_addr: |ext| ext.get::<SocketAddr>().copied(),
            }),
        }
    }
}

/// Serves SockJS under its prefixes in front of any service (see [`Builder::into_layer`]);
/// cheap to clone.
#[derive(Clone)]
pub struct SockJsLayer {
    shared: Arc<Shared>,
}

/// `shared` with another [`PeerAddr`].
fn with_peer_addr(shared: &mut Arc<Shared>, peer_addr: PeerAddr) {
    match Arc::get_mut(shared) {
        Some(shared) => shared.peer_addr = peer_addr,
        None => {
            let old = &*shared;
            *shared = Arc::new(Shared {
                driver: old.driver.clone(),
                prefixes: old.prefixes.clone(),
                max_body_size: old.max_body_size,
                peer_addr,
            });
        }
    }
}

impl SockJsLayer {
    /// Finds the client's address with `peer_addr` (for instance in axum's `ConnectInfo`:
    /// `|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)`).
    pub fn peer_addr(mut self, peer_addr: PeerAddr) -> Self {
        with_peer_addr(&mut self.shared, peer_addr);
        self
    }

    /// Starts a graceful shutdown: every session is closed with `c[1001,"Server shutting
    /// down"]`, and new requests under the prefixes are answered `503`.
    pub fn shutdown(&self) {
        self.shared.driver.shutdown();
    }
}

impl<S> tower_layer::Layer<S> for SockJsLayer {
    type Service = SockJsService<S>;

    fn layer(&self, inner: S) -> SockJsService<S> {
        SockJsService {
            shared: self.shared.clone(),
            inner,
        }
    }
}

/// The service answering `404` to everything: what [`Builder::into_service`] wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> tower_service::Service<Request<B>> for NotFound {
    type Response = Response<SockJsBody<http_body_util::Empty<Bytes>>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut response = Response::new(SockJsBody::full(Bytes::from_static(b"Not Found")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(response))
    }
}

/// SockJS under its prefixes, `S` for the rest; cheap to clone.
#[derive(Clone)]
pub struct SockJsService<S> {
    shared: Arc<Shared>,
    inner: S,
}

impl<S> SockJsService<S> {
    /// See [`SockJsLayer::peer_addr`].
    pub fn peer_addr(mut self, peer_addr: PeerAddr) -> Self {
        with_peer_addr(&mut self.shared, peer_addr);
        self
    }

    /// See [`SockJsLayer::shutdown`].
    pub fn shutdown(&self) {
        self.shared.driver.shutdown();
    }
}

impl<S, B, RB> tower_service::Service<Request<B>> for SockJsService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    RB: Body<Data = Bytes>,
    RB::Error: Into<BoxError>,
{
    type Response = Response<SockJsBody<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !owns(&self.shared.prefixes, request.uri().path()) {
            let inner = self.inner.call(request);
            return Box::pin(async move {
                Ok(inner.await?.map(|body| SockJsBody {
                    kind: Kind::Inner(body),
                }))
            });
        }
        let shared = self.shared.clone();
        Box::pin(async move { Ok(serve(shared, request).await) })
    }
}

/// Whether a request for `path` is SockJS's: it is under a prefix (the core routes it,
/// answering `404` itself to what it does not serve there, as the built-in path does).
fn owns(prefixes: &[String], path: &str) -> bool {
    prefixes.iter().any(|prefix| {
        path.strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Serves one request under a SockJS prefix.
async fn serve<B, RB>(shared: Arc<Shared>, mut request: Request<B>) -> Response<SockJsBody<RB>>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
{
    let connect_protocol = request
        .extensions()
        .get::<hyper::ext::Protocol>()
        .map(|p| Bytes::copy_from_slice(p.as_str().as_bytes()));
    let upgrade = (request.headers().contains_key(http::header::UPGRADE)
        || connect_protocol.is_some())
    .then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let Ok((body, body_too_large)) = read_body(body, shared.max_body_size).await else {
        return status_only(StatusCode::BAD_REQUEST);
    };
    let peer = (shared.peer_addr)(&parts.extensions)
        .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    // The rest of the request (its head's buffers) is dropped here, before any wait.
    let (core_request, extensions) = core_request(parts, body);
    let extras = RequestExtras {
        body_too_large,
        connect_protocol,
    };
    let driver = shared.driver.clone();
    let (conn, answer) = driver.exchange(peer, core_request, extras, extensions);
    let exchange = Exchange {
        conn,
        driver,
        taken: false,
    };
    // Nothing of the request is kept while the response waits (a parked poll), but for what
    // its session holds.
    drop(shared);
    let (head, body) = match answer {
        Some(answer) => (answer.head, answer.body),
        None => match poll_fn(|cx| exchange.driver.poll_response(&exchange.conn, cx)).await {
            Some(head) => (head, None),
            None => return status_only(StatusCode::INTERNAL_SERVER_ERROR),
        },
    };
    let kind = match body {
        // The core has handed all of it over: the exchange is done.
        Some(body) if !body.is_empty() => Kind::Full(Some(body)),
        Some(_) => Kind::Full(None),
        None => Kind::Empty,
    };
    let mut response = Response::new(SockJsBody { kind });
    *response.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::OK);
    if let Some(reason) = head.reason
        && let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason.as_bytes())
    {
        // hixie-76's `101 WebSocket Protocol Handshake` (hyper's HTTP/1 writes it).
        response.extensions_mut().insert(reason);
    }
    let headers = response.headers_mut();
    headers.reserve(head.headers.len());
    for (name, value) in head.headers {
        if let (Some(name), Ok(value)) = (header_name(name), HeaderValue::from_maybe_shared(value))
        {
            headers.append(name, value);
        }
    }
    if head.upgrade {
        match upgrade {
            Some(on_upgrade) => {
                let runtime = exchange.driver.runtime.clone();
                runtime.spawn(Box::pin(async move {
                    let Ok(upgraded) = on_upgrade.await else {
                        // Dropping the exchange tells the core.
                        return;
                    };
                    let socket = Box::new(upgraded::PollSocket::new(upgraded, true));
                    let mut exchange = exchange;
                    exchange.taken = true;
                    let Some(conn) = exchange.driver.attach(&exchange.conn, socket) else {
                        return;
                    };
                    crate::connection::run(exchange.driver.clone(), conn.clone()).await;
                    // Bytes a TLS layer still holds go out before the stream is dropped
                    // (bounded by the stream itself: a peer that does not read fails it).
                    if let Some(socket) = conn.socket.as_deref() {
                        if socket.holds_output() {
                            let _ = poll_fn(|cx| socket.poll_write_ready(cx)).await;
                        }
                        let _ = socket.shutdown_write();
                    }
                }));
            }
            None => return status_only(StatusCode::INTERNAL_SERVER_ERROR),
        }
        return response;
    }
    if matches!(response.body().kind, Kind::Full(_)) {
        return response;
    }
    let hint = match head.body {
        ResponseBody::Empty => {
            // The core is done with it (or is about to be): the exchange drops quietly.
            return response;
        }
        ResponseBody::Length(n) => Some(n as u64),
        ResponseBody::Stream => None,
    };
    response.body_mut().kind = Kind::Exchange { exchange, hint };
    response
}

/// The core's form of a request, and the request's extensions; the rest is dropped.
fn core_request(
    parts: http::request::Parts,
    body: Bytes,
) -> (sockjs_core::http::Request, http::Extensions) {
    // The target and the headers copied into one buffer, then cut into the core's pieces.
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut copy = BytesMut::with_capacity(
        target.len()
            + parts
                .headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len())
                .sum::<usize>(),
    );
    copy.extend_from_slice(target.as_bytes());
    for (name, value) in &parts.headers {
        copy.extend_from_slice(name.as_str().as_bytes());
        copy.extend_from_slice(value.as_bytes());
    }
    let mut copy = copy.freeze();
    let target = copy.split_to(target.len());
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| Header {
            name: copy.split_to(name.as_str().len()),
            value: copy.split_to(value.len()),
        })
        .collect();
    let request = sockjs_core::http::Request {
        method: Method::from_bytes(parts.method.as_str().as_bytes()),
        target,
        version: if parts.version == http::Version::HTTP_10 {
            Version::Http10
        } else {
            Version::Http11
        },
        headers,
        body,
        keep_alive: true,
    };
    (request, parts.extensions)
}

/// The `http` form of a header name the core writes (a table for the ones every response
/// has, parsing for the rest).
fn header_name(name: &'static str) -> Option<HeaderName> {
    use http::header;
    Some(match name {
        "Content-Type" => header::CONTENT_TYPE,
        "Cache-Control" => header::CACHE_CONTROL,
        "Access-Control-Allow-Origin" => header::ACCESS_CONTROL_ALLOW_ORIGIN,
        "Access-Control-Allow-Credentials" => header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        "Vary" => header::VARY,
        "Set-Cookie" => header::SET_COOKIE,
        "Expires" => header::EXPIRES,
        _ => return HeaderName::from_bytes(name.as_bytes()).ok(),
    })
}

/// A response with no body.
fn status_only<RB>(status: StatusCode) -> Response<SockJsBody<RB>> {
    let mut response = Response::new(SockJsBody { kind: Kind::Empty });
    *response.status_mut() = status;
    response
}

/// Reads a request body up to `limit` bytes; past that, stops reading and says so.
async fn read_body<B>(mut body: B, limit: usize) -> Result<(Bytes, bool), ()>
where
    B: Body + Unpin,
{
    if body.is_end_stream() {
        return Ok((Bytes::new(), false));
    }
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut len = 0;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(frame) = frame else { return Err(()) };
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        use bytes::Buf;
        let n = data.remaining();
        if len + n > limit {
            return Ok((Bytes::new(), true));
        }
        len += n;
        let chunk = data.copy_to_bytes(n);
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            Some(f) => {
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&chunk);
            }
            None => buf.extend_from_slice(&chunk),
        }
    }
    Ok((first.unwrap_or_else(|| buf.freeze()), false))
}

/// An exchange in flight: dropped before the core is done with it, the client went away.
struct Exchange {
    driver: Arc<Driver>,
    conn: Arc<Conn>,
    /// Attached to its upgraded stream, whose task now owns it.
    taken: bool,
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if !self.taken {
            self.driver.exchange_dropped(&self.conn);
        }
    }
}

/// The response body of [`SockJsService`]: SockJS's (taken from the core as the client
/// reads it), or the inner service's.
pub struct SockJsBody<B> {
    kind: Kind<B>,
}

enum Kind<B> {
    Empty,
    Full(Option<Bytes>),
    Exchange {
        exchange: Exchange,
        hint: Option<u64>,
    },
    Inner(B),
}

impl<B> SockJsBody<B> {
    fn full(bytes: Bytes) -> Self {
        SockJsBody {
            kind: Kind::Full(Some(bytes)),
        }
    }
}

/// The core cut the response body short.
#[derive(Debug)]
struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the SockJS response was aborted")
    }
}

impl std::error::Error for Aborted {}

impl<B> Body for SockJsBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Exchange { exchange, .. } => {
                match exchange.driver.poll_body(&exchange.conn, cx) {
                    Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                    Poll::Ready(Some(Err(()))) => Poll::Ready(Some(Err(Box::new(Aborted)))),
                    Poll::Ready(None) => {
                        this.kind = Kind::Empty;
                        Poll::Ready(None)
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            Kind::Inner(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Exchange { .. } => false,
            Kind::Inner(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Exchange { hint, .. } => {
                hint.map_or_else(SizeHint::default, SizeHint::with_exact)
            }
            Kind::Inner(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_name_table_agrees_with_parsing() {
        for name in [
            "Content-Type",
            "Cache-Control",
            "Access-Control-Allow-Origin",
            "Access-Control-Allow-Credentials",
            "Vary",
            "Set-Cookie",
            "Expires",
            "Sec-WebSocket-Accept",
            "ETag",
        ] {
            assert_eq!(
                header_name(name),
                HeaderName::from_bytes(name.as_bytes()).ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn owns_what_the_core_routes() {
        let prefixes = ["/echo".to_string(), "/echo/deep".to_string(), String::new()];
        for set in [&prefixes[..1], &prefixes[..2], &prefixes[2..]] {
            for path in [
                "/",
                "",
                "/echo",
                "/echo/",
                "/echo/info",
                "/echoes",
                "/echo/deep/info",
                "/echo/0/1/xhr",
                "/other",
                "/echo/deep",
            ] {
                assert_eq!(
                    owns(set, path),
                    sockjs_core::route::route(set, path.as_bytes()).is_some(),
                    "{set:?} {path}"
                );
            }
        }
    }
}
