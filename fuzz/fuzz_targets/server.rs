//! The whole `Server`, driven by a program of adapter and application operations.
//!
//! The input is a program in a small byte code (decoded by hand, so seeds can be written by
//! hand and stay valid whatever the `arbitrary` crate does; `seeds/make_seeds.py` writes the
//! committed ones): a configuration with small limits, so every bound gets hit, then
//! operations: accept a connection; send it a well-formed request from a menu of every
//! SockJS URL (with chosen session ids, callbacks, bodies, versions, headers and splits),
//! WebSocket frames, or raw bytes; write its output (all of it, or a partial write of `k`
//! bytes); end its input (`handle_eof`, the peer's half-close); report it closed; move the
//! virtual clock (waking at every deadline, or late); and, as the application, send to a
//! session, send to many, close one, or shut down. Output the harness does not write stays
//! in the core, as it does for a peer that is not reading.
//!
//! Every invariant of `sockjs_fuzz::harness` is checked after every operation, and at the
//! end every connection's output is written out, every connection closed and the clock run
//! out: every session that opened must have closed, and nothing may be left.
//!
//! The byte code (`u16` little-endian; `blob` is a length byte and that many bytes, cut
//! short at the end of the input; `str` is a blob read as UTF-8, lossily):
//!
//! ```text
//! program  = [0xff security(8 bytes)] setup(13 bytes) op*
//! security = echo-options strict-options per-peer-connections per-peer-sessions
//!            authorization-timeout linger-timeout shutdown-timeout flags (see `peer::Security`)
//! setup    = heartbeat disconnect response_limit ping_timeout max_sessions max_connections
//!            max_queued_bytes max_queued_messages max_unflushed max_frame max_message
//!            max_body max_head                        (one byte each, scaled, as
//!            `sockjs_fuzz::setup` says: bit 7 of max_head turns permessage-deflate on)
//! op       = 0 accept | 1 conn req split:blob | 2 conn n frame{n} split:blob
//!          | 3 conn raw:blob | 4 conn amount:u16 (write: 0 until no output is left,
//!            else one write of at most that many bytes) | 5 conn (closed)
//!          | 6 millis:u16 step | 7 session text:str | 8 n session{n} text:str
//!          | 9 session code:u16 reason:str | 10 shutdown | 11 conn (eof)
//!          | 12 conn kind status:u16 body:str (authorize: kind bit 0 any connection, else
//!            one with an authorization pending; bit 1 refuse with status and body)
//!          | 13 conn mode hops:blob cookie (what the connection's requests carry from now
//!            on: `peer::Profile`) | 14 addr (accept from `peer::ADDRESSES[addr % 9]`)
//!                                                            (tag taken modulo 15)
//! req      = kind endpoint session-id server-id flags kind-fields
//!            session-id, server-id: a byte; from 0xf0 up a str follows and is the id
//!            flags: bit 0 HTTP/1.0, bits 1-2 Connection (-, close, keep-alive),
//!            bits 3-4 Origin (-, allowed, null, other), bit 5 cookie, bit 6 Expect:
//!            100-continue, bit 7 trailing slash
//! kind     = 0 greeting | 1 info | 2 info OPTIONS | 3 iframe bits | 4 xhr | 5 xhr_send body
//!          | 6 xhr_streaming | 7 eventsource | 8 htmlfile callback | 9 jsonp callback
//!          | 10 jsonp_send body form | 11 websocket version flags (bit 0 raw, bit 1 offer
//!            permessage-deflate) | 12 OPTIONS transport
//!          | 13 PUT transport | 14 unknown path:str             (taken modulo 15)
//! body     = mode: 0 JSON array of n str, n first | 1 raw blob | 2 none; bit 7: chunked,
//!            chunk size byte follows the mode
//! callback = 0 none | 1 valid | 2 too long | 3 str
//! version  = 0 13 | 1 8 | 2 hixie-76 number1:u32 number2:u32 spaces key3(8 bytes)
//!          | 3 unsupported | 4 no Upgrade header | 5 no Connection header
//! frame    = kind flags mask(4 bytes) payload; flags: bit 0 not final, bit 1 unmasked,
//!            bits 2-4 RSV, bit 5 compress the payload (valid DEFLATE, RSV1 set);
//!            kind: 0 SockJS array of n str | 1 text str | 2 binary blob
//!          | 3 ping blob | 4 pong blob | 5 close has-payload [code:u16 reason:str]
//!          | 6 continuation blob | 7 opcode byte blob
//! ```
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sockjs_core::bytes::BytesMut;
use sockjs_core::ws::deflate::{DeflateConfig, Deflater, negotiate};
use sockjs_core::{Authorization, Config};
use sockjs_fuzz::client::{BodyFraming, Request, hixie_key, hixie_text, ws_frame};
use sockjs_fuzz::harness::Harness;
use sockjs_fuzz::peer::{self, Profile, Security};
use sockjs_fuzz::split::chunks;

