//! Each reference server on a free loopback port, driven by loadgen in every mode for a
//! fraction of a second: the JSON line must report echoed frames and no error, and the
//! report must turn the lines into the table.

use std::process::Command;

mod common;

use common::Server;
use threadnet_harness::json::{parse, Value};

/// Runs loadgen and gives its JSON line, parsed.
fn loadgen(server: &Server, args: &[&str]) -> std::collections::BTreeMap<String, Value> {
    let pid = server.pid().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .args(["--addr", &server.addr, "--pid", &pid, "--warmup", "0.1"])
        .output()
        .expect("loadgen runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{args:?}: {stdout}");
    parse(stdout.lines().last().unwrap()).expect(&stdout)
}

fn number(line: &std::collections::BTreeMap<String, Value>, key: &str) -> f64 {
    match line.get(key) {
        Some(Value::Num(n)) => *n,
        other => panic!("{key}: {other:?}"),
    }
}

fn drive(bin: &str) {
    let server = Server::start(bin);
    for (case, args) in [
        (
            "pingpong",
            &["pingpong", "--conns", "3", "--secs", "0.3"][..],
        ),
        (
            "pipeline",
            &["pipeline", "--depth", "4", "--size", "100", "--secs", "0.3"][..],
        ),
    ] {
        let line = loadgen(&server, args);
        assert_eq!(number(&line, "errors"), 0.0);
        assert!(number(&line, "frames") > 0.0, "{case}: no frame echoed");
        assert!(
            number(&line, "server_us_per_frame") >= 0.0,
            "{case}: no server CPU"
        );
    }
    let idle = loadgen(
        &server,
        &["idle", "--conns", "20", "--hold-secs", "0", "--touch", "1"],
    );
    assert_eq!(number(&idle, "connected"), 20.0);
    assert_eq!(
        number(&idle, "fds_per_conn"),
        1.0,
        "the server holds every connection"
    );
}

#[test]
fn std_echo_echoes_every_frame() {
    drive(env!("CARGO_BIN_EXE_std-echo"));
}

#[test]
fn tokio_echo_echoes_every_frame() {
    drive(env!("CARGO_BIN_EXE_tokio-echo"));
}

#[test]
fn the_report_is_a_markdown_table_of_medians() {
    let dir = std::env::temp_dir().join(format!("harness-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("results.jsonl");
    let runs = [
        r#"{"mode":"pingpong","tag":"pp/a","errors":0,"mib_s":100,"server_us_per_frame":2}"#,
        r#"{"mode":"pingpong","tag":"pp/a","errors":0,"mib_s":300,"server_us_per_frame":4}"#,
        r#"{"mode":"pingpong","tag":"pp/a","errors":0,"mib_s":200,"server_us_per_frame":3}"#,
        r#"{"mode":"pingpong","tag":"pp/b","errors":0,"mib_s":50,"server_us_per_frame":9}"#,
        r#"{"mode":"pingpong","tag":"pp/b","errors":1,"mib_s":1,"server_us_per_frame":1}"#,
    ];
    std::fs::write(&path, runs.join("\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_report"))
        .arg(&path)
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success());
    assert!(
        table.contains("| test | a MiB/s | b MiB/s | server µs per frame (a / b) |"),
        "{table}"
    );
    assert!(table.contains("| pp | 200 | 50 | 3.0 / 9.0 |"), "{table}");
    assert!(table.contains("1 run(s) had errors"), "{table}");
}

#[test]
fn idle_reports_a_server_that_drops_its_connections() {
    // A "server" in this process that accepts and closes at once: it holds nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    listener.set_nonblocking(true).unwrap();
    let acceptor = std::thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => drop(stream),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
    });
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "idle",
            "--conns",
            "150",
            "--hold-secs",
            "0",
            "--addr",
            &addr,
        ])
        .args(["--pid", &std::process::id().to_string()])
        .output()
        .expect("loadgen runs");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    acceptor.join().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("the server holds 0 of the 150 connections"),
        "{stdout}"
    );
}
