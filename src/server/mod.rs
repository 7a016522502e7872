//! `TcpServer` and `UnixServer`: the builder, and the handle that stops a server. The accept
//! loop is in `acceptor.rs`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

mod acceptor;
mod proxy_protocol;
mod shared;

use crate::codec::Codec;
use crate::conn::handler::Handler;
use crate::conn::metrics::{Metrics, MetricsSnapshot};
use crate::conn::options::ConnOptions;
use crate::conn::registry::Registry;
use crate::conn::Connection;
use crate::sync::lock;
use crate::sync::{Latch, StopOnDrop};
use crate::sys::transport::{Addr, Listener};
use acceptor::Acceptor;
use shared::Inner;

/// A TCP server: one accept thread, and per connection one reader thread (which runs the
/// handler) and, once something is queued, one writer thread.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::net::TcpStream;
/// use std::time::Duration;
/// use threadnet::{codec::Lines, Connection, TcpServer};
///
/// // An upper-casing line server on a free port.
/// let server = TcpServer::builder()
///     .addr("127.0.0.1:0")
///     .start(Lines::new(), |_conn: &Connection<Lines>| {
///         |conn: &Connection<Lines>, line: String| {
///             let _ = conn.send(line.to_uppercase());
///         }
///     })
///     .unwrap();
///
/// let mut s = TcpStream::connect(server.local_addr()).unwrap();
/// s.write_all(b"hello\n").unwrap();
/// let mut reply = String::new();
/// BufReader::new(&s).read_line(&mut reply).unwrap();
/// assert_eq!(reply, "HELLO\n");
///
/// server.stop(Duration::from_secs(1));
/// ```
pub struct TcpServer;

impl TcpServer {
    /// A builder with every option at its default.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// A listener bound to `addr` (`HOST:PORT`; the first address it resolves to that binds)
    /// with `SO_REUSEPORT` set before the bind, so that other listeners bound this way, in
    /// this process or another of the same user, share the port; the kernel spreads incoming
    /// connections among them (by a hash of the client's address and port). Hand it to
    /// [`ServerBuilder::listener`], or use [`ServerBuilder::reuse_port`]. Backlog 1024
    /// (capped by `net.core.somaxconn`); close-on-exec.
    ///
    /// # Errors
    ///
    /// `addr` does not resolve, the port is taken by a socket without `SO_REUSEPORT` or of
    /// another user (`AddrInUse`), or the platform is not Linux on x86_64 or aarch64
    /// (`Unsupported`).
    pub fn bind_reuse_port(addr: &str) -> io::Result<std::net::TcpListener> {
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
        for a in std::net::ToSocketAddrs::to_socket_addrs(addr)? {
            match crate::sys::os::listen_reuse_port(a, 1024) {
                Ok(fd) => return Ok(std::net::TcpListener::from(fd)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// A Unix-domain stream socket server: the same codecs, handlers and [`Connection`](crate::Connection)s as a
/// [`TcpServer`], on a socket file instead of a port. The socket file is removed when the
/// server stops; a stale one (left by a process that died) is replaced at start.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
/// use threadnet::{codec::Lines, Connection, UnixServer};
///
/// let path = std::env::temp_dir().join(format!("threadnet-doc-{}.sock", std::process::id()));
/// let server = UnixServer::builder(&path)
///     .start(Lines::new(), |_: &Connection<Lines>| {
///         |conn: &Connection<Lines>, line: String| {
///             let _ = conn.send(line.to_uppercase());
///         }
///     })?;
///
/// let mut s = UnixStream::connect(&path)?;
/// s.write_all(b"hello\n")?;
/// let mut reply = String::new();
/// BufReader::new(&s).read_line(&mut reply)?;
/// assert_eq!(reply, "HELLO\n");
///
/// server.stop(Duration::from_secs(1));
/// assert!(!path.exists()); // the socket file is gone
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixServer;

impl UnixServer {
    /// A builder listening on the socket file `path`, every other option at its default.
    pub fn builder(path: impl AsRef<Path>) -> ServerBuilder {
        ServerBuilder {
            bind: Bind::Unix(path.as_ref().to_path_buf()),
            ..ServerBuilder::default()
        }
    }
}

/// Where a server listens.
#[derive(Debug, Clone)]
enum Bind {
    Tcp(String),
    Unix(PathBuf),
    /// A listener made elsewhere (inherited from a service manager, handed over by the
    /// previous process); shared so that the builder stays `Clone`.
    Listening(Arc<std::net::TcpListener>),
}

/// Options of a [`TcpServer`] or a [`UnixServer`]; [`start`](ServerBuilder::start) it with a
/// codec and a handler factory.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    bind: Bind,
    max_connections: usize,
    backoff_min: Duration,
    backoff_max: Duration,
    options: ConnOptions,
    inbox_capacity: usize,
    proxy_protocol: bool,
    proxy_header_timeout: Duration,
    reuse_port: bool,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            bind: Bind::Tcp("127.0.0.1:0".to_string()),
            max_connections: 1024,
            backoff_min: Duration::from_millis(5),
            backoff_max: Duration::from_secs(1),
            options: ConnOptions::default(),
            inbox_capacity: 1024,
            proxy_protocol: false,
            proxy_header_timeout: Duration::from_secs(3),
            reuse_port: false,
        }
    }
}

impl ServerBuilder {
    /// The address to listen on, `HOST:PORT`. Port 0 picks a free port:
    /// [`ServerHandle::local_addr`] tells which.
    ///
    /// Defaults to `127.0.0.1:0`.
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.bind = Bind::Tcp(addr.into());
        self
    }

    /// Serves on `listener`, already bound and listening, instead of binding an address: a
    /// listener inherited from a service manager (systemd socket activation) or from the
    /// process this one replaces, so that the port never closes in between.
    ///
    /// Such a listener may be shared with another process, so stopping does not wake its
    /// accept thread by a connection to itself: the thread sees the stop at its next poll
    /// (every 100 ms), and a client it accepts as the server stops is still served.
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.bind = Bind::Listening(Arc::new(listener));
        self
    }

