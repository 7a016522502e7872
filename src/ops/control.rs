//! goes' command line for a server program: `start`, `start -d`, `stop`, `reload`, `status`,
//! driven by a pid file.
//!
//! ```text
//! server start [FLAGS]      serve in the foreground (as without a command)
//! server start -d [FLAGS]   serve in the background; returns once the server is ready
//!        (with --workers N: N processes sharing the port, see below)
//! server stop               SIGTERM, then wait for the process to exit
//! server reload             SIGUSR2: hand off to a new copy without closing the port
//! server status             running or not, pid, uptime (one line per process), and the
//!                           metrics snapshot if the server serves one (Control::metrics_addr)
//! ```
//!
//! [`Command::split`] takes the command word off the front of the arguments, and
//! [`Control::run`] carries it out. Only `start` (in the foreground, or in the background
//! child) comes back with [`Outcome::Serve`]: the program then serves as it always did,
//! writes its pid with [`PidFile`](crate::activation::PidFile) and calls
//! [`notify_ready`](crate::activation::notify_ready) once it listens. Every other command
//! ends with [`Outcome::Exit`], its message printed.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use threadnet::control::{Command, Control, Outcome};
//!
//! let (command, flags) = Command::split(std::env::args().skip(1));
//! let control = Control::new("server.pid");
//! match control.run(command.unwrap_or(Command::Start), &flags) {
//!     Outcome::Serve => { /* bind, serve, PidFile::create("server.pid"), notify_ready, … */ }
//!     Outcome::Exit(code) => std::process::exit(code.into()),
//! }
//! ```
//!
//! # Background without `fork`
//!
//! A threaded process cannot safely `fork` and go on running Rust code in the child. So
//! `start -d` starts a fresh copy of the executable (the same flags, with `start` instead of
//! `start -d`) in a new session (`setsid`: no controlling terminal), stdin from `/dev/null`,
//! stdout and stderr appended to the log file (goes' `StdoutFile`; by default the pid file's
//! path with the extension `log`: `server.pid` logs to `server.log`). It waits up to
//! [`Control::ready_timeout`] for the copy to send `READY=1`
//! ([`spawn_ready`](crate::activation::spawn_ready)), then reports its pid and returns.
//!
//! # Worker processes
//!
//! With [`Control::workers`] `N` above 1 (the examples' `--workers N`), `start -d` starts `N`
//! copies, one after the other, each waited for until ready, each with its own threads and
//! its own listener on the same port: a worker binds with `SO_REUSEPORT`
//! ([`TcpServer::bind_reuse_port`](crate::TcpServer::bind_reuse_port)) and the kernel
//! spreads the connections among them (workerman's `count`). Worker `i` (1 to `N`) runs with
//! the environment variable `THREADNET_WORKER=i` ([`worker`] reads it) and writes its pid to
//! its own pid file, the main one's path with `.i` appended (`server.pid.1`, `server.pid.2`;
//! [`Control::pid_path`]). `stop`, `reload` and `status` act on every process named by the
//! pid file or a worker pid file: `stop` signals them all and waits for all, `reload` hands
//! off one worker at a time (the others serve meanwhile), `status` prints a line per process.
//! If a worker fails to become ready, the ones started are stopped and `start -d` fails.
//! Workers need a fixed port: with port 0 each would pick its own. `start` in the foreground
//! refuses `--workers` above 1.
//!
//! # Exit codes
//!
//! * [`EXIT_OK`] (0): started, stopped, reloaded; for `status`, running.
//! * [`EXIT_FAILED`] (1): the command failed: the server did not start or become ready,
//!   did not exit or hand off before the deadline, or a file or signal could not be used.
//! * [`EXIT_NOT_RUNNING`] (3, as LSB init scripts say it): `stop`, `reload` or `status`
//!   found no running server (no pid file, or one naming a process that is gone).
//! * [`EXIT_ALREADY_RUNNING`] (4): `start` refused, the pid file names a running server.
//!
//! # The pid file
//!
//! A pid file naming a process that is gone (or a zombie, or a process of another program
//! name, the pid having been reused) is stale: `start` goes ahead and the server replaces
//! it. A copy started by a hand-off (it inherits the listener with `LISTEN_PID` set to its
//! own pid) is never refused: the process it replaces is still running, by design.
//!
//! Linux only (it reads `/proc`); elsewhere the commands fail with [`EXIT_FAILED`].

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::activation;
use crate::sys::os;

