//! The requests of the Redis protocol (RESP), as `std-resp` reads them: an array of bulk
//! strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), or an inline command (`PING\r\n`, which
//! `redis-benchmark -t ping` also sends).

use std::io::{self, BufRead, ErrorKind, Read};

/// The longest bulk string or inline line accepted (16 MiB); a longer one closes the
/// connection before anything is allocated for it.
pub const MAX_BULK: usize = 16 << 20;

/// The most arguments in one request.
pub const MAX_ARGS: usize = 1024;

/// Whether `buf` starts with a whole request. The server flushes its replies only when it
/// does not, that is when its next read could wait. Malformed input counts as whole, so
/// that [`read_request`] reports it at once.
pub fn starts_with_request(buf: &[u8]) -> bool {
    if buf.first() != Some(&b'*') {
        return buf.contains(&b'\n');
    }
    let Some((count, mut at)) = number_line(buf, 0) else {
        return false;
    };
    for _ in 0..count.max(0) {
        if buf.get(at).is_none() {
            return false;
        }
        let Some((len, next)) = number_line(buf, at) else {
            return false;
        };
        at = next
            .saturating_add(usize::try_from(len).unwrap_or(0))
            .saturating_add(2);
        if at > buf.len() {
            return false;
        }
    }
    true
}

/// `(n, index after its line)` for the line `Xn\r\n` at `buf[at..]` (X any one byte), or
/// `None` if the line is not all there. A line that is not a number reads as 0.
fn number_line(buf: &[u8], at: usize) -> Option<(i64, usize)> {
    let end = at + buf.get(at..)?.iter().position(|&b| b == b'\n')?;
    let text = std::str::from_utf8(&buf[at + 1..end]).unwrap_or("");
    Some((text.trim_end().parse().unwrap_or(0), end + 1))
}

/// Reads one request into `args` (its arguments, reusing their allocations). Returns
/// `Ok(false)` if the peer closed the connection before a request began.
///
/// # Errors
///
/// `InvalidData` for a request that breaks the protocol or the limits ([`MAX_BULK`],
/// [`MAX_ARGS`]); `UnexpectedEof` if the peer closed in the middle of one; and any read error.
pub fn read_request(input: &mut impl BufRead, args: &mut Vec<Vec<u8>>) -> io::Result<bool> {
    let mut line = Vec::new();
    if input.fill_buf()?.is_empty() {
        return Ok(false);
    }
    if input.fill_buf()?[0] != b'*' {
        read_line(input, &mut line)?;
        args.clear();
        for word in line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            args.push(word.to_vec());
        }
        return Ok(true);
    }
    let count = header(input, b'*', &mut line, MAX_ARGS)?;
    args.resize_with(count, Vec::new);
    for arg in args.iter_mut() {
        let len = header(input, b'$', &mut line, MAX_BULK)?;
        arg.resize(len + 2, 0);
        input.read_exact(arg)?;
        if !arg.ends_with(b"\r\n") {
            return Err(invalid("bulk string not followed by CRLF"));
        }
        arg.truncate(len);
    }
    Ok(true)
}

/// Reads `Xn\r\n` with X = `kind` and 0 ≤ n ≤ `max`, and returns n.
fn header(input: &mut impl BufRead, kind: u8, line: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    read_line(input, line)?;
    if line.first() != Some(&kind) {
        return Err(invalid("expected '*' or '$'"));
    }
    std::str::from_utf8(&line[1..])
        .ok()
        .and_then(|text| text.trim_end().parse::<usize>().ok())
        .filter(|&n| n <= max)
        .ok_or_else(|| invalid("bad length"))
}

/// Reads one line, at most [`MAX_BULK`] bytes, into `line` (without its `\n`).
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<()> {
    line.clear();
    let read = Read::take(&mut *input, MAX_BULK as u64 + 1).read_until(b'\n', line)?;
    if line.pop() != Some(b'\n') {
        return Err(if read > MAX_BULK {
            invalid("line too long")
        } else {
            ErrorKind::UnexpectedEof.into()
        });
    }
    Ok(())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n";

    #[test]
    fn a_request_is_whole_only_with_all_its_bytes() {
        assert!(starts_with_request(SET));
        for cut in 0..SET.len() {
            assert!(!starts_with_request(&SET[..cut]), "{cut}");
        }
        assert!(starts_with_request(b"PING\r\n"));
        assert!(!starts_with_request(b"PIN"));
    }

    #[test]
    fn reads_arrays_and_inline_commands() {
        let input = [SET, b"PING hello\r\n", b"*1\r\n$0\r\n\r\n"].concat();
        let mut input = &input[..];
        let mut args = Vec::new();
        assert!(read_request(&mut input, &mut args).unwrap());
        assert_eq!(args, [&b"SET"[..], b"k", b"value"]);
        assert!(read_request(&mut input, &mut args).unwrap());
        assert_eq!(args, [&b"PING"[..], b"hello"]);
        assert!(read_request(&mut input, &mut args).unwrap());
        assert_eq!(args, [&b""[..]]);
        assert!(!read_request(&mut input, &mut args).unwrap());
    }

    #[test]
    fn rejects_broken_and_oversized_requests() {
        let mut args = Vec::new();
        for bad in [
            &b"*1\r\n+GET\r\n"[..],
            b"*1\r\n$99999999999\r\n",
            b"*1\r\n$1\r\nab\r\n",
        ] {
            let err = read_request(&mut &bad[..], &mut args).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{bad:?}");
        }
        let err = read_request(&mut &SET[..10], &mut args).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }
}
