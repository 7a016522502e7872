//! The handler wrapper that answers what the codec cannot: pongs, close frames, and protocol
//! errors.

use std::time::Duration;

use super::codec::{CloseFrame, Message, WsCodec};
use super::error::WsError;
use crate::codec::Codec;
use crate::conn::handler::Handler;
use crate::conn::{CloseReason, Connection};

/// How long a closing connection waits for the peer's close frame and EOF before it is closed
/// by force.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Starts the closing handshake (RFC 6455, section 7.1.2): sends a close frame with `code`
/// and `reason`, then [`shutdown`](Connection::shutdown)s the connection with
/// [`CLOSE_TIMEOUT`], so the frame is flushed before our FIN and the reader waits for the
/// peer's close frame and EOF.
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
    let frame = CloseFrame {
        code,
        reason: reason.to_string(),
    };
    if conn.send(Message::Close(Some(frame)).into()).is_err() {
        let _ = conn.send(Message::Close(None).into());
    }
    conn.shutdown(CLOSE_TIMEOUT);
}

/// What every endpoint does on its own (RFC 6455, 5.5.1 and 5.5.2): answers a ping with a
/// pong, echoes a close frame and shuts down, answers a protocol error with its close code.
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
            // Refused if we sent our close first: then this is the answer to it.
            let _ = conn.send(Message::Close(c.clone()).into());
            conn.shutdown(CLOSE_TIMEOUT);
        }
        Err(e) => close(conn, e.code, e.reason),
        Ok(_) => {}
    }
}

/// Wraps a [`Handler`] for [`WsCodec`] and does what RFC 6455 asks of every endpoint before
/// handing each message on, unchanged, to the handler inside:
///
/// * a [`Ping`](Message::Ping) is answered with a [`Pong`](Message::Pong) carrying its
///   payload (section 5.5.2);
/// * a [`Close`](Message::Close) from the peer is echoed (its code, or no code) and the
///   connection shut down (section 5.5.1): the peer's EOF, or [`CLOSE_TIMEOUT`], ends it;
/// * a [`WsError`] is answered with a close frame carrying its code (1002, 1007, 1009) and
///   the connection shut down.
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
