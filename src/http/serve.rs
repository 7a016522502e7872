//! The handler that runs a `Fn(&Request) -> Response`: it writes what `Codec::read` cannot
//! (`100 Continue`, the answer to a refused request) and closes the connection when HTTP says
//! so.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use super::codec::{Http1, Incoming};
use super::error::HttpError;
use super::request::{Request, Version};
use super::response::Response;
use crate::conn::handler::Handler;
use crate::conn::Connection;
use crate::error::SendError;

/// How long a connection that HTTP closes (an error, `Connection: close`, HTTP/1.0) waits for
/// the peer's EOF after our response and FIN before it is closed by force: the time a client
/// has to read the response while the rest of its input is thrown away.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Makes a handler factory for [`ServerBuilder::start`](crate::ServerBuilder::start) from a
/// function that answers one request: every connection gets a [`Service`] that calls it.
///
/// `handler` runs on the connection's reader thread, once per request, in order; it is shared
/// by every connection (it is `Fn`, so shared state goes behind a lock or an atomic). The
/// [`Service`] around it does the rest of HTTP/1.1: see [`reply`] and [`reject`].
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use std::time::Duration;
/// use threadnet::http::{self, Http1, Request, Response};
/// use threadnet::TcpServer;
///
/// let server = TcpServer::builder()
///     .addr("127.0.0.1:0")
///     .start(
///         Http1::new(),
///         http::serve(|req: &Request| match req.path() {
///             "/" => Response::text("hello\n"),
///             _ => Response::new(404),
///         }),
///     )?;
///
/// let mut s = TcpStream::connect(server.local_addr())?;
/// s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
/// let mut reply = String::new();
/// s.read_to_string(&mut reply)?; // Connection: close, so the server closes after the reply
/// assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(reply.ends_with("\r\n\r\nhello\n"));
///
/// server.stop(Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve<F>(handler: F) -> impl Fn(&Connection<Http1>) -> Service<F> + Send + Sync + 'static
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    move |_: &Connection<Http1>| Service {
        handler: Arc::clone(&handler),
    }
}

/// The [`Handler`] that [`serve`] makes for each connection.
///
/// | it reads | it does |
/// |---|---|
/// | [`Incoming::Request`] | calls the function, then [`reply`] (a panic in it answers 500 and closes) |
/// | [`Incoming::Continue`] | sends `100 Continue`, so the client sends the body |
/// | [`Incoming::Error`] | [`reject`]: the error's status, then a graceful close |
pub struct Service<F> {
    handler: Arc<F>,
}

impl<F> Handler<Http1> for Service<F>
where
    F: Fn(&Request) -> Response + Send + Sync + 'static,
{
    fn on_message(&mut self, conn: &Connection<Http1>, msg: Incoming) {
        match msg {
            Incoming::Request(req) => {
                match panic::catch_unwind(AssertUnwindSafe(|| (self.handler)(&req))) {
                    Ok(resp) => reply(conn, &req, resp),
                    // The panic hook has reported it; the client gets an answer.
                    Err(_) => send(conn, internal_error(), true),
                }
            }
            Incoming::Continue => {
                let _ = conn.send(Response::new(100));
            }
            Incoming::Error(e) => reject(conn, &e),
        }
    }
}

fn internal_error() -> Response {
    Response::new(500)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Connection", "close")
        .body("internal server error\n")
}

/// Sends `resp` as the answer to `req`, the way HTTP/1.1 wants it:
///
/// * to `HEAD`, the header fields only ([`Response::omit_body`]);
/// * to HTTP/1.0, a chunked body as one with `Content-Length` ([`Response::unchunked`]);
/// * when the request does not keep the connection alive (`Connection: close`, or HTTP/1.0
///   without `Connection: keep-alive`), the response says `Connection: close`, or the
///   connection is winding down ([`Connection::wind_down`]: the server is draining): with
///   `Connection: close`, then a graceful close ([`Connection::shutdown`] with
///   [`CLOSE_TIMEOUT`], so the response is flushed before the FIN); to an HTTP/1.0
///   keep-alive request, with `Connection: keep-alive`.
///
/// If the send times out (the peer has stopped reading) the connection is closed. If the codec
/// refuses `resp` (a malformed header field), a 500 is sent instead and the connection
/// closes.
pub fn reply(conn: &Connection<Http1>, req: &Request, mut resp: Response) {
    if req.version() == Version::Http10 {
        resp = resp.unchunked();
    }
    if req.is_head() {
        resp = resp.omit_body();
    }
    let close = !req.keep_alive() || resp.says_close() || conn.is_winding_down();
    if close && !resp.says_close() {
        resp = resp.header("Connection", "close");
    } else if !close && req.version() == Version::Http10 {
        resp = resp.header("Connection", "keep-alive");
    }
    send(conn, resp, close);
}

/// Answers a request the codec refused: the error's status and message
/// ([`HttpError::to_response`]), then a graceful close ([`Connection::shutdown`] with
/// [`CLOSE_TIMEOUT`]): the response is flushed before our FIN, and the peer's remaining input
/// is read and thrown away until it closes, so it reads the response rather than a reset.
pub fn reject(conn: &Connection<Http1>, error: &HttpError) {
    send(conn, error.to_response(), true);
}

/// Sends `resp`, then shuts the connection down if `close`.
fn send(conn: &Connection<Http1>, resp: Response, close: bool) {
    match conn.send(resp) {
        Ok(()) => {
            if close {
                conn.shutdown(CLOSE_TIMEOUT);
            }
        }
        Err(SendError::Encode(..)) => {
            let _ = conn.send(internal_error());
            conn.shutdown(CLOSE_TIMEOUT);
        }
        Err(SendError::Timeout(_)) => conn.close(),
        Err(_) => {} // already closed or closing
    }
}
