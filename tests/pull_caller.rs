//! A `BlockingClient` has no reader thread: its caller reads the socket and decodes. Receives
//! with a deadline rewind a frame they cut short, so nothing is ever torn; the end of the
//! connection, a close from another thread and a graceful shutdown all run on the caller.

mod common;

use std::io::{self, BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Instant;

use common::*;
use threadnet::{
    codec::LengthDelimited,
    pull::{RecvTimeoutError, TryRecvError},
    BlockingClient, CloseReason, Codec, ConnOptions, TcpClient,
};

/// The tests count threads and fds: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Threads that threadnet started (named `threadnet-…`), now. The test harness starts a
/// thread per test whenever one ends, so the process's own count moves under a test.
fn threadnet_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("threadnet"))
        .count()
}

/// A raw server for one connection: `serve` gets the accepted stream.
fn raw_server(serve: impl FnOnce(TcpStream) + Send + 'static) -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        serve(s);
    });
    (addr, server)
}

/// A client whose codec takes frames up to 2 MiB.
fn big_client<C: Codec>(addr: &str, codec: C) -> BlockingClient<C> {
    let options = ConnOptions::default().max_frame_length(2 << 20);
    let builder = TcpClient::builder().options(options);
    BlockingClient::connect_with(builder, addr, codec).unwrap()
}

