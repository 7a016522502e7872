//! Length-delimited frames: a fixed-width length prefix, then that many payload bytes.
//!
//! The codec and its wire format are documented on [`LengthDelimited`] (this module is private,
//! so its own docs are not rendered).

use std::io::{self, BufRead, IoSlice, Read, Write};

/// Byte order of the length prefix written and read by [`LengthDelimited`].
///
/// Defaults to [`Endian::Big`], the network byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Endian {
    /// Most significant byte first (network byte order): a 5-byte payload with a 4-byte prefix
    /// is announced as `00 00 00 05`. The default.
    #[default]
    Big,
    /// Least significant byte first: a 5-byte payload with a 4-byte prefix is announced as
    /// `05 00 00 00`.
    Little,
}

/// The default [`LengthDelimited::max_frame_length`]: 8 MiB.
const DEFAULT_MAX_FRAME_LENGTH: usize = 8 * 1024 * 1024;

/// Frames made of a fixed-width length prefix followed by exactly that many payload bytes.
///
/// A message is a `Vec<u8>`; the codec adds the prefix on [`write`](super::Codec::write) and
/// strips it on [`read`](super::Codec::read). The prefix counts payload bytes only: it does
/// not include its own width.
///
/// # Wire format
///
/// With the defaults ([`new`](LengthDelimited::new)): a 4-byte unsigned big-endian length, then
/// the payload. This is byte for byte the default layout of tokio-util's
/// `LengthDelimitedCodec`, so the two can talk to each other. The payload `b"hello"` travels
/// as nine bytes:
///
/// ```text
/// +------ len: u32 BE ------+--------- payload ---------+
/// | 0x00 0x00 0x00 0x05     | 0x68 0x65 0x6c 0x6c 0x6f  |
/// +-------------------------+---------------------------+
///                             'h'  'e'  'l'  'l'  'o'
/// ```
///
/// The prefix width ([`length_width`](LengthDelimited::length_width): 1, 2, 4 or 8 bytes) and
/// byte order ([`endian`](LengthDelimited::endian)) can be changed; the payload is never
/// touched. An empty payload is a valid frame: just the prefix, all zeros.
///
/// # Limits
///
/// Every frame's payload must be at most
/// [`max_frame_length`](LengthDelimited::max_frame_length) bytes (defaults to 8 MiB). When
/// reading, the limit is checked as soon as the prefix has arrived, before any memory is set
/// aside for the payload, so a peer announcing a 4 GiB frame costs nothing: the read fails
/// with [`io::ErrorKind::InvalidData`] at once. When writing, an oversized payload is
/// refused with [`io::ErrorKind::InvalidInput`] and nothing is written.
///
/// # Example
///
/// ```
/// use threadnet::{Codec, LengthDelimited};
///
/// let mut codec = LengthDelimited::new();
///
/// let mut wire = Vec::new();
/// codec.write(&b"hello".to_vec(), &mut wire).unwrap();
/// codec.write(&b"".to_vec(), &mut wire).unwrap();
/// assert_eq!(wire, [0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o', 0, 0, 0, 0]);
///
/// let mut input: &[u8] = &wire;
/// assert_eq!(codec.read(&mut input).unwrap(), Some(b"hello".to_vec()));
/// assert_eq!(codec.read(&mut input).unwrap(), Some(Vec::new()));
/// assert_eq!(codec.read(&mut input).unwrap(), None); // clean EOF between frames
/// ```
#[derive(Clone, Debug)]
pub struct LengthDelimited {
    /// Prefix width in bytes: 1, 2, 4 or 8.
    width: usize,
    /// Prefix byte order.
    endian: Endian,
    /// Largest payload, in bytes.
    max: usize,
}

impl LengthDelimited {
    /// Creates a codec with the defaults: a 4-byte big-endian prefix counting payload bytes
    /// only, and a maximum payload of 8 MiB (8 * 1024 * 1024 bytes).
    ///
    /// Same as [`LengthDelimited::default`].
    pub fn new() -> Self {
        LengthDelimited {
            width: 4,
            endian: Endian::Big,
            max: DEFAULT_MAX_FRAME_LENGTH,
        }
    }

