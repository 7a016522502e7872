//! A guided tour: six short chapters, each adding one idea to a small line server, each with an
//! example that runs (they are doc tests: `cargo test --doc guide`) and the source files that
//! implement the idea.
//!
//! The server is the same throughout: clients send lines of text, the server answers. Every
//! example binds `127.0.0.1:0` (any free port), talks to the server over real sockets (except
//! in the last chapter, which needs none), and stops it before it ends.
//!
//! | chapter | the idea | where it lives |
//! |---|---|---|
//! | [1. A thread per connection, and a codec](ch01_threads) | a reader thread per connection decodes and calls your handler | [`src/server/acceptor.rs`], [`src/conn/reader.rs`], [`src/codec/lines.rs`] |
//! | [2. Backpressure and the bounded queue](ch02_backpressure) | a peer that does not read slows its producers down; nothing is dropped | [`src/conn/queue.rs`], [`src/conn/drain.rs`] |
//! | [3. The graceful close and its order](ch03_graceful_close) | drain, FIN, wait for the peer's EOF, and `on_close` once | [`src/conn/send.rs`], [`src/conn/core.rs`], [`src/conn/reason.rs`] |
//! | [4. Timers and idle limits](ch04_timers) | one timing wheel for every deadline; a clock a test can move | [`src/timer/wheel.rs`], [`src/conn/idle.rs`], [`src/conn/timers.rs`] |
//! | [5. Pulling instead of callbacks](ch05_pulling) | a client the caller reads, a server one loop pulls from | [`src/pull/client.rs`], [`src/pull/server.rs`] |
//! | [6. Testing without a socket](ch06_testing) | a connection in memory, and a network that misbehaves on demand | [`src/testing/embedded.rs`], [`src/testing/proxy.rs`] |
//!
//! The finished programs are in `examples/`: `echo.rs` is chapter 1 in a few dozen lines,
//! `echo_service.rs` the same server with what running it in production takes (a command
//! line, pid files, a hand-off without downtime, worker processes, metrics), and `chat.rs`
//! shares state between connections. The [design](crate::design) page draws the threads and
//! lists the invariants each chapter relies on, with the tests that hold them.
//!
//! [`src/server/acceptor.rs`]: ../../src/threadnet/server/acceptor.rs.html
//! [`src/conn/reader.rs`]: ../../src/threadnet/conn/reader.rs.html
//! [`src/codec/lines.rs`]: ../../src/threadnet/codec/lines.rs.html
//! [`src/conn/queue.rs`]: ../../src/threadnet/conn/queue.rs.html
//! [`src/conn/drain.rs`]: ../../src/threadnet/conn/drain.rs.html
//! [`src/conn/send.rs`]: ../../src/threadnet/conn/send.rs.html
//! [`src/conn/core.rs`]: ../../src/threadnet/conn/core.rs.html
//! [`src/conn/reason.rs`]: ../../src/threadnet/conn/reason.rs.html
//! [`src/timer/wheel.rs`]: ../../src/threadnet/timer/wheel.rs.html
//! [`src/conn/idle.rs`]: ../../src/threadnet/conn/idle.rs.html
//! [`src/conn/timers.rs`]: ../../src/threadnet/conn/timers.rs.html
//! [`src/pull/client.rs`]: ../../src/threadnet/pull/client.rs.html
//! [`src/pull/server.rs`]: ../../src/threadnet/pull/server.rs.html
//! [`src/testing/embedded.rs`]: ../../src/threadnet/testing/embedded.rs.html
//! [`src/testing/proxy.rs`]: ../../src/threadnet/testing/proxy.rs.html

