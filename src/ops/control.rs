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
//! ([`spawn_ready`](crate::activation::spawn_ready)), then reports its pid and returns. A
//! copy not ready in time gets SIGTERM, then SIGKILL if it still runs
//! [`Control::stop_timeout`] later, and `start -d` fails only once it is gone: a slow starter
//! is never left serving behind a failed start.
//!
//! The log file is opened with `O_NOFOLLOW`: a symbolic link at its path (planted in a
//! directory others can write to) is refused, not written through.
//!
//! A whole `start -d` holds a lock (`flock`) on the pid file's path with `.lock` appended
//! (`server.pid.lock`, removed when the start is over): a second `start -d` meanwhile fails at
//! once with [`EXIT_ALREADY_RUNNING`] ("another start … is under way") instead of starting a
//! second set of processes that would take the first set's pid files.
//!
//! # Worker processes
//!
//! With [`Control::workers`] `N` above 1 (the examples' `--workers N`), `start -d` starts a
//! supervisor (workerman's master process) in the background, which starts `N` workers, one
//! after the other, each waited for until ready, each with its own threads and its own
//! listener on the same port: a worker binds with `SO_REUSEPORT`
//! ([`TcpServer::bind_reuse_port`](crate::TcpServer::bind_reuse_port)) and the kernel
//! spreads the connections among them (workerman's `count`). Worker `i` (1 to `N`) runs with
//! the environment variable `THREADNET_WORKER=i` ([`worker`] reads it) and writes its pid to
//! its own pid file, the main one's path with `.i` appended (`server.pid.1`, `server.pid.2`;
//! [`Control::pid_path`]). The supervisor writes its pid to the main pid file and never
//! serves. If a worker fails to become ready, the supervisor stops the ones started and
//! exits, and `start -d` fails. Workers need a fixed port: with port 0 each would pick its
//! own. `start` in the foreground refuses `--workers` above 1.
//!
//! The supervisor restarts a worker that ends (killed, crashed, or exited for any reason
//! other than the supervisor's stop): after 100 ms, a delay that doubles with each further
//! end within 60 s (5 s at most); at the fifth end within 60 s it gives up on that worker
//! and says so in the log and in `status`. It writes what it knows to the pid file's path
//! with `.state` appended (`server.pid.state`), removed when it exits. A worker that has
//! handed off (`reload`) is followed through its pid file.
//!
//! `stop` signals the supervisor alone, which stops its workers and exits; `stop` waits for
//! all of them. `reload` hands off one worker at a time (the others serve meanwhile; the
//! supervisor itself is not replaced). `status` prints a line per process, and a `down:`
//! line for each worker that does not run, with the supervisor's reason.
//!
//! # Exit codes
//!
//! * [`EXIT_OK`] (0): started, stopped, reloaded; for `status`, running (every worker).
//! * [`EXIT_FAILED`] (1): the command failed: the server did not start or become ready,
//!   did not exit or hand off before the deadline, has no hand-off (`reload` of a program
//!   that does not handle SIGUSR2, which would end it), or a file or signal could not be
//!   used; for `status`, a worker or the supervisor is down while others run.
//! * [`EXIT_NOT_RUNNING`] (3, as LSB init scripts say it): `stop`, `reload` or `status`
//!   found no running server (no pid file, or one naming a process that is gone).
//! * [`EXIT_ALREADY_RUNNING`] (4): `start` refused, the pid file names a running server, or
//!   another `start -d` of it is under way.
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
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::activation::{self, WORKER_ENV};
use crate::sys::os;

mod command;
mod procs;
pub use command::Command;
mod supervisor;
use procs::{catches, fetch_metrics, is_server, read_pid, uptime, wait_for, worker_pid_path};
use supervisor::{State, Workers};

