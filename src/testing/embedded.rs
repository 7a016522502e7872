//! [`EmbeddedConnection`]: one connection driven entirely on the test's thread, with no
//! socket and no thread; examples in the module docs (`testing/mod.rs`).
//!
//! The connection's state, handle, send paths, queue, timers, idle limits and close sequence
//! are the real ones (`conn/`); what a real connection's threads do is done here, on the
//! caller's thread, when the caller feeds input or moves the clock:
//!
//! * the reader thread: [`Reader::deliver`] gives the codec the bytes fed so far, through
//!   [`Starved`], a `BufRead` that says "no more yet" instead of blocking, and calls the
//!   handler for every message they complete, as `conn/reader.rs` does;
//! * the writer thread: the connection is built [without threads](Core::without_threads), so
//!   its queue waits for `write_parked`, called after every step;
//! * the timing wheel's thread: a [manual clock](TimingWheel::manual), moved by `advance`.

use std::cell::RefCell;
use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::time::Duration;

use crate::codec::{read_via_buffer, Codec};
use crate::conn::core::Core;
use crate::conn::drain::write_parked;
use crate::conn::handler::Handler;
use crate::conn::lifecycle::{self, Decoded, End};
use crate::conn::metrics::Metrics;
use crate::conn::threads::ReaderMark;
use crate::conn::{CloseReason, Connection};
use crate::sys::transport::Socket;
use crate::timer::{ManualClock, TimingWheel};

use super::memory::MemorySocket;

/// The manual wheel's tick.
const TICK: Duration = Duration::from_millis(1);

/// One connection run in memory, entirely on the test's thread: the test feeds it inbound
/// bytes, reads back what the handler sent, advances its manual clock, and sees its close
/// (Netty's `EmbeddedChannel`). No socket is opened and no thread is started.
///
/// Each method does all its work before it returns, on the calling thread:
/// [`write_inbound`](Self::write_inbound) decodes what the bytes complete and calls the
/// handler for each message; what the handler sends is at once in
/// [`read_outbound`](Self::read_outbound) (write-through, or the send queue written right
/// after the callback); [`advance`](Self::advance) runs the timers that come due; a close
/// (by the handler, [`Connection::close`], an error, a panic, an idle limit, or the peer's
/// EOF after a shutdown) ends the connection and runs `on_close` before the method returns.
/// So a test is deterministic and never sleeps.
///
/// The connection keeps the lifecycle of a real one: `on_connect` first, `on_close` once and
/// last with its [`CloseReason`]; the send queue is bounded, and a
/// [`try_send`](Connection::try_send) past it hands the message back (the queue is written
/// only between callbacks, so a handler can fill it); a [`send`](Connection::send) that finds
/// it full writes it out at once instead of waiting (the in-memory peer reads everything);
/// [`shutdown`](Connection::shutdown) writes what is queued, then the FIN
/// ([`is_outbound_closed`](Self::is_outbound_closed)), and the connection stays open,
/// delivering input, until the peer's EOF ([`close_inbound`](Self::close_inbound)) or the
/// deadline on the manual clock.
///
/// Every timer of the connection (idle limits, heartbeats, the shutdown deadline,
/// [`Connection::run_after`]) runs on a [manual clock](TimingWheel::manual) that only
/// [`advance`](Self::advance) moves; any wheel set in the options is replaced by it. Sends
/// from the test or from a timer take the path of a send from another thread.
///
/// Dropping it closes the connection if it is still open (`on_close` runs then).
pub struct EmbeddedConnection<C: Codec> {
    conn: Connection<C>,
    socket: Arc<MemorySocket>,
    clock: ManualClock,
    /// A clone of the codec, for decoding what the connection wrote.
    codec: C,
    reader: RefCell<Reader<C>>,
}

