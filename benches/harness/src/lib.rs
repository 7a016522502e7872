//! Shared pieces of the comparison harness: the wire format, a small flag parser, readings
//! from `/proc`, flat JSON lines (written by `loadgen`, read back by `report`), and the
//! Redis protocol's requests (read by `std-resp`), and the tokio servers' runtime.
//!
//! The binaries are in `src/bin/`: `loadgen` (the client), `std-echo` and `tokio-echo` (the
//! reference servers), `std-resp` and `mini-redis` (for `kv.sh`), `std-http` and
//! `hyper-http` (for `http.sh`) and `report` (the Markdown table). See `README.md` beside `Cargo.toml`.

pub mod args;
pub mod json;
pub mod procfs;
pub mod resp;
pub mod tokio_peer;
pub mod wire;
