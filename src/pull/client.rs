//! `BlockingClient`: a connection the calling thread sends on and reads from itself.

use std::io;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crate::client::{ClientBuilder, ClientHandle, Prepare, TcpClient};
use crate::codec::Codec;
use crate::conn::lifecycle::{self, Decoded, End};
use crate::conn::{CloseReason, Connection};
use crate::error::SendError;
use crate::pull::error::{RecvError, RecvTimeoutError, RequestError, TryRecvError};
use crate::pull::input::{CallerInput, Wait};
use crate::sync::{catch, deadline_after, lock, Latch};
use crate::sys::transport::{Socket, Target};

/// A client for synchronous code: [`send`](Self::send) and [`recv`](Self::recv) on the
/// calling thread, like a socket, but framed by a [`Codec`] and with every guarantee of a
/// [`Connection`] (bounded send queue, graceful shutdown, timers, idle limits, metrics).
///
/// It has no reader thread: the thread that calls `recv` (or `request`, `recv_timeout`,
/// `try_recv`, the iterators) reads the socket and decodes the message itself, as a blocking
/// std client would, so a reply costs no thread hand-off. Calls from several threads at once
/// take turns. A receive with a deadline never tears a frame: when the deadline passes in the
/// middle of one, the bytes read so far stay buffered and the codec is put back as it was, so
/// the next call decodes the whole frame. A caller that stops receiving stops reading, and TCP
/// flow control slows the server down: nothing is buffered in between, nothing is dropped.
///
/// The connection's end is seen by the caller too: a server that closes while nobody is in
/// `recv` is noticed at the next `recv`, after every message it sent before its FIN, as with
/// a std socket. Idle limits, heartbeats, the frame timeout and timers run on the timing wheel
/// as for any connection; an idle read limit or a heartbeat counts the bytes the caller has
/// read, so a caller that pauses longer than such a limit has its connection closed.
///
/// ```
/// use std::time::Duration;
/// use threadnet::{codec::Lines, BlockingClient, Connection, TcpServer};
///
/// let server = TcpServer::builder().start(Lines::new(), |_: &Connection<Lines>| {
///     |conn: &Connection<Lines>, line: String| {
///         let _ = conn.send(format!("echo: {line}"));
///     }
/// })?;
///
/// let client = BlockingClient::connect(server.local_addr(), Lines::new())?;
/// client.send("hi".to_string()).unwrap();
/// assert_eq!(client.recv().unwrap(), "echo: hi");
/// let reply = client.request("again".to_string(), Duration::from_secs(5)).unwrap();
/// assert_eq!(reply, "echo: again");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Dropping the client stops it as [`ClientHandle::stop`](crate::ClientHandle::stop) does:
/// a graceful close, finished on the dropping thread (see [`shutdown`](Self::shutdown)).
pub struct BlockingClient<C: Codec> {
    shared: Arc<Shared<C>>,
    client: ClientHandle<C>,
}

/// What a protocol does with each message before the caller gets it, on the caller's thread
/// (the WebSocket client answers pings and close frames with it).
pub(crate) type Seen<C> = Box<dyn Fn(&Connection<C>, &<C as Codec>::In) + Send + Sync>;

/// What the caller's calls and a stop share.
struct Shared<C: Codec> {
    conn: Connection<C>,
    reading: Mutex<Reading<C>>,
    /// See [`Seen`].
    seen: Option<Seen<C>>,
    /// Set once the connection has ended and its socket is released.
    ended: Latch,
}

/// The reading side, owned by whichever caller holds the lock.
struct Reading<C: Codec> {
    codec: C,
    input: CallerInput,
    /// The socket, until the connection ends.
    stream: Option<Arc<dyn Socket>>,
    /// Why the connection ended, once it has.
    end: Option<CloseReason>,
}

/// What one receive found.
enum Got<T> {
    Msg(T),
    /// The deadline passed (or, for a receive without waiting, nothing was there).
    Timeout,
    Ended(CloseReason),
}

impl<C: Codec> Shared<C> {
    /// The next message, decoded on this thread, waiting as `wait` says.
    fn next(&self, wait: Wait) -> Got<C::In> {
        self.next_in(&mut lock(&self.reading), wait)
    }

