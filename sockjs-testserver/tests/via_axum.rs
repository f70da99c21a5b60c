//! `sockjs-testserver --via axum`: the application's own route beside SockJS in one axum
//! Router, and the memory a streaming client that stops reading can cost through hyper.

mod support;

use support::{Conn, TestServer, exchange, sid};

#[test]
fn app_routes_beside_sockjs() {
    let s = TestServer::start("axum");
    let r = exchange(s.addr, "GET", "/", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let r = exchange(s.addr, "GET", "/echo", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "Welcome to SockJS!\n"));
    // Outside every prefix: the Router's own 404.
    let r = exchange(s.addr, "GET", "/nothing/here", &[], b"");
    assert_eq!(r.status, 404);
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// An xhr_streaming client that never reads while the server is asked for 25 MiB on its
/// session (`/amplify` answers `18` with 256 KiB): hyper stops polling the body once its
/// buffers and the socket's are full, the core holds at most its queue limit, then closes
/// the session; the server's memory stays bounded and it keeps serving.
#[test]
fn stalled_streaming_client_costs_bounded_memory() {
    let s = TestServer::start("axum");
    let session = sid();
    let mut stalled = Conn::open(s.addr);
    stalled.request(
        "POST",
        &format!("/amplify/000/{session}/xhr_streaming"),
        &[],
        b"",
    );
    assert_eq!(stalled.head().status, 200);
    let before = rss_kib(s.pid());
    let mut accepted = 0;
    for _ in 0..100 {
        let r = exchange(
            s.addr,
            "POST",
            &format!("/amplify/000/{session}/xhr_send"),
            &[("Content-Type", "text/plain")],
            b"[\"18\"]",
        );
        if r.status != 204 {
            // The session closed: its queue overflowed.
            assert_eq!(r.status, 404);
            break;
        }
        accepted += 1;
    }
    let grown = rss_kib(s.pid()).saturating_sub(before);
    assert!(accepted > 0);
    assert!(
        grown < 24 * 1024,
        "RSS grew {grown} KiB for {accepted} sends of 256 KiB to a client that does not read"
    );
    let r = exchange(s.addr, "GET", "/", &[], b"");
    assert_eq!(r.text(), "hello world");
    drop(stalled);
}
