//! `Router`: Tao's message registry, a handler per [`Tlv`] message type.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::io;
use std::sync::Arc;

use crate::codec::{Tlv, TlvFrame};
use crate::conn::handler::Handler;
use crate::conn::Connection;

/// A handler for one message type: the connection and the payload.
type Route = Arc<dyn Fn(&Connection<Tlv>, Vec<u8>) + Send + Sync>;
/// The handler for types with no route of their own: the connection and the whole frame.
type Fallback = Arc<dyn Fn(&Connection<Tlv>, TlvFrame) + Send + Sync>;

/// The routes, shared by every clone of a router.
#[derive(Clone, Default)]
struct Table {
    routes: HashMap<u32, Route>,
    fallback: Option<Fallback>,
}

/// Tao's message registry: a [`Handler`] for the [`Tlv`] codec that hands each message's
/// payload to the function registered for its type.
///
/// Register one function per type with [`register`](Router::register), and optionally a
/// [`fallback`](Router::fallback) for the types nobody registered. The functions are shared by
/// every connection, so they are `Fn + Send + Sync`; per-connection state belongs in a
/// handler of your own that calls [`dispatch`](Router::dispatch). Cloning a router is cheap
/// (one `Arc`), and a clone is the per-connection handler: the factory of
/// [`ServerBuilder::start`](crate::ServerBuilder::start) is `move |_| router.clone()`.
///
/// What a message of type `kind` goes to, in this order:
///
/// | case | what happens |
/// |---|---|
/// | a function is registered for `kind` | it gets the connection and the payload |
/// | `kind` is 0 ([`TlvFrame::HEARTBEAT`]) | nothing: unregistered heartbeats are ignored, and never reach the fallback |
/// | a fallback is set | it gets the connection and the whole [`TlvFrame`] |
/// | otherwise | the connection closes with [`CloseReason::Error`](crate::CloseReason::Error), an [`io::ErrorKind::InvalidData`] error "unknown TLV message type 7" |
///
/// # Example
///
/// A server with two message types: 1 echoes, 2 answers with the payload's length.
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use std::time::Duration;
/// use threadnet::{codec::{Tlv, TlvFrame}, Router, TcpServer};
///
/// let mut router = Router::new();
/// router.register(1, |conn, payload| {
///     let _ = conn.send(TlvFrame::new(1, payload));
/// })?;
/// router.register(2, |conn, payload| {
///     let len = (payload.len() as u32).to_le_bytes().to_vec();
///     let _ = conn.send(TlvFrame::new(2, len));
/// })?;
/// let server = TcpServer::builder().start(Tlv::new(), move |_| router.clone())?;
///
/// // A plain std client: type 2 (u32 LE), length 3 (u32 LE), "abc".
/// let mut peer = TcpStream::connect(server.local_addr())?;
/// peer.write_all(&[2, 0, 0, 0, 3, 0, 0, 0, b'a', b'b', b'c'])?;
/// let mut reply = [0u8; 12];
/// peer.read_exact(&mut reply)?;
/// assert_eq!(reply, [2, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0]); // type 2: the length, 3
///
/// server.stop(Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Router {
    table: Arc<Table>,
}

impl Router {
    /// A router with no routes and no fallback: every message but a heartbeat closes its
    /// connection until something is registered.
    ///
    /// Same as [`Router::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for messages of type `kind`: it gets the connection and each such
    /// message's payload, on that connection's reader thread. Returns the router, so that
    /// calls chain: `router.register(1, a)?.register(2, b)?;`.
    ///
    /// Registering type 0 ([`TlvFrame::HEARTBEAT`]) gives heartbeats a handler; they are
    /// ignored otherwise.
    ///
    /// Clones share their routes copy-on-write: a clone made before this call (such as the
    /// handler of a connection already open) does not get the new route.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if a handler is already registered for `kind` ("TLV
    /// message type 1 is already registered"); the first one stays.
    pub fn register<F>(&mut self, kind: u32, handler: F) -> io::Result<&mut Router>
    where
        F: Fn(&Connection<Tlv>, Vec<u8>) + Send + Sync + 'static,
    {
        match Arc::make_mut(&mut self.table).routes.entry(kind) {
            Entry::Occupied(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLV message type {kind} is already registered"),
            )),
            Entry::Vacant(slot) => {
                slot.insert(Arc::new(handler));
                Ok(self)
            }
        }
    }

    /// Sets the handler for message types that have no handler of their own (heartbeats
    /// excepted, see [`Router`]): it gets the connection and the whole message. Replaces any
    /// fallback set before. Returns the router, so that calls chain.
    ///
    /// Without a fallback, an unknown type closes its connection with an error.
    pub fn fallback<F>(&mut self, handler: F) -> &mut Router
    where
        F: Fn(&Connection<Tlv>, TlvFrame) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.table).fallback = Some(Arc::new(handler));
        self
    }

    /// True if a handler is registered for `kind`.
    pub fn is_registered(&self, kind: u32) -> bool {
        self.table.routes.contains_key(&kind)
    }

    /// Hands `frame` to the handler of its type, as the table of [`Router`] says: for a
    /// handler of your own that keeps per-connection state or watches `on_close`, and routes
    /// its messages with a router it holds.
    pub fn dispatch(&self, conn: &Connection<Tlv>, frame: TlvFrame) {
        if let Some(route) = self.table.routes.get(&frame.kind) {
            route(conn, frame.payload);
        } else if frame.is_heartbeat() {
            // Unregistered heartbeats only say the peer is alive.
        } else if let Some(fallback) = &self.table.fallback {
            fallback(conn, frame);
        } else {
            conn.close_with_error(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown TLV message type {}", frame.kind),
            ));
        }
    }
}

impl Handler<Tlv> for Router {
    /// [`dispatch`](Router::dispatch)es the message.
    fn on_message(&mut self, conn: &Connection<Tlv>, frame: TlvFrame) {
        self.dispatch(conn, frame);
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<u32> = self.table.routes.keys().copied().collect();
        kinds.sort_unstable();
        f.debug_struct("Router")
            .field("kinds", &kinds)
            .field("fallback", &self.table.fallback.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_registration_of_a_type_is_an_error() {
        let mut router = Router::new();
        router
            .register(1, |_, _| {})
            .unwrap()
            .register(2, |_, _| {})
            .unwrap();
        let err = router.register(1, |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), "TLV message type 1 is already registered");
        assert!(router.is_registered(1) && router.is_registered(2));
        assert!(!router.is_registered(0));
    }

    #[test]
    fn clones_share_routes_until_one_changes() {
        let mut router = Router::new();
        router.register(1, |_, _| {}).unwrap();
        let clone = router.clone();
        assert!(
            Arc::ptr_eq(&router.table, &clone.table),
            "a clone is one Arc"
        );
        router.register(2, |_, _| {}).unwrap();
        assert!(router.is_registered(2));
        assert!(!clone.is_registered(2), "copy on write");
        assert!(clone.is_registered(1));
    }

    #[test]
    fn debug_lists_the_types() {
        let mut router = Router::new();
        router.register(9, |_, _| {}).unwrap();
        router.register(3, |_, _| {}).unwrap();
        router.fallback(|_, _| {});
        assert_eq!(
            format!("{router:?}"),
            "Router { kinds: [3, 9], fallback: true }"
        );
    }
}