/// What the reader thread of a real connection keeps.
struct Reader<C: Codec> {
    codec: C,
    handler: Option<Box<dyn Handler<C>>>,
    /// Bytes fed and not yet consumed by a complete message.
    inbound: Vec<u8>,
    /// The peer sent its FIN.
    peer_eof: bool,
    /// The read side ended (the reader thread would have left its loop); not yet finished.
    end: Option<End>,
    /// Set once `on_close` has run.
    reason: Option<CloseReason>,
}

impl<C: Codec> EmbeddedConnection<C> {
    /// Opens the connection: `factory` makes its handler and `on_connect` runs, as for an
    /// accepted connection, before this returns. `options` apply as on a server (queue
    /// bounds, idle limits, heartbeats, the maximum frame length, the shutdown timeout),
    /// except the timing wheel: the connection gets a manual one.
    pub fn new<H, F>(mut codec: C, factory: F, options: crate::ConnOptions) -> EmbeddedConnection<C>
    where
        H: Handler<C>,
        F: FnOnce(&Connection<C>) -> H,
    {
        let (wheel, clock) = TimingWheel::manual(TICK);
        let options = options.timing_wheel(wheel);
        if let Some(max) = options.max_frame_length {
            codec.set_max_frame_length(max);
        }
        let socket = Arc::new(MemorySocket::default());
        let stream: Arc<dyn Socket> = Arc::clone(&socket) as Arc<dyn Socket>;
        let addr = stream.peer_addr().expect("memory sockets have an address");
        let core = Core::new(
            1,
            stream,
            addr.clone(),
            addr,
            Arc::new(options),
            Arc::new(Metrics::default()),
        )
        .without_threads();
        let conn = Connection::new(core, Arc::new(codec.clone()));
        let embedded = EmbeddedConnection {
            reader: RefCell::new(Reader {
                codec: codec.clone(),
                handler: None,
                inbound: Vec::new(),
                peer_eof: false,
                end: None,
                reason: None,
            }),
            conn,
            socket,
            clock,
            codec,
        };
        embedded.open(factory);
        embedded.drive();
        embedded
    }

    /// The connection's handle, as its handler sees it: send from the test, `shutdown`,
    /// `close`, read its stats. The effect of a close or shutdown shows in the next call of a
    /// method of this type.
    pub fn connection(&self) -> &Connection<C> {
        &self.conn
    }

    /// The peer sends `bytes`: the handler sees every message they complete before this
    /// returns (a partial frame waits for the rest). Ignored once the connection is closed
    /// or the peer's side is.
    pub fn write_inbound(&self, bytes: &[u8]) {
        let core = &*self.conn.core;
        {
            let mut r = self.reader.borrow_mut();
            let open = r.end.is_none() && r.reason.is_none() && !r.peer_eof;
            if bytes.is_empty() || !open || core.is_aborted() {
                return;
            }
            core.socket_read(bytes.len());
            core.frame_bytes();
            r.inbound.extend_from_slice(bytes);
        }
        self.drive();
    }

    /// The peer sends its FIN (half-closes). Between frames, the connection flushes what is
    /// queued and closes with [`CloseReason::PeerClosed`] (or the reason of a shutdown
    /// already under way); inside a frame, with an `UnexpectedEof` error.
    pub fn close_inbound(&self) {
        self.reader.borrow_mut().peer_eof = true;
        self.drive();
    }

    /// Takes every byte the connection has written so far.
    pub fn read_outbound(&self) -> Vec<u8> {
        self.drive();
        let mut socket = self.socket.lock();
        socket.slices.clear();
        std::mem::take(&mut socket.outbound)
    }

    /// Takes the messages the connection has written so far, decoded with a clone of its own
    /// codec (for a codec whose two directions are the same format, such as
    /// [`LengthDelimited`](crate::codec::LengthDelimited) or [`Lines`](crate::codec::Lines)).
    /// The bytes of a frame not yet written whole stay for the next call.
    ///
    /// # Errors
    ///
    /// The codec failed on the bytes (other than for an incomplete frame); what it had not
    /// consumed stays.
    pub fn read_outbound_messages(&self) -> io::Result<Vec<C::In>> {
        self.decode_outbound(&mut self.codec.clone())
    }

