//! Response bodies into SockJS frames, one shape per HTTP transport: a whole body (`/info`,
//! `xhr`, `xhr_send`), `\n`-terminated lines (`xhr_streaming`), server-sent events
//! (`eventsource`). Each holds at most `max` bytes of a frame not yet complete.

use bytes::{Bytes, BytesMut};

/// A body or a frame over the client's `max_frame_size`.
pub(super) const TOO_LARGE: &str = "a frame or response body over max_frame_size";

/// How a connection's response body is read.
#[derive(Debug)]
pub(super) enum Body {
    /// Collected whole, handed out at its end.
    Whole(BytesMut),
    /// `\n`-terminated frames; lines of more than one `h` are the xhr_streaming prelude.
    Lines(BytesMut),
    /// `text/event-stream`: `data:` lines, events ended by an empty line, each event's data
    /// a frame with `%XX` escapes decoded.
    Events {
        /// The line being read.
        line: BytesMut,
        /// The data of the event being read.
        data: BytesMut,
    },
}

impl Body {
    pub(super) fn whole() -> Self {
        Body::Whole(BytesMut::new())
    }

    pub(super) fn lines() -> Self {
        Body::Lines(BytesMut::new())
    }

    pub(super) fn events() -> Self {
        Body::Events {
            line: BytesMut::new(),
            data: BytesMut::new(),
        }
    }

    /// Bytes held.
    pub(super) fn buffered(&self) -> usize {
        match self {
            Body::Whole(b) | Body::Lines(b) => b.len(),
            Body::Events { line, data } => line.len() + data.len(),
        }
    }

    /// Takes body bytes; appends the frames they complete to `frames`.
    pub(super) fn feed(
        &mut self,
        mut input: &[u8],
        max: usize,
        frames: &mut Vec<Bytes>,
    ) -> Result<(), &'static str> {
        match self {
            Body::Whole(buf) => {
                if buf.len() + input.len() > max {
                    return Err(TOO_LARGE);
                }
                buf.extend_from_slice(input);
            }
            Body::Lines(buf) => {
                while let Some(nl) = input.iter().position(|&b| b == b'\n') {
                    if buf.len() + nl > max {
                        return Err(TOO_LARGE);
                    }
                    buf.extend_from_slice(&input[..nl]);
                    input = &input[nl + 1..];
                    let line = buf.split().freeze();
                    let prelude = line.len() > 1 && line.iter().all(|&b| b == b'h');
                    if !prelude {
                        frames.push(line);
                    }
                }
                if buf.len() + input.len() > max {
                    return Err(TOO_LARGE);
                }
                buf.extend_from_slice(input);
            }
            Body::Events { line, data } => {
                while let Some(nl) = input.iter().position(|&b| b == b'\n') {
                    if line.len() + nl > max {
                        return Err(TOO_LARGE);
                    }
                    line.extend_from_slice(&input[..nl]);
                    input = &input[nl + 1..];
                    let text = line.split();
                    let text = text.strip_suffix(b"\r").unwrap_or(&text);
                    if text.is_empty() {
                        if !data.is_empty() {
                            frames.push(percent_decode(&data.split()));
                        }
                    } else if let Some(value) = field(text, b"data") {
                        if data.len() + value.len() > max {
                            return Err(TOO_LARGE);
                        }
                        if !data.is_empty() {
                            data.extend_from_slice(b"\n");
                        }
                        data.extend_from_slice(value);
                    }
                    // Comments (`:`) and other fields (`event`, `id`, `retry`) carry no frame.
                }
                if line.len() + input.len() > max {
                    return Err(TOO_LARGE);
                }
                line.extend_from_slice(input);
            }
        }
        Ok(())
    }

    /// The body ended: the frames a whole body holds (one per `\n`-terminated line, the
    /// last line's `\n` optional); an error if a streamed frame was left incomplete.
    pub(super) fn end(&mut self, frames: &mut Vec<Bytes>) -> Result<(), &'static str> {
        match self {
            Body::Whole(buf) => {
                let body = buf.split().freeze();
                let mut rest = &body[..];
                while !rest.is_empty() {
                    let nl = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                    if nl > 0 {
                        frames.push(body.slice_ref(&rest[..nl]));
                    }
                    rest = &rest[(nl + 1).min(rest.len())..];
                }
                Ok(())
            }
            Body::Lines(buf) if buf.is_empty() => Ok(()),
            Body::Events { line, .. } if line.is_empty() => Ok(()),
            _ => Err("the response ended inside a frame"),
        }
    }

    /// The whole body collected so far (for `/info` and `xhr_send`).
    pub(super) fn take_whole(&mut self) -> Bytes {
        match self {
            Body::Whole(buf) => buf.split().freeze(),
            _ => Bytes::new(),
        }
    }
}

/// The value of an event-stream line `name: value` or `name:value`.
fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let value = line.strip_prefix(name)?.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

/// Decodes `%XX` escapes (what the server's eventsource escaping writes, and what
/// `decodeURI` would read); a `%` not followed by two hex digits stays as it is.
fn percent_decode(s: &[u8]) -> Bytes {
    if !s.contains(&b'%') {
        return Bytes::copy_from_slice(s);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut body: Body, input: &[u8], step: usize) -> Result<Vec<Bytes>, &'static str> {
        let mut frames = Vec::new();
        for piece in input.chunks(step) {
            body.feed(piece, 64, &mut frames)?;
        }
        body.end(&mut frames)?;
        Ok(frames)
    }

    #[test]
    fn each_body_shape_gives_the_same_frames_however_split() {
        let prelude = "h".repeat(30) + "\n";
        let lines = format!("{prelude}o\nh\na[\"x\"]\n");
        let events =
            "\r\ndata: o\r\n\r\n: comment\r\ndata: a[\"100%25\",\"%zz\"]\r\n\r\ndata:h\n\n";
        for step in [1, 3, 1000] {
            let want = ["o", "h", "a[\"x\"]"].map(|s| Bytes::from_static(s.as_bytes()));
            assert_eq!(
                run(Body::lines(), lines.as_bytes(), step),
                Ok(want.to_vec())
            );
            assert_eq!(
                run(Body::whole(), b"a[\"x\"]\n", step),
                Ok(vec![Bytes::from_static(b"a[\"x\"]")])
            );
            let want = ["o", "a[\"100%\",\"%zz\"]", "h"].map(|s| Bytes::from_static(s.as_bytes()));
            assert_eq!(
                run(Body::events(), events.as_bytes(), step),
                Ok(want.to_vec())
            );
        }
    }

    #[test]
    fn bounds_and_truncation() {
        assert_eq!(
            run(Body::lines(), b"o\na[", 2),
            Err("the response ended inside a frame")
        );
        assert_eq!(run(Body::lines(), &[b'a'; 65], 65), Err(TOO_LARGE));
        assert_eq!(run(Body::whole(), &[b'a'; 65], 10), Err(TOO_LARGE));
        let long = format!("data: {}\n", "a".repeat(70));
        assert_eq!(run(Body::events(), long.as_bytes(), 7), Err(TOO_LARGE));
        let many = "data: aaaaaaaaaaaaaaaaaaaaaaaaa\n".repeat(3);
        assert_eq!(run(Body::events(), many.as_bytes(), 7), Err(TOO_LARGE));
    }
}
