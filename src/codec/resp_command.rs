//! [`RespCommands`]: the RESP codec with commands decoded into one [`Command`] each, all its
//! arguments in one buffer, with no allocation for a small command.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::ops::Index;

use super::resp::Resp;
use super::resp_parse::{Args, ProtocolError};
use super::resp_reply::Reply;
use super::Codec;

/// Bytes of arguments a [`Command`] holds without allocating.
const INLINE_BYTES: usize = 96;
/// Arguments a [`Command`] holds without allocating.
const INLINE_ARGS: usize = 8;
// Argument bounds are kept in `u8`s while inline.
const _: () = assert!(INLINE_BYTES <= u8::MAX as usize);

/// One RESP command: its arguments (the name first), as byte strings, all in one buffer.
///
/// What [`RespCommands`] reads. A command of at most 8 arguments and 96 bytes of them
/// (`SET key value`, `GET key`, `INCR counter`) lives entirely inside the `Command` (112
/// bytes), so decoding it allocates nothing; a larger one holds two allocations (its bytes,
/// and where each argument ends), never one per argument.
///
/// ```
/// use threadnet::codec::Command;
///
/// let cmd: Command = ["SET", "k", "hello"].into_iter().collect();
/// assert_eq!(cmd.len(), 3);
/// assert_eq!(&cmd[0], b"SET");
/// assert!(cmd.name().eq_ignore_ascii_case(b"set"));
/// assert_eq!(cmd.iter().skip(1).collect::<Vec<_>>(), [&b"k"[..], b"hello"]);
/// assert_eq!(cmd, ["SET", "k", "hello"]);
/// assert_eq!(cmd.into_vec(), [b"SET".to_vec(), b"k".to_vec(), b"hello".to_vec()]);
/// ```
#[derive(Clone)]
pub struct Command(Repr);

/// A command's storage: all inline, or all on the heap.
#[derive(Clone)]
enum Repr {
    /// `n` arguments, argument `i` at `bytes[bounds[i]..bounds[i + 1]]` (`bounds[0]` is 0).
    Inline {
        n: u8,
        bounds: [u8; INLINE_ARGS + 1],
        bytes: [u8; INLINE_BYTES],
    },
    /// Argument `i` at `bytes[bounds[i]..bounds[i + 1]]` (`bounds[0]` is 0).
    Heap { bounds: Vec<usize>, bytes: Vec<u8> },
}

impl Default for Command {
    fn default() -> Command {
        Command(Repr::Inline {
            n: 0,
            bounds: [0; INLINE_ARGS + 1],
            bytes: [0; INLINE_BYTES],
        })
    }
}

impl Command {
    /// A command with no arguments.
    pub fn new() -> Command {
        Command::default()
    }

    /// Adds an argument at the end.
    #[inline]
    pub fn push(&mut self, arg: &[u8]) {
        if let Repr::Inline { n, bounds, bytes } = &mut self.0 {
            let k = usize::from(*n);
            let start = usize::from(bounds[k]);
            let end = start + arg.len();
            if k < INLINE_ARGS && end <= INLINE_BYTES {
                bytes[start..end].copy_from_slice(arg);
                bounds[k + 1] = end as u8; // at most INLINE_BYTES, which fits
                *n += 1;
                return;
            }
        }
        let bytes = self.heap();
        bytes.extend_from_slice(arg);
        self.end_heap_arg();
    }

    /// The bytes on the heap, moved there now if they were inline.
    fn heap(&mut self) -> &mut Vec<u8> {
        if let Repr::Inline { n, bounds, bytes } = &self.0 {
            let bounds = &bounds[..=usize::from(*n)];
            let end = usize::from(bounds[bounds.len() - 1]);
            let mut heap = Vec::with_capacity(2 * INLINE_BYTES);
            heap.extend_from_slice(&bytes[..end]);
            let bounds = bounds.iter().map(|&b| usize::from(b)).collect();
            self.0 = Repr::Heap {
                bounds,
                bytes: heap,
            };
        }
        match &mut self.0 {
            Repr::Heap { bytes, .. } => bytes,
            Repr::Inline { .. } => unreachable!("moved to the heap above"),
        }
    }

    /// Ends an argument appended to [`heap`](Self::heap)'s bytes.
    fn end_heap_arg(&mut self) {
        if let Repr::Heap { bounds, bytes } = &mut self.0 {
            bounds.push(bytes.len());
        }
    }

    /// How many arguments there are, the name included.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Inline { n, .. } => usize::from(*n),
            Repr::Heap { bounds, .. } => bounds.len() - 1,
        }
    }

    /// True if there are none (never for a command [`RespCommands`] read).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Argument `i` (0 is the name), or `None` past the last.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        match &self.0 {
            Repr::Inline { n, bounds, bytes } => {
                if i >= usize::from(*n) {
                    return None;
                }
                bytes.get(usize::from(bounds[i])..usize::from(bounds[i + 1]))
            }
            Repr::Heap { bounds, bytes } => {
                let end = *bounds.get(i + 1)?;
                bytes.get(bounds[i]..end)
            }
        }
    }

    /// The command's name, its first argument: empty if it has none. In the case the peer
    /// sent it (compare with `eq_ignore_ascii_case`).
    #[inline]
    pub fn name(&self) -> &[u8] {
        self.get(0).unwrap_or_default()
    }

    /// The arguments in order, the name first.
    pub fn iter(&self) -> CommandIter<'_> {
        CommandIter { cmd: self, at: 0 }
    }

    /// The arguments as one `Vec` each, what [`Resp`] reads.
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }

    /// The arguments as one `Vec` each, what [`Resp`] reads: for code written for it.
    pub fn into_vec(self) -> Vec<Vec<u8>> {
        self.to_vec()
    }

    /// True if the command is stored inline (for tests).
    #[cfg(test)]
    fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