    /// Sets the width of the length prefix, in bytes: 1, 2, 4 or 8.
    ///
    /// A narrower prefix also bounds the payload: a 1-byte prefix can announce at most 255
    /// bytes and a 2-byte prefix at most 65 535, whatever
    /// [`max_frame_length`](LengthDelimited::max_frame_length) says.
    ///
    /// Defaults to 4.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is not 1, 2, 4 or 8.
    ///
    /// # Example
    ///
    /// A 2-byte prefix:
    ///
    /// ```text
    /// +-- len: u16 BE --+----- payload -----+
    /// | 0x00 0x03       | 0x61 0x62 0x63    |
    /// +-----------------+-------------------+
    /// ```
    ///
    /// ```
    /// use threadnet::{Codec, LengthDelimited};
    ///
    /// let mut codec = LengthDelimited::new().length_width(2);
    ///
    /// let mut wire = Vec::new();
    /// codec.write(&b"abc".to_vec(), &mut wire).unwrap();
    /// assert_eq!(wire, [0x00, 0x03, b'a', b'b', b'c']);
    ///
    /// let mut input: &[u8] = &wire;
    /// assert_eq!(codec.read(&mut input).unwrap(), Some(b"abc".to_vec()));
    ///
    /// // 65 536 bytes do not fit a 2-byte prefix.
    /// let err = codec.write(&vec![0; 65_536], &mut Vec::new()).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn length_width(mut self, bytes: usize) -> Self {
        assert!(
            matches!(bytes, 1 | 2 | 4 | 8),
            "LengthDelimited::length_width must be 1, 2, 4 or 8 bytes, got {bytes}"
        );
        self.width = bytes;
        self
    }

    /// Sets the byte order of the length prefix.
    ///
    /// Defaults to [`Endian::Big`].
    ///
    /// # Example
    ///
    /// A 4-byte little-endian prefix:
    ///
    /// ```text
    /// +------ len: u32 LE ------+----- payload -----+
    /// | 0x03 0x00 0x00 0x00     | 0x61 0x62 0x63    |
    /// +-------------------------+-------------------+
    /// ```
    ///
    /// ```
    /// use threadnet::{Codec, Endian, LengthDelimited};
    ///
    /// let mut codec = LengthDelimited::new().endian(Endian::Little);
    ///
    /// let mut wire = Vec::new();
    /// codec.write(&b"abc".to_vec(), &mut wire).unwrap();
    /// assert_eq!(wire, [0x03, 0x00, 0x00, 0x00, b'a', b'b', b'c']);
    ///
    /// let mut input: &[u8] = &wire;
    /// assert_eq!(codec.read(&mut input).unwrap(), Some(b"abc".to_vec()));
    /// ```
    pub fn endian(mut self, endian: Endian) -> Self {
        self.endian = endian;
        self
    }

    /// Sets the largest payload, in bytes, that [`read`](super::Codec::read) accepts and
    /// [`write`](super::Codec::write) produces. The prefix is not counted.
    ///
    /// Defaults to 8 MiB (8 * 1024 * 1024 bytes).
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use threadnet::{Codec, LengthDelimited};
    ///
    /// let mut codec = LengthDelimited::new().max_frame_length(4);
    /// assert_eq!(codec.get_max_frame_length(), 4);
    ///
    /// // Writing: five bytes are refused, nothing is written.
    /// let mut wire = Vec::new();
    /// let err = codec.write(&b"hello".to_vec(), &mut wire).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// assert!(wire.is_empty());
    ///
    /// // Reading: the header alone is enough to refuse the frame.
    /// let mut input: &[u8] = &[0, 0, 0, 5];
    /// let err = codec.read(&mut input).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidData);
    /// ```
    pub fn max_frame_length(mut self, bytes: usize) -> Self {
        self.max = bytes;
        self
    }

    /// Returns the largest payload, in bytes, that this codec reads or writes (see
    /// [`max_frame_length`](LengthDelimited::max_frame_length)).
    pub fn get_max_frame_length(&self) -> usize {
        self.max
    }

    /// The largest value the prefix can hold.
    fn prefix_max(&self) -> u64 {
        if self.width == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * self.width)) - 1
        }
    }

    /// Decodes a prefix of `self.width` bytes.
    fn decode_prefix(&self, h: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        match self.endian {
            Endian::Big => {
                b[8 - h.len()..].copy_from_slice(h);
                u64::from_be_bytes(b)
            }
            Endian::Little => {
                b[..h.len()].copy_from_slice(h);
                u64::from_le_bytes(b)
            }
        }
    }

    /// Encodes `len` into `out`, which is `self.width` bytes long. `len` must fit.
    fn encode_prefix(&self, len: u64, out: &mut [u8]) {
        let w = out.len();
        match self.endian {
            Endian::Big => out.copy_from_slice(&len.to_be_bytes()[8 - w..]),
            Endian::Little => out.copy_from_slice(&len.to_le_bytes()[..w]),
        }
    }
}

