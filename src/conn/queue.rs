//! The send queue of a connection: admission into the bounded queue, and watermarks. The send
//! path that admits and enqueues is `send.rs`; the thread that drains the queue is `drain.rs`
//! (with `writer.rs`); sends that skip the queue are in `through.rs`.
//!
//! The queue is a std `sync_channel` of encoded messages. Admission is decided first under one
//! small mutex that counts messages and bytes accepted but not yet written (`pending`,
//! `bytes`), so a send can wait for room with a deadline (std's `SyncSender` has no
//! `send_timeout`) and the byte bound holds as exactly as the message bound. Once admitted, a
//! message always finds room in the channel: the channel's capacity is the message bound (plus
//! one slot for the writer's wake-up, `Payload::Kick`), and `pending` counts every message
//! still in the channel.
//!
//! The channel and its writer thread are made on the first send that needs them (and again after
//! the writer ended in a quiet spell, `retire_writer`): std's
//! `sync_channel(n)` allocates all `n` slots at once, which an idle connection should not pay.
//!
//! Ending: dropping the last `SyncSender` is how the writer learns that no more messages come.
//! `recv` then returns every queued message before it reports the disconnection, so "drain,
//! then FIN" needs no extra signalling and no send can slip in between.

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::conn::options::{ConnOptions, WatermarkEvent, WatermarkObserver};
use crate::error::Refused;
use crate::sync::{deadline_after, lock};

/// What goes through the channel: the encoded bytes of one message (owned, or shared by every
/// connection of a broadcast), or a wake-up for the writer that is no message at all.
pub(crate) enum Payload {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
    /// Write what write-through gathered (see `send::kick`). Never counted: not in
    /// `pending`, not in `dropped`, and it has a channel slot of its own.
    Kick,
}

impl Payload {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Owned(v) => v,
            Payload::Shared(a) => a,
            Payload::Kick => &[],
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Payload::Owned(v) => v,
            Payload::Shared(a) => a.to_vec(),
            Payload::Kick => Vec::new(),
        }
    }

    pub(crate) fn is_message(&self) -> bool {
        !matches!(self, Payload::Kick)
    }
}

/// How many of `payloads` are messages, and their bytes.
pub(crate) fn count<'a>(payloads: impl IntoIterator<Item = &'a Payload>) -> (usize, usize) {
    payloads
        .into_iter()
        .filter(|p| p.is_message())
        .fold((0, 0), |(n, b), p| (n + 1, b + p.as_slice().len()))
}

/// Watermark events waiting to reach the observer, in the order they happened.
#[derive(Default)]
pub(crate) struct Events {
    queue: VecDeque<WatermarkEvent>,
    /// A thread is calling the observer; it delivers what is queued behind it too.
    delivering: bool,
}

/// Where the queue's sending half is.
#[derive(Default)]
pub(crate) enum Tx {
    /// No writer: nothing was queued yet, or the writer ended after a quiet spell; there is
    /// no channel and no writer thread.
    #[default]
    NoWriter,
    /// The writer thread runs and drains this channel.
    Writer(SyncSender<Payload>),
    /// The sending half is dropped: the connection is closing (the writer drains what is
    /// left, then ends).
    Closed,
}

/// Admission state, under [`SendQueue`]'s lock.
#[derive(Default)]
struct QState {
    tx: Tx,
    /// Messages accepted and not yet written (in the channel or in the writer's hands).
    pending: usize,
    /// Their encoded bytes.
    bytes: usize,
    /// Senders waiting on `SendQueue::space`.
    waiters: usize,
}

