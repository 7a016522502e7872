//! Write-through: a send made on the connection's own reader thread, with nothing queued before
//! it, is encoded by the codec straight into the socket. No buffer of the whole message, no
//! copy of its payload, no hand-off to the writer thread: the reply path of an echo or
//! request/response handler costs what a hand-written blocking loop costs (muduo's
//! `TcpConnection::sendInLoop` and Netty's in-event-loop write do the same).
//!
//! A send from any other thread (a blocking client's caller, a timer, a broadcaster) takes the
//! same path when nothing is queued and no other write holds the socket, but its writes never
//! wait (`MSG_DONTWAIT`, `Socket::write_vectored_now`): a message the socket takes no byte of
//! is queued, one it takes part of is finished by the writer thread, exactly as a reader-thread
//! send whose deadline passes. So such a send costs one syscall and no thread wake-up when the
//! peer keeps up, and never blocks on one that does not.
//!
//! The codec writes into a [`SocketWriter`], which gathers small writes (a length prefix, a
//! line's `\n`) and sends them with the next large one in a single `writev`, so a codec that
//! writes a header and then a payload still costs one syscall. A whole message of a few KiB
//! (`COPY_SEND`) is copied into one buffer and sent with `send`, which the kernel takes in
//! less time than a `sendmsg` of its pieces.
//!
//! A slow peer: socket writes block for at most one write slice (the socket's `SO_SNDTIMEO`,
//! set in `sys/transport.rs`). A message the socket takes no byte of within one slice goes to
//! the queue like any other send. A message that has started but is not all out by the send's
//! deadline is finished by the writer thread: its remaining bytes stay gathered, the writer
//! writes them before its next batch, and the send returns `Ok` (the message was accepted,
//! invariant 2 in DESIGN.md), so a send never blocks much past its timeout (invariant 8).
//!
//! Pipelined requests: while the reader's buffer still holds unread input, the handler is
//! about to get more messages without waiting, so replies are gathered ("corked") instead of
//! written, up to [`CORK_MAX`] bytes. They go out in one `writev` when the reader is about to
//! read from the socket again ([`Out::flush_gathered`], called by the reader's `Read`
//! wrapper), or before the writer's next batch, or before the FIN. A reply is never held while
//! the reader waits for input. This is the std-echo peer's "flush when no complete request is
//! buffered" rule, and Netty's `FlushConsolidationHandler`. Handlers here may block, so a
//! batch is also bounded in time: when it starts, a timer ([`CORK_HOLD`], rounded up to the
//! wheel's tick) is armed, and if it fires before the batch is written, it wakes the writer
//! thread to write it. A slow next request never holds an earlier reply for longer than that.
//!
//! This file is the part that owns the write lock and the gathered bytes, and writes them
//! ([`Out::try_write`] and the flushes); it reports to a [`Wire`]. Which thread may write
//! through, and what a failed or deferred write sets off (the writer woken, the connection
//! closed), is the send path's, in `send.rs`.

