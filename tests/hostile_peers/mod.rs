//! The hostile peers, protocol-agnostic: what each case sends is given by the caller. A case
//! returns when its peers are gone (or holds them and hands them back); it counts what it
//! sent in a [`Tally`] and fails the test if the server misbehaves towards it (does not
//! close a connection it must close, closes one it must keep, or dies).

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::{ends, WAIT};
use crate::proc_stats::{self, Stats};
use crate::process::alive;
use crate::raw::{self, XorShift};

/// What a server's run went through.
#[derive(Default, Debug)]
pub struct Tally {
    /// Kinds of attack tried.
    pub cases: AtomicU64,
    /// Bad inputs sent: hostile connections, datagrams or frames, each counted once.
    pub bad_inputs: AtomicU64,
    /// Hostile connections the server ended, or outlived when we ended them, while it lived.
    pub faults_survived: AtomicU64,
}

impl Tally {
    pub fn case(&self) {
        self.cases.fetch_add(1, Ordering::Relaxed);
    }

    pub fn bad(&self, n: u64) {
        self.bad_inputs.fetch_add(n, Ordering::Relaxed);
    }

    pub fn survived(&self, n: u64) {
        self.faults_survived.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.cases.load(Ordering::Relaxed),
            self.bad_inputs.load(Ordering::Relaxed),
            self.faults_survived.load(Ordering::Relaxed),
        )
    }
}

/// The server process under attack.
pub struct Target {
    pub name: &'static str,
    pub pid: u32,
    pub addr: SocketAddr,
    pub tally: Tally,
}

impl Target {
    /// Fails the test if the server process has died.
    #[track_caller]
    pub fn check_alive(&self, during: &str) {
        assert!(alive(self.pid), "{} died during {during}", self.name);
    }
}

/// A hostile connection with timeouts: a broken server fails the test, it does not hang it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    raw::connect(addr, WAIT).expect("connect")
}

/// Writes what it can: the server may close (and reset) the connection as soon as it sees
/// the bad part, so a write error is no failure here.
pub fn write_some(s: &TcpStream, bytes: &[u8]) {
    let _ = (&*s).write_all(bytes);
}

/// Each of `inputs` on its own connection, then our FIN: the server must end every one of
/// them (having answered or refused what it could) within [`WAIT`].
pub fn each_then_eof(t: &Target, what: &str, inputs: &[Vec<u8>]) {
    t.tally.case();
    let conns: Vec<TcpStream> = inputs
        .iter()
        .map(|input| {
            let s = connect(t.addr);
            write_some(&s, input);
            let _ = s.shutdown(Shutdown::Write);
            s
        })
        .collect();
    t.tally.bad(inputs.len() as u64);
    for (i, s) in conns.iter().enumerate() {
        assert!(
            ends(s),
            "{}: {what} #{i} ({} bytes): the connection did not end",
            t.name,
            inputs[i].len()
        );
    }
    t.check_alive(what);
    t.tally.survived(inputs.len() as u64);
}

/// Each of `inputs` on its own connection, with no FIN: the server must close each by itself
/// (it is refused on sight: an absurd length, a protocol error).
pub fn each_refused(t: &Target, what: &str, inputs: &[Vec<u8>]) {
    t.tally.case();
    t.tally.bad(inputs.len() as u64);
    for (i, input) in inputs.iter().enumerate() {
        let s = connect(t.addr);
        write_some(&s, input);
        assert!(
            ends(&s),
            "{}: {what} #{i} {:?}: not closed by the server",
            t.name,
            String::from_utf8_lossy(&input[..input.len().min(60)])
        );
    }
    t.check_alive(what);
    t.tally.survived(inputs.len() as u64);
}

/// `count` inputs of seeded random garbage (1 to 4096 bytes, after `prefix`), each on its own
/// connection, then EOF.
pub fn garbage(t: &Target, seed: u64, count: usize, prefix: &[u8]) {
    let mut rng = XorShift::new(seed);
    let inputs: Vec<Vec<u8>> = (0..count)
        .map(|_| {
            let len = 1 + rng.below(4096) as usize;
            let mut v = prefix.to_vec();
            v.extend(rng.bytes(len));
            v
        })
        .collect();
    each_then_eof(t, "garbage", &inputs);
}

/// Valid input cut before its last byte, then EOF; and the same followed by garbage.
pub fn truncated(t: &Target, valid: &[Vec<u8>], seed: u64) {
    let mut rng = XorShift::new(seed);
    let mut inputs = Vec::new();
    for v in valid {
        inputs.push(v[..v.len() - 1].to_vec());
        let mut g = v[..v.len() - 1].to_vec();
        let len = 64 + rng.below(512) as usize;
        g.extend(rng.bytes(len));
        inputs.push(g);
    }
    each_then_eof(t, "valid input cut short", &inputs);
}

/// `count` connections reset (SO_LINGER 0), half right after connecting, half after
/// `partial` (a request cut short).
pub fn reset_storm(t: &Target, count: usize, partial: &[u8]) {
    t.tally.case();
    let start = std::time::Instant::now();
    let (connected, failed) = raw::resets(t.addr, count, partial);
    eprintln!(
        "hostile {}: {count} resets took {:?}",
        t.name,
        start.elapsed()
    );
    t.tally.bad(connected as u64);
    assert_eq!(
        connected, count,
        "{}: {failed} of {count} connections failed",
        t.name
    );
    t.check_alive("a reset storm");
    t.tally.survived(connected as u64);
}

