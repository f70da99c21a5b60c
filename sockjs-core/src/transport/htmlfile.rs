//! `htmlfile`: a long HTML page calling `parent.<callback>`, one `<script>` block per frame.

use bytes::{BufMut, BytesMut};

use crate::frame::write_script_string;

const HEAD_BEFORE_CALLBACK: &str = "<!doctype html>
<html><head>
  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />
  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.";

const HEAD_AFTER_CALLBACK: &str = ";
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>";

/// The page head with `callback` (already validated), padded with spaces past 1 KiB, which
/// some browsers need before they start running a streamed page.
pub fn write_prelude(out: &mut BytesMut, callback: &[u8]) {
    // The padding does not depend on the callback's length, as in the reference server.
    let padding = 1023 - HEAD_BEFORE_CALLBACK.len() - HEAD_AFTER_CALLBACK.len();
    out.reserve(1100 + callback.len());
    out.put_slice(HEAD_BEFORE_CALLBACK.as_bytes());
    out.put_slice(callback);
    out.put_slice(HEAD_AFTER_CALLBACK.as_bytes());
    out.put_bytes(b' ', padding);
    out.put_slice(b"\r\n\r\n");
}

/// One frame as `<script>\np("<frame>");\n</script>\r\n`; the string literal escapes `<`, `>`
/// and `&`, so no message can end the script block.
pub fn write_frame(out: &mut BytesMut, frame: &[u8]) {
    out.reserve(frame.len() + 32);
    out.put_slice(b"<script>\np(");
    write_script_string(out, frame);
    out.put_slice(b");\n</script>\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelude_is_padded_past_1k() {
        let mut out = BytesMut::new();
        write_prelude(&mut out, b"callback");
        assert_eq!(out.len(), 1035);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(
            text.trim()
                .ends_with("window.onload = function() {c.stop();};\n  </script>")
        );
        assert!(text.contains("var c = parent.callback;\n"));
        assert!(text.ends_with("   \r\n\r\n"));
    }

    #[test]
    fn frames_cannot_close_the_script() {
        let mut out = BytesMut::new();
        write_frame(&mut out, br#"a["</script>"]"#);
        assert_eq!(
            &out[..],
            &b"<script>\np(\"a[\\\"\\u003c/script\\u003e\\\"]\");\n</script>\r\n"[..]
        );
        let mut out = BytesMut::new();
        write_frame(&mut out, b"o");
        assert_eq!(&out[..], b"<script>\np(\"o\");\n</script>\r\n");
    }
}
