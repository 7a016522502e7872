//! Per-connection options, shared by [`ServerBuilder`](crate::ServerBuilder) and
//! [`ClientBuilder`](crate::ClientBuilder).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::conn::idle::{non_zero, Heartbeat, IdleAction, IdleEvent, IdleOptions};
use crate::conn::CloseReason;
use crate::error::panic_message;
use crate::sys::transport::Addr;
use crate::timer::TimingWheel;

/// A send queue crossed a watermark: goes' `OnBufferFull` / `OnBufferDrain`, Netty's
/// `channelWritabilityChanged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkEvent {
    /// The connection's [`id`](crate::Connection::id).
    pub id: u64,
    /// Bytes waiting in the send queue when the mark was crossed.
    pub queued_bytes: usize,
    /// `true` when the queue rose above the high watermark (stop producing), `false` when it
    /// fell back to the low watermark (produce again).
    pub full: bool,
}

/// A watermark observer; see [`ConnOptions::on_watermark`].
pub type WatermarkObserver = Arc<dyn Fn(WatermarkEvent) + Send + Sync>;

/// Something happened to a connection; given to the [`ConnOptions::on_event`] hook, so that a
/// program can log with `log`, `tracing` or its own logger without threadnet depending on any.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnEvent<'a> {
    /// A connection opened (accepted, dialled, or a new UDP peer), before its `on_connect`.
    Opened {
        /// The connection's [`id`](crate::Connection::id).
        id: u64,
        /// The peer's address.
        peer: &'a Addr,
    },
    /// A connection ended, before its `on_close`. Errors (a bad frame, a reset, a panic) arrive
    /// here as the reason.
    Closed {
        /// The connection's [`id`](crate::Connection::id).
        id: u64,
        /// The peer's address.
        peer: &'a Addr,
        /// Why it ended.
        reason: &'a CloseReason,
    },
}

/// An event hook; see [`ConnOptions::on_event`].
pub type EventHook = Arc<dyn Fn(&ConnEvent<'_>) + Send + Sync>;

/// Options of every connection of a server or client: send queue bounds, watermarks, timeouts,
/// buffers and thread stacks.
///
/// # Memory
///
/// What a server can be made to hold is bounded by its connections times what each one may
/// hold at once:
///
/// ```text
/// max_connections × (send_queue_bytes + read_buffer_size + the codec's frame limit)
///                 + 2 × stack_size of address space per connection (touched pages only)
/// ```
///
/// With the defaults, 1 024 connections ×
/// ([`send_queue_bytes`](Self::send_queue_bytes) 1 MiB + [`read_buffer_size`](Self::read_buffer_size)
/// 32 KiB + a frame of 1 MiB: [`LengthDelimited`](crate::codec::LengthDelimited),
/// [`Tlv`](crate::codec::Tlv), an [`Http1`](crate::http::Http1) body, a [`Resp`](crate::codec::Resp)
/// command) is about 2 GiB, which a small machine can afford (with 8 MiB frames it was over
/// 9 GiB). The frame limit is the one to raise for a protocol of large messages
/// ([`max_frame_length`](Self::max_frame_length), or the codec's own `max_*`, each up to its
/// protocol's maximum); lower `max_connections` on the server builder in proportion.
///
/// ```
/// use std::time::Duration;
/// use threadnet::ConnOptions;
///
/// let opts = ConnOptions::new()
///     .send_queue_capacity(256)
///     .send_queue_bytes(256 * 1024)
///     .send_timeout(Duration::from_millis(500));
/// assert_eq!(opts.get_send_queue_bytes(), 256 * 1024);
/// ```
#[derive(Clone)]
pub struct ConnOptions {
    pub(crate) queue_capacity: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) high_watermark: Option<usize>,
    pub(crate) low_watermark: Option<usize>,
    pub(crate) on_watermark: Option<WatermarkObserver>,
    pub(crate) send_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) read_buffer: usize,
    pub(crate) stack_size: usize,
    pub(crate) nodelay: bool,
    pub(crate) write_through: bool,
    pub(crate) writer_quiet: Duration,
    pub(crate) max_frame_length: Option<usize>,
    pub(crate) wheel: Option<TimingWheel>,
    pub(crate) idle: IdleOptions,
    pub(crate) on_event: Option<EventHook>,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            queue_capacity: 1024,
            queue_bytes: 1024 * 1024,
            high_watermark: None,
            low_watermark: None,
            on_watermark: None,
            send_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(3),
            read_buffer: 32 * 1024,
            stack_size: 128 * 1024,
            nodelay: true,
            write_through: true,
            writer_quiet: Duration::from_secs(1),
            max_frame_length: None,
            wheel: None,
            idle: IdleOptions::default(),
            on_event: None,
        }
    }
}

