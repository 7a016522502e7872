//! Exponential backoff with jitter, for connect retries and reconnects.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long to wait between connection attempts: exponential growth, capped, with jitter.
///
/// The delay before retry `n` (0-based) is drawn uniformly from `[d/2, d]` where
/// `d = min(max_delay, initial × multiplierⁿ)`: "equal jitter" in the terms of Brooker's
/// *Exponential Backoff And Jitter* (AWS Architecture Blog, 2015). The jitter spreads the
/// reconnects of many clients after a server restart (nats.go #563; muduo's fixed doubling has
/// none), and the `d/2` floor keeps every retry from firing at once.
///
/// ```
/// use std::time::Duration;
/// use threadnet::Backoff;
///
/// let b = Backoff::new().jitter(false);
/// assert_eq!(b.delay(0), Duration::from_millis(100));
/// assert_eq!(b.delay(1), Duration::from_millis(200));
/// assert_eq!(b.delay(10), Duration::from_secs(5)); // capped
///
/// let j = Backoff::new();
/// let d = j.delay(2); // somewhere in [200 ms, 400 ms]
/// assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    initial: Duration,
    multiplier: f64,
    max_delay: Duration,
    max_attempts: Option<u32>,
    jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_secs(5),
            max_attempts: None,
            jitter: true,
        }
    }
}

impl Backoff {
    /// The defaults: 100 ms, doubling, capped at 5 s, jitter on, no limit on attempts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The delay before the first retry. Defaults to 100 ms.
    pub fn initial(mut self, delay: Duration) -> Self {
        self.initial = delay;
        self
    }

    /// The growth factor per retry. Defaults to 2.
    ///
    /// # Panics
    ///
    /// If `factor` is below 1 or not finite.
    pub fn multiplier(mut self, factor: f64) -> Self {
        assert!(
            factor.is_finite() && factor >= 1.0,
            "multiplier must be >= 1"
        );
        self.multiplier = factor;
        self
    }

    /// The longest delay. Defaults to 5 s.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Most connection attempts in a row, the first included, before giving up.
    /// Defaults to no limit.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Draw each delay from `[d/2, d]` instead of using `d`. Defaults to `true`.
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// The configured attempt limit.
    pub fn get_max_attempts(&self) -> Option<u32> {
        self.max_attempts
    }

    /// The delay before retry `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let growth = self.multiplier.powi(retry.min(1000) as i32);
        let secs = (self.initial.as_secs_f64() * growth).min(self.max_delay.as_secs_f64());
        let d = Duration::from_secs_f64(secs.max(0.0));
        if !self.jitter {
            return d;
        }
        let half = d / 2;
        half + half.mul_f64(random_unit())
    }

    /// True if attempt number `attempt` (1 for the first) may be made.
    pub(crate) fn allows(&self, attempt: u32) -> bool {
        self.max_attempts.map_or(true, |max| attempt <= max)
    }
}

/// A uniform float in [0, 1], from the random keys std gives every `RandomState` (std has no
/// RNG of its own; this is plenty for jitter).
fn random_unit() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x9E37_79B9_7F4A_7C15);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}
