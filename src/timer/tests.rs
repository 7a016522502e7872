//! Tests of the threaded wheel and the manual clock. The pure wheel's own tests are in
//! `wheel.rs`.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Long enough never to be reached by a correct wheel, short enough to fail fast.
const PATIENCE: Duration = Duration::from_secs(5);

// ---- the threaded wheel ---------------------------------------------------------------

#[test]
fn fires_once_never_early_on_the_timer_thread() {
    let wheel = TimingWheel::new(ms(5));
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for after in [0, 1, 3, 5, 17, 40] {
        let (tx, calls) = (tx.clone(), Arc::clone(&calls));
        let start = Instant::now();
        wheel.after(ms(after), move || {
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
    let last = wheel.after(ms(20), move || tx.send((0, Duration::ZERO, None)).unwrap());
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap().0, 0);
    assert!(!wheel.cancel(last));
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}

#[test]
fn cancel_before_firing_returns_true_and_it_never_fires() {
    let wheel = TimingWheel::new(ms(1));
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let id = wheel.after(ms(30), move || tx2.send("cancelled").unwrap());
    assert_eq!(wheel.len(), 1);
    assert!(wheel.cancel(id));
    assert_eq!(wheel.len(), 0);
    wheel.after(ms(60), move || tx.send("sentinel").unwrap());
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
    let id = wheel.after(ms(2), move || tx.send(()).unwrap());
    rx.recv_timeout(PATIENCE).unwrap();
    assert!(!wheel.cancel(id));
}

#[test]
fn cancel_twice_returns_true_then_false() {
    let wheel = TimingWheel::new(ms(1));
    let id = wheel.after(ms(1000), || {});
    assert!(wheel.cancel(id));
    assert!(!wheel.cancel(id));
    assert!(wheel.is_empty());
}

#[test]
fn ids_are_unique() {
    let wheel = TimingWheel::new(ms(1));
    let a = wheel.after(ms(1000), || {});
    let b = wheel.after(ms(1000), || {});
    assert_ne!(a, b);
    assert!(wheel.cancel(a));
    let c = wheel.after(ms(1000), || {});
    assert_ne!(a, c);
    assert!(!wheel.cancel(a));
    assert_eq!(wheel.stop(), 2);
}

#[test]
fn callback_can_schedule_a_timer() {
    let wheel = TimingWheel::new(ms(1));
    let (tx, rx) = mpsc::channel();
    let handle = wheel.clone();
    wheel.after(ms(5), move || {
        let at = Instant::now();
        handle.after(ms(10), move || tx.send(at.elapsed()).unwrap());
    });
    let elapsed = rx.recv_timeout(PATIENCE).unwrap();
    assert!(elapsed >= ms(10), "inner timer fired after {elapsed:?}");
}

#[test]
fn callback_can_cancel_another_timer_and_itself() {
    let wheel = TimingWheel::new(ms(1));
    let (tx, rx) = mpsc::channel();
    let tx_victim = tx.clone();
    let victim = wheel.after(ms(50), move || tx_victim.send("victim").unwrap());
    let handle = wheel.clone();
    let (self_tx, self_rx) = mpsc::channel();
    let tx_killer = tx.clone();
    let killer = wheel.after(ms(5), move || {
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
    wheel.after(ms(80), move || tx.send("sentinel").unwrap());
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
    wheel.after(ms(10), move || {
        let second = id_rx.recv().unwrap();
        tx1.send(format!("cancel: {}", handle.cancel(second)))
            .unwrap();
    });
    let second = wheel.after(ms(10), move || tx.send("second ran".to_owned()).unwrap());
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
    wheel.after(ms(2), || panic!("boom (expected by a test)"));
    wheel.after(ms(2), || std::panic::panic_any(42_u8));
    wheel.after(ms(20), move || tx.send("after the panic").unwrap());
    assert_eq!(rx.recv_timeout(PATIENCE), Ok("after the panic"));
    // And the wheel still accepts and fires new timers.
    let (tx, rx) = mpsc::channel();
    wheel.after(ms(1), move || tx.send(()).unwrap());
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(()));
}

#[test]
fn slow_callback_delays_but_never_skips() {
    let wheel = TimingWheel::new(ms(1));
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    wheel.after(ms(2), || {
        // Blocks the wheel thread for 40 ms: ticks 3..40 are missed meanwhile.
        thread::sleep(ms(40));
    });
    for after in [3, 5, 10, 11, 25, 39, 60] {
        let tx = tx.clone();
        wheel.after(ms(after), move || {
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
    let a = wheel.after(ms(1000), || {});
    wheel.after(ms(2000), || {});
    wheel.after(ms(3), move || tx.send(()).unwrap());
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
fn stop_drops_unfired_callbacks_and_joins_the_thread() {
    let wheel = TimingWheel::new(ms(1));
    let (tx, rx) = mpsc::channel::<()>();
    for after in [500, 1000, 60_000] {
        let tx = tx.clone();
        wheel.after(ms(after), move || tx.send(()).unwrap());
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
    let id = wheel.after(ms(0), move || tx.send(()).unwrap());
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    assert!(!wheel.cancel(id));
    assert!(wheel.is_empty());
}

#[test]
fn stop_from_a_callback_does_not_deadlock() {
    let wheel = TimingWheel::new(ms(1));
    let (tx, rx) = mpsc::channel();
    let handle = wheel.clone();
    wheel.after(ms(60_000), || {});
    wheel.after(ms(2), move || tx.send(handle.stop()).unwrap());
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
    wheel.after(ms(60_000), move || tx.send(()).unwrap());
    // A clone going away does not stop anything.
    let clone = wheel.clone();
    drop(clone);
    let (tx2, rx2) = mpsc::channel();
    wheel.after(ms(2), move || tx2.send(()).unwrap());
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
    wheel.after(ms(2), move || {
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
fn huge_delay_does_not_overflow() {
    let wheel = TimingWheel::new(ms(1));
    let id = wheel.after(Duration::MAX, || {});
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

#[test]
fn fires_in_deadline_order_across_levels() {
    // 1 ms tick: 5 and 20 ms are on level 0, 70..3000 ms on levels 1 and 2.
    let wheel = TimingWheel::new(ms(1));
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    for after in [600, 5, 3000, 70, 20, 200, 4100] {
        let tx = tx.clone();
        wheel.after(ms(after), move || tx.send(after).unwrap());
    }
    let order: Vec<u64> = (0..7).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    assert_eq!(order, [5, 20, 70, 200, 600, 3000, 4100]);
    assert!(start.elapsed() >= ms(4100));
}

#[test]
fn idle_wheel_sleeps_until_the_next_deadline_and_wakes_for_an_earlier_one() {
    let wheel = TimingWheel::new(ms(1));
    let (tx, rx) = mpsc::channel();
    // The thread sleeps until this one (60 s away)...
    wheel.after(Duration::from_secs(60), || {});
    // ...and a schedule due sooner must wake it.
    let start = Instant::now();
    wheel.after(ms(5), move || tx.send(start.elapsed()).unwrap());
    let elapsed = rx.recv_timeout(PATIENCE).unwrap();
    assert!(elapsed >= ms(5), "fired early: {elapsed:?}");
    assert_eq!(wheel.stop(), 1);
}

#[test]
fn at_fires_at_an_instant_and_a_past_instant_fires_at_once() {
    let wheel = TimingWheel::new(ms(1));
    let (tx, rx) = mpsc::channel();
    let when = Instant::now() + ms(15);
    let tx2 = tx.clone();
    wheel.at(when, move || tx2.send(("future", Instant::now())).unwrap());
    wheel.at(Instant::now() - ms(50), move || {
        tx.send(("past", Instant::now())).unwrap()
    });
    let (first, _) = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(first, "past");
    let (second, fired) = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(second, "future");
    assert!(fired >= when, "fired before its instant");
}

#[test]
fn every_runs_until_cancelled_and_the_id_stays_valid() {
    let wheel = TimingWheel::new(ms(1));
    let (tx, rx) = mpsc::channel();
    let id = wheel.every(ms(3), move || {
        let _ = tx.send(Instant::now());
    });
    let times: Vec<Instant> = (0..5).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    assert!(times.windows(2).all(|w| w[1] > w[0]));
    assert_eq!(wheel.len(), 1);
    assert!(wheel.cancel(id));
    assert!(!wheel.cancel(id));
    assert!(wheel.is_empty());
    // The callback (and its sender) was dropped: the channel ends after what was in flight.
    while rx.recv_timeout(PATIENCE).is_ok() {}
}

#[test]
fn global_wheel_is_shared_and_fires() {
    let a = TimingWheel::global();
    let b = TimingWheel::global();
    assert!(std::ptr::eq(a, b));
    assert!(Arc::ptr_eq(&a.inner, &a.clone().inner));
    assert_eq!(a.tick(), ms(1));
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    a.after(ms(15), move || tx.send(start.elapsed()).unwrap());
    let elapsed = rx.recv_timeout(PATIENCE).unwrap();
    assert!(elapsed >= ms(15));
}

// ---- the manual clock -------------------------------------------------------------------

/// What fired, with the clock's reading since the origin at the time.
type Log = Arc<Mutex<Vec<(&'static str, Duration)>>>;

/// A manual wheel and a log of what fired, with the clock reading at the time.
fn manual() -> (TimingWheel, ManualClock, Log) {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    (wheel, clock, Arc::new(Mutex::new(Vec::new())))
}

fn log_at(
    wheel: &TimingWheel,
    log: &Log,
    origin: Instant,
    after: Duration,
    name: &'static str,
) -> TimerId {
    let (log, w) = (Arc::clone(log), wheel.clone());
    wheel.after(after, move || {
        log.lock().unwrap().push((name, w.now() - origin));
    })
}

#[test]
fn manual_clock_fires_across_levels_in_order_each_at_its_deadline() {
    let (wheel, clock, log) = manual();
    let origin = clock.now();
    let hour = Duration::from_secs(3600);
    for (after, name) in [
        (hour, "1 h"),
        (ms(1), "1 ms"),
        (Duration::from_secs(10), "10 s"),
        (ms(100), "100 ms"),
    ] {
        log_at(&wheel, &log, origin, after, name);
    }
    clock.advance(ms(99));
    assert_eq!(*log.lock().unwrap(), [("1 ms", ms(1))], "only what is due");
    clock.advance(hour);
    assert_eq!(
        *log.lock().unwrap(),
        [
            ("1 ms", ms(1)),
            ("100 ms", ms(100)),
            ("10 s", Duration::from_secs(10)),
            ("1 h", hour),
        ]
    );
    assert_eq!(clock.now() - origin, hour + ms(99));
    assert!(wheel.is_empty());
}

#[test]
fn manual_clock_cancel_before_and_after_firing() {
    let (wheel, clock, log) = manual();
    let origin = clock.now();
    let early = log_at(&wheel, &log, origin, ms(10), "early");
    let late = log_at(&wheel, &log, origin, ms(20), "late");
    clock.advance(ms(15));
    assert!(!wheel.cancel(early), "already fired");
    assert!(wheel.cancel(late), "not fired yet");
    clock.advance(Duration::from_secs(1));
    assert_eq!(*log.lock().unwrap(), [("early", ms(10))]);
}

#[test]
fn manual_clock_repeating_timer_fires_exactly_once_per_interval_without_drift() {
    // 7 ms is not a multiple of the 3 ms tick: rounding must not accumulate.
    let (wheel, clock) = TimingWheel::manual(ms(3));
    let origin = clock.now();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, w) = (Arc::clone(&seen), wheel.clone());
    wheel.every(ms(7), move || s.lock().unwrap().push(w.now() - origin));
    for _ in 0..1000 {
        clock.advance(ms(7));
    }
    // Run 1000 is due at 7000 ms, which falls inside a tick: it fires on the next boundary.
    clock.advance(ms(2));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1000);
    for (n, at) in seen.iter().enumerate() {
        let due = ms(7) * (n as u32 + 1);
        // Never early, and never more than one tick late: no drift after 1000 periods.
        assert!(
            *at >= due && *at < due + ms(3),
            "run {n} at {at:?}, due {due:?}"
        );
    }
}

#[test]
fn manual_clock_one_big_advance_runs_every_period() {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    wheel.every(ms(10), move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    clock.advance(ms(1000));
    assert_eq!(runs.load(Ordering::SeqCst), 100);
}

#[test]
fn overrunning_repeating_callback_skips_missed_periods() {
    // The callback itself moves the clock 25 ms on each run: periods 2 and 3 (due at 20
    // and 30 ms) pass while it runs and are skipped; run 2 comes at 40 ms.
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let origin = clock.now();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, w, c) = (Arc::clone(&seen), wheel.clone(), clock.clone());
    wheel.every(ms(10), move || {
        let mut seen = s.lock().unwrap();
        seen.push(w.now() - origin);
        if seen.len() == 1 {
            drop(seen);
            c.advance(ms(25));
        }
    });
    clock.advance(ms(10));
    assert_eq!(clock.now() - origin, ms(35), "the clock never moves back");
    clock.advance(ms(20));
    assert_eq!(*seen.lock().unwrap(), [ms(10), ms(40), ms(50)]);
}

#[test]
fn callbacks_that_reschedule_themselves() {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let origin = clock.now();
    let seen = Arc::new(Mutex::new(Vec::new()));
    fn again(wheel: TimingWheel, seen: Arc<Mutex<Vec<Duration>>>, origin: Instant) {
        let w = wheel.clone();
        wheel.after(ms(5), move || {
            seen.lock().unwrap().push(w.now() - origin);
            if seen.lock().unwrap().len() < 4 {
                again(w, seen, origin);
            }
        });
    }
    again(wheel.clone(), Arc::clone(&seen), origin);
    clock.advance(ms(100));
    assert_eq!(*seen.lock().unwrap(), [ms(5), ms(10), ms(15), ms(20)]);
    assert!(wheel.is_empty());
}

#[test]
fn repeating_callback_cancels_itself() {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let runs = Arc::new(AtomicUsize::new(0));
    let (id_tx, id_rx) = mpsc::channel::<TimerId>();
    let (r, w) = (Arc::clone(&runs), wheel.clone());
    let cancelled = Arc::new(Mutex::new(None));
    let c = Arc::clone(&cancelled);
    let id = wheel.every(ms(2), move || {
        if r.fetch_add(1, Ordering::SeqCst) == 2 {
            *c.lock().unwrap() = Some(w.cancel(id_rx.recv().unwrap()));
        }
    });
    id_tx.send(id).unwrap();
    clock.advance(ms(100));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(
        *cancelled.lock().unwrap(),
        Some(true),
        "it prevented later runs"
    );
    assert!(wheel.is_empty());
}

#[test]
fn panicking_repeating_callback_is_reported_and_retired() {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    wheel.every(ms(1), move || {
        r.fetch_add(1, Ordering::SeqCst);
        panic!("boom (expected by a test)");
    });
    let after = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&after);
    wheel.after(ms(5), move || {
        a.fetch_add(1, Ordering::SeqCst);
    });
    clock.advance(ms(10));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(after.load(Ordering::SeqCst), 1, "the wheel went on");
    assert!(wheel.is_empty());
}

#[test]
fn manual_stop_counts_unfired_timers() {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    wheel.after(ms(1), || {});
    wheel.after(ms(50), || {});
    wheel.every(ms(30), || {});
    clock.advance(ms(40));
    assert_eq!(wheel.len(), 2);
    assert_eq!(wheel.stop(), 2);
    clock.advance(ms(100)); // nothing left to fire, no panic
    assert_eq!(wheel.stop(), 0);
}

#[test]
fn task_fits_the_memory_target() {
    // At most 64 bytes per pending timer, excluding the closure: slab entry plus its index
    // in a slot's vector.
    let entry = std::mem::size_of::<wheel::Entry<driver::Task>>();
    assert_eq!(entry, 40);
    assert!(entry + 4 <= 64, "{entry} bytes");
}