impl PartialEq for Command {
    fn eq(&self, other: &Command) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Command {}

impl Index<usize> for Command {
    type Output = [u8];

    /// Argument `i` (0 is the name).
    ///
    /// # Panics
    ///
    /// If there are not more than `i` arguments.
    #[inline]
    fn index(&self, i: usize) -> &[u8] {
        match self.get(i) {
            Some(arg) => arg,
            None => panic!("argument {i} of a command of {} arguments", self.len()),
        }
    }
}

impl<A: AsRef<[u8]>> FromIterator<A> for Command {
    fn from_iter<I: IntoIterator<Item = A>>(args: I) -> Command {
        let mut cmd = Command::new();
        for arg in args {
            cmd.push(arg.as_ref());
        }
        cmd
    }
}

impl From<Command> for Vec<Vec<u8>> {
    fn from(cmd: Command) -> Vec<Vec<u8>> {
        cmd.into_vec()
    }
}

impl<A: AsRef<[u8]>, const N: usize> PartialEq<[A; N]> for Command {
    fn eq(&self, other: &[A; N]) -> bool {
        self.len() == N && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<A: AsRef<[u8]>> PartialEq<Vec<A>> for Command {
    fn eq(&self, other: &Vec<A>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl fmt::Debug for Command {
    /// The arguments as escaped ASCII strings: `["SET", "k", "\x00"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|a| a.escape_ascii().to_string()))
            .finish()
    }
}

impl<'a> IntoIterator for &'a Command {
    type Item = &'a [u8];
    type IntoIter = CommandIter<'a>;

    fn into_iter(self) -> CommandIter<'a> {
        self.iter()
    }
}

/// The arguments of a [`Command`], in order: [`Command::iter`].
#[derive(Clone, Debug)]
pub struct CommandIter<'a> {
    cmd: &'a Command,
    at: usize,
}

impl<'a> Iterator for CommandIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let arg = self.cmd.get(self.at)?;
        self.at += 1;
        Some(arg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.cmd.len() - self.at;
        (left, Some(left))
    }
}

impl ExactSizeIterator for CommandIter<'_> {}

impl Args for Command {
    #[inline]
    fn with_capacity(_: usize) -> Self {
        Command::new()
    }

    #[inline]
    fn push(&mut self, arg: &[u8]) {
        Command::push(self, arg);
    }

    fn start_arg(&mut self) -> &mut Vec<u8> {
        self.heap()
    }

    fn end_arg(&mut self) {
        self.end_heap_arg();
    }

    fn count(&self) -> usize {
        self.len()
    }
}

/// The RESP codec ([`Resp`]: the same wire format, limits and replies) with each command
/// read as one [`Command`] instead of a `Vec` per argument: a small command is decoded with
/// no allocation at all. For a server's hot path; [`Resp`] stays for code written against
/// `Vec<Vec<u8>>` (and [`Command::into_vec`] converts).
///
/// A message read is `Ok(command)` or `Err(`[`ProtocolError`]`)`, answered and followed by
/// a graceful close exactly as with [`Resp`]. The limits are [`Resp`]'s, set on a `Resp`
/// and carried over with [`Resp::commands`]; [`max_command_length`](Resp::max_command_length)
/// counts each argument with the same 64 bytes of overhead (a `Command` really spends 8), so
/// both codecs accept the same commands.
///
/// ```
/// use threadnet::{codec::{Reply, Resp, RespCommands}, Codec};
///
/// let mut codec = Resp::new().max_command_length(4096).commands();
/// let mut input: &[u8] = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n";
/// let get = codec.read(&mut input).unwrap().unwrap().unwrap();
/// assert_eq!(get, ["GET", "k"]);
/// let ping = codec.read(&mut input).unwrap().unwrap().unwrap(); // inline
/// assert_eq!(ping, ["PING"]);
/// assert!(codec.read(&mut input).unwrap().is_none()); // clean EOF
///
/// let mut wire = Vec::new();
/// codec.write(&Reply::ok(), &mut wire).unwrap();
/// assert_eq!(wire, b"+OK\r\n");
/// # let _ = RespCommands::new();
/// ```
#[derive(Clone, Debug, Default)]
pub struct RespCommands {
    resp: Resp,
}

impl RespCommands {
    /// The codec with [`Resp::new`]'s limits.
    pub fn new() -> RespCommands {
        RespCommands::default()
    }

    /// The limits in force, as the [`Resp`] they came from.
    pub fn limits(&self) -> &Resp {
        &self.resp
    }
}

impl Resp {
    /// This codec's limits on a codec that reads each command as one [`Command`]: see
    /// [`RespCommands`].
    pub fn commands(self) -> RespCommands {
        RespCommands { resp: self }
    }
}

impl Codec for RespCommands {
    type In = Result<Command, ProtocolError>;
    type Out = Reply;

    /// Reads one command, as [`Resp`]'s `read` does.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::UnexpectedEof`] when the stream ends inside a command.
    /// * Any I/O error from `r`.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Self::In>> {
        self.resp.decode(r)
    }

    /// Writes one reply, as [`Resp`]'s `write` does.
    ///
    /// # Errors
    ///
    /// As [`Resp`]'s: [`io::ErrorKind::InvalidInput`] for a reply that cannot be encoded
    /// (nothing is written), or any I/O error from `w`.
    fn write<W: Write>(&self, msg: &Reply, w: &mut W) -> io::Result<()> {
        self.resp.write(msg, w)
    }

    /// As [`Resp`]'s: the longest argument, and the command limit raised to fit it.
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.resp.set_max_frame_length(bytes);
    }
}

#[cfg(test)]
#[path = "resp_command_tests.rs"]
mod tests;
