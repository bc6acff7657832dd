//! Bot API `Update` JSON → what aduan does with it. Pure: bytes in, a decision out.
//!
//! Updates are read with small structs of our own rather than teloxide's `Update`: teloxide
//! turns a `message` it can't deserialize into an empty `UpdateKind::Error`, and a
//! complaint must never vanish that way. Only the fields aduan uses are read; everything
//! else is ignored, so new Bot API fields never break intake.
//!
//! Ids: a message is `"{chat_id}:{message_id}"` (unique per chat forever, the same whether
//! it arrives by webhook or by polling, and unlike `update_id` never reused after Telegram
//! re-seeds its update counter). An edit is `"{chat_id}:{message_id}@{edit_date}"`, a
//! revision of `"{chat_id}:{message_id}"`. What we send is recorded under the same scheme,
//! so a resident's reply to our receipt threads into the ticket.

use aduan_core::{
    AttachmentRef, Channel, Identity, IdentityKind, InboundMessage, Location, Sender, ThreadHints,
    TicketCode,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// What the channel accepts besides private chats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Take messages from groups and supergroups too (answers go to the group).
    pub allow_groups: bool,
}

/// One update, decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub update_id: i64,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A resident's message: store it (intake).
    Store(Box<InboundMessage>),
    /// A command answered at once and not stored.
    Command(Command),
    /// Nothing for aduan (a channel post, a bot, a sticker, a live-location tick…).
    Ignore(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/start` (and `/help`, or any unknown command in a private chat): the greeting.
    Start { chat_id: i64 },
    /// `/cek ADU-…` or plain `CEK ADU-…`: the ticket's status. `code` is `None` when the
    /// resident gave none (they are told how to ask).
    Status { chat_id: i64, message_id: i64, code: Option<TicketCode> },
}

impl Command {
    pub fn chat_id(&self) -> i64 {
        match self {
            Command::Start { chat_id } | Command::Status { chat_id, .. } => *chat_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all (a webhook answers 400).
    #[error("the body is not JSON: {0}")]
    Json(String),
    /// JSON, but not an update we can read (a webhook answers 422).
    #[error("not a Telegram update: {0}")]
    NotAnUpdate(String),
}

#[derive(Deserialize)]
struct RawUpdate {
    update_id: i64,
    message: Option<RawMessage>,
    edited_message: Option<RawMessage>,
}

#[derive(Deserialize)]
struct RawMessage {
    message_id: i64,
    #[serde(default)]
    date: i64,
    edit_date: Option<i64>,
    chat: RawChat,
    from: Option<RawUser>,
    text: Option<String>,
    caption: Option<String>,
    photo: Option<Vec<RawPhoto>>,
    document: Option<RawFile>,
    voice: Option<RawFile>,
    audio: Option<RawFile>,
    video: Option<RawFile>,
    video_note: Option<RawFile>,
    location: Option<RawLocation>,
    venue: Option<RawVenue>,
    contact: Option<RawContact>,
    reply_to_message: Option<RawReplied>,
}

#[derive(Deserialize)]
struct RawChat {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct RawUser {
    id: i64,
    #[serde(default)]
    is_bot: bool,
    #[serde(default)]
    first_name: String,
    last_name: Option<String>,
}

#[derive(Deserialize)]
struct RawPhoto {
    file_id: String,
    file_size: Option<u64>,
    #[serde(default)]
    width: u64,
    #[serde(default)]
    height: u64,
}

#[derive(Deserialize)]
struct RawFile {
    file_id: String,
    file_name: Option<String>,
    mime_type: Option<String>,
    file_size: Option<u64>,
}

#[derive(Deserialize)]
struct RawLocation {
    latitude: f64,
    longitude: f64,
    live_period: Option<i64>,
}

#[derive(Deserialize)]
struct RawVenue {
    location: RawLocation,
    #[serde(default)]
    title: String,
    #[serde(default)]
    address: String,
}

#[derive(Deserialize)]
struct RawContact {
    phone_number: String,
    user_id: Option<i64>,
}

#[derive(Deserialize)]
struct RawReplied {
    message_id: i64,
}

/// The provider id of message `message_id` in chat `chat_id`.
pub fn message_ref(chat_id: i64, message_id: i64) -> String {
    format!("{chat_id}:{message_id}")
}

/// Reads a provider id back: `(chat_id, message_id)`; an edit suffix is ignored.
pub fn parse_message_ref(id: &str) -> Option<(i64, i64)> {
    let (chat, rest) = id.split_once(':')?;
    let message = rest.split('@').next()?;
    Some((chat.parse().ok()?, message.parse().ok()?))
}

/// Parses a webhook body or one element of a `getUpdates` answer.
pub fn parse_update(body: &[u8], opts: ParseOptions) -> Result<Parsed, ParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    parse_value(value, opts)
}

/// Like [`parse_update`], for JSON already read (`getUpdates` results).
pub fn parse_value(value: serde_json::Value, opts: ParseOptions) -> Result<Parsed, ParseError> {
    let raw: RawUpdate =
        serde_json::from_value(value).map_err(|e| ParseError::NotAnUpdate(e.to_string()))?;
    let action = match (raw.message, raw.edited_message) {
        (Some(m), _) => message_action(m, false, opts),
        (None, Some(m)) => message_action(m, true, opts),
        (None, None) => Action::Ignore("an update kind aduan does not take"),
    };
    Ok(Parsed { update_id: raw.update_id, action })
}

/// The `update_id` of a raw update, when it has one (to move the offset past updates that
/// can't be read).
pub fn update_id_of(value: &serde_json::Value) -> Option<i64> {
    value.get("update_id")?.as_i64()
}

fn message_action(m: RawMessage, edited: bool, opts: ParseOptions) -> Action {
    let private = m.chat.kind == "private";
    let group = matches!(m.chat.kind.as_str(), "group" | "supergroup");
    if !(private || (group && opts.allow_groups)) {
        return Action::Ignore("not a private chat");
    }
    let (user_id, display_name) = match &m.from {
        Some(u) if u.is_bot => return Action::Ignore("sent by a bot"),
        Some(u) => {
            let name = match &u.last_name {
                Some(last) if !last.is_empty() => format!("{} {last}", u.first_name),
                _ => u.first_name.clone(),
            };
            (u.id, Some(name.trim().to_owned()).filter(|n| !n.is_empty()))
        }
        // Private chats are the user's own; their id is the chat's.
        None if private => (m.chat.id, None),
        None => return Action::Ignore("no sender"),
    };

    let mut text = m.text.or(m.caption).unwrap_or_default();
    if let Some(command) = command(&text, m.chat.id, m.message_id, private) {
        return if edited { Action::Ignore("an edited command") } else { Action::Command(command) };
    }
    if text.trim_start().starts_with('/') && !private {
        return Action::Ignore("a command for another bot");
    }
    if edited && m.location.as_ref().is_some_and(|l| l.live_period.is_some()) {
        return Action::Ignore("a live-location update");
    }

    let mut attachments = Vec::new();
    if let Some(largest) = m.photo.as_deref().and_then(|sizes| {
        sizes.iter().max_by_key(|p| (p.width.saturating_mul(p.height), p.file_size.unwrap_or(0)))
    }) {
        attachments.push(AttachmentRef {
            filename: None,
            content_type: "image/jpeg".into(),
            size: largest.file_size.unwrap_or(0),
            sha256: String::new(),
            provider_ref: Some(largest.file_id.clone()),
        });
    }
    for (file, default_type) in [
        (&m.document, "application/octet-stream"),
        (&m.voice, "audio/ogg"),
        (&m.audio, "audio/mpeg"),
        (&m.video, "video/mp4"),
        (&m.video_note, "video/mp4"),
    ] {
        if let Some(f) = file {
            attachments.push(AttachmentRef {
                filename: f.file_name.clone(),
                content_type: f.mime_type.clone().unwrap_or_else(|| default_type.to_owned()),
                size: f.file_size.unwrap_or(0),
                sha256: String::new(),
                provider_ref: Some(f.file_id.clone()),
            });
        }
    }

    let place = m.venue.as_ref().map(|v| &v.location).or(m.location.as_ref());
    let location = place.and_then(|l| Location::new(l.latitude, l.longitude).ok());
    if let Some(v) = &m.venue
        && text.is_empty()
    {
        text = [v.title.trim(), v.address.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
    }

    // A contact the resident shares of themselves: their phone joins their identity. A
    // third person's contact is not taken.
    let mut contacts = Vec::new();
    if let Some(c) = &m.contact
        && c.user_id == Some(user_id)
        && let Ok(phone) = Identity::phone(&c.phone_number)
    {
        contacts.push(phone);
    }
    let contact_only =
        !contacts.is_empty() && text.is_empty() && attachments.is_empty() && location.is_none();
    if text.trim().is_empty() && attachments.is_empty() && location.is_none() && contacts.is_empty()
    {
        return Action::Ignore("nothing aduan keeps (sticker, service message, …)");
    }

    let Ok(identity) = Identity::new(IdentityKind::Telegram, &user_id.to_string()) else {
        return Action::Ignore("no usable sender id");
    };
    let original = message_ref(m.chat.id, m.message_id);
    let at = if edited { m.edit_date.unwrap_or(m.date) } else { m.date };
    let mut references = Vec::new();
    if let Some(r) = &m.reply_to_message {
        references.push(message_ref(m.chat.id, r.message_id));
    }
    let (provider_id, revision_of) = if edited {
        references.push(original.clone());
        (format!("{original}@{at}"), Some(original))
    } else {
        (original, None)
    };
    Action::Store(Box::new(InboundMessage {
        channel: Channel::Telegram,
        provider_id,
        sender: Sender { identity: Some(identity), display_name, contacts },
        text,
        attachments,
        location,
        received_at: DateTime::<Utc>::from_timestamp(at, 0).unwrap_or(DateTime::UNIX_EPOCH),
        thread: ThreadHints {
            references,
            // Sharing one's number (usually asked for) adds to a conversation; alone it
            // never opens a ticket.
            automated: contact_only,
            revision_of,
            ..ThreadHints::default()
        },
    }))
}

/// `/start`, `/help`, `/cek [code]`, or plain `CEK <code>` (as the receipt tells residents
/// to write). A sentence that merely starts with "cek" is a complaint, not a command.
fn command(text: &str, chat_id: i64, message_id: i64, private: bool) -> Option<Command> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('/') {
        let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let name = word.split('@').next().unwrap_or(word).to_lowercase();
        return match name.as_str() {
            "start" | "help" | "bantuan" => Some(Command::Start { chat_id }),
            "cek" | "status" => Some(Command::Status {
                chat_id,
                message_id,
                code: TicketCode::find_all(args).first().copied(),
            }),
            // In a group, other commands are meant for other bots.
            _ if private => Some(Command::Start { chat_id }),
            _ => None,
        };
    }
    let mut words = t.split_whitespace();
    if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("cek")) {
        return None;
    }
    match (words.next(), words.next()) {
        (None, _) => Some(Command::Status { chat_id, message_id, code: None }),
        (Some(token), None) => {
            let token = token.trim_matches(|c: char| !c.is_alphanumeric() && c != '-');
            let code = token.parse::<TicketCode>().ok()?;
            Some(Command::Status { chat_id, message_id, code: Some(code) })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, allow_groups: bool) -> Action {
        parse_update(json.as_bytes(), ParseOptions { allow_groups }).unwrap().action
    }

    fn private(body: &str) -> String {
        format!(
            r#"{{"update_id":7,"message":{{"message_id":5,"date":1700000000,
            "chat":{{"id":42,"type":"private","first_name":"Siti"}},
            "from":{{"id":42,"is_bot":false,"first_name":"Siti"}},{body}}}}}"#
        )
    }

    #[test]
    fn commands_are_told_from_complaints() {
        let code: TicketCode = "ADU-7K3M9QXP".parse().unwrap();
        let status = |code| Action::Command(Command::Status { chat_id: 42, message_id: 5, code });
        assert_eq!(
            parse(&private(r#""text":"/start""#), false),
            Action::Command(Command::Start { chat_id: 42 })
        );
        assert_eq!(parse(&private(r#""text":"/cek ADU-7K3M9QXP""#), false), status(Some(code)));
        assert_eq!(
            parse(&private(r#""text":"/cek@AduanBot adu-7k3m9qxp""#), false),
            status(Some(code))
        );
        assert_eq!(parse(&private(r#""text":"CEK ADU-7K3M9QXP""#), false), status(Some(code)));
        assert_eq!(parse(&private(r#""text":"cek  adu7k3m9qxp.""#), false), status(Some(code)));
        assert_eq!(parse(&private(r#""text":"Cek""#), false), status(None));
        assert_eq!(parse(&private(r#""text":"/cek""#), false), status(None));
        for complaint in ["cek jalan rusak di Karangklesem", "Jalan rusak, kode ADU-7K3M9QXP"] {
            let json = private(&format!(r#""text":"{complaint}""#));
            assert!(matches!(parse(&json, false), Action::Store(_)), "{complaint}");
        }
    }

    #[test]
    fn a_shared_own_contact_joins_the_identity_without_opening_a_ticket() {
        let own = private(
            r#""contact":{"phone_number":"6281234567890","first_name":"Siti","user_id":42}"#,
        );
        let Action::Store(m) = parse(&own, false) else { panic!("not stored") };
        assert_eq!(m.sender.contacts, vec![Identity::phone("+6281234567890").unwrap()]);
        assert!(m.thread.automated, "a contact alone must not open a ticket");

        let other = private(
            r#""contact":{"phone_number":"6281200000000","first_name":"Budi","user_id":99}"#,
        );
        assert!(matches!(parse(&other, false), Action::Ignore(_)));
    }

    #[test]
    fn edits_of_live_locations_and_commands_are_not_revisions() {
        let live = r#"{"update_id":8,"edited_message":{"message_id":5,"date":1,"edit_date":2,
            "chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"S"},
            "location":{"latitude":-7.4,"longitude":109.2,"live_period":900}}}"#;
        assert_eq!(parse(live, false), Action::Ignore("a live-location update"));
        let cmd = live.replace(
            r#""location":{"latitude":-7.4,"longitude":109.2,"live_period":900}"#,
            r#""text":"/start""#,
        );
        assert_eq!(parse(&cmd, false), Action::Ignore("an edited command"));
    }

    #[test]
    fn message_refs_round_trip() {
        assert_eq!(
            parse_message_ref(&message_ref(-1001293752024, 134546)),
            Some((-1001293752024, 134546))
        );
        assert_eq!(parse_message_ref("42:5@1441646600"), Some((42, 5)));
        assert_eq!(parse_message_ref("garbage"), None);
    }

    #[test]
    fn damaged_bodies_are_errors_not_panics() {
        let opts = ParseOptions::default();
        assert!(matches!(parse_update(b"{", opts), Err(ParseError::Json(_))));
        assert!(matches!(parse_update(b"[]", opts), Err(ParseError::NotAnUpdate(_))));
        assert!(matches!(
            parse_update(br#"{"update_id":"x"}"#, opts),
            Err(ParseError::NotAnUpdate(_))
        ));
        assert!(matches!(
            parse_update(br#"{"update_id":1,"message":{"chat":{}}}"#, opts),
            Err(ParseError::NotAnUpdate(_))
        ));
    }
}
