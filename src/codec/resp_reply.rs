//! RESP2 replies: the [`Reply`] type and how it is written on the wire, for
//! [`Resp`](super::Resp) and [`RespCommands`](super::RespCommands).

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::Arc;

/// Replies whose whole encoding fits this many bytes are assembled on the stack and written
/// with one `write_all`.
pub(super) const SMALL: usize = 256;

/// The decimal digits of `n` at the end of `buf`.
fn itoa(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut u = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Writes `kind`, `text`, `\r\n`: one `write_all` from the stack when it is small.
fn line<W: Write>(w: &mut W, kind: u8, text: &[u8]) -> io::Result<()> {
    let total = text.len() + 3;
    if total > SMALL {
        w.write_all(&[kind])?;
        return super::frame_io::write_all_pair(w, text, b"\r\n");
    }
    let mut buf = [0u8; SMALL];
    buf[0] = kind;
    buf[1..total - 2].copy_from_slice(text);
    buf[total - 2..total].copy_from_slice(b"\r\n");
    w.write_all(&buf[..total])
}

/// Writes a bulk string: `$`, its length, `\r\n`, its bytes, `\r\n`. A small one is assembled
/// on the stack and written at once; a large one's header goes out with its bytes in one
/// vectored write.
fn bulk<W: Write>(w: &mut W, data: &[u8]) -> io::Result<()> {
    let mut digits = [0u8; 20];
    let len = itoa(data.len() as i64, &mut digits);
    let head = 1 + len.len() + 2;
    let total = head + data.len() + 2;
    let mut buf = [0u8; SMALL];
    buf[0] = b'$';
    buf[1..head - 2].copy_from_slice(len);
    buf[head - 2..head].copy_from_slice(b"\r\n");
    if total > SMALL {
        super::frame_io::write_all_pair(w, &buf[..head], data)?;
        return w.write_all(b"\r\n");
    }
    buf[head..total - 2].copy_from_slice(data);
    buf[total - 2..total].copy_from_slice(b"\r\n");
    w.write_all(&buf[..total])
}

/// Writes `msg`, already checked.
pub(super) fn encode<W: Write>(msg: &Reply, w: &mut W) -> io::Result<()> {
    let mut digits = [0u8; 20];
    match msg {
        Reply::Simple(s) => line(w, b'+', s.as_bytes()),
        Reply::Error(s) => line(w, b'-', s.as_bytes()),
        Reply::Integer(n) => line(w, b':', itoa(*n, &mut digits)),
        Reply::Bulk(b) => bulk(w, b),
        Reply::Shared(b) => bulk(w, b),
        Reply::Null => w.write_all(b"$-1\r\n"),
        Reply::NullArray => w.write_all(b"*-1\r\n"),
        Reply::Array(items) => {
            line(w, b'*', itoa(items.len() as i64, &mut digits))?;
            items.iter().try_for_each(|item| encode(item, w))
        }
    }
}

/// One RESP2 reply: what [`Resp`](super::Resp) writes.
///
/// Simple strings and errors must not contain `\r` or `\n` (writing one fails with
/// [`io::ErrorKind::InvalidInput`]). They are `Cow<'static, str>`, so the usual constant
/// replies (`OK`, `PONG`) cost no allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A simple string: `+OK\r\n`.
    Simple(Cow<'static, str>),
    /// An error; by convention its first word is a code (`ERR`, `WRONGTYPE`): `-ERR no\r\n`.
    Error(Cow<'static, str>),
    /// A signed 64-bit integer: `:42\r\n`.
    Integer(i64),
    /// A binary-safe bulk string: `$2\r\nhi\r\n`.
    Bulk(Vec<u8>),
    /// A bulk string whose bytes are shared, not copied: a value a server keeps as
    /// `Arc<[u8]>` is sent with a reference count, and written straight from the shared
    /// bytes. The same bytes on the wire as [`Bulk`](Reply::Bulk) (but not `==` to it).
    Shared(Arc<[u8]>),
    /// The null bulk string (`GET` of a missing key): `$-1\r\n`.
    Null,
    /// An array of replies: `*2\r\n:1\r\n:2\r\n`.
    Array(Vec<Reply>),
    /// The null array: `*-1\r\n`.
    NullArray,
}

impl Reply {
    /// The simple string `OK`: `+OK\r\n`.
    pub fn ok() -> Reply {
        Reply::Simple(Cow::Borrowed("OK"))
    }

    /// A simple string (no `\r` or `\n` in it).
    pub fn simple(s: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Simple(s.into())
    }

    /// An error (no `\r` or `\n` in it); by convention it starts with a code such as `ERR`.
    pub fn error(s: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(s.into())
    }

    /// A bulk string of any bytes.
    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(bytes.into())
    }
}
