//! UDP: each peer is a `Connection` served by the same handlers as TCP; one datagram holds
//! whole messages; a bad datagram ends only its peer's connection; idle peers expire; stop
//! sends what was sent; a full table evicts the peer heard from least recently.

mod common;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Sender};

use common::*;
use threadnet::{
    codec::{LengthDelimited, Lines},
    idle::IdleKind,
    udp::UdpServer,
    CloseReason, ConnOptions, Connection, Handler, TcpServer, TimingWheel,
};

/// The handler of a line service: written once, run over TCP and UDP.
fn shout(conn: &Connection<Lines>, line: String) {
    let _ = conn.send(line.to_uppercase());
}

/// A UDP client bound to loopback, with a read timeout.
fn client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

fn recv_datagram(s: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 65_536];
    let (n, _) = s.recv_from(&mut buf).expect("a datagram");
    buf.truncate(n);
    buf
}

#[test]
fn a_line_service_moves_from_tcp_to_udp_by_changing_one_line() {
    let tcp = TcpServer::builder()
        .start(Lines::new(), |_: &Connection<Lines>| shout)
        .unwrap();
    let udp = UdpServer::builder()
        .start(Lines::new(), |_: &Connection<Lines>| shout)
        .unwrap();

    let mut t = peer(tcp.local_addr());
    std::io::Write::write_all(&mut t, b"over tcp\n").unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&t), &mut line).unwrap();
    assert_eq!(line, "OVER TCP\n");

    let u = client();
    u.send_to(b"over udp\n", udp.local_addr()).unwrap();
    assert_eq!(recv_datagram(&u), b"OVER UDP\n");
    drop(t);
    tcp.stop(WAIT);
    udp.stop(WAIT);
}

/// Reports connects, messages and closes, with the peer's address; echoes each message.
struct Report(Sender<(SocketAddr, Ev)>);

impl Handler<LengthDelimited> for Report {
    fn on_connect(&mut self, conn: &Connection<LengthDelimited>) {
        let _ = self.0.send((addr(conn), Ev::Connect(conn.id())));
    }
    fn on_message(&mut self, conn: &Connection<LengthDelimited>, msg: Vec<u8>) {
        let _ = conn.send(msg.clone());
        let _ = self.0.send((addr(conn), Ev::Message(conn.id(), msg)));
    }
    fn on_close(&mut self, conn: &Connection<LengthDelimited>, reason: &CloseReason) {
        let _ = self
            .0
            .send((addr(conn), Ev::Close(conn.id(), Reason::from(reason))));
    }
}

fn addr(conn: &Connection<LengthDelimited>) -> SocketAddr {
    conn.peer_addr().as_inet().unwrap()
}

#[test]
fn each_peer_is_one_connection_and_a_datagram_holds_whole_messages() {
    let (tx, events) = mpsc::channel();
    let server = UdpServer::builder()
        .start(LengthDelimited::new(), move |_: &_| Report(tx.clone()))
        .unwrap();
    let a = client();
    let b = client();
    // Three frames in one datagram from A, one from B.
    let mut three = frame(b"one");
    three.extend(frame(b"two"));
    three.extend(frame(b"three"));
    a.send_to(&three, server.local_addr()).unwrap();
    // Each reply is a datagram of its own.
    for want in [&b"one"[..], b"two", b"three"] {
        assert_eq!(recv_datagram(&a), frame(want));
    }
    b.send_to(&frame(b"bee"), server.local_addr()).unwrap();
    assert_eq!(recv_datagram(&b), frame(b"bee"));
    a.send_to(&frame(b"again"), server.local_addr()).unwrap();
    assert_eq!(recv_datagram(&a), frame(b"again"));

    let seen: Vec<(SocketAddr, Ev)> = (0..7).map(|_| recv(&events)).collect();
    let a_addr = a.local_addr().unwrap();
    let connects: Vec<_> = seen
        .iter()
        .filter(|(_, e)| matches!(e, Ev::Connect(_)))
        .collect();
    assert_eq!(connects.len(), 2, "one connection per peer: {seen:?}");
    let a_msgs = seen
        .iter()
        .filter(|(from, e)| *from == a_addr && matches!(e, Ev::Message(..)))
        .count();
    assert_eq!(a_msgs, 4);
    assert_eq!(server.connections().len(), 2);
    server.stop(WAIT);
    // Both peers' connections end with the server.
    let closes = (0..2)
        .map(|_| recv(&events).1)
        .filter(|e| matches!(e, Ev::Close(_, Reason::ServerStopped { dropped: 0 })))
        .count();
    assert_eq!(closes, 2);
}

