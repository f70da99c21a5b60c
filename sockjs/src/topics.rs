//! Topics: named groups of sessions. A session [`subscribe`](Topics::subscribe)s to a topic,
//! [`unsubscribe`](Topics::unsubscribe)s or simply closes (it then leaves every topic it was
//! in), and [`publish`](Topics::publish) sends a message to every subscriber.
//!
//! A publish is delivered to this node's subscribers at once, through the same path as
//! [`SessionHandle::broadcast`]: the message is encoded once per node, however many
//! subscribers it has, and each subscriber's own queue limits apply (a subscriber whose queue
//! overflows is closed, as with any send; a publish never waits for a slow one). Then the
//! [`Backend`] carries it to the other nodes, which deliver it to their own subscribers.
//! [`Local`] (the default) has no other node; `RedisBackend` (cargo feature `redis`) goes
//! through Redis pub/sub. docs/TOPICS.md states exactly what is guaranteed.
//!
//! ```no_run
//! # fn handler(topics: sockjs::Topics, session: sockjs::Session) {
//! let handle = session.handle();
//! topics.subscribe("news", &handle).unwrap();
//! topics.publish("news", "hello, subscribers");
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use sockjs_core::SessionId;

use crate::driver::Driver;
use crate::session::{SessionError, SessionHandle};

#[cfg(any(feature = "redis", feature = "redis-smol"))]
mod redis;
#[cfg(any(feature = "redis", feature = "redis-smol"))]
pub use self::redis::{Backoff, MAX_NODE_ID, RedisBackend, RedisConfig, valid_node_id};

/// The longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// The session has closed (or its server is gone).
    Closed,
    /// The topic's name is empty or longer than [`MAX_TOPIC_LEN`].
    BadName,
}

impl std::fmt::Display for TopicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicError::Closed => f.write_str("the session is closed"),
            TopicError::BadName => write!(f, "a topic name has 1 to {MAX_TOPIC_LEN} bytes"),
        }
    }
}

impl std::error::Error for TopicError {}

impl From<SessionError> for TopicError {
    fn from(_: SessionError) -> Self {
        TopicError::Closed
    }
}

/// How publishes reach the other nodes, and theirs this one.
///
/// [`Topics`] delivers every publish to this node's subscribers itself; a backend only
/// carries it to the others and hands what they publish to [`Inbound::deliver`]. Every
/// method is called without waiting and must not wait: a backend buffers (bounded) and does
/// its I/O in tasks of its own. A backend never delivers a node's own publishes back to it.
pub trait Backend: Send + Sync + 'static {
    /// Called once, when [`Topics`] takes the backend: where messages from other nodes go.
    fn start(&self, inbound: Inbound);

    /// This node has its first subscriber to `topic`: messages for it must now arrive.
    fn subscribe(&self, topic: &str);

    /// This node's last subscriber to `topic` left.
    fn unsubscribe(&self, topic: &str);

    /// Carries a message published on this node to the other nodes.
    fn publish(&self, topic: &str, message: &str);

    /// The backend's figures.
    fn stats(&self) -> BackendStats {
        BackendStats::default()
    }
}

/// A backend's figures (counters since it started, and its state now).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendStats {
    /// Connected to the broker now (both ways), or no broker is needed.
    pub connected: bool,
    /// Publishes waiting to be sent to the broker now.
    pub buffered: u64,
    /// Bytes of those.
    pub buffered_bytes: u64,
    /// Publishes sent to the broker.
    pub sent: u64,
    /// Publishes dropped because the outgoing buffer was full (the broker unreachable or
    /// slower than the publishers).
    pub dropped: u64,
    /// Messages from other nodes handed to this node's subscribers.
    pub received: u64,
    /// This node's own publishes coming back from the broker, dropped.
    pub echoes: u64,
    /// Messages from other nodes seen before (a publish sent again after a reconnect),
    /// dropped.
    pub duplicates: u64,
    /// Messages from the broker that were malformed or too long, dropped.
    pub rejected: u64,
    /// Connections to the broker made after the first (either way).
    pub reconnects: u64,
    /// Topics the broker delivers to this node now.
    pub subscribed: u64,
}

