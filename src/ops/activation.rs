//! Restarts that never close the port: socket activation (systemd's `LISTEN_FDS` protocol),
//! handing the listener to a new copy of the program, readiness notification, and pid files.
//!
//! # Taking a listener from the service manager
//!
//! Under systemd, a `.socket` unit owns the port and passes the listening socket to the
//! service as fd 3, with `LISTEN_FDS=1` and `LISTEN_PID` set to the service's pid (see
//! `sd_listen_fds(3)`). [`listeners`] reads that, and
//! [`ServerBuilder::listener`](crate::ServerBuilder::listener) serves on it; the port stays
//! open while the service restarts, and connections made meanwhile wait in the backlog.
//!
//! ```no_run
//! use threadnet::activation::{self, Inherited};
//! use threadnet::{codec::Lines, Connection, TcpServer};
//!
//! let builder = match activation::listeners()?.into_iter().find_map(Inherited::into_tcp) {
//!     Some(listener) => TcpServer::builder().listener(listener), // started by systemd
//!     None => TcpServer::builder().addr("127.0.0.1:7000"),      // started by hand
//! };
//! let server = builder.start(Lines::new(), |_: &Connection<Lines>| {
//!     |conn: &Connection<Lines>, line: String| {
//!         let _ = conn.send(line);
//!     }
//! })?;
//! activation::notify_ready()?; // for Type=notify units; does nothing elsewhere
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Handing off to a new copy of the program
//!
//! Without a service manager, [`spawn_self`] starts the program's own executable again, with
//! the same arguments and the listener as fd 3 under the same protocol, and waits until the
//! new process says it is ready. The old process then stops accepting and lets its
//! connections finish: [`StopOnSignals::on_handoff`](crate::signal::StopOnSignals::on_handoff)
//! does that on SIGUSR2. The listening socket is open in one process or both at every moment,
//! so no connection attempt is refused.
//!
//! `LISTEN_PID` must be the child's own pid, which the parent cannot know before the child
//! exists, and std's `Command` cannot change the environment between `fork` and `exec`
//! (`setenv` is not async-signal-safe there anyway). So the child is started through
//! `/bin/sh -c 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"'`: the shell's `$$` is its
//! own pid, and `exec` keeps that pid for the program. The child sees exactly what systemd
//! would have given it.
//!
//! # Daemons
//!
//! A service manager also restarts, logs and limits the service; the units for the `echo`
//! example are in `examples/systemd/`. Without one, [`crate::control`] runs a server in the
//! background (`start -d`: a fresh copy in a new session, no `fork`) and stops, reloads and
//! reports on it through its [`PidFile`].
//!
//! Implemented for Linux on x86_64 and aarch64; elsewhere [`listeners`] and [`spawn_self`]
//! fail with [`io::ErrorKind::Unsupported`].

