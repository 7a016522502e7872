//! Ending connections: graceful `shutdown` (invariant 3), `close` and forced closes that count
//! what they drop (invariant 2), the peer closing first (invariant 4), and `stop` on a server
//! with live connections (invariant 6).

mod common;

use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Instant;

use common::*;
use threadnet::{
    codec::LengthDelimited, CloseReason, ConnOptions, Connection, Handler, ServerHandle, TcpServer,
};

type Conn = Connection<LengthDelimited>;

/// Hands each connection to the test and reports its close with the time it happened.
struct Probe {
    conns: Sender<Conn>,
    closes: Sender<(u64, Reason, Instant)>,
}

impl Handler<LengthDelimited> for Probe {
    fn on_connect(&mut self, conn: &Conn) {
        let _ = self.conns.send(conn.clone());
    }
    fn on_message(&mut self, _: &Conn, _: Vec<u8>) {}
    fn on_close(&mut self, conn: &Conn, reason: &CloseReason) {
        let _ = self
            .closes
            .send((conn.id(), Reason::from(reason), Instant::now()));
    }
}

struct Setup {
    server: ServerHandle<LengthDelimited>,
    conns: Receiver<Conn>,
    closes: Receiver<(u64, Reason, Instant)>,
}

fn start(options: ConnOptions) -> Setup {
    let (ctx, conns) = mpsc::channel();
    let (cltx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(LengthDelimited::new(), move |_: &Conn| Probe {
            conns: ctx.clone(),
            closes: cltx.clone(),
        })
        .unwrap();
    Setup {
        server,
        conns,
        closes,
    }
}

const BIG: usize = 64 * 1024;

/// Checks that the frames a peer received are messages 0..n in order, and returns n.
fn in_order(frames: &[Vec<u8>]) -> u64 {
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(tag_of(f), (0, i as u32), "frame {i} out of order");
    }
    frames.len() as u64
}

fn ten_thousand_then_eof(write_through: bool) {
    const N: u32 = 10_000;
    // A small queue, so that sends block until the writer drains.
    let options = ConnOptions::new()
        .send_queue_capacity(32)
        .write_through(write_through);
    let (cltx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(LengthDelimited::new(), move |_: &Conn| {
            struct Greeter(Sender<Reason>);
            impl Handler<LengthDelimited> for Greeter {
                fn on_connect(&mut self, conn: &Conn) {
                    for i in 0..N {
                        conn.send(tagged(0, i, 32)).unwrap();
                    }
                    conn.shutdown(WAIT);
                }
                fn on_message(&mut self, _: &Conn, _: Vec<u8>) {}
                fn on_close(&mut self, _: &Conn, reason: &CloseReason) {
                    self.0.send(Reason::from(reason)).unwrap();
                }
            }
            Greeter(cltx.clone())
        })
        .unwrap();

    let p = peer(server.local_addr());
    let (frames, end) = drain_frames(&p);
    end.expect("clean EOF after the last frame");
    assert_eq!(frames.len(), N as usize);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f, &tagged(0, i as u32, 32));
    }
    drop(p);
    assert_eq!(recv(&closes), Reason::Shutdown);
    server.stop(WAIT);
}

#[test]
fn shutdown_delivers_ten_thousand_queued_frames_then_eof() {
    ten_thousand_then_eof(false);
}

#[test]
fn shutdown_delivers_ten_thousand_write_through_frames_then_eof() {
    ten_thousand_then_eof(true);
}

#[test]
fn close_drops_the_queue_and_counts_every_unwritten_message() {
    let s = start(ConnOptions::new());
    let p = peer(s.server.local_addr()); // never reads until the end
    let conn = recv(&s.conns);
    let accepted = fill(&conn, BIG, || {}) as u64;
    assert!(conn.queued_messages() > 0);

    conn.close();
    let (id, reason, _) = recv(&s.closes);
    assert_eq!(id, conn.id());
    let dropped = match reason {
        Reason::Closed { dropped } => dropped,
        other => panic!("expected Closed, got {other:?}"),
    };
    assert!(dropped > 0, "the queue was full, yet nothing was dropped");
    assert!(
        dropped <= accepted,
        "dropped {dropped} > accepted {accepted}"
    );
    assert_eq!(conn.queued_messages(), 0);
    assert_eq!(conn.queued_bytes(), 0);

    // Invariant 2: every accepted message was either received whole, or counted as dropped.
    let (frames, _end) = drain_frames(&p);
    let received = in_order(&frames);
    assert_eq!(
        received + dropped,
        accepted,
        "received {received} + dropped {dropped} != accepted {accepted}"
    );
    s.server.stop(WAIT);
}

