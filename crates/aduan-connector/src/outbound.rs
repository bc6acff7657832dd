//! The outbound worker: claims due outbox rows for the channels that have a connector,
//! sends each through its connector, and records the outcome. Rows of channels without a
//! connector stay `pending` (visible in the ticket and in `aduan_outbox_rows`) until one
//! exists.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aduan_core::{Channel, Identity};
use aduan_store::OutboxItem;

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
    /// Where an answer its channel can't deliver is tried next (`[outbound] fallback_order`),
    /// among the channels this worker sends on.
    pub fallback_order: Vec<Channel>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            poll: Duration::from_millis(500),
            batch: 20,
            lease: Duration::from_secs(120),
            max_attempts: 8,
            backoff: Duration::from_secs(30),
            fallback_order: aduan_core::DEFAULT_FALLBACK_ORDER.to_vec(),
        }
    }
}

/// The delay before attempt `attempts + 1`: `base · 2^(attempts-1)`, at most six hours.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    crate::Backoff::new(base, MAX_BACKOFF).delay(attempts.saturating_sub(1))
}

/// The longest wait between two tries of an answer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// Claimed rows grouped by (channel, recipient), each group in claim (id) order, the
/// groups in the order of their first row.
fn by_recipient(claimed: Vec<OutboxItem>) -> Vec<Vec<OutboxItem>> {
    let mut groups: Vec<Vec<OutboxItem>> = Vec::new();
    let mut index: HashMap<(Channel, Identity), usize> = HashMap::new();
    for item in claimed {
        let key = (item.channel, item.recipient.clone());
        match index.get(&key) {
            Some(&i) => groups[i].push(item),
            None => {
                index.insert(key, groups.len());
                groups.push(vec![item]);
            }
        }
    }
    groups
}

/// Sends one claimed row and records the outcome. `sendable`: the channels this worker
/// sends on, where an undeliverable answer may go next.
async fn deliver(
    cx: &ConnectorContext,
    connector: &dyn Connector,
    cfg: &OutboundConfig,
    sendable: &[Channel],
    item: &OutboxItem,
) {
    let result = connector.send(item).await;
    let recorded = match result {
        Err(SendError::Undeliverable(reason)) => {
            undeliverable(cx, cfg, sendable, item, reason, None).await
        }
        Err(SendError::NoticeSent { reason, notice }) => {
            undeliverable(cx, cfg, sendable, item, reason, Some(notice)).await
        }
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

/// Records an answer its provider could not deliver (`notice`: the provider id of the
/// short notice that went instead) and carries it on: the store queues it to the reporter's
/// next identity, or keeps it for when they write again.
async fn undeliverable(
    cx: &ConnectorContext,
    cfg: &OutboundConfig,
    sendable: &[Channel],
    item: &OutboxItem,
    reason: aduan_core::UndeliverableReason,
    notice: Option<Option<String>>,
) -> Result<(), aduan_store::StoreError> {
    cx.telemetry.outbound_undeliverable(item.channel, item.id, reason);
    let order = cfg.fallback_order.clone();
    let now = aduan_store::now();
    let next = cx
        .store
        .outbox_undeliverable(item.id, reason, notice, sendable.to_vec(), order, now)
        .await?;
    match next {
        aduan_store::Undelivered::Fallback { outbox_id, channel, .. } => {
            tracing::info!(outbox_id = item.id, next = outbox_id, from = %item.channel, to = %channel, reason = reason.as_str(), "Answer undeliverable; trying the resident's next channel.");
        }
        aduan_store::Undelivered::Waiting => {
            tracing::info!(outbox_id = item.id, channel = %item.channel, reason = reason.as_str(), "Answer undeliverable; kept until the resident writes again.");
        }
        aduan_store::Undelivered::Dead => {
            tracing::warn!(outbox_id = item.id, channel = %item.channel, reason = reason.as_str(), "Automatic message undeliverable; given up.");
        }
    }
    Ok(())
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
        // One slow or failing send (a provider that stalls, teloxide's 10 s pause after a
        // 5xx, an SMTP server that hangs) must not hold up the answers to everyone else:
        // recipients are served concurrently, each one's rows in order.
        let mut tasks = tokio::task::JoinSet::new();
        for rows in by_recipient(claimed) {
            let Some(connector) = by_channel.get(&rows[0].channel).cloned() else {
                continue;
            };
            let cx = cx.clone();
            let cfg = cfg.clone();
            let sendable = channels.clone();
            tasks.spawn(async move {
                for item in rows {
                    deliver(&cx, connector.as_ref(), &cfg, &sendable, &item).await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
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

    fn item(id: i64, channel: Channel, to: &str) -> OutboxItem {
        OutboxItem {
            id,
            ticket: aduan_core::TicketCode::from_entropy([id as u8; 5]),
            channel,
            recipient: Identity::phone(to).expect("a phone number"),
            text: format!("row {id}"),
            purpose: aduan_core::Purpose::Ack,
            attempts: 1,
            thread_refs: Vec::new(),
        }
    }

    #[test]
    fn rows_are_grouped_by_recipient_in_order() {
        let rows = vec![
            item(1, Channel::Sms, "+6281200000001"),
            item(2, Channel::Sms, "+6281200000002"),
            item(3, Channel::Sms, "+6281200000001"),
            item(4, Channel::Whatsapp, "+6281200000001"),
            item(5, Channel::Sms, "+6281200000001"),
        ];
        let groups: Vec<Vec<i64>> =
            by_recipient(rows).iter().map(|g| g.iter().map(|i| i.id).collect()).collect();
        assert_eq!(groups, vec![vec![1, 3, 5], vec![2], vec![4]]);
    }

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
