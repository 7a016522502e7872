//! Draining the send queue, a sequence across the parts: the writer thread's loop, the same
//! work done on its driver's thread for a connection that starts no thread, and the FIN that
//! follows the last message of a graceful close.
//!
//! The writer thread is started by the first send that has to be queued, and again by the first
//! after it ended in a quiet spell. It takes one message
//! from the queue, then whatever else is already there (up to a batch), and writes what
//! write-through gathered followed by the batch, with one vectored write
//! ([`Writer::write_batch`]). When the last sender lets go, it has written everything, so it
//! sends the FIN. A close drops what is left, counted (invariant 2, DESIGN.md).

use std::io;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;

use crate::conn::core::Core;
use crate::conn::queue::{count, Payload};
use crate::conn::threads::mark_writer;
use crate::conn::through::{Gather, Out};
use crate::conn::writer::{WriteFail, Writer};
use crate::sys::transport::Socket;

/// Most messages the writer takes into one vectored write.
const BATCH_MESSAGES: usize = 64;
/// The writer stops adding messages to a batch once it holds this many bytes.
const BATCH_BYTES: usize = 256 * 1024;

/// Makes the queue's channel and starts `core`'s writer thread (or parks the queue of a
/// connection without threads); the sending half.
///
/// # Errors
/// The thread could not be started.
pub(crate) fn start_writer(core: &Arc<Core>) -> io::Result<SyncSender<Payload>> {
    let owner = Arc::clone(core);
    let cfg = core.options();
    core.writer
        .spawn(cfg.queue_capacity, cfg.stack_size, move |rx| run(owner, rx))
}

/// The writer thread: take one message, then whatever else is queued, write them with one
/// vectored write, repeat. When every sender is gone and the queue is empty, send the FIN.
/// After a quiet spell with nothing to write ([`ConnOptions::writer_quiet`]), end, unless a
/// send is on its way (`SendQueue::retire_writer`).
///
/// [`ConnOptions::writer_quiet`]: crate::ConnOptions::writer_quiet
fn run(core: Arc<Core>, rx: Receiver<Payload>) {
    mark_writer(&core);
    let quiet = core.options().writer_quiet;
    let mut batch: Vec<Payload> = Vec::with_capacity(BATCH_MESSAGES);
    // The socket is held while the writer may write, and let go of during the quiet spell's
    // decision: a writer that ends holds nothing of the connection's but its `Core`.
    let mut stream = core.stream();
    loop {
        let Some(socket) = &stream else {
            discard(&core, batch, &rx); // the connection has ended
            return;
        };
        let first = match rx.recv_timeout(quiet) {
            Ok(p) => p,
            Err(RecvTimeoutError::Timeout) => {
                drop(stream.take());
                // Decided under the queue's lock, where a new writer would be started: this
                // thread's handle is let go of (detached) there, so `finish` never waits for a
                // writer that has ended, and never misses one that runs.
                if core.queue.retire_writer(|| core.writer.detach()) {
                    return;
                }
                stream = core.stream();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
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
            drop(stream.take());
            discard(&core, batch, &rx);
            return;
        }
        if let Err(error) = write_taken(&core, &**socket, &mut batch) {
            drop(stream.take());
            core.io_failed(error);
            discard(&core, batch, &rx);
            return;
        }
    }
    // Every sender is gone and the queue is empty: the graceful end.
    drop(stream);
    send_fin(&core, &mut core.out.lock());
}

/// Writes a batch taken from the queue, after what write-through gathered, and counts it as
/// written. On an error, the messages wholly written count as written and `batch` keeps the
/// rest.
fn write_taken(core: &Core, stream: &dyn Socket, batch: &mut Vec<Payload>) -> io::Result<()> {
    let wire = core.wire();
    let result = {
        let mut out = core.out.lock();
        // What write-through gathered was accepted before anything in this batch.
        match Out::write_gathered(wire, &mut out, stream) {
            Ok(()) => {
                // Only now, with it written: write-through may gather again.
                if batch.iter().any(|p| !p.is_message()) {
                    core.queue.kicked_done();
                }
                Writer::write_batch(wire, stream, batch)
            }
            Err(error) => Err(WriteFail { written: 0, error }),
        }
    };
    let (done, result) = match result {
        Ok(()) => (batch.len(), Ok(())),
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
            (done, Err(error))
        }
    };
    let (n, bytes) = count(&batch[..done]);
    core.queue.release(n, bytes);
    wire.sent(n as u64);
    batch.drain(..done);
    result
}

/// The writer's work for a connection [without threads](Core::without_threads), done on the
/// caller's thread: writes everything queued now; once the queue is closed and empty, sends
/// the FIN of a graceful close; on a closed connection, counts what is queued as dropped.
/// Never waits for the peer: call it again after it has read. Does nothing for a connection
/// with a writer thread.
pub(crate) fn write_parked(core: &Arc<Core>) {
    if !core.has_no_threads() {
        return;
    }
    let Some(rx) = core.writer.unpark() else {
        // No queue was ever needed: a graceful close's FIN may still be due.
        if core.is_closing() {
            send_fin(core, &mut core.out.lock());
        }
        return;
    };
    let Some(stream) = core.stream() else {
        return discard(core, Vec::new(), &rx);
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
        return discard(core, batch, &rx);
    }
    if let Err(error) = write_taken(core, &*stream, &mut batch) {
        core.io_failed(error);
        return discard(core, batch, &rx);
    }
    if disconnected {
        // Every sender is gone and the queue is empty: the graceful end.
        return send_fin(core, &mut core.out.lock());
    }
    core.writer.park(rx);
}

/// Writes what is gathered, then `shutdown(Write)`: the peer reads everything written so far,
/// then EOF. Call with `out` held (its contents passed in), after the last write.
pub(crate) fn send_fin(core: &Core, out: &mut Gather) {
    if core.is_aborted() {
        return;
    }
    if let Some(s) = core.stream() {
        match Out::write_gathered(core.wire(), out, &*s) {
            Ok(()) => {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
            Err(e) => core.io_failed(e),
        }
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