/// The in-process backend: one node, nothing crosses to another. The default.
#[derive(Debug, Default, Clone, Copy)]
pub struct Local;

impl Backend for Local {
    fn start(&self, _: Inbound) {}
    fn subscribe(&self, _: &str) {}
    fn unsubscribe(&self, _: &str) {}
    fn publish(&self, _: &str, _: &str) {}
    fn stats(&self) -> BackendStats {
        BackendStats {
            connected: true,
            ..BackendStats::default()
        }
    }
}

/// Where a [`Backend`] hands the messages other nodes published.
#[derive(Clone)]
pub struct Inbound {
    topics: Weak<Inner>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound").finish_non_exhaustive()
    }
}

impl Inbound {
    /// Delivers a message another node published to this node's subscribers of `topic`
    /// (encoded once); returns how many took it.
    pub fn deliver(&self, topic: &str, message: &str) -> usize {
        match self.topics.upgrade() {
            Some(inner) => inner.deliver_local(topic, message),
            None => 0,
        }
    }

    /// The [`Topics`] that took the backend is gone: a backend's tasks may end.
    pub fn is_closed(&self) -> bool {
        self.topics.strong_count() == 0
    }
}

/// A node's topics' figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicStats {
    /// Topics with at least one subscriber on this node now.
    pub topics: usize,
    /// Subscriptions now (a session in two topics counts twice).
    pub subscriptions: usize,
    /// Sessions in at least one topic now.
    pub sessions: usize,
    /// Publishes made on this node.
    pub published: u64,
    /// Times a message was handed to this node's subscribers in one go, encoded once
    /// (once per publish with subscribers here, from this node or another).
    pub local_broadcasts: u64,
    /// Messages taken by subscribers on this node (one per subscriber and message).
    pub deliveries: u64,
    /// The backend's figures.
    pub backend: BackendStats,
}

/// Named groups of sessions, on one node and, through a [`Backend`], across nodes. Cheap to
/// clone (every clone is the same topics).
#[derive(Clone)]
pub struct Topics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics").finish_non_exhaustive()
    }
}

impl Default for Topics {
    fn default() -> Self {
        Topics::new()
    }
}

struct Inner {
    state: Mutex<State>,
    backend: Box<dyn Backend>,
    published: AtomicU64,
    local_broadcasts: AtomicU64,
    deliveries: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Each topic's subscribers on this node, with the server each belongs to.
    topics: HashMap<Arc<str>, HashMap<SessionId, Weak<Driver>>>,
    /// Each subscribed session's topics (empty after it unsubscribed from all: the entry
    /// goes when the session closes).
    sessions: HashMap<SessionId, HashSet<Arc<str>>>,
}

impl Topics {
    /// Topics on this node alone (the [`Local`] backend).
    pub fn new() -> Self {
        Topics::with_backend(Local)
    }