/// Exit code: the command did what it says; for `status`, the server runs.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command failed (see the module docs).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: no server runs (`stop`, `reload`, `status`).
pub const EXIT_NOT_RUNNING: u8 = 3;
/// Exit code: `start` refused because a server runs already.
pub const EXIT_ALREADY_RUNNING: u8 = 4;

/// One of goes' commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `start`: serve in the foreground.
    Start,
    /// `start -d`: serve in the background, logging to the log file.
    StartDaemon,
    /// `stop`: graceful stop (SIGTERM), waiting for the process to exit.
    Stop,
    /// `reload`: hand off to a new copy (SIGUSR2), waiting for its pid in the pid file.
    Reload,
    /// `status`: running or not, pid, uptime.
    Status,
}

impl Command {
    /// Takes the command off the front of `args` (the program's arguments without its name):
    /// `start`, `start -d` (or `start --daemon`), `stop`, `reload`, `status`. Returns it
    /// (`None` if the first argument is none of these: a flag, or nothing) and the arguments
    /// that follow it.
    ///
    /// ```
    /// use threadnet::control::Command;
    ///
    /// let args = ["start", "-d", "--addr", "127.0.0.1:0"].map(String::from);
    /// let (command, flags) = Command::split(args);
    /// assert_eq!(command, Some(Command::StartDaemon));
    /// assert_eq!(flags, ["--addr", "127.0.0.1:0"]);
    /// assert_eq!(Command::split(flags).0, None); // no command: the program decides
    /// ```
    pub fn split(args: impl IntoIterator<Item = String>) -> (Option<Command>, Vec<String>) {
        let mut args: Vec<String> = args.into_iter().collect();
        let command = match args.first().map(String::as_str) {
            Some("start") => Command::Start,
            Some("stop") => Command::Stop,
            Some("reload") => Command::Reload,
            Some("status") => Command::Status,
            _ => return (None, args),
        };
        args.remove(0);
        if command == Command::Start
            && matches!(args.first().map(String::as_str), Some("-d" | "--daemon"))
        {
            args.remove(0);
            return (Some(Command::StartDaemon), args);
        }
        (Some(command), args)
    }
}

/// What the program does after [`Control::run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Serve now, in this process (`start`).
    Serve,
    /// Exit with this code (see the module docs); the result has been printed.
    Exit(u8),
}

/// Carries out the commands for one server program, named by its pid file.
#[derive(Clone, Debug)]
pub struct Control {
    pid_file: PathBuf,
    log_file: Option<PathBuf>,
    ready_timeout: Duration,
    stop_timeout: Duration,
    workers: usize,
    metrics_addr: Option<String>,
}

/// The environment variable that makes a process worker `i` of a `start -d --workers N`.
const WORKER_ENV: &str = "THREADNET_WORKER";

/// In a worker process started by `start -d` with [`Control::workers`] above 1, its number
/// (1 to `N`, from `THREADNET_WORKER`); `None` in any other process. A worker must bind its
/// port with `SO_REUSEPORT` ([`TcpServer::bind_reuse_port`](crate::TcpServer::bind_reuse_port))
/// so that its siblings can bind it too.
///
/// ```
/// assert_eq!(threadnet::control::worker(), None); // not started as a worker
/// ```
pub fn worker() -> Option<usize> {
    std::env::var(WORKER_ENV)
        .ok()?
        .parse()
        .ok()
        .filter(|&i| i > 0)
}

