//! Length-delimited frames: a fixed-width length prefix, then that many payload bytes.
//!
//! The codec and its wire format are documented on [`LengthDelimited`] (this module is private,
//! so its own docs are not rendered).

use std::fmt;
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

/// The default [`LengthDelimited::max_frame_length`]: 1 MiB (see
/// [`ConnOptions`](crate::ConnOptions) for why).
pub(crate) const DEFAULT_MAX_FRAME_LENGTH: usize = 1024 * 1024;

/// The largest [`LengthDelimited::length_field_offset`]: 64 KiB. The header is read into a
/// buffer of its own before the length is known, so its size is bounded like every buffer.
const MAX_LENGTH_FIELD_OFFSET: usize = 64 * 1024;

/// Frames made of a header that holds a length field, followed by the payload that the length
/// announces. The layouts are those of tokio-util's `length_delimited::Builder` and Netty's
/// `LengthFieldBasedFrameDecoder`, with the same option names as tokio-util.
///
/// A message is a `Vec<u8>`; the codec adds the header on [`write`](super::Codec::write) and
/// strips it on [`read`](super::Codec::read).
///
/// # Wire format
///
/// With the defaults ([`new`](LengthDelimited::new)): a 4-byte unsigned big-endian length
/// counting payload bytes only, then the payload. This is byte for byte the default layout of
/// tokio-util's `LengthDelimitedCodec`, so the two can talk to each other. The payload
/// `b"hello"` travels as nine bytes:
///
/// ```text
/// +------ len: u32 BE ------+--------- payload ---------+
/// | 0x00 0x00 0x00 0x05     | 0x68 0x65 0x6c 0x6c 0x6f  |
/// +-------------------------+---------------------------+
///                             'h'  'e'  'l'  'l'  'o'
/// ```
///
/// An empty payload is a valid frame: just the header, with a length of zero.
///
/// # Layouts
///
/// Three words name the parts of a frame:
///
/// * the **header** is the first `length_field_offset + length_width` bytes: whatever comes
///   before the length field, then the length field;
/// * the **payload** is everything after the header: `length field + length_adjustment` bytes;
/// * the **message**, what `read` returns and `write` takes, is the frame without its first
///   `num_skip` bytes (by default, without its header: the payload).
///
/// | option | what it sets | defaults to |
/// |---|---|---|
/// | [`length_width`](LengthDelimited::length_width) | bytes in the length field, 1 to 8 | 4 |
/// | [`endian`](LengthDelimited::endian) | byte order of the length field | [`Endian::Big`] |
/// | [`length_field_offset`](LengthDelimited::length_field_offset) | header bytes before the length field | 0 |
/// | [`length_adjustment`](LengthDelimited::length_adjustment) | added to the length field to give the payload length (may be negative) | 0 |
/// | [`num_skip`](LengthDelimited::num_skip) | bytes cut from the start of each frame by `read` | the header: offset + width |
/// | [`max_frame_length`](LengthDelimited::max_frame_length) | largest payload, after adjustment | 1 MiB |
///
/// **Writing.** `write(msg)` sends the frame that `read` turns back into `msg`: `num_skip`
/// zero bytes, then `msg`, with the length field computed and written over its place. So with
/// the default `num_skip` the bytes before the length field go out as zeros (tokio-util's
/// encoder writes only the length field and the data, so its own decoder cannot read them
/// back once there is an offset); to send real bytes there, keep the header in the message
/// with `num_skip(0)`, and `write` fills in just its length field (whatever `msg` holds there
/// is replaced).
///
/// The layouts, each with the options that give it and the message that `read` returns.
/// Each option's own documentation has a runnable example.
///
/// The default: a 4-byte length, then the payload. Message: the payload.
///
/// ```text
/// +---- len: u32 ----+---- payload ----+
/// | 00 00 00 03      | 'a' 'b' 'c'     |
/// +------------------+-----------------+
/// ```
///
/// A 2-byte length, `length_width(2)`. Message: the payload.
///
/// ```text
/// +-- len: u16 --+---- payload ----+
/// | 00 03        | 'a' 'b' 'c'     |
/// +--------------+-----------------+
/// ```
///
/// The length counts the header too (as in goes' frame protocol): `length_adjustment(-4)`,
/// the header's size taken back off. There is no separate flag for this: a negative
/// adjustment says it, as it does in Netty and tokio-util, and a flag would be a second way
/// to say the same thing. Message: the payload.
///
/// ```text
/// +---- len: u32 ----+---- payload ----+
/// | 00 00 00 07      | 'a' 'b' 'c'     |      7 = 4 (header) + 3 (payload)
/// +------------------+-----------------+
/// ```
///
/// Other header bytes before the length field, `length_field_offset(2)`. Message: the
/// payload; `write` sends zeros for the two bytes before the length field.
///
/// ```text
/// +- hdr: 2 bytes -+---- len: u32 ----+---- payload ----+
/// | ca fe          | 00 00 00 03      | 'a' 'b' 'c'     |
/// +----------------+------------------+-----------------+
/// ```
///
/// A length that leaves out part of the payload (Netty's example of a second header after
/// the length field): `length_field_offset(1)`, `length_width(2)`, `length_adjustment(1)`.
/// Message: `fe 'a' 'b' 'c'`, everything after the length field.
///
/// ```text
/// +- hdr1 -+-- len: u16 --+- hdr2 -+---- data ----+
/// | ca     | 00 03        | fe     | 'a' 'b' 'c'  |      payload = 3 + 1 bytes
/// +--------+--------------+--------+--------------+
/// ```
///
/// The header kept in the message, `num_skip(0)`. Message: the whole frame, `00 00 00 03 'a'
/// 'b' 'c'`; `write` takes the same and sets its length field.
///
/// ```text
/// +---- len: u32 ----+---- payload ----+
/// | 00 00 00 03      | 'a' 'b' 'c'     |      all 7 bytes are the message
/// +------------------+-----------------+
/// ```
///
/// A `num_skip` larger than the header also cuts the first payload bytes from the message
/// (Netty allows it too); `write` sends zeros for them.
///
/// # Limits
///
/// Every frame's payload, as computed from the length field and the adjustment, must be at
/// most [`max_frame_length`](LengthDelimited::max_frame_length) bytes (defaults to 1 MiB);
/// header bytes kept in the message are not counted. When reading, the limit is checked as
/// soon as the header has arrived, before any memory is set aside for the payload, so a peer
/// announcing a 4 GiB frame costs nothing: the read fails with
/// [`io::ErrorKind::InvalidData`] at once. A length field whose adjustment makes it negative
/// is refused the same way. When writing, a message that does not fit the layout is refused
/// with [`io::ErrorKind::InvalidInput`] and nothing is written.
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
    /// Length field width in bytes: 1 to 8.
    width: usize,
    /// Length field byte order.
    endian: Endian,
    /// Largest payload (after adjustment), in bytes.
    max: usize,
    /// Header bytes before the length field.
    offset: usize,
    /// Added to the length field to give the payload length.
    adjustment: isize,
    /// Bytes cut from the start of each frame by `read`; `None` means the whole header.
    num_skip: Option<usize>,
}

