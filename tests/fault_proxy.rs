//! The fault-injecting proxy (`threadnet::testing::FaultProxy`) between a raw client and a
//! threadnet `LengthDelimited` echo server: each fault does what it says, and the server
//! copes (framing over 1-byte reads, backpressure, resets, half-closes).

mod common;
#[path = "common/examples.rs"]
mod examples;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Instant;

use common::*;
use examples::Example;
use threadnet::testing::{Direction, FaultProxy, Faults};
use threadnet::{
    codec::LengthDelimited, CloseReason, ConnOptions, Connection, Handler, ServerHandle, TcpServer,
};

type Conn = Connection<LengthDelimited>;

/// Echoes every frame; a frame `b"big"` is answered with [`BIG_REPLIES`] frames of
/// [`BIG_LEN`] bytes instead. Hands the test each connection and each close reason.
struct Echo {
    conns: mpsc::Sender<Conn>,
    closes: mpsc::Sender<CloseReason>,
}

const BIG_REPLIES: u32 = 256;
const BIG_LEN: usize = 16 * 1024;

impl Handler<LengthDelimited> for Echo {
    fn on_connect(&mut self, conn: &Conn) {
        let _ = self.conns.send(conn.clone());
    }
    fn on_message(&mut self, conn: &Conn, frame: Vec<u8>) {
        if frame == b"big" {
            for seq in 0..BIG_REPLIES {
                conn.send(tagged(0, seq, BIG_LEN)).expect("big reply");
            }
        } else {
            let _ = conn.send(frame);
        }
    }
    fn on_close(&mut self, _: &Conn, reason: &CloseReason) {
        let _ = self.closes.send(reason.clone());
    }
}

struct Server {
    handle: ServerHandle<LengthDelimited>,
    conns: Receiver<Conn>,
    closes: Receiver<CloseReason>,
}

fn echo_server(options: ConnOptions) -> Server {
    let (conn_tx, conns) = mpsc::channel();
    let (close_tx, closes) = mpsc::channel();
    let handle = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(LengthDelimited::new(), move |_: &Conn| Echo {
            conns: conn_tx.clone(),
            closes: close_tx.clone(),
        })
        .unwrap();
    Server {
        handle,
        conns,
        closes,
    }
}

fn proxy(server: &Server, up: Faults, down: Faults, seed: u64) -> FaultProxy {
    FaultProxy::builder()
        .upstream(server.handle.local_addr())
        .client_to_server(up)
        .server_to_client(down)
        .seed(seed)
        .record_writes(true)
        .start()
        .unwrap()
}

/// A payload of `len` bytes that differs from frame to frame.
fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

#[test]
fn split_to_single_bytes_both_ways_keeps_every_frame_whole() {
    let server = echo_server(ConnOptions::new());
    let one = Faults::new().split(1);
    let proxy = proxy(&server, one.clone(), one, 1);
    let mut client = peer(proxy.local_addr());
    let mut sent = 0;
    for i in 0..12 {
        let p = payload(i, 1 + i * 13);
        write_frame(&mut client, &p).unwrap();
        sent += 4 + p.len();
        assert_eq!(expect_frame(&mut client), p, "frame {i}");
    }
    // Every byte went through the proxy as its own write, both ways.
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        let sizes = proxy.write_sizes(0, dir).unwrap();
        assert_eq!(sizes.len(), sent, "{dir:?}");
        assert!(sizes.iter().all(|&n| n == 1), "{dir:?}: {sizes:?}");
    }
    drop(client);
    assert!(matches!(recv(&server.closes), CloseReason::PeerClosed));
    proxy.stop();
    server.handle.stop(ms(500));
}

#[test]
fn latency_delays_each_way_and_keeps_order() {
    let server = echo_server(ConnOptions::new());
    let up = Faults::new().latency(ms(50)).jitter(ms(20)).split(5);
    let down = Faults::new().latency(ms(50));
    let proxy = proxy(&server, up, down, 2);
    let mut client = peer(proxy.local_addr());

    let t0 = Instant::now();
    write_frame(&mut client, b"ping").unwrap();
    assert_eq!(expect_frame(&mut client), b"ping");
    let rtt = t0.elapsed();
    assert!(
        rtt >= ms(100),
        "a round trip through 2 x 50 ms took {rtt:?}"
    );

    // Pipelined frames, cut and each piece jittered: they still arrive in order.
    let frames: Vec<Vec<u8>> = (0..20).map(|i| payload(i, 10 + i)).collect();
    for p in &frames {
        write_frame(&mut client, p).unwrap();
    }
    for (i, p) in frames.iter().enumerate() {
        assert_eq!(&expect_frame(&mut client), p, "frame {i}");
    }
    drop(client);
    proxy.stop();
    server.handle.stop(ms(500));
}

