//! Type-length-value frames, Tao's wire format.
//!
//! The codec and its wire format are documented on [`Tlv`] (this module is private, so its own
//! docs are not rendered).

use std::io::{self, BufRead, Write};

use super::frame_io::{read_message, too_long, write_all_pair};
use super::length::DEFAULT_MAX_FRAME_LENGTH;

/// One message of the [`Tlv`] codec: a message type and its payload.
///
/// The type tells the receiver what the payload means; a [`Router`](crate::Router) hands each
/// payload to the handler registered for its type. Type 0 ([`TlvFrame::HEARTBEAT`]) is
/// reserved for heartbeats: use [`TlvFrame::heartbeat`] to make one and
/// [`TlvFrame::is_heartbeat`] to recognise one.
///
/// ```
/// use threadnet::codec::TlvFrame;
///
/// let hello = TlvFrame::new(1, b"hello".to_vec());
/// assert_eq!((hello.kind, hello.payload.as_slice()), (1, &b"hello"[..]));
/// assert!(!hello.is_heartbeat());
/// assert!(TlvFrame::heartbeat().is_heartbeat());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlvFrame {
    /// The message type (Tao's message number). 0 is reserved for heartbeats.
    pub kind: u32,
    /// The message's bytes, at most the codec's
    /// [`max_frame_length`](Tlv::max_frame_length) long.
    pub payload: Vec<u8>,
}

impl TlvFrame {
    /// The message type reserved for heartbeats: 0. A heartbeat says "still here" and carries
    /// no meaning of its own; a [`Router`](crate::Router) with no handler registered for it
    /// ignores it.
    pub const HEARTBEAT: u32 = 0;

    /// A message of type `kind` carrying `payload`.
    pub fn new(kind: u32, payload: Vec<u8>) -> Self {
        TlvFrame { kind, payload }
    }

    /// A heartbeat: type [`HEARTBEAT`](TlvFrame::HEARTBEAT) (0) and an empty payload, eight
    /// bytes on the wire.
    pub fn heartbeat() -> Self {
        TlvFrame::new(Self::HEARTBEAT, Vec::new())
    }

    /// True if this message has the heartbeat type, 0 (whatever its payload).
    pub fn is_heartbeat(&self) -> bool {
        self.kind == Self::HEARTBEAT
    }
}

/// Type-length-value frames, the wire format of Tao (Go): a 4-byte message type, a 4-byte
/// payload length, both little-endian, then the payload.
///
/// A message is a [`TlvFrame`] both ways. Dispatching messages by type to their handlers is
/// the job of a [`Router`](crate::Router).
///
/// # Wire format
///
/// The message of type 1 with payload `b"hi"` travels as ten bytes:
///
/// ```text
/// +---- type: u32 LE ----+--- len: u32 LE ---+-- payload --+
/// | 0x01 0x00 0x00 0x00  | 0x02 0x00 0x00 0x00 | 0x68 0x69 |
/// +----------------------+-------------------+-------------+
///                                                'h'  'i'
/// ```
///
/// The length counts payload bytes only. An empty payload is a valid frame: the eight header
/// bytes alone. Type 0 is reserved for heartbeats ([`TlvFrame::heartbeat`]).
///
/// # Limits
///
/// Every payload must be at most [`max_frame_length`](Tlv::max_frame_length) bytes (defaults
/// to 1 MiB; the server and client option `max_frame_length` sets it too). When reading, the
/// limit is checked as soon as the header has arrived, before any memory is set aside for the
/// payload: a peer announcing 4 GiB costs nothing, the read fails with
/// [`io::ErrorKind::InvalidData`] at once, naming the length and the limit. When writing, an
/// oversized payload is refused with [`io::ErrorKind::InvalidInput`] and nothing is written.
///
/// # Example
///
/// ```
/// use threadnet::{codec::{Tlv, TlvFrame}, Codec};
///
/// let mut codec = Tlv::new();
///
/// let mut wire = Vec::new();
/// codec.write(&TlvFrame::new(1, b"hi".to_vec()), &mut wire).unwrap();
/// codec.write(&TlvFrame::heartbeat(), &mut wire).unwrap();
/// assert_eq!(wire, [1, 0, 0, 0, 2, 0, 0, 0, b'h', b'i', 0, 0, 0, 0, 0, 0, 0, 0]);
///
/// let mut input: &[u8] = &wire;
/// assert_eq!(codec.read(&mut input).unwrap(), Some(TlvFrame::new(1, b"hi".to_vec())));
/// assert_eq!(codec.read(&mut input).unwrap(), Some(TlvFrame::heartbeat()));
/// assert_eq!(codec.read(&mut input).unwrap(), None); // clean EOF between frames
/// ```
#[derive(Clone, Debug)]
pub struct Tlv {
    /// Largest payload, in bytes.
    max: usize,
}

