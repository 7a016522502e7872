//! What a [`FaultProxy`](super::FaultProxy) does to one direction of a connection, and the
//! seeded random numbers behind its choices.

use std::time::Duration;

/// One direction of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (who connected to the proxy) to the server (the upstream).
    ClientToServer,
    /// From the server back to the client.
    ServerToClient,
}

/// The faults applied to one direction; [`Faults::new`] applies none (a plain relay).
///
/// Byte counts are counted from the start of the connection, in that direction. When several
/// of [`stall_after`](Faults::stall_after), [`reset_after`](Faults::reset_after) and
/// [`close_write_after`](Faults::close_write_after) are set, the smallest count wins (a reset
/// before a half-close before a stall when equal); the others never happen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    pub(crate) latency: Duration,
    pub(crate) jitter: Duration,
    pub(crate) bandwidth: Option<u64>,
    pub(crate) split: Option<usize>,
    pub(crate) stall_after: Option<u64>,
    pub(crate) reset_after: Option<u64>,
    pub(crate) close_write_after: Option<u64>,
}

/// How the forwarding of one direction ends on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    Reset,
    CloseWrite,
    Stall,
}

impl Faults {
    /// No faults: bytes are forwarded as they come.
    pub fn new() -> Faults {
        Faults::default()
    }

    /// Delays every chunk read by `delay` before it is written on; order is kept. Chunks wait
    /// side by side, up to 1 MiB of them, so the throughput is at most 1 MiB per `delay`
    /// (about 100 MB/s at 10 ms), as on a link with a 1 MiB window.
    pub fn latency(mut self, delay: Duration) -> Faults {
        self.latency = delay;
        self
    }

    /// Adds to each chunk's latency a random extra delay, uniform in `0..=max`, drawn from the
    /// proxy's seed. Order is kept: a chunk never overtakes the one before it.
    pub fn jitter(mut self, max: Duration) -> Faults {
        self.jitter = max;
        self
    }

    /// Caps the throughput at `bytes_per_sec` bytes per second, paced by write (writes are at
    /// most a hundredth of a second's worth unless [`split`](Faults::split) makes them
    /// smaller).
    ///
    /// # Panics
    ///
    /// If `bytes_per_sec` is zero: a link that carries nothing is a
    /// [`stall_after(0)`](Faults::stall_after).
    pub fn bandwidth(mut self, bytes_per_sec: u64) -> Faults {
        assert!(bytes_per_sec > 0, "bandwidth must be at least 1 byte/s");
        self.bandwidth = Some(bytes_per_sec);
        self
    }

    /// Cuts the stream into writes of 1 to `max_chunk` bytes, each its own `write` with
    /// `TCP_NODELAY`. The cuts fall at stream offsets drawn from the seed; a write also ends
    /// where one of the proxy's reads ended, so the same seed gives the same writes whenever
    /// the sender's bytes reach the proxy the same way (as in a request-reply exchange). `split(1)` writes one byte at a time, so the receiver's
    /// reads return one byte whenever it keeps up; add a [`bandwidth`](Faults::bandwidth) to
    /// space the writes out and make sure of it.
    ///
    /// # Panics
    ///
    /// If `max_chunk` is zero.
    pub fn split(mut self, max_chunk: usize) -> Faults {
        assert!(max_chunk > 0, "split needs chunks of at least 1 byte");
        self.split = Some(max_chunk);
        self
    }

    /// Forwards `n_bytes`, then stops reading this direction until the proxy stops: the
    /// sender's socket buffers and then its TCP window fill, and its writes block. The other
    /// direction goes on.
    pub fn stall_after(mut self, n_bytes: u64) -> Faults {
        self.stall_after = Some(n_bytes);
        self
    }

    /// Forwards `n_bytes`, then resets the connection on both sides: both sockets are closed
    /// with `SO_LINGER` set to zero, so each peer gets an RST (a read or write fails with
    /// `ConnectionReset`, or a read sees EOF if the peer had already been sent its FIN). What
    /// is still in flight either way is discarded.
    pub fn reset_after(mut self, n_bytes: u64) -> Faults {
        self.reset_after = Some(n_bytes);
        self
    }

    /// Forwards `n_bytes`, then half-closes toward the receiver (`shutdown(Write)`: it reads
    /// EOF) while the other direction goes on. What the sender sends after that is read and
    /// discarded.
    pub fn close_write_after(mut self, n_bytes: u64) -> Faults {
        self.close_write_after = Some(n_bytes);
        self
    }

    /// The first cut to happen and after how many bytes.
    pub(crate) fn cut(&self) -> Option<(u64, Cut)> {
        [
            (self.reset_after, Cut::Reset),
            (self.close_write_after, Cut::CloseWrite),
            (self.stall_after, Cut::Stall),
        ]
        .into_iter()
        .filter_map(|(n, cut)| n.map(|n| (n, cut)))
        .min_by_key(|&(n, _)| n)
    }
}

/// xorshift64*: small, fast, and the same sequence for the same seed on every platform.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for one direction of one connection: the seed, mixed (splitmix64) with
    /// the connection's number and the direction so that each stream differs.
    pub(crate) fn new(seed: u64, connection: u64, direction: Direction) -> Rng {
        let lane = connection.wrapping_mul(2) + (direction == Direction::ServerToClient) as u64;
        let mut z = seed ^ lane.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(z.max(1)) // xorshift is stuck at zero
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..=max` (the modulo bias is negligible for the ranges used here).
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(span) => self.next_u64() % span,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sequence_and_lanes_differ() {
        let draw = |seed, conn, dir| {
            let mut r = Rng::new(seed, conn, dir);
            (0..8).map(|_| r.up_to(9)).collect::<Vec<_>>()
        };
        let a = draw(1, 0, Direction::ClientToServer);
        assert_eq!(a, draw(1, 0, Direction::ClientToServer));
        assert!(a.iter().all(|&v| v <= 9));
        assert_ne!(a, draw(2, 0, Direction::ClientToServer));
        assert_ne!(a, draw(1, 0, Direction::ServerToClient));
        assert_ne!(a, draw(1, 1, Direction::ClientToServer));
    }

    #[test]
    fn the_smallest_count_wins() {
        assert_eq!(Faults::new().cut(), None);
        let f = Faults::new()
            .stall_after(5)
            .close_write_after(9)
            .reset_after(7);
        assert_eq!(f.cut(), Some((5, Cut::Stall)));
        let f = Faults::new().stall_after(5).reset_after(5);
        assert_eq!(f.cut(), Some((5, Cut::Reset)));
    }
}
