//! goes' command line on the `echo` example (`threadnet::control`): `start -d`, `status`,
//! `stop`, `reload`, as real processes with real signals, each test in a temp dir of its own
//! for the pid and log files.

mod common;
#[path = "common/process.rs"]
mod process;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use process::{alive, echo_binary, kill, poll_until, CHILD_WAIT};

/// A temp dir with `echo.pid` and `echo.log`; dropping it kills every echo it saw in the pid
/// file, then removes the dir.
struct Dir {
    path: PathBuf,
    seen: Vec<u32>,
}

impl Dir {
    fn new(tag: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("threadnet-control-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap();
        Dir {
            path,
            seen: Vec::new(),
        }
    }

    fn pid_path(&self) -> PathBuf {
        self.path.join("echo.pid")
    }

    fn log_path(&self) -> PathBuf {
        self.path.join("echo.log")
    }

    /// The pid in the pid file, remembered for the clean-up.
    fn pid(&mut self) -> Option<u32> {
        let pid = read_pid(&self.pid_path());
        self.seen.extend(pid);
        pid
    }

    /// Runs `echo ARGS --pid-file … --log-file …` to its end: exit code, stdout, stderr.
    fn echo(&mut self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(echo_binary())
            .args(args)
            .arg("--pid-file")
            .arg(self.pid_path())
            .arg("--log-file")
            .arg(self.log_path())
            .output()
            .expect("run echo");
        self.pid();
        (
            out.status.code().expect("an exit code, not a signal"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `echo start -d --addr 127.0.0.1:0`, which must succeed: the server's pid and address.
    fn start(&mut self) -> (u32, SocketAddr) {
        let (code, out, err) = self.echo(&["start", "-d", "--addr", "127.0.0.1:0"]);
        assert_eq!(code, 0, "start -d: {out}{err}");
        let pid = self
            .pid()
            .expect("start -d returns once the pid file is written");
        assert!(out.contains(&format!("pid {pid}")), "{out}");
        (pid, self.listening())
    }

    /// The address of the first `listening on` line in the log.
    fn listening(&self) -> SocketAddr {
        let log = fs::read_to_string(self.log_path()).unwrap();
        let line = log.lines().find_map(|l| l.strip_prefix("listening on "));
        line.unwrap_or_else(|| panic!("no `listening on` in the log:\n{log}"))
            .parse()
            .unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        self.pid();
        for &pid in &self.seen {
            if alive(pid) {
                kill("KILL", pid);
            }
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

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
    let mut dir = Dir::new("cycle");
    let (pid, addr) = dir.start();
    assert!(alive(pid));
    // A session of its own (setsid): its session id is its pid.
    assert_eq!(stat_field(pid, 6), pid);

    let (code, out, err) = dir.echo(&["status"]);
    assert_eq!(code, 0, "status: {out}{err}");
    assert!(out.contains(&format!("running: pid {pid}, up ")), "{out}");

    served(addr, b"through the daemon");

    let (code, out, err) = dir.echo(&["stop"]);
    assert_eq!(code, 0, "stop: {out}{err}");
    assert!(out.contains(&format!("stopped (pid {pid})")), "{out}");
    assert!(!alive(pid), "stop returns once the process is gone");
    assert!(!dir.pid_path().exists(), "the server removes its pid file");
    let log = fs::read_to_string(dir.log_path()).unwrap();
    assert!(log.contains(&format!("listening on {addr}")), "{log}");

    let (code, out, _) = dir.echo(&["status"]);
    assert_eq!(code, 3, "status after stop: {out}");
}

#[test]
fn a_second_start_is_refused_while_one_runs() {
    let mut dir = Dir::new("twice");
    let (pid, addr) = dir.start();
    for args in [
        &["start", "-d", "--addr", "127.0.0.1:0"][..],
        &["start", "--addr", "127.0.0.1:0"],
    ] {
        let (code, out, err) = dir.echo(args);
        assert_eq!(code, 4, "{args:?}: {out}{err}");
        assert!(
            err.contains(&format!("already running (pid {pid}")),
            "{err}"
        );
    }
    assert_eq!(dir.pid(), Some(pid));
    served(addr, b"still the first one");
    assert_eq!(dir.echo(&["stop"]).0, 0);
}

#[test]
fn a_stale_pid_file_is_replaced() {
    let mut dir = Dir::new("stale");
    let stale = dead_pid();
    fs::write(dir.pid_path(), format!("{stale}\n")).unwrap();

    let (code, _, err) = dir.echo(&["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("stale pid file"), "{err}");

    let (pid, addr) = dir.start();
    assert_ne!(pid, stale);
    assert!(alive(pid));
    served(addr, b"after a stale pid file");
    assert_eq!(dir.echo(&["stop"]).0, 0);
}

#[test]
fn stop_reload_and_status_with_nothing_running_exit_3() {
    let mut dir = Dir::new("none");
    for command in ["stop", "reload", "status"] {
        let (code, out, err) = dir.echo(&[command]);
        assert_eq!(code, 3, "{command}: {out}{err}");
        assert!(
            err.contains("not running (no pid file at"),
            "{command}: {err}"
        );
    }
}

#[test]
fn reload_hands_off_to_a_new_pid_and_the_port_keeps_serving() {
    let mut dir = Dir::new("reload");
    let (old, addr) = dir.start();
    served(addr, b"before the reload");

    let (code, out, err) = dir.echo(&["reload"]);
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

    let (code, out, err) = dir.echo(&["stop"]);
    assert_eq!(code, 0, "stop: {out}{err}");
    assert!(!alive(new));
    assert!(!dir.pid_path().exists());
}
