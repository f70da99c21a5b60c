//! Parsing what clients send: the body of `xhr_send` / `jsonp_send` (a JSON array of strings)
//! and SockJS WebSocket messages (a JSON array of strings or a single JSON string); and, for
//! the client, what servers send: the array of `a[...]`, the `[code,"reason"]` of `c[...]`
//! and the `/info` object.
//!
//! A purpose-built parser rather than a general JSON one: it accepts exactly these shapes,
//! allocates only the strings, runs in linear time, and decodes lone UTF-16 surrogate escapes
//! (which browsers can produce from JavaScript strings) as U+FFFD instead of failing the batch.

use std::fmt;

/// Why a client payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// Nothing was sent (`Payload expected.`).
    Empty,
    /// Not JSON, or not the expected shape (`Broken JSON encoding.`).
    Broken,
}

impl PayloadError {
    /// The response body SockJS clients expect for this error.
    pub fn message(self) -> &'static str {
        match self {
            PayloadError::Empty => "Payload expected.",
            PayloadError::Broken => "Broken JSON encoding.",
        }
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for PayloadError {}

/// Parses a JSON array of strings (`xhr_send`, `jsonp_send`).
pub fn parse_array(input: &[u8]) -> Result<Vec<String>, PayloadError> {
    if input.is_empty() {
        return Err(PayloadError::Empty);
    }
    let mut p = Parser { s: input, i: 0 };
    p.ws();
    let out = p.array()?;
    p.ws();
    if p.i != input.len() {
        return Err(PayloadError::Broken);
    }
    Ok(out)
}

/// Parses a SockJS WebSocket message: empty gives no messages, `[` starts an array of
/// strings, anything else must be a single JSON string.
pub fn parse_websocket_message(input: &[u8]) -> Result<Vec<String>, PayloadError> {
    if input.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Parser { s: input, i: 0 };
    p.ws();
    let out = if p.peek() == Some(b'[') {
        p.array()?
    } else {
        vec![p.string()?]
    };
    p.ws();
    if p.i != input.len() {
        return Err(PayloadError::Broken);
    }
    Ok(out)
}

/// Parses the body of a close frame after its `c`: `[code,"reason"]`.
pub fn parse_close(input: &[u8]) -> Result<(u16, String), PayloadError> {
    let mut p = Parser { s: input, i: 0 };
    p.eat(b'[')?;
    p.ws();
    let code = p.integer()?;
    let code = u16::try_from(code).map_err(|_| PayloadError::Broken)?;
    p.ws();
    p.eat(b',')?;
    p.ws();
    let reason = p.string()?;
    p.ws();
    p.eat(b']')?;
    p.ws();
    if p.i != input.len() {
        return Err(PayloadError::Broken);
    }
    Ok((code, reason))
}

/// What a server's `/info` answer says (fields it leaves out take sockjs-client's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// `websocket`: whether the websocket transport is enabled (default true).
    pub websocket: bool,
    /// `cookie_needed`: whether the server's load balancing relies on a JSESSIONID cookie.
    pub cookie_needed: bool,
}

/// Deepest nesting of arrays and objects [`parse_info`] walks through.
const MAX_DEPTH: usize = 32;

