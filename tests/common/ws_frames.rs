//! WebSocket frames built and read byte by byte (not with the crate's codec), and the
//! Autobahn-style cases that `ws_conformance.rs` (the server's) and `ws_conformance_client.rs`
//! (the client's) share. The file that includes this one (`#[path]`) defines
//! `const MASK: Option<[u8; 4]>`: the mask key on the frames the test sends, `Some` when the
//! test plays the client (section 5.3), `None` when it plays the server (section 5.1).
#![allow(dead_code)]

use std::io::{self, Read};

use super::MASK;

/// The mask key of the frames a test sends as a client.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// XORs `payload` with `key` in place (section 5.3), by hand.
pub fn mask(payload: &mut [u8], key: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// A frame built by hand: FIN, RSV bits and opcode in byte 0, then the shortest length
/// encoding (or the 64-bit one if `long`), then the payload, masked with `key` if given.
pub fn raw_frame(b0: u8, payload: &[u8], key: Option<[u8; 4]>, long: bool) -> Vec<u8> {
    let m = if key.is_some() { 0x80 } else { 0 };
    let mut out = vec![b0];
    let n = payload.len();
    if long || n > 0xFFFF {
        out.push(m | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    } else if n < 126 {
        out.push(m | n as u8);
    } else {
        out.push(m | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
    if let Some(key) = key {
        out.extend_from_slice(&key);
    }
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = key {
        mask(&mut out[start..], key);
    }
    out
}

/// A frame the test sends, with FIN set.
pub fn fin(opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(0x80 | opcode, payload, MASK, false)
}

/// A frame the test sends, without FIN (a fragment that is not the last).
pub fn more(opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(opcode, payload, MASK, false)
}

/// A close frame's payload: `code` (big-endian), then `reason`.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    [&code.to_be_bytes()[..], reason].concat()
}

/// `n` bytes of ASCII text: a to z, repeated.
pub fn text(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// `n` bytes of binary: `i * 7` truncated to a byte.
pub fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7) as u8).collect()
}

/// Reads one frame of the peer: (byte 0, unmasked payload, mask key). Its mask bit must be
/// `masked`: a client's frames are masked (section 5.3), a server's never (section 5.1).
pub fn read_frame(r: &mut impl Read, masked: bool) -> io::Result<(u8, Vec<u8>, Option<[u8; 4]>)> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h)?;
    if (h[1] & 0x80 != 0) != masked {
        return Err(io::Error::other(if masked {
            "an unmasked client frame"
        } else {
            "a masked server frame"
        }));
    }
    let len = match h[1] & 0x7F {
        126 => {
            let mut e = [0u8; 2];
            r.read_exact(&mut e)?;
            u64::from(u16::from_be_bytes(e))
        }
        127 => {
            let mut e = [0u8; 8];
            r.read_exact(&mut e)?;
            u64::from_be_bytes(e)
        }
        n => u64::from(n),
    };
    let key = if masked {
        let mut key = [0u8; 4];
        r.read_exact(&mut key)?;
        Some(key)
    } else {
        None
    };
    let mut p = vec![0; len as usize];
    r.read_exact(&mut p)?;
    if let Some(key) = key {
        mask(&mut p, key);
    }
    Ok((h[0], p, key))
}

/// What the peer must answer.
pub enum Expect {
    /// This exact frame: (byte 0, unmasked payload).
    Frame(u8, Vec<u8>),
    /// A close frame with this code (its reason text is free).
    Close(u16),
}
use Expect::{Close, Frame};

