//! What runs a [`Wheel`]: the clock, the lock, firing callbacks, and the two ways of moving
//! time: the wheel's own thread ([`Shared::run`]) and a test's [`Shared::advance`]. Both call
//! the same [`Shared::fire_due`], so the manual clock tests the real code.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::id::TimerId;
use super::wheel::{Cancelled, Key, Wheel};
use crate::error::panic_message;

/// A timer's callback, boxed once: one fat pointer per wheel entry, whatever its kind, so an
/// entry stays at 40 bytes.
pub(super) type Task = Box<dyn Job>;

/// What a wheel entry runs.
pub(super) trait Job: Send {
    /// Runs the callback; a repeating job hands itself back to be scheduled again. (Taking
    /// the box keeps a one-shot job of a zero-sized closure zero-sized: no allocation.)
    fn call(self: Box<Self>, id: TimerId) -> Option<Task>;
    /// A repeating job's schedule; `None` for a one-shot job.
    fn period(&mut self) -> Option<&mut Period>;
}

/// A repeating job's schedule, in nanoseconds since the wheel's origin, so that rounding to
/// ticks never accumulates (drift-free).
pub(super) struct Period {
    pub(super) interval: u64,
    /// The exact deadline of the run in progress, or of the next one.
    pub(super) deadline: u64,
}

/// A one-shot callback; it is told its own id (the crate's connection timers use it).
pub(super) struct Once<F>(pub(super) F);

impl<F: FnOnce(TimerId) + Send + 'static> Job for Once<F> {
    fn call(self: Box<Self>, id: TimerId) -> Option<Task> {
        (self.0)(id);
        None
    }

    fn period(&mut self) -> Option<&mut Period> {
        None
    }
}

/// A repeating callback and its schedule.
pub(super) struct Every<F> {
    pub(super) period: Period,
    pub(super) f: F,
}

impl<F: FnMut() + Send + 'static> Job for Every<F> {
    fn call(mut self: Box<Self>, _: TimerId) -> Option<Task> {
        (self.f)();
        Some(self)
    }

    fn period(&mut self) -> Option<&mut Period> {
        Some(&mut self.period)
    }
}

/// When a timer is due, in nanoseconds: from now, or since the wheel's origin.
#[derive(Clone, Copy, Debug)]
pub(super) enum When {
    In(u64),
    At(u64),
}

/// Where time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClockKind {
    /// `Instant::now()`; a thread sleeps until the next deadline.
    Real,
    /// A test clock that only [`Shared::advance`] moves; no thread.
    Manual,
}

pub(super) struct State {
    pub(super) wheel: Wheel<Task>,
    /// Keys taken out of the wheel as due, run one at a time in this order; a cancelled key is
    /// skipped when its turn comes.
    ready: VecDeque<Key>,
    pub(super) stopped: bool,
    /// The tick the wheel thread sleeps until (`u64::MAX`: until woken), or 0 while it is
    /// awake. A schedule earlier than this wakes it.
    sleeping_until: u64,
    /// The manual clock's reading, in nanoseconds since the origin.
    manual_now: u64,
}

/// State shared by the handles and the wheel thread.
pub(super) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Tick `t` begins at `origin + t * tick`.
    origin: Instant,
    pub(super) tick: Duration,
    tick_nanos: u64,
    pub(super) clock: ClockKind,
    /// Names the wheel in panic reports: "the global timing wheel" or "timing wheel #n".
    pub(super) label: String,
}

impl Shared {
    pub(super) fn new(tick: Duration, clock: ClockKind, label: String) -> Shared {
        assert!(!tick.is_zero(), "TimingWheel: the tick must not be zero");
        Shared {
            state: Mutex::new(State {
                wheel: Wheel::new(),
                ready: VecDeque::new(),
                stopped: false,
                sleeping_until: 0,
                manual_now: 0,
            }),
            wake: Condvar::new(),
            origin: Instant::now(),
            tick,
            tick_nanos: nanos(tick).max(1),
            clock,
            label,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // User code never runs under this lock, so poisoning can only come from a bug here;
        // the state is still consistent enough to go on (and to stop).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Nanoseconds since the origin on this wheel's clock.
    pub(super) fn now_nanos(&self, state: &State) -> u64 {
        match self.clock {
            ClockKind::Real => nanos(self.origin.elapsed()),
            ClockKind::Manual => state.manual_now,
        }
    }

    /// The wheel's clock as an [`Instant`].
    pub(super) fn now(&self) -> Instant {
        match self.clock {
            ClockKind::Real => Instant::now(),
            ClockKind::Manual => self.instant_at(self.lock().manual_now),
        }
    }

    /// Nanoseconds since the origin of `at` (0 if earlier).
    pub(super) fn nanos_of(&self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.origin))
    }

    fn instant_at(&self, nanos: u64) -> Instant {
        self.origin + Duration::from_nanos(nanos)
    }

    /// The first tick that begins at or after `nanos`: a timer due then never fires early.
    fn tick_at_or_after(&self, nanos: u64) -> u64 {
        nanos.div_ceil(self.tick_nanos)
    }

    /// The tick in progress at `nanos`: every tick up to it has begun.
    fn tick_of(&self, nanos: u64) -> u64 {
        nanos / self.tick_nanos
    }

