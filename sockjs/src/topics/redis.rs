//! The Redis backend: every node publishes to and subscribes to Redis pub/sub channels, one
//! per topic (`channel_prefix` + topic). docs/TOPICS.md says why pub/sub and what is
//! guaranteed.
//!
//! Two tasks per node, on the server's [`Runtime`]: a publisher, which sends what this node
//! publishes (in order, in pipelined batches) from a bounded buffer, and a subscriber, which
//! keeps the subscriptions to the topics this node has subscribers for and hands what other
//! nodes publish to [`Inbound::deliver`]. Each reconnects on its own with exponential
//! backoff. The redis crate does the I/O on tokio when it runs inside a tokio runtime, else
//! on smol's reactor (which async-std shares).
//!
//! A message on the wire is `sockjs1 <node> <instance> <seq>\n<message>`: the node's id, a
//! number telling this run of the node from an earlier one (the time it started), and a
//! sequence number counting the node's publishes. A node drops its own messages coming back
//! and any message whose sequence number it has seen (a batch sent again after a reconnect).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use event_listener::Event;
use futures_lite::StreamExt;

use super::{Backend, BackendStats, Inbound, MAX_TOPIC_LEN};
use crate::rt::Runtime;

/// The first word of every message this backend publishes.
const MAGIC: &[u8] = b"sockjs1 ";
/// The longest header (magic, node id, two hexadecimal numbers, spaces, newline).
const MAX_HEADER: usize = 8 + MAX_NODE_ID + 1 + 16 + 1 + 16 + 1;
/// The longest node id, in bytes.
pub const MAX_NODE_ID: usize = 64;

/// The Redis backend's settings. [`RedisConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Where Redis is: `redis://127.0.0.1:6379` (`redis://[:password@]host:port[/db]`).
    pub url: String,
    /// This node's name: 1 to 64 of `A-Z a-z 0-9 . _ -`. Nodes sharing one Redis should
    /// have different ones (the same name is still told apart by its run's start time).
    pub node_id: String,
    /// What every topic's channel name starts with. Default `sockjs:topic:`.
    pub channel_prefix: String,
    /// Publishes waiting for Redis, at most; when a new one finds the buffer full, the
    /// oldest waiting one is dropped (and counted). Default 4,096.
    pub max_buffered_messages: usize,
    /// Bytes of publishes waiting for Redis, at most (dropping the oldest, as above).
    /// Default 4 MiB.
    pub max_buffered_bytes: usize,
    /// The longest message sent or accepted through Redis, in bytes: longer publishes reach
    /// this node's subscribers only (counted as dropped), longer messages from Redis are
    /// rejected. Default 1 MiB.
    pub max_message_bytes: usize,
    /// Publishes sent in one pipelined batch, at most. Default 64.
    pub batch: usize,
    /// The first wait before reconnecting; each failed attempt doubles it. Default 100 ms.
    pub backoff_min: Duration,
    /// The longest wait before reconnecting. Default 5 s.
    pub backoff_max: Duration,
    /// How long a connection attempt may take. Default 2 s.
    pub connect_timeout: Duration,
    /// How long Redis may take to answer a batch of publishes or a (un)subscription before
    /// the connection is given up and made anew. Default 2 s.
    pub response_timeout: Duration,
}

impl RedisConfig {
    /// The defaults, for Redis at `url` and a node named `node_id`.
    pub fn new(url: impl Into<String>, node_id: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            node_id: node_id.into(),
            channel_prefix: "sockjs:topic:".into(),
            max_buffered_messages: 4096,
            max_buffered_bytes: 4 << 20,
            max_message_bytes: 1 << 20,
            batch: 64,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
        }
    }
}

/// Whether `id` can name a node: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_NODE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Exponential backoff without jitter: `min`, `2 min`, `4 min`, ... up to `max`. The same
/// failures always give the same waits.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min` (at least a millisecond), never more than `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        let max = max.max(min);
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The wait after one more failure.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    /// A success: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Topics across nodes through Redis pub/sub (cargo feature `redis`).
///
/// ```no_run
/// # fn f(runtime: std::sync::Arc<dyn sockjs::Runtime>) -> std::io::Result<()> {
/// use sockjs::Topics;
/// use sockjs::topics::{RedisBackend, RedisConfig};
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379", "node-1");
/// let topics = Topics::with_backend(RedisBackend::new(runtime, config)?);
/// # Ok(()) }
/// ```
pub struct RedisBackend {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("node_id", &self.shared.config.node_id)
            .finish_non_exhaustive()
    }
}

