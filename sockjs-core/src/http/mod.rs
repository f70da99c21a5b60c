//! HTTP/1.x: request decoding, response encoding, response decoding (for the client), and
//! the small parsers SockJS needs (query strings, form bodies, cookies, dates).

pub mod date;
pub mod query;
pub mod request;
pub mod response;
pub mod response_decoder;

pub use request::{DecoderLimits, Header, Method, Request, RequestDecoder, Version};
pub use response::{BodyFraming, ResponseHead};

use std::fmt;

/// A request the server cannot serve at the HTTP level: answered with `status` and `reason`
/// as the body, then the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpError {
    /// The response status.
    pub status: u16,
    /// The response body: one line saying what was wrong.
    pub reason: &'static str,
}

impl HttpError {
    /// Malformed request line or headers.
    pub const BAD_REQUEST: HttpError = HttpError {
        status: 400,
        reason: "Bad request",
    };
    /// Conflicting or malformed Content-Length / Transfer-Encoding.
    pub const BAD_LENGTH: HttpError = HttpError {
        status: 400,
        reason: "Conflicting or invalid message framing",
    };
    /// A malformed chunk in a chunked body.
    pub const BAD_CHUNK: HttpError = HttpError {
        status: 400,
        reason: "Invalid chunked encoding",
    };
    /// A transfer coding other than a single `chunked`.
    pub const UNSUPPORTED_ENCODING: HttpError = HttpError {
        status: 501,
        reason: "Unsupported transfer encoding",
    };
    /// Not HTTP/1.0 or HTTP/1.1.
    pub const BAD_VERSION: HttpError = HttpError {
        status: 505,
        reason: "HTTP version not supported",
    };
    /// The head exceeds the configured size.
    pub const HEAD_TOO_LARGE: HttpError = HttpError {
        status: 431,
        reason: "Request header too large",
    };
    /// More header lines than configured.
    pub const TOO_MANY_HEADERS: HttpError = HttpError {
        status: 431,
        reason: "Too many request headers",
    };
    /// The body exceeds the configured size.
    pub const BODY_TOO_LARGE: HttpError = HttpError {
        status: 413,
        reason: "Payload too large",
    };
    /// The request did not arrive in time.
    pub const TIMEOUT: HttpError = HttpError {
        status: 408,
        reason: "Request timeout",
    };
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl std::error::Error for HttpError {}

/// The reason phrase for a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        511 => "Network Authentication Required",
        _ => "Unknown",
    }
}