    /// Topics whose publishes `backend` carries to other nodes.
    pub fn with_backend(backend: impl Backend) -> Self {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            backend: Box::new(backend),
            published: AtomicU64::new(0),
            local_broadcasts: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
        });
        inner.backend.start(Inbound {
            topics: Arc::downgrade(&inner),
        });
        Topics { inner }
    }

    /// Adds `session` to `topic` (nothing changes if it is in already). The session leaves
    /// every topic when it closes.
    pub fn subscribe(&self, topic: &str, session: &SessionHandle) -> Result<(), TopicError> {
        check_name(topic)?;
        if session.driver.strong_count() == 0 {
            return Err(TopicError::Closed);
        }
        let id = session.id();
        let mut state = self.inner.lock();
        let first_topic = !state.sessions.contains_key(&id);
        if first_topic {
            // Registered under the state's lock, so the hook cannot run before the entry
            // exists; the hook takes that lock itself, after this one is released.
            let weak = Arc::downgrade(&self.inner);
            let hook = Box::new(move |id: SessionId| {
                if let Some(inner) = weak.upgrade() {
                    inner.leave_all(id);
                }
            });
            if session.shared.on_close(hook).is_err() {
                return Err(TopicError::Closed);
            }
        }
        let name: Arc<str> = match state.topics.get_key_value(topic) {
            Some((k, _)) => k.clone(),
            None => Arc::from(topic),
        };
        let members = state.topics.entry(name.clone()).or_default();
        let first_member = members.is_empty();
        members.insert(id, session.driver.clone());
        state.sessions.entry(id).or_default().insert(name);
        if first_member {
            self.inner.backend.subscribe(topic);
        }
        Ok(())
    }

    /// Takes `session` out of `topic`; false if it was not in.
    pub fn unsubscribe(&self, topic: &str, session: &SessionHandle) -> bool {
        let id = session.id();
        let mut state = self.inner.lock();
        let Some(topics) = state.sessions.get_mut(&id) else {
            return false;
        };
        if !topics.remove(topic) {
            return false;
        }
        // The entry stays (empty) until the session closes: its close hook is registered
        // once, however often it subscribes again.
        self.inner.remove_member(&mut state, topic, id);
        true
    }

    /// Sends `message` to every subscriber of `topic`: this node's at once (encoded once),
    /// the other nodes' through the backend. Never waits. Returns how many subscribers on
    /// this node took it.
    pub fn publish(&self, topic: &str, message: &str) -> usize {
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        let n = self.inner.deliver_local(topic, message);
        self.inner.backend.publish(topic, message);
        n
    }

    /// The topics `session` is in on this node.
    pub fn topics_of(&self, session: &SessionHandle) -> Vec<String> {
        let state = self.inner.lock();
        let mut names: Vec<String> = state
            .sessions
            .get(&session.id())
            .map(|t| t.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// How many sessions on this node are in `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.inner.lock().topics.get(topic).map_or(0, |m| m.len())
    }

    /// The figures, this node's and its backend's.
    pub fn stats(&self) -> TopicStats {
        let (topics, subscriptions, sessions) = {
            let state = self.inner.lock();
            (
                state.topics.len(),
                state.topics.values().map(|m| m.len()).sum(),
                state.sessions.values().filter(|t| !t.is_empty()).count(),
            )
        };
        TopicStats {
            topics,
            subscriptions,
            sessions,
            published: self.inner.published.load(Ordering::Relaxed),
            local_broadcasts: self.inner.local_broadcasts.load(Ordering::Relaxed),
            deliveries: self.inner.deliveries.load(Ordering::Relaxed),
            backend: self.inner.backend.stats(),
        }
    }
}

fn check_name(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::BadName);
    }
    Ok(())
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `message` to this node's subscribers of `topic`, once per server they are on.
    fn deliver_local(&self, topic: &str, message: &str) -> usize {
        // The ids are copied out: the servers' locks are never taken under this one (a
        // closing session's hook takes this one under its server's).
        let groups: Vec<(Weak<Driver>, Vec<SessionId>)> = {
            let state = self.lock();
            let Some(members) = state.topics.get(topic) else {
                return 0;
            };
            let mut groups: Vec<(Weak<Driver>, Vec<SessionId>)> = Vec::new();
            for (id, driver) in members {
                match groups.iter_mut().find(|(d, _)| d.ptr_eq(driver)) {
                    Some((_, ids)) => ids.push(*id),
                    None => groups.push((driver.clone(), vec![*id])),
                }
            }
            groups
        };
        let mut delivered = 0;
        for (driver, ids) in groups {
            if let Some(driver) = driver.upgrade() {
                self.local_broadcasts.fetch_add(1, Ordering::Relaxed);
                delivered += driver.broadcast(&ids, message);
            }
        }
        self.deliveries
            .fetch_add(delivered as u64, Ordering::Relaxed);
        delivered
    }

    /// A session closed: it leaves every topic.
    fn leave_all(&self, id: SessionId) {
        let mut state = self.lock();
        let Some(topics) = state.sessions.remove(&id) else {
            return;
        };
        for topic in topics {
            self.remove_member(&mut state, &topic, id);
        }
    }

    fn remove_member(&self, state: &mut State, topic: &str, id: SessionId) {
        if let Some(members) = state.topics.get_mut(topic) {
            members.remove(&id);
            if members.is_empty() {
                state.topics.remove(topic);
                self.backend.unsubscribe(topic);
            }
        }
    }
}
