//! The supervisor of `start -d --workers N` (workerman's master process): it starts the `N`
//! workers, restarts one that ends, after a delay that doubles with each recent end, gives up
//! on one that keeps ending, and on SIGTERM or SIGINT stops them all and exits. It never
//! serves. What it knows goes to a state file for `status`.
//!
//! A worker is watched through its pid file and the supervisor's own child processes: it is
//! up while the pid its pid file names, a pid seen serving for it before, or a child started
//! for it runs. So a worker that has handed off (`reload`: the new copy is the old one's child, not
//! the supervisor's) is followed through the pid file the new copy writes.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::procs::{is_server, read_pid, worker_pid_path};
use crate::activation::{self, PidFile};
use crate::signal::{Signal, Signals};
use crate::sys::os;

/// The delay before restarting a worker after its first end within [`CRASH_WINDOW`]; each
/// further end within the window doubles it, up to [`MAX_BACKOFF`].
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest delay before a restart.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// This many ends of one worker within [`CRASH_WINDOW`], and the supervisor gives up on it.
pub(super) const MAX_CRASHES: usize = 5;
/// See [`MAX_CRASHES`].
pub(super) const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// How often a worker is looked at: another process's end comes with no notification (a
/// worker after a hand-off is not the supervisor's child).
const POLL: Duration = Duration::from_millis(50);

/// What the supervisor is given by the `control` command that runs it: how many workers,
/// the main pid file (each worker's is named after it), how long a stop waits, and how to
/// start worker `i` (with the program's flags) and wait until it is ready.
#[derive(Clone)]
pub(super) struct Workers {
    pub(super) count: usize,
    pub(super) pid_file: PathBuf,
    pub(super) stop_timeout: Duration,
    pub(super) spawn: Arc<dyn Fn(usize) -> io::Result<Child> + Send + Sync>,
}

/// What a slot says when its worker serves.
const UP: &str = "up";

/// The supervisor's state file: the pid file's path with `.state` appended.
pub(super) fn state_path(pid_file: &Path) -> PathBuf {
    let mut path = pid_file.as_os_str().to_owned();
    path.push(".state");
    PathBuf::from(path)
}

/// What a supervisor writes for `status`: its pid, and for each worker `up` or why it is not.
#[derive(Debug)]
pub(super) struct State {
    pub(super) supervisor: u32,
    pub(super) slots: Vec<String>,
}

impl State {
    pub(super) fn render(&self) -> String {
        let mut text = format!("supervisor {}\n", self.supervisor);
        for (i, slot) in self.slots.iter().enumerate() {
            text.push_str(&format!("worker {} {slot}\n", i + 1));
        }
        text
    }

    /// The state file at `path`, if there is one that parses.
    pub(super) fn read(path: &Path) -> Option<State> {
        let text = fs::read_to_string(path).ok()?;
        let mut lines = text.lines();
        let supervisor = lines.next()?.strip_prefix("supervisor ")?.parse().ok()?;
        let slots = lines
            .map(|l| {
                let (_, rest) = l.strip_prefix("worker ")?.split_once(' ')?;
                Some(rest.to_string())
            })
            .collect::<Option<Vec<_>>>()?;
        Some(State { supervisor, slots })
    }

    /// Whether worker `i` (1-based) is down for the supervisor, and why: `None` when up.
    pub(super) fn why_down(&self, i: usize) -> Option<&str> {
        self.slots
            .get(i - 1)
            .map(String::as_str)
            .filter(|s| *s != UP)
    }
}

/// What the supervisor's threads share: the stop flag and the state, written to the state
/// file on every change.
struct Shared {
    stopping: AtomicBool,
    state: Mutex<State>,
    path: PathBuf,
}

impl Shared {
    fn set(&self, i: usize, text: String) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.slots[i - 1] = text;
        if let Err(e) = activation::write_atomic(&self.path, &state.render()) {
            say(&format!(
                "cannot write the state file {}: {e}",
                self.path.display()
            ));
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Sleeps `delay` in steps of [`POLL`]: `false` if the supervisor began to stop meanwhile.
    fn sleep(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        while !self.stopping() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            thread::sleep(left.min(POLL));
        }
        false
    }
}

