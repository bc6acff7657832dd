//! Webhook mode: `POST /hooks/telegram`. Checks `X-Telegram-Bot-Api-Secret-Token` in
//! constant time, parses the update, and hands messages to the shared server to store.
//! Commands are queued for the connector's task to answer (they need a store read and a
//! `sendMessage`, which a webhook handler never does itself).

use aduan_connector::{Rejection, Webhook, WebhookReply, WebhookRequest};
use aduan_core::Channel;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use crate::update::{Action, Command, ParseError, ParseOptions, parse_update};

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

pub struct TelegramWebhook {
    secret: [u8; 32],
    opts: ParseOptions,
    commands: mpsc::Sender<(i64, Command)>,
}

impl TelegramWebhook {
    pub fn new(
        secret_token: &str,
        opts: ParseOptions,
        commands: mpsc::Sender<(i64, Command)>,
    ) -> Self {
        TelegramWebhook { secret: Sha256::digest(secret_token.as_bytes()).into(), opts, commands }
    }

    /// Whether `given` is the configured secret. Both sides are hashed first, so the
    /// comparison takes the same time whatever the length or content of `given`.
    fn secret_matches(&self, given: &[u8]) -> bool {
        let given: [u8; 32] = Sha256::digest(given).into();
        bool::from(given.ct_eq(&self.secret))
    }
}

impl Webhook for TelegramWebhook {
    fn path(&self) -> &'static str {
        "telegram"
    }

    fn channel(&self) -> Channel {
        Channel::Telegram
    }

    /// The secret header is checked before the body is read.
    fn precheck(&self, req: &WebhookRequest) -> Result<(), Rejection> {
        let Some(given) = req.headers.get(SECRET_HEADER) else {
            return Err(Rejection::Unauthenticated("X-Telegram-Bot-Api-Secret-Token"));
        };
        if !self.secret_matches(given.as_bytes()) {
            return Err(Rejection::Forbidden("X-Telegram-Bot-Api-Secret-Token"));
        }
        Ok(())
    }

    fn handle(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        self.precheck(req)?;
        if req.method != http::Method::POST {
            return Err(Rejection::Invalid("Telegram delivers updates with POST".into()));
        }
        let parsed = parse_update(&req.body, self.opts).map_err(|e| match e {
            ParseError::Json(why) => Rejection::Malformed(why),
            ParseError::NotAnUpdate(why) => Rejection::Invalid(why),
        })?;
        let messages = match parsed.action {
            Action::Store(m) => vec![*m],
            Action::Command(c) => {
                if self.commands.try_send((parsed.update_id, c)).is_err() {
                    tracing::warn!(
                        channel = "telegram",
                        update_id = parsed.update_id,
                        "Command queue full or closed; the command goes unanswered."
                    );
                }
                Vec::new()
            }
            Action::Ignore(why) => {
                tracing::debug!(
                    channel = "telegram",
                    update_id = parsed.update_id,
                    why,
                    "Update ignored."
                );
                Vec::new()
            }
        };
        Ok(WebhookReply::Store { messages, body: None })
    }
}
