//! The clients of the soak test (`tests/soak.rs`), each a plain std `TcpStream` loop that runs
//! until a deadline and returns a [`Tally`] of what it did and saw: well-behaved echo clients,
//! slow readers, resets, half frames and silent connections.
//!
//! Every socket has read and write timeouts and every loop is bounded in time and in count, so
//! a hung server makes a client report a failure instead of hanging the test.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{frame, read_frame};

/// Largest frame a client sends.
pub const MAX_FRAME: usize = 256 * 1024;
/// Most bytes a pipelining client has in flight: well under the server's 1 MiB send queue, so
/// echoes of a burst always fit in the queue while the client is still writing the burst.
const MAX_BURST_BYTES: usize = 512 * 1024;
/// Most frames one well-behaved client sends in a whole run.
const MAX_FRAMES: u64 = 2_000_000;
/// Read and write timeout of every well-behaved client's socket: far above any round trip,
/// so only a hung server reaches it.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// What one client did and saw. Summed over all clients at the end.
#[derive(Debug, Default)]
pub struct Tally {
    /// Frames well-behaved clients sent.
    pub frames_sent: u64,
    /// Frames well-behaved clients got back, equal to what they sent, in order.
    pub frames_echoed: u64,
    /// Frames missing from the echoes (a later frame came first, or the stream ended).
    pub frames_lost: u64,
    /// Frames echoed twice (an earlier sequence number came again).
    pub duplicates: u64,
    /// Payload bytes well-behaved clients sent.
    pub bytes: u64,
    /// Connections made by all clients (each one the server must accept).
    pub connects: u64,
    /// Connections a well-behaved client closed cleanly and reopened.
    pub reconnects: u64,
    /// Connections of well-behaved clients (each must end `PeerClosed`).
    pub good_conns: u64,
    /// Connections a well-behaved client half-closed with echoes still due.
    pub early_fins: u64,
    /// Pauses of 2-4 s, between frames or inside one.
    pub pauses: u64,
    /// Connections closed with unread data, so the kernel sent an RST.
    pub resets: u64,
    /// Connections that sent half a frame and closed (each a codec error on the server).
    pub half_frames: u64,
    /// Silent connections that were still served after their silence.
    pub silent_kept: u64,
    /// Silent connections the server closed for idleness.
    pub idle_closed: u64,
    /// Slow-reader connections that got every echo.
    pub slow_complete: u64,
    /// Slow-reader connections the server cut off (send timeout): an in-order prefix came back.
    pub slow_cut: u64,
    /// Frames slow readers got back (all checked in order).
    pub slow_frames: u64,
    /// What went wrong, one line each; empty in a good run.
    pub failures: Vec<String>,
}

impl Tally {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: Tally) {
        self.frames_sent += other.frames_sent;
        self.frames_echoed += other.frames_echoed;
        self.frames_lost += other.frames_lost;
        self.duplicates += other.duplicates;
        self.bytes += other.bytes;
        self.connects += other.connects;
        self.reconnects += other.reconnects;
        self.good_conns += other.good_conns;
        self.early_fins += other.early_fins;
        self.pauses += other.pauses;
        self.resets += other.resets;
        self.half_frames += other.half_frames;
        self.silent_kept += other.silent_kept;
        self.idle_closed += other.idle_closed;
        self.slow_complete += other.slow_complete;
        self.slow_cut += other.slow_cut;
        self.slow_frames += other.slow_frames;
        self.failures.extend(other.failures);
    }
}

/// xorshift64: a seeded, reproducible stream of numbers (no `rand` crate).
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is avoided).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The length of frame `seq` of a client: mostly small, some large, every 1000th exactly
/// 1 byte and the next exactly [`MAX_FRAME`].
pub fn frame_len(rng: &mut Rng, seq: u64) -> usize {
    match seq % 1000 {
        0 => return 1,
        1 => return MAX_FRAME,
        _ => {}
    }
    let len = match rng.range(0, 99) {
        0..=49 => rng.range(1, 64),
        50..=84 => rng.range(65, 4096),
        85..=96 => rng.range(4097, 64 * 1024),
        _ => rng.range(64 * 1024 + 1, MAX_FRAME as u64),
    };
    len as usize
}

