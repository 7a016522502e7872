//! Operations: running a server as a service. Signals and graceful stops, socket activation,
//! hand-off to a new process and pid files, and the metrics endpoint. These build on the
//! servers and never the other way round. [`control`] puts them together as goes' command line.

pub mod activation;
pub mod control;
pub mod metrics;
pub mod signal;
