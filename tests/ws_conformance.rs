//! A conformance set for the WebSocket server, modelled on the Autobahn|Testsuite case groups
//! (1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close,
//! 9 limits, 10 masking). Autobahn itself needs Python 2; the independent implementation here
//! is hand-built bytes on raw std `TcpStream`s: every client frame is assembled byte by byte
//! below (not with the crate's codec), and every server answer is compared as exact bytes, or,
//! for a close frame answering a protocol error, as its exact code.
//!
//! Each case names the RFC 6455 section it checks. A group runs its cases one connection each
//! and reports every failing case at once.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{ends, peer};
use threadnet::ws::{AutoReply, Message, WsCodec, WsError};
use threadnet::{Connection, ServerHandle, TcpServer};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame built by hand: FIN, RSV bits and opcode in byte 0, then the shortest length
/// encoding (or the 64-bit one if `long`), the mask key, the masked payload.
fn raw_frame(b0: u8, payload: &[u8], masked: bool, long: bool) -> Vec<u8> {
    let m = if masked { 0x80 } else { 0 };
    let mut out = vec![b0];
    let n = payload.len();
    if long {
        out.push(m | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    } else if n < 126 {
        out.push(m | n as u8);
    } else if n <= 0xFFFF {
        out.push(m | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    if masked {
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A masked frame with FIN set.
fn fin(opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(0x80 | opcode, payload, true, false)
}

/// A masked frame without FIN (a fragment that is not the last).
fn more(opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(opcode, payload, true, false)
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    [&code.to_be_bytes()[..], reason].concat()
}

/// What the server must answer.
enum Expect {
    /// This exact frame: (byte 0, payload).
    Frame(u8, Vec<u8>),
    /// A close frame with this code (its reason text is free), then the end.
    Close(u16),
}
use Expect::{Close, Frame};

/// The server's answer to a closing handshake we start: our close 1000 echoed.
fn echo_close() -> Expect {
    Frame(0x88, 1000u16.to_be_bytes().to_vec())
}

struct Case {
    /// Autobahn-style id and what it checks.
    name: &'static str,
    /// The RFC 6455 section it checks.
    rfc: &'static str,
    wire: Vec<u8>,
    expect: Vec<Expect>,
}

/// A case that must end with the server echoing our close 1000: `wire` then a close frame.
fn ok(name: &'static str, rfc: &'static str, wire: Vec<u8>, mut expect: Vec<Expect>) -> Case {
    let wire = [wire, fin(0x8, &1000u16.to_be_bytes())].concat();
    expect.push(echo_close());
    Case {
        name,
        rfc,
        wire,
        expect,
    }
}

/// A case the server must answer with a close frame carrying `code`.
fn fails(name: &'static str, rfc: &'static str, wire: Vec<u8>, code: u16) -> Case {
    Case {
        name,
        rfc,
        wire,
        expect: vec![Close(code)],
    }
}

/// A case with frames before the refusal.
fn then_fails(
    name: &'static str,
    rfc: &'static str,
    wire: Vec<u8>,
    mut expect: Vec<Expect>,
    code: u16,
) -> Case {
    expect.push(Close(code));
    Case {
        name,
        rfc,
        wire,
        expect,
    }
}

/// Reads one server frame: (byte 0, payload). Server frames are never masked (section 5.1).
fn read_frame(s: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    if h[1] & 0x80 != 0 {
        return Err(io::Error::other("a masked server frame"));
    }
    let len = match h[1] & 0x7F {
        126 => {
            let mut e = [0u8; 2];
            s.read_exact(&mut e)?;
            u64::from(u16::from_be_bytes(e))
        }
        127 => {
            let mut e = [0u8; 8];
            s.read_exact(&mut e)?;
            u64::from_be_bytes(e)
        }
        n => u64::from(n),
    };
    let mut p = vec![0; len as usize];
    s.read_exact(&mut p)?;
    Ok((h[0], p))
}

fn run(addr: SocketAddr, case: &Case) -> Result<(), String> {
    let mut s = peer(addr);
    s.write_all(&case.wire).map_err(|e| format!("write: {e}"))?;
    for want in &case.expect {
        let (b0, p) = read_frame(&mut s).map_err(|e| format!("read: {e}"))?;
        match want {
            Frame(w0, wp) if (b0, &p) != (*w0, wp) => {
                let show = |p: &[u8]| format!("{:x?}", &p[..p.len().min(16)]);
                return Err(format!(
                    "got {b0:#x} {} ({} bytes), want {w0:#x} {} ({} bytes)",
                    show(&p),
                    p.len(),
                    show(wp),
                    wp.len()
                ));
            }
            Close(code) => {
                let got = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                if b0 != 0x88 || got != Some(*code) {
                    return Err(format!("got {b0:#x} {p:x?}, want a close frame {code}"));
                }
                if std::str::from_utf8(&p[2..]).is_err() {
                    return Err("the close reason is not UTF-8".into());
                }
            }
            Frame(..) => {}
        }
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

/// The server's unmasked frame with FIN, as it must echo `payload`.
fn answer(opcode: u8, payload: &[u8]) -> Expect {
    Frame(0x80 | opcode, payload.to_vec())
}

fn text(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7) as u8).collect()
}

#[test]
fn group_1_framing() {
    let mut cases = Vec::new();
    for (name, n) in [
        ("1.1.1 text 0", 0),
        ("1.1.2 text 125", 125),
        ("1.1.3 text 126", 126),
        ("1.1.4 text 127", 127),
        ("1.1.5 text 65535", 65535),
        ("1.1.6 text 65536", 65536),
    ] {
        cases.push(ok(
            name,
            "5.2, 5.6",
            fin(0x1, &text(n)),
            vec![answer(0x1, &text(n))],
        ));
    }
    for (name, n) in [
        ("1.2.1 binary 0", 0),
        ("1.2.2 binary 125", 125),
        ("1.2.3 binary 126", 126),
        ("1.2.4 binary 127", 127),
        ("1.2.5 binary 65535", 65535),
        ("1.2.6 binary 65536", 65536),
    ] {
        cases.push(ok(
            name,
            "5.2, 5.6",
            fin(0x2, &bytes(n)),
            vec![answer(0x2, &bytes(n))],
        ));
    }
    cases.push(ok(
        "1.3.1 binary 70000 with a 64-bit length",
        "5.2",
        raw_frame(0x82, &bytes(70000), true, true),
        vec![answer(0x2, &bytes(70000))],
    ));
    cases.push(ok(
        "1.3.2 text 300 with a 64-bit length",
        "5.2",
        raw_frame(0x81, &text(300), true, true),
        vec![answer(0x1, &text(300))],
    ));
    cases.push(ok(
        "1.3.3 three frames in one write, echoed in order",
        "5.2",
        [fin(0x1, b"a"), fin(0x2, b"bb"), fin(0x1, b"ccc")].concat(),
        vec![answer(0x1, b"a"), answer(0x2, b"bb"), answer(0x1, b"ccc")],
    ));
    check(echo(WsCodec::new()), cases);
}

#[test]
fn group_2_ping_pong() {
    let mut cases = vec![
        ok(
            "2.1 ping, no payload",
            "5.5.2",
            fin(0x9, b""),
            vec![answer(0xA, b"")],
        ),
        ok(
            "2.2 ping, text payload",
            "5.5.2",
            fin(0x9, b"Hello, world!"),
            vec![answer(0xA, b"Hello, world!")],
        ),
        ok(
            "2.3 ping, binary payload",
            "5.5.2",
            fin(0x9, &[0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]),
            vec![answer(
                0xA,
                &[0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff],
            )],
        ),
        ok(
            "2.4 ping, 125 bytes",
            "5.5",
            fin(0x9, &bytes(125)),
            vec![answer(0xA, &bytes(125))],
        ),
        fails("2.5 ping, 126 bytes", "5.5", fin(0x9, &bytes(126)), 1002),
        ok(
            "2.6 unsolicited pong, no payload, is ignored",
            "5.5.3",
            [fin(0xA, b""), fin(0x1, b"after")].concat(),
            vec![answer(0x1, b"after")],
        ),
        ok(
            "2.7 unsolicited pong with payload is ignored",
            "5.5.3",
            [fin(0xA, b"unsolicited"), fin(0x1, b"after")].concat(),
            vec![answer(0x1, b"after")],
        ),
    ];
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
    let mut cases = Vec::new();
    for (name, b0) in [
        ("3.1 RSV1 on text", 0x80 | 0x40 | 0x1),
        ("3.2 RSV2 on text", 0x80 | 0x20 | 0x1),
        ("3.3 RSV3 on text", 0x80 | 0x10 | 0x1),
        ("3.4 RSV1-3 on binary", 0x80 | 0x70 | 0x2),
        ("3.5 RSV1 on ping", 0x80 | 0x40 | 0x9),
        ("3.6 RSV2 on close", 0x80 | 0x20 | 0x8),
    ] {
        cases.push(fails(name, "5.2", raw_frame(b0, b"x", true, false), 1002));
    }
    cases.push(then_fails(
        "3.7 RSV3 after a valid text",
        "5.2",
        [fin(0x1, b"ok"), raw_frame(0x90 | 0x1, b"x", true, false)].concat(),
        vec![answer(0x1, b"ok")],
        1002,
    ));
    check(echo(WsCodec::new()), cases);
}

#[test]
fn group_4_opcodes() {
    let mut cases = Vec::new();
    let data = [
        "4.1.1 data 3",
        "4.1.2 data 4",
        "4.1.3 data 5",
        "4.1.4 data 6",
        "4.1.5 data 7",
    ];
    for (name, op) in data.into_iter().zip(3u8..=7) {
        cases.push(fails(name, "5.2", fin(op, b"reserved"), 1002));
    }
    let control = [
        "4.2.1 control 11",
        "4.2.2 control 12",
        "4.2.3 control 13",
        "4.2.4 control 14",
        "4.2.5 control 15",
    ];
    for (name, op) in control.into_iter().zip(0xBu8..=0xF) {
        cases.push(fails(name, "5.2", fin(op, b""), 1002));
    }
    cases.push(then_fails(
        "4.3 reserved opcode after a valid text",
        "5.2",
        [fin(0x1, b"ok"), fin(0x5, b"")].concat(),
        vec![answer(0x1, b"ok")],
        1002,
    ));
    check(echo(WsCodec::new()), cases);
}

#[test]
fn group_5_fragmentation() {
    let cases = vec![
        ok(
            "5.1 text in two fragments",
            "5.4",
            [more(0x1, b"frag"), fin(0x0, b"ment")].concat(),
            vec![answer(0x1, b"fragment")],
        ),
        ok(
            "5.2 binary in three fragments",
            "5.4",
            [more(0x2, &[1]), more(0x0, &[2, 3]), fin(0x0, &[4])].concat(),
            vec![answer(0x2, &[1, 2, 3, 4])],
        ),
        ok(
            "5.3 fragments with empty payloads",
            "5.4",
            [more(0x1, b""), more(0x0, b"x"), fin(0x0, b"")].concat(),
            vec![answer(0x1, b"x")],
        ),
        ok(
            "5.4 ping between fragments is answered at once",
            "5.4, 5.5",
            [more(0x1, b"a"), fin(0x9, b"p"), fin(0x0, b"b")].concat(),
            vec![answer(0xA, b"p"), answer(0x1, b"ab")],
        ),
        ok(
            "5.5 pong between fragments is ignored",
            "5.4, 5.5.3",
            [more(0x2, b"a"), fin(0xA, b"p"), fin(0x0, b"b")].concat(),
            vec![answer(0x2, b"ab")],
        ),
        fails(
            "5.6 continuation without a message, FIN",
            "5.4",
            fin(0x0, b"orphan"),
            1002,
        ),
        fails(
            "5.7 continuation without a message, no FIN",
            "5.4",
            more(0x0, b"orphan"),
            1002,
        ),
        fails(
            "5.8 a new text inside a fragmented text",
            "5.4",
            [more(0x1, b"a"), fin(0x1, b"b")].concat(),
            1002,
        ),
        fails(
            "5.9 a new binary start inside a fragmented binary",
            "5.4",
            [more(0x2, b"a"), more(0x2, b"b")].concat(),
            1002,
        ),
        fails(
            "5.10 fragmented ping",
            "5.4, 5.5",
            [more(0x9, b"a"), fin(0x0, b"b")].concat(),
            1002,
        ),
        fails(
            "5.11 fragmented close",
            "5.4, 5.5",
            more(0x8, &1000u16.to_be_bytes()),
            1002,
        ),
        Case {
            name: "5.12 close between fragments ends it",
            rfc: "5.4, 5.5.1",
            wire: [more(0x1, b"half"), fin(0x8, &1000u16.to_be_bytes())].concat(),
            expect: vec![echo_close()],
        },
    ];
    check(echo(WsCodec::new()), cases);
}

#[test]
fn group_6_utf8() {
    let valid: [(&str, &[u8]); 4] = [
        (
            "6.1 valid, 2-byte sequences",
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
        ),
        ("6.2 valid, 3-byte sequences", "κόσμε €".as_bytes()),
        ("6.3 valid, 4-byte sequences", "𝄞 💩".as_bytes()),
        (
            "6.4 valid, the boundaries U+007F U+07FF U+FFFF U+10FFFF",
            "\u{7f}\u{7ff}\u{ffff}\u{10ffff}".as_bytes(),
        ),
    ];
    let mut cases: Vec<Case> = valid
        .into_iter()
        .map(|(name, t)| ok(name, "5.6, 8.1", fin(0x1, t), vec![answer(0x1, t)]))
        .collect();
    let snow = "☃".as_bytes(); // e2 98 83
    let clef = "𝄞".as_bytes(); // f0 9d 84 9e
    cases.push(ok(
        "6.5 a 3-byte sequence split across fragments",
        "5.6, 8.1",
        [
            more(0x1, &snow[..1]),
            more(0x0, &snow[1..2]),
            fin(0x0, &snow[2..]),
        ]
        .concat(),
        vec![answer(0x1, snow)],
    ));
    cases.push(ok(
        "6.6 a 4-byte sequence split across fragments",
        "5.6, 8.1",
        [more(0x1, &clef[..3]), fin(0x0, &clef[3..])].concat(),
        vec![answer(0x1, clef)],
    ));
    let invalid: [(&'static str, &[u8]); 7] = [
        ("6.7 invalid: a lone 0xff", &[0xff]),
        ("6.8 invalid: overlong '/'", &[0xc0, 0xaf]),
        ("6.9 invalid: a UTF-16 surrogate", &[0xed, 0xa0, 0x80]),
        ("6.10 invalid: above U+10FFFF", &[0xf4, 0x90, 0x80, 0x80]),
        ("6.11 invalid: a lone continuation byte", &[b'a', 0x80]),
        (
            "6.12 invalid: truncated at the end of the message",
            &[b'a', 0xe2, 0x82],
        ),
        ("6.13 invalid: 0xfe", &[0xfe, 0xfe, 0xff, 0xff]),
    ];
    for (name, t) in invalid {
        cases.push(fails(name, "8.1", fin(0x1, t), 1007));
    }
    // Fail fast: the message never ends (no FIN), and the answer must still come.
    cases.push(fails(
        "6.14 invalid in the first fragment, before the message ends",
        "8.1",
        more(0x1, &[b'o', b'k', 0xff]),
        1007,
    ));
    cases.push(fails(
        "6.15 invalid sequence split across fragments fails at the second",
        "8.1",
        [more(0x1, &[b'a', 0xe2, 0x82]), more(0x0, b"A-rest")].concat(),
        1007,
    ));
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
    let mut cases = vec![
        Case {
            name: "7.1 close without payload is echoed without payload",
            rfc: "5.5.1",
            wire: fin(0x8, b""),
            expect: vec![Frame(0x88, vec![])],
        },
        Case {
            name: "7.2 close 1000 with a reason is echoed",
            rfc: "5.5.1",
            wire: fin(0x8, &close_payload(1000, b"bye")),
            expect: vec![Frame(0x88, close_payload(1000, b"bye"))],
        },
        Case {
            name: "7.3 close with a 123-byte reason (125 payload)",
            rfc: "5.5, 5.5.1",
            wire: fin(0x8, &close_payload(1000, &text(123))),
            expect: vec![Frame(0x88, close_payload(1000, &text(123)))],
        },
        Case {
            name: "7.4 data after the close frame is ignored",
            rfc: "5.5.1",
            wire: [fin(0x8, &1000u16.to_be_bytes()), fin(0x1, b"late")].concat(),
            expect: vec![echo_close()],
        },
        Case {
            name: "7.5 a ping after the close frame is not answered",
            rfc: "5.5.1",
            wire: [fin(0x8, &1000u16.to_be_bytes()), fin(0x9, b"late")].concat(),
            expect: vec![echo_close()],
        },
        fails(
            "7.6 close payload of 1 byte",
            "5.5.1",
            fin(0x8, &[0x03]),
            1002,
        ),
        fails(
            "7.7 close reason not UTF-8",
            "5.5.1, 8.1",
            fin(
                0x8,
                &close_payload(1000, &[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xff]),
            ),
            1007,
        ),
    ];
    for code in [
        1001u16, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        cases.push(Case {
            name: "7.8 a valid close code is echoed",
            rfc: "7.4.1, 7.4.2",
            wire: fin(0x8, &code.to_be_bytes()),
            expect: vec![Frame(0x88, code.to_be_bytes().to_vec())],
        });
    }
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        cases.push(fails(
            "7.9 an invalid close code",
            "7.4.1, 7.4.2",
            fin(0x8, &code.to_be_bytes()),
            1002,
        ));
    }
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
    let len = |n: usize| answer(0x1, n.to_string().as_bytes());
    let four = [
        more(0x2, &bytes(1000)),
        more(0x0, &bytes(1000)),
        more(0x0, &bytes(1000)),
    ]
    .concat();
    // The header of a fifth 1000-byte fragment, without its payload: refused on the header.
    let fifth_header = [&[0x80, 0x80 | 126, 0x03, 0xe8][..], &KEY].concat();
    let cases = vec![
        ok(
            "9.1 a frame at the limit",
            "10.4",
            fin(0x2, &bytes(1000)),
            vec![len(1000)],
        ),
        fails(
            "9.2 a frame over the limit",
            "10.4, 7.4.1",
            fin(0x2, &bytes(1001)),
            1009,
        ),
        ok(
            "9.3 a message at the limit, in four fragments",
            "10.4",
            [four.clone(), fin(0x0, &bytes(1000))].concat(),
            vec![len(4000)],
        ),
        fails(
            "9.4 a message over the limit, refused on the fifth fragment's header",
            "10.4, 7.4.1",
            [four, more(0x0, &bytes(1000)), fifth_header].concat(),
            1009,
        ),
        fails(
            "9.5 a 64-bit length of 2^40, refused on the header",
            "10.4, 7.4.1",
            [
                vec![0x82, 0xFF],
                (1u64 << 40).to_be_bytes().to_vec(),
                KEY.to_vec(),
            ]
            .concat(),
            1009,
        ),
        fails(
            "9.6 a 64-bit length with the top bit set",
            "5.2",
            [
                vec![0x82, 0xFF],
                (1u64 << 63).to_be_bytes().to_vec(),
                KEY.to_vec(),
            ]
            .concat(),
            1002,
        ),
    ];
    check(server, cases);
}

#[test]
fn group_10_masking() {
    let unmasked = |op: u8, p: &[u8]| raw_frame(0x80 | op, p, false, false);
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
