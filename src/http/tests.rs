//! Unit tests of the codec: parsing, limits, refusals, and response encoding.

use std::io::{self, BufReader, ErrorKind};

use super::*;
use crate::codec::test_util::{Counting, OneByte};
use crate::codec::Codec;

/// Every `Incoming` of `wire`, read with a buffer of `cap` bytes fed one byte per read when
/// `split`, up to the end of the stream (an error is returned as the last item).
pub(super) fn read_all_with(codec: &mut Http1, wire: &[u8], cap: usize, split: bool) -> Vec<Got> {
    let mut out = Vec::new();
    let mut next = |r: &mut dyn io::BufRead| -> bool {
        let mut r = r;
        match codec.read(&mut r) {
            Ok(Some(i)) => {
                out.push(Got::from(i));
                true
            }
            Ok(None) => false,
            Err(e) => {
                out.push(Got::Io(e.kind()));
                false
            }
        }
    };
    if split {
        let mut r = BufReader::with_capacity(cap, OneByte(wire));
        while next(&mut r) {}
    } else {
        let mut r = BufReader::with_capacity(cap, wire);
        while next(&mut r) {}
    }
    out
}

pub(super) fn read_all(wire: &[u8]) -> Vec<Got> {
    read_all_with(&mut Http1::new(), wire, 32 * 1024, false)
}

/// `Incoming` made comparable.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Got {
    Req {
        method: String,
        target: String,
        body: Vec<u8>,
        keep_alive: bool,
    },
    Continue,
    Status(u16),
    Io(ErrorKind),
}

impl From<Incoming> for Got {
    fn from(i: Incoming) -> Got {
        match i {
            Incoming::Request(r) => Got::Req {
                method: r.method().into(),
                target: r.target().into(),
                keep_alive: r.keep_alive(),
                body: r.into_body(),
            },
            Incoming::Continue => Got::Continue,
            Incoming::Error(e) => Got::Status(e.status()),
        }
    }
}

pub(super) fn req(method: &str, target: &str, body: &[u8]) -> Got {
    Got::Req {
        method: method.into(),
        target: target.into(),
        body: body.to_vec(),
        keep_alive: true,
    }
}

pub(super) fn last(target: &str) -> Got {
    Got::Req {
        method: "GET".into(),
        target: target.into(),
        body: Vec::new(),
        keep_alive: false,
    }
}

pub(super) fn first_request(wire: &[u8]) -> Request {
    let mut input = wire;
    match Http1::new().read(&mut input) {
        Ok(Some(Incoming::Request(r))) => r,
        other => panic!("{other:?}"),
    }
}

/// The status a single request is refused with.
pub(super) fn status_of(wire: &[u8]) -> u16 {
    match read_all(wire).first() {
        Some(Got::Status(s)) => *s,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(wire)),
    }
}

const CHUNKED: &[u8] = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
    5;name=value\r\nhello\r\n1 ; x\r\n,\r\n6\r\n world\r\n0\r\nTrailer-One: 1\r\nTrailer-Two: 2\r\n\r\n";

#[test]
fn defaults() {
    let c = Http1::new();
    assert_eq!(c.get_max_head(), 8 * 1024);
    assert_eq!(c.get_max_headers(), 100);
    assert_eq!(c.get_max_body(), 1024 * 1024);
    let mut c = Http1::default().max_head(1).max_headers(2).max_body(3);
    assert_eq!(
        (c.get_max_head(), c.get_max_headers(), c.get_max_body()),
        (1, 2, 3)
    );
    c.set_max_frame_length(7);
    assert_eq!(c.get_max_body(), 7);
}

#[test]
fn request_fields() {
    let r = first_request(
        b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example\r\nX-Empty:\r\nX-Pad: \t v a l \t\r\nx-pad: 2\r\n\r\n",
    );
    assert_eq!(r.method(), "GET");
    assert_eq!(r.target(), "/a/b?x=1&y");
    assert_eq!(r.path(), "/a/b");
    assert_eq!(r.query(), Some("x=1&y"));
    assert_eq!(r.version(), Version::Http11);
    assert_eq!(r.header("HOST"), Some("example"));
    assert_eq!(r.header("x-empty"), Some(""));
    assert_eq!(r.header("X-PAD"), Some("v a l"));
    assert_eq!(r.header("missing"), None);
    let all: Vec<_> = r.headers().collect();
    assert_eq!(
        all,
        [
            ("Host", "example"),
            ("X-Empty", ""),
            ("X-Pad", "v a l"),
            ("x-pad", "2")
        ]
    );
    assert!(r.body().is_empty());
    assert!(r.keep_alive());
    assert!(!r.is_head());
    assert!(format!("{r:?}").contains("/a/b?x=1&y"));

    let r = first_request(b"OPTIONS * HTTP/1.0\n\n");
    assert_eq!((r.path(), r.query()), ("*", None));
    assert_eq!(r.version(), Version::Http10);
    assert!(!r.keep_alive());
}

