//! The `Resp` codec over real sockets, driven by a raw std client that writes RESP by hand and
//! parses the replies itself: every command of the `kv_server` example, inline commands, input
//! split into single bytes and merged into one write, and malformed input (answered with
//! `-ERR Protocol error: ...`, then the connection closes while other clients are served).
//!
//! The server is the example's own code, included as a module (`start` gives a handle the test
//! stops), so these tests run whatever `cargo test` target is selected.

mod common;
#[path = "../examples/kv_server.rs"]
#[allow(dead_code)]
mod kv_server;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{ends, ms, peer, recv};
use threadnet::testing::EmbeddedConnection;
use threadnet::{
    codec::{Command, ProtocolError, Reply, Resp, RespCommands},
    CloseReason, ConnOptions, Connection, Handler, TcpServer,
};

/// A reply as the test client parses it, independently of the codec.
#[derive(Debug, Clone, PartialEq, Eq)]
enum V {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<V>),
    NilArray,
}

fn bulk(s: &str) -> V {
    V::Bulk(s.as_bytes().to_vec())
}

fn simple(s: &str) -> V {
    V::Simple(s.to_string())
}

fn error(s: &str) -> V {
    V::Error(s.to_string())
}

/// A raw RESP client on a std `TcpStream`.
struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: impl std::net::ToSocketAddrs) -> Client {
        let stream = peer(addr);
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    /// Sends bytes exactly as given.
    fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends one command as an array of bulk strings and reads its reply.
    fn cmd(&mut self, args: &[&str]) -> V {
        self.raw(&encode(args));
        self.reply()
    }

    /// Sends one command whose arguments are any bytes and reads its reply.
    fn cmd_bytes(&mut self, args: &[&[u8]]) -> V {
        self.raw(&encode_bytes(args));
        self.reply()
    }

    fn reply(&mut self) -> V {
        read_value(&mut self.reader).unwrap_or_else(|e| panic!("reading a reply: {e}"))
    }

    /// True if the server closes the connection (EOF) with nothing more to read.
    fn at_eof(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => panic!("expected EOF, got {e}"),
        }
    }
}

fn encode(args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    encode_bytes(&args)
}

fn encode_bytes(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
    line.truncate(line.len() - 2);
    Ok(line)
}

fn read_value(r: &mut impl BufRead) -> io::Result<V> {
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(1);
    let n = || rest.parse::<i64>().unwrap();
    Ok(match kind {
        "+" => V::Simple(rest.to_string()),
        "-" => V::Error(rest.to_string()),
        ":" => V::Int(n()),
        "$" if n() < 0 => V::Nil,
        "$" => {
            let mut data = vec![0u8; n() as usize + 2];
            r.read_exact(&mut data)?;
            assert_eq!(&data[data.len() - 2..], b"\r\n");
            data.truncate(data.len() - 2);
            V::Bulk(data)
        }
        "*" if n() < 0 => V::NilArray,
        "*" => V::Array((0..n()).map(|_| read_value(r)).collect::<io::Result<_>>()?),
        _ => panic!("not a RESP reply: {line:?}"),
    })
}

/// A `kv_server` on a free port.
fn kv() -> threadnet::ServerHandle<RespCommands> {
    kv_server::start("127.0.0.1:0", 16, 64).unwrap()
}

