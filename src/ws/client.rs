//! The WebSocket client: a [`TcpClient`] whose dial is followed by the opening handshake, on
//! the client side of [`WsCodec`].

use std::io;
use std::net::ToSocketAddrs;
use std::sync::{mpsc, Arc, Mutex};

use super::blocking::WsBlockingClient;
use super::client_handshake::{handshake, Offer};
use super::codec::WsCodec;
use super::handler::{answer, AutoReply};
use super::layer;
use super::url::WsUrl;
use crate::client::{ClientBuilder, ClientHandle, Prepare, TcpClient};
use crate::codec::Codec;
use crate::conn::handler::Handler;
use crate::conn::Connection;
use crate::pull::client::BlockingClient;
use crate::sync::lock;
use crate::sys::transport::Target;

/// A WebSocket client (RFC 6455): dials a `ws://` (or `ws+unix://`) URL, runs the opening
/// handshake, then serves the connection with the same [`Handler`] and [`Connection`] as every
/// other client and server, through [`WsCodec::client`].
///
/// * **The handshake** sends `GET` with `Upgrade: websocket`, `Connection: Upgrade`,
///   `Sec-WebSocket-Version: 13`, a fresh random `Sec-WebSocket-Key`, and the
///   [`subprotocol`](WsClientBuilder::subprotocol)s and [`origin`](WsClientBuilder::origin)
///   asked for. The answer must be `101` with `Upgrade: websocket`, `Connection: Upgrade`, the
///   `Sec-WebSocket-Accept` that matches the key, no extension, and at most a subprotocol that
///   was offered; anything else fails the connect with an `InvalidData` error that names what
///   was wrong. A server that does not answer within the connect timeout fails it with
///   `TimedOut`, one that closes first with `UnexpectedEof`. Frames the server sent right
///   after its `101` are kept for the codec.
/// * **Frames** are masked with a fresh random key each ([`mask_key`](super::mask_key)); a
///   masked frame from the server is a protocol error (closed with 1002).
/// * **Pings, close frames and protocol errors** are answered as
///   [`AutoReply`] answers them, before the handler sees them: a ping gets its pong, a
///   server's close frame is echoed and the connection shut down. To close from this side,
///   [`ws::close`](super::close) sends the close frame and waits for the server's.
/// * **Connect timeout, retry and reconnect** are [`ClientBuilder`]'s, given with
///   [`client`](WsClientBuilder::client): a failed handshake counts as a failed attempt, and
///   every reconnect does the handshake again (with a new key), with a new handler.
/// * **Keep-alive pings**: a [`ws::heartbeat`](super::heartbeat) set in the client's
///   [`ConnOptions`](crate::ConnOptions) sends a ping masked with a fresh key whenever the
///   client has written nothing for its interval, and closes a server that has sent nothing,
///   not even the pong, for its misses ([`CloseReason::IdleTimeout`](crate::CloseReason)).
///   The pongs come to the handler.
///
/// ```
/// use std::time::Duration;
/// use threadnet::http::{Request, Response};
/// use threadnet::ws::{self, Message, WsClient, WsCodec, WsError, WsUpgrade};
/// use threadnet::{Connection, TcpServer};
///
/// // An echo server: a page at every path, and a WebSocket on the same port.
/// let server = TcpServer::builder().addr("127.0.0.1:0").start(
///     WsUpgrade::new(),
///     ws::serve(
///         |_: &Request| Response::html("<p>hello</p>"),
///         |_: &Connection<WsUpgrade>| {
///             |conn: &Connection<WsUpgrade>, msg: Message| {
///                 if matches!(msg, Message::Text(_) | Message::Binary(_)) {
///                     let _ = conn.send(msg.into());
///                 }
///             }
///         },
///     ),
/// )?;
/// let url = format!("ws://{}/echo", server.local_addr());
///
/// // Callbacks, like a TcpClient.
/// let (tx, rx) = std::sync::mpsc::channel();
/// let client = WsClient::builder().connect(&url, move |_: &Connection<WsCodec>| {
///     let tx = tx.clone();
///     move |_: &Connection<WsCodec>, msg: Result<Message, WsError>| {
///         let _ = tx.send(msg);
///     }
/// })?;
/// let conn = client.connection().unwrap();
/// conn.send(Message::Text("hi".into())).unwrap();
/// assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(Message::Text("hi".into())));
/// ws::close(&conn, 1000, "bye"); // the close handshake, then the TCP close
/// client.wait();
///
/// // Or blocking: send and receive on this thread.
/// let blocking = WsClient::builder().connect_blocking(&url)?;
/// let reply = blocking.request(Message::Binary(vec![1, 2, 3]), Duration::from_secs(5));
/// assert_eq!(reply.unwrap(), Message::Binary(vec![1, 2, 3]));
/// server.stop(Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct WsClient;

