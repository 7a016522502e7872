//! `BlockingClient`: a connection the calling thread sends on and receives from.

use std::io;
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::client::{ClientBuilder, ClientHandle, TcpClient};
use crate::codec::Codec;
use crate::conn::handler::Handler;
use crate::conn::{CloseReason, Connection};
use crate::error::{SendError, TrySendError};
use crate::pull::error::{RecvError, RecvTimeoutError, RequestError, TryRecvError};
use crate::pull::inbox::{Inbox, Pulled};
use crate::sync::deadline_after;

/// How long [`BlockingClient::request`] waits for the reply without sleeping, yielding the
/// CPU each turn, before it sleeps on the inbox. A loopback round trip takes 5–10 µs; a
/// thread woken from sleep on an idle CPU of a VM can take tens of µs more.
const REPLY_SPIN: Duration = Duration::from_micros(20);

/// A client for synchronous code: [`send`](Self::send) and [`recv`](Self::recv) on the
/// calling thread, like a socket, but framed by a [`Codec`] and with every guarantee of a
/// [`Connection`] (bounded send queue, graceful shutdown, timers, idle limits, metrics).
///
/// Underneath, the connection's reader thread decodes each message and puts it in a bounded
/// inbox that `recv` takes from. The reader owns the framing, so a `recv_timeout` that expires
/// while half a frame has arrived tears nothing: the next `recv` gets the whole frame. When
/// the inbox is full the reader stops reading, and TCP flow control slows the server down:
/// nothing is dropped.
///
/// ```
/// use std::time::Duration;
/// use threadnet::{BlockingClient, Connection, Lines, TcpServer};
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
/// Dropping the client shuts its connection down gracefully, as
/// [`ClientHandle::stop`](crate::ClientHandle::stop) does.
pub struct BlockingClient<C: Codec> {
    conn: Connection<C>,
    inbox: Arc<Inbox<C::In>>,
    client: ClientHandle<C>,
}

/// The handler behind a blocking client: every message into the inbox, and the end.
pub(crate) struct Feed<T> {
    inbox: Arc<Inbox<T>>,
}

impl<C: Codec> Handler<C> for Feed<C::In> {
    fn on_message(&mut self, conn: &Connection<C>, msg: C::In) {
        // Wait for room; give up only if the connection was closed by force (its queue is
        // dropped too) or the caller went away.
        let _ = self
            .inbox
            .push(msg, || conn.core.closed.load(Ordering::SeqCst));
    }

    fn on_close(&mut self, _: &Connection<C>, reason: &CloseReason) {
        self.inbox.end(reason.clone());
    }
}