impl fmt::Debug for ConnOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnOptions")
            .field("send_queue_capacity", &self.queue_capacity)
            .field("send_queue_bytes", &self.queue_bytes)
            .field("high_watermark", &self.high())
            .field("low_watermark", &self.low())
            .field("on_watermark", &self.on_watermark.is_some())
            .field("send_timeout", &self.send_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("read_buffer_size", &self.read_buffer)
            .field("stack_size", &self.stack_size)
            .field("nodelay", &self.nodelay)
            .field("write_through", &self.write_through)
            .field("writer_quiet", &self.writer_quiet)
            .field("max_frame_length", &self.max_frame_length)
            .field("idle", &self.idle)
            .field("on_event", &self.on_event.is_some())
            .finish()
    }
}

impl ConnOptions {
    /// The defaults, as each option documents.
    pub fn new() -> Self {
        Self::default()
    }

    /// Most messages a connection's send queue holds. A send that finds it full blocks
    /// ([`send`](crate::Connection::send)) or fails with `Full`
    /// ([`try_send`](crate::Connection::try_send)).
    ///
    /// The queue's channel allocates its slots (about 32 bytes each) when the first message is
    /// queued, so an idle connection pays nothing for them.
    ///
    /// Defaults to 1024 messages.
    ///
    /// # Panics
    ///
    /// If `messages` is zero or above 1 048 576 (`1 << 20`).
    pub fn send_queue_capacity(mut self, messages: usize) -> Self {
        assert!(
            (1..=1 << 20).contains(&messages),
            "send queue capacity must be 1 to 1048576 messages"
        );
        self.queue_capacity = messages;
        self
    }

