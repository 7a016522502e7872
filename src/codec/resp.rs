//! RESP2, the Redis protocol, from the server's side: commands in, replies out.
//!
//! The codec and its wire format are documented on [`Resp`] (this module is private, so its own
//! docs are not rendered).

use std::io::{self, BufRead, Read, Write};

use super::resp_parse::{
    buffered_header, eof, fill, parse_integer, peek, read_bulk, read_header, Args, Fail,
    ProtocolError,
};
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
/// use threadnet::{codec::{Reply, Resp}, Codec};
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
    /// use threadnet::{codec::Resp, Codec};
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
    /// use threadnet::{codec::{Reply, Resp}, Codec};
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
    /// use threadnet::{codec::Resp, Codec};
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
    /// use threadnet::codec::Resp;
    ///
    /// assert_eq!(Resp::parse_integer(b"-42"), Some(-42));
    /// assert_eq!(Resp::parse_integer(b"0"), Some(0));
    /// for bad in [&b""[..], b"+1", b"01", b"-0", b" 1", b"1x", b"9223372036854775808"] {
    ///     assert_eq!(Resp::parse_integer(bad), None, "{bad:?}");
    /// }
    /// assert_eq!(Resp::parse_integer(b"-9223372036854775808"), Some(i64::MIN));
    /// ```
    pub fn parse_integer(bytes: &[u8]) -> Option<i64> {
        parse_integer(bytes)
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

#[cfg(test)]
#[path = "resp_tests.rs"]
mod tests;
