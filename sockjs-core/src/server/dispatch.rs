//! A connection reading HTTP requests: decoding, routing, and every answer that is complete
//! at once (greeting, `/info`, iframe, preflights, `xhr_send`, `jsonp_send`, errors).

use std::time::Instant;

use super::Server;
use super::connection::{Closing, ConnState};
use super::headers::{NO_CACHE, ResponseContext, cache_for_year};
use crate::http::{BodyFraming, Method, Request};
use crate::io::ConnectionId;
use crate::pages;
use crate::payload::PayloadError;
use crate::route::{Target, route};
use crate::stats::RefusalCause;
use crate::transport::{ReceiverKind, Transport, jsonp, xhr};

/// What a complete response carries besides the headers every response gets.
struct Answer<'a> {
    status: u16,
    content_type: Option<&'static str>,
    body: &'a [u8],
}

impl Server {
    /// Decodes and serves requests while the connection is free to answer them.
    pub(super) fn read_requests(&mut self, now: Instant, id: ConnectionId) {
        loop {
            let Some(c) = self.conns.get_mut(id) else {
                return;
            };
            if !matches!(c.state, ConnState::Http) {
                return;
            }
            // A client that sends requests and does not read the answers must not grow the
            // output without bound: the rest waits, buffered (and bounded) in the decoder,
            // until the output drains (`connection_written` resumes).
            if c.out.len() > self.limits.max_unflushed_bytes {
                // The request under way still has its timeout.
                self.schedule_connection(id);
                return;
            }
            match c.decoder.decode() {
                Err(e) => {
                    self.refused_http(id, e);
                    self.respond_error_and_close(id, e.status, e.reason);
                    return;
                }
                Ok(None) => {
                    if c.decoder.take_continue() {
                        self.write(id, |out| {
                            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n")
                        });
                    }
                    self.schedule_connection(id);
                    return;
                }
                Ok(Some(req)) => {
                    c.request_started = None;
                    self.dispatch(now, id, req);
                    self.request_done(now, id);
                }
            }
        }
    }

    /// After a request was handled: timers for whatever the connection does next.
    pub(super) fn request_done(&mut self, now: Instant, id: ConnectionId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if matches!(c.state, ConnState::Http) {
            c.idle_since = now;
            c.request_started = c.decoder.in_request().then_some(now);
        }
        self.schedule_connection(id);
    }

    /// A response carrying session frames has ended: the connection reads again, or closes.
    pub(super) fn response_ended(&mut self, now: Instant, id: ConnectionId, keep_alive: bool) {
        if !keep_alive {
            self.close_connection(id, Closing::Graceful);
            return;
        }
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.state = ConnState::Http;
        c.idle_since = now;
        c.request_started = c.decoder.in_request().then_some(now);
        self.resume.push(id);
        self.schedule_connection(id);
    }

    /// Serves one request, from either entry: decoded here, or handed over by a host with
    /// its own HTTP stack (then `connect_websocket` says if it is an extended CONNECT for a
    /// WebSocket, RFC 8441).
    pub(super) fn dispatch(&mut self, now: Instant, id: ConnectionId, req: Request) {
        self.dispatch_with(now, id, req, false);
    }

