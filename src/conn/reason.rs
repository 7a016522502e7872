//! Why a connection closed: one vocabulary for the cause that starts a close (recorded in the
//! connection's core as it happens, with `dropped` still 0) and the reason `on_close` gets
//! (the same cause, settled: `dropped` counted, a graceful close cut short turned into
//! `ShutdownTimeout`).

use std::fmt;
use std::io;

use crate::conn::idle::IdleKind;

/// Why a connection closed: the argument of [`Handler::on_close`](crate::Handler::on_close).
///
/// Variants that can leave messages unwritten carry `dropped`: how many messages that a send
/// had accepted were never written (invariant 2 in DESIGN.md: nothing is lost silently).
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side (EOF between frames); everything queued was written, then the
    /// socket closed.
    PeerClosed,
    /// [`Connection::shutdown`](crate::Connection::shutdown) finished gracefully: the queue drained, our FIN went out and the
    /// peer closed its side before the deadline.
    Shutdown,
    /// [`Connection::close`](crate::Connection::close) was called: the socket closed at once and the queue was dropped.
    Closed {
        /// Accepted messages that were never written.
        dropped: u64,
    },
    /// A graceful close (after [`Connection::shutdown`](crate::Connection::shutdown) or the peer's EOF) did not finish by
    /// its deadline, so the connection was closed by force.
    ShutdownTimeout {
        /// Accepted messages that were never written.
        dropped: u64,
    },
    /// The server or client was stopped. Its deadline works as in `ShutdownTimeout`.
    ServerStopped {
        /// Accepted messages that were never written (non-zero only if the deadline passed).
        dropped: u64,
    },
    /// Reading, decoding or writing failed. Codec errors such as an oversize frame arrive here
    /// with [`io::ErrorKind::InvalidData`].
    Error {
        /// What failed.
        error: io::Error,
        /// Accepted messages that were never written.
        dropped: u64,
    },
    /// An idle timeout expired ([`ConnOptions::read_idle`](crate::ConnOptions::read_idle) and
    /// the others) or the peer missed its heartbeats
    /// ([`ConnOptions::heartbeat`](crate::ConnOptions::heartbeat)), and the connection was
    /// closed at once.
    IdleTimeout {
        /// Which silence it was.
        kind: IdleKind,
        /// Accepted messages that were never written.
        dropped: u64,
    },
    /// The protocol's own closing handshake ended the connection, gracefully: for WebSocket, a
    /// close frame (RFC 6455, section 7). `code` and `reason` are what the peer's close frame
    /// said (`by_peer`; 1005 and an empty reason if it carried no status), or, when we closed
    /// because the peer broke the protocol, what our close frame said (1002, 1007 or 1009;
    /// not `by_peer`). [`ws::close`](crate::ws::close) and a shutdown end this way too once
    /// the peer answers with its close frame; a stop keeps
    /// [`ServerStopped`](CloseReason::ServerStopped). A closing handshake that did not finish
    /// by its deadline is [`ShutdownTimeout`](CloseReason::ShutdownTimeout).
    Protocol {
        /// The close code (RFC 6455, section 7.4), e.g. 1000 for a normal closure.
        code: u16,
        /// The close frame's reason text (UTF-8, at most 123 bytes).
        reason: String,
        /// The code came from the peer's close frame; `false`: from ours, answering a
        /// protocol error.
        by_peer: bool,
    },
    /// A handler callback panicked; the panic was caught and only this connection closed.
    Panic {
        /// The panic message.
        message: String,
        /// Accepted messages that were never written.
        dropped: u64,
    },
}

impl CloseReason {
    /// Accepted messages that were never written (0 for the graceful reasons).
    pub fn dropped(&self) -> u64 {
        match self {
            CloseReason::PeerClosed | CloseReason::Shutdown | CloseReason::Protocol { .. } => 0,
            CloseReason::Closed { dropped }
            | CloseReason::ShutdownTimeout { dropped }
            | CloseReason::ServerStopped { dropped }
            | CloseReason::Error { dropped, .. }
            | CloseReason::IdleTimeout { dropped, .. }
            | CloseReason::Panic { dropped, .. } => *dropped,
        }
    }

