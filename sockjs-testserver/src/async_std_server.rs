//! The test server's endpoints on async-std or smol: one server, built on sockjs-async-std,
//! with only the executor and `block_on` differing between the two.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_io::Timer;
use async_signal::{Signal, Signals};
use futures_lite::{StreamExt, future};
use sockjs_async_std::{Builder, Options, Server, SessionHandle};

use crate::{Args, amplify};

/// Serves on async-std: its executor runs the tasks, its `block_on` the accept loop.
pub(crate) fn run_async_std(args: &Args) -> std::io::Result<()> {
    let builder = Server::builder().spawn_with_async_std();
    async_std::task::block_on(serve(args, builder, "async-std"))
}

/// Serves on smol: its global executor runs the tasks (`SMOL_THREADS` threads), its
/// `block_on` the accept loop.
pub(crate) fn run_smol(args: &Args) -> std::io::Result<()> {
    let builder = Server::builder().spawn_with_smol();
    smol::block_on(serve(args, builder, "smol"))
}

async fn serve(args: &Args, builder: Builder, runtime: &str) -> std::io::Result<()> {
    let base = Options::default().sockjs_url(args.sockjs_url.clone());
    let everyone: Arc<Mutex<HashSet<SessionHandle>>> = Arc::default();
    let server = builder
        .endpoint("/echo", base.clone().response_limit(4096), echo)
        .endpoint(
            "/disabled_websocket_echo",
            base.clone().websocket(false),
            echo,
        )
        .endpoint(
            "/cookie_needed_echo",
            base.clone().cookie_needed(true),
            echo,
        )
        .endpoint("/close", base.clone(), |session| async move {
            let _ = session.close(3000, "Go away!");
        })
        .endpoint("/ticker", base.clone(), |session| async move {
            let mut tick = Timer::interval(Duration::from_secs(1));
            loop {
                let ticked = async { tick.next().await.is_some() };
                let closed = async {
                    session.closed().await;
                    false
                };
                if !future::or(closed, ticked).await || session.send("tick!").is_err() {
                    break;
                }
            }
        })
        .endpoint("/broadcast", base.clone(), move |mut session| {
            let everyone = everyone.clone();
            async move {
                let me = session.handle();
                everyone
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(me.clone());
                while let Some(msg) = session.recv().await {
                    let all: Vec<SessionHandle> = everyone
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                        .cloned()
                        .collect();
                    SessionHandle::broadcast(&all, &msg);
                }
                everyone
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&me);
            }
        })
        .endpoint("/amplify", base, |mut session| async move {
            while let Some(msg) = session.recv().await {
                if session.send(amplify(&msg)).is_err() {
                    break;
                }
            }
        })
        .bind((args.host.as_str(), args.port))
        .await?;
    eprintln!(
        "sockjs-testserver ({runtime}) listening on {}",
        server.local_addr()?
    );
    let handle = server.handle();
    let mut signals = Signals::new(SHUTDOWN_SIGNALS)?;
    let on_signal = async {
        let _ = signals.next().await;
        handle.shutdown();
        future::pending().await
    };
    future::or(server.run(), on_signal).await
}

/// Ctrl-C, and SIGTERM where there is one: each starts a graceful shutdown.
#[cfg(unix)]
const SHUTDOWN_SIGNALS: [Signal; 2] = [Signal::Int, Signal::Term];
#[cfg(not(unix))]
const SHUTDOWN_SIGNALS: [Signal; 1] = [Signal::Int];

async fn echo(mut session: sockjs_async_std::Session) {
    while let Some(msg) = session.recv().await {
        if session.send(&msg).is_err() {
            break;
        }
    }
}
