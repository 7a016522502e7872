//! Hostile input against a WebSocket server at the socket level: a handshake head that never
//! ends (flooded, and trickled), a 64-bit length of 2^63 and of 2^62, unmasked client frames,
//! and floods of fragments that never finish a message. Each must close only its own
//! connection, with the close code RFC 6455 gives it; a well-behaved WebSocket client on the
//! same server keeps echoing throughout; the memory the floods cost stays bounded by the
//! message limit, and the process's threads and fds come back to their baseline afterwards.
//!
//! One test, so that the thread and fd counts of this process are the server's alone.

mod common;
#[path = "common/proc_stats.rs"]
mod proc_stats;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_closed_with, ends, fd_count, peer, recv, thread_count, wait_until};
use threadnet::http::{Http1, Request, Response};
use threadnet::ws::{self, Message, WsCodec, WsUpgrade};
use threadnet::{CloseReason, ConnOptions, Connection, TcpServer};

const MAX_FRAME: usize = 64 * 1024;
const MAX_MESSAGE: usize = 256 * 1024;
/// Fragment floods running at once, and what each tries to send.
const FLOODS: usize = 4;
const FLOOD_BYTES: usize = 16 * 1024 * 1024;
/// What the floods may add to the RSS while they run: their messages are cut at
/// `MAX_MESSAGE` (1 MiB for all four), and the rest is slack for buffers and the allocator.
/// A server that kept what the floods sent would need their 64 MiB.
const FLOOD_RSS_SLACK_MIB: u64 = 40;

const HANDSHAKE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A masked client frame, built by hand.
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut out = vec![b0];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads one server frame: (byte 0, payload).
fn read_frame(s: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    let len = match h[1] {
        126 => {
            let mut e = [0u8; 2];
            s.read_exact(&mut e)?;
            usize::from(u16::from_be_bytes(e))
        }
        127 => panic!("no server frame here is that long"),
        n => usize::from(n),
    };
    let mut p = vec![0; len];
    s.read_exact(&mut p)?;
    Ok((h[0], p))
}

/// Reads a response head.
fn head(s: &mut TcpStream) -> io::Result<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b)?;
        out.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A connection that has done its handshake.
fn open(addr: SocketAddr) -> TcpStream {
    let mut s = peer(addr);
    s.write_all(HANDSHAKE).unwrap();
    let h = head(&mut s).unwrap();
    assert!(h.starts_with("HTTP/1.1 101 "), "{h}");
    s
}

/// Expects a close frame with `code`, then the end of the connection.
#[track_caller]
fn expect_close(s: &mut TcpStream, code: u16, what: &str) {
    let (b0, p) = read_frame(s).unwrap_or_else(|e| panic!("{what}: no close frame: {e}"));
    assert_eq!(b0, 0x88, "{what}: a close frame");
    assert_eq!(u16::from_be_bytes([p[0], p[1]]), code, "{what}");
    assert!(ends(s), "{what}: closed after the close frame");
}

/// The well-behaved client: echoes numbered texts until told to stop, checking each answer.
struct Good {
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl Good {
    fn start(addr: SocketAddr) -> Good {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, st) = (Arc::clone(&done), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut s = open(addr);
            let started = Instant::now();
            // Bounded in count and in time, whatever happens.
            for i in 0..1_000_000u64 {
                if st.load(Ordering::SeqCst) || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                let text = format!("good {i}");
                s.write_all(&frame(0x81, text.as_bytes())).unwrap();
                assert_eq!(read_frame(&mut s).unwrap(), (0x81, text.into_bytes()));
                d.store(i + 1, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(2));
            }
            s.write_all(&frame(0x88, &1000u16.to_be_bytes())).unwrap();
            assert_eq!(read_frame(&mut s).unwrap().0, 0x88);
            assert!(ends(&s));
        });
        Good { done, stop, thread }
    }

    /// Waits for `n` more good exchanges: the server still serves.
    #[track_caller]
    fn advance(&self, n: u64, after: &str) {
        let from = self.done.load(Ordering::SeqCst);
        assert!(
            wait_until(Duration::from_secs(10), || self.done.load(Ordering::SeqCst)
                >= from + n),
            "the good client stalled after {after}"
        );
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .join()
            .expect("the good client saw a wrong answer");
        self.done.load(Ordering::SeqCst)
    }
}

struct Echo {
    closed: mpsc::Sender<CloseReason>,
}

impl ws::WsHandler for Echo {
    fn on_message(&mut self, conn: &Connection<WsUpgrade>, msg: Message) {
        if let m @ (Message::Text(_) | Message::Binary(_)) = msg {
            let _ = conn.send(m.into());
        }
    }

    fn on_close(&mut self, _: &Connection<WsUpgrade>, reason: &CloseReason) {
        let _ = self.closed.send(reason.clone());
    }
}

fn rss_kib() -> u64 {
    proc_stats::stats(std::process::id()).rss_kib
}

/// Sends fragments (no FIN) of 16 KiB until `FLOOD_BYTES` or the server stops taking them,
/// while reading the server's answer: it must be a close frame with 1009.
fn fragment_flood(addr: SocketAddr) -> usize {
    let mut s = open(addr);
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let first = frame(0x02, &[0x55; 16 * 1024]);
        let next = frame(0x00, &[0x55; 16 * 1024]);
        let mut sent = 0;
        while sent < FLOOD_BYTES {
            let f = if sent == 0 { &first } else { &next };
            if w.write_all(f).is_err() {
                break;
            }
            sent += 16 * 1024;
        }
        let _ = w.shutdown(Shutdown::Write);
        sent
    });
    expect_close(&mut s, 1009, "a fragment flood");
    writer.join().unwrap()
}