/// The send queue of a connection: what is accepted and not yet written (admission, bounded
/// in messages and bytes), the channel's sending half, the watermarks and their observer,
/// and the count of accepted messages that were never written.
pub(crate) struct SendQueue {
    /// The connection's id, for watermark events.
    id: u64,
    state: Mutex<QState>,
    /// Wakes senders waiting for room.
    space: Condvar,
    /// The message bound.
    capacity: usize,
    /// The byte bound.
    max_bytes: usize,
    high: usize,
    low: usize,
    observer: Option<WatermarkObserver>,
    /// Above the high watermark; changed only under `events`.
    above_high: AtomicBool,
    /// Orders watermark flips and their observer calls.
    events: Mutex<Events>,
    /// A `Kick` is in the channel (at most one is).
    kicked: AtomicBool,
    /// Accepted messages that were never written: dropped by a close, counted.
    dropped: AtomicU64,
    /// `pending`'s copy, stored under the lock wherever it changes: write-through asks it
    /// for every message, without the lock.
    pending_now: AtomicUsize,
}

/// Why [`SendQueue::admit`] took no message.
pub(crate) enum NotAdmitted {
    /// Refused: closing, full, or no room in time.
    Refused(Refused),
    /// The writer thread could not be started.
    Failed(io::Error),
}

/// How long a send may wait for room (or, written through, for the socket).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Try,
    /// Up to this long from the moment it first has to wait: the clock is read only then.
    Wait(Duration),
}

impl Mode {
    /// How long a send may still wait: `None` for `Try`, or once its time is up. `deadline`
    /// is fixed the first time this is asked (the clock is read only when a send has to wait).
    pub(crate) fn time_left(self, deadline: &mut Option<Instant>) -> Option<Duration> {
        let Mode::Wait(t) = self else {
            return None;
        };
        let left = deadline
            .get_or_insert_with(|| deadline_after(t))
            .checked_duration_since(Instant::now());
        left.filter(|w| !w.is_zero())
    }

    /// Why a send that found no room in its time is refused: `Full` for `Try`, else `Timeout`.
    pub(crate) fn refused(self) -> Refused {
        match self {
            Mode::Try => Refused::Full,
            Mode::Wait(_) => Refused::Timeout,
        }
    }
}

impl SendQueue {
    /// The queue of connection `id`, with the bounds and watermarks of `cfg`.
    pub(crate) fn new(id: u64, cfg: &ConnOptions) -> SendQueue {
        SendQueue {
            id,
            state: Mutex::new(QState::default()),
            space: Condvar::new(),
            capacity: cfg.queue_capacity,
            max_bytes: cfg.queue_bytes,
            high: cfg.high(),
            low: cfg.low(),
            observer: cfg.on_watermark.clone(),
            above_high: AtomicBool::new(false),
            events: Mutex::new(Events::default()),
            kicked: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            pending_now: AtomicUsize::new(0),
        }
    }

    /// Messages and bytes accepted and not yet written.
    pub(crate) fn queued(&self) -> (usize, usize) {
        let q = lock(&self.state);
        (q.pending, q.bytes)
    }

