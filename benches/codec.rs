//! Encode and decode throughput of the codecs, each beside a hand-written baseline in the
//! same group, so the codec's overhead reads as a ratio.
//!
//! Decoding reads many concatenated frames from an in-memory `BufReader` with the same
//! capacity as a connection's read buffer (32 KiB); encoding writes one message into a reused
//! `Vec`. Throughput counts wire bytes (prefix or terminator included).
//!
//! ```sh
//! cargo bench --bench codec
//! cargo bench --bench codec -- decode/length    # a subset, by name
//! ```

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use std::sync::Arc;

use threadnet::{
    codec::{LengthChunks, LengthDelimited, Lines, Raw, Reply, Resp},
    Codec,
};

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// A connection's default read buffer.
const READ_BUFFER: usize = 32 * 1024;

/// About this many wire bytes per decode iteration, whatever the frame size.
const DECODE_BYTES: usize = 1024 * 1024;

fn group<'a>(c: &'a mut Criterion, name: &str) -> Group<'a> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    g
}

/// Payload bytes that are not all alike, and contain no `\n`.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Enough copies of `frame` to make about `DECODE_BYTES`, as one buffer, and their count.
fn repeat(frame: &[u8]) -> (Vec<u8>, usize) {
    let n = (DECODE_BYTES / frame.len()).max(16);
    (frame.repeat(n), n)
}

/// Decodes every frame of `wire` with `codec`; returns how many there were.
fn decode_all<C: Codec>(codec: &mut C, wire: &[u8]) -> usize {
    let mut r = BufReader::with_capacity(READ_BUFFER, wire);
    let mut n = 0;
    while let Some(msg) = codec.read(&mut r).unwrap() {
        black_box(msg);
        n += 1;
    }
    n
}

/// One encode group: `codec` writing `msg` into a reused buffer, against a hand-written
/// `baseline` that produces the same bytes.
fn encode_group<C: Codec>(
    c: &mut Criterion,
    name: &str,
    codec: C,
    msg: C::Out,
    baseline: fn(&C::Out, &mut Vec<u8>),
) {
    let mut frame = Vec::new();
    codec.write(&msg, &mut frame).unwrap();
    let mut out = Vec::new();
    baseline(&msg, &mut out);
    assert_eq!(out, frame, "the baseline writes other bytes");
    let mut g = group(c, name);
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("threadnet", |b| {
        b.iter(|| {
            out.clear();
            codec.write(black_box(&msg), &mut out).unwrap();
            black_box(&out);
        })
    });
    g.bench_function("baseline", |b| {
        b.iter(|| {
            out.clear();
            baseline(black_box(&msg), &mut out);
            black_box(&out);
        })
    });
    g.finish();
}

/// One decode group over `wire` (which holds `frames` frames): `codec` against a hand-written
/// baseline reader, named `baseline.0`, that must count the same frames.
fn decode_group<C: Codec>(
    c: &mut Criterion,
    name: &str,
    mut codec: C,
    (wire, frames): (Vec<u8>, usize),
    baseline: (&str, fn(&[u8]) -> usize),
) {
    let mut g = group(c, name);
    g.throughput(Throughput::Bytes(wire.len() as u64));
    assert_eq!(decode_all(&mut codec, &wire), frames);
    g.bench_function("threadnet", |b| {
        b.iter(|| decode_all(&mut codec, black_box(&wire)))
    });
    assert_eq!((baseline.1)(&wire), frames);
    g.bench_function(baseline.0, |b| b.iter(|| (baseline.1)(black_box(&wire))));
    g.finish();
}

fn length_delimited(c: &mut Criterion) {
    for (name, len) in [("64B", 64), ("4KiB", 4 * 1024), ("64KiB", 64 * 1024)] {
        let msg = payload(len);
        let codec = LengthDelimited::new();
        let mut frame = Vec::new();
        codec.write(&msg, &mut frame).unwrap();
        assert_eq!(frame.len(), 4 + len);

        encode_group(
            c,
            &format!("encode/length_delimited/{name}"),
            codec,
            msg,
            |m, out| {
                out.extend_from_slice(&(m.len() as u32).to_be_bytes());
                out.extend_from_slice(m);
            },
        );

        // What a hand-written reader does: read_exact the header, then the payload into a
        // buffer of that size.
        decode_group(
            c,
            &format!("decode/length_delimited/{name}"),
            LengthDelimited::new(),
            repeat(&frame),
            ("baseline_read_exact", read_exact_frames),
        );

        // The same frames into recycled buffers, against a reader that reuses one buffer.
        decode_group(
            c,
            &format!("decode/length_chunks/{name}"),
            LengthChunks::new(),
            repeat(&frame),
            ("baseline_one_buffer", one_buffer_frames),
        );
    }
}

/// A hand-written reader that reads every payload into the same buffer.
fn one_buffer_frames(wire: &[u8]) -> usize {
    let mut r = BufReader::with_capacity(READ_BUFFER, wire);
    let mut n = 0;
    let mut header = [0u8; 4];
    let mut payload = Vec::new();
    loop {
        match r.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return n,
            Err(e) => panic!("{e}"),
        }
        payload.resize(u32::from_be_bytes(header) as usize, 0);
        r.read_exact(&mut payload).unwrap();
        black_box(&payload);
        n += 1;
    }
}

