//! Reading one request off a buffered reader: the head (request line and header fields), then
//! the body (`Content-Length` or chunked). Every limit is checked before the bytes it bounds
//! are read or memory is set aside for them; nothing here can panic on any input.

use std::io::{self, BufRead, Read};
use std::ops::Range;

use super::chars::{all, FIELD, TARGET, TCHAR};
use super::error::HttpError;
use super::request::{Field, Request, Version};

/// The limits of one request, in bytes (head, body) and fields (headers).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) head: usize,
    pub(crate) headers: usize,
    pub(crate) body: usize,
}

/// Why reading a request stopped.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The stream failed, or ended inside a request: nobody is left to answer.
    Io(io::Error),
    /// The request is refused with a status.
    Http(HttpError),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

impl From<HttpError> for Fail {
    fn from(e: HttpError) -> Fail {
        Fail::Http(e)
    }
}

fn refuse<T>(status: u16, message: &'static str) -> Result<T, HttpError> {
    Err(HttpError::new(status, message))
}

fn eof(what: &'static str) -> Fail {
    Fail::Io(io::Error::new(io::ErrorKind::UnexpectedEof, what))
}

/// How a request's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Exactly this many bytes (0: no body). Already checked against the body limit.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed head: the request without its body, and how to read the body.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) request: Request,
    pub(crate) framing: Framing,
    /// `Expect: 100-continue` on an HTTP/1.1 request that has a body to send.
    pub(crate) expect_continue: bool,
}

/// Optional whitespace: space or horizontal tab.
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `fill_buf`, retried when interrupted (a retry from the caller would lose the parser's place).
pub(crate) fn fill<R: BufRead>(r: &mut R) -> io::Result<&[u8]> {
    loop {
        match r.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    r.fill_buf()
}

/// Reads and throws away everything up to the end of the stream.
pub(crate) fn discard<R: BufRead>(r: &mut R) -> io::Result<()> {
    loop {
        let n = fill(r)?.len();
        if n == 0 {
            return Ok(());
        }
        r.consume(n);
    }
}

/// Reads one request head: everything up to and including the empty line that ends it, and
/// nothing after it. At most `max` bytes are read (empty lines before the request line count
/// too): more is 414 if the request line has not ended, 431 if it has.
///
/// Returns the head and how many lines it has before the empty one, or `Ok(None)` when the
/// stream ends before a request starts.
pub(crate) fn read_head<R: BufRead>(
    r: &mut R,
    max: usize,
) -> Result<Option<(Vec<u8>, usize)>, Fail> {
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    let mut skipped = 0usize;
    loop {
        let buf = fill(r)?;
        if buf.is_empty() {
            return Ok(None);
        }
        let n = buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if n == 0 {
            break;
        }
        skipped += n;
        if skipped > max {
            return Err(HttpError::new(400, "too many empty lines before the request").into());
        }
        r.consume(n);
    }
    let max = max - skipped;
    let mut head: Vec<u8> = Vec::new();
    // Where the line being scanned starts, as an index into `head` followed by `buf`.
    let mut line_start = 0;
    let mut lines_ended = 0usize;
    loop {
        let buf = fill(r)?;
        if buf.is_empty() {
            return Err(eof("the stream ended inside a request head"));
        }
        let base = head.len();
        let mut end = None;
        let mut from = 0;
        while let Some(p) = buf[from..].iter().position(|&b| b == b'\n') {
            let nl = base + from + p;
            if nl >= max {
                break; // this line ends past the limit
            }
            let len = nl - line_start;
            let first = if line_start < base {
                head.get(line_start)
            } else {
                buf.get(line_start - base)
            };
            if len == 0 || (len == 1 && first == Some(&b'\r')) {
                end = Some(from + p + 1);
                break;
            }
            line_start = nl + 1;
            lines_ended += 1;
            from += p + 1;
        }
        let take = end.unwrap_or(buf.len());
        if base + take > max {
            return Err(if lines_ended == 0 {
                HttpError::new(414, "request line too long")
            } else {
                HttpError::new(431, "request header section too large")
            }
            .into());
        }
        head.extend_from_slice(&buf[..take]);
        r.consume(take);
        if end.is_some() {
            return Ok(Some((head, lines_ended)));
        }
    }
}

/// The lines of a head, without their `\n` or `\r\n`, as ranges. A bare CR (a `\r` anywhere
/// else) is left in the line, where no byte class admits it: the line is refused with 400.
struct HeadLines<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl HeadLines<'_> {
    fn next_line(&mut self) -> Option<Range<usize>> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let start = self.pos;
        self.pos += nl + 1;
        let mut line = &rest[..nl];
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        Some(start..start + line.len())
    }
}

