//! The echo server as a service: the frames of `examples/echo.rs` (a 4-byte big-endian
//! length, then that many payload bytes, at most 1 MiB: the codec's default; a longer length
//! closes the connection as soon as its header is read, before anything is allocated for it),
//! with what running it in production takes: goes' command line (start in the background,
//! stop, reload, status), a pid file, hand-off to a new copy on SIGUSR2 without closing the
//! port, worker processes sharing the port, socket activation, idle and frame timeouts, and a
//! metrics endpoint. The server itself is the same dozen lines as `examples/echo.rs`; the rest
//! is its command line and operations.
//!
//! This is the server the comparison harness (`benches/harness/run.sh`) drives beside
//! `std-echo` and `tokio-echo`.
//!
//! ```sh
//! cargo run --release --example echo_service -- --addr 127.0.0.1:0   # in the foreground
//!
//! cargo build --release --example echo_service && cd target/release/examples
//! ./echo_service start -d --addr 127.0.0.1:7001 --metrics-addr 127.0.0.1:9100
//!                               # background: returns once it serves (exit 0; 4 if one runs)
//! ./echo_service status         # "running: pid 4242, up 17s", exit 0; 3 if none runs
//! curl http://127.0.0.1:9100/metrics                    # Prometheus text
//! ./echo_service reload         # SIGUSR2: a new copy takes the port, no connection refused
//! ./echo_service stop           # SIGTERM: graceful stop, waits for the exit; 3 if none runs
//! ./echo_service start -d --workers 4 --addr 127.0.0.1:7001   # 4 processes, one port
//! ```
//!
//! Commands (goes' command line, [`threadnet::control`]), before the flags; without one it
//! serves in the foreground as `start` does:
//!
//! * `start [FLAGS]`: serve in the foreground.
//! * `start -d [FLAGS]`: serve in the background (a new session, stdout and stderr appended to
//!   the log file); returns once the server is ready. Exit code 4 if one runs already.
//!   With `--workers N`, N processes share the port (`SO_REUSEPORT`), worker `i` writing its
//!   pid to the pid file's path with `.i` appended, under a supervisor (its pid in the pid
//!   file) that restarts a worker that ends and gives up on one that keeps crashing;
//!   `stop`, `reload` and `status` act on all. Exit code 4 also while another `start -d`
//!   runs.
//! * `stop [--pid-file PATH]`: SIGTERM, wait for the exit. Exit code 3 if none runs.
//! * `reload [--pid-file PATH]`: SIGUSR2 (the hand-off below), wait for the new pid.
//! * `status [--pid-file PATH] [--metrics-addr HOST:PORT]`: exit code 0 and the pid and
//!   uptime if running, else 3 (1 if a worker is down: `down: worker i (why)`); with the
//!   server's metrics address, its metrics snapshot too.
//!
//! With a command, the pid file defaults to `echo_service.pid` in the current directory.
//!
//! Flags:
//!
//! * `--addr HOST:PORT`: where to listen (default `127.0.0.1:7001`; port 0 picks a free one).
//! * `--max-connections N`: connections open at once (default 16384, enough for the peers'
//!   idle phase with 10 000 connections).
//! * `--stack-kib N`: stack of each connection thread in KiB (default: the crate's, 128 KiB;
//!   0 means std's default, 2 MiB).
//! * `--idle-timeout SECS`: close a connection whose client has sent nothing for SECS seconds
//!   (fractions allowed; off by default).
//! * `--frame-timeout SECS`: close a connection whose client has begun a frame and not
//!   finished it within SECS seconds: a peer that trickles a frame byte by byte (slowloris),
//!   which `--idle-timeout` never catches (fractions allowed; `0` turns it off; default: the
//!   library's, 30 s). Time between frames does not count.
//! * `--pid-file PATH`: write the process id there (atomically), remove it on exit.
//! * `--workers N`: with `start -d`, run N processes on the same port, the kernel spreading
//!   connections among them (default 1). Give a fixed `--addr` port: with port 0 each would
//!   pick its own. With `--metrics-addr`, they share that port too: any one of them answers.
//! * `--log-file PATH`: where `start -d` appends stdout and stderr (default: the pid file's
//!   path with the extension `log`, `echo_service.log`).
//! * `--metrics-addr HOST:PORT`: also serve the server's counters at `/metrics` there, in the
//!   Prometheus text format, over threadnet's own HTTP codec.
//!
//! The first line on stdout is `listening on ADDR`, with the real bound address; with
//! `--metrics-addr`, the second is `metrics on ADDR`. Then the
//! server runs until a signal:
//!
//! * SIGINT or SIGTERM: stop gracefully. The server stops accepting, every connection gets
//!   what is queued for it and then a FIN, and the process exits with code 0 once its clients
//!   have closed (or after 10 s). A second SIGINT/SIGTERM closes what is left at once.
//! * SIGUSR2: hand off to a new copy of itself. The new process inherits the listening socket
//!   (fd 3, `LISTEN_FDS=1`), prints its own `listening on` line, writes its pid to the pid
//!   file; then this one stops accepting, lets its connections finish (up to a minute) and
//!   exits. The port never closes, so no connection attempt is refused.
//! * SIGHUP: nothing to reload; it is logged and ignored.
//!
//! Started with an inherited listener (systemd socket activation, or the hand-off above), it
//! serves on that and ignores `--addr`; `examples/systemd/` has the units.

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use threadnet::activation::{self, Inherited, PidFile};
use threadnet::control;
use threadnet::metrics::serve_prometheus;
use threadnet::signal::StopOnSignals;
use threadnet::{
    codec::LengthDelimited, idle::DEFAULT_FRAME_TIMEOUT, ConnOptions, Connection, TcpServer,
};

