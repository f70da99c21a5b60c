//! The request-level entry (`Server::handle_request`, "exchanges"), driven by a program of
//! host and application operations, beside connections the core frames itself.
//!
//! The input is a program in a small byte code: the configuration of `sockjs_fuzz::setup`
//! (13 bytes, as for the `server` target), then operations: hand over a request from a menu of every
//! SockJS URL (the request a host's HTTP stack would parse, varied by flags: HTTP/1.0, an
//! origin, a cookie, an extra header, a body cut at `max_body_size` with `body_too_large`,
//! an RFC 8441 extended CONNECT), or send the same request's bytes on an accepted
//! connection; bytes on a connection (an upgraded stream: hixie-76 key bytes, WebSocket
//! frames, or raw bytes); take its body (all, or `k` bytes); report it gone or at end of
//! stream; move the virtual clock; send to, or close, a session; shut down.
//!
//! Every invariant of `sockjs_fuzz::harness` is checked after every operation, with those
//! of exchanges: `Io::Respond` once, before any `Io::Write`, with a head that holds no
//! header the host owns (`Content-Length`, `Transfer-Encoding`, `Date`, `Keep-Alive`, a
//! `Connection` but `Upgrade` on a 101); body bytes only after the head, never past a
//! `Length`, all of it before a graceful `Io::Close`, none for `Empty`; no `Io::Shutdown`
//! before an upgrade; output within the same bound as on any connection; at the end, what
//! each upgraded WebSocket's client received is read back.
//!
//! ```text
//! program = [0xff security(8 bytes)] setup(13 bytes) op*   (security: `peer::Security`)
//! op      = 0 template session flags body:blob extra:blob  (an exchange)
//!         | 1 template session flags body:blob extra:blob  (the same bytes, accepted)
//!         | 2 conn raw:blob | 3 conn kind text:str (a frame: 0 SockJS array of the text,
//!           1 text, 2 close, 3 ping; hixie-76 text on a hixie connection)
//!         | 4 conn amount:u16 (0: write all) | 5 conn (gone) | 6 conn (eof)
//!         | 7 millis:u16 step | 8 session text:str | 9 session code:u16 reason:str
//!         | 10 shutdown | 11 conn kind status:u16 body:str (authorize: kind bit 0 any
//!           connection, else one with an authorization pending; bit 1 refuse)
//!         | 12 mode hops:blob cookie (what later requests carry: `peer::Profile`)
//!         | 13 addr (later exchanges and connections come from `peer::ADDRESSES[addr % 9]`)
//!                                                           (tag taken modulo 14)
//! flags   = bit 0 HTTP/1.0, bit 1 Origin good, bit 2 Origin other, bit 3 cookie,
//!           bit 4 Connection: close, bit 5 the extra header, bit 6 body too large,
//!           bit 7 extended CONNECT (on WebSocket templates)
//! ```
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sockjs_core::bytes::Bytes;
use sockjs_core::http::{DecoderLimits, Method, RequestDecoder};
use sockjs_core::{Authorization, RequestExtras};
use sockjs_fuzz::client::{Request, hixie_key, hixie_text, ws_frame};
use sockjs_fuzz::harness::Harness;
use sockjs_fuzz::peer::{self, Profile, Security};

/// Operations one program may run.
const MAX_OPS: usize = 64;

/// The request menu: method, path under the endpoint (`{s}` is the session id), WebSocket
/// handshake kind (0 none, 1 RFC 6455, 2 hixie-76).
const TEMPLATES: &[(&str, &str, u8)] = &[
    ("GET", "", 0),
    ("GET", "/info", 0),
    ("OPTIONS", "/info", 0),
    ("GET", "/iframe.html", 0),
    ("POST", "/000/{s}/xhr", 0),
    ("POST", "/000/{s}/xhr_send", 0),
    ("OPTIONS", "/000/{s}/xhr_send", 0),
    ("POST", "/000/{s}/xhr_streaming", 0),
    ("GET", "/000/{s}/eventsource", 0),
    ("GET", "/000/{s}/htmlfile?c=cb", 0),
    ("GET", "/000/{s}/htmlfile", 0),
    ("GET", "/000/{s}/jsonp?c=cb", 0),
    ("POST", "/000/{s}/jsonp_send", 0),
    ("GET", "/000/{s}/websocket", 1),
    ("GET", "/websocket", 1),
    ("GET", "/000/{s}/websocket", 2),
    ("GET", "/websocket", 2),
    ("PUT", "/info", 0),
    ("GET", "/nothing/here", 0),
    ("POST", "/000/{s}/websocket", 1),
];

