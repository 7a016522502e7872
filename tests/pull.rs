//! The pulling APIs: `BlockingClient` (send/recv/request on the caller's thread) and
//! `PullServer` (every connection's events through one queue).

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use common::*;
use threadnet::{
    codec::{LengthDelimited, Lines},
    pull::{Event, RecvTimeoutError, RequestError, TryRecvError},
    Backoff, BlockingClient, CloseReason, ConnOptions, Connection, PullServer, TcpClient,
    TcpServer, UnixServer,
};

fn upper_server() -> threadnet::ServerHandle<Lines> {
    TcpServer::builder()
        .start(Lines::new(), |_: &Connection<Lines>| {
            |conn: &Connection<Lines>, line: String| {
                let _ = conn.send(line.to_uppercase());
            }
        })
        .unwrap()
}

#[test]
fn request_and_response_over_tcp() {
    let server = upper_server();
    let client = BlockingClient::connect(server.local_addr(), Lines::new()).unwrap();
    for i in 0..100 {
        let reply = client.request(format!("line {i}"), WAIT).unwrap();
        assert_eq!(reply, format!("LINE {i}"));
    }
    // send and recv separately, pipelined.
    for i in 0..10 {
        client.send(format!("p{i}")).unwrap();
    }
    let got: Vec<String> = (0..10).map(|_| client.recv().unwrap()).collect();
    assert_eq!(got, (0..10).map(|i| format!("P{i}")).collect::<Vec<_>>());
    assert!(matches!(client.try_recv(), Err(TryRecvError::Empty)));
}

#[test]
fn request_and_response_over_unix() {
    let path = std::env::temp_dir().join(format!("threadnet-pull-{}.sock", std::process::id()));
    let server = UnixServer::builder(&path)
        .start(Lines::new(), |_: &Connection<Lines>| {
            |conn: &Connection<Lines>, line: String| {
                let _ = conn.send(format!("<{line}>"));
            }
        })
        .unwrap();
    let client = BlockingClient::connect_unix(&path, Lines::new()).unwrap();
    assert_eq!(client.request("a".into(), WAIT).unwrap(), "<a>");
    assert_eq!(client.request("b".into(), WAIT).unwrap(), "<b>");
    drop(client);
    server.stop(WAIT);
}

#[test]
fn a_receive_timeout_mid_frame_tears_nothing() {
    // A raw server that sends half a frame, pauses past the caller's timeout, then the rest.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let raw = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let whole = frame(&[7u8; 1000]);
        s.write_all(&whole[..500]).unwrap();
        go_rx.recv().unwrap(); // the caller's recv_timeout has expired
        s.write_all(&whole[500..]).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let client = BlockingClient::connect(addr, LengthDelimited::new()).unwrap();
    assert!(matches!(
        client.recv_timeout(ms(200)),
        Err(RecvTimeoutError::Timeout)
    ));
    go_tx.send(()).unwrap();
    let msg = client.recv_timeout(WAIT).unwrap();
    assert_eq!(msg, vec![7u8; 1000]);
    drop(client);
    raw.join().unwrap();
}

#[test]
fn the_end_carries_the_reason_after_what_was_sent_before_the_fin() {
    // The server replies, then closes gracefully: the caller gets the reply, then the end.
    let server = TcpServer::builder()
        .start(Lines::new(), |_: &Connection<Lines>| {
            |conn: &Connection<Lines>, line: String| {
                let _ = conn.send(format!("last: {line}"));
                conn.shutdown(WAIT);
            }
        })
        .unwrap();
    let client = BlockingClient::connect(server.local_addr(), Lines::new()).unwrap();
    client.send("bye".into()).unwrap();
    // A recv waiting when the FIN comes returns the queued message, then the reason.
    assert_eq!(client.recv().unwrap(), "last: bye");
    let end = client.recv().unwrap_err();
    assert!(matches!(end.reason, CloseReason::PeerClosed), "{end}");
    // It stays ended.
    assert!(matches!(
        client.recv_timeout(ms(10)),
        Err(RecvTimeoutError::Closed(_))
    ));
    assert!(client.send("more".into()).unwrap_err().is_closed());
}

#[test]
fn a_caller_waiting_in_recv_hears_the_server_stop() {
    let server = upper_server();
    let client = Arc::new(BlockingClient::connect(server.local_addr(), Lines::new()).unwrap());
    let waiting = {
        let client = Arc::clone(&client);
        thread::spawn(move || client.recv())
    };
    server.stop(WAIT);
    let end = waiting.join().unwrap().unwrap_err();
    assert!(matches!(end.reason, CloseReason::PeerClosed), "{end}");
}

