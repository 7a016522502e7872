//! A small HTTP/1.1 server: an HTML page, a JSON endpoint, an echo endpoint for uploads and a
//! chunked response, on the [`Http1`] codec and [`http::serve`].
//!
//! ```sh
//! cargo run --release --example http_hello -- --addr 127.0.0.1:8080
//! curl http://127.0.0.1:8080/ http://127.0.0.1:8080/json           # one connection, kept alive
//! curl --data-binary @Cargo.toml -H 'Transfer-Encoding: chunked' http://127.0.0.1:8080/echo
//! wrk -t2 -c50 -d10s --latency http://127.0.0.1:8080/
//! ```
//!
//! | route | methods | answer |
//! |---|---|---|
//! | `/` | GET, HEAD | a small HTML page |
//! | `/json` | GET, HEAD | `{"hello":"world"}` |
//! | `/echo` | POST, PUT | the request body, as `application/octet-stream` |
//! | `/chunked` | GET, HEAD | a text body sent with `Transfer-Encoding: chunked` |
//! | `/peer` | GET, HEAD | `peer ADDR` (the client, as the server sees it) and `proxied_by ADDR` (the load balancer, or `-`) |
//!
//! Other paths get 404, other methods 405. Malformed or oversized requests are refused by the
//! codec (400, 413, 414, 431, 501, 505) and the connection closes: the codec's defaults allow
//! a head of 8 KiB and 100 headers, and a body of 1 MiB (a larger `Content-Length` gets 413
//! before any of the body is read). A connection that sends nothing for 60 s (an idle
//! keep-alive, or a request stalled halfway) is closed by the timing wheel, and so is one whose
//! request takes longer than `--frame-timeout` to arrive once its first byte has, however
//! steadily it trickles (slowloris).
//!
//! Commands (goes' command line, [`threadnet::control`]), before the flags; without one it
//! serves in the foreground as `start` does. With a command, the pid file defaults to
//! `http_hello.pid` in the current directory.
//!
//! * `start [FLAGS]`: serve in the foreground; exit code 4 if one runs already.
//! * `start -d [FLAGS]`: serve in the background (a new session, stdout and stderr appended to
//!   the log file); returns once the server is ready. With `--workers N`, N processes share
//!   the port (`SO_REUSEPORT`).
//! * `stop`: SIGTERM to every process, wait for their exit; exit code 3 if none runs.
//! * `reload`: SIGUSR2 (hand off to a new copy, the port stays open), worker by worker.
//! * `status`: exit code 0 and each process's pid and uptime if running, else 3.
//!
//! Flags:
//!
//! * `--addr HOST:PORT`: where to listen (default `127.0.0.1:8080`; port 0 picks a free one).
//! * `--pid-file PATH`: write the process id there (atomically), remove it on exit.
//! * `--log-file PATH`: where `start -d` appends stdout and stderr (default: the pid file's
//!   path with the extension `log`).
//! * `--workers N`: with `start -d`, N processes on the same (fixed) port (default 1).
//! * `--frame-timeout SECS`: the longest one request (head and body) may take to arrive once
//!   its first byte has (fractions allowed; `0` turns it off; default: the library's, 30 s).
//!   Time between requests on a kept-alive connection does not count.
//! * `--proxy-protocol`: every connection begins with a PROXY protocol header (v1 or v2) from
//!   a load balancer (HAProxy's `send-proxy-v2`); `/peer` then names the client it relays.
//!   A connection without a valid header within 3 s is closed.
//!
//! The first line on stdout is `listening on ADDR`, with the real bound address; then the
//! server runs until SIGINT or SIGTERM
//! stops it gracefully (exit code 0 once its clients are done; a second signal: at once), or
//! SIGUSR2 hands the listener to a new copy of itself.

use std::io::{self, Write};
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use threadnet::http::{self, Http1, Request, Response};
use threadnet::{
    activation, control, idle::DEFAULT_FRAME_TIMEOUT, signal, ConnOptions, Connection,
    ServerHandle, TcpServer,
};

const USAGE: &str = "usage: http_hello [start [-d] | stop | reload | status] [FLAGS]
  (no command)           serve in the foreground, as `start`
  start                  serve in the foreground; 4 if the pid file names a running http_hello
  start -d               serve in the background, output appended to the log file; returns
                         once it is ready (exit 0), 4 if one runs already, 1 if it failed
  start -d --workers N   N processes sharing the port (SO_REUSEPORT); pid files PID_FILE.1..N
  stop                   SIGTERM, wait for every process to exit: 0, 3 if none runs, 1 if not
  reload                 SIGUSR2: hand off to a new copy, the port stays open: 0, 3, 1
  status                 0 and pid and uptime of each process if running, 3 if not
