//! The `udp_echo` example under many peers, measured from outside the process: a peer costs
//! no thread (each had a writer thread of its own: 1 200 peers made 570 threads), and once
//! the peer table is full a new peer is still served (it was refused for 60 s).

#[path = "common/examples.rs"]
mod examples;

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use examples::Example;

/// Peers at once in the test: each a socket of its own (a distinct source port).
const BATCH: usize = 100;

/// Sends one datagram from each of `n` new sockets (in batches of [`BATCH`]) and returns how
/// many got their echo back.
fn peers(server: SocketAddr, n: usize, tag: &str) -> usize {
    let mut echoed = 0;
    let mut buf = [0u8; 64];
    for batch in 0..n.div_ceil(BATCH) {
        let sockets: Vec<(UdpSocket, String)> = (0..BATCH.min(n - batch * BATCH))
            .map(|i| {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let msg = format!("{tag} {batch} {i}");
                s.send_to(msg.as_bytes(), server).unwrap();
                (s, msg)
            })
            .collect();
        for (s, msg) in &sockets {
            match s.recv_from(&mut buf) {
                Ok((len, _)) => {
                    assert_eq!(&buf[..len], msg.as_bytes());
                    echoed += 1;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
    echoed
}

#[test]
fn twelve_hundred_peers_cost_no_threads_and_a_full_table_still_serves_newcomers() {
    let echo = Example::spawn("udp_echo", &["--addr", "127.0.0.1:0"]);
    let server: SocketAddr = echo.listening().parse().unwrap();
    let at_start = echo.status("Threads");

    // 1 000 peers, each sent one reply: below the default table size of 1 024.
    let served = peers(server, 1000, "a");
    let threads = echo.status("Threads");
    eprintln!("udp_echo threads: {at_start} at start, {threads} with 1000 peers");
    assert_eq!(served, 1000, "stderr:\n{}", echo.stderr());
    assert!(
        threads < 50,
        "{threads} threads in udp_echo with 1000 peers (at start: {at_start})"
    );

    // 200 more: the table fills at 1 024, and every newcomer is still served.
    let served = peers(server, 200, "b");
    let threads = echo.status("Threads");
    eprintln!("udp_echo threads: {threads} with 1200 peers");
    assert_eq!(served, 200, "new peers refused once the table was full");
    assert!(
        threads < 50,
        "{threads} threads in udp_echo with 1200 peers"
    );
}
