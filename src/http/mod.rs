//! HTTP/1.1 for servers: a codec ([`Http1`]), a small request and response type, and a
//! handler ([`serve`]) that turns a `Fn(&Request) -> Response` into a server.
//!
//! This is not a web framework: no routing, no cookies, no compression, no TLS, no client. It
//! is the part of HTTP/1.1 that a blocking socket toolkit should get right: framing,
//! keep-alive, pipelining, limits, and refusing bad input with the right status.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use std::time::Duration;
//! use threadnet::http::{self, Http1, Request, Response};
//! use threadnet::TcpServer;
//!
//! let server = TcpServer::builder().addr("127.0.0.1:0").start(
//!     Http1::new(),
//!     http::serve(|req: &Request| match (req.method(), req.path()) {
//!         ("GET", "/json") => Response::json(r#"{"hello":"world"}"#),
//!         ("POST", "/echo") => Response::new(200).body(req.body()),
//!         _ => Response::new(404),
//!     }),
//! )?;
//!
//! // Two requests in one write (pipelined), the second one closing the connection.
//! let mut s = TcpStream::connect(server.local_addr())?;
//! s.write_all(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n\
//!               POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")?;
//! let mut replies = String::new();
//! s.read_to_string(&mut replies)?;
//! assert!(replies.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(replies.contains("\r\n\r\n{\"hello\":\"world\"}HTTP/1.1 200 OK\r\n"));
//! assert!(replies.ends_with("\r\n\r\nhi"));
//!
//! server.stop(Duration::from_secs(1));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Who writes what
//!
//! A [`Codec`](crate::Codec)'s `read` cannot write to the socket, yet HTTP needs two answers
//! that come from reading: the interim `100 Continue` a client waits for before sending its
//! body, and the status that refuses a bad request. So the work is split in three, as
//! hyper splits `role` (parse, encode) from `conn` (keep-alive, `100 Continue`, closing) and
//! muduo splits `HttpContext` from `HttpServer`:
//!
//! * **The codec, [`Http1`]**, only reads and writes bytes. Its `read` returns an [`Incoming`]
//!   that says what happened: a [`Request`] (complete, body included), [`Continue`] (the head
//!   of a request that waits for `100 Continue`; the next read returns it with its body), or
//!   an [`Error`] carrying the status that answers it. After an `Error`, or after a request
//!   that does not keep the connection alive, the codec parses nothing more: it reads and
//!   throws away whatever the peer still sends, until its EOF.
//! * **The helpers [`reply`] and [`reject`]** send a response the way HTTP wants it (`HEAD`
//!   gets headers only, HTTP/1.0 gets no chunks, `Connection: close` is honoured) and close
//!   the connection gracefully when they must: [`Connection::shutdown`] flushes the response
//!   before the FIN, and the codec keeps reading until the peer's EOF (or
//!   [`CLOSE_TIMEOUT`]), so the client reads its response rather than a reset.
//! * **The handler, [`Service`]**, made by [`serve`], ties them together around your
//!   function. A handler of your own can do the same with the codec and the two helpers.
//!
//! [`Continue`]: Incoming::Continue
//! [`Error`]: Incoming::Error
//! [`Connection::shutdown`]: crate::Connection::shutdown
//!
//! Replies to pipelined requests are not flushed one by one: threadnet gathers replies while
//! more input is buffered and writes them together when the reader would wait ("write-through",
//! see the crate docs), so a burst of pipelined requests costs about one `writev`.
//!
//! # What is accepted, what is refused
//!
//! * Request line `METHOD SP target SP HTTP/1.x`. Any method token (the handler judges it);
//!   `HTTP/1.0` and `HTTP/1.1`. A higher minor version (`HTTP/1.2` to `HTTP/1.9`) is served
//!   as 1.1, the highest one implemented (RFC 9110 §6.2): 1.1's rules apply and the response
//!   says `HTTP/1.1`. Another `HTTP/x.y` (`HTTP/2.0`) is 505, anything else 400. Empty lines
//!   before the request line are skipped.
//! * The head's lines end with CRLF or a bare LF (RFC 9112 §2.2 lets a recipient take a bare
//!   LF as a line end). A bare CR anywhere, obs-fold (a header line starting with
//!   whitespace), a header name that is not a token or has whitespace before its colon, a
//!   control character in a value, and a head that is not UTF-8 are 400.
//! * `Host`: an HTTP/1.1 request needs exactly one; no request may have two; its value must be
//!   `uri-host [ ":" port ]` of RFC 3986 (a registered name or IPv4 address of unreserved,
//!   sub-delims and `%XX` bytes, or an IPv6 or `vX.` literal in brackets; a decimal port), or
//!   empty. Anything else is 400 (RFC 9112 §3.2): `Host: x y` is refused, not served. The
//!   authority of an absolute-form target, which stands for the Host, is checked the same way
//!   and must name a host.
//! * Body: `Content-Length` or `Transfer-Encoding: chunked`. Both at once is 400 (request
//!   smuggling, RFC 9112 §6.3), so are differing `Content-Length`s and `Transfer-Encoding` in
//!   HTTP/1.0; any other transfer coding is 501. Chunk extensions are ignored; trailer fields
//!   are read (within [`max_head`](Http1::max_head)) and dropped.
//! * The chunked framing's lines (each chunk size, the CRLF after each chunk's data, the
//!   trailer fields and the empty line that ends them) must end with CRLF: a bare LF there is
//!   400, although RFC 9112 §2.2 would let a recipient accept it. Where a chunk ends decides
//!   where the next request on the connection starts, and a body is forwarded by proxies as it
//!   streams: a proxy in front that read a bare LF there otherwise (as chunk data, or as part
//!   of a chunk extension) would pass on a second request it never saw, the request smuggling
//!   of RFC 9112 §11.2. A parser that refuses every such line cannot be desynchronised that
//!   way: the connection ends with the 400. A head's lines are different: a proxy must parse
//!   them into fields, and one that does not end a line at a bare LF must refuse the LF in a
//!   field value (RFC 9110 §5.5) rather than forward it.
//! * Keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
//!   `Connection: keep-alive`.
//! * `Expect: 100-continue` on an HTTP/1.1 request with a body gives [`Incoming::Continue`]
//!   (after the body's length has passed the limit check: a body too large is refused with
//!   413 without asking the client for it).
//!
//! Header names are case-insensitive everywhere. The full table of refusals is on
//! [`HttpError`].
//!
//! # Responses
//!
//! A [`Response`] is a status, optional reason, header fields and a body held in memory. The
//! codec writes `Content-Length` itself, or `Transfer-Encoding: chunked` for a body given as
//! chunks ([`Response::chunks`]); no `Date` or `Server` field is added.
//!
//! # Behind TLS and a load balancer
//!
//! There is no TLS here (std has none, and threadnet adds no dependencies): terminate it in
//! front, and forward plain TCP to the server on loopback (the
//! [design](crate::design#tls-is-terminated-in-front) says why). Behind a terminator or a
//! balancer every `peer_addr()` would be the balancer's, so
//! [`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol) expects each
//! connection to begin with a PROXY protocol header (HAProxy's spec, v1 text or v2 binary), as
//! HAProxy (`send-proxy`, `send-proxy-v2`), nginx `stream` (`proxy_protocol on`) and cloud load
//! balancers send it: [`Connection::peer_addr`](crate::Connection::peer_addr) is then the
//! client's address and [`Connection::proxied_by`](crate::Connection::proxied_by) the
//! balancer's (v1 `UNKNOWN` and v2 `LOCAL` health checks keep the socket's addresses). The
//! header is read on the connection's own thread before the handler is made, never past its
//! end; a connection without a valid one within
//! [`proxy_header_timeout`](crate::ServerBuilder::proxy_header_timeout) (3 s) is closed and
//! counted as refused. Only turn it on when every client comes through the balancer: whoever
//! reaches the port directly can claim any address.
//!
//! The recipe `tests/haproxy.rs` runs: a self-signed certificate, HAProxy terminating TLS in
//! front of the `http_hello` example, whose `/peer` answers with the client's address.
//!
//! ```sh
//! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
//!   -subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout key.pem -out cert.pem
//! cat cert.pem key.pem > site.pem
//! cargo run --release --example http_hello -- --addr 127.0.0.1:8080 --proxy-protocol &
//! cat > haproxy.cfg <<'CFG'
//! defaults
//!   mode tcp
//!   timeout connect 5s
//!   timeout client 60s
//!   timeout server 60s
//! frontend tls
//!   bind 127.0.0.1:8443 ssl crt site.pem
//!   default_backend app
//! backend app
//!   server app 127.0.0.1:8080 send-proxy-v2
//! CFG
//! haproxy -db -f haproxy.cfg &
//! curl --cacert cert.pem https://localhost:8443/peer  # peer <you>, proxied_by 127.0.0.1:…
//! ```

pub(crate) mod chars;
mod codec;
mod error;
#[cfg(test)]
mod limit_tests;
mod parse;
mod request;
mod response;
#[cfg(test)]
mod response_tests;
mod serve;
#[cfg(test)]
mod tests;

pub use codec::{Http1, Incoming};
pub use error::HttpError;
pub use request::{Request, Version};
pub use response::{reason_phrase, Response};
pub use serve::{reject, reply, serve, Service, CLOSE_TIMEOUT};
