//! The protocol error the codec reports, with the status that answers it.

use std::fmt;

use super::response::{reason_phrase, Response};

/// A request that [`Http1`](super::Http1) refused: malformed, over a limit, or using
/// something the codec does not implement. It carries the status code that answers it:
///
/// | status | when |
/// |--------|------|
/// | 400 Bad Request | a malformed request line or header field, a bare CR, obs-fold, a head that is not UTF-8, a missing `Host` in HTTP/1.1, a repeated or invalid `Host`, both `Content-Length` and `Transfer-Encoding`, differing `Content-Length`s, a bad chunk (a bare LF in the chunked framing too) |
/// | 413 Content Too Large | a body over [`max_body`](super::Http1::max_body) (known from `Content-Length` before reading it, or from a chunk size) |
/// | 414 URI Too Long | a request line longer than [`max_head`](super::Http1::max_head) |
/// | 431 Request Header Fields Too Large | a head or trailer section over `max_head`, or more than [`max_headers`](super::Http1::max_headers) fields |
/// | 501 Not Implemented | a `Transfer-Encoding` other than `chunked` |
/// | 505 HTTP Version Not Supported | an `HTTP/x.y` version other than 1.0 and 1.x (1.2 to 1.9 are served as 1.1) |
///
/// After reporting one, the codec parses nothing more on that connection: the answer is the
/// last response, then the connection closes. [`reject`](super::reject) writes it that way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    status: u16,
    message: &'static str,
}

impl HttpError {
    pub(crate) fn new(status: u16, message: &'static str) -> HttpError {
        HttpError { status, message }
    }

    /// The status code that answers the request: 400, 413, 414, 431, 501 or 505.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// What was wrong, in a few words (`"obs-fold in a header field"`).
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// The response that answers it: the status, `Connection: close`, and the message as a
    /// `text/plain` body.
    pub fn to_response(&self) -> Response {
        Response::new(self.status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .header("Connection", "close")
            .body(format!("{}\n", self.message))
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status,
            reason_phrase(self.status),
            self.message
        )
    }
}

impl std::error::Error for HttpError {}
