//! The SockJS transports: which URL segment names each, and how each shapes frames on the
//! wire. The session logic is the same for all of them; only the bytes differ.

pub mod eventsource;
pub mod htmlfile;
pub mod jsonp;
pub mod xhr;

use bytes::{Bytes, BytesMut};

/// A transport, as named by the last segment of a session URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `websocket`: SockJS frames over a WebSocket.
    WebSocket,
    /// `xhr`: polling, one frame per POST.
    Xhr,
    /// `xhr_send`: messages from the client, as a POSTed JSON array.
    XhrSend,
    /// `xhr_streaming`: frames over one long chunked POST response.
    XhrStreaming,
    /// `eventsource`: frames as server-sent events.
    EventSource,
    /// `htmlfile`: frames as script blocks in a long HTML page.
    HtmlFile,
    /// `jsonp`: polling, one frame per script.
    Jsonp,
    /// `jsonp_send`: messages from the client, form-encoded or raw JSON.
    JsonpSend,
}

impl Transport {
    /// The transport named by a URL segment, matched exactly.
    pub fn from_segment(s: &[u8]) -> Option<Transport> {
        Some(match s {
            b"websocket" => Transport::WebSocket,
            b"xhr" => Transport::Xhr,
            b"xhr_send" => Transport::XhrSend,
            b"xhr_streaming" => Transport::XhrStreaming,
            b"eventsource" => Transport::EventSource,
            b"htmlfile" => Transport::HtmlFile,
            b"jsonp" => Transport::Jsonp,
            b"jsonp_send" => Transport::JsonpSend,
            _ => return None,
        })
    }

    /// The methods the transport answers, as the `Allow` header lists them.
    pub fn allowed_methods(self) -> &'static str {
        match self {
            Transport::WebSocket
            | Transport::EventSource
            | Transport::HtmlFile
            | Transport::Jsonp => "GET",
            Transport::Xhr | Transport::XhrSend | Transport::XhrStreaming => "POST, OPTIONS",
            Transport::JsonpSend => "POST",
        }
    }

    /// The protocol name reported to the application (as sockjs-client names transports).
    pub fn protocol_name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Xhr | Transport::XhrSend => "xhr-polling",
            Transport::XhrStreaming => "xhr-streaming",
            Transport::EventSource => "eventsource",
            Transport::HtmlFile => "htmlfile",
            Transport::Jsonp | Transport::JsonpSend => "jsonp-polling",
        }
    }
}

/// How an HTTP response receiving a session's frames puts them on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverKind {
    /// `xhr`: one frame then the response ends.
    XhrPolling,
    /// `xhr_streaming`.
    XhrStreaming,
    /// `eventsource`.
    EventSource,
    /// `htmlfile`, calling `parent.<callback>`.
    HtmlFile {
        /// The validated callback name.
        callback: Bytes,
    },
    /// `jsonp`, calling `<callback>`; one frame then the response ends.
    Jsonp {
        /// The validated callback name.
        callback: Bytes,
    },
}

impl ReceiverKind {
    /// Whether the response ends after its first frame.
    pub fn is_polling(&self) -> bool {
        matches!(self, ReceiverKind::XhrPolling | ReceiverKind::Jsonp { .. })
    }

    /// The response's `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        match self {
            ReceiverKind::XhrPolling | ReceiverKind::XhrStreaming | ReceiverKind::Jsonp { .. } => {
                "application/javascript; charset=UTF-8"
            }
            ReceiverKind::EventSource => "text/event-stream",
            ReceiverKind::HtmlFile { .. } => "text/html; charset=UTF-8",
        }
    }

    /// Appends what a streaming response sends before its first frame (nothing for polling).
    pub fn write_prelude(&self, out: &mut BytesMut) {
        match self {
            ReceiverKind::XhrStreaming => xhr::write_streaming_prelude(out),
            ReceiverKind::EventSource => eventsource::write_prelude(out),
            ReceiverKind::HtmlFile { callback } => htmlfile::write_prelude(out, callback),
            ReceiverKind::XhrPolling | ReceiverKind::Jsonp { .. } => {}
        }
    }

    /// How many bytes on the wire one byte of a frame can take at the most: a frame that is
    /// JSON-encoded again (htmlfile, jsonp: `<` becomes `\u003c`) or percent-escaped
    /// (eventsource) grows by that much.
    pub fn max_expansion(&self) -> usize {
        match self {
            ReceiverKind::XhrPolling | ReceiverKind::XhrStreaming => 1,
            ReceiverKind::EventSource => 3,
            ReceiverKind::HtmlFile { .. } | ReceiverKind::Jsonp { .. } => 6,
        }
    }

    /// Appends one frame as this transport carries it.
    pub fn write_frame(&self, out: &mut BytesMut, frame: &[u8]) {
        match self {
            ReceiverKind::XhrPolling | ReceiverKind::XhrStreaming => xhr::write_frame(out, frame),
            ReceiverKind::EventSource => eventsource::write_frame(out, frame),
            ReceiverKind::HtmlFile { .. } => htmlfile::write_frame(out, frame),
            ReceiverKind::Jsonp { callback } => jsonp::write_frame(out, callback, frame),
        }
    }
}

/// Why a `c` / `callback` query parameter was refused: answered 500 with this text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackError {
    /// Neither `c` nor `callback` was given.
    Missing,
    /// Characters outside `[A-Za-z0-9_.-]`, empty, or longer than 32.
    Invalid,
}

impl CallbackError {
    /// The response body.
    pub fn message(self) -> &'static str {
        match self {
            CallbackError::Missing => "\"callback\" parameter required",
            CallbackError::Invalid => "invalid \"callback\" parameter",
        }
    }
}

/// The JavaScript callback named by the query (`c`, else `callback`), validated so it can be
/// written into a script unescaped.
pub fn callback(query: &[u8]) -> Result<Bytes, CallbackError> {
    let name = crate::http::query::param(query, "c")
        .or_else(|| crate::http::query::param(query, "callback"))
        .ok_or(CallbackError::Missing)?;
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(Bytes::from(name))
    } else {
        Err(CallbackError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks() {
        assert_eq!(
            callback(b"c=%63allback"),
            Ok(Bytes::from_static(b"callback"))
        );
        assert_eq!(
            callback(b"callback=a.b_c-1"),
            Ok(Bytes::from_static(b"a.b_c-1"))
        );
        assert_eq!(callback(b"c=x&callback=y"), Ok(Bytes::from_static(b"x")));
        assert_eq!(callback(b""), Err(CallbackError::Missing));
        assert_eq!(callback(b"d=1"), Err(CallbackError::Missing));
        for bad in [
            "c=%20",
            "c=*",
            "c=abc(",
            "c=abc%28",
            "c=",
            &format!("c={}", "a".repeat(33)),
        ] {
            assert_eq!(
                callback(bad.as_bytes()),
                Err(CallbackError::Invalid),
                "{bad}"
            );
        }
        assert!(callback(format!("c={}", "a".repeat(32)).as_bytes()).is_ok());
    }

    #[test]
    fn segments_are_exact() {
        assert_eq!(Transport::from_segment(b"xhr"), Some(Transport::Xhr));
        assert_eq!(Transport::from_segment(b"xhr;x"), None);
        assert_eq!(Transport::from_segment(b"Xhr"), None);
        assert_eq!(Transport::from_segment(b""), None);
    }
}
