//! What an idle connection costs the `echo_service` example process, read from `/proc/PID`: a
//! connection that never sent a byte costs its parked thread's stack pages and nothing else,
//! and one that did and then went quiet gives its read buffer back.
//!
//! The bugs these guard against: an 8 KiB stack buffer (`io::copy` in a `LengthDelimited` path
//! no default codec takes) was inlined into the reader thread's frame, and stack probes touched
//! it in every thread, idle or not (16 KiB of stack per idle connection, was 8); and the
//! reader's 32 KiB buffer was zero-filled at its first read and kept for the connection's
//! life (51 KiB per connection after one round trip, against 18 for a never-used one).
//!
//! Both hold a few hundred connections in a child process and wait on purpose: silence is
//! what they test (about 3 s of wall time in all).

mod common;
#[path = "common/process.rs"]
mod process;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{frame, read_frame, write_frame, WAIT};
use process::{poll_until, Echo};

/// Connections each test holds: enough that a few KiB each stands out of the noise, few
/// enough for a 1024-descriptor limit with both tests running at once.
const CONNS: usize = 200;

/// An odd stack size (KiB), so that the threads' stacks are the mappings of exactly this size.
const STACK_KIB: u64 = 136;

/// Opens `n` connections to `addr`.
fn open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection #{i}: {e}"));
            s.set_read_timeout(Some(WAIT)).unwrap();
            s
        })
        .collect()
}

/// Descriptors `pid` has open.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// `VmRSS` of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The count of `pid`'s read-write anonymous mappings of `kib` KiB, and their resident KiB
/// in all (from `/proc/PID/smaps`).
fn mappings_of(pid: u32, kib: u64) -> (u64, u64) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let (mut count, mut rss, mut inside) = (0, 0, false);
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((from, to)) = first.split_once('-') {
            let (Ok(from), Ok(to)) = (u64::from_str_radix(from, 16), u64::from_str_radix(to, 16))
            else {
                continue;
            };
            let perms = words.next().unwrap_or("");
            let anonymous = words.nth(3).is_none(); // offset, device, inode, then no path
            inside = perms == "rw-p" && anonymous && to - from == kib * 1024;
            count += inside as u64;
        } else if inside && first == "Rss:" {
            rss += words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    (count, rss)
}

/// Starts echo with `args` and makes one round trip, so its start-up threads are up; the
/// connection is returned open, so that the server's descriptors only grow from here.
fn echo(args: &[&str]) -> (Echo, SocketAddr, TcpStream) {
    let echo = Echo::spawn(Echo::command(args));
    let addr = echo.listening();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&frame(b"up")).unwrap();
    assert_eq!(read_frame(&mut s).unwrap().as_deref(), Some(&b"up"[..]));
    (echo, addr, s)
}

#[test]
fn a_never_used_connection_touches_two_pages_of_stack() {
    let stack = STACK_KIB.to_string();
    let (echo, addr, _up) = echo(&["--addr", "127.0.0.1:0", "--stack-kib", &stack]);
    let pid = echo.pid();
    let before = fds(pid);
    let held = open(addr, CONNS);
    assert!(
        poll_until(WAIT, || fds(pid) >= before + CONNS),
        "the server holds {} of {CONNS} connections",
        fds(pid) - before
    );
    // Every reader thread is parked on its socket once its stack stops growing.
    let mut last = (0, 0);
    poll_until(WAIT, || {
        let now = mappings_of(pid, STACK_KIB);
        let same = now == last;
        last = now;
        same && now.0 >= CONNS as u64
    });
    let (stacks, rss) = last;
    assert!(stacks >= CONNS as u64, "{stacks} stacks of {STACK_KIB} KiB");
    let per = rss as f64 / stacks as f64;
    // Optimised: two pages, the thread's own data at the top and the frames down to the
    // blocking recv; three would mean a stack buffer crept into the reader's frames again (it
    // was four). Unoptimised frames are larger and nothing is inlined: four pages.
    let pages = if cfg!(debug_assertions) { 4.0 } else { 2.0 };
    assert!(
        per <= pages * 4.0,
        "an idle connection's thread has {per:.1} KiB of stack resident, expected {}",
        pages * 4.0
    );
    drop(held);
}

#[test]
fn a_connection_gone_quiet_gives_its_read_buffer_back() {
    let (echo, addr, _up) = echo(&["--addr", "127.0.0.1:0"]);
    let pid = echo.pid();
    let base = rss_kib(pid);
    let mut held = open(addr, CONNS);
    // A frame as large as the read buffer: every page of the buffer is written.
    let payload = vec![7u8; 32 * 1024];
    for s in &mut held {
        write_frame(s, &payload).unwrap();
        assert_eq!(read_frame(s).unwrap().map(|p| p.len()), Some(payload.len()));
    }
    // One peer pauses inside a frame for longer than the reader's patience: it waits on.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(WAIT)).unwrap();
    let half = frame(b"slow");
    slow.write_all(&half[..3]).unwrap();
    let paused = Instant::now();

    let per_conn = || (rss_kib(pid).saturating_sub(base)) as f64 / CONNS as f64;
    // Given back after a second of silence: the connections cost what never-used ones do
    // (10 KiB optimised, 18 not), and no longer their zero-filled 32 KiB buffers (51 KiB).
    let limit = 28.0;
    let given_back = poll_until(WAIT, || per_conn() <= limit);
    let per = per_conn();

    thread::sleep(Duration::from_millis(1500).saturating_sub(paused.elapsed()));
    slow.write_all(&half[3..]).unwrap();
    assert_eq!(
        read_frame(&mut slow).unwrap().as_deref(),
        Some(&b"slow"[..])
    );
    // And a rested connection gets a buffer again at its next byte.
    for s in held.iter_mut().take(20) {
        write_frame(s, &payload).unwrap();
        assert_eq!(read_frame(s).unwrap().map(|p| p.len()), Some(payload.len()));
    }
    assert!(
        given_back,
        "{per:.1} KiB per connection {:?} after its round trip, expected at most {limit}",
        WAIT
    );
}