#[test]
fn shutdown_forces_the_close_at_the_deadline_when_the_peer_never_closes() {
    let s = start(ConnOptions::new());
    let p = peer(s.server.local_addr());
    let conn = recv(&s.conns);
    for i in 0..10 {
        conn.send(tagged(0, i, 100)).unwrap();
    }
    // The peer reads everything and the FIN, but keeps its socket open.
    let reader = thread::spawn(move || {
        let (frames, end) = drain_frames(&p);
        (frames.len(), end.is_ok(), p)
    });

    let t0 = Instant::now();
    conn.shutdown(ms(300));
    let (n, clean, _p) = reader.join().unwrap();
    assert_eq!(n, 10);
    assert!(clean, "the peer saw no clean EOF");

    let (_, reason, at) = recv(&s.closes);
    let waited = at - t0;
    assert_eq!(reason, Reason::ShutdownTimeout { dropped: 0 });
    assert!(
        waited >= ms(300),
        "forced close after {waited:?}, before the deadline"
    );
    assert!(waited < ms(2300), "forced close only after {waited:?}");
    s.server.stop(WAIT);
}

#[test]
fn forced_close_of_a_peer_that_does_not_read_counts_what_it_drops() {
    let s = start(ConnOptions::new());
    let p = peer(s.server.local_addr());
    let conn = recv(&s.conns);
    let accepted = fill(&conn, BIG, || {}) as u64;

    let t0 = Instant::now();
    conn.shutdown(ms(300));
    // Shutting down: no more sends.
    assert!(conn.send(vec![1]).unwrap_err().is_closed());
    let (_, reason, at) = recv(&s.closes);
    assert!(at - t0 >= ms(300));
    let dropped = match reason {
        Reason::ShutdownTimeout { dropped } => dropped,
        other => panic!("expected ShutdownTimeout, got {other:?}"),
    };
    assert!(dropped > 0 && dropped <= accepted);
    let (frames, _) = drain_frames(&p);
    assert_eq!(in_order(&frames) + dropped, accepted);
    s.server.stop(WAIT);
}

#[test]
fn queued_replies_still_arrive_when_the_peer_closes_first() {
    // Invariant 4 (knet loses this): the peer sends a request and shuts its write side; the
    // server queues far more than the socket buffers hold, so most of it is still queued when
    // the reader sees EOF. The peer must still read every reply, then EOF.
    const N: u32 = 2000;
    const LEN: usize = 8 * 1024;
    let options = ConnOptions::new()
        .write_through(false)
        .send_queue_capacity(4096)
        .send_queue_bytes(64 * 1024 * 1024)
        .shutdown_timeout(WAIT);
    let (qtx, queued_at_eof) = mpsc::channel();
    let (cltx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(LengthDelimited::new(), move |_: &Conn| {
            struct Replier(Sender<usize>, Sender<Reason>);
            impl Handler<LengthDelimited> for Replier {
                fn on_message(&mut self, conn: &Conn, _: Vec<u8>) {
                    for i in 0..N {
                        conn.send(tagged(0, i, LEN)).unwrap();
                    }
                    self.0.send(conn.queued_messages()).unwrap();
                }
                fn on_close(&mut self, _: &Conn, reason: &CloseReason) {
                    self.1.send(Reason::from(reason)).unwrap();
                }
            }
            Replier(qtx.clone(), cltx.clone())
        })
        .unwrap();

    let mut p = peer(server.local_addr());
    write_frame(&mut p, b"request").unwrap();
    p.shutdown(Shutdown::Write).unwrap();
    // Do not read until the handler has queued everything.
    let queued = recv(&queued_at_eof);
    assert!(
        queued > 0,
        "nothing was queued at EOF: the test proves nothing"
    );

    let (frames, end) = drain_frames(&p);
    end.expect("clean EOF after the replies");
    assert_eq!(frames.len(), N as usize);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f, &tagged(0, i as u32, LEN));
    }
    assert_eq!(recv(&closes), Reason::PeerClosed);
    server.stop(WAIT);
}

