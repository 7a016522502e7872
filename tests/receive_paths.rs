//! Every way of receiving, over every transport and wrapper a blocking client can have.
//!
//! A blocking client receives with `recv`, `recv_timeout`, `try_recv`, `iter` and `request`
//! (a WebSocket client has no `iter`), and ends gracefully with `shutdown` or by being
//! dropped. Each runs here over TCP, a
//! Unix-domain socket, a WebSocket client whose server sent its first frame in the same write
//! as its `101` (the client holds bytes read past the handshake, in a wrapper of the socket),
//! and TCP through the fault proxy, which cuts every write into pieces of a few bytes. In
//! each, the peer writes its first message at once, before the client asks for anything.
//!
//! A transport or a wrapper that skipped a method of the socket trait, answering "nothing now"
//! or "unsupported" where it could have read, fails here: that is how the WebSocket client
//! once failed 162 of Autobahn's 301 cases when its caller received with a deadline.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{recv, WAIT};
use threadnet::testing::{FaultProxy, Faults};
use threadnet::ws::{accept_key, Message, WsBlockingClient, WsClient, WsCodec, WsRecvError};
use threadnet::{codec::Lines, pull::TryRecvError, BlockingClient, Codec};

/// How the client receives.
#[derive(Clone, Copy, Debug)]
enum Method {
    Recv,
    RecvTimeout,
    TryRecv,
    Iter,
    Request,
}

const METHODS: [Method; 5] = [
    Method::Recv,
    Method::RecvTimeout,
    Method::TryRecv,
    Method::Iter,
    Method::Request,
];

/// How the client ends the connection.
#[derive(Clone, Copy, Debug)]
enum End {
    Shutdown,
    Drop,
}

/// What the peer saw: the messages it received, and whether the connection ended cleanly
/// (for WebSocket, a close frame it answered, then EOF; otherwise EOF).
type Seen = (Vec<String>, bool);

/// How a peer answers a message: what it records of it (nothing for a close frame), and its
/// reply.
type Answer<P> = fn(<P as Codec>::In) -> (Option<String>, <P as Codec>::Out);

