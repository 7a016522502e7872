//! Read buffers given back by connections that went quiet or ended, kept for the next
//! connection that needs one: a small process-wide stash, so that connections that come and
//! go (a burst of connects, each with a round trip) take a mapped buffer from it instead of
//! each mapping one and unmapping it again. The unmapping is the costly half: `munmap` in a
//! process with threads on several CPUs interrupts each of them to flush its TLB.
//!
//! The stash keeps at most [`KEEP`] buffers, and a buffer keeps the pages it has written
//! resident: with the default 32 KiB read buffer, at most 512 KiB for the whole process, and
//! usually a page or two per buffer (what a connection's last frames filled). A buffer past
//! the bound is unmapped, as before.

use std::io;
use std::sync::Mutex;

use crate::sync::lock;
use crate::sys::os::Pages;

/// Buffers kept at most.
const KEEP: usize = 16;

/// The process's stash of read buffers.
pub(crate) static SPARE: Spare = Spare::new(KEEP);

/// A stash of read buffers of any sizes (each is taken only for its own size).
pub(crate) struct Spare {
    bufs: Mutex<Vec<Pages>>,
    keep: usize,
}

impl Spare {
    /// An empty stash that keeps up to `keep` buffers.
    pub(crate) const fn new(keep: usize) -> Spare {
        Spare {
            bufs: Mutex::new(Vec::new()),
            keep,
        }
    }

    /// A buffer of `len` bytes: a kept one (its bytes are whatever it last held), or a new
    /// zeroed mapping.
    ///
    /// # Errors
    /// No buffer of that size is kept and the mapping failed (out of memory or of maps).
    pub(crate) fn take(&self, len: usize) -> io::Result<Pages> {
        let kept = {
            let mut bufs = lock(&self.bufs);
            let at = bufs.iter().rposition(|b| b.len() == len.max(1));
            at.map(|i| bufs.swap_remove(i))
        };
        match kept {
            Some(buf) => Ok(buf),
            None => Pages::new(len),
        }
    }

    /// Keeps `buf` for the next connection, or unmaps it if the stash is full.
    pub(crate) fn give_back(&self, buf: Pages) {
        let mut bufs = lock(&self.bufs);
        if bufs.len() < self.keep {
            bufs.push(buf);
            return;
        }
        drop(bufs);
        drop(buf); // unmapped outside the lock
    }
}

#[cfg(test)]
mod tests {
    use super::Spare;

    #[test]
    fn a_buffer_given_back_is_taken_again_for_its_size_only() {
        let spare = Spare::new(2);
        let mut buf = spare.take(8192).unwrap();
        buf[..5].copy_from_slice(b"hello");
        let at = buf.as_ptr();
        spare.give_back(buf);
        // Another size: a new mapping.
        let other = spare.take(4096).unwrap();
        assert_ne!(other.as_ptr(), at);
        assert_eq!(other.len(), 4096);
        // The same size: the same mapping, as it was left.
        let again = spare.take(8192).unwrap();
        assert_eq!(again.as_ptr(), at);
        assert_eq!(&again[..5], b"hello");
        // Nothing kept any more: a new one.
        assert_ne!(spare.take(8192).unwrap().as_ptr(), at);
    }

    #[test]
    fn the_stash_keeps_no_more_than_its_bound() {
        let spare = Spare::new(2);
        let bufs: Vec<_> = (0..3).map(|_| spare.take(4096).unwrap()).collect();
        let kept: Vec<_> = bufs[..2].iter().map(|b| b.as_ptr()).collect();
        bufs.into_iter().for_each(|b| spare.give_back(b));
        // Held, so that no address is unmapped and mapped again in between.
        let again: Vec<_> = (0..3).map(|_| spare.take(4096).unwrap()).collect();
        let mut at: Vec<_> = again.iter().map(|b| b.as_ptr()).collect();
        // The first two given back were kept; the third was unmapped, and a new one made.
        assert!(kept.iter().all(|p| at.contains(p)));
        at.retain(|p| !kept.contains(p));
        assert_eq!(at.len(), 1);
    }
}
