//! The pieces of the RESP parser that [`Resp`](super::Resp) and
//! [`RespCommands`](super::RespCommands) share: where a command's arguments go ([`Args`]),
//! why a command could not be read ([`ProtocolError`], `Fail`), and the readers of a header
//! line and a bulk string.

use std::error::Error;
use std::fmt;
use std::io::{self, BufRead, Read};

use super::resp_reply::Reply;

/// The longest `*N\r\n` / `$N\r\n` line after its type byte: an `i64` has at most 20 characters,
/// and Redis accepts no leading zeros or `+`, so a longer line cannot hold a valid length.
const HEADER_MAX: usize = 32;
/// At most this many bytes of a bulk string are allocated before they arrive: a peer that
/// announces 512 MiB and sends nothing costs this much, not the announced length.
const BULK_PREALLOC: usize = 64 * 1024;

/// A RESP integer: `-`? digits, no leading zero, no `+`, within `i64`; the body of
/// [`Resp::parse_integer`](super::Resp::parse_integer).
pub(super) fn parse_integer(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    // Accumulate towards the negative side, which holds one more value than the positive.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative {
        Some(n)
    } else {
        n.checked_neg()
    }
}

/// Where the parser puts a command's arguments: a `Vec` each ([`Resp`](super::Resp)'s
/// `Vec<Vec<u8>>`), or one buffer for all of them ([`Command`](super::Command)).
pub(super) trait Args {
    /// No arguments yet, room for `n` (a hint, within the limits).
    fn with_capacity(n: usize) -> Self;
    /// Adds an argument.
    fn push(&mut self, arg: &[u8]);
    /// Starts an argument whose bytes arrive in pieces: they are appended to the `Vec`
    /// returned, then [`end_arg`](Args::end_arg) ends it.
    fn start_arg(&mut self) -> &mut Vec<u8>;
    /// Ends the argument [`start_arg`](Args::start_arg) started.
    fn end_arg(&mut self);
    /// How many arguments there are.
    fn count(&self) -> usize;
}

impl Args for Vec<Vec<u8>> {
    fn with_capacity(n: usize) -> Self {
        Vec::with_capacity(n)
    }

    fn push(&mut self, arg: &[u8]) {
        Vec::push(self, arg.to_vec());
    }

    fn start_arg(&mut self) -> &mut Vec<u8> {
        Vec::push(self, Vec::new());
        self.last_mut().expect("pushed above")
    }

    fn end_arg(&mut self) {}

    fn count(&self) -> usize {
        self.len()
    }
}

/// Why a command could not be read: the stream failed, or the peer broke the protocol.
pub(super) enum Fail {
    Io(io::Error),
    Protocol(ProtocolError),
}

