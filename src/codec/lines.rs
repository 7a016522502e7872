//! Lines (stub, being written).
use std::io::{self, BufRead, Write};

/// `\n`-delimited UTF-8 lines.
#[derive(Clone, Debug, Default)]
pub struct Lines;

impl super::Codec for Lines {
    type In = String;
    type Out = String;
    fn read<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<String>> {
        let mut s = String::new();
        if r.read_line(&mut s)? == 0 {
            return Ok(None);
        }
        while s.ends_with('\n') || s.ends_with('\r') {
            s.pop();
        }
        Ok(Some(s))
    }
    fn write<W: Write>(&self, msg: &String, w: &mut W) -> io::Result<()> {
        w.write_all(msg.as_bytes())?;
        w.write_all(b"\n")
    }
}
