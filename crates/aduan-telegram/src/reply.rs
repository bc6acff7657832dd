//! What the bot writes, and where. Pure: texts (Indonesian, for residents) and the target
//! chat of an outbox row.

use aduan_core::time::display_offset;
use aduan_core::{IdentityKind, TicketCode};
use aduan_store::{OutboxItem, TicketView};
use chrono::{DateTime, Utc};

use crate::update::parse_message_ref;

/// Telegram's limit for one `sendMessage` text.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The answer to `/start`.
pub const START_TEXT: &str = "Halo! Ini layanan pengaduan masyarakat.\n\n\
Tulis aduan Anda langsung di sini: apa masalahnya dan di mana tempatnya. Anda juga bisa \
mengirim foto, dokumen, dan lokasi (📎 → Lokasi).\n\n\
Setiap aduan mendapat kode pelacakan, misalnya ADU-7K3M9QXP. Untuk melihat perkembangan \
aduan, kirim: CEK diikuti kodenya, misalnya CEK ADU-7K3M9QXP.";

/// The answer to `CEK` without a code.
pub const STATUS_HELP_TEXT: &str = "Untuk melihat perkembangan aduan, kirim: CEK diikuti \
kode aduan Anda, misalnya CEK ADU-7K3M9QXP. Kodenya ada di pesan tanda terima kami.";

/// The answer when the store can't be read right now.
pub const STATUS_UNAVAILABLE_TEXT: &str =
    "Maaf, status aduan belum dapat ditampilkan. Silakan coba lagi beberapa saat lagi.";

pub fn not_found_text(code: TicketCode) -> String {
    format!(
        "Aduan dengan kode {code} tidak ditemukan. Periksa kembali kode pada pesan tanda terima."
    )
}

/// A time as residents read it: `29-11-2026 21.00 WIB`.
pub fn local_time(t: &DateTime<Utc>) -> String {
    let offset = display_offset();
    let zone = match offset.local_minus_utc() {
        25_200 => "WIB".to_owned(),
        28_800 => "WITA".to_owned(),
        32_400 => "WIT".to_owned(),
        _ => format!("UTC{offset}"),
    };
    format!("{} {zone}", t.with_timezone(&offset).format("%d-%m-%Y %H.%M"))
}

/// The status answer: status label, OPD, deadline. Nothing personal: no names, no message
/// text. `asked` is the code the resident sent; `view` is that ticket, or the ticket it was
/// merged into.
pub fn status_text(asked: TicketCode, view: &TicketView) -> String {
    let t = &view.summary;
    let mut lines = Vec::new();
    if t.code != asked {
        lines.push(format!("Aduan {asked} sudah digabung ke aduan {}.", t.code));
    }
    lines.push(format!("Status aduan {}: {}.", t.code, t.status.label_id()));
    lines.push(match &t.opd {
        Some(opd) => format!("Ditangani oleh: {opd}."),
        None => "Ditangani oleh: belum ditentukan.".to_owned(),
    });
    if let Some(at) = &t.resolved_at {
        lines.push(format!("Selesai pada {}.", local_time(at)));
    } else if let Some(at) = &t.first_responded_at {
        lines.push(format!("Sudah ditanggapi pada {}.", local_time(at)));
    } else if t.status.is_open() {
        let late = if t.overdue { " (sudah lewat)" } else { "" };
        lines.push(format!(
            "Batas waktu tanggapan: {}{late}.",
            local_time(&t.first_response_due_at)
        ));
    }
    lines.join("\n")
}

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
