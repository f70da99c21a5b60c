//! Every HTTP transport byte for byte: `xhr`, `xhr_send`, `xhr_streaming`, `eventsource`,
//! `htmlfile`, `jsonp`, `jsonp_send`, their content types, the JSESSIONID cookie, and the
//! JSON escaping of messages on the way out.

use sockjs_core::Options;
use sockjs_core::testing::{Harness, NO_CACHE, session_url};

const JS: &str = "application/javascript; charset=UTF-8";

fn xhr_head(len: usize) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {JS}\r\nCache-Control: {NO_CACHE}\r\n\
         Access-Control-Allow-Origin: *\r\nVary: Origin\r\nContent-Length: {len}\r\n\r\n"
    )
}

// ----- xhr -----

#[test]
fn xhr_opens_with_o_and_a_content_length() {
    let mut h = Harness::echo();
    let r = h.post("/echo/000/s/xhr", b"");
    assert_eq!(r.head, xhr_head(2));
    assert_eq!(r.text(), "o\n");
}

#[test]
fn xhr_with_origin_gets_credentialed_cors() {
    let mut h = Harness::echo();
    let r = h.fetch("POST", "/echo/000/s/xhr", &[("Origin", "test")], b"");
    assert_eq!(
        r.head,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {JS}\r\nCache-Control: {NO_CACHE}\r\n\
             Access-Control-Allow-Origin: test\r\nAccess-Control-Allow-Credentials: true\r\n\
             Vary: Origin\r\nContent-Length: 2\r\n\r\n"
        )
    );
}

