//! The WebSocket client (`ws::WsClient`) on real sockets: against threadnet's own server
//! (`ws::serve`), against an independent server (the Python `websockets` package, which
//! `.ci/run` installs into `target/ws-venv`; `THREADNET_WS_PYTHON` names another interpreter),
//! and against bad servers written here as raw listeners. Retry and reconnect redo the
//! handshake.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_closed_with, ms, recv, WAIT};
use threadnet::http::{Request, Response};
use threadnet::ws::{
    self, accept_key, apply_mask, Message, WsClient, WsCodec, WsError, WsRecvError, WsUpgrade,
};
use threadnet::{
    idle::IdleKind, Backoff, ClientHandle, CloseReason, ConnOptions, Connection, Handler,
    ServerBuilder, ServerHandle, TcpClient, TcpServer, UnixServer,
};

type Got = Result<Message, WsError>;

/// A client handler that forwards every message, and the close reason, to the test.
struct Forward {
    opened: Sender<Connection<WsCodec>>,
    msgs: Sender<Got>,
    closed: Sender<CloseReason>,
}

impl Handler<WsCodec> for Forward {
    fn on_connect(&mut self, conn: &Connection<WsCodec>) {
        let _ = self.opened.send(conn.clone());
    }

    fn on_message(&mut self, _: &Connection<WsCodec>, msg: Got) {
        let _ = self.msgs.send(msg);
    }

    fn on_close(&mut self, _: &Connection<WsCodec>, reason: &CloseReason) {
        let _ = self.closed.send(reason.clone());
    }
}

struct Probe {
    opened: Receiver<Connection<WsCodec>>,
    msgs: Receiver<Got>,
    closed: Receiver<CloseReason>,
}

/// A [`WsClient`] with the default options on `url`, its handlers forwarding to the probe.
fn dial(url: &str) -> (ClientHandle<WsCodec>, Probe) {
    let (factory, probe) = forward();
    (WsClient::builder().connect(url, factory).unwrap(), probe)
}

/// A factory of [`Forward`] handlers, and where they forward to.
fn forward() -> (
    impl Fn(&Connection<WsCodec>) -> Forward + Send + Sync + 'static,
    Probe,
) {
    let (msgs, msgs_rx) = mpsc::channel();
    let (closed, closed_rx) = mpsc::channel();
    let (opened, opened_rx) = mpsc::channel();
    let factory = move |_: &Connection<WsCodec>| Forward {
        opened: opened.clone(),
        msgs: msgs.clone(),
        closed: closed.clone(),
    };
    (
        factory,
        Probe {
            opened: opened_rx,
            msgs: msgs_rx,
            closed: closed_rx,
        },
    )
}

fn text(t: &str) -> Got {
    Ok(Message::Text(t.into()))
}

