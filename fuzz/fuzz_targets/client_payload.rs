//! What clients send and how messages are quoted back: `payload::parse_array`,
//! `payload::parse_websocket_message`, `transport::jsonp::parse_send`, and the escaping in
//! `frame`.
//!
//! Input: one byte choosing how `jsonp_send` reads the rest, then the bytes. Checks:
//! - each parser agrees with serde_json wherever serde_json accepts the same shape (a JSON
//!   array of strings, or a single JSON string), and refuses only what serde_json refuses,
//!   except lone UTF-16 surrogate escapes, which it reads as U+FFFD where serde_json fails;
//!   an empty body is `Payload expected.`, never `Broken JSON encoding.`;
//! - `jsonp_send` reads a raw body exactly as `parse_array` does, and a form body
//!   `d=<percent-encoded JSON>` as `parse_array` reads the JSON;
//! - `frame::quote_message` of every parsed message is JSON that decodes back to it, and
//!   leaves none of the characters SockJS requires escaped (controls, U+200C-200F,
//!   U+2028-202F, U+2060-206F, U+FFF0-FFFF, astral characters) unescaped;
//! - the `a[...]` frame of those messages is a JSON array of them after its `a`;
//!   `close_frame` with the first message as reason decodes back to code and reason;
//! - the htmlfile/jsonp script string of that frame decodes back to it and carries no `<`,
//!   `>`, `&`, U+2028 or U+2029 raw; the eventsource escaping leaves no CR, LF or NUL and
//!   decodes back to it.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sockjs_core::frame;
use sockjs_core::payload::{PayloadError, parse_array, parse_websocket_message};
use sockjs_core::transport::jsonp;

/// Checks one of our parsers against serde_json's reading of the same bytes.
fn agree(
    what: &str,
    input: &[u8],
    ours: &Result<Vec<String>, PayloadError>,
    theirs: Result<Vec<String>, serde_json::Error>,
) {
    match (ours, theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, &b, "{what}: serde_json read it differently"),
        (Err(_), Err(_)) => {}
        (Ok(a), Err(e)) => {
            // serde_json refuses lone surrogate escapes; we read them as U+FFFD.
            let msg = e.to_string();
            let surrogate = msg.contains("surrogate") || msg.contains("end of hex escape");
            let replaced = a.iter().any(|s| s.contains(char::REPLACEMENT_CHARACTER));
            assert!(
                surrogate && replaced,
                "{what}: accepted what serde_json refuses ({e}): {input:?}"
            );
        }
        (Err(e), Ok(b)) => {
            panic!("{what}: refused ({e}) what serde_json reads as {b:?}: {input:?}")
        }
    }
    if input.is_empty() && what == "parse_array" {
        assert_eq!(ours, &Err(PayloadError::Empty), "empty body");
    }
}

/// Whether SockJS requires `c` escaped inside a frame.
fn must_escape(c: char) -> bool {
    let cp = c as u32;
    cp < 0x20
        || (0x200c..=0x200f).contains(&cp)
        || (0x2028..=0x202f).contains(&cp)
        || (0x2060..=0x206f).contains(&cp)
        || (0xfff0..=0xffff).contains(&cp)
        || cp >= 0x10000
}

fn check_quoting(messages: &[String]) {
    let mut quoted = Vec::with_capacity(messages.len());
    for m in messages {
        let q = frame::quote_message(m);
        let text = std::str::from_utf8(&q).expect("quoted message is UTF-8");
        if let Some(c) = text.chars().find(|&c| must_escape(c)) {
            panic!("{c:?} left unescaped in {text:?}");
        }
        let back: String = serde_json::from_str(text).expect("quoted message is a JSON string");
        assert_eq!(&back, m, "quoting did not round-trip");
        quoted.push(q);
    }

    let mut array = BytesMut::new();
    frame::write_array_frame(&mut array, quoted.iter());
    assert_eq!(
        array.len(),
        frame::array_frame_len(quoted.iter()),
        "array_frame_len"
    );
    assert_eq!(array[0], b'a');
    let back: Vec<String> = serde_json::from_slice(&array[1..]).expect("a[...] holds JSON");
    assert_eq!(back, messages, "a[...] frame");

    let reason = messages.first().map_or("", String::as_str);
    let code = (messages.len() as u16).wrapping_mul(1000).wrapping_add(7);
    let close = frame::close_frame(code, reason);
    assert_eq!(close[0], b'c');
    let back: (u16, String) = serde_json::from_slice(&close[1..]).expect("c[...] holds JSON");
    assert_eq!(back, (code, reason.to_string()), "close frame");

    check_script_string(&array);
    check_script_string(&close);
    check_eventsource(&array);
}

