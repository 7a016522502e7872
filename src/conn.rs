//! The connection handle, why a connection closed, and the lifecycle behind `close` and
//! `shutdown`.
//!
//! A connection's state lives in one `Core` shared by its reader thread, its writer thread and
//! every [`Connection`] clone. The send side (queue, writer thread) is in `queue.rs`; the reader
//! thread is in `io.rs`.

use std::fmt;
use std::io::{self, Write};
use std::mem;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::error::{Refused, SendError, TrySendError};
use crate::options::ConnOptions;
use crate::queue::{deadline_after, Events, Mode, Payload, QState, Tx};
use crate::through::{is_reader_thread, Gather, Through};
use crate::timer::{TimerId, TimingWheel};

/// Why a connection closed: the argument of [`Handler::on_close`](crate::Handler::on_close).
///
/// Variants that can leave messages unwritten carry `dropped`: how many messages that a send
/// had accepted were never written (DESIGN invariant 2: nothing is lost silently).
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side (EOF between frames); everything queued was written, then the
    /// socket closed.
    PeerClosed,
    /// [`Connection::shutdown`] finished gracefully: the queue drained, our FIN went out and the
    /// peer closed its side before the deadline.
    Shutdown,
    /// [`Connection::close`] was called: the socket closed at once and the queue was dropped.
    Closed {
        /// Accepted messages that were never written.
        dropped: u64,
    },
    /// A graceful close (after [`Connection::shutdown`] or the peer's EOF) did not finish by
    /// its deadline, so the connection was closed by force.
    ShutdownTimeout {
        /// Accepted messages that were never written.
        dropped: u64,
    },
    /// The server or client was stopped. Its deadline works as in `ShutdownTimeout`.
    ServerStopped {
        /// Accepted messages that were never written (non-zero only if the deadline passed).
        dropped: u64,
    },
    /// Reading, decoding or writing failed. Codec errors such as an oversize frame arrive here
    /// with [`io::ErrorKind::InvalidData`].
    Error {
        /// What failed.
        error: io::Error,
        /// Accepted messages that were never written.
        dropped: u64,
    },
    /// A handler callback panicked; the panic was caught and only this connection closed.
    Panic {
        /// The panic message.
        message: String,
        /// Accepted messages that were never written.
        dropped: u64,
    },
}

impl CloseReason {
    /// Accepted messages that were never written (0 for the graceful reasons).
    pub fn dropped(&self) -> u64 {
        match self {
            CloseReason::PeerClosed | CloseReason::Shutdown => 0,
            CloseReason::Closed { dropped }
            | CloseReason::ShutdownTimeout { dropped }
            | CloseReason::ServerStopped { dropped }
            | CloseReason::Error { dropped, .. }
            | CloseReason::Panic { dropped, .. } => *dropped,
        }
    }

    /// True for the reasons after which everything accepted was written and the peer saw a
    /// clean end of stream.
    pub fn is_graceful(&self) -> bool {
        matches!(self, CloseReason::PeerClosed | CloseReason::Shutdown)
            || matches!(self, CloseReason::ServerStopped { dropped: 0 })
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("peer closed"),
            CloseReason::Shutdown => f.write_str("shut down"),
            CloseReason::Closed { dropped } => write!(f, "closed ({dropped} dropped)"),
            CloseReason::ShutdownTimeout { dropped } => {
                write!(f, "shutdown deadline passed ({dropped} dropped)")
            }
            CloseReason::ServerStopped { dropped } => {
                write!(f, "server stopped ({dropped} dropped)")
            }
            CloseReason::Error { error, dropped } => {
                write!(f, "error: {error} ({dropped} dropped)")
            }
            CloseReason::Panic { message, dropped } => {
                write!(f, "handler panicked: {message} ({dropped} dropped)")
            }
        }
    }
}

/// What first asked the connection to end. The first cause wins; `close_reason` turns it into
/// the public [`CloseReason`].
#[derive(Debug)]
pub(crate) enum Cause {
    PeerClosed,
    Shutdown,
    ServerStopped,
    Closed,
    Error(io::Error),
    Panic(String),
}

impl Cause {
    fn is_graceful(&self) -> bool {
        matches!(
            self,
            Cause::PeerClosed | Cause::Shutdown | Cause::ServerStopped
        )
    }
}

#[derive(Default)]
pub(crate) struct Life {
    cause: Option<Cause>,
    /// The deadline timer fired and closed the connection by force.
    forced: bool,
    /// The graceful close's deadline timer, and when it fires.
    deadline: Option<(TimerId, Instant)>,
}

