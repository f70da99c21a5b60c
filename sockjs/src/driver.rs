//! The core behind a lock, and what happens after every call into it (the run-loop contract
//! of [`sockjs_core::Server`]): events go to sessions, the core's instructions to
//! connections, new output is taken for writing once the lock is released, waiting senders
//! are woken, and the timer is re-armed.
//!
//! The lock is held only for the call and the drain, never across an await or a write, so a
//! stalled client holds up no one: its writer waits on its own socket, outside the lock.
//! Every call into [`sockjs_core::Server`] is made here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use event_listener::Event as Notify;
use sockjs_core::{CloseReason, ConnectionId, Event, Io, Notice, RequestInfo, SessionId};
use tracing::Instrument;

use crate::authorize::{AuthData, Authorizer, Decision};
use crate::inbox::SessionShared;
use crate::output::{Batch, Conn};
use crate::rt::{AsyncSocket, AsyncTimer, Runtime, Task};
use crate::signal::Signal;

/// What an endpoint runs for each new session: its handler, given the session's state and
/// the driver.
pub(crate) type Handler = Arc<dyn Fn(Arc<SessionShared>, Weak<Driver>) -> Task + Send + Sync>;

/// The core's lock, held.
#[cfg(not(feature = "lock-stats"))]
type Held<'a> = std::sync::MutexGuard<'a, CoreState>;
#[cfg(feature = "lock-stats")]
type Held<'a> = crate::lock_stats::Timed<'a, CoreState>;

/// A send refused: the session is closed (or its queue overflowed and closed it).
pub(crate) struct Refused;

struct CoreState {
    server: sockjs_core::Server,
    conns: IdMap<ConnectionId, Arc<Conn>>,
    sessions: IdMap<SessionId, Arc<SessionShared>>,
    /// The deadline the timer task sleeps until.
    timer_deadline: Option<Instant>,
    /// What the authorizer attached to the session the current call may open.
    opening_data: Option<AuthData>,
    /// Senders waiting for room in a session's queue: the session, the bytes they will send,
    /// and their waker. Looked at only while non-empty.
    send_waiters: Vec<(SessionId, usize, Waker)>,
    /// The connection the current call is about: a session it opens gets that connection's
    /// request extensions (an exchange's).
    #[cfg(feature = "tower")]
    opening: Option<ConnectionId>,
}

/// Everything the tasks share.
pub(crate) struct Driver {
    state: Mutex<CoreState>,
    pub(crate) runtime: Arc<dyn Runtime>,
    handlers: Vec<Handler>,
    /// Each endpoint's authorization hook, if it has one.
    authorizers: Vec<Option<Authorizer>>,
    /// Wakes the timer task when the deadline moves earlier or the server stops.
    timer: Signal,
    stopped: AtomicBool,
    /// Bytes of messages delivered to a session and not yet received by the application above
    /// which the connection that sent them stops being read.
    pub(crate) max_inbound_bytes: usize,
    /// Bytes of messages delivered to every session and not yet received: reported to the
    /// core after every call, for its memory budget.
    total_inbound: Arc<AtomicUsize>,
    /// An awaited send waits while a session's queue holds more than this many bytes ...
    send_room_bytes: usize,
    /// ... or this many messages.
    send_room_messages: usize,
    /// Connections with written bytes not yet reported to the core.
    unreported: Mutex<Vec<Arc<Conn>>>,
    /// `unreported` may be non-empty (saves taking its lock on every call when it is not).
    any_unreported: AtomicBool,
    open_connections: AtomicUsize,
    /// Notified when the last open connection finishes.
    pub(crate) idle: Notify,
    #[cfg(feature = "metrics")]
    exporter: crate::metrics::Exporter,
    /// How often the timer task exports the figures.
    #[cfg(feature = "metrics")]
    pub(crate) metrics_interval: std::time::Duration,
}