impl Default for LengthDelimited {
    /// Same as [`LengthDelimited::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl super::Codec for LengthDelimited {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    /// Reads one frame and returns its payload.
    ///
    /// Returns `Ok(None)` when the stream ends before the first byte of a prefix.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::UnexpectedEof`] when the stream ends inside a prefix or a payload.
    /// * [`io::ErrorKind::InvalidData`] when the prefix announces more than
    ///   [`max_frame_length`](LengthDelimited::max_frame_length) bytes (or, on 32-bit
    ///   targets, more than fits in `usize`); nothing is read past the prefix.
    /// * [`io::ErrorKind::OutOfMemory`] when the payload buffer cannot be allocated (possible
    ///   only with a limit raised far above the default).
    /// * Any I/O error from `r`.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Vec<u8>>> {
        let mut header = [0u8; 8];
        let header = &mut header[..self.width];
        if !super::read_frame_start(r, header)? {
            return Ok(None);
        }
        let announced = self.decode_prefix(header);
        let len = usize::try_from(announced).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("length prefix {announced} does not fit in usize"),
            )
        })?;
        if len > self.max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "frame of {len} bytes exceeds the maximum frame length of {} bytes",
                    self.max
                ),
            ));
        }
        // `len` is within the limit, so reserving it all up front is safe; `take` +
        // `read_to_end` fills the reservation without zeroing it first.
        let mut payload = Vec::new();
        payload.try_reserve_exact(len).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("cannot allocate a frame of {len} bytes"),
            )
        })?;
        r.take(len as u64).read_to_end(&mut payload)?;
        if payload.len() < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "stream ended {} bytes into a {len}-byte payload",
                    payload.len()
                ),
            ));
        }
        Ok(Some(payload))
    }

    /// Writes the prefix and then `msg`.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidInput`] when `msg` is longer than
    ///   [`max_frame_length`](LengthDelimited::max_frame_length) or than the prefix width can
    ///   announce; nothing is written.
    /// * Any I/O error from `w`.
    fn write<W: Write>(&self, msg: &Vec<u8>, w: &mut W) -> io::Result<()> {
        let len = msg.len();
        if len > self.max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "payload of {len} bytes exceeds the maximum frame length of {} bytes",
                    self.max
                ),
            ));
        }
        let len64 = len as u64;
        if len64 > self.prefix_max() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "payload of {len} bytes does not fit a {}-byte length prefix (at most {} bytes)",
                    self.width,
                    self.prefix_max()
                ),
            ));
        }
        let mut header = [0u8; 8];
        let header = &mut header[..self.width];
        self.encode_prefix(len64, header);
        write_all_pair(w, header, msg)
    }

    /// Sets the largest payload, in bytes; the same as
    /// [`max_frame_length`](LengthDelimited::max_frame_length).
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.max = bytes;
    }
}

