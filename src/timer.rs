//! A hashed timing wheel: every deadline of a process on one thread.
//!
//! Connections need many deadlines — send timeouts, shutdown deadlines, idle timeouts,
//! heartbeats — and almost all of them are cancelled before they expire. A thread per timer
//! would leak threads (redisson #239) and a binary heap costs `O(log n)` per schedule and per
//! cancel. A [`TimingWheel`] does both in `O(1)` and serves every deadline from one thread.
//!
//! # The hashed wheel
//!
//! Time advances in fixed **ticks** (10 ms for [`TimingWheel::global`]), counted from the
//! [`Instant`] the wheel started. The wheel is a circular array of 512 **slots**; tick `t` belongs
//! to slot `t & 511`. A timer due at tick `d` is put in slot `d & 511` together with its
//! **rounds**: how many full revolutions of the wheel must pass before it is due,
//! `(d - current_tick) / 512`.
//!
//! ```text
//!            current tick
//!                 │
//!   slot:   0  1  2  3  4  5   …  511
//!         ┌──┬──┬──┬──┬──┬──┬───┬──┐
//!         │  │  │▲ │  │  │  │ … │  │   slot 2 holds {id 7: rounds 0, id 9: rounds 3}
//!         └──┴──┴──┴──┴──┴──┴───┴──┘
//! ```
//!
//! The wheel's thread wakes once per tick and visits exactly one slot: entries with rounds 0
//! are due and fire, the others lose one round and wait for the next revolution. So:
//!
//! * **schedule** computes the slot with a mask and inserts into that slot's hash map: `O(1)`;
//! * **cancel** finds the slot through an `id → slot` index and removes the entry: `O(1)`;
//! * **a tick** costs the size of one slot, never a scan of the whole wheel.
//!
//! This is "scheme 6" of G. Varghese and T. Lauck, *Hashed and Hierarchical Timing Wheels: Data
//! Structures for the Efficient Implementation of a Timer Facility* (SOSP 1987), and the design
//! of Netty's `HashedWheelTimer`. 512 slots is a power of two, so the slot is a mask rather than a
//! division; with a 10 ms tick one revolution spans 5.12 s, so the timeouts of a network server
//! (a few seconds) mostly sit in their first or second revolution and a slot visit mostly meets
//! entries that are really due. An empty slot costs 48 bytes and no allocation.
//!
//! # Accuracy
//!
//! * A timer **never fires early**: its deadline (`now + after`) is rounded *up* to the next tick
//!   boundary, and a tick is processed only once the clock has passed it.
//! * It normally fires no later than its deadline plus one tick plus the operating system's
//!   scheduling noise.
//! * If the thread falls behind (a slow callback), it processes every missed tick in order and
//!   fires everything that is due: a due timer is late, never skipped.
//! * Timers due on the same tick fire in the order they were scheduled.
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
//! the wheel goes on.
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
//! let wheel = TimingWheel::new(Duration::from_millis(5));
//! let (tx, rx) = mpsc::channel();
//!
//! // Fires on the wheel's thread, 20 ms from now (rounded up to a 5 ms tick).
//! wheel.schedule(Duration::from_millis(20), move || {
//!     let _ = tx.send("ding");
//! });
//! // A deadline that is cancelled before it expires: the usual fate of a timeout.
//! let timeout = wheel.schedule(Duration::from_secs(60), || unreachable!());
//!
//! assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("ding"));
//! assert_eq!(wheel.len(), 1);
//! assert!(wheel.cancel(timeout));
//! assert!(!wheel.cancel(timeout)); // already cancelled
//! assert!(wheel.is_empty());
//! assert_eq!(wheel.stop(), 0); // joins the thread; dropping `wheel` would too
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::panic_message;

/// Number of slots of a wheel. A power of two: the slot of tick `t` is `t & (SLOTS - 1)`.
const SLOTS: usize = 512;

/// Tick of the global wheel: 10 ms.
const GLOBAL_TICK: Duration = Duration::from_millis(10);

/// Name of every wheel thread.
const THREAD_NAME: &str = "threadnet-timer";

/// Identifies a timer scheduled on a [`TimingWheel`], for [`TimingWheel::cancel`].
///
/// Ids are unique per wheel and never reused, so cancelling a timer that has already fired
/// cannot cancel another one by accident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(u64);

