//! What the bot writes, and where. Pure: the fixed answers (their words are in
//! [`aduan_core::texts`], like every resident-facing text) and the target chat of an outbox
//! row.

use aduan_core::IdentityKind;
use aduan_core::texts;
use aduan_store::OutboxItem;

use crate::update::parse_message_ref;

/// Telegram's limit for one `sendMessage` text.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The answer to `/start`: [`texts::BOT_START`].
pub const START_TEXT: &str = texts::BOT_START;

/// The answer to `CEK` without a code: [`texts::STATUS_HELP`].
pub const STATUS_HELP_TEXT: &str = texts::STATUS_HELP;

/// The answer when the store can't be read right now: [`texts::STATUS_UNAVAILABLE`].
pub const STATUS_UNAVAILABLE_TEXT: &str = texts::STATUS_UNAVAILABLE;

/// Where an outbox row goes: the chat of the ticket's newest Telegram message (the resident
/// is answered where they last wrote), else the resident's private chat. The second value
/// is the message to reply to, set in groups so the answer quotes what it answers.
pub fn target(item: &OutboxItem) -> Result<(i64, Option<i64>), String> {
    if item.recipient.kind != IdentityKind::Telegram {
        return Err(format!("recipient kind {} is not a Telegram user", item.recipient.kind));
    }
    let user: Option<i64> = item.recipient.value.parse().ok();
    match item.thread_refs.iter().find_map(|r| parse_message_ref(r)) {
        Some((chat, _)) if Some(chat) == user => Ok((chat, None)),
        Some((chat, message)) => Ok((chat, Some(message))),
        None => user
            .map(|u| (u, None))
            .ok_or_else(|| format!("{:?} is not a Telegram chat id", item.recipient.value)),
    }
}

/// Splits a text into parts Telegram accepts, at line breaks or spaces where possible.
pub fn split_text(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > MAX_TEXT_CHARS {
        let window = &rest[..MAX_TEXT_CHARS];
        let cut = window
            .iter()
            .rposition(|c| *c == '\n')
            .or_else(|| window.iter().rposition(|c| c.is_whitespace()))
            .filter(|i| *i > MAX_TEXT_CHARS / 2)
            .map_or(MAX_TEXT_CHARS, |i| i + 1);
        parts.push(rest[..cut].iter().collect::<String>().trim_end().to_owned());
        rest.drain(..cut);
    }
    let last: String = rest.into_iter().collect();
    if !last.trim().is_empty() || parts.is_empty() {
        parts.push(last);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use aduan_core::{Channel, Identity, Purpose};

    fn item(recipient: &str, refs: &[&str]) -> OutboxItem {
        OutboxItem {
            id: 1,
            ticket: "ADU-7K3M9QXP".parse().unwrap(),
            channel: Channel::Telegram,
            recipient: Identity::new(IdentityKind::Telegram, recipient).unwrap(),
            text: "x".into(),
            purpose: Purpose::Ack,
            attempts: 1,
            thread_refs: refs.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn answers_go_to_the_chat_the_resident_last_wrote_in() {
        assert_eq!(target(&item("42", &["42:9", "42:5"])), Ok((42, None)));
        assert_eq!(target(&item("42", &[])), Ok((42, None)));
        assert_eq!(target(&item("42", &["-100777:31@5", "42:5"])), Ok((-100777, Some(31))));
        let mut email = item("42", &[]);
        email.recipient = Identity::email("siti@example.id").unwrap();
        assert!(target(&email).is_err());
    }

    #[test]
    fn long_texts_are_split_at_spaces() {
        let text = "kata ".repeat(2000).trim_end().to_owned();
        let parts = split_text(&text);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_TEXT_CHARS && p.ends_with("kata")));
        assert_eq!(split_text("pendek"), vec!["pendek".to_owned()]);
    }
}