impl Tlv {
    /// Creates a codec with the default maximum payload of 1 MiB (1024 * 1024 bytes).
    ///
    /// Same as [`Tlv::default`].
    pub fn new() -> Self {
        Tlv {
            max: DEFAULT_MAX_FRAME_LENGTH,
        }
    }

    /// Sets the largest payload, in bytes, that [`read`](super::Codec::read) accepts and
    /// [`write`](super::Codec::write) produces. The 8-byte header is not counted. The length
    /// field has 32 bits, so no payload is ever longer than 4 GiB - 1 bytes, whatever this
    /// says.
    ///
    /// Defaults to 1 MiB (1024 * 1024 bytes).
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use threadnet::{codec::{Tlv, TlvFrame}, Codec};
    ///
    /// let mut codec = Tlv::new().max_frame_length(4);
    /// assert_eq!(codec.get_max_frame_length(), 4);
    ///
    /// let err = codec.write(&TlvFrame::new(1, b"hello".to_vec()), &mut Vec::new()).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    ///
    /// // Type 1, length 5: the header alone is enough to refuse the frame.
    /// let mut input: &[u8] = &[1, 0, 0, 0, 5, 0, 0, 0];
    /// let err = codec.read(&mut input).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidData);
    /// ```
    pub fn max_frame_length(mut self, bytes: usize) -> Self {
        self.max = bytes;
        self
    }

    /// Returns the largest payload, in bytes, that this codec reads or writes (see
    /// [`max_frame_length`](Tlv::max_frame_length)).
    pub fn get_max_frame_length(&self) -> usize {
        self.max
    }
}

impl Default for Tlv {
    /// Same as [`Tlv::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl super::Codec for Tlv {
    type In = TlvFrame;
    type Out = TlvFrame;