#[test]
fn a_bad_datagram_ends_only_its_peers_connection_and_the_peer_may_come_back() {
    let (tx, events) = mpsc::channel();
    let server = UdpServer::builder()
        .options(ConnOptions::new().max_frame_length(100))
        .start(LengthDelimited::new(), move |_: &_| Report(tx.clone()))
        .unwrap();
    let good = client();
    let bad = client();
    good.send_to(&frame(b"hi"), server.local_addr()).unwrap();
    assert_eq!(recv_datagram(&good), frame(b"hi"));
    // A frame cut short: the datagram ends inside it.
    let mut cut = frame(b"0123456789");
    cut.truncate(8);
    bad.send_to(&cut, server.local_addr()).unwrap();
    let bad_addr = bad.local_addr().unwrap();
    let reason = loop {
        if let (from, Ev::Close(_, reason)) = recv(&events) {
            assert_eq!(from, bad_addr);
            break reason;
        }
    };
    assert!(
        matches!(
            reason,
            Reason::Error {
                kind: io::ErrorKind::UnexpectedEof,
                ..
            }
        ),
        "{reason:?}"
    );
    // Over the frame limit: refused before allocating, same end.
    bad.send_to(&(1u32 << 30).to_be_bytes(), server.local_addr())
        .unwrap();
    let reason = loop {
        if let (_, Ev::Close(_, reason)) = recv(&events) {
            break reason;
        }
    };
    assert!(
        matches!(
            reason,
            Reason::Error {
                kind: io::ErrorKind::InvalidData,
                ..
            }
        ),
        "{reason:?}"
    );
    // The good peer was never disturbed, and the bad one is served again as a new connection.
    good.send_to(&frame(b"still"), server.local_addr()).unwrap();
    assert_eq!(recv_datagram(&good), frame(b"still"));
    bad.send_to(&frame(b"sorry"), server.local_addr()).unwrap();
    assert_eq!(recv_datagram(&bad), frame(b"sorry"));
    server.stop(WAIT);
}