    /// True for the reasons after which everything accepted was written and the peer saw a
    /// clean end of stream.
    pub fn is_graceful(&self) -> bool {
        matches!(
            self,
            CloseReason::PeerClosed | CloseReason::Shutdown | CloseReason::Protocol { .. }
        ) || matches!(self, CloseReason::ServerStopped { dropped: 0 })
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("peer closed"),
            CloseReason::Shutdown => f.write_str("shut down"),
            CloseReason::Closed { dropped } => write!(f, "closed ({dropped} dropped)"),
            CloseReason::ShutdownTimeout { dropped } => {
                write!(f, "shutdown deadline passed ({dropped} dropped)")
            }
            CloseReason::ServerStopped { dropped } => {
                write!(f, "server stopped ({dropped} dropped)")
            }
            CloseReason::Error { error, dropped } => {
                write!(f, "error: {error} ({dropped} dropped)")
            }
            CloseReason::IdleTimeout { kind, dropped } => {
                write!(f, "idle timeout: {kind} ({dropped} dropped)")
            }
            CloseReason::Protocol {
                code,
                reason,
                by_peer,
            } => {
                let who = if *by_peer { "peer" } else { "we" };
                write!(f, "closing handshake: {who} sent {code} {reason:?}")
            }
            CloseReason::Panic { message, dropped } => {
                write!(f, "handler panicked: {message} ({dropped} dropped)")
            }
        }
    }
}

/// A copy of the reason. An `io::Error` cannot be cloned, so the copy of
/// [`Error`](CloseReason::Error) holds a new error of the same kind and message (its source
/// chain is not kept).
impl Clone for CloseReason {
    fn clone(&self) -> Self {
        match self {
            CloseReason::PeerClosed => CloseReason::PeerClosed,
            CloseReason::Shutdown => CloseReason::Shutdown,
            CloseReason::Closed { dropped } => CloseReason::Closed { dropped: *dropped },
            CloseReason::ShutdownTimeout { dropped } => {
                CloseReason::ShutdownTimeout { dropped: *dropped }
            }
            CloseReason::ServerStopped { dropped } => {
                CloseReason::ServerStopped { dropped: *dropped }
            }
            CloseReason::Error { error, dropped } => CloseReason::Error {
                error: io::Error::new(error.kind(), error.to_string()),
                dropped: *dropped,
            },
            CloseReason::IdleTimeout { kind, dropped } => CloseReason::IdleTimeout {
                kind: *kind,
                dropped: *dropped,
            },
            CloseReason::Protocol {
                code,
                reason,
                by_peer,
            } => CloseReason::Protocol {
                code: *code,
                reason: reason.clone(),
                by_peer: *by_peer,
            },
            CloseReason::Panic { message, dropped } => CloseReason::Panic {
                message: message.clone(),
                dropped: *dropped,
            },
        }
    }
}

/// The cause side: what the core records when something asks the connection to end.
impl CloseReason {
    /// A handler or timer callback panicked with `message`.
    pub(crate) fn panic(message: String) -> CloseReason {
        CloseReason::Panic {
            message,
            dropped: 0,
        }
    }

    /// An idle limit of `kind` passed.
    pub(crate) fn idle(kind: IdleKind) -> CloseReason {
        CloseReason::IdleTimeout { kind, dropped: 0 }
    }

    /// Whether this cause may replace `old`: an abortive cause replaces a graceful one (it is
    /// what actually ended the connection), and a protocol's closing handshake replaces the
    /// plain graceful causes (`Shutdown`, `PeerClosed`), which it explains.
    pub(crate) fn replaces(&self, old: &CloseReason) -> bool {
        (old.is_graceful() && !self.is_graceful())
            || (matches!(self, CloseReason::Protocol { .. })
                && matches!(old, CloseReason::Shutdown | CloseReason::PeerClosed))
    }

    /// Reading, decoding or writing failed with `error`.
    pub(crate) fn error(error: io::Error) -> CloseReason {
        CloseReason::Error { error, dropped: 0 }
    }

    /// The reason `on_close` gets for this cause: `dropped` counted, and a graceful close
    /// (a shutdown or the peer's EOF) that was forced at its deadline or dropped messages
    /// reported as [`ShutdownTimeout`](CloseReason::ShutdownTimeout).
    pub(crate) fn settle(self, dropped: u64, cut_short: bool) -> CloseReason {
        match self {
            CloseReason::Shutdown | CloseReason::PeerClosed | CloseReason::Protocol { .. }
                if cut_short =>
            {
                CloseReason::ShutdownTimeout { dropped }
            }
            CloseReason::PeerClosed => CloseReason::PeerClosed,
            CloseReason::Shutdown => CloseReason::Shutdown,
            p @ CloseReason::Protocol { .. } => p,
            CloseReason::Closed { .. } => CloseReason::Closed { dropped },
            CloseReason::ShutdownTimeout { .. } => CloseReason::ShutdownTimeout { dropped },
            CloseReason::ServerStopped { .. } => CloseReason::ServerStopped { dropped },
            CloseReason::Error { error, .. } => CloseReason::Error { error, dropped },
            CloseReason::IdleTimeout { kind, .. } => CloseReason::IdleTimeout { kind, dropped },
            CloseReason::Panic { message, .. } => CloseReason::Panic { message, dropped },
        }
    }
}
