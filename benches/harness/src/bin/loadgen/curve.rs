//! The curve mode: what a server's connections cost at a given number of them, and how fast
//! it answers a few while the rest sit idle.
//!
//! It opens `--conns` connections, each making one round trip (as `idle --touch 1` does),
//! waits until the server holds them all and reads its footprint (RSS, kernel memory,
//! threads, descriptors per connection), then drives the first `--active` of them ping-pong
//! for the window while the others stay open and silent, and reports both in one line.
//! `curve.sh` runs it at several `--conns` to draw the cost curve.

use threadnet_harness::json::Line;

use crate::idle::{footprint_fields, hold};
use crate::load::drive;
use crate::Options;

/// Runs the curve measurement, then gives the run's JSON line (`Err` when it went wrong).
pub fn run(o: &Options) -> Result<String, String> {
    let held = hold(o, true)?;
    let head = Line::default()
        .str("mode", "curve")
        .str("tag", &o.tag)
        .num("conns", o.conns as f64, 0)
        .num("active", o.active as f64, 0);
    let head = footprint_fields(head, &held);
    let mut active = held.streams;
    // The idle ones stay open (and silent) until the active ones are done.
    let idle = active.split_off(o.active.min(active.len()));
    let line = drive(o, active, head, held.failure);
    drop(idle);
    line
}
