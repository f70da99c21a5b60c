//! The request-level entry: a host with its own HTTP stack hands over a parsed request (an
//! *exchange*) and gets back a structured response head, its body as the connection's
//! output, and its end as [`crate::Io::Close`]. The request goes through the same dispatch as one
//! the core decodes itself; only the framing differs (see [`super::respond`]).

use std::net::SocketAddr;
use std::time::Instant;

use super::Server;
use super::connection::{ConnState, Connection, Framing};
use crate::http::request::{MAX_HEADERS_CAP, origin_form};
use crate::http::{HttpError, Method, Request};
use crate::io::{ConnectionId, RequestExtras, Response};

impl Server {
    /// Serves a request a host's own HTTP stack parsed (HTTP/1.x, HTTP/2 or later): an
    /// *exchange*, a connection of the core's that carries exactly this one request and its
    /// response. Returns its id, which every other call takes as a connection's.
    ///
    /// `request` is the request as the built-in HTTP/1 path would have decoded it: the
    /// method, the target (path and query, as sent: for an application mounted under a
    /// path, the full original path, since the endpoints' prefixes include the mount
    /// path), the headers in order, and the whole body (at most
    /// [`Limits::max_body_size`](crate::Limits::max_body_size) bytes; say in
    /// [`RequestExtras::body_too_large`] that there was more). Pass HTTP/2 and later as
    /// [`Version::Http11`](crate::http::Version::Http11); `keep_alive` is ignored (persistence
    /// is the host's). `extras` carries what HTTP/1 has no place for: the extended CONNECT
    /// of RFC 8441.
    ///
    /// The answer comes as it does on a connection from [`Server::accept`], through
    /// [`Server::poll_io`]: [`crate::Io::Respond`] once the head is ready (then
    /// [`Server::take_response`]), [`crate::Io::Write`] for body bytes in [`Server::output`]
    /// (reported with [`Server::handle_written`] as the host's HTTP stack takes them), and
    /// [`crate::Io::Close`] when the body is complete (`aborted: false`) or must be reset
    /// (`aborted: true`). [`Server::handle_closed`] says the client went away. A response
    /// with [`Response::upgrade`] turns the exchange into the upgraded stream's connection:
    /// see [`Server`]'s run-loop contract.
    ///
    /// The status, the headers (but for framing, persistence and `Date`, which are the
    /// host's) and the body bytes are exactly what the built-in path writes for the same
    /// request, including the refusals its decoder makes that a host's parser might not:
    /// `431` past [`Limits::max_headers`](crate::Limits::max_headers), `400` for a target
    /// that is neither origin-form nor absolute-form, `413` for a body too large, and `503`
    /// when shutting down or at [`Limits::max_connections`](crate::Limits::max_connections).
    pub fn handle_request(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        mut request: Request,
        extras: RequestExtras,
    ) -> ConnectionId {
        self.tick(now);
        let mut conn = Connection::new(peer, &self.limits, now);
        conn.framing = Framing::Exchange;
        let (id, admitted) = self.admit(now, conn, false);
        if admitted {
            match self.decoder_refusal(&mut request, &extras) {
                Some(e) => self.respond_error_and_close(id, e.status, e.reason),
                None => {
                    // One request per exchange: its response ends it.
                    request.keep_alive = false;
                    let connect = matches!(&request.method, Method::Other(m) if &m[..] == b"CONNECT")
                        && extras
                            .connect_protocol
                            .as_deref()
                            .is_some_and(|p| p.eq_ignore_ascii_case(b"websocket"));
                    self.dispatch_with(now, id, request, connect);
                }
            }
            self.schedule_connection(id);
        }
        self.finish_call(now);
        id
    }

    /// What the built-in path's decoder refuses in `request` before it is served; makes the
    /// target origin-form as the decoder does.
    fn decoder_refusal(&self, request: &mut Request, extras: &RequestExtras) -> Option<HttpError> {
        if request.headers.len() > self.limits.max_headers.clamp(1, MAX_HEADERS_CAP) {
            return Some(HttpError::TOO_MANY_HEADERS);
        }
        match origin_form(std::mem::take(&mut request.target)) {
            Ok(target) => request.target = target,
            Err(e) => return Some(e),
        }
        if extras.body_too_large || request.body.len() > self.limits.max_body_size {
            return Some(HttpError::BODY_TOO_LARGE);
        }
        None
    }

    /// Takes the response head of an exchange, once [`crate::Io::Respond`] said it is ready; None
    /// for any other connection, or when taken already.
    ///
    /// Taking it may end a response without a body at once: keep draining
    /// [`Server::poll_io`] after this call (a host calling it as it handles
    /// [`crate::Io::Respond`] does), for the [`crate::Io::Close`] it may queue.
    pub fn take_response(&mut self, conn: ConnectionId) -> Option<Response> {
        let c = self.conns.get_mut(conn)?;
        let response = c.response.take()?;
        c.write_progress = self.last_now;
        if matches!(c.state, ConnState::Closed) && c.out.is_empty() {
            self.finish_close(conn);
        } else {
            self.schedule_connection(conn);
        }
        self.prune_timers();
        Some(response)
    }

    /// Whether `conn` is an exchange from [`Server::handle_request`] (upgraded or not).
    pub fn is_exchange_connection(&self, conn: ConnectionId) -> bool {
        self.conns
            .get(conn)
            .is_some_and(|c| c.framing != Framing::Native)
    }
}