#[test]
fn replies_sent_from_another_thread_before_eof_all_arrive() {
    // The same with a reply thread racing the EOF: whatever a send accepted arrives; what
    // came after the EOF is refused (Closed), never silently lost.
    const N: u32 = 5000;
    let options = ConnOptions::new().send_queue_capacity(64);
    let (acc_tx, accepted_rx) = mpsc::channel();
    let (cltx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(LengthDelimited::new(), move |_: &Conn| {
            struct Spawner(Sender<u32>, Sender<Reason>);
            impl Handler<LengthDelimited> for Spawner {
                fn on_message(&mut self, conn: &Conn, _: Vec<u8>) {
                    let conn = conn.clone();
                    let tx = self.0.clone();
                    thread::spawn(move || {
                        let mut accepted = 0;
                        for i in 0..N {
                            match conn.send(tagged(0, i, 512)) {
                                Ok(()) => accepted += 1,
                                Err(e) => {
                                    assert!(e.is_closed(), "{e:?}");
                                    break;
                                }
                            }
                        }
                        tx.send(accepted).unwrap();
                    });
                }
                fn on_close(&mut self, _: &Conn, reason: &CloseReason) {
                    self.1.send(Reason::from(reason)).unwrap();
                }
            }
            Spawner(acc_tx.clone(), cltx.clone())
        })
        .unwrap();

    let mut p = peer(server.local_addr());
    write_frame(&mut p, b"request").unwrap();
    p.shutdown(Shutdown::Write).unwrap();
    let (frames, end) = drain_frames(&p);
    end.expect("clean EOF after the replies");
    let accepted = recv(&accepted_rx);
    assert_eq!(in_order(&frames), accepted as u64);
    assert_eq!(recv(&closes), Reason::PeerClosed);
    server.stop(WAIT);
}

/// A peer that reads to EOF, then closes; returns the frames it got.
fn polite_peer(s: TcpStream) -> thread::JoinHandle<(usize, bool)> {
    thread::spawn(move || {
        let (frames, end) = drain_frames(&s);
        (frames.len(), end.is_ok())
    })
}

#[test]
fn stop_shuts_live_connections_down_with_server_stopped_and_joins() {
    let (cltx, closes) = mpsc::channel();
    let (gtx, greeted) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), move |_: &Conn| {
            struct Greeter(Sender<Reason>, Sender<()>);
            impl Handler<LengthDelimited> for Greeter {
                fn on_connect(&mut self, conn: &Conn) {
                    for i in 0..100 {
                        conn.send(tagged(0, i, 64)).unwrap();
                    }
                    self.1.send(()).unwrap();
                }
                fn on_message(&mut self, _: &Conn, _: Vec<u8>) {}
                fn on_close(&mut self, _: &Conn, reason: &CloseReason) {
                    self.0.send(Reason::from(reason)).unwrap();
                }
            }
            Greeter(cltx.clone(), gtx.clone())
        })
        .unwrap();
    let addr = server.local_addr().as_inet().unwrap();
    let peers: Vec<_> = (0..3).map(|_| polite_peer(peer(addr))).collect();
    // Stop once every greeting is queued (a stop refuses later sends).
    for _ in 0..3 {
        recv(&greeted);
    }
    assert_eq!(server.connections().len(), 3);

    let t0 = Instant::now();
    server.stop(WAIT);
    assert!(t0.elapsed() < ms(2000), "stop took {:?}", t0.elapsed());
    assert!(server.is_stopped());
    assert_eq!(server.connections().len(), 0);
    // on_close ran for every connection before stop returned.
    for _ in 0..3 {
        assert_eq!(
            closes.try_recv().expect("on_close before stop returned"),
            Reason::ServerStopped { dropped: 0 }
        );
    }
    for p in peers {
        assert_eq!(p.join().unwrap(), (100, true), "a peer lost its greeting");
    }
    // No more accepts: the port is released.
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after stop"
    );
    // A second stop returns at once.
    server.stop(WAIT);
}

#[test]
fn stop_forces_peers_that_never_close_at_the_deadline() {
    let s = start(ConnOptions::new());
    let p = peer(s.server.local_addr());
    let _conn = recv(&s.conns);
    let t0 = Instant::now();
    s.server.stop(ms(300));
    let took = t0.elapsed();
    assert!(
        took >= ms(300),
        "stop returned after {took:?}, before its deadline"
    );
    assert!(took < ms(2300), "stop took {took:?}");
    assert_eq!(s.server.connections().len(), 0);
    let (_, reason, _) = s.closes.try_recv().expect("on_close before stop returned");
    assert_eq!(reason, Reason::ServerStopped { dropped: 0 });
    // The peer saw the FIN, then the close.
    assert!(ends(&p));
}

#[test]
fn dropping_the_last_server_handle_stops_the_server() {
    let s = start(ConnOptions::new().shutdown_timeout(ms(200)));
    let addr = s.server.local_addr();
    let p = polite_peer(peer(addr));
    let _conn = recv(&s.conns);
    let clone = s.server.clone();
    drop(s.server);
    assert!(
        !clone.is_stopped(),
        "dropping a clone must not stop the server"
    );
    drop(clone);
    let (_, reason, _) = s
        .closes
        .try_recv()
        .expect("on_close before the drop returned");
    assert_eq!(reason, Reason::ServerStopped { dropped: 0 });
    assert_eq!(p.join().unwrap(), (0, true));
}

