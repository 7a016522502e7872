//! The timing wheel against a binary-heap timer queue, the design of Tao's and muduo's timers.
//!
//! # The baseline: an indexed binary min-heap
//!
//! [`HeapTimers`] is written here, as strong as that design gets, and used the same way as the
//! wheel:
//!
//! * a min-heap in a `Vec` of `(deadline, slab index)` pairs, keyed by the deadline in
//!   nanoseconds; the key sits in the heap array itself, so sifting compares without chasing a
//!   pointer (Tao's heap of `*timerType` does chase one);
//! * the timers in a slab (`Vec` plus free list) with a generation per slot, so an id is an
//!   index and a generation, as the wheel's is, and each timer knows **its position in the
//!   heap**, updated on every move. So cancel is a real `O(log n)` removal (swap in the last
//!   element, sift it up or down), as Go's `container/heap` `Remove` used by Tao, not a
//!   tombstone left for the pop to skip. `std`'s `BinaryHeap` cannot remove at an index, so
//!   the sift is written here;
//! * boxed `FnOnce` callbacks, run outside the lock (a callback may schedule and cancel), one
//!   per lock round trip, under `catch_unwind`, as the wheel runs them;
//! * one `Mutex` around all of it, taken once per operation, as the wheel takes its own;
//! * a manual clock (a `u64` of nanoseconds that `advance` moves), as the manual wheel's.
//!
//! `schedule` is `O(log n)` (sift up), `cancel` `O(log n)` (sift up or down), popping a due
//! timer `O(log n)` (sift down the whole height, with a cache miss per level once the heap
//! outgrows the cache).
//!
//! # What is measured
//!
//! * `schedule_cancel/{wheel,heap}/N`: the life of a request timeout on a busy server. `N`
//!   long timers are pending (idle timeouts and the like: deadlines uniform over 1 s .. 1 h);
//!   one request timeout is scheduled (10 ms .. 1 s, so sooner than every pending one) and
//!   cancelled, as when the reply arrives in time. Time per pair. This is where a heap pays its
//!   `log n`: the new deadline is the smallest, so it sifts up to the root and its removal
//!   sifts the last element back down, a cache miss per level once `N` is large. It is the
//!   pattern Netty's `HashedWheelTimer` was built for.
//! * `schedule_cancel_same/{wheel,heap}/N`: the same, but the new timer's deadline is drawn
//!   from the pending timers' own range. Here a heap's insert moves about 1.6 levels on
//!   average and the removal of the newest element stays at the end of the array, so the heap
//!   is `O(1)` in practice too: shown so that the first group is not read as the only truth.
//! * In both, the wheel is a [`TimingWheel::manual`] one
//!   (1 ms tick) so that no timer thread runs beside the measurement: a real wheel's thread
//!   would be woken by every schedule earlier than its next deadline, and on two cores that
//!   wake-up lands in the timings. The 1e6 timers are set up before the timed loop.
//! * `fire/{wheel,heap}/1000000`: 1e6 timers due at random instants within one second, fired by
//!   moving the manual clock in 1 ms steps; throughput in timers fired per second. Each
//!   iteration rebuilds its timers outside the timed part (`iter_custom`).
//! * Printed before criterion starts: memory per pending timer (RSS from `/proc/self/statm`
//!   before and after scheduling 1e6 timers whose closures are zero-sized, so their boxes do
//!   not allocate), and the lateness of 200 timers on a real 1 ms wheel.
//!
//! ```sh
//! cargo bench --bench timer
//! cargo bench --bench timer -- schedule_cancel/wheel    # a subset, by name
//! ```

use std::cell::Cell;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use threadnet::{timer::ManualClock, TimingWheel};

/// Tick of the manual wheels: the global wheel's.
const TICK: Duration = Duration::from_millis(1);

/// Timers that `fire` and the memory figure schedule.
const MILLION: usize = 1_000_000;

