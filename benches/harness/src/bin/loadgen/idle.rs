//! The idle mode: what a connection that does nothing costs the server.
//!
//! It reads the server's footprint in `/proc`, opens `--conns` connections (with `--touch`,
//! one round trip on each, so the server has allocated whatever a used connection keeps),
//! waits until the server holds them all, reads the footprint again, and reports the
//! difference per connection. The curve mode (`curve.rs`) starts the same way.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use threadnet_harness::json::Line;
use threadnet_harness::procfs::{fd_count, footprint, task_struct_bytes, Footprint};
use threadnet_harness::wire::frame;

use crate::{connect, error_line, Options};

/// Most connections opened before the server has accepted them. A std listener's backlog is
/// 128; past it the kernel drops SYNs and a connect stalls for the 1 s SYN retransmit.
const UNACCEPTED: u64 = 64;

/// Connections opened between two looks at the server's descriptors: at most
/// `UNACCEPTED + CHECK_EVERY` wait to be accepted, still under the backlog.
const CHECK_EVERY: u64 = 16;

/// Connections opened and settled, with the server's footprint before and after.
pub struct Held {
    /// The open connections, in the order they were opened.
    pub streams: Vec<TcpStream>,
    /// Whether each made one round trip.
    pub touched: bool,
    /// Seconds from the first connect to the last (each with its round trip, if touched).
    pub connect_secs: f64,
    /// When the last connection was opened.
    pub connected: Instant,
    /// The server before the first connect.
    pub before: Footprint,
    /// The server once it held them all (or gave up: see `failure`), settled.
    pub after: Footprint,
    /// What went wrong, if anything: a connect that failed, a server that holds fewer.
    pub failure: Option<String>,
}

/// Runs the idle measurement, then gives the run's JSON line (`Err` when it went wrong).
pub fn run(o: &Options) -> Result<String, String> {
    let held = hold(o, o.touch)?;
    thread::sleep(
        (held.connected + Duration::from_secs_f64(o.hold_secs))
            .saturating_duration_since(Instant::now()),
    );
    let mut line =
        footprint_fields(idle_line(o), &held).num("errors", held.failure.is_some() as u8 as f64, 0);
    if let Some(e) = &held.failure {
        line = line.str("first_error", e);
    }
    let line = line.finish();
    if held.failure.is_none() {
        Ok(line)
    } else {
        Err(line)
    }
}

/// Opens `--conns` connections to the server `--pid` (each with one round trip when
/// `touch`), waits until the server holds them all, and reads its footprint before and
/// after. `Err` (a JSON line) only when the server's `/proc` entry cannot be read.
pub fn hold(o: &Options, touch: bool) -> Result<Held, String> {
    let pid = o
        .pid
        .ok_or_else(|| error_line(o, &format!("{} needs --pid SERVER_PID", o.mode)))?;
    let gone = || {
        error_line(
            o,
            &format!("cannot read /proc/{pid}: is the server running?"),
        )
    };
    let before = footprint(pid).ok_or_else(gone)?;

    let began = Instant::now();
    let mut streams = Vec::with_capacity(o.conns);
    let mut failure = None;
    let hello = frame(&[7; 16]);
    let mut echo = vec![0; hello.len()];
    let mut pacing = !touch; // a round trip already waits for the accept
    for i in 0..o.conns as u64 {
        // Counting the server's descriptors reads a directory of them all: not at every connect.
        // A server that does not keep up within 2 s (or closes idle connections) is not waited
        // for again; the report shows how many connections it held.
        if pacing && i >= UNACCEPTED && i % CHECK_EVERY == 0 {
            pacing = wait_for_fds(pid, before.fds + i - UNACCEPTED, Duration::from_secs(2));
        }
        let opened = connect(o.addr).and_then(|mut s| {
            if touch {
                s.write_all(&hello)?;
                s.read_exact(&mut echo)?;
            }
            Ok(s)
        });
        match opened {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                failure = Some(format!("connection #{i}: {e}"));
                break;
            }
        }
    }
    let connect_secs = began.elapsed().as_secs_f64();
    let count = streams.len() as u64;
    let connected = Instant::now();

    // Let the server settle (threads started, stacks touched), and hold them all.
    thread::sleep(Duration::from_secs(1));
    wait_for_fds(pid, before.fds + count, Duration::from_secs(5));
    let after = footprint(pid).ok_or_else(gone)?;
    if failure.is_none() && after.fds < before.fds + count {
        let open = after.fds.saturating_sub(before.fds);
        failure = Some(format!(
            "the server holds {open} of the {count} connections"
        ));
    }
    Ok(Held {
        streams,
        touched: touch,
        connect_secs,
        connected,
        before,
        after,
        failure,
    })
}

/// Waits, up to `limit`, until the server has at least `fds` descriptors open; false if it
/// still has fewer.
fn wait_for_fds(pid: u32, fds: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match fd_count(pid) {
            Some(n) if n < fds => {}
            _ => return true,
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn idle_line(o: &Options) -> Line {
    Line::default()
        .str("mode", "idle")
        .str("tag", &o.tag)
        .num("conns", o.conns as f64, 0)
}

/// Adds what the connections in `held` cost the server, per connection, to `line`: RSS,
/// threads, descriptors and kernel memory; but not `errors`: the caller adds those,
/// `held.failure` among them.
///
/// Kernel memory (`kernel_kib_per_conn`) is what the server's own threads and mappings take,
/// so that other work on the machine does not move it: the kernel stacks of its new threads
/// (each the machine's `KernelStack` over its threads), their `task_struct`s (when
/// `/proc/slabinfo` is readable) and the growth of its page tables (`VmPTE`). Sockets' kernel
/// memory is left out: every server has the same sockets. The machine-wide differences of
/// `KernelStack` and `Slab` are reported too (`machine_*`), for a quiet machine.
pub fn footprint_fields(line: Line, held: &Held) -> Line {
    let count = held.streams.len() as u64;
    let (before, after) = (&held.before, &held.after);
    let per = |a: u64, b: u64| (b as f64 - a as f64) / count.max(1) as f64;
    let threads = per(before.threads, after.threads);
    let stack = threads * after.stack_per_thread_kib();
    let task = task_struct_bytes().map(|b| threads * b as f64 / 1024.0);
    let page_tables = per(before.page_tables_kib, after.page_tables_kib);
    line.num("connected", count as f64, 0)
        .num("touched", held.touched as u8 as f64, 0)
        .num("connect_secs", held.connect_secs, 2)
        .num("rss_before_kib", before.rss_kib as f64, 0)
        .num("rss_after_kib", after.rss_kib as f64, 0)
        .num("rss_kib_per_conn", per(before.rss_kib, after.rss_kib), 2)
        .num("threads_per_conn", threads, 3)
        .num("fds_per_conn", per(before.fds, after.fds), 3)
        .num("kernel_stack_kib_per_conn", stack, 2)
        .opt("task_struct_kib_per_conn", task, 2)
        .num("page_tables_kib_per_conn", page_tables, 2)
        .num(
            "kernel_kib_per_conn",
            stack + task.unwrap_or(0.0) + page_tables,
            2,
        )
        .num(
            "machine_kernel_stack_kib_per_conn",
            per(before.kernel_stack_kib, after.kernel_stack_kib),
            2,
        )
        .num(
            "machine_slab_kib_per_conn",
            per(before.slab_kib, after.slab_kib),
            2,
        )
}