#[test]
fn hostile_websocket_peers_close_only_themselves() {
    let (tx, closed) = mpsc::channel();
    let codec = WsUpgrade::new()
        .http(Http1::new())
        .frames(WsCodec::new().max_frame(MAX_FRAME).max_message(MAX_MESSAGE));
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(ConnOptions::new().frame_timeout(Duration::from_millis(500)))
        .start(
            codec,
            ws::serve(
                |_: &Request| Response::new(404),
                move |_: &Connection<WsUpgrade>| Echo { closed: tx.clone() },
            ),
        )
        .unwrap();
    let addr = server.local_addr().as_inet().unwrap();
    let good = Good::start(addr);
    good.advance(20, "the start");
    let (threads, fds) = (thread_count(), fd_count());

    // A handshake head that never ends, flooded: refused at the head limit (8 KiB) with 431.
    let mut s = peer(addr);
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .unwrap();
    let pad = format!("X-Pad: {}\r\n", "a".repeat(1000));
    for _ in 0..64 {
        if s.write_all(pad.as_bytes()).is_err() {
            break;
        }
    }
    let h = head(&mut s).expect("an answer to the endless head");
    assert!(h.starts_with("HTTP/1.1 431 "), "{h}");
    drop(s);
    good.advance(5, "an endless head");

    // A handshake head trickled a byte at a time: closed at the frame timeout (500 ms).
    let mut s = peer(addr);
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let mut cut = false;
    for _ in 0..100 {
        thread::sleep(Duration::from_millis(50));
        if s.write_all(b"X").is_err() {
            cut = true;
            break;
        }
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let gone = !matches!(s.read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        s.set_nonblocking(false).unwrap();
        if gone {
            cut = true;
            break;
        }
    }
    assert!(cut, "a trickled head was never cut");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(s);
    good.advance(5, "a trickled head");

    // A 64-bit length of 2^63 (the top bit must be clear): 1002, before any allocation.
    let mut s = open(addr);
    let mut wire = vec![0x82, 0xFF];
    wire.extend((1u64 << 63).to_be_bytes());
    wire.extend([1, 2, 3, 4]);
    s.write_all(&wire).unwrap();
    expect_close(&mut s, 1002, "a length of 2^63");
    drop(s);
    // 2^62: a valid length, far over the limit: 1009 on the header.
    let mut s = open(addr);
    let mut wire = vec![0x82, 0xFF];
    wire.extend((1u64 << 62).to_be_bytes());
    wire.extend([1, 2, 3, 4]);
    s.write_all(&wire).unwrap();
    expect_close(&mut s, 1009, "a length of 2^62");
    drop(s);
    good.advance(5, "huge lengths");

    // Unmasked client frames: 1002.
    let mut s = open(addr);
    s.write_all(&[0x81, 0x05]).unwrap();
    s.write_all(b"hello").unwrap();
    expect_close(&mut s, 1002, "an unmasked frame");
    drop(s);
    good.advance(5, "an unmasked frame");

    // Fragment floods that never finish a message: 1009 at the message limit; the memory
    // they cost is bounded by it.
    let base_rss = rss_kib();
    let floods: Vec<_> = (0..FLOODS)
        .map(|_| thread::spawn(move || fragment_flood(addr)))
        .collect();
    let mut peak = base_rss;
    while !floods.iter().all(|f| f.is_finished()) {
        peak = peak.max(rss_kib());
        thread::sleep(Duration::from_millis(5));
    }
    for f in floods {
        let sent = f.join().expect("a fragment flood");
        assert!(sent > MAX_MESSAGE, "the flood sent past the limit: {sent}");
    }
    let grew = peak.saturating_sub(base_rss) / 1024;
    println!(
        "fragment floods: RSS {} MiB, peak +{grew} MiB",
        base_rss / 1024
    );
    assert!(
        grew < FLOOD_RSS_SLACK_MIB,
        "RSS grew {grew} MiB during the floods"
    );
    good.advance(5, "the fragment floods");

    // Each hostile connection ended with the code we sent; the good one is still open.
    let mut codes = Vec::new();
    while let Ok(reason) = closed.recv_timeout(Duration::from_millis(500)) {
        if let CloseReason::Protocol {
            code,
            by_peer: false,
            ..
        } = reason
        {
            codes.push(code);
        }
    }
    codes.sort_unstable();
    let mut want = vec![1002, 1002, 1009];
    want.extend([1009; FLOODS]);
    want.sort_unstable();
    assert_eq!(codes, want);
    assert_eq!(
        server.connections().len(),
        1,
        "only the good client is left"
    );
    assert!(
        wait_until(Duration::from_secs(5), || thread_count() <= threads
            && fd_count() <= fds),
        "threads {} (baseline {threads}), fds {} (baseline {fds})",
        thread_count(),
        fd_count()
    );

    let exchanges = good.finish();
    println!("good exchanges: {exchanges}");
    assert_closed_with(&recv(&closed), 1000, true);
    server.stop(Duration::from_secs(1));
}
