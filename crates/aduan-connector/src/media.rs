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
//! the write: the one place for a check on fetched bytes. The check there is the sender's
//! attachment budget (`[server] upload_bytes_per_hour`, the same figure as `/lapor`'s,
//! summed by the store over what the sender stored in the last hour): media over it is
//! dropped, its row marked refused for good, and the ticket gets an `attachment_refused`
//! event ([`over_budget`] is the reason).

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
                // The sender's attachment budget (`ops::media` in the store): over it, the
                // bytes are dropped and the refusal is on the ticket.
                match store.attachment_bytes_left_for(a.id).await {
                    Ok(Some(left)) if size > left => {
                        tracing::warn!(connector = self.name, channel = %a.channel, attachment_id = a.id, size, left, "Media over the sender's attachment budget; not stored.");
                        let reason = over_budget(size, left);
                        if let Err(error) = store.attachment_refused(a.id, reason).await {
                            tracing::warn!(connector = self.name, %error, attachment_id = a.id, "Could not record a refused attachment.");
                        }
                        return false;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(connector = self.name, %error, attachment_id = a.id, "Could not read the sender's attachment budget; will try again.");
                        return false;
                    }
                }
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

/// The reason recorded for an attachment over its sender's budget (no personal data).
pub fn over_budget(size: u64, left: u64) -> String {
    format!(
        "refused: {size} bytes, over the sender's attachment budget \
         ({left} bytes left this hour; [server] upload_bytes_per_hour)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aduan_core::{
        AttachmentRef, EventKind, Identity, IdentityKind, InboundMessage, Sender, ThreadHints,
    };
    use aduan_store::StoreOptions;

    fn photo(r: &str) -> AttachmentRef {
        AttachmentRef {
            filename: None,
            content_type: "image/jpeg".into(),
            size: 0,
            sha256: String::new(),
            provider_ref: Some(r.into()),
        }
    }

    /// Fetched media counts against its sender's hourly attachment budget: what does not
    /// fit is not written, is never fetched again, and the ticket says so.
    #[tokio::test]
    async fn media_over_the_senders_budget_is_refused_and_shown_on_the_ticket() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
        let opts = StoreOptions { attachment_bytes_per_hour: Some(1000), ..Default::default() };
        let store = Store::open(&url, opts).await.unwrap();
        store.migrate().await.unwrap();
        let blobs = BlobStore::new(dir.path().join("att"), Default::default());
        let wa = Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap();
        let message = InboundMessage {
            channel: Channel::Whatsapp,
            provider_id: "wamid.1".into(),
            sender: Sender { identity: Some(wa), display_name: None, contacts: vec![] },
            text: "Foto jalan".into(),
            attachments: vec![photo("111"), photo("222")],
            location: None,
            received_at: chrono::Utc::now(),
            thread: ThreadHints::default(),
        };
        let code = store.ingest(message).await.unwrap().ticket.unwrap();
        let queue = MediaQueue::new("test", vec![Channel::Whatsapp]);
        let due = store.attachments_unfetched(vec![Channel::Whatsapp], 6, 10).await.unwrap();
        assert_eq!(due.len(), 2);
        let bytes = |b: u8| Ok(FetchedMedia { bytes: vec![b; 800], content_type: None });
        assert!(queue.process(&store, &blobs, &due[0], bytes(1)).await, "800 of 1000 fits");
        assert!(!queue.process(&store, &blobs, &due[1], bytes(2)).await, "800 more does not");
        // Not written, not fetched again; the first one is stored.
        let stored = walk(&dir.path().join("att"));
        assert_eq!(stored, 1, "one blob on disk");
        let due = store.attachments_unfetched(vec![Channel::Whatsapp], 6, 10).await.unwrap();
        assert!(due.is_empty(), "{due:?}");
        let view = store.ticket(code).await.unwrap().unwrap();
        let refused: Vec<_> =
            view.events.iter().filter(|e| e.kind == EventKind::AttachmentRefused).collect();
        assert_eq!(refused.len(), 1, "{:?}", view.events);
        let note = refused[0].note.as_deref().unwrap_or("");
        assert!(note.contains("budget") && note.contains("800 bytes"), "{note}");
        // The sender's next hour is 200 bytes.
        let wa = Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap();
        assert_eq!(store.attachment_bytes_left(&wa).await.unwrap(), Some(200));
    }

    fn walk(dir: &std::path::Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()
    }
}
