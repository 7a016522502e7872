//! One direction of a proxied connection: a thread that reads from one socket and writes to
//! the other with the faults applied. Chunks wait in a bounded delay line (for latency and
//! jitter) and go out paced (for bandwidth) and cut (for split); after a set number of bytes
//! the direction stalls, resets the pair or half-closes.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::faults::{Cut, Direction, Faults, Rng};
use super::pair::Pair;

/// Most bytes read ahead and waiting in the delay line; the pump stops reading past it.
const MAX_PENDING_BYTES: usize = 1 << 20;
/// Most chunks waiting in the delay line (`split(1)` makes one per byte).
const MAX_PENDING_CHUNKS: usize = 1 << 16;
/// The read buffer.
const READ_BUF: usize = 16 * 1024;
/// How often a write blocked on a peer that does not read looks whether the pair has ended.
const WRITE_POLL: Duration = Duration::from_millis(100);
/// Most write sizes recorded per direction of a connection.
pub(crate) const MAX_LOGGED_WRITES: usize = 1 << 16;

/// The sizes of the writes a pump made, when the proxy records them.
pub(crate) type WriteLog = Arc<Mutex<Vec<usize>>>;

/// A chunk read and not yet written, with when it may go.
struct Chunk {
    due: Instant,
    bytes: Vec<u8>,
}

/// Why a direction stopped reading.
#[derive(Clone, Copy)]
enum Done {
    Eof,
    Cut(Cut),
}

/// The state of one direction, run on its own thread by [`Pump::run`].
pub(crate) struct Pump {
    pair: Arc<Pair>,
    direction: Direction,
    faults: Faults,
    rng: Rng,
    log: Option<WriteLog>,
    /// With a bandwidth cap: when the link is free for the next write.
    next_free: Option<Instant>,
}

impl Pump {
    pub(crate) fn new(
        pair: Arc<Pair>,
        direction: Direction,
        faults: Faults,
        rng: Rng,
        log: Option<WriteLog>,
    ) -> Pump {
        Pump {
            pair,
            direction,
            faults,
            rng,
            log,
            next_free: None,
        }
    }

    /// Forwards until EOF, a cut, an error, or the pair ending; returns when done.
    pub(crate) fn run(mut self) {
        let pair = Arc::clone(&self.pair);
        let (src, dst) = pair.ends(self.direction);
        // A blocked write must notice a reset of the pair; a stop shuts the sockets down.
        if dst.set_write_timeout(Some(WRITE_POLL)).is_err() {
            pair.reset();
            return;
        }
        let cut = self.faults.cut();
        let mut line = DelayLine::default();
        let mut read_total: u64 = 0;
        let mut done = match cut {
            Some((0, c)) => Some(Done::Cut(c)),
            _ => None,
        };
        let mut buf = vec![0u8; READ_BUF];
        loop {
            if pair.is_ended() {
                return;
            }
            while let Some(chunk) = line.pop_due(Instant::now()) {
                if !self.write(dst, &chunk.bytes) {
                    pair.reset();
                    return;
                }
            }
            if let (Some(d), true) = (done, line.is_empty()) {
                return self.finish(d, src, dst);
            }
            if done.is_some() || line.is_full() {
                // Not reading: wait for the next chunk to be due.
                if !line.next_due().is_some_and(|due| pair.wait_until(due)) {
                    return;
                }
                continue;
            }
            let want = match cut {
                Some((n, _)) => (n - read_total).min(READ_BUF as u64) as usize,
                None => READ_BUF,
            };
            // Block on the read only while nothing waits to be written.
            let timeout = line
                .next_due()
                .map(|due| due.saturating_duration_since(Instant::now()))
                .map(|d| d.max(Duration::from_millis(1)));
            if src.set_read_timeout(timeout).is_err() {
                pair.reset();
                return;
            }
            match (&*src).read(&mut buf[..want]) {
                Ok(0) => done = Some(Done::Eof),
                Ok(n) => {
                    read_total += n as u64;
                    self.queue(&mut line, &buf[..n]);
                    if let Some((limit, c)) = cut {
                        if read_total == limit {
                            done = Some(Done::Cut(c));
                        }
                    }
                }
                Err(e) if retry(&e) => {}
                Err(_) => {
                    // The peer reset us, or the pair was ended under us: pass it on.
                    pair.reset();
                    return;
                }
            }
        }
    }

