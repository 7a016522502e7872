//! Writes to a peer that has gone never raise `SIGPIPE` (a process whose disposition is the
//! default would die of it), checked in a child process that restores the default.

use std::io::Read;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::{codec::Raw, ConnOptions, Connection, ServerBuilder, TcpServer, UnixServer};

const CHILD: &str = "THREADNET_SIGPIPE_CHILD";
const SIGPIPE: i32 = 13;

/// Floods the first connection of a server started by `start` until a peer made by `connect`
/// (which reads a little, then closes with unread data: a reset) is gone; returns how the
/// connection ended (its reason, as text).
fn flood_a_vanishing_peer<P: Read>(
    builder: ServerBuilder,
    connect: impl FnOnce(&crate::Addr) -> P,
) -> String {
    let (conn_tx, conn_rx) = mpsc::channel();
    let (closed_tx, closed_rx) = mpsc::channel();
    let server = builder
        .options(ConnOptions::new().on_event(move |e| {
            if let crate::events::ConnEvent::Closed { reason, .. } = e {
                let _ = closed_tx.send(reason.to_string());
            }
        }))
        .start(Raw, move |conn: &Connection<Raw>| {
            let _ = conn_tx.send(conn.clone());
            |_: &Connection<Raw>, _: Vec<u8>| {}
        })
        .unwrap();
    let mut peer = connect(&server.local_addr());
    let conn = conn_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let writer = thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if conn.send(vec![7u8; 16 * 1024]).is_err() {
                break;
            }
        }
    });
    let mut some = [0u8; 1024];
    peer.read_exact(&mut some).unwrap();
    drop(peer); // unread bytes: the kernel resets the connection
    writer.join().unwrap();
    let reason = closed_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    server.stop(Duration::from_secs(1));
    reason
}

#[test]
fn writes_to_a_reset_peer_do_not_raise_sigpipe() {
    if std::env::var_os(CHILD).is_some() {
        // The child: SIGPIPE back to its default (terminate), as in a C host.
        crate::sys::os::default_handler(SIGPIPE).unwrap();
        let tcp = flood_a_vanishing_peer(TcpServer::builder().addr("127.0.0.1:0"), |addr| {
            TcpStream::connect(addr.as_inet().unwrap()).unwrap()
        });
        assert!(tcp.starts_with("error"), "{tcp}");
        let dir = std::env::temp_dir().join(format!("threadnet-sigpipe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let unix = flood_a_vanishing_peer(UnixServer::builder(&path), |_| {
            UnixStream::connect(&path).unwrap()
        });
        assert!(unix.starts_with("error"), "{unix}");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "io::tests::writes_to_a_reset_peer_do_not_raise_sigpipe",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the child did not finish in 30 s");
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(status.signal(), Some(SIGPIPE), "killed by SIGPIPE");
    assert!(status.success(), "the child failed: {status}");
}
