//! Length-delimited frames: a fixed-width length prefix, then that many payload bytes.
//!
//! The codec and its wire format are documented on [`LengthDelimited`] (this module is private,
//! so its own docs are not rendered).

use std::io::{self, BufRead, Write};

use super::endian::Endian;
use super::frame_io::{
    discard, header_room, invalid_data, invalid_input, read_message_into, too_long, write_all_pair,
    write_with_zeros,
};

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
/// use threadnet::{codec::LengthDelimited, Codec};
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
    /// use threadnet::{codec::LengthDelimited, Codec};
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
    /// use threadnet::{codec::{Endian, LengthDelimited}, Codec};
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
    /// use threadnet::{codec::LengthDelimited, Codec};
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
    /// use threadnet::{codec::LengthDelimited, Codec};
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
    /// use threadnet::{codec::LengthDelimited, Codec};
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
    /// use threadnet::{codec::LengthDelimited, Codec};
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
        self.endian.read(&header[self.offset..self.head_len()])
    }

    /// Writes `value` into the length field of `header` (a whole header). `value` must fit.
    #[inline]
    fn encode_field(&self, value: u64, header: &mut [u8]) {
        self.endian
            .write(value, &mut header[self.offset..self.offset + self.width]);
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

    /// [`Codec::read`](super::Codec::read) into `message`, which is cleared first and holds
    /// the message after `Ok(true)`; `Ok(false)` at a clean end of stream. Its capacity is
    /// reused when it holds the message (the pooled codec, `LengthChunks`, keeps it).
    ///
    /// # Errors
    ///
    /// As [`Codec::read`](super::Codec::read) (`message` then holds what was read of it).
    pub(super) fn read_into<R: BufRead>(
        &self,
        r: &mut R,
        message: &mut Vec<u8>,
    ) -> io::Result<bool> {
        if self.length_only() {
            let mut header = [0u8; 8];
            let header = &mut header[..self.width];
            if !super::read_frame_start(r, header)? {
                return Ok(false);
            }
            let payload = self.payload_len(header)?;
            read_message_into(r, &[], payload, message)?;
            return Ok(true);
        }
        let head_len = self.head_len();
        let (mut stack, mut heap) = ([0u8; 16], Vec::new());
        let header = header_room(&mut stack, &mut heap, head_len);
        if !super::read_frame_start(r, header)? {
            return Ok(false);
        }
        let payload = self.payload_len(header)?;
        let skip = self.skip();
        let frame = head_len.saturating_add(payload);
        let Some(len) = frame.checked_sub(skip) else {
            return Err(invalid_data(format_args!(
                "frame of {frame} bytes is shorter than the {skip} bytes to skip"
            )));
        };
        if skip > head_len {
            // The first payload bytes are cut too.
            discard(r, skip - head_len, skip)?;
        }
        let kept = header.get(skip..).unwrap_or_default();
        read_message_into(r, kept, len, message)?;
        Ok(true)
    }

    /// [`Codec::write`](super::Codec::write) for a message in any slice.
    ///
    /// # Errors
    ///
    /// As [`Codec::write`](super::Codec::write).
    pub(super) fn write_frame<W: Write>(&self, msg: &[u8], w: &mut W) -> io::Result<()> {
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
        let mut message = Vec::new();
        Ok(self.read_into(r, &mut message)?.then_some(message))
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
        self.write_frame(msg, w)
    }

    /// Sets the largest payload, in bytes; the same as
    /// [`max_frame_length`](LengthDelimited::max_frame_length).
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.max = bytes;
    }
}

#[cfg(test)]
#[path = "length_tests.rs"]
mod tests;
