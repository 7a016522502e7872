//! A chat room on the [`Lines`] codec, after Tao's chat example: every line a client sends
//! goes to every other client, prefixed with the sender's address, and joins and leaves are
//! announced to everyone as `* 127.0.0.1:5555 joined`.
//!
//! It shows shared state between connections without locks in the handlers: each handler
//! only reports what happened (joined, said, left) to one hub thread over a bounded channel,
//! and the hub, which owns the [`ServerHandle`], fans out through the server's registry
//! ([`ServerHandle::connections`]). Every client therefore sees the room's events in the
//! same order.
//!
//! # Flow control: the talkers wait, the readers are not cut off
//!
//! A client that keeps reading is never disconnected: it receives every line said while it
//! is in the room, in the room's order (each sender's lines in the order sent), however fast
//! the others talk. When a client's send queue is full, the hub waits for it to take a line
//! (`send_timeout`) instead of dropping it; meanwhile the hub's backlog fills, the reader
//! threads of the clients who talk wait for the hub, and TCP flow control slows the talkers
//! down, the one who floods the room most of all. So the room moves at the pace of its
//! slowest reader, and nothing is lost.
//!
//! A client that stops reading altogether would stop the room, so the wait has a bound: a
//! client whose queue stays full for `--slow-reader` seconds (10 by default) without taking a
//! single line is disconnected, and the room goes on. (Before, a client was disconnected as
//! soon as its queue was full: one client sending as fast as it could got the others cut off,
//! readers included.) A client must read while it writes: one that writes a lot and reads
//! nothing until it is done waits on itself, and is disconnected after that bound.
//!
//! The same handler and hub run over TCP, a Unix-domain socket or UDP, chosen by a flag: only
//! the line that starts the server differs (goes' promise).
//!
//! # In a browser: `--transport ws`
//!
//! With `--transport ws` the room is the TCP chat on `--addr`, and a second port, `--ws-addr`
//! (default `127.0.0.1:8002`), serves a page at `/` (HTML and script inline, no external
//! assets) whose script opens a WebSocket to `/ws` on the same port ([`threadnet::ws::serve`]:
//! one port for the page and its socket). Browser users and `nc` users are in the same room:
//! a line typed in the page reaches the `nc` users and the other browsers, and the reverse.
//! Browser users are named by their address, as TCP users are; the same limits hold (a line
//! is cut at 4096 bytes, a message is at most 64 KiB, a browser that reads nothing for
//! `--slow-reader` seconds is disconnected). The page's socket is accepted from the page's
//! own origin only (the library's default origin check).
//!
//! ```sh
//! cargo run --example chat                                   # TCP on 127.0.0.1:7002
//! nc 127.0.0.1 7002                                          # in two or more terminals
//! cargo run --example chat -- --transport unix --addr /tmp/chat.sock
//! nc -U /tmp/chat.sock
//! cargo run --example chat -- --transport udp
//! nc -u 127.0.0.1 7002                                       # each peer address is a member
//! cargo run --example chat -- --transport ws                 # TCP on 7002, the page on 8002
//! # open http://127.0.0.1:8002/ in a browser; nc 127.0.0.1 7002 joins the same room
//! ```
//!
//! Commands (goes' command line, [`threadnet::control`]), before the flags; without one it
//! serves in the foreground as `start` does. With a command, the pid file defaults to
//! `chat.pid` in the current directory.
//!
//! * `start [FLAGS]`: serve in the foreground; exit code 4 if one runs already.
//! * `start -d [FLAGS]`: serve in the background (a new session, stdout and stderr appended to
//!   the log file); returns once the room is ready.
//! * `stop`: SIGTERM, wait for the exit; exit code 3 if none runs.
//! * `status`: exit code 0 and the pid and uptime if running, else 3.
//!
//! The room lives in the process, so there is no `reload` (it would empty the room: `stop`
//! and `start -d` say so plainly) and no worker processes (each would be a room of its own).
//!
//! Flags:
//!
//! * `--transport tcp|unix|udp|ws` (default `tcp`; `ws` is TCP plus the web page);
//! * `--addr ADDR`: `HOST:PORT` for TCP and UDP (default `127.0.0.1:7002`; port 0 picks a free
//!   one), a socket path for Unix (default `/tmp/threadnet-chat.sock`);
//! * `--ws-addr HOST:PORT`: with `--transport ws`, where the page and its WebSocket are
//!   served (default `127.0.0.1:8002`; port 0 picks a free one);
//! * `--idle-timeout SECS`: disconnect a client that has said nothing for SECS seconds (off by
//!   default for TCP and Unix; UDP members expire after 60 s unless this is set);
//! * `--slow-reader SECS`: disconnect a client whose queue has stayed full (nothing read) for
//!   SECS seconds (default 10);
//! * `--frame-timeout SECS`: disconnect a client that has begun a line and not finished it
//!   within SECS seconds: one that trickles a line byte by byte (slowloris), which
//!   `--idle-timeout` never catches (fractions allowed; `0` turns it off; default: the
//!   library's, 30 s). Time between lines does not count, and a UDP datagram is whole when
//!   it comes, so UDP has no such limit.
//! * `--pid-file PATH`: write the process id there (atomically), remove it on exit;
//! * `--log-file PATH`: where `start -d` appends stdout and stderr (default: the pid file's
//!   path with the extension `log`).
//!
//! The first line on stdout is `listening on ADDR`, with the real bound address; with
//! `--transport ws` a second line follows, `page on http://ADDR/`, the web port's. The
//! room's events are logged on stderr. The server runs until SIGINT or SIGTERM stops it gracefully
//! (exit code 0 once its clients are done; a second signal: at once).
//!
//! [`Registry::broadcast`]: threadnet::Registry::broadcast

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::Duration;

