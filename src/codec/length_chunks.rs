//! Length-delimited frames in recycled buffers: [`LengthChunks`].
//!
//! Documented on the type (this module is private, so its own docs are not rendered).

use std::io::{self, BufRead, Write};
use std::sync::Arc;

use super::chunks::{Chunk, Pool};
use super::LengthDelimited;

/// The default [`LengthChunks::keep_capacity`]: 64 KiB.
const DEFAULT_KEEP: usize = 64 * 1024;

/// The frames of [`LengthDelimited`], with each message in a recycled buffer: a [`Chunk`]
/// instead of a new `Vec<u8>` per frame.
///
/// `LengthDelimited` allocates a `Vec` for every frame it reads, and the handler owns it.
/// `LengthChunks` reads each message into a buffer taken from a small pool of its own, and
/// the buffer goes back to the pool when the `Chunk` is dropped: a handler that replies with
/// the chunk it was given (`conn.send(chunk)`, as an echo or a relay does), or reads it and
/// lets it go, makes its connection allocate nothing per frame once the first has arrived.
/// The handler gets the message as a `Chunk`, which dereferences to `&[u8]` (and `&mut [u8]`,
/// to rewrite it in place); [`Chunk::into_vec`] takes the bytes out without a copy, and
/// `Chunk::from(vec)` makes a message to send from a `Vec`.
///
/// Every clone of the codec has its own pool, and a server clones its codec once per
/// connection: each connection keeps at most one buffer, of the largest message it has read
/// up to [`keep_capacity`](LengthChunks::keep_capacity) bytes (a larger one is freed when
/// its chunk is dropped), for the connection's life. For connections that are mostly idle,
/// `LengthDelimited` costs less memory.
///
/// # Wire format and limits
///
/// Those of the [`LengthDelimited`] it is made [`from`](LengthChunks::from) (by default a
/// 4-byte big-endian length, then the payload): the two codecs talk to each other, and every
/// layout option, limit and error is `LengthDelimited`'s. The limit is checked from the
/// header, before any buffer is taken or grown.
///
/// # Example
///
/// ```
/// use threadnet::{codec::{Chunk, LengthChunks, LengthDelimited}, Codec};
///
/// let mut codec = LengthChunks::from(LengthDelimited::new().length_width(2));
///
/// let mut wire = Vec::new();
/// codec.write(&Chunk::from(b"hello".to_vec()), &mut wire).unwrap();
/// codec.write(&Chunk::from(b"world".to_vec()), &mut wire).unwrap();
/// assert_eq!(&wire[..7], b"\x00\x05hello"); // LengthDelimited's frames
///
/// let mut input: &[u8] = &wire;
/// let first = codec.read(&mut input).unwrap().unwrap();
/// assert_eq!(&first[..], b"hello");
/// let at = first.as_ptr();
/// drop(first); // its buffer goes back to the pool...
/// let second = codec.read(&mut input).unwrap().unwrap();
/// assert_eq!(&second[..], b"world");
/// assert_eq!(second.as_ptr(), at); // ...and holds the next message
/// assert!(codec.read(&mut input).unwrap().is_none()); // clean EOF between frames
/// ```
///
/// An echo server on it, driven by a plain std client:
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use std::time::Duration;
/// use threadnet::{codec::{Chunk, LengthChunks}, Connection, TcpServer};
///
/// let server = TcpServer::builder()
///     .addr("127.0.0.1:0")
///     .start(LengthChunks::new(), |_: &Connection<LengthChunks>| {
///         // Sent back as it is: the buffer returns to the pool once written.
///         |conn: &Connection<LengthChunks>, msg: Chunk| {
///             let _ = conn.send(msg);
///         }
///     })?;
///
/// let mut peer = TcpStream::connect(server.local_addr())?;
/// for _ in 0..3 {
///     peer.write_all(b"\x00\x00\x00\x04ping")?;
///     let mut echo = [0u8; 8];
///     peer.read_exact(&mut echo)?;
///     assert_eq!(&echo, b"\x00\x00\x00\x04ping");
/// }
/// drop(peer);
/// server.stop(Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct LengthChunks {
    layout: LengthDelimited,
    pool: Arc<Pool>,
}

impl LengthChunks {
    /// A codec with [`LengthDelimited::new`]'s layout (a 4-byte big-endian length, then the
    /// payload; 1 MiB frames at most) and buffers of up to 64 KiB kept for reuse.
    pub fn new() -> LengthChunks {
        LengthChunks::from(LengthDelimited::new())
    }

