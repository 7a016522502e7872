//! Invariant 7: a panic in a user callback closes that connection only, with
//! `CloseReason::Panic`; the server and every other connection go on.

mod common;

use std::sync::mpsc::{self, Sender};

use common::*;
use threadnet::{codec::LengthDelimited, CloseReason, Connection, Handler, TcpServer};

type Conn = Connection<LengthDelimited>;

/// Echoes; panics on a message `"panic"`; with `panic_on_connect`, panics in `on_connect`.
struct Fragile {
    closes: Sender<(u64, Reason)>,
    panic_on_connect: bool,
    shutdown_on_connect: bool,
}

impl Handler<LengthDelimited> for Fragile {
    fn on_connect(&mut self, conn: &Conn) {
        if self.panic_on_connect {
            panic!("boom in on_connect of {}", conn.id());
        }
        if self.shutdown_on_connect {
            conn.shutdown(WAIT);
        }
    }
    fn on_message(&mut self, conn: &Conn, msg: Vec<u8>) {
        if msg == b"panic" {
            panic!("boom in on_message of {}", conn.id());
        }
        if msg == b"static panic" {
            panic!("a static str");
        }
        let _ = conn.send(msg);
    }
    fn on_close(&mut self, conn: &Conn, reason: &CloseReason) {
        let _ = self.closes.send((conn.id(), Reason::from(reason)));
    }
}

#[track_caller]
fn echo_once(s: &mut std::net::TcpStream, payload: &[u8]) {
    write_frame(s, payload).unwrap();
    assert_eq!(expect_frame(s), payload);
}

#[track_caller]
fn expect_panic(reason: Reason, text: &str) {
    match reason {
        Reason::Panic { message, .. } => {
            assert!(message.contains(text), "panic message {message:?}")
        }
        other => panic!("expected Panic, got {other:?}"),
    }
}

#[test]
fn panic_in_on_message_closes_only_that_connection() {
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), move |_: &Conn| Fragile {
            closes: tx.clone(),
            panic_on_connect: false,
            shutdown_on_connect: false,
        })
        .unwrap();
    let addr = server.local_addr().as_inet().unwrap();
    let mut good = peer(addr);
    echo_once(&mut good, b"hello");
    let mut bad = peer(addr);
    echo_once(&mut bad, b"hello");

    write_frame(&mut bad, b"panic").unwrap();
    assert!(ends(&bad), "the panicking connection stayed open");
    let (id, reason) = recv(&closes);
    assert_eq!(id, 2);
    expect_panic(reason, "boom in on_message of 2");

    echo_once(&mut good, b"still here");

    // A &'static str payload is reported too.
    let mut bad2 = peer(addr);
    write_frame(&mut bad2, b"static panic").unwrap();
    assert!(ends(&bad2));
    let (id, reason) = recv(&closes);
    assert_eq!(id, 3);
    expect_panic(reason, "a static str");

    echo_once(&mut good, b"and still here");
    // The registry lets go of a connection just after its on_close.
    assert!(wait_until(WAIT, || server.connections().len() == 1));
    drop(good);
    assert_eq!(recv(&closes), (1, Reason::PeerClosed));
    server.stop(WAIT);
}

#[test]
fn panics_in_on_connect_and_in_the_factory_do_not_stop_the_server() {
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), move |conn: &Conn| {
            // Connection 2: the factory panics (no handler, so no on_close).
            // Connection 3: on_connect panics.
            if conn.id() == 2 {
                panic!("boom in the factory");
            }
            Fragile {
                closes: tx.clone(),
                panic_on_connect: conn.id() == 3,
                shutdown_on_connect: false,
            }
        })
        .unwrap();
    let addr = server.local_addr().as_inet().unwrap();
    let mut good = peer(addr);
    echo_once(&mut good, b"one");

    let factory_victim = peer(addr);
    assert!(
        ends(&factory_victim),
        "factory panic left the connection open"
    );
    echo_once(&mut good, b"two");

    let connect_victim = peer(addr);
    assert!(
        ends(&connect_victim),
        "on_connect panic left the connection open"
    );
    let (id, reason) = recv(&closes);
    assert_eq!(id, 3);
    expect_panic(reason, "boom in on_connect of 3");

    // The server goes on: old and new connections echo.
    echo_once(&mut good, b"three");
    let mut fresh = peer(addr);
    echo_once(&mut fresh, b"four");
    assert!(wait_until(WAIT, || server.connections().len() == 2));
    assert_eq!(server.metrics().connections_accepted, 4);

    drop((good, fresh));
    let mut rest = vec![recv(&closes), recv(&closes)];
    rest.sort_by_key(|(id, _)| *id);
    assert_eq!(rest, vec![(1, Reason::PeerClosed), (4, Reason::PeerClosed)]);
    server.stop(WAIT);
}

#[test]
fn panic_after_shutdown_is_still_reported_as_panic() {
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), move |_: &Conn| Fragile {
            closes: tx.clone(),
            panic_on_connect: false,
            shutdown_on_connect: true,
        })
        .unwrap();
    let mut p = peer(server.local_addr());
    assert_eq!(read_frame(&mut p).unwrap(), None); // the server's FIN
    write_frame(&mut p, b"panic").unwrap();
    let (_, reason) = recv(&closes);
    expect_panic(reason, "boom in on_message");
    server.stop(WAIT);
}

#[test]
fn a_panicking_timer_callback_does_not_stop_the_wheel() {
    let wheel = threadnet::TimingWheel::new(ms(5));
    let (tx, fired) = mpsc::channel();
    wheel.after(ms(10), || panic!("boom in a timer"));
    let tx2 = tx.clone();
    wheel.after(ms(30), move || tx2.send("after the panic").unwrap());
    assert_eq!(recv(&fired), "after the panic");
    // And it keeps taking new timers.
    wheel.after(ms(1), move || tx.send("later").unwrap());
    assert_eq!(recv(&fired), "later");
    wheel.stop();
}

#[test]
fn a_panic_with_a_full_queue_counts_what_it_drops() {
    // A panic on a connection with a full queue to a peer that does not read: the close is
    // abortive, so it does not wait for the queue, and the unwritten messages are counted.
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(threadnet::ConnOptions::new().write_through(false))
        .start(LengthDelimited::new(), move |_: &Conn| {
            let tx = tx.clone();
            struct Flood(Sender<(u64, Reason)>);
            impl Handler<LengthDelimited> for Flood {
                fn on_message(&mut self, conn: &Conn, _: Vec<u8>) {
                    let n = fill(conn, 64 * 1024, || {});
                    panic!("boom with {n} queued");
                }
                fn on_close(&mut self, conn: &Conn, reason: &CloseReason) {
                    let _ = self.0.send((conn.id(), Reason::from(reason)));
                }
            }
            Flood(tx)
        })
        .unwrap();
    let mut p = peer(server.local_addr());
    write_frame(&mut p, b"go").unwrap(); // then never read
    match recv(&closes).1 {
        Reason::Panic { message, dropped } => {
            assert!(message.starts_with("boom with"), "{message}");
            assert!(dropped > 0, "a full queue, yet nothing dropped");
        }
        other => panic!("expected Panic, got {other:?}"),
    }
    drop(p);
    server.stop(WAIT);
}
