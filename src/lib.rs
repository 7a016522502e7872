//! threadnet (crate docs being written).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod codec;
mod timer;

pub use codec::{Codec, Endian, LengthDelimited, Lines, Raw};
pub use timer::{TimerId, TimingWheel};
