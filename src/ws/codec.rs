//! The frame codec: frames in, messages out (RFC 6455, sections 5 and 7.4).

use std::io::{self, BufRead, Write};

use super::error::WsError;
use super::frame::{self, BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT};
use crate::codec::Codec;

/// The default largest frame [`WsCodec`] reads or writes: 1 MiB of payload.
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;
/// The default largest message (all fragments together) [`WsCodec`] reads: 4 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// One WebSocket message, or one control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message: valid UTF-8, all fragments joined.
    Text(String),
    /// A binary message, all fragments joined.
    Binary(Vec<u8>),
    /// A ping (at most 125 bytes of payload); the answer is a [`Pong`](Message::Pong) with the
    /// same payload, which [`AutoReply`](super::AutoReply) sends.
    Ping(Vec<u8>),
    /// A pong (at most 125 bytes of payload).
    Pong(Vec<u8>),
    /// A close frame; `None` when it carried no status code. Sending one starts the closing
    /// handshake; receiving one means the peer sends nothing more.
    Close(Option<CloseFrame>),
}

/// The status code and reason of a close frame (RFC 6455, section 5.5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code (section 7.4), e.g. 1000 for a normal closure.
    pub code: u16,
    /// Why, in UTF-8; at most 123 bytes so that the frame fits in 125.
    pub reason: String,
}

/// Whether a close frame may carry `code` (RFC 6455, section 7.4 and the IANA registry):
/// 1000–1003, 1007–1014 and 3000–4999. 1005, 1006 and 1015 are for reporting only and must
/// never be sent; the rest of 0–2999 is reserved.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// WebSocket frames (RFC 6455). Server side ([`new`](Self::new)): reads masked client frames
/// as [`Message`]s and writes unmasked server frames. Client side ([`client`](Self::client)):
/// the other way round, each frame masked with a fresh random key.
///
/// # Reading
///
/// [`read`](Codec::read) returns `Ok(Some(Ok(message)))` per complete message or control
/// frame. Fragments are joined (control frames may come between them and are returned at
/// once); text is checked as UTF-8 as its bytes are read, so an invalid sequence fails as soon
/// as it arrives, before the rest of its frame (RFC 6455, section 8.1). A fragmented
/// message's buffer grows amortised (its capacity doubles when it must grow, never past
/// [`max_message`](Self::max_message)), so many small fragments cost a few reallocations,
/// not one each. A peer that breaks the protocol gives
/// `Ok(Some(Err(WsError)))` with the close code to answer:
///
/// | what the peer did | code |
/// |---|---|
/// | an unmasked frame (a masked one, client side), reserved bits set, an unknown opcode, a 64-bit length with the top bit set | 1002 |
/// | a control frame fragmented or over 125 bytes, a close payload of 1 byte or with an invalid code | 1002 |
/// | a continuation with no message started, a new message before the last one finished | 1002 |
/// | text (or a close reason) that is not UTF-8 | 1007 |
/// | a frame over [`max_frame`](Self::max_frame) or a message over [`max_message`](Self::max_message) (checked on the header, before any allocation) | 1009 |
///
/// After the peer's close frame a server codec returns `Ok(None)` at once, as at EOF: the peer
/// sends nothing more, so the connection flushes what is queued (the answering close frame)
/// and closes the TCP connection first, as a server should (RFC 6455, section 7.1.1), without
/// waiting for the peer's FIN. A [`client`](Self::client) codec reads and throws away
/// whatever comes until the server's EOF instead, since the server closes first. After a protocol error the codec parses nothing more: it reads
/// and throws away whatever arrives until the peer's EOF, then returns `Ok(None)`. EOF between
/// messages is `Ok(None)`; EOF inside a frame or between fragments is `UnexpectedEof`.
///
/// # Writing
///
/// Each [`Message`] is written as one unfragmented frame: unmasked server side, masked client
/// side with a fresh key from [`mask_key`](super::mask_key). A payload over
/// [`max_frame`](Self::max_frame), a control payload over 125 bytes and a close code that
/// [`is_valid_close_code`] refuses are `InvalidInput`.
///
/// # Example
///
/// ```
/// use threadnet::ws::{Message, WsCodec};
/// use threadnet::Codec;
///
/// // A client's masked "Hello" (RFC 6455, section 5.7).
/// let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let mut codec = WsCodec::new();
/// let msg = codec.read(&mut &wire[..]).unwrap();
/// assert_eq!(msg, Some(Ok(Message::Text("Hello".into()))));
///
/// // The server's answer is unmasked.
/// let mut out = Vec::new();
/// codec.write(&Message::Text("Hello".into()), &mut out).unwrap();
/// assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
/// ```
#[derive(Clone, Debug)]
pub struct WsCodec {
    max_frame: usize,
    max_message: usize,
    pending: Option<Pending>,
    done: bool,
    /// The peer's close frame was read: the next read is the end (the server closes the TCP
    /// connection first, RFC 6455 section 7.1.1).
    closed: bool,
    /// The client side: frames written are masked, frames read must not be.
    client: bool,
}

