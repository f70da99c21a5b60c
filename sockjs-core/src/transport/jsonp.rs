//! `jsonp` (polling) and `jsonp_send`.

use bytes::{BufMut, BytesMut};

use crate::frame::write_script_string;
use crate::http::query;
use crate::payload::{PayloadError, parse_array};

/// One frame as `/**/<callback>("<frame>");\r\n`. The leading comment keeps the response from
/// being read as a Flash file (CVE-2014-4671); the response also carries `nosniff`.
pub fn write_frame(out: &mut BytesMut, callback: &[u8], frame: &[u8]) {
    out.reserve(frame.len() + callback.len() + 16);
    out.put_slice(b"/**/");
    out.put_slice(callback);
    out.put_u8(b'(');
    write_script_string(out, frame);
    out.put_slice(b");\r\n");
}

/// The messages in a `jsonp_send` body: a form field `d` holding a JSON array of strings when
/// the body is form-encoded, else the body itself as that JSON.
pub fn parse_send(content_type: Option<&[u8]>, body: &[u8]) -> Result<Vec<String>, PayloadError> {
    let is_form = content_type.is_some_and(|ct| {
        let mime = ct
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        mime.eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
    });
    if !is_form {
        return parse_array(body);
    }
    match query::param(body, "d") {
        Some(d) if !d.is_empty() => parse_array(&d),
        _ => Err(PayloadError::Empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");

    #[test]
    fn frames() {
        let mut out = BytesMut::new();
        write_frame(&mut out, b"callback", b"o");
        assert_eq!(&out[..], b"/**/callback(\"o\");\r\n");
        let mut out = BytesMut::new();
        write_frame(&mut out, b"x", br#"a["abc","%61bc"]"#);
        assert_eq!(
            &out[..],
            &b"/**/x(\"a[\\\"abc\\\",\\\"%61bc\\\"]\");\r\n"[..]
        );
    }

    #[test]
    fn sends() {
        assert_eq!(parse_send(FORM, b"d=%5B%22x%22%5D"), Ok(vec!["x".into()]));
        assert_eq!(
            parse_send(Some(b"text/plain"), br#"["%61bc"]"#),
            Ok(vec!["%61bc".into()])
        );
        assert_eq!(parse_send(None, br#"["a"]"#), Ok(vec!["a".into()]));
        assert_eq!(parse_send(FORM, b"d=%5B%22x"), Err(PayloadError::Broken));
        for empty in [&b""[..], b"d=", b"p=p"] {
            assert_eq!(parse_send(FORM, empty), Err(PayloadError::Empty));
        }
        assert_eq!(parse_send(None, b""), Err(PayloadError::Empty));
        assert_eq!(parse_send(FORM, b"d=%5B%5D"), Ok(vec![]));
    }
}
