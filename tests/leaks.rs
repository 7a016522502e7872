//! Invariant 6: no leaks. Alone in its file (one test per process), so that no other test's
//! threads or sockets move the counts.

mod common;

use std::io::Write;
use std::sync::mpsc;
use std::time::Instant;

use common::*;
use threadnet::{
    codec::LengthDelimited, ConnOptions, Connection, ServerHandle, TcpClient, TcpServer,
};

type Conn = Connection<LengthDelimited>;

/// Echoes through the queue (so every connection gets a writer thread); closes the
/// connection on a message `"close"`.
fn echo_server() -> ServerHandle<LengthDelimited> {
    TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(ConnOptions::new().write_through(false))
        .start(LengthDelimited::new(), |_: &Conn| {
            |conn: &Conn, msg: Vec<u8>| {
                if msg == b"close" {
                    conn.close();
                } else {
                    conn.send(msg).unwrap();
                }
            }
        })
        .unwrap()
}

/// Connect, one echo, disconnect, ending the connection a different way on each cycle: the
/// raw peer closes; a threadnet client stops; the server closes; the peer breaks the framing.
fn cycle(server: &ServerHandle<LengthDelimited>, i: u32) {
    let payload = tagged(0, i, 32);
    if i % 4 == 1 {
        let (tx, rx) = mpsc::channel();
        let client = TcpClient::builder()
            .connect(
                server.local_addr(),
                LengthDelimited::new(),
                move |_: &Conn| {
                    let tx = tx.clone();
                    move |_: &Conn, msg: Vec<u8>| tx.send(msg).unwrap()
                },
            )
            .unwrap();
        client.connection().unwrap().send(payload.clone()).unwrap();
        assert_eq!(recv(&rx), payload);
        client.stop(WAIT);
        return;
    }
    let mut p = peer(server.local_addr());
    write_frame(&mut p, &payload).unwrap();
    assert_eq!(expect_frame(&mut p), payload);
    match i % 4 {
        2 => {
            write_frame(&mut p, b"close").unwrap();
            assert!(ends(&p));
        }
        3 => {
            p.write_all(&u32::MAX.to_be_bytes()).unwrap();
            assert!(ends(&p));
        }
        _ => {}
    }
}

#[test]
fn threads_and_fds_return_to_baseline_after_200_cycles_and_stop() {
    // The shared timing wheel's thread starts on first use and stays: start it first.
    threadnet::TimingWheel::global();
    let before_warm_up = thread_count();
    // Warm up, then wait for the warm-up's joined threads to leave /proc's count (a joined
    // thread may still be listed for a moment), so the baseline counts no dying thread.
    let server = echo_server();
    for i in 0..4 {
        cycle(&server, i);
    }
    server.stop(WAIT);
    drop(server);
    assert!(
        wait_until(WAIT, || thread_count() == before_warm_up),
        "the warm-up left {} threads, {before_warm_up} before it",
        thread_count()
    );
    let (threads0, fds0) = (thread_count(), fd_count());

    let t0 = Instant::now();
    let server = echo_server();
    let mut peak_threads = 0;
    for i in 0..200 {
        cycle(&server, i);
        peak_threads = peak_threads.max(thread_count());
    }
    // And some connections still open when the server stops, one of them with its reply
    // queue in use: stop must shut them down and join their threads.
    let mut open: Vec<_> = (0..5).map(|_| peer(server.local_addr())).collect();
    write_frame(&mut open[0], b"pending").unwrap();
    assert_eq!(expect_frame(&mut open[0]), b"pending");
    assert!(wait_until(WAIT, || server.connections().len() == 5));
    peak_threads = peak_threads.max(thread_count());
    assert!(
        peak_threads > threads0,
        "the counter sees no connection thread"
    );

    server.stop(ms(300));
    assert!(server.is_stopped());
    assert_eq!(server.connections().len(), 0);
    assert_eq!(server.metrics().connections_accepted, 205);
    drop(server);
    drop(open);

    // Joined threads may take a moment to leave /proc's count.
    let back = wait_until(WAIT, || thread_count() <= threads0 && fd_count() <= fds0);
    assert!(
        back,
        "threads {} (baseline {threads0}, peak {peak_threads}), fds {} (baseline {fds0}) after {:?}",
        thread_count(),
        fd_count(),
        t0.elapsed()
    );
    assert_eq!(thread_count(), threads0);
    assert_eq!(fd_count(), fds0);
}
