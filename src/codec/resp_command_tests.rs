//! Unit tests of `resp_command.rs`: the `Command` type, and `RespCommands` reading exactly
//! what `Resp` reads.

use super::*;
use crate::codec::test_util::{outcome, Counting, OneByte};
use std::io::{self, BufReader, Read};
use std::sync::Arc;

/// `RespCommands`' messages, converted for comparison with `Resp`'s.
#[derive(Clone)]
struct AsVecs(RespCommands);

impl Codec for AsVecs {
    type In = Result<Vec<Vec<u8>>, ProtocolError>;
    type Out = Reply;

    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Self::In>> {
        Ok(self.0.read(r)?.map(|m| m.map(Command::into_vec)))
    }

    fn write<W: Write>(&self, msg: &Reply, w: &mut W) -> io::Result<()> {
        self.0.write(msg, w)
    }
}

const MIXED: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n\
    PING\r\n\
    \r\n\
    *0\r\n*-1\r\n\
    \t get  \tk \n\
    *2\r\n$4\r\nECHO\r\n$0\r\n\r\n";

/// Encodes `args` as a RESP array.
fn wire(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn command_api() {
    let mut cmd = Command::new();
    assert!(cmd.is_empty());
    assert_eq!(cmd.name(), b"");
    assert_eq!(cmd.get(0), None);
    cmd.push(b"GET");
    cmd.push(b"");
    cmd.push(b"k\x00");
    assert_eq!(cmd.len(), 3);
    assert_eq!(cmd.name(), b"GET");
    assert_eq!(&cmd[1], b"");
    assert_eq!(cmd.get(2), Some(&b"k\x00"[..]));
    assert_eq!(cmd.get(3), None);
    assert_eq!(cmd.iter().len(), 3);
    assert_eq!(
        (&cmd).into_iter().collect::<Vec<_>>(),
        [&b"GET"[..], b"", b"k\x00"]
    );
    assert_eq!(format!("{cmd:?}"), r#"["GET", "", "k\\x00"]"#);
    assert_eq!(cmd, ["GET", "", "k\0"]);
    assert_ne!(cmd, ["GET", ""]);
    assert_eq!(cmd, vec![b"GET".to_vec(), vec![], b"k\0".to_vec()]);
    let copy: Command = cmd.iter().collect();
    assert_eq!(copy, cmd);
    assert_eq!(Vec::from(copy), cmd.to_vec());
}

#[test]
#[should_panic(expected = "argument 2 of a command of 2 arguments")]
fn indexing_past_the_last_argument_panics() {
    let cmd: Command = ["GET", "k"].into_iter().collect();
    let _ = &cmd[2];
}

#[test]
fn small_commands_stay_inline_and_large_ones_move_to_the_heap_whole() {
    assert!(std::mem::size_of::<Command>() <= 112);
    // At the edges: 8 arguments, 96 bytes.
    let eight: Command = (0..8).map(|i| vec![b'a' + i; 12]).collect();
    assert!(eight.is_inline(), "{eight:?}");
    let mut nine = eight.clone();
    nine.push(b"");
    assert!(!nine.is_inline());
    let mut long: Command = (0..7).map(|i| vec![b'a' + i; 12]).collect();
    long.push(&[b'h'; 13]);
    assert!(!long.is_inline());
    // Moved or not, the arguments are the same.
    assert_eq!(nine.len(), 9);
    assert_eq!(
        nine.iter().take(8).collect::<Vec<_>>(),
        eight.iter().collect::<Vec<_>>()
    );
    assert_eq!(&nine[8], b"");
    assert_eq!(&long[7], [b'h'; 13]);
    assert_eq!(&long[6], [b'g'; 12]);
    // A decoded `SET key value` allocates nothing.
    let mut codec = RespCommands::new();
    let bytes = wire(&[b"SET", b"key:__rand_int__", b"xxx"]);
    let cmd = codec.read(&mut &bytes[..]).unwrap().unwrap().unwrap();
    assert!(cmd.is_inline());
    assert_eq!(cmd, ["SET", "key:__rand_int__", "xxx"]);
}

/// Inputs of every shape: inline, empty, at and past every limit's edge, malformed headers,
/// and commands past the inline storage (many arguments, long ones, both).
fn cases() -> Vec<Vec<u8>> {
    let mut cases: Vec<Vec<u8>> = [
        MIXED,
        b"*3\r\n$5\r\naaaaa\r\n$5\r\nbbbbb\r\n$5\r\nccccc\r\n*1\r\n$1\r\nx\r\n",
        b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n",
        b"*1\r\n$6\r\naaaaaa\r\n",
        b"*1\r\n$5\r\naaaaaXY",
        b"*1\r\n$05\r\naaaaa\r\n",
        b"*1\r\n$-0\r\n\r\n",
        b"*2\r\n$1\r\na\r\n:1\r\n",
        b"*2\r\n$1\r\na\r\n",
        b"*-2\r\n",
    ]
    .iter()
    .map(|c| c.to_vec())
    .collect();
    let many: Vec<Vec<u8>> = (0..20).map(|i| format!("arg{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = many.iter().map(|a| a.as_slice()).collect();
    let mut big = wire(&refs);
    big.extend(wire(&[b"SET", &[b'v'; 300], b"k"]));
    big.extend(wire(&[b"GET", b"k"]));
    big.extend(b"set a bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb c d e f g h i\r\n");
    cases.push(big);
    cases
}

#[test]
fn reads_what_resp_reads_whole_and_split_at_every_byte() {
    let limits = || {
        Resp::new()
            .max_array_length(30)
            .max_bulk_length(400)
            .max_command_length(4096)
    };
    for input in cases() {
        let want = outcome(limits(), &mut &input[..]);
        let whole = outcome(AsVecs(limits().commands()), &mut &input[..]);
        assert_eq!(whole, want, "{}", input.escape_ascii());
        for cap in [1, 2, 5, 64] {
            let mut r = BufReader::with_capacity(cap, OneByte(&input));
            let streamed = outcome(AsVecs(limits().commands()), &mut r);
            assert_eq!(streamed, want, "cap {cap}: {}", input.escape_ascii());
        }
        // Buffers of every size: commands cut by the buffer's end at every byte.
        for cap in 1..=input.len() {
            let mut r = BufReader::with_capacity(cap, &input[..]);
            let streamed = outcome(AsVecs(limits().commands()), &mut r);
            assert_eq!(streamed, want, "buffer {cap}: {}", input.escape_ascii());
        }
    }
}

#[test]
fn limits_are_checked_on_the_header_before_reading_the_payload() {
    let cases: [(&[u8], &str); 3] = [
        (b"*1\r\n$1001\r\n", "invalid bulk length"),
        (b"*11\r\n", "invalid multibulk length"),
        (b"*2\r\n$3\r\nGET\r\n$900\r\n", "over the limit of 1000"),
    ];
    for (header, want) in cases {
        // The header, then a payload that never ends.
        let endless = Counting {
            inner: header.chain(io::repeat(b'a')),
            count: 0,
        };
        let mut r = BufReader::with_capacity(1, endless);
        let mut codec = Resp::new()
            .max_array_length(10)
            .max_bulk_length(1000)
            .max_command_length(1000)
            .commands();
        let err = match codec.read(&mut r).unwrap() {
            Some(Err(e)) => e,
            other => panic!("{}: {other:?}", header.escape_ascii()),
        };
        assert!(err.detail().contains(want), "{err} does not say {want:?}");
        assert_eq!(r.get_ref().count, header.len(), "{}", header.escape_ascii());
        // And the rest of the stream is discarded.
        let mut rest: &[u8] = b"*1\r\n$4\r\nPING\r\n";
        assert!(codec.read(&mut rest).unwrap().is_none());
    }
}

#[test]
fn large_arguments_arriving_in_pieces_grow_with_what_arrives() {
    // 1 MB announced and sent in one-byte reads: read whole, into one buffer.
    let mut bytes = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\n".to_vec();
    bytes.extend((0..1_000_000u32).map(|i| i as u8));
    bytes.extend_from_slice(b"\r\n");
    let mut r = BufReader::with_capacity(4096, &bytes[..]);
    let cmd = RespCommands::new().read(&mut r).unwrap().unwrap().unwrap();
    assert_eq!(cmd.len(), 3);
    assert_eq!(&cmd[2], &bytes[bytes.len() - 1_000_002..bytes.len() - 2]);
    // 512 MiB announced, 3 bytes sent: an EOF, with nothing reserved for the rest (the
    // reservation is capped like `Resp`'s; a 512 MiB one would abort this test).
    let mut r = BufReader::with_capacity(1, OneByte(b"*1\r\n$536870912\r\nabc"));
    let mut codec = Resp::new().max_command_length(usize::MAX).commands();
    let err = codec.read(&mut r).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn writes_shared_bulks_as_bulks() {
    let value: Arc<[u8]> = Arc::from(&b"hello"[..]);
    let mut out = Vec::new();
    let codec = RespCommands::new();
    codec
        .write(&Reply::Shared(Arc::clone(&value)), &mut out)
        .unwrap();
    codec
        .write(&Reply::Array(vec![Reply::Shared(value)]), &mut out)
        .unwrap();
    assert_eq!(out, b"$5\r\nhello\r\n*1\r\n$5\r\nhello\r\n");
    let long: Arc<[u8]> = vec![7u8; 70_000].into();
    let mut out = Vec::new();
    codec
        .write(&Reply::Shared(Arc::clone(&long)), &mut out)
        .unwrap();
    assert_eq!(&out[..9], b"$70000\r\n\x07");
    assert_eq!(out.len(), 8 + 70_000 + 2);
    let short = Resp::new().max_bulk_length(4).commands();
    let err = short
        .write(&Reply::Shared(long), &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}