/// Deadlines of pending timers: uniform over this range, in milliseconds from now.
const PENDING_MS: (u64, u64) = (1_000, 3_600_000);

/// A boxed one-shot callback, as both queues store it.
type Callback = Box<dyn FnOnce() + Send + 'static>;

// ---------------------------------------------------------------------------------------------
// The baseline
// ---------------------------------------------------------------------------------------------

/// An id of a [`HeapTimers`] timer: slab index (low 32 bits) and generation (high 32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeapId(u64);

/// One element of the heap array: the key, and where the timer lives in the slab.
#[derive(Clone, Copy)]
struct HeapItem {
    deadline: u64,
    slot: u32,
}

/// A timer in the slab.
struct Slot {
    generation: u32,
    /// Its index in the heap array while pending; the next free slot while free.
    pos: u32,
    /// `Some` while pending.
    callback: Option<Callback>,
}

struct HeapState {
    /// The manual clock, in nanoseconds since the queue was made.
    now: u64,
    /// Min-heap on `deadline`.
    heap: Vec<HeapItem>,
    slots: Vec<Slot>,
    free: u32,
}

/// The baseline timer queue: an indexed binary min-heap behind a mutex (see the module docs).
struct HeapTimers {
    state: Mutex<HeapState>,
}

const NIL: u32 = u32::MAX;

