//! What a connection tells the program as it goes: that it opened or ended ([`ConnEvent`], to
//! the [`on_event`](crate::ConnOptions::on_event) hook, an [`EventHook`]), and that its send
//! queue rose above its high watermark or fell back ([`WatermarkEvent`], to the
//! [`on_watermark`](crate::ConnOptions::on_watermark) observer, a [`WatermarkObserver`]).
//!
//! The event hook is where a logger plugs in (`log`, `tracing` or your own) without threadnet
//! depending on any. The watermark observer tells producers when to pause and when to go on
//! (goes' `OnBufferFull` / `OnBufferDrain`, Netty's writability), as
//! [`Connection::is_writable`](crate::Connection::is_writable) does when asked. Idle limits
//! have their own hook, in [`idle`](crate::idle).
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! use threadnet::events::{ConnEvent, WatermarkEvent};
//! use threadnet::ConnOptions;
//!
//! let paused = Arc::new(AtomicBool::new(false));
//! let flag = Arc::clone(&paused);
//! let opts = ConnOptions::new()
//!     .on_event(|event: &ConnEvent<'_>| match event {
//!         ConnEvent::Opened { id, peer } => eprintln!("#{id} {peer} opened"),
//!         ConnEvent::Closed { id, reason, .. } => eprintln!("#{id} closed: {reason}"),
//!         _ => {}
//!     })
//!     .high_watermark(64 * 1024)
//!     .on_watermark(move |event: WatermarkEvent| flag.store(event.full, Ordering::Relaxed));
//! # let _ = opts;
//! # assert!(!paused.load(Ordering::Relaxed));
//! ```

pub use crate::conn::options::{ConnEvent, EventHook, WatermarkEvent, WatermarkObserver};
