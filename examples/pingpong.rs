//! The main demo: threadnet against plain std sockets, in one process, on loopback.
//!
//! ```sh
//! cargo run --release --example pingpong                       # both scenarios, ~45 s
//! cargo run --release --example pingpong -- --scenario knet --secs 3 --json
//! ```
//!
//! Two scenarios, each run twice: with threadnet (a `TcpServer` and `TcpClient`s, handlers that
//! reply from `on_message`) and with a raw-std baseline written the obvious way (a thread per
//! connection on each side, `BufReader` reads, one `write_all` per reply).
//!
//! * `framed`: 4-byte big-endian length-delimited frames of `--size` bytes (4096), one in
//!   flight per connection, for 1 and 16 connections. Reports MiB/s and frames/s (one
//!   direction) and the round-trip time p50/p99 in microseconds. threadnet's side uses the
//!   `LengthChunks` codec by default (each frame read into a recycled buffer, sent back as it
//!   is: no allocation per frame, as the std loop reuses its one buffer); `--frames vec` runs
//!   it on `LengthDelimited` instead (a new `Vec<u8>` per frame, owned by the handler). The
//!   table's title line says which ran.
//! * `knet`: knet's own pingpong test. 10 connections; each client sends one 16 KiB block on
//!   connect; server and client echo every chunk they read (the `RawChunks` codec: chunks in
//!   recycled buffers, sent back as they are), `TCP_NODELAY`, 10 s. Throughput = bytes read by
//!   the clients / time. The last line recalls knet's own figures, measured once elsewhere
//!   (its date and machine are printed with it).
//!
//! Besides throughput, each row gives the process's CPU time per message (`cpu us/msg`, from
//! `/proc/self/stat` on Linux): server and clients share the machine's cores, so when they are
//! saturated, CPU per message is what throughput is made of, and unlike throughput it does not
//! move when other programs take CPU time. `vs std` and `cpu vs std` compare the two.
//!
//! Flags: `--rounds N` (run every case N times, threadnet and std alternating, and report
//! medians: single runs on a shared machine vary by 10-20%), `--secs N` (every run; default 5
//! for framed, 10 for knet), `--conns A,B,..`,
//! `--size BYTES`, `--scenario framed|knet|all`, `--impl threadnet|std|both` (one side alone,
//! for profiling), `--frames pooled|vec` (the framed codec, above), `--json` (adds one JSON
//! object per result row on its own line). A progress line is drawn on stderr; the table goes to stdout.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use threadnet::{
    codec::{Chunk, LengthChunks, LengthDelimited, RawChunks},
    Codec, Connection, Handler, TcpClient, TcpServer,
};

/// Runs before the measured window starts.
const WARMUP: Duration = Duration::from_millis(500);
/// Read buffer of the raw-std baseline, equal to threadnet's default read buffer.
const READ_BUF: usize = 32 * 1024;
/// knet's figures for the same scenario, measured once (not by this program, and not on the
/// machine it runs on): Go is not needed to run the demo.
const KNET_GO: &str =
    "knet (Go), same scenario, measured by hand by 2026-11-21 on a 2-core VM, not on \
     this machine: 386, 456, 440 MiB/s over three runs";