/// `HTTP/1.0`, or `HTTP/1.1` and any higher minor version of HTTP/1 (`HTTP/1.2` to `HTTP/1.9`),
/// which RFC 9110 §6.2 says to process as the highest minor version implemented: 1.1. Another
/// major version (`HTTP/0.9`, `HTTP/2.0`) is 505; anything that is not `HTTP/DIGIT.DIGIT`, 400.
fn parse_version(v: &[u8]) -> Result<Version, HttpError> {
    match v {
        b"HTTP/1.0" => Ok(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => {
            Ok(Version::Http11)
        }
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            refuse(505, "HTTP version not supported")
        }
        _ => refuse(400, "malformed HTTP version"),
    }
}

/// A `Content-Length` value: decimal digits only. A number past `u64::MAX` saturates (it is
/// over any body limit anyway).
fn parse_length(v: &str) -> Result<u64, HttpError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return refuse(400, "malformed Content-Length");
    }
    Ok(v.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// What the header fields say about framing and the connection.
#[derive(Default)]
struct Meaning {
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: usize,
    other_coding: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    hosts: usize,
}

impl Meaning {
    fn field(&mut self, name: &str, value: &str) -> Result<(), HttpError> {
        let tokens = || {
            value
                .split(',')
                .map(|t| t.trim_matches([' ', '\t']))
                .filter(|t| !t.is_empty())
        };
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(value)?;
            if self.content_length.is_some_and(|old| old != n) {
                return refuse(400, "differing Content-Length values");
            }
            self.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            self.transfer_encoding = true;
            for coding in tokens() {
                if coding.eq_ignore_ascii_case("chunked") {
                    self.chunked += 1;
                } else {
                    self.other_coding = true;
                }
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for option in tokens() {
                self.close |= option.eq_ignore_ascii_case("close");
                self.keep_alive |= option.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            self.expect_continue |= value.eq_ignore_ascii_case("100-continue");
        } else if name.eq_ignore_ascii_case("host") {
            self.hosts += 1;
            if !is_host_and_port(value.as_bytes()) {
                return refuse(400, "invalid Host field value");
            }
        }
        Ok(())
    }

    /// How the body is framed, checked for smuggling and against the body limit.
    fn framing(&self, version: Version, max_body: usize) -> Result<Framing, HttpError> {
        if self.transfer_encoding {
            // RFC 9112 §6.1 and §6.3: both framings at once is how requests are smuggled.
            if self.content_length.is_some() {
                return refuse(400, "both Content-Length and Transfer-Encoding");
            }
            if version == Version::Http10 {
                return refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
            }
            if self.other_coding {
                return refuse(501, "transfer coding other than chunked");
            }
            if self.chunked != 1 {
                return refuse(400, "malformed Transfer-Encoding");
            }
            return Ok(Framing::Chunked);
        }
        let n = self.content_length.unwrap_or(0);
        match usize::try_from(n) {
            Ok(n) if n <= max_body => Ok(Framing::Length(n)),
            _ => refuse(413, "request body larger than the limit"),
        }
    }
}

/// `unreserved` and `sub-delims` of RFC 3986: the bytes of a `reg-name` besides `%XX`.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2 and §3.2.3): an `IP-literal`
/// (`[` an IPv6 address or `vX.…` `]`), or a `reg-name` (which an IPv4 address also is), then
/// an optional `:` and decimal port. A `reg-name` may be empty, as a Host field may be.
fn is_host_and_port(v: &[u8]) -> bool {
    let (host, port) = if v.first() == Some(&b'[') {
        let Some(close) = v.iter().position(|&b| b == b']') else {
            return false;
        };
        if !is_ip_literal(&v[1..close]) {
            return false;
        }
        match &v[close + 1..] {
            [] => return true,
            [b':', port @ ..] => (&[][..], port),
            _ => return false,
        }
    } else {
        match v.iter().position(|&b| b == b':') {
            Some(colon) => (&v[..colon], &v[colon + 1..]),
            None => (v, &[][..]),
        }
    };
    port.iter().all(u8::is_ascii_digit) && is_reg_name(host)
}

/// `*( unreserved / pct-encoded / sub-delims )`.
fn is_reg_name(name: &[u8]) -> bool {
    let mut rest = name;
    while let [first, tail @ ..] = rest {
        rest = match (first, tail) {
            (b'%', [h, l, after @ ..]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => after,
            (&b, _) if is_name_byte(b) => tail,
            _ => return false,
        };
    }
    true
}

/// What is between the brackets of an `IP-literal`: an IPv6 address, or `IPvFuture`
/// (`v` 1*HEXDIG `.` 1*( unreserved / sub-delims / `:` )).
fn is_ip_literal(inner: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inner {
        let hex = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        return match &rest[hex..] {
            [b'.', tail @ ..] => {
                hex > 0 && !tail.is_empty() && tail.iter().all(|&b| b == b':' || is_name_byte(b))
            }
            _ => false,
        };
    }
    std::str::from_utf8(inner).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Splits an absolute-form target (`http://host:port/path?query`, RFC 9112 §3.2.2) into the
/// ranges of its path and query (the origin-form a server routes on) and of its authority.
/// Any other target is all origin, with no authority.
fn split_absolute(target: &[u8]) -> Result<(Range<usize>, Option<Range<usize>>), HttpError> {
    let scheme = target.iter().position(|&b| b == b':').unwrap_or(0);
    let is_http = target[..scheme].eq_ignore_ascii_case(b"http")
        || target[..scheme].eq_ignore_ascii_case(b"https");
    if !is_http || !target[scheme..].starts_with(b"://") {
        return Ok((0..target.len(), None));
    }
    let start = scheme + 3;
    let end = target[start..]
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .map_or(target.len(), |i| start + i);
    let authority = &target[start..end];
    // An authority is a host, not empty (RFC 9110 §4.2.1), and an optional port; userinfo
    // (`user@`) is not allowed in http(s) URIs (RFC 9110 §4.2.4).
    if matches!(authority.first(), None | Some(b':')) || !is_host_and_port(authority) {
        return refuse(400, "malformed absolute-form request target");
    }
    Ok((end..target.len(), Some(start..end)))
}

/// Parses a head read by [`read_head`] (with its count of lines) into a request without its
/// body.
pub(crate) fn parse_head(
    (head, lines_hint): (Vec<u8>, usize),
    limits: &Limits,
) -> Result<Head, HttpError> {
    let Ok(head) = String::from_utf8(head) else {
        return refuse(400, "request head is not valid UTF-8");
    };
    let bytes = head.as_bytes();
    let mut lines = HeadLines { bytes, pos: 0 };

    let Some(line) = lines.next_line() else {
        return refuse(400, "missing request line");
    };
    let request_line = &bytes[line.clone()];
    let mut parts = request_line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return refuse(400, "malformed request line");
    };
    if method.is_empty() || !all(method, TCHAR) {
        return refuse(400, "malformed method");
    }
    if target.is_empty() || !all(target, TARGET) {
        return refuse(400, "malformed request target");
    }
    let version = parse_version(version)?;
    let method = line.start..line.start + method.len();
    let (origin, authority) = split_absolute(target)?;
    let at = method.end + 1;
    let origin = at + origin.start..at + origin.end;
    let authority = authority.map(|a| at + a.start..at + a.end);
    let target = at..at + target.len();

    // One allocation for the fields: the head's line count bounds them.
    let mut fields = Vec::with_capacity(lines_hint.saturating_sub(1).min(limits.headers));
    let mut meaning = Meaning::default();
    while let Some(line) = lines.next_line() {
        let text = &bytes[line.clone()];
        let Some(&first) = text.first() else {
            break; // the empty line that ends the head
        };
        if is_ows(first) {
            return refuse(400, "obs-fold (a header line starting with whitespace)");
        }
        let Some(colon) = text.iter().position(|&b| b == b':') else {
            return refuse(400, "header field without a colon");
        };
        if colon == 0 || !all(&text[..colon], TCHAR) {
            return refuse(400, "malformed header field name");
        }
        let mut start = colon + 1;
        let mut end = text.len();
        while start < end && is_ows(text[start]) {
            start += 1;
        }
        while end > start && is_ows(text[end - 1]) {
            end -= 1;
        }
        if !all(&text[start..end], FIELD) {
            return refuse(400, "control character in a header field value");
        }
        if fields.len() == limits.headers {
            return refuse(431, "too many header fields");
        }
        let field = Field {
            name: line.start..line.start + colon,
            value: line.start + start..line.start + end,
        };
        meaning.field(&head[field.name.clone()], &head[field.value.clone()])?;
        fields.push(field);
    }

    if version == Version::Http11 && meaning.hosts != 1 || meaning.hosts > 1 {
        return refuse(400, "an HTTP/1.1 request needs exactly one Host field");
    }
    let framing = meaning.framing(version, limits.body)?;
    let keep_alive = match version {
        Version::Http11 => !meaning.close,
        Version::Http10 => meaning.keep_alive && !meaning.close,
    };
    // RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 is ignored.
    let expect_continue =
        meaning.expect_continue && version == Version::Http11 && framing != Framing::Length(0);
    Ok(Head {
        request: Request {
            head,
            method,
            target,
            origin,
            authority,
            version,
            fields,
            keep_alive,
            body: Vec::new(),
        },
        framing,
        expect_continue,
    })
}

/// Reads a body framed as `framing`, using `line` as scratch space for chunk lines.
pub(crate) fn read_body<R: BufRead>(
    r: &mut R,
    framing: Framing,
    limits: &Limits,
    line: &mut Vec<u8>,
) -> Result<Vec<u8>, Fail> {
    let mut body = Vec::new();
    match framing {
        Framing::Length(n) => append(r, n, &mut body)?,
        Framing::Chunked => read_chunked(r, limits, line, &mut body)?,
    }
    Ok(body)
}

/// Appends exactly `n` bytes from `r` to `body` (`n` is within the body limit).
fn append<R: BufRead>(r: &mut R, n: usize, body: &mut Vec<u8>) -> Result<(), Fail> {
    if n == 0 {
        return Ok(());
    }
    body.try_reserve(n).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            "cannot allocate the request body",
        )
    })?;
    let got = Read::take(&mut *r, n as u64).read_to_end(body)?;
    if got < n {
        return Err(eof("the stream ended inside a request body"));
    }
    Ok(())
}