impl Expect {
    /// Checks the frame (byte 0, unmasked payload) the peer sent against this one.
    pub fn check(&self, b0: u8, p: &[u8]) -> Result<(), String> {
        match self {
            Frame(w0, wp) if (b0, p) != (*w0, &wp[..]) => {
                let show = |p: &[u8]| format!("{:x?}", &p[..p.len().min(16)]);
                Err(format!(
                    "got {b0:#x} {} ({} bytes), want {w0:#x} {} ({} bytes)",
                    show(p),
                    p.len(),
                    show(wp),
                    wp.len()
                ))
            }
            Close(code) => {
                let got = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                if b0 != 0x88 || got != Some(*code) {
                    return Err(format!("got {b0:#x} {p:x?}, want a close frame {code}"));
                }
                if std::str::from_utf8(&p[2..]).is_err() {
                    return Err("the close reason is not UTF-8".into());
                }
                Ok(())
            }
            Frame(..) => Ok(()),
        }
    }
}

/// The peer's frame with FIN, as it must echo `payload`.
pub fn answer(opcode: u8, payload: &[u8]) -> Expect {
    Frame(0x80 | opcode, payload.to_vec())
}

/// The peer's echo of our close 1000.
pub fn echo_close() -> Expect {
    Frame(0x88, 1000u16.to_be_bytes().to_vec())
}

pub struct Case {
    /// Autobahn-style id and what it checks.
    pub name: String,
    /// The RFC 6455 section it checks.
    pub rfc: &'static str,
    /// What the test sends.
    pub wire: Vec<u8>,
    pub expect: Vec<Expect>,
    /// How the peer's connection must end (checked by the client's set only): a closing
    /// handshake with this code, started by the test (true) or by the peer (false, a protocol
    /// error).
    pub end: (u16, bool),
    /// The frames after the first go out in writes of this many bytes (`None`: one write;
    /// used by the client's set only).
    pub chop: Option<usize>,
}

impl Case {
    pub fn chopped(self, size: usize) -> Case {
        Case {
            chop: Some(size),
            ..self
        }
    }
}

/// A case that ends with our close 1000, echoed: `wire` then the close frame.
pub fn ok(
    name: impl Into<String>,
    rfc: &'static str,
    wire: Vec<u8>,
    mut expect: Vec<Expect>,
) -> Case {
    let wire = [wire, fin(0x8, &1000u16.to_be_bytes())].concat();
    expect.push(echo_close());
    Case {
        name: name.into(),
        rfc,
        wire,
        expect,
        end: (1000, true),
        chop: None,
    }
}

/// A case the peer must answer with a close frame carrying `code`.
pub fn fails(name: impl Into<String>, rfc: &'static str, wire: Vec<u8>, code: u16) -> Case {
    then_fails(name, rfc, wire, vec![], code)
}

/// A case with frames echoed before the refusal.
pub fn then_fails(
    name: impl Into<String>,
    rfc: &'static str,
    wire: Vec<u8>,
    mut expect: Vec<Expect>,
    code: u16,
) -> Case {
    expect.push(Close(code));
    Case {
        name: name.into(),
        rfc,
        wire,
        expect,
        end: (code, false),
        chop: None,
    }
}

/// A case whose close frame the peer must echo exactly: `payload` back, and the connection
/// ends with `code` (1005 for a close frame without one).
pub fn echoed_close(
    name: impl Into<String>,
    rfc: &'static str,
    wire: Vec<u8>,
    payload: Vec<u8>,
) -> Case {
    let code = match payload[..] {
        [a, b, ..] => u16::from_be_bytes([a, b]),
        _ => 1005,
    };
    Case {
        name: name.into(),
        rfc,
        wire,
        expect: vec![Frame(0x88, payload)],
        end: (code, true),
        chop: None,
    }
}

// ---- The cases both sets share ----

