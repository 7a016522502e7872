//! An in-memory stream socket for the embedded connection: two byte queues behind one lock.
//! The connection's real reader and writer run on it; the test's thread feeds the inbound
//! queue, takes the outbound one, and waits (on the same condition variable) until the reader
//! is blocked for more input or has finished.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::sys::transport::{Addr, Socket};

/// What both ends of the in-memory socket share.
#[derive(Default)]
pub(crate) struct State {
    /// Bytes the peer sent that the connection has not read yet.
    pub(crate) inbound: VecDeque<u8>,
    /// The peer's FIN: once `inbound` is empty, reads return 0.
    pub(crate) peer_eof: bool,
    /// The connection shut its read side (a close): reads return 0 at once.
    read_shut: bool,
    /// Bytes the connection wrote and the test has not taken yet.
    pub(crate) outbound: Vec<u8>,
    /// The connection shut its write side: its FIN.
    pub(crate) write_shut: bool,
    /// The reader is blocked on an empty inbound queue.
    pub(crate) reader_waiting: bool,
    /// The reader thread has returned (after `on_close`).
    pub(crate) done: bool,
}

/// A connected stream socket in memory; the connection's end of it.
#[derive(Default)]
pub(crate) struct MemorySocket {
    state: Mutex<State>,
    changed: Condvar,
}

impl MemorySocket {
    /// Locks the shared state (a poisoned lock is still good: every change is one field).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state as the peer (or the test) and wakes the reader.
    pub(crate) fn update(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.lock();
        f(&mut s);
        self.changed.notify_all();
    }

    /// Waits until `ready` holds, re-checking at least every `poll` (the writer thread does
    /// not signal this lock when it releases its queue), for at most `limit`. Returns the
    /// guard, or `None` if `limit` passed first.
    pub(crate) fn wait_until(
        &self,
        limit: Duration,
        poll: Duration,
        mut ready: impl FnMut(&State) -> bool,
    ) -> Option<MutexGuard<'_, State>> {
        let end = Instant::now() + limit;
        let mut s = self.lock();
        while !ready(&s) {
            let now = Instant::now();
            if now >= end {
                return None;
            }
            s = self
                .changed
                .wait_timeout(s, poll.min(end - now))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Some(s)
    }

    /// Blocks the reader until input, the peer's EOF or our read shutdown; `take` consumes
    /// what is there (`None`: nothing to give, so it is the end).
    fn wait_input<T>(&self, take: impl FnOnce(&mut State) -> T) -> Option<T> {
        let mut s = self.lock();
        loop {
            if s.read_shut {
                return None;
            }
            if !s.inbound.is_empty() {
                s.reader_waiting = false;
                return Some(take(&mut s));
            }
            if s.peer_eof {
                return None;
            }
            s.reader_waiting = true;
            self.changed.notify_all();
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

fn loopback() -> Addr {
    Addr::Inet(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
}

impl Socket for MemorySocket {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        Ok(self
            .wait_input(|s| {
                let n = buf.len().min(s.inbound.len());
                for (b, v) in buf.iter_mut().zip(s.inbound.drain(..n)) {
                    *b = v;
                }
                n
            })
            .unwrap_or(0))
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut s = self.lock();
        if s.write_shut {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut n = 0;
        for b in bufs {
            s.outbound.extend_from_slice(b);
            n += b.len();
        }
        self.changed.notify_all();
        Ok(n)
    }

    fn write_vectored_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // Memory never makes a writer wait.
        self.write_vectored(bufs)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.update(|s| {
            if matches!(how, Shutdown::Read | Shutdown::Both) {
                s.read_shut = true;
                s.reader_waiting = false; // it wakes to end: not settled until it has
            }
            if matches!(how, Shutdown::Write | Shutdown::Both) {
                s.write_shut = true;
            }
        });
        Ok(())
    }

    fn wait_readable(&self) -> io::Result<bool> {
        Ok(self.wait_input(|_| ()).is_some())
    }

    fn prepare(&self, _nodelay: bool) -> io::Result<()> {
        Ok(())
    }

    fn peer_addr(&self) -> io::Result<Addr> {
        Ok(loopback())
    }

    fn local_addr(&self) -> io::Result<Addr> {
        Ok(loopback())
    }
}