    /// Binds the [`addr`](ServerBuilder::addr) with `SO_REUSEPORT` (see
    /// [`TcpServer::bind_reuse_port`]): servers in this process or others (worker processes,
    /// [`crate::control`]'s `--workers`) bound the same way share the port, the kernel
    /// spreading connections among them. Off by default; no effect on a Unix socket or a
    /// [`listener`](ServerBuilder::listener) made elsewhere. Like such a listener, a shared
    /// port cannot wake its own accept thread: it sees a stop at its next poll (100 ms).
    ///
    /// ```
    /// use std::net::TcpStream;
    /// use threadnet::{codec::Lines, Connection, TcpServer};
    ///
    /// let factory = |_: &Connection<Lines>| |c: &Connection<Lines>, l: String| {
    ///     let _ = c.send(l);
    /// };
    /// let first = TcpServer::builder().reuse_port(true).start(Lines::new(), factory)?;
    /// let port = first.local_addr().to_string();
    /// // A second server on the very same port.
    /// let second = TcpServer::builder().addr(port.clone()).reuse_port(true)
    ///     .start(Lines::new(), factory)?;
    /// assert_eq!(second.local_addr().to_string(), port);
    /// TcpStream::connect(&port)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// Most connections open at once. A connection past the limit is accepted and closed at
    /// once (a peer sees EOF or a reset, not a hanging connect), and counted in the
    /// [`metrics`](ServerHandle::metrics)' `connections_refused`.
    ///
    /// This bounds the threads (and file descriptors) the server's peers can hold, but a peer
    /// that connects and never sends holds its slot for as long as it likes: enough of them
    /// fill the server. Shed them with a read idle limit
    /// ([`ConnOptions::read_idle`](crate::ConnOptions::read_idle)): a connection that has read
    /// nothing for that long closes with
    /// [`CloseReason::IdleTimeout`](crate::CloseReason::IdleTimeout), freeing its slot for a
    /// peer that talks.
    ///
    /// Defaults to 1024.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// How long the accept loop waits after `accept` fails (for example `EMFILE`, out of file
    /// descriptors): `min` after the first failure, doubling up to `max`, back to `min` after a
    /// success. As Tao does, so a full fd table does not spin a core.
    ///
    /// Meanwhile a peer that connects waits in the listen backlog, and is served once a file
    /// descriptor is free again (at most `max` later); connections already open are served
    /// throughout. Each failed `accept` counts in the [`metrics`](ServerHandle::metrics)'
    /// `accept_errors`. The server does not keep a spare descriptor to accept and drop such peers
    /// (libuv's and muduo's trick): another thread of the process may take the descriptor
    /// freed for it, and a peer that arrives after the shortage has passed would be dropped
    /// instead of served. To refuse peers with an EOF rather than keep them waiting, set
    /// [`max_connections`](Self::max_connections) below the fd limit (`ulimit -n`) minus the
    /// descriptors the rest of the process uses: each connection takes one.
    ///
    /// Defaults to 5 ms doubling to 1 s.
    pub fn accept_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Options of every connection: send queue bounds, watermarks, send and shutdown timeouts,
    /// read buffer, stack size, `TCP_NODELAY`, max frame length. See [`ConnOptions`].
    ///
    /// Defaults to [`ConnOptions::default`].
    pub fn options(mut self, options: ConnOptions) -> Self {
        self.options = options;
        self
    }

