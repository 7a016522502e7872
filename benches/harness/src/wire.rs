//! The benchmark's protocol: a frame is a 4-byte big-endian payload length, then the
//! payload. A server echoes every frame unchanged.

/// Bytes in a frame header.
pub const HEADER: usize = 4;

/// The largest payload a reference server accepts (16 MiB); a longer frame closes the
/// connection before anything is allocated for it.
pub const MAX_PAYLOAD: usize = 16 << 20;

/// The payload length announced by a frame header.
pub fn payload_len(header: [u8; HEADER]) -> usize {
    u32::from_be_bytes(header) as usize
}

/// Whether `buf` starts with a whole frame (header and payload). The servers flush their
/// replies only when it does not, that is when their next read could wait.
pub fn starts_with_frame(buf: &[u8]) -> bool {
    match buf.get(..HEADER) {
        Some(h) => buf.len() - HEADER >= payload_len([h[0], h[1], h[2], h[3]]),
        None => false,
    }
}

/// A whole frame: the header for `payload.len()`, then `payload`.
///
/// # Panics
///
/// If the payload is longer than `u32::MAX` bytes.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("payload fits a u32 length");
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_whole_only_with_all_its_payload() {
        let f = frame(b"hello");
        assert_eq!(&f[..4], &[0, 0, 0, 5]);
        assert!(starts_with_frame(&f));
        assert!(!starts_with_frame(&f[..8]));
        assert!(!starts_with_frame(&f[..3]));
        assert!(starts_with_frame(&frame(b"")));
    }
}