/// The peer's end of one connection, in its own thread: its first message is written at
/// once, as `early` (bytes already framed, after the handshake if there is one), in one write;
/// `greeted` says when. Then every message is answered with `answer`'s reply until the
/// stream ends.
fn peer<P: Codec>(
    mut r: impl BufRead,
    mut w: impl Write,
    mut codec: P,
    early: Vec<u8>,
    greeted: Sender<()>,
    answer: Answer<P>,
) -> Seen {
    w.write_all(&early).unwrap();
    let _ = greeted.send(());
    let mut got = Vec::new();
    loop {
        match codec.read(&mut r) {
            Ok(Some(msg)) => {
                let (record, reply) = answer(msg);
                got.extend(record);
                if codec.write(&reply, &mut w).is_err() {
                    return (got, false);
                }
            }
            Ok(None) => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

/// A line is echoed.
fn echo_line(line: String) -> (Option<String>, String) {
    (Some(line.clone()), line)
}

/// A text message is echoed; a close frame is answered with one and recorded as nothing.
fn echo_ws(msg: Result<Message, threadnet::ws::WsError>) -> (Option<String>, Message) {
    match msg {
        Ok(Message::Text(t)) => (Some(t.clone()), Message::Text(t)),
        Ok(Message::Close(frame)) => (None, Message::Close(frame)),
        other => panic!("the client sent {other:?}"),
    }
}

fn line_early() -> Vec<u8> {
    b"early\n".to_vec()
}

/// A blocking client, of lines or of WebSocket messages: its receives, each error as text.
trait Pull {
    type In;
    type Out;
    /// The ways it receives.
    const METHODS: &'static [Method];
    fn recv(&self) -> Result<Self::In, String>;
    fn recv_timeout(&self, timeout: Duration) -> Result<Self::In, String>;
    /// `Ok(None)`: no whole message there now.
    fn try_recv(&self) -> Result<Option<Self::In>, String>;
    fn iter_next(&self) -> Option<Self::In>;
    fn request(&self, msg: Self::Out, timeout: Duration) -> Result<Self::In, String>;
    fn send(&self, msg: Self::Out) -> Result<(), String>;
    fn shutdown(&self, timeout: Duration);
}

impl Pull for BlockingClient<Lines> {
    type In = String;
    type Out = String;
    const METHODS: &'static [Method] = &METHODS;
    fn recv(&self) -> Result<String, String> {
        BlockingClient::recv(self).map_err(|e| format!("recv: {e:?}"))
    }
    fn recv_timeout(&self, timeout: Duration) -> Result<String, String> {
        BlockingClient::recv_timeout(self, timeout).map_err(|e| format!("recv_timeout: {e:?}"))
    }
    fn try_recv(&self) -> Result<Option<String>, String> {
        match BlockingClient::try_recv(self) {
            Ok(m) => Ok(Some(m)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(e) => Err(format!("try_recv: {e:?}")),
        }
    }
    fn iter_next(&self) -> Option<String> {
        self.iter().next()
    }
    fn request(&self, msg: String, timeout: Duration) -> Result<String, String> {
        BlockingClient::request(self, msg, timeout).map_err(|e| format!("request: {e:?}"))
    }
    fn send(&self, msg: String) -> Result<(), String> {
        BlockingClient::send(self, msg).map_err(|e| format!("send: {e:?}"))
    }
    fn shutdown(&self, timeout: Duration) {
        BlockingClient::shutdown(self, timeout);
    }
}

impl Pull for WsBlockingClient {
    type In = Message;
    type Out = Message;
    const METHODS: &'static [Method] = &[
        Method::Recv,
        Method::RecvTimeout,
        Method::TryRecv,
        Method::Request,
    ];
    fn recv(&self) -> Result<Message, String> {
        WsBlockingClient::recv(self).map_err(|e| format!("recv: {e:?}"))
    }
    fn recv_timeout(&self, timeout: Duration) -> Result<Message, String> {
        WsBlockingClient::recv_timeout(self, timeout).map_err(|e| format!("recv_timeout: {e:?}"))
    }
    fn try_recv(&self) -> Result<Option<Message>, String> {
        match WsBlockingClient::try_recv(self) {
            Ok(m) => Ok(Some(m)),
            Err(WsRecvError::Timeout) => Ok(None),
            Err(e) => Err(format!("try_recv: {e:?}")),
        }
    }
    fn iter_next(&self) -> Option<Message> {
        unreachable!("a WebSocket client has no iterator")
    }
    fn request(&self, msg: Message, timeout: Duration) -> Result<Message, String> {
        WsBlockingClient::request(self, msg, timeout).map_err(|e| format!("request: {e:?}"))
    }
    fn send(&self, msg: Message) -> Result<(), String> {
        WsBlockingClient::send(self, msg).map_err(|e| format!("send: {e:?}"))
    }
    fn shutdown(&self, timeout: Duration) {
        WsBlockingClient::shutdown(self, timeout);
    }
}

/// A client, and its peer's thread: it says when its first message is written, and at the end
/// what it saw.
struct Dialled<P: Pull> {
    client: P,
    greeted: Receiver<()>,
    peer: JoinHandle<Seen>,
}

fn tcp() -> Dialled<BlockingClient<Lines>> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, greeted) = mpsc::channel();
    let peer = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        peer(r, s, Lines::new(), line_early(), tx, echo_line)
    });
    let client = BlockingClient::connect(addr, Lines::new()).unwrap();
    Dialled {
        client,
        greeted,
        peer,
    }
}

