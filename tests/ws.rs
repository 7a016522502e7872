//! WebSocket on real sockets: the codec with `AutoReply` (pongs, the closing handshake,
//! protocol errors answered with their close code), driven by a raw std client.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::{ends, peer, recv};
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
    // The client closes with 1000 "done": the server echoes it, then its FIN follows.
    let close = [&1000u16.to_be_bytes()[..], b"done"].concat();
    s.write_all(&client_frame(0x8, &close)).unwrap();
    assert_eq!(server_frame(&mut s), (0x88, close));
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the close frame: {rest:?}");
    drop(s); // our EOF ends the server's wait
    assert!(matches!(recv(&closed), CloseReason::Shutdown));
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
        recv(&closed);
    }
    // The server still serves.
    let mut s = peer(server.local_addr());
    s.write_all(&client_frame(0x1, b"still here")).unwrap();
    assert_eq!(server_frame(&mut s), (0x81, b"still here".to_vec()));
    server.stop(Duration::from_secs(1));
}
