//! `EmbeddedConnection`: handlers driven in memory on the test's thread, through the real
//! reader loop, write-through, send queue and close sequence, with a manual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use threadnet::http::{Http1, Incoming, Response};
use threadnet::testing::EmbeddedConnection;
use threadnet::{
    codec::{LengthDelimited, Lines, Reply, Resp, Tlv, TlvFrame},
    idle::IdleKind,
    CloseReason, Codec, ConnOptions, Connection, Handler,
};

/// The bytes `codec` writes for `msg`.
fn encode<C: Codec>(codec: &C, msg: &C::Out) -> Vec<u8> {
    let mut v = Vec::new();
    codec.write(msg, &mut v).unwrap();
    v
}

/// Echoes every message back.
fn echo<C: Codec<Out = <C as Codec>::In>>(codec: C, options: ConnOptions) -> EmbeddedConnection<C> {
    EmbeddedConnection::new(
        codec,
        |_: &Connection<C>| {
            |conn: &Connection<C>, msg: C::In| {
                conn.send(msg).map_err(|_| ()).unwrap();
            }
        },
        options,
    )
}

/// Feeds `wire` split at every byte, to a fresh connection from `open` each time: nothing
/// is answered before the last byte, and `check` sees the connection after it.
fn split_everywhere<C: Codec>(
    wire: &[u8],
    open: impl Fn() -> EmbeddedConnection<C>,
    check: impl Fn(&EmbeddedConnection<C>),
) {
    for at in 1..wire.len() {
        let e = open();
        e.write_inbound(&wire[..at]);
        assert!(e.read_outbound().is_empty(), "answered after {at} bytes");
        e.write_inbound(&wire[at..]);
        check(&e);
    }
    // And one byte at a time.
    let e = open();
    for b in wire {
        e.write_inbound(std::slice::from_ref(b));
    }
    check(&e);
}

#[test]
fn length_delimited_echo_whole_split_and_merged() {
    let codec = LengthDelimited::new();
    let wire = encode(&codec, &b"hello".to_vec());

    let e = echo(codec.clone(), ConnOptions::new());
    e.write_inbound(&wire);
    assert_eq!(e.read_outbound_messages().unwrap(), vec![b"hello".to_vec()]);
    assert!(!e.is_closed());

    split_everywhere(
        &wire,
        || echo(codec.clone(), ConnOptions::new()),
        |e| assert_eq!(e.read_outbound(), wire),
    );

    // Three frames in one write: three replies, in order (corked into fewer writes).
    let msgs: Vec<Vec<u8>> = vec![b"a".to_vec(), Vec::new(), vec![7u8; 3000]];
    let merged: Vec<u8> = msgs.iter().flat_map(|m| encode(&codec, m)).collect();
    let e = echo(codec.clone(), ConnOptions::new());
    e.write_inbound(&merged);
    assert_eq!(e.read_outbound_messages().unwrap(), msgs);
    assert_eq!(e.connection().stats().messages_received, 3);
}

#[test]
fn outbound_messages_keep_a_partial_frame_for_later() {
    let codec = LengthDelimited::new();
    let e = echo(codec.clone(), ConnOptions::new());
    e.write_inbound(&encode(&codec, &b"one".to_vec()));
    // A send from the test thread, cut short: only the frame's first bytes are out yet.
    let two = encode(&codec, &b"two".to_vec());
    e.connection().send_bytes(two[..5].to_vec()).unwrap();
    assert_eq!(e.read_outbound_messages().unwrap(), vec![b"one".to_vec()]);
    e.connection().send_bytes(two[5..].to_vec()).unwrap();
    assert_eq!(e.read_outbound_messages().unwrap(), vec![b"two".to_vec()]);
}

/// Records every callback, in order.
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
}

impl Handler<Lines> for Recorder {
    fn on_connect(&mut self, _: &Connection<Lines>) {
        self.log.lock().unwrap().push("connect".into());
    }

    fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
        self.log.lock().unwrap().push(format!("message {line}"));
        match line.as_str() {
            "bye" => conn.shutdown(Duration::from_secs(5)),
            "boom" => panic!("boom"),
            // Queued (try_send never writes through): the writer thread writes it.
            _ => conn.try_send(format!("re {line}")).map_err(|_| ()).unwrap(),
        }
    }

    fn on_close(&mut self, _: &Connection<Lines>, reason: &CloseReason) {
        self.log.lock().unwrap().push(format!("close {reason:?}"));
    }
}

