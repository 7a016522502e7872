//! Testing your protocol: a connection in memory on the test's thread, and a network that
//! misbehaves on demand.
//!
//! # A handler test, in memory
//!
//! [`EmbeddedConnection`] runs one connection of your codec and handler without a socket, a
//! server or a thread, as Netty's `EmbeddedChannel` does: feed it the peer's bytes (whole,
//! split anywhere, or several messages at once), read back what the handler sent, close the
//! peer's side and see `on_close`'s [`CloseReason`](crate::CloseReason). Every call does its
//! work before it returns, on the test's thread, so nothing needs a sleep or a timeout:
//!
//! ```
//! use threadnet::testing::EmbeddedConnection;
//! use threadnet::{codec::Lines, CloseReason, Connection, ConnOptions};
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
//! assert!(matches!(e.close_reason(), Some(CloseReason::PeerClosed)));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # A timeout test, on a manual clock
//!
//! The connection's timers (idle limits, heartbeats, the shutdown deadline,
//! [`Connection::run_after`]) run on a manual clock that only
//! [`EmbeddedConnection::advance`] moves: an hour passes in a call.
//!
//! ```
//! use std::time::Duration;
//! use threadnet::testing::EmbeddedConnection;
//! use threadnet::{codec::Lines, idle::IdleKind, CloseReason, Connection, ConnOptions};
//!
//! let options = ConnOptions::new().read_idle(Duration::from_secs(30));
//! let silent = |_: &Connection<Lines>| |_: &Connection<Lines>, _: String| {};
//! let e = EmbeddedConnection::new(Lines::new(), silent, options);
//! e.advance(Duration::from_secs(29));
//! e.write_inbound(b"still here\n"); // the limit counts from the last read
//! e.advance(Duration::from_secs(29));
//! assert!(!e.is_closed());
//! e.advance(Duration::from_secs(2)); // at once, not in 2 s
//! assert!(matches!(
//!     e.close_reason(),
//!     Some(CloseReason::IdleTimeout { kind: IdleKind::Read, .. })
//! ));
//! ```
//!
//! # A 1-byte network, on real sockets
//!
//! [`FaultProxy`] is a TCP proxy on loopback that sits between a client and a server and, per
//! direction, adds latency and jitter, caps the bandwidth, splits the byte stream into small
//! writes (down to one byte each), stops reading (a stall), resets the connection or
//! half-closes it after a number of bytes. Every random choice comes from a seed, so a
//! failing run can be replayed. The models are laminar's `LinkConditioner` and toxiproxy.
//! `examples/fault_proxy.rs` puts the same proxy on the command line, in front of any server:
//!
//! ```sh
//! cargo run --example fault_proxy -- --upstream 127.0.0.1:7001 --down-split 1 --latency-ms 50
//! ```
//!
//! ```
//! use std::time::Duration;
//! use threadnet::testing::{Direction, FaultProxy, Faults};
//! use threadnet::{codec::Lines, BlockingClient, Connection, TcpServer};
//!
//! let server = TcpServer::builder()
//!     .addr("127.0.0.1:0")
//!     .start(Lines::new(), |_: &Connection<Lines>| {
//!         |conn: &Connection<Lines>, line: String| drop(conn.send(line.to_uppercase()))
//!     })?;
//! // Every byte, each way, is a write of its own.
//! let proxy = FaultProxy::builder()
//!     .upstream(server.local_addr())
//!     .client_to_server(Faults::new().split(1))
//!     .server_to_client(Faults::new().split(1))
//!     .record_writes(true)
//!     .start()?;
//!
//! let client = BlockingClient::connect(proxy.local_addr(), Lines::new())?;
//! let reply = client.request("hello".to_string(), Duration::from_secs(5)).unwrap();
//! assert_eq!(reply, "HELLO"); // whole, though it crossed one byte per write
//! let writes = proxy.write_sizes(0, Direction::ServerToClient).unwrap();
//! assert_eq!(writes, [1; 6]); // "HELLO\n"
//!
//! drop(client);
//! proxy.stop();
//! server.stop(Duration::from_secs(1));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`Connection::run_after`]: crate::Connection::run_after

mod embedded;
mod faults;
pub(crate) mod memory;
mod pair;
mod proxy;
mod pump;

pub use embedded::EmbeddedConnection;
pub use faults::{Direction, Faults};
pub use proxy::{FaultProxy, FaultProxyBuilder};
