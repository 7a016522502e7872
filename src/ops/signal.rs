//! Unix signals delivered to an ordinary thread, and graceful stop on SIGINT/SIGTERM.
//!
//! A signal handler may only make async-signal-safe calls: no allocation, no lock, no
//! channel. So the handler this module installs (with `sigaction`, `SA_RESTART`) does one
//! thing: it writes the signal's number, one byte, to a self-pipe (a std
//! [`UnixStream::pair`](std::os::unix::net::UnixStream::pair)). A dispatcher thread reads the
//! pipe and hands each signal to every [`Signals`] that asked for it, through a channel. std
//! has no way to install a handler at all, so the two C calls this needs (`sigaction`,
//! `write`) are declared in the crate's one `unsafe` module, `os`; this module is safe code.
//!
//! ```text
//!  kill -TERM pid ─▶ handler: write(pipe, 15) ─▶ dispatcher thread ─▶ channel ─▶ signals.recv()
//! ```
//!
//! For a server, [`stop_on_signals`] is the whole pattern: it blocks until the server has
//! stopped, stopping it gracefully on the first SIGINT or SIGTERM and at once on the second.
//! [`StopOnSignals`] adds a SIGHUP reload hook and a SIGUSR2 hand-off hook.
//!
//! ```no_run
//! use std::time::Duration;
//! use threadnet::{codec::Lines, signal, Connection, TcpServer};
//!
//! let server = TcpServer::builder()
//!     .addr("127.0.0.1:7000")
//!     .start(Lines::new(), |_: &Connection<Lines>| {
//!         |conn: &Connection<Lines>, line: String| {
//!             let _ = conn.send(line);
//!         }
//!     })?;
//! // Returns once the server has stopped: Ctrl-C or `kill` stop it gracefully (connections
//! // get 10 s to finish), a second Ctrl-C closes what is left.
//! signal::stop_on_signals(&server, Duration::from_secs(10))?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # A restart without downtime
//!
//! The whole pattern of a service that hands its port to a new copy of itself on SIGUSR2,
//! as the `echo_service` and `http_hello` examples do: the listener is inherited when there is
//! one (systemd, or the process handing off to this one) and bound otherwise; the handlers go
//! in before the server is announced; `run` returns once the server has stopped, by a signal
//! or by handing off, and the process exits 0.
//!
//! ```no_run
//! use std::time::Duration;
//! use threadnet::signal::StopOnSignals;
//! use threadnet::{activation, codec::Lines, Connection, TcpServer};
//!
//! let listener = activation::tcp_listener("127.0.0.1:8080")?; // inherited, or bound
//! let server = TcpServer::builder()
//!     .listener(listener.try_clone()?)
//!     .start(Lines::new(), |_: &Connection<Lines>| {
//!         |conn: &Connection<Lines>, line: String| drop(conn.send(line))
//!     })?;
//! let stop = StopOnSignals::new(Duration::from_secs(10)) // SIGINT/SIGTERM: graceful stop
//!     .hand_off(Duration::from_secs(60), &[&listener])? // SIGUSR2: hand off to a new copy
//!     .arm()?; // the handlers go in before the announcement
//! println!("listening on {}", server.local_addr());
//! activation::notify_ready()?; // systemd's Type=notify, or the process handing off
//! stop.run(&server)?; // returns once stopped
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The port never closes: the new copy inherits the listener and says it is ready, then this
//! one stops accepting and lets its connections finish ([`ServerHandle::drain`]), up to the
//! deadline. [`activation`](crate::activation) tells how the listener is passed, and
//! [`control`](crate::control) puts it all behind `start -d`, `stop`, `reload` and `status`.
//!
//! Implemented for Linux on x86_64 and aarch64; elsewhere [`Signals::new`] fails with
//! [`io::ErrorKind::Unsupported`] and [`stop_on_signals`] only waits for the server to stop.
//!
//! [`ServerHandle::drain`]: crate::ServerHandle::drain