#[test]
fn bandwidth_paces_the_bytes() {
    let server = echo_server(ConnOptions::new());
    // 20 000 bytes/s, in writes of at most 200 bytes (a hundredth of a second's worth).
    let proxy = proxy(&server, Faults::new(), Faults::new().bandwidth(20_000), 6);
    let mut client = peer(proxy.local_addr());
    let p = payload(0, 3996); // 4 000 bytes back: 20 writes, 190 ms apart first to last
    let t0 = Instant::now();
    write_frame(&mut client, &p).unwrap();
    assert_eq!(expect_frame(&mut client), p);
    let took = t0.elapsed();
    assert!(
        took >= ms(150),
        "4 000 bytes at 20 000 bytes/s took {took:?}"
    );
    let sizes = proxy.write_sizes(0, Direction::ServerToClient).unwrap();
    assert!(sizes.iter().all(|&n| n <= 200), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 4000);
    drop(client);
    proxy.stop();
    server.handle.stop(ms(500));
}

#[test]
fn reset_after_resets_both_peers_and_the_server_serves_on() {
    let server = echo_server(ConnOptions::new());
    let proxy = proxy(&server, Faults::new().reset_after(20), Faults::new(), 3);
    let mut client = peer(proxy.local_addr());
    let _server_side = recv(&server.conns);
    // 34 bytes, of which 20 reach the server: a frame cut in the middle, then an RST.
    write_frame(&mut client, &payload(0, 30)).unwrap();

    let mut rest = Vec::new();
    let read = client.read_to_end(&mut rest);
    let e = read.expect_err("the client must see the reset");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    match recv(&server.closes) {
        CloseReason::Error { error, .. } => {
            assert_eq!(error.kind(), io::ErrorKind::ConnectionReset, "{error}")
        }
        other => panic!("the server's connection ended with {other:?}"),
    }

    // A new connection, under the limit, is served.
    let mut again = peer(proxy.local_addr());
    write_frame(&mut again, b"after").unwrap();
    assert_eq!(expect_frame(&mut again), b"after");
    assert_eq!(proxy.connections(), 2);
    assert_eq!(proxy.upstream_connections(), 2);
    drop(again);
    proxy.stop();
    server.handle.stop(ms(500));
}

#[test]
fn a_client_whose_upstream_is_down_is_reset_and_not_counted_as_connected() {
    // A loopback port nobody listens on any more.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let proxy = FaultProxy::builder().upstream(addr).start().unwrap();
    let mut client = peer(proxy.local_addr());
    let e = client.read_to_end(&mut Vec::new()).expect_err("reset");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    assert_eq!(proxy.connections(), 1);
    assert_eq!(proxy.upstream_connections(), 0);
    proxy.stop();
}

#[test]
fn write_sizes_are_numbered_by_accept_even_when_a_dial_fails() {
    // Connection 0's upstream is down (its dial fails), connection 1's is up: write_sizes(1)
    // is connection 1's log, and connection 0 has an empty one.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let proxy = FaultProxy::builder()
        .upstream(addr)
        .record_writes(true)
        .start()
        .unwrap();
    let mut first = peer(proxy.local_addr());
    let e = first.read_to_end(&mut Vec::new()).expect_err("reset");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    // The upstream comes up on the same port; its backlog completes the dial.
    let _up = std::net::TcpListener::bind(addr).expect("rebind the upstream's port");
    let mut second = peer(proxy.local_addr());
    second.write_all(b"hello").unwrap();
    let c2s = Direction::ClientToServer;
    assert!(
        wait_until(WAIT, || proxy.write_sizes(1, c2s) == Some(vec![5])),
        "connection 1: {:?}; connection 0: {:?}",
        proxy.write_sizes(1, c2s),
        proxy.write_sizes(0, c2s)
    );
    for dir in [c2s, Direction::ServerToClient] {
        assert_eq!(proxy.write_sizes(0, dir), Some(vec![]), "{dir:?}");
    }
    assert_eq!(proxy.write_sizes(2, c2s), None);
    assert_eq!((proxy.connections(), proxy.upstream_connections()), (2, 1));
    drop((first, second));
    proxy.stop();
}

