//! A blocking client's input: the bytes its caller read from the socket and the codec has not
//! consumed yet, with a transaction mark so that a decode cut short by a deadline can be
//! rewound and run again whole.
//!
//! A decode with a deadline ([`CallerInput::begin`] with `rewindable`) keeps every byte from the
//! start of its frame: nothing before the mark is discarded while it is in progress, the
//! buffer grows as the frame needs, and no read bypasses the buffer. What bounds it is the
//! codec's own limits, checked as the codec decodes, the same as for a receive without a
//! deadline: a message one accepts, the other accepts too. When the deadline passes, every read the codec makes fails and
//! the buffer remembers it ([`expired`](CallerInput::expired)): the caller then
//! [rewinds](CallerInput::rewind) to the mark and restores the codec it cloned before the
//! attempt, and the next call decodes the same frame again from its first byte. The deadline
//! is recognised by that flag, never by the error the codec returns (a codec may wrap it).
//!
//! The buffer is made by the first read, [`FIRST`] bytes, and doubles up to the read size
//! ([`ConnOptions::read_buffer_size`](crate::ConnOptions::read_buffer_size)) each time a read
//! fills it: 1 000 idle clients that exchanged 4 KiB messages hold about 10 KiB each.
//!
//! Waiting is the socket's own: a receive timeout (`SO_RCVTIMEO`) for a deadline, none for
//! ever, a `MSG_DONTWAIT` read for "now". The timeout is set only when the one in place could
//! overrun the deadline or wake the caller too often: it is a power of two of microseconds
//! between a quarter of and all of the time left, so repeated requests with the same timeout
//! cost no system call for it.

use std::io::{self, BufRead, Read};
use std::time::{Duration, Instant};

use crate::codec::read_via_buffer;
use crate::conn::core::Core;
use crate::sys::transport::{timed_out, Socket};

/// How long a read may wait.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    /// Until bytes, the peer's EOF, or a close that shuts the socket down.
    Forever,
    /// Until this instant.
    Until(Instant),
    /// Not at all: only what the socket holds now.
    Now,
}

/// The caller's read buffer; see the module docs.
pub(crate) struct CallerInput {
    /// Empty until the first read.
    buf: Vec<u8>,
    /// The buffer's usual size: one read's worth.
    size: usize,
    pos: usize,
    filled: usize,
    /// Where the frame being decoded began, while the attempt can be rewound.
    mark: Option<usize>,
    /// The deadline passed during this attempt: every read fails.
    expired: bool,
    /// The receive timeout in place on the socket (`None`: none).
    timeout: Option<Duration>,
    /// The last read filled the buffer.
    full: bool,
}

/// The buffer's first size: it doubles up to the read size each time a read fills it, so a
/// connection that exchanges small messages keeps a small buffer (memory of an idle client).
const FIRST: usize = 4096;

impl CallerInput {
    /// No buffer yet; reads of `size` bytes.
    pub(crate) fn new(size: usize) -> CallerInput {
        CallerInput {
            buf: Vec::new(),
            size: size.max(1),
            pos: 0,
            filled: 0,
            mark: None,
            expired: false,
            timeout: None,
            full: false,
        }
    }

    /// A decode attempt starts here; with `rewindable`, the bytes from here on are kept until
    /// [`commit`](Self::commit) or [`rewind`](Self::rewind).
    pub(crate) fn begin(&mut self, rewindable: bool) {
        self.expired = false;
        self.mark = rewindable.then_some(self.pos);
    }

    /// The attempt produced its message: its bytes may go.
    pub(crate) fn commit(&mut self) {
        self.mark = None;
    }

    /// The attempt was abandoned: the next one reads from where it began.
    pub(crate) fn rewind(&mut self) {
        if let Some(mark) = self.mark.take() {
            self.pos = mark;
        }
    }

    /// True if the deadline passed during this attempt.
    pub(crate) fn expired(&self) -> bool {
        self.expired
    }

    /// True if no byte waits to be decoded.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.filled
    }

    /// Between frames with nothing buffered: a buffer grown past the read size for a large
    /// frame is given back. One up to the read size is kept: allocating (and zeroing) it
    /// again for every reply would cost a request about 0.5 µs, while it costs an idle
    /// client only what it grew to ([`FIRST`] for small messages).
    pub(crate) fn settle(&mut self) {
        if self.is_empty() && self.mark.is_none() {
            (self.pos, self.filled) = (0, 0);
            if self.buf.len() > self.size {
                self.buf = Vec::new();
            }
        }
    }

    /// The connection has ended: the buffer goes.
    pub(crate) fn clear(&mut self) {
        *self = CallerInput::new(self.size);
    }

    /// The input as a `BufRead` over `stream`, whose reads wait as `wait` says.
    pub(crate) fn source<'a>(
        &'a mut self,
        stream: &'a dyn Socket,
        core: &'a Core,
        wait: Wait,
    ) -> Source<'a> {
        Source {
            input: self,
            stream,
            core,
            wait,
        }
    }
}

