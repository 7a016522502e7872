//! Two overlapping `ServerHandle::stop` calls, the second made on one of a connection's own
//! threads (its handler, `on_close`, a watermark observer, a connection timer, `on_idle`)
//! while the first is joining that very thread: both must return. Every wait here is bounded,
//! so a deadlock fails the test instead of hanging it.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use threadnet::{
    codec::LengthDelimited, idle::IdleAction, CloseReason, ConnOptions, Connection, Handler,
    ServerHandle, TcpServer, TimingWheel,
};

type Conn = Connection<LengthDelimited>;
type Slot = Arc<Mutex<Option<ServerHandle<LengthDelimited>>>>;

/// The callback's side of a race: it says it runs, waits for the go, stops the server (the
/// second stop), and says it returned. Only its first call does anything.
#[derive(Clone)]
struct Loser {
    slot: Slot,
    running: Sender<()>,
    go: Arc<Mutex<Receiver<()>>>,
    returned: Sender<()>,
    done: Arc<AtomicBool>,
}

impl Loser {
    fn run(&self) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.running.send(());
        let _ = self.go.lock().unwrap().recv();
        let server = self.slot.lock().unwrap().clone();
        if let Some(server) = server {
            server.stop(ms(300));
        }
        let _ = self.returned.send(());
    }
}

/// The test's side of a race.
struct Race {
    loser: Loser,
    running: Receiver<()>,
    go: Sender<()>,
    returned: Receiver<()>,
}

impl Race {
    fn new() -> Race {
        let (running_tx, running) = mpsc::channel();
        let (go, go_rx) = mpsc::channel();
        let (returned_tx, returned) = mpsc::channel();
        Race {
            loser: Loser {
                slot: Slot::default(),
                running: running_tx,
                go: Arc::new(Mutex::new(go_rx)),
                returned: returned_tx,
                done: Arc::default(),
            },
            running,
            go,
            returned,
        }
    }

    fn arm(&self, server: &ServerHandle<LengthDelimited>) {
        *self.loser.slot.lock().unwrap() = Some(server.clone());
    }

    /// The first stop, on a thread of its own; the receiver hears when it returns.
    fn first_stop(server: &ServerHandle<LengthDelimited>, deadline: Duration) -> Receiver<()> {
        let server = server.clone();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            server.stop(deadline);
            let _ = tx.send(());
        });
        rx
    }

    /// Both stops returned.
    #[track_caller]
    fn both_return(&self, first: &Receiver<()>, kind: &str) {
        self.returned.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!("stop() from {kind} hung while another stop() was joining its thread")
        });
        first
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("the first stop() never returned ({kind})"));
    }
}

/// A callback that blocks until the first stop is under way, then stops the server too: the
/// first stop starts while the callback runs, and shuts its connection down.
fn race_a_blocking_callback(
    race: &Race,
    server: &ServerHandle<LengthDelimited>,
    p: &std::net::TcpStream,
    kind: &str,
) {
    recv(&race.running);
    let conn = server.connections().get(1).expect("the connection");
    let first = Race::first_stop(server, ms(300));
    assert!(
        wait_until(WAIT, || conn.is_closed()),
        "the first stop did not begin"
    );
    race.go.send(()).unwrap();
    race.both_return(&first, kind);
    assert!(server.is_stopped());
    assert!(ends(p), "the peer was not closed");
}

#[test]
fn stop_from_a_handler_while_another_stop_runs() {
    let race = Race::new();
    let loser = race.loser.clone();
    let server = TcpServer::builder()
        .start(LengthDelimited::new(), move |_: &Conn| {
            let loser = loser.clone();
            move |_: &Conn, _: Vec<u8>| loser.run()
        })
        .unwrap();
    race.arm(&server);
    let mut p = peer(server.local_addr());
    write_frame(&mut p, b"go").unwrap();
    race_a_blocking_callback(&race, &server, &p, "a handler");
}

#[test]
fn stop_from_a_connection_timer_while_another_stop_runs() {
    // A private wheel: this test blocks its thread for a while.
    let wheel = TimingWheel::new(ms(1));
    let race = Race::new();
    let loser = race.loser.clone();
    let server = TcpServer::builder()
        .options(ConnOptions::new().timing_wheel(wheel))
        .start(LengthDelimited::new(), move |conn: &Conn| {
            let loser = loser.clone();
            conn.run_after(Duration::ZERO, move |_| loser.run());
            |_: &Conn, _: Vec<u8>| {}
        })
        .unwrap();
    race.arm(&server);
    let p = peer(server.local_addr());
    race_a_blocking_callback(&race, &server, &p, "a connection timer");
}

