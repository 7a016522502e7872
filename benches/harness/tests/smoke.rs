//! Each reference server on a free loopback port, driven by loadgen in every mode for a
//! fraction of a second: the JSON line must report echoed frames and no error, and the
//! report must turn the lines into the table.

use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::Server;
use threadnet_harness::json::{parse, Value};
use threadnet_harness::procfs::{footprint, Footprint};

/// Runs loadgen and gives its JSON line, parsed. First waits (up to 5 s) until the server
/// has closed the connections of the run before and ended their threads (it is back to the
/// descriptors and threads it had `at_rest`), so that they do not count in this run's footprint.
fn loadgen(
    server: &Server,
    at_rest: Footprint,
    args: &[&str],
) -> std::collections::BTreeMap<String, Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while footprint(server.pid())
        .is_some_and(|f| f.fds > at_rest.fds || f.threads > at_rest.threads)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
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

/// Drives `bin` in every mode; a thread-per-connection server has `threads_per_conn` 1,
/// tokio's 0.
fn drive(bin: &str, threads_per_conn: f64) {
    let server = Server::start(bin);
    let at_rest = footprint(server.pid()).expect("the server's footprint");
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
        let line = loadgen(&server, at_rest, args);
        assert_eq!(number(&line, "errors"), 0.0);
        assert!(number(&line, "frames") > 0.0, "{case}: no frame echoed");
        assert!(
            number(&line, "server_us_per_frame") >= 0.0,
            "{case}: no server CPU"
        );
    }
    let idle = loadgen(
        &server,
        at_rest,
        &["idle", "--conns", "20", "--hold-secs", "0", "--touch", "1"],
    );
    assert_eq!(number(&idle, "connected"), 20.0);
    assert_eq!(
        number(&idle, "fds_per_conn"),
        1.0,
        "the server holds every connection"
    );
    let curve = loadgen(
        &server,
        at_rest,
        &[
            "curve", "--conns", "30", "--active", "5", "--size", "100", "--secs", "0.3",
        ],
    );
    assert_eq!(number(&curve, "errors"), 0.0);
    assert_eq!(number(&curve, "connected"), 30.0);
    assert_eq!(number(&curve, "active"), 5.0);
    assert_eq!(number(&curve, "fds_per_conn"), 1.0, "curve: all held");
    assert_eq!(number(&curve, "threads_per_conn"), threads_per_conn);
    let stack = number(&curve, "kernel_stack_kib_per_conn");
    assert_eq!(
        stack > 0.0,
        threads_per_conn > 0.0,
        "kernel stack {stack} KiB"
    );
    assert!(number(&curve, "kernel_kib_per_conn") >= stack);
    assert!(number(&curve, "frames") > 0.0, "curve: no frame echoed");
    assert!(number(&curve, "p99_us") >= number(&curve, "p50_us"));
}

#[test]
fn std_echo_echoes_every_frame() {
    drive(env!("CARGO_BIN_EXE_std-echo"), 1.0);
}

#[test]
fn tokio_echo_echoes_every_frame() {
    drive(env!("CARGO_BIN_EXE_tokio-echo"), 0.0);
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
    // The "server" is this process, whose other tests open descriptors of their own meanwhile:
    // it holds next to none of the 150, not always exactly 0.
    let held: u64 = stdout
        .split("the server holds ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(" of the 150 connections\"}\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(held < 50, "{stdout}");
}

#[test]
fn curve_refuses_more_active_connections_than_connections() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["curve", "--conns", "5", "--active", "10"])
        .args(["--addr", "127.0.0.1:9", "--pid", "1"])
        .output()
        .expect("loadgen runs");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--active must be at most --conns"),
        "{stderr}"
    );
}

#[test]
fn the_curve_table_has_medians_ratios_and_a_chart() {
    let dir = std::env::temp_dir().join(format!("harness-curve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (tsv, svg) = (dir.join("results.tsv"), dir.join("curve.svg"));
    let mut runs = String::new();
    for (conns, server, rss) in [
        (1000, "a", 10.0),
        (1000, "a", 30.0),
        (1000, "a", 20.0),
        (1000, "b", 40.0),
        (5000, "a", 12.0),
        (5000, "b", 48.0),
    ] {
        runs += &format!("{conns}\trss\t{server}\t{rss}\n{conns}\tp99\t{server}\t1500\n");
    }
    std::fs::write(&tsv, runs).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/curve.awk");
    let mut awk = Command::new("awk");
    awk.args(["-F", "\t", "-f", script]);
    for var in [
        "servers=a b",
        "ours=a",
        "vs=b",
        "conns=1000 5000",
        "active=100",
        "labels=a=A;b=B",
        "colors=a=#000000;b=#ffffff",
    ] {
        awk.args(["-v", var]);
    }
    let out = awk
        .arg("-v")
        .arg(format!("svg={}", svg.display()))
        .arg(&tsv)
        .output()
        .expect("awk runs");
    let table = String::from_utf8(out.stdout).unwrap();
    let chart = std::fs::read_to_string(&svg).unwrap_or_default();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{table}");
    assert!(
        table.contains("| measure | connections | A | B | a / b | spread |"),
        "{table}"
    );
    assert!(
        table.contains("| RSS per connection | 1 000 | 20.0 KiB | 40.0 KiB | 0.50× | 3.00× |"),
        "{table}"
    );
    assert!(
        table
            .contains("| p99 round trip, 100 active | 5 000 | 1.50 ms | 1.50 ms | 1.00× | 1.00× |"),
        "{table}"
    );
    assert!(
        table.contains("| threads per connection | 1 000 | – | – | – | – |"),
        "{table}"
    );
    assert!(chart.ends_with("</svg>\n"), "{chart}");
    assert_eq!(
        chart.matches("<polyline").count(),
        4,
        "two servers, rss and p99: {chart}"
    );
}
