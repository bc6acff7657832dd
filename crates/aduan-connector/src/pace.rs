//! Pacing of provider calls and the provider's own "come back later".
//!
//! - [`Pacer`] / [`KeyedPacer`]: token buckets (governor) in front of a provider's send API.
//!   A send waits for its tokens when that takes at most its `patience`; otherwise it
//!   returns [`SendError::Retry`] with the wait, so the outbound worker puts the row back
//!   (`pending`, nothing lost) instead of holding a worker asleep.
//! - [`retry_after`]: the wait a provider asks for in an answer's headers (`Retry-After` in
//!   seconds, or X's `x-rate-limit-reset` Unix time), capped at a day.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::SendError;

/// The longest wait [`retry_after`] returns.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// `n` per `period`, bursts of up to `burst` (0 counts as 1).
pub fn quota(n: u32, period: Duration, burst: u32) -> Quota {
    let each = period / n.max(1);
    Quota::with_period(each).unwrap_or_else(|| Quota::per_second(nz(n))).allow_burst(nz(burst))
}

fn limited(what: &str, wait: Duration) -> SendError {
    SendError::Retry { reason: format!("{what} rate limit reached"), after: Some(wait) }
}

/// One token bucket in front of a provider (a gateway, a page, a number).
#[derive(Debug)]
pub struct Pacer {
    limiter: DefaultDirectRateLimiter,
    /// Named in the retry reason: `"{what} rate limit reached"`.
    what: &'static str,
}

impl Pacer {
    /// `n` calls per `period`, bursts of up to `burst`.
    pub fn new(what: &'static str, n: u32, period: Duration, burst: u32) -> Pacer {
        Pacer { limiter: RateLimiter::direct(quota(n, period, burst)), what }
    }

    /// Takes `cost` tokens, waiting when that takes at most `patience`; otherwise
    /// [`SendError::Retry`] with the wait. A cost above the burst is paid token by token.
    pub async fn pace(&self, cost: u32, patience: Duration) -> Result<(), SendError> {
        loop {
            match self.limiter.check_n(nz(cost)) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    if wait > patience {
                        return Err(limited(self.what, wait));
                    }
                    tokio::time::sleep(wait).await;
                }
                // More than a whole burst: take it one token at a time.
                Err(_) => {
                    for _ in 0..cost {
                        Box::pin(self.pace(1, patience)).await?;
                    }
                    return Ok(());
                }
            }
        }
    }
}

/// A token bucket per key (a recipient), e.g. WhatsApp's one message per 6 s per user.
#[derive(Debug)]
pub struct KeyedPacer {
    limiter: DefaultKeyedRateLimiter<String>,
    what: &'static str,
}

impl KeyedPacer {
    pub fn new(what: &'static str, n: u32, period: Duration, burst: u32) -> KeyedPacer {
        KeyedPacer { limiter: RateLimiter::keyed(quota(n, period, burst)), what }
    }

    /// Takes one token of `key`'s bucket, as [`Pacer::pace`].
    pub async fn pace(&self, key: &str, patience: Duration) -> Result<(), SendError> {
        let key = key.to_owned();
        loop {
            match self.limiter.check_key(&key) {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    if wait > patience {
                        return Err(limited(self.what, wait));
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Forgets full buckets (call now and then: keys are recipients).
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
    }
}

/// The wait an answer asks for: `Retry-After` in seconds, else X's `x-rate-limit-reset`
/// (a Unix time) as the time left until then (at least a second); at most a day.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    retry_after_at(headers, chrono::Utc::now().timestamp())
}

fn retry_after_at(headers: &http::HeaderMap, now: i64) -> Option<Duration> {
    let num = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<i64>().ok();
    let max = MAX_RETRY_AFTER.as_secs() as i64;
    if let Some(secs) = num("retry-after") {
        return Some(Duration::from_secs(secs.clamp(0, max) as u64));
    }
    let reset = num("x-rate-limit-reset")?;
    Some(Duration::from_secs((reset - now).clamp(1, max) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn retry_after_reads_seconds_or_a_reset_time() {
        assert_eq!(
            retry_after_at(&headers(&[("retry-after", " 30 ")]), 0),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after_at(&headers(&[("retry-after", "999999999")]), 0),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after_at(&headers(&[("retry-after", "-5")]), 0), Some(Duration::ZERO));
        assert_eq!(
            retry_after_at(&headers(&[("x-rate-limit-reset", "1060")]), 1000),
            Some(Duration::from_secs(60))
        );
        // A reset in the past still waits a second.
        assert_eq!(
            retry_after_at(&headers(&[("x-rate-limit-reset", "900")]), 1000),
            Some(Duration::from_secs(1))
        );
        assert_eq!(retry_after_at(&headers(&[("retry-after", "soon")]), 0), None);
        assert_eq!(retry_after_at(&headers(&[]), 0), None);
    }

    #[tokio::test]
    async fn a_spent_bucket_sends_the_row_back_with_the_wait() {
        let pacer = Pacer::new("android", 1, Duration::from_secs(60), 1);
        pacer.pace(1, Duration::from_secs(1)).await.unwrap();
        match pacer.pace(1, Duration::from_secs(1)).await {
            Err(SendError::Retry { after: Some(wait), reason }) => {
                assert!(wait > Duration::from_secs(50), "{wait:?}");
                assert_eq!(reason, "android rate limit reached");
            }
            other => panic!("{other:?}"),
        }
        // A cost of 3 takes 3 tokens of the bucket.
        let pacer = Pacer::new("twilio", 1, Duration::from_secs(1), 4);
        pacer.pace(3, Duration::ZERO).await.unwrap();
        assert!(matches!(pacer.pace(3, Duration::ZERO).await, Err(SendError::Retry { .. })));
        // More than a burst is paid token by token rather than refused forever.
        let pacer = Pacer::new("twilio", 100, Duration::from_secs(1), 2);
        pacer.pace(5, Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test]
    async fn keyed_buckets_are_per_key() {
        let pacer = KeyedPacer::new("whatsapp pair", 1, Duration::from_secs(6), 1);
        pacer.pace("a", Duration::ZERO).await.unwrap();
        pacer.pace("b", Duration::ZERO).await.unwrap();
        assert!(matches!(pacer.pace("a", Duration::ZERO).await, Err(SendError::Retry { .. })));
    }
}
