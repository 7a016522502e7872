//! Unit tests of `resp.rs`.

use super::*;
use crate::codec::resp_reply::SMALL;
use crate::codec::test_util::{outcome, Counting, OneByte, Trickle};
use crate::codec::Codec;
use std::io::{BufReader, ErrorKind};

type Args = Vec<Vec<u8>>;

fn args(words: &[&[u8]]) -> Args {
    words.iter().map(|w| w.to_vec()).collect()
}

/// Every command in `input`, in order, up to a clean EOF.
fn read_all(codec: &mut Resp, r: &mut impl BufRead) -> Vec<Args> {
    let mut out = Vec::new();
    while let Some(cmd) = codec.read(r).unwrap() {
        out.push(cmd.unwrap());
    }
    out
}

/// The protocol error `input` makes the codec return (after any good commands before it).
fn protocol_error(codec: &mut Resp, input: &[u8]) -> ProtocolError {
    let mut r = input;
    loop {
        match codec.read(&mut r) {
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return e,
            other => panic!(
                "{:?}: expected a protocol error, got {other:?}",
                input.escape_ascii().to_string()
            ),
        }
    }
}

fn encode(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    Resp::new().write(reply, &mut out).unwrap();
    out
}

const MIXED: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n\
    PING\r\n\
    \r\n\
    *0\r\n*-1\r\n\
    \t get  \tk \n\
    *2\r\n$4\r\nECHO\r\n$0\r\n\r\n";

fn mixed_commands() -> Vec<Args> {
    vec![
        args(&[b"SET", b"k", b"a\r\nb"]),
        args(&[b"PING"]),
        args(&[b"get", b"k"]),
        args(&[b"ECHO", b""]),
    ]
}

#[test]
fn defaults() {
    for codec in [Resp::new(), Resp::default()] {
        assert_eq!(codec.get_max_array_length(), 1024 * 1024);
        assert_eq!(codec.get_max_bulk_length(), 512 * 1024 * 1024);
        assert_eq!(codec.get_max_command_length(), 1024 * 1024);
    }
}

#[test]
fn reads_arrays_and_inline_and_skips_empty_commands() {
    let mut codec = Resp::new();
    let mut r = MIXED;
    assert_eq!(read_all(&mut codec, &mut r), mixed_commands());
    // Only empty commands, then EOF: a clean end.
    let mut r: &[u8] = b"\r\n*0\r\n\n";
    assert_eq!(codec.read(&mut r).unwrap(), None);
}

#[test]
fn split_one_byte_at_a_time() {
    for cap in [1, 2, 3, 7] {
        let mut codec = Resp::new();
        let mut r = BufReader::with_capacity(cap, OneByte(MIXED));
        assert_eq!(read_all(&mut codec, &mut r), mixed_commands(), "cap {cap}");
    }
}

#[test]
fn eof_inside_a_command_is_unexpected_eof() {
    let cmd = b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n";
    for cut in 1..cmd.len() {
        for cap in [1, 64] {
            let mut codec = Resp::new();
            let mut r = BufReader::with_capacity(cap, OneByte(&cmd[..cut]));
            let err = codec.read(&mut r).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "cut {cut} cap {cap}");
        }
    }
    let mut codec = Resp::new();
    let mut r: &[u8] = b"PING";
    assert_eq!(
        codec.read(&mut r).unwrap_err().kind(),
        ErrorKind::UnexpectedEof
    );
}

#[test]
fn malformed_input_is_a_protocol_error() {
    let cases: &[(&[u8], &str)] = &[
        (b"*x\r\n", "invalid multibulk length"),
        (b"*\r\n", "invalid multibulk length"),
        (b"*-2\r\n", "invalid multibulk length"),
        (b"*+1\r\n", "invalid multibulk length"),
        (b"*01\r\n", "invalid multibulk length"),
        (b"*1\n", "invalid multibulk length"),
        (b"*1\rx\n", "invalid multibulk length"),
        (b"*99999999999999999999\r\n", "invalid multibulk length"),
        (
            b"*1111111111111111111111111111111111111111",
            "invalid multibulk length",
        ),
        (b"*1\r\n:5\r\n", "expected '$', got ':'"),
        (b"*1\r\n\r\n", "expected '$', got '\\r'"),
        (b"*1\r\n$x\r\nab\r\n", "invalid bulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$-5\r\n", "invalid bulk length"),
        (b"*1\r\n$9223372036854775808\r\n", "invalid bulk length"),
        (
            b"*1\r\n$1\r\nab\r\n",
            "bulk string of 1 bytes is not followed by CRLF",
        ),
        (b"*2\r\n$1\r\na\r\n$1\r\nb\n\n", "not followed by CRLF"),
        (b"PING\r\n*1\r\n$x\r\n", "invalid bulk length"),
    ];
    for &(input, want) in cases {
        for cap in [1, 64] {
            let mut codec = Resp::new();
            let mut r = BufReader::with_capacity(cap, OneByte(input));
            let err = loop {
                match codec.read(&mut r) {
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(e))) => break e,
                    other => panic!("{}: {other:?}", input.escape_ascii()),
                }
            };
            assert!(
                err.detail().contains(want),
                "{}: {err} does not say {want:?}",
                input.escape_ascii()
            );
            let reply = encode(&err.reply());
            assert!(reply.starts_with(b"-ERR Protocol error: "), "{reply:?}");
            assert_eq!(reply.iter().filter(|&&b| b == b'\n').count(), 1);
        }
    }
}

