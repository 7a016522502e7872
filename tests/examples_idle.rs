//! Every example server, run as a process as a user runs it, keeps a connection that says
//! nothing for longer than any internal poll interval or tick (2 s), and answers on it
//! afterwards; `echo_service` and `http_hello` do so however they get their listener: bound by
//! themselves, by socket activation, from a parent that left hostile options on the listener
//! (20 ms SO_RCVTIMEO/SO_SNDTIMEO, O_NONBLOCK, SO_LINGER 0), and after a SIGUSR2 hand-off.
//! An idle limit closes a quiet connection after its limit and not before.
//!
//! The bug this guards against: with an inherited listener, every example closed any
//! connection silent for 100 ms (the listener's polled-accept SO_RCVTIMEO was inherited by the
//! accepted sockets), and all 340 tests passed, since none kept a connection quiet.
//!
//! The tests sleep on purpose: silence is what they test. They run in parallel (about 4 s of
//! wall time in all).

mod common;
#[path = "common/proc_stats.rs"]
mod proc_stats;
#[path = "common/process.rs"]
mod process;
#[path = "common/raw.rs"]
mod raw;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use process::{example_binary, kill, poll_until, Example, CHILD_WAIT};
use raw::{HttpClient, Reply, RespClient};
use threadnet::activation;

/// Longer than every poll interval and tick in the crate (accept poll 100 ms, Unix accept
/// 50 ms, UDP recheck 250 ms, write slice 50 ms, wheel ticks) many times over.
const SILENCE: Duration = Duration::from_millis(2100);

/// An address no test can bind: passed as `--addr` where the inherited listener must be used.
const UNBINDABLE: &str = "192.0.2.1:1";

/// How a server process gets its listener.
#[derive(Clone, Copy, Debug)]
enum Listener {
    /// `--addr 127.0.0.1:0`.
    Bound,
    /// A plain listener as fd 3 (`activation::listen_command`).
    Activated,
    /// A listener with hostile options as fd 3 (`tests/common/hostile_listener.py`).
    Hostile,
}

/// Starts example `name` with its listener got the `how` way; returns it and its address.
fn start(name: &str, how: Listener, args: &[&str]) -> (Example, SocketAddr) {
    let cmd = match how {
        Listener::Bound => {
            let mut cmd = Example::example(name, &["--addr", "127.0.0.1:0"]);
            cmd.args(args);
            cmd
        }
        Listener::Activated => {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut cmd =
                activation::listen_command(example_binary(name), &[listener.as_fd()]).unwrap();
            cmd.args(["--addr", UNBINDABLE]).args(args);
            cmd
        }
        Listener::Hostile => {
            let mut cmd = Command::new("python3");
            cmd.arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/common/hostile_listener.py"
            ))
            .arg(example_binary(name))
            .args(["--addr", UNBINDABLE])
            .args(args);
            cmd
        }
    };
    let mut cmd = cmd;
    cmd.env_remove("NOTIFY_SOCKET");
    let child = Example::spawn(cmd);
    let addr = child.listening();
    (child, addr)
}

// ---------------------------------------------------------------------------------------------
// One exchange per protocol

#[track_caller]
fn echo_once(s: &TcpStream, payload: &[u8]) {
    write_frame(&mut &*s, payload).unwrap();
    assert_eq!(expect_frame(&mut &*s), payload);
}

fn http_once(c: &mut HttpClient) {
    let resp = c.call("GET", "/json", b"").expect("a response");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"{\"hello\":\"world\"}");
}

/// Two connections to an echo server, one warmed by an exchange and one not, silent for
/// [`SILENCE`], then both answered.
fn echo_idle_alive(addr: SocketAddr) {
    let warm = peer(addr);
    let cold = peer(addr);
    echo_once(&warm, b"before");
    thread::sleep(SILENCE);
    echo_once(&warm, b"after the silence");
    echo_once(&cold, b"first words after the silence");
}

/// A keep-alive client: a request, [`SILENCE`], a second request on the same connection;
/// and a connection that sent nothing before the silence.
fn http_idle_alive(addr: SocketAddr) {
    let mut warm = HttpClient::connect(addr, WAIT).unwrap();
    let mut cold = HttpClient::connect(addr, WAIT).unwrap();
    http_once(&mut warm);
    thread::sleep(SILENCE);
    http_once(&mut warm);
    http_once(&mut cold);
}

