//! The core behind a lock, and what happens after every call into it: transmits go to their
//! connections' writers, events to sessions, and the timer is re-armed.
//!
//! The lock is held only for the call and the drain, never across an await, so a stalled
//! client holds up no one: its writer waits on its own socket, outside the lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use sockjs_core::{After, CloseReason, ConnectionId, Event, SessionId};
use tokio::sync::{Notify, mpsc};

use crate::session::{Handler, Session, SessionShared};

/// What a connection's writer task is told.
pub(crate) enum WriterCommand {
    /// Write these bytes, then do `after`.
    Data(Bytes, After),
    /// The peer closed: tell the core, once everything before this is written.
    PeerClosed,
}

/// Per-connection signals between its reader and writer tasks. Each is awaited by one task
/// only, so `notify_one` keeps a permit if it fires before the task waits.
pub(crate) struct ConnSignals {
    /// The core aborted the connection: the writer drops what it has.
    pub(crate) abort: Notify,
    /// Set with `abort`: the reader does not linger.
    pub(crate) aborted: std::sync::atomic::AtomicBool,
    /// The writer has finished: the reader stops.
    pub(crate) stop_reading: Notify,
}

impl ConnSignals {
    pub(crate) fn new() -> Self {
        ConnSignals {
            abort: Notify::new(),
            aborted: std::sync::atomic::AtomicBool::new(false),
            stop_reading: Notify::new(),
        }
    }

    /// Ends the connection now: the writer drops what it has, the reader stops at once.
    pub(crate) fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        self.abort.notify_one();
        self.stop_reading.notify_one();
    }
}

struct ConnEntry {
    tx: mpsc::UnboundedSender<WriterCommand>,
    signals: Arc<ConnSignals>,
}

pub(crate) struct CoreState {
    pub(crate) server: sockjs_core::Server,
    conns: HashMap<ConnectionId, ConnEntry>,
    sessions: HashMap<SessionId, Arc<SessionShared>>,
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
    pub(crate) open_connections: AtomicUsize,
    pub(crate) idle: Notify,
}

/// Things to do once the lock is released.
#[derive(Default)]
pub(crate) struct Actions {
    spawn: Vec<(Handler, Session)>,
    /// Sessions over their inbound limit, for the caller to wait on.
    pub(crate) backlogged: Vec<Arc<SessionShared>>,
}

impl Driver {
    pub(crate) fn new(server: sockjs_core::Server, handlers: Vec<Handler>) -> Self {
        let server_limits = server.limits().clone();
        Driver {
            state: Mutex::new(CoreState {
                server,
                conns: HashMap::new(),
                sessions: HashMap::new(),
                timer_deadline: None,
            }),
            handlers,
            timer: Notify::new(),
            max_inbound_bytes: server_limits.max_inbound_bytes,
            linger: server_limits.linger_timeout,
            open_connections: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CoreState> {
        // A panic while holding the lock is a bug in the core; keep serving the rest.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the core, drains it, and carries out what it asked for.
    pub(crate) fn with_core<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut sockjs_core::Server, Instant) -> R,
    ) -> (R, Actions) {
        let now = Instant::now();
        let mut actions = Actions::default();
        let result = {
            let mut state = self.lock();
            let r = f(&mut state.server, now);
            self.drain(&mut state, &mut actions);
            r
        };
        (result, Self::perform(actions))
    }

    /// Starts the handlers of sessions that opened; hands back what the caller must wait on.
    fn perform(mut actions: Actions) -> Actions {
        for (handler, session) in actions.spawn.drain(..) {
            tokio::spawn(handler(session));
        }
        actions
    }

    /// Registers a new connection's writer channel and signals with the core.
    pub(crate) fn register(
        self: &Arc<Self>,
        peer: std::net::SocketAddr,
        tx: mpsc::UnboundedSender<WriterCommand>,
        signals: Arc<ConnSignals>,
    ) -> ConnectionId {
        let now = Instant::now();
        let mut actions = Actions::default();
        let id = {
            let mut state = self.lock();
            let id = state.server.accept(now, peer);
            state.conns.insert(id, ConnEntry { tx, signals });
            self.drain(&mut state, &mut actions);
            id
        };
        Self::perform(actions);
        id
    }

    /// Ends every connection still open at once (after the shutdown timeout).
    pub(crate) fn abort_all(&self) {
        let state = self.lock();
        for entry in state.conns.values() {
            entry.signals.abort();
        }
    }

    fn drain(self: &Arc<Self>, state: &mut CoreState, actions: &mut Actions) {
        while let Some(t) = state.server.poll_transmit() {
            // After a close the entry stays until the reader is done: the core may still
            // abort a final write that stalls.
            let done = t.after == After::Abort;
            if let Some(entry) = state.conns.get(&t.connection) {
                if t.after == After::Abort {
                    entry.signals.abort();
                } else {
                    let _ = entry.tx.send(WriterCommand::Data(t.data, t.after));
                }
            }
            if done {
                state.conns.remove(&t.connection);
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
                    let (tx, rx) = mpsc::unbounded_channel();
                    shared.set_sender(tx);
                    state.sessions.insert(session, shared.clone());
                    if let Some(handler) = self.handlers.get(endpoint) {
                        actions
                            .spawn
                            .push((handler.clone(), Session::new(shared, rx)));
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

    /// The reader is done with a connection: the core forgets it and its writer's channel
    /// closes.
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