impl LengthDelimited {
    /// Creates a codec with the defaults: a 4-byte big-endian length field at the start of
    /// the frame, counting payload bytes only, a maximum payload of 1 MiB (1024 * 1024
    /// bytes), and messages that are the payload alone.
    ///
    /// Same as [`LengthDelimited::default`].
    pub fn new() -> Self {
        LengthDelimited {
            width: 4,
            endian: Endian::Big,
            max: DEFAULT_MAX_FRAME_LENGTH,
            offset: 0,
            adjustment: 0,
            num_skip: None,
        }
    }

    /// Sets the width of the length field, in bytes: 1 to 8 (tokio-util's
    /// `length_field_length`).
    ///
    /// A narrower field also bounds the payload: a 1-byte field can announce at most 255
    /// bytes and a 2-byte field at most 65 535 (before adjustment), whatever
    /// [`max_frame_length`](LengthDelimited::max_frame_length) says.
    ///
    /// Defaults to 4.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is 0 or more than 8.
    ///
    /// # Example
    ///
    /// A 2-byte length field:
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
    /// // 65 536 bytes do not fit a 2-byte length field.
    /// let err = codec.write(&vec![0; 65_536], &mut Vec::new()).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn length_width(mut self, bytes: usize) -> Self {
        assert!(
            (1..=8).contains(&bytes),
            "LengthDelimited::length_width must be 1 to 8 bytes, got {bytes}"
        );
        self.width = bytes;
        self
    }

    /// Sets the byte order of the length field.
    ///
    /// Defaults to [`Endian::Big`].
    ///
    /// # Example
    ///
    /// A 4-byte little-endian length field:
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

    /// Sets how many header bytes come before the length field, in bytes (tokio-util's
    /// `length_field_offset`, Netty's `lengthFieldOffset`).
    ///
    /// By default [`read`](super::Codec::read) cuts them off with the rest of the header and
    /// [`write`](super::Codec::write) sends zeros in their place; keep them in the message
    /// with [`num_skip`](LengthDelimited::num_skip)`(0)` to read and write them.
    ///
    /// Defaults to 0.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is more than 65 536 (64 KiB).
    ///
    /// # Example
    ///
    /// Two bytes of another header field before a 4-byte length:
    ///
    /// ```text
    /// +- hdr: 2 bytes -+------ len: u32 BE ------+--- payload ---+
    /// | 0xca 0xfe      | 0x00 0x00 0x00 0x03     | 'a' 'b' 'c'   |
    /// +----------------+-------------------------+---------------+
    /// ```
    ///
    /// ```
    /// use threadnet::{Codec, LengthDelimited};
    ///
    /// let mut codec = LengthDelimited::new().length_field_offset(2);
    ///
    /// let mut input: &[u8] = &[0xca, 0xfe, 0, 0, 0, 3, b'a', b'b', b'c'];
    /// assert_eq!(codec.read(&mut input).unwrap(), Some(b"abc".to_vec()));
    ///
    /// // The bytes before the length field are not part of the message: write sends zeros.
    /// let mut wire = Vec::new();
    /// codec.write(&b"abc".to_vec(), &mut wire).unwrap();
    /// assert_eq!(wire, [0, 0, 0, 0, 0, 3, b'a', b'b', b'c']);
    ///
    /// // Kept in the message, they are read and written as they are.
    /// let mut keep = LengthDelimited::new().length_field_offset(2).num_skip(0);
    /// let frame = vec![0xca, 0xfe, 0, 0, 0, 3, b'a', b'b', b'c'];
    /// let mut input: &[u8] = &frame;
    /// assert_eq!(keep.read(&mut input).unwrap(), Some(frame.clone()));
    /// let mut wire = Vec::new();
    /// keep.write(&frame, &mut wire).unwrap();
    /// assert_eq!(wire, frame);
    /// ```
    pub fn length_field_offset(mut self, bytes: usize) -> Self {
        assert!(
            bytes <= MAX_LENGTH_FIELD_OFFSET,
            "LengthDelimited::length_field_offset must be at most {MAX_LENGTH_FIELD_OFFSET} bytes, got {bytes}"
        );
        self.offset = bytes;
        self
    }

    /// Sets a number of bytes, possibly negative, added to the length field's value to give
    /// the payload length: the number of bytes after the length field (tokio-util's
    /// `length_adjustment`, Netty's `lengthAdjustment`).
    ///
    /// * A length that counts the header too (goes' frame protocol, Netty's third example):
    ///   `-(length_field_offset + length_width)`, so `-4` with the default header. This is
    ///   the one way to say it; there is no separate flag.
    /// * A length that leaves out a field that follows it: that field's width.
    ///
    /// [`max_frame_length`](LengthDelimited::max_frame_length) applies to the adjusted length.
    /// A length field that the adjustment makes negative is an
    /// [`io::ErrorKind::InvalidData`] error when reading; a message too short for the
    /// adjustment is an [`io::ErrorKind::InvalidInput`] error when writing.
    ///
    /// Defaults to 0.
    ///
    /// # Example
    ///
    /// A 4-byte length that counts itself:
    ///
    /// ```text
    /// +------ len: u32 BE ------+--- payload ---+
    /// | 0x00 0x00 0x00 0x07     | 'a' 'b' 'c'   |      7 = 4 + 3
    /// +-------------------------+---------------+
    /// ```
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use threadnet::{Codec, LengthDelimited};
    ///
    /// let mut codec = LengthDelimited::new().length_adjustment(-4);
    ///
    /// let mut wire = Vec::new();
    /// codec.write(&b"abc".to_vec(), &mut wire).unwrap();
    /// assert_eq!(wire, [0, 0, 0, 7, b'a', b'b', b'c']);
    ///
    /// let mut input: &[u8] = &wire;
    /// assert_eq!(codec.read(&mut input).unwrap(), Some(b"abc".to_vec()));
    ///
    /// // A length of 2 cannot count a 4-byte header.
    /// let mut input: &[u8] = &[0, 0, 0, 2];
    /// assert_eq!(codec.read(&mut input).unwrap_err().kind(), ErrorKind::InvalidData);
    /// ```
    pub fn length_adjustment(mut self, bytes: isize) -> Self {
        self.adjustment = bytes;
        self
    }

    /// Sets how many bytes [`read`](super::Codec::read) cuts from the start of each frame;
    /// the rest is the message (tokio-util's `num_skip`, Netty's `initialBytesToStrip`).
    /// [`write`](super::Codec::write) sends that many zero bytes before the message, with the
    /// length field written over its place, so it takes what `read` returns.
    ///
    /// `0` keeps the whole header in the message. A value larger than the header also cuts
    /// the first payload bytes; a frame shorter than `num_skip` is an
    /// [`io::ErrorKind::InvalidData`] error.
    ///
    /// Defaults to the whole header: `length_field_offset + length_width` bytes, whatever
    /// those are set to.
    ///
    /// # Example
    ///
    /// The header kept in the message:
    ///
    /// ```text
    /// +-- len: u16 BE --+--- payload ---+
    /// | 0x00 0x03       | 'a' 'b' 'c'   |      the message: all five bytes
    /// +-----------------+---------------+
    /// ```
    ///
    /// ```
    /// use threadnet::{Codec, LengthDelimited};
    ///
    /// let mut codec = LengthDelimited::new().length_width(2).num_skip(0);
    ///
    /// let mut input: &[u8] = &[0, 3, b'a', b'b', b'c'];
    /// assert_eq!(codec.read(&mut input).unwrap(), Some(vec![0, 3, b'a', b'b', b'c']));
    ///
    /// // write fills in the length field of the message it is given.
    /// let mut wire = Vec::new();
    /// codec.write(&vec![0, 0, b'x', b'y'], &mut wire).unwrap();
    /// assert_eq!(wire, [0, 2, b'x', b'y']);
    /// ```
    pub fn num_skip(mut self, bytes: usize) -> Self {
        self.num_skip = Some(bytes);
        self
    }

    /// Sets the largest payload, in bytes, that [`read`](super::Codec::read) accepts and
    /// [`write`](super::Codec::write) produces. The payload is everything after the header,
    /// as announced by the length field plus [`length_adjustment`]; header bytes kept in the
    /// message by [`num_skip`] are not counted.
    ///
    /// Defaults to 1 MiB (1024 * 1024 bytes): a peer can make a connection hold at most this
    /// much for one frame. Up to `usize::MAX` (the widest header is 8 bytes).
    ///
    /// [`length_adjustment`]: LengthDelimited::length_adjustment
    /// [`num_skip`]: LengthDelimited::num_skip
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

    /// Header length: the bytes up to and including the length field.
    #[inline]
    fn head_len(&self) -> usize {
        self.offset + self.width
    }

    /// Bytes cut from the start of each frame by `read`.
    #[inline]
    fn skip(&self) -> usize {
        self.num_skip.unwrap_or(self.head_len())
    }

    /// The largest value the length field can hold.
    #[inline]
    fn field_max(&self) -> u64 {
        if self.width == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * self.width)) - 1
        }
    }

    /// The length field of `header` (a whole header).
    #[inline]
    fn decode_field(&self, header: &[u8]) -> u64 {
        let h = &header[self.offset..self.head_len()];
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

    /// Writes `value` into the length field of `header` (a whole header). `value` must fit.
    #[inline]
    fn encode_field(&self, value: u64, header: &mut [u8]) {
        let w = self.width;
        let out = &mut header[self.offset..self.offset + w];
        match self.endian {
            Endian::Big => out.copy_from_slice(&value.to_be_bytes()[8 - w..]),
            Endian::Little => out.copy_from_slice(&value.to_le_bytes()[..w]),
        }
    }

    /// True for the layouts whose header is the length field alone and whose message is the
    /// payload (the default, and any width, byte order or adjustment): `read` and `write`
    /// take a shorter way for them, with the header in a fixed 8-byte buffer.
    #[inline]
    fn length_only(&self) -> bool {
        self.offset == 0 && self.num_skip.is_none()
    }

    /// The length field that announces a payload of `payload` bytes, checked against the
    /// limit, the adjustment and the field's width.
    #[inline]
    fn field_for(&self, payload: usize) -> io::Result<u64> {
        let field = match self.adjustment {
            a if a >= 0 => (payload as u64).checked_sub(a as u64),
            a => (payload as u64).checked_add(a.unsigned_abs() as u64),
        };
        match field {
            Some(field) if payload <= self.max && field <= self.field_max() => Ok(field),
            _ => Err(self.bad_payload(payload)),
        }
    }

    /// Why [`field_for`](Self::field_for) refused `payload`.
    #[cold]
    fn bad_payload(&self, payload: usize) -> io::Error {
        if payload > self.max {
            return invalid_input(format_args!(
                "payload of {payload} bytes exceeds the maximum frame length of {} bytes",
                self.max
            ));
        }
        invalid_input(format_args!(
            "payload of {payload} bytes needs a length field of {}, which does not fit a {}-byte field (0 to {})",
            payload as i128 - self.adjustment as i128,
            self.width,
            self.field_max()
        ))
    }

    /// The payload length announced by `header`: its length field plus the adjustment,
    /// checked against zero and the limit.
    #[inline]
    fn payload_len(&self, header: &[u8]) -> io::Result<usize> {
        let field = self.decode_field(header);
        match field.checked_add_signed(self.adjustment as i64) {
            Some(len) if len <= self.max as u64 => Ok(len as usize),
            _ => Err(self.bad_length(field)),
        }
    }

    /// Why [`payload_len`](Self::payload_len) refused the length field `field`.
    #[cold]
    fn bad_length(&self, field: u64) -> io::Error {
        match i128::from(field) + self.adjustment as i128 {
            len if len < 0 => invalid_data(format_args!(
                "length field {field} with length adjustment {} gives a negative payload length ({len})",
                self.adjustment
            )),
            len => too_long(len, self.max),
        }
    }
}

