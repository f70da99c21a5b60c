//! The SockJS framing the load generator speaks: frames out of WebSocket messages and
//! newline-delimited HTTP bodies, and the numbered payloads it sends.
//!
//! A payload is its sequence number as 8 lowercase hex digits, padded with `x` to the
//! requested size: pure ASCII that needs no JSON escaping, so the echo can be checked
//! byte for byte and matched to its send time.

/// One SockJS frame as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `o`: the session is open.
    Open,
    /// `h`: heartbeat.
    Heartbeat,
    /// The xhr_streaming prelude: a line of `h` characters (2048 of them).
    Prelude,
    /// `a[...]`: messages.
    Messages(Vec<String>),
    /// `c[code,"reason"]`: the session is closed; holds the text after `c`.
    Close(String),
}

/// Parses one frame (without its trailing `\n`).
pub fn parse_frame(text: &str) -> Result<Frame, String> {
    match text.as_bytes().first() {
        Some(b'o') if text.len() == 1 => Ok(Frame::Open),
        Some(b'h') if text.len() == 1 => Ok(Frame::Heartbeat),
        Some(b'h') if text.bytes().all(|b| b == b'h') => Ok(Frame::Prelude),
        Some(b'a') => serde_json::from_str::<Vec<String>>(&text[1..])
            .map(Frame::Messages)
            .map_err(|e| format!("bad a-frame ({e}): {}", clip(text))),
        Some(b'c') => Ok(Frame::Close(text[1..].to_string())),
        _ => Err(format!("unexpected frame: {}", clip(text))),
    }
}

/// At most the first 80 characters of `text`, for error messages.
pub fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The payload with sequence number `seq` (low 32 bits), `size` bytes long (at least 8).
pub fn payload(seq: u64, size: usize) -> String {
    let mut p = format!("{:08x}", seq as u32);
    p.extend(std::iter::repeat_n('x', size.saturating_sub(8)));
    p
}

/// The sequence number of a payload made by [`payload`], `None` if it is not one.
pub fn payload_seq(text: &str) -> Option<u32> {
    let hex = text.get(..8)?;
    if !text.bytes().skip(8).all(|b| b == b'x') {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// The JSON array a client sends (`["m1","m2"]`) for ASCII payloads needing no escapes.
pub fn send_body(messages: &[&str]) -> String {
    let mut body = String::from("[");
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push('"');
        body.push_str(m);
        body.push('"');
    }
    body.push(']');
    body
}

/// Splits complete `\n`-terminated lines off the front of `pending`; a partial line stays.
///
/// A line (complete or not) longer than `max_line` is an error, so a peer that never sends
/// a newline cannot grow the buffer without bound.
pub fn take_lines(pending: &mut Vec<u8>, max_line: usize) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(nl) = pending[start..].iter().position(|&b| b == b'\n') {
        if nl > max_line {
            return Err(format!("frame over {max_line} bytes"));
        }
        let line = std::str::from_utf8(&pending[start..start + nl])
            .map_err(|_| "frame is not UTF-8".to_string())?;
        lines.push(line.to_string());
        start += nl + 1;
    }
    pending.drain(..start);
    if pending.len() > max_line {
        return Err(format!("frame over {max_line} bytes"));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(parse_frame("o"), Ok(Frame::Open));
        assert_eq!(parse_frame("h"), Ok(Frame::Heartbeat));
        assert_eq!(parse_frame(&"h".repeat(2048)), Ok(Frame::Prelude));
        assert_eq!(
            parse_frame(r#"a["x","y\"z"]"#),
            Ok(Frame::Messages(vec!["x".into(), "y\"z".into()]))
        );
        assert_eq!(
            parse_frame(r#"c[3000,"Go away!"]"#),
            Ok(Frame::Close(r#"[3000,"Go away!"]"#.into()))
        );
        assert!(parse_frame("a[1]").is_err());
        assert!(parse_frame("oops").is_err());
        assert!(parse_frame("").is_err());
    }

    #[test]
    fn payloads_round_trip() {
        let p = payload(0x1_0000_00ab, 20);
        assert_eq!(p, "000000abxxxxxxxxxxxx");
        assert_eq!(payload_seq(&p), Some(0xab));
        assert_eq!(payload(5, 1), "00000005");
        assert_eq!(payload_seq("0000000g"), None);
        assert_eq!(payload_seq("00000001y"), None);
        assert_eq!(payload_seq("0001"), None);
        assert_eq!(send_body(&["a", "b"]), r#"["a","b"]"#);
    }

    #[test]
    fn lines_are_split_and_bounded() {
        let mut pending = b"o\na[\"x\"]\nhh".to_vec();
        assert_eq!(take_lines(&mut pending, 100).unwrap(), ["o", "a[\"x\"]"]);
        assert_eq!(pending, b"hh");
        pending.extend_from_slice(b"h\n");
        assert_eq!(take_lines(&mut pending, 100).unwrap(), ["hhh"]);
        assert!(pending.is_empty());
        let mut long = vec![b'a'; 101];
        assert!(take_lines(&mut long, 100).is_err());
    }
}