pub mod ch01_threads {
    //! # 1. A thread per connection, and a codec
    //!
    //! A server has one accept thread. For each connection it accepts, it starts a **reader
    //! thread** of its own, which reads the socket through a **codec** and calls the
    //! connection's **handler** with each message:
    //!
    //! * The codec turns bytes into messages and messages into bytes. [`Lines`] is text
    //!   lines; the [`codec`](crate::codec) module has length-prefixed frames, RESP, TLV,
    //!   HTTP/1.1 and WebSocket, and a codec of your own is two methods.
    //! * The handler gets [`on_connect`](crate::Handler::on_connect), then
    //!   [`on_message`](crate::Handler::on_message) per message, then
    //!   [`on_close`](crate::Handler::on_close) exactly once, all on the connection's reader
    //!   thread. A factory makes one handler per connection, so the handler keeps that
    //!   connection's state in `&mut self`, with no lock. A handler that blocks holds up its
    //!   own connection and nothing else.
    //! * A reply sent from `on_message`, with nothing queued before it, is encoded straight
    //!   into the socket on the reader thread (*write-through*): an echo costs what a
    //!   hand-written blocking loop costs.
    //!
    //! ```
    //! use std::sync::mpsc;
    //! use std::thread::{self, ThreadId};
    //! use std::time::Duration;
    //! use threadnet::{codec::Lines, BlockingClient, CloseReason, Connection, Handler, TcpServer};
    //!
    //! /// Upper-cases each line and numbers it: one connection's state, no lock.
    //! struct Shout {
    //!     lines: u64,
    //!     threads: mpsc::Sender<ThreadId>,
    //! }
    //!
    //! impl Handler<Lines> for Shout {
    //!     fn on_connect(&mut self, conn: &Connection<Lines>) {
    //!         let _ = self.threads.send(thread::current().id()); // the reader thread
    //!         let _ = conn.send("hello".to_string());
    //!     }
    //!
    //!     fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
    //!         self.lines += 1;
    //!         let _ = conn.send(format!("{}: {}", self.lines, line.to_uppercase()));
    //!     }
    //!
    //!     fn on_close(&mut self, _: &Connection<Lines>, reason: &CloseReason) {
    //!         println!("closed after {} lines: {reason}", self.lines);
    //!     }
    //! }
    //!
    //! let (tx, threads) = mpsc::channel();
    //! let server = TcpServer::builder()
    //!     .addr("127.0.0.1:0")
    //!     .start(Lines::new(), move |_: &Connection<Lines>| Shout {
    //!         lines: 0,
    //!         threads: tx.clone(),
    //!     })?;
    //!
    //! let wait = Duration::from_secs(5);
    //! let alice = BlockingClient::connect(server.local_addr(), Lines::new())?;
    //! let bob = BlockingClient::connect(server.local_addr(), Lines::new())?;
    //! assert_eq!(alice.recv_timeout(wait).unwrap(), "hello");
    //! assert_eq!(bob.recv_timeout(wait).unwrap(), "hello");
    //! assert_eq!(alice.request("hi".to_string(), wait).unwrap(), "1: HI");
    //! assert_eq!(alice.request("again".to_string(), wait).unwrap(), "2: AGAIN");
    //! assert_eq!(bob.request("me too".to_string(), wait).unwrap(), "1: ME TOO"); // its own count
    //!
    //! // Two connections, two reader threads.
    //! let first = threads.recv_timeout(wait).unwrap();
    //! let second = threads.recv_timeout(wait).unwrap();
    //! assert_ne!(first, second);
    //!
    //! drop((alice, bob));
    //! server.stop(Duration::from_secs(1)); // joins every thread the server started
    //! # Ok::<(), std::io::Error>(())
    //! ```
    //!
    //! The cost of the model is a thread per connection: an idle one is a parked thread with a
    //! small stack, and a process serves about ten thousand connections (the
    //! [limits](crate::design#limits-of-the-model)).
    //!
    //! **The source**: the accept loop and the start of each reader thread are in
    //! [`src/server/acceptor.rs`]; the reader thread's loop (decode, call the handler, end in
    //! order) in [`src/conn/reader.rs`]; the handler trait in [`src/conn/handler.rs`];
    //! write-through in [`src/conn/through.rs`]; the `Codec` trait in [`src/codec/mod.rs`] and
    //! the line codec in [`src/codec/lines.rs`].
    //!
    //! Next: [what happens when a peer does not read](super::ch02_backpressure).
    //!
    //! [`Lines`]: crate::codec::Lines
    //! [`src/server/acceptor.rs`]: ../../../src/threadnet/server/acceptor.rs.html
    //! [`src/conn/reader.rs`]: ../../../src/threadnet/conn/reader.rs.html
    //! [`src/conn/handler.rs`]: ../../../src/threadnet/conn/handler.rs.html
    //! [`src/conn/through.rs`]: ../../../src/threadnet/conn/through.rs.html
    //! [`src/codec/mod.rs`]: ../../../src/threadnet/codec/mod.rs.html
    //! [`src/codec/lines.rs`]: ../../../src/threadnet/codec/lines.rs.html
}

