//! Raw chunks (stub, being written).
use std::io::{self, BufRead, Write};

/// Whatever bytes one read returns.
#[derive(Clone, Debug, Default)]
pub struct Raw;

impl super::Codec for Raw {
    type In = Vec<u8>;
    type Out = Vec<u8>;
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<Vec<u8>>> {
        let b = r.fill_buf()?;
        if b.is_empty() {
            return Ok(None);
        }
        let v = b.to_vec();
        r.consume(v.len());
        Ok(Some(v))
    }
    fn write<W: Write>(&self, msg: &Vec<u8>, w: &mut W) -> io::Result<()> {
        w.write_all(msg)
    }
}
