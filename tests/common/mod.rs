//! Tiny helpers shared by the integration tests: durations, a raw std peer that speaks the
//! `LengthDelimited` wire format (u32 big-endian length, then the payload), a comparable
//! mirror of `CloseReason`, and process counters read from `/proc/self`.
#![allow(dead_code)]

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use threadnet::{
    codec::LengthDelimited, idle::IdleKind, CloseReason, ConnOptions, Connection, SendError,
    ServerHandle, TcpServer,
};

/// Milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How long any single blocking wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// Receives one item or fails the test after [`WAIT`].
#[track_caller]
pub fn recv<T>(rx: &Receiver<T>) -> T {
    match rx.recv_timeout(WAIT) {
        Ok(v) => v,
        Err(e) => panic!("nothing received within {WAIT:?}: {e}"),
    }
}

/// A raw std peer with read and write timeouts, so a broken server fails the test instead of
/// hanging it.
pub fn peer(addr: impl ToSocketAddrs) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A `LengthDelimited` server on 127.0.0.1 with `options`, whose handlers do nothing but hand
/// each connection to the test (and ignore what they receive).
pub fn handing_over(
    options: ConnOptions,
) -> (
    ServerHandle<LengthDelimited>,
    Receiver<Connection<LengthDelimited>>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .options(options)
        .start(
            LengthDelimited::new(),
            move |conn: &Connection<LengthDelimited>| {
                tx.send(conn.clone()).unwrap();
                |_: &Connection<LengthDelimited>, _: Vec<u8>| {}
            },
        )
        .unwrap();
    (server, rx)
}

/// Encodes one `LengthDelimited` frame.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + payload.len());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Writes one `LengthDelimited` frame.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    w.write_all(&frame(payload))
}

/// Reads one `LengthDelimited` frame: `Ok(None)` at a clean EOF between frames,
/// `UnexpectedEof` at an EOF inside one.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes(header) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// Reads one frame that must be there.
#[track_caller]
pub fn expect_frame(r: &mut impl Read) -> Vec<u8> {
    match read_frame(r) {
        Ok(Some(p)) => p,
        Ok(None) => panic!("expected a frame, got EOF"),
        Err(e) => panic!("expected a frame, got {e}"),
    }
}

/// Reads frames until the stream ends. Returns the complete frames and how the stream ended:
/// `Ok(())` for a clean EOF, or the error (a reset, or EOF inside a frame).
pub fn drain_frames(s: &TcpStream) -> (Vec<Vec<u8>>, io::Result<()>) {
    let mut r = BufReader::with_capacity(256 * 1024, s);
    let mut frames = Vec::new();
    loop {
        match read_frame(&mut r) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, Ok(())),
            Err(e) => return (frames, Err(e)),
        }
    }
}

/// True if the stream ends (EOF or an error such as a reset) within [`WAIT`], reading and
/// discarding whatever comes first.
pub fn ends(s: &TcpStream) -> bool {
    let mut buf = [0u8; 64 * 1024];
    let start = Instant::now();
    let mut s = s;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
        if start.elapsed() > WAIT {
            return false;
        }
    }
}

/// A payload that names its connection and sequence number, of a length that varies with both.
pub fn tagged(conn: u32, seq: u32, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len.max(8));
    v.extend_from_slice(&conn.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    let fill = (conn as u8).wrapping_mul(31).wrapping_add(seq as u8);
    v.resize(len.max(8), fill);
    v
}

/// The (connection, sequence) numbers of a [`tagged`] payload.
pub fn tag_of(p: &[u8]) -> (u32, u32) {
    (
        u32::from_be_bytes(p[0..4].try_into().unwrap()),
        u32::from_be_bytes(p[4..8].try_into().unwrap()),
    )
}

