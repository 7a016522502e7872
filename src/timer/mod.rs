//! A hierarchical timing wheel: every deadline of a process on one thread.
//!
//! Connections need many deadlines — send timeouts, shutdown deadlines, idle timeouts,
//! heartbeats, the user's own timers — and almost all of them are cancelled before they expire.
//! A thread per timer would leak threads (redisson #239), and a binary heap (Tao's and muduo's
//! timer queues) costs `O(log n)` per schedule and per cancel. A [`TimingWheel`] does both in
//! `O(1)` and serves every deadline from one thread.
//!
//! # The hierarchical wheel
//!
//! Time advances in **ticks** of a fixed length (1 ms for [`TimingWheel::global`]), counted
//! from the moment the wheel started. The wheel has six levels of 64 **slots**; a slot of level
//! `l` spans `64^l` ticks:
//!
//! ```text
//!  level 0  │0│1│2│…│63│   1 tick per slot          the next 64 ms
//!  level 1  │0│1│2│…│63│   64 ticks per slot        the next 4 s
//!  level 2  │0│1│2│…│63│   4 096 ticks per slot     the next 4.4 min
//!  level 3  │0│1│2│…│63│   262 144 ticks per slot   the next 4.7 h
//!  level 4  │0│1│2│…│63│   16.7 M ticks per slot    the next 12.4 days
//!  level 5  │0│1│2│…│63│   1.07 G ticks per slot    the next 795 days (at 1 ms)
//! ```
//!
//! A timer goes to the lowest level whose span reaches its deadline, in the slot its deadline
//! names. When time reaches a slot of a higher level, its timers **cascade**: each moves to a
//! lower level, nearer its deadline, until level 0 fires it. So:
//!
//! * **schedule** is a few shifts and a push onto one slot's list: `O(1)`, for a deadline one
//!   tick or two years away alike (later deadlines wait in the top level and are placed again);
//! * **cancel** finds the timer by its id (a slab index and a generation, no hash map) and
//!   removes it from its slot by `swap_remove`: `O(1)`;
//! * a timer cascades at most five times in its life;
//! * **the next deadline** is found with one 64-bit **occupancy bitmap** per level (a rotate and
//!   a trailing-zeros count), so the thread sleeps until exactly then, and an idle wheel does
//!   not wake at all.
//!
//! This is scheme 7 of G. Varghese and T. Lauck, *Hashed and Hierarchical Timing Wheels: Data
//! Structures for the Efficient Implementation of a Timer Facility* (SOSP 1987), with the
//! geometry of tokio's timer (6 levels × 64 slots) and the bitmaps of Linux's `timer_list`.
//! A pending timer costs about 48 bytes of wheel memory (a 40-byte slab entry and its index in
//! a slot) plus its boxed closure.
//!
//! # Accuracy
//!
//! * A timer **never fires early**: its deadline is rounded *up* to the next tick boundary, and
//!   a tick is processed only once the clock has passed it.
//! * It normally fires no later than its deadline plus one tick plus the operating system's
//!   scheduling noise (`cargo bench --bench timer` measures the real spread).
//! * A slow callback delays later timers; they then fire late, never skipped, in deadline
//!   order. Timers due on the same tick fire in the order they were scheduled, as long as
//!   they were placed on the same level.
//!
//! # Repeating timers
//!
//! [`TimingWheel::every`] is **drift-free**: the `n`-th run is due at `start + n × interval`,
//! computed in nanoseconds, never "now + interval", so rounding and callback time do not add up.
//! When a run is late by more than a period (a callback overran, the machine stalled), the
//! periods that passed are **skipped, not burst**: the next run is the first `start + n ×
//! interval` still in the future. An interval shorter than a tick runs at most once per tick.
//!
//! # Callbacks must be short
//!
//! Callbacks run one after another on the wheel's thread, which every user of the wheel shares
//! (the whole process, for the global wheel). A callback that blocks delays every other timer.
//! Do something quick — send on a channel, set a flag, close a connection — and hand long work to
//! another thread.
//!
//! A callback runs *outside* the wheel's lock, so it may schedule or cancel timers, itself
//! included. A callback that panics is reported on stderr (naming the wheel and the timer) and
//! the wheel goes on; a repeating timer whose callback panics is not run again.
//!
//! # Testing without waiting
//!
//! [`TimingWheel::manual`] builds a wheel on a [`ManualClock`]: no thread, and time moves only
//! when the test calls [`ManualClock::advance`], which fires whatever comes due on the test's
//! own thread. It is the same wheel and the same firing code as the real one, only the clock
//! differs, so timeout logic is tested deterministically and in microseconds. Give it to a
//! server or client with [`ConnOptions::timing_wheel`](crate::ConnOptions::timing_wheel) and
//! their idle timeouts, heartbeats and connection timers run on it too.
//!
//! # Lifecycle
//!
//! [`TimingWheel::new`] starts a private wheel with its own thread; the thread stops when
//! [`TimingWheel::stop`] is called or when the last handle is dropped. A callback that holds a
//! handle to its own wheel keeps the wheel alive until it has fired or been cancelled.
//! [`TimingWheel::global`] is started on first use and lives as long as the process.
//!
//! # Example
//!
//! ```
//! use std::sync::mpsc;
//! use std::time::Duration;
//! use threadnet::TimingWheel;
//!
//! let wheel = TimingWheel::new(Duration::from_millis(1));
//! let (tx, rx) = mpsc::channel();
//!
//! // Fires on the wheel's thread, 20 ms from now (never earlier).
//! wheel.after(Duration::from_millis(20), move || {
//!     let _ = tx.send("ding");
//! });
//! // A deadline that is cancelled before it expires: the usual fate of a timeout.
//! let timeout = wheel.after(Duration::from_secs(60), || unreachable!());
//!
//! assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("ding"));
//! assert_eq!(wheel.len(), 1);
//! assert!(wheel.cancel(timeout));
//! assert!(!wheel.cancel(timeout)); // already cancelled
//! assert!(wheel.is_empty());
//! assert_eq!(wheel.stop(), 0); // joins the thread; dropping `wheel` would too
//! ```

