//! The core behind a lock, and what happens after every call into it: transmits go to their
//! connections' writers, events to sessions, and the timer is re-armed.
//!
//! The lock is held only for the call and the drain, never across an await, so a stalled
//! client holds up no one: its writer waits on its own socket, outside the lock.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use sockjs_core::{After, CloseReason, ConnectionId, Event, SessionId};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::connection::Conn;
use crate::session::{Handler, Session, SessionShared};

pub(crate) struct CoreState {
    pub(crate) server: sockjs_core::Server,
    conns: IdMap<ConnectionId, Arc<Conn>>,
    sessions: IdMap<SessionId, Arc<SessionShared>>,
    /// The deadline the timer task sleeps until.
    timer_deadline: Option<Instant>,
}

/// Everything the tasks share.
pub(crate) struct Driver {
    state: Mutex<CoreState>,
    handlers: Vec<Handler>,
    timer: Notify,
    /// Bytes of messages delivered to a session and not yet received by the application above
    /// which the connection that sent them stops being read.
    pub(crate) max_inbound_bytes: usize,
    /// How long a closed connection's input is still drained ([`sockjs_core::Limits::linger_timeout`]).
    pub(crate) linger: std::time::Duration,
    /// Above this many bytes unreported to the core, a write is reported at once (the core
    /// may be holding messages back until it hears); below, with the next call.
    max_unflushed_bytes: usize,
    /// Connections with written bytes not yet reported to the core.
    unreported: Mutex<Vec<Arc<Conn>>>,
    /// `unreported` may be non-empty (saves taking its lock on every call when it is not).
    any_unreported: AtomicBool,
    pub(crate) open_connections: AtomicUsize,
    pub(crate) idle: Notify,
}

/// Things to do once the lock is released.
#[derive(Default)]
pub(crate) struct Actions {
    spawn: Vec<(Handler, Session)>,
    /// Connections with new output, to write once the lock is released.
    flush: Vec<Arc<Conn>>,
    /// Sessions over their inbound limit, for the caller to wait on.
    pub(crate) backlogged: Vec<Arc<SessionShared>>,
}

