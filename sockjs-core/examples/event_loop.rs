//! A complete SockJS host on `mio`: one thread, one poll, and the sans-IO core for the rest.
//!
//! `cargo run --release -p sockjs-core --example event_loop -- 127.0.0.1:8081 [SOCKJS_URL]`
//! serves what the SockJS protocol suite expects: `/echo`, `/disabled_websocket_echo` and
//! `/cookie_needed_echo` echo every message; `/close` closes each session as it opens.
//!
//! The loop is the run-loop contract on [`Server`], nothing more. Readiness is edge-triggered:
//! a readable socket is read until it would block, and an [`Io::Write`] is tried at once (a
//! writable event only resumes a blocked write). Every call into the core is followed by
//! [`Host::drain`], which hands events to the application and carries out each [`Io`] until
//! both queues are empty. The poll sleeps until the core's one deadline,
//! [`Server::poll_timeout`]. The host keeps no buffers and counts no bytes: unwritten output
//! stays in the core, which bounds it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::Shutdown;
use std::time::{Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use sockjs_core::{Config, ConnectionId, Event, Io, Options, Server};

/// The listener's token; a connection's is its [`ConnectionId::index`], which is far smaller.
const LISTENER: Token = Token(usize::MAX);
/// Index of `/close` in the config: [`Event::Opened`] names endpoints by index.
const CLOSE: usize = 1;

/// A socket the core knows.
struct Conn {
    id: ConnectionId,
    stream: TcpStream,
    /// The peer half-closed: nothing more to read, and `handle_eof` was reported.
    eof: bool,
}

/// The core, the sockets, and the poll they are registered with.
struct Host {
    server: Server,
    poll: Poll,
    listener: TcpListener,
    /// By [`ConnectionId::index`] (a slab would do): an entry goes when the core forgets it.
    conns: HashMap<usize, Conn>,
}

impl Host {
    /// Accepts every pending connection (edge-triggered: until the listener would block).
    fn accept(&mut self) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
                // Out of descriptors, say: the backlog waits until the next connection wakes us.
                Err(e) => return eprintln!("event_loop: accept: {e}"),
            };
            // SockJS frames are small and latency matters more than packet count.
            let _ = stream.set_nodelay(true);
            let id = self.server.accept(Instant::now(), peer);
            let (registry, token) = (self.poll.registry(), Token(id.index()));
            let interest = Interest::READABLE | Interest::WRITABLE;
            if registry.register(&mut stream, token, interest).is_ok() {
                let eof = false;
                self.conns.insert(id.index(), Conn { id, stream, eof });
            } else {
                self.server.handle_closed(Instant::now(), id);
            }
            // Only once the socket is known: the core may have answered (503 when full).
            self.drain();
        }
    }

    /// Reads `id` until it would block, feeding the core and draining after every read (the
    /// connection is looked up every turn: the drain may have closed it).
    fn read(&mut self, id: ConnectionId) {
        let mut buf = [0u8; 16 * 1024];
        while let Some(conn) = self.conns.get_mut(&id.index()).filter(|c| !c.eof) {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    conn.eof = true;
                    self.server.handle_eof(Instant::now(), id);
                }
                Ok(n) => self.server.handle_bytes(Instant::now(), id, &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => self.forget(id, true),
            }
            self.drain();
        }
    }

    /// Writes the core's output for `id` until it is empty or the socket would block (the
    /// next writable event calls this again). The caller drains afterwards.
    fn flush(&mut self, id: ConnectionId) {
        while self.server.output_len(id) > 0
            && let Some(conn) = self.conns.get_mut(&id.index())
        {
            let output = self.server.output(id);
            // One vectored write of the chunks where the core holds them: no copying.
            let mut slices = [IoSlice::new(&[]); 64];
            for (slice, chunk) in slices.iter_mut().zip(output) {
                *slice = IoSlice::new(chunk);
            }
            let count = output.len().min(slices.len());
            match conn.stream.write_vectored(&slices[..count]) {
                // The core counts the bytes; it may add more output, or end the response.
                Ok(n) if n > 0 => self.server.handle_written(Instant::now(), id, n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                _ => return self.forget(id, true),
            }
        }
    }

    /// Drops the socket of `id`. `failed`: the socket broke, and the core is told so
    /// ([`Server::handle_closed`]: it forgets the connection, no [`Io::Close`] comes).
    fn forget(&mut self, id: ConnectionId, failed: bool) {
        if failed {
            self.server.handle_closed(Instant::now(), id);
        }
        if let Some(mut conn) = self.conns.remove(&id.index()) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    /// Empties the core's queues: events to the application (whose calls add to them) and
    /// [`Io`] instructions to the sockets. Called after every call into the core.
    fn drain(&mut self) {
        loop {
            if let Some(event) = self.server.poll_event() {
                self.application(event);
                continue;
            }
            match self.server.poll_io() {
                None => return,
                Some(Io::Write(id)) => self.flush(id),
                // Only for requests handed over by a host's own HTTP stack
                // (`Server::handle_request`); every connection here comes from `accept`.
                Some(Io::Respond(_)) => {}
                // Done sending: half-close, but go on reading, so that bytes the peer still
                // sends do not make the kernel reset the connection over the last response.
                Some(Io::Shutdown(id)) => {
                    if let Some(conn) = self.conns.get_mut(&id.index())
                        && conn.stream.shutdown(Shutdown::Write).is_err()
                    {
                        self.forget(id, true);
                    }
                }
                // `aborted` says output was dropped (a stalled peer); a host could log it.
                Some(Io::Close { connection, .. }) => self.forget(connection, false),
            }
        }
    }

    /// The application: echoes every message, closes `/close` sessions as they open.
    fn application(&mut self, event: Event) {
        let now = Instant::now();
        // An error means the session has closed meanwhile: nothing to do.
        let _ = match event {
            Event::Opened {
                session,
                endpoint: CLOSE,
                ..
            } => self.server.close(now, session, 3000, "Go away!"),
            Event::Message { session, text, .. } => self.server.send(now, session, &text),
            _ => Ok(()),
        };
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let mut listener = TcpListener::bind(addr.parse().map_err(std::io::Error::other)?)?;
    let url = args.next();
    let echo = url.map_or_else(Options::default, |u| Options::default().sockjs_url(u));
    let config = Config::new()
        .endpoint("/echo", echo.clone().response_limit(4096))
        .endpoint("/close", echo.clone())
        .endpoint("/disabled_websocket_echo", echo.clone().websocket(false))
        .endpoint("/cookie_needed_echo", echo.cookie_needed(true));
    // For `/info`: the core has no randomness; std's hasher keys are random per instance.
    let entropy = Box::new(|| RandomState::new().hash_one(0u8) as u32);
    let server = Server::new(config, Instant::now(), SystemTime::now(), entropy);
    let poll = Poll::new()?;
    let registry = poll.registry();
    registry.register(&mut listener, LISTENER, Interest::READABLE)?;
    eprintln!("event_loop listening on {}", listener.local_addr()?);
    let mut host = Host {
        server,
        poll,
        listener,
        conns: HashMap::new(),
    };
    let mut events = Events::with_capacity(1024);
    loop {
        // Sleep until the core's deadline; mio rounds up, so it wakes at or after it.
        let deadline = host.server.poll_timeout();
        let timeout = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        match host.poll.poll(&mut events, timeout) {
            Err(e) if e.kind() != ErrorKind::Interrupted => return Err(e),
            _ => {}
        }
        for event in &events {
            if event.token() == LISTENER {
                host.accept();
            // A stale event may reach the socket now at its index: spurious, so harmless.
            } else if let Some(id) = host.conns.get(&event.token().0).map(|c| c.id) {
                if event.is_writable() {
                    host.flush(id);
                    host.drain();
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    host.read(id);
                }
            }
        }
        let now = Instant::now();
        if host.server.poll_timeout().is_some_and(|at| at <= now) {
            host.server.handle_timeout(now);
            host.drain();
        }
    }
}
