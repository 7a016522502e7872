//! The writer thread of a connection: started by the first send that has to be queued, it takes
//! one message from the queue, then whatever else is already there (up to a batch), and writes
//! the batch with one vectored write; on a datagram socket, one datagram per message. When the
//! last sender lets go, it has written everything, so it sends the FIN of a graceful close.
//! A close drops what is left, counted (invariant 2, DESIGN.md).

use std::io::{self, IoSlice};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread;

use crate::conn::core::Core;
use crate::conn::queue::{count, Payload};
use crate::conn::threads::mark_writer;
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

impl Core {
    /// Writes a batch: one vectored write on a stream, one datagram per message on a datagram
    /// socket (a UDP peer), where message boundaries are the wire's.
    fn write_batch(&self, stream: &dyn Socket, batch: &[Payload]) -> Result<(), WriteFail> {
        if !stream.is_datagram() {
            let mut iov: Vec<IoSlice<'_>> =
                batch.iter().map(|p| IoSlice::new(p.as_slice())).collect();
            return self.write_all(stream, &mut iov);
        }
        let mut written = 0;
        for p in batch.iter().filter(|p| p.is_message()) {
            let bytes = p.as_slice();
            self.write_all(stream, &mut [IoSlice::new(bytes)])
                .map_err(|fail| WriteFail {
                    written: written + fail.written,
                    error: fail.error,
                })?;
            written += bytes.len();
        }
        Ok(())
    }

    /// Writes all of `bufs`, waiting out write timeouts (a slow peer) until the connection is
    /// closed.
    fn write_all(
        &self,
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
                    self.socket_wrote(n);
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) && !self.is_aborted() => {}
                Err(error) => return Err(WriteFail { written, error }),
            }
        }
    }

    pub(crate) fn spawn_writer(self: &Arc<Self>) -> io::Result<SyncSender<Payload>> {
        // One slot more than the message bound: room for the one `Kick` that may be in flight.
        let (tx, rx) = mpsc::sync_channel(self.cfg.queue_capacity + 1);
        if let Some(parked) = &self.parked {
            *lock(parked) = Some(rx);
            return Ok(tx);
        }
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
        mark_writer(&self);
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
            if self.is_aborted() {
                drop(stream);
                self.discard(batch, &rx);
                return;
            }
            if let Err(error) = self.write_taken(&*stream, &mut batch) {
                drop(stream);
                self.io_failed(error);
                self.discard(batch, &rx);
                return;
            }
        }
        // Every sender is gone and the queue is empty: the graceful end.
        drop(stream);
        let mut out = lock(&self.out);
        self.send_fin(&mut out);
    }

    /// Writes a batch taken from the queue, after what write-through gathered, and counts it
    /// as written. On an error, the messages wholly written count as written and `batch`
    /// keeps the rest.
    fn write_taken(&self, stream: &dyn Socket, batch: &mut Vec<Payload>) -> io::Result<()> {
        let result = {
            let mut out = lock(&self.out);
            // What write-through gathered was accepted before anything in this batch.
            match self.write_gathered(&mut out, stream) {
                Ok(()) => {
                    // Only now, with it written: write-through may gather again.
                    if batch.iter().any(|p| !p.is_message()) {
                        self.queue.kicked_done();
                    }
                    self.write_batch(stream, batch)
                }
                Err(error) => Err(WriteFail { written: 0, error }),
            }
        };
        match result {
            Ok(()) => {
                let (n, bytes) = count(batch.iter());
                self.queue.release(n, bytes);
                self.traffic.sent(n as u64);
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
                self.queue.release(n, bytes);
                self.traffic.sent(n as u64);
                batch.drain(..done);
                Err(error)
            }
        }
    }

    /// The writer's work for a connection [without threads](Core::without_threads), done on
    /// the caller's thread: writes everything queued now; once the queue is closed and empty,
    /// sends the FIN of a graceful close; on a closed connection, counts what is queued as
    /// dropped. Never waits for the peer: call it again after it has read.
    pub(crate) fn write_parked(self: &Arc<Self>) {
        let Some(parked) = &self.parked else {
            return;
        };
        // Taken out while it is worked on: a send (holding `q`) may lock `parked`.
        let Some(rx) = lock(parked).take() else {
            // No queue was ever needed: a graceful close's FIN may still be due.
            if self.is_closing() {
                self.send_fin(&mut lock(&self.out));
            }
            return;
        };
        let Some(stream) = self.stream() else {
            return self.discard(Vec::new(), &rx);
        };
        let mut batch = Vec::new();
        let disconnected = loop {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if self.is_aborted() {
            return self.discard(batch, &rx);
        }
        if let Err(error) = self.write_taken(&*stream, &mut batch) {
            self.io_failed(error);
            return self.discard(batch, &rx);
        }
        if disconnected {
            // Every sender is gone and the queue is empty: the graceful end.
            return self.send_fin(&mut lock(&self.out));
        }
        *lock(parked) = Some(rx);
    }

    /// Wakes (or starts) the writer thread to write what write-through gathered; it does so
    /// before its next batch. At most one wake-up is in flight.
    pub(crate) fn kick_writer(self: &Arc<Self>) {
        if !self.queue.kick() {
            return;
        }
        let tx = match self.queue.sender(|| self.spawn_writer()) {
            Ok(Some(tx)) => tx,
            // Closing: the FIN path writes what is gathered, or the close counts it.
            Ok(None) => return self.queue.kicked_done(),
            Err(e) => {
                self.queue.kicked_done();
                self.io_failed(e);
                return;
            }
        };
        if tx.try_send(Payload::Kick).is_err() {
            self.queue.kicked_done();
        }
    }

    /// Counts what is left as dropped: `batch`, then everything the channel still yields until
    /// the last in-flight sender has let go of its `SyncSender`.
    fn discard(&self, batch: Vec<Payload>, rx: &Receiver<Payload>) {
        let rest: Vec<Payload> = batch.into_iter().chain(rx.iter()).collect();
        let (n, bytes) = count(&rest);
        self.queue.count_dropped(n as u64);
        self.queue.release(n, bytes);
    }
}
