//! Errors of the pulling calls, in the shape of `std::sync::mpsc`'s and crossbeam-channel's:
//! the end of the stream is an error value, and here it carries why the connection (or the
//! server) ended.

use std::fmt;

use crate::conn::CloseReason;
use crate::error::SendError;

/// [`recv`](crate::BlockingClient::recv) found nothing more will arrive: the connection has
/// ended (everything that arrived before the end was received first), for this reason.
#[derive(Debug, Clone)]
pub struct RecvError {
    /// Why the connection ended.
    pub reason: CloseReason,
}

/// Why [`recv_timeout`](crate::BlockingClient::recv_timeout) returned no message.
#[derive(Debug, Clone)]
pub enum RecvTimeoutError {
    /// Nothing arrived within the timeout; the connection is still open.
    Timeout,
    /// The connection has ended, for this reason.
    Closed(CloseReason),
}

/// Why [`try_recv`](crate::BlockingClient::try_recv) returned no message.
#[derive(Debug, Clone)]
pub enum TryRecvError {
    /// Nothing is waiting; the connection is still open.
    Empty,
    /// The connection has ended, for this reason.
    Closed(CloseReason),
}

/// Why [`request`](crate::BlockingClient::request) returned no reply. A message that was not
/// sent is handed back inside [`Send`](RequestError::Send).
///
/// `Debug` does not require `T: Debug`.
pub enum RequestError<T> {
    /// The request was not sent (the queue stayed full, the connection is closed, or it could
    /// not be encoded).
    Send(SendError<T>),
    /// The request was sent, but no reply came within the timeout. The connection has been
    /// closed: a late reply would otherwise be taken as the answer to the next request.
    Timeout,
    /// The connection ended before a reply came, for this reason.
    Closed(CloseReason),
}

impl<T> RequestError<T> {
    /// True if the reply did not come in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RequestError::Timeout)
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        RecvTimeoutError::Closed(e.reason)
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the connection has ended: {}", self.reason)
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("nothing arrived within the timeout"),
            RecvTimeoutError::Closed(r) => write!(f, "the connection has ended: {r}"),
        }
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("nothing has arrived"),
            TryRecvError::Closed(r) => write!(f, "the connection has ended: {r}"),
        }
    }
}

impl<T> fmt::Debug for RequestError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Send(e) => write!(f, "Send({e:?})"),
            RequestError::Timeout => f.write_str("Timeout"),
            RequestError::Closed(r) => write!(f, "Closed({r:?})"),
        }
    }
}

impl<T> fmt::Display for RequestError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Send(e) => write!(f, "request not sent: {e}"),
            RequestError::Timeout => f.write_str("no reply within the timeout"),
            RequestError::Closed(r) => write!(f, "the connection ended before a reply: {r}"),
        }
    }
}

impl std::error::Error for RecvError {}
impl std::error::Error for RecvTimeoutError {}
impl std::error::Error for TryRecvError {}
impl<T> std::error::Error for RequestError<T> {}