/// Connections that say nothing, or half a request, held for `hold`: the server must keep
/// them open (it has no limit that short), then they close.
pub fn held_open(t: &Target, count: usize, partial: &[u8], hold: Duration) {
    t.tally.case();
    let conns: Vec<TcpStream> = (0..count)
        .map(|i| {
            let s = connect(t.addr);
            if i % 2 == 1 {
                write_some(&s, partial);
            }
            s
        })
        .collect();
    t.tally.bad(count as u64);
    thread::sleep(hold);
    for (i, s) in conns.iter().enumerate() {
        assert!(
            still_open(s),
            "{}: held connection #{i} closed before its time",
            t.name
        );
    }
    // Half of them leave with a FIN after a half-close, half by dropping.
    for (i, s) in conns.iter().enumerate() {
        if i % 2 == 0 {
            let _ = s.shutdown(Shutdown::Write);
            assert!(ends(s), "{}: no EOF after our half-close", t.name);
        }
    }
    drop(conns);
    t.check_alive("held connections");
    t.tally.survived(count as u64);
}

/// True while the peer has neither closed nor reset the stream (it may have sent something:
/// a chat room announces who joins).
pub fn still_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let r = s.peek(&mut [0u8; 1]);
    s.set_nonblocking(false).unwrap();
    match r {
        Ok(n) => n > 0,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

/// Writes `unit` over and over, never reading, until `total` bytes are written or the
/// server stops taking them (a write blocked for `stall`) or closes. Returns the bytes
/// written.
pub fn flood_one(s: &TcpStream, unit: &[u8], total: usize, stall: Duration) -> usize {
    let mut batch = Vec::with_capacity(64 * 1024 + unit.len());
    while batch.len() < 64 * 1024 {
        batch.extend_from_slice(unit);
    }
    s.set_write_timeout(Some(stall)).unwrap();
    let mut written = 0;
    while written < total {
        match (&*s).write(&batch) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break, // stalled (the server reads no more) or closed
        }
    }
    written
}

/// Clients that send requests (`unit`, repeated up to `per_client` bytes each, in parallel)
/// and never read the answers. Returns them, still open, with the bytes written in all.
pub fn never_readers(
    t: &Target,
    count: usize,
    unit: &[u8],
    per_client: usize,
) -> (Vec<TcpStream>, usize) {
    t.tally.case();
    let conns: Vec<TcpStream> = (0..count).map(|_| connect(t.addr)).collect();
    let written: usize = thread::scope(|scope| {
        let jobs: Vec<_> = conns
            .iter()
            .map(|s| {
                scope.spawn(move || flood_one(s, unit, per_client, Duration::from_millis(500)))
            })
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap()).sum()
    });
    t.tally.bad(count as u64);
    t.check_alive("clients that never read");
    (conns, written)
}

/// Polls the server's stats for `hold`, returning the highest RSS seen.
pub fn peak_rss_over(pid: u32, hold: Duration) -> Stats {
    let until = Instant::now() + hold;
    let mut peak = proc_stats::stats(pid);
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(50));
        let now = proc_stats::stats(pid);
        if now.rss_kib > peak.rss_kib {
            peak = now;
        }
    }
    peak
}

// ---------------------------------------------------------------------------------------------
// The well-behaved client

/// One exchange of the good client: `Err` says what went wrong (a lost or wrong answer).
pub type Exchange = Box<dyn FnMut(u64) -> Result<(), String> + Send>;

/// A well-behaved client exchanging in a loop on its own thread until stopped (bounded: at
/// most 60 s and 100 000 exchanges).
pub struct GoodClient {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl GoodClient {
    /// Starts the loop; `make` builds the exchange on the client's thread (connections made
    /// there), and is called again after a failure (a new connection).
    pub fn start(make: impl Fn() -> Exchange + Send + 'static) -> GoodClient {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let (s, o, f) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failures));
        let thread = thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(60);
            let mut exchange = make();
            let mut seq = 0u64;
            while !s.load(Ordering::Relaxed) && Instant::now() < until && seq < 100_000 {
                seq += 1;
                match exchange(seq) {
                    Ok(()) => {
                        o.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        f.lock().unwrap().push(format!("#{seq}: {e}"));
                        exchange = make();
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
        });
        GoodClient {
            stop,
            ok,
            failures,
            thread: Some(thread),
        }
    }

    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `n` more exchanges have succeeded (bounded by [`WAIT`] per exchange).
    #[track_caller]
    pub fn advance(&self, n: u64) {
        let want = self.ok() + n;
        let mut limit = WAIT * n as u32;
        if limit > Duration::from_secs(20) {
            limit = Duration::from_secs(20);
        }
        let start = Instant::now();
        let until = start + limit;
        while self.ok() < want {
            if Instant::now() >= until {
                // Copied first: a panic while the lock is held would poison it for the loop.
                let failures = self.failures.lock().unwrap().clone();
                let made = self.ok().saturating_sub(want - n);
                panic!(
                    "the good client made {made} of {n} exchanges in {:?}; failures: {failures:?}",
                    start.elapsed()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the loop; returns the exchanges that succeeded and what went wrong.
    pub fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("the good client panicked");
        }
        (self.ok(), self.failures.lock().unwrap().clone())
    }
}
