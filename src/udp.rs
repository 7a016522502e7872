//! `UdpServer`: datagrams through the same codecs and handlers as TCP.
//!
//! goes promises that moving a line protocol from TCP to UDP changes the transport line, not the
//! handler; so does threadnet. Each peer address that sends a datagram becomes a
//! [`Connection`]: the same handle, the same `on_connect` / `on_message` / `on_close`, the same
//! send calls, the same timers and idle limits. What differs is underneath:
//!
//! * **One reader thread for the socket**, not one per peer: it receives each datagram, finds
//!   (or makes) the peer's connection, and decodes the datagram with that peer's codec: a
//!   datagram holds whole messages (usually one), never part of one. A datagram that does not
//!   decode, or is over [`UdpBuilder::max_datagram`], ends that peer's connection with an
//!   `Error`, as a bad frame ends a TCP connection.
//! * **No writer threads**: a send writes its message as one datagram (`send_to`) at once, on
//!   the thread that sends, so a server with thousands of peers still has one thread (the
//!   reader) plus the process's timing wheel. A UDP send does not wait for the peer, only for
//!   room in the socket's send buffer, which the kernel frees at the speed of the network
//!   card. So nothing is queued per peer, and the send calls keep their meaning with the
//!   socket buffer (shared by every peer) in place of the queue: `send` waits up to its
//!   timeout for room there, `try_send` waits at most one 50 ms write slice and then hands the
//!   message back in [`TrySendError::Full`](crate::TrySendError::Full). `Ok` means the
//!   datagram was handed to the kernel (UDP itself may still lose it). A send error other
//!   than a full buffer ends the peer's connection with that error and hands the message
//!   back. Queue sizes and watermarks ([`ConnOptions::send_queue_capacity`] and friends) do not
//!   apply: nothing is ever queued, and `dropped` is always 0.
//! * **No end of stream**: a peer's connection ends when it is closed or shut down (our side),
//!   when an idle limit passes, or when the server stops. Peers are kept for
//!   [`DEFAULT_PEER_IDLE`] without a datagram unless [`ConnOptions`] sets an idle limit, so a
//!   server does not fill up with peers that left.
//! * **A full table makes room**: when [`UdpBuilder::max_peers`] peers are served and a new
//!   one sends, the peer heard from least recently is ended (`on_close` with
//!   [`CloseReason::IdleTimeout`] of kind
//!   [`IdleKind::Read`]) and the newcomer is served. Refusing the
//!   newcomer instead would let anyone who sprays datagrams from many source ports lock every
//!   new peer out for the whole idle expiry. A peer that keeps talking is not evicted unless
//!   `max_peers` newer peers sent something since it last did.
//!
//! ```
//! use std::net::UdpSocket;
//! use std::time::Duration;
//! use threadnet::{codec::Lines, udp::UdpServer, Connection};
//!
//! // The handler of a TCP line server, unchanged.
//! let server = UdpServer::builder().start(Lines::new(), |_: &Connection<Lines>| {
//!     |conn: &Connection<Lines>, line: String| {
//!         let _ = conn.send(line.to_uppercase());
//!     }
//! })?;
//!
//! let client = UdpSocket::bind("127.0.0.1:0")?;
//! client.set_read_timeout(Some(Duration::from_secs(5)))?;
//! client.send_to(b"hello\n", server.local_addr())?;
//! let mut buf = [0u8; 64];
//! let (n, _) = client.recv_from(&mut buf)?;
//! assert_eq!(&buf[..n], b"HELLO\n");
//! server.stop(Duration::from_secs(1));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::codec::Codec;
use crate::conn::core::Core;
use crate::conn::handler::Handler;
use crate::conn::idle::IdleKind;
use crate::conn::lifecycle::{self, Decoded, End};
use crate::conn::metrics::{Metrics, MetricsSnapshot};
use crate::conn::options::ConnOptions;
use crate::conn::registry::Registry;
use crate::conn::threads::ReaderMark;
use crate::conn::CloseReason;
use crate::conn::Connection;

use crate::sync::{deadline_after, lock, Latch, Stop, StopOnDrop};
use crate::sys::transport::{Addr, Socket, WRITE_SLICE};

