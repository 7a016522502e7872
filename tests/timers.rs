//! Timers on connections: `run_after` / `run_at` / `run_every`, cancelled when the connection
//! ends (none runs after `on_close`); idle timeouts and heartbeats. Time is driven by a manual
//! clock wherever the test is about time, so nothing here sleeps or depends on the machine's
//! speed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use threadnet::{
    codec::{LengthDelimited, Lines},
    idle::{Heartbeat, IdleAction, IdleKind},
    timer::ManualClock,
    CloseReason, ConnOptions, Connection, Handler, ServerHandle, TcpClient, TcpServer, TimingWheel,
};

type Conn = Connection<LengthDelimited>;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Echoes, and reports connect, every message and close.
struct Echo(Sender<Ev>);

impl Handler<LengthDelimited> for Echo {
    fn on_connect(&mut self, conn: &Conn) {
        let _ = self.0.send(Ev::Connect(conn.id()));
    }
    fn on_message(&mut self, conn: &Conn, msg: Vec<u8>) {
        let _ = conn.send(msg.clone());
        let _ = self.0.send(Ev::Message(conn.id(), msg));
    }
    fn on_close(&mut self, conn: &Conn, reason: &CloseReason) {
        let _ = self.0.send(Ev::Close(conn.id(), Reason::from(reason)));
    }
}

/// An echo server on a manual clock with `opts`; returns the clock and the events.
fn manual_echo(opts: ConnOptions) -> (ServerHandle<LengthDelimited>, ManualClock, Receiver<Ev>) {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let (tx, rx) = mpsc::channel();
    let server = TcpServer::builder()
        .options(opts.timing_wheel(wheel))
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()))
        .unwrap();
    (server, clock, rx)
}

/// Connects a raw peer and waits for the server's `on_connect`; returns the peer and its id.
fn connect(server: &ServerHandle<LengthDelimited>, events: &Receiver<Ev>) -> (TcpStream, u64) {
    let p = peer(server.local_addr());
    match recv(events) {
        Ev::Connect(id) => (p, id),
        other => panic!("expected a connect, got {other:?}"),
    }
}

/// Sends one frame and waits for its echo: the reader records a read before the handler
/// runs, so afterwards the server has recorded it.
fn ping(p: &mut TcpStream) {
    write_frame(p, b"ping").unwrap();
    assert_eq!(expect_frame(p), b"ping");
}

/// The next close event, skipping messages.
fn next_close(events: &Receiver<Ev>) -> (u64, Reason) {
    loop {
        if let Ev::Close(id, reason) = recv(events) {
            return (id, reason);
        }
    }
}

#[test]
fn read_idle_closes_a_silent_connection_and_not_an_active_one() {
    let (server, clock, events) = manual_echo(ConnOptions::new().read_idle(secs(10)));
    let (silent, silent_id) = connect(&server, &events);
    let (mut active, active_id) = connect(&server, &events);
    for _ in 0..3 {
        clock.advance(secs(6));
        ping(&mut active);
    }
    // 18 s on the clock: the silent one was closed at 12 s (the first check after 10 s), the
    // active one never.
    match next_close(&events) {
        (id, Reason::Idle { kind, dropped: 0 }) => {
            assert_eq!(id, silent_id);
            assert_eq!(kind, IdleKind::Read);
        }
        other => panic!("expected an idle close, got {other:?}"),
    }
    assert!(ends(&silent));
    ping(&mut active);
    let active_conn = server.connections().get(active_id).unwrap();
    assert!(!active_conn.is_closed());
    drop(active);
    server.stop(WAIT);
}

#[test]
fn idle_timeout_is_never_early() {
    let (server, clock, events) = manual_echo(ConnOptions::new().all_idle(secs(10)));
    let (p, _) = connect(&server, &events);
    clock.advance(ms(9_999));
    assert_eq!(server.connections().len(), 1);
    assert!(events.try_recv().is_err(), "closed before 10 s");
    clock.advance(ms(1));
    assert!(matches!(
        recv(&events),
        Ev::Close(
            _,
            Reason::Idle {
                kind: IdleKind::All,
                ..
            }
        )
    ));
    assert!(ends(&p));
    server.stop(WAIT);
}