    pub(super) fn dispatch_with(
        &mut self,
        now: Instant,
        id: ConnectionId,
        req: Request,
        connect_websocket: bool,
    ) {
        let mut ctx = ResponseContext::new(&req);
        ctx.connect_websocket = connect_websocket;
        // Shutting down: a request already under way is answered, then its connection goes.
        ctx.keep_alive &= self.shutdown_deadline.is_none();
        let routed = route(&self.endpoints, req.path()).map(|(i, t)| (i, t.to_owned_target()));
        let Some((ep, target)) = routed else {
            self.refused(id, 404, RefusalCause::NotFound, None);
            return self.answer(id, &ctx, None, not_found());
        };
        if target == OwnedTarget::NotFound {
            self.refused(id, 404, RefusalCause::NotFound, None);
            return self.answer(id, &ctx, None, not_found());
        }
        let websocket_url = matches!(
            target,
            OwnedTarget::RawWebSocket
                | OwnedTarget::Session {
                    transport: Transport::WebSocket,
                    ..
                }
        );
        let connect = ctx.connect_websocket && websocket_url;
        if !connect && !target.as_target().allows(&req.method) {
            self.refused(id, 405, RefusalCause::NotFound, None);
            return self.method_not_allowed(id, &ctx, target.as_target().allowed_methods());
        }
        let options = &self.endpoints[ep].options;
        let needs_origin = !matches!(target, OwnedTarget::Greeting | OwnedTarget::Iframe);
        if needs_origin && !ctx.origin_allowed(options) {
            self.refused(id, 403, RefusalCause::Origin, None);
            return self.answer(
                id,
                &ctx,
                None,
                Answer {
                    status: 403,
                    content_type: Some(TEXT),
                    body: b"Origin not allowed",
                },
            );
        }
        match target {
            OwnedTarget::NotFound => unreachable!("answered above"),
            OwnedTarget::Greeting => {
                let a = Answer {
                    status: 200,
                    content_type: Some(TEXT),
                    body: pages::GREETING,
                };
                self.answer(id, &ctx, None, a);
            }
            OwnedTarget::Info if req.method == Method::Options => {
                self.preflight(now, id, ep, &ctx, "OPTIONS, GET", false);
            }
            OwnedTarget::Info => self.info(id, ep, &ctx),
            OwnedTarget::Iframe => self.iframe(now, id, ep, &ctx, &req),
            OwnedTarget::RawWebSocket => {
                if self.endpoints[ep].options.websocket {
                    self.upgrade(now, id, ep, &ctx, &req, true);
                } else {
                    self.websocket_disabled(now, id, &ctx);
                }
            }
            OwnedTarget::Session {
                session_id,
                transport,
            } => {
                if req.method == Method::Options {
                    return self.preflight(now, id, ep, &ctx, "OPTIONS, POST", true);
                }
                self.session_request(now, id, ep, &ctx, &req, session_id, transport);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn session_request(
        &mut self,
        now: Instant,
        id: ConnectionId,
        ep: usize,
        ctx: &ResponseContext,
        req: &Request,
        session_id: Box<[u8]>,
        transport: Transport,
    ) {
        let kind = match transport {
            Transport::WebSocket => {
                if self.endpoints[ep].options.websocket {
                    self.upgrade(now, id, ep, ctx, req, false);
                } else {
                    self.websocket_disabled(now, id, ctx);
                }
                return;
            }
            Transport::XhrSend => {
                let result = xhr::parse_send(&req.body);
                return self.client_send(id, ep, ctx, req, &session_id, result, false);
            }
            Transport::JsonpSend => {
                let result = jsonp::parse_send(req.header("content-type"), &req.body);
                return self.client_send(id, ep, ctx, req, &session_id, result, true);
            }
            Transport::Xhr => ReceiverKind::XhrPolling,
            Transport::XhrStreaming => ReceiverKind::XhrStreaming,
            Transport::EventSource => ReceiverKind::EventSource,
            Transport::HtmlFile | Transport::Jsonp => {
                match crate::transport::callback(req.query()) {
                    Ok(callback) if transport == Transport::Jsonp => {
                        ReceiverKind::Jsonp { callback }
                    }
                    Ok(callback) => ReceiverKind::HtmlFile { callback },
                    Err(e) => {
                        self.refused(id, 500, RefusalCause::Framing, None);
                        let body = e.message().as_bytes();
                        let a = Answer {
                            status: 500,
                            content_type: Some(TEXT),
                            body,
                        };
                        let url = SessionUrl {
                            endpoint: ep,
                            cors: false,
                        };
                        return self.answer(id, ctx, Some(url), a);
                    }
                }
            }
        };
        self.receive(now, id, ep, ctx, req, &session_id, transport, kind);
    }

    /// `xhr_send` / `jsonp_send`: messages from the client to an existing session.
    #[allow(clippy::too_many_arguments)]
    fn client_send(
        &mut self,
        id: ConnectionId,
        ep: usize,
        ctx: &ResponseContext,
        req: &Request,
        session_id: &[u8],
        messages: Result<Vec<String>, PayloadError>,
        jsonp: bool,
    ) {
        // Only the xhr family is fetched cross-origin; jsonp_send posts from a form.
        let url = Some(SessionUrl {
            endpoint: ep,
            cors: !jsonp,
        });
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                self.refused(id, 500, RefusalCause::Framing, None);
                let a = Answer {
                    status: 500,
                    content_type: Some(TEXT),
                    body: e.message().as_bytes(),
                };
                return self.answer(id, ctx, url, a);
            }
        };
        let Some(&session) = self.endpoints[ep].sessions.get(session_id) else {
            self.refused(id, 404, RefusalCause::NotFound, None);
            return self.answer(id, ctx, url, not_found());
        };
        if !self.binding_matches(session, id, ep, req) {
            return self.answer(id, ctx, url, not_found());
        }
        if self.sessions.get(session).is_some_and(|s| s.is_open()) {
            for text in messages {
                self.message_in(session, id, text);
            }
        }
        if jsonp {
            self.answer(
                id,
                ctx,
                url,
                Answer {
                    status: 200,
                    content_type: Some(TEXT),
                    body: b"ok",
                },
            );
        } else {
            self.answer(
                id,
                ctx,
                url,
                Answer {
                    status: 204,
                    content_type: Some(TEXT),
                    body: b"",
                },
            );
        }
    }

    fn info(&mut self, id: ConnectionId, ep: usize, ctx: &ResponseContext) {
        let entropy = self.next_entropy();
        let o = &self.endpoints[ep].options;
        let body = pages::info(o.websocket, o.cookie_needed, entropy);
        let mut head = self.head(id, 200);
        head.header("Content-Type", "application/json; charset=UTF-8");
        head.header("Cache-Control", NO_CACHE);
        ctx.cors(&mut head);
        ctx.connection(&mut head);
        self.respond(id, head, BodyFraming::Length(body.len()), body.as_bytes());
        self.after_answer(id, ctx);
    }

    fn iframe(
        &mut self,
        now: Instant,
        id: ConnectionId,
        ep: usize,
        ctx: &ResponseContext,
        req: &Request,
    ) {
        let page = self.endpoints[ep].iframe.clone();
        let unix = self.clock.unix(now);
        let fresh = req
            .header("if-none-match")
            .is_some_and(|v| v == &page.etag[..]);
        let mut head = self.head(id, if fresh { 304 } else { 200 });
        if !fresh {
            head.header("Content-Type", "text/html; charset=UTF-8");
        }
        head.header("ETag", &page.etag);
        cache_for_year(&mut head, unix);
        ctx.connection(&mut head);
        if fresh {
            self.respond(id, head, BodyFraming::None, b"");
        } else {
            self.respond(id, head, BodyFraming::Length(page.body.len()), &page.body);
        }
        self.after_answer(id, ctx);
    }

    /// CORS preflight: cacheable for a year.
    fn preflight(
        &mut self,
        now: Instant,
        id: ConnectionId,
        ep: usize,
        ctx: &ResponseContext,
        methods: &str,
        session_url: bool,
    ) {
        let unix = self.clock.unix(now);
        let mut head = self.head(id, 204);
        let options = &self.endpoints[ep].options;
        if session_url {
            ctx.cookie(&mut head, options);
        }
        ctx.cors(&mut head);
        cache_for_year(&mut head, unix);
        head.header("Access-Control-Allow-Methods", methods);
        head.header("Access-Control-Max-Age", "31536000");
        ctx.connection(&mut head);
        self.respond(id, head, BodyFraming::None, b"");
        self.after_answer(id, ctx);
    }

    fn websocket_disabled(&mut self, now: Instant, id: ConnectionId, ctx: &ResponseContext) {
        self.refused(id, 404, RefusalCause::NotFound, None);
        let unix = self.clock.unix(now);
        let mut head = self.head(id, 404);
        head.header("Content-Type", TEXT);
        cache_for_year(&mut head, unix);
        ctx.connection(&mut head);
        let body = pages::NOT_FOUND;
        self.respond(id, head, BodyFraming::Length(body.len()), body);
        self.after_answer(id, ctx);
    }

    fn method_not_allowed(&mut self, id: ConnectionId, ctx: &ResponseContext, allow: &str) {
        let mut head = self.head(id, 405);
        head.header("Allow", allow);
        ctx.connection(&mut head);
        self.respond(id, head, BodyFraming::Length(0), b"");
        self.after_answer(id, ctx);
    }

    /// A complete response. With `session`, it is a session URL's answer: the session headers
    /// (no-cache, cookie, and CORS for the xhr family) are added.
    fn answer(
        &mut self,
        id: ConnectionId,
        ctx: &ResponseContext,
        session: Option<SessionUrl>,
        a: Answer<'_>,
    ) {
        let mut head = self.head(id, a.status);
        if let Some(url) = session {
            let options = &self.endpoints[url.endpoint].options;
            ctx.cookie(&mut head, options);
            head.header("Cache-Control", NO_CACHE);
            if url.cors {
                ctx.cors(&mut head);
            }
        }
        if let Some(ct) = a.content_type {
            head.header("Content-Type", ct);
        }
        ctx.connection(&mut head);
        if a.status == 204 {
            self.respond(id, head, BodyFraming::None, b"");
        } else {
            self.respond(id, head, BodyFraming::Length(a.body.len()), a.body);
        }
        self.after_answer(id, ctx);
    }

    fn after_answer(&mut self, id: ConnectionId, ctx: &ResponseContext) {
        if !ctx.keep_alive {
            self.close_connection(id, Closing::Graceful);
        }
    }

    /// A response for a request that cannot be served at the HTTP level; the connection
    /// closes after it.
    pub(super) fn respond_error_and_close(&mut self, id: ConnectionId, status: u16, reason: &str) {
        let mut head = self.head(id, status);
        head.header("Content-Type", TEXT);
        head.persistence("close");
        let mut body = Vec::with_capacity(reason.len() + 1);
        body.extend_from_slice(reason.as_bytes());
        body.push(b'\n');
        self.respond(id, head, BodyFraming::Length(body.len()), &body);
        self.close_connection(id, Closing::Graceful);
    }

    /// A response with a plain-text body for the WebSocket upgrade errors and similar.
    /// The answer to a request held for authorization that is not to be served (refused,
    /// or not answered in time), on its session URL.
    pub(super) fn refuse_held(
        &mut self,
        id: ConnectionId,
        req: &Request,
        ep: usize,
        status: u16,
        body: &str,
    ) {
        let mut ctx = ResponseContext::new(req);
        ctx.keep_alive &= self.shutdown_deadline.is_none();
        let url = SessionUrl {
            endpoint: ep,
            cors: true,
        };
        let a = Answer {
            status,
            content_type: Some(TEXT),
            body: body.as_bytes(),
        };
        self.answer(id, &ctx, Some(url), a);
    }

    /// The 404 a request for an unknown session gets, on a session URL.
    pub(super) fn session_not_found(
        &mut self,
        id: ConnectionId,
        ep: usize,
        ctx: &ResponseContext,
        cors: bool,
    ) {
        let url = SessionUrl { endpoint: ep, cors };
        self.answer(id, ctx, Some(url), not_found());
    }

    pub(super) fn answer_text(
        &mut self,
        id: ConnectionId,
        ctx: &ResponseContext,
        status: u16,
        body: &str,
    ) {
        self.answer(
            id,
            ctx,
            None,
            Answer {
                status,
                content_type: Some(TEXT),
                body: body.as_bytes(),
            },
        );
    }
}

const TEXT: &str = "text/plain; charset=UTF-8";

/// An answer on a session URL: which endpoint, and whether it is CORS-enabled.
#[derive(Debug, Clone, Copy)]
struct SessionUrl {
    endpoint: usize,
    cors: bool,
}

fn not_found() -> Answer<'static> {
    Answer {
        status: 404,
        content_type: Some(TEXT),
        body: pages::NOT_FOUND,
    }
}

