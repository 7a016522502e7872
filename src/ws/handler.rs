//! The handler wrapper that answers what the codec cannot: pongs, close frames, and protocol
//! errors.

use std::net::Shutdown;
use std::time::Duration;

use super::codec::{CloseFrame, Message, WsCodec};
use super::error::WsError;
use super::layer;
use crate::codec::Codec;
use crate::conn::handler::Handler;
use crate::conn::{CloseReason, Connection};
use crate::idle::Heartbeat;

/// How long a closing connection waits for the peer's close frame and EOF before it is closed
/// by force.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Starts the closing handshake (RFC 6455, section 7.1.2): sends a close frame with `code`
/// and `reason`, then [`shutdown`](Connection::shutdown)s the connection with
/// [`CLOSE_TIMEOUT`], so the frame is flushed before our FIN and the reader waits for the
/// peer's close frame. When it comes, the connection closes at once (the server closes the
/// TCP connection first, section 7.1.1) and `on_close` gets
/// [`CloseReason::Protocol`] with the code the peer answered; a peer that does not answer
/// within [`CLOSE_TIMEOUT`] is closed by force ([`CloseReason::ShutdownTimeout`]).
///
/// A plain [`Connection::shutdown`] or a server stop on a connection that
/// [`AutoReply`] or [`ws::serve`](super::serve) handles does the same with 1000 (normal
/// closure) or 1001 (going away, for a stop) and its own deadline: do not also queue a
/// [`Message::Close`] with `send` before it, or two close frames go out; call this instead.
///
/// A `code` that [`is_valid_close_code`](super::is_valid_close_code) refuses, or a reason over
/// 123 bytes, sends a close frame without a status instead. Does nothing but the shutdown if
/// the connection no longer takes sends.
///
/// Works on any connection whose codec writes [`Message`]s: [`WsCodec`] and
/// [`WsUpgrade`](super::WsUpgrade).
pub fn close<C>(conn: &Connection<C>, code: u16, reason: &str)
where
    C: Codec,
    C::Out: From<Message>,
{
    conn.core.layer().disarm_goodbye(); // this is the close frame
    let frame = CloseFrame {
        code,
        reason: reason.to_string(),
    };
    if conn.send(Message::Close(Some(frame)).into()).is_err() {
        let _ = conn.send(Message::Close(None).into());
    }
    conn.shutdown(CLOSE_TIMEOUT);
}

/// A [`Heartbeat`] for a WebSocket connection (a [`WsCodec`] one, a [`ws::serve`](super::serve)
/// one once its handshake is done, or a [`WsClient`](super::WsClient) one): a Ping frame with
/// an empty payload, sent whenever the connection has written nothing for `interval`. On the
/// client end (a [`WsClient`](super::WsClient) connection, or a [`WsCodec::client`] one that
/// [`AutoReply`] handles) each ping is masked with a fresh key, as a client's frames must be
/// (RFC 6455, section 5.3).
///
/// The rule: a peer that has sent nothing at all, not even the Pong that RFC 6455
/// (section 5.5.2) obliges it to answer each ping with, for `misses` intervals (3 unless
/// [`Heartbeat::misses`] says otherwise) is presumed dead and closed at once with
/// [`CloseReason::IdleTimeout`] of [`IdleKind::Heartbeat`](crate::idle::IdleKind::Heartbeat). Any
/// frame from the peer counts as a sign of life, and a live peer's pong arrives within one
/// round trip of each ping, so a peer that answers is never closed.
///
/// The heartbeat is written as raw bytes whatever the connection is doing: on a
/// [`WsUpgrade`](super::WsUpgrade) port it would reach a plain HTTP keep-alive connection
/// too, so use it there only if every connection upgrades (or keep-alive connections are
/// closed sooner, e.g. by [`ConnOptions::read_idle`](crate::ConnOptions::read_idle)).
///
/// ```
/// use std::time::Duration;
/// use threadnet::{ws, ConnOptions};
///
/// // A ping after 10 s without writes; closed after 30 s without a byte from the peer.
/// let opts = ConnOptions::new().heartbeat(ws::heartbeat(Duration::from_secs(10)));
/// # let _ = opts;
/// ```
///
/// # Panics
///
/// If `interval` is zero.
pub fn heartbeat(interval: Duration) -> Heartbeat {
    let mut ping = Vec::new();
    WsCodec::new()
        .write(&Message::Ping(Vec::new()), &mut ping)
        .expect("an empty ping encodes");
    Heartbeat::new(interval, ping)
}

