//! Attachments still at the provider: which are due for a fetch, and recording the outcome.

use aduan_core::Channel;
use chrono::{DateTime, Utc};

use super::common::parse;
use crate::db::{Db, Value, args};
use crate::types::UnfetchedAttachment;
use crate::{Result, Store, now};

/// Attachments of the given channels still only at the provider, oldest first, that have
/// had fewer than `max_attempts` failed fetches and whose retry time has come.
pub(crate) async fn attachments_unfetched<D: Db>(
    c: &mut D,
    channels: Vec<Channel>,
    max_attempts: i64,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<UnfetchedAttachment>> {
    if channels.is_empty() || limit <= 0 {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..channels.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        "SELECT a.id, m.channel, a.provider_ref, a.content_type, a.fetch_attempts \
         FROM attachments a JOIN messages m ON m.id = a.message_id \
         WHERE a.sha256 = '' AND a.provider_ref IS NOT NULL AND a.fetch_attempts >= 0 \
         AND a.fetch_attempts < $1 AND (a.fetch_after IS NULL OR a.fetch_after <= $2) \
         AND m.channel IN ({}) ORDER BY a.id LIMIT $3",
        placeholders.join(", ")
    );
    let mut args = args![max_attempts, now, limit];
    args.extend(channels.iter().map(|ch| Value::from(ch.as_str())));
    let rows = c.fetch_all(&sql, args).await?;
    rows.iter()
        .map(|r| {
            Ok(UnfetchedAttachment {
                id: r.get("id")?,
                channel: parse(&r.get::<String>("channel")?, "channel")?,
                provider_ref: r.get("provider_ref")?,
                content_type: r.get("content_type")?,
                attempts: r.get("fetch_attempts")?,
            })
        })
        .collect()
}

pub(crate) async fn attachment_fetched<D: Db>(
    c: &mut D,
    id: i64,
    sha256: String,
    size: u64,
    content_type: String,
) -> Result<()> {
    c.execute(
        "UPDATE attachments SET sha256 = $2, size = $3, content_type = $4, fetch_error = NULL, \
         fetch_after = NULL WHERE id = $1 AND sha256 = ''",
        args![id, sha256, i64::try_from(size).unwrap_or(i64::MAX), content_type],
    )
    .await?;
    Ok(())
}

pub(crate) async fn attachment_fetch_failed<D: Db>(
    c: &mut D,
    id: i64,
    error: String,
    retry_at: Option<DateTime<Utc>>,
) -> Result<()> {
    c.execute(
        "UPDATE attachments SET fetch_error = $2, fetch_after = $3, \
         fetch_attempts = CASE WHEN $3 IS NULL THEN -1 ELSE fetch_attempts + 1 END \
         WHERE id = $1 AND sha256 = ''",
        args![id, error, retry_at],
    )
    .await?;
    Ok(())
}

impl Store {
    /// Attachments of `channels` known only by a provider handle, due for a fetch.
    pub async fn attachments_unfetched(
        &self,
        channels: Vec<Channel>,
        max_attempts: i64,
        limit: i64,
    ) -> Result<Vec<UnfetchedAttachment>> {
        let now = now();
        read!(self, |c| attachments_unfetched(c, channels, max_attempts, limit, now))
    }

    /// Records a fetched attachment: its content now lives under `[storage] dir` by hash.
    pub async fn attachment_fetched(
        &self,
        id: i64,
        sha256: String,
        size: u64,
        content_type: String,
    ) -> Result<()> {
        write!(self, |c| attachment_fetched(c, id, sha256, size, content_type))
    }

    /// Records a failed fetch: retried at `retry_at`, or given up when `None`.
    pub async fn attachment_fetch_failed(
        &self,
        id: i64,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        write!(self, |c| attachment_fetch_failed(c, id, error, retry_at))
    }
}

// --- robust: attachment budget ---
//
// One budget of attachment bytes per sender and hour on every channel (issue 21.4; the
// figure is `[server] upload_bytes_per_hour`, the `/lapor` budget, in
// `StoreOptions::attachment_bytes_per_hour`). A sender is the identity of an inbound
// message; what they used is the sum of the sizes of the attachments that are stored
// (`sha256 <> ''`) on their inbound messages stored in the last hour (the partial index
// `messages_identity_stored`, migration 0013). A message without a sender identity (web
// form without contact, automated mail) has no budget here: `/lapor` counts per address.
// The checks run where bytes are about to be written: `MediaQueue::process` (fetched
// media, by attachment id) and the email poller (before its blob writes, by sender). An
// attachment over budget is not stored: its row keeps no content, is never fetched again
// (`fetch_attempts = -1`, `fetch_error` says why) and its ticket gets an
// `attachment_refused` event; the message is a ticket like any other.

/// Attachment bytes stored for messages from identity `$1` (an `identities.id`) since `$2`.
const SENDER_BYTES: &str = "SELECT CAST(COALESCE(SUM(a.size), 0) AS BIGINT) \
     FROM messages m JOIN attachments a ON a.message_id = m.id \
     WHERE m.identity_id = $1 AND m.direction = 'in' AND m.stored_at >= $2 AND a.sha256 <> ''";

/// Bytes stored in the window by `identity_id`.
async fn sender_bytes<D: Db>(c: &mut D, identity_id: i64, since: DateTime<Utc>) -> Result<u64> {
    let used: i64 = c.fetch_one_scalar(SENDER_BYTES, args![identity_id, since]).await?;
    Ok(u64::try_from(used).unwrap_or(0))
}

/// Bytes `sender` (kind, value) stored since `since`; 0 for an unknown sender.
pub(crate) async fn attachment_bytes_of_sender<D: Db>(
    c: &mut D,
    kind: String,
    value: String,
    since: DateTime<Utc>,
) -> Result<u64> {
    let id: Option<i64> = c
        .fetch_optional_scalar(
            "SELECT id FROM identities WHERE kind = $1 AND value = $2",
            args![kind, value],
        )
        .await?;
    match id {
        Some(id) => sender_bytes(c, id, since).await,
        None => Ok(0),
    }
}

/// Bytes the sender of attachment `id`'s message stored since `since`; `None` when that
/// message has no sender identity (or the attachment does not exist).
pub(crate) async fn attachment_bytes_of_sender_of<D: Db>(
    c: &mut D,
    id: i64,
    since: DateTime<Utc>,
) -> Result<Option<u64>> {
    let identity: Option<Option<i64>> = c
        .fetch_optional_scalar(
            "SELECT m.identity_id FROM attachments a JOIN messages m ON m.id = a.message_id \
             WHERE a.id = $1",
            args![id],
        )
        .await?;
    match identity.flatten() {
        Some(identity_id) => Ok(Some(sender_bytes(c, identity_id, since).await?)),
        None => Ok(None),
    }
}

/// Marks attachment `id` (content not stored) refused for good with `reason`, and records
/// it on its ticket. Nothing when it is stored, given up or refused already.
pub(crate) async fn attachment_refused<D: Db>(
    c: &mut D,
    id: i64,
    reason: String,
    now: DateTime<Utc>,
) -> Result<()> {
    let message_id: Option<i64> = c
        .fetch_optional_scalar(
            "UPDATE attachments SET fetch_error = $2, fetch_after = NULL, fetch_attempts = -1 \
             WHERE id = $1 AND sha256 = '' AND fetch_attempts >= 0 RETURNING message_id",
            args![id, reason.clone()],
        )
        .await?;
    let Some(message_id) = message_id else { return Ok(()) };
    let ticket_id: Option<i64> = c
        .fetch_one_scalar("SELECT ticket_id FROM messages WHERE id = $1", args![message_id])
        .await?;
    if let Some(ticket_id) = ticket_id {
        let to = id.to_string();
        let system = &aduan_core::Actor::System;
        let kind = aduan_core::EventKind::AttachmentRefused;
        super::common::event(c, ticket_id, now, system, kind, None, Some(&to), Some(&reason))
            .await?;
    }
    Ok(())
}

/// [`attachment_refused`] for every attachment of message `message_id` stored without
/// content or provider reference (what the email poller left out over budget).
pub(crate) async fn message_attachments_refused<D: Db>(
    c: &mut D,
    message_id: i64,
    reason: String,
    now: DateTime<Utc>,
) -> Result<usize> {
    let ids: Vec<i64> = c
        .fetch_all_scalar(
            "SELECT id FROM attachments WHERE message_id = $1 AND sha256 = '' \
             AND provider_ref IS NULL AND fetch_attempts >= 0 ORDER BY id",
            args![message_id],
        )
        .await?;
    for id in &ids {
        attachment_refused(c, *id, reason.clone(), now).await?;
    }
    Ok(ids.len())
}

impl Store {
    /// Attachment bytes `sender` may still store this hour; `None` without a budget.
    pub async fn attachment_bytes_left(
        &self,
        sender: &aduan_core::Identity,
    ) -> Result<Option<u64>> {
        let Some(budget) = self.inner.opts.attachment_bytes_per_hour else { return Ok(None) };
        let since = now() - chrono::Duration::hours(1);
        let (kind, value) = (sender.kind.as_str().to_owned(), sender.value.clone());
        let used = read!(self, |c| attachment_bytes_of_sender(c, kind, value, since))?;
        Ok(Some(budget.saturating_sub(used)))
    }

    /// Attachment bytes the sender of attachment `id`'s message may still store this hour;
    /// `None` without a budget or without a sender.
    pub async fn attachment_bytes_left_for(&self, id: i64) -> Result<Option<u64>> {
        let Some(budget) = self.inner.opts.attachment_bytes_per_hour else { return Ok(None) };
        let since = now() - chrono::Duration::hours(1);
        let used = read!(self, |c| attachment_bytes_of_sender_of(c, id, since))?;
        Ok(used.map(|used| budget.saturating_sub(used)))
    }

    /// Attachment `id` is not stored, for good, because of `reason`; its ticket records it.
    pub async fn attachment_refused(&self, id: i64, reason: String) -> Result<()> {
        let (reason, now) = (crate::clean(reason), now());
        write!(self, |c| attachment_refused(c, id, reason, now))
    }

    /// Every attachment of message `message_id` left without content (over budget) is
    /// refused with `reason`; how many.
    pub async fn message_attachments_refused(
        &self,
        message_id: i64,
        reason: String,
    ) -> Result<usize> {
        let (reason, now) = (crate::clean(reason), now());
        write!(self, |c| message_attachments_refused(c, message_id, reason, now))
    }
}

// --- inbox: attachments served ---
//
// `GET /attachments/{id}` (issue 19.1) looks an attachment up by its row id with the code
// of the ticket its message belongs to; the web layer then checks that the caller may see
// that ticket (the same check as the ticket view) before it reads the blob by hash.

/// One attachment row with the ticket it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    pub id: i64,
    pub ticket: aduan_core::TicketCode,
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the content; empty while it is only at the provider (or refused).
    pub sha256: String,
}

pub(crate) async fn attachment_by_id<D: Db>(
    c: &mut D,
    id: i64,
) -> Result<Option<StoredAttachment>> {
    let row = c
        .fetch_optional(
            "SELECT a.id, t.code, a.filename, a.content_type, a.size, a.sha256 \
             FROM attachments a JOIN messages m ON m.id = a.message_id \
             JOIN tickets t ON t.id = m.ticket_id WHERE a.id = $1",
            args![id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let size: i64 = row.get("size")?;
    Ok(Some(StoredAttachment {
        id: row.get("id")?,
        ticket: parse(&row.get::<String>("code")?, "ticket code")?,
        filename: row.get("filename")?,
        content_type: row.get("content_type")?,
        size: u64::try_from(size).unwrap_or(0),
        sha256: row.get("sha256")?,
    }))
}

impl Store {
    /// Attachment `id` and the code of its ticket; `None` when there is no such attachment
    /// (or its message has no ticket).
    pub async fn attachment_by_id(&self, id: i64) -> Result<Option<StoredAttachment>> {
        read!(self, |c| attachment_by_id(c, id))
    }
}
