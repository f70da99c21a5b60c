//! Response heads and the first body bytes, for both kinds of connection: written as HTTP/1.1
//! bytes on a connection the core frames itself, recorded as a structured [`Response`] on an
//! exchange (a request handed over by a host with its own HTTP stack, see
//! [`Server::handle_request`]). Every answer goes through here, so the two differ only in
//! what the host's HTTP layer owns: framing, persistence (`Connection: close` /
//! `keep-alive`) and the reason phrase's wire form.

use bytes::{Bytes, BytesMut};

use super::Server;
use super::connection::Framing;
use crate::http::BodyFraming;
use crate::http::reason_phrase;
use crate::http::response::{finish_head, write_chunk, write_header, write_status_line};
use crate::io::{ConnectionId, Io, Response, ResponseBody};

/// A response head being built.
pub(super) enum Head {
    /// For a connection the core frames: the head's bytes so far, status line first.
    Wire(BytesMut),
    /// For an exchange: what the host's HTTP stack is to send.
    Record(Response),
}

/// A head ended with its framing.
pub(super) enum Finished {
    /// The bytes of a whole head.
    Wire(BytesMut),
    /// The structured head.
    Record(Response),
}

impl Head {
    /// Adds a header. The value must not contain CR or LF.
    pub(super) fn header(&mut self, name: &'static str, value: impl AsRef<[u8]>) -> &mut Self {
        match self {
            Head::Wire(buf) => write_header(buf, name, value.as_ref()),
            Head::Record(r) => r
                .headers
                .push((name, Bytes::copy_from_slice(value.as_ref()))),
        }
        self
    }

    /// `Connection: <value>` for persistence (`close`, `keep-alive`): on an exchange, the
    /// host's HTTP layer decides that, so nothing is recorded.
    pub(super) fn persistence(&mut self, value: &'static str) -> &mut Self {
        if let Head::Wire(buf) = self {
            write_header(buf, "Connection", value.as_bytes());
        }
        self
    }

    /// Marks the response as switching protocols without a `101` (the `200` of an extended
    /// CONNECT). A `101` is one already.
    pub(super) fn upgrade(&mut self) -> &mut Self {
        if let Head::Record(r) = self {
            r.upgrade = true;
        }
        self
    }

    /// Ends the head with the framing of the body that follows.
    pub(super) fn finish(self, framing: BodyFraming) -> Finished {
        match self {
            Head::Wire(mut buf) => {
                finish_head(&mut buf, framing);
                Finished::Wire(buf)
            }
            Head::Record(mut r) => {
                r.upgrade |= r.status == 101;
                r.body = match framing {
                    _ if r.upgrade => ResponseBody::Empty,
                    BodyFraming::Length(n) => ResponseBody::Length(n),
                    BodyFraming::Chunked | BodyFraming::CloseDelimited => ResponseBody::Stream,
                    BodyFraming::None => ResponseBody::Empty,
                };
                Finished::Record(r)
            }
        }
    }
}

impl Server {
    /// Whether `id` is an exchange whose response has not switched protocols: its output is
    /// a body its host frames, and it ends with its response.
    pub(super) fn is_exchange(&self, id: ConnectionId) -> bool {
        self.conns
            .get(id)
            .is_some_and(|c| c.framing == Framing::Exchange)
    }

    /// Starts the head of `id`'s response, with the status's usual reason phrase.
    pub(super) fn head(&self, id: ConnectionId, status: u16) -> Head {
        self.head_with_reason(id, status, None)
    }

    /// Starts the head of `id`'s response, with a chosen reason phrase if `reason`.
    pub(super) fn head_with_reason(
        &self,
        id: ConnectionId,
        status: u16,
        reason: Option<&'static str>,
    ) -> Head {
        if self.is_exchange(id) {
            Head::Record(Response {
                status,
                reason,
                headers: Vec::with_capacity(8),
                body: ResponseBody::Empty,
                upgrade: false,
            })
        } else {
            let mut buf = BytesMut::new();
            write_status_line(&mut buf, status, reason.unwrap_or(reason_phrase(status)));
            Head::Wire(buf)
        }
    }

    /// Sends a head and the first bytes of its body (all of it, for a body of known length;
    /// a prelude, for a stream): on the wire, `body` is framed as `framing` says (one chunk
    /// when chunked); on an exchange it is the body's raw bytes.
    pub(super) fn respond(
        &mut self,
        id: ConnectionId,
        head: Head,
        framing: BodyFraming,
        body: &[u8],
    ) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let was_empty = c.out.is_empty();
        match head.finish(framing) {
            Finished::Wire(mut buf) => {
                if framing == BodyFraming::Chunked {
                    write_chunk(&mut buf, body);
                } else {
                    buf.extend_from_slice(body);
                }
                c.out.buf().unsplit(buf);
            }
            Finished::Record(r) => {
                c.out.buf().extend_from_slice(body);
                // A stream's prelude is a chunk of its own, as on the built-in path.
                c.out.seal();
                self.record_response(id, r);
            }
        }
        self.announce(id, was_empty);
    }

    /// Keeps an exchange's head for [`Server::take_response`] and announces it; the write
    /// timeout runs until the host takes it.
    pub(super) fn record_response(&mut self, id: ConnectionId, r: Response) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        // One head per exchange: the dispatch never writes two.
        debug_assert!(c.response.is_none(), "a second response head for {id}");
        if c.response.is_some() || c.framing != Framing::Exchange {
            return;
        }
        if r.upgrade {
            c.framing = Framing::Upgraded;
        }
        c.response = Some(r);
        c.write_progress = self.last_now;
        self.io.push_back(Io::Respond(id));
        self.schedule_connection(id);
    }
}
