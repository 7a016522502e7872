//! The blocking reference for request/response: one std thread per connection serving the
//! Redis commands `redis-benchmark -t ping,set,get` sends, from one `Mutex<HashMap>`. It is
//! what a careful programmer writes by hand with `TcpListener`, `BufReader` and `BufWriter`,
//! so it marks how fast the thread-per-connection model can serve RESP; `kv.sh` runs it
//! beside threadnet's `kv_server` and `redis-server`.
//!
//! Commands: `PING [message]`, `GET key`, `SET key value` (no options), `CONFIG GET
//! parameter` (`save` is `""` and `appendonly` is `no`, which `redis-benchmark` asks for; any
//! other parameter gives an empty array). Anything else gets `-ERR unknown command`.
//!
//! Per connection, as `std-echo`: `set_nodelay(true)`; no buffer until the first byte has
//! arrived; 32 KiB read and write buffers; replies are flushed only when no whole request is
//! left buffered, so a ping-pong client gets one write per reply and a pipelining one gets
//! its replies in batches. The map's lock is held for the lookup and one copy of the value.

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use threadnet_harness::args::Args;
use threadnet_harness::resp::{read_request, starts_with_request};

const USAGE: &str = "usage: std-resp [--addr HOST:PORT] [--stack-kib N]
  --addr HOST:PORT  where to listen (default 127.0.0.1:0, a free port)
  --stack-kib N     stack of each connection thread, KiB (default 64; 0 = std's 2 MiB)
prints `listening on ADDR` on stdout, then serves PING, GET, SET and CONFIG GET until killed";

/// Read and write buffer of a connection, allocated when its first byte arrives.
const BUF_BYTES: usize = 32 * 1024;

type Store = Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>;

fn main() {
    let args = Args::parse(1, &["addr", "stack-kib"], USAGE);
    let addr: String = args.get("addr", "127.0.0.1:0".to_string());
    let stack_kib: usize = args.get("stack-kib", 64);
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("std-resp: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    let local = listener.local_addr().expect("bound address");
    println!("listening on {local}");
    io::stdout().flush().ok();

    let store = Store::default();
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of descriptors, say: wait for some to close rather than spin.
                eprintln!("std-resp: accept: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let mut thread = thread::Builder::new();
        if stack_kib > 0 {
            thread = thread.stack_size(stack_kib * 1024);
        }
        let store = store.clone();
        // If the thread cannot start, the stream is dropped with the closure: closed.
        if let Err(e) = thread.spawn(move || serve(stream, &store)) {
            eprintln!("std-resp: cannot start a connection thread: {e}");
        }
    }
}

/// Serves one connection until the client closes it or it fails.
fn serve(stream: TcpStream, store: &Store) {
    if let Err(e) = requests(&stream, store) {
        if !matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
        ) {
            eprintln!("std-resp: connection: {e}");
        }
    }
}

fn requests(stream: &TcpStream, store: &Store) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // Park on the socket until the client says something; only then allocate.
    if stream.peek(&mut [0])? == 0 {
        return Ok(());
    }
    let mut input = BufReader::with_capacity(BUF_BYTES, stream);
    let mut output = BufWriter::with_capacity(BUF_BYTES, stream);
    let mut args = Vec::new();
    let mut value = Vec::new(); // a GET's value, copied out of the map under its lock
    loop {
        match read_request(&mut input, &mut args) {
            Ok(true) => {}
            Ok(false) => return output.flush(), // the client closed between requests
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                write!(output, "-ERR Protocol error: {e}\r\n")?;
                return output.flush(); // then close, as Redis does
            }
            Err(e) => return Err(e),
        }
        execute(&args, store, &mut value, &mut output)?;
        if !starts_with_request(input.buffer()) {
            output.flush()?; // the next read may wait: the client must have its replies
        }
    }
}

/// Runs one command and writes its reply.
fn execute(
    args: &[Vec<u8>],
    store: &Store,
    value: &mut Vec<u8>,
    out: &mut impl Write,
) -> io::Result<()> {
    let Some(name) = args.first() else {
        return Ok(()); // an empty inline line: Redis ignores it
    };
    // The name in upper case, without allocating (no command here is longer than 6 bytes).
    let mut upper = [0; 8];
    if let Some(head) = upper.get_mut(..name.len()) {
        head.copy_from_slice(name);
        head.make_ascii_uppercase();
    }
    match (&upper[..name.len().min(8)], args.len()) {
        (b"PING", 1) => out.write_all(b"+PONG\r\n"),
        (b"PING", 2) => bulk(out, &args[1]),
        (b"GET", 2) => {
            let found = {
                let map = store.lock().unwrap_or_else(|e| e.into_inner());
                map.get(&args[1]).map(|v| {
                    value.clear();
                    value.extend_from_slice(v);
                })
            };
            match found {
                Some(()) => bulk(out, value),
                None => out.write_all(b"$-1\r\n"),
            }
        }
        (b"SET", 3) => {
            let mut map = store.lock().unwrap_or_else(|e| e.into_inner());
            match map.get_mut(&args[1]) {
                // Overwrite in place: no allocation when the new value fits the old one's.
                Some(old) => {
                    old.clear();
                    old.extend_from_slice(&args[2]);
                }
                None => {
                    map.insert(args[1].clone(), args[2].clone());
                }
            }
            drop(map);
            out.write_all(b"+OK\r\n")
        }
        (b"CONFIG", 3) if args[1].eq_ignore_ascii_case(b"GET") => {
            let param = args[2].to_ascii_lowercase();
            let value: &[u8] = match param.as_slice() {
                b"save" => b"",
                b"appendonly" => b"no",
                _ => return out.write_all(b"*0\r\n"),
            };
            out.write_all(b"*2\r\n")?;
            bulk(out, &param)?;
            bulk(out, value)
        }
        (b"PING" | b"GET" | b"SET" | b"CONFIG", _) => write!(
            out,
            "-ERR wrong number of arguments for '{}' command\r\n",
            String::from_utf8_lossy(name).to_lowercase()
        ),
        _ => write!(
            out,
            "-ERR unknown command '{}'\r\n",
            String::from_utf8_lossy(name)
        ),
    }
}

/// Writes `data` as a bulk string.
fn bulk(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    write!(out, "${}\r\n", data.len())?;
    out.write_all(data)?;
    out.write_all(b"\r\n")
}
