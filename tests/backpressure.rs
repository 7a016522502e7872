//! Bounded send queues (invariant 5) and what a caller sees when one is full: `try_send` hands
//! the message back in `Full`, `send_timeout` in `Timeout`; the byte bound; watermark events;
//! broadcast reports.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use common::*;
use threadnet::{
    codec::LengthDelimited, events::WatermarkEvent, ConnOptions, Connection, SendError, TcpServer,
    TrySendError,
};

type Conn = Connection<LengthDelimited>;

#[test]
fn try_send_and_send_timeout_hand_the_message_back_when_full() {
    let (server, conns) = handing_over(ConnOptions::new().send_queue_capacity(4));
    let _p = peer(server.local_addr()); // never reads
    let conn = recv(&conns);
    let accepted = fill(&conn, 64 * 1024, || assert!(conn.queued_messages() <= 4));
    assert!(accepted > 4);
    assert_eq!(conn.queued_messages(), 4, "a full queue holds its capacity");

    let msg = tagged(9, 9, 64 * 1024);
    match conn.try_send(msg.clone()) {
        Err(TrySendError::Full(back)) => assert_eq!(back, msg),
        other => panic!("try_send on a full queue: {other:?}"),
    }
    let e = conn.try_send(msg.clone()).unwrap_err();
    assert!(e.is_full() && !e.is_closed());
    assert_eq!(e.into_inner(), msg);

    let t0 = Instant::now();
    match conn.send_timeout(msg.clone(), ms(300)) {
        Err(SendError::Timeout(back)) => assert_eq!(back, msg),
        other => panic!("send_timeout on a full queue: {other:?}"),
    }
    let waited = t0.elapsed();
    assert!(waited >= ms(300), "gave up after {waited:?}");
    assert!(waited < ms(1300), "gave up only after {waited:?}");
    assert_eq!(conn.queued_messages(), 4);

    conn.close();
    server.stop(WAIT);
}

#[test]
fn a_blocked_send_returns_closed_when_the_connection_closes() {
    // Invariant 8: a send blocked on a full queue has a way out.
    let (server, conns) = handing_over(ConnOptions::new().send_queue_capacity(2));
    let _p = peer(server.local_addr());
    let conn = recv(&conns);
    fill(&conn, 64 * 1024, || {});
    let blocked = {
        let conn = conn.clone();
        thread::spawn(move || conn.send_timeout(vec![7; 10], WAIT * 4))
    };
    // Give the sender a moment to block, then close: it must return Closed with its message.
    thread::sleep(ms(100));
    let t0 = Instant::now();
    conn.close();
    match blocked.join().unwrap() {
        Err(SendError::Closed(m)) => assert_eq!(m, vec![7; 10]),
        other => panic!("blocked send after close: {other:?}"),
    }
    assert!(t0.elapsed() < ms(2000));
    server.stop(WAIT);
}

#[test]
fn queued_bytes_never_exceed_the_byte_bound() {
    const BOUND: usize = 64 * 1024;
    let (server, conns) = handing_over(
        ConnOptions::new()
            .send_queue_bytes(BOUND)
            .send_queue_capacity(100_000),
    );
    let _p = peer(server.local_addr());
    let conn = recv(&conns);
    // 4 KiB messages (4100 bytes encoded): the byte bound, not the count, is what fills.
    let mut max_seen = 0;
    fill(&conn, 4096, || {
        let b = conn.queued_bytes();
        max_seen = max_seen.max(b);
        assert!(b <= BOUND, "{b} bytes queued, bound {BOUND}");
    });
    let queued = conn.queued_bytes();
    assert!(queued <= BOUND);
    assert!(
        queued + 4100 > BOUND,
        "not full: {queued} queued, bound {BOUND}"
    );
    assert!(max_seen > BOUND / 2);
    assert!(conn.try_send(vec![0; 4096]).unwrap_err().is_full());
    // A small message that fits in what is left is still taken.
    let room = BOUND - queued;
    if room > 4 {
        conn.try_send(vec![0; room - 4])
            .expect("a message that fits");
        assert_eq!(conn.queued_bytes(), BOUND);
    }
    conn.close();
    server.stop(WAIT);
}

