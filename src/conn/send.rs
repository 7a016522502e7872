//! The send path, a sequence across the parts: a message from [`Connection::send`] to the
//! socket, and the graceful close, whose protocol goodbye, drain and FIN are a connection's
//! last sends.
//!
//! A send is written through when it can be ([`write_through`]: on the reader thread, or from
//! any thread without waiting, with nothing queued before it), else admitted into the send
//! queue ([`push`], `queue.rs`) for the writer thread (`drain.rs`); a heartbeat or a broadcast
//! is [`offer`]ed (the same, never waiting); a datagram is written at once ([`send_datagram`]).
//! What fails on the way closes the connection (`Core::io_failed`).
//!
//! [`Connection::send`]: crate::Connection::send

use std::io::{self, IoSlice, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::conn::core::Core;
use crate::conn::drain::{send_fin, start_writer, write_parked};
use crate::conn::queue::{Mode, NotAdmitted, Payload, Tx};
use crate::conn::threads::{is_reader_thread, is_writer_thread, on_reader};
use crate::conn::through::{Attempt, Gather, SocketWriter, Through, CORK_HOLD};
use crate::conn::CloseReason;
use crate::error::Refused;
use crate::sys::ceiling::Ceiling;
use crate::sys::transport::{timed_out, Socket};
use crate::timer::TimerId;

/// Accepts `p` into `core`'s send queue, waiting for room as `mode` allows, or hands it back
/// with the reason. The writer thread is started by the first message queued (and again after
/// a quiet spell ended it). A datagram connection has no queue: see [`send_datagram`].
pub(crate) fn push(core: &Arc<Core>, p: Payload, mode: Mode) -> Result<(), (Payload, Refused)> {
    if core.is_datagram() {
        return send_datagram(core, p, mode);
    }
    let drain_here = || write_parked(core);
    let drain: Option<&dyn Fn()> = core.has_no_threads().then_some(&drain_here);
    let admitted = core.queue.admit(
        p.as_slice().len(),
        mode,
        || core.is_closing(),
        drain,
        || start_writer(core),
    );
    match admitted {
        Ok(tx) => core.queue.enqueue(tx, p),
        Err(NotAdmitted::Refused(Refused::Closed)) => Err((p, Refused::Closed)),
        Err(NotAdmitted::Refused(why)) => {
            core.metrics().queue_full();
            Err((p, why))
        }
        Err(NotAdmitted::Failed(e)) => {
            core.io_failed(e);
            Err((p, Refused::Closed))
        }
    }
}

/// Sends `p` without ever blocking, from a thread that is not the connection's own (a
/// heartbeat on the timing wheel's thread, a broadcaster): written through at once if nothing
/// is queued and the socket takes it without waiting, else queued if there is room (as
/// `Mode::Try`). So a heartbeat or a broadcast to a quiet connection wakes no writer thread,
/// and starts none. On the connection's reader or writer thread, it is queued.
pub(crate) fn offer(core: &Arc<Core>, p: Payload) -> Result<(), (Payload, Refused)> {
    let mine = is_reader_thread(core) || is_writer_thread(core);
    if core.options().write_through && !core.is_datagram() && !mine {
        if let Some(stream) = core.stream() {
            match write_through_on(core, &*stream, None, |w| w.write_all(p.as_slice())) {
                Through::Written => return Ok(()),
                Through::Closed => return Err((p, Refused::Closed)),
                Through::Queue | Through::Encode(_) => {}
            }
        }
    }
    push(core, p, Mode::Try)
}

/// Writes `p` as one datagram now, from this thread (a UDP peer has no queue and no writer
/// thread). While the socket's send buffer is full, waits as `mode` allows (`Try`: one write
/// slice) and then hands `p` back as `Full` or `Timeout`. Any other error ends the connection
/// and hands `p` back as `Closed`, as does a connection that is closing.
///
/// The check that the connection is open and the write happen under the lock its close takes
/// to refuse sends (`SendQueue::while_open`): no datagram goes out once the close has begun
/// (a graceful one then has nothing to drain, and finishes at once).
fn send_datagram(core: &Core, p: Payload, mode: Mode) -> Result<(), (Payload, Refused)> {
    let mut deadline = None;
    loop {
        let sent = core.queue.while_open(
            || core.is_closing(),
            || {
                core.stream()
                    .map(|socket| socket.write_vectored(&[IoSlice::new(p.as_slice())]))
            },
        );
        let Some(Some(sent)) = sent else {
            return Err((p, Refused::Closed));
        };
        match sent {
            Ok(n) => {
                let wire = core.wire();
                wire.wrote(n);
                wire.sent(1);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => {
                if mode.time_left(&mut deadline).is_none() {
                    core.metrics().queue_full();
                    return Err((p, mode.refused()));
                }
            }
            Err(e) => {
                core.io_failed(e);
                return Err((p, Refused::Closed));
            }
        }
    }
}

/// Lets `encode` write one message straight to the socket when nothing is queued and the mode
/// may wait: on the reader thread, within the send's timeout; on any other thread, only what
/// the socket takes without waiting (the rest, if a message started, goes to the writer
/// thread), so a caller never blocks on a slow peer here. See `through.rs`.
pub(crate) fn write_through(
    core: &Arc<Core>,
    mode: Mode,
    encode: impl FnOnce(&mut SocketWriter<'_>) -> io::Result<()>,
) -> Through {
    let Mode::Wait(timeout) = mode else {
        return Through::Queue;
    };
    if !core.options().write_through {
        return Through::Queue;
    }
    let mut encode = Some(encode);
    let here = on_reader(core, |stream| {
        let encode = encode.take().expect("not taken yet");
        write_through_on(core, stream, Some(timeout), encode)
    });
    if let Some(through) = here {
        return through;
    }
    let Some(encode) = encode else {
        return Through::Queue;
    };
    // Another thread. Not the writer (it is the one that drains the queue), and not while the
    // writer may be about to write what it was kicked for.
    if is_writer_thread(core) {
        return Through::Queue;
    }
    match core.stream() {
        Some(stream) => write_through_on(core, &*stream, None, encode),
        None => Through::Closed,
    }
}

/// [`write_through`] with the connection's socket: on the reader thread with the send's
/// `timeout`, or (`None`) from another thread without waiting.
fn write_through_on(
    core: &Arc<Core>,
    stream: &dyn Socket,
    timeout: Option<Duration>,
    encode: impl FnOnce(&mut SocketWriter<'_>) -> io::Result<()>,
) -> Through {
    let ready = || {
        if core.is_closing() {
            Some(Through::Closed)
        } else if !core.queue.is_empty() {
            Some(Through::Queue) // keep order: earlier messages are waiting
        } else if core.queue.is_kicked() {
            // The writer is to write what is gathered (a late message's rest, or an old
            // batch): queue behind it, so the gathered bytes stay bounded.
            Some(Through::Queue)
        } else {
            None
        }
    };
    let attempt = core.out.try_write(
        core.wire(),
        stream,
        timeout,
        ready,
        || arm_cork_timer(core),
        encode,
    );
    match attempt {
        Attempt::Done(through) => {
            if let Through::Encode(_) = through {
                core.metrics().codec_error();
            }
            through
        }
        Attempt::Written { deferred } => {
            if deferred {
                kick(core); // the writer thread finishes the message
            }
            Through::Written
        }
        Attempt::Broken(e) => {
            core.io_failed(e);
            Through::Closed
        }
        Attempt::Panicked { payload, broken } => {
            // The panic goes on to the handler; a message cut in half broke the stream.
            if broken {
                core.io_failed(io::Error::other("the codec panicked in mid-message"));
            }
            std::panic::resume_unwind(payload);
        }
    }
}

/// After [`CORK_HOLD`], wakes the writer thread to write a batch the reader still holds.
fn arm_cork_timer(core: &Arc<Core>) -> TimerId {
    let weak = Arc::downgrade(core);
    core.wheel().after(CORK_HOLD, move || {
        if let Some(core) = weak.upgrade() {
            kick(&core);
        }
    })
}

/// Wakes (or starts) the writer thread to write what write-through gathered; it does so before
/// its next batch. At most one wake-up is in flight.
fn kick(core: &Arc<Core>) {
    if !core.queue.kick() {
        return;
    }
    let tx = match core.queue.sender(|| start_writer(core)) {
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

/// Before `close()` on the reader thread: replies gathered there would have been written
/// without gathering, so write them now, if the socket takes them within one write slice.
pub(crate) fn flush_before_close(core: &Core) {
    if let Some(stream) = core.stream() {
        core.out.flush_before_close(core.wire(), &*stream);
    }
}

/// Who sends the FIN of a graceful close.
enum Fin<'a> {
    /// This thread, now: nothing is being written or waits to be.
    Here(std::sync::MutexGuard<'a, Gather>),
    /// The writer thread, a FIN thread, or an earlier close.
    Elsewhere,
    /// Nobody: no thread could be started to wait for the write in progress.
    Impossible,
}

/// Starts a graceful close: no more sends, the queue drains, then `shutdown(Write)`; a
/// deadline timer forces the close if the whole thing is not over by `timeout`. Returns
/// without blocking. If a graceful close is already under way, only its deadline can move,
/// and only earlier.
pub(crate) fn begin_shutdown(core: &Arc<Core>, cause: CloseReason, timeout: Duration) {
    // The cause is recorded before the protocol's last word goes out: the peer's answer to it
    // (a WebSocket close echoed) may come back at once, and must not be taken for the peer's
    // own close.
    let goodbye = core.layer().take_goodbye(&cause);
    core.set_cause(cause);
    if let Some(bytes) = goodbye {
        // The protocol's last word goes out before the FIN; a full queue skips it.
        let _ = push(core, Payload::Owned(bytes), Mode::Try);
    }
    // Who sends the FIN is decided under the queue's lock, where the writer is started: the
    // writer thread if there is one; else this thread, if nothing is being written or waits
    // to be; else a small thread that waits for the write in progress. Never this thread when
    // that could block: shutdown() returns at once.
    core.start_draining();
    let fin = core.queue.close(|prev| match prev {
        Tx::Closed | Tx::Writer(_) => Fin::Elsewhere,
        Tx::NoWriter => match core.out.try_lock() {
            Some(out) if out.is_empty() => Fin::Here(out),
            // No thread: the driver's next `write_parked` sends it.
            _ if core.has_no_threads() => Fin::Elsewhere,
            _ => {
                let owner = Arc::clone(core);
                let stack = core.options().stack_size;
                let spawned = Ceiling::global().spawn("threadnet-fin", stack, move || {
                    send_fin(&owner, &mut owner.out.lock());
                });
                match spawned {
                    Ok(h) => {
                        core.writer.hold(h);
                        Fin::Elsewhere
                    }
                    Err(_) => Fin::Impossible,
                }
            }
        },
    });
    match fin {
        Fin::Here(mut out) => send_fin(core, &mut out), // nothing to write: shutdown(Write)
        Fin::Elsewhere => {}
        Fin::Impossible => core.abort(), // out of threads: close rather than hang
    }
    core.arm_deadline(timeout);
}

/// The peer's EOF: flush what is queued, then close (invariant 4, DESIGN.md).
pub(crate) fn peer_closed(core: &Arc<Core>) {
    begin_shutdown(
        core,
        CloseReason::PeerClosed,
        core.options().shutdown_timeout,
    );
}
