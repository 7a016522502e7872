//! The connection handle. The state behind it, and what `close` and `shutdown` do to it, are
//! in `core.rs`; why a connection closed is in `reason.rs`.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::conn::core::Core;
use crate::conn::metrics::ConnStats;
use crate::conn::queue::{Mode, Payload};
use crate::conn::send;
use crate::conn::threads::is_reader_thread;
use crate::conn::through::Through;
use crate::conn::CloseReason;
use crate::error::{Refused, SendError, TrySendError};
use crate::sys::transport::Addr;
use crate::timer::TimerId;

/// A cloneable handle to one connection: its identity, its send queue, and the ways to end it.
///
/// `Connection` is `Clone + Send + Sync`: keep a clone in another thread, in a registry or in a
/// timer, and send from there. Every send encodes the message on the calling thread with the
/// connection's codec and queues the bytes; the connection's writer thread writes them in
/// order, batching whatever is queued into one vectored write.
///
/// Sends from one thread arrive in the order they were made; sends from different threads
/// interleave whole messages, never bytes.
pub struct Connection<C: Codec> {
    pub(crate) core: Arc<Core>,
    pub(crate) codec: Arc<C>,
}

impl<C: Codec> Clone for Connection<C> {
    fn clone(&self) -> Self {
        Connection {
            core: Arc::clone(&self.core),
            codec: Arc::clone(&self.codec),
        }
    }
}

