//! One lifecycle, four drivers: each test body runs on every driver of a connection where it
//! applies (`conn/lifecycle.rs` is the one copy they share):
//!
//! * the reader thread of a `TcpServer`, its peer a `TcpStream`;
//! * an `EmbeddedConnection`, in memory on the test's thread (its clock moved by hand);
//! * a `BlockingClient`, whose caller is its reader, its peer a raw `TcpListener`;
//! * a `UdpServer`'s peer, its datagrams sent from a `UdpSocket`.
//!
//! The peer sends its bytes and then stays silent, without closing; the driver delivers
//! messages to a callback (the handler's `on_message`, or the code after a blocking `recv`)
//! until the connection ends. What each body checks: what was delivered, the close reason,
//! and the `Opened`/`Closed` events with the peer's address.

mod common;

use std::io::{self, BufRead, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::WAIT;
use threadnet::testing::EmbeddedConnection;
use threadnet::{
    codec::Lines, events::ConnEvent, idle::IdleKind, udp::UdpServer, BlockingClient, ClientBuilder,
    CloseReason, Codec, ConnOptions, Connection, Handler, TcpServer,
};

/// `Lines`, except that a line `boom` panics inside the codec.
#[derive(Clone, Default)]
struct Fragile(Lines);

impl Codec for Fragile {
    type In = String;
    type Out = String;

    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<String>> {
        let line = self.0.read(r)?;
        assert!(line.as_deref() != Some("boom"), "the codec broke on boom");
        Ok(line)
    }

    fn write<W: Write>(&self, msg: &String, w: &mut W) -> io::Result<()> {
        self.0.write(msg, w)
    }
}

/// What the callback does with a message: a line `close` closes the connection.
fn act(conn: &Connection<Fragile>, line: &str) {
    if line == "close" {
        conn.close();
    }
}

/// What one connection's life looked like to its driver.
#[derive(Debug)]
struct Life {
    delivered: Vec<String>,
    reason: CloseReason,
    /// `opened PEER` and `closed PEER`, in order.
    events: Vec<String>,
    /// The peer's own address, as its socket says.
    peer: String,
}

/// Records the connection events of `options`.
fn recording(options: ConnOptions) -> (ConnOptions, Arc<Mutex<Vec<String>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let options = options.on_event(move |e: &ConnEvent<'_>| {
        let line = match e {
            ConnEvent::Opened { peer, .. } => format!("opened {peer}"),
            ConnEvent::Closed { peer, .. } => format!("closed {peer}"),
            other => format!("{other:?}"),
        };
        log.lock().unwrap().push(line);
    });
    (options, events)
}

/// Reports every message and the end on a channel.
struct Report {
    tx: Sender<Result<String, CloseReason>>,
}

impl Handler<Fragile> for Report {
    fn on_message(&mut self, conn: &Connection<Fragile>, line: String) {
        let _ = self.tx.send(Ok(line.clone()));
        act(conn, &line);
    }

    fn on_close(&mut self, _: &Connection<Fragile>, reason: &CloseReason) {
        let _ = self.tx.send(Err(reason.clone()));
    }
}

/// What `Report`s send.
type Reports = mpsc::Receiver<Result<String, CloseReason>>;

/// A factory of `Report` handlers for a server, and where they report.
fn reporting() -> (
    impl Fn(&Connection<Fragile>) -> Report + Send + Sync + 'static,
    Reports,
) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let factory = move |_: &Connection<Fragile>| Report {
        tx: tx.lock().unwrap().clone(),
    };
    (factory, rx)
}

/// Collects a `Report`'s messages up to its end.
fn collect(rx: &Reports) -> (Vec<String>, CloseReason) {
    let mut delivered = Vec::new();
    loop {
        match rx.recv_timeout(WAIT).expect("the connection should end") {
            Ok(line) => delivered.push(line),
            Err(reason) => return (delivered, reason),
        }
    }
}

impl Life {
    /// The life that `delivered` and `reason` tell, with the events recorded so far, of a
    /// connection to `peer`.
    fn of(
        (delivered, reason): (Vec<String>, CloseReason),
        events: &Mutex<Vec<String>>,
        peer: impl ToString,
    ) -> Life {
        Life {
            delivered,
            reason,
            events: events.lock().unwrap().clone(),
            peer: peer.to_string(),
        }
    }
}

trait Driver {
    /// Runs one connection with `options`, its peer sending `bytes` and then nothing;
    /// `timeout` is a deadline the test waits out (the embedded driver moves its clock past
    /// it instead).
    fn run(options: ConnOptions, bytes: &[u8], timeout: Option<Duration>) -> Life;
}

struct ReaderThread;

impl Driver for ReaderThread {
    fn run(options: ConnOptions, bytes: &[u8], _: Option<Duration>) -> Life {
        let (options, events) = recording(options);
        let (factory, rx) = reporting();
        let server = TcpServer::builder()
            .addr("127.0.0.1:0")
            .options(options)
            .start(Fragile::default(), factory)
            .unwrap();
        let mut peer = TcpStream::connect(server.local_addr().as_inet().unwrap()).unwrap();
        peer.write_all(bytes).unwrap();
        let ended = collect(&rx);
        server.stop(WAIT);
        Life::of(ended, &events, peer.local_addr().unwrap())
    }
}