fn unix() -> Dialled<BlockingClient<Lines>> {
    let dir = std::env::temp_dir().join(format!("threadnet-receive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{:?}.sock", thread::current().id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, greeted) = mpsc::channel();
    let peer = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        peer(r, s, Lines::new(), line_early(), tx, echo_line)
    });
    let client = BlockingClient::connect_unix(&path, Lines::new()).unwrap();
    let _ = std::fs::remove_file(&path);
    Dialled {
        client,
        greeted,
        peer,
    }
}

/// Reads a WebSocket client's opening handshake from `r`; the `101` that answers it.
fn answer_handshake(r: &mut impl BufRead) -> Vec<u8> {
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(r.read_line(&mut head).unwrap() > 0, "no handshake");
    }
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("a key");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
    .into_bytes()
}

/// A WebSocket server that writes its `101` and a first text frame in one write: the client
/// reads both at once and keeps the frame for its codec.
fn ws() -> Dialled<WsBlockingClient> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (tx, greeted) = mpsc::channel();
    let peer = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut early = answer_handshake(&mut r);
        let server = WsCodec::new();
        server
            .write(&Message::Text("early".into()), &mut early)
            .unwrap();
        peer(r, s, server, early, tx, echo_ws)
    });
    let client = WsClient::builder().connect_blocking(&url).unwrap();
    Dialled {
        client,
        greeted,
        peer,
    }
}

/// TCP through a proxy that writes at most 3 bytes at a time, both ways: every message is
/// read in pieces, and a receive with a deadline or without waiting meets a part of a frame.
fn proxied() -> (Dialled<BlockingClient<Lines>>, FaultProxy) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = FaultProxy::builder()
        .upstream(listener.local_addr().unwrap())
        .client_to_server(Faults::new().split(3))
        .server_to_client(Faults::new().split(3))
        .seed(7)
        .start()
        .unwrap();
    let (tx, greeted) = mpsc::channel();
    let peer = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        peer(r, s, Lines::new(), line_early(), tx, echo_line)
    });
    let client = BlockingClient::connect(proxy.local_addr(), Lines::new()).unwrap();
    let dialled = Dialled {
        client,
        greeted,
        peer,
    };
    (dialled, proxy)
}

/// The next message, received as `method` receives (`Request` receives with `recv_timeout`:
/// it is tested on the request itself).
fn receive<P: Pull>(client: &P, method: Method) -> P::In {
    let got = match method {
        Method::Recv => client.recv(),
        Method::RecvTimeout | Method::Request => client.recv_timeout(WAIT),
        Method::Iter => client.iter_next().ok_or_else(|| "iter: ended".to_string()),
        Method::TryRecv => {
            // Polled, as a caller with a loop of its own does; bounded.
            let until = Instant::now() + WAIT;
            loop {
                match client.try_recv() {
                    Ok(Some(m)) => break Ok(m),
                    Ok(None) if Instant::now() < until => {
                        thread::sleep(Duration::from_millis(1));
                    }
                    Ok(None) => break Err("try_recv: nothing within WAIT".to_string()),
                    Err(e) => break Err(e),
                }
            }
        }
    };
    got.unwrap_or_else(|e| panic!("{e}"))
}

/// One client's whole life, received as `method` and ended as `end`: the peer's first
/// message, one round trip, a graceful end, and what the peer saw.
fn run<P: Pull>(
    d: Dialled<P>,
    method: Method,
    end: End,
    out: fn(&str) -> P::Out,
    text: fn(P::In) -> String,
) {
    let what = format!("{method:?}, ended by {end:?}");
    let Dialled {
        client,
        greeted,
        peer,
    } = d;
    recv(&greeted);
    // The first message came with the connection (after the 101, in the same segment).
    assert_eq!(text(receive(&client, method)), "early", "{what}");
    let reply = match method {
        Method::Request => client
            .request(out("ping"), WAIT)
            .unwrap_or_else(|e| panic!("{e}")),
        _ => {
            client.send(out("ping")).unwrap_or_else(|e| panic!("{e}"));
            receive(&client, method)
        }
    };
    assert_eq!(text(reply), "ping", "{what}");
    match end {
        End::Shutdown => {
            client.shutdown(WAIT);
            assert!(client.recv().is_err(), "{what}: a receive after the end");
            drop(client);
        }
        End::Drop => drop(client),
    }
    let (got, clean) = peer.join().unwrap();
    assert_eq!(got, ["ping"], "{what}");
    assert!(clean, "{what}: the peer saw no graceful end");
}

