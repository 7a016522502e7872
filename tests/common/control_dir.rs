//! A temp dir for an example's pid and log files, for the tests of goes' command line
//! (`threadnet::control`): it runs `NAME ARGS --pid-file … --log-file …`, remembers every pid
//! it sees in the pid files (the main one, and `NAME.pid.1` and `NAME.pid.2` of workers), and
//! when dropped kills those still alive and every other process of their sessions (a
//! supervisor's worker started a moment ago, a hand-off's new copy), then removes the dir.
//! The crate that includes it has a `process` module (`common/process.rs`).
#![allow(dead_code)]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{alive, example_binary, kill};

pub struct Dir {
    pub path: PathBuf,
    example: &'static str,
    seen: Vec<u32>,
}

impl Dir {
    /// A new, empty dir for `echo`, named after the test group `group` and `tag`.
    pub fn new(group: &str, tag: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("threadnet-{group}-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap();
        Dir {
            path,
            example: "echo",
            seen: Vec::new(),
        }
    }

    /// The same dir for the example `name` instead of `echo`.
    pub fn example(mut self, name: &'static str) -> Dir {
        self.example = name;
        self
    }

    pub fn pid_path(&self) -> PathBuf {
        self.path.join(format!("{}.pid", self.example))
    }

    pub fn log_path(&self) -> PathBuf {
        self.path.join(format!("{}.log", self.example))
    }

    /// The pid in the pid file, remembered for the clean-up.
    pub fn pid(&mut self) -> Option<u32> {
        let pid = read_pid(&self.pid_path());
        self.seen.extend(pid);
        pid
    }

    /// Worker `i`'s pid, remembered for the clean-up.
    pub fn worker_pid(&mut self, i: usize) -> Option<u32> {
        let path = PathBuf::from(format!("{}.{i}", self.pid_path().display()));
        let pid = read_pid(&path);
        self.seen.extend(pid);
        pid
    }

    /// `NAME ARGS --pid-file … --log-file …`, not started: for runs at the same time.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(example_binary(self.example));
        cmd.args(args)
            .arg("--pid-file")
            .arg(self.pid_path())
            .arg("--log-file")
            .arg(self.log_path());
        cmd
    }

    /// Runs `NAME ARGS --pid-file … --log-file …` to its end: exit code, stdout, stderr.
    pub fn run(&mut self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().expect("run the example");
        self.finished(out)
    }

    /// The exit code, stdout and stderr of a run of [`Self::command`]; every pid the pid files
    /// name now is remembered for the clean-up.
    pub fn finished(&mut self, out: std::process::Output) -> (i32, String, String) {
        self.remember();
        (
            out.status.code().expect("an exit code, not a signal"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Kills `pid` (and its session) too at the clean-up.
    pub fn adopt(&mut self, pid: u32) {
        self.seen.push(pid);
    }

    /// `NAME start -d --addr 127.0.0.1:0`, which must succeed: the server's pid and address.
    pub fn start(&mut self) -> (u32, SocketAddr) {
        let (code, out, err) = self.run(&["start", "-d", "--addr", "127.0.0.1:0"]);
        assert_eq!(code, 0, "start -d: {out}{err}");
        let pid = self
            .pid()
            .expect("start -d returns once the pid file is written");
        assert!(out.contains(&format!("pid {pid}")), "{out}");
        (pid, self.listening())
    }

    /// The address of the first `listening on` line in the log.
    pub fn listening(&self) -> SocketAddr {
        let log = fs::read_to_string(self.log_path()).unwrap();
        let line = log.lines().find_map(|l| l.strip_prefix("listening on "));
        line.unwrap_or_else(|| panic!("no `listening on` in the log:\n{log}"))
            .parse()
            .unwrap()
    }

    /// Every pid the pid files name now, remembered for the clean-up.
    fn remember(&mut self) {
        self.pid();
        for i in 1..=2 {
            self.worker_pid(i);
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        self.remember();
        // The sessions of the daemons (`start -d` makes each a session of its own): a
        // supervisor may be starting a worker, and a hand-off a new copy, as they are killed.
        let own = session(std::process::id());
        let mut sessions: Vec<u32> = self.seen.iter().filter_map(|&p| session(p)).collect();
        sessions.retain(|&s| Some(s) != own && s > 1);
        // The pids first (the supervisor, which restarts the others, among them), then
        // whatever is left in those sessions, until nothing is (bounded).
        for &pid in &self.seen {
            if alive(pid) {
                kill("KILL", pid);
            }
        }
        for _ in 0..50 {
            let left: Vec<u32> = fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&p| alive(p) && session(p).is_some_and(|s| sessions.contains(&s)))
                .collect();
            if left.is_empty() {
                break;
            }
            for pid in left {
                kill("KILL", pid);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The session id of `pid` (field 6 of `/proc/PID/stat`), if it runs.
fn session(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(3)?.parse().ok()
}

pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}
