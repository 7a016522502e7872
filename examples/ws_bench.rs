//! WebSocket echo against threadnet's own length-delimited echo, in one process on loopback:
//! messages per second with one message in flight per connection.
//!
//! ```sh
//! cargo run --release --example ws_bench -- --secs 5 --size 4096 --conns 1,16 --rounds 3
//! ```
//!
//! Servers: a `TcpServer` with [`WsCodec`] and [`AutoReply`] echoing each binary message (the
//! frames start at once, no HTTP handshake), and one with `LengthDelimited` echoing each
//! frame. Clients: plain std threads, one blocking `TcpStream` each, that write a message
//! (masked with a fresh key per frame for WebSocket, as a browser would), read the echo, and
//! repeat. Both servers reply from `on_message`, so each side costs the same syscalls; the
//! difference is framing and masking (once per message, on the client, as a browser masks:
//! the payload is copied into the frame and masked there, where the length client copies it).
//!
//! Besides the rates, each run reports the CPU time of the whole process (both servers and
//! the clients) per message, from `/proc/self/stat`: on a shared machine a steadier figure
//! than the rate. `--only ws` or `--only length` runs one side (for profilers).

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use threadnet::ws::{apply_mask, AutoReply, Message, WsCodec, WsError};
use threadnet::{codec::LengthDelimited, Connection, TcpServer};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// The CPU time this process (servers and clients) has used, in clock ticks (utime + stime of
/// `/proc/self/stat`, 100 per second on Linux); 0 where there is no such file.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11).zip(f.get(12)).map_or(0, |(u, s)| u + s)
}

/// Runs `conns` clients against `addr` for `secs`; returns messages per second (round trips)
/// and the CPU time of the whole process per message, in microseconds.
fn run(addr: SocketAddr, conns: usize, secs: u64, size: usize, ws: bool) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..conns)
        .map(|c| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let payload = vec![7u8; size];
                let mut back = vec![0u8; size];
                let mut count = 0u64;
                let mut key = (c as u32).wrapping_mul(2_654_435_761);
                while !stop.load(Ordering::Relaxed) {
                    let mut out = Vec::with_capacity(size + 14);
                    if ws {
                        key = key.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        let k = key.to_ne_bytes();
                        out.extend_from_slice(&[0x82, 0x80 | 126]);
                        out.extend_from_slice(&(size as u16).to_be_bytes());
                        out.extend_from_slice(&k);
                        out.extend_from_slice(&payload);
                        apply_mask(&mut out[8..], k); // one pass, as a browser masks
                    } else {
                        out.extend_from_slice(&(size as u32).to_be_bytes());
                        out.extend_from_slice(&payload);
                    }
                    w.write_all(&out).unwrap();
                    let mut head = [0u8; 4];
                    r.read_exact(&mut head).unwrap();
                    r.read_exact(&mut back).unwrap();
                    count += 1;
                }
                count
            })
        })
        .collect();
    let (start, ticks) = (Instant::now(), cpu_ticks());
    thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let total: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let cpu_us = (cpu_ticks() - ticks) as f64 * 10_000.0 / total.max(1) as f64;
    (total as f64 / start.elapsed().as_secs_f64(), cpu_us)
}

/// The median of `runs`; 0 when there are none (`--only`).
fn median(runs: &mut [f64]) -> f64 {
    runs.sort_by(f64::total_cmp);
    let mid = runs.len() / 2;
    if runs.is_empty() {
        0.0
    } else if runs.len() % 2 == 1 {
        runs[mid]
    } else {
        (runs[mid - 1] + runs[mid]) / 2.0
    }
}

fn main() -> std::io::Result<()> {
    let secs: u64 = arg("--secs", "5").parse().expect("--secs N");
    let size: usize = arg("--size", "4096").parse().expect("--size BYTES");
    assert!((126..=65535).contains(&size), "--size must be 126 to 65535");
    let conns: Vec<usize> = arg("--conns", "1,16")
        .split(',')
        .map(|n| n.parse().expect("--conns A,B"))
        .collect();
    let ws = TcpServer::builder().addr("127.0.0.1:0").start(
        WsCodec::new(),
        |_: &Connection<WsCodec>| {
            AutoReply::new(
                |conn: &Connection<WsCodec>, msg: Result<Message, WsError>| {
                    if let Ok(m @ Message::Binary(_)) = msg {
                        let _ = conn.send(m);
                    }
                },
            )
        },
    )?;
    let ld = TcpServer::builder().addr("127.0.0.1:0").start(
        LengthDelimited::new(),
        |_: &Connection<LengthDelimited>| {
            |conn: &Connection<LengthDelimited>, frame: Vec<u8>| {
                let _ = conn.send(frame);
            }
        },
    )?;
    let only = arg("--only", "both");
    let rounds: usize = arg("--rounds", "3").parse().expect("--rounds N");
    assert!(rounds > 0, "--rounds must be at least 1");
    println!(
        "size {size} B, {secs} s per run, one message in flight per connection, \
         medians of {rounds} interleaved rounds"
    );
    println!(
        "{:>6} {:>14} {:>14} {:>8} {:>12} {:>12}",
        "conns", "ws msg/s", "length msg/s", "ws/len", "ws cpu µs", "length cpu µs"
    );
    for n in conns {
        let (mut ls, mut wss) = (Vec::new(), Vec::new());
        let (mut lcpu, mut wcpu) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Interleaved, the first one alternating: neither always runs on a warmer machine.
            let mut l = || {
                let (rate, cpu) = run(ld.local_addr().as_inet().unwrap(), n, secs, size, false);
                ls.push(rate);
                lcpu.push(cpu);
            };
            if round % 2 == 0 && only != "ws" {
                l();
            }
            if only != "length" {
                let (rate, cpu) = run(ws.local_addr().as_inet().unwrap(), n, secs, size, true);
                wss.push(rate);
                wcpu.push(cpu);
            }
            if round % 2 == 1 && only != "ws" {
                l();
            }
        }
        let (w, l) = (median(&mut wss), median(&mut ls));
        let (wc, lc) = (median(&mut wcpu), median(&mut lcpu));
        println!(
            "{n:>6} {w:>14.0} {l:>14.0} {:>8.2} {wc:>12.2} {lc:>12.2}",
            w / l
        );
    }
    ws.stop(Duration::from_secs(1));
    ld.stop(Duration::from_secs(1));
    Ok(())
}
