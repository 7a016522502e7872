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
//! Flags:
//!
//! * `--addr HOST:PORT`: where to listen (default `127.0.0.1:8080`; port 0 picks a free one).
//! * `--frame-timeout SECS`: the longest one request (head and body) may take to arrive once
//!   its first byte has (fractions allowed; `0` turns it off; default: the library's, 30 s).
//!   Time between requests on a kept-alive connection does not count.
//! * `--proxy-protocol`: every connection begins with a PROXY protocol header (v1 or v2) from
//!   a load balancer (HAProxy's `send-proxy-v2`); `/peer` then names the client it relays.
//!   A connection without a valid header within 3 s is closed.
//!
//! The first line on stdout is `listening on ADDR`, with the real bound address; then the
//! server runs until SIGINT or SIGTERM
//! stops it gracefully (exit code 0 once its clients are done; a second signal: at once).

use std::io::{self, Write};
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use threadnet::http::{self, Http1, Request, Response};
use threadnet::{
    activation, signal, ConnOptions, Connection, ServerHandle, TcpServer, DEFAULT_FRAME_TIMEOUT,
};

const USAGE: &str = "usage: http_hello [--addr HOST:PORT] [--frame-timeout SECS] [--proxy-protocol]
  --addr HOST:PORT       listen address (default 127.0.0.1:8080; port 0 picks a free port)
  --frame-timeout SECS   close a connection whose request, once begun, has not fully arrived
                         within SECS (slowloris); 0 = off (default: the library's, 30)
  --proxy-protocol       expect a PROXY protocol header (v1 or v2) on every connection, from a
                         load balancer: /peer then names the client it relays";

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
}

/// Parses the command line: `Ok(None)` for `--help`, `Err` with what is wrong.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        addr: "127.0.0.1:8080".to_string(),
        frame_timeout: DEFAULT_FRAME_TIMEOUT,
        proxy_protocol: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => parsed.addr = value()?,
            "--frame-timeout" => parsed.frame_timeout = seconds(&flag, &value()?)?,
            "--proxy-protocol" => parsed.proxy_protocol = true,
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
    let Args {
        addr,
        frame_timeout,
        proxy_protocol,
    } = match parse_args(std::env::args().skip(1)) {
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
    // Inherited from systemd or from the process handing off to this one, else bound here.
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