impl WsClient {
    /// A builder with every option at its default.
    pub fn builder() -> WsClientBuilder {
        WsClientBuilder {
            client: TcpClient::builder(),
            protocols: Vec::new(),
            origin: None,
            codec: WsCodec::client(),
        }
    }
}

/// Options of a [`WsClient`]; [`connect`](Self::connect) it with a URL and a handler factory,
/// or [`connect_blocking`](Self::connect_blocking) it.
#[derive(Clone, Debug)]
pub struct WsClientBuilder {
    client: ClientBuilder,
    protocols: Vec<String>,
    origin: Option<String>,
    codec: WsCodec,
}

impl WsClientBuilder {
    /// The options of the client underneath: connect timeout (which bounds the handshake
    /// too), [`retry`](ClientBuilder::retry), [`reconnect`](ClientBuilder::reconnect),
    /// [`ConnOptions`](crate::ConnOptions).
    ///
    /// Defaults to [`TcpClient::builder`]'s.
    pub fn client(mut self, client: ClientBuilder) -> Self {
        self.client = client;
        self
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`), in order of preference; call once per
    /// subprotocol. The server may pick one of them, or none.
    ///
    /// `name` must be a token (RFC 6455, section 4.1): letters, digits and
    /// ``!#$%&'*+-.^_`|~``, offered once. Anything else (a space, a comma, CR or LF, a
    /// control character, non-ASCII) fails [`connect`](Self::connect) and
    /// [`connect_blocking`](Self::connect_blocking) with `InvalidInput` naming it, before
    /// anything is dialled.
    ///
    /// Defaults to none offered.
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.protocols.push(name.into());
        self
    }

    /// Sends `Origin: origin` (e.g. `http://example.com`), as a browser does.
    ///
    /// `origin` must be a serialized origin (RFC 6454, section 6.2): `null`, or
    /// `scheme://host[:port]` with no path, the host as in a URL. Anything else (a path, a
    /// space, CR or LF, a control character) fails [`connect`](Self::connect) and
    /// [`connect_blocking`](Self::connect_blocking) with `InvalidInput` naming it, before
    /// anything is dialled.
    ///
    /// Defaults to no `Origin` header.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// The largest frame payload read or written, in bytes; see [`WsCodec::max_frame`].
    ///
    /// Defaults to [`DEFAULT_MAX_FRAME`](super::DEFAULT_MAX_FRAME).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.codec = self.codec.max_frame(bytes);
        self
    }

