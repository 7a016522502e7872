//! The inbox: a bounded queue from reader threads to a caller that pulls (a
//! [`PullServer`](crate::PullServer)'s events).
//!
//! A reader thread that finds the inbox full waits, so it stops reading its socket and TCP flow
//! control pushes back on the peer: the same backpressure a slow handler gives. The wait has
//! two ways out (invariant 8, DESIGN.md): the caller takes a message, or the wait is abandoned
//! (the connection was closed by force, the caller went away). It is a `Mutex<VecDeque>` with
//! two condition variables rather than a `sync_channel`, because a sender blocked in a full
//! `sync_channel` cannot be woken by anything but a receive.
//!
//! Each condition variable is notified only when someone sleeps on it (a notify is a futex
//! syscall even with no sleeper).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::conn::CloseReason;
use crate::sync::lock;

/// How often a full-inbox wait, and a caller's wait for a server that may have stopped, look
/// up to see whether they should give up.
pub(crate) const RECHECK: Duration = Duration::from_millis(50);

/// What a pull found.
pub(crate) enum Pulled<T> {
    Item(T),
    /// Nothing arrived in time.
    Empty,
    /// Nothing more will arrive: the source ended, for this reason.
    Ended(CloseReason),
}

struct State<T> {
    items: VecDeque<T>,
    /// Set once the source has ended: pulls return it once the items are taken.
    end: Option<CloseReason>,
    /// The caller went away: pushes stop waiting.
    gone: bool,
    /// Pulls asleep on `ready`.
    pulling: usize,
    /// Pushes asleep on `room`.
    pushing: usize,
}

pub(crate) struct Inbox<T> {
    state: Mutex<State<T>>,
    /// Something to take, or the end.
    ready: Condvar,
    /// Room, or the caller went away.
    room: Condvar,
    capacity: usize,
}

