//! `start -d --workers N` on the `echo_service` example: N processes sharing one port with
//! `SO_REUSEPORT`, the kernel spreading connections among them; `status` and `stop` act on
//! all of them; `status` with the metrics snapshot; and goes' commands on `http_hello` and
//! `chat`. Real processes, real signals, a temp dir for the pid and log files.

mod common;
#[path = "common/control_dir.rs"]
mod control_dir;
#[path = "common/process.rs"]
mod process;

use std::fs;
use std::net::{SocketAddr, TcpStream};

use common::*;
use control_dir::{read_pid, Dir};
use process::alive;
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
    assert!(
        !dir.pid_path().exists(),
        "workers write only their own pid files"
    );
    assert!(
        out.contains(&format!("pids {} {}", pids[0], pids[1])),
        "{out}"
    );

    let (code, out, err) = dir.run(&["status"]);
    assert_eq!(code, 0, "status: {out}{err}");
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
        out.contains(&format!("stopped (pid {} {})", pids[0], pids[1])),
        "{out}"
    );
    assert!(
        pids.iter().all(|&p| !alive(p)),
        "stop returns once both are gone"
    );
    let left: Vec<_> = fs::read_dir(&dir.path)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("echo_service.pid"))
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
