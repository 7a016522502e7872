//! Pulling instead of being called: a [`BlockingClient`](crate::BlockingClient) that the
//! calling thread sends on and receives from, and a [`PullServer`](crate::PullServer) whose
//! [`Event`]s one loop takes from a queue. This module holds what they hand back: the events,
//! and the errors of their receives, in the shape of `std::sync::mpsc`'s (the two types
//! themselves are at the crate's root).
//!
//! A blocking client has no reader thread: its caller reads the socket and decodes
//! (`input.rs` keeps the bytes of a frame in progress so that a receive whose deadline passes
//! mid-frame can be rewound), and ends the connection in the reader thread's order when it
//! sees the end. A pull server's connections keep their reader threads, which put each message
//! in one bounded inbox (`inbox.rs`) instead of calling a handler. Either way every guarantee
//! of a [`Connection`](crate::Connection) holds, a receive timeout never tears a frame, and a
//! caller who stops receiving slows the peer down through TCP flow control rather than losing
//! messages.
//!
//! Pick callbacks ([`Handler`](crate::Handler)) when each connection can be served on its own
//! thread; pick pulling when the program already has a loop of its own, or for tests and
//! scripts that read top to bottom.

//!
//! ```
//! use std::time::Duration;
//! use threadnet::codec::Lines;
//! use threadnet::pull::{Event, RecvTimeoutError};
//! use threadnet::{BlockingClient, PullServer, TcpServer};
//!
//! let server = PullServer::start(TcpServer::builder(), Lines::new())?;
//! let client = BlockingClient::connect(server.local_addr(), Lines::new())?;
//! client.send("hello".to_string()).unwrap();
//! // One loop serves every connection: it takes their events in turn.
//! loop {
//!     match server.recv_timeout(Duration::from_secs(5)) {
//!         Ok(Event::Message(conn, line)) => {
//!             let _ = conn.send(line.to_uppercase());
//!             break;
//!         }
//!         Ok(_) => {} // a connection opened or closed
//!         Err(RecvTimeoutError::Timeout) => panic!("nothing came"),
//!         Err(RecvTimeoutError::Closed(reason)) => panic!("the server ended: {reason}"),
//!     }
//! }
//! assert_eq!(client.recv_timeout(Duration::from_secs(5)).unwrap(), "HELLO");
//! # Ok::<(), std::io::Error>(())
//! ```

pub(crate) mod client;
mod error;
mod inbox;
mod input;
pub(crate) mod server;

pub use error::{RecvError, RecvTimeoutError, RequestError, TryRecvError};
pub use server::Event;