    /// Sets the largest buffer, in bytes of capacity, that is kept for the next message when
    /// its chunk is dropped: a message larger than this is read into a new buffer of its own
    /// size, freed with its chunk, so that one large frame does not leave the connection
    /// holding that much memory. `0` keeps none (every message is a new allocation, as with
    /// `LengthDelimited`).
    ///
    /// Defaults to 64 KiB (64 * 1024 bytes).
    ///
    /// # Example
    ///
    /// ```
    /// use threadnet::{codec::LengthChunks, Codec};
    ///
    /// let mut codec = LengthChunks::new().keep_capacity(16);
    /// let mut wire = Vec::new();
    /// codec.write(&vec![1u8; 100].into(), &mut wire).unwrap(); // over 16 bytes
    /// let mut input: &[u8] = &wire;
    /// let big = codec.read(&mut input).unwrap().unwrap();
    /// assert_eq!(big.len(), 100);
    /// drop(big); // freed, not kept
    /// ```
    pub fn keep_capacity(mut self, bytes: usize) -> LengthChunks {
        self.pool = Pool::new(bytes);
        self
    }

    /// The largest payload, in bytes, that this codec reads or writes (see
    /// [`LengthDelimited::max_frame_length`]).
    pub fn get_max_frame_length(&self) -> usize {
        self.layout.get_max_frame_length()
    }
}

impl Default for LengthChunks {
    /// Same as [`LengthChunks::new`].
    fn default() -> LengthChunks {
        LengthChunks::new()
    }
}

impl From<LengthDelimited> for LengthChunks {
    /// A codec with the frame layout and limit of `layout` (see [`LengthDelimited`]'s
    /// options), and buffers of up to 64 KiB kept for reuse.
    fn from(layout: LengthDelimited) -> LengthChunks {
        LengthChunks {
            layout,
            pool: Pool::new(DEFAULT_KEEP),
        }
    }
}

impl Clone for LengthChunks {
    /// The same layout and limits, with a new, empty pool: a server clones its codec per
    /// connection, so each connection recycles its own buffers.
    fn clone(&self) -> LengthChunks {
        LengthChunks {
            layout: self.layout.clone(),
            pool: Pool::new(self.pool.keep()),
        }
    }
}

impl super::Codec for LengthChunks {
    type In = Chunk;
    type Out = Chunk;

