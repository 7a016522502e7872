//! The `Tlv` codec and the `Router` on a real server, driven by raw std clients that write
//! Tao's frames by hand: a u32 little-endian type, a u32 little-endian length, the payload.

mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Sender};

use common::*;
use threadnet::{
    codec::{Tlv, TlvFrame},
    CloseReason, ConnOptions, Connection, Handler, Router, ServerHandle, TcpServer,
};

type Conn = Connection<Tlv>;

/// One frame as a client writes it.
fn tlv(kind: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// Reads one frame as a client: `Ok(None)` at a clean EOF between frames.
fn read_tlv(r: &mut impl Read) -> io::Result<Option<(u32, Vec<u8>)>> {
    let mut header = [0u8; 8];
    match r.read(&mut header[..1])? {
        0 => return Ok(None),
        _ => r.read_exact(&mut header[1..])?,
    }
    let kind = u32::from_le_bytes(header[..4].try_into().unwrap());
    let len = u32::from_le_bytes(header[4..].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

/// Reads one frame that must be there.
#[track_caller]
fn expect_tlv(r: &mut impl Read) -> (u32, Vec<u8>) {
    match read_tlv(r) {
        Ok(Some(f)) => f,
        Ok(None) => panic!("expected a frame, got EOF"),
        Err(e) => panic!("expected a frame, got {e}"),
    }
}

/// Two message types: 1 is echoed as type 1, 2 is answered upper-cased as type 102.
fn two_types() -> Router {
    let mut router = Router::new();
    router
        .register(1, |conn, payload| {
            conn.send(TlvFrame::new(1, payload)).unwrap();
        })
        .unwrap()
        .register(2, |conn, payload| {
            conn.send(TlvFrame::new(102, payload.to_ascii_uppercase()))
                .unwrap();
        })
        .unwrap();
    router
}

/// A server whose connections are plain clones of `router`: the common three-line use.
fn serve(router: Router) -> ServerHandle<Tlv> {
    TcpServer::builder()
        .start(Tlv::new(), move |_| router.clone())
        .unwrap()
}

/// A handler of one's own that routes with a router and reports how its connection ended.
struct Watched {
    router: Router,
    closes: Sender<(u64, Reason)>,
}

impl Handler<Tlv> for Watched {
    fn on_message(&mut self, conn: &Conn, frame: TlvFrame) {
        self.router.dispatch(conn, frame);
    }

    fn on_close(&mut self, conn: &Conn, reason: &CloseReason) {
        let _ = self.closes.send((conn.id(), Reason::from(reason)));
    }
}

/// A server of `Watched` handlers around `router`, and the channel of their close reasons.
fn serve_watched(
    router: Router,
    options: ConnOptions,
) -> (ServerHandle<Tlv>, mpsc::Receiver<(u64, Reason)>) {
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .options(options)
        .start(Tlv::new(), move |_| Watched {
            router: router.clone(),
            closes: tx.clone(),
        })
        .unwrap();
    (server, closes)
}

#[track_caller]
fn echo_once(s: &mut TcpStream, payload: &[u8]) {
    s.write_all(&tlv(1, payload)).unwrap();
    assert_eq!(expect_tlv(s), (1, payload.to_vec()));
}

#[track_caller]
fn assert_error(reason: Reason, kind: io::ErrorKind, words: &[&str]) {
    match reason {
        Reason::Error {
            kind: k, message, ..
        } => {
            assert_eq!(k, kind, "{message}");
            for w in words {
                assert!(message.contains(w), "{message:?} does not say {w:?}");
            }
        }
        other => panic!("expected Error({kind:?}), got {other:?}"),
    }
}

#[test]
fn router_dispatches_each_type_to_its_handler_however_the_bytes_arrive() {
    let server = serve(two_types());
    let mut p = peer(server.local_addr());

    // One frame per write.
    p.write_all(&tlv(1, b"echo")).unwrap();
    assert_eq!(expect_tlv(&mut p), (1, b"echo".to_vec()));
    p.write_all(&tlv(2, b"shout")).unwrap();
    assert_eq!(expect_tlv(&mut p), (102, b"SHOUT".to_vec()));

    // One byte per write: every header and payload arrives split.
    for b in [tlv(2, b"slow"), tlv(1, b"")].concat() {
        p.write_all(&[b]).unwrap();
    }
    assert_eq!(expect_tlv(&mut p), (102, b"SLOW".to_vec()));
    assert_eq!(expect_tlv(&mut p), (1, Vec::new()));

    // Several frames, an unregistered heartbeat among them, in one write.
    let big = vec![7u8; 100_000];
    let burst = [
        tlv(1, b"a"),
        tlv(0, b""),
        tlv(2, b"b"),
        tlv(0, b"heartbeats may carry bytes"),
        tlv(1, &big),
    ]
    .concat();
    p.write_all(&burst).unwrap();
    assert_eq!(expect_tlv(&mut p), (1, b"a".to_vec()));
    assert_eq!(
        expect_tlv(&mut p),
        (102, b"B".to_vec()),
        "heartbeats get no reply"
    );
    assert_eq!(expect_tlv(&mut p), (1, big));

    // Our FIN: the server answers with its own, cleanly between frames.
    p.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(matches!(read_tlv(&mut p), Ok(None)));
    server.stop(WAIT);
}

#[test]
fn an_unknown_type_closes_only_that_connection() {
    let server = serve(two_types());
    let mut good = peer(server.local_addr());
    let mut bad = peer(server.local_addr());
    echo_once(&mut good, b"before");
    echo_once(&mut bad, b"fine so far");

    bad.write_all(&tlv(7, b"what is this?")).unwrap();
    assert!(
        ends(&bad),
        "the connection with an unknown type stayed open"
    );

    echo_once(&mut good, b"after");
    drop(good); // so that stop does not wait for its EOF
    server.stop(WAIT);
}

#[test]
fn an_unknown_type_is_the_close_reason() {
    let (server, closes) = serve_watched(two_types(), ConnOptions::new());
    let mut good = peer(server.local_addr());
    echo_once(&mut good, b"first");
    let mut bad = peer(server.local_addr());
    echo_once(&mut bad, b"second");

    bad.write_all(&tlv(7, b"?")).unwrap();
    let (id, reason) = recv(&closes);
    assert_eq!(id, 2);
    assert_error(
        reason,
        io::ErrorKind::InvalidData,
        &["unknown TLV message type 7"],
    );
    assert!(ends(&bad));

    echo_once(&mut good, b"still served");
    drop(good);
    assert_eq!(recv(&closes), (1, Reason::PeerClosed));
    server.stop(WAIT);
}

#[test]
fn a_second_registration_of_a_type_is_an_error_and_the_first_handler_stays() {
    let mut router = Router::new();
    router
        .register(1, |conn, _| {
            conn.send(TlvFrame::new(1, b"first".to_vec())).unwrap();
        })
        .unwrap();
    let err = router
        .register(1, |conn, _| {
            conn.send(TlvFrame::new(1, b"second".to_vec())).unwrap();
        })
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("type 1 "), "{err}");

    let server = serve(router);
    let mut p = peer(server.local_addr());
    p.write_all(&tlv(1, b"who?")).unwrap();
    assert_eq!(expect_tlv(&mut p), (1, b"first".to_vec()));
    drop(p);
    server.stop(WAIT);
}

#[test]
fn the_fallback_gets_unknown_types_but_not_heartbeats() {
    let (seen_tx, seen) = mpsc::channel();
    let mut router = two_types();
    // Answers as type 99: the unknown type (u32 LE), then the payload.
    router.fallback(move |conn, frame| {
        seen_tx.send(frame.kind).unwrap();
        let reply = [&frame.kind.to_le_bytes()[..], &frame.payload].concat();
        conn.send(TlvFrame::new(99, reply)).unwrap();
    });
    let server = serve(router);
    let mut p = peer(server.local_addr());

    let burst = [
        tlv(0, b""),
        tlv(7, b"x"),
        tlv(1, b"y"),
        tlv(u32::MAX, b""),
        tlv(0, b"z"),
        tlv(2, b"last"),
    ]
    .concat();
    p.write_all(&burst).unwrap();
    assert_eq!(expect_tlv(&mut p), (99, vec![7, 0, 0, 0, b'x']));
    assert_eq!(expect_tlv(&mut p), (1, b"y".to_vec()));
    assert_eq!(expect_tlv(&mut p), (99, vec![0xff; 4]));
    assert_eq!(expect_tlv(&mut p), (102, b"LAST".to_vec()));
    // The fallback saw exactly the two unknown types: no heartbeat, no registered type.
    assert_eq!(seen.try_iter().collect::<Vec<_>>(), [7, u32::MAX]);
    drop(p);
    server.stop(WAIT);
}

#[test]
fn a_registered_heartbeat_handler_gets_the_heartbeats() {
    let mut router = Router::new();
    router
        .register(TlvFrame::HEARTBEAT, |conn, _| {
            conn.send(TlvFrame::heartbeat()).unwrap();
        })
        .unwrap();
    let server = serve(router);
    let mut p = peer(server.local_addr());
    p.write_all(&[tlv(0, b""), tlv(0, b"")].concat()).unwrap();
    assert_eq!(expect_tlv(&mut p), (0, Vec::new()));
    assert_eq!(expect_tlv(&mut p), (0, Vec::new()));
    drop(p);
    server.stop(WAIT);
}

#[test]
fn a_frame_over_the_limit_closes_the_connection_with_an_error() {
    // The server option reaches the codec: 1000 bytes at most.
    let options = ConnOptions::new().max_frame_length(1000);
    let (server, closes) = serve_watched(two_types(), options);
    let mut good = peer(server.local_addr());
    echo_once(&mut good, &[5u8; 1000]);
    let mut bad = peer(server.local_addr());
    echo_once(&mut bad, b"fine so far");

    // Type 1, length 4 GiB - 1: refused on the header alone.
    let mut header = tlv(1, b"");
    header[4..].copy_from_slice(&u32::MAX.to_le_bytes());
    bad.write_all(&header).unwrap();
    bad.write_all(b"some of the payload").unwrap();
    let (id, reason) = recv(&closes);
    assert_eq!(id, 2);
    assert_error(reason, io::ErrorKind::InvalidData, &["4294967295", "1000"]);
    assert!(ends(&bad));

    // One byte over the limit is refused too; the good connection is still served.
    let mut over = peer(server.local_addr());
    over.write_all(&tlv(1, &[5u8; 1001])).unwrap();
    let (id, reason) = recv(&closes);
    assert_eq!(id, 3);
    assert_error(reason, io::ErrorKind::InvalidData, &["1001", "1000"]);
    assert!(ends(&over));

    echo_once(&mut good, &[6u8; 1000]);
    drop(good);
    assert_eq!(recv(&closes), (1, Reason::PeerClosed));
    server.stop(WAIT);
}