    /// Schedules `task`, due `when`.
    pub(super) fn schedule(&self, when: When, mut task: Task) -> TimerId {
        let mut state = self.lock();
        if state.stopped {
            drop(state);
            drop(task);
            return TimerId::NONE;
        }
        let deadline = match when {
            When::In(nanos) => self.now_nanos(&state).saturating_add(nanos),
            When::At(nanos) => nanos,
        }
        .min(MAX_NANOS);
        let repeating = match task.period() {
            Some(period) => {
                period.deadline = deadline;
                true
            }
            None => false,
        };
        let tick = self.tick_at_or_after(deadline);
        let key = state.wheel.insert(tick, repeating, task);
        let wake = tick < state.sleeping_until;
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        TimerId(key.to_raw())
    }

    pub(super) fn cancel(&self, id: TimerId) -> bool {
        if id == TimerId::NONE {
            return false;
        }
        let cancelled = self.lock().wheel.cancel(Key::from_raw(id.0));
        // Any value is dropped here, outside the lock: its drop may use this wheel.
        match cancelled {
            Some(Cancelled::Pending(_)) => true,
            Some(Cancelled::Running { repeating }) => repeating,
            None => false,
        }
    }

    /// Stops the wheel: pending callbacks are dropped unrun. Returns how many there were.
    pub(super) fn stop(&self) -> usize {
        let (count, dropped) = {
            let mut state = self.lock();
            state.stopped = true;
            state.ready.clear();
            let count = state.wheel.len();
            (count, state.wheel.drain())
        };
        self.wake.notify_all();
        // User closures are dropped outside the lock: their drop may use this wheel.
        drop(dropped);
        count
    }

    /// Runs every callback due at the clock's current reading, on the calling thread, then
    /// returns the lock. Callbacks run outside the lock, one at a time, in deadline order.
    fn fire_due<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        loop {
            if state.stopped {
                return state;
            }
            if state.ready.is_empty() {
                let now = self.tick_of(self.now_nanos(&state));
                let State { wheel, ready, .. } = &mut *state;
                wheel.poll(now, ready);
                if state.ready.is_empty() {
                    return state;
                }
            }
            let Some(key) = state.ready.pop_front() else {
                continue;
            };
            let Some((task, _)) = state.wheel.take(key) else {
                continue; // cancelled while it waited its turn
            };
            drop(state);
            let again = self.run(key, task);
            state = self.lock();
            let next = match again {
                Some(mut task) => {
                    let period = task.period().expect("only a repeating job comes back");
                    // Drift-free: the next deadline follows the previous deadline, not the
                    // time the callback ran. Periods that already passed (the callback or the
                    // wheel ran late) are skipped, not run in a burst.
                    let late_by = self.now_nanos(&state).saturating_sub(period.deadline);
                    let periods = late_by / period.interval + 1;
                    period.deadline = period
                        .deadline
                        .saturating_add(periods.saturating_mul(period.interval))
                        .min(MAX_NANOS);
                    Some((self.tick_at_or_after(period.deadline), task))
                }
                None => None,
            };
            let unused = state.wheel.put_back(key, next);
            if unused.is_some() {
                drop(state);
                drop(unused); // outside the lock
                state = self.lock();
            }
        }
    }

    /// Runs one callback, catching a panic. Returns a repeating job to schedule again, unless
    /// it panicked (then it is retired).
    fn run(&self, key: Key, mut task: Task) -> Option<Task> {
        let repeating = task.period().is_some();
        match catch_unwind(AssertUnwindSafe(|| task.call(TimerId(key.to_raw())))) {
            Ok(again) => again,
            Err(payload) => {
                self.report(key, payload.as_ref(), repeating);
                None
            }
        }
    }

    fn report(&self, key: Key, payload: &(dyn std::any::Any + Send), repeating: bool) {
        eprintln!(
            "threadnet: timer {:?} on {} panicked: {}; the wheel goes on{}",
            TimerId(key.to_raw()),
            self.label,
            panic_message(payload),
            if repeating {
                " without this repeating timer"
            } else {
                ""
            },
        );
    }

    /// The wheel thread: fire what is due, then sleep until the next slot or a wake-up.
    pub(super) fn run_thread(&self) {
        let mut state = self.lock();
        loop {
            state = self.fire_due(state);
            if state.stopped {
                return;
            }
            match state.wheel.next_tick() {
                None => {
                    state.sleeping_until = u64::MAX;
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some(tick) => {
                    let at = tick.saturating_mul(self.tick_nanos);
                    let now = self.now_nanos(&state);
                    if at > now {
                        state.sleeping_until = tick;
                        state = self
                            .wake
                            .wait_timeout(state, Duration::from_nanos(at - now))
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            }
            state.sleeping_until = 0;
        }
    }

    /// Moves the manual clock forward by `by`, stopping at every slot due on the way so that
    /// each callback runs with the clock at its own deadline (a repeating timer runs once per
    /// period), on the calling thread.
    pub(super) fn advance(&self, by: Duration) {
        let mut state = self.lock();
        let target = state.manual_now.saturating_add(nanos(by)).min(MAX_NANOS);
        loop {
            state = self.fire_due(state);
            if state.stopped {
                return;
            }
            let next = state
                .wheel
                .next_tick()
                .map(|tick| tick.saturating_mul(self.tick_nanos))
                .filter(|&at| at <= target);
            match next {
                Some(at) => state.manual_now = state.manual_now.max(at),
                None => break,
            }
        }
        // A callback may itself have advanced the clock beyond `target`: never move back.
        state.manual_now = state.manual_now.max(target);
        drop(self.fire_due(state));
    }
}

/// The latest deadline, in nanoseconds since the origin: 292 years. Later ones (such as
/// `Duration::MAX`) are clamped to it, leaving the wheel's arithmetic room to spare.
const MAX_NANOS: u64 = u64::MAX / 2;

/// `d` in nanoseconds, saturating (584 years fit).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
