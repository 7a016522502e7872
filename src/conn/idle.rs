//! Idle timeouts and heartbeats: Netty's `IdleStateHandler`, and Tao's and tnet's heartbeat,
//! driven by the timing wheel.
//!
//! # How activity is tracked
//!
//! The reader records the wheel clock after each read from the socket, and the writer (or
//! write-through) after each write: one atomic store and one clock read per *system call*, not
//! per message, and nothing at all unless an idle option is set (writes only for a limit on
//! writes: write-idle, all-idle, a heartbeat). No timer is touched on activity.
//!
//! One wheel timer per connection does the checking (Netty's design): when it fires it
//! compares the last activity with each limit; a limit that has passed raises its event, and
//! the timer is set again for the earliest moment a limit could next pass — `last activity +
//! limit`, not "now + limit", so a connection that stays busy costs one timer run per limit
//! period and no more.
//!
//! # The frame timeout
//!
//! The reader also notes when the current frame began: on the first socket read while no
//! frame is in progress (one more relaxed load, and no extra clock read, on a read). A
//! finished message with nothing buffered after it ends the frame, unless the codec says it
//! came from between the parts of a message still in progress ([`Codec::mid_message`]: a
//! WebSocket ping between fragments), whose clock runs on. The same check timer
//! compares that start with [`ConnOptions::frame_timeout`](crate::ConnOptions::frame_timeout);
//! between frames it looks again one limit later, so a connection costs one timer run per
//! limit period, never a timer per message.
//!
//! A message returned while bytes of the next one are already buffered leaves that frame
//! *pending*: begun, but not waiting on the peer, since whatever the codec reads of it comes
//! from the buffer (a pipelined batch is parsed and handled with no clock read per message).
//! Its clock starts only if the reader has to read the socket to finish it: the reader reads
//! the clock then, once, before it blocks ([`Core::frame_waits`]). The peer's time is what is
//! counted, exactly: from the moment the reader waits on it for the rest of a frame. The check
//! timer treats a pending frame as between frames (it looks again one limit later; a clock
//! started after it looked is due after that).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::codec::Codec;
use crate::timer::TimingWheel;

/// Which silence an idle event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdleKind {
    /// Nothing was read from the peer for [`ConnOptions::read_idle`](crate::ConnOptions::read_idle).
    Read,
    /// Nothing was written to the peer for [`ConnOptions::write_idle`](crate::ConnOptions::write_idle).
    Write,
    /// Nothing was read or written for [`ConnOptions::all_idle`](crate::ConnOptions::all_idle).
    All,
    /// The peer sent nothing for `misses` heartbeat intervals ([`ConnOptions::heartbeat`](crate::ConnOptions::heartbeat)):
    /// it is presumed dead.
    Heartbeat,
    /// One message took longer than [`ConnOptions::frame_timeout`](crate::ConnOptions::frame_timeout) to arrive once its first
    /// byte had: a peer trickling a frame (slowloris), which read-idle limits never catch.
    Frame,
}

impl fmt::Display for IdleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdleKind::Read => "nothing read",
            IdleKind::Write => "nothing written",
            IdleKind::All => "nothing read or written",
            IdleKind::Heartbeat => "peer missed its heartbeats",
            IdleKind::Frame => "a message took too long to arrive",
        })
    }
}

/// An idle limit passed on a connection; given to the [`ConnOptions::on_idle`](crate::ConnOptions::on_idle) hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleEvent {
    /// The connection's [`id`](crate::Connection::id).
    pub id: u64,
    /// Which limit passed.
    pub kind: IdleKind,
    /// How long the connection has been idle in that sense.
    pub idle: Duration,
}

/// What to do about an [`IdleEvent`]; see [`ConnOptions::on_idle`](crate::ConnOptions::on_idle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    /// Close the connection now, with [`CloseReason::IdleTimeout`](crate::CloseReason::IdleTimeout).
    Close,
    /// Keep it open. If the silence goes on, the event comes again one limit later.
    Keep,
}

/// The hook of [`ConnOptions::on_idle`](crate::ConnOptions::on_idle).
pub type IdleHook = Arc<dyn Fn(IdleEvent) -> IdleAction + Send + Sync>;

