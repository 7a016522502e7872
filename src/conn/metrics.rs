//! The counters of a server or client and of each connection: one relaxed atomic add per
//! event, where the event already happens (per message decoded or written, per socket read or
//! write for bytes, per connection for the rest), read as a [`MetricsSnapshot`] and rendered
//! in the Prometheus text format. Messages and bytes are counted on the connection alone and
//! summed over the connections when read (one lock, a few loads per live connection), so no
//! counter is shared by connections on different cores. The public face is
//! [`crate::metrics`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::conn::CloseReason;
use crate::sync::lock;

/// Why connections closed, as the `reason` label of `threadnet_connections_closed_total`.
const REASONS: [&str; 8] = [
    "peer_closed",
    "shutdown",
    "closed",
    "shutdown_timeout",
    "server_stopped",
    "error",
    "idle_timeout",
    "panic",
];

/// Messages and bytes in and out of one connection, counted by its own threads alone: a
/// server's or client's totals are summed from its connections' when read
/// ([`Metrics::snapshot`]), so that connections on different cores never write one shared
/// counter per message (the cache line would bounce between cores on every add).
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    messages_received: AtomicU64,
    messages_sent: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
}

impl Traffic {
    /// `n` messages were decoded.
    pub(crate) fn received(&self, n: u64) {
        add(&self.messages_received, n);
    }

    /// `n` messages were written.
    pub(crate) fn sent(&self, n: u64) {
        add(&self.messages_sent, n);
    }

    /// `n` bytes came from the socket.
    pub(crate) fn read(&self, n: usize) {
        add(&self.bytes_received, n as u64);
    }

    /// `n` bytes went to the socket.
    pub(crate) fn wrote(&self, n: usize) {
        add(&self.bytes_sent, n as u64);
    }

    /// Messages received, messages sent, bytes received, bytes sent.
    pub(crate) fn get(&self) -> [u64; 4] {
        [
            &self.messages_received,
            &self.messages_sent,
            &self.bytes_received,
            &self.bytes_sent,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

/// The live counters of one server or client, shared by its connections; read as a
/// [`MetricsSnapshot`].
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    accepted: AtomicU64,
    refused: AtomicU64,
    accept_errors: AtomicU64,
    closed: [AtomicU64; REASONS.len()],
    traffic: Mutex<Totals>,
    queue_full: AtomicU64,
    dropped: AtomicU64,
    codec_errors: AtomicU64,
    panics: AtomicU64,
}

/// The traffic of a server's or client's connections: each live one's counters, and the sum
/// of those that have gone. A connection is in exactly one of the two at any moment (both
/// change under one lock), so every total only grows.
#[derive(Debug, Default)]
struct Totals {
    /// By the address of the connection's counters, unique while they are alive.
    live: HashMap<usize, Arc<Traffic>>,
    gone: [u64; 4],
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// The counters of a new connection, counted in the totals from now on.
    pub(crate) fn join(&self) -> Arc<Traffic> {
        let t = Arc::new(Traffic::default());
        let key = Arc::as_ptr(&t) as usize;
        lock(&self.traffic).live.insert(key, Arc::clone(&t));
        t
    }

    /// A connection has gone (nothing counts on its `t` any more): its counts move to the
    /// sum of the gone ones.
    pub(crate) fn leave(&self, t: &Arc<Traffic>) {
        let mut totals = lock(&self.traffic);
        if totals.live.remove(&(Arc::as_ptr(t) as usize)).is_some() {
            for (sum, n) in totals.gone.iter_mut().zip(t.get()) {
                *sum += n;
            }
        }
    }

    /// How many connections' counters are live: their `Core`s not dropped yet.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        lock(&self.traffic).live.len()
    }

    /// Messages and bytes in and out, over every connection, live or gone.
    fn traffic(&self) -> [u64; 4] {
        let totals = lock(&self.traffic);
        let mut sum = totals.gone;
        for t in totals.live.values() {
            for (s, n) in sum.iter_mut().zip(t.get()) {
                *s += n;
            }
        }
        sum
    }

    pub(crate) fn accepted(&self) {
        add(&self.accepted, 1);
    }

    pub(crate) fn refused(&self) {
        add(&self.refused, 1);
    }

    /// An `accept` failed (out of file descriptors or memory, mostly): no connection was
    /// taken.
    pub(crate) fn accept_failed(&self) {
        add(&self.accept_errors, 1);
    }

    /// A connection counted as accepted could not be served after all (no thread for it): it
    /// counts as refused instead.
    pub(crate) fn not_served(&self) {
        self.accepted.fetch_sub(1, Ordering::Relaxed);
        self.refused();
    }

    /// A send found the queue full (a `try_send` refused, or a `send` timed out).
    pub(crate) fn queue_full(&self) {
        add(&self.queue_full, 1);
    }

    pub(crate) fn codec_error(&self) {
        add(&self.codec_errors, 1);
    }

    /// A connection ended: its reason, the messages its close dropped, and whether a panic or
    /// a codec error ended it.
    pub(crate) fn closed(&self, reason: &CloseReason) {
        let i = match reason {
            CloseReason::PeerClosed => 0,
            CloseReason::Shutdown => 1,
            // A closing handshake: counted with the graceful end of the side that began it.
            CloseReason::Protocol { by_peer: true, .. } => 0,
            CloseReason::Protocol { by_peer: false, .. } => 1,
            CloseReason::Closed { .. } => 2,
            CloseReason::ShutdownTimeout { .. } => 3,
            CloseReason::ServerStopped { .. } => 4,
            CloseReason::Error { error, .. } => {
                if is_codec_error(error) {
                    self.codec_error();
                }
                5
            }
            CloseReason::IdleTimeout { .. } => 6,
            CloseReason::Panic { .. } => {
                add(&self.panics, 1);
                7
            }
        };
        add(&self.closed[i], 1);
        add(&self.dropped, reason.dropped());
    }

    /// The counters now, each read atomically (the set is not one atomic read: a snapshot
    /// taken under load may show a message received whose connection is not yet counted).
    /// `active` is the number of connections open now, which the caller knows.
    pub(crate) fn snapshot(&self, active: usize) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut closed = [0; REASONS.len()];
        for (out, c) in closed.iter_mut().zip(&self.closed) {
            *out = get(c);
        }
        let [messages_received, messages_sent, bytes_received, bytes_sent] = self.traffic();
        MetricsSnapshot {
            connections_accepted: get(&self.accepted),
            connections_refused: get(&self.refused),
            accept_errors: get(&self.accept_errors),
            connections_active: active as u64,
            connections_closed: closed,
            messages_received,
            messages_sent,
            bytes_received,
            bytes_sent,
            send_queue_full: get(&self.queue_full),
            messages_dropped: get(&self.dropped),
            codec_errors: get(&self.codec_errors),
            panics: get(&self.panics),
        }
    }
}

