//! Photos, documents and voice notes are stored with their message as a Telegram `file_id`
//! (a webhook handler does no IO, and a poll round must not wait for downloads). The shared
//! media queue ([`aduan_connector::media`]) then fetches each one through this
//! [`MediaSource`] — `getFile` → `{api}/file/bot<token>/<file_path>` — writes it into the
//! attachment store by content hash, and records the hash on the attachment.

use std::time::Duration;

use aduan_connector::media::{FetchedMedia, MediaError, MediaQueue, MediaSource};
use aduan_connector::{Backoff, ConnectorContext};
use aduan_core::Channel;
use aduan_store::UnfetchedAttachment;
use teloxide::net::Download;
use teloxide::prelude::Requester;
use teloxide::types::FileId;
use teloxide::{DownloadError, RequestError};

use crate::connector::TelegramConnector;

/// The Bot API serves files up to 20 MB.
const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;
/// Transient failures of one file before it is given up.
const MAX_TRIES: i64 = 8;
const IDLE: Duration = Duration::from_secs(2);
/// Ten seconds after the first failure, doubling up to 20,480 s (about 5.7 hours).
const FETCH_BACKOFF: Backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(20_480));

impl TelegramConnector {
    /// Works through the store's queue of Telegram attachments still at the provider.
    pub(crate) async fn fetch_loop(&self, cx: &ConnectorContext) {
        let queue = MediaQueue {
            max_attempts: MAX_TRIES,
            batch: 50,
            backoff: FETCH_BACKOFF,
            idle: IDLE,
            ..MediaQueue::new(crate::connector::NAME, vec![Channel::Telegram])
        };
        queue.run(cx, self).await;
    }
}

#[async_trait::async_trait]
impl MediaSource for TelegramConnector {
    async fn fetch_media(&self, a: &UnfetchedAttachment) -> Result<FetchedMedia, MediaError> {
        let file =
            self.bot.get_file(FileId(a.provider_ref.clone())).await.map_err(|e| match e {
                RequestError::Api(e) => MediaError::permanent(format!("getFile: {e}")),
                other => MediaError::transient(format!("getFile: {}", crate::describe(&other))),
            })?;
        if u64::from(file.meta.size) > MAX_FILE_BYTES {
            return Err(MediaError::permanent(format!(
                "{} bytes is over the Bot API's 20 MB",
                file.meta.size
            )));
        }
        let mut data: Vec<u8> = Vec::new();
        self.bot.download_file(&file.path, &mut data).await.map_err(|e| match e {
            DownloadError::Network(e) if e.status().is_some_and(|s| s.is_client_error()) => {
                MediaError::permanent(format!("download: {e}"))
            }
            other => MediaError::transient(format!("download: {other}")),
        })?;
        // Telegram's file type is not better than the one the update named.
        Ok(FetchedMedia { bytes: data, content_type: None })
    }
}
