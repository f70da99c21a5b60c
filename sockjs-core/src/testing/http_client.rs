//! The HTTP side of the harness's clients: requests as bytes, responses parsed byte for byte,
//! and the one-request conveniences of [`Harness`].

use super::harness::Harness;
use super::lossy;
use crate::ConnectionId;

/// How the body after a response head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body runs until the connection closes.
    UntilClose,
    /// No body (1xx, 204, 304).
    Empty,
}

/// A parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The head exactly as sent, from the status line to the blank line.
    pub head: String,
    /// The status code.
    pub status: u16,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, chunks joined (empty from [`parse_head`] and [`Harness::read_head`]).
    pub body: Vec<u8>,
    /// The data chunks of a chunked body, in order (the last, empty chunk not included).
    pub chunks: Vec<Vec<u8>>,
    /// How the body was delimited.
    pub mode: BodyMode,
}

impl Response {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a header called `name` (any case) was sent.
    pub fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The header names in order, as sent.
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The body as text.
    ///
    /// # Panics
    ///
    /// If the body is not UTF-8.
    #[track_caller]
    pub fn text(&self) -> &str {
        match std::str::from_utf8(&self.body) {
            Ok(text) => text,
            Err(e) => panic!("the body is not UTF-8 ({e}): {:?}", lossy(&self.body)),
        }
    }
}

/// An HTTP/1.1 request: the request line, `Host: test`, `headers` as given, and a
/// `Content-Length` when there is a body.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Parses a response head from the front of `buf`: the response (body empty) and the bytes
/// the head took, or None if the head has not completely arrived.
///
/// # Panics
///
/// If the head is not one the core may send: not ASCII, not `HTTP/1.1`, a header line
/// without `": "`, a body length on a response that has no body, both `Content-Length` and
/// chunking, or a `Transfer-Encoding` other than `chunked`.
#[track_caller]
pub fn parse_head(buf: &[u8]) -> Option<(Response, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = match std::str::from_utf8(&buf[..end]) {
        Ok(head) if head.is_ascii() => head.to_string(),
        _ => panic!("a head that is not ASCII: {:?}", lossy(&buf[..end])),
    };
    let mut lines = head[..end - 4].split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "the status line: {status_line:?}"
    );
    let Some(status) = parts.next().and_then(|s| s.parse::<u16>().ok()) else {
        panic!("no status code in {status_line:?}");
    };
    let headers: Vec<(String, String)> = lines
        .map(|l| match l.split_once(": ") {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => panic!("not a header line: {l:?}"),
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let mode = if (100..200).contains(&status) || status == 204 || status == 304 {
        assert!(
            find("content-length").is_none(),
            "no Content-Length on a {status}"
        );
        assert!(
            find("transfer-encoding").is_none(),
            "no Transfer-Encoding on a {status}"
        );
        BodyMode::Empty
    } else if let Some(te) = find("transfer-encoding") {
        assert_eq!(te, "chunked", "the only transfer coding the core sends");
        assert!(
            find("content-length").is_none(),
            "Content-Length with chunked"
        );
        BodyMode::Chunked
    } else if let Some(n) = find("content-length") {
        match n.parse() {
            Ok(n) => BodyMode::Length(n),
            Err(_) => panic!("a Content-Length that is not a number: {n:?}"),
        }
    } else {
        BodyMode::UntilClose
    };
    let response = Response {
        head,
        status,
        headers,
        body: Vec::new(),
        chunks: Vec::new(),
        mode,
    };
    Some((response, end))
}

/// Parses one chunk (`size CRLF data CRLF`) from the front of `buf`: its data (empty for the
/// last chunk, which must have no trailers) and the bytes it took, or None if the chunk has
/// not completely arrived.
///
/// # Panics
///
/// If the size is not bare hexadecimal that fits a `usize`, or the data is not followed by
/// CRLF.
#[track_caller]
pub fn parse_chunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let size_text = &buf[..line_end];
    assert!(
        !size_text.is_empty() && size_text.iter().all(u8::is_ascii_hexdigit),
        "a bare hex chunk size: {:?}",
        lossy(size_text)
    );
    let size = std::str::from_utf8(size_text)
        .ok()
        .and_then(|s| usize::from_str_radix(s, 16).ok());
    let Some(size) = size else {
        panic!("a chunk size that does not fit: {:?}", lossy(size_text));
    };
    let data_start = line_end + 2;
    let data_end = data_start.checked_add(size)?;
    let data = buf.get(data_start..data_end)?;
    let tail = buf.get(data_end..data_end + 2)?;
    assert_eq!(tail, b"\r\n", "chunk data ends with CRLF");
    Some((data.to_vec(), data_end + 2))
}

