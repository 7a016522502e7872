//! mini-redis, the tokio project's own Redis server example (crates.io `mini-redis` 0.4):
//! what a Rust user would write instead of `kv_server`. This only starts its server on
//! `--addr` and prints `listening on ADDR` like the other servers of the harness.

use std::io::Write;

use threadnet_harness::args::Args;

const USAGE: &str = "usage: mini-redis [--addr HOST:PORT]
  --addr HOST:PORT  where to listen (default 127.0.0.1:0, a free port)
prints `listening on ADDR` on stdout, then serves until killed";

fn main() {
    let args = Args::parse(1, &["addr"], USAGE);
    let addr: String = args.get("addr", "127.0.0.1:0".to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .unwrap_or_else(|e| {
                eprintln!("mini-redis: cannot listen on {addr}: {e}");
                std::process::exit(1)
            });
        println!(
            "listening on {}",
            listener.local_addr().expect("bound address")
        );
        std::io::stdout().flush().ok();
        // It returns only when the future given as its shutdown signal completes: never.
        let _ = mini_redis::server::run(listener, std::future::pending::<()>()).await;
    });
}
