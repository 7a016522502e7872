//! Unframed bytes in recycled buffers: [`RawChunks`] and its message type [`Chunk`].
//!
//! Both are documented on the types (this module is private, so its own docs are not
//! rendered).

use std::fmt;
use std::io::{self, BufRead, Write};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use crate::sync::lock;

/// The default [`RawChunks::chunk_size`]: 32 KiB, the connections' default read buffer.
const DEFAULT_CHUNK_SIZE: usize = 32 * 1024;

/// Where a [`Chunk`]'s buffer goes back to when it is dropped: one buffer, of at most `keep`
/// bytes of capacity (a larger one is freed). One is all an echo or a forwarder needs, since
/// a chunk sent on is dropped (and comes back) before the next is read; and a single slot
/// next to its lock is one cache line to touch per message, where a list of buffers would be
/// two (the list's own allocation).
#[derive(Debug)]
pub(super) struct Pool {
    slot: Mutex<Option<Vec<u8>>>,
    keep: usize,
}

impl Pool {
    /// An empty pool that keeps buffers of up to `keep` bytes of capacity.
    pub(super) fn new(keep: usize) -> Arc<Pool> {
        Arc::new(Pool {
            slot: Mutex::new(None),
            keep,
        })
    }

    /// A buffer from the pool (empty or not: callers set its length), or a new, empty one.
    pub(super) fn take(&self) -> Vec<u8> {
        lock(&self.slot).take().unwrap_or_default()
    }

    /// Keeps `buf` for the next message if the pool is empty and `buf` is not too large.
    pub(super) fn give_back(&self, buf: Vec<u8>) {
        if buf.capacity() > self.keep || buf.capacity() == 0 {
            return;
        }
        let mut slot = lock(&self.slot);
        if slot.is_none() {
            *slot = Some(buf);
        }
    }

    /// The largest capacity, in bytes, of a buffer kept.
    pub(super) fn keep(&self) -> usize {
        self.keep
    }

    /// Buffers waiting in the pool.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        usize::from(lock(&self.slot).is_some())
    }
}

/// The same framing as [`Raw`](super::Raw) (none: a message is whatever bytes have
/// arrived), with messages in recycled buffers: a [`Chunk`] instead of a new `Vec<u8>` each.
///
/// `Raw` allocates a `Vec` for every chunk and copies the chunk into it. `RawChunks` reads
/// into a buffer of [`chunk_size`](RawChunks::chunk_size) bytes taken from a small pool of
/// its own, and the buffer goes back to the pool when the `Chunk` is dropped: after the first
/// chunk, a connection that forwards or echoes what it reads (`conn.send(chunk)`) allocates
/// nothing more. When the connection's read buffer holds nothing, the socket reads straight
/// into the chunk's buffer (the connection's reader bypasses its buffer for reads of half its
/// size or more); bytes already buffered are copied once, as `Raw` does.
///
/// Every clone of the codec has its own pool, and a server clones its codec once per
/// connection: the pool is per connection, and keeps at most one buffer of `chunk_size`
/// bytes (plus the chunks the handler still holds) for the connection's life. For
/// connections that are mostly idle, [`Raw`](super::Raw) costs less memory.
///
/// # Wire format
///
/// As [`Raw`](super::Raw): none. Writing sends a chunk's bytes unchanged; reading returns what
/// one read makes available, at most `chunk_size` bytes and never nothing. `Ok(None)` is the
/// end of the stream.
///
/// # Example
///
/// ```
/// use std::io::BufReader;
/// use threadnet::{codec::{Chunk, RawChunks}, Codec};
///
/// let mut codec = RawChunks::new().chunk_size(4);
///
/// let mut wire = Vec::new();
/// codec.write(&Chunk::from(b"abc".to_vec()), &mut wire).unwrap();
/// codec.write(&Chunk::from(b"def".to_vec()), &mut wire).unwrap();
/// assert_eq!(wire, b"abcdef"); // no framing added
///
/// let mut input = BufReader::new(&wire[..]);
/// let first = codec.read(&mut input).unwrap().unwrap();
/// assert_eq!(&first[..], b"abcd"); // at most chunk_size bytes
/// drop(first); // its buffer goes back to the pool, for the next chunk
/// assert_eq!(&codec.read(&mut input).unwrap().unwrap()[..], b"ef");
/// assert!(codec.read(&mut input).unwrap().is_none());
/// ```
#[derive(Debug)]
pub struct RawChunks {
    size: usize,
    pool: Arc<Pool>,
}

