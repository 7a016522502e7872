//! `TcpClient`: dial (TCP or a Unix-domain socket) with a timeout and retries, then serve the
//! connection like a server does; optionally reconnect when it drops.

use std::io;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::codec::Codec;
use crate::conn::core::Core;
use crate::conn::handler::Handler;
use crate::conn::metrics::{Metrics, MetricsSnapshot};
use crate::conn::options::ConnOptions;
use crate::conn::reader::serve;
use crate::conn::threads::is_own_thread;
use crate::conn::Connection;
use crate::sync::deadline_after;
use crate::sync::lock;
use crate::sync::{Latch, Stop, StopOnDrop};
use crate::sys::ceiling::Ceiling;
use crate::sys::transport::{Socket, Target};

/// A protocol's opening handshake, run on each dialled socket (the first connect, its retries,
/// every reconnect) with the connect timeout: it returns the socket the connection runs on,
/// and an error counts as a failed attempt. The WebSocket client's seam.
pub(crate) type Prepare =
    Arc<dyn Fn(Arc<dyn Socket>, Duration) -> io::Result<Arc<dyn Socket>> + Send + Sync>;

/// A TCP client: dials a server, then runs the connection with the same [`Codec`], [`Handler`]
/// and [`Connection`](crate::Connection) as a server's: a reader thread that calls the handler and a writer thread
/// for the send queue.
///
/// ```
/// use std::time::{Duration, Instant};
/// use threadnet::{codec::Lines, Connection, TcpClient, TcpServer};
///
/// let server = TcpServer::builder()
///     .start(Lines::new(), |_: &Connection<Lines>| {
///         |conn: &Connection<Lines>, line: String| {
///             let _ = conn.send(format!("echo: {line}"));
///         }
///     })
///     .unwrap();
///
/// let (tx, rx) = std::sync::mpsc::channel();
/// let client = TcpClient::builder()
///     .connect(server.local_addr(), Lines::new(), move |_: &Connection<Lines>| {
///         let tx = tx.clone();
///         move |_: &Connection<Lines>, line: String| tx.send(line).unwrap()
///     })
///     .unwrap();
///
/// client.connection().unwrap().send("hi".to_string()).unwrap();
/// assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "echo: hi");
/// client.stop(Duration::from_secs(1));
/// server.stop(Duration::from_secs(1));
/// ```
pub struct TcpClient;

impl TcpClient {
    /// A builder with every option at its default.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }
}

/// Options of a [`TcpClient`]; [`connect`](ClientBuilder::connect) it with an address, a codec
/// and a handler factory.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connect_timeout: Duration,
    retry: Option<Backoff>,
    reconnect: Option<Backoff>,
    options: ConnOptions,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            connect_timeout: Duration::from_secs(5),
            retry: None,
            reconnect: None,
            options: ConnOptions::default(),
        }
    }
}

impl ClientBuilder {
    /// How long one connection attempt may take: the dial, and then a protocol's opening
    /// handshake (the WebSocket client's) as long again.
    ///
    /// Defaults to 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retries a failed first connect with this backoff (knet's `EnableRetry`), up to its
    /// [`max_attempts`](Backoff::max_attempts).
    ///
    /// Defaults to none: one attempt.
    pub fn retry(mut self, backoff: Backoff) -> Self {
        self.retry = Some(backoff);
        self
    }

    /// Reconnects with this backoff whenever the connection ends (for any reason but
    /// [`ClientHandle::stop`]); each new connection gets a new handler from the factory. After
    /// `max_attempts` failed dials in a row the client gives up.
    ///
    /// Defaults to none: the client ends with its first connection.
    pub fn reconnect(mut self, backoff: Backoff) -> Self {
        self.reconnect = Some(backoff);
        self
    }

    /// Options of the connection. See [`ConnOptions`].
    ///
    /// Defaults to [`ConnOptions::default`].
    pub fn options(mut self, options: ConnOptions) -> Self {
        self.options = options;
        self
    }

