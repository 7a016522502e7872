//! The `chat` example in a real browser (`--transport ws`): headless Chromium, driven through
//! chromedriver's WebDriver API, loads the page, and a line typed into it reaches an `nc`-like
//! TCP client of the same room; a line from the TCP client shows up in the page.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`bash .ci/run test` installs them); without
//! them the test fails and says so. Everything after the example is built is bounded by
//! [`LIMIT`], and Chromium and chromedriver are killed on every path out (the [`Browser`]
//! guard), which the test checks.
//!
//! `CHAT_BROWSER_SCREENSHOT=docs/chat.png cargo test --test chat_browser` also writes a
//! screenshot of the page, after a few more lines, there (the README's picture).

#[path = "common/process.rs"]
mod process;
#[path = "chat_browser/webdriver.rs"]
mod webdriver;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use process::{alive, Echo, Example};
use webdriver::{json_string, leftovers, Browser};

/// How long the whole exchange may take, from the chat listening to the browser gone.
const LIMIT: Duration = Duration::from_secs(20);

/// Waits (in the page) until the chat log shows `want` in a line of its own, and returns the
/// log's text; a `MutationObserver` wakes it, nothing polls.
const WAIT_FOR_LINE: &str = r#"
const [want, done] = arguments;
const log = document.getElementById("log");
const lines = () => Array.from(log.children, (li) => li.textContent);
const check = () => {
  if (lines().includes(want)) { observer.disconnect(); done(lines().join("\n")); }
};
const observer = new MutationObserver(check);
observer.observe(log, { childList: true, subtree: true, characterData: true });
check();
"#;

/// Waits until the page's WebSocket is open (or closed: then the assertion says so).
const WAIT_FOR_SOCKET: &str = r#"
const done = arguments[0];
const check = () => {
  const s = document.body.dataset.state;
  if (s !== "connecting") { observer.disconnect(); done(s); }
};
const observer = new MutationObserver(check);
observer.observe(document.body, { attributes: true });
check();
"#;

/// An `nc`-like client of the TCP side: reads lines within the deadline.
struct Nc {
    stream: TcpStream,
    lines: BufReader<TcpStream>,
    deadline: Instant,
}

impl Nc {
    fn connect(addr: std::net::SocketAddr, deadline: Instant) -> Nc {
        let stream = TcpStream::connect(addr).expect("connect to the chat");
        let lines = BufReader::new(stream.try_clone().unwrap());
        Nc {
            stream,
            lines,
            deadline,
        }
    }

    /// Its name in the room: its address.
    fn name(&self) -> String {
        self.stream.local_addr().unwrap().to_string()
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stream, "{line}").expect("write to the chat");
    }

    /// Reads lines until one satisfies `wanted`, and returns it.
    #[track_caller]
    fn line_where(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let mut seen = Vec::new();
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the TCP client never got {what}; it got {seen:?}"
            );
            self.lines.get_ref().set_read_timeout(Some(left)).unwrap();
            let mut line = String::new();
            match self.lines.read_line(&mut line) {
                Ok(0) => panic!("the chat closed the TCP client before {what}; it got {seen:?}"),
                Ok(_) => {}
                Err(e) => panic!("the TCP client never got {what} ({e}); it got {seen:?}"),
            }
            let line = line.trim_end_matches('\n').to_string();
            if wanted(&line) {
                return line;
            }
            seen.push(line);
        }
    }
}

#[test]
fn a_browser_and_a_tcp_client_talk_in_one_room() {
    let chat = Example::spawn(Echo::example(
        "chat",
        &[
            "--transport",
            "ws",
            "--addr",
            "127.0.0.1:0",
            "--ws-addr",
            "127.0.0.1:0",
        ],
    ));
    let started = Instant::now();
    let deadline = started + LIMIT;
    let tcp_addr = chat.listening();
    let page_line = chat.line();
    let page = page_line
        .strip_prefix("page on ")
        .unwrap_or_else(|| panic!("expected `page on URL`, got {page_line:?}"))
        .to_string();

    let mut nc = Nc::connect(tcp_addr, deadline);
    let me = nc.name();
    nc.line_where("its own join", |l| l == format!("* {me} joined"));

    let browser = Browser::start(deadline, 720, 420);
    let dir = browser.dir().to_path_buf();
    let driver = browser.driver_pid();
    browser.open(&page);
    let state = browser.run_async(WAIT_FOR_SOCKET, "[]");
    assert_eq!(
        state.as_deref(),
        Ok("open"),
        "the page's WebSocket did not open"
    );

    // The browser joined: the TCP client is told, with the browser's name (its address).
    let joined = nc.line_where("the browser's join", |l| {
        l.starts_with("* ") && l.ends_with(" joined")
    });
    let browser_name = joined["* ".len()..joined.len() - " joined".len()].to_string();
    assert_ne!(browser_name, me);

    // Browser → TCP: typed into the page's input and submitted with Enter.
    let say = browser.find("#say");
    browser.type_into(&say, "hello from the browser\u{E007}");
    let heard = nc.line_where("the browser's line", |l| {
        l.ends_with(": hello from the browser")
    });
    assert_eq!(heard, format!("{browser_name}: hello from the browser"));

    // TCP → browser: the page shows it, named after the TCP client.
    nc.say("hello from nc");
    let log = page_shows(&browser, &format!("{me}: hello from nc"));
    assert!(log.contains("me: hello from the browser"), "{log}");
    assert!(log.contains(&format!("* {browser_name} joined")), "{log}");

    if let Some(path) = std::env::var_os("CHAT_BROWSER_SCREENSHOT") {
        browser.type_into(&say, "the page and its socket share one port\u{E007}");
        nc.line_where("the second line", |l| l.ends_with("share one port"));
        nc.say("and nc users are in the same room");
        page_shows(
            &browser,
            &format!("{me}: and nc users are in the same room"),
        );
        std::fs::write(&path, browser.screenshot()).expect("write the screenshot");
    }

    // The guard leaves nothing behind: chromedriver, Chromium and its helpers are gone.
    drop(browser);
    assert!(!alive(driver), "chromedriver (pid {driver}) still runs");
    let left = leftovers(&dir);
    assert!(left.is_empty(), "Chromium processes left behind: {left:?}");
    assert!(
        !dir.exists(),
        "the profile directory {} is still there",
        dir.display()
    );

    // The browser's leaving is announced to the room.
    nc.line_where("the browser's leave", |l| {
        l == format!("* {browser_name} left")
    });
    eprintln!("browser test took {:?}", started.elapsed());
    drop(chat);
}

/// Waits until the page's chat log has the line `want`, and returns the log; fails the test
/// with what the page shows if that does not happen in time.
#[track_caller]
fn page_shows(browser: &Browser, want: &str) -> String {
    let args = format!("[{}]", json_string(want));
    browser.run_async(WAIT_FOR_LINE, &args).unwrap_or_else(|e| {
        let log = browser.run("return document.getElementById('log').innerText", "[]");
        panic!("the page never showed {want:?} ({e}); it shows:\n{log}")
    })
}