use std::io::{self, IoSlice, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::conn::wire::Wire;
use crate::sync::deadline_after;
use crate::sync::lock;
use crate::sys::transport::{timed_out, Socket};
use crate::timer::{TimerId, TimingWheel};

/// Writes up to this many bytes are gathered and sent with the next larger one.
const GATHER: usize = 2048;
/// A message in pieces (a frame's header and its payload, a response's head and body) of at
/// most this many bytes in all is copied together and sent as one buffer, with `send(2)`: for
/// a small message the copy costs less than `sendmsg(2)`'s import of a message header and an
/// iovec array. A larger one goes out as the pieces, with one `sendmsg`, uncopied.
const COPY_SEND: usize = 8 * 1024;
/// While corked, replies are gathered up to this many bytes.
const CORK_MAX: usize = 64 * 1024;
/// The longest a gathered reply waits for the rest of its batch (plus up to one wheel tick).
pub(crate) const CORK_HOLD: Duration = Duration::from_millis(1);

/// Bytes gathered for the socket but not yet written, and how many messages they hold.
/// Guarded by [`Out`]'s lock, the lock held for every write to the socket. At most [`CORK_MAX`]
/// bytes of replies, plus the rest of one message whose deadline passed: once the writer has
/// been woken to write them, sends go to the queue until it has.
#[derive(Default)]
pub(crate) struct Gather {
    buf: Vec<u8>,
    msgs: usize,
    /// Wakes the writer if a corked batch is still here after [`CORK_HOLD`].
    timer: Option<TimerId>,
}

impl Gather {
    /// True if nothing waits to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// What became of a write-through attempt.
pub(crate) enum Through {
    /// The message is accepted: on the socket, or gathered to be written next.
    Written,
    /// Not written (not the reader thread, something queued, or the socket stalled before the
    /// first byte): queue it.
    Queue,
    /// The connection is closed or closing; nothing was written.
    Closed,
    /// The codec refused the message before writing a byte.
    Encode(io::Error),
}

/// What [`Out::try_write`] did; the send path acts on it.
pub(crate) enum Attempt {
    /// Nothing more to do than to return this.
    Done(Through),
    /// The message is accepted. `deferred`: its deadline passed mid-message and the rest is
    /// gathered for the writer thread, which must be woken to write it.
    Written { deferred: bool },
    /// The socket failed, or the codec did after part of the message went out: the stream
    /// can no longer be trusted.
    Broken(io::Error),
    /// The codec panicked (nothing of it is left gathered). `broken`: part of the message had
    /// already reached the socket.
    Panicked {
        payload: Box<dyn std::any::Any + Send>,
        broken: bool,
    },
}

/// The socket's write side as write-through uses it: the lock held for every write to the
/// socket, with the bytes gathered behind it, and whether the reader has more input buffered
/// (then replies are gathered, "corked").
#[derive(Default)]
pub(crate) struct Out {
    gathered: Mutex<Gather>,
    corked: AtomicBool,
}

impl Out {
    /// The reader has `more` input buffered (set before each `on_message`): replies to it are
    /// gathered into one write.
    pub(crate) fn cork(&self, more: bool) {
        self.corked.store(more, Ordering::Relaxed);
    }

    /// The lock held for every write to the socket, if no other write holds it.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, Gather>> {
        self.gathered.try_lock().ok()
    }

    /// The lock held for every write to the socket.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Gather> {
        lock(&self.gathered)
    }

    /// Lets `encode` write one message straight to `stream`, if no other write holds the
    /// socket and `ready` (asked with the lock held) finds nothing to wait for: on the reader
    /// thread (`timeout` is the send's), within the send's timeout; from any other thread
    /// (`None`), only what the socket takes without waiting. `arm_cork` arms the timer that
    /// writes a corked batch the reader still holds. The caller acts on the [`Attempt`].
    pub(crate) fn try_write(
        &self,
        wire: Wire<'_>,
        stream: &dyn Socket,
        timeout: Option<Duration>,
        ready: impl FnOnce() -> Option<Through>,
        arm_cork: impl FnOnce() -> TimerId,
        encode: impl FnOnce(&mut SocketWriter<'_>) -> io::Result<()>,
    ) -> Attempt {
        let Ok(mut gather) = self.gathered.try_lock() else {
            return Attempt::Done(Through::Queue);
        };
        if let Some(not_now) = ready() {
            return Attempt::Done(not_now);
        }
        // Only the reader knows that more input is buffered: another thread never corks.
        let cork = timeout.is_some() && self.corked.load(Ordering::Relaxed);
        let start = gather.buf.len();
        let sock = match timeout {
            Some(timeout) => Sock::new(stream, wire, Some(timeout)),
            None => Sock::now(stream, wire),
        };
        let mut w = SocketWriter {
            sock,
            gather: &mut gather.buf,
            cork,
            deferred: false,
        };
        // The codec is user code and runs while `out` is held: a panic must neither poison the
        // lock nor leave half a message gathered. Undo what it gathered, release the lock, and
        // hand the panic back (with whether part of the message reached the socket).
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            encode(&mut w).and_then(|()| if cork { Ok(()) } else { w.flush() })
        }));
        let result = match result {
            Ok(result) => result,
            Err(payload) => {
                let broken = w.sock.written > 0;
                gather.buf.truncate(start);
                return Attempt::Panicked { payload, broken };
            }
        };
        let deferred = w.deferred;
        let Sock {
            written,
            stalled,
            failed,
            ..
        } = w.sock;
        match result {
            Ok(()) => {
                if gather.buf.is_empty() {
                    // Written whole, with whatever was gathered before it.
                    wire.sent(gather.msgs as u64 + 1);
                    gather.msgs = 0;
                    Out::written_out(wire.wheel, &mut gather);
                } else {
                    gather.msgs += 1;
                    if start == 0 && gather.timer.is_none() && !deferred {
                        gather.timer = Some(arm_cork());
                    }
                }
                Attempt::Written { deferred }
            }
            Err(_) if stalled => {
                gather.buf.truncate(start);
                Attempt::Done(Through::Queue)
            }
            Err(e) if !failed && written == 0 => {
                gather.buf.truncate(start);
                Attempt::Done(Through::Encode(e))
            }
            // The socket failed, or the codec failed after part of the message went out:
            // either way the stream can no longer be trusted.
            Err(e) => Attempt::Broken(e),
        }
    }

    /// Writes what write-through gathered, waiting out write timeouts until the connection
    /// closes. Call with `out` held (pass its guard's contents).
    pub(crate) fn write_gathered(
        wire: Wire<'_>,
        g: &mut Gather,
        stream: &dyn Socket,
    ) -> io::Result<()> {
        let mut sock = Sock::new(stream, wire, None);
        sock.written = 1; // started long ago: never report a stall, wait until written
        while !g.buf.is_empty() {
            let n = sock.raw(&[IoSlice::new(&g.buf)])?;
            g.buf.drain(..n);
        }
        wire.sent(g.msgs as u64);
        g.msgs = 0;
        Out::written_out(wire.wheel, g);
        Ok(())
    }

    /// Everything gathered is written: the batch's timer has nothing left to do.
    fn written_out(wheel: &TimingWheel, g: &mut Gather) {
        if let Some(t) = g.timer.take() {
            wheel.cancel(t);
        }
    }

    /// The reader is about to block on the socket: write the replies it gathered first.
    ///
    /// If the writer thread holds `out`, it is writing a batch, and every batch starts with
    /// what is gathered (nothing can be gathered while it holds the lock): nothing to do, and
    /// the reader must not wait for a writer that may itself wait on a peer that stopped
    /// reading.
    pub(crate) fn flush_gathered(&self, wire: Wire<'_>, stream: &dyn Socket) -> io::Result<()> {
        match self.gathered.try_lock() {
            Ok(mut g) if !g.buf.is_empty() => Out::write_gathered(wire, &mut g, stream),
            _ => Ok(()),
        }
    }

    /// Before `close()` on the reader thread: replies gathered there would have been written
    /// without gathering, so write them now, if the socket takes them within one write slice.
    pub(crate) fn flush_before_close(&self, wire: Wire<'_>, stream: &dyn Socket) {
        let Ok(mut g) = self.gathered.try_lock() else {
            return;
        };
        let mut sock = Sock::new(stream, wire, Some(Duration::ZERO));
        while !g.buf.is_empty() {
            match sock.raw(&[IoSlice::new(&g.buf)]) {
                Ok(n) => drop(g.buf.drain(..n)),
                Err(_) => return, // what is left is counted as dropped
            }
        }
        wire.sent(g.msgs as u64);
        g.msgs = 0;
        Out::written_out(wire.wheel, &mut g);
    }

    /// Messages gathered and never written; they count as dropped when the connection ends.
    pub(crate) fn take_unwritten(&self, wheel: &TimingWheel) -> usize {
        let mut g = lock(&self.gathered);
        g.buf.clear();
        Out::written_out(wheel, &mut g);
        std::mem::take(&mut g.msgs)
    }
}

