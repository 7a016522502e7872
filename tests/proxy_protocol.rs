//! The PROXY protocol server option (`ServerBuilder::proxy_protocol`): v1 and v2 headers over
//! real loopback sockets, the client's address in `peer_addr()`, the balancer's in
//! `proxied_by()`, the bytes after the header intact for the codec, and every bad header
//! (malformed, oversize, missing) refused without a handler ever being made.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{ms, peer, recv, WAIT};
use threadnet::{codec::Lines, Addr, Connection, ServerBuilder, ServerHandle, TcpServer};

/// What a connection's handler saw: its `peer_addr()` and `proxied_by()`.
type Seen = (Addr, Option<Addr>);

struct Server {
    handle: ServerHandle<Lines>,
    seen: mpsc::Receiver<Seen>,
    made: Arc<AtomicUsize>,
}

/// A line server that answers each line with `PEER VIA LINE`, where VIA is the balancer's
/// address or `-`, and reports what each new connection saw.
fn start(builder: ServerBuilder) -> Server {
    let (tx, seen) = mpsc::channel();
    let made = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&made);
    let handle = builder
        .start(Lines::new(), move |conn: &Connection<Lines>| {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send((conn.peer_addr(), conn.proxied_by()));
            |conn: &Connection<Lines>, line: String| {
                let via = conn.proxied_by().map_or("-".to_string(), |a| a.to_string());
                let _ = conn.send(format!("{} {via} {line}", conn.peer_addr()));
            }
        })
        .unwrap();
    Server { handle, seen, made }
}

fn proxied() -> Server {
    start(
        TcpServer::builder()
            .proxy_protocol(true)
            .proxy_header_timeout(ms(500)),
    )
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn v2(cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x20 | cmd);
    h.push(fam);
    h.extend_from_slice(&(block.len() as u16).to_be_bytes());
    h.extend_from_slice(block);
    h
}

/// v2 PROXY TCP over IPv4 from 192.0.2.7:56324 to 10.0.0.1:443, with an ALPN TLV.
fn v2_tcp4() -> Vec<u8> {
    v2(
        1,
        0x11,
        &[
            192, 0, 2, 7, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb, 0x01, 0x00, 0x02, b'h', b'2',
        ],
    )
}

/// v2 PROXY TCP over IPv6 from [2001:db8::7]:4660 to [::1]:80.
fn v2_tcp6() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    b.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    b.extend_from_slice(&[0x12, 0x34, 0x00, 0x50]);
    v2(1, 0x21, &b)
}

/// Sends `header` and two lines in one write; returns the connection's view and both replies.
fn exchange(server: &Server, header: &[u8]) -> (Seen, Vec<String>, TcpStream) {
    let mut s = peer(server.handle.local_addr());
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(b"first\nsecond\n");
    s.write_all(&bytes).unwrap();
    let seen = recv(&server.seen);
    let mut r = BufReader::new(s.try_clone().unwrap());
    let replies = (0..2)
        .map(|_| {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            line
        })
        .collect();
    (seen, replies, s)
}

/// The connection is closed by the server: EOF (or a reset) before `WAIT`.
#[track_caller]
fn closed_by_server(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("got {n} bytes instead of a close"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("no close within {WAIT:?}: {e}"),
    }
}

/// Waits (bounded) until the server counts `n` refused connections.
#[track_caller]
fn refused(server: &Server, n: u64) {
    let until = Instant::now() + WAIT;
    while server.handle.metrics().connections_refused < n {
        assert!(
            Instant::now() < until,
            "connections_refused stays below {n}"
        );
        thread::yield_now();
    }
    assert_eq!(server.handle.metrics().connections_refused, n);
}

#[test]
fn headers_that_name_a_client_make_it_the_peer() {
    let server = proxied();
    for (header, client) in [
        (
            b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n".to_vec(),
            "192.0.2.7:56324",
        ),
        (
            b"PROXY TCP6 2001:db8::7 ::1 4660 80\r\n".to_vec(),
            "[2001:db8::7]:4660",
        ),
        (v2_tcp4(), "192.0.2.7:56324"),
        (v2_tcp6(), "[2001:db8::7]:4660"),
    ] {
        let ((peer_addr, via), replies, s) = exchange(&server, &header);
        let balancer = s.local_addr().unwrap();
        assert_eq!(peer_addr, sa(client));
        assert_eq!(via, Some(Addr::from(balancer)));
        // The bytes right after the header reached the codec intact, in order.
        assert_eq!(
            replies,
            [
                format!("{client} {balancer} first\n"),
                format!("{client} {balancer} second\n")
            ]
        );
    }
    assert_eq!(server.handle.metrics().connections_refused, 0);
    assert_eq!(server.handle.metrics().connections_accepted, 4);
    server.handle.stop(WAIT);
}

#[test]
fn unknown_and_local_keep_the_socket_addresses() {
    let server = proxied();
    let ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let longest = format!("PROXY UNKNOWN {ip} {ip} 65535 65535\r\n");
    assert_eq!(longest.len(), 107);
    for header in [
        b"PROXY UNKNOWN\r\n".to_vec(),
        longest.into_bytes(),
        v2(0, 0, &[]),
        // LOCAL (a health check) with an address block anyway: skipped, by its length.
        v2(0, 0x11, &v2_tcp4()[16..]),
    ] {
        let ((peer_addr, via), replies, s) = exchange(&server, &header);
        let own = s.local_addr().unwrap();
        assert_eq!(peer_addr, own);
        assert_eq!(via, None);
        assert_eq!(
            replies,
            [format!("{own} - first\n"), format!("{own} - second\n")]
        );
    }
    server.handle.stop(WAIT);
}