impl Control {
    /// The commands for the server whose pid file is `pid_file`. Defaults: the log file is
    /// `pid_file` with the extension `log`, 10 s to become ready, 30 s to stop.
    pub fn new(pid_file: impl Into<PathBuf>) -> Control {
        Control {
            pid_file: pid_file.into(),
            log_file: None,
            ready_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(30),
            workers: 1,
            metrics_addr: None,
        }
    }

    /// Where `start -d` appends the server's stdout and stderr.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Control {
        self.log_file = Some(path.into());
        self
    }

    /// How long `start -d` waits for the server to be ready, and `reload` for the new copy's
    /// pid in the pid file (default 10 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Control {
        self.ready_timeout = timeout;
        self
    }

    /// How long `stop` waits for the server to exit (default 30 s; make it longer than the
    /// server's own graceful-stop deadline).
    pub fn stop_timeout(mut self, timeout: Duration) -> Control {
        self.stop_timeout = timeout;
        self
    }

    /// How many processes `start -d` starts, sharing the port (default 1; 0 counts as 1).
    /// See the module docs on worker processes.
    pub fn workers(mut self, n: usize) -> Control {
        self.workers = n.max(1);
        self
    }

    /// Where the server serves its metrics (`HOST:PORT`, as
    /// [`serve_prometheus`](crate::metrics::serve_prometheus) does): `status` then fetches
    /// `http://HOST:PORT/metrics` (2 s at most) and prints the snapshot after the process
    /// lines. A failed fetch is reported on stderr and does not change the exit code. With
    /// worker processes sharing the metrics port, one of them answers: its own counters.
    pub fn metrics_addr(mut self, addr: impl Into<String>) -> Control {
        self.metrics_addr = Some(addr.into());
        self
    }

    /// The pid file this process writes when it serves: the one given to [`Control::new`],
    /// or in worker `i` ([`worker`]) that path with `.i` appended.
    ///
    /// ```
    /// use threadnet::control::Control;
    ///
    /// let control = Control::new("server.pid");
    /// assert_eq!(control.pid_path(), std::path::Path::new("server.pid")); // not a worker
    /// ```
    pub fn pid_path(&self) -> PathBuf {
        match worker() {
            Some(i) => worker_pid_path(&self.pid_file, i),
            None => self.pid_file.clone(),
        }
    }

    /// The log file `start -d` writes to.
    pub fn log_path(&self) -> PathBuf {
        self.log_file
            .clone()
            .unwrap_or_else(|| self.pid_file.with_extension("log"))
    }

    /// Carries out `command`; `flags` are the program's other arguments, passed on to the
    /// background copy by `start -d`. Prints what it did (to stdout) or why it failed (to
    /// stderr).
    ///
    /// ```
    /// use threadnet::control::{Command, Control, Outcome, EXIT_NOT_RUNNING};
    ///
    /// let pid_file = std::env::temp_dir().join("threadnet-doc-nothing-here.pid");
    /// let control = Control::new(&pid_file);
    /// assert_eq!(control.log_path(), pid_file.with_extension("log"));
    /// // No pid file: nothing runs ("not running (no pid file at …)" on stderr).
    /// assert_eq!(control.run(Command::Status, &[]), Outcome::Exit(EXIT_NOT_RUNNING));
    /// ```
    pub fn run(&self, command: Command, flags: &[String]) -> Outcome {
        let result = match command {
            Command::Start => self.start(),
            Command::StartDaemon => self.start_daemon(flags),
            Command::Stop => self.stop(),
            Command::Reload => self.reload(),
            Command::Status => self.status(),
        };
        match result {
            Ok(outcome) => outcome,
            Err(e) => {
                eprintln!("{}", e.0);
                Outcome::Exit(e.1)
            }
        }
    }

    /// The pid files: the main one, then the workers' in order (those that exist).
    fn pid_files(&self) -> Vec<(Option<usize>, PathBuf)> {
        let mut files = vec![(None, self.pid_file.clone())];
        let name = self
            .pid_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let dir = match self.pid_file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut workers: Vec<usize> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let file = e.file_name().to_string_lossy().into_owned();
                let rest = file.strip_prefix(name.as_deref()?)?.strip_prefix('.')?;
                rest.parse().ok().filter(|&i| i > 0)
            })
            .collect();
        workers.sort_unstable();
        files.extend(
            workers
                .into_iter()
                .map(|i| (Some(i), worker_pid_path(&self.pid_file, i))),
        );
        files
    }

    /// The running processes: each pid file's pid (and worker number), if that process lives.
    fn running_all(&self) -> Vec<(Option<usize>, PathBuf, u32)> {
        self.pid_files()
            .into_iter()
            .filter_map(|(i, path)| {
                let pid = read_pid(&path).filter(|&pid| is_server(pid))?;
                Some((i, path, pid))
            })
            .collect()
    }

    /// The running server's pid: the pid file's, or a worker's, if that process lives.
    fn running(&self) -> Option<u32> {
        self.running_all().first().map(|r| r.2)
    }

    fn start(&self) -> Result<Outcome, Failure> {
        if replacing() || worker().is_some() {
            return Ok(Outcome::Serve);
        }
        if self.workers > 1 {
            return Err(Failure(
                "worker processes are started in the background only: use start -d".into(),
                EXIT_FAILED,
            ));
        }
        self.refuse_if_running()?;
        Ok(Outcome::Serve)
    }

    fn refuse_if_running(&self) -> Result<(), Failure> {
        if let Some(pid) = self.running() {
            return Err(Failure(
                format!(
                    "already running (pid {pid}, pid file {}); stop it first",
                    self.pid_file.display()
                ),
                EXIT_ALREADY_RUNNING,
            ));
        }
        if let Some(pid) = read_pid(&self.pid_file) {
            eprintln!(
                "stale pid file {} (pid {pid} is gone): replacing it",
                self.pid_file.display()
            );
        }
        Ok(())
    }

    fn start_daemon(&self, flags: &[String]) -> Result<Outcome, Failure> {
        self.refuse_if_running()?;
        if self.workers == 1 {
            return self.spawn(flags, None).map(|pid| {
                println!(
                    "started in the background: pid {pid}, log {}",
                    self.log_path().display()
                );
                Outcome::Exit(EXIT_OK)
            });
        }
        let mut pids = Vec::new();
        for i in 1..=self.workers {
            match self.spawn(flags, Some(i)) {
                Ok(pid) => pids.push(pid),
                Err(e) => {
                    for &pid in &pids {
                        let _ = os::terminate(pid);
                    }
                    wait_for(self.stop_timeout, || pids.iter().all(|&p| !is_server(p)));
                    return Err(Failure(format!("worker {i}: {}", e.0), e.1));
                }
            }
        }
        let list: Vec<String> = pids.iter().map(u32::to_string).collect();
        println!(
            "started {} workers in the background: pids {}, log {}",
            self.workers,
            list.join(" "),
            self.log_path().display()
        );
        Ok(Outcome::Exit(EXIT_OK))
    }

    /// Starts one background copy (worker `worker`, or the only server) and waits until it
    /// is ready: its pid.
    fn spawn(&self, flags: &[String], worker: Option<usize>) -> Result<u32, Failure> {
        let log_path = self.log_path();
        let failed = |what: &str, e: io::Error| Failure(format!("{what}: {e}"), EXIT_FAILED);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| {
                failed(
                    &format!("cannot open the log file {}", log_path.display()),
                    e,
                )
            })?;
        let err_log = log
            .try_clone()
            .map_err(|e| failed("cannot use the log file", e))?;
        let exe = std::env::current_exe().map_err(|e| failed("cannot find the executable", e))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("start")
            .args(flags)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDS");
        match worker {
            Some(i) => cmd.env(WORKER_ENV, i.to_string()),
            None => cmd.env_remove(WORKER_ENV),
        };
        os::new_session(&mut cmd).map_err(|e| failed("cannot start in a new session", e))?;
        let child = activation::spawn_ready(&mut cmd, self.ready_timeout).map_err(|e| {
            failed(
                &format!(
                    "the server did not start (see {} for its output)",
                    log_path.display()
                ),
                e,
            )
        })?;
        // Dropping the Child leaves it running; once this process exits, init reaps it.
        Ok(child.id())
    }

    fn not_running(&self) -> Failure {
        let why = match read_pid(&self.pid_file) {
            Some(pid) => format!(
                "not running (stale pid file {}: pid {pid} is gone)",
                self.pid_file.display()
            ),
            None => format!("not running (no pid file at {})", self.pid_file.display()),
        };
        Failure(why, EXIT_NOT_RUNNING)
    }

    fn stop(&self) -> Result<Outcome, Failure> {
        let running = self.running_all();
        if running.is_empty() {
            return Err(self.not_running());
        }
        let pids: Vec<u32> = running.iter().map(|r| r.2).collect();
        for &pid in &pids {
            os::terminate(pid)
                .map_err(|e| Failure(format!("cannot signal pid {pid}: {e}"), EXIT_FAILED))?;
        }
        if !wait_for(self.stop_timeout, || pids.iter().all(|&p| !is_server(p))) {
            let left: Vec<String> = pids
                .iter()
                .filter(|&&p| is_server(p))
                .map(u32::to_string)
                .collect();
            return Err(Failure(
                format!(
                    "pid {} still running {:?} after SIGTERM",
                    left.join(" "),
                    self.stop_timeout
                ),
                EXIT_FAILED,
            ));
        }
        let list: Vec<String> = pids.iter().map(u32::to_string).collect();
        println!("stopped (pid {})", list.join(" "));
        Ok(Outcome::Exit(EXIT_OK))
    }

    fn reload(&self) -> Result<Outcome, Failure> {
        let running = self.running_all();
        if running.is_empty() {
            return Err(self.not_running());
        }
        // One process at a time: the others serve while it hands off.
        for (_, path, old) in running {
            os::send_signal(old, os::SIGUSR2)
                .map_err(|e| Failure(format!("cannot signal pid {old}: {e}"), EXIT_FAILED))?;
            let mut new = None;
            let handed_off = wait_for(self.ready_timeout, || {
                new = read_pid(&path).filter(|&pid| pid != old && is_server(pid));
                new.is_some()
            });
            match new {
                Some(new) if handed_off => println!("reloaded: pid {old} handed off to pid {new}"),
                _ => {
                    return Err(Failure(
                        format!(
                            "no new process in {} within {:?}; pid {old} serves on",
                            path.display(),
                            self.ready_timeout
                        ),
                        EXIT_FAILED,
                    ))
                }
            }
        }
        Ok(Outcome::Exit(EXIT_OK))
    }

    fn status(&self) -> Result<Outcome, Failure> {
        let running = self.running_all();
        if running.is_empty() {
            return Err(self.not_running());
        }
        for (worker, _, pid) in running {
            let up = uptime(pid).map(|up| format!(", up {}s", up.as_secs()));
            let worker = worker.map(|i| format!(" (worker {i})"));
            println!(
                "running: pid {pid}{}{}",
                up.unwrap_or_default(),
                worker.unwrap_or_default()
            );
        }
        if let Some(addr) = &self.metrics_addr {
            match fetch_metrics(addr, Duration::from_secs(2)) {
                Ok(body) => print!("metrics from http://{addr}/metrics:\n{body}"),
                Err(e) => eprintln!("no metrics from http://{addr}/metrics: {e}"),
            }
        }
        Ok(Outcome::Exit(EXIT_OK))
    }
}

