//! What the harness's tests share: a server binary started on a free loopback port.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server binary started for one test with `--addr 127.0.0.1:0`, killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens, from its first line (`listening on ADDR`).
    pub addr: String,
}

impl Server {
    /// Starts `bin` and waits for its `listening on ADDR` line.
    pub fn start(bin: &str) -> Server {
        let mut child = Command::new(bin)
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect(&line)
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Server { child, addr }
    }

    /// The server's process id.
    #[allow(dead_code)] // not every test file needs it
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client connection with a 5 s read timeout, so that a test cannot hang.
    #[allow(dead_code)] // not every test file connects by hand
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
