//! Request parsing and response encoding of the `Http1` codec, each beside a hand-written
//! baseline in the same group, so the codec's overhead reads as a ratio.
//!
//! Decoding reads about 1 MiB of back-to-back (pipelined) requests from an in-memory
//! `BufReader` with a connection's read buffer capacity (32 KiB). The baseline is the parser
//! one writes first: `read_line` per line into a `String`, the request line split on spaces,
//! each header a `(String, String)` pair, no validation and no limits. Encoding writes one
//! response into a reused `Vec`; its baseline `write!`s the same bytes.
//!
//! ```sh
//! cargo bench --bench http
//! ```

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use threadnet::http::{Http1, Incoming, Response};
use threadnet::Codec;

/// A connection's default read buffer.
const READ_BUFFER: usize = 32 * 1024;

/// About this many wire bytes per decode iteration.
const DECODE_BYTES: usize = 1024 * 1024;

/// What wrk sends.
const WRK: &str = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// What a browser sends: ten header fields, about 500 bytes.
const BROWSER: &str = "GET /static/app.js?v=42 HTTP/1.1\r\n\
Host: example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Referer: https://example.com/index.html\r\n\
Connection: keep-alive\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n\
Sec-Fetch-Dest: script\r\n\
Cache-Control: max-age=0\r\n\r\n";

fn requests(one: &str) -> (Vec<u8>, usize) {
    let n = DECODE_BYTES / one.len();
    (one.repeat(n).into_bytes(), n)
}

fn decode_threadnet(codec: &mut Http1, wire: &[u8]) -> usize {
    let mut r = BufReader::with_capacity(READ_BUFFER, wire);
    let mut n = 0;
    while let Some(msg) = codec.read(&mut r).unwrap() {
        assert!(matches!(msg, Incoming::Request(_)));
        black_box(msg);
        n += 1;
    }
    n
}

/// The naive parser: a `String` per line, a `(String, String)` per header.
fn decode_baseline(wire: &[u8]) -> usize {
    let mut r = BufReader::with_capacity(READ_BUFFER, wire);
    let mut n = 0;
    loop {
        let mut request_line = String::new();
        if r.read_line(&mut request_line).unwrap() == 0 {
            return n;
        }
        let mut parts = request_line.trim_end().split(' ');
        let method = parts.next().unwrap().to_string();
        let target = parts.next().unwrap().to_string();
        let version = parts.next().unwrap().to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_string(), value.trim().to_string()));
        }
        black_box((method, target, version, headers));
        n += 1;
    }
}

fn decode(c: &mut Criterion) {
    for (name, one) in [("wrk", WRK), ("browser", BROWSER)] {
        let (wire, count) = requests(one);
        let mut codec = Http1::new();
        assert_eq!(decode_threadnet(&mut codec, &wire), count);
        assert_eq!(decode_baseline(&wire), count);
        let mut g = c.benchmark_group(format!("decode/http1/{name}"));
        g.warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(30)
            .throughput(Throughput::Elements(count as u64));
        g.bench_function("threadnet", |b| {
            b.iter(|| decode_threadnet(&mut codec, black_box(&wire)))
        });
        g.bench_function("baseline_string_per_header", |b| {
            b.iter(|| decode_baseline(black_box(&wire)))
        });
        g.finish();
    }
}

fn encode(c: &mut Criterion) {
    const PAGE: &str = "<!doctype html><html><body><h1>Hello from threadnet</h1></body></html>\n";
    let codec = Http1::new();
    let baseline = |out: &mut Vec<u8>| {
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n{PAGE}",
            PAGE.len()
        )
        .unwrap();
    };
    let mut out = Vec::new();
    codec.write(&Response::html(PAGE), &mut out).unwrap();
    let mut want = Vec::new();
    baseline(&mut want);
    assert_eq!(out, want, "the baseline writes other bytes");

    let mut g = c.benchmark_group("encode/http1/html");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .throughput(Throughput::Bytes(want.len() as u64));
    // The response is built each time, as a handler does.
    g.bench_function("threadnet", |b| {
        b.iter(|| {
            out.clear();
            codec
                .write(&Response::html(black_box(PAGE)), &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    g.bench_function("baseline_write", |b| {
        b.iter(|| {
            out.clear();
            baseline(black_box(&mut out));
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