#[test]
fn limits_are_checked_before_reading_the_payload() {
    // Each header announces too much, then endless bytes follow: the error must come
    // right after the header, with nothing of the payload read.
    let cases: &[(Resp, &[u8], &str)] = &[
        (
            Resp::new().max_bulk_length(10),
            b"*1\r\n$11\r\n",
            "11 bytes is over the limit of 10",
        ),
        (
            Resp::new(),
            b"*1\r\n$536870913\r\n",
            "invalid bulk length (536870913 bytes",
        ),
        (
            Resp::new(),
            b"*1\r\n$9223372036854775807\r\n",
            "invalid bulk length",
        ),
        (
            Resp::new().max_array_length(3),
            b"*4\r\n",
            "4 arguments is over the limit of 3",
        ),
        (
            Resp::new(),
            b"*1048577\r\n",
            "invalid multibulk length (1048577 arguments",
        ),
        (
            // (4 + 64) + (5 + 64) bytes: over at the second header.
            Resp::new().max_command_length(130),
            b"*2\r\n$4\r\nabcd\r\n$5\r\n",
            "over the limit of 130 bytes",
        ),
    ];
    for (codec, header, want) in cases {
        let mut codec = codec.clone();
        let endless = Counting {
            inner: header.chain(io::repeat(b'a')),
            count: 0,
        };
        let mut r = BufReader::with_capacity(1, endless);
        let err = match codec.read(&mut r).unwrap() {
            Some(Err(e)) => e,
            other => panic!("{}: {other:?}", header.escape_ascii()),
        };
        assert!(err.detail().contains(want), "{err} does not say {want:?}");
        assert_eq!(r.get_ref().count, header.len(), "{}", header.escape_ascii());
    }
}

#[test]
fn many_tiny_arguments_are_counted_with_their_overhead() {
    // A million arguments announced, then one-byte arguments without end: refused once
    // their memory (not their bytes) crosses the command limit, 1 MiB by default.
    let endless = Counting {
        inner: b"*1048576\r\n".chain(Repeat(b"$1\r\na\r\n", 0)),
        count: 0,
    };
    let mut r = BufReader::with_capacity(1, endless);
    let err = match Resp::new().read(&mut r).unwrap() {
        Some(Err(e)) => e,
        Some(Ok(args)) => panic!("a command of {} arguments was taken", args.len()),
        None => panic!("EOF"),
    };
    assert!(err.detail().contains("over the limit of 1048576"), "{err}");
    // The header, the arguments taken, and the `$1\r\n` of the one refused.
    let taken = (r.get_ref().count - 10 - 4) / 7;
    assert_eq!(taken, 1024 * 1024 / (1 + ARG_OVERHEAD));
    // A large value still fits: SET k <1 000 000 bytes>.
    let mut wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\n".to_vec();
    wire.resize(wire.len() + 1_000_000, b'v');
    wire.extend_from_slice(b"\r\n");
    let got = read_all(&mut Resp::new(), &mut BufReader::new(&wire[..]));
    assert_eq!(got[0][2].len(), 1_000_000);
}

/// Repeats a pattern forever.
struct Repeat(&'static [u8], usize);

impl Read for Repeat {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        for b in buf.iter_mut() {
            *b = self.0[self.1];
            self.1 = (self.1 + 1) % self.0.len();
        }
        Ok(buf.len())
    }
}

#[test]
fn a_large_announced_bulk_is_not_reserved_up_front() {
    // 512 MiB announced (the default limit), 3 bytes sent: the buffer holds what arrived.
    let mut r = BufReader::with_capacity(1, OneByte(b"abc"));
    let err = read_bulk(&mut r, DEFAULT_MAX_BULK, &mut Args::new());
    assert!(matches!(err, Err(Fail::Io(e)) if e.kind() == ErrorKind::UnexpectedEof));
    // And a large bulk that does arrive is read whole.
    let mut wire = b"*1\r\n$300000\r\n".to_vec();
    wire.extend((0..300_000u32).map(|i| i as u8));
    wire.extend_from_slice(b"\r\n");
    let got = read_all(
        &mut Resp::new(),
        &mut BufReader::with_capacity(4096, &wire[..]),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0], &wire[13..wire.len() - 2]);
}

