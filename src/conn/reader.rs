//! The reader thread body, shared by servers and clients: read frames through the codec, call
//! the handler, and end the connection in the one safe order.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::codec::Codec;
use crate::conn::core::Core;
use crate::conn::handler::Handler;
use crate::conn::idle;
use crate::conn::input::Input;
use crate::conn::options::ConnEvent;
use crate::conn::threads::ReaderMark;
use crate::conn::{CloseReason, Connection};
use crate::sync::catch;
use crate::sys::transport::Socket;

/// How the read loop ended.
pub(crate) enum End {
    Eof,
    Error(io::Error),
    Panic(String),
}

impl End {
    /// Tells the connection how its reading ended: the peer's EOF starts a graceful close
    /// (what is queued is still written), an error or a panic closes it now. The reader then
    /// calls [`Core::finish`](crate::conn::core::Core::finish), and releases the socket last.
    pub(crate) fn record(self, core: &Arc<Core>) {
        match self {
            End::Eof => core.peer_closed(),
            End::Error(e) => core.io_failed(e),
            End::Panic(message) => core.close_now(CloseReason::panic(message)),
        }
    }
}

/// Runs one connection on the current thread until it ends: `make` builds the handler, then
/// on_connect, the read loop with on_message, the close sequence, on_close, and the socket is
/// released. Returns the close reason (after `on_close` has seen it).
pub(crate) fn serve<C, H, M>(conn: &Connection<C>, mut codec: C, make: M) -> CloseReason
where
    C: Codec,
    H: Handler<C>,
    M: FnOnce(&Connection<C>) -> H,
{
    let core = &conn.core;
    let mut handler = None;
    let mut mark = None;
    if let Some(stream) = core.stream() {
        mark = Some(ReaderMark::set(core, Arc::clone(&stream)));
        idle::watch_frames(core);
        idle::watch(core);
        core.cfg.emit(&ConnEvent::Opened {
            id: core.id,
            peer: core.peer(),
        });
        let end = match catch(|| make(conn)) {
            Ok(h) => read_loop(conn, &stream, &mut codec, handler.insert(h)),
            Err(message) => End::Panic(message),
        };
        drop(stream);
        end.record(core);
    }
    let reason = core.finish();
    if let Some(h) = handler.as_mut() {
        let _ = catch(|| h.on_close(conn, &reason));
    }
    drop(mark); // the thread's own reference to the socket
    core.release_socket();
    reason
}

fn read_loop<C: Codec, H: Handler<C>>(
    conn: &Connection<C>,
    stream: &Arc<dyn Socket>,
    codec: &mut C,
    handler: &mut H,
) -> End {
    if let Err(message) = catch(|| handler.on_connect(conn)) {
        return End::Panic(message);
    }
    let mut input = Input::new(&**stream, &conn.core, conn.core.cfg.read_buffer);
    // No read buffer until a byte arrives, and none again once the peer has been silent
    // between frames for a while (`conn/input.rs`): an idle connection costs its thread.
    loop {
        match stream.wait_readable() {
            Ok(false) => return End::Eof,
            Ok(true) => {
                conn.core.note_read();
                conn.core.frame_bytes();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return End::Error(e),
        }
        let patient = match input.patience(true) {
            Ok(patient) => patient,
            Err(e) => return End::Error(e),
        };
        match read_frames(conn, &mut input, codec, handler, patient) {
            Some(end) => return end,
            None => {
                if let Err(e) = input.patience(false) {
                    return End::Error(e);
                }
            }
        }
    }
}

/// Reads frames and hands them to the handler until the connection ends (`Some`), or, if the
/// socket is `patient`, until the peer stays silent between two frames for the patience
/// (`None`: the buffer has been given back).
fn read_frames<C: Codec, H: Handler<C>>(
    conn: &Connection<C>,
    input: &mut Input<'_>,
    codec: &mut C,
    handler: &mut H,
    patient: bool,
) -> Option<End> {
    // The codec is between frames: at the start, and after a message.
    let mut between = true;
    loop {
        if patient && between && input.buffered().is_empty() {
            match input.wait_for_frame() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(End::Error(e)),
            }
        }
        between = false;
        // A user codec may panic too: that is the connection's panic, not the server's.
        let mut mid = false;
        let read = match catch(|| {
            let read = codec.read(&mut *input);
            // A control message between the parts of one still in progress: that message's
            // clock runs on (`Codec::mid_message`).
            mid = codec.mid_message();
            read
        }) {
            Ok(read) => read,
            Err(message) => return Some(End::Panic(message)),
        };
        match read {
            Ok(Some(msg)) => {
                between = true;
                conn.core.count_received(1);
                if !mid {
                    conn.core.frame_done(false);
                }
                // More input already buffered: replies to it can be gathered into one write.
                let more = !input.buffered().is_empty();
                conn.core.corked.store(more, Ordering::Relaxed);
                if let Err(message) = catch(|| handler.on_message(conn, msg)) {
                    return Some(End::Panic(message));
                }
                if more && !mid {
                    // The next frame has begun in the buffer: its clock starts if the codec
                    // has to wait on the socket for its rest.
                    conn.core.frame_pending();
                }
                // close() from a handler stops delivery, even of frames already buffered.
                if conn.core.is_aborted() {
                    return Some(End::Eof);
                }
            }
            Ok(None) => return Some(End::Eof),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Some(End::Error(e)),
        }
    }
}
