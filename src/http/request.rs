//! The request type: the head kept as one string, fields as ranges into it, and the body.

use std::fmt;
use std::ops::Range;

/// The HTTP version of a request. [`Http1`](super::Http1) accepts these two, and reads a higher
/// minor version of HTTP/1 (`HTTP/1.2`) as [`Http11`](Version::Http11), as RFC 9110 §6.2 says;
/// any other `HTTP/x.y` is answered with 505.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// `HTTP/1.0`: the connection closes after the response unless the request asks for
    /// `Connection: keep-alive`.
    Http10,
    /// `HTTP/1.1`: the connection stays open unless the request says `Connection: close`.
    Http11,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        })
    }
}

/// One header field: its name and value as byte ranges of the head.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub(crate) name: Range<usize>,
    pub(crate) value: Range<usize>,
}

/// One HTTP request, as [`Http1`](super::Http1) read it: method, target, version, header
/// fields and the whole body.
///
/// The head (request line and header fields) is kept as the one string it arrived as, and
/// each field as a pair of ranges into it, so a request costs two allocations whatever its
/// number of headers (three with a body). Every `&str` returned here borrows from the request.
///
/// Header names are matched case-insensitively; values are returned with the whitespace
/// around them removed. The body is already de-chunked: a chunked upload and the same bytes
/// sent with `Content-Length` give the same `Request`.
///
/// ```
/// use threadnet::http::{Http1, Incoming, Version};
/// use threadnet::Codec;
///
/// let mut wire: &[u8] =
///     b"POST /echo?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi";
/// let Some(Incoming::Request(req)) = Http1::new().read(&mut wire).unwrap() else {
///     panic!("a request")
/// };
/// assert_eq!(req.method(), "POST");
/// assert_eq!(req.target(), "/echo?x=1");
/// assert_eq!(req.path(), "/echo");
/// assert_eq!(req.query(), Some("x=1"));
/// assert_eq!(req.version(), Version::Http11);
/// assert_eq!(req.header("content-type"), Some("text/plain"));
/// assert_eq!(req.headers().count(), 3);
/// assert_eq!(req.body(), b"hi");
/// assert!(req.keep_alive());
/// ```
#[derive(Clone)]
pub struct Request {
    /// Request line and header lines, exactly as received (UTF-8 checked).
    pub(crate) head: String,
    pub(crate) method: Range<usize>,
    pub(crate) target: Range<usize>,
    /// The target's path and query: all of it, except in the absolute-form.
    pub(crate) origin: Range<usize>,
    /// The authority of an absolute-form target.
    pub(crate) authority: Option<Range<usize>>,
    pub(crate) version: Version,
    pub(crate) fields: Vec<Field>,
    pub(crate) keep_alive: bool,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The method, as sent (methods are case-sensitive: `GET`, `POST`, `HEAD`, or any other
    /// token; the codec does not judge them).
    pub fn method(&self) -> &str {
        &self.head[self.method.clone()]
    }

    /// The request target, as sent: usually a path with an optional query (`/a/b?x=1`), but
    /// also `*` (for `OPTIONS`), `host:port` (for `CONNECT`) or an absolute URL
    /// (`http://host/a/b?x=1`, the absolute-form, which a server must accept too).
    pub fn target(&self) -> &str {
        &self.head[self.target.clone()]
    }

    /// The target's path: up to its first `?` (all of it when there is none), and in the
    /// absolute-form, what follows the authority (`/json` of `http://host/json`; `/` when
    /// nothing does). Not percent-decoded.
    ///
    /// ```
    /// use threadnet::http::{Http1, Incoming};
    /// use threadnet::Codec;
    ///
    /// let mut wire: &[u8] = b"GET http://example.com:8080/a?x=1 HTTP/1.1\r\nHost: other\r\n\r\n";
    /// let Some(Incoming::Request(req)) = Http1::new().read(&mut wire).unwrap() else {
    ///     panic!("a request")
    /// };
    /// assert_eq!((req.path(), req.query()), ("/a", Some("x=1")));
    /// assert_eq!(req.host(), Some("example.com:8080")); // not the Host field's
    /// ```
    pub fn path(&self) -> &str {
        let t = &self.head[self.origin.clone()];
        match t.split_once('?').map_or(t, |(path, _)| path) {
            "" if self.authority.is_some() => "/",
            path => path,
        }
    }

    /// The target after its first `?`, if it has one. Not percent-decoded.
    pub fn query(&self) -> Option<&str> {
        self.head[self.origin.clone()]
            .split_once('?')
            .map(|(_, query)| query)
    }

    /// The host the request is for (with its port, if given): the authority of an
    /// absolute-form target, which replaces the `Host` field (RFC 9112 §3.2.2), or else the
    /// `Host` field; `None` for an HTTP/1.0 request without either.
    pub fn host(&self) -> Option<&str> {
        match &self.authority {
            Some(a) => Some(&self.head[a.clone()]),
            None => self.header("host"),
        }
    }

    /// The HTTP version of the request line (`HTTP/1.2` and up read as [`Version::Http11`]).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The value of the first header field named `name` (compared case-insensitively), with
    /// surrounding whitespace removed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header field as `(name, value)`, in the order received; names as sent (not
    /// case-folded), values trimmed. Repeated fields appear once per line.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields
            .iter()
            .map(move |f| (&self.head[f.name.clone()], &self.head[f.value.clone()]))
    }

    /// The body, de-chunked; empty when the request has none.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the request.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// True if the connection may carry another request after this one's response: HTTP/1.1
    /// without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// True for `HEAD`, whose response carries headers only ([`Response::omit_body`]).
    ///
    /// [`Response::omit_body`]: super::Response::omit_body
    pub fn is_head(&self) -> bool {
        self.method() == "HEAD"
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version)
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}