/// Things to do once the lock is released.
#[derive(Default)]
pub(crate) struct Actions {
    spawn: Vec<(Handler, Arc<SessionShared>)>,
    /// Requests held for authorization: their connection, the endpoint's hook, the request.
    authorize: Vec<(ConnectionId, Option<Authorizer>, RequestInfo)>,
    /// Connections with new output, to take it from.
    flush: Vec<Arc<Conn>>,
    /// Output taken, to write once the lock is released.
    write: Vec<(Arc<Conn>, Batch)>,
    /// Sessions over their inbound limit, for the caller to wait on.
    pub(crate) backlogged: Vec<Arc<SessionShared>>,
}

impl Driver {
    pub(crate) fn new(
        server: sockjs_core::Server,
        handlers: Vec<Handler>,
        authorizers: Vec<Option<Authorizer>>,
        runtime: Arc<dyn Runtime>,
        max_inbound_bytes: usize,
    ) -> Self {
        let limits = server.limits().clone();
        Driver {
            state: Mutex::new(CoreState {
                server,
                conns: IdMap::default(),
                sessions: IdMap::default(),
                timer_deadline: None,
                send_waiters: Vec::new(),
                opening_data: None,
                #[cfg(feature = "tower")]
                opening: None,
            }),
            runtime,
            handlers,
            authorizers,
            timer: Signal::new(),
            stopped: AtomicBool::new(false),
            max_inbound_bytes,
            total_inbound: Arc::new(AtomicUsize::new(0)),
            send_room_bytes: limits.max_queued_bytes / 2,
            send_room_messages: limits.max_queued_messages / 2,
            unreported: Mutex::new(Vec::new()),
            any_unreported: AtomicBool::new(false),
            open_connections: AtomicUsize::new(0),
            idle: Notify::new(),
            #[cfg(feature = "metrics")]
            exporter: crate::metrics::Exporter::new(),
            #[cfg(feature = "metrics")]
            metrics_interval: std::time::Duration::from_secs(1),
        }
    }

    /// A copy of the core's figures.
    pub(crate) fn stats(&self) -> sockjs_core::Stats {
        self.lock().server.stats().clone()
    }

    /// The figures of one session, while the core knows it.
    pub(crate) fn session_stats(&self, id: SessionId) -> Option<sockjs_core::SessionStats> {
        self.lock().server.session_stats(id)
    }

    /// Copies the core's figures into the metrics handles (outside the lock).
    #[cfg(feature = "metrics")]
    pub(crate) fn export_metrics(&self) {
        let stats = self.stats();
        self.exporter.export(&stats);
    }