use threadnet::ws::{self, WsUpgrade};
use threadnet::{
    activation,
    codec::Lines,
    control, signal,
    udp::{UdpHandle, UdpServer},
    Addr, CloseReason, Codec, ConnOptions, Connection, Handler, Registry, ServerHandle, TcpServer,
    UnixServer,
};

#[path = "chat/web.rs"]
mod web;

/// How long members get to finish after SIGINT/SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: chat [start [-d] | stop | status] [FLAGS]
  (no command)          serve in the foreground, as `start`
  start                 serve in the foreground; 4 if the pid file names a running chat
  start -d              serve in the background, output appended to the log file; returns
                        once it is ready (exit 0), 4 if one runs already, 1 if it failed
  stop                  SIGTERM, wait for it to exit: 0, 3 if none runs, 1 if it did not exit
  status                0 and pid and uptime if running, 3 if not
  (no reload: the room lives in the process; no worker processes: each would be a room)
flags: [--transport tcp|unix|udp|ws] [--addr ADDR] [--ws-addr ADDR] [--idle-timeout SECS]
       [--slow-reader SECS] [--frame-timeout SECS] [--pid-file PATH] [--log-file PATH]
  --transport T         tcp (default), unix, udp, or ws: tcp on --addr plus, on --ws-addr, a
                        web page at / whose WebSocket (/ws) joins the same room
  --addr ADDR           HOST:PORT for tcp, udp and ws (default 127.0.0.1:7002; port 0 picks a
                        free port), a socket path for unix (default /tmp/threadnet-chat.sock)
  --ws-addr ADDR        with --transport ws: HOST:PORT of the page and its WebSocket (default
                        127.0.0.1:8002); open http://ADDR/ in a browser
  --idle-timeout SECS   disconnect a client that has said nothing for SECS (default: off)
  --slow-reader SECS    disconnect a client that has read nothing for SECS while its queue
                        was full (default 10)
  --frame-timeout SECS  disconnect a client that began a line and did not finish it within
                        SECS (slowloris; tcp and unix); 0 = off (default: the library's, 30)
  --pid-file PATH       write the pid to PATH, remove it on exit (default with a command:
                        chat.pid)
  --log-file PATH       where start -d appends stdout and stderr (default: the pid file's
                        path with the extension .log)";

/// How long the hub waits for a client whose queue is full to take a line, by default.
const SLOW_READER: Duration = Duration::from_secs(10);

/// Longest text relayed from one line, in bytes; longer lines are cut (on a character
/// boundary). It keeps every relayed line, prefix included, far below the codec's 64 KiB limit.
const MAX_TEXT: usize = 4096;

/// Room events waiting for the hub. When the hub falls this far behind (it waits for a client
/// whose queue is full), readers wait for it, which in turn slows down the clients that talk
/// (TCP backpressure), the most talkative first.
const HUB_BACKLOG: usize = 1024;

/// Where a web page is served with `--transport ws`, by default.
const WS_ADDR: &str = "127.0.0.1:8002";

/// A member of the room: a connection of the line server (TCP, Unix or UDP), or a browser's
/// WebSocket. Each server numbers its own connections, hence the two kinds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    Line(u64),
    Web(u64),
}

/// What a connection tells the hub.
enum Event {
    Joined {
        who: Who,
        peer: Addr,
    },
    Said {
        who: Who,
        peer: Addr,
        text: String,
    },
    Left {
        who: Who,
        peer: Addr,
        reason: String,
    },
}

/// The way to the hub.
type Hub = SyncSender<Event>;

/// One per connection: reports its connection's events to the hub.
struct Member {
    hub: Hub,
}

impl Handler<Lines> for Member {
    fn on_connect(&mut self, conn: &Connection<Lines>) {
        let _ = self.hub.send(Event::Joined {
            who: Who::Line(conn.id()),
            peer: conn.peer_addr(),
        });
    }

