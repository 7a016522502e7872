//! The shared state of one connection and its lifecycle: why it ends, `close` (abort now),
//! `shutdown` (drain, FIN, wait for the peer's EOF, forced close at a deadline), and the end
//! that the reader thread runs before `on_close`.
//!
//! A connection's state lives in one `Core`, shared by its reader thread, its writer thread and
//! every [`Connection`](crate::Connection) clone. The send side (queue, writer thread) is in
//! `queue.rs`, write-through in `through.rs`, the reader thread in `reader.rs`, and the public
//! handle in `connection.rs`.

use std::io;
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::conn::idle::Activity;
use crate::conn::life::{Life, Phase};
use crate::conn::metrics::{Metrics, Traffic};
use crate::conn::options::{ConnEvent, ConnOptions};
use crate::conn::protocol::LayerSlot;
use crate::conn::queue::{Mode, Payload, SendQueue, Tx};
use crate::conn::through::{Gather, Out};
use crate::conn::timers::ConnTimers;
use crate::conn::writer::Writer;
use crate::conn::CloseReason;
use crate::error::Refused;
use crate::sync::lock;
use crate::sys::transport::{Addr, Socket};
use crate::timer::{TimerId, TimingWheel};

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
    pub(super) id: u64,
    /// The socket's peer: with the PROXY protocol, the load balancer (see [`Core::peer`]).
    pub(super) socket_peer: Addr,
    pub(super) local: Addr,
    /// The client a PROXY protocol header named, set once before the handler is made.
    pub(super) proxied: OnceLock<Addr>,
    /// The protocol built on the connection (WebSocket), if any: its subprotocol, its last
    /// message before a graceful close, its heartbeat bytes.
    pub(super) layer: LayerSlot,
    /// The socket. Threads take an `Arc` clone for as long as they use it; when the connection
    /// ends the reader takes it out, so the fd closes even if user clones of the handle live on.
    stream: Mutex<Option<Arc<dyn Socket>>>,
    /// A UDP peer: sends write their datagram at once, with no queue and no writer thread
    /// (`Core::send_datagram`, in `udp.rs`).
    pub(super) datagram: bool,
    pub(super) cfg: Arc<ConnOptions>,
    pub(super) wheel: TimingWheel,
    /// What is accepted and not yet written, its bounds and watermarks.
    pub(super) queue: SendQueue,
    /// The socket's write side for write-through: the lock every write holds, and what is
    /// gathered behind it.
    pub(super) out: Out,
    /// The writer thread, or the parked queue of a connection that starts no thread.
    pub(super) writer: Writer,
    /// How far the close has gone, why, and its deadline.
    life: Life,
    /// The connection's own timers (user timers, idle checks), cancelled by `finish`.
    pub(super) timers: ConnTimers,
    /// When the socket was last read and written, for idle timeouts and heartbeats.
    pub(super) activity: Activity,
    /// This connection's messages and bytes in and out, summed into its server's or client's
    /// totals until the connection is dropped.
    pub(super) traffic: Arc<Traffic>,
    /// The counters of the server or client this connection belongs to.
    pub(super) metrics: Arc<Metrics>,
}

impl Drop for Core {
    /// Nothing counts on this connection any more: its traffic joins the gone connections'.
    fn drop(&mut self) {
        self.metrics.leave(&self.traffic);
    }
}

impl Core {
    pub(crate) fn new(
        id: u64,
        stream: Arc<dyn Socket>,
        peer: Addr,
        local: Addr,
        cfg: Arc<ConnOptions>,
        metrics: Arc<Metrics>,
    ) -> Core {
        let activity = Activity::new(&cfg.idle, cfg.wheel());
        let queue = SendQueue::new(id, &cfg);
        Core {
            id,
            socket_peer: peer,
            local,
            proxied: OnceLock::new(),
            layer: LayerSlot::new(),
            datagram: stream.is_datagram(),
            stream: Mutex::new(Some(stream)),
            wheel: cfg.wheel(),
            cfg,
            queue,
            out: Out::default(),
            writer: Writer::default(),
            life: Life::default(),
            timers: ConnTimers::default(),
            activity,
            traffic: metrics.join(),
            metrics,
        }
    }

    /// This connection starts no writer or FIN thread: its queue waits for
    /// [`write_parked`](Self::write_parked), called by whoever drives it.
    pub(crate) fn without_threads(mut self) -> Core {
        self.writer = Writer::without_threads();
        self
    }

    /// A datagram connection (a UDP peer): each message is one datagram, whole when it
    /// comes.
    pub(crate) fn is_datagram(&self) -> bool {
        self.datagram
    }

