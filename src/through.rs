//! Write-through: a send made on the connection's own reader thread, with nothing queued before
//! it, is encoded by the codec straight into the socket. No buffer of the whole message, no
//! copy of its payload, no hand-off to the writer thread: the reply path of an echo or
//! request/response handler costs what a hand-written blocking loop costs (muduo's
//! `TcpConnection::sendInLoop` and Netty's in-event-loop write do the same).
//!
//! The codec writes into a [`SocketWriter`], which gathers small writes (a length prefix, a
//! line's `\n`) and sends them with the next large one in a single `writev`, so a codec that
//! writes a header and then a payload still costs one syscall. A message that the socket does
//! not start to take within the send timeout (the socket's `SO_SNDTIMEO`) is reported as
//! stalled with no byte written, and goes to the queue like any other send.

use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::conn::{lock, Core};
use crate::queue::{is_reader_thread, Mode, Tx};

/// Writes up to this many bytes are gathered and sent with the next larger one.
const GATHER: usize = 2048;

/// What became of a write-through attempt.
pub(crate) enum Through {
    /// The message is on the socket.
    Written,
    /// Not written (not the reader thread, something queued, or the socket stalled before the
    /// first byte): queue it.
    Queue,
    /// The connection is closed or closing; nothing was written.
    Closed,
    /// The codec refused the message before writing a byte.
    Encode(io::Error),
}

impl Core {
    /// Lets `encode` write one message straight to the socket when this is the reader thread,
    /// the mode may block, and nothing is queued.
    pub(crate) fn write_through(
        self: &Arc<Self>,
        mode: Mode,
        encode: impl FnOnce(&mut SocketWriter<'_>) -> io::Result<()>,
    ) -> Through {
        if mode == Mode::Try || !self.cfg.write_through || !is_reader_thread(self) {
            return Through::Queue;
        }
        let Ok(mut gather) = self.out.try_lock() else {
            return Through::Queue;
        };
        {
            let q = lock(&self.q);
            if matches!(q.tx, Tx::Done) {
                return Through::Closed;
            }
            if q.pending != 0 {
                return Through::Queue; // keep order: earlier messages are waiting
            }
        }
        let Some(stream) = self.stream() else {
            return Through::Closed;
        };
        gather.clear();
        let mut w = SocketWriter {
            sock: Sock {
                stream: &stream,
                closed: &self.closed,
                written: 0,
                stalled: false,
                failed: false,
            },
            gather: &mut gather,
        };
        let result = encode(&mut w).and_then(|()| w.flush());
        let Sock {
            written,
            stalled,
            failed,
            ..
        } = w.sock;
        drop(gather);
        match result {
            Ok(()) => Through::Written,
            Err(_) if stalled => Through::Queue,
            Err(e) if !failed && written == 0 => Through::Encode(e),
            Err(e) => {
                // The socket failed, or the codec failed after part of the message went out:
                // either way the stream can no longer be trusted.
                self.io_failed(e);
                Through::Closed
            }
        }
    }
}

/// The writer a codec gets on the write-through path: the socket, with small writes gathered
/// into the next large one.
pub(crate) struct SocketWriter<'a> {
    sock: Sock<'a>,
    gather: &'a mut Vec<u8>,
}

/// The socket side of a [`SocketWriter`]: what was written, and how it stopped.
struct Sock<'a> {
    stream: &'a TcpStream,
    closed: &'a AtomicBool,
    /// Bytes of this message the socket has taken.
    written: usize,
    /// The socket took no byte within its write timeout.
    stalled: bool,
    /// The socket returned an error.
    failed: bool,
}

impl Sock<'_> {
    /// One `writev` to the socket, retried on interruption and, once the message has started,
    /// on the write timeout (a stall before the first byte is reported instead).
    fn raw(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        loop {
            match (&*self.stream).write_vectored(bufs) {
                Ok(0) => {
                    self.failed = true;
                    return Err(io::Error::from(io::ErrorKind::WriteZero));
                }
                Ok(n) => {
                    self.written += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && !self.closed.load(Ordering::SeqCst) =>
                {
                    if self.written == 0 {
                        self.stalled = true;
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

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        if self.gather.len() + total <= GATHER {
            for b in bufs {
                self.gather.extend_from_slice(b);
            }
            return Ok(total);
        }
        // Send what is gathered together with this write; keep at most 15 of its slices.
        while !self.gather.is_empty() {
            let mut iov = [IoSlice::new(&[]); 16];
            iov[0] = IoSlice::new(self.gather);
            let n_bufs = bufs.len().min(15);
            iov[1..=n_bufs].copy_from_slice(&bufs[..n_bufs]);
            let gathered = self.gather.len();
            let n = self.sock.raw(&iov[..=n_bufs])?;
            if n < gathered {
                self.gather.drain(..n);
                continue;
            }
            self.gather.clear();
            if n > gathered {
                return Ok(n - gathered);
            }
        }
        self.sock.raw(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        while !self.gather.is_empty() {
            let n = self.sock.raw(&[IoSlice::new(self.gather)])?;
            self.gather.drain(..n);
        }
        Ok(())
    }
}
