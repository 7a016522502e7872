//! Headless Chromium driven through chromedriver's W3C WebDriver HTTP API, with nothing but
//! std: a tiny HTTP/1.1 client over `TcpStream` and just enough JSON to read the answers.
//!
//! Every request is bounded by the test's deadline. Dropping a [`Browser`] ends the session,
//! then kills chromedriver, Chromium and Chromium's helpers: chromedriver runs in a process
//! group of its own (Chromium's processes inherit it), and the crash handlers, which leave
//! that group, are found by the fresh profile directory their command lines name.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// The W3C name of the key under which an element's id comes.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The executable `name` on `PATH`, if any.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A headless Chromium with one WebDriver session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: Option<String>,
    /// A fresh directory: Chromium's profile and `HOME`; removed on drop.
    dir: PathBuf,
    deadline: Instant,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (`chromium` and `chromedriver` from `PATH`)
    /// with a window of `width`×`height` pixels. Every call on it fails the test once
    /// `deadline` has passed.
    #[track_caller]
    pub fn start(deadline: Instant, width: u32, height: u32) -> Browser {
        let missing = "needs Debian's chromium and chromium-driver: \
            `apt-get install chromium chromium-driver` (`bash .ci/run test` installs them)";
        let chromium =
            which("chromium").unwrap_or_else(|| panic!("no chromium on PATH: {missing}"));
        let chromedriver =
            which("chromedriver").unwrap_or_else(|| panic!("no chromedriver on PATH: {missing}"));
        let dir = fresh_dir();
        let mut driver = Command::new(chromedriver)
            .arg("--port=0")
            // Chromium's crash reports and other state go under the fresh directory.
            .env("HOME", &dir)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let (tx, rx) = mpsc::channel();
        let mut out = BufReader::new(driver.stdout.take().unwrap());
        thread::spawn(move || {
            // "ChromeDriver was started successfully on port 40151."
            let mut line = String::new();
            while matches!(out.read_line(&mut line), Ok(n) if n > 0) {
                if let Some(port) = line.split("on port ").nth(1) {
                    if let Ok(port) = port.trim().trim_end_matches('.').parse::<u16>() {
                        if port != 0 {
                            let _ = tx.send(port);
                        }
                    }
                }
                line.clear();
            }
        });
        let mut browser = Browser {
            driver,
            port: 0,
            session: None,
            dir,
            deadline,
        };
        browser.port = rx
            .recv_timeout(browser.left())
            .expect("chromedriver did not say which port it listens on");
        let profile = browser.dir.join("profile");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-proxy-server",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--window-size={width},{height}"),
            &format!("--user-data-dir={}", profile.display()),
        ];
        let args: Vec<String> = args.iter().map(|a| json_string(a)).collect();
        let caps = format!(
            r#"{{"capabilities":{{"alwaysMatch":{{"goog:chromeOptions":{{"binary":{},"args":[{}]}}}}}}}}"#,
            json_string(&chromium.to_string_lossy()),
            args.join(",")
        );
        let answer = browser.request("POST", "/session", Some(&caps));
        browser.session =
            Some(json_field(&answer, "sessionId").expect("a sessionId in the new session"));
        // A page load may take up to the deadline; a script half the time left, so that a
        // failed wait leaves time to look at the page.
        let ms = browser.left().as_millis();
        let script = ms / 2;
        browser.command(
            "POST",
            "timeouts",
            &format!(r#"{{"script":{script},"pageLoad":{ms}}}"#),
        );
        browser
    }

    /// The fresh directory of this browser (its profile is inside).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// chromedriver's process id (the leader of the process group Chromium runs in).
    pub fn driver_pid(&self) -> u32 {
        self.driver.id()
    }

    /// Loads `url` and waits for the page's load event.
    pub fn open(&self, url: &str) {
        self.command("POST", "url", &format!(r#"{{"url":{}}}"#, json_string(url)));
    }

    /// The id of the first element matching the CSS `selector`.
    #[track_caller]
    pub fn find(&self, selector: &str) -> String {
        let body = format!(
            r#"{{"using":"css selector","value":{}}}"#,
            json_string(selector)
        );
        let answer = self.command("POST", "element", &body);
        json_field(&answer, ELEMENT).unwrap_or_else(|| panic!("no element {selector}: {answer}"))
    }

    /// Types `text` into `element` as keystrokes (`"\u{E007}"` is Enter).
    pub fn type_into(&self, element: &str, text: &str) {
        let body = format!(r#"{{"text":{}}}"#, json_string(text));
        self.command("POST", &format!("element/{element}/value"), &body);
    }

    /// Runs `script` with `args` (a JSON array) and returns its value, a string.
    #[track_caller]
    pub fn run(&self, script: &str, args: &str) -> String {
        let body = format!(r#"{{"script":{},"args":{args}}}"#, json_string(script));
        let answer = self.command("POST", "execute/sync", &body);
        json_field(&answer, "value").unwrap_or_else(|| panic!("no string value: {answer}"))
    }

    /// Runs `script` asynchronously: it ends by calling its last argument with a string,
    /// which is returned. It may wait (for an event, a change of the page) for half the time
    /// that was left when the browser started; `Err` with chromedriver's message if it did
    /// not call back by then.
    #[track_caller]
    pub fn run_async(&self, script: &str, args: &str) -> Result<String, String> {
        let body = format!(r#"{{"script":{},"args":{args}}}"#, json_string(script));
        let path = format!(
            "/session/{}/execute/async",
            self.session.as_deref().unwrap()
        );
        let (status, answer) = http(self.port, "POST", &path, Some(&body), self.left())
            .unwrap_or_else(|e| panic!("WebDriver POST {path}: {e}"));
        match (status, json_field(&answer, "value")) {
            (200, Some(value)) => Ok(value),
            (200, None) => panic!("no string value: {answer}"),
            _ => Err(json_field(&answer, "message").unwrap_or(answer)),
        }
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        let answer = self.command("GET", "screenshot", "");
        let b64 = json_field(&answer, "value").expect("a screenshot");
        base64_decode(&b64)
    }

    /// The time left before the deadline; fails the test when there is none.
    #[track_caller]
    fn left(&self) -> Duration {
        let left = self.deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the browser test ran out of time");
        left
    }

    /// A command of the session: `/session/{id}/{path}`.
    #[track_caller]
    fn command(&self, method: &str, path: &str, body: &str) -> String {
        let session = self.session.as_deref().expect("a session");
        let body = (method == "POST").then_some(body);
        self.request(method, &format!("/session/{session}/{path}"), body)
    }

    /// One HTTP request to chromedriver; the body of its 200 answer (the test fails on any
    /// other status, with chromedriver's message).
    #[track_caller]
    fn request(&self, method: &str, path: &str, body: Option<&str>) -> String {
        let (status, answer) = http(self.port, method, path, body, self.left())
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        if status != 200 {
            let message = json_field(&answer, "message").unwrap_or(answer);
            panic!("WebDriver {method} {path}: {status}: {message}");
        }
        answer
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Politely first (Chromium quits), briefly: then by force, whatever happened.
        if let Some(session) = self.session.take() {
            let path = format!("/session/{session}");
            let _ = http(self.port, "DELETE", &path, None, Duration::from_secs(3));
        }
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
        let stray = leftovers(&self.dir);
        for pid in &stray {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        // They are not our children: wait (bounded) for them to be gone before the directory.
        let until = Instant::now() + Duration::from_secs(5);
        while !leftovers(&self.dir).is_empty() && Instant::now() < until {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The processes (not zombies) whose command line names `dir`: Chromium's, started for the
/// browser that used `dir`.
pub fn leftovers(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| Some(s.rsplit_once(')')?.1.trim_start().starts_with('Z')))
                .unwrap_or(true);
            !zombie && String::from_utf8_lossy(&cmdline).contains(&needle)
        })
        .collect()
}

/// A new, empty directory under the system's temporary directory.
fn fresh_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "threadnet-chat-browser-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// One HTTP/1.1 request to `127.0.0.1:port` (`Connection: close`), within `limit`: the status
/// and the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    limit: Duration,
) -> std::io::Result<(u16, String)> {
    let until = Instant::now() + limit;
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), limit)?;
    s.set_write_timeout(Some(limit))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    // chromedriver keeps the connection open: the answer ends where its Content-Length says.
    let mut answer = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some((status, head_len, body_len)) = parse_head(&answer)? {
            if answer.len() >= head_len + body_len {
                let body = &answer[head_len..head_len + body_len];
                return Ok((status, String::from_utf8_lossy(body).into_owned()));
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status, the head's length and the body's (`Content-Length`) of an HTTP answer, once its
/// head is complete.
fn parse_head(answer: &[u8]) -> std::io::Result<Option<(u16, usize, usize)>> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let bad = || std::io::Error::other(format!("not an HTTP answer: {head:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse().map_err(|_| bad()))
        .transpose()?
        .unwrap_or(0);
    Ok(Some((status, end + 4, length)))
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || ('\u{E000}'..='\u{F8FF}').contains(&c) => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The string value of the first `"key":` in `json`, unescaped; `None` if there is none or
/// its value is not a string. (Enough for WebDriver's answers, whose keys are unique where
/// this reads them.)
pub fn json_field(json: &str, key: &str) -> Option<String> {
    let pattern = format!("{}:", json_string(key));
    let rest = json[json.find(&pattern)? + pattern.len()..].trim_start();
    let mut chars = rest.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let unit = u32::from_str_radix(&hex, 16).ok()?;
                    out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                }
                other => out.push(other), // \" \\ \/
            },
            c => out.push(c),
        }
    }
    None
}

/// Decodes standard base64 (padding and whitespace ignored).
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
