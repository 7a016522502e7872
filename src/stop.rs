//! What the server, UDP server and client handles share about stopping: a latch that threads
//! wait on until something has finished, and the guard that stops a service when the last
//! clone of its handle is dropped.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::lifecycle::lock;

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