/// A failed command: what to print and the exit code.
struct Failure(String, u8);

/// This process was started with inherited listeners meant for it (a hand-off, or systemd):
/// it replaces a running server rather than competing with it.
fn replacing() -> bool {
    std::env::var("LISTEN_PID").is_ok_and(|p| p.trim() == std::process::id().to_string())
}

/// `GET /metrics` from `addr` over HTTP/1.0 (the server closes after the reply), each
/// connect, write and read bounded by `timeout`, the reply by 1 MiB: the body of a 200.
fn fetch_metrics(addr: &str, timeout: Duration) -> io::Result<String> {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    stream.take(1 << 20).read_to_end(&mut reply)?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no complete HTTP reply"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("reply {status:?}"),
        ));
    }
    Ok(body.to_string())
}

/// Worker `i`'s pid file: `pid_file` with `.i` appended.
fn worker_pid_path(pid_file: &Path, i: usize) -> PathBuf {
    let mut path = pid_file.as_os_str().to_owned();
    path.push(format!(".{i}"));
    PathBuf::from(path)
}

/// The pid in the pid file, if there is one and it holds a number.
fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `/proc/PID/stat`: the command name (in parentheses) and the fields after it.
fn stat(pid: u32) -> Option<(String, Vec<String>)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let (_, name) = head.split_once('(')?;
    Some((
        name.to_string(),
        rest.split_whitespace().map(str::to_string).collect(),
    ))
}

