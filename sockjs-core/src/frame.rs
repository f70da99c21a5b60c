//! SockJS frames (`o`, `h`, `a[...]`, `c[code,"reason"]`) and the JSON escaping the protocol
//! requires, byte for byte.
//!
//! Messages are quoted once, when the application sends them ([`quote`]), and kept as
//! ready-to-frame JSON string literals, so a broadcast is encoded once for every receiver.

use bytes::{BufMut, Bytes, BytesMut};

/// The open frame.
pub const OPEN: &[u8] = b"o";
/// The heartbeat frame.
pub const HEARTBEAT: &[u8] = b"h";

/// Quotes a message as a JSON string literal (see [`quote`]), ready to be placed in an
/// `a[...]` frame as many times as needed.
pub fn quote_message(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 2);
    quote(text, &mut out);
    out.freeze()
}

/// The length of the `a[...]` frame holding `messages` (quoted literals).
pub fn array_frame_len<'a>(messages: impl IntoIterator<Item = &'a Bytes>) -> usize {
    let (count, bytes) = messages
        .into_iter()
        .fold((0usize, 0usize), |(c, b), m| (c + 1, b + m.len()));
    3 + bytes + count.saturating_sub(1)
}

/// Appends the `a[...]` frame holding `messages` (quoted literals).
pub fn write_array_frame<'a>(out: &mut BytesMut, messages: impl IntoIterator<Item = &'a Bytes>) {
    out.put_slice(b"a[");
    let mut first = true;
    for m in messages {
        if !first {
            out.put_u8(b',');
        }
        first = false;
        out.put_slice(m);
    }
    out.put_u8(b']');
}

/// The close frame `c[code,"reason"]`, with the reason quoted like a message.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(reason.len() + 12);
    out.put_slice(b"c[");
    crate::http::response::put_decimal(&mut out, code as usize);
    out.put_u8(b',');
    quote(reason, &mut out);
    out.put_u8(b']');
    out.freeze()
}

/// Appends `text` as a JSON string literal escaped as SockJS requires: the JSON escapes, plus
/// lowercase `\uXXXX` for U+200C-200F, U+2028-202F, U+2060-206F, U+FFF0-FFFF, and astral
/// characters written as escaped UTF-16 surrogate pairs.
pub fn quote(text: &str, out: &mut BytesMut) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.put_u8(b'"');
    let mut run = 0; // start of the pending run of bytes copied verbatim
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escape: Option<Escape> = match b {
            b'"' => Some(Escape::Short(b'"')),
            b'\\' => Some(Escape::Short(b'\\')),
            0x08 => Some(Escape::Short(b'b')),
            0x09 => Some(Escape::Short(b't')),
            0x0a => Some(Escape::Short(b'n')),
            0x0c => Some(Escape::Short(b'f')),
            0x0d => Some(Escape::Short(b'r')),
            0x00..=0x1f => Some(Escape::Unit(b as u16, 1)),
            0xe2 | 0xef | 0xf0..=0xf4 => {
                // Only these lead bytes can start a character SockJS escapes.
                let c = text[i..].chars().next().unwrap_or('\u{fffd}');
                let cp = c as u32;
                let len = c.len_utf8();
                if (0x200c..=0x200f).contains(&cp)
                    || (0x2028..=0x202f).contains(&cp)
                    || (0x2060..=0x206f).contains(&cp)
                    || (0xfff0..=0xffff).contains(&cp)
                {
                    Some(Escape::Unit(cp as u16, len))
                } else if cp >= 0x10000 {
                    Some(Escape::Pair(cp, len))
                } else {
                    i += len;
                    continue;
                }
            }
            _ => None,
        };
        match escape {
            None => i += 1,
            Some(e) => {
                out.put_slice(&bytes[run..i]);
                i += match e {
                    Escape::Short(c) => {
                        out.put_slice(&[b'\\', c]);
                        1
                    }
                    Escape::Unit(u, len) => {
                        put_unit(out, u);
                        len
                    }
                    Escape::Pair(cp, len) => {
                        let v = cp - 0x10000;
                        put_unit(out, 0xd800 | (v >> 10) as u16);
                        put_unit(out, 0xdc00 | (v & 0x3ff) as u16);
                        len
                    }
                };
                run = i;
            }
        }
    }
    out.put_slice(&bytes[run..]);
    out.put_u8(b'"');
}