#[test]
fn xhr_delivers_a_message_sent_by_xhr_send_and_echoed() {
    let mut h = Harness::echo();
    let url = session_url("s");
    assert_eq!(h.xhr(&url), "o\n");
    let s = h.opened();
    h.xhr_send(&url, r#"["a"]"#);
    assert_eq!(h.messages(s), ["a"]);
    h.app_send(s, "a");
    let r = h.post(&format!("{url}/xhr"), b"");
    assert_eq!(r.head, xhr_head(7));
    assert_eq!(r.text(), "a[\"a\"]\n");
}

#[test]
fn server_id_is_ignored_and_session_ids_take_any_value() {
    let mut h = Harness::echo();
    for id in ["a", "_", "1", "abcdefgh_i-j%20", "%F0%9F%98%80"] {
        let url = format!("/echo/000/{id}");
        assert_eq!(h.xhr(&url), "o\n", "{id}");
        let s = h.opened();
        h.app_send(s, id);
        assert_eq!(h.xhr(&format!("/echo/999/{id}")), format!("a[\"{id}\"]\n"));
    }
}

#[test]
fn post_without_content_length_or_with_an_empty_one_is_served() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.send_bytes(c, b"POST /echo/000/a/xhr HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.read_response(c).text(), "o\n");
    let c = h.connect();
    h.send_bytes(
        c,
        b"POST /echo/000/b/xhr HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
    );
    assert_eq!(h.read_response(c).text(), "o\n");
}

// ----- xhr_send -----

#[test]
fn xhr_send_answers_204_text_plain_with_no_body() {
    let mut h = Harness::echo();
    h.xhr("/echo/000/s");
    let r = h.fetch(
        "POST",
        "/echo/000/s/xhr_send",
        &[("Origin", "test")],
        br#"["x"]"#,
    );
    assert_eq!(
        r.head,
        format!(
            "HTTP/1.1 204 No Content\r\nCache-Control: {NO_CACHE}\r\n\
             Access-Control-Allow-Origin: test\r\nAccess-Control-Allow-Credentials: true\r\n\
             Vary: Origin\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
        )
    );
    assert!(r.body.is_empty());
}

#[test]
fn xhr_send_errors_are_500_with_the_expected_texts() {
    let mut h = Harness::echo();
    h.xhr("/echo/000/s");
    let s = h.opened();
    let cases: [(&[u8], &str); 9] = [
        (b"", "Payload expected."),
        (b"[\"x", "Broken JSON encoding."),
        (b"[1]", "Broken JSON encoding."),
        (b"[null]", "Broken JSON encoding."),
        (b"{}", "Broken JSON encoding."),
        (b"\"x\"", "Broken JSON encoding."),
        (b"[\"a\",]", "Broken JSON encoding."),
        (b"[\"\xff\"]", "Broken JSON encoding."),
        (b" ", "Broken JSON encoding."),
    ];
    for (body, text) in cases {
        let r = h.post("/echo/000/s/xhr_send", body);
        assert_eq!(
            r.head,
            format!(
                "HTTP/1.1 500 Internal Server Error\r\nCache-Control: {NO_CACHE}\r\n\
                 Access-Control-Allow-Origin: *\r\nVary: Origin\r\n\
                 Content-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
                text.len()
            ),
            "{body:?}"
        );
        assert_eq!(r.text(), text);
    }
    // Nothing reached the application, and the session is still fine.
    assert!(h.take_events().is_empty());
    h.xhr_send("/echo/000/s", r#"["a"]"#);
    assert_eq!(h.messages(s), ["a"]);
}

#[test]
fn xhr_send_to_an_unknown_session_is_404_and_creates_nothing() {
    let mut h = Harness::echo();
    let r = h.post("/echo/000/nobody/xhr_send", br#"["x"]"#);
    assert_eq!(
        r.head,
        format!(
            "HTTP/1.1 404 Not Found\r\nCache-Control: {NO_CACHE}\r\n\
             Access-Control-Allow-Origin: *\r\nVary: Origin\r\n\
             Content-Type: text/plain; charset=UTF-8\r\nContent-Length: 26\r\n\r\n"
        )
    );
    assert_eq!(h.server.session_count(), 0);
    assert!(h.take_events().is_empty());
}

#[test]
fn xhr_send_accepts_any_content_type() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let types = [
        "text/plain",
        "T",
        "application/json",
        "application/xml",
        "",
        "application/json; charset=utf-8",
        "text/xml; charset=utf-8",
        "text/xml",
        "application/x-www-form-urlencoded",
    ];
    for ct in types {
        let r = h.fetch(
            "POST",
            &format!("{url}/xhr_send"),
            &[("Content-Type", ct)],
            br#"["a"]"#,
        );
        assert_eq!(r.status, 204, "{ct}");
    }
    assert_eq!(h.messages(s).len(), types.len());
}

#[test]
fn xhr_send_of_an_empty_array_is_accepted_and_delivers_nothing() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    h.xhr_send(&url, "[]");
    assert!(h.take_events().is_empty());
    h.xhr_send(&url, r#" [ "a" , "b" ] "#);
    assert_eq!(h.messages(s), ["a", "b"]);
}

#[test]
fn xhr_send_with_a_chunked_body() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let c = h.connect();
    h.send_bytes(
        c,
        b"POST /echo/000/s/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\n[\"a\r\n2\r\n\"]\r\n0\r\n\r\n",
    );
    assert_eq!(h.read_response(c).status, 204);
    assert_eq!(h.messages(s), ["a"]);
}

// ----- xhr_streaming -----

#[test]
fn xhr_streaming_prelude_and_frames_are_separate_chunks() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let c = h.connect();
    h.request(
        c,
        "POST",
        &format!("{url}/xhr_streaming"),
        &[("Origin", "test")],
        b"",
    );
    let head = h.read_head(c);
    assert_eq!(
        head.head,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {JS}\r\nCache-Control: {NO_CACHE}\r\n\
             Access-Control-Allow-Origin: test\r\nAccess-Control-Allow-Credentials: true\r\n\
             Vary: Origin\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
    );
    // The raw bytes: a 0x801-byte chunk of 2048 `h` and a newline, then `o\n`.
    let mut expected = b"801\r\n".to_vec();
    expected.extend_from_slice(&[b'h'; 2048]);
    expected.extend_from_slice(b"\n\r\n2\r\no\n\r\n");
    assert_eq!(h.unread(c), &expected[..]);
    assert_eq!(h.chunk(c), format!("{}\n", "h".repeat(2048)));
    assert_eq!(h.chunk(c), "o\n");
    let s = h.opened();

    h.xhr_send(&url, r#"["x"]"#);
    assert_eq!(h.messages(s), ["x"]);
    h.app_send(s, "x");
    assert_eq!(h.unread(c), b"7\r\na[\"x\"]\n\r\n");
    assert_eq!(h.chunk(c), "a[\"x\"]\n");
    h.app_send(s, "y");
    h.app_send(s, "z");
    assert_eq!(h.chunk(c), "a[\"y\"]\n");
    assert_eq!(h.chunk(c), "a[\"z\"]\n");
    assert_eq!(h.closed(c), None);
}

#[test]
fn xhr_streaming_ends_at_response_limit_and_the_session_stays_open() {
    let mut h = Harness::with_options(Options::default().response_limit(4096));
    let url = session_url("s");
    let c = h.open_streaming(&url);
    assert_eq!(h.chunk(c), "o\n");
    let s = h.opened();
    // The suite's numbers: `o\n` plus 30 frames of 134 bytes stay under 4096; the 31st
    // passes it and ends the response.
    let msg = "x".repeat(128);
    for i in 0..31 {
        h.app_send(s, &msg);
        assert_eq!(h.chunk(c), format!("a[\"{msg}\"]\n"), "frame {i}");
        if i < 30 {
            assert_eq!(h.read_chunk(c), None, "still going after frame {i}");
        }
    }
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
    h.assert_nothing_unread(c);
    assert_eq!(h.closed(c), None, "keep-alive: the connection stays");
    assert!(h.take_events().is_empty(), "the session stays open");
    // The client reconnects on the same connection and carries on.
    h.request(c, "POST", &format!("{url}/xhr_streaming"), &[], b"");
    h.read_head(c);
    h.chunk(c);
    h.app_send(s, "more");
    assert_eq!(h.chunk(c), "a[\"more\"]\n");
}

#[test]
fn response_limit_counts_frame_bytes_but_not_the_prelude() {
    // `o\n` is 2 bytes: a limit of 2 ends the response right after it, whatever the
    // 2049-byte prelude; a limit of 3 does not.
    let mut h = Harness::with_options(Options::default().response_limit(2));
    let c = h.open_streaming("/echo/000/a");
    assert_eq!(h.chunk(c), "o\n");
    assert_eq!(h.read_chunk(c), Some(Vec::new()));

    let mut h = Harness::with_options(Options::default().response_limit(3));
    let c = h.open_streaming("/echo/000/a");
    assert_eq!(h.chunk(c), "o\n");
    assert_eq!(h.read_chunk(c), None);
    let s = h.opened();
    h.app_send(s, "");
    assert_eq!(h.chunk(c), "a[\"\"]\n");
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
}

#[test]
fn response_limit_counts_the_transport_framing() {
    // `data: o\r\n\r\n` is 11 bytes on eventsource.
    let mut h = Harness::with_options(Options::default().response_limit(11));
    let c = h.connect();
    h.request(c, "GET", "/echo/000/a/eventsource", &[], b"");
    h.read_head(c);
    assert_eq!(h.chunk(c), "\r\n");
    assert_eq!(h.chunk(c), "data: o\r\n\r\n");
    assert_eq!(h.read_chunk(c), Some(Vec::new()));

    let mut h = Harness::with_options(Options::default().response_limit(12));
    let c = h.connect();
    h.request(c, "GET", "/echo/000/a/eventsource", &[], b"");
    h.read_head(c);
    assert_eq!(h.chunk(c), "\r\n");
    assert_eq!(h.chunk(c), "data: o\r\n\r\n");
    assert_eq!(h.read_chunk(c), None);
}

// ----- eventsource -----

#[test]
fn eventsource_prelude_and_events() {
    let mut h = Harness::echo();
    let url = session_url("s");
    let c = h.connect();
    h.request(c, "GET", &format!("{url}/eventsource"), &[], b"");
    let head = h.read_head(c);
    assert_eq!(
        head.head,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: {NO_CACHE}\r\n\
             Access-Control-Allow-Origin: *\r\nVary: Origin\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
    );
    assert_eq!(h.chunk(c), "\r\n");
    assert_eq!(h.chunk(c), "data: o\r\n\r\n");
    let s = h.opened();
    h.app_send(s, "x");
    assert_eq!(h.chunk(c), "data: a[\"x\"]\r\n\r\n");
    // The suite's message: JSON escaping leaves nothing for the event framing to break.
    h.app_send(s, "  \u{0}\n\r ");
    assert_eq!(h.chunk(c), "data: a[\"  \\u0000\\n\\r \"]\r\n\r\n");
}

#[test]
fn eventsource_escapes_percent_and_line_breaks() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", "/echo/000/s/eventsource", &[], b"");
    h.read_head(c);
    h.chunk(c);
    h.chunk(c);
    let s = h.opened();
    // `%` would break the client's decodeURI; it goes out as %25.
    h.app_send(s, "100% %61");
    assert_eq!(h.chunk(c), "data: a[\"100%25 %2561\"]\r\n\r\n");
    // A close reason is the one place raw text could carry CR or LF (JSON escapes them).
    h.app_close(s, 3000, "a\r\nb%");
    assert_eq!(h.chunk(c), "data: c[3000,\"a\\r\\nb%25\"]\r\n\r\n");
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
}