    /// For a [`BlockingClient`](crate::BlockingClient): dials `target` and runs `prepare` (if
    /// any) on the socket (both retried if asked), makes the connection and starts no thread: the caller reads, and `caller_reads` is how
    /// a [`stop`](ClientHandle::stop) ends it. Returns the handle, the connection, and the
    /// codec prepared for reading.
    pub(crate) fn dial_for_caller<C: Codec>(
        self,
        target: Target,
        mut codec: C,
        prepare: Option<Prepare>,
        caller_reads: impl FnOnce(&Connection<C>, C) -> CallerReads,
    ) -> io::Result<(ClientHandle<C>, Connection<C>)> {
        if self.reconnect.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a blocking client is one connection: reconnect cannot be set",
            ));
        }
        self.options.prepare_start(&mut codec)?;
        let inner = ClientInner::new();
        let once = Backoff::new().max_attempts(1);
        let backoff = self.retry.as_ref().unwrap_or(&once);
        let stream = inner.dial(&target, self.connect_timeout, backoff, prepare.as_ref())?;
        let options = Arc::new(self.options);
        let conn = inner.connection(stream, &options, &Arc::new(codec.clone()))?;
        let _ = inner.caller_reads.set(caller_reads(&conn, codec));
        let handle = ClientHandle {
            stop_on_drop: Arc::new(StopOnDrop {
                inner: Arc::clone(&inner),
                timeout: options.shutdown_timeout,
            }),
            inner,
        };
        Ok((handle, conn))
    }

    /// Dials `addr` (retrying if [`retry`](Self::retry) is set), then serves the connection on
    /// a background thread. Returns once connected; the handler's `on_connect` may still be
    /// running.
    ///
    /// # Errors
    ///
    /// The address does not resolve, or the last attempt's error (refused, timed out) once the
    /// attempts are used up, or the thread (or the global [`TimingWheel`](crate::TimingWheel)'s, on first use)
    /// cannot be spawned.
    pub fn connect<A, C, H, F>(self, addr: A, codec: C, factory: F) -> io::Result<ClientHandle<C>>
    where
        A: ToSocketAddrs,
        C: Codec,
        H: Handler<C>,
        F: Fn(&Connection<C>) -> H + Send + Sync + 'static,
    {
        let target = Target::Tcp(addr.to_socket_addrs()?.collect());
        self.connect_to(target, codec, factory, None)
    }

    /// As [`connect`](Self::connect), to the Unix-domain socket file at `path` (a
    /// [`UnixServer`](crate::UnixServer), or any program listening there). Retries and
    /// reconnects work the same; the connect timeout does not apply (a Unix connect never
    /// waits).
    ///
    /// # Errors
    ///
    /// The last attempt's error (no such file, refused) once the attempts are used up, or the
    /// thread (or the global [`TimingWheel`](crate::TimingWheel)'s, on first use) cannot be spawned.
    pub fn connect_unix<C, H, F>(
        self,
        path: impl AsRef<Path>,
        codec: C,
        factory: F,
    ) -> io::Result<ClientHandle<C>>
    where
        C: Codec,
        H: Handler<C>,
        F: Fn(&Connection<C>) -> H + Send + Sync + 'static,
    {
        let target = Target::Unix(path.as_ref().to_path_buf());
        self.connect_to(target, codec, factory, None)
    }

    /// Dials `target`, runs `prepare` (if any) on each socket dialled, then serves the
    /// connection as [`connect`](Self::connect) does.
    pub(crate) fn connect_to<C, H, F>(
        self,
        target: Target,
        mut codec: C,
        factory: F,
        prepare: Option<Prepare>,
    ) -> io::Result<ClientHandle<C>>
    where
        C: Codec,
        H: Handler<C>,
        F: Fn(&Connection<C>) -> H + Send + Sync + 'static,
    {
        self.options.prepare_start(&mut codec)?;
        let inner = ClientInner::new();
        let once = Backoff::new().max_attempts(1);
        let stream = inner.dial(
            &target,
            self.connect_timeout,
            self.retry.as_ref().unwrap_or(&once),
            prepare.as_ref(),
        )?;
        let runner = Runner {
            inner: Arc::clone(&inner),
            target,
            codec_shared: Arc::new(codec.clone()),
            codec,
            factory,
            options: Arc::new(self.options),
            connect_timeout: self.connect_timeout,
            reconnect: self.reconnect,
            prepare,
        };
        let first = runner.connection(stream)?;
        let shutdown_timeout = runner.options.shutdown_timeout;
        let stack = runner.options.stack_size;
        let thread =
            Ceiling::global().spawn("threadnet-client", stack, move || runner.run(first))?;
        *lock(&inner.thread) = Some(thread);
        Ok(ClientHandle {
            stop_on_drop: Arc::new(StopOnDrop {
                inner: Arc::clone(&inner),
                timeout: shutdown_timeout,
            }),
            inner,
        })
    }
}

