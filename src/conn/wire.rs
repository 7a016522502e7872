//! What a write to the socket touches besides the socket: the byte and message counters, the
//! clock of the last write (for idle limits), whether the connection was aborted (a write that
//! times out then stops waiting), and the timing wheel (a corked batch's timer).
//!
//! The parts that write (`through.rs`, `writer.rs`) take a `Wire` of borrowed parts instead of
//! the whole `Core`, so they know only what they touch, and nothing below `core.rs` imports it.

use crate::conn::idle::Activity;
use crate::conn::life::{Life, Phase};
use crate::conn::metrics::Traffic;
use crate::timer::TimingWheel;

/// The parts of a connection a write reports to; made by `Core::wire`.
#[derive(Clone, Copy)]
pub(crate) struct Wire<'a> {
    pub(crate) life: &'a Life,
    pub(crate) activity: &'a Activity,
    pub(crate) traffic: &'a Traffic,
    pub(crate) wheel: &'a TimingWheel,
}

impl Wire<'_> {
    /// `bytes` went to the socket: counted, and noted as activity for idle limits.
    pub(crate) fn wrote(&self, bytes: usize) {
        self.traffic.wrote(bytes);
        self.activity.note_write();
    }

    /// `n` whole messages were written.
    pub(crate) fn sent(&self, n: u64) {
        self.traffic.sent(n);
    }

    /// True once the connection was closed abortively: a write stops waiting on the peer.
    pub(crate) fn is_aborted(&self) -> bool {
        self.life.phase() == Phase::Aborted
    }
}
