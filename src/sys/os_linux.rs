//! The OS calls for Linux on x86_64 and aarch64: the declarations of the C functions, and
//! the safe wrappers the rest of the crate uses (see `os.rs`).

use super::{Disposition, MAX_INHERITED};
use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::OnceLock;

/// Signal numbers below this have a slot in [`IGNORED_BEFORE`].
const SIGNALS: usize = 32;
/// The signals handled here, in the order `inherit_fds` resets them.
const HANDLED: [c_int; 5] = [SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGTERM];
/// For each signal, whether it was ignored (`SIG_IGN`, as `nohup` leaves SIGHUP) when
/// [`install_handler`] replaced its action: what a child started with [`inherit_fds`]
/// must get back. Atomics, because the child reads them between fork and exec.
static IGNORED_BEFORE: [AtomicBool; SIGNALS] = [const { AtomicBool::new(false) }; SIGNALS];

pub(crate) const SIGHUP: c_int = 1;
pub(crate) const SIGINT: c_int = 2;
pub(crate) const SIGUSR1: c_int = 10;
pub(crate) const SIGUSR2: c_int = 12;
pub(crate) const SIGTERM: c_int = 15;

/// Restart a system call the signal interrupted, rather than fail it with `EINTR`: other
/// threads of the program are in blocking `read`, `accept` and `recv` calls.
const SA_RESTART: c_int = 0x1000_0000;
const F_GETFD: c_int = 1;
const F_SETFD: c_int = 2;
const FD_CLOEXEC: c_int = 1;
const F_DUPFD_CLOEXEC: c_int = 1030;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;

/// `struct sigaction` as glibc and musl lay it out on x86_64 and aarch64: the handler (a
/// union with `sa_sigaction`; we never set `SA_SIGINFO`), a 1024-bit `sigset_t`, the `int`
/// flags (then 4 bytes of padding, which `repr(C)` adds), and `sa_restorer`, which the C
/// library fills in itself. 152 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct SigAction {
    handler: usize,
    mask: [u64; 16],
    flags: c_int,
    restorer: usize,
}

const _: () = assert!(std::mem::size_of::<SigAction>() == 152);

extern "C" {
    fn sigaction(signum: c_int, act: *const SigAction, oldact: *mut SigAction) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn dup2(oldfd: c_int, newfd: c_int) -> c_int;
    fn getsockname(fd: c_int, addr: *mut c_void, len: *mut u32) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;
    fn __errno_location() -> *mut c_int;
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        offset: i64,
    ) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn sendmsg(fd: c_int, msg: *const MsgHdr, flags: c_int) -> isize;
    fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize;
    fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize;
    fn setsid() -> c_int;
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn bind(fd: c_int, addr: *const c_void, len: u32) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn flock(fd: c_int, operation: c_int) -> c_int;
}

/// Takes the exclusive `flock(2)` lock of `file` if nobody holds it (`LOCK_EX | LOCK_NB`):
/// `Ok(false)` if another open file description holds it (another process, or another
/// `open` in this one). The lock belongs to the open file: it goes when the last copy of
/// the fd closes (std opens files close-on-exec, so a child process never keeps it).
pub(crate) fn try_lock(file: &std::fs::File) -> io::Result<bool> {
    const LOCK_EX: c_int = 2;
    const LOCK_NB: c_int = 4;
    loop {
        // SAFETY: flock takes an fd and an int and touches no memory of ours; the fd is
        // open for the borrow of `file`.
        if unsafe { flock(file.as_raw_fd(), LOCK_EX | LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => return Ok(false),
            io::ErrorKind::Interrupted => continue,
            _ => return Err(e),
        }
    }
}

/// Opens `path` as `options` say, with `O_NOFOLLOW`: if `path` itself is a symbolic link
/// (dangling or not) the open fails, with a clear error, instead of reaching whatever
/// file the link names. For a file in a directory others can write to, that is kept
/// open for appending (a daemon's log), where create-then-rename cannot be used.
pub(crate) fn open_no_follow(
    options: &mut std::fs::OpenOptions,
    path: &std::path::Path,
) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    #[cfg(target_arch = "x86_64")]
    const O_NOFOLLOW: c_int = 0o400_000;
    #[cfg(target_arch = "aarch64")]
    const O_NOFOLLOW: c_int = 0o100_000;
    /// What `open` with `O_NOFOLLOW` says for a symbolic link.
    const ELOOP: i32 = 40;
    options.custom_flags(O_NOFOLLOW).open(path).map_err(|e| {
        if e.raw_os_error() == Some(ELOOP) {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a symbolic link (not followed)", path.display()),
            )
        } else {
            e
        }
    })
}

