//! Invariant 1 (DESIGN.md): `on_connect` once, before any `on_message`; `on_close` exactly once,
//! after the last `on_message`, with the right reason. Plus: a send on a closed connection
//! hands the message back.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::sync::mpsc::{self, Receiver, Sender};

use common::*;
use threadnet::{
    codec::LengthDelimited, CloseReason, Connection, Handler, SendError, ServerHandle, TcpServer,
    TrySendError,
};

type Conn = Connection<LengthDelimited>;

/// Records every callback into a channel; echoes each message; closes the connection after
/// `close_at` messages if set.
struct Recorder {
    events: Sender<Ev>,
    conns: Sender<Conn>,
    close_at: Option<usize>,
    shutdown_on_connect: bool,
    seen: usize,
}

impl Handler<LengthDelimited> for Recorder {
    fn on_connect(&mut self, conn: &Conn) {
        self.events.send(Ev::Connect(conn.id())).unwrap();
        let _ = self.conns.send(conn.clone());
        if self.shutdown_on_connect {
            conn.shutdown(WAIT);
        }
    }

    fn on_message(&mut self, conn: &Conn, msg: Vec<u8>) {
        self.seen += 1;
        self.events
            .send(Ev::Message(conn.id(), msg.clone()))
            .unwrap();
        if !self.shutdown_on_connect {
            conn.send(msg).unwrap();
        }
        if self.close_at == Some(self.seen) {
            conn.close();
        }
    }

    fn on_close(&mut self, conn: &Conn, reason: &CloseReason) {
        self.events
            .send(Ev::Close(conn.id(), Reason::from(reason)))
            .unwrap();
    }
}

struct Setup {
    server: ServerHandle<LengthDelimited>,
    events: Receiver<Ev>,
    conns: Receiver<Conn>,
}

fn start(close_at: Option<usize>, shutdown_on_connect: bool) -> Setup {
    let (etx, events) = mpsc::channel();
    let (ctx, conns) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), move |_: &Conn| Recorder {
            events: etx.clone(),
            conns: ctx.clone(),
            close_at,
            shutdown_on_connect,
            seen: 0,
        })
        .unwrap();
    Setup {
        server,
        events,
        conns,
    }
}

/// Receives events until (and including) the first `Close`.
fn until_close(rx: &Receiver<Ev>) -> Vec<Ev> {
    let mut out = Vec::new();
    loop {
        let ev = recv(rx);
        let last = matches!(ev, Ev::Close(..));
        out.push(ev);
        if last {
            return out;
        }
    }
}

fn msg(i: u32) -> Vec<u8> {
    format!("message {i}").into_bytes()
}

#[test]
fn peer_close_gives_connect_messages_then_peer_closed() {
    let s = start(None, false);
    let mut p = peer(s.server.local_addr());
    for i in 0..5 {
        write_frame(&mut p, &msg(i)).unwrap();
        assert_eq!(expect_frame(&mut p), msg(i));
    }
    let conn = recv(&s.conns);
    assert_eq!(conn.peer_addr(), p.local_addr().unwrap());
    assert_eq!(conn.local_addr(), s.server.local_addr());
    drop(p);

    let id = conn.id();
    let mut expected = vec![Ev::Connect(id)];
    expected.extend((0..5).map(|i| Ev::Message(id, msg(i))));
    expected.push(Ev::Close(id, Reason::PeerClosed));
    assert_eq!(until_close(&s.events), expected);

    // Exactly once: nothing follows the close, not even after the server stops.
    s.server.stop(WAIT);
    assert!(s.events.try_recv().is_err(), "an event after on_close");
    assert_eq!(s.server.connections().len(), 0);
}

