//! The byte classes of HTTP's grammar (RFC 9110): token characters, request-target bytes,
//! field-value bytes, one table lookup per byte. The parser, the response writer and the
//! WebSocket client's handshake check their bytes here.

/// Byte classes, one bit each, looked up in [`CLASS`].
pub(crate) const TCHAR: u8 = 1;
pub(crate) const TARGET: u8 = 2;
pub(crate) const FIELD: u8 = 4;

/// The class bits of every byte: one table lookup per byte instead of a chain of comparisons.
static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let tchar = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        if tchar {
            t[i] |= TCHAR;
        }
        // A request target: visible ASCII, no space.
        if b >= 0x21 && b <= 0x7e {
            t[i] |= TARGET;
        }
        // A field value (RFC 9110 §5.5): visible ASCII, space, tab, and obs-text; no CR, LF,
        // NUL or other control.
        if b == b'\t' || (b >= 0x20 && b != 0x7f) {
            t[i] |= FIELD;
        }
        i += 1;
    }
    t
}

/// `tchar` of RFC 9110: the bytes of a method or a header field name.
pub(crate) fn is_tchar(b: u8) -> bool {
    CLASS[b as usize] & TCHAR != 0
}

/// True if every byte of `bytes` has the class bit `class`.
pub(crate) fn all(bytes: &[u8], class: u8) -> bool {
    bytes.iter().all(|&b| CLASS[b as usize] & class != 0)
}

/// A byte allowed in a field value (see [`CLASS`]).
pub(crate) fn is_field_byte(b: u8) -> bool {
    CLASS[b as usize] & FIELD != 0
}
