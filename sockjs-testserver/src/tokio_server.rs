//! The test server's endpoints on tokio.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockjs_tokio::{Options, Server, SessionHandle};

use crate::{Args, amplify};

pub(crate) fn run(args: &Args) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: &Args) -> std::io::Result<()> {
    let base = Options::default().sockjs_url(args.sockjs_url.clone());
    let everyone: Arc<Mutex<HashSet<SessionHandle>>> = Arc::default();
    let server = Server::builder()
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
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if session.send("tick!").is_err() {
                            break;
                        }
                    }
                    _ = session.closed() => break,
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
        "sockjs-testserver (tokio) listening on {}",
        server.local_addr()?
    );
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        handle.shutdown();
    });
    server.run().await
}

async fn echo(mut session: sockjs_tokio::Session) {
    while let Some(msg) = session.recv().await {
        if session.send(&msg).is_err() {
            break;
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