#[test]
fn write_idle_counts_writes_not_reads() {
    // The handler never replies (no echo): reads alone do not keep a write-idle limit away.
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let (tx, events) = mpsc::channel();
    let server = TcpServer::builder()
        .options(ConnOptions::new().write_idle(secs(5)).timing_wheel(wheel))
        .start(LengthDelimited::new(), move |_: &Conn| {
            let tx = tx.clone();
            move |conn: &Conn, msg: Vec<u8>| {
                let _ = tx.send(Ev::Message(conn.id(), msg));
            }
        })
        .unwrap();
    let mut p = peer(server.local_addr());
    for _ in 0..2 {
        write_frame(&mut p, b"x").unwrap();
        assert!(matches!(recv(&events), Ev::Message(..)));
        clock.advance(secs(3));
    }
    assert!(ends(&p), "6 s without a write");
    server.stop(WAIT);
}

#[test]
fn the_idle_hook_can_keep_a_connection_and_hears_again() {
    let (hook_tx, hook_rx) = mpsc::channel();
    let keep_once = Arc::new(AtomicBool::new(true));
    let hook_keep = Arc::clone(&keep_once);
    let opts = ConnOptions::new()
        .read_idle(secs(10))
        .on_idle(move |event| {
            let _ = hook_tx.send(event);
            if hook_keep.swap(false, Ordering::SeqCst) {
                IdleAction::Keep
            } else {
                IdleAction::Close
            }
        });
    let (server, clock, events) = manual_echo(opts);
    let (p, id) = connect(&server, &events);
    clock.advance(secs(10));
    let first = recv(&hook_rx);
    assert_eq!(
        (first.id, first.kind, first.idle),
        (id, IdleKind::Read, secs(10))
    );
    assert_eq!(server.connections().len(), 1, "kept");
    clock.advance(secs(10));
    let second = recv(&hook_rx);
    assert_eq!(
        second.idle,
        secs(20),
        "the silence went on: the event comes again"
    );
    assert!(matches!(recv(&events), Ev::Close(_, Reason::Idle { .. })));
    assert!(ends(&p));
    server.stop(WAIT);
}

/// A Lines handler that answers `PING` with `PONG` and reports every line and its close.
struct Pong(Sender<(u64, String)>);

impl Handler<Lines> for Pong {
    fn on_connect(&mut self, conn: &Connection<Lines>) {
        // Idle watching starts before on_connect: from here, the clock may move.
        let _ = self.0.send((conn.id(), "connected".to_string()));
    }
    fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
        if line == "PING" {
            let _ = conn.send("PONG".to_string());
        }
        let _ = self.0.send((conn.id(), line));
    }
    fn on_close(&mut self, conn: &Connection<Lines>, reason: &CloseReason) {
        let _ = self.0.send((conn.id(), format!("closed: {reason}")));
    }
}

/// Waits (yielding) until `done` holds; fails the test after [`WAIT`].
fn until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        std::thread::yield_now();
    }
}

fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line
}

#[test]
fn heartbeat_keeps_a_quiet_connection_alive_and_closes_a_dead_peer() {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let beat = Heartbeat::encode(&Lines::new(), &"PING".to_string(), secs(1))
        .unwrap()
        .misses(3);
    let (tx, lines) = mpsc::channel();
    let server = TcpServer::builder()
        .options(ConnOptions::new().heartbeat(beat).timing_wheel(wheel))
        .start(Lines::new(), move |_: &Connection<Lines>| Pong(tx.clone()))
        .unwrap();
    // The dead peer connects first and never says anything again.
    let dead = peer(server.local_addr());
    assert_eq!(recv(&lines).1, "connected");
    let mut alive = BufReader::new(peer(server.local_addr()));
    assert_eq!(recv(&lines).1, "connected");
    let dead_conn = server
        .connections()
        .get(1)
        .expect("the dead peer's connection");
    let mut closed = false;
    for second in 1..=5 {
        clock.advance(secs(1));
        // The check ran inside advance: after 3 silent intervals, and not before, the dead
        // peer's connection is closed.
        assert_eq!(dead_conn.is_closed(), second >= 3, "at {second} s");
        // Each second: the server's heartbeat arrives, and the live peer answers it.
        assert_eq!(read_line(&mut alive), "PING\n", "heartbeat {second}");
        alive.get_mut().write_all(b"PONG\n").unwrap();
        // A write counts as activity once the writer has noted it, just after the bytes left;
        // wait for that (the queue empties after it) before the clock moves on.
        let alive_conn = server.connections().get(dead_conn.id() + 1).unwrap();
        until(|| alive_conn.queued_messages() == 0);
        loop {
            let (id, line) = recv(&lines);
            if line == "PONG" {
                break;
            }
            assert_eq!(id, dead_conn.id());
            assert!(
                line.starts_with("closed: idle timeout: peer missed"),
                "{line}"
            );
            closed = true;
        }
    }
    if !closed {
        let (id, line) = recv(&lines);
        assert_eq!(id, dead_conn.id());
        assert!(
            line.starts_with("closed: idle timeout: peer missed"),
            "{line}"
        );
    }
    assert!(ends(&dead));
    let alive_conn = server.connections().get(dead_conn.id() + 1).unwrap();
    assert!(!alive_conn.is_closed(), "the live one stays");
    drop(alive);
    server.stop(WAIT);
}