impl Fail {
    pub(super) fn protocol(detail: String) -> Fail {
        Fail::Protocol(ProtocolError { detail })
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

pub(super) fn eof(where_: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("stream ended {where_}"),
    )
}

/// `r.fill_buf()`, retried on `Interrupted` (a retry by the caller would lose the codec's
/// place inside a command): true if bytes are buffered, false at the end of the stream. After
/// `true`, `r.fill_buf()` returns them without reading again.
pub(super) fn fill<R: BufRead>(r: &mut R) -> io::Result<bool> {
    loop {
        match r.fill_buf() {
            Ok(buf) => return Ok(!buf.is_empty()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The next byte, not consumed; `None` at the end of the stream.
pub(super) fn peek<R: BufRead>(r: &mut R) -> io::Result<Option<u8>> {
    Ok(if fill(r)? {
        r.fill_buf()?.first().copied()
    } else {
        None
    })
}

/// Reads the number of a `*N\r\n` or `$N\r\n` line, its type byte already consumed. `None`
/// when the line is not a valid integer ended by `\r\n` within [`HEADER_MAX`] bytes (what is
/// read of it is consumed: the stream is not parsed again after a protocol error).
pub(super) fn read_header<R: BufRead>(r: &mut R) -> io::Result<Option<i64>> {
    let mut line = [0u8; HEADER_MAX];
    let mut n = 0;
    loop {
        if !fill(r)? {
            return Err(eof("inside a length line"));
        }
        let avail = r.fill_buf()?;
        let chunk = &avail[..avail.len().min(HEADER_MAX - n)];
        let newline = chunk.iter().position(|&b| b == b'\n');
        let k = newline.map_or(chunk.len(), |i| i + 1);
        line[n..n + k].copy_from_slice(&chunk[..k]);
        r.consume(k);
        n += k;
        if newline.is_some() {
            return Ok(line[..n].strip_suffix(b"\r\n").and_then(parse_integer));
        }
        if n == HEADER_MAX {
            return Ok(None);
        }
    }
}

/// The number of the `*N\r\n` or `$N\r\n` line whose digits start at `buf[at]`, and the
/// index after its `\r\n`; `None` if the line is not whole in `buf` within [`HEADER_MAX`]
/// bytes, or is not a valid integer.
#[inline]
pub(super) fn buffered_header(buf: &[u8], at: usize) -> Option<(i64, usize)> {
    let line = buf.get(at..)?;
    // The usual line, up to 18 digits without sign or leading zero, in one pass with no
    // overflow checks.
    let mut n = 0i64;
    let mut i = 0;
    while i < line.len().min(18) && line[i].is_ascii_digit() {
        n = n * 10 + i64::from(line[i] - b'0');
        i += 1;
    }
    if i > 0 && (line[0] != b'0' || i == 1) && line.get(i..i + 2) == Some(b"\r\n") {
        return Some((n, at + i + 2));
    }
    // Anything else: a sign, a long number, or no number at all.
    let line = &line[..line.len().min(HEADER_MAX)];
    let cr = line.iter().position(|&b| b == b'\r')?;
    if line.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    Some((parse_integer(&line[..cr])?, at + cr + 2))
}

/// Reads a bulk string's `len` bytes and the `\r\n` after them into `args`. `len` is within
/// the limits.
pub(super) fn read_bulk<A: Args, R: BufRead>(
    r: &mut R,
    len: usize,
    args: &mut A,
) -> Result<(), Fail> {
    // At the end of the stream nothing is buffered: the slow path below reports it.
    let avail = if fill(r)? { r.fill_buf()? } else { &[] };
    if avail.len() >= len + 2 {
        // The usual case: the whole argument is buffered.
        let crlf = avail[len..len + 2] == *b"\r\n";
        args.push(&avail[..len]);
        r.consume(len + 2);
        if !crlf {
            return Err(not_crlf(len));
        }
        return Ok(());
    }
    // Arriving in pieces: grow with what arrives, never reserving what was only announced.
    let data = args.start_arg();
    let before = data.len();
    data.reserve(len.min(BULK_PREALLOC));
    Read::take(&mut *r, len as u64).read_to_end(data)?;
    if data.len() - before < len {
        return Err(eof("inside a bulk string").into());
    }
    args.end_arg();
    let mut crlf = [0u8; 2];
    r.read_exact(&mut crlf)?;
    if crlf != *b"\r\n" {
        return Err(not_crlf(len));
    }
    Ok(())
}

fn not_crlf(len: usize) -> Fail {
    Fail::protocol(format!(
        "bulk string of {len} bytes is not followed by CRLF"
    ))
}

/// Input that breaks RESP or one of the [`Resp`](super::Resp) limits: what Redis answers with
/// `-ERR Protocol error: ...` before it closes the connection.
///
/// `Display` gives Redis' wording (`Protocol error: invalid bulk length`), with the limit
/// added when one was passed; [`reply`](ProtocolError::reply) is the error reply to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// What was wrong, with no `\r` or `\n` in it.
    pub(super) detail: String,
}

impl ProtocolError {
    /// What was wrong, without the `Protocol error: ` prefix: `invalid bulk length`.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The reply Redis sends for it: `-ERR Protocol error: <detail>`.
    pub fn reply(&self) -> Reply {
        Reply::Error(format!("ERR {self}").into())
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protocol error: {}", self.detail)
    }
}

impl Error for ProtocolError {}

impl From<ProtocolError> for io::Error {
    /// An [`io::ErrorKind::InvalidData`] error, for a handler that closes with
    /// [`Connection::close_with_error`](crate::Connection::close_with_error).
    fn from(e: ProtocolError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}
