//! The `Http1` codec: its limits, and the state it keeps between reads (a body that waits for
//! `100 Continue`, a connection that has had its last request).

use std::io::{self, BufRead, Write};
use std::mem;

use super::error::HttpError;
use super::parse::{self, Fail, Framing, Limits};
use super::request::Request;
use super::response::Response;
use crate::codec::Codec;

/// The default [`Http1::max_head`]: 8 KiB.
const DEFAULT_MAX_HEAD: usize = 8 * 1024;
/// The default [`Http1::max_headers`]: 100 fields.
const DEFAULT_MAX_HEADERS: usize = 100;
/// The default [`Http1::max_body`]: 1 MiB, nginx's `client_max_body_size`.
const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// What [`Http1`] reads: a request, a request that waits for `100 Continue` before sending its
/// body, or a request refused with a status.
#[derive(Debug)]
pub enum Incoming {
    /// A complete request, body included.
    Request(Request),
    /// A request head with `Expect: 100-continue`: the client waits for an interim
    /// `100 Continue` before it sends the body. Send `Response::new(100)`; the next read
    /// returns the [`Request`](Incoming::Request) with its body. ([`serve`](super::serve) does
    /// this.)
    Continue,
    /// A request the codec refused. Answer it with [`HttpError::to_response`] and close the
    /// connection gracefully ([`reject`](super::reject) does both). The codec reads nothing
    /// more of this connection: further reads throw input away until the peer's EOF, then
    /// return `Ok(None)`.
    Error(HttpError),
}

/// Where the codec is in the connection's stream of requests.
#[derive(Clone, Debug)]
enum State {
    /// Between requests.
    Head,
    /// [`Incoming::Continue`] was returned; the body of this request is read next.
    Body(Box<Request>, Framing),
    /// A request refused, or one after which the connection closes, was returned: nothing
    /// more is parsed.
    Done,
}

/// The HTTP/1.x server codec: requests in ([`Incoming`]), responses out ([`Response`]).
///
/// # Wire format
///
/// ```text
/// request:   GET /json HTTP/1.1\r\n              request line
///            Host: example\r\n                  header fields (100 at most)
///            Content-Length: 2\r\n              ─┐ or Transfer-Encoding: chunked
///            \r\n                               ─┘ head ends: 8 KiB at most
///            hi                                 body: 1 MiB at most
///
/// response:  HTTP/1.1 200 OK\r\n
///            Content-Type: application/json\r\n
///            Content-Length: 13\r\n             (or Transfer-Encoding: chunked)
///            \r\n
///            {"hello":"!"}
/// ```
///
/// See the [module docs](super) for who writes what, and [`HttpError`] for every status a
/// request can be refused with.
///
/// # Limits
///
/// Each is checked before the bytes it bounds are read or buffered:
///
/// * [`max_head`](Http1::max_head): request line and header fields, and separately each
///   chunk-size line and the trailer section of a chunked body. Defaults to 8 KiB.
/// * [`max_headers`](Http1::max_headers): header fields. Defaults to 100.
/// * [`max_body`](Http1::max_body): the body, after de-chunking. A `Content-Length` over it is
///   refused before a byte of the body is read; a chunked body as soon as a chunk size
///   would pass it. Defaults to 1 MiB, as nginx's `client_max_body_size`; `set_max_frame_length` (the builders'
///   `max_frame_length` option) sets it.
///
/// # Example
///
/// ```
/// use threadnet::http::{Http1, Incoming};
/// use threadnet::Codec;
///
/// let mut codec = Http1::new();
/// let mut wire: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n";
/// for path in ["/", "/x"] {
///     match codec.read(&mut wire).unwrap() {
///         Some(Incoming::Request(req)) => assert_eq!(req.path(), path),
///         other => panic!("{other:?}"),
///     }
/// }
/// assert!(codec.read(&mut wire).unwrap().is_none()); // clean EOF between requests
///
/// let mut bad: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n";
/// match Http1::new().read(&mut bad).unwrap() {
///     Some(Incoming::Error(e)) => assert_eq!(e.status(), 501),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Http1 {
    limits: Limits,
    state: State,
    /// Scratch space for chunk-size and trailer lines.
    line: Vec<u8>,
}

impl Http1 {
    /// A codec with the default limits: 8 KiB of head, 100 header fields, 1 MiB of body.
    ///
    /// Same as [`Http1::default`].
    pub fn new() -> Http1 {
        Http1 {
            limits: Limits {
                head: DEFAULT_MAX_HEAD,
                headers: DEFAULT_MAX_HEADERS,
                body: DEFAULT_MAX_BODY,
            },
            state: State::Head,
            line: Vec::new(),
        }
    }