struct Args {
    rounds: usize,
    secs: Option<u64>,
    conns: Option<Vec<usize>>,
    size: Option<usize>,
    scenario: String,
    imp: String,
    /// The framed codec on threadnet's side: `pooled` (`LengthChunks`) or `vec`
    /// (`LengthDelimited`).
    frames: String,
    json: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        rounds: 1,
        secs: None,
        conns: None,
        size: None,
        scenario: "all".into(),
        imp: "both".into(),
        frames: "pooled".into(),
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--secs" => a.secs = Some(val().parse().unwrap_or_else(|_| usage("bad --secs"))),
            "--rounds" => {
                a.rounds = val().parse().unwrap_or_else(|_| usage("bad --rounds"));
                if a.rounds == 0 {
                    usage("--rounds is at least 1");
                }
            }
            "--size" => a.size = Some(val().parse().unwrap_or_else(|_| usage("bad --size"))),
            "--conns" => {
                let list = val()
                    .split(',')
                    .map(|c| c.trim().parse().unwrap_or_else(|_| usage("bad --conns")))
                    .collect();
                a.conns = Some(list);
            }
            "--scenario" => {
                a.scenario = val();
                if !matches!(a.scenario.as_str(), "framed" | "knet" | "all") {
                    usage("--scenario is framed, knet or all");
                }
            }
            "--impl" => {
                a.imp = val();
                if !matches!(a.imp.as_str(), "threadnet" | "std" | "both") {
                    usage("--impl is threadnet, std or both");
                }
            }
            "--frames" => {
                a.frames = val();
                if !matches!(a.frames.as_str(), "pooled" | "vec") {
                    usage("--frames is pooled or vec");
                }
            }
            "--json" => a.json = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    a
}

fn usage(why: &str) -> ! {
    if !why.is_empty() {
        eprintln!("pingpong: {why}");
    }
    eprintln!(
        "usage: pingpong [--rounds N] [--secs N] [--conns A,B,..] [--size BYTES] \
         [--scenario framed|knet|all] [--impl threadnet|std|both] [--frames pooled|vec] [--json]"
    );
    std::process::exit(2)
}

/// One row of the result table.
#[derive(Clone, Copy)]
struct Row {
    scenario: &'static str,
    imp: &'static str,
    conns: usize,
    size: usize,
    mib_s: f64,
    msgs_s: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    /// CPU time of the whole process (server and clients) per message, in microseconds: robust
    /// to other load on the machine, unlike throughput.
    cpu_us: Option<f64>,
}

fn main() {
    let args = parse_args();
    let mut runs = Vec::new();
    for _ in 0..args.rounds {
        if args.scenario != "knet" {
            let size = args.size.unwrap_or(4096);
            let secs = Duration::from_secs(args.secs.unwrap_or(5));
            for &conns in args.conns.as_deref().unwrap_or(&[1, 16]) {
                if args.imp != "std" && args.frames == "pooled" {
                    runs.push(framed_threadnet(LengthChunks::new(), conns, size, secs));
                }
                if args.imp != "std" && args.frames == "vec" {
                    runs.push(framed_threadnet(LengthDelimited::new(), conns, size, secs));
                }
                if args.imp != "threadnet" {
                    runs.push(framed_std(conns, size, secs));
                }
            }
        }
        if args.scenario != "framed" {
            let size = args.size.unwrap_or(16 * 1024);
            let secs = Duration::from_secs(args.secs.unwrap_or(10));
            for &conns in args.conns.as_deref().unwrap_or(&[10]) {
                if args.imp != "std" {
                    runs.push(knet_threadnet(conns, size, secs));
                }
                if args.imp != "threadnet" {
                    runs.push(knet_std(conns, size, secs));
                }
            }
        }
    }
    let rows = medians(runs);
    eprint!("\r{:70}\r", "");
    if args.rounds > 1 {
        println!(
            "median of {} rounds, threadnet and std alternating",
            args.rounds
        );
    }
    if args.scenario != "knet" && args.imp != "std" {
        println!(
            "framed: threadnet on {}",
            if args.frames == "pooled" {
                "LengthChunks (each frame in a recycled buffer, sent back as it is)"
            } else {
                "LengthDelimited (a new Vec<u8> per frame)"
            }
        );
    }
    print_table(&rows);
    if args.json {
        for r in &rows {
            println!("{}", json(r));
        }
    }
}