/// Operations one program may run; longer inputs are cut here to keep executions fast.
const MAX_OPS: usize = 64;

#[derive(Debug)]
struct Program {
    setup: Setup,
    security: Security,
    ops: Vec<Op>,
}

/// The configuration, one byte per setting, scaled to small values so limits are reached.
#[derive(Debug)]
struct Setup([u8; 13]);

impl Setup {
    fn config(&self, security: &Security) -> Config {
        sockjs_fuzz::setup::config(self.0, security)
    }
}

#[derive(Debug)]
enum Op {
    Accept,
    Request {
        conn: u8,
        req: Box<Req>,
        split: Vec<u8>,
    },
    Frames {
        conn: u8,
        frames: Vec<Frame>,
        split: Vec<u8>,
    },
    Raw {
        conn: u8,
        bytes: Vec<u8>,
    },
    Written {
        conn: u8,
        amount: u16,
    },
    Closed {
        conn: u8,
    },
    Eof {
        conn: u8,
    },
    Advance {
        millis: u16,
        step: bool,
    },
    Send {
        session: u8,
        text: String,
    },
    SendMany {
        sessions: Vec<u8>,
        text: String,
    },
    Close {
        session: u8,
        code: u16,
        reason: String,
    },
    Shutdown,
    Authorize {
        conn: u8,
        kind: u8,
        status: u16,
        body: String,
    },
    Profile {
        conn: u8,
        profile: Profile,
    },
    AcceptFrom {
        addr: u8,
    },
}

/// A request from the menu, with the details a client varies.
#[derive(Debug)]
struct Req {
    kind: Kind,
    /// `/echo`, `/strict` (cookies, origin list, no WebSocket), or an unknown prefix.
    endpoint: u8,
    session: SessionIdChoice,
    server_id: ServerIdChoice,
    http10: bool,
    connection: ConnectionHeader,
    origin: OriginChoice,
    cookie: bool,
    expect_continue: bool,
    trailing_slash: bool,
}

#[derive(Debug)]
enum Kind {
    Greeting,
    Info,
    InfoOptions,
    Iframe {
        versioned: bool,
        if_none_match: bool,
    },
    Xhr,
    XhrSend {
        body: Body,
    },
    XhrStreaming,
    EventSource,
    HtmlFile {
        callback: Callback,
    },
    Jsonp {
        callback: Callback,
    },
    JsonpSend {
        body: Body,
        form: bool,
    },
    WebSocket {
        version: WsVersion,
        raw: bool,
        deflate: bool,
    },
    SessionOptions {
        transport: u8,
    },
    WrongMethod {
        transport: u8,
    },
    Unknown {
        path: String,
    },
}

#[derive(Debug)]
enum Body {
    Messages {
        messages: Vec<String>,
        chunked: Option<u8>,
    },
    Raw {
        bytes: Vec<u8>,
        chunked: Option<u8>,
    },
    Empty,
}

#[derive(Debug)]
enum Callback {
    Missing,
    Good,
    Long,
    Custom(String),
}

#[derive(Debug)]
enum WsVersion {
    V13,
    V8,
    Hixie {
        number1: u32,
        number2: u32,
        spaces: u8,
        key3: [u8; 8],
    },
    Unsupported,
    NoUpgradeHeader,
    NoConnectionHeader,
}

#[derive(Debug)]
enum SessionIdChoice {
    /// One of a few ids, so requests meet the same sessions.
    Known(u8),
    Custom(String),
}

#[derive(Debug)]
enum ServerIdChoice {
    Usual,
    Custom(String),
}

#[derive(Debug)]
enum ConnectionHeader {
    Default,
    Close,
    KeepAlive,
}

#[derive(Debug)]
enum OriginChoice {
    None,
    Good,
    Null,
    Other,
}

