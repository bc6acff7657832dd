//! Officials answering by email: which mails are an OPD's answer to a ticket.
//!
//! The routing worker mails a routed ticket to its OPD's officials (see
//! [`crate::compose::Notification`]); they answer by replying. A reply from an address the
//! OPD registry lists is the OPD's answer: the poller records it with `Store::relay_reply`,
//! which queues it to the resident and stops the first-response clock. A reply to a
//! notification from anyone else, or from an official of another OPD, is kept on the ticket
//! for an operator to read and never relayed.

use std::collections::BTreeMap;

use aduan_core::TicketCode;

use crate::parse::ParsedMail;

/// The officials' addresses of the OPD registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Officials {
    /// Lower-case address → the OPD codes listing it.
    by_address: BTreeMap<String, Vec<String>>,
}

impl Officials {
    /// From `(OPD code, address)` pairs.
    pub fn new<I, S, T>(entries: I) -> Officials
    where
        I: IntoIterator<Item = (S, T)>,
        S: Into<String>,
        T: AsRef<str>,
    {
        let mut by_address: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (opd, address) in entries {
            let opds = by_address.entry(address.as_ref().trim().to_lowercase()).or_default();
            let opd = opd.into();
            if !opds.contains(&opd) {
                opds.push(opd);
            }
        }
        Officials { by_address }
    }

    /// The OPDs an address answers for.
    pub fn opds_of(&self, address: &str) -> Option<&[String]> {
        self.by_address.get(&address.trim().to_lowercase()).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }
}

/// What to do with a parsed mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Store it as it is: a resident's message (or automated mail).
    Intake,
    /// A listed official's reply about a ticket: relay it as the OPD's answer when the
    /// ticket is assigned to one of `opds`, else keep it as a note.
    Official {
        /// The official's address (lower case), the actor of the answer.
        official: String,
        opds: Vec<String>,
        /// The ticket the mail names (subject tag, plus-address or a quoted code); without
        /// one, the poller asks the store which ticket its references belong to.
        ticket: Option<TicketCode>,
    },
    /// A reply to an OPD notification from an address the registry does not list: kept on
    /// the ticket for an operator, never relayed, never the resident's address.
    Note,
}

/// Whether a subject is a reply to one of our OPD notifications
/// (`Re: [ADU-…] Aduan untuk DPU: …`).
pub fn answers_notification(subject: &str) -> bool {
    let bare = crate::text::bare_subject(subject);
    crate::text::is_reply_subject(subject)
        && bare.starts_with("[ADU-")
        && bare.get(14..).is_some_and(|rest| rest.starts_with(" Aduan untuk "))
}

/// Decides where a mail goes. Automated mail is always plain intake.
pub fn route(mail: &ParsedMail, officials: &Officials) -> Route {
    if mail.automated.is_some() {
        return Route::Intake;
    }
    let ticket = mail
        .message
        .thread
        .ticket
        .or_else(|| TicketCode::find_all(&mail.message.text).into_iter().next());
    let names_a_ticket = ticket.is_some() || !mail.message.thread.references.is_empty();
    if let Some(from) = &mail.from
        && let Some(opds) = officials.opds_of(&from.value)
        && names_a_ticket
    {
        return Route::Official { official: from.value.clone(), opds: opds.to_vec(), ticket };
    }
    if answers_notification(&mail.subject) {
        return Route::Note;
    }
    Route::Intake
}

/// Makes a mail a note: it keeps its place in the thread but has no sender identity (so it
/// is never answered and never becomes the address answers go to) and opens nothing.
pub fn into_note(mut mail: ParsedMail) -> ParsedMail {
    if mail.message.sender.display_name.is_none() {
        mail.message.sender.display_name = mail.from.as_ref().map(|f| f.value.clone());
    }
    mail.message.sender.identity = None;
    mail.message.sender.contacts.clear();
    mail.message.thread.automated = true;
    mail.message.text = format!("{NOTE_PREFIX}\n{}", mail.message.text);
    mail
}