/// Sends numbered `len`-byte messages ([`tagged`] with connection 0) to a peer that does not
/// read, until the queue stays full for two send timeouts of 200 ms in a row: then the socket
/// buffers are full too (one timeout could be a writer thread that did not get the CPU). A
/// timed-out message is retried with the same number, so what was accepted is 0..n in order.
/// Calls `each` after every accepted send; returns n.
pub fn fill(conn: &Connection<LengthDelimited>, len: usize, mut each: impl FnMut()) -> u32 {
    let mut n = 0;
    let mut misses = 0;
    while misses < 2 {
        let msg = tagged(0, n, len);
        match conn.send_timeout(msg.clone(), ms(200)) {
            Ok(()) => {
                n += 1;
                misses = 0;
                each();
            }
            Err(SendError::Timeout(back)) => {
                assert!(back == msg, "Timeout must hand back the same message");
                misses += 1;
            }
            Err(e) => panic!("send {n}: {e:?}"),
        }
        assert!(n < 100_000, "the queue never filled");
    }
    n
}

/// Polls `cond` every few milliseconds until it holds or `timeout` passes (for counters such
/// as `connections().len()`, which have nothing to wait on).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(ms(5));
    }
}

/// A port that nothing listens on (just bound and released).
pub fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `Threads:` of /proc/self/status.
pub fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads: in /proc/self/status")
}

/// Entries of /proc/self/fd.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// `reason` is the end of a closing handshake with `code`.
#[track_caller]
pub fn assert_closed_with(reason: &CloseReason, want: u16, peer: bool) {
    match reason {
        CloseReason::Protocol { code, by_peer, .. } if *code == want && *by_peer == peer => {}
        other => panic!("expected a close frame with {want} (by peer: {peer}), got {other}"),
    }
}

/// `CloseReason` made comparable (it holds an `io::Error`, so it is not `PartialEq`), to be
/// sent over a channel from `on_close` and compared with `assert_eq!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    PeerClosed,
    Shutdown,
    Closed {
        dropped: u64,
    },
    ShutdownTimeout {
        dropped: u64,
    },
    ServerStopped {
        dropped: u64,
    },
    Error {
        kind: io::ErrorKind,
        message: String,
        dropped: u64,
    },
    Panic {
        message: String,
        dropped: u64,
    },
    Idle {
        kind: IdleKind,
        dropped: u64,
    },
    Other(String),
}

impl From<&CloseReason> for Reason {
    fn from(r: &CloseReason) -> Reason {
        match r {
            CloseReason::PeerClosed => Reason::PeerClosed,
            CloseReason::Shutdown => Reason::Shutdown,
            CloseReason::Closed { dropped } => Reason::Closed { dropped: *dropped },
            CloseReason::ShutdownTimeout { dropped } => {
                Reason::ShutdownTimeout { dropped: *dropped }
            }
            CloseReason::ServerStopped { dropped } => Reason::ServerStopped { dropped: *dropped },
            CloseReason::Error { error, dropped } => Reason::Error {
                kind: error.kind(),
                message: error.to_string(),
                dropped: *dropped,
            },
            CloseReason::Panic { message, dropped } => Reason::Panic {
                message: message.clone(),
                dropped: *dropped,
            },
            CloseReason::IdleTimeout { kind, dropped } => Reason::Idle {
                kind: *kind,
                dropped: *dropped,
            },
            other => Reason::Other(format!("{other:?}")),
        }
    }
}

/// What a recording handler saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Connect(u64),
    Message(u64, Vec<u8>),
    Close(u64, Reason),
}

/// The Python interpreter with the `websockets` package that the WebSocket tests drive as an
/// independent peer: `THREADNET_WS_PYTHON` if set, else the virtual environment `.ci/run`
/// makes in `target/ws-venv`. Panics, saying how to make it, if there is none: those tests
/// are never skipped.
pub fn ws_python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("THREADNET_WS_PYTHON") {
        return p.into();
    }
    let venv =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ws-venv/bin/python");
    assert!(
        venv.is_file(),
        "{} is missing: run `bash .ci/run test`, or `python3 -m venv target/ws-venv && \
         target/ws-venv/bin/pip install websockets==17.4`",
        venv.display()
    );
    venv
}
