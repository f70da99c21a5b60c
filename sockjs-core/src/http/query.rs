//! Query strings, form bodies and cookies.

/// The first value of `name` in a query string or form body, percent-decoded (`+` is a space).
/// Malformed escapes are kept as they are.
pub fn param(query: &[u8], name: &str) -> Option<Vec<u8>> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decode(key) == name.as_bytes()).then(|| percent_decode(value))
    })
}

/// Decodes `%XX` escapes and `+` as a space.
pub fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The value of cookie `name` in a `Cookie` header, if present and made only of cookie-octets
/// (RFC 6265), so it can be sent back in `Set-Cookie` safely.
pub fn cookie<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let i = pair.iter().position(|&b| b == b'=')?;
        if pair[..i].trim_ascii() != name.as_bytes() {
            return None;
        }
        let mut value = pair[i + 1..].trim_ascii();
        if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
            value = &value[1..value.len() - 1];
        }
        let octet =
            |b: &u8| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
        (value.len() <= 256 && value.iter().all(octet)).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        assert_eq!(param(b"c=%63allback", "c"), Some(b"callback".to_vec()));
        assert_eq!(
            param(b"t=1&callback=a.b&c=x", "callback"),
            Some(b"a.b".to_vec())
        );
        assert_eq!(param(b"c=x&c=y", "c"), Some(b"x".to_vec()));
        assert_eq!(param(b"c", "c"), Some(Vec::new()));
        assert_eq!(param(b"d=", "d"), Some(Vec::new()));
        assert_eq!(param(b"p=p", "d"), None);
        assert_eq!(param(b"", "d"), None);
        assert_eq!(param(b"d=%5B%22x%22%5D", "d"), Some(b"[\"x\"]".to_vec()));
        assert_eq!(param(b"%64=1", "d"), Some(b"1".to_vec()));
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode(b"a+b%20c"), b"a b c");
        assert_eq!(percent_decode(b"%"), b"%");
        assert_eq!(percent_decode(b"%4"), b"%4");
        assert_eq!(percent_decode(b"%zz"), b"%zz");
        assert_eq!(percent_decode(b"%41%"), b"A%");
        assert_eq!(percent_decode(b"%e2%80%a8"), "\u{2028}".as_bytes());
    }

    #[test]
    fn cookies() {
        assert_eq!(
            cookie(b"a=b; JSESSIONID=abc", "JSESSIONID"),
            Some(&b"abc"[..])
        );
        assert_eq!(cookie(b"JSESSIONID=\"q\"", "JSESSIONID"), Some(&b"q"[..]));
        assert_eq!(cookie(b"JSESSIONID=a b", "JSESSIONID"), None);
        assert_eq!(cookie(b"JSESSIONID=a;b", "JSESSIONID"), Some(&b"a"[..]));
        assert_eq!(cookie(b"XJSESSIONID=a", "JSESSIONID"), None);
        assert_eq!(cookie(b"", "JSESSIONID"), None);
    }
}
