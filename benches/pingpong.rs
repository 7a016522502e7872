//! Round trip of one 4096-byte length-delimited frame over loopback, one frame in flight,
//! on a connection set up before the timed loop:
//!
//! * `threadnet_server+threadnet_client`: a threadnet [`TcpServer`] echo and a threadnet
//!   [`TcpClient`], whose handler hands each reply to the benchmark thread over a channel.
//! * `threadnet_server+blocking_client`: the same server, driven by a [`BlockingClient`]'s
//!   `request` from the benchmark thread (send, then read and decode the reply on that same
//!   thread: a blocking client has no reader thread).
//! * `threadnet_server+std_client`: the same server, driven by a blocking std client.
//! * `std_server+std_client`: the baseline: a std thread that echoes with `read_exact` and
//!   `write_all`, driven by the same std client.
//!
//! Every socket has `TCP_NODELAY` set, as threadnet's are by default.
//!
//! After the criterion group, `request_latency` prints the p50, p99 and mean of a
//! `BlockingClient` round trip, made with `request` and with `send` then `recv_timeout` (the
//! same reads on the caller's thread), and of the std client's round trip against the same
//! server: 6 interleaved rounds of 5 000 round trips each, percentiles over all of them, the
//! first client of a round alternating. The target is a `request` p50 within 1.2x the std
//! client's.
//!
//! ```sh
//! cargo bench --bench pingpong
//! taskset -c 0 cargo bench --bench pingpong -- request_latency   # the software cost alone
//! ```
//!
//! On a VM with two vCPUs and nothing else running, which loop runs first matters more than
//! either client: each connection's server thread stays on one CPU, and whichever client's
//! server thread shares the benchmark thread's CPU gets round trips of about 5 µs while the
//! other's cross to a halted vCPU and take 60-70 µs, swapping when the order swaps (seen
//! with std against std as well). Hence the alternating order; and pinned to one CPU
//! (`taskset -c 0`) or on a busy machine, both sides pay the same wake-ups and the ratio is
//! threadnet's own cost.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use threadnet::{
    codec::LengthDelimited, BlockingClient, Connection, ServerHandle, TcpClient, TcpServer,
};

const PAYLOAD: usize = 4096;
const TIMEOUT: Duration = Duration::from_secs(5);

/// The echo server of `examples/echo.rs`: reply from `on_message`, written through.
fn threadnet_server() -> ServerHandle<LengthDelimited> {
    TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), |_: &Connection<LengthDelimited>| {
            |conn: &Connection<LengthDelimited>, frame: Vec<u8>| {
                let _ = conn.send(frame);
            }
        })
        .expect("start the threadnet server")
}

/// A std echo server for one connection, on its own thread; it ends when the client closes.
fn std_server() -> (SocketAddr, JoinHandle<io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the std server");
    let addr = listener.local_addr().unwrap();
    let thread = thread::spawn(move || {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut frame = vec![0u8; 4];
        loop {
            frame.resize(4, 0);
            match s.read_exact(&mut frame) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
            let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
            frame.resize(4 + len, 0);
            s.read_exact(&mut frame[4..])?;
            s.write_all(&frame)?;
        }
    });
    (addr, thread)
}

/// A blocking std client: one write of the whole frame, then `read_exact` of the reply.
struct StdClient {
    stream: TcpStream,
    frame: Vec<u8>,
    reply: Vec<u8>,
}

impl StdClient {
    fn connect(addr: SocketAddr) -> StdClient {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut frame = (PAYLOAD as u32).to_be_bytes().to_vec();
        frame.extend((0..PAYLOAD).map(|i| i as u8));
        let reply = vec![0u8; frame.len()];
        StdClient {
            stream,
            frame,
            reply,
        }
    }

    fn round_trip(&mut self) {
        self.stream.write_all(&self.frame).unwrap();
        self.stream.read_exact(&mut self.reply).unwrap();
    }

    fn check(&mut self) {
        self.round_trip();
        assert_eq!(
            self.reply, self.frame,
            "the echo differs from the frame sent"
        );
    }
}

