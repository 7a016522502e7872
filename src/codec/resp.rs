//! RESP2, the Redis protocol, from the server's side: commands in, replies out.
//!
//! The codec and its wire format are documented on [`Resp`] (this module is private, so its own
//! docs are not rendered).

use std::error::Error;
use std::fmt;
use std::io::{self, BufRead, Read, Write};

use super::resp_reply::{encode, Reply};

/// The default [`Resp::max_array_length`]: 1 048 576 arguments.
const DEFAULT_MAX_ARRAY: usize = 1024 * 1024;
/// The default [`Resp::max_bulk_length`]: 512 MiB, Redis' `proto-max-bulk-len`.
const DEFAULT_MAX_BULK: usize = 512 * 1024 * 1024;
/// The default [`Resp::max_command_length`]: 1 MiB, the other codecs' default frame limit.
const DEFAULT_MAX_COMMAND: usize = 1024 * 1024;
/// What one argument costs beyond its bytes, as counted against the command limit: its
/// `Vec<u8>` (24 bytes), its slot's share of the argument array while that doubles (up to 24
/// more), and the allocator's header and rounding of a small allocation (16).
const ARG_OVERHEAD: usize = 2 * std::mem::size_of::<Vec<u8>>() + 16;
/// The longest inline command, in bytes, terminator excluded: Redis' `PROTO_INLINE_MAX_SIZE`.
const INLINE_MAX: usize = 64 * 1024;
/// The longest `*N\r\n` / `$N\r\n` line after its type byte: an `i64` has at most 20 characters,
/// and Redis accepts no leading zeros or `+`, so a longer line cannot hold a valid length.
const HEADER_MAX: usize = 32;
/// At most this many bytes of a bulk string are allocated before they arrive: a peer that
/// announces 512 MiB and sends nothing costs this much, not the announced length.
const BULK_PREALLOC: usize = 64 * 1024;
/// At most this many argument slots are allocated before the arguments arrive.
const ARRAY_PREALLOC: usize = 64;

