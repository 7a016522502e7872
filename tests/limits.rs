//! Per-server and per-connection bounds (invariant 5): the max frame length, checked on the
//! header before any allocation, and max_connections.

mod common;

use std::io::Write;
use std::sync::mpsc::{self, Sender};
use std::time::Instant;

use common::*;
use threadnet::{codec::LengthDelimited, CloseReason, ConnOptions, Connection, Handler, TcpServer};

type Conn = Connection<LengthDelimited>;

/// Echoes, and reports each close with the connection's id.
struct Echo(Sender<(u64, Reason)>);

impl Handler<LengthDelimited> for Echo {
    fn on_message(&mut self, conn: &Conn, msg: Vec<u8>) {
        conn.send(msg).unwrap();
    }
    fn on_close(&mut self, conn: &Conn, reason: &CloseReason) {
        let _ = self.0.send((conn.id(), Reason::from(reason)));
    }
}

#[track_caller]
fn echo_once(s: &mut std::net::TcpStream, payload: &[u8]) {
    write_frame(s, payload).unwrap();
    assert_eq!(expect_frame(s), payload);
}

#[test]
fn oversize_frame_closes_only_that_connection() {
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()))
        .unwrap();
    let addr = server.local_addr().as_inet().unwrap();
    let mut good = peer(addr);
    echo_once(&mut good, b"before");

    let mut bad = peer(addr);
    echo_once(&mut bad, b"I am fine so far");
    // A header announcing 100 MiB, over the 1 MiB default: refused on the header alone.
    bad.write_all(&(100u32 * 1024 * 1024).to_be_bytes())
        .unwrap();
    bad.write_all(b"some of the payload").unwrap();
    assert!(ends(&bad), "the oversize connection stayed open");

    let (id, reason) = recv(&closes);
    assert_eq!(id, 2);
    match reason {
        Reason::Error { kind, dropped, .. } => {
            assert_eq!(kind, std::io::ErrorKind::InvalidData);
            assert_eq!(dropped, 0);
        }
        other => panic!("expected Error(InvalidData), got {other:?}"),
    }

    echo_once(&mut good, b"after");
    // The registry lets go of a connection just after its on_close.
    assert!(wait_until(WAIT, || server.connections().len() == 1));
    drop(good);
    assert_eq!(recv(&closes), (1, Reason::PeerClosed));
    server.stop(WAIT);
}

#[test]
fn max_frame_length_option_sets_the_codec_limit() {
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(ConnOptions::new().max_frame_length(1000))
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()))
        .unwrap();
    let mut p = peer(server.local_addr());
    echo_once(&mut p, &[7u8; 1000]); // at the limit: fine
    write_frame(&mut p, &[7u8; 1001]).unwrap();
    assert!(ends(&p));
    match recv(&closes).1 {
        Reason::Error { kind, .. } => assert_eq!(kind, std::io::ErrorKind::InvalidData),
        other => panic!("expected Error(InvalidData), got {other:?}"),
    }
    server.stop(WAIT);
}

#[test]
fn a_reply_over_the_frame_limit_is_refused_by_send() {
    let (server, conns) = handing_over(ConnOptions::new().max_frame_length(100));
    let mut p = peer(server.local_addr());
    let conn: Conn = recv(&conns);
    match conn.send(vec![1u8; 101]) {
        Err(threadnet::SendError::Encode(m, e)) => {
            assert_eq!(m.len(), 101);
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        }
        other => panic!("send over the limit: {other:?}"),
    }
    // The connection is still usable.
    conn.send(vec![2u8; 100]).unwrap();
    assert_eq!(expect_frame(&mut p), vec![2u8; 100]);
    conn.close();
    server.stop(WAIT);
}

#[test]
fn max_connections_refuses_the_extra_connection_at_once() {
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .max_connections(2)
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()))
        .unwrap();
    let addr = server.local_addr().as_inet().unwrap();
    let mut a = peer(addr);
    echo_once(&mut a, b"a");
    let mut b = peer(addr);
    echo_once(&mut b, b"b");

    let c = peer(addr);
    let t0 = Instant::now();
    assert!(ends(&c), "the third connection was not closed");
    assert!(
        t0.elapsed() < ms(2000),
        "refused only after {:?}",
        t0.elapsed()
    );
    assert_eq!(server.metrics().connections_refused, 1);
    assert_eq!(server.metrics().connections_accepted, 2);
    assert_eq!(server.connections().len(), 2);
    // The two served connections are unaffected.
    echo_once(&mut a, b"a again");
    echo_once(&mut b, b"b again");

    // One leaves; once its close is done, a new connection is served.
    drop(a);
    assert_eq!(recv(&closes), (1, Reason::PeerClosed));
    assert!(wait_until(WAIT, || server.connections().len() == 1));
    let mut d = peer(addr);
    echo_once(&mut d, b"d");
    assert_eq!(server.metrics().connections_refused, 1);
    assert_eq!(server.metrics().connections_accepted, 3);

    drop((b, c, d));
    server.stop(WAIT);
}

#[test]
fn a_reply_over_the_frame_limit_from_a_handler_is_refused_and_the_connection_goes_on() {
    // The same on the write-through path (a send from on_message, nothing queued): the codec
    // refuses the message before a byte reaches the socket.
    let (tx, results) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(ConnOptions::new().max_frame_length(100))
        .start(LengthDelimited::new(), move |_: &Conn| {
            let tx = tx.clone();
            move |conn: &Conn, msg: Vec<u8>| {
                let r = conn.send(vec![1u8; 101]);
                let refused = matches!(
                    &r,
                    Err(threadnet::SendError::Encode(m, e))
                        if m.len() == 101 && e.kind() == std::io::ErrorKind::InvalidInput
                );
                tx.send(refused).unwrap();
                conn.send(msg).unwrap();
            }
        })
        .unwrap();
    let mut p = peer(server.local_addr());
    echo_once(&mut p, b"first");
    assert!(
        recv(&results),
        "an oversize reply was not refused with Encode"
    );
    echo_once(&mut p, b"second");
    assert!(recv(&results));
    drop(p);
    server.stop(WAIT);
}

#[test]
fn an_overlong_line_closes_a_lines_connection() {
    use std::io::{BufRead, BufReader};
    use threadnet::codec::Lines;
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(ConnOptions::new().max_frame_length(1024))
        .start(Lines::new(), move |_: &Connection<Lines>| {
            struct LineEcho(Sender<Reason>);
            impl Handler<Lines> for LineEcho {
                fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
                    conn.send(line).unwrap();
                }
                fn on_close(&mut self, _: &Connection<Lines>, reason: &CloseReason) {
                    let _ = self.0.send(Reason::from(reason));
                }
            }
            LineEcho(tx.clone())
        })
        .unwrap();
    let mut p = peer(server.local_addr());
    let mut r = BufReader::new(p.try_clone().unwrap());
    p.write_all(b"short line\r\n").unwrap();
    let mut echoed = String::new();
    r.read_line(&mut echoed).unwrap();
    assert_eq!(echoed, "short line\n");

    // 100 KiB and no newline: refused once 1024 bytes pass without one.
    p.write_all(&[b'x'; 100 * 1024]).unwrap_or(());
    assert!(ends(&p));
    match recv(&closes) {
        Reason::Error { kind, .. } => assert_eq!(kind, std::io::ErrorKind::InvalidData),
        other => panic!("expected Error(InvalidData), got {other:?}"),
    }
    server.stop(WAIT);
}