fn check_script_string(frame_bytes: &[u8]) {
    let mut out = BytesMut::new();
    frame::write_script_string(&mut out, frame_bytes);
    let text = std::str::from_utf8(&out).expect("script string is UTF-8");
    if let Some(c) = text
        .chars()
        .find(|c| matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'))
    {
        panic!("{c:?} raw in a script string: {text:?}");
    }
    let back: String = serde_json::from_str(text).expect("script string is a JSON string");
    assert_eq!(
        back.as_bytes(),
        frame_bytes,
        "script string did not round-trip"
    );
}

fn check_eventsource(frame_bytes: &[u8]) {
    let mut out = BytesMut::new();
    frame::write_eventsource_escaped(&mut out, frame_bytes);
    assert!(
        !out.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
        "raw CR, LF or NUL in {out:?}"
    );
    let mut back = Vec::with_capacity(out.len());
    let mut i = 0;
    while i < out.len() {
        if out[i] == b'%' {
            let code = &out[i..(i + 3).min(out.len())];
            back.push(match code {
                b"%25" => b'%',
                b"%0D" => b'\r',
                b"%0A" => b'\n',
                b"%00" => 0,
                other => panic!("stray % escape {other:?}"),
            });
            i += 3;
        } else {
            back.push(out[i]);
            i += 1;
        }
    }
    assert_eq!(back, frame_bytes, "eventsource escaping did not round-trip");
}

/// `application/x-www-form-urlencoded` encoding of a value, every byte but letters and
/// digits escaped.
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

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };

    let array = parse_array(data);
    agree(
        "parse_array",
        data,
        &array,
        serde_json::from_slice::<Vec<String>>(data),
    );

    let ws = parse_websocket_message(data);
    let starts_array = data.iter().find(|b| !b" \t\r\n".contains(b)) == Some(&b'[');
    if data.is_empty() {
        assert_eq!(
            ws,
            Ok(Vec::new()),
            "an empty WebSocket message is no messages"
        );
    } else if starts_array {
        assert_eq!(ws, array, "a WebSocket array reads like an xhr_send body");
    } else {
        let theirs = serde_json::from_slice::<String>(data).map(|s| vec![s]);
        agree("parse_websocket_message", data, &ws, theirs);
    }

    const FORM: &[u8] = b"application/x-www-form-urlencoded; charset=UTF-8";
    match mode % 4 {
        0 => assert_eq!(jsonp::parse_send(None, data), array, "raw jsonp_send body"),
        1 => assert_eq!(
            jsonp::parse_send(Some(b"text/plain"), data),
            array,
            "text jsonp_send body"
        ),
        2 => {
            let mut body = b"d=".to_vec();
            body.extend_from_slice(&form_encode(data));
            let expected = if data.is_empty() {
                Err(PayloadError::Empty)
            } else {
                array.clone()
            };
            assert_eq!(
                jsonp::parse_send(Some(FORM), &body),
                expected,
                "form jsonp_send body"
            );
        }
        _ => {
            // A form body as the client wrote it: anything goes, nothing may panic.
            if let Ok(messages) = jsonp::parse_send(Some(FORM), data) {
                check_quoting(&messages);
            }
        }
    }

    for messages in [&array, &ws].into_iter().flatten() {
        check_quoting(messages);
    }
});