/// A WebSocket frame; on a hixie-76 connection only its text is sent, as a hixie-76 frame.
#[derive(Debug)]
struct Frame {
    kind: FrameKind,
    fin: bool,
    rsv: u8,
    compress: bool,
    mask: [u8; 4],
    unmasked: bool,
}

#[derive(Debug)]
enum FrameKind {
    /// A SockJS message array, JSON-encoded.
    Messages(Vec<String>),
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
    Continuation(Vec<u8>),
    Opcode(u8, Vec<u8>),
}

const TRANSPORTS: [&str; 9] = [
    "xhr",
    "xhr_send",
    "xhr_streaming",
    "eventsource",
    "htmlfile",
    "jsonp",
    "jsonp_send",
    "websocket",
    "xhr;x",
];

/// What the last upgrade sent on a connection asked for, so frames follow its framing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    Rfc6455,
    Hixie76,
}

/// Reads the byte code; past the end of the input every read gives zeros or nothing.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.data.split_first() else {
            return 0;
        };
        self.data = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.u8())
    }

    fn blob(&mut self) -> Vec<u8> {
        let n = usize::from(self.u8()).min(self.data.len());
        let (blob, rest) = self.data.split_at(n);
        self.data = rest;
        blob.to_vec()
    }

    fn str(&mut self) -> String {
        String::from_utf8_lossy(&self.blob()).into_owned()
    }

    fn strs(&mut self) -> Vec<String> {
        let n = self.u8();
        (0..n).map(|_| self.str()).collect()
    }
}

fn decode(input: &[u8]) -> Program {
    let (security, input) = Security::decode(input);
    let mut r = Reader { data: input };
    let setup = Setup(r.array());
    let mut ops = Vec::new();
    while !r.is_empty() && ops.len() < MAX_OPS {
        ops.push(decode_op(&mut r));
    }
    Program {
        setup,
        security,
        ops,
    }
}

fn decode_op(r: &mut Reader<'_>) -> Op {
    match r.u8() % 15 {
        0 => Op::Accept,
        1 => {
            let conn = r.u8();
            let req = Box::new(decode_req(r));
            Op::Request {
                conn,
                req,
                split: r.blob(),
            }
        }
        2 => {
            let conn = r.u8();
            let n = r.u8();
            let frames = (0..n).map(|_| decode_frame(r)).collect();
            Op::Frames {
                conn,
                frames,
                split: r.blob(),
            }
        }
        3 => Op::Raw {
            conn: r.u8(),
            bytes: r.blob(),
        },
        4 => Op::Written {
            conn: r.u8(),
            amount: r.u16(),
        },
        5 => Op::Closed { conn: r.u8() },
        6 => Op::Advance {
            millis: r.u16(),
            step: r.u8() & 1 == 0,
        },
        7 => Op::Send {
            session: r.u8(),
            text: r.str(),
        },
        8 => {
            let n = r.u8();
            let sessions = (0..n).map(|_| r.u8()).collect();
            Op::SendMany {
                sessions,
                text: r.str(),
            }
        }
        9 => Op::Close {
            session: r.u8(),
            code: r.u16(),
            reason: r.str(),
        },
        10 => Op::Shutdown,
        11 => Op::Eof { conn: r.u8() },
        12 => Op::Authorize {
            conn: r.u8(),
            kind: r.u8(),
            status: r.u16(),
            body: r.str(),
        },
        13 => {
            let conn = r.u8();
            let mode = r.u8();
            let hops = r.blob();
            Op::Profile {
                conn,
                profile: Profile::decode(mode, &hops, r.u8()),
            }
        }
        _ => Op::AcceptFrom { addr: r.u8() },
    }
}