#[test]
fn a_header_sent_one_byte_at_a_time_is_read_whole() {
    let server = proxied();
    for header in [
        b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n".to_vec(),
        v2_tcp4(),
    ] {
        let mut s = peer(server.handle.local_addr());
        for b in &header {
            s.write_all(&[*b]).unwrap();
            // Not synchronisation: a pause so that each byte is a segment of its own.
            thread::sleep(ms(2));
        }
        s.write_all(b"after\n").unwrap();
        let (peer_addr, via) = recv(&server.seen);
        assert_eq!(peer_addr, sa("192.0.2.7:56324"));
        assert_eq!(via, Some(Addr::from(s.local_addr().unwrap())));
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        assert!(line.ends_with(" after\n"), "{line:?}");
    }
    server.handle.stop(WAIT);
}

#[test]
fn malformed_and_oversize_headers_are_refused() {
    let server = proxied();
    let mut huge = v2(1, 0x11, &[]);
    huge[14..16].copy_from_slice(&537u16.to_be_bytes());
    let mut bad = vec![
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".to_vec(),
        b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
        b"PROXY TCP4 ::1 ::1 1 2\r\n".to_vec(),
        // No CRLF within 107 bytes.
        [&b"PROXY UNKNOWN "[..], &[b'a'; 100]].concat(),
        huge,
    ];
    let mut bad_version = v2_tcp4();
    bad_version[12] = 0x31;
    bad.push(bad_version);
    for (i, header) in bad.iter().enumerate() {
        let mut s = peer(server.handle.local_addr());
        let sent = Instant::now();
        s.write_all(header).unwrap();
        closed_by_server(&mut s);
        // Refused as soon as it is seen wrong, not at the deadline.
        assert!(
            sent.elapsed() < ms(500),
            "header {i} waited for the deadline"
        );
        refused(&server, i as u64 + 1);
    }
    // A truncated v2 header, then EOF: refused too.
    let mut s = peer(server.handle.local_addr());
    s.write_all(&v2_tcp4()[..20]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    closed_by_server(&mut s);
    refused(&server, bad.len() as u64 + 1);
    // None of them got a handler, nor counts as accepted.
    assert_eq!(server.made.load(Ordering::SeqCst), 0);
    assert_eq!(server.handle.metrics().connections_accepted, 0);
    server.handle.stop(WAIT);
    assert_eq!(server.handle.connections().len(), 0);
}

#[test]
fn a_client_that_sends_no_header_is_closed_at_the_deadline() {
    let server = proxied(); // a 500 ms header deadline
    let mut silent = peer(server.handle.local_addr());
    // Half a header, then nothing.
    let mut partial = peer(server.handle.local_addr());
    partial.write_all(b"PROXY TCP4 192.0").unwrap();
    let start = Instant::now();
    closed_by_server(&mut silent);
    closed_by_server(&mut partial);
    assert!(start.elapsed() >= ms(400), "closed before the deadline");
    refused(&server, 2);
    assert_eq!(server.made.load(Ordering::SeqCst), 0);
    // The server goes on: a client with a header is served.
    let (seen, replies, s) = exchange(&server, b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n");
    assert_eq!(seen.0, sa("192.0.2.7:1"));
    assert!(replies[1].ends_with(" second\n"));
    drop(s);
    server.handle.stop(WAIT);
}

#[test]
fn stop_does_not_wait_for_a_header_deadline() {
    let server = start(
        TcpServer::builder()
            .proxy_protocol(true)
            .proxy_header_timeout(Duration::from_secs(60)),
    );
    let mut s = peer(server.handle.local_addr());
    // The connection thread is waiting for the header once the server counts it.
    let until = Instant::now() + WAIT;
    while server.handle.connections().is_empty() {
        assert!(Instant::now() < until);
        thread::yield_now();
    }
    let start = Instant::now();
    server.handle.stop(ms(200));
    assert!(
        start.elapsed() < WAIT,
        "stop waited for the header deadline"
    );
    assert_eq!(server.handle.connections().len(), 0);
    closed_by_server(&mut s);
    assert_eq!(server.made.load(Ordering::SeqCst), 0);
}

#[test]
fn off_by_default_a_header_is_just_bytes() {
    let server = start(TcpServer::builder());
    let (seen, replies, s) = exchange(&server, b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n");
    let own = s.local_addr().unwrap();
    assert_eq!(seen, (Addr::from(own), None));
    assert_eq!(
        replies[0],
        format!("{own} - PROXY TCP4 192.0.2.7 10.0.0.1 1 2\n")
    );
    drop(s);
    server.handle.stop(WAIT);
}

/// Threads of this process named `name` now (`/proc/self/task/*/comm`).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

#[test]
fn a_refused_connection_that_was_sent_to_leaves_no_writer_behind() {
    let server = proxied();
    let mut s = peer(server.handle.local_addr());
    let until = Instant::now() + WAIT;
    while server.handle.connections().is_empty() {
        assert!(Instant::now() < until);
        thread::yield_now();
    }
    // A broadcast reaches the connection while it waits for its header: it starts a writer.
    let report = server.handle.connections().broadcast(&"early".to_string());
    assert_eq!(report.unwrap().queued.len(), 1);
    let mut early = [0u8; 6];
    s.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"early\n");
    s.write_all(b"not a PROXY header\r\n").unwrap();
    closed_by_server(&mut s);
    refused(&server, 1);
    server.handle.stop(WAIT);
    // The writer ended with the connection (other tests' writers end within their tests).
    let until = Instant::now() + WAIT;
    while threads_named("threadnet-writer") > 0 {
        assert!(
            Instant::now() < until,
            "a writer thread outlives its refused connection"
        );
        thread::sleep(ms(10));
    }
}
