//! The proxy: a listener, an accept thread that dials the upstream for every client, and two
//! pump threads per connection; `stop` ends them all and joins them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::faults::{Direction, Faults, Rng};
use super::pair::Pair;
use super::pump::{Pump, WriteLog};

/// How long dialling the upstream may take before the client is reset.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections whose write sizes are recorded, when recording is on (the first ones).
const MAX_LOGGED_CONNECTIONS: usize = 1024;
/// Stack of each proxy thread: they hold a 16 KiB buffer and little else.
const STACK: usize = 128 * 1024;

/// Configures and starts a [`FaultProxy`]; made by [`FaultProxy::builder`].
#[derive(Debug)]
pub struct FaultProxyBuilder {
    listen: io::Result<SocketAddr>,
    upstream: Option<io::Result<SocketAddr>>,
    client_to_server: Faults,
    server_to_client: Faults,
    seed: u64,
    record_writes: bool,
}

/// A TCP proxy on loopback that injects faults, per direction, between the clients that
/// connect to it and one upstream server. See the [module docs](super) for an example and
/// [`Faults`] for what it can do.
///
/// Threads: one accepts, and each proxied connection has two, one per direction. Every
/// random choice is drawn from [`seed`](FaultProxyBuilder::seed), mixed with the
/// connection's number (in the order accepted, from 0) and the direction.
///
/// A client whose upstream cannot be reached within 2 s is reset. A reset from either peer
/// (or a failed write to it) resets the other one too; an EOF from either is passed on as a
/// half-close once what came before it has been written.
///
/// Dropping the proxy stops it, as [`stop`](FaultProxy::stop) does.
#[derive(Debug)]
pub struct FaultProxy {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// What the accept thread, the proxy handle and `stop` share.
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    client_to_server: Faults,
    server_to_client: Faults,
    seed: u64,
    record_writes: bool,
    stopping: AtomicBool,
    accepted: AtomicUsize,
    /// Clients whose upstream was reached.
    dialled: AtomicUsize,
    /// The live connections, to end them on stop.
    pairs: Mutex<Vec<Weak<Pair>>>,
    /// The pump threads not yet joined.
    pumps: Mutex<Vec<JoinHandle<()>>>,
    /// Per connection in the order accepted (a slot taken at accept, before the dial), the
    /// write sizes of each direction (when recording).
    logs: Mutex<Vec<[WriteLog; 2]>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each of these is a list edited in single pushes and retains: still good if poisoned.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultProxy {
    /// A builder: listens on `127.0.0.1:0`, no faults, seed 0, no recording.
    pub fn builder() -> FaultProxyBuilder {
        FaultProxyBuilder {
            listen: Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            upstream: None,
            client_to_server: Faults::new(),
            server_to_client: Faults::new(),
            seed: 0,
            record_writes: false,
        }
    }

    /// The address clients connect to (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many clients have been accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many clients have been connected to the upstream so far: those accepted whose
    /// dial succeeded (the others were reset). A test that counts on the server's side of
    /// every proxied connection, when the client side cannot tell (the client of a
    /// [`reset_after(0)`](Faults::reset_after) is reset either way), checks it here.
    pub fn upstream_connections(&self) -> usize {
        self.shared.dialled.load(Ordering::SeqCst)
    }

    /// The sizes of the writes made so far in `direction` of connection number `connection`
    /// (in the order accepted, from 0), in order: where the proxy cut the stream. `None`
    /// unless [`record_writes`](FaultProxyBuilder::record_writes) is on, or for a connection
    /// not accepted (or past the first 1024). At most 65 536 writes are kept per direction.
    ///
    /// The number is the one [`connections`](Self::connections) counted at accept, whether or
    /// not the upstream could be reached: a connection whose dial failed (its client was
    /// reset) has empty logs, and does not shift the numbers of those after it.
    pub fn write_sizes(&self, connection: usize, direction: Direction) -> Option<Vec<usize>> {
        let logs = lock(&self.shared.logs);
        let log = &logs.get(connection)?[direction as usize];
        let sizes = lock(log).clone();
        Some(sizes)
    }

    /// Stops the proxy: no new clients, every proxied connection shut down both ways (each
    /// peer reads EOF), and every thread joined. Returns at once, unless the accept thread
    /// is dialling the upstream: then within that dial's timeout (2 s) at worst.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept thread with a connection of our own; it looks at `stopping` first.
        let _ = TcpStream::connect_timeout(&wake_addr(self.local_addr), CONNECT_TIMEOUT);
        let _ = accept.join();
        // No connection is added after the accept thread has gone.
        for pair in lock(&self.shared.pairs).drain(..) {
            if let Some(pair) = pair.upgrade() {
                pair.stop();
            }
        }
        let pumps = std::mem::take(&mut *lock(&self.shared.pumps));
        for pump in pumps {
            let _ = pump.join();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Where to connect to reach a listener: its own address, or loopback for a wildcard one.
fn wake_addr(local: SocketAddr) -> SocketAddr {
    match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, local.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, local.port()).into(),
        _ => local,
    }
}

fn first_addr(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    })
}