impl<C: Codec> fmt::Debug for Connection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.core.id)
            .field("peer_addr", self.core.peer())
            .field("local_addr", &self.core.local)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<C: Codec> Connection<C> {
    pub(crate) fn new(core: Core, codec: Arc<C>) -> Self {
        Connection {
            core: Arc::new(core),
            codec,
        }
    }

    /// The connection's id: unique among the connections of one server (or one client), in
    /// accept order, starting at 1.
    pub fn id(&self) -> u64 {
        self.core.id
    }

    /// The peer's address. Behind a load balancer that speaks the PROXY protocol (see
    /// [`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol)), the client's
    /// address that its header named; the balancer's is [`proxied_by`](Self::proxied_by).
    pub fn peer_addr(&self) -> Addr {
        self.core.peer().clone()
    }

    /// The load balancer that relayed this connection: the socket's peer, when a PROXY
    /// protocol header named another client; `None` without the PROXY protocol, and for its
    /// headers that name no client (v1 `UNKNOWN`, v2 `LOCAL` health checks), where
    /// [`peer_addr`](Self::peer_addr) is the socket's peer.
    pub fn proxied_by(&self) -> Option<Addr> {
        self.core
            .proxied
            .get()
            .map(|_| self.core.socket_peer.clone())
    }

    /// Our end's address.
    pub fn local_addr(&self) -> Addr {
        self.core.local.clone()
    }

    fn encode(&self, msg: &C::Out) -> io::Result<Payload> {
        let mut buf = Vec::new();
        if let Err(e) = self.codec.write(msg, &mut buf) {
            self.core.metrics.codec_error();
            return Err(e);
        }
        Ok(Payload::Owned(buf))
    }

    /// Queues a message, waiting up to the send timeout
    /// ([`ConnOptions::send_timeout`](crate::ConnOptions::send_timeout), 5 s by default) while the queue is full.
    ///
    /// `Ok` means the message was accepted: it will be written before the connection's FIN, or
    /// counted in the `dropped` of its [`CloseReason`].
    ///
    /// # Errors
    ///
    /// Hands the message back: [`SendError::Timeout`] if the queue stayed full,
    /// [`SendError::Closed`] if the connection is closed or shutting down,
    /// [`SendError::Encode`] if the codec refused it.
    pub fn send(&self, msg: C::Out) -> Result<(), SendError<C::Out>> {
        self.send_timeout(msg, self.core.cfg.send_timeout)
    }

    /// Queues a message, waiting up to `timeout` while the queue is full.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_timeout(&self, msg: C::Out, timeout: Duration) -> Result<(), SendError<C::Out>> {
        let mode = Mode::Wait(timeout);
        match send::write_through(&self.core, mode, |w| self.codec.write(&msg, w)) {
            Through::Written => return Ok(()),
            Through::Closed => return Err(SendError::Closed(msg)),
            Through::Encode(e) => return Err(SendError::Encode(msg, e)),
            Through::Queue => {}
        }
        let bytes = match self.encode(&msg) {
            Ok(b) => b,
            Err(e) => return Err(SendError::Encode(msg, e)),
        };
        match send::push(&self.core, bytes, mode) {
            Ok(()) => Ok(()),
            Err((_, Refused::Closed)) => Err(SendError::Closed(msg)),
            Err((_, _)) => Err(SendError::Timeout(msg)),
        }
    }

    /// Queues a message if there is room now; never blocks.
    ///
    /// # Errors
    ///
    /// Hands the message back: [`TrySendError::Full`] if the queue is full in messages or in
    /// bytes, [`TrySendError::Closed`] if the connection is closed or shutting down,
    /// [`TrySendError::Encode`] if the codec refused it.
    pub fn try_send(&self, msg: C::Out) -> Result<(), TrySendError<C::Out>> {
        let bytes = match self.encode(&msg) {
            Ok(b) => b,
            Err(e) => return Err(TrySendError::Encode(msg, e)),
        };
        as_try(send::push(&self.core, bytes, Mode::Try)).map_err(|e| map_try(e, |_| msg))
    }

    /// Queues bytes that are already encoded, bypassing the codec (goes' `Send(data, true)`):
    /// they are written to the socket exactly as given. Waits up to the send timeout.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send) (never `Encode`); the bytes come back in the error.
    pub fn send_bytes(&self, bytes: Vec<u8>) -> Result<(), SendError<Vec<u8>>> {
        let mode = Mode::Wait(self.core.cfg.send_timeout);
        match send::write_through(&self.core, mode, |w| w.write_all(&bytes)) {
            Through::Written => return Ok(()),
            Through::Closed | Through::Encode(_) => return Err(SendError::Closed(bytes)),
            Through::Queue => {}
        }
        match send::push(&self.core, Payload::Owned(bytes), mode) {
            Ok(()) => Ok(()),
            Err((p, Refused::Closed)) => Err(SendError::Closed(p.into_vec())),
            Err((p, _)) => Err(SendError::Timeout(p.into_vec())),
        }
    }

    /// Queues pre-encoded bytes if there is room now; never blocks.
    ///
    /// # Errors
    ///
    /// As [`try_send`](Self::try_send) (never `Encode`); the bytes come back in the error.
    pub fn try_send_bytes(&self, bytes: Vec<u8>) -> Result<(), TrySendError<Vec<u8>>> {
        self.try_send_payload(Payload::Owned(bytes))
            .map_err(|e| map_try(e, Payload::into_vec))
    }

    /// A broadcast's share: written through if the socket takes it at once, else queued if
    /// there is room (`send::offer`); never blocks.
    pub(crate) fn offer_payload(&self, p: Payload) -> Result<(), TrySendError<Payload>> {
        as_try(send::offer(&self.core, p))
    }

    pub(crate) fn try_send_payload(&self, p: Payload) -> Result<(), TrySendError<Payload>> {
        as_try(send::push(&self.core, p, Mode::Try))
    }

    /// Closes the connection now: the socket is shut down in both directions, the reader thread
    /// wakes, and whatever is still queued is dropped and counted in
    /// [`CloseReason::Closed`]. Returns at once; `on_close` follows on the reader thread.
    ///
    /// Called from a handler, it first writes the replies that handler's connection gathered
    /// (see [`ConnOptions::write_through`](crate::ConnOptions::write_through)), if the socket
    /// takes them within one 50 ms write slice: those replies count as written, as they would
    /// without gathering.
    pub fn close(&self) {
        if is_reader_thread(&self.core) {
            // Replies this thread gathered would have been written without gathering.
            send::flush_before_close(&self.core);
        }
        self.core.close_now(CloseReason::Closed { dropped: 0 });
    }

    /// Closes the connection now, like [`close`](Self::close), but ends it with
    /// [`CloseReason::Error`] carrying `error`: for a handler that finds the peer's input
    /// unacceptable (an unknown message type, a protocol violation) and wants `on_close` and
    /// the logs to say why. Does nothing to the reason if the connection is already closing.
    pub fn close_with_error(&self, error: io::Error) {
        if is_reader_thread(&self.core) {
            send::flush_before_close(&self.core);
        }
        self.core.io_failed(error);
    }

    /// Closes the connection gracefully (invariant 3, DESIGN.md): sends are refused from now on,
    /// the writer drains the queue, then `shutdown(Write)` sends our FIN, and the reader reads
    /// on (still calling `on_message`) until the peer's EOF. If that has not happened within
    /// `timeout`, the connection is closed by force ([`CloseReason::ShutdownTimeout`]).
    ///
    /// Returns at once; the deadline is kept by the timing wheel. Does nothing if a close or
    /// shutdown is already under way.
    pub fn shutdown(&self, timeout: Duration) {
        send::begin_shutdown(&self.core, CloseReason::Shutdown, timeout);
    }

    /// Asks the connection to end at its protocol's next natural boundary, so that nothing
    /// is cut short: a handler that can tell its peer the connection is ending does so with
    /// its next reply, then shuts down. [`http::serve`](crate::http::serve) answers the next
    /// request with `Connection: close` and closes gracefully after it, so a keep-alive
    /// client gets its response and then EOF, not a reset.
    ///
    /// Nothing else changes: sends are accepted as before, and the connection stays open until
    /// its handler or its peer ends it, or it is shut down or stopped.
    /// [`ServerHandle::drain`](crate::ServerHandle::drain) calls it on every connection, so
    /// that keep-alive connections end on their own within the drain rather than at its
    /// deadline.
    pub fn wind_down(&self) {
        self.core.wind_down();
    }

    /// True once [`wind_down`](Self::wind_down) was called, or a close has begun: the handler
    /// should end the connection at its next boundary.
    pub fn is_winding_down(&self) -> bool {
        self.core.is_winding_down()
    }

    pub(crate) fn stop(&self, timeout: Duration) {
        send::begin_shutdown(
            &self.core,
            CloseReason::ServerStopped { dropped: 0 },
            timeout,
        );
    }

    /// True once the connection takes no more messages: after [`close`](Self::close),
    /// [`shutdown`](Self::shutdown), the peer's EOF or an error.
    pub fn is_closed(&self) -> bool {
        self.core.is_closing()
    }

    /// Bytes accepted by sends and not yet written to the socket.
    pub fn queued_bytes(&self) -> usize {
        self.core.queue.queued().1
    }

    /// Messages accepted by sends and not yet written to the socket.
    pub fn queued_messages(&self) -> usize {
        self.core.queue.queued().0
    }

    /// What this connection has moved so far (messages and bytes, each way) and what waits in
    /// its send queue.
    pub fn stats(&self) -> ConnStats {
        let [messages_received, messages_sent, bytes_received, bytes_sent] =
            self.core.traffic.get();
        let (queued_messages, queued_bytes) = self.core.queue.queued();
        ConnStats {
            messages_received,
            messages_sent,
            bytes_received,
            bytes_sent,
            queued_messages,
            queued_bytes,
        }
    }

    /// Netty's `isWritable`: false from the moment the queue rises above the high watermark
    /// until it falls back to the low one.
    pub fn is_writable(&self) -> bool {
        self.core.queue.is_writable()
    }
}