/// A hashed timing wheel driven by its own thread: runs callbacks after a delay.
///
/// Time advances in ticks; a timer due at tick `d` waits in slot `d mod 512` for the number of
/// full revolutions it is away (scheme 6 of Varghese & Lauck 1987, as Netty's
/// `HashedWheelTimer`). [`schedule`](TimingWheel::schedule) and
/// [`cancel`](TimingWheel::cancel) are `O(1)`, and each tick visits one slot.
///
/// A handle: cloning is cheap and every clone drives the same wheel. Most code should use the
/// process-wide [`TimingWheel::global`]. A private wheel ([`TimingWheel::new`]) owns a thread,
/// which stops when [`stop`](TimingWheel::stop) is called or the last handle is dropped. A
/// callback holding a handle to its own wheel keeps the wheel alive until it fires or is
/// cancelled.
///
/// # Accuracy
///
/// A timer never fires early: its deadline is rounded up to the next tick boundary. It normally
/// fires within one tick (plus scheduling noise) after its deadline. If a slow callback holds
/// the thread up, the missed ticks are processed in order afterwards: late, never skipped.
/// Timers due on the same tick fire in the order they were scheduled.
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
/// wheel.schedule(Duration::from_millis(30), move || {
///     let _ = tx.send("timeout");
/// });
/// assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("timeout"));
/// ```
#[derive(Clone)]
pub struct TimingWheel {
    inner: Arc<Inner>,
}

impl TimingWheel {
    /// Starts a private wheel whose thread (named `threadnet-timer`) advances every `tick`.
    ///
    /// `tick` is the resolution: deadlines are rounded up to a multiple of it, and while any
    /// timer is pending the thread wakes once per tick. 1–100 ms suits network timeouts; the
    /// global wheel uses 10 ms.
    ///
    /// # Panics
    ///
    /// If `tick` is zero, or if the operating system cannot spawn the thread.
    pub fn new(tick: Duration) -> TimingWheel {
        let seq = WHEEL_SEQ.fetch_add(1, Ordering::Relaxed);
        TimingWheel::start(tick, format!("timing wheel #{seq}"))
    }