enum Escape {
    Short(u8),
    Unit(u16, usize),
    Pair(u32, usize),
}

fn put_unit(out: &mut BytesMut, u: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_slice(&[
        b'\\',
        b'u',
        HEX[(u >> 12) as usize & 15],
        HEX[(u >> 8) as usize & 15],
        HEX[(u >> 4) as usize & 15],
        HEX[u as usize & 15],
    ]);
}

/// Appends `frame` as a JavaScript string literal that is also safe inside an HTML `<script>`
/// block: JSON escapes plus `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX`. Used by the
/// htmlfile and jsonp transports, whose clients evaluate the literal.
pub fn write_script_string(out: &mut BytesMut, frame: &[u8]) {
    out.reserve(frame.len() + 2);
    out.put_u8(b'"');
    let mut run = 0;
    let mut i = 0;
    while i < frame.len() {
        let b = frame[i];
        let (esc, len): (Option<Escape>, usize) = match b {
            b'"' => (Some(Escape::Short(b'"')), 1),
            b'\\' => (Some(Escape::Short(b'\\')), 1),
            0x08 => (Some(Escape::Short(b'b')), 1),
            0x09 => (Some(Escape::Short(b't')), 1),
            0x0a => (Some(Escape::Short(b'n')), 1),
            0x0c => (Some(Escape::Short(b'f')), 1),
            0x0d => (Some(Escape::Short(b'r')), 1),
            0x00..=0x1f | b'<' | b'>' | b'&' => (Some(Escape::Unit(b as u16, 1)), 1),
            0xe2 if frame.get(i + 1) == Some(&0x80)
                && matches!(frame.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                (
                    Some(Escape::Unit(
                        if frame[i + 2] == 0xa8 { 0x2028 } else { 0x2029 },
                        3,
                    )),
                    3,
                )
            }
            _ => (None, 1),
        };
        match esc {
            None => i += len,
            Some(e) => {
                out.put_slice(&frame[run..i]);
                match e {
                    Escape::Short(c) => out.put_slice(&[b'\\', c]),
                    Escape::Unit(u, _) => put_unit(out, u),
                    Escape::Pair(..) => unreachable!("never produced here"),
                }
                i += len;
                run = i;
            }
        }
    }
    out.put_slice(&frame[run..]);
    out.put_u8(b'"');
}

