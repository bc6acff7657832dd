//! The Telegram channel: a bot on the Bot API, through teloxide.
//!
//! - **Pure part** — [`update`]: `Update` JSON → a message to store, a command, or nothing;
//!   [`reply`]: the texts residents read and where an answer goes; [`webhook`]: the secret
//!   check and the `/hooks/telegram` handler.
//! - **IO shell** — [`TelegramConnector`]: long polling (`getUpdates`; the offset is
//!   checkpointed in the store only after the batch is stored) or webhook registration
//!   (`setWebhook` with the secret), command answers (`/start`, `/cek`), attachment fetches
//!   (`getFile` + download into the attachment store), and `sendMessage` for the outbox with
//!   pacing (1/s per chat, 20/min per group, 30/s overall) and 429 `retry_after` honoured.

mod connector;
mod fetch;
mod poll;
pub mod reply;
pub mod section;
mod send;
pub mod update;
pub mod webhook;

use std::time::Duration;

pub use aduan_connector::Secret;
pub use connector::TelegramConnector;
pub use poll::{CHECKPOINT_KEY, checkpoint_value, resume_offset};
pub use section::TelegramSection;
pub use update::{Action, Command, ParseOptions, Parsed, parse_update};
pub use webhook::TelegramWebhook;

/// How updates reach us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `getUpdates` long polling (the default): works behind NAT, one instance at a time.
    Polling,
    /// Telegram posts to `{public_url}/hooks/telegram`.
    Webhook,
}

/// Everything the connector needs, from `[channels.telegram]`, `[server] public_url` and
/// `[storage] dir`.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub token: Secret,
    /// The Bot API server (`https://api.telegram.org`, or a local one in tests).
    pub api_url: String,
    pub mode: Mode,
    /// Webhook mode: what Telegram must send in `X-Telegram-Bot-Api-Secret-Token`.
    pub secret_token: Option<Secret>,
    /// Where Telegram posts in webhook mode (`{public_url}/hooks/telegram`).
    pub webhook_url: String,
    pub allow_groups: bool,
    /// How long one `getUpdates` waits for updates.
    pub poll_timeout: Duration,
}

impl TelegramConfig {
    /// The defaults for everything but the token: polling, the public Bot API, private
    /// chats only, 25 s long polls.
    pub fn new(token: impl Into<Secret>) -> TelegramConfig {
        TelegramConfig {
            token: token.into(),
            api_url: "https://api.telegram.org".into(),
            mode: Mode::Polling,
            secret_token: None,
            webhook_url: "http://127.0.0.1:8080/hooks/telegram".into(),
            allow_groups: false,
            poll_timeout: Duration::from_secs(25),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("api_url {0:?} is not an http(s) URL")]
    ApiUrl(String),
    #[error("webhook mode needs a secret_token of 1-256 characters A-Z, a-z, 0-9, _ and -")]
    SecretToken,
    #[error("webhook URL {0:?} is not a URL")]
    WebhookUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A teloxide error for logs and stored errors: never the raw body of an answer (it can hold
/// residents' messages); teloxide already strips the token from network errors.
pub(crate) fn describe(error: &teloxide::RequestError) -> String {
    match error {
        teloxide::RequestError::InvalidJson { source, .. } => {
            format!("the Bot API answered something unreadable: {source}")
        }
        other => other.to_string(),
    }
}
