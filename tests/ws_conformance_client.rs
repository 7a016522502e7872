//! A conformance set for the WebSocket client, the mirror of `ws_conformance.rs` (the server's):
//! the Autobahn|Testsuite case groups that apply to a client (1 framing, 2 ping/pong, 3 reserved
//! bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close, 9 sizes and limits, 10 masking and
//! auto-fragmentation), each case run through every way of receiving: the blocking client's
//! `recv`, `recv_timeout`, `try_recv` polled and `request`, and the callback client.
//!
//! The server is a raw std `TcpListener` on 127.0.0.1 that answers the handshake and then sends
//! the case's frames, built byte by byte below (not with the crate's codec): the first frame in
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

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::{Duration, Instant};

use common::WAIT;
use threadnet::ws::{
    accept_key, apply_mask, Message, WsBlockingClient, WsClient, WsClientBuilder, WsCodec, WsError,
    WsRecvError,
};
use threadnet::{CloseReason, Connection, Handler};

type Got = Result<Message, WsError>;

/// A server frame built by hand: FIN, RSV bits and opcode in byte 0, then the shortest length
/// encoding (or the 64-bit one if `long`), then the payload, masked with `mask` if given (a
/// server must not mask, section 5.1).
fn raw_frame(b0: u8, payload: &[u8], mask: Option<[u8; 4]>, long: bool) -> Vec<u8> {
    let m = if mask.is_some() { 0x80 } else { 0 };
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
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], key);
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// An unmasked frame with FIN set.
fn fin(opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(0x80 | opcode, payload, None, false)
}

/// An unmasked frame without FIN (a fragment that is not the last).
fn more(opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(opcode, payload, None, false)
}

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

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    [&code.to_be_bytes()[..], reason].concat()
}

/// What the client must send back.
enum Expect {
    /// This exact frame: (byte 0, unmasked payload).
    Frame(u8, Vec<u8>),
    /// A close frame with this code (its reason text is free).
    Close(u16),
}
use Expect::{Close, Frame};

struct Case {
    /// Autobahn-style id and what it checks.
    name: &'static str,
    /// The RFC 6455 section it checks.
    rfc: &'static str,
    /// What the server sends after its `101`.
    wire: Vec<u8>,
    expect: Vec<Expect>,
    /// How the client's connection must end: a closing handshake with this code, started by
    /// the server (true) or by the client (false, a protocol error).
    end: (u16, bool),
    /// The frames after the first go out in writes of this many bytes (`None`: one write).
    chop: Option<usize>,
}

impl Case {
    fn chopped(self, size: usize) -> Case {
        Case {
            chop: Some(size),
            ..self
        }
    }
}

/// The client's echo of our close 1000.
fn echo_close() -> Expect {
    Frame(0x88, 1000u16.to_be_bytes().to_vec())
}

/// A case that ends with our close 1000, echoed: `wire` then the close frame.
fn ok(name: &'static str, rfc: &'static str, wire: Vec<u8>, mut expect: Vec<Expect>) -> Case {
    let wire = [wire, fin(0x8, &1000u16.to_be_bytes())].concat();
    expect.push(echo_close());
    Case {
        name,
        rfc,
        wire,
        expect,
        end: (1000, true),
        chop: None,
    }
}

/// A case the client must answer with a close frame carrying `code`.
fn fails(name: &'static str, rfc: &'static str, wire: Vec<u8>, code: u16) -> Case {
    then_fails(name, rfc, wire, vec![], code)
}

/// A case with frames echoed before the refusal.
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
        end: (code, false),
        chop: None,
    }
}

/// A case whose close frame from the server the client must echo exactly: `payload` back,
/// and the connection ends with `code` (1005 for a close frame without one).
fn echoed_close(name: &'static str, rfc: &'static str, wire: Vec<u8>, payload: Vec<u8>) -> Case {
    let code = match payload[..] {
        [a, b, ..] => u16::from_be_bytes([a, b]),
        _ => 1005,
    };
    Case {
        name,
        rfc,
        wire,
        expect: vec![Frame(0x88, payload)],
        end: (code, true),
        chop: None,
    }
}