/// A fragmented message being joined.
#[derive(Clone, Debug)]
struct Pending {
    opcode: u8,
    buf: Vec<u8>,
    /// How many bytes of `buf` are known to be valid UTF-8 (text only).
    valid: usize,
}

impl Default for WsCodec {
    fn default() -> Self {
        WsCodec::new()
    }
}

impl WsCodec {
    /// A server-side codec with [`DEFAULT_MAX_FRAME`] and [`DEFAULT_MAX_MESSAGE`].
    pub fn new() -> WsCodec {
        WsCodec {
            max_frame: DEFAULT_MAX_FRAME,
            max_message: DEFAULT_MAX_MESSAGE,
            pending: None,
            done: false,
            closed: false,
            client: false,
        }
    }

    /// A client-side codec with [`DEFAULT_MAX_FRAME`] and [`DEFAULT_MAX_MESSAGE`]: it masks
    /// every frame it writes with a fresh key from [`mask_key`](super::mask_key) (RFC 6455,
    /// section 5.3) and refuses masked frames from the server (1002, section 5.1).
    /// [`WsClient`](super::WsClient) uses it.
    ///
    /// ```
    /// use threadnet::ws::{Message, WsCodec};
    /// use threadnet::Codec;
    ///
    /// let mut out = Vec::new();
    /// WsCodec::client().write(&Message::Text("Hello".into()), &mut out).unwrap();
    /// assert_eq!(out[..2], [0x81, 0x85]); // FIN + text, masked, 5 bytes
    /// // Unmasked with its key, the payload is "Hello".
    /// let key = [out[2], out[3], out[4], out[5]];
    /// threadnet::ws::apply_mask(&mut out[6..], key);
    /// assert_eq!(&out[6..], b"Hello");
    /// ```
    pub fn client() -> WsCodec {
        WsCodec {
            client: true,
            ..WsCodec::new()
        }
    }

    /// Whether this is the client side ([`client`](Self::client)).
    pub fn is_client(&self) -> bool {
        self.client
    }

    /// Sets the largest frame payload, in bytes, read or written (the same as
    /// [`Codec::set_max_frame_length`]).
    pub fn max_frame(mut self, bytes: usize) -> WsCodec {
        self.max_frame = bytes;
        self
    }

    /// Sets the largest message, in bytes (all fragments together), that is read.
    pub fn max_message(mut self, bytes: usize) -> WsCodec {
        self.max_message = bytes;
        self
    }

    /// The capacity of the buffer of the fragmented message being joined (0 when none).
    #[cfg(test)]
    pub(crate) fn pending_capacity(&self) -> usize {
        self.pending.as_ref().map_or(0, |p| p.buf.capacity())
    }

    fn read_message<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Message>> {
        loop {
            let Some(h) = frame::read_header(r)? else {
                return match self.pending {
                    Some(_) => Err(io::ErrorKind::UnexpectedEof.into()),
                    None => Ok(None),
                };
            };
            let key = match (h.mask, self.client) {
                (None, false) => return Err(WsError::protocol("client frame not masked").into()),
                (Some(_), true) => return Err(WsError::protocol("server frame masked").into()),
                (key, _) => key,
            };
            if h.len > self.max_frame as u64 {
                return Err(WsError::too_big("frame over the limit").into());
            }
            if h.is_control() {
                let mut p = Vec::new(); // at most 125 bytes
                frame::read_payload(r, h.len, key, &mut p, 125, frame::NO_CHECK)?;
                return Ok(Some(match h.opcode {
                    PING => Message::Ping(p),
                    PONG => Message::Pong(p),
                    _ => Message::Close(parse_close(p)?),
                }));
            }
            let p = match (h.opcode, &mut self.pending) {
                (CONTINUATION, None) => {
                    return Err(WsError::protocol("continuation without a message").into())
                }
                (CONTINUATION, Some(p)) => p,
                (_, Some(_)) => {
                    return Err(WsError::protocol("new message inside a fragmented one").into())
                }
                (opcode, pending @ None) => pending.insert(Pending {
                    opcode,
                    buf: Vec::new(),
                    valid: 0,
                }),
            };
            if p.buf.len() as u64 + h.len > self.max_message as u64 {
                return Err(WsError::too_big("message over the limit").into());
            }
            // Text is checked as its bytes arrive (an invalid sequence fails before the rest
            // of its frame comes), then once more at the end for a sequence cut short.
            let text = p.opcode == TEXT;
            let valid = &mut p.valid;
            let check = text.then_some(|upto: &[u8]| Ok(check_utf8(upto, valid, false)?));
            frame::read_payload(r, h.len, key, &mut p.buf, self.max_message, check)?;
            if text {
                check_utf8(&p.buf, &mut p.valid, h.fin)?;
            }
            if h.fin {
                if let Some(p) = self.pending.take() {
                    return Ok(Some(if p.opcode == TEXT {
                        let text = String::from_utf8(p.buf)
                            .map_err(|_| WsError::invalid_data("text not UTF-8"))?;
                        Message::Text(text)
                    } else {
                        Message::Binary(p.buf)
                    }));
                }
            }
        }
    }
}

