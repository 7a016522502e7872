//! [`EmbeddedConnection`]: one connection on an in-memory socket (`memory.rs`), driven from
//! the test's thread; examples in the module docs (`testing/mod.rs`).

use std::io;
use std::sync::{Arc, Mutex, TryLockError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::codec::Codec;
use crate::conn::core::Core;
use crate::conn::handler::Handler;
use crate::conn::metrics::Metrics;
use crate::conn::queue::Tx;
use crate::conn::reader::serve;
use crate::conn::{CloseReason, Connection};
use crate::sync::lock;
use crate::sys::transport::Socket;
use crate::timer::{ManualClock, TimingWheel};

use super::memory::{MemorySocket, State};

/// The manual wheel's tick.
const TICK: Duration = Duration::from_millis(1);
/// The longest a call waits for the connection to settle before it gives up (a handler that
/// blocks forever, or one that keeps the connection busy).
const SETTLE_LIMIT: Duration = Duration::from_secs(10);
/// How often a waiting call looks at the writer thread, which does not signal it.
const SETTLE_POLL: Duration = Duration::from_millis(1);

/// One connection run on an in-memory socket, without a server, a client or a network: the
/// test feeds it inbound bytes, reads back what the handler sent, advances its manual clock,
/// and sees its close (Netty's `EmbeddedChannel`).
///
/// The connection is a real one: the reader loop (`codec.read` → [`Handler`] callbacks, on a
/// thread of its own), write-through, the send queue and its writer thread, the close
/// sequence and `on_close` are the code a [`TcpServer`](crate::TcpServer) runs; only the
/// socket is two byte queues. Every method first waits until the connection has *settled*:
/// its reader has consumed all the input and is blocked for more (or has finished, after
/// `on_close`), and nothing accepted by a send is still waiting to be written. So each call
/// sees the whole effect of the previous ones, deterministically, and no test needs to sleep.
///
/// Every timer of the connection (idle limits, heartbeats, the shutdown deadline,
/// [`Connection::run_after`]) runs on a [manual clock](TimingWheel::manual) that only
/// [`advance`](Self::advance) moves; any wheel set in the options is replaced by it.
///
/// Dropping it closes the connection (if it is still open) and joins its threads.
///
/// # Panics
///
/// Every method panics if the connection does not settle within 10 seconds: a handler that
/// blocks (on something other than a send to this connection's full queue) never lets it.
pub struct EmbeddedConnection<C: Codec> {
    conn: Connection<C>,
    socket: Arc<MemorySocket>,
    clock: ManualClock,
    codec: C,
    reason: Arc<Mutex<Option<CloseReason>>>,
    reader: Option<JoinHandle<()>>,
}

impl<C: Codec> EmbeddedConnection<C> {
    /// Opens the connection: `factory` makes its handler and `on_connect` runs, as for an
    /// accepted connection, before this returns. `options` apply as on a server (queue
    /// bounds, idle limits, heartbeats, the maximum frame length), except the timing wheel:
    /// the connection gets a manual one.
    ///
    /// # Errors
    ///
    /// The reader thread could not be started.
    pub fn new<H, F>(
        mut codec: C,
        factory: F,
        options: crate::ConnOptions,
    ) -> io::Result<EmbeddedConnection<C>>
    where
        H: Handler<C>,
        F: FnOnce(&Connection<C>) -> H + Send + 'static,
    {
        let (wheel, clock) = TimingWheel::manual(TICK);
        let options = options.timing_wheel(wheel);
        options.prepare_start(&mut codec)?;
        let socket = Arc::new(MemorySocket::default());
        let stream: Arc<dyn Socket> = Arc::clone(&socket) as Arc<dyn Socket>;
        let addr = stream.peer_addr()?;
        let core = Core::new(
            1,
            stream,
            addr.clone(),
            addr,
            Arc::new(options),
            Arc::new(Metrics::default()),
        );
        let conn = Connection::new(core, Arc::new(codec.clone()));
        let reason = Arc::new(Mutex::new(None));
        let reader = {
            let (conn, codec, reason) = (conn.clone(), codec.clone(), Arc::clone(&reason));
            let done = Done(Arc::clone(&socket));
            thread::Builder::new()
                .name("threadnet-embedded".into())
                .spawn(move || {
                    let _done = done;
                    let r = serve(&conn, codec, factory);
                    *lock(&reason) = Some(r);
                })?
        };
        let embedded = EmbeddedConnection {
            conn,
            socket,
            clock,
            codec,
            reason,
            reader: Some(reader),
        };
        embedded.settle();
        Ok(embedded)
    }

    /// The connection's handle, as its handler sees it: send from the test, `shutdown`,
    /// `close`, read its stats. Call any method of this type afterwards to wait for the
    /// effect.
    pub fn connection(&self) -> &Connection<C> {
        &self.conn
    }

    /// The peer sends `bytes`; returns once the handler has seen every message they complete
    /// (a partial frame waits in the reader for the rest). Ignored once the connection is
    /// closed.
    ///
    /// # Panics
    ///
    /// See [the type](Self#panics).
    pub fn write_inbound(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.socket.update(|s| {
            if !s.done {
                s.inbound.extend(bytes);
                s.reader_waiting = false;
            }
        });
        self.settle();
    }

    /// The peer sends its FIN (half-closes); returns once the connection has reacted: between
    /// frames, it flushes what is queued and closes with [`CloseReason::PeerClosed`].
    ///
    /// # Panics
    ///
    /// See [the type](Self#panics).
    pub fn close_inbound(&self) {
        self.socket.update(|s| {
            s.peer_eof = true;
            s.reader_waiting = false;
        });
        self.settle();
    }

    /// Takes every byte the connection has written so far.
    ///
    /// # Panics
    ///
    /// See [the type](Self#panics).
    pub fn read_outbound(&self) -> Vec<u8> {
        self.settle();
        std::mem::take(&mut self.socket.lock().outbound)
    }

    /// Takes the messages the connection has written so far, decoded with a clone of its own
    /// codec (for a codec whose two directions are the same format, such as
    /// [`LengthDelimited`](crate::LengthDelimited) or [`Lines`](crate::Lines)). The bytes of a
    /// frame not yet written whole stay for the next call.
    ///
    /// # Errors
    ///
    /// The codec failed on the bytes (other than for an incomplete frame); what it had not
    /// consumed stays.
    ///
    /// # Panics
    ///
    /// See [the type](Self#panics).
    pub fn read_outbound_messages(&self) -> io::Result<Vec<C::In>> {
        self.decode_outbound(&mut self.codec.clone())
    }

    /// As [`read_outbound_messages`](Self::read_outbound_messages), with another codec: the
    /// peer's side of an asymmetric protocol (a client codec for a server's replies).
    ///
    /// # Errors
    ///
    /// As [`read_outbound_messages`](Self::read_outbound_messages).
    ///
    /// # Panics
    ///
    /// See [the type](Self#panics).
    pub fn decode_outbound<D: Codec>(&self, codec: &mut D) -> io::Result<Vec<D::In>> {
        let bytes = self.read_outbound();
        let mut rest: &[u8] = &bytes;
        let mut out = Vec::new();
        let mut result = Ok(());
        while !rest.is_empty() {
            let mut r = rest;
            match codec.read(&mut r) {
                Ok(Some(m)) => {
                    out.push(m);
                    rest = r;
                }
                Ok(None) => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if !rest.is_empty() {
            // Put back what was not decoded, before anything written meanwhile.
            let mut s = self.socket.lock();
            s.outbound.splice(0..0, rest.iter().copied());
        }
        result.map(|()| out)
    }

    /// True once the connection has sent its FIN (`shutdown(Write)`): after a
    /// [`shutdown`](Connection::shutdown) drained the queue, or the peer's EOF was answered.
    ///
    /// # Panics
    ///
    /// See [the type](Self#panics).
    pub fn is_outbound_closed(&self) -> bool {
        self.settle();
        self.socket.lock().write_shut
    }

    /// Moves the connection's clock forward by `by`, running every timer that comes due on
    /// the way (on this thread, in deadline order), then waits for the connection to settle.
    ///
    /// # Panics
    ///
    /// See [the type](Self#panics).
    pub fn advance(&self, by: Duration) {
        self.settle();
        self.clock.advance(by);
        self.settle();
    }

    /// Why the connection closed, once `on_close` has run; `None` while it is open (a copy:
    /// an I/O error keeps its kind and message).
    ///
    /// # Panics
    ///
    /// See [the type](Self#panics).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.settle();
        lock(&self.reason).clone()
    }

    /// True once the connection has closed and `on_close` has run.
    ///
    /// # Panics
    ///
    /// See [the type](Self#panics).
    pub fn is_closed(&self) -> bool {
        self.settle();
        lock(&self.reason).is_some()
    }

    /// Waits until the reader is blocked on empty input or has finished, and nothing waits
    /// to be written.
    fn settle(&self) {
        let core = &*self.conn.core;
        let settled = self
            .socket
            .wait_until(SETTLE_LIMIT, SETTLE_POLL, |s: &State| {
                (s.done || (s.reader_waiting && s.inbound.is_empty())) && writer_idle(core)
            });
        assert!(
            settled.is_some(),
            "the embedded connection did not settle within {SETTLE_LIMIT:?}: a handler blocked?"
        );
    }
}

impl<C: Codec> Drop for EmbeddedConnection<C> {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            self.conn.close();
            let _ = reader.join();
        }
    }
}

/// Marks the reader as finished when its thread returns, or unwinds.
struct Done(Arc<MemorySocket>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.update(|s| s.done = true);
    }
}

/// Nothing accepted waits to be written, and a closing connection's writer (or FIN thread)
/// has finished. Only `try_lock`s: the caller holds the socket's lock, which a writer takes
/// while holding these.
fn writer_idle(core: &Core) -> bool {
    fn try_lock<T>(m: &Mutex<T>) -> Option<std::sync::MutexGuard<'_, T>> {
        match m.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
    let closing = match try_lock(&core.q) {
        Some(q) if q.pending == 0 => matches!(q.tx, Tx::Done),
        _ => return false,
    };
    if !try_lock(&core.out).is_some_and(|g| g.is_empty()) {
        return false;
    }
    !closing || try_lock(&core.writer).is_some_and(|w| w.as_ref().map_or(true, |h| h.is_finished()))
}