#[test]
fn timeouts_mid_frame_across_a_frame_larger_than_the_buffer_tear_nothing() {
    let _serial = serial();
    // A small frame, then 1 MiB sent in 16 pieces; the server writes each piece after the
    // first only once the caller has timed out since the last one. Then a last small frame.
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let (timed_out_tx, timed_out) = mpsc::channel::<()>();
    let sent = big.clone();
    let (addr, server) = raw_server(move |mut s| {
        write_frame(&mut s, b"first").unwrap();
        let whole = frame(&sent);
        let pieces: Vec<&[u8]> = whole.chunks(whole.len() / 16 + 1).collect();
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                timed_out.recv().unwrap();
            }
            s.write_all(piece).unwrap();
        }
        write_frame(&mut s, b"last").unwrap();
        let _ = s.read_to_end(&mut Vec::new());
    });
    let client = big_client(&addr, LengthDelimited::new());
    assert_eq!(client.recv_timeout(WAIT).unwrap(), b"first");
    let mut timeouts = 0;
    let got = loop {
        match client.recv_timeout(ms(20)) {
            Ok(m) => break m,
            Err(RecvTimeoutError::Timeout) => {
                timeouts += 1;
                let _ = timed_out_tx.send(());
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(timeouts >= 15, "only {timeouts} timeouts");
    assert_eq!(got.len(), big.len(), "a torn frame");
    assert!(got == big, "the frame's bytes changed");
    assert_eq!(client.recv_timeout(WAIT).unwrap(), b"last");
    drop(timed_out_tx);
    drop(client);
    server.join().unwrap();
}

#[test]
fn try_recv_on_half_a_frame_is_empty_and_the_frame_comes_whole_later() {
    let _serial = serial();
    let (go_tx, go) = mpsc::channel::<()>();
    let (addr, server) = raw_server(move |mut s| {
        let whole = [frame(b"one"), frame(&[9u8; 3000])].concat();
        // The first frame whole, and half of the second.
        s.write_all(&whole[..7 + 1500]).unwrap();
        go.recv().unwrap();
        s.write_all(&whole[7 + 1500..]).unwrap();
        let _ = s.read_to_end(&mut Vec::new());
    });
    let client = BlockingClient::connect(&addr, LengthDelimited::new()).unwrap();
    // The first is wholly readable now: try_recv gets it without waiting for anything.
    assert!(wait_until(WAIT, || match client.try_recv() {
        Ok(m) => {
            assert_eq!(m, b"one");
            true
        }
        Err(TryRecvError::Empty) => false,
        Err(e) => panic!("{e}"),
    }));
    // Half of the second: Empty, as often as it is asked.
    for _ in 0..3 {
        assert!(matches!(client.try_recv(), Err(TryRecvError::Empty)));
    }
    assert_eq!(client.try_iter().count(), 0);
    go_tx.send(()).unwrap();
    assert_eq!(client.recv_timeout(WAIT).unwrap(), vec![9u8; 3000]);
    drop(client);
    server.join().unwrap();
}

/// `LengthDelimited`, numbering the frames it decodes: its state spans frames, and it
/// counts a frame as soon as its header is read (a rewind that kept the codec as it was
/// mid-frame would count that frame twice).
#[derive(Clone)]
struct Numbering {
    next: u32,
}

impl Codec for Numbering {
    type In = (u32, Vec<u8>);
    type Out = Vec<u8>;

    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<(u32, Vec<u8>)>> {
        let mut len = [0u8; 4];
        match r.read(&mut len[..1])? {
            0 => return Ok(None),
            _ => r.read_exact(&mut len[1..])?,
        }
        let n = self.next;
        self.next += 1;
        let mut payload = vec![0; u32::from_be_bytes(len) as usize];
        r.read_exact(&mut payload)?;
        Ok(Some((n, payload)))
    }

    fn write<W: Write>(&self, msg: &Vec<u8>, w: &mut W) -> io::Result<()> {
        w.write_all(&frame(msg))
    }
}

#[test]
fn a_codec_whose_state_spans_frames_survives_a_rewind() {
    let _serial = serial();
    let (step_tx, step) = mpsc::channel::<()>();
    let (addr, server) = raw_server(move |mut s| {
        for i in 0..5u8 {
            let whole = frame(&[i; 100]);
            // Header and part of the payload, then (after the caller timed out) the rest.
            s.write_all(&whole[..50]).unwrap();
            step.recv().unwrap();
            s.write_all(&whole[50..]).unwrap();
        }
        let _ = s.read_to_end(&mut Vec::new());
    });
    let client = BlockingClient::connect(&addr, Numbering { next: 0 }).unwrap();
    for i in 0..5u8 {
        let mut timeouts = 0;
        let (n, payload) = loop {
            match client.recv_timeout(ms(20)) {
                Ok(m) => break m,
                Err(RecvTimeoutError::Timeout) => {
                    timeouts += 1;
                    if timeouts == 2 {
                        step_tx.send(()).unwrap(); // two rewinds of the same frame first
                    }
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert!(timeouts >= 2);
        assert_eq!(n, u32::from(i), "the codec's state was not restored");
        assert_eq!(payload, vec![i; 100]);
    }
    drop(client);
    server.join().unwrap();
}

#[test]
fn no_thread_reads_for_a_blocking_client() {
    let _serial = serial();
    // 50 clients of a raw server that accepts them on this thread: no thread per client.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _warm = BlockingClient::connect(addr, LengthDelimited::new()).unwrap();
    let _warm_peer = listener.accept().unwrap();
    let threads = threadnet_threads();
    let mut clients = Vec::new();
    let mut peers = Vec::new();
    for _ in 0..50 {
        clients.push(BlockingClient::connect(addr, LengthDelimited::new()).unwrap());
        peers.push(listener.accept().unwrap().0);
    }
    let grown = threadnet_threads().saturating_sub(threads);
    assert_eq!(grown, 0, "{grown} threads for 50 blocking clients");
    // Each still works: a request answered by hand.
    for (c, p) in clients.iter().zip(&mut peers) {
        c.send(b"ping".to_vec()).unwrap();
        assert_eq!(expect_frame(p), b"ping");
        write_frame(p, b"pong").unwrap();
        assert_eq!(c.recv_timeout(WAIT).unwrap(), b"pong");
    }
    // Replies written straight from the caller: no writer thread either.
    assert_eq!(threadnet_threads(), threads);
}

#[test]
fn eof_and_close_while_the_caller_waits_end_it_on_the_caller() {
    let _serial = serial();
    threadnet::TimingWheel::global(); // its thread starts on first use, and stays
    let threads = threadnet_threads();
    let fds = fd_count();
    {
        // The server sends two frames and closes while the caller waits in recv.
        let (go_tx, go) = mpsc::channel::<()>();
        let (addr, server) = raw_server(move |mut s| {
            go.recv().unwrap();
            s.write_all(&[frame(b"a"), frame(b"b")].concat()).unwrap();
        });
        let client = Arc::new(BlockingClient::connect(&addr, LengthDelimited::new()).unwrap());
        let waiting = {
            let client = Arc::clone(&client);
            thread::spawn(move || client.iter().collect::<Vec<_>>())
        };
        go_tx.send(()).unwrap();
        assert_eq!(waiting.join().unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        let end = client.recv().unwrap_err();
        assert!(matches!(end.reason, CloseReason::PeerClosed), "{end}");
        // Ended once, and every later call says so.
        assert_eq!(client.client().metrics().connections_closed_total(), 1);
        assert!(matches!(
            client.recv_timeout(ms(1)),
            Err(RecvTimeoutError::Closed(CloseReason::PeerClosed))
        ));
        assert!(matches!(client.try_recv(), Err(TryRecvError::Closed(_))));
        assert!(client.send(b"late".to_vec()).unwrap_err().is_closed());
        server.join().unwrap();
    }
    {
        // close() from another thread while the caller is blocked in recv.
        let (done_tx, done) = mpsc::channel::<()>();
        let (addr, server) = raw_server(move |mut s| {
            let _ = done.recv();
            let _ = s.read_to_end(&mut Vec::new());
        });
        let client = BlockingClient::connect(&addr, LengthDelimited::new()).unwrap();
        let started = AtomicUsize::new(0);
        thread::scope(|s| {
            let waiting = s.spawn(|| {
                started.store(1, Ordering::SeqCst);
                client.recv()
            });
            assert!(wait_until(WAIT, || started.load(Ordering::SeqCst) == 1));
            client.close();
            let end = waiting.join().unwrap().unwrap_err();
            assert!(matches!(end.reason, CloseReason::Closed { .. }), "{end}");
        });
        assert!(matches!(
            client.recv(),
            Err(e) if matches!(e.reason, CloseReason::Closed { .. })
        ));
        assert_eq!(client.client().metrics().connections_closed_total(), 1);
        drop(client);
        done_tx.send(()).unwrap();
        server.join().unwrap();
    }
    assert!(
        wait_until(WAIT, || threadnet_threads() <= threads),
        "threads leaked"
    );
    assert!(wait_until(WAIT, || fd_count() <= fds), "fds leaked");
}

#[test]
fn a_request_takes_an_unsolicited_message_first_then_the_reply_follows() {
    let _serial = serial();
    let (addr, server) = raw_server(|mut s| {
        let req = read_frame(&mut s).unwrap().unwrap();
        write_frame(&mut s, b"notice").unwrap();
        write_frame(&mut s, &[b"re: ", &req[..]].concat()).unwrap();
        let req = read_frame(&mut s).unwrap().unwrap();
        write_frame(&mut s, &[b"re: ", &req[..]].concat()).unwrap();
        let _ = s.read_to_end(&mut Vec::new());
    });
    let client = BlockingClient::connect(&addr, LengthDelimited::new()).unwrap();
    // Documented: the next message is the reply, whatever it is; order is kept.
    assert_eq!(client.request(b"q1".to_vec(), WAIT).unwrap(), b"notice");
    assert_eq!(client.recv_timeout(WAIT).unwrap(), b"re: q1");
    assert_eq!(client.request(b"q2".to_vec(), WAIT).unwrap(), b"re: q2");
    drop(client);
    server.join().unwrap();
}

#[test]
fn shutdown_reads_to_the_servers_eof_on_the_callers_thread() {
    let _serial = serial();
    let fds = fd_count();
    // The server sends three more frames once it has our FIN, then closes.
    let (addr, server) = raw_server(|mut s| {
        let _ = s.read_to_end(&mut Vec::new());
        for m in [&b"x"[..], b"y", b"z"] {
            write_frame(&mut s, m).unwrap();
        }
    });
    let client = BlockingClient::connect(&addr, LengthDelimited::new()).unwrap();
    client.shutdown(WAIT);
    // Ended by the time shutdown returns: what came after our FIN was read and discarded.
    assert!(matches!(
        client.try_recv(),
        Err(TryRecvError::Closed(CloseReason::Shutdown))
    ));
    assert_eq!(client.connection().stats().messages_received, 3);
    server.join().unwrap();

    // A server that never closes: the close is forced at the deadline, on this thread.
    let (done_tx, done) = mpsc::channel::<()>();
    let (addr, server) = raw_server(move |s| {
        let _ = done.recv();
        drop(s);
    });
    let silent = BlockingClient::connect(&addr, LengthDelimited::new()).unwrap();
    let t = Instant::now();
    silent.shutdown(ms(300));
    assert!(t.elapsed() >= ms(250), "returned before the deadline");
    assert!(matches!(
        silent.try_recv(),
        Err(TryRecvError::Closed(CloseReason::ShutdownTimeout { .. }))
    ));
    done_tx.send(()).unwrap();
    server.join().unwrap();
    drop(client);
    drop(silent);
    assert!(wait_until(WAIT, || fd_count() <= fds), "fds leaked");
}

#[test]
fn a_frame_larger_than_the_buffer_with_no_deadline_and_buffers_in_step() {
    let _serial = serial();
    let (addr, server) = raw_server(|mut s| {
        while let Some(req) = read_frame(&mut s).unwrap() {
            write_frame(&mut s, &req).unwrap();
        }
    });
    let client = big_client(&addr, LengthDelimited::new());
    let big: Vec<u8> = (0..(1 << 20) + 7).map(|i: u32| (i % 253) as u8).collect();
    for _ in 0..3 {
        client.send(big.clone()).unwrap();
        assert!(client.recv().unwrap() == big);
        assert_eq!(client.request(b"small".to_vec(), WAIT).unwrap(), b"small");
        assert!(client.request(big.clone(), WAIT).unwrap() == big);
    }
    drop(client);
    server.join().unwrap();
}

#[test]
fn unix_deadlines_and_an_idle_limit_that_ends_a_blocked_recv() {
    let _serial = serial();
    let path = std::env::temp_dir().join(format!("threadnet-caller-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let options = ConnOptions::default().read_idle(ms(300));
    let builder = TcpClient::builder().options(options);
    let client = BlockingClient::connect_unix_with(builder, &path, LengthDelimited::new()).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    // Nothing there: try_recv does not wait, recv_timeout waits its time.
    assert!(matches!(client.try_recv(), Err(TryRecvError::Empty)));
    assert!(matches!(
        client.recv_timeout(ms(30)),
        Err(RecvTimeoutError::Timeout)
    ));
    // Half a frame, then the rest after a timeout.
    let whole = frame(b"over unix");
    peer.write_all(&whole[..6]).unwrap();
    assert!(matches!(
        client.recv_timeout(ms(30)),
        Err(RecvTimeoutError::Timeout)
    ));
    peer.write_all(&whole[6..]).unwrap();
    assert_eq!(client.recv_timeout(WAIT).unwrap(), b"over unix");
    // Then silence: the idle limit, kept by the timing wheel, ends the recv that waits.
    let end = client.recv().unwrap_err();
    assert!(
        matches!(end.reason, CloseReason::IdleTimeout { .. }),
        "{end}"
    );
    drop(peer);
    drop(client);
    let _ = std::fs::remove_file(&path);
}
