//! Misbehaving clients: each loops until the deadline, picking a fault at random: abort in
//! the middle of a response, stall (ask for a lot and read nothing), read slowly, reconnect
//! and abandon sessions, or send malformed input. What they get back is not checked beyond
//! "the server answered or closed"; what matters is that the server stays well and the
//! well-behaved clients do not notice.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sockjs_bench::http_client::HttpConn;
use sockjs_bench::rng::Rng;
use sockjs_bench::ws_client::{WsConn, WsEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

use crate::check::Shared;

/// Bound on any one fault.
const FAULT_TIME: Duration = Duration::from_secs(30);

/// Runs faults until `deadline`.
pub(crate) async fn client(addr: SocketAddr, seed: u64, shared: Shared, deadline: Instant) {
    let mut rng = Rng::new(seed);
    while Instant::now() < deadline {
        let kind = match rng.next_u64() % 10 {
            0 => "abort-streaming",
            1 => "abort-websocket",
            2 => "stall-websocket",
            3 => "stall-streaming",
            4 => "slow-reader",
            5 => "reconnect-polling",
            6 => "two-receivers",
            7 => "malformed-http",
            8 => "malformed-websocket",
            _ => "garbage",
        };
        let seed = rng.next_u64();
        // Errors are what a fault is for; only a hang past the bound is cut.
        let _ = timeout(FAULT_TIME, fault(addr, kind, seed)).await;
        shared.fault(kind);
    }
}

fn session_path(rng: &mut Rng, prefix: &str) -> String {
    format!("{prefix}/{:03}/{}", rng.next_u64() % 1000, rng.session_id())
}

async fn fault(addr: SocketAddr, kind: &str, seed: u64) -> std::io::Result<()> {
    let mut rng = Rng::new(seed);
    match kind {
        "abort-streaming" => {
            // Open a streaming receiver, read part of its answer, and vanish.
            let path = session_path(&mut rng, "/echo");
            let (method, url) = match rng.next_u64() % 3 {
                0 => ("POST", format!("{path}/xhr_streaming")),
                1 => ("GET", format!("{path}/eventsource")),
                _ => ("GET", format!("{path}/htmlfile?c=cb")),
            };
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(format!("{method} {url} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await?;
            let mut buf = vec![0; 1 + (rng.next_u64() % 3000) as usize];
            let _ = s.read(&mut buf).await?;
            if rng.next_u64().is_multiple_of(2) {
                // A reset rather than an orderly close (a zero linger never blocks the drop).
                #[allow(deprecated)]
                let _ = s.set_linger(Some(Duration::ZERO));
            }
        }
        "abort-websocket" => {
            // Messages in flight both ways, then the connection is gone without a close frame.
            let path = session_path(&mut rng, "/echo");
            let mut ws = WsConn::connect(addr, &format!("{path}/websocket"), seed, 1 << 20).await?;
            for i in 0..(1 + rng.next_u64() % 20) {
                ws.queue_text(format!("[\"abort {i}\"]").as_bytes());
            }
            ws.flush().await?;
            if rng.next_u64().is_multiple_of(2) {
                let _ = timeout(Duration::from_millis(50), ws.recv()).await;
            }
        }
        "stall-websocket" => {
            // Ask /amplify for a lot, read nothing for a while, then go.
            let path = session_path(&mut rng, "/amplify");
            let mut ws = WsConn::connect_with(
                addr,
                &format!("{path}/websocket"),
                seed,
                1 << 20,
                Some(4096),
            )
            .await?;
            for _ in 0..(1 + rng.next_u64() % 8) {
                ws.queue_text(b"[\"16\"]");
            }
            ws.flush().await?;
            sleep(Duration::from_millis(2000 + rng.next_u64() % 8000)).await;
        }
        "stall-streaming" => {
            // A streaming receiver that never reads while its session is sent to.
            let path = session_path(&mut rng, "/echo");
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_recv_buffer_size(4096)?;
            let mut s = socket.connect(addr).await?;
            s.write_all(
                format!("POST {path}/xhr_streaming HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            )
            .await?;
            let mut sender = HttpConn::connect(addr).await?;
            let big = format!("[\"{}\"]", "s".repeat(8000));
            for _ in 0..(1 + rng.next_u64() % 30) {
                if sender
                    .request("POST", &format!("{path}/xhr_send"), big.as_bytes(), 4096)
                    .await
                    .is_err()
                {
                    break;
                }
            }
            sleep(Duration::from_millis(1000 + rng.next_u64() % 5000)).await;
        }
        "slow-reader" => {
            // Sends a burst, then reads one frame at a time with pauses between.
            let path = session_path(&mut rng, "/echo");
            let mut ws = WsConn::connect(addr, &format!("{path}/websocket"), seed, 1 << 20).await?;
            let payload = "r".repeat(1 + (rng.next_u64() % 2000) as usize);
            for _ in 0..(5 + rng.next_u64() % 40) {
                ws.queue_text(format!("[\"{payload}\"]").as_bytes());
            }
            ws.flush().await?;
            for _ in 0..(5 + rng.next_u64() % 20) {
                sleep(Duration::from_millis(50 + rng.next_u64() % 200)).await;
                match timeout(Duration::from_secs(2), ws.recv()).await {
                    Ok(Ok(Some(WsEvent::Text(_)))) => {}
                    _ => break,
                }
                if ws.has_pending_writes() {
                    ws.flush().await?;
                }
            }
        }
        "reconnect-polling" => {
            // Open sessions, poll once or twice, send, and abandon each for the next.
            let mut conn = HttpConn::connect(addr).await?;
            for _ in 0..(1 + rng.next_u64() % 5) {
                let path = session_path(&mut rng, "/echo");
                let (_, _) = conn
                    .request("POST", &format!("{path}/xhr"), b"", 1 << 16)
                    .await?;
                conn.request("POST", &format!("{path}/xhr_send"), b"[\"again\"]", 4096)
                    .await?;
                if rng.next_u64().is_multiple_of(2) {
                    conn.request("POST", &format!("{path}/xhr"), b"", 1 << 16)
                        .await?;
                }
                if !conn.is_reusable() {
                    conn = HttpConn::connect(addr).await?;
                }
            }
        }
        "two-receivers" => {
            // A second receiver while one is attached: answered c[2010,...] and left alone.
            let path = session_path(&mut rng, "/echo");
            let mut first = HttpConn::connect(addr).await?;
            first
                .request("POST", &format!("{path}/xhr"), b"", 1 << 16)
                .await?;
            first
                .send_request("POST", &format!("{path}/xhr"), b"")
                .await?;
            let mut second = HttpConn::connect(addr).await?;
            let _ = second
                .request("POST", &format!("{path}/xhr"), b"", 1 << 16)
                .await?;
        }
        "malformed-http" => {
            let path = session_path(&mut rng, "/echo");
            let requests: [Vec<u8>; 8] = [
                // A chunk extension that breaks RFC 9112's grammar.
                format!(
                    "POST {path}/xhr_send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;\x01=\x02\r\nhello\r\n0\r\n\r\n"
                )
                .into_bytes(),
                // A head far over the limit.
                format!("GET /echo/info HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(70_000))
                    .into_bytes(),
                // Broken JSON for a session that does not exist, and for one that does.
                format!("POST {path}/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n[\"x\",")
                    .into_bytes(),
                format!(
                    "POST {path}/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\
                     POST {path}/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n[1]"
                )
                .into_bytes(),
                // A request line that is not one, and an unknown version.
                b"GET\r\n\r\n".to_vec(),
                b"GET /echo/info HTTP/7.1\r\nHost: x\r\n\r\n".to_vec(),
                // A body longer than its Content-Length says, and a negative one.
                b"POST /echo/info HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
                // Origin `*` asking for credentials; a bad callback.
                format!(
                    "GET {path}/jsonp?c=%3Cscript%3E HTTP/1.1\r\nHost: x\r\nOrigin: *\r\n\r\n"
                )
                .into_bytes(),
            ];
            let req = &requests[(rng.next_u64() % requests.len() as u64) as usize];
            let mut s = TcpStream::connect(addr).await?;
            // Sometimes a byte at a time.
            if rng.next_u64().is_multiple_of(4) && req.len() < 1000 {
                for b in req {
                    s.write_all(&[*b]).await?;
                }
            } else {
                s.write_all(req).await?;
            }
            read_until_closed(&mut s, Duration::from_secs(5)).await;
        }
        "malformed-websocket" => {
            let path = session_path(&mut rng, "/echo");
            let mut ws = WsConn::connect(addr, &format!("{path}/websocket"), seed, 1 << 20).await?;
            match rng.next_u64() % 5 {
                // Not a SockJS message array.
                0 => ws.queue_text(b"not json at all"),
                // An unmasked frame.
                1 => ws.queue_raw(&[0x81, 0x02, b'h', b'i']),
                // Reserved bits.
                2 => ws.queue_raw(&[0xf1, 0x80, 0, 0, 0, 0]),
                // A binary message.
                3 => ws.queue_frame(2, b"\x00\x01"),
                // A frame claiming to be enormous.
                _ => ws.queue_raw(&[0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            }
            ws.flush().await?;
            let _ = timeout(Duration::from_secs(5), async {
                while let Ok(Some(ev)) = ws.recv().await {
                    if matches!(ev, WsEvent::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        _ => {
            // Bytes that are no protocol at all.
            let mut s = TcpStream::connect(addr).await?;
            let garbage: Vec<u8> = (0..(1 + rng.next_u64() % 4000))
                .map(|_| rng.next_u64() as u8)
                .collect();
            s.write_all(&garbage).await?;
            read_until_closed(&mut s, Duration::from_secs(3)).await;
        }
    }
    Ok(())
}

/// Reads and drops whatever comes until the server closes or `limit` passes.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) {
    let mut buf = vec![0; 16 * 1024];
    let end = tokio::time::Instant::now() + limit;
    while let Ok(Ok(n)) = tokio::time::timeout_at(end, s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
    }
}