/// One row per (scenario, impl, conns, size), each figure the median of its runs, in the
/// order the rows first appear.
fn medians(runs: Vec<Row>) -> Vec<Row> {
    let mut groups: Vec<Vec<Row>> = Vec::new();
    for r in runs {
        let same = |g: &&mut Vec<Row>| {
            let f = &g[0];
            (f.scenario, f.imp, f.conns, f.size) == (r.scenario, r.imp, r.conns, r.size)
        };
        match groups.iter_mut().find(same) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let med = |f: fn(&Row) -> Option<f64>| {
                let mut v: Vec<f64> = g.iter().filter_map(f).collect();
                v.sort_by(f64::total_cmp);
                (!v.is_empty()).then(|| v[v.len() / 2])
            };
            Row {
                mib_s: med(|r| Some(r.mib_s)).unwrap_or(0.0),
                msgs_s: med(|r| Some(r.msgs_s)).unwrap_or(0.0),
                p50_us: med(|r| r.p50_us),
                p99_us: med(|r| r.p99_us),
                cpu_us: med(|r| r.cpu_us),
                ..g[0]
            }
        })
        .collect()
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<9}{:<11}{:>6}{:>8}{:>10}{:>11}{:>9}{:>9}{:>12}{:>9}{:>12}",
        "scenario",
        "impl",
        "conns",
        "size",
        "MiB/s",
        "msgs/s",
        "p50 us",
        "p99 us",
        "cpu us/msg",
        "vs std",
        "cpu vs std"
    );
    for (i, r) in rows.iter().enumerate() {
        let base = rows[i..]
            .iter()
            .chain(rows[..i].iter())
            .find(|b| b.imp == "std" && b.scenario == r.scenario && b.conns == r.conns);
        let ratio = match base {
            Some(b) if r.imp != "std" && b.mib_s > 0.0 => format!("{:.2}x", r.mib_s / b.mib_s),
            _ => String::new(),
        };
        // Messages per CPU second, as a ratio: how throughput compares when CPU is the limit.
        let cpu_ratio = match (base.and_then(|b| b.cpu_us), r.cpu_us) {
            (Some(b), Some(t)) if r.imp != "std" && t > 0.0 => format!("{:.2}x", b / t),
            _ => String::new(),
        };
        let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        println!(
            "{:<9}{:<11}{:>6}{:>8}{:>10.1}{:>11.0}{:>9}{:>9}{:>12}{:>9}{:>12}",
            r.scenario,
            r.imp,
            r.conns,
            r.size,
            r.mib_s,
            r.msgs_s,
            us(r.p50_us),
            us(r.p99_us),
            us(r.cpu_us),
            ratio,
            cpu_ratio
        );
    }
    if rows.iter().any(|r| r.scenario == "knet") {
        println!("{KNET_GO}");
    }
}

fn json(r: &Row) -> String {
    let opt = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.1}"));
    format!(
        "{{\"scenario\":\"{}\",\"impl\":\"{}\",\"conns\":{},\"size\":{},\"mib_s\":{:.1},\
         \"msgs_s\":{:.0},\"p50_us\":{},\"p99_us\":{},\"cpu_us_per_msg\":{}}}",
        r.scenario,
        r.imp,
        r.conns,
        r.size,
        r.mib_s,
        r.msgs_s,
        opt(r.p50_us),
        opt(r.p99_us),
        opt(r.cpu_us)
    )
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (Linux; `None`
/// elsewhere). Fields 14 and 15 count clock ticks of 1/100 s (`USER_HZ`).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it start past its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Measures the process's CPU time over `window` on a thread of its own.
fn cpu_over(window: Window) -> thread::JoinHandle<Option<Duration>> {
    thread::spawn(move || {
        thread::sleep(window.start.saturating_duration_since(Instant::now()));
        let before = process_cpu()?;
        thread::sleep(window.end.saturating_duration_since(Instant::now()));
        Some(process_cpu()? - before)
    })
}

/// One measured run: its window, the bytes counted in it (drawn by the progress line), and
/// the process's CPU time over it.
struct Run {
    window: Window,
    bytes: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    cpu: thread::JoinHandle<Option<Duration>>,
}

impl Run {
    /// Starts the progress line and the CPU measurement; the window opens after the warm-up.
    fn start(label: String, secs: Duration) -> Run {
        let window = Window::new(secs);
        let bytes = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        progress(label, secs, bytes.clone(), done.clone());
        Run {
            window,
            bytes,
            done,
            cpu: cpu_over(window),
        }
    }

    /// Stops the progress line; returns CPU microseconds per message for `msgs` messages.
    fn end(self, msgs: f64) -> Option<f64> {
        self.done.store(true, Ordering::Relaxed);
        let cpu = self.cpu.join().ok()??;
        (msgs > 0.0).then(|| cpu.as_secs_f64() * 1e6 / msgs)
    }
}

/// Draws a progress line on stderr until `done`, from the byte counter `bytes`.
fn progress(label: String, secs: Duration, bytes: Arc<AtomicU64>, done: Arc<AtomicBool>) {
    thread::spawn(move || {
        let start = Instant::now();
        let mut last = (start, bytes.load(Ordering::Relaxed));
        while !done.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(250));
            let now = Instant::now();
            let b = bytes.load(Ordering::Relaxed);
            let rate = (b - last.1) as f64 / now.duration_since(last.0).as_secs_f64() / MIB;
            last = (now, b);
            let t = now
                .duration_since(start)
                .as_secs_f64()
                .min(secs.as_secs_f64() + 0.5);
            eprint!(
                "\r{label:<28} {t:5.1}/{:.1} s {rate:9.1} MiB/s   ",
                secs.as_secs_f64() + 0.5
            );
        }
    });
}