// ---------------------------------------------------------------------------------------------
// echo_service and http_hello, on every kind of listener

#[test]
fn echo_bound_keeps_idle_connections() {
    let (_echo, addr) = start("echo_service", Listener::Bound, &[]);
    echo_idle_alive(addr);
}

#[test]
fn echo_socket_activated_keeps_idle_connections() {
    let (_echo, addr) = start("echo_service", Listener::Activated, &[]);
    echo_idle_alive(addr);
}

#[test]
fn echo_on_a_hostile_inherited_listener_keeps_idle_connections() {
    let (_echo, addr) = start("echo_service", Listener::Hostile, &[]);
    echo_idle_alive(addr);
}

#[test]
fn http_hello_bound_keeps_idle_keep_alive_connections() {
    let (_http, addr) = start("http_hello", Listener::Bound, &[]);
    http_idle_alive(addr);
}

#[test]
fn http_hello_socket_activated_keeps_idle_keep_alive_connections() {
    let (_http, addr) = start("http_hello", Listener::Activated, &[]);
    http_idle_alive(addr);
}

#[test]
fn http_hello_on_a_hostile_inherited_listener_keeps_idle_keep_alive_connections() {
    let (_http, addr) = start("http_hello", Listener::Hostile, &[]);
    http_idle_alive(addr);
}

/// SIGUSR2 to a server started on a hostile listener: the new process inherits that same
/// listener. A connection made to the old process before the hand-off keeps the old one
/// draining (so its child can be found) and is still served; connections to the new one stay
/// alive through silence.
fn handoff_then_idle(name: &str, exchange: impl Fn(SocketAddr) -> Box<dyn FnMut()>) {
    let (mut old, addr) = start(name, Listener::Hostile, &[]);
    let mut on_old = exchange(addr);
    on_old();
    assert!(kill("USR2", old.pid()));
    assert_eq!(
        old.listening(),
        addr,
        "the new process serves the same address"
    );
    let mut new = Vec::new();
    assert!(
        poll_until(CHILD_WAIT, || {
            new = proc_stats::children(old.pid());
            !new.is_empty()
        }),
        "no process was handed the listener"
    );
    for &pid in &new {
        old.adopt(pid);
    }
    on_old(); // the old process drains, it does not drop its clients
    drop(on_old);
    // The old one exits once its last client has gone.
    let status = old.wait_exit(CHILD_WAIT).expect("the old process exits");
    assert!(status.success(), "stderr:\n{}", old.stderr());
    // Only the new process can answer now.
    let mut warm = exchange(addr);
    let mut cold = exchange(addr);
    warm();
    thread::sleep(SILENCE);
    warm();
    cold();
}

#[test]
fn echo_after_a_handoff_keeps_idle_connections() {
    handoff_then_idle("echo_service", |addr| {
        let s = peer(addr);
        let mut n = 0u32;
        Box::new(move || {
            n += 1;
            echo_once(&s, &tagged(1, n, 32));
        })
    });
}

#[test]
fn http_hello_after_a_handoff_keeps_idle_keep_alive_connections() {
    handoff_then_idle("http_hello", |addr| {
        let mut c = HttpClient::connect(addr, WAIT).unwrap();
        Box::new(move || http_once(&mut c))
    });
}

// ---------------------------------------------------------------------------------------------
// The other examples

#[test]
fn kv_server_keeps_an_idle_connection() {
    let (_kv, addr) = start("kv_server", Listener::Bound, &[]);
    let mut warm = RespClient::connect(addr, WAIT).unwrap();
    let mut cold = RespClient::connect(addr, WAIT).unwrap();
    let pong = Reply::Simple("PONG".into());
    assert_eq!(warm.call(&[b"PING"]).unwrap(), pong);
    assert_eq!(
        warm.call(&[b"SET", b"k", b"before"]).unwrap(),
        Reply::Simple("OK".into())
    );
    thread::sleep(SILENCE);
    assert_eq!(warm.call(&[b"PING"]).unwrap(), pong);
    assert_eq!(
        cold.call(&[b"GET", b"k"]).unwrap(),
        Reply::Bulk(Some(b"before".to_vec()))
    );
}