/// The error of a frame whose announced payload of `len` bytes is over the limit `max`.
pub(crate) fn too_long(len: impl fmt::Display, max: usize) -> io::Error {
    invalid_data(format_args!(
        "frame of {len} bytes exceeds the maximum frame length of {max} bytes"
    ))
}

/// An [`io::ErrorKind::InvalidData`] error; out of line, so that the checks on the hot
/// path stay small.
#[cold]
fn invalid_data(what: fmt::Arguments<'_>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// An [`io::ErrorKind::InvalidInput`] error, out of line like [`invalid_data`].
#[cold]
fn invalid_input(what: fmt::Arguments<'_>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// `len` bytes of room for a frame header: in `stack` unless a long
/// [`LengthDelimited::length_field_offset`] needs more, then in `heap`.
#[inline]
fn header_room<'a>(stack: &'a mut [u8; 16], heap: &'a mut Vec<u8>, len: usize) -> &'a mut [u8] {
    if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        heap
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

    /// Reads one frame and returns it without its first
    /// [`num_skip`](LengthDelimited::num_skip) bytes (by default: its payload).
    ///
    /// Returns `Ok(None)` when the stream ends before the first byte of a frame.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::UnexpectedEof`] when the stream ends inside a frame.
    /// * [`io::ErrorKind::InvalidData`] when the length field plus the adjustment is
    ///   negative or more than [`max_frame_length`](LengthDelimited::max_frame_length) (nothing
    ///   is read past the header), or the frame is shorter than `num_skip`.
    /// * [`io::ErrorKind::OutOfMemory`] when the message buffer cannot be allocated (possible
    ///   only with a limit raised far above the default).
    /// * Any I/O error from `r`.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Vec<u8>>> {
        if self.length_only() {
            let mut header = [0u8; 8];
            let header = &mut header[..self.width];
            if !super::read_frame_start(r, header)? {
                return Ok(None);
            }
            let payload = self.payload_len(header)?;
            return read_message(r, &[], payload).map(Some);
        }
        let head_len = self.head_len();
        let (mut stack, mut heap) = ([0u8; 16], Vec::new());
        let header = header_room(&mut stack, &mut heap, head_len);
        if !super::read_frame_start(r, header)? {
            return Ok(None);
        }
        let payload = self.payload_len(header)?;
        let skip = self.skip();
        let frame = head_len.saturating_add(payload);
        let Some(message) = frame.checked_sub(skip) else {
            return Err(invalid_data(format_args!(
                "frame of {frame} bytes is shorter than the {skip} bytes to skip"
            )));
        };
        if skip > head_len {
            // The first payload bytes are cut too.
            let cut = (skip - head_len) as u64;
            if io::copy(&mut r.take(cut), &mut io::sink())? < cut {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended inside the {skip} bytes to skip of a frame"),
                ));
            }
        }
        let kept = header.get(skip..).unwrap_or_default();
        read_message(r, kept, message).map(Some)
    }

    /// Writes the frame that [`read`](super::Codec::read) turns back into `msg`:
    /// [`num_skip`](LengthDelimited::num_skip) zero bytes, then `msg`, with the length field
    /// computed and written over its place (by default: the header, then `msg`).
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidInput`] when `msg` is shorter than the header bytes it must
    ///   carry (with a `num_skip` smaller than the header), when its payload is longer than
    ///   [`max_frame_length`](LengthDelimited::max_frame_length), or when the length field it
    ///   needs is negative or does not fit the field's width; nothing is written.
    /// * Any I/O error from `w`.
    fn write<W: Write>(&self, msg: &Vec<u8>, w: &mut W) -> io::Result<()> {
        if self.length_only() {
            let field = self.field_for(msg.len())?;
            let mut header = [0u8; 8];
            let header = &mut header[..self.width];
            self.encode_field(field, header);
            return write_all_pair(w, header, msg);
        }
        let (head_len, skip) = (self.head_len(), self.skip());
        let Some(payload) = skip.saturating_add(msg.len()).checked_sub(head_len) else {
            return Err(invalid_input(format_args!(
                "message of {} bytes is shorter than the {} header bytes it must carry",
                msg.len(),
                head_len - skip
            )));
        };
        let field = self.field_for(payload)?;
        let (mut stack, mut heap) = ([0u8; 16], Vec::new());
        let header = header_room(&mut stack, &mut heap, head_len);
        // The header bytes past `skip` come from the message.
        let kept = head_len.saturating_sub(skip);
        if kept > 0 {
            header[head_len - kept..].copy_from_slice(&msg[..kept]);
        }
        self.encode_field(field, header);
        if skip > head_len {
            write_with_zeros(w, header, skip - head_len, msg)
        } else {
            write_all_pair(w, header, &msg[kept..])
        }
    }

    /// Sets the largest payload, in bytes; the same as
    /// [`max_frame_length`](LengthDelimited::max_frame_length).
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.max = bytes;
    }
}

/// Writes `header`, `zeros` zero bytes (the payload bytes that `read` cuts off when
/// `num_skip` is larger than the header) and `msg`.
#[cold]
fn write_with_zeros<W: Write>(
    w: &mut W,
    header: &[u8],
    zeros: usize,
    msg: &[u8],
) -> io::Result<()> {
    w.write_all(header)?;
    io::copy(&mut io::repeat(0).take(zeros as u64), w)?;
    w.write_all(msg)
}

/// Reads a message of `len` bytes that starts with `kept` (bytes already read, such as a
/// header kept in the message) and goes on with the next `len - kept.len()` bytes of `r`.
/// The caller has checked `len` against its limit: it is reserved in one allocation, which
/// `take` + `read_to_end` fill without zeroing it first.
///
/// # Errors
///
/// [`io::ErrorKind::OutOfMemory`] when the buffer cannot be allocated,
/// [`io::ErrorKind::UnexpectedEof`] when the stream ends first, or any I/O error from `r`.
#[inline]
pub(crate) fn read_message<R: BufRead>(r: &mut R, kept: &[u8], len: usize) -> io::Result<Vec<u8>> {
    let mut message = Vec::new();
    message.try_reserve_exact(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("cannot allocate a frame of {len} bytes"),
        )
    })?;
    if !kept.is_empty() {
        message.extend_from_slice(kept);
    }
    let rest = len - kept.len();
    let got = r.take(rest as u64).read_to_end(&mut message)?;
    if got < rest {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("stream ended {got} bytes into a {rest}-byte payload"),
        ));
    }
    Ok(message)
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

    const HELLO: &[u8] = b"HELLO, WORLD";

    /// `prefix` followed by `HELLO`.
    fn hello(prefix: &[u8]) -> Vec<u8> {
        [prefix, HELLO].concat()
    }

    /// One layout: the codec, a frame on the wire, the message `read` makes of it, and what
    /// `write` sends for that message (the wire frame with its skipped bytes other than the
    /// length field zeroed).
    struct Layout {
        name: &'static str,
        codec: LengthDelimited,
        wire: Vec<u8>,
        message: Vec<u8>,
        written: Vec<u8>,
    }

    /// The examples of Netty's `LengthFieldBasedFrameDecoder` documentation, in its order,
    /// then the layouts of this codec's docs that they do not cover.
    fn layouts() -> Vec<Layout> {
        let ld = LengthDelimited::new;
        let same = |name, codec, wire: Vec<u8>| Layout {
            name,
            codec,
            message: wire.clone(),
            written: wire.clone(),
            wire,
        };
        vec![
            same(
                "netty 1: 2-byte length, header kept",
                ld().length_width(2).num_skip(0),
                hello(&[0x00, 0x0c]),
            ),
            Layout {
                name: "netty 2: 2-byte length, header stripped",
                codec: ld().length_width(2),
                wire: hello(&[0x00, 0x0c]),
                message: HELLO.to_vec(),
                written: hello(&[0x00, 0x0c]),
            },
            same(
                "netty 3: 2-byte length counting the header, kept",
                ld().length_width(2).length_adjustment(-2).num_skip(0),
                hello(&[0x00, 0x0e]),
            ),
            same(
                "netty 4: 3-byte length after a 2-byte header, kept",
                ld().length_field_offset(2).length_width(3).num_skip(0),
                hello(&[0xca, 0xfe, 0x00, 0x00, 0x0c]),
            ),
            same(
                "netty 5: 3-byte length before a 2-byte header, kept",
                ld().length_width(3).length_adjustment(2).num_skip(0),
                hello(&[0x00, 0x00, 0x0c, 0xca, 0xfe]),
            ),
            Layout {
                name: "netty 6: hdr1, 2-byte length, hdr2; hdr1 and length stripped",
                codec: ld()
                    .length_field_offset(1)
                    .length_width(2)
                    .length_adjustment(1)
                    .num_skip(3),
                wire: hello(&[0xca, 0x00, 0x0c, 0xfe]),
                message: hello(&[0xfe]),
                written: hello(&[0x00, 0x00, 0x0c, 0xfe]),
            },
            Layout {
                name: "netty 7: as 6, the length counting the whole frame",
                codec: ld()
                    .length_field_offset(1)
                    .length_width(2)
                    .length_adjustment(-3)
                    .num_skip(3),
                wire: hello(&[0xca, 0x00, 0x10, 0xfe]),
                message: hello(&[0xfe]),
                written: hello(&[0x00, 0x00, 0x10, 0xfe]),
            },
            Layout {
                name: "4-byte length counting the header (goes)",
                codec: ld().length_adjustment(-4),
                wire: hello(&[0, 0, 0, 16]),
                message: HELLO.to_vec(),
                written: hello(&[0, 0, 0, 16]),
            },
            Layout {
                name: "2-byte header before a little-endian 4-byte length, stripped",
                codec: ld().length_field_offset(2).endian(Endian::Little),
                wire: hello(&[0xca, 0xfe, 12, 0, 0, 0]),
                message: HELLO.to_vec(),
                written: hello(&[0, 0, 12, 0, 0, 0]),
            },
            Layout {
                name: "num_skip past the header: the first payload byte cut",
                codec: ld().length_width(1).num_skip(2),
                wire: hello(&[13, b'>']),
                message: HELLO.to_vec(),
                written: hello(&[13, 0]),
            },
            same(
                "20-byte header before the length (heap header), kept",
                ld().length_field_offset(20).length_width(2).num_skip(0),
                hello(&[[7u8; 20].as_slice(), &[0, 12]].concat()),
            ),
        ]
    }

    #[test]
    fn every_layout_decodes_its_known_bytes() {
        for mut l in layouts() {
            let mut input: &[u8] = &l.wire;
            let got = l.codec.read(&mut input).unwrap();
            assert_eq!(got.as_deref(), Some(&l.message[..]), "{}", l.name);
            assert_eq!(l.codec.read(&mut input).unwrap(), None, "{}", l.name);
        }
    }

    #[test]
    fn every_layout_writes_what_it_reads_back() {
        for mut l in layouts() {
            let wire = encode(&l.codec, &l.message);
            assert_eq!(wire, l.written, "{}", l.name);
            assert_eq!(read_all(&mut l.codec, &wire), vec![l.message], "{}", l.name);
        }
    }

    #[test]
    fn every_layout_round_trips_many_frames_whole_and_one_byte_at_a_time() {
        for mut l in layouts() {
            // Messages of other lengths, built from the known one: its kept header (if
            // any) then payload bytes of several sizes.
            let kept = l.message.len() - HELLO.len();
            let msgs: Vec<Vec<u8>> = [0, 1, 5, 200]
                .iter()
                .map(|&n| [&l.message[..kept], &vec![b'z'; n][..]].concat())
                .chain([l.message.clone()])
                .collect();
            let mut wire = Vec::new();
            for m in &msgs {
                l.codec.write(m, &mut wire).unwrap();
            }
            // What comes back is what was sent, its length field (if the message holds it)
            // set by `write`: the frame without its first `num_skip` bytes.
            let skip = l.codec.skip();
            let msgs: Vec<Vec<u8>> = msgs
                .iter()
                .map(|m| encode(&l.codec, m)[skip..].to_vec())
                .collect();
            assert_eq!(msgs.last(), Some(&l.message), "{}", l.name);
            assert_eq!(read_all(&mut l.codec, &wire), msgs, "{}", l.name);
            let mut r = BufReader::with_capacity(1, OneByte(&wire));
            let mut got = Vec::new();
            while let Some(f) = l.codec.read(&mut r).unwrap() {
                got.push(f);
            }
            assert_eq!(got, msgs, "{} (one byte at a time)", l.name);
        }
    }

    #[test]
    fn every_layout_reports_eof_inside_a_frame() {
        for mut l in layouts() {
            for cut in 1..l.wire.len() {
                let mut input: &[u8] = &l.wire[..cut];
                let err = l.codec.read(&mut input).unwrap_err();
                assert_eq!(
                    err.kind(),
                    ErrorKind::UnexpectedEof,
                    "{} cut at {cut}",
                    l.name
                );
            }
        }
    }

    #[test]
    fn a_negative_adjusted_length_is_invalid_data_not_a_panic() {
        // A length counting a 4-byte header cannot be below 4.
        let mut codec = LengthDelimited::new().length_adjustment(-4);
        for field in 0..4u8 {
            let wire = [0, 0, 0, field, 1, 2, 3];
            let mut input: &[u8] = &wire;
            let err = codec.read(&mut input).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData);
            assert!(err.to_string().contains("negative"), "{err}");
            assert_eq!(input, [1, 2, 3], "nothing past the header is read");
        }
        // Extreme adjustments with extreme fields neither wrap nor panic.
        let mut codec = LengthDelimited::new()
            .length_width(8)
            .length_adjustment(isize::MIN)
            .max_frame_length(usize::MAX);
        let mut input: &[u8] = &[0; 8];
        assert_eq!(
            codec.read(&mut input).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
        let mut codec = LengthDelimited::new()
            .length_width(8)
            .length_adjustment(isize::MAX)
            .max_frame_length(usize::MAX);
        let mut input: &[u8] = &[0xff; 8];
        let err = codec.read(&mut input).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidData | ErrorKind::OutOfMemory),
            "{err:?}"
        );
    }

    #[test]
    fn write_refuses_messages_the_layout_cannot_carry() {
        let refused = |codec: &LengthDelimited, msg: &[u8]| {
            let mut out = Vec::new();
            let err = codec.write(&msg.to_vec(), &mut out).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(out.is_empty(), "nothing is written");
            err.to_string()
        };
        // The header kept in the message: a message must at least hold it.
        let keep = LengthDelimited::new().length_field_offset(2).num_skip(0);
        let msg = refused(&keep, &[1, 2, 3, 4, 5]);
        assert!(
            msg.contains("5 bytes") && msg.contains("6 header bytes"),
            "{msg}"
        );
        assert_eq!(encode(&keep, &[1, 2, 9, 9, 9, 9]), [1, 2, 0, 0, 0, 0]);
        // A length that leaves out one byte after it: the payload must hold that byte.
        let hdr2 = LengthDelimited::new().length_adjustment(1);
        refused(&hdr2, b"");
        assert_eq!(encode(&hdr2, b"x"), [0, 0, 0, 0, b'x']);
        // A 1-byte length counting itself holds at most 255 - 1 payload bytes.
        let tiny = LengthDelimited::new().length_width(1).length_adjustment(-1);
        assert_eq!(encode(&tiny, &[0; 254])[0], 255);
        let msg = refused(&tiny, &[0; 255]);
        assert!(msg.contains("256"), "{msg}");
    }

    #[test]
    fn the_limit_applies_to_the_adjusted_length_before_allocating() {
        // Length counting the header, at most 5 payload bytes.
        let mut codec = LengthDelimited::new()
            .length_adjustment(-4)
            .max_frame_length(5);
        let mut input: &[u8] = &[0, 0, 0, 9, 1, 2, 3, 4, 5, 0, 0, 0, 10, 1];
        assert_eq!(codec.read(&mut input).unwrap(), Some(vec![1, 2, 3, 4, 5]));
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.to_string().contains("frame of 6 bytes"), "{err}");
        assert!(err.to_string().contains("of 5 bytes"), "{err}");
        assert_eq!(input, [1]);
        assert!(codec.write(&vec![0; 5], &mut Vec::new()).is_ok());
        let err = codec.write(&vec![0; 6], &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);

        // A positive adjustment: a field of 5 announces 6 payload bytes.
        let mut codec = LengthDelimited::new()
            .length_width(2)
            .length_adjustment(1)
            .max_frame_length(5);
        let mut input: &[u8] = &[0, 5, 1];
        assert_eq!(
            codec.read(&mut input).unwrap_err().kind(),
            ErrorKind::InvalidData
        );

        // 4 GiB - 1 announced, adjusted by -4: refused on the header, nothing allocated
        // (a 1 MiB limit), nothing read past it.
        let mut codec = LengthDelimited::new().length_adjustment(-4);
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2];
        let err = codec.read(&mut input).unwrap_err();
        assert!(err.to_string().contains("4294967291"), "{err}");
        assert_eq!(input, [1, 2]);

        // Header bytes kept in the message are not counted.
        let mut codec = LengthDelimited::new().num_skip(0).max_frame_length(3);
        let frame = vec![0, 0, 0, 3, b'a', b'b', b'c'];
        assert_eq!(encode(&codec, &frame), frame);
        assert_eq!(read_all(&mut codec, &frame), vec![frame]);
    }

    #[test]
    fn a_frame_shorter_than_num_skip_is_invalid_data() {
        let mut codec = LengthDelimited::new().length_width(2).num_skip(4);
        let mut input: &[u8] = &[0, 1, b'x', 0, 2, b'a', b'b'];
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.to_string().contains("3 bytes"), "{err}");
        // Exactly num_skip bytes: an empty message.
        let mut input: &[u8] = &[0, 2, b'a', b'b'];
        assert_eq!(codec.read(&mut input).unwrap(), Some(Vec::new()));
    }

    #[test]
    #[should_panic(expected = "at most 65536")]
    fn an_offset_over_64_kib_panics() {
        let _ = LengthDelimited::new().length_field_offset(64 * 1024 + 1);
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
        assert_eq!(d.get_max_frame_length(), 1024 * 1024);
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
    #[should_panic(expected = "1 to 8")]
    fn width_zero_panics() {
        let _ = LengthDelimited::new().length_width(0);
    }

    #[test]
    #[should_panic(expected = "1 to 8")]
    fn width_nine_panics() {
        let _ = LengthDelimited::new().length_width(9);
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
        // A header announcing 4 GiB - 1 with the default 1 MiB limit: refused at once, and
        // nothing after the header is consumed.
        let mut codec = LengthDelimited::new();
        let wire = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut input: &[u8] = &wire;
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.contains("4294967295"), "{msg}");
        assert!(msg.contains("1048576"), "{msg}");
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