struct Shared {
    runtime: Arc<dyn Runtime>,
    client: ::redis::Client,
    config: RedisConfig,
    /// Tells this run of the node from earlier ones with the same id.
    instance: u64,
    out: Mutex<Outgoing>,
    /// Something was buffered, or the backend stopped.
    out_ready: Event,
    desired: Mutex<Desired>,
    /// The topics wanted changed, or the backend stopped.
    changed: Event,
    inbound: OnceLock<Inbound>,
    stopped: AtomicBool,
    stop: Event,
    seen: Mutex<Seen>,
    pub_connected: AtomicBool,
    sub_connected: AtomicBool,
    sent: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
    echoes: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    reconnects: AtomicU64,
    subscribed: AtomicU64,
}

/// One publish on its way to Redis.
struct Item {
    channel: Vec<u8>,
    payload: Vec<u8>,
}

impl Item {
    fn size(&self) -> usize {
        self.channel.len() + self.payload.len()
    }
}

#[derive(Default)]
struct Outgoing {
    queue: VecDeque<Item>,
    bytes: usize,
    /// The last sequence number given.
    seq: u64,
    /// Taken by the publisher and not yet confirmed by Redis.
    inflight: usize,
    inflight_bytes: usize,
}

#[derive(Default)]
struct Desired {
    topics: HashSet<String>,
    /// Counts changes: the subscriber reconciles when it moved.
    generation: u64,
}

/// The last sequence number seen from each publisher (node id and run), for the most
/// recently heard `MAX_PUBLISHERS` of them.
#[derive(Default)]
struct Seen {
    last: HashMap<(String, u64), (u64, u64)>,
    clock: u64,
}

const MAX_PUBLISHERS: usize = 1024;

impl Seen {
    /// True the first time `seq` (or a later number) is seen from that publisher.
    fn fresh(&mut self, node: &str, instance: u64, seq: u64) -> bool {
        self.clock += 1;
        let clock = self.clock;
        if let Some((last, heard)) = self.last.get_mut(&(node.to_string(), instance)) {
            if seq <= *last {
                return false;
            }
            *last = seq;
            *heard = clock;
            return true;
        }
        if self.last.len() >= MAX_PUBLISHERS
            && let Some(oldest) = self
                .last
                .iter()
                .min_by_key(|(_, (_, heard))| *heard)
                .map(|(k, _)| k.clone())
        {
            self.last.remove(&oldest);
        }
        self.last.insert((node.to_string(), instance), (seq, clock));
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RedisBackend {
    /// A backend for Redis at `config.url`, running its tasks on `runtime` once
    /// [`Topics::with_backend`](super::Topics::with_backend) takes it. Fails on a URL that
    /// does not parse or a bad node id; Redis itself need not be up (the backend connects,
    /// and reconnects, in the background).
    pub fn new(runtime: Arc<dyn Runtime>, config: RedisConfig) -> io::Result<Self> {
        if !valid_node_id(&config.node_id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "bad node id {:?}: 1 to {MAX_NODE_ID} of A-Z a-z 0-9 . _ -",
                    config.node_id
                ),
            ));
        }
        let client = ::redis::Client::open(config.url.as_str()).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("bad Redis URL: {e}"))
        })?;
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let instance = started.wrapping_add(RUNS.fetch_add(1, Ordering::Relaxed));
        Ok(RedisBackend {
            shared: Arc::new(Shared {
                runtime,
                client,
                config,
                instance,
                out: Mutex::default(),
                out_ready: Event::new(),
                desired: Mutex::default(),
                changed: Event::new(),
                inbound: OnceLock::new(),
                stopped: AtomicBool::new(false),
                stop: Event::new(),
                seen: Mutex::default(),
                pub_connected: AtomicBool::new(false),
                sub_connected: AtomicBool::new(false),
                sent: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                received: AtomicU64::new(0),
                echoes: AtomicU64::new(0),
                duplicates: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                reconnects: AtomicU64::new(0),
                subscribed: AtomicU64::new(0),
            }),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.shared.config.node_id
    }
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.stop.notify(usize::MAX);
        self.shared.out_ready.notify(usize::MAX);
        self.shared.changed.notify(usize::MAX);
    }
}

impl Backend for RedisBackend {
    fn start(&self, inbound: Inbound) {
        if self.shared.inbound.set(inbound).is_err() {
            return;
        }
        let rt = &self.shared.runtime;
        rt.spawn(Box::pin(publisher(self.shared.clone())));
        rt.spawn(Box::pin(subscriber(self.shared.clone())));
    }