impl<T> Inbox<T> {
    /// An inbox holding at most `capacity` messages (at least 1) before pushes wait.
    pub(crate) fn new(capacity: usize) -> Inbox<T> {
        Inbox {
            state: Mutex::new(State {
                items: VecDeque::new(),
                end: None,
                gone: false,
                pulling: 0,
                pushing: 0,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds `item`, waiting while the inbox is full. Gives the item back if the caller went
    /// away, or if `abandon()` turns true (it is asked every [`RECHECK`] while waiting).
    pub(crate) fn push(&self, item: T, abandon: impl Fn() -> bool) -> Result<(), T> {
        let mut state = lock(&self.state);
        while state.items.len() >= self.capacity {
            if state.gone || abandon() {
                return Err(item);
            }
            state.pushing += 1;
            state = self
                .room
                .wait_timeout(state, RECHECK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            state.pushing -= 1;
        }
        if state.gone {
            return Err(item);
        }
        state.items.push_back(item);
        self.now_takeable(&state);
        Ok(())
    }

    /// Adds `item` even past the capacity: for the few events that must not wait or be lost
    /// (a connection opened or closed), bounded by the number of connections.
    pub(crate) fn push_always(&self, item: T) {
        let mut state = lock(&self.state);
        if !state.gone {
            state.items.push_back(item);
            self.now_takeable(&state);
        }
    }

    /// The caller went away: waiting pushes give up, later ones are refused.
    pub(crate) fn leave(&self) {
        let mut state = lock(&self.state);
        state.gone = true;
        state.items.clear();
        self.room.notify_all();
    }

    /// Takes the next item, waiting until `until` (forever with `None`). `stopped()` is asked
    /// every [`RECHECK`] while waiting; when it is true the wait ends as if
    /// [`end`](Self::end) had been called with its reason.
    pub(crate) fn pull(
        &self,
        until: Option<Instant>,
        stopped: impl Fn() -> Option<CloseReason>,
    ) -> Pulled<T> {
        let mut state = lock(&self.state);
        loop {
            if let Some(item) = state.items.pop_front() {
                if state.pushing > 0 {
                    self.room.notify_one();
                }
                return Pulled::Item(item);
            }
            if let Some(reason) = &state.end {
                return Pulled::Ended(reason.clone());
            }
            if let Some(reason) = stopped() {
                state.end = Some(reason.clone());
                return Pulled::Ended(reason);
            }
            let wait = match until {
                None => RECHECK,
                Some(until) => {
                    let now = Instant::now();
                    if now >= until {
                        return Pulled::Empty;
                    }
                    (until - now).min(RECHECK)
                }
            };
            state.pulling += 1;
            state = self
                .ready
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            state.pulling -= 1;
        }
    }

    /// An item was just added under `state`'s lock: wake a sleeping pull.
    fn now_takeable(&self, state: &State<T>) {
        if state.pulling > 0 {
            self.ready.notify_one();
        }
    }

    /// Messages waiting to be taken.
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;

    fn never() -> Option<CloseReason> {
        None
    }

    #[test]
    fn items_come_out_in_order_then_the_end() {
        let inbox = Inbox::new(4);
        inbox.push(1, || false).unwrap();
        inbox.push(2, || false).unwrap();
        let ended = || Some(CloseReason::PeerClosed);
        assert!(matches!(inbox.pull(None, ended), Pulled::Item(1)));
        assert!(matches!(inbox.pull(None, ended), Pulled::Item(2)));
        assert!(matches!(
            inbox.pull(None, ended),
            Pulled::Ended(CloseReason::PeerClosed)
        ));
        // The end stays.
        assert!(matches!(inbox.pull(None, never), Pulled::Ended(_)));
    }

    #[test]
    fn a_full_inbox_holds_the_pusher_until_an_item_is_taken() {
        let inbox = Arc::new(Inbox::new(1));
        inbox.push(1, || false).unwrap();
        let pusher = {
            let inbox = Arc::clone(&inbox);
            thread::spawn(move || inbox.push(2, || false))
        };
        // The pusher cannot finish until there is room.
        assert!(matches!(
            inbox.pull(Some(Instant::now()), never),
            Pulled::Item(1)
        ));
        pusher.join().unwrap().unwrap();
        assert!(matches!(inbox.pull(None, never), Pulled::Item(2)));
    }

    #[test]
    fn a_waiting_push_gives_up_when_abandoned_or_the_caller_leaves() {
        let inbox = Arc::new(Inbox::new(1));
        inbox.push(0, || false).unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let pusher = {
            let (inbox, flag) = (Arc::clone(&inbox), Arc::clone(&flag));
            thread::spawn(move || inbox.push(1, || flag.load(Ordering::SeqCst)))
        };
        flag.store(true, Ordering::SeqCst);
        assert_eq!(pusher.join().unwrap(), Err(1));

        let pusher = {
            let inbox = Arc::clone(&inbox);
            thread::spawn(move || inbox.push(2, || false))
        };
        inbox.leave();
        assert_eq!(pusher.join().unwrap(), Err(2));
        assert_eq!(inbox.push(3, || false), Err(3));
    }

    #[test]
    fn a_pull_with_a_deadline_returns_empty_and_a_stop_ends_it() {
        let inbox: Inbox<u8> = Inbox::new(1);
        assert!(matches!(
            inbox.pull(Some(Instant::now() + Duration::from_millis(20)), never),
            Pulled::Empty
        ));
        let stopped = || Some(CloseReason::ServerStopped { dropped: 0 });
        assert!(matches!(
            inbox.pull(None, stopped),
            Pulled::Ended(CloseReason::ServerStopped { .. })
        ));
        // The stop is remembered as the end.
        assert!(matches!(inbox.pull(None, never), Pulled::Ended(_)));
    }

    #[test]
    fn a_sleeping_pull_is_woken_by_a_push() {
        let inbox: Arc<Inbox<u8>> = Arc::new(Inbox::new(1));
        let (asleep_tx, asleep) = std::sync::mpsc::channel();
        let puller = {
            let inbox = Arc::clone(&inbox);
            thread::spawn(move || {
                asleep_tx.send(()).unwrap();
                matches!(inbox.pull(None, never), Pulled::Item(9))
            })
        };
        asleep.recv().unwrap();
        inbox.push(9, || false).unwrap();
        assert!(puller.join().unwrap());
        // And a push asleep on a full inbox is woken by a pull.
        inbox.push(1, || false).unwrap();
        let pusher = {
            let inbox = Arc::clone(&inbox);
            thread::spawn(move || inbox.push(2, || false))
        };
        assert!(matches!(inbox.pull(None, never), Pulled::Item(1)));
        pusher.join().unwrap().unwrap();
        assert!(matches!(inbox.pull(None, never), Pulled::Item(2)));
    }

    #[test]
    fn push_always_passes_the_capacity() {
        let inbox = Inbox::new(1);
        inbox.push(1, || false).unwrap();
        inbox.push_always(2);
        assert_eq!(inbox.len(), 2);
    }
}
