//! Long polling. One round: `getUpdates(offset)` → store every message of the batch in one
//! transaction → answer the commands → checkpoint `offset = last update_id + 1` → the next
//! `getUpdates` confirms the batch to Telegram. A crash anywhere before the checkpoint
//! makes Telegram deliver the batch again, and the store recognises what it already has.

use std::time::Duration;

use aduan_connector::ConnectorContext;
use chrono::{DateTime, Utc};
use serde::Serialize;
use teloxide::RequestError;
use teloxide::requests::Payload;
use teloxide::requests::{JsonRequest, Request};

use crate::connector::TelegramConnector;
use crate::update::{Action, parse_value, update_id_of};

/// The checkpoint key (connector `telegram`) holding the next offset.
pub const CHECKPOINT_KEY: &str = "offset";

/// Telegram keeps an undelivered update at most 24 hours; an older offset protects nothing
/// and, once Telegram re-seeds its update ids after a quiet week, could skip new updates.
const OFFSET_MAX_AGE: chrono::Duration = chrono::Duration::hours(24);

/// The checkpoint as stored: `"{offset}@{unix seconds}"`.
pub fn checkpoint_value(offset: i64, at: DateTime<Utc>) -> String {
    format!("{offset}@{}", at.timestamp())
}

/// The offset to resume with: the stored one while it is fresh, else none (Telegram then
/// returns the earliest update not yet confirmed).
pub fn resume_offset(stored: Option<&str>, now: DateTime<Utc>) -> Option<i64> {
    let (offset, at) = stored?.split_once('@')?;
    let at = DateTime::<Utc>::from_timestamp(at.parse().ok()?, 0)?;
    if now - at > OFFSET_MAX_AGE {
        return None;
    }
    offset.parse().ok()
}

/// `getUpdates` returning the raw JSON of each update (teloxide's own `Update` would turn
/// a message it can't read into an empty error value).
#[derive(Serialize)]
struct GetUpdatesRaw {
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
    limit: u8,
    timeout: u32,
    allowed_updates: &'static [&'static str],
}

impl Payload for GetUpdatesRaw {
    type Output = Vec<serde_json::Value>;
    const NAME: &'static str = "getUpdates";
    fn timeout_hint(&self) -> Option<Duration> {
        Some(Duration::from_secs(u64::from(self.timeout)))
    }
}

pub(crate) const ALLOWED_UPDATES: &[&str] = &["message", "edited_message"];

/// The pause after a failed poll: a second, doubling up to a minute, reset by a good poll.
const POLL_BACKOFF: aduan_connector::Backoff =
    aduan_connector::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

impl TelegramConnector {
    pub(crate) async fn poll_loop(&self, cx: &ConnectorContext) -> Result<(), String> {
        let stored = cx
            .store
            .checkpoint(crate::connector::NAME, CHECKPOINT_KEY)
            .await
            .map_err(|e| format!("cannot read the offset: {e}"))?;
        let mut offset = resume_offset(stored.as_deref(), Utc::now());
        let mut advanced_at = Utc::now();
        let mut backoff = POLL_BACKOFF.start();
        let timeout = u32::try_from(self.config.poll_timeout.as_secs()).unwrap_or(25);
        loop {
            if Utc::now() - advanced_at > OFFSET_MAX_AGE {
                offset = None;
            }
            let request = JsonRequest::new(
                self.bot.clone(),
                GetUpdatesRaw { offset, limit: 100, timeout, allowed_updates: ALLOWED_UPDATES },
            );
            let answer = tokio::select! {
                () = cx.shutdown.cancelled() => return Ok(()),
                answer = request.send() => answer,
            };
            let pause = match answer {
                Ok(updates) if updates.is_empty() => None,
                Ok(updates) => match self.take_batch(cx, updates).await {
                    Ok(Some(next)) => {
                        cx.store
                            .set_checkpoint(
                                crate::connector::NAME.into(),
                                CHECKPOINT_KEY.into(),
                                checkpoint_value(next, Utc::now()),
                            )
                            .await
                            .map_err(|e| format!("cannot store the offset: {e}"))?;
                        offset = Some(next);
                        advanced_at = Utc::now();
                        None
                    }
                    Ok(None) => None,
                    Err(error) => {
                        // Not confirmed: Telegram delivers the batch again.
                        tracing::error!(channel = "telegram", %error, "Could not store a batch of updates; polling it again.");
                        Some(backoff.current())
                    }
                },
                Err(RequestError::RetryAfter(secs)) => Some(secs.duration()),
                Err(error) => {
                    let error = crate::describe(&error);
                    tracing::warn!(channel = "telegram", %error, backoff_secs = backoff.current().as_secs(), "getUpdates failed.");
                    Some(backoff.current())
                }
            };
            match pause {
                Some(wait) => {
                    backoff.next_delay();
                    tokio::select! {
                        () = cx.shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                None => backoff.reset(),
            }
        }
    }

    /// Stores the batch's messages in one transaction, then queues its commands. Returns
    /// the next offset, or an error (nothing to confirm) when the store failed.
    async fn take_batch(
        &self,
        cx: &ConnectorContext,
        updates: Vec<serde_json::Value>,
    ) -> Result<Option<i64>, String> {
        let mut next: Option<i64> = None;
        let mut messages = Vec::new();
        let mut commands = Vec::new();
        for value in updates {
            let Some(id) = update_id_of(&value) else {
                tracing::warn!(channel = "telegram", "An update without update_id; skipped.");
                continue;
            };
            next = Some(next.map_or(id + 1, |n| n.max(id + 1)));
            match parse_value(value, self.parse_options()) {
                Ok(parsed) => match parsed.action {
                    Action::Store(m) => messages.push(*m),
                    Action::Command(c) => commands.push((id, c)),
                    Action::Ignore(why) => {
                        tracing::debug!(
                            channel = "telegram",
                            update_id = id,
                            why,
                            "Update ignored."
                        );
                    }
                },
                Err(error) => {
                    tracing::warn!(channel = "telegram", update_id = id, %error, "Unreadable update skipped.");
                }
            }
        }
        if !messages.is_empty() {
            let channels: Vec<_> = messages.iter().map(|m| m.channel).collect();
            let outcomes = cx.store.ingest_all(messages).await.map_err(|e| e.to_string())?;
            for (channel, outcome) in channels.into_iter().zip(&outcomes) {
                cx.telemetry.message_stored(channel, outcome);
            }
        }
        // After the store: a status request in the batch sees the tickets it opened.
        for (update_id, command) in commands {
            self.queue_command(update_id, command);
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_offset_resumes_and_a_stale_one_is_dropped() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let fresh = checkpoint_value(892252935, now - chrono::Duration::hours(2));
        assert_eq!(resume_offset(Some(&fresh), now), Some(892252935));
        let stale = checkpoint_value(892252935, now - chrono::Duration::hours(25));
        assert_eq!(resume_offset(Some(&stale), now), None);
        assert_eq!(resume_offset(None, now), None);
        assert_eq!(resume_offset(Some("garbage"), now), None);
    }
}