const MIB: f64 = 1024.0 * 1024.0;

fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[i] as f64 / 1000.0)
}

/// Per-client results of a framed run: round trips in ns inside the window.
struct Stats {
    rtts_ns: Vec<u32>,
}

fn framed_row(
    imp: &'static str,
    (conns, size, secs): (usize, usize, Duration),
    all: Vec<Stats>,
    run: Run,
) -> Row {
    let mut rtts: Vec<u32> = all.into_iter().flat_map(|s| s.rtts_ns).collect();
    rtts.sort_unstable();
    let frames = rtts.len() as f64 / secs.as_secs_f64();
    Row {
        cpu_us: run.end(rtts.len() as f64),
        scenario: "framed",
        imp,
        conns,
        size,
        mib_s: frames * size as f64 / MIB,
        msgs_s: frames,
        p50_us: percentile(&rtts, 0.50),
        p99_us: percentile(&rtts, 0.99),
    }
}

/// The measured window of one run.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn new(secs: Duration) -> Window {
        let start = Instant::now() + WARMUP;
        Window {
            start,
            end: start + secs,
        }
    }
}

// ---------------------------------------------------------------- framed, threadnet

/// A framed client: sends a frame, waits for its echo, records the round trip, repeats until
/// the window ends, then reports and closes. Generic over the codec's message: a `Chunk`
/// (`LengthChunks`) or a `Vec<u8>` (`LengthDelimited`); the echo is sent back as it came.
struct FramedClient {
    size: usize,
    window: Window,
    sent: Instant,
    rtts_ns: Vec<u32>,
    bytes: Arc<AtomicU64>,
    done: mpsc::Sender<Stats>,
}

/// A framed codec whose message is its own reply: `LengthChunks` or `LengthDelimited`.
trait Framed: Codec<In = Self::Msg, Out = Self::Msg> {
    type Msg: From<Vec<u8>> + std::ops::Deref<Target = [u8]> + Send + 'static;
}

impl Framed for LengthChunks {
    type Msg = Chunk;
}

impl Framed for LengthDelimited {
    type Msg = Vec<u8>;
}

impl<C: Framed> Handler<C> for FramedClient {
    fn on_connect(&mut self, conn: &Connection<C>) {
        self.sent = Instant::now();
        let _ = conn.send(C::Msg::from(vec![7u8; self.size]));
    }