    /// Most bytes (encoded) a connection's send queue holds: what a peer that never reads can
    /// cost (goes' `MaxSendBufferSize`). One message larger than this is still taken when the
    /// queue is empty, so every message that fits a frame can be sent.
    ///
    /// Defaults to 1 MiB (1 048 576 bytes).
    ///
    /// # Panics
    ///
    /// If `bytes` is zero.
    pub fn send_queue_bytes(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "send queue bytes must be at least 1");
        self.queue_bytes = bytes;
        self
    }

    /// Queued bytes above which the queue counts as full for [`on_watermark`](Self::on_watermark)
    /// and [`Connection::is_writable`](crate::Connection::is_writable). A send that finds
    /// `queued + its length` above this mark crosses it.
    ///
    /// Defaults to [`send_queue_bytes`](Self::send_queue_bytes).
    pub fn high_watermark(mut self, bytes: usize) -> Self {
        self.high_watermark = Some(bytes);
        self
    }

    /// Queued bytes at or below which a full queue counts as drained again.
    ///
    /// Defaults to half the high watermark.
    pub fn low_watermark(mut self, bytes: usize) -> Self {
        self.low_watermark = Some(bytes);
        self
    }

    /// Called when a send queue rises above the high watermark and when it falls back to the
    /// low one; the two alternate, starting with a rise. The call runs on the thread that
    /// crosses the mark: a sending thread for a rise, the connection's writer thread for a
    /// drain, so it must be quick and must not block (hand work to another thread).
    ///
    /// Defaults to none.
    pub fn on_watermark<F>(mut self, observer: F) -> Self
    where
        F: Fn(WatermarkEvent) + Send + Sync + 'static,
    {
        self.on_watermark = Some(Arc::new(observer));
        self
    }

    /// Calls `hook` when a connection opens and when it ends, with its id, its peer and (at
    /// the end) its close reason: the place to plug in a logger. It runs on the connection's
    /// reader thread, before `on_connect` and before `on_close`; keep it short.
    ///
    /// ```
    /// use threadnet::{events::ConnEvent, ConnOptions};
    ///
    /// let opts = ConnOptions::new().on_event(|event| match event {
    ///     ConnEvent::Opened { id, peer } => eprintln!("#{id} {peer} opened"),
    ///     ConnEvent::Closed { id, peer, reason } => eprintln!("#{id} {peer} closed: {reason}"),
    ///     _ => {}
    /// });
    /// # let _ = opts;
    /// ```
    pub fn on_event<F>(mut self, hook: F) -> Self
    where
        F: Fn(&ConnEvent<'_>) + Send + Sync + 'static,
    {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// How long [`send`](crate::Connection::send) waits for room in a full queue before it fails
    /// with `Timeout`.
    ///
    /// Defaults to 5 seconds.
    ///
    /// # Panics
    ///
    /// If `timeout` is zero (a zero socket timeout is an error in std).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "send timeout must be non-zero");
        self.send_timeout = timeout;
        self
    }

    /// The deadline of the graceful close that follows the peer's EOF: what is queued is flushed,
    /// then the socket closes; a peer that stops reading is cut off after this long. Also the
    /// deadline used when a server or client handle is dropped without `stop`.
    ///
    /// Defaults to 3 seconds.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Capacity in bytes of the connection's read buffer, made when the first byte arrives and
    /// given back when the peer has sent nothing for a second between two messages, so an idle
    /// connection costs no buffer. Only the pages the socket has filled take memory. Also the
    /// largest chunk the [`Raw`](crate::codec::Raw) codec returns.
    ///
    /// Defaults to 32 KiB (32 768 bytes).
    ///
    /// # Panics
    ///
    /// If `bytes` is zero.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "read buffer size must be at least 1");
        self.read_buffer = bytes;
        self
    }

    /// Stack size in bytes of each connection thread (reader and writer).
    ///
    /// Defaults to 128 KiB. Handlers run on the reader thread, so its stack must hold them:
    /// 128 KiB is twice what a plain echo loop needs (the `std-echo` peer runs in 64 KiB) and
    /// leaves room for ordinary handler code, while std's own default of 2 MiB would reserve
    /// 40 GiB of address space for 10 000 connections. Only touched pages cost memory, so the
    /// choice changes virtual size, not RSS. Raise it for handlers that recurse deeply or keep
    /// large arrays on the stack.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Sets `TCP_NODELAY`: small messages leave at once instead of waiting for Nagle's
    /// algorithm. The writer already batches whatever is queued into one write.
    ///
    /// Defaults to `true`.
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// Lets a send made on the connection's own reader thread (from a handler callback) write
    /// straight to the socket when nothing is queued, instead of handing the message to the
    /// writer thread: one syscall and no thread wake-up per reply, as muduo's `sendInLoop` and
    /// Netty's in-event-loop writes do. Order is kept: a message takes this path only when no
    /// earlier one is waiting. If the socket takes no byte for 50 ms (a slow peer), the message
    /// goes to the queue instead; if it has started but is not all out by the send's deadline,
    /// the writer thread finishes it. While more input is already buffered (pipelined
    /// requests), replies are gathered and written together just before the reader waits for
    /// input again.
    ///
    /// A `send` from any other thread (a caller, a timer, a broadcaster) takes the same path
    /// when nothing is queued and no other write is under way, but never waits for the socket
    /// (`MSG_DONTWAIT`): what the socket takes at once is written on the caller's thread with
    /// no thread wake-up; a message it takes nothing of is queued, and one it takes part of is
    /// finished by the writer thread. So a thread that sends to many connections never blocks
    /// on one slow peer while that peer's queue has room. `try_send` always queues.
    ///
    /// Defaults to `true`.
    pub fn write_through(mut self, on: bool) -> Self {
        self.write_through = on;
        self
    }

    /// How long a connection's writer thread waits with nothing to write before it ends.
    ///
    /// The writer thread is started by the first send that has to be queued (a send that is
    /// written through starts none). Once its queue has been empty for this long, it ends and
    /// its stack is given back; the next send that has to be queued starts another. So a
    /// connection that was busy once and is quiet now costs one thread, its reader, like one
    /// that never was. Starting a thread costs some tens of microseconds, paid at most once
    /// per quiet spell.
    ///
    /// If a new writer thread cannot be started (the process is at its thread limit), the
    /// send that needed it fails as [`SendError::Closed`](crate::SendError::Closed) and the
    /// connection closes with the error, as on its first queued send. Heartbeats and
    /// broadcasts start no writer when the socket takes them at once.
    ///
    /// Defaults to 1 s. A zero duration is taken as 1 ms.
    pub fn writer_quiet(mut self, quiet: Duration) -> Self {
        self.writer_quiet = quiet.max(Duration::from_millis(1));
        self
    }

    /// Sets the codec's largest frame in bytes (through
    /// [`Codec::set_max_frame_length`](crate::Codec::set_max_frame_length)).
    ///
    /// Defaults to the codec's own limit (1 MiB for [`LengthDelimited`](crate::codec::LengthDelimited),
    /// [`Tlv`](crate::codec::Tlv) and an [`Http1`](crate::http::Http1) body, 64 KiB for
    /// [`Lines`](crate::codec::Lines)); see [Memory](Self#memory) for what it costs.
    pub fn max_frame_length(mut self, bytes: usize) -> Self {
        self.max_frame_length = Some(bytes);
        self
    }

    /// The timing wheel that keeps this server's or client's deadlines.
    ///
    /// Defaults to the process-wide [`TimingWheel::global`].
    pub fn timing_wheel(mut self, wheel: TimingWheel) -> Self {
        self.wheel = Some(wheel);
        self
    }

    /// The configured queue bound in bytes.
    pub fn get_send_queue_bytes(&self) -> usize {
        self.queue_bytes
    }

    /// The configured send timeout.
    pub fn get_send_timeout(&self) -> Duration {
        self.send_timeout
    }

    /// The configured shutdown timeout.
    pub fn get_shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    pub(crate) fn high(&self) -> usize {
        self.high_watermark.unwrap_or(self.queue_bytes)
    }

    pub(crate) fn low(&self) -> usize {
        self.low_watermark
            .unwrap_or(self.high() / 2)
            .min(self.high())
    }

    /// What every server and client does before it serves: gives `codec` the frame limit of
    /// [`max_frame_length`](Self::max_frame_length), if set, and starts the global timing
    /// wheel if the connections will use it, so that its thread failing to start is an error
    /// here and not a panic on a thread that accepts or reads later.
    pub(crate) fn prepare_start<C: crate::codec::Codec>(
        &self,
        codec: &mut C,
    ) -> std::io::Result<()> {
        if let Some(max) = self.max_frame_length {
            codec.set_max_frame_length(max);
        }
        if self.wheel.is_none() {
            TimingWheel::try_global()?;
        }
        Ok(())
    }

    /// Calls the event hook, if any. A hook that panics is reported on stderr; the
    /// connection goes on as if it had returned.
    pub(crate) fn emit(&self, event: &ConnEvent<'_>) {
        if let Some(hook) = &self.on_event {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(event)));
            if let Err(payload) = result {
                eprintln!(
                    "threadnet: the event hook panicked: {}",
                    panic_message(payload.as_ref())
                );
            }
        }
    }

    pub(crate) fn wheel(&self) -> TimingWheel {
        self.wheel
            .clone()
            .unwrap_or_else(|| TimingWheel::global().clone())
    }
}

