//! `ServerHandle::connections().broadcast` to many connections, one of which never reads.
//!
//! A threadnet server holds `BROADCAST_CONNS` connections (1 000 by default) from std clients
//! on 127.0.0.1. Eight client threads read every connection but one, in turn, one frame each
//! per round, and check that frame `i` carries sequence number `i`. The first connection never
//! reads: its socket buffers fill, then its send queue, and from then on its broadcasts come
//! back as `full`. The broadcaster stays at most `WINDOW` broadcasts ahead of the slowest
//! reading thread, so a reading connection's queue never fills: if one does, or a reader
//! waits more than 10 s for a frame, or any frame is missing or out of order, the bench fails.
//!
//! It runs until the slow connection has been full for `FULL_ROUNDS` broadcasts (or
//! `MAX_BROADCASTS`, or 60 s), then prints the time each `broadcast` call took (p50, p99,
//! mean), split into before and after the slow connection filled, and the broadcasts per
//! second end to end (every reading connection received each one).
//!
//! ```sh
//! cargo bench --bench broadcast                       # 1 000 connections (~2 000 fds)
//! BROADCAST_CONNS=500 cargo bench --bench broadcast
//! ```
//!
//! The server and the clients live in one process: each connection costs two fds and one or
//! two server threads, so raise `ulimit -n` first if it is under ~2 100.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use threadnet::{codec::LengthDelimited, ConnOptions, Connection, TcpServer};

/// Bytes of each broadcast message (a sequence number, then filler): large enough that the
/// slow connection's socket buffers (a few MiB on loopback) fill within a few hundred.
const PAYLOAD: usize = 16 * 1024;
/// Client threads reading the good connections.
const READERS: usize = 8;
/// The broadcaster leads the slowest reading thread by at most this many broadcasts.
const WINDOW: u64 = 8;
/// Broadcasts after the slow connection's queue first reports full.
const FULL_ROUNDS: u64 = 100;
/// Bounds on the whole run.
const MAX_BROADCASTS: u64 = 5_000;
const MAX_TIME: Duration = Duration::from_secs(60);
/// A read or a wait for progress that takes longer than this fails the bench.
const STALL: Duration = Duration::from_secs(10);
/// The sequence number of the last message: readers stop on it.
const STOP: u64 = u64::MAX;

fn frame(seq: u64) -> Vec<u8> {
    let mut msg = seq.to_be_bytes().to_vec();
    msg.resize(PAYLOAD, 0xab);
    msg
}

/// Rounds completed by each reading thread, and a condvar rung after each round.
struct Progress {
    rounds: Mutex<Vec<u64>>,
    advanced: Condvar,
}

/// Reads one frame from each stream per round until the stop frame; returns the rounds read.
fn read_rounds(streams: Vec<TcpStream>, me: usize, progress: Arc<Progress>) -> u64 {
    let mut buf = vec![0u8; 4 + PAYLOAD];
    let mut seq = 0u64;
    loop {
        let mut stop = false;
        for mut s in &streams {
            s.read_exact(&mut buf)
                .unwrap_or_else(|e| panic!("reader {me}: round {seq}: {e}"));
            let got = u64::from_be_bytes(buf[4..12].try_into().unwrap());
            stop = got == STOP;
            assert!(
                stop || got == seq,
                "reader {me}: expected broadcast {seq}, got {got}"
            );
        }
        if stop {
            return seq;
        }
        seq += 1;
        let mut rounds = progress.rounds.lock().unwrap();
        rounds[me] = seq;
        progress.advanced.notify_all();
    }
}