flags: [--addr HOST:PORT] [--frame-timeout SECS] [--proxy-protocol] [--pid-file PATH]
       [--log-file PATH] [--workers N]
  --addr HOST:PORT       listen address (default 127.0.0.1:8080; port 0 picks a free port)
  --frame-timeout SECS   close a connection whose request, once begun, has not fully arrived
                         within SECS (slowloris); 0 = off (default: the library's, 30)
  --proxy-protocol       expect a PROXY protocol header (v1 or v2) on every connection, from a
                         load balancer: /peer then names the client it relays
  --pid-file PATH        write the pid to PATH, remove it on exit (default with a command:
                         http_hello.pid)
  --log-file PATH        where start -d appends stdout and stderr (default: the pid file's
                         path with the extension .log)
  --workers N            with start -d: N processes on the same (fixed) port (default 1)";

/// The page served at `/`.
pub const PAGE: &str = "<!doctype html>
<html>
<head><meta charset=\"utf-8\"><title>threadnet</title></head>
<body>
<h1>Hello from threadnet</h1>
<p>One reader thread per connection, a bounded send queue, and the Http1 codec.</p>
<p>Try <a href=\"/json\">/json</a>.</p>
</body>
</html>
";

/// The body served at `/json`.
pub const JSON: &str = "{\"hello\":\"world\"}";

/// Answers one request. Runs on the connection's reader thread.
pub fn route(req: &Request) -> Response {
    let method = req.method();
    let get = method == "GET" || method == "HEAD";
    match req.path() {
        "/" if get => Response::html(PAGE),
        "/json" if get => Response::json(JSON),
        "/chunked" if get => Response::text("").chunks(vec![
            b"chunked ".to_vec(),
            b"hello ".to_vec(),
            b"from threadnet\n".to_vec(),
        ]),
        "/echo" if method == "POST" || method == "PUT" => Response::new(200)
            .header("Content-Type", "application/octet-stream")
            .body(req.body()),
        "/" | "/json" | "/chunked" => not_allowed("GET, HEAD"),
        "/echo" => not_allowed("POST, PUT"),
        _ => Response::new(404)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body("not found\n"),
    }
}

fn not_allowed(allow: &'static str) -> Response {
    Response::new(405)
        .header("Allow", allow)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("method not allowed\n")
}

/// How long connections get to finish after SIGINT/SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long connections get to finish after a SIGUSR2 hand-off.
const HANDOFF_DEADLINE: Duration = Duration::from_secs(60);

/// How long a kept-alive connection may send nothing before it is closed: it frees the thread
/// of an idle keep-alive client, and of a client that never finishes its request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the server on `addr`, with the library's frame timeout (the integration tests
/// start it this way).
///
/// # Errors
///
/// Binding `addr` fails.
pub fn start(addr: &str) -> io::Result<ServerHandle<Http1>> {
    serve(TcpListener::bind(addr)?, DEFAULT_FRAME_TIMEOUT)
}

/// Starts the server on `listener` (what `main` runs, with an inherited listener if any),
/// closing a connection whose request takes longer than `frame_timeout` to arrive once begun
/// (`Duration::ZERO`: never) or that sends nothing for [`IDLE_TIMEOUT`].
///
/// # Errors
///
/// The server's threads cannot be started.
pub fn serve(listener: TcpListener, frame_timeout: Duration) -> io::Result<ServerHandle<Http1>> {
    serve_with(listener, frame_timeout, false)
}

/// As [`serve`], and with `proxy_protocol` every connection must begin with a PROXY protocol
/// header, whose client `/peer` then names.
///
/// # Errors
///
/// The server's threads cannot be started.
pub fn serve_with(
    listener: TcpListener,
    frame_timeout: Duration,
    proxy_protocol: bool,
) -> io::Result<ServerHandle<Http1>> {
    let options = ConnOptions::new()
        .read_idle(IDLE_TIMEOUT)
        .frame_timeout(frame_timeout);
    TcpServer::builder()
        .listener(listener)
        .options(options)
        .proxy_protocol(proxy_protocol)
        .start(Http1::new(), |conn: &Connection<Http1>| {
            // The connection's addresses, for `/peer`: known before its first request.
            let via = conn.proxied_by().map_or("-".to_string(), |a| a.to_string());
            let peer = format!("peer {}\nproxied_by {via}\n", conn.peer_addr());
            http::serve(move |req: &Request| {
                let get = req.method() == "GET" || req.method() == "HEAD";
                match req.path() {
                    "/peer" if get => Response::text(peer.as_str()),
                    "/peer" => not_allowed("GET, HEAD"),
                    _ => route(req),
                }
            })(conn)
        })
}

/// The command line.
struct Args {
    addr: String,
    frame_timeout: Duration,
    proxy_protocol: bool,
    pid_file: Option<String>,
    log_file: Option<String>,
    workers: usize,
}

/// Parses the command line: `Ok(None)` for `--help`, `Err` with what is wrong.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        addr: "127.0.0.1:8080".to_string(),
        frame_timeout: DEFAULT_FRAME_TIMEOUT,
        proxy_protocol: false,
        pid_file: None,
        log_file: None,
        workers: 1,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => parsed.addr = value()?,
            "--frame-timeout" => parsed.frame_timeout = seconds(&flag, &value()?)?,
            "--proxy-protocol" => parsed.proxy_protocol = true,
            "--pid-file" => parsed.pid_file = Some(value()?),
            "--log-file" => parsed.log_file = Some(value()?),
            "--workers" => {
                let n = value()?;
                parsed.workers = n
                    .parse()
                    .map_err(|_| format!("{flag}: not a number: {n:?}"))?;
            }
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(Some(parsed))
}