    /// The largest message read, in bytes; see [`WsCodec::max_message`].
    ///
    /// Defaults to [`DEFAULT_MAX_MESSAGE`](super::DEFAULT_MAX_MESSAGE).
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.codec = self.codec.max_message(bytes);
        self
    }

    /// Dials `url`, runs the handshake (both retried if [`ClientBuilder::retry`] is set),
    /// then serves the connection on a background thread, each handler from `factory`
    /// wrapped in [`AutoReply`]. Returns once the handshake has succeeded and the reader
    /// thread has started (so a [`stop`](ClientHandle::stop) or a
    /// [`shutdown`](Connection::shutdown) at once still sends its close frame); the
    /// handler's `on_connect` may still be running.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a URL [`WsUrl::parse`] refuses, or a
    /// [`subprotocol`](Self::subprotocol) or [`origin`](Self::origin) that is not valid
    /// (named in the error; nothing is dialled); the host does not resolve; the last
    /// attempt's error once the attempts are used up: the dial's (refused, timed out) or the
    /// handshake's (see [`WsClient`]); a thread cannot be spawned.
    pub fn connect<H, F>(self, url: &str, factory: F) -> io::Result<ClientHandle<WsCodec>>
    where
        H: Handler<WsCodec>,
        F: Fn(&Connection<WsCodec>) -> H + Send + Sync + 'static,
    {
        let (target, prepare, chosen) = dial_plan(url, self.protocols, self.origin)?;
        let (started_tx, started) = mpsc::sync_channel(1);
        let client = self.client.connect_to(
            target,
            self.codec,
            move |conn: &Connection<WsCodec>| {
                // A shutdown or stop sends a close frame from now on: before `connect`
                // returns, not once `on_connect` gets to run.
                open(conn, &chosen);
                let _ = started_tx.try_send(());
                AutoReply::new(factory(conn))
            },
            Some(prepare),
        )?;
        // The factory runs for every connection made, first on its reader thread: a short
        // wait. It fails only if that thread ended first, and then there is nothing to arm.
        let _ = started.recv();
        Ok(client)
    }

    /// As [`connect`](Self::connect), for a [`WsBlockingClient`]: `send` and `recv`
    /// [`Message`](super::Message)s on the calling thread, one `Result` per message. Every
    /// message, control frames included, comes to `recv`, and is answered as `AutoReply` would
    /// as `recv` reads it: a ping with a pong, a close frame with ours, a protocol error (given
    /// to `recv` as [`WsRecvError::Protocol`](super::WsRecvError::Protocol)) with a close
    /// frame of its code. A blocking client has no reader thread, so a caller that does not
    /// call `recv` answers nothing, as with any blocking socket; `shutdown` and dropping the
    /// client send a close frame (1000, 1001) first.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); `InvalidInput` if [`reconnect`](ClientBuilder::reconnect)
    /// is set (a blocking client is one connection).
    pub fn connect_blocking(self, url: &str) -> io::Result<WsBlockingClient> {
        let (target, prepare, chosen) = dial_plan(url, self.protocols, self.origin)?;
        let client = BlockingClient::start(
            self.client,
            target,
            self.codec,
            Some(prepare),
            Some(Box::new(answer)),
        )?;
        open(client.connection(), &chosen);
        Ok(WsBlockingClient::new(client))
    }
}

/// The subprotocol the server picked in the connection's opening handshake
/// (`Sec-WebSocket-Protocol`), or `None` when it picked none or none was offered: on a
/// [`WsClient`] connection (from [`ClientHandle::connection`], [`WsBlockingClient::connection`]
/// or a handler's `&Connection`), one of the [`subprotocol`](WsClientBuilder::subprotocol)s
/// offered; on a [`ws::serve`](super::serve) connection, the one
/// [`WsUpgrade::subprotocol`](super::WsUpgrade::subprotocol) picked, once the handshake is done.
/// Each reconnection of a client has its own.
///
/// ```no_run
/// use threadnet::ws::{self, WsClient};
///
/// let client = WsClient::builder()
///     .subprotocol("v2.chat")
///     .subprotocol("chat")
///     .connect_blocking("ws://127.0.0.1:9001/chat")?;
/// println!("speaking {:?}", ws::subprotocol(client.connection()));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn subprotocol<C: Codec>(conn: &Connection<C>) -> Option<&str> {
    conn.core.layer().get().and_then(|l| l.subprotocol())
}

/// Where a dial's handshake leaves the subprotocol the server chose, for the connection's
/// handler factory to take.
type Chosen = Arc<Mutex<Option<String>>>;

/// Makes `conn` the client end of a WebSocket, speaking it at once, with the subprotocol the
/// last handshake chose (left in `chosen` by the dial's prepare, which runs before this
/// connection's handler is made).
fn open(conn: &Connection<WsCodec>, chosen: &Mutex<Option<String>>) {
    layer::install(conn, lock(chosen).take(), true);
    layer::speaks(conn);
}

/// Where `url` is dialled, its opening handshake, offering `protocols` and `origin`, and where
/// the handshake leaves the subprotocol the server chose.
fn dial_plan(
    url: &str,
    protocols: Vec<String>,
    origin: Option<String>,
) -> io::Result<(Target, Prepare, Chosen)> {
    let url = WsUrl::parse(url)?;
    // Checked before the host is resolved: nothing is dialled for an offer that is refused.
    let offer = Offer::new(url, protocols, origin)?;
    let url = &offer.url;
    let target = match url.unix_path() {
        Some(path) => Target::Unix(path.to_path_buf()),
        None => Target::Tcp(url.host().to_socket_addrs()?.collect()),
    };
    let chosen = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&chosen);
    let prepare: Prepare = Arc::new(move |sock, timeout| {
        let (sock, protocol) = handshake(sock, &offer, timeout)?;
        *lock(&slot) = protocol;
        Ok(sock)
    });
    Ok((target, prepare, chosen))
}
