//! The PROXY protocol against the real thing: HAProxy terminates TLS (a self-signed
//! certificate made with the openssl CLI) and forwards to the `http_hello` example started
//! with `--proxy-protocol`, with `send-proxy-v2`; a second frontend forwards plain TCP with
//! `send-proxy` (v1). A client (python3's ssl module) asks `/peer` through HAProxy and must
//! see its own address, with HAProxy's as the balancer.
//!
//! Needs `haproxy`, `openssl` and `python3` on the PATH (`.ci/run` installs the first two);
//! it fails, never skips, without them.

#[path = "common/examples.rs"]
mod examples;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use examples::Example;

/// How long HAProxy may take to listen.
const START: Duration = Duration::from_secs(10);

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[track_caller]
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A self-signed certificate for `localhost` and its key, in one PEM file as HAProxy takes
/// it; returns (that file, the certificate alone for the client to trust).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    let both = dir.join("site.pem");
    let pem = [fs::read(&cert).unwrap(), fs::read(&key).unwrap()].concat();
    fs::write(&both, pem).unwrap();
    (both, cert)
}

/// A port free now on 127.0.0.1 (for HAProxy, which cannot report one it picked).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The client: connects to `port` (with TLS trusting `ca`, or plain), asks `/peer`, and
/// prints `me ADDR` (its own address) then the response.
const CLIENT: &str = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
me = "%s:%d" % raw.getsockname()[:2]
s = raw
if ca != "-":
    s = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="localhost")
s.sendall(b"GET /peer HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print("me", me)
print(data.decode())
"#;

/// Asks `/peer` through HAProxy on `port`; returns the client's own address and the answer.
fn ask_peer(port: u16, ca: Option<&Path>) -> (String, String) {
    let ca = ca.map_or("-".into(), |p| p.display().to_string());
    let out = run(Command::new("python3")
        .args(["-c", CLIENT, &port.to_string(), &ca])
        .stdin(Stdio::null()));
    let text = String::from_utf8(out.stdout).unwrap();
    let (first, response) = text.split_once('\n').unwrap();
    let me = first.strip_prefix("me ").unwrap().to_string();
    (me, response.to_string())
}

#[test]
fn haproxy_relays_the_client_address_over_tls_with_v2_and_plain_with_v1() {
    let dir = std::env::temp_dir().join(format!("threadnet-haproxy-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let scratch = Scratch(dir);
    let (site, ca) = certificate(&scratch.0);

    let app = Example::spawn("http_hello", &["--addr", "127.0.0.1:0", "--proxy-protocol"]);
    let app_addr = app.listening();
    let (tls_port, plain_port) = (free_port(), free_port());
    let config = format!(
        "global
  maxconn 64
defaults
  mode tcp
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend tls
  bind 127.0.0.1:{tls_port} ssl crt {site}
  default_backend app_v2
frontend plain
  bind 127.0.0.1:{plain_port}
  default_backend app_v1
backend app_v2
  server app {app_addr} send-proxy-v2
backend app_v1
  server app {app_addr} send-proxy
",
        site = site.display()
    );
    let cfg = scratch.0.join("haproxy.cfg");
    fs::write(&cfg, config).unwrap();
    run(Command::new("haproxy").arg("-c").arg("-f").arg(&cfg));
    let haproxy = Killed(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn haproxy"),
    );
    // No channel reports that another process listens: try to connect, bounded.
    let start = Instant::now();
    for port in [tls_port, plain_port] {
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < START, "haproxy does not listen on {port}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    for (port, ca) in [(tls_port, Some(ca.as_path())), (plain_port, None)] {
        let (me, response) = ask_peer(port, ca);
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        let body = response.split_once("\r\n\r\n").unwrap().1;
        let mut lines = body.lines();
        // The client's own address, relayed through HAProxy's PROXY header.
        assert_eq!(lines.next(), Some(format!("peer {me}").as_str()), "{body}");
        // HAProxy's own connection to the server: on loopback, another port than the client's.
        let via = lines.next().unwrap().strip_prefix("proxied_by ").unwrap();
        assert!(via.starts_with("127.0.0.1:"), "{body}");
        assert_ne!(via, me);
    }
    drop(haproxy);
    drop(app);
}