#[test]
fn eventsource_ends_at_response_limit() {
    let mut h = Harness::with_options(Options::default().response_limit(4096));
    let c = h.connect();
    h.request(c, "GET", "/echo/000/s/eventsource", &[], b"");
    h.read_head(c);
    h.chunk(c);
    assert_eq!(h.chunk(c), "data: o\r\n\r\n");
    let s = h.opened();
    let msg = "x".repeat(4096);
    h.app_send(s, &msg);
    assert_eq!(h.chunk(c), format!("data: a[\"{msg}\"]\r\n\r\n"));
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
}

// ----- htmlfile -----

const HTMLFILE_HEAD: &str = "<!doctype html>
<html><head>
  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />
  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.callback;
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>";

#[test]
fn htmlfile_page_is_padded_past_1k_and_calls_the_callback() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", "/echo/000/s/htmlfile?c=%63allback", &[], b"");
    let head = h.read_head(c);
    assert_eq!(
        head.head,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n\
             Cache-Control: {NO_CACHE}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
    );
    let page = h.chunk(c);
    assert_eq!(page.len(), 1035);
    let padding = 1035 - HTMLFILE_HEAD.len() - 4;
    assert_eq!(
        page,
        format!("{HTMLFILE_HEAD}{}\r\n\r\n", " ".repeat(padding))
    );
    assert_eq!(h.chunk(c), "<script>\np(\"o\");\n</script>\r\n");
    let s = h.opened();
    h.app_send(s, "x");
    assert_eq!(h.chunk(c), "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n");
}

