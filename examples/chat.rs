//! A chat room on the [`Lines`] codec, after Tao's chat example: every line a client sends
//! goes to every other client, prefixed with the sender's address, and joins and leaves are
//! announced to everyone as `* 127.0.0.1:5555 joined`.
//!
//! It shows shared state between connections without locks in the handlers: each handler
//! only reports what happened (joined, said, left) to one hub thread over a bounded channel,
//! and the hub, which owns the [`ServerHandle`], fans out through the server's registry
//! ([`ServerHandle::connections`]). Every client therefore sees the room's events in the
//! same order. Fan-out never blocks: it uses `try_send` and [`Registry::broadcast`], and a
//! client whose send queue is full is disconnected, so one slow reader cannot hold up the
//! room.
//!
//! The same handler and hub run over TCP, a Unix-domain socket or UDP, chosen by a flag: only
//! the line that starts the server differs (goes' promise).
//!
//! ```sh
//! cargo run --example chat                                   # TCP on 127.0.0.1:7002
//! nc 127.0.0.1 7002                                          # in two or more terminals
//! cargo run --example chat -- --transport unix --addr /tmp/chat.sock
//! nc -U /tmp/chat.sock
//! cargo run --example chat -- --transport udp
//! nc -u 127.0.0.1 7002                                       # each peer address is a member
//! ```
//!
//! Flags:
//!
//! * `--transport tcp|unix|udp` (default `tcp`);
//! * `--addr ADDR`: `HOST:PORT` for TCP and UDP (default `127.0.0.1:7002`; port 0 picks a free
//!   one), a socket path for Unix (default `/tmp/threadnet-chat.sock`);
//! * `--idle-timeout SECS`: disconnect a client that has said nothing for SECS seconds (off by
//!   default for TCP and Unix; UDP members expire after 60 s unless this is set).
//!
//! The first line on stdout is `listening on ADDR`, with the real bound address; the room's
//! events are logged on stderr. The server runs until SIGINT or SIGTERM stops it gracefully
//! (exit code 0 once its clients are done; a second signal: at once).
//!
//! [`Registry::broadcast`]: threadnet::Registry::broadcast

use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::Duration;

use threadnet::{
    signal, Addr, CloseReason, ConnOptions, Connection, Handler, Lines, Registry, ServerHandle,
    TcpServer, UdpHandle, UdpServer, UnixServer,
};

/// How long members get to finish after SIGINT/SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: chat [--transport tcp|unix|udp] [--addr ADDR] [--idle-timeout SECS]
  --transport T         tcp (default), unix or udp
  --addr ADDR           HOST:PORT for tcp and udp (default 127.0.0.1:7002; port 0 picks a free
                        port), a socket path for unix (default /tmp/threadnet-chat.sock)
  --idle-timeout SECS   disconnect a client that has said nothing for SECS (default: off)";

/// Longest text relayed from one line, in bytes; longer lines are cut (on a character
/// boundary). It keeps every relayed line, prefix included, far below the codec's 64 KiB limit.
const MAX_TEXT: usize = 4096;

/// Room events waiting for the hub. When the hub falls this far behind, readers wait for it,
/// which in turn slows down the clients that talk the most (TCP backpressure), not the others.
const HUB_BACKLOG: usize = 1024;

/// What a connection tells the hub.
enum Event {
    Joined { id: u64, peer: Addr },
    Said { id: u64, peer: Addr, text: String },
    Left { id: u64, peer: Addr, reason: String },
}

/// One per connection: reports its connection's events to the hub.
struct Member {
    hub: SyncSender<Event>,
}

impl Handler<Lines> for Member {
    fn on_connect(&mut self, conn: &Connection<Lines>) {
        let _ = self.hub.send(Event::Joined {
            id: conn.id(),
            peer: conn.peer_addr(),
        });
    }

    fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
        let _ = self.hub.send(Event::Said {
            id: conn.id(),
            peer: conn.peer_addr(),
            text: line,
        });
    }

    fn on_close(&mut self, conn: &Connection<Lines>, reason: &CloseReason) {
        let _ = self.hub.send(Event::Left {
            id: conn.id(),
            peer: conn.peer_addr(),
            reason: reason.to_string(),
        });
    }
}

/// The hub: the only place that sends to clients. Runs until every sender is gone, which
/// for a server that is never stopped means forever.
fn run_hub(room: &Registry<Lines>, events: Receiver<Event>) {
    for event in events {
        match event {
            Event::Joined { id, peer } => {
                eprintln!("chat: #{id} {peer} joined");
                announce(room, format!("* {peer} joined"));
            }
            Event::Left { id, peer, reason } => {
                eprintln!("chat: #{id} {peer} left: {reason}");
                announce(room, format!("* {peer} left"));
            }
            Event::Said { id, peer, text } => {
                let line = format!("{peer}: {}", clean(&text));
                room.for_each(|conn| {
                    if conn.id() == id {
                        return; // not back to the sender
                    }
                    // Slow clients must not block the others: `try_send` never waits, and a
                    // client whose queue is full (1024 lines or 1 MiB behind, the defaults)
                    // is disconnected instead of being waited for or silently skipped. Its
                    // `on_close` then announces that it left.
                    if let Err(e) = conn.try_send(line.clone()) {
                        if e.is_full() {
                            eprintln!(
                                "chat: #{} {} too slow, disconnecting",
                                conn.id(),
                                conn.peer_addr()
                            );
                            conn.close();
                        }
                        // Closed: it is leaving, and its `Left` event is on its way.
                    }
                });
            }
        }
    }
}