/// Who sends the FIN of a graceful close.
enum Fin<'a> {
    /// This thread, now: nothing is being written or waits to be.
    Here(MutexGuard<'a, Gather>),
    /// The writer thread, a FIN thread, or an earlier close.
    Elsewhere,
    /// Nobody: no thread could be started to wait for the write in progress.
    Impossible,
}

/// Everything a connection's threads and handles share.
pub(crate) struct Core {
    pub(crate) id: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    /// The socket. Threads take an `Arc` clone for as long as they use it; when the connection
    /// ends the reader takes it out, so the fd closes even if user clones of the handle live on.
    stream: Mutex<Option<Arc<TcpStream>>>,
    pub(crate) cfg: Arc<ConnOptions>,
    pub(crate) wheel: TimingWheel,
    pub(crate) high: usize,
    pub(crate) low: usize,
    /// Admission state of the send queue; `space` wakes senders waiting for room.
    pub(crate) q: Mutex<QState>,
    pub(crate) space: Condvar,
    /// Held for every write to the socket, so write-through and the writer never interleave;
    /// inside, the bytes write-through has gathered but not written yet.
    pub(crate) out: Mutex<Gather>,
    /// Set by the reader before each `on_message`: more input is already buffered, so
    /// write-through gathers replies instead of writing them.
    pub(crate) corked: AtomicBool,
    /// The writer thread (or the thread finishing a shutdown), joined before `on_close`.
    pub(crate) writer: Mutex<Option<JoinHandle<()>>>,
    /// An abortive close was requested: the queue is dropped, not written.
    pub(crate) closed: AtomicBool,
    /// Above the high watermark; changed only under `events`.
    pub(crate) above_high: AtomicBool,
    /// Orders watermark flips and their observer calls.
    pub(crate) events: Mutex<Events>,
    /// A `Kick` is in the channel (at most one is).
    pub(crate) kicked: AtomicBool,
    /// The reader has started to finish the connection: no more deadlines.
    ended: AtomicBool,
    pub(crate) dropped: AtomicU64,
    life: Mutex<Life>,
}