/// A close frame with `code` and `reason`.
fn close_msg(code: u16, reason: &str) -> Message {
    Message::Close(Some(ws::CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn close_frame(code: u16, reason: &str) -> Got {
    Ok(close_msg(code, reason))
}

/// What threadnet's own server saw: each handshake, and each message its sockets got.
enum Seen {
    Open(String),
    Msg(Message),
}

/// threadnet's own server: echo of text and binary; "ping-me" is answered with a ping,
/// "close-me" with a close frame (4000, "go away"), "drop" by dropping the TCP connection.
fn own_server(builder: ServerBuilder, seen: Sender<Seen>) -> ServerHandle<WsUpgrade> {
    builder
        .start(
            WsUpgrade::new().subprotocol(|_, offered| {
                offered
                    .iter()
                    .find(|p| **p == "chat")
                    .map(|p| p.to_string())
            }),
            ws::serve(
                |_: &Request| Response::new(404),
                move |_: &Connection<WsUpgrade>| OwnSocket(seen.clone()),
            ),
        )
        .unwrap()
}

struct OwnSocket(Sender<Seen>);

impl ws::WsHandler for OwnSocket {
    fn on_open(&mut self, _: &Connection<WsUpgrade>, request: &Request) {
        let proto = request.header("sec-websocket-protocol").unwrap_or("");
        let _ = self
            .0
            .send(Seen::Open(format!("{} [{proto}]", request.path())));
    }

    fn on_message(&mut self, conn: &Connection<WsUpgrade>, msg: Message) {
        let _ = self.0.send(Seen::Msg(msg.clone()));
        match msg {
            Message::Text(t) if t == "ping-me" => {
                let _ = conn.send(Message::Ping(b"hb".to_vec()).into());
            }
            Message::Text(t) if t == "close-me" => ws::close(conn, 4000, "go away"),
            Message::Text(t) if t == "drop" => conn.close(),
            m @ (Message::Text(_) | Message::Binary(_)) => {
                let _ = conn.send(m.into());
            }
            _ => {}
        }
    }
}

fn tcp_server(seen: Sender<Seen>) -> ServerHandle<WsUpgrade> {
    own_server(TcpServer::builder().addr("127.0.0.1:0"), seen)
}

/// The next message the server's sockets got (handshakes skipped).
#[track_caller]
fn next_msg(seen: &Receiver<Seen>) -> Message {
    loop {
        if let Seen::Msg(m) = recv(seen) {
            return m;
        }
    }
}

#[track_caller]
fn next_open(seen: &Receiver<Seen>) -> String {
    loop {
        if let Seen::Open(o) = recv(seen) {
            return o;
        }
    }
}

#[test]
fn own_server_echo_ping_and_client_close() {
    let (tx, seen) = mpsc::channel();
    let server = tcp_server(tx);
    let (factory, probe) = forward();
    let url = format!("ws://{}/room?x=1", server.local_addr());
    let client = WsClient::builder()
        .subprotocol("superchat")
        .subprotocol("chat")
        .origin(format!("http://{}", server.local_addr()))
        .connect(&url, factory)
        .unwrap();
    assert_eq!(next_open(&seen), "/room [superchat, chat]");
    let conn = client.connection().unwrap();

    conn.send(Message::Text("héllo".into())).unwrap();
    assert_eq!(recv(&probe.msgs), text("héllo"));
    // Over 64 KiB: a 64-bit length, masked by the client through its chunked buffer.
    let big: Vec<u8> = (0..300_001u32).map(|i| (i % 251) as u8).collect();
    conn.send(Message::Binary(big.clone())).unwrap();
    assert_eq!(next_msg(&seen), Message::Text("héllo".into()));
    assert_eq!(next_msg(&seen), Message::Binary(big.clone()));
    assert_eq!(recv(&probe.msgs), Ok(Message::Binary(big)));

    // The server's ping is answered by the client on its own.
    conn.send(Message::Text("ping-me".into())).unwrap();
    assert_eq!(next_msg(&seen), Message::Text("ping-me".into()));
    assert_eq!(recv(&probe.msgs), Ok(Message::Ping(b"hb".to_vec())));
    assert_eq!(next_msg(&seen), Message::Pong(b"hb".to_vec()));
    // And the client's ping by the server.
    conn.send(Message::Ping(b"c".to_vec())).unwrap();
    assert_eq!(recv(&probe.msgs), Ok(Message::Pong(b"c".to_vec())));
    assert_eq!(next_msg(&seen), Message::Ping(b"c".to_vec()));

    // The client closes: the server gets the code, echoes it, both ends close gracefully.
    let started = Instant::now();
    ws::close(&conn, 1000, "done");
    assert_eq!(next_msg(&seen), close_msg(1000, "done"));
    assert_eq!(recv(&probe.msgs), close_frame(1000, "done"));
    assert_closed_with(&recv(&probe.closed), 1000, true);
    client.wait();
    assert!(
        started.elapsed() < ws::CLOSE_TIMEOUT,
        "the close handshake ran into its timeout"
    );
    server.stop(WAIT);
}

#[test]
fn own_server_closes_with_a_code() {
    let (tx, seen) = mpsc::channel();
    let server = tcp_server(tx);
    let (client, probe) = dial(&format!("ws://{}/", server.local_addr()));
    assert_eq!(next_open(&seen), "/ []");
    let conn = client.connection().unwrap();
    conn.send(Message::Text("close-me".into())).unwrap();
    assert_eq!(recv(&probe.msgs), close_frame(4000, "go away"));
    // The client's echo of the close frame reaches the server.
    next_msg(&seen);
    assert_eq!(next_msg(&seen), close_msg(4000, "go away"));
    assert_closed_with(&recv(&probe.closed), 4000, true);
    client.wait();
    server.stop(WAIT);
}

#[test]
fn client_stop_sends_going_away() {
    let (tx, seen) = mpsc::channel();
    let server = tcp_server(tx);
    let (client, probe) = dial(&format!("ws://{}/", server.local_addr()));
    next_open(&seen);
    // At once: the close frame is armed before `connect` returns.
    client.stop(WAIT);
    assert_eq!(next_msg(&seen), close_msg(1001, "going away"));
    let reason = recv(&probe.closed);
    assert!(
        matches!(reason, CloseReason::ServerStopped { dropped: 0 }),
        "{reason}"
    );
    server.stop(WAIT);
}

#[test]
fn blocking_client_answers_pings_and_closes_with_a_frame() {
    let (tx, seen) = mpsc::channel();
    let server = tcp_server(tx);
    let url = format!("ws://{}/b", server.local_addr());

    // A ping read by `recv` is answered with a pong on the caller's thread.
    let client = WsClient::builder().connect_blocking(&url).unwrap();
    assert_eq!(next_open(&seen), "/b []");
    client.send(Message::Text("ping-me".into())).unwrap();
    assert_eq!(next_msg(&seen), Message::Text("ping-me".into()));
    assert_eq!(client.recv().unwrap(), Message::Ping(b"hb".to_vec()));
    assert_eq!(next_msg(&seen), Message::Pong(b"hb".to_vec()));
    // Dropping the client sends a close frame (1001, going away) before its FIN.
    drop(client);
    assert_eq!(next_msg(&seen), close_msg(1001, "going away"));

    // The server's close frame is given to `recv`, answered, and the end carries its code.
    let client = WsClient::builder().connect_blocking(&url).unwrap();
    assert_eq!(next_open(&seen), "/b []");
    client.send(Message::Text("close-me".into())).unwrap();
    assert_eq!(client.recv().unwrap(), close_msg(4000, "go away"));
    next_msg(&seen); // "close-me"
    assert_eq!(next_msg(&seen), close_msg(4000, "go away"));
    match client.recv() {
        Err(WsRecvError::Closed(reason)) => assert_closed_with(&reason, 4000, true),
        other => panic!("after the close frame: {other:?}"),
    }
    server.stop(WAIT);
}

#[test]
fn blocking_client_on_a_ws_url_and_a_unix_socket() {
    let (tx, _seen) = mpsc::channel();
    let server = tcp_server(tx.clone());
    let client = WsClient::builder()
        .connect_blocking(&format!("ws://{}/b", server.local_addr()))
        .unwrap();
    let reply = client.request(Message::Text("one".into()), WAIT).unwrap();
    assert_eq!(reply, Message::Text("one".into()));
    client.send(Message::Binary(vec![7; 10])).unwrap();
    assert_eq!(client.recv().unwrap(), Message::Binary(vec![7; 10]));
    drop(client);
    server.stop(WAIT);

    let path = std::env::temp_dir().join(format!("threadnet-wsc-{}.sock", std::process::id()));
    let unix = own_server(UnixServer::builder(&path), tx);
    let url = format!("ws+unix://{}:/u", path.display());
    let client = WsClient::builder().connect_blocking(&url).unwrap();
    let reply = client.request(Message::Text("over unix".into()), WAIT);
    assert_eq!(reply.unwrap(), Message::Text("over unix".into()));
    drop(client);
    unix.stop(WAIT);
}

/// One `Result` per message: a receive gives a `Message`, or one error that says what
/// happened instead: no message in time (the connection stays open), the server broke the
/// protocol (its `WsError`, answered with a close frame of that code), or the connection ended
/// (with its reason, which every later receive repeats).
#[test]
fn blocking_client_gives_one_result_per_message() {
    let (close_tx, close_rx) = mpsc::channel();
    let (url, _, t) = bad_server(move |key, s| {
        let mut out = ok_head(key).into_bytes();
        out.extend_from_slice(&[0x81, 0x02]);
        out.extend_from_slice(b"hi");
        s.write_all(&out).unwrap();
        // The client's "go" (masked, 2 bytes), then a masked frame: a protocol error.
        let mut go = [0u8; 8];
        s.read_exact(&mut go).unwrap();
        let mut payload = *b"masked";
        apply_mask(&mut payload, [1, 2, 3, 4]);
        s.write_all(&[0x81, 0x86, 1, 2, 3, 4]).unwrap();
        s.write_all(&payload).unwrap();
        // The client's answer: a masked close frame with 1002; then our FIN.
        let mut h = [0u8; 6];
        s.read_exact(&mut h).unwrap();
        let mut p = vec![0u8; usize::from(h[1] & 0x7F)];
        s.read_exact(&mut p).unwrap();
        apply_mask(&mut p, [h[2], h[3], h[4], h[5]]);
        let _ = close_tx.send((h[0], u16::from_be_bytes([p[0], p[1]])));
    });
    let client = WsClient::builder().connect_blocking(&url).unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text("hi".into()));
    // Nothing until the client speaks: a deadline passes, and the connection stays open.
    match client.recv_timeout(ms(50)) {
        Err(WsRecvError::Timeout) => {}
        other => panic!("recv_timeout: {other:?}"),
    }
    match client.try_recv() {
        Err(WsRecvError::Timeout) => {}
        other => panic!("try_recv: {other:?}"),
    }
    client.send(Message::Text("go".into())).unwrap();
    match client.recv() {
        Err(WsRecvError::Protocol(e)) => assert_eq!(e.code, 1002, "{e}"),
        other => panic!("a masked frame from the server: {other:?}"),
    }
    assert_eq!(recv(&close_rx), (0x88, 1002), "the client's close frame");
    match client.recv() {
        Err(WsRecvError::Closed(reason)) => assert_closed_with(&reason, 1002, false),
        other => panic!("after the close: {other:?}"),
    }
    match client.recv_timeout(WAIT) {
        Err(WsRecvError::Closed(reason)) => assert_closed_with(&reason, 1002, false),
        other => panic!("a receive after the end: {other:?}"),
    }
    match client.request(Message::Text("late".into()), WAIT) {
        Err(WsRecvError::Send(e)) => {
            assert!(e.is_closed(), "{e}");
            assert_eq!(e.into_inner(), Message::Text("late".into()));
        }
        other => panic!("a request after the end: {other:?}"),
    }
    t.join().unwrap();
}

/// The Python server: its process, its stdin (closing it ends the server), and its lines.
struct PyServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl PyServer {
    fn start() -> (PyServer, u16) {
        let mut child = Command::new(common::ws_python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the Python server");
        let (tx, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take();
        let server = PyServer {
            child,
            stdin,
            lines,
        };
        let first = server.line();
        let port = first
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the Python server said {first:?}"));
        (server, port)
    }

    #[track_caller]
    fn line(&self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(e) => panic!("no line from the Python server: {e}"),
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let until = Instant::now() + WAIT;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(ms(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn python_websockets_server() {
    let (py, port) = PyServer::start();
    let (factory, probe) = forward();
    let client = WsClient::builder()
        .subprotocol("chat")
        .connect(&format!("ws://127.0.0.1:{port}/py"), factory)
        .unwrap();
    assert_eq!(py.line(), "open /py chat");
    let conn = client.connection().unwrap();

    conn.send(Message::Text("hi".into())).unwrap();
    assert_eq!(recv(&probe.msgs), text("hi"));
    let big = vec![0x5Au8; 200_000];
    conn.send(Message::Binary(big.clone())).unwrap();
    assert_eq!(recv(&probe.msgs), Ok(Message::Binary(big)));
    // A fragmented message from the server, joined by the client's codec.
    conn.send(Message::Text("fragments".into())).unwrap();
    let want = format!("fragmented {}", "\u{2603}".repeat(40000));
    assert_eq!(recv(&probe.msgs), text(&want));
    // Python's ping, answered by the client on its own.
    conn.send(Message::Text("ping".into())).unwrap();
    assert_eq!(recv(&probe.msgs), Ok(Message::Ping(b"py".to_vec())));
    assert_eq!(recv(&probe.msgs), text("pinged"));
    assert_eq!(py.line(), "pong True");
    // The server closes with a code: the client sees it and echoes it.
    conn.send(Message::Text("close".into())).unwrap();
    assert_eq!(recv(&probe.msgs), close_frame(4001, "bye from python"));
    assert_eq!(py.line(), "closed 4001 bye from python");
    assert_closed_with(&recv(&probe.closed), 4001, true);
    client.wait();

    // The client closes with a code: Python sees it.
    let (client, probe) = dial(&format!("ws://127.0.0.1:{port}/again"));
    assert_eq!(py.line(), "open /again None");
    ws::close(&client.connection().unwrap(), 4321, "bye from rust");
    assert_eq!(recv(&probe.msgs), close_frame(4321, "bye from rust"));
    assert_eq!(py.line(), "closed 4321 bye from rust");
    client.wait();
}

/// A raw server that reads one handshake request and answers with `answer(key)`; the
/// request's head goes to the returned channel.
fn bad_server(
    answer: impl FnOnce(&str, &mut TcpStream) + Send + 'static,
) -> (String, Receiver<String>, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            if r.read_line(&mut head).unwrap() == 0 {
                return;
            }
        }
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap_or("")
            .to_string();
        let _ = tx.send(head);
        answer(&key, &mut s);
    });
    (url, rx, t)
}

fn ok_head(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
}

/// Connects to `url` expecting a failed handshake; the error.
fn refused(url: &str, timeout: Duration) -> std::io::Error {
    let (factory, _probe) = forward();
    WsClient::builder()
        .client(TcpClient::builder().connect_timeout(timeout))
        .connect(url, factory)
        .err()
        .expect("the handshake should fail")
}

#[test]
fn the_request_is_a_valid_handshake_with_a_fresh_key() {
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (url, head, t) = bad_server(|_, s| drop(s.write_all(b"HTTP/1.1 404 No\r\n\r\n")));
        let _ = refused(&url, WAIT);
        let head = recv(&head);
        assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
        for line in [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
        ] {
            assert!(head.contains(line), "{line} missing: {head}");
        }
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .to_string();
        assert!(ws::is_valid_key(&key), "{key}");
        keys.push(key);
        t.join().unwrap();
    }
    assert_ne!(keys[0], keys[1]);
}

#[test]
fn wrong_accept_key_is_a_clear_error() {
    let (url, _, t) = bad_server(|_, s| {
        let _ = s.write_all(ok_head("dGhlIHNhbXBsZSBub25jZQ==").as_bytes());
    });
    let e = refused(&url, WAIT);
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("Sec-WebSocket-Accept"), "{e}");
    t.join().unwrap();
}

#[test]
fn a_200_instead_of_101_is_a_clear_error() {
    let (url, _, t) = bad_server(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    });
    let e = refused(&url, WAIT);
    assert!(e.to_string().contains("200 OK"), "{e}");
    assert!(e.to_string().contains("not 101"), "{e}");
    t.join().unwrap();
}

#[test]
fn an_unoffered_subprotocol_is_refused() {
    let (url, _, t) = bad_server(|key, s| {
        let head = ok_head(key).replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: evil\r\n\r\n");
        let _ = s.write_all(head.as_bytes());
    });
    let e = refused(&url, WAIT);
    assert!(e.to_string().contains("\"evil\""), "{e}");
    t.join().unwrap();
}

#[test]
fn server_closing_mid_handshake_is_an_error() {
    let (url, _, t) = bad_server(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgr");
    });
    let e = refused(&url, WAIT);
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    t.join().unwrap();
}

#[test]
fn a_server_that_never_answers_times_out() {
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    let (url, _, t) = bad_server(move |_, _| {
        let _ = hold_rx.recv(); // keeps the socket open, silent
    });
    let started = Instant::now();
    let e = refused(&url, ms(300));
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert!(started.elapsed() < WAIT);
    drop(hold_tx);
    t.join().unwrap();
}

#[test]
fn a_frame_right_after_the_101_is_kept() {
    let (url, _, t) = bad_server(|key, s| {
        // The 101 and a first frame in one write: the client reads both at once.
        let mut out = ok_head(key).into_bytes();
        out.extend_from_slice(&[0x81, 0x05]);
        out.extend_from_slice(b"early");
        let _ = s.write_all(&out);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let (client, probe) = dial(&url);
    assert_eq!(recv(&probe.msgs), text("early"));
    client.stop(WAIT);
    t.join().unwrap();
}

#[test]
fn a_masked_server_frame_is_closed_with_1002() {
    let (close_tx, close_rx) = mpsc::channel();
    let (url, _, t) = bad_server(move |key, s| {
        let mut out = ok_head(key).into_bytes();
        let mut payload = *b"masked";
        apply_mask(&mut payload, [1, 2, 3, 4]);
        out.extend_from_slice(&[0x81, 0x86, 1, 2, 3, 4]);
        out.extend_from_slice(&payload);
        let _ = s.write_all(&out);
        // The client's answer: a masked close frame with 1002.
        let mut h = [0u8; 6];
        s.read_exact(&mut h).unwrap();
        assert_eq!(h[0], 0x88, "a close frame");
        let mut p = vec![0u8; usize::from(h[1] & 0x7F)];
        s.read_exact(&mut p).unwrap();
        apply_mask(&mut p, [h[2], h[3], h[4], h[5]]);
        let _ = close_tx.send(u16::from_be_bytes([p[0], p[1]]));
    });
    let (client, probe) = dial(&url);
    let err = recv(&probe.msgs).unwrap_err();
    assert_eq!(err.code, 1002);
    assert_eq!(recv(&close_rx), 1002);
    t.join().unwrap();
    assert_closed_with(&recv(&probe.closed), 1002, false);
    client.wait();
}

#[test]
fn after_the_servers_close_frame_the_client_waits_for_its_fin() {
    let (fin_tx, fin_rx) = mpsc::channel();
    let (url, _, t) = bad_server(move |key, s| {
        let mut out = ok_head(key).into_bytes();
        out.extend_from_slice(&[0x88, 0x02, 0x03, 0xE8]); // close, 1000
        s.write_all(&out).unwrap();
        // The client's answer: a masked close frame with 1000.
        let mut h = [0u8; 8];
        s.read_exact(&mut h).unwrap();
        assert_eq!(
            (h[0], h[1] & 0x7F),
            (0x88, 2),
            "a close frame with a status"
        );
        let mut code = [h[6], h[7]];
        apply_mask(&mut code, [h[2], h[3], h[4], h[5]]);
        assert_eq!(u16::from_be_bytes(code), 1000);
        // RFC 6455, 7.1.1: the server closes the TCP connection first; the client waits.
        s.set_read_timeout(Some(ms(300))).unwrap();
        let early = s.read(&mut [0u8; 16]);
        let waited = matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        let _ = fin_tx.send(waited);
        // Dropping `s` closes: now the client's reader sees the server's EOF.
    });
    let (client, probe) = dial(&url);
    assert!(
        recv(&fin_rx),
        "the client closed its end before the server did"
    );
    t.join().unwrap();
    assert_closed_with(&recv(&probe.closed), 1000, true);
    client.wait();
}

#[test]
fn retry_until_the_server_listens() {
    // A free port, with nothing listening on it yet.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/late");
    let (factory, probe) = forward();
    let dialer = thread::spawn(move || {
        WsClient::builder()
            .client(
                TcpClient::builder().retry(
                    Backoff::new()
                        .initial(ms(20))
                        .max_delay(ms(100))
                        .max_attempts(100),
                ),
            )
            .connect(&url, factory)
    });
    // Not a synchronisation: the first attempts are meant to find nothing listening.
    thread::sleep(ms(300));
    let (tx, seen) = mpsc::channel();
    let server = own_server(TcpServer::builder().addr(format!("127.0.0.1:{port}")), tx);
    let client = dialer.join().unwrap().expect("connected after retries");
    assert_eq!(next_open(&seen), "/late []");
    client
        .connection()
        .unwrap()
        .send(Message::Text("late".into()))
        .unwrap();
    assert_eq!(recv(&probe.msgs), text("late"));
    client.stop(WAIT);
    server.stop(WAIT);
}

#[test]
fn reconnect_redoes_the_handshake() {
    let (tx, seen) = mpsc::channel();
    let server = tcp_server(tx);
    let (factory, probe) = forward();
    let client = WsClient::builder()
        .client(TcpClient::builder().reconnect(Backoff::new().initial(ms(20)).max_attempts(50)))
        .connect(&format!("ws://{}/re", server.local_addr()), factory)
        .unwrap();
    assert_eq!(next_open(&seen), "/re []");
    let first = recv(&probe.opened);
    first.send(Message::Text("drop".into())).unwrap();
    // The server drops the TCP connection: the client's first connection ends...
    recv(&probe.closed);
    // ...and it dials again, with a new handshake.
    assert_eq!(next_open(&seen), "/re []");
    let second = recv(&probe.opened);
    assert_ne!(second.id(), first.id());
    second.send(Message::Text("again".into())).unwrap();
    assert_eq!(recv(&probe.msgs), text("again"));
    assert_eq!(client.metrics().connections_accepted, 2);
    client.stop(WAIT);
    server.stop(WAIT);
}

/// A client builder whose connections send `ws::heartbeat(interval)` pings and close a server
/// silent for `misses` intervals.
fn beating(interval: Duration, misses: u32) -> ws::WsClientBuilder {
    let beat = ws::heartbeat(interval).misses(misses);
    WsClient::builder().client(TcpClient::builder().options(ConnOptions::new().heartbeat(beat)))
}

/// Pings every 50 ms; a server that answers is never closed, however slow a loaded machine
/// makes its answer, within the test's patience (100 missed intervals, 5 s).
fn beating_patiently() -> ws::WsClientBuilder {
    beating(ms(50), 100)
}

/// The client's next message that is not a pong: the heartbeat goes on pinging until the
/// close, so pongs may come before the answer to it.
#[track_caller]
fn next_not_pong(msgs: &Receiver<Got>) -> Got {
    loop {
        match recv(msgs) {
            Ok(Message::Pong(p)) => assert!(p.is_empty(), "a heartbeat pong is empty"),
            other => return other,
        }
    }
}

#[test]
fn heartbeat_pings_from_a_client_are_answered_by_threadnets_server() {
    let (tx, seen) = mpsc::channel();
    let server = tcp_server(tx);
    let (factory, probe) = forward();
    let url = format!("ws://{}/beat", server.local_addr());
    let client = beating_patiently().connect(&url, factory).unwrap();
    assert_eq!(next_open(&seen), "/beat []");
    // The server takes each ping (a client's frame must be masked, or it is closed with
    // 1002) and answers it; the pong comes to the client's handler.
    for _ in 0..3 {
        assert_eq!(next_msg(&seen), Message::Ping(Vec::new()));
        assert_eq!(recv(&probe.msgs), Ok(Message::Pong(Vec::new())));
    }
    let conn = client.connection().unwrap();
    assert!(!conn.is_closed());
    ws::close(&conn, 1000, "done");
    assert_eq!(next_not_pong(&probe.msgs), close_frame(1000, "done"));
    assert_closed_with(&recv(&probe.closed), 1000, true);
    client.wait();
    server.stop(WAIT);
}

#[test]
fn heartbeat_pings_from_a_client_are_answered_by_python_websockets() {
    let (py, port) = PyServer::start();
    let (factory, probe) = forward();
    let client = beating_patiently()
        .connect(&format!("ws://127.0.0.1:{port}/beat"), factory)
        .unwrap();
    assert_eq!(py.line(), "open /beat None");
    for _ in 0..3 {
        assert_eq!(recv(&probe.msgs), Ok(Message::Pong(Vec::new())));
    }
    ws::close(&client.connection().unwrap(), 1000, "done");
    assert_eq!(next_not_pong(&probe.msgs), close_frame(1000, "done"));
    assert_eq!(py.line(), "closed 1000 done");
    client.wait();
}

#[test]
fn heartbeat_closes_a_server_that_never_answers() {
    let (keys_tx, keys) = mpsc::channel();
    let (url, _, t) = bad_server(move |key, s| {
        s.write_all(ok_head(key).as_bytes()).unwrap();
        // Two pings, each masked with its own key, then silence until the client leaves.
        for _ in 0..2 {
            let mut h = [0u8; 6];
            s.read_exact(&mut h).unwrap();
            assert_eq!(h[..2], [0x89, 0x80], "an empty masked ping, FIN set");
            let _ = keys_tx.send([h[2], h[3], h[4], h[5]]);
        }
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let (factory, probe) = forward();
    let started = Instant::now();
    // Ten silent intervals: a loaded machine may send each ping late, and the bad server
    // waits for two of them before it falls silent.
    let client = beating(ms(100), 10).connect(&url, factory).unwrap();
    let (first, second) = (recv(&keys), recv(&keys));
    assert_ne!(first, second, "a fresh key per ping");
    match recv(&probe.closed) {
        CloseReason::IdleTimeout {
            kind: IdleKind::Heartbeat,
            ..
        } => {}
        other => panic!("expected the heartbeat's idle timeout, got {other}"),
    }
    // Ten silent intervals: not before 1 s, and well before the test's patience.
    let took = started.elapsed();
    assert!(took >= ms(1000) && took < WAIT, "closed after {took:?}");
    client.wait();
    t.join().unwrap();
}

#[test]
fn the_chosen_subprotocol_is_readable_on_both_ends() {
    // threadnet's server picks "chat" of the two offered.
    let (tx, seen) = mpsc::channel();
    let server = tcp_server(tx);
    let (on_connect_tx, on_connect) = mpsc::channel();
    let url = format!("ws://{}/proto", server.local_addr());
    let client = WsClient::builder()
        .subprotocol("superchat")
        .subprotocol("chat")
        .connect(&url, move |conn: &Connection<WsCodec>| {
            // In the handler's factory already.
            let _ = on_connect_tx.send(ws::subprotocol(conn).map(str::to_string));
            |_: &Connection<WsCodec>, _: Got| {}
        })
        .unwrap();
    assert_eq!(next_open(&seen), "/proto [superchat, chat]");
    assert_eq!(recv(&on_connect).as_deref(), Some("chat"));
    let conn = client.connection().unwrap();
    assert_eq!(ws::subprotocol(&conn), Some("chat"));
    client.stop(WAIT);

    // The blocking client, and one that offers none.
    let blocking = WsClient::builder()
        .subprotocol("chat")
        .connect_blocking(&url)
        .unwrap();
    assert_eq!(ws::subprotocol(blocking.connection()), Some("chat"));
    drop(blocking);
    let none = WsClient::builder()
        .subprotocol("superchat")
        .connect_blocking(&url)
        .unwrap();
    assert_eq!(ws::subprotocol(none.connection()), None);
    drop(none);

    // The Python server picks "chat" too.
    let (py, port) = PyServer::start();
    let blocking = WsClient::builder()
        .subprotocol("mqtt")
        .subprotocol("chat")
        .connect_blocking(&format!("ws://127.0.0.1:{port}/p"))
        .unwrap();
    assert_eq!(py.line(), "open /p chat");
    assert_eq!(ws::subprotocol(blocking.connection()), Some("chat"));
    drop(blocking);
    server.stop(WAIT);
}

#[test]
fn the_server_side_reads_the_subprotocol_it_picked() {
    let (tx, rx) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(
            WsUpgrade::new().subprotocol(|_, offered| offered.last().map(|p| p.to_string())),
            ws::serve(
                |_: &Request| Response::new(404),
                move |_: &Connection<WsUpgrade>| {
                    let tx = tx.clone();
                    move |conn: &Connection<WsUpgrade>, _: Message| {
                        let _ = tx.send(ws::subprotocol(conn).map(str::to_string));
                    }
                },
            ),
        )
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let client = WsClient::builder()
        .subprotocol("one")
        .subprotocol("two")
        .connect_blocking(&url)
        .unwrap();
    client.send(Message::Text("which?".into())).unwrap();
    assert_eq!(recv(&rx).as_deref(), Some("two"));
    assert_eq!(ws::subprotocol(client.connection()), Some("two"));
    drop(client);
    server.stop(WAIT);
}