/// Sends a notice to every client, the newcomer included. `broadcast` encodes the line once
/// and offers the same bytes to each queue without waiting; the ones that were full are
/// disconnected, as in `run_hub`.
fn announce(registry: &Registry<Lines>, notice: String) {
    match registry.broadcast(&notice) {
        Ok(report) => {
            for id in report.full {
                if let Some(conn) = registry.get(id) {
                    eprintln!("chat: #{id} {} too slow, disconnecting", conn.peer_addr());
                    conn.close();
                }
            }
        }
        Err(e) => eprintln!("chat: cannot encode {notice:?}: {e}"),
    }
}

/// The text of a line as it is relayed: at most `MAX_TEXT` bytes, and no trailing `\r` (the
/// codec would refuse to write it, since a reader would take it for part of a `\r\n`).
fn clean(text: &str) -> &str {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim_end_matches('\r')
}

/// A positive number of seconds, fractions allowed.
fn seconds(value: &str) -> Option<Duration> {
    let secs: f64 = value.parse().ok()?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
}

/// The running server, whichever the transport: what the hub needs of it.
#[derive(Clone)]
enum Room {
    Stream(ServerHandle<Lines>),
    Datagram(UdpHandle<Lines>),
}

impl Room {
    fn members(&self) -> &Registry<Lines> {
        match self {
            Room::Stream(s) => s.connections(),
            Room::Datagram(s) => s.connections(),
        }
    }

    fn addr(&self) -> Addr {
        match self {
            Room::Stream(s) => s.local_addr(),
            Room::Datagram(s) => Addr::Inet(s.local_addr()),
        }
    }
}

fn main() -> ExitCode {
    let mut transport = "tcp".to_string();
    let mut addr = None;
    let mut options = ConnOptions::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--transport", Some(value)) if ["tcp", "unix", "udp"].contains(&value.as_str()) => {
                transport = value;
            }
            ("--addr", Some(value)) => addr = Some(value),
            ("--idle-timeout", Some(value)) => match seconds(&value) {
                // A lurker is disconnected; its `on_close` announces that it left.
                Some(timeout) => options = options.read_idle(timeout),
                None => {
                    eprintln!("chat: --idle-timeout: not a positive number: {value:?}\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            ("-h" | "--help", _) => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            ("--addr" | "--idle-timeout" | "--transport", None) => {
                eprintln!("chat: {flag} needs a value\n{USAGE}");
                return ExitCode::from(2);
            }
            _ => {
                eprintln!("chat: bad flag {flag:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let (hub, events) = mpsc::sync_channel(HUB_BACKLOG);
    let member = move |_: &Connection<Lines>| Member { hub: hub.clone() };
    // The only transport-specific lines.
    let started = match transport.as_str() {
        "unix" => {
            let path = addr.unwrap_or_else(|| "/tmp/threadnet-chat.sock".to_string());
            UnixServer::builder(&path)
                .options(options)
                .start(Lines::new(), member)
                .map(Room::Stream)
        }
        "udp" => UdpServer::builder()
            .addr(addr.unwrap_or_else(|| "127.0.0.1:7002".to_string()))
            .options(options)
            .start(Lines::new(), member)
            .map(Room::Datagram),
        _ => TcpServer::builder()
            .addr(addr.unwrap_or_else(|| "127.0.0.1:7002".to_string()))
            .options(options)
            .start(Lines::new(), member)
            .map(Room::Stream),
    };
    let room = match started {
        Ok(room) => room,
        Err(e) => {
            eprintln!("chat: cannot listen ({transport}): {e}");
            return ExitCode::FAILURE;
        }
    };

    // The signal handlers go in before the line below: a script may send a signal as soon
    // as it has read it.
    let stop = match signal::StopOnSignals::new(STOP_DEADLINE).arm() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("chat: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Scripts wait for this line to learn the port, so it goes out at once.
    let mut stdout = std::io::stdout().lock();
    let announced = writeln!(stdout, "listening on {}", room.addr()).and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = announced {
        eprintln!("chat: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }

    // The hub runs on a thread of its own; this one stops the server on SIGINT/SIGTERM.
    let hub_room = room.clone();
    thread::spawn(move || run_hub(hub_room.members(), events));
    let stopped = match &room {
        Room::Stream(server) => stop.run(server),
        Room::Datagram(server) => stop.run(server),
    };
    if let Err(e) = stopped {
        eprintln!("chat: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