/// 1.1.1-1.3.3: text and binary of each length encoding's edges, 64-bit lengths, three frames
/// in one write.
pub fn framing_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (op, kind, group) in [(0x1, "text", 1), (0x2, "binary", 2)] {
        for (i, n) in [0, 125, 126, 127, 65535, 65536].into_iter().enumerate() {
            let p = if op == 0x1 { text(n) } else { bytes(n) };
            let name = format!("1.{group}.{} {kind} {n}", i + 1);
            cases.push(ok(name, "5.2, 5.6", fin(op, &p), vec![answer(op, &p)]));
        }
    }
    cases.push(ok(
        "1.3.1 binary 70000 with a 64-bit length",
        "5.2",
        raw_frame(0x82, &bytes(70000), MASK, true),
        vec![answer(0x2, &bytes(70000))],
    ));
    cases.push(ok(
        "1.3.2 text 300 with a 64-bit length",
        "5.2",
        raw_frame(0x81, &text(300), MASK, true),
        vec![answer(0x1, &text(300))],
    ));
    cases.push(ok(
        "1.3.3 three frames in one write, echoed in order",
        "5.2",
        [fin(0x1, b"a"), fin(0x2, b"bb"), fin(0x1, b"ccc")].concat(),
        vec![answer(0x1, b"a"), answer(0x2, b"bb"), answer(0x1, b"ccc")],
    ));
    cases
}

/// 2.1-2.5: pings with payloads up to the limit, and one over it.
pub fn ping_cases() -> Vec<Case> {
    let binary = [0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff];
    let pings: [(&'static str, &'static str, Vec<u8>); 4] = [
        ("2.1 ping, no payload", "5.5.2", vec![]),
        ("2.2 ping, text payload", "5.5.2", b"Hello, world!".to_vec()),
        ("2.3 ping, binary payload", "5.5.2", binary.to_vec()),
        ("2.4 ping, 125 bytes", "5.5", bytes(125)),
    ];
    let mut cases: Vec<Case> = pings
        .into_iter()
        .map(|(name, rfc, p)| ok(name, rfc, fin(0x9, &p), vec![answer(0xA, &p)]))
        .collect();
    cases.push(fails(
        "2.5 ping, 126 bytes",
        "5.5",
        fin(0x9, &bytes(126)),
        1002,
    ));
    cases
}

/// 3.1-3.7: a reserved bit set, with no extension agreed.
pub fn reserved_bit_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, b0) in [
        ("3.1 RSV1 on text", 0x80 | 0x40 | 0x1),
        ("3.2 RSV2 on text", 0x80 | 0x20 | 0x1),
        ("3.3 RSV3 on text", 0x80 | 0x10 | 0x1),
        ("3.4 RSV1-3 on binary", 0x80 | 0x70 | 0x2),
        ("3.5 RSV1 on ping", 0x80 | 0x40 | 0x9),
        ("3.6 RSV2 on close", 0x80 | 0x20 | 0x8),
    ] {
        cases.push(fails(name, "5.2", raw_frame(b0, b"x", MASK, false), 1002));
    }
    cases.push(then_fails(
        "3.7 RSV3 after a valid text",
        "5.2",
        [fin(0x1, b"ok"), raw_frame(0x90 | 0x1, b"x", MASK, false)].concat(),
        vec![answer(0x1, b"ok")],
        1002,
    ));
    cases
}

/// 4.1.1-4.3: reserved data and control opcodes.
pub fn opcode_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for op in 3u8..=7 {
        let name = format!("4.1.{} data {op}", op - 2);
        cases.push(fails(name, "5.2", fin(op, b"reserved"), 1002));
    }
    for op in 0xBu8..=0xF {
        let name = format!("4.2.{} control {op}", op - 10);
        cases.push(fails(name, "5.2", fin(op, b""), 1002));
    }
    cases.push(then_fails(
        "4.3 reserved opcode after a valid text",
        "5.2",
        [fin(0x1, b"ok"), fin(0x5, b"")].concat(),
        vec![answer(0x1, b"ok")],
        1002,
    ));
    cases
}

/// 5.1-5.5: valid fragmented messages, with control frames between fragments.
pub fn fragment_cases() -> Vec<Case> {
    vec![
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
    ]
}

/// 6.1-6.6: valid UTF-8 text, whole and split across fragments.
pub fn utf8_valid_cases() -> Vec<Case> {
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
    cases
}

