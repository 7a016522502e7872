//! A conformance set for the WebSocket server, modelled on the Autobahn|Testsuite case groups
//! (1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close,
//! 9 limits, 10 masking). Autobahn itself needs Python 2; the independent implementation here
//! is hand-built bytes on raw std `TcpStream`s: every client frame is assembled byte by byte
//! (`common/ws_frames.rs`, not with the crate's codec), and every server answer is compared as exact bytes, or,
//! for a close frame answering a protocol error, as its exact code.
//!
//! Each case names the RFC 6455 section it checks. A group runs its cases one connection each
//! and reports every failing case at once.

mod common;
#[path = "common/ws_frames.rs"]
mod ws_frames;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use common::{ends, peer};
use threadnet::ws::{AutoReply, Message, WsCodec, WsError};
use threadnet::{Connection, ServerHandle, TcpServer};
use ws_frames::*;

/// The test plays the client: its frames are masked (section 5.3).
const MASK: Option<[u8; 4]> = Some(KEY);

fn run(addr: SocketAddr, case: &Case) -> Result<(), String> {
    let mut s = peer(addr);
    s.write_all(&case.wire).map_err(|e| format!("write: {e}"))?;
    for want in &case.expect {
        let (b0, p, _) = read_frame(&mut s, false).map_err(|e| format!("read: {e}"))?;
        want.check(b0, &p)?;
    }
    // Section 7.1.1: after the close frames, the server closes the TCP connection.
    if !ends(&s) {
        return Err("the server sent more, or did not close".into());
    }
    Ok(())
}

/// Runs every case against `server`; fails listing each case that failed.
fn check(server: ServerHandle<WsCodec>, cases: Vec<Case>) {
    let addr = server.local_addr().as_inet().expect("a TCP server");
    let failed: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            run(addr, c)
                .err()
                .map(|e| format!("{} (RFC 6455 {}): {e}", c.name, c.rfc))
        })
        .collect();
    server.stop(Duration::from_secs(1));
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

/// An echo server (text and binary echoed as they came) with `AutoReply`.
fn echo(codec: WsCodec) -> ServerHandle<WsCodec> {
    TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(codec, |_: &Connection<WsCodec>| {
            AutoReply::new(
                |conn: &Connection<WsCodec>, msg: Result<Message, WsError>| {
                    if let Ok(m @ (Message::Text(_) | Message::Binary(_))) = msg {
                        let _ = conn.send(m);
                    }
                },
            )
        })
        .unwrap()
}

#[test]
fn group_1_framing() {
    check(echo(WsCodec::new()), framing_cases());
}

#[test]
fn group_2_ping_pong() {
    let mut cases = ping_cases();
    cases.extend(unsolicited_pong_cases(6));
    let ten: Vec<u8> = (0..10u8).flat_map(|i| fin(0x9, &[i])).collect();
    cases.push(ok(
        "2.10 ten pings, ten pongs in order",
        "5.5.2",
        ten,
        (0..10u8).map(|i| answer(0xA, &[i])).collect(),
    ));
    check(echo(WsCodec::new()), cases);
}

#[test]
fn group_3_reserved_bits() {
    check(echo(WsCodec::new()), reserved_bit_cases());
}

#[test]
fn group_4_opcodes() {
    check(echo(WsCodec::new()), opcode_cases());
}

#[test]
fn group_5_fragmentation() {
    let mut cases = fragment_cases();
    cases.extend(fragment_error_cases(6));
    check(echo(WsCodec::new()), cases);
}

#[test]
fn group_6_utf8() {
    let mut cases = utf8_valid_cases();
    cases.extend(utf8_invalid_cases(7));
    // Fail fast inside one frame (Autobahn 6.4.3, 6.4.4): a 100-byte frame whose first 10
    // bytes hold an invalid one, and whose rest never comes.
    let mut bad = text(100);
    bad[6] = 0xff;
    cases.push(fails(
        "6.17 invalid inside one frame, before the frame ends",
        "8.1",
        fin(0x1, &bad)[..2 + 4 + 10].to_vec(),
        1007,
    ));
    cases.push(then_fails(
        "6.16 valid text then invalid text",
        "8.1",
        [fin(0x1, b"fine"), fin(0x1, &[0xc3, 0x28])].concat(),
        vec![answer(0x1, b"fine")],
        1007,
    ));
    check(echo(WsCodec::new()), cases);
}

#[test]
fn group_7_close() {
    let mut cases = close_echo_cases();
    cases.extend(close_code_cases(6));
    check(echo(WsCodec::new()), cases);
}

/// Limits: frames up to 1000 bytes, messages up to 4000; the handler answers the length.
#[test]
fn group_9_limits() {
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(
            WsCodec::new().max_frame(1000).max_message(4000),
            |_: &Connection<WsCodec>| {
                AutoReply::new(
                    |conn: &Connection<WsCodec>, msg: Result<Message, WsError>| {
                        if let Ok(Message::Binary(b)) = msg {
                            let _ = conn.send(Message::Text(b.len().to_string()));
                        }
                    },
                )
            },
        )
        .unwrap();
    check(server, limit_cases(1));
}

#[test]
fn group_10_masking() {
    let unmasked = |op: u8, p: &[u8]| raw_frame(0x80 | op, p, None, false);
    let cases = vec![
        fails(
            "10.1 unmasked text",
            "5.1, 5.3",
            unmasked(0x1, b"hello"),
            1002,
        ),
        fails("10.2 unmasked ping", "5.1, 5.3", unmasked(0x9, b""), 1002),
        fails(
            "10.3 unmasked close",
            "5.1, 5.3",
            unmasked(0x8, &1000u16.to_be_bytes()),
            1002,
        ),
        then_fails(
            "10.4 unmasked after a masked frame",
            "5.1",
            [fin(0x1, b"ok"), unmasked(0x1, b"no")].concat(),
            vec![answer(0x1, b"ok")],
            1002,
        ),
        ok(
            "10.5 a zero mask key is still a mask",
            "5.3",
            [vec![0x81, 0x82, 0, 0, 0, 0], b"hi".to_vec()].concat(),
            vec![answer(0x1, b"hi")],
        ),
        fails(
            "10.6 unmasked continuation of a masked start",
            "5.1",
            [more(0x1, b"a"), unmasked(0x0, b"b")].concat(),
            1002,
        ),
    ];
    check(echo(WsCodec::new()), cases);
}
