//! Metrics: the counters match a scripted workload exactly, the Prometheus text parses, it is
//! served at /metrics over the crate's own HTTP codec, per-connection stats, the event hook.

mod common;
#[path = "common/process.rs"]
mod process;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::*;
use threadnet::metrics::serve_prometheus;
use threadnet::{
    codec::LengthDelimited, events::ConnEvent, CloseReason, ConnOptions, Connection, Handler,
    ServerHandle, TcpServer,
};

type Conn = Connection<LengthDelimited>;

/// Echoes; panics on the message `panic`; reports each close.
struct Echo(Sender<Reason>);

impl Handler<LengthDelimited> for Echo {
    fn on_message(&mut self, conn: &Conn, msg: Vec<u8>) {
        assert!(msg != b"panic", "asked to panic (expected by a test)");
        conn.send(msg).unwrap();
    }
    fn on_close(&mut self, _: &Conn, reason: &CloseReason) {
        let _ = self.0.send(Reason::from(reason));
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

fn server(max_connections: usize, tx: Sender<Reason>) -> ServerHandle<LengthDelimited> {
    TcpServer::builder()
        .max_connections(max_connections)
        .options(ConnOptions::new().max_frame_length(100))
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()))
        .unwrap()
}

#[test]
fn counters_match_a_scripted_workload_exactly() {
    const CLIENTS: usize = 3;
    const MESSAGES: usize = 5;
    let payload = [7u8; 10];
    let (tx, closed) = mpsc::channel();
    let server = server(CLIENTS, tx);
    let mut peers: Vec<TcpStream> = (0..CLIENTS).map(|_| peer(server.local_addr())).collect();
    for p in &mut peers {
        for _ in 0..MESSAGES {
            write_frame(p, &payload).unwrap();
            assert_eq!(expect_frame(p), payload);
        }
    }
    // One over the limit: accepted by the kernel, closed at once, counted as refused.
    let refused = peer(server.local_addr());
    assert!(ends(&refused));
    until(|| server.metrics().connections_refused == 1);
    assert_eq!(server.metrics().connections_active, 3);

    // Peer 0: a header over the frame limit (a codec error). Peer 1: a message that makes the
    // handler panic. Peer 2: closes cleanly.
    peers[0].write_all(&1000u32.to_be_bytes()).unwrap();
    write_frame(&mut peers[1], b"panic").unwrap();
    let mut reasons: Vec<Reason> = (0..2).map(|_| recv(&closed)).collect();
    drop(peers.pop());
    reasons.push(recv(&closed));
    assert!(reasons.contains(&Reason::PeerClosed), "{reasons:?}");
    until(|| server.connections().is_empty());

    let m = server.metrics();
    let frame_bytes = (4 + payload.len()) as u64;
    let sent = (CLIENTS * MESSAGES) as u64;
    assert_eq!(m.connections_accepted, 3);
    assert_eq!(m.connections_refused, 1);
    assert_eq!(m.connections_active, 0);
    assert_eq!(m.messages_received, sent + 1, "the echoed ones and `panic`");
    assert_eq!(m.messages_sent, sent);
    assert_eq!(m.bytes_received, sent * frame_bytes + 4 + (4 + 5));
    assert_eq!(m.bytes_sent, sent * frame_bytes);
    assert_eq!(m.codec_errors, 1);
    assert_eq!(m.panics, 1);
    assert_eq!(m.messages_dropped, 0);
    assert_eq!(m.send_queue_full, 0);
    let by_reason: Vec<(&str, u64)> = m.closed_by_reason().filter(|(_, n)| *n > 0).collect();
    assert_eq!(by_reason, [("peer_closed", 1), ("error", 1), ("panic", 1)]);
    assert_eq!(m.connections_closed_total(), 3);
    server.stop(WAIT);
}

