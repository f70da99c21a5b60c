//! A SockJS client on the command line: each line of standard input is sent as a message,
//! each message received is printed on a line of its own.
//!
//!     cargo run --release -p sockjs-tokio --example client -- http://127.0.0.1:8081/echo \
//!         [--transport websocket|xhr_streaming|eventsource|xhr]
//!
//! Exits 0 when the server closes the session, or when standard input has ended and no
//! message came for a second after (the client then closes with 1000); 1 with a message on
//! standard error when it cannot connect or the session fails.

use std::process::ExitCode;

use sockjs_tokio::{ClientOptions, ClosedBy, Transport};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut url = None;
    let mut options = ClientOptions::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--transport" => {
                let name = args.next().unwrap_or_default();
                let Some(t) = Transport::from_name(&name) else {
                    eprintln!(
                        "client: unknown transport {name:?} (websocket, xhr_streaming, eventsource, xhr)"
                    );
                    return ExitCode::from(2);
                };
                options = options.transports([t]);
            }
            _ if url.is_none() => url = Some(arg),
            _ => {
                eprintln!(
                    "usage: client URL [--transport websocket|xhr_streaming|eventsource|xhr]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let Some(url) = url else {
        eprintln!("usage: client URL [--transport websocket|xhr_streaming|eventsource|xhr]");
        return ExitCode::from(2);
    };

    let mut session = match sockjs_tokio::connect(&url, options).await {
        Ok(session) => session,
        Err(e) => {
            eprintln!("client: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("client: open on {}", session.transport());

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let mut stdin_open = true;
    let quiet = std::time::Duration::from_secs(1);
    loop {
        tokio::select! {
            () = tokio::time::sleep(quiet), if !stdin_open => {
                let _ = session.close(1000, "Normal closure");
                break;
            }
            message = session.recv() => match message {
                Some(m) => {
                    let mut line = m.into_bytes();
                    line.push(b'\n');
                    if stdout.write_all(&line).await.is_err() {
                        return ExitCode::FAILURE;
                    }
                    let _ = stdout.flush().await;
                }
                None => break,
            },
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    if let Err(e) = session.send(line) {
                        eprintln!("client: send: {e}");
                    }
                }
                // Standard input ended: wait for the server to close, or for what is in
                // flight to come back, then close.
                Ok(None) | Err(_) => stdin_open = false,
            },
        }
    }
    let close = session.closed().await;
    match close.by {
        ClosedBy::Failure => {
            let cause = session
                .last_error()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            eprintln!(
                "client: session failed: {} {}{cause}",
                close.code, close.reason
            );
            ExitCode::FAILURE
        }
        _ => {
            eprintln!("client: closed: {} {}", close.code, close.reason);
            ExitCode::SUCCESS
        }
    }
}
