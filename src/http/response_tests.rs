//! Unit tests of response encoding: what `Http1::write` sends for a `Response`, what it
//! refuses unwritten, and the error responses.

use std::io::{self, ErrorKind};

use super::tests::{read_all_with, Got};
use super::*;
use crate::codec::Codec;

fn encode(resp: &Response) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    Http1::new().write(resp, &mut out).map(|()| out)
}

#[test]
fn response_encoding() {
    let r = Response::html("<p>hi</p>").header("X-A", String::from("1"));
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.get_header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(r.body_len(), 9);
    assert_eq!(
        encode(&r).unwrap(),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nX-A: 1\r\nContent-Length: 9\r\n\r\n<p>hi</p>"
    );
    assert_eq!(
        encode(&Response::new(404).reason("Nope")).unwrap(),
        b"HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(
        encode(&Response::new(599)).unwrap(),
        b"HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n"
    );
    // HEAD: the same framing fields, no body.
    assert_eq!(
        encode(&Response::json("{}").omit_body()).unwrap(),
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
    );
    let chunks = Response::text("").chunks(vec![b"ab".to_vec(), Vec::new(), vec![b'c'; 17]]);
    assert_eq!(chunks.body_len(), 19);
    let mut want = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n11\r\n".to_vec();
    want.extend_from_slice(&[b'c'; 17]);
    want.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(encode(&chunks).unwrap(), want);
    assert!(encode(&chunks.clone().omit_body())
        .unwrap()
        .ends_with(b"Transfer-Encoding: chunked\r\n\r\n"));
    let flat = encode(&chunks.unchunked()).unwrap();
    assert!(flat.ends_with(b"Content-Length: 19\r\n\r\nabccccccccccccccccc"));
    // No body and no framing for 1xx, 204, 304.
    assert_eq!(
        encode(&Response::new(100)).unwrap(),
        b"HTTP/1.1 100 Continue\r\n\r\n"
    );
    assert_eq!(
        encode(&Response::new(204).body("x")).unwrap(),
        b"HTTP/1.1 204 No Content\r\n\r\n"
    );
}

#[test]
fn malformed_responses_are_refused_unwritten() {
    for bad in [
        Response::new(99),
        Response::new(1000),
        Response::new(200).reason("a\r\nb"),
        Response::new(200).header("Bad Name", "v"),
        Response::new(200).header("", "v"),
        Response::new(200).header("X", "a\r\nSet-Cookie: evil"),
        Response::new(200).header("X", "a\nb"),
        Response::new(200).header("content-length", "5"),
        Response::new(200).header("Transfer-Encoding", "chunked"),
    ] {
        let mut out = Vec::new();
        let err = Http1::new().write(&bad, &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert!(out.is_empty());
    }
}

#[test]
fn error_responses() {
    let e = match read_all_with(
        &mut Http1::new(),
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        64,
        false,
    )
    .as_slice()
    {
        [Got::Status(501)] => HttpError::new(501, "transfer coding other than chunked"),
        other => panic!("{other:?}"),
    };
    let wire = encode(&e.to_response()).unwrap();
    let text = String::from_utf8(wire).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 501 Not Implemented\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\ntransfer coding other than chunked\n"),
        "{text}"
    );
    assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
    assert_eq!(reason_phrase(299), "");
}
