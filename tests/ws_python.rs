//! WebSocket against an independent client: the Python `websockets` package (PyPI), which
//! `.ci/run` installs into `target/ws-venv`. Handshake with a subprotocol, text, a binary
//! message with a 64-bit length, a fragmented text, ping/pong, the closing handshake, and
//! 1009 for a message over the limit.
//!
//! Set `THREADNET_WS_PYTHON` to use another interpreter that has `websockets`. If none is
//! found the test fails and says how to get one; it is never skipped.

mod common;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use threadnet::http::{Request, Response};
use threadnet::ws::{self, Message, WsCodec, WsUpgrade};
use threadnet::{Connection, TcpServer};

#[test]
fn python_websockets_client_talks_to_ws_serve() {
    let codec = WsUpgrade::new()
        .frames(WsCodec::new().max_message(100 * 1024))
        .subprotocol(|_, offered| {
            offered
                .iter()
                .find(|p| **p == "chat")
                .map(|p| p.to_string())
        });
    let server = TcpServer::builder()
        .addr("127.0.0.1:0")
        .start(
            codec,
            ws::serve(
                |_: &Request| Response::new(404),
                |_: &Connection<WsUpgrade>| {
                    |conn: &Connection<WsUpgrade>, msg: Message| match msg {
                        Message::Text(t) => {
                            let _ = conn.send(Message::Text(t.to_uppercase()).into());
                        }
                        m @ Message::Binary(_) => {
                            let _ = conn.send(m.into());
                        }
                        _ => {}
                    }
                },
            ),
        )
        .unwrap();
    let uri = format!("ws://{}/chat", server.local_addr());
    let mut child = Command::new(common::ws_python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ws_client.py"))
        .arg(&uri)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Python client");
    // The client has timeouts of its own; this bound catches a hung interpreter.
    let (tx, rx) = mpsc::channel();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    thread::spawn(move || {
        let _ = tx.send(std::io::read_to_string(stdout).unwrap_or_default());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the Python client took more than 60 s");
        }
    };
    let err = std::io::read_to_string(stderr).unwrap_or_default();
    let status = child.wait().unwrap();
    assert!(status.success(), "client failed: {status}\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "subprotocol chat",
            "text HELLO",
            "binary True",
            "fragments FRAGMENTED ☃",
            "pong True",
            "closed 1000",
            "too_big 1009",
        ],
        "stderr: {err}"
    );
    server.stop(Duration::from_secs(1));
}