impl RawChunks {
    /// A codec with chunks of up to 32 KiB (the connections' default read buffer).
    pub fn new() -> RawChunks {
        RawChunks {
            size: DEFAULT_CHUNK_SIZE,
            pool: Pool::new(usize::MAX),
        }
    }

    /// Sets the largest chunk [`read`](super::Codec::read) returns, in bytes: the size of
    /// each pooled buffer. Keep it at least half the connection's
    /// [`read_buffer_size`](crate::ConnOptions::read_buffer_size), so that reads on an
    /// empty read buffer go straight into the chunk.
    ///
    /// Defaults to 32 KiB (32 * 1024 bytes).
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is 0.
    pub fn chunk_size(mut self, bytes: usize) -> RawChunks {
        assert!(bytes > 0, "RawChunks::chunk_size must be at least 1 byte");
        self.size = bytes;
        self.pool = Pool::new(usize::MAX);
        self
    }

    /// A buffer of `size` bytes from the pool, or a new one.
    fn take(&self) -> Vec<u8> {
        let mut buf = self.pool.take();
        // A chunk may have been made from a `Vec` of another size: only pooled buffers of
        // `size` are kept, but a chunk size set later needs the length checked.
        buf.resize(self.size, 0);
        buf
    }
}

impl Default for RawChunks {
    /// Same as [`RawChunks::new`].
    fn default() -> RawChunks {
        RawChunks::new()
    }
}

impl Clone for RawChunks {
    /// The same chunk size, with a new, empty pool: a server clones its codec per connection,
    /// so each connection recycles its own buffers.
    fn clone(&self) -> RawChunks {
        RawChunks {
            size: self.size,
            pool: Pool::new(usize::MAX),
        }
    }
}

impl super::Codec for RawChunks {
    type In = Chunk;
    type Out = Chunk;

    /// Returns the bytes one read makes available (at least one, at most
    /// [`chunk_size`](RawChunks::chunk_size)) in a pooled buffer, or `Ok(None)` at the end of
    /// the stream.
    ///
    /// # Errors
    ///
    /// Any I/O error from `r` other than [`io::ErrorKind::Interrupted`], which is retried.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Chunk>> {
        let mut buf = self.take();
        let n = loop {
            match r.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.pool.give_back(buf);
                    return Err(e);
                }
            }
        };
        if n == 0 {
            self.pool.give_back(buf);
            return Ok(None);
        }
        Ok(Some(Chunk {
            buf,
            len: n,
            home: Some(Arc::clone(&self.pool)),
        }))
    }

    /// Writes the chunk's bytes unchanged.
    ///
    /// # Errors
    ///
    /// Any I/O error from `w`.
    fn write<W: Write>(&self, msg: &Chunk, w: &mut W) -> io::Result<()> {
        w.write_all(msg)
    }
}

/// Bytes read by [`RawChunks`] (a raw chunk) or [`LengthChunks`](super::LengthChunks) (one
/// frame's message), in a buffer that goes back to its connection's pool when the chunk is
/// dropped. Dereferences to `[u8]`; send it on as it is with
/// [`Connection::send`](crate::Connection::send) on a connection of either codec (no copy on
/// the way to the socket), or take the bytes out with [`into_vec`](Chunk::into_vec).
///
/// A `Chunk` made [`from`](Chunk::from) a `Vec<u8>` holds that `Vec`, and belongs to no pool.
///
/// A chunk read by `RawChunks` holds a whole buffer of
/// [`chunk_size`](RawChunks::chunk_size) bytes however few of them it carries: drop it (or
/// send it on) soon. To keep its bytes for longer, copy them (`chunk.to_vec()`), which
/// allocates just their length.
///
/// # Example
///
/// ```
/// use threadnet::codec::Chunk;
///
/// let mut chunk = Chunk::from(b"hello".to_vec());
/// assert_eq!(chunk.len(), 5);
/// chunk[0] = b'j';
/// assert_eq!(&chunk[..], b"jello");
/// assert_eq!(chunk.into_vec(), b"jello");
/// ```
pub struct Chunk {
    /// The storage: `len` bytes of it are the chunk.
    buf: Vec<u8>,
    len: usize,
    home: Option<Arc<Pool>>,
}

impl Chunk {
    /// A chunk of all of `buf`, which goes back to `pool` when the chunk is dropped.
    pub(super) fn pooled(buf: Vec<u8>, pool: &Arc<Pool>) -> Chunk {
        Chunk {
            len: buf.len(),
            buf,
            home: Some(Arc::clone(pool)),
        }
    }

