//! The one media-fetch queue of all channels.
//!
//! A webhook or poller stores an attachment as a reference only (`provider_ref`: a URL, a
//! WhatsApp media id, a Telegram `file_id`), since a webhook handler does no IO and a poll
//! round must not wait for downloads. A [`MediaQueue`] then works through the store's queue
//! of attachments still at the provider (`attachments_unfetched`), fetches each through its
//! channel's [`MediaSource`] (which goes through [`crate::egress`] for URLs named by
//! outside input), writes the bytes into the [`BlobStore`] and records the hash
//! (`attachment_fetched`).
//!
//! A failed fetch is recorded on the attachment row (`attachment_fetch_failed`) with the
//! next try time from the queue's [`Backoff`], so a restart neither forgets nor hammers it;
//! a permanent failure, or the `max_attempts`-th, gives up (the attachment stays a
//! reference). A write the attachment store refuses (disk at its floor, I/O error) is not
//! counted against the attachment: the provider is not at fault, it is tried again on a
//! later round.
//!
//! Every fetched attachment passes through [`MediaQueue::process`] between the download and
//! the write: the one place for a check on fetched bytes (a size budget, say).

use std::time::Duration;

use aduan_core::Channel;
use aduan_store::{Store, UnfetchedAttachment};

use crate::ConnectorContext;
use crate::backoff::Backoff;
use crate::blob::BlobStore;
use crate::egress::FetchError;

/// What a [`MediaSource`] fetched.
#[derive(Debug)]
pub struct FetchedMedia {
    pub bytes: Vec<u8>,
    /// The type the provider named; `None` keeps the one stored with the attachment.
    pub content_type: Option<String>,
}

/// Why a fetch failed. `reason` is stored on the attachment row and logged: no URL in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct MediaError {
    pub reason: String,
    /// Trying again can't help (gone, refused, too large).
    pub permanent: bool,
}

impl MediaError {
    pub fn transient(reason: impl Into<String>) -> MediaError {
        MediaError { reason: reason.into(), permanent: false }
    }

    pub fn permanent(reason: impl Into<String>) -> MediaError {
        MediaError { reason: reason.into(), permanent: true }
    }
}

impl From<FetchError> for MediaError {
    fn from(e: FetchError) -> MediaError {
        MediaError { permanent: e.permanent(), reason: e.to_string() }
    }
}

/// A channel's way of getting one attachment's bytes from its provider.
#[async_trait::async_trait]
pub trait MediaSource: Send + Sync {
    async fn fetch_media(&self, a: &UnfetchedAttachment) -> Result<FetchedMedia, MediaError>;
}

/// The fetch queue of one connector's channels.
#[derive(Debug, Clone)]
pub struct MediaQueue {
    /// The connector's name, for logs.
    pub name: &'static str,
    pub channels: Vec<Channel>,
    /// Failed fetches of one attachment before it is given up.
    pub max_attempts: i64,
    /// Attachments claimed per round.
    pub batch: i64,
    /// The wait before the next try after `attempts` failures: `backoff.delay(attempts)`.
    pub backoff: Backoff,
    /// The pause after a round that fetched nothing.
    pub idle: Duration,
}

/// Failed fetches of one attachment before it is given up, by default.
pub const MAX_FETCH_ATTEMPTS: i64 = 6;
/// The default retry policy: a minute, doubling up to about 17 hours.
pub const FETCH_BACKOFF: Backoff =
    Backoff::new(Duration::from_secs(60), Duration::from_secs(60 << 10));

impl MediaQueue {
    /// A queue with the defaults: 6 attempts, 10 per round, [`FETCH_BACKOFF`], 3 s idle.
    pub fn new(name: &'static str, channels: Vec<Channel>) -> MediaQueue {
        MediaQueue {
            name,
            channels,
            max_attempts: MAX_FETCH_ATTEMPTS,
            batch: 10,
            backoff: FETCH_BACKOFF,
            idle: Duration::from_secs(3),
        }
    }

    /// Runs rounds until shutdown: again at once after a round that fetched something,
    /// after `idle` otherwise.
    pub async fn run(&self, cx: &ConnectorContext, source: &dyn MediaSource) {
        loop {
            let fetched = self.run_once(cx, source).await;
            if cx.shutdown.is_cancelled() {
                return;
            }
            if fetched == 0 {
                tokio::select! {
                    () = cx.shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.idle) => {}
                }
            }
        }
    }

    /// One round: claims up to `batch` due attachments and fetches them one by one.
    /// Returns how many were fetched and stored.
    pub async fn run_once(&self, cx: &ConnectorContext, source: &dyn MediaSource) -> usize {
        if self.channels.is_empty() {
            return 0;
        }
        let due = match cx
            .store
            .attachments_unfetched(self.channels.clone(), self.max_attempts, self.batch)
            .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(connector = self.name, %error, "Could not list media to fetch.");
                return 0;
            }
        };
        let mut fetched = 0;
        for a in due {
            if cx.shutdown.is_cancelled() {
                break;
            }
            let outcome = source.fetch_media(&a).await;
            if self.process(&cx.store, &cx.blobs, &a, outcome).await {
                fetched += 1;
            }
        }
        fetched
    }

    /// Stores a fetch's outcome: the bytes into `blobs` and the hash on the row, or the
    /// failure with its next try. `true` when the attachment is now stored.
    pub async fn process(
        &self,
        store: &Store,
        blobs: &BlobStore,
        a: &UnfetchedAttachment,
        outcome: Result<FetchedMedia, MediaError>,
    ) -> bool {
        let (recorded, stored) = match outcome {
            Ok(media) => {
                let size = media.bytes.len() as u64;
                let content_type = media.content_type.unwrap_or_else(|| a.content_type.clone());
                match blobs.put(media.bytes).await {
                    Ok(sha256) => {
                        tracing::info!(connector = self.name, channel = %a.channel, attachment_id = a.id, size, "Media fetched.");
                        (store.attachment_fetched(a.id, sha256, size, content_type).await, true)
                    }
                    Err(error) => {
                        tracing::error!(connector = self.name, %error, kind = ?error.kind(), attachment_id = a.id, "Could not write fetched media; will try again.");
                        return false;
                    }
                }
            }
            Err(MediaError { reason, permanent }) => {
                let retry_at = (!permanent && a.attempts + 1 < self.max_attempts).then(|| {
                    let wait = self.backoff.delay(a.attempts);
                    let secs = i64::try_from(wait.as_secs()).unwrap_or(i64::MAX).min(86_400 * 365);
                    aduan_store::now() + chrono::Duration::seconds(secs)
                });
                tracing::warn!(connector = self.name, channel = %a.channel, attachment_id = a.id, error = %reason, tries = a.attempts + 1, gave_up = retry_at.is_none(), "Media fetch failed.");
                (store.attachment_fetch_failed(a.id, reason, retry_at).await, false)
            }
        };
        if let Err(error) = recorded {
            tracing::warn!(connector = self.name, %error, attachment_id = a.id, "Could not record a media fetch.");
            return false;
        }
        stored
    }
}
