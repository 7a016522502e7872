//! The lifecycle of one connection, written once for every driver that runs one: the reader
//! thread (`reader.rs`), a blocking client's caller (`pull/client.rs`), the embedded
//! connection of tests (`testing/embedded.rs`) and a UDP server's peer (`udp.rs`). Each reads
//! its bytes its own way; each calls these in the same order, so the callbacks, the frame
//! clock and the end are the same everywhere (invariant 1, DESIGN.md):
//!
//! 1. [`open`]: the idle and frame watches start, the `Opened` event, the handler is made and
//!    `on_connect` runs ([`open_for_caller`] where the caller is the handler).
//! 2. [`decode`] reads one message through the codec, a panic caught, and asks the codec
//!    whether a message is still mid-way ([`Codec::mid_message`]).
//! 3. [`message`] per message: counted, its frame's clock ended (unless a message is still
//!    mid-way: control frames between fragments do not end it), `on_message`, the next
//!    frame's clock pending if its bytes are buffered, and a close from the handler stops
//!    delivery. ([`received`] and [`handled`] are its halves, for the blocking client, whose
//!    caller takes the message.)
//! 4. [`end`]: the connection is closed as its reading ended, it finishes (the writer
//!    joined, its timers cancelled, the reason settled), `on_close` runs, and the socket is
//!    released last (gnet #621).

use std::io::{self, BufRead};
use std::sync::Arc;

use crate::codec::Codec;
use crate::conn::core::Core;
use crate::conn::drain;
use crate::conn::handler::Handler;
use crate::conn::idle_check;
use crate::conn::options::ConnEvent;
use crate::conn::send;
use crate::conn::{CloseReason, Connection};
use crate::sync::catch;

/// How the reading of a connection ended.
pub(crate) enum End {
    /// The peer's EOF (or a close from this side stopped delivery).
    Eof,
    Error(io::Error),
    Panic(String),
}

impl End {
    /// Closes the connection as the way its reading ended calls for: the peer's EOF starts a
    /// graceful close (what is queued is still written), an error or a panic closes it now,
    /// and the cause is recorded for the close reason.
    fn close(self, core: &Arc<Core>) {
        match self {
            End::Eof => send::peer_closed(core),
            End::Error(e) => core.io_failed(e),
            End::Panic(message) => core.close_now(CloseReason::panic(message)),
        }
    }
}

/// The first steps, before there is a handler: the idle limits and the frame timeout start
/// to watch (the frame timeout only on a stream: a datagram is whole when it comes), and the
/// `Opened` event.
pub(crate) fn open_for_caller<C: Codec>(conn: &Connection<C>) {
    let core = &conn.core;
    if !core.is_datagram() {
        idle_check::watch_frames(core);
    }
    idle_check::watch(core);
    core.cfg.emit(&ConnEvent::Opened {
        id: core.id,
        peer: core.peer(),
    });
}

/// Opens the connection: [`open_for_caller`], then `make` builds the handler and
/// `on_connect` runs. The handler, unless `make` panicked; and the end, if either panicked.
pub(crate) fn open<C, H, M>(conn: &Connection<C>, make: M) -> (Option<H>, Option<End>)
where
    C: Codec,
    H: Handler<C>,
    M: FnOnce(&Connection<C>) -> H,
{
    open_for_caller(conn);
    match catch(|| make(conn)) {
        Ok(mut h) => {
            let end = catch(|| h.on_connect(conn)).err().map(End::Panic);
            (Some(h), end)
        }
        Err(message) => (None, Some(End::Panic(message))),
    }
}

/// What one [`decode`] gave: the codec's answer (`Err` if it panicked), and whether a
/// message is still mid-way after it.
pub(crate) struct Decoded<T> {
    pub(crate) read: Result<io::Result<Option<T>>, String>,
    pub(crate) mid: bool,
}

/// Reads one message from `r` through `codec`. A user codec may panic: that is the
/// connection's panic, not its driver's.
pub(crate) fn decode<C: Codec>(codec: &mut C, r: &mut impl BufRead) -> Decoded<C::In> {
    let mut mid = false;
    let read = catch(|| {
        let read = codec.read(r);
        mid = codec.mid_message();
        read
    });
    Decoded { read, mid }
}

/// A message was decoded: it is counted, and its frame's clock stops, unless a message is
/// still `mid`-way (a ping between the fragments of another: that one's clock runs on).
/// `Some(End::Eof)`, and the message is not delivered, once the connection was closed: a
/// close stops delivery, even of a message its own shutdown of the socket completed (a line
/// a codec ends at EOF).
pub(crate) fn received(core: &Core, mid: bool) -> Option<End> {
    if core.is_aborted() {
        return Some(End::Eof);
    }
    core.traffic.received(1);
    if !mid {
        core.activity.frame_done();
    }
    None
}

/// The message was handled: with `more` bytes buffered, the next frame has begun, and its
/// clock starts when the driver has to wait for its rest. `Some(End::Eof)` once the
/// connection was closed: a close stops delivery, even of frames already buffered.
pub(crate) fn handled(core: &Core, mid: bool, more: bool) -> Option<End> {
    if more && !mid {
        core.activity.frame_pending();
    }
    core.is_aborted().then_some(End::Eof)
}

/// One message, delivered: [`received`], `on_message`, [`handled`].
pub(crate) fn message<C: Codec, H: Handler<C> + ?Sized>(
    conn: &Connection<C>,
    handler: &mut H,
    msg: C::In,
    mid: bool,
    more: bool,
) -> Option<End> {
    if let Some(end) = received(&conn.core, mid) {
        return Some(end);
    }
    if let Err(message) = catch(|| handler.on_message(conn, msg)) {
        return Some(End::Panic(message));
    }
    handled(&conn.core, mid, more)
}

/// Closes the connection as its reading ended ([`End::close`]), for a driver that finishes it
/// later (a UDP peer's end is finished by its server's reader, between datagrams).
pub(crate) fn end_reading(core: &Arc<Core>, end: End) {
    end.close(core);
}

/// Ends the connection: closes it as its reading ended (`None`: a close already did), writes
/// what a connection without threads has queued, finishes it, runs `on_close` with the
/// reason, and releases the socket. The reason.
pub(crate) fn end<C: Codec>(
    conn: &Connection<C>,
    end: Option<End>,
    on_close: impl FnOnce(&CloseReason),
) -> CloseReason {
    let core = &conn.core;
    if let Some(end) = end {
        end_reading(core, end);
    }
    drain::write_parked(core);
    let reason = core.finish();
    on_close(&reason);
    core.release_socket();
    reason
}

/// `on_close` of `handler`, if there is one, with a panic caught (the connection is ending
/// anyway).
pub(crate) fn on_close<C: Codec, H: Handler<C> + ?Sized>(
    conn: &Connection<C>,
    handler: Option<&mut H>,
    reason: &CloseReason,
) {
    if let Some(h) = handler {
        let _ = catch(|| h.on_close(conn, reason));
    }
}
