//! Tools for testing a protocol: against a misbehaving network, and in memory.
//!
//! [`FaultProxy`] is a TCP proxy on loopback that sits between a client and a server and, per
//! direction, adds latency and jitter, caps the bandwidth, splits the byte stream into small
//! writes, stops reading (a stall), resets the connection or half-closes it after a number of
//! bytes. Every random choice comes from a seed, so a failing run can be replayed. The models
//! are laminar's `LinkConditioner` and toxiproxy. `examples/fault_proxy.rs` puts the same proxy
//! on the command line.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use threadnet::testing::{FaultProxy, Faults};
//! use threadnet::{BlockingClient, Connection, Lines, TcpServer};
//!
//! let server = TcpServer::builder()
//!     .addr("127.0.0.1:0")
//!     .start(Lines::new(), |_: &Connection<Lines>| {
//!         |conn: &Connection<Lines>, line: String| {
//!             let _ = conn.send(line);
//!         }
//!     })?;
//! // 20 ms each way, and the server's replies arrive one byte per write.
//! let proxy = FaultProxy::builder()
//!     .upstream(server.local_addr())
//!     .client_to_server(Faults::new().latency(Duration::from_millis(20)))
//!     .server_to_client(Faults::new().latency(Duration::from_millis(20)).split(1))
//!     .seed(7)
//!     .start()?;
//!
//! let client = BlockingClient::connect(proxy.local_addr(), Lines::new())?;
//! let t0 = Instant::now();
//! let reply = client.request("hi".to_string(), Duration::from_secs(5)).unwrap();
//! assert_eq!(reply, "hi");
//! assert!(t0.elapsed() >= Duration::from_millis(40));
//!
//! drop(client);
//! proxy.stop();
//! server.stop(Duration::from_secs(1));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Embedded connections
//!
//! [`EmbeddedConnection`] runs one connection on an in-memory socket, driven from the test's
//! thread, as Netty's `EmbeddedChannel`: feed it inbound bytes (whole, split anywhere, or
//! several frames at once), read back what the handler sent, close the peer's side, and see
//! `on_close` and its [`CloseReason`](crate::CloseReason). The reader loop, write-through, the
//! send queue and the close sequence are the real ones; each call returns once the connection
//! has consumed its input and written what it accepted, so no test sleeps. A handler test:
//!
//! ```
//! use threadnet::testing::EmbeddedConnection;
//! use threadnet::{ConnOptions, Connection, Lines};
//!
//! let upper = |_: &Connection<Lines>| {
//!     |conn: &Connection<Lines>, line: String| drop(conn.send(line.to_uppercase()))
//! };
//! let e = EmbeddedConnection::new(Lines::new(), upper, ConnOptions::new());
//! e.write_inbound(b"hel");
//! assert!(e.read_outbound().is_empty()); // half a line: no message yet
//! e.write_inbound(b"lo\nworld\n");
//! assert_eq!(e.read_outbound_messages()?, ["HELLO", "WORLD"]);
//! e.close_inbound();
//! assert!(matches!(e.close_reason(), Some(threadnet::CloseReason::PeerClosed)));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Its timers (idle limits, heartbeats, shutdown deadlines, [`Connection::run_after`]) run on
//! a manual clock that only [`EmbeddedConnection::advance`] moves:
//!
//! ```
//! use std::time::Duration;
//! use threadnet::testing::EmbeddedConnection;
//! use threadnet::{CloseReason, ConnOptions, Connection, IdleKind, Lines};
//!
//! let options = ConnOptions::new().read_idle(Duration::from_secs(30));
//! let e = EmbeddedConnection::new(Lines::new(), |_: &_| |_: &_, _: String| {}, options);
//! e.advance(Duration::from_secs(29));
//! assert!(!e.is_closed());
//! e.advance(Duration::from_secs(2)); // at once, not in 2 s
//! assert!(matches!(
//!     e.close_reason(),
//!     Some(CloseReason::IdleTimeout { kind: IdleKind::Read, .. })
//! ));
//! # let _ = |c: &Connection<Lines>| c.id();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`Connection::run_after`]: crate::Connection::run_after

mod embedded;
mod faults;
mod memory;
mod pair;
mod proxy;
mod pump;

pub use embedded::EmbeddedConnection;
pub use faults::{Direction, Faults};
pub use proxy::{FaultProxy, FaultProxyBuilder};
