//! WebSocket on real sockets: the codec with `AutoReply` (pongs, the closing handshake,
//! protocol errors answered with their close code), driven by a raw std client.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::{assert_closed_with, ends, peer, recv};
use threadnet::ws::{apply_mask, AutoReply, Message, WsCodec, WsError};
use threadnet::{CloseReason, Connection, ServerHandle, TcpServer};

/// A masked client frame, FIN set.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [9, 8, 7, 6];
    let mut out = vec![0x80 | opcode];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&key);
    let mut p = payload.to_vec();
    apply_mask(&mut p, key);
    out.extend(p);
    out
}

/// Reads one unmasked server frame: (first byte, payload).
fn server_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).expect("frame header");
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] {
        126 => {
            let mut e = [0u8; 2];
            s.read_exact(&mut e).unwrap();
            u16::from_be_bytes(e) as usize
        }
        n => n as usize,
    };
    let mut p = vec![0; len];
    s.read_exact(&mut p).unwrap();
    (h[0], p)
}

/// An echo server whose handler reports each close reason.
fn echo_server() -> (ServerHandle<WsCodec>, mpsc::Receiver<CloseReason>) {
    let (tx, rx) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(WsCodec::new(), move |_: &Connection<WsCodec>| {
            AutoReply::new(Echo { closed: tx.clone() })
        })
        .unwrap();
    (server, rx)
}

struct Echo {
    closed: mpsc::Sender<CloseReason>,
}

impl threadnet::Handler<WsCodec> for Echo {
    fn on_message(&mut self, conn: &Connection<WsCodec>, msg: Result<Message, WsError>) {
        if let Ok(m @ (Message::Text(_) | Message::Binary(_))) = msg {
            let _ = conn.send(m);
        }
    }

    fn on_close(&mut self, _: &Connection<WsCodec>, reason: &CloseReason) {
        let _ = self.closed.send(reason.clone());
    }
}

#[test]
fn echo_ping_pong_and_the_closing_handshake() {
    let (server, closed) = echo_server();
    let mut s = peer(server.local_addr());
    s.write_all(&client_frame(0x1, b"hello")).unwrap();
    assert_eq!(server_frame(&mut s), (0x81, b"hello".to_vec()));
    s.write_all(&client_frame(0x9, b"beat")).unwrap();
    assert_eq!(server_frame(&mut s), (0x8A, b"beat".to_vec()));
    s.write_all(&client_frame(0x2, &[0xAB; 300])).unwrap();
    assert_eq!(server_frame(&mut s), (0x82, vec![0xAB; 300]));
    // The client closes with 1000 "done": the server echoes it, then closes the TCP
    // connection first (RFC 6455, 7.1.1), without waiting for our FIN; the close reason
    // carries the peer's code and reason.
    let close = [&1000u16.to_be_bytes()[..], b"done"].concat();
    s.write_all(&client_frame(0x8, &close)).unwrap();
    assert_eq!(server_frame(&mut s), (0x88, close));
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the close frame: {rest:?}");
    let reason = recv(&closed); // before our EOF: the server did not wait for it
    assert!(
        matches!(&reason, CloseReason::Protocol { code: 1000, reason, by_peer: true } if reason == "done"),
        "{reason:?}"
    );
    drop(s);
    server.stop(Duration::from_secs(1));
}

#[test]
fn protocol_errors_close_with_their_code_and_the_server_serves_on() {
    let (server, closed) = echo_server();
    // (what the client sends, the close code the server must answer with)
    let mut unmasked = client_frame(0x1, b"hi");
    unmasked[1] &= 0x7F;
    unmasked.drain(2..6);
    let mut huge = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]; // a length of 2^63
    huge.extend([1, 2, 3, 4]);
    let mut big = vec![0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0]; // 2^32: over the 1 MiB limit
    big.extend([1, 2, 3, 4]);
    let cases: [(Vec<u8>, u16); 5] = [
        (unmasked, 1002),
        (client_frame(0x1, &[0xff]), 1007),
        (client_frame(0x3, b""), 1002),
        (huge, 1002),
        (big, 1009),
    ];
    for (wire, code) in cases {
        let mut s = peer(server.local_addr());
        s.write_all(&wire).unwrap();
        let (b0, p) = server_frame(&mut s);
        assert_eq!(b0, 0x88, "a close frame for {wire:x?}");
        assert_eq!(u16::from_be_bytes([p[0], p[1]]), code, "for {wire:x?}");
        assert!(ends(&s), "the server closes after its close frame");
        drop(s);
        // RFC 6455, 7.4.1: the close reason says which code we sent, and that we sent it.
        let reason = recv(&closed);
        assert!(
            matches!(reason, CloseReason::Protocol { code: c, by_peer: false, .. } if c == code),
            "for {wire:x?}: {reason:?}"
        );
    }
    // The server still serves.
    let mut s = peer(server.local_addr());
    s.write_all(&client_frame(0x1, b"still here")).unwrap();
    assert_eq!(server_frame(&mut s), (0x81, b"still here".to_vec()));
    server.stop(Duration::from_secs(1));
}