#[test]
fn one_message_larger_than_the_byte_bound_is_taken_by_an_empty_queue() {
    let (server, conns) = handing_over(ConnOptions::new().send_queue_bytes(1024));
    let mut p = peer(server.local_addr());
    let conn = recv(&conns);
    let big = tagged(0, 0, 100 * 1024);
    conn.try_send(big.clone())
        .expect("an empty queue takes one big message");
    assert_eq!(expect_frame(&mut p), big);
    conn.close();
    server.stop(WAIT);
}

#[test]
fn watermark_observer_sees_full_then_drained() {
    const BOUND: usize = 256 * 1024;
    let (etx, events) = mpsc::channel::<WatermarkEvent>();
    let options = ConnOptions::new()
        .send_queue_bytes(BOUND)
        .on_watermark(move |e| {
            let _ = etx.send(e);
        });
    let (server, conns) = handing_over(options);
    let mut p = peer(server.local_addr());
    let conn = recv(&conns);
    assert!(conn.is_writable());
    fill(&conn, 16 * 1024, || {});
    assert!(!conn.is_writable(), "a full queue is not writable");

    // A rise was reported while filling. (The order of the events is checked, and found
    // wanting, in `watermark_events_alternate_starting_with_a_rise`.)
    let so_far: Vec<WatermarkEvent> = events.try_iter().collect();
    assert!(
        so_far.iter().any(|e| e.full && e.id == conn.id()),
        "no full=true event while filling: {so_far:?}"
    );

    // The peer starts reading: the writer drains the queue and reports it.
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        while let Ok(n) = p.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    let drained = recv(&events);
    assert_eq!(drained.id, conn.id());
    assert!(!drained.full);
    assert!(drained.queued_bytes <= BOUND / 2, "{drained:?}");
    assert!(wait_until(WAIT, || conn.is_writable()));

    conn.shutdown(WAIT);
    reader.join().unwrap();
    server.stop(WAIT);
}

/// Sends 3000 messages of 4 KiB (12 MiB) to a peer that starts reading only once the queue
/// has risen above the high watermark (a non-reading peer's socket buffers hold about 4 MiB
/// here, so the rise is certain), then reads with a pause now and then (a slow consumer).
/// Returns every watermark event, once the queue has drained.
fn watermark_events(options: ConnOptions) -> (Vec<WatermarkEvent>, u64) {
    let (etx, events) = mpsc::channel::<WatermarkEvent>();
    let (gate_tx, gate) = mpsc::channel::<()>();
    let gate_tx = std::sync::Mutex::new(gate_tx);
    let options = options.on_watermark(move |e| {
        if e.full {
            let _ = gate_tx.lock().unwrap().send(());
        }
        let _ = etx.send(e);
    });
    let (server, conns) = handing_over(options);
    let p = peer(server.local_addr());
    let conn = recv(&conns);
    let reader = thread::spawn(move || {
        gate.recv_timeout(WAIT)
            .expect("the queue never rose above the high watermark");
        let mut r = std::io::BufReader::new(&p);
        let mut n = 0;
        while let Some(f) = read_frame(&mut r).unwrap() {
            assert_eq!(tag_of(&f), (0, n));
            n += 1;
            if n % 250 == 0 {
                thread::sleep(ms(20));
            }
        }
        n
    });
    for i in 0..3000 {
        conn.send(tagged(0, i, 4096)).unwrap();
    }
    conn.shutdown(WAIT);
    assert_eq!(reader.join().unwrap(), 3000);
    assert_eq!(conn.queued_bytes(), 0);
    assert!(conn.is_writable());
    let id = conn.id();
    server.stop(WAIT);
    (events.try_iter().collect(), id)
}

#[track_caller]
fn assert_alternate(all: &[WatermarkEvent], id: u64) {
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.id, id);
        assert_eq!(
            e.full,
            i % 2 == 0,
            "event {i} breaks the alternation: {:?}",
            &all[i.saturating_sub(2)..(i + 2).min(all.len())]
        );
    }
    if let Some(last) = all.last() {
        assert!(
            !last.full,
            "the queue is empty but the last event says full"
        );
    }
}

