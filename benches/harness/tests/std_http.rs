//! `std-http` on a free loopback port, driven by a raw HTTP/1.1 client: `GET /json` kept
//! alive, pipelined requests get every reply in order, other paths get 404, `Connection:
//! close` is honoured, and a request with a body (which it does not support) gets a 400 and
//! the connection closed rather than a desynchronised stream.

use std::io::{Read, Write};
use std::net::TcpStream;

mod common;

use common::Server;

const JSON: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"hello\":\"world\"}";
const NOT_FOUND: &str =
    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\nnot found\n";

fn read_exactly(stream: &mut TcpStream, n: usize) -> String {
    let mut got = vec![0; n];
    stream.read_exact(&mut got).unwrap();
    String::from_utf8(got).unwrap()
}

fn assert_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("EOF, not a timeout");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}

#[test]
fn keeps_alive_and_answers_pipelined_requests_in_order() {
    let server = Server::start(env!("CARGO_BIN_EXE_std-http"));
    let mut c = server.connect();
    for _ in 0..3 {
        c.write_all(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(read_exactly(&mut c, JSON.len()), JSON);
    }
    // Three requests in one write, split oddly: every reply, in order.
    c.write_all(
        b"GET /json HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /json HTTP/1.1\r\n",
    )
    .unwrap();
    c.write_all(b"Accept: */*\r\n\r\n").unwrap();
    let want = format!("{JSON}{NOT_FOUND}{JSON}");
    assert_eq!(read_exactly(&mut c, want.len()), want);
}

#[test]
fn connection_close_is_honoured() {
    let server = Server::start(env!("CARGO_BIN_EXE_std-http"));
    let mut c = server.connect();
    c.write_all(b"GET /json HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_exactly(&mut c, JSON.len()), JSON);
    assert_closed(&mut c);
}

#[test]
fn a_body_gets_400_and_a_close() {
    let server = Server::start(env!("CARGO_BIN_EXE_std-http"));
    let mut c = server.connect();
    c.write_all(b"POST /json HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    let want = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(read_exactly(&mut c, want.len()), want);
    assert_closed(&mut c);
    // The server still serves everyone else.
    let mut other = server.connect();
    other.write_all(b"GET /json HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_exactly(&mut other, JSON.len()), JSON);
}
