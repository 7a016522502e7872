//! A blocking WebSocket echo client for Autobahn|Testsuite's `fuzzingserver`: asks it how many
//! cases there are, then for each case connects with
//! [`connect_blocking`](threadnet::ws::WsClientBuilder::connect_blocking) and sends every text
//! and binary message back until the connection ends, then asks the server to write its
//! reports. Pings and close frames are answered by the client as it receives them.
//!
//! `--recv` picks how messages are received, to put each of the blocking client's receive
//! methods through the suite:
//!
//! * `recv` (the default): `recv()` in a loop.
//! * `recv-timeout`: `recv_timeout(60 s)` in a loop (a silent minute gives the case up).
//! * `try-recv`: `try_recv()` in a loop, parking 1 ms whenever nothing is there (a silent
//!   minute gives the case up).
//! * `request`: an echo client cannot know whether a message will come, so the first message
//!   of a case is taken with `recv_timeout`, and every echo is sent with `request(echo, 60 s)`,
//!   whose reply is the next message (a ping or a pong, which get no echo, is followed by
//!   `recv_timeout` again).
//!
//! ```sh
//! wstest -m fuzzingserver -s fuzzingserver.json   # listening on ws://127.0.0.1:9001
//! cargo run --release --example autobahn_client -- --url ws://127.0.0.1:9001 --recv try-recv
//! ```
//!
//! `benches/harness/autobahn.sh` does all of it (the suite in a virtualenv, every receive
//! method, the table of results). Flags: `--url URL` (default `ws://127.0.0.1:9001`),
//! `--recv METHOD`, `--agent NAME` (the name in the reports; default `threadnet-METHOD`).

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use threadnet::ws::{Message, WsBlockingClient, WsClient, WsRecvError};

/// The largest frame, and the largest message, in bytes (group 9 sends 16 MiB).
const LIMIT: usize = 20 * 1024 * 1024;
/// How long a receive with a deadline waits.
const WAIT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let (mut url, mut how, mut agent) = ("ws://127.0.0.1:9001".to_string(), None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--url", Some(v)) => url = v,
            ("--recv", Some(v)) => how = Some(v),
            ("--agent", Some(v)) => agent = Some(v),
            _ => return usage(),
        }
    }
    let how = how.unwrap_or_else(|| "recv".into());
    if !["recv", "recv-timeout", "try-recv", "request"].contains(&how.as_str()) {
        return usage();
    }
    let agent = agent.unwrap_or_else(|| format!("threadnet-{how}"));

    let count = match connect(&format!("{url}/getCaseCount")).map(|c| c.recv()) {
        Ok(Ok(Message::Text(n))) => n.parse::<u32>().unwrap_or(0),
        other => {
            eprintln!("autobahn_client: no case count from {url}: {other:?}");
            return ExitCode::FAILURE;
        }
    };
    for case in 1..=count {
        match connect(&format!("{url}/runCase?case={case}&agent={agent}")) {
            Ok(client) => echo(&client, &how),
            Err(e) => eprintln!("autobahn_client: case {case}: {e}"),
        }
    }
    // The server writes its reports, then closes.
    if let Ok(client) = connect(&format!("{url}/updateReports?agent={agent}")) {
        while client.recv().is_ok() {}
    }
    println!("{agent}: {count} cases run");
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: autobahn_client [--url URL] [--agent NAME] \
         [--recv recv|recv-timeout|try-recv|request]"
    );
    ExitCode::from(2)
}

fn connect(url: &str) -> std::io::Result<WsBlockingClient> {
    WsClient::builder()
        .max_frame(LIMIT)
        .max_message(LIMIT)
        .connect_blocking(url)
}

/// The echo of a message: text and binary go back; pings, pongs and close frames were
/// answered by the client already.
fn echo_of(msg: Message) -> Option<Message> {
    match msg {
        m @ (Message::Text(_) | Message::Binary(_)) => Some(m),
        _ => None,
    }
}

/// Whether a receive loop goes on after `e`: after a protocol error (answered by the client
/// with its close frame) it receives on to the end; after the end, or a silent minute, it
/// stops.
fn goes_on(e: &WsRecvError) -> bool {
    matches!(e, WsRecvError::Protocol(_))
}

/// Echoes every message of one case until the connection ends, receiving as `how` says.
fn echo(client: &WsBlockingClient, how: &str) {
    let send_back = |msg| {
        if let Some(m) = echo_of(msg) {
            let _ = client.send(m);
        }
    };
    match how {
        "recv" => loop {
            match client.recv() {
                Ok(msg) => send_back(msg),
                Err(e) if goes_on(&e) => {}
                Err(_) => break,
            }
        },
        "recv-timeout" => loop {
            match client.recv_timeout(WAIT) {
                Ok(msg) => send_back(msg),
                Err(e) if goes_on(&e) => {}
                Err(_) => break,
            }
        },
        "try-recv" => {
            let mut since = Instant::now();
            while since.elapsed() < WAIT {
                match client.try_recv() {
                    Ok(msg) => {
                        send_back(msg);
                        since = Instant::now();
                    }
                    Err(WsRecvError::Timeout) => thread::park_timeout(Duration::from_millis(1)),
                    Err(e) if goes_on(&e) => {}
                    Err(_) => break,
                }
            }
        }
        _ => {
            // request: each echo's reply is the next message.
            let mut next = client.recv_timeout(WAIT);
            loop {
                next = match next {
                    Ok(msg) => match echo_of(msg) {
                        Some(m) => client.request(m, WAIT),
                        None => client.recv_timeout(WAIT),
                    },
                    Err(e) if goes_on(&e) => client.recv_timeout(WAIT),
                    Err(_) => break,
                };
            }
        }
    }
}
