//! Transports: the stream sockets a connection can run on, TCP and Unix-domain, behind one
//! small trait, so that the reader, the writer, write-through and the lifecycle are written
//! once for both (goes serves TCP and Unix the same way; knet only TCP).
//!
//! std's `&TcpStream` and `&UnixStream` both read and write through a shared reference, so the
//! reader and the writer share one `Arc<dyn Socket>` and no `try_clone` is needed.

use std::fmt;
use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long one socket write may block (`SO_SNDTIMEO`) before the writer checks whether the
/// connection was closed meanwhile; see `conn/through.rs`.
pub(crate) const WRITE_SLICE: Duration = Duration::from_millis(50);

/// The address of one end of a connection: an internet address for TCP, a path for a
/// Unix-domain socket (Go's `net.Addr`).
///
/// It compares equal to a [`SocketAddr`] when it holds that address, prints like one, and can
/// be passed wherever std takes [`ToSocketAddrs`], so TCP code reads as it would with a plain
/// `SocketAddr`:
///
/// ```
/// use std::net::{SocketAddr, TcpStream};
/// use threadnet::{codec::Lines, Addr, TcpServer};
///
/// let server = TcpServer::builder().start(Lines::new(), |_: &_| |_: &_, _: String| {})?;
/// let addr: Addr = server.local_addr();
/// let peer = TcpStream::connect(&addr)?; // an Addr is ToSocketAddrs
/// assert_eq!(addr, peer.peer_addr()?); // and compares with a SocketAddr
/// assert!(addr.to_string().starts_with("127.0.0.1:"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A TCP address.
    Inet(SocketAddr),
    /// A Unix-domain socket's path; `None` for an unnamed socket (the client end of a
    /// connection usually is one).
    Unix(Option<Arc<Path>>),
}

impl Addr {
    /// The TCP address, if this is one.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            Addr::Inet(a) => Some(*a),
            Addr::Unix(_) => None,
        }
    }

    /// The Unix socket's path, if this is a named Unix-domain address.
    pub fn as_unix_path(&self) -> Option<&Path> {
        match self {
            Addr::Unix(p) => p.as_deref(),
            Addr::Inet(_) => None,
        }
    }

    fn from_unix(a: &std::os::unix::net::SocketAddr) -> Addr {
        Addr::Unix(a.as_pathname().map(Arc::from))
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Inet(a) => a.fmt(f),
            Addr::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            Addr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Addr {
        Addr::Inet(a)
    }
}

impl PartialEq<SocketAddr> for Addr {
    fn eq(&self, other: &SocketAddr) -> bool {
        self.as_inet() == Some(*other)
    }
}

impl PartialEq<Addr> for SocketAddr {
    fn eq(&self, other: &Addr) -> bool {
        other == self
    }
}

/// Resolves to the TCP address; a Unix address gives an `InvalidInput` error.
impl ToSocketAddrs for Addr {
    type Iter = std::option::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        match self {
            Addr::Inet(a) => Ok(Some(*a).into_iter()),
            Addr::Unix(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{self} is a Unix-domain address, not an internet one"),
            )),
        }
    }
}

