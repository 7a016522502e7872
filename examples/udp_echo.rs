//! A UDP echo server: every datagram goes back to its sender, unchanged.
//!
//! It is the smallest [`UdpServer`]: the [`Raw`] codec reads each datagram as one message
//! (a datagram is what one read of it returns), and the handler sends it back. Each sender
//! address is a [`Connection`] of its own; senders that go quiet expire after 60 s, and once
//! 1 024 are served a new one takes the place of the one heard from least recently. A reply
//! is written at once from the reader thread (UDP peers have no writer threads), so the
//! process has a handful of threads however many senders it serves.
//!
//! ```sh
//! cargo run --release --example udp_echo -- --addr 127.0.0.1:7003
//! nc -u 127.0.0.1 7003          # each line you type comes back
//! ```
//!
//! Flags: `--addr HOST:PORT` (default `127.0.0.1:7003`; port 0 picks a free one). The first
//! line on stdout is `listening on ADDR`, with the real bound address; then the server runs
//! until SIGINT or SIGTERM stops it gracefully (exit code 0; a second signal stops it at
//! once).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use threadnet::{codec::Raw, signal, udp::UdpServer, Connection};

/// How long connections get to finish after SIGINT/SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: udp_echo [--addr HOST:PORT]
  --addr HOST:PORT   bind address (default 127.0.0.1:7003; port 0 picks a free port)";

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:7003".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            ("-h" | "--help", _) => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("udp_echo: bad flag {flag:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let started = UdpServer::builder()
        .addr(addr.as_str())
        .start(Raw, |_: &Connection<Raw>| {
            |conn: &Connection<Raw>, datagram: Vec<u8>| {
                // try_send: when the socket's send buffer is full, this reply is dropped
                // after at most one 50 ms write slice, rather than stalling every other
                // sender's datagrams behind it for the whole send timeout.
                let _ = conn.try_send(datagram);
            }
        });
    let server = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("udp_echo: cannot bind {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };

    // The signal handlers go in before the line below: a script may send a signal as soon
    // as it has read it.
    let stop = match signal::StopOnSignals::new(STOP_DEADLINE).arm() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("udp_echo: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Scripts wait for this line to learn the port, so it goes out at once.
    let mut stdout = std::io::stdout().lock();
    let announced =
        writeln!(stdout, "listening on {}", server.local_addr()).and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = announced {
        eprintln!("udp_echo: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }

    // SIGINT/SIGTERM stop the server gracefully (a second one: at once), then exit code 0.
    if let Err(e) = stop.run(&server) {
        eprintln!("udp_echo: cannot handle signals: {e}");
        server.wait();
    }
    ExitCode::SUCCESS
}
