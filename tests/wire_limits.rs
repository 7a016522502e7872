//! Wire-level limits and rules over real sockets: the RESP command bound against a command of
//! a million tiny arguments, HTTP's absolute-form targets, the request-smuggling refusals, and
//! a keep-alive HTTP connection told `Connection: close` while the server drains.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;
use threadnet::http::{self, Http1, Request, Response};
use threadnet::{
    codec::{Reply, Resp},
    events::ConnEvent,
    CloseReason, ConnOptions, Connection, ServerHandle, TcpServer,
};

const WAIT: Duration = Duration::from_secs(2);

// ---- RESP ----------------------------------------------------------------------------------

/// A Resp server that answers a command with its argument count and length of its last
/// argument, and a protocol error as Redis does: the error, then a graceful close.
fn resp_server() -> ServerHandle<Resp> {
    TcpServer::builder()
        .addr("127.0.0.1:0")
        .max_connections(200)
        .start(Resp::new(), |_: &Connection<Resp>| {
            |conn: &Connection<Resp>, cmd: Result<Vec<Vec<u8>>, threadnet::codec::ProtocolError>| {
                match cmd {
                    Ok(args) => {
                        let last = args.last().map_or(0, Vec::len);
                        let _ = conn.send(Reply::Integer((args.len() * 10_000_000 + last) as i64));
                    }
                    Err(e) => {
                        let _ = conn.send(e.reply());
                        conn.shutdown(WAIT);
                    }
                }
            }
        })
        .unwrap()
}

/// The peak resident memory of this process, in bytes (`VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn a_command_of_a_million_tiny_arguments_is_refused_and_memory_stays_bounded() {
    const PEERS: usize = 100;
    const ARGS: usize = 50_000; // 350 KB on the wire, 2.7 MB in memory if taken
    let server = resp_server();
    let addr = server.local_addr().as_inet().unwrap();
    let before = peak_rss();
    let mut attack = b"*1048576\r\n".to_vec();
    for _ in 0..ARGS {
        attack.extend_from_slice(b"$1\r\na\r\n");
    }
    let attack = std::sync::Arc::new(attack);
    let peers: Vec<_> = (0..PEERS)
        .map(|_| {
            let attack = std::sync::Arc::clone(&attack);
            thread::spawn(move || {
                let mut p = peer(addr);
                p.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                // The server stops reading at the limit: the rest may not be taken.
                let _ = p.write_all(&attack);
                let mut line = String::new();
                BufReader::new(&p).read_line(&mut line).unwrap();
                line
            })
        })
        .collect();
    for p in peers {
        let line = p.join().unwrap();
        assert!(
            line.starts_with("-ERR Protocol error: command of more than"),
            "{line:?}"
        );
    }
    let grew = peak_rss().saturating_sub(before);
    // Taken whole, the commands would hold 100 x 2.7 MB; refused at 1 MiB each, well under.
    assert!(grew < 200 << 20, "peak memory grew by {} MiB", grew >> 20);
    server.stop(WAIT);
}

#[test]
fn a_large_set_still_fits_the_default_command_limit() {
    let server = resp_server();
    let mut p = peer(server.local_addr().as_inet().unwrap());
    let value = vec![b'v'; 1_000_000];
    let mut cmd = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\n".to_vec();
    cmd.extend_from_slice(&value);
    cmd.extend_from_slice(b"\r\n");
    p.write_all(&cmd).unwrap();
    let mut line = String::new();
    BufReader::new(&p).read_line(&mut line).unwrap();
    assert_eq!(
        line, ":31000000\r\n",
        "3 arguments, the last of 1 000 000 bytes"
    );
    server.stop(WAIT);
}

// ---- HTTP ----------------------------------------------------------------------------------

fn http_server(opts: ConnOptions) -> ServerHandle<Http1> {
    TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(opts)
        .start(
            Http1::new(),
            http::serve(|req: &Request| match req.path() {
                "/json" => Response::new(200)
                    .header("Content-Type", "application/json")
                    .body(format!("{{\"host\":\"{}\"}}", req.host().unwrap_or(""))),
                _ => Response::new(404),
            }),
        )
        .unwrap()
}

/// Reads one response whose body has a `Content-Length`: the head and the body.
fn response(r: &mut BufReader<&TcpStream>) -> (String, String) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "EOF inside a head");
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[test]
fn an_absolute_form_target_is_routed_on_its_path() {
    let server = http_server(ConnOptions::new());
    let s = peer(server.local_addr().as_inet().unwrap());
    let mut r = BufReader::new(&s);
    (&s).write_all(b"GET http://example.com:81/json HTTP/1.1\r\nHost: ignored\r\n\r\n")
        .unwrap();
    let (head, body) = response(&mut r);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, r#"{"host":"example.com:81"}"#);
    (&s).write_all(b"GET /json HTTP/1.1\r\nHost: plain\r\n\r\n")
        .unwrap();
    assert_eq!(response(&mut r).1, r#"{"host":"plain"}"#);
    server.stop(WAIT);
}

#[test]
fn smuggling_and_framing_attempts_are_refused_and_closed() {
    let server = http_server(ConnOptions::new());
    let addr = server.local_addr().as_inet().unwrap();
    let cases: &[&[u8]] = &[
        b"POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        b"POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        b"GET /json HTTP/1.1\r\nHost: a\r\nX-A: b\r\n folded\r\n\r\n",
        b"POST /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        b"GET /json HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
        b"GET /json HTTP/1.1\r\n\r\n",
        b"GET /json HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ];
    for wire in cases {
        let what = String::from_utf8_lossy(wire);
        let s = peer(addr);
        s.set_read_timeout(Some(WAIT)).unwrap();
        (&s).write_all(wire).unwrap();
        let mut reply = Vec::new();
        // The refusal, then EOF: the connection is closed, nothing after it is parsed.
        (&s).read_to_end(&mut reply).unwrap();
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.starts_with("HTTP/1.1 400 ") || reply.starts_with("HTTP/1.1 413 "),
            "{what:?} got {reply:?}"
        );
        assert!(reply.contains("Connection: close\r\n"), "{reply}");
        assert!(!reply.contains("\nHTTP/1.1 "), "one response: {reply}");
    }
    server.stop(WAIT);
}

#[test]
fn a_keep_alive_client_gets_connection_close_while_the_server_drains() {
    let (tx, closes) = mpsc::channel();
    let server = http_server(ConnOptions::new().on_event(move |e| {
        if let ConnEvent::Closed { reason, .. } = e {
            let _ = tx.send(matches!(reason, CloseReason::Shutdown));
        }
    }));
    let s = peer(server.local_addr().as_inet().unwrap());
    let mut r = BufReader::new(&s);
    (&s).write_all(b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let (head, _) = response(&mut r);
    assert!(!head.contains("Connection: close"), "{head}");

    // A drain first asks every connection to end at its next boundary.
    let draining = server.clone();
    let drain = thread::spawn(move || draining.drain(Duration::from_secs(20)));
    assert!(
        wait_until(WAIT, || {
            let mut all = true;
            server
                .connections()
                .for_each(|c| all &= c.is_winding_down());
            all
        }),
        "drain did not wind the connection down"
    );

    // The in-flight keep-alive client sends its next request: a whole response, then EOF.
    (&s).write_all(b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let (head, body) = response(&mut r);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert_eq!(body, r#"{"host":"a"}"#);
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "EOF after the response");
    drop(r);
    drop(s);
    // Ended gracefully by the connection itself, not cut at the drain's deadline.
    assert!(
        recv(&closes),
        "the connection did not end with a graceful shutdown"
    );
    drain.join().unwrap();
}
