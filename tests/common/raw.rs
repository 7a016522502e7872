//! Raw std clients for the example servers' protocols, written without the crate so that a
//! codec bug cannot hide on both sides: RESP (kv_server), HTTP/1.1 (http_hello), plus a seeded
//! xorshift for garbage and a resetting connector (through the crate's `FaultProxy`, since
//! std has no stable `set_linger` to make an RST with).
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// xorshift64*: reproducible garbage without the rand crate.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced: xorshift never leaves 0).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A std TCP stream with read and write timeouts of `wait`.
pub fn connect(addr: SocketAddr, wait: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, wait)?;
    s.set_read_timeout(Some(wait))?;
    s.set_write_timeout(Some(wait))?;
    s.set_nodelay(true)?;
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// RESP

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// Encodes a command as RESP: an array of bulk strings.
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// A RESP connection: commands out, replies in.
pub struct RespClient {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RespClient {
    pub fn connect(addr: SocketAddr, wait: Duration) -> io::Result<RespClient> {
        let stream = connect(addr, wait)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(RespClient { stream, reader })
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.stream.write_all(&resp_command(args))?;
        self.reply()
    }

    /// Reads one reply.
    pub fn reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// One line without its `\r\n`; `UnexpectedEof` at EOF.
fn crlf_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    line.strip_suffix("\r\n")
        .map(str::to_string)
        .ok_or_else(|| bad(format!("line without CRLF: {line:?}")))
}

/// Reads one RESP2 reply.
pub fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let line = crlf_line(r)?;
    let (kind, rest) = line.split_at(1.min(line.len()));
    let number = || -> io::Result<i64> {
        rest.parse()
            .map_err(|_| bad(format!("bad number in {line:?}")))
    };
    match kind {
        "+" => Ok(Reply::Simple(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => Ok(Reply::Int(number()?)),
        "$" => match number()? {
            -1 => Ok(Reply::Bulk(None)),
            n if n >= 0 => {
                let mut v = vec![0u8; n as usize + 2];
                r.read_exact(&mut v)?;
                v.truncate(n as usize);
                Ok(Reply::Bulk(Some(v)))
            }
            _ => Err(bad(line)),
        },
        "*" => match number()? {
            -1 => Ok(Reply::Array(None)),
            n if n >= 0 => (0..n)
                .map(|_| read_reply(r))
                .collect::<io::Result<_>>()
                .map(|v| Reply::Array(Some(v))),
            _ => Err(bad(line)),
        },
        _ => Err(bad(format!("not a RESP reply: {line:?}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1

/// One HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Encodes a request with a `Host` header and, if `body` is not empty, a `Content-Length`.
pub fn http_request(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n").into_bytes();
    if !body.is_empty() {
        v.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(body);
    v
}

/// A kept-alive HTTP/1.1 connection.
pub struct HttpClient {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl HttpClient {
    pub fn connect(addr: SocketAddr, wait: Duration) -> io::Result<HttpClient> {
        let stream = connect(addr, wait)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(HttpClient { stream, reader })
    }

    /// Sends one request and reads its response (not for HEAD).
    pub fn call(&mut self, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
        self.stream.write_all(&http_request(method, path, body))?;
        self.response()
    }

    /// Reads one response (not to a HEAD request).
    pub fn response(&mut self) -> io::Result<Response> {
        read_response(&mut self.reader)
    }
}

/// Reads one response whose body is delimited by `Content-Length` or chunked (not to HEAD).
pub fn read_response(r: &mut impl BufRead) -> io::Result<Response> {
    let status_line = crlf_line(r)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = crlf_line(r)?;
        if line.is_empty() {
            break;
        }
        let (n, v) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header {line:?}")))?;
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if resp
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let size = crlf_line(r)?;
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad(format!("bad chunk size {size:?}")))?;
            let mut chunk = vec![0u8; size + 2];
            r.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = resp.header("Content-Length") {
        let len: usize = len
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        resp.body = vec![0u8; len];
        r.read_exact(&mut resp.body)?;
    }
    Ok(resp)
}

// ---------------------------------------------------------------------------------------------
// Resets

/// Opens `count` connections to `addr` one after another and resets each (an RST, not a
/// FIN), half of them after sending `payload`, through a
/// [`FaultProxy`](threadnet::testing::FaultProxy): `reset_after(0)` resets a connection as
/// soon as it is made, `reset_after(payload.len())` once the payload is through. Returns how
/// many reached `addr` and how many did not.
pub fn resets(addr: SocketAddr, count: usize, payload: &[u8]) -> (usize, usize) {
    use threadnet::testing::{FaultProxy, Faults};
    let proxy = |n: usize| {
        FaultProxy::builder()
            .upstream(addr)
            .client_to_server(Faults::new().reset_after(n as u64))
            .start()
            .expect("start the resetting proxy")
    };
    let (at_once, after_payload) = (proxy(0), proxy(payload.len()));
    for i in 0..count {
        let odd = i % 2 == 1 && !payload.is_empty();
        let via = if odd { &after_payload } else { &at_once };
        let Ok(mut s) = connect(via.local_addr(), Duration::from_secs(5)) else {
            continue;
        };
        if odd {
            let _ = s.write_all(payload);
        }
        // The proxy's reset ends the connection: wait for it, so they come one at a time.
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.read_to_end(&mut Vec::new());
    }
    let connected = at_once.upstream_connections() + after_payload.upstream_connections();
    at_once.stop();
    after_payload.stop();
    (connected, count - connected)
}
