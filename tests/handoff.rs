//! Restarts that keep the port: the `echo_service` example started with an inherited listener
//! (systemd's socket activation protocol), and handing itself off to a new copy on SIGUSR2
//! while clients connect without pause.

mod common;
#[path = "common/process.rs"]
mod process;

use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use process::{alive, kill, poll_until, Echo, CHILD_WAIT};
use threadnet::activation::{self, PidFile};

#[test]
fn socket_activation_serves_on_the_inherited_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // An --addr that cannot be bound: the inherited listener must be used instead.
    let mut cmd = activation::listen_command(process::echo_binary(), &[listener.as_fd()]).unwrap();
    cmd.args(["--addr", "192.0.2.1:1"])
        .env_remove("NOTIFY_SOCKET");
    // A connection made before the child runs waits in the backlog and is served.
    let early = peer(addr);
    let echo = Echo::spawn(cmd);
    drop(listener); // the child's copy is the only one now
    assert_eq!(echo.listening(), addr);
    write_frame(&mut &early, b"early").unwrap();
    assert_eq!(expect_frame(&mut BufReader::new(&early)), b"early");
    let late = peer(addr);
    write_frame(&mut &late, b"late").unwrap();
    assert_eq!(expect_frame(&mut BufReader::new(&late)), b"late");
}

#[test]
fn listen_variables_for_another_pid_are_ignored_and_removed() {
    std::env::set_var("LISTEN_PID", "1");
    std::env::set_var("LISTEN_FDS", "1");
    std::env::set_var("LISTEN_FDNAMES", "x");
    assert!(activation::listeners().unwrap().is_empty());
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        assert!(std::env::var_os(v).is_none(), "{v} left in the environment");
    }
    std::env::set_var("LISTEN_PID", std::process::id().to_string());
    std::env::set_var("LISTEN_FDS", "many");
    assert!(activation::listeners().is_err());
    assert!(std::env::var_os("LISTEN_FDS").is_none());
}

#[test]
fn pid_file_is_replaced_atomically_and_left_to_a_newer_owner() {
    let path = std::env::temp_dir().join(format!("threadnet-test-{}.pid", std::process::id()));
    std::fs::write(&path, "stale\n").unwrap();
    let pid_file = PidFile::create(&path).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", std::process::id())
    );
    // No temporary file left beside it.
    let dir = path.parent().unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(!std::fs::read_dir(dir).unwrap().any(|e| {
        let n = e.unwrap().file_name();
        let n = n.to_string_lossy();
        n.contains(name) && n.ends_with(".tmp")
    }));
    // Another process took over the file: dropping ours leaves it alone.
    std::fs::write(&path, "4242\n").unwrap();
    drop(pid_file);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "4242\n");
    let pid_file = PidFile::create(&path).unwrap();
    drop(pid_file);
    assert!(!path.exists());
}

/// Counts of a client loop.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failures: Mutex<Vec<String>>,
}

/// One connection, one message, one reply, close: in a loop until `stop`, bounded in time.
fn client_loop(addr: SocketAddr, id: u32, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let until = Instant::now() + Duration::from_secs(60);
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        seq += 1;
        let msg = tagged(id, seq, 16);
        let result = (|| -> std::io::Result<Vec<u8>> {
            let s = TcpStream::connect_timeout(&addr, WAIT)?;
            s.set_read_timeout(Some(WAIT))?;
            write_frame(&mut &s, &msg)?;
            read_frame(&mut BufReader::new(&s))?
                .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
        })();
        match result {
            Ok(reply) if reply == msg => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => tally
                .failures
                .lock()
                .unwrap()
                .push(format!("{id}/{seq}: wrong reply")),
            Err(e) => tally
                .failures
                .lock()
                .unwrap()
                .push(format!("{id}/{seq}: {e}")),
        }
    }
}

/// The hand-off relies on `ServerHandle::drain` and on the shared listener's polled accept:
/// without them, the old process dropped a client its accept thread took after the stop
/// began (on a listener shared with the new process, often a client's, not its own wake-up
/// connection) and shut down a connection whose request was in flight, and this test failed
/// about half the runs with 1 to 4 failed exchanges of ~600.
#[test]
fn sigusr2_hands_off_under_load_without_a_failed_connection() {
    const CLIENTS: u32 = 4;
    let pid_path =
        std::env::temp_dir().join(format!("threadnet-handoff-{}.pid", std::process::id()));
    let _ = std::fs::remove_file(&pid_path);
    let mut echo = Echo::spawn(Echo::command(&[
        "--addr",
        "127.0.0.1:0",
        "--pid-file",
        pid_path.to_str().unwrap(),
    ]));
    let addr = echo.listening();
    let old = echo.pid();
    let read_pid = || {
        std::fs::read_to_string(&pid_path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    assert_eq!(read_pid(), Some(old));

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (stop, tally) = (Arc::clone(&stop), Arc::clone(&tally));
            thread::spawn(move || client_loop(addr, id, stop, tally))
        })
        .collect();
    let served = || tally.ok.load(Ordering::Relaxed);
    assert!(poll_until(CHILD_WAIT, || served() >= 200), "no traffic");

    assert!(kill("USR2", old));
    // The new process announces itself on the same stdout, on the same address.
    assert_eq!(echo.listening(), addr);
    assert!(poll_until(CHILD_WAIT, || read_pid().is_some_and(|p| p != old)));
    let new = read_pid().unwrap();
    echo.adopt(new);
    assert!(alive(new));

    // The old process stops accepting, finishes its connections, and exits cleanly.
    let status = echo.wait_exit(CHILD_WAIT).expect("the old process exits");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", echo.stderr());
    // The new one serves on alone.
    let after = served();
    assert!(poll_until(CHILD_WAIT, || served() >= after + 200));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let failures = tally.failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} exchanges failed: {:?}\nstderr:\n{}",
        failures.len(),
        served() + failures.len() as u64,
        &failures[..failures.len().min(10)],
        echo.stderr()
    );

    // The new process stops on SIGTERM too, and removes its pid file.
    assert!(kill("TERM", new));
    assert!(poll_until(CHILD_WAIT, || !pid_path.exists()));
    assert!(poll_until(CHILD_WAIT, || !alive(new)));
}