/// Idle timeouts and heartbeats.
impl ConnOptions {
    /// Closes a connection that has read nothing from its peer for `timeout` (Netty's
    /// reader-idle), with [`CloseReason::IdleTimeout`](crate::CloseReason::IdleTimeout) of
    /// [`IdleKind::Read`](crate::idle::IdleKind::Read), unless the [`on_idle`](Self::on_idle) hook keeps it. Off by default;
    /// [`Duration::ZERO`] turns it off.
    pub fn read_idle(mut self, timeout: Duration) -> Self {
        self.idle.read = non_zero(timeout);
        self
    }

    /// As [`read_idle`](Self::read_idle), for a connection that has written nothing for
    /// `timeout` ([`IdleKind::Write`](crate::idle::IdleKind::Write)). Off by default; [`Duration::ZERO`] turns it off.
    pub fn write_idle(mut self, timeout: Duration) -> Self {
        self.idle.write = non_zero(timeout);
        self
    }

    /// As [`read_idle`](Self::read_idle), for a connection that has neither read nor written
    /// for `timeout` ([`IdleKind::All`](crate::idle::IdleKind::All)). Off by default; [`Duration::ZERO`] turns it off.
    pub fn all_idle(mut self, timeout: Duration) -> Self {
        self.idle.all = non_zero(timeout);
        self
    }