#[test]
fn htmlfile_accepts_the_callback_parameter_too() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(
        c,
        "GET",
        "/echo/000/s/htmlfile?t=1&callback=a.b_c-1",
        &[],
        b"",
    );
    h.read_head(c);
    assert!(h.chunk(c).contains("var c = parent.a.b_c-1;\n"));
}

#[test]
fn htmlfile_messages_cannot_close_the_script_block() {
    let mut h = Harness::echo();
    let c = h.connect();
    h.request(c, "GET", "/echo/000/s/htmlfile?c=cb", &[], b"");
    h.read_head(c);
    h.chunk(c);
    h.chunk(c);
    let s = h.opened();
    h.app_send(s, "</script><script>alert(1)</script>&\u{2028}\u{2029}");
    // The frame is a["..."] (U+2028 and U+2029 already escaped by the SockJS JSON rules);
    // the script string escapes `<`, `>` and `&` on top.
    assert_eq!(
        h.chunk(c),
        "<script>\np(\"a[\\\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\
         \\u0026\\\\u2028\\\\u2029\\\"]\");\n</script>\r\n"
    );
}

#[test]
fn htmlfile_and_jsonp_callback_errors() {
    let mut h = Harness::echo();
    for t in ["htmlfile", "jsonp"] {
        let r = h.get(&format!("/echo/a/a/{t}"));
        assert_eq!(
            r.head,
            format!(
                "HTTP/1.1 500 Internal Server Error\r\nCache-Control: {NO_CACHE}\r\n\
                 Content-Type: text/plain; charset=UTF-8\r\nContent-Length: 29\r\n\r\n"
            )
        );
        assert_eq!(r.text(), "\"callback\" parameter required");
        let too_long = format!("c={}", "a".repeat(33));
        for bad in [
            "c=%20",
            "c=*",
            "c=abc(",
            "c=abc%28",
            "c=",
            "c=a%3Bb",
            "c=%E2%80%A8",
            "callback=x(1)",
            &too_long,
        ] {
            let r = h.get(&format!("/echo/a/a/{t}?{bad}"));
            assert_eq!(r.status, 500, "{t} {bad}");
            assert_eq!(r.text(), "invalid \"callback\" parameter", "{t} {bad}");
        }
    }
    assert_eq!(h.server.session_count(), 0);
    assert!(h.take_events().is_empty());
}

