//! Any example as a child process, for the tests that measure it from outside (its memory, its
//! threads): where its binary is, its `listening on` line, what `/proc` says of it, and a
//! guard that stops it on every path out of a test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

#[path = "process.rs"]
mod process;

/// How long a child may take to print its `listening on` line.
pub const START_WAIT: Duration = Duration::from_secs(60);

/// The binary of the example `name`, built with the cargo and profile of this test (a plain
/// `cargo test` has built it already; `cargo test --test NAME` does not build examples).
pub fn binary(name: &str) -> PathBuf {
    static PATHS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut paths = PATHS.get_or_init(Mutex::default).lock().unwrap();
    if let Some(p) = paths.get(name) {
        return p.clone();
    }
    let (_, path) = process::build_examples(&[name])
        .pop()
        .unwrap_or_else(|| panic!("cargo reported no {name} executable"));
    paths.insert(name.to_string(), path.clone());
    path
}

/// A running example: stdout lines on a channel, stderr collected; killed when dropped.
pub struct Example {
    pub child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Example {
    /// Starts the example `name` with `args`.
    pub fn spawn(name: &str, args: &[&str]) -> Example {
        let mut child = Command::new(binary(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().unwrap();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let mut all = sink.lock().unwrap();
                // Keep the end: a chatty example must not grow the test's memory unbounded.
                if all.len() > 1 << 20 {
                    let cut = all.len() - (1 << 19);
                    let cut = (cut..all.len()).find(|&i| all.is_char_boundary(i)).unwrap();
                    all.drain(..cut);
                }
                all.push_str(&text);
            }
        });
        Example {
            child,
            lines,
            stderr,
        }
    }

    /// The address of its `listening on ADDR` line.
    #[track_caller]
    pub fn listening(&self) -> String {
        let line = self
            .lines
            .recv_timeout(START_WAIT)
            .unwrap_or_else(|e| panic!("no line on stdout ({e}); stderr:\n{}", self.stderr()));
        line.strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("expected `listening on ADDR`, got {line:?}"))
            .to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to stderr so far (the last MiB or so).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// A number field of `/proc/PID/status` (`"VmRSS"` in KiB, `"Threads"`).
    pub fn status(&self, field: &str) -> u64 {
        status_field(self.pid(), field)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A number field of `/proc/PID/status`: `"VmRSS"` (KiB), `"Threads"`.
pub fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
