//! `sendMessage` with Telegram's pacing: one message a second per chat, twenty a minute per
//! group, thirty a second overall. A 429 puts its chat on hold for `retry_after`; sends to
//! that chat during the hold come back as `Retry` at once instead of being tried (and the
//! outbound worker reschedules the row), so one flooded chat never blocks the others.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aduan_connector::SendError;
use aduan_store::OutboxItem;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, MessageId, ReplyParameters};
use teloxide::{ApiError, Bot, RequestError};

use crate::reply::{split_text, target};
use crate::update::message_ref;

const fn nonzero(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("a rate limit of zero"),
    }
}

pub(crate) struct Sender {
    bot: Bot,
    overall: DefaultDirectRateLimiter,
    per_chat: DefaultKeyedRateLimiter<i64>,
    per_group: DefaultKeyedRateLimiter<i64>,
    /// Chats Telegram told us to leave alone until then (429 `retry_after`).
    held: Mutex<HashMap<i64, Instant>>,
}

impl Sender {
    pub(crate) fn new(bot: Bot) -> Sender {
        Sender {
            bot,
            overall: RateLimiter::direct(Quota::per_second(nonzero(30))),
            per_chat: RateLimiter::keyed(Quota::per_second(nonzero(1))),
            per_group: RateLimiter::keyed(Quota::per_minute(nonzero(20))),
            held: Mutex::new(HashMap::new()),
        }
    }

    fn held_for(&self, chat: i64) -> Option<Duration> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let until = *held.get(&chat)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            held.remove(&chat);
            None
        } else {
            Some(left)
        }
    }

    fn hold(&self, chat: i64, wait: Duration) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|_, until| *until > Instant::now());
        held.insert(chat, Instant::now() + wait);
    }

    async fn pace(&self, chat: i64) {
        self.per_chat.until_key_ready(&chat).await;
        // Negative ids are groups, supergroups and channels.
        if chat < 0 {
            self.per_group.until_key_ready(&chat).await;
        }
        self.overall.until_ready().await;
        if self.per_chat.len() > 10_000 {
            self.per_chat.retain_recent();
            self.per_group.retain_recent();
        }
    }

    /// Sends `text` (split if longer than Telegram takes) to `chat`; returns the id of the
    /// last part sent.
    pub(crate) async fn send_text(
        &self,
        chat: i64,
        reply_to: Option<i64>,
        text: &str,
    ) -> Result<i64, SendError> {
        if let Some(left) = self.held_for(chat) {
            return Err(SendError::Retry {
                reason: "Telegram asked to wait before writing to this chat again".into(),
                after: Some(left),
            });
        }
        let mut last = None;
        for (i, part) in split_text(text).into_iter().enumerate() {
            self.pace(chat).await;
            let mut req = self.bot.send_message(ChatId(chat), part);
            if let (Some(id), 0) = (reply_to, i) {
                let Ok(id) = i32::try_from(id) else {
                    return Err(SendError::Permanent(format!("message id {id} is out of range")));
                };
                let mut quote = ReplyParameters::new(MessageId(id));
                quote.allow_sending_without_reply = Some(true);
                req = req.reply_parameters(quote);
            }
            match req.await {
                Ok(message) => last = Some(i64::from(message.id.0)),
                Err(error) => return Err(self.failure(chat, error)),
            }
        }
        last.ok_or_else(|| SendError::Permanent("nothing to send".into()))
    }

    fn failure(&self, chat: i64, error: RequestError) -> SendError {
        match error {
            RequestError::RetryAfter(secs) => {
                let after = secs.duration();
                self.hold(chat, after);
                SendError::Retry { reason: "429 Too Many Requests".into(), after: Some(after) }
            }
            RequestError::Network(e) => {
                SendError::Retry { reason: format!("network: {e}"), after: None }
            }
            RequestError::InvalidJson { .. } => SendError::Retry {
                reason: "the Bot API answered something that is not its JSON".into(),
                after: None,
            },
            RequestError::Io(e) => SendError::Retry { reason: format!("io: {e}"), after: None },
            RequestError::MigrateToChatId(to) => {
                SendError::Permanent(format!("the group became supergroup {to}"))
            }
            // An unknown description may be a passing server problem; known ones (blocked,
            // chat not found, …) will not change by trying again.
            RequestError::Api(ApiError::Unknown(e)) => {
                SendError::Retry { reason: format!("Bot API: {e}"), after: None }
            }
            RequestError::Api(e) => match undeliverable(&e) {
                Some(reason) => SendError::Undeliverable(reason),
                None => SendError::Permanent(format!("Bot API: {e}")),
            },
        }
    }

    /// Delivers one outbox row; the provider id is `"{chat}:{message_id}"` of what went
    /// out, so a resident's reply to it threads into the ticket.
    pub(crate) async fn send_item(&self, item: &OutboxItem) -> Result<Option<String>, SendError> {
        let (chat, reply_to) = target(item).map_err(SendError::Permanent)?;
        let id = self.send_text(chat, reply_to, &item.text).await?;
        Ok(Some(message_ref(chat, id)))
    }
}

// --- windows: Bot API answers that mean "not deliverable to this resident" ---

/// The Bot API errors that say the resident can't be reached on Telegram (403 "bot was
/// blocked by the user", a deactivated user, a chat the bot may not start or that does not
/// exist): the outbound worker then tries their other identities.
pub(crate) fn undeliverable(e: &ApiError) -> Option<aduan_core::UndeliverableReason> {
    use aduan_core::UndeliverableReason as R;
    Some(match e {
        ApiError::BotBlocked | ApiError::BotKicked | ApiError::BotKickedFromSupergroup => {
            R::Blocked
        }
        ApiError::UserDeactivated
        | ApiError::CantInitiateConversation
        | ApiError::CantTalkWithBots => R::NotOnChannel,
        ApiError::ChatNotFound | ApiError::UserNotFound => R::RecipientInvalid,
        _ => return None,
    })
}

#[cfg(test)]
mod undeliverable_tests {
    use super::*;
    use aduan_core::UndeliverableReason as R;

    #[test]
    fn forbidden_answers_are_reasons_not_blind_failures() {
        // As teloxide parses the Bot API's 403 and 400 descriptions.
        let parse = |d: &str| serde_json::from_value::<ApiError>(serde_json::json!(d)).unwrap();
        assert_eq!(
            undeliverable(&parse("Forbidden: bot was blocked by the user")),
            Some(R::Blocked)
        );
        assert_eq!(undeliverable(&parse("Forbidden: user is deactivated")), Some(R::NotOnChannel));
        assert_eq!(undeliverable(&parse("Bad Request: chat not found")), Some(R::RecipientInvalid));
        assert_eq!(undeliverable(&parse("Bad Request: message text is empty")), None);
    }
}
