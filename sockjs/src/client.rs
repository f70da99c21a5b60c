//! The client side: [`connect`] drives a [`sockjs_core::client::Client`] on any [`Runtime`]
//! and hands the application a [`ClientSession`], shaped like the server's
//! [`Session`](crate::Session): a stream of messages, `send`, `close(code, reason)`, and the
//! transport in use.
//!
//! One task per connection the core asks for (it reads into the core and writes what the
//! core hands out) and one timer task; the core sits behind a lock, and after every call the
//! caller drains its I/O and events, as its run-loop contract asks.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use event_listener::Event as Notify;
use sockjs_core::client::{Client, ConnId, Event, Io, Url};
pub use sockjs_core::client::{
    ClientError, ClientOptions, Close, ClosedBy, ErrorKind, Transport, UsageError,
};

use crate::rt::{AsyncSocket, Runtime};

/// Bytes of received messages the application has not taken beyond which the client stops
/// reading its connections (the server then holds what is not read).
const MAX_UNREAD: usize = 4 << 20;
/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 16 << 10;

/// Why [`connect`] did not give a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not one the client can use.
    Url(String),
    /// The session closed before it opened: every transport failed, `/info` did not answer,
    /// or the server closed it at once. `error` is the last failure reported, if any.
    Closed {
        /// How the session ended.
        close: Close,
        /// The last failure before it.
        error: Option<ClientError>,
    },
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Url(e) => f.write_str(e),
            ConnectError::Closed { close, error } => {
                write!(f, "closed before opening: {} {}", close.code, close.reason)?;
                if let Some(e) = error {
                    write!(f, " (last error: {e})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConnectError {}

struct Shared {
    runtime: Arc<dyn Runtime>,
    url: Url,
    state: Mutex<State>,
    closed: Notify,
}

struct State {
    core: Client,
    inbox: VecDeque<String>,
    unread: usize,
    recv_waker: Option<Waker>,
    open_waker: Option<Waker>,
    opened: Option<Transport>,
    close: Option<Close>,
    last_error: Option<ClientError>,
    conns: HashMap<ConnId, Slot>,
    deadline: Option<Instant>,
    timer_waker: Option<Waker>,
}

/// What the core asked of one connection and its task has not done yet.
#[derive(Default)]
struct Slot {
    out: VecDeque<Bytes>,
    close: bool,
    waker: Option<Waker>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drains the core's I/O and events after a call, as its contract asks.
    fn drain(self: &Arc<Self>, st: &mut State) {
        while let Some(io) = st.core.poll_io() {
            match io {
                Io::Connect(id) => {
                    st.conns.insert(id, Slot::default());
                    let shared = Arc::clone(self);
                    self.runtime.spawn(Box::pin(connection(shared, id)));
                }
                Io::Write(id, bytes) => {
                    if let Some(slot) = st.conns.get_mut(&id) {
                        slot.out.push_back(bytes);
                        wake(&mut slot.waker);
                    }
                }
                Io::Close(id) => {
                    if let Some(slot) = st.conns.get_mut(&id) {
                        slot.close = true;
                        wake(&mut slot.waker);
                    }
                }
            }
        }
        while let Some(event) = st.core.poll_event() {
            match event {
                Event::Opened(t) => {
                    st.opened = Some(t);
                    wake(&mut st.open_waker);
                }
                Event::Message(m) => {
                    st.unread += m.len();
                    st.inbox.push_back(m);
                    wake(&mut st.recv_waker);
                }
                Event::Error(e) => {
                    tracing::debug!(error = %e, "sockjs client");
                    st.last_error = Some(e);
                }
                Event::Closed(c) => {
                    st.close = Some(c);
                    wake(&mut st.recv_waker);
                    wake(&mut st.open_waker);
                    self.closed.notify(usize::MAX);
                }
            }
        }
        let deadline = st.core.poll_timeout();
        if deadline != st.deadline || st.close.is_some() {
            st.deadline = deadline;
            wake(&mut st.timer_waker);
        }
    }
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(w) = waker.take() {
        w.wake();
    }
}

/// Connects to the SockJS endpoint at `url` (`http://host:port/prefix`, or `ws://`; `https`
/// and `wss` need TLS, which this layer does not provide yet) and returns the session once
/// it is open, after `/info` and as many transports as it took.
pub async fn connect(
    runtime: Arc<dyn Runtime>,
    url: &str,
    options: ClientOptions,
) -> Result<ClientSession, ConnectError> {
    let url = Url::parse(url).map_err(|e| ConnectError::Url(e.to_string()))?;
    if url.tls {
        return Err(ConnectError::Url(
            "https and wss are not supported yet".into(),
        ));
    }
    let entropy: sockjs_core::Entropy = Box::new(crate::server::random_u32);
    let core = Client::new(url.clone(), options, Instant::now(), entropy);
    let shared = Arc::new(Shared {
        runtime: Arc::clone(&runtime),
        url,
        state: Mutex::new(State {
            core,
            inbox: VecDeque::new(),
            unread: 0,
            recv_waker: None,
            open_waker: None,
            opened: None,
            close: None,
            last_error: None,
            conns: HashMap::new(),
            deadline: None,
            timer_waker: None,
        }),
        closed: Notify::new(),
    });
    {
        let mut st = shared.lock();
        shared.drain(&mut st);
    }
    runtime.spawn(Box::pin(timer(Arc::clone(&shared))));
    let session = ClientSession {
        shared: Arc::clone(&shared),
    };
    poll_fn(|cx| {
        let mut st = shared.lock();
        if let Some(t) = st.opened {
            return Poll::Ready(Ok(t));
        }
        if let Some(close) = st.close.clone() {
            let error = st.last_error.clone();
            return Poll::Ready(Err(ConnectError::Closed { close, error }));
        }
        st.open_waker = Some(cx.waker().clone());
        Poll::Pending
    })
    .await?;
    Ok(session)
}

/// The timer task: calls the core's `handle_timeout` at each deadline it sets, until the
/// session is closed.
async fn timer(shared: Arc<Shared>) {
    let mut timer = shared
        .runtime
        .new_timer(Instant::now() + Duration::from_secs(3600));
    let mut armed: Option<Instant> = None;
    loop {
        let fired = poll_fn(|cx| {
            let mut st = shared.lock();
            if st.close.is_some() {
                return Poll::Ready(false);
            }
            st.timer_waker = Some(cx.waker().clone());
            let Some(deadline) = st.deadline else {
                return Poll::Pending;
            };
            if armed != Some(deadline) {
                timer.as_mut().reset(deadline);
                armed = Some(deadline);
            }
            timer.as_mut().poll(cx).map(|()| true)
        })
        .await;
        if !fired {
            return;
        }
        armed = None;
        let mut st = shared.lock();
        st.core.handle_timeout(Instant::now());
        shared.drain(&mut st);
    }
}

/// What a connection's task does next.
enum Next {
    Read,
    Done,
    Failed,
}

/// One connection's task: connects, then writes what the core queued for it and reads
/// into the core, until the core closes it or the peer does.
async fn connection(shared: Arc<Shared>, id: ConnId) {
    let socket = match shared
        .runtime
        .connect(&shared.url.host, shared.url.port)
        .await
    {
        Ok(socket) => socket,
        Err(e) => {
            tracing::debug!(error = %e, "sockjs client: connect failed");
            return gone(&shared, id);
        }
    };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let next = poll_fn(|cx| poll_connection(&shared, id, &*socket, cx)).await;
        match next {
            Next::Done => {
                let _ = socket.shutdown_write();
                return;
            }
            Next::Failed => return gone(&shared, id),
            Next::Read => match socket.try_read(&mut buf) {
                Ok(0) => return gone(&shared, id),
                Ok(n) => {
                    let mut st = shared.lock();
                    st.core.handle_bytes(Instant::now(), id, &buf[..n]);
                    shared.drain(&mut st);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return gone(&shared, id),
            },
        }
    }
}

fn poll_connection(
    shared: &Arc<Shared>,
    id: ConnId,
    socket: &dyn AsyncSocket,
    cx: &mut Context<'_>,
) -> Poll<Next> {
    let mut st = shared.lock();
    let paused = st.unread > MAX_UNREAD;
    let Some(slot) = st.conns.get_mut(&id) else {
        return Poll::Ready(Next::Done);
    };
    while let Some(front) = slot.out.front_mut() {
        match socket.poll_write_ready(cx) {
            Poll::Pending => break,
            Poll::Ready(Err(_)) => return Poll::Ready(Next::Failed),
            Poll::Ready(Ok(())) => {}
        }
        match socket.try_write_vectored(&[IoSlice::new(front)]) {
            Ok(n) => {
                front.advance(n);
                if front.is_empty() {
                    slot.out.pop_front();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Poll::Ready(Next::Failed),
        }
    }
    if slot.close && slot.out.is_empty() {
        st.conns.remove(&id);
        return Poll::Ready(Next::Done);
    }
    slot.waker = Some(cx.waker().clone());
    if paused {
        return Poll::Pending;
    }
    match socket.poll_read_ready(cx) {
        Poll::Ready(Ok(())) => Poll::Ready(Next::Read),
        Poll::Ready(Err(_)) => Poll::Ready(Next::Failed),
        Poll::Pending => Poll::Pending,
    }
}

/// The connection ended or never was: the core hears of it.
fn gone(shared: &Arc<Shared>, id: ConnId) {
    let mut st = shared.lock();
    st.conns.remove(&id);
    st.core.handle_eof(Instant::now(), id);
    shared.drain(&mut st);
}

/// An open client session: a stream of the server's messages (`recv`, or
/// `futures_core::Stream`), `send`, `close(code, reason)` and the transport in use.
/// Dropping it closes the session (code 1000) if it is still open.
pub struct ClientSession {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("transport", &self.transport())
            .finish()
    }
}

impl ClientSession {
    /// The transport the session runs on.
    pub fn transport(&self) -> Transport {
        let st = self.shared.lock();
        st.opened.unwrap_or(Transport::WebSocket)
    }

    /// The next message from the server; `None` once the session is closed and every
    /// message that arrived before has been received.
    pub async fn recv(&mut self) -> Option<String> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let mut st = self.shared.lock();
        if let Some(m) = st.inbox.pop_front() {
            let was_paused = st.unread > MAX_UNREAD;
            st.unread -= m.len();
            if was_paused && st.unread <= MAX_UNREAD {
                st.conns.values_mut().for_each(|s| wake(&mut s.waker));
            }
            return Poll::Ready(Some(m));
        }
        if st.close.is_some() {
            return Poll::Ready(None);
        }
        st.recv_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Sends a message to the server (on HTTP transports, with the next `xhr_send`).
    pub fn send(&self, message: impl AsRef<str>) -> Result<(), UsageError> {
        let mut st = self.shared.lock();
        let sent = st.core.send(message.as_ref());
        self.shared.drain(&mut st);
        sent
    }

    /// Closes the session with `code` (1000 or 3000-4999) and `reason`.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), UsageError> {
        let mut st = self.shared.lock();
        let closed = st.core.close(code, reason);
        self.shared.drain(&mut st);
        closed
    }

    /// How the session ended, once it has.
    pub fn close_reason(&self) -> Option<Close> {
        self.shared.lock().close.clone()
    }

    /// The last failure the client reported (a transport given up, or what closed it).
    pub fn last_error(&self) -> Option<ClientError> {
        self.shared.lock().last_error.clone()
    }

    /// Waits until the session closes and returns how.
    pub async fn closed(&self) -> Close {
        loop {
            let listener = self.shared.closed.listen();
            if let Some(c) = self.close_reason() {
                return c;
            }
            listener.await;
        }
    }
}

impl Drop for ClientSession {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if st.close.is_none() {
            let _ = st.core.close(1000, "Normal closure");
            self.shared.drain(&mut st);
        }
    }
}

impl futures_core::Stream for ClientSession {
    type Item = String;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        self.poll_recv(cx)
    }
}
