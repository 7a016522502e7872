//! The reader thread body, shared by servers and clients: read frames through the codec, call
//! the handler, and end the connection in the one safe order.

use std::io;
use std::sync::Arc;

use crate::codec::Codec;
use crate::conn::handler::Handler;
use crate::conn::input::Input;
use crate::conn::lifecycle::{self, Decoded, End};
use crate::conn::threads::ReaderMark;
use crate::conn::{CloseReason, Connection};
use crate::sys::transport::Socket;

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
    let mut end = None;
    if let Some(stream) = core.stream() {
        mark = Some(ReaderMark::set(core, Arc::clone(&stream)));
        let (made, failed) = lifecycle::open(conn, make);
        handler = made;
        end = match (handler.as_mut(), failed) {
            (Some(h), None) => Some(read_loop(conn, &stream, &mut codec, h)),
            (_, failed) => failed,
        };
    }
    let reason = lifecycle::end(conn, end, |reason| {
        lifecycle::on_close(conn, handler.as_mut(), reason);
    });
    drop(mark); // the thread's own reference to the socket
    reason
}

fn read_loop<C: Codec, H: Handler<C>>(
    conn: &Connection<C>,
    stream: &Arc<dyn Socket>,
    codec: &mut C,
    handler: &mut H,
) -> End {
    let mut input = Input::new(&**stream, &conn.core, conn.core.cfg.read_buffer);
    // No read buffer until a byte arrives, and none again once the peer has been silent
    // between frames for a while (`conn/input.rs`): an idle connection costs its thread.
    loop {
        match stream.wait_readable() {
            Ok(false) => return End::Eof,
            Ok(true) => {
                conn.core.activity.note_read();
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
        let Decoded { read, mid } = lifecycle::decode(codec, &mut *input);
        let Ok(read) = read else {
            return read.err().map(End::Panic);
        };
        match read {
            Ok(Some(msg)) => {
                between = true;
                // More input already buffered: replies to it can be gathered into one write.
                let more = !input.buffered().is_empty();
                conn.core.out.cork(more);
                if let Some(end) = lifecycle::message(conn, handler, msg, mid, more) {
                    return Some(end);
                }
            }
            Ok(None) => return Some(End::Eof),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Some(End::Error(e)),
        }
    }
}
