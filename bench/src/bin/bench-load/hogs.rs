//! `hogs`: WebSocket clients that ask `/amplify` for large answers and never read them,
//! while other sessions echo on `/echo`. Weighs what the hogs make the server hold (its RSS,
//! and the kernel's TCP buffers from `/proc/net/sockstat`) and what they do to the echoing
//! sessions' latency.
//!
//! A hog opens `<hog-prefix>/000/<id>/websocket`, waits for `o`, sends one frame of
//! `--requests` messages each asking for 2^`--amplify` bytes, and then reads nothing until
//! the run ends (the server's pings and answers pile up in the kernel's buffers and in the
//! server). Its setup is done once the requests are written. With `--hog-rcvbuf`, its
//! socket's receive buffer is set that small first: on loopback the kernel would otherwise
//! let each one grow to `net.ipv4.tcp_rmem`'s maximum and take nearly everything the server
//! sends, which a slow client on a real network does not.

use std::rc::Rc;

use sockjs_bench::sockjs::send_body;

use sockjs_bench::ws_client::{WsConn, WsEvent};

use crate::run::{Phase, Ready, Shared, reached};
use crate::ws_echo::{CONNECT_TIMEOUT, MAX_MESSAGE};

/// The shape of the hogs' load.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) prefix: String,
    pub(crate) exponent: u32,
    pub(crate) requests: usize,
    /// The hogs' socket receive buffer, if set.
    pub(crate) rcvbuf: Option<u32>,
}

pub(crate) async fn hog(sh: Rc<Shared>, opts: Rc<Opts>, ready: Ready) {
    let path = format!("{}/000/{}/websocket", opts.prefix, sh.session_id());
    let ws = {
        let _permit = sh.gate.acquire().await;
        let attempt = async {
            let addr = sh.common.addr;
            let mut ws =
                WsConn::connect_with(addr, &path, sh.seed(), MAX_MESSAGE, opts.rcvbuf).await?;
            match ws.recv().await? {
                Some(WsEvent::Text(t)) if t == "o" => Ok(ws),
                other => Err(std::io::Error::other(format!("expected o, got {other:?}"))),
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, attempt)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("session open timed out")))
    };
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            sh.error(format!("hog open: {e}"));
            return;
        }
    };
    let n = opts.exponent.to_string();
    let asks = vec![n.as_str(); opts.requests];
    ws.queue_text(send_body(&asks).as_bytes());
    if let Err(e) = ws.flush().await {
        sh.error(format!("hog send: {e}"));
        return;
    }
    ready.ok();
    // Holds the connection, unread, until the run ends.
    reached(&mut sh.phases(), Phase::Done).await;
    drop(ws);
}
