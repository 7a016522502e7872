//! Which thread is which: a connection's reader, its writer, and a thread running one of its
//! timers. This is the one place that marks them (thread-locals keyed by the address of the
//! connection's `Core`), for the two questions the rest of `conn/` asks: "is this the reader,
//! and which socket does it read?" (write-through writes from there without a lock), and "is
//! this one of the connection's own threads?" (a stop or a close started from a callback
//! must not wait for the thread it runs on).
//!
//! The thread-locals are read with `try_with`: while a thread exits they are gone, and such a
//! thread is none of these any more (a send or close from a thread-local's destructor must not
//! abort the process).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::sys::transport::Socket;

thread_local! {
    /// The connection whose reader runs on this thread, and its socket.
    static READER: RefCell<Option<(usize, Arc<dyn Socket>)>> = const { RefCell::new(None) };
    /// The connection whose writer runs on this thread, or 0.
    static WRITER: Cell<usize> = const { Cell::new(0) };
    /// The connection whose timer callback runs on this thread, or 0.
    static TIMER: Cell<usize> = const { Cell::new(0) };
}

/// A connection's key: the address of its shared state (a `Core`).
fn id<T>(core: &Arc<T>) -> usize {
    Arc::as_ptr(core) as usize
}

/// Marks the current thread as `core`'s reader, reading `stream`, until the guard drops.
pub(crate) struct ReaderMark;

impl ReaderMark {
    pub(crate) fn set<T>(core: &Arc<T>, stream: Arc<dyn Socket>) -> ReaderMark {
        let me = id(core);
        let _ = READER.try_with(|r| *r.borrow_mut() = Some((me, stream)));
        ReaderMark
    }
}

impl Drop for ReaderMark {
    fn drop(&mut self) {
        // Take it out first: dropping the socket must not happen inside the borrow.
        let old = READER.try_with(|r| r.borrow_mut().take());
        drop(old);
    }
}

/// Marks the current thread as `core`'s writer, for the thread's life.
pub(crate) fn mark_writer<T>(core: &Arc<T>) {
    let _ = WRITER.try_with(|w| w.set(id(core)));
}

/// Marks the current thread as running a timer callback of `core` until the guard drops,
/// which puts back the mark it found (a panicking callback included).
pub(crate) struct TimerMark(usize);

impl TimerMark {
    pub(crate) fn set<T>(core: &Arc<T>) -> TimerMark {
        let me = id(core);
        TimerMark(TIMER.try_with(|t| t.replace(me)).unwrap_or(0))
    }
}

impl Drop for TimerMark {
    fn drop(&mut self) {
        let _ = TIMER.try_with(|t| t.set(self.0));
    }
}

/// Runs `f` with the socket if this thread is `core`'s reader; `None` on any other thread.
pub(crate) fn on_reader<T, R>(core: &Arc<T>, f: impl FnOnce(&dyn Socket) -> R) -> Option<R> {
    let me = id(core);
    READER
        .try_with(|r| match &*r.borrow() {
            Some((p, stream)) if *p == me => Some(f(&**stream)),
            _ => None,
        })
        .ok()
        .flatten()
}

/// True on `core`'s reader thread.
pub(crate) fn is_reader_thread<T>(core: &Arc<T>) -> bool {
    let me = id(core);
    READER
        .try_with(|r| matches!(&*r.borrow(), Some((p, _)) if *p == me))
        .unwrap_or(false)
}

/// True on `core`'s writer thread.
pub(crate) fn is_writer_thread<T>(core: &Arc<T>) -> bool {
    let me = id(core);
    WRITER.try_with(|w| w.get() == me).unwrap_or(false)
}

/// True while this thread runs a timer callback of `core`: such a thread must not wait for
/// the connection to end (it holds the fence the end waits for).
pub(crate) fn is_timer_thread<T>(core: &Arc<T>) -> bool {
    let me = id(core);
    TIMER.try_with(|t| t.get() == me).unwrap_or(false)
}

/// True on any of `core`'s own threads: its reader, its writer, or one running its timer.
pub(crate) fn is_own_thread<T>(core: &Arc<T>) -> bool {
    is_reader_thread(core) || is_writer_thread(core) || is_timer_thread(core)
}