    fn next_in(&self, r: &mut Reading<C>, wait: Wait) -> Got<C::In> {
        if let Some(reason) = &r.end {
            return Got::Ended(reason.clone());
        }
        let core = &self.conn.core;
        // close() stops delivery, even of frames already buffered (as on a reader thread).
        let stream = match &r.stream {
            Some(s) if !core.is_aborted() => Arc::clone(s),
            _ => return self.end(r, End::Eof),
        };
        let rewindable = !matches!(wait, Wait::Forever);
        loop {
            let saved = rewindable.then(|| r.codec.clone());
            r.input.begin(rewindable);
            let Reading { codec, input, .. } = &mut *r;
            let mut source = input.source(&*stream, core, wait);
            let Decoded { read, mid } = lifecycle::decode(codec, &mut source);
            match read {
                Ok(Ok(Some(msg))) => {
                    r.input.commit();
                    if let Some(end) = lifecycle::received(core, mid) {
                        return self.end(r, end);
                    }
                    // The next frame has begun: its clock starts if we wait for its rest.
                    let more = !r.input.is_empty();
                    r.input.settle();
                    if let Some(seen) = &self.seen {
                        if let Err(message) = catch(|| seen(&self.conn, &msg)) {
                            return self.end(r, End::Panic(message));
                        }
                    }
                    // A close is seen at the next receive (above), after this message: the
                    // caller has it, as a handler has a message it was given.
                    let _ = lifecycle::handled(core, mid, more);
                    return Got::Msg(msg);
                }
                // The deadline passed mid-frame: put everything back as it was.
                Ok(_) if r.input.expired() => {
                    if let Some(codec) = saved {
                        r.codec = codec;
                    }
                    r.input.rewind();
                    return Got::Timeout;
                }
                Ok(Ok(None)) => return self.end(r, End::Eof),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                    if let Some(codec) = saved {
                        r.codec = codec;
                    }
                    r.input.rewind();
                }
                Ok(Err(e)) => return self.end(r, End::Error(e)),
                Err(message) => return self.end(r, End::Panic(message)),
            }
        }
    }

    /// Ends the connection as a reader thread does when its loop ends: record how, finish
    /// (the writer is joined, what is queued written or counted), then release the socket.
    fn end(&self, r: &mut Reading<C>, end: End) -> Got<C::In> {
        r.input.clear();
        drop(r.stream.take());
        let reason = lifecycle::end(&self.conn, Some(end), |_| {});
        r.end = Some(reason.clone());
        self.ended.set();
        Got::Ended(reason)
    }

    /// After a graceful close began: reads on to the peer's EOF, discarding what arrives
    /// (counted in the connection's messages received), and closes by force at `until`.
    fn read_to_end(&self, until: Instant) {
        let guard = match self.reading.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        if let Some(mut r) = guard {
            self.drain(&mut r, until);
            return;
        }
        // Another thread is in a receive: it reads on to the end; wait for it.
        if !self.ended.wait_until(until) {
            self.conn.core.force_close();
            self.ended.wait();
        }
    }

    fn drain(&self, r: &mut MutexGuard<'_, Reading<C>>, until: Instant) {
        loop {
            match self.next_in(r, Wait::Until(until)) {
                Got::Msg(_) => {}
                Got::Timeout => self.conn.core.force_close(),
                Got::Ended(_) => return,
            }
        }
    }
}

