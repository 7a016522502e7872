//! What the peer did wrong, with the close code that answers it.

use std::fmt;
use std::io;

/// A protocol violation by the peer, with the close code RFC 6455 (section 7.4.1) gives it.
///
/// [`WsCodec`](super::WsCodec) returns it as `Err` inside its message type; the connection
/// should answer with a close frame carrying [`code`](Self::code) and then shut down, which
/// is what [`AutoReply`](super::AutoReply) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsError {
    /// The close code: 1002 (protocol error), 1007 (invalid payload, e.g. bad UTF-8) or
    /// 1009 (a frame or message over the limit).
    pub code: u16,
    /// What was wrong, for logs and for the close frame's reason.
    pub reason: &'static str,
}

impl WsError {
    pub(crate) fn protocol(reason: &'static str) -> WsError {
        WsError { code: 1002, reason }
    }

    pub(crate) fn invalid_data(reason: &'static str) -> WsError {
        WsError { code: 1007, reason }
    }

    pub(crate) fn too_big(reason: &'static str) -> WsError {
        WsError { code: 1009, reason }
    }

    /// The `WsError` an `io::Error` carries, if it was made from one.
    pub(crate) fn from_io(e: &io::Error) -> Option<WsError> {
        e.get_ref()?.downcast_ref::<WsError>().copied()
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "websocket close {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for WsError {}

impl From<WsError> for io::Error {
    fn from(e: WsError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}