pub mod ch02_backpressure {
    //! # 2. Backpressure and the bounded queue
    //!
    //! A send that cannot be written at once goes to the connection's **send queue**, and a
    //! **writer thread** (started by the first message that has to wait) writes it out. The
    //! queue is bounded in messages and in bytes ([`ConnOptions::send_queue_capacity`],
    //! [`ConnOptions::send_queue_bytes`]), so a peer that stops reading costs at most that much
    //! memory. When it is full:
    //!
    //! * [`Connection::send`] waits for room, up to its timeout, and
    //!   [`Connection::try_send`] does not wait at all. Either way a message that is refused
    //!   comes back in the error, so nothing is dropped behind the caller's back.
    //! * A watermark observer ([`ConnOptions::on_watermark`]) hears when the queue rises above
    //!   the high mark (pause) and when it falls back to the low one (go on), and
    //!   [`Connection::is_writable`] says which is the case now.
    //!
    //! Here the server's producer is the test's own thread, and the peer reads nothing until
    //! everything between them is full:
    //!
    //! ```
    //! use std::io::{BufRead, BufReader};
    //! use std::net::TcpStream;
    //! use std::sync::mpsc;
    //! use std::time::Duration;
    //! use threadnet::{codec::Lines, Connection, ConnOptions, SendError, TcpServer, TrySendError};
    //!
    //! let wait = Duration::from_secs(5);
    //! let (marks_tx, marks) = mpsc::channel();
    //! let options = ConnOptions::new()
    //!     .send_queue_bytes(64 * 1024) // what a peer that never reads may cost
    //!     .high_watermark(32 * 1024) // above this, producers should pause…
    //!     .on_watermark(move |event| {
    //!         let _ = marks_tx.send(event.full); // …and hear it
    //!     });
    //!
    //! let (conns_tx, conns) = mpsc::channel();
    //! let server = TcpServer::builder()
    //!     .addr("127.0.0.1:0")
    //!     .options(options)
    //!     .start(Lines::new(), move |conn: &Connection<Lines>| {
    //!         let _ = conns_tx.send(conn.clone()); // a handle for the producer
    //!         |_: &Connection<Lines>, _: String| {}
    //!     })?;
    //!
    //! let peer = TcpStream::connect(server.local_addr())?; // reads nothing, for now
    //! let conn = conns.recv_timeout(wait).unwrap();
    //!
    //! // Produce until the socket buffers, then the queue, are full: `send` waits for room,
    //! // up to its timeout, and then hands the message back.
    //! let line = "x".repeat(1000);
    //! let mut accepted = 0;
    //! let refused = loop {
    //!     match conn.send_timeout(line.clone(), Duration::from_millis(500)) {
    //!         Ok(()) => accepted += 1,
    //!         Err(SendError::Timeout(back)) => break back,
    //!         Err(e) => panic!("{e}"),
    //!     }
    //!     assert!(accepted < 1_000_000, "the buffers and the queue are bounded");
    //! };
    //! assert_eq!(refused, line); // nothing is dropped behind our back
    //! // `try_send` does not wait at all.
    //! assert!(matches!(conn.try_send(line.clone()), Err(TrySendError::Full(_))));
    //! assert_eq!(marks.try_iter().last(), Some(true)); // the observer heard "pause"
    //! assert!(!conn.is_writable());
    //!
    //! // The peer reads: the writer thread drains the queue, every accepted line arrives in
    //! // order, and the producers hear they may go on.
    //! let mut lines = BufReader::new(peer).lines();
    //! for _ in 0..accepted {
    //!     assert_eq!(lines.next().unwrap()?, line);
    //! }
    //! assert_eq!(marks.recv_timeout(wait), Ok(false)); // "go on"
    //! assert!(conn.is_writable());
    //!
    //! drop(lines);
    //! server.stop(Duration::from_secs(1));
    //! # Ok::<(), std::io::Error>(())
    //! ```
    //!
    //! A blocking `send` from a handler is backpressure too: the handler's reader thread waits,
    //! stops reading its own peer, and TCP flow control slows that peer down. The `chat`
    //! example builds a room on this: it moves at the pace of its slowest reader, and
    //! disconnects only a reader that takes nothing for a while.
    //!
    //! **The source**: admission into the queue, its bounds and the watermarks are in
    //! [`src/conn/queue.rs`]; the writer thread, which takes a message and then everything
    //! already queued and writes the batch with one vectored write, in [`src/conn/drain.rs`];
    //! the path of a send (written through or queued) in [`src/conn/send.rs`], called from
    //! [`src/conn/connection.rs`].
    //!
    //! Next: [how a connection ends without losing what it queued](super::ch03_graceful_close).
    //!
    //! [`ConnOptions::send_queue_capacity`]: crate::ConnOptions::send_queue_capacity
    //! [`ConnOptions::send_queue_bytes`]: crate::ConnOptions::send_queue_bytes
    //! [`ConnOptions::on_watermark`]: crate::ConnOptions::on_watermark
    //! [`Connection::send`]: crate::Connection::send
    //! [`Connection::try_send`]: crate::Connection::try_send
    //! [`Connection::is_writable`]: crate::Connection::is_writable
    //! [`src/conn/queue.rs`]: ../../../src/threadnet/conn/queue.rs.html
    //! [`src/conn/drain.rs`]: ../../../src/threadnet/conn/drain.rs.html
    //! [`src/conn/send.rs`]: ../../../src/threadnet/conn/send.rs.html
    //! [`src/conn/connection.rs`]: ../../../src/threadnet/conn/connection.rs.html
}