struct ClientInner<C: Codec> {
    current: Mutex<Option<Connection<C>>>,
    stopping: Mutex<bool>,
    wake: Condvar,
    connections: AtomicU64,
    metrics: Arc<Metrics>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Set when the client thread ends, however it ends.
    ended: Latch,
    /// A client without a thread, whose caller reads (a [`BlockingClient`](crate::BlockingClient)):
    /// how a stop reads on to the end of the connection on the stopping thread, by a deadline.
    caller_reads: OnceLock<CallerReads>,
}

/// See [`ClientInner::caller_reads`].
pub(crate) type CallerReads = Box<dyn Fn(Instant) + Send + Sync>;

impl<C: Codec> ClientInner<C> {
    /// No connection yet, nothing counted.
    fn new() -> Arc<ClientInner<C>> {
        Arc::new(ClientInner {
            current: Mutex::new(None),
            stopping: Mutex::new(false),
            wake: Condvar::new(),
            connections: AtomicU64::new(0),
            metrics: Arc::new(Metrics::default()),
            thread: Mutex::new(None),
            ended: Latch::default(),
            caller_reads: OnceLock::new(),
        })
    }

    /// Tries every address (and `prepare`), retrying with `backoff` until it allows no more
    /// attempts.
    fn dial(
        &self,
        target: &Target,
        timeout: Duration,
        backoff: &Backoff,
        prepare: Option<&Prepare>,
    ) -> io::Result<Arc<dyn Socket>> {
        let mut attempt = 1u32;
        loop {
            let dialled = target.dial(timeout);
            let dialled = match prepare {
                Some(p) => dialled.and_then(|s| p(s, timeout)),
                None => dialled,
            };
            let last = match dialled {
                Ok(s) => return Ok(s),
                Err(e) => e,
            };
            if !backoff.allows(attempt + 1) || self.pause(backoff.delay(attempt - 1)) {
                return Err(last);
            }
            attempt += 1;
        }
    }

    /// Makes the connection over a dialled `stream`; it becomes the current one.
    fn connection(
        &self,
        stream: Arc<dyn Socket>,
        options: &Arc<ConnOptions>,
        codec: &Arc<C>,
    ) -> io::Result<Connection<C>> {
        stream.prepare(options.nodelay)?;
        let peer = stream.peer_addr()?;
        let local = stream.local_addr()?;
        let id = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
        self.metrics.accepted();
        let core = Core::new(
            id,
            stream,
            peer,
            local,
            Arc::clone(options),
            Arc::clone(&self.metrics),
        );
        let conn = Connection::new(core, Arc::clone(codec));
        *lock(&self.current) = Some(conn.clone());
        Ok(conn)
    }

    /// Sleeps for `d` unless stopped first; returns true if stopped.
    fn pause(&self, d: Duration) -> bool {
        let stopping = lock(&self.stopping);
        let (stopping, _) = self
            .wake
            .wait_timeout_while(stopping, d, |s| !*s)
            .unwrap_or_else(|e| e.into_inner());
        *stopping
    }

    /// Stops as `ServerHandle::stop` does: the connection shuts down with `deadline`, kept by
    /// its timer and also here, in case the timing wheel cannot keep it (a stop called from one
    /// of its callbacks blocks its thread).
    fn stop(&self, deadline: Duration) {
        let until = deadline_after(deadline);
        *lock(&self.stopping) = true;
        self.wake.notify_all();
        if let Some(conn) = lock(&self.current).clone() {
            conn.stop(deadline);
        }
        if self.is_own_thread() {
            return; // a callback stopping its own client: its thread ends when it returns
        }
        if let Some(read_to_end) = self.caller_reads.get() {
            read_to_end(until); // no client thread: the connection ends here
            self.ended.set();
        }
        if !self.ended.wait_until(until) {
            if let Some(conn) = lock(&self.current).clone() {
                conn.core.force_close();
            }
        }
        self.join();
    }

