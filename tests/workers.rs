//! `start -d --workers N` on the `echo` example: N processes sharing one port with
//! `SO_REUSEPORT`, the kernel spreading connections among them; `status` and `stop` act on
//! all of them; `status` with the metrics snapshot; and goes' commands on `http_hello` and
//! `chat`. Real processes, real signals, a temp dir for the pid and log files.

mod common;
#[path = "common/control_dir.rs"]
mod control_dir;
#[path = "common/process.rs"]
mod process;

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;

use common::*;
use control_dir::{read_pid, Dir};
use process::{alive, kill, poll_until, CHILD_WAIT};
use threadnet::TcpServer;

/// How many sockets process `pid` has open (its fds that link to `socket:[…]`).
fn sockets(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// A connection to `addr` that has had one frame echoed: accepted, and held by whichever
/// process took it.
fn served(addr: SocketAddr, payload: &[u8]) -> TcpStream {
    let mut s = peer(addr);
    write_frame(&mut s, payload).unwrap();
    assert_eq!(expect_frame(&mut s), payload);
    s
}

/// A free port for workers to share: the listener (bound with `SO_REUSEPORT`, so they can
/// bind it too) holds it until they listen; with port 0 each worker would pick its own.
fn reserve() -> (TcpListener, String) {
    let reserved = TcpServer::bind_reuse_port("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap().to_string();
    (reserved, addr)
}

/// The pids after `pids ` in a `start -d --workers N` report.
fn reported_pids(out: &str) -> Vec<u32> {
    out.split_once("pids ")
        .map(|(_, rest)| {
            rest.split(|c: char| !c.is_ascii_digit() && c != ' ')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Held connections that `pid` accepted, of `count` made to `addr`.
fn taken_by(pid: u32, addr: SocketAddr, count: usize) -> usize {
    let before = sockets(pid);
    let held: Vec<TcpStream> = (0..count).map(|i| served(addr, &[i as u8; 8])).collect();
    let after = sockets(pid);
    drop(held);
    after.saturating_sub(before)
}

#[test]
fn two_concurrent_starts_one_wins_and_stop_stops_every_worker() {
    let mut dir = Dir::new("workers", "race");
    let (reserved, addr) = reserve();
    let args = ["start", "-d", "--workers", "2", "--addr", &addr];
    // Both at once: each checks for a running server long before either's first worker is up.
    let spawn = |dir: &Dir| {
        dir.command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&dir), spawn(&dir));
    let runs = [a, b].map(|c| c.wait_with_output().unwrap());
    drop(reserved);
    let runs = runs.map(|out| dir.finished(out));
    for (_, out, _) in &runs {
        for pid in reported_pids(out) {
            dir.adopt(pid);
        }
    }
    let codes = runs.each_ref().map(|r| r.0);
    let won: Vec<_> = runs.iter().filter(|r| r.0 == 0).collect();
    assert_eq!(won.len(), 1, "exactly one start succeeds: {runs:?}");
    let lost = runs.iter().find(|r| r.0 != 0).unwrap();
    assert_eq!(lost.0, 4, "the other is refused: {codes:?} {lost:?}");
    assert!(
        lost.2.contains("another start") || lost.2.contains("already running"),
        "{lost:?}"
    );
    let pids = reported_pids(&won[0].1);
    assert_eq!(pids.len(), 2, "{won:?}");
    assert_eq!(
        [dir.worker_pid(1), dir.worker_pid(2)],
        [Some(pids[0]), Some(pids[1])]
    );
    let supervisor = dir.pid().expect("the supervisor's pid file");
    let (code, out, err) = dir.run(&["stop"]);
    assert_eq!(code, 0, "stop: {out}{err}");
    assert!(!alive(supervisor));
    assert!(pids.iter().all(|&p| !alive(p)), "stop leaves no worker");
    assert!(
        TcpStream::connect(&addr).is_err(),
        "nothing listens any more"
    );
}

#[test]
fn a_killed_worker_is_restarted_and_serves() {
    let mut dir = Dir::new("workers", "restart");
    let (reserved, addr) = reserve();
    let (code, out, err) = dir.run(&["start", "-d", "--workers", "2", "--addr", &addr]);
    drop(reserved);
    assert_eq!(code, 0, "start -d: {out}{err}");
    let (first, old) = (dir.worker_pid(1).unwrap(), dir.worker_pid(2).unwrap());
    assert!(kill("KILL", old));
    let restarted = poll_until(CHILD_WAIT, || {
        dir.worker_pid(2).is_some_and(|p| p != old && alive(p))
    });
    let log_path = dir.log_path();
    let log = || fs::read_to_string(&log_path).unwrap_or_default();
    assert!(restarted, "worker 2 not restarted; log:\n{}", log());
    let new = dir.worker_pid(2).unwrap();
    assert!(log().contains("restarting worker 2"), "{}", log());
    // The new worker takes its share of the connections.
    let addr: SocketAddr = addr.parse().unwrap();
    assert!(
        taken_by(new, addr, 40) > 0,
        "the new worker accepts nothing"
    );

    let (code, out, err) = dir.run(&["status"]);
    assert_eq!(code, 0, "status: {out}{err}");
    assert!(out.contains(&format!("running: pid {new}, up ")), "{out}");
    assert!(out.contains(&format!("running: pid {first}, up ")), "{out}");

    // After a reload, worker 1 is a copy that the old one started, not the supervisor's
    // child: it is followed through its pid file, and restarted too when killed.
    let (code, out, err) = dir.run(&["reload"]);
    assert_eq!(code, 0, "reload: {out}{err}");
    let handed = dir.worker_pid(1).unwrap();
    assert_ne!(handed, first);
    assert!(kill("KILL", handed));
    let restarted = poll_until(CHILD_WAIT, || {
        dir.worker_pid(1)
            .is_some_and(|p| p != handed && p != first && alive(p))
    });
    assert!(restarted, "worker 1 not restarted; log:\n{}", log());

    let supervisor = dir.pid().unwrap();
    let again = dir.worker_pid(1).unwrap();
    let (code, out, err) = dir.run(&["stop"]);
    assert_eq!(code, 0, "stop: {out}{err}");
    assert!([supervisor, first, new, again].iter().all(|&p| !alive(p)));
}

#[test]
fn a_worker_that_always_crashes_is_given_up_and_status_says_which() {
    let mut dir = Dir::new("workers", "crashloop");
    let (reserved, addr) = reserve();
    let (code, out, err) = dir.run(&["start", "-d", "--workers", "2", "--addr", &addr]);
    drop(reserved);
    assert_eq!(code, 0, "start -d: {out}{err}");
    let (first, second) = (dir.worker_pid(1).unwrap(), dir.worker_pid(2).unwrap());
    // Every new worker 2 now fails as it starts: its pid file's path is a directory.
    let path = dir.path.join("echo.pid.2");
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    assert!(kill("KILL", second));

    let mut last = (0, String::new(), String::new());
    let reported = poll_until(CHILD_WAIT, || {
        last = dir.run(&["status"]);
        last.1.contains("down: worker 2") && last.1.contains("gave up")
    });
    let (code, out, err) = last;
    let log = fs::read_to_string(dir.log_path()).unwrap_or_default();
    assert!(reported, "status: {code} {out}{err}\nlog:\n{log}");
    assert_eq!(code, 1, "status with a worker down: {out}{err}");
    assert!(out.contains(&format!("running: pid {first}, up ")), "{out}");
    assert!(log.contains("gave up on worker 2"), "{log}");
    // Worker 1 serves on.
    served(addr.parse().unwrap(), b"worker 1 alone");

    let supervisor = dir.pid().unwrap();
    let (code, out, err) = dir.run(&["stop"]);
    assert_eq!(code, 0, "stop: {out}{err}");
    assert!(!alive(supervisor) && !alive(first));
}

#[test]
fn two_workers_share_the_port_and_stop_together() {
    let mut dir = Dir::new("workers", "two");
    // Holds a free port (bound with SO_REUSEPORT, so the workers can bind it too) until they
    // listen; with port 0 each worker would pick a port of its own.
    let reserved = TcpServer::bind_reuse_port("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    let (code, out, err) = dir.run(&["start", "-d", "--workers", "2", "--addr", &addr.to_string()]);
    drop(reserved);
    assert_eq!(code, 0, "start -d --workers 2: {out}{err}");
    let pids = [dir.worker_pid(1).unwrap(), dir.worker_pid(2).unwrap()];
    assert_ne!(pids[0], pids[1]);
    assert!(pids.iter().all(|&p| alive(p)));
    // The main pid file names the supervisor, which serves nothing itself.
    let supervisor = dir.pid().expect("the supervisor's pid file");
    assert!(alive(supervisor) && !pids.contains(&supervisor));
    assert!(
        out.contains(&format!(
            "pids {} {} (supervisor pid {supervisor})",
            pids[0], pids[1]
        )),
        "{out}"
    );

    let (code, out, err) = dir.run(&["status"]);
    assert_eq!(code, 0, "status: {out}{err}");
    assert!(
        out.contains(&format!("running: pid {supervisor}, up "))
            && out.contains("(supervisor of 2 workers)"),
        "{out}"
    );
    for (i, pid) in pids.iter().enumerate() {
        assert!(
            out.contains(&format!("running: pid {pid}, up "))
                && out.contains(&format!("(worker {})", i + 1)),
            "{out}"
        );
    }

    // A second start is refused while the workers run.
    let (code, _, err) = dir.run(&["start", "-d", "--addr", &addr.to_string()]);
    assert_eq!(code, 4, "{err}");

    // 50 connections, each served and held open: each one is a socket in the process that
    // accepted it, so the two processes' new sockets add up to 50, and both took some.
    let before = pids.map(sockets);
    let held: Vec<TcpStream> = (0..50).map(|i| served(addr, &[i as u8; 8])).collect();
    let after = pids.map(sockets);
    let took = [after[0] - before[0], after[1] - before[1]];
    assert_eq!(took[0] + took[1], held.len(), "{before:?} -> {after:?}");
    assert!(took[0] > 0 && took[1] > 0, "both workers accept: {took:?}");
    drop(held);

    let (code, out, err) = dir.run(&["stop"]);
    assert_eq!(code, 0, "stop: {out}{err}");
    assert!(
        out.contains(&format!(
            "stopped (pid {supervisor} {} {})",
            pids[0], pids[1]
        )),
        "{out}"
    );
    assert!(
        pids.iter().all(|&p| !alive(p)) && !alive(supervisor),
        "stop returns once all are gone"
    );
    let left: Vec<_> = fs::read_dir(&dir.path)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("echo.pid"))
        .collect();
    assert!(left.is_empty(), "pid files left: {left:?}");
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens any more"
    );

    let (code, _, _) = dir.run(&["status"]);
    assert_eq!(code, 3);
}

#[test]
fn workers_in_the_foreground_are_refused() {
    let mut dir = Dir::new("workers", "fg");
    let (code, out, err) = dir.run(&["start", "--workers", "2", "--addr", "127.0.0.1:0"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("use start -d"), "{err}");
}

#[test]
fn status_prints_the_metrics_snapshot() {
    let mut dir = Dir::new("workers", "metrics");
    let (code, out, err) = dir.run(&[
        "start",
        "-d",
        "--addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 0, "start -d: {out}{err}");
    let log = fs::read_to_string(dir.log_path()).unwrap();
    let line = |prefix: &str| -> String {
        let found = log.lines().find_map(|l| l.strip_prefix(prefix));
        found
            .unwrap_or_else(|| panic!("no {prefix:?} in {log}"))
            .to_string()
    };
    let (addr, metrics) = (line("listening on "), line("metrics on "));
    drop(served(addr.parse().unwrap(), b"counted"));

    let (code, out, err) = dir.run(&["status", "--metrics-addr", &metrics]);
    assert_eq!(code, 0, "status: {out}{err}");
    assert!(out.contains("running: pid "), "{out}");
    assert!(
        out.contains("threadnet_connections_accepted_total 1\n"),
        "{out}{err}"
    );
    // Metrics that cannot be fetched are reported, and the server still runs: exit 0.
    let (code, _, err) = dir.run(&["status", "--metrics-addr", "127.0.0.1:1"]);
    assert_eq!(code, 0);
    assert!(
        err.contains("no metrics from http://127.0.0.1:1/metrics"),
        "{err}"
    );
    assert_eq!(dir.run(&["stop"]).0, 0);
}

#[test]
fn http_hello_start_d_status_serve_and_stop() {
    let mut dir = Dir::new("workers", "http").example("http_hello");
    let (code, out, err) = dir.run(&["--help"]);
    assert_eq!(code, 0, "{err}");
    for command in ["start -d", "stop", "reload", "status", "--workers N"] {
        assert!(out.contains(command), "--help names {command:?}: {out}");
    }

    let (code, out, err) = dir.run(&["start", "-d", "--addr", "127.0.0.1:0"]);
    assert_eq!(code, 0, "start -d: {out}{err}");
    let pid = read_pid(&dir.pid_path()).expect("the server wrote its pid file");
    assert!(out.contains(&format!("pid {pid}")), "{out}");
    let (code, out, err) = dir.run(&["status"]);
    assert_eq!(code, 0, "status: {out}{err}");
    assert!(out.contains(&format!("running: pid {pid}, up ")), "{out}");

    let log = fs::read_to_string(dir.log_path()).unwrap();
    let addr = log.lines().find_map(|l| l.strip_prefix("listening on "));
    let addr = addr.unwrap_or_else(|| panic!("no `listening on` in {log}"));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(process::CHILD_WAIT)).unwrap();
    std::io::Write::write_all(&mut s, b"GET /json HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut s, &mut reply).unwrap();
    assert!(reply.ends_with(r#"{"hello":"world"}"#), "{reply}");

    let (code, out, err) = dir.run(&["stop"]);
    assert_eq!(code, 0, "stop: {out}{err}");
    assert!(!alive(pid));
    assert!(!dir.pid_path().exists(), "the server removes its pid file");
    assert_eq!(dir.run(&["stop"]).0, 3, "nothing left to stop");
}

#[test]
fn chat_start_d_status_and_stop_but_no_reload() {
    let mut dir = Dir::new("workers", "chat").example("chat");
    let (code, out, _) = dir.run(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("start -d") && out.contains("no reload"),
        "{out}"
    );

    let (code, out, err) = dir.run(&["start", "-d", "--addr", "127.0.0.1:0"]);
    assert_eq!(code, 0, "start -d: {out}{err}");
    let pid = read_pid(&dir.pid_path()).expect("the server wrote its pid file");
    assert_eq!(dir.run(&["status"]).0, 0);
    let (code, _, err) = dir.run(&["reload"]);
    assert_eq!(code, 1);
    assert!(err.contains("no reload"), "{err}");
    assert!(alive(pid), "a refused reload leaves the room alone");

    let (code, out, err) = dir.run(&["stop"]);
    assert_eq!(code, 0, "stop: {out}{err}");
    assert!(!alive(pid));
    assert!(!dir.pid_path().exists());
}