/// The writer a codec gets on the write-through path: the socket, with small writes gathered
/// into the next large one.
pub(crate) struct SocketWriter<'a> {
    sock: Sock<'a>,
    gather: &'a mut Vec<u8>,
    /// More input is buffered: gather the whole message, write nothing yet.
    cork: bool,
    /// The deadline passed mid-message: the rest of it is gathered for the writer thread.
    deferred: bool,
}

/// The socket side of a [`SocketWriter`]: what was written, and how it stopped.
struct Sock<'a> {
    stream: &'a dyn Socket,
    wire: Wire<'a>,
    /// How long a message may take once it has started; then the writer thread finishes it.
    timeout: Option<Duration>,
    /// When that is, fixed the first time it is needed (a send that is written at once never
    /// reads the clock).
    deadline: Option<Instant>,
    /// Bytes of this message the socket has taken.
    written: usize,
    /// The socket took no byte within a write slice.
    stalled: bool,
    /// The deadline passed after the message had started.
    late: bool,
    /// The socket returned an error.
    failed: bool,
    /// Never wait for the socket: a message it takes no byte of is `stalled` at once, one
    /// it takes part of is `late` at once (the writer thread finishes it).
    now: bool,
}

impl<'a> Sock<'a> {
    fn new(stream: &'a dyn Socket, wire: Wire<'a>, timeout: Option<Duration>) -> Self {
        Sock {
            stream,
            wire,
            timeout,
            deadline: None,
            written: 0,
            stalled: false,
            late: false,
            failed: false,
            now: false,
        }
    }