use std::fmt;
use std::io::{self, Read};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use crate::codec::Codec;
use crate::server::ServerHandle;
use crate::sys::os;
use crate::udp::UdpHandle;

/// A signal this module can deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGHUP: by convention, reload the configuration.
    Hup,
    /// SIGINT: Ctrl-C in a terminal.
    Int,
    /// SIGTERM: the polite request to stop (`kill`, service managers).
    Term,
    /// SIGUSR1: the program's own meaning.
    Usr1,
    /// SIGUSR2: the program's own meaning; [`StopOnSignals::on_handoff`] uses it for a restart.
    Usr2,
}

impl Signal {
    /// Every signal this module can deliver.
    pub const ALL: [Signal; 5] = [
        Signal::Hup,
        Signal::Int,
        Signal::Term,
        Signal::Usr1,
        Signal::Usr2,
    ];

    /// The signal's number on this platform (`SIGTERM` is 15).
    pub fn number(self) -> i32 {
        match self {
            Signal::Hup => os::SIGHUP,
            Signal::Int => os::SIGINT,
            Signal::Term => os::SIGTERM,
            Signal::Usr1 => os::SIGUSR1,
            Signal::Usr2 => os::SIGUSR2,
        }
    }

    /// The signal's name as `kill -l` prints it, without `SIG`: `"TERM"`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Term => "TERM",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
        }
    }

    fn from_number(n: i32) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.number() == n)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

type Deliver = Box<dyn Fn(Signal) + Send>;

/// Who listens to what, and what each handled signal did before.
struct Hub {
    next_id: u64,
    subscribers: Vec<(u64, Vec<Signal>, Deliver)>,
    installed: Vec<(Signal, os::Disposition)>,
    dispatcher_started: bool,
}

static HUB: Mutex<Hub> = Mutex::new(Hub {
    next_id: 0,
    subscribers: Vec::new(),
    installed: Vec::new(),
    dispatcher_started: false,
});

fn lock_hub() -> MutexGuard<'static, Hub> {
    // Nothing panics while holding the lock except a `Deliver`, which only sends on a channel.
    HUB.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the dispatcher thread and installs the self-pipe, once per process.
fn start_dispatcher(hub: &mut Hub) -> io::Result<()> {
    if hub.dispatcher_started {
        return Ok(());
    }
    let (mut read_end, write_end) = UnixStream::pair()?;
    os::set_signal_pipe(write_end)?;
    thread::Builder::new()
        .name("threadnet-signals".into())
        .spawn(move || {
            let mut buf = [0u8; 64];
            loop {
                let n = match read_end.read(&mut buf) {
                    Ok(0) => return, // cannot happen: the write end is never closed
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                };
                let hub = lock_hub();
                for signal in buf[..n]
                    .iter()
                    .filter_map(|&b| Signal::from_number(b.into()))
                {
                    for (_, wanted, deliver) in &hub.subscribers {
                        if wanted.contains(&signal) {
                            deliver(signal);
                        }
                    }
                }
            }
        })?;
    hub.dispatcher_started = true;
    Ok(())
}

/// Registers `deliver` for `signals`, installing the handler for each that has none yet.
/// Returns the subscription's id for [`unsubscribe`].
fn subscribe(signals: &[Signal], deliver: Deliver) -> io::Result<u64> {
    let mut hub = lock_hub();
    start_dispatcher(&mut hub)?;
    let id = hub.next_id;
    hub.next_id += 1;
    hub.subscribers.push((id, signals.to_vec(), deliver));
    for &signal in signals {
        if hub.installed.iter().any(|(s, _)| *s == signal) {
            continue;
        }
        match os::install_handler(signal.number()) {
            Ok(old) => hub.installed.push((signal, old)),
            Err(e) => {
                drop(hub);
                unsubscribe(id);
                return Err(e);
            }
        }
    }
    Ok(id)
}

