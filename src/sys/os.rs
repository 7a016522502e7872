//! The few OS calls that std has no safe way to make, and the crate's only `unsafe` code.
//!
//! std cannot install a signal handler (it has no `sigaction` at all), cannot send a signal
//! other than SIGKILL (`Child::kill`; a hand-off's child gets SIGTERM), cannot take ownership
//! of a file descriptor a parent process passed down (`from_raw_fd` is `unsafe` because only
//! the caller can know that nothing else owns the fd), cannot clear or set `FD_CLOEXEC`, cannot
//! ask a socket for its address family without knowing its type, cannot turn `SO_LINGER` off
//! (`set_linger` is unstable), cannot set `SO_REUSEPORT` on a listener before it binds,
//! cannot write to a socket without risking `SIGPIPE` (its
//! `write_vectored` is `writev`, which has no `MSG_NOSIGNAL`), and cannot place an fd at a
//! chosen number in a child process (that needs `dup2` in `CommandExt::pre_exec`, itself
//! `unsafe`), cannot start a child in a new session (`setsid`, in `pre_exec` too), and cannot
//! give memory back to the kernel (a freed allocation stays with the allocator: [`Pages`] is a
//! mapping of its own), cannot lock a file at the crate's minimum Rust version (`File::lock`
//! came in 1.89: [`try_lock`] is `flock`), and has no name for `O_NOFOLLOW`
//! ([`open_no_follow`]). So this module declares those C functions itself (no `libc` crate:
//! the crate has no dependencies) and wraps each in a safe function whose invariants it keeps
//! itself.
//! Every `unsafe` block says why it is sound in a `// SAFETY:` comment. [`crate::signal`] and
//! [`crate::activation`] are built on these wrappers in safe code.
//!
//! The declarations are written for Linux on x86_64 and aarch64 (glibc and musl agree there on
//! every layout and constant used), in `os_linux.rs`: the only file with `unsafe` code. On any
//! other target the same functions exist (`os_other.rs`) and return
//! [`io::ErrorKind::Unsupported`], so the crate still builds and the callers can say so.

use std::io;

/// Most fds [`inherit_fds`] places in a child: fds 3 to 66.
pub(crate) const MAX_INHERITED: usize = 64;

/// What a signal did before we installed our handler, to put back when nobody listens any
/// more.
#[derive(Clone, Copy)]
pub(crate) struct Disposition(#[allow(dead_code)] imp::SigAction);

pub(crate) use imp::*;

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[path = "os_linux.rs"]
mod imp;

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
#[path = "os_other.rs"]
mod imp;

/// The error every call gives on a target this module has no declarations for.
#[allow(dead_code)]
fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "signals and inherited sockets are implemented for Linux on x86_64 and aarch64 only",
    )
}
