//! The send queue of a connection: admission into the bounded queue, and watermarks. The
//! thread that drains it is in `writer.rs`; sends that skip the queue are in `through.rs`.
//!
//! The queue is a std `sync_channel` of encoded messages. Admission is decided first under one
//! small mutex that counts messages and bytes accepted but not yet written (`pending`,
//! `bytes`), so a send can wait for room with a deadline (std's `SyncSender` has no
//! `send_timeout`) and the byte bound holds as exactly as the message bound. Once admitted, a
//! message always finds room in the channel: the channel's capacity is the message bound (plus
//! one slot for the writer's wake-up, `Payload::Kick`), and `pending` counts every message
//! still in the channel.
//!
//! The channel and its writer thread are made on the first send that needs them: std's
//! `sync_channel(n)` allocates all `n` slots at once, which an idle connection should not pay.
//!
//! Ending: dropping the last `SyncSender` is how the writer learns that no more messages come.
//! `recv` then returns every queued message before it reports the disconnection, so "drain,
//! then FIN" needs no extra signalling and no send can slip in between.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::core::Core;
use crate::conn::options::WatermarkEvent;
use crate::error::Refused;
use crate::sync::{deadline_after, lock};

/// What goes through the channel: the encoded bytes of one message (owned, or shared by every
/// connection of a broadcast), or a wake-up for the writer that is no message at all.
pub(crate) enum Payload {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
    /// Write what write-through gathered (see `Core::kick_writer`). Never counted: not in
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
    /// No writer yet: nothing was ever queued, so there is no channel and no writer thread.
    #[default]
    NoWriter,
    /// The writer thread runs and drains this channel.
    Writer(SyncSender<Payload>),
    /// The sending half is dropped: the connection is closing (the writer drains what is
    /// left, then ends).
    Closed,
}

/// Admission state, under `Core::q`.
#[derive(Default)]
pub(crate) struct QState {
    pub(crate) tx: Tx,
    /// Messages accepted and not yet written (in the channel or in the writer's hands).
    pub(crate) pending: usize,
    /// Their encoded bytes.
    pub(crate) bytes: usize,
    /// Senders waiting on `Core::space`.
    waiters: usize,
}

/// How long a send may wait for room (or, written through, for the socket).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Try,
    /// Up to this long from the moment it first has to wait: the clock is read only then.
    Wait(Duration),
}

impl Core {
    /// Accepts `p` into the queue, waiting for room as `mode` allows, or hands it back with
    /// the reason.
    pub(crate) fn push(self: &Arc<Self>, p: Payload, mode: Mode) -> Result<(), (Payload, Refused)> {
        if self.datagram {
            return self.send_datagram(p, mode);
        }
        let len = p.as_slice().len();
        let mut deadline = None;
        let mut q = lock(&self.q);
        loop {
            if self.is_closing() {
                return Err((p, Refused::Closed));
            }
            if q.bytes + len > self.high && !self.above_high.load(Ordering::SeqCst) {
                // Tell the observer before waiting for room: the rise comes before the drain
                // that ends the wait.
                drop(q);
                self.watermark(true);
                q = lock(&self.q);
                continue;
            }
            let fits = q.pending < self.cfg.queue_capacity
                && (q.bytes == 0 || q.bytes + len <= self.cfg.queue_bytes);
            if fits {
                break;
            }
            let wait = match mode {
                Mode::Try => None,
                Mode::Wait(t) => deadline
                    .get_or_insert_with(|| deadline_after(t))
                    .checked_duration_since(Instant::now()),
            };
            if self.parked.is_some() && mode != Mode::Try && q.pending > 0 {
                // No writer thread to wait for (an embedded connection): write the queue
                // here, as the writer would while this send waits.
                drop(q);
                self.write_parked();
                q = lock(&self.q);
                continue;
            }
            let Some(wait) = wait.filter(|w| !w.is_zero()) else {
                let why = if mode == Mode::Try {
                    Refused::Full
                } else {
                    Refused::Timeout
                };
                self.metrics.queue_full();
                return Err((p, why));
            };
            q.waiters += 1;
            q = self
                .space
                .wait_timeout(q, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            q.waiters -= 1;
        }
        let tx = match &q.tx {
            Tx::Writer(tx) => tx.clone(),
            _ => match self.spawn_writer() {
                Ok(tx) => {
                    q.tx = Tx::Writer(tx.clone());
                    tx
                }
                Err(e) => {
                    drop(q);
                    self.io_failed(e);
                    return Err((p, Refused::Closed));
                }
            },
        };
        q.pending += 1;
        q.bytes += len;
        drop(q);
        // Admission left room: `pending` (now counting this message) never exceeds the
        // channel's capacity, and every message in the channel is counted in `pending`.
        match tx.try_send(p) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(p)) => tx.send(p).map_err(|e| self.unadmit(e.0, len)),
            Err(TrySendError::Disconnected(p)) => Err(self.unadmit(p, len)),
        }
    }

    fn unadmit(&self, p: Payload, len: usize) -> (Payload, Refused) {
        self.release(1, len);
        (p, Refused::Closed)
    }

    /// `n` messages of `bytes` left the queue: make room, wake waiting senders, and report a
    /// drain to the watermark observer.
    pub(crate) fn release(&self, n: usize, bytes: usize) {
        let mut q = lock(&self.q);
        q.pending -= n;
        q.bytes -= bytes;
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
        let queued = lock(&self.q).bytes;
        let due = if full {
            !self.above_high.load(Ordering::SeqCst)
        } else {
            self.above_high.load(Ordering::SeqCst) && queued <= self.low
        };
        if !due {
            return;
        }
        self.above_high.store(full, Ordering::SeqCst);
        if self.cfg.on_watermark.is_none() {
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
        if let Some(observer) = &self.cfg.on_watermark {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| observer(event)));
        }
    }
}
