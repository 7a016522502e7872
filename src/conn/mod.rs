//! The connection: everything that one accepted or dialled socket is made of, independent of
//! who made it (a TCP or Unix server, a client, a UDP server's peer table).
//!
//! | file | part |
//! |---|---|
//! | `handle.rs` | [`Connection`], the cloneable handle: send, try_send, close, shutdown |
//! | `reason.rs` | [`CloseReason`]: why a connection closed, as a cause and as the final reason |
//! | `handler.rs` | [`Handler`], the callbacks a connection runs on its reader thread |
//! | `options.rs` | [`ConnOptions`]: queue bounds, watermarks, timeouts, buffers, hooks |
//! | `core.rs` | `Core`, the state every part shares, and the close sequence |
//! | `life.rs` | the lifecycle: how far the close has gone ([`Phase`](life::Phase)), its cause and deadline |
//! | `reader.rs` | the reader thread: `codec.read` → `on_message`, then the close in order |
//! | `input.rs` | the reader's buffer: made on the first byte, given back when the peer is silent |
//! | `queue.rs` | the bounded send queue: admission, byte and message bounds, watermarks |
//! | `writer.rs` | the writer thread: drains the queue in batches, one vectored write each |
//! | `through.rs` | write-through: a reply written on the reader thread, no hand-off |
//! | `idle.rs` | idle limits and heartbeats, one re-armed timer per connection |
//! | `protocol.rs` | the one slot where a protocol built on the connection hooks in |
//! | `timers.rs` | a connection's own timers, cancelled before `on_close` |
//! | `threads.rs` | which thread is which: the reader, the writer, a timer's |
//! | `metrics.rs` | counters per connection and per server or client |
//! | `registry.rs` | the live connections by id: look up, visit, broadcast, join |
//!
//! Nothing here knows servers, clients, protocols or operations: those build on it.

pub(crate) mod core;
mod handle;
pub(crate) mod handler;
pub(crate) mod idle;
mod input;
pub(crate) mod life;
pub(crate) mod metrics;
pub(crate) mod options;
pub(crate) mod protocol;
pub(crate) mod queue;
pub(crate) mod reader;
mod reason;
pub(crate) mod registry;
pub(crate) mod threads;
pub(crate) mod through;
pub(crate) mod timers;
pub(crate) mod writer;

pub use handle::Connection;
pub use reason::CloseReason;