/// A connection's timers (Tao's `RunAt` / `RunAfter` / `RunEvery`, on the connection).
impl<C: Codec> Connection<C> {
    /// Runs `f` once, `after` from now (never earlier), on the connection's timing wheel
    /// ([`ConnOptions::timing_wheel`](crate::ConnOptions::timing_wheel), the global one by
    /// default). `f` receives this connection.
    ///
    /// Every timer of a connection is cancelled when it ends: none runs after (or during)
    /// [`Handler::on_close`](crate::Handler::on_close). On a connection that has already ended,
    /// nothing is scheduled and the returned id names no timer.
    ///
    /// `f` runs on the wheel's thread, shared by every timer of the process: keep it short
    /// (send, close, set a flag). See [`TimingWheel`](crate::TimingWheel) for accuracy. If `f` panics, the panic
    /// closes this connection with [`CloseReason::Panic`](crate::CloseReason::Panic), as a
    /// panic in its handler would.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use threadnet::{codec::Lines, Connection};
    ///
    /// // A handler that closes the connection if no `AUTH` line arrives within 5 s.
    /// let handler = |conn: &Connection<Lines>, line: String| {
    ///     if line == "HELLO" {
    ///         let _ = conn.run_after(Duration::from_secs(5), |conn| conn.close());
    ///     }
    /// };
    /// # let _ = handler;
    /// ```
    pub fn run_after<F>(&self, after: Duration, f: F) -> TimerId
    where
        F: FnOnce(&Connection<C>) + Send + 'static,
    {
        let conn = self.clone();
        self.core.timers.add(|| {
            self.core.wheel.after_id(after, move |id| {
                let core = Arc::clone(&conn.core);
                core.run_timer(id, true, || f(&conn));
            })
        })
    }