/// Reads a chunked body (RFC 9112 §7.1): chunks until the zero-size one, then trailer fields,
/// which are read and thrown away. Chunk extensions are ignored.
fn read_chunked<R: BufRead>(
    r: &mut R,
    limits: &Limits,
    line: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> Result<(), Fail> {
    let too_long = HttpError::new(400, "chunk size line too long");
    loop {
        let size = parse_chunk_size(read_line(r, limits.head, line, &too_long)?)?;
        if size == 0 {
            break;
        }
        let room = limits.body - body.len();
        let n = match usize::try_from(size) {
            Ok(n) if n <= room => n,
            _ => return Err(HttpError::new(413, "request body larger than the limit").into()),
        };
        append(r, n, body)?;
        let after = HttpError::new(400, "chunk data longer than its size");
        read_line(r, 0, line, &after)?;
    }
    let mut budget = limits.head;
    let too_large = HttpError::new(431, "trailer section too large");
    loop {
        let trailer = read_line(r, budget, line, &too_large)?;
        if trailer.is_empty() {
            return Ok(());
        }
        budget = budget.saturating_sub(trailer.len() + 2);
    }
}

/// A chunk size: hex digits, then nothing or `;` and extensions (optionally after
/// whitespace). A size past `u64::MAX` is over any limit: 413.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Fail> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let after = line[digits..].iter().find(|&&b| !is_ows(b));
    if digits == 0 || after.is_some_and(|&b| b != b';') {
        return Err(HttpError::new(400, "malformed chunk size").into());
    }
    let mut size = 0u64;
    for &b in &line[..digits] {
        let digit = (b as char).to_digit(16).unwrap_or(0);
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(digit)))
            .ok_or_else(|| HttpError::new(413, "chunk size overflows"))?;
    }
    Ok(size)
}

