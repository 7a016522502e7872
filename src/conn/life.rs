//! How far a connection's close has gone, why it ends, and the deadline of a graceful close:
//! the lifecycle as one part that owns its state (DESIGN.md, "The states of a connection").
//!
//! The close moves through [`Phase`]s, only forward, in one atomic that every thread reads
//! without a lock (the reader after each message, the writer between writes, a send before it
//! queues). The cause, the deadline and the reader's end change rarely and together, under one
//! mutex. The sequences that span parts (abort, graceful shutdown, finish) are `Core`'s, in
//! `core.rs`; they move the phase here.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::conn::CloseReason;
use crate::sync::{deadline_after, lock};
use crate::timer::{TimerId, TimingWheel};

/// How far a connection's close has gone. A phase only moves forward (`Ord` is that order),
/// so a later close never undoes an earlier one: an abort overtakes a graceful close, not
/// the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Serving: sends are taken, written through or queued.
    Open = 0,
    /// Still serving, asked to end at the protocol's next boundary
    /// ([`Connection::wind_down`](crate::Connection::wind_down)).
    WindingDown = 1,
    /// A graceful close has begun: sends are refused, the queue drains, then the FIN; the
    /// reader reads on to the peer's EOF, or the deadline forces the close.
    Draining = 2,
    /// Closed now: the queue is dropped and counted, the socket shut down both ways; the
    /// reader leaves its loop.
    Aborted = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Open,
            1 => Phase::WindingDown,
            2 => Phase::Draining,
            _ => Phase::Aborted,
        }
    }
}

/// The lifecycle part of a connection; see the module docs.
#[derive(Default)]
pub(crate) struct Life {
    phase: AtomicU8,
    end: Mutex<End>,
}

#[derive(Default)]
struct End {
    /// What asked the connection to end, with `dropped` still 0 ([`Life::set_cause`] says
    /// which one wins); [`Life::settle`] makes it the reason `on_close` gets.
    cause: Option<CloseReason>,
    /// The deadline timer fired and closed the connection by force.
    forced: bool,
    /// The graceful close's deadline timer, and when it fires.
    deadline: Option<(TimerId, Instant)>,
    /// The reader has started to finish the connection: no new deadline.
    ending: bool,
}

impl Life {
    /// The phase now.
    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::SeqCst))
    }

    /// Moves the phase forward to `to` (a phase already further stays); the phase before.
    pub(crate) fn advance(&self, to: Phase) -> Phase {
        Phase::from_u8(self.phase.fetch_max(to as u8, Ordering::SeqCst))
    }

    /// Records why the connection ends. The first cause wins, except that an abortive one (a
    /// close, an error, a panic) replaces a graceful one: it is what actually ended it; and a
    /// protocol's closing handshake ([`CloseReason::Protocol`], recorded by the WebSocket
    /// layer) replaces a plain `Shutdown` or `PeerClosed`.
    pub(crate) fn set_cause(&self, cause: CloseReason) {
        let mut end = lock(&self.end);
        let replace = match &end.cause {
            None => true,
            Some(old) => cause.replaces(old),
        };
        if replace {
            end.cause = Some(cause);
        }
    }

    /// The deadline passed and closed the connection: its graceful cause is reported cut
    /// short.
    pub(crate) fn forced(&self) {
        lock(&self.end).forced = true;
    }

    /// Schedules `fire` on `wheel` `timeout` from now as the graceful close's deadline, unless
    /// one is due sooner, or the connection is aborted or ending. A later deadline it replaces
    /// is cancelled.
    pub(crate) fn arm_deadline(
        &self,
        wheel: &TimingWheel,
        timeout: Duration,
        fire: impl FnOnce() + Send + 'static,
    ) {
        if self.phase() == Phase::Aborted {
            return;
        }
        let now = Instant::now();
        let at = deadline_after(timeout);
        let mut end = lock(&self.end);
        if end.ending || end.deadline.is_some_and(|(_, due)| due <= at) {
            return;
        }
        let id = wheel.after(at - now, fire);
        if let Some((old, _)) = end.deadline.replace((id, at)) {
            wheel.cancel(old);
        }
    }

    /// The reader starts to finish the connection: from now on no deadline is armed.
    pub(crate) fn begin_ending(&self) {
        lock(&self.end).ending = true;
    }

    /// Cancels the deadline and makes the reason `on_close` gets from the cause: `dropped`
    /// messages were never written, and a graceful close that was forced or dropped some is
    /// reported cut short. A connection nobody asked to end ended at the peer's EOF.
    pub(crate) fn settle(&self, wheel: &TimingWheel, dropped: u64) -> CloseReason {
        let mut end = lock(&self.end);
        if let Some((id, _)) = end.deadline.take() {
            wheel.cancel(id);
        }
        let cut_short = end.forced || dropped > 0;
        end.cause
            .take()
            .unwrap_or(CloseReason::PeerClosed)
            .settle(dropped, cut_short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_only_moves_forward() {
        let life = Life::default();
        assert_eq!(life.phase(), Phase::Open);
        assert_eq!(life.advance(Phase::Draining), Phase::Open);
        assert_eq!(life.advance(Phase::WindingDown), Phase::Draining);
        assert_eq!(
            life.phase(),
            Phase::Draining,
            "a wind-down does not undo a shutdown"
        );
        life.advance(Phase::Aborted);
        life.advance(Phase::Draining);
        assert_eq!(
            life.phase(),
            Phase::Aborted,
            "a shutdown does not undo an abort"
        );
    }

    #[test]
    fn no_deadline_is_armed_once_ending_or_aborted() {
        let (wheel, _clock) = TimingWheel::manual(Duration::from_millis(1));
        let life = Life::default();
        life.begin_ending();
        life.arm_deadline(&wheel, Duration::from_secs(1), || {});
        assert!(lock(&life.end).deadline.is_none());
        let life = Life::default();
        life.advance(Phase::Aborted);
        life.arm_deadline(&wheel, Duration::from_secs(1), || {});
        assert!(lock(&life.end).deadline.is_none());
        let life = Life::default();
        life.arm_deadline(&wheel, Duration::from_secs(1), || {});
        assert!(lock(&life.end).deadline.is_some());
    }
}
