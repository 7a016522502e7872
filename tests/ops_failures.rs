//! Hand-offs that fail, and the files and sockets of operations under hostile neighbours:
//!
//! * a new process that fails after writing the pid file must not leave the old one, which
//!   serves on, without its pid file;
//! * a new process that is not ready in time gets SIGTERM (it may have accepted connections),
//!   not SIGKILL;
//! * the new process gets the signal dispositions the old one had before threadnet installed
//!   its handlers (`nohup`'s ignored SIGHUP stays ignored);
//! * a pid file never writes through a planted symlink;
//! * the readiness socket is in a private directory, not at a predictable path;
//! * `start -d` that gives up on a server not ready in time returns only once it is gone;
//! * `reload` refuses a program that has no hand-off instead of killing it with SIGUSR2;
//! * `notify_ready` leaves the environment alone (other threads may be reading it).
//!
//! Some tests run a copy of this test binary as their subject (a daemon, a server without a
//! hand-off, a program to notify from): the copy runs only that test (`--exact NAME`), told
//! apart by the filter [`SUBJECT`], which no test name matches.

mod common;
#[path = "common/process.rs"]
mod process;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use process::{alive, echo_binary, kill, poll_until, Echo, CHILD_WAIT};
use threadnet::activation::{self, PidFile};
use threadnet::control::{Command as Ctl, Control, Outcome, EXIT_FAILED};
use threadnet::signal::{Signal, Signals};

/// A fresh directory of this test's own, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("threadnet-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Collects a pipe on a thread.
fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

#[test]
fn a_hand_off_that_fails_after_the_new_process_wrote_the_pid_file_leaves_the_old_ones() {
    let dir = TempDir::new("pidfail");
    let pid_path = dir.0.join("echo.pid");
    let mut child = Command::new(echo_binary())
        .args(["--addr", "127.0.0.1:0", "--pid-file"])
        .arg(&pid_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = collect(child.stderr.take().unwrap());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on "), "{line:?}");
    let old = child.id();
    assert_eq!(read_pid(&pid_path), Some(old));
    // With stdout closed, the new process takes the listener and writes its pid file, then
    // fails to announce itself and exits, removing the pid file that names it.
    drop(stdout);
    assert!(kill("USR2", old));
    let failed = poll_until(CHILD_WAIT, || {
        stderr.lock().unwrap().contains("hand-off failed")
    });
    let log = stderr.lock().unwrap().clone();
    assert!(failed, "stderr:\n{log}");
    assert!(log.contains("cannot write to stdout"), "stderr:\n{log}");
    // The old process serves on, and so its pid file names it.
    assert!(alive(old));
    assert!(
        poll_until(Duration::from_secs(5), || read_pid(&pid_path) == Some(old)),
        "pid file after the failed hand-off: {:?}",
        fs::read_to_string(&pid_path)
    );
    assert!(kill("TERM", old));
    let mut status = None;
    poll_until(CHILD_WAIT, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    // On exit it removes the file that names it.
    assert!(!pid_path.exists());
}

/// A shell child that writes its `NOTIFY_SOCKET` to `marker`, never says it is ready, and
/// on SIGTERM writes `marker.term` and exits.
fn unready_child(marker: &Path) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(
            r#"trap 'echo term > "$0.term"; exit 0' TERM
echo "$NOTIFY_SOCKET" > "$0.tmp" && mv "$0.tmp" "$0"
i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done"#,
        )
        .arg(marker)
        .stdin(Stdio::null());
    cmd
}

#[test]
fn a_new_process_not_ready_in_time_gets_sigterm_and_the_notify_socket_is_private() {
    let dir = TempDir::new("unready");
    let marker = dir.0.join("notify");
    let mut cmd = unready_child(&marker);
    let waiting = thread::spawn(move || activation::spawn_ready(&mut cmd, Duration::from_secs(2)));
    // While the parent waits: the socket is in a directory only this user can enter, under
    // a name nobody can guess in advance.
    assert!(poll_until(CHILD_WAIT, || marker.exists()));
    let socket = PathBuf::from(fs::read_to_string(&marker).unwrap().trim());
    let private = socket.parent().unwrap();
    let mode = fs::metadata(private).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "{} has mode {mode:o}",
        private.display()
    );
    assert!(fs::metadata(&socket).unwrap().file_type().is_socket());
    let predictable = std::env::temp_dir().join(format!("threadnet-notify-{}", std::process::id()));
    assert!(
        !socket
            .to_string_lossy()
            .starts_with(&*predictable.to_string_lossy()),
        "{}",
        socket.display()
    );
    let err = waiting.join().unwrap().expect_err("never ready");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    // Both are removed once the wait is over.
    assert!(!socket.exists() && !private.exists());
    // Told to stop, not killed: its handler ran.
    let term = dir.0.join("notify.term");
    assert!(
        poll_until(CHILD_WAIT, || term.exists()),
        "the unready child got no SIGTERM"
    );
}