    fn on_message(&mut self, conn: &Connection<Lines>, line: String) {
        let _ = self.hub.send(Event::Said {
            who: Who::Line(conn.id()),
            peer: conn.peer_addr(),
            text: line,
        });
    }

    fn on_close(&mut self, conn: &Connection<Lines>, reason: &CloseReason) {
        let _ = self.hub.send(Event::Left {
            who: Who::Line(conn.id()),
            peer: conn.peer_addr(),
            reason: reason.to_string(),
        });
    }
}

/// The hub: the only place that sends to clients. Runs until every sender is gone, which
/// for a server that is never stopped means forever. `slow` is how long it waits for a client
/// whose queue is full to take a line before it disconnects that client.
fn run_hub(room: &Room, events: Receiver<Event>, slow: Duration) {
    // The web port's connections that are WebSockets in the room (the others load the page).
    let mut browsers = HashSet::new();
    for event in events {
        match event {
            Event::Joined { who, peer } => {
                if let Who::Web(id) = who {
                    browsers.insert(id);
                }
                eprintln!("chat: {} {peer} joined", name(who));
                announce(room, &browsers, None, &format!("* {peer} joined"), slow);
            }
            Event::Left { who, peer, reason } => {
                if let Who::Web(id) = who {
                    browsers.remove(&id);
                }
                eprintln!("chat: {} {peer} left: {reason}", name(who));
                announce(room, &browsers, None, &format!("* {peer} left"), slow);
            }
            Event::Said { who, peer, text } => {
                let line = format!("{peer}: {}", clean(&text));
                announce(room, &browsers, Some(who), &line, slow); // not back to the sender
            }
        }
    }
}

/// How the log names a member: `#3` for a line client, `web#3` for a browser.
fn name(who: Who) -> String {
    match who {
        Who::Line(id) => format!("#{id}"),
        Who::Web(id) => format!("web#{id}"),
    }
}

/// Sends `line` to every member but `except`, in turn: every client of the line server, and
/// the `browsers` of the web port. A member whose queue is full is waited for, up to `slow`:
/// while it is, the hub's backlog fills and the talkers are slowed down (see the module
/// docs). One that takes nothing in that time is disconnected; its `on_close` then announces
/// that it left.
fn announce(room: &Room, browsers: &HashSet<u64>, except: Option<Who>, line: &str, slow: Duration) {
    room.members().for_each(|conn| {
        if Some(Who::Line(conn.id())) != except {
            deliver(conn, line.to_string(), slow);
        }
    });
    if let Some(web) = room.web() {
        for &id in browsers {
            if Some(Who::Web(id)) == except {
                continue;
            }
            if let Some(conn) = web.get(id) {
                deliver(&conn, ws::Message::Text(line.to_string()).into(), slow);
            }
        }
    }
}