/// Removes the state file when the supervisor ends.
struct StateFile(PathBuf);

impl Drop for StateFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// One line on stderr (the log file), marked as the supervisor's.
fn say(what: &str) {
    eprintln!("threadnet supervisor (pid {}): {what}", std::process::id());
}

/// Runs the supervisor of `workers` until it is stopped; true if every worker started, false
/// if one did not (the others are stopped) or the supervisor could not run (said on stderr).
pub(super) fn run(workers: &Workers) -> bool {
    match supervise(workers) {
        Ok(started) => started,
        Err(e) => {
            say(&format!("{e}"));
            false
        }
    }
}

fn supervise(control: &Workers) -> io::Result<bool> {
    // First, so that a `stop` meanwhile is kept rather than killing the supervisor alone.
    let signals = Signals::new(&[Signal::Term, Signal::Int, Signal::Hup, Signal::Usr2])?;
    let n = control.count;
    let path = state_path(&control.pid_file);
    let shared = Arc::new(Shared {
        stopping: AtomicBool::new(false),
        state: Mutex::new(State {
            supervisor: std::process::id(),
            slots: vec!["starting".to_string(); n],
        }),
        path: path.clone(),
    });
    let _state_file = StateFile(path);
    let _pid_file = PidFile::create(&control.pid_file)?;

    // The workers one after the other, each waited for until ready.
    let mut slots = Vec::new();
    for i in 1..=n {
        let started = match signals.try_recv() {
            Some(Signal::Term | Signal::Int) => Err(io::Error::other("stopped while starting")),
            _ => (control.spawn)(i),
        };
        match started {
            Ok(child) => {
                slots.push(Slot::new(i, worker_pid_path(&control.pid_file, i), child));
                shared.set(i, UP.to_string());
            }
            Err(e) => {
                say(&format!(
                    "worker {i} did not start: {e}; stopping the others"
                ));
                stop_all(slots, control);
                return Ok(false);
            }
        }
    }
    if let Err(e) = activation::notify_ready() {
        say(&format!("cannot notify readiness: {e}"));
    }
    say(&format!("supervising {n} workers"));

    let mut watchers = Vec::new();
    for slot in slots {
        let (control, shared) = (control.clone(), Arc::clone(&shared));
        match thread::Builder::new()
            .name(format!("threadnet-supervise-{}", slot.i))
            .spawn(move || slot.watch(&control, &shared))
        {
            Ok(watcher) => watchers.push(watcher),
            Err(e) => {
                say(&format!("cannot start a thread to watch a worker: {e}"));
                break;
            }
        }
    }
    if watchers.len() == n {
        loop {
            match signals.recv() {
                Signal::Term | Signal::Int => break,
                other => say(&format!(
                    "{other} ignored (reload the workers with `reload`)"
                )),
            }
        }
    }
    shared.stopping.store(true, Ordering::SeqCst);
    say("stopping the workers");
    let slots: Vec<Slot> = watchers.into_iter().filter_map(|w| w.join().ok()).collect();
    stop_all(slots, control);
    Ok(true)
}

