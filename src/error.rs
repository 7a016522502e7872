//! Errors of the send operations. Each hands the message back, so nothing a caller sent is lost
//! without the caller knowing (the shape of crossbeam-channel's `SendTimeoutError` and
//! `TrySendError`).

use std::any::Any;
use std::fmt;
use std::io;

/// Why [`Connection::send`](crate::Connection::send) or
/// [`send_timeout`](crate::Connection::send_timeout) did not queue a message. The message is
/// inside: take it back with [`into_inner`](SendError::into_inner).
///
/// `Debug` does not require `T: Debug`.
pub enum SendError<T> {
    /// The queue stayed full for the whole send timeout.
    Timeout(T),
    /// The connection is closed or shutting down; it takes no more messages.
    Closed(T),
    /// The codec could not encode the message (for example, longer than the frame limit).
    Encode(T, io::Error),
}

/// Why [`Connection::try_send`](crate::Connection::try_send) did not queue a message. The
/// message is inside: take it back with [`into_inner`](TrySendError::into_inner).
///
/// `Debug` does not require `T: Debug`.
pub enum TrySendError<T> {
    /// The queue is full (in messages or in bytes); nothing was queued.
    Full(T),
    /// The connection is closed or shutting down; it takes no more messages.
    Closed(T),
    /// The codec could not encode the message (for example, longer than the frame limit).
    Encode(T, io::Error),
}

impl<T> SendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Timeout(m) | SendError::Closed(m) | SendError::Encode(m, _) => m,
        }
    }
    /// True if the queue stayed full until the timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendError::Timeout(_))
    }
    /// True if the connection takes no more messages.
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed(_))
    }
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(m) | TrySendError::Closed(m) | TrySendError::Encode(m, _) => m,
        }
    }
    /// True if the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
    /// True if the connection takes no more messages.
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Timeout(_) => f.write_str("Timeout(..)"),
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::Encode(_, e) => write!(f, "Encode(.., {e:?})"),
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
            TrySendError::Encode(_, e) => write!(f, "Encode(.., {e:?})"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Timeout(_) => f.write_str("send timed out: the queue stayed full"),
            SendError::Closed(_) => f.write_str("send on a closed connection"),
            SendError::Encode(_, e) => write!(f, "message could not be encoded: {e}"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("send queue is full"),
            TrySendError::Closed(_) => f.write_str("send on a closed connection"),
            TrySendError::Encode(_, e) => write!(f, "message could not be encoded: {e}"),
        }
    }
}

impl<T> std::error::Error for SendError<T> {}
impl<T> std::error::Error for TrySendError<T> {}

/// Why a message was refused by the queue, before it is wrapped in the public error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Timeout,
    Closed,
}

/// The message of a caught panic: its `&str` or `String` payload, which is what `panic!`
/// makes.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}
