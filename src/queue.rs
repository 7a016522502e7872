//! The send side of a connection: admission into the bounded queue, watermarks, write-through,
//! and the writer thread.
//!
//! The queue is a std `sync_channel` of encoded messages. Admission is decided first under one
//! small mutex that counts messages and bytes accepted but not yet written (`pending`,
//! `bytes`), so a send can wait for room with a deadline (std's `SyncSender` has no
//! `send_timeout`) and the byte bound holds as exactly as the message bound. Once admitted, a
//! message always finds room in the channel: the channel's capacity is the message bound, and
//! `pending` counts every message still in the channel.
//!
//! The channel and its writer thread are made on the first send that needs them: std's
//! `sync_channel(n)` allocates all `n` slots at once, which an idle connection should not pay.
//!
//! Ending: dropping the last `SyncSender` is how the writer learns that no more messages come.
//! `recv` then returns every queued message before it reports the disconnection, so "drain,
//! then FIN" needs no extra signalling and no send can slip in between.

use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crate::conn::{lock, Core};
use crate::error::Refused;
use crate::options::WatermarkEvent;

/// Most messages the writer takes into one vectored write.
const BATCH_MESSAGES: usize = 64;
/// The writer stops adding messages to a batch once it holds this many bytes.
const BATCH_BYTES: usize = 256 * 1024;

/// Encoded bytes of one message: owned, or shared by every connection of a broadcast.
pub(crate) enum Payload {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl Payload {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Owned(v) => v,
            Payload::Shared(a) => a,
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Payload::Owned(v) => v,
            Payload::Shared(a) => a.to_vec(),
        }
    }
}

/// Where the queue's sending half is.
#[derive(Default)]
pub(crate) enum Tx {
    /// Nothing queued yet: no channel, no writer thread.
    #[default]
    Idle,
    /// The writer thread runs and drains this channel.
    Open(SyncSender<Payload>),
    /// No more sends: shutting down, closed or ended.
    Done,
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

/// How long a push may wait for room.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Try,
    Until(Instant),
}