#[test]
fn inline_commands_are_limited_to_64_kib() {
    let mut codec = Resp::new();
    let mut exact = vec![b'a'; INLINE_MAX];
    exact.extend_from_slice(b"\r\n");
    let mut r = &exact[..];
    assert_eq!(read_all(&mut codec, &mut r), [vec![vec![b'a'; INLINE_MAX]]]);
    // One byte over, whatever the terminator.
    for end in [&b"\n"[..], b"\r\n"] {
        let mut over = vec![b'a'; INLINE_MAX + 1];
        over.extend_from_slice(end);
        let e = protocol_error(&mut Resp::new(), &over);
        assert!(e.detail().contains("too big inline request"), "{e}");
    }

    // One byte more, with no end in sight: refused after about the limit.
    let endless = Counting {
        inner: io::repeat(b'a'),
        count: 0,
    };
    let mut r = BufReader::with_capacity(4096, endless);
    let err = match codec.read(&mut r).unwrap() {
        Some(Err(e)) => e,
        other => panic!("{other:?}"),
    };
    assert!(err.detail().contains("too big inline request"), "{err}");
    assert!(r.get_ref().count <= INLINE_MAX + 4096 + 2);
}

#[test]
fn inline_commands_obey_the_other_limits() {
    let mut codec = Resp::new().max_array_length(2);
    let e = protocol_error(&mut codec, b"a b\r\na b c\r\n");
    assert!(e.detail().contains("2 arguments"), "{e}");
    let mut codec = Resp::new().max_bulk_length(3);
    protocol_error(&mut codec, b"abcd\r\n");
    let mut codec = Resp::new().max_command_length(3);
    protocol_error(&mut codec, b"ab cd\r\n");
}

#[test]
fn after_a_protocol_error_the_rest_is_discarded_until_eof() {
    let mut codec = Resp::new();
    let mut r: &[u8] = b"*1\r\n:1\r\n*1\r\n$4\r\nPING\r\nPING\r\n";
    assert!(matches!(codec.read(&mut r), Ok(Some(Err(_)))));
    assert!(codec.read(&mut r).unwrap().is_none());
    assert!(r.is_empty());
}

/// Fails every other call with `Interrupted`.
struct Interrupting<'a> {
    inner: OneByte<'a>,
    fail: bool,
}

impl Read for Interrupting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fail = !self.fail;
        if self.fail {
            return Err(ErrorKind::Interrupted.into());
        }
        self.inner.read(buf)
    }
}

#[test]
fn interrupted_reads_do_not_lose_the_place() {
    let mut codec = Resp::new();
    let inner = Interrupting {
        inner: OneByte(MIXED),
        fail: false,
    };
    let mut r = BufReader::with_capacity(1, inner);
    let mut got = Vec::new();
    loop {
        match codec.read(&mut r) {
            Ok(Some(cmd)) => got.push(cmd.unwrap()),
            Ok(None) => break,
            // The connection retries a read that failed with `Interrupted`.
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, mixed_commands());
}

#[test]
fn writes_every_reply() {
    let cases: Vec<(Reply, &[u8])> = vec![
        (Reply::ok(), b"+OK\r\n"),
        (Reply::simple("PONG"), b"+PONG\r\n"),
        (Reply::simple(String::new()), b"+\r\n"),
        (Reply::error("ERR no"), b"-ERR no\r\n"),
        (Reply::Integer(0), b":0\r\n"),
        (Reply::Integer(42), b":42\r\n"),
        (Reply::Integer(i64::MAX), b":9223372036854775807\r\n"),
        (Reply::Integer(i64::MIN), b":-9223372036854775808\r\n"),
        (Reply::bulk("hi"), b"$2\r\nhi\r\n"),
        (Reply::bulk(""), b"$0\r\n\r\n"),
        (Reply::bulk("a\r\nb"), b"$4\r\na\r\nb\r\n"),
        (Reply::Null, b"$-1\r\n"),
        (Reply::NullArray, b"*-1\r\n"),
        (Reply::Array(vec![]), b"*0\r\n"),
        (
            Reply::Array(vec![
                Reply::Integer(1),
                Reply::Array(vec![Reply::bulk("x"), Reply::Null]),
                Reply::ok(),
            ]),
            b"*3\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n+OK\r\n",
        ),
    ];
    for (reply, want) in cases {
        assert_eq!(encode(&reply), want, "{reply:?}");
    }
}

#[test]
fn writes_large_bulks_and_strings() {
    for len in [SMALL - 8, SMALL - 7, SMALL, 100_000] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut want = format!("${len}\r\n").into_bytes();
        want.extend_from_slice(&data);
        want.extend_from_slice(b"\r\n");
        assert_eq!(encode(&Reply::Bulk(data)), want, "len {len}");

        let text = "e".repeat(len);
        assert_eq!(
            encode(&Reply::error(text.clone())),
            format!("-{text}\r\n").as_bytes()
        );
    }
}