fn recorder(options: ConnOptions) -> (EmbeddedConnection<Lines>, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    let e = EmbeddedConnection::new(Lines::new(), move |_: &_| Recorder { log: log2 }, options);
    (e, log)
}

#[test]
fn peer_eof_flushes_queued_replies_then_closes_once() {
    let (e, log) = recorder(ConnOptions::new());
    assert_eq!(*log.lock().unwrap(), ["connect"]);
    e.write_inbound(b"a\nb\n");
    e.close_inbound();
    assert_eq!(e.read_outbound(), b"re a\nre b\n");
    assert!(e.is_outbound_closed());
    assert!(matches!(e.close_reason(), Some(CloseReason::PeerClosed)));
    assert_eq!(
        *log.lock().unwrap(),
        ["connect", "message a", "message b", "close PeerClosed"]
    );
    // Input after the close is ignored; on_close stays the last callback, once.
    e.write_inbound(b"c\n");
    drop(e);
    assert_eq!(log.lock().unwrap().len(), 4);
}

#[test]
fn shutdown_sends_fin_then_waits_for_the_peer() {
    let (e, log) = recorder(ConnOptions::new());
    e.write_inbound(b"x\nbye\n");
    assert_eq!(e.read_outbound(), b"re x\n");
    assert!(e.is_outbound_closed(), "FIN after the drain");
    assert!(!e.is_closed(), "open until the peer's EOF");
    e.close_inbound();
    assert!(matches!(e.close_reason(), Some(CloseReason::Shutdown)));
    assert_eq!(log.lock().unwrap().last().unwrap(), "close Shutdown");

    // The peer never closes: the deadline (5 s on the manual clock) forces it.
    let (e, _) = recorder(ConnOptions::new());
    e.write_inbound(b"bye\n");
    e.advance(Duration::from_secs(4));
    assert!(!e.is_closed());
    e.advance(Duration::from_secs(2));
    assert!(matches!(
        e.close_reason(),
        Some(CloseReason::ShutdownTimeout { dropped: 0 })
    ));
}

#[test]
fn idle_limit_fires_on_advance_and_not_before() {
    let (e, log) = recorder(ConnOptions::new().read_idle(Duration::from_secs(5)));
    e.advance(Duration::from_secs(3));
    e.write_inbound(b"ping\n"); // activity: the limit counts from here
    e.advance(Duration::from_secs(4));
    assert!(!e.is_closed(), "7 s in, 4 s after the last read");
    assert_eq!(e.read_outbound(), b"re ping\n");
    e.advance(Duration::from_secs(2));
    assert!(matches!(
        e.close_reason(),
        Some(CloseReason::IdleTimeout {
            kind: IdleKind::Read,
            ..
        })
    ));
    let log = log.lock().unwrap();
    assert_eq!(log.iter().filter(|l| l.starts_with("close")).count(), 1);
}

#[test]
fn connection_timers_run_on_the_manual_clock() {
    let e = EmbeddedConnection::new(
        Lines::new(),
        |conn: &Connection<Lines>| {
            conn.run_after(Duration::from_secs(1), |c: &Connection<Lines>| {
                let _ = c.send("tick".to_string());
            });
            |_: &Connection<Lines>, _: String| {}
        },
        ConnOptions::new(),
    );
    e.advance(Duration::from_millis(900));
    assert!(e.read_outbound().is_empty());
    e.advance(Duration::from_millis(200));
    assert_eq!(e.read_outbound_messages().unwrap(), ["tick"]);
}

#[test]
fn a_handler_panic_closes_with_its_message() {
    let (e, log) = recorder(ConnOptions::new());
    e.write_inbound(b"boom\nnever\n");
    match e.close_reason() {
        Some(CloseReason::Panic { message, .. }) => assert_eq!(message, "boom"),
        other => panic!("{other:?}"),
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3, "{log:?}"); // connect, boom, close: never "never"
}

#[test]
fn lines_and_tlv_round_trip_split_at_every_byte() {
    let wire = b"hello world\r\n";
    split_everywhere(
        wire,
        || echo(Lines::new(), ConnOptions::new()),
        |e| assert_eq!(e.read_outbound_messages().unwrap(), ["hello world"]),
    );

    let frame = TlvFrame::new(9, b"payload".to_vec());
    let wire = encode(&Tlv::new(), &frame);
    split_everywhere(
        &wire,
        || echo(Tlv::new(), ConnOptions::new()),
        |e| {
            assert_eq!(
                e.read_outbound_messages().unwrap(),
                std::slice::from_ref(&frame)
            )
        },
    );
}

