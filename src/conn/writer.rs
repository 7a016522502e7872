//! The writer part of a connection: its writer thread's handle (or the FIN thread's), joined
//! before `on_close`, or the parked queue of a connection that starts no thread; and the
//! writes of one batch: one vectored write on a stream, one datagram per message on a datagram
//! socket. The writer thread's loop, which takes the batches from the queue, is in `drain.rs`.

use std::io::{self, IoSlice};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;

use crate::conn::queue::Payload;
use crate::conn::wire::Wire;
use crate::sync::lock;
use crate::sys::ceiling::Ceiling;
use crate::sys::transport::{timed_out, Socket};

/// An I/O error after `written` bytes of a batch.
pub(crate) struct WriteFail {
    pub(crate) written: usize,
    pub(crate) error: io::Error,
}

/// The writer part of a connection: its writer thread (or the thread finishing a graceful
/// close), joined before `on_close`; or, for a connection that starts no thread (an embedded
/// connection, `testing/`), the queue's receiving half, parked until its driver writes it on
/// its own thread (`drain::write_parked`, between [`unpark`](Writer::unpark) and
/// [`park`](Writer::park)).
#[derive(Default)]
pub(crate) struct Writer {
    thread: Mutex<Option<JoinHandle<()>>>,
    parked: Option<Mutex<Option<Receiver<Payload>>>>,
}

impl Writer {
    /// A writer that starts no thread: its queue waits for its driver (`drain::write_parked`).
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

    /// Keeps `thread` (the writer, or a FIN thread) to be joined before `on_close`.
    pub(crate) fn hold(&self, thread: JoinHandle<()>) {
        let old = lock(&self.thread).replace(thread);
        if let Some(old) = old {
            let _ = old.join(); // not expected: a writer that ends lets go of its handle
        }
    }

    /// The writer thread ends after a quiet spell, having let go of everything but the
    /// `Core`: its handle is dropped (the thread detached, its stack given back as it exits),
    /// so that `finish` does not wait for it. Called under the queue's lock, where a new
    /// writer's handle would be kept.
    pub(crate) fn detach(&self) {
        drop(lock(&self.thread).take());
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
    pub(crate) fn write_batch(
        wire: Wire<'_>,
        stream: &dyn Socket,
        batch: &[Payload],
    ) -> Result<(), WriteFail> {
        if !stream.is_datagram() {
            let mut iov: Vec<IoSlice<'_>> =
                batch.iter().map(|p| IoSlice::new(p.as_slice())).collect();
            return Writer::write_all(wire, stream, &mut iov);
        }
        let mut written = 0;
        for p in batch.iter().filter(|p| p.is_message()) {
            let bytes = p.as_slice();
            Writer::write_all(wire, stream, &mut [IoSlice::new(bytes)]).map_err(|fail| {
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
        wire: Wire<'_>,
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
                    wire.wrote(n);
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) && !wire.is_aborted() => {}
                Err(error) => return Err(WriteFail { written, error }),
            }
        }
    }

    /// Makes the queue's channel, of `capacity` messages, and starts the writer thread that
    /// drains it with `run` (or parks the receiving half); returns the sending half.
    ///
    /// # Errors
    /// The thread could not be started.
    pub(crate) fn spawn(
        &self,
        capacity: usize,
        stack_size: usize,
        run: impl FnOnce(Receiver<Payload>) + Send + 'static,
    ) -> io::Result<SyncSender<Payload>> {
        // One slot more than the message bound: room for the one `Kick` that may be in flight.
        let (tx, rx) = mpsc::sync_channel(capacity + 1);
        if let Some(parked) = &self.parked {
            *lock(parked) = Some(rx);
            return Ok(tx);
        }
        let handle = Ceiling::global().spawn("threadnet-writer", stack_size, move || run(rx))?;
        self.hold(handle);
        Ok(tx)
    }

    /// Takes the parked queue out while its driver writes it (a send, holding the queue's
    /// lock, may look for it meanwhile); `None` if no queue was ever made, or this writer
    /// starts threads.
    pub(crate) fn unpark(&self) -> Option<Receiver<Payload>> {
        self.parked.as_ref().and_then(|p| lock(p).take())
    }

    /// Puts the parked queue back after [`unpark`](Self::unpark).
    pub(crate) fn park(&self, rx: Receiver<Payload>) {
        if let Some(parked) = &self.parked {
            *lock(parked) = Some(rx);
        }
    }
}
