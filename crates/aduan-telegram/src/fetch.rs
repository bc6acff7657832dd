//! Photos, documents and voice notes are stored with their message as a Telegram `file_id`
//! (a webhook handler does no IO, and a poll round must not wait for downloads). This task
//! then fetches each one — `getFile` → `{api}/file/bot<token>/<file_path>` — writes it into
//! the attachment store by content hash, and records the hash on the attachment.

use std::time::Duration;

use aduan_connector::ConnectorContext;
use aduan_core::Channel;
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

enum Failure {
    /// Will not work later either (too big, unknown file id).
    Permanent(String),
    Transient(String),
}

impl TelegramConnector {
    /// Works through the store's queue of attachments still at the provider (shared with the
    /// other channels: failed tries and the next try time are kept on the attachment row, so
    /// a restart neither forgets nor hammers them).
    pub(crate) async fn fetch_loop(&self, cx: &ConnectorContext) {
        loop {
            let pending = match cx
                .store
                .attachments_unfetched(vec![Channel::Telegram], MAX_TRIES, 50)
                .await
            {
                Ok(p) => p,
                Err(error) => {
                    tracing::warn!(channel = "telegram", %error, "Could not list attachments to fetch.");
                    Vec::new()
                }
            };
            let mut fetched_any = false;
            for a in pending {
                if cx.shutdown.is_cancelled() {
                    return;
                }
                let recorded = match self.fetch(&a.provider_ref).await {
                    Ok((sha256, size)) => {
                        fetched_any = true;
                        tracing::info!(channel = "telegram", attachment_id = a.id, %sha256, size, "Attachment fetched.");
                        cx.store
                            .attachment_fetched(a.id, sha256, size, a.content_type.clone())
                            .await
                    }
                    Err(Failure::Transient(why)) if a.attempts + 1 < MAX_TRIES => {
                        let tries = a.attempts + 1;
                        tracing::warn!(channel = "telegram", attachment_id = a.id, error = %why, tries, "Attachment fetch failed; will retry.");
                        let wait = chrono::Duration::seconds(5 << tries.min(12));
                        cx.store
                            .attachment_fetch_failed(a.id, why, Some(aduan_store::now() + wait))
                            .await
                    }
                    Err(Failure::Permanent(why) | Failure::Transient(why)) => {
                        tracing::error!(channel = "telegram", attachment_id = a.id, error = %why, "Attachment can't be fetched; kept as a reference only.");
                        cx.store.attachment_fetch_failed(a.id, why, None).await
                    }
                };
                if let Err(error) = recorded {
                    tracing::error!(channel = "telegram", attachment_id = a.id, %error, "Could not record an attachment fetch.");
                }
            }
            if !fetched_any {
                tokio::select! {
                    () = cx.shutdown.cancelled() => return,
                    () = tokio::time::sleep(IDLE) => {}
                }
            }
        }
    }

    async fn fetch(&self, file_id: &str) -> Result<(String, u64), Failure> {
        let file = self.bot.get_file(FileId(file_id.to_owned())).await.map_err(|e| match e {
            RequestError::Api(e) => Failure::Permanent(format!("getFile: {e}")),
            other => Failure::Transient(format!("getFile: {}", crate::describe(&other))),
        })?;
        if u64::from(file.meta.size) > MAX_FILE_BYTES {
            return Err(Failure::Permanent(format!(
                "{} bytes is over the Bot API's 20 MB",
                file.meta.size
            )));
        }
        let mut data: Vec<u8> = Vec::new();
        self.bot.download_file(&file.path, &mut data).await.map_err(|e| match e {
            DownloadError::Network(e) if e.status().is_some_and(|s| s.is_client_error()) => {
                Failure::Permanent(format!("download: {e}"))
            }
            other => Failure::Transient(format!("download: {other}")),
        })?;
        let dir = self.config.attachments_dir.clone();
        let size = data.len() as u64;
        let sha256 = tokio::task::spawn_blocking(move || aduan_web::store_blob(&dir, &data))
            .await
            .map_err(|e| Failure::Transient(format!("store: {e}")))?
            .map_err(|e| Failure::Transient(format!("store: {e}")))?;
        Ok((sha256, size))
    }
}
