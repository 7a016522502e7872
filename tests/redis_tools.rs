//! The real Redis tools against the `kv_server` example: `redis-cli` checks the answers to
//! each command, `redis-benchmark` drives it with 50 clients, plain and pipelined.
//!
//! The tools come from the Debian package `redis-tools`. They are required: if they are
//! missing the tests fail and say how to install them, they are never skipped.
//!
//! The server runs in this process: the example's source is included as a module and its
//! `start` is called. Spawning the example binary instead would test an artefact that
//! `cargo test --test redis_tools` does not build (examples are built only by a plain
//! `cargo test`), and that could be stale; in-process, the code under test is always the
//! current code, the server gets a free port with no output to parse, and it is stopped and
//! joined by the test even when an assertion fails. The tools are still separate processes
//! that reach it over real TCP. What the binary adds, its flags and its `listening on` line,
//! is the same code as every other example's.

#[path = "../examples/kv_server.rs"]
#[allow(dead_code)]
mod kv_server;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use threadnet::{codec::RespCommands, ServerHandle};

/// The longest any one tool run may take before the test fails.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// The path of a `redis-tools` program, or a failure that says how to get it.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH: these tests need the Debian package redis-tools \
                 (apt-get install -y redis-tools)"
            )
        })
}

/// Runs `name args...` with `stdin` as its input and returns what it printed; kills it and
/// fails the test if it has not finished within [`TOOL_TIMEOUT`].
fn run(name: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(tool(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    // Written from a thread (and then closed), so a tool that answers before it has read all
    // its input cannot deadlock with us.
    let feeder = thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    // Each pipe is read to its end on a thread; both ends mean the tool has finished.
    let (tx, rx) = mpsc::channel();
    let pipes: [(bool, Box<dyn Read + Send>); 2] = [
        (true, Box::new(child.stdout.take().unwrap())),
        (false, Box::new(child.stderr.take().unwrap())),
    ];
    for (is_stdout, mut pipe) in pipes {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send((is_stdout, bytes));
        });
    }
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((true, bytes)) => stdout = bytes,
            Ok((false, bytes)) => stderr = bytes,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} {args:?} took more than {TOOL_TIMEOUT:?}");
            }
        }
    }
    let status = child.wait().unwrap();
    feeder.join().unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// A `kv_server` on a free port, and its port as a string for the tools' `-p`.
fn server() -> (ServerHandle<RespCommands>, String) {
    let server = kv_server::start("127.0.0.1:0", 16, 256).unwrap();
    let port = server.local_addr().as_inet().unwrap().port().to_string();
    (server, port)
}

