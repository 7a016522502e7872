//! The frame timeout (`ConnOptions::frame_timeout`): a peer that trickles one frame, so that
//! read-idle limits never fire (slowloris), is closed once the frame has taken longer than the
//! limit; time between frames, a slow handler and back-to-back frames do not count.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use threadnet::http::{self, Http1, Request, Response};
use threadnet::testing::{FaultProxy, Faults};
use threadnet::{
    codec::LengthDelimited, events::ConnEvent, CloseReason, ConnOptions, Connection, TcpServer,
    TimingWheel,
};

const LIMIT: Duration = Duration::from_millis(400);
const WAIT: Duration = Duration::from_secs(2);

/// Options with the frame timeout under test and a channel of close reasons.
fn options(limit: Duration) -> (ConnOptions, Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let opts = ConnOptions::new().frame_timeout(limit).on_event(move |e| {
        if let ConnEvent::Closed { reason, .. } = e {
            let kind = match reason {
                CloseReason::IdleTimeout { kind, .. } => format!("idle {kind:?}"),
                other => other.to_string(),
            };
            let _ = tx.send(kind);
        }
    });
    (opts, rx)
}

/// A length-delimited echo server; its handler sleeps `think` before each reply.
fn echo(opts: ConnOptions, think: Duration) -> threadnet::ServerHandle<LengthDelimited> {
    TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(opts)
        .start(
            LengthDelimited::new(),
            move |_: &Connection<LengthDelimited>| {
                move |conn: &Connection<LengthDelimited>, msg: Vec<u8>| {
                    thread::sleep(think);
                    let _ = conn.send(msg);
                }
            },
        )
        .unwrap()
}

/// Writes `bytes` one at a time, 50 ms apart (by hand: the first request of the connection
/// must go whole, so a proxy trickling the whole connection would not do), until the server closes the connection (the
/// reason arrives on `closed`) or the bytes run out. Returns the reason and how long it took.
fn trickle(s: &mut TcpStream, bytes: &[u8], closed: &Receiver<String>) -> (String, Duration) {
    let start = Instant::now();
    for b in bytes {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        if let Ok(reason) = closed.recv_timeout(ms(50)) {
            return (reason, start.elapsed());
        }
    }
    (recv(closed), start.elapsed())
}

#[test]
fn a_trickled_frame_is_closed_at_the_limit() {
    let (opts, closed) = options(LIMIT);
    // A read-idle limit longer than the pause between bytes: it alone would never fire.
    let server = echo(opts.read_idle(Duration::from_secs(5)), Duration::ZERO);
    // The proxy trickles the frame to the server a byte every 50 ms (1-byte writes paced
    // at 20 bytes/s): 10 s for the whole frame, far past the limit.
    let proxy = FaultProxy::builder()
        .upstream(server.local_addr().as_inet().unwrap())
        .client_to_server(Faults::new().split(1).bandwidth(20))
        .start()
        .unwrap();
    let mut p = peer(proxy.local_addr());
    let mut bytes = 200u32.to_be_bytes().to_vec();
    bytes.extend([b'x'; 200]);
    let start = Instant::now();
    p.write_all(&bytes).unwrap();
    let reason = recv(&closed);
    let took = start.elapsed();
    assert_eq!(reason, "idle Frame");
    assert!(took >= LIMIT, "closed after {took:?}, before the limit");
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
    assert!(ends(&p));
    let m = server.metrics();
    assert_eq!(
        m.connections_closed[6], 1,
        "counted as an idle close: {m:?}"
    );
    proxy.stop();
    server.stop(WAIT);
}

#[test]
fn a_trickled_http_head_is_closed() {
    let (opts, closed) = options(LIMIT);
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(opts)
        .start(
            Http1::new(),
            http::serve(|_: &Request| Response::text("hi\n")),
        )
        .unwrap();
    let mut p = peer(server.local_addr().as_inet().unwrap());
    // A first, whole request is answered: the limit is per request, not per connection.
    p.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = [0u8; 17];
    p.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200 OK\r\n");
    let head = b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let (reason, took) = trickle(&mut p, head, &closed);
    assert_eq!(reason, "idle Frame");
    assert!(took >= LIMIT, "closed after {took:?}");
    server.stop(WAIT);
}

