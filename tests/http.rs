//! The `Http1` codec and `http::serve` over real sockets: raw std clients for keep-alive,
//! pipelining, HEAD, bodies, `100 Continue`, closing, and every kind of refused request; then
//! the real `curl` binary.
//!
//! Every test runs the `http_hello` example's own server: the example file is compiled in as a
//! module (`#[path]` below), and its `start` is what its `main` calls. So the routes under test
//! are the example's, in-process, with no dependence on where cargo put the example binary or
//! on whether it was built (`cargo test --test http` does not build examples).

mod common;

#[path = "../examples/http_hello.rs"]
#[allow(dead_code)]
mod http_hello;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ends, peer, wait_until, WAIT};
use http_hello::{JSON, PAGE};
use threadnet::http::{self, Http1, Request, Response};
use threadnet::{Addr, ServerHandle, TcpServer};

fn server() -> ServerHandle<Http1> {
    http_hello::start("127.0.0.1:0").expect("start http_hello")
}

/// One response as a raw client sees it.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn line(r: &mut impl BufRead) -> String {
    let mut l = String::new();
    r.read_line(&mut l).expect("read a line");
    assert!(l.ends_with("\r\n"), "line without CRLF: {l:?}");
    l.truncate(l.len() - 2);
    l
}

/// Reads one response; `head` says it answers a HEAD request (no body follows).
fn read_response(r: &mut impl BufRead, head: bool) -> Resp {
    let status_line = line(r);
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line:?}");
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).expect("status");
    let mut headers = Vec::new();
    loop {
        let l = line(r);
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(": ").expect("header field");
        headers.push((n.to_string(), v.to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status < 200 || status == 204 || status == 304 {
        return resp;
    }
    if resp.header("transfer-encoding") == Some("chunked") {
        loop {
            let size = usize::from_str_radix(&line(r), 16).expect("chunk size");
            if size == 0 {
                assert_eq!(line(r), "", "no trailers expected");
                break;
            }
            let at = resp.body.len();
            resp.body.resize(at + size, 0);
            r.read_exact(&mut resp.body[at..]).unwrap();
            assert_eq!(line(r), "");
        }
    } else {
        let len: usize = resp
            .header("content-length")
            .expect("Content-Length")
            .parse()
            .unwrap();
        resp.body.resize(len, 0);
        r.read_exact(&mut resp.body).unwrap();
    }
    resp
}

/// A raw client: the stream (for writing) and a buffered reader on it.
struct Client {
    s: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn new(addr: Addr) -> Client {
        let s = peer(addr);
        let r = BufReader::new(s.try_clone().unwrap());
        Client { s, r }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    fn response(&mut self) -> Resp {
        read_response(&mut self.r, false)
    }

    /// True if the server closes the connection now: EOF with no more bytes.
    fn eof(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.r.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => panic!("expected EOF, got {e} after {rest:?}"),
        }
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// A fresh client gets `/json` answered: the server still serves everyone else.
fn still_serves(server: &ServerHandle<Http1>) {
    let mut c = Client::new(server.local_addr());
    c.send(&get("/json"));
    let r = c.response();
    assert_eq!((r.status, r.body.as_slice()), (200, JSON.as_bytes()));
}

/// Sends `request`, expects `status` with `Connection: close`, then EOF; then checks that the
/// server serves another client and that the refused connection is gone.
fn refused(request: &[u8], status: u16) {
    let server = server();
    let mut c = Client::new(server.local_addr());
    c.send(request);
    let r = c.response();
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.eof(), "the connection must close after {status}");
    still_serves(&server);
    drop(c);
    assert!(wait_until(WAIT, || server.connections().is_empty()));
}

#[test]
fn keep_alive_two_requests_on_one_connection() {
    let server = server();
    let mut c = Client::new(server.local_addr());
    c.send(&get("/"));
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-length"), Some(&*PAGE.len().to_string()));
    assert_eq!(r.header("connection"), None);
    assert_eq!(r.body, PAGE.as_bytes());
    c.send(&get("/json"));
    let r = c.response();
    assert_eq!(r.body, JSON.as_bytes());
    assert_eq!(server.metrics().connections_accepted, 1);
}

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order() {
    let server = server();
    let mut c = Client::new(server.local_addr());
    let mut burst = Vec::new();
    for i in 0..20 {
        match i % 4 {
            0 => burst.extend(get("/")),
            1 => burst.extend(get("/json")),
            2 => burst.extend(
                format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{i:02}")
                    .into_bytes(),
            ),
            _ => burst.extend(get("/chunked")),
        }
    }
    burst.extend(get("/nowhere"));
    c.send(&burst);
    for i in 0..20 {
        let r = c.response();
        assert_eq!(r.status, 200, "response {i}");
        let want: Vec<u8> = match i % 4 {
            0 => PAGE.into(),
            1 => JSON.into(),
            2 => format!("{i:02}").into(),
            _ => "chunked hello from threadnet\n".into(),
        };
        assert_eq!(r.body, want, "response {i}");
    }
    assert_eq!(c.response().status, 404);
}

#[test]
fn head_has_content_length_and_no_body() {
    let server = server();
    let mut c = Client::new(server.local_addr());
    c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = read_response(&mut c.r, true);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(&*PAGE.len().to_string()));
    // Had a body been sent, this would read it as the next status line.
    c.send(&get("/json"));
    assert_eq!(c.response().body, JSON.as_bytes());
    c.send(b"HEAD /chunked HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = read_response(&mut c.r, true);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    c.send(&get("/json"));
    assert_eq!(c.response().body, JSON.as_bytes());
}

#[test]
fn post_with_content_length() {
    let server = server();
    let mut c = Client::new(server.local_addr());
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    c.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(&body);
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, body);
}

#[test]
fn chunked_upload_whole_and_one_byte_at_a_time() {
    let server = server();
    let request = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n";
    let mut c = Client::new(server.local_addr());
    c.send(request);
    assert_eq!(c.response().body, b"hello, world");
    for &b in request.iter() {
        c.send(&[b]);
    }
    assert_eq!(c.response().body, b"hello, world");
}

#[test]
fn expect_100_continue_gets_an_interim_response_before_the_body() {
    let server = server();
    let mut c = Client::new(server.local_addr());
    c.send(b"PUT /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    // The body has not been sent: the server must answer first.
    let interim = c.response();
    assert_eq!(interim.status, 100);
    assert!(interim.headers.is_empty(), "{interim:?}");
    c.send(b"body");
    let r = c.response();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"body"[..]));
    // A body over the limit is refused without asking for it.
    c.send(
        b"PUT /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 9000000\r\n\r\n",
    );
    assert_eq!(c.response().status, 413);
    assert!(c.eof());
}

#[test]
fn connection_close_gets_the_response_then_eof() {
    let server = server();
    let mut c = Client::new(server.local_addr());
    // The second request comes after the one that closes: it is not answered.
    let mut burst = b"GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec();
    burst.extend(get("/"));
    c.send(&burst);
    let r = c.response();
    assert_eq!(r.body, JSON.as_bytes());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.eof());
    drop(c);
    assert!(wait_until(WAIT, || server.connections().is_empty()));
}