/// Locks a mutex, ignoring poisoning: no threadnet code panics while holding one of its locks,
/// and user callbacks never run under them.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Core {
    pub(crate) fn new(
        id: u64,
        stream: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        cfg: Arc<ConnOptions>,
    ) -> Core {
        Core {
            id,
            peer,
            local,
            stream: Mutex::new(Some(Arc::new(stream))),
            wheel: cfg.wheel(),
            high: cfg.high(),
            low: cfg.low(),
            cfg,
            q: Mutex::new(QState::default()),
            space: Condvar::new(),
            out: Mutex::new(Gather::default()),
            corked: AtomicBool::new(false),
            writer: Mutex::new(None),
            closed: AtomicBool::new(false),
            above_high: AtomicBool::new(false),
            events: Mutex::new(Events::default()),
            kicked: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            life: Mutex::new(Life::default()),
        }
    }

    /// The socket, while the connection has one.
    pub(crate) fn stream(&self) -> Option<Arc<TcpStream>> {
        lock(&self.stream).clone()
    }

    /// Records why the connection ends. The first cause wins, except that an abortive one (a
    /// close, an error, a panic) replaces a graceful one: it is what actually ended it.
    fn set_cause(&self, cause: Cause) {
        let mut life = lock(&self.life);
        let replace = match &life.cause {
            None => true,
            Some(old) => old.is_graceful() && !cause.is_graceful(),
        };
        if replace {
            life.cause = Some(cause);
        }
    }

    /// Closes now for `cause`; see [`abort`](Self::abort).
    pub(crate) fn close_now(&self, cause: Cause) {
        self.set_cause(cause);
        self.abort();
    }

    /// No more sends, the queue is dropped (the writer counts it), and `shutdown(Both)` wakes
    /// the reader and any blocked write.
    fn abort(&self) {
        self.closed.store(true, Ordering::SeqCst);
        {
            let mut q = lock(&self.q);
            q.tx = Tx::Done;
            self.space.notify_all();
        }
        if let Some(s) = self.stream() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Starts a graceful close: no more sends, the queue drains, then `shutdown(Write)`; a
    /// deadline timer forces the close if the whole thing is not over by `timeout`.
    /// Returns without blocking. If a graceful close is already under way, only its deadline
    /// can move, and only earlier.
    pub(crate) fn begin_shutdown(self: &Arc<Self>, cause: Cause, timeout: Duration) {
        self.set_cause(cause);
        // Who sends the FIN is decided under `q`, where the writer is started: the writer
        // thread if there is one; else this thread, if nothing is being written or waits to
        // be; else a small thread that waits for the write in progress. Never this thread
        // when that could block: shutdown() returns at once.
        let fin = {
            let mut q = lock(&self.q);
            let prev = mem::replace(&mut q.tx, Tx::Done); // drops our sender: the writer drains
            self.space.notify_all();
            match prev {
                Tx::Done | Tx::Open(_) => Fin::Elsewhere,
                Tx::Idle => match self.out.try_lock() {
                    Ok(out) if out.is_empty() => Fin::Here(out),
                    _ => {
                        let core = Arc::clone(self);
                        let spawned = std::thread::Builder::new()
                            .name("threadnet-fin".into())
                            .stack_size(self.cfg.stack_size)
                            .spawn(move || {
                                let mut out = lock(&core.out);
                                core.send_fin(&mut out);
                            });
                        match spawned {
                            Ok(h) => {
                                *lock(&self.writer) = Some(h);
                                Fin::Elsewhere
                            }
                            Err(_) => Fin::Impossible,
                        }
                    }
                },
            }
        };
        match fin {
            Fin::Here(mut out) => self.send_fin(&mut out), // nothing to write: shutdown(Write)
            Fin::Elsewhere => {}
            Fin::Impossible => self.abort(), // out of threads: close rather than hang
        }
        self.arm_deadline(timeout);
    }

    /// Schedules the forced close `timeout` from now, unless one is due sooner or the
    /// connection is closed or ending.
    fn arm_deadline(self: &Arc<Self>, timeout: Duration) {
        if self.closed.load(Ordering::SeqCst) || self.ended.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        let at = deadline_after(timeout);
        let mut life = lock(&self.life);
        if life.deadline.is_some_and(|(_, due)| due <= at) {
            return;
        }
        let weak = Arc::downgrade(self);
        let id = self.wheel.schedule(at - now, move || {
            if let Some(core) = weak.upgrade() {
                core.force_close();
            }
        });
        if let Some((old, _)) = life.deadline.replace((id, at)) {
            self.wheel.cancel(old);
        }
    }

    /// Writes what is gathered, then `shutdown(Write)`: the peer reads everything written so
    /// far, then EOF. Call with `out` held (its contents passed in), after the last write.
    pub(crate) fn send_fin(&self, out: &mut Gather) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        if let Some(s) = self.stream() {
            match self.write_gathered(out, &s) {
                Ok(()) => {
                    let _ = s.shutdown(Shutdown::Write);
                }
                Err(e) => self.io_failed(e),
            }
        }
    }

    /// The deadline passed: close, keeping the graceful cause (it becomes `ShutdownTimeout`).
    pub(crate) fn force_close(&self) {
        lock(&self.life).forced = true;
        self.abort();
    }

    /// Records a failed read or write and closes the connection. Errors that our own close
    /// caused (the socket shut down under a blocked read or write) are not recorded.
    pub(crate) fn io_failed(&self, error: io::Error) {
        if !self.closed.load(Ordering::SeqCst) {
            self.set_cause(Cause::Error(error));
        }
        self.abort();
    }

    /// The peer's EOF: flush what is queued, then close (DESIGN invariant 4).
    pub(crate) fn peer_closed(self: &Arc<Self>) {
        let timeout = self.cfg.shutdown_timeout;
        self.begin_shutdown(Cause::PeerClosed, timeout);
    }

    /// Waits for the writer thread, cancels the deadline, and says why the connection closed.
    pub(crate) fn finish(&self) -> CloseReason {
        self.ended.store(true, Ordering::SeqCst);
        let writer = lock(&self.writer).take();
        if let Some(h) = writer {
            let _ = h.join();
        }
        let unwritten = self.take_unwritten() as u64;
        self.dropped.fetch_add(unwritten, Ordering::SeqCst);
        let mut life = lock(&self.life);
        if let Some((id, _)) = life.deadline.take() {
            self.wheel.cancel(id);
        }
        let dropped = self.dropped.load(Ordering::SeqCst);
        let cut_short = life.forced || dropped > 0;
        match life.cause.take().unwrap_or(Cause::PeerClosed) {
            Cause::Closed => CloseReason::Closed { dropped },
            Cause::Error(error) => CloseReason::Error { error, dropped },
            Cause::Panic(message) => CloseReason::Panic { message, dropped },
            Cause::ServerStopped => CloseReason::ServerStopped { dropped },
            Cause::Shutdown | Cause::PeerClosed if cut_short => {
                CloseReason::ShutdownTimeout { dropped }
            }
            Cause::Shutdown => CloseReason::Shutdown,
            Cause::PeerClosed => CloseReason::PeerClosed,
        }
    }

    /// Closes the socket: called last, after `on_close` (gnet #621: an fd released before the
    /// close callback can be reused by a new connection and receive the old one's writes).
    pub(crate) fn release_socket(&self) {
        let s = lock(&self.stream).take();
        drop(s);
    }

    pub(crate) fn is_closing(&self) -> bool {
        matches!(lock(&self.q).tx, Tx::Done)
    }
}

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
            .field("peer_addr", &self.core.peer)
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

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.core.peer
    }

    /// Our end's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.core.local
    }

    fn encode(&self, msg: &C::Out) -> io::Result<Payload> {
        let mut buf = Vec::new();
        self.codec.write(msg, &mut buf)?;
        Ok(Payload::Owned(buf))
    }

    /// Queues a message, waiting up to the send timeout
    /// ([`ConnOptions::send_timeout`], 5 s by default) while the queue is full.
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
        match self.core.write_through(mode, |w| self.codec.write(&msg, w)) {
            Through::Written => return Ok(()),
            Through::Closed => return Err(SendError::Closed(msg)),
            Through::Encode(e) => return Err(SendError::Encode(msg, e)),
            Through::Queue => {}
        }
        let bytes = match self.encode(&msg) {
            Ok(b) => b,
            Err(e) => return Err(SendError::Encode(msg, e)),
        };
        match self.core.push(bytes, mode) {
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
        match self.core.push(bytes, Mode::Try) {
            Ok(()) => Ok(()),
            Err((_, Refused::Closed)) => Err(TrySendError::Closed(msg)),
            Err((_, _)) => Err(TrySendError::Full(msg)),
        }
    }

    /// Queues bytes that are already encoded, bypassing the codec (goes' `Send(data, true)`):
    /// they are written to the socket exactly as given. Waits up to the send timeout.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send) (never `Encode`); the bytes come back in the error.
    pub fn send_bytes(&self, bytes: Vec<u8>) -> Result<(), SendError<Vec<u8>>> {
        let mode = Mode::Wait(self.core.cfg.send_timeout);
        match self.core.write_through(mode, |w| w.write_all(&bytes)) {
            Through::Written => return Ok(()),
            Through::Closed | Through::Encode(_) => return Err(SendError::Closed(bytes)),
            Through::Queue => {}
        }
        match self.core.push(Payload::Owned(bytes), mode) {
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

    pub(crate) fn try_send_payload(&self, p: Payload) -> Result<(), TrySendError<Payload>> {
        match self.core.push(p, Mode::Try) {
            Ok(()) => Ok(()),
            Err((p, Refused::Closed)) => Err(TrySendError::Closed(p)),
            Err((p, _)) => Err(TrySendError::Full(p)),
        }
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
            self.core.flush_before_close();
        }
        self.core.close_now(Cause::Closed);
    }

    /// Closes the connection gracefully (DESIGN invariant 3): sends are refused from now on,
    /// the writer drains the queue, then `shutdown(Write)` sends our FIN, and the reader reads
    /// on (still calling `on_message`) until the peer's EOF. If that has not happened within
    /// `timeout`, the connection is closed by force ([`CloseReason::ShutdownTimeout`]).
    ///
    /// Returns at once; the deadline is kept by the timing wheel. Does nothing if a close or
    /// shutdown is already under way.
    pub fn shutdown(&self, timeout: Duration) {
        self.core.begin_shutdown(Cause::Shutdown, timeout);
    }

    pub(crate) fn stop(&self, timeout: Duration) {
        self.core.begin_shutdown(Cause::ServerStopped, timeout);
    }

    /// True once the connection takes no more messages: after [`close`](Self::close),
    /// [`shutdown`](Self::shutdown), the peer's EOF or an error.
    pub fn is_closed(&self) -> bool {
        self.core.is_closing()
    }

    /// Bytes accepted by sends and not yet written to the socket.
    pub fn queued_bytes(&self) -> usize {
        lock(&self.core.q).bytes
    }

    /// Messages accepted by sends and not yet written to the socket.
    pub fn queued_messages(&self) -> usize {
        lock(&self.core.q).pending
    }

    /// Netty's `isWritable`: false from the moment the queue rises above the high watermark
    /// until it falls back to the low one.
    pub fn is_writable(&self) -> bool {
        !self.core.above_high.load(Ordering::SeqCst)
    }
}

pub(crate) fn map_try<A, B>(e: TrySendError<A>, f: impl FnOnce(A) -> B) -> TrySendError<B> {
    match e {
        TrySendError::Full(a) => TrySendError::Full(f(a)),
        TrySendError::Closed(a) => TrySendError::Closed(f(a)),
        TrySendError::Encode(a, err) => TrySendError::Encode(f(a), err),
    }
}