/// The client's frame with FIN, as it must echo `payload`.
fn answer(opcode: u8, payload: &[u8]) -> Expect {
    Frame(0x80 | opcode, payload.to_vec())
}

fn text(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7) as u8).collect()
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

/// Reads one client frame: (byte 0, unmasked payload, mask key). A client frame must be
/// masked (section 5.3).
fn read_frame(r: &mut impl Read) -> io::Result<(u8, Vec<u8>, [u8; 4])> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h)?;
    if h[1] & 0x80 == 0 {
        return Err(io::Error::other("an unmasked client frame"));
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
    let mut key = [0u8; 4];
    r.read_exact(&mut key)?;
    let mut p = vec![0; len as usize];
    r.read_exact(&mut p)?;
    apply_mask(&mut p, key);
    Ok((h[0], p, key))
}

/// Checks what the client sends against `case.expect`.
fn expect_frames(r: &mut impl Read, case: &Case) -> Result<(), String> {
    let mut keys = Vec::new();
    for want in &case.expect {
        let (b0, p, key) = read_frame(r).map_err(|e| format!("read: {e}"))?;
        keys.push(key);
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
    // Section 5.3: a fresh key per frame (two equal keys by chance: 1 in 2^32).
    if keys.len() > 1 && keys.iter().all(|k| *k == keys[0]) {
        return Err(format!(
            "every frame masked with the same key {:x?}",
            keys[0]
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
    let mut cases = Vec::new();
    for (name, n) in [
        ("1.1.1 text 0", 0),
        ("1.1.2 text 125", 125),
        ("1.1.3 text 126", 126),
        ("1.1.4 text 127", 127),
        ("1.1.5 text 65535", 65535),
        ("1.1.6 text 65536", 65536),
    ] {
        let t = text(n);
        cases.push(ok(name, "5.2, 5.6", fin(0x1, &t), vec![answer(0x1, &t)]));
    }
    for (name, n) in [
        ("1.2.1 binary 0", 0),
        ("1.2.2 binary 125", 125),
        ("1.2.3 binary 126", 126),
        ("1.2.4 binary 127", 127),
        ("1.2.5 binary 65535", 65535),
        ("1.2.6 binary 65536", 65536),
    ] {
        let b = bytes(n);
        cases.push(ok(name, "5.2, 5.6", fin(0x2, &b), vec![answer(0x2, &b)]));
    }
    cases.push(ok(
        "1.3.1 binary 70000 with a 64-bit length",
        "5.2",
        raw_frame(0x82, &bytes(70000), None, true),
        vec![answer(0x2, &bytes(70000))],
    ));
    cases.push(ok(
        "1.3.2 text 300 with a 64-bit length",
        "5.2",
        raw_frame(0x81, &text(300), None, true),
        vec![answer(0x1, &text(300))],
    ));
    cases.push(ok(
        "1.3.3 three frames in one write, echoed in order",
        "5.2",
        [fin(0x1, b"a"), fin(0x2, b"bb"), fin(0x1, b"ccc")].concat(),
        vec![answer(0x1, b"a"), answer(0x2, b"bb"), answer(0x1, b"ccc")],
    ));
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
    let cases = vec![
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
            "2.6 ping, 125 bytes, one byte per write",
            "5.5.2",
            [fin(0x9, b"first"), fin(0x9, &bytes(125))].concat(),
            vec![answer(0xA, b"first"), answer(0xA, &bytes(125))],
        )
        .chopped(1),
        ok(
            "2.7 unsolicited pong, no payload, is ignored",
            "5.5.3",
            [fin(0xA, b""), fin(0x1, b"after")].concat(),
            vec![answer(0x1, b"after")],
        ),
        ok(
            "2.8 unsolicited pong with payload is ignored",
            "5.5.3",
            [fin(0xA, b"unsolicited"), fin(0x1, b"after")].concat(),
            vec![answer(0x1, b"after")],
        ),
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
    ];
    check(cases, client(), echo);
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
        cases.push(fails(name, "5.2", raw_frame(b0, b"x", None, false), 1002));
    }
    cases.push(then_fails(
        "3.7 RSV3 after a valid text",
        "5.2",
        [fin(0x1, b"ok"), raw_frame(0x90 | 0x1, b"x", None, false)].concat(),
        vec![answer(0x1, b"ok")],
        1002,
    ));
    check(cases, client(), echo);
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
    check(cases, client(), echo);
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
        ok(
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
        .chopped(1),
        fails(
            "5.7 continuation without a message, FIN",
            "5.4",
            fin(0x0, b"orphan"),
            1002,
        ),
        fails(
            "5.8 continuation without a message, no FIN",
            "5.4",
            more(0x0, b"orphan"),
            1002,
        ),
        fails(
            "5.9 a new text inside a fragmented text",
            "5.4",
            [more(0x1, b"a"), fin(0x1, b"b")].concat(),
            1002,
        ),
        fails(
            "5.10 a new binary start inside a fragmented binary",
            "5.4",
            [more(0x2, b"a"), more(0x2, b"b")].concat(),
            1002,
        ),
        fails(
            "5.11 fragmented ping",
            "5.4, 5.5",
            [more(0x9, b"a"), fin(0x0, b"b")].concat(),
            1002,
        ),
        fails(
            "5.12 fragmented close",
            "5.4, 5.5",
            more(0x8, &1000u16.to_be_bytes()),
            1002,
        ),
        echoed_close(
            "5.13 close between fragments ends it",
            "5.4, 5.5.1",
            [more(0x1, b"half"), fin(0x8, &1000u16.to_be_bytes())].concat(),
            1000u16.to_be_bytes().to_vec(),
        ),
    ];
    check(cases, client(), echo);
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
    cases.push(
        ok(
            "6.7 valid text, one byte per write",
            "5.6, 8.1",
            fin(0x1, "κόσμε 𝄞".as_bytes()),
            vec![answer(0x1, "κόσμε 𝄞".as_bytes())],
        )
        .chopped(1),
    );
    let invalid: [(&'static str, &[u8]); 7] = [
        ("6.8 invalid: a lone 0xff", &[0xff]),
        ("6.9 invalid: overlong '/'", &[0xc0, 0xaf]),
        ("6.10 invalid: a UTF-16 surrogate", &[0xed, 0xa0, 0x80]),
        ("6.11 invalid: above U+10FFFF", &[0xf4, 0x90, 0x80, 0x80]),
        ("6.12 invalid: a lone continuation byte", &[b'a', 0x80]),
        (
            "6.13 invalid: truncated at the end of the message",
            &[b'a', 0xe2, 0x82],
        ),
        ("6.14 invalid: 0xfe", &[0xfe, 0xfe, 0xff, 0xff]),
    ];
    for (name, t) in invalid {
        cases.push(fails(name, "8.1", fin(0x1, t), 1007));
    }
    // Fail fast: the message never ends (no FIN), and the answer must still come.
    cases.push(fails(
        "6.15 invalid in the first fragment, before the message ends",
        "8.1",
        more(0x1, &[b'o', b'k', 0xff]),
        1007,
    ));
    cases.push(fails(
        "6.16 invalid sequence split across fragments fails at the second",
        "8.1",
        [more(0x1, &[b'a', 0xe2, 0x82]), more(0x0, b"A-rest")].concat(),
        1007,
    ));
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
    let mut cases = vec![
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
            [fin(0x8, &1000u16.to_be_bytes()), fin(0x1, b"late")].concat(),
            1000u16.to_be_bytes().to_vec(),
        ),
        echoed_close(
            "7.5 a ping after the close frame is not answered",
            "5.5.1",
            [fin(0x8, &1000u16.to_be_bytes()), fin(0x9, b"late")].concat(),
            1000u16.to_be_bytes().to_vec(),
        ),
        ok(
            "7.6 a message, then the close",
            "5.5.1",
            fin(0x1, b"last words"),
            vec![answer(0x1, b"last words")],
        ),
        fails(
            "7.7 close payload of 1 byte",
            "5.5.1",
            fin(0x8, &[0x03]),
            1002,
        ),
        fails(
            "7.8 close reason not UTF-8",
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
            "7.9 a valid close code is echoed",
            "7.4.1, 7.4.2",
            fin(0x8, &code.to_be_bytes()),
            code.to_be_bytes().to_vec(),
        ));
    }
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        cases.push(fails(
            "7.10 an invalid close code",
            "7.4.1, 7.4.2",
            fin(0x8, &code.to_be_bytes()),
            1002,
        ));
    }
    check(cases, client(), echo);
}