/// RESP2, the Redis serialization protocol, as a server speaks it: each message read is one
/// command (its arguments, as byte strings), each message written is one [`Reply`]. (A client
/// speaks the mirror image, commands out and replies in; this codec is the server's side.)
///
/// A message read is a `Result`: `Ok(args)` for a command, `Err(`[`ProtocolError`]`)` for input
/// that breaks the protocol or a limit. The codec cannot write, so it hands the error to the
/// handler, which answers it (Redis sends `-ERR Protocol error: ...` and closes):
///
/// ```text
/// Err(e) => {
///     let _ = conn.send(e.reply());              // -ERR Protocol error: invalid bulk length
///     conn.shutdown(Duration::from_secs(1));     // reply, FIN, then wait for the peer's EOF
/// }
/// ```
///
/// Each argument is its own `Vec<u8>`: a command costs one allocation per argument and one
/// for the list. [`RespCommands`](super::RespCommands) reads the same commands, with the same
/// limits, into one [`Command`](super::Command) each, with no allocation for a small one:
/// the codec for a server's hot path ([`Resp::commands`] turns this codec into it).
///
/// After a protocol error the stream has no frame boundary left to find: every later
/// [`read`](super::Codec::read) discards what arrives until the peer closes, then returns
/// `Ok(None)`. So the reply is written, the FIN follows, and the connection ends gracefully.
///
/// # Wire format: commands in
///
/// An array of bulk strings, every line ended by `\r\n`. `SET k hello` is
///
/// ```text
/// +- *N -+---- $len ----+- bytes -+---- $len ----+- bytes -+---- $len ----+-- bytes --+
/// | *3\r\n | $3\r\n      | SET\r\n | $1\r\n      | k\r\n   | $5\r\n      | hello\r\n |
/// +--------+-------------+---------+-------------+---------+-------------+-----------+
/// ```
///
/// A command that does not start with `*` is an *inline* command, as typed into `telnet` or
/// `nc`: one line ended by `\n` (a `\r` before it is dropped), split on ASCII whitespace.
/// `SET k hello\r\n` is the same command as above. Unlike Redis, quotes are not interpreted:
/// `"a b"` is the two arguments `"a` and `b"`. Empty lines, `*0\r\n` and `*-1\r\n` are
/// skipped, as Redis skips them.
///
/// # Wire format: replies out
///
/// | [`Reply`]                | bytes                        |
/// |--------------------------|------------------------------|
/// | `Simple("OK")`           | `+OK\r\n`                    |
/// | `Error("ERR no")`        | `-ERR no\r\n`                |
/// | `Integer(42)`            | `:42\r\n`                    |
/// | `Bulk(b"hi")`            | `$2\r\nhi\r\n`               |
/// | `Shared("hi" as Arc<[u8]>)` | `$2\r\nhi\r\n`            |
/// | `Null`                   | `$-1\r\n`                    |
/// | `Array([Integer(1)])`    | `*1\r\n:1\r\n`               |
/// | `NullArray`              | `*-1\r\n`                    |
///
/// # Limits
///
/// Every limit is checked on the header that announces a size, before anything is allocated
/// for it; past a limit, `read` returns a [`ProtocolError`] and reads nothing more of that
/// command. The defaults are Redis' own except the command's total, which is 1 MiB like the
/// other codecs' frames (a default Redis accepts up to 1 GiB, a memory bound no server of
/// many connections can afford):
///
/// * [`max_array_length`](Resp::max_array_length): arguments in one command (1 048 576).
/// * [`max_bulk_length`](Resp::max_bulk_length): bytes in one argument (512 MiB, Redis'
///   `proto-max-bulk-len`); [`set_max_frame_length`](super::Codec::set_max_frame_length) sets
///   this one.
/// * [`max_command_length`](Resp::max_command_length): the memory all the arguments of one
///   command hold together, each counted as its length plus 64 bytes of overhead (its
///   `Vec`, its slot in the argument array, the allocator's rounding): 1 MiB by default. This
///   is what bounds the memory one connection can make the server hold, and why a command
///   of many tiny arguments (`*1048576` then one-byte arguments) is refused long before its
///   announced count. A `SET` of a value up to about 1 MiB fits; raise it (up to Redis' own
///   1 GiB `client-query-buffer-limit`) for larger values.
/// * An inline command is at most 64 KiB (65 536 bytes) long, as in Redis.
///
/// A bulk string's buffer grows as its bytes arrive (at most 64 KiB is reserved ahead), so a
/// peer that announces a large argument and sends nothing costs nothing.
///
/// # Example
///
/// ```
/// use threadnet::{Codec, Reply, Resp};
///
/// let mut codec = Resp::new();
///
/// let mut input: &[u8] = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n";
/// let get = codec.read(&mut input).unwrap().unwrap().unwrap();
/// assert_eq!(get, [b"GET".to_vec(), b"k".to_vec()]);
/// let ping = codec.read(&mut input).unwrap().unwrap().unwrap(); // inline
/// assert_eq!(ping, [b"PING".to_vec()]);
/// assert!(codec.read(&mut input).unwrap().is_none()); // clean EOF
///
/// let mut wire = Vec::new();
/// codec.write(&Reply::ok(), &mut wire).unwrap();
/// codec.write(&Reply::bulk("v"), &mut wire).unwrap();
/// codec.write(&Reply::Integer(-3), &mut wire).unwrap();
/// assert_eq!(wire, b"+OK\r\n$1\r\nv\r\n:-3\r\n");
///
/// // Input that breaks the protocol is handed over as an error to answer.
/// let mut input: &[u8] = b"*1\r\n$-5\r\n";
/// let err = codec.read(&mut input).unwrap().unwrap().unwrap_err();
/// assert_eq!(err.to_string(), "Protocol error: invalid bulk length");
/// assert_eq!(err.reply(), Reply::error("ERR Protocol error: invalid bulk length"));
/// ```
#[derive(Clone, Debug)]
pub struct Resp {
    max_array: usize,
    max_bulk: usize,
    max_command: usize,
    /// A protocol error was returned: the rest of the stream is discarded.
    poisoned: bool,
}