/// A routed target that owns its session id, so the request can be borrowed again.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedTarget {
    Greeting,
    Info,
    Iframe,
    RawWebSocket,
    Session {
        session_id: Box<[u8]>,
        transport: Transport,
    },
    NotFound,
}

impl OwnedTarget {
    fn as_target(&self) -> Target<'_> {
        match self {
            OwnedTarget::Greeting => Target::Greeting,
            OwnedTarget::Info => Target::Info,
            OwnedTarget::Iframe => Target::Iframe,
            OwnedTarget::RawWebSocket => Target::RawWebSocket,
            OwnedTarget::Session {
                session_id,
                transport,
            } => Target::Session {
                session_id,
                transport: *transport,
            },
            OwnedTarget::NotFound => Target::NotFound,
        }
    }
}

impl Target<'_> {
    fn to_owned_target(self) -> OwnedTarget {
        match self {
            Target::Greeting => OwnedTarget::Greeting,
            Target::Info => OwnedTarget::Info,
            Target::Iframe => OwnedTarget::Iframe,
            Target::RawWebSocket => OwnedTarget::RawWebSocket,
            Target::Session {
                session_id,
                transport,
            } => OwnedTarget::Session {
                session_id: session_id.into(),
                transport,
            },
            Target::NotFound => OwnedTarget::NotFound,
        }
    }
}

impl AsRef<str> for super::EndpointState {
    fn as_ref(&self) -> &str {
        &self.prefix
    }
}
