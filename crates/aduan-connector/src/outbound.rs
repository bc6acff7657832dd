//! The outbound worker: claims due outbox rows for the channels that have a connector,
//! sends each through its connector, and records the outcome. Rows of channels without a
//! connector stay `pending` (visible in the ticket and in `aduan_outbox_rows`) until one
//! exists.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aduan_core::Channel;

use crate::{Connector, ConnectorContext, SendError};

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Pause between polls when there was nothing to send.
    pub poll: Duration,
    /// Rows claimed at once.
    pub batch: i64,
    /// How long a claim holds before another worker may take the row.
    pub lease: Duration,
    /// Attempts before a row is given up (`dead`).
    pub max_attempts: i64,
    /// First retry delay; doubles with every attempt.
    pub backoff: Duration,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            poll: Duration::from_millis(500),
            batch: 20,
            lease: Duration::from_secs(120),
            max_attempts: 8,
            backoff: Duration::from_secs(30),
        }
    }
}

/// The delay before attempt `attempts + 1`: `base · 2^(attempts-1)`, at most six hours.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    base.saturating_mul(2u32.saturating_pow(exp)).min(Duration::from_secs(6 * 3600))
}

/// Runs until shutdown.
pub async fn run(cx: ConnectorContext, connectors: Vec<Arc<dyn Connector>>, cfg: OutboundConfig) {
    let mut by_channel: HashMap<Channel, Arc<dyn Connector>> = HashMap::new();
    for c in connectors {
        for ch in c.channels() {
            by_channel.insert(ch, c.clone());
        }
    }
    let channels: Vec<Channel> = by_channel.keys().copied().collect();
    if channels.is_empty() {
        tracing::info!("No channel can send yet; answers stay pending in the outbox.");
        cx.shutdown.cancelled().await;
        return;
    }
    let lease = chrono::Duration::from_std(cfg.lease).unwrap_or(chrono::Duration::minutes(2));
    while !cx.shutdown.is_cancelled() {
        let claimed = match cx.store.outbox_claim(channels.clone(), cfg.batch, lease).await {
            Ok(items) => items,
            Err(error) => {
                tracing::error!(%error, "Could not claim outbox rows.");
                Vec::new()
            }
        };
        let full = claimed.len() as i64 >= cfg.batch;
        for item in claimed {
            let Some(connector) = by_channel.get(&item.channel) else {
                continue;
            };
            let result = connector.send(&item).await;
            let recorded = match result {
                Ok(provider_id) => {
                    cx.telemetry.outbound_sent(item.channel, item.id);
                    cx.store.outbox_sent(item.id, provider_id).await
                }
                Err(SendError::Retry { reason, after }) if item.attempts < cfg.max_attempts => {
                    cx.telemetry.outbound_failed(item.channel, item.id, &reason, false);
                    let wait = after.unwrap_or_else(|| backoff(cfg.backoff, item.attempts));
                    let at = aduan_store::now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
                    cx.store.outbox_failed(item.id, reason, Some(at)).await
                }
                Err(e) => {
                    let reason = e.to_string();
                    cx.telemetry.outbound_failed(item.channel, item.id, &reason, true);
                    cx.store.outbox_failed(item.id, reason, None).await
                }
            };
            if let Err(error) = recorded {
                tracing::error!(%error, outbox_id = item.id, "Could not record a delivery outcome.");
            }
        }
        if !full {
            tokio::select! {
                () = cx.shutdown.cancelled() => break,
                () = tokio::time::sleep(cfg.poll) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(60));
        assert_eq!(backoff(base, 4), Duration::from_secs(240));
        assert_eq!(backoff(base, 40), Duration::from_secs(6 * 3600));
        assert_eq!(backoff(base, 0), Duration::from_secs(30));
    }
}
