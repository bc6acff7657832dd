//! SMTP delivery with lettre: one pooled transport, outcomes mapped to retry or give up,
//! and a per-recipient limit on automatic mail (RFC 3834: don't flood one address with
//! receipts). Only mail that was delivered counts against the limit: attempts that failed
//! while the SMTP server was away must not use it up (they did, and a receipt retried
//! through an outage was then given up for good).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aduan_connector::SendError;
use aduan_core::{Channel, IdentityKind};
use aduan_store::OutboxItem;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::EmailError;
use crate::compose::{Composer, Notification};

/// Automatic mails (receipts, status answers) one address gets: a burst of this many, then
/// one more every `AUTO_MAIL_PERIOD`.
const AUTO_MAIL_BURST: u32 = 5;
const AUTO_MAIL_PERIOD: Duration = Duration::from_secs(12 * 60);

pub(crate) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    composer: Composer,
    automatic: AutoMailLimit,
}

/// A token bucket per address: `burst` mails at once, then one more every `period`.
/// [`AutoMailLimit::allows`] only looks; [`AutoMailLimit::record`] spends a token once a
/// mail went out.
pub(crate) struct AutoMailLimit {
    burst: f64,
    period: Duration,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl AutoMailLimit {
    pub(crate) fn new(burst: u32, period: Duration) -> AutoMailLimit {
        AutoMailLimit { burst: f64::from(burst.max(1)), period, buckets: Mutex::default() }
    }

    fn tokens(&self, entry: Option<&(f64, Instant)>, now: Instant) -> f64 {
        match entry {
            None => self.burst,
            Some((tokens, at)) => {
                let refill = now.saturating_duration_since(*at).as_secs_f64()
                    / self.period.as_secs_f64().max(f64::MIN_POSITIVE);
                (tokens + refill).min(self.burst)
            }
        }
    }

    /// Whether one more automatic mail to `address` is within the limit now.
    pub(crate) fn allows(&self, address: &str, now: Instant) -> bool {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        self.tokens(buckets.get(address), now) >= 1.0
    }

    /// Counts an automatic mail delivered to `address`.
    pub(crate) fn record(&self, address: &str, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            // Full buckets say nothing a missing one doesn't.
            let burst = self.burst;
            buckets.retain(|_, (t, at)| {
                *t + now.saturating_duration_since(*at).as_secs_f64()
                    / self.period.as_secs_f64().max(f64::MIN_POSITIVE)
                    < burst
            });
        }
        let left = self.tokens(buckets.get(address), now) - 1.0;
        buckets.insert(address.to_owned(), (left.max(0.0), now));
    }
}

impl Smtp {
    pub(crate) fn new(url: &str, composer: Composer) -> Result<Smtp, EmailError> {
        // The URL may hold credentials: never show it.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| EmailError::Config("smtp_url is not a usable SMTP URL".into()))?
            .timeout(Some(Duration::from_secs(60)))
            .pool_config(PoolConfig::new().max_size(4).idle_timeout(Duration::from_secs(60)))
            .build();
        let automatic = AutoMailLimit::new(AUTO_MAIL_BURST, AUTO_MAIL_PERIOD);
        Ok(Smtp { transport, composer, automatic })
    }

    pub(crate) async fn send(&self, item: &OutboxItem) -> Result<Option<String>, SendError> {
        if item.channel != Channel::Email || item.recipient.kind != IdentityKind::Email {
            return Err(SendError::Permanent(format!(
                "the email connector can't send to a {} address",
                item.recipient.kind
            )));
        }
        let automatic = item.purpose.is_automatic();
        if automatic && !self.automatic.allows(&item.recipient.value, Instant::now()) {
            return Err(SendError::Permanent(
                "not sent: too many automatic mails to this address (RFC 3834 limit)".into(),
            ));
        }
        let out = self
            .composer
            .outbox_mail(item, rand::random(), SystemTime::now())
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        self.deliver(out.message).await?;
        if automatic {
            self.automatic.record(&item.recipient.value, Instant::now());
        }
        Ok(Some(out.message_id))
    }

    pub(crate) async fn send_notification(&self, n: &Notification) -> Result<String, SendError> {
        let out = self
            .composer
            .notification_mail(n, rand::random(), SystemTime::now())
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        self.deliver(out.message).await?;
        Ok(out.message_id)
    }

    async fn deliver(&self, message: lettre::Message) -> Result<(), SendError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&e)),
        }
    }
}

/// Retry or give up. The reason names the SMTP code only: server texts quote addresses.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string());
    if e.is_permanent() {
        return SendError::Permanent(format!(
            "the SMTP server refused the mail (code {})",
            code.as_deref().unwrap_or("5xx")
        ));
    }
    let reason = if e.is_transient() {
        format!("the SMTP server deferred the mail (code {})", code.as_deref().unwrap_or("4xx"))
    } else if e.is_timeout() {
        "the SMTP server did not answer in time".to_owned()
    } else if e.is_tls() {
        "TLS with the SMTP server failed".to_owned()
    } else {
        "could not talk to the SMTP server".to_owned()
    };
    SendError::Retry { reason, after: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_delivered_mail_counts_against_the_automatic_limit() {
        let limit = AutoMailLimit::new(5, Duration::from_secs(12 * 60));
        let t0 = Instant::now();
        // Attempts that failed (nothing recorded) use up nothing, however many.
        for _ in 0..50 {
            assert!(limit.allows("warga@example.id", t0));
        }
        for _ in 0..5 {
            assert!(limit.allows("warga@example.id", t0));
            limit.record("warga@example.id", t0);
        }
        assert!(!limit.allows("warga@example.id", t0));
        assert!(limit.allows("lain@example.id", t0), "the limit is per address");
        // One more every period.
        assert!(!limit.allows("warga@example.id", t0 + Duration::from_secs(11 * 60)));
        assert!(limit.allows("warga@example.id", t0 + Duration::from_secs(12 * 60)));
        limit.record("warga@example.id", t0 + Duration::from_secs(12 * 60));
        assert!(!limit.allows("warga@example.id", t0 + Duration::from_secs(12 * 60)));
    }
}
