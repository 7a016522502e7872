//! The examples as child processes, for the tests that send them signals, hand them a socket
//! or attack them from outside: where their binaries are, and a guard that kills a child (and
//! whatever process it handed off to) on every path out of a test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long a child may take to do what a test waits for.
pub const CHILD_WAIT: Duration = Duration::from_secs(20);

/// The `echo_service` example's binary (see [`example_binary`]).
pub fn echo_binary() -> &'static Path {
    example_binary("echo_service")
}

/// The examples the tests run as processes, built together by the first [`example_binary`].
const EXAMPLES: [&str; 6] = [
    "echo",
    "echo_service",
    "http_hello",
    "kv_server",
    "chat",
    "udp_echo",
];

/// The binary of the example `name` (one of `echo`, `echo_service`, `http_hello`,
/// `kv_server`, `chat`, `udp_echo`). `cargo test` builds examples, `cargo test --test signals`
/// does not; so the first call runs `cargo build --example …` for all of them at once (a no-op
/// after a plain `cargo test`) with the same cargo and profile, and takes the binaries' paths
/// from cargo's own report.
pub fn example_binary(name: &str) -> &'static Path {
    static PATHS: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    PATHS
        .get_or_init(|| build_examples(&EXAMPLES))
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.as_path())
        .unwrap_or_else(|| panic!("cargo reported no {name} executable"))
}

/// Runs `cargo build --example …` for `names`, with the cargo and profile of this test, and
/// returns each example's binary as cargo reports it.
pub fn build_examples(names: &[&str]) -> Vec<(String, PathBuf)> {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test binary>
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name);
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("build");
    for example in names {
        cmd.args(["--example", example]);
    }
    cmd.arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .stderr(Stdio::inherit());
    if profile.is_some_and(|p| p == "release") {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo build --example");
    assert!(out.status.success(), "cargo build --example failed");
    let json = String::from_utf8(out.stdout).expect("cargo's output is UTF-8");
    json.lines()
        .filter(|l| l.contains(r#""reason":"compiler-artifact""#))
        .filter_map(|l| {
            let name = field(l, r#""target":{"#, r#""name":""#)?;
            let exe = field(l, "", r#""executable":""#)?;
            Some((name.to_string(), PathBuf::from(exe)))
        })
        .filter(|(name, _)| names.contains(&name.as_str()))
        .collect()
}

/// The string value of the JSON key `key` (written with its quotes, colon and opening quote)
/// that follows `after` in `line`.
fn field<'a>(line: &'a str, after: &str, key: &str) -> Option<&'a str> {
    let from = line.find(after)? + after.len();
    let start = from + line[from..].find(key)? + key.len();
    let end = start + line[start..].find('"')?;
    Some(&line[start..end])
}

/// Sends `signal` (`"TERM"`, `"USR2"`, …) to `pid` with the `kill` command.
pub fn kill(signal: &str, pid: u32) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True while a process with this pid exists (and is not a zombie of ours).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: "Z" is a zombie.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `done` every 10 ms for up to `limit`: for what no channel reports, such as another
/// process's exit.
pub fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Any example as a child process: the same guard as [`Echo`].
pub type Example = Echo;

/// A running `echo_service` child (or any other example's): its stdout lines arrive on a channel, its stderr is collected for
/// failure messages. Dropping it kills the child and every pid added with [`Self::adopt`].
pub struct Echo {
    pub child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    adopted: Vec<u32>,
}

impl Echo {
    /// Spawns `cmd` (the echo binary, arguments set) with stdout and stderr piped.
    pub fn spawn(mut cmd: Command) -> Echo {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn echo");
        let lines = read_lines(child.stdout.take().unwrap());
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Echo {
            child,
            lines,
            stderr,
            adopted: Vec::new(),
        }
    }

    /// The `echo_service` binary with these arguments.
    pub fn command(args: &[&str]) -> Command {
        Echo::example("echo_service", args)
    }

    /// The binary of the example `name` ([`example_binary`]) with these arguments.
    pub fn example(name: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(example_binary(name));
        cmd.args(args);
        cmd
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line on stdout (of this process or one it handed off to: they share it).
    #[track_caller]
    pub fn line(&self) -> String {
        match self.lines.recv_timeout(CHILD_WAIT) {
            Ok(l) => l,
            Err(e) => panic!(
                "no line from the child within {CHILD_WAIT:?} ({e}); stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// The address of the next `listening on ADDR` line.
    #[track_caller]
    pub fn listening(&self) -> std::net::SocketAddr {
        let line = self.line();
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("expected `listening on ADDR`, got {line:?}"));
        addr.parse().expect("an address")
    }

    /// What the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits up to `limit` for the child to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut status = None;
        poll_until(limit, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status
    }

    /// Kills `pid` too when this guard drops (a process the child started).
    pub fn adopt(&mut self, pid: u32) {
        self.adopted.push(pid);
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        for &pid in &self.adopted {
            if alive(pid) {
                kill("KILL", pid);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
