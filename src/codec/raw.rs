//! Unframed bytes: each read hands over whatever has arrived.
//!
//! The codec is documented on [`Raw`] (this module is private, so its own docs are not
//! rendered).

use std::io::{self, BufRead, Write};

/// No framing at all: a message is whatever bytes have arrived, and bytes written go out as
/// they are.
///
/// This is the right codec for byte streams that have no message boundaries of their own, or
/// whose boundaries the application finds itself: proxies, echo and pingpong benchmarks,
/// protocols parsed elsewhere.
///
/// # Wire format
///
/// None: the bytes of a written message are sent unchanged, and how the stream is cut into
/// received messages depends only on when bytes arrive and on the size of the connection's
/// read buffer. Two writes of 3 bytes may be read as one message of 6 bytes, or as 1 and 5:
///
/// ```text
/// sent:      +-- msg 1: 3 bytes --+-- msg 2: 3 bytes --+
///            | 0x61 0x62 0x63     | 0x64 0x65 0x66     |
///            +--------------------+--------------------+
/// received:  +- 1 -+------- 5 bytes -------+      (one possible cut)
///            | 0x61| 0x62 0x63 0x64 0x65 0x66|
///            +-----+-------------------------+
/// ```
///
/// # Reading
///
/// [`read`](super::Codec::read) returns the bytes one [`BufRead::fill_buf`] makes available:
/// whatever is already buffered or, when the buffer is empty, the result of one read from the
/// underlying stream. A message is therefore never empty and never longer than the read
/// buffer, so no limit is needed and [`set_max_frame_length`](super::Codec::set_max_frame_length)
/// does nothing. `Ok(None)` means the stream has ended; every end of stream is clean, since
/// there are no frames to be inside of.
///
/// # Example
///
/// ```
/// use std::io::BufReader;
/// use threadnet::{codec::Raw, Codec};
///
/// let mut codec = Raw;
///
/// let mut wire = Vec::new();
/// codec.write(&b"abc".to_vec(), &mut wire).unwrap();
/// codec.write(&b"def".to_vec(), &mut wire).unwrap();
/// assert_eq!(wire, b"abcdef"); // no framing added
///
/// // Messages are cut by the read buffer (4 bytes here), not by the writes.
/// let mut input = BufReader::with_capacity(4, &wire[..]);
/// assert_eq!(codec.read(&mut input).unwrap(), Some(b"abcd".to_vec()));
/// assert_eq!(codec.read(&mut input).unwrap(), Some(b"ef".to_vec()));
/// assert_eq!(codec.read(&mut input).unwrap(), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Raw;

impl super::Codec for Raw {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    /// Returns all bytes that one [`BufRead::fill_buf`] makes available (at least one), or
    /// `Ok(None)` at the end of the stream.
    ///
    /// # Errors
    ///
    /// Any I/O error from `r` other than [`io::ErrorKind::Interrupted`], which is retried.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Vec<u8>>> {
        let chunk = loop {
            match r.fill_buf() {
                Ok(buf) => break buf.to_vec(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if chunk.is_empty() {
            return Ok(None);
        }
        r.consume(chunk.len());
        Ok(Some(chunk))
    }

    /// Writes `msg` unchanged.
    ///
    /// # Errors
    ///
    /// Any I/O error from `w`.
    fn write<W: Write>(&self, msg: &Vec<u8>, w: &mut W) -> io::Result<()> {
        w.write_all(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use std::io::{BufReader, ErrorKind, Read};

    /// Returns its chunks one per `read`, with an `Interrupted` error before each.
    struct Chunks {
        chunks: Vec<&'static [u8]>,
        interrupt: bool,
    }

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::Error::from(ErrorKind::Interrupted));
            }
            if self.chunks.is_empty() {
                return Ok(0);
            }
            let c = self.chunks.remove(0);
            assert!(c.len() <= buf.len());
            buf[..c.len()].copy_from_slice(c);
            Ok(c.len())
        }
    }

    #[test]
    fn write_is_verbatim() {
        let mut out = Vec::new();
        Raw.write(&b"ab".to_vec(), &mut out).unwrap();
        Raw.write(&Vec::new(), &mut out).unwrap();
        Raw.write(&vec![0, 0xff, b'\n'], &mut out).unwrap();
        assert_eq!(out, [b'a', b'b', 0, 0xff, b'\n']);
    }

    #[test]
    fn read_is_bounded_by_the_read_buffer() {
        let data: Vec<u8> = (0..=255).collect();
        let mut r = BufReader::with_capacity(100, &data[..]);
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        while let Some(chunk) = Raw.read(&mut r).unwrap() {
            sizes.push(chunk.len());
            all.extend(chunk);
        }
        assert_eq!(sizes, [100, 100, 56]);
        assert_eq!(all, data);
    }

    #[test]
    fn read_returns_each_arrival_separately() {
        let src = Chunks {
            chunks: vec![b"abc", b"d", b"efgh"],
            interrupt: false,
        };
        let mut r = BufReader::with_capacity(64, src);
        let mut codec = Raw;
        assert_eq!(codec.read(&mut r).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(codec.read(&mut r).unwrap(), Some(b"d".to_vec()));
        assert_eq!(codec.read(&mut r).unwrap(), Some(b"efgh".to_vec()));
        assert_eq!(codec.read(&mut r).unwrap(), None);
    }

    #[test]
    fn read_hands_over_what_is_already_buffered() {
        let mut input: &[u8] = b"hello world";
        assert_eq!(Raw.read(&mut input).unwrap(), Some(b"hello world".to_vec()));
        assert_eq!(Raw.read(&mut input).unwrap(), None);
        let mut empty: &[u8] = b"";
        assert_eq!(Raw.read(&mut empty).unwrap(), None);
    }

    #[test]
    fn round_trip_preserves_the_byte_stream() {
        let mut wire = Vec::new();
        let msgs: [&[u8]; 3] = [b"one", b"two", b"three"];
        for m in msgs {
            Raw.write(&m.to_vec(), &mut wire).unwrap();
        }
        let mut r = BufReader::with_capacity(4, &wire[..]);
        let mut got = Vec::new();
        while let Some(c) = Raw.read(&mut r).unwrap() {
            assert!(!c.is_empty() && c.len() <= 4);
            got.extend(c);
        }
        assert_eq!(got, b"onetwothree");
    }
}