#[test]
fn resp_round_trips_split_at_every_byte() {
    let open = || {
        EmbeddedConnection::new(
            Resp::new(),
            |_: &_| {
                |conn: &Connection<Resp>, cmd: <Resp as Codec>::In| {
                    let args = cmd.unwrap();
                    assert_eq!(args[0], b"ECHO");
                    conn.send(Reply::Bulk(args[1].clone()))
                        .map_err(|_| ())
                        .unwrap();
                }
            },
            ConnOptions::new(),
        )
    };
    let wire = b"*2\r\n$4\r\nECHO\r\n$5\r\nhi\r\nx\r\n";
    split_everywhere(wire, open, |e| {
        assert_eq!(e.read_outbound(), b"$5\r\nhi\r\nx\r\n")
    });
}

#[test]
fn http1_round_trips_split_at_every_byte() {
    let open = || {
        EmbeddedConnection::new(
            Http1::new(),
            |_: &_| {
                |conn: &Connection<Http1>, incoming: Incoming| {
                    let Incoming::Request(req) = incoming else {
                        panic!("not a request");
                    };
                    let body = format!("{} {} {}", req.method(), req.path(), req.body().len());
                    conn.send(Response::text(body)).map_err(|_| ()).unwrap();
                }
            },
            ConnOptions::new(),
        )
    };
    let wire = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    split_everywhere(wire, open, |e| {
        let out = String::from_utf8(e.read_outbound()).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("\r\n\r\nPOST /up 3"), "{out}");
    });
}

#[test]
fn options_apply_the_frame_limit() {
    let codec = LengthDelimited::new();
    let e = echo(codec.clone(), ConnOptions::new().max_frame_length(4));
    e.write_inbound(&encode(&codec, &b"1234".to_vec()));
    assert_eq!(e.read_outbound_messages().unwrap(), [b"1234".to_vec()]);
    // Refused on the header, before the payload arrives.
    e.write_inbound(&encode(&codec, &b"12345".to_vec())[..4]);
    match e.close_reason() {
        Some(CloseReason::Error { error, .. }) => {
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidData)
        }
        other => panic!("{other:?}"),
    }
}

/// The names of this process's threads that threadnet started (`threadnet-…`).
fn threadnet_threads() -> Vec<String> {
    let mut names = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(name) = std::fs::read_to_string(task.path().join("comm")) {
            if name.starts_with("threadnet") {
                names.push(name.trim().to_string());
            }
        }
    }
    names
}

