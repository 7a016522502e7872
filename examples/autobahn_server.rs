//! A WebSocket echo server for Autobahn|Testsuite's `fuzzingclient`: every text and binary
//! message goes back as it came, pings and close frames are answered by [`ws::serve`].
//!
//! Frames and messages may be up to 20 MiB each (group 9 of the suite sends 16 MiB); the
//! defaults (1 MiB frames, 4 MiB messages) would close those cases with 1009, as they should.
//!
//! ```sh
//! cargo run --release --example autobahn_server -- --addr 127.0.0.1:9001
//! # then, with autobahntestsuite installed (Python 2.7), a spec naming ws://127.0.0.1:9001:
//! wstest -m fuzzingclient -s fuzzingclient.json
//! ```
//!
//! `benches/harness/autobahn.sh` does all of it (the suite in a virtualenv, both sides, the
//! table of results).
//!
//! Flags: `--addr HOST:PORT` (default `127.0.0.1:9001`; port 0 picks a free one). The first
//! line on stdout is `listening on ADDR`; SIGINT or SIGTERM stops the server.

use std::process::ExitCode;
use std::time::Duration;

use threadnet::http::{Request, Response};
use threadnet::ws::{self, Message, WsCodec, WsUpgrade};
use threadnet::{signal, Connection, TcpServer};

/// The largest frame, and the largest message, in bytes.
const LIMIT: usize = 20 * 1024 * 1024;

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            _ => {
                eprintln!("usage: autobahn_server [--addr HOST:PORT]");
                return ExitCode::from(2);
            }
        }
    }

    let codec = WsUpgrade::new().frames(WsCodec::new().max_frame(LIMIT).max_message(LIMIT));
    let started = TcpServer::builder().addr(addr.as_str()).start(
        codec,
        ws::serve(
            |_: &Request| Response::text("a WebSocket echo server\n"),
            |_: &Connection<WsUpgrade>| {
                |conn: &Connection<WsUpgrade>, msg: Message| {
                    if matches!(msg, Message::Text(_) | Message::Binary(_)) {
                        let _ = conn.send(msg.into());
                    }
                }
            },
        ),
    );
    let server = match started {
        Ok(server) => server,
        Err(e) => {
            eprintln!("autobahn_server: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Signal handlers first: the script may send SIGTERM as soon as it reads the line below.
    let stop = match signal::StopOnSignals::new(Duration::from_secs(5)).arm() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("autobahn_server: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", server.local_addr());
    if let Err(e) = stop.run(&server) {
        eprintln!("autobahn_server: cannot handle signals: {e}");
        server.wait();
    }
    ExitCode::SUCCESS
}
