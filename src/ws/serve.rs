//! The handler for [`WsUpgrade`]: pages over HTTP, sockets over WebSocket, on one port.

use std::sync::Arc;

use super::codec::Message;
use super::handler::{answer, CLOSE_TIMEOUT};
use super::layer;
use super::upgrade::{Incoming, Outgoing, WsUpgrade};
use crate::conn::handler::Handler;
use crate::conn::{CloseReason, Connection};
use crate::http::{self, Request, Response, Version};

/// The callbacks of one WebSocket, after its handshake. Pings, close frames and protocol
/// errors are answered before these run, a shutdown or stop sends a close frame first, and
/// `on_close` gets the close frame's code (see [`AutoReply`](super::AutoReply)).
pub trait WsHandler: Send + 'static {
    /// The handshake was accepted and its `101` queued; `request` is the upgrade request.
    fn on_open(&mut self, conn: &Connection<WsUpgrade>, request: &Request) {
        let _ = (conn, request);
    }

    /// One message or control frame from the peer. Reply with
    /// `conn.send(Message::Text(..).into())`.
    fn on_message(&mut self, conn: &Connection<WsUpgrade>, msg: Message);

    /// The connection ended; called only if [`on_open`](Self::on_open) was.
    fn on_close(&mut self, conn: &Connection<WsUpgrade>, reason: &CloseReason) {
        let _ = (conn, reason);
    }
}

impl<F> WsHandler for F
where
    F: FnMut(&Connection<WsUpgrade>, Message) + Send + 'static,
{
    fn on_message(&mut self, conn: &Connection<WsUpgrade>, msg: Message) {
        self(conn, msg)
    }
}

/// A server for [`WsUpgrade`]: plain HTTP requests get `page(&request)`, WebSocket handshakes
/// get their `101` (or their refusal) and a handler from `socket` per connection.
///
/// HTTP is answered as [`http::serve`] answers it (`HEAD` without a body, HTTP/1.0 without
/// chunks, the connection closed gracefully after a request that does not keep it alive).
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use threadnet::http::{Request, Response};
/// use threadnet::ws::{self, Message, WsUpgrade};
/// use threadnet::{Connection, TcpServer};
///
/// let server = TcpServer::builder().addr("127.0.0.1:0").start(
///     WsUpgrade::new(),
///     ws::serve(
///         |_: &Request| Response::html("<p>hello</p>"),
///         |_: &Connection<WsUpgrade>| {
///             |conn: &Connection<WsUpgrade>, msg: Message| {
///                 let _ = conn.send(msg.into()); // echo
///             }
///         },
///     ),
/// )?;
///
/// let mut s = TcpStream::connect(server.local_addr())?;
/// s.write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")?;
/// let mut head = [0u8; 129];
/// s.read_exact(&mut head)?;
/// let head = String::from_utf8_lossy(&head);
/// assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
/// assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
/// server.stop(std::time::Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve<P, F, H>(
    page: P,
    socket: F,
) -> impl Fn(&Connection<WsUpgrade>) -> WsService<P, H> + Send + Sync + 'static
where
    P: Fn(&Request) -> Response + Send + Sync + 'static,
    F: Fn(&Connection<WsUpgrade>) -> H + Send + Sync + 'static,
    H: WsHandler,
{
    let page = Arc::new(page);
    move |conn: &Connection<WsUpgrade>| WsService {
        page: Arc::clone(&page),
        socket: socket(conn),
        open: false,
    }
}

/// The handler [`serve`] makes for each connection.
pub struct WsService<P, H> {
    page: Arc<P>,
    socket: H,
    open: bool,
}

impl<P, H> Handler<WsUpgrade> for WsService<P, H>
where
    P: Fn(&Request) -> Response + Send + Sync + 'static,
    H: WsHandler,
{
    fn on_message(&mut self, conn: &Connection<WsUpgrade>, msg: Incoming) {
        match msg {
            Incoming::Http(http::Incoming::Request(req)) => reply(conn, &req, (self.page)(&req)),
            Incoming::Http(http::Incoming::Continue) => {
                let _ = conn.send(Response::new(100).into());
            }
            Incoming::Http(http::Incoming::Error(e)) => send(conn, e.to_response(), true),
            Incoming::Refused(resp) => send(conn, resp, true),
            Incoming::Open { request, response } => {
                // The subprotocol is known before the 101 is queued, the close frame may go
                // out only after it: a plain HTTP connection on this port never gets one.
                let chosen = response.get_header("sec-websocket-protocol");
                layer::install(conn, chosen.map(str::to_string), false);
                send(conn, response, false);
                layer::speaks(conn);
                self.open = true;
                self.socket.on_open(conn, &request);
            }
            Incoming::Ws(msg) => {
                answer(conn, &msg);
                if let Ok(m) = msg {
                    self.socket.on_message(conn, m);
                }
            }
        }
    }

    fn on_close(&mut self, conn: &Connection<WsUpgrade>, reason: &CloseReason) {
        if self.open {
            self.socket.on_close(conn, reason);
        }
    }
}

/// Answers a plain request as [`http::reply`] does.
fn reply(conn: &Connection<WsUpgrade>, req: &Request, mut resp: Response) {
    if req.version() == Version::Http10 {
        resp = resp.unchunked();
    }
    if req.is_head() {
        resp = resp.omit_body();
    }
    let says_close = resp
        .get_header("connection")
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
    let close = !req.keep_alive() || says_close || conn.is_winding_down();
    if close && !says_close {
        resp = resp.header("Connection", "close");
    } else if !close && req.version() == Version::Http10 {
        resp = resp.header("Connection", "keep-alive");
    }
    send(conn, resp, close);
}

fn send(conn: &Connection<WsUpgrade>, resp: Response, close: bool) {
    match conn.send(Outgoing::Http(resp)) {
        Ok(()) if !close => {}
        Ok(()) => conn.shutdown(CLOSE_TIMEOUT),
        Err(_) => conn.close(),
    }
}
