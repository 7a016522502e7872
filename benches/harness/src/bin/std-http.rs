//! The blocking reference for HTTP/1.1: one std thread per connection answering `GET /json`
//! with `{"hello":"world"}`, kept alive, with nothing but `TcpListener`, `BufReader` and
//! `BufWriter`. It is what a careful programmer writes by hand for the one route `http.sh`
//! measures, so it marks how fast the thread-per-connection model can go on HTTP (threadnet's
//! `http_hello` parses every header and routes; this reads the request line and skips to the
//! blank line).
//!
//! The same policy as `std-echo`: `set_nodelay(true)`; no buffer until the first byte
//! arrives; 32 KiB buffers; replies flushed only when no whole request is left buffered, so a
//! pipelining client gets them in batches. Request bodies are not supported (a request with
//! `Content-Length` other than 0 or `Transfer-Encoding` gets a 400 and the connection closes);
//! `Connection: close` is honoured.

use std::io::{self, BufRead, BufReader, BufWriter, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use threadnet_harness::args::Args;

const USAGE: &str = "usage: std-http [--addr HOST:PORT]
  --addr HOST:PORT  where to listen (default 127.0.0.1:0, a free port)
prints `listening on ADDR` on stdout, then answers GET /json until killed";

/// Read and write buffer of a connection, allocated when its first byte arrives.
const BUF_BYTES: usize = 32 * 1024;
/// The longest request head accepted, in bytes (threadnet's `Http1` default is 8 KiB too).
const MAX_HEAD: usize = 8 * 1024;

const JSON_REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"hello\":\"world\"}";
const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\nnot found\n";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn main() {
    let args = Args::parse(1, &["addr"], USAGE);
    let addr: String = args.get("addr", "127.0.0.1:0".to_string());
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("std-http: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    println!(
        "listening on {}",
        listener.local_addr().expect("bound address")
    );
    io::stdout().flush().ok();
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("std-http: accept: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let spawned = thread::Builder::new().stack_size(64 * 1024).spawn(move || {
            if let Err(e) = serve(&stream) {
                if !matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
                ) {
                    eprintln!("std-http: connection: {e}");
                }
            }
        });
        if let Err(e) = spawned {
            eprintln!("std-http: cannot start a connection thread: {e}");
        }
    }
}

/// What one request head asked for.
struct Head {
    json: bool,
    close: bool,
    body: bool,
}

fn serve(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if stream.peek(&mut [0])? == 0 {
        return Ok(());
    }
    let mut input = BufReader::with_capacity(BUF_BYTES, stream);
    let mut output = BufWriter::with_capacity(BUF_BYTES, stream);
    let mut line = Vec::with_capacity(256);
    loop {
        let Some(head) = read_head(&mut input, &mut line)? else {
            return output.flush(); // the client closed between requests
        };
        if head.body {
            output.write_all(BAD_REQUEST)?;
            return output.flush();
        }
        output.write_all(if head.json { JSON_REPLY } else { NOT_FOUND })?;
        if head.close {
            return output.flush();
        }
        if !input.buffer().windows(4).any(|w| w == b"\r\n\r\n") {
            output.flush()?; // the next read may wait: the client must have its replies
        }
    }
}

/// Reads one request head up to its blank line. `Ok(None)` at EOF before a request.
fn read_head(input: &mut BufReader<&TcpStream>, line: &mut Vec<u8>) -> io::Result<Option<Head>> {
    let mut head = Head {
        json: false,
        close: false,
        body: false,
    };
    let mut total = 0;
    for first in [true].into_iter().chain(std::iter::repeat(false)) {
        line.clear();
        let n = input.read_until(b'\n', line)?;
        if n == 0 {
            return if first && total == 0 {
                Ok(None)
            } else {
                Err(ErrorKind::UnexpectedEof.into())
            };
        }
        total += n;
        if total > MAX_HEAD {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                "request head too long",
            ));
        }
        let text = line.strip_suffix(b"\r\n").unwrap_or(line);
        if first {
            head.json = text.starts_with(b"GET /json ") || text.starts_with(b"HEAD /json ");
            continue;
        }
        if text.is_empty() {
            return Ok(Some(head));
        }
        let lower = text.to_ascii_lowercase();
        if lower.starts_with(b"connection:") && lower.windows(5).any(|w| w == b"close") {
            head.close = true;
        } else if lower.starts_with(b"transfer-encoding:")
            || (lower.starts_with(b"content-length:") && lower[15..].trim_ascii() != b"0")
        {
            head.body = true;
        }
    }
    unreachable!("the loop returns")
}