/// Payload `seq` of client `client`, `len` bytes: the tag (client, seq as u32 big-endian,
/// cut to `len`), then bytes that depend on both, so a frame from another place in any stream
/// never compares equal.
pub fn payload(client: u32, seq: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&client.to_be_bytes());
    v.extend_from_slice(&(seq as u32).to_be_bytes());
    v.truncate(len);
    let mut rng = Rng::new(((client as u64) << 40) ^ seq);
    while v.len() < len {
        let word = rng.next().to_le_bytes();
        let n = (len - v.len()).min(8);
        v.extend_from_slice(&word[..n]);
    }
    v
}

/// Connects with read and write timeouts of `timeout`.
fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// How a well-behaved client behaves.
#[derive(Debug, Clone, Copy)]
pub struct Good {
    /// Its number, in every payload's tag.
    pub id: u32,
    /// Writes 2-8 frames (at most 512 KiB) before reading their echoes.
    pub pipeline: bool,
    /// Closes cleanly and reconnects after this many frames.
    pub reconnect_every: Option<u64>,
    /// Pauses 2-4 s every 6-10 s, alternately between frames and inside one.
    pub pauses: bool,
}

/// A well-behaved echo client: sends tagged frames of varying sizes until `deadline`, checks
/// that each comes back exactly once and in order, and ends every connection with its own FIN
/// followed by the server's clean EOF.
pub fn good_client(addr: SocketAddr, cfg: Good, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    if let Err(e) = good_loop(addr, cfg, deadline, &mut t) {
        t.failures.push(format!("good client {}: {e}", cfg.id));
    }
    t
}

