//! The connector: wires the bot, the poll loop or the webhook, the command answers, the
//! attachment fetcher and the sender together.

use std::sync::Arc;

use aduan_connector::{Connector, ConnectorContext, ConnectorError, SendError, Webhook};
use aduan_core::Channel;
use aduan_store::OutboxItem;
use teloxide::Bot;
use teloxide::payloads::SetWebhookSetters;
use teloxide::prelude::Requester;
use teloxide::types::AllowedUpdate;
use tokio::sync::{Mutex, mpsc};

use crate::reply::{START_TEXT, STATUS_HELP_TEXT, STATUS_UNAVAILABLE_TEXT};
use crate::send::Sender;
use crate::update::{Command, ParseOptions};
use crate::webhook::TelegramWebhook;
use crate::{Mode, Secret, TelegramConfig, TelegramError};

pub(crate) const NAME: &str = "telegram";

/// Commands a webhook handler queued and the connector's task has not answered yet.
const COMMAND_QUEUE: usize = 1024;

pub struct TelegramConnector {
    pub(crate) config: TelegramConfig,
    pub(crate) bot: Bot,
    sender: Sender,
    webhook: Option<Arc<TelegramWebhook>>,
    /// Commands to answer, with their update id: queued by the poll loop or the webhook
    /// handler, answered by `command_loop`, so that neither waits for a paced send.
    queue: mpsc::Sender<(i64, Command)>,
    commands: Mutex<mpsc::Receiver<(i64, Command)>>,
}

impl TelegramConnector {
    pub fn new(config: TelegramConfig) -> Result<TelegramConnector, TelegramError> {
        let api_url = reqwest::Url::parse(config.api_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| TelegramError::ApiUrl(config.api_url.clone()))?;
        // Long polls hold the request open for `poll_timeout`; the client must wait longer.
        // Every call and file download goes to `api_url` (teloxide builds
        // `{api_url}/bot<token>/…` and `{api_url}/file/bot<token>/<file_path>`); a redirect
        // elsewhere would carry the token's URL away, so only same-origin ones are followed.
        let client = reqwest::Client::builder()
            .redirect(aduan_connector::egress::same_origin_redirects())
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(config.poll_timeout + std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| TelegramError::Client(e.to_string()))?;
        let bot = Bot::with_client(config.token.expose(), client).set_api_url(api_url);
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let webhook = match config.mode {
            Mode::Polling => None,
            Mode::Webhook => {
                let secret = config.secret_token.as_ref().map(Secret::expose).unwrap_or_default();
                let valid = (1..=256).contains(&secret.len())
                    && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid {
                    return Err(TelegramError::SecretToken);
                }
                reqwest::Url::parse(&config.webhook_url)
                    .map_err(|_| TelegramError::WebhookUrl(config.webhook_url.clone()))?;
                let opts = ParseOptions { allow_groups: config.allow_groups };
                Some(Arc::new(TelegramWebhook::new(secret, opts, tx.clone())))
            }
        };
        Ok(TelegramConnector {
            sender: Sender::new(bot.clone()),
            bot,
            config,
            webhook,
            queue: tx,
            commands: Mutex::new(rx),
        })
    }

    pub(crate) fn parse_options(&self) -> ParseOptions {
        ParseOptions { allow_groups: self.config.allow_groups }
    }

    /// Queues a command for `command_loop`; a full queue drops it (the resident can ask
    /// again), it never holds up intake.
    pub(crate) fn queue_command(&self, update_id: i64, command: Command) {
        if self.queue.try_send((update_id, command)).is_err() {
            tracing::warn!(
                channel = "telegram",
                update_id,
                "Command queue full; the command goes unanswered."
            );
        }
    }