mod driver;
mod id;
mod wheel;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub(crate) use driver::nanos;
use driver::{ClockKind, Every, Once, Period, Shared, When};
pub use id::TimerId;

/// Tick of the global wheel: 1 ms. The wheel sleeps until its next deadline, so a fine tick
/// costs nothing while timers wait; it only bounds how late a timer may fire.
const GLOBAL_TICK: Duration = Duration::from_millis(1);

/// Name of every wheel thread.
const THREAD_NAME: &str = "threadnet-timer";

/// A hierarchical timing wheel driven by its own thread: runs callbacks at a deadline, once or
/// periodically.
///
/// Six levels of 64 slots with occupancy bitmaps (Varghese & Lauck 1987, scheme 7): every
/// operation is `O(1)` whatever the number of pending timers, and the thread sleeps until the
/// next deadline. See the [module docs](crate::timer) for the design, the accuracy and the
/// repeat policy.
///
/// A handle: cloning is cheap and every clone drives the same wheel. Most code should use the
/// process-wide [`TimingWheel::global`]. A private wheel ([`TimingWheel::new`]) owns a thread,
/// which stops when [`stop`](TimingWheel::stop) is called or the last handle is dropped. Tests
/// use [`TimingWheel::manual`], which has no thread at all.
///
/// # Callbacks must be short
///
/// Callbacks run one at a time on the wheel's thread, shared by every user of the wheel: a
/// callback that blocks delays every other timer. Send on a channel, set a flag or close a
/// connection, and hand long work to another thread. Callbacks run outside the wheel's lock, so
/// they may schedule and cancel timers (themselves included). A panicking callback is reported
/// on stderr and the wheel goes on.
///
/// # Example
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use threadnet::TimingWheel;
///
/// let (tx, rx) = mpsc::channel();
/// let wheel = TimingWheel::global();
/// wheel.after(Duration::from_millis(30), move || {
///     let _ = tx.send("timeout");
/// });
/// assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("timeout"));
/// ```
#[derive(Clone)]
pub struct TimingWheel {
    inner: Arc<Inner>,
}

