//! The read paths that go from the socket straight into a message (issue 14, items 4 and 9):
//! `RawChunks` (chunks in recycled buffers, read from the socket into the chunk itself) and
//! `LengthDelimited` frames larger than what the read buffer holds (the rest read into the
//! message, past the buffer). Real sockets on 127.0.0.1; the byte streams are checked byte
//! for byte, through plain loopback and through a proxy that cuts them into 1-byte writes.

mod common;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use threadnet::testing::{FaultProxy, Faults};
use threadnet::{
    codec::{Chunk, LengthDelimited, RawChunks},
    CloseReason, ConnOptions, Connection, Handler, ServerHandle, TcpServer,
};

/// A deterministic byte stream and write sizes (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Echoes every chunk as it is; tells the test each chunk's length and buffer address, and
/// the close reason.
struct ChunkEcho {
    chunks: Sender<(usize, usize)>,
    closes: Sender<CloseReason>,
}

impl Handler<RawChunks> for ChunkEcho {
    fn on_message(&mut self, conn: &Connection<RawChunks>, chunk: Chunk) {
        let _ = self.chunks.send((chunk.len(), chunk.as_ptr() as usize));
        conn.send(chunk).expect("echo");
    }
    fn on_close(&mut self, _: &Connection<RawChunks>, reason: &CloseReason) {
        let _ = self.closes.send(reason.clone());
    }
}

struct ChunkServer {
    handle: ServerHandle<RawChunks>,
    chunks: Receiver<(usize, usize)>,
    closes: Receiver<CloseReason>,
}

fn chunk_server(codec: RawChunks, options: ConnOptions) -> ChunkServer {
    let (chunk_tx, chunks) = mpsc::channel();
    let (close_tx, closes) = mpsc::channel();
    let handle = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(codec, move |_: &Connection<RawChunks>| ChunkEcho {
            chunks: chunk_tx.clone(),
            closes: close_tx.clone(),
        })
        .unwrap();
    ChunkServer {
        handle,
        chunks,
        closes,
    }
}

/// Writes `data` to `s` in writes of random sizes (1 byte to `max`) on a thread of its own,
/// reads the echo back on this one, and returns it. Bounded in time by the socket timeouts.
fn echo_through(s: TcpStream, data: &[u8], max: usize, seed: u64) -> Vec<u8> {
    let mut w = s.try_clone().unwrap();
    let out = data.to_vec();
    let writer = thread::spawn(move || {
        let mut rng = Rng(seed);
        let mut at = 0;
        while at < out.len() {
            let n = (1 + rng.next() as usize % max).min(out.len() - at);
            w.write_all(&out[at..at + n]).unwrap();
            at += n;
        }
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    let mut r = s;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 64 * 1024];
    while back.len() < data.len() && Instant::now() < deadline {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading the echo after {} bytes: {e}", back.len()),
        }
    }
    writer.join().unwrap();
    back
}

/// 10 MiB in writes of random sizes come back byte for byte, in order, and every chunk's
/// buffer is one of at most two (the pool's and one in flight): memory does not grow with
/// traffic.
#[test]
fn ten_mib_in_random_writes_echo_in_order_through_recycled_buffers() {
    let server = chunk_server(RawChunks::new(), ConnOptions::new());
    let data = pattern(10 << 20, 0x9e37_79b9_7f4a_7c15);
    let back = echo_through(peer(server.handle.local_addr()), &data, 40_000, 7);
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the echo differs from what was sent");
    assert!(matches!(recv(&server.closes), CloseReason::PeerClosed));
    let chunks: Vec<(usize, usize)> = server.chunks.try_iter().collect();
    assert_eq!(chunks.iter().map(|c| c.0).sum::<usize>(), data.len());
    assert!(chunks.iter().all(|c| c.0 > 0 && c.0 <= 32 * 1024));
    let buffers: HashSet<usize> = chunks.iter().map(|c| c.1).collect();
    assert!(
        buffers.len() <= 2,
        "{} chunks used {} buffers",
        chunks.len(),
        buffers.len()
    );
    server.handle.stop(WAIT);
}