/// Reads lines from a chat client until one equals `want`, skipping the room's notices.
fn chat_expect(r: &mut impl BufRead, want: &str) {
    let until = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while Instant::now() < until {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => panic!("EOF before {want:?}; saw {seen:?}"),
            Ok(_) if line.trim_end() == want => return,
            Ok(_) => seen.push(line),
            Err(e) => panic!("{e} before {want:?}; saw {seen:?}"),
        }
    }
    panic!("no {want:?} within {WAIT:?}; saw {seen:?}");
}

#[test]
fn chat_keeps_idle_members_talking() {
    let (_chat, addr) = start("chat", Listener::Bound, &[]);
    let a = peer(addr);
    let b = peer(addr);
    let mut b_lines = BufReader::new(&b);
    let a_name = a.local_addr().unwrap();
    chat_expect(
        &mut b_lines,
        &format!("* {} joined", b.local_addr().unwrap()),
    );
    writeln!(&a, "before the silence").unwrap();
    chat_expect(&mut b_lines, &format!("{a_name}: before the silence"));
    thread::sleep(SILENCE);
    writeln!(&a, "after the silence").unwrap();
    chat_expect(&mut b_lines, &format!("{a_name}: after the silence"));
    writeln!(&b, "b speaks").unwrap();
    chat_expect(
        &mut BufReader::new(&a),
        &format!("{}: b speaks", b.local_addr().unwrap()),
    );
}

#[test]
fn udp_echo_answers_a_peer_after_a_silence() {
    let (_udp, addr) = start("udp_echo", Listener::Bound, &[]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.connect(addr).unwrap();
    let mut buf = [0u8; 2048];
    for msg in [&b"before"[..], b"after the silence"] {
        s.send(msg).unwrap();
        let n = s.recv(&mut buf).expect("an echo");
        assert_eq!(&buf[..n], msg);
        if msg == b"before" {
            thread::sleep(SILENCE);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Idle limits: closed after the limit, not before

/// True while the peer has neither closed nor reset the stream and sent nothing: a
/// non-blocking peek finds no data and no end.
fn open_and_quiet(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let r = s.peek(&mut [0u8; 1]);
    s.set_nonblocking(false).unwrap();
    matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// True if the stream reads EOF (or a reset) within [`WAIT`] with no data before it.
fn eof(s: &TcpStream) -> bool {
    match (&*s).read(&mut [0u8; 16]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
    }
}

fn idle_limit_closes_after_not_before(how: Listener) {
    const LIMIT: f64 = 1.5;
    let (_echo, addr) = start("echo_service", how, &["--idle-timeout", &LIMIT.to_string()]);
    let quiet = peer(addr);
    echo_once(&quiet, b"then nothing");
    let start = Instant::now(); // the quiet one's limit runs from about here
    let talker = peer(addr);
    echo_once(&talker, b"first words");
    let at = |f: f64| start + Duration::from_secs_f64(LIMIT * f);
    // The talker speaks every quarter of the limit, so it is never idle for a whole one even
    // on a loaded machine.
    for step in 1..=8 {
        thread::sleep(at(0.25 * step as f64).saturating_duration_since(Instant::now()));
        if step == 2 {
            // Half the limit. A test thread delayed past the limit proves nothing either way.
            let checked_at = start.elapsed();
            let open = open_and_quiet(&quiet);
            if checked_at < Duration::from_secs_f64(LIMIT * 0.9) {
                assert!(
                    open,
                    "closed at {checked_at:?}, before its idle limit (or sent something)"
                );
            } else {
                eprintln!("half-limit check skipped: the test ran late ({checked_at:?})");
            }
        }
        echo_once(&talker, &tagged(2, step, 16));
    }
    // Twice the limit has passed: the quiet one is closed, the talker is not.
    assert!(eof(&quiet), "not closed at twice its idle limit");
    assert!(open_and_quiet(&talker), "an active connection was closed");
    echo_once(&talker, b"still served");
}

#[test]
fn echo_idle_limit_closes_a_quiet_connection_after_its_limit_not_before() {
    idle_limit_closes_after_not_before(Listener::Bound);
}

#[test]
fn echo_idle_limit_on_a_hostile_listener_closes_after_its_limit_not_before() {
    idle_limit_closes_after_not_before(Listener::Hostile);
}
