//! A temp dir for an example's pid and log files, for the tests of goes' command line
//! (`threadnet::control`): it runs `NAME ARGS --pid-file … --log-file …`, remembers every pid
//! it sees in the pid files (the main one, and `NAME.pid.1` and `NAME.pid.2` of workers), and
//! when dropped kills those still alive and removes the dir. The crate that includes it has a
//! `process` module (`common/process.rs`).
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
    /// A new, empty dir for `echo_service`, named after the test group `group` and `tag`.
    pub fn new(group: &str, tag: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("threadnet-{group}-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap();
        Dir {
            path,
            example: "echo_service",
            seen: Vec::new(),
        }
    }

    /// The same dir for the example `name` instead of `echo_service`.
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

    /// Runs `NAME ARGS --pid-file … --log-file …` to its end: exit code, stdout, stderr.
    pub fn run(&mut self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(example_binary(self.example))
            .args(args)
            .arg("--pid-file")
            .arg(self.pid_path())
            .arg("--log-file")
            .arg(self.log_path())
            .output()
            .expect("run the example");
        self.remember();
        (
            out.status.code().expect("an exit code, not a signal"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
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
        for &pid in &self.seen {
            if alive(pid) {
                kill("KILL", pid);
            }
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}