/// The totals are summed from the connections when read, live ones and gone ones: while
/// 40 connections come and go, every counter only grows from one snapshot to the next, and
/// once they are all gone the totals are exact.
#[test]
fn totals_only_grow_while_connections_come_and_go() {
    const CLIENTS: usize = 40;
    const MESSAGES: usize = 4;
    let (tx, closed) = mpsc::channel();
    let server = Arc::new(server(CLIENTS, tx));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
        std::thread::spawn(move || {
            let totals = |m: threadnet::metrics::MetricsSnapshot| {
                [
                    m.messages_received,
                    m.messages_sent,
                    m.bytes_received,
                    m.bytes_sent,
                ]
            };
            let mut last = totals(server.metrics());
            let mut snapshots = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let now = totals(server.metrics());
                for (n, l) in now.iter().zip(&last) {
                    assert!(n >= l, "a total went down: {last:?} then {now:?}");
                }
                last = now;
                snapshots += 1;
            }
            snapshots
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let addr = server.local_addr();
            std::thread::spawn(move || {
                let mut p = peer(addr);
                for m in 0..MESSAGES {
                    let payload = vec![(i + m) as u8; 1 + i % 7];
                    write_frame(&mut p, &payload).unwrap();
                    assert_eq!(expect_frame(&mut p), payload);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    for _ in 0..CLIENTS {
        assert_eq!(recv(&closed), Reason::PeerClosed);
    }
    until(|| server.connections().is_empty());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(watcher.join().unwrap() > 0, "no snapshot was taken");
    let m = server.metrics();
    let messages = (CLIENTS * MESSAGES) as u64;
    let bytes: u64 = (0..CLIENTS)
        .map(|i| (MESSAGES * (4 + 1 + i % 7)) as u64)
        .sum();
    assert_eq!((m.messages_received, m.messages_sent), (messages, messages));
    assert_eq!((m.bytes_received, m.bytes_sent), (bytes, bytes));
}

#[test]
fn a_full_queue_and_dropped_messages_are_counted() {
    let (tx, closed) = mpsc::channel();
    let server = TcpServer::builder()
        // 64 MiB messages: more than the socket buffers can ever hold (here up to 4 MiB to send
        // and 32 MiB to receive, `tcp_wmem` and `tcp_rmem`), and than the default frame.
        .options(
            ConnOptions::new()
                .send_queue_capacity(2)
                .max_frame_length(128 << 20),
        )
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()))
        .unwrap();
    let p = peer(server.local_addr()); // never reads
    until(|| server.connections().len() == 1);
    let conn = server.connections().get(1).unwrap();
    let big = vec![0u8; 64 << 20];
    let mut full = 0;
    let mut accepted = 0;
    // The first message fits (the queue holds at least one, whatever its size) and stalls in
    // the writer on a peer that does not read; every try_send after it finds the queue full.
    while full < 3 {
        match conn.try_send(big.clone()) {
            Ok(()) => accepted += 1,
            Err(_) => full += 1,
        }
    }
    assert_eq!(accepted, 1);
    let queued = conn.stats().queued_messages as u64;
    assert!(queued >= 1);
    conn.close();
    match recv(&closed) {
        Reason::Closed { dropped } => assert_eq!(dropped, queued),
        other => panic!("expected Closed, got {other:?}"),
    }
    let m = server.metrics();
    assert_eq!(m.send_queue_full, 3);
    assert_eq!(m.messages_dropped, queued);
    drop(p);
    server.stop(WAIT);
}

#[test]
fn connection_stats_count_each_way() {
    let (tx, _closed) = mpsc::channel();
    let server = server(10, tx);
    let mut p = peer(server.local_addr());
    for msg in [&b"a"[..], b"bb", b"ccc"] {
        write_frame(&mut p, msg).unwrap();
        assert_eq!(expect_frame(&mut p), msg);
    }
    let conn = server.connections().get(1).unwrap();
    // A write is counted just after the bytes left, so the peer may read them first.
    until(|| conn.stats().bytes_sent == 18);
    let s = conn.stats();
    assert_eq!((s.messages_received, s.messages_sent), (3, 3));
    assert_eq!((s.bytes_received, s.bytes_sent), (18, 18));
    assert_eq!((s.queued_messages, s.queued_bytes), (0, 0));
    drop(p);
    server.stop(WAIT);
}

/// Checks the Prometheus text exposition format: every sample line is `name{labels} value`
/// with a `# HELP` and a `# TYPE` line for its name before it. Returns the samples.
fn parse_prometheus(text: &str) -> Vec<(String, u64)> {
    let mut helped = HashSet::new();
    let mut typed = HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(rest.len() > name.len() + 1, "HELP without text: {line}");
            helped.insert(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            if kind == "counter" {
                assert!(
                    name.ends_with("_total"),
                    "a counter is named *_total: {name}"
                );
            }
            typed.insert(name.to_string());
        } else {
            let (series, value) = line.rsplit_once(' ').expect("name value");
            let value: u64 = value.parse().expect("an integer value");
            let name = series.split('{').next().unwrap();
            assert!(
                name.starts_with("threadnet_")
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            if let Some(labels) = series.strip_prefix(name) {
                if !labels.is_empty() {
                    let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}'));
                    let (key, val) = inner.and_then(|l| l.split_once('=')).expect("k=\"v\"");
                    assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    assert!(val.starts_with('"') && val.ends_with('"'), "{line}");
                }
            }
            assert!(
                helped.contains(name) && typed.contains(name),
                "no HELP/TYPE: {line}"
            );
            samples.push((series.to_string(), value));
        }
    }
    samples
}

#[test]
fn the_prometheus_text_parses_and_is_served_at_slash_metrics() {
    let (tx, _closed) = mpsc::channel();
    let server = server(10, tx);
    let mut p = peer(server.local_addr());
    write_frame(&mut p, b"x").unwrap();
    assert_eq!(expect_frame(&mut p), b"x");
    // A write is counted just after the bytes left, so the peer may read them first.
    until(|| server.metrics().bytes_sent == 5);

    let samples = parse_prometheus(&server.metrics().to_prometheus());
    let get = |name: &str| samples.iter().find(|(n, _)| n == name).map(|s| s.1);
    assert_eq!(get("threadnet_connections_accepted_total"), Some(1));
    assert_eq!(get("threadnet_connections_active"), Some(1));
    assert_eq!(get("threadnet_messages_received_total"), Some(1));
    assert_eq!(get("threadnet_bytes_sent_total"), Some(5));
    assert_eq!(
        get("threadnet_connections_closed_total{reason=\"peer_closed\"}"),
        Some(0)
    );

    let watched = server.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = serve_prometheus(listener, move || watched.metrics().to_prometheus()).unwrap();
    let mut s = peer(http.local_addr());
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let served = parse_prometheus(body);
    assert!(served.contains(&("threadnet_messages_sent_total".to_string(), 1)));
    drop(s); // our EOF: the server's side of the closed connection ends at once

    let mut s = peer(http.local_addr());
    s.write_all(b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    drop(s);
    drop(p);
    http.stop(WAIT);
    server.stop(WAIT);
}

#[test]
fn the_event_hook_sees_opens_and_closes_with_reasons() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    let (tx, closed) = mpsc::channel();
    let server = TcpServer::builder()
        .options(ConnOptions::new().max_frame_length(8).on_event(move |e| {
            l.lock().unwrap().push(match e {
                ConnEvent::Opened { id, .. } => format!("#{id} opened"),
                ConnEvent::Closed { id, reason, .. } => format!("#{id} closed: {reason}"),
                _ => "other".to_string(),
            })
        }))
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()))
        .unwrap();
    let mut p = peer(server.local_addr());
    p.write_all(&100u32.to_be_bytes()).unwrap();
    recv(&closed);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0], "#1 opened");
    assert!(log[1].starts_with("#1 closed: error:"), "{log:?}");
    server.stop(WAIT);
}