/// Reads the byte code; past the end of the input every read gives zeros or nothing.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
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

    fn blob(&mut self) -> Vec<u8> {
        let n = usize::from(self.u8()).min(self.data.len());
        let (blob, rest) = self.data.split_at(n);
        self.data = rest;
        blob.to_vec()
    }

    fn str(&mut self) -> String {
        String::from_utf8_lossy(&self.blob()).into_owned()
    }
}

/// A request from the menu: its bytes as a client sends them, whether its body is to be cut
/// short by the host, whether it is an extended CONNECT, and its WebSocket kind.
struct Built {
    bytes: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    too_large: bool,
    connect: bool,
    ws: u8,
}

fn build(r: &mut Reader<'_>, profile: &Profile) -> Built {
    let (method, path, ws) = TEMPLATES[usize::from(r.u8()) % TEMPLATES.len()];
    let session = r.u8();
    let flags = r.u8();
    let body = r.blob();
    let extra = r.blob();
    let prefix = if session & 0x80 != 0 {
        "/strict"
    } else {
        "/echo"
    };
    let target = format!(
        "{prefix}{}",
        path.replace("{s}", &format!("s{}", session % 4))
    );
    let connect = flags & 0x80 != 0 && ws == 1;
    let mut req = Request::new(if connect { "CONNECT" } else { method }, target);
    req.http10 = flags & 1 != 0;
    req = req.header("Host", "x.example");
    if flags & 2 != 0 {
        req = req.header("Origin", "http://good.example");
    }
    if flags & 4 != 0 {
        req = req.header("Origin", "http://evil.example");
    }
    if flags & 8 != 0 {
        req = req.header("Cookie", "JSESSIONID=abc; b=c");
    }
    if flags & 16 != 0 {
        req = req.header("Connection", "close");
    }
    match ws {
        1 if connect => req = req.header("Sec-WebSocket-Version", "13"),
        1 => {
            req = req
                .header("Upgrade", "websocket")
                .header("Connection", "Upgrade")
                .header("Sec-WebSocket-Version", "13")
                .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        }
        2 => {
            req = req
                .header("Upgrade", "WebSocket")
                .header("Connection", "Upgrade")
                .header("Sec-WebSocket-Key1", hixie_key(155_712_099, 3))
                .header("Sec-WebSocket-Key2", hixie_key(173_347_027, 4));
        }
        _ => {}
    }
    if flags & 32 != 0 {
        let value: Vec<u8> = extra
            .iter()
            .copied()
            .filter(|b| b.is_ascii_graphic() || *b == b' ')
            .collect();
        req = req.header("X-Extra", value);
    }
    for (name, value) in profile.headers() {
        req = req.header(name, value);
    }
    if !body.is_empty() {
        req.body = Some((body, sockjs_fuzz::client::BodyFraming::Length));
    }
    Built {
        bytes: req.to_bytes(),
        headers: req.headers.clone(),
        too_large: flags & 0x40 != 0,
        connect,
        ws,
    }
}

/// The request a host's HTTP stack would hand over for `b`, if the bytes parse.
fn parsed(b: &Built, max_body: usize) -> Option<(sockjs_core::http::Request, RequestExtras)> {
    let mut d = RequestDecoder::new(DecoderLimits {
        max_head_size: usize::MAX,
        max_headers: 64,
        max_body_size: usize::MAX,
    });
    d.feed(&b.bytes);
    let mut request = d.decode().ok()??;
    let mut extras = RequestExtras::default();
    if b.too_large {
        // The host read up to the limit and saw there was more.
        request.body = request.body.slice(..request.body.len().min(max_body));
        extras.body_too_large = true;
    }
    if b.connect {
        request.method = Method::from_bytes(b"CONNECT");
        extras.connect_protocol = Some(Bytes::from_static(b"websocket"));
    }
    Some((request, extras))
}