#[test]
fn heartbeats_between_a_client_and_a_server_keep_both_open() {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let beat = Heartbeat::encode(&Lines::new(), &"BEAT".to_string(), secs(1))
        .unwrap()
        .misses(2);
    let opts = ConnOptions::new().heartbeat(beat).timing_wheel(wheel);
    let (stx, server_lines) = mpsc::channel();
    let server = TcpServer::builder()
        .options(opts.clone())
        .start(Lines::new(), move |_: &Connection<Lines>| Pong(stx.clone()))
        .unwrap();
    let (ctx, client_lines) = mpsc::channel();
    let client = TcpClient::builder()
        .options(opts)
        .connect(
            server.local_addr(),
            Lines::new(),
            move |_: &Connection<Lines>| Pong(ctx.clone()),
        )
        .unwrap();
    // Both ends are watched from here.
    assert_eq!(recv(&server_lines).1, "connected");
    assert_eq!(recv(&client_lines).1, "connected");
    let ends = [
        server.connections().get(1).unwrap(),
        client.connection().unwrap(),
    ];
    for _ in 0..10 {
        clock.advance(secs(1));
        // Each side hears the other's heartbeat (nothing else is ever sent).
        assert_eq!(recv(&server_lines).1, "BEAT");
        assert_eq!(recv(&client_lines).1, "BEAT");
        // A write counts as activity once the writer has noted it, just after the bytes left:
        // wait for that (the queue empties after it) before the clock moves on.
        for conn in &ends {
            until(|| conn.queued_messages() == 0);
        }
    }
    assert_eq!(server.connections().len(), 1);
    assert!(client.connection().is_some_and(|c| !c.is_closed()));
    client.stop(WAIT);
    server.stop(WAIT);
}

#[test]
fn run_after_run_at_and_cancel_timer_act_on_the_connection() {
    let (server, clock, events) = manual_echo(ConnOptions::new());
    let (mut p, _) = connect(&server, &events);
    let conn = server.connections().get(1).unwrap();
    conn.run_after(secs(2), |c| c.send(b"after".to_vec()).unwrap());
    conn.run_at(clock.now() + secs(1), |c| c.send(b"at".to_vec()).unwrap());
    let never = conn.run_after(secs(3), |c| c.send(b"never".to_vec()).unwrap());
    clock.advance(secs(2));
    assert_eq!(expect_frame(&mut p), b"at");
    assert_eq!(expect_frame(&mut p), b"after");
    assert!(conn.cancel_timer(never));
    assert!(!conn.cancel_timer(never));
    clock.advance(secs(5));
    // Nothing more: the next frame is the echo of ours.
    write_frame(&mut p, b"end").unwrap();
    assert_eq!(expect_frame(&mut p), b"end");
    drop(p);
    server.stop(WAIT);
}

#[test]
fn close_cancels_every_timer_of_the_connection() {
    let (wheel, clock) = TimingWheel::manual(ms(1));
    let (tx, events) = mpsc::channel();
    let server = TcpServer::builder()
        .options(ConnOptions::new().timing_wheel(wheel.clone()))
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()))
        .unwrap();
    let (p, _) = connect(&server, &events);
    let conn = server.connections().get(1).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    conn.run_every(secs(1), move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    conn.run_after(secs(60), |_| panic!("must not run"));
    clock.advance(secs(3));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(
        wheel.len(),
        3,
        "two of ours, and the idle check of the frame timeout"
    );
    drop(p);
    assert!(matches!(recv(&events), Ev::Close(..)));
    assert_eq!(
        wheel.len(),
        0,
        "all of the connection's timers are cancelled"
    );
    clock.advance(secs(100));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    // Timers asked for after the end are never scheduled.
    conn.run_after(secs(1), |_| panic!("must not run"));
    assert_eq!(wheel.len(), 0);
    server.stop(WAIT);
}

/// Records whether any timer callback ran once `on_close` had begun.
struct Fenced {
    closing: Arc<AtomicBool>,
    late: Arc<AtomicUsize>,
    done: Sender<()>,
}