    fn lock(&self) -> Held<'_> {
        // A panic while holding the lock is a bug in the core; keep serving the rest.
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(feature = "lock-stats")]
        let guard = crate::lock_stats::Timed::new(guard);
        guard
    }

    /// Runs `f` on the core, drains it, and carries out what it asked for: handlers of new
    /// sessions start, and new output is written.
    fn with_core<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut CoreState, Instant) -> R,
    ) -> (R, Actions) {
        self.run_core(f, false)
    }

    /// Runs `f` on the core as [`Driver::with_core`] does; with `defer_writes`, new output is
    /// left to be written moments later: by a later call that writes (the same task's next
    /// send) or else by the connection's task, which is woken for it. Many small sends then
    /// cost one write.
    fn run_core<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut CoreState, Instant) -> R,
        defer_writes: bool,
    ) -> (R, Actions) {
        let now = Instant::now();
        let mut actions = Actions::default();
        let result = {
            let mut state = self.lock();
            self.report_written(&mut state, now);
            let r = f(&mut state, now);
            self.drain(&mut state, &mut actions);
            if defer_writes {
                for conn in actions.flush.drain(..) {
                    conn.nudge();
                }
            } else {
                self.take_output(&mut state, &mut actions, now);
            }
            r
        };
        self.start_tasks(&mut actions);
        self.write_out(std::mem::take(&mut actions.write));
        (result, actions)
    }

    /// Under the lock: takes the new output of the connections that have some, to write once
    /// the lock is released.
    fn take_output(self: &Arc<Self>, state: &mut CoreState, actions: &mut Actions, now: Instant) {
        let mut claimed = Vec::new();
        while !actions.flush.is_empty() {
            let mut reported = false;
            for conn in std::mem::take(&mut actions.flush) {
                if !conn.claim() {
                    continue;
                }
                // What its last writer wrote since this hold's first report is still at the
                // front of its output: reported now, or it would be written twice.
                let n = conn.unreported.swap(0, Ordering::SeqCst);
                if n > 0 {
                    state.server.handle_written(now, conn.id, n);
                    reported = true;
                }
                claimed.push(conn);
            }
            if reported {
                self.drain(state, actions);
            }
        }
        for conn in claimed {
            let urgent = state.server.awaits_written(conn.id);
            if let Some(batch) = conn.take(state.server.output(conn.id), urgent) {
                actions.write.push((conn, batch));
            }
        }
    }

    /// Writes what was taken. A writer that leaves output behind, or whose writes the core
    /// waits on, takes again (reporting what it wrote).
    fn write_out(self: &Arc<Self>, mut batches: Vec<(Arc<Conn>, Batch)>) {
        while let Some((conn, batch)) = batches.pop() {
            let written = conn.write(batch);
            if written.bytes > 0 && !conn.listed.swap(true, Ordering::SeqCst) {
                self.unreported
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn.clone());
                self.any_unreported.store(true, Ordering::SeqCst);
            }
            if written.again || (written.urgent && written.bytes > 0) {
                batches.append(&mut self.take_again(conn));
            }
        }
    }

    /// Under the lock: reports writes, drains, and takes `conn`'s output (with whatever other
    /// output that brought).
    fn take_again(self: &Arc<Self>, conn: Arc<Conn>) -> Vec<(Arc<Conn>, Batch)> {
        let now = Instant::now();
        let mut actions = Actions::default();
        {
            let mut state = self.lock();
            self.report_written(&mut state, now);
            self.drain(&mut state, &mut actions);
            if !actions.flush.iter().any(|c| Arc::ptr_eq(c, &conn)) {
                actions.flush.push(conn);
            }
            self.take_output(&mut state, &mut actions, now);
        }
        self.start_tasks(&mut actions);
        actions.write
    }

    /// Starts the handlers of new sessions and the authorization hooks of held requests.
    fn start_tasks(self: &Arc<Self>, actions: &mut Actions) {
        self.spawn_handlers(actions);
        for (conn, hook, info) in actions.authorize.drain(..) {
            let driver = Arc::downgrade(self);
            self.runtime.spawn(Box::pin(async move {
                let decision = match hook {
                    Some(hook) => hook(info).await,
                    None => Decision::accept(),
                };
                if let Some(driver) = driver.upgrade() {
                    driver.authorize(conn, decision);
                }
            }));
        }
    }

    /// The application's answer for the request held on `conn`.
    fn authorize(self: &Arc<Self>, conn: ConnectionId, decision: Decision) {
        let (answer, data) = decision.split();
        self.with_core(|state, now| {
            state.opening_data = data;
            #[cfg(feature = "tower")]
            {
                // An exchange's extensions go to the session it opens, as without the hook.
                state.opening = Some(conn);
            }
            state.server.authorize(now, conn, answer);
        });
    }

    /// Starts the handlers of new sessions, each in its session's span.
    fn spawn_handlers(self: &Arc<Self>, actions: &mut Actions) {
        for (handler, shared) in actions.spawn.drain(..) {
            let span = shared.span.clone();
            let task = handler(shared, Arc::downgrade(self));
            if span.is_disabled() {
                self.runtime.spawn(task);
            } else {
                self.runtime.spawn(Box::pin(task.instrument(span)));
            }
        }
    }

    /// Writes what waits for `conn` (its task's part: after a wake-up, or once writable).
    pub(crate) fn flush(self: &Arc<Self>, conn: &Arc<Conn>) {
        let batches = self.take_again(conn.clone());
        self.write_out(batches);
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
                state.server.handle_written(now, conn.id, n);
            }
        }
    }

    /// Registers an accepted connection with the core; it counts as open until
    /// [`Driver::connection_closed`].
    pub(crate) fn register(
        self: &Arc<Self>,
        peer: SocketAddr,
        socket: Box<dyn AsyncSocket>,
    ) -> Arc<Conn> {
        self.open_connections.fetch_add(1, Ordering::SeqCst);
        let (conn, _) = self.with_core(|state, now| {
            let id = state.server.accept(now, peer);
            let conn = Arc::new(Conn::new(id, Some(socket)));
            state.conns.insert(id, conn.clone());
            conn
        });
        conn
    }

    /// Feeds bytes read from `conn`; returns the sessions now over their inbound limit.
    pub(crate) fn feed(
        self: &Arc<Self>,
        conn: ConnectionId,
        data: &[u8],
    ) -> Vec<Arc<SessionShared>> {
        let (_, actions) = self.with_core(|s, now| {
            #[cfg(feature = "tower")]
            {
                s.opening = Some(conn);
            }
            s.server.handle_bytes(now, conn, data)
        });
        actions.backlogged
    }

    /// The peer ended its side of `conn`.
    pub(crate) fn eof(self: &Arc<Self>, id: ConnectionId) {
        self.with_core(|s, now| s.server.handle_eof(now, id));
    }

    /// A connection failed (or its task ended without the core's say): the core forgets it.
    pub(crate) fn forget(self: &Arc<Self>, id: ConnectionId) {
        self.with_core(|state, now| {
            state.server.handle_closed(now, id);
            state.conns.remove(&id);
        });
    }

    /// Starts the core's graceful shutdown.
    pub(crate) fn shutdown(self: &Arc<Self>) {
        self.with_core(|s, now| s.server.shutdown(now));
    }

    /// Queues a message (see [`Driver::run_core`] for `defer_write`).
    pub(crate) fn send(
        self: &Arc<Self>,
        id: SessionId,
        msg: &str,
        defer_write: bool,
    ) -> Result<(), Refused> {
        let send = |s: &mut CoreState, now| s.server.send(now, id, msg).map_err(|_| Refused);
        self.run_core(send, defer_write).0
    }

    /// Sends `msg` if the session's queue has room for it (or only checks, without `msg`);
    /// else registers `cx` to be woken when it has.
    pub(crate) fn poll_send(
        self: &Arc<Self>,
        id: SessionId,
        msg: Option<&str>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Refused>> {
        let len = msg.map_or(0, str::len);
        self.with_core(|state, now| {
            match self.has_room(&state.server, id, len) {
                Some(true) => {}
                Some(false) => {
                    let waiting = state
                        .send_waiters
                        .iter()
                        .any(|(s, _, w)| *s == id && w.will_wake(cx.waker()));
                    if !waiting {
                        state.send_waiters.push((id, len, cx.waker().clone()));
                    }
                    return Poll::Pending;
                }
                None => return Poll::Ready(Err(Refused)),
            }
            Poll::Ready(match msg {
                Some(msg) => state.server.send(now, id, msg).map_err(|_| Refused),
                None => Ok(()),
            })
        })
        .0
    }

    /// Whether a session's queue takes `len` more bytes without going over the awaited
    /// send's threshold (an empty queue always does); `None` if it is closed.
    fn has_room(&self, server: &sockjs_core::Server, id: SessionId, len: usize) -> Option<bool> {
        let (bytes, messages) = server.queued(id)?;
        Some(
            messages == 0
                || (bytes + len <= self.send_room_bytes && messages < self.send_room_messages),
        )
    }

    /// Closes a session with `code` and `reason`.
    pub(crate) fn close(
        self: &Arc<Self>,
        id: SessionId,
        code: u16,
        reason: &str,
    ) -> Result<(), Refused> {
        let close =
            |s: &mut CoreState, now| s.server.close(now, id, code, reason).map_err(|_| Refused);
        self.with_core(close).0
    }

    /// Sends one message to many sessions; returns how many took it. With the `metrics`
    /// feature, the time until it was queued in every session and written to every socket
    /// that took it at once is recorded.
    pub(crate) fn broadcast(self: &Arc<Self>, ids: &[SessionId], msg: &str) -> usize {
        #[cfg(feature = "metrics")]
        let start = Instant::now();
        let n = self.with_core(|s, now| s.server.send_many(now, ids, msg)).0;
        #[cfg(feature = "metrics")]
        self.exporter
            .broadcast_latency
            .record(start.elapsed().as_secs_f64());
        n
    }

    fn drain(self: &Arc<Self>, state: &mut CoreState, actions: &mut Actions) {
        while let Some(io) = state.server.poll_io() {
            match io {
                Io::Write(id) => {
                    // One per connection until its output is taken: no duplicates here.
                    if let Some(conn) = state.conns.get(&id) {
                        if conn.socket.is_some() {
                            conn.dirty.store(true, Ordering::SeqCst);
                            actions.flush.push(conn.clone());
                        } else {
                            // An exchange: its response body takes the output.
                            conn.wake.notify();
                        }
                    }
                }
                Io::Respond(id) => {
                    if let Some(conn) = state.conns.get(&id) {
                        conn.wake.notify();
                    }
                }
                Io::Shutdown(id) => {
                    if let Some(conn) = state.conns.get(&id) {
                        conn.state().shutdown = true;
                        conn.wake.notify();
                    }
                }
                Io::Close {
                    connection,
                    aborted,
                } => {
                    // The core has forgotten it; its task drops it.
                    if let Some(conn) = state.conns.remove(&connection) {
                        let mut conn_state = conn.state();
                        conn_state.closed = true;
                        conn_state.aborted = aborted;
                        drop(conn_state);
                        conn.wake.notify();
                    }
                }
            }
        }
        while let Some(e) = state.server.poll_event() {
            match e {
                Event::Opened {
                    session,
                    endpoint,
                    info,
                } => {
                    let span = tracing::debug_span!(
                        parent: None,
                        "session",
                        id = session.to_raw(),
                        peer = %info.peer,
                        endpoint = %info.prefix,
                        transport = info.protocol,
                    );
                    tracing::debug!(parent: &span, "session opened");
                    #[allow(unused_mut)]
                    let total = self.total_inbound.clone();
                    let mut shared = SessionShared::new(session, *info, span, total);
                    // The session an accepted request opens is the first one its call opens.
                    shared.authorization = state.opening_data.take();
                    #[cfg(feature = "tower")]
                    if let Some(ext) = state
                        .opening
                        .and_then(|id| state.conns.get(&id))
                        .and_then(|conn| conn.take_extensions())
                    {
                        shared.extensions = ext;
                    }
                    let shared = Arc::new(shared);
                    state.sessions.insert(session, shared.clone());
                    if let Some(handler) = self.handlers.get(endpoint) {
                        actions.spawn.push((handler.clone(), shared));
                    }
                }
                Event::Message { session, text, .. } => {
                    if let Some(shared) = state.sessions.get(&session)
                        && shared.deliver(text) > self.max_inbound_bytes
                    {
                        actions.backlogged.push(shared.clone());
                    }
                }
                Event::Closed { session, reason } => {
                    if let Some(shared) = state.sessions.remove(&session) {
                        tracing::debug!(
                            parent: &shared.span,
                            reason = reason.kind().name(),
                            code = reason.code_and_reason().0,
                            "session closed: {reason}"
                        );
                        shared.closed(reason);
                    }
                }
                Event::Authorize {
                    connection,
                    endpoint,
                    info,
                } => {
                    let hook = self.authorizers.get(endpoint).cloned().flatten();
                    actions.authorize.push((connection, hook, *info));
                }
            }
        }
        // Data for a session the call did not open (another request opened it meanwhile,
        // or it was refused after all) goes.
        state.opening_data = None;
        while let Some(notice) = state.server.poll_notice() {
            log_notice(&notice);
        }
        // Exact as of now: deliveries were counted above, under the lock; the application
        // only takes messages away between calls.
        let inbound = self.total_inbound.load(Ordering::SeqCst);
        state.server.set_held_inbound(inbound);
        if !state.send_waiters.is_empty() {
            // Queues shrink as the core moves them onto connections (after written bytes
            // are reported, or a new poll arrives) and vanish as sessions close.
            let server = &state.server;
            state.send_waiters.retain(|(id, len, waker)| {
                let waiting = self.has_room(server, *id, *len) == Some(false);
                if !waiting {
                    waker.wake_by_ref();
                }
                waiting
            });
        }
        #[cfg(feature = "tower")]
        {
            state.opening = None;
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
                self.timer.notify();
            }
        }
    }

    /// The timer task: sleeps until the core's next deadline and runs it, until
    /// [`Driver::stop`]. One timer, moved as the deadline moves. With the `metrics` feature
    /// it also exports the figures every `metrics_interval`, and once more at the stop.
    pub(crate) async fn run_timer(self: Arc<Self>) {
        let mut timer: Option<std::pin::Pin<Box<dyn AsyncTimer>>> = None;
        let mut armed = None;
        #[cfg(feature = "metrics")]
        let mut export_at = Instant::now();
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                #[cfg(feature = "metrics")]
                self.export_metrics();
                return;
            }
            let core_deadline = self.lock().timer_deadline;
            #[cfg(feature = "metrics")]
            let deadline = Some(core_deadline.map_or(export_at, |d| d.min(export_at)));
            #[cfg(not(feature = "metrics"))]
            let deadline = core_deadline;
            if let Some(at) = deadline
                && armed != Some(at)
            {
                match &mut timer {
                    Some(t) => t.as_mut().reset(at),
                    None => timer = Some(self.runtime.new_timer(at)),
                }
                armed = Some(at);
            }
            let due = std::future::poll_fn(|cx| {
                // A change of deadline (or the stop) wakes this first; it is read again.
                if self.timer.poll_wait(cx).is_ready() {
                    return Poll::Ready(false);
                }
                match (&mut timer, deadline) {
                    (Some(t), Some(_)) => AsyncTimer::poll(t.as_mut(), cx).map(|()| true),
                    _ => Poll::Pending,
                }
            })
            .await;
            if due {
                armed = None;
                #[cfg(feature = "metrics")]
                {
                    let now = Instant::now();
                    if export_at <= now {
                        self.export_metrics();
                        export_at = (export_at + self.metrics_interval).max(now);
                    }
                    if core_deadline.is_none_or(|d| d > now) {
                        continue;
                    }
                }
                self.with_core(|s, now| s.server.handle_timeout(now));
            }
        }
    }

    pub(crate) fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::SeqCst)
    }

    pub(crate) fn connection_closed(&self) {
        if self.open_connections.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify(usize::MAX);
        }
    }

    /// End of shutdown (or of `Server::run` however it ends): the timer task ends, and
    /// connections still open are dropped.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.timer.notify();
        for conn in self.lock().conns.values() {
            conn.abort();
        }
    }
}