/// The socket reads straight into the chunk: with a 4 KiB read buffer and 64 KiB chunks,
/// chunks larger than the read buffer arrive (read through the buffer, none could).
#[test]
fn chunks_are_read_from_the_socket_past_the_read_buffer() {
    let server = chunk_server(
        RawChunks::new().chunk_size(64 * 1024),
        ConnOptions::new().read_buffer_size(4096),
    );
    let data = pattern(4 << 20, 3);
    let back = echo_through(peer(server.handle.local_addr()), &data, 200_000, 11);
    assert!(back == data, "the echo differs from what was sent");
    let largest = server.chunks.try_iter().map(|c| c.0).max().unwrap();
    assert!(
        largest > 4096,
        "no chunk was larger than the 4 KiB read buffer (largest {largest})"
    );
    server.handle.stop(WAIT);
}

/// A connection that pauses longer than the reader's patience (1 s) between chunks goes
/// back to waiting without a buffer, and carries on when the peer talks again.
#[test]
fn a_pause_between_chunks_and_one_byte_writes_lose_nothing() {
    let server = chunk_server(RawChunks::new(), ConnOptions::new());
    let proxy = FaultProxy::builder()
        .upstream(server.handle.local_addr())
        .client_to_server(Faults::new().split(1))
        .start()
        .unwrap();
    let mut s = peer(proxy.local_addr());
    let first = pattern(3000, 5);
    s.write_all(&first).unwrap();
    let mut back = vec![0u8; first.len()];
    s.read_exact(&mut back).unwrap();
    assert!(back == first);
    // Longer than the patience: the reader gives up waiting with a timeout.
    thread::sleep(Duration::from_millis(1300));
    let second = pattern(5000, 6);
    s.write_all(&second).unwrap();
    let mut back = vec![0u8; second.len()];
    s.read_exact(&mut back).unwrap();
    assert!(back == second);
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(s.read(&mut [0u8; 1]).unwrap(), 0);
    assert!(matches!(recv(&server.closes), CloseReason::PeerClosed));
    proxy.stop();
    server.handle.stop(WAIT);
}

/// Between chunks the reader waits in the codec's own read, with no receive timeout: the
/// connection's idle limit still ends a silent connection (the timing wheel shuts the socket
/// down under the blocked read), and a server's stop still ends one that is open and silent,
/// the client seeing its echo and then EOF.
#[test]
fn a_silent_chunk_connection_ends_by_its_idle_limit_and_by_stop() {
    let server = chunk_server(
        RawChunks::new(),
        ConnOptions::new().read_idle(Duration::from_millis(300)),
    );
    let mut s = peer(server.handle.local_addr());
    let data = pattern(20_000, 31);
    s.write_all(&data).unwrap();
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).unwrap();
    assert!(back == data);
    // Silent from here on: the idle limit closes it.
    match recv(&server.closes) {
        CloseReason::IdleTimeout { .. } => {}
        other => panic!("closed with {other:?}"),
    }
    assert_eq!(
        s.read(&mut [0u8; 1]).unwrap(),
        0,
        "no EOF after the idle close"
    );
    server.handle.stop(WAIT);

    let server = chunk_server(RawChunks::new(), ConnOptions::new());
    let mut s = peer(server.handle.local_addr());
    s.write_all(&data).unwrap();
    s.read_exact(&mut back).unwrap();
    assert!(back == data);
    // The client answers the server's FIN with its own, as a well-behaved peer does.
    let client = thread::spawn(move || {
        let eof = s.read(&mut [0u8; 1]).unwrap();
        drop(s);
        eof
    });
    server.handle.stop(WAIT);
    assert_eq!(client.join().unwrap(), 0, "no EOF from the stopping server");
    let reason = recv(&server.closes);
    assert!(
        matches!(reason, CloseReason::ServerStopped { .. }),
        "closed with {reason:?}"
    );
}

