//! The minimal `echo` example, run as a process as a user runs it: it announces its address,
//! echoes frames on several connections at once, closes a connection that announces a frame
//! over the codec's limit while serving the others, answers `--help`-style misuse with its
//! usage and exit code 2, and stops gracefully on SIGTERM with exit code 0.

mod common;
#[path = "common/process.rs"]
mod process;

use std::io::Write;

use common::*;
use process::{kill, Echo, CHILD_WAIT};

#[test]
fn echo_serves_frames_refuses_an_oversize_one_and_stops_on_sigterm() {
    let mut echo = Echo::spawn(Echo::example("echo", &["--addr", "127.0.0.1:0"]));
    let addr = echo.listening();

    let mut a = peer(addr);
    let mut b = peer(addr);
    for i in 0..20 {
        write_frame(&mut a, &tagged(0, i, 100)).unwrap();
        write_frame(&mut b, &tagged(1, i, 3000)).unwrap();
        assert_eq!(expect_frame(&mut a), tagged(0, i, 100));
        assert_eq!(expect_frame(&mut b), tagged(1, i, 3000));
    }

    // A length of 2 MiB, over LengthDelimited's 1 MiB: closed at its header, nothing echoed.
    let mut bad = peer(addr);
    bad.write_all(&(2u32 << 20).to_be_bytes()).unwrap();
    assert!(ends(&bad), "an oversize frame closes its connection");
    write_frame(&mut a, b"still served").unwrap();
    assert_eq!(expect_frame(&mut a), b"still served");

    // SIGTERM: a graceful stop. The clients get EOF, and the process exits 0 once they close.
    assert!(kill("TERM", echo.pid()));
    assert!(ends(&a) && ends(&b), "the server's FIN after SIGTERM");
    drop((a, b, bad));
    let status = echo.wait_exit(CHILD_WAIT).expect("echo exits");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", echo.stderr());
}

#[test]
fn echo_refuses_unknown_arguments_with_its_usage() {
    let out = Echo::example("echo", &["--port", "7001"])
        .output()
        .expect("run echo");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("usage: echo [--addr HOST:PORT]"),
        "{stderr}"
    );
}