use std::ffi::OsStr;
use std::fs::{self, DirBuilder, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::sys::os;

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// A listening socket passed down by the service manager or the previous process.
#[derive(Debug)]
#[non_exhaustive]
pub enum Inherited {
    /// An `AF_INET` or `AF_INET6` socket: serve it with
    /// [`ServerBuilder::listener`](crate::ServerBuilder::listener).
    Tcp(TcpListener),
    /// An `AF_UNIX` socket.
    Unix(UnixListener),
}

impl Inherited {
    /// The TCP listener, or `None` for a Unix one.
    pub fn into_tcp(self) -> Option<TcpListener> {
        match self {
            Inherited::Tcp(l) => Some(l),
            Inherited::Unix(_) => None,
        }
    }

    /// The Unix listener, or `None` for a TCP one.
    pub fn into_unix(self) -> Option<UnixListener> {
        match self {
            Inherited::Unix(l) => Some(l),
            Inherited::Tcp(_) => None,
        }
    }
}

/// The listening sockets this process inherited under systemd's socket activation protocol,
/// in order (fd 3 first); empty if it inherited none.
///
/// As `sd_listen_fds(1)` does, it reads `LISTEN_FDS` only if `LISTEN_PID` is this process's
/// pid (a variable left over for a grandchild is ignored), then removes `LISTEN_PID`,
/// `LISTEN_FDS` and `LISTEN_FDNAMES` from the environment so that programs this one starts
/// do not take the fds for theirs, and marks the fds close-on-exec. The fds are handed out
/// once per process: a second call returns an empty list. Call it early in `main`, before
/// other threads read the environment.
///
/// Each fd is returned as TCP or Unix by its address family. They should be listening stream
/// sockets, as `ListenStream=` makes them; the protocol does not say, and this does not check.
///
/// # Errors
///
/// `LISTEN_FDS` or `LISTEN_PID` is not a number, an fd it names is not open or not a socket
/// of a family above, or the platform is not supported ([`io::ErrorKind::Unsupported`]).
pub fn listeners() -> io::Result<Vec<Inherited>> {
    Ok(named_listeners()?.into_iter().map(|(_, l)| l).collect())
}

/// The environment variable that makes a process worker `i` of a `start -d --workers N`.
pub(crate) const WORKER_ENV: &str = "THREADNET_WORKER";

/// This process's worker number, from [`WORKER_ENV`] (what [`crate::control::worker`] says).
pub(crate) fn worker_number() -> Option<usize> {
    std::env::var(WORKER_ENV)
        .ok()?
        .parse()
        .ok()
        .filter(|&i| i > 0)
}

/// The TCP listener to serve on: the first one inherited ([`listeners`]: from systemd or from
/// the process this one replaces), else a new one bound to `addr`: in a worker process
/// ([`crate::control::worker`]) with `SO_REUSEPORT`, shared with its siblings
/// ([`TcpServer::bind_reuse_port`](crate::TcpServer::bind_reuse_port)). With
/// [`ServerBuilder::listener`](crate::ServerBuilder::listener), the one line a server needs
/// for socket activation, hand-offs and worker processes.
///
/// # Errors
///
/// As [`listeners`], or binding `addr` fails.
pub fn tcp_listener(addr: &str) -> io::Result<std::net::TcpListener> {
    match listeners()?.into_iter().find_map(Inherited::into_tcp) {
        Some(inherited) => Ok(inherited),
        None if worker_number().is_some() => crate::TcpServer::bind_reuse_port(addr),
        None => std::net::TcpListener::bind(addr),
    }
}

/// As [`listeners`], each with its name from `LISTEN_FDNAMES` (`FileDescriptorName=` in the
/// `.socket` unit; `"unknown"` when not given, as `sd_listen_fds_with_names(3)` does).
///
/// # Errors
///
/// As [`listeners`].
pub fn named_listeners() -> io::Result<Vec<(String, Inherited)>> {
    let pid = take_env("LISTEN_PID");
    let count = take_env("LISTEN_FDS");
    let names = take_env("LISTEN_FDNAMES");
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(Vec::new());
    };
    if number(&pid, "LISTEN_PID")? != u64::from(std::process::id()) {
        return Ok(Vec::new());
    }
    let count = number(&count, "LISTEN_FDS")?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut names = names.as_deref().unwrap_or("").split(':');
    os::take_listen_fds(count)?
        .into_iter()
        .map(|fd| {
            let name = names.next().filter(|n| !n.is_empty()).unwrap_or("unknown");
            Ok((name.to_string(), classify(fd)?))
        })
        .collect()
}

fn take_env(name: &str) -> Option<String> {
    let value = std::env::var(name).ok();
    std::env::remove_var(name);
    value
}

fn number(value: &str, name: &str) -> io::Result<u64> {
    value.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name} is not a number: {value:?}"),
        )
    })
}