/// The first line of a note, so operators see it was not relayed.
pub const NOTE_PREFIX: &str = "[Catatan internal: balasan ini tidak diteruskan ke pelapor]";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_mail};

    fn officials() -> Officials {
        Officials::new([
            ("DPU", "Kepala.DPU@example.go.id"),
            ("DLH", "kepala.dlh@example.go.id"),
            ("BPBD", "kepala.dpu@example.go.id"),
        ])
    }

    fn mail(from: &str, subject: &str, extra: &str, body: &str) -> ParsedMail {
        let raw = format!(
            "From: {from}\r\nSubject: {subject}\r\nMessage-ID: <m@x>\r\n{extra}\r\n{body}\r\n"
        );
        let opts = ParseOptions { own_id_domain: "aduan.test".into(), ..ParseOptions::default() };
        parse_mail(raw.as_bytes(), &opts).unwrap()
    }

    #[test]
    fn the_registry_is_case_blind_and_lists_every_opd_of_an_address() {
        let o = officials();
        assert_eq!(o.len(), 2);
        assert_eq!(
            o.opds_of("KEPALA.dpu@example.go.id"),
            Some(&["DPU".to_owned(), "BPBD".to_owned()][..])
        );
        assert_eq!(o.opds_of("siti@example.id"), None);
    }

    #[test]
    fn an_officials_reply_about_a_ticket_is_an_answer() {
        let m = mail(
            "kepala.dlh@example.go.id",
            "Re: [ADU-7K3M9QXP] Aduan untuk DLH: Sampah",
            "",
            "Sudah diangkut.",
        );
        assert_eq!(
            route(&m, &officials()),
            Route::Official {
                official: "kepala.dlh@example.go.id".into(),
                opds: vec!["DLH".into()],
                ticket: Some("ADU-7K3M9QXP".parse().unwrap()),
            }
        );
        // Threaded by headers only: the poller asks the store for the ticket.
        let m = mail(
            "kepala.dlh@example.go.id",
            "Re: sampah",
            "In-Reply-To: <aduan.x@aduan.test>\r\n",
            "Sudah.",
        );
        assert!(matches!(route(&m, &officials()), Route::Official { ticket: None, .. }));
    }

    #[test]
    fn an_official_writing_about_nothing_known_is_a_resident() {
        let m = mail("kepala.dlh@example.go.id", "Lampu mati di rumah saya", "", "Tolong.");
        assert_eq!(route(&m, &officials()), Route::Intake);
    }

    #[test]
    fn strangers_answering_a_notification_write_notes() {
        let m = mail(
            "staf@example.go.id",
            "Re: [ADU-7K3M9QXP] Aduan untuk DLH: Sampah",
            "",
            "Saya cek.",
        );
        assert_eq!(route(&m, &officials()), Route::Note);
        let note = into_note(m);
        assert_eq!(note.message.sender.identity, None);
        assert!(note.message.thread.automated);
        assert_eq!(note.message.sender.display_name.as_deref(), Some("staf@example.go.id"));
        assert!(note.message.text.starts_with(NOTE_PREFIX));
        // A resident answering our receipt is a resident.
        let m = mail(
            "siti@example.id",
            "Re: [ADU-7K3M9QXP] Aduan Anda sudah kami terima",
            "",
            "Masih.",
        );
        assert_eq!(route(&m, &officials()), Route::Intake);
    }

    #[test]
    fn automated_mail_from_an_official_is_never_an_answer() {
        let m = mail(
            "kepala.dlh@example.go.id",
            "Re: [ADU-7K3M9QXP] Aduan untuk DLH",
            "Auto-Submitted: auto-replied\r\n",
            "Saya cuti.",
        );
        assert_eq!(route(&m, &officials()), Route::Intake);
    }
}
