//! WebSocket handshakes: the hixie-76 key arithmetic and frame decoder, the RFC 6455 accept
//! key, and a whole server answering upgrade requests whose headers the input chooses.
//!
//! Checks:
//! - `hixie76::key_number` agrees with a plain re-statement of the rule (digits over spaces,
//!   exact, fitting 32 bits); `challenge_response` is MD5 (an independent implementation) of
//!   the two numbers and the 8 key bytes, and `None` exactly when a key is invalid; the core's
//!   own `md5` agrees with that implementation;
//! - `accept_key` gives 28 characters of base64;
//! - `Hixie76Decoder` gives the same messages and error however its input is split, keeps
//!   returning its error, and never returns text over its limit;
//! - the server answers an upgrade with 101 exactly when the request is a valid handshake
//!   (when every header value is plain text, so the head itself is well-formed), with the
//!   right `Sec-WebSocket-Accept` or the right hixie-76 challenge answer, and opens a session
//!   exactly when it answers 101; plus every invariant of the harness, whatever follows.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};
use sockjs_core::ws::{Hixie76Decoder, Incoming, ProtocolError, accept_key, hixie76};
use sockjs_core::{Config, Options};
use sockjs_fuzz::client::{Request, hixie_key};
use sockjs_fuzz::harness::Harness;
use sockjs_fuzz::split::chunks;

#[derive(Arbitrary, Debug)]
struct Input {
    key1: String,
    key2: String,
    key3: [u8; 8],
    accept_input: Vec<u8>,
    hixie_max: u16,
    hixie_stream: Vec<u8>,
    hixie_sizes: Vec<u8>,
    upgrade: Upgrade,
}

/// An upgrade request and what follows it.
#[derive(Arbitrary, Debug)]
struct Upgrade {
    /// The raw `/websocket` endpoint instead of a SockJS session URL.
    raw: bool,
    /// The endpoint with WebSocket disabled.
    disabled_endpoint: bool,
    http10: bool,
    upgrade: Value,
    connection: Value,
    version: Version,
    key: Value,
    key1: HixieKey,
    key2: HixieKey,
    extensions: Value,
    protocol: Value,
    origin: Value,
    host: Value,
    head_sizes: Vec<u8>,
    tail: Vec<u8>,
    tail_sizes: Vec<u8>,
    advance_ms: u16,
}