#[test]
fn a_datagram_over_the_limit_ends_its_peers_connection() {
    let (tx, events) = mpsc::channel();
    let server = UdpServer::builder()
        .max_datagram(64)
        .start(LengthDelimited::new(), move |_: &_| Report(tx.clone()))
        .unwrap();
    let c = client();
    c.send_to(&frame(&[7u8; 100]), server.local_addr()).unwrap();
    let reason = loop {
        if let (_, Ev::Close(_, reason)) = recv(&events) {
            break reason;
        }
    };
    match reason {
        Reason::Error { kind, message, .. } => {
            assert_eq!(kind, io::ErrorKind::InvalidData);
            assert!(message.contains("64"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    server.stop(WAIT);
}

#[test]
fn an_idle_peer_expires_on_the_wheel_and_a_busy_one_does_not() {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let (tx, events) = mpsc::channel();
    let server = UdpServer::builder()
        .options(
            ConnOptions::new()
                .read_idle(std::time::Duration::from_secs(10))
                .timing_wheel(wheel),
        )
        .start(LengthDelimited::new(), move |_: &_| Report(tx.clone()))
        .unwrap();
    let quiet = client();
    let busy = client();
    for c in [&quiet, &busy] {
        c.send_to(&frame(b"hello"), server.local_addr()).unwrap();
        assert_eq!(recv_datagram(c), frame(b"hello"));
    }
    for _ in 0..3 {
        clock.advance(std::time::Duration::from_secs(6));
        busy.send_to(&frame(b"tick"), server.local_addr()).unwrap();
        assert_eq!(recv_datagram(&busy), frame(b"tick"));
    }
    let quiet_addr = quiet.local_addr().unwrap();
    let (from, reason) = loop {
        if let (from, Ev::Close(_, reason)) = recv(&events) {
            break (from, reason);
        }
    };
    assert_eq!(from, quiet_addr);
    assert_eq!(
        reason,
        Reason::Idle {
            kind: IdleKind::Read,
            dropped: 0
        }
    );
    // The busy peer is still served, on the same connection (no new connect event).
    busy.send_to(&frame(b"still"), server.local_addr()).unwrap();
    assert_eq!(recv_datagram(&busy), frame(b"still"));
    assert!(matches!(recv(&events).1, Ev::Message(..)));
    server.stop(WAIT);
}

#[test]
fn stop_sends_what_was_sent_and_a_full_table_evicts_the_peer_heard_from_least_recently() {
    let (tx, events) = mpsc::channel();
    let server = UdpServer::builder()
        .max_peers(2)
        .start(LengthDelimited::new(), move |_: &_| Report(tx.clone()))
        .unwrap();
    let first = client();
    let second = client();
    for (c, m) in [
        (&first, &b"in"[..]),
        (&second, b"in too"),
        (&first, b"again"),
    ] {
        c.send_to(&frame(m), server.local_addr()).unwrap();
        assert_eq!(recv_datagram(c), frame(m));
    }
    // The table is full; `second` was heard from least recently: it makes room. (Before,
    // the newcomer was refused for as long as the others stayed: a lockout anyone could
    // cause by sending from many ports.)
    let third = client();
    third.send_to(&frame(b"new"), server.local_addr()).unwrap();
    assert_eq!(recv_datagram(&third), frame(b"new"));
    let second_addr = second.local_addr().unwrap();
    let closed: Vec<_> = std::iter::repeat_with(|| recv(&events))
        .take(6)
        .filter(|(_, e)| matches!(e, Ev::Close(..)))
        .collect();
    assert!(
        matches!(
            &closed[..],
            [(a, Ev::Close(2, Reason::Idle { kind: IdleKind::Read, dropped: 0 }))] if *a == second_addr
        ),
        "{closed:?}"
    );
    assert_eq!(server.evicted_count(), 1);
    assert_eq!(server.metrics().connections_refused, 0);
    assert_eq!(server.connections().len(), 2);

    let conn = server.connections().get(1).unwrap();
    for i in 0..20u8 {
        conn.send(vec![i; 100]).unwrap();
    }
    server.stop(WAIT);
    for i in 0..20u8 {
        assert_eq!(recv_datagram(&first), frame(&[i; 100]));
    }
    assert!(server.is_stopped());
}

#[test]
fn stop_from_a_peers_timer_does_not_deadlock() {
    // The callback runs on the wheel thread holding its peer's timer fence, which the reader
    // needs to finish that peer: stop must not wait for the reader from there.
    let (tx, stopped) = mpsc::channel();
    let (handle_tx, handle_rx) = mpsc::channel::<threadnet::udp::UdpHandle<Lines>>();
    let handle_rx = std::sync::Arc::new(std::sync::Mutex::new(handle_rx));
    let server = UdpServer::builder()
        .start(Lines::new(), move |_: &Connection<Lines>| {
            let (tx, handle_rx) = (tx.clone(), std::sync::Arc::clone(&handle_rx));
            move |conn: &Connection<Lines>, _line: String| {
                let (tx, handle_rx) = (tx.clone(), std::sync::Arc::clone(&handle_rx));
                conn.run_after(ms(1), move |_| {
                    let server = handle_rx.lock().unwrap().recv().unwrap();
                    server.stop(ms(200));
                    tx.send(()).unwrap();
                });
            }
        })
        .unwrap();
    handle_tx.send(server.clone()).unwrap();
    let c = client();
    c.send_to(b"stop please\n", server.local_addr()).unwrap();
    recv(&stopped);
    // The reader ends once the peer has finished; a stop from here joins it.
    server.stop(WAIT);
    assert!(server.is_stopped());
}

#[test]
fn stop_from_a_handler_marks_the_server_stopped_once_the_reader_ends() {
    let (handle_tx, handle_rx) = mpsc::channel::<threadnet::udp::UdpHandle<Lines>>();
    let handle_rx = std::sync::Arc::new(std::sync::Mutex::new(handle_rx));
    let server = UdpServer::builder()
        .start(Lines::new(), move |_: &Connection<Lines>| {
            let handle_rx = std::sync::Arc::clone(&handle_rx);
            move |_: &Connection<Lines>, _line: String| {
                // On the reader thread: stop cannot wait for itself, and returns.
                let server = handle_rx.lock().unwrap().recv().unwrap();
                server.stop(ms(200));
            }
        })
        .unwrap();
    handle_tx.send(server.clone()).unwrap();
    let c = client();
    c.send_to(b"bye\n", server.local_addr()).unwrap();
    // wait() returns once the reader has finished every peer and ended.
    let waiter = server.clone();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        waiter.wait();
        done_tx.send(waiter.is_stopped()).unwrap();
    });
    assert!(recv(&done));
}