#[test]
fn close_from_handler_stops_delivery_and_reports_closed() {
    let s = start(Some(3), false);
    let mut p = peer(s.server.local_addr());
    // Five frames in one write: the handler closes on the third, so the fourth and fifth are
    // never delivered even if they are already buffered.
    let mut wire = Vec::new();
    for i in 0..5 {
        wire.extend(frame(&msg(i)));
    }
    p.write_all(&wire).unwrap();

    let events = until_close(&s.events);
    let id = match events[0] {
        Ev::Connect(id) => id,
        ref e => panic!("first event {e:?}"),
    };
    let mut expected = vec![Ev::Connect(id)];
    expected.extend((0..3).map(|i| Ev::Message(id, msg(i))));
    assert_eq!(events[..4], expected[..]);
    assert_eq!(events.len(), 5, "{events:?}");
    // The three echoes were accepted; close() may drop some of them, but must count them.
    match &events[4] {
        Ev::Close(cid, Reason::Closed { dropped }) => {
            assert_eq!(*cid, id);
            assert!(*dropped <= 3, "dropped {dropped} of 3 replies");
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(ends(&p), "the peer's stream did not end after close()");

    s.server.stop(WAIT);
    assert!(s.events.try_recv().is_err(), "an event after on_close");
}

#[test]
fn close_from_handler_writes_or_counts_every_accepted_reply() {
    // Invariant 2 on the reply path: the peer sends exactly three frames (so the server has
    // no unread input and closes with a FIN, not a reset) and the handler closes on the third.
    // Every echo is either received or counted in `dropped`.
    let s = start(Some(3), false);
    let mut p = peer(s.server.local_addr());
    let mut wire = Vec::new();
    for i in 0..3 {
        wire.extend(frame(&msg(i)));
    }
    p.write_all(&wire).unwrap();
    let events = until_close(&s.events);
    let dropped = match events.last() {
        Some(Ev::Close(_, Reason::Closed { dropped })) => *dropped,
        other => panic!("expected Closed, got {other:?}"),
    };
    let (frames, end) = drain_frames(&p);
    end.expect("a clean EOF after the echoes");
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f, &msg(i as u32));
    }
    assert_eq!(
        frames.len() as u64 + dropped,
        3,
        "{} received",
        frames.len()
    );
    s.server.stop(WAIT);
}

#[test]
fn close_from_another_thread_reports_closed_and_peer_sees_eof() {
    let s = start(None, false);
    let mut p = peer(s.server.local_addr());
    write_frame(&mut p, b"ping").unwrap();
    assert_eq!(expect_frame(&mut p), b"ping");

    let conn = recv(&s.conns);
    conn.close();
    assert!(conn.is_closed());
    // Everything written before close() arrived; then a clean EOF.
    assert_eq!(read_frame(&mut p).unwrap(), None);

    let id = conn.id();
    assert_eq!(
        until_close(&s.events),
        vec![
            Ev::Connect(id),
            Ev::Message(id, b"ping".to_vec()),
            Ev::Close(id, Reason::Closed { dropped: 0 }),
        ]
    );
    assert!(wait_until(WAIT, || s.server.connections().is_empty()));
    s.server.stop(WAIT);
}

#[test]
fn after_shutdown_the_reader_still_delivers_until_peer_eof() {
    // Invariant 3: shutdown sends our FIN, then reads on (calling on_message) to the peer's EOF.
    let s = start(None, true);
    let mut p = peer(s.server.local_addr());
    // Our side sees the server's FIN first ...
    assert_eq!(read_frame(&mut p).unwrap(), None);
    // ... and can still send: the server reads it.
    write_frame(&mut p, b"late 1").unwrap();
    write_frame(&mut p, b"late 2").unwrap();
    let conn = recv(&s.conns);
    let id = conn.id();
    assert_eq!(recv(&s.events), Ev::Connect(id));
    assert_eq!(recv(&s.events), Ev::Message(id, b"late 1".to_vec()));
    assert_eq!(recv(&s.events), Ev::Message(id, b"late 2".to_vec()));
    // A reply after shutdown is refused, with the message handed back.
    match conn.send(b"too late".to_vec()) {
        Err(SendError::Closed(m)) => assert_eq!(m, b"too late"),
        other => panic!("send after shutdown: {other:?}"),
    }
    p.shutdown(Shutdown::Write).unwrap();
    assert_eq!(recv(&s.events), Ev::Close(id, Reason::Shutdown));
    s.server.stop(WAIT);
}

#[test]
fn send_after_close_hands_the_message_back() {
    let s = start(None, false);
    let p = peer(s.server.local_addr());
    let conn = recv(&s.conns);
    assert!(!conn.is_closed());
    conn.close();
    assert!(conn.is_closed());

    match conn.send(b"one".to_vec()) {
        Err(SendError::Closed(m)) => assert_eq!(m, b"one"),
        other => panic!("send after close: {other:?}"),
    }
    match conn.send_timeout(b"two".to_vec(), ms(100)) {
        Err(e) => {
            assert!(e.is_closed());
            assert_eq!(e.into_inner(), b"two");
        }
        Ok(()) => panic!("send_timeout after close succeeded"),
    }
    match conn.try_send(b"three".to_vec()) {
        Err(TrySendError::Closed(m)) => assert_eq!(m, b"three"),
        other => panic!("try_send after close: {other:?}"),
    }
    match conn.send_bytes(b"raw".to_vec()) {
        Err(SendError::Closed(m)) => assert_eq!(m, b"raw"),
        other => panic!("send_bytes after close: {other:?}"),
    }
    assert!(ends(&p));
    let events = until_close(&s.events);
    assert_eq!(
        events.last(),
        Some(&Ev::Close(conn.id(), Reason::Closed { dropped: 0 }))
    );
    s.server.stop(WAIT);
}

