//! Shared pieces of the comparison harness: the wire format, a small flag parser, readings
//! from `/proc`, flat JSON lines (written by `loadgen`, read back by `report`), and the
//! Redis protocol's requests (read by `std-resp`).
//!
//! The binaries are in `src/bin/`: `loadgen` (the client), `std-echo` and `tokio-echo` (the
//! reference servers), `std-resp` (the reference RESP server, for `kv.sh`) and `report`
//! (the Markdown table). See `README.md` beside `Cargo.toml`.

pub mod args;
pub mod json;
pub mod procfs;
pub mod resp;
pub mod wire;
