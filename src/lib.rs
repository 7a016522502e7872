//! threadnet (crate docs being written).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod backoff;
mod client;
pub mod codec;
mod conn;
mod error;
mod handler;
mod io;
mod options;
mod queue;
mod registry;
mod server;
mod timer;

pub use backoff::Backoff;
pub use client::{ClientBuilder, ClientHandle, TcpClient};
pub use codec::{Codec, Endian, LengthDelimited, Lines, Raw};
pub use conn::{CloseReason, Connection};
pub use error::{SendError, TrySendError};
pub use handler::Handler;
pub use options::{ConnOptions, WatermarkEvent, WatermarkObserver};
pub use registry::{BroadcastReport, Registry};
pub use server::{ServerBuilder, ServerHandle, TcpServer};
pub use timer::{TimerId, TimingWheel};