    /// Sets the longest request head, in bytes: the request line, the header fields and the
    /// empty line that ends them, with their line endings. A longer request line is refused
    /// with 414, a longer head with 431. Also bounds each chunk-size line and the trailer
    /// section of a chunked body.
    ///
    /// Defaults to 8 KiB (8 * 1024 bytes).
    pub fn max_head(mut self, bytes: usize) -> Http1 {
        self.limits.head = bytes;
        self
    }

    /// Sets the most header fields a request may have; more is refused with 431.
    ///
    /// Defaults to 100.
    pub fn max_headers(mut self, fields: usize) -> Http1 {
        self.limits.headers = fields;
        self
    }

    /// Sets the largest request body, in bytes (after de-chunking); larger is refused with
    /// 413 before it is read.
    ///
    /// Defaults to 1 MiB (1024 * 1024 bytes), as nginx's `client_max_body_size`.
    pub fn max_body(mut self, bytes: usize) -> Http1 {
        self.limits.body = bytes;
        self
    }

    /// The longest request head, in bytes (see [`max_head`](Http1::max_head)).
    pub fn get_max_head(&self) -> usize {
        self.limits.head
    }

    /// The most header fields of a request (see [`max_headers`](Http1::max_headers)).
    pub fn get_max_headers(&self) -> usize {
        self.limits.headers
    }

    /// The largest request body, in bytes (see [`max_body`](Http1::max_body)).
    pub fn get_max_body(&self) -> usize {
        self.limits.body
    }

    /// Reads the body of `request` and returns it complete; after a request that ends the
    /// connection, nothing more is parsed.
    fn finish<R: BufRead>(
        &mut self,
        r: &mut R,
        mut request: Request,
        framing: Framing,
    ) -> Result<Incoming, Fail> {
        request.body = parse::read_body(r, framing, &self.limits, &mut self.line)?;
        if !request.keep_alive {
            self.state = State::Done;
        }
        Ok(Incoming::Request(request))
    }

    fn read_request<R: BufRead>(&mut self, r: &mut R) -> Result<Option<Incoming>, Fail> {
        match mem::replace(&mut self.state, State::Head) {
            State::Done => {
                self.state = State::Done;
                parse::discard(r)?;
                Ok(None)
            }
            State::Body(request, framing) => self.finish(r, *request, framing).map(Some),
            State::Head => {
                let Some(head) = parse::read_head(r, self.limits.head)? else {
                    return Ok(None);
                };
                let head = parse::parse_head(head, &self.limits)?;
                if head.expect_continue {
                    self.state = State::Body(Box::new(head.request), head.framing);
                    return Ok(Some(Incoming::Continue));
                }
                self.finish(r, head.request, head.framing).map(Some)
            }
        }
    }
}

impl Default for Http1 {
    /// Same as [`Http1::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl Codec for Http1 {
    type In = Incoming;
    type Out = Response;

    /// Reads one request (or the news that one waits for `100 Continue`, or that one is
    /// refused).
    ///
    /// Returns `Ok(None)` when the stream ends between requests, and, after an
    /// [`Incoming::Error`] or a request that does not keep the connection alive, when the
    /// stream ends at all (everything after such a request is read and thrown away).
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::UnexpectedEof`] when the stream ends inside a request (there is
    ///   nobody left to answer).
    /// * [`io::ErrorKind::OutOfMemory`] when a body within the limit cannot be allocated.
    /// * Any I/O error from `r`.
    ///
    /// A malformed or over-limit request is not an error of `read`: it is
    /// `Ok(Some(Incoming::Error(_)))`, so that it can be answered.
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Incoming>> {
        match self.read_request(r) {
            Ok(incoming) => Ok(incoming),
            Err(fail) => {
                self.state = State::Done;
                match fail {
                    Fail::Io(e) => Err(e),
                    Fail::Http(e) => Ok(Some(Incoming::Error(e))),
                }
            }
        }
    }

    /// Writes `msg` as an HTTP/1.1 response.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::InvalidInput`] when the status is not 100 to 999, a header name is
    ///   not a token, a header value or the reason has a control character, or the response
    ///   sets `Content-Length` or `Transfer-Encoding` itself; nothing is written.
    /// * Any I/O error from `w`.
    fn write<W: Write>(&self, msg: &Response, w: &mut W) -> io::Result<()> {
        msg.write_to(w)
    }

    /// Sets the largest request body, in bytes; the same as [`max_body`](Http1::max_body).
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.limits.body = bytes;
    }
}
