//! Shared pieces of the comparison harness: the wire format, a small flag parser, readings
//! from `/proc`, and flat JSON lines (written by `loadgen`, read back by `report`).
//!
//! The binaries are in `src/bin/`: `loadgen` (the client), `std-echo` and `tokio-echo` (the
//! reference servers) and `report` (the Markdown table). See `README.md` beside `Cargo.toml`.

pub mod args;
pub mod json;
pub mod procfs;
pub mod wire;