#[test]
fn callback_of_32_allowed_characters_is_accepted() {
    let mut h = Harness::echo();
    let name = "aZ09_.-aZ09_.-aZ09_.-aZ09_.-abcd";
    assert_eq!(name.len(), 32);
    let r = h.get(&format!("/echo/000/s/jsonp?c={name}"));
    assert_eq!(r.text(), format!("/**/{name}(\"o\");\r\n"));
}

#[test]
fn htmlfile_ends_at_response_limit() {
    let mut h = Harness::with_options(Options::default().response_limit(4096));
    let c = h.connect();
    h.request(c, "GET", "/echo/000/s/htmlfile?c=callback", &[], b"");
    h.read_head(c);
    h.chunk(c);
    assert_eq!(h.chunk(c), "<script>\np(\"o\");\n</script>\r\n");
    let s = h.opened();
    let msg = "x".repeat(4096);
    h.app_send(s, &msg);
    assert_eq!(
        h.chunk(c),
        format!("<script>\np(\"a[\\\"{msg}\\\"]\");\n</script>\r\n")
    );
    assert_eq!(h.read_chunk(c), Some(Vec::new()));
}

// ----- jsonp -----

#[test]
fn jsonp_is_a_commented_callback_call_with_nosniff() {
    let mut h = Harness::echo();
    let r = h.get("/echo/000/s/jsonp?c=%63allback");
    assert_eq!(
        r.head,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {JS}\r\nCache-Control: {NO_CACHE}\r\n\
             X-Content-Type-Options: nosniff\r\nContent-Length: 20\r\n\r\n"
        )
    );
    assert_eq!(r.text(), "/**/callback(\"o\");\r\n");
}

#[test]
fn jsonp_send_form_encoded_answers_ok() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.get(&format!("{url}/jsonp?c=x"));
    let s = h.opened();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = h.fetch(
        "POST",
        &format!("{url}/jsonp_send"),
        &form,
        b"d=%5B%22x%22%5D",
    );
    assert_eq!(
        r.head,
        format!(
            "HTTP/1.1 200 OK\r\nCache-Control: {NO_CACHE}\r\n\
             Content-Type: text/plain; charset=UTF-8\r\nContent-Length: 2\r\n\r\n"
        )
    );
    assert_eq!(r.text(), "ok");
    assert_eq!(h.messages(s), ["x"]);
    h.app_send(s, "x");
    assert_eq!(
        h.get(&format!("{url}/jsonp?c=x")).text(),
        "/**/x(\"a[\\\"x\\\"]\");\r\n"
    );
}

#[test]
fn jsonp_send_raw_json_keeps_percent_signs() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.get(&format!("{url}/jsonp?c=x"));
    let s = h.opened();
    let form = [(
        "Content-Type",
        "application/x-www-form-urlencoded; charset=UTF-8",
    )];
    let r = h.fetch(
        "POST",
        &format!("{url}/jsonp_send"),
        &form,
        b"d=%5B%22abc%22%5D",
    );
    assert_eq!(r.text(), "ok");
    let plain = [("Content-Type", "text/plain")];
    let r = h.fetch(
        "POST",
        &format!("{url}/jsonp_send"),
        &plain,
        br#"["%61bc"]"#,
    );
    assert_eq!(r.text(), "ok");
    let r = h.fetch("POST", &format!("{url}/jsonp_send"), &[], br#"["+"]"#);
    assert_eq!(r.text(), "ok");
    assert_eq!(h.messages(s), ["abc", "%61bc", "+"]);
}

