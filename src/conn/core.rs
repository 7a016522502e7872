//! The shared state of one connection: its identity, its parts, and the sequences of its end
//! that span them: why it ends, `close` (abort now), the forced close at a graceful close's
//! deadline, and the end that the reader thread runs before `on_close`.
//!
//! A connection's state lives in one `Core`, shared by its reader thread, its writer thread and
//! every [`Connection`](crate::Connection) clone. The parts it holds know nothing of it. The
//! sequences that write (a send, the writer thread's loop, the graceful close's goodbye and
//! FIN) are in `send.rs` and `drain.rs`, above this file; the reader thread is in `reader.rs`,
//! and the public handle in `connection.rs`.

use std::io;
use std::net::Shutdown;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::conn::idle::Activity;
use crate::conn::life::{Life, Phase};
use crate::conn::metrics::{Metrics, Traffic};
use crate::conn::options::{ConnEvent, ConnOptions};
use crate::conn::protocol::LayerSlot;
use crate::conn::queue::SendQueue;
use crate::conn::through::Out;
use crate::conn::timers::ConnTimers;
use crate::conn::wire::Wire;
use crate::conn::writer::Writer;
use crate::conn::CloseReason;
use crate::sync::lock;
use crate::sys::transport::{Addr, Socket};
use crate::timer::{TimerId, TimingWheel};

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
    /// (`send::send_datagram`).
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
    /// `drain::write_parked`, called by whoever drives it.
    pub(crate) fn without_threads(mut self) -> Core {
        self.writer = Writer::without_threads();
        self
    }

    /// A datagram connection (a UDP peer): each message is one datagram, whole when it
    /// comes. It has no queue and no writer thread: a send writes its datagram at once.
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

    /// What a write to the socket reports to: the counters, the write clock, the phase and
    /// the wheel.
    pub(crate) fn wire(&self) -> Wire<'_> {
        Wire {
            life: &self.life,
            activity: &self.activity,
            traffic: &self.traffic,
            wheel: &self.wheel,
        }
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

    /// This connection starts no writer or FIN thread (an embedded connection): its driver
    /// writes the queue.
    pub(crate) fn has_no_threads(&self) -> bool {
        self.writer.is_parked()
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

    /// A graceful close has begun (`send::begin_shutdown`): no more sends.
    pub(crate) fn start_draining(&self) {
        self.life.advance(Phase::Draining);
    }

    /// Closes now for `cause`; see [`abort`](Self::abort).
    pub(crate) fn close_now(&self, cause: CloseReason) {
        self.set_cause(cause);
        self.abort();
    }

    /// No more sends, the queue is dropped (the writer counts it), and `shutdown(Both)` wakes
    /// the reader and any blocked write. The cause already recorded stands.
    pub(crate) fn abort(&self) {
        self.life.advance(Phase::Aborted);
        self.queue.close(drop);
        if let Some(s) = self.stream() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Schedules the forced close `timeout` from now, unless one is due sooner or the
    /// connection is closed or ending.
    pub(crate) fn arm_deadline(self: &Arc<Self>, timeout: Duration) {
        let weak = Arc::downgrade(self);
        self.life.arm_deadline(&self.wheel, timeout, move || {
            if let Some(core) = weak.upgrade() {
                core.force_close();
            }
        });
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

    /// Waits for the writer thread, cancels the deadline, and says why the connection closed.
    pub(crate) fn finish(&self) -> CloseReason {
        self.life.begin_ending();
        self.writer.join();
        // No timer of this connection runs from here on (none after on_close).
        self.timers.close(&self.wheel);
        let unwritten = self.out.take_unwritten(&self.wheel) as u64;
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