impl<C: Codec> BlockingClient<C> {
    /// Dials `addr` with every option at its default (a 5 s connect timeout, no retry) and
    /// returns once connected.
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::connect`]: the address does not resolve, the connect failed or
    /// timed out, or the global timing wheel's thread cannot be spawned.
    pub fn connect(addr: impl ToSocketAddrs, codec: C) -> io::Result<Self> {
        Self::connect_with(TcpClient::builder(), addr, codec)
    }

    /// As [`connect`](Self::connect), to the Unix-domain socket file at `path`.
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::connect_unix`].
    pub fn connect_unix(path: impl AsRef<Path>, codec: C) -> io::Result<Self> {
        Self::connect_unix_with(TcpClient::builder(), path, codec)
    }

    /// Dials `addr` with the options of `builder` (connect timeout, retry,
    /// [`ConnOptions`](crate::ConnOptions)) and returns once connected.
    ///
    /// ```
    /// use std::time::Duration;
    /// use threadnet::{codec::Lines, Backoff, BlockingClient, TcpClient};
    ///
    /// # let server = threadnet::TcpServer::builder().start(Lines::new(), |_: &_| |_: &_, _: String| {})?;
    /// # let addr = server.local_addr();
    /// let builder = TcpClient::builder()
    ///     .connect_timeout(Duration::from_secs(1))
    ///     .retry(Backoff::new().initial(Duration::from_millis(10)).max_attempts(5));
    /// let client = BlockingClient::connect_with(builder, addr, Lines::new())?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::connect`]; `InvalidInput` if [`reconnect`](ClientBuilder::reconnect)
    /// is set, since a blocking client is one connection (a reconnect would silently lose the
    /// replies of requests in flight).
    pub fn connect_with(
        builder: ClientBuilder,
        addr: impl ToSocketAddrs,
        codec: C,
    ) -> io::Result<Self> {
        let target = Target::Tcp(addr.to_socket_addrs()?.collect());
        Self::start(builder, target, codec, None, None)
    }

    /// As [`connect_with`](Self::connect_with), to the Unix-domain socket file at `path`.
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::connect_unix`]; `InvalidInput` if
    /// [`reconnect`](ClientBuilder::reconnect) is set.
    pub fn connect_unix_with(
        builder: ClientBuilder,
        path: impl AsRef<Path>,
        codec: C,
    ) -> io::Result<Self> {
        let target = Target::Unix(path.as_ref().to_path_buf());
        Self::start(builder, target, codec, None, None)
    }

    /// Dials (and runs `prepare`, a protocol's handshake, on the socket), then sets the
    /// connection up as a reader thread would, without the thread; `seen` sees every
    /// message before the caller does.
    pub(crate) fn start(
        builder: ClientBuilder,
        target: Target,
        codec: C,
        prepare: Option<Prepare>,
        seen: Option<Seen<C>>,
    ) -> io::Result<Self> {
        let mut made = None;
        let (client, conn) = builder.dial_for_caller(target, codec, prepare, |conn, codec| {
            let core = &conn.core;
            let shared = Arc::new(Shared {
                conn: conn.clone(),
                reading: Mutex::new(Reading {
                    codec,
                    input: CallerInput::new(core.options().read_buffer),
                    stream: core.stream(),
                    end: None,
                }),
                seen,
                ended: Latch::default(),
            });
            made = Some(Arc::clone(&shared));
            Box::new(move |until| shared.read_to_end(until))
        })?;
        let shared = made.expect("dial_for_caller makes the reading side");
        lifecycle::open_for_caller(&conn);
        Ok(BlockingClient { shared, client })
    }

    /// The connection: its addresses, stats, timers, and every send and close it offers.
    pub fn connection(&self) -> &Connection<C> {
        &self.shared.conn
    }

    /// Sends `msg`, waiting while the send queue is full, up to the send timeout
    /// ([`ConnOptions::send_timeout`](crate::ConnOptions::send_timeout)). As
    /// [`Connection::send`]; the [`connection`](Self::connection) has the other sends
    /// ([`try_send`](Connection::try_send), [`send_timeout`](Connection::send_timeout)).
    ///
    /// # Errors
    ///
    /// The message is handed back: the queue stayed full, the connection is closed, or the
    /// codec refused it.
    pub fn send(&self, msg: C::Out) -> Result<(), SendError<C::Out>> {
        self.shared.conn.send(msg)
    }

    /// The next message, read and decoded on this thread, waiting for as long as it takes.
    /// [`close`](Self::close) from another thread ends the wait.
    ///
    /// # Errors
    ///
    /// The connection has ended, and every message that arrived before the end has been
    /// received; the error says why it ended. Every later call returns the same.
    pub fn recv(&self) -> Result<C::In, RecvError> {
        match self.shared.next(Wait::Forever) {
            Got::Msg(m) => Ok(m),
            Got::Ended(reason) => Err(RecvError { reason }),
            Got::Timeout => unreachable!("a receive without a deadline never times out"),
        }
    }

    /// The next message, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when no whole message arrived in time: the connection is
    /// still open, and a frame half-received stays buffered, to be returned whole by a later
    /// call. [`RecvTimeoutError::Closed`] as [`recv`](Self::recv) ends.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<C::In, RecvTimeoutError> {
        self.recv_until(deadline_after(timeout))
    }

    fn recv_until(&self, until: Instant) -> Result<C::In, RecvTimeoutError> {
        match self.shared.next(Wait::Until(until)) {
            Got::Msg(m) => Ok(m),
            Got::Timeout => Err(RecvTimeoutError::Timeout),
            Got::Ended(reason) => Err(RecvTimeoutError::Closed(reason)),
        }
    }

    /// The next message if it can be had without waiting: wholly buffered already, or
    /// readable from the socket now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when no whole message is there (a part of one stays buffered),
    /// [`TryRecvError::Closed`] as [`recv`](Self::recv) ends.
    pub fn try_recv(&self) -> Result<C::In, TryRecvError> {
        match self.shared.next(Wait::Now) {
            Got::Msg(m) => Ok(m),
            Got::Timeout => Err(TryRecvError::Empty),
            Got::Ended(reason) => Err(TryRecvError::Closed(reason)),
        }
    }

    /// Every message until the connection ends, waiting for each (`recv` in a loop).
    pub fn iter(&self) -> impl Iterator<Item = C::In> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// The messages there now, without waiting (`try_recv` in a loop).
    pub fn try_iter(&self) -> impl Iterator<Item = C::In> + '_ {
        std::iter::from_fn(move || self.try_recv().ok())
    }

    /// Sends `msg`, then reads the next message on this thread and returns it, all within
    /// `timeout`: a blocking std client's `write_all` then `read_exact`, framed.
    ///
    /// For protocols with exactly one reply per request and no messages the server sends on
    /// its own (Redis, memcached, most RPC): a message that arrived before the request was
    /// sent and not yet received would be taken as its reply. Requests from several threads
    /// at once would take each other's replies: make them from one thread.
    ///
    /// # Errors
    ///
    /// [`RequestError::Send`] with the message when it could not be sent,
    /// [`RequestError::Timeout`] when no whole reply came in time, and
    /// [`RequestError::Closed`] when the connection ended first.
    ///
    /// A timeout closes the connection. Nothing is torn (a part of the reply read so far would
    /// be kept for the next receive), but the reply is still on its way, and it would be taken
    /// as the answer to the next request: every later reply would be off by one. Closing is
    /// the only safe default for a protocol without request ids; one that has them can use
    /// [`send`](Self::send) and [`recv_timeout`](Self::recv_timeout), which keep the
    /// connection open.
    pub fn request(&self, msg: C::Out, timeout: Duration) -> Result<C::In, RequestError<C::Out>> {
        let until = deadline_after(timeout);
        self.shared
            .conn
            .send_timeout(msg, timeout)
            .map_err(RequestError::Send)?;
        match self.recv_until(until) {
            Ok(reply) => Ok(reply),
            Err(RecvTimeoutError::Timeout) => {
                self.close();
                Err(RequestError::Timeout)
            }
            Err(RecvTimeoutError::Closed(reason)) => Err(RequestError::Closed(reason)),
        }
    }

    /// Closes the connection gracefully, on this thread: sends are refused, what is queued is
    /// sent, then the FIN; then this thread reads on until the server closes its side too,
    /// discarding what still arrives (counted in the connection's
    /// [`stats`](Connection::stats)), and closes the socket. If the server has not closed by
    /// `timeout`, the close is forced ([`CloseReason::ShutdownTimeout`]). Returns when the
    /// connection has ended; later receives return the reason.
    ///
    /// A receive in progress on another thread goes on reading meanwhile, and ends with the
    /// connection.
    pub fn shutdown(&self, timeout: Duration) {
        let until = deadline_after(timeout);
        self.shared.conn.shutdown(timeout);
        self.shared.read_to_end(until);
    }

    /// Closes the connection now, as [`Connection::close`]: what is queued is dropped and
    /// counted, and a receive blocked on another thread returns the end. Later receives
    /// return the end too, even if a message was already buffered. Returns at once.
    pub fn close(&self) {
        self.shared.conn.close();
    }

    /// The client underneath: its counters ([`ClientHandle::metrics`]) and its stop (which,
    /// as [`shutdown`](Self::shutdown), finishes the close on the stopping thread). It has no
    /// thread: its [`wait`](ClientHandle::wait) returns at once; receive until the end instead.
    pub fn client(&self) -> &ClientHandle<C> {
        &self.client
    }
}

impl<C: Codec> Drop for BlockingClient<C> {
    fn drop(&mut self) {
        let timeout = self.shared.conn.core.options().shutdown_timeout;
        self.client.stop(timeout);
    }
}
