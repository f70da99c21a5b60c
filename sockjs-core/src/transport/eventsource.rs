//! `eventsource`: frames as server-sent events, `data: <frame>\r\n\r\n`.

use bytes::{BufMut, BytesMut};

use crate::frame::write_eventsource_escaped;

/// The prelude: one `\r\n` (an old browser needs a line before the first event).
pub fn write_prelude(out: &mut BytesMut) {
    out.put_slice(b"\r\n");
}

/// One event carrying `frame`, with `%`, CR, LF and NUL percent-escaped.
pub fn write_frame(out: &mut BytesMut, frame: &[u8]) {
    out.reserve(frame.len() + 10);
    out.put_slice(b"data: ");
    write_eventsource_escaped(out, frame);
    out.put_slice(b"\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        let mut out = BytesMut::new();
        write_frame(&mut out, br#"a["  \u0000\n\r 100%"]"#);
        assert_eq!(&out[..], b"data: a[\"  \\u0000\\n\\r 100%25\"]\r\n\r\n");
    }
}