fn read_exact_frames(wire: &[u8]) -> usize {
    let mut r = BufReader::with_capacity(READ_BUFFER, wire);
    let mut n = 0;
    let mut header = [0u8; 4];
    loop {
        match r.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return n,
            Err(e) => panic!("{e}"),
        }
        let len = u32::from_be_bytes(header) as usize;
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).unwrap();
        black_box(payload);
        n += 1;
    }
}

fn lines(c: &mut Criterion) {
    for (name, len) in [("short", 24), ("1KiB", 1024)] {
        let msg = String::from_utf8(payload(len)).unwrap();
        let codec = Lines::new();
        let mut frame = Vec::new();
        codec.write(&msg, &mut frame).unwrap();
        assert_eq!(frame.len(), len + 1);

        // The codec also checks the line for `\n`, a trailing `\r` and the length limit.
        encode_group(c, &format!("encode/lines/{name}"), codec, msg, |m, out| {
            out.extend_from_slice(m.as_bytes());
            out.push(b'\n');
        });

        // std's line reader, unbounded: read_until `\n`, strip it, check UTF-8.
        decode_group(
            c,
            &format!("decode/lines/{name}"),
            Lines::new(),
            repeat(&frame),
            ("baseline_read_until", read_until_lines),
        );
    }
}

fn read_until_lines(wire: &[u8]) -> usize {
    let mut r = BufReader::with_capacity(READ_BUFFER, wire);
    let mut n = 0;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line).unwrap() == 0 {
            return n;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        black_box(String::from_utf8(line).unwrap());
        n += 1;
    }
}

fn raw(c: &mut Criterion) {
    let msg = payload(4 * 1024);

    encode_group(c, "encode/raw/4KiB", Raw, msg.clone(), |m, out| {
        out.extend_from_slice(m)
    });

    // Raw hands over one read buffer's worth per message.
    let (wire, _) = repeat(&msg);
    let mut g = group(c, "decode/raw/1MiB");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("threadnet", |b| {
        b.iter(|| decode_all(&mut Raw, black_box(&wire)))
    });
    // Plain reads of up to a read buffer's worth into a fresh buffer each.
    g.bench_function("baseline_read", |b| {
        b.iter(|| {
            let mut r = BufReader::with_capacity(READ_BUFFER, black_box(&wire[..]));
            let mut n = 0;
            loop {
                let mut chunk = vec![0u8; READ_BUFFER];
                let got = r.read(&mut chunk).unwrap();
                if got == 0 {
                    break n;
                }
                chunk.truncate(got);
                black_box(chunk);
                n += 1;
            }
        })
    });
    g.finish();
}

/// RESP as `redis-benchmark -t set` sends it (`SET key:__rand_int__ xxx`, 45 bytes), and a
/// `GET`'s reply, `$3\r\nxxx\r\n`.
fn resp(c: &mut Criterion) {
    let set = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n";
    // What a hand-written server does: parse each command out of the buffer into argument
    // buffers it reuses (std-resp in benches/harness).
    decode_group(
        c,
        "decode/resp/set",
        Resp::new(),
        repeat(set),
        ("baseline_reused_args", reused_args_commands),
    );
    // The same commands as `Command`s: all arguments in one buffer, inline (no allocation).
    decode_group(
        c,
        "decode/resp_commands/set",
        Resp::new().commands(),
        repeat(set),
        ("baseline_reused_args", reused_args_commands),
    );
    // A `GET`'s reply from a value kept as `Arc<[u8]>`: a reference count, no copy.
    let shared: Arc<[u8]> = Arc::from(&b"xxx"[..]);
    encode_group(
        c,
        "encode/resp/shared",
        Resp::new(),
        Reply::Shared(shared),
        |m, out| {
            let Reply::Shared(b) = m else { unreachable!() };
            out.push(b'$');
            out.extend_from_slice(b.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        },
    );
    encode_group(
        c,
        "encode/resp/bulk",
        Resp::new(),
        Reply::bulk("xxx"),
        |m, out| {
            let Reply::Bulk(b) = m else { unreachable!() };
            out.push(b'$');
            out.extend_from_slice(b.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        },
    );
}

/// Reads `*N\r\n` then N `$len\r\nbytes\r\n` per command, into reused buffers.
fn reused_args_commands(wire: &[u8]) -> usize {
    let mut r = BufReader::with_capacity(READ_BUFFER, wire);
    let mut args: Vec<Vec<u8>> = Vec::new();
    let mut line = Vec::new();
    let number = |r: &mut BufReader<&[u8]>, line: &mut Vec<u8>| -> Option<usize> {
        line.clear();
        r.read_until(b'\n', line).unwrap();
        std::str::from_utf8(line.get(1..line.len().checked_sub(2)?)?)
            .ok()?
            .parse()
            .ok()
    };
    let mut n = 0;
    while let Some(count) = number(&mut r, &mut line) {
        args.resize_with(count, Vec::new);
        for arg in args.iter_mut() {
            let len = number(&mut r, &mut line).unwrap();
            arg.resize(len + 2, 0);
            r.read_exact(arg).unwrap();
            arg.truncate(len);
        }
        black_box(&args);
        n += 1;
    }
    n
}

criterion_group!(benches, length_delimited, lines, raw, resp);
criterion_main!(benches);
