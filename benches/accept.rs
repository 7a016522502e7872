//! Connecting: per connection, `connect`, then one 16-byte length-delimited frame echoed, the
//! connection held open; what a server does between `accept` and its first reply, one peer
//! after another (each connect waits for the previous peer's echo, as `loadgen idle --touch 1`
//! does). After each batch the peers close, untimed, and the server is waited for until it
//! holds none.
//!
//! * `threadnet`: a threadnet [`TcpServer`] echo with [`ConnOptions::new`] (the options of
//!   `examples/echo_service.rs` without flags: 128 KiB stacks, the 30 s frame timeout).
//! * `threadnet_64k`: the same with 64 KiB stacks, as the std loop's.
//! * `std`: the baseline, `benches/harness`' `std-echo` loop: a thread per connection with a
//!   64 KiB stack that sets `TCP_NODELAY`, peeks, then echoes through a `BufReader` and a
//!   `BufWriter` of 32 KiB.
//!
//! After the criterion group, `connect_rounds` prints the p50, p99 and mean time per
//! connection of each server and their ratios to the std loop's: 8 interleaved rounds of 2 000 connections
//! each, the first server of a round rotating, and the process's CPU time per connection
//! (client and server together: the client's share is the same for every server).
//!
//! ```sh
//! cargo bench --bench accept
//! cargo bench --bench accept -- connect_rounds   # the interleaved rounds alone
//! ```

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use threadnet::{codec::LengthDelimited, ConnOptions, Connection, ServerHandle, TcpServer};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Connections held at once: a batch; then they close before the next batch.
const BATCH: usize = 500;
/// The frame each peer sends: 4-byte length, 16 bytes.
const HELLO: [u8; 20] = [0, 0, 0, 16, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7];

/// A server under test: where it listens, and how many connections it holds now.
trait Server {
    fn addr(&self) -> SocketAddr;
    fn held(&self) -> usize;
}

struct Threadnet(ServerHandle<LengthDelimited>);

impl Server for Threadnet {
    fn addr(&self) -> SocketAddr {
        self.0.local_addr().as_inet().expect("a TCP server")
    }
    fn held(&self) -> usize {
        self.0.connections().len()
    }
}

fn threadnet_server(options: ConnOptions) -> Threadnet {
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .max_connections(4 * BATCH)
        .options(options)
        .start(LengthDelimited::new(), |_: &Connection<LengthDelimited>| {
            |conn: &Connection<LengthDelimited>, frame: Vec<u8>| {
                let _ = conn.send(frame);
            }
        })
        .expect("start the threadnet server");
    Threadnet(server)
}