    /// The options the connection runs with.
    pub(crate) fn options(&self) -> &ConnOptions {
        &self.cfg
    }

    /// The timing wheel that keeps the connection's deadlines.
    pub(crate) fn wheel(&self) -> &TimingWheel {
        &self.wheel
    }

    /// The slot a protocol built on the connection hooks into.
    pub(crate) fn layer(&self) -> &LayerSlot {
        &self.layer
    }

    /// Ends a connection that was refused before it opened (a bad PROXY protocol header):
    /// no `on_close` and no close reason, but whatever was sent to it meanwhile (a
    /// broadcast finds it in the registry) started a writer thread, which holds the socket:
    /// it is stopped and joined, and the socket released.
    pub(crate) fn refuse(&self) {
        self.force_close(); // no more sends, the queue dropped, the socket shut down
        self.writer.join();
        self.release_socket();
    }

    /// `bytes` came from the socket: counted, and noted as activity for idle limits.
    pub(crate) fn socket_read(&self, bytes: usize) {
        self.traffic.read(bytes);
        self.activity.note_read();
    }

    /// `bytes` went to the socket: counted, and noted as activity for idle limits.
    pub(crate) fn socket_wrote(&self, bytes: usize) {
        self.traffic.wrote(bytes);
        self.activity.note_write();
    }

    /// A stream reader read bytes (after [`socket_read`](Self::socket_read)): if no frame
    /// was in progress, one begins now.
    pub(crate) fn frame_bytes(&self) {
        self.activity.frame_bytes();
    }

    /// A stream reader is about to wait on the peer: a pending frame's clock starts now.
    #[inline]
    pub(crate) fn frame_waits(&self) {
        self.activity.frame_waits();
    }

    /// Accepts `p` into the send queue; see [`SendQueue::push`].
    pub(crate) fn push(self: &Arc<Self>, p: Payload, mode: Mode) -> Result<(), (Payload, Refused)> {
        self.queue.push(self, p, mode)
    }

    /// This connection starts no writer or FIN thread (an embedded connection): its driver
    /// writes the queue.
    pub(crate) fn has_no_threads(&self) -> bool {
        self.writer.is_parked()
    }

    /// The writer's work for a connection that starts no thread, on the caller's thread; see
    /// [`Writer::write_parked`].
    pub(crate) fn write_parked(self: &Arc<Self>) {
        self.writer.write_parked(self);
    }

    /// Runs `f` as one of the connection's timer callbacks ([`ConnTimers::run`]); a panic in
    /// it closes the connection with that panic.
    pub(crate) fn run_timer(self: &Arc<Self>, id: TimerId, once: bool, f: impl FnOnce()) {
        if let Err(message) = self.timers.run(self, id, once, f) {
            self.close_now(CloseReason::panic(message));
        }
    }

    /// The counters of the server or client the connection belongs to.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The peer: the client a PROXY protocol header named, else the socket's peer.
    pub(crate) fn peer(&self) -> &Addr {
        self.proxied.get().unwrap_or(&self.socket_peer)
    }

    /// Records the client a PROXY protocol header named (once; before the handler is made).
    pub(crate) fn set_proxied(&self, client: Addr) {
        let _ = self.proxied.set(client);
    }

    /// The socket, while the connection has one.
    pub(crate) fn stream(&self) -> Option<Arc<dyn Socket>> {
        lock(&self.stream).clone()
    }

    /// Records why the connection ends; see [`Life::set_cause`].
    pub(crate) fn set_cause(&self, cause: CloseReason) {
        self.life.set_cause(cause);
    }

    /// True once the connection was closed abortively (`close`, an error, a panic, an idle
    /// limit, a forced close): the queue is dropped, not written, and the reader leaves.
    pub(crate) fn is_aborted(&self) -> bool {
        self.life.phase() == Phase::Aborted
    }

    /// True once the connection takes no more messages: a graceful close has begun, or an
    /// abortive one.
    pub(crate) fn is_closing(&self) -> bool {
        self.life.phase() >= Phase::Draining
    }

    /// Asks the connection to end at its protocol's next boundary.
    pub(crate) fn wind_down(&self) {
        self.life.advance(Phase::WindingDown);
    }

    /// True once [`wind_down`](Self::wind_down) was called, or the connection is already
    /// closing (its next boundary is now).
    pub(crate) fn is_winding_down(&self) -> bool {
        self.life.phase() >= Phase::WindingDown
    }

    /// Closes now for `cause`; see [`abort`](Self::abort).
    pub(crate) fn close_now(&self, cause: CloseReason) {
        self.set_cause(cause);
        self.abort();
    }

