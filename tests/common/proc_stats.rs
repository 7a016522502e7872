//! What a process holds, read from `/proc/PID`: threads, open fds and resident memory, and a
//! bounded wait for them to settle back to a baseline after a test's load has left.
#![allow(dead_code)]

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

/// One reading of a process's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// `Threads:` of /proc/PID/status.
    pub threads: usize,
    /// Entries of /proc/PID/fd.
    pub fds: usize,
    /// `VmRSS:` of /proc/PID/status, in KiB.
    pub rss_kib: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} threads, {} fds, {:.1} MiB RSS",
            self.threads,
            self.fds,
            self.rss_kib as f64 / 1024.0
        )
    }
}

/// Reads the stats of `pid`; panics if the process is gone (a server that died is a failure).
#[track_caller]
pub fn stats(pid: u32) -> Stats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("process {pid} is gone: {e}"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count();
    Stats {
        threads: field("Threads:") as usize,
        fds,
        rss_kib: field("VmRSS:"),
    }
}

/// How far above a baseline a process may settle.
#[derive(Debug, Clone, Copy)]
pub struct Slack {
    pub threads: usize,
    pub fds: usize,
    pub rss_kib: u64,
}

impl Slack {
    /// Threads and fds exactly back, RSS within `rss_mib` MiB.
    pub fn exact(rss_mib: u64) -> Slack {
        Slack {
            threads: 0,
            fds: 0,
            rss_kib: rss_mib * 1024,
        }
    }

    fn holds(&self, base: Stats, now: Stats) -> bool {
        now.threads <= base.threads + self.threads
            && now.fds <= base.fds + self.fds
            && now.rss_kib <= base.rss_kib + self.rss_kib
    }
}

/// Polls `pid` every 20 ms for up to `limit` until its stats are within `slack` of `base`.
/// Returns the last reading and whether it settled.
pub fn settle(pid: u32, base: Stats, slack: Slack, limit: Duration) -> (Stats, bool) {
    let until = Instant::now() + limit;
    loop {
        let now = stats(pid);
        if slack.holds(base, now) {
            return (now, true);
        }
        if Instant::now() >= until {
            return (now, false);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until `pid`'s thread count stops changing for `quiet` (at most `limit`): a baseline
/// taken after the start-up threads have all come up.
pub fn steady(pid: u32, quiet: Duration, limit: Duration) -> Stats {
    let until = Instant::now() + limit;
    let mut last = stats(pid);
    let mut since = Instant::now();
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
        let now = stats(pid);
        if (now.threads, now.fds) != (last.threads, last.fds) {
            since = Instant::now();
        }
        last = now;
        if since.elapsed() >= quiet {
            break;
        }
    }
    last
}

/// The pids whose parent is `pid` (from /proc/*/stat): the process a hand-off started.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                // After the command name in parentheses: state, then the parent's pid.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}
