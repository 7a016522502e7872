//! The byte order of a length field, and the field read and written in it.

/// Byte order of the length prefix written and read by
/// [`LengthDelimited`](super::LengthDelimited).
///
/// Defaults to [`Endian::Big`], the network byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Endian {
    /// Most significant byte first (network byte order): a 5-byte payload with a 4-byte prefix
    /// is announced as `00 00 00 05`. The default.
    #[default]
    Big,
    /// Least significant byte first: a 5-byte payload with a 4-byte prefix is announced as
    /// `05 00 00 00`.
    Little,
}

impl Endian {
    /// The unsigned number in `bytes` (1 to 8 of them) in this byte order.
    #[inline]
    pub(crate) fn read(self, bytes: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        match self {
            Endian::Big => {
                b[8 - bytes.len()..].copy_from_slice(bytes);
                u64::from_be_bytes(b)
            }
            Endian::Little => {
                b[..bytes.len()].copy_from_slice(bytes);
                u64::from_le_bytes(b)
            }
        }
    }

    /// Writes `value` into `out` (1 to 8 bytes) in this byte order; `value` must fit.
    #[inline]
    pub(crate) fn write(self, value: u64, out: &mut [u8]) {
        let w = out.len();
        match self {
            Endian::Big => out.copy_from_slice(&value.to_be_bytes()[8 - w..]),
            Endian::Little => out.copy_from_slice(&value.to_le_bytes()[..w]),
        }
    }
}