    /// No more sends, the queue is dropped (the writer counts it), and `shutdown(Both)` wakes
    /// the reader and any blocked write.
    fn abort(&self) {
        self.life.advance(Phase::Aborted);
        self.queue.close(drop);
        if let Some(s) = self.stream() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Starts a graceful close: no more sends, the queue drains, then `shutdown(Write)`; a
    /// deadline timer forces the close if the whole thing is not over by `timeout`.
    /// Returns without blocking. If a graceful close is already under way, only its deadline
    /// can move, and only earlier.
    pub(crate) fn begin_shutdown(self: &Arc<Self>, cause: CloseReason, timeout: Duration) {
        // The cause is recorded before the protocol's last word goes out: the peer's answer
        // to it (a WebSocket close echoed) may come back at once, and must not be taken for
        // the peer's own close.
        let goodbye = self.layer.take_goodbye(&cause);
        self.set_cause(cause);
        if let Some(bytes) = goodbye {
            // The protocol's last word goes out before the FIN; a full queue skips it.
            let _ = self.push(Payload::Owned(bytes), Mode::Try);
        }
        // Who sends the FIN is decided under `q`, where the writer is started: the writer
        // thread if there is one; else this thread, if nothing is being written or waits to
        // be; else a small thread that waits for the write in progress. Never this thread
        // when that could block: shutdown() returns at once.
        self.life.advance(Phase::Draining);
        let fin = self.queue.close(|prev| {
            match prev {
                Tx::Closed | Tx::Writer(_) => Fin::Elsewhere,
                Tx::NoWriter => match self.out.try_lock() {
                    Some(out) if out.is_empty() => Fin::Here(out),
                    // No thread: the driver's next `write_parked` sends it.
                    _ if self.writer.is_parked() => Fin::Elsewhere,
                    _ => {
                        let core = Arc::clone(self);
                        let spawned = std::thread::Builder::new()
                            .name("threadnet-fin".into())
                            .stack_size(self.cfg.stack_size)
                            .spawn(move || {
                                core.send_fin(&mut core.out.lock());
                            });
                        match spawned {
                            Ok(h) => {
                                self.writer.hold(h);
                                Fin::Elsewhere
                            }
                            Err(_) => Fin::Impossible,
                        }
                    }
                },
            }
        });
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
        let weak = Arc::downgrade(self);
        self.life.arm_deadline(&self.wheel, timeout, move || {
            if let Some(core) = weak.upgrade() {
                core.force_close();
            }
        });
    }

    /// Writes what is gathered, then `shutdown(Write)`: the peer reads everything written so
    /// far, then EOF. Call with `out` held (its contents passed in), after the last write.
    pub(crate) fn send_fin(&self, out: &mut Gather) {
        if self.is_aborted() {
            return;
        }
        if let Some(s) = self.stream() {
            match Out::write_gathered(self, out, &*s) {
                Ok(()) => {
                    let _ = s.shutdown(Shutdown::Write);
                }
                Err(e) => self.io_failed(e),
            }
        }
    }

    /// The deadline passed: close, keeping the graceful cause (it becomes `ShutdownTimeout`).
    pub(crate) fn force_close(&self) {
        self.life.forced();
        self.abort();
    }

    /// Records a failed read or write and closes the connection. Errors that our own close
    /// caused (the socket shut down under a blocked read or write) are not recorded.
    pub(crate) fn io_failed(&self, error: io::Error) {
        if !self.is_aborted() {
            self.set_cause(CloseReason::error(error));
        }
        self.abort();
    }

    /// The peer's EOF: flush what is queued, then close (invariant 4, DESIGN.md).
    pub(crate) fn peer_closed(self: &Arc<Self>) {
        let timeout = self.cfg.shutdown_timeout;
        self.begin_shutdown(CloseReason::PeerClosed, timeout);
    }

    /// Waits for the writer thread, cancels the deadline, and says why the connection closed.
    pub(crate) fn finish(&self) -> CloseReason {
        self.life.begin_ending();
        self.writer.join();
        // No timer of this connection runs from here on (none after on_close).
        self.timers.close(&self.wheel);
        let unwritten = self.out.take_unwritten(self) as u64;
        self.queue.count_dropped(unwritten);
        let dropped = self.queue.dropped();
        let reason = self.life.settle(&self.wheel, dropped);
        self.metrics.closed(&reason);
        self.cfg.emit(&ConnEvent::Closed {
            id: self.id,
            peer: self.peer(),
            reason: &reason,
        });
        reason
    }

    /// Closes the socket: called last, after `on_close` (gnet #621: an fd released before the
    /// close callback can be reused by a new connection and receive the old one's writes).
    pub(crate) fn release_socket(&self) {
        let s = lock(&self.stream).take();
        drop(s);
    }
}