/// A heartbeat: a message sent whenever the connection has written nothing for `interval`, and
/// a limit on the peer's silence of `misses` intervals (Tao's and tnet's keep-alive).
///
/// The message is given encoded, so one option serves any codec: build it with
/// [`Heartbeat::encode`] from a message of your codec. The peer receives it as an ordinary
/// message; protocols usually reserve one for this (a `PING` line, TLV type 0).
///
/// ```
/// use std::time::Duration;
/// use threadnet::{codec::Lines, idle::Heartbeat, ConnOptions};
///
/// let beat = Heartbeat::encode(&Lines::new(), &"PING".to_string(), Duration::from_secs(10))
///     .unwrap()
///     .misses(3); // closed after 30 s without a byte from the peer
/// let opts = ConnOptions::new().heartbeat(beat);
/// # let _ = opts;
/// ```
#[derive(Clone, Debug)]
pub struct Heartbeat {
    pub(crate) interval: Duration,
    pub(crate) message: Arc<[u8]>,
    pub(crate) misses: u32,
}

impl Heartbeat {
    /// A heartbeat of the already encoded `message`, sent after `interval` without writes; the
    /// peer may stay silent for 3 intervals.
    ///
    /// # Panics
    ///
    /// If `interval` is zero.
    pub fn new(interval: Duration, message: impl Into<Vec<u8>>) -> Heartbeat {
        assert!(
            !interval.is_zero(),
            "Heartbeat: the interval must not be zero"
        );
        Heartbeat {
            interval,
            message: message.into().into(),
            misses: 3,
        }
    }

    /// A heartbeat of `message`, encoded once here with `codec`; see [`Heartbeat::new`].
    ///
    /// # Errors
    ///
    /// The codec's error if it cannot encode `message`.
    ///
    /// # Panics
    ///
    /// If `interval` is zero.
    pub fn encode<C: Codec>(
        codec: &C,
        message: &C::Out,
        interval: Duration,
    ) -> std::io::Result<Heartbeat> {
        let mut bytes = Vec::new();
        codec.write(message, &mut bytes)?;
        Ok(Heartbeat::new(interval, bytes))
    }

    /// How many intervals the peer may stay silent (send not a byte) before the connection is
    /// closed with [`IdleKind::Heartbeat`]. Defaults to 3; at least 1.
    pub fn misses(mut self, intervals: u32) -> Heartbeat {
        self.misses = intervals.max(1);
        self
    }
}

/// The default of [`ConnOptions::frame_timeout`](crate::ConnOptions::frame_timeout): 30 seconds.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// The idle part of [`ConnOptions`](crate::ConnOptions).
#[derive(Clone)]
pub(crate) struct IdleOptions {
    pub(crate) read: Option<Duration>,
    pub(crate) write: Option<Duration>,
    pub(crate) all: Option<Duration>,
    pub(crate) frame: Option<Duration>,
    pub(crate) heartbeat: Option<Heartbeat>,
    pub(crate) hook: Option<IdleHook>,
}

impl Default for IdleOptions {
    fn default() -> Self {
        IdleOptions {
            read: None,
            write: None,
            all: None,
            frame: Some(DEFAULT_FRAME_TIMEOUT),
            heartbeat: None,
            hook: None,
        }
    }
}

impl IdleOptions {
    /// A limit that compares the last write with the clock: write-idle, all-idle, heartbeat.
    #[inline]
    pub(crate) fn watches_writes(&self) -> bool {
        self.write.is_some() || self.all.is_some() || self.heartbeat.is_some()
    }

    pub(crate) fn enabled(&self) -> bool {
        self.read.is_some()
            || self.write.is_some()
            || self.all.is_some()
            || self.frame.is_some()
            || self.heartbeat.is_some()
    }
}

impl fmt::Debug for IdleOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleOptions")
            .field("read", &self.read)
            .field("write", &self.write)
            .field("all", &self.all)
            .field("frame", &self.frame)
            .field("heartbeat", &self.heartbeat)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

/// A limit of zero means no limit (a zero limit would fire on every tick).
pub(crate) fn non_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// No frame in progress, in [`Activity::frame`].
const NO_FRAME: u64 = u64::MAX;
/// A frame begun in the buffer and not waiting on the peer yet, in [`Activity::frame`]: its
/// clock starts when the reader reads the socket for the rest.
const PENDING: u64 = u64::MAX - 1;

