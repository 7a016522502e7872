//! The accept loop: one thread per server takes connections from the listener, sets each
//! socket up, and starts its reader thread; it backs off when `accept` fails (out of file
//! descriptors) and ends when the server stops.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::proxy_protocol;
use super::shared::Inner;
use crate::codec::Codec;
use crate::conn::core::Core;
use crate::conn::handler::Handler;
use crate::conn::options::ConnOptions;
use crate::conn::reader::serve;
use crate::conn::registry::Registry;
use crate::conn::Connection;
use crate::sys::ceiling::Ceiling;
use crate::sys::transport::{Addr, Listener, Socket};

/// Everything the accept thread owns.
pub(super) struct Acceptor<C: Codec, F> {
    pub(super) inner: Arc<Inner<C>>,
    pub(super) codec: C,
    pub(super) factory: Arc<F>,
    pub(super) options: Arc<ConnOptions>,
    pub(super) max_connections: usize,
    pub(super) backoff: (Duration, Duration),
    /// The PROXY protocol header's deadline, when one is expected.
    pub(super) proxy: Option<Duration>,
}

impl<C, H, F> Acceptor<C, F>
where
    C: Codec,
    H: Handler<C>,
    F: Fn(&Connection<C>) -> H + Send + Sync + 'static,
{
    pub(super) fn run(self, listener: Listener) {
        let shared_codec = Arc::new(self.codec.clone());
        let mut next_id = 1u64;
        let mut backoff = self.backoff.0;
        loop {
            let accepted = listener.accept();
            let stopping = self.inner.stopping.load(Ordering::SeqCst);
            if stopping && (accepted.is_err() || !self.inner.shared) {
                return; // drops the listener: the port is released (unless shared)
            }
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                // Interrupted, or the accept poll passed: look at the stop flag again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of file descriptors (EMFILE, ENFILE), or out of memory: wait, and
                // accept again. Linux fails such an accept before looking at the queue, so
                // without this wait the loop would spin. The peer stays in the listen backlog
                // until an fd is free (see `accept_backoff`).
                Err(_) => {
                    self.inner.metrics.accept_failed();
                    thread::park_timeout(backoff);
                    backoff = (backoff * 2).min(self.backoff.1);
                    continue;
                }
            };
            backoff = self.backoff.0;
            if self.inner.registry.len() >= self.max_connections {
                self.inner.metrics.refused();
                drop(stream);
            } else if listener.ready(&*stream, self.options.nodelay).is_err() {
                // The accepted socket inherits the listener's options, which may carry
                // anything (a shared listener's receive timeout, an inherited linger): ours
                // are set, or it is refused.
                self.inner.metrics.refused();
                drop(stream);
            } else {
                self.inner.metrics.accepted();
                let id = next_id;
                next_id += 1;
                self.spawn_connection(id, stream, peer, &shared_codec);
            }
            // The reader threads that have ended are joined once the new connection's thread
            // runs, not before: it does not wait for them.
            self.inner.registry.reap();
            if stopping {
                return; // a client of the shared listener, accepted as the stop began: served
            }
        }
    }

    /// The accepted socket's own address: the listener's, when that is one IP address (a
    /// connection to it has no other), with no system call; else the socket's.
    fn local_addr(&self, stream: &dyn Socket) -> Addr {
        match &self.inner.local_addr {
            Addr::Inet(a) if !a.ip().is_unspecified() => self.inner.local_addr.clone(),
            listener => stream.local_addr().unwrap_or_else(|_| listener.clone()),
        }
    }

    fn spawn_connection(&self, id: u64, stream: Arc<dyn Socket>, peer: Addr, codec: &Arc<C>) {
        let local = self.local_addr(&*stream);
        let core = Core::new(
            id,
            stream,
            peer,
            local,
            Arc::clone(&self.options),
            Arc::clone(&self.inner.metrics),
        );
        let conn = Connection::new(core, Arc::clone(codec));
        self.inner.registry.insert(conn.clone());
        let reader_codec = self.codec.clone();
        let factory = Arc::clone(&self.factory);
        let inner = Arc::clone(&self.inner);
        let proxy = self.proxy;
        let stack = self.options.stack_size;
        let spawned = Ceiling::global().spawn("threadnet-conn", stack, move || {
            // Leave the registry even if something below panics, or stop() would wait for
            // this connection forever.
            let _leave = Leave {
                registry: &inner.registry,
                id,
            };
            // The PROXY protocol header, here on the connection's own thread: the accept
            // thread never waits for one peer. Without one in time, the connection never
            // opens (no handler, no on_connect, no on_close) and counts as refused.
            if let Some(limit) = proxy {
                if proxy_protocol::accept(&conn.core, limit).is_err() {
                    inner.metrics.not_served();
                    conn.core.refuse();
                    return;
                }
            }
            serve(&conn, reader_codec, |c| factory(c));
        });
        match spawned {
            Ok(thread) => self.inner.registry.set_thread(id, thread),
            // Out of threads (the process's ceiling, `sys/ceiling.rs`, or the OS's limits, or
            // memory for a stack): the connection closes (its socket drops with the registry
            // entry) and counts as refused. It never opened: no handler was
            // made, so there is no on_connect and no on_close. The loop goes on.
            Err(_) => {
                self.inner.registry.remove(id);
                self.inner.metrics.not_served();
            }
        }
    }
}

/// Removes a connection from the registry when its reader thread ends, however it ends.
struct Leave<'a, C: Codec> {
    registry: &'a Registry<C>,
    id: u64,
}

impl<C: Codec> Drop for Leave<'_, C> {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}