fn classify(fd: OwnedFd) -> io::Result<Inherited> {
    match os::socket_family(fd.as_fd())? {
        AF_INET | AF_INET6 => Ok(Inherited::Tcp(TcpListener::from(fd))),
        AF_UNIX => Ok(Inherited::Unix(UnixListener::from(fd))),
        family => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("inherited socket of address family {family}, neither TCP nor Unix"),
        )),
    }
}

/// The shell step that sets `LISTEN_PID` to the program's own pid: `$$` is the shell's pid,
/// and `exec` runs the program (`$0`, with its arguments `$@`) in that same process.
const SET_PID_AND_EXEC: &str = r#"LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@""#;

/// A [`Command`] that runs `program` with `listeners` as fds 3, 4, … and `LISTEN_FDS`,
/// `LISTEN_PID` set as systemd would set them (see the module docs for how `LISTEN_PID` is
/// made right). Add arguments, environment and stdio to it as to any `Command`, then spawn it.
///
/// The fds are duplicated now: the listeners may be dropped before the spawn. In this process
/// they stay close-on-exec, so no other child inherits them.
///
/// ```no_run
/// use std::net::TcpListener;
/// use std::os::fd::AsFd;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut child = threadnet::activation::listen_command("./server", &[listener.as_fd()])?
///     .arg("--verbose")
///     .spawn()?;
/// # child.kill()?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// An fd cannot be duplicated (too many open files), or more than 64 listeners. Errors of the
/// child's setup (placing the fds) come from `spawn`; on an unsupported platform `spawn`
/// fails with [`io::ErrorKind::Unsupported`].
pub fn listen_command(
    program: impl AsRef<OsStr>,
    listeners: &[BorrowedFd<'_>],
) -> io::Result<Command> {
    let fds = listeners
        .iter()
        .map(|fd| fd.try_clone_to_owned())
        .collect::<io::Result<Vec<_>>>()?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(SET_PID_AND_EXEC)
        .arg(program)
        .env("LISTEN_FDS", fds.len().to_string())
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES");
    if let Err(e) = os::inherit_fds(&mut cmd, fds) {
        if e.kind() != io::ErrorKind::Unsupported {
            return Err(e);
        }
        // Make spawn fail, rather than start a child without its fds.
        cmd = Command::new("");
    }
    Ok(cmd)
}

/// The path of this program's executable, as a new copy of it should be started: Linux reports
/// the running file as `PATH (deleted)` once an upgrade has replaced the file at `PATH` (std
/// does not remove the suffix, Go's `os.Executable` does), and the new copy is to run the new
/// file there.
pub(crate) fn own_executable() -> io::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let deleted = exe
        .to_str()
        .and_then(|s| s.strip_suffix(" (deleted)"))
        .map(std::path::PathBuf::from);
    Ok(deleted.unwrap_or(exe))
}

