//! `LengthChunks` on real sockets (issue 23, item 1): `LengthDelimited`'s frames with each
//! message in a recycled buffer. An echo server's frames come back byte for byte, each
//! message after the first is read into the same buffer (no allocation per frame), one over
//! the kept capacity is freed, a frame over the limit closes only its connection, and a
//! client on it talks to a plain `LengthDelimited` server.

mod common;

use std::io::{ErrorKind, Write};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use common::*;
use threadnet::{
    codec::{Chunk, LengthChunks, LengthDelimited},
    CloseReason, ConnOptions, Connection, Handler, ServerHandle, TcpClient, TcpServer,
};

/// Echoes every message as it is; tells the test each message's length and buffer address,
/// and the close reason.
struct Echo {
    seen: Sender<(usize, usize)>,
    closes: Sender<CloseReason>,
}

impl Handler<LengthChunks> for Echo {
    fn on_message(&mut self, conn: &Connection<LengthChunks>, msg: Chunk) {
        let _ = self.seen.send((msg.len(), msg.as_ptr() as usize));
        conn.send(msg).expect("echo");
    }
    fn on_close(&mut self, _: &Connection<LengthChunks>, reason: &CloseReason) {
        let _ = self.closes.send(reason.clone());
    }
}

type Seen = mpsc::Receiver<(usize, usize)>;
type Closes = mpsc::Receiver<CloseReason>;

fn echo_server(
    codec: LengthChunks,
    options: ConnOptions,
) -> (ServerHandle<LengthChunks>, Seen, Closes) {
    let (seen_tx, seen) = mpsc::channel();
    let (close_tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(codec, move |_: &Connection<LengthChunks>| Echo {
            seen: seen_tx.clone(),
            closes: close_tx.clone(),
        })
        .unwrap();
    (server, seen, closes)
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

#[test]
fn echoed_frames_reuse_one_buffer_and_a_large_one_is_not_kept() {
    let (server, seen, closes) = echo_server(LengthChunks::new(), ConnOptions::new());
    let mut s = peer(server.local_addr());
    // 200 000 bytes: over the 64 KiB kept, and over the connection's 32 KiB read buffer.
    let sizes = [0, 4096, 4096, 10, 200_000, 4096, 1];
    let mut at = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        let p = payload(len, i as u8);
        write_frame(&mut s, &p).unwrap();
        assert_eq!(expect_frame(&mut s), p, "frame {i} of {len} bytes");
        let (n, ptr) = recv(&seen);
        assert_eq!(n, len);
        at.push(ptr);
    }
    assert_eq!(at[2], at[1], "the second 4096-byte frame got a new buffer");
    assert_eq!(at[3], at[1], "a 10-byte frame after them got a new buffer");
    assert_eq!(
        at[6], at[5],
        "after the large frame, the next buffer is not kept"
    );
    drop(s);
    assert!(matches!(recv(&closes), CloseReason::PeerClosed));
    server.stop(ms(1000));
}

#[test]
fn a_frame_over_the_limit_closes_its_connection_and_the_server_serves_others() {
    let options = ConnOptions::new().max_frame_length(1024);
    let (server, seen, closes) = echo_server(LengthChunks::new(), options);
    let mut bad = peer(server.local_addr());
    let mut good = peer(server.local_addr());
    write_frame(&mut good, b"before").unwrap();
    assert_eq!(expect_frame(&mut good), b"before");
    // A header announcing 1025 bytes is refused as it arrives, before the payload.
    bad.write_all(&1025u32.to_be_bytes()).unwrap();
    assert!(ends(&bad), "the connection over the limit stays open");
    match recv(&closes) {
        CloseReason::Error { error, .. } => assert_eq!(error.kind(), ErrorKind::InvalidData),
        other => panic!("closed with {other:?}"),
    }
    let p = payload(1024, 9);
    write_frame(&mut good, &p).unwrap();
    assert_eq!(
        expect_frame(&mut good),
        p,
        "the other connection stopped being served"
    );
    assert_eq!(
        seen.try_iter().map(|(n, _)| n).collect::<Vec<_>>(),
        [6, 1024]
    );
    server.stop(ms(1000));
}

#[test]
fn a_client_on_length_chunks_talks_to_a_length_delimited_server() {
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(LengthDelimited::new(), |_: &Connection<LengthDelimited>| {
            |conn: &Connection<LengthDelimited>, mut msg: Vec<u8>| {
                msg.reverse();
                let _ = conn.send(msg);
            }
        })
        .unwrap();
    let (tx, replies) = mpsc::channel();
    let client = TcpClient::builder()
        .connect(
            server.local_addr(),
            LengthChunks::new(),
            move |_: &Connection<LengthChunks>| {
                let tx = tx.clone();
                move |_: &Connection<LengthChunks>, reply: Chunk| {
                    let _ = tx.send(reply.into_vec());
                }
            },
        )
        .unwrap();
    let conn = client.connection().expect("connected");
    conn.send(Chunk::from(b"abc".to_vec())).unwrap();
    assert_eq!(recv(&replies), b"cba");
    conn.send(Chunk::from(Vec::new())).unwrap();
    assert_eq!(recv(&replies), b"");
    client.stop(Duration::from_secs(1));
    server.stop(ms(1000));
}