/// Parses an `/info` body: a JSON object; `websocket` and `cookie_needed` must be booleans
/// when present, other members may be any JSON value (nested at most 32 deep).
pub fn parse_info(input: &[u8]) -> Result<Info, PayloadError> {
    if input.is_empty() {
        return Err(PayloadError::Empty);
    }
    let mut info = Info {
        websocket: true,
        cookie_needed: false,
    };
    let mut p = Parser { s: input, i: 0 };
    p.ws();
    p.eat(b'{')?;
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            let key = p.string()?;
            p.ws();
            p.eat(b':')?;
            p.ws();
            match key.as_str() {
                "websocket" => info.websocket = p.boolean()?,
                "cookie_needed" => info.cookie_needed = p.boolean()?,
                _ => p.skip_value(0)?,
            }
            p.ws();
            match p.peek() {
                Some(b',') => p.i += 1,
                Some(b'}') => {
                    p.i += 1;
                    break;
                }
                _ => return Err(PayloadError::Broken),
            }
        }
    }
    p.ws();
    if p.i != input.len() {
        return Err(PayloadError::Broken);
    }
    Ok(info)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), PayloadError> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(PayloadError::Broken)
        }
    }

    fn array(&mut self) -> Result<Vec<String>, PayloadError> {
        self.eat(b'[')?;
        let mut out = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(out);
        }
        loop {
            self.ws();
            out.push(self.string()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => return Err(PayloadError::Broken),
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), PayloadError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(PayloadError::Broken)
        }
    }

    fn boolean(&mut self) -> Result<bool, PayloadError> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|_| true),
            _ => self.literal(b"false").map(|_| false),
        }
    }

    /// A non-negative integer of at most 9 digits (a close code).
    fn integer(&mut self) -> Result<u32, PayloadError> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) && self.i - start < 9 {
            self.i += 1;
        }
        let digits = &self.s[start..self.i];
        if digits.is_empty() || matches!(self.peek(), Some(b'0'..=b'9' | b'.' | b'e' | b'E')) {
            return Err(PayloadError::Broken);
        }
        Ok(digits
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    }

    /// Skips any JSON number (RFC 8259 grammar).
    fn number(&mut self) -> Result<(), PayloadError> {
        let digits = |p: &mut Self| {
            let start = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            if p.i == start {
                Err(PayloadError::Broken)
            } else {
                Ok(())
            }
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        digits(self)?;
        if self.peek() == Some(b'.') {
            self.i += 1;
            digits(self)?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            digits(self)?;
        }
        Ok(())
    }

    /// Skips one JSON value of any kind, nested at most [`MAX_DEPTH`] deep.
    fn skip_value(&mut self, depth: usize) -> Result<(), PayloadError> {
        if depth > MAX_DEPTH {
            return Err(PayloadError::Broken);
        }
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(open @ (b'[' | b'{')) => {
                let close = if open == b'[' { b']' } else { b'}' };
                self.i += 1;
                self.ws();
                if self.peek() == Some(close) {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    if open == b'{' {
                        self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                    }
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(c) if c == close => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(PayloadError::Broken),
                    }
                }
            }
            _ => self.number(),
        }
    }

    fn string(&mut self) -> Result<String, PayloadError> {
        self.eat(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let start = self.i;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.extend_from_slice(&self.s[start..self.i]);
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| PayloadError::Broken);
                }
                Some(b'\\') => {
                    self.i += 1;
                    self.escape(&mut out)?;
                }
                _ => return Err(PayloadError::Broken), // end of input or a raw control char
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), PayloadError> {
        let c = self.peek().ok_or(PayloadError::Broken)?;
        self.i += 1;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let u = self.hex4()?;
                let ch = match u {
                    0xd800..=0xdbff => {
                        // A high surrogate pairs with an immediately following low one.
                        let save = self.i;
                        let low = if self.s.get(self.i..self.i + 2) == Some(b"\\u") {
                            self.i += 2;
                            self.hex4().ok()
                        } else {
                            None
                        };
                        match low {
                            Some(l @ 0xdc00..=0xdfff) => {
                                let cp =
                                    0x10000 + ((u as u32 - 0xd800) << 10) + (l as u32 - 0xdc00);
                                char::from_u32(cp).unwrap_or('\u{fffd}')
                            }
                            _ => {
                                self.i = save;
                                '\u{fffd}'
                            }
                        }
                    }
                    0xdc00..=0xdfff => '\u{fffd}',
                    _ => char::from_u32(u as u32).unwrap_or('\u{fffd}'),
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => return Err(PayloadError::Broken),
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, PayloadError> {
        let digits = self.s.get(self.i..self.i + 4).ok_or(PayloadError::Broken)?;
        let mut v: u16 = 0;
        for &d in digits {
            let n = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(PayloadError::Broken),
            };
            v = v << 4 | n as u16;
        }
        self.i += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn arrays() {
        assert_eq!(parse_array(br#"["a"]"#), Ok(vec!["a".to_string()]));
        assert_eq!(
            parse_array(b" [ \"a\" , \"b\" ] \n"),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse_array(b"[]"), Ok(vec![]));
        assert_eq!(parse_array(b""), Err(PayloadError::Empty));
        for bad in [
            &b"[\"x"[..],
            b"[",
            b"[1]",
            b"[null]",
            b"{}",
            b"\"x\"",
            b"null",
            b"[\"a\",]",
            b"[\"a\" \"b\"]",
            b"[\"a\"]x",
            b"[\"\x01\"]",
            b"[\"\\x\"]",
            b"[\"\\u12\"]",
            b" ",
            b"[[\"a\"]]",
            b"[\"\xff\"]",
        ] {
            assert_eq!(parse_array(bad), Err(PayloadError::Broken), "{:?}", bad);
        }
    }

    #[test]
    fn escapes() {
        assert_eq!(
            parse_array(br#"["\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00"]"#),
            Ok(vec!["\"\\/\u{8}\u{c}\n\r\tAé\u{1f600}".to_string()])
        );
        // Lone surrogates become U+FFFD, and do not swallow what follows.
        assert_eq!(
            parse_array(br#"["\ud800x","\udc00","\ud800\u0041"]"#),
            Ok(vec![
                "\u{fffd}x".into(),
                "\u{fffd}".into(),
                "\u{fffd}A".into()
            ])
        );
    }

    #[test]
    fn websocket_messages() {
        assert_eq!(parse_websocket_message(b""), Ok(vec![]));
        assert_eq!(parse_websocket_message(b"[]"), Ok(vec![]));
        assert_eq!(
            parse_websocket_message(br#"["a","b"]"#),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse_websocket_message(br#""a""#), Ok(vec!["a".into()]));
        assert_eq!(
            parse_websocket_message(br#"["a"#),
            Err(PayloadError::Broken)
        );
        assert_eq!(parse_websocket_message(b"1"), Err(PayloadError::Broken));
        assert_eq!(parse_websocket_message(b"{}"), Err(PayloadError::Broken));
    }

    #[test]
    fn close_frames() {
        assert_eq!(
            parse_close(br#"[3000,"Go away!"]"#),
            Ok((3000, "Go away!".into()))
        );
        assert_eq!(
            parse_close(b"[ 1002 , \"a\\u2028\" ]"),
            Ok((1002, "a\u{2028}".into()))
        );
        for bad in [
            &b"[3000]"[..],
            b"[70000,\"x\"]",
            b"[1.5,\"x\"]",
            b"[-1,\"x\"]",
            b"[1000,\"x\"]x",
            b"3000,\"x\"",
            b"",
            b"[1000000000000,\"x\"]",
        ] {
            assert_eq!(parse_close(bad), Err(PayloadError::Broken), "{bad:?}");
        }
    }

    #[test]
    fn info_objects() {
        let info = parse_info(
            br#"{"websocket":false,"origins":["*:*"],"cookie_needed":true,"entropy":-12.5e3,"x":{"y":[null,{}]}}"#,
        );
        assert_eq!(
            info,
            Ok(Info {
                websocket: false,
                cookie_needed: true
            })
        );
        assert_eq!(
            parse_info(b" {} "),
            Ok(Info {
                websocket: true,
                cookie_needed: false
            })
        );
        assert_eq!(parse_info(b""), Err(PayloadError::Empty));
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(40), "]".repeat(40));
        for bad in [
            &b"[]"[..],
            b"{\"websocket\":1}",
            b"{\"a\":01x}",
            b"{\"a\":}",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"{\"a\":tru}",
            b"{\"a\":1} x",
            deep.as_bytes(),
        ] {
            assert_eq!(parse_info(bad), Err(PayloadError::Broken), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_a_general_json_parser(input in proptest::collection::vec(
            prop_oneof![Just(b'['), Just(b']'), Just(b'"'), Just(b','), Just(b'\\'), Just(b'u'),
                        Just(b'a'), Just(b'0'), Just(b' '), any::<u8>()], 0..40)) {
            let ours = parse_array(&input);
            let theirs: Result<Vec<String>, _> = serde_json::from_slice(&input);
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                // serde_json refuses lone surrogate escapes, which we accept as U+FFFD.
                (Ok(a), Err(_)) => {
                    let replaced = a.iter().any(|s| s.contains(char::REPLACEMENT_CHARACTER));
                    prop_assert!(replaced);
                }
                (Err(_), Ok(_)) => prop_assert!(false, "we refused what JSON accepts: {:?}", input),
            }
        }

        #[test]
        fn round_trips_any_strings(msgs in proptest::collection::vec(any::<String>(), 0..5)) {
            let json = serde_json::to_vec(&msgs).unwrap();
            prop_assert_eq!(parse_array(&json), Ok(msgs));
        }
    }
}