/// The keys of a `KEYS` reply, sorted.
fn sorted(v: V) -> Vec<String> {
    let V::Array(items) = v else {
        panic!("not an array: {v:?}")
    };
    let mut keys: Vec<String> = items
        .into_iter()
        .map(|k| match k {
            V::Bulk(b) => String::from_utf8(b).unwrap(),
            other => panic!("not a bulk string: {other:?}"),
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn strings_ping_echo_and_errors() {
    let server = kv();
    let mut c = Client::connect(server.local_addr());
    assert_eq!(c.cmd(&["PING"]), simple("PONG"));
    assert_eq!(c.cmd(&["ping", "hi there"]), bulk("hi there"));
    assert_eq!(c.cmd(&["EcHo", "x"]), bulk("x"));
    assert_eq!(c.cmd(&["GET", "k"]), V::Nil);
    assert_eq!(c.cmd(&["SET", "k", "v1"]), simple("OK"));
    assert_eq!(c.cmd(&["get", "k"]), bulk("v1"));
    assert_eq!(c.cmd(&["SET", "k", "v2"]), simple("OK"));
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v2"));
    // Binary-safe keys and values.
    let value: &[u8] = b"a\r\nb\0c\xff";
    assert_eq!(c.cmd_bytes(&[b"SET", b"\0k\n", value]), simple("OK"));
    assert_eq!(c.cmd_bytes(&[b"GET", b"\0k\n"]), V::Bulk(value.to_vec()));
    // A large value, larger than the read buffer.
    let big = "z".repeat(200_000);
    assert_eq!(c.cmd(&["SET", "big", &big]), simple("OK"));
    assert_eq!(c.cmd(&["GET", "big"]), bulk(&big));

    assert_eq!(c.cmd(&["SET", "k", "v", "NX"]), V::Nil);
    assert_eq!(c.cmd(&["SET", "new", "v", "XX"]), V::Nil);
    assert_eq!(c.cmd(&["GET", "new"]), V::Nil);
    assert_eq!(c.cmd(&["SET", "new", "v", "nx"]), simple("OK"));
    assert_eq!(c.cmd(&["SET", "new", "w", "XX"]), simple("OK"));
    assert_eq!(c.cmd(&["GET", "new"]), bulk("w"));

    assert_eq!(
        c.cmd(&["GET"]),
        error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        c.cmd(&["get", "a", "b"]),
        error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        c.cmd(&["PING", "a", "b"]),
        error("ERR wrong number of arguments for 'ping' command")
    );
    assert_eq!(
        c.cmd(&["foo", "a", "b"]),
        error("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        c.cmd(&["x\r\ny"]),
        error("ERR unknown command 'x  y', with args beginning with: ")
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "BOGUS"]),
        error("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "NX", "XX"]),
        error("ERR syntax error")
    );
    assert_eq!(c.cmd(&["SET", "k", "v", "EX"]), error("ERR syntax error"));
    // The connection is still fine after error replies.
    assert_eq!(c.cmd(&["PING"]), simple("PONG"));
}

#[test]
fn del_exists_incr_keys_dbsize_flushall_config() {
    let server = kv();
    let mut c = Client::connect(server.local_addr());
    for k in ["a", "b", "key:1", "key:2", "key:10"] {
        assert_eq!(c.cmd(&["SET", k, "1"]), simple("OK"));
    }
    assert_eq!(c.cmd(&["EXISTS", "a", "a", "nope", "b"]), V::Int(3));
    assert_eq!(c.cmd(&["DEL", "a", "nope", "a"]), V::Int(1));
    assert_eq!(c.cmd(&["EXISTS", "a"]), V::Int(0));

    assert_eq!(c.cmd(&["INCR", "n"]), V::Int(1));
    assert_eq!(c.cmd(&["incr", "n"]), V::Int(2));
    assert_eq!(c.cmd(&["GET", "n"]), bulk("2"));
    assert_eq!(c.cmd(&["SET", "n", "-10"]), simple("OK"));
    assert_eq!(c.cmd(&["INCR", "n"]), V::Int(-9));
    let not_int = error("ERR value is not an integer or out of range");
    for bad in ["abc", "01", " 1", "1.5", "", "99999999999999999999"] {
        assert_eq!(c.cmd(&["SET", "s", bad]), simple("OK"));
        assert_eq!(c.cmd(&["INCR", "s"]), not_int, "{bad:?}");
    }
    assert_eq!(c.cmd(&["SET", "max", &i64::MAX.to_string()]), simple("OK"));
    assert_eq!(
        c.cmd(&["INCR", "max"]),
        error("ERR increment or decrement would overflow")
    );

    assert_eq!(
        sorted(c.cmd(&["KEYS", "key:*"])),
        ["key:1", "key:10", "key:2"]
    );
    assert_eq!(sorted(c.cmd(&["KEYS", "key:?"])), ["key:1", "key:2"]);
    assert_eq!(sorted(c.cmd(&["KEYS", "key:[^2]*"])), ["key:1", "key:10"]);
    assert_eq!(sorted(c.cmd(&["KEYS", "[a-c]"])), ["b"]);
    assert_eq!(sorted(c.cmd(&["KEYS", "nothing*"])), Vec::<String>::new());
    // A pattern that backtracks badly under naive recursion still answers at once.
    let long = "a".repeat(300);
    assert_eq!(c.cmd(&["SET", &long, "1"]), simple("OK"));
    let evil = "*a".repeat(40) + "b";
    assert_eq!(sorted(c.cmd(&["KEYS", &evil])), Vec::<String>::new());

    assert_eq!(c.cmd(&["DBSIZE"]), V::Int(8));
    assert_eq!(c.cmd(&["FLUSHALL"]), simple("OK"));
    assert_eq!(c.cmd(&["DBSIZE"]), V::Int(0));
    assert_eq!(c.cmd(&["GET", "b"]), V::Nil);
    assert_eq!(c.cmd(&["FLUSHALL", "ASYNC"]), simple("OK"));
    assert_eq!(c.cmd(&["FLUSHALL", "NOW"]), error("ERR syntax error"));

    let config = |c: &mut Client, p: &str| c.cmd(&["CONFIG", "GET", p]);
    assert_eq!(
        config(&mut c, "save"),
        V::Array(vec![bulk("save"), bulk("")])
    );
    assert_eq!(
        config(&mut c, "APPENDONLY"),
        V::Array(vec![bulk("appendonly"), bulk("no")])
    );
    assert_eq!(
        config(&mut c, "*"),
        V::Array(vec![bulk("save"), bulk(""), bulk("appendonly"), bulk("no")])
    );
    assert_eq!(config(&mut c, "maxmemory"), V::Array(vec![]));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "save", ""]),
        error("ERR unknown subcommand 'SET'. Try CONFIG HELP.")
    );
}

