//! The id of a scheduled timer: the one type the wheel (`wheel.rs`), its driver thread
//! (`driver.rs`) and the public handle (`mod.rs`) all name, so it sits below the three.

/// Identifies a timer scheduled on a [`TimingWheel`](super::TimingWheel), for
/// [`TimingWheel::cancel`](super::TimingWheel::cancel).
///
/// An id is a slab index and a generation: once its timer has fired or been cancelled, the id
/// is stale and cancels nothing, even after the slab slot is reused (up to 2^32 reuses of the
/// same slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(pub(super) u64);

impl TimerId {
    /// An id that names no timer: what scheduling returns when the timer can never run.
    pub(crate) const NONE: TimerId = TimerId(0);
}