/// Starts a new copy of this program (`std::env::current_exe()`, the same arguments) with
/// `listeners` inherited as fds 3, 4, … ([`listen_command`]), and waits up to `ready_timeout`
/// for it to call [`notify_ready`] ([`spawn_ready`]). Its stdin, stdout and stderr are this
/// process's.
///
/// Returns the running child; dropping the [`Child`] leaves it running. The caller then stops
/// accepting and lets its own connections finish.
///
/// # Errors
///
/// The child could not be started, exited, or was not ready in time; this process should go
/// on serving then. A child that is still running gets SIGTERM, as [`spawn_ready`] says, and
/// this process's [`PidFile`]s name it again once the child is gone. Or the platform is not
/// supported.
pub fn spawn_self(listeners: &[BorrowedFd<'_>], ready_timeout: Duration) -> io::Result<Child> {
    let exe = own_executable()?;
    let mut cmd = listen_command(&exe, listeners)?;
    cmd.args(std::env::args_os().skip(1));
    spawn_ready(&mut cmd, ready_timeout)
}

/// Spawns `cmd` with `NOTIFY_SOCKET` set, and waits up to `ready_timeout` for the child to
/// call [`notify_ready`] (or send `READY=1` there as `sd_notify(3)` does). The socket is in a
/// new directory of the temp dir with an unpredictable name and mode 0700, so no other user
/// can take its path or send `READY=1` to it; both are removed when the wait is over.
///
/// A child that is not ready in time may have taken the listener and accepted connections
/// already, so it is not killed outright: it gets SIGTERM, on which a threadnet server stops
/// gracefully (its clients get their replies and a FIN), and only if it still runs
/// [`KILL_AFTER`] later, SIGKILL. A thread reaps it meanwhile. Once it is gone, every
/// [`PidFile`] of this process names this process again (the child may have replaced it with
/// its own pid, and removed it on the way out).
///
/// # Errors
///
/// The child could not be started, exited, or was not ready in time; or the directory or
/// socket could not be made.
pub fn spawn_ready(cmd: &mut Command, ready_timeout: Duration) -> io::Result<Child> {
    let (child, ready) = spawn_and_wait(cmd, ready_timeout)?;
    match ready {
        Ok(()) => Ok(child),
        Err(e) => {
            give_up_on(child);
            Err(e)
        }
    }
}

/// As [`spawn_ready`], but a child that is not ready in time is ended before this returns:
/// SIGTERM, up to `grace` to exit, then SIGKILL, and reaped. For a caller that is about to
/// exit (`start -d`) or that must not leave a half-started copy running (a supervisor): a
/// reaping thread would die with it, and the child serve on.
pub(crate) fn spawn_ready_waiting(
    cmd: &mut Command,
    ready_timeout: Duration,
    grace: Duration,
) -> io::Result<Child> {
    let (mut child, ready) = spawn_and_wait(cmd, ready_timeout)?;
    match ready {
        Ok(()) => Ok(child),
        Err(e) => {
            end(&mut child, grace);
            Err(e)
        }
    }
}

/// Spawns `cmd` with `NOTIFY_SOCKET` set, waits up to `ready_timeout` for `READY=1`: the
/// child, and whether it became ready.
fn spawn_and_wait(
    cmd: &mut Command,
    ready_timeout: Duration,
) -> io::Result<(Child, io::Result<()>)> {
    let notify = NotifySocket::bind()?;
    let mut child = cmd.env("NOTIFY_SOCKET", &notify.path).spawn()?;
    let ready = notify.wait_ready(&mut child, ready_timeout);
    Ok((child, ready))
}

/// How long a hand-off child that was not ready in time has, after SIGTERM, to stop before it
/// is killed: 30 s.
pub const KILL_AFTER: Duration = Duration::from_secs(30);

/// Ends `child` and reaps it: SIGTERM if it runs, up to `grace` for it to exit, then SIGKILL.
pub(crate) fn end(child: &mut Child, grace: Duration) {
    let exited = matches!(child.try_wait(), Ok(Some(_)));
    if !exited && os::terminate(child.id()).is_ok() {
        let until = Instant::now() + grace;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill(); // an error if it has exited: nothing to do
    let _ = child.wait();
}

/// Ends and reaps a child that a hand-off gave up on (see [`spawn_ready`]), then points this
/// process's pid files back at it.
fn give_up_on(mut child: Child) {
    let reap = move || {
        end(&mut child, KILL_AFTER);
        rewrite_pid_files();
    };
    // A child that has exited is dealt with now; one that drains, on a thread of its own.
    let spawned = std::thread::Builder::new()
        .name("threadnet-reap".into())
        .spawn(reap);
    if let Err(e) = spawned {
        eprintln!("threadnet: cannot start a thread to reap a hand-off child: {e}");
    }
}

/// A datagram socket where a child sends `READY=1`, in a private directory of the temp dir:
/// mode 0700 and a name nobody can guess, so no other local user can take the path first or
/// fake the child's `READY=1` (a fixed name in a shared directory allowed both).
struct NotifySocket {
    socket: UnixDatagram,
    dir: PathBuf,
    path: PathBuf,
}

impl NotifySocket {
    fn bind() -> io::Result<NotifySocket> {
        let dir = private_dir("threadnet-notify")?;
        let path = dir.join("notify.sock");
        match UnixDatagram::bind(&path) {
            Ok(socket) => Ok(NotifySocket { socket, dir, path }),
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// Waits for a datagram with a `READY=1` line, checking every 50 ms that the child lives.
    fn wait_ready(&self, child: &mut Child, timeout: Duration) -> io::Result<()> {
        let until = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "the new process exited before it was ready: {status}"
                )));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the new process was not ready within {timeout:?}"),
                ));
            }
            self.socket
                .set_read_timeout(Some(left.min(Duration::from_millis(50))))?;
            match self.socket.recv(&mut buf) {
                Ok(n) if is_ready(&buf[..n]) => return Ok(()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_dir(&self.dir);
    }
}

