//! One frame's header (RFC 6455, section 5.2) and masking (section 5.3).

use std::io::{self, BufRead, Write};

use super::error::WsError;
use crate::codec::append_growing;

/// Opcodes (section 5.2, 11.8).
pub(crate) const CONTINUATION: u8 = 0x0;
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

/// A parsed frame header.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) len: u64,
}

impl Header {
    /// Whether this is a control frame (opcode with the high bit set, section 5.5).
    pub(crate) fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// Reads one header. `Ok(None)` is a clean EOF before its first byte.
///
/// Refuses (as [`WsError`] inside `InvalidData`) reserved bits, unknown opcodes, a 64-bit
/// length with its top bit set, and control frames that are fragmented or longer than 125.
pub(crate) fn read_header<R: BufRead>(r: &mut R) -> io::Result<Option<Header>> {
    let mut b = [0u8; 2];
    if !crate::codec::read_frame_start(r, &mut b)? {
        return Ok(None);
    }
    let fin = b[0] & 0x80 != 0;
    if b[0] & 0x70 != 0 {
        return Err(WsError::protocol("reserved bits set, no extension negotiated").into());
    }
    let opcode = b[0] & 0x0F;
    if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
        return Err(WsError::protocol("unknown opcode").into());
    }
    let masked = b[1] & 0x80 != 0;
    let len = match b[1] & 0x7F {
        126 => {
            let mut e = [0u8; 2];
            r.read_exact(&mut e)?;
            u64::from(u16::from_be_bytes(e))
        }
        127 => {
            let mut e = [0u8; 8];
            r.read_exact(&mut e)?;
            let n = u64::from_be_bytes(e);
            if n >> 63 != 0 {
                return Err(WsError::protocol("64-bit length with the top bit set").into());
            }
            n
        }
        n => u64::from(n),
    };
    let header = Header {
        fin,
        opcode,
        mask: None,
        len,
    };
    if header.is_control() && (!fin || len > 125) {
        return Err(WsError::protocol("control frame fragmented or over 125 bytes").into());
    }
    let mask = if masked {
        let mut k = [0u8; 4];
        r.read_exact(&mut k)?;
        Some(k)
    } else {
        None
    };
    Ok(Some(Header { mask, ..header }))
}

/// A frame header: the bytes and how many are used. With `mask` (the client side, section
/// 5.3) the mask bit is set and the key follows the length.
pub(crate) fn header_bytes(
    fin: bool,
    opcode: u8,
    len: usize,
    mask: Option<[u8; 4]>,
) -> ([u8; 14], usize) {
    let mut h = [0u8; 14];
    h[0] = if fin { 0x80 } else { 0 } | opcode;
    let n = if len < 126 {
        h[1] = len as u8;
        2
    } else if let Ok(n) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&n.to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    match mask {
        Some(key) => {
            h[1] |= 0x80;
            h[n..n + 4].copy_from_slice(&key);
            (h, n + 4)
        }
        None => (h, n),
    }
}

/// `frame`, an unmasked frame (the server side's), as the client side sends it: masked with
/// `key`. `None` if `frame` is not exactly one unmasked frame.
pub(crate) fn masked(frame: &[u8], key: [u8; 4]) -> Option<Vec<u8>> {
    let mut rest = frame;
    let h = read_header(&mut rest).ok()??;
    if h.mask.is_some() || rest.len() as u64 != h.len {
        return None;
    }
    let (head, n) = header_bytes(h.fin, h.opcode, rest.len(), Some(key));
    let mut out = Vec::with_capacity(n + rest.len());
    out.extend_from_slice(&head[..n]);
    out.resize(n + rest.len(), 0);
    copy_masked(rest, &mut out[n..], key);
    Some(out)
}

/// Writes `payload` masked with `key` through a buffer on the stack (the caller's payload
/// stays as it is), a multiple of 4 bytes at a time so the key's phase carries over.
pub(crate) fn write_masked<W: Write>(w: &mut W, payload: &[u8], key: [u8; 4]) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    for chunk in payload.chunks(buf.len()) {
        let out = &mut buf[..chunk.len()];
        copy_masked(chunk, out, key);
        w.write_all(out)?;
    }
    Ok(())
}

/// `dst = src ^ key`, in one pass, a `u64` at a time (as [`apply_mask`]). `dst` is as long
/// as `src`.
fn copy_masked(src: &[u8], dst: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut s = src.chunks_exact(8);
    let mut d = dst.chunks_exact_mut(8);
    for (s, d) in (&mut s).zip(&mut d) {
        let mut w = [0u8; 8];
        w.copy_from_slice(s);
        d.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
    }
    let done = src.len() - s.remainder().len();
    for (i, (d, s)) in d.into_remainder().iter_mut().zip(s.remainder()).enumerate() {
        *d = s ^ key[(done + i) % 4];
    }
}

/// XORs `data` with `key`, the key's byte 0 on `data[0]` (section 5.3). Works a `u64` at a
/// time; the bytes before and after whole words go one by one.
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
    }
    let rest = chunks.into_remainder();
    for (i, b) in rest.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// A check of a payload's bytes as they arrive (see [`read_payload`]).
type Check = fn(&[u8]) -> io::Result<()>;

/// [`read_payload`] without a check.
pub(crate) const NO_CHECK: Option<Check> = None;

/// Appends exactly `len` bytes from `r` to `buf`, unmasked with `key` if there is one. The
/// caller has checked `buf.len() + len` against `limit`, the largest the message may grow:
/// `buf` grows amortised up to it (`codec::reserve_growing`), so a frame alone, or a
/// message's first fragment, costs one allocation of its length, and a message of many
/// fragments a few reallocations, not one per fragment. What the reader has buffered is
/// copied with one `memcpy`; the rest is read straight into `buf` (a large rest bypasses the
/// reader's buffer, `conn/input.rs`). EOF before `len` bytes is `UnexpectedEof`.
///
/// With `check` (text), each time bytes arrive they are unmasked, then `check` sees `buf` up
/// to them: invalid UTF-8 fails as soon as its bytes are read, not when the frame is whole
/// (RFC 6455, section 8.1). An error from `check` ends the read. Without it the payload is
/// unmasked once, whole.
pub(crate) fn read_payload<R: BufRead>(
    r: &mut R,
    len: u64,
    key: Option<[u8; 4]>,
    buf: &mut Vec<u8>,
    limit: usize,
    check: Option<impl FnMut(&[u8]) -> io::Result<()>>,
) -> io::Result<()> {
    let start = buf.len();
    let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let Some(mut check) = check else {
        append_growing(r, buf, len, limit, |_, _| Ok(()))?;
        if let Some(key) = key {
            apply_mask(&mut buf[start..], key);
        }
        return Ok(());
    };
    append_growing(r, buf, len, limit, |upto, from| {
        if let Some(key) = key {
            // The key's phase at `from`: byte i of the payload is masked with key[i % 4].
            let k = (from - start) % 4;
            let key = [key[k], key[(k + 1) % 4], key[(k + 2) % 4], key[(k + 3) % 4]];
            apply_mask(&mut upto[from..], key);
        }
        check(upto)
    })
}