impl Driver {
    pub(crate) fn new(server: sockjs_core::Server, handlers: Vec<Handler>) -> Self {
        let server_limits = server.limits().clone();
        Driver {
            state: Mutex::new(CoreState {
                server,
                conns: IdMap::default(),
                sessions: IdMap::default(),
                timer_deadline: None,
            }),
            handlers,
            timer: Notify::new(),
            max_inbound_bytes: server_limits.max_inbound_bytes,
            linger: server_limits.linger_timeout,
            max_unflushed_bytes: server_limits.max_unflushed_bytes,
            unreported: Mutex::new(Vec::new()),
            any_unreported: AtomicBool::new(false),
            open_connections: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CoreState> {
        // A panic while holding the lock is a bug in the core; keep serving the rest.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the core, drains it, and carries out what it asked for: handlers of new
    /// sessions start, and new output is written.
    pub(crate) fn with_core<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut sockjs_core::Server, Instant) -> R,
    ) -> (R, Actions) {
        self.run_core(f, false)
    }

    /// As [`Driver::with_core`], but new output is left to be written moments later: by a
    /// later call that writes (the same task's next send) or else by the connection's task,
    /// which is woken for it. Many small sends then cost one write.
    pub(crate) fn with_core_deferring_writes<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut sockjs_core::Server, Instant) -> R,
    ) -> (R, Actions) {
        self.run_core(f, true)
    }

    fn run_core<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut sockjs_core::Server, Instant) -> R,
        defer_writes: bool,
    ) -> (R, Actions) {
        let now = Instant::now();
        let mut actions = Actions::default();
        let result = {
            let mut state = self.lock();
            self.report_written(&mut state, now);
            let r = f(&mut state.server, now);
            self.drain(&mut state, &mut actions);
            r
        };
        if defer_writes {
            for conn in actions.flush.drain(..) {
                conn.nudge();
            }
        }
        (result, self.perform(actions))
    }

    /// Starts the handlers of sessions that opened and writes new output; hands back what
    /// the caller must wait on.
    fn perform(self: &Arc<Self>, mut actions: Actions) -> Actions {
        for (handler, session) in actions.spawn.drain(..) {
            tokio::spawn(handler(session));
        }
        for conn in actions.flush.drain(..) {
            let n = conn.flush();
            self.flushed(&conn, n);
        }
        actions
    }

    /// `n` bytes of `conn` were written: the core hears of it with its next call, or now if
    /// it may be holding messages back for this connection.
    pub(crate) fn flushed(self: &Arc<Self>, conn: &Arc<Conn>, n: usize) {
        if n == 0 {
            return;
        }
        if !conn.listed.swap(true, Ordering::SeqCst) {
            self.unreported
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn.clone());
            self.any_unreported.store(true, Ordering::SeqCst);
        }
        if conn.core_unflushed.load(Ordering::SeqCst) >= self.max_unflushed_bytes {
            self.with_core(|_, _| ());
        }
    }

    /// Tells the core about every write not yet reported (under its lock, before anything
    /// else it does, so its flow control and write timeouts see the writes).
    fn report_written(&self, state: &mut CoreState, now: Instant) {
        if !self.any_unreported.swap(false, Ordering::SeqCst) {
            return;
        }
        let conns = std::mem::take(&mut *self.unreported.lock().unwrap_or_else(|e| e.into_inner()));
        for conn in conns {
            conn.listed.store(false, Ordering::SeqCst);
            let n = conn.unreported.swap(0, Ordering::SeqCst);
            if n > 0 {
                conn.core_unflushed.fetch_sub(
                    n.min(conn.core_unflushed.load(Ordering::SeqCst)),
                    Ordering::SeqCst,
                );
                state.server.handle_written(now, conn.id, n);
            }
        }
    }

    /// Registers an accepted connection with the core.
    pub(crate) fn register(
        self: &Arc<Self>,
        peer: std::net::SocketAddr,
        stream: TcpStream,
    ) -> Arc<Conn> {
        let now = Instant::now();
        let mut actions = Actions::default();
        let conn = {
            let mut state = self.lock();
            let id = state.server.accept(now, peer);
            let conn = Arc::new(Conn::new(id, stream));
            state.conns.insert(id, conn.clone());
            self.drain(&mut state, &mut actions);
            conn
        };
        self.perform(actions);
        conn
    }

    /// Ends every connection still open at once (after the shutdown timeout).
    pub(crate) fn abort_all(&self) {
        let state = self.lock();
        for conn in state.conns.values() {
            conn.abort();
        }
    }

    fn drain(self: &Arc<Self>, state: &mut CoreState, actions: &mut Actions) {
        while let Some(t) = state.server.poll_transmit() {
            let Some(conn) = state.conns.get(&t.connection) else {
                continue;
            };
            if t.after == After::Abort {
                conn.abort();
                state.conns.remove(&t.connection);
                continue;
            }
            conn.core_unflushed
                .fetch_add(t.data.len(), Ordering::SeqCst);
            conn.push(t.data, t.after == After::Close);
            if !actions.flush.last().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                actions.flush.push(conn.clone());
            }
        }
        while let Some(e) = state.server.poll_event() {
            match e {
                Event::Opened {
                    session,
                    endpoint,
                    info,
                } => {
                    let shared = Arc::new(SessionShared::new(session, *info, Arc::downgrade(self)));
                    state.sessions.insert(session, shared.clone());
                    if let Some(handler) = self.handlers.get(endpoint) {
                        actions.spawn.push((handler.clone(), Session::new(shared)));
                    }
                }
                Event::Message { session, text } => {
                    if let Some(shared) = state.sessions.get(&session)
                        && shared.deliver(text) > self.max_inbound_bytes
                    {
                        actions.backlogged.push(shared.clone());
                    }
                }
                Event::Closed { session, reason } => {
                    if let Some(shared) = state.sessions.remove(&session) {
                        shared.closed(reason);
                    }
                }
            }
        }
        let next = state.server.poll_timeout();
        if next != state.timer_deadline {
            let earlier = match (next, state.timer_deadline) {
                (Some(n), Some(t)) => n < t,
                (Some(_), None) => true,
                (None, _) => false,
            };
            state.timer_deadline = next;
            if earlier {
                self.timer.notify_one();
            }
        }
    }

    /// The timer task: sleeps until the core's next deadline and runs it.
    pub(crate) async fn run_timer(self: Arc<Self>) {
        loop {
            let deadline = self.lock().timer_deadline;
            match deadline {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {
                            self.with_core(|s, now| s.handle_timeout(now));
                        }
                        _ = self.timer.notified() => {}
                    }
                }
                None => self.timer.notified().await,
            }
        }
    }

    /// A connection's task is done with it: the core forgets it.
    pub(crate) fn forget(self: &Arc<Self>, id: ConnectionId) {
        self.with_core(|s, now| s.handle_closed(now, id));
        self.lock().conns.remove(&id);
    }

    pub(crate) fn connection_closed(&self) {
        if self.open_connections.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// For a session's close reason when the server goes away without telling it.
pub(crate) fn dropped_reason() -> CloseReason {
    CloseReason::Shutdown
}

/// Maps keyed by the core's connection and session ids. The core numbers them itself, so a
/// multiplicative hash is enough; the default one is keyed against hostile input, which
/// these are not.
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A multiplicative hasher for the core's `u64` ids.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