    /// For a [`PullServer`](crate::PullServer): how many messages, from all connections
    /// together, wait for the caller before readers stop reading (and TCP flow control slows
    /// their peers down). Memory: at most this many messages, each at most the codec's frame
    /// limit.
    ///
    /// Defaults to 1024.
    pub fn inbox_capacity(mut self, messages: usize) -> Self {
        self.inbox_capacity = messages.max(1);
        self
    }

    /// Expects every connection to begin with a PROXY protocol header, version 1 (text) or 2
    /// (binary), as HAProxy (`send-proxy`, `send-proxy-v2`), nginx's `stream` module
    /// (`proxy_protocol on`) and cloud load balancers send it: then
    /// [`Connection::peer_addr`] is the client's address the header names, and
    /// [`Connection::proxied_by`] the balancer's. A header that names no client (v1
    /// `UNKNOWN`, a v2 `LOCAL` health check) leaves the socket's addresses.
    ///
    /// The header is read on the connection's own thread, before the handler is made, at most
    /// [`proxy_header_timeout`](Self::proxy_header_timeout) after the accept; the bytes after
    /// it go to the codec. A connection without a valid header in time (no header, a
    /// malformed one, a v1 line over 107 bytes, a v2 header over 16 + 536 bytes) is closed
    /// and counted in the [`metrics`](ServerHandle::metrics)' `connections_refused`: it never
    /// opens, so its handler is not made. Turn it on only behind a balancer that always sends the header (the spec forbids
    /// guessing), and keep clients from reaching the port directly: anyone who can connect
    /// can name any address.
    ///
    /// Defaults to off.
    ///
    /// ```
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::net::TcpStream;
    /// use std::time::Duration;
    /// use threadnet::{codec::Lines, Connection, TcpServer};
    ///
    /// // Answers each line with the client's address and the balancer's.
    /// let server = TcpServer::builder()
    ///     .proxy_protocol(true)
    ///     .start(Lines::new(), |_: &Connection<Lines>| {
    ///         |conn: &Connection<Lines>, _line: String| {
    ///             let via = conn.proxied_by().unwrap();
    ///             let _ = conn.send(format!("{} via {via}", conn.peer_addr()));
    ///         }
    ///     })?;
    ///
    /// // What a balancer sends (HAProxy's `send-proxy`), then the client's own bytes.
    /// let mut balancer = TcpStream::connect(server.local_addr())?;
    /// balancer.write_all(b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nhello\n")?;
    /// let mut reply = String::new();
    /// BufReader::new(&balancer).read_line(&mut reply)?;
    /// assert_eq!(reply, format!("192.0.2.7:56324 via {}\n", balancer.local_addr()?));
    ///
    /// drop(balancer);
    /// server.stop(Duration::from_secs(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn proxy_protocol(mut self, on: bool) -> Self {
        self.proxy_protocol = on;
        self
    }

    /// With [`proxy_protocol`](Self::proxy_protocol), how long a connection has to deliver its
    /// header after the accept before it is refused.
    ///
    /// Defaults to 3 s.
    pub fn proxy_header_timeout(mut self, timeout: Duration) -> Self {
        self.proxy_header_timeout = timeout;
        self
    }

    pub(crate) fn inbox(&self) -> usize {
        self.inbox_capacity
    }

    /// Binds and starts the server on background threads.
    ///
    /// `factory` makes one handler per connection; it runs on the new connection's reader
    /// thread, just before `on_connect`. The codec is cloned for each connection.
    ///
    /// # Errors
    ///
    /// Binding the address fails (in use, not an address of this host, no permission), or the
    /// accept thread, or the thread of the global [`TimingWheel`](crate::TimingWheel) (started here on first use,
    /// unless [`ConnOptions::timing_wheel`] names another), cannot be spawned.
    pub fn start<C, H, F>(self, mut codec: C, factory: F) -> io::Result<ServerHandle<C>>
    where
        C: Codec,
        H: Handler<C>,
        F: Fn(&Connection<C>) -> H + Send + Sync + 'static,
    {
        self.options.prepare_start(&mut codec)?;
        let mut listener = match &self.bind {
            Bind::Tcp(addr) if self.reuse_port => {
                Listener::from_tcp(TcpServer::bind_reuse_port(addr)?)?
            }
            Bind::Tcp(addr) => Listener::tcp(addr)?,
            Bind::Unix(path) => Listener::unix(path)?,
            // A listener shared with another process (the one that handed it to us, or the
            // one we hand it to) cannot be woken by connecting to it: the other process may
            // take that connection. Its accept polls, as every TCP accept does.
            Bind::Listening(l) => Listener::from_tcp(l.try_clone()?)?,
        };
        if let Bind::Tcp(_) = self.bind {
            // Ours alone (with `SO_REUSEPORT`, every process binds a socket of its own): the
            // accepted sockets can inherit the connections' options from it.
            listener.prime(self.options.nodelay);
        }
        let shared = match self.bind {
            Bind::Listening(_) => true,
            Bind::Tcp(_) => self.reuse_port,
            Bind::Unix(_) => false,
        };
        let local_addr = listener.local_addr()?;
        let shutdown_timeout = self.options.shutdown_timeout;
        let inner = Arc::new(Inner {
            local_addr,
            registry: Registry::new(Arc::new(codec.clone())),
            stopping: AtomicBool::new(false),
            metrics: Arc::new(Metrics::default()),
            accept_thread: Mutex::new(None),
            shared,
            stopped: Latch::default(),
        });
        let acceptor = Acceptor {
            inner: Arc::clone(&inner),
            codec,
            factory: Arc::new(factory),
            options: Arc::new(self.options),
            max_connections: self.max_connections,
            backoff: (self.backoff_min, self.backoff_max),
            proxy: self.proxy_protocol.then_some(self.proxy_header_timeout),
        };
        let thread = thread::Builder::new()
            .name("threadnet-accept".into())
            .spawn(move || acceptor.run(listener))?;
        *lock(&inner.accept_thread) = Some(thread);
        Ok(ServerHandle {
            stop_on_drop: Arc::new(StopOnDrop {
                inner: Arc::clone(&inner),
                timeout: shutdown_timeout,
            }),
            inner,
        })
    }
}