#[test]
fn http10_closes_unless_keep_alive() {
    let server = server();
    let mut c = Client::new(server.local_addr());
    c.send(b"GET /chunked HTTP/1.0\r\n\r\n");
    let r = c.response();
    // No chunks for HTTP/1.0: the same body with Content-Length.
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body, b"chunked hello from threadnet\n");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.eof());

    let mut c = Client::new(server.local_addr());
    for _ in 0..2 {
        c.send(b"GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.response();
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert_eq!(r.body, JSON.as_bytes());
    }
}

#[test]
fn malformed_request_line_is_400() {
    refused(b"GARBAGE\r\n\r\n", 400);
}

#[test]
fn header_section_over_8_kib_is_431() {
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    refused(big.as_bytes(), 431);
}

#[test]
fn more_than_100_headers_is_431() {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..100 {
        req.push_str(&format!("X-{i}: {i}\r\n"));
    }
    req.push_str("\r\n");
    refused(req.as_bytes(), 431);
}

#[test]
fn body_over_limit_is_413_without_sending_it() {
    // The body is never sent: the answer comes from the head alone.
    refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 8388609\r\n\r\n",
        413,
    );
    refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n",
        413,
    );
}

#[test]
fn transfer_encoding_gzip_is_501() {
    refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
}

