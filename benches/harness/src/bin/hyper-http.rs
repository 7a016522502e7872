//! What a Rust user would pick instead for HTTP/1.1: hyper 1.x on tokio's multi-thread
//! runtime (2 workers, as on the 2-core machine the figures come from), answering `GET /json`
//! with `{"hello":"world"}` and 404 otherwise, kept alive, `TCP_NODELAY` on, HTTP/1 only.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use threadnet_harness::args::Args;
use threadnet_harness::tokio_peer;

const USAGE: &str = "usage: hyper-http [--addr HOST:PORT]
  --addr HOST:PORT  where to listen (default 127.0.0.1:0, a free port)
prints `listening on ADDR` on stdout, then answers GET /json until killed";

async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = if req.uri().path() == "/json" {
        Response::builder()
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from_static(b"{\"hello\":\"world\"}")))
    } else {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(b"not found\n")))
    };
    Ok(reply.expect("a valid response"))
}

fn main() {
    let args = Args::parse(1, &["addr"], USAGE);
    let addr: String = args.get("addr", "127.0.0.1:0".to_string());
    tokio_peer::serve("hyper-http", &addr, |listener| async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("hyper-http: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(route))
                    .await;
            });
        }
    });
}
