//! `idle-ws` and `idle-poll`: open many sessions that then sit idle, to weigh what an idle
//! session costs the server in memory.
//!
//! idle-ws: a SockJS websocket session (open once `o` arrives), or for `bench-raw-ws` an
//! upgraded connection. idle-poll: a SockJS session with an `xhr` poll parked on it (opened
//! with a first poll, then a second one sent and left unanswered); for `bench-raw-http`, a
//! keep-alive connection left idle after one request, the floor for any HTTP connection.
//! Sessions hold until the run ends; nothing is read while they hold.

use std::rc::Rc;

use sockjs_bench::http_client::HttpConn;
use tokio::time::timeout;

use crate::http_poll::unexpected;
use crate::run::{Phase, Ready, Shared, Target, reached};
use crate::ws_echo::{CONNECT_TIMEOUT, open};

pub(crate) async fn idle_ws(sh: Rc<Shared>, ready: Ready) {
    let path = sh.common.session_url(&sh.session_id(), "websocket");
    let ws = {
        let _permit = sh.gate.acquire().await;
        open(&sh, &path).await
    };
    match ws {
        Ok(_ws) => {
            ready.ok();
            reached(&mut sh.phases(), Phase::Done).await;
        }
        Err(e) => sh.error(format!("open: {e}")),
    }
}

pub(crate) async fn idle_poll(sh: Rc<Shared>, ready: Ready) {
    let url = sh.common.session_url(&sh.session_id(), "xhr");
    let sockjs = sh.common.target == Target::Sockjs;
    let conn = {
        let _permit = sh.gate.acquire().await;
        let attempt = async {
            let mut conn = HttpConn::connect(sh.common.addr).await?;
            let (status, body) = conn.request("POST", &url, b"", 4096).await?;
            if sockjs {
                if status != 200 || body != b"o\n" {
                    return Err(unexpected("opening poll", status, &body));
                }
                conn.send_request("POST", &url, b"").await?;
            } else if status != 200 {
                return Err(unexpected("request", status, &body));
            }
            Ok(conn)
        };
        timeout(CONNECT_TIMEOUT, attempt).await
    };
    match conn {
        Ok(Ok(_conn)) => {
            ready.ok();
            reached(&mut sh.phases(), Phase::Done).await;
        }
        Ok(Err(e)) => sh.error(format!("open: {e}")),
        Err(_) => sh.error("open: timed out".into()),
    }
}
