//! The `kv_server` example's expiry, measured from outside the process: TTLs set again and
//! again on one key must not pile up timers (each held a copy of the key: 200 000 `EXPIRE`s
//! on one key grew the server by 36 MiB), and keys must still expire on time.

#[path = "common/examples.rs"]
mod examples;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use examples::Example;

/// A minimal RESP client: commands out as arrays of bulk strings, replies read back raw.
struct Client {
    out: TcpStream,
    input: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let out = TcpStream::connect(addr).unwrap();
        out.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let input = BufReader::new(out.try_clone().unwrap());
        Client { out, input }
    }

    fn encode(args: &[&str], into: &mut Vec<u8>) {
        into.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            into.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }

    /// One reply line (a simple string, error, integer, or a bulk string's body).
    fn reply(&mut self) -> String {
        let mut line = String::new();
        self.input.read_line(&mut line).unwrap();
        if let Some(len) = line.strip_prefix('$') {
            let len: i64 = len.trim().parse().unwrap();
            if len < 0 {
                return "(nil)".to_string();
            }
            let mut body = vec![0; len as usize + 2];
            self.input.read_exact(&mut body).unwrap();
            body.truncate(len as usize);
            return String::from_utf8(body).unwrap();
        }
        line.trim_end().to_string()
    }

    fn call(&mut self, args: &[&str]) -> String {
        let mut buf = Vec::new();
        Client::encode(args, &mut buf);
        self.out.write_all(&buf).unwrap();
        self.reply()
    }

    /// Sends `count` copies of one command, pipelined in batches, and checks every reply.
    fn repeat(&mut self, args: &[&str], count: usize, expect: &str) {
        const BATCH: usize = 2000;
        let mut one = Vec::new();
        Client::encode(args, &mut one);
        let mut left = count;
        while left > 0 {
            let n = left.min(BATCH);
            self.out.write_all(&one.repeat(n)).unwrap();
            for _ in 0..n {
                assert_eq!(self.reply(), expect);
            }
            left -= n;
        }
    }
}

#[test]
fn ttls_set_again_and_again_leave_one_timer_and_keys_still_expire() {
    const EXPIRES: usize = 200_000;
    let kv = Example::spawn("kv_server", &["--addr", "127.0.0.1:0"]);
    let addr = kv.listening();
    let mut c = Client::connect(&addr);
    assert_eq!(c.call(&["SET", "k", "v"]), "+OK");
    // Warm up (allocator arenas, the wheel's slab, buffers) before the baseline.
    c.repeat(&["EXPIRE", "k", "1000"], 20_000, ":1");
    let before = kv.status("VmRSS");
    c.repeat(&["EXPIRE", "k", "1000"], EXPIRES, ":1");
    let set_ex = ["SET", "k", "v", "EX", "1000"];
    c.repeat(&set_ex, EXPIRES / 4, "+OK");
    let after = kv.status("VmRSS");
    let grown = after.saturating_sub(before);
    eprintln!("kv_server VmRSS: {before} KiB before, {after} KiB after {EXPIRES} EXPIREs");
    // The leak was ~190 bytes a command (36 MiB for 200 000): allow a few MiB of noise.
    assert!(
        grown < 4 * 1024,
        "{} EXPIREs and {} SET EX on one key grew the server by {grown} KiB",
        EXPIRES,
        EXPIRES / 4
    );

    // Expiry still works: a key with PX 200 is there, then gone without being read.
    assert_eq!(c.call(&["SET", "short", "v", "PX", "200"]), "+OK");
    assert_eq!(c.call(&["GET", "short"]), "v");
    // A TTL replaced by SET without one, or by EXPIRE, cancels the old deadline.
    assert_eq!(c.call(&["SET", "kept", "v", "PX", "100"]), "+OK");
    assert_eq!(c.call(&["SET", "kept", "w"]), "+OK");
    assert_eq!(c.call(&["SET", "later", "v", "PX", "100"]), "+OK");
    assert_eq!(c.call(&["EXPIRE", "later", "100"]), ":1");
    // KEEPTTL keeps it.
    assert_eq!(c.call(&["SET", "ttl", "v", "PX", "200"]), "+OK");
    assert_eq!(c.call(&["SET", "ttl", "w", "KEEPTTL"]), "+OK");
    let start = Instant::now();
    while c.call(&["DBSIZE"]) != ":3" {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "keys with PX 200 did not expire: {} keys left",
            c.call(&["DBSIZE"])
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(c.call(&["GET", "short"]), "(nil)");
    assert_eq!(c.call(&["GET", "ttl"]), "(nil)");
    assert_eq!(c.call(&["GET", "kept"]), "w");
    assert_eq!(c.call(&["TTL", "kept"]), ":-1");
    assert_eq!(c.call(&["GET", "later"]), "v");
    assert_eq!(c.call(&["EXISTS", "k"]), ":1");
}
