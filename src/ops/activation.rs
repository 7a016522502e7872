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
//! use threadnet::{Connection, Lines, TcpServer};
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
//! Daemonizing (fork, setsid, closing the terminal) is left to the service manager, which
//! also restarts, logs and limits the service; the units for the `echo` example are in
//! `examples/systemd/`. [`PidFile`] covers the one piece of the old routine that scripts still
//! use.
//!
//! Implemented for Linux on x86_64 and aarch64; elsewhere [`listeners`] and [`spawn_self`]
//! fail with [`io::ErrorKind::Unsupported`].

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// The TCP listener to serve on: the first one inherited ([`listeners`]: from systemd or from
/// the process this one replaces), else a new one bound to `addr`. With
/// [`ServerBuilder::listener`](crate::ServerBuilder::listener), the one line a server needs
/// for socket activation and hand-offs.
///
/// # Errors
///
/// As [`listeners`], or binding `addr` fails.
pub fn tcp_listener(addr: &str) -> io::Result<std::net::TcpListener> {
    match listeners()?.into_iter().find_map(Inherited::into_tcp) {
        Some(inherited) => Ok(inherited),
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
fn own_executable() -> io::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let deleted = exe
        .to_str()
        .and_then(|s| s.strip_suffix(" (deleted)"))
        .map(std::path::PathBuf::from);
    Ok(deleted.unwrap_or(exe))
}

/// Starts a new copy of this program (`std::env::current_exe()`, the same arguments) with
/// `listeners` inherited as fds 3, 4, … ([`listen_command`]), and waits up to `ready_timeout`
/// for it to call [`notify_ready`]. Its stdin, stdout and stderr are this process's.
///
/// Returns the running child; dropping the [`Child`] leaves it running. The caller then stops
/// accepting and lets its own connections finish.
///
/// # Errors
///
/// The child could not be started, exited, or was not ready in time; it has been killed and
/// reaped then, and this process should go on serving. Or the platform is not supported.
pub fn spawn_self(listeners: &[BorrowedFd<'_>], ready_timeout: Duration) -> io::Result<Child> {
    let exe = own_executable()?;
    let notify = NotifySocket::bind()?;
    let mut child = listen_command(&exe, listeners)?
        .args(std::env::args_os().skip(1))
        .env("NOTIFY_SOCKET", &notify.path)
        .spawn()?;
    match notify.wait_ready(&mut child, ready_timeout) {
        Ok(()) => Ok(child),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// A datagram socket on a fresh path in the temp directory, where a child sends `READY=1`.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind() -> io::Result<NotifySocket> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "threadnet-notify-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_file(&path); // left by a process with our pid that died
        let socket = UnixDatagram::bind(&path)?;
        Ok(NotifySocket { socket, path })
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
    }
}

fn is_ready(datagram: &[u8]) -> bool {
    datagram
        .split(|&b| b == b'\n')
        .any(|line| line == b"READY=1")
}

/// Tells the service manager (systemd with `Type=notify`), or the process that started this
/// one with [`spawn_self`], that this process is ready: it sends `READY=1` and `MAINPID` to
/// the datagram socket named by `NOTIFY_SOCKET`, as `sd_notify(3)` does, and removes the
/// variable. Returns `false`, doing nothing, if `NOTIFY_SOCKET` is not set.
///
/// # Errors
///
/// The socket cannot be reached, or it is an abstract one (`@name`) on a platform that has
/// none.
pub fn notify_ready() -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    std::env::remove_var("NOTIFY_SOCKET");
    let message = format!("READY=1\nMAINPID={}\n", std::process::id());
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        send_abstract(&socket, name, message.as_bytes())?;
    } else {
        socket.send_to(message.as_bytes(), &path)?;
    }
    Ok(true)
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

/// A pid file: this process's pid and a newline, written atomically (to a temporary file in
/// the same directory, then renamed over `path`), and removed when the guard is dropped, if
/// it still names this process (after a hand-off the new process has written its own pid
/// there, and the file is left to it).
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

impl PidFile {
    /// Writes this process's pid to `path`, replacing what was there.
    ///
    /// # Errors
    ///
    /// The temporary file cannot be written or renamed (no such directory, no permission).
    pub fn create(path: impl AsRef<Path>) -> io::Result<PidFile> {
        let path = path.as_ref().to_path_buf();
        let pid = std::process::id();
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "a pid file needs a file name")
        })?;
        let mut tmp_name = OsStr::new(".").to_os_string();
        tmp_name.push(name);
        tmp_name.push(format!(".{pid}.tmp"));
        let tmp = path.with_file_name(tmp_name);
        let written = fs::File::create(&tmp).and_then(|mut f| writeln!(f, "{pid}"));
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &path)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(PidFile { path, pid })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = fs::read_to_string(&self.path)
            .is_ok_and(|s| s.trim().parse::<u32>().ok() == Some(self.pid));
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}