impl TimingWheel {
    /// Starts a private wheel with its own thread (named `threadnet-timer`) and a resolution of
    /// `tick`.
    ///
    /// Deadlines are rounded up to a multiple of `tick`, and a timer fires up to one tick late.
    /// The thread sleeps until the next deadline, so a small tick costs nothing while timers
    /// wait; 1 ms suits network timeouts.
    ///
    /// # Panics
    ///
    /// If `tick` is zero, or if the operating system cannot spawn the thread.
    pub fn new(tick: Duration) -> TimingWheel {
        let seq = WHEEL_SEQ.fetch_add(1, Ordering::Relaxed);
        TimingWheel::start(tick, format!("timing wheel #{seq}"))
    }

    /// The process-wide wheel, with a 1 ms tick, started on first use and never stopped.
    ///
    /// Every part of the crate that needs a deadline uses it unless told otherwise, so a process
    /// has one timer thread however many servers, clients and connections it runs.
    ///
    /// # Panics
    ///
    /// On first use, if the operating system cannot spawn the thread; see
    /// [`try_global`](Self::try_global) for the error instead.
    pub fn global() -> &'static TimingWheel {
        TimingWheel::try_global().expect("TimingWheel: cannot spawn the timer thread")
    }

    /// The process-wide wheel, as [`global`](Self::global), started now if it is not yet.
    /// Servers and clients call it as they start, so that a wheel that cannot start is their
    /// start's error rather than a panic on one of their threads later.
    ///
    /// # Errors
    ///
    /// The operating system cannot spawn the wheel's thread (out of threads or memory). Nothing
    /// is kept: a later call tries again.
    pub fn try_global() -> io::Result<&'static TimingWheel> {
        static GLOBAL: OnceLock<TimingWheel> = OnceLock::new();
        static STARTING: Mutex<()> = Mutex::new(());
        if let Some(wheel) = GLOBAL.get() {
            return Ok(wheel);
        }
        // One thread starts it; the others wait here and find it started.
        let _one = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(wheel) = GLOBAL.get() {
            return Ok(wheel);
        }
        let wheel = TimingWheel::try_start(GLOBAL_TICK, "the global timing wheel".to_owned())?;
        Ok(GLOBAL.get_or_init(|| wheel))
    }

    /// A wheel on a manual clock, for tests: no thread, and time stands still until
    /// [`ManualClock::advance`] moves it and fires what came due, on the caller's thread.
    ///
    /// The wheel's clock starts at the [`Instant`] this is called; [`TimingWheel::now`] and
    /// [`ManualClock::now`] read it.
    ///
    /// # Panics
    ///
    /// If `tick` is zero.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// use std::time::Duration;
    /// use threadnet::TimingWheel;
    ///
    /// let (wheel, clock) = TimingWheel::manual(Duration::from_millis(1));
    /// let runs = Arc::new(AtomicU32::new(0));
    /// let r = runs.clone();
    /// wheel.every(Duration::from_secs(1), move || { r.fetch_add(1, Ordering::SeqCst); });
    ///
    /// clock.advance(Duration::from_millis(999));
    /// assert_eq!(runs.load(Ordering::SeqCst), 0); // never early
    /// clock.advance(Duration::from_secs(3600)); // an hour in a few microseconds
    /// assert_eq!(runs.load(Ordering::SeqCst), 3600);
    /// ```
    pub fn manual(tick: Duration) -> (TimingWheel, ManualClock) {
        let seq = WHEEL_SEQ.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared::new(
            tick,
            ClockKind::Manual,
            format!("manual timing wheel #{seq}"),
        ));
        let clock = ManualClock {
            shared: Arc::clone(&shared),
        };
        let wheel = TimingWheel {
            inner: Arc::new(Inner {
                shared,
                thread: Mutex::new(None),
            }),
        };
        (wheel, clock)
    }

    fn start(tick: Duration, label: String) -> TimingWheel {
        TimingWheel::try_start(tick, label).expect("TimingWheel: cannot spawn the timer thread")
    }

    fn try_start(tick: Duration, label: String) -> io::Result<TimingWheel> {
        let shared = Arc::new(Shared::new(tick, ClockKind::Real, label));
        let driver = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || driver.run_thread())?;
        Ok(TimingWheel {
            inner: Arc::new(Inner {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Runs `f` once, `after` from now (never earlier), on the wheel's thread.
    ///
    /// [`Duration::ZERO`] means "as soon as the wheel gets to it". `f` must be short: it runs on
    /// the wheel's thread, which other timers share. It may schedule and cancel timers. If `f`
    /// panics, the panic is reported on stderr and the wheel goes on.
    ///
    /// On a stopped wheel the returned id never fires and `f` is dropped at once.
    pub fn after<F: FnOnce() + Send + 'static>(&self, after: Duration, f: F) -> TimerId {
        self.after_id(after, move |_| f())
    }

    /// Runs `f` once at `at` (never earlier), on the wheel's thread; an instant in the past
    /// means "as soon as the wheel gets to it". Otherwise as [`after`](TimingWheel::after).
    ///
    /// `at` is read on this wheel's clock: for a [manual](TimingWheel::manual) wheel, relative
    /// to [`TimingWheel::now`].
    pub fn at<F: FnOnce() + Send + 'static>(&self, at: Instant, f: F) -> TimerId {
        self.at_nanos_id(self.inner.shared.nanos_of(at), move |_| f())
    }

    /// Runs `f` every `interval`, first `interval` from now, until the timer is cancelled or
    /// the wheel stops. The returned id stays valid for every run.
    ///
    /// Drift-free: run `n` is due at `start + n × interval` exactly. Runs that were missed (a
    /// callback or the machine was late by more than a period) are skipped, not run in a burst.
    /// An `interval` below one tick (zero included) runs once per tick. A callback that panics
    /// is reported and not run again.
    pub fn every<F: FnMut() + Send + 'static>(&self, interval: Duration, f: F) -> TimerId {
        let interval = nanos(interval).max(1);
        let every = Every {
            period: Period {
                interval,
                deadline: 0, // set by schedule
            },
            f,
        };
        self.inner
            .shared
            .schedule(When::In(interval), Box::new(every))
    }

    /// Cancels a timer: it will not run (again), and its callback is dropped.
    ///
    /// Returns `true` only if that prevented a run: `false` if a one-shot timer has already
    /// fired or started to (a one-shot callback cancelling itself gets `false`; a repeating one
    /// gets `true` and is not run again), was cancelled before, or was scheduled on a stopped
    /// wheel.
    pub fn cancel(&self, id: TimerId) -> bool {
        self.inner.shared.cancel(id)
    }

    /// Number of pending timers: scheduled and not yet fired (a repeating timer counts until it
    /// is cancelled), not cancelled.
    pub fn len(&self) -> usize {
        self.inner.shared.lock().wheel.len()
    }

    /// `true` if no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The wheel's resolution, as given when it was made (1 ms for the global wheel).
    pub fn tick(&self) -> Duration {
        self.inner.shared.tick
    }

    /// The wheel's clock: [`Instant::now`] for a real wheel, the manual clock's reading for a
    /// [manual](TimingWheel::manual) one.
    pub fn now(&self) -> Instant {
        self.inner.shared.now()
    }

    /// Stops the wheel and joins its thread (after the callback it may be running).
    ///
    /// Pending callbacks are dropped without running; returns how many timers never ran again
    /// (a repeating timer counts once). Idempotent: a second call returns 0. Afterwards
    /// [`after`](TimingWheel::after) and the others return ids that never fire. Called from a
    /// callback of this wheel, it does not wait for the thread (which exits once the callback
    /// returns).
    ///
    /// Stopping the [global](TimingWheel::global) wheel is allowed but a bad idea: it cannot be
    /// restarted, and every later deadline in the process would silently never fire. The same
    /// holds for the connections of a server or client given this wheel
    /// ([`ConnOptions::timing_wheel`](crate::ConnOptions::timing_wheel)): their shutdown
    /// deadlines, idle limits and timers stop working, so stop such a wheel only after them.
    pub fn stop(&self) -> usize {
        self.inner.stop()
    }
}

