//! Random bits for the client side, without dependencies: masking keys (RFC 6455, section
//! 5.3) and the handshake's `Sec-WebSocket-Key` (section 4.1).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// 64 random bits: SipHash of a counter, keyed once per process with std's random hash keys
/// (a keyed hash of distinct inputs: no clock needed, and none read per frame).
fn next_u64() -> u64 {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    KEYS.get_or_init(RandomState::new).hash_one(n)
}

/// A fresh masking key for one client frame (RFC 6455, section 5.3).
///
/// The mask exists only so that a script in a browser cannot choose the bytes that reach the
/// wire and poison the cache of a proxy that misreads them (section 10.3): the key must be
/// unpredictable to whoever supplies the payload, not secret in the cryptographic sense. It is
/// SipHash-1-3 (std's `RandomState`, keyed from the OS's random source once per process) of a
/// counter: unpredictable without the process's 128-bit key, but not a vetted cryptographic
/// generator. Do not use it for secrets.
///
/// ```
/// let (a, b) = (threadnet::ws::mask_key(), threadnet::ws::mask_key());
/// assert_ne!(a, b); // fresh each time (equal with probability 2^-32)
/// ```
pub fn mask_key() -> [u8; 4] {
    let [a, b, c, d, ..] = next_u64().to_ne_bytes();
    [a, b, c, d]
}

/// A fresh 16-byte nonce for `Sec-WebSocket-Key` (section 4.1: "randomly selected"), from the
/// same generator as [`mask_key`].
pub(crate) fn nonce() -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&next_u64().to_ne_bytes());
    out[8..].copy_from_slice(&next_u64().to_ne_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ() {
        let keys: std::collections::HashSet<[u8; 16]> = (0..1000).map(|_| nonce()).collect();
        assert_eq!(keys.len(), 1000);
        let masks: std::collections::HashSet<[u8; 4]> = (0..100).map(|_| mask_key()).collect();
        assert!(masks.len() > 95, "{} distinct masks of 100", masks.len());
    }
}