pub mod ch03_graceful_close {
    //! # 3. The graceful close and its order
    //!
    //! A connection can end in two ways. [`Connection::close`] aborts: the socket is shut
    //! down both ways at once and what is queued is dropped, counted in the
    //! [`CloseReason`]. [`Connection::shutdown`] is graceful, in this order:
    //!
    //! 1. new sends are refused;
    //! 2. the writer drains the queue;
    //! 3. `shutdown(Write)` sends our FIN;
    //! 4. the reader reads on (still calling `on_message`) until the peer's EOF;
    //! 5. the socket closes and `on_close` runs, once, with [`CloseReason::Shutdown`];
    //!    or, if the peer has not closed by the deadline, the close is forced
    //!    ([`CloseReason::ShutdownTimeout`]).
    //!
    //! So the peer receives every message, then EOF: closing with its input unread would have
    //! turned our FIN into a reset. When the peer closes first, what is queued for it is still
    //! written. [`ServerHandle::stop`] shuts every connection down this way and joins every
    //! thread.
    //!
    //! ```
    //! use std::io::{Read, Write};
    //! use std::net::TcpStream;
    //! use std::sync::mpsc;
    //! use std::time::Duration;
    //! use threadnet::{codec::Lines, CloseReason, Connection, Handler, TcpServer};
    //!
    //! struct Farewell {
    //!     events: mpsc::Sender<String>,
    //! }
    //!
    //! impl Handler<Lines> for Farewell {
    //!     fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
    //!         if line == "bye" {
    //!             for n in 1..=3 {
    //!                 let _ = conn.send(format!("goodbye {n}"));
    //!             }
    //!             conn.shutdown(Duration::from_secs(5)); // drain, FIN, wait for the peer's EOF
    //!             let refused = conn.send("too late".to_string()).is_err();
    //!             let _ = self.events.send(format!("refused: {refused}"));
    //!         }
    //!     }
    //!
    //!     fn on_close(&mut self, _: &Connection<Lines>, reason: &CloseReason) {
    //!         let graceful = matches!(reason, CloseReason::Shutdown);
    //!         let _ = self.events.send(format!("closed gracefully: {graceful}"));
    //!     }
    //! }
    //!
    //! let (tx, events) = mpsc::channel();
    //! let server = TcpServer::builder()
    //!     .addr("127.0.0.1:0")
    //!     .start(Lines::new(), move |_: &Connection<Lines>| Farewell { events: tx.clone() })?;
    //!
    //! let mut peer = TcpStream::connect(server.local_addr())?;
    //! peer.write_all(b"bye\n")?;
    //! let mut text = String::new();
    //! peer.read_to_string(&mut text)?; // returns at the server's FIN
    //! assert_eq!(text, "goodbye 1\ngoodbye 2\ngoodbye 3\n");
    //!
    //! let wait = Duration::from_secs(5);
    //! assert_eq!(events.recv_timeout(wait).unwrap(), "refused: true");
    //! drop(peer); // our EOF: the server's reader sees it, and the connection ends
    //! assert_eq!(events.recv_timeout(wait).unwrap(), "closed gracefully: true");
    //! server.stop(Duration::from_secs(1));
    //! # Ok::<(), std::io::Error>(())
    //! ```
    //!
    //! The crate docs have
    //! [the table of every way a connection ends](crate#the-lifecycle-of-a-connection), with
    //! its reason. A message that a send accepted is either written before the FIN or
    //! counted in the reason's `dropped` (invariants 2 to 4 on the [design](crate::design)
    //! page, each with the tests that hold it).
    //!
    //! **The source**: the graceful close (the goodbye, who sends the FIN, the deadline) is in
    //! [`src/conn/send.rs`]; the abortive close and the settled reason in
    //! [`src/conn/core.rs`]; the FIN after the drain in [`src/conn/drain.rs`]; the end the
    //! reader thread runs before `on_close` in [`src/conn/reader.rs`]; the reasons in
    //! [`src/conn/reason.rs`].
    //!
    //! Next: [deadlines, idle peers and timers](super::ch04_timers).
    //!
    //! [`Connection::close`]: crate::Connection::close
    //! [`Connection::shutdown`]: crate::Connection::shutdown
    //! [`CloseReason`]: crate::CloseReason
    //! [`CloseReason::Shutdown`]: crate::CloseReason::Shutdown
    //! [`CloseReason::ShutdownTimeout`]: crate::CloseReason::ShutdownTimeout
    //! [`ServerHandle::stop`]: crate::ServerHandle::stop
    //! [`src/conn/core.rs`]: ../../../src/threadnet/conn/core.rs.html
    //! [`src/conn/drain.rs`]: ../../../src/threadnet/conn/drain.rs.html
    //! [`src/conn/send.rs`]: ../../../src/threadnet/conn/send.rs.html
    //! [`src/conn/reader.rs`]: ../../../src/threadnet/conn/reader.rs.html
    //! [`src/conn/reason.rs`]: ../../../src/threadnet/conn/reason.rs.html
}