#[test]
fn pipelined_requests_in_one_buffer() {
    let mut wire = Vec::new();
    for i in 0..50 {
        wire.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    }
    wire.extend_from_slice(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
    wire.extend_from_slice(CHUNKED);
    let got = read_all(&wire);
    assert_eq!(got.len(), 52);
    for (i, g) in got.iter().take(50).enumerate() {
        assert_eq!(*g, req("GET", &format!("/{i}"), b""));
    }
    assert_eq!(got[50], req("POST", "/p", b"abc"));
    assert_eq!(got[51], req("POST", "/up", b"hello, world"));
}

#[test]
fn split_one_byte_at_a_time() {
    let mut wire = b"\r\n\r\nGET / HTTP/1.1\nHost: a\n\n".to_vec();
    wire.extend_from_slice(b"PUT /l HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n12345");
    wire.extend_from_slice(CHUNKED);
    wire.extend_from_slice(b"GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /never");
    for cap in [1, 2, 3, 7, 64, 4096] {
        let got = read_all_with(&mut Http1::new(), &wire, cap, true);
        assert_eq!(
            got,
            [
                req("GET", "/", b""),
                req("PUT", "/l", b"12345"),
                req("POST", "/up", b"hello, world"),
                last("/bye"),
            ],
            "cap {cap}"
        );
    }
}

#[test]
fn chunked_body_equals_content_length_body() {
    let r = first_request(CHUNKED);
    assert_eq!(r.body(), b"hello, world");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    // Upper-case hex, leading zeros.
    let r = first_request(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00A\r\n0123456789\r\n000\r\n\r\n",
    );
    assert_eq!(r.body(), b"0123456789");
}

/// Bare LF ends a line of the head (RFC 9112 §2.2 allows it), but not a line of the chunked
/// framing: a chunk-size line, the CRLF after a chunk's data, a trailer field, or the empty
/// line that ends the body. Each is 400, one byte at a time too, and nothing after is parsed.
#[test]
fn bare_lf_in_chunked_framing_is_400() {
    const HEAD: &[u8] = b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n";
    // The same body with CRLF everywhere is read.
    let mut good = HEAD.to_vec();
    good.extend_from_slice(b"3\r\nabc\r\n0\r\nT: 1\r\n\r\n");
    assert_eq!(read_all(&good), [req("POST", "/", b"abc")]);
    for body in [
        &b"3\nabc\r\n0\r\n\r\n"[..],
        b"3;ext=1\nabc\r\n0\r\n\r\n",
        b"3\r\nabc\n0\r\n\r\n",
        b"3\r\nabc\r\n0\n\r\n",
        b"3\r\nabc\r\n0\r\nT: 1\n\r\n",
        b"3\r\nabc\r\n0\r\n\n",
    ] {
        let mut wire = HEAD.to_vec();
        wire.extend_from_slice(body);
        wire.extend_from_slice(b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n");
        for split in [false, true] {
            let got = read_all_with(&mut Http1::new(), &wire, 7, split);
            assert_eq!(
                got,
                [Got::Status(400)],
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

/// RFC 9112 §3.2: a Host field value must be `uri-host [ ":" port ]` (RFC 3986); anything
/// else is 400, as a missing or repeated Host is.
#[test]
fn host_must_be_a_uri_host_and_port() {
    let valid = [
        "example.com",
        "example.com:8080",
        "EXAMPLE.com.",
        "127.0.0.1",
        "127.0.0.1:80",
        "[::1]",
        "[::1]:8080",
        "[2001:db8::a:b]:1",
        "[::ffff:1.2.3.4]",
        "[v1.fe80::a+en1]",
        "a-b_c~d!$&'()*+,;=",
        "%41%2c",
        "h:",
        "",
    ];
    for host in valid {
        let wire = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let r = first_request(wire.as_bytes());
        assert_eq!(r.host(), Some(host), "{host:?}");
    }
    let invalid = [
        "x y",
        "a\tb",
        "a/b",
        "a?b",
        "a#b",
        "u@h",
        "a\"b",
        "<a>",
        "a\\b",
        "h:8o",
        "h:80:80",
        "h: 80",
        "::1",
        "[::1",
        "::1]",
        "[::1]x",
        "[::1]:x",
        "[]",
        "[zz::1]",
        "[1.2.3.4]",
        "[v1]",
        "[vx.a]",
        "%4",
        "%zz",
        "\u{e9}t\u{e9}",
    ];
    for host in invalid {
        let wire = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(status_of(wire.as_bytes()), 400, "{host:?}");
        // HTTP/1.0 needs no Host, but one it sends must be valid too.
        let wire = format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n");
        assert_eq!(status_of(wire.as_bytes()), 400, "{host:?} in HTTP/1.0");
    }
}

/// RFC 9110 §6.2: a higher minor version of HTTP/1 is served as the highest one implemented,
/// 1.1 (with 1.1's rules: a Host is required, keep-alive by default). Other majors are 505.
#[test]
fn higher_minor_versions_are_served_as_http11() {
    for v in ["HTTP/1.2", "HTTP/1.9"] {
        let r = first_request(format!("GET /v {v}\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!(r.version(), Version::Http11, "{v}");
        assert!(r.keep_alive(), "{v}");
        let wire = format!("GET / {v}\r\n\r\n");
        assert_eq!(status_of(wire.as_bytes()), 400, "{v} without Host");
    }
    for v in ["HTTP/0.9", "HTTP/2.0", "HTTP/3.0", "HTTP/9.1"] {
        let wire = format!("GET / {v}\r\nHost: a\r\n\r\n");
        assert_eq!(status_of(wire.as_bytes()), 505, "{v}");
    }
    for v in ["HTTP/1.10", "HTTP/1.", "HTTP/1.x", "http/1.2"] {
        let wire = format!("GET / {v}\r\nHost: a\r\n\r\n");
        assert_eq!(status_of(wire.as_bytes()), 400, "{v}");
    }
}

#[test]
fn connection_close_and_http10() {
    // After a request that closes the connection, nothing more is parsed.
    let got = read_all(
        b"GET /1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(got, [last("/1")]);
    // HTTP/1.0: close unless keep-alive; Host not required.
    assert_eq!(
        read_all(b"GET /1 HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n"),
        [last("/1")]
    );
    let got = read_all(
        b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(got, [req("GET", "/1", b""), req("GET", "/2", b"")]);
}

#[test]
fn expect_100_continue() {
    let wire = b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for split in [false, true] {
        let got = read_all_with(&mut Http1::new(), wire, 3, split);
        assert_eq!(
            got,
            [Got::Continue, req("PUT", "/x", b"ok"), req("GET", "/", b"")]
        );
    }
    // No body: nothing to wait for. HTTP/1.0: the expectation is ignored.
    assert_eq!(
        read_all(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n"),
        [req("GET", "/", b"")]
    );
    let got = read_all(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz");
    assert_eq!(
        got,
        [Got::Req {
            method: "PUT".into(),
            target: "/".into(),
            body: b"z".to_vec(),
            keep_alive: false
        }]
    );
    // Too large: refused at once, the client is never asked for the body.
    let big = b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n";
    let got = read_all_with(&mut Http1::new().max_body(8), big, 64, false);
    assert_eq!(got, [Got::Status(413)]);
}

#[test]
fn refusals() {
    let cases: &[(u16, &[u8])] = &[
        (400, b"GET\r\n\r\n"),
        (400, b"GET /\r\nHost: a\r\n\r\n"),
        (400, b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
        (400, b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n"),
        (400, b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n"),
        (400, b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"),
        (400, b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
        (400, b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n"),
        (400, b"GET / HTTP/1.1\rHost: a\r\n\r\n"),
        (400, b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"),
        (400, b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"),
        (400, b"GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n"),
        (400, b"GET / HTTP/1.1\r\nHost: a\r\nName : v\r\n\r\n"),
        (400, b"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n"),
        (400, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n"),
        (400, b"GET / HTTP/1.1\r\n\r\n"),
        (400, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        (400, b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        ),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
        ),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
        ),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        ),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n",
        ),
        (400, b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n",
        ),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1 x\r\n",
        ),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        ),
        (
            400,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\rb\r\n",
        ),
        (400, b"GET / HTTP/2\r\nHost: a\r\n\r\n"),
        (505, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
        (505, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        (
            501,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        ),
        (
            501,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ),
        (
            413,
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 8388609\r\n\r\n",
        ),
        (
            413,
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
        ),
        (
            413,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n800001\r\n",
        ),
        (
            413,
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
        ),
    ];
    for (status, wire) in cases {
        assert_eq!(
            status_of(wire),
            *status,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn after_an_error_nothing_more_is_parsed() {
    let mut wire = b"BAD\r\n\r\n".to_vec();
    wire.extend_from_slice(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(10));
    for cap in [1, 5, 4096] {
        let mut codec = Http1::new();
        let mut r = BufReader::with_capacity(
            cap,
            Counting {
                inner: &wire[..],
                count: 0,
            },
        );
        match codec.read(&mut r) {
            Ok(Some(Incoming::Error(e))) => {
                assert_eq!(e.status(), 400);
                assert_eq!(e.message(), "malformed request line");
                assert_eq!(e.to_string(), "400 Bad Request: malformed request line");
            }
            other => panic!("{other:?}"),
        }
        // The rest is read to the end and thrown away.
        assert!(codec.read(&mut r).unwrap().is_none());
        assert_eq!(r.get_ref().count, wire.len());
        assert!(codec.read(&mut r).unwrap().is_none());
    }
}

/// A small deterministic pseudo-random generator (xorshift), for the mutation test.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn mutated_requests_never_panic() {
    let seeds: &[&[u8]] = &[
        CHUNKED,
        b"GET /a?b HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nxyz",
        b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
    ];
    let alphabet = b"\r\n :;0123456789abcdefABCDEF\t\x00\x7f\xff\xc3GETHTP/1.";
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..5000 {
        let seed = seeds[(xorshift(&mut state) % seeds.len() as u64) as usize];
        let mut wire = seed.repeat(2);
        for _ in 0..1 + xorshift(&mut state) % 4 {
            let at = (xorshift(&mut state) % wire.len() as u64) as usize;
            match xorshift(&mut state) % 3 {
                0 => wire[at] = alphabet[(xorshift(&mut state) % alphabet.len() as u64) as usize],
                1 => drop(wire.remove(at)),
                _ => wire.truncate(at),
            }
            if wire.is_empty() {
                break;
            }
        }
        let cap = 1 + (xorshift(&mut state) % 40) as usize;
        let mut codec = Http1::new().max_head(200).max_body(64).max_headers(4);
        let got = read_all_with(&mut codec, &wire, cap, cap % 2 == 0);
        assert!(got.len() <= 4, "{got:?}");
    }
}

#[test]
fn absolute_form_targets_route_on_their_path_and_name_the_host() {
    let cases: &[(&[u8], &str, Option<&str>, &str)] = &[
        (
            b"GET http://h/json HTTP/1.1\r\nHost: h\r\n\r\n",
            "/json",
            None,
            "h",
        ),
        (
            b"GET HTTP://h:8080/a/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n",
            "/a/b",
            Some("x=1"),
            "h:8080",
        ),
        (b"GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", "/", None, "h"),
        (
            b"GET http://[::1]:80/6 HTTP/1.1\r\nHost: h\r\n\r\n",
            "/6",
            None,
            "[::1]:80",
        ),
        (
            b"GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n",
            "/",
            Some("q"),
            "h",
        ),
        (
            b"GET /plain?q HTTP/1.1\r\nHost: h\r\n\r\n",
            "/plain",
            Some("q"),
            "h",
        ),
        // Not an http(s) URI: left as it is.
        (
            b"GET foo://h/x HTTP/1.1\r\nHost: h\r\n\r\n",
            "foo://h/x",
            None,
            "h",
        ),
    ];
    for (wire, path, query, host) in cases {
        let req = first_request(wire);
        let what = String::from_utf8_lossy(wire);
        assert_eq!(req.path(), *path, "{what}");
        assert_eq!(req.query(), *query, "{what}");
        assert_eq!(req.host(), Some(*host), "{what}");
    }
    // No authority, no host, an authority that is not `host [ ":" port ]`, or userinfo:
    // refused. A Host field is still required in HTTP/1.1.
    for wire in [
        &b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET http://:80/x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://h<x>/ HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://h:8o/ HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://[::1/ HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://u@h/x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http://h/x HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(status_of(wire), 400, "{}", String::from_utf8_lossy(wire));
    }
}