    /// The process-wide wheel, with a 10 ms tick, started on first use and never stopped.
    ///
    /// Every part of the crate that needs a deadline uses it, so a process has one timer thread
    /// however many connections it serves.
    ///
    /// # Panics
    ///
    /// On first use, if the operating system cannot spawn the thread.
    pub fn global() -> &'static TimingWheel {
        static GLOBAL: OnceLock<TimingWheel> = OnceLock::new();
        GLOBAL.get_or_init(|| TimingWheel::start(GLOBAL_TICK, "the global timing wheel".to_owned()))
    }

    fn start(tick: Duration, label: String) -> TimingWheel {
        assert!(!tick.is_zero(), "TimingWheel: the tick must not be zero");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                wheel: Wheel::new(SLOTS),
                ready: Ready::default(),
                next_id: 1,
                stopped: false,
            }),
            wake: Condvar::new(),
            origin: Instant::now(),
            tick,
            tick_nanos: tick.as_nanos(),
            label,
        });
        let driver = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || driver.run())
            .expect("TimingWheel: cannot spawn the timer thread");
        TimingWheel {
            inner: Arc::new(Inner {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        }
    }

    /// Runs `f` once on the wheel's thread, `after` from now (never earlier).
    ///
    /// `after` is rounded up to the next tick boundary; [`Duration::ZERO`] means "on the next
    /// tick". `f` must be short: it runs on the wheel's thread, which other timers share. It
    /// may schedule and cancel timers. If `f` panics, the panic is reported on stderr and the
    /// wheel goes on.
    ///
    /// On a stopped wheel the returned id never fires and `f` is dropped at once.
    pub fn schedule<F: FnOnce() + Send + 'static>(&self, after: Duration, f: F) -> TimerId {
        self.inner.shared.schedule(after, Box::new(f))
    }

    /// Cancels a timer: it will not fire, and its callback is dropped.
    ///
    /// Returns `true` only if the timer was pending: `false` if it has already started to fire
    /// (a callback cancelling itself gets `false`), was cancelled before, or was scheduled on
    /// a stopped wheel.
    pub fn cancel(&self, id: TimerId) -> bool {
        self.inner.shared.cancel(id.0)
    }

    /// Number of pending timers: scheduled, not yet started to fire, not cancelled.
    pub fn len(&self) -> usize {
        let state = self.inner.shared.lock();
        state.wheel.len() + state.ready.len()
    }

    /// `true` if no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The wheel's resolution, as given to [`TimingWheel::new`] (10 ms for the global wheel).
    pub fn tick(&self) -> Duration {
        self.inner.shared.tick
    }

    /// Stops the wheel's thread and waits for it to exit (after the callback it may be running).
    ///
    /// Pending callbacks are dropped without running; returns how many there were. Idempotent:
    /// a second call returns 0. Afterwards [`schedule`](TimingWheel::schedule) returns ids that
    /// never fire. Called from a callback of this wheel, it does not wait for the thread (which
    /// exits once the callback returns).
    ///
    /// Stopping the [global](TimingWheel::global) wheel is allowed but a bad idea: it cannot be
    /// restarted, and every later deadline in the process would silently never fire.
    pub fn stop(&self) -> usize {
        self.inner.stop()
    }

    #[cfg(test)]
    fn current_tick(&self) -> u64 {
        self.inner.shared.lock().wheel.current()
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
        let dropped = {
            let mut state = self.shared.lock();
            state.stopped = true;
            let mut dropped = state.wheel.drain();
            dropped.extend(state.ready.drain());
            dropped
        };
        self.shared.wake.notify_all();
        let count = dropped.len();
        // User closures are dropped outside the lock: their drop may use this wheel.
        drop(dropped);
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

type Callback = Box<dyn FnOnce() + Send + 'static>;

/// State shared by the handles and the wheel thread.
struct Shared {
    state: Mutex<State>,
    /// Wakes the thread: a schedule into an empty wheel, or stop.
    wake: Condvar,
    /// Tick `t` begins at `origin + t * tick`.
    origin: Instant,
    tick: Duration,
    tick_nanos: u128,
    /// Names the wheel in panic reports: "the global timing wheel" or "timing wheel #n".
    label: String,
}

struct State {
    wheel: Wheel<Callback>,
    /// Due entries taken out of the wheel, fired one at a time; still cancellable.
    ready: Ready,
    next_id: u64,
    stopped: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // User code never runs under this lock, so poisoning can only come from a bug here;
        // the state is still consistent enough to go on (and to stop).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn elapsed_nanos(&self, now: Instant) -> u128 {
        now.saturating_duration_since(self.origin).as_nanos()
    }

    fn schedule(&self, after: Duration, f: Callback) -> TimerId {
        let now = Instant::now();
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        if state.stopped {
            drop(state);
            drop(f);
            return TimerId(id);
        }
        let elapsed = self.elapsed_nanos(now);
        let was_empty = state.wheel.is_empty();
        if was_empty {
            // The thread does not tick while the wheel is empty; skip the ticks that passed
            // since (all of them are in the past and had nothing to fire).
            state.wheel.skip_to(saturate(elapsed / self.tick_nanos + 1));
        }
        let deadline = saturate((elapsed + after.as_nanos()).div_ceil(self.tick_nanos));
        state.wheel.insert(id, deadline, f);
        drop(state);
        if was_empty {
            // The thread may be waiting with no timeout.
            self.wake.notify_one();
        }
        TimerId(id)
    }

    fn cancel(&self, id: u64) -> bool {
        let mut state = self.lock();
        let removed = match state.wheel.cancel(id) {
            Some(f) => Some(f),
            None => state.ready.remove(id),
        };
        drop(state);
        // Dropped outside the lock (see Inner::stop).
        removed.is_some()
    }

    /// The wheel thread: fire what is ready, else advance one due tick, else sleep.
    fn run(&self) {
        let mut due = Vec::new();
        let mut state = self.lock();
        loop {
            if state.stopped {
                return;
            }
            if let Some((id, f)) = state.ready.pop() {
                drop(state);
                self.fire(id, f);
                state = self.lock();
                continue;
            }
            if state.wheel.is_empty() {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let elapsed = self.elapsed_nanos(Instant::now());
            let next_at = u128::from(state.wheel.current()) * self.tick_nanos;
            if elapsed >= next_at {
                // One tick at a time, even when behind: every missed tick is processed in order.
                state.wheel.advance(&mut due);
                state.ready.extend(due.drain(..));
            } else {
                let timeout = nanos_to_duration(next_at - elapsed);
                state = self
                    .wake
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
    }

    fn fire(&self, id: u64, f: Callback) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            eprintln!(
                "threadnet: timer {:?} on {} panicked: {}; the wheel goes on",
                TimerId(id),
                self.label,
                panic_message(payload.as_ref()),
            );
        }
    }
}

fn saturate(ticks: u128) -> u64 {
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

fn nanos_to_duration(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits.
    Duration::new(secs, (nanos % NANOS_PER_SEC) as u32)
}

/// Due callbacks waiting for their turn to run, in order; cancellable in `O(1)`.
#[derive(Default)]
struct Ready {
    order: VecDeque<u64>,
    callbacks: HashMap<u64, Callback>,
}

impl Ready {
    fn len(&self) -> usize {
        self.callbacks.len()
    }

    fn extend(&mut self, due: impl IntoIterator<Item = (u64, Callback)>) {
        for (id, f) in due {
            self.order.push_back(id);
            self.callbacks.insert(id, f);
        }
    }

    fn pop(&mut self) -> Option<(u64, Callback)> {
        while let Some(id) = self.order.pop_front() {
            // Cancelled ids are gone from the map; skip them.
            if let Some(f) = self.callbacks.remove(&id) {
                return Some((id, f));
            }
        }
        None
    }

    fn remove(&mut self, id: u64) -> Option<Callback> {
        self.callbacks.remove(&id)
    }

    fn drain(&mut self) -> Vec<Callback> {
        self.order.clear();
        self.callbacks.drain().map(|(_, f)| f).collect()
    }
}

/// The wheel proper: slots, rounds and an id index, with no clock and no thread.
///
/// Time is a tick counter that only [`advance`](Wheel::advance) moves. The driver decides when a
/// tick is due; the wheel decides what is due on it.
struct Wheel<T> {
    /// Slot `s` holds the entries whose deadline tick is `≡ s (mod slots.len())`.
    slots: Box<[HashMap<u64, Entry<T>>]>,
    mask: u64,
    /// Which slot each pending id is in: cancel in `O(1)`.
    index: HashMap<u64, usize>,
    /// The next tick to process; every tick before it has been processed.
    current: u64,
    /// Scratch list of due ids, kept to avoid an allocation per tick.
    scratch: Vec<u64>,
}

struct Entry<T> {
    /// Revolutions left before the entry is due: it fires when its slot is visited at 0.
    rounds: u64,
    deadline: u64,
    value: T,
}

impl<T> Wheel<T> {
    fn new(slots: usize) -> Wheel<T> {
        assert!(
            slots.is_power_of_two(),
            "the slot count must be a power of two"
        );
        Wheel {
            slots: (0..slots).map(|_| HashMap::new()).collect(),
            mask: slots as u64 - 1,
            index: HashMap::new(),
            current: 0,
            scratch: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn current(&self) -> u64 {
        self.current
    }

    /// Moves the clock to `tick` without visiting slots; only valid while the wheel is empty.
    fn skip_to(&mut self, tick: u64) {
        debug_assert!(self.is_empty());
        self.current = self.current.max(tick);
    }

    /// Adds `value` under a fresh `id`, due at tick `deadline` (a past tick means the next one).
    fn insert(&mut self, id: u64, deadline: u64, value: T) {
        let deadline = deadline.max(self.current);
        let slot = (deadline & self.mask) as usize;
        // The slot is first visited at the tick `≡ deadline` in [current, current + slots);
        // each later visit is one revolution on.
        let rounds = (deadline - self.current) / self.slots.len() as u64;
        let previous = self.index.insert(id, slot);
        debug_assert!(previous.is_none(), "timer id reused");
        self.slots[slot].insert(
            id,
            Entry {
                rounds,
                deadline,
                value,
            },
        );
    }

    fn cancel(&mut self, id: u64) -> Option<T> {
        let slot = self.index.remove(&id)?;
        self.slots[slot].remove(&id).map(|e| e.value)
    }

    /// Processes tick `current` and moves to the next: appends the entries due on it to `due`,
    /// in id order, and takes a round off the others in its slot.
    fn advance(&mut self, due: &mut Vec<(u64, T)>) {
        let tick = self.current;
        let slot = &mut self.slots[(tick & self.mask) as usize];
        self.scratch.clear();
        for (&id, entry) in slot.iter_mut() {
            if entry.rounds == 0 {
                self.scratch.push(id);
            } else {
                entry.rounds -= 1;
            }
        }
        self.scratch.sort_unstable();
        for id in &self.scratch {
            if let Some(entry) = slot.remove(id) {
                debug_assert_eq!(entry.deadline, tick, "a timer fired off its tick");
                self.index.remove(id);
                due.push((*id, entry.value));
            }
        }
        self.current += 1;
    }

    /// Removes every entry.
    fn drain(&mut self) -> Vec<T> {
        self.index.clear();
        self.slots
            .iter_mut()
            .flat_map(|slot| slot.drain().map(|(_, e)| e.value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Long enough never to be reached by a correct wheel, short enough to fail fast.
    const PATIENCE: Duration = Duration::from_secs(5);

    // ---- the pure wheel -------------------------------------------------------------------

    /// Advances `wheel` to tick `until` (exclusive), recording `(tick, value)` of what fires.
    fn run_until(wheel: &mut Wheel<&'static str>, until: u64) -> Vec<(u64, &'static str)> {
        let mut fired = Vec::new();
        let mut due = Vec::new();
        while wheel.current() < until {
            let tick = wheel.current();
            wheel.advance(&mut due);
            fired.extend(due.drain(..).map(|(_, v)| (tick, v)));
        }
        fired
    }

    #[test]
    fn wheel_fires_each_entry_on_its_tick_across_revolutions() {
        let mut wheel = Wheel::new(8);
        // Same slot (3) in four different revolutions, plus tick 0 and the slot boundaries.
        for (id, deadline, name) in [
            (1, 27, "27"),
            (2, 3, "3"),
            (3, 11, "11"),
            (4, 0, "0"),
            (5, 19, "19"),
            (6, 8, "8"),
            (7, 7, "7"),
        ] {
            wheel.insert(id, deadline, name);
        }
        assert_eq!(wheel.len(), 7);
        let fired = run_until(&mut wheel, 40);
        assert_eq!(
            fired,
            [
                (0, "0"),
                (3, "3"),
                (7, "7"),
                (8, "8"),
                (11, "11"),
                (19, "19"),
                (27, "27")
            ]
        );
        assert!(wheel.is_empty());
    }

    #[test]
    fn wheel_rounds_are_relative_to_the_current_tick() {
        let mut wheel = Wheel::new(8);
        run_until(&mut wheel, 13);
        wheel.insert(1, 13, "now");
        wheel.insert(2, 21, "one revolution on");
        wheel.insert(3, 100, "many revolutions on");
        wheel.insert(4, 2, "in the past: next tick");
        let fired = run_until(&mut wheel, 101);
        assert_eq!(
            fired,
            [
                (13, "now"),
                (13, "in the past: next tick"),
                (21, "one revolution on"),
                (100, "many revolutions on")
            ]
        );
    }

    #[test]
    fn wheel_same_tick_fires_in_id_order() {
        let mut wheel = Wheel::new(8);
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        for (id, name) in names.iter().enumerate().rev() {
            wheel.insert(id as u64, 5, *name);
        }
        let fired: Vec<_> = run_until(&mut wheel, 6)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(fired, names);
    }

    #[test]
    fn wheel_cancel_and_drain() {
        let mut wheel = Wheel::new(8);
        wheel.insert(1, 4, "a");
        wheel.insert(2, 12, "b");
        wheel.insert(3, 4, "c");
        assert_eq!(wheel.cancel(1), Some("a"));
        assert_eq!(wheel.cancel(1), None);
        assert_eq!(wheel.cancel(99), None);
        assert_eq!(wheel.len(), 2);
        assert_eq!(run_until(&mut wheel, 5), [(4, "c")]);
        let mut rest = wheel.drain();
        rest.sort_unstable();
        assert_eq!(rest, ["b"]);
        assert!(wheel.is_empty());
        assert_eq!(run_until(&mut wheel, 20), []);
    }

    #[test]
    fn wheel_skip_to_moves_forward_only() {
        let mut wheel: Wheel<&str> = Wheel::new(8);
        wheel.skip_to(1000);
        assert_eq!(wheel.current(), 1000);
        wheel.skip_to(10);
        assert_eq!(wheel.current(), 1000);
        wheel.insert(1, 1003, "x");
        assert_eq!(run_until(&mut wheel, 1010), [(1003, "x")]);
    }

    // ---- the threaded wheel ---------------------------------------------------------------

    #[test]
    fn fires_once_never_early_on_the_timer_thread() {
        let wheel = TimingWheel::new(ms(5));
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for after in [0, 1, 3, 5, 17, 40] {
            let (tx, calls) = (tx.clone(), Arc::clone(&calls));
            let start = Instant::now();
            wheel.schedule(ms(after), move || {
                calls.fetch_add(1, Ordering::SeqCst);
                let name = thread::current().name().map(str::to_owned);
                tx.send((after, start.elapsed(), name)).unwrap();
            });
        }
        for _ in 0..6 {
            let (after, elapsed, name) = rx.recv_timeout(PATIENCE).unwrap();
            assert!(
                elapsed >= ms(after),
                "{after} ms timer fired after {elapsed:?}"
            );
            assert!(
                elapsed < ms(after) + ms(500),
                "{after} ms timer fired after {elapsed:?}"
            );
            assert_eq!(name.as_deref(), Some(THREAD_NAME));
        }
        assert!(wheel.is_empty());
        // Nothing fires twice: a later timer comes next and the count is exact.
        let last = wheel.schedule(ms(20), move || tx.send((0, Duration::ZERO, None)).unwrap());
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap().0, 0);
        assert!(!wheel.cancel(last));
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn fires_in_deadline_order_including_beyond_one_revolution() {
        // 1 ms tick, 512 slots: one revolution is 512 ms, so 600 ms needs a round.
        let wheel = TimingWheel::new(ms(1));
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        for after in [600, 5, 520, 50, 20, 200, 511] {
            let tx = tx.clone();
            wheel.schedule(ms(after), move || tx.send(after).unwrap());
        }
        let order: Vec<u64> = (0..7).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
        assert_eq!(order, [5, 20, 50, 200, 511, 520, 600]);
        assert!(start.elapsed() >= ms(600));
    }

    #[test]
    fn cancel_before_firing_returns_true_and_it_never_fires() {
        let wheel = TimingWheel::new(ms(1));
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        let id = wheel.schedule(ms(30), move || tx2.send("cancelled").unwrap());
        assert_eq!(wheel.len(), 1);
        assert!(wheel.cancel(id));
        assert_eq!(wheel.len(), 0);
        wheel.schedule(ms(60), move || tx.send("sentinel").unwrap());
        assert_eq!(rx.recv_timeout(PATIENCE), Ok("sentinel"));
        // Every sender is gone (the cancelled callback was dropped): nothing else can come.
        assert_eq!(
            rx.recv_timeout(ms(1)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn cancel_after_firing_returns_false() {
        let wheel = TimingWheel::new(ms(1));
        let (tx, rx) = mpsc::channel();
        let id = wheel.schedule(ms(2), move || tx.send(()).unwrap());
        rx.recv_timeout(PATIENCE).unwrap();
        assert!(!wheel.cancel(id));
    }

    #[test]
    fn cancel_twice_returns_true_then_false() {
        let wheel = TimingWheel::new(ms(1));
        let id = wheel.schedule(ms(1000), || {});
        assert!(wheel.cancel(id));
        assert!(!wheel.cancel(id));
        assert!(wheel.is_empty());
    }

    #[test]
    fn ids_are_unique() {
        let wheel = TimingWheel::new(ms(1));
        let a = wheel.schedule(ms(1000), || {});
        let b = wheel.schedule(ms(1000), || {});
        assert_ne!(a, b);
        assert!(wheel.cancel(a));
        let c = wheel.schedule(ms(1000), || {});
        assert_ne!(a, c);
        assert!(!wheel.cancel(a));
        assert_eq!(wheel.stop(), 2);
    }

    #[test]
    fn callback_can_schedule_a_timer() {
        let wheel = TimingWheel::new(ms(1));
        let (tx, rx) = mpsc::channel();
        let handle = wheel.clone();
        wheel.schedule(ms(5), move || {
            let at = Instant::now();
            handle.schedule(ms(10), move || tx.send(at.elapsed()).unwrap());
        });
        let elapsed = rx.recv_timeout(PATIENCE).unwrap();
        assert!(elapsed >= ms(10), "inner timer fired after {elapsed:?}");
    }

    #[test]
    fn callback_can_cancel_another_timer_and_itself() {
        let wheel = TimingWheel::new(ms(1));
        let (tx, rx) = mpsc::channel();
        let tx_victim = tx.clone();
        let victim = wheel.schedule(ms(50), move || tx_victim.send("victim").unwrap());
        let handle = wheel.clone();
        let (self_tx, self_rx) = mpsc::channel();
        let tx_killer = tx.clone();
        let killer = wheel.schedule(ms(5), move || {
            let me = self_rx.recv().unwrap();
            let cancelled_victim = handle.cancel(victim);
            let cancelled_me = handle.cancel(me);
            tx_killer
                .send(if cancelled_victim && !cancelled_me {
                    "killer: ok"
                } else {
                    "killer: wrong results"
                })
                .unwrap();
        });
        self_tx.send(killer).unwrap();
        wheel.schedule(ms(80), move || tx.send("sentinel").unwrap());
        assert_eq!(rx.recv_timeout(PATIENCE), Ok("killer: ok"));
        assert_eq!(rx.recv_timeout(PATIENCE), Ok("sentinel"));
        assert_eq!(
            rx.recv_timeout(ms(1)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn cancel_of_a_due_timer_not_yet_run_prevents_it() {
        // Both due on the same tick; the first (scheduled first) runs first and cancels the
        // second, which is out of the wheel but has not started: cancel must win.
        let wheel = TimingWheel::new(ms(50));
        let (tx, rx) = mpsc::channel();
        let (id_tx, id_rx) = mpsc::channel();
        let handle = wheel.clone();
        let tx1 = tx.clone();
        wheel.schedule(ms(10), move || {
            let second = id_rx.recv().unwrap();
            tx1.send(format!("cancel: {}", handle.cancel(second)))
                .unwrap();
        });
        let second = wheel.schedule(ms(10), move || tx.send("second ran".to_owned()).unwrap());
        id_tx.send(second).unwrap();
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), "cancel: true");
        assert_eq!(
            rx.recv_timeout(PATIENCE),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn panicking_callback_does_not_stop_the_wheel() {
        let wheel = TimingWheel::new(ms(1));
        let (tx, rx) = mpsc::channel();
        wheel.schedule(ms(2), || panic!("boom (expected by a test)"));
        wheel.schedule(ms(2), || std::panic::panic_any(42_u8));
        wheel.schedule(ms(20), move || tx.send("after the panic").unwrap());
        assert_eq!(rx.recv_timeout(PATIENCE), Ok("after the panic"));
        // And the wheel still accepts and fires new timers.
        let (tx, rx) = mpsc::channel();
        wheel.schedule(ms(1), move || tx.send(()).unwrap());
        assert_eq!(rx.recv_timeout(PATIENCE), Ok(()));
    }

    #[test]
    fn slow_callback_delays_but_never_skips() {
        let wheel = TimingWheel::new(ms(1));
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        wheel.schedule(ms(2), || {
            // Blocks the wheel thread for 40 ms: ticks 3..40 are missed meanwhile.
            thread::sleep(ms(40));
        });
        for after in [3, 5, 10, 11, 25, 39, 60] {
            let tx = tx.clone();
            wheel.schedule(ms(after), move || {
                tx.send((after, start.elapsed())).unwrap()
            });
        }
        let fired: Vec<_> = (0..7).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
        let order: Vec<u64> = fired.iter().map(|&(after, _)| after).collect();
        assert_eq!(order, [3, 5, 10, 11, 25, 39, 60]);
        for (after, elapsed) in fired {
            assert!(
                elapsed >= ms(after),
                "{after} ms timer fired after {elapsed:?}"
            );
        }
    }

    #[test]
    fn len_counts_pending_timers() {
        let wheel = TimingWheel::new(ms(1));
        assert!(wheel.is_empty());
        let (tx, rx) = mpsc::channel();
        let a = wheel.schedule(ms(1000), || {});
        wheel.schedule(ms(2000), || {});
        wheel.schedule(ms(3), move || tx.send(()).unwrap());
        assert!(wheel.len() >= 2);
        rx.recv_timeout(PATIENCE).unwrap();
        assert_eq!(wheel.len(), 2);
        assert!(wheel.cancel(a));
        assert_eq!(wheel.len(), 1);
        assert!(!wheel.is_empty());
        assert_eq!(wheel.stop(), 1);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn idle_wheel_does_not_tick_and_wakes_on_schedule() {
        let wheel = TimingWheel::new(ms(1));
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        wheel.schedule(ms(1), move || tx2.send(()).unwrap());
        rx.recv_timeout(PATIENCE).unwrap();
        // Empty now: the thread waits with no timeout, so the tick counter stands still.
        let before = wheel.current_tick();
        thread::sleep(ms(30));
        assert!(
            wheel.current_tick() <= before + 2,
            "an idle wheel kept ticking: {} -> {}",
            before,
            wheel.current_tick()
        );
        // A schedule wakes it, and the ticks it slept through do not make the timer early.
        let start = Instant::now();
        wheel.schedule(ms(5), move || tx.send(()).unwrap());
        rx.recv_timeout(PATIENCE).unwrap();
        assert!(start.elapsed() >= ms(5));
    }

    #[test]
    fn stop_drops_unfired_callbacks_and_joins_the_thread() {
        let wheel = TimingWheel::new(ms(1));
        let (tx, rx) = mpsc::channel::<()>();
        for after in [500, 1000, 60_000] {
            let tx = tx.clone();
            wheel.schedule(ms(after), move || tx.send(()).unwrap());
        }
        drop(tx);
        assert_eq!(wheel.stop(), 3);
        // Dropped without running: the channel is disconnected and empty.
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
        // Joined: the handle is taken, and the thread's reference to the state is gone.
        assert!(wheel.inner.thread.lock().unwrap().is_none());
        assert_eq!(Arc::strong_count(&wheel.inner.shared), 1);
        // Idempotent.
        assert_eq!(wheel.stop(), 0);
        // Scheduling on a stopped wheel: an id that never fires and cannot be cancelled.
        let (tx, rx) = mpsc::channel::<()>();
        let id = wheel.schedule(ms(0), move || tx.send(()).unwrap());
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
        assert!(!wheel.cancel(id));
        assert!(wheel.is_empty());
    }

    #[test]
    fn stop_from_a_callback_does_not_deadlock() {
        let wheel = TimingWheel::new(ms(1));
        let (tx, rx) = mpsc::channel();
        let handle = wheel.clone();
        wheel.schedule(ms(60_000), || {});
        wheel.schedule(ms(2), move || tx.send(handle.stop()).unwrap());
        assert_eq!(rx.recv_timeout(PATIENCE), Ok(1));
        // The thread could not join itself; this stop joins it.
        assert_eq!(wheel.stop(), 0);
        assert!(wheel.inner.thread.lock().unwrap().is_none());
        assert_eq!(Arc::strong_count(&wheel.inner.shared), 1);
    }

    #[test]
    fn dropping_the_last_handle_stops_the_thread() {
        let wheel = TimingWheel::new(ms(1));
        let shared = Arc::downgrade(&wheel.inner.shared);
        let (tx, rx) = mpsc::channel::<()>();
        wheel.schedule(ms(60_000), move || tx.send(()).unwrap());
        // A clone going away does not stop anything.
        let clone = wheel.clone();
        drop(clone);
        let (tx2, rx2) = mpsc::channel();
        wheel.schedule(ms(2), move || tx2.send(()).unwrap());
        assert_eq!(rx2.recv_timeout(PATIENCE), Ok(()));
        drop(wheel);
        // The thread held a strong reference until it exited; drop joined it.
        assert!(shared.upgrade().is_none());
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    }

    #[test]
    fn last_handle_dropped_inside_a_callback_stops_the_thread() {
        let wheel = TimingWheel::new(ms(1));
        let shared = Arc::downgrade(&wheel.inner.shared);
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let keeper = wheel.clone();
        wheel.schedule(ms(2), move || {
            let _keeper = &keeper;
            // Wait until the test has dropped its handle: `keeper` is then the last one.
            go_rx.recv_timeout(PATIENCE).unwrap();
            tx.send(()).unwrap();
        });
        drop(wheel);
        go_tx.send(()).unwrap();
        rx.recv_timeout(PATIENCE).unwrap();
        // The closure, and with it the last handle, is dropped on the wheel thread, which must
        // not join itself; the thread exits on its own right after.
        let deadline = Instant::now() + PATIENCE;
        while shared.upgrade().is_some() {
            assert!(Instant::now() < deadline, "the wheel thread did not exit");
            thread::sleep(ms(1));
        }
    }

    #[test]
    fn global_wheel_is_shared_and_fires() {
        let a = TimingWheel::global();
        let b = TimingWheel::global();
        assert!(std::ptr::eq(a, b));
        assert!(Arc::ptr_eq(&a.inner, &a.clone().inner));
        assert_eq!(a.tick(), ms(10));
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        a.schedule(ms(15), move || tx.send(start.elapsed()).unwrap());
        let elapsed = rx.recv_timeout(PATIENCE).unwrap();
        assert!(elapsed >= ms(15));
    }

    #[test]
    fn huge_delay_does_not_overflow() {
        let wheel = TimingWheel::new(ms(1));
        let id = wheel.schedule(Duration::MAX, || {});
        assert_eq!(wheel.len(), 1);
        assert!(wheel.cancel(id));
    }

    #[test]
    fn tick_is_reported() {
        let wheel = TimingWheel::new(ms(7));
        assert_eq!(wheel.tick(), ms(7));
        assert!(format!("{wheel:?}").contains("TimingWheel"));
    }

    #[test]
    #[should_panic(expected = "tick must not be zero")]
    fn zero_tick_panics() {
        let _ = TimingWheel::new(Duration::ZERO);
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<TimingWheel>();
        check::<TimerId>();
    }
}