pub mod ch04_timers {
    //! # 4. Timers and idle limits
    //!
    //! Every deadline of the process (send and shutdown deadlines, idle limits, heartbeats,
    //! your own timers) is kept by one **timing wheel** thread ([`TimingWheel`]): hierarchical,
    //! `O(1)` to schedule and to cancel, and asleep until the next deadline. On a connection:
    //!
    //! * [`Connection::run_after`], [`run_at`](crate::Connection::run_at) and
    //!   [`run_every`](crate::Connection::run_every) run a callback with the connection. All
    //!   of a connection's timers are cancelled when it ends, and none runs after `on_close`.
    //! * [`ConnOptions::read_idle`] (and `write_idle`, `all_idle`) closes a connection that
    //!   has been silent that long, with [`CloseReason::IdleTimeout`]; a heartbeat
    //!   ([`ConnOptions::heartbeat`]) sends a message when the connection has written nothing
    //!   for an interval and closes a peer that has sent nothing for several. They cost one
    //!   clock read per socket read or write, never a timer per message.
    //!
    //! A test need not wait for any of it: [`TimingWheel::manual`] gives a wheel whose clock
    //! moves only when the test moves it, firing what comes due on the test's thread, and
    //! [`ConnOptions::timing_wheel`] puts a server on it. Thirty seconds of silence pass in a
    //! call:
    //!
    //! ```
    //! use std::io::{BufRead, BufReader, Write};
    //! use std::net::TcpStream;
    //! use std::sync::mpsc;
    //! use std::time::Duration;
    //! use threadnet::codec::Lines;
    //! use threadnet::idle::IdleKind;
    //! use threadnet::{CloseReason, Connection, ConnOptions, Handler, TcpServer, TimingWheel};
    //!
    //! struct Nudge {
    //!     closed: mpsc::Sender<bool>,
    //! }
    //!
    //! impl Handler<Lines> for Nudge {
    //!     fn on_connect(&mut self, conn: &Connection<Lines>) {
    //!         // A timer of this connection: cancelled if the connection ends first.
    //!         conn.run_after(Duration::from_secs(1), |conn| {
    //!             let _ = conn.send("still there?".to_string());
    //!         });
    //!     }
    //!
    //!     fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
    //!         let _ = conn.send(line);
    //!     }
    //!
    //!     fn on_close(&mut self, _: &Connection<Lines>, reason: &CloseReason) {
    //!         let idle = matches!(reason, CloseReason::IdleTimeout { kind: IdleKind::Read, .. });
    //!         let _ = self.closed.send(idle);
    //!     }
    //! }
    //!
    //! let (wheel, clock) = TimingWheel::manual(Duration::from_millis(1));
    //! let (tx, closed) = mpsc::channel();
    //! let server = TcpServer::builder()
    //!     .addr("127.0.0.1:0")
    //!     .options(
    //!         ConnOptions::new()
    //!             .read_idle(Duration::from_secs(30)) // close a peer silent for 30 s
    //!             .timing_wheel(wheel),
    //!     )
    //!     .start(Lines::new(), move |_: &Connection<Lines>| Nudge { closed: tx.clone() })?;
    //!
    //! let mut peer = TcpStream::connect(server.local_addr())?;
    //! let mut lines = BufReader::new(peer.try_clone()?).lines();
    //! peer.write_all(b"ping\n")?;
    //! assert_eq!(lines.next().unwrap()?, "ping"); // the connection is up, its timers set
    //!
    //! clock.advance(Duration::from_secs(1)); // the timer fires now, on this thread
    //! assert_eq!(lines.next().unwrap()?, "still there?");
    //!
    //! clock.advance(Duration::from_secs(30)); // 31 s without a line from the peer
    //! assert!(lines.next().is_none(), "closed by the idle limit");
    //! assert_eq!(closed.recv_timeout(Duration::from_secs(5)), Ok(true));
    //! server.stop(Duration::from_secs(1));
    //! # Ok::<(), std::io::Error>(())
    //! ```
    //!
    //! The [`timer`](crate::timer) module tells how the wheel works: levels, slots, cascades
    //! and the bitmaps that find the next deadline; a frame that trickles in byte by byte is
    //! cut off by [`ConnOptions::frame_timeout`], which the idle limits never see.
    //!
    //! **The source**: the wheel in [`src/timer/wheel.rs`] and the thread or manual clock that
    //! drives it in [`src/timer/driver.rs`]; idle limits, heartbeats and the frame timeout in
    //! [`src/conn/idle.rs`]; a connection's own timers, and the fence that keeps them from
    //! running after `on_close`, in [`src/conn/timers.rs`].
    //!
    //! Next: [pulling messages instead of being called](super::ch05_pulling).
    //!
    //! [`TimingWheel`]: crate::TimingWheel
    //! [`TimingWheel::manual`]: crate::TimingWheel::manual
    //! [`Connection::run_after`]: crate::Connection::run_after
    //! [`ConnOptions::read_idle`]: crate::ConnOptions::read_idle
    //! [`ConnOptions::heartbeat`]: crate::ConnOptions::heartbeat
    //! [`ConnOptions::timing_wheel`]: crate::ConnOptions::timing_wheel
    //! [`ConnOptions::frame_timeout`]: crate::ConnOptions::frame_timeout
    //! [`CloseReason::IdleTimeout`]: crate::CloseReason::IdleTimeout
    //! [`src/timer/wheel.rs`]: ../../../src/threadnet/timer/wheel.rs.html
    //! [`src/timer/driver.rs`]: ../../../src/threadnet/timer/driver.rs.html
    //! [`src/conn/idle.rs`]: ../../../src/threadnet/conn/idle.rs.html
    //! [`src/conn/timers.rs`]: ../../../src/threadnet/conn/timers.rs.html
}

