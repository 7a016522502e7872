//! The live connections of a server, by id.

use std::collections::HashMap;
use std::io;
use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::codec::Codec;
use crate::conn::queue::Payload;
use crate::conn::threads::is_own_thread;
use crate::conn::Connection;
use crate::error::TrySendError;
use crate::sync::lock;

/// What [`Registry::broadcast`] did for each connection, by connection id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Connections whose queue took the message.
    pub queued: Vec<u64>,
    /// Connections whose queue was full: they did not get the message.
    pub full: Vec<u64>,
    /// Connections that were closing: they did not get the message.
    pub closed: Vec<u64>,
}

struct Entry<C: Codec> {
    conn: Connection<C>,
    /// The connection's reader thread, once the accept loop has stored it.
    thread: Option<JoinHandle<()>>,
}

/// The live connections of a server: look one up, count them, visit them, or send to all.
///
/// A connection is in the registry from accept until its `on_close` has returned.
pub struct Registry<C: Codec> {
    codec: Arc<C>,
    map: Mutex<HashMap<u64, Entry<C>>>,
    /// Signalled when a connection leaves, if someone waits for that.
    left: Condvar,
    /// How many threads wait on `left`: counted under the `map` lock, read under it, so that
    /// a connection that leaves wakes no one (no system call) when no one waits.
    waiting: AtomicUsize,
    /// Reader threads that have ended (or are ending) and wait to be joined.
    finished: Mutex<Vec<JoinHandle<()>>>,
}

impl<C: Codec> Registry<C> {
    pub(crate) fn new(codec: Arc<C>) -> Self {
        Registry {
            codec,
            map: Mutex::new(HashMap::new()),
            left: Condvar::new(),
            waiting: AtomicUsize::new(0),
            finished: Mutex::new(Vec::new()),
        }
    }

    /// The live connection with this id.
    pub fn get(&self, id: u64) -> Option<Connection<C>> {
        lock(&self.map).get(&id).map(|e| e.conn.clone())
    }

    /// How many connections are live.
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// True if no connection is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` for each live connection, in no particular order. `f` runs on a snapshot,
    /// without the registry's lock, so it may send, close, or look up other connections.
    pub fn for_each(&self, mut f: impl FnMut(&Connection<C>)) {
        for conn in self.snapshot() {
            f(&conn);
        }
    }

    /// Sends `msg` to every live connection without blocking: it is encoded once, and each
    /// connection takes the same bytes, written at once where nothing is queued and the
    /// socket has room (no writer thread woken), else queued if the queue has room. The
    /// report says, per connection id, which took it (`queued`) and which were full or
    /// closing; nothing is retried.
    ///
    /// # Errors
    ///
    /// The codec's error if `msg` cannot be encoded; then nothing was sent.
    pub fn broadcast(&self, msg: &C::Out) -> io::Result<BroadcastReport> {
        let mut buf = Vec::new();
        self.codec.write(msg, &mut buf)?;
        let bytes: Arc<[u8]> = buf.into();
        let mut report = BroadcastReport::default();
        for conn in self.snapshot() {
            match conn.offer_payload(Payload::Shared(Arc::clone(&bytes))) {
                Ok(()) => report.queued.push(conn.id()),
                Err(TrySendError::Full(_)) => report.full.push(conn.id()),
                Err(_) => report.closed.push(conn.id()),
            }
        }
        Ok(report)
    }

    fn snapshot(&self) -> Vec<Connection<C>> {
        lock(&self.map).values().map(|e| e.conn.clone()).collect()
    }

    pub(crate) fn insert(&self, conn: Connection<C>) {
        let id = conn.id();
        lock(&self.map).insert(id, Entry { conn, thread: None });
    }

    /// Stores a connection's reader thread; if the connection has already ended, the thread
    /// goes straight to the list of finished ones.
    pub(crate) fn set_thread(&self, id: u64, thread: JoinHandle<()>) {
        let mut map = lock(&self.map);
        match map.get_mut(&id) {
            Some(e) => e.thread = Some(thread),
            None => {
                drop(map);
                lock(&self.finished).push(thread);
            }
        }
    }

    /// Removes an ended connection; its reader thread (the caller) is left to be joined.
    pub(crate) fn remove(&self, id: u64) {
        let (entry, waiting) = {
            let mut map = lock(&self.map);
            (map.remove(&id), self.waiting.load(Ordering::Relaxed))
        };
        if waiting > 0 {
            self.left.notify_all();
        }
        if let Some(thread) = entry.and_then(|e| e.thread) {
            lock(&self.finished).push(thread);
        }
    }

    /// True if the calling thread is one of a connection's own threads (its reader, its writer,
    /// or the wheel running one of its timers): such a caller must not wait for connections
    /// to end.
    pub(crate) fn is_own_thread_of_any(&self) -> bool {
        lock(&self.map)
            .values()
            .any(|e| is_own_thread(&e.conn.core))
    }

    /// Waits until every connection has left, or `until`; true if they all left. The calling
    /// thread's own connection, if it is one of them, is not waited for.
    pub(crate) fn wait_empty(&self, until: Instant) -> bool {
        let mut map = lock(&self.map);
        let own = usize::from(map.values().any(|e| is_own_thread(&e.conn.core)));
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let mut all_left = true;
        while map.len() > own {
            let now = Instant::now();
            if now >= until {
                all_left = false;
                break;
            }
            map = self
                .left
                .wait_timeout(map, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        all_left
    }

    /// Joins the reader threads that have ended.
    pub(crate) fn reap(&self) {
        let done = mem::take(&mut *lock(&self.finished));
        for t in done {
            join(t);
        }
    }

    /// Joins every reader thread, live or ended, until none is left; but not the connection
    /// whose reader or writer thread is the caller (a stop from one of its own callbacks): that
    /// reader waits for its writer, so joining it would wait for ourselves. It ends, and leaves
    /// the registry, as soon as the callback returns.
    pub(crate) fn join_all(&self) {
        let mut own_entry = false;
        loop {
            let mut live = Vec::new();
            for e in lock(&self.map).values_mut() {
                if is_own_thread(&e.conn.core) {
                    own_entry = true;
                } else if let Some(t) = e.thread.take() {
                    live.push(t);
                }
            }
            let ended = mem::take(&mut *lock(&self.finished));
            if live.is_empty() && ended.is_empty() {
                if lock(&self.map).len() <= usize::from(own_entry) {
                    return;
                }
                // Only reachable in the instant between a thread's spawn and the accept loop
                // storing its handle, which `stop` rules out by joining the accept loop first.
                std::thread::yield_now();
                continue;
            }
            for t in live.into_iter().chain(ended) {
                join(t);
            }
        }
    }
}

/// Joins `t`, unless it is the calling thread: a server stopped from inside one of its own
/// handlers (say, by dropping its last handle there) must not wait for itself. That thread
/// ends as soon as its handler returns.
fn join(t: JoinHandle<()>) {
    if t.thread().id() != std::thread::current().id() {
        let _ = t.join();
    }
}
