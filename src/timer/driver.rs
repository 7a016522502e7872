//! What runs a [`Wheel`]: the clock, the lock, firing callbacks, and the two ways of moving
//! time: the wheel's own thread ([`Shared::run`]) and a test's [`Shared::advance`]. Both call
//! the same [`Shared::fire_due`], so the manual clock tests the real code.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::wheel::{Cancelled, Key, Wheel};
use super::TimerId;
use crate::error::panic_message;

/// A one-shot callback; it is told its own id (the crate's connection timers use it).
pub(super) type Once = Box<dyn FnOnce(TimerId) + Send + 'static>;

/// A repeating callback and its schedule, in nanoseconds since the wheel's origin so that
/// rounding to ticks never accumulates (drift-free).
pub(super) struct Repeat {
    pub(super) interval: u128,
    /// The exact deadline of the run in progress or next due.
    pub(super) deadline: u128,
    pub(super) f: Box<dyn FnMut() + Send + 'static>,
}

/// What a wheel entry holds.
pub(super) enum Task {
    Once(Once),
    Every(Box<Repeat>),
}

/// When a timer is due, in nanoseconds: from now, or since the wheel's origin.
#[derive(Clone, Copy, Debug)]
pub(super) enum When {
    In(u128),
    At(u128),
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
    manual_now: u128,
}

/// State shared by the handles and the wheel thread.
pub(super) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Tick `t` begins at `origin + t * tick`.
    origin: Instant,
    pub(super) tick: Duration,
    tick_nanos: u128,
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
            tick_nanos: tick.as_nanos(),
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
    pub(super) fn now_nanos(&self, state: &State) -> u128 {
        match self.clock {
            ClockKind::Real => self.origin.elapsed().as_nanos(),
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
    pub(super) fn nanos_of(&self, at: Instant) -> u128 {
        at.saturating_duration_since(self.origin).as_nanos()
    }

    fn instant_at(&self, nanos: u128) -> Instant {
        self.origin + nanos_to_duration(nanos)
    }

    /// The first tick that begins at or after `nanos`: a timer due then never fires early.
    fn tick_at_or_after(&self, nanos: u128) -> u64 {
        saturate(nanos.div_ceil(self.tick_nanos))
    }

    /// The tick in progress at `nanos`: every tick up to it has begun.
    fn tick_of(&self, nanos: u128) -> u64 {
        saturate(nanos / self.tick_nanos)
    }

    /// Schedules `task`, due `when`.
    pub(super) fn schedule(&self, when: When, mut task: Task) -> TimerId {
        let repeating = matches!(task, Task::Every(_));
        let mut state = self.lock();
        if state.stopped {
            drop(state);
            drop(task);
            return TimerId::NONE;
        }
        let deadline = match when {
            When::In(nanos) => self.now_nanos(&state) + nanos,
            When::At(nanos) => nanos,
        };
        if let Task::Every(repeat) = &mut task {
            repeat.deadline = deadline;
        }
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
            let back = self.run(key, task);
            state = self.lock();
            let next = back.map(|repeat| (self.tick_at_or_after(repeat.deadline), repeat));
            let unused = state
                .wheel
                .put_back(key, next.map(|(tick, r)| (tick, Task::Every(r))));
            if unused.is_some() {
                drop(state);
                drop(unused); // outside the lock
                state = self.lock();
            }
        }
    }

    /// Runs one callback, catching a panic. A repeating callback that returns normally comes
    /// back with its next deadline set; one that panicked is retired.
    fn run(&self, key: Key, task: Task) -> Option<Box<Repeat>> {
        match task {
            Task::Once(f) => {
                let id = TimerId(key.to_raw());
                self.report(key, catch_unwind(AssertUnwindSafe(|| f(id))), false);
                None
            }
            Task::Every(mut repeat) => {
                let ok = self.report(key, catch_unwind(AssertUnwindSafe(|| (repeat.f)())), true);
                if !ok {
                    return None;
                }
                // Drift-free: the next deadline follows the previous deadline, not the time
                // the callback ran. Periods that already passed (the callback or the wheel ran
                // late) are skipped, not run in a burst.
                let now = self.now_nanos(&self.lock());
                let late_by = now.saturating_sub(repeat.deadline);
                let periods = late_by / repeat.interval + 1;
                repeat.deadline += periods * repeat.interval;
                Some(repeat)
            }
        }
    }

    fn report(&self, key: Key, result: std::thread::Result<()>, repeating: bool) -> bool {
        match result {
            Ok(()) => true,
            Err(payload) => {
                eprintln!(
                    "threadnet: timer {:?} on {} panicked: {}; the wheel goes on{}",
                    TimerId(key.to_raw()),
                    self.label,
                    panic_message(payload.as_ref()),
                    if repeating {
                        " without this repeating timer"
                    } else {
                        ""
                    },
                );
                false
            }
        }
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
                    let at = u128::from(tick) * self.tick_nanos;
                    let now = self.now_nanos(&state);
                    if at > now {
                        state.sleeping_until = tick;
                        state = self
                            .wake
                            .wait_timeout(state, nanos_to_duration(at - now))
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
        let target = state.manual_now + by.as_nanos();
        loop {
            state = self.fire_due(state);
            if state.stopped {
                return;
            }
            let next = state
                .wheel
                .next_tick()
                .map(|tick| u128::from(tick) * self.tick_nanos)
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

fn saturate(ticks: u128) -> u64 {
    // Far beyond any real deadline (u64::MAX / 2 ticks of 1 ns is 146 years), and leaves room
    // for the wheel's arithmetic.
    u64::try_from(ticks).unwrap_or(u64::MAX).min(u64::MAX / 2)
}

pub(crate) fn nanos_to_duration(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits.
    Duration::new(secs, (nanos % NANOS_PER_SEC) as u32)
}