fn decode_req(r: &mut Reader<'_>) -> Req {
    let kind = r.u8() % 15;
    let endpoint = r.u8();
    let session = match r.u8() {
        n @ 0..0xf0 => SessionIdChoice::Known(n),
        _ => SessionIdChoice::Custom(r.str()),
    };
    let server_id = match r.u8() {
        0..0xf0 => ServerIdChoice::Usual,
        _ => ServerIdChoice::Custom(r.str()),
    };
    let flags = r.u8();
    let kind = match kind {
        0 => Kind::Greeting,
        1 => Kind::Info,
        2 => Kind::InfoOptions,
        3 => {
            let bits = r.u8();
            Kind::Iframe {
                versioned: bits & 1 != 0,
                if_none_match: bits & 2 != 0,
            }
        }
        4 => Kind::Xhr,
        5 => Kind::XhrSend {
            body: decode_body(r),
        },
        6 => Kind::XhrStreaming,
        7 => Kind::EventSource,
        8 => Kind::HtmlFile {
            callback: decode_callback(r),
        },
        9 => Kind::Jsonp {
            callback: decode_callback(r),
        },
        10 => {
            let body = decode_body(r);
            Kind::JsonpSend {
                body,
                form: r.u8() & 1 != 0,
            }
        }
        11 => {
            let version = match r.u8() % 6 {
                0 => WsVersion::V13,
                1 => WsVersion::V8,
                2 => WsVersion::Hixie {
                    number1: r.u32(),
                    number2: r.u32(),
                    spaces: r.u8(),
                    key3: r.array(),
                },
                3 => WsVersion::Unsupported,
                4 => WsVersion::NoUpgradeHeader,
                _ => WsVersion::NoConnectionHeader,
            };
            let flags = r.u8();
            Kind::WebSocket {
                version,
                raw: flags & 1 != 0,
                deflate: flags & 2 != 0,
            }
        }
        12 => Kind::SessionOptions { transport: r.u8() },
        13 => Kind::WrongMethod { transport: r.u8() },
        _ => Kind::Unknown { path: r.str() },
    };
    Req {
        kind,
        endpoint,
        session,
        server_id,
        http10: flags & 1 != 0,
        connection: match flags >> 1 & 3 {
            1 => ConnectionHeader::Close,
            2 => ConnectionHeader::KeepAlive,
            _ => ConnectionHeader::Default,
        },
        origin: match flags >> 3 & 3 {
            0 => OriginChoice::None,
            1 => OriginChoice::Good,
            2 => OriginChoice::Null,
            _ => OriginChoice::Other,
        },
        cookie: flags & 0x20 != 0,
        expect_continue: flags & 0x40 != 0,
        trailing_slash: flags & 0x80 != 0,
    }
}

fn decode_body(r: &mut Reader<'_>) -> Body {
    let mode = r.u8();
    let chunked = (mode & 0x80 != 0).then(|| r.u8());
    match mode & 0x7f {
        0 => Body::Messages {
            messages: r.strs(),
            chunked,
        },
        1 => Body::Raw {
            bytes: r.blob(),
            chunked,
        },
        _ => Body::Empty,
    }
}

fn decode_callback(r: &mut Reader<'_>) -> Callback {
    match r.u8() % 4 {
        0 => Callback::Missing,
        1 => Callback::Good,
        2 => Callback::Long,
        _ => Callback::Custom(r.str()),
    }
}

fn decode_frame(r: &mut Reader<'_>) -> Frame {
    let kind = r.u8() % 8;
    let flags = r.u8();
    let mask = r.array();
    let kind = match kind {
        0 => FrameKind::Messages(r.strs()),
        1 => FrameKind::Text(r.str()),
        2 => FrameKind::Binary(r.blob()),
        3 => FrameKind::Ping(r.blob()),
        4 => FrameKind::Pong(r.blob()),
        5 => FrameKind::Close((r.u8() & 1 != 0).then(|| (r.u16(), r.str()))),
        6 => FrameKind::Continuation(r.blob()),
        _ => FrameKind::Opcode(r.u8(), r.blob()),
    };
    Frame {
        kind,
        fin: flags & 1 == 0,
        unmasked: flags & 2 != 0,
        rsv: flags >> 2 & 7,
        compress: flags & 0x20 != 0,
        mask,
    }
}

fn callback_query(c: &Callback) -> String {
    match c {
        Callback::Missing => String::new(),
        Callback::Good => "?c=cb_1.x-y".to_string(),
        Callback::Long => format!("?callback={}", "a".repeat(40)),
        Callback::Custom(s) => format!("?c={s}"),
    }
}

fn body_bytes(b: &Body) -> Option<(Vec<u8>, BodyFraming)> {
    let framing = |c: &Option<u8>| match c {
        None => BodyFraming::Length,
        Some(n) => BodyFraming::Chunked(usize::from(*n) + 1),
    };
    match b {
        Body::Messages { messages, chunked } => Some((
            serde_json::to_vec(messages).unwrap_or_default(),
            framing(chunked),
        )),
        Body::Raw { bytes, chunked } => Some((bytes.clone(), framing(chunked))),
        Body::Empty => None,
    }
}

