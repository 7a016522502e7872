//! A conformance set for the WebSocket client, the mirror of `ws_conformance.rs` (the server's):
//! the Autobahn|Testsuite case groups that apply to a client (1 framing, 2 ping/pong, 3 reserved
//! bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close, 9 sizes and limits, 10 masking and
//! auto-fragmentation), each case run through every way of receiving: the blocking client's
//! `recv`, `recv_timeout`, `try_recv` polled and `request`, and the callback client.
//!
//! The server is a raw std `TcpListener` on 127.0.0.1 that answers the handshake and then sends
//! the case's frames, built byte by byte (`common/ws_frames.rs`, not with the crate's codec): the first frame in
//! the same write as the `101` (so the client reads it with the handshake), the rest after it,
//! in one write or chopped into small ones. The client echoes text and binary messages (group
//! 9's limits: answers the length); the server reads what comes back as exact frames (each
//! masked, section 5.3, with a key of its own), or, for a close frame answering a protocol
//! error, as its exact code; then it closes, and the client must close too, ending with the
//! close code of the case.
//!
//! Each case names the RFC 6455 section it checks. A group reports every failing case and
//! method at once; a method that fails three cases in a row skips the rest of the group.

mod common;
#[path = "common/ws_frames.rs"]
mod ws_frames;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::{Duration, Instant};

use common::WAIT;
use threadnet::ws::{
    accept_key, Message, WsBlockingClient, WsClient, WsClientBuilder, WsCodec, WsError, WsRecvError,
};
use threadnet::{CloseReason, Connection, Handler};
use ws_frames::*;

/// The test plays the server: its frames are not masked (section 5.1).
const MASK: Option<[u8; 4]> = None;

type Got = Result<Message, WsError>;

/// `payload` as a message of `opcode` in fragments of `size` bytes.
fn fragments(opcode: u8, payload: &[u8], size: usize) -> Vec<u8> {
    let chunks: Vec<&[u8]> = payload.chunks(size).collect();
    let last = chunks.len() - 1;
    let mut out = Vec::new();
    for (i, c) in chunks.into_iter().enumerate() {
        let op = if i == 0 { opcode } else { 0x0 };
        out.extend(if i == last { fin(op, c) } else { more(op, c) });
    }
    out
}

// ---- The fake server ----

/// The length of the first frame of `wire`, or all of `wire` if it holds less.
fn first_frame_len(wire: &[u8]) -> usize {
    let Some(&b1) = wire.get(1) else {
        return wire.len();
    };
    let (head, len) = match b1 & 0x7F {
        126 if wire.len() >= 4 => (4, u64::from(u16::from_be_bytes([wire[2], wire[3]]))),
        127 if wire.len() >= 10 => (10, u64::from_be_bytes(wire[2..10].try_into().unwrap())),
        126 | 127 => return wire.len(),
        n => (2, u64::from(n)),
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    let end = (head + mask) as u64 + len;
    usize::try_from(end).map_or(wire.len(), |e| e.min(wire.len()))
}

/// Reads the client's handshake request; the `101` that accepts it.
fn accept(r: &mut impl BufRead) -> Result<String, String> {
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        match r.read_line(&mut head) {
            Ok(0) => return Err(format!("the client closed mid-handshake: {head:?}")),
            Ok(_) => {}
            Err(e) => return Err(format!("handshake: {e}")),
        }
    }
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .ok_or_else(|| format!("no Sec-WebSocket-Key in {head:?}"))?;
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    ))
}

/// Checks what the client sends against `case.expect`.
fn expect_frames(r: &mut impl Read, case: &Case) -> Result<(), String> {
    let mut keys = Vec::new();
    for want in &case.expect {
        let (b0, p, key) = read_frame(r, true).map_err(|e| format!("read: {e}"))?;
        keys.push(key);
        want.check(b0, &p)?;
    }
    // Section 5.3: a fresh key per frame (two equal keys by chance: 1 in 2^32).
    if keys.len() > 1 && keys.iter().all(|k| *k == keys[0]) {
        return Err(format!(
            "every frame masked with the same key {:x?}",
            keys[0].unwrap_or_default()
        ));
    }
    Ok(())
}

