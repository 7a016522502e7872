//! The `chat` example with a client that floods the room: the flooder is slowed down by flow
//! control, a client that keeps reading gets every line in order and is never cut off, and
//! only a client that reads nothing at all is disconnected. (Before, a full send queue got a
//! client disconnected at once: a reader reading continuously was cut off as "too slow" after
//! some 2 800 of the flooder's lines.)

#[path = "common/examples.rs"]
mod examples;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use examples::Example;

/// Lines the flooder sends.
const LINES: usize = 20_000;
/// Bytes of text per line: 20 MB in all, far more than the socket buffers and the queue of
/// the client that never reads can hold, so that its queue does fill.
const TEXT: usize = 1000;
/// How long the whole exchange may take.
const LIMIT: Duration = Duration::from_secs(60);

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.set_write_timeout(Some(LIMIT)).unwrap();
    s
}

/// Reads lines from `s` on a thread, each onto the channel.
fn reader(s: &TcpStream) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let input = BufReader::new(s.try_clone().unwrap());
    thread::spawn(move || {
        for line in input.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the line `want` among the next ones.
#[track_caller]
fn expect(lines: &mpsc::Receiver<String>, want: &str) {
    let until = Instant::now() + LIMIT;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line == want => return,
            Ok(_) => {}
            Err(e) => panic!("no line {want:?}: {e}"),
        }
    }
}

#[test]
fn a_flooder_is_slowed_down_and_readers_get_every_line_while_a_stuck_client_is_dropped() {
    let chat = Example::spawn("chat", &["--addr", "127.0.0.1:0", "--slow-reader", "1"]);
    let addr = chat.listening();

    let reading = connect(&addr);
    let lines = reader(&reading);
    let me = reading.local_addr().unwrap();
    expect(&lines, &format!("* {me} joined"));
    // A client that never reads a byte.
    let stuck = connect(&addr);
    let stuck_addr = stuck.local_addr().unwrap();
    expect(&lines, &format!("* {stuck_addr} joined"));
    let flooder = connect(&addr);
    let flooder_addr = flooder.local_addr().unwrap();
    expect(&lines, &format!("* {flooder_addr} joined"));
    // The flooder reads what it is sent (announcements), as a chat client does.
    let flooder_lines = reader(&flooder);

    let mut out = flooder.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let pad = "x".repeat(TEXT);
        let mut batch = String::new();
        for i in 0..LINES {
            batch.push_str(&format!("flood {i} {pad}\n"));
            if batch.len() > 64 * 1024 || i + 1 == LINES {
                out.write_all(batch.as_bytes())?;
                batch.clear();
            }
        }
        Ok::<(), std::io::Error>(())
    });

    // Every flood line, in order; the stuck client leaves along the way; nobody else does.
    let prefix = format!("{flooder_addr}: flood ");
    let mut next = 0;
    let mut stuck_left = false;
    let until = Instant::now() + LIMIT;
    while next < LINES {
        let left = until.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|e| {
            panic!(
                "after {next} of {LINES} lines: {e}; chat's stderr ends:\n{}",
                tail(&chat.stderr())
            )
        });
        if let Some(rest) = line.strip_prefix(&prefix) {
            let n: usize = rest.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(n, next, "lines lost or out of order");
            assert_eq!(rest.len(), n.to_string().len() + 1 + TEXT);
            next += 1;
        } else if line == format!("* {stuck_addr} left") {
            stuck_left = true;
        } else {
            panic!("after {next} lines, unexpected {line:?}");
        }
    }
    writer.join().unwrap().expect("the flooder was not cut off");
    if !stuck_left {
        expect(&lines, &format!("* {stuck_addr} left"));
    }
    let stderr = chat.stderr();
    assert!(
        stderr.contains(&format!("{stuck_addr} read nothing for")),
        "{}",
        tail(&stderr)
    );
    assert!(!stderr.contains(&format!("{me} read nothing")));
    assert!(!stderr.contains(&format!("{flooder_addr} read nothing")));
    // The flooder is still in the room: it hears about a newcomer.
    let late = connect(&addr);
    let late_addr = late.local_addr().unwrap();
    expect(&flooder_lines, &format!("* {late_addr} joined"));
    expect(&lines, &format!("* {late_addr} joined"));
}

fn tail(s: &str) -> &str {
    let start = s.len().saturating_sub(2000);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}