/// A header value: left out, the usual one, or any bytes but CR and LF.
#[derive(Arbitrary, Debug)]
enum Value {
    Absent,
    Usual,
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Version {
    Absent,
    V13,
    V8,
    V7,
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum HixieKey {
    Absent,
    Valid { number: u32, spaces: u8 },
    Bytes(Vec<u8>),
}

/// `key_number` stated again, the slow and obvious way.
fn reference_key_number(key: &str) -> Option<u32> {
    let digits: String = key.chars().filter(char::is_ascii_digit).collect();
    let spaces = key.chars().filter(|&c| c == ' ').count() as u128;
    if digits.is_empty() || spaces == 0 {
        return None;
    }
    // The core computes in 64 bits and refuses what overflows them.
    let number: u64 = digits
        .trim_start_matches('0')
        .parse()
        .ok()
        .or_else(|| digits.bytes().all(|d| d == b'0').then_some(0))?;
    let number = u128::from(number);
    if number % spaces != 0 {
        return None;
    }
    u32::try_from(number / spaces).ok()
}

fn check_keys(input: &Input) {
    for key in [&input.key1, &input.key2] {
        assert_eq!(
            hixie76::key_number(key),
            reference_key_number(key),
            "key_number({key:?})"
        );
    }
    let answer = hixie76::challenge_response(&input.key1, &input.key2, &input.key3);
    match (
        hixie76::key_number(&input.key1),
        hixie76::key_number(&input.key2),
    ) {
        (Some(n1), Some(n2)) => {
            let mut challenge = Vec::with_capacity(16);
            challenge.extend_from_slice(&n1.to_be_bytes());
            challenge.extend_from_slice(&n2.to_be_bytes());
            challenge.extend_from_slice(&input.key3);
            let expected: [u8; 16] = Md5::digest(&challenge).into();
            assert_eq!(answer, Some(expected), "challenge answer");
        }
        _ => assert_eq!(answer, None, "challenge answer for an invalid key"),
    }
    let theirs: [u8; 16] = Md5::digest(&input.accept_input).into();
    assert_eq!(
        sockjs_core::ws::md5::md5(&input.accept_input),
        theirs,
        "md5"
    );

    let accept = accept_key(&input.accept_input);
    assert_eq!(accept.len(), 28, "accept key length");
    assert!(
        accept
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
        "accept key {accept:?} is not base64"
    );
    assert!(accept.ends_with('='), "accept key {accept:?} unpadded");
}

type HixieOutcome = (Vec<Incoming>, Option<ProtocolError>);

fn decode_hixie(max: usize, pieces: &[&[u8]]) -> HixieOutcome {
    let mut decoder = Hixie76Decoder::new(max);
    let mut out = Vec::new();
    for piece in pieces {
        decoder.feed(piece);
        loop {
            match decoder.next() {
                Ok(Some(incoming)) => {
                    match &incoming {
                        Incoming::Text(t) => assert!(t.len() <= max, "hixie text over the limit"),
                        Incoming::Close(None) => {}
                        other => panic!("hixie-76 decoder returned {other:?}"),
                    }
                    out.push(incoming);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.next(), Err(e), "the error did not stick");
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}

fn check_hixie_decoder(input: &Input) {
    let max = usize::from(input.hixie_max % 1024);
    let data = &input.hixie_stream[..];
    let whole = decode_hixie(max, &[data]);
    let split = decode_hixie(max, &chunks(data, &input.hixie_sizes));
    assert_eq!(split, whole, "split feeding changed the outcome");
}

/// A header value with CR and LF taken out, so it stays one header line.
fn one_line(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

/// Whether the value is plain printable ASCII, which every HTTP parser accepts.
fn plain(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
}

fn value(v: &Value, usual: &str) -> Option<Vec<u8>> {
    match v {
        Value::Absent => None,
        Value::Usual => Some(usual.as_bytes().to_vec()),
        Value::Bytes(b) => Some(one_line(b)),
    }
}

fn hixie_value(k: &HixieKey) -> Option<Vec<u8>> {
    match k {
        HixieKey::Absent => None,
        HixieKey::Valid { number, spaces } => Some(hixie_key(*number, *spaces).into_bytes()),
        HixieKey::Bytes(b) => Some(one_line(b)),
    }
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn check_server(u: &Upgrade) {
    let config = Config::new()
        .endpoint("/echo", Options::default())
        .endpoint("/off", Options::default().websocket(false));
    let mut h = Harness::new(config);
    let conn = h.accept();

    let prefix = if u.disabled_endpoint { "/off" } else { "/echo" };
    let path = if u.raw {
        format!("{prefix}/websocket")
    } else {
        format!("{prefix}/000/s1/websocket")
    };
    let version = match &u.version {
        Version::Absent => None,
        Version::V13 => Some(b"13".to_vec()),
        Version::V8 => Some(b"8".to_vec()),
        Version::V7 => Some(b"7".to_vec()),
        Version::Bytes(b) => Some(one_line(b)),
    };
    let headers: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("Host", value(&u.host, "127.0.0.1:8081")),
        ("Upgrade", value(&u.upgrade, "websocket")),
        ("Connection", value(&u.connection, "Upgrade")),
        ("Sec-WebSocket-Version", version),
        (
            "Sec-WebSocket-Key",
            value(&u.key, "dGhlIHNhbXBsZSBub25jZQ=="),
        ),
        ("Sec-WebSocket-Key1", hixie_value(&u.key1)),
        ("Sec-WebSocket-Key2", hixie_value(&u.key2)),
        (
            "Sec-WebSocket-Extensions",
            value(&u.extensions, "permessage-deflate; client_max_window_bits"),
        ),
        (
            "Sec-WebSocket-Protocol",
            value(&u.protocol, "chat, superchat"),
        ),
        ("Origin", value(&u.origin, "http://example.com")),
    ];
    let mut req = Request::new("GET", path);
    req.http10 = u.http10;
    for (name, v) in &headers {
        if let Some(v) = v {
            req = req.header(name, v.clone());
        }
    }
    let head = req.to_bytes();
    for piece in chunks(&head, &u.head_sizes) {
        h.feed(conn, piece);
    }
    // The client reads what the server answered.
    h.write_all(conn);
    let after_head = h.conns[conn].output.len();

    // What the request asks for, read the way the server must read it.
    let get = |name: &str| -> Option<Vec<u8>> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| v.trim_ascii().to_vec())
    };
    let well_formed = headers.iter().all(|(_, v)| v.as_deref().is_none_or(plain));
    let upgrade_ok = get("Upgrade").is_some_and(|v| has_token(&v, "websocket"));
    let connection_ok = get("Connection").is_some_and(|v| has_token(&v, "upgrade"));
    let version = get("Sec-WebSocket-Version");
    let rfc = matches!(version.as_deref(), Some(b"13" | b"8" | b"7"));
    let key = get("Sec-WebSocket-Key").filter(|k| !k.is_empty());
    let hixie_keys = (|| {
        let k1 = String::from_utf8(get("Sec-WebSocket-Key1")?).ok()?;
        let k2 = String::from_utf8(get("Sec-WebSocket-Key2")?).ok()?;
        hixie76::key_number(&k1)?;
        hixie76::key_number(&k2)?;
        Some((k1, k2))
    })();
    let valid = !u.disabled_endpoint
        && upgrade_ok
        && connection_ok
        && if version.is_some() {
            rfc && key.is_some()
        } else {
            hixie_keys.is_some()
        };

    let out = h.conns[conn].output.clone();
    let switched = out.starts_with(b"HTTP/1.1 101 ");
    if well_formed {
        assert_eq!(
            switched,
            valid,
            "answered {:?}",
            String::from_utf8_lossy(&out[..out.len().min(200)])
        );
    }
    // An RFC 6455 session opens with the 101; a hixie-76 one once the 8 key bytes arrive.
    let opened_on_101 = switched && rfc;
    assert_eq!(
        h.sessions.len(),
        usize::from(opened_on_101),
        "sessions after the head"
    );
    let protocol = if u.raw { "websocket-raw" } else { "websocket" };
    if switched {
        let text = String::from_utf8_lossy(&out).into_owned();
        if rfc {
            assert_eq!(h.sessions[0].protocol, protocol);
            let key = key.as_deref().unwrap_or_default();
            let line = format!("\r\nSec-WebSocket-Accept: {}\r\n", accept_key(key));
            assert!(text.contains(&line), "no {line:?} in {text:?}");
        } else if let Some((k1, k2)) = &hixie_keys {
            assert!(
                text.starts_with("HTTP/1.1 101 WebSocket Protocol Handshake\r\n"),
                "{text:?}"
            );
            assert!(
                text.ends_with("\r\n\r\n"),
                "bytes after the hixie-76 head: {text:?}"
            );
            let key3: Option<[u8; 8]> = u.tail.get(..8).and_then(|k| k.try_into().ok());
            if let Some(key3) = key3 {
                for piece in chunks(&key3, &u.tail_sizes) {
                    h.feed(conn, piece);
                }
                h.write_all(conn);
                let answer = hixie76::challenge_response(k1, k2, &key3).expect("keys checked");
                let rest = &h.conns[conn].output[after_head..];
                assert_eq!(
                    rest.get(..16),
                    Some(&answer[..]),
                    "hixie-76 challenge answer"
                );
                let open: &[u8] = if u.raw { b"" } else { b"\x00o\xff" };
                assert_eq!(&rest[16..], open, "what follows the challenge answer");
                assert_eq!(h.sessions.len(), 1, "hixie-76 session after the key");
                assert_eq!(h.sessions[0].protocol, protocol);
            }
        }
    }
    let tail_start = if switched && !rfc && u.tail.len() >= 8 {
        8
    } else {
        0
    };
    for piece in chunks(&u.tail[tail_start..], &u.tail_sizes) {
        h.feed(conn, piece);
    }
    h.advance(Duration::from_millis(u64::from(u.advance_ms) * 10), true);
    h.finish();
}

fuzz_target!(|input: Input| {
    check_keys(&input);
    check_hixie_decoder(&input);
    check_server(&input.upgrade);
});