/// Parses one complete response from the front of `buf`: the response and the bytes it
/// took, or None if it has not completely arrived. A body delimited by the close is
/// complete only if `closed`.
///
/// # Panics
///
/// As [`parse_head`] and [`parse_chunk`].
#[track_caller]
pub fn parse_response(buf: &[u8], closed: bool) -> Option<(Response, usize)> {
    let (mut r, mut used) = parse_head(buf)?;
    match r.mode {
        BodyMode::Empty => {}
        BodyMode::Length(n) => {
            r.body = buf.get(used..used.checked_add(n)?)?.to_vec();
            used += n;
        }
        BodyMode::Chunked => loop {
            let (data, n) = parse_chunk(&buf[used..])?;
            used += n;
            if data.is_empty() {
                break;
            }
            r.body.extend_from_slice(&data);
            r.chunks.push(data);
        },
        BodyMode::UntilClose => {
            if !closed {
                return None;
            }
            r.body = buf[used..].to_vec();
            used = buf.len();
        }
    }
    Some((r, used))
}

/// The HTTP transports that carry a session's frames to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Receiver {
    /// `xhr` polling: one frame per response.
    Xhr,
    /// `jsonp` polling, with callback `cb`: one frame per response.
    Jsonp,
    /// `xhr_streaming`: a 2 KiB prelude, then one frame per chunk.
    XhrStreaming,
    /// `eventsource`: one frame per `data:` event.
    EventSource,
    /// `htmlfile`, with callback `cb`: one frame per `<script>`.
    HtmlFile,
}

impl Receiver {
    /// Whether a response carries many frames.
    pub fn is_streaming(self) -> bool {
        matches!(
            self,
            Receiver::XhrStreaming | Receiver::EventSource | Receiver::HtmlFile
        )
    }

    /// The method and path of a request opening this receiver for the session at
    /// `session_url` (see [`super::session_url`]).
    pub fn request(self, session_url: &str) -> (&'static str, String) {
        match self {
            Receiver::Xhr => ("POST", format!("{session_url}/xhr")),
            Receiver::Jsonp => ("GET", format!("{session_url}/jsonp?c=cb")),
            Receiver::XhrStreaming => ("POST", format!("{session_url}/xhr_streaming")),
            Receiver::EventSource => ("GET", format!("{session_url}/eventsource")),
            Receiver::HtmlFile => ("GET", format!("{session_url}/htmlfile?c=cb")),
        }
    }

    /// The SockJS frame inside one unit of this transport's body (a polling body, or a
    /// chunk of a streaming one), unescaped; None for a unit that holds no frame (a
    /// prelude) or is not this transport's shape.
    pub fn unwrap_frame(self, unit: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(unit).ok()?;
        let script_string = |literal: &str| {
            let mut strings = crate::payload::parse_websocket_message(literal.as_bytes()).ok()?;
            (strings.len() == 1 && literal.starts_with('"')).then(|| strings.remove(0))
        };
        match self {
            Receiver::Xhr | Receiver::XhrStreaming => text
                .strip_suffix('\n')
                .filter(|frame| !frame.bytes().all(|b| b == b'h') || frame.len() == 1)
                .map(str::to_string),
            Receiver::EventSource => text
                .strip_prefix("data: ")
                .and_then(|t| t.strip_suffix("\r\n\r\n"))
                .map(|t| {
                    t.replace("%0A", "\n")
                        .replace("%0D", "\r")
                        .replace("%00", "\0")
                        .replace("%25", "%")
                }),
            Receiver::HtmlFile => text
                .strip_prefix("<script>\np(")
                .and_then(|t| t.strip_suffix(");\n</script>\r\n"))
                .and_then(script_string),
            Receiver::Jsonp => text
                .strip_prefix("/**/cb(")
                .and_then(|t| t.strip_suffix(");\r\n"))
                .and_then(script_string),
        }
    }
}