/// p50, p99 and mean in µs.
fn stats(samples: &mut [Duration]) -> String {
    if samples.is_empty() {
        return "none".into();
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / samples.len() as f64;
    format!(
        "n {} p50 {:.0} µs p99 {:.0} µs mean {:.0} µs",
        samples.len(),
        at(0.5),
        at(0.99),
        mean
    )
}

fn main() {
    let conns: usize = std::env::var("BROADCAST_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .max_connections(conns + 8)
        .options(ConnOptions::new().send_queue_capacity(64))
        .start(LengthDelimited::new(), |_: &Connection<LengthDelimited>| {
            |_: &Connection<LengthDelimited>, _: Vec<u8>| {}
        })
        .expect("start the server");
    let addr: SocketAddr = server.local_addr().as_inet().expect("a TCP server");
    let mut streams: Vec<TcpStream> = (0..conns)
        .map(|i| {
            let s = TcpStream::connect_timeout(&addr, STALL)
                .unwrap_or_else(|e| panic!("connection {i}: {e} (is ulimit -n high enough?)"));
            s.set_read_timeout(Some(STALL)).unwrap();
            s
        })
        .collect();
    let start = Instant::now();
    while server.connections().len() < conns {
        assert!(start.elapsed() < STALL, "the server accepted too few");
        thread::sleep(Duration::from_millis(1));
    }
    let slow = streams.remove(0);
    let slow_addr = slow.local_addr().unwrap();
    let mut slow_id = None;
    server.connections().for_each(|c| {
        if c.peer_addr().as_inet() == Some(slow_addr) {
            slow_id = Some(c.id());
        }
    });
    let slow_id = slow_id.expect("the slow connection is registered");

    let progress = Arc::new(Progress {
        rounds: Mutex::new(vec![0; READERS]),
        advanced: Condvar::new(),
    });
    let mut groups: Vec<Vec<TcpStream>> = (0..READERS).map(|_| Vec::new()).collect();
    for (i, s) in streams.into_iter().enumerate() {
        groups[i % READERS].push(s);
    }
    let readers: Vec<_> = groups
        .into_iter()
        .enumerate()
        .map(|(me, group)| {
            let progress = Arc::clone(&progress);
            thread::spawn(move || read_rounds(group, me, progress))
        })
        .collect();

    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut first_full = None;
    let mut sent = 0u64;
    let run = Instant::now();
    while sent < MAX_BROADCASTS && run.elapsed() < MAX_TIME {
        if first_full.is_some_and(|f| sent - f >= FULL_ROUNDS) {
            break;
        }
        {
            let mut rounds = progress.rounds.lock().unwrap();
            while rounds.iter().min().copied().unwrap_or(0) + WINDOW <= sent {
                let (r, timeout) = progress.advanced.wait_timeout(rounds, STALL).unwrap();
                assert!(!timeout.timed_out(), "readers stalled at broadcast {sent}");
                rounds = r;
            }
        }
        let msg = frame(sent);
        let t = Instant::now();
        let report = server.connections().broadcast(&msg).expect("encode");
        let took = t.elapsed();
        assert!(report.closed.is_empty(), "closed: {:?}", report.closed);
        assert!(
            report.full.iter().all(|&id| id == slow_id),
            "a reading connection's queue was full at broadcast {sent}: {:?}",
            report.full
        );
        if report.full.contains(&slow_id) {
            first_full.get_or_insert(sent);
        }
        if first_full.is_some() {
            after.push(took);
        } else {
            before.push(took);
        }
        sent += 1;
    }
    let _ = server.connections().broadcast(&frame(STOP));
    for r in readers {
        let rounds = r.join().expect("a reader failed");
        assert_eq!(rounds, sent, "a reading connection missed broadcasts");
    }
    let wall = run.elapsed();
    println!(
        "broadcast ({conns} connections, {PAYLOAD} B, one never reads; send queue 64 messages): \
         {sent} broadcasts in {:.2} s = {:.0}/s, each received by all {} readers; \
         slow connection full from broadcast {}",
        wall.as_secs_f64(),
        sent as f64 / wall.as_secs_f64(),
        conns - 1,
        first_full.map_or("never".to_string(), |f| f.to_string()),
    );
    println!(
        "  broadcast call, before the slow one filled: {}",
        stats(&mut before)
    );
    println!(
        "  broadcast call, while it was full:          {}",
        stats(&mut after)
    );
    drop(slow);
    server.stop(Duration::from_secs(5));
}
