//! `xhr` (polling), `xhr_streaming` and `xhr_send`: frames end with `\n`.

use bytes::{BufMut, BytesMut};

use crate::payload::{PayloadError, parse_array};

/// The streaming prelude: 2048 `h` and a newline (some browsers deliver nothing of an XHR
/// response before 2 KiB have arrived).
pub fn write_streaming_prelude(out: &mut BytesMut) {
    out.put_bytes(b'h', 2048);
    out.put_u8(b'\n');
}

/// A frame followed by `\n`.
pub fn write_frame(out: &mut BytesMut, frame: &[u8]) {
    out.reserve(frame.len() + 1);
    out.put_slice(frame);
    out.put_u8(b'\n');
}

/// The messages in an `xhr_send` body: a JSON array of strings, whatever the content type.
pub fn parse_send(body: &[u8]) -> Result<Vec<String>, PayloadError> {
    parse_array(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        let mut out = BytesMut::new();
        write_streaming_prelude(&mut out);
        write_frame(&mut out, b"o");
        assert_eq!(out.len(), 2049 + 2);
        assert!(out[..2048].iter().all(|&b| b == b'h'));
        assert_eq!(&out[2048..], b"\no\n");
    }
}
