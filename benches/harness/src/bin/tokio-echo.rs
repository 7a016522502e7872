//! The async reference: what one would pick instead of threads. A tokio multi-thread runtime
//! with 2 workers (one per core of the machine the figures come from) and tokio-util's
//! `LengthDelimitedCodec` for the frames, one task per connection.
//!
//! The policy is std-echo's, so the comparison is between models rather than tuning:
//! `set_nodelay(true)`; no buffer until the first byte has arrived; 32 KiB buffers; replies
//! written only when no whole request is left to decode.

use std::io::{self, ErrorKind};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use threadnet_harness::args::Args;
use threadnet_harness::tokio_peer;
use threadnet_harness::wire::MAX_PAYLOAD;

const USAGE: &str = "usage: tokio-echo [--addr HOST:PORT]
  --addr HOST:PORT  where to listen (default 127.0.0.1:0, a free port)
prints `listening on ADDR` on stdout, then echoes every frame until killed";

/// Read and write buffer of a connection, allocated when its first byte arrives.
const BUF_BYTES: usize = 32 * 1024;

fn main() {
    let args = Args::parse(1, &["addr"], USAGE);
    let addr: String = args.get("addr", "127.0.0.1:0".to_string());
    tokio_peer::serve("tokio-echo", &addr, accept_loop);
}

async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream));
            }
            Err(e) => {
                eprintln!("tokio-echo: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Echoes one connection until the client closes it or it fails.
async fn serve(stream: TcpStream) {
    if let Err(e) = echo(stream).await {
        if !matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) {
            eprintln!("tokio-echo: connection: {e}");
        }
    }
}

async fn echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // Wait for the first byte before allocating. (`readable()` would not do: tokio reports
    // an accepted socket readable before anything arrives.)
    if stream.peek(&mut [0]).await? == 0 {
        return Ok(());
    }
    let mut codec = LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .big_endian()
        .max_frame_length(MAX_PAYLOAD)
        .new_codec();
    let mut input = BytesMut::with_capacity(BUF_BYTES);
    let mut output = BytesMut::with_capacity(BUF_BYTES);
    loop {
        // Answer every whole request already here, writing only when the buffer is full...
        while let Some(request) = codec.decode(&mut input)? {
            codec.encode(request.freeze(), &mut output)?;
            if output.len() >= BUF_BYTES {
                stream.write_all(&output).await?;
                output.clear();
            }
        }
        // ...and the rest before a read that may wait.
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        if input.capacity() - input.len() < BUF_BYTES / 8 {
            input.reserve(BUF_BYTES);
        }
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(()); // the client closed
        }
    }
}
