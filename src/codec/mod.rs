//! Codecs: how bytes on a stream become messages, and messages become bytes.
//!
//! A [`Codec`] has two halves that run on different threads:
//!
//! * [`Codec::read`] runs on the connection's reader thread. It takes a buffered reader and
//!   returns one decoded message. It has `&mut self`, so a codec may keep per-connection decoding
//!   state; the server clones the codec once per connection.
//! * [`Codec::write`] runs on whatever thread calls [`Connection::send`](crate::Connection::send).
//!   It encodes one message into a byte buffer, which is what the send queue holds. It has
//!   `&self` and the codec is `Sync`, so any number of threads can encode at once.
//!
//! # The `read` contract
//!
//! | result          | meaning                                                      | what the connection does |
//! |-----------------|--------------------------------------------------------------|--------------------------|
//! | `Ok(Some(msg))` | one complete message                                         | calls `on_message`       |
//! | `Ok(None)`      | clean end of stream: EOF on a frame boundary                 | graceful close (`PeerClosed`) |
//! | `Err(e)`        | the stream is broken (EOF inside a frame, a frame over the limit, bad bytes) | closes with `Error` |
//!
//! After an `Err` the stream is never read again: a framing error leaves no way to find the
//! next frame boundary. Codecs must never panic on any input, and must check every size limit
//! *before* allocating for it (tokio #590: a length prefix of 4 GiB must cost nothing).
//!
//! # Shipped codecs
//!
//! Every codec checks its limits before allocating and turns bad input into a clear error
//! (or, where the protocol has one, an error reply) that closes only that connection.
//!
//! | codec                | wire format                                   | `In` / `Out`       | limits (defaults) |
//! |----------------------|-----------------------------------------------|--------------------|-------------------|
//! | [`LengthDelimited`]  | `+-- len: u32 BE --+-- payload --+` by default; Netty's and tokio-util's layouts: width 1–8, endian, offset, adjustment, `num_skip` | `Vec<u8>` | 1 MiB frame |
//! | [`LengthChunks`]     | as `LengthDelimited`, each message in a recycled buffer (no allocation per frame once the first has come) | [`Chunk`] | as `LengthDelimited` |
//! | [`Lines`]            | `text \n` (`\r\n` accepted)                   | `String`           | 64 KiB line |
//! | [`Raw`]              | whatever one `read` returns, no framing       | `Vec<u8>`          | the read buffer |
//! | [`RawChunks`]        | as `Raw`, in recycled buffers read from the socket straight into their storage and sent back without a copy | [`Chunk`] | the chunk size |
//! | [`Tlv`]              | `+-- type: u32 LE --+-- len: u32 LE --+-- payload --+` (Tao's); type 0 is a heartbeat | [`TlvFrame`] | 1 MiB frame |
//! | [`Http1`]            | HTTP/1.1 requests in, responses out: keep-alive, pipelining, chunked bodies, `Expect: 100-continue`, HEAD | [`Incoming`](crate::http::Incoming) / [`Response`](crate::http::Response) | 8 KiB head, 100 headers, 1 MiB body; 400/413/414/431/501/505 |
//! | [`Resp`]             | RESP2 (Redis): `*1\r\n$4\r\nPING\r\n` in, `+PONG\r\n` out; inline commands too | `Result<Vec<Vec<u8>>, ProtocolError>` / [`Reply`] | 1 Mi arguments, 512 MiB bulk (Redis' own), 1 MiB per command, 64 KiB inline |
//! | [`RespCommands`]     | as `Resp`, each command in one [`Command`] without an allocation ([`Resp::commands`]); [`Reply::Shared`] sends shared bytes without a copy | `Result<Command, ProtocolError>` / [`Reply`] | as `Resp` |
//! | [`WsCodec`](crate::ws::WsCodec) | WebSocket frames (RFC 6455), either side; see [`ws`](crate::ws) | `Result<Message, WsError>` / [`Message`](crate::ws::Message) | 1 MiB frame, 4 MiB message |
//!
//! A message must also arrive whole within
//! [`ConnOptions::frame_timeout`](crate::ConnOptions::frame_timeout) of its first byte (30 s by
//! default; `Duration::ZERO` turns it off; TCP and Unix sockets only, as a datagram is whole
//! when it comes), so a peer that trickles a frame (slowloris) holds its connection no longer
//! than that. [`Router`](crate::Router) dispatches [`Tlv`] frames by type (Tao's message
//! registry). The `kv_server` example is a Redis-compatible store on [`RespCommands`], driven
//! in the tests by the real `redis-cli` and `redis-benchmark`.
//!
//! # Using a codec by hand
//!
//! A codec needs no connection: `write` encodes into any `Write`, and `read` decodes from any
//! `BufRead`, which is how its tests are written. A codec of your own is the two methods; the
//! [`Codec`] trait has an example.
//!
//! ```
//! use std::io::Cursor;
//! use threadnet::codec::{Codec, LengthDelimited};
//!
//! let codec = LengthDelimited::new();
//! let mut wire = Vec::new();
//! codec.write(&b"hello".to_vec(), &mut wire)?;
//! assert_eq!(wire, b"\x00\x00\x00\x05hello"); // a u32 big-endian length, then the payload
//!
//! let mut decoder = codec.clone(); // a connection's reader gets its own clone
//! let mut input = Cursor::new(wire);
//! assert_eq!(decoder.read(&mut input)?, Some(b"hello".to_vec()));
//! assert_eq!(decoder.read(&mut input)?, None); // a clean end, on a frame boundary
//!
//! // A length over the limit is refused from its header, before anything is allocated.
//! let mut huge = Cursor::new(u32::MAX.to_be_bytes().to_vec());
//! assert!(decoder.read(&mut huge).is_err());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, BufRead, Write};