/// Errors a codec raises for bad input, as opposed to the socket's own errors.
fn is_codec_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    )
}

/// The counters of a server or client at one moment; see the [module docs](crate::metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Connections accepted and served (for a client: connections made; for UDP: peers).
    pub connections_accepted: u64,
    /// Connections closed at once after accept: the connection limit was reached, or the
    /// connection could not be set up (no thread could be spawned for it).
    pub connections_refused: u64,
    /// Calls to `accept` that failed and took no connection: out of file descriptors
    /// (`EMFILE`, `ENFILE`) or memory, mostly (Linux also reports there a network error of the
    /// connection being accepted). The accept loop backs off after each (see
    /// [`ServerBuilder::accept_backoff`](crate::ServerBuilder::accept_backoff)) while the peers
    /// wait in the listen backlog; not counted in `connections_refused`. Always 0 for a client
    /// and for UDP.
    pub accept_errors: u64,
    /// Connections open now.
    pub connections_active: u64,
    /// Connections closed, by reason, in the order of [`MetricsSnapshot::closed_by_reason`].
    pub connections_closed: [u64; 8],
    /// Messages decoded from peers.
    pub messages_received: u64,
    /// Messages written to peers (or, when written straight from a handler, handed to the
    /// socket).
    pub messages_sent: u64,
    /// Bytes read from sockets.
    pub bytes_received: u64,
    /// Bytes written to sockets.
    pub bytes_sent: u64,
    /// Sends that found the queue full: `try_send` refused with `Full`, or `send` timed out.
    pub send_queue_full: u64,
    /// Accepted messages that a close dropped unwritten (the `dropped` of each close reason).
    pub messages_dropped: u64,
    /// Bad input from peers (`InvalidData` or a frame cut short) and messages the codec
    /// refused to encode.
    pub codec_errors: u64,
    /// Panics that closed a connection: caught in its handler (`on_close` excepted: the
    /// connection has closed by then), its factory, its codec or its connection timers.
    pub panics: u64,
}