/// Reads one line of the chunked framing, of at most `max` bytes (terminator not counted), into
/// `line` and returns it without its `\r\n`. A longer line is refused with `too_long` as soon
/// as that is known; a line ended by a bare LF, or holding a CR, is 400.
///
/// Unlike the head's lines, these must end with CRLF: where a chunk ends decides where the
/// next request starts, and a proxy in front that reads a bare LF otherwise (as data, or as
/// the end of a chunk-size line it read differently) would hand this server a request it
/// never saw, which is how requests are smuggled. Refusing cannot be desynchronised: the
/// connection ends with the 400.
fn read_line<'a, R: BufRead>(
    r: &mut R,
    max: usize,
    line: &'a mut Vec<u8>,
    too_long: &HttpError,
) -> Result<&'a [u8], Fail> {
    line.clear();
    let limit = max.saturating_add(2);
    Read::take(&mut *r, limit as u64).read_until(b'\n', line)?;
    if line.last() != Some(&b'\n') {
        if line.len() == limit {
            return Err(too_long.clone().into());
        }
        return Err(eof("the stream ended inside a chunked body"));
    }
    line.pop();
    if line.pop() != Some(b'\r') {
        return Err(HttpError::new(400, "bare LF in a chunked body").into());
    }
    if line.contains(&b'\r') {
        return Err(HttpError::new(400, "bare CR in a chunked body").into());
    }
    if line.len() > max {
        return Err(too_long.clone().into());
    }
    Ok(line)
}