    /// Puts what was read in the delay line, cut in pieces.
    fn queue(&mut self, line: &mut DelayLine, mut bytes: &[u8]) {
        let mut delay = self.faults.latency;
        if !self.faults.jitter.is_zero() {
            let max = self.faults.jitter.as_nanos().min(u64::MAX as u128) as u64;
            delay += Duration::from_nanos(self.rng.up_to(max));
        }
        let due = line.due_after(Instant::now() + delay);
        // Pacing needs small writes too: a hundredth of a second's worth at most.
        let paced = self.faults.bandwidth.map(|bps| (bps / 100).max(1) as usize);
        while !bytes.is_empty() {
            let mut n = bytes.len();
            if let Some(max) = self.faults.split {
                if line.piece_left == 0 {
                    line.piece_left = 1 + self.rng.up_to(max as u64 - 1) as usize;
                }
                n = n.min(line.piece_left);
                line.piece_left -= n;
            }
            if let Some(max) = paced {
                n = n.min(max);
            }
            line.push(Chunk {
                due,
                bytes: bytes[..n].to_vec(),
            });
            bytes = &bytes[n..];
        }
    }

    /// Writes one chunk whole, paced by the bandwidth; `false` if the pair ended or the
    /// write failed.
    fn write(&mut self, dst: &TcpStream, mut bytes: &[u8]) -> bool {
        if let Some(bps) = self.faults.bandwidth {
            let now = Instant::now();
            let start = self.next_free.map_or(now, |free| free.max(now));
            if !self.pair.wait_until(start) {
                return false;
            }
            let nanos = (bytes.len() as u128 * 1_000_000_000 / bps as u128) as u64;
            self.next_free = Some(start + Duration::from_nanos(nanos));
        }
        // Logged before it is made: a peer that has read the bytes finds them in the log.
        if let Some(log) = &self.log {
            let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
            if log.len() < MAX_LOGGED_WRITES {
                log.push(bytes.len());
            }
        }
        while !bytes.is_empty() {
            match (&*dst).write(bytes) {
                Ok(0) => return false,
                Ok(n) => bytes = &bytes[n..],
                Err(e) if retry(&e) => {
                    if self.pair.is_ended() {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// After the last chunk: what the direction does once it stops reading.
    fn finish(self, done: Done, src: &TcpStream, dst: &TcpStream) {
        match done {
            // The sender's FIN, passed on.
            Done::Eof => {
                let _ = dst.shutdown(Shutdown::Write);
            }
            Done::Cut(Cut::Reset) => self.pair.reset(),
            Done::Cut(Cut::Stall) => self.pair.wait_end(),
            Done::Cut(Cut::CloseWrite) => {
                let _ = dst.shutdown(Shutdown::Write);
                // Read and drop the rest, so the sender's writes and close stay clean.
                let mut sink = [0u8; 4096];
                let _ = src.set_read_timeout(None); // woken by a reset or stop: shutdown
                loop {
                    match (&*src).read(&mut sink) {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return,
                    }
                    if self.pair.is_ended() {
                        return;
                    }
                }
            }
        }
    }
}

/// Interrupted, or a socket timeout (`WouldBlock` on Unix, `TimedOut` elsewhere).
fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Chunks read and waiting to be written, in order, with their due times.
#[derive(Default)]
struct DelayLine {
    chunks: VecDeque<Chunk>,
    bytes: usize,
    /// The due time of the last chunk queued: a later chunk is never due before it.
    last_due: Option<Instant>,
    /// What is left of the current `split` piece, which may span reads.
    piece_left: usize,
}

impl DelayLine {
    fn due_after(&mut self, wanted: Instant) -> Instant {
        let due = self.last_due.map_or(wanted, |last| last.max(wanted));
        self.last_due = Some(due);
        due
    }

    fn push(&mut self, chunk: Chunk) {
        self.bytes += chunk.bytes.len();
        self.chunks.push_back(chunk);
    }

    fn pop_due(&mut self, now: Instant) -> Option<Chunk> {
        if self.chunks.front()?.due > now {
            return None;
        }
        let chunk = self.chunks.pop_front()?;
        self.bytes -= chunk.bytes.len();
        Some(chunk)
    }

    fn next_due(&self) -> Option<Instant> {
        self.chunks.front().map(|c| c.due)
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    fn is_full(&self) -> bool {
        self.bytes >= MAX_PENDING_BYTES || self.chunks.len() >= MAX_PENDING_CHUNKS
    }
}