    fn on_message(&mut self, conn: &Connection<C>, frame: C::Msg) {
        let now = Instant::now();
        assert_eq!(frame.len(), self.size, "echo changed the frame length");
        if now >= self.window.end {
            let rtts_ns = std::mem::take(&mut self.rtts_ns);
            let _ = self.done.send(Stats { rtts_ns });
            conn.close();
            return;
        }
        if now >= self.window.start {
            self.rtts_ns
                .push(now.duration_since(self.sent).as_nanos() as u32);
            self.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
        }
        self.sent = now;
        let _ = conn.send(frame);
    }
}

fn echo<C: Codec<Out = M, In = M>, M: Send + 'static>(conn: &Connection<C>, msg: M) {
    let _ = conn.send(msg);
}

fn framed_threadnet<C: Framed>(codec: C, conns: usize, size: usize, secs: Duration) -> Row {
    let server = TcpServer::builder()
        .start(codec.clone(), |_: &Connection<C>| echo::<C, C::Msg>)
        .expect("start server");
    let (tx, rx) = mpsc::channel();
    let run = Run::start(format!("framed threadnet c={conns}"), secs);
    let window = run.window;
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let (tx, bytes) = (tx.clone(), run.bytes.clone());
            TcpClient::builder()
                .connect(
                    server.local_addr(),
                    codec.clone(),
                    move |_: &Connection<C>| FramedClient {
                        size,
                        window,
                        sent: Instant::now(),
                        rtts_ns: Vec::new(),
                        bytes: bytes.clone(),
                        done: tx.clone(),
                    },
                )
                .expect("connect")
        })
        .collect();
    let all: Vec<Stats> = (0..conns)
        .map(|_| rx.recv().expect("client stats"))
        .collect();
    for c in &clients {
        c.stop(Duration::from_secs(1));
    }
    server.stop(Duration::from_secs(1));
    framed_row("threadnet", (conns, size, secs), all, run)
}

// ---------------------------------------------------------------- framed, raw std

/// Accepts `conns` connections and serves each on its own thread with `serve`.
fn std_server(conns: usize, serve: fn(TcpStream)) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let t = thread::spawn(move || {
        let handles: Vec<_> = (0..conns)
            .map(|_| {
                let (s, _) = listener.accept().expect("accept");
                s.set_nodelay(true).expect("nodelay");
                thread::spawn(move || serve(s))
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
    });
    (addr, t)
}

fn std_framed_echo(s: TcpStream) {
    let mut rd = BufReader::with_capacity(READ_BUF, &s);
    let mut frame = Vec::new();
    loop {
        let mut hdr = [0u8; 4];
        if rd.read_exact(&mut hdr).is_err() {
            return;
        }
        let len = u32::from_be_bytes(hdr) as usize;
        frame.clear();
        frame.extend_from_slice(&hdr);
        frame.resize(4 + len, 0);
        if rd.read_exact(&mut frame[4..]).is_err() || (&s).write_all(&frame).is_err() {
            return;
        }
    }
}

fn framed_std(conns: usize, size: usize, secs: Duration) -> Row {
    let (addr, server) = std_server(conns, std_framed_echo);
    let run = Run::start(format!("framed std c={conns}"), secs);
    let window = run.window;
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let bytes = run.bytes.clone();
            thread::spawn(move || std_framed_client(addr, size, window, &bytes))
        })
        .collect();
    let all: Vec<Stats> = clients
        .into_iter()
        .map(|h| h.join().expect("client"))
        .collect();
    let _ = server.join();
    framed_row("std", (conns, size, secs), all, run)
}