    /// As [`read_outbound_messages`](Self::read_outbound_messages), with another codec: the
    /// peer's side of an asymmetric protocol (a client codec for a server's replies).
    ///
    /// # Errors
    ///
    /// As [`read_outbound_messages`](Self::read_outbound_messages).
    pub fn decode_outbound<D: Codec>(&self, codec: &mut D) -> io::Result<Vec<D::In>> {
        let bytes = self.read_outbound();
        let (out, used, result) = decode_all(codec, &bytes, true);
        if used < bytes.len() {
            // Put back what was not decoded, before anything written meanwhile.
            let mut s = self.socket.lock();
            s.outbound.splice(0..0, bytes[used..].iter().copied());
        }
        result.map(|()| out)
    }

    /// True once the connection has shut its write side: its FIN, after a
    /// [`shutdown`](Connection::shutdown) drained the queue or the peer's EOF was answered
    /// (or a close, which shuts both sides).
    pub fn is_outbound_closed(&self) -> bool {
        self.drive();
        self.socket.lock().write_shut
    }

    /// Moves the connection's clock forward by `by`, running every timer that comes due on
    /// the way (on this thread, in deadline order), and what they cause: a heartbeat is
    /// written, an idle limit or a shutdown deadline closes the connection and `on_close`
    /// runs.
    pub fn advance(&self, by: Duration) {
        self.drive();
        self.clock.advance(by);
        self.drive();
    }

    /// Why the connection closed, once `on_close` has run; `None` while it is open (a copy:
    /// an I/O error keeps its kind and message).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.drive();
        self.reader.borrow().reason.clone()
    }

    /// True once the connection has closed and `on_close` has run.
    pub fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }

    /// Makes the handler and runs `on_connect`, as the reader thread does first.
    fn open<H, F>(&self, factory: F)
    where
        H: Handler<C>,
        F: FnOnce(&Connection<C>) -> H,
    {
        let _mark = self.reader_mark();
        let (made, failed) = lifecycle::open(&self.conn, factory);
        let mut r = self.reader.borrow_mut();
        r.handler = made.map(|h| Box::new(h) as Box<dyn Handler<C>>);
        r.end = failed;
    }

    /// Does what the connection's threads would do with the input and the queue as they are
    /// now: delivers complete messages, writes what is queued, and, once the read side has
    /// ended, finishes the connection and runs `on_close`.
    fn drive(&self) {
        let core = &self.conn.core;
        let mut r = self.reader.borrow_mut();
        if r.reason.is_some() {
            return;
        }
        if r.end.is_none() {
            r.end = self.deliver(&mut r);
        }
        write_parked(core);
        if r.end.is_none() && core.is_aborted() {
            // A close shut the socket down: the reader would wake and leave.
            r.end = Some(End::Eof);
        }
        if let Some(end) = r.end.take() {
            self.finish(&mut r, end);
        }
    }

    /// The read loop of `conn/reader.rs`, over the bytes fed so far: `Some` once the read
    /// side has ended, `None` when it waits for more input.
    fn deliver(&self, r: &mut Reader<C>) -> Option<End> {
        let core = &self.conn.core;
        let _mark = self.reader_mark()?;
        let Reader {
            codec,
            handler,
            inbound,
            peer_eof,
            ..
        } = r;
        let handler = handler.as_mut()?;
        let mut pos = 0;
        let end = loop {
            if pos == inbound.len() && !*peer_eof {
                break None;
            }
            let mut attempt = codec.clone();
            let mut input = Starved::new(&inbound[pos..], *peer_eof);
            let Decoded { read, mid } = lifecycle::decode(&mut attempt, &mut input);
            let read = match read {
                Ok(read) => read,
                Err(message) => break Some(End::Panic(message)),
            };
            match read {
                Ok(Some(msg)) => {
                    pos += input.consumed;
                    *codec = attempt;
                    let more = pos < inbound.len();
                    if let Some(end) =
                        lifecycle::message(&self.conn, &mut **handler, msg, mid, more)
                    {
                        break Some(end);
                    }
                    // Between callbacks, as the writer thread would: what was queued goes.
                    write_parked(core);
                }
                Ok(None) => break Some(End::Eof),
                // The frame is not complete: the codec is put back as it was, and the
                // connection waits for the rest (a pending frame's clock starts now).
                Err(_) if input.starved => {
                    core.frame_waits();
                    break None;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    pos += input.consumed;
                    *codec = attempt;
                }
                Err(e) => break Some(End::Error(e)),
            }
        };
        inbound.drain(..pos);
        end
    }

    /// The end of `conn/reader.rs`'s `serve`: the close the read side's end calls for, the
    /// queue written (and the FIN) or dropped, then `on_close`, then the socket released.
    fn finish(&self, r: &mut Reader<C>, end: End) {
        let reason = lifecycle::end(&self.conn, Some(end), |reason| {
            let _mark = self.reader_mark();
            lifecycle::on_close(&self.conn, r.handler.as_deref_mut(), reason);
            r.handler = None; // as the reader thread's end drops it
        });
        r.reason = Some(reason);
    }

    /// Marks this thread as the connection's reader (sends from a callback write through,
    /// as on the reader thread), until the guard drops; `None` once the socket is released.
    fn reader_mark(&self) -> Option<ReaderMark> {
        let core = &self.conn.core;
        core.stream().map(|s| ReaderMark::set(core, s))
    }
}