impl Harness {
    /// Opens `receiver` for the session at `session_url` on a new connection; read its
    /// frames with [`Harness::receiver_frames`].
    pub fn open_receiver(&mut self, receiver: Receiver, session_url: &str) -> ConnectionId {
        let conn = self.connect();
        let (method, path) = receiver.request(session_url);
        self.request(conn, method, &path, &[], b"");
        conn
    }

    /// Consumes what has arrived on `conn`, a connection opened with
    /// [`Harness::open_receiver`]`(receiver, ..)`, and returns the SockJS frames in it
    /// (the open frame, heartbeats, `a[...]` and close frames alike; see
    /// [`super::frame_messages`]). A head is consumed once it has arrived; call again as
    /// more arrives.
    ///
    /// # Panics
    ///
    /// If what arrived is not a response, as [`parse_head`] and [`parse_chunk`], or a body
    /// unit is not this receiver's shape.
    #[track_caller]
    pub fn receiver_frames(&mut self, conn: ConnectionId, receiver: Receiver) -> Vec<String> {
        let mut frames = Vec::new();
        loop {
            let c = self.client(conn);
            match c.body {
                None => {
                    if parse_head(c.unread()).is_none() {
                        return frames;
                    }
                    self.read_head(conn);
                }
                Some(BodyMode::Chunked) => match self.read_chunk(conn) {
                    None => return frames,
                    Some(unit) if unit.is_empty() => {}
                    Some(unit) => frames.extend(self.unit_frame(receiver, &unit)),
                },
                Some(BodyMode::Length(n)) => {
                    if c.unread().len() < n {
                        return frames;
                    }
                    let unit = self.read_exact(conn, n);
                    self.client(conn).body = None;
                    frames.extend(self.unit_frame(receiver, &unit));
                }
                Some(BodyMode::Empty) => c.body = None,
                Some(BodyMode::UntilClose) => {
                    panic!("a {receiver:?} response whose body runs to the close")
                }
            }
        }
    }

    /// The frame in one body unit; None for a streaming prelude.
    #[track_caller]
    fn unit_frame(&self, receiver: Receiver, unit: &[u8]) -> Option<String> {
        let frame = receiver.unwrap_frame(unit);
        if frame.is_none() {
            let prelude = unit.len() >= 1024
                || unit.starts_with(b"<!doctype html>")
                || unit.starts_with(b"\r\n");
            assert!(prelude, "not a {receiver:?} frame: {:?}", lossy(unit));
        }
        frame
    }

    /// The client writes an HTTP/1.1 request (see [`request_bytes`]).
    pub fn request(
        &mut self,
        conn: ConnectionId,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        let bytes = request_bytes(method, path, headers, body);
        self.send_bytes(conn, &bytes);
    }

    /// Consumes one complete response.
    ///
    /// # Panics
    ///
    /// If it has not completely arrived, or as [`parse_response`].
    #[track_caller]
    pub fn read_response(&mut self, conn: ConnectionId) -> Response {
        let closed = self.closed(conn).is_some();
        let c = self.client(conn);
        match parse_response(c.unread(), closed) {
            Some((r, used)) => {
                c.consumed += used;
                r
            }
            None => panic!("no complete response for {conn}: {:?}", lossy(c.unread())),
        }
    }

    /// Consumes the head of a response whose body is still coming; read the body with
    /// [`Harness::read_chunk`] or [`Harness::chunk`] (chunked) or [`Harness::read_exact`].
    ///
    /// # Panics
    ///
    /// If the head has not completely arrived, or as [`parse_head`].
    #[track_caller]
    pub fn read_head(&mut self, conn: ConnectionId) -> Response {
        let c = self.client(conn);
        let Some((r, used)) = parse_head(c.unread()) else {
            panic!("no complete head for {conn}: {:?}", lossy(c.unread()));
        };
        c.consumed += used;
        c.body = Some(r.mode);
        r
    }