impl Handler<LengthDelimited> for Fenced {
    fn on_connect(&mut self, conn: &Conn) {
        for _ in 0..4 {
            let (closing, late) = (Arc::clone(&self.closing), Arc::clone(&self.late));
            conn.run_every(Duration::ZERO, move |_| {
                if closing.load(Ordering::SeqCst) {
                    late.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    }
    fn on_message(&mut self, _: &Conn, _: Vec<u8>) {}
    fn on_close(&mut self, _: &Conn, _: &CloseReason) {
        self.closing.store(true, Ordering::SeqCst);
        // Give a stray callback every chance to run now (it must not).
        let until = Instant::now() + ms(5);
        while Instant::now() < until {
            std::thread::yield_now();
        }
        let _ = self.done.send(());
    }
}

#[test]
fn no_timer_runs_after_on_close_on_a_real_wheel() {
    // Timers firing every tick on the real global wheel, racing the close.
    let late = Arc::new(AtomicUsize::new(0));
    let (done_tx, done) = mpsc::channel();
    let l = Arc::clone(&late);
    let server = TcpServer::builder()
        .start(LengthDelimited::new(), move |_: &Conn| Fenced {
            closing: Arc::new(AtomicBool::new(false)),
            late: Arc::clone(&l),
            done: done_tx.clone(),
        })
        .unwrap();
    for _ in 0..20 {
        let p = peer(server.local_addr());
        drop(p);
        recv(&done);
    }
    assert_eq!(late.load(Ordering::SeqCst), 0);
    server.stop(WAIT);
}

#[test]
fn stop_from_a_connection_timer_does_not_deadlock() {
    let (tx, stopped) = mpsc::channel();
    let (handle_tx, handle_rx) = mpsc::channel::<ServerHandle<LengthDelimited>>();
    let handle_rx = Arc::new(std::sync::Mutex::new(handle_rx));
    let server = TcpServer::builder()
        .start(LengthDelimited::new(), move |_: &Conn| {
            let (tx, handle_rx) = (tx.clone(), Arc::clone(&handle_rx));
            move |conn: &Conn, _msg: Vec<u8>| {
                let (tx, handle_rx) = (tx.clone(), Arc::clone(&handle_rx));
                conn.run_after(ms(1), move |_| {
                    let server = handle_rx.lock().unwrap().recv().unwrap();
                    server.stop(ms(200));
                    let _ = tx.send(server.is_stopped());
                });
            }
        })
        .unwrap();
    handle_tx.send(server.clone()).unwrap();
    let mut p = peer(server.local_addr());
    write_frame(&mut p, b"stop please").unwrap();
    assert!(recv(&stopped));
    assert!(ends(&p));
    server.stop(WAIT);
}

#[test]
fn a_panicking_connection_timer_closes_that_connection_only() {
    let (server, clock, events) = manual_echo(ConnOptions::new());
    let (mut other, _) = connect(&server, &events);
    let (victim, victim_id) = connect(&server, &events);
    let conn = server.connections().get(victim_id).unwrap();
    conn.run_after(secs(1), |_| {
        panic!("boom in a connection timer (expected by a test)")
    });
    clock.advance(secs(1));
    match next_close(&events) {
        (id, Reason::Panic { message, .. }) => {
            assert_eq!(id, victim_id);
            assert!(message.contains("boom in a connection timer"), "{message}");
        }
        other => panic!("expected a panic close, got {other:?}"),
    }
    assert!(ends(&victim));
    ping(&mut other);
    drop(other);
    server.stop(WAIT);
}

#[test]
fn a_zero_idle_limit_is_no_limit() {
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&hook_calls);
    let opts = ConnOptions::new()
        .read_idle(Duration::ZERO)
        .on_idle(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            IdleAction::Keep
        });
    let (server, clock, events) = manual_echo(opts);
    let (mut p, _) = connect(&server, &events);
    clock.advance(secs(3600));
    assert_eq!(hook_calls.load(Ordering::SeqCst), 0);
    ping(&mut p);
    drop(p);
    server.stop(WAIT);
}

#[test]
fn an_idle_limit_does_not_replace_a_graceful_close_under_way() {
    let (server, clock, events) = manual_echo(ConnOptions::new().read_idle(secs(10)));
    let (p, id) = connect(&server, &events);
    let conn = server.connections().get(id).unwrap();
    conn.shutdown(Duration::from_secs(3600));
    clock.advance(secs(20)); // past the idle limit while the shutdown waits for our EOF
    assert_eq!(
        events.try_recv().ok(),
        None,
        "still waiting for the peer's EOF"
    );
    drop(p);
    assert_eq!(next_close(&events).1, Reason::Shutdown);
    server.stop(WAIT);
}