/// Crate-internal scheduling: callbacks told their own id, and instants as nanoseconds since
/// the wheel's origin (what connection activity is recorded in).
impl TimingWheel {
    /// As [`after`](TimingWheel::after), for a callback that takes its own id.
    pub(crate) fn after_id<F: FnOnce(TimerId) + Send + 'static>(
        &self,
        after: Duration,
        f: F,
    ) -> TimerId {
        let when = When::In(nanos(after));
        self.inner.shared.schedule(when, Box::new(Once(f)))
    }

    /// As [`at`](TimingWheel::at), at `nanos` since the wheel's origin.
    pub(crate) fn at_nanos_id<F: FnOnce(TimerId) + Send + 'static>(
        &self,
        nanos: u64,
        f: F,
    ) -> TimerId {
        self.inner
            .shared
            .schedule(When::At(nanos), Box::new(Once(f)))
    }

    /// Nanoseconds since the wheel's origin on its clock: no lock on a real wheel.
    pub(crate) fn now_nanos(&self) -> u64 {
        let shared = &self.inner.shared;
        match shared.clock {
            ClockKind::Real => shared.nanos_of(Instant::now()),
            ClockKind::Manual => shared.now_nanos(&shared.lock()),
        }
    }

    /// Nanoseconds since the wheel's origin of `at`.
    pub(crate) fn nanos_of(&self, at: Instant) -> u64 {
        self.inner.shared.nanos_of(at)
    }
}

