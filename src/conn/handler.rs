//! The per-connection callbacks.

use crate::codec::Codec;
use crate::conn::{CloseReason, Connection};

/// What a connection does with what it reads. A server or client makes one handler per
/// connection with its factory, so a handler can keep per-connection state in `&mut self`;
/// state shared between connections goes in an `Arc` that the factory captures.
///
/// Every callback runs on the connection's reader thread, in this order (invariant 1, DESIGN.md):
/// [`on_connect`](Handler::on_connect) once, then [`on_message`](Handler::on_message) for each
/// message, then [`on_close`](Handler::on_close) exactly once, before the socket is released.
/// A callback that blocks holds up only its own connection's reads; a callback that panics
/// closes only its own connection, with [`CloseReason::Panic`].
///
/// A closure `FnMut(&Connection<C>, C::In)` is a handler that only has `on_message`:
///
/// ```
/// use threadnet::{codec::Lines, Connection, Handler};
///
/// fn is_handler<H: Handler<Lines>>(_: H) {}
/// is_handler(|conn: &Connection<Lines>, line: String| {
///     let _ = conn.send(line.to_uppercase());
/// });
/// ```
pub trait Handler<C: Codec>: Send + 'static {
    /// The connection is open; nothing has been read yet. Sends made here go out before any
    /// reply to the peer's first message (a greeting, a handshake).
    fn on_connect(&mut self, conn: &Connection<C>) {
        let _ = conn;
    }

    /// One decoded message from the peer.
    fn on_message(&mut self, conn: &Connection<C>, msg: C::In);

    /// The connection has ended, for `reason`. Runs once, after the last `on_message`, after
    /// the writer has finished (so `reason.dropped()` is final), and before the socket closes.
    fn on_close(&mut self, conn: &Connection<C>, reason: &CloseReason) {
        let _ = (conn, reason);
    }
}

impl<C, F> Handler<C> for F
where
    C: Codec,
    F: FnMut(&Connection<C>, C::In) + Send + 'static,
{
    fn on_message(&mut self, conn: &Connection<C>, msg: C::In) {
        self(conn, msg)
    }
}