/// Removes a subscription; a signal nobody listens to any more gets its old action back.
fn unsubscribe(id: u64) {
    let mut hub = lock_hub();
    hub.subscribers.retain(|(i, _, _)| *i != id);
    let Hub {
        subscribers,
        installed,
        ..
    } = &mut *hub;
    installed.retain(|&(signal, old)| {
        let listened = subscribers.iter().any(|(_, w, _)| w.contains(&signal));
        if !listened && os::restore_handler(signal.number(), old).is_err() {
            let _ = os::default_handler(signal.number());
        }
        listened
    });
}

/// A subscription to some signals: while it lives, they no longer have their default action
/// (for all five, terminating the process) but are delivered here, in order.
///
/// Several `Signals` may listen to the same signal; each gets every delivery. Dropping the
/// last one that listens to a signal puts back the signal's previous action.
///
/// Signals that arrive faster than they are read are kept (a backlog of some thousands in the
/// self-pipe, then without limit in the channel); the kernel itself merges a signal sent again
/// before its handler ran.
///
/// ```no_run
/// use threadnet::signal::{Signal, Signals};
///
/// let signals = Signals::new(&[Signal::Term, Signal::Int, Signal::Hup])?;
/// for signal in signals.iter() {
///     match signal {
///         Signal::Hup => println!("reloading"),
///         _ => break, // TERM or INT: leave
///     }
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Signals {
    id: u64,
    rx: Receiver<Signal>,
}

impl Signals {
    /// Starts delivering `signals` to this subscription. The handler is installed before this
    /// returns, so a signal sent afterwards is never lost.
    ///
    /// # Errors
    ///
    /// The platform is not supported ([`io::ErrorKind::Unsupported`]: see the module docs),
    /// or the self-pipe, the dispatcher thread or `sigaction` could not be made.
    pub fn new(signals: &[Signal]) -> io::Result<Signals> {
        let (tx, rx) = mpsc::channel();
        let id = subscribe(
            signals,
            Box::new(move |s| {
                let _ = tx.send(s);
            }),
        )?;
        Ok(Signals { id, rx })
    }

    /// Blocks until one of the signals arrives.
    pub fn recv(&self) -> Signal {
        self.rx
            .recv()
            .expect("the signal hub keeps the sender while subscribed")
    }

    /// Waits up to `timeout` for a signal; `None` if none came.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Signal> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// A signal that has arrived already, or `None`.
    pub fn try_recv(&self) -> Option<Signal> {
        self.rx.try_recv().ok()
    }

    /// The signals as they arrive, forever: end the loop with `break`.
    pub fn iter(&self) -> impl Iterator<Item = Signal> + '_ {
        std::iter::repeat_with(|| self.recv())
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        unsubscribe(self.id);
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals").field("id", &self.id).finish()
    }
}

/// A running server that [`StopOnSignals`] can stop: [`ServerHandle`] (TCP and Unix) and
/// [`UdpHandle`] implement it with their own methods.
pub trait Stoppable: Clone + Send + 'static {
    /// Stops gracefully, each connection getting `deadline` to finish; returns when stopped.
    fn stop(&self, deadline: Duration);
    /// Blocks until the server has stopped.
    fn wait(&self);
    /// Closes every open connection now, dropping what is queued.
    fn close_all(&self);
    /// Shuts every open connection down gracefully now (its queue is written, then FIN), each
    /// getting `deadline` to finish.
    fn shutdown_all(&self, deadline: Duration);
    /// Stops accepting and lets the connections end on their own for up to `deadline`, for a
    /// hand-off. Defaults to [`stop`](Self::stop), which shuts the connections down at once
    /// (a FIN after what is queued) rather than waiting for their peers.
    fn drain(&self, deadline: Duration) {
        self.stop(deadline);
    }
}