impl FaultProxyBuilder {
    /// Where to listen (default `127.0.0.1:0`: loopback, any free port). The first address
    /// it resolves to is used.
    pub fn listen(mut self, addr: impl ToSocketAddrs) -> FaultProxyBuilder {
        self.listen = first_addr(addr);
        self
    }

    /// The server every client is proxied to (required). The first address it resolves to
    /// is used.
    pub fn upstream(mut self, addr: impl ToSocketAddrs) -> FaultProxyBuilder {
        self.upstream = Some(first_addr(addr));
        self
    }

    /// The faults applied to what clients send to the server.
    pub fn client_to_server(mut self, faults: Faults) -> FaultProxyBuilder {
        self.client_to_server = faults;
        self
    }

    /// The faults applied to what the server sends back.
    pub fn server_to_client(mut self, faults: Faults) -> FaultProxyBuilder {
        self.server_to_client = faults;
        self
    }

    /// The seed of every random choice (jitter, split sizes); default 0.
    pub fn seed(mut self, seed: u64) -> FaultProxyBuilder {
        self.seed = seed;
        self
    }

    /// Records the size of every write, for [`FaultProxy::write_sizes`] (default off).
    pub fn record_writes(mut self, on: bool) -> FaultProxyBuilder {
        self.record_writes = on;
        self
    }

    /// Binds the listener and starts the accept thread.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if no upstream was given or an address resolved to nothing; the error
    /// of resolving an address, of binding, or of spawning the thread.
    pub fn start(self) -> io::Result<FaultProxy> {
        let upstream = self.upstream.unwrap_or_else(|| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "FaultProxy needs an upstream address",
            ))
        })?;
        let listener = TcpListener::bind(self.listen?)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            client_to_server: self.client_to_server,
            server_to_client: self.server_to_client,
            seed: self.seed,
            record_writes: self.record_writes,
            stopping: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            dialled: AtomicUsize::new(0),
            pairs: Mutex::new(Vec::new()),
            pumps: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
        });
        let for_thread = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("fault-proxy-accept".into())
            .stack_size(STACK)
            .spawn(move || accept_loop(&listener, &for_thread))?;
        Ok(FaultProxy {
            local_addr,
            shared,
            accept: Some(accept),
        })
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((client, _)) => proxy(client, shared),
            // Out of fds or the like: wait a little rather than spin.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Dials the upstream for `client` and starts the two pumps.
fn proxy(client: TcpStream, shared: &Arc<Shared>) {
    let number = shared.accepted.fetch_add(1, Ordering::SeqCst);
    // The logs take their slot now, before the dial: slot `number` is this connection's even
    // if the dial fails (its logs then stay empty).
    let logs: Option<[WriteLog; 2]> = shared.record_writes.then(Default::default);
    if let Some(logs) = &logs {
        let mut all = lock(&shared.logs);
        if all.len() < MAX_LOGGED_CONNECTIONS {
            all.push(logs.clone());
        }
    }
    let server = match TcpStream::connect_timeout(&shared.upstream, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(_) => {
            // Refused upstream: refuse the client as loudly (an RST, not an EOF).
            let _ = crate::sys::os::set_linger_zero(client.as_fd());
            return;
        }
    };
    shared.dialled.fetch_add(1, Ordering::SeqCst);
    for s in [&client, &server] {
        let _ = s.set_nodelay(true);
    }
    let pair = Arc::new(Pair::new(client, server));
    {
        let mut pairs = lock(&shared.pairs);
        pairs.retain(|p| p.strong_count() > 0);
        pairs.push(Arc::downgrade(&pair));
    }
    let mut pumps = lock(&shared.pumps);
    pumps.retain(|p| !p.is_finished());
    for direction in [Direction::ClientToServer, Direction::ServerToClient] {
        let faults = match direction {
            Direction::ClientToServer => shared.client_to_server.clone(),
            Direction::ServerToClient => shared.server_to_client.clone(),
        };
        let pump = Pump::new(
            Arc::clone(&pair),
            direction,
            faults,
            Rng::new(shared.seed, number as u64, direction),
            logs.as_ref().map(|l| Arc::clone(&l[direction as usize])),
        );
        let name = match direction {
            Direction::ClientToServer => "fault-proxy-c2s",
            Direction::ServerToClient => "fault-proxy-s2c",
        };
        match thread::Builder::new()
            .name(name.into())
            .stack_size(STACK)
            .spawn(move || pump.run())
        {
            Ok(handle) => pumps.push(handle),
            Err(_) => {
                // Half a proxy is no proxy: the pump already running sees the reset.
                pair.reset();
                return;
            }
        }
    }
}
