//! A fault-injecting TCP proxy on the command line: [`threadnet::testing::FaultProxy`]
//! between your client and your server, to see how a protocol copes with a slow, choppy or
//! failing network.
//!
//! ```sh
//! cargo run --example echo -- --addr 127.0.0.1:7001 &
//! cargo run --example fault_proxy -- --listen 127.0.0.1:7002 --upstream 127.0.0.1:7001 \
//!     --latency-ms 50 --jitter-ms 10 --down-split 1
//! ```
//!
//! Every fault flag applies to both directions; prefixed with `--up-` it applies only to what
//! clients send (client to server), with `--down-` only to what the server sends back:
//!
//! * `--latency-ms N`: delay every chunk by N ms (order kept).
//! * `--jitter-ms N`: add a random 0..=N ms to each chunk's delay.
//! * `--bandwidth N`: at most N bytes per second.
//! * `--split N`: write in pieces of 1 to N bytes (1: one byte per write).
//! * `--stall-after N`: pass N bytes, then stop reading.
//! * `--reset-after N`: pass N bytes, then reset the connection (an RST to both peers).
//! * `--close-write-after N`: pass N bytes, then half-close toward the receiver.
//!
//! Other flags: `--listen HOST:PORT` (default `127.0.0.1:0`), `--upstream HOST:PORT`
//! (required), `--seed N` (default 0: the same seed makes the same random choices).
//!
//! The first line on stdout is `listening on ADDR`, with the real bound address. The proxy
//! runs until the process is killed (Ctrl-C).

use std::process::ExitCode;
use std::time::Duration;

use threadnet::testing::{FaultProxy, Faults};

const USAGE: &str = "usage: fault_proxy --upstream HOST:PORT [--listen HOST:PORT] [--seed N]
                   [FAULT...]
  --upstream H:P          the server to proxy to (required)
  --listen H:P            where clients connect (default 127.0.0.1:0: a free port)
  --seed N                seed of the random choices (default 0)
faults, for both directions, or with --up-/--down- (e.g. --down-split 1) for one:
  --latency-ms N          delay each chunk by N ms
  --jitter-ms N           add a random 0..=N ms to each delay
  --bandwidth N           at most N bytes per second
  --split N               write in pieces of 1..=N bytes
  --stall-after N         pass N bytes, then stop reading
  --reset-after N         pass N bytes, then reset the connection
  --close-write-after N   pass N bytes, then half-close toward the receiver
runs until killed; prints `listening on ADDR` first";

struct Args {
    listen: String,
    upstream: String,
    seed: u64,
    up: Faults,
    down: Faults,
}

/// Parses the command line: `Ok(None)` for `--help`, `Err` with what is wrong.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut upstream = None;
    let mut seed = 0;
    let (mut up, mut down) = (Faults::new(), Faults::new());
    while let Some(flag) = args.next() {
        if matches!(flag.as_str(), "-h" | "--help") {
            return Ok(None);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--upstream" => upstream = Some(value),
            "--seed" => seed = number(&flag, &value)?,
            _ => {
                let name = flag
                    .strip_prefix("--")
                    .ok_or_else(|| format!("unknown argument {flag:?}"))?;
                let (to_up, to_down, fault) = if let Some(f) = name.strip_prefix("up-") {
                    (true, false, f)
                } else if let Some(f) = name.strip_prefix("down-") {
                    (false, true, f)
                } else {
                    (true, true, name)
                };
                let n = number(&flag, &value)?;
                if to_up {
                    up = apply(up, fault, n).ok_or_else(|| format!("unknown flag {flag:?}"))?;
                }
                if to_down {
                    down = apply(down, fault, n).ok_or_else(|| format!("unknown flag {flag:?}"))?;
                }
            }
        }
    }
    let upstream = upstream.ok_or("--upstream is required")?;
    Ok(Some(Args {
        listen,
        upstream,
        seed,
        up,
        down,
    }))
}

/// `faults` with the fault named `name` set to `n`; `None` for an unknown name.
fn apply(faults: Faults, name: &str, n: u64) -> Option<Faults> {
    Some(match name {
        "latency-ms" => faults.latency(Duration::from_millis(n)),
        "jitter-ms" => faults.jitter(Duration::from_millis(n)),
        "bandwidth" => faults.bandwidth(n.max(1)),
        "split" => faults.split(usize::try_from(n.max(1)).unwrap_or(usize::MAX)),
        "stall-after" => faults.stall_after(n),
        "reset-after" => faults.reset_after(n),
        "close-write-after" => faults.close_write_after(n),
        _ => return None,
    })
}

fn number(flag: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value:?}"))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("fault_proxy: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let proxy = FaultProxy::builder()
        .listen(args.listen.as_str())
        .upstream(args.upstream.as_str())
        .client_to_server(args.up)
        .server_to_client(args.down)
        .seed(args.seed)
        .start();
    let proxy = match proxy {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fault_proxy: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    // println! flushes at the newline when stdout is a terminal, not when it is a pipe.
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "listening on {}", proxy.local_addr())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);
    loop {
        std::thread::park(); // until killed
    }
}
