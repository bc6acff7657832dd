//! The one backoff policy of the connectors: a delay that doubles from `base` with every
//! failure and stops growing at `max`.
//!
//! Every retry in the daemon uses it: the outbound worker ([`crate::outbound`]), the
//! connector supervisor, the Telegram poller, and the media-fetch queue ([`crate::media`]).
//! Each picks its own `base` and `max`; the arithmetic (saturating, never overflowing,
//! whatever the failure count) is written once here.

use std::time::Duration;

/// `base · 2^failures`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max }
    }

    /// The delay after `failures` failures in a row beyond the first: `delay(0)` is `base`,
    /// `delay(1)` twice that, and so on up to `max`. Negative counts count as 0.
    pub fn delay(&self, failures: i64) -> Duration {
        let exp = u32::try_from(failures.clamp(0, 31)).unwrap_or(31);
        self.base.saturating_mul(2u32.saturating_pow(exp)).min(self.max)
    }

    /// A running backoff for a loop that waits after each failure and starts over after a
    /// success.
    pub fn start(self) -> Running {
        Running { policy: self, failures: 0 }
    }
}

/// The state of a [`Backoff`] in a retry loop.
#[derive(Debug, Clone, Copy)]
pub struct Running {
    policy: Backoff,
    failures: i64,
}

impl Running {
    /// The delay to wait now; the next one is twice as long (up to the policy's `max`).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.policy.delay(self.failures);
        self.failures = self.failures.saturating_add(1);
        d
    }

    /// The delay [`next_delay`](Running::next_delay) would return, without advancing.
    pub fn current(&self) -> Duration {
        self.policy.delay(self.failures)
    }

    /// Back to `base` (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_base_and_caps() {
        let b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60 << 10));
        assert_eq!(b.delay(0), Duration::from_secs(60));
        assert_eq!(b.delay(1), Duration::from_secs(120));
        assert_eq!(b.delay(10), Duration::from_secs(60 << 10));
        assert_eq!(b.delay(11), Duration::from_secs(60 << 10));
        assert_eq!(b.delay(-3), Duration::from_secs(60));
        assert_eq!(b.delay(i64::MAX), Duration::from_secs(60 << 10));
    }

    #[test]
    fn a_running_backoff_grows_and_resets() {
        let mut r = Backoff::new(Duration::from_secs(1), Duration::from_secs(5)).start();
        let waits: Vec<u64> = (0..5).map(|_| r.next_delay().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(r.current(), Duration::from_secs(5));
        r.reset();
        assert_eq!(r.next_delay(), Duration::from_secs(1));
    }
}