    /// Answers a command: the greeting, or the status of a ticket (a store read). Failures
    /// are logged; the resident can ask again.
    pub(crate) async fn answer(&self, cx: &ConnectorContext, update_id: i64, command: Command) {
        let (chat, reply_to, text, code) = match command {
            Command::Start { chat_id } => (chat_id, None, START_TEXT.to_owned(), None),
            Command::Status { chat_id, message_id, code: None } => {
                (chat_id, Some(message_id), STATUS_HELP_TEXT.to_owned(), None)
            }
            Command::Status { chat_id, message_id, code: Some(code) } => {
                let text = match cx.store.status_answer(code).await {
                    Ok(Some(answer)) => answer,
                    Ok(None) => aduan_core::texts::not_found(code),
                    Err(error) => {
                        tracing::error!(channel = "telegram", update_id, %error, "Could not read a ticket for a status request.");
                        STATUS_UNAVAILABLE_TEXT.to_owned()
                    }
                };
                (chat_id, Some(message_id), text, Some(code.to_string()))
            }
        };
        // Quote the request only in groups, where several people talk.
        let reply_to = reply_to.filter(|_| chat < 0);
        match self.sender.send_text(chat, reply_to, &text).await {
            Ok(_) => {
                tracing::info!(channel = "telegram", update_id, ticket = code, "Command answered.")
            }
            Err(error) => {
                tracing::warn!(channel = "telegram", update_id, ticket = code, %error, "Command answer not delivered.")
            }
        }
    }

    async fn register(&self) -> Result<(), ConnectorError> {
        let transient = |what: &str, e: teloxide::RequestError| {
            ConnectorError::Transient(format!("{what} failed: {}", crate::describe(&e)))
        };
        match self.config.mode {
            // Switching back from webhook mode: getUpdates refuses to work while a webhook
            // is set. Pending updates are kept.
            Mode::Polling => {
                self.bot.delete_webhook().await.map_err(|e| transient("deleteWebhook", e))?;
            }
            Mode::Webhook => {
                let url = reqwest::Url::parse(&self.config.webhook_url)
                    .map_err(|e| ConnectorError::Fatal(format!("webhook URL: {e}")))?;
                let secret = self
                    .config
                    .secret_token
                    .as_ref()
                    .map(|s| s.expose().to_owned())
                    .unwrap_or_default();
                self.bot
                    .set_webhook(url)
                    .secret_token(secret)
                    .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::EditedMessage])
                    .await
                    .map_err(|e| transient("setWebhook", e))?;
            }
        }
        tracing::info!(channel = "telegram", mode = ?self.config.mode, "Telegram bot registered.");
        Ok(())
    }

    async fn command_loop(&self, cx: &ConnectorContext) {
        let mut queue = self.commands.lock().await;
        loop {
            let command = tokio::select! {
                () = cx.shutdown.cancelled() => return,
                c = queue.recv() => c,
            };
            match command {
                Some((update_id, c)) => self.answer(cx, update_id, c).await,
                None => return cx.shutdown.cancelled().await,
            }
        }
    }
}

#[async_trait::async_trait]
impl Connector for TelegramConnector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn channels(&self) -> Vec<Channel> {
        vec![Channel::Telegram]
    }

    fn webhooks(&self) -> Vec<Arc<dyn Webhook>> {
        self.webhook.iter().map(|w| w.clone() as Arc<dyn Webhook>).collect()
    }

    /// Long polling runs on one instance at a time: Telegram answers a second concurrent
    /// `getUpdates` with 409 Conflict, and the offset checkpoint is one per bot. In webhook
    /// mode every instance serves the hook and runs its own command and fetch loops.
    fn exclusive(&self) -> Option<String> {
        match self.config.mode {
            Mode::Polling => Some("telegram:polling".to_owned()),
            Mode::Webhook => None,
        }
    }

    async fn run(&self, cx: ConnectorContext) -> Result<(), ConnectorError> {
        tokio::select! {
            () = cx.shutdown.cancelled() => return Ok(()),
            r = self.register() => r?,
        }
        let updates = async {
            match self.config.mode {
                Mode::Polling => self.poll_loop(&cx).await.map_err(ConnectorError::Transient),
                Mode::Webhook => {
                    cx.shutdown.cancelled().await;
                    Ok(())
                }
            }
        };
        // The command and fetch loops run until shutdown; a failed poll loop ends the run
        // (and supervise restarts it).
        tokio::select! {
            r = updates => r,
            () = self.command_loop(&cx) => Ok(()),
            () = self.fetch_loop(&cx) => Ok(()),
        }
    }

    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, SendError> {
        self.sender.send_item(item).await
    }
}