/// Bit `signal` of a `SigIgn:` mask in `/proc/PID/status`.
fn ignores(status: &str, signal: i32) -> bool {
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .expect("a SigIgn line");
    mask & (1 << (signal - 1)) != 0
}

#[test]
fn the_new_process_keeps_a_signal_the_old_one_ignored() {
    // SIGUSR1 ignored when echo starts (as `nohup` ignores SIGHUP); echo does not handle it.
    let dir = TempDir::new("sigign");
    let pid_path = dir.0.join("echo.pid");
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"trap "" USR1; exec "$0" "$@""#)
        .arg(echo_binary())
        .args(["--addr", "127.0.0.1:0", "--pid-file"])
        .arg(&pid_path);
    let mut echo = Echo::spawn(cmd);
    let addr = echo.listening();
    let old = echo.pid();
    let status = fs::read_to_string(format!("/proc/{old}/status")).unwrap();
    assert!(ignores(&status, Signal::Usr1.number()));
    assert!(kill("USR2", old));
    assert_eq!(echo.listening(), addr);
    assert!(poll_until(CHILD_WAIT, || {
        read_pid(&pid_path).is_some_and(|p| p != old)
    }));
    let new = read_pid(&pid_path).unwrap();
    echo.adopt(new);
    let status = fs::read_to_string(format!("/proc/{new}/status")).unwrap();
    assert!(
        ignores(&status, Signal::Usr1.number()),
        "the new process does not ignore SIGUSR1:\n{status}"
    );
}

/// Run by [`a_signal_ignored_before_threadnet_handled_it_is_ignored_in_children`] in a copy
/// of this test binary whose SIGHUP a shell set to ignored.
const INNER: &str = "THREADNET_TEST_SIGHUP_IGNORED";

#[test]
fn a_signal_ignored_before_threadnet_handled_it_is_ignored_in_children() {
    if std::env::var_os(INNER).is_some() {
        // Inside: SIGHUP is ignored; threadnet's handler goes over it, SIGUSR1's over the
        // default. A child started with the inherited-fds hook then has SIGHUP ignored
        // again and SIGUSR1 at its default.
        let _handled = Signals::new(&[Signal::Hup, Signal::Usr1]).unwrap();
        let out = activation::listen_command("/bin/cat", &[])
            .unwrap()
            .arg("/proc/self/status")
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        let status = String::from_utf8(out.stdout).unwrap();
        assert!(ignores(&status, Signal::Hup.number()), "{status}");
        assert!(!ignores(&status, Signal::Usr1.number()), "{status}");
        return;
    }
    let name = "a_signal_ignored_before_threadnet_handled_it_is_ignored_in_children";
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"trap "" HUP; exec "$0" "$@""#)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1"])
        .env(INNER, "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_pid_file_never_writes_through_a_planted_symlink() {
    let dir = TempDir::new("symlink");
    let path = dir.0.join("server.pid");
    let (victim_tmp, victim_final) = (dir.0.join("victim-tmp"), dir.0.join("victim-final"));
    fs::write(&victim_tmp, "precious\n").unwrap();
    fs::write(&victim_final, "precious\n").unwrap();
    // Where the temporary file used to be, predictably, and the pid file itself.
    let tmp = dir
        .0
        .join(format!(".server.pid.{}.tmp", std::process::id()));
    symlink(&victim_tmp, &tmp).unwrap();
    symlink(&victim_final, &path).unwrap();
    let pid_file = PidFile::create(&path).unwrap();
    assert_eq!(fs::read_to_string(&victim_tmp).unwrap(), "precious\n");
    assert_eq!(fs::read_to_string(&victim_final).unwrap(), "precious\n");
    // The pid file is a file of its own now, with our pid.
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
    assert_eq!(read_pid(&path), Some(std::process::id()));
    drop(pid_file);
    assert!(!path.exists());
    assert_eq!(fs::read_to_string(&victim_final).unwrap(), "precious\n");
    // Nothing of ours left beside it but the planted link.
    let left: Vec<_> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("victim"))
        .collect();
    assert_eq!(left, [tmp.file_name().unwrap().to_str().unwrap()]);
}