#[test]
fn partial_writes_are_completed() {
    let reply = Reply::Array(vec![Reply::bulk(vec![7u8; 1000]), Reply::Integer(-5)]);
    let mut w = Trickle::new(3);
    Resp::new().write(&reply, &mut w).unwrap();
    assert_eq!(w.out, encode(&reply));
}

#[test]
fn write_refuses_cr_lf_and_long_bulks_writing_nothing() {
    let codec = Resp::new().max_bulk_length(3);
    for bad in [
        Reply::simple("a\r\nb"),
        Reply::error("bad\n"),
        Reply::bulk("four"),
        Reply::Array(vec![Reply::ok(), Reply::Array(vec![Reply::simple("\r")])]),
    ] {
        let mut out = Vec::new();
        let err = codec.write(&bad, &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert!(out.is_empty());
    }
}

#[test]
fn set_max_frame_length_sets_the_bulk_limit() {
    let mut codec = Resp::new();
    codec.set_max_frame_length(2);
    assert_eq!(codec.get_max_bulk_length(), 2);
    let e = protocol_error(&mut codec, b"*1\r\n$3\r\nabc\r\n");
    assert!(e.detail().contains("invalid bulk length"), "{e}");
    assert!(codec.write(&Reply::bulk("abc"), &mut Vec::new()).is_err());
}

#[test]
fn parse_integer_is_strict() {
    let good: &[(&[u8], i64)] = &[
        (b"0", 0),
        (b"7", 7),
        (b"-7", -7),
        (b"1234567890", 1_234_567_890),
        (b"9223372036854775807", i64::MAX),
        (b"-9223372036854775808", i64::MIN),
    ];
    for &(s, n) in good {
        assert_eq!(Resp::parse_integer(s), Some(n), "{s:?}");
    }
    for bad in [
        &b""[..],
        b"-",
        b"+5",
        b"00",
        b"-0",
        b"-01",
        b"1 ",
        b" 1",
        b"1.0",
        b"0x1",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"\xff",
    ] {
        assert_eq!(Resp::parse_integer(bad), None, "{bad:?}");
    }
}

#[test]
fn protocol_error_converts_to_invalid_data() {
    let e = protocol_error(&mut Resp::new(), b"*1\r\n$-5\r\n");
    assert_eq!(e.to_string(), "Protocol error: invalid bulk length");
    let io: io::Error = e.into();
    assert_eq!(io.kind(), ErrorKind::InvalidData);
}

#[test]
fn whole_buffered_commands_parse_as_streamed_ones() {
    // A command that is all in the buffer is parsed from it in one pass; one read a byte at a
    // time takes the streaming parser. Both must agree, at every limit's edge and on every
    // malformed header.
    let limits = || {
        Resp::new()
            .max_array_length(3)
            .max_bulk_length(5)
            .max_command_length(3 * (5 + ARG_OVERHEAD))
    };
    let cases: &[&[u8]] = &[
        MIXED,
        b"*3\r\n$5\r\naaaaa\r\n$5\r\nbbbbb\r\n$5\r\nccccc\r\n*1\r\n$1\r\nx\r\n",
        b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n",
        b"*1\r\n$6\r\naaaaaa\r\n",
        b"*1\r\n$5\r\naaaaaXY",
        b"*1\r\n$05\r\naaaaa\r\n",
        b"*1\r\n$+5\r\naaaaa\r\n",
        b"*1\r\n$-0\r\n\r\n",
        b"*1\r\n$0\r\n\r\n*01\r\n$1\r\na\r\n",
        b"*1\r\n$1\r2\r\na\r\n",
        b"*1\r\n$1\na\r\n",
        b"*1\r\n$9223372036854775807\r\n",
        b"*1\r\n$9223372036854775808\r\n",
        b"*1\r\n$123456789012345678\r\n",
        b"*1\r\n$1234567890123456789012345678901234567890\r\n",
        b"*2\r\n$1\r\na\r\n:1\r\n",
        b"*2\r\n$1\r\na\r\n",
        b"*-2\r\n",
    ];
    for &input in cases {
        let whole = outcome(limits(), &mut &input[..]);
        let streamed = outcome(limits(), &mut BufReader::with_capacity(1, OneByte(input)));
        assert_eq!(whole, streamed, "{}", input.escape_ascii());
    }
    // The limits are inclusive in both: three arguments of five bytes fit exactly.
    let (got, end) = outcome(limits(), &mut &cases[1][..]);
    assert_eq!((got.len(), end.as_str()), (2, "EOF"));
}