#[test]
fn content_length_with_transfer_encoding_is_400() {
    refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn other_refusals() {
    refused(b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
    refused(b"GET / HTTP/1.1\r\n\r\n", 400); // no Host
    refused(b"GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400);
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    refused(long.as_bytes(), 414);
}

#[test]
fn an_invalid_host_is_400() {
    // RFC 9112 §3.2: a server MUST answer 400 to an invalid Host value, as to a missing one.
    for host in ["x y", "a/b", "u@h", "h:8o", "[::1"] {
        refused(
            format!("GET /json HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
            400,
        );
    }
}

#[test]
fn http_1_2_is_served_as_http_1_1() {
    // RFC 9110 §6.2: a higher minor version is processed as the highest one implemented. The
    // answer says HTTP/1.1 (read_response checks), and the connection stays open as in 1.1.
    let server = server();
    let mut c = Client::new(server.local_addr());
    for _ in 0..2 {
        c.send(b"GET /json HTTP/1.2\r\nHost: t\r\n\r\n");
        let r = c.response();
        assert_eq!((r.status, r.body.as_slice()), (200, JSON.as_bytes()));
        assert_eq!(r.header("connection"), None);
    }
    assert_eq!(server.metrics().connections_accepted, 1);
}

#[test]
fn a_bare_lf_in_chunked_framing_is_400() {
    // A chunk-size line ended by LF alone: refused rather than read one way here and another
    // by a proxy in front (request smuggling). The head's lines may end with LF alone.
    refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\nhello\r\n0\r\n\r\n",
        400,
    );
    refused(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\n0\r\n\r\n",
        400,
    );
    let server = server();
    let mut c = Client::new(server.local_addr());
    c.send(b"POST /echo HTTP/1.1\nHost: t\nTransfer-Encoding: chunked\n\n5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(c.response().body, b"hello");
}

#[test]
fn refused_request_followed_by_more_input_still_reads_its_response() {
    // A client that goes on sending (a body the server refused) while the 400 is on its way.
    // The server answers, sends its FIN, then reads and throws away the rest until the
    // client's EOF: every write succeeds, and the client reads the 400 and a clean end. A
    // server that closed at once would reset the connection: the writes would fail with
    // EPIPE or ECONNRESET, and a client stack may drop the unread response.
    let server = server();
    let mut c = Client::new(server.local_addr());
    c.send(b"BAD\r\n\r\n");
    let chunk = vec![b'x'; 128 * 1024];
    for i in 0..64 {
        if let Err(e) = c.s.write_all(&chunk) {
            panic!("write {i} after the refused request failed: {e}");
        }
    }
    c.s.shutdown(std::net::Shutdown::Write).unwrap();
    let r = c.response();
    assert_eq!(r.status, 400);
    assert!(c.eof());
    still_serves(&server);
}

#[test]
fn bad_clients_do_not_disturb_a_kept_alive_one() {
    let server = server();
    let mut good = Client::new(server.local_addr());
    good.send(&get("/json"));
    assert_eq!(good.response().status, 200);
    for bad in [
        &b"\x00\x01\x02\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",
    ] {
        let mut c = Client::new(server.local_addr());
        c.send(bad);
        assert_eq!(c.response().status, 400);
        assert!(c.eof());
    }
    // A client that disappears in the middle of a request.
    let c = Client::new(server.local_addr());
    (&c.s)
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    drop(c);
    good.send(&get("/"));
    assert_eq!(good.response().body, PAGE.as_bytes());
    assert!(wait_until(WAIT, || server.connections().len() == 1));
}

#[test]
fn a_panicking_handler_answers_500_and_closes_only_that_connection() {
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(
            Http1::new(),
            http::serve(|req: &Request| {
                if req.path() == "/panic" {
                    panic!("handler bug");
                }
                Response::text("fine")
            }),
        )
        .unwrap();
    let mut other = Client::new(server.local_addr());
    other.send(&get("/"));
    assert_eq!(other.response().body, b"fine");
    let mut c = Client::new(server.local_addr());
    c.send(&get("/panic"));
    let r = c.response();
    assert_eq!(r.status, 500);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.eof());
    other.send(&get("/"));
    assert_eq!(other.response().body, b"fine");
}

#[test]
fn stop_with_idle_keep_alive_connections() {
    let server = server();
    let mut c = Client::new(server.local_addr());
    c.send(&get("/"));
    assert_eq!(c.response().status, 200);
    // An idle kept-alive connection does not hold the server up: stop shuts it down.
    server.stop(Duration::from_secs(2));
    assert!(ends(&c.s));
}

// ---- curl ----------------------------------------------------------------------------------

/// Runs the real `curl` with `args`; fails the test (it does not skip) if curl is missing.
fn curl(args: &[&str]) -> std::process::Output {
    let out = match Command::new("curl").args(args).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "these tests run the `curl` binary, which could not be started ({e}): install curl \
             (for example `apt-get install curl`)"
        ),
    };
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn url(server: &ServerHandle<Http1>, path: &str) -> String {
    format!("http://{}{path}", server.local_addr())
}

#[test]
fn curl_gets_the_page_and_the_json() {
    let server = server();
    let out = curl(&["-sS", "--fail", &url(&server, "/")]);
    assert_eq!(out.stdout, PAGE.as_bytes());
    let out = curl(&["-sS", "--fail", &url(&server, "/json")]);
    assert_eq!(out.stdout, JSON.as_bytes());
    let out = curl(&["-sS", "-I", &url(&server, "/")]);
    let head = String::from_utf8(out.stdout).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", PAGE.len())),
        "{head}"
    );
}

#[test]
fn curl_keeps_the_connection_alive() {
    let server = server();
    let out = curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{num_connects}\n",
        &url(&server, "/"),
        &url(&server, "/json"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n0\n");
    assert_eq!(server.metrics().connections_accepted, 1);
}

#[test]
fn curl_http11_several_urls() {
    let server = server();
    let out = curl(&[
        "-sS",
        "--fail",
        "--http1.1",
        &url(&server, "/json"),
        &url(&server, "/chunked"),
        &url(&server, "/json"),
        &url(&server, "/"),
    ]);
    let want = format!("{JSON}chunked hello from threadnet\n{JSON}{PAGE}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    assert_eq!(server.metrics().connections_accepted, 1);
}

/// A file in the temporary directory, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "threadnet-http-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn curl_chunked_upload_is_echoed() {
    let server = server();
    // 1 MiB less 1 KiB: within http_hello's body limit (the default, 1 MiB); curl asks for
    // `100 Continue` on its own only above 1 MiB, so it is told to.
    let data: Vec<u8> = (0..1023 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let file = TempFile::new(&data);
    let at = format!("@{}", file.0.display());
    let out = curl(&[
        "-sS",
        "--fail",
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &at,
        &url(&server, "/echo"),
    ]);
    assert!(
        out.stdout == data,
        "echo differs ({} bytes back)",
        out.stdout.len()
    );
    // And with Content-Length, as curl sends by default.
    let out = curl(&[
        "-sS",
        "--fail",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &at,
        &url(&server, "/echo"),
    ]);
    assert!(
        out.stdout == data,
        "echo differs ({} bytes back)",
        out.stdout.len()
    );
}