#[test]
fn stop_deadline_also_bounds_connections_already_shutting_down() {
    // ServerHandle::stop documents "forced close at the deadline" for every connection.
    let s = start(ConnOptions::new());
    let _p = peer(s.server.local_addr()); // never closes
    let conn = recv(&s.conns);
    conn.shutdown(ms(3000));
    let t0 = Instant::now();
    s.server.stop(ms(300));
    let took = t0.elapsed();
    assert!(took < ms(1500), "stop(300 ms) took {took:?}");
}

#[test]
fn stop_from_inside_a_handler_returns() {
    // A handler may stop its own server: stop must not wait for the thread it runs on.
    use std::sync::{Arc, Mutex};
    let slot: Arc<Mutex<Option<ServerHandle<LengthDelimited>>>> = Arc::new(Mutex::new(None));
    let (dtx, done) = mpsc::channel();
    let (cltx, closes) = mpsc::channel();
    let factory_slot = Arc::clone(&slot);
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), move |_: &Conn| {
            struct Stopper(
                Arc<Mutex<Option<ServerHandle<LengthDelimited>>>>,
                Sender<()>,
                Sender<Reason>,
            );
            impl Handler<LengthDelimited> for Stopper {
                fn on_message(&mut self, _: &Conn, _: Vec<u8>) {
                    let handle = self.0.lock().unwrap().clone().unwrap();
                    handle.stop(ms(1000));
                    self.1.send(()).unwrap();
                }
                fn on_close(&mut self, _: &Conn, reason: &CloseReason) {
                    self.2.send(Reason::from(reason)).unwrap();
                }
            }
            Stopper(Arc::clone(&factory_slot), dtx.clone(), cltx.clone())
        })
        .unwrap();
    *slot.lock().unwrap() = Some(server.clone());
    let other = polite_peer(peer(server.local_addr()));
    let mut p = peer(server.local_addr());
    write_frame(&mut p, b"stop").unwrap();
    recv(&done);
    assert!(server.is_stopped());
    // The other connection was shut down and joined; the stopping one ends once its peer
    // closes.
    assert_eq!(other.join().unwrap(), (0, true));
    assert_eq!(read_frame(&mut p).unwrap(), None);
    drop(p);
    assert_eq!(recv(&closes), Reason::ServerStopped { dropped: 0 });
    assert_eq!(recv(&closes), Reason::ServerStopped { dropped: 0 });
    slot.lock().unwrap().take();
}

#[test]
fn a_peer_that_half_closes_and_stops_reading_is_cut_off_at_the_shutdown_timeout() {
    // Invariant 4 has a deadline: after the peer's EOF the queue is flushed, but a peer that
    // also stopped reading is closed by force after shutdown_timeout, and what could not be
    // written is counted.
    let options = ConnOptions::new()
        .write_through(false)
        .shutdown_timeout(ms(300));
    let (acc_tx, accepted_rx) = mpsc::channel();
    let (cltx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(LengthDelimited::new(), move |_: &Conn| {
            struct Flood(Sender<(u64, Instant)>, Sender<(Reason, Instant)>);
            impl Handler<LengthDelimited> for Flood {
                fn on_message(&mut self, conn: &Conn, _: Vec<u8>) {
                    let n = fill(conn, BIG, || {});
                    self.0.send((n as u64, Instant::now())).unwrap();
                }
                fn on_close(&mut self, _: &Conn, reason: &CloseReason) {
                    self.1.send((Reason::from(reason), Instant::now())).unwrap();
                }
            }
            Flood(acc_tx.clone(), cltx.clone())
        })
        .unwrap();

    let mut p = peer(server.local_addr());
    write_frame(&mut p, b"flood me").unwrap();
    p.shutdown(Shutdown::Write).unwrap();
    let (accepted, flooded_at) = recv(&accepted_rx);
    let (reason, closed_at) = recv(&closes);
    // The EOF is seen once on_message returns; the deadline runs from there.
    assert!(
        closed_at - flooded_at >= ms(300),
        "{:?}",
        closed_at - flooded_at
    );
    let dropped = match reason {
        Reason::ShutdownTimeout { dropped } => dropped,
        other => panic!("expected ShutdownTimeout, got {other:?}"),
    };
    assert!(dropped > 0 && dropped <= accepted);
    let (frames, _) = drain_frames(&p);
    assert_eq!(in_order(&frames) + dropped, accepted);
    server.stop(WAIT);
}