pub mod ch05_pulling {
    //! # 5. Pulling instead of callbacks
    //!
    //! Callbacks suit a server whose connections can each be served on their own. A program
    //! that already has a loop (a game tick, an actor, a test that reads top to bottom), or a
    //! client that asks and waits, would rather pull:
    //!
    //! * [`BlockingClient`] has no thread of its own: the thread that calls
    //!   [`recv`](crate::BlockingClient::recv) or [`request`](crate::BlockingClient::request)
    //!   reads the socket and decodes, as a std client would, but framed. A receive whose
    //!   deadline passes mid-frame tears nothing: the next one decodes the whole frame. A
    //!   caller that stops receiving stops reading, and TCP slows the server down.
    //! * [`PullServer`] keeps a reader thread per connection, but instead of calling a handler
    //!   they put [`Event`]s (connected, a message, closed) in one bounded queue that one loop
    //!   takes from, each connection's in order. Replies go out through the event's
    //!   connection.
    //!
    //! Both ends on one thread:
    //!
    //! ```
    //! use std::time::Duration;
    //! use threadnet::codec::Lines;
    //! use threadnet::pull::{Event, RecvTimeoutError};
    //! use threadnet::{BlockingClient, PullServer, TcpServer};
    //!
    //! let wait = Duration::from_secs(5);
    //! let server = PullServer::start(TcpServer::builder().addr("127.0.0.1:0"), Lines::new())?;
    //! let client = BlockingClient::connect(server.local_addr(), Lines::new())?;
    //! client.send("hello".to_string()).unwrap();
    //!
    //! // The server's loop, one event at a time.
    //! match server.recv_timeout(wait).unwrap() {
    //!     Event::Connected(_) => {}
    //!     other => panic!("{other:?}"),
    //! }
    //! match server.recv_timeout(wait).unwrap() {
    //!     Event::Message(conn, line) => conn.send(line.to_uppercase()).unwrap(),
    //!     other => panic!("{other:?}"),
    //! }
    //!
    //! // The client's caller reads its reply itself; a deadline that passes leaves the
    //! // connection as it was.
    //! assert_eq!(client.recv_timeout(wait).unwrap(), "HELLO");
    //! let nothing = client.recv_timeout(Duration::from_millis(10));
    //! assert!(matches!(nothing, Err(RecvTimeoutError::Timeout)));
    //!
    //! drop(client); // a graceful close, finished on this thread
    //! match server.recv_timeout(wait).unwrap() {
    //!     Event::Closed(_, reason) => assert!(reason.is_graceful()),
    //!     other => panic!("{other:?}"),
    //! }
    //! server.stop(Duration::from_secs(1));
    //! # Ok::<(), std::io::Error>(())
    //! ```
    //!
    //! The crate docs [compare the two models](crate#callbacks-or-pulling) on both sides.
    //!
    //! **The source**: the blocking client in [`src/pull/client.rs`], and the input buffer
    //! that rewinds a frame whose deadline passed in [`src/pull/input.rs`]; the pull server in
    //! [`src/pull/server.rs`] and its bounded queue in [`src/pull/inbox.rs`].
    //!
    //! Next: [testing a protocol without a socket](super::ch06_testing).
    //!
    //! [`BlockingClient`]: crate::BlockingClient
    //! [`PullServer`]: crate::PullServer
    //! [`Event`]: crate::pull::Event
    //! [`src/pull/client.rs`]: ../../../src/threadnet/pull/client.rs.html
    //! [`src/pull/input.rs`]: ../../../src/threadnet/pull/input.rs.html
    //! [`src/pull/server.rs`]: ../../../src/threadnet/pull/server.rs.html
    //! [`src/pull/inbox.rs`]: ../../../src/threadnet/pull/inbox.rs.html
}