#[test]
fn jsonp_send_errors() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.get(&format!("{url}/jsonp?c=x"));
    let s = h.opened();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = h.fetch("POST", &format!("{url}/jsonp_send"), &form, b"d=%5B%22x");
    assert_eq!((r.status, r.text()), (500, "Broken JSON encoding."));
    for body in [&b""[..], b"d=", b"p=p"] {
        let r = h.fetch("POST", &format!("{url}/jsonp_send"), &form, body);
        assert_eq!((r.status, r.text()), (500, "Payload expected."), "{body:?}");
    }
    let r = h.fetch(
        "POST",
        "/echo/000/other/jsonp_send",
        &form,
        b"d=%5B%22x%22%5D",
    );
    assert_eq!(r.status, 404);
    // Empty arrays are fine.
    let r = h.fetch("POST", &format!("{url}/jsonp_send"), &form, b"d=%5B%5D");
    assert_eq!(r.text(), "ok");
    assert!(h.take_events().is_empty());
    let r = h.fetch(
        "POST",
        &format!("{url}/jsonp_send"),
        &form,
        b"d=%5B%22b%22%5D",
    );
    assert_eq!(r.text(), "ok");
    assert_eq!(h.messages(s), ["b"]);
}

#[test]
fn jsonp_close_frame_is_a_script_string() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.get(&format!("{url}/jsonp?c=x"));
    let s = h.opened();
    h.app_close(s, 3000, "Go away!");
    for _ in 0..2 {
        let r = h.get(&format!("{url}/jsonp?c=x"));
        assert_eq!(r.text(), "/**/x(\"c[3000,\\\"Go away!\\\"]\");\r\n");
    }
}

#[test]
fn jsonp_messages_cannot_break_out_of_the_script() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.get(&format!("{url}/jsonp?c=x"));
    let s = h.opened();
    h.app_send(s, "</script>\u{2029}");
    let r = h.get(&format!("{url}/jsonp?c=x"));
    assert_eq!(
        r.text(),
        "/**/x(\"a[\\\"\\u003c/script\\u003e\\\\u2029\\\"]\");\r\n"
    );
}

// ----- cookies -----

#[test]
fn jsessionid_dummy_on_every_session_response_when_cookie_needed() {
    let mut h = Harness::with_options(Options::default().cookie_needed(true));
    let cookie = (
        "Set-Cookie".to_string(),
        "JSESSIONID=dummy; path=/".to_string(),
    );
    let r = h.post("/echo/000/s/xhr", b"");
    assert_eq!(r.text(), "o\n");
    assert_eq!(r.headers[1], cookie);
    let r = h.post("/echo/000/s/xhr_send", br#"["x"]"#);
    assert_eq!(r.headers[0], cookie);
    let r = h.post("/echo/000/s/xhr_send", b"");
    assert_eq!((r.status, &r.headers[0]), (500, &cookie));
    let r = h.post("/echo/000/nobody/xhr_send", br#"["x"]"#);
    assert_eq!((r.status, &r.headers[0]), (404, &cookie));
    let r = h.get("/echo/000/j/jsonp?c=callback");
    assert_eq!(r.headers[1], cookie);
    assert_eq!(r.text(), "/**/callback(\"o\");\r\n");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = h.fetch("POST", "/echo/000/j/jsonp_send", &form, b"d=%5B%22x%22%5D");
    assert_eq!((r.text(), &r.headers[0]), ("ok", &cookie));
    for (method, t) in [
        ("POST", "xhr_streaming"),
        ("GET", "eventsource"),
        ("GET", "htmlfile?c=x"),
    ] {
        let c = h.connect();
        h.request(c, method, &format!("/echo/000/{}/{t}", t.len()), &[], b"");
        let head = h.read_head(c);
        assert_eq!(head.status, 200, "{t}");
        assert_eq!(head.headers[1], cookie, "{t}");
    }
}

#[test]
fn jsessionid_is_echoed_when_the_client_has_one() {
    let mut h = Harness::with_options(Options::default().cookie_needed(true));
    let r = h.fetch(
        "POST",
        "/echo/000/s/xhr",
        &[("Cookie", "a=b; JSESSIONID=abcdef")],
        b"",
    );
    assert_eq!(r.header("Set-Cookie"), Some("JSESSIONID=abcdef; path=/"));
    // A value that is not made of cookie octets is not reflected.
    let r = h.fetch(
        "POST",
        "/echo/000/t/xhr",
        &[("Cookie", "JSESSIONID=a\"b")],
        b"",
    );
    assert_eq!(r.header("Set-Cookie"), Some("JSESSIONID=dummy; path=/"));
}

#[test]
fn no_cookie_when_not_needed() {
    let mut h = Harness::echo();
    let r = h.fetch(
        "POST",
        "/echo/000/s/xhr",
        &[("Cookie", "JSESSIONID=abcdef")],
        b"",
    );
    assert!(!r.has("Set-Cookie"));
    let r = h.get("/echo/000/j/jsonp?c=x");
    assert!(!r.has("Set-Cookie"));
}

// ----- JSON escaping -----

/// Every code point from U+00FF the suite expects the server to escape, escaped.
fn server_killer_string_escaped() -> String {
    let mut out = String::from("\"");
    for cp in 255u32..65536 {
        let escaped = (0x200c..=0x200f).contains(&cp)
            || (0x2028..=0x202f).contains(&cp)
            || (0x2060..=0x206f).contains(&cp)
            || (0xfff0..=0xffff).contains(&cp);
        if escaped && char::from_u32(cp).is_some() {
            out.push_str(&format!("\\u{cp:04x}"));
        }
    }
    out.push('"');
    out
}

#[test]
fn json_escaping_of_the_suites_server_killer_string() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    let escaped = server_killer_string_escaped();
    // The client sends the characters raw; the server must escape them on the way back.
    let raw: String = serde_json::from_str(&escaped).unwrap();
    h.xhr_send(&url, &format!("[\"{raw}\"]"));
    assert_eq!(h.messages(s), [raw.as_str()]);
    h.app_send(s, &raw);
    assert_eq!(h.xhr(&url), format!("a[{escaped}]\n"));
}

#[test]
fn json_escaping_of_control_characters_quotes_and_backslashes() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    h.app_send(s, "\u{0}\u{1}\u{1f}\u{8}\t\n\u{c}\r\"\\/\u{7f}é");
    assert_eq!(
        h.xhr(&url),
        "a[\"\\u0000\\u0001\\u001f\\b\\t\\n\\f\\r\\\"\\\\/\u{7f}é\"]\n"
    );
}

