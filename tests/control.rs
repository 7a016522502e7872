//! goes' command line on the `echo` example (`threadnet::control`): `start -d`, `status`,
//! `stop`, `reload`, as real processes with real signals, each test in a temp dir of its own
//! for the pid and log files.

mod common;
#[path = "common/control_dir.rs"]
mod control_dir;
#[path = "common/process.rs"]
mod process;

use std::fs;
use std::net::SocketAddr;
use std::process::Command;

use common::*;
use control_dir::Dir;
use process::{alive, poll_until, CHILD_WAIT};

/// Field `n` (1-based, as `proc(5)` counts) of `/proc/PID/stat`.
fn stat_field(pid: u32, n: usize) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().nth(n - 3).unwrap().parse().unwrap()
}

/// One frame to `addr` and its echo back.
fn served(addr: SocketAddr, payload: &[u8]) {
    let mut s = peer(addr);
    write_frame(&mut s, payload).unwrap();
    assert_eq!(expect_frame(&mut s), payload);
}

/// A pid that no process has: one of a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn start_d_status_serve_and_stop() {
    let mut dir = Dir::new("control", "cycle");
    let (pid, addr) = dir.start();
    assert!(alive(pid));
    // A session of its own (setsid): its session id is its pid.
    assert_eq!(stat_field(pid, 6), pid);

    let (code, out, err) = dir.run(&["status"]);
    assert_eq!(code, 0, "status: {out}{err}");
    assert!(out.contains(&format!("running: pid {pid}, up ")), "{out}");

    served(addr, b"through the daemon");

    let (code, out, err) = dir.run(&["stop"]);
    assert_eq!(code, 0, "stop: {out}{err}");
    assert!(out.contains(&format!("stopped (pid {pid})")), "{out}");
    assert!(!alive(pid), "stop returns once the process is gone");
    assert!(!dir.pid_path().exists(), "the server removes its pid file");
    let log = fs::read_to_string(dir.log_path()).unwrap();
    assert!(log.contains(&format!("listening on {addr}")), "{log}");

    let (code, out, _) = dir.run(&["status"]);
    assert_eq!(code, 3, "status after stop: {out}");
}

#[test]
fn a_second_start_is_refused_while_one_runs() {
    let mut dir = Dir::new("control", "twice");
    let (pid, addr) = dir.start();
    for args in [
        &["start", "-d", "--addr", "127.0.0.1:0"][..],
        &["start", "--addr", "127.0.0.1:0"],
    ] {
        let (code, out, err) = dir.run(args);
        assert_eq!(code, 4, "{args:?}: {out}{err}");
        assert!(
            err.contains(&format!("already running (pid {pid}")),
            "{err}"
        );
    }
    assert_eq!(dir.pid(), Some(pid));
    served(addr, b"still the first one");
    assert_eq!(dir.run(&["stop"]).0, 0);
}

#[test]
fn a_stale_pid_file_is_replaced() {
    let mut dir = Dir::new("control", "stale");
    let stale = dead_pid();
    fs::write(dir.pid_path(), format!("{stale}\n")).unwrap();

    let (code, _, err) = dir.run(&["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("stale pid file"), "{err}");

    let (pid, addr) = dir.start();
    assert_ne!(pid, stale);
    assert!(alive(pid));
    served(addr, b"after a stale pid file");
    assert_eq!(dir.run(&["stop"]).0, 0);
}

#[test]
fn stop_reload_and_status_with_nothing_running_exit_3() {
    let mut dir = Dir::new("control", "none");
    for command in ["stop", "reload", "status"] {
        let (code, out, err) = dir.run(&[command]);
        assert_eq!(code, 3, "{command}: {out}{err}");
        assert!(
            err.contains("not running (no pid file at"),
            "{command}: {err}"
        );
    }
}

#[test]
fn reload_hands_off_to_a_new_pid_and_the_port_keeps_serving() {
    let mut dir = Dir::new("control", "reload");
    let (old, addr) = dir.start();
    served(addr, b"before the reload");

    let (code, out, err) = dir.run(&["reload"]);
    assert_eq!(code, 0, "reload: {out}{err}");
    let new = dir.pid().unwrap();
    assert_ne!(new, old);
    assert!(
        out.contains(&format!("pid {old} handed off to pid {new}")),
        "{out}"
    );
    assert!(
        poll_until(CHILD_WAIT, || !alive(old)),
        "the old process exits once drained"
    );
    served(addr, b"after the reload");
    // The new process is in the daemon's session, its output in the same log.
    assert_eq!(stat_field(new, 6), old);

    let (code, out, err) = dir.run(&["stop"]);
    assert_eq!(code, 0, "stop: {out}{err}");
    assert!(!alive(new));
    assert!(!dir.pid_path().exists());
}

#[test]
fn a_symlink_at_the_log_path_is_refused_and_its_target_untouched() {
    let mut dir = Dir::new("control", "loglink");
    let victim = dir.path.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.log_path()).unwrap();
    let (code, out, err) = dir.run(&["start", "-d", "--addr", "127.0.0.1:0"]);
    assert_eq!(code, 1, "start -d through a symlinked log: {out}{err}");
    assert!(
        err.contains("cannot open the log file") && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(dir.pid(), None, "nothing started");
}