impl MetricsSnapshot {
    /// Connections closed, as `(reason, count)`: `peer_closed`, `shutdown`, `closed`,
    /// `shutdown_timeout`, `server_stopped`, `error`, `idle_timeout`, `panic`.
    pub fn closed_by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REASONS.iter().copied().zip(self.connections_closed)
    }

    /// Connections closed, whatever the reason.
    pub fn connections_closed_total(&self) -> u64 {
        self.connections_closed.iter().sum()
    }

    /// The snapshot in the Prometheus text exposition format (version 0.0.4): a `# HELP` and a
    /// `# TYPE` line per metric, names prefixed `threadnet_`, counters suffixed `_total`.
    /// Serve it with content type `text/plain; version=0.0.4`.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = write!(
                out,
                "# HELP threadnet_{name} {help}\n# TYPE threadnet_{name} {kind}\nthreadnet_{name} {value}\n"
            );
        };
        metric(
            "connections_accepted_total",
            "counter",
            "Connections accepted and served.",
            self.connections_accepted,
        );
        metric(
            "connections_refused_total",
            "counter",
            "Connections closed at once after accept (connection limit reached, no thread).",
            self.connections_refused,
        );
        metric(
            "accept_errors_total",
            "counter",
            "Calls to accept that failed (out of file descriptors or memory).",
            self.accept_errors,
        );
        metric(
            "connections_active",
            "gauge",
            "Connections open now.",
            self.connections_active,
        );
        metric(
            "messages_received_total",
            "counter",
            "Messages decoded from peers.",
            self.messages_received,
        );
        metric(
            "messages_sent_total",
            "counter",
            "Messages written to peers.",
            self.messages_sent,
        );
        metric(
            "bytes_received_total",
            "counter",
            "Bytes read from sockets.",
            self.bytes_received,
        );
        metric(
            "bytes_sent_total",
            "counter",
            "Bytes written to sockets.",
            self.bytes_sent,
        );
        metric(
            "send_queue_full_total",
            "counter",
            "Sends that found the send queue full.",
            self.send_queue_full,
        );
        metric(
            "messages_dropped_total",
            "counter",
            "Accepted messages dropped unwritten by a close.",
            self.messages_dropped,
        );
        metric(
            "codec_errors_total",
            "counter",
            "Bad input from peers and messages the codec could not encode.",
            self.codec_errors,
        );
        metric(
            "panics_total",
            "counter",
            "Panics caught in user callbacks and codecs.",
            self.panics,
        );
        out.push_str("# HELP threadnet_connections_closed_total Connections closed, by reason.\n");
        out.push_str("# TYPE threadnet_connections_closed_total counter\n");
        for (reason, n) in self.closed_by_reason() {
            let _ = writeln!(
                out,
                "threadnet_connections_closed_total{{reason=\"{reason}\"}} {n}"
            );
        }
        out
    }
}

/// What one connection has moved so far, and what waits in its queue; see
/// [`Connection::stats`](crate::Connection::stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnStats {
    /// Messages decoded from the peer.
    pub messages_received: u64,
    /// Messages written to the peer.
    pub messages_sent: u64,
    /// Bytes read from the socket.
    pub bytes_received: u64,
    /// Bytes written to the socket.
    pub bytes_sent: u64,
    /// Messages accepted by sends and not yet written.
    pub queued_messages: usize,
    /// Bytes accepted by sends and not yet written.
    pub queued_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts made on a connection's own counters are in the totals while it lives, stay
    /// there once it has gone (moved, not copied: counted once), and the live set is left
    /// empty: a server with connections coming and going does not keep their counters.
    #[test]
    fn a_gone_connection_still_counts_once_and_is_not_kept() {
        let m = Metrics::default();
        let a = m.join();
        let b = m.join();
        add(&a.messages_received, 3);
        add(&a.bytes_received, 30);
        add(&b.messages_sent, 2);
        add(&b.bytes_sent, 20);
        assert_eq!(m.traffic(), [3, 2, 30, 20]);
        m.leave(&a);
        assert_eq!(m.traffic(), [3, 2, 30, 20]);
        m.leave(&a); // a second leave changes nothing
        add(&b.bytes_sent, 5);
        assert_eq!(m.traffic(), [3, 2, 30, 25]);
        m.leave(&b);
        assert_eq!(m.traffic(), [3, 2, 30, 25]);
        assert!(lock(&m.traffic).live.is_empty());
        assert_eq!(m.snapshot(0).bytes_sent, 25);
    }
}
