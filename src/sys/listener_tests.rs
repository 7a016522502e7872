//! An accepted socket gets the connection's options, from a primed listener or not.

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use super::{Listener, ACCEPT_POLL, WRITE_SLICE};

/// Accepts one connection on `listener`, as it comes.
fn accept(listener: &Listener) -> TcpStream {
    let Listener::Tcp(l, _) = listener else {
        unreachable!("a TCP listener")
    };
    let _peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    l.accept().unwrap().0
}

/// Accepts one connection on `listener` and readies it with `nodelay`.
fn accept_ready(listener: &Listener, nodelay: bool) -> TcpStream {
    let s = accept(listener);
    listener.ready(&s, nodelay).unwrap();
    s
}

/// The options `Socket::prepare` promises.
fn assert_ready(s: &TcpStream, nodelay: bool) {
    assert_eq!(s.nodelay().unwrap(), nodelay);
    assert_eq!(
        s.read_timeout().unwrap(),
        None,
        "the accept poll's timeout is cleared"
    );
    let write = s.write_timeout().unwrap().expect("a write slice");
    // The kernel keeps the timeout in jiffies: 50 ms reads back as up to one jiffy more.
    assert!(write >= WRITE_SLICE && write < WRITE_SLICE + Duration::from_millis(11));
}

#[test]
fn a_primed_listener_hands_out_sockets_with_the_connections_options() {
    for nodelay in [true, false] {
        let mut listener = Listener::tcp("127.0.0.1:0").unwrap();
        listener.prime(nodelay);
        assert!(matches!(listener, Listener::Tcp(_, Some(n)) if n == nodelay));
        // What the socket inherits, before `ready`: the connection's options, and the
        // listener's accept poll as its receive timeout...
        let s = accept(&listener);
        assert_eq!(s.nodelay().unwrap(), nodelay);
        assert!(s.write_timeout().unwrap().is_some_and(|w| w >= WRITE_SLICE));
        assert!(s.read_timeout().unwrap().is_some_and(|r| r >= ACCEPT_POLL));
        // ...which `ready` clears, as `prepare` would.
        listener.ready(&s, nodelay).unwrap();
        assert_ready(&s, nodelay);
    }
}

#[test]
fn a_socket_from_a_listener_primed_otherwise_or_not_at_all_is_prepared_in_full() {
    // Primed for TCP_NODELAY on, asked for off: everything is set on the socket.
    let mut primed = Listener::tcp("127.0.0.1:0").unwrap();
    primed.prime(true);
    assert_ready(&accept_ready(&primed, false), false);
    // A listener with options of its own (handed over, say), never primed.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let handle = super::options_handle(&l).unwrap();
    handle.set_nodelay(false).unwrap();
    handle
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let listener = Listener::from_tcp(l).unwrap();
    assert!(matches!(listener, Listener::Tcp(_, None)));
    assert_ready(&accept_ready(&listener, true), true);
}

#[test]
fn a_socket_accepted_from_a_non_blocking_listener_blocks() {
    // Another holder of a shared listener may have made it non-blocking; Linux never gives
    // the sockets it accepts that flag, so `prepare_accepted` does not clear it.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let _peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("accept: {e}"),
        }
    };
    Listener::from_tcp(l).unwrap().ready(&s, true).unwrap();
    // A blocking read waits out its timeout; a non-blocking one would fail at once.
    s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let start = std::time::Instant::now();
    let e = std::io::Read::read(&mut &s, &mut [0u8; 1]).unwrap_err();
    assert!(super::timed_out(&e), "{e}");
    assert!(start.elapsed() >= Duration::from_millis(25));
}