#[test]
fn expiry_ttl_and_lazy_removal() {
    let server = kv();
    let mut c = Client::connect(server.local_addr());
    assert_eq!(c.cmd(&["TTL", "k"]), V::Int(-2));
    assert_eq!(c.cmd(&["SET", "k", "v"]), simple("OK"));
    assert_eq!(c.cmd(&["TTL", "k"]), V::Int(-1));
    assert_eq!(c.cmd(&["PTTL", "k"]), V::Int(-1));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100"]), V::Int(1));
    assert_eq!(c.cmd(&["TTL", "k"]), V::Int(100));
    let V::Int(pttl) = c.cmd(&["PTTL", "k"]) else {
        panic!()
    };
    assert!((99_000..=100_000).contains(&pttl), "{pttl}");
    assert_eq!(c.cmd(&["EXPIRE", "missing", "100"]), V::Int(0));
    assert_eq!(
        c.cmd(&["EXPIRE", "k", "soon"]),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["EXPIRE", "k", &i64::MAX.to_string()]),
        error("ERR invalid expire time in 'expire' command")
    );
    // INCR keeps the TTL; a plain SET drops it; KEEPTTL keeps it.
    assert_eq!(c.cmd(&["SET", "n", "1", "EX", "50"]), simple("OK"));
    assert_eq!(c.cmd(&["INCR", "n"]), V::Int(2));
    assert_eq!(c.cmd(&["TTL", "n"]), V::Int(50));
    assert_eq!(c.cmd(&["SET", "n", "1", "KEEPTTL"]), simple("OK"));
    assert_eq!(c.cmd(&["TTL", "n"]), V::Int(50));
    assert_eq!(c.cmd(&["SET", "n", "1"]), simple("OK"));
    assert_eq!(c.cmd(&["TTL", "n"]), V::Int(-1));
    // EXPIRE with a deadline already past deletes the key.
    assert_eq!(c.cmd(&["EXPIRE", "n", "0"]), V::Int(1));
    assert_eq!(c.cmd(&["EXISTS", "n"]), V::Int(0));
    let invalid = error("ERR invalid expire time in 'set' command");
    assert_eq!(c.cmd(&["SET", "x", "v", "EX", "0"]), invalid);
    assert_eq!(c.cmd(&["SET", "x", "v", "PX", "-5"]), invalid);
    assert_eq!(
        c.cmd(&["SET", "x", "v", "EX", "9223372036854775807"]),
        invalid
    );
    assert_eq!(
        c.cmd(&["SET", "x", "v", "EX", "ten"]),
        error("ERR value is not an integer or out of range")
    );

    // Keys that expire: removed at their deadline by the timing wheel, untouched, and absent
    // to every command from then on. A key given a new deadline (or none) in the meantime is
    // not removed by its old timer.
    assert_eq!(c.cmd(&["FLUSHALL"]), simple("OK"));
    for k in ["get", "exists", "ttl", "keys", "incr", "setnx", "del"] {
        assert_eq!(c.cmd(&["SET", k, "5", "PX", "50"]), simple("OK"));
    }
    assert_eq!(c.cmd(&["SET", "stays", "1"]), simple("OK"));
    assert_eq!(c.cmd(&["SET", "reset", "old", "PX", "50"]), simple("OK"));
    assert_eq!(c.cmd(&["SET", "reset", "new"]), simple("OK"));
    assert_eq!(c.cmd(&["SET", "extended", "1", "PX", "50"]), simple("OK"));
    assert_eq!(c.cmd(&["EXPIRE", "extended", "100"]), V::Int(1));
    assert_eq!(c.cmd(&["DBSIZE"]), V::Int(10));
    // Time itself is what is tested here: wait for the deadlines to pass and the wheel to run.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while c.cmd(&["DBSIZE"]) != V::Int(3) {
        assert!(
            std::time::Instant::now() < until,
            "the wheel never expired the keys"
        );
        thread::sleep(ms(10));
    }
    assert_eq!(c.cmd(&["GET", "get"]), V::Nil);
    assert_eq!(c.cmd(&["EXISTS", "exists"]), V::Int(0));
    assert_eq!(c.cmd(&["TTL", "ttl"]), V::Int(-2));
    assert_eq!(
        c.cmd(&["INCR", "incr"]),
        V::Int(1),
        "an expired value is not incremented"
    );
    assert_eq!(c.cmd(&["SET", "setnx", "new", "NX"]), simple("OK"));
    assert_eq!(
        c.cmd(&["DEL", "del"]),
        V::Int(0),
        "an expired key is not counted"
    );
    assert_eq!(c.cmd(&["GET", "reset"]), bulk("new"));
    assert_eq!(c.cmd(&["TTL", "extended"]), V::Int(100));
    assert_eq!(
        sorted(c.cmd(&["KEYS", "*"])),
        ["extended", "incr", "reset", "setnx", "stays"]
    );
    assert_eq!(c.cmd(&["TTL", "incr"]), V::Int(-1));
}