#[test]
fn watermark_events_alternate_starting_with_a_rise() {
    // The documented contract of ConnOptions::on_watermark: "the two alternate, starting with
    // a rise". A producer that pauses on full=true and resumes on full=false relies on it: if
    // the last event it sees is a stale full=true, it never resumes.
    //
    // High watermark = the byte bound: the send that crosses it must also wait for room,
    // and the writer's drain can race its rise event.
    let (at_bound, id) = watermark_events(ConnOptions::new().send_queue_bytes(64 * 1024));
    assert_alternate(&at_bound, id);
    // A high watermark of two messages, below the bound: crossings without waiting.
    let (below, id) = watermark_events(
        ConnOptions::new()
            .send_queue_bytes(64 * 1024)
            .high_watermark(8 * 1024),
    );
    assert_alternate(&below, id);
    assert!(
        !at_bound.is_empty() && !below.is_empty(),
        "the queue never rose above the high watermark: {} and {} events",
        at_bound.len(),
        below.len()
    );
}

#[test]
fn broadcast_reports_queued_full_and_closed_per_connection() {
    let (server, conns) = handing_over(ConnOptions::new().send_queue_capacity(2));
    let addr = server.local_addr().as_inet().unwrap();
    let stuck_peer = peer(addr); // never reads
    let stuck = recv(&conns);
    let mut live_peer = peer(addr);
    let live = recv(&conns);
    let closing_peer = peer(addr); // does not close, so the shutdown keeps it registered
    let closing = recv(&conns);

    fill(&stuck, 64 * 1024, || {});
    closing.shutdown(WAIT);
    assert_eq!(server.connections().len(), 3);

    let report = server.connections().broadcast(&b"news".to_vec()).unwrap();
    assert_eq!(report.queued, vec![live.id()]);
    assert_eq!(report.full, vec![stuck.id()]);
    assert_eq!(report.closed, vec![closing.id()]);
    assert_eq!(expect_frame(&mut live_peer), b"news");

    // An unencodable message is an error, and nothing is sent.
    let too_big = vec![0u8; 9 * 1024 * 1024];
    assert!(server.connections().broadcast(&too_big).is_err());

    stuck.close();
    closing.close();
    drop((stuck_peer, live_peer, closing_peer));
    server.stop(WAIT);
}

#[test]
fn broadcast_from_many_threads_reaches_every_connection() {
    let (server, conns) = handing_over(ConnOptions::new());
    let addr = server.local_addr().as_inet().unwrap();
    let mut peers = Vec::new();
    for _ in 0..4 {
        peers.push(peer(addr));
        recv(&conns);
    }
    let sent = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..3u32)
        .map(|t| {
            let registry = server.clone();
            let sent = Arc::clone(&sent);
            thread::spawn(move || {
                for i in 0..50 {
                    let r = registry.connections().broadcast(&tagged(t, i, 32)).unwrap();
                    assert_eq!(r.queued.len(), 4, "{r:?}");
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(sent.load(Ordering::SeqCst), 150);
    // Each peer gets all 150, and each sender's messages in its order.
    for p in &mut peers {
        let mut next = [0u32; 3];
        for _ in 0..150 {
            let (t, i) = tag_of(&expect_frame(p));
            assert_eq!(i, next[t as usize]);
            next[t as usize] += 1;
        }
    }
    drop(peers);
    server.stop(WAIT);
}

#[test]
fn send_timeout_from_a_handler_honours_its_timeout() {
    // Invariant 8: send has a way out by its timeout. From the reader thread (write-through
    // path), with a peer that never reads, the sends must end in Timeout soon after the
    // socket buffers fill.
    let (tx, result) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), move |conn: &Conn| {
            let tx = tx.clone();
            let conn = conn.clone();
            // The loop runs in on_message, on the reader thread.
            move |_: &Conn, _: Vec<u8>| {
                let mut accepted = 0u32;
                let (err, last) = loop {
                    let t = Instant::now();
                    match conn.send_timeout(tagged(0, accepted, 64 * 1024), ms(200)) {
                        Ok(()) => accepted += 1,
                        Err(e) => break (e, t),
                    }
                };
                let _ = tx.send((accepted, err.is_timeout(), last.elapsed()));
            }
        })
        .unwrap();
    let mut p = peer(server.local_addr());
    write_frame(&mut p, b"go").unwrap(); // and never read
    let outcome = result.recv_timeout(ms(3000));
    // Unblock the handler whatever happened, so the server can stop.
    server.connections().for_each(|c| c.close());
    let (accepted, timed_out, took) = outcome.expect("send_timeout(200 ms) did not return in 3 s");
    assert!(accepted > 0);
    assert!(timed_out, "the last send failed, but not with Timeout");
    assert!(
        took < ms(1200),
        "the last send_timeout(200 ms) took {took:?}"
    );
    server.stop(WAIT);
}
