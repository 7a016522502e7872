//! Regression tests for the findings of the concurrency review of the core (each reproduced
//! on loopback before its fix): a watermark observer that sends, panics outside the handler
//! callbacks, a peer that reads a trickle, `stop` from a timer callback, a client stopped from
//! its own handler, and wake-ups of the writer counted as messages.

mod common;

use std::io::{self, BufRead, Read, Write};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use threadnet::{
    codec::{Lines, Raw},
    events::WatermarkEvent,
    ClientHandle, CloseReason, Codec, ConnOptions, Connection, Handler, TcpClient, TcpServer,
    TimingWheel,
};

/// Runs `f` on a thread and fails the test if it has not returned within `limit`.
fn returns_within(limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(limit).expect("did not return in time");
}

/// Reads from `s` until `want` bytes have arrived or the stream ends; returns the count.
fn read_bytes(mut s: &std::net::TcpStream, want: usize) -> usize {
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < want {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

#[test]
fn a_watermark_observer_may_send_when_the_queue_drains() {
    // The observer runs with no lock held: sending from it (the "produce again" pattern) must
    // not deadlock the writer that reported the drain.
    let slot: Arc<Mutex<Option<Connection<Raw>>>> = Arc::default();
    let (etx, events) = mpsc::channel::<WatermarkEvent>();
    let observer_slot = Arc::clone(&slot);
    let options = ConnOptions::new()
        .high_watermark(1000)
        .low_watermark(500)
        .on_watermark(move |e| {
            if e.full {
                return;
            }
            let _ = etx.send(e);
            // Only on the first drain: the slot is empty after that.
            if let Some(conn) = observer_slot.lock().unwrap().take() {
                conn.try_send(vec![b'b'; 2000]).unwrap();
            }
        });
    let factory_slot = Arc::clone(&slot);
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(Raw, move |conn: &Connection<Raw>| {
            *factory_slot.lock().unwrap() = Some(conn.clone());
            conn.try_send(vec![b'a'; 2000]).unwrap(); // rises above 1000
            |_: &Connection<Raw>, _: Vec<u8>| {}
        })
        .unwrap();
    let p = peer(server.local_addr());
    assert_eq!(
        read_bytes(&p, 4000),
        4000,
        "the observer's send never went out"
    );
    assert!(!recv(&events).full);
    drop(p);
    returns_within(WAIT, move || server.stop(ms(500)));
}

/// A codec that panics when it reads the byte 0xFF.
#[derive(Clone)]
struct PanicsOnFF;

impl Codec for PanicsOnFF {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Vec<u8>>> {
        let chunk = r.fill_buf()?.to_vec();
        r.consume(chunk.len());
        assert!(!chunk.contains(&0xFF), "codec boom");
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    fn write<W: Write>(&self, msg: &Vec<u8>, w: &mut W) -> io::Result<()> {
        w.write_all(msg)
    }
}

#[test]
fn a_panicking_codec_closes_only_its_connection() {
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(PanicsOnFF, move |_: &Connection<PanicsOnFF>| {
            struct Echo(mpsc::Sender<String>);
            impl Handler<PanicsOnFF> for Echo {
                fn on_message(&mut self, conn: &Connection<PanicsOnFF>, msg: Vec<u8>) {
                    let _ = conn.send(msg);
                }
                fn on_close(&mut self, _: &Connection<PanicsOnFF>, reason: &CloseReason) {
                    let _ = self.0.send(match reason {
                        CloseReason::Panic { message, .. } => format!("panic: {message}"),
                        other => other.to_string(),
                    });
                }
            }
            Echo(tx.clone())
        })
        .unwrap();
    let mut good = peer(server.local_addr());
    let mut bad = peer(server.local_addr());
    bad.write_all(&[0xFF]).unwrap();
    let reason = recv(&closes);
    assert!(reason.contains("panic: codec boom"), "{reason}");
    assert!(ends(&bad));
    good.write_all(b"still here").unwrap();
    let mut back = [0u8; 10];
    good.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still here");
    drop(good);
    returns_within(WAIT, move || server.stop(ms(500)));
}

#[test]
fn deadlines_too_far_for_instant_do_not_panic() {
    // Duration::MAX as the shutdown timeout: the peer's EOF arms it, and so does shutdown().
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(ConnOptions::new().shutdown_timeout(Duration::MAX))
        .start(Raw, move |_: &Connection<Raw>| {
            struct Note(mpsc::Sender<String>);
            impl Handler<Raw> for Note {
                fn on_message(&mut self, _: &Connection<Raw>, _: Vec<u8>) {}
                fn on_close(&mut self, _: &Connection<Raw>, reason: &CloseReason) {
                    let _ = self.0.send(reason.to_string());
                }
            }
            Note(tx.clone())
        })
        .unwrap();
    let eof_peer = peer(server.local_addr());
    drop(eof_peer);
    assert_eq!(recv(&closes), "peer closed");

    let p = peer(server.local_addr());
    let me = p.local_addr().unwrap();
    let mine = || {
        let mut found = None;
        server.connections().for_each(|c| {
            if c.peer_addr() == me {
                found = Some(c.clone());
            }
        });
        found
    };
    assert!(wait_until(WAIT, || mine().is_some()));
    mine().unwrap().shutdown(Duration::MAX);
    assert!(ends(&p), "no FIN after shutdown(Duration::MAX)");
    drop(p);
    assert_eq!(recv(&closes), "shut down");
    returns_within(WAIT, move || server.stop(ms(500)));
}

#[test]
fn a_write_through_send_keeps_its_timeout_against_a_trickling_peer() {
    // The peer takes a little in every write slice, so the socket never stalls outright; the
    // send must still return soon after its timeout, and the writer thread must then finish
    // the message, every byte of it.
    const LEN: usize = 16 << 20;
    let (tx, took) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(ConnOptions::new().send_timeout(ms(200)))
        .start(Raw, move |_: &Connection<Raw>| {
            let tx = tx.clone();
            move |conn: &Connection<Raw>, _: Vec<u8>| {
                let t = Instant::now();
                let sent = conn.send(vec![7u8; LEN]).is_ok();
                let _ = tx.send((t.elapsed(), sent));
            }
        })
        .unwrap();
    let mut p = peer(server.local_addr());
    p.write_all(b"go").unwrap();
    p.set_read_timeout(Some(ms(5))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    let start = Instant::now();
    let (elapsed, sent) = loop {
        if let Ok(result) = took.try_recv() {
            break result;
        }
        assert!(
            start.elapsed() < WAIT,
            "send(16 MiB) with a 200 ms timeout never returned"
        );
        if let Ok(n) = p.read(&mut buf) {
            got += n;
        }
        thread::sleep(ms(10)); // the trickle: about 6 MB/s
    };
    assert!(sent, "the message was refused");
    assert!(elapsed < ms(1500), "send took {elapsed:?}");
    p.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(
        got + read_bytes(&p, LEN - got),
        LEN,
        "the writer did not finish it"
    );
    drop(p);
    returns_within(WAIT, move || server.stop(ms(500)));
}

#[test]
fn stop_from_a_timer_callback_keeps_its_deadline() {
    // stop() on the wheel's own thread: the connections' deadline timers cannot fire while it
    // waits, so stop must enforce its deadline itself. The peer never closes.
    let wheel = TimingWheel::new(ms(5));
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(ConnOptions::new().timing_wheel(wheel.clone()))
        .start(Raw, |_: &Connection<Raw>| {
            |_: &Connection<Raw>, _: Vec<u8>| {}
        })
        .unwrap();
    let _p = peer(server.local_addr());
    assert!(wait_until(WAIT, || server.connections().len() == 1));
    let (tx, took) = mpsc::channel();
    let server = Mutex::new(Some(server));
    wheel.after(ms(1), move || {
        let t = Instant::now();
        server.lock().unwrap().take().unwrap().stop(ms(200));
        let _ = tx.send(t.elapsed());
    });
    let took = took
        .recv_timeout(WAIT)
        .expect("stop(200 ms) on the wheel thread hung");
    assert!(took >= ms(200) && took < ms(2000), "{took:?}");
    wheel.stop();
}

#[test]
fn a_client_can_stop_itself_from_its_handler() {
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(Lines::new(), |_: &Connection<Lines>| {
            |conn: &Connection<Lines>, _: String| {
                let _ = conn.send("hello".to_string());
            }
        })
        .unwrap();
    let handle: Arc<Mutex<Option<ClientHandle<Lines>>>> = Arc::default();
    let (tx, closes) = mpsc::channel();
    let in_handler = Arc::clone(&handle);
    let client = TcpClient::builder()
        .connect(
            server.local_addr(),
            Lines::new(),
            move |_: &Connection<Lines>| {
                struct StopOnHello(
                    Arc<Mutex<Option<ClientHandle<Lines>>>>,
                    mpsc::Sender<String>,
                );
                impl Handler<Lines> for StopOnHello {
                    fn on_message(&mut self, _: &Connection<Lines>, _: String) {
                        let me = self.0.lock().unwrap().take().unwrap();
                        me.stop(ms(500)); // joins every thread but its own
                    }
                    fn on_close(&mut self, _: &Connection<Lines>, reason: &CloseReason) {
                        let _ = self.1.send(reason.to_string());
                    }
                }
                StopOnHello(Arc::clone(&in_handler), tx.clone())
            },
        )
        .unwrap();
    *handle.lock().unwrap() = Some(client.clone());
    client.connection().unwrap().send("hi".to_string()).unwrap();
    assert_eq!(recv(&closes), "server stopped (0 dropped)");
    returns_within(WAIT, move || client.wait());
    returns_within(WAIT, move || server.stop(ms(500)));
}

#[test]
fn a_message_finished_by_the_writer_is_counted_once_when_dropped() {
    // A 16 MiB reply to a peer that never reads: write-through starts it, its deadline passes,
    // the writer thread is woken to finish it; then close() drops it. One message accepted,
    // one dropped: the wake-up is not a message.
    let (tx, events) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(ConnOptions::new().send_timeout(ms(200)))
        .start(Raw, move |_: &Connection<Raw>| {
            struct Once(mpsc::Sender<String>);
            impl Handler<Raw> for Once {
                fn on_message(&mut self, conn: &Connection<Raw>, _: Vec<u8>) {
                    let sent = conn.send(vec![7u8; 16 << 20]).is_ok();
                    let _ = self
                        .0
                        .send(format!("sent {sent}, queued {}", conn.queued_messages()));
                    conn.close();
                }
                fn on_close(&mut self, _: &Connection<Raw>, reason: &CloseReason) {
                    let _ = self.0.send(reason.to_string());
                }
            }
            Once(tx.clone())
        })
        .unwrap();
    let mut p = peer(server.local_addr());
    p.write_all(b"go").unwrap(); // and never read
    assert_eq!(recv(&events), "sent true, queued 0");
    assert_eq!(recv(&events), "closed (1 dropped)");
    drop(p);
    returns_within(WAIT, move || server.stop(ms(500)));
}

// From the second review.

#[test]
fn send_and_close_from_a_thread_local_destructor_do_not_abort() {
    // At thread exit the thread's locals are torn down; threadnet's own must not panic (which
    // aborts the process) when a user's destructor sends or closes after them.
    struct CloseOnDrop(Connection<Lines>);
    impl Drop for CloseOnDrop {
        fn drop(&mut self) {
            let _ = self.0.send("bye".to_string());
            self.0.close();
        }
    }
    thread_local! {
        static GUARD: std::cell::RefCell<Option<CloseOnDrop>> = const { std::cell::RefCell::new(None) };
    }
    let (tx, conns) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(Lines::new(), move |conn: &Connection<Lines>| {
            tx.send(conn.clone()).unwrap();
            |_: &Connection<Lines>, _: String| {}
        })
        .unwrap();
    for guard_first in [true, false] {
        let p = peer(server.local_addr());
        let conn = recv(&conns);
        let sender = conn.clone();
        // Either order of first use, so either local may be torn down first.
        thread::spawn(move || {
            if guard_first {
                GUARD.with(|g| *g.borrow_mut() = Some(CloseOnDrop(sender.clone())));
                sender.send("hello".to_string()).unwrap();
            } else {
                sender.send("hello".to_string()).unwrap();
                GUARD.with(|g| *g.borrow_mut() = Some(CloseOnDrop(sender.clone())));
            }
        })
        .join()
        .expect("the thread ended in a panic");
        assert!(conn.is_closed());
        assert!(ends(&p));
    }
    returns_within(WAIT, move || server.stop(ms(500)));
}

#[test]
fn a_watermark_observer_may_stop_the_server() {
    // The drain event runs on the connection's writer thread; stopping the server from there
    // must not wait for that connection's reader, which waits for this writer.
    let slot: Arc<Mutex<Option<threadnet::ServerHandle<Raw>>>> = Arc::default();
    let observer_slot = Arc::clone(&slot);
    let (stopped_tx, stopped) = mpsc::channel();
    let options = ConnOptions::new()
        .high_watermark(1000)
        .low_watermark(500)
        .on_watermark(move |e| {
            if !e.full {
                if let Some(server) = observer_slot.lock().unwrap().take() {
                    server.stop(ms(300));
                    let _ = stopped_tx.send(());
                }
            }
        });
    let (tx, conns) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(Raw, move |conn: &Connection<Raw>| {
            tx.send(conn.clone()).unwrap();
            |_: &Connection<Raw>, _: Vec<u8>| {}
        })
        .unwrap();
    *slot.lock().unwrap() = Some(server.clone());
    let p = peer(server.local_addr());
    let conn = recv(&conns);
    conn.try_send(vec![7u8; 4000]).unwrap(); // try_send queues: the queue rises above 1000
    assert_eq!(read_bytes(&p, 4000), 4000);
    stopped
        .recv_timeout(WAIT)
        .expect("stop() from the observer hung");
    drop(p);
    returns_within(WAIT, move || server.wait());
}

/// Lines, except that writing "boom" panics after the codec has written part of it.
#[derive(Clone)]
struct PanicsOnBoom(Lines);

impl Codec for PanicsOnBoom {
    type In = String;
    type Out = String;

    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<String>> {
        self.0.read(r)
    }

    fn write<W: Write>(&self, msg: &String, w: &mut W) -> io::Result<()> {
        w.write_all(b"bo")?; // small: gathered, not yet on the socket
        assert!(msg != "boom", "codec boom");
        w.write_all(&msg.as_bytes()[2.min(msg.len())..])?;
        w.write_all(b"\n")
    }
}

#[test]
fn a_codec_panic_in_a_reply_leaves_the_connection_usable() {
    // The handler catches the panic of one send; the connection must go on, its stream whole.
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(
            PanicsOnBoom(Lines::new()),
            |_: &Connection<PanicsOnBoom>| {
                |conn: &Connection<PanicsOnBoom>, line: String| {
                    let bad = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let _ = conn.send("boom".to_string());
                    }));
                    assert!(bad.is_err());
                    conn.send(format!("bo{line}")).unwrap();
                }
            },
        )
        .unwrap();
    let mut p = peer(server.local_addr());
    for line in ["ok", "again"] {
        p.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut reply = String::new();
        std::io::BufReader::new(&p).read_line(&mut reply).unwrap();
        assert_eq!(
            reply,
            format!("bo{line}\n"),
            "half of the panicking message went out"
        );
    }
    drop(p);
    returns_within(WAIT, move || server.stop(ms(500)));
}

#[test]
fn client_stop_from_a_timer_callback_keeps_its_deadline() {
    // As for the server: the wheel thread is blocked in stop(), so the connection's own
    // deadline timer cannot fire; the client's stop must keep the deadline itself.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = thread::spawn(move || listener.accept().map(|(s, _)| s)); // never closes
    let wheel = TimingWheel::new(ms(5));
    let client = TcpClient::builder()
        .options(ConnOptions::new().timing_wheel(wheel.clone()))
        .connect(addr, Raw, |_: &Connection<Raw>| {
            |_: &Connection<Raw>, _: Vec<u8>| {}
        })
        .unwrap();
    let _peer = holder.join().unwrap().unwrap();
    let (tx, took) = mpsc::channel();
    let client = Mutex::new(Some(client));
    wheel.after(ms(1), move || {
        let t = Instant::now();
        client.lock().unwrap().take().unwrap().stop(ms(200));
        let _ = tx.send(t.elapsed());
    });
    let took = took
        .recv_timeout(WAIT)
        .expect("client stop(200 ms) on the wheel thread hung");
    assert!(took >= ms(200) && took < ms(2000), "{took:?}");
    wheel.stop();
}