/// What every endpoint does on its own (RFC 6455, 5.5.1 and 5.5.2): answers a ping with a
/// pong, echoes a close frame and shuts down, answers a protocol error with its close code.
/// The close frame's code (the peer's, or ours for a protocol error) becomes the close
/// reason ([`CloseReason::Protocol`]).
pub(crate) fn answer<C>(conn: &Connection<C>, msg: &Result<Message, WsError>)
where
    C: Codec,
    C::Out: From<Message>,
{
    match msg {
        Ok(Message::Ping(p)) => {
            let _ = conn.send(Message::Pong(p.clone()).into());
        }
        Ok(Message::Close(c)) => {
            let (code, reason) = c
                .as_ref()
                .map_or((NO_STATUS, String::new()), |c| (c.code, c.reason.clone()));
            conn.core.set_cause(CloseReason::Protocol {
                code,
                reason,
                by_peer: true,
            });
            // The echo is the close frame. It is refused if we sent our close first: then
            // this is the answer to it.
            conn.core.layer().disarm_goodbye();
            let _ = conn.send(Message::Close(c.clone()).into());
            // The peer sends nothing more, and the server closes the TCP connection first
            // (section 7.1.1).
            if conn.core.layer().get().is_some_and(|l| l.is_client()) {
                // A client waits for the server's FIN (its codec reads to EOF; then what is
                // queued is flushed and the connection ends), and sends its own only after
                // it, or at the deadline.
                conn.run_after(CLOSE_TIMEOUT, |conn| conn.shutdown(Duration::ZERO));
            } else {
                // A server's reader sees its end now, and once the close frame and our FIN
                // are out the socket closes, without waiting for the client's FIN.
                conn.shutdown(CLOSE_TIMEOUT);
                if let Some(s) = conn.core.stream() {
                    let _ = s.shutdown(Shutdown::Read);
                }
            }
        }
        Err(e) => {
            conn.core.set_cause(CloseReason::Protocol {
                code: e.code,
                reason: e.reason.to_string(),
                by_peer: false,
            });
            close(conn, e.code, e.reason);
        }
        Ok(_) => {}
    }
}

/// The code a close reason reports for a close frame without a status (RFC 6455, section
/// 7.1.5); never sent.
const NO_STATUS: u16 = 1005;

/// Wraps a [`Handler`] for [`WsCodec`] and does what RFC 6455 asks of every endpoint before
/// handing each message on, unchanged, to the handler inside:
///
/// * a [`Ping`](Message::Ping) is answered with a [`Pong`](Message::Pong) carrying its
///   payload (section 5.5.2);
/// * a [`Close`](Message::Close) from the peer is echoed (its code, or no code) and the
///   connection shut down (section 5.5.1): the peer's EOF, or [`CLOSE_TIMEOUT`], ends it;
/// * a [`WsError`] is answered with a close frame carrying its code (1002, 1007, 1009) and
///   the connection shut down;
/// * a [`Connection::shutdown`] or a server stop sends a close frame (1000, or 1001 for a
///   stop) before the FIN (see [`close`]);
/// * `on_close` gets [`CloseReason::Protocol`] with the close frame's code and reason when
///   the connection ended by a closing handshake.
///
/// ```
/// use threadnet::ws::{AutoReply, Message, WsCodec, WsError};
/// use threadnet::{Connection, TcpServer};
///
/// let server = TcpServer::builder().addr("127.0.0.1:0").start(WsCodec::new(), |_: &Connection<WsCodec>| {
///     AutoReply::new(|conn: &Connection<WsCodec>, msg: Result<Message, WsError>| {
///         if let Ok(m @ (Message::Text(_) | Message::Binary(_))) = msg {
///             let _ = conn.send(m); // echo
///         }
///     })
/// })?;
/// server.stop(std::time::Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct AutoReply<H> {
    inner: H,
}

impl<H: Handler<WsCodec>> AutoReply<H> {
    /// Wraps `inner`.
    pub fn new(inner: H) -> AutoReply<H> {
        AutoReply { inner }
    }
}

impl<H: Handler<WsCodec>> Handler<WsCodec> for AutoReply<H> {
    fn on_connect(&mut self, conn: &Connection<WsCodec>) {
        // A WsClient's factory installed its layer already (with its subprotocol).
        layer::install(conn, None, conn.codec.is_client());
        layer::speaks(conn);
        self.inner.on_connect(conn);
    }

    fn on_message(&mut self, conn: &Connection<WsCodec>, msg: Result<Message, WsError>) {
        answer(conn, &msg);
        self.inner.on_message(conn, msg);
    }

    fn on_close(&mut self, conn: &Connection<WsCodec>, reason: &CloseReason) {
        self.inner.on_close(conn, reason);
    }
}