/// When the socket was last read and written, and when the frame being read began, in
/// nanoseconds since the wheel's origin: the activity part of a connection. Its drivers note
/// reads, writes and frame boundaries here; [`check`] reads it.
pub(crate) struct Activity {
    /// Some idle option is set: reads and writes are noted.
    tracked: bool,
    /// The frame timeout is set.
    framed: bool,
    /// A limit watches writes (write-idle, all-idle, heartbeat): writes read the clock.
    writes: bool,
    wheel: TimingWheel,
    read: AtomicU64,
    write: AtomicU64,
    /// When the frame being read began, [`NO_FRAME`] or [`PENDING`]; kept only by a stream
    /// reader ([`frames`](Self::frames)).
    frame: AtomicU64,
    /// A stream reader keeps `frame`: the frame timeout applies.
    frames: AtomicBool,
}

impl Activity {
    /// The activity of a connection with the idle options `opts`, on `wheel`'s clock.
    pub(crate) fn new(opts: &IdleOptions, wheel: TimingWheel) -> Activity {
        Activity {
            tracked: opts.enabled(),
            framed: opts.frame.is_some(),
            writes: opts.watches_writes(),
            wheel,
            read: AtomicU64::new(0),
            write: AtomicU64::new(0),
            frame: AtomicU64::new(NO_FRAME),
            frames: AtomicBool::new(false),
        }
    }

    /// Bytes came from the socket.
    pub(crate) fn note_read(&self) {
        if self.tracked {
            self.read.store(self.wheel.now_nanos(), Ordering::Relaxed);
        }
    }

    /// Bytes went to the socket. Only a limit on writes needs the time (the frame timeout,
    /// on by default, does not): without one, no clock read per write.
    pub(crate) fn note_write(&self) {
        if self.tracked && self.writes {
            self.write.store(self.wheel.now_nanos(), Ordering::Relaxed);
        }
    }

    /// The stream reader read bytes (after [`note_read`](Self::note_read)): if no frame was
    /// in progress, one begins now.
    pub(crate) fn frame_bytes(&self) {
        if self.framed && self.frame.load(Ordering::Relaxed) == NO_FRAME {
            self.frame
                .store(self.read.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// A message was handled with bytes of the next frame already buffered: that frame is
    /// pending. No clock read: its clock starts in [`frame_waits`](Self::frame_waits), if
    /// the reader has to wait for the rest.
    pub(crate) fn frame_pending(&self) {
        if self.framed {
            self.frame.store(PENDING, Ordering::Relaxed);
        }
    }

    /// The stream reader is about to read the socket (and may block there): a pending frame's
    /// clock starts now.
    #[inline]
    pub(crate) fn frame_waits(&self) {
        if self.framed && self.frame.load(Ordering::Relaxed) == PENDING {
            self.frame.store(self.wheel.now_nanos(), Ordering::Relaxed);
        }
    }

    /// The codec returned a message: the frame is over. (If bytes of the next frame are
    /// already buffered, the driver marks it [pending](Self::frame_pending) once the handler
    /// is done: the time a handler takes is not the peer's.)
    pub(crate) fn frame_done(&self) {
        if self.framed {
            self.frame.store(NO_FRAME, Ordering::Relaxed);
        }
    }

    /// The connection counts as active `now`, if any idle option watches it: `false` if none
    /// does (then nothing needs a timer).
    pub(crate) fn start(&self, now: u64) -> bool {
        if self.tracked {
            self.read.store(now, Ordering::Relaxed);
            self.write.store(now, Ordering::Relaxed);
        }
        self.tracked
    }

    /// Makes the frame timeout apply: called for a stream reader, which keeps the start of
    /// each frame.
    pub(crate) fn watch_frames(&self) {
        self.frames.store(true, Ordering::Relaxed);
    }

    /// When the socket was last read and last written (nanoseconds since the wheel's origin).
    pub(crate) fn last_read_and_write(&self) -> (u64, u64) {
        (
            self.read.load(Ordering::Relaxed),
            self.write.load(Ordering::Relaxed),
        )
    }

    /// The frame the frame timeout watches: `Some(Some(start))` for one waiting on the peer
    /// since `start`, `Some(None)` between frames (or a frame not waiting on the peer yet),
    /// `None` where the frame timeout does not apply (a datagram).
    pub(crate) fn frame(&self) -> Option<Option<u64>> {
        if !self.frames.load(Ordering::Relaxed) {
            return None;
        }
        Some(match self.frame.load(Ordering::Relaxed) {
            NO_FRAME | PENDING => None,
            start => Some(start),
        })
    }

    /// A heartbeat went out at `now`: it counts as written (the writer notes it again when it
    /// writes it), so that it is not sent twice.
    pub(crate) fn beat_sent(&self, now: u64) {
        self.write.store(now, Ordering::Relaxed);
    }
}