const USAGE: &str = "usage: echo_service [start [-d] | stop | reload | status] [FLAGS]
  (no command)           serve in the foreground, as `start`
  start                  serve in the foreground; refused if the pid file names a running
                         echo_service
  start -d               serve in the background, output appended to the log file; returns
                         once it is ready (exit 0), 4 if one runs already, 1 if it failed
  start -d --workers N   N processes sharing the port (SO_REUSEPORT); pid files PID_FILE.1..N;
                         a supervisor (PID_FILE) restarts a worker that ends
  stop                   SIGTERM, wait for it (all workers) to exit: 0, 3 if none runs, 1 if
                         it did not exit
  reload                 SIGUSR2: hand off to a new copy (worker by worker), the port stays
                         open: 0, 3, 1
  status                 0 and pid and uptime of each process if running, 3 if not, 1 if
                         a worker is down; with --metrics-addr, the metrics snapshot
flags: [--addr HOST:PORT] [--max-connections N] [--stack-kib N] [--idle-timeout SECS]
       [--frame-timeout SECS] [--pid-file PATH] [--log-file PATH] [--workers N]
       [--metrics-addr HOST:PORT]
  --addr HOST:PORT       listen address (default 127.0.0.1:7001; port 0 picks a free port)
  --max-connections N    most connections open at once (default 16384)
  --stack-kib N          connection thread stack in KiB (default: the crate's, 128;
                         0 = std's default, 2 MiB)
  --idle-timeout SECS    close a connection whose client sent nothing for SECS (default: off)
  --frame-timeout SECS   close a connection whose client began a frame and did not finish it
                         within SECS (slowloris); 0 = off (default: the library's, 30)
  --pid-file PATH        write the pid to PATH, remove it on exit (default with a command:
                         echo_service.pid)
  --workers N            with start -d: N processes on the same (fixed) port (default 1)
  --log-file PATH        where start -d appends stdout and stderr (default: the pid file's
                         path with the extension .log)
  --metrics-addr H:P     serve Prometheus metrics at http://H:P/metrics
signals: INT/TERM stop gracefully (twice: at once), USR2 hands off to a new copy, HUP is ignored";

/// How long connections get to finish after SIGINT/SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long connections get to finish after a hand-off (goes waits a minute too).
const HANDOFF_DEADLINE: Duration = Duration::from_secs(60);

/// std's default thread stack, used for `--stack-kib 0` as `std-echo` does.
const STD_STACK: usize = 2 * 1024 * 1024;

struct Args {
    addr: String,
    max_connections: usize,
    stack_bytes: Option<usize>,
    idle_timeout: Option<Duration>,
    frame_timeout: Duration,
    pid_file: Option<String>,
    log_file: Option<String>,
    workers: usize,
    metrics_addr: Option<String>,
}

/// Parses the command line: `Ok(None)` for `--help`, `Err` with what is wrong.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        addr: "127.0.0.1:7001".to_string(),
        max_connections: 16_384,
        stack_bytes: None,
        idle_timeout: None,
        frame_timeout: DEFAULT_FRAME_TIMEOUT,
        pid_file: None,
        log_file: None,
        workers: 1,
        metrics_addr: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => parsed.addr = value()?,
            "--max-connections" => parsed.max_connections = number(&flag, &value()?)?,
            "--stack-kib" => {
                let kib = number(&flag, &value()?)?;
                let bytes = match kib {
                    0 => STD_STACK,
                    _ => kib
                        .checked_mul(1024)
                        .ok_or_else(|| format!("{flag}: too large: {kib}"))?,
                };
                parsed.stack_bytes = Some(bytes);
            }
            "--idle-timeout" => parsed.idle_timeout = Some(seconds(&flag, &value()?)?),
            "--frame-timeout" => parsed.frame_timeout = seconds_or_zero(&flag, &value()?)?,
            "--pid-file" => parsed.pid_file = Some(value()?),
            "--log-file" => parsed.log_file = Some(value()?),
            "--workers" => parsed.workers = number(&flag, &value()?)?,
            "--metrics-addr" => parsed.metrics_addr = Some(value()?),
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(Some(parsed))
}

fn number(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value:?}"))
}