mod chunks;
mod endian;
mod frame_io;
mod length;
mod length_chunks;
mod lines;
mod raw;
mod resp;
mod resp_command;
mod resp_parse;
mod resp_reply;
mod tlv;

pub use crate::http::Http1;
pub use chunks::{Chunk, RawChunks};
pub use endian::Endian;
pub use length::LengthDelimited;
pub use length_chunks::LengthChunks;
pub use lines::Lines;
pub use raw::Raw;
pub use resp::Resp;
pub use resp_command::{Command, CommandIter, RespCommands};
pub use resp_parse::ProtocolError;
pub use resp_reply::Reply;
pub use tlv::{Tlv, TlvFrame};

/// Turns a byte stream into messages ([`read`](Codec::read)) and messages into bytes
/// ([`write`](Codec::write)).
///
/// The same codec type serves servers and clients. A server clones its codec once per
/// connection for the reader thread (decoding state lives there) and shares one more clone
/// between all senders of that connection for encoding.
///
/// # Example: a codec of your own
///
/// A codec for fixed 8-byte big-endian integers:
///
/// ```
/// use std::io::{self, BufRead, Read, Write};
/// use threadnet::Codec;
///
/// #[derive(Clone)]
/// struct U64s;
///
/// impl Codec for U64s {
///     type In = u64;
///     type Out = u64;
///
///     fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<u64>> {
///         if r.fill_buf()?.is_empty() {
///             return Ok(None); // clean EOF between frames
///         }
///         let mut b = [0u8; 8];
///         r.read_exact(&mut b)?; // EOF inside a frame is an error
///         Ok(Some(u64::from_be_bytes(b)))
///     }
///
///     fn write<W: Write>(&self, msg: &u64, w: &mut W) -> io::Result<()> {
///         w.write_all(&msg.to_be_bytes())
///     }
/// }
///
/// let mut out = Vec::new();
/// U64s.write(&7, &mut out).unwrap();
/// let mut input: &[u8] = &out;
/// assert_eq!(U64s.read(&mut input).unwrap(), Some(7));
/// assert_eq!(U64s.read(&mut input).unwrap(), None);
/// ```
pub trait Codec: Clone + Send + Sync + 'static {
    /// What [`read`](Codec::read) produces: the messages the peer sends us.
    type In: Send + 'static;
    /// What [`write`](Codec::write) takes: the messages we send the peer.
    type Out: Send + 'static;

    /// Reads one message from `r`.
    ///
    /// Returns `Ok(None)` at a clean end of stream (EOF exactly between two frames).
    ///
    /// # Errors
    ///
    /// Any error ends the connection with [`CloseReason::Error`](crate::CloseReason::Error):
    /// an I/O error from `r`, [`io::ErrorKind::UnexpectedEof`] for EOF inside a frame, and
    /// [`io::ErrorKind::InvalidData`] for a frame that breaks the codec's rules or limits.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Self::In>>;

    /// Encodes one message into `w` (in threadnet, `w` is the byte buffer that goes into the
    /// send queue, so this never touches the socket).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] when the message cannot be encoded (for example a
    /// payload longer than the frame limit); the send that called it fails and hands the
    /// message back.
    fn write<W: Write>(&self, msg: &Self::Out, w: &mut W) -> io::Result<()>;

    /// Sets the largest frame, in bytes, that [`read`](Codec::read) accepts and
    /// [`write`](Codec::write) produces. Server and client builders call it for their
    /// `max_frame_length` option.
    ///
    /// The default does nothing: for codecs without frames (such as [`Raw`], whose reads are
    /// bounded by the read buffer) there is nothing to limit.
    fn set_max_frame_length(&mut self, bytes: usize) {
        let _ = bytes;
    }

    /// Whether a message is still in progress after the last [`read`](Codec::read): what it
    /// returned came from between the parts of a message whose rest is still to come (a
    /// WebSocket ping between the fragments of a message). The readers ask it after each
    /// message: while it is `true` they do not end the frame clock, so
    /// [`ConnOptions::frame_timeout`](crate::ConnOptions::frame_timeout) runs from the
    /// message's first byte to its last, however many control messages come between.
    ///
    /// The default, `false`, is the right answer for every codec whose `read` returns only
    /// whole messages and keeps no part of one between calls: every shipped codec but
    /// [`WsCodec`](crate::ws::WsCodec) and [`WsUpgrade`](crate::ws::WsUpgrade), which
    /// override it. A codec that can return in the middle of a message overrides it, and a
    /// codec that wraps another forwards it.
    fn mid_message(&self) -> bool {
        false
    }
}

