//! What the tokio servers of the harness (`tokio-echo`, `hyper-http`, `mini-redis`) share: the
//! runtime, and a listener announced the way every server of the harness announces it.

use std::io::Write;

use tokio::net::TcpListener;

/// Runs `serve` with a listener bound on `addr`, on tokio's multi-thread runtime with 2
/// workers (the 2-core machine the figures come from), after printing `listening on ADDR`.
/// Exits the process with status 1 if `addr` cannot be bound; `name` is the binary's, for
/// that message.
pub fn serve<F, Fut>(name: &str, addr: &str, serve: F)
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| {
            eprintln!("{name}: cannot listen on {addr}: {e}");
            std::process::exit(1)
        });
        println!(
            "listening on {}",
            listener.local_addr().expect("bound address")
        );
        std::io::stdout().flush().ok();
        serve(listener).await;
    });
}