impl Resp {
    /// Creates a codec with Redis' limits: 1 048 576 arguments per command, 512 MiB per
    /// argument, 1 GiB per command.
    ///
    /// Same as [`Resp::default`].
    pub fn new() -> Self {
        Resp {
            max_array: DEFAULT_MAX_ARRAY,
            max_bulk: DEFAULT_MAX_BULK,
            max_command: DEFAULT_MAX_COMMAND,
            poisoned: false,
        }
    }

    /// Sets the most arguments (array elements, the command name included) that one command
    /// may have.
    ///
    /// Defaults to 1 048 576 (1024 * 1024).
    ///
    /// # Example
    ///
    /// ```
    /// use threadnet::{Codec, Resp};
    ///
    /// let mut codec = Resp::new().max_array_length(2);
    /// let mut input: &[u8] = b"*3\r\n";
    /// let err = codec.read(&mut input).unwrap().unwrap().unwrap_err();
    /// assert!(err.to_string().contains("invalid multibulk length"), "{err}");
    /// ```
    pub fn max_array_length(mut self, n: usize) -> Self {
        self.max_array = n;
        self
    }

    /// Sets the longest argument, in bytes, that [`read`](super::Codec::read) accepts, and the
    /// longest bulk string that [`write`](super::Codec::write) produces.
    ///
    /// Defaults to 512 MiB (512 * 1024 * 1024 bytes), Redis' `proto-max-bulk-len`.
    ///
    /// # Example
    ///
    /// ```
    /// use threadnet::{Codec, Reply, Resp};
    ///
    /// let mut codec = Resp::new().max_bulk_length(4);
    /// // The header alone is enough to refuse the argument.
    /// let mut input: &[u8] = b"*1\r\n$5\r\n";
    /// let err = codec.read(&mut input).unwrap().unwrap().unwrap_err();
    /// assert!(err.to_string().contains("invalid bulk length"), "{err}");
    ///
    /// let err = codec.write(&Reply::bulk("hello"), &mut Vec::new()).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn max_bulk_length(mut self, bytes: usize) -> Self {
        self.max_bulk = bytes;
        self
    }

    /// Sets the most memory, in bytes, that the arguments of one command may hold together:
    /// each argument counts its length plus 64 bytes of overhead (its `Vec`, its slot in the
    /// argument array, the allocator's rounding); the protocol's own bytes are not counted.
    /// A command is refused on the header of the argument that would cross it, before that
    /// argument is read.
    ///
    /// Defaults to 1 MiB (1 048 576 bytes), the other codecs' default frame limit: a
    /// connection cannot make the server hold much more than that for one command, and a
    /// `SET` of a value up to about 1 MiB still fits. Redis' own limit,
    /// `client-query-buffer-limit`, is 1 GiB; raise this towards it for larger values, and
    /// mind that `max_connections` times this is what the server may have to hold.
    ///
    /// # Example
    ///
    /// ```
    /// use threadnet::{Codec, Resp};
    ///
    /// let mut codec = Resp::new().max_command_length(140);
    /// let mut input: &[u8] = b"*2\r\n$3\r\nGET\r\n$77\r\n"; // (3 + 64) + (77 + 64)
    /// let err = codec.read(&mut input).unwrap().unwrap().unwrap_err();
    /// assert!(err.to_string().contains("over the limit of 140"), "{err}");
    /// ```
    pub fn max_command_length(mut self, bytes: usize) -> Self {
        self.max_command = bytes;
        self
    }

    /// Returns the most arguments one command may have (see
    /// [`max_array_length`](Resp::max_array_length)).
    pub fn get_max_array_length(&self) -> usize {
        self.max_array
    }

    /// Returns the longest argument, in bytes (see
    /// [`max_bulk_length`](Resp::max_bulk_length)).
    pub fn get_max_bulk_length(&self) -> usize {
        self.max_bulk
    }

    /// Returns the most bytes the arguments of one command may hold together (see
    /// [`max_command_length`](Resp::max_command_length)).
    pub fn get_max_command_length(&self) -> usize {
        self.max_command
    }

    /// Parses a decimal integer the way Redis does (`string2ll`): an optional `-`, then digits
    /// with no leading zero (`0` alone is fine), nothing else, within `i64`. RESP lengths are
    /// read with it, and a server needs it for arguments such as `INCR`'s value or `EX`'s
    /// seconds.
    ///
    /// ```
    /// use threadnet::Resp;
    ///
    /// assert_eq!(Resp::parse_integer(b"-42"), Some(-42));
    /// assert_eq!(Resp::parse_integer(b"0"), Some(0));
    /// for bad in [&b""[..], b"+1", b"01", b"-0", b" 1", b"1x", b"9223372036854775808"] {
    ///     assert_eq!(Resp::parse_integer(bad), None, "{bad:?}");
    /// }
    /// assert_eq!(Resp::parse_integer(b"-9223372036854775808"), Some(i64::MIN));
    /// ```
    pub fn parse_integer(bytes: &[u8]) -> Option<i64> {
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

    /// Checks that `msg` can be encoded, so that nothing is written when it cannot.
    fn check(&self, msg: &Reply) -> io::Result<()> {
        let invalid = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        match msg {
            Reply::Simple(s) | Reply::Error(s) if s.bytes().any(|b| b == b'\r' || b == b'\n') => {
                invalid(format!("simple string or error contains CR or LF: {s:?}"))
            }
            Reply::Bulk(b) if b.len() > self.max_bulk => self.too_long(b),
            Reply::Shared(b) if b.len() > self.max_bulk => self.too_long(b),
            Reply::Array(items) => items.iter().try_for_each(|r| self.check(r)),
            _ => Ok(()),
        }
    }

    fn too_long(&self, b: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "bulk string of {} bytes exceeds the maximum bulk length of {} bytes",
                b.len(),
                self.max_bulk
            ),
        ))
    }

    fn read_command<A: Args, R: BufRead>(&self, r: &mut R) -> Result<Option<A>, Fail> {
        loop {
            let Some(first) = peek(r)? else {
                return Ok(None);
            };
            let args: A = if first == b'*' {
                r.consume(1);
                self.read_array(r)?
            } else {
                self.read_inline(r)?
            };
            // An empty command (a blank line, `*0`, `*-1`) is skipped, as Redis skips it.
            if args.count() != 0 {
                return Ok(Some(args));
            }
        }
    }

    /// Reads the rest of an array command, its `*` already consumed.
    fn read_array<A: Args, R: BufRead>(&self, r: &mut R) -> Result<A, Fail> {
        let invalid_len = || Fail::protocol("invalid multibulk length".to_string());
        let n = match read_header(r)? {
            Some(n) => n,
            None => return Err(invalid_len()),
        };
        if n <= 0 {
            return match n {
                0 | -1 => Ok(A::with_capacity(0)),
                _ => Err(invalid_len()),
            };
        }
        if n as u64 > self.max_array as u64 {
            return Err(Fail::protocol(format!(
                "invalid multibulk length ({n} arguments is over the limit of {})",
                self.max_array
            )));
        }
        let n = n as usize; // at most max_array, which is a usize
        let mut args = A::with_capacity(n.min(ARRAY_PREALLOC));
        let mut total = 0usize;
        for _ in 0..n {
            match peek(r)? {
                None => return Err(eof("inside a multibulk command").into()),
                Some(b'$') => r.consume(1),
                Some(other) => {
                    return Err(Fail::protocol(format!(
                        "expected '$', got '{}'",
                        other.escape_ascii()
                    )))
                }
            }
            let len = match read_header(r)? {
                Some(len) if len >= 0 => len as u64,
                _ => return Err(Fail::protocol("invalid bulk length".to_string())),
            };
            if len > self.max_bulk as u64 {
                return Err(Fail::protocol(format!(
                    "invalid bulk length ({len} bytes is over the limit of {})",
                    self.max_bulk
                )));
            }
            let len = len as usize; // at most max_bulk, which is a usize
            total = self.add_to_command(total, len)?;
            read_bulk(r, len, &mut args)?;
        }
        Ok(args)
    }

    /// Adds an argument of `len` bytes (and its overhead) to a command of `total`, within
    /// the command limit.
    fn add_to_command(&self, total: usize, len: usize) -> Result<usize, Fail> {
        let len = len.saturating_add(ARG_OVERHEAD);
        match total.checked_add(len) {
            Some(t) if t <= self.max_command => Ok(t),
            _ => Err(Fail::protocol(format!(
                "command of more than {} bytes is over the limit of {} bytes",
                total.saturating_add(len),
                self.max_command
            ))),
        }
    }

    /// Parses one array command that `buf` holds whole and that keeps every limit: its
    /// arguments and the bytes it took. `None` for anything else (incomplete, inline, empty,
    /// malformed or over a limit), which the streaming parser then reads and words the error
    /// of; so this is only a shortcut, never a second opinion.
    fn parse_buffered<A: Args>(&self, buf: &[u8]) -> Option<(A, usize)> {
        if buf.first() != Some(&b'*') {
            return None;
        }
        let (n, mut at) = buffered_header(buf, 1)?;
        // Every argument takes at least 6 bytes (`$0\r\n\r\n`): a count the buffer cannot
        // hold is not allocated for here.
        if n <= 0 || n as u64 > self.max_array as u64 || n as u64 > (buf.len() / 6) as u64 {
            return None;
        }
        let mut args = A::with_capacity(n as usize);
        let mut total = 0usize;
        for _ in 0..n {
            if buf.get(at) != Some(&b'$') {
                return None;
            }
            let (len, start) = buffered_header(buf, at + 1)?;
            if len < 0 || len as u64 > self.max_bulk as u64 {
                return None;
            }
            let len = len as usize; // at most max_bulk, which is a usize
            total = total.checked_add(len.checked_add(ARG_OVERHEAD)?)?;
            let end = start.checked_add(len)?;
            if total > self.max_command || buf.get(end..end.checked_add(2)?)? != b"\r\n" {
                return None;
            }
            args.push(&buf[start..end]);
            at = end + 2;
        }
        Some((args, at))
    }

    /// Reads an inline command: one line, split on ASCII whitespace.
    fn read_inline<A: Args, R: BufRead>(&self, r: &mut R) -> Result<A, Fail> {
        // At most INLINE_MAX bytes of text, `\r` and `\n`, as `Lines` reads.
        let limit = INLINE_MAX + 2;
        let mut line = Vec::new();
        Read::take(&mut *r, limit as u64).read_until(b'\n', &mut line)?;
        let too_big =
            || Fail::protocol(format!("too big inline request (over {INLINE_MAX} bytes)"));
        let Some(text) = line.strip_suffix(b"\n") else {
            if line.len() == limit {
                return Err(too_big());
            }
            return Err(eof("inside an inline command").into());
        };
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.len() > INLINE_MAX {
            return Err(too_big());
        }
        let mut args = A::with_capacity(0);
        let mut total = 0;
        for word in text
            .split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty())
        {
            if args.count() == self.max_array || word.len() > self.max_bulk {
                return Err(Fail::protocol(format!(
                    "inline command over the limits of {} arguments of {} bytes",
                    self.max_array, self.max_bulk
                )));
            }
            total = self.add_to_command(total, word.len())?;
            args.push(word);
        }
        Ok(args)
    }
}

