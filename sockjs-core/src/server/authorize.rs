//! Authorization before a session opens: on an endpoint with [`crate::Options::authorize`],
//! a request that would open a session is held ([`ConnState::Authorizing`]) and shown to
//! the application ([`Event::Authorize`]) until it answers ([`Server::authorize`]) or
//! [`crate::Limits::authorization_timeout`] passes. Accepted, the request is dispatched again
//! and opens its session; refused or expired, it gets its answer and no session exists.

use std::time::Instant;

use super::Server;
use super::connection::{ConnState, Held};
use crate::http::Request;
use crate::io::{Authorization, ConnectionId, Event};
use crate::stats::{Limit, RefusalCause};

/// The most of a refusal's body that is sent.
const MAX_REFUSAL_BODY: usize = 1024;

impl Server {
    /// Answers [`Event::Authorize`] for the request held on `conn`. Returns false when no
    /// request is held there (answered already, timed out, or its client went away): the
    /// answer is then ignored.
    pub fn authorize(&mut self, now: Instant, conn: ConnectionId, answer: Authorization) -> bool {
        self.tick(now);
        let held = self.conns.get_mut(conn).and_then(|c| {
            if !matches!(c.state, ConnState::Authorizing(_)) {
                return None;
            }
            let ConnState::Authorizing(held) = std::mem::replace(&mut c.state, ConnState::Http)
            else {
                unreachable!("matched above");
            };
            Some(held)
        });
        let Some(held) = held else {
            self.finish_call(now);
            return false;
        };
        match answer {
            Authorization::Accept => {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.authorized = true;
                }
                self.dispatch_with(now, conn, held.request, held.connect_websocket);
                if let Some(c) = self.conns.get_mut(conn) {
                    c.authorized = false;
                }
            }
            Authorization::Refuse { status, body } => {
                let status = if (400..=599).contains(&status) {
                    status
                } else {
                    403
                };
                let mut end = body.len().min(MAX_REFUSAL_BODY);
                while !body.is_char_boundary(end) {
                    end -= 1;
                }
                self.refused(conn, status, RefusalCause::Authorization, None);
                self.refuse_held(conn, &held.request, held.endpoint, status, &body[..end]);
            }
        }
        self.after_held(now, conn);
        self.finish_call(now);
        true
    }

    /// Whether a request on `id` that would open a session on endpoint `ep` must wait for
    /// the application; if so, holds it and tells the application.
    pub(super) fn hold_for_authorization(
        &mut self,
        now: Instant,
        id: ConnectionId,
        ep: usize,
        req: &Request,
        protocol: &'static str,
        connect_websocket: bool,
    ) -> bool {
        let Some(c) = self.conns.get(id) else {
            return false;
        };
        if !self.endpoints[ep].options.authorize || c.authorized {
            return false;
        }
        let info = self.request_info(id, ep, req, protocol);
        if let Some(c) = self.conns.get_mut(id) {
            c.state = ConnState::Authorizing(Box::new(Held {
                request: req.clone(),
                endpoint: ep,
                connect_websocket,
                since: now,
            }));
        }
        self.events.push_back(Event::Authorize {
            connection: id,
            endpoint: ep,
            info: Box::new(info),
        });
        true
    }

    /// The application did not answer in time: `503`, and no session.
    pub(super) fn authorization_expired(&mut self, now: Instant, id: ConnectionId) {
        self.refused(
            id,
            503,
            RefusalCause::Authorization,
            Some(Limit::AuthorizationTimeout),
        );
        self.refuse_held_now(now, id, "Authorization timed out");
    }

    /// Answers a request held on `id`, if there is one, `503` with `why`.
    pub(super) fn refuse_held_now(&mut self, now: Instant, id: ConnectionId, why: &str) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if !matches!(c.state, ConnState::Authorizing(_)) {
            return;
        }
        let ConnState::Authorizing(held) = std::mem::replace(&mut c.state, ConnState::Http) else {
            return;
        };
        self.refuse_held(id, &held.request, held.endpoint, 503, why);
        self.after_held(now, id);
    }

    /// After a held request was answered: timers, and requests pipelined behind it.
    fn after_held(&mut self, now: Instant, id: ConnectionId) {
        self.request_done(now, id);
        if self
            .conns
            .get(id)
            .is_some_and(|c| matches!(c.state, ConnState::Http))
        {
            self.resume.push(id);
        }
    }
}
