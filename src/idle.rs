//! Idle limits, heartbeats and the frame timeout: the types a
//! [`ConnOptions`](crate::ConnOptions) takes to close a silent or dead connection, and what its
//! [`on_idle`](crate::ConnOptions::on_idle) hook is told.
//!
//! * [`read_idle`](crate::ConnOptions::read_idle), [`write_idle`](crate::ConnOptions::write_idle)
//!   and [`all_idle`](crate::ConnOptions::all_idle) close a connection that has been silent for
//!   that long (Netty's `IdleStateHandler`), with
//!   [`CloseReason::IdleTimeout`](crate::CloseReason::IdleTimeout) of the [`IdleKind`] that
//!   passed.
//! * [`heartbeat`](crate::ConnOptions::heartbeat) takes a [`Heartbeat`]: a message of your
//!   codec sent whenever the connection has written nothing for an interval, and a limit on
//!   the peer's silence.
//! * [`frame_timeout`](crate::ConnOptions::frame_timeout) ([`DEFAULT_FRAME_TIMEOUT`], 30 s)
//!   bounds how long one message may take to arrive once its first byte has (a slowloris
//!   peer).
//! * [`on_idle`](crate::ConnOptions::on_idle) takes an [`IdleHook`]: it gets each
//!   [`IdleEvent`] and answers with an [`IdleAction`], to close the connection or keep it.
//!
//! Activity costs one clock read per socket read or write and no timer work; one timer per
//! connection does the checking, on the [`TimingWheel`](crate::TimingWheel).
//!
//! ```
//! use std::time::Duration;
//! use threadnet::codec::Lines;
//! use threadnet::idle::{Heartbeat, IdleAction, IdleEvent, IdleKind};
//! use threadnet::ConnOptions;
//!
//! // A "PING" line after 10 s without writes; closed after 30 s without a byte from the peer.
//! let beat = Heartbeat::encode(&Lines::new(), &"PING".to_string(), Duration::from_secs(10))?
//!     .misses(3);
//! let opts = ConnOptions::new()
//!     .heartbeat(beat)
//!     .write_idle(Duration::from_secs(60))
//!     // A connection that has written nothing for a minute is kept; other limits close it.
//!     .on_idle(|event: IdleEvent| match event.kind {
//!         IdleKind::Write => IdleAction::Keep,
//!         _ => IdleAction::Close,
//!     });
//! # let _ = opts;
//! # Ok::<(), std::io::Error>(())
//! ```

pub use crate::conn::idle::{
    Heartbeat, IdleAction, IdleEvent, IdleHook, IdleKind, DEFAULT_FRAME_TIMEOUT,
};