impl<C: Codec> Drop for EmbeddedConnection<C> {
    fn drop(&mut self) {
        if self.reader.get_mut().reason.is_none() {
            self.conn.close();
            self.drive();
        }
    }
}

/// Decodes messages from `bytes` until they run out: the messages, how many bytes they took,
/// and the codec's error if it failed (other than for a frame cut short, when `cut_ok`).
fn decode_all<D: Codec>(
    codec: &mut D,
    bytes: &[u8],
    cut_ok: bool,
) -> (Vec<D::In>, usize, io::Result<()>) {
    let mut out = Vec::new();
    let mut used = 0;
    while used < bytes.len() {
        let mut attempt = codec.clone();
        let mut input = Starved::new(&bytes[used..], false);
        match attempt.read(&mut input) {
            Ok(Some(m)) => {
                out.push(m);
                used += input.consumed;
                *codec = attempt;
            }
            Ok(None) => break,
            Err(_) if input.starved && cut_ok => break,
            Err(e) => return (out, used, Err(e)),
        }
    }
    (out, used, Ok(()))
}

/// The input fed so far, as a `BufRead` that never blocks: at its end it is the stream's end
/// if the peer has closed, and otherwise a `WouldBlock` error that marks it `starved` (the
/// codec's frame is not complete yet; the caller retries from the same place with more).
struct Starved<'a> {
    bytes: &'a [u8],
    consumed: usize,
    eof: bool,
    starved: bool,
}

impl<'a> Starved<'a> {
    fn new(bytes: &'a [u8], eof: bool) -> Starved<'a> {
        Starved {
            bytes,
            consumed: 0,
            eof,
            starved: false,
        }
    }
}

impl Read for Starved<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        read_via_buffer(self, out)
    }
}

impl BufRead for Starved<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed == self.bytes.len() && !self.eof {
            self.starved = true;
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "embedded connection: waiting for more input",
            ));
        }
        Ok(&self.bytes[self.consumed..])
    }

    fn consume(&mut self, amt: usize) {
        self.consumed = (self.consumed + amt).min(self.bytes.len());
    }
}
