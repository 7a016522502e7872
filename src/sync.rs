//! Small helpers for threads and time that every layer uses: a lock that ignores poisoning,
//! a deadline that cannot overflow, a callback run that turns a panic into its message, a
//! latch that threads wait on until something has finished, and the guard that stops a
//! service (a server, a UDP server, a client) when the last clone of its handle is dropped.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::panic_message;

/// Locks a mutex, ignoring poisoning: no threadnet code panics while holding one of its locks,
/// and user callbacks never run under them.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `timeout` from now, or a year from now if that is past what `Instant` holds.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or(now + Duration::from_secs(86_400 * 365))
}

/// Runs a user callback, turning a panic into its message.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(p.as_ref()).to_string())
}

/// A flag that is set once and waited for: "the server has stopped", "the client thread has
/// ended".
#[derive(Default)]
pub(crate) struct Latch {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Latch {
    pub(crate) fn set(&self) {
        *lock(&self.set) = true;
        self.cv.notify_all();
    }

    pub(crate) fn is_set(&self) -> bool {
        *lock(&self.set)
    }

    /// Waits until the latch is set.
    pub(crate) fn wait(&self) {
        let mut set = lock(&self.set);
        while !*set {
            set = self.cv.wait(set).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits until the latch is set or `until` passes; true if it is set.
    pub(crate) fn wait_until(&self, until: Instant) -> bool {
        let mut set = lock(&self.set);
        while !*set {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            set = self
                .cv
                .wait_timeout(set, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// A service that its handle can stop.
pub(crate) trait Stop: Send + Sync {
    fn stop(&self, deadline: Duration);
}

/// Stops `inner` with `timeout` as the deadline when dropped: every clone of a handle holds one
/// `Arc` of it, so the last handle dropped stops the service.
pub(crate) struct StopOnDrop<T: Stop> {
    pub(crate) inner: Arc<T>,
    pub(crate) timeout: Duration,
}

impl<T: Stop> Drop for StopOnDrop<T> {
    fn drop(&mut self) {
        self.inner.stop(self.timeout);
    }
}