struct Embedded;

impl Driver for Embedded {
    fn run(options: ConnOptions, bytes: &[u8], timeout: Option<Duration>) -> Life {
        let (options, events) = recording(options);
        let (tx, rx) = mpsc::channel();
        let e = EmbeddedConnection::new(Fragile::default(), |_: &_| Report { tx }, options);
        e.write_inbound(bytes);
        if let Some(t) = timeout {
            e.advance(t + Duration::from_millis(50));
        }
        // An embedded connection's peer is the loopback address its memory socket names.
        Life::of(collect(&rx), &events, e.connection().peer_addr())
    }
}

struct Blocking;

impl Driver for Blocking {
    fn run(options: ConnOptions, bytes: &[u8], _: Option<Duration>) -> Life {
        let (options, events) = recording(options);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let bytes = bytes.to_vec();
        let peer = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&bytes).unwrap();
            // Silent, until the client goes.
            let _ = s.read_to_end(&mut Vec::new());
        });
        let builder = ClientBuilder::default().options(options);
        let client = BlockingClient::connect_with(builder, addr, Fragile::default()).unwrap();
        let mut delivered = Vec::new();
        let reason = loop {
            match client.recv() {
                Ok(line) => {
                    act(client.connection(), &line);
                    delivered.push(line);
                }
                Err(e) => break e.reason,
            }
        };
        drop(client);
        peer.join().unwrap();
        // A client's peer is its server.
        Life::of((delivered, reason), &events, addr)
    }
}

struct Udp;

impl Driver for Udp {
    fn run(options: ConnOptions, bytes: &[u8], _: Option<Duration>) -> Life {
        let (options, events) = recording(options);
        let (factory, rx) = reporting();
        let server = UdpServer::builder()
            .addr("127.0.0.1:0")
            .options(options)
            .start(Fragile::default(), factory)
            .unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(bytes, server.local_addr()).unwrap();
        let ended = collect(&rx);
        server.stop(WAIT);
        Life::of(ended, &events, peer.local_addr().unwrap())
    }
}

// ---- one body each ----

/// A close stops delivery, even of messages already read: `never` came with `close`, in the
/// same read (the same datagram), and is not delivered. The events name the peer, opened
/// before closed.
fn a_close_stops_delivery_of_what_is_buffered<D: Driver>() {
    let life = D::run(ConnOptions::new(), b"a\nclose\nnever\n", None);
    assert_eq!(life.delivered, ["a", "close"], "{life:?}");
    assert!(
        matches!(life.reason, CloseReason::Closed { .. }),
        "{life:?}"
    );
    assert_eq!(
        life.events,
        [
            format!("opened {}", life.peer),
            format!("closed {}", life.peer)
        ]
    );
}

/// A codec that panics ends its connection with the panic, after what came before it.
fn a_codec_panic_ends_the_connection_with_it<D: Driver>() {
    let life = D::run(ConnOptions::new(), b"a\nboom\nnever\n", None);
    assert_eq!(life.delivered, ["a"], "{life:?}");
    match &life.reason {
        CloseReason::Panic { message, .. } => assert!(message.contains("boom"), "{life:?}"),
        other => panic!("closed with {other:?}"),
    }
}

/// The frame clock runs from a frame's first byte: a message cut short and never finished is
/// ended by the frame timeout, after the whole message before it was delivered (its clock
/// ended then; a stream driver only).
fn a_frame_cut_short_ends_at_the_frame_timeout<D: Driver>() {
    let limit = Duration::from_millis(300);
    let options = ConnOptions::new().frame_timeout(limit);
    let life = D::run(options, b"a\npart", Some(limit));
    assert_eq!(life.delivered, ["a"], "{life:?}");
    assert!(
        matches!(
            life.reason,
            CloseReason::IdleTimeout {
                kind: IdleKind::Frame,
                ..
            }
        ),
        "{life:?}"
    );
}

macro_rules! drivers {
    ($module:ident, $driver:ident: $($body:ident),* $(,)?) => {
        mod $module {
            $(#[test] fn $body() { super::$body::<super::$driver>() })*
        }
    };
}

drivers!(reader_thread, ReaderThread: a_close_stops_delivery_of_what_is_buffered, a_codec_panic_ends_the_connection_with_it, a_frame_cut_short_ends_at_the_frame_timeout);
drivers!(embedded, Embedded: a_close_stops_delivery_of_what_is_buffered, a_codec_panic_ends_the_connection_with_it, a_frame_cut_short_ends_at_the_frame_timeout);
drivers!(blocking_client, Blocking: a_close_stops_delivery_of_what_is_buffered, a_codec_panic_ends_the_connection_with_it, a_frame_cut_short_ends_at_the_frame_timeout);
// A datagram is whole when it comes: no frame spans two, so the frame clock does not apply.
drivers!(udp_peer, Udp: a_close_stops_delivery_of_what_is_buffered, a_codec_panic_ends_the_connection_with_it);