#[test]
fn quit_replies_ok_then_closes_and_ignores_what_follows() {
    let server = kv();
    let mut c = Client::connect(server.local_addr());
    assert_eq!(c.cmd(&["SET", "a", "1"]), simple("OK"));
    // QUIT and a command after it in the same write: the command is not run.
    let mut both = encode(&["QUIT"]);
    both.extend(encode(&["SET", "a", "2"]));
    c.raw(&both);
    assert_eq!(c.reply(), simple("OK"));
    assert!(c.at_eof(), "the connection closes after QUIT");
    let mut other = Client::connect(server.local_addr());
    assert_eq!(other.cmd(&["GET", "a"]), bulk("1"));
}

#[test]
fn inline_commands() {
    let server = kv();
    let mut c = Client::connect(server.local_addr());
    c.raw(b"PING\r\n");
    assert_eq!(c.reply(), simple("PONG"));
    // `\n` alone, tabs and runs of spaces, blank lines skipped.
    c.raw(b"\r\n\n  set\tk   hello \n\r\nget k\r\nEXISTS k k\n");
    assert_eq!(c.reply(), simple("OK"));
    assert_eq!(c.reply(), bulk("hello"));
    assert_eq!(c.reply(), V::Int(2));
    // Inline and array commands mixed.
    let mut mixed = b"INCR n\r\n".to_vec();
    mixed.extend(encode(&["INCR", "n"]));
    mixed.extend_from_slice(b"INCR n\r\n");
    c.raw(&mixed);
    assert_eq!(c.reply(), V::Int(1));
    assert_eq!(c.reply(), V::Int(2));
    assert_eq!(c.reply(), V::Int(3));
    // Quotes are not interpreted (documented): `"a b"` is two arguments.
    c.raw(b"ECHO \"a b\"\r\n");
    assert_eq!(
        c.reply(),
        error("ERR wrong number of arguments for 'echo' command")
    );
}