/// Writes `a` then `b` to `w`, as one vectored write when the writer takes it all at once
/// (a `Vec<u8>` always does), looping like `write_all` otherwise.
pub(crate) fn write_all_pair<W: Write>(w: &mut W, a: &[u8], b: &[u8]) -> io::Result<()> {
    let mut slices = [IoSlice::new(a), IoSlice::new(b)];
    let mut bufs: &mut [IoSlice<'_>] = &mut slices;
    // Drops leading empty slices, so an empty `bufs` means everything is written.
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write whole frame",
                ))
            }
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::test_util::OneByte;
    use crate::codec::Codec;
    use std::io::{BufReader, ErrorKind};

    fn encode(codec: &LengthDelimited, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        codec.write(&payload.to_vec(), &mut out).unwrap();
        out
    }

    fn read_all(codec: &mut LengthDelimited, mut input: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while let Some(f) = codec.read(&mut input).unwrap() {
            frames.push(f);
        }
        frames
    }

    #[test]
    fn default_layout_matches_tokio_util() {
        let codec = LengthDelimited::new();
        assert_eq!(
            encode(&codec, b"hello"),
            [0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']
        );
        assert_eq!(encode(&codec, b""), [0, 0, 0, 0]);
        let big = vec![7u8; 0x0001_0203];
        let wire = encode(&codec, &big);
        assert_eq!(&wire[..4], [0, 1, 2, 3]);
        assert_eq!(wire.len(), 4 + big.len());
    }

    #[test]
    fn defaults() {
        let d = LengthDelimited::default();
        assert_eq!(d.get_max_frame_length(), 8 * 1024 * 1024);
        assert_eq!(d.width, 4);
        assert_eq!(d.endian, Endian::Big);
        assert_eq!(Endian::default(), Endian::Big);
    }

    #[test]
    fn round_trip_many_frames_in_one_buffer() {
        let mut codec = LengthDelimited::new();
        let frames: Vec<Vec<u8>> = vec![
            b"one".to_vec(),
            Vec::new(),
            vec![0xff; 1000],
            b"four".to_vec(),
        ];
        let mut wire = Vec::new();
        for f in &frames {
            codec.write(f, &mut wire).unwrap();
        }
        let got = read_all(&mut codec, &wire);
        assert_eq!(got, frames);
        // Each payload buffer was allocated once, at its exact size, and never grown.
        for f in &got {
            assert_eq!(f.capacity(), f.len());
        }
    }

    #[test]
    fn every_width_and_endian() {
        let payload = vec![0xabu8; 258]; // 0x0102: the byte order shows
        let cases: [(usize, Endian, &[u8]); 6] = [
            (2, Endian::Big, &[0x01, 0x02]),
            (2, Endian::Little, &[0x02, 0x01]),
            (4, Endian::Big, &[0, 0, 0x01, 0x02]),
            (4, Endian::Little, &[0x02, 0x01, 0, 0]),
            (8, Endian::Big, &[0, 0, 0, 0, 0, 0, 0x01, 0x02]),
            (8, Endian::Little, &[0x02, 0x01, 0, 0, 0, 0, 0, 0]),
        ];
        for (width, endian, header) in cases {
            let mut codec = LengthDelimited::new().length_width(width).endian(endian);
            let wire = encode(&codec, &payload);
            assert_eq!(&wire[..width], header, "width {width} {endian:?}");
            assert_eq!(&wire[width..], &payload[..]);
            assert_eq!(read_all(&mut codec, &wire), vec![payload.clone()]);
        }
        for endian in [Endian::Big, Endian::Little] {
            let mut codec = LengthDelimited::new().length_width(1).endian(endian);
            let wire = encode(&codec, &payload[..200]);
            assert_eq!(wire[0], 200);
            assert_eq!(read_all(&mut codec, &wire), vec![payload[..200].to_vec()]);
        }
    }

    #[test]
    #[should_panic(expected = "1, 2, 4 or 8")]
    fn bad_width_panics() {
        let _ = LengthDelimited::new().length_width(3);
    }

    #[test]
    fn write_refuses_what_the_prefix_cannot_hold() {
        let c1 = LengthDelimited::new().length_width(1);
        let mut out = Vec::new();
        c1.write(&vec![0; 255], &mut out).unwrap();
        assert_eq!(out[0], 255);
        let mut out = Vec::new();
        let err = c1.write(&vec![0; 256], &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(out.is_empty());

        let c2 = LengthDelimited::new().length_width(2);
        assert!(c2.write(&vec![0; 65_535], &mut Vec::new()).is_ok());
        let err = c2.write(&vec![0; 65_536], &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn write_over_max_is_invalid_input_and_writes_nothing() {
        let codec = LengthDelimited::new().max_frame_length(4);
        let mut out = Vec::new();
        codec.write(&b"four".to_vec(), &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 4, b'f', b'o', b'u', b'r']);
        let mut out = Vec::new();
        let err = codec.write(&b"fives".to_vec(), &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(out.is_empty());
    }

    #[test]
    fn read_over_max_is_rejected_on_the_header() {
        // A header announcing 4 GiB - 1 with the default 8 MiB limit: refused at once, and
        // nothing after the header is consumed.
        let mut codec = LengthDelimited::new();
        let wire = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut input: &[u8] = &wire;
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.contains("4294967295"), "{msg}");
        assert!(msg.contains("8388608"), "{msg}");
        assert_eq!(input, [1, 2, 3]);

        // Exactly at the limit is fine, one over is not.
        let mut codec = LengthDelimited::new().max_frame_length(3);
        let mut input: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 4];
        assert_eq!(codec.read(&mut input).unwrap(), Some(b"abc".to_vec()));
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    }

    #[test]
    fn read_huge_u64_prefix_errors_without_panicking() {
        // With the limit lifted, a u64::MAX prefix must still fail cleanly (usize overflow on
        // 32-bit targets, an impossible allocation on 64-bit ones) instead of aborting.
        let mut codec = LengthDelimited::new()
            .length_width(8)
            .max_frame_length(usize::MAX);
        let mut input: &[u8] = &[0xff; 8];
        let err = codec.read(&mut input).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidData | ErrorKind::OutOfMemory),
            "{err:?}"
        );

        // With the default limit, a large u64 prefix is InvalidData.
        let mut codec = LengthDelimited::new().length_width(8);
        let mut input: &[u8] = &[0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            codec.read(&mut input).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
    }

    #[test]
    fn set_max_frame_length_applies_to_read_and_write() {
        let mut codec = LengthDelimited::new();
        codec.set_max_frame_length(2);
        assert_eq!(codec.get_max_frame_length(), 2);
        let err = codec.write(&b"abc".to_vec(), &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let mut input: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c'];
        assert_eq!(
            codec.read(&mut input).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
    }

    #[test]
    fn eof_at_boundary_vs_inside_header_vs_inside_payload() {
        let mut codec = LengthDelimited::new();

        let mut input: &[u8] = &[];
        assert_eq!(codec.read(&mut input).unwrap(), None);

        let mut input: &[u8] = &[0, 0, 0, 1, b'x'];
        assert_eq!(codec.read(&mut input).unwrap(), Some(b"x".to_vec()));
        assert_eq!(codec.read(&mut input).unwrap(), None);

        for cut in 1..4 {
            let wire = [0u8, 0, 0, 5];
            let mut input: &[u8] = &wire[..cut];
            let err = codec.read(&mut input).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "header cut at {cut}");
        }

        let mut input: &[u8] = &[0, 0, 0, 5];
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);

        let mut input: &[u8] = &[0, 0, 0, 5, b'h', b'e'];
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }

    #[test]
    fn frames_split_one_byte_at_a_time() {
        for (width, endian) in [(1, Endian::Big), (4, Endian::Little), (8, Endian::Big)] {
            let mut codec = LengthDelimited::new().length_width(width).endian(endian);
            let frames = vec![b"alpha".to_vec(), Vec::new(), vec![9u8; 100]];
            let mut wire = Vec::new();
            for f in &frames {
                codec.write(f, &mut wire).unwrap();
            }
            let mut r = BufReader::with_capacity(1, OneByte(&wire));
            let mut got = Vec::new();
            while let Some(f) = codec.read(&mut r).unwrap() {
                got.push(f);
            }
            assert_eq!(got, frames, "width {width} {endian:?}");
        }
    }

    #[test]
    fn eof_inside_payload_with_one_byte_reads() {
        let mut codec = LengthDelimited::new();
        let wire = [0u8, 0, 0, 3, b'a', b'b'];
        let mut r = BufReader::with_capacity(1, OneByte(&wire));
        let err = codec.read(&mut r).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }

    /// A writer that accepts at most `n` bytes per call and does not override
    /// `write_vectored`, so it exercises the partial-write loop.
    struct Trickle {
        out: Vec<u8>,
        n: usize,
        calls: usize,
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

    #[test]
    fn partial_writes_are_completed() {
        let codec = LengthDelimited::new();
        let mut w = Trickle {
            out: Vec::new(),
            n: 3,
            calls: 0,
        };
        codec.write(&b"hello".to_vec(), &mut w).unwrap();
        assert_eq!(w.out, [0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        assert!(w.calls >= 3);
    }

    #[test]
    fn write_zero_is_an_error_not_a_hang() {
        let codec = LengthDelimited::new();
        let mut sink: &mut [u8] = &mut [0u8; 2];
        let err = codec.write(&b"hello".to_vec(), &mut sink).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WriteZero);
    }
}