    /// Consumes the next chunk of a chunked body whose head was read with
    /// [`Harness::read_head`]: its data, empty for the last chunk, or None if no complete
    /// chunk has arrived.
    ///
    /// # Panics
    ///
    /// If the body being read is not chunked, or as [`parse_chunk`].
    #[track_caller]
    pub fn read_chunk(&mut self, conn: ConnectionId) -> Option<Vec<u8>> {
        let c = self.client(conn);
        assert_eq!(
            c.body,
            Some(BodyMode::Chunked),
            "read_chunk on a body that is not chunked"
        );
        let (data, used) = parse_chunk(c.unread())?;
        c.consumed += used;
        if data.is_empty() {
            c.body = None;
        }
        Some(data)
    }

    /// Consumes the next chunk and returns it as text (empty for the last chunk).
    ///
    /// # Panics
    ///
    /// If no complete chunk has arrived or it is not UTF-8, or as [`Harness::read_chunk`].
    #[track_caller]
    pub fn chunk(&mut self, conn: ConnectionId) -> String {
        let Some(data) = self.read_chunk(conn) else {
            panic!(
                "no complete chunk for {conn}: {:?}",
                lossy(self.unread(conn))
            );
        };
        match String::from_utf8(data) {
            Ok(text) => text,
            Err(e) => panic!("a chunk that is not UTF-8: {:?}", lossy(e.as_bytes())),
        }
    }

    /// Opens a connection, sends one request and reads the complete response.
    ///
    /// # Panics
    ///
    /// If the response does not arrive at once, or as [`Harness::read_response`].
    #[track_caller]
    pub fn fetch(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let conn = self.connect();
        self.request(conn, method, path, headers, body);
        self.read_response(conn)
    }

    /// `GET path` on a new connection, as [`Harness::fetch`].
    #[track_caller]
    pub fn get(&mut self, path: &str) -> Response {
        self.fetch("GET", path, &[], b"")
    }

    /// `POST path` with `body` on a new connection, as [`Harness::fetch`].
    #[track_caller]
    pub fn post(&mut self, path: &str, body: &[u8]) -> Response {
        self.fetch("POST", path, &[], body)
    }

    /// An `xhr` poll of the session at `session_url` on a new connection; returns its body
    /// (one frame and a newline).
    ///
    /// # Panics
    ///
    /// If the poll does not complete at once with 200 (a poll that waits for messages is
    /// sent with [`Harness::request`] instead).
    #[track_caller]
    pub fn xhr(&mut self, session_url: &str) -> String {
        let r = self.post(&format!("{session_url}/xhr"), b"");
        assert_eq!(r.status, 200, "{}", r.head);
        r.text().to_string()
    }

    /// An `xhr_send` of `body` (a JSON array of strings, see [`super::client_messages`]) to
    /// the session at `session_url`, on a new connection.
    ///
    /// # Panics
    ///
    /// If it is not answered at once with an empty 204.
    #[track_caller]
    pub fn xhr_send(&mut self, session_url: &str, body: &str) {
        let r = self.post(&format!("{session_url}/xhr_send"), body.as_bytes());
        assert_eq!((r.status, r.text()), (204, ""), "{}", r.head);
    }

    /// Opens an `xhr_streaming` receiver for the session at `session_url` and reads its head
    /// and 2 KiB prelude; the frames follow, one chunk each ([`Harness::chunk`]).
    ///
    /// # Panics
    ///
    /// If the head is not a 200 or the prelude has not arrived.
    #[track_caller]
    pub fn open_streaming(&mut self, session_url: &str) -> ConnectionId {
        let conn = self.connect();
        let path = format!("{session_url}/xhr_streaming");
        self.request(conn, "POST", &path, &[], b"");
        let head = self.read_head(conn);
        assert_eq!(head.status, 200, "{}", head.head);
        let prelude = self.chunk(conn);
        assert_eq!(prelude, format!("{}\n", "h".repeat(2048)));
        conn
    }
}