impl<C: Codec> Stoppable for ServerHandle<C> {
    fn stop(&self, deadline: Duration) {
        ServerHandle::stop(self, deadline);
    }
    fn wait(&self) {
        ServerHandle::wait(self);
    }
    fn close_all(&self) {
        self.connections().for_each(|c| c.close());
    }
    fn shutdown_all(&self, deadline: Duration) {
        self.connections().for_each(|c| c.shutdown(deadline));
    }
    fn drain(&self, deadline: Duration) {
        ServerHandle::drain(self, deadline);
    }
}

impl<C: Codec> Stoppable for UdpHandle<C> {
    fn stop(&self, deadline: Duration) {
        UdpHandle::stop(self, deadline);
    }
    fn wait(&self) {
        UdpHandle::wait(self);
    }
    fn close_all(&self) {
        self.connections().for_each(|c| c.close());
    }
    fn shutdown_all(&self, deadline: Duration) {
        self.connections().for_each(|c| c.shutdown(deadline));
    }
}

/// Blocks until `server` has stopped, stopping it on signals: the first SIGINT or SIGTERM
/// stops it gracefully with `deadline` for its connections to finish (goes' OnStop), a second
/// one closes every connection at once. Other signals keep their default action. Returns when
/// the server has stopped, whoever stopped it.
///
/// The same as `StopOnSignals::new(deadline).run(server)`. A signal that arrives before this
/// call still has its default action (SIGTERM kills the process): a server that announces
/// itself (a `listening on` line a script waits for) should install the handlers first with
/// [`StopOnSignals::arm`], then announce, then [`Armed::run`].
///
/// # Errors
///
/// The signal handlers could not be installed ([`Signals::new`]); on an unsupported platform
/// it waits for the server to stop instead, without error.
pub fn stop_on_signals<S: Stoppable>(server: &S, deadline: Duration) -> io::Result<()> {
    StopOnSignals::new(deadline).run(server)
}

/// What [`StopOnSignals::run`] waits for.
enum Event {
    Signal(Signal),
    Stopped,
}

type Hook = Box<dyn FnMut() + Send>;
type HandoffHook = Box<dyn FnMut() -> bool + Send>;

/// Serves until a signal says stop: SIGINT/SIGTERM stop the server gracefully, a second
/// SIGINT/SIGTERM closes what is left at once, SIGHUP calls a reload hook, SIGUSR2 a hand-off
/// hook (each only if set; otherwise the signal keeps its default action).
///
/// ```no_run
/// use std::time::Duration;
/// use threadnet::signal::StopOnSignals;
/// use threadnet::{codec::Lines, Connection, TcpServer};
///
/// let server = TcpServer::builder().start(Lines::new(), |_: &Connection<Lines>| {
///     |conn: &Connection<Lines>, line: String| {
///         let _ = conn.send(line);
///     }
/// })?;
/// StopOnSignals::new(Duration::from_secs(10))
///     .on_reload(|| eprintln!("SIGHUP: reloading"))
///     .run(&server)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct StopOnSignals {
    deadline: Duration,
    reload: Option<Hook>,
    handoff: Option<(Duration, HandoffHook)>,
}

impl StopOnSignals {
    /// Stops on SIGINT/SIGTERM, giving connections `deadline` to finish.
    pub fn new(deadline: Duration) -> StopOnSignals {
        StopOnSignals {
            deadline,
            reload: None,
            handoff: None,
        }
    }

    /// Calls `hook` on each SIGHUP (goes' OnReload), on the thread that called
    /// [`run`](Self::run). Defaults to none: SIGHUP keeps its default action (terminate).
    pub fn on_reload(mut self, hook: impl FnMut() + Send + 'static) -> Self {
        self.reload = Some(Box::new(hook));
        self
    }