/// A blocking socket call's timeout passed (Linux says `EAGAIN`, which std calls
/// `WouldBlock`), or a call that must not wait (`MSG_DONTWAIT`) found nothing to do.
pub(crate) fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A connected stream socket, shared by a connection's threads.
///
/// Every method is required: a transport, or a wrapper of one, cannot skip a method and
/// inherit an answer it never chose. A transport that cannot do what a method asks says so
/// with an error of kind `Unsupported`, which no caller takes for "nothing now"
/// (`WouldBlock`) or for the end of the stream; the capability questions
/// ([`set_read_patience`](Self::set_read_patience), [`wait_readable`](Self::wait_readable),
/// [`is_datagram`](Self::is_datagram)) are answered explicitly by each transport.
pub(crate) trait Socket: Send + Sync + 'static {
    /// Reads into `buf`, waiting as the receive timeout in place allows; `Ok(0)` is the
    /// peer's EOF.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes from `bufs`, waiting up to the send timeout ([`WRITE_SLICE`]).
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// As `write_vectored`, but never blocks: `WouldBlock` at once when the socket takes
    /// nothing now.
    fn write_vectored_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    /// As `read`, but never blocks: `WouldBlock` at once when nothing can be read now.
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Sets how long one `read` waits before it fails with `WouldBlock` (`None`: forever), on
    /// every transport: for a reader that keeps a deadline of its own (a blocking client's
    /// caller). Unlike [`set_read_patience`](Self::set_read_patience), always applied.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Blocks until a byte can be read (`Ok(true)`) or the peer's EOF (`Ok(false)`), without
    /// consuming anything. A transport that cannot wait this way returns `Ok(true)` at once.
    fn wait_readable(&self) -> io::Result<bool>;
    /// Sets how long a `read` waits for data before it fails with `WouldBlock` (`None`:
    /// forever, as [`prepare`](Self::prepare) leaves it): the reader's patience before it
    /// gives its buffer back and goes to [`wait_readable`](Self::wait_readable). `Ok(false)`
    /// from a transport whose `wait_readable` cannot wait: reads there always block.
    fn set_read_patience(&self, patience: Option<Duration>) -> io::Result<bool>;
    /// Sets every option the connection relies on, before it starts, whatever the socket
    /// carries: an accepted socket inherits its listener's options on Linux, and a listener
    /// inherited from systemd or a hand-off (or polled with a receive timeout, as a shared
    /// listener is) may carry anything. Blocking mode; no receive timeout (the reader blocks
    /// until data, EOF or a close's `shutdown`; between frames it sets its own,
    /// [`set_read_patience`](Self::set_read_patience), and waits on through one mid-frame);
    /// [`WRITE_SLICE`] as the send timeout; for TCP, `TCP_NODELAY` as asked and `SO_LINGER`
    /// off, so a close is a FIN after the buffered bytes. Options threadnet does not rely on
    /// (keep-alive, buffer sizes) are left as the listener set them: a systemd `.socket` unit
    /// sets them there on purpose.
    fn prepare(&self, nodelay: bool) -> io::Result<()>;
    /// [`prepare`](Self::prepare), for a socket just accepted from a listener: where the
    /// system never makes such a socket non-blocking (Linux: `O_NONBLOCK` is a file flag, not
    /// inherited), that is not set again.
    fn prepare_accepted(&self, nodelay: bool) -> io::Result<()> {
        self.prepare(nodelay)
    }
    fn peer_addr(&self) -> io::Result<Addr>;
    fn local_addr(&self) -> io::Result<Addr>;
    /// Each write is one datagram: the writer writes message by message, never a batch.
    fn is_datagram(&self) -> bool;
}

impl Socket for TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // sendmsg with MSG_NOSIGNAL: a reset peer is an EPIPE error, never a SIGPIPE.
        crate::sys::os::send_vectored(self, bufs, true)
    }

    fn write_vectored_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        crate::sys::os::send_vectored(self, bufs, false)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }

    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        crate::sys::os::recv_now(self, buf)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn wait_readable(&self) -> io::Result<bool> {
        Ok(self.peek(&mut [0u8; 1])? > 0)
    }

    fn set_read_patience(&self, patience: Option<Duration>) -> io::Result<bool> {
        self.set_read_timeout(patience)?;
        Ok(true)
    }

    fn prepare(&self, nodelay: bool) -> io::Result<()> {
        self.set_nonblocking(false)?;
        tcp_options(self, nodelay)
    }

    fn prepare_accepted(&self, nodelay: bool) -> io::Result<()> {
        if !cfg!(target_os = "linux") {
            self.set_nonblocking(false)?;
        }
        tcp_options(self, nodelay)
    }

    fn peer_addr(&self) -> io::Result<Addr> {
        TcpStream::peer_addr(self).map(Addr::Inet)
    }

    fn local_addr(&self) -> io::Result<Addr> {
        TcpStream::local_addr(self).map(Addr::Inet)
    }

    fn is_datagram(&self) -> bool {
        false
    }
}

impl Socket for UnixStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // sendmsg with MSG_NOSIGNAL: a reset peer is an EPIPE error, never a SIGPIPE.
        crate::sys::os::send_vectored(self, bufs, true)
    }

    fn write_vectored_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        crate::sys::os::send_vectored(self, bufs, false)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        UnixStream::shutdown(self, how)
    }

    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        crate::sys::os::recv_now(self, buf)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }

    fn wait_readable(&self) -> io::Result<bool> {
        // `UnixStream::peek` is not stable (unix_socket_peek): the read buffer is allocated
        // at once instead of on the first byte.
        Ok(true)
    }

    fn set_read_patience(&self, _patience: Option<Duration>) -> io::Result<bool> {
        // `wait_readable` cannot wait without reading: reads always block, and the reader
        // keeps its buffer.
        Ok(false)
    }

    fn prepare(&self, _nodelay: bool) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(None)?;
        self.set_write_timeout(Some(WRITE_SLICE))
    }

    fn peer_addr(&self) -> io::Result<Addr> {
        UnixStream::peer_addr(self).map(|a| Addr::from_unix(&a))
    }

    fn local_addr(&self) -> io::Result<Addr> {
        UnixStream::local_addr(self).map(|a| Addr::from_unix(&a))
    }

    fn is_datagram(&self) -> bool {
        false
    }
}