/// Echoes each message of a codec of byte vectors; tells the test the close reason.
struct VecEcho(Sender<CloseReason>);

impl<C: threadnet::Codec<In = Vec<u8>, Out = Vec<u8>>> Handler<C> for VecEcho {
    fn on_message(&mut self, conn: &Connection<C>, msg: Vec<u8>) {
        conn.send(msg).expect("echo");
    }
    fn on_close(&mut self, _: &Connection<C>, reason: &CloseReason) {
        let _ = self.0.send(reason.clone());
    }
}

/// A codec that starts its frames both ways in turn: a large `read` (a raw chunk, read from
/// the socket straight into the message when nothing is buffered) and `fill_buf` (through
/// the connection's read buffer, taking at most 100 bytes so that some stay buffered).
#[derive(Clone, Default)]
struct Alternating {
    frames: usize,
}

impl threadnet::Codec for Alternating {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    fn read<R: std::io::BufRead>(&mut self, r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
        self.frames += 1;
        let msg = if self.frames % 2 == 1 {
            let mut buf = vec![0u8; 32 * 1024];
            let n = r.read(&mut buf)?;
            buf.truncate(n);
            buf
        } else {
            let buffered = r.fill_buf()?;
            let msg = buffered[..buffered.len().min(100)].to_vec();
            r.consume(msg.len());
            msg
        };
        Ok((!msg.is_empty()).then_some(msg))
    }

    fn write<W: Write>(&self, msg: &Vec<u8>, w: &mut W) -> std::io::Result<()> {
        w.write_all(msg)
    }
}

/// A codec whose frames start with a large read and with `fill_buf` in turn: the reader
/// switches between reading straight from the socket (no buffer, no patience) and through
/// its buffer (patience on, given back after a pause) frame by frame, and two pauses longer
/// than the patience (1 s) fall one in each mode. Every byte comes back, in order.
#[test]
fn frames_started_both_ways_in_turn_lose_nothing_across_pauses() {
    let (tx, closes) = mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(
            Alternating::default(),
            move |_: &Connection<Alternating>| VecEcho(tx.clone()),
        )
        .unwrap();
    let mut s = peer(server.local_addr());
    for (k, len) in [3000usize, 250, 40_000, 7, 1, 20_000, 500]
        .into_iter()
        .enumerate()
    {
        if k == 3 || k == 4 {
            thread::sleep(Duration::from_millis(1100));
        }
        let piece = pattern(len, k as u64 + 20);
        s.write_all(&piece).unwrap();
        let mut back = vec![0u8; len];
        s.read_exact(&mut back).unwrap();
        assert!(
            back == piece,
            "piece {k} of {len} bytes came back different"
        );
    }
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(s.read(&mut [0u8; 1]).unwrap(), 0);
    assert!(matches!(recv(&closes), CloseReason::PeerClosed));
    server.stop(WAIT);
}

// ---------------------------------------------------------------- LengthDelimited

fn frame_server(options: ConnOptions) -> (ServerHandle<LengthDelimited>, Receiver<CloseReason>) {
    let (tx, rx) = mpsc::channel();
    let handle = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(LengthDelimited::new(), move |_: &Connection<_>| {
            VecEcho(tx.clone())
        })
        .unwrap();
    (handle, rx)
}

/// Frame sizes around a read buffer of `buf` bytes: just below, at and above it and its
/// half (the size from which reads bypass the buffer), with small frames between them.
fn sizes_around(buf: usize) -> Vec<usize> {
    let mut v = Vec::new();
    for n in [
        buf / 2 - 1,
        buf / 2,
        buf - 5,
        buf - 4,
        buf - 1,
        buf,
        buf + 1,
        3 * buf + 7,
    ] {
        v.extend([n, 0, 1]);
    }
    v
}