/// How long a UDP peer may send nothing before its connection ends, unless [`ConnOptions`]
/// sets an idle limit of its own: 60 s.
pub const DEFAULT_PEER_IDLE: Duration = Duration::from_secs(60);

/// How often the reader looks at ended peers and the stop flag even if no datagram (and no
/// wake-up datagram) arrives.
const RECHECK: Duration = Duration::from_millis(250);

/// A UDP server; see the [module docs](crate::udp).
pub struct UdpServer;

impl UdpServer {
    /// A builder with every option at its default.
    pub fn builder() -> UdpBuilder {
        UdpBuilder::default()
    }
}

/// Options of a [`UdpServer`]; [`start`](UdpBuilder::start) it with a codec and a handler
/// factory.
#[derive(Debug, Clone)]
pub struct UdpBuilder {
    addr: String,
    max_peers: usize,
    max_datagram: usize,
    options: ConnOptions,
}

impl Default for UdpBuilder {
    fn default() -> Self {
        UdpBuilder {
            addr: "127.0.0.1:0".to_string(),
            max_peers: 1024,
            max_datagram: 65_507,
            options: ConnOptions::default(),
        }
    }
}

impl UdpBuilder {
    /// The address to bind, `HOST:PORT`; port 0 picks a free port.
    ///
    /// Defaults to `127.0.0.1:0`.
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = addr.into();
        self
    }

    /// Most peers served at once. A datagram from a new peer past the limit ends the
    /// connection of the peer heard from least recently, counted in
    /// [`UdpHandle::evicted_count`], and the new peer is served (see the
    /// [module docs](crate::udp)). At least 1.
    ///
    /// Defaults to 1024.
    pub fn max_peers(mut self, n: usize) -> Self {
        self.max_peers = n.max(1);
        self
    }

    /// The largest datagram accepted, in bytes; a larger one ends its peer's connection with
    /// an `InvalidData` error.
    ///
    /// Defaults to 65 507, the largest UDP payload over IPv4.
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes.max(1);
        self
    }

    /// Options of every peer's connection (send timeout, idle limits, timing wheel).
    /// Write-through, the queue's bounds and watermarks do not apply to UDP: sends write at
    /// once. Without an idle limit, peers expire after [`DEFAULT_PEER_IDLE`].
    ///
    /// Defaults to [`ConnOptions::default`].
    pub fn options(mut self, options: ConnOptions) -> Self {
        self.options = options;
        self
    }

    /// Binds and serves on a background thread.
    ///
    /// # Errors
    ///
    /// Binding fails, or the thread cannot be spawned.
    pub fn start<C, H, F>(self, mut codec: C, factory: F) -> io::Result<UdpHandle<C>>
    where
        C: Codec,
        H: Handler<C>,
        F: Fn(&Connection<C>) -> H + Send + Sync + 'static,
    {
        self.options.prepare_start(&mut codec)?;
        let socket = Arc::new(UdpSocket::bind(&self.addr)?);
        socket.set_write_timeout(Some(WRITE_SLICE))?;
        socket.set_read_timeout(Some(RECHECK))?;
        let local = socket.local_addr()?;
        let shutdown_timeout = self.options.shutdown_timeout;
        let mut options = self.options.write_through(false);
        if !options.idle.enabled() {
            options = options.read_idle(DEFAULT_PEER_IDLE);
        }
        let inner = Arc::new(Inner {
            socket,
            local,
            registry: Registry::new(Arc::new(codec.clone())),
            ended: Arc::new(Mutex::new(Vec::new())),
            stopping: AtomicBool::new(false),
            evicted: AtomicU64::new(0),
            metrics: Arc::new(Metrics::default()),
            thread: Mutex::new(None),
            stopped: Latch::default(),
        });
        let reader = Reader {
            inner: Arc::clone(&inner),
            codec_shared: Arc::new(codec.clone()),
            codec,
            factory,
            options: Arc::new(options),
            max_peers: self.max_peers,
            max_datagram: self.max_datagram,
            peers: HashMap::new(),
            next_id: 1,
            heard: 0,
        };
        let thread = thread::Builder::new()
            .name("threadnet-udp".into())
            .spawn(move || reader.run())?;
        *lock(&inner.thread) = Some(thread);
        Ok(UdpHandle {
            stop_on_drop: Arc::new(StopOnDrop {
                inner: Arc::clone(&inner),
                timeout: shutdown_timeout,
            }),
            inner,
        })
    }
}