fn good_loop(addr: SocketAddr, cfg: Good, deadline: Instant, t: &mut Tally) -> Result<(), String> {
    let mut rng = Rng::new(0x5EED_0000 + cfg.id as u64);
    let mut seq: u64 = 0;
    let mut next_pause = Instant::now() + Duration::from_millis(rng.range(1000, 4000));
    let mut mid_frame = false;
    let mut first = true;
    while Instant::now() < deadline && seq < MAX_FRAMES {
        let mut s = connect(addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
        t.connects += 1;
        t.good_conns += 1;
        if !first {
            t.reconnects += 1;
        }
        first = false;
        let mut on_conn = 0;
        let mut fin_sent = false;
        // Echoes outstanding: (seq, len), oldest first.
        let mut outstanding: VecDeque<(u64, usize)> = VecDeque::new();
        while Instant::now() < deadline && seq < MAX_FRAMES {
            let burst = if cfg.pipeline { rng.range(2, 8) } else { 1 };
            let mut wire = Vec::new();
            let mut burst_bytes = 0;
            let mut added = 0;
            for _ in 0..burst {
                let len = frame_len(&mut rng, seq);
                if !outstanding.is_empty() && burst_bytes + len > MAX_BURST_BYTES {
                    break;
                }
                burst_bytes += len;
                wire.extend_from_slice(&frame(&payload(cfg.id, seq, len)));
                outstanding.push_back((seq, len));
                seq += 1;
                added += 1;
                t.frames_sent += 1;
                t.bytes += len as u64;
            }
            let pause_now = cfg.pauses && Instant::now() >= next_pause;
            if pause_now && mid_frame {
                // Half of the burst, a pause longer than any internal poll or tick, the rest.
                let half = wire.len() / 2;
                s.write_all(&wire[..half])
                    .map_err(|e| format!("write before a pause: {e}"))?;
                pause(&mut rng, t);
                s.write_all(&wire[half..])
                    .map_err(|e| format!("write after a pause inside a frame: {e}"))?;
            } else {
                if pause_now {
                    pause(&mut rng, t);
                }
                s.write_all(&wire)
                    .map_err(|e| format!("write at seq {seq}: {e}"))?;
            }
            if pause_now {
                mid_frame = !mid_frame;
                next_pause = Instant::now() + Duration::from_millis(rng.range(6000, 10_000));
            }
            on_conn += added;
            // The last burst of a connection: our FIN goes before the echoes come back, and
            // the server must still send every one of them (the peer's EOF flushes the queue).
            let last = cfg.reconnect_every.is_some_and(|n| on_conn >= n)
                || Instant::now() >= deadline
                || seq >= MAX_FRAMES;
            if last {
                s.shutdown(Shutdown::Write)
                    .map_err(|e| format!("shutdown with echoes due: {e}"))?;
                t.early_fins += 1;
                fin_sent = true;
            }
            while let Some(&(want, len)) = outstanding.front() {
                let got = match read_frame(&mut s) {
                    Ok(Some(got)) => got,
                    Ok(None) => {
                        t.frames_lost += outstanding.len() as u64;
                        return Err(format!("EOF with {} echoes missing", outstanding.len()));
                    }
                    Err(e) => {
                        t.frames_lost += outstanding.len() as u64;
                        return Err(format!("read of echo {want}: {e}"));
                    }
                };
                check_echo(cfg.id, want, len, &got, t)?;
                outstanding.pop_front();
                t.frames_echoed += 1;
            }
            if last {
                break;
            }
        }
        // Our FIN (if the loop ended without sending it), then the server's clean EOF and
        // nothing else.
        if !fin_sent {
            s.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
        }
        match read_frame(&mut s) {
            Ok(None) => {}
            Ok(Some(extra)) => {
                t.duplicates += 1;
                return Err(format!(
                    "a frame of {} bytes after the last echo",
                    extra.len()
                ));
            }
            Err(e) => return Err(format!("no clean EOF after our FIN: {e}")),
        }
    }
    Ok(())
}

/// Compares echo `got` with frame `want`; on a mismatch, counts it as lost or duplicate by its
/// tag and fails.
fn check_echo(id: u32, want: u64, len: usize, got: &[u8], t: &mut Tally) -> Result<(), String> {
    if got == payload(id, want, len) {
        return Ok(());
    }
    if got.len() >= 8 {
        let tag_id = u32::from_be_bytes(got[0..4].try_into().unwrap());
        let tag_seq = u32::from_be_bytes(got[4..8].try_into().unwrap()) as u64;
        if tag_id == id && tag_seq < want as u32 as u64 {
            t.duplicates += 1;
            return Err(format!("echo {tag_seq} again where {want} was due"));
        }
        if tag_id == id && tag_seq > want as u32 as u64 {
            t.frames_lost += tag_seq - want as u32 as u64;
            return Err(format!("echo {tag_seq} where {want} was due"));
        }
    }
    Err(format!(
        "echo {want} corrupt: {} bytes, {len} sent",
        got.len()
    ))
}

fn pause(rng: &mut Rng, t: &mut Tally) {
    thread::sleep(Duration::from_millis(rng.range(2000, 4000)));
    t.pauses += 1;
}

/// Frame length of the slow readers.
const SLOW_FRAME: usize = 32 * 1024;
/// Frames a slow reader sends per connection (32 MiB): more than the server's send queue and
/// the four loopback socket buffers between the two hold, even grown to their largest.
const SLOW_FRAMES: u64 = 1024;

/// A slow reader: per connection, one thread writes [`SLOW_FRAMES`] frames as fast as the
/// server takes them while this one reads slowly (a 20 ms nap every 8 frames), or, every other
/// connection, stops reading for 3 s (longer than the server's send timeout), so the server
/// may cut it off. Either way, what comes back must be an in-order prefix of what was sent;
/// all of it when the server did not cut the connection.
pub fn slow_reader(addr: SocketAddr, id: u32, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    let mut round = 0u64;
    while Instant::now() < deadline && round < 1000 {
        if let Err(e) = slow_round(addr, id, round, deadline, &mut t) {
            t.failures
                .push(format!("slow reader {id} round {round}: {e}"));
            break;
        }
        round += 1;
    }
    t
}

fn slow_round(
    addr: SocketAddr,
    id: u32,
    round: u64,
    deadline: Instant,
    t: &mut Tally,
) -> Result<(), String> {
    let s = connect(addr, Duration::from_secs(10)).map_err(|e| format!("connect: {e}"))?;
    t.connects += 1;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    // Each round numbers its frames from 0 under its own client number.
    let tag = id + round as u32 * 1000;
    let writer = thread::spawn(move || {
        let mut written = 0;
        while written < SLOW_FRAMES && Instant::now() < deadline {
            if w.write_all(&frame(&payload(tag, written, SLOW_FRAME)))
                .is_err()
            {
                return (written, false);
            }
            written += 1;
        }
        let _ = w.shutdown(Shutdown::Write);
        (written, true)
    });
    let stall = round % 2 == 0;
    let mut r = &s;
    let mut got = 0u64;
    let ended = loop {
        if stall && got == 4 {
            thread::sleep(Duration::from_secs(3));
        } else if !stall && got % 8 == 0 {
            thread::sleep(Duration::from_millis(20));
        }
        match read_frame(&mut r) {
            Ok(Some(f)) => {
                if f != payload(tag, got, SLOW_FRAME) {
                    break Err(format!(
                        "echo {got} is not frame {got}: not an in-order prefix"
                    ));
                }
                got += 1;
            }
            Ok(None) => break Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break Err(format!("no echo and no close within 10 s: {e}"))
            }
            // A reset, or EOF inside a frame: cut off.
            Err(_) => break Ok(()),
        }
        if got > SLOW_FRAMES {
            break Err("more echoes than frames".to_string());
        }
    };
    if ended.is_err() {
        // Unblock the writer, which may be stuck on a server that no longer reads.
        let _ = s.shutdown(Shutdown::Both);
    }
    let (written, wrote_all) = writer.join().map_err(|_| "the writer panicked")?;
    ended?;
    t.slow_frames += got;
    if got > written {
        return Err(format!("{got} echoes of {written} frames"));
    }
    if wrote_all && got == written {
        t.slow_complete += 1;
    } else {
        t.slow_cut += 1;
    }
    Ok(())
}