#[test]
fn long_pauses_between_frames_and_a_slow_handler_are_not_timed() {
    let (opts, closed) = options(LIMIT);
    // The handler takes longer than the limit, while the next frame waits in the buffer.
    let server = echo(opts, LIMIT + ms(300));
    let mut p = peer(server.local_addr().as_inet().unwrap());
    let mut two = frame(b"one");
    two.extend(frame(b"two"));
    p.write_all(&two).unwrap();
    assert_eq!(expect_frame(&mut p), b"one");
    assert_eq!(expect_frame(&mut p), b"two");
    for i in 0..2u8 {
        thread::sleep(LIMIT + ms(300)); // silence between frames, longer than the limit
        write_frame(&mut p, &[i]).unwrap();
        assert_eq!(expect_frame(&mut p), [i]);
    }
    assert!(closed.try_recv().is_err(), "closed between frames");
    assert_eq!(server.connections().len(), 1);
    server.stop(WAIT);
}

#[test]
fn frames_back_to_back_for_longer_than_the_limit_are_not_timed() {
    let (opts, closed) = options(LIMIT);
    let server = echo(opts, Duration::ZERO);
    let p = peer(server.local_addr().as_inet().unwrap());
    let mut r = p.try_clone().unwrap();
    let reader = thread::spawn(move || {
        let mut n = 0u64;
        while let Ok(Some(_)) = read_frame(&mut r) {
            n += 1;
        }
        n
    });
    let mut w = &p;
    let start = Instant::now();
    let mut sent = 0u64;
    // Frames split across writes, so the server's buffer nearly always holds part of one.
    let chunk: Vec<u8> = (0..64).flat_map(|_| frame(&[7u8; 100])).collect();
    while start.elapsed() < LIMIT * 3 && sent < 2_000_000 {
        w.write_all(&chunk[..chunk.len() - 50]).unwrap();
        w.write_all(&chunk[chunk.len() - 50..]).unwrap();
        sent += 64;
    }
    p.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(reader.join().unwrap(), sent, "every frame echoed");
    assert_eq!(recv(&closed), "peer closed");
    server.stop(WAIT);
}

#[test]
fn connections_idle_with_no_partial_frame_stay_open() {
    let (opts, closed) = options(LIMIT);
    let server = echo(opts, Duration::ZERO);
    let addr = server.local_addr().as_inet().unwrap();
    let mut silent = peer(addr);
    let mut warm = peer(addr);
    write_frame(&mut warm, b"warm").unwrap();
    assert_eq!(expect_frame(&mut warm), b"warm");
    thread::sleep(Duration::from_millis(1500));
    assert!(closed.try_recv().is_err(), "an idle connection was closed");
    for p in [&mut silent, &mut warm] {
        write_frame(p, b"still here").unwrap();
        assert_eq!(expect_frame(p), b"still here");
    }
    server.stop(WAIT);
}

#[test]
fn the_limit_is_exact_on_a_manual_clock_and_can_be_turned_off() {
    for limit in [Some(LIMIT), None] {
        let (wheel, clock) = TimingWheel::manual(ms(1));
        let (opts, closed) = options(limit.unwrap_or(Duration::ZERO));
        let server = echo(opts.timing_wheel(wheel), Duration::ZERO);
        let mut p = peer(server.local_addr().as_inet().unwrap());
        // Whole frames, then an hour between them: nothing happens.
        write_frame(&mut p, b"a").unwrap();
        assert_eq!(expect_frame(&mut p), b"a");
        clock.advance(Duration::from_secs(3600));
        write_frame(&mut p, b"b").unwrap();
        assert_eq!(expect_frame(&mut p), b"b");
        // Half a frame: the header and one byte of ten.
        let half = &frame(&[1u8; 10])[..5];
        p.write_all(half).unwrap();
        let read = 5 + 5 + 5; // two whole frames of one byte, and half of the third
        assert!(wait_until(WAIT, || server.metrics().bytes_received == read));
        clock.advance(LIMIT - ms(1));
        assert!(closed.try_recv().is_err(), "closed before the limit");
        clock.advance(ms(2));
        match limit {
            Some(_) => {
                assert_eq!(recv(&closed), "idle Frame");
                assert!(ends(&p));
            }
            None => {
                clock.advance(Duration::from_secs(3600));
                p.write_all(&frame(&[1u8; 10])[5..]).unwrap();
                assert_eq!(expect_frame(&mut p), [1u8; 10]);
                assert!(closed.try_recv().is_err(), "closed with the limit off");
            }
        }
        server.stop(WAIT);
    }
}

#[test]
fn the_default_is_on() {
    assert_eq!(
        ConnOptions::new().get_frame_timeout(),
        Some(threadnet::idle::DEFAULT_FRAME_TIMEOUT)
    );
    assert_eq!(
        ConnOptions::new()
            .frame_timeout(Duration::ZERO)
            .get_frame_timeout(),
        None
    );
}
