//! A socket with bytes already read: what came after the server's `101` in the same read (a
//! server may send its first frame at once) is handed to the connection's reader first.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sync::lock;
use crate::sys::transport::{Addr, Socket};

/// `inner`, whose reads return `early` first. Only the reader thread reads, so the lock is
/// never contended; once `early` is used up, a read costs one atomic load more.
pub(crate) struct Primed {
    early: Mutex<Vec<u8>>,
    has_early: AtomicBool,
    inner: Arc<dyn Socket>,
}

impl Primed {
    /// `inner` itself if there is nothing `early`.
    pub(crate) fn wrap(inner: Arc<dyn Socket>, early: Vec<u8>) -> Arc<dyn Socket> {
        if early.is_empty() {
            return inner;
        }
        Arc::new(Primed {
            early: Mutex::new(early),
            has_early: AtomicBool::new(true),
            inner,
        })
    }
}

impl Primed {
    /// Copies the early bytes there are into `buf`: `Some(n)` with `n > 0` (or `0` for an
    /// empty `buf`), `None` once they are all used up and reads go to `inner`.
    fn take_early(&self, buf: &mut [u8]) -> Option<usize> {
        if !self.has_early.load(Ordering::Acquire) {
            return None;
        }
        let mut early = lock(&self.early);
        let n = early.len().min(buf.len());
        buf[..n].copy_from_slice(&early[..n]);
        early.drain(..n);
        if early.is_empty() {
            self.has_early.store(false, Ordering::Release);
            *early = Vec::new(); // the memory goes too
        }
        (n > 0 || buf.is_empty()).then_some(n)
    }
}

/// Every method is written out (the trait has no defaults): the reads serve the early bytes
/// first, however they wait, and everything else is `inner`'s.
impl Socket for Primed {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.take_early(buf) {
            Some(n) => Ok(n),
            None => self.inner.read(buf),
        }
    }

    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.take_early(buf) {
            Some(n) => Ok(n),
            None => self.inner.read_now(buf),
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    fn write_vectored_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored_now(bufs)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    fn wait_readable(&self) -> io::Result<bool> {
        if self.has_early.load(Ordering::Acquire) {
            return Ok(true);
        }
        self.inner.wait_readable()
    }

    fn set_read_patience(&self, patience: Option<Duration>) -> io::Result<bool> {
        self.inner.set_read_patience(patience)
    }

    fn prepare(&self, nodelay: bool) -> io::Result<()> {
        self.inner.prepare(nodelay)
    }

    fn peer_addr(&self) -> io::Result<Addr> {
        self.inner.peer_addr()
    }

    fn local_addr(&self) -> io::Result<Addr> {
        self.inner.local_addr()
    }

    fn is_datagram(&self) -> bool {
        self.inner.is_datagram()
    }
}