/// Serves one case to the next client that connects: the handshake, the case's frames (the
/// first one in the same write as the `101`), the client's answers checked; then our FIN, and
/// the client must close too, having sent nothing more.
fn serve_case(listener: &TcpListener, case: &Case) -> Result<(), String> {
    let (s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let head = accept(&mut r)?;
    let first = first_frame_len(&case.wire);
    let mut w = s.try_clone().unwrap();
    w.write_all(&[head.as_bytes(), &case.wire[..first]].concat())
        .map_err(|e| format!("write: {e}"))?;
    // The rest from another thread, so that neither side's writes wait for the other's reads.
    let rest = case.wire[first..].to_vec();
    let chop = case.chop.unwrap_or(rest.len()).max(1);
    let writer = thread::spawn(move || {
        for piece in rest.chunks(chop) {
            if w.write_all(piece).is_err() {
                break; // the client closed: a protocol error stops it reading what is left
            }
        }
    });
    let answers = expect_frames(&mut r, case);
    writer.join().expect("the writer thread");
    // Section 7.1.1: the server closes the TCP connection first, then the client.
    let _ = s.shutdown(Shutdown::Write);
    let mut after = Vec::new();
    let end = match r.read_to_end(&mut after) {
        Ok(_) if after.is_empty() => Ok(()),
        Ok(_) => Err(format!(
            "the client sent {} bytes after its last frame: {:x?}",
            after.len(),
            &after[..after.len().min(16)]
        )),
        Err(e) => Err(format!("the client did not close after our FIN: {e}")),
    };
    answers.and(end)
}

// ---- The clients ----

/// A way of receiving.
#[derive(Clone, Copy, Debug)]
enum Method {
    Recv,
    RecvTimeout,
    TryRecv,
    Request,
    /// `WsClient::connect`: a handler called on the client's reader thread.
    Callback,
}

const METHODS: [Method; 5] = [
    Method::Recv,
    Method::RecvTimeout,
    Method::TryRecv,
    Method::Request,
    Method::Callback,
];

/// What the client sends back for a text or binary message, if anything.
type Reply = fn(Message) -> Option<Message>;

fn echo(m: Message) -> Option<Message> {
    matches!(m, Message::Text(_) | Message::Binary(_)).then_some(m)
}

/// The message's length, as text (group 9's limits: an echo would be over the frame limit).
fn length(m: Message) -> Option<Message> {
    match m {
        Message::Binary(b) => Some(Message::Text(b.len().to_string())),
        Message::Text(t) => Some(Message::Text(t.len().to_string())),
        _ => None,
    }
}

/// The callback client's handler: replies, and hands the close reason to the test.
struct Replier {
    reply: Reply,
    closed: Sender<CloseReason>,
}

impl Handler<WsCodec> for Replier {
    fn on_message(&mut self, conn: &Connection<WsCodec>, got: Got) {
        if let Some(m) = got.ok().and_then(self.reply) {
            let _ = conn.send(m);
        }
    }

    fn on_close(&mut self, _: &Connection<WsCodec>, reason: &CloseReason) {
        let _ = self.closed.send(reason.clone());
    }
}

/// Connects to `url` and replies to every message, receiving as `method` says, until the
/// connection ends; how it ended.
fn run_client(
    builder: WsClientBuilder,
    url: &str,
    method: Method,
    reply: Reply,
) -> Result<CloseReason, String> {
    if let Method::Callback = method {
        let (tx, rx) = mpsc::channel();
        let client = builder
            .connect(url, move |_: &Connection<WsCodec>| Replier {
                reply,
                closed: tx.clone(),
            })
            .map_err(|e| format!("connect: {e}"))?;
        let reason = rx
            .recv_timeout(WAIT)
            .map_err(|_| format!("the connection did not end within {WAIT:?}"))?;
        client.wait();
        return Ok(reason);
    }
    let client = builder
        .connect_blocking(url)
        .map_err(|e| format!("connect_blocking: {e}"))?;
    receive(&client, method, reply)
}

/// The blocking client's receive loop for `method`. A protocol error comes to the loop as
/// an error the client has answered already (its close frame): it receives on, to the end.
fn receive(client: &WsBlockingClient, method: Method, reply: Reply) -> Result<CloseReason, String> {
    let answer = |msg: Message| match reply(msg) {
        Some(m) => client.send(m).map_err(|e| format!("send: {e:?}")),
        None => Ok(()),
    };
    let silent = || format!("{method:?}: nothing within {WAIT:?}");
    match method {
        Method::Recv => loop {
            match client.recv() {
                Ok(msg) => answer(msg)?,
                Err(WsRecvError::Protocol(_)) => {}
                Err(WsRecvError::Closed(reason)) => return Ok(reason),
                Err(e) => return Err(format!("recv: {e}")),
            }
        },
        Method::RecvTimeout => loop {
            match client.recv_timeout(WAIT) {
                Ok(msg) => answer(msg)?,
                Err(WsRecvError::Protocol(_)) => {}
                Err(WsRecvError::Closed(reason)) => return Ok(reason),
                Err(WsRecvError::Timeout) => return Err(silent()),
                Err(e) => return Err(format!("recv_timeout: {e}")),
            }
        },
        Method::TryRecv => {
            let mut since = Instant::now();
            loop {
                match client.try_recv() {
                    Ok(msg) => {
                        answer(msg)?;
                        since = Instant::now();
                    }
                    Err(WsRecvError::Protocol(_)) => since = Instant::now(),
                    Err(WsRecvError::Timeout) if since.elapsed() < WAIT => {
                        thread::park_timeout(Duration::from_millis(1));
                    }
                    Err(WsRecvError::Timeout) => return Err(silent()),
                    Err(WsRecvError::Closed(reason)) => return Ok(reason),
                    Err(e) => return Err(format!("try_recv: {e}")),
                }
            }
        }
        Method::Request => {
            // The first message by a receive; after it each reply is sent with `request`,
            // whose answer is the next message (a ping, a pong: received with a deadline).
            let mut next = client.recv_timeout(WAIT);
            loop {
                let msg = match next {
                    Ok(msg) => msg,
                    Err(WsRecvError::Protocol(_)) => {
                        next = client.recv_timeout(WAIT);
                        continue;
                    }
                    Err(WsRecvError::Closed(reason)) => return Ok(reason),
                    Err(WsRecvError::Timeout) => return Err(silent()),
                    Err(e) => return Err(format!("request: {e}")),
                };
                next = match reply(msg) {
                    None => client.recv_timeout(WAIT),
                    Some(m) => client.request(m, WAIT),
                };
            }
        }
        Method::Callback => unreachable!("run_client handles the callback client"),
    }
}

/// One case, one client.
fn run(builder: &WsClientBuilder, method: Method, reply: Reply, case: &Case) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    thread::scope(|scope| {
        let server = scope.spawn(|| serve_case(&listener, case));
        let client = run_client(builder.clone(), &url, method, reply);
        let server = server.join().expect("the fake server");
        let end = client.and_then(|reason| match reason {
            CloseReason::Protocol { code, by_peer, .. } if (code, by_peer) == case.end => Ok(()),
            other => Err(format!(
                "the client ended with {other}; want a closing handshake with {} (started by \
                 the server: {})",
                case.end.0, case.end.1
            )),
        });
        match (server, end) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(s), Ok(())) => Err(format!("server saw: {s}")),
            (Ok(()), Err(c)) => Err(format!("client: {c}")),
            (Err(s), Err(c)) => Err(format!("server saw: {s}; client: {c}")),
        }
    })
}

