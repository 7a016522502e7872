//! The connection: everything that one accepted or dialled socket is made of, independent of
//! who made it (a TCP or Unix server, a client, a UDP server's peer table).
//!
//! | file | part |
//! |---|---|
//! | `connection.rs` | [`Connection`], the cloneable handle: send, try_send, close, shutdown |
//! | `reason.rs` | [`CloseReason`]: why a connection closed, as a cause and as the final reason |
//! | `handler.rs` | [`Handler`], the callbacks a connection runs on its reader thread |
//! | `options.rs` | [`ConnOptions`]: queue bounds, watermarks, timeouts, buffers, hooks |
//! | `core.rs` | `Core`: the connection's identity and its parts, and the abortive end that spans them (close now, the forced close, finish) |
//! | `send.rs` | the send path: `push` into the queue, write-through, the writer's wake-up, the graceful close (goodbye, FIN, deadline) |
//! | `drain.rs` | draining the queue: the writer thread's loop, `write_parked` for a connection without threads, the FIN |
//! | `life.rs` | `Life`: how far the close has gone ([`Phase`](life::Phase)), its cause and deadline |
//! | `lifecycle.rs` | the lifecycle every driver runs: open, each message, the end in order |
//! | `reader.rs` | the reader thread: reads the socket and drives the lifecycle |
//! | `input.rs` | the reader's buffer: made on the first byte, given back when the peer is silent |
//! | `spare.rs` | the process's stash of read buffers given back, for the next connection to take |
//! | `queue.rs` | `SendQueue`: admission, byte and message bounds, watermarks, what was dropped |
//! | `writer.rs` | `Writer`: the writer thread's handle (ended after a quiet spell) or the parked queue; one batch's vectored write |
//! | `through.rs` | `Out`: write-through (a reply written on the reader thread, no hand-off), the socket's write lock |
//! | `wire.rs` | `Wire`: what a socket write reports to (counters, write clock, phase, wheel), borrowed from the `Core` |
//! | `idle.rs` | `Activity` (when the socket was last read and written), the idle options and events |
//! | `idle_check.rs` | the idle timer: limits checked, heartbeats sent, one re-armed timer per connection |
//! | `protocol.rs` | the one slot where a protocol built on the connection hooks in |
//! | `timers.rs` | a connection's own timers, cancelled before `on_close` |
//! | `threads.rs` | which thread is which: the reader, the writer, a timer's |
//! | `metrics.rs` | `Traffic`, the counters per connection, and those per server or client |
//! | `registry.rs` | the live connections by id: look up, visit, broadcast, join |
//!
//! Each part owns its fields and imports no `Core`; `impl Core` is in `core.rs` alone, and
//! `Core`'s fields are `pub(super)`: nothing outside `conn/` reads one. The imports run one way:
//! `send.rs` → `drain.rs` → `core.rs` → the parts (`tests/layering.rs` checks that `src/` has
//! no import circle). See DESIGN.md, "The parts of a connection".
//!
//! Nothing here knows servers, clients, protocols or operations: those build on it.

mod connection;
pub(crate) mod core;
pub(crate) mod drain;
pub(crate) mod handler;
pub(crate) mod idle;
mod idle_check;
mod input;
pub(crate) mod life;
pub(crate) mod lifecycle;
pub(crate) mod metrics;
pub(crate) mod options;
pub(crate) mod protocol;
pub(crate) mod queue;
pub(crate) mod reader;
mod reason;
pub(crate) mod registry;
pub(crate) mod send;
mod spare;
pub(crate) mod threads;
pub(crate) mod through;
pub(crate) mod timers;
pub(crate) mod wire;
pub(crate) mod writer;

pub use connection::Connection;
pub use reason::CloseReason;