    /// A socket side that never waits: for a send from a thread that is neither the reader
    /// nor the writer.
    fn now(stream: &'a dyn Socket, wire: Wire<'a>) -> Self {
        Sock {
            now: true,
            ..Sock::new(stream, wire, None)
        }
    }

    /// True once the message has had its time; the clock starts at the first call.
    fn past_deadline(&mut self) -> bool {
        let Some(timeout) = self.timeout else {
            return false;
        };
        let deadline = *self.deadline.get_or_insert_with(|| deadline_after(timeout));
        Instant::now() >= deadline
    }

    /// One `writev` to the socket, retried on interruption and on the write slice, until the
    /// connection closes. It ends as `stalled` when a slice passes with nothing of the message
    /// written yet, and as `late` when the deadline has passed after the message started.
    fn raw(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // A peer that takes a few bytes per slice must not stretch a send past its deadline.
        if self.written > 0 && self.past_deadline() {
            self.late = true;
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        loop {
            let wrote = if self.now {
                self.stream.write_vectored_now(bufs)
            } else {
                self.stream.write_vectored(bufs)
            };
            match wrote {
                Ok(0) => {
                    self.failed = true;
                    return Err(io::Error::from(io::ErrorKind::WriteZero));
                }
                Ok(n) => {
                    self.written += n;
                    self.wire.wrote(n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) && !self.wire.is_aborted() => {
                    if self.written == 0 {
                        self.stalled = true;
                        return Err(e);
                    }
                    if self.now || self.past_deadline() {
                        self.late = true;
                        return Err(e);
                    }
                }
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }
}

impl SocketWriter<'_> {
    /// Adds `bufs` to the gathered bytes; returns their length.
    fn append(&mut self, bufs: &[IoSlice<'_>]) -> usize {
        let mut n = 0;
        for b in bufs {
            self.gather.extend_from_slice(b);
            n += b.len();
        }
        n
    }

    /// The deadline passed mid-message: keep the rest of it, gathered, for the writer thread.
    fn defer(&mut self, bufs: &[IoSlice<'_>]) -> usize {
        self.deferred = true;
        self.append(bufs)
    }
}

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let pieces = !self.gather.is_empty() || bufs.len() > 1;
        let keep = match (self.cork, pieces) {
            (true, _) => CORK_MAX,
            (false, true) => COPY_SEND,
            (false, false) => GATHER,
        };
        if total == 0 {
            return Ok(0);
        }
        if self.deferred || self.gather.len() + total <= keep {
            return Ok(self.append(bufs));
        }
        // Send what is gathered together with this write; keep at most 15 of its slices.
        while !self.gather.is_empty() {
            let mut iov = [IoSlice::new(&[]); 16];
            iov[0] = IoSlice::new(self.gather);
            let n_bufs = bufs.len().min(15);
            iov[1..=n_bufs].copy_from_slice(&bufs[..n_bufs]);
            let gathered = self.gather.len();
            let n = match self.sock.raw(&iov[..=n_bufs]) {
                Ok(n) => n,
                Err(_) if self.sock.late => return Ok(self.defer(bufs)),
                Err(e) => return Err(e),
            };
            if n < gathered {
                self.gather.drain(..n);
                continue;
            }
            self.gather.clear();
            if n > gathered {
                return Ok(n - gathered);
            }
        }
        match self.sock.raw(bufs) {
            Err(_) if self.sock.late => Ok(self.defer(bufs)),
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        while !self.gather.is_empty() && !self.deferred {
            match self.sock.raw(&[IoSlice::new(self.gather)]) {
                Ok(n) => drop(self.gather.drain(..n)),
                Err(_) if self.sock.late => self.deferred = true,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "through_tests.rs"]
mod tests;
