//! threadnet: a socket toolkit on the standard library alone. Blocking sockets, OS threads and
//! bounded channels; no async runtime, no dependencies.
//!
//! It is for synchronous programs that need a real server or client, for tests that must run
//! anywhere without a runtime, and for reading: every part of a network framework (framing,
//! backpressure, graceful shutdown, timers) is here in plain std code. New to it? The
//! [`guide`] is a tour in six short chapters, each adding one idea to a small server.
//!
//! # Hello, echo
//!
//! A server that upper-cases lines, and a client that calls it:
//!
//! ```
//! use std::time::Duration;
//! use threadnet::{codec::Lines, BlockingClient, Connection, TcpServer};
//!
//! let server = TcpServer::builder()
//!     .addr("127.0.0.1:0") // port 0: any free port
//!     .start(Lines::new(), |_new: &Connection<Lines>| {
//!         // One handler per connection; this one is a closure for on_message.
//!         |conn: &Connection<Lines>, line: String| {
//!             let _ = conn.send(line.to_uppercase());
//!         }
//!     })?;
//!
//! let client = BlockingClient::connect(server.local_addr(), Lines::new())?;
//! let reply = client.request("hello".to_string(), Duration::from_secs(5)).unwrap();
//! assert_eq!(reply, "HELLO");
//!
//! drop(client); // a graceful close: the server sees the peer close
//! server.stop(Duration::from_secs(1)); // graceful: drains, FINs, joins every thread
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # The model
//!
//! The [`design`] page draws the threads and states the invariants; in short:
//!
//! * Each connection has a **reader thread**. It reads frames through the [`Codec`] and calls
//!   your [`Handler`]: `on_connect`, then `on_message` per frame, then `on_close` once.
//!   A handler that blocks holds up its own connection and nothing else.
//! * Each connection has a bounded **send queue**, a std `sync_channel` of encoded messages,
//!   bounded in messages (1024) and in bytes (1 MiB). Its **writer thread** takes one message,
//!   then everything else already queued, and writes the batch with one vectored write.
//! * A send from the connection's own reader thread, with nothing queued, skips the queue:
//!   the codec writes straight to the socket (*write-through*). Replying from `on_message` then
//!   costs what a hand-written blocking loop costs. See [`ConnOptions::write_through`].
//! * The channel and the writer thread are created on the first send that needs them (the
//!   writer ends after a quiet spell, [`ConnOptions::writer_quiet`]), and the read buffer on
//!   the first byte read (given back after a second of silence between messages), so an idle
//!   connection costs one parked thread.
//! * One **timing wheel** thread per process keeps every deadline ([`TimingWheel`]): shutdown
//!   deadlines, idle timeouts, heartbeats and your own timers. It is hierarchical (6 × 64 slots,
//!   `O(1)` schedule and cancel) and sleeps until the next deadline.
//!
//! Two threads per busy connection cap a process at about ten thousand connections (past its
//! thread ceiling, new ones are refused and counted): the
//! [limits of the model](design#limits-of-the-model) say what to do past that.
//!
//! # Callbacks or pulling
//!
//! The server above is called: its handler runs on each connection's reader thread. The client
//! is pulled from: [`BlockingClient::recv`] and [`request`](BlockingClient::request) read and
//! decode on the caller's thread, like a socket's `read` (a blocking client has no reader
//! thread), but framed, and with a timeout that never tears a frame: one that expires
//! mid-frame keeps the bytes read so far, and the next receive decodes the whole frame. Both
//! models exist on both sides:
//!
//! | | called back ([`Handler`]) | pulled from |
//! |---|---|---|
//! | client | [`TcpClient`]: a handler per connection, reconnects | [`BlockingClient`]: `send`, `recv`, `request` |
//! | server | [`TcpServer`], [`UnixServer`], [`udp`] | [`PullServer`]: one loop takes every connection's [`Event`](pull::Event)s |
//!
//! The pulling side's events and the errors of its receives are in [`pull`]; the WebSocket
//! client pulls too ([`ws::WsBlockingClient`]), one `Result` per message.
//!
//! Callbacks suit servers where each connection can be served on its own: there is no hand-off
//! between threads, and replies are written straight from the reader thread. Pulling suits a
//! program that already has a loop (a game tick, an actor, a test that reads top to bottom),
//! and a client that asks and waits: a [`BlockingClient`]'s request costs what a hand-written
//! std client's `write_all` and `read_exact` cost, plus the codec. Either way one thread at a
//! time owns the framing, the queues are bounded, and a caller who stops receiving slows the
//! peer down through TCP flow control instead of losing messages. A [`PullServer`] keeps its
//! reader threads (one loop serves many connections) and hands their messages over a bounded
//! queue; a blocking client's end of the connection (the server's close, an error, an idle
//! limit) is seen by its caller at the next receive, after every message sent before it.
//!
//! # Timers, idle timeouts and heartbeats
//!
//! * [`Connection::run_after`], [`run_at`](Connection::run_at) and
//!   [`run_every`](Connection::run_every) run a callback with the connection; every timer of a
//!   connection is cancelled when it ends, and none runs after `on_close`.
//! * [`ConnOptions::read_idle`], [`write_idle`](ConnOptions::write_idle) and
//!   [`all_idle`](ConnOptions::all_idle) close a silent connection with
//!   [`CloseReason::IdleTimeout`] (Netty's `IdleStateHandler`); [`ConnOptions::on_idle`] may
//!   keep it instead. Activity costs one clock read per socket read or write, no timer work.
//! * [`ConnOptions::heartbeat`] sends a message of your codec when the connection has written
//!   nothing for an interval, and closes it when the peer has been silent for `misses`
//!   intervals.
//! * Tests drive all of it without sleeping: [`TimingWheel::manual`] gives a wheel whose clock
//!   moves only when told, and [`ConnOptions::timing_wheel`] puts a server or client on it.
//!
//! # Backpressure
//!
//! Blocking code expects synchronous backpressure, so that is what threadnet gives:
//! [`Connection::send`] blocks while the queue is full, up to the send timeout.
//! [`Connection::try_send`] never blocks; when the queue is full it returns the message in
//! [`TrySendError::Full`]. Every send error hands the message back, so nothing is dropped
//! behind the caller's back. A watermark observer ([`ConnOptions::on_watermark`]) and
//! [`Connection::is_writable`] tell producers when to pause and when to go on.
//! goes calls these OnBufferFull and OnBufferDrain; Netty calls it writability.
//!
//! # The lifecycle of a connection
//!
//! | how it ends | what happens | [`CloseReason`] |
//! |---|---|---|
//! | the peer closes (EOF) | what is queued is still written, then the socket closes | `PeerClosed` |
//! | [`Connection::shutdown`]`(t)` | sends are refused; the queue drains; `shutdown(Write)` sends our FIN; the reader reads on to the peer's EOF; force-closed at `t` | `Shutdown` / `ShutdownTimeout { dropped }` |
//! | [`Connection::close`] | `shutdown(Both)` now; the queue is dropped and counted | `Closed { dropped }` |
//! | [`ServerHandle::stop`]`(t)` | every connection shuts down as above, every thread is joined | `ServerStopped { dropped }` |
//! | read, decode or write fails | closed at once | `Error { error, dropped }` |
//! | a callback panics | only that connection closes | `Panic { message, dropped }` |
//! | an idle limit or the heartbeat's passes | closed at once | `IdleTimeout { kind, dropped }` |
//! | a WebSocket closing handshake: the peer's close frame, or ours for a protocol error | the close frame is answered and flushed, then the server closes first | `Protocol { code, reason, by_peer }` |
//!
//! `on_close` runs exactly once. It runs after the last `on_message` and after the writer
//! has finished, so `dropped` is final. It runs before the socket's fd is released, so a new
//! connection can never reuse the fd and receive the old connection's writes.
//!
//! A message accepted by a send is either written before the FIN or counted in `dropped`.
//!
//! # Transports
//!
//! The same codec, handler and [`Connection`] run over TCP or a Unix-domain stream socket;
//! only the line that starts the server or client changes:
//!
//! ```no_run
//! # use threadnet::{codec::Lines, Connection, TcpClient, TcpServer, UnixServer};
//! # let codec = Lines::new();
//! # let factory = |_: &Connection<Lines>| |_: &Connection<Lines>, _: String| {};
//! TcpServer::builder().addr("127.0.0.1:7001").start(codec.clone(), factory)?; // TCP
//! UnixServer::builder("/run/app.sock").start(codec.clone(), factory)?; // removed at stop
//! TcpClient::builder().connect_unix("/run/app.sock", codec, factory)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! * **UDP** ([`udp`]): each peer address is a [`Connection`] with the same callbacks and
//!   timers; one reader thread decodes each datagram as whole messages, and each message goes
//!   out as one datagram, so a line protocol moves from TCP to UDP without touching its
//!   handler.
//! * **TLS** is not in std and threadnet adds no dependencies, so terminate it in front
//!   (stunnel, nginx's or HAProxy's `stream` proxy, a sidecar) and forward plain TCP or a Unix
//!   socket to threadnet on loopback; the [design](design#tls-is-terminated-in-front) says why
//!   it does not belong inside.
//! * **Behind a load balancer**, [`ServerBuilder::proxy_protocol`] reads the PROXY protocol
//!   header (v1 and v2) that HAProxy, nginx and cloud balancers send, so that
//!   [`Connection::peer_addr`] is the client's address and [`Connection::proxied_by`] the
//!   balancer's. The [`http`] module docs have the recipe: HAProxy terminating TLS in front of
//!   an HTTP server.
//! * **Limits**: [`ServerBuilder::max_connections`] (1024 by default) caps the threads peers
//!   can hold; a server out of file descriptors backs off its accept loop and carries on.
//!
//! # What else is here
//!
//! | for | see |
//! |---|---|
//! | learning | [`guide`] (a tour in six chapters), [`design`] (threads, layers, states, invariants) |
//! | protocols | [`codec`] (length-delimited in Netty's layouts, lines, raw, [`Tlv`](codec::Tlv) with a [`Router`], [`Resp`](codec::Resp)), [`http`] (an HTTP/1.1 server codec and `http::serve`), [`ws`] (WebSocket, server and client) |
//! | transports | [`TcpServer`] / [`TcpClient`], [`UnixServer`] / [`ClientBuilder::connect_unix`], [`udp`] (each peer a [`Connection`]) |
//! | timers | [`timer`] (the hierarchical wheel, a manual clock for tests), [`Connection::run_after`], [`idle`] (idle limits, heartbeats, the frame timeout) |
//! | operations | [`signal`] (graceful stop, reload, hand-off), [`activation`] (systemd sockets, restarts, pid files), [`metrics`] (counters, Prometheus), [`control`] (start, `start -d`, stop, reload, status, workers), [`events`] (a connection opened or ended, a queue's watermarks) |
//! | testing | [`testing`] ([`EmbeddedConnection`](testing::EmbeddedConnection): a connection in memory; [`FaultProxy`](testing::FaultProxy): a network that misbehaves) |
//!
//! `src/` is cut in layers, each using only the ones below it; the [design](design#layers)
//! page has the table.
//!
//! # Where the ideas come from
//!
//! knet (Go; this design mirrors it in plain std), Tao and goes (Go), muduo (C++) and Netty
//! (Java). crossbeam-channel shaped the send errors; tokio-util shaped the codecs.
#![deny(missing_docs)]
#![deny(unsafe_code)]

