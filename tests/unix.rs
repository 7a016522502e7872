//! Unix-domain sockets: the same codecs, handlers and connections as TCP, on a socket file;
//! the file is removed at stop, a stale one is replaced, a live one is not stolen.

mod common;

use std::io::{self, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};

use common::*;
use threadnet::{
    codec::LengthDelimited, Addr, CloseReason, Connection, Handler, ServerBuilder, ServerHandle,
    TcpClient, TcpServer, UnixServer,
};

type Conn = Connection<LengthDelimited>;

/// A fresh socket path in the temp directory, removed when dropped.
struct TempSock(PathBuf);

impl TempSock {
    fn new() -> TempSock {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("threadnet-test-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempSock(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempSock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Echoes and reports the peer address of each connection and how it closed.
struct Echo(Sender<(Addr, Reason)>);

impl Handler<LengthDelimited> for Echo {
    fn on_message(&mut self, conn: &Conn, msg: Vec<u8>) {
        let _ = conn.send(msg);
    }
    fn on_close(&mut self, conn: &Conn, reason: &CloseReason) {
        let _ = self.0.send((conn.peer_addr(), Reason::from(reason)));
    }
}

/// One server start for both transports: the handler and codec do not know which they run on.
fn start(builder: ServerBuilder, tx: Sender<(Addr, Reason)>) -> ServerHandle<LengthDelimited> {
    builder
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()))
        .unwrap()
}

fn unix_peer(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

#[test]
fn the_same_handler_serves_tcp_and_unix() {
    let sock = TempSock::new();
    let (tx, closed) = mpsc::channel();
    let unix = start(UnixServer::builder(sock.path()), tx.clone());
    let tcp = start(TcpServer::builder(), tx);
    assert_eq!(unix.local_addr().as_unix_path(), Some(sock.path()));

    let mut u = unix_peer(sock.path());
    let mut t = peer(tcp.local_addr());
    for i in 0..100u32 {
        write_frame(&mut u, &i.to_be_bytes()).unwrap();
        write_frame(&mut t, &i.to_be_bytes()).unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(expect_frame(&mut u), i.to_be_bytes());
        assert_eq!(expect_frame(&mut t), i.to_be_bytes());
    }
    u.shutdown(Shutdown::Write).unwrap();
    assert!(ends_unix(&u));
    let (addr, reason) = recv(&closed);
    assert!(matches!(addr, Addr::Unix(_)), "{addr}");
    assert_eq!(reason, Reason::PeerClosed);
    drop(t);
    assert_eq!(recv(&closed).1, Reason::PeerClosed);
    unix.stop(WAIT);
    tcp.stop(WAIT);
}

/// Reads to EOF: `true` if the server closed its end (the Unix twin of `common::ends`).
fn ends_unix(s: &UnixStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match io::Read::read(&mut &*s, &mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

#[test]
fn stop_removes_the_socket_file_and_delivers_what_was_queued() {
    let sock = TempSock::new();
    let (tx, closed) = mpsc::channel();
    let server = start(UnixServer::builder(sock.path()), tx);
    assert!(sock.path().exists());
    let mut u = unix_peer(sock.path());
    write_frame(&mut u, b"before stop").unwrap();
    assert_eq!(expect_frame(&mut u), b"before stop");
    let conn = server.connections().get(1).unwrap();
    for i in 0..50u8 {
        conn.send(vec![i; 1000]).unwrap();
    }
    let stopper = std::thread::spawn(move || {
        server.stop(WAIT);
        server
    });
    // Every queued message, then EOF (invariant 3 in DESIGN.md, on a Unix socket).
    for i in 0..50u8 {
        assert_eq!(expect_frame(&mut u), vec![i; 1000]);
    }
    assert!(ends_unix(&u));
    drop(u);
    let server = stopper.join().unwrap();
    assert!(server.is_stopped());
    assert!(matches!(
        recv(&closed).1,
        Reason::ServerStopped { dropped: 0 }
    ));
    assert!(!sock.path().exists(), "the socket file is removed at stop");
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_is_not_stolen() {
    let sock = TempSock::new();
    // A stale file: bound, then its listener dropped (as by a process that died).
    drop(UnixListener::bind(sock.path()).unwrap());
    assert!(sock.path().exists());
    let (tx, _closed) = mpsc::channel();
    let server = start(UnixServer::builder(sock.path()), tx.clone());
    let mut u = unix_peer(sock.path());
    write_frame(&mut u, b"hi").unwrap();
    assert_eq!(expect_frame(&mut u), b"hi");

    // A second server on the same live path fails, and the first keeps serving.
    let second = UnixServer::builder(sock.path())
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()));
    assert_eq!(
        second.err().map(|e| e.kind()),
        Some(io::ErrorKind::AddrInUse)
    );
    write_frame(&mut u, b"still mine").unwrap();
    assert_eq!(expect_frame(&mut u), b"still mine");
    drop(u);
    server.stop(WAIT);
}

#[test]
fn a_client_connects_over_unix_with_the_same_handler() {
    let sock = TempSock::new();
    let (tx, _closed) = mpsc::channel();
    let server = start(UnixServer::builder(sock.path()), tx);
    let (ctx, replies) = mpsc::channel();
    let client = TcpClient::builder()
        .connect_unix(sock.path(), LengthDelimited::new(), move |_: &Conn| {
            let ctx = ctx.clone();
            move |_: &Conn, msg: Vec<u8>| ctx.send(msg).unwrap()
        })
        .unwrap();
    let conn = client.connection().unwrap();
    assert_eq!(conn.peer_addr().as_unix_path(), Some(sock.path()));
    assert_eq!(
        conn.peer_addr().to_string(),
        format!("unix:{}", sock.path().display())
    );
    conn.send(b"over unix".to_vec()).unwrap();
    assert_eq!(recv(&replies), b"over unix");
    client.stop(WAIT);
    server.stop(WAIT);
}

#[test]
fn connect_unix_to_a_missing_file_fails_with_its_error() {
    let sock = TempSock::new();
    let result =
        TcpClient::builder().connect_unix(sock.path(), LengthDelimited::new(), |_: &Conn| {
            |_: &Conn, _: Vec<u8>| {}
        });
    assert_eq!(
        result.err().map(|e| e.kind()),
        Some(io::ErrorKind::NotFound)
    );
}

#[test]
fn a_bad_frame_on_unix_closes_that_connection_only() {
    let sock = TempSock::new();
    let (tx, closed) = mpsc::channel();
    let server = start(
        UnixServer::builder(sock.path())
            .options(threadnet::ConnOptions::new().max_frame_length(1024)),
        tx,
    );
    let mut good = unix_peer(sock.path());
    let mut bad = unix_peer(sock.path());
    bad.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    let (_, reason) = recv(&closed);
    assert!(
        matches!(
            reason,
            Reason::Error {
                kind: io::ErrorKind::InvalidData,
                ..
            }
        ),
        "{reason:?}"
    );
    assert!(ends_unix(&bad));
    write_frame(&mut good, b"unaffected").unwrap();
    assert_eq!(expect_frame(&mut good), b"unaffected");
    drop(good);
    server.stop(WAIT);
}

#[test]
fn start_never_deletes_a_file_that_is_not_a_socket() {
    let sock = TempSock::new();
    std::fs::write(sock.path(), b"precious data").unwrap();
    let (tx, _closed) = mpsc::channel();
    let result = UnixServer::builder(sock.path())
        .start(LengthDelimited::new(), move |_: &Conn| Echo(tx.clone()));
    assert_eq!(
        result.err().map(|e| e.kind()),
        Some(io::ErrorKind::AddrInUse)
    );
    assert_eq!(std::fs::read(sock.path()).unwrap(), b"precious data");
}

#[test]
fn stop_returns_after_the_socket_file_was_removed_and_spares_a_newer_server_file() {
    let sock = TempSock::new();
    let (tx, _closed) = mpsc::channel();
    let a = start(UnixServer::builder(sock.path()), tx.clone());
    // Someone removes A's file, and server B binds the same path.
    std::fs::remove_file(sock.path()).unwrap();
    let b = start(UnixServer::builder(sock.path()), tx);
    // A's accept cannot be woken by connecting any more; it still stops.
    let (done_tx, done) = mpsc::channel();
    let stopper = std::thread::spawn(move || {
        a.stop(WAIT);
        done_tx.send(()).unwrap();
    });
    recv(&done);
    stopper.join().unwrap();
    // And A removed no file that was not its own: B still serves at the path.
    let mut u = unix_peer(sock.path());
    write_frame(&mut u, b"B is here").unwrap();
    assert_eq!(expect_frame(&mut u), b"B is here");
    drop(u);
    b.stop(WAIT);
}