/// Signals every process of `slots`, and any other that a worker pid file names (a slot lost
/// with its thread), with SIGTERM and waits up to the stop timeout for them to exit; removes
/// the pid files left naming one that has gone (after a crash).
fn stop_all(mut slots: Vec<Slot>, control: &Workers) {
    let mut pids: Vec<u32> = slots.iter_mut().flat_map(Slot::live).collect();
    let files =
        (1..=control.count).filter_map(|i| read_pid(&worker_pid_path(&control.pid_file, i)));
    pids.extend(files.filter(|&p| is_server(p)));
    pids.sort_unstable();
    pids.dedup();
    for &pid in &pids {
        let _ = os::terminate(pid);
    }
    let until = Instant::now() + control.stop_timeout;
    loop {
        slots.iter_mut().for_each(Slot::reap);
        let left: Vec<u32> = pids.iter().copied().filter(|&p| is_server(p)).collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() >= until {
            say(&format!(
                "pids {left:?} still running {:?} after SIGTERM; leaving them",
                control.stop_timeout
            ));
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    for slot in &slots {
        if read_pid(&slot.pid_file).is_some_and(|p| !is_server(p)) {
            let _ = fs::remove_file(&slot.pid_file);
        }
    }
}

/// One worker's place: the processes started for it, the pids seen serving for it, and when
/// it ended lately.
struct Slot {
    i: usize,
    /// The worker's pid file.
    pid_file: PathBuf,
    children: Vec<Child>,
    /// Every pid seen serving for this worker that still ran when last looked at: the old
    /// copy as well as the new during a hand-off, so that a hand-off that fails (the new copy
    /// gone, the pid file not yet pointed back at the old one) is not taken for a crash.
    known: Vec<u32>,
    ends: VecDeque<Instant>,
    /// How the last process of this worker ended, as far as the supervisor can tell.
    ended: String,
}

impl Slot {
    fn new(i: usize, pid_file: PathBuf, child: Child) -> Slot {
        Slot {
            i,
            pid_file,
            known: vec![child.id()],
            children: vec![child],
            ends: VecDeque::new(),
            ended: "gone".to_string(),
        }
    }

    /// Reaps the children that have exited, noting how.
    fn reap(&mut self) {
        let ended = &mut self.ended;
        self.children.retain_mut(|c| match c.try_wait() {
            Ok(Some(status)) => {
                *ended = status.to_string();
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
    }

    /// The live processes of this worker: the one its pid file names, those seen serving
    /// before, the children (a draining one after a hand-off among them).
    fn live(&mut self) -> Vec<u32> {
        self.reap();
        let mut pids: Vec<u32> = read_pid(&self.pid_file)
            .into_iter()
            .chain(self.known.iter().copied())
            .chain(self.children.iter().map(Child::id))
            .filter(|&p| is_server(p))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Whether a process of this worker runs (and those that do are known from now on).
    fn serving(&mut self) -> bool {
        self.known = self.live();
        !self.known.is_empty()
    }

    /// Watches the worker until the supervisor stops or gives up on it: restarts it when it
    /// ends, after a delay. Returns the slot, for the supervisor to stop what runs in it.
    fn watch(mut self, control: &Workers, shared: &Shared) -> Slot {
        let i = self.i;
        loop {
            if shared.stopping() {
                return self;
            }
            if self.serving() {
                thread::sleep(POLL);
                continue;
            }
            let now = Instant::now();
            while self
                .ends
                .front()
                .is_some_and(|&t| now.duration_since(t) >= CRASH_WINDOW)
            {
                self.ends.pop_front();
            }
            self.ends.push_back(now);
            let ends = self.ends.len();
            if ends >= MAX_CRASHES {
                let why = format!(
                    "{ends} crashes within {CRASH_WINDOW:?}, the last: {}",
                    self.ended
                );
                say(&format!("gave up on worker {i} ({why}): not restarting it"));
                shared.set(i, format!("gave up after {why}"));
                return self;
            }
            let doubled = FIRST_BACKOFF.saturating_mul(1 << (ends - 1).min(16));
            let delay = doubled.min(MAX_BACKOFF);
            say(&format!(
                "worker {i} ended ({}); restarting worker {i} in {delay:?} (crash {ends}; \
                 at {MAX_CRASHES} within {CRASH_WINDOW:?} it is given up)",
                self.ended
            ));
            shared.set(
                i,
                format!(
                    "restarting after crash {ends} of {MAX_CRASHES}, the last: {}",
                    self.ended
                ),
            );
            if !shared.sleep(delay) {
                return self;
            }
            match (control.spawn)(i) {
                Ok(child) => {
                    say(&format!("worker {i} restarted: pid {}", child.id()));
                    self.known.push(child.id());
                    self.children.push(child);
                    shared.set(i, UP.to_string());
                }
                Err(e) => self.ended = format!("did not start: {e}"),
            }
        }
    }
}
