//! Length-delimited frames (stub, being written).
use std::io::{self, BufRead, Write};

/// Byte order of a length prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Endian {
    /// Most significant byte first (network order).
    #[default]
    Big,
    /// Least significant byte first.
    Little,
}

/// Length-prefixed frames.
#[derive(Clone, Debug)]
pub struct LengthDelimited {
    max: usize,
}

impl LengthDelimited {
    /// New codec with default settings.
    pub fn new() -> Self {
        LengthDelimited { max: 8 << 20 }
    }
}

impl Default for LengthDelimited {
    fn default() -> Self {
        Self::new()
    }
}

impl super::Codec for LengthDelimited {
    type In = Vec<u8>;
    type Out = Vec<u8>;
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Vec<u8>>> {
        let mut h = [0u8; 4];
        if !super::read_frame_start(r, &mut h)? {
            return Ok(None);
        }
        let n = u32::from_be_bytes(h) as usize;
        if n > self.max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
        }
        let mut v = vec![0; n];
        r.read_exact(&mut v)?;
        Ok(Some(v))
    }
    fn write<W: Write>(&self, msg: &Vec<u8>, w: &mut W) -> io::Result<()> {
        w.write_all(&(msg.len() as u32).to_be_bytes())?;
        w.write_all(msg)
    }
    fn set_max_frame_length(&mut self, bytes: usize) {
        self.max = bytes;
    }
}
