//! `std-resp` on a free loopback port, driven by a raw RESP client: every command
//! `redis-benchmark -t ping,set,get` sends gets Redis' reply, pipelined requests get all
//! their replies, connections share one store, and broken input gets an error and a close.

use std::io::{Read, Write};
use std::net::TcpStream;

mod common;

use common::Server;

/// Sends `request` in one write and reads exactly `reply.len()` bytes back.
fn exchange(stream: &mut TcpStream, request: &[u8], reply: &[u8]) {
    stream.write_all(request).unwrap();
    let mut got = vec![0; reply.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(reply),
        "reply to {:?}",
        String::from_utf8_lossy(request)
    );
}

#[test]
fn answers_what_redis_benchmark_sends() {
    let server = Server::start(env!("CARGO_BIN_EXE_std-resp"));
    let mut c = server.connect();
    exchange(&mut c, b"PING\r\n", b"+PONG\r\n"); // PING_INLINE
    exchange(&mut c, b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"); // PING_MBULK
    exchange(&mut c, b"*2\r\n$4\r\nping\r\n$2\r\nhi\r\n", b"$2\r\nhi\r\n");
    exchange(
        &mut c,
        b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n",
        b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n",
    );
    exchange(
        &mut c,
        b"*3\r\n$6\r\nconfig\r\n$3\r\nget\r\n$10\r\nappendonly\r\n",
        b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
    );
    exchange(&mut c, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"$-1\r\n");
    exchange(
        &mut c,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nabc\r\n",
        b"+OK\r\n",
    );
    exchange(&mut c, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"$3\r\nabc\r\n");
    // A shorter value overwrites in place; a longer one grows it.
    exchange(
        &mut c,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nx\r\n",
        b"+OK\r\n",
    );
    exchange(&mut c, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"$1\r\nx\r\n");
    exchange(
        &mut c,
        b"*1\r\n$5\r\nFLUSH\r\n",
        b"-ERR unknown command 'FLUSH'\r\n",
    );
    exchange(
        &mut c,
        b"*2\r\n$3\r\nSET\r\n$1\r\nk\r\n",
        b"-ERR wrong number of arguments for 'set' command\r\n",
    );

    // Another connection sees the same store.
    let mut other = server.connect();
    exchange(
        &mut other,
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        b"$1\r\nx\r\n",
    );
}

#[test]
fn pipelined_requests_get_every_reply_in_order() {
    let server = Server::start(env!("CARGO_BIN_EXE_std-resp"));
    let mut c = server.connect();
    let (mut request, mut reply) = (Vec::new(), Vec::new());
    for i in 0..2000 {
        let value = format!("value-{i}");
        request.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n${}\r\n{value}\r\n",
                value.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
        reply.extend_from_slice(format!("+OK\r\n${}\r\n{value}\r\n", value.len()).as_bytes());
    }
    // 2000 pairs are more than one read buffer: requests split across reads are whole too.
    assert!(request.len() > 64 * 1024);
    exchange(&mut c, &request, &reply);
}

#[test]
fn broken_input_gets_an_error_then_a_close() {
    let server = Server::start(env!("CARGO_BIN_EXE_std-resp"));
    let mut c = server.connect();
    c.write_all(b"*1\r\n$99999999999\r\n").unwrap();
    let mut rest = String::new();
    c.read_to_string(&mut rest).expect("the server closes");
    assert!(rest.starts_with("-ERR Protocol error"), "{rest}");
    // The server goes on serving others.
    exchange(&mut server.connect(), b"PING\r\n", b"+PONG\r\n");
}
