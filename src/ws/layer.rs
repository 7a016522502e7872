//! What a WebSocket connection tells the connection underneath (its [`Layer`]): the
//! subprotocol its handshake chose, the close frame a plain shutdown or a stop starts with,
//! a client's masked heartbeats, and which end it is.

use std::sync::Arc;

use super::client_rng::mask_key;
use super::codec::{CloseFrame, Message};
use super::frame;
use crate::codec::Codec;
use crate::conn::protocol::Layer;
use crate::conn::{CloseReason, Connection};

/// The [`Layer`] of one WebSocket connection, whatever its codec ([`WsCodec`](super::WsCodec)
/// or [`WsUpgrade`](super::WsUpgrade)).
struct WsLayer<C> {
    /// Encodes the close frame, as the connection's own sends are encoded.
    codec: Arc<C>,
    subprotocol: Option<String>,
    client: bool,
}

impl<C> Layer for WsLayer<C>
where
    C: Codec,
    C::Out: From<Message>,
{
    fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// 1000 for [`Connection::shutdown`], 1001 (going away) for a server or client stop,
    /// nothing after the peer's EOF or for an abortive close (RFC 6455, section 7.1.2).
    fn goodbye(&self, cause: &CloseReason) -> Option<Vec<u8>> {
        let (code, reason) = match cause {
            CloseReason::Shutdown => (1000, ""),
            CloseReason::ServerStopped { .. } => (1001, "going away"),
            _ => return None,
        };
        let frame = CloseFrame {
            code,
            reason: reason.to_string(),
        };
        let mut bytes = Vec::new();
        self.codec
            .write(&Message::Close(Some(frame)).into(), &mut bytes)
            .ok()?;
        Some(bytes)
    }

    /// A client's beat is masked with a fresh key (RFC 6455, section 5.3), as every frame a
    /// client sends must be; a server's goes out as encoded.
    fn beat(&self, encoded: &[u8]) -> Option<Vec<u8>> {
        if !self.client {
            return None;
        }
        frame::masked(encoded, mask_key())
    }

    fn is_client(&self) -> bool {
        self.client
    }
}

/// Makes `conn` a WebSocket connection for the layers underneath: `subprotocol` is what its
/// handshake chose, `client` whether it dialled. Only the first call on a connection counts.
/// Its graceful closes start with a close frame only once [`speaks`] says so.
pub(crate) fn install<C>(conn: &Connection<C>, subprotocol: Option<String>, client: bool)
where
    C: Codec,
    C::Out: From<Message>,
{
    conn.core.layer().set(Box::new(WsLayer {
        codec: Arc::clone(&conn.codec),
        subprotocol,
        client,
    }));
}

/// `conn` speaks WebSocket from now on: a graceful close that did not come from
/// [`ws::close`](super::close) starts with a close frame (see [`WsLayer::goodbye`]). Does
/// nothing once a close frame was sent or answered.
pub(crate) fn speaks<C: Codec>(conn: &Connection<C>) {
    conn.core.layer().arm_goodbye();
}