    /// The chunk's bytes as a `Vec<u8>` of exactly its length, without a copy. A pooled
    /// buffer is kept by the `Vec` (truncated, with its capacity), not returned to the pool.
    pub fn into_vec(mut self) -> Vec<u8> {
        self.home = None;
        let mut v = std::mem::take(&mut self.buf);
        v.truncate(self.len);
        v
    }
}

impl From<Vec<u8>> for Chunk {
    /// A chunk of exactly the bytes of `v`, in `v` itself (no copy, no pool).
    fn from(v: Vec<u8>) -> Chunk {
        Chunk {
            len: v.len(),
            buf: v,
            home: None,
        }
    }
}

impl Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl DerefMut for Chunk {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("len", &self.len)
            .field("pooled", &self.home.is_some())
            .finish()
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(pool) = self.home.take() {
            pool.give_back(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::test_util::OneByte;
    use crate::codec::Codec;
    use std::io::BufReader;

    /// Every chunk's buffer comes from the pool once the first has been dropped: the pool
    /// holds one buffer, whatever the traffic.
    #[test]
    fn buffers_are_recycled_and_the_pool_stays_bounded() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let mut codec = RawChunks::new().chunk_size(100);
        let mut r = BufReader::with_capacity(64, &data[..]);
        let mut got = Vec::new();
        let mut first = None;
        while let Some(c) = codec.read(&mut r).unwrap() {
            assert!(!c.is_empty() && c.len() <= 100);
            got.extend_from_slice(&c);
            let at = c.buf.as_ptr() as usize;
            assert_eq!(*first.get_or_insert(at), at, "a new buffer was allocated");
            assert_eq!(codec.pool.len(), 0);
            drop(c);
            assert_eq!(codec.pool.len(), 1);
        }
        assert_eq!(got, data);
        // Held chunks are new buffers; dropped, no more than one is kept.
        let mut r: &[u8] = &data;
        let held: Vec<Chunk> = (0..5)
            .map(|_| codec.read(&mut r).unwrap().unwrap())
            .collect();
        drop(held);
        assert_eq!(codec.pool.len(), 1);
    }

    #[test]
    fn one_byte_reads_give_one_byte_chunks_in_order() {
        let mut codec = RawChunks::new();
        let mut r = BufReader::with_capacity(1, OneByte(b"abc"));
        let mut got = Vec::new();
        while let Some(c) = codec.read(&mut r).unwrap() {
            assert_eq!(c.len(), 1);
            got.push(c[0]);
        }
        assert_eq!(got, b"abc");
    }

    #[test]
    fn a_read_bypasses_an_empty_read_buffer_no_larger_than_the_chunk() {
        // A `BufReader` whose buffer is no larger than the chunk reads straight into it: the
        // whole 3-byte arrival comes back in one chunk, not cut by the 2-byte buffer.
        let mut codec = RawChunks::new().chunk_size(8);
        let mut r = BufReader::with_capacity(2, &b"xyz"[..]);
        assert_eq!(&codec.read(&mut r).unwrap().unwrap()[..], b"xyz");
    }

    #[test]
    fn write_is_verbatim_and_into_vec_keeps_the_bytes() {
        let mut out = Vec::new();
        let c = Chunk::from(vec![0, 0xff, b'\n']);
        RawChunks::new().write(&c, &mut out).unwrap();
        assert_eq!(out, [0, 0xff, b'\n']);
        let mut codec = RawChunks::new();
        let mut input: &[u8] = b"hello";
        let c = codec.read(&mut input).unwrap().unwrap();
        assert_eq!(format!("{c:?}"), "Chunk { len: 5, pooled: true }");
        assert_eq!(c.into_vec(), b"hello");
        assert_eq!(codec.pool.len(), 0, "into_vec keeps the buffer");
    }

    #[test]
    fn clones_have_pools_of_their_own() {
        let mut a = RawChunks::new().chunk_size(16);
        let b = a.clone();
        let mut input: &[u8] = b"hi";
        drop(a.read(&mut input).unwrap());
        assert_eq!(a.pool.len(), 1);
        assert_eq!(b.pool.len(), 0);
        assert_eq!(b.size, 16);
    }

    #[test]
    #[should_panic(expected = "at least 1 byte")]
    fn a_zero_chunk_size_panics() {
        let _ = RawChunks::new().chunk_size(0);
    }
}
