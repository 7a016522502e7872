//! The reader's input: a `BufRead` over the connection's socket whose buffer exists only
//! while the peer talks.
//!
//! The buffer ([`ConnOptions::read_buffer_size`](crate::ConnOptions::read_buffer_size), 32 KiB
//! by default) is a mapping of its own ([`Pages`]): the pages the socket never filled cost no
//! memory, and giving it back returns all of it to the kernel (past the few buffers the
//! process keeps for the next connections, `spare.rs`). It is taken when the first byte
//! arrives, and given back when the peer has been silent for [`PATIENCE`] between two frames,
//! or when the connection's reading ends:
//! the reader waits for the next frame with a receive timeout of that length (set once per
//! busy spell, not per read), and when it passes with nothing buffered and the codec between
//! frames, the reader drops the buffer and goes back to waiting on the empty socket without
//! one. A connection that talks costs no system call more than before; one that pauses
//! mid-frame just waits on (a wake-up per `PATIENCE`).
//!
//! Large reads (half the buffer or more) on an empty buffer go straight from the socket into
//! the codec's memory. A codec that starts its frames with one ([`RawChunks`]) needs no buffer
//! between frames: the reader drops it, takes the patience off the socket, and lets the
//! codec's read wait on the socket itself, so every chunk is read into the chunk's own memory
//! with one system call (no copy, no buffer, and no wake-up while the peer is silent). Should
//! a frame start with `fill_buf` again, the patience is put back and a buffer made.
//!
//! [`RawChunks`]: crate::codec::RawChunks

use std::io::{self, BufRead, Read};
use std::time::Duration;

use crate::codec::read_via_buffer;
use crate::conn::core::Core;
use crate::conn::spare::SPARE;
use crate::sys::os::Pages;
use crate::sys::transport::{timed_out, Socket};

/// How long the peer may be silent between frames before the reader gives its buffer back.
pub(crate) const PATIENCE: Duration = Duration::from_secs(1);

/// A `BufReader` over the socket whose buffer can be given back between frames.
pub(crate) struct Input<'a> {
    stream: &'a dyn Socket,
    core: &'a Core,
    buf: Option<Pages>,
    size: usize,
    pos: usize,
    filled: usize,
    /// The codec starts its frames with a large `read` (a raw chunk): between frames, wait
    /// for the next bytes without reading them into the buffer, so that the codec reads
    /// them from the socket straight into its own memory.
    direct: bool,
    /// No read since [`wait_for_frame`](Input::wait_for_frame): the next is a frame's first.
    start: bool,
    /// The socket's receive timeout is [`PATIENCE`] now (see [`patience`](Input::patience)).
    patient: bool,
}

impl<'a> Input<'a> {
    /// No buffer yet: it is made by the first read.
    pub(crate) fn new(stream: &'a dyn Socket, core: &'a Core, size: usize) -> Input<'a> {
        Input {
            stream,
            core,
            buf: None,
            size,
            pos: 0,
            filled: 0,
            direct: false,
            start: false,
            patient: false,
        }
    }

    /// Sets the socket's receive timeout to [`PATIENCE`] (`on`) or none. `Ok(false)` from a
    /// transport that cannot wait without reading: reads there always block, and the reader
    /// keeps its buffer.
    pub(crate) fn patience(&mut self, on: bool) -> io::Result<bool> {
        let waits = self.stream.set_read_patience(on.then_some(PATIENCE))?;
        self.patient = on && waits;
        Ok(waits)
    }

    /// The bytes read from the socket and not consumed yet.
    #[inline]
    pub(crate) fn buffered(&self) -> &[u8] {
        match &self.buf {
            Some(b) => &b[self.pos..self.filled],
            None => &[],
        }
    }

    /// With nothing buffered and the codec between frames: reads the next bytes, waiting up
    /// to the socket's read patience. `Ok(false)` when none came in that time: the buffer has
    /// been given back. `Ok(true)` with bytes buffered, or with none at the peer's EOF; and at
    /// once, reading nothing, when the codec reads its frames straight from the socket.
    pub(crate) fn wait_for_frame(&mut self) -> io::Result<bool> {
        debug_assert!(self.buffered().is_empty());
        let (stream, core) = (self.stream, self.core);
        self.start = true;
        if self.direct {
            // The codec reads its frames straight from the socket: no buffer is needed
            // between them (the first frame's may still be held), and the codec's read waits
            // on the socket itself, as long as the peer takes (one system call per chunk).
            // The patience is taken off once, so that an idle connection's read does not
            // wake up for it.
            self.give_back();
            if self.patient {
                self.patience(false)?;
            }
            return Ok(true);
        }
        if !self.patient {
            self.patience(true)?;
        }
        let buf = self.buffer()?;
        loop {
            match read_socket(stream, core, buf) {
                Ok(n) => {
                    (self.pos, self.filled) = (0, n);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) => {
                    self.give_back();
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The buffer, taken now if there is none (from the stash of buffers other connections
    /// gave back, `spare.rs`, or a new mapping).
    fn buffer(&mut self) -> io::Result<&mut Pages> {
        if self.buf.is_none() {
            self.buf = Some(SPARE.take(self.size)?);
        }
        Ok(self.buf.as_mut().expect("made above"))
    }

    /// Gives the buffer back (to the stash), with nothing in it the codec still needs.
    fn give_back(&mut self) {
        (self.pos, self.filled) = (0, 0);
        if let Some(buf) = self.buf.take() {
            SPARE.give_back(buf);
        }
    }
}

impl Drop for Input<'_> {
    /// The connection's reading is over: its buffer goes to the next connection.
    fn drop(&mut self) {
        self.give_back();
    }
}

/// One read from the socket, after writing the replies that write-through gathered while more
/// input was buffered (the reader may block now) and starting a pending frame's clock; the
/// bytes are counted and noted.
fn read_socket(stream: &dyn Socket, core: &Core, into: &mut [u8]) -> io::Result<usize> {
    core.out.flush_gathered(core.wire(), stream)?;
    core.frame_waits();
    let n = stream.read(into)?;
    if n > 0 {
        core.socket_read(n);
        core.frame_bytes();
    }
    Ok(n)
}

/// [`read_socket`], waiting on through read-patience timeouts: inside a frame (or wherever
/// the codec reads) the reader waits as long as the peer takes. Interrupted reads are
/// retried too: with a receive timeout set, Linux does not restart a read that a signal
/// interrupted (even with `SA_RESTART`), and a codec that gave up mid-frame would lose it.
fn read_patiently(stream: &dyn Socket, core: &Core, into: &mut [u8]) -> io::Result<usize> {
    loop {
        match read_socket(stream, core, into) {
            Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl Read for Input<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // With nothing buffered, a large read (a frame's payload, a raw chunk) bypasses the
        // buffer: the socket reads straight into `out`, one copy instead of two. `BufReader`
        // bypasses only from a whole buffer's size; from half of it, a frame larger than
        // what one read buffered never goes through the buffer for its rest.
        let large = out.len() >= self.size.div_ceil(2);
        if std::mem::take(&mut self.start) {
            self.direct = large;
        }
        if self.pos >= self.filled && large {
            return read_patiently(self.stream, self.core, out);
        }
        read_via_buffer(self, out)
    }
}

impl BufRead for Input<'_> {
    #[inline]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if std::mem::take(&mut self.start) {
            self.direct = false;
        }
        if self.pos >= self.filled {
            let (stream, core) = (self.stream, self.core);
            let n = read_patiently(stream, core, self.buffer()?)?;
            (self.pos, self.filled) = (0, n);
        }
        Ok(self.buffered())
    }

    #[inline]
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.filled);
    }
}
