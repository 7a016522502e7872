//! The idle mode: what a connection that does nothing costs the server.
//!
//! It reads the server's footprint in `/proc`, opens `--conns` connections (with `--touch`,
//! one round trip on each, so the server has allocated whatever a used connection keeps),
//! waits until the server holds them all, reads the footprint again, and reports the
//! difference per connection.

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use threadnet_harness::json::Line;
use threadnet_harness::procfs::{fd_count, footprint, Footprint};
use threadnet_harness::wire::frame;

use crate::{connect, error_line, Options};

/// Most connections opened before the server has accepted them. A std listener's backlog is
/// 128; past it the kernel drops SYNs and a connect stalls for the 1 s SYN retransmit.
const UNACCEPTED: u64 = 64;

/// Connections opened between two looks at the server's descriptors: at most
/// `UNACCEPTED + CHECK_EVERY` wait to be accepted, still under the backlog.
const CHECK_EVERY: u64 = 16;

/// Runs the idle measurement, then gives the run's JSON line (`Err` when it went wrong).
pub fn run(o: &Options) -> Result<String, String> {
    let pid = o
        .pid
        .ok_or_else(|| error_line(o, "idle needs --pid SERVER_PID"))?;
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
    let mut pacing = !o.touch; // a round trip already waits for the accept
    for i in 0..o.conns as u64 {
        // Counting the server's descriptors reads a directory of them all: not at every connect.
        // A server that does not keep up within 2 s (or closes idle connections) is not waited
        // for again; the report shows how many connections it held.
        if pacing && i >= UNACCEPTED && i % CHECK_EVERY == 0 {
            pacing = wait_for_fds(pid, before.fds + i - UNACCEPTED, Duration::from_secs(2));
        }
        let opened = connect(o.addr).and_then(|mut s| {
            if o.touch {
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
    let held = streams.len() as u64;
    let connected = Instant::now();

    // Let the server settle (threads started, stacks touched), and hold them all.
    thread::sleep(Duration::from_secs(1));
    wait_for_fds(pid, before.fds + held, Duration::from_secs(5));
    let after = footprint(pid).ok_or_else(gone)?;
    if failure.is_none() && after.fds < before.fds + held {
        let open = after.fds.saturating_sub(before.fds);
        failure = Some(format!("the server holds {open} of the {held} connections"));
    }
    thread::sleep(
        (connected + Duration::from_secs_f64(o.hold_secs))
            .saturating_duration_since(Instant::now()),
    );
    drop(streams);

    let line = report(o, held, connect_secs, before, after, failure.as_deref());
    if failure.is_none() {
        Ok(line)
    } else {
        Err(line)
    }
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

fn report(
    o: &Options,
    held: u64,
    connect_secs: f64,
    before: Footprint,
    after: Footprint,
    failure: Option<&str>,
) -> String {
    let per = |a: u64, b: u64| (b as f64 - a as f64) / held.max(1) as f64;
    let mut line = Line::default()
        .str("mode", "idle")
        .str("tag", &o.tag)
        .num("conns", o.conns as f64, 0)
        .num("connected", held as f64, 0)
        .num("touched", o.touch as u8 as f64, 0)
        .num("connect_secs", connect_secs, 2)
        .num("rss_before_kib", before.rss_kib as f64, 0)
        .num("rss_after_kib", after.rss_kib as f64, 0)
        .num("rss_kib_per_conn", per(before.rss_kib, after.rss_kib), 2)
        .num(
            "kernel_stack_kib_per_conn",
            per(before.kernel_stack_kib, after.kernel_stack_kib),
            2,
        )
        .num("threads_per_conn", per(before.threads, after.threads), 3)
        .num("fds_per_conn", per(before.fds, after.fds), 3)
        .num("errors", failure.is_some() as u8 as f64, 0);
    if let Some(e) = failure {
        line = line.str("first_error", e);
    }
    line.finish()
}
