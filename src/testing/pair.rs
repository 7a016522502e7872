//! One proxied connection: the client's socket, the upstream socket, and the state both pump
//! threads share (ended or not), with a condition variable that every wait of theirs uses, so
//! that a reset or a stop wakes them at once.

use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::faults::Direction;

/// The two sockets of a proxied connection. Closed when the last pump thread drops it.
pub(crate) struct Pair {
    client: TcpStream,
    server: TcpStream,
    ended: Mutex<bool>,
    wake: Condvar,
}

impl Pair {
    pub(crate) fn new(client: TcpStream, server: TcpStream) -> Pair {
        Pair {
            client,
            server,
            ended: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// The socket a direction reads from, and the one it writes to.
    pub(crate) fn ends(&self, direction: Direction) -> (&TcpStream, &TcpStream) {
        match direction {
            Direction::ClientToServer => (&self.client, &self.server),
            Direction::ServerToClient => (&self.server, &self.client),
        }
    }

    fn lock(&self) -> MutexGuard<'_, bool> {
        // A bool cannot be left half-written: a poisoned lock is still good.
        self.ended.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_ended(&self) -> bool {
        *self.lock()
    }

    /// Sleeps until `until`, or until the pair ends (then `false`).
    pub(crate) fn wait_until(&self, until: Instant) -> bool {
        let mut ended = self.lock();
        loop {
            if *ended {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            ended = self
                .wake
                .wait_timeout(ended, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Sleeps until the pair ends.
    pub(crate) fn wait_end(&self) {
        let mut ended = self.lock();
        while !*ended {
            ended = self
                .wake
                .wait(ended)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn end(&self) {
        *self.lock() = true;
        self.wake.notify_all();
    }

    /// Resets both sides: linger zero, so the close that follows when both pumps have let go
    /// sends an RST and no FIN; `shutdown(Read)` wakes a pump blocked reading without sending
    /// anything to the peer (a pump blocked writing notices within its write timeout).
    /// Where linger cannot be set (not Linux) the sockets are shut down, which sends a FIN.
    pub(crate) fn reset(&self) {
        self.end();
        for s in [&self.client, &self.server] {
            let how = match crate::sys::os::set_linger_zero(s.as_fd()) {
                Ok(()) => Shutdown::Read,
                Err(_) => Shutdown::Both,
            };
            let _ = s.shutdown(how);
        }
    }

    /// Ends the pair for a stop of the proxy: `shutdown(Both)` wakes every blocked call and
    /// sends each peer a FIN.
    pub(crate) fn stop(&self) {
        self.end();
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}