impl fmt::Debug for TimingWheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimingWheel")
            .field("label", &self.inner.shared.label)
            .field("tick", &self.inner.shared.tick)
            .field("len", &self.len())
            .finish()
    }
}

/// The clock of a [manual](TimingWheel::manual) wheel: time moves only when
/// [`advance`](ManualClock::advance) is called.
#[derive(Clone)]
pub struct ManualClock {
    shared: Arc<Shared>,
}

impl ManualClock {
    /// Moves the clock forward by `by` and runs, on the calling thread, every callback that
    /// comes due, in deadline order. It stops at each due tick on the way, so each callback
    /// sees the clock at its own deadline, a repeating timer runs once per period, and timers
    /// scheduled by callbacks within the span run too.
    ///
    /// # Panics
    ///
    /// Never itself; a callback's panic is caught and reported as on a real wheel.
    pub fn advance(&self, by: Duration) {
        self.shared.advance(by);
    }

    /// The clock's reading.
    pub fn now(&self) -> Instant {
        self.shared.now()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("label", &self.shared.label)
            .finish()
    }
}

/// Numbers private wheels, for their label in panic reports.
static WHEEL_SEQ: AtomicU64 = AtomicU64::new(1);

/// What every handle shares. Its drop (the last handle going away) stops the thread.
///
/// The thread holds only [`Shared`], never `Inner`, so the handles alone decide its lifetime.
struct Inner {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    fn stop(&self) -> usize {
        let count = self.shared.stop();
        let handle = {
            let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
            let on_wheel_thread = thread
                .as_ref()
                .is_some_and(|h| h.thread().id() == thread::current().id());
            if on_wheel_thread {
                // A callback stopping its own wheel: joining would wait for ourselves. The
                // thread exits when the callback returns; a later stop from elsewhere joins it.
                None
            } else {
                thread.take()
            }
        };
        if let Some(handle) = handle {
            // The thread catches callback panics, so an error here means a bug in this module;
            // stop also runs from Drop, where a panic would be worse than ignoring it.
            let _ = handle.join();
        }
        count
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // If the last handle dies on the wheel thread (inside a callback), stop does not join,
        // and the JoinHandle dropped with `self` detaches the exiting thread.
        self.stop();
    }
}

#[cfg(test)]
mod tests;
