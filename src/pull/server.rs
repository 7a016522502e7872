//! `PullServer`: a server whose events the caller takes from one queue.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::conn::handler::Handler;
use crate::conn::{CloseReason, Connection};
use crate::pull::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::pull::inbox::{Inbox, Pulled};
use crate::server::{ServerBuilder, ServerHandle};
use crate::sync::deadline_after;

/// One thing that happened on a [`PullServer`]'s connections. The events of one connection
/// come in the order they happened: `Connected`, its `Message`s, then `Closed`.
pub enum Event<C: Codec> {
    /// A connection opened; nothing has been read from it yet.
    Connected(Connection<C>),
    /// A decoded message from the connection's peer. Reply through the connection.
    Message(Connection<C>, C::In),
    /// The connection ended, for this reason. Nothing more comes from it.
    Closed(Connection<C>, CloseReason),
}

impl<C: Codec> Event<C> {
    /// The connection the event is about.
    pub fn connection(&self) -> &Connection<C> {
        match self {
            Event::Connected(c) | Event::Message(c, _) | Event::Closed(c, _) => c,
        }
    }
}

impl<C: Codec> std::fmt::Debug for Event<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Connected(c) => write!(f, "Connected({})", c.id()),
            Event::Message(c, _) => write!(f, "Message({}, ..)", c.id()),
            Event::Closed(c, r) => write!(f, "Closed({}, {r:?})", c.id()),
        }
    }
}

/// A server for programs with one loop (a game tick, an actor, a test): every connection's
/// events arrive through one bounded queue that the caller pulls from with
/// [`recv`](Self::recv), [`recv_timeout`](Self::recv_timeout), [`try_recv`](Self::try_recv) or
/// [`iter`](Self::iter), and replies go out through the event's [`Connection`].
///
/// Each connection still has its own reader thread, which decodes messages and puts them in
/// the queue. When the queue is full, readers wait, stop reading their sockets, and TCP flow
/// control slows the peers down: nothing is dropped. `Connected` and `Closed` events are never
/// held back (there is at most one of each per connection), so the queue can pass its capacity
/// by the number of connections.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::net::TcpStream;
/// use threadnet::{codec::Lines, pull::Event, PullServer, TcpServer};
///
/// let server = PullServer::start(TcpServer::builder(), Lines::new())?;
/// let mut peer = TcpStream::connect(server.local_addr())?;
/// peer.write_all(b"ping\n")?;
///
/// for event in server.iter() {
///     match event {
///         Event::Connected(_) => {}
///         Event::Message(conn, line) => {
///             let _ = conn.send(format!("{line}: pong"));
///             break;
///         }
///         Event::Closed(_, _) => {}
///     }
/// }
/// let mut reply = String::new();
/// BufReader::new(&peer).read_line(&mut reply)?;
/// assert_eq!(reply, "ping: pong\n");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Dropping it stops the server as [`ServerHandle::stop`] does.
pub struct PullServer<C: Codec> {
    inbox: Arc<Inbox<Event<C>>>,
    handle: ServerHandle<C>,
}

/// The handler behind a pull server: every callback becomes an event.
struct Feed<C: Codec> {
    inbox: Arc<Inbox<Event<C>>>,
}

impl<C: Codec> Handler<C> for Feed<C> {
    fn on_connect(&mut self, conn: &Connection<C>) {
        self.inbox.push_always(Event::Connected(conn.clone()));
    }

    fn on_message(&mut self, conn: &Connection<C>, msg: C::In) {
        let event = Event::Message(conn.clone(), msg);
        // Wait for room; give up only if the connection was closed by force or the caller
        // went away.
        let _ = self.inbox.push(event, || conn.core.is_aborted());
    }

    fn on_close(&mut self, conn: &Connection<C>, reason: &CloseReason) {
        self.inbox
            .push_always(Event::Closed(conn.clone(), reason.clone()));
    }
}

impl<C: Codec> PullServer<C> {
    /// Starts the server `builder` describes (address or listener, connection limit,
    /// [`ConnOptions`](crate::ConnOptions), [`inbox_capacity`](ServerBuilder::inbox_capacity))
    /// with `codec`, delivering its events to this handle.
    ///
    /// # Errors
    ///
    /// As [`ServerBuilder::start`].
    pub fn start(builder: ServerBuilder, codec: C) -> io::Result<Self> {
        let inbox = Arc::new(Inbox::new(builder.inbox()));
        let feed = Arc::clone(&inbox);
        let handle = builder.start(codec, move |_: &Connection<C>| Feed {
            inbox: Arc::clone(&feed),
        })?;
        Ok(PullServer { inbox, handle })
    }

    /// The server: its address, connections, metrics and stop.
    pub fn handle(&self) -> &ServerHandle<C> {
        &self.handle
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> crate::Addr {
        self.handle.local_addr()
    }

    fn pull(&self, until: Option<Instant>) -> Pulled<Event<C>> {
        self.inbox.pull(until, || {
            self.handle
                .is_stopped()
                .then_some(CloseReason::ServerStopped { dropped: 0 })
        })
    }

    /// The next event, waiting for as long as it takes.
    ///
    /// # Errors
    ///
    /// The server has stopped and every event before the stop has been taken (the reason is
    /// [`CloseReason::ServerStopped`]).
    pub fn recv(&self) -> Result<Event<C>, RecvError> {
        match self.pull(None) {
            Pulled::Item(e) => Ok(e),
            Pulled::Ended(reason) => Err(RecvError { reason }),
            Pulled::Empty => unreachable!("a pull without a deadline never comes back empty"),
        }
    }

    /// The next event, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] when nothing happened in time,
    /// [`RecvTimeoutError::Closed`] as [`recv`](Self::recv) ends.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event<C>, RecvTimeoutError> {
        match self.pull(Some(deadline_after(timeout))) {
            Pulled::Item(e) => Ok(e),
            Pulled::Empty => Err(RecvTimeoutError::Timeout),
            Pulled::Ended(reason) => Err(RecvTimeoutError::Closed(reason)),
        }
    }

    /// The next event if one is waiting, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when none is waiting, [`TryRecvError::Closed`] as
    /// [`recv`](Self::recv) ends.
    pub fn try_recv(&self) -> Result<Event<C>, TryRecvError> {
        match self.pull(Some(Instant::now())) {
            Pulled::Item(e) => Ok(e),
            Pulled::Empty => Err(TryRecvError::Empty),
            Pulled::Ended(reason) => Err(TryRecvError::Closed(reason)),
        }
    }

    /// Every event until the server stops, waiting for each.
    pub fn iter(&self) -> impl Iterator<Item = Event<C>> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// The events waiting now, without waiting.
    pub fn try_iter(&self) -> impl Iterator<Item = Event<C>> + '_ {
        std::iter::from_fn(move || self.try_recv().ok())
    }

    /// Events waiting to be taken.
    pub fn pending(&self) -> usize {
        self.inbox.len()
    }

    /// Stops the server as [`ServerHandle::stop`] does; the events up to the stop (a
    /// `Closed` for every connection among them) can still be taken afterwards.
    ///
    /// Readers waiting for room in a full queue keep their connections open until `deadline`
    /// forces them closed, so a stop called from the pulling thread with a full queue takes
    /// the whole deadline: take the events first, or stop from another thread.
    pub fn stop(&self, deadline: Duration) {
        self.handle.stop(deadline);
    }
}

impl<C: Codec> Drop for PullServer<C> {
    fn drop(&mut self) {
        // Nobody will take the events any more: readers waiting for room give up.
        self.inbox.leave();
    }
}
