//! Other targets: every call reports `Unsupported`.

use super::{unsupported, Disposition};
use std::ffi::c_int;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Command;

pub(crate) const SIGHUP: c_int = 1;
pub(crate) const SIGINT: c_int = 2;
pub(crate) const SIGUSR1: c_int = 30;
pub(crate) const SIGUSR2: c_int = 31;
pub(crate) const SIGTERM: c_int = 15;

#[derive(Clone, Copy)]
pub(crate) struct SigAction;

pub(crate) fn set_signal_pipe(_: UnixStream) -> io::Result<()> {
    Err(unsupported())
}
pub(crate) fn install_handler(_: c_int) -> io::Result<Disposition> {
    Err(unsupported())
}
pub(crate) fn restore_handler(_: c_int, _: Disposition) -> io::Result<()> {
    Err(unsupported())
}
pub(crate) fn default_handler(_: c_int) -> io::Result<()> {
    Err(unsupported())
}
pub(crate) fn terminate(_: u32) -> io::Result<()> {
    Err(unsupported())
}
pub(crate) fn send_signal(_: u32, _: c_int) -> io::Result<()> {
    Err(unsupported())
}
pub(crate) fn new_session(_: &mut Command) -> io::Result<()> {
    Err(unsupported())
}
pub(crate) fn try_lock(_: &std::fs::File) -> io::Result<bool> {
    Err(unsupported())
}
pub(crate) fn open_no_follow(
    _: &mut std::fs::OpenOptions,
    _: &std::path::Path,
) -> io::Result<std::fs::File> {
    Err(unsupported())
}
pub(crate) fn set_cloexec(_: BorrowedFd<'_>) -> io::Result<()> {
    Err(unsupported())
}
pub(crate) fn socket_family(_: BorrowedFd<'_>) -> io::Result<u16> {
    Err(unsupported())
}
/// Zeroed memory: a plain allocation here (its pages may stay with the allocator).
pub(crate) struct Pages(Box<[u8]>);

impl Pages {
    pub(crate) fn new(len: usize) -> io::Result<Pages> {
        Ok(Pages(vec![0; len.max(1)].into_boxed_slice()))
    }
}

impl std::ops::Deref for Pages {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for Pages {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// Nothing to do where the option cannot be reached: the socket keeps what it has.
pub(crate) fn clear_linger(_: BorrowedFd<'_>) -> io::Result<()> {
    Ok(())
}
pub(crate) fn set_linger_zero(_: BorrowedFd<'_>) -> io::Result<()> {
    Err(unsupported())
}
pub(crate) fn listen_reuse_port(_: std::net::SocketAddr, _: c_int) -> io::Result<OwnedFd> {
    Err(unsupported())
}
pub(crate) fn take_listen_fds(_: usize) -> io::Result<Vec<OwnedFd>> {
    Err(unsupported())
}
pub(crate) fn inherit_fds(_: &mut Command, _: Vec<OwnedFd>) -> io::Result<()> {
    Err(unsupported())
}
/// Other targets: a read that must not wait is refused with `WouldBlock`.
pub(crate) fn recv_now<S: std::os::fd::AsFd>(_: &S, _: &mut [u8]) -> io::Result<usize> {
    Err(io::ErrorKind::WouldBlock.into())
}
/// Other targets: a plain `write_vectored` (on the BSDs and macOS, set `SO_NOSIGPIPE`
/// or ignore `SIGPIPE` to be safe from it). A write that must not wait is refused with
/// `WouldBlock` (the caller queues the message instead).
pub(crate) fn send_vectored<S>(
    socket: &S,
    bufs: &[std::io::IoSlice<'_>],
    wait: bool,
) -> io::Result<usize>
where
    S: std::os::fd::AsFd,
    for<'a> &'a S: std::io::Write,
{
    if !wait {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let mut w = socket;
    std::io::Write::write_vectored(&mut w, bufs)
}
