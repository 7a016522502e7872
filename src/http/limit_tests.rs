//! Unit tests of the codec's limits: the head, the header count, the body, the trailer and
//! chunk lines, each exact and checked before anything over it is read or kept.

use std::io::{self, BufReader, ErrorKind, Read};

use super::tests::{first_request, last, read_all, read_all_with, req, status_of, Got};
use super::*;
use crate::codec::test_util::Counting;
use crate::codec::Codec;

#[test]
fn head_limit_is_exact() {
    let head = |len: usize| {
        let base = "GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n".len();
        format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "v".repeat(len - base)
        )
    };
    for cap in [1, 16, 8192, 32768] {
        let fits = head(8192);
        let got = read_all_with(&mut Http1::new(), fits.as_bytes(), cap, cap == 1);
        assert_eq!(got, [req("GET", "/", b"")], "cap {cap}");
        let over = head(8193);
        let got = read_all_with(&mut Http1::new(), over.as_bytes(), cap, cap == 1);
        assert_eq!(got, [Got::Status(431)], "cap {cap}");
    }
    // The request line alone is too long: 414.
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    assert_eq!(status_of(long.as_bytes()), 414);
    let mut codec = Http1::new().max_head(10);
    let got = read_all_with(&mut codec, b"GET / HTTP/1.1\r\n", 64, false);
    assert_eq!(got, [Got::Status(414)]);
}

#[test]
fn endless_head_costs_at_most_the_limit() {
    for (wire, status) in [(&b"GET /"[..], 414), (b"GET / HTTP/1.1\r\nX: ", 431)] {
        for cap in [1, 100, 4096] {
            let endless = Counting {
                inner: wire.chain(io::repeat(b'a')),
                count: 0,
            };
            let mut r = BufReader::with_capacity(cap, endless);
            let mut codec = Http1::new().max_head(1000);
            match codec.read(&mut r) {
                Ok(Some(Incoming::Error(e))) => assert_eq!(e.status(), status),
                other => panic!("{other:?}"),
            }
            let read = r.get_ref().count;
            assert!(read <= 1000 + cap, "read {read} bytes with buffer {cap}");
        }
    }
}

#[test]
fn header_count_limit() {
    let with = |n: usize| {
        let mut s = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 1..n {
            s.push_str(&format!("X-{i}: {i}\r\n"));
        }
        s.push_str("\r\n");
        s
    };
    let r = first_request(with(100).as_bytes());
    assert_eq!(r.headers().count(), 100);
    assert_eq!(status_of(with(101).as_bytes()), 431);
    let got = read_all_with(
        &mut Http1::new().max_headers(0),
        b"GET / HTTP/1.0\r\n\r\n",
        64,
        false,
    );
    assert_eq!(got, [last("/")]);
}

#[test]
fn body_limit_is_exact_and_checked_before_reading() {
    let mut codec = Http1::new().max_body(5);
    let got = read_all_with(
        &mut codec,
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n12345",
        64,
        false,
    );
    assert_eq!(got, [req("PUT", "/", b"12345")]);
    // Refused with the head alone: the (endless) body is not read, and no memory is taken
    // for the announced 18 EB.
    for len in ["6", "18446744073709551615"] {
        let head = format!("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n");
        let mut r = BufReader::with_capacity(
            16,
            Counting {
                inner: head.as_bytes().chain(io::repeat(b'x')),
                count: 0,
            },
        );
        match Http1::new().max_body(5).read(&mut r) {
            Ok(Some(Incoming::Error(e))) => assert_eq!(e.status(), 413),
            other => panic!("{other:?}"),
        }
        assert!(r.get_ref().count <= head.len() + 16);
    }
    // Chunked: the sum of the chunks counts.
    let chunked = b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let got = read_all_with(&mut Http1::new().max_body(5), chunked, 64, false);
    assert_eq!(got, [req("PUT", "/", b"abcde")]);
    let got = read_all_with(&mut Http1::new().max_body(4), chunked, 64, false);
    assert_eq!(got, [Got::Status(413)]);
}

#[test]
fn trailer_and_chunk_line_limits() {
    let mut wire = b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
    wire.extend_from_slice(format!("T: {}\r\n\r\n", "x".repeat(100)).as_bytes());
    let got = read_all_with(&mut Http1::new().max_head(200), &wire, 64, false);
    assert_eq!(got, [req("PUT", "/", b"")]);
    let got = read_all_with(&mut Http1::new().max_head(100), &wire, 64, false);
    assert_eq!(got, [Got::Status(431)]);
    let mut wire = b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    wire.extend_from_slice(&[b'e'; 200]);
    let got = read_all_with(&mut Http1::new().max_head(100), &wire, 64, false);
    assert_eq!(got, [Got::Status(400)]);
}

#[test]
fn eof_inside_a_request_is_an_error() {
    assert_eq!(read_all(b""), []);
    assert_eq!(read_all(b"\r\n\r\n"), []);
    for cut in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n"[..],
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab",
        b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc",
        b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\r\n",
    ] {
        assert_eq!(read_all(cut), [Got::Io(ErrorKind::UnexpectedEof)]);
    }
}
