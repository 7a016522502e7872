//! The WebSocket client for synchronous code: a [`BlockingClient`] of [`WsCodec`] whose
//! receives give one `Result` per message.

use std::fmt;
use std::time::Duration;

use super::codec::{Message, WsCodec};
use super::error::WsError;
use crate::conn::{CloseReason, Connection};
use crate::error::SendError;
use crate::pull::client::BlockingClient;
use crate::pull::{RecvError, RecvTimeoutError, RequestError, TryRecvError};

/// A WebSocket client the calling thread sends on and receives from, made by
/// [`WsClient::builder().connect_blocking(url)`](super::WsClientBuilder::connect_blocking).
///
/// Each receive returns a [`Message`], or one [`WsRecvError`] that says why there is none: the
/// connection ended (with its [`CloseReason`]), the deadline passed, or the server broke the
/// protocol (tungstenite's `read()` is the model). Every message comes to the receives,
/// control frames included, and is answered as it is read: a ping with a pong, a close frame
/// with ours, a protocol error with a close frame of its code. A client that does not receive
/// answers nothing, as with any blocking socket.
///
/// It is a [`BlockingClient`] underneath: no reader thread (the caller reads and decodes), a
/// receive with a deadline never tears a frame, and [`shutdown`](Self::shutdown) or dropping
/// the client sends a close frame (1000; 1001 for a drop) before the FIN.
///
/// ```
/// use std::time::Duration;
/// use threadnet::http::{Request, Response};
/// use threadnet::ws::{self, Message, WsClient, WsRecvError, WsUpgrade};
/// use threadnet::{Connection, TcpServer};
///
/// // An echo server that says "bye" with a close frame after the first message.
/// let server = TcpServer::builder().start(
///     WsUpgrade::new(),
///     ws::serve(
///         |_: &Request| Response::new(404),
///         |_: &Connection<WsUpgrade>| {
///             |conn: &Connection<WsUpgrade>, msg: Message| {
///                 if let Message::Text(_) = msg {
///                     let _ = conn.send(msg.into());
///                     ws::close(conn, 1000, "bye");
///                 }
///             }
///         },
///     ),
/// )?;
///
/// let client = WsClient::builder().connect_blocking(&format!("ws://{}/", server.local_addr()))?;
/// let reply = client.request(Message::Text("hi".into()), Duration::from_secs(5));
/// assert_eq!(reply.unwrap(), Message::Text("hi".into()));
/// loop {
///     match client.recv() {
///         Ok(Message::Close(frame)) => println!("the server says {frame:?}"), // answered
///         Ok(other) => println!("{other:?}"),
///         Err(WsRecvError::Closed(reason)) => {
///             println!("ended: {reason}"); // the closing handshake: code 1000
///             break;
///         }
///         Err(e) => panic!("{e}"),
///     }
/// }
/// # server.stop(Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct WsBlockingClient {
    inner: BlockingClient<WsCodec>,
}

/// Why a [`WsBlockingClient`]'s receive (or [`request`](WsBlockingClient::request)) returned
/// no message.
#[derive(Debug)]
pub enum WsRecvError {
    /// The connection has ended, for this reason, and every message that arrived before the
    /// end has been received; every later receive returns this again. A closing handshake
    /// ends with [`CloseReason::Protocol`] and the close frame's code.
    Closed(CloseReason),
    /// No whole message arrived within the deadline (for
    /// [`try_recv`](WsBlockingClient::try_recv): none could be had without waiting). The
    /// connection is still open, and a part of a message read so far is kept for the next
    /// receive; but a [`request`](WsBlockingClient::request) that times out has closed it.
    Timeout,
    /// The server broke the protocol: a masked frame, text that is not UTF-8, a frame or a
    /// message over the limit. The client has answered with a close frame of the error's
    /// [`code`](WsError::code) (1002, 1007 or 1009) and is closing: the next receive returns
    /// [`Closed`](WsRecvError::Closed) once the server has closed too (or at the close
    /// deadline).
    Protocol(WsError),
    /// [`request`](WsBlockingClient::request) only: the request was not sent, and is handed
    /// back (the queue stayed full, the connection is closed, or it could not be encoded).
    Send(SendError<Message>),
}

impl WsBlockingClient {
    pub(crate) fn new(inner: BlockingClient<WsCodec>) -> WsBlockingClient {
        WsBlockingClient { inner }
    }

    /// The connection: its addresses, stats, timers, the other sends
    /// ([`try_send`](Connection::try_send), [`send_timeout`](Connection::send_timeout)), and
    /// the subprotocol the handshake chose ([`ws::subprotocol`](super::subprotocol)).
    pub fn connection(&self) -> &Connection<WsCodec> {
        self.inner.connection()
    }