impl Drop for Driver {
    /// Nothing waits forever on a server that is gone: sessions still open read as shut
    /// down and waiting senders wake to find the server gone.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, shared) in state.sessions.drain() {
            shared.closed(CloseReason::Shutdown);
        }
        for (_, _, waker) in state.send_waiters.drain(..) {
            waker.wake();
        }
    }
}

/// Logs a refusal or a limit hit at `warn`.
fn log_notice(notice: &Notice) {
    match *notice {
        Notice::Refused {
            connection,
            peer,
            status,
            cause,
            limit,
        } => tracing::warn!(
            connection = connection.to_raw(),
            %peer,
            status,
            cause = cause.name(),
            limit = limit.map(|l| l.name()),
            "request refused"
        ),
        Notice::LimitHit {
            limit,
            connection,
            session,
            peer,
        } => tracing::warn!(
            limit = limit.name(),
            connection = connection.map(ConnectionId::to_raw),
            session = session.map(SessionId::to_raw),
            peer = peer.map(tracing::field::display),
            "limit hit"
        ),
    }
}

/// Maps keyed by the core's connection and session ids. The core numbers them itself, so a
/// multiplicative hash is enough; the default one is keyed against hostile input, which
/// these are not.
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// An exchange's response as the core had it when the request was handed over.
#[cfg(feature = "tower")]
pub(crate) struct Answer {
    /// Its head.
    pub(crate) head: sockjs_core::Response,
    /// Its whole body, when it has a length and the core had all of it (reported written).
    pub(crate) body: Option<bytes::Bytes>,
}