/// `pid` is a live process (not a zombie) running a program of this one's name.
fn is_server(pid: u32) -> bool {
    let Some((name, fields)) = stat(pid) else {
        return false;
    };
    let own = stat(std::process::id()).map(|(n, _)| n);
    fields.first().is_some_and(|state| state != "Z") && own.map_or(true, |own| own == name)
}

/// How long `pid` has run: the system's uptime less the process's start time (field 22 of
/// `/proc/PID/stat`, in clock ticks of 1/100 s, the Linux `USER_HZ`).
fn uptime(pid: u32) -> io::Result<Duration> {
    const TICKS_PER_SECOND: f64 = 100.0;
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc stat");
    let (_, fields) = stat(pid).ok_or_else(invalid)?;
    // Field 22 overall; `fields` starts at field 3 (the state).
    let started: f64 = fields
        .get(19)
        .and_then(|f| f.parse().ok())
        .ok_or_else(invalid)?;
    let mut up = String::new();
    io::Read::read_to_string(&mut File::open("/proc/uptime")?, &mut up)?;
    let system: f64 = up
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)?;
    Ok(Duration::from_secs_f64(
        (system - started / TICKS_PER_SECOND).max(0.0),
    ))
}

/// Polls `done` every 20 ms for up to `limit`: another process's exit, or a file it writes,
/// come with no notification to wait on.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(args: &[&str]) -> (Option<Command>, Vec<String>) {
        Command::split(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_command_word_is_taken_off_the_front() {
        assert_eq!(
            split(&["--addr", "x"]),
            (None, vec!["--addr".into(), "x".into()])
        );
        assert_eq!(
            split(&["start", "-d", "--addr", "x"]).0,
            Some(Command::StartDaemon)
        );
        assert_eq!(
            split(&["start", "--addr", "x"]),
            (Some(Command::Start), vec!["--addr".into(), "x".into()])
        );
        assert_eq!(split(&["stop"]).0, Some(Command::Stop));
        assert_eq!(split(&["reload"]).0, Some(Command::Reload));
        assert_eq!(split(&["status"]).0, Some(Command::Status));
    }

    #[test]
    fn this_process_is_running_and_has_an_uptime() {
        assert!(is_server(std::process::id()));
        assert!(uptime(std::process::id()).is_ok());
    }
}
