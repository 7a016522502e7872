//! The writer thread of a connection: started by the first send that has to be queued, it takes
//! one message from the queue, then whatever else is already there (up to a batch), and writes
//! the batch with one vectored write; on a datagram socket, one datagram per message. When the
//! last sender lets go, it has written everything, so it sends the FIN of a graceful close.
//! A close drops what is left, counted (invariant 2, DESIGN.md).

use std::io::{self, IoSlice};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crate::conn::core::Core;
use crate::conn::queue::{count, Payload};
use crate::conn::threads::mark_writer;
use crate::conn::through::Out;
use crate::sync::lock;
use crate::sys::transport::{timed_out, Socket};

/// Most messages the writer takes into one vectored write.
const BATCH_MESSAGES: usize = 64;
/// The writer stops adding messages to a batch once it holds this many bytes.
const BATCH_BYTES: usize = 256 * 1024;

/// An I/O error after `written` bytes of a batch.
struct WriteFail {
    written: usize,
    error: io::Error,
}

/// The writer part of a connection: its writer thread (or the thread finishing a graceful
/// close), joined before `on_close`; or, for a connection that starts no thread (an embedded
/// connection, `testing/`), the queue's receiving half, parked until its driver writes it on
/// its own thread ([`write_parked`](Writer::write_parked)).
#[derive(Default)]
pub(crate) struct Writer {
    thread: Mutex<Option<JoinHandle<()>>>,
    parked: Option<Mutex<Option<Receiver<Payload>>>>,
}

impl Writer {
    /// A writer that starts no thread: its queue waits for [`write_parked`](Self::write_parked).
    pub(crate) fn without_threads() -> Writer {
        Writer {
            thread: Mutex::new(None),
            parked: Some(Mutex::new(None)),
        }
    }

    /// True if this writer starts no thread.
    pub(crate) fn is_parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Keeps `thread` (a FIN thread) to be joined like the writer.
    pub(crate) fn hold(&self, thread: JoinHandle<()>) {
        *lock(&self.thread) = Some(thread);
    }

    /// Waits for the writer thread (or the FIN thread), if there is one.
    pub(crate) fn join(&self) {
        let thread = lock(&self.thread).take();
        if let Some(h) = thread {
            let _ = h.join();
        }
    }

    /// Writes a batch: one vectored write on a stream, one datagram per message on a datagram
    /// socket (a UDP peer), where message boundaries are the wire's.
    fn write_batch(core: &Core, stream: &dyn Socket, batch: &[Payload]) -> Result<(), WriteFail> {
        if !stream.is_datagram() {
            let mut iov: Vec<IoSlice<'_>> =
                batch.iter().map(|p| IoSlice::new(p.as_slice())).collect();
            return Writer::write_all(core, stream, &mut iov);
        }
        let mut written = 0;
        for p in batch.iter().filter(|p| p.is_message()) {
            let bytes = p.as_slice();
            Writer::write_all(core, stream, &mut [IoSlice::new(bytes)]).map_err(|fail| {
                WriteFail {
                    written: written + fail.written,
                    error: fail.error,
                }
            })?;
            written += bytes.len();
        }
        Ok(())
    }

