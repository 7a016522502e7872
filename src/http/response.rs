//! The response type and how it is written: status line, header fields, then the body with
//! `Content-Length` or chunked.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

use super::chars::{is_field_byte, is_tchar};

/// The body of a response.
#[derive(Clone, Debug)]
enum Body {
    /// Sent with `Content-Length`.
    Full(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, one chunk each (empty ones are skipped).
    Chunks(Vec<Vec<u8>>),
}

/// One HTTP response: a status, header fields and a body, written by
/// [`Http1`](super::Http1) as HTTP/1.1.
///
/// The codec adds the framing itself: `Content-Length` for a body given with
/// [`body`](Response::body), `Transfer-Encoding: chunked` for one given with
/// [`chunks`](Response::chunks). Responses that cannot have a body (1xx, 204, 304) get
/// neither. Setting `Content-Length` or `Transfer-Encoding` yourself is refused at write time.
///
/// ```
/// use threadnet::http::{Http1, Response};
/// use threadnet::Codec;
///
/// let resp = Response::new(200)
///     .header("Content-Type", "text/plain")
///     .body("hello");
/// let mut wire = Vec::new();
/// Http1::new().write(&resp, &mut wire).unwrap();
/// assert_eq!(
///     wire,
///     b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
/// );
///
/// let chunked = Response::new(200).chunks(vec![b"hel".to_vec(), b"lo".to_vec()]);
/// let mut wire = Vec::new();
/// Http1::new().write(&chunked, &mut wire).unwrap();
/// assert_eq!(
///     wire,
///     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
/// );
/// ```
#[derive(Clone)]
pub struct Response {
    status: u16,
    reason: Option<Cow<'static, str>>,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    body: Body,
    omit_body: bool,
}

impl Response {
    /// A response with `status` (100 to 999), no header fields and an empty body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            reason: None,
            headers: Vec::new(),
            body: Body::Full(Vec::new()),
            omit_body: false,
        }
    }

    /// 200 with `Content-Type: text/plain; charset=utf-8` and `body`.
    pub fn text(body: impl Into<Vec<u8>>) -> Response {
        Response::new(200)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body)
    }

    /// 200 with `Content-Type: text/html; charset=utf-8` and `body`.
    pub fn html(body: impl Into<Vec<u8>>) -> Response {
        Response::new(200)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(body)
    }

    /// 200 with `Content-Type: application/json` and `body` (which should be JSON: it is
    /// not checked).
    pub fn json(body: impl Into<Vec<u8>>) -> Response {
        Response::new(200)
            .header("Content-Type", "application/json")
            .body(body)
    }

    /// Sets the reason phrase of the status line.
    ///
    /// Defaults to the standard phrase of the status ([`reason_phrase`]), or none for codes
    /// it does not know.
    pub fn reason(mut self, reason: impl Into<Cow<'static, str>>) -> Response {
        self.reason = Some(reason.into());
        self
    }

    /// Adds a header field. Names and values are written as given; a name that is not a
    /// token, or a value with a control character (CR, LF, NUL...), makes the write fail with
    /// [`io::ErrorKind::InvalidInput`], so a response can never be split.
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body, sent with `Content-Length`.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = Body::Full(body.into());
        self
    }

    /// Sets the body as chunks, sent with `Transfer-Encoding: chunked`, one chunk each (empty
    /// chunks are skipped: an empty chunk would end the body). To an HTTP/1.0 client,
    /// [`reply`](super::reply) sends the same bytes with `Content-Length` instead.
    pub fn chunks(mut self, chunks: Vec<Vec<u8>>) -> Response {
        self.body = Body::Chunks(chunks);
        self
    }

    /// Makes the response headers-only, as the answer to `HEAD` must be: the header fields
    /// are written as if the body were sent (the same `Content-Length`, or
    /// `Transfer-Encoding: chunked`), the body is not. [`reply`](super::reply) does this for
    /// `HEAD` requests.
    pub fn omit_body(mut self) -> Response {
        self.omit_body = true;
        self
    }

    /// Turns a chunked body into one sent with `Content-Length` (for HTTP/1.0 clients, which
    /// do not know chunked). Does nothing to a body that is not chunked.
    pub fn unchunked(mut self) -> Response {
        if let Body::Chunks(chunks) = &mut self.body {
            self.body = Body::Full(chunks.concat());
        }
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The value of the first header field named `name` (compared case-insensitively).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// The body's length in bytes (chunks added up), whether or not it will be sent.
    pub fn body_len(&self) -> usize {
        match &self.body {
            Body::Full(b) => b.len(),
            Body::Chunks(c) => c.iter().map(Vec::len).sum(),
        }
    }

    /// True if a header field says `Connection: close`.
    pub(crate) fn says_close(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection")
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }

    /// Checks what the codec must not write: a status out of range, a header field that is
    /// malformed or that the codec sets itself.
    fn check(&self) -> io::Result<()> {
        let invalid = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if !(100..=999).contains(&self.status) {
            return invalid(format!("status {} is not 100 to 999", self.status));
        }
        let ctl = |b: u8| !is_field_byte(b);
        if let Some(r) = &self.reason {
            if r.bytes().any(ctl) {
                return invalid("control character in the reason phrase".into());
            }
        }
        for (name, value) in &self.headers {
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return invalid(format!("malformed header field name {name:?}"));
            }
            if value.bytes().any(ctl) {
                return invalid(format!("control character in the value of {name}"));
            }
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                return invalid(format!("{name} is set by the codec"));
            }
        }
        Ok(())
    }

    /// Writes the response as HTTP/1.1 (called by the codec's `write`).
    pub(crate) fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        self.check()?;
        let reason = match &self.reason {
            Some(r) => r,
            None => reason_phrase(self.status),
        };
        let mut head = Vec::with_capacity(
            64 + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>(),
        );
        head.extend_from_slice(b"HTTP/1.1 ");
        push_number(&mut head, self.status.into(), 10);
        head.push(b' ');
        head.extend_from_slice(reason.as_bytes());
        head.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        // RFC 9110 §8.6, §6.4.1: 1xx, 204 and 304 have no body and no framing fields.
        let bodiless = self.status < 200 || self.status == 204 || self.status == 304;
        match &self.body {
            _ if bodiless => {
                head.extend_from_slice(b"\r\n");
                w.write_all(&head)
            }
            Body::Full(body) => {
                head.extend_from_slice(b"Content-Length: ");
                push_number(&mut head, body.len(), 10);
                head.extend_from_slice(b"\r\n\r\n");
                // Small writes are gathered by threadnet's socket writer: head and body
                // still leave in one system call.
                w.write_all(&head)?;
                if self.omit_body {
                    return Ok(());
                }
                w.write_all(body)
            }
            Body::Chunks(chunks) => {
                head.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                w.write_all(&head)?;
                if self.omit_body {
                    return Ok(());
                }
                for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                    let mut size = Vec::with_capacity(20);
                    push_number(&mut size, chunk.len(), 16);
                    size.extend_from_slice(b"\r\n");
                    w.write_all(&size)?;
                    w.write_all(chunk)?;
                    w.write_all(b"\r\n")?;
                }
                w.write_all(b"0\r\n\r\n")
            }
        }
    }
}

/// Appends `n` in base `radix` (10 or 16; lower-case hex digits), without `fmt`'s machinery.
fn push_number(out: &mut Vec<u8>, mut n: usize, radix: usize) {
    let mut digits = [0u8; 64];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n % radix];
        n /= radix;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("reason", &self.reason)
            .field("headers", &self.headers)
            .field("body_len", &self.body_len())
            .field("chunked", &matches!(self.body, Body::Chunks(_)))
            .field("omit_body", &self.omit_body)
            .finish()
    }
}

/// The standard reason phrase of a status code (RFC 9110 §15), or `""` for codes it does not
/// know (a status line may have an empty reason).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}