pub mod ch06_testing {
    //! # 6. Testing without a socket
    //!
    //! [`EmbeddedConnection`] runs one connection of your codec and handler with no socket, no
    //! server and no thread, as Netty's `EmbeddedChannel` does: feed it the peer's bytes
    //! (whole, split anywhere, or several messages at once), read back what the handler sent,
    //! move its clock, close the peer's side. Every call does its work on the test's thread
    //! before it returns, with the connection's real queue, write-through, timers and close
    //! sequence, so a test never sleeps. Chapter 1's handler, tested:
    //!
    //! ```
    //! use std::time::Duration;
    //! use threadnet::testing::EmbeddedConnection;
    //! use threadnet::codec::Lines;
    //! use threadnet::idle::IdleKind;
    //! use threadnet::{CloseReason, Connection, ConnOptions, Handler};
    //!
    //! struct Shout {
    //!     lines: u64,
    //! }
    //!
    //! impl Handler<Lines> for Shout {
    //!     fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
    //!         self.lines += 1;
    //!         let _ = conn.send(format!("{}: {}", self.lines, line.to_uppercase()));
    //!     }
    //! }
    //!
    //! let factory = |_: &Connection<Lines>| Shout { lines: 0 };
    //! let options = ConnOptions::new().read_idle(Duration::from_secs(30));
    //! let e = EmbeddedConnection::new(Lines::new(), factory, options);
    //! e.write_inbound(b"he");
    //! assert!(e.read_outbound().is_empty()); // half a line: no message yet
    //! e.write_inbound(b"llo\nworld\n");
    //! assert_eq!(e.read_outbound_messages()?, ["1: HELLO", "2: WORLD"]);
    //!
    //! e.advance(Duration::from_secs(31)); // at once
    //! assert!(matches!(
    //!     e.close_reason(),
    //!     Some(CloseReason::IdleTimeout { kind: IdleKind::Read, .. })
    //! ));
    //! # Ok::<(), std::io::Error>(())
    //! ```
    //!
    //! Between a real client and a real server, [`FaultProxy`] is the network that misbehaves:
    //! per direction it adds latency and jitter, caps the bandwidth, splits the stream into
    //! writes as small as one byte, stalls, resets or half-closes after a number of bytes, all
    //! from a seed so that a failing run can be replayed:
    //!
    //! ```
    //! use std::time::Duration;
    //! use threadnet::testing::{FaultProxy, Faults};
    //! use threadnet::{codec::Lines, BlockingClient, Connection, TcpServer};
    //!
    //! let server = TcpServer::builder()
    //!     .addr("127.0.0.1:0")
    //!     .start(Lines::new(), |_: &Connection<Lines>| {
    //!         |conn: &Connection<Lines>, line: String| drop(conn.send(line.to_uppercase()))
    //!     })?;
    //! let proxy = FaultProxy::builder()
    //!     .upstream(server.local_addr())
    //!     .client_to_server(Faults::new().split(1)) // one byte per write
    //!     .server_to_client(Faults::new().latency(Duration::from_millis(20)).split(2))
    //!     .seed(7)
    //!     .start()?;
    //!
    //! let client = BlockingClient::connect(proxy.local_addr(), Lines::new())?;
    //! let reply = client.request("hello".to_string(), Duration::from_secs(5)).unwrap();
    //! assert_eq!(reply, "HELLO"); // whole, however it was cut
    //!
    //! drop(client);
    //! proxy.stop();
    //! server.stop(Duration::from_secs(1));
    //! # Ok::<(), std::io::Error>(())
    //! ```
    //!
    //! The [`testing`](crate::testing) module has more of both, and
    //! `examples/fault_proxy.rs` puts the proxy on the command line, in front of any server.
    //!
    //! **The source**: the embedded connection in [`src/testing/embedded.rs`] and its
    //! in-memory socket in [`src/testing/memory.rs`]; the proxy in [`src/testing/proxy.rs`]
    //! and its faults in [`src/testing/faults.rs`].
    //!
    //! That is the tour. The [design](crate::design) page has the rest: the states of a
    //! connection, the layers of `src/`, and the invariants with the tests that hold them.
    //!
    //! [`EmbeddedConnection`]: crate::testing::EmbeddedConnection
    //! [`FaultProxy`]: crate::testing::FaultProxy
    //! [`src/testing/embedded.rs`]: ../../../src/threadnet/testing/embedded.rs.html
    //! [`src/testing/memory.rs`]: ../../../src/threadnet/testing/memory.rs.html
    //! [`src/testing/proxy.rs`]: ../../../src/threadnet/testing/proxy.rs.html
    //! [`src/testing/faults.rs`]: ../../../src/threadnet/testing/faults.rs.html
}

/// The README's example, compiled and run with the doc tests so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