/// The whole `n`-byte body of exchange `id` if its output holds all of it, reported written.
#[cfg(feature = "tower")]
fn whole_body(
    state: &mut CoreState,
    now: Instant,
    id: ConnectionId,
    n: usize,
) -> Option<bytes::Bytes> {
    if state.server.output_len(id) != n {
        return None;
    }
    let body = match state.server.output(id) {
        [] => bytes::Bytes::new(),
        [one] => one.clone(),
        chunks => {
            let mut all = bytes::BytesMut::with_capacity(n);
            for c in chunks {
                all.extend_from_slice(c);
            }
            all.freeze()
        }
    };
    state.server.handle_written(now, id, n);
    Some(body)
}

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

/// The exchanges of a host's HTTP stack (see [`crate::service`]).
#[cfg(feature = "tower")]
impl Driver {
    /// Hands a request over; returns its exchange. A session it opens gets `extensions`.
    pub(crate) fn exchange(
        self: &Arc<Self>,
        peer: SocketAddr,
        request: sockjs_core::http::Request,
        extras: sockjs_core::RequestExtras,
        extensions: http::Extensions,
    ) -> (Arc<Conn>, Option<Answer>) {
        self.with_core(|state, now| {
            let id = state.server.handle_request(now, peer, request, extras);
            let conn = Arc::new(Conn::exchange(id, extensions));
            state.conns.insert(id, conn.clone());
            state.opening = Some(id);
            // Most answers are known at once (a send's `204`, a poll with messages waiting,
            // `/info`): head and whole body are taken under this one lock.
            let answer = state.server.take_response(id).map(|head| {
                let body = match head.body {
                    sockjs_core::ResponseBody::Length(n) => whole_body(state, now, id, n),
                    _ => None,
                };
                Answer { head, body }
            });
            (conn, answer)
        })
        .0
    }