    /// Reads one frame.
    ///
    /// Returns `Ok(None)` when the stream ends before the first byte of a frame.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::UnexpectedEof`] when the stream ends inside a header or a payload.
    /// * [`io::ErrorKind::InvalidData`] when the length is more than
    ///   [`max_frame_length`](Tlv::max_frame_length); nothing is read past the header.
    /// * [`io::ErrorKind::OutOfMemory`] when the payload buffer cannot be allocated (possible
    ///   only with a limit raised far above the default).
    /// * Any I/O error from `r`.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<TlvFrame>> {
        let mut header = [0u8; 8];
        if !super::read_frame_start(r, &mut header)? {
            return Ok(None);
        }
        let [k0, k1, k2, k3, l0, l1, l2, l3] = header;
        let kind = u32::from_le_bytes([k0, k1, k2, k3]);
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        let len = match usize::try_from(len) {
            Ok(len) if len <= self.max => len,
            _ => return Err(too_long(len, self.max)),
        };
        let payload = read_message(r, &[], len)?;
        Ok(Some(TlvFrame { kind, payload }))
    }

    /// Writes the header (type, then length) and the payload.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidInput`] when the payload is longer than
    ///   [`max_frame_length`](Tlv::max_frame_length) or than a 32-bit length can announce;
    ///   nothing is written.
    /// * Any I/O error from `w`.
    fn write<W: Write>(&self, msg: &TlvFrame, w: &mut W) -> io::Result<()> {
        let len = msg.payload.len();
        let len32 = match u32::try_from(len) {
            Ok(n) if len <= self.max => n,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "TLV payload of {len} bytes exceeds the maximum frame length of {} bytes",
                        self.max.min(u32::MAX as usize)
                    ),
                ))
            }
        };
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&msg.kind.to_le_bytes());
        header[4..].copy_from_slice(&len32.to_le_bytes());
        write_all_pair(w, &header, &msg.payload)
    }

    /// Sets the largest payload, in bytes; the same as
    /// [`max_frame_length`](Tlv::max_frame_length).
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.max = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::test_util::OneByte;
    use crate::codec::Codec;
    use std::io::{BufReader, ErrorKind};

    fn encode(codec: &Tlv, frame: &TlvFrame) -> Vec<u8> {
        let mut out = Vec::new();
        codec.write(frame, &mut out).unwrap();
        out
    }

    fn frames() -> Vec<TlvFrame> {
        vec![
            TlvFrame::new(1, b"one".to_vec()),
            TlvFrame::heartbeat(),
            TlvFrame::new(0x0102_0304, vec![0xff; 1000]),
            TlvFrame::new(u32::MAX, Vec::new()),
            TlvFrame::new(7, b"seven".to_vec()),
        ]
    }

    #[test]
    fn wire_format_is_little_endian_type_then_length() {
        let codec = Tlv::new();
        assert_eq!(
            encode(&codec, &TlvFrame::new(0x0102_0304, b"abc".to_vec())),
            [4, 3, 2, 1, 3, 0, 0, 0, b'a', b'b', b'c']
        );
        assert_eq!(encode(&codec, &TlvFrame::heartbeat()), [0; 8]);
        let big = TlvFrame::new(9, vec![0; 0x0001_0203]);
        assert_eq!(encode(&codec, &big)[..8], [9, 0, 0, 0, 3, 2, 1, 0]);
    }

    #[test]
    fn defaults_and_heartbeats() {
        assert_eq!(Tlv::new().get_max_frame_length(), 1024 * 1024);
        assert_eq!(Tlv::default().get_max_frame_length(), 1024 * 1024);
        let hb = TlvFrame::heartbeat();
        assert_eq!((hb.kind, hb.payload.len()), (TlvFrame::HEARTBEAT, 0));
        assert!(hb.is_heartbeat());
        assert!(TlvFrame::new(0, b"x".to_vec()).is_heartbeat());
        assert!(!TlvFrame::new(1, Vec::new()).is_heartbeat());
        assert_eq!(TlvFrame::default(), hb);
    }

    #[test]
    fn round_trip_many_frames_in_one_buffer() {
        let mut codec = Tlv::new();
        let mut wire = Vec::new();
        for f in &frames() {
            codec.write(f, &mut wire).unwrap();
        }
        let mut input: &[u8] = &wire;
        let mut got = Vec::new();
        while let Some(f) = codec.read(&mut input).unwrap() {
            // Each payload was allocated once, at its exact size.
            assert_eq!(f.payload.capacity(), f.payload.len());
            got.push(f);
        }
        assert_eq!(got, frames());
    }

    #[test]
    fn frames_split_one_byte_at_a_time() {
        let mut codec = Tlv::new();
        let mut wire = Vec::new();
        for f in &frames() {
            codec.write(f, &mut wire).unwrap();
        }
        let mut r = BufReader::with_capacity(1, OneByte(&wire));
        let mut got = Vec::new();
        while let Some(f) = codec.read(&mut r).unwrap() {
            got.push(f);
        }
        assert_eq!(got, frames());
    }

    #[test]
    fn over_the_limit_is_refused_on_the_header_before_allocating() {
        // Type 7 announcing 4 GiB - 1: refused at once, naming the length and the limit, and
        // nothing after the header is consumed.
        let mut codec = Tlv::new();
        let mut input: &[u8] = &[7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.contains("4294967295"), "{msg}");
        assert!(msg.contains("1048576"), "{msg}");
        assert_eq!(input, [1, 2, 3]);

        // At the limit is fine, one over is not; set_max_frame_length sets the same limit.
        let mut codec = Tlv::new();
        codec.set_max_frame_length(3);
        assert_eq!(codec.get_max_frame_length(), 3);
        let mut input: &[u8] = &[
            1, 0, 0, 0, 3, 0, 0, 0, b'a', b'b', b'c', 1, 0, 0, 0, 4, 0, 0, 0,
        ];
        assert_eq!(
            codec.read(&mut input).unwrap(),
            Some(TlvFrame::new(1, b"abc".to_vec()))
        );
        let err = codec.read(&mut input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert!(err.to_string().contains("frame of 4 bytes"), "{err}");
    }

    #[test]
    fn eof_between_frames_vs_inside_header_vs_inside_payload() {
        let mut codec = Tlv::new();
        let mut input: &[u8] = &[];
        assert_eq!(codec.read(&mut input).unwrap(), None);

        let wire = encode(&codec, &TlvFrame::new(2, b"hello".to_vec()));
        for cut in 1..wire.len() {
            let mut input: &[u8] = &wire[..cut];
            let err = codec.read(&mut input).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "cut at {cut}");
            let mut r = BufReader::with_capacity(1, OneByte(&wire[..cut]));
            let err = codec.read(&mut r).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::UnexpectedEof,
                "one byte, cut at {cut}"
            );
        }
    }

    #[test]
    fn write_over_the_limit_is_invalid_input_and_writes_nothing() {
        let codec = Tlv::new().max_frame_length(4);
        assert_eq!(
            encode(&codec, &TlvFrame::new(1, b"four".to_vec())).len(),
            12
        );
        let mut out = Vec::new();
        let err = codec
            .write(&TlvFrame::new(1, b"fives".to_vec()), &mut out)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("5 bytes"), "{err}");
        assert!(out.is_empty());
    }
}