    /// The longest one message may take to arrive once its first byte has: a connection
    /// whose peer has started a frame (an HTTP head, a RESP command, a length-delimited
    /// frame) and not finished it within `timeout` is closed with
    /// [`CloseReason::IdleTimeout`](crate::CloseReason::IdleTimeout) of [`IdleKind::Frame`](crate::idle::IdleKind::Frame),
    /// unless the [`on_idle`](Self::on_idle) hook keeps it. [`Duration::ZERO`] turns it off.
    ///
    /// It is what stops a *slowloris* peer: one that trickles a frame a byte at a time, so
    /// that [`read_idle`](Self::read_idle) never fires, and holds a connection (a thread and a
    /// read buffer) for as long as it likes. Time between frames does not count: a peer may
    /// pause as long as the other limits allow, and a handler may take as long as it needs.
    /// A message read in parts (a WebSocket message's fragments) counts whole, from its first
    /// byte to its last, whatever control messages (pings) come between
    /// ([`Codec::mid_message`](crate::Codec::mid_message)).
    ///
    /// Defaults to 30 seconds ([`DEFAULT_FRAME_TIMEOUT`](crate::idle::DEFAULT_FRAME_TIMEOUT)), on,
    /// so that a server is protected without its author knowing of the attack: nginx closes
    /// a client that has not sent its request head within `client_header_timeout` (60 s by
    /// default), and Apache's `mod_reqtimeout` allows 20 s for the head, extended up to
    /// 40 s while the client sends at least 500 bytes per second. 30 s sits between them and
    /// lets a 1 MiB frame (the default frame limit) arrive at 35 KB/s. A peer that sends
    /// huge frames over a very slow link needs a longer timeout (or none).
    ///
    /// Only the stream transports (TCP, Unix) keep it: a UDP datagram is whole when it comes.
    pub fn frame_timeout(mut self, timeout: Duration) -> Self {
        self.idle.frame = non_zero(timeout);
        self
    }

    /// The configured frame timeout; `None` when it is off. See
    /// [`frame_timeout`](Self::frame_timeout).
    pub fn get_frame_timeout(&self) -> Option<Duration> {
        self.idle.frame
    }

    /// Sends `heartbeat`'s message whenever the connection has written nothing for its
    /// interval, and closes it ([`IdleKind::Heartbeat`](crate::idle::IdleKind::Heartbeat)) when the peer has sent nothing for
    /// `misses` intervals. Works the same on servers and clients. Off by default.
    ///
    /// A heartbeat that finds the send queue full is skipped (the connection is not idle).
    pub fn heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.idle.heartbeat = Some(heartbeat);
        self
    }

    /// Decides what an idle limit does: `hook` gets each [`IdleEvent`](crate::idle::IdleEvent) and returns
    /// [`IdleAction::Close`](crate::idle::IdleAction::Close) (the default without a hook) or [`IdleAction::Keep`](crate::idle::IdleAction::Keep).
    ///
    /// The hook runs on the timing wheel's thread, so it must be short; to act on the
    /// connection (send a probe, log), look it up by `event.id` in
    /// [`ServerHandle::connections`](crate::ServerHandle::connections).
    pub fn on_idle<F>(mut self, hook: F) -> Self
    where
        F: Fn(IdleEvent) -> IdleAction + Send + Sync + 'static,
    {
        self.idle.hook = Some(Arc::new(hook));
        self
    }
}