thread_local! {
    /// The `Core` whose reader runs on this thread (as an address), for write-through.
    static READER_OF: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the current thread as `core`'s reader until the guard drops.
pub(crate) struct ReaderMark;

impl ReaderMark {
    pub(crate) fn set(core: &Arc<Core>) -> ReaderMark {
        READER_OF.with(|r| r.set(Arc::as_ptr(core) as usize));
        ReaderMark
    }
}

impl Drop for ReaderMark {
    fn drop(&mut self) {
        READER_OF.with(|r| r.set(0));
    }
}

/// True on `core`'s reader thread.
pub(crate) fn is_reader_thread(core: &Arc<Core>) -> bool {
    READER_OF.with(|r| r.get()) == Arc::as_ptr(core) as usize
}

/// An I/O error after `written` bytes of a batch.
struct WriteFail {
    written: usize,
    error: io::Error,
}

impl Core {
    /// Accepts `p` into the queue (or writes it through), or hands it back with the reason.
    pub(crate) fn push(self: &Arc<Self>, p: Payload, mode: Mode) -> Result<(), (Payload, Refused)> {
        let len = p.as_slice().len();
        let mut q = lock(&self.q);
        loop {
            if matches!(q.tx, Tx::Done) {
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
                Mode::Until(deadline) => deadline.checked_duration_since(Instant::now()),
            };
            let Some(wait) = wait.filter(|w| !w.is_zero()) else {
                let why = if mode == Mode::Try {
                    Refused::Full
                } else {
                    Refused::Timeout
                };
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
            Tx::Open(tx) => tx.clone(),
            _ => match self.spawn_writer() {
                Ok(tx) => {
                    q.tx = Tx::Open(tx.clone());
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

    /// Writes all of `bufs`, waiting out write timeouts (a slow peer) until the connection is
    /// closed.
    fn write_all(&self, stream: &TcpStream, mut bufs: &mut [IoSlice<'_>]) -> Result<(), WriteFail> {
        let mut written = 0;
        loop {
            // Drop leading empty slices (an empty message wakes the writer and carries no
            // bytes): a writev of nothing returns 0, which is not an error here.
            IoSlice::advance_slices(&mut bufs, 0);
            if bufs.is_empty() {
                return Ok(());
            }
            match (&*stream).write_vectored(bufs) {
                Ok(0) => {
                    let error = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(WriteFail { written, error });
                }
                Ok(n) => {
                    written += n;
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && !self.closed.load(Ordering::SeqCst) => {}
                Err(error) => return Err(WriteFail { written, error }),
            }
        }
    }

    fn spawn_writer(self: &Arc<Self>) -> io::Result<SyncSender<Payload>> {
        let (tx, rx) = mpsc::sync_channel(self.cfg.queue_capacity);
        let core = Arc::clone(self);
        let handle = thread::Builder::new()
            .name("threadnet-writer".into())
            .stack_size(self.cfg.stack_size)
            .spawn(move || core.writer_loop(rx))?;
        *lock(&self.writer) = Some(handle);
        Ok(tx)
    }

    /// The writer thread: take one message, then whatever else is queued, write them with one
    /// vectored write, repeat. When every sender is gone and the queue is empty, send the FIN.
    fn writer_loop(self: Arc<Self>, rx: Receiver<Payload>) {
        let Some(stream) = self.stream() else {
            self.discard(Vec::new(), &rx);
            return;
        };
        let mut batch: Vec<Payload> = Vec::with_capacity(BATCH_MESSAGES);
        while let Ok(first) = rx.recv() {
            let mut bytes = first.as_slice().len();
            batch.push(first);
            while batch.len() < BATCH_MESSAGES && bytes < BATCH_BYTES {
                match rx.try_recv() {
                    Ok(p) => {
                        bytes += p.as_slice().len();
                        batch.push(p);
                    }
                    Err(_) => break,
                }
            }
            if self.closed.load(Ordering::SeqCst) {
                drop(stream);
                self.discard(batch, &rx);
                return;
            }
            let result = {
                let mut out = lock(&self.out);
                if let Err(error) = self.write_gathered(&mut out, &stream) {
                    drop(out);
                    drop(stream);
                    self.io_failed(error);
                    self.discard(batch, &rx);
                    return;
                }
                let mut iov: Vec<IoSlice<'_>> =
                    batch.iter().map(|p| IoSlice::new(p.as_slice())).collect();
                self.write_all(&stream, &mut iov)
            };
            match result {
                Ok(()) => {
                    self.release(batch.len(), bytes);
                    batch.clear();
                }
                Err(WriteFail { written, error }) => {
                    // Messages wholly written count as written; the rest are dropped.
                    let mut done = 0;
                    let mut sum = 0;
                    for p in &batch {
                        sum += p.as_slice().len();
                        if sum > written {
                            break;
                        }
                        done += 1;
                    }
                    self.release(done, batch[..done].iter().map(|p| p.as_slice().len()).sum());
                    batch.drain(..done);
                    drop(stream);
                    self.io_failed(error);
                    self.discard(batch, &rx);
                    return;
                }
            }
        }
        // Every sender is gone and the queue is empty: the graceful end.
        drop(stream);
        let mut out = lock(&self.out);
        self.send_fin(&mut out);
    }

    /// Counts what is left as dropped: `batch`, then everything the channel still yields until
    /// the last in-flight sender has let go of its `SyncSender`.
    fn discard(&self, batch: Vec<Payload>, rx: &Receiver<Payload>) {
        let mut n = 0;
        let mut bytes = 0;
        for p in batch.into_iter().chain(rx.iter()) {
            n += 1;
            bytes += p.as_slice().len();
        }
        self.dropped.fetch_add(n as u64, Ordering::SeqCst);
        self.release(n, bytes);
    }

    /// `n` messages of `bytes` left the queue: make room, wake waiting senders, and report a
    /// drain to the watermark observer.
    fn release(&self, n: usize, bytes: usize) {
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
    /// observer. Flips and calls happen under one lock, so the observer sees rises and drains
    /// alternate, in the order they happened.
    fn watermark(&self, full: bool) {
        let _order = lock(&self.events);
        let queued = lock(&self.q).bytes;
        let due = if full {
            !self.above_high.load(Ordering::SeqCst)
        } else {
            self.above_high.load(Ordering::SeqCst) && queued <= self.low
        };
        if due {
            self.above_high.store(full, Ordering::SeqCst);
            self.emit(queued, full);
        }
    }

    fn emit(&self, queued_bytes: usize, full: bool) {
        if let Some(observer) = &self.cfg.on_watermark {
            let event = WatermarkEvent {
                id: self.id,
                queued_bytes,
                full,
            };
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| observer(event)));
        }
    }
}