#[test]
fn json_escaping_writes_astral_characters_as_escaped_surrogate_pairs() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    h.app_send(s, "\u{1f600}x\u{10000}\u{10ffff}");
    assert_eq!(
        h.xhr(&url),
        "a[\"\\ud83d\\ude00x\\ud800\\udc00\\udbff\\udfff\"]\n"
    );
}

#[test]
fn json_decoding_of_escapes_the_client_sends() {
    let mut h = Harness::echo();
    let url = session_url("s");
    h.xhr(&url);
    let s = h.opened();
    // What sockjs-client escapes before sending, and surrogates in both forms.
    h.xhr_send(
        &url,
        r#"["\u00ad\u0600\u2000\ufeff\uffff\u0300","\ud83d\ude00","\ud800","a\/b","\"\\"]"#,
    );
    assert_eq!(
        h.messages(s),
        [
            "\u{ad}\u{600}\u{2000}\u{feff}\u{ffff}\u{300}",
            "\u{1f600}",
            "\u{fffd}",
            "a/b",
            "\"\\"
        ]
    );
}

#[test]
fn messages_round_trip_through_every_transport_identically() {
    // The same message, as each transport wraps the same `a[...]` frame.
    let text = "é\u{2028}\"</b>%\u{1f600}";
    let frame = "a[\"é\\u2028\\\"</b>%\\ud83d\\ude00\"]";
    let mut h = Harness::echo();
    h.xhr("/echo/000/x");
    let s = h.opened();
    h.app_send(s, text);
    assert_eq!(h.xhr("/echo/000/x"), format!("{frame}\n"));

    let c = h.connect();
    h.request(c, "GET", "/echo/000/e/eventsource", &[], b"");
    h.read_head(c);
    h.chunk(c);
    h.chunk(c);
    let s = h.opened();
    h.app_send(s, text);
    assert_eq!(
        h.chunk(c),
        format!("data: {}\r\n\r\n", frame.replace('%', "%25"))
    );

    let r = h.get("/echo/000/j/jsonp?c=f");
    assert_eq!(r.text(), "/**/f(\"o\");\r\n");
    let s = h.opened();
    h.app_send(s, text);
    let r = h.get("/echo/000/j/jsonp?c=f");
    let script = "\"a[\\\"é\\\\u2028\\\\\\\"\\u003c/b\\u003e%\\\\ud83d\\\\ude00\\\"]\"";
    assert_eq!(r.text(), format!("/**/f({script});\r\n"));
    assert!(h.take_events().is_empty());
}