    /// The exchange's response head once the core has it; `None` if the core forgot the
    /// exchange without one.
    pub(crate) fn poll_response(
        self: &Arc<Self>,
        conn: &Conn,
        cx: &mut Context<'_>,
    ) -> Poll<Option<sockjs_core::Response>> {
        loop {
            let (response, _) = self.with_core(|state, _| state.server.take_response(conn.id));
            if let Some(r) = response {
                return Poll::Ready(Some(r));
            }
            if conn.state().closed {
                return Poll::Ready(None);
            }
            if conn.wake.poll_wait(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// The next piece of the exchange's response body: its output's first chunk, reported
    /// written as it is handed over (the host's HTTP stack asks for it only when it has room
    /// to send it); `None` at the end, `Some(Err(()))` if the core aborted the body.
    pub(crate) fn poll_body(
        self: &Arc<Self>,
        conn: &Conn,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<bytes::Bytes, ()>>> {
        loop {
            let (chunk, _) = self.with_core(|state, now| {
                let chunk = state.server.output(conn.id).first().cloned();
                if let Some(c) = &chunk {
                    state.server.handle_written(now, conn.id, c.len());
                }
                chunk
            });
            match chunk {
                Some(c) if c.is_empty() => continue,
                Some(c) => return Poll::Ready(Some(Ok(c))),
                None => {}
            }
            {
                let conn_state = conn.state();
                if conn_state.closed {
                    return Poll::Ready(conn_state.aborted.then_some(Err(())));
                }
            }
            if conn.wake.poll_wait(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// The exchange (or its response body) was dropped: unless the core is done with it, the
    /// client went away.
    pub(crate) fn exchange_dropped(self: &Arc<Self>, conn: &Conn) {
        if !conn.state().closed {
            self.forget(conn.id);
        }
    }

    /// The exchange was upgraded: `socket` is the upgraded stream, driven from now on as a
    /// native connection (counted open until its task ends). `None` if the core has already
    /// forgotten the exchange.
    pub(crate) fn attach(
        self: &Arc<Self>,
        exchange: &Conn,
        socket: Box<dyn AsyncSocket>,
    ) -> Option<Arc<Conn>> {
        let (conn, _) = self.with_core(|state, _| {
            if exchange.state().closed || !state.conns.contains_key(&exchange.id) {
                return None;
            }
            let conn = Arc::new(Conn::new(exchange.id, Some(socket)));
            state.conns.insert(exchange.id, conn.clone());
            Some(conn)
        });
        let conn = conn?;
        self.open_connections.fetch_add(1, Ordering::SeqCst);
        // What the core produced meanwhile (the `o` frame) goes out now.
        self.flush(&conn);
        Some(conn)
    }
}