#[test]
fn commands_sent_one_byte_at_a_time() {
    let server = kv();
    let mut c = Client::connect(server.local_addr());
    let mut wire = encode(&["SET", "k", "split\r\nvalue"]);
    wire.extend_from_slice(b"GET k\r\n");
    wire.extend(encode(&["INCR", "n"]));
    for b in &wire {
        // NODELAY is on: every byte leaves in its own segment.
        c.raw(std::slice::from_ref(b));
    }
    assert_eq!(c.reply(), simple("OK"));
    assert_eq!(c.reply(), bulk("split\r\nvalue"));
    assert_eq!(c.reply(), V::Int(1));
}

#[test]
fn pipelined_commands_in_one_write() {
    let server = kv();
    let mut c = Client::connect(server.local_addr());
    let n = 2000;
    let mut wire = Vec::new();
    for i in 0..n {
        wire.extend(encode(&["SET", &format!("k{i}"), &format!("v{i}")]));
        wire.extend(encode(&["GET", &format!("k{i}")]));
        wire.extend_from_slice(b"INCR counter\r\n");
    }
    // Write from another thread: the replies flow back while the requests still go out.
    let mut writer = c.stream.try_clone().unwrap();
    let sender = thread::spawn(move || writer.write_all(&wire));
    for i in 0..n {
        assert_eq!(c.reply(), simple("OK"));
        assert_eq!(c.reply(), bulk(&format!("v{i}")));
        assert_eq!(c.reply(), V::Int(i as i64 + 1));
    }
    sender.join().unwrap().unwrap();
    assert_eq!(c.cmd(&["DBSIZE"]), V::Int(n as i64 + 1));
}