// Layer 0, vocabulary and the OS: imports nothing above it.
mod backoff;
mod error;
mod sync;
mod sys;
// Layer 1, engines that know nothing of connections.
pub mod codec;
pub mod timer;
// Layer 2, the connection, and the types of its options' hooks.
mod conn;
pub mod events;
pub mod idle;
// Layer 3, the endpoints that make connections.
mod client;
pub mod pull;
mod server;
pub mod udp;
// Layer 4, protocols on top of connections.
pub mod http;
mod router;
pub mod ws;
// Layer 5, operations.
mod ops;
pub mod testing;

pub use ops::{activation, control, metrics, signal};

/// The design document (`DESIGN.md` in the repository): threads, layers, the states of a
/// connection, and the invariants with the tests that hold them.
#[doc = include_str!("../DESIGN.md")]
pub mod design {}
pub mod guide;

// The root: the servers and clients, the connection and what it is made of, the errors of a
// send, the timing wheel. Everything else lives in the module it belongs to.
pub use backoff::Backoff;
pub use client::{ClientBuilder, ClientHandle, TcpClient};
pub use codec::Codec;
pub use conn::handler::Handler;
pub use conn::options::ConnOptions;
pub use conn::registry::{BroadcastReport, Registry};
pub use conn::{CloseReason, Connection};
pub use error::{SendError, TrySendError};
pub use pull::client::BlockingClient;
pub use pull::server::PullServer;
pub use router::Router;
pub use server::{ServerBuilder, ServerHandle, TcpServer, UnixServer};
pub use sys::transport::Addr;
pub use timer::TimingWheel;