#[test]
fn the_echo_example_serves_its_counters_with_metrics_addr() {
    let mut echo = process::Echo::spawn(process::Echo::command(&[
        "--addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
    ]));
    let addr = echo.listening();
    let line = echo.line();
    let metrics_addr: std::net::SocketAddr = line
        .strip_prefix("metrics on ")
        .unwrap_or_else(|| panic!("expected `metrics on ADDR`, got {line:?}"))
        .parse()
        .unwrap();
    let mut p = peer(addr);
    for _ in 0..3 {
        write_frame(&mut p, b"abc").unwrap();
        assert_eq!(expect_frame(&mut p), b"abc");
    }
    drop(p);
    let scrape = || {
        let mut s = peer(metrics_addr);
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
        parse_prometheus(&body)
    };
    let has = |samples: &[(String, u64)], name: &str, v: u64| {
        samples.iter().any(|(n, x)| n == name && *x == v)
    };
    // The peer's close is counted once the server has finished that connection.
    let deadline = Instant::now() + WAIT;
    let samples = loop {
        let samples = scrape();
        if has(
            &samples,
            "threadnet_connections_closed_total{reason=\"peer_closed\"}",
            1,
        ) {
            break samples;
        }
        assert!(Instant::now() < deadline, "the close was never counted");
    };
    assert!(has(&samples, "threadnet_connections_accepted_total", 1));
    assert!(has(&samples, "threadnet_messages_received_total", 3));
    assert!(has(&samples, "threadnet_messages_sent_total", 3));
    assert!(has(&samples, "threadnet_bytes_received_total", 21));
    assert!(has(&samples, "threadnet_bytes_sent_total", 21));
    assert!(process::kill("TERM", echo.pid()));
    let status = echo.wait_exit(process::CHILD_WAIT).expect("echo exits");
    assert_eq!(status.code(), Some(0));
}