/// The std loop of `benches/harness/src/bin/std-echo.rs`, on a thread of its own.
struct StdLoop {
    addr: SocketAddr,
    live: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server for StdLoop {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn held(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

impl Drop for StdLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn std_server() -> StdLoop {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the std server");
    let addr = listener.local_addr().unwrap();
    let live = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (l, s) = (Arc::clone(&live), Arc::clone(&stop));
    let thread = thread::spawn(move || {
        for stream in listener.incoming() {
            if s.load(Ordering::SeqCst) {
                return;
            }
            let Ok(stream) = stream else {
                thread::sleep(Duration::from_millis(10));
                continue;
            };
            l.fetch_add(1, Ordering::SeqCst);
            let live = Arc::clone(&l);
            let spawned = thread::Builder::new().stack_size(64 * 1024).spawn(move || {
                let _ = std_echo(&stream);
                drop(stream);
                live.fetch_sub(1, Ordering::SeqCst);
            });
            if spawned.is_err() {
                l.fetch_sub(1, Ordering::SeqCst);
            }
        }
    });
    StdLoop {
        addr,
        live,
        stop,
        thread: Some(thread),
    }
}

/// `std-echo`'s connection: no buffer until the first byte, then 32 KiB buffers.
fn std_echo(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if stream.peek(&mut [0])? == 0 {
        return Ok(());
    }
    let mut input = BufReader::with_capacity(32 * 1024, stream);
    let mut output = BufWriter::with_capacity(32 * 1024, stream);
    let mut payload = Vec::new();
    loop {
        if input.fill_buf()?.is_empty() {
            return output.flush();
        }
        let mut header = [0; 4];
        input.read_exact(&mut header)?;
        payload.resize(u32::from_be_bytes(header) as usize, 0);
        input.read_exact(&mut payload)?;
        output.write_all(&header)?;
        output.write_all(&payload)?;
        if input.buffer().len() < 4 {
            output.flush()?;
        }
    }
}

/// One peer: connect, one frame echoed. The stream stays open.
fn touch(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(&HELLO).unwrap();
    let mut echo = [0u8; HELLO.len()];
    s.read_exact(&mut echo).expect("the echo");
    assert_eq!(echo, HELLO, "the echo differs from the frame sent");
    s
}

/// Closes `peers` and waits until `server` holds no connection: untimed, between batches.
fn settle(server: &dyn Server, peers: Vec<TcpStream>) {
    drop(peers);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.held() > 0 {
        assert!(Instant::now() < deadline, "the server still holds peers");
        thread::sleep(Duration::from_millis(1));
    }
}

/// `n` peers one after another, in batches of [`BATCH`]: the time of each connect and echo.
fn connect(server: &dyn Server, n: usize, times: &mut Vec<Duration>) {
    let addr = server.addr();
    let mut left = n;
    while left > 0 {
        let batch = left.min(BATCH);
        let mut peers = Vec::with_capacity(batch);
        for _ in 0..batch {
            let t = Instant::now();
            peers.push(touch(addr));
            times.push(t.elapsed());
        }
        settle(server, peers);
        left -= batch;
    }
}

fn servers() -> Vec<(&'static str, Box<dyn Server>)> {
    vec![
        ("std", Box::new(std_server()) as Box<dyn Server>),
        ("threadnet", Box::new(threadnet_server(ConnOptions::new()))),
        (
            "threadnet_64k",
            Box::new(threadnet_server(ConnOptions::new().stack_size(64 * 1024))),
        ),
    ]
}

fn accept(c: &mut Criterion) {
    let mut g = c.benchmark_group("connect_and_echo");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for (name, server) in servers() {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut times = Vec::with_capacity(iters as usize);
                connect(&*server, iters as usize, &mut times);
                times.iter().sum()
            })
        });
    }
    g.finish();
}

/// User plus system CPU time of this process so far, in clock ticks (1/100 s; Linux).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Interleaved rounds: per-connection p50 and mean of each server, as ratios to the std loop's.
fn connect_rounds(_: &mut Criterion) {
    const ROUNDS: usize = 8;
    const PER_ROUND: usize = 2_000;
    let servers = servers();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); servers.len()];
    let mut ticks = vec![0u64; servers.len()];
    for round in 0..ROUNDS {
        for k in 0..servers.len() {
            let i = (k + round) % servers.len();
            let before = cpu_ticks().unwrap_or(0);
            connect(&*servers[i].1, PER_ROUND, &mut times[i]);
            ticks[i] += cpu_ticks().unwrap_or(0) - before;
        }
    }
    let stats: Vec<(f64, f64, f64)> = times
        .iter_mut()
        .map(|t| {
            t.sort_unstable();
            let at = |q: f64| t[((t.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
            let mean = t.iter().sum::<Duration>().as_secs_f64() * 1e6 / t.len() as f64;
            (at(0.5), at(0.99), mean)
        })
        .collect();
    let n = (ROUNDS * PER_ROUND) as f64;
    let (s50, s99, smean) = stats[0];
    for (i, (name, _)) in servers.iter().enumerate() {
        let (p50, p99, mean) = stats[i];
        println!(
            "connect_rounds {name}: p50 {p50:.1} µs ({:.2}x std), p99 {p99:.1} µs ({:.2}x), \
             mean {mean:.1} µs ({:.2}x), rate {:.0}/s, CPU {:.1} µs per connection (client and \
             server, with the closes)",
            p50 / s50,
            p99 / s99,
            mean / smean,
            1e6 / mean,
            ticks[i] as f64 * 1e4 / n,
        );
    }
}

criterion_group!(benches, accept, connect_rounds);
criterion_main!(benches);
