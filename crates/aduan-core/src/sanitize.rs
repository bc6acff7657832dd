//! The one sanitiser for outside text on its way into the store.
//!
//! Every text a resident, a provider or a person typed (message text, sender names,
//! attachment names, provider ids, identity answers, operators' notes) passes through
//! [`clean_text`] at the store boundary, whatever channel it came from: PostgreSQL refuses
//! `\0` in a `TEXT` column (one NUL used to fail a whole batch, and the client or poller
//! retried it forever), and the other control characters only hide text from the people
//! who read it. Line breaks and tabs stay; `\r\n` and a lone `\r` become `\n`.

use std::borrow::Cow;

use crate::{AttachmentRef, InboundMessage};

/// Whether `c` is dropped: C0 and C1 control characters other than `\n` and `\t` (and `\r`,
/// which [`clean_text`] turns into `\n`), and DEL.
fn is_dropped(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\t' | '\r')
}

/// `text` without NUL and other control characters, with `\r\n` and `\r` normalised to
/// `\n`. Borrows when there is nothing to change.
pub fn clean_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\r' || is_dropped(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else if !is_dropped(c) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Cleans `text` in place (see [`clean_text`]).
pub fn clean_in_place(text: &mut String) {
    if let Cow::Owned(clean) = clean_text(text) {
        *text = clean;
    }
}

/// A one-line text (a name, a file name, a provider id): [`clean_text`], then line breaks and
/// tabs become spaces.
pub fn clean_line(text: &str) -> String {
    clean_text(text).chars().map(|c| if matches!(c, '\n' | '\t') { ' ' } else { c }).collect()
}

fn clean_line_in_place(text: &mut String) {
    if text.chars().any(|c| c.is_control()) {
        *text = clean_line(text);
    }
}

fn clean_attachment(a: &mut AttachmentRef) {
    if let Some(name) = &mut a.filename {
        clean_line_in_place(name);
    }
    clean_line_in_place(&mut a.content_type);
    clean_line_in_place(&mut a.sha256);
    if let Some(r) = &mut a.provider_ref {
        clean_line_in_place(r);
    }
}

/// Cleans every outside text of a message: its text, the sender's name, the provider id,
/// the thread references and the attachments' names. Identities are validated when they
/// are made and are left alone.
pub fn clean_message(msg: &mut InboundMessage) {
    clean_in_place(&mut msg.text);
    clean_line_in_place(&mut msg.provider_id);
    if let Some(name) = &mut msg.sender.display_name {
        clean_line_in_place(name);
    }
    for r in &mut msg.thread.references {
        clean_line_in_place(r);
    }
    if let Some(r) = &mut msg.thread.revision_of {
        clean_line_in_place(r);
    }
    for a in &mut msg.attachments {
        clean_attachment(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_control_characters_go_line_breaks_stay() {
        assert_eq!(clean_text("a\u{0}b"), "ab");
        assert_eq!(clean_text("a\u{1b}[31mb\u{7f}\u{85}c\u{9f}"), "a[31mbc");
        assert_eq!(
            clean_text("baris 1\r\nbaris 2\rbaris 3\n\tx"),
            "baris 1\nbaris 2\nbaris 3\n\tx"
        );
        assert!(matches!(clean_text("Jalan rusak, Purwokerto 🙏"), Cow::Borrowed(_)));
        assert_eq!(clean_line("Siti\u{0}\nAminah\t"), "Siti Aminah ");
    }

    #[test]
    fn a_message_is_cleaned_everywhere() {
        let mut msg = InboundMessage {
            channel: crate::Channel::Web,
            provider_id: "x\u{0}1".into(),
            sender: crate::Sender {
                identity: None,
                display_name: Some("Bu\u{0}di".into()),
                contacts: vec![],
            },
            text: "a\u{0}b".into(),
            attachments: vec![AttachmentRef {
                filename: Some("foto\u{0}.jpg".into()),
                content_type: "image/jpeg".into(),
                size: 1,
                sha256: String::new(),
                provider_ref: None,
            }],
            location: None,
            received_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            thread: crate::ThreadHints::default(),
        };
        clean_message(&mut msg);
        assert_eq!(msg.text, "ab");
        assert_eq!(msg.provider_id, "x1");
        assert_eq!(msg.sender.display_name.as_deref(), Some("Budi"));
        assert_eq!(msg.attachments[0].filename.as_deref(), Some("foto.jpg"));
    }
}