#[test]
fn ids_are_distinct_and_in_accept_order() {
    let s = start(None, false);
    let mut ids = Vec::new();
    let mut peers = Vec::new();
    for _ in 0..3 {
        let p = peer(s.server.local_addr());
        ids.push(recv(&s.conns).id());
        peers.push(p);
    }
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(s.server.connections().len(), 3);
    assert_eq!(s.server.metrics().connections_accepted, 3);
    for id in &ids {
        assert_eq!(s.server.connections().get(*id).map(|c| c.id()), Some(*id));
    }
    drop(peers);
    s.server.stop(WAIT);
}

#[test]
fn peer_reset_is_reported_as_an_error() {
    let s = start(None, false);
    let mut p = peer(s.server.local_addr());
    write_frame(&mut p, b"ping").unwrap();
    // Wait for the echo to arrive without reading it: closing with unread data sends a reset.
    let mut b = [0u8; 1];
    assert_eq!(p.peek(&mut b).unwrap(), 1);
    drop(p);
    let events = until_close(&s.events);
    match events.last() {
        Some(Ev::Close(_, Reason::Error { kind, .. })) => {
            assert_eq!(*kind, std::io::ErrorKind::ConnectionReset)
        }
        other => panic!("expected Error(ConnectionReset), got {other:?}"),
    }
    s.server.stop(WAIT);
}

#[test]
fn eof_inside_a_frame_is_reported_as_an_error() {
    let s = start(None, false);
    let mut p = peer(s.server.local_addr());
    // A header for 100 bytes, then only 3 of them, then our FIN.
    p.write_all(&100u32.to_be_bytes()).unwrap();
    p.write_all(b"abc").unwrap();
    p.shutdown(Shutdown::Write).unwrap();
    let events = until_close(&s.events);
    match events.last() {
        Some(Ev::Close(_, Reason::Error { kind, .. })) => {
            assert_eq!(*kind, std::io::ErrorKind::UnexpectedEof)
        }
        other => panic!("expected Error(UnexpectedEof), got {other:?}"),
    }
    assert!(ends(&p));
    s.server.stop(WAIT);
}

/// Closes with a named error on the message `bad`, echoes anything else, and reports its
/// close reason.
struct Strict(Sender<Reason>);

impl Handler<LengthDelimited> for Strict {
    fn on_message(&mut self, conn: &Conn, msg: Vec<u8>) {
        if msg == b"bad" {
            conn.close_with_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "unknown message type",
            ));
            assert!(conn.is_closed());
        } else {
            conn.send(msg).unwrap();
        }
    }

    fn on_close(&mut self, _: &Conn, reason: &CloseReason) {
        if let CloseReason::Error { error, .. } = reason {
            assert_eq!(error.to_string(), "unknown message type");
        }
        self.0.send(Reason::from(reason)).unwrap();
    }
}

#[test]
fn close_with_error_reports_that_error_and_the_peer_sees_eof() {
    let (tx, rx) = mpsc::channel();
    let server = TcpServer::builder()
        .start(LengthDelimited::new(), move |_| Strict(tx.clone()))
        .unwrap();
    let mut p = peer(server.local_addr());
    write_frame(&mut p, b"ok").unwrap();
    assert_eq!(expect_frame(&mut p), b"ok");
    write_frame(&mut p, b"bad").unwrap();
    match recv(&rx) {
        Reason::Error { kind, .. } => assert_eq!(kind, std::io::ErrorKind::InvalidData),
        other => panic!("expected Error(InvalidData), got {other:?}"),
    }
    assert!(ends(&p));
    // The server still serves everyone else.
    let mut q = peer(server.local_addr());
    write_frame(&mut q, b"still here").unwrap();
    assert_eq!(expect_frame(&mut q), b"still here");
    drop(q);
    server.stop(WAIT);
}

#[test]
fn a_server_serves_on_a_listener_made_elsewhere() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = TcpServer::builder()
        .listener(listener)
        .start(LengthDelimited::new(), |_: &Conn| {
            |conn: &Conn, msg: Vec<u8>| conn.send(msg).unwrap()
        })
        .unwrap();
    assert_eq!(server.local_addr(), addr);
    let mut p = peer(addr);
    write_frame(&mut p, b"inherited").unwrap();
    assert_eq!(expect_frame(&mut p), b"inherited");
    drop(p);
    server.stop(WAIT);
    // Stopping closed the listener (the builder's clone of it is gone with the builder).
    assert!(std::net::TcpStream::connect(addr).is_err());
}