impl Default for Resp {
    /// Same as [`Resp::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// Where the parser puts a command's arguments: a `Vec` each ([`Resp`]'s
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
enum Fail {
    Io(io::Error),
    Protocol(ProtocolError),
}

impl Fail {
    fn protocol(detail: String) -> Fail {
        Fail::Protocol(ProtocolError { detail })
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

fn eof(where_: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("stream ended {where_}"),
    )
}

/// `r.fill_buf()`, retried on `Interrupted` (a retry by the caller would lose the codec's
/// place inside a command): true if bytes are buffered, false at the end of the stream. After
/// `true`, `r.fill_buf()` returns them without reading again.
fn fill<R: BufRead>(r: &mut R) -> io::Result<bool> {
    loop {
        match r.fill_buf() {
            Ok(buf) => return Ok(!buf.is_empty()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The next byte, not consumed; `None` at the end of the stream.
fn peek<R: BufRead>(r: &mut R) -> io::Result<Option<u8>> {
    Ok(if fill(r)? {
        r.fill_buf()?.first().copied()
    } else {
        None
    })
}

/// Reads the number of a `*N\r\n` or `$N\r\n` line, its type byte already consumed. `None`
/// when the line is not a valid integer ended by `\r\n` within [`HEADER_MAX`] bytes (what is
/// read of it is consumed: the stream is not parsed again after a protocol error).
fn read_header<R: BufRead>(r: &mut R) -> io::Result<Option<i64>> {
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
            return Ok(line[..n]
                .strip_suffix(b"\r\n")
                .and_then(Resp::parse_integer));
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
fn buffered_header(buf: &[u8], at: usize) -> Option<(i64, usize)> {
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
    Some((Resp::parse_integer(&line[..cr])?, at + cr + 2))
}

/// Reads a bulk string's `len` bytes and the `\r\n` after them into `args`. `len` is within
/// the limits.
fn read_bulk<A: Args, R: BufRead>(r: &mut R, len: usize, args: &mut A) -> Result<(), Fail> {
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

impl super::Codec for Resp {
    type In = Result<Vec<Vec<u8>>, ProtocolError>;
    type Out = Reply;

    /// Reads one command: `Ok(Some(Ok(args)))`, with at least one argument (the command
    /// name), or `Ok(Some(Err(e)))` when the peer broke the protocol or a limit. After such an
    /// error, every read discards its input until the end of the stream.
    ///
    /// Returns `Ok(None)` when the stream ends between commands.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::UnexpectedEof`] when the stream ends inside a command.
    /// * Any I/O error from `r`.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Self::In>> {
        self.decode(r)
    }

    /// Writes one reply.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidInput`] when a simple string or an error contains `\r` or
    ///   `\n`, or a bulk string is longer than [`max_bulk_length`](Resp::max_bulk_length),
    ///   anywhere in the reply; nothing is written.
    /// * Any I/O error from `w`.
    fn write<W: Write>(&self, msg: &Reply, w: &mut W) -> io::Result<()> {
        self.check(msg)?;
        encode(msg, w)
    }

    /// Sets the longest argument, in bytes, as [`max_bulk_length`](Resp::max_bulk_length)
    /// does, and raises [`max_command_length`](Resp::max_command_length) if needed so that a
    /// command with an argument that long and 64 KiB of others (a key, options) fits.
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.max_bulk = bytes;
        self.max_command = self.max_command.max(bytes.saturating_add(64 * 1024));
    }
}

impl Resp {
    /// [`Codec::read`](super::Codec::read), with the arguments collected into `A`: the one
    /// parser behind [`Resp`] and [`RespCommands`](super::RespCommands).
    pub(super) fn decode<A: Args, R: BufRead>(
        &mut self,
        r: &mut R,
    ) -> io::Result<Option<Result<A, ProtocolError>>> {
        if self.poisoned {
            loop {
                if !fill(r)? {
                    return Ok(None);
                }
                let n = r.fill_buf()?.len();
                r.consume(n);
            }
        }
        // The usual case: the whole command is buffered, and is parsed from the buffer in one
        // pass. Anything else (a command cut by the buffer's end, an inline or empty one, input
        // that breaks the protocol or a limit) is read by the streaming parser below, from the
        // same place: the fast path consumes nothing unless it returns a command.
        let parsed = loop {
            match r.fill_buf() {
                Ok(buf) => break self.parse_buffered(buf),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if let Some((args, used)) = parsed {
            r.consume(used);
            return Ok(Some(Ok(args)));
        }
        match self.read_command(r) {
            Ok(args) => Ok(args.map(Ok)),
            Err(Fail::Io(e)) => Err(e),
            Err(Fail::Protocol(e)) => {
                self.poisoned = true;
                Ok(Some(Err(e)))
            }
        }
    }
}

/// Input that breaks RESP or one of the [`Resp`] limits: what Redis answers with
/// `-ERR Protocol error: ...` before it closes the connection.
///
/// `Display` gives Redis' wording (`Protocol error: invalid bulk length`), with the limit
/// added when one was passed; [`reply`](ProtocolError::reply) is the error reply to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// What was wrong, with no `\r` or `\n` in it.
    detail: String,
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

#[cfg(test)]
#[path = "resp_tests.rs"]
mod tests;