/// `struct msghdr` as glibc lays it out on x86_64 and aarch64: 56 bytes. musl declares
/// `msg_iovlen` and `msg_controllen` as a 32-bit int followed by 32 bits of padding; on
/// these little-endian targets a `usize` below 2^31 has the same bytes.
#[repr(C)]
struct MsgHdr {
    name: *mut c_void,
    namelen: u32,
    iov: *const std::io::IoSlice<'static>,
    iovlen: usize,
    control: *mut c_void,
    controllen: usize,
    flags: c_int,
}

const _: () = assert!(std::mem::size_of::<MsgHdr>() == 56);

/// Don't raise `SIGPIPE` when the peer has gone: fail with `EPIPE` instead.
const MSG_NOSIGNAL: c_int = 0x4000;
/// Most buffers one `sendmsg` takes (`IOV_MAX` on Linux); std's `write_vectored` caps
/// the same way.
const IOV_MAX: usize = 1024;

/// Writes `bufs` to the connected stream socket `socket` with one `sendmsg(2)` and
/// `MSG_NOSIGNAL`: what `write_vectored` (`writev(2)`) does, except that a write to a
/// peer that has reset the connection fails with `EPIPE` instead of raising `SIGPIPE`,
/// which kills a process whose `SIGPIPE` disposition is the default (a C host, or a
/// program that restored it). Rust programs ignore `SIGPIPE`; a library must not rely on
/// it. Takes at most 1024 buffers (`IOV_MAX`); returns the bytes written.
///
/// With `wait` false the call never blocks (`MSG_DONTWAIT`): a socket whose send buffer
/// is full fails at once with `WouldBlock`, whatever its blocking mode and send timeout.
pub(crate) fn send_vectored<S>(
    socket: &S,
    bufs: &[std::io::IoSlice<'_>],
    wait: bool,
) -> io::Result<usize>
where
    S: AsFd,
    for<'a> &'a S: std::io::Write,
{
    const MSG_DONTWAIT: c_int = 0x40;
    let flags = if wait {
        MSG_NOSIGNAL
    } else {
        MSG_NOSIGNAL | MSG_DONTWAIT
    };
    let fd = socket.as_fd().as_raw_fd();
    if let [one] = bufs {
        // One buffer (a lone message, a raw chunk): send(2) spares the kernel copying
        // in a message header and an iovec array.
        // SAFETY: `one` is borrowed for the call, so `len` bytes from its pointer are
        // valid for reading; send only reads them. The fd is open for the borrow of
        // `socket`.
        let n = unsafe { send(fd, one.as_ptr().cast(), one.len(), flags) };
        return if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        };
    }
    let bufs = &bufs[..bufs.len().min(IOV_MAX)];
    let msg = MsgHdr {
        name: std::ptr::null_mut(),
        namelen: 0,
        iov: bufs.as_ptr().cast(),
        iovlen: bufs.len(),
        control: std::ptr::null_mut(),
        controllen: 0,
        flags: 0,
    };
    // SAFETY: `msg` is a properly laid out `struct msghdr` (size checked above) on our
    // stack, with no address and no control data; its iovec array is `bufs`, which std
    // guarantees is ABI-compatible with `struct iovec` on Unix (`IoSlice` docs), and
    // which stays borrowed, so every base and length is valid for reading for the whole
    // call; `iovlen` is its true length, at most IOV_MAX. sendmsg only reads them. The
    // fd is open for the borrow of `socket`.
    let n = unsafe { sendmsg(fd, &msg, flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `recv(2)` with `MSG_DONTWAIT`: reads what the socket holds now, never waiting, whatever
/// its blocking mode and receive timeout (`WouldBlock` when it holds nothing). std has no
/// read with flags, and toggling `O_NONBLOCK` would change the socket for every thread.
pub(crate) fn recv_now<S: AsFd>(socket: &S, buf: &mut [u8]) -> io::Result<usize> {
    const MSG_DONTWAIT: c_int = 0x40;
    // SAFETY: `buf` is borrowed mutably for the call, so `len` bytes from its pointer are
    // valid for writing and aliased by nothing; recv writes at most `len` bytes there. The
    // fd is open for the borrow of `socket`.
    let n = unsafe {
        recv(
            socket.as_fd().as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// The write end of the self-pipe, as a raw fd for the handler; -1 until installed.
static PIPE_FD: AtomicI32 = AtomicI32::new(-1);
/// Owns the write end for the rest of the process, so that the fd the handler writes to
/// can never be closed and reused by another file.
static PIPE: OnceLock<UnixStream> = OnceLock::new();

/// The signal handler: one `write(2)` of the signal number to the self-pipe, which is
/// async-signal-safe, and nothing else (no allocation, no lock). `errno` is saved and
/// restored, since the interrupted code may be about to read it. The write end is
/// non-blocking: if the pipe is full, the signal is dropped rather than the handler
/// blocking; a reader that far behind has plenty of the same signals queued.
extern "C" fn on_signal(signum: c_int) {
    // SAFETY: __errno_location returns a pointer to this thread's errno, valid and
    // aligned for the whole life of the thread, which outlives this handler call.
    let errno = unsafe { __errno_location() };
    // SAFETY: as above; reading an int through a valid pointer.
    let saved = unsafe { *errno };
    let fd = PIPE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signum as u8;
        // SAFETY: `fd` is the write end kept open forever in PIPE; the buffer is one
        // byte on our stack, valid for the call. write(2) is async-signal-safe.
        unsafe { write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: as above; writing an int through a valid pointer.
    unsafe { *errno = saved };
}

/// Makes `write_end` the pipe every handled signal writes its number to (one byte). Only
/// the first call takes effect; the stream is kept open for the rest of the process.
pub(crate) fn set_signal_pipe(write_end: UnixStream) -> io::Result<()> {
    write_end.set_nonblocking(true)?;
    let fd = write_end.as_raw_fd();
    if PIPE.set(write_end).is_ok() {
        PIPE_FD.store(fd, Ordering::SeqCst);
    }
    Ok(())
}

/// Installs the self-pipe handler for `signum`, with `SA_RESTART` and nothing masked;
/// returns what was there before, and notes whether that was "ignore" for the children
/// [`inherit_fds`] starts.
pub(crate) fn install_handler(signum: c_int) -> io::Result<Disposition> {
    let new = SigAction {
        handler: on_signal as extern "C" fn(c_int) as usize,
        mask: [0; 16], // sigemptyset: all bits clear
        flags: SA_RESTART,
        restorer: 0,
    };
    let old = swap_action(signum, &new)?;
    if let Some(slot) = usize::try_from(signum)
        .ok()
        .and_then(|i| IGNORED_BEFORE.get(i))
    {
        slot.store(old.handler == SIG_IGN, Ordering::SeqCst);
    }
    Ok(Disposition(old))
}

/// Sends SIGTERM to the process `pid`.
pub(crate) fn terminate(pid: u32) -> io::Result<()> {
    send_signal(pid, SIGTERM)
}

/// Sends `signum` to the process `pid` (one process: 0 and negative pids, which name
/// process groups, are refused).
pub(crate) fn send_signal(pid: u32, signum: c_int) -> io::Result<()> {
    let pid = c_int::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))?;
    // SAFETY: kill(2) with a positive pid signals that one process and touches no memory
    // of ours.
    if unsafe { kill(pid, signum) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts back what [`install_handler`] replaced.
pub(crate) fn restore_handler(signum: c_int, old: Disposition) -> io::Result<()> {
    swap_action(signum, &old.0).map(drop)
}

/// Restores the default action (terminate, for every signal we handle).
pub(crate) fn default_handler(signum: c_int) -> io::Result<()> {
    let dfl = SigAction {
        handler: SIG_DFL,
        mask: [0; 16],
        flags: 0,
        restorer: 0,
    };
    swap_action(signum, &dfl).map(drop)
}

fn swap_action(signum: c_int, new: &SigAction) -> io::Result<SigAction> {
    let mut old = SigAction {
        handler: SIG_DFL,
        mask: [0; 16],
        flags: 0,
        restorer: 0,
    };
    // SAFETY: both pointers are to live, properly laid out `struct sigaction`s (layout
    // checked above for this target); the handler in `new` is either SIG_DFL, one the C
    // library gave us back, or `on_signal`, which only does async-signal-safe work.
    let rc = unsafe { sigaction(signum, new, &mut old) };
    if rc == 0 {
        Ok(old)
    } else {
        Err(io::Error::last_os_error())
    }
}

const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const MAP_PRIVATE: c_int = 2;
const MAP_ANONYMOUS: c_int = 0x20;

/// Zeroed memory of its own anonymous mapping. A page costs no RSS until it is first
/// written, and the whole of it goes back to the kernel when this drops (`munmap`),
/// whatever the allocator would have kept of a freed buffer.
pub(crate) struct Pages {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: a `Pages` is the only handle to its mapping (nothing else has its address), so
// moving it to another thread moves the only access, as for a `Box<[u8]>`.
unsafe impl Send for Pages {}

impl Pages {
    /// Maps `len` bytes (at least 1), readable and writable.
    pub(crate) fn new(len: usize) -> io::Result<Pages> {
        let len = len.max(1);
        let (prot, flags) = (PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        // SAFETY: a new private anonymous mapping at an address the kernel picks: it
        // aliases no memory of the program, and no fd is involved.
        let p = unsafe { mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        if p as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(p.cast()).ok_or_else(io::Error::last_os_error)?;
        Ok(Pages { ptr, len })
    }
}

impl std::ops::Deref for Pages {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes are mapped readable from `ptr` until drop, initialised (to
        // zero by the kernel, or by writes through `deref_mut`), reachable only through
        // this value, which the borrow keeps alive and unchanged.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Pages {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; the mapping is writable, and `&mut self` makes this the
        // only reference to it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no slice of it outlives the
        // borrow of `self` it came from.
        unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Sets `FD_CLOEXEC` on `fd`, so it is not passed on to programs this one runs.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl with F_GETFD takes no third argument and only reads the fd's flags;
    // `fd` is open for the borrow.
    let flags = unsafe { fcntl(fd.as_raw_fd(), F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETFD takes an int; this changes only this fd's close-on-exec flag.
    if unsafe { fcntl(fd.as_raw_fd(), F_SETFD, flags | FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Turns `SO_LINGER` off on the socket `fd`: a close then sends a FIN after what is
/// still buffered, as threadnet's close sequence expects, not an RST (linger 0) or a
/// blocking close (linger N). std has `set_linger` only behind a feature gate, and an
/// accepted socket inherits its listener's linger, which may come from anywhere.
pub(crate) fn clear_linger(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_linger(fd, [0, 0])
}

/// Sets `SO_LINGER` to on with a zero timeout on the socket `fd`: its close then sends an
/// RST and discards what is unsent. Only the fault-injecting proxy (`crate::testing`)
/// uses it, to reset a connection on purpose; std's `set_linger` is feature-gated.
pub(crate) fn set_linger_zero(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_linger(fd, [1, 0])
}

/// `setsockopt(SO_LINGER)` with `struct linger { int l_onoff; int l_linger; }`.
fn set_linger(fd: BorrowedFd<'_>, linger: [c_int; 2]) -> io::Result<()> {
    const SO_LINGER: c_int = 13;
    set_socket_option(fd, SO_LINGER, &linger)
}

/// `setsockopt(fd, SOL_SOCKET, name, value)`, for an option whose value is a plain C
/// value (`int`s, and structs of them, as `value`'s bytes).
fn set_socket_option<T: Copy>(fd: BorrowedFd<'_>, name: c_int, value: &T) -> io::Result<()> {
    const SOL_SOCKET: c_int = 1;
    // SAFETY: `value` is `size_of::<T>()` readable bytes, borrowed for the call, and
    // `len` says so; setsockopt only reads them. `fd` is open for the borrow.
    let rc = unsafe {
        setsockopt(
            fd.as_raw_fd(),
            SOL_SOCKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A TCP socket bound to `addr` and listening (`backlog` pending connections at most),
/// with `SO_REUSEADDR` (as std's `TcpListener::bind` sets it) and `SO_REUSEPORT` set
/// before the bind: other sockets of this user bound the same way to the same address
/// share the port, and the kernel spreads incoming connections among them. std cannot set
/// an option between `socket` and `bind`, hence socket, setsockopt, bind and listen here.
/// The fd is close-on-exec.
pub(crate) fn listen_reuse_port(addr: std::net::SocketAddr, backlog: c_int) -> io::Result<OwnedFd> {
    const AF_INET: c_int = 2;
    const AF_INET6: c_int = 10;
    const SOCK_STREAM: c_int = 1;
    const SOCK_CLOEXEC: c_int = 0o2_000_000;
    const SO_REUSEADDR: c_int = 2;
    const SO_REUSEPORT: c_int = 15;
    let family = if addr.is_ipv4() { AF_INET } else { AF_INET6 };
    // SAFETY: socket(2) takes only integers and touches no memory of ours.
    let raw = unsafe { socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is the fd socket(2) has just opened for us: open, and owned by
    // nothing else in the process; the OwnedFd closes it on every path out.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    for option in [SO_REUSEADDR, SO_REUSEPORT] {
        set_socket_option(fd.as_fd(), option, &(1 as c_int))?;
    }
    // struct sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes), built as bytes: the
    // family in host order, the port and the address in network order.
    let mut sa = [0u8; 28];
    sa[..2].copy_from_slice(&(family as u16).to_ne_bytes());
    sa[2..4].copy_from_slice(&addr.port().to_be_bytes());
    let len = match addr {
        std::net::SocketAddr::V4(v4) => {
            sa[4..8].copy_from_slice(&v4.ip().octets());
            16
        }
        std::net::SocketAddr::V6(v6) => {
            sa[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
            sa[8..24].copy_from_slice(&v6.ip().octets());
            sa[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            28
        }
    };
    // SAFETY: `sa` holds `len` readable bytes (at most its 28) laid out as the kernel's
    // sockaddr_in or sockaddr_in6, which it reads unaligned-safe (it copies them in);
    // bind only reads them. `fd` is open.
    if unsafe { bind(fd.as_raw_fd(), sa.as_ptr().cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen(2) takes only integers; `fd` is open.
    if unsafe { listen(fd.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// The address family of the socket `fd` (`AF_INET` 2, `AF_UNIX` 1, `AF_INET6` 10).
pub(crate) fn socket_family(fd: BorrowedFd<'_>) -> io::Result<u16> {
    // sockaddr_storage: 128 bytes, 8-aligned; on Linux the family is its first u16.
    let mut storage = [0u64; 16];
    let mut len = std::mem::size_of_val(&storage) as u32;
    // SAFETY: the buffer is 128 writable bytes and `len` says so; getsockname writes at
    // most `len` bytes and updates `len`. `fd` is open for the borrow.
    let rc = unsafe { getsockname(fd.as_raw_fd(), storage.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len < 2 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "getsockname returned no address family",
        ));
    }
    Ok(u16::from_ne_bytes(
        storage[0].to_ne_bytes()[..2].try_into().unwrap(),
    ))
}

/// Whether [`take_listen_fds`] has handed out the inherited fds already.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes ownership of the `n` fds from 3 up that the service manager (or the process this
/// one replaces) passed down under the `LISTEN_FDS` protocol, and marks them close-on-exec.
/// Hands them out at most once per process: later calls get an empty list.
///
/// # Errors
///
/// `n` is larger than [`MAX_INHERITED`], or one of the fds is not open (`EBADF`).
pub(crate) fn take_listen_fds(n: usize) -> io::Result<Vec<OwnedFd>> {
    if n > MAX_INHERITED {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("LISTEN_FDS={n}: more than {MAX_INHERITED}"),
        ));
    }
    if n == 0 || TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let mut fds = Vec::with_capacity(n);
    for raw in 3..3 + n as RawFd {
        // SAFETY: F_GETFD only reads the flags of `raw`; an fd that is not open fails
        // with EBADF and touches nothing.
        if unsafe { fcntl(raw, F_GETFD) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the LISTEN_FDS protocol gives this process fds 3..3+n, open (checked
        // just above). Nothing else in the process owns them: they were open across
        // exec, so no file std or we opened since can have their numbers, and TAKEN
        // makes sure we give each out once. The caller removes LISTEN_FDS from the
        // environment, so no later reader in this process claims them again.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_cloexec(fd.as_fd())?;
        fds.push(fd);
    }
    Ok(fds)
}

use std::os::fd::AsFd;

/// Arranges for `cmd`'s child to have `fds` at fds 3, 4, … (in order), open across
/// `exec`. The originals stay close-on-exec, so the child gets each exactly once. The
/// signals this process handles (with [`install_handler`]) get back, in the child, what
/// they had before: ignored stays ignored.
///
/// # Errors
///
/// More than [`MAX_INHERITED`] fds.
pub(crate) fn inherit_fds(cmd: &mut Command, fds: Vec<OwnedFd>) -> io::Result<()> {
    if fds.len() > MAX_INHERITED {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("more than {MAX_INHERITED} fds to pass"),
        ));
    }
    let first_free = 3 + fds.len() as c_int;
    let hook = move || {
        // Runs in the child between fork and exec: only async-signal-safe calls
        // (sigaction, fcntl, dup2), no allocation: the temporary fds go in a stack array.
        //
        // The parent's handlers are still installed here, and std has unblocked every
        // signal: a signal now (a Ctrl-C to the process group) would be written into the
        // parent's self-pipe and counted twice there. So each signal that has our handler
        // gets back what the parent had before it: ignored if it was ignored (`nohup`
        // ignores SIGHUP, and the new copy must stay immune to it too), else the default.
        // A signal without our handler is left as it is, ignored or default (exec resets
        // any other handler to the default itself).
        let ours = on_signal as extern "C" fn(c_int) as usize;
        for signum in HANDLED {
            let mut current = SigAction {
                handler: SIG_DFL,
                mask: [0; 16],
                flags: 0,
                restorer: 0,
            };
            // SAFETY: sigaction is async-signal-safe; with a null new action it only
            // writes the current one into `current`, a valid struct on this stack frame.
            if unsafe { sigaction(signum, std::ptr::null(), &mut current) } != 0
                || current.handler != ours
            {
                continue;
            }
            let ignored = IGNORED_BEFORE[signum as usize].load(Ordering::SeqCst);
            let before = SigAction {
                handler: if ignored { SIG_IGN } else { SIG_DFL },
                mask: [0; 16],
                flags: 0,
                restorer: 0,
            };
            // SAFETY: sigaction is async-signal-safe; `before` is a valid struct
            // sigaction on this stack frame; no old action is asked for (null).
            unsafe { sigaction(signum, &before, std::ptr::null_mut()) };
        }
        let mut moved = [0 as c_int; MAX_INHERITED];
        // First move every fd above the target range, so that placing one cannot
        // overwrite another that sits at a target number already.
        for (slot, fd) in moved.iter_mut().zip(&fds) {
            // SAFETY: F_DUPFD_CLOEXEC duplicates an open fd (owned by `fds`, alive in
            // this child) to the lowest free number >= first_free, close-on-exec.
            let dup = unsafe { fcntl(fd.as_raw_fd(), F_DUPFD_CLOEXEC, first_free) };
            if dup < 0 {
                return Err(io::Error::last_os_error());
            }
            *slot = dup;
        }
        for (i, &dup) in moved.iter().take(fds.len()).enumerate() {
            // SAFETY: dup2 makes fd 3+i a copy of `dup` (replacing whatever 3+i was in
            // this about-to-exec child) and leaves the copy without FD_CLOEXEC; `dup`
            // is open (made just above) and stays close-on-exec.
            if unsafe { dup2(dup, 3 + i as c_int) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the hook only calls sigaction, fcntl and dup2, which are async-signal-safe,
    // touches no lock and allocates nothing, as code between fork and exec must.
    unsafe { cmd.pre_exec(hook) };
    Ok(())
}

/// Makes the child that `cmd` spawns the leader of a new session (`setsid(2)`, between
/// fork and exec): no controlling terminal, so a hang-up or Ctrl-C of the terminal that
/// started it does not reach it.
pub(crate) fn new_session(cmd: &mut Command) -> io::Result<()> {
    let hook = || {
        // SAFETY: setsid is async-signal-safe, takes no arguments and touches no memory
        // of ours.
        if unsafe { setsid() } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook only calls setsid (async-signal-safe) and, on failure, reads errno;
    // it takes no lock and allocates nothing, as code between fork and exec must.
    unsafe { cmd.pre_exec(hook) };
    Ok(())
}