/// Runs commands through `redis-cli`, one per line, and returns its output lines. `--no-raw`
/// keeps the types visible: `(integer) 1`, `(nil)`, `(error) ...`, `"quoted"` strings.
fn cli(port: &str, commands: &str) -> Vec<String> {
    let out = run(
        "redis-cli",
        &["-h", "127.0.0.1", "-p", port, "--no-raw"],
        commands,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "redis-cli failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

#[test]
fn redis_cli_gets_the_answers_redis_gives() {
    let (_server, port) = server();
    let commands = "\
PING
SET greeting hello
GET greeting
GET missing
INCR counter
INCR counter
INCR greeting
EXPIRE greeting 100
TTL greeting
TTL counter
TTL missing
EXISTS greeting counter missing
KEYS gr*
DEL greeting
GET greeting
ECHO \"two words\"
SET temp 1 PX 100000
PTTL temp
nosuchcommand arg
GET
CONFIG GET appendonly
FLUSHALL
DBSIZE
";
    let want = [
        "PONG",
        "OK",
        "\"hello\"",
        "(nil)",
        "(integer) 1",
        "(integer) 2",
        "(error) ERR value is not an integer or out of range",
        "(integer) 1",
        "(integer) 100",
        "(integer) -1",
        "(integer) -2",
        "(integer) 2",
        "1) \"greeting\"",
        "(integer) 1",
        "(nil)",
        "\"two words\"", // redis-cli parses the quotes and sends one argument
        "OK",
        "PTTL",
        "(error) ERR unknown command 'nosuchcommand', with args beginning with: 'arg' ",
        "(error) ERR wrong number of arguments for 'get' command",
        "1) \"appendonly\"",
        "2) \"no\"",
        "OK",
        "(integer) 0",
    ];
    let got = cli(&port, commands);
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (line, (got, want)) in got.iter().zip(want).enumerate() {
        if want == "PTTL" {
            let ms: i64 = got.strip_prefix("(integer) ").unwrap().parse().unwrap();
            assert!((90_000..=100_000).contains(&ms), "PTTL {got}");
        } else {
            assert_eq!(got, want, "line {line}: {got:#?}");
        }
    }
}

#[test]
fn redis_cli_quit_and_a_second_session_see_the_same_store() {
    let (_server, port) = server();
    // redis-cli ends a session at QUIT (it prints nothing for it, with redis-server too), so
    // the SET after it is never sent.
    assert_eq!(cli(&port, "SET shared 41\nQUIT\nSET shared 0\n"), ["OK"]);
    assert_eq!(cli(&port, "INCR shared\n"), ["(integer) 42"]);
}

/// The `NAME: N requests per second, ...` lines of a `redis-benchmark -q` run, as (NAME, N).
/// Progress lines, overwritten with `\r` on a terminal, say `rps=` instead and are skipped.
fn rates(stdout: &str) -> Vec<(String, f64)> {
    stdout
        .split(['\r', '\n'])
        .filter_map(|line| {
            let (name, rest) = line.trim().split_once(": ")?;
            let (n, _) = rest.split_once(" requests per second")?;
            Some((name.to_string(), n.parse().ok()?))
        })
        .collect()
}

fn benchmark(port: &str, extra: &[&str]) -> Vec<(String, f64)> {
    let mut args = vec!["-h", "127.0.0.1", "-p", port, "-q"];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let out = run("redis-benchmark", &args, "");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "redis-benchmark {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let rates = rates(&stdout);
    eprintln!(
        "redis-benchmark {extra:?} in {:?}: {rates:?}",
        started.elapsed()
    );
    rates
}

fn assert_rates(rates: &[(String, f64)], names: &[&str]) {
    let got: Vec<&str> = rates.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got, names, "{rates:?}");
    for (name, rps) in rates {
        assert!(*rps > 0.0, "{name}: {rps} requests per second");
    }
}

#[test]
fn redis_benchmark_ping_set_get() {
    let (server, port) = server();
    let rates = benchmark(&port, &["-t", "ping,set,get", "-n", "20000"]);
    assert_rates(&rates, &["PING_INLINE", "PING_MBULK", "SET", "GET"]);
    // SET really ran: the benchmark's key holds its 3-byte value (random letters).
    let value = cli(&port, "GET key:__rand_int__\n");
    assert!(value.len() == 1 && value[0].len() == 5, "{value:?}");
    // 50 clients (the default) for each of the four tests.
    assert!(
        server.metrics().connections_accepted >= 4 * 50,
        "{}",
        server.metrics().connections_accepted
    );
}

#[test]
fn redis_benchmark_pipelined_with_random_keys() {
    let (_server, port) = server();
    // 16 commands per write (the replies come back gathered), keys from a space of 1000.
    let rates = benchmark(
        &port,
        &[
            "-t",
            "set,get,incr",
            "-n",
            "20000",
            "-P",
            "16",
            "-r",
            "1000",
            "-d",
            "100",
        ],
    );
    assert_rates(&rates, &["SET", "GET", "INCR"]);
    let keys: usize = cli(&port, "DBSIZE\n")[0]
        .strip_prefix("(integer) ")
        .unwrap()
        .parse()
        .unwrap();
    // `key:N` for SET and GET, `counter:N` for INCR, N < 1000: 20 000 draws hit nearly all.
    assert!((1990..=2000).contains(&keys), "{keys} keys");
}
