//! Reading and writing a frame's bytes: the errors, the one-allocation message read and the
//! two-slice write that the framed codecs ([`LengthDelimited`](super::LengthDelimited),
//! [`Tlv`](super::Tlv), RESP replies) share.

use std::fmt;
use std::io::{self, BufRead, IoSlice, Read, Write};

use super::{append_exact, reserve_frame};

/// The error of a frame whose announced payload of `len` bytes is over the limit `max`.
pub(crate) fn too_long(len: impl fmt::Display, max: usize) -> io::Error {
    invalid_data(format_args!(
        "frame of {len} bytes exceeds the maximum frame length of {max} bytes"
    ))
}

/// An [`io::ErrorKind::InvalidData`] error; out of line, so that the checks on the hot
/// path stay small.
#[cold]
pub(super) fn invalid_data(what: fmt::Arguments<'_>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// An [`io::ErrorKind::InvalidInput`] error, out of line like [`invalid_data`].
#[cold]
pub(super) fn invalid_input(what: fmt::Arguments<'_>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// Writes `header`, `zeros` zero bytes (the payload bytes that `read` cuts off when
/// `num_skip` is larger than the header) and `msg`.
#[cold]
pub(super) fn write_with_zeros<W: Write>(
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
/// The caller has checked `len` against its limit: it is allocated once, at its full size.
///
/// What `r` has buffered is copied into the message as it is (no zeroing first): a frame
/// that arrived whole costs one copy. The rest, if any, is read with `read` calls for all
/// that is still missing, so a reader that bypasses its buffer for large reads (as
/// `BufReader` does from its capacity, and the connection's reader from half its buffer)
/// reads the rest of a large frame from the socket straight into the message: one copy,
/// not two.
///
/// # Errors
///
/// [`io::ErrorKind::OutOfMemory`] when the buffer cannot be allocated,
/// [`io::ErrorKind::UnexpectedEof`] when the stream ends first, or any I/O error from `r`.
#[inline]
pub(crate) fn read_message<R: BufRead>(r: &mut R, kept: &[u8], len: usize) -> io::Result<Vec<u8>> {
    let mut message = Vec::new();
    read_message_into(r, kept, len, &mut message)?;
    Ok(message)
}

/// [`read_message`] into `message`, which is cleared first: a buffer whose capacity holds
/// `len` bytes is reused as it is (no allocation); a smaller one is replaced by a new
/// buffer of exactly `len` bytes (not grown: growing would copy its old bytes for nothing).
///
/// # Errors
///
/// As [`read_message`]; `message` then holds what was read of the message.
#[inline]
pub(crate) fn read_message_into<R: BufRead>(
    r: &mut R,
    kept: &[u8],
    len: usize,
    message: &mut Vec<u8>,
) -> io::Result<()> {
    message.clear();
    if message.capacity() < len {
        *message = Vec::new();
    }
    // The whole message in one allocation at most: the kept bytes, then the payload's.
    reserve_frame(message, len)?;
    message.extend_from_slice(kept);
    append_exact(r, message, len - kept.len())
}

/// Consumes the first `cut` payload bytes of a frame whose `num_skip` is `skip`, from the
/// reader's own buffer. No buffer of its own: `io::copy` to a sink would take an 8 KiB stack
/// buffer, and inlined into a connection's reader thread that frame is touched (stack probes)
/// by every thread, busy or idle, for 8 KiB more RSS per connection.
#[cold]
#[inline(never)]
pub(super) fn discard<R: BufRead>(r: &mut R, mut cut: usize, skip: usize) -> io::Result<()> {
    while cut > 0 {
        let n = match r.fill_buf() {
            Ok([]) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended inside the {skip} bytes to skip of a frame"),
                ))
            }
            Ok(buf) => buf.len().min(cut),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        r.consume(n);
        cut -= n;
    }
    Ok(())
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

/// `len` bytes of room for a frame header: in `stack` unless a long
/// [`length_field_offset`](super::LengthDelimited::length_field_offset) needs more, then in
/// `heap`.
#[inline]
pub(super) fn header_room<'a>(
    stack: &'a mut [u8; 16],
    heap: &'a mut Vec<u8>,
    len: usize,
) -> &'a mut [u8] {
    if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        heap
    }
}