/// The filter that marks a copy of this binary as a test's subject (no test has this name).
const SUBJECT: &str = "threadnet-ops-subject";

/// In a subject copy, the arguments after [`SUBJECT`]; `None` in the test run itself.
fn subject() -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == SUBJECT)?;
    Some(args[at + 1..].to_vec())
}

/// This binary running only the test `name`, as its subject, with `extra` arguments (more
/// filters, which match no test).
fn subject_command(name: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, SUBJECT])
        .args(extra)
        .stdin(Stdio::null());
    cmd
}

/// Kills a pid on every path out of a test.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if alive(pid) {
                kill("KILL", pid);
            }
        }
    }
}

/// Kills and reaps a child on every path out of a test.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The live processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&pid: &u32| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            alive(pid) && String::from_utf8_lossy(&cmdline).contains(marker)
        })
        .collect()
}

#[test]
fn start_d_gives_up_on_a_slow_starter_and_returns_once_it_is_gone() {
    const NAME: &str = "start_d_gives_up_on_a_slow_starter_and_returns_once_it_is_gone";
    if let Some(args) = subject() {
        // The daemon: catches SIGTERM (a server draining), writes its pid, never says ready.
        let _term = Signals::new(&[Signal::Term]).unwrap();
        fs::write(&args[0], std::process::id().to_string()).unwrap();
        thread::sleep(Duration::from_secs(20));
        return;
    }
    let dir = TempDir::new("slowstart");
    let marker = dir.0.join("subject.pid");
    let marker = marker.to_str().unwrap();
    let control = Control::new(dir.0.join("slow.pid"))
        .log_file(dir.0.join("slow.log"))
        .ready_timeout(Duration::from_secs(2))
        .stop_timeout(Duration::from_millis(500));
    // The daemon runs `THIS start --exact NAME SUBJECT MARKER`: "start" is one more filter.
    let flags = ["--exact", NAME, SUBJECT, marker].map(String::from);
    let outcome = control.run(Ctl::StartDaemon, &flags);
    let left = KillOnDrop(processes_with(marker));
    let log = fs::read_to_string(dir.0.join("slow.log")).unwrap_or_default();
    assert_eq!(outcome, Outcome::Exit(EXIT_FAILED), "{log}");
    // Usually the daemon has caught SIGTERM by then (the marker is written), so only SIGKILL
    // ends it; on a busy machine it may still be starting, and SIGTERM ends it: either way
    // nothing of it may be left.
    assert!(
        left.0.is_empty(),
        "start -d returned with the daemon it gave up on still running: {:?}",
        left.0
    );
}

#[test]
fn reload_refuses_a_program_without_a_hand_off_and_leaves_it_running() {
    const NAME: &str = "reload_refuses_a_program_without_a_hand_off_and_leaves_it_running";
    if subject().is_some() {
        // A server with no SIGUSR2 handler: its default action would end it.
        thread::sleep(Duration::from_secs(20));
        return;
    }
    let dir = TempDir::new("nohandoff");
    let child = subject_command(NAME, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut child = ChildGuard(child);
    let pid_path = dir.0.join("plain.pid");
    fs::write(&pid_path, format!("{pid}\n")).unwrap();
    let control = Control::new(&pid_path).ready_timeout(Duration::from_secs(1));
    assert_eq!(control.run(Ctl::Reload, &[]), Outcome::Exit(EXIT_FAILED));
    assert_eq!(
        child.0.try_wait().unwrap(),
        None,
        "reload killed a program that has no hand-off"
    );
    assert_eq!(read_pid(&pid_path), Some(pid));
}

#[test]
fn notify_ready_notifies_and_leaves_the_environment_alone() {
    const NAME: &str = "notify_ready_notifies_and_leaves_the_environment_alone";
    if subject().is_some() {
        let before = std::env::var_os("NOTIFY_SOCKET");
        assert!(before.is_some());
        assert!(activation::notify_ready().unwrap());
        // Not removed: removing it races with getenv in the threads that run meanwhile.
        assert_eq!(std::env::var_os("NOTIFY_SOCKET"), before);
        // Once per process.
        assert!(!activation::notify_ready().unwrap());
        return;
    }
    let dir = TempDir::new("notifyenv");
    let path = dir.0.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(CHILD_WAIT)).unwrap();
    let child = subject_command(NAME, &[])
        .env("NOTIFY_SOCKET", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(vec![child.id()]);
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 from the child");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        message.starts_with("READY=1\n") && message.contains(&format!("MAINPID={}", child.id())),
        "{message:?}"
    );
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