/// A number of seconds, fractions allowed, zero included.
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{flag}: not a number of seconds: {value:?}"))
}

fn main() -> ExitCode {
    let (command, flags) = control::Command::split(std::env::args().skip(1));
    let Args {
        addr,
        frame_timeout,
        proxy_protocol,
        mut pid_file,
        log_file,
        workers,
    } = match parse_args(flags.iter().cloned()) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("http_hello: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // goes' commands (see the module docs); only `start` comes back here to serve.
    if command.is_some() && pid_file.is_none() {
        pid_file = Some("http_hello.pid".to_string());
    }
    if let Some(path) = &pid_file {
        let mut control = control::Control::new(path).workers(workers);
        if let Some(log) = &log_file {
            control = control.log_file(log);
        }
        let command = command.unwrap_or(control::Command::Start);
        if let control::Outcome::Exit(code) = control.run(command, &flags) {
            return ExitCode::from(code);
        }
        pid_file = Some(control.pid_path().to_string_lossy().into_owned()); // a worker's own
    }

    // Inherited from systemd or from the process handing off to this one, else bound here
    // (with SO_REUSEPORT in a worker process).
    let listener = match activation::tcp_listener(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("http_hello: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match listener
        .try_clone()
        .and_then(|l| serve_with(l, frame_timeout, proxy_protocol))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("http_hello: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };

    // The signal handlers go in before the line below: a script may send a signal as soon
    // as it has read it.
    // SIGUSR2 hands the listener to a new copy of this program, then drains.
    let stop = signal::StopOnSignals::new(STOP_DEADLINE)
        .hand_off(HANDOFF_DEADLINE, &[&listener])
        .and_then(signal::StopOnSignals::arm);
    drop(listener);
    let stop = match stop {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("http_hello: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Removed when main returns, unless a newer process has written its own pid there.
    let _pid_file = match pid_file
        .as_deref()
        .map(activation::PidFile::create)
        .transpose()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("http_hello: cannot write the pid file: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Scripts wait for this line to learn the port, so it goes out at once.
    let mut stdout = io::stdout().lock();
    let announced =
        writeln!(stdout, "listening on {}", server.local_addr()).and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = announced {
        eprintln!("http_hello: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }

    // Tells systemd (Type=notify) or the process handing off to this one that it serves.
    if let Err(e) = activation::notify_ready() {
        eprintln!("http_hello: cannot notify readiness: {e}");
    }

    // SIGINT/SIGTERM stop the server gracefully (a second one: at once), then exit code 0.
    if let Err(e) = stop.run(&server) {
        eprintln!("http_hello: cannot handle signals: {e}");
        server.wait();
    }
    ExitCode::SUCCESS
}
