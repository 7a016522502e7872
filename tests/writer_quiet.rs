//! A connection's writer thread ends after a quiet spell and comes back on demand
//! (`ConnOptions::writer_quiet`): a connection that was busy once and is quiet now costs one
//! thread, its reader, and nothing sent across the writer's comings and goings is lost or
//! reordered.
//!
//! The tests count this process's threads named `threadnet-writer`, so they run one at a time
//! (`SERIAL`).

mod common;

use std::sync::Mutex;
use std::thread;

use common::*;
use threadnet::ConnOptions;

/// One test at a time: each counts the process's writer threads.
static SERIAL: Mutex<()> = Mutex::new(());

/// This process's threads whose name begins `threadnet-write` (the kernel keeps 15 bytes of
/// a thread's name).
fn writer_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("threadnet-write"))
        .count()
}

#[test]
fn a_writer_ends_after_a_quiet_spell_and_a_later_send_starts_another() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (server, conns) = handing_over(ConnOptions::new().writer_quiet(ms(50)));
    let mut client = peer(server.local_addr());
    let conn = recv(&conns);
    assert_eq!(writer_threads(), 0, "no send yet, no writer");

    // `try_send` always queues, so it starts the writer thread.
    conn.try_send(b"first".to_vec()).unwrap();
    assert_eq!(expect_frame(&mut client), b"first");
    assert!(
        wait_until(WAIT, || writer_threads() == 0),
        "the writer thread still runs {WAIT:?} after its queue went quiet"
    );

    // Back on demand: a queued send starts a new writer, which writes it.
    conn.try_send(b"second".to_vec()).unwrap();
    assert_eq!(expect_frame(&mut client), b"second");
    assert!(wait_until(WAIT, || conn.stats().messages_sent == 2));

    // A graceful close after the writer has gone still drains and sends the FIN.
    assert!(wait_until(WAIT, || writer_threads() == 0));
    conn.try_send(b"third".to_vec()).unwrap();
    conn.shutdown(WAIT);
    let (frames, end) = drain_frames(&client);
    assert_eq!(frames, vec![b"third".to_vec()]);
    end.expect("the FIN after the last message");
    drop(client);
    server.stop(WAIT);
}

#[test]
fn nothing_is_lost_or_reordered_while_the_writer_comes_and_goes() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A 1 ms quiet spell: the writer ends between almost every burst below.
    let (server, conns) = handing_over(ConnOptions::new().writer_quiet(ms(1)));
    let client = peer(server.local_addr());
    let conn = recv(&conns);
    const N: u32 = 3000;
    let sender = {
        let conn = conn.clone();
        thread::spawn(move || {
            for seq in 0..N {
                let msg = tagged(1, seq, 64 + (seq as usize % 7) * 512);
                // Queued sends (they start a writer) and sends written through (from this
                // thread, without waiting), in bursts with quiet spells between them.
                if seq % 3 == 0 {
                    while let Err(e) = conn.try_send(msg.clone()) {
                        assert!(e.is_full(), "try_send {seq}: {e:?}");
                        thread::yield_now();
                    }
                } else {
                    conn.send(msg)
                        .unwrap_or_else(|e| panic!("send {seq}: {e:?}"));
                }
                if seq % 25 == 0 {
                    thread::sleep(ms(2)); // longer than the quiet spell: the writer may go
                }
            }
        })
    };
    let mut reader = std::io::BufReader::new(&client);
    for want in 0..N {
        let frame = expect_frame(&mut reader);
        assert_eq!(
            tag_of(&frame),
            (1, want),
            "message {want} lost or out of order"
        );
    }
    sender.join().unwrap();
    assert!(wait_until(WAIT, || conn.stats().messages_sent == u64::from(N)));
    drop(reader);
    drop(client);
    server.stop(WAIT);
}

#[test]
fn broadcasts_and_heartbeats_to_quiet_connections_start_no_writer() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A writer, once started, would stay for the whole test: any started shows in the count.
    // Heartbeats and the broadcast go to separate servers: a send that finds another write
    // holding the socket (a heartbeat on the wheel's thread beside the broadcast) is queued,
    // rightly, and would start a writer.
    let quiet = || ConnOptions::new().writer_quiet(ms(60_000));
    let beat = threadnet::idle::Heartbeat::new(ms(20), common::frame(b"beat")).misses(500);
    let (beating, beating_conns) = handing_over(quiet().heartbeat(beat));
    let (broadcasting, broadcasting_conns) = handing_over(quiet());
    let mut beaten: Vec<_> = (0..3).map(|_| peer(beating.local_addr())).collect();
    let mut told: Vec<_> = (0..3).map(|_| peer(broadcasting.local_addr())).collect();
    for _ in 0..3 {
        recv(&beating_conns);
        recv(&broadcasting_conns);
    }
    // Heartbeats go out on the timing wheel's thread: each client gets several.
    for client in &mut beaten {
        for _ in 0..3 {
            assert_eq!(expect_frame(client), b"beat");
        }
    }
    let report = broadcasting
        .connections()
        .broadcast(&b"news".to_vec())
        .unwrap();
    assert_eq!(
        report.queued.len(),
        3,
        "every connection took it: {report:?}"
    );
    for client in &mut told {
        assert_eq!(expect_frame(client), b"news");
    }
    assert_eq!(
        writer_threads(),
        0,
        "a heartbeat or a broadcast that the socket took at once started a writer thread"
    );
    drop((beaten, told));
    beating.stop(WAIT);
    broadcasting.stop(WAIT);
}

#[test]
fn a_slow_reader_gets_everything_in_order_while_the_writer_comes_and_goes() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Large messages from another thread: the socket takes part of one, the writer thread is
    // woken to finish it, and with a 1 ms quiet spell it ends between the reader's pauses.
    let (server, conns) = handing_over(ConnOptions::new().writer_quiet(ms(1)));
    let client = peer(server.local_addr());
    let conn = recv(&conns);
    const N: u32 = 40;
    let sender = {
        let conn = conn.clone();
        thread::spawn(move || {
            for seq in 0..N {
                let msg = tagged(2, seq, 256 * 1024);
                conn.send(msg)
                    .unwrap_or_else(|e| panic!("send {seq}: {e:?}"));
            }
            conn.shutdown(WAIT); // everything accepted is written before the FIN
        })
    };
    // A reader that takes 16 KiB at a time and pauses now and then.
    let mut slow = std::io::BufReader::with_capacity(16 * 1024, &client);
    for want in 0..N {
        let frame = expect_frame(&mut slow);
        assert_eq!(
            tag_of(&frame),
            (2, want),
            "message {want} lost or out of order"
        );
        if want % 4 == 0 {
            thread::sleep(ms(5));
        }
    }
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut slow, &mut rest).expect("a clean FIN after the last");
    assert!(
        rest.is_empty(),
        "{} bytes after the last message",
        rest.len()
    );
    sender.join().unwrap();
    drop(slow);
    drop(client);
    server.stop(WAIT);
}