/// The options of [`Socket::prepare`] for TCP, but blocking mode.
fn tcp_options(s: &TcpStream, nodelay: bool) -> io::Result<()> {
    s.set_nodelay(nodelay)?;
    s.set_read_timeout(None)?;
    s.set_write_timeout(Some(WRITE_SLICE))?;
    crate::sys::os::clear_linger(s.as_fd())
}

/// A handle to set `listener`'s socket options through: std sets the options this module
/// needs only on a `TcpStream`, so this is one on a dup of the listener's fd (the options
/// belong to the socket, so they apply to every fd of it).
fn options_handle(listener: &TcpListener) -> io::Result<TcpStream> {
    Ok(TcpStream::from(OwnedFd::from(listener.try_clone()?)))
}

/// A listening socket: the accept thread owns it.
pub(crate) enum Listener {
    /// A TCP listener, and the `TCP_NODELAY` it was [primed](Listener::prime) with, if it was.
    Tcp(TcpListener, Option<bool>),
    Unix(UnixListener, SocketFile),
}

/// The file a Unix listener is bound to, and which file it was (device and inode), so that
/// only that file is removed when the listener goes: not one another server has bound at the
/// same path since.
pub(crate) struct SocketFile {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

/// How often a Unix listener's accept thread looks up from a non-blocking `accept`: a Unix
/// accept cannot be woken by connecting to it once its file is gone, so it polls.
const UNIX_ACCEPT_POLL: Duration = Duration::from_millis(50);

/// The longest a TCP `accept` blocks before the accept loop looks at its stop flag again.
/// [`wake_acceptor`] makes it return at once, but that takes a file descriptor, and with the
/// fd table full (`EMFILE`) there is none: then this bounds how long `stop` waits. A listener
/// shared with another process cannot be woken at all (the other process may take the
/// wake-up connection), so this is its only way out.
pub(crate) const ACCEPT_POLL: Duration = Duration::from_millis(100);

impl Listener {
    /// Binds a TCP listener.
    pub(crate) fn tcp(addr: &str) -> io::Result<Listener> {
        Listener::from_tcp(TcpListener::bind(addr)?)
    }

    /// A listener on a TCP socket already bound and listening (inherited, or handed over),
    /// made blocking (another holder may have made it non-blocking, and a non-blocking accept
    /// would spin), with `accept` bounded by [`ACCEPT_POLL`].
    pub(crate) fn from_tcp(listener: TcpListener) -> io::Result<Listener> {
        listener.set_nonblocking(false)?;
        // SO_RCVTIMEO bounds accept() on Linux.
        options_handle(&listener)?.set_read_timeout(Some(ACCEPT_POLL))?;
        Ok(Listener::Tcp(listener, None))
    }

    /// Sets on the listener the options every connection it accepts relies on (`TCP_NODELAY`
    /// as `nodelay`, [`WRITE_SLICE`] as the send timeout), so that [`ready`](Listener::ready)
    /// need not set them on each accepted socket: Linux copies a listener's socket options
    /// to the sockets it accepts (and never its `O_NONBLOCK`, a file flag). Only for a
    /// listener this process bound itself, whose `SO_LINGER` is off from the start: one
    /// inherited or handed over is shared, and its options are its owner's. Elsewhere than
    /// Linux, nothing is set.
    pub(crate) fn prime(&mut self, nodelay: bool) {
        let Listener::Tcp(listener, primed) = self else {
            return;
        };
        if cfg!(target_os = "linux") {
            let set = || -> io::Result<()> {
                let handle = options_handle(listener)?;
                handle.set_nodelay(nodelay)?;
                handle.set_write_timeout(Some(WRITE_SLICE))
            };
            *primed = set().is_ok().then_some(nodelay);
        }
    }

    /// Sets on `stream`, just accepted from this listener, what the connection relies on
    /// ([`Socket::prepare_accepted`]). From a [primed](Listener::prime) listener, it carries
    /// all of it but the listener's receive timeout ([`ACCEPT_POLL`]), which is cleared: one
    /// system call instead of four.
    ///
    /// # Errors
    /// An option could not be set: the connection cannot be served as it expects.
    pub(crate) fn ready(&self, stream: &dyn Socket, nodelay: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(_, Some(primed)) if *primed == nodelay => stream.set_read_timeout(None),
            _ => stream.prepare_accepted(nodelay),
        }
    }

