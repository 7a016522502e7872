//! The blocking reference: one std thread per connection echoing length-delimited frames,
//! with nothing but `TcpListener`, `BufReader` and `BufWriter`. It is what a careful
//! programmer writes by hand, so it marks how fast the thread-per-connection model can go.
//!
//! Per connection: `set_nodelay(true)`; no buffer until the first byte has arrived (an idle
//! connection costs its thread and nothing else); 32 KiB read and write buffers; replies are
//! flushed only when no whole request is left buffered, so a ping-pong client gets one write
//! per frame and a pipelining one gets its replies in batches.

use std::io::{self, BufRead, BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use threadnet_harness::args::Args;
use threadnet_harness::wire::{payload_len, starts_with_frame, HEADER, MAX_PAYLOAD};

const USAGE: &str = "usage: std-echo [--addr HOST:PORT] [--stack-kib N]
  --addr HOST:PORT  where to listen (default 127.0.0.1:0, a free port)
  --stack-kib N     stack of each connection thread, KiB (default 64; 0 = std's 2 MiB)
prints `listening on ADDR` on stdout, then echoes every frame until killed";

/// Read and write buffer of a connection, allocated when its first byte arrives.
const BUF_BYTES: usize = 32 * 1024;

fn main() {
    let args = Args::parse(1, &["addr", "stack-kib"], USAGE);
    let addr: String = args.get("addr", "127.0.0.1:0".to_string());
    let stack_kib: usize = args.get("stack-kib", 64);
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("std-echo: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    let local = listener.local_addr().expect("bound address");
    println!("listening on {local}");
    io::stdout().flush().ok();

    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of descriptors, say: wait for some to close rather than spin.
                eprintln!("std-echo: accept: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let mut thread = thread::Builder::new();
        if stack_kib > 0 {
            thread = thread.stack_size(stack_kib * 1024);
        }
        // If the thread cannot start, the stream is dropped with the closure: closed.
        if let Err(e) = thread.spawn(move || serve(stream)) {
            eprintln!("std-echo: cannot start a connection thread: {e}");
        }
    }
}

/// Echoes one connection until the client closes it or it fails.
fn serve(stream: TcpStream) {
    if let Err(e) = echo(&stream) {
        if !matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
        ) {
            eprintln!("std-echo: connection: {e}");
        }
    }
}

fn echo(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // Park on the socket until the client says something; only then allocate.
    if stream.peek(&mut [0])? == 0 {
        return Ok(());
    }
    let mut input = BufReader::with_capacity(BUF_BYTES, stream);
    let mut output = BufWriter::with_capacity(BUF_BYTES, stream);
    let mut payload = Vec::new();
    loop {
        if input.fill_buf()?.is_empty() {
            return output.flush(); // the client closed between frames
        }
        let mut header = [0; HEADER];
        input.read_exact(&mut header)?;
        let len = payload_len(header);
        if len > MAX_PAYLOAD {
            return Err(io::Error::new(ErrorKind::InvalidData, "frame too long"));
        }
        payload.resize(len, 0);
        input.read_exact(&mut payload)?;
        output.write_all(&header)?;
        output.write_all(&payload)?;
        if !starts_with_frame(input.buffer()) {
            output.flush()?; // the next read may wait: the client must have its replies
        }
    }
}