/// Causes an RST: closes the socket while it holds unread data (Linux then sends RST instead
/// of FIN). Cycles through three moments: right after the first echo, in the middle of a frame
/// the server is reading, and in the middle of a frame the server is writing.
pub fn resetter(addr: SocketAddr, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    let mut i = 0u64;
    while Instant::now() < deadline && i < 1_000_000 {
        if let Err(e) = reset_once(addr, i, &mut t) {
            t.failures.push(format!("reset {i}: {e}"));
            break;
        }
        i += 1;
        // Pace, so resets are a mix-in and not the load.
        thread::sleep(Duration::from_millis(20));
    }
    t
}

fn reset_once(addr: SocketAddr, i: u64, t: &mut Tally) -> io::Result<()> {
    let mut s = connect(addr, Duration::from_secs(10))?;
    t.connects += 1;
    match i % 3 {
        0 => s.write_all(&frame(b"hello"))?,
        1 => {
            let mut wire = frame(&[7u8; 1000]);
            let big = frame(&[9u8; 64 * 1024]);
            wire.extend_from_slice(&big[..big.len() / 2]);
            s.write_all(&wire)?;
        }
        _ => {
            s.write_all(&frame(&vec![5u8; MAX_FRAME]))?;
            let mut some = [0u8; 1000];
            s.read_exact(&mut some)?;
        }
    }
    // Wait until echo bytes sit unread in our receive buffer, then close: RST.
    let mut probe = [0u8; 1];
    if s.peek(&mut probe)? == 0 {
        return Err(io::Error::other("EOF before the echo"));
    }
    drop(s);
    t.resets += 1;
    Ok(())
}