impl<C: Codec> BlockingClient<C> {
    /// Dials `addr` with every option at its default (a 5 s connect timeout, no retry) and
    /// returns once connected.
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::connect`]: the address does not resolve, the connect failed or
    /// timed out, or a thread cannot be spawned.
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
    /// [`ConnOptions`](crate::ConnOptions), [`inbox_capacity`](ClientBuilder::inbox_capacity))
    /// and returns once connected.
    ///
    /// ```
    /// use std::time::Duration;
    /// use threadnet::{Backoff, BlockingClient, Lines, TcpClient};
    ///
    /// # let server = threadnet::TcpServer::builder().start(Lines::new(), |_: &_| |_: &_, _: String| {})?;
    /// # let addr = server.local_addr();
    /// let builder = TcpClient::builder()
    ///     .connect_timeout(Duration::from_secs(1))
    ///     .retry(Backoff::new().initial(Duration::from_millis(10)).max_attempts(5))
    ///     .inbox_capacity(16);
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
        let capacity = builder.blocking_inbox()?;
        Self::start(capacity, |factory| builder.connect(addr, codec, factory))
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
        let capacity = builder.blocking_inbox()?;
        Self::start(capacity, |factory| {
            builder.connect_unix(path, codec, factory)
        })
    }

    /// Starts a client with `connect`, which is given the handler factory (the WebSocket
    /// client wraps its handlers).
    pub(crate) fn start(
        capacity: usize,
        connect: impl FnOnce(
            Box<dyn Fn(&Connection<C>) -> Feed<C::In> + Send + Sync>,
        ) -> io::Result<ClientHandle<C>>,
    ) -> io::Result<Self> {
        let inbox = Arc::new(Inbox::new(capacity));
        let (tx, rx) = mpsc::sync_channel(1);
        let feed_inbox = Arc::clone(&inbox);
        let client = connect(Box::new(move |conn: &Connection<C>| {
            let _ = tx.try_send(conn.clone());
            Feed {
                inbox: Arc::clone(&feed_inbox),
            }
        }))?;
        // The factory runs on the reader thread as it starts; it always runs for a connection
        // that was made, so this wait is short.
        let conn = rx.recv().map_err(|_| {
            io::Error::other("the connection's reader thread ended before it started")
        })?;
        Ok(BlockingClient {
            conn,
            inbox,
            client,
        })
    }

    /// The connection: its addresses, stats, timers, and every send and close it offers.
    pub fn connection(&self) -> &Connection<C> {
        &self.conn
    }

    /// Sends `msg`, waiting while the send queue is full, up to the send timeout
    /// ([`ConnOptions::send_timeout`](crate::ConnOptions::send_timeout)). As
    /// [`Connection::send`].
    ///
    /// # Errors
    ///
    /// The message is handed back: the queue stayed full, the connection is closed, or the
    /// codec refused it.
    pub fn send(&self, msg: C::Out) -> Result<(), SendError<C::Out>> {
        self.conn.send(msg)
    }

    /// Sends `msg`, waiting up to `timeout` while the queue is full. As
    /// [`Connection::send_timeout`].
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_timeout(&self, msg: C::Out, timeout: Duration) -> Result<(), SendError<C::Out>> {
        self.conn.send_timeout(msg, timeout)
    }

    /// Sends `msg` if the queue has room now. As [`Connection::try_send`].
    ///
    /// # Errors
    ///
    /// The message is handed back in [`TrySendError::Full`] when the queue is full, and as in
    /// [`send`](Self::send) otherwise.
    pub fn try_send(&self, msg: C::Out) -> Result<(), TrySendError<C::Out>> {
        self.conn.try_send(msg)
    }

    /// The next message, waiting for as long as it takes.
    ///
    /// # Errors
    ///
    /// The connection has ended and every message that arrived before the end has been
    /// received; the error says why it ended. Every later call returns the same.
    pub fn recv(&self) -> Result<C::In, RecvError> {
        match self.inbox.pull(None, || None) {
            Pulled::Item(m) => Ok(m),
            Pulled::Ended(reason) => Err(RecvError { reason }),
            Pulled::Empty => unreachable!("a pull without a deadline never comes back empty"),
        }
    }

    /// The next message, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when nothing arrived in time (the connection is still
    /// open; a frame half-received stays in the reader), [`RecvTimeoutError::Closed`] as
    /// [`recv`](Self::recv) ends.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<C::In, RecvTimeoutError> {
        self.recv_until(deadline_after(timeout))
    }

    fn recv_until(&self, until: Instant) -> Result<C::In, RecvTimeoutError> {
        match self.inbox.pull(Some(until), || None) {
            Pulled::Item(m) => Ok(m),
            Pulled::Empty => Err(RecvTimeoutError::Timeout),
            Pulled::Ended(reason) => Err(RecvTimeoutError::Closed(reason)),
        }
    }

    /// The next message if one is waiting, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when none is waiting, [`TryRecvError::Closed`] as
    /// [`recv`](Self::recv) ends.
    pub fn try_recv(&self) -> Result<C::In, TryRecvError> {
        match self.inbox.pull(Some(Instant::now()), || None) {
            Pulled::Item(m) => Ok(m),
            Pulled::Empty => Err(TryRecvError::Empty),
            Pulled::Ended(reason) => Err(TryRecvError::Closed(reason)),
        }
    }

    /// Every message until the connection ends, waiting for each (`recv` in a loop).
    pub fn iter(&self) -> impl Iterator<Item = C::In> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// The messages waiting now, without waiting (`try_recv` in a loop).
    pub fn try_iter(&self) -> impl Iterator<Item = C::In> + '_ {
        std::iter::from_fn(move || self.try_recv().ok())
    }

    /// Sends `msg`, then waits for the next message and returns it, all within `timeout`.
    ///
    /// For protocols with exactly one reply per request and no messages the server sends on
    /// its own (Redis, memcached, most RPC): a message that arrived before the request was
    /// sent and not yet received would be taken as its reply. Requests from several threads
    /// at once would take each other's replies: make them from one thread.
    ///
    /// After the send it waits for the reply awake for up to 20 µs, yielding the CPU each
    /// turn, and only then sleeps: a reply that comes that fast is taken without waking a
    /// sleeping thread.
    ///
    /// # Errors
    ///
    /// [`RequestError::Send`] with the message when it could not be sent,
    /// [`RequestError::Timeout`] when no reply came in time — the connection is then closed,
    /// since a late reply would be taken as the next request's — and
    /// [`RequestError::Closed`] when the connection ended first.
    pub fn request(&self, msg: C::Out, timeout: Duration) -> Result<C::In, RequestError<C::Out>> {
        let until = deadline_after(timeout);
        self.conn
            .send_timeout(msg, timeout)
            .map_err(RequestError::Send)?;
        // The reply is expected within µs: wait for it awake, briefly, then asleep.
        let left = until.saturating_duration_since(Instant::now());
        self.inbox.wait_briefly(REPLY_SPIN.min(left));
        match self.recv_until(until) {
            Ok(reply) => Ok(reply),
            Err(RecvTimeoutError::Timeout) => {
                self.conn.close();
                Err(RequestError::Timeout)
            }
            Err(RecvTimeoutError::Closed(reason)) => Err(RequestError::Closed(reason)),
        }
    }

    /// Closes the connection gracefully, as [`Connection::shutdown`]: what is queued is sent,
    /// then the FIN; messages keep arriving for [`recv`](Self::recv) until the server closes
    /// its side, or until `timeout`. Returns at once.
    pub fn shutdown(&self, timeout: Duration) {
        self.conn.shutdown(timeout);
    }

    /// Closes the connection now, as [`Connection::close`]: what is queued is dropped and
    /// counted; `recv` returns what had already arrived, then the end.
    pub fn close(&self) {
        self.conn.close();
    }

    /// Messages received and waiting for [`recv`](Self::recv).
    pub fn pending(&self) -> usize {
        self.inbox.len()
    }

    /// The client underneath: its counters ([`ClientHandle::metrics`]) and its stop.
    pub fn client(&self) -> &ClientHandle<C> {
        &self.client
    }
}

impl<C: Codec> Drop for BlockingClient<C> {
    fn drop(&mut self) {
        // Nobody will take what arrives: a reader waiting for room must not wait any more.
        self.inbox.leave();
    }
}
