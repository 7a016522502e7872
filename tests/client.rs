//! `TcpClient`: retry of the first connect, giving up, reconnect after the server closes the
//! connection, and stop.

mod common;

use std::io;
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::Instant;

use common::*;
use threadnet::{
    codec::LengthDelimited, Backoff, CloseReason, Connection, Handler, ServerHandle, TcpClient,
    TcpServer,
};

type Conn = Connection<LengthDelimited>;

/// A server that echoes; with `close_first`, it closes connection 1 as soon as it opens.
fn echo_server(addr: &str, close_first: bool) -> ServerHandle<LengthDelimited> {
    struct Echo(bool);
    impl Handler<LengthDelimited> for Echo {
        fn on_connect(&mut self, conn: &Conn) {
            if self.0 && conn.id() == 1 {
                conn.close();
            }
        }
        fn on_message(&mut self, conn: &Conn, msg: Vec<u8>) {
            let _ = conn.send(msg);
        }
    }
    TcpServer::builder()
        .addr(addr)
        .start(LengthDelimited::new(), move |_: &Conn| Echo(close_first))
        .unwrap()
}

/// A client handler that records every callback.
struct Recorder(Sender<Ev>);

impl Handler<LengthDelimited> for Recorder {
    fn on_connect(&mut self, conn: &Conn) {
        let _ = self.0.send(Ev::Connect(conn.id()));
    }
    fn on_message(&mut self, conn: &Conn, msg: Vec<u8>) {
        let _ = self.0.send(Ev::Message(conn.id(), msg));
    }
    fn on_close(&mut self, conn: &Conn, reason: &CloseReason) {
        let _ = self.0.send(Ev::Close(conn.id(), Reason::from(reason)));
    }
}

#[test]
fn retry_connects_once_the_server_is_up() {
    let addr = dead_addr();
    let (etx, events) = mpsc::channel();
    let (rtx, result) = mpsc::channel();
    let t0 = Instant::now();
    thread::spawn(move || {
        let r = TcpClient::builder()
            .retry(Backoff::new().initial(ms(20)).max_attempts(50))
            .connect(addr, LengthDelimited::new(), move |_: &Conn| {
                Recorder(etx.clone())
            });
        rtx.send(r).unwrap();
    });
    // Nothing listens yet: the client's first attempts are refused.
    thread::sleep(ms(100));
    assert!(result.try_recv().is_err(), "connected to a dead port");
    let server = echo_server(&addr.to_string(), false);

    let client = recv(&result).expect("connect with retry");
    assert!(t0.elapsed() >= ms(100));
    assert_eq!(client.metrics().connections_accepted, 1);
    assert_eq!(recv(&events), Ev::Connect(1));
    let conn = client.connection().expect("connected");
    assert_eq!(conn.peer_addr(), addr);
    conn.send(b"hello".to_vec()).unwrap();
    assert_eq!(recv(&events), Ev::Message(1, b"hello".to_vec()));

    client.stop(WAIT);
    assert_eq!(
        recv(&events),
        Ev::Close(1, Reason::ServerStopped { dropped: 0 })
    );
    assert!(wait_until(WAIT, || server.connections().is_empty()));
    server.stop(WAIT);
}

#[test]
fn retry_gives_up_after_max_attempts() {
    let addr = dead_addr();
    let t0 = Instant::now();
    let r = TcpClient::builder()
        .retry(Backoff::new().initial(ms(20)).max_attempts(2))
        .connect(addr, LengthDelimited::new(), |_: &Conn| {
            |_: &Conn, _: Vec<u8>| {}
        });
    let took = t0.elapsed();
    match r {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
        Ok(_) => panic!("connected to a dead port"),
    }
    // Two attempts and one pause of at most 20 ms.
    assert!(took >= ms(10), "no pause between attempts: {took:?}");
    assert!(took < ms(2000), "gave up only after {took:?}");
}

#[test]
fn without_retry_a_dead_port_fails_at_once() {
    let t0 = Instant::now();
    let r = TcpClient::builder().connect(dead_addr(), LengthDelimited::new(), |_: &Conn| {
        |_: &Conn, _: Vec<u8>| {}
    });
    assert_eq!(
        r.err().map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionRefused)
    );
    assert!(t0.elapsed() < ms(1000));
}

