//! Pulling instead of being called: a [`BlockingClient`] that the calling thread sends on and
//! receives from, and a [`PullServer`] whose events one loop takes from a queue.
//!
//! Both sit on the callback model, not beside it: a connection's reader thread still owns the
//! framing and decodes each message, then puts it in a bounded inbox instead of calling a
//! handler. So every guarantee of a [`Connection`](crate::Connection) holds, a receive timeout
//! can never tear a frame, and a caller who stops receiving slows the peer down through TCP
//! flow control rather than losing messages.
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
