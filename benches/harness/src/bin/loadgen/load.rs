//! The load modes: `pingpong` (one frame in flight per connection) and `pipeline` (up to
//! `depth` in flight), each connection on its own thread, counted inside one time window.
//! The curve mode drives its active connections with [`drive`] too.

use std::io::{BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{sync_channel, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use threadnet_harness::json::Line;
use threadnet_harness::procfs::cpu_secs;
use threadnet_harness::wire::frame;

use crate::{connect, error_line, Options};

/// Stack of a client thread: they hold a couple of buffers and little else.
const STACK_BYTES: usize = 256 * 1024;

/// The measured window: only echoes that arrive in `[start, end)` count.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn holds(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    frames: u64,
    /// Round-trip times in the window, ns (ping-pong only).
    rtts_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn add(&mut self, other: Tally) {
        self.frames += other.frames;
        self.rtts_ns.extend(other.rtts_ns);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// A frame of `size` payload bytes whose content depends on the connection, so that an echo
/// sent to the wrong connection would not match.
fn request(conn: usize, size: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..size).map(|i| (i * 31 + conn * 17) as u8).collect();
    frame(&payload)
}

/// Writes `seq` into the payload's first 8 bytes, so that a stale or reordered echo would
/// not match.
fn number(frame: &mut [u8], seq: u64) {
    frame[4..12].copy_from_slice(&seq.to_le_bytes());
}

/// Runs the load, then gives the run's JSON line (`Err` when anything went wrong).
pub fn run(o: &Options) -> Result<String, String> {
    let mut streams = Vec::with_capacity(o.conns);
    for i in 0..o.conns {
        let stream = connect(o.addr).map_err(|e| error_line(o, &format!("connect #{i}: {e}")))?;
        streams.push(stream);
    }
    let head =
        Line::default()
            .str("mode", &o.mode)
            .str("tag", &o.tag)
            .num("conns", o.conns as f64, 0);
    drive(o, streams, head, None)
}

/// Drives `streams` for the window, in `pipeline` mode if that is `o.mode` and ping-pong
/// otherwise, each on a thread of its own, and gives `line` with the run's figures added
/// (`Err` when anything went wrong: a failure of the client, or `failure` from before).
pub fn drive(
    o: &Options,
    streams: Vec<TcpStream>,
    line: Line,
    failure: Option<String>,
) -> Result<String, String> {
    let start = Instant::now() + Duration::from_secs_f64(o.warmup);
    let window = Window {
        start,
        end: start + Duration::from_secs_f64(o.secs),
    };
    let mut workers = Vec::with_capacity(streams.len());
    for (conn, stream) in streams.into_iter().enumerate() {
        let (size, depth, pipelined) = (o.size, o.depth, o.mode == "pipeline");
        let worker = thread::Builder::new()
            .stack_size(STACK_BYTES)
            .spawn(move || match pipelined {
                true => pipeline(stream, conn, size, depth, window),
                false => pingpong(stream, conn, size, window),
            })
            .map_err(|e| error_line(o, &format!("cannot start client thread: {e}")))?;
        workers.push(worker);
    }

    // CPU time of both sides over exactly the window.
    sleep_until(window.start);
    let (client0, server0) = (cpu_secs(None), o.pid.and_then(|p| cpu_secs(Some(p))));
    sleep_until(window.end);
    let (client1, server1) = (cpu_secs(None), o.pid.and_then(|p| cpu_secs(Some(p))));

    let mut total = Tally::default();
    if let Some(f) = failure {
        total.error(f);
    }
    for worker in workers {
        match worker.join() {
            Ok(tally) => total.add(tally),
            Err(_) => total.error("a client thread panicked".into()),
        }
    }
    let (line, clean) = summary(o, line, total, (client0, client1), (server0, server1));
    if clean {
        Ok(line)
    } else {
        Err(line)
    }
}

/// The JSON line (`line` and the run's figures) and whether the run was clean (no error,
/// some frames).
fn summary(
    o: &Options,
    line: Line,
    mut total: Tally,
    client: (Option<f64>, Option<f64>),
    server: (Option<f64>, Option<f64>),
) -> (String, bool) {
    let fps = total.frames as f64 / o.secs;
    let used = |(a, b): (Option<f64>, Option<f64>)| Some(b? - a?);
    let per_frame = |cpu: Option<f64>| {
        cpu.filter(|_| total.frames > 0)
            .map(|c| c * 1e6 / total.frames as f64)
    };
    let (client_cpu, server_cpu) = (used(client), used(server));
    let mut line = line.num("size", o.size as f64, 0).num("secs", o.secs, 2);
    if o.mode == "pipeline" {
        line = line.num("depth", o.depth as f64, 0);
    }
    line = line
        .num("frames", total.frames as f64, 0)
        .num("fps", fps, 0)
        .num("mib_s", fps * o.size as f64 / (1024.0 * 1024.0), 1);
    if o.mode != "pipeline" {
        total.rtts_ns.sort_unstable();
        let us = |p: f64| percentile(&total.rtts_ns, p).map(|ns| ns as f64 / 1e3);
        line = line.opt("p50_us", us(50.0), 1).opt("p99_us", us(99.0), 1);
    }
    line = line
        .opt("client_cores", client_cpu.map(|c| c / o.secs), 2)
        .opt("server_cores", server_cpu.map(|c| c / o.secs), 2)
        .opt("client_us_per_frame", per_frame(client_cpu), 2)
        .opt("server_us_per_frame", per_frame(server_cpu), 2)
        .num("errors", total.errors as f64, 0);
    if let Some(e) = &total.first_error {
        line = line.str("first_error", e);
    }
    (line.finish(), total.errors == 0 && total.frames > 0)
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied()
}

fn sleep_until(t: Instant) {
    thread::sleep(t.saturating_duration_since(Instant::now()));
}

/// One frame in flight: send, wait for the echo, check it, until the window ends.
fn pingpong(mut stream: TcpStream, conn: usize, size: usize, window: Window) -> Tally {
    let mut tally = Tally::default();
    let mut sent = request(conn, size);
    let mut echo = vec![0; sent.len()];
    for seq in 0.. {
        let before = Instant::now();
        if before >= window.end {
            break;
        }
        number(&mut sent, seq);
        if let Err(e) = stream
            .write_all(&sent)
            .and_then(|()| stream.read_exact(&mut echo))
        {
            tally.error(format!("connection {conn}: {e}"));
            break;
        }
        let after = Instant::now();
        if echo != sent {
            tally.error(format!(
                "connection {conn}: echo {seq} differs from its request"
            ));
            break;
        }
        if window.holds(after) {
            tally.frames += 1;
            tally.rtts_ns.push((after - before).as_nanos() as u64);
        }
    }
    tally
}

/// Up to `depth` frames in flight. A writer thread sends; before each frame it puts the
/// frame's number in a channel of `depth` places, which this thread empties as echoes come
/// back. So the writer waits when `depth` echoes are outstanding, and flushes before it does.
fn pipeline(stream: TcpStream, conn: usize, size: usize, depth: usize, window: Window) -> Tally {
    let mut tally = Tally::default();
    let (in_flight, outstanding) = sync_channel::<u64>(depth);
    let writing = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            tally.error(format!("connection {conn}: {e}"));
            return tally;
        }
    };
    let writer = thread::Builder::new()
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let mut out = BufWriter::with_capacity(64 * 1024, writing);
            let mut sent = request(conn, size);
            for seq in 0.. {
                if Instant::now() >= window.end {
                    break;
                }
                match in_flight.try_send(seq) {
                    Ok(()) => {}
                    Err(TrySendError::Full(seq)) => {
                        out.flush()?; // what is outstanding must reach the server
                        if in_flight.send(seq).is_err() {
                            break; // the reader stopped
                        }
                    }
                    Err(TrySendError::Disconnected(_)) => break,
                }
                number(&mut sent, seq);
                out.write_all(&sent)?;
            }
            out.flush()
        });
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            tally.error(format!("connection {conn}: cannot start writer: {e}"));
            return tally;
        }
    };
    let mut reading = &stream;
    let mut expected = request(conn, size);
    let mut echo = vec![0; expected.len()];
    // Ends once the writer has stopped and every frame it sent has come back.
    for seq in outstanding.iter() {
        if let Err(e) = reading.read_exact(&mut echo) {
            tally.error(format!("connection {conn}: {e}"));
            let _ = stream.shutdown(Shutdown::Both); // a writer blocked in write gives up
            break;
        }
        number(&mut expected, seq);
        if echo != expected {
            tally.error(format!(
                "connection {conn}: echo {seq} differs from its request"
            ));
            let _ = stream.shutdown(Shutdown::Both);
            break;
        }
        if window.holds(Instant::now()) {
            tally.frames += 1;
        }
    }
    drop(outstanding); // a writer waiting for room gives up
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) if tally.errors == 0 => tally.error(format!("connection {conn}: writing: {e}")),
        Ok(Err(_)) => {} // it failed because the reader shut the socket down
        Err(_) => tally.error(format!("connection {conn}: writer panicked")),
    }
    tally
}
