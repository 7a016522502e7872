//! Connections held silent for longer than any internal poll interval or tick stay open, on
//! every way a server can get its listener.
//!
//! The bug this guards against: a server given its listener with `ServerBuilder::listener`
//! polls `accept` with a 100 ms `SO_RCVTIMEO` on the listening socket; on Linux an accepted
//! socket inherits the listener's options, so every connection's blocking read timed out after
//! 100 ms of silence and the connection was closed as an error. Every test that only ran short
//! scripts passed.

mod common;

use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;
use threadnet::{
    codec::LengthDelimited, ConnOptions, Connection, ServerBuilder, ServerHandle, TcpServer,
    UnixServer,
};

/// Longer than the shared listener's accept poll (100 ms), the Unix listener's (50 ms), the
/// UDP recheck (250 ms), the write slice (50 ms) and many wheel ticks.
const SILENCE: Duration = Duration::from_millis(1500);

fn echo(builder: ServerBuilder) -> (ServerHandle<LengthDelimited>, mpsc::Receiver<Reason>) {
    let (tx, rx) = mpsc::channel();
    let options = ConnOptions::new().on_event(move |e| {
        if let threadnet::events::ConnEvent::Closed { reason, .. } = e {
            let _ = tx.send(Reason::from(*reason));
        }
    });
    let server = builder
        .options(options)
        .start(LengthDelimited::new(), |_: &Connection<LengthDelimited>| {
            |conn: &Connection<LengthDelimited>, msg: Vec<u8>| {
                let _ = conn.send(msg);
            }
        })
        .unwrap();
    (server, rx)
}

/// Connects, stays silent for [`SILENCE`], then expects an echo: the connection was not closed
/// meanwhile, and the server saw no close.
fn silent_then_echo(
    server: &ServerHandle<LengthDelimited>,
    closed: &mpsc::Receiver<Reason>,
    connect: impl Fn() -> Box<dyn ReadWrite>,
) {
    let mut a = connect();
    let mut b = connect();
    // One connection has exchanged a frame before going quiet, the other never has: both paths
    // of the reader (waiting for the first byte, waiting inside the buffered reader).
    write_frame(&mut b, b"warm").unwrap();
    assert_eq!(expect_frame(&mut b), b"warm");
    thread::sleep(SILENCE);
    assert!(
        closed.try_recv().is_err(),
        "a silent connection was closed by the server"
    );
    for s in [&mut a, &mut b] {
        write_frame(s, b"still here").unwrap();
        assert_eq!(expect_frame(s), b"still here");
    }
    assert_eq!(server.connections().len(), 2);
}

trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

fn tcp(server: &ServerHandle<LengthDelimited>) -> impl Fn() -> Box<dyn ReadWrite> {
    let addr = server.local_addr().as_inet().unwrap();
    move || Box::new(peer(addr))
}

#[test]
fn a_bound_server_keeps_silent_connections() {
    let (server, closed) = echo(TcpServer::builder().addr("127.0.0.1:0"));
    silent_then_echo(&server, &closed, tcp(&server));
    server.stop(WAIT);
}

#[test]
fn a_server_on_a_given_listener_keeps_silent_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (server, closed) = echo(TcpServer::builder().listener(listener));
    silent_then_echo(&server, &closed, tcp(&server));
    server.stop(WAIT);
}

#[test]
fn a_listener_carrying_timeouts_and_nonblocking_mode_does_not_pass_them_on() {
    // What an inherited listener may carry: a receive and a send timeout of 20 ms and
    // O_NONBLOCK, set by whoever made it (std sets socket options through a stream handle on
    // a dup of the fd; the options belong to the socket).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let handle = TcpStream::from(OwnedFd::from(listener.try_clone().unwrap()));
    handle.set_read_timeout(Some(ms(20))).unwrap();
    handle.set_write_timeout(Some(ms(20))).unwrap();
    listener.set_nonblocking(true).unwrap();
    let (server, closed) = echo(TcpServer::builder().listener(listener));
    silent_then_echo(&server, &closed, tcp(&server));
    server.stop(WAIT);
}

#[test]
fn a_unix_server_keeps_silent_connections() {
    let path = std::env::temp_dir().join(format!("threadnet-idle-{}.sock", std::process::id()));
    let (server, closed) = echo(UnixServer::builder(&path));
    let p = path.clone();
    silent_then_echo(&server, &closed, move || {
        let s = UnixStream::connect(&p).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        Box::new(s)
    });
    server.stop(WAIT);
}