    fn subscribe(&self, topic: &str) {
        let mut desired = lock(&self.shared.desired);
        if desired.topics.insert(topic.to_string()) {
            desired.generation += 1;
            drop(desired);
            self.shared.changed.notify(usize::MAX);
        }
    }

    fn unsubscribe(&self, topic: &str) {
        let mut desired = lock(&self.shared.desired);
        if desired.topics.remove(topic) {
            desired.generation += 1;
            drop(desired);
            self.shared.changed.notify(usize::MAX);
        }
    }

    fn publish(&self, topic: &str, message: &str) {
        let s = &self.shared;
        if message.len() > s.config.max_message_bytes {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut channel = Vec::with_capacity(s.config.channel_prefix.len() + topic.len());
        channel.extend_from_slice(s.config.channel_prefix.as_bytes());
        channel.extend_from_slice(topic.as_bytes());
        let mut out = lock(&s.out);
        out.seq += 1;
        let mut payload = Vec::with_capacity(MAX_HEADER + message.len());
        payload.extend_from_slice(MAGIC);
        payload.extend_from_slice(s.config.node_id.as_bytes());
        payload.extend_from_slice(format!(" {:x} {:x}\n", s.instance, out.seq).as_bytes());
        payload.extend_from_slice(message.as_bytes());
        let item = Item { channel, payload };
        let size = item.size();
        let mut dropped = 0;
        while !out.queue.is_empty()
            && (out.queue.len() >= s.config.max_buffered_messages.max(1)
                || out.bytes + size > s.config.max_buffered_bytes)
        {
            if let Some(old) = out.queue.pop_front() {
                out.bytes -= old.size();
                dropped += 1;
            }
        }
        if size > s.config.max_buffered_bytes {
            dropped += 1;
        } else {
            out.bytes += size;
            out.queue.push_back(item);
        }
        drop(out);
        if dropped > 0 {
            s.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        s.out_ready.notify(1);
    }

    fn stats(&self) -> BackendStats {
        let s = &self.shared;
        let out = lock(&s.out);
        BackendStats {
            connected: s.pub_connected.load(Ordering::Relaxed)
                && s.sub_connected.load(Ordering::Relaxed),
            buffered: (out.queue.len() + out.inflight) as u64,
            buffered_bytes: (out.bytes + out.inflight_bytes) as u64,
            sent: s.sent.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
            echoes: s.echoes.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            subscribed: s.subscribed.load(Ordering::Relaxed),
        }
    }
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// `f`, or `None` after `limit` (or once the backend stopped).
    async fn within<F: Future>(&self, limit: Duration, f: F) -> Option<F::Output> {
        let mut timer = self.runtime.new_timer(Instant::now() + limit);
        let stop = self.stop.listen();
        let stopped = self.stopped();
        futures_lite::future::or(async { Some(f.await) }, async {
            if !stopped {
                futures_lite::future::or(timer.as_mut(), stop).await;
            }
            None
        })
        .await
    }

    /// Waits `wait`, or less if the backend stops.
    async fn pause(&self, wait: Duration) {
        let _ = self.within(wait, std::future::pending::<()>()).await;
    }

    /// Takes up to a batch of buffered publishes; waits while there is none. Empty once the
    /// backend stopped.
    async fn take_batch(&self) -> Vec<Item> {
        loop {
            let ready = self.out_ready.listen();
            if self.stopped() {
                return Vec::new();
            }
            {
                let mut out = lock(&self.out);
                let n = out.queue.len().min(self.config.batch.max(1));
                if n > 0 {
                    let batch: Vec<Item> = out.queue.drain(..n).collect();
                    let bytes: usize = batch.iter().map(Item::size).sum();
                    out.bytes -= bytes;
                    out.inflight = n;
                    out.inflight_bytes = bytes;
                    return batch;
                }
            }
            ready.await;
        }
    }

    fn confirmed(&self, n: usize) {
        let mut out = lock(&self.out);
        out.inflight = 0;
        out.inflight_bytes = 0;
        drop(out);
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A message from Redis on `channel`: checked, then delivered unless it is this node's
    /// own or seen before.
    fn on_message(&self, channel: &[u8], payload: &[u8]) {
        let Some(topic) = channel
            .strip_prefix(self.config.channel_prefix.as_bytes())
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOPIC_LEN)
            .and_then(|t| std::str::from_utf8(t).ok())
        else {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some((node, instance, seq, message)) =
            parse_envelope(payload, self.config.max_message_bytes)
        else {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if node == self.config.node_id && instance == self.instance {
            self.echoes.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !lock(&self.seen).fresh(node, instance, seq) {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        if let Some(inbound) = self.inbound.get() {
            inbound.deliver(topic, message);
        }
    }
}

/// Splits `sockjs1 <node> <instance> <seq>\n<message>`; `None` unless every part is well
/// formed and the message is UTF-8 of at most `max_message` bytes.
fn parse_envelope(payload: &[u8], max_message: usize) -> Option<(&str, u64, u64, &str)> {
    if payload.len() > MAX_HEADER.saturating_add(max_message) {
        return None;
    }
    let rest = payload.strip_prefix(MAGIC)?;
    let head_len = rest.iter().take(MAX_HEADER).position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(&rest[..head_len]).ok()?;
    let message = std::str::from_utf8(&rest[head_len + 1..]).ok()?;
    if message.len() > max_message {
        return None;
    }
    let mut parts = head.split(' ');
    let node = parts.next().filter(|n| valid_node_id(n))?;
    let instance = parse_hex(parts.next()?)?;
    let seq = parse_hex(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    Some((node, instance, seq, message))
}

fn parse_hex(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// Sends what is buffered, in order, reconnecting as needed; a batch Redis did not confirm
/// is sent again on the next connection (receivers drop what they have seen).
async fn publisher(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(shared.config.backoff_min, shared.config.backoff_max);
    let mut inflight: Vec<Item> = Vec::new();
    let mut connected_before = false;
    let config = ::redis::AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None);
    while !shared.stopped() {
        let attempt = shared
            .client
            .get_multiplexed_async_connection_with_config(&config);
        let mut conn = match shared.within(shared.config.connect_timeout, attempt).await {
            Some(Ok(conn)) => conn,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "topics: cannot connect to Redis to publish");
                shared.pause(backoff.next_wait()).await;
                continue;
            }
            None => {
                shared.pause(backoff.next_wait()).await;
                continue;
            }
        };
        if connected_before {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        connected_before = true;
        shared.pub_connected.store(true, Ordering::Relaxed);
        tracing::info!("topics: publishing through Redis");
        loop {
            if inflight.is_empty() {
                inflight = shared.take_batch().await;
                if inflight.is_empty() {
                    return;
                }
            }
            let mut pipe = ::redis::pipe();
            for item in &inflight {
                pipe.cmd("PUBLISH")
                    .arg(&item.channel[..])
                    .arg(&item.payload[..])
                    .ignore();
            }
            let sent = pipe.query_async::<()>(&mut conn);
            match shared.within(shared.config.response_timeout, sent).await {
                Some(Ok(())) => {
                    backoff.reset();
                    shared.confirmed(inflight.len());
                    inflight.clear();
                }
                failed => {
                    if let Some(Err(e)) = failed {
                        tracing::warn!(error = %e, "topics: Redis connection lost (publishing)");
                    } else {
                        tracing::warn!("topics: Redis did not answer in time (publishing)");
                    }
                    break;
                }
            }
        }
        shared.pub_connected.store(false, Ordering::Relaxed);
        shared.pause(backoff.next_wait()).await;
    }
}

/// Keeps the subscriptions to the topics wanted and delivers what arrives, reconnecting
/// and subscribing again as needed.
async fn subscriber(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(shared.config.backoff_min, shared.config.backoff_max);
    let mut connected_before = false;
    while !shared.stopped() {
        let attempt = shared.client.get_async_pubsub();
        let pubsub = match shared.within(shared.config.connect_timeout, attempt).await {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "topics: cannot connect to Redis to subscribe");
                shared.pause(backoff.next_wait()).await;
                continue;
            }
            None => {
                shared.pause(backoff.next_wait()).await;
                continue;
            }
        };
        if connected_before {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        connected_before = true;
        let (mut sink, mut stream) = pubsub.split();
        let mut actual: HashSet<String> = HashSet::new();
        let mut generation = None;
        let prefix = &shared.config.channel_prefix;
        'connected: loop {
            let changed = shared.changed.listen();
            if shared.stopped() {
                return;
            }
            let wanted = {
                let desired = lock(&shared.desired);
                (generation != Some(desired.generation))
                    .then(|| (desired.generation, desired.topics.clone()))
            };
            if let Some((g, wanted)) = wanted {
                let add: Vec<String> = wanted
                    .iter()
                    .filter(|t| !actual.contains(*t))
                    .map(|t| format!("{prefix}{t}"))
                    .collect();
                let remove: Vec<String> = actual
                    .iter()
                    .filter(|t| !wanted.contains(*t))
                    .map(|t| format!("{prefix}{t}"))
                    .collect();
                for chunk in add.chunks(256) {
                    let done = shared.within(shared.config.response_timeout, sink.subscribe(chunk));
                    if !matches!(done.await, Some(Ok(()))) {
                        tracing::warn!("topics: Redis connection lost (subscribing)");
                        break 'connected;
                    }
                }
                for chunk in remove.chunks(256) {
                    let done =
                        shared.within(shared.config.response_timeout, sink.unsubscribe(chunk));
                    if !matches!(done.await, Some(Ok(()))) {
                        tracing::warn!("topics: Redis connection lost (unsubscribing)");
                        break 'connected;
                    }
                }
                actual = wanted;
                generation = Some(g);
                shared
                    .subscribed
                    .store(actual.len() as u64, Ordering::Relaxed);
                if !shared.sub_connected.swap(true, Ordering::Relaxed) {
                    tracing::info!(topics = actual.len(), "topics: subscribed through Redis");
                }
                backoff.reset();
            }
            let next = futures_lite::future::or(async { Some(stream.next().await) }, async {
                changed.await;
                None
            })
            .await;
            match next {
                None => continue,
                Some(Some(msg)) => {
                    shared.on_message(msg.get_channel_name().as_bytes(), msg.get_payload_bytes())
                }
                Some(None) => {
                    tracing::warn!("topics: Redis connection lost (subscribed)");
                    break;
                }
            }
        }
        shared.sub_connected.store(false, Ordering::Relaxed);
        shared.subscribed.store(0, Ordering::Relaxed);
        shared.pause(backoff.next_wait()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let waits: Vec<u64> = (0..6).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_millis(100));
        let mut zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.next_wait(), Duration::from_millis(1));
    }

    #[test]
    fn envelopes_parse_and_garbage_does_not() {
        let ok = b"sockjs1 node-1 ff 2a\nhello\nworld";
        assert_eq!(
            parse_envelope(ok, 100),
            Some(("node-1", 255, 42, "hello\nworld"))
        );
        assert_eq!(
            parse_envelope(b"sockjs1 n 1 1\n", 100),
            Some(("n", 1, 1, ""))
        );
        for bad in [
            &b""[..],
            b"sockjs1 ",
            b"sockjs1 node 1 1",
            b"sockjs2 node 1 1\nx",
            b"sockjs1 no:de 1 1\nx",
            b"sockjs1 node 1 1 1\nx",
            b"sockjs1 node x 1\nx",
            b"sockjs1 node 1 -1\nx",
            b"sockjs1 node 11111111111111111 1\nx",
            b"sockjs1  1 1\nx",
            b"sockjs1 node 1 1\n\xff",
        ] {
            assert_eq!(parse_envelope(bad, 100), None, "{bad:?}");
        }
        assert_eq!(parse_envelope(b"sockjs1 n 1 1\n12345", 4), None);
        let long = [b'a'; 200];
        let mut head = b"sockjs1 ".to_vec();
        head.extend_from_slice(&long);
        head.extend_from_slice(b" 1 1\nx");
        assert_eq!(parse_envelope(&head, 100), None);
    }

    #[test]
    fn seen_drops_repeats_per_publisher_and_stays_bounded() {
        let mut seen = Seen::default();
        assert!(seen.fresh("a", 1, 1));
        assert!(seen.fresh("a", 1, 2));
        assert!(!seen.fresh("a", 1, 2));
        assert!(!seen.fresh("a", 1, 1));
        assert!(seen.fresh("a", 2, 1), "another run of the node");
        assert!(seen.fresh("b", 1, 1));
        for i in 0..(MAX_PUBLISHERS as u64 * 2) {
            assert!(seen.fresh("c", i + 10, 1));
        }
        assert!(seen.last.len() <= MAX_PUBLISHERS);
    }

    #[test]
    fn node_ids() {
        assert!(valid_node_id("node-1.a_b"));
        assert!(!valid_node_id(""));
        assert!(!valid_node_id("a b"));
        assert!(!valid_node_id(&"a".repeat(MAX_NODE_ID + 1)));
    }
}