/// [`CallerInput`] with its socket, for one decode.
pub(crate) struct Source<'a> {
    input: &'a mut CallerInput,
    stream: &'a dyn Socket,
    core: &'a Core,
    wait: Wait,
}

impl Source<'_> {
    /// Reads more bytes into the buffer, keeping those from the mark.
    fn refill(&mut self) -> io::Result<()> {
        let inp = &mut *self.input;
        if inp.expired {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let keep = inp.mark.unwrap_or(inp.pos);
        if keep > 0 {
            inp.buf.copy_within(keep..inp.filled, 0);
            inp.filled -= keep;
            inp.pos -= keep;
            inp.mark = inp.mark.map(|_| 0);
        }
        if inp.buf.is_empty() {
            inp.buf = vec![0; inp.size.min(FIRST)];
        }
        if inp.filled == inp.buf.len() {
            // A frame in progress fills the buffer: double it. The codec's limits bound the
            // frame, as they do for a receive without a deadline; a size the machine cannot
            // hold is an error, not an abort.
            let more = inp.buf.len();
            inp.buf.try_reserve_exact(more).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    "no memory to keep a frame received with a deadline",
                )
            })?;
            inp.buf.resize(inp.buf.len() + more, 0);
        } else if inp.full && inp.buf.len() < inp.size {
            // The last read filled the buffer: the peer sends more at a time.
            let len = inp.buf.len().saturating_mul(2).min(inp.size);
            inp.buf.resize(len, 0);
        }
        let free = inp.buf.len() - inp.filled;
        let n = self.read_socket()?;
        self.input.full = n == free;
        self.input.filled += n;
        Ok(())
    }

    /// One read into the free part of the buffer, waiting as `wait` says.
    fn read_socket(&mut self) -> io::Result<usize> {
        // About to wait on the peer: a pending frame's clock starts now.
        self.core.frame_waits();
        let inp = &mut *self.input;
        loop {
            let into = &mut inp.buf[inp.filled..];
            let read = match self.wait {
                Wait::Now => self.stream.read_now(into),
                Wait::Forever => {
                    set_timeout(self.stream, &mut inp.timeout, None)?;
                    self.stream.read(into)
                }
                Wait::Until(until) => {
                    let now = Instant::now();
                    if now >= until {
                        inp.expired = true;
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    set_timeout(self.stream, &mut inp.timeout, Some(until - now))?;
                    self.stream.read(into)
                }
            };
            match read {
                Ok(n) => {
                    if n > 0 {
                        self.core.socket_read(n); // counted, and noted for idle limits
                        self.core.frame_bytes();
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) => match self.wait {
                    Wait::Forever => {}
                    Wait::Until(until) if Instant::now() < until => {}
                    _ => {
                        inp.expired = true;
                        return Err(e);
                    }
                },
                Err(e) => return Err(e),
            }
        }
    }
}

/// Sets the socket's receive timeout for `left` (`None`: forever), unless the one in place
/// (`current`) already fits: no longer than `left`, and not shorter than a quarter of it.
fn set_timeout(
    stream: &dyn Socket,
    current: &mut Option<Duration>,
    left: Option<Duration>,
) -> io::Result<()> {
    let want = match (left, *current) {
        (None, None) => return Ok(()),
        (Some(left), Some(now)) if now <= left && now >= left / 4 => return Ok(()),
        (None, Some(_)) => None,
        (Some(left), _) => {
            // The largest power of two of microseconds within `left` (at least 1 µs).
            let us = u64::try_from(left.as_micros()).unwrap_or(u64::MAX).max(1);
            Some(Duration::from_micros(1 << (63 - us.leading_zeros())))
        }
    };
    stream.set_read_timeout(want)?;
    *current = want;
    Ok(())
}

impl Read for Source<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // Never around the buffer: a frame in progress must stay in it, to be read again.
        read_via_buffer(self, out)
    }
}

impl BufRead for Source<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.input.pos >= self.input.filled {
            self.refill()?;
        }
        let inp = &*self.input;
        Ok(&inp.buf[inp.pos..inp.filled])
    }

    fn consume(&mut self, amt: usize) {
        self.input.pos = (self.input.pos + amt).min(self.input.filled);
    }
}