/// Exit code: the command did what it says; for `status`, the server runs.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command failed (see the module docs).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: no server runs (`stop`, `reload`, `status`).
pub const EXIT_NOT_RUNNING: u8 = 3;
/// Exit code: `start` refused because a server runs already.
pub const EXIT_ALREADY_RUNNING: u8 = 4;

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

/// The environment variable that makes a process the supervisor of `start -d --workers N`.
const SUPERVISOR_ENV: &str = "THREADNET_SUPERVISOR";

/// In a worker process started by `start -d` with [`Control::workers`] above 1, its number
/// (1 to `N`, from `THREADNET_WORKER`); `None` in any other process. A worker must bind its
/// port with `SO_REUSEPORT` ([`TcpServer::bind_reuse_port`](crate::TcpServer::bind_reuse_port))
/// so that its siblings can bind it too.
///
/// ```
/// assert_eq!(threadnet::control::worker(), None); // not started as a worker
/// ```
pub fn worker() -> Option<usize> {
    activation::worker_number()
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

    /// How long `start -d` waits for the server to be ready (with workers: for each worker,
    /// and for the supervisor that many times plus one), and `reload` for the new copy's pid
    /// in the pid file (default 10 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Control {
        self.ready_timeout = timeout;
        self
    }

    /// How long `stop` waits for the server to exit (default 30 s; make it longer than the
    /// server's own graceful-stop deadline). Also how long a copy that `start -d` (or the
    /// supervisor) gave up on, not ready in time, has after SIGTERM before SIGKILL.
    pub fn stop_timeout(mut self, timeout: Duration) -> Control {
        self.stop_timeout = timeout;
        self
    }

    /// How many processes `start -d` starts, sharing the port (default 1; 0 counts as 1);
    /// above 1, under a supervisor that restarts them. See the module docs on worker
    /// processes.
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
            Command::Start => self.start(flags),
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

    fn start(&self, flags: &[String]) -> Result<Outcome, Failure> {
        if replacing() || worker().is_some() {
            return Ok(Outcome::Serve);
        }
        if std::env::var_os(SUPERVISOR_ENV).is_some() {
            let started = supervisor::run(&self.supervised(flags));
            return Ok(Outcome::Exit(if started { EXIT_OK } else { EXIT_FAILED }));
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
        let _lock = StartLock::take(&self.pid_file)?;
        self.refuse_if_running()?;
        // Nothing runs: a supervisor's state file left by one that was killed is stale.
        let _ = fs::remove_file(supervisor::state_path(&self.pid_file));
        if self.workers == 1 {
            return self.daemon(flags, false).map(|pid| {
                println!(
                    "started in the background: pid {pid}, log {}",
                    self.log_path().display()
                );
                Outcome::Exit(EXIT_OK)
            });
        }
        let supervisor = self.daemon(flags, true)?;
        let pids: Vec<String> = (1..=self.workers)
            .filter_map(|i| read_pid(&worker_pid_path(&self.pid_file, i)))
            .map(|pid| pid.to_string())
            .collect();
        println!(
            "started {} workers in the background: pids {} (supervisor pid {supervisor}), log {}",
            self.workers,
            pids.join(" "),
            self.log_path().display()
        );
        Ok(Outcome::Exit(EXIT_OK))
    }

    /// `THIS start FLAGS`, stdin from `/dev/null`, no inherited listeners.
    fn command(&self, flags: &[String]) -> io::Result<std::process::Command> {
        let exe = activation::own_executable()?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("start")
            .args(flags)
            .stdin(Stdio::null())
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_FDNAMES");
        Ok(cmd)
    }

    /// Starts the background copy (the only server, or with `supervise` the workers'
    /// supervisor) in a new session, logging to the log file, and waits until it is ready:
    /// its pid. One not ready in time is ended before this returns.
    fn daemon(&self, flags: &[String], supervise: bool) -> Result<u32, Failure> {
        let log_path = self.log_path();
        let failed = |what: &str, e: io::Error| Failure(format!("{what}: {e}"), EXIT_FAILED);
        let log = os::open_no_follow(OpenOptions::new().create(true).append(true), &log_path)
            .map_err(|e| {
                failed(
                    &format!("cannot open the log file {}", log_path.display()),
                    e,
                )
            })?;
        let err_log = log
            .try_clone()
            .map_err(|e| failed("cannot use the log file", e))?;
        let mut cmd = self
            .command(flags)
            .map_err(|e| failed("cannot find the executable", e))?;
        cmd.stdout(log).stderr(err_log).env_remove(WORKER_ENV);
        let mut ready_timeout = self.ready_timeout;
        if supervise {
            // It reports ready once every worker is, each given the ready timeout.
            cmd.env(SUPERVISOR_ENV, "1");
            let workers = u32::try_from(self.workers).unwrap_or(u32::MAX);
            ready_timeout = ready_timeout.saturating_mul(workers.saturating_add(1));
        } else {
            cmd.env_remove(SUPERVISOR_ENV);
        }
        os::new_session(&mut cmd).map_err(|e| failed("cannot start in a new session", e))?;
        let child = activation::spawn_ready_waiting(&mut cmd, ready_timeout, self.stop_timeout)
            .map_err(|e| {
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

    /// What the supervisor needs to run this program's workers with `flags`.
    fn supervised(&self, flags: &[String]) -> Workers {
        let (me, flags) = (self.clone(), flags.to_vec());
        Workers {
            count: self.workers,
            pid_file: self.pid_file.clone(),
            stop_timeout: self.stop_timeout,
            spawn: Arc::new(move |i| me.spawn_worker(&flags, i)),
        }
    }

    /// Starts worker `i` from the supervisor (its stdout and stderr are the supervisor's: the
    /// log file) and waits until it is ready; one not ready in time is ended first.
    fn spawn_worker(&self, flags: &[String], i: usize) -> io::Result<Child> {
        let mut cmd = self.command(flags)?;
        cmd.env(WORKER_ENV, i.to_string())
            .env_remove(SUPERVISOR_ENV);
        activation::spawn_ready_waiting(&mut cmd, self.ready_timeout, self.stop_timeout)
    }

    /// The supervisor of the workers, if one runs: named by the main pid file and by its
    /// state file.
    fn supervisor(&self) -> Option<(u32, State)> {
        let state = State::read(&supervisor::state_path(&self.pid_file))?;
        let pid = state.supervisor;
        (read_pid(&self.pid_file) == Some(pid) && is_server(pid)).then_some((pid, state))
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
        // A supervisor stops its workers itself: signalled alone, so that it does not take
        // their ends for crashes and restart them.
        let signalled = match self.supervisor() {
            Some((pid, _)) => vec![pid],
            None => pids.clone(),
        };
        for &pid in &signalled {
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
        let supervisor = self.supervisor().map(|(pid, _)| pid);
        let running: Vec<_> = self
            .running_all()
            .into_iter()
            .filter(|r| Some(r.2) != supervisor)
            .collect();
        if running.is_empty() {
            return Err(match supervisor {
                Some(pid) => Failure(
                    format!("no worker runs (supervisor pid {pid}); see status"),
                    EXIT_FAILED,
                ),
                None => self.not_running(),
            });
        }
        // SIGUSR2's default action ends a process: refuse before signalling any.
        for (_, _, pid) in &running {
            if catches(*pid, os::SIGUSR2) == Some(false) {
                return Err(Failure(
                    format!(
                        "pid {pid} does not handle SIGUSR2: the program has no hand-off, and \
                         the signal would end it; not reloaded (stop, then start -d)"
                    ),
                    EXIT_FAILED,
                ));
            }
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
                    let old_now = match is_server(old) {
                        true => format!("pid {old} serves on"),
                        false => format!("pid {old} has exited: nothing serves in its place"),
                    };
                    return Err(Failure(
                        format!(
                            "no new process in {} within {:?}; {old_now}",
                            path.display(),
                            self.ready_timeout
                        ),
                        EXIT_FAILED,
                    ));
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
        let line = |pid: u32, what: String| {
            let up = uptime(pid).map(|up| format!(", up {}s", up.as_secs()));
            println!("running: pid {pid}{}{what}", up.unwrap_or_default());
        };
        let mut down = false;
        let state = State::read(&supervisor::state_path(&self.pid_file))
            .filter(|state| read_pid(&self.pid_file) == Some(state.supervisor));
        match state {
            Some(state) => {
                // Under a supervisor: every worker it has, running or not.
                let n = state.slots.len();
                match self.supervisor() {
                    Some((pid, _)) => line(pid, format!(" (supervisor of {n} workers)")),
                    None => {
                        down = true;
                        println!(
                            "down: supervisor (pid {} is gone): the workers are not restarted",
                            state.supervisor
                        );
                    }
                }
                for i in 1..=n {
                    match running.iter().find(|r| r.0 == Some(i)) {
                        Some(&(_, _, pid)) => line(pid, format!(" (worker {i})")),
                        None => {
                            down = true;
                            let why = state.why_down(i).unwrap_or("not running");
                            println!("down: worker {i} ({why})");
                        }
                    }
                }
            }
            None => {
                for (worker, _, pid) in running {
                    let worker = worker.map(|i| format!(" (worker {i})"));
                    line(pid, worker.unwrap_or_default());
                }
            }
        }
        if let Some(addr) = &self.metrics_addr {
            match fetch_metrics(addr, Duration::from_secs(2)) {
                Ok(body) => print!("metrics from http://{addr}/metrics:\n{body}"),
                Err(e) => eprintln!("no metrics from http://{addr}/metrics: {e}"),
            }
        }
        Ok(Outcome::Exit(if down { EXIT_FAILED } else { EXIT_OK }))
    }
}

/// A failed command: what to print and the exit code.
struct Failure(String, u8);

/// This process was started with inherited listeners meant for it (a hand-off, or systemd):
/// it replaces a running server rather than competing with it.
fn replacing() -> bool {
    std::env::var("LISTEN_PID").is_ok_and(|p| p.trim() == std::process::id().to_string())
}

/// The lock a `start -d` holds from its check for a running server to its end (see the
/// module docs): `flock` on the pid file's path with `.lock` appended, the file removed
/// (while still locked) when it drops.
struct StartLock {
    path: PathBuf,
    /// Holds the lock until it closes, after `drop` has removed the path.
    _file: File,
}

impl StartLock {
    fn take(pid_file: &Path) -> Result<StartLock, Failure> {
        let mut path = pid_file.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let failed =
            |e: io::Error| Failure(format!("cannot lock {}: {e}", path.display()), EXIT_FAILED);
        // A lock on a file that another start has removed meanwhile locks nothing: try
        // again on the file now at the path (a few times: each retry means a start ended).
        for _ in 0..8 {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).mode(0o644);
            let file = os::open_no_follow(&mut options, &path).map_err(failed)?;
            if !os::try_lock(&file).map_err(failed)? {
                return Err(Failure(
                    format!(
                        "another start of this server is under way (it holds {}); \
                         try again once it is done",
                        path.display()
                    ),
                    EXIT_ALREADY_RUNNING,
                ));
            }
            let held = file.metadata().map_err(failed)?;
            let now = fs::symlink_metadata(&path);
            if now.is_ok_and(|m| m.dev() == held.dev() && m.ino() == held.ino()) {
                return Ok(StartLock { path, _file: file });
            }
        }
        Err(failed(io::Error::other(
            "the lock file keeps being replaced",
        )))
    }
}

impl Drop for StartLock {
    fn drop(&mut self) {
        // Removed before it is unlocked (when the file closes, after this), so that nobody
        // locks it after.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
#[path = "control/tests.rs"]
mod tests;