impl HeapTimers {
    fn new() -> HeapTimers {
        HeapTimers {
            state: Mutex::new(HeapState {
                now: 0,
                heap: Vec::new(),
                slots: Vec::new(),
                free: NIL,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HeapState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` once the clock has moved `after` past its current reading.
    fn after<F: FnOnce() + Send + 'static>(&self, after: Duration, f: F) -> HeapId {
        let callback: Callback = Box::new(f);
        let mut guard = self.lock();
        let s = &mut *guard;
        let deadline = s.now + after.as_nanos() as u64;
        let slot = if s.free != NIL {
            let slot = s.free;
            let entry = &mut s.slots[slot as usize];
            s.free = entry.pos;
            entry.callback = Some(callback);
            slot
        } else {
            s.slots.push(Slot {
                generation: 1,
                pos: NIL,
                callback: Some(callback),
            });
            (s.slots.len() - 1) as u32
        };
        let pos = s.heap.len();
        s.heap.push(HeapItem { deadline, slot });
        s.sift_up(pos);
        HeapId(u64::from(s.slots[slot as usize].generation) << 32 | u64::from(slot))
    }

    /// Cancels a pending timer: `true` if it had not run. Its callback is dropped outside the
    /// lock, as the wheel drops it.
    fn cancel(&self, id: HeapId) -> bool {
        let slot = (id.0 & u64::from(u32::MAX)) as usize;
        let generation = (id.0 >> 32) as u32;
        let callback = {
            let mut s = self.lock();
            match s.slots.get(slot) {
                Some(e) if e.generation == generation && e.callback.is_some() => {}
                _ => return false,
            }
            let pos = s.slots[slot].pos as usize;
            s.remove_at(pos);
            s.release(slot)
        };
        drop(callback);
        true
    }

    /// Moves the clock forward by `by`, running every timer that comes due on the calling
    /// thread, in deadline order, each outside the lock.
    fn advance(&self, by: Duration) {
        let mut s = self.lock();
        let target = s.now + by.as_nanos() as u64;
        while let Some(&HeapItem { deadline, slot }) =
            s.heap.first().filter(|t| t.deadline <= target)
        {
            s.now = s.now.max(deadline);
            s.remove_at(0);
            let callback = s.release(slot as usize);
            drop(s);
            let _ = catch_unwind(AssertUnwindSafe(callback));
            s = self.lock();
        }
        s.now = s.now.max(target);
    }

    fn len(&self) -> usize {
        self.lock().heap.len()
    }
}

impl HeapState {
    /// Frees slab slot `slot` and hands back its callback.
    fn release(&mut self, slot: usize) -> Callback {
        let entry = &mut self.slots[slot];
        entry.generation = entry.generation.wrapping_add(1).max(1);
        entry.pos = self.free;
        self.free = slot as u32;
        entry
            .callback
            .take()
            .expect("a pending timer has its callback")
    }

    /// Removes the heap element at `pos`: the last element takes its place and is sifted.
    fn remove_at(&mut self, pos: usize) {
        let last = self.heap.pop().expect("removing from an empty heap");
        if pos < self.heap.len() {
            self.heap[pos] = last;
            self.slots[last.slot as usize].pos = pos as u32;
            if pos > 0 && last.deadline < self.heap[(pos - 1) / 2].deadline {
                self.sift_up(pos);
            } else {
                self.sift_down(pos);
            }
        }
    }

    /// Moves the element at `pos` up to its place, updating the positions of what it passes.
    fn sift_up(&mut self, mut pos: usize) {
        let item = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / 2;
            let p = self.heap[parent];
            if p.deadline <= item.deadline {
                break;
            }
            self.heap[pos] = p;
            self.slots[p.slot as usize].pos = pos as u32;
            pos = parent;
        }
        self.heap[pos] = item;
        self.slots[item.slot as usize].pos = pos as u32;
    }

    /// Moves the element at `pos` down to its place, updating the positions of what it passes.
    fn sift_down(&mut self, mut pos: usize) {
        let item = self.heap[pos];
        let len = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right].deadline < self.heap[left].deadline {
                right
            } else {
                left
            };
            let c = self.heap[child];
            if item.deadline <= c.deadline {
                break;
            }
            self.heap[pos] = c;
            self.slots[c.slot as usize].pos = pos as u32;
            pos = child;
        }
        self.heap[pos] = item;
        self.slots[item.slot as usize].pos = pos as u32;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// xorshift64: a cheap deterministic PRNG, the same stream for both queues.
struct Rng(Cell<u64>);

impl Rng {
    fn new() -> Rng {
        Rng(Cell::new(0x9E37_79B9_7F4A_7C15))
    }

    fn next(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.set(x);
        x
    }

    /// Uniform (near enough) in `lo..hi`.
    fn range(&self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.next() % (hi - lo)
    }

    /// A deadline of a pending timer: 1 s .. 1 h from now, at millisecond granularity.
    fn pending_delay(&self) -> Duration {
        Duration::from_millis(self.range(PENDING_MS))
    }

    /// A request timeout: 10 ms .. 1 s, sooner than every pending timer.
    fn request_delay(&self) -> Duration {
        Duration::from_millis(self.range((10, 1_000)))
    }
}

/// Timers fired by `fire`'s callbacks. A static, so the closures are zero-sized and their boxes
/// do not allocate: the measurement is the queue's, not the allocator's.
static FIRED: AtomicUsize = AtomicUsize::new(0);

fn count_fired() {
    FIRED.fetch_add(1, Ordering::Relaxed);
}

fn manual_wheel_with(n: usize, rng: &Rng) -> (TimingWheel, ManualClock) {
    let (wheel, clock) = TimingWheel::manual(TICK);
    for _ in 0..n {
        wheel.after(rng.pending_delay(), || {});
    }
    assert_eq!(wheel.len(), n);
    (wheel, clock)
}

fn heap_with(n: usize, rng: &Rng) -> HeapTimers {
    let heap = HeapTimers::new();
    for _ in 0..n {
        heap.after(rng.pending_delay(), || {});
    }
    assert_eq!(heap.len(), n);
    heap
}

// ---------------------------------------------------------------------------------------------
// Printed figures
// ---------------------------------------------------------------------------------------------

/// Resident set size in bytes, from `/proc/self/statm` (Linux); `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The kernel's page size, from `/proc/self/smaps`; 4 KiB if it cannot be read.
fn page_size() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|smaps| {
            smaps
                .lines()
                .find_map(|l| l.strip_prefix("KernelPageSize:"))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(4096, |kb| kb * 1024)
}

/// RSS growth per timer while `build` schedules `MILLION` timers; keeps what `build` made alive
/// until both figures are taken, so that no memory freed by one is reused by the other.
fn memory_per_timer<T>(build: impl FnOnce() -> T) -> Option<(f64, T)> {
    let before = rss_bytes()?;
    let built = build();
    let after = rss_bytes()?;
    Some((after.saturating_sub(before) as f64 / MILLION as f64, built))
}

fn print_memory() {
    // Zero-sized closures: `Box<dyn FnOnce>` of a ZST does not allocate, so this is the
    // queue's own memory (entry, slot or heap array, and their vectors' growth).
    let rng = Rng::new();
    let wheel = memory_per_timer(|| manual_wheel_with(MILLION, &rng));
    let rng = Rng::new();
    let heap = memory_per_timer(|| heap_with(MILLION, &rng));
    match (wheel, heap) {
        (Some((w, _w)), Some((h, _h))) => {
            println!("memory per pending timer: wheel {w:.1} B, heap {h:.1} B (RSS growth over 1e6 timers, closure excluded)");
        }
        _ => println!("memory per pending timer: /proc/self/statm unavailable"),
    }
}

fn print_accuracy() {
    const TIMERS: usize = 200;
    let wheel = TimingWheel::new(TICK);
    let (tx, rx) = mpsc::channel();
    let rng = Rng::new();
    let start = Instant::now();
    let mut deadlines = Vec::with_capacity(TIMERS);
    for i in 0..TIMERS {
        let deadline = start + Duration::from_micros(rng.range((1_000, 50_000)));
        deadlines.push(deadline);
        let tx = tx.clone();
        wheel.at(deadline, move || {
            let _ = tx.send((i, Instant::now()));
        });
    }
    drop(tx);
    // Signed lateness in microseconds: negative would mean early, which the wheel forbids.
    let mut late: Vec<f64> = Vec::with_capacity(TIMERS);
    let give_up = Instant::now() + Duration::from_secs(2);
    while late.len() < TIMERS {
        let left = give_up.saturating_duration_since(Instant::now());
        let Ok((i, fired_at)) = rx.recv_timeout(left) else {
            break;
        };
        let us = if fired_at >= deadlines[i] {
            (fired_at - deadlines[i]).as_secs_f64()
        } else {
            -(deadlines[i] - fired_at).as_secs_f64()
        };
        late.push(us * 1e6);
    }
    wheel.stop();
    late.sort_by(f64::total_cmp);
    if late.is_empty() {
        println!("lateness of a real 1 ms wheel: no timer fired within 2 s");
        return;
    }
    let at = |q: f64| late[((late.len() - 1) as f64 * q).round() as usize];
    println!(
        "lateness of a real 1 ms wheel, {} of {TIMERS} timers at 1..50 ms: min {:.0} µs, median {:.0} µs, p99 {:.0} µs, max {:.0} µs, early {}",
        late.len(),
        at(0.0),
        at(0.5),
        at(0.99),
        at(1.0),
        late.iter().filter(|&&l| l < 0.0).count(),
    );
}

// ---------------------------------------------------------------------------------------------
// Criterion
// ---------------------------------------------------------------------------------------------

fn schedule_cancel(c: &mut Criterion) {
    schedule_cancel_group(c, "schedule_cancel", Rng::request_delay);
    schedule_cancel_group(c, "schedule_cancel_same", Rng::pending_delay);
}

/// One group: with N timers pending, schedule a timer `delay` from now and cancel it.
fn schedule_cancel_group(c: &mut Criterion, name: &str, delay: fn(&Rng) -> Duration) {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    for n in [1_000, 100_000, MILLION] {
        // Set up before the timed loop; the new timers draw from their own stream.
        let setup = Rng::new();
        let (wheel, _clock) = manual_wheel_with(n, &setup);
        let rng = Rng::new();
        g.bench_with_input(BenchmarkId::new("wheel", n), &n, |b, _| {
            b.iter(|| {
                let id = wheel.after(delay(&rng), || {});
                black_box(wheel.cancel(id))
            })
        });
        assert_eq!(wheel.len(), n);
        drop(wheel);

        let heap = heap_with(n, &Rng::new());
        let rng = Rng::new();
        g.bench_with_input(BenchmarkId::new("heap", n), &n, |b, _| {
            b.iter(|| {
                let id = heap.after(delay(&rng), || {});
                black_box(heap.cancel(id))
            })
        });
        assert_eq!(heap.len(), n);
    }
    g.finish();
}

/// Deadlines of `fire`: uniform over the first second, in nanoseconds.
fn fire_delay(rng: &Rng) -> Duration {
    Duration::from_nanos(rng.range((1, 1_000_000_001)))
}

fn fire(c: &mut Criterion) {
    let mut g = c.benchmark_group("fire");
    // Ten samples of one iteration each at least; an iteration of the heap takes about four
    // times the wheel's, so it gets the longer measurement (about 10 iterations each on a
    // loaded 2-core machine). Setting up the timers is not timed but takes about as long.
    g.sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10)
        .throughput(Throughput::Elements(MILLION as u64));
    let steps = 1_000; // 1 ms each: the whole second, and every deadline in it
    g.bench_function(BenchmarkId::new("wheel", MILLION), |b| {
        b.iter_custom(|iters| {
            let rng = Rng::new();
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (wheel, clock) = TimingWheel::manual(TICK);
                for _ in 0..MILLION {
                    wheel.after(fire_delay(&rng), count_fired);
                }
                FIRED.store(0, Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..steps {
                    clock.advance(TICK);
                }
                total += start.elapsed();
                assert_eq!(FIRED.load(Ordering::Relaxed), MILLION);
                assert!(wheel.is_empty());
            }
            total
        })
    });
    g.measurement_time(Duration::from_secs(12));
    g.bench_function(BenchmarkId::new("heap", MILLION), |b| {
        b.iter_custom(|iters| {
            let rng = Rng::new();
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let heap = HeapTimers::new();
                for _ in 0..MILLION {
                    heap.after(fire_delay(&rng), count_fired);
                }
                FIRED.store(0, Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..steps {
                    heap.advance(TICK);
                }
                total += start.elapsed();
                assert_eq!(FIRED.load(Ordering::Relaxed), MILLION);
                assert_eq!(heap.len(), 0);
            }
            total
        })
    });
    g.finish();
}

/// Checks the baseline before timing it: timers fire once, in deadline order, never early, and
/// a cancelled timer never fires.
fn check_baseline() {
    const N: usize = 10_000;
    let heap = HeapTimers::new();
    let rng = Rng::new();
    let fired = std::sync::Arc::new(Mutex::new(Vec::new()));
    let mut ids = Vec::new();
    for i in 0..N {
        let delay = Duration::from_micros(rng.range((0, 10_000_000)));
        let (fired, now) = (fired.clone(), delay.as_nanos() as u64);
        ids.push(heap.after(delay, move || fired.lock().unwrap().push((i, now))));
    }
    for (i, &id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        assert!(heap.cancel(id), "timer {i} could not be cancelled");
        assert!(!heap.cancel(id), "timer {i} was cancelled twice");
    }
    for _ in 0..100 {
        heap.advance(Duration::from_millis(100));
    }
    let fired = fired.lock().unwrap();
    assert_eq!(fired.len(), N - N.div_ceil(3));
    assert!(
        fired.iter().all(|&(i, _)| i % 3 != 0),
        "a cancelled timer fired"
    );
    assert!(
        fired.windows(2).all(|w| w[0].1 <= w[1].1),
        "out of deadline order"
    );
    assert_eq!(heap.len(), 0);
}

fn main() {
    check_baseline();
    print_memory();
    print_accuracy();
    let mut c = Criterion::default().configure_from_args();
    schedule_cancel(&mut c);
    fire(&mut c);
    c.final_summary();
}
