//! Signals: `Signals` delivers them to a thread of this process, and the `echo_service`
//! example, run as a child process, stops gracefully on SIGTERM (every reply it queued reaches
//! the client, then EOF, exit code 0), at once on a second SIGTERM, and shrugs off SIGHUP.
//!
//! The signals are sent with the `kill` command, so the tests need no `unsafe`.

mod common;
#[path = "common/process.rs"]
mod process;

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::Instant;

use common::*;
use process::{kill, Echo, CHILD_WAIT};
use threadnet::signal::{Signal, Signals};

#[test]
fn signals_reach_every_subscriber_in_order() {
    let a = Signals::new(&[Signal::Usr1]).unwrap();
    let b = Signals::new(&[Signal::Usr1, Signal::Usr2]).unwrap();
    let me = std::process::id();
    assert!(kill("USR1", me));
    assert_eq!(a.recv_timeout(WAIT), Some(Signal::Usr1));
    assert_eq!(b.recv_timeout(WAIT), Some(Signal::Usr1));
    // A signal is delivered only where it was asked for.
    assert!(kill("USR2", me));
    assert_eq!(b.recv_timeout(WAIT), Some(Signal::Usr2));
    assert_eq!(a.try_recv(), None);
    // One subscription going away leaves the other served.
    drop(a);
    assert!(kill("USR1", me));
    assert_eq!(b.iter().next(), Some(Signal::Usr1));
    assert_eq!(Signal::Term.to_string(), "SIGTERM");
    assert_eq!(Signal::Usr1.number(), 10);
}

/// One frame of `len` bytes, `fill` repeated.
fn big(len: usize, fill: u8) -> Vec<u8> {
    vec![fill; len]
}

/// The server's `threadnet_messages_received_total`, scraped from its metrics address.
fn messages_received(metrics: SocketAddr) -> u64 {
    let mut s = peer(metrics);
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
        .lines()
        .find_map(|l| l.strip_prefix("threadnet_messages_received_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no messages_received_total in {response:?}"))
}

#[test]
fn sigterm_stops_gracefully_every_queued_reply_then_eof_then_exit_0() {
    const SMALL: u32 = 20;
    // Four of the largest frame echo takes (1 MiB, the default limit): far more than the
    // socket buffers hold.
    const BIG: usize = 1024 * 1024;
    const BIGS: usize = 4;
    let mut echo = Echo::spawn(Echo::command(&[
        "--addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
    ]));
    let addr = echo.listening();
    let line = echo.line();
    let metrics: SocketAddr = line
        .strip_prefix("metrics on ")
        .unwrap_or_else(|| panic!("expected `metrics on ADDR`, got {line:?}"))
        .parse()
        .unwrap();

    let client = peer(addr);
    let mut w = client.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let mut all = Vec::new();
        for i in 0..SMALL {
            all.extend_from_slice(&frame(&tagged(0, i, 100)));
        }
        for _ in 0..BIGS {
            all.extend_from_slice(&frame(&big(BIG, 0xAB)));
        }
        // A last small request: once the server has read it, it has queued every big reply.
        all.extend_from_slice(&frame(&tagged(0, SMALL, 100)));
        w.write_all(&all).unwrap();
    });
    let mut r = BufReader::new(&client);
    for i in 0..SMALL {
        assert_eq!(expect_frame(&mut r), tagged(0, i, 100));
    }
    // The big reply has begun, and most of the replies are still on their way, in the
    // server's socket buffer, its queue or its writer.
    let mut header = [0u8; 4];
    r.read_exact(&mut header).unwrap();
    assert_eq!(u32::from_be_bytes(header) as usize, BIG);
    writer.join().unwrap();
    // The stop answers what the server has queued, not requests it has yet to read (a
    // loaded machine may not have read them yet): wait until it has handed the last request
    // to its handler, so that the handler of the last big one has queued its reply.
    let all = u64::from(SMALL) + BIGS as u64 + 1;
    let until = Instant::now() + CHILD_WAIT;
    while messages_received(metrics) < all {
        assert!(
            Instant::now() < until,
            "the server never read every request"
        );
        thread::sleep(ms(10)); // a pace for the polling, not a synchronisation
    }

    assert!(kill("TERM", echo.pid()));

    let mut rest = vec![0u8; BIG];
    r.read_exact(&mut rest)
        .expect("the whole reply, after SIGTERM");
    assert!(rest.iter().all(|&b| b == 0xAB));
    for _ in 1..BIGS {
        assert!(expect_frame(&mut r) == big(BIG, 0xAB), "a whole big reply");
    }
    // The last small reply, if its send found room before the stop (if not, it was refused,
    // never queued). Then the server's FIN: a clean EOF on a frame boundary, no reset.
    let mut last = read_frame(&mut r).unwrap();
    if last.is_some() {
        assert_eq!(last, Some(tagged(0, SMALL, 100)));
        last = read_frame(&mut r).unwrap();
    }
    assert_eq!(last, None);
    // The server waits for this client to finish before it exits.
    assert!(echo.child.try_wait().unwrap().is_none());
    // The listener is closed already: nobody new gets in while it drains.
    assert!(TcpStream::connect(addr).is_err());

    client.shutdown(Shutdown::Write).unwrap();
    let status = echo
        .wait_exit(CHILD_WAIT)
        .expect("echo exits after its last client");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", echo.stderr());
}

#[test]
fn a_second_sigterm_closes_what_is_left_at_once() {
    let mut echo = Echo::spawn(Echo::command(&["--addr", "127.0.0.1:0"]));
    let addr = echo.listening();
    let client = peer(addr);
    let mut r = BufReader::new(&client);
    write_frame(&mut &client, b"hi").unwrap();
    assert_eq!(expect_frame(&mut r), b"hi");

    assert!(kill("TERM", echo.pid()));
    // Graceful: our FIN arrives, and the server would wait 10 s for ours.
    assert_eq!(read_frame(&mut r).unwrap(), None);
    assert!(echo.child.try_wait().unwrap().is_none());

    let sent = std::time::Instant::now();
    assert!(kill("TERM", echo.pid()));
    let status = echo.wait_exit(CHILD_WAIT).expect("echo exits");
    assert!(sent.elapsed() < ms(5000), "took {:?}", sent.elapsed());
    assert_eq!(status.code(), Some(0), "stderr:\n{}", echo.stderr());
}

#[test]
fn sighup_is_a_reload_not_a_stop() {
    let mut echo = Echo::spawn(Echo::command(&["--addr", "127.0.0.1:0"]));
    let addr = echo.listening();
    assert!(kill("HUP", echo.pid()));
    assert!(process::poll_until(CHILD_WAIT, || echo
        .stderr()
        .contains("SIGHUP")));
    // Still serving, new connections included.
    let client = peer(addr);
    write_frame(&mut &client, b"still here").unwrap();
    assert_eq!(expect_frame(&mut BufReader::new(&client)), b"still here");
    assert!(echo.child.try_wait().unwrap().is_none());
}