fuzz_target!(|input: &[u8]| {
    let (security, input) = Security::decode(input);
    let mut r = Reader { data: input };
    let setup = std::array::from_fn(|_| r.u8());
    let mut h = Harness::new(sockjs_fuzz::setup::config(setup, &security));
    // What requests say about their client, and the address they come from, until changed.
    let mut profile = Profile::default();
    let mut address = peer::ADDRESSES[0];
    // Per connection: whether it speaks hixie-76 (for frames).
    let mut hixie: Vec<bool> = Vec::new();
    let mut ops = 0;
    while !r.data.is_empty() && ops < MAX_OPS {
        ops += 1;
        let pick =
            |h: &Harness, n: u8| (!h.conns.is_empty()).then(|| usize::from(n) % h.conns.len());
        let tag = r.u8() % 14;
        if sockjs_fuzz::harness::tracing() {
            eprintln!(
                "op {ops}: {tag}, then {:?}",
                &r.data[..r.data.len().min(12)]
            );
        }
        match tag {
            0 => {
                let b = build(&mut r, &profile);
                let max_body = h.limits().max_body_size;
                if let Some((request, extras)) = parsed(&b, max_body) {
                    h.exchange_from(address, request, extras);
                    hixie.push(b.ws == 2);
                }
            }
            1 => {
                let b = build(&mut r, &profile);
                let i = h.accept_from(address);
                hixie.push(b.ws == 2);
                h.note_request(i, &b.headers);
                h.feed(i, &b.bytes);
            }
            2 => {
                let n = r.u8();
                let bytes = r.blob();
                if let Some(i) = pick(&h, n) {
                    h.note_raw(i);
                    h.feed(i, &bytes);
                }
            }
            3 => {
                let n = r.u8();
                let kind = r.u8() % 4;
                let text = r.str();
                if let Some(i) = pick(&h, n) {
                    h.note_raw(i);
                    let bytes = if hixie[i] {
                        match kind {
                            2 => vec![0xff, 0x00],
                            0 => hixie_text(&serde_json::to_vec(&[&text]).unwrap_or_default()),
                            _ => hixie_text(text.as_bytes()),
                        }
                    } else {
                        let mask = Some([1, 2, 3, 4]);
                        match kind {
                            0 => {
                                let json = serde_json::to_vec(&[&text]).unwrap_or_default();
                                ws_frame(1, true, 0, mask, &json)
                            }
                            1 => ws_frame(1, true, 0, mask, text.as_bytes()),
                            2 => ws_frame(8, true, 0, mask, &[0x03, 0xe8]),
                            _ => ws_frame(9, true, 0, mask, b"p"),
                        }
                    };
                    h.feed(i, &bytes);
                }
            }
            4 => {
                let n = r.u8();
                let amount = r.u16();
                if let Some(i) = pick(&h, n) {
                    match amount {
                        0 => h.write_all(i),
                        k => {
                            h.write(i, usize::from(k));
                        }
                    }
                }
            }
            5 => {
                let n = r.u8();
                if let Some(i) = pick(&h, n) {
                    h.closed(i);
                }
            }
            6 => {
                let n = r.u8();
                if let Some(i) = pick(&h, n) {
                    h.eof(i);
                }
            }
            7 => {
                let millis = r.u16();
                let step = r.u8() & 1 == 0;
                h.advance(Duration::from_millis(u64::from(millis % 20_000)), step);
            }
            8 => {
                let s = r.u8();
                let text = r.str();
                if !h.sessions.is_empty() {
                    let j = usize::from(s) % h.sessions.len();
                    h.send(j, &text);
                }
            }
            9 => {
                let s = r.u8();
                let code = r.u16();
                let reason: String = r.str().chars().take(64).collect();
                if !h.sessions.is_empty() {
                    let j = usize::from(s) % h.sessions.len();
                    h.close(j, code, &reason);
                }
            }
            10 => h.shutdown(),
            11 => {
                let n = r.u8();
                let kind = r.u8();
                let status = r.u16();
                let body = r.str();
                let pending = h.pending_authorizations();
                let i = if kind & 1 == 0 && !pending.is_empty() {
                    Some(pending[usize::from(n) % pending.len()])
                } else {
                    pick(&h, n)
                };
                let answer = if kind & 2 == 0 {
                    Authorization::Accept
                } else {
                    Authorization::Refuse { status, body }
                };
                if let Some(i) = i {
                    h.authorize(i, answer);
                }
            }
            12 => {
                let mode = r.u8();
                let hops = r.blob();
                profile = Profile::decode(mode, &hops, r.u8());
            }
            _ => address = peer::ADDRESSES[usize::from(r.u8()) % peer::ADDRESSES.len()],
        }
    }
    h.finish();
});