/// A number no other process can predict: std's `RandomState` (seeded from the OS's random
/// source) hashing the time, the pid, a counter and a stack address. No `rand` crate.
fn unpredictable() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let on_stack = 0u8;
    RandomState::new().hash_one((
        SystemTime::now(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        &on_stack as *const u8 as usize,
    ))
}

/// Makes a new directory `PREFIX-RANDOM` in the temp dir with mode 0700 (this user only).
/// `mkdir` fails on any existing path, a planted symlink included, so the directory is always
/// our own new one.
fn private_dir(prefix: &str) -> io::Result<PathBuf> {
    let mut last = None;
    for _ in 0..16 {
        let dir = std::env::temp_dir().join(format!("{prefix}-{:016x}", unpredictable()));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::AlreadyExists.into()))
}

fn is_ready(datagram: &[u8]) -> bool {
    datagram
        .split(|&b| b == b'\n')
        .any(|line| line == b"READY=1")
}

/// Tells the service manager (systemd with `Type=notify`), or the process that started this
/// one with [`spawn_self`], that this process is ready: it sends `READY=1` and `MAINPID` to
/// the datagram socket named by `NOTIFY_SOCKET`, as `sd_notify(3)` does. Once per process:
/// after a call that sent it, later calls do nothing and return `false`. Returns `false`,
/// doing nothing, if `NOTIFY_SOCKET` is not set.
///
/// The variable stays in the environment: a server calls this with its threads running, and
/// changing the environment then races with every `getenv` in them (the C library's, in
/// name resolution for one, takes no lock; hence `remove_var` is `unsafe` in edition 2024).
/// So a child process this one starts inherits it. threadnet's own children get their own
/// ([`spawn_ready`], [`spawn_self`], [`crate::control`]); for any other, remove it with
/// `Command::env_remove("NOTIFY_SOCKET")` so that it does not notify in this process's name.
///
/// # Errors
///
/// The socket cannot be reached, or it is an abstract one (`@name`) on a platform that has
/// none. A later call tries again.
pub fn notify_ready() -> io::Result<bool> {
    static NOTIFIED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    if NOTIFIED.swap(true, Ordering::SeqCst) {
        return Ok(false);
    }
    let sent = send_ready(&path);
    if sent.is_err() {
        NOTIFIED.store(false, Ordering::SeqCst);
    }
    sent.map(|()| true)
}

/// `READY=1` and `MAINPID` to the datagram socket at `path` (`@name`: an abstract one).
fn send_ready(path: &OsStr) -> io::Result<()> {
    let message = format!("READY=1\nMAINPID={}\n", std::process::id());
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        send_abstract(&socket, name, message.as_bytes())
    } else {
        socket.send_to(message.as_bytes(), path).map(drop)
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(socket: &UnixDatagram, name: &[u8], message: &[u8]) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &addr).map(drop)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names exist on Linux only",
    ))
}

