//! Officials answering by email: which mails are an OPD's answer to a ticket.
//!
//! The routing worker mails a routed ticket to its OPD's officials (an outbox row written
//! with `aduan_routing::notify`); they answer by replying. A reply from an address the
//! OPD registry lists is the OPD's answer only when it is also authenticated
//! ([`verify_answer`]): it went to the `Reply-To` of one of our mails to that official (or
//! OPD) about that ticket, whose plus-part carries the reply token (see [`crate::token`]),
//! and, when `trusted_authserv_id` is set, our MTA's `Authentication-Results` show a DMARC,
//! DKIM or SPF pass for the From domain. Then the poller records it with
//! `Store::relay_reply`, which queues it to the resident and stops the first-response
//! clock. A reply to a notification from anyone else, from an official of another OPD, or
//! from an official's address without a valid token, is kept on the ticket as a note for an
//! operator to read (an unverified one says so) and never relayed.

use std::collections::BTreeMap;

use aduan_core::TicketCode;

use crate::parse::ParsedMail;
use crate::token::{Recipient, ReplyKey};

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

/// The second line of a note from an official's address that could not be verified.
pub const UNVERIFIED_PREFIX: &str = "[Tidak terverifikasi: email ini memakai alamat pejabat OPD, \
     tetapi tidak membalas email resmi aduan ini (token balasan tidak sah) atau gagal \
     autentikasi pengirim. Jangan dianggap sebagai jawaban OPD.]";

/// Why an official's mail was not taken as the OPD's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverified {
    /// No recipient carried a valid reply token for this ticket and official or OPD.
    Token,
    /// Our MTA's `Authentication-Results` show no DMARC/DKIM/SPF pass for the From domain.
    Authentication,
}

impl Unverified {
    pub fn as_str(self) -> &'static str {
        match self {
            Unverified::Token => "no valid reply token",
            Unverified::Authentication => "no DMARC, DKIM or SPF pass from the trusted MTA",
        }
    }
}

/// Whether an official's mail is an authenticated answer about one of `tickets` (the
/// ticket it names and, after a merge, the one that lives on), assigned to `opd`.
pub fn verify_answer(
    mail: &ParsedMail,
    key: &ReplyKey,
    tickets: &[TicketCode],
    official: &str,
    opd: &str,
    trusted_authserv_id: Option<&str>,
) -> Result<(), Unverified> {
    // Every candidate is checked (no early exit on a match of one of them).
    let mut ok = false;
    for token in &mail.reply_tokens {
        for &code in tickets {
            ok |= key.verify(token, code, Recipient::Official(official));
            ok |= key.verify(token, code, Recipient::Opd(opd));
        }
    }
    if !ok {
        return Err(Unverified::Token);
    }
    if let Some(authserv) = trusted_authserv_id.map(str::trim).filter(|a| !a.is_empty()) {
        let domain = official.rsplit_once('@').map_or("", |(_, d)| d);
        if !mail.auth_results.iter().any(|r| auth_pass(r, authserv, domain)) {
            return Err(Unverified::Authentication);
        }
    }
    Ok(())
}