/// Appends exactly `len` bytes from `r` to `buf`, a frame's payload whose length the caller
/// has checked against its limits: `buf` grows once (`try_reserve_exact`, so a length the
/// machine cannot hold is an error, not an abort), what `r` has buffered is copied with one
/// `memcpy` and no zeroing, and the rest is read straight into `buf` (a reader that bypasses
/// its buffer for large reads, as the connection's does, then reads it from the socket: one
/// copy, not two).
///
/// # Errors
///
/// [`io::ErrorKind::OutOfMemory`] when `buf` cannot grow by `len`;
/// [`io::ErrorKind::UnexpectedEof`] when the stream ends first; any I/O error from `r`. On an
/// error `buf` holds what was read before it.
pub(crate) fn append_exact<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
    reserve_frame(buf, len)?;
    fill(r, buf, len, |_, _| Ok(()))
}

/// As [`append_exact`], for a message that grows frame by frame (a WebSocket message's
/// fragments): `buf` grows as [`reserve_growing`] grows it, never past `limit` bytes of
/// capacity, so a message of many small frames is copied a few times, not once per frame.
/// `arrived(bytes, from)` is called each time bytes arrive, with `buf` up to the last of
/// them and where they begin, so they can be unmasked and checked as they come (an error
/// from it ends the read).
///
/// # Errors
///
/// As [`append_exact`], and `arrived`'s.
pub(crate) fn append_growing<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    len: usize,
    limit: usize,
    arrived: impl FnMut(&mut [u8], usize) -> io::Result<()>,
) -> io::Result<()> {
    reserve_growing(buf, len, limit)?;
    fill(r, buf, len, arrived)
}

/// Appends exactly `len` bytes from `r` to `buf`, which has room for them, calling
/// `arrived(&mut buf[..upto], from)` after each read (see [`append_growing`]).
fn fill<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    len: usize,
    mut arrived: impl FnMut(&mut [u8], usize) -> io::Result<()>,
) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let start = buf.len();
    let end = start + len;
    let buffered = loop {
        match r.fill_buf() {
            Ok(b) => break b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let n = buffered.len().min(len);
    buf.extend_from_slice(&buffered[..n]);
    r.consume(n);
    arrived(buf, start)?;
    let mut got = buf.len();
    if got == end {
        return Ok(());
    }
    buf.resize(end, 0);
    while got < end {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                let short = end - got;
                buf.truncate(got);
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended {short} bytes short of a {len}-byte payload"),
                ));
            }
            Ok(n) => {
                arrived(&mut buf[..got + n], got).inspect_err(|_| buf.truncate(got + n))?;
                got += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(got);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Makes room in `buf` for `len` more bytes of a frame, exactly, in one allocation.
///
/// # Errors
///
/// [`io::ErrorKind::OutOfMemory`] when it cannot (a length the machine cannot hold is an
/// error for the connection, not an abort of the process).
pub(crate) fn reserve_frame(buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
    buf.try_reserve_exact(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("cannot allocate a frame of {len} bytes"),
        )
    })
}

