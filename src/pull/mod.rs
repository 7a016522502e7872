//! Pulling instead of being called: a [`BlockingClient`] that the calling thread sends on and
//! receives from, and a [`PullServer`] whose events one loop takes from a queue.
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

mod client;
mod error;
mod inbox;
mod input;
mod server;

pub use client::BlockingClient;
pub use error::{RecvError, RecvTimeoutError, RequestError, TryRecvError};
pub use server::{Event, PullServer};
