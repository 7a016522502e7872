//! A connection's own timers: scheduled on its timing wheel, remembered so that all of them
//! are cancelled when the connection ends, and fenced so that none runs after `on_close`.
//!
//! The fence is a mutex (`gate`) held while a callback of this connection runs. The reader
//! thread takes it in [`ConnTimers::close`], before `on_close`: a callback already running is
//! waited for, and every later one finds the set closed and returns without calling the user.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use crate::conn::threads::TimerMark;
use crate::error::panic_message;
use crate::sync::lock;
use crate::timer::{TimerId, TimingWheel};

/// The timers of one connection.
#[derive(Default)]
pub(crate) struct ConnTimers {
    /// Held while one of this connection's callbacks runs.
    gate: Mutex<()>,
    set: Mutex<Set>,
}

#[derive(Default)]
struct Set {
    /// The connection has ended: nothing new is scheduled, nothing pending runs.
    closed: bool,
    /// Pending timers: one-shot ones leave when they fire.
    ids: HashSet<TimerId>,
}

impl ConnTimers {
    /// Schedules `schedule`'s timer and remembers it, unless the connection has ended (then
    /// nothing is scheduled and [`TimerId::NONE`] is returned). The set stays locked while
    /// scheduling, so a timer that fires at once still finds its own id to remove.
    pub(crate) fn add(&self, schedule: impl FnOnce() -> TimerId) -> TimerId {
        let mut set = lock(&self.set);
        if set.closed {
            return TimerId::NONE;
        }
        let id = schedule();
        if id != TimerId::NONE {
            set.ids.insert(id);
        }
        id
    }

    /// Cancels one of this connection's timers; `true` if that prevented a run.
    pub(crate) fn cancel(&self, wheel: &TimingWheel, id: TimerId) -> bool {
        let known = lock(&self.set).ids.remove(&id);
        known && wheel.cancel(id)
    }

    /// Runs `f` as a timer callback of the connection whose shared state is `owner`: behind
    /// the fence, and only if the connection has not ended. `id` is the firing timer; a
    /// one-shot one (`once`) leaves the set. A panic of `f` is caught and its message
    /// returned: it is the connection's panic (invariant 7, DESIGN.md), not the wheel's.
    pub(crate) fn run<T>(
        &self,
        owner: &Arc<T>,
        id: TimerId,
        once: bool,
        f: impl FnOnce(),
    ) -> Result<(), String> {
        let _gate = lock(&self.gate);
        {
            let mut set = lock(&self.set);
            if set.closed {
                return Ok(());
            }
            if once {
                set.ids.remove(&id);
            }
        }
        // Restored when `f` returns or panics (the wheel catches the panic).
        let _mark = TimerMark::set(owner);
        panic::catch_unwind(AssertUnwindSafe(f))
            .map_err(|payload| panic_message(payload.as_ref()).to_string())
    }

    /// The connection has ended: waits for a callback that is running, then cancels every
    /// pending timer. Afterwards no callback of this connection runs and none can be added.
    /// Called on the reader thread before `on_close`.
    pub(crate) fn close(&self, wheel: &TimingWheel) {
        let ids = {
            let _gate = lock(&self.gate);
            let mut set = lock(&self.set);
            set.closed = true;
            // Into a Vec: a new set would seed its hasher on this thread, with a getrandom
            // system call on a connection's reader thread that never made a set before.
            set.ids.drain().collect::<Vec<_>>()
        };
        for id in ids {
            wheel.cancel(id);
        }
    }
}