    /// Binds a Unix-domain listener at `path`. A stale socket file (one nobody listens on any
    /// more, left by a process that died) is removed first; a live one is `AddrInUse`.
    ///
    /// Only a socket file is ever removed: any other file at `path` is left alone and the
    /// error is `AddrInUse`.
    pub(crate) fn unix(path: &Path) -> io::Result<Listener> {
        let listener = match UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                let is_socket =
                    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
                let stale = is_socket
                    && matches!(
                        UnixStream::connect(path),
                        Err(ref c) if c.kind() == io::ErrorKind::ConnectionRefused
                    );
                if !stale {
                    return Err(e);
                }
                std::fs::remove_file(path)?;
                UnixListener::bind(path)?
            }
            Err(e) => return Err(e),
        };
        listener.set_nonblocking(true)?;
        let id = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let file = SocketFile {
            path: path.to_path_buf(),
            id,
        };
        Ok(Listener::Unix(listener, file))
    }

    pub(crate) fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Listener::Tcp(l, _) => l.local_addr().map(Addr::Inet),
            Listener::Unix(_, file) => Ok(Addr::Unix(Some(Arc::from(file.path.as_path())))),
        }
    }

    /// Accepts one connection: the socket and the peer's address.
    pub(crate) fn accept(&self) -> io::Result<(Arc<dyn Socket>, Addr)> {
        match self {
            Listener::Tcp(l, _) => match l.accept() {
                Ok((s, a)) => Ok((Arc::new(s) as Arc<dyn Socket>, Addr::Inet(a))),
                // The ACCEPT_POLL passed with nothing to accept: let the accept loop look at
                // its stop flag.
                Err(e) if timed_out(&e) => Err(io::ErrorKind::Interrupted.into()),
                Err(e) => Err(e),
            },
            Listener::Unix(l, _) => match l.accept() {
                Ok((s, a)) => {
                    s.set_nonblocking(false)?;
                    Ok((Arc::new(s) as Arc<dyn Socket>, Addr::from_unix(&a)))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing to accept: wait a little (a stop unparks this thread), then let
                    // the accept loop look at its stop flag.
                    std::thread::park_timeout(UNIX_ACCEPT_POLL);
                    Err(io::ErrorKind::Interrupted.into())
                }
                Err(e) => Err(e),
            },
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The socket file would outlive us: remove it, if it is still the one we bound.
        if let Listener::Unix(_, file) = self {
            let same = std::fs::symlink_metadata(&file.path)
                .is_ok_and(|m| Some((m.dev(), m.ino())) == file.id);
            if same {
                let _ = std::fs::remove_file(&file.path);
            }
        }
    }
}

/// Makes an accept blocked on the listener at `addr` return, by connecting to it: a blocked
/// `accept()` cannot be interrupted otherwise (rust-lang/rust #67978). Best effort: without a
/// free file descriptor the connection cannot be made, and the accept returns at its next
/// [`ACCEPT_POLL`] instead.
pub(crate) fn wake_acceptor(addr: &Addr) {
    match addr {
        Addr::Inet(a) => {
            let mut a = *a;
            if a.ip().is_unspecified() {
                a.set_ip(match a {
                    SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&a, Duration::from_secs(1));
        }
        Addr::Unix(Some(path)) => {
            let _ = UnixStream::connect(path);
        }
        Addr::Unix(None) => {}
    }
}

/// Where a client dials.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Tcp(Vec<SocketAddr>),
    Unix(PathBuf),
}

impl Target {
    /// One attempt at every address, in order; the last error if none answers.
    pub(crate) fn dial(&self, timeout: Duration) -> io::Result<Arc<dyn Socket>> {
        match self {
            Target::Tcp(addrs) => {
                let mut last =
                    io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
                for a in addrs {
                    match TcpStream::connect_timeout(a, timeout) {
                        Ok(s) => return Ok(Arc::new(s)),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            // A Unix connect does not wait for the peer's accept: it fails or succeeds at once.
            Target::Unix(path) => Ok(Arc::new(UnixStream::connect(path)?)),
        }
    }
}

#[cfg(test)]
#[path = "sigpipe_tests.rs"]
mod sigpipe_tests;

#[cfg(all(test, target_os = "linux"))]
#[path = "listener_tests.rs"]
mod listener_tests;
