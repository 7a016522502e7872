//! The shared state of one connection and its lifecycle: why it ends, `close` (abort now),
//! `shutdown` (drain, FIN, wait for the peer's EOF, forced close at a deadline), and the end
//! that the reader thread runs before `on_close`.
//!
//! A connection's state lives in one `Core`, shared by its reader thread, its writer thread and
//! every [`Connection`](crate::Connection) clone. The send side (queue, writer thread) is in
//! `queue.rs`, write-through in `through.rs`, the reader thread in `reader.rs`, and the public
//! handle in `handle.rs`.

use std::io;
use std::mem;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::conn::idle::Activity;
use crate::conn::life::{Life, Phase};
use crate::conn::metrics::{Metrics, Traffic};
use crate::conn::options::{ConnEvent, ConnOptions};
use crate::conn::protocol::LayerSlot;
use crate::conn::queue::{Events, Mode, Payload, QState, Tx};
use crate::conn::through::Gather;
use crate::conn::timers::ConnTimers;
use crate::conn::CloseReason;
use crate::sync::lock;
use crate::sys::transport::{Addr, Socket};
use crate::timer::TimingWheel;

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
    /// The socket's peer: with the PROXY protocol, the load balancer (see [`Core::peer`]).
    pub(crate) peer: Addr,
    pub(crate) local: Addr,
    /// The client a PROXY protocol header named, set once before the handler is made.
    pub(crate) proxied: OnceLock<Addr>,
    /// The protocol built on the connection (WebSocket), if any: its subprotocol, its last
    /// message before a graceful close, its heartbeat bytes.
    pub(crate) layer: LayerSlot,
    /// The socket. Threads take an `Arc` clone for as long as they use it; when the connection
    /// ends the reader takes it out, so the fd closes even if user clones of the handle live on.
    stream: Mutex<Option<Arc<dyn Socket>>>,
    /// A UDP peer: sends write their datagram at once, with no queue and no writer thread
    /// (`Core::send_datagram`, in `udp.rs`).
    pub(crate) datagram: bool,
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
    /// `Some` for a connection that starts no thread (an embedded connection, `testing/`):
    /// the queue's receiving half waits here, and its driver writes it on its own thread
    /// ([`Core::write_parked`]) where a writer or FIN thread would be started.
    pub(crate) parked: Option<Mutex<Option<Receiver<Payload>>>>,
    /// Above the high watermark; changed only under `events`.
    pub(crate) above_high: AtomicBool,
    /// Orders watermark flips and their observer calls.
    pub(crate) events: Mutex<Events>,
    /// A `Kick` is in the channel (at most one is).
    pub(crate) kicked: AtomicBool,
    pub(crate) dropped: AtomicU64,
    /// How far the close has gone, why, and its deadline.
    life: Life,
    /// The connection's own timers (user timers, idle checks), cancelled by `finish`.
    pub(crate) timers: ConnTimers,
    /// When the socket was last read and written, for idle timeouts and heartbeats.
    pub(crate) activity: Activity,
    /// This connection's messages and bytes in and out, summed into its server's or client's
    /// totals until the connection is dropped.
    pub(crate) traffic: Arc<Traffic>,
    /// The counters of the server or client this connection belongs to.
    pub(crate) metrics: Arc<Metrics>,
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
        let tracked = cfg.idle.enabled();
        Core {
            id,
            peer,
            local,
            proxied: OnceLock::new(),
            layer: LayerSlot::new(),
            datagram: stream.is_datagram(),
            stream: Mutex::new(Some(stream)),
            wheel: cfg.wheel(),
            high: cfg.high(),
            low: cfg.low(),
            cfg,
            q: Mutex::new(QState::default()),
            space: Condvar::new(),
            out: Mutex::new(Gather::default()),
            corked: AtomicBool::new(false),
            writer: Mutex::new(None),
            parked: None,
            above_high: AtomicBool::new(false),
            events: Mutex::new(Events::default()),
            kicked: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            life: Life::default(),
            timers: ConnTimers::default(),
            activity: Activity::new(tracked),
            traffic: metrics.join(),
            metrics,
        }
    }

    /// This connection starts no writer or FIN thread: its queue waits for
    /// [`write_parked`](Self::write_parked), called by whoever drives it.
    pub(crate) fn without_threads(mut self) -> Core {
        self.parked = Some(Mutex::new(None));
        self
    }

    /// The peer: the client a PROXY protocol header named, else the socket's peer.
    pub(crate) fn peer(&self) -> &Addr {
        self.proxied.get().unwrap_or(&self.peer)
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
        {
            let mut q = lock(&self.q);
            q.tx = Tx::Closed;
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
    pub(crate) fn begin_shutdown(self: &Arc<Self>, cause: CloseReason, timeout: Duration) {
        if let Some(bytes) = self.layer.take_goodbye(&cause) {
            // The protocol's last word goes out before the FIN; a full queue skips it.
            let _ = self.push(Payload::Owned(bytes), Mode::Try);
        }
        self.set_cause(cause);
        // Who sends the FIN is decided under `q`, where the writer is started: the writer
        // thread if there is one; else this thread, if nothing is being written or waits to
        // be; else a small thread that waits for the write in progress. Never this thread
        // when that could block: shutdown() returns at once.
        let fin = {
            let mut q = lock(&self.q);
            self.life.advance(Phase::Draining);
            let prev = mem::replace(&mut q.tx, Tx::Closed); // drops our sender: the writer drains
            self.space.notify_all();
            match prev {
                Tx::Closed | Tx::Writer(_) => Fin::Elsewhere,
                Tx::NoWriter => match self.out.try_lock() {
                    Ok(out) if out.is_empty() => Fin::Here(out),
                    // No thread: the driver's next `write_parked` sends it.
                    _ if self.parked.is_some() => Fin::Elsewhere,
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
            match self.write_gathered(out, &*s) {
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
        let writer = lock(&self.writer).take();
        if let Some(h) = writer {
            let _ = h.join();
        }
        // No timer of this connection runs from here on (none after on_close).
        self.timers.close(&self.wheel);
        let unwritten = self.take_unwritten() as u64;
        self.dropped.fetch_add(unwritten, Ordering::SeqCst);
        let dropped = self.dropped.load(Ordering::SeqCst);
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