/// Makes room in `buf` for `len` more bytes of a message that grows frame by frame, whose
/// size the caller has checked against `limit` (`buf.len() + len <= limit`). Amortised, as
/// `Vec`'s own growth (and the HTTP chunked body's): when `buf` must grow, its capacity at
/// least doubles, so `n` small frames cost about `log2(n)` reallocations, not `n`. Unlike
/// `Vec`'s, the doubling stops at `limit`: the buffer never holds more room than the
/// largest message allowed. An empty `buf` gets exactly `len` (a message in one frame is one
/// allocation of its length).
///
/// # Errors
///
/// [`io::ErrorKind::OutOfMemory`] when it cannot grow (an error for the connection, not an
/// abort of the process).
pub(crate) fn reserve_growing(buf: &mut Vec<u8>, len: usize, limit: usize) -> io::Result<()> {
    let need = buf.len().saturating_add(len);
    if need <= buf.capacity() {
        return Ok(());
    }
    let want = need.max(buf.capacity().saturating_mul(2).min(limit));
    reserve_frame(buf, want - buf.len())
}

/// `Read::read` for a `BufRead` that serves every read from its buffer: fills it if it is
/// empty, then copies what it holds, up to `out.len()` bytes, and consumes that.
pub(crate) fn read_via_buffer<R: BufRead>(r: &mut R, out: &mut [u8]) -> io::Result<usize> {
    let n = {
        let have = r.fill_buf()?;
        let n = have.len().min(out.len());
        out[..n].copy_from_slice(&have[..n]);
        n
    };
    r.consume(n);
    Ok(n)
}

/// Reads from `r` until `buf` is full, distinguishing a clean EOF before the first byte
/// (`Ok(false)`) from EOF after some bytes (`UnexpectedEof`). `Ok(true)` means `buf` is full.
pub(crate) fn read_frame_start<R: BufRead>(r: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    if r.fill_buf()?.is_empty() {
        return Ok(false);
    }
    r.read_exact(buf)?;
    Ok(true)
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::fmt::Display;
    use std::io::{self, BufRead, Read, Write};

    /// A writer that takes at most `n` bytes per call and does not override
    /// `write_vectored`, so a codec's partial-write loop runs; `calls` counts the writes.
    pub(crate) struct Trickle {
        pub(crate) out: Vec<u8>,
        pub(crate) n: usize,
        pub(crate) calls: usize,
    }

    impl Trickle {
        /// A writer of at most `n` bytes per call.
        pub(crate) fn new(n: usize) -> Trickle {
            Trickle {
                out: Vec::new(),
                n,
                calls: 0,
            }
        }
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            let k = buf.len().min(self.n);
            self.out.extend_from_slice(&buf[..k]);
            Ok(k)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Everything `codec` reads from `r`, for a codec whose messages are `Ok(command)` or a
    /// protocol error (RESP's): the commands, then what ended the stream: the protocol
    /// error's text, `EOF`, or the I/O error's kind.
    pub(crate) fn outcome<C, T, E>(mut codec: C, r: &mut impl BufRead) -> (Vec<T>, String)
    where
        C: super::Codec<In = Result<T, E>>,
        E: Display,
    {
        let mut got = Vec::new();
        loop {
            match codec.read(r) {
                Ok(Some(Ok(cmd))) => got.push(cmd),
                Ok(Some(Err(e))) => return (got, e.to_string()),
                Ok(None) => return (got, "EOF".to_string()),
                Err(e) => return (got, format!("{:?}", e.kind())),
            }
        }
    }

    /// A reader that hands out at most one byte per `read`: every frame arrives split.
    pub(crate) struct OneByte<'a>(pub(crate) &'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    /// Counts the bytes read through it: a codec's tests check how much of an endless or
    /// over-limit input it read before refusing it.
    pub(crate) struct Counting<R> {
        pub(crate) inner: R,
        pub(crate) count: usize,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.count += n;
            Ok(n)
        }
    }
}
