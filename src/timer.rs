//! Timing wheel (stub, being written).
use std::time::Duration;

/// Identifies a scheduled timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(u64);

/// A hashed timing wheel on its own thread.
#[derive(Clone)]
pub struct TimingWheel {}

impl TimingWheel {
    /// The process-wide wheel.
    pub fn global() -> &'static TimingWheel {
        static W: TimingWheel = TimingWheel {};
        &W
    }
    /// Runs `f` once, `after` from now.
    pub fn schedule<F: FnOnce() + Send + 'static>(&self, after: Duration, f: F) -> TimerId {
        std::thread::spawn(move || {
            std::thread::sleep(after);
            f()
        });
        TimerId(0)
    }
    /// Cancels a timer.
    pub fn cancel(&self, id: TimerId) -> bool {
        let _ = id;
        false
    }
}
