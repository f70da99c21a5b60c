//! The core behind a lock, and what happens after every call into it: transmits go to their
//! connections' writers, events to sessions, and the timer is re-armed.
//!
//! The lock is held only for the call and the drain, never across an await, so a stalled
//! client holds up no one: its writer waits on its own socket, outside the lock.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_io::Timer;
use bytes::Bytes;
use event_listener::Event as Notify;
use futures_lite::future;
use sockjs_core::{After, CloseReason, ConnectionId, Event, SessionId};

use crate::session::{Handler, Session, SessionShared};

/// A task for the executor.
pub(crate) type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs tasks on the application's executor.
pub(crate) type Spawner = Arc<dyn Fn(Task) + Send + Sync>;

/// A signal that, once raised, stays raised: every waiter, present or future, sees it.
pub(crate) struct Latch {
    raised: AtomicBool,
    event: Notify,
}

impl Latch {
    pub(crate) fn new() -> Self {
        Latch {
            raised: AtomicBool::new(false),
            event: Notify::new(),
        }
    }

    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Waits until the latch is raised.
    pub(crate) async fn wait(&self) {
        loop {
            let listener = self.event.listen();
            if self.is_raised() {
                return;
            }
            listener.await;
        }
    }
}

/// What a connection's writer task is told.
pub(crate) enum WriterCommand {
    /// Write these bytes, then do `after`.
    Data(Bytes, After),
    /// The peer closed: tell the core, once everything before this is written.
    PeerClosed,
}

/// Per-connection signals between the driver and its reader and writer tasks.
pub(crate) struct ConnSignals {
    /// The core aborted the connection: the writer drops what it has.
    pub(crate) abort: Latch,
    /// The writer has finished: the reader stops.
    pub(crate) stop_reading: Latch,
}

impl ConnSignals {
    pub(crate) fn new() -> Self {
        ConnSignals {
            abort: Latch::new(),
            stop_reading: Latch::new(),
        }
    }
}

struct ConnEntry {
    tx: async_channel::Sender<WriterCommand>,
    signals: Arc<ConnSignals>,
}

struct CoreState {
    server: sockjs_core::Server,
    conns: HashMap<ConnectionId, ConnEntry>,
    sessions: HashMap<SessionId, Arc<SessionShared>>,
    /// Every connection whose reader has not finished, including those the core has
    /// already let go of (still flushing a last response), for [`Driver::stop`].
    live: HashMap<ConnectionId, Arc<ConnSignals>>,
    /// The deadline the timer task sleeps until.
    timer_deadline: Option<Instant>,
}

/// Everything the tasks share.
pub(crate) struct Driver {
    state: Mutex<CoreState>,
    handlers: Vec<Handler>,
    spawner: Option<Spawner>,
    /// Wakes the timer task when the deadline moves earlier or the server stops.
    timer: Notify,
    stopped: AtomicBool,
    /// Bytes of messages delivered to a session and not yet received by the application above
    /// which the connection that sent them stops being read.
    pub(crate) max_inbound_bytes: usize,
    /// How long a closed connection's input is still drained ([`sockjs_core::Limits::linger_timeout`]).
    pub(crate) linger: std::time::Duration,
    open_connections: AtomicUsize,
    /// Notified when the last open connection finishes.
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
    pub(crate) fn new(
        server: sockjs_core::Server,
        handlers: Vec<Handler>,
        spawner: Option<Spawner>,
    ) -> Self {
        let server_limits = server.limits().clone();
        Driver {
            state: Mutex::new(CoreState {
                server,
                conns: HashMap::new(),
                sessions: HashMap::new(),
                live: HashMap::new(),
                timer_deadline: None,
            }),
            handlers,
            spawner,
            timer: Notify::new(),
            stopped: AtomicBool::new(false),
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

    pub(crate) fn can_spawn(&self) -> bool {
        self.spawner.is_some()
    }

    /// Hands `task` to the application's executor.
    pub(crate) fn spawn(&self, task: Task) {
        if let Some(spawn) = &self.spawner {
            spawn(task);
        }
    }

    /// Runs `f` on the core, drains it, and carries out what it asked for.
    pub(crate) fn with_core<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut sockjs_core::Server, Instant) -> R,
    ) -> (R, Actions) {
        self.with_state(|state, now| f(&mut state.server, now))
    }

    fn with_state<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut CoreState, Instant) -> R,
    ) -> (R, Actions) {
        let now = Instant::now();
        let mut actions = Actions::default();
        let result = {
            let mut state = self.lock();
            let r = f(&mut state, now);
            self.drain(&mut state, &mut actions);
            r
        };
        for (handler, session) in actions.spawn.drain(..) {
            self.spawn(handler(session));
        }
        (result, actions)
    }

    /// Registers a new connection's writer channel and signals with the core.
    pub(crate) fn register(
        self: &Arc<Self>,
        peer: std::net::SocketAddr,
        tx: async_channel::Sender<WriterCommand>,
        signals: Arc<ConnSignals>,
    ) -> ConnectionId {
        self.open_connections.fetch_add(1, Ordering::SeqCst);
        let (id, _) = self.with_state(|state, now| {
            let id = state.server.accept(now, peer);
            state.live.insert(id, signals.clone());
            state.conns.insert(id, ConnEntry { tx, signals });
            id
        });
        id
    }

    fn drain(self: &Arc<Self>, state: &mut CoreState, actions: &mut Actions) {
        while let Some(t) = state.server.poll_transmit() {
            // After a close the entry stays until the reader is done: the core may still
            // abort a final write that stalls.
            let done = t.after == After::Abort;
            if let Some(entry) = state.conns.get(&t.connection) {
                if t.after == After::Abort {
                    entry.signals.abort.raise();
                } else {
                    let _ = entry.tx.try_send(WriterCommand::Data(t.data, t.after));
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
                    let (tx, rx) = async_channel::unbounded();
                    let shared =
                        Arc::new(SessionShared::new(session, *info, Arc::downgrade(self), tx));
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
                self.timer.notify(1);
            }
        }
    }

    /// The timer task: sleeps until the core's next deadline and runs it, until
    /// [`Driver::stop`].
    pub(crate) async fn run_timer(self: Arc<Self>) {
        loop {
            // Listen before reading the deadline, so a change made in between still wakes us.
            let rearmed = self.timer.listen();
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let deadline = self.lock().timer_deadline;
            match deadline {
                Some(at) => {
                    let due = async {
                        Timer::at(at).await;
                        true
                    };
                    if future::or(due, async {
                        rearmed.await;
                        false
                    })
                    .await
                    {
                        self.with_core(|s, now| s.handle_timeout(now));
                    }
                }
                None => rearmed.await,
            }
        }
    }

    /// The reader is done with a connection: the core forgets it and its writer's channel
    /// closes.
    pub(crate) fn forget(self: &Arc<Self>, id: ConnectionId) {
        self.with_state(|state, now| {
            state.server.handle_closed(now, id);
            state.conns.remove(&id);
            state.live.remove(&id);
        });
    }

    pub(crate) fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::SeqCst)
    }

    pub(crate) fn connection_closed(&self) {
        if self.open_connections.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify(usize::MAX);
        }
    }

    /// End of shutdown: the timer task ends, and connections still open are dropped.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.timer.notify(usize::MAX);
        for signals in self.lock().live.values() {
            signals.abort.raise();
            signals.stop_reading.raise();
        }
    }
}

/// For a session's close reason when the server goes away without telling it.
pub(crate) fn dropped_reason() -> CloseReason {
    CloseReason::Shutdown
}