#[test]
fn many_connections_share_one_store() {
    let server = kv();
    let addr = server.local_addr().as_inet().unwrap();
    let per_client = 500;
    let clients: Vec<_> = (0..8)
        .map(|t| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut wire = Vec::new();
                for i in 0..per_client {
                    wire.extend(encode(&["INCR", "shared"]));
                    wire.extend(encode(&["SET", &format!("c{t}:{i}"), "x"]));
                }
                c.raw(&wire);
                for _ in 0..per_client {
                    assert!(matches!(c.reply(), V::Int(_)));
                    assert_eq!(c.reply(), simple("OK"));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let mut c = Client::connect(addr);
    assert_eq!(
        c.cmd(&["GET", "shared"]),
        bulk(&(8 * per_client).to_string())
    );
    assert_eq!(c.cmd(&["DBSIZE"]), V::Int(8 * per_client + 1));
}

/// Sends `bad` after a good command on a fresh connection: the good command is answered, then
/// the protocol error, then the connection closes. Returns the error text.
fn protocol_error_of(addr: SocketAddr, bad: &[u8]) -> String {
    let mut c = Client::connect(addr);
    let mut wire = encode(&["PING"]);
    wire.extend_from_slice(bad);
    c.raw(&wire);
    assert_eq!(c.reply(), simple("PONG"));
    let V::Error(e) = c.reply() else {
        panic!("{}: expected an error reply", bad.escape_ascii())
    };
    assert!(
        ends(&c.stream),
        "{}: connection not closed",
        bad.escape_ascii()
    );
    e
}

#[test]
fn malformed_input_gets_a_protocol_error_and_the_connection_closes() {
    let server = kv();
    let addr = server.local_addr().as_inet().unwrap();
    // A client connected before, and served after, every bad one.
    let mut good = Client::connect(addr);
    assert_eq!(good.cmd(&["SET", "k", "v"]), simple("OK"));

    let inline_too_long = vec![b'a'; 70 * 1024];
    let cases: &[(&[u8], &str)] = &[
        (b"*1\r\n:5\r\n", "ERR Protocol error: expected '$', got ':'"),
        (b"*2\r\n$3\r\nGET\r\n+k\r\n", "ERR Protocol error: expected '$', got '+'"),
        (b"*x\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*-7\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$abc\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$-2\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$99999999999999999999999\r\n", "ERR Protocol error: invalid bulk length"),
        (
            b"*1\r\n$536870913\r\n",
            "ERR Protocol error: invalid bulk length (536870913 bytes is over the limit of 536870912)",
        ),
        (
            b"*1048577\r\n",
            "ERR Protocol error: invalid multibulk length (1048577 arguments is over the limit of 1048576)",
        ),
        (
            b"*1\r\n$4\r\nPINGxx",
            "ERR Protocol error: bulk string of 4 bytes is not followed by CRLF",
        ),
        (&inline_too_long, "ERR Protocol error: too big inline request (over 65536 bytes)"),
    ];
    for &(bad, want) in cases {
        assert_eq!(protocol_error_of(addr, bad), want);
        assert_eq!(good.cmd(&["GET", "k"]), bulk("v"), "after {want}");
    }
    // The limits answer right after the header: the announced payload is never awaited (and,
    // the codec's unit tests show, never allocated).
    drop(good);
    assert!(common::wait_until(Duration::from_secs(5), || server
        .connections()
        .is_empty()));
}

#[test]
fn a_protocol_error_is_answered_even_with_more_input_buffered() {
    let server = kv();
    let mut c = Client::connect(server.local_addr());
    // The error and 100 KiB more in one write: the reply is gathered while input is buffered,
    // and must still reach the peer before the FIN, not be lost to a reset.
    let mut wire = b"*1\r\n$x\r\n".to_vec();
    wire.extend(std::iter::repeat(b'?').take(100 * 1024));
    let mut writer = c.stream.try_clone().unwrap();
    let sender = thread::spawn(move || writer.write_all(&wire));
    assert_eq!(c.reply(), error("ERR Protocol error: invalid bulk length"));
    assert!(c.at_eof());
    // The server read (and discarded) the rest until its deadline: the write normally
    // completes, but a slow machine may see it cut off by the forced close, which is fine.
    let _ = sender.join().unwrap();
}

/// Records why each connection closed.
struct Echo(mpsc::Sender<String>);

impl Handler<Resp> for Echo {
    fn on_message(&mut self, conn: &Connection<Resp>, req: Result<Vec<Vec<u8>>, ProtocolError>) {
        match req {
            Ok(args) => {
                let _ = conn.send(Reply::Array(args.into_iter().map(Reply::Bulk).collect()));
            }
            Err(e) => {
                let _ = conn.send(e.reply());
                conn.shutdown(Duration::from_secs(1));
            }
        }
    }

    fn on_close(&mut self, _: &Connection<Resp>, reason: &CloseReason) {
        let _ = self.0.send(reason.to_string());
    }
}

#[test]
fn max_frame_length_sets_the_bulk_limit_and_closes_gracefully() {
    let (tx, rx) = mpsc::channel();
    let server = TcpServer::builder()
        .options(ConnOptions::new().max_frame_length(8))
        .start(Resp::new(), move |_: &Connection<Resp>| Echo(tx.clone()))
        .unwrap();
    let mut c = Client::connect(server.local_addr());
    assert_eq!(
        c.cmd(&["ECHO", "12345678"]),
        V::Array(vec![bulk("ECHO"), bulk("12345678")])
    );
    c.raw(b"*2\r\n$4\r\nECHO\r\n$9\r\n");
    assert_eq!(
        c.reply(),
        error("ERR Protocol error: invalid bulk length (9 bytes is over the limit of 8)")
    );
    assert!(c.at_eof());
    drop(c);
    // Reply, FIN, the peer's EOF: a graceful close, not an error.
    assert_eq!(recv(&rx), "shut down");
}

#[test]
fn eof_inside_a_command_is_an_error_and_others_are_served() {
    let (tx, rx) = mpsc::channel();
    let server = TcpServer::builder()
        .start(Resp::new(), move |_: &Connection<Resp>| Echo(tx.clone()))
        .unwrap();
    let mut other = Client::connect(server.local_addr());
    let mut c = Client::connect(server.local_addr());
    c.raw(b"*2\r\n$4\r\nECHO\r\n$5\r\nab");
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(c.at_eof());
    let reason = recv(&rx);
    assert!(
        reason.contains("stream ended inside a bulk string"),
        "{reason}"
    );
    assert_eq!(other.cmd(&["PING"]), V::Array(vec![bulk("PING")]));
}

#[test]
fn a_command_begun_in_a_pipelined_batch_then_trickled_is_timed_from_the_wait() {
    // The frame timeout of a command whose first bytes came with the previous command: its
    // clock starts when the server has to wait on the socket for the rest (not per command of
    // a batch), and the trickle is closed at the limit, the first command answered.
    const LIMIT: Duration = Duration::from_millis(400);
    let (tx, rx) = mpsc::channel();
    let options = ConnOptions::new().frame_timeout(LIMIT).on_event(move |e| {
        if let threadnet::events::ConnEvent::Closed { reason, .. } = e {
            let _ = tx.send(reason.to_string());
        }
    });
    let server = kv_server::start_with("127.0.0.1:0", 1, 8, options).unwrap();
    let mut c = Client::connect(server.local_addr());
    // A whole SET, the first bytes of a GET, in one write.
    let mut batch = encode(&["SET", "k", "v"]);
    let get = encode(&["GET", "k"]);
    batch.extend_from_slice(&get[..5]);
    let start = std::time::Instant::now();
    c.raw(&batch);
    assert_eq!(c.reply(), simple("OK"));
    // The rest a byte every 50 ms: 18 bytes, 900 ms, past the limit.
    let mut reason = None;
    for b in &get[5..] {
        if c.stream.write_all(&[*b]).is_err() {
            break;
        }
        if let Ok(r) = rx.recv_timeout(ms(50)) {
            reason = Some(r);
            break;
        }
    }
    let reason = reason.unwrap_or_else(|| recv(&rx));
    let took = start.elapsed();
    assert!(reason.contains("took too long"), "{reason}");
    assert!(took >= LIMIT, "closed after {took:?}, before the limit");
    assert!(c.at_eof());
    server.stop(Duration::from_secs(2));
}

/// Records each command and answers it with its arguments' count.
struct Recorder(Arc<Mutex<Vec<Command>>>);

impl Handler<RespCommands> for Recorder {
    fn on_message(&mut self, conn: &Connection<RespCommands>, msg: Result<Command, ProtocolError>) {
        let cmd = msg.expect("no protocol error");
        let _ = conn.send(Reply::Integer(cmd.len() as i64));
        self.0.lock().unwrap().push(cmd);
    }
}

#[test]
fn pipelined_commands_arrive_in_order_however_the_bytes_are_split() {
    // `RespCommands` through a connection's read loop (an `EmbeddedConnection`), the input
    // cut in two at every byte: whole commands, commands cut by the end of a read, commands
    // past the inline storage, an inline command.
    let commands: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"key:__rand_int__", b"xxx"],
        vec![b"GET", b"key:__rand_int__"],
        vec![b"SET", b"k", &[b'v'; 200]],
        (0..12).map(|_| &b"many"[..]).collect(),
        vec![b"PING"],
    ];
    let mut bytes = Vec::new();
    for c in &commands {
        bytes.extend(encode_bytes(c));
    }
    bytes.extend_from_slice(b"ECHO inline\r\n");
    let want_replies: Vec<u8> = commands
        .iter()
        .map(|c| c.len())
        .chain([2])
        .flat_map(|n| format!(":{n}\r\n").into_bytes())
        .collect();
    for cut in 0..=bytes.len() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        let e = EmbeddedConnection::new(
            RespCommands::new(),
            move |_: &_| Recorder(log2),
            ConnOptions::new(),
        );
        e.write_inbound(&bytes[..cut]);
        e.write_inbound(&bytes[cut..]);
        let got = std::mem::take(&mut *log.lock().unwrap());
        assert_eq!(got.len(), commands.len() + 1, "cut {cut}");
        for (cmd, want) in got.iter().zip(&commands) {
            assert_eq!(cmd, want, "cut {cut}");
        }
        assert_eq!(got[commands.len()], ["ECHO", "inline"]);
        assert_eq!(e.read_outbound(), want_replies, "cut {cut}");
    }
}
