//! hyper floor: the least a SockJS polling server can hold and do when it is served by
//! hyper, the floor that `sockjs-testserver --via axum` is compared with.
//!
//! `bench-hyper-floor [--host 127.0.0.1] [--port 18092] [--threads N]` serves hyper-util's
//! HTTP/1.1 + HTTP/2 connection (the same builder as the test server's `--via axum`) with a
//! service that answers what the bench's polling cases ask for and nothing more:
//! `POST .../xhr` answers `o\n` the first time a session id is seen, `a["x"]\n` when an
//! `xhr_send` came for that session since its last poll, and otherwise parks for good (a
//! parked poll); `POST .../xhr_send` answers `204`; anything else `404`. What a parked poll
//! costs here is hyper's connection (its buffers and its task), a pending future and one map
//! entry: a SockJS server on hyper cannot hold less. Prints `listening on ADDR` once bound
//! (`--port 0` picks a free port).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// Per session id: sends not yet answered by a poll.
type Sessions = Arc<Mutex<HashMap<Bytes, u32>>>;

/// Session ids and path suffixes are short; a longer target is refused.
const MAX_TARGET: usize = 512;
/// Request bodies past this are refused.
const MAX_BODY: usize = 64 * 1024;

fn main() -> ExitCode {
    sockjs_bench::cli::server_main("bench-hyper-floor", 18092, serve)
}

async fn serve(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let http = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let sessions: Sessions = Arc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, most likely: let some close.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let http = http.clone();
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let sessions = sessions.clone();
                async move { Ok::<_, Infallible>(answer(&sessions, request).await) }
            });
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// What the polling cases get; a parked poll never returns.
async fn answer(sessions: &Sessions, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    // Read (and drop) the body, as a server must for the connection to stay usable.
    if Limited::new(body, MAX_BODY).collect().await.is_err() {
        return status(StatusCode::BAD_REQUEST);
    }
    let path = parts.uri.path();
    let (session, transport) = match path.rsplit_once('/') {
        Some((rest, transport)) if path.len() <= MAX_TARGET => match rest.rsplit_once('/') {
            Some((_, session)) => (Bytes::copy_from_slice(session.as_bytes()), transport),
            None => return status(StatusCode::NOT_FOUND),
        },
        _ => return status(StatusCode::NOT_FOUND),
    };
    match transport {
        "xhr_send" => {
            if let Some(sends) = lock(sessions).get_mut(&session) {
                *sends = sends.saturating_add(1);
                return status(StatusCode::NO_CONTENT);
            }
            status(StatusCode::NOT_FOUND)
        }
        "xhr" => {
            let body: &'static [u8] = {
                let mut sessions = lock(sessions);
                match sessions.get_mut(&session) {
                    None => {
                        sessions.insert(session, 0);
                        b"o\n"
                    }
                    Some(0) => b"",
                    Some(sends) => {
                        *sends -= 1;
                        b"a[\"x\"]\n"
                    }
                }
            };
            if body.is_empty() {
                // A parked poll: what it holds is the request's future and hyper's connection.
                std::future::pending::<()>().await;
            }
            let mut response = Response::new(Full::new(Bytes::from_static(body)));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/javascript; charset=UTF-8"),
            );
            response
        }
        _ => status(StatusCode::NOT_FOUND),
    }
}

fn lock(sessions: &Sessions) -> std::sync::MutexGuard<'_, HashMap<Bytes, u32>> {
    sessions.lock().unwrap_or_else(|e| e.into_inner())
}

fn status(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
