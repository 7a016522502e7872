//! What a server's handles and its accept thread share: the registry of its connections, the
//! stop flag, the counters, the accept thread's handle, and the stop sequence (no more
//! accepts, then every connection drained or shut down by the deadline, then joined).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::conn::metrics::Metrics;
use crate::conn::registry::Registry;
use crate::sync::{deadline_after, lock, Latch, Stop};
use crate::sys::transport::{wake_acceptor, Addr};

/// The state a server's handles and its accept thread share; see the module docs.
pub(super) struct Inner<C: Codec> {
    pub(super) local_addr: Addr,
    pub(super) registry: Registry<C>,
    pub(super) stopping: AtomicBool,
    pub(super) metrics: Arc<Metrics>,
    pub(super) accept_thread: Mutex<Option<JoinHandle<()>>>,
    /// The listener may be shared with another process: no wake-up connection (its accept
    /// polls), and a connection accepted while stopping is served, not dropped.
    pub(super) shared: bool,
    pub(super) stopped: Latch,
}

impl<C: Codec> Inner<C> {
    /// Stops: no more accepts, then every connection shuts down with `deadline`; with
    /// `drain`, the connections first get until the deadline to end on their own.
    pub(super) fn stop(&self, deadline: Duration, drain: bool) {
        if !self.stopping.swap(true, Ordering::SeqCst) && !self.shared {
            // A blocked accept() cannot be interrupted (rust-lang/rust #67978): connect to
            // ourselves so it returns, and unpark it in case it sleeps in its backoff.
            if let Some(t) = lock(&self.accept_thread).as_ref() {
                t.thread().unpark();
            }
            wake_acceptor(&self.local_addr);
        }
        let accept = lock(&self.accept_thread).take();
        let Some(accept) = accept else {
            // Another stop() is doing the work: wait for it; but not from one of a
            // connection's own threads (a handler, on_close, a watermark observer, a timer,
            // on_idle), which that stop may be joining: the wait would never end.
            if !self.registry.is_own_thread_of_any() {
                self.wait();
            }
            return;
        };
        let _ = accept.join();
        let until = deadline_after(deadline);
        if drain {
            // Ask every connection to end at its next boundary (an HTTP server answers the
            // request in flight with `Connection: close`), then give them until the deadline.
            self.registry.for_each(|conn| conn.wind_down());
            self.registry.wait_empty(until);
        }
        let left = until.saturating_duration_since(Instant::now());
        self.registry.for_each(|conn| conn.stop(left));
        // The connections' own deadline timers close stragglers; this does too, in case the
        // timing wheel cannot (stop() called from one of its callbacks blocks its thread).
        if !self.registry.wait_empty(until) {
            self.registry.for_each(|conn| conn.core.force_close());
        }
        self.registry.join_all();
        self.stopped.set();
    }

    pub(super) fn wait(&self) {
        self.stopped.wait();
    }
}

impl<C: Codec> Stop for Inner<C> {
    fn stop(&self, deadline: Duration) {
        Inner::stop(self, deadline, false);
    }
}