/// State shared by the handle, the reader thread and the peers' sockets.
struct Inner<C: Codec> {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    registry: Registry<C>,
    /// Peers whose connection has ended on our side, for the reader to finish.
    ended: Arc<Mutex<Vec<SocketAddr>>>,
    stopping: AtomicBool,
    /// Peers ended to make room for a new one.
    evicted: AtomicU64,
    metrics: Arc<Metrics>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stopped: Latch,
}

/// Wakes the reader thread out of `recv_from` with an empty datagram to itself.
fn wake(socket: &UdpSocket, local: SocketAddr) {
    let _ = socket.send_to(&[], loopback(local));
}

/// `local` with an unspecified IP replaced by loopback: where the socket can reach itself.
fn loopback(mut local: SocketAddr) -> SocketAddr {
    if local.ip().is_unspecified() {
        local.set_ip(match local {
            SocketAddr::V4(_) => [127, 0, 0, 1].into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    local
}

impl<C: Codec> Inner<C> {
    fn stop(&self, deadline: Duration) {
        let first = !self.stopping.swap(true, Ordering::SeqCst);
        // Called from the reader thread (a handler) or from one of a peer's own threads (its
        // writer, the wheel running its timer): the reader may be waiting for this very
        // thread to finish that peer, so do not wait for it; it ends, and marks the server
        // stopped, once every peer has finished.
        let on_reader = lock(&self.thread)
            .as_ref()
            .is_some_and(|t| t.thread().id() == thread::current().id());
        let own = on_reader || self.registry.is_own_thread_of_any();
        if first {
            let until = deadline_after(deadline);
            self.registry.for_each(|conn| conn.stop(deadline));
            wake(&self.socket, self.local);
            if own {
                return;
            }
            if !self.registry.wait_empty(until) {
                self.registry.for_each(|conn| conn.core.force_close());
            }
        }
        if own {
            return;
        }
        let thread = lock(&self.thread).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
        self.stopped.wait(); // set by the reader as it ends
    }

    fn wait(&self) {
        self.stopped.wait();
    }
}

impl<C: Codec> Stop for Inner<C> {
    fn stop(&self, deadline: Duration) {
        Inner::stop(self, deadline);
    }
}

/// A peer's side of the shared socket, as its connection sees it.
struct UdpPeer {
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    local: SocketAddr,
    /// Where to report the end, once.
    ended: Arc<Mutex<Vec<SocketAddr>>>,
    done: AtomicBool,
}

impl Socket for UdpPeer {
    fn read(&self, _: &mut [u8]) -> io::Result<usize> {
        // The server's reader thread reads for every peer.
        Err(io::ErrorKind::Unsupported.into())
    }

    fn read_now(&self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// A peer's datagrams go out through `send_datagram`, never through write-through or
    /// the writer's non-blocking write; the shared socket is never made non-blocking.
    fn write_vectored_now(&self, _: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs {
            [one] => self.socket.send_to(one, self.peer),
            _ => {
                let datagram: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
                self.socket.send_to(&datagram, self.peer)
            }
        }
    }

    /// A datagram peer has no half-close: our FIN (or an abort) ends its connection, which
    /// the reader thread then finishes.
    fn shutdown(&self, _: Shutdown) -> io::Result<()> {
        if !self.done.swap(true, Ordering::SeqCst) {
            lock(&self.ended).push(self.peer);
            wake(&self.socket, self.local);
        }
        Ok(())
    }

    fn wait_readable(&self) -> io::Result<bool> {
        Ok(true)
    }

    fn set_read_patience(&self, _: Option<Duration>) -> io::Result<bool> {
        Ok(false)
    }

    fn prepare(&self, _nodelay: bool) -> io::Result<()> {
        Ok(())
    }

    fn peer_addr(&self) -> io::Result<Addr> {
        Ok(Addr::Inet(self.peer))
    }

    fn local_addr(&self) -> io::Result<Addr> {
        Ok(Addr::Inet(self.local))
    }

    fn is_datagram(&self) -> bool {
        true
    }
}

/// One peer, owned by the reader thread.
struct Peer<C: Codec, H> {
    conn: Connection<C>,
    /// `None` if the factory panicked.
    handler: Option<H>,
    codec: C,
    /// When it last sent a datagram, on the reader's datagram count: the lowest is the peer
    /// heard from least recently.
    heard: u64,
}

/// Everything the reader thread owns.
struct Reader<C: Codec, H, F> {
    inner: Arc<Inner<C>>,
    codec: C,
    codec_shared: Arc<C>,
    factory: F,
    options: Arc<ConnOptions>,
    max_peers: usize,
    max_datagram: usize,
    peers: HashMap<SocketAddr, Peer<C, H>>,
    next_id: u64,
    /// Datagrams received so far: the clock of `Peer::heard`.
    heard: u64,
}

impl<C, H, F> Reader<C, H, F>
where
    C: Codec,
    H: Handler<C>,
    F: Fn(&Connection<C>) -> H + Send + Sync + 'static,
{
    fn run(mut self) {
        // The server counts as stopped once this thread ends, however it ends.
        struct Stopped<'a>(&'a Latch);
        impl Drop for Stopped<'_> {
            fn drop(&mut self) {
                self.0.set();
            }
        }
        let inner = Arc::clone(&self.inner);
        let _stopped = Stopped(&inner.stopped);
        // One byte more than the limit: a datagram that fills it was too large.
        let mut buf = vec![0u8; self.max_datagram + 1];
        let me = loopback(self.inner.local);
        loop {
            self.finish_ended();
            if self.inner.stopping.load(Ordering::SeqCst) && self.peers.is_empty() {
                return;
            }
            match self.inner.socket.recv_from(&mut buf) {
                Ok((0, from)) if from == me => {} // a wake-up
                Ok((n, from)) => self.dispatch(&buf[..n], from),
                // The read timeout (a wake-up datagram may be lost when the send buffer is
                // full: look at the ended peers and the stop flag anyway), or a transient
                // error (a signal, an ICMP error reported on some systems): go on.
                Err(_) => {}
            }
        }
    }

    /// Delivers one datagram to its peer's handler, making the peer's connection if new.
    fn dispatch(&mut self, datagram: &[u8], from: SocketAddr) {
        if !self.peers.contains_key(&from) && !self.connect(from) {
            return;
        }
        let max = self.max_datagram;
        self.heard += 1;
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        peer.heard = self.heard;
        let core = Arc::clone(&peer.conn.core);
        if core.is_aborted() {
            return; // ending: its reader work is done
        }
        core.socket_read(datagram.len());
        if datagram.len() > max {
            let error = io::Error::new(
                io::ErrorKind::InvalidData,
                format!("datagram over the limit of {max} bytes"),
            );
            core.io_failed(error);
            return;
        }
        let Some(handler) = peer.handler.as_mut() else {
            return;
        };
        // This thread is the peer's reader while its handler runs (a stop or close from the
        // handler must not wait for this thread).
        let Some(stream) = core.stream() else {
            return;
        };
        let _mark = ReaderMark::set(&core, stream);
        let mut rest = datagram;
        loop {
            let Decoded { read, mid } = lifecycle::decode(&mut peer.codec, &mut rest);
            let end = match read {
                Ok(Ok(Some(msg))) => {
                    let more = !rest.is_empty();
                    match lifecycle::message(&peer.conn, handler, msg, mid, more) {
                        None => continue,
                        Some(End::Eof) => return, // closed from the handler
                        Some(end) => end,
                    }
                }
                Ok(Ok(None)) => return,
                Ok(Err(e)) => End::Error(e),
                Err(message) => End::Panic(message),
            };
            // The peer's connection ends; its end is finished by `finish_ended`.
            return lifecycle::end_reading(&core, end);
        }
    }

    /// Makes the connection of a new peer and runs `on_connect`; false if refused (the
    /// server is stopping).
    fn connect(&mut self, from: SocketAddr) -> bool {
        if self.inner.stopping.load(Ordering::SeqCst) || !self.make_room() {
            self.inner.metrics.refused();
            return false;
        }
        let inner = &self.inner;
        let socket = Arc::new(UdpPeer {
            socket: Arc::clone(&inner.socket),
            peer: from,
            local: inner.local,
            ended: Arc::clone(&inner.ended),
            done: AtomicBool::new(false),
        });
        let id = self.next_id;
        self.next_id += 1;
        inner.metrics.accepted();
        let core = Core::new(
            id,
            socket,
            Addr::Inet(from),
            Addr::Inet(inner.local),
            Arc::clone(&self.options),
            Arc::clone(&inner.metrics),
        );
        let conn = Connection::new(core, Arc::clone(&self.codec_shared));
        inner.registry.insert(conn.clone());
        let (handler, failed) = lifecycle::open(&conn, |c: &Connection<C>| (self.factory)(c));
        if let Some(end) = failed {
            lifecycle::end_reading(&conn.core, end);
        }
        self.peers.insert(
            from,
            Peer {
                conn,
                handler,
                codec: self.codec.clone(),
                heard: self.heard,
            },
        );
        true
    }

    /// Below `max_peers`, or gets there by ending the peer heard from least recently (one
    /// O(peers) scan, only when the table is full and a new peer sends).
    fn make_room(&mut self) -> bool {
        if self.peers.len() < self.max_peers {
            return true;
        }
        self.finish_ended();
        if self.peers.len() < self.max_peers {
            return true;
        }
        let oldest = self
            .peers
            .iter()
            .min_by_key(|(_, p)| p.heard)
            .map(|(addr, p)| (*addr, Arc::clone(&p.conn.core)));
        let Some((addr, core)) = oldest else {
            return false;
        };
        self.inner.evicted.fetch_add(1, Ordering::Relaxed);
        core.close_now(CloseReason::idle(IdleKind::Read));
        // Its close reported it ended (`UdpPeer::shutdown`); make sure, then finish it.
        lock(&self.inner.ended).push(addr);
        self.finish_ended();
        self.peers.len() < self.max_peers
    }

    /// Finishes the peers whose connection ended: the writer is joined, `on_close` runs, the
    /// peer leaves the registry.
    fn finish_ended(&mut self) {
        let ended = std::mem::take(&mut *lock(&self.inner.ended));
        for addr in ended {
            let Some(mut peer) = self.peers.remove(&addr) else {
                continue;
            };
            lifecycle::end(&peer.conn, None, |reason| {
                lifecycle::on_close(&peer.conn, peer.handler.as_mut(), reason);
            });
            self.inner.registry.remove(peer.conn.id());
        }
    }
}

/// A running UDP server: its address, its peers' connections, and the way to stop it.
///
/// Cheap to clone. Dropping the last clone stops the server as [`stop`](UdpHandle::stop) does,
/// with the connections' shutdown timeout as the deadline.
pub struct UdpHandle<C: Codec> {
    inner: Arc<Inner<C>>,
    stop_on_drop: Arc<StopOnDrop<Inner<C>>>,
}

impl<C: Codec> Clone for UdpHandle<C> {
    fn clone(&self) -> Self {
        UdpHandle {
            inner: Arc::clone(&self.inner),
            stop_on_drop: Arc::clone(&self.stop_on_drop),
        }
    }
}

impl<C: Codec> UdpHandle<C> {
    /// The address the socket is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The peers' live connections: look up, count, visit, broadcast.
    pub fn connections(&self) -> &Registry<C> {
        &self.inner.registry
    }

    /// Peers ended to make room for a new one once [`UdpBuilder::max_peers`] were served.
    pub fn evicted_count(&self) -> u64 {
        self.inner.evicted.load(Ordering::Relaxed)
    }

    /// The server's counters now: peers, messages, bytes, errors (messages and bytes summed
    /// over its peers under one short lock); see [`metrics`](crate::metrics).
    ///
    /// `connections_refused` counts the datagrams from new peers dropped because the server
    /// was stopping.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot(self.inner.registry.len())
    }

    /// Stops the server: no new peers; every peer's connection shuts down with `deadline`
    /// (its queue is sent, then it ends, reason
    /// [`CloseReason::ServerStopped`]); the reader thread is
    /// joined. A second call waits for the first.
    pub fn stop(&self, deadline: Duration) {
        self.inner.stop(deadline);
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