#[test]
fn reconnect_after_the_server_closes_the_connection() {
    let server = echo_server("127.0.0.1:0", true);
    let (etx, events) = mpsc::channel();
    let client = TcpClient::builder()
        .reconnect(Backoff::new().initial(ms(20)).max_attempts(10))
        .connect(
            server.local_addr(),
            LengthDelimited::new(),
            move |_: &Conn| Recorder(etx.clone()),
        )
        .unwrap();

    // The first connection is closed by the server: the client sees the peer close it.
    assert_eq!(recv(&events), Ev::Connect(1));
    assert_eq!(recv(&events), Ev::Close(1, Reason::PeerClosed));
    // A new handler, a new connection.
    assert_eq!(recv(&events), Ev::Connect(2));
    assert!(wait_until(WAIT, || client.metrics().connections_accepted == 2));
    let conn = client.connection().expect("reconnected");
    assert_eq!(conn.id(), 2);
    conn.send(b"again".to_vec()).unwrap();
    assert_eq!(recv(&events), Ev::Message(2, b"again".to_vec()));
    assert_eq!(server.metrics().connections_accepted, 2);

    // stop() ends the client for good: no third connection.
    client.stop(WAIT);
    assert_eq!(
        recv(&events),
        Ev::Close(2, Reason::ServerStopped { dropped: 0 })
    );
    assert!(client.connection().is_none());
    assert_eq!(client.metrics().connections_accepted, 2);
    assert!(wait_until(WAIT, || server.connections().is_empty()));
    assert_eq!(server.metrics().connections_accepted, 2);
    server.stop(WAIT);
}

#[test]
fn reconnect_gives_up_when_the_server_is_gone() {
    let server = echo_server("127.0.0.1:0", false);
    let (etx, events) = mpsc::channel();
    let client = TcpClient::builder()
        .reconnect(Backoff::new().initial(ms(10)).max_attempts(2))
        .connect(
            server.local_addr(),
            LengthDelimited::new(),
            move |_: &Conn| Recorder(etx.clone()),
        )
        .unwrap();
    assert_eq!(recv(&events), Ev::Connect(1));
    server.stop(ms(500));
    assert!(matches!(recv(&events), Ev::Close(1, _)));
    // The client's thread ends by itself once the dials fail.
    let (dtx, done) = mpsc::channel();
    let waiter = client.clone();
    thread::spawn(move || {
        waiter.wait();
        dtx.send(()).unwrap();
    });
    recv(&done);
    assert!(client.connection().is_none());
    assert_eq!(client.metrics().connections_accepted, 1);
}

#[test]
fn client_stop_is_a_graceful_close_the_server_sees_as_peer_closed() {
    let (stx, server_closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), move |_: &Conn| {
            Recorder(stx.clone())
        })
        .unwrap();
    let (etx, events) = mpsc::channel();
    let client = TcpClient::builder()
        .connect(
            server.local_addr(),
            LengthDelimited::new(),
            move |_: &Conn| Recorder(etx.clone()),
        )
        .unwrap();
    let conn = client.connection().unwrap();
    for i in 0..100 {
        conn.send(tagged(0, i, 100)).unwrap();
    }
    client.stop(WAIT);
    assert_eq!(recv(&events), Ev::Connect(1));
    assert_eq!(
        recv(&events),
        Ev::Close(1, Reason::ServerStopped { dropped: 0 })
    );
    // The server got all 100 messages, then the client's FIN.
    assert_eq!(recv(&server_closes), Ev::Connect(1));
    for i in 0..100 {
        assert_eq!(recv(&server_closes), Ev::Message(1, tagged(0, i, 100)));
    }
    assert_eq!(recv(&server_closes), Ev::Close(1, Reason::PeerClosed));
    server.stop(WAIT);
}

#[test]
fn stop_interrupts_the_pause_before_a_reconnect() {
    let server = echo_server("127.0.0.1:0", true);
    let (etx, events) = mpsc::channel();
    let client = TcpClient::builder()
        .reconnect(Backoff::new().initial(ms(10_000)).jitter(false))
        .connect(
            server.local_addr(),
            LengthDelimited::new(),
            move |_: &Conn| Recorder(etx.clone()),
        )
        .unwrap();
    assert_eq!(recv(&events), Ev::Connect(1));
    assert_eq!(recv(&events), Ev::Close(1, Reason::PeerClosed));
    // The client now waits 10 s before redialling; stop must not wait that out.
    let t0 = Instant::now();
    client.stop(WAIT);
    assert!(t0.elapsed() < ms(1000), "stop took {:?}", t0.elapsed());
    assert_eq!(client.metrics().connections_accepted, 1);
    server.stop(WAIT);
}