    /// Calls `hook` on SIGUSR2; if it returns `true` (it has started the process that takes
    /// over, for example with [`activation::spawn_self`](crate::activation::spawn_self)),
    /// the hook is dropped (so is a listener it holds) and the server is drained
    /// ([`Stoppable::drain`]) with `deadline` as the time its connections get to finish (goes
    /// waits up to a minute). On
    /// `false` the server goes on serving. The hook is also dropped when a SIGINT/SIGTERM
    /// stops the server, so that a listener it holds closes with the server's. Defaults to
    /// none: SIGUSR2 keeps its default action (terminate).
    pub fn on_handoff(
        mut self,
        deadline: Duration,
        hook: impl FnMut() -> bool + Send + 'static,
    ) -> Self {
        self.handoff = Some((deadline, Box::new(hook)));
        self
    }

    /// Installs the signal handlers now, before the server is announced: a signal that
    /// arrives between here and [`Armed::run`] is kept, not acted on by its default action
    /// (which for SIGTERM, SIGHUP and SIGUSR2 is to kill the process). Print "listening" after
    /// this, not before.
    ///
    /// # Errors
    ///
    /// The signal handlers could not be installed ([`Signals::new`]). On an unsupported
    /// platform it succeeds, and [`Armed::run`] then only waits for the server to stop.
    pub fn arm(self) -> io::Result<Armed> {
        let mut wanted = vec![Signal::Int, Signal::Term];
        if self.reload.is_some() {
            wanted.push(Signal::Hup);
        }
        if self.handoff.is_some() {
            wanted.push(Signal::Usr2);
        }
        let (tx, rx) = mpsc::channel();
        let signal_tx = tx.clone();
        let subscription = subscribe(
            &wanted,
            Box::new(move |s| {
                let _ = signal_tx.send(Event::Signal(s));
            }),
        );
        let events = match subscription {
            Ok(id) => Some((tx, rx, Unsubscribe(id))),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => None,
            Err(e) => return Err(e),
        };
        Ok(Armed { cfg: self, events })
    }

    /// Hands `listeners` over on SIGUSR2 (goes' graceful restart): a new copy of this program
    /// is started with them as fds 3, 4, … in order
    /// ([`activation::spawn_self`](crate::activation::spawn_self)), and once it says it is
    /// ready, this server drains (its connections get `deadline` to finish) and stops. If the
    /// copy fails, this one serves on: a copy that is not ready within 10 s gets SIGTERM
    /// (it may have accepted connections already; SIGKILL only if it still runs
    /// [`KILL_AFTER`](crate::activation::KILL_AFTER) later), and this process's
    /// [`PidFile`](crate::activation::PidFile)s name it again once the copy is gone. The copy
    /// starts with the signal dispositions this process had before its handlers went in (a
    /// signal ignored under `nohup` stays ignored). The listeners are the ones the program serves on
    /// ([`ServerBuilder::listener`](crate::ServerBuilder::listener)): the main one first, then
    /// any other (a metrics endpoint), which the new copy finds in the same order with
    /// [`activation::listeners`](crate::activation::listeners). Clones are kept for the
    /// hand-off. Progress is reported on stderr.
    ///
    /// # Errors
    ///
    /// A listener cannot be cloned (out of file descriptors).
    pub fn hand_off(self, deadline: Duration, listeners: &[&TcpListener]) -> io::Result<Self> {
        /// How long the new copy gets to say it is ready.
        const READY_TIMEOUT: Duration = Duration::from_secs(10);
        let kept = listeners
            .iter()
            .map(|l| l.try_clone())
            .collect::<io::Result<Vec<_>>>()?;
        Ok(self.on_handoff(deadline, move || {
            let fds: Vec<_> = kept.iter().map(|l| l.as_fd()).collect();
            match crate::activation::spawn_self(&fds, READY_TIMEOUT) {
                Ok(child) => {
                    eprintln!("threadnet: handed off to pid {}", child.id());
                    true
                }
                Err(e) => {
                    eprintln!("threadnet: hand-off failed, serving on: {e}");
                    false
                }
            }
        }))
    }

