//! Message-IDs: what makes one usable, the prefix of ours, and the thread references of a
//! mail. Shared by parsing, classification and composing (so none of them imports
//! another for it).

use mail_parser::{HeaderValue, Message};

/// The local part prefix of the Message-IDs we generate (`aduan.<code>.<random>@domain`).
pub const OWN_ID_PREFIX: &str = "aduan.";

/// Whether `id` is usable as a provider id or in a `References` header.
pub(crate) fn valid_id(id: &str) -> bool {
    (3..=250).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

/// The ids of a header that mail-parser read as a list of message ids.
fn ids_of(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        HeaderValue::Text(t) => vec![t.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.as_ref()).collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(|id| id.trim().trim_matches(['<', '>']).trim().to_owned())
        .filter(|id| valid_id(id))
        .collect()
}

/// `In-Reply-To` first, then `References` from the parent backwards, without repeats.
pub(crate) fn thread_references(msg: &Message<'_>) -> Vec<String> {
    let mut older = ids_of(msg.references());
    older.reverse();
    let mut refs: Vec<String> = Vec::new();
    for id in ids_of(msg.in_reply_to()).into_iter().chain(older) {
        if !refs.contains(&id) {
            refs.push(id);
        }
    }
    refs.truncate(50);
    refs
}