fn pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("pingpong_4KiB");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    // (a) threadnet server, threadnet client.
    let server = threadnet_server();
    let (tx, replies) = mpsc::channel::<Vec<u8>>();
    let client = TcpClient::builder()
        .connect(
            server.local_addr(),
            LengthDelimited::new(),
            move |_: &Connection<LengthDelimited>| {
                let tx = tx.clone();
                move |_: &Connection<LengthDelimited>, frame: Vec<u8>| {
                    let _ = tx.send(frame);
                }
            },
        )
        .expect("connect the threadnet client");
    let conn = client.connection().expect("connected");
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| i as u8).collect();
    let round_trip = || {
        conn.send(payload.clone()).unwrap();
        replies.recv_timeout(TIMEOUT).unwrap()
    };
    assert_eq!(
        round_trip(),
        payload,
        "the echo differs from the frame sent"
    );
    g.bench_function("threadnet_server+threadnet_client", |b| b.iter(&round_trip));
    client.stop(TIMEOUT);

    // (a2) threadnet server, blocking client.
    let blocking = BlockingClient::connect(server.local_addr(), LengthDelimited::new())
        .expect("connect the blocking client");
    let request = || blocking.request(payload.clone(), TIMEOUT).unwrap();
    assert_eq!(request(), payload, "the echo differs from the frame sent");
    g.bench_function("threadnet_server+blocking_client", |b| b.iter(&request));
    drop(blocking);

    // (b) threadnet server, std client.
    let mut std_client = StdClient::connect(server.local_addr().as_inet().expect("a TCP server"));
    std_client.check();
    g.bench_function("threadnet_server+std_client", |b| {
        b.iter(|| std_client.round_trip())
    });
    drop(std_client);
    server.stop(TIMEOUT);

    // (c) std server, std client: the baseline.
    let (addr, std_thread) = std_server();
    let mut std_client = StdClient::connect(addr);
    std_client.check();
    g.bench_function("std_server+std_client", |b| {
        b.iter(|| std_client.round_trip())
    });
    drop(std_client); // EOF: the server thread returns
    std_thread
        .join()
        .expect("std server thread")
        .expect("std server I/O");

    g.finish();
}

/// The p50, p99 and mean of `samples`, in µs.
fn percentiles(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / samples.len() as f64;
    (at(0.50), at(0.99), mean)
}

/// Round-trip percentiles: `BlockingClient::request` against the std client, interleaved.
fn request_latency(_: &mut Criterion) {
    const ROUNDS: usize = 6;
    const PER_ROUND: usize = 5_000;
    let server = threadnet_server();
    let blocking =
        BlockingClient::connect(server.local_addr(), LengthDelimited::new()).expect("connect");
    let mut std_client = StdClient::connect(server.local_addr().as_inet().expect("TCP"));
    std_client.check();
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| i as u8).collect();
    let (mut ours, mut asleep, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let mut std_loop = || {
            for _ in 0..PER_ROUND {
                let t = Instant::now();
                std_client.round_trip();
                theirs.push(t.elapsed());
            }
        };
        if round % 2 == 1 {
            std_loop();
        }
        for _ in 0..PER_ROUND {
            let t = Instant::now();
            blocking.request(payload.clone(), TIMEOUT).unwrap();
            ours.push(t.elapsed());
        }
        for _ in 0..PER_ROUND {
            let t = Instant::now();
            blocking.send(payload.clone()).unwrap();
            blocking.recv_timeout(TIMEOUT).unwrap();
            asleep.push(t.elapsed());
        }
        if round % 2 == 0 {
            std_loop();
        }
    }
    let (p50, p99, mean) = percentiles(&mut ours);
    let (a50, a99, amean) = percentiles(&mut asleep);
    let (s50, s99, smean) = percentiles(&mut theirs);
    println!(
        "request_latency (4 KiB, threadnet echo server, {ROUNDS}x{PER_ROUND} interleaved): \
         blocking_client p50 {p50:.1} µs p99 {p99:.1} µs mean {mean:.1} µs; \
         blocking_send_recv p50 {a50:.1} µs p99 {a99:.1} µs mean {amean:.1} µs; \
         std_client p50 {s50:.1} µs p99 {s99:.1} µs mean {smean:.1} µs; \
         ratio p50 {:.2}x p99 {:.2}x mean {:.2}x",
        p50 / s50,
        p99 / s99,
        mean / smean
    );
    drop(blocking);
    drop(std_client);
    server.stop(TIMEOUT);
}

criterion_group!(benches, pingpong, request_latency);
criterion_main!(benches);
