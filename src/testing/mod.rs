//! Tools for testing a protocol against a misbehaving network.
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
//! An embedded connection (a handler driven in memory, without sockets, as Netty's
//! `EmbeddedChannel`) is planned.

mod embedded;
mod faults;
mod memory;
mod pair;
mod proxy;
mod pump;

pub use embedded::EmbeddedConnection;
pub use faults::{Direction, Faults};
pub use proxy::{FaultProxy, FaultProxyBuilder};