/// Sends `msg` to one member, waiting up to `slow` for room in its queue; disconnects it if
/// there is none by then.
fn deliver<C: Codec>(conn: &Connection<C>, msg: C::Out, slow: Duration) {
    if let Err(e) = conn.send_timeout(msg, slow) {
        if e.is_timeout() {
            eprintln!(
                "chat: {} read nothing for {slow:?}, disconnecting",
                conn.peer_addr()
            );
            conn.close();
        }
        // Closed: it is leaving, and its `Left` event is on its way.
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
    seconds_or_zero(value).filter(|d| !d.is_zero())
}

/// A number of seconds, fractions allowed, zero included.
fn seconds_or_zero(value: &str) -> Option<Duration> {
    let secs: f64 = value.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// The running server, whichever the transport: what the hub needs of it.
#[derive(Clone)]
enum Room {
    Stream(ServerHandle<Lines>),
    Datagram(UdpHandle<Lines>),
    /// TCP and the web port (`--transport ws`).
    Web(web::Both),
}

impl Room {
    /// The line server's clients.
    fn members(&self) -> &Registry<Lines> {
        match self {
            Room::Stream(s) => s.connections(),
            Room::Datagram(s) => s.connections(),
            Room::Web(both) => both.lines.connections(),
        }
    }

    /// The web port's connections (pages being loaded, and browsers in the room).
    fn web(&self) -> Option<&Registry<WsUpgrade>> {
        match self {
            Room::Web(both) => Some(both.web.connections()),
            _ => None,
        }
    }

    fn addr(&self) -> Addr {
        match self {
            Room::Stream(s) => s.local_addr(),
            Room::Datagram(s) => Addr::Inet(s.local_addr()),
            Room::Web(both) => both.lines.local_addr(),
        }
    }
}

/// The command line.
struct Args {
    transport: String,
    addr: Option<String>,
    ws_addr: String,
    options: ConnOptions,
    slow_reader: Duration,
    pid_file: Option<String>,
    log_file: Option<String>,
}

/// Parses the command line: `Ok(None)` for `--help`, `Err` with what is wrong. Every flag but
/// `--help` takes one value.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        transport: "tcp".to_string(),
        addr: None,
        ws_addr: WS_ADDR.to_string(),
        options: ConnOptions::new(),
        slow_reader: SLOW_READER,
        pid_file: None,
        log_file: None,
    };
    while let Some(flag) = args.next() {
        if matches!(flag.as_str(), "-h" | "--help") {
            return Ok(None);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let secs = || seconds(&value).ok_or(format!("{flag}: not a positive number: {value:?}"));
        match flag.as_str() {
            "--transport" if ["tcp", "unix", "udp", "ws"].contains(&value.as_str()) => {
                parsed.transport = value;
            }
            "--addr" => parsed.addr = Some(value),
            "--ws-addr" => parsed.ws_addr = value,
            // A lurker is disconnected; its `on_close` announces that it left.
            "--idle-timeout" => parsed.options = parsed.options.read_idle(secs()?),
            "--slow-reader" => parsed.slow_reader = secs()?,
            "--pid-file" => parsed.pid_file = Some(value),
            "--log-file" => parsed.log_file = Some(value),
            // A trickler is disconnected; zero turns the limit off.
            "--frame-timeout" => {
                let secs = seconds_or_zero(&value)
                    .ok_or(format!("{flag}: not a number of seconds: {value:?}"))?;
                parsed.options = parsed.options.frame_timeout(secs);
            }
            _ => return Err(format!("bad flag {flag:?} {value:?}")),
        }
    }
    Ok(Some(parsed))
}

fn main() -> ExitCode {
    let (command, flags) = control::Command::split(std::env::args().skip(1));
    let Args {
        transport,
        addr,
        ws_addr,
        options,
        slow_reader,
        mut pid_file,
        log_file,
    } = match parse_args(flags.iter().cloned()) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("chat: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    // goes' commands (see the module docs); only `start` comes back here to serve.
    if command == Some(control::Command::Reload) {
        eprintln!("chat: no reload: the room lives in the process; stop, then start -d");
        return ExitCode::from(control::EXIT_FAILED);
    }
    if command.is_some() && pid_file.is_none() {
        pid_file = Some("chat.pid".to_string());
    }
    if let Some(path) = &pid_file {
        let mut control = control::Control::new(path);
        if let Some(log) = &log_file {
            control = control.log_file(log);
        }
        let command = command.unwrap_or(control::Command::Start);
        if let control::Outcome::Exit(code) = control.run(command, &flags) {
            return ExitCode::from(code);
        }
    }

    let (hub, events) = mpsc::sync_channel(HUB_BACKLOG);
    let web_hub = hub.clone();
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
        "ws" => start_web(&ws_addr, options.clone(), web_hub).and_then(|web| {
            TcpServer::builder()
                .addr(addr.unwrap_or_else(|| "127.0.0.1:7002".to_string()))
                .options(options)
                .start(Lines::new(), member)
                .map(|lines| Room::Web(web::Both { lines, web }))
        }),
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

    // Removed when main returns, unless a newer process has written its own pid there.
    let _pid_file = match pid_file
        .as_deref()
        .map(activation::PidFile::create)
        .transpose()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("chat: cannot write the pid file: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Scripts wait for this line to learn the port, so it goes out at once.
    let mut stdout = std::io::stdout().lock();
    let mut announced = writeln!(stdout, "listening on {}", room.addr());
    if let Room::Web(both) = &room {
        announced =
            announced.and_then(|()| writeln!(stdout, "page on http://{}/", both.web.local_addr()));
    }
    let announced = announced.and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = announced {
        eprintln!("chat: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }
    // Tells `start -d` (or systemd, Type=notify) that the room is open.
    if let Err(e) = activation::notify_ready() {
        eprintln!("chat: cannot notify readiness: {e}");
    }

    // The hub runs on a thread of its own; this one stops the server on SIGINT/SIGTERM.
    let hub_room = room.clone();
    thread::spawn(move || run_hub(&hub_room, events, slow_reader));
    let stopped = match &room {
        Room::Stream(server) => stop.run(server),
        Room::Datagram(server) => stop.run(server),
        Room::Web(both) => stop.run(both),
    };
    if let Err(e) = stopped {
        eprintln!("chat: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Starts the web port of `--transport ws`: the page at `/` and the browsers' WebSockets,
/// whose events go to the hub.
fn start_web(
    addr: &str,
    options: ConnOptions,
    hub: Hub,
) -> std::io::Result<ServerHandle<WsUpgrade>> {
    TcpServer::builder().addr(addr).options(options).start(
        web::codec(),
        ws::serve(web::page, move |_: &Connection<WsUpgrade>| web::WebMember {
            hub: hub.clone(),
        }),
    )
}
