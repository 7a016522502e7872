//! WebSocket (RFC 6455), server and client: the frame codec ([`WsCodec`], either side), the
//! handler wrapper that answers pings, close frames and protocol errors ([`AutoReply`]), the
//! server's handshake on the HTTP/1.1 codec ([`WsUpgrade`] and [`serve`]: pages and sockets on
//! one port), the client ([`WsClient`]: `ws://` URLs, the handshake checked, masked frames,
//! retry and reconnect, callbacks or blocking), and the handshake's accept key, with SHA-1 and
//! base64 written in the crate (no dependencies).
//!
//! Frames are a [`Codec`](crate::Codec), so every connection feature (the bounded queue,
//! timers, idle limits, heartbeats, metrics, graceful shutdown) works on WebSocket unchanged.
//!
//! * **The server**: [`serve`] answers pages and WebSocket upgrades on one port, over
//!   [`WsUpgrade`] (the HTTP/1.1 codec until the `101`, frames after it), with hooks for the
//!   origin ([`OriginCheck`]) and the subprotocol ([`SubprotocolPick`]). Text messages are
//!   checked as UTF-8 per fragment; binary ones are taken as they are. The example on
//!   [`serve`] is a page and an echo socket on one port.
//! * **The client**: `WsClient::builder().subprotocol("chat").connect("ws://127.0.0.1:8080/chat",
//!   factory)` (or `ws+unix:///run/app.sock:/chat`) checks the server's `101` and its
//!   `Sec-WebSocket-Accept`, masks each frame with a fresh key, answers pings, and takes
//!   [`TcpClient`](crate::TcpClient)'s connect timeout, retry and reconnect (the handshake
//!   redone each time); [`connect_blocking`](WsClientBuilder::connect_blocking) gives a
//!   [`WsBlockingClient`], whose receives return one `Result` per message: a [`Message`], or
//!   a [`WsRecvError`] that says whether the connection ended, the deadline passed or the
//!   server broke the protocol. The example on [`WsClient`] does both.
//! * **Pings and the closing handshake**: [`AutoReply`] (which [`serve`] and the client put
//!   around your handler) answers pings and close frames; `shutdown` and `stop` send a close
//!   frame (1000, 1001) first, and [`close`] sends one with your code and waits for the
//!   peer's. The code reaches `on_close` as
//!   [`CloseReason::Protocol`](crate::CloseReason::Protocol). [`heartbeat`] pings a peer that has been quiet (masked with a fresh key on a client),
//!   and [`subprotocol`]`(&conn)` tells which subprotocol the handshake chose, on either end.
//! * **Limits**: a frame of [`DEFAULT_MAX_FRAME`] (1 MiB) and a message of
//!   [`DEFAULT_MAX_MESSAGE`] (4 MiB), past which the connection closes with 1009; 1002 for a
//!   protocol error, 1007 for text that is not UTF-8.
//!
//! The handshake's accept key, with SHA-1 and base64 written in the crate:
//!
//! ```
//! use threadnet::ws;
//!
//! // RFC 6455, section 1.3: the server's answer to the client's key.
//! assert_eq!(ws::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! ```

mod base64;
mod blocking;
mod client;
mod client_handshake;
mod client_rng;
mod client_socket;
#[cfg(test)]
mod client_tests;
mod codec;
mod error;
mod frame;
mod handler;
mod handshake;
mod layer;
mod serve;
mod sha1;
#[cfg(test)]
mod tests;
mod upgrade;
mod url;

pub use blocking::{WsBlockingClient, WsRecvError};
pub use client::{subprotocol, WsClient, WsClientBuilder};
pub use client_rng::mask_key;
pub use codec::{
    is_valid_close_code, CloseFrame, Message, WsCodec, DEFAULT_MAX_FRAME, DEFAULT_MAX_MESSAGE,
};
pub use error::WsError;
pub use frame::apply_mask;
pub use handler::{close, heartbeat, AutoReply, CLOSE_TIMEOUT};
pub use handshake::{OriginCheck, SubprotocolPick};
pub use serve::{serve, WsHandler, WsService};
pub use upgrade::{Incoming, Outgoing, WsUpgrade};
pub use url::WsUrl;

/// The GUID RFC 6455 (section 1.3) appends to the client's key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`:
/// base64(SHA-1(key + [`GUID`])) (RFC 6455, section 4.2.2).
///
/// `key` is used as given (the caller trims the header value); whether it is a valid key is
/// [`is_valid_key`]'s question.
pub fn accept_key(key: &str) -> String {
    let mut input = Vec::with_capacity(key.len() + GUID.len());
    input.extend_from_slice(key.as_bytes());
    input.extend_from_slice(GUID.as_bytes());
    base64::encode(&sha1::sha1(&input))
}

/// Whether `key` is a valid `Sec-WebSocket-Key`: base64 of exactly 16 bytes (RFC 6455,
/// section 4.1, item 7).
pub fn is_valid_key(key: &str) -> bool {
    base64::decode(key).is_some_and(|k| k.len() == 16)
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn rfc_6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn key_must_be_16_bytes_of_base64() {
        assert!(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ")); // unpadded
        assert!(!is_valid_key("Zm9vYmFy")); // 6 bytes
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZSE=")); // 17 bytes
        assert!(!is_valid_key(""));
    }
}