fn std_framed_client(addr: SocketAddr, size: usize, w: Window, bytes: &AtomicU64) -> Stats {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut rd = BufReader::with_capacity(READ_BUF, &s);
    let mut frame = (size as u32).to_be_bytes().to_vec();
    frame.resize(4 + size, 7);
    let mut back = vec![0u8; 4 + size];
    let mut rtts_ns = Vec::new();
    loop {
        let sent = Instant::now();
        (&s).write_all(&frame).expect("write");
        rd.read_exact(&mut back).expect("read");
        let now = Instant::now();
        assert_eq!(back[..4], frame[..4], "echo changed the frame length");
        if now >= w.end {
            return Stats { rtts_ns };
        }
        if now >= w.start {
            rtts_ns.push(now.duration_since(sent).as_nanos() as u32);
            bytes.fetch_add(size as u64, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------- knet

/// Counts what the clients read inside the window.
#[derive(Clone)]
struct Counter {
    window: Window,
    bytes: Arc<AtomicU64>,
    chunks: Arc<AtomicU64>,
}

impl Counter {
    fn new(run: &Run) -> Counter {
        Counter {
            window: run.window,
            bytes: run.bytes.clone(),
            chunks: Arc::new(AtomicU64::new(0)),
        }
    }

    fn add(&self, n: usize) {
        let now = Instant::now();
        if now >= self.window.start && now < self.window.end {
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            self.chunks.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn wait_end(&self) {
        thread::sleep(self.window.end.saturating_duration_since(Instant::now()));
    }

    fn row(&self, run: Run, imp: &'static str, conns: usize, size: usize, secs: Duration) -> Row {
        let s = secs.as_secs_f64();
        let chunks = self.chunks.load(Ordering::Relaxed) as f64;
        Row {
            cpu_us: run.end(chunks),
            scenario: "knet",
            imp,
            conns,
            size,
            mib_s: self.bytes.load(Ordering::Relaxed) as f64 / s / MIB,
            msgs_s: self.chunks.load(Ordering::Relaxed) as f64 / s,
            p50_us: None,
            p99_us: None,
        }
    }
}

/// knet's client: send one block on connect, then echo every chunk read.
struct KnetClient {
    block: usize,
    counter: Counter,
}

impl Handler<RawChunks> for KnetClient {
    fn on_connect(&mut self, conn: &Connection<RawChunks>) {
        let _ = conn.send(Chunk::from(vec![1u8; self.block]));
    }

    fn on_message(&mut self, conn: &Connection<RawChunks>, chunk: Chunk) {
        self.counter.add(chunk.len());
        let _ = conn.send(chunk);
    }
}

fn knet_threadnet(conns: usize, size: usize, secs: Duration) -> Row {
    let server = TcpServer::builder()
        .start(RawChunks::new(), |_: &Connection<RawChunks>| {
            |conn: &Connection<RawChunks>, chunk: Chunk| {
                let _ = conn.send(chunk);
            }
        })
        .expect("start server");
    let run = Run::start(format!("knet threadnet c={conns}"), secs);
    let counter = Counter::new(&run);
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let counter = counter.clone();
            TcpClient::builder()
                .connect(
                    server.local_addr(),
                    RawChunks::new(),
                    move |_: &Connection<RawChunks>| KnetClient {
                        block: size,
                        counter: counter.clone(),
                    },
                )
                .expect("connect")
        })
        .collect();
    counter.wait_end();
    for c in &clients {
        if let Some(conn) = c.connection() {
            conn.close();
        }
    }
    drop(clients);
    server.stop(Duration::from_secs(1));
    counter.row(run, "threadnet", conns, size, secs)
}

fn std_raw_echo(s: TcpStream) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match (&s).read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if (&s).write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn knet_std(conns: usize, size: usize, secs: Duration) -> Row {
    let (addr, server) = std_server(conns, std_raw_echo);
    let run = Run::start(format!("knet std c={conns}"), secs);
    let counter = Counter::new(&run);
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            let counter = counter.clone();
            thread::spawn(move || -> io::Result<()> {
                let s = TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                (&s).write_all(&vec![1u8; size])?;
                let mut buf = vec![0u8; READ_BUF];
                while Instant::now() < counter.window.end {
                    let n = (&s).read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    counter.add(n);
                    (&s).write_all(&buf[..n])?;
                }
                Ok(())
            })
        })
        .collect();
    for c in clients {
        let _ = c.join();
    }
    let _ = server.join();
    counter.row(run, "std", conns, size, secs)
}
