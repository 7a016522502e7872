//! Echo with `LengthDelimited`: many concurrent connections, content checked, and message
//! order kept on both send paths (write-through from the reader thread, and the writer thread's
//! queue).

mod common;

use std::io::{BufReader, BufWriter, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::thread;

use common::*;
use threadnet::{codec::LengthDelimited, ConnOptions, Connection, TcpClient, TcpServer};

type Conn = Connection<LengthDelimited>;

fn echo_server(options: ConnOptions) -> threadnet::ServerHandle<LengthDelimited> {
    TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(LengthDelimited::new(), |_: &Conn| {
            |conn: &Conn, msg: Vec<u8>| {
                conn.send(msg).unwrap();
            }
        })
        .unwrap()
}

#[test]
fn eight_connections_each_echo_a_thousand_distinct_frames() {
    const CONNS: u32 = 8;
    const FRAMES: u32 = 1000;
    let server = echo_server(ConnOptions::new());
    let addr = server.local_addr().as_inet().unwrap();

    let (done_tx, done) = mpsc::channel();
    for c in 0..CONNS {
        let done_tx = done_tx.clone();
        thread::spawn(move || {
            let s = peer(addr);
            // Pipelined: one thread writes every frame while this one reads the echoes.
            let mut w = BufWriter::new(s.try_clone().unwrap());
            let writer = thread::spawn(move || {
                for f in 0..FRAMES {
                    write_frame(
                        &mut w,
                        &tagged(c, f, 8 + (f as usize * 7 + c as usize) % 300),
                    )
                    .unwrap();
                }
                w.flush().unwrap();
            });
            let mut r = BufReader::new(&s);
            for f in 0..FRAMES {
                let got = expect_frame(&mut r);
                assert_eq!(got, tagged(c, f, 8 + (f as usize * 7 + c as usize) % 300));
            }
            writer.join().unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            // Nothing more than the echoes, then EOF.
            assert_eq!(read_frame(&mut r).unwrap(), None);
            done_tx.send(c).unwrap();
        });
    }
    let mut finished: Vec<u32> = (0..CONNS).map(|_| recv(&done)).collect();
    finished.sort();
    assert_eq!(finished, (0..CONNS).collect::<Vec<_>>());
    assert!(wait_until(WAIT, || server.connections().is_empty()));
    assert_eq!(server.metrics().connections_accepted, CONNS as u64);
    server.stop(WAIT);
}

/// The server answers each request with three replies; the peer checks they come back in
/// exactly the order they were sent.
fn replies_keep_order(options: ConnOptions, pause_reader: bool) {
    const REQUESTS: u32 = 1000;
    const REPLIES: u32 = 3;
    // With the reader pausing: 1000 x 3 x 16 KiB = 48 MiB, so each burst between two pauses
    // is more than the loopback socket buffers hold.
    let reply_len = if pause_reader { 16 * 1024 } else { 1024 };
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(LengthDelimited::new(), move |_: &Conn| {
            move |conn: &Conn, msg: Vec<u8>| {
                let (_, seq) = tag_of(&msg);
                for k in 0..REPLIES {
                    conn.send_timeout(tagged(k, seq, reply_len), WAIT).unwrap();
                }
            }
        })
        .unwrap();

    let s = peer(server.local_addr());
    let mut w = BufWriter::new(s.try_clone().unwrap());
    let writer = thread::spawn(move || {
        for seq in 0..REQUESTS {
            write_frame(&mut w, &tagged(0, seq, 8)).unwrap();
        }
        w.flush().unwrap();
    });
    let mut r = BufReader::new(&s);
    for seq in 0..REQUESTS {
        for k in 0..REPLIES {
            let got = expect_frame(&mut r);
            assert_eq!(tag_of(&got), (k, seq), "reply out of order");
            assert_eq!(got, tagged(k, seq, reply_len));
        }
        if pause_reader && seq % 250 == 0 {
            // Stop reading for a moment so the socket fills and sends stall: write-through
            // falls back to the queue, and must not overtake what is queued.
            thread::sleep(ms(60));
        }
    }
    writer.join().unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_frame(&mut r).unwrap(), None);
    server.stop(WAIT);
}

#[test]
fn write_through_replies_keep_order() {
    replies_keep_order(ConnOptions::new(), false);
}

#[test]
fn write_through_replies_keep_order_when_the_socket_stalls() {
    // A short socket write timeout makes a stalled write-through fall back to the queue soon.
    replies_keep_order(ConnOptions::new().send_timeout(ms(20)), true);
}

#[test]
fn queued_replies_keep_order() {
    replies_keep_order(ConnOptions::new().write_through(false), false);
}

#[test]
fn queued_replies_keep_order_when_the_socket_stalls() {
    replies_keep_order(
        ConnOptions::new()
            .write_through(false)
            .send_queue_capacity(16),
        true,
    );
}

#[test]
fn sends_from_another_thread_keep_order() {
    // Replies from a thread other than the reader go through the queue; one sending thread's
    // messages arrive in the order sent.
    let (server, conns) = handing_over(ConnOptions::new());
    let s = peer(server.local_addr());
    let conn: Conn = recv(&conns);
    let sender = thread::spawn(move || {
        for seq in 0..1000 {
            conn.send(tagged(7, seq, 100 + seq as usize % 50)).unwrap();
        }
        conn.shutdown(WAIT);
    });
    let mut r = BufReader::new(&s);
    for seq in 0..1000 {
        assert_eq!(
            expect_frame(&mut r),
            tagged(7, seq, 100 + seq as usize % 50)
        );
    }
    assert_eq!(read_frame(&mut r).unwrap(), None);
    sender.join().unwrap();
    drop(r);
    drop(s);
    server.stop(WAIT);
}

#[test]
fn threadnet_client_echoes_through_threadnet_server() {
    let server = echo_server(ConnOptions::new());
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
    let conn = client.connection().expect("connected");
    for seq in 0..200 {
        conn.send(tagged(1, seq, 64)).unwrap();
    }
    for seq in 0..200 {
        assert_eq!(recv(&rx), tagged(1, seq, 64));
    }
    client.stop(WAIT);
    server.stop(WAIT);
}

#[test]
fn a_reply_is_not_held_back_by_a_slow_next_message() {
    // Two pipelined requests: the handler answers the first at once, then takes its time over
    // the second. The first answer must reach the peer while the second is being worked on.
    let (release, gate) = mpsc::channel::<()>();
    let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), move |_: &Conn| {
            let gate = std::sync::Arc::clone(&gate);
            move |conn: &Conn, msg: Vec<u8>| {
                if msg == b"slow" {
                    let _ = gate.lock().unwrap().recv_timeout(WAIT);
                }
                conn.send(msg).unwrap();
            }
        })
        .unwrap();
    let mut p = peer(server.local_addr());
    let mut wire = frame(b"fast");
    wire.extend(frame(b"slow"));
    p.write_all(&wire).unwrap();
    p.set_read_timeout(Some(ms(1000))).unwrap();
    let first = read_frame(&mut p);
    release.send(()).unwrap();
    p.set_read_timeout(Some(WAIT)).unwrap();
    match first {
        Ok(Some(f)) => assert_eq!(f, b"fast"),
        other => panic!("the first reply was held back while the second was handled: {other:?}"),
    }
    assert_eq!(expect_frame(&mut p), b"slow");
    drop(p);
    server.stop(WAIT);
}