#[test]
fn a_stalled_reader_pushes_back_on_the_server_and_stop_ends_the_stall() {
    let server = echo_server(ConnOptions::new());
    let proxy = proxy(&server, Faults::new(), Faults::new().stall_after(10), 4);
    let client = peer(proxy.local_addr());
    client.set_read_timeout(None).unwrap(); // the proxy's stop ends the read
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        let _ = (&client).read_to_end(&mut got);
        got
    });
    let conn = recv(&server.conns);
    // The client reads all it can; the proxy passes 10 bytes and stops reading, so the
    // server's socket and then its queue fill (fill panics if the queue never stays full).
    let accepted = fill(&conn, 64 * 1024, || {});
    assert!(accepted >= 2, "accepted {accepted}");
    assert!(conn.try_send(vec![1; 64 * 1024]).unwrap_err().is_full());

    proxy.stop(); // wakes the stalled direction and shuts the client's socket down
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 10, "exactly the bytes before the stall");
    assert_eq!(got, frame(&tagged(0, 0, 64 * 1024))[..10]);
    server.handle.stop(ms(500));
}

#[test]
fn close_write_after_is_a_peer_eof_and_the_queued_replies_still_arrive() {
    let server = echo_server(ConnOptions::new());
    let frames: Vec<Vec<u8>> = vec![b"one".to_vec(), b"two".to_vec(), b"big".to_vec()];
    let n: usize = frames.iter().map(|p| 4 + p.len()).sum();
    let proxy = proxy(
        &server,
        Faults::new().close_write_after(n as u64),
        Faults::new(),
        5,
    );
    let mut client = peer(proxy.local_addr());
    for p in &frames {
        write_frame(&mut client, p).unwrap();
    }
    // The proxy half-closes toward the server right after "big": the server sees the EOF
    // while up to 1 MiB of the big reply is still queued, and must write all of it.
    assert_eq!(expect_frame(&mut client), b"one");
    assert_eq!(expect_frame(&mut client), b"two");
    for seq in 0..BIG_REPLIES {
        let got = expect_frame(&mut client);
        assert_eq!(tag_of(&got), (0, seq));
        assert_eq!(got.len(), BIG_LEN);
    }
    assert!(
        matches!(read_frame(&mut client), Ok(None)),
        "EOF after the replies"
    );
    assert!(matches!(recv(&server.closes), CloseReason::PeerClosed));
    // What the client sends after the half-close is swallowed, not an error.
    client.write_all(&frame(b"late")).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    drop(client);
    proxy.stop();
    server.handle.stop(ms(500));
}

/// One run of request-reply exchanges through a proxy cutting at random: the proxy's writes.
fn cuts(seed: u64) -> (Vec<usize>, Vec<usize>) {
    let server = echo_server(ConnOptions::new());
    let f = Faults::new().split(7).jitter(ms(2));
    let proxy = proxy(&server, f.clone(), f, seed);
    let mut client = peer(proxy.local_addr());
    for i in 0..10 {
        let p = payload(i, 5 + i * 7);
        write_frame(&mut client, &p).unwrap();
        assert_eq!(expect_frame(&mut client), p);
    }
    drop(client);
    recv(&server.closes);
    let up = proxy.write_sizes(0, Direction::ClientToServer).unwrap();
    let down = proxy.write_sizes(0, Direction::ServerToClient).unwrap();
    proxy.stop();
    server.handle.stop(ms(500));
    (up, down)
}

#[test]
fn the_same_seed_cuts_the_stream_in_the_same_places() {
    let (up, down) = cuts(42);
    assert!(up.iter().all(|&n| (1..=7).contains(&n)), "{up:?}");
    assert!(up.iter().any(|&n| n < 7) && up.len() > 10, "{up:?}");
    assert_eq!(cuts(42), (up.clone(), down.clone()));
    assert_ne!(cuts(43).0, up, "another seed, other cuts");
}

#[test]
fn the_example_proxies_with_the_faults_its_flags_name() {
    let server = echo_server(ConnOptions::new());
    let upstream = server.handle.local_addr().to_string();
    let proxy = Example::spawn(
        "fault_proxy",
        &[
            "--upstream",
            &upstream,
            "--latency-ms",
            "30",
            "--down-split",
            "1",
            "--up-reset-after",
            "100",
        ],
    );
    let mut client = peer(proxy.listening());
    let t0 = Instant::now();
    write_frame(&mut client, &payload(1, 50)).unwrap();
    assert_eq!(expect_frame(&mut client), payload(1, 50));
    let rtt = t0.elapsed();
    assert!(rtt >= ms(60), "a round trip through 2 x 30 ms took {rtt:?}");
    // 54 bytes up so far: the next frame crosses 100, and the proxy resets.
    write_frame(&mut client, &payload(2, 50)).unwrap();
    let e = client.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    server.handle.stop(ms(500));
}
