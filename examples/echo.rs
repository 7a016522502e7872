//! The smallest useful server: every frame a client sends (a 4-byte big-endian length, then
//! that many bytes) comes back unchanged.
//!
//! ```sh
//! cargo run --example echo -- --addr 127.0.0.1:7001
//! ```
//!
//! Each connection gets a reader thread that decodes frames with [`LengthDelimited`] and calls
//! the handler; the handler's reply is written straight to the socket from that thread. A
//! frame over the codec's limit (1 MiB) closes its connection before anything is allocated
//! for it, and the others go on. Ctrl-C (or SIGTERM) stops gracefully: every connection gets
//! what is queued for it, then a FIN. The first line on stdout is `listening on ADDR`.
//!
//! The same server with a command line, pid files, hand-off and worker processes is
//! `examples/echo_service.rs`; the guided tour is the crate's `guide` module.

use std::time::Duration;

use threadnet::{codec::LengthDelimited, signal, Connection, TcpServer};

fn main() -> std::io::Result<()> {
    let addr = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => "127.0.0.1:7001".to_string(),
        [flag, addr] if flag == "--addr" => addr.clone(),
        _ => {
            eprintln!("usage: echo [--addr HOST:PORT]   (port 0 picks a free one)");
            std::process::exit(2);
        }
    };

    // The factory makes one handler per connection; this one is a closure for `on_message`.
    let server = TcpServer::builder().addr(addr).start(
        LengthDelimited::new(),
        |_: &Connection<LengthDelimited>| {
            |conn: &Connection<LengthDelimited>, frame: Vec<u8>| {
                // A peer that stops reading makes `send` time out (5 s): give up on it.
                if conn.send(frame).is_err() {
                    conn.close();
                }
            }
        },
    )?;
    println!("listening on {}", server.local_addr());

    // Returns once the server has stopped: the first signal gives connections 5 s to finish.
    signal::stop_on_signals(&server, Duration::from_secs(5))
}