fn line(s: &str) -> String {
    s.to_string()
}

fn ws_text(s: &str) -> Message {
    Message::Text(s.to_string())
}

fn ws_got(m: Message) -> String {
    match m {
        Message::Text(t) => t,
        other => panic!("expected a text message, got {other:?}"),
    }
}

fn every_way<P: Pull>(
    dial: impl Fn() -> Dialled<P>,
    out: fn(&str) -> P::Out,
    text: fn(P::In) -> String,
) {
    for &method in P::METHODS {
        for end in [End::Shutdown, End::Drop] {
            run(dial(), method, end, out, text);
        }
    }
}

#[test]
fn tcp_every_way() {
    every_way(tcp, line, |s| s);
}

#[test]
fn unix_every_way() {
    every_way(unix, line, |s| s);
}

#[test]
fn websocket_client_with_a_frame_after_its_101_every_way() {
    every_way(ws, ws_text, ws_got);
}

#[test]
fn tcp_through_a_3_byte_proxy_every_way() {
    for method in METHODS {
        for end in [End::Shutdown, End::Drop] {
            let (d, proxy) = proxied();
            run(d, method, end, line, |s| s);
            proxy.stop();
        }
    }
}

/// The first message of a WebSocket client is in memory as soon as `connect_blocking` returns:
/// `try_recv` has it at once, not `Empty` (it once said `Empty` while the frame waited).
#[test]
fn websocket_try_recv_has_the_frame_after_the_101_at_once() {
    let d = ws();
    recv(&d.greeted);
    assert_eq!(ws_got(d.client.try_recv().expect("at once")), "early");
    drop(d.client);
    let (_, clean) = d.peer.join().unwrap();
    assert!(clean);
}

/// A message `recv` accepts, a receive with a deadline accepts too: the limit is the codec's
/// own, for both. Here a WebSocket message of 256 KiB in 1 KiB fragments, to a client whose
/// frames may hold 4 KiB and whose messages 1 MiB (the deadline receive once refused anything
/// past the frame limit plus one read buffer).
#[test]
fn a_deadline_receive_takes_what_recv_takes() {
    use threadnet::{ConnOptions, TcpClient};
    let message: String = (0..256 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let fragments = || {
        let mut out = Vec::new();
        let bytes = message.as_bytes();
        let chunks: Vec<&[u8]> = bytes.chunks(1024).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let opcode = if i == 0 { 0x1 } else { 0x0 };
            let fin = if i + 1 == chunks.len() { 0x80 } else { 0 };
            out.push(fin | opcode);
            out.push(126);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    };
    for method in [Method::Recv, Method::RecvTimeout] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let body = fragments();
        let t = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            s.write_all(&answer_handshake(&mut r)).unwrap();
            s.write_all(&body).unwrap();
            // Until the client goes.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let options = ConnOptions::new()
            .max_frame_length(4096)
            .read_buffer_size(4096);
        let client = WsClient::builder()
            .client(TcpClient::builder().options(options))
            .max_message(1024 * 1024)
            .connect_blocking(&url)
            .unwrap();
        let got = match method {
            Method::Recv => client.recv(),
            _ => client.recv_timeout(WAIT),
        };
        match got {
            Ok(Message::Text(t)) => assert!(t == message, "{method:?}: another message"),
            Ok(other) => panic!("{method:?}: {other:?}"),
            Err(e) => panic!("{method:?}: {e}"),
        }
        client.close();
        t.join().unwrap();
    }
}
