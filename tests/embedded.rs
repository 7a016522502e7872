//! `EmbeddedConnection`: handlers driven in memory on the test's thread, through the real
//! reader loop, write-through, send queue and close sequence, with a manual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use threadnet::http::{Http1, Incoming, Response};
use threadnet::testing::EmbeddedConnection;
use threadnet::{
    CloseReason, Codec, ConnOptions, Connection, Handler, IdleKind, LengthDelimited, Lines, Reply,
    Resp, Tlv, TlvFrame,
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