    /// Blocks until `server` has stopped, acting on signals meanwhile as set up: the same as
    /// `self.arm()?.run(server)`.
    ///
    /// # Errors
    ///
    /// As [`arm`](Self::arm).
    pub fn run<S: Stoppable>(self, server: &S) -> io::Result<()> {
        self.arm()?.run(server)
    }
}

/// A [`StopOnSignals`] whose handlers are installed ([`StopOnSignals::arm`]); [`run`](Self::run)
/// it once the server is up.
pub struct Armed {
    cfg: StopOnSignals,
    /// `None` where signals are unsupported.
    events: Option<(mpsc::Sender<Event>, mpsc::Receiver<Event>, Unsubscribe)>,
}

impl fmt::Debug for Armed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Armed").field("cfg", &self.cfg).finish()
    }
}

impl Armed {
    /// Blocks until `server` has stopped, acting on signals meanwhile (including those that
    /// arrived since [`StopOnSignals::arm`]).
    ///
    /// # Errors
    ///
    /// The thread that waits for the server could not be spawned.
    pub fn run<S: Stoppable>(self, server: &S) -> io::Result<()> {
        let Armed {
            cfg: mut this,
            events,
        } = self;
        let Some((tx, rx, _unsubscribe)) = events else {
            server.wait();
            return Ok(());
        };
        let waiter = {
            let server = server.clone();
            thread::Builder::new()
                .name("threadnet-stop-wait".into())
                .spawn(move || {
                    server.wait();
                    let _ = tx.send(Event::Stopped);
                })?
        };
        // The graceful stop runs on its own thread, so that this one can still act on a
        // second signal meanwhile.
        let mut stopper: Option<Option<thread::JoinHandle<()>>> = None;
        let start_stop = |deadline: Duration, drain: bool| {
            let stopping = server.clone();
            let spawned = thread::Builder::new()
                .name("threadnet-stop".into())
                .spawn(move || match drain {
                    true => stopping.drain(deadline),
                    false => stopping.stop(deadline),
                });
            // Out of threads: stop from here, giving up the immediate second stop.
            spawned.map_err(|_| server.stop(deadline)).ok()
        };
        // A hand-off's drain waits for connections to end on their own; a first SIGINT/SIGTERM
        // during it asks them to end now, gracefully; only a second one closes them.
        let mut draining = false;
        // The waiter holds a sender until the server stops, so recv cannot fail first.
        while let Ok(Event::Signal(signal)) = rx.recv() {
            match signal {
                Signal::Int | Signal::Term if stopper.is_none() => {
                    // Whatever the hooks hold (a listener kept for a hand-off) goes now.
                    this.handoff = None;
                    stopper = Some(start_stop(this.deadline, false));
                }
                Signal::Int | Signal::Term if draining => {
                    draining = false;
                    server.shutdown_all(this.deadline);
                }
                Signal::Int | Signal::Term => server.close_all(),
                Signal::Hup => {
                    if let Some(reload) = &mut this.reload {
                        reload();
                    }
                }
                Signal::Usr2 if stopper.is_none() => {
                    if let Some((deadline, mut handoff)) = this.handoff.take() {
                        if handoff() {
                            drop(handoff); // what it holds (the listener) is the new process's
                            stopper = Some(start_stop(deadline, true));
                            draining = true;
                        } else {
                            this.handoff = Some((deadline, handoff));
                        }
                    }
                }
                Signal::Usr1 | Signal::Usr2 => {}
            }
        }
        let _ = waiter.join();
        if let Some(Some(stopper)) = stopper {
            let _ = stopper.join();
        }
        Ok(())
    }
}

impl fmt::Debug for StopOnSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopOnSignals")
            .field("deadline", &self.deadline)
            .field("reload", &self.reload.is_some())
            .field("handoff", &self.handoff.as_ref().map(|(d, _)| d))
            .finish()
    }
}

/// Ends a subscription when dropped.
struct Unsubscribe(u64);

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        unsubscribe(self.0);
    }
}