/// 7.1-7.5: close frames the peer must echo, and what comes after them ignored.
pub fn close_echo_cases() -> Vec<Case> {
    let bye = 1000u16.to_be_bytes();
    vec![
        echoed_close(
            "7.1 close without payload is echoed without payload",
            "5.5.1",
            fin(0x8, b""),
            vec![],
        ),
        echoed_close(
            "7.2 close 1000 with a reason is echoed",
            "5.5.1",
            fin(0x8, &close_payload(1000, b"bye")),
            close_payload(1000, b"bye"),
        ),
        echoed_close(
            "7.3 close with a 123-byte reason (125 payload)",
            "5.5, 5.5.1",
            fin(0x8, &close_payload(1000, &text(123))),
            close_payload(1000, &text(123)),
        ),
        echoed_close(
            "7.4 data after the close frame is ignored",
            "5.5.1",
            [fin(0x8, &bye), fin(0x1, b"late")].concat(),
            bye.to_vec(),
        ),
        echoed_close(
            "7.5 a ping after the close frame is not answered",
            "5.5.1",
            [fin(0x8, &bye), fin(0x9, b"late")].concat(),
            bye.to_vec(),
        ),
    ]
}

/// The header of a frame the test sends, without its payload: byte 0, the 7-bit length code
/// and its extended length bytes, then the mask key if the test sends masked frames.
pub fn header(b0: u8, len7: u8, ext: &[u8]) -> Vec<u8> {
    let m = if MASK.is_some() { 0x80 } else { 0 };
    let key = MASK.map(|k| k.to_vec()).unwrap_or_default();
    [&[b0, m | len7][..], ext, &key].concat()
}

/// 2.`first` and on: unsolicited pongs, ignored.
pub fn unsolicited_pong_cases(first: usize) -> Vec<Case> {
    let pongs: [(&str, &[u8]); 2] = [
        ("unsolicited pong, no payload, is ignored", b""),
        ("unsolicited pong with payload is ignored", b"unsolicited"),
    ];
    (first..)
        .zip(pongs)
        .map(|(i, (what, p))| {
            ok(
                format!("2.{i} {what}"),
                "5.5.3",
                [fin(0xA, p), fin(0x1, b"after")].concat(),
                vec![answer(0x1, b"after")],
            )
        })
        .collect()
}

/// 5.`first` and on: fragments out of order, fragmented control frames, and a close between
/// fragments.
pub fn fragment_error_cases(first: usize) -> Vec<Case> {
    let bye = 1000u16.to_be_bytes();
    let errors: [(&str, &str, Vec<u8>); 6] = [
        (
            "continuation without a message, FIN",
            "5.4",
            fin(0x0, b"orphan"),
        ),
        (
            "continuation without a message, no FIN",
            "5.4",
            more(0x0, b"orphan"),
        ),
        (
            "a new text inside a fragmented text",
            "5.4",
            [more(0x1, b"a"), fin(0x1, b"b")].concat(),
        ),
        (
            "a new binary start inside a fragmented binary",
            "5.4",
            [more(0x2, b"a"), more(0x2, b"b")].concat(),
        ),
        (
            "fragmented ping",
            "5.4, 5.5",
            [more(0x9, b"a"), fin(0x0, b"b")].concat(),
        ),
        ("fragmented close", "5.4, 5.5", more(0x8, &bye)),
    ];
    let mut cases: Vec<Case> = (first..)
        .zip(errors)
        .map(|(i, (what, rfc, wire))| fails(format!("5.{i} {what}"), rfc, wire, 1002))
        .collect();
    cases.push(echoed_close(
        format!("5.{} close between fragments ends it", first + 6),
        "5.4, 5.5.1",
        [more(0x1, b"half"), fin(0x8, &bye)].concat(),
        bye.to_vec(),
    ));
    cases
}