#[test]
fn stop_from_on_idle_while_another_stop_runs() {
    let wheel = TimingWheel::new(ms(1));
    let race = Race::new();
    let loser = race.loser.clone();
    let options = ConnOptions::new()
        .timing_wheel(wheel)
        .read_idle(ms(50))
        .on_idle(move |_| {
            loser.run();
            IdleAction::Keep
        });
    let server = TcpServer::builder()
        .options(options)
        .start(LengthDelimited::new(), |_: &Conn| |_: &Conn, _: Vec<u8>| {})
        .unwrap();
    race.arm(&server);
    let p = peer(server.local_addr());
    race_a_blocking_callback(&race, &server, &p, "on_idle");
}

#[test]
fn stop_from_on_close_while_another_stop_runs() {
    // The first stop shuts the connection down; its on_close stops the server again while the
    // first stop waits for (then joins) that connection's reader.
    struct Stopper(Loser);
    impl Handler<LengthDelimited> for Stopper {
        fn on_message(&mut self, _: &Conn, _: Vec<u8>) {}
        fn on_close(&mut self, _: &Conn, _: &CloseReason) {
            self.0.run();
        }
    }
    let race = Race::new();
    let loser = race.loser.clone();
    let server = TcpServer::builder()
        .start(LengthDelimited::new(), move |_: &Conn| {
            Stopper(loser.clone())
        })
        .unwrap();
    race.arm(&server);
    let p = peer(server.local_addr());
    assert!(wait_until(WAIT, || server.connections().len() == 1));
    race.go.send(()).unwrap(); // on_close need not wait: only the first stop can start it
    let first = Race::first_stop(&server, ms(300));
    assert!(ends(&p), "the first stop did not shut the connection down");
    drop(p);
    recv(&race.running);
    race.both_return(&first, "on_close");
    assert!(server.is_stopped());
}

#[test]
fn stop_from_a_watermark_observer_while_another_stop_runs() {
    // A message larger than the socket buffers keeps the queue above its high watermark while
    // the peer does not read. The first stop begins; then the peer reads, the queue drains, and
    // the drain event (on the writer thread) stops the server again while the first stop waits
    // for the connection whose reader joins that writer.
    let race = Race::new();
    let loser = race.loser.clone();
    let options = ConnOptions::new()
        .max_frame_length(128 << 20)
        .high_watermark(1000)
        .low_watermark(500)
        .on_watermark(move |e| {
            if !e.full {
                loser.run();
            }
        });
    let server = TcpServer::builder()
        .options(options)
        .start(LengthDelimited::new(), |_: &Conn| |_: &Conn, _: Vec<u8>| {})
        .unwrap();
    race.arm(&server);
    let p = peer(server.local_addr());
    assert!(wait_until(WAIT, || server.connections().len() == 1));
    let conn = server.connections().get(1).expect("the connection");
    // Two messages: whatever the socket takes of the first at once, the second waits in the
    // queue, above the high watermark. Each is larger than loopback can ever buffer (up to
    // 4 MiB to send and 32 MiB to receive here, `tcp_wmem` and `tcp_rmem`): on a busy machine
    // the writer may otherwise hand all of both to the kernel before the first stop.
    const BIG: usize = 64 << 20;
    conn.send(vec![7u8; BIG]).unwrap();
    conn.send(vec![7u8; BIG]).unwrap();
    race.go.send(()).unwrap();
    let first = Race::first_stop(&server, Duration::from_secs(4));
    assert!(
        wait_until(WAIT, || conn.is_closed()),
        "the first stop did not begin"
    );
    assert!(
        conn.queued_bytes() > 0,
        "the queue drained before the first stop"
    );
    // Read everything: the drain event fires, then the FIN comes.
    let mut got = 0;
    let mut buf = vec![0u8; 256 * 1024];
    let mut r = &p;
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert_eq!(
        got,
        2 * (BIG + 4),
        "the queued messages were not all written"
    );
    drop(p);
    recv(&race.running);
    race.both_return(&first, "a watermark observer");
    assert!(server.is_stopped());
}