/// A running server: its address, its connections, and the way to stop it.
///
/// Cheap to clone. Dropping the last clone stops the server as
/// [`stop`](ServerHandle::stop) does, with the connections' shutdown timeout as the deadline.
pub struct ServerHandle<C: Codec> {
    inner: Arc<Inner<C>>,
    stop_on_drop: Arc<StopOnDrop<Inner<C>>>,
}

impl<C: Codec> Clone for ServerHandle<C> {
    fn clone(&self) -> Self {
        ServerHandle {
            inner: Arc::clone(&self.inner),
            stop_on_drop: Arc::clone(&self.stop_on_drop),
        }
    }
}

impl<C: Codec> ServerHandle<C> {
    /// The address the server listens on: for TCP with the real port when bound to port 0,
    /// for Unix the socket file's path.
    pub fn local_addr(&self) -> Addr {
        self.inner.local_addr.clone()
    }

    /// The server's counters now: connections, messages, bytes, errors (messages and bytes
    /// summed over its connections under one short lock); see [`metrics`](crate::metrics)
    /// for Prometheus. How many connections are open is its `connections_active` (or
    /// [`connections`](Self::connections)`().len()`), how many were accepted and served
    /// `connections_accepted`.
    ///
    /// `connections_refused` counts the connections closed at once after `accept`: because
    /// [`ServerBuilder::max_connections`] were open, because the accepted socket could not be
    /// given the options a connection needs, because no thread could be spawned for it (out of
    /// threads or memory, or an impossible
    /// [`ConnOptions::stack_size`](crate::ConnOptions::stack_size)), or, with
    /// [`ServerBuilder::proxy_protocol`], because it sent no valid header in time. A refused
    /// connection never opens: its handler is not made, and it gets neither `on_connect` nor
    /// `on_close`. `accept_errors` counts the calls to `accept` that failed (out of file
    /// descriptors or memory; see [`ServerBuilder::accept_backoff`]): no connection was taken,
    /// and the peer waits in the listen backlog.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot(self.inner.registry.len())
    }

    /// The live connections: look up, count, visit, broadcast.
    pub fn connections(&self) -> &Registry<C> {
        &self.inner.registry
    }

    /// Stops the server and returns when it is fully stopped: no more accepts (the port is
    /// released first), every connection shut down gracefully with `deadline` (queues drain,
    /// FIN, wait for the peer's EOF, forced close at the deadline, reason
    /// [`CloseReason::ServerStopped`](crate::CloseReason::ServerStopped)), and every thread the
    /// server started joined. A second call waits for the first to finish, except on one of
    /// the server's own connection threads (a handler, `on_close`, a watermark observer, a
    /// connection timer or `on_idle`): there it returns at once, since the first call may be
    /// waiting for that very thread, which ends once its callback returns.
    pub fn stop(&self, deadline: Duration) {
        self.inner.stop(deadline, false);
    }

    /// Stops for a restart: no more accepts, then the open connections get up to `deadline`
    /// to end on their own (their peers close them, or their handlers do), and those left are
    /// stopped as [`stop`](Self::stop) stops them. Unlike `stop`, it does not shut busy
    /// connections down at once: a request still on its way gets its reply. goes waits up to a
    /// minute this way before exiting after a hand-off.
    pub fn drain(&self, deadline: Duration) {
        self.inner.stop(deadline, true);
    }

    /// True once [`stop`](Self::stop) has finished.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.is_set()
    }

    /// Blocks until the server has been stopped (from another thread).
    pub fn wait(&self) {
        self.inner.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use crate::{codec::LengthDelimited, Connection, TcpServer};

    /// Every connection's `Core` is freed once it has closed: nothing (a timer, a queue, the
    /// registry) keeps one alive, so its counters leave the live set for the gone sum and a
    /// server with connections coming and going keeps nothing of them.
    #[test]
    fn closed_connections_are_freed() {
        let server = TcpServer::builder()
            .start(LengthDelimited::new(), |_: &Connection<LengthDelimited>| {
                |conn: &Connection<LengthDelimited>, msg: Vec<u8>| {
                    let _ = conn.send(msg);
                }
            })
            .unwrap();
        for _ in 0..20 {
            let mut s = TcpStream::connect(server.local_addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(&[0, 0, 0, 2, b'h', b'i']).unwrap();
            let mut back = [0u8; 6];
            s.read_exact(&mut back).unwrap();
            assert_eq!(&back[4..], b"hi");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.inner.metrics.live() > 0 {
            assert!(
                Instant::now() < deadline,
                "{} closed connections are still alive",
                server.inner.metrics.live()
            );
            std::thread::yield_now();
        }
        let m = server.metrics();
        assert_eq!((m.messages_received, m.messages_sent), (20, 20));
        server.stop(Duration::from_secs(1));
    }
}
