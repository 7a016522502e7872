//! loadgen: the benchmark's client. Plain std, one thread per connection, so that it adds
//! no runtime of its own to what is measured. It prints one JSON line per run.
//!
//! * `pingpong`: each connection sends a frame and waits for its echo, again and again.
//! * `pipeline`: each connection keeps `--depth` frames in flight (a writer thread sends,
//!   the connection's thread reads).
//! * `idle`: opens `--conns` connections (with `--touch 1`, one round trip each) and holds
//!   them; reports what each costs the server (`--pid`) in RSS, threads and kernel memory.
//! * `curve`: as `idle --touch 1`, then drives `--active` of the connections ping-pong for
//!   the window while the rest stay idle: the cost per connection and the round trip, at once.
//!
//! Only frames whose echo arrives inside the `--secs` window, after a `--warmup`, count.
//! Every echo is compared with what was sent. Every socket has 5 s timeouts, and a watchdog
//! ends the process if a run overruns, so loadgen always ends.

mod curve;
mod idle;
mod load;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::Duration;

use threadnet_harness::args::{fail, Args};
use threadnet_harness::json::Line;

const USAGE: &str = "usage: loadgen pingpong|pipeline|idle|curve --addr HOST:PORT [options]
  --conns N        connections (default 1)
  --size BYTES     payload of a frame (default 4096)
  --secs S         measured window, seconds (default 5)
  --warmup S       unmeasured run before the window, seconds (default 0.5)
  --depth N        pipeline: frames in flight per connection (default 16)
  --pid PID        the server's pid: its CPU time (load modes), memory (idle and curve:
                   required)
  --hold-secs S    idle: how long to hold the connections (default 2)
  --touch 0|1      idle: one round trip per connection before holding (default 0)
  --active N       curve: connections driven ping-pong while the rest idle (default 100)
  --tag TEXT       copied into the JSON line (run.sh uses CASE/SERVER)";

/// Connect, read and write timeout of every socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What a run was asked to do.
pub struct Options {
    pub mode: String,
    pub addr: SocketAddr,
    pub conns: usize,
    pub size: usize,
    pub secs: f64,
    pub warmup: f64,
    pub depth: usize,
    pub pid: Option<u32>,
    pub hold_secs: f64,
    pub touch: bool,
    pub active: usize,
    pub tag: String,
}

fn options() -> Options {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode == "-h" || mode == "--help" {
        println!("{USAGE}");
        std::process::exit(0);
    }
    if !matches!(mode.as_str(), "pingpong" | "pipeline" | "idle" | "curve") {
        fail(USAGE, format!("unknown mode {mode:?}"));
    }
    let known = [
        "addr",
        "conns",
        "size",
        "secs",
        "warmup",
        "depth",
        "pid",
        "hold-secs",
        "touch",
        "active",
        "tag",
    ];
    let args = Args::parse(2, &known, USAGE);
    let addr: String = args.get("addr", "127.0.0.1:7001".to_string());
    let addr = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| fail(USAGE, format!("--addr {addr}: not an address")));
    let options = Options {
        mode,
        addr,
        conns: args.get("conns", 1),
        size: args.get("size", 4096),
        secs: args.get("secs", 5.0),
        warmup: args.get("warmup", 0.5),
        depth: args.get("depth", 16),
        pid: args.opt("pid"),
        hold_secs: args.get("hold-secs", 2.0),
        touch: args.get::<u8>("touch", 0) != 0,
        active: args.get("active", 100),
        tag: args.get("tag", String::new()),
    };
    if options.conns == 0 || options.depth == 0 || options.active == 0 || options.secs <= 0.0 {
        fail(
            USAGE,
            "--conns, --depth, --active and --secs must be positive".into(),
        );
    }
    if options.mode == "curve" && options.active > options.conns {
        fail(USAGE, "curve: --active must be at most --conns".into());
    }
    if options.size < 8 || options.size > threadnet_harness::wire::MAX_PAYLOAD {
        fail(USAGE, "--size must be 8 bytes to 16 MiB".into());
    }
    options
}

fn main() {
    let options = options();
    let limit = match options.mode.as_str() {
        "idle" => options.hold_secs + options.conns as f64 / 200.0 + 60.0,
        "curve" => options.warmup + options.secs + options.conns as f64 / 200.0 + 60.0,
        _ => options.warmup + options.secs + options.conns as f64 / 100.0 + 30.0,
    };
    let started = error_line(
        &options,
        &format!("watchdog: still running after {limit:.0} s"),
    );
    thread::spawn(move || {
        thread::sleep(Duration::from_secs_f64(limit));
        println!("{started}");
        std::process::exit(3);
    });
    let line = match options.mode.as_str() {
        "idle" => idle::run(&options),
        "curve" => curve::run(&options),
        _ => load::run(&options),
    };
    let ok = line.is_ok();
    println!("{}", line.unwrap_or_else(|e| e));
    std::process::exit(if ok { 0 } else { 1 });
}

/// The JSON line of a run that failed as a whole.
pub fn error_line(options: &Options, error: &str) -> String {
    Line::default()
        .str("mode", &options.mode)
        .str("tag", &options.tag)
        .str("error", error)
        .finish()
}

/// A connected socket with the timeouts every socket of loadgen has.
pub fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}