#[test]
fn a_caller_that_does_not_read_pushes_back_and_loses_nothing() {
    // The server floods 3 000 numbered lines of 4 KiB (12 MiB, more than loopback's socket
    // buffers hold) at a caller that does not read. The caller reads the socket itself, so
    // nothing is read meanwhile: the rest waits in the sockets and in the server's send queue,
    // whose watermark observer reports it full. Then the caller reads every line, in order.
    const N: usize = 3_000;
    let full_seen = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&full_seen);
    let options = ConnOptions::new()
        .high_watermark(256 * 1024)
        .low_watermark(16 * 1024)
        .on_watermark(move |e| {
            if e.full {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
    let (conn_tx, conn_rx) = mpsc::channel();
    let server = TcpServer::builder()
        .options(options)
        .start(Lines::new(), move |conn: &Connection<Lines>| {
            let _ = conn_tx.send(conn.clone());
            |_: &Connection<Lines>, _: String| {}
        })
        .unwrap();
    let client = BlockingClient::connect(server.local_addr(), Lines::new()).unwrap();
    let conn = recv(&conn_rx);
    let flood = thread::spawn(move || {
        let line = "x".repeat(4096);
        for i in 0..N {
            conn.send(format!("{i} {line}")).unwrap();
        }
    });
    assert!(
        wait_until(WAIT, || full_seen.load(Ordering::SeqCst) > 0),
        "the server's queue never filled: nothing pushed back"
    );
    // Nothing was read while the caller slept.
    let read = client.connection().stats().bytes_received;
    assert_eq!(read, 0, "bytes were read with no receive in progress");
    for i in 0..N {
        let line = client.recv_timeout(WAIT).unwrap();
        let n: usize = line.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(n, i, "out of order or lost");
    }
    flood.join().unwrap();
}

#[test]
fn a_request_that_times_out_closes_the_connection() {
    let server = TcpServer::builder()
        .start(Lines::new(), |_: &Connection<Lines>| {
            |_: &Connection<Lines>, _: String| {} // never answers
        })
        .unwrap();
    let client = BlockingClient::connect(server.local_addr(), Lines::new()).unwrap();
    let err = client.request("hello?".into(), ms(100)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let err = client.request("again".into(), WAIT).unwrap_err();
    assert!(matches!(err, RequestError::Send(_)), "{err}");
}

#[test]
fn a_blocking_client_refuses_reconnect() {
    let server = upper_server();
    let builder = TcpClient::builder().reconnect(Backoff::new());
    let err = BlockingClient::connect_with(builder, server.local_addr(), Lines::new())
        .err()
        .expect("reconnect must be refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn a_pull_server_keeps_each_connections_order_and_closes_each_once() {
    const CLIENTS: usize = 8;
    const LINES: usize = 200;
    let server = PullServer::start(TcpServer::builder().inbox_capacity(16), Lines::new()).unwrap();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let addr = addr.clone();
            thread::spawn(move || {
                let mut s = peer(&addr);
                for i in 0..LINES {
                    writeln!(s, "{c} {i}").unwrap();
                }
                // Read the echoes of every line, then close.
                let mut got = String::new();
                let mut buf = [0u8; 4096];
                while got.lines().count() < LINES {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "server closed early");
                    got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
                }
                assert!(got
                    .lines()
                    .enumerate()
                    .all(|(i, l)| l == format!("ok {c} {i}")));
            })
        })
        .collect();
    // One loop serves everyone.
    let mut next: HashMap<u64, usize> = HashMap::new();
    let mut connected = 0;
    let mut closed = 0;
    while closed < CLIENTS {
        match server.recv_timeout(WAIT).unwrap() {
            Event::Connected(conn) => {
                connected += 1;
                assert!(next.insert(conn.id(), 0).is_none(), "connected twice");
            }
            Event::Message(conn, line) => {
                let expected = next.get_mut(&conn.id()).expect("message before Connected");
                let i: usize = line.split(' ').nth(1).unwrap().parse().unwrap();
                assert_eq!(i, *expected, "out of order on connection {}", conn.id());
                *expected += 1;
                conn.send(format!("ok {line}")).unwrap();
            }
            Event::Closed(conn, reason) => {
                closed += 1;
                assert_eq!(
                    next.remove(&conn.id()),
                    Some(LINES),
                    "closed early: {reason}"
                );
                assert!(matches!(reason, CloseReason::PeerClosed), "{reason}");
            }
        }
    }
    assert_eq!(connected, CLIENTS);
    for c in clients {
        c.join().unwrap();
    }
    server.stop(WAIT);
    assert!(matches!(
        server.recv_timeout(WAIT),
        Err(RecvTimeoutError::Closed(_))
    ));
}

#[test]
fn dropping_a_pull_server_with_a_full_queue_does_not_hang() {
    let server = PullServer::start(TcpServer::builder().inbox_capacity(2), Lines::new()).unwrap();
    let mut s = peer(server.local_addr());
    for i in 0..100 {
        writeln!(s, "{i}").unwrap();
    }
    // A Connected and a message fill the queue; the reader waits for room with 99 lines to go.
    assert!(wait_until(WAIT, || server.pending() >= 2));
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        drop(server);
        let _ = done_tx.send(());
    });
    recv(&done_rx);
}
