//! The test server's endpoints, once for every runtime: they are added to a `sockjs`
//! builder, and only the builder's runtime (and what blocks on `run`) differs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_signal::{Signal, Signals};
use futures_lite::{StreamExt, future};
use sockjs::topics::{RedisBackend, RedisConfig};
use sockjs::{Builder, Decision, Options, Runtime, Session, Topics};
use sockjs_core::ws::deflate::DeflateConfig;

use crate::{Args, amplify};

/// Serves every endpoint on `builder`'s runtime until a shutdown signal.
pub(crate) async fn serve<B>(
    args: &Args,
    builder: Builder<B>,
    runtime: &str,
) -> std::io::Result<()> {
    let server = endpoints(args, builder)
        .bind((args.host.as_str(), args.port))
        .await?;
    eprintln!(
        "sockjs-testserver ({runtime}) node {} listening on {}",
        args.node_id.as_deref().unwrap_or("-"),
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

/// Adds every endpoint to `builder`.
pub(crate) fn endpoints<B>(args: &Args, builder: Builder<B>) -> Builder<B> {
    let rt = builder.runtime().clone();
    let base = Options::default()
        .sockjs_url(args.sockjs_url.clone())
        .compression(args.compression.then(DeflateConfig::default));
    let topics = topics(args, rt.clone());
    let mut builder = builder.limits(args.limits.clone());
    if let Some(bytes) = args.max_inbound_bytes {
        builder = builder.max_inbound_bytes(bytes);
    }
    // Scrapes see the figures of half a second ago at the most.
    builder
        .metrics_interval(Duration::from_millis(METRICS_INTERVAL_MS))
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
        .endpoint("/ticker", base.clone(), move |session| {
            let rt = rt.clone();
            async move {
                let mut next = Instant::now() + Duration::from_secs(1);
                let mut tick = rt.new_timer(next);
                loop {
                    let ticked = async {
                        (&mut tick).await;
                        true
                    };
                    let closed = async {
                        session.closed().await;
                        false
                    };
                    if !future::or(closed, ticked).await || session.send("tick!").is_err() {
                        break;
                    }
                    next += Duration::from_secs(1);
                    tick.as_mut().reset(next);
                }
            }
        })
        // Every session on the topic, on every node with `--redis`; a session leaves it
        // when it closes.
        .endpoint("/broadcast", base.clone(), move |mut session| {
            let topics = topics.clone();
            async move {
                if topics
                    .subscribe(BROADCAST_TOPIC, &session.handle())
                    .is_err()
                {
                    return;
                }
                while let Some(msg) = session.recv().await {
                    topics.publish(BROADCAST_TOPIC, &msg);
                }
            }
        })
        .endpoint("/auth_echo", base.clone(), echo)
        .authorize("/auth_echo", |request| async move {
            // Only a `Cookie` header carrying `auth=ok` opens a session (HTTP/2 may split
            // cookies over several headers).
            let ok = request
                .headers
                .iter()
                .filter(|(name, _)| name == "cookie")
                .any(|(_, c)| c.split(';').any(|pair| pair.trim() == "auth=ok"));
            if ok {
                Decision::accept()
            } else {
                Decision::refuse(403, "Forbidden")
            }
        })
        .endpoint("/amplify", base, |mut session| async move {
            while let Some(msg) = session.recv().await {
                if session.send(amplify(&msg)).is_err() {
                    break;
                }
            }
        })
}

/// The topic `/broadcast` publishes on.
const BROADCAST_TOPIC: &str = "broadcast";

/// This node's topics: through Redis with `--redis`, else this node's alone.
fn topics(args: &Args, rt: Arc<dyn Runtime>) -> Topics {
    let Some(url) = &args.redis else {
        return Topics::new();
    };
    let node = args.node_id.clone().unwrap_or_else(|| "node".into());
    match RedisBackend::new(rt, RedisConfig::new(url.clone(), node)) {
        Ok(backend) => Topics::with_backend(backend),
        Err(e) => {
            eprintln!("sockjs-testserver: --redis: {e}");
            std::process::exit(2);
        }
    }
}

/// How often the figures are copied into the metrics recorder.
const METRICS_INTERVAL_MS: u64 = 500;

/// Ctrl-C, and SIGTERM where there is one: each starts a graceful shutdown.
#[cfg(unix)]
pub(crate) const SHUTDOWN_SIGNALS: [Signal; 2] = [Signal::Int, Signal::Term];
#[cfg(not(unix))]
pub(crate) const SHUTDOWN_SIGNALS: [Signal; 1] = [Signal::Int];

async fn echo(mut session: Session) {
    while let Some(msg) = session.recv().await {
        if session.send(&msg).is_err() {
            break;
        }
    }
}