/// Sends half a frame (half a header, or a header and half its payload) and closes its
/// writing side: the server must end the connection (a frame cut short) and close cleanly.
/// Every other one just drops the socket after the half frame.
pub fn half_framer(addr: SocketAddr, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    let mut i = 0u64;
    while Instant::now() < deadline && i < 1_000_000 {
        if let Err(e) = half_once(addr, i, &mut t) {
            t.failures.push(format!("half frame {i}: {e}"));
            break;
        }
        i += 1;
        thread::sleep(Duration::from_millis(20));
    }
    t
}

fn half_once(addr: SocketAddr, i: u64, t: &mut Tally) -> Result<(), String> {
    let mut s = connect(addr, Duration::from_secs(10)).map_err(|e| format!("connect: {e}"))?;
    t.connects += 1;
    let whole = frame(&vec![3u8; 1 + (i as usize * 997) % 5000]);
    let cut = if i % 4 < 2 { 2 } else { whole.len() / 2 };
    s.write_all(&whole[..cut])
        .map_err(|e| format!("write: {e}"))?;
    t.half_frames += 1;
    if i % 2 == 1 {
        return Ok(());
    }
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("{n} bytes back for half a frame")),
        Err(e) => Err(format!("no clean close after half a frame: {e}")),
    }
}

/// Connects and stays silent. With `until_idle`, waits for the server's idle limit (`idle`)
/// to close the connection, and checks it was not sooner; otherwise stays silent 1-3 s, then
/// must still get an echo. Starts no connection that would outlive `deadline` by much.
pub fn silent(
    addr: SocketAddr,
    id: u32,
    until_idle: bool,
    idle: Duration,
    deadline: Instant,
) -> Tally {
    let mut t = Tally::default();
    let mut rng = Rng::new(0x51_1E27 + id as u64);
    let mut i = 0u64;
    while i < 1000 {
        let silence = if until_idle {
            idle
        } else {
            Duration::from_millis(rng.range(1000, 3000))
        };
        if Instant::now() + silence > deadline {
            break;
        }
        let r = if until_idle {
            idle_once(addr, idle, &mut t)
        } else {
            kept_once(addr, silence, &mut t)
        };
        if let Err(e) = r {
            t.failures.push(format!("silent {id} #{i}: {e}"));
            break;
        }
        i += 1;
    }
    t
}

fn idle_once(addr: SocketAddr, idle: Duration, t: &mut Tally) -> Result<(), String> {
    let mut s =
        connect(addr, idle + Duration::from_secs(10)).map_err(|e| format!("connect: {e}"))?;
    t.connects += 1;
    let start = Instant::now();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => return Err(format!("{n} bytes from the server to a silent peer")),
        Err(e) => return Err(format!("not closed for idleness: {e}")),
    }
    let after = start.elapsed();
    // The wheel fires at the limit or a tick after; never sooner.
    if after + Duration::from_millis(50) < idle {
        return Err(format!(
            "closed after {after:?}, before the idle limit {idle:?}"
        ));
    }
    t.idle_closed += 1;
    Ok(())
}

fn kept_once(addr: SocketAddr, silence: Duration, t: &mut Tally) -> Result<(), String> {
    let mut s = connect(addr, Duration::from_secs(10)).map_err(|e| format!("connect: {e}"))?;
    t.connects += 1;
    thread::sleep(silence);
    s.write_all(&frame(b"still here"))
        .map_err(|e| format!("write after {silence:?} of silence: {e}"))?;
    match read_frame(&mut s) {
        Ok(Some(f)) if f == b"still here" => {}
        other => return Err(format!("no echo after {silence:?} of silence: {other:?}")),
    }
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    match read_frame(&mut s) {
        Ok(None) => {}
        other => return Err(format!("no clean EOF: {other:?}")),
    }
    t.silent_kept += 1;
    Ok(())
}
