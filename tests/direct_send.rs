//! Sends from a thread that is neither the connection's reader nor its writer: written
//! straight to the socket when nothing is queued and the socket takes the bytes at once, with
//! no writer thread woken; queued (in order, nothing lost) when it does not.
//!
//! One test in this file, so that the process's thread list is this test's alone.

mod common;

use std::sync::mpsc;
use std::thread;

use common::*;
use threadnet::{codec::LengthDelimited, Connection, TcpServer};

/// Threads of this process named like a connection's writer (`threadnet-writer`, which the
/// kernel keeps as its first 15 bytes).
fn writer_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "threadnet-write")
        .count()
}

#[test]
fn sends_from_another_thread_write_directly_and_queue_in_order_when_the_socket_is_full() {
    let (tx, conns) = mpsc::channel();
    let server = TcpServer::builder()
        .start(
            LengthDelimited::new(),
            move |conn: &Connection<LengthDelimited>| {
                let _ = tx.send(conn.clone());
                |_: &Connection<LengthDelimited>, _: Vec<u8>| {}
            },
        )
        .unwrap();
    let mut peer = peer(server.local_addr());
    let conn = recv(&conns);

    // 1. A reading peer: every send from this thread is written at once, no writer thread.
    for i in 0..200u32 {
        conn.send(tagged(0, i, 512)).unwrap();
        assert_eq!(tag_of(&expect_frame(&mut peer)), (0, i));
    }
    assert_eq!(
        writer_threads(),
        0,
        "a send from another thread woke a writer"
    );

    // 2. A slow peer and large frames: some sends find the socket full (queued, or started
    // and finished by the writer thread). Everything arrives once, in order.
    const N: u32 = 64;
    let sender = {
        let conn = conn.clone();
        thread::spawn(move || {
            for i in 0..N {
                conn.send(tagged(1, i, 256 * 1024)).unwrap();
            }
        })
    };
    let mut got = Vec::new();
    while got.len() < N as usize {
        // Read slowly for a while, so the socket buffers fill and sends must wait.
        if got.len() < 8 {
            thread::sleep(ms(20));
        }
        let frame = expect_frame(&mut peer);
        got.push(tag_of(&frame));
    }
    sender.join().unwrap();
    assert_eq!(got, (0..N).map(|i| (1, i)).collect::<Vec<_>>());
    assert_eq!(conn.stats().messages_sent, 200 + u64::from(N));

    drop(peer);
    server.stop(WAIT);
}