/// A pid file: this process's pid and a newline, written atomically (to a new temporary file
/// in the same directory, then renamed over `path`), and removed when the guard is dropped, if
/// it still names this process (after a hand-off the new process has written its own pid
/// there, and the file is left to it).
///
/// Safe in a directory others can write to (`/tmp`, `/run` shared with other services): the
/// temporary file has an unpredictable name and is created with `O_CREAT | O_EXCL`
/// ([`OpenOptions::create_new`]), which refuses any existing path, a planted symlink included,
/// instead of writing through it; and `rename` replaces a symlink at `path` itself, never the
/// file it points to.
///
/// When a hand-off fails ([`spawn_ready`]) after the new process wrote its pid here, the file
/// is written again with this process's pid once the new process is gone.
///
/// ```
/// let path = std::env::temp_dir().join(format!("threadnet-doc-{}.pid", std::process::id()));
/// let pid_file = threadnet::activation::PidFile::create(&path)?;
/// assert_eq!(std::fs::read_to_string(&path)?, format!("{}\n", std::process::id()));
/// drop(pid_file);
/// assert!(!path.exists());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

/// The paths of this process's live pid files, for [`rewrite_pid_files`].
static PID_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pid_files() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PID_FILES.lock().unwrap_or_else(|e| e.into_inner())
}

impl PidFile {
    /// Writes this process's pid to `path`, replacing what was there.
    ///
    /// # Errors
    ///
    /// The temporary file cannot be written or renamed (no such directory, no permission).
    pub fn create(path: impl AsRef<Path>) -> io::Result<PidFile> {
        let path = path.as_ref().to_path_buf();
        let pid = std::process::id();
        write_pid(&path, pid)?;
        pid_files().push(path.clone());
        Ok(PidFile { path, pid })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn names_us(&self) -> bool {
        fs::read_to_string(&self.path).is_ok_and(|s| s.trim().parse::<u32>().ok() == Some(self.pid))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let mut files = pid_files();
        if let Some(i) = files.iter().position(|p| *p == self.path) {
            files.swap_remove(i);
        }
        // Under the lock: a failed hand-off's rewrite cannot put the file back meanwhile.
        if self.names_us() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// `pid` and a newline into a new temporary file beside `path`, renamed over `path`.
fn write_pid(path: &Path, pid: u32) -> io::Result<()> {
    write_atomic(path, &format!("{pid}\n"))
}

/// `text` into a new temporary file beside `path` (mode 0644, made with `O_EXCL` under an
/// unpredictable name), renamed over `path`: readers see the old file or the new one, and a
/// symlink planted at either name is never written through. For a pid file, or any small
/// file of the same kind (a supervisor's state).
pub(crate) fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let pid = std::process::id();
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "a pid file needs a file name")
    })?;
    let mut last = None;
    for _ in 0..16 {
        let mut tmp_name = OsStr::new(".").to_os_string();
        tmp_name.push(name);
        tmp_name.push(format!(".{pid}.{:016x}.tmp", unpredictable()));
        let tmp = path.with_file_name(tmp_name);
        let mut file = match create_exclusive(&tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| fs::rename(&tmp, path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        return written;
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::AlreadyExists.into()))
}

/// Creates `path` for writing, mode 0644, only if nothing is there: `O_CREAT | O_EXCL` never
/// follows a symlink, dangling or not, and fails with `AlreadyExists` instead.
fn create_exclusive(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
}

/// Points every pid file of this process back at it, where another process has replaced or
/// removed it (a hand-off child that failed).
fn rewrite_pid_files() {
    let files = pid_files();
    let pid = std::process::id();
    for path in files.iter() {
        let ours =
            fs::read_to_string(path).is_ok_and(|s| s.trim().parse::<u32>().ok() == Some(pid));
        if !ours {
            if let Err(e) = write_pid(path, pid) {
                eprintln!(
                    "threadnet: cannot rewrite the pid file {}: {e}",
                    path.display()
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "activation_tests.rs"]
mod tests;