    /// Sends `msg`, waiting while the send queue is full, up to the send timeout
    /// ([`ConnOptions::send_timeout`](crate::ConnOptions::send_timeout)). To close with a code
    /// of your own, use [`ws::close`](super::close)`(client.connection(), code, reason)` rather
    /// than sending a [`Message::Close`].
    ///
    /// # Errors
    ///
    /// The message is handed back: the queue stayed full, the connection is closed, or it
    /// could not be encoded (a payload over the frame limit).
    pub fn send(&self, msg: Message) -> Result<(), SendError<Message>> {
        self.inner.send(msg)
    }

    /// The next message, read and decoded on this thread, waiting for as long as it takes.
    /// [`close`](Self::close) from another thread ends the wait.
    ///
    /// # Errors
    ///
    /// [`WsRecvError::Closed`] when the connection has ended, [`WsRecvError::Protocol`] when
    /// the server broke the protocol.
    pub fn recv(&self) -> Result<Message, WsRecvError> {
        flatten(self.inner.recv().map_err(ended))
    }

    /// The next message, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), and [`WsRecvError::Timeout`] when no whole message arrived in
    /// time.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, WsRecvError> {
        flatten(self.inner.recv_timeout(timeout).map_err(timed))
    }

    /// The next message if it can be had without waiting: wholly buffered already, or
    /// readable from the socket now.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), and [`WsRecvError::Timeout`] when no whole message is there.
    pub fn try_recv(&self) -> Result<Message, WsRecvError> {
        flatten(self.inner.try_recv().map_err(tried))
    }

    /// Sends `msg`, then receives the next message and returns it, all within `timeout`: for
    /// a server that answers each message with one. A ping or a close frame that arrives first
    /// is the answer, as [`BlockingClient::request`] says.
    ///
    /// # Errors
    ///
    /// [`WsRecvError::Send`] with the message when it could not be sent; as
    /// [`recv_timeout`](Self::recv_timeout) otherwise, except that a timeout closes the
    /// connection (the late reply would be taken as the next request's).
    pub fn request(&self, msg: Message, timeout: Duration) -> Result<Message, WsRecvError> {
        flatten(self.inner.request(msg, timeout).map_err(requested))
    }

    /// Closes gracefully, on this thread: a close frame (1000), what is queued, then the FIN;
    /// then this thread reads on until the server has closed too, answering its close frame,
    /// and closes the socket, by force at `timeout`. Returns when the connection has ended;
    /// later receives return [`WsRecvError::Closed`].
    pub fn shutdown(&self, timeout: Duration) {
        self.inner.shutdown(timeout);
    }

    /// Closes the connection now, without the closing handshake, as [`Connection::close`]:
    /// what is queued is dropped, and a receive blocked on another thread returns
    /// [`WsRecvError::Closed`]. Returns at once. For the closing handshake, use
    /// [`shutdown`](Self::shutdown) or [`ws::close`](super::close).
    pub fn close(&self) {
        self.inner.close();
    }
}

impl fmt::Debug for WsBlockingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsBlockingClient")
            .field("connection", &self.connection().id())
            .finish()
    }
}

/// One `Result` of the two layers a [`WsCodec`] message arrives in.
fn flatten(got: Result<Result<Message, WsError>, WsRecvError>) -> Result<Message, WsRecvError> {
    got?.map_err(WsRecvError::Protocol)
}

fn ended(e: RecvError) -> WsRecvError {
    WsRecvError::Closed(e.reason)
}

fn timed(e: RecvTimeoutError) -> WsRecvError {
    match e {
        RecvTimeoutError::Timeout => WsRecvError::Timeout,
        RecvTimeoutError::Closed(reason) => WsRecvError::Closed(reason),
    }
}

fn tried(e: TryRecvError) -> WsRecvError {
    match e {
        TryRecvError::Empty => WsRecvError::Timeout,
        TryRecvError::Closed(reason) => WsRecvError::Closed(reason),
    }
}

fn requested(e: RequestError<Message>) -> WsRecvError {
    match e {
        RequestError::Send(e) => WsRecvError::Send(e),
        RequestError::Timeout => WsRecvError::Timeout,
        RequestError::Closed(reason) => WsRecvError::Closed(reason),
    }
}

impl fmt::Display for WsRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsRecvError::Closed(reason) => write!(f, "the connection has ended: {reason}"),
            WsRecvError::Timeout => f.write_str("no message within the timeout"),
            WsRecvError::Protocol(e) => write!(f, "the server broke the protocol: {e}"),
            WsRecvError::Send(e) => write!(f, "request not sent: {e}"),
        }
    }
}

impl std::error::Error for WsRecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WsRecvError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}