// The handshake on the HTTP/1.1 codec: pages and sockets on one port.

use threadnet::http::{Request, Response};
use threadnet::ws::{self, WsUpgrade};

fn upgrade_server(codec: WsUpgrade) -> (ServerHandle<WsUpgrade>, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(
            codec,
            ws::serve(
                |req: &Request| Response::text(format!("page {}", req.path())),
                move |_: &Connection<WsUpgrade>| Socket { opened: tx.clone() },
            ),
        )
        .unwrap();
    (server, rx)
}

struct Socket {
    opened: mpsc::Sender<String>,
}

impl ws::WsHandler for Socket {
    fn on_open(&mut self, _: &Connection<WsUpgrade>, request: &Request) {
        let _ = self.opened.send(request.path().to_string());
    }

    fn on_message(&mut self, conn: &Connection<WsUpgrade>, msg: Message) {
        if let Message::Text(t) = msg {
            let _ = conn.send(Message::Text(t.to_uppercase()).into());
        }
    }
}

const KEY_HEADER: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

fn handshake(extra: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1:80\r\nUpgrade: websocket\r\n\
         Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Reads a response head (up to the empty line).
fn head(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).expect("response head");
        out.push(b[0]);
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn handshake_101_then_frames_and_plain_http_on_the_same_port() {
    let (server, opened) = upgrade_server(WsUpgrade::new());
    // A page first, on its own connection.
    let mut s = peer(server.local_addr());
    s.write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n") && page.ends_with("page /index.html"));
    // The handshake with a frame in the same write: the frame is not lost to the HTTP parser.
    let mut s = peer(server.local_addr());
    let mut wire = handshake(KEY_HEADER).into_bytes();
    wire.extend(client_frame(0x1, b"hi"));
    s.write_all(&wire).unwrap();
    let h = head(&mut s);
    assert!(h.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{h}");
    assert!(
        h.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{h}"
    );
    assert!(!h.contains("Sec-WebSocket-Protocol"), "{h}");
    assert!(!h.contains("Content-Length"), "{h}");
    assert_eq!(recv(&opened), "/chat");
    assert_eq!(server_frame(&mut s), (0x81, b"HI".to_vec()));
    s.write_all(&client_frame(0x9, b"p")).unwrap();
    assert_eq!(server_frame(&mut s), (0x8A, b"p".to_vec()));
    s.write_all(&client_frame(0x8, &1000u16.to_be_bytes()))
        .unwrap();
    assert_eq!(server_frame(&mut s), (0x88, 1000u16.to_be_bytes().to_vec()));
    assert!(ends(&s));
    server.stop(Duration::from_secs(1));
}

#[test]
fn bad_handshakes_are_refused_with_clear_statuses() {
    let (server, opened) = upgrade_server(WsUpgrade::new());
    let cases = [
        (handshake(""), "400"),                                // no key
        (handshake("Sec-WebSocket-Key: c2hvcnQ=\r\n"), "400"), // not 16 bytes
        (
            handshake(KEY_HEADER).replace("Version: 13", "Version: 8"),
            "426",
        ),
        (
            handshake(KEY_HEADER).replace("keep-alive, Upgrade", "keep-alive"),
            "400",
        ),
        (handshake(KEY_HEADER).replace("GET", "POST"), "400"),
        (
            handshake(&format!("{KEY_HEADER}Origin: http://evil.example\r\n")),
            "403",
        ),
        (handshake(&format!("{KEY_HEADER}Origin: null\r\n")), "403"),
    ];
    for (req, status) in cases {
        let mut s = peer(server.local_addr());
        s.write_all(req.as_bytes()).unwrap();
        let h = head(&mut s);
        assert!(
            h.starts_with(&format!("HTTP/1.1 {status} ")),
            "{req}\n->\n{h}"
        );
        if status == "426" {
            assert!(h.contains("Sec-WebSocket-Version: 13\r\n"), "{h}");
        }
        assert!(ends(&s), "closed after a refusal");
    }
    // Same host in Origin: accepted.
    let mut s = peer(server.local_addr());
    let same = handshake(&format!("{KEY_HEADER}Origin: http://127.0.0.1:80\r\n"));
    s.write_all(same.as_bytes()).unwrap();
    assert!(head(&mut s).starts_with("HTTP/1.1 101 "));
    assert_eq!(recv(&opened), "/chat");
    assert!(
        opened.try_recv().is_err(),
        "no refused handshake opened a socket"
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn origin_and_subprotocol_hooks() {
    let codec = WsUpgrade::new()
        .check_origin(|req| req.header("origin") == Some("https://app.example"))
        .subprotocol(|_, offered| {
            offered
                .iter()
                .find(|p| **p == "chat")
                .map(|p| p.to_string())
        });
    let (server, _opened) = upgrade_server(codec);
    let mut s = peer(server.local_addr());
    let req = handshake(&format!(
        "{KEY_HEADER}Origin: https://app.example\r\nSec-WebSocket-Protocol: superchat, chat\r\n"
    ));
    s.write_all(req.as_bytes()).unwrap();
    let h = head(&mut s);
    assert!(h.starts_with("HTTP/1.1 101 "), "{h}");
    assert!(h.contains("Sec-WebSocket-Protocol: chat\r\n"), "{h}");
    let mut s = peer(server.local_addr());
    let req = handshake(&format!("{KEY_HEADER}Origin: http://127.0.0.1:80\r\n"));
    s.write_all(req.as_bytes()).unwrap();
    assert!(head(&mut s).starts_with("HTTP/1.1 403 "));
    server.stop(Duration::from_secs(1));
}

// The closing handshake started by our side, and heartbeats (issue 12, "close handshake,
// heartbeats").

use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use threadnet::{idle::IdleKind, ConnOptions};

/// An echo server that shuts the connection down (plain `Connection::shutdown`) when it
/// receives the text "shutdown".
fn shutdown_server() -> (ServerHandle<WsCodec>, mpsc::Receiver<CloseReason>) {
    let (tx, rx) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(WsCodec::new(), move |_: &Connection<WsCodec>| {
            let closed = tx.clone();
            AutoReply::new(ShutdownOnRequest { closed })
        })
        .unwrap();
    (server, rx)
}

struct ShutdownOnRequest {
    closed: mpsc::Sender<CloseReason>,
}

impl threadnet::Handler<WsCodec> for ShutdownOnRequest {
    fn on_message(&mut self, conn: &Connection<WsCodec>, msg: Result<Message, WsError>) {
        match msg {
            Ok(Message::Text(t)) if t == "shutdown" => conn.shutdown(Duration::from_secs(5)),
            Ok(m @ Message::Text(_)) => drop(conn.send(m)),
            _ => {}
        }
    }

    fn on_close(&mut self, _: &Connection<WsCodec>, reason: &CloseReason) {
        let _ = self.closed.send(reason.clone());
    }
}

#[test]
fn shutdown_sends_a_close_frame_first_and_the_peers_answer_ends_the_connection() {
    let (server, closed) = shutdown_server();
    let mut s = peer(server.local_addr());
    s.write_all(&client_frame(0x1, b"one")).unwrap();
    s.write_all(&client_frame(0x1, b"shutdown")).unwrap();
    assert_eq!(server_frame(&mut s), (0x81, b"one".to_vec()));
    // RFC 6455, 7.1.2: a plain shutdown starts the closing handshake with 1000.
    assert_eq!(server_frame(&mut s), (0x88, 1000u16.to_be_bytes().to_vec()));
    // Our answer ends it: the server closes the TCP connection first (7.1.1).
    s.write_all(&client_frame(0x8, &1000u16.to_be_bytes()))
        .unwrap();
    let started = Instant::now();
    assert!(ends(&s), "the server closes after the close frames crossed");
    assert_closed_with(&recv(&closed), 1000, true);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "not at the deadline"
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn a_shutdown_the_peer_does_not_answer_ends_at_its_deadline() {
    let (tx, closed) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(WsCodec::new(), move |_: &Connection<WsCodec>| {
            let tx = tx.clone();
            AutoReply::new(ShutdownOnRequest { closed: tx })
        })
        .unwrap();
    let mut s = peer(server.local_addr());
    s.write_all(&client_frame(0x1, b"hi")).unwrap();
    assert_eq!(server_frame(&mut s), (0x81, b"hi".to_vec()));
    server
        .connections()
        .for_each(|c| c.shutdown(Duration::from_millis(300)));
    assert_eq!(server_frame(&mut s), (0x88, 1000u16.to_be_bytes().to_vec()));
    // We never answer: the close is forced at the deadline.
    let reason = recv(&closed);
    assert!(
        matches!(reason, CloseReason::ShutdownTimeout { dropped: 0 }),
        "{reason:?}"
    );
    drop(s);
    server.stop(Duration::from_secs(1));
}

#[test]
fn stop_says_going_away_to_websockets_and_nothing_to_plain_http() {
    let (server, opened) = upgrade_server(WsUpgrade::new());
    // A plain HTTP keep-alive connection, idle after its response.
    let mut http = peer(server.local_addr());
    http.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let h = head(&mut http);
    assert!(h.starts_with("HTTP/1.1 200 OK\r\n"), "{h}");
    let len: usize = h
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    http.read_exact(&mut body).unwrap();
    // A WebSocket.
    let mut s = peer(server.local_addr());
    s.write_all(handshake(KEY_HEADER).as_bytes()).unwrap();
    assert!(head(&mut s).starts_with("HTTP/1.1 101 "));
    assert_eq!(recv(&opened), "/chat");
    let stopper = thread::spawn(move || server.stop(Duration::from_secs(5)));
    // RFC 6455, 7.4.1: 1001, going away.
    let (b0, p) = server_frame(&mut s);
    assert_eq!(b0, 0x88);
    assert_eq!(&p[..2], 1001u16.to_be_bytes());
    assert_eq!(&p[2..], b"going away");
    s.write_all(&client_frame(0x8, &1001u16.to_be_bytes()))
        .unwrap();
    assert!(ends(&s));
    // The HTTP connection gets its EOF and not a byte of WebSocket.
    let mut rest = Vec::new();
    http.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:x?}");
    drop(http);
    stopper.join().unwrap();
}

fn heartbeat_server(
    interval: Duration,
    misses: u32,
) -> (ServerHandle<WsUpgrade>, mpsc::Receiver<CloseReason>) {
    let (tx, rx) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(ConnOptions::new().heartbeat(ws::heartbeat(interval).misses(misses)))
        .start(
            WsUpgrade::new(),
            ws::serve(
                |_: &Request| Response::new(404),
                move |_: &Connection<WsUpgrade>| Reporter { closed: tx.clone() },
            ),
        )
        .unwrap();
    (server, rx)
}

struct Reporter {
    closed: mpsc::Sender<CloseReason>,
}

impl ws::WsHandler for Reporter {
    fn on_message(&mut self, conn: &Connection<WsUpgrade>, msg: Message) {
        if let m @ Message::Text(_) = msg {
            let _ = conn.send(m.into());
        }
    }

    fn on_close(&mut self, _: &Connection<WsUpgrade>, reason: &CloseReason) {
        let _ = self.closed.send(reason.clone());
    }
}

#[test]
fn heartbeat_pings_and_a_peer_that_never_pongs_is_closed() {
    // A ping after 200 ms without writes; closed after 600 ms without a byte from us.
    let (server, closed) = heartbeat_server(Duration::from_millis(200), 3);
    let mut s = peer(server.local_addr());
    s.write_all(handshake(KEY_HEADER).as_bytes()).unwrap();
    assert!(head(&mut s).starts_with("HTTP/1.1 101 "));
    // Pings (RFC 6455, 5.5.2) with an empty payload, which we never answer, until the
    // server closes.
    let mut pings = 0;
    let mut h = [0u8; 2];
    while s.read_exact(&mut h).is_ok() {
        assert_eq!(h, [0x89, 0x00], "only empty pings");
        pings += 1;
    }
    assert!(pings >= 1, "no ping before the close");
    let reason = recv(&closed);
    assert!(
        matches!(
            reason,
            CloseReason::IdleTimeout {
                kind: IdleKind::Heartbeat,
                ..
            }
        ),
        "{reason:?}"
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn heartbeat_keeps_a_peer_that_answers_pings() {
    // A ping every 200 ms, a limit of 5 misses (1 s); the client stays silent (but for its
    // pongs) for 1.5 s.
    let (server, closed) = heartbeat_server(Duration::from_millis(200), 5);
    let uri = format!("ws://{}/chat", server.local_addr());
    let out = Command::new(common::ws_python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_cases.py"))
        .args(["heartbeat", &uri, "1.5"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run the Python client");
    let out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["echo alive", "closed 1000"]
    );
    assert_closed_with(&recv(&closed), 1000, true);
    server.stop(Duration::from_secs(1));
}

#[test]
fn a_close_frame_without_a_status_is_reported_as_1005() {
    let (server, closed) = echo_server();
    let mut s = peer(server.local_addr());
    s.write_all(&client_frame(0x8, b"")).unwrap();
    // Echoed without a status (RFC 6455, 5.5.1); 1005 is only reported, never sent (7.1.5).
    assert_eq!(server_frame(&mut s), (0x88, vec![]));
    assert!(ends(&s));
    let reason = recv(&closed);
    assert!(
        matches!(&reason, CloseReason::Protocol { code: 1005, reason, by_peer: true } if reason.is_empty()),
        "{reason:?}"
    );
    assert!(reason.is_graceful() && reason.dropped() == 0);
    server.stop(Duration::from_secs(1));
}