/// Autobahn's 9.x sends up to 16 MiB, in frames, fragments and chopped writes; the same shapes
/// here, smaller, within the default limits (1 MiB frames, 4 MiB messages).
#[test]
fn group_9_sizes() {
    let many_texts: Vec<u8> = (0..100).flat_map(|i| fin(0x1, &text(i))).collect();
    let many_bins: Vec<u8> = (0..100).flat_map(|i| fin(0x2, &bytes(i))).collect();
    let cases = vec![
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
        ok(
            "9.5 text 64 KiB in 100-byte writes",
            "5.6",
            [fin(0x1, b"x"), fin(0x1, &text(64 << 10))].concat(),
            vec![answer(0x1, b"x"), answer(0x1, &text(64 << 10))],
        )
        .chopped(100),
        ok(
            "9.6 binary 128 KiB in 1000-byte writes",
            "5.6",
            [fin(0x2, b"x"), fin(0x2, &bytes(128 << 10))].concat(),
            vec![answer(0x2, b"x"), answer(0x2, &bytes(128 << 10))],
        )
        .chopped(1000),
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
    ];
    check(cases, client(), echo);
}

/// Limits: frames up to 1000 bytes, messages up to 4000; the client answers the length.
#[test]
fn group_9_limits() {
    let len = |n: usize| answer(0x1, n.to_string().as_bytes());
    let four = [
        more(0x2, &bytes(1000)),
        more(0x0, &bytes(1000)),
        more(0x0, &bytes(1000)),
    ]
    .concat();
    // The header of a fifth 1000-byte fragment, without its payload: refused on the header.
    let fifth_header = vec![0x80, 126, 0x03, 0xe8];
    let cases = vec![
        ok(
            "9.9 a frame at the limit",
            "10.4",
            fin(0x2, &bytes(1000)),
            vec![len(1000)],
        ),
        fails(
            "9.10 a frame over the limit",
            "10.4, 7.4.1",
            fin(0x2, &bytes(1001)),
            1009,
        ),
        ok(
            "9.11 a message at the limit, in four fragments",
            "10.4",
            [four.clone(), fin(0x0, &bytes(1000))].concat(),
            vec![len(4000)],
        ),
        fails(
            "9.12 a message over the limit, refused on the fifth fragment's header",
            "10.4, 7.4.1",
            [four, more(0x0, &bytes(1000)), fifth_header].concat(),
            1009,
        ),
        fails(
            "9.13 a 64-bit length of 2^40, refused on the header",
            "10.4, 7.4.1",
            [vec![0x82, 0x7F], (1u64 << 40).to_be_bytes().to_vec()].concat(),
            1009,
        ),
        fails(
            "9.14 a 64-bit length with the top bit set",
            "5.2",
            [vec![0x82, 0x7F], (1u64 << 63).to_be_bytes().to_vec()].concat(),
            1002,
        ),
    ];
    check(cases, client().max_frame(1000).max_message(4000), length);
}

#[test]
fn group_10_masking_and_fragments() {
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
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
