//! mini-redis, the tokio project's own Redis server example (crates.io `mini-redis` 0.4):
//! what a Rust user would write instead of `kv_server`. This only starts its server on
//! `--addr` and prints `listening on ADDR` like the other servers of the harness.

use threadnet_harness::args::Args;
use threadnet_harness::tokio_peer;

const USAGE: &str = "usage: mini-redis [--addr HOST:PORT]
  --addr HOST:PORT  where to listen (default 127.0.0.1:0, a free port)
prints `listening on ADDR` on stdout, then serves until killed";

fn main() {
    let args = Args::parse(1, &["addr"], USAGE);
    let addr: String = args.get("addr", "127.0.0.1:0".to_string());
    tokio_peer::serve("mini-redis", &addr, |listener| async move {
        // It returns only when the future given as its shutdown signal completes: never.
        let _ = mini_redis::server::run(listener, std::future::pending::<()>()).await;
    });
}