/// Removes RFC 5322 comments (`(…)`, nested) outside quoted strings.
fn strip_comments(s: &str) -> String {
    let (mut out, mut depth, mut quoted, mut escaped) = (String::new(), 0u32, false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether `value` names `domain` or a subdomain of it (`header.d=mail.example.go.id`
/// passes for `example.go.id`); an address's domain counts (`smtp.mailfrom=a@example.go.id`).
fn names_domain(value: &str, domain: &str) -> bool {
    let v = value.trim_matches('"').trim().trim_end_matches('.');
    let v = v.rsplit_once('@').map_or(v, |(_, d)| d).to_ascii_lowercase();
    let domain = domain.to_ascii_lowercase();
    !domain.is_empty() && (v == domain || v.ends_with(&format!(".{domain}")))
}

/// Whether one `Authentication-Results` header (RFC 8601) comes from `authserv_id` and
/// shows `dmarc=pass` for `header.from`, `dkim=pass` for `header.d`/`header.i`, or
/// `spf=pass` for `smtp.mailfrom`/`smtp.helo`, naming `domain`. Headers of other
/// authserv-ids are ignored: anyone can write one into a mail.
pub fn auth_pass(header: &str, authserv_id: &str, domain: &str) -> bool {
    let header = strip_comments(header);
    let mut parts = header.split(';');
    let Some(id) = parts.next().and_then(|p| p.split_whitespace().next()) else { return false };
    if !id.eq_ignore_ascii_case(authserv_id) {
        return false;
    }
    for resinfo in parts {
        let mut words = resinfo.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        let method = method.split('/').next().unwrap_or("").to_ascii_lowercase();
        if !result.eq_ignore_ascii_case("pass") {
            continue;
        }
        let wanted: &[&str] = match method.as_str() {
            "dmarc" => &["header.from"],
            "dkim" => &["header.d", "header.i"],
            "spf" => &["smtp.mailfrom", "smtp.helo"],
            _ => continue,
        };
        let props = words.filter_map(|w| w.split_once('='));
        let mut matched = false;
        for (name, value) in props {
            if wanted.iter().any(|w| name.eq_ignore_ascii_case(w)) {
                matched |= names_domain(value, domain);
            }
        }
        if matched {
            return true;
        }
    }
    false
}

/// A note from an official's address that could not be verified: a note (see
/// [`into_note`]) that says so, on `ticket`.
pub fn into_unverified_note(mail: ParsedMail, ticket: TicketCode) -> ParsedMail {
    let mut note = into_note(mail);
    note.message.thread.ticket = Some(ticket);
    note.message.text = match note.message.text.split_once('\n') {
        Some((first, rest)) => format!("{first}\n{UNVERIFIED_PREFIX}\n{rest}"),
        None => format!("{}\n{UNVERIFIED_PREFIX}", note.message.text),
    };
    note
}

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

    fn code() -> TicketCode {
        "ADU-7K3M9QXP".parse().unwrap()
    }

    fn key() -> ReplyKey {
        ReplyKey::new(b"official-test-secret-0123").unwrap()
    }

    fn answer(to: &str, extra: &str) -> ParsedMail {
        mail(
            "kepala.dlh@example.go.id",
            "Re: [ADU-7K3M9QXP] Aduan untuk DLH: Sampah",
            &format!("To: {to}\r\n{extra}"),
            "Sudah diangkut.",
        )
    }

    #[test]
    fn an_answer_needs_the_reply_token_of_its_ticket_and_official() {
        let official = "kepala.dlh@example.go.id";
        let good = key().token(code(), Recipient::Official(official));
        let verify = |m: &ParsedMail, tickets: &[TicketCode]| {
            verify_answer(m, &key(), tickets, official, "DLH", None)
        };
        // A forged From: without a token.
        let forged = answer("intake@aduan.test", "");
        assert_eq!(verify(&forged, &[code()]), Err(Unverified::Token));
        // The token of another ticket, of another official, of another OPD, a made-up one.
        let other_ticket: TicketCode = "ADU-04106105".parse().unwrap();
        for token in [
            key().token(other_ticket, Recipient::Official(official)),
            key().token(code(), Recipient::Official("kepala.dpu@example.go.id")),
            key().token(code(), Recipient::Opd("DPU")),
            "0123456789abcdef0123456789abcdef".to_owned(),
        ] {
            let m = answer(&format!("intake+{token}@aduan.test"), "");
            assert_eq!(verify(&m, &[code()]), Err(Unverified::Token), "{token}");
        }
        // The right one, in To, in Delivered-To (lower-cased by the MTA), or the OPD's.
        let m = answer(&format!("Lapak Aduan <intake+t1+{good}@aduan.test>"), "");
        assert_eq!(verify(&m, &[code()]), Ok(()));
        let m = answer(
            "intake@aduan.test",
            &format!("Delivered-To: intake+{}@aduan.test\r\n", good.to_uppercase()),
        );
        assert_eq!(verify(&m, &[code()]), Ok(()));
        let opd = key().token(code(), Recipient::Opd("DLH"));
        let m = answer(&format!("intake+{opd}@aduan.test"), "");
        assert_eq!(verify(&m, &[code()]), Ok(()));
        // After a merge, the token of the ticket the mail was about still counts.
        let m = answer(&format!("intake+{good}@aduan.test"), "");
        assert_eq!(verify(&m, &[code(), other_ticket]), Ok(()));
        assert_eq!(verify(&m, &[other_ticket]), Err(Unverified::Token));
    }

    #[test]
    fn a_trusted_mta_must_have_authenticated_the_from_domain() {
        let official = "kepala.dlh@example.go.id";
        let token = key().token(code(), Recipient::Official(official));
        let to = format!("intake+{token}@aduan.test");
        let verify = |extra: &str| {
            let m = answer(&to, extra);
            verify_answer(&m, &key(), &[code()], official, "DLH", Some("mx.aduan.test"))
        };
        let fail = "Authentication-Results: mx.aduan.test; dmarc=fail header.from=example.go.id;\r\n dkim=fail header.d=example.go.id; spf=softfail smtp.mailfrom=x@example.go.id\r\n";
        assert_eq!(verify(fail), Err(Unverified::Authentication));
        // None at all, or a pass the attacker wrote under another authserv-id.
        assert_eq!(verify(""), Err(Unverified::Authentication));
        let forged =
            "Authentication-Results: evil.example; dmarc=pass header.from=example.go.id\r\n";
        assert_eq!(verify(&format!("{forged}{fail}")), Err(Unverified::Authentication));
        // A pass for another domain.
        assert_eq!(
            verify("Authentication-Results: mx.aduan.test; dkim=pass header.d=evil.example\r\n"),
            Err(Unverified::Authentication)
        );
        for pass in [
            "Authentication-Results: mx.aduan.test; dmarc=pass (p=none dis=none) header.from=example.go.id\r\n",
            "Authentication-Results: MX.aduan.test 1; spf=fail smtp.mailfrom=a@b.c;\r\n\tdkim=pass (2048-bit key) header.d=mail.example.go.id header.s=s1\r\n",
            "Authentication-Results: mx.aduan.test; spf=pass smtp.mailfrom=kepala.dlh@example.go.id\r\n",
        ] {
            assert_eq!(verify(pass), Ok(()), "{pass}");
        }
        // No authserv-id configured: the token alone.
        let m = answer(&to, fail);
        assert_eq!(verify_answer(&m, &key(), &[code()], official, "DLH", None), Ok(()));
    }

    #[test]
    fn an_unverified_note_says_so() {
        let note = into_unverified_note(answer("intake@aduan.test", ""), code());
        assert_eq!(note.message.thread.ticket, Some(code()));
        assert_eq!(note.message.sender.identity, None);
        let lines: Vec<&str> = note.message.text.lines().collect();
        assert_eq!(lines[0], NOTE_PREFIX);
        assert_eq!(lines[1], UNVERIFIED_PREFIX);
        assert_eq!(lines[2], "Sudah diangkut.");
    }
}