    /// Writes all of `bufs`, waiting out write timeouts (a slow peer) until the connection is
    /// closed.
    fn write_all(
        core: &Core,
        stream: &dyn Socket,
        mut bufs: &mut [IoSlice<'_>],
    ) -> Result<(), WriteFail> {
        let mut written = 0;
        loop {
            // Drop leading empty slices (a `Kick`, or an empty message, carries no bytes): a
            // writev of nothing returns 0, which is not an error here.
            IoSlice::advance_slices(&mut bufs, 0);
            if bufs.is_empty() {
                return Ok(());
            }
            match stream.write_vectored(bufs) {
                Ok(0) => {
                    let error = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(WriteFail { written, error });
                }
                Ok(n) => {
                    written += n;
                    core.socket_wrote(n);
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) && !core.is_aborted() => {}
                Err(error) => return Err(WriteFail { written, error }),
            }
        }
    }

    /// Makes the queue's channel and starts the writer thread that drains it (or parks the
    /// receiving half); the sending half.
    pub(crate) fn spawn(&self, core: &Arc<Core>) -> io::Result<SyncSender<Payload>> {
        // One slot more than the message bound: room for the one `Kick` that may be in flight.
        let (tx, rx) = mpsc::sync_channel(core.options().queue_capacity + 1);
        if let Some(parked) = &self.parked {
            *lock(parked) = Some(rx);
            return Ok(tx);
        }
        let owner = Arc::clone(core);
        let handle = thread::Builder::new()
            .name("threadnet-writer".into())
            .stack_size(core.options().stack_size)
            .spawn(move || Writer::run(owner, rx))?;
        self.hold(handle);
        Ok(tx)
    }

    /// The writer thread: take one message, then whatever else is queued, write them with one
    /// vectored write, repeat. When every sender is gone and the queue is empty, send the FIN.
    fn run(core: Arc<Core>, rx: Receiver<Payload>) {
        mark_writer(&core);
        let Some(stream) = core.stream() else {
            Writer::discard(&core, Vec::new(), &rx);
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
            if core.is_aborted() {
                drop(stream);
                Writer::discard(&core, batch, &rx);
                return;
            }
            if let Err(error) = Writer::write_taken(&core, &*stream, &mut batch) {
                drop(stream);
                core.io_failed(error);
                Writer::discard(&core, batch, &rx);
                return;
            }
        }
        // Every sender is gone and the queue is empty: the graceful end.
        drop(stream);
        core.send_fin(&mut core.out.lock());
    }

    /// Writes a batch taken from the queue, after what write-through gathered, and counts it
    /// as written. On an error, the messages wholly written count as written and `batch`
    /// keeps the rest.
    fn write_taken(core: &Core, stream: &dyn Socket, batch: &mut Vec<Payload>) -> io::Result<()> {
        let result = {
            let mut out = core.out.lock();
            // What write-through gathered was accepted before anything in this batch.
            match Out::write_gathered(core, &mut out, stream) {
                Ok(()) => {
                    // Only now, with it written: write-through may gather again.
                    if batch.iter().any(|p| !p.is_message()) {
                        core.queue.kicked_done();
                    }
                    Writer::write_batch(core, stream, batch)
                }
                Err(error) => Err(WriteFail { written: 0, error }),
            }
        };
        match result {
            Ok(()) => {
                let (n, bytes) = count(batch.iter());
                core.queue.release(n, bytes);
                core.traffic.sent(n as u64);
                batch.clear();
                Ok(())
            }
            Err(WriteFail { written, error }) => {
                // Messages wholly written count as written; the rest are dropped.
                let mut sum = 0;
                let done = batch
                    .iter()
                    .take_while(|p| {
                        sum += p.as_slice().len();
                        sum <= written
                    })
                    .count();
                let (n, bytes) = count(&batch[..done]);
                core.queue.release(n, bytes);
                core.traffic.sent(n as u64);
                batch.drain(..done);
                Err(error)
            }
        }
    }

    /// The writer's work for a connection [without threads](Core::without_threads), done on
    /// the caller's thread: writes everything queued now; once the queue is closed and empty,
    /// sends the FIN of a graceful close; on a closed connection, counts what is queued as
    /// dropped. Never waits for the peer: call it again after it has read.
    pub(crate) fn write_parked(&self, core: &Arc<Core>) {
        let Some(parked) = &self.parked else {
            return;
        };
        // Taken out while it is worked on: a send (holding `q`) may lock `parked`.
        let Some(rx) = lock(parked).take() else {
            // No queue was ever needed: a graceful close's FIN may still be due.
            if core.is_closing() {
                core.send_fin(&mut core.out.lock());
            }
            return;
        };
        let Some(stream) = core.stream() else {
            return Writer::discard(core, Vec::new(), &rx);
        };
        let mut batch = Vec::new();
        let disconnected = loop {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if core.is_aborted() {
            return Writer::discard(core, batch, &rx);
        }
        if let Err(error) = Writer::write_taken(core, &*stream, &mut batch) {
            core.io_failed(error);
            return Writer::discard(core, batch, &rx);
        }
        if disconnected {
            // Every sender is gone and the queue is empty: the graceful end.
            return core.send_fin(&mut core.out.lock());
        }
        *lock(parked) = Some(rx);
    }

    /// Wakes (or starts) the writer thread to write what write-through gathered; it does so
    /// before its next batch. At most one wake-up is in flight.
    pub(crate) fn kick(&self, core: &Arc<Core>) {
        if !core.queue.kick() {
            return;
        }
        let tx = match core.queue.sender(|| self.spawn(core)) {
            Ok(Some(tx)) => tx,
            // Closing: the FIN path writes what is gathered, or the close counts it.
            Ok(None) => return core.queue.kicked_done(),
            Err(e) => {
                core.queue.kicked_done();
                core.io_failed(e);
                return;
            }
        };
        if tx.try_send(Payload::Kick).is_err() {
            core.queue.kicked_done();
        }
    }

    /// Counts what is left as dropped: `batch`, then everything the channel still yields until
    /// the last in-flight sender has let go of its `SyncSender`.
    fn discard(core: &Core, batch: Vec<Payload>, rx: &Receiver<Payload>) {
        let rest: Vec<Payload> = batch.into_iter().chain(rx.iter()).collect();
        let (n, bytes) = count(&rest);
        core.queue.count_dropped(n as u64);
        core.queue.release(n, bytes);
    }
}