/// 6.`first` and on: invalid UTF-8 in one text frame, and in fragments of one that never ends.
pub fn utf8_invalid_cases(first: usize) -> Vec<Case> {
    let invalid: [(&str, &[u8]); 7] = [
        ("invalid: a lone 0xff", &[0xff]),
        ("invalid: overlong '/'", &[0xc0, 0xaf]),
        ("invalid: a UTF-16 surrogate", &[0xed, 0xa0, 0x80]),
        ("invalid: above U+10FFFF", &[0xf4, 0x90, 0x80, 0x80]),
        ("invalid: a lone continuation byte", &[b'a', 0x80]),
        (
            "invalid: truncated at the end of the message",
            &[b'a', 0xe2, 0x82],
        ),
        ("invalid: 0xfe", &[0xfe, 0xfe, 0xff, 0xff]),
    ];
    let mut cases: Vec<Case> = (first..)
        .zip(invalid)
        .map(|(i, (what, t))| fails(format!("6.{i} {what}"), "8.1", fin(0x1, t), 1007))
        .collect();
    // Fail fast: the message never ends (no FIN), and the answer must still come.
    cases.push(fails(
        format!(
            "6.{} invalid in the first fragment, before the message ends",
            first + 7
        ),
        "8.1",
        more(0x1, &[b'o', b'k', 0xff]),
        1007,
    ));
    cases.push(fails(
        format!(
            "6.{} invalid sequence split across fragments fails at the second",
            first + 8
        ),
        "8.1",
        [more(0x1, &[b'a', 0xe2, 0x82]), more(0x0, b"A-rest")].concat(),
        1007,
    ));
    cases
}

/// 7.`first` and on: bad close payloads, then each valid close code echoed and each invalid
/// one refused.
pub fn close_code_cases(first: usize) -> Vec<Case> {
    let mut cases = vec![
        fails(
            format!("7.{first} close payload of 1 byte"),
            "5.5.1",
            fin(0x8, &[0x03]),
            1002,
        ),
        fails(
            format!("7.{} close reason not UTF-8", first + 1),
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
        cases.push(echoed_close(
            format!("7.{} a valid close code is echoed", first + 2),
            "7.4.1, 7.4.2",
            fin(0x8, &code.to_be_bytes()),
            code.to_be_bytes().to_vec(),
        ));
    }
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        cases.push(fails(
            format!("7.{} an invalid close code", first + 3),
            "7.4.1, 7.4.2",
            fin(0x8, &code.to_be_bytes()),
            1002,
        ));
    }
    cases
}

/// 9.`first` and on, for a peer with frames up to 1000 bytes and messages up to 4000 that
/// answers each message's length: at and over each limit, and lengths refused on the header.
pub fn limit_cases(first: usize) -> Vec<Case> {
    let len = |n: usize| answer(0x1, n.to_string().as_bytes());
    let four = [
        more(0x2, &bytes(1000)),
        more(0x0, &bytes(1000)),
        more(0x0, &bytes(1000)),
    ]
    .concat();
    // The header of a fifth 1000-byte fragment, without its payload: refused on the header.
    let fifth_header = header(0x80, 126, &1000u16.to_be_bytes());
    let name = |i: usize, what: &str| format!("9.{} {what}", first + i);
    vec![
        ok(
            name(0, "a frame at the limit"),
            "10.4",
            fin(0x2, &bytes(1000)),
            vec![len(1000)],
        ),
        fails(
            name(1, "a frame over the limit"),
            "10.4, 7.4.1",
            fin(0x2, &bytes(1001)),
            1009,
        ),
        ok(
            name(2, "a message at the limit, in four fragments"),
            "10.4",
            [four.clone(), fin(0x0, &bytes(1000))].concat(),
            vec![len(4000)],
        ),
        fails(
            name(
                3,
                "a message over the limit, refused on the fifth fragment's header",
            ),
            "10.4, 7.4.1",
            [four, more(0x0, &bytes(1000)), fifth_header].concat(),
            1009,
        ),
        fails(
            name(4, "a 64-bit length of 2^40, refused on the header"),
            "10.4, 7.4.1",
            header(0x82, 127, &(1u64 << 40).to_be_bytes()),
            1009,
        ),
        fails(
            name(5, "a 64-bit length with the top bit set"),
            "5.2",
            header(0x82, 127, &(1u64 << 63).to_be_bytes()),
            1002,
        ),
    ]
}