    /// Reads one frame, as [`LengthDelimited`] does, into a pooled buffer.
    ///
    /// Returns `Ok(None)` when the stream ends before the first byte of a frame.
    ///
    /// # Errors
    ///
    /// Those of [`LengthDelimited`]'s `read`: [`io::ErrorKind::UnexpectedEof`] inside a
    /// frame, [`io::ErrorKind::InvalidData`] for a length over the limit (refused from the
    /// header, before any buffer grows) or that the layout refuses,
    /// [`io::ErrorKind::OutOfMemory`], and any I/O error from `r`.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Chunk>> {
        let mut buf = self.pool.take();
        match self.layout.read_into(r, &mut buf) {
            Ok(true) => Ok(Some(Chunk::pooled(buf, &self.pool))),
            Ok(false) => {
                self.pool.give_back(buf);
                Ok(None)
            }
            Err(e) => {
                self.pool.give_back(buf);
                Err(e)
            }
        }
    }

    /// Writes `msg` as one frame, as [`LengthDelimited`] does.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] when `msg` does not fit the layout or the limit
    /// (nothing is written), and any I/O error from `w`.
    fn write<W: Write>(&self, msg: &Chunk, w: &mut W) -> io::Result<()> {
        self.layout.write_frame(msg, w)
    }

    /// Sets the largest payload, in bytes (see [`LengthDelimited::max_frame_length`]).
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.layout.set_max_frame_length(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::test_util::OneByte;
    use crate::codec::Codec;
    use std::io::{BufReader, ErrorKind};

    fn frames(msgs: &[&[u8]]) -> Vec<u8> {
        let codec = LengthChunks::new();
        let mut wire = Vec::new();
        for m in msgs {
            codec.write(&Chunk::from(m.to_vec()), &mut wire).unwrap();
        }
        wire
    }

    /// After the first frame, every message of up to the first's size is read into the same
    /// buffer, and the pool holds it again once the chunk is dropped.
    #[test]
    fn one_buffer_serves_every_frame() {
        let wire = frames(&[&[7; 300], b"", b"abc", &[9; 300], b"x"]);
        let mut codec = LengthChunks::new();
        let mut r = BufReader::with_capacity(64, &wire[..]);
        let first = codec.read(&mut r).unwrap().unwrap();
        assert_eq!(&first[..], &[7; 300][..]);
        let at = first.as_ptr() as usize;
        drop(first);
        assert_eq!(codec.pool.len(), 1);
        let mut got = Vec::new();
        while let Some(c) = codec.read(&mut r).unwrap() {
            assert_eq!(codec.pool.len(), 0);
            got.push(c.to_vec());
            if !c.is_empty() {
                assert_eq!(c.as_ptr() as usize, at, "a new buffer was allocated");
            }
        }
        assert_eq!(got, [&b""[..], b"abc", &[9; 300], b"x"]);
        assert_eq!(codec.pool.len(), 1, "the buffer is back after EOF");
    }

    #[test]
    fn buffers_past_keep_capacity_are_freed_and_held_chunks_are_new() {
        let wire = frames(&[&[1; 100], &[2; 10], &[3; 10]]);
        let mut codec = LengthChunks::new().keep_capacity(50);
        let mut r: &[u8] = &wire;
        drop(codec.read(&mut r).unwrap().unwrap());
        assert_eq!(codec.pool.len(), 0, "100 bytes are over the 50 kept");
        let a = codec.read(&mut r).unwrap().unwrap();
        let b = codec.read(&mut r).unwrap().unwrap();
        assert_ne!(a.as_ptr(), b.as_ptr());
        drop((a, b));
        assert_eq!(codec.pool.len(), 1, "at most one buffer is kept");
    }

    #[test]
    fn frames_split_into_single_bytes_arrive_whole() {
        let wire = frames(&[b"hello", b"", b"world"]);
        let mut codec = LengthChunks::new();
        let mut r = BufReader::with_capacity(1, OneByte(&wire));
        let mut got = Vec::new();
        while let Some(c) = codec.read(&mut r).unwrap() {
            got.push(c.into_vec());
        }
        assert_eq!(got, [&b"hello"[..], b"", b"world"]);
    }

    #[test]
    fn the_layout_and_limit_are_length_delimiteds() {
        let layout = LengthDelimited::new()
            .length_width(2)
            .length_adjustment(-2)
            .max_frame_length(4);
        let mut codec = LengthChunks::from(layout.clone());
        assert_eq!(codec.get_max_frame_length(), 4);
        let mut wire = Vec::new();
        codec
            .write(&Chunk::from(b"abcd".to_vec()), &mut wire)
            .unwrap();
        assert_eq!(wire, [0, 6, b'a', b'b', b'c', b'd']);
        let mut plain = Vec::new();
        layout.write(&b"abcd".to_vec(), &mut plain).unwrap();
        assert_eq!(wire, plain);
        let err = codec.write(&Chunk::from(vec![0; 5]), &mut Vec::new());
        assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidInput);
        // Over the limit: refused from the header, and no buffer is kept for it.
        let mut r: &[u8] = &[0, 7, 1, 2, 3, 4, 5];
        assert_eq!(
            codec.read(&mut r).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
        assert_eq!(r.len(), 5, "nothing was read past the header");
        codec.set_max_frame_length(5);
        let mut r: &[u8] = &[0, 7, 1, 2, 3, 4, 5];
        assert_eq!(&codec.read(&mut r).unwrap().unwrap()[..], [1, 2, 3, 4, 5]);
    }

    #[test]
    fn eof_inside_a_frame_is_an_error_and_keeps_the_buffer() {
        let mut codec = LengthChunks::new();
        let mut r: &[u8] = &[0, 0, 0, 9, b'a', b'b'];
        let err = codec.read(&mut r).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        assert_eq!(codec.pool.len(), 1);
        let mut r: &[u8] = &[0, 0];
        assert_eq!(
            codec.read(&mut r).unwrap_err().kind(),
            ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn clones_have_pools_of_their_own() {
        let mut a = LengthChunks::new().keep_capacity(8);
        let b = a.clone();
        let wire = frames(&[b"hi"]);
        drop(a.read(&mut &wire[..]).unwrap());
        assert_eq!((a.pool.len(), b.pool.len()), (1, 0));
        assert_eq!(b.pool.keep(), 8);
    }
}
