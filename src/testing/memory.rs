//! An in-memory stream socket for the embedded connection: the connection's writes collect in
//! a byte queue that the test takes, and its shutdowns are recorded. Nothing ever blocks and
//! nothing reads from it: the embedded connection hands the peer's bytes to its codec itself
//! (`embedded.rs`), on the test's thread.

use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::sys::transport::{Addr, Socket};

/// What the connection did to its socket.
#[derive(Default)]
pub(crate) struct State {
    /// Bytes the connection wrote and the test has not taken yet.
    pub(crate) outbound: Vec<u8>,
    /// The connection shut its write side: its FIN.
    pub(crate) write_shut: bool,
    /// The connection shut its read side (a close).
    pub(crate) read_shut: bool,
    /// How many slices each write had, in order, since `outbound` was last taken.
    pub(crate) slices: Vec<usize>,
}

/// A connected stream socket in memory; the connection's end of it.
#[derive(Default)]
pub(crate) struct MemorySocket {
    state: Mutex<State>,
}

impl MemorySocket {
    /// Locks the state (a poisoned lock is still good: every change is one field).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn loopback() -> Addr {
    Addr::Inet(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
}

impl Socket for MemorySocket {
    /// Never called: the embedded connection has no reader. The end of the stream.
    fn read(&self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut s = self.lock();
        if s.write_shut {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        s.slices.push(bufs.len());
        let mut n = 0;
        for b in bufs {
            s.outbound.extend_from_slice(b);
            n += b.len();
        }
        Ok(n)
    }

    fn write_vectored_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // Memory never makes a writer wait.
        self.write_vectored(bufs)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let mut s = self.lock();
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            s.read_shut = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            s.write_shut = true;
        }
        Ok(())
    }

    /// Never called: the embedded connection has no reader. The end of the stream.
    fn read_now(&self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }

    /// Nothing here ever waits: any timeout fits.
    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    /// Never called: the embedded connection has no reader.
    fn wait_readable(&self) -> io::Result<bool> {
        Ok(false)
    }

    /// No reader waits here: there is no patience to set.
    fn set_read_patience(&self, _: Option<Duration>) -> io::Result<bool> {
        Ok(false)
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

    fn is_datagram(&self) -> bool {
        false
    }
}
