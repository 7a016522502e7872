//! The one place a protocol built on a connection (WebSocket) hooks into it: a [`Layer`] the
//! protocol installs once per connection, in a [`LayerSlot`] on the `Core`.
//!
//! The connection asks the layer only off the per-message path: at the first graceful
//! shutdown (its last message before the FIN), per heartbeat (the bytes of one beat), and
//! when the protocol asks about itself (the subprotocol chosen, which end this is).
//!
//! The goodbye has a life of its own, kept by the slot, not the layer: a layer can be
//! installed before the connection speaks the protocol (a WebSocket upgrade knows its
//! subprotocol before its `101` is queued) and its goodbye armed later; it is said at most
//! once, and never after the protocol disarmed it (it sent its own close message).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use crate::conn::CloseReason;

/// What a protocol layered on a connection tells the connection. Every method has a default:
/// a layer implements only what its protocol needs.
pub(crate) trait Layer: Send + Sync {
    /// The application protocol the connection's handshake chose (a WebSocket subprotocol).
    fn subprotocol(&self) -> Option<&str> {
        None
    }

    /// The last message before a graceful close (a WebSocket close frame), encoded, given the
    /// cause of the shutdown; `None` for nothing. Asked at most once per connection, and only
    /// while armed ([`LayerSlot::arm_goodbye`]).
    fn goodbye(&self, cause: &CloseReason) -> Option<Vec<u8>> {
        let _ = cause;
        None
    }

    /// The bytes of one heartbeat, made from the [`Heartbeat`](crate::idle::Heartbeat)'s encoded
    /// message when it is sent (a WebSocket client masks each beat with a fresh key); `None`
    /// sends the message as it is.
    fn beat(&self, encoded: &[u8]) -> Option<Vec<u8>> {
        let _ = encoded;
        None
    }

    /// Whether this end dialled the connection (the protocol's client side).
    fn is_client(&self) -> bool {
        false
    }
}

/// The goodbye has not been armed.
const UNARMED: u8 = 0;
/// The first graceful shutdown says the goodbye.
const ARMED: u8 = 1;
/// Said, or disarmed: never again.
const SPENT: u8 = 2;

/// A connection's protocol layer, set once, and the state of its goodbye.
pub(crate) struct LayerSlot {
    layer: OnceLock<Box<dyn Layer>>,
    /// [`UNARMED`], [`ARMED`] or [`SPENT`]; moves only forward.
    goodbye: AtomicU8,
}

impl LayerSlot {
    /// No layer, goodbye unarmed.
    pub(crate) fn new() -> LayerSlot {
        LayerSlot {
            layer: OnceLock::new(),
            goodbye: AtomicU8::new(UNARMED),
        }
    }

    /// Installs `layer`; only the first call counts (a later one is dropped).
    pub(crate) fn set(&self, layer: Box<dyn Layer>) {
        let _ = self.layer.set(layer);
    }

    /// The layer, once installed.
    pub(crate) fn get(&self) -> Option<&dyn Layer> {
        self.layer.get().map(|l| &**l)
    }

    /// The connection speaks the protocol now: the first graceful shutdown from here on says
    /// the layer's goodbye. Does nothing if it was armed before, said, or disarmed.
    pub(crate) fn arm_goodbye(&self) {
        let _ = self
            .goodbye
            .compare_exchange(UNARMED, ARMED, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The protocol sent its closing message itself: no goodbye, now or later.
    pub(crate) fn disarm_goodbye(&self) {
        self.goodbye.store(SPENT, Ordering::SeqCst);
    }

    /// Called by each graceful shutdown: the goodbye for `cause` the first time while armed
    /// (the layer may still give nothing for that cause), then never again. A shutdown
    /// before the goodbye is armed says nothing and leaves it unarmed.
    pub(crate) fn take_goodbye(&self, cause: &CloseReason) -> Option<Vec<u8>> {
        self.goodbye
            .compare_exchange(ARMED, SPENT, Ordering::SeqCst, Ordering::SeqCst)
            .ok()?;
        self.get()?.goodbye(cause)
    }

    /// One heartbeat's bytes from its encoded message, if the layer makes them.
    pub(crate) fn beat(&self, encoded: &[u8]) -> Option<Vec<u8>> {
        self.get()?.beat(encoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Says goodbye to every cause.
    struct Bye;

    impl Layer for Bye {
        fn goodbye(&self, _: &CloseReason) -> Option<Vec<u8>> {
            Some(b"bye".to_vec())
        }
    }

    fn slot() -> LayerSlot {
        let slot = LayerSlot::new();
        slot.set(Box::new(Bye));
        slot
    }

    #[test]
    fn the_goodbye_is_said_once_and_only_while_armed() {
        let s = slot();
        // Not armed yet (a plain HTTP connection on an upgrade port): nothing, and still
        // armable afterwards.
        assert_eq!(s.take_goodbye(&CloseReason::Shutdown), None);
        s.arm_goodbye();
        assert_eq!(
            s.take_goodbye(&CloseReason::Shutdown),
            Some(b"bye".to_vec())
        );
        assert_eq!(s.take_goodbye(&CloseReason::Shutdown), None);
        // Said: arming again does not bring it back.
        s.arm_goodbye();
        assert_eq!(s.take_goodbye(&CloseReason::Shutdown), None);
    }

    #[test]
    fn a_disarmed_goodbye_stays_disarmed() {
        let s = slot();
        s.arm_goodbye();
        s.disarm_goodbye();
        s.arm_goodbye(); // a second arm (AutoReply's on_connect after a WsClient's factory)
        assert_eq!(s.take_goodbye(&CloseReason::Shutdown), None);
    }

    #[test]
    fn without_a_layer_nothing_is_asked() {
        let s = LayerSlot::new();
        s.arm_goodbye();
        assert_eq!(s.take_goodbye(&CloseReason::Shutdown), None);
        assert_eq!(s.beat(b"ping"), None);
        assert!(s.get().is_none());
        // The first layer installed stays.
        s.set(Box::new(Bye));
        struct Other;
        impl Layer for Other {
            fn is_client(&self) -> bool {
                true
            }
        }
        s.set(Box::new(Other));
        assert!(!s.get().unwrap().is_client());
        assert_eq!(s.get().unwrap().subprotocol(), None);
    }
}