/// Writes the frames of `sizes` (each a pattern of its own) in one go and checks every echo.
fn check_frames(s: TcpStream, sizes: &[usize]) {
    let frames: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(k, &n)| pattern(n, k as u64 + 1))
        .collect();
    let wire: Vec<u8> = frames.iter().flat_map(|f| frame(f)).collect();
    let back = echo_through(s, &wire, wire.len(), 1);
    assert_eq!(back.len(), wire.len());
    let mut r = &back[..];
    for (k, f) in frames.iter().enumerate() {
        let got = read_frame(&mut r).unwrap().unwrap();
        assert!(&got == f, "frame {k} of {} bytes differs", f.len());
    }
}

/// Frames just below, at and above the read buffer (the default 32 KiB and a 1 KiB one),
/// arriving as the kernel delivers them, and cut into writes of 7 bytes by a proxy.
#[test]
fn frames_around_the_read_buffer_size_come_back_whole() {
    for buf in [32 * 1024, 1024] {
        let (server, closes) = frame_server(ConnOptions::new().read_buffer_size(buf));
        check_frames(peer(server.local_addr()), &sizes_around(buf));
        assert!(matches!(recv(&closes), CloseReason::PeerClosed));
        let proxy = FaultProxy::builder()
            .upstream(server.local_addr())
            .client_to_server(Faults::new().split(7))
            .start()
            .unwrap();
        check_frames(peer(proxy.local_addr()), &sizes_around(buf));
        assert!(matches!(recv(&closes), CloseReason::PeerClosed));
        proxy.stop();
        server.stop(WAIT);
    }
}

/// One byte per write: every read of a large frame is short, none is lost.
#[test]
fn a_large_frame_one_byte_at_a_time() {
    let (server, closes) = frame_server(ConnOptions::new().read_buffer_size(1024));
    let proxy = FaultProxy::builder()
        .upstream(server.local_addr())
        .client_to_server(Faults::new().split(1))
        .start()
        .unwrap();
    check_frames(peer(proxy.local_addr()), &[3000, 0, 700]);
    assert!(matches!(recv(&closes), CloseReason::PeerClosed));
    proxy.stop();
    server.stop(WAIT);
}

/// EOF inside a frame larger than the read buffer (after part of it was read past the
/// buffer) closes with `UnexpectedEof`, and nothing is echoed.
#[test]
fn eof_inside_a_large_frame_is_an_error() {
    let (server, closes) = frame_server(ConnOptions::new().read_buffer_size(1024));
    let mut s = peer(server.local_addr());
    let wire = frame(&pattern(100_000, 9));
    s.write_all(&wire[..60_000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    match recv(&closes) {
        CloseReason::Error { error, .. } => assert_eq!(error.kind(), ErrorKind::UnexpectedEof),
        other => panic!("closed with {other:?}"),
    }
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "{} bytes echoed from a broken frame",
        rest.len()
    );
    server.stop(WAIT);
}

/// The limit is still checked on the header: a frame announced over it is refused at once,
/// before its payload is sent (nothing is waited for, nothing allocated).
#[test]
fn the_limit_is_checked_before_the_payload() {
    let (server, closes) = frame_server(
        ConnOptions::new()
            .read_buffer_size(1024)
            .max_frame_length(64 * 1024),
    );
    let mut s = peer(server.local_addr());
    s.write_all(&(64 * 1024u32 + 1).to_be_bytes()).unwrap();
    match recv(&closes) {
        CloseReason::Error { error, .. } => assert_eq!(error.kind(), ErrorKind::InvalidData),
        other => panic!("closed with {other:?}"),
    }
    // At the limit is fine.
    let s = peer(server.local_addr());
    check_frames(s, &[64 * 1024]);
    assert!(matches!(recv(&closes), CloseReason::PeerClosed));
    server.stop(WAIT);
}
