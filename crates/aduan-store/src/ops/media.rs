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