    /// True if no message is accepted and unwritten: write-through's check that nothing is
    /// waiting ahead of a message, read without the lock. A message this thread admitted, or
    /// one admitted before something this thread has seen (a channel's message, a lock), is
    /// always counted.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending_now.load(Ordering::Acquire) == 0
    }

    /// Netty's writability: false from the rise above the high watermark to the drain to the
    /// low one.
    pub(crate) fn is_writable(&self) -> bool {
        !self.above_high.load(Ordering::SeqCst)
    }

    /// Closes the sending half: no send is admitted from now on, waiting senders wake, and
    /// the writer drains what is queued and ends. `then` runs with what the sending half was,
    /// under the queue's lock (where a writer is started, so nothing starts one meanwhile).
    pub(crate) fn close<R>(&self, then: impl FnOnce(Tx) -> R) -> R {
        let mut q = lock(&self.state);
        let prev = mem::replace(&mut q.tx, Tx::Closed); // drops our sender: the writer drains
        if q.waiters > 0 {
            self.space.notify_all(); // a futex call even with nobody waiting: only if needed
        }
        then(prev)
    }

    /// The sending half to the writer thread, started with `spawn` if there is none yet;
    /// `Ok(None)` once closed.
    pub(crate) fn sender(
        &self,
        spawn: impl FnOnce() -> io::Result<SyncSender<Payload>>,
    ) -> io::Result<Option<SyncSender<Payload>>> {
        let mut q = lock(&self.state);
        Self::sender_in(&mut q, spawn)
    }

    fn sender_in(
        q: &mut QState,
        spawn: impl FnOnce() -> io::Result<SyncSender<Payload>>,
    ) -> io::Result<Option<SyncSender<Payload>>> {
        match &q.tx {
            Tx::Writer(tx) => Ok(Some(tx.clone())),
            Tx::NoWriter => {
                let tx = spawn()?;
                q.tx = Tx::Writer(tx.clone());
                Ok(Some(tx))
            }
            Tx::Closed => Ok(None),
        }
    }

    /// The writer thread found nothing to write for a quiet spell: if nothing is admitted and
    /// no wake-up is in flight, the sending half goes back to [`Tx::NoWriter`] (the next send
    /// that has to be queued starts a new writer) and the writer may end: true. Decided under
    /// the lock every admission takes, so no message can be on its way into the channel.
    /// `then` runs under that lock when it does.
    pub(crate) fn retire_writer(&self, then: impl FnOnce()) -> bool {
        let mut q = lock(&self.state);
        let idle = q.pending == 0 && !self.is_kicked() && matches!(q.tx, Tx::Writer(_));
        if idle {
            q.tx = Tx::NoWriter;
            then();
        }
        idle
    }

    /// Marks a writer's wake-up as in flight; false if one already is.
    pub(crate) fn kick(&self) -> bool {
        !self.kicked.swap(true, Ordering::SeqCst)
    }

    /// The wake-up was taken, or never sent: another may be.
    pub(crate) fn kicked_done(&self) {
        self.kicked.store(false, Ordering::SeqCst);
    }

    /// A wake-up is in flight: the writer is about to write what write-through gathered.
    pub(crate) fn is_kicked(&self) -> bool {
        self.kicked.load(Ordering::SeqCst)
    }

    /// `n` accepted messages were never written.
    pub(crate) fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::SeqCst);
    }

    /// Accepted messages never written, so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Admits one message of `len` bytes, waiting for room as `mode` allows, and returns the
    /// sending half to put it in ([`enqueue`](Self::enqueue)): it is counted as pending from
    /// here on. `closing` says whether the connection takes no more messages (asked under the
    /// lock a close takes). `drain`, for a connection with no writer thread, writes the queue
    /// on this thread while the send waits. `start` makes the channel and its writer, on the
    /// first message.
    ///
    /// # Errors
    /// [`NotAdmitted::Refused`] with `Closed`, `Full` (`Mode::Try`) or `Timeout`; or
    /// [`NotAdmitted::Failed`] if the writer could not be started.
    pub(crate) fn admit(
        &self,
        len: usize,
        mode: Mode,
        closing: impl Fn() -> bool,
        drain: Option<&dyn Fn()>,
        start: impl FnOnce() -> io::Result<SyncSender<Payload>>,
    ) -> Result<SyncSender<Payload>, NotAdmitted> {
        let mut deadline = None;
        let mut q = lock(&self.state);
        loop {
            if closing() {
                return Err(NotAdmitted::Refused(Refused::Closed));
            }
            if q.bytes + len > self.high && !self.above_high.load(Ordering::SeqCst) {
                // Tell the observer before waiting for room: the rise comes before the drain
                // that ends the wait.
                drop(q);
                self.watermark(true);
                q = lock(&self.state);
                continue;
            }
            let fits =
                q.pending < self.capacity && (q.bytes == 0 || q.bytes + len <= self.max_bytes);
            if fits {
                break;
            }
            let wait = mode.time_left(&mut deadline);
            if let Some(drain) = drain.filter(|_| mode != Mode::Try && q.pending > 0) {
                // No writer thread to wait for (an embedded connection): write the queue
                // here, as the writer would while this send waits.
                drop(q);
                drain();
                q = lock(&self.state);
                continue;
            }
            let Some(wait) = wait else {
                return Err(NotAdmitted::Refused(mode.refused()));
            };
            q.waiters += 1;
            q = self
                .space
                .wait_timeout(q, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            q.waiters -= 1;
        }
        let tx = match Self::sender_in(&mut q, start) {
            Ok(Some(tx)) => tx,
            // Checked above, under this lock: a close takes it to close the sending half.
            Ok(None) => return Err(NotAdmitted::Refused(Refused::Closed)),
            Err(e) => return Err(NotAdmitted::Failed(e)),
        };
        q.pending += 1;
        q.bytes += len;
        self.pending_now.store(q.pending, Ordering::Release);
        Ok(tx)
    }

    /// Puts an admitted message into the channel, or hands it back (`Closed`) if the writer is
    /// gone.
    pub(crate) fn enqueue(
        &self,
        tx: SyncSender<Payload>,
        p: Payload,
    ) -> Result<(), (Payload, Refused)> {
        let len = p.as_slice().len();
        // Admission left room: `pending` (now counting this message) never exceeds the
        // channel's capacity, and every message in the channel is counted in `pending`.
        match tx.try_send(p) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(p)) => tx.send(p).map_err(|e| self.unadmit(e.0, len)),
            Err(TrySendError::Disconnected(p)) => Err(self.unadmit(p, len)),
        }
    }

    /// Runs `f` under the lock a close takes to refuse sends, unless `closing` says the
    /// connection takes no more messages: nothing `f` does can come after the close began.
    pub(crate) fn while_open<R>(
        &self,
        closing: impl Fn() -> bool,
        f: impl FnOnce() -> R,
    ) -> Option<R> {
        let _q = lock(&self.state);
        (!closing()).then(f)
    }

    fn unadmit(&self, p: Payload, len: usize) -> (Payload, Refused) {
        self.release(1, len);
        (p, Refused::Closed)
    }

    /// `n` messages of `bytes` left the queue: make room, wake waiting senders, and report a
    /// drain to the watermark observer.
    pub(crate) fn release(&self, n: usize, bytes: usize) {
        let mut q = lock(&self.state);
        q.pending -= n;
        q.bytes -= bytes;
        self.pending_now.store(q.pending, Ordering::Release);
        if q.waiters > 0 {
            self.space.notify_all();
        }
        let drained = q.bytes <= self.low;
        drop(q);
        if drained && self.above_high.load(Ordering::SeqCst) {
            self.watermark(false);
        }
    }

    /// Flips the watermark state to `full` if the queue still calls for it, and tells the
    /// observer. Flips happen under one lock and their events are delivered in that order, so
    /// the observer sees rises and drains alternate. The observer runs with no lock held (it
    /// may send, and so cross a mark itself): the thread that finds no delivery under way
    /// delivers every event queued until it is done.
    fn watermark(&self, full: bool) {
        let mut ev = lock(&self.events);
        let queued = lock(&self.state).bytes;
        let due = if full {
            !self.above_high.load(Ordering::SeqCst)
        } else {
            self.above_high.load(Ordering::SeqCst) && queued <= self.low
        };
        if !due {
            return;
        }
        self.above_high.store(full, Ordering::SeqCst);
        if self.observer.is_none() {
            return;
        }
        ev.queue.push_back(WatermarkEvent {
            id: self.id,
            queued_bytes: queued,
            full,
        });
        if ev.delivering {
            return;
        }
        ev.delivering = true;
        while let Some(event) = ev.queue.pop_front() {
            drop(ev);
            self.emit(event);
            ev = lock(&self.events);
        }
        ev.delivering = false;
    }

    fn emit(&self, event: WatermarkEvent) {
        if let Some(observer) = &self.observer {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| observer(event)));
        }
    }
}