/// Checks the bytes of a text message past `valid`; an incomplete sequence at the end is
/// fine unless this is the last fragment.
fn check_utf8(buf: &[u8], valid: &mut usize, fin: bool) -> Result<(), WsError> {
    match std::str::from_utf8(&buf[*valid..]) {
        Ok(_) => {
            *valid = buf.len();
            Ok(())
        }
        Err(e) if e.error_len().is_none() && !fin => {
            *valid += e.valid_up_to();
            Ok(())
        }
        Err(_) => Err(WsError::invalid_data("text not UTF-8")),
    }
}

fn parse_close(p: Vec<u8>) -> Result<Option<CloseFrame>, WsError> {
    match p.as_slice() {
        [] => Ok(None),
        [_] => Err(WsError::protocol("close payload of 1 byte")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !is_valid_close_code(code) {
                return Err(WsError::protocol("invalid close code"));
            }
            let reason = String::from_utf8(reason.to_vec())
                .map_err(|_| WsError::invalid_data("close reason not UTF-8"))?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

/// Reads and drops everything until EOF.
pub(crate) fn drain<R: BufRead>(r: &mut R) -> io::Result<()> {
    loop {
        let n = match r.fill_buf() {
            Ok(b) => b.len(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        r.consume(n);
    }
}

fn invalid_input(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

impl Codec for WsCodec {
    type In = Result<Message, WsError>;
    type Out = Message;

    /// Reads one message or control frame; see [`WsCodec`] for what is refused.
    ///
    /// # Errors
    ///
    /// I/O errors from `r`, and `UnexpectedEof` for EOF inside a frame or a fragmented
    /// message. Protocol violations are not errors but `Ok(Some(Err(_)))`, so that the
    /// handler can answer them with a close frame.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Self::In>> {
        if self.closed {
            return Ok(None);
        }
        if self.done {
            drain(r)?;
            return Ok(None);
        }
        match self.read_message(r) {
            Ok(Some(m)) => {
                if matches!(m, Message::Close(_)) {
                    // A server ends at once and closes the TCP connection first; a client
                    // waits for the server's EOF, throwing away anything before it (RFC 6455,
                    // section 7.1.1).
                    if self.client {
                        self.done = true;
                    } else {
                        self.closed = true;
                    }
                }
                Ok(Some(Ok(m)))
            }
            Ok(None) => Ok(None),
            Err(e) => match WsError::from_io(&e) {
                Some(ws) => {
                    self.done = true;
                    self.pending = None;
                    Ok(Some(Err(ws)))
                }
                None => Err(e),
            },
        }
    }

    /// Writes `msg` as one frame: unmasked server side, masked with a fresh key client side.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a payload over the frame limit, a control payload over 125 bytes,
    /// or an invalid close code; otherwise I/O errors from `w`.
    fn write<W: Write>(&self, msg: &Message, w: &mut W) -> io::Result<()> {
        let close;
        let (opcode, payload): (u8, &[u8]) = match msg {
            Message::Text(t) => (TEXT, t.as_bytes()),
            Message::Binary(b) => (BINARY, b),
            Message::Ping(p) => (PING, p),
            Message::Pong(p) => (PONG, p),
            Message::Close(None) => (CLOSE, &[]),
            Message::Close(Some(c)) => {
                if !is_valid_close_code(c.code) {
                    return Err(invalid_input("invalid close code"));
                }
                close = [&c.code.to_be_bytes()[..], c.reason.as_bytes()].concat();
                (CLOSE, &close)
            }
        };
        if opcode & 0x8 != 0 && payload.len() > 125 {
            return Err(invalid_input("control frame payload over 125 bytes"));
        }
        if payload.len() > self.max_frame {
            return Err(invalid_input("frame over the limit"));
        }
        let mask = self.client.then(super::mask_key);
        let (h, n) = frame::header_bytes(true, opcode, payload.len(), mask);
        w.write_all(&h[..n])?;
        match mask {
            Some(key) => frame::write_masked(w, payload, key),
            None => w.write_all(payload),
        }
    }

    /// Sets the largest frame payload read or written, like [`WsCodec::max_frame`].
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.max_frame = bytes;
    }

    /// Whether a fragmented message is being joined: the last read returned a control frame
    /// from between its fragments. The frame timeout runs on until its last fragment.
    fn mid_message(&self) -> bool {
        self.pending.is_some()
    }
}
