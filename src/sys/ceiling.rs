//! The process's thread ceiling: how many connection threads (readers, writers, FIN threads)
//! may run at once, and the one way they are started, which refuses past it.
//!
//! A thread per connection meets the kernel's per-process limits long before memory runs out.
//! On Linux the first is `vm.max_map_count` (65 530 memory maps by default): each std thread
//! takes four maps (its stack and guard page, and the signal stack std gives it, with its own
//! guard page), so a process holds about 16 000 threads. Past that, starting a thread does not
//! always fail cleanly: when the stack is mapped but the signal stack is not, std aborts the
//! whole process from inside the new thread (rust-lang/rust#78497), and every connection is
//! lost. So threadnet counts its own connection threads and refuses to start one past a
//! ceiling computed from `vm.max_map_count`, leaving room for everything else the process maps:
//! the caller sees an ordinary error (an accepted connection is refused and counted, a send
//! that needed a writer fails) while every connection already open keeps being served.
//!
//! The other limits (`RLIMIT_NOFILE`, `RLIMIT_NPROC`, `kernel.threads-max`, `kernel.pid_max`)
//! fail cleanly where they are met: `accept` or `spawn` returns an error.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};

/// Memory maps each std thread takes: stack, guard page, signal stack and its guard page.
const MAPS_PER_THREAD: usize = 4;
/// `vm.max_map_count`'s default, used where it cannot be read.
const DEFAULT_MAX_MAPS: usize = 65_530;

/// A bound on the threads started through it, counted while they run.
pub(crate) struct Ceiling {
    max: usize,
    live: AtomicUsize,
}

/// Ends the count of one thread when it exits (a panic included).
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Ceiling {
    /// A ceiling of `max` threads.
    pub(crate) const fn new(max: usize) -> Ceiling {
        Ceiling {
            max,
            live: AtomicUsize::new(0),
        }
    }

    /// The process's ceiling for connection threads, computed once from the map limit and the
    /// maps the process has when it is first asked (see the module docs).
    pub(crate) fn global() -> &'static Ceiling {
        static GLOBAL: OnceLock<Ceiling> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let max_maps = read_number("/proc/sys/vm/max_map_count").unwrap_or(DEFAULT_MAX_MAPS);
            let maps_now = std::fs::read_to_string("/proc/self/maps")
                .map(|m| m.lines().count())
                .unwrap_or(0);
            Ceiling::new(threads_for_maps(max_maps, maps_now))
        })
    }

    /// The most threads that may run at once.
    #[cfg(test)]
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Threads started through this ceiling that still run.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Starts `f` on a new thread named `name` with a stack of `stack_size` bytes, counted
    /// until it exits.
    ///
    /// # Errors
    /// The ceiling is reached (the error says so, with the limit), or the OS refused the
    /// thread.
    pub(crate) fn spawn<F, T>(
        &'static self,
        name: &str,
        stack_size: usize,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.live.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.live.fetch_sub(1, Ordering::SeqCst);
            return Err(io::Error::other(format!(
                "the process is at its ceiling of {} connection threads (vm.max_map_count)",
                self.max
            )));
        }
        let spawned = thread::Builder::new()
            .name(name.into())
            .stack_size(stack_size)
            .spawn(move || {
                let _counted = Counted(&self.live);
                f()
            });
        if spawned.is_err() {
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
        spawned
    }
}

/// Threads a process with `maps_now` maps may start under a limit of `max_maps`: the maps left,
/// less an eighth kept for everything else (allocator arenas, files mapped, other threads),
/// four to a thread.
pub(crate) fn threads_for_maps(max_maps: usize, maps_now: usize) -> usize {
    let left = max_maps.saturating_sub(maps_now);
    (left - left / 8) / MAPS_PER_THREAD
}

fn read_number(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn the_default_map_limit_leaves_room_for_about_fourteen_thousand_threads() {
        assert_eq!(threads_for_maps(65_530, 100), 14_313);
        assert_eq!(threads_for_maps(100, 200), 0, "no room, no thread");
    }

    #[test]
    fn the_global_ceiling_is_read_from_the_map_limit() {
        let c = Ceiling::global();
        assert!(c.max() > 1000, "a ceiling of {} threads", c.max());
    }

    #[test]
    fn a_thread_past_the_ceiling_is_refused_and_one_more_starts_once_one_ends() {
        static SMALL: Ceiling = Ceiling::new(2);
        let (release_tx, release) = mpsc::channel::<()>();
        let release = std::sync::Arc::new(std::sync::Mutex::new(release));
        let start = |name: &str| {
            let release = std::sync::Arc::clone(&release);
            SMALL.spawn(name, 64 * 1024, move || {
                let _ = release.lock().unwrap().recv();
            })
        };
        let a = start("a").unwrap();
        let b = start("b").unwrap();
        let refused = start("c").unwrap_err();
        assert!(refused.to_string().contains("ceiling of 2"), "{refused}");
        assert_eq!(SMALL.live(), 2);
        release_tx.send(()).unwrap(); // one of the two ends; which one does not matter
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while SMALL.live() != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the count never dropped"
            );
            thread::yield_now(); // the count drops as the thread's last statement runs
        }
        let c = start("c").expect("room again");
        release_tx.send(()).unwrap();
        release_tx.send(()).unwrap();
        for h in [a, b, c] {
            h.join().unwrap();
        }
        assert_eq!(SMALL.live(), 0);
    }
}