/// Everything, callbacks, queue, timers, heartbeats, shutdown and close, happens on the
/// test's thread, and no thread is started. (Every test in this file is embedded only, so
/// no other test starts a threadnet thread either.)
#[test]
fn everything_runs_on_the_test_thread_and_no_thread_is_started() {
    let me = std::thread::current().id();
    let threads: Arc<Mutex<Vec<(&'static str, std::thread::ThreadId)>>> = Arc::default();
    let t = Arc::clone(&threads);
    let note =
        move |what: &'static str| t.lock().unwrap().push((what, std::thread::current().id()));
    struct H<N: Fn(&'static str) + Send + 'static>(N);
    impl<N: Fn(&'static str) + Send + 'static> Handler<Lines> for H<N> {
        fn on_connect(&mut self, conn: &Connection<Lines>) {
            (self.0)("connect");
            let note_timer = {
                let c = conn.clone();
                move |_: &Connection<Lines>| {
                    let _ = c.send("timer".to_string());
                }
            };
            conn.run_after(Duration::from_secs(1), note_timer);
        }
        fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
            (self.0)("message");
            if line == "bye" {
                return conn.shutdown(Duration::from_secs(5));
            }
            // Queued: a real connection starts its writer thread here.
            conn.try_send(format!("q {line}")).map_err(|_| ()).unwrap();
            conn.send(format!("s {line}")).map_err(|_| ()).unwrap();
        }
        fn on_close(&mut self, _: &Connection<Lines>, _: &CloseReason) {
            (self.0)("close");
        }
    }
    let options = ConnOptions::new().heartbeat(threadnet::idle::Heartbeat::new(
        Duration::from_secs(10),
        b"hb\n".to_vec(),
    ));
    let e = EmbeddedConnection::new(Lines::new(), move |_: &_| H(note), options);
    e.write_inbound(b"a\nb\n");
    assert_eq!(e.read_outbound(), b"q a\ns a\nq b\ns b\n");
    assert_eq!(threadnet_threads(), Vec::<String>::new(), "while open");
    e.advance(Duration::from_secs(1));
    assert_eq!(e.read_outbound(), b"timer\n");
    e.advance(Duration::from_secs(10));
    assert_eq!(e.read_outbound(), b"hb\n");
    e.write_inbound(b"bye\n");
    assert!(e.is_outbound_closed());
    assert_eq!(
        threadnet_threads(),
        Vec::<String>::new(),
        "while shutting down"
    );
    e.close_inbound();
    assert!(matches!(e.close_reason(), Some(CloseReason::Shutdown)));
    let threads = threads.lock().unwrap();
    let names: Vec<_> = threads.iter().map(|(w, _)| *w).collect();
    assert_eq!(names, ["connect", "message", "message", "message", "close"]);
    assert!(threads.iter().all(|(_, id)| *id == me), "{threads:?}");
}

/// A connection whose handler records every message it gets (its `Debug` form).
fn recording<C: Codec>(codec: C) -> (EmbeddedConnection<C>, Arc<Mutex<Vec<String>>>)
where
    C::In: std::fmt::Debug,
{
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let g = Arc::clone(&got);
    let e = EmbeddedConnection::new(
        codec,
        move |_: &Connection<C>| {
            move |_: &Connection<C>, msg: C::In| g.lock().unwrap().push(format!("{msg:?}"))
        },
        ConnOptions::new(),
    );
    (e, got)
}

/// Feeds `wire` (several messages) whole, then split into two writes at every byte, then one
/// byte at a time: the handler gets exactly `expected` every time (after the first of two
/// writes, a prefix of it), and the peer's EOF after the last byte is a clean close (no
/// byte left over). Returns what the whole feed gave.
fn same_messages_however_split<C: Codec + Clone>(codec: C, wire: &[u8], count: usize) -> Vec<String>
where
    C::In: std::fmt::Debug,
{
    let (e, got) = recording(codec.clone());
    e.write_inbound(wire);
    let expected = got.lock().unwrap().clone();
    assert_eq!(expected.len(), count, "{expected:?}");
    e.close_inbound();
    assert!(
        matches!(e.close_reason(), Some(CloseReason::PeerClosed)),
        "{:?}",
        e.close_reason()
    );

    for at in 1..wire.len() {
        let (e, got) = recording(codec.clone());
        e.write_inbound(&wire[..at]);
        let first = got.lock().unwrap().clone();
        assert!(expected.starts_with(&first), "cut at {at}: {first:?}");
        assert!(
            first.len() < count,
            "cut at {at}: all delivered before the last byte"
        );
        e.write_inbound(&wire[at..]);
        assert_eq!(*got.lock().unwrap(), expected, "cut at {at}");
        e.close_inbound();
        assert!(
            matches!(e.close_reason(), Some(CloseReason::PeerClosed)),
            "cut at {at}"
        );
    }
    let (e, got) = recording(codec);
    for b in wire {
        e.write_inbound(std::slice::from_ref(b));
    }
    assert_eq!(*got.lock().unwrap(), expected, "one byte at a time");
    expected
}

#[test]
fn length_delimited_messages_survive_every_split() {
    let codec = LengthDelimited::new();
    let msgs = [b"one".to_vec(), Vec::new(), vec![7u8; 300]];
    let wire: Vec<u8> = msgs.iter().flat_map(|m| encode(&codec, m)).collect();
    let got = same_messages_however_split(codec, &wire, 3);
    let want: Vec<String> = msgs.iter().map(|m| format!("{m:?}")).collect();
    assert_eq!(got, want);
}

#[test]
fn lines_survive_every_split() {
    let got = same_messages_however_split(Lines::new(), b"hello\r\n\nworld\nlast one\n", 4);
    assert_eq!(got, [r#""hello""#, r#""""#, r#""world""#, r#""last one""#]);
}

#[test]
fn tlv_frames_survive_every_split() {
    let codec = Tlv::new();
    let frames = [
        TlvFrame::new(1, b"first".to_vec()),
        TlvFrame::heartbeat(),
        TlvFrame::new(70000, vec![3u8; 40]),
    ];
    let wire: Vec<u8> = frames.iter().flat_map(|f| encode(&codec, f)).collect();
    let got = same_messages_however_split(codec, &wire, 3);
    let want: Vec<String> = frames.iter().map(|f| format!("{f:?}")).collect();
    assert_eq!(got, want);
}

#[test]
fn resp_commands_survive_every_split() {
    let wire = b"*2\r\n$4\r\nECHO\r\n$5\r\nhi\r\nx\r\n*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
    let got = same_messages_however_split(Resp::new(), wire, 3);
    assert!(got[0].contains("[69, 67, 72, 79]"), "{got:?}"); // ECHO
    assert!(
        got[2].contains("[83, 69, 84]") && got[2].contains("[]"),
        "{got:?}"
    ); // SET k ""
}

#[test]
fn http1_requests_survive_every_split() {
    let wire = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let got = same_messages_however_split(Http1::new(), wire, 3);
    for (msg, path) in got.iter().zip(["/a", "/b", "/c"]) {
        assert!(msg.starts_with("Request") && msg.contains(path), "{msg}");
    }
}

/// A client frame (masked, as RFC 6455 requires of a client), `fin` and `opcode` given.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [9, 8, 7, 6];
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    assert!(payload.len() < 126);
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&key);
    let mut p = payload.to_vec();
    threadnet::ws::apply_mask(&mut p, key);
    out.extend(p);
    out
}

#[test]
fn websocket_fragmented_messages_survive_every_split() {
    use threadnet::ws::{Message, WsCodec};
    // "Hello" in three fragments with a ping between them, then a binary message.
    let wire: Vec<u8> = [
        client_frame(false, 0x1, b"He"),
        client_frame(false, 0x0, b"l"),
        client_frame(true, 0x9, b"ping"),
        client_frame(true, 0x0, b"lo"),
        client_frame(true, 0x2, &[0, 1, 2, 255]),
    ]
    .concat();
    let got = same_messages_however_split(WsCodec::new(), &wire, 3);
    let want: Vec<String> = [
        Message::Ping(b"ping".to_vec()),
        Message::Text("Hello".into()),
        Message::Binary(vec![0, 1, 2, 255]),
    ]
    .iter()
    .map(|m| format!("{:?}", Ok::<_, threadnet::ws::WsError>(m.clone())))
    .collect();
    assert_eq!(got, want);
}

/// `Raw` has no frames: a message is what one read gives, so only the bytes are the same
/// however the input is split, in order and none lost or repeated.
#[test]
fn raw_bytes_survive_every_split() {
    let wire: Vec<u8> = (0..=255u8).cycle().take(700).collect();
    let joined = |e: EmbeddedConnection<threadnet::codec::Raw>, got: &Arc<Mutex<Vec<Vec<u8>>>>| {
        e.close_inbound();
        assert!(matches!(e.close_reason(), Some(CloseReason::PeerClosed)));
        got.lock().unwrap().concat()
    };
    let open = || {
        let got: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let g = Arc::clone(&got);
        let e = EmbeddedConnection::new(
            threadnet::codec::Raw,
            move |_: &_| {
                move |_: &Connection<threadnet::codec::Raw>, m: Vec<u8>| g.lock().unwrap().push(m)
            },
            ConnOptions::new(),
        );
        (e, got)
    };
    for at in 0..wire.len() {
        let (e, got) = open();
        e.write_inbound(&wire[..at]);
        assert_eq!(got.lock().unwrap().concat(), &wire[..at], "cut at {at}");
        e.write_inbound(&wire[at..]);
        assert_eq!(joined(e, &got), wire, "cut at {at}");
    }
    let (e, got) = open();
    for b in &wire {
        e.write_inbound(std::slice::from_ref(b));
    }
    assert_eq!(
        got.lock().unwrap().len(),
        wire.len(),
        "one message per write"
    );
    assert_eq!(joined(e, &got), wire);
}

/// With no writer thread to wait for, a `send` that finds the queue full writes it out on
/// the spot (the in-memory peer reads everything), while `try_send` still hands back; order
/// is kept either way.
#[test]
fn a_send_into_a_full_queue_writes_it_out_and_keeps_the_order() {
    let e = EmbeddedConnection::new(
        Lines::new(),
        |_: &_| {
            |conn: &Connection<Lines>, _: String| {
                conn.try_send("1".to_string()).map_err(|_| ()).unwrap();
                conn.try_send("2".to_string()).map_err(|_| ()).unwrap();
                assert!(conn.try_send("x".to_string()).is_err(), "full");
                conn.send("3".to_string()).map_err(|_| ()).unwrap();
                assert_eq!(conn.queued_messages(), 1);
            }
        },
        ConnOptions::new().send_queue_capacity(2),
    );
    e.write_inbound(b"go\n");
    assert_eq!(e.read_outbound_messages().unwrap(), ["1", "2", "3"]);
    assert!(!e.is_closed(), "{:?}", e.close_reason());
}