/// A positive number of seconds, fractions allowed.
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    match seconds_or_zero(flag, value) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "{flag}: not a positive number of seconds: {value:?}"
        )),
    }
}

/// A number of seconds, fractions allowed, zero included.
fn seconds_or_zero(flag: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{flag}: not a number of seconds: {value:?}"))
}

fn main() -> ExitCode {
    let (command, flags) = control::Command::split(std::env::args().skip(1));
    let mut args = match parse_args(flags.iter().cloned()) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("echo_service: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    // goes' commands. A command without --pid-file uses echo_service.pid; no command and no pid
    // file serves as before, with nothing to check.
    if command.is_some() && args.pid_file.is_none() {
        args.pid_file = Some("echo_service.pid".to_string());
    }
    if let Some(pid_file) = &args.pid_file {
        let mut control = control::Control::new(pid_file).workers(args.workers);
        if let Some(log) = &args.log_file {
            control = control.log_file(log);
        }
        if let Some(addr) = &args.metrics_addr {
            control = control.metrics_addr(addr); // status prints the snapshot
        }
        let command = command.unwrap_or(control::Command::Start);
        if let control::Outcome::Exit(code) = control.run(command, &flags) {
            return ExitCode::from(code);
        }
        // A worker writes its own pid file (echo_service.pid.1, …).
        args.pid_file = Some(control.pid_path().to_string_lossy().into_owned());
    }

    // Zero turns the frame timeout off.
    let mut options = ConnOptions::new().frame_timeout(args.frame_timeout);
    if let Some(bytes) = args.stack_bytes {
        options = options.stack_size(bytes);
    }
    if let Some(timeout) = args.idle_timeout {
        // Closed with CloseReason::IdleTimeout; the timing wheel does the watching.
        options = options.read_idle(timeout);
    }

    // Inherited (systemd, or the process handing off to this one: the main listener first,
    // then the metrics one), else bound here.
    let (listener, metrics_listener) = match listen(&args) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("echo_service: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = TcpServer::builder()
        .listener(match listener.try_clone() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("echo_service: {e}");
                return ExitCode::FAILURE;
            }
        })
        .max_connections(args.max_connections)
        .options(options)
        .start(LengthDelimited::new(), |_: &Connection<LengthDelimited>| {
            // One handler per connection; this one has no state, so a closure does.
            |conn: &Connection<LengthDelimited>, frame: Vec<u8>| {
                // `send` from the reader thread writes through when nothing is queued. If the
                // peer stops reading for the whole send timeout the frame cannot be queued
                // either: give up on that peer rather than on its frames one by one.
                if let Err(e) = conn.send(frame) {
                    if e.is_timeout() {
                        conn.close();
                    }
                }
            }
        });
    let server = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("echo_service: cannot serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The signal handlers go in before the line below: a script may send a signal as soon
    // as it has read it.
    let stop = StopOnSignals::new(STOP_DEADLINE)
        .on_reload(|| eprintln!("echo_service: SIGHUP: nothing to reload"))
        .hand_off(
            HANDOFF_DEADLINE,
            &[Some(&listener), metrics_listener.as_ref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        )
        .and_then(StopOnSignals::arm);
    drop(listener); // the server and the hand-off hold their own
    let stop = match stop {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("echo_service: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };

    // The counters, served over HTTP; it stops with the process.
    let metrics = match metrics_listener {
        None => None,
        Some(l) => {
            let watched = server.clone();
            match serve_prometheus(l, move || watched.metrics().to_prometheus()) {
                Ok(m) => Some(m),
                Err(e) => {
                    eprintln!("echo_service: cannot serve metrics: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };

    // After everything else that can fail: a process a hand-off started and then gave up on
    // must not have replaced the pid file. Before the announcement, which scripts wait for. Removed when main returns, unless a newer process
    // has written its own pid there.
    let _pid_file = match args.pid_file.as_deref().map(PidFile::create).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("echo_service: cannot write the pid file: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Scripts wait for this line to learn the port, so it goes out at once.
    let mut stdout = std::io::stdout().lock();
    let announced = writeln!(stdout, "listening on {}", server.local_addr())
        .and_then(|()| match &metrics {
            Some(m) => writeln!(stdout, "metrics on {}", m.local_addr()),
            None => Ok(()),
        })
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = announced {
        eprintln!("echo_service: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }

    // Tells systemd (Type=notify) or the process handing off to this one that it serves.
    if let Err(e) = activation::notify_ready() {
        eprintln!("echo_service: cannot notify readiness: {e}");
    }

    let stopped = stop.run(&server);
    if let Err(e) = stopped {
        eprintln!("echo_service: cannot handle signals: {e}");
        server.wait();
    }
    ExitCode::SUCCESS
}

/// The listeners to serve on: those inherited (from systemd, or from the process handing off
/// to this one, which passes the main one first and the metrics one second), else new ones
/// bound to `--addr` and `--metrics-addr`: with `SO_REUSEPORT` in a worker process, which
/// shares them with its siblings.
fn listen(args: &Args) -> std::io::Result<(TcpListener, Option<TcpListener>)> {
    let mut inherited = activation::listeners()?
        .into_iter()
        .filter_map(Inherited::into_tcp);
    let bind = |addr: &str| match control::worker() {
        Some(_) => TcpServer::bind_reuse_port(addr),
        None => TcpListener::bind(addr),
    };
    let main = match inherited.next() {
        Some(l) => l,
        None => bind(&args.addr)?,
    };
    let metrics = match &args.metrics_addr {
        None => None,
        Some(addr) => Some(match inherited.next() {
            Some(l) => l,
            None => bind(addr)?,
        }),
    };
    Ok((main, metrics))
}