/// Appends `frame` with `%`, CR, LF and NUL written as `%25`, `%0D`, `%0A`, `%00`, the escaping
/// the eventsource transport needs (its client decodes with `decodeURI`).
pub fn write_eventsource_escaped(out: &mut BytesMut, frame: &[u8]) {
    let mut run = 0;
    for (i, &b) in frame.iter().enumerate() {
        let esc: &[u8] = match b {
            b'%' => b"%25",
            b'\r' => b"%0D",
            b'\n' => b"%0A",
            0 => b"%00",
            _ => continue,
        };
        out.put_slice(&frame[run..i]);
        out.put_slice(esc);
        run = i + 1;
    }
    out.put_slice(&frame[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> String {
        let mut b = BytesMut::new();
        quote(s, &mut b);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn plain_and_short_escapes() {
        assert_eq!(q("a"), r#""a""#);
        assert_eq!(q(""), r#""""#);
        assert_eq!(q("\"\\\u{8}\t\n\u{c}\r"), r#""\"\\\b\t\n\f\r""#);
        assert_eq!(q("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
        assert_eq!(q("é€"), "\"é€\"");
    }

    #[test]
    fn sockjs_ranges_are_escaped_lowercase() {
        assert_eq!(
            q("\u{200b}\u{200c}\u{200f}\u{2010}"),
            "\"\u{200b}\\u200c\\u200f\u{2010}\""
        );
        assert_eq!(
            q("\u{2027}\u{2028}\u{202f}\u{2030}"),
            "\"\u{2027}\\u2028\\u202f\u{2030}\""
        );
        assert_eq!(
            q("\u{205f}\u{2060}\u{206f}\u{2070}"),
            "\"\u{205f}\\u2060\\u206f\u{2070}\""
        );
        assert_eq!(q("\u{ffef}\u{fff0}\u{ffff}"), "\"\u{ffef}\\ufff0\\uffff\"");
        assert_eq!(q("\u{feff}"), "\"\u{feff}\"");
    }

    #[test]
    fn astral_characters_become_escaped_surrogate_pairs() {
        assert_eq!(q("\u{1f600}"), r#""\ud83d\ude00""#);
        assert_eq!(
            q("x\u{10000}y\u{10ffff}"),
            r#""x\ud800\udc00y\udbff\udfff""#
        );
    }

    #[test]
    fn the_protocol_suites_server_killer_string() {
        // Every code point from U+00FF up that the suite expects the server to escape.
        let mut input = String::new();
        let mut expected = String::from("\"");
        for cp in 255u32..65536 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let esc = (0x200c..=0x200f).contains(&cp)
                || (0x2028..=0x202f).contains(&cp)
                || (0x2060..=0x206f).contains(&cp)
                || (0xfff0..=0xffff).contains(&cp);
            if esc {
                input.push(c);
                expected.push_str(&format!("\\u{cp:04x}"));
            }
        }
        expected.push('"');
        assert_eq!(q(&input), expected);
    }

    #[test]
    fn quoted_output_is_json_that_decodes_to_the_input() {
        let s = "a\"b\\c\u{0}\u{1f}\u{2028}\u{fff5}\u{1f600}é\u{7f}";
        let decoded: String = serde_json::from_str(&q(s)).unwrap();
        assert_eq!(decoded, s);
    }

    #[test]
    fn frames() {
        let a = quote_message("a");
        let b = quote_message("b\"");
        let mut out = BytesMut::new();
        write_array_frame(&mut out, [&a, &b]);
        assert_eq!(&out[..], br#"a["a","b\""]"#);
        assert_eq!(array_frame_len([&a, &b]), out.len());
        let mut out = BytesMut::new();
        write_array_frame(&mut out, []);
        assert_eq!(&out[..], b"a[]");
        assert_eq!(array_frame_len([]), 3);
        assert_eq!(&close_frame(3000, "Go away!")[..], br#"c[3000,"Go away!"]"#);
        assert_eq!(
            &close_frame(1002, "a\"\u{2028}")[..],
            br#"c[1002,"a\"\u2028"]"#
        );
    }

    #[test]
    fn script_strings() {
        let mut out = BytesMut::new();
        write_script_string(&mut out, br#"a["x"]"#);
        assert_eq!(&out[..], br#""a[\"x\"]""#);
        let mut out = BytesMut::new();
        write_script_string(
            &mut out,
            "a[\"</script><b>&\u{2028}\u{2029}\\\"]".as_bytes(),
        );
        assert_eq!(
            &out[..],
            br#""a[\"\u003c/script\u003e\u003cb\u003e\u0026\u2028\u2029\\\"]""#
        );
        let mut out = BytesMut::new();
        write_script_string(&mut out, "\n\u{1}é\u{2027}".as_bytes());
        assert_eq!(&out[..], "\"\\n\\u0001é\u{2027}\"".as_bytes());
    }

    #[test]
    fn eventsource_escaping() {
        let mut out = BytesMut::new();
        write_eventsource_escaped(&mut out, b"a[\"100%\"]\r\n\0x");
        assert_eq!(&out[..], b"a[\"100%25\"]%0D%0A%00x");
    }
}
