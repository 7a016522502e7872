//! The lifecycle invariants of DESIGN.md, each one test body run by two drivers: a real
//! connection (a `TcpServer` and a `TcpStream` peer on loopback) and an `EmbeddedConnection`
//! (in memory, on the test's thread). Both must give the same callbacks, bytes and reasons:
//! callback order and `on_close` once (invariant 1), a bounded queue whose `try_send` hands
//! the message back (2, 5), shutdown then FIN while the reader reads on (3), the peer's EOF
//! still gets what is queued (4), close drops the queue and counts it (2), a panic closes only
//! its connection (7).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::Duration;

use threadnet::testing::EmbeddedConnection;
use threadnet::{
    codec::Lines, CloseReason, ConnOptions, Connection, Handler, SendError, ServerHandle,
    TcpServer, TrySendError,
};

const WAIT: Duration = Duration::from_secs(10);
/// Larger than loopback's socket buffers: the real writer blocks on it while the peer does
/// not read, so the queue behind it stays as the handler left it.
const BIG: usize = 32 << 20;

/// Reports every callback as a line on a channel, and acts on some lines:
/// `bye` shuts down, `boom` panics, `fill` queues a big message then `m1`.. until the queue
/// is full, `drop` queues four messages then closes; any other line is echoed as `re LINE`.
struct Recorder {
    events: Sender<String>,
}

impl Recorder {
    fn note(&self, event: String) {
        let _ = self.events.send(event);
    }
}

impl Handler<Lines> for Recorder {
    fn on_connect(&mut self, _: &Connection<Lines>) {
        self.note("connect".into());
    }

    fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
        self.note(format!("message {line}"));
        match line.as_str() {
            "bye" => conn.shutdown(WAIT),
            "boom" => panic!("boom"),
            "fill" | "drop" => {
                conn.try_send_bytes(vec![b'.'; BIG]).unwrap();
                for i in 1..=4 {
                    match conn.try_send(format!("m{i}")) {
                        Ok(()) => self.note(format!("queued m{i}")),
                        Err(TrySendError::Full(back)) => self.note(format!("full, back: {back}")),
                        Err(_) => self.note("other".into()),
                    }
                }
                if line == "drop" {
                    conn.close();
                }
            }
            _ => match conn.send(format!("re {line}")) {
                Ok(()) => {}
                Err(SendError::Closed(back)) => self.note(format!("refused, back: {back}")),
                Err(_) => self.note("other".into()),
            },
        }
    }

    fn on_close(&mut self, _: &Connection<Lines>, reason: &CloseReason) {
        self.note(format!("close {reason:?}"));
    }
}

fn options() -> ConnOptions {
    ConnOptions::new()
        .send_queue_capacity(4)
        .send_queue_bytes(2 * BIG)
}

/// Where connections come from.
trait World {
    type Peer: Peer;
    fn start() -> Self;
    fn connect(&self) -> Self::Peer;
}

/// The far end of one connection, and its handler's reports.
trait Peer {
    fn send(&mut self, bytes: &[u8]);
    /// Our FIN.
    fn fin(&mut self);
    /// The next `n` bytes the connection wrote.
    fn read(&mut self, n: usize) -> Vec<u8>;
    /// The connection's FIN comes next.
    fn at_eof(&mut self) -> bool;
    /// The handler's next report.
    fn event(&mut self) -> String;
    /// The handler is gone: no report will ever come (`on_close` was the last).
    fn ended(&mut self) -> bool;
}

// ---- a real connection ----

struct Real {
    server: ServerHandle<Lines>,
    accepted: Mutex<Receiver<Receiver<String>>>,
}

struct RealPeer {
    stream: TcpStream,
    events: Receiver<String>,
}

impl World for Real {
    type Peer = RealPeer;

    fn start() -> Real {
        let (tx, accepted) = mpsc::channel();
        let tx = Mutex::new(tx);
        let server = TcpServer::builder()
            .addr("127.0.0.1:0")
            .options(options())
            .start(Lines::new(), move |_: &Connection<Lines>| {
                let (events, rx) = mpsc::channel();
                tx.lock().unwrap().send(rx).unwrap();
                Recorder { events }
            })
            .unwrap();
        Real {
            server,
            accepted: Mutex::new(accepted),
        }
    }

    fn connect(&self) -> RealPeer {
        let stream = TcpStream::connect(self.server.local_addr().as_inet().unwrap()).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let events = self.accepted.lock().unwrap().recv_timeout(WAIT).unwrap();
        RealPeer { stream, events }
    }
}

impl Drop for Real {
    fn drop(&mut self) {
        self.server.stop(WAIT);
    }
}

impl Peer for RealPeer {
    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn fin(&mut self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
    }

    fn read(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.stream.read_exact(&mut buf).unwrap();
        buf
    }

    fn at_eof(&mut self) -> bool {
        let mut b = [0u8; 1];
        self.stream.read(&mut b).unwrap() == 0
    }

    fn event(&mut self) -> String {
        self.events.recv_timeout(WAIT).unwrap()
    }

    fn ended(&mut self) -> bool {
        self.events.recv_timeout(WAIT) == Err(RecvTimeoutError::Disconnected)
    }
}

// ---- an embedded connection ----

struct Embedded;

struct EmbeddedPeer {
    conn: EmbeddedConnection<Lines>,
    events: Receiver<String>,
    unread: Vec<u8>,
}

impl World for Embedded {
    type Peer = EmbeddedPeer;

    fn start() -> Embedded {
        Embedded
    }