    /// True if the caller is the client thread or its connection's writer (a handler or a
    /// watermark observer): waiting for the client thread would wait for itself.
    fn is_own_thread(&self) -> bool {
        let own_writer = lock(&self.current)
            .as_ref()
            .is_some_and(|c| is_own_thread(&c.core));
        own_writer
            || lock(&self.thread)
                .as_ref()
                .is_some_and(|t| t.thread().id() == thread::current().id())
    }

    /// Joins the client thread, unless that would wait for the caller itself.
    fn join(&self) {
        if self.is_own_thread() {
            return;
        }
        let thread = lock(&self.thread).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// Everything the client thread owns.
struct Runner<C: Codec, F> {
    inner: Arc<ClientInner<C>>,
    target: Target,
    codec: C,
    codec_shared: Arc<C>,
    factory: F,
    options: Arc<ConnOptions>,
    connect_timeout: Duration,
    reconnect: Option<Backoff>,
    prepare: Option<Prepare>,
}

impl<C, H, F> Runner<C, F>
where
    C: Codec,
    H: Handler<C>,
    F: Fn(&Connection<C>) -> H + Send + Sync + 'static,
{
    fn connection(&self, stream: Arc<dyn Socket>) -> io::Result<Connection<C>> {
        self.inner
            .connection(stream, &self.options, &self.codec_shared)
    }

    fn run(self, first: Connection<C>) {
        let _ended = Ended(&self.inner);
        let mut conn = first;
        loop {
            serve(&conn, self.codec.clone(), |c| (self.factory)(c));
            *lock(&self.inner.current) = None;
            let Some(backoff) = &self.reconnect else {
                return;
            };
            if *lock(&self.inner.stopping) || self.inner.pause(backoff.delay(0)) {
                return;
            }
            let dialled = self.inner.dial(
                &self.target,
                self.connect_timeout,
                backoff,
                self.prepare.as_ref(),
            );
            let Ok(stream) = dialled else {
                return;
            };
            // Decide under the lock that stop() takes first, so a stop either sees the new
            // connection (and shuts it down) or this thread sees the stop.
            let stopping = lock(&self.inner.stopping);
            if *stopping {
                return; // the new stream drops here: closed before anyone used it
            }
            match self.connection(stream) {
                Ok(c) => conn = c,
                Err(_) => return,
            }
            drop(stopping);
        }
    }
}

/// Marks the client thread as ended when it returns (or unwinds).
struct Ended<'a, C: Codec>(&'a ClientInner<C>);

impl<C: Codec> Drop for Ended<'_, C> {
    fn drop(&mut self) {
        self.0.ended.set();
    }
}

impl<C: Codec> Stop for ClientInner<C> {
    fn stop(&self, deadline: Duration) {
        ClientInner::stop(self, deadline);
    }
}

/// A running client. Cheap to clone; dropping the last clone stops it as
/// [`stop`](ClientHandle::stop) does, with the shutdown timeout as the deadline.
pub struct ClientHandle<C: Codec> {
    inner: Arc<ClientInner<C>>,
    stop_on_drop: Arc<StopOnDrop<ClientInner<C>>>,
}

impl<C: Codec> Clone for ClientHandle<C> {
    fn clone(&self) -> Self {
        ClientHandle {
            inner: Arc::clone(&self.inner),
            stop_on_drop: Arc::clone(&self.stop_on_drop),
        }
    }
}

impl<C: Codec> ClientHandle<C> {
    /// The current connection, if connected (between a drop and a reconnect there is none).
    pub fn connection(&self) -> Option<Connection<C>> {
        lock(&self.inner.current).clone()
    }

    /// The client's counters now, over every connection it has made (messages and bytes
    /// summed under one short lock); see [`metrics`](crate::metrics).
    ///
    /// How many connections it has made, the first included, is its `connections_accepted`.
    pub fn metrics(&self) -> MetricsSnapshot {
        let active = lock(&self.inner.current)
            .as_ref()
            .is_some_and(|c| !c.is_closed());
        self.inner.metrics.snapshot(usize::from(active))
    }

    /// Stops the client: no more reconnects, the current connection is shut down gracefully
    /// with `deadline` (reason [`CloseReason::ServerStopped`](crate::CloseReason::ServerStopped)),
    /// and the client's threads are joined.
    pub fn stop(&self, deadline: Duration) {
        self.inner.stop(deadline);
    }

    /// Blocks until the client has ended: its connection closed and, with reconnect, it gave up
    /// or was stopped.
    pub fn wait(&self) {
        self.inner.join();
    }
}
