//! What `control` knows of processes: pid files, `/proc` (a process's name, start time and
//! caught signals), the lock a `start -d` holds, and the metrics endpoint `status` asks.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Whether process `pid` has a handler for signal `signum` (the `SigCgt` mask of
/// `/proc/PID/status`); `None` if that cannot be read.
pub(super) fn catches(pid: u32, signum: i32) -> Option<bool> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
    let mask = u64::from_str_radix(mask.trim(), 16).ok()?;
    let bit = u32::try_from(signum).ok()?.checked_sub(1)?;
    Some(mask.checked_shr(bit)? & 1 == 1)
}

/// `GET /metrics` from `addr` over HTTP/1.0 (the server closes after the reply), each
/// connect, write and read bounded by `timeout`, the reply by 1 MiB: the body of a 200.
pub(super) fn fetch_metrics(addr: &str, timeout: Duration) -> io::Result<String> {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    stream.take(1 << 20).read_to_end(&mut reply)?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no complete HTTP reply"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("reply {status:?}"),
        ));
    }
    Ok(body.to_string())
}

/// Worker `i`'s pid file: `pid_file` with `.i` appended.
pub(super) fn worker_pid_path(pid_file: &Path, i: usize) -> PathBuf {
    let mut path = pid_file.as_os_str().to_owned();
    path.push(format!(".{i}"));
    PathBuf::from(path)
}

/// The pid in the pid file, if there is one and it holds a number.
pub(super) fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `/proc/PID/stat`: the command name (in parentheses) and the fields after it.
pub(super) fn stat(pid: u32) -> Option<(String, Vec<String>)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let (_, name) = head.split_once('(')?;
    Some((
        name.to_string(),
        rest.split_whitespace().map(str::to_string).collect(),
    ))
}

/// `pid` is a live process (not a zombie) running a program of this one's name.
pub(super) fn is_server(pid: u32) -> bool {
    let Some((name, fields)) = stat(pid) else {
        return false;
    };
    let own = stat(std::process::id()).map(|(n, _)| n);
    fields.first().is_some_and(|state| state != "Z") && own.map_or(true, |own| own == name)
}

/// How long `pid` has run: the system's uptime less the process's start time (field 22 of
/// `/proc/PID/stat`, in clock ticks of 1/100 s, the Linux `USER_HZ`).
pub(super) fn uptime(pid: u32) -> io::Result<Duration> {
    const TICKS_PER_SECOND: f64 = 100.0;
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc stat");
    let (_, fields) = stat(pid).ok_or_else(invalid)?;
    // Field 22 overall; `fields` starts at field 3 (the state).
    let started: f64 = fields
        .get(19)
        .and_then(|f| f.parse().ok())
        .ok_or_else(invalid)?;
    let mut up = String::new();
    io::Read::read_to_string(&mut File::open("/proc/uptime")?, &mut up)?;
    let system: f64 = up
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)?;
    Ok(Duration::from_secs_f64(
        (system - started / TICKS_PER_SECOND).max(0.0),
    ))
}

/// Polls `done` every 20 ms for up to `limit`: another process's exit, or a file it writes,
/// come with no notification to wait on.
pub(super) fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
