//! Counters of a server or client, read as a [`MetricsSnapshot`] and rendered in the
//! Prometheus text exposition format (the field's standard; Tao exports counters too).
//!
//! Every server ([`ServerHandle::metrics`](crate::ServerHandle::metrics),
//! [`UdpHandle::metrics`](crate::udp::UdpHandle::metrics)) and client
//! ([`ClientHandle::metrics`](crate::ClientHandle::metrics)) keeps one set of counters, shared
//! by its connections; each connection also counts its own ([`ConnStats`]). Counting is one
//! relaxed atomic add per event, where the event already happens: per message decoded or
//! written, per socket read or write for bytes, per connection for the rest. Messages and
//! bytes are counted on the connection alone, so that connections on different cores never
//! write one shared counter per message; a snapshot sums them over the live connections and
//! those gone, under one short lock, and every total only grows.
//!
//! ```
//! use std::io::Write;
//! use std::net::TcpStream;
//! use std::time::Duration;
//! use threadnet::{codec::Lines, Connection, TcpServer};
//!
//! let server = TcpServer::builder().start(Lines::new(), |_: &Connection<Lines>| {
//!     |conn: &Connection<Lines>, line: String| {
//!         let _ = conn.send(line);
//!     }
//! })?;
//! let mut peer = TcpStream::connect(server.local_addr())?;
//! peer.write_all(b"hello\n")?;
//! # let mut buf = [0u8; 6];
//! # std::io::Read::read_exact(&mut peer, &mut buf)?;
//! let m = server.metrics();
//! assert_eq!(m.connections_accepted, 1);
//! assert_eq!(m.messages_received, 1);
//! let text = m.to_prometheus();
//! assert!(text.contains("threadnet_connections_accepted_total 1\n"));
//! # drop(peer);
//! # server.stop(Duration::from_secs(1));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`serve_prometheus`]`(listener, render)` serves the text at `/metrics` over threadnet's own
//! HTTP codec (the `echo_service` example's `--metrics-addr`), and
//! [`Connection::stats`](crate::Connection::stats) gives one connection's messages, bytes and
//! queue depth. For logs rather than counters,
//! [`ConnOptions::on_event`](crate::ConnOptions::on_event) is called when a connection opens
//! and when it ends, with its reason: the place to plug in `log`, `tracing` or a logger of
//! your own, without threadnet depending on any.

use std::io;
use std::net::TcpListener;

use crate::http::{self, Http1, Request, Response};
use crate::server::{ServerHandle, TcpServer};

pub use crate::conn::metrics::{ConnStats, MetricsSnapshot};

/// Serves `render()` at `GET /metrics` on `listener` (bind one with
/// `TcpListener::bind("HOST:PORT")`), over threadnet's own [`Http1`] codec, as Prometheus
/// scrapes it; every other path is 404. Returns the HTTP server's handle (its
/// [`local_addr`](ServerHandle::local_addr) is the real address). Taking a listener rather
/// than an address lets a restarted process inherit it
/// ([`StopOnSignals::hand_off`](crate::signal::StopOnSignals::hand_off)).
///
/// `render` runs on the scraping connection's thread; typically it is
/// `move || server.metrics().to_prometheus()` for a handle `server`.
///
/// # Errors
///
/// The server's accept thread cannot be started.
pub fn serve_prometheus<F>(listener: TcpListener, render: F) -> io::Result<ServerHandle<Http1>>
where
    F: Fn() -> String + Send + Sync + 'static,
{
    TcpServer::builder().listener(listener).start(
        Http1::new(),
        http::serve(move |req: &Request| match req.path() {
            "/metrics" if req.method() == "GET" || req.method() == "HEAD" => Response::new(200)
                .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                .body(render()),
            _ => Response::new(404)
                .header("Content-Type", "text/plain; charset=utf-8")
                .body("not found\n"),
        }),
    )
}