/// Runs every case through every method; fails listing each case and method that failed.
fn check(cases: Vec<Case>, builder: WsClientBuilder, reply: Reply) {
    let mut failed = Vec::new();
    for method in METHODS {
        let mut in_a_row = 0;
        for (i, case) in cases.iter().enumerate() {
            match run(&builder, method, reply, case) {
                Ok(()) => in_a_row = 0,
                Err(e) => {
                    failed.push(format!(
                        "{method:?}, {} (RFC 6455 {}): {e}",
                        case.name, case.rfc
                    ));
                    in_a_row += 1;
                }
            }
            if in_a_row == 3 && i + 1 < cases.len() {
                failed.push(format!(
                    "{method:?}: the {} cases left skipped",
                    cases.len() - i - 1
                ));
                break;
            }
        }
    }
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

fn client() -> WsClientBuilder {
    WsClient::builder()
}

// ---- The groups ----

#[test]
fn group_1_framing() {
    let mut cases = framing_cases();
    cases.push(
        ok(
            "1.3.4 binary 1000 then text 300, one byte per write",
            "5.2",
            [fin(0x2, b"x"), fin(0x2, &bytes(1000)), fin(0x1, &text(300))].concat(),
            vec![
                answer(0x2, b"x"),
                answer(0x2, &bytes(1000)),
                answer(0x1, &text(300)),
            ],
        )
        .chopped(1),
    );
    check(cases, client(), echo);
}

#[test]
fn group_2_ping_pong() {
    let ten: Vec<u8> = (0..10u8).flat_map(|i| fin(0x9, &[i])).collect();
    let pongs = || (0..10u8).map(|i| answer(0xA, &[i])).collect::<Vec<_>>();
    let mut cases = ping_cases();
    cases.push(
        ok(
            "2.6 ping, 125 bytes, one byte per write",
            "5.5.2",
            [fin(0x9, b"first"), fin(0x9, &bytes(125))].concat(),
            vec![answer(0xA, b"first"), answer(0xA, &bytes(125))],
        )
        .chopped(1),
    );
    cases.extend(unsolicited_pong_cases(7));
    cases.extend([
        ok(
            "2.9 unsolicited pong, then a ping is answered",
            "5.5.2, 5.5.3",
            [fin(0xA, b"unsolicited"), fin(0x9, b"ping")].concat(),
            vec![answer(0xA, b"ping")],
        ),
        ok(
            "2.10 ten pings, ten pongs in order",
            "5.5.2",
            ten.clone(),
            pongs(),
        ),
        ok("2.11 ten pings, one byte per write", "5.5.2", ten, pongs()).chopped(1),
    ]);
    check(cases, client(), echo);
}

#[test]
fn group_3_reserved_bits() {
    check(reserved_bit_cases(), client(), echo);
}

#[test]
fn group_4_opcodes() {
    check(opcode_cases(), client(), echo);
}

#[test]
fn group_5_fragmentation() {
    let mut cases = fragment_cases();
    cases.extend([ok(
        "5.6 pings between fragments, one byte per write",
        "5.4, 5.5",
        [
            more(0x1, b"fr"),
            fin(0x9, b"1"),
            more(0x0, b"ag"),
            fin(0x9, b"2"),
            fin(0x0, b"ment"),
        ]
        .concat(),
        vec![
            answer(0xA, b"1"),
            answer(0xA, b"2"),
            answer(0x1, b"fragment"),
        ],
    )
    .chopped(1)]);
    cases.extend(fragment_error_cases(7));
    check(cases, client(), echo);
}

#[test]
fn group_6_utf8() {
    let mut cases = utf8_valid_cases();
    cases.push(
        ok(
            "6.7 valid text, one byte per write",
            "5.6, 8.1",
            fin(0x1, "κόσμε 𝄞".as_bytes()),
            vec![answer(0x1, "κόσμε 𝄞".as_bytes())],
        )
        .chopped(1),
    );
    cases.extend(utf8_invalid_cases(8));
    cases.push(then_fails(
        "6.17 valid text then invalid text",
        "8.1",
        [fin(0x1, b"fine"), fin(0x1, &[0xc3, 0x28])].concat(),
        vec![answer(0x1, b"fine")],
        1007,
    ));
    // Fail fast inside one frame (Autobahn 6.4.3, 6.4.4): a 100-byte frame whose first 10
    // bytes hold an invalid one, and whose rest never comes.
    let mut bad = text(100);
    bad[6] = 0xff;
    let cut = fin(0x1, &bad)[..2 + 10].to_vec();
    cases.push(fails(
        "6.18 invalid inside one frame, before the frame ends",
        "8.1",
        cut.clone(),
        1007,
    ));
    cases.push(
        then_fails(
            "6.19 the same after a message, one byte per write",
            "8.1",
            [fin(0x1, b"fine"), cut].concat(),
            vec![answer(0x1, b"fine")],
            1007,
        )
        .chopped(1),
    );
    check(cases, client(), echo);
}

#[test]
fn group_7_close() {
    let mut cases = close_echo_cases();
    cases.push(ok(
        "7.6 a message, then the close",
        "5.5.1",
        fin(0x1, b"last words"),
        vec![answer(0x1, b"last words")],
    ));
    cases.extend(close_code_cases(7));
    check(cases, client(), echo);
}

/// Autobahn's 9.x sends up to 16 MiB, in frames, fragments and chopped writes; the same shapes
/// here, smaller, within the default limits (1 MiB frames, 4 MiB messages).
#[test]
fn group_9_sizes() {
    let many_texts: Vec<u8> = (0..100).flat_map(|i| fin(0x1, &text(i))).collect();
    let many_bins: Vec<u8> = (0..100).flat_map(|i| fin(0x2, &bytes(i))).collect();
    let mut cases = vec![
        ok(
            "9.1 text 256 KiB",
            "5.6",
            fin(0x1, &text(256 << 10)),
            vec![answer(0x1, &text(256 << 10))],
        ),
        ok(
            "9.2 binary 1 MiB, the frame limit",
            "5.6",
            fin(0x2, &bytes(1 << 20)),
            vec![answer(0x2, &bytes(1 << 20))],
        ),
        ok(
            "9.3 text 64 KiB in 256-byte fragments",
            "5.4",
            fragments(0x1, &text(64 << 10), 256),
            vec![answer(0x1, &text(64 << 10))],
        ),
        ok(
            "9.4 binary 256 KiB in 4 KiB fragments",
            "5.4",
            fragments(0x2, &bytes(256 << 10), 4096),
            vec![answer(0x2, &bytes(256 << 10))],
        ),
    ];
    // One short message, then a long one chopped into writes of `chop` bytes.
    let chopped = [
        (
            "9.5 text 64 KiB in 100-byte writes",
            0x1,
            text(64 << 10),
            100,
        ),
        (
            "9.6 binary 128 KiB in 1000-byte writes",
            0x2,
            bytes(128 << 10),
            1000,
        ),
    ];
    for (name, op, p, chop) in chopped {
        let wire = [fin(op, b"x"), fin(op, &p)].concat();
        cases.push(ok(name, "5.6", wire, vec![answer(op, b"x"), answer(op, &p)]).chopped(chop));
    }
    cases.extend([
        ok(
            "9.7 100 texts in one write, echoed in order",
            "5.6",
            many_texts,
            (0..100).map(|i| answer(0x1, &text(i))).collect(),
        ),
        ok(
            "9.8 100 binaries in 7-byte writes, echoed in order",
            "5.6",
            many_bins,
            (0..100).map(|i| answer(0x2, &bytes(i))).collect(),
        )
        .chopped(7),
    ]);
    check(cases, client(), echo);
}

/// Limits: frames up to 1000 bytes, messages up to 4000; the client answers the length.
#[test]
fn group_9_limits() {
    check(
        limit_cases(9),
        client().max_frame(1000).max_message(4000),
        length,
    );
}

#[test]
fn group_10_masking_and_fragments() {
    let masked = |b0: u8, p: &[u8]| raw_frame(b0, p, Some(KEY), false);
    let cases = vec![
        ok(
            "10.1 text 64 KiB in 1300-byte fragments (Autobahn 10.1.1)",
            "5.4",
            fragments(0x1, &text(64 << 10), 1300),
            vec![answer(0x1, &text(64 << 10))],
        ),
        fails("10.2 masked text", "5.1", masked(0x81, b"hello"), 1002),
        fails("10.3 masked ping", "5.1", masked(0x89, b""), 1002),
        fails(
            "10.4 masked close",
            "5.1",
            masked(0x88, &1000u16.to_be_bytes()),
            1002,
        ),
        then_fails(
            "10.5 masked after an unmasked frame",
            "5.1",
            [fin(0x1, b"ok"), masked(0x81, b"no")].concat(),
            vec![answer(0x1, b"ok")],
            1002,
        ),
        fails(
            "10.6 masked continuation of an unmasked start",
            "5.1",
            [more(0x1, b"a"), masked(0x80, b"b")].concat(),
            1002,
        ),
    ];
    check(cases, client(), echo);
}