    fn connect(&self) -> EmbeddedPeer {
        let (events, rx) = mpsc::channel();
        let conn = EmbeddedConnection::new(Lines::new(), |_: &_| Recorder { events }, options());
        EmbeddedPeer {
            conn,
            events: rx,
            unread: Vec::new(),
        }
    }
}

impl Peer for EmbeddedPeer {
    fn send(&mut self, bytes: &[u8]) {
        self.conn.write_inbound(bytes);
    }

    fn fin(&mut self) {
        self.conn.close_inbound();
    }

    fn read(&mut self, n: usize) -> Vec<u8> {
        self.unread.extend(self.conn.read_outbound());
        assert!(
            self.unread.len() >= n,
            "{} bytes written, {n} expected",
            self.unread.len()
        );
        self.unread.drain(..n).collect()
    }

    fn at_eof(&mut self) -> bool {
        self.unread.extend(self.conn.read_outbound());
        self.unread.is_empty() && self.conn.is_outbound_closed()
    }

    fn event(&mut self) -> String {
        self.events
            .try_recv()
            .expect("no report: it should have come already")
    }

    fn ended(&mut self) -> bool {
        self.events.try_recv() == Err(mpsc::TryRecvError::Disconnected)
    }
}

// ---- the invariants, one body each ----

/// Invariant 1, and 4: connect first, messages in order, the peer's EOF flushes the replies,
/// then `on_close` once with `PeerClosed`, and nothing after it.
fn callback_order_and_one_close<W: World>() {
    let world = W::start();
    let mut p = world.connect();
    assert_eq!(p.event(), "connect");
    p.send(b"a\nb");
    p.send(b"\n");
    p.fin();
    assert_eq!(p.read(10), b"re a\nre b\n");
    assert!(p.at_eof());
    assert_eq!(p.event(), "message a");
    assert_eq!(p.event(), "message b");
    assert_eq!(p.event(), "close PeerClosed");
    assert!(p.ended());
}

/// Invariants 2 and 5: the queue holds its bound (4 messages), `try_send` past it hands the
/// message back, and everything accepted is written.
fn try_send_hands_back_past_the_bound<W: World>() {
    let world = W::start();
    let mut p = world.connect();
    assert_eq!(p.event(), "connect");
    p.send(b"fill\n");
    assert_eq!(p.event(), "message fill");
    assert_eq!(p.event(), "queued m1");
    assert_eq!(p.event(), "queued m2");
    assert_eq!(p.event(), "queued m3");
    assert_eq!(p.event(), "full, back: m4");
    assert!(p.read(BIG).iter().all(|b| *b == b'.'));
    assert_eq!(p.read(9), b"m1\nm2\nm3\n");
    p.fin();
    assert!(p.at_eof());
    assert_eq!(p.event(), "close PeerClosed");
    assert!(p.ended());
}

/// Invariant 3: shutdown drains the queue, then the FIN; the reader still delivers (and a
/// send is refused, the message handed back) until the peer's EOF.
fn shutdown_then_fin_then_peer_eof<W: World>() {
    let world = W::start();
    let mut p = world.connect();
    assert_eq!(p.event(), "connect");
    p.send(b"x\nbye\n");
    assert_eq!(p.read(5), b"re x\n");
    assert!(p.at_eof(), "FIN after the drain");
    assert_eq!(p.event(), "message x");
    assert_eq!(p.event(), "message bye");
    p.send(b"late\n");
    assert_eq!(p.event(), "message late");
    assert_eq!(p.event(), "refused, back: re late");
    p.fin();
    assert_eq!(p.event(), "close Shutdown");
    assert!(p.ended());
}

/// Invariant 2: `close` drops what is queued and counts every message of it.
fn close_drops_the_queue_and_counts_it<W: World>() {
    let world = W::start();
    let mut p = world.connect();
    assert_eq!(p.event(), "connect");
    p.send(b"drop\n");
    assert_eq!(p.event(), "message drop");
    assert_eq!(p.event(), "queued m1");
    assert_eq!(p.event(), "queued m2");
    assert_eq!(p.event(), "queued m3");
    assert_eq!(p.event(), "full, back: m4");
    assert_eq!(p.event(), "close Closed { dropped: 4 }");
    assert!(p.ended());
}

/// Invariant 7: a panic in `on_message` closes its connection with the panic's message, and
/// the next connection is served as before.
fn a_panic_closes_only_its_connection<W: World>() {
    let world = W::start();
    let mut a = world.connect();
    let mut b = world.connect();
    assert_eq!(a.event(), "connect");
    assert_eq!(b.event(), "connect");
    a.send(b"boom\nnever\n");
    assert_eq!(a.event(), "message boom");
    let close = a.event();
    assert!(
        close.starts_with("close Panic") && close.contains("boom"),
        "{close}"
    );
    assert!(a.ended(), "no message after the panic");
    b.send(b"hi\n");
    assert_eq!(b.read(6), b"re hi\n");
    assert_eq!(b.event(), "message hi");
    b.fin();
    assert_eq!(b.event(), "close PeerClosed");
}

macro_rules! both {
    ($($body:ident),* $(,)?) => {
        mod real {
            $(#[test] fn $body() { super::$body::<super::Real>() })*
        }
        mod embedded {
            $(#[test] fn $body() { super::$body::<super::Embedded>() })*
        }
    };
}

both!(
    callback_order_and_one_close,
    try_send_hands_back_past_the_bound,
    shutdown_then_fin_then_peer_eof,
    close_drops_the_queue_and_counts_it,
    a_panic_closes_only_its_connection,
);