    /// Runs `f` once at `at` (never earlier; an instant in the past means at once). As
    /// [`run_after`](Self::run_after) otherwise.
    pub fn run_at<F>(&self, at: Instant, f: F) -> TimerId
    where
        F: FnOnce(&Connection<C>) + Send + 'static,
    {
        let conn = self.clone();
        let nanos = self.core.wheel.nanos_of(at);
        self.core.timers.add(|| {
            self.core.wheel.at_nanos_id(nanos, move |id| {
                let core = Arc::clone(&conn.core);
                core.run_timer(id, true, || f(&conn));
            })
        })
    }

    /// Runs `f` every `interval` (drift-free, missed periods skipped: see
    /// [`TimingWheel::every`](crate::TimingWheel::every)) until it is cancelled or the connection ends. As
    /// [`run_after`](Self::run_after) otherwise.
    pub fn run_every<F>(&self, interval: Duration, mut f: F) -> TimerId
    where
        F: FnMut(&Connection<C>) + Send + 'static,
    {
        let conn = self.clone();
        self.core.timers.add(|| {
            self.core.wheel.every(interval, move || {
                let core = Arc::clone(&conn.core);
                // A repeating timer stays in the set until cancelled: its id is not needed.
                core.run_timer(TimerId::NONE, false, || f(&conn));
            })
        })
    }

    /// Cancels a timer of this connection; `true` if that prevented a run (as
    /// [`TimingWheel::cancel`](crate::TimingWheel::cancel)). An id of another connection's timer cancels nothing.
    pub fn cancel_timer(&self, id: TimerId) -> bool {
        self.core.timers.cancel(&self.core.wheel, id)
    }
}

/// A non-blocking send's outcome as `try_send` reports it: `Closed`, else `Full`, with the
/// payload handed back.
fn as_try(sent: Result<(), (Payload, Refused)>) -> Result<(), TrySendError<Payload>> {
    sent.map_err(|(p, why)| match why {
        Refused::Closed => TrySendError::Closed(p),
        _ => TrySendError::Full(p),
    })
}

pub(crate) fn map_try<A, B>(e: TrySendError<A>, f: impl FnOnce(A) -> B) -> TrySendError<B> {
    match e {
        TrySendError::Full(a) => TrySendError::Full(f(a)),
        TrySendError::Closed(a) => TrySendError::Closed(f(a)),
        TrySendError::Encode(a, err) => TrySendError::Encode(f(a), err),
    }
}