/// Percent-encodes every byte but letters and digits.
fn form_encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 3);
    for &b in data {
        if b.is_ascii_alphanumeric() {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// A request's bytes, the framing its frames use if it is an upgrade, and its header lines.
type Rendered = (Vec<u8>, Option<Framing>, Vec<(String, Vec<u8>)>);

fn render(r: &Req, profile: &Profile) -> Rendered {
    let prefix = ["/echo", "/strict", "/nowhere"][usize::from(r.endpoint % 3)];
    let server = match &r.server_id {
        ServerIdChoice::Usual => "000".to_string(),
        ServerIdChoice::Custom(s) => s.chars().take(8).collect(),
    };
    let session = match &r.session {
        SessionIdChoice::Known(n) => ["a", "b", "c", "d"][usize::from(n % 4)].to_string(),
        SessionIdChoice::Custom(s) => s.chars().take(12).collect(),
    };
    let url = |transport: &str| format!("{prefix}/{server}/{session}/{transport}");
    let slash = if r.trailing_slash { "/" } else { "" };
    let mut framing = None;
    let mut req = match &r.kind {
        Kind::Greeting => Request::new("GET", format!("{prefix}{slash}")),
        Kind::Info => Request::new("GET", format!("{prefix}/info{slash}")),
        Kind::InfoOptions => Request::new("OPTIONS", format!("{prefix}/info"))
            .header("Access-Control-Request-Headers", "x-a, x-b"),
        Kind::Iframe {
            versioned,
            if_none_match,
        } => {
            let page = if *versioned {
                "iframe-1.2.3.html"
            } else {
                "iframe.html"
            };
            let req = Request::new("GET", format!("{prefix}/{page}"));
            if *if_none_match {
                req.header("If-None-Match", "\"x\"")
            } else {
                req
            }
        }
        Kind::Xhr => Request::new("POST", url("xhr")),
        Kind::XhrSend { body } => {
            let mut req = Request::new("POST", url("xhr_send"));
            req.body = body_bytes(body);
            req
        }
        Kind::XhrStreaming => Request::new("POST", url("xhr_streaming")),
        Kind::EventSource => Request::new("GET", url("eventsource")),
        Kind::HtmlFile { callback } => Request::new(
            "GET",
            format!("{}{}", url("htmlfile"), callback_query(callback)),
        ),
        Kind::Jsonp { callback } => Request::new(
            "GET",
            format!("{}{}", url("jsonp"), callback_query(callback)),
        ),
        Kind::JsonpSend { body, form } => {
            let mut req = Request::new("POST", url("jsonp_send"));
            req.body = body_bytes(body);
            if *form {
                req = req.header("Content-Type", "application/x-www-form-urlencoded");
                if let Some((data, framing)) = req.body.take() {
                    let mut encoded = b"d=".to_vec();
                    encoded.extend_from_slice(&form_encode(&data));
                    req.body = Some((encoded, framing));
                }
            }
            req
        }
        Kind::WebSocket {
            version,
            raw,
            deflate,
        } => {
            let target = if *raw {
                format!("{prefix}/websocket")
            } else {
                url("websocket")
            };
            let mut req = Request::new("GET", target).header("Host", "127.0.0.1");
            if !matches!(version, WsVersion::NoUpgradeHeader) {
                req = req.header("Upgrade", "websocket");
            }
            if !matches!(version, WsVersion::NoConnectionHeader) {
                req = req.header("Connection", "keep-alive, Upgrade");
            }
            if *deflate {
                req = req.header(
                    "Sec-WebSocket-Extensions",
                    "permessage-deflate; client_max_window_bits",
                );
            }
            match version {
                WsVersion::V13 | WsVersion::NoUpgradeHeader | WsVersion::NoConnectionHeader => {
                    framing = Some(Framing::Rfc6455);
                    req = req
                        .header("Sec-WebSocket-Version", "13")
                        .header("Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw==");
                }
                WsVersion::V8 => {
                    framing = Some(Framing::Rfc6455);
                    req = req
                        .header("Sec-WebSocket-Version", "8")
                        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
                }
                WsVersion::Unsupported => {
                    req = req.header("Sec-WebSocket-Version", "12");
                }
                WsVersion::Hixie {
                    number1,
                    number2,
                    spaces,
                    key3,
                } => {
                    framing = Some(Framing::Hixie76);
                    req = req
                        .header("Sec-WebSocket-Key1", hixie_key(*number1, *spaces))
                        .header(
                            "Sec-WebSocket-Key2",
                            hixie_key(*number2, spaces.wrapping_add(1)),
                        );
                    let req = add_headers(req, r, profile);
                    let mut bytes = req.to_bytes();
                    bytes.extend_from_slice(key3);
                    return (bytes, framing, req.headers);
                }
            }
            req
        }
        Kind::SessionOptions { transport } => {
            Request::new("OPTIONS", url(TRANSPORTS[usize::from(transport % 9)]))
        }
        Kind::WrongMethod { transport } => {
            Request::new("PUT", url(TRANSPORTS[usize::from(transport % 9)]))
        }
        Kind::Unknown { path } => {
            let path: String = path
                .chars()
                .filter(|c| !c.is_whitespace())
                .take(40)
                .collect();
            Request::new("GET", format!("{prefix}/{path}"))
        }
    };
    req = add_headers(req, r, profile);
    (req.to_bytes(), framing, req.headers)
}

/// The headers every kind of request may carry.
fn add_headers(mut req: Request, r: &Req, profile: &Profile) -> Request {
    req.http10 = r.http10;
    req = match r.connection {
        ConnectionHeader::Default => req,
        ConnectionHeader::Close => req.header("Connection", "close"),
        ConnectionHeader::KeepAlive => req.header("Connection", "keep-alive"),
    };
    req = match r.origin {
        OriginChoice::None => req,
        OriginChoice::Good => req.header("Origin", "http://good.example"),
        OriginChoice::Null => req.header("Origin", "null"),
        OriginChoice::Other => req.header("Origin", "http://evil.example"),
    };
    if r.cookie {
        req = req.header("Cookie", "JSESSIONID=abc123; other=1");
    }
    if r.expect_continue {
        req = req.header("Expect", "100-continue");
    }
    for (name, value) in profile.headers() {
        req = req.header(name, value);
    }
    req
}

fn render_frame(f: &Frame, framing: Framing) -> Vec<u8> {
    if framing == Framing::Hixie76 {
        return match &f.kind {
            FrameKind::Messages(m) => hixie_text(&serde_json::to_vec(m).unwrap_or_default()),
            FrameKind::Text(t) => hixie_text(t.as_bytes()),
            FrameKind::Close(_) => vec![0xff, 0x00],
            FrameKind::Binary(b) | FrameKind::Continuation(b) | FrameKind::Opcode(_, b) => {
                // A length-prefixed frame of another type, which hixie-76 skips.
                let mut out = vec![0x80, (b.len() % 128) as u8];
                out.extend_from_slice(&b[..b.len() % 128]);
                out
            }
            FrameKind::Ping(b) | FrameKind::Pong(b) => hixie_text(b),
        };
    }
    let mask = (!f.unmasked).then_some(f.mask);
    let (opcode, payload) = match &f.kind {
        FrameKind::Messages(m) => (1, serde_json::to_vec(m).unwrap_or_default()),
        FrameKind::Text(t) => (1, t.as_bytes().to_vec()),
        FrameKind::Binary(b) => (2, b.clone()),
        FrameKind::Ping(b) => (9, b.clone()),
        FrameKind::Pong(b) => (10, b.clone()),
        FrameKind::Close(None) => (8, Vec::new()),
        FrameKind::Close(Some((code, reason))) => {
            let mut p = code.to_be_bytes().to_vec();
            p.extend_from_slice(reason.as_bytes());
            (8, p)
        }
        FrameKind::Continuation(b) => (0, b.clone()),
        FrameKind::Opcode(op, b) => (*op, b.clone()),
    };
    if f.compress {
        // Compressed on its own, as a client without context takeover does: valid whatever
        // was agreed.
        let params = negotiate(
            &DeflateConfig::default(),
            [&b"permessage-deflate; server_no_context_takeover"[..]],
        )
        .expect("a valid offer")
        .params;
        let mut deflater = Deflater::new(&params, &DeflateConfig::default());
        let mut compressed = BytesMut::new();
        if deflater.compress(&[&payload], &mut compressed) {
            return ws_frame(opcode, f.fin, f.rsv | 4, mask, &compressed);
        }
    }
    ws_frame(opcode, f.fin, f.rsv, mask, &payload)
}

fuzz_target!(|input: &[u8]| {
    let program = decode(input);
    let mut h = Harness::new(program.setup.config(&program.security));
    let mut framing: Vec<Framing> = Vec::new();
    // What each connection's requests say about their client (`Op::Profile`).
    let mut profiles: Vec<Profile> = Vec::new();
    for op in &program.ops {
        // Operations on a connection or session pick one among those there are.
        let conn = |h: &mut Harness, framing: &mut Vec<Framing>, n: u8| {
            if h.conns.is_empty() {
                h.accept();
                framing.push(Framing::Rfc6455);
            }
            usize::from(n) % h.conns.len()
        };
        profiles.resize_with(h.conns.len().max(1), Profile::default);
        match op {
            Op::Accept => {
                h.accept();
                framing.push(Framing::Rfc6455);
            }
            Op::AcceptFrom { addr } => {
                h.accept_from(peer::ADDRESSES[usize::from(*addr) % peer::ADDRESSES.len()]);
                framing.push(Framing::Rfc6455);
            }
            Op::Profile { conn: n, profile } => {
                let i = conn(&mut h, &mut framing, *n);
                profiles.resize_with(h.conns.len(), Profile::default);
                profiles[i] = profile.clone();
            }
            Op::Authorize {
                conn: n,
                kind,
                status,
                body,
            } => {
                // Bit 0: pick among the connections with an authorization pending (else
                // any connection, answered or gone or never held); bit 1: refuse.
                let pending = h.pending_authorizations();
                let i = if kind & 1 == 0 && !pending.is_empty() {
                    pending[usize::from(*n) % pending.len()]
                } else {
                    conn(&mut h, &mut framing, *n)
                };
                let answer = if kind & 2 == 0 {
                    Authorization::Accept
                } else {
                    Authorization::Refuse {
                        status: *status,
                        body: body.clone(),
                    }
                };
                h.authorize(i, answer);
            }
            Op::Request {
                conn: n,
                req,
                split,
            } => {
                let i = conn(&mut h, &mut framing, *n);
                profiles.resize_with(h.conns.len(), Profile::default);
                let (bytes, upgrade, headers) = render(req, &profiles[i]);
                h.note_request(i, &headers);
                if let Some(f) = upgrade {
                    framing[i] = f;
                }
                for piece in chunks(&bytes, split) {
                    h.feed(i, piece);
                }
            }
            Op::Frames {
                conn: n,
                frames,
                split,
            } => {
                let i = conn(&mut h, &mut framing, *n);
                h.note_raw(i);
                let bytes: Vec<u8> = frames
                    .iter()
                    .flat_map(|f| render_frame(f, framing[i]))
                    .collect();
                for piece in chunks(&bytes, split) {
                    h.feed(i, piece);
                }
            }
            Op::Raw { conn: n, bytes } => {
                let i = conn(&mut h, &mut framing, *n);
                h.note_raw(i);
                h.feed(i, bytes);
            }
            Op::Written { conn: n, amount } => {
                let i = conn(&mut h, &mut framing, *n);
                match amount {
                    0 => h.write_all(i),
                    &k => {
                        h.write(i, usize::from(k));
                    }
                }
            }
            Op::Closed { conn: n } => {
                let i = conn(&mut h, &mut framing, *n);
                h.closed(i);
            }
            Op::Eof { conn: n } => {
                let i = conn(&mut h, &mut framing, *n);
                h.eof(i);
            }
            Op::Advance { millis, step } => {
                h.advance(Duration::from_millis(u64::from(*millis % 20_000)), *step);
            }
            Op::Send { session, text } => {
                if !h.sessions.is_empty() {
                    let j = usize::from(*session) % h.sessions.len();
                    h.send(j, text);
                }
            }
            Op::SendMany { sessions, text } => {
                if !h.sessions.is_empty() {
                    let n = h.sessions.len();
                    let js: Vec<usize> = sessions.iter().map(|&s| usize::from(s) % n).collect();
                    h.send_many(&js, text);
                }
            }
            Op::Close {
                session,
                code,
                reason,
            } => {
                if !h.sessions.is_empty() {
                    let j = usize::from(*session) % h.sessions.len();
                    let reason: String = reason.chars().take(64).collect();
                    h.close(j, *code, &reason);
                }
            }
            Op::Shutdown => h.shutdown(),
        }
    }
    h.finish();
});
