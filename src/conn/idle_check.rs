//! The idle timer of a connection: one re-armed timer that compares the connection's
//! [`Activity`](super::idle::Activity) with its idle limits, raises what passed (closing, or
//! asking the [`IdleHook`](super::idle::IdleHook)), sends a due heartbeat, and sets itself for
//! the next moment a limit could pass. A sequence across the connection's parts (its
//! activity, its close, its queue, its timers), so it takes the `Core`.

use std::sync::Arc;
use std::time::Duration;

use crate::conn::core::Core;
use crate::conn::idle::{IdleAction, IdleEvent, IdleKind};
use crate::conn::queue::Payload;
use crate::conn::send;
use crate::conn::CloseReason;
use crate::timer::nanos;

/// Starts watching `core` for idleness, if any idle option is set: the connection counts as
/// active now. Called by the reader thread before `on_connect`.
pub(crate) fn watch(core: &Arc<Core>) {
    if core.activity.start(core.wheel.now_nanos()) {
        check(core);
    }
}

/// Makes the frame timeout apply to `core`: called by a stream reader, which keeps the start
/// of each frame, before [`watch`].
pub(crate) fn watch_frames(core: &Core) {
    core.activity.watch_frames();
}

/// Sets the watch timer for `at` (nanoseconds since the wheel's origin).
fn arm(core: &Arc<Core>, at: u64) {
    let weak = Arc::downgrade(core);
    core.timers.add(|| {
        core.wheel.at_nanos_id(at, move |id| {
            if let Some(core) = weak.upgrade() {
                core.run_timer(id, true, || check(&core));
            }
        })
    });
}

/// Compares the last activity with every limit, raises what passed, sends a due heartbeat,
/// and sets the timer for the next moment a limit could pass.
fn check(core: &Arc<Core>) {
    if core.is_closing() {
        // Closing already (gracefully or not): its own deadline ends it, and its reason stays.
        return;
    }
    let opts = &core.cfg.idle;
    let now = core.wheel.now_nanos();
    let (read, write) = core.activity.last_read_and_write();
    let mut next = u64::MAX;
    let mut limits = [
        (IdleKind::Read, opts.read, read),
        (IdleKind::Write, opts.write, write),
        (IdleKind::All, opts.all, read.max(write)),
        (IdleKind::Heartbeat, None, read),
        (IdleKind::Frame, None, 0),
    ];
    if let Some(beat) = &opts.heartbeat {
        limits[3].1 = Some(beat.interval.saturating_mul(beat.misses));
    }
    if let (Some(limit), Some(frame)) = (opts.frame, core.activity.frame()) {
        match frame {
            // Between frames, or a frame not waiting on the peer: look again one limit later
            // (a frame whose clock starts by then is due after).
            None => next = now.saturating_add(nanos(limit)),
            Some(start) => limits[4] = (IdleKind::Frame, Some(limit), start),
        }
    }
    for (kind, limit, last) in limits {
        let Some(limit) = limit else { continue };
        let limit = nanos(limit);
        let due = last.saturating_add(limit);
        if now < due {
            next = next.min(due);
            continue;
        }
        let event = IdleEvent {
            id: core.id,
            kind,
            idle: Duration::from_nanos(now - last),
        };
        let action = opts
            .hook
            .as_ref()
            .map_or(IdleAction::Close, |hook| hook(event));
        if action == IdleAction::Close {
            core.close_now(CloseReason::idle(kind));
            return;
        }
        next = next.min(now.saturating_add(limit));
    }
    if let Some(beat) = &opts.heartbeat {
        let interval = nanos(beat.interval);
        let due = write.saturating_add(interval);
        if now >= due {
            // Written now if the socket takes it, else queued (`send::offer`); not again
            // until the next interval.
            // A protocol layer may make each beat's bytes (a WebSocket client masks them).
            let payload = match core.layer.beat(&beat.message) {
                Some(bytes) => Payload::Owned(bytes),
                None => Payload::Shared(Arc::clone(&beat.message)),
            };
            let _ = send::offer(core, payload);
            core.activity.beat_sent(now);
            next = next.min(now.saturating_add(interval));
        } else {
            next = next.min(due);
        }
    }
    if next != u64::MAX {
        arm(core, next);
    }
}
