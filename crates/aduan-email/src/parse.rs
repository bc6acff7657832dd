//! RFC 5322 bytes → [`InboundMessage`]: pure, no IO.
//!
//! - **Provider id:** the Message-ID (without angle brackets); a mail without a usable one
//!   gets `sha256:<hex of the raw bytes>`, stable across refetches.
//! - **Threading hints:** `In-Reply-To` then `References` (newest first), which the store
//!   matches against the ids of messages it holds (ours included: the outbound worker
//!   records the Message-ID of every mail we send); the first tracking code in the subject
//!   (`[ADU-…]`) or in a plus-address (`intake+ADU-…@`) as the named ticket; bounces add
//!   the ids of the messages they report on.
//! - **Text:** text/plain preferred, else HTML converted to text; the quoted history and
//!   the signature are cut off; a new conversation's subject leads the text.
//! - **Attachments:** every attachment and inline part, plus the raw message itself
//!   (`email-asli.eml`) for audit, as content-addressed blobs the caller writes.
//! - **Automated mail** ([`Automated`]) keeps no sender identity, so it never creates a
//!   reporter, never opens a ticket, and never becomes the address answers go to.

use aduan_core::{
    AttachmentRef, Channel, Identity, InboundMessage, Sender, ThreadHints, TicketCode,
};
use chrono::{DateTime, Utc};
use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use crate::classify::{Automated, bounced_ids, classify, from_address};
use crate::message_id::{thread_references, valid_id, verp_ids};
use crate::text;

/// The largest mail parsed; bigger ones go to quarantine.
pub const MAX_MAIL_BYTES: usize = 50 * 1024 * 1024;
/// Attachments kept per mail (the raw message not counted).
pub const MAX_ATTACHMENTS: usize = 20;
/// The file name the raw message is kept under.
pub const RAW_FILENAME: &str = "email-asli.eml";
pub use crate::message_id::OWN_ID_PREFIX;

/// Why a mail could not be turned into a message at all (it goes to quarantine).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the mail is empty")]
    Empty,
    #[error("the mail has {0} bytes, more than the limit of {MAX_MAIL_BYTES}")]
    TooLarge(usize),
    #[error("no RFC 5322 message could be read from the mail")]
    NotAMessage,
    #[error("the MIME parser failed on the mail")]
    ParserFailed,
}

/// The first line of a bounce of one of our mails, as the ticket shows it.
pub const BOUNCE_NOTE: &str = "[Jawaban tidak terkirim (alamat email ditolak): \
     coba hubungi pelapor lewat kanal lain]";

/// What the parser needs to know about us.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Our own addresses, lower case (the intake mailbox, the `From` of our mails): mail
    /// from them is our own and never a complaint.
    pub own_addresses: Vec<String>,
    /// The domain of the Message-IDs we generate.
    pub own_id_domain: String,
    /// When the mail was received; used when its `Date` is missing or unreadable, and the
    /// latest time a `Date` may claim.
    pub received_at: DateTime<Utc>,
}

impl ParseOptions {
    /// Whether `id` (without brackets) is a Message-ID we generated.
    pub fn is_own_id(&self, id: &str) -> bool {
        let id = id.trim().trim_matches(['<', '>']);
        !self.own_id_domain.is_empty()
            && id.starts_with(OWN_ID_PREFIX)
            && id
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(&self.own_id_domain))
    }
}

/// Content to write to the attachment store before the message is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Hex SHA-256 of `data`: its address in the store.
    pub sha256: String,
    pub data: Vec<u8>,
}

/// A parsed mail.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedMail {
    /// The message for the store; `message.attachments[i]` is `blobs[i]`.
    pub message: InboundMessage,
    pub blobs: Vec<Blob>,
    /// Why the mail is automated, if it is.
    pub automated: Option<Automated>,
    /// For bounces: the Message-IDs of the mails that could not be delivered.
    pub bounced: Vec<String>,
    /// The From address (kept even when the message itself carries no identity).
    pub from: Option<Identity>,
    /// The decoded subject, as written (control characters dropped).
    pub subject: String,
    /// Reply-token candidates from the recipients (see [`crate::token`]).
    pub reply_tokens: Vec<String>,
    /// The `Authentication-Results` headers, raw (at most [`MAX_AUTH_RESULTS`]).
    pub auth_results: Vec<String>,
}

/// `Authentication-Results` headers kept of one mail.
pub const MAX_AUTH_RESULTS: usize = 16;

/// The recipient addresses the reply token may travel in, as delivered.
fn recipients<'a>(msg: &'a Message<'a>) -> Vec<&'a str> {
    let mut out: Vec<&str> = addresses(msg.to()).chain(addresses(msg.cc())).collect();
    out.extend(
        msg.headers_raw()
            .filter(|(name, _)| {
                name.eq_ignore_ascii_case("Delivered-To")
                    || name.eq_ignore_ascii_case("X-Original-To")
            })
            .map(|(_, value)| value)
            .take(32),
    );
    out
}

/// The raw `Authentication-Results` headers, unfolded.
fn auth_results(msg: &Message<'_>) -> Vec<String> {
    msg.headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, raw)| {
            raw.chars()
                .map(|c| if c.is_whitespace() { ' ' } else { c })
                .filter(|c| !c.is_control())
                .take(4000)
                .collect()
        })
        .take(MAX_AUTH_RESULTS)
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn addresses<'a>(value: Option<&'a Address<'a>>) -> impl Iterator<Item = &'a str> + 'a {
    value.into_iter().flat_map(|a| a.iter()).filter_map(|a| a.address())
}

/// A tracking code in the plus-part of a recipient (`intake+ADU-7K3M9QXP@…`).
fn plus_address_code(msg: &Message<'_>) -> Option<TicketCode> {
    let mut candidates: Vec<&str> = addresses(msg.to()).chain(addresses(msg.cc())).collect();
    for name in ["Delivered-To", "X-Original-To"] {
        if let Some(raw) = msg.header_raw(name) {
            candidates.push(raw);
        }
    }
    candidates.into_iter().find_map(|a| {
        let local = a.trim().rsplit_once('@').map_or(a, |(l, _)| l);
        let (_, tag) = local.split_once('+')?;
        TicketCode::find_all(tag).into_iter().next()
    })
}

/// Keeps the last path component of a file name and drops control characters.
fn sanitize_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

fn content_type_of(part: &mail_parser::MessagePart<'_>) -> String {
    if let PartType::Message(_) = part.body {
        return "message/rfc822".to_owned();
    }
    match part.content_type() {
        Some(ct) => {
            let t = ct.ctype().trim().to_ascii_lowercase();
            let s = ct.subtype().unwrap_or("octet-stream").trim().to_ascii_lowercase();
            let ok = |x: &str| {
                !x.is_empty()
                    && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
            };
            if ok(&t) && ok(&s) { format!("{t}/{s}") } else { "application/octet-stream".into() }
        }
        None => "application/octet-stream".to_owned(),
    }
}

/// The body as text: every text part (HTML converted when there is no plain text),
/// separated by blank lines.
fn body_text(msg: &Message<'_>) -> String {
    let mut body = String::new();
    for i in 0..msg.text_body_count() {
        if let Some(t) = msg.body_text(i) {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(&t);
        }
    }
    body
}

fn received_at(msg: &Message<'_>, fallback: DateTime<Utc>) -> DateTime<Utc> {
    msg.date()
        .filter(|d| d.is_valid())
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0))
        .filter(|d| d.timestamp() > 0)
        .map_or(fallback, |d| d.min(fallback))
}

/// Parses one mail. Never panics on any input: a parser failure is an error.
pub fn parse_mail(raw: &[u8], opts: &ParseOptions) -> Result<ParsedMail, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    if raw.len() > MAX_MAIL_BYTES {
        return Err(ParseError::TooLarge(raw.len()));
    }
    let mut mail = guarded(raw, opts)?;
    if let Some(last) = mail.blobs.last_mut() {
        last.data = raw.to_vec();
    }
    Ok(mail)
}

/// [`parse_mail`] for a mail the caller owns: the raw bytes become the last blob (the
/// `email-asli.eml` kept for audit) without being copied.
pub fn parse_mail_owned(raw: Vec<u8>, opts: &ParseOptions) -> Result<ParsedMail, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    if raw.len() > MAX_MAIL_BYTES {
        return Err(ParseError::TooLarge(raw.len()));
    }
    let mut mail = guarded(&raw, opts)?;
    if let Some(last) = mail.blobs.last_mut() {
        last.data = raw;
    }
    Ok(mail)
}

/// Parses with the raw blob left empty; a panic in the parser is an error, not a crash.
fn guarded(raw: &[u8], opts: &ParseOptions) -> Result<ParsedMail, ParseError> {
    // mail-parser is well tested, but this is input from anyone on the internet: a panic
    // in it must cost one mail, not the poller.
    std::panic::catch_unwind(|| parse_unguarded(raw, opts)).map_err(|_| ParseError::ParserFailed)?
}

fn parse_unguarded(raw: &[u8], opts: &ParseOptions) -> Result<ParsedMail, ParseError> {
    // Some gateways put blank lines before the header; the message starts after them.
    let mut start = 0;
    while let Some(end) = raw[start..].iter().position(|b| *b == b'\n') {
        if raw[start..start + end].iter().all(u8::is_ascii_whitespace) {
            start += end + 1;
        } else {
            break;
        }
    }
    let msg = MessageParser::default().parse(&raw[start..]).ok_or(ParseError::NotAMessage)?;
    if msg.headers().is_empty() {
        return Err(ParseError::NotAMessage);
    }
    let own_id = |id: &str| opts.is_own_id(id);
    let automated = classify(&msg, &opts.own_addresses, &own_id);
    let bounced = if automated == Some(Automated::Bounce) {
        // The return path it came back to first (VERP: it names the mail for sure), then
        // what it quotes.
        let mut ids = verp_ids(recipients(&msg), &opts.own_id_domain);
        for id in bounced_ids(&msg) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    } else {
        Vec::new()
    };

    let provider_id = match msg.message_id().map(|id| id.trim().trim_matches(['<', '>'])) {
        Some(id) if valid_id(id) => id.to_owned(),
        _ => format!("sha256:{}", sha256_hex(raw)),
    };
    let from = from_address(&msg).and_then(|a| Identity::email(&a).ok());
    let from_name = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.name())
        .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect::<String>())
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    // Control characters (a NUL in an encoded word above all) never reach the store.
    let subject: String = msg
        .subject()
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    let subject = subject.trim().to_owned();

    let mut references = thread_references(&msg);
    for id in &bounced {
        if !references.contains(id) {
            references.push(id.clone());
        }
    }
    let is_reply = !references.is_empty() || text::is_reply_subject(&subject);
    let ticket =
        TicketCode::find_all(&subject).into_iter().next().or_else(|| plus_address_code(&msg));

    let body = text::new_content(&body_text(&msg));
    let bare = text::bare_subject(&subject);
    let text = if is_reply || bare.is_empty() {
        body
    } else if body.is_empty() {
        bare.to_owned()
    } else {
        format!("{bare}\n\n{body}")
    };
    // A bounce of one of our mails joins that mail's ticket (by the ids it reports on):
    // its first line tells the operator the answer did not arrive.
    let text = if bounced.iter().any(|id| opts.is_own_id(id)) {
        format!("{BOUNCE_NOTE}\n\n{text}")
    } else {
        text
    };
    let text = text::truncate(text);

    let mut attachments = Vec::new();
    let mut blobs = Vec::new();
    // Weak classes keep their attachments: the mail may yet turn out to be a resident's.
    if automated.is_none_or(Automated::is_weak) {
        for part in msg.attachments().take(MAX_ATTACHMENTS) {
            let data = part.contents();
            if data.is_empty() {
                continue;
            }
            let sha256 = sha256_hex(data);
            attachments.push(AttachmentRef {
                filename: part.attachment_name().and_then(sanitize_filename),
                content_type: content_type_of(part),
                size: data.len() as u64,
                sha256: sha256.clone(),
                provider_ref: None,
            });
            blobs.push(Blob { sha256, data: data.to_vec() });
        }
    }
    let raw_sha = sha256_hex(raw);
    attachments.push(AttachmentRef {
        filename: Some(RAW_FILENAME.to_owned()),
        content_type: "message/rfc822".to_owned(),
        size: raw.len() as u64,
        sha256: raw_sha.clone(),
        provider_ref: None,
    });
    // The caller puts the raw bytes in (moved when it owns them).
    blobs.push(Blob { sha256: raw_sha, data: Vec::new() });

    let sender = if automated.is_some() {
        Sender {
            identity: None,
            display_name: from_name.or_else(|| from.as_ref().map(|f| f.value.clone())),
            contacts: Vec::new(),
        }
    } else {
        Sender { identity: from.clone(), display_name: from_name, contacts: Vec::new() }
    };
    let message = InboundMessage {
        channel: Channel::Email,
        provider_id,
        sender,
        text,
        attachments,
        location: None,
        received_at: received_at(&msg, opts.received_at),
        thread: ThreadHints {
            references,
            ticket,
            automated: automated.is_some(),
            revision_of: None,
        },
    };
    let reply_tokens = crate::token::tokens_in(recipients(&msg));
    let auth_results = auth_results(&msg);
    Ok(ParsedMail { message, blobs, automated, bounced, from, subject, reply_tokens, auth_results })
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn opts() -> ParseOptions {
        ParseOptions {
            own_addresses: vec!["intake@aduan.test".into()],
            own_id_domain: "aduan.test".into(),
            received_at: DateTime::from_timestamp(1_776_700_000, 0).unwrap_or_default(),
        }
    }

    /// A compact view of what the parser made of `raw`.
    fn check(raw: &str, expect: Expect) {
        let shown = match parse_mail(raw.as_bytes(), &opts()) {
            Ok(m) => {
                let mut s = format!(
                    "id={} from={:?} identity={:?} name={:?}\nautomated={:?} bounced={:?}\nrefs={:?} ticket={:?} at={}\n",
                    m.message.provider_id,
                    m.from.as_ref().map(|f| f.value.as_str()),
                    m.message.sender.identity.as_ref().map(|f| f.value.as_str()),
                    m.message.sender.display_name,
                    m.automated.map(Automated::as_str),
                    m.bounced,
                    m.message.thread.references,
                    m.message.thread.ticket.map(|c| c.to_string()),
                    m.message.received_at.to_rfc3339(),
                );
                for a in &m.message.attachments {
                    s.push_str(&format!(
                        "attachment {:?} {} {}\n",
                        a.filename.as_deref().unwrap_or("-"),
                        a.content_type,
                        a.size
                    ));
                }
                s.push_str("---\n");
                s.push_str(&m.message.text);
                s
            }
            Err(e) => format!("error: {e}"),
        };
        expect.assert_eq(&shown);
    }

    #[test]
    fn a_new_complaint_leads_with_its_subject() {
        check(
            "From: Siti Aminah <Siti@Example.ID>\r\nTo: intake@aduan.test\r\nSubject: Jalan berlubang\r\nMessage-ID: <abc@mail.example.id>\r\nDate: Mon, 20 Apr 2026 10:00:00 +0700\r\n\r\nDi Desa Karangklesem, depan SD.\r\n\r\n-- \r\nSiti\r\n",
            expect![[r#"
                id=abc@mail.example.id from=Some("siti@example.id") identity=Some("siti@example.id") name=Some("Siti Aminah")
                automated=None bounced=[]
                refs=[] ticket=None at=2026-04-20T03:00:00+00:00
                attachment "email-asli.eml" message/rfc822 208
                ---
                Jalan berlubang

                Di Desa Karangklesem, depan SD."#]],
        );
    }

    #[test]
    fn a_reply_threads_by_its_headers_and_its_subject_tag() {
        check(
            "From: siti@example.id\r\nTo: Lapak Aduan <intake@aduan.test>\r\nSubject: Re: [ADU-7K3M9QXP] Aduan Anda sudah kami terima\r\nMessage-ID: <r2@example.id>\r\nIn-Reply-To: <aduan.adu-7k3m9qxp.01@aduan.test>\r\nReferences: <first@example.id> <aduan.adu-7k3m9qxp.01@aduan.test>\r\n\r\nMasih rusak.\r\n\r\nOn Mon, 20 Apr 2026, Lapak Aduan <intake@aduan.test> wrote:\r\n> Terima kasih\r\n",
            expect![[r#"
                id=r2@example.id from=Some("siti@example.id") identity=Some("siti@example.id") name=None
                automated=None bounced=[]
                refs=["aduan.adu-7k3m9qxp.01@aduan.test", "first@example.id"] ticket=Some("ADU-7K3M9QXP") at=2026-04-20T15:46:40+00:00
                attachment "email-asli.eml" message/rfc822 358
                ---
                Masih rusak."#]],
        );
    }

    #[test]
    fn a_plus_address_names_the_ticket() {
        check(
            "From: siti@example.id\r\nTo: intake+ADU-7K3M9QXP@aduan.test\r\nSubject: foto tambahan\r\nMessage-ID: <p@example.id>\r\n\r\nini fotonya\r\n",
            expect![[r#"
                id=p@example.id from=Some("siti@example.id") identity=Some("siti@example.id") name=None
                automated=None bounced=[]
                refs=[] ticket=Some("ADU-7K3M9QXP") at=2026-04-20T15:46:40+00:00
                attachment "email-asli.eml" message/rfc822 126
                ---
                foto tambahan

                ini fotonya"#]],
        );
    }

    #[test]
    fn a_mail_without_message_id_gets_a_stable_hash() {
        let raw = "From: siti@example.id\r\nSubject: x\r\n\r\nisi\r\n";
        let a = parse_mail(raw.as_bytes(), &opts()).unwrap();
        let b = parse_mail(raw.as_bytes(), &opts()).unwrap();
        assert_eq!(a.message.provider_id, b.message.provider_id);
        assert!(a.message.provider_id.starts_with("sha256:"), "{}", a.message.provider_id);
        let other =
            parse_mail(b"From: siti@example.id\r\nSubject: y\r\n\r\nisi\r\n", &opts()).unwrap();
        assert_ne!(a.message.provider_id, other.message.provider_id);
    }

    #[test]
    fn html_only_mail_becomes_text_and_attachments_are_kept() {
        check(
            "From: budi@example.id\r\nSubject: Sampah\r\nMessage-ID: <h@example.id>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Sampah menumpuk di <b>pasar</b>.</p><p>Sudah seminggu =E9.</p>\r\n--b\r\nContent-Type: image/jpeg; name=\"../../foto pasar.jpg\"\r\nContent-Disposition: attachment; filename=\"../../foto pasar.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n/9j/4AAQ\r\n--b--\r\n",
            expect![[r#"
                id=h@example.id from=Some("budi@example.id") identity=Some("budi@example.id") name=None
                automated=None bounced=[]
                refs=[] ticket=None at=2026-04-20T15:46:40+00:00
                attachment "foto pasar.jpg" image/jpeg 6
                attachment "email-asli.eml" message/rfc822 476
                ---
                Sampah

                Sampah menumpuk di pasar.
                Sudah seminggu é."#]],
        );
    }

    #[test]
    fn our_own_mail_and_auto_replies_are_automated_without_identity() {
        check(
            "From: Lapak Aduan <intake@aduan.test>\r\nSubject: [ADU-7K3M9QXP] Aduan Anda sudah kami terima\r\nMessage-ID: <aduan.adu-7k3m9qxp.02@aduan.test>\r\n\r\nTerima kasih\r\n",
            expect![[r#"
                id=aduan.adu-7k3m9qxp.02@aduan.test from=Some("intake@aduan.test") identity=None name=Some("Lapak Aduan")
                automated=Some("own-message") bounced=[]
                refs=[] ticket=Some("ADU-7K3M9QXP") at=2026-04-20T15:46:40+00:00
                attachment "email-asli.eml" message/rfc822 157
                ---
                [ADU-7K3M9QXP] Aduan Anda sudah kami terima

                Terima kasih"#]],
        );
        for header in [
            "Auto-Submitted: auto-replied",
            "X-Autoreply: yes",
            "Precedence: bulk",
            "List-Id: <warga.lists.example.id>",
            "Return-Path: <>",
        ] {
            let raw = format!("From: siti@example.id\r\n{header}\r\nSubject: x\r\n\r\nhalo\r\n");
            let m = parse_mail(raw.as_bytes(), &opts()).unwrap();
            assert!(m.automated.is_some() && m.message.thread.automated, "{header}");
            assert_eq!(m.message.sender.identity, None, "{header}");
        }
        let raw = "From: siti@example.id\r\nAuto-Submitted: no\r\nX-Auto-Response-Suppress: All\r\nSubject: x\r\n\r\nhalo\r\n";
        assert_eq!(parse_mail(raw.as_bytes(), &opts()).unwrap().automated, None);
        let raw = "From: siti@example.id\r\nSubject: Automatic reply: [ADU-7K3M9QXP] Aduan\r\n\r\nSaya cuti\r\n";
        assert_eq!(
            parse_mail(raw.as_bytes(), &opts()).unwrap().automated,
            Some(Automated::AutoReply)
        );
    }

    #[test]
    fn a_bounce_names_the_mail_it_returns() {
        check(
            "From: MAILER-DAEMON@mx.example.id (Mail Delivery System)\r\nTo: intake@aduan.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.example.id>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered to <siti@example.id>.\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.id\r\n\r\nFinal-Recipient: rfc822; siti@example.id\r\nAction: failed\r\nStatus: 5.1.1\r\n--r\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: intake@aduan.test\r\nMessage-ID: <aduan.adu-7k3m9qxp.03@aduan.test>\r\nSubject: [ADU-7K3M9QXP] Aduan Anda sudah kami terima\r\n--r--\r\n",
            expect![[r#"
                id=b1@mx.example.id from=Some("mailer-daemon@mx.example.id") identity=None name=Some("Mail Delivery System")
                automated=Some("bounce") bounced=["aduan.adu-7k3m9qxp.03@aduan.test"]
                refs=["aduan.adu-7k3m9qxp.03@aduan.test"] ticket=None at=2026-04-20T15:46:40+00:00
                attachment "email-asli.eml" message/rfc822 673
                ---
                [Jawaban tidak terkirim (alamat email ditolak): coba hubungi pelapor lewat kanal lain]

                The mail could not be delivered to <siti@example.id>."#]],
        );
    }

    #[test]
    fn what_is_not_a_mail_is_an_error() {
        for raw in [&b""[..], b"\r\n\r\n", b"   "] {
            assert_eq!(parse_mail(raw, &opts()).unwrap_err(), ParseError::Empty);
        }
        let big = vec![b'a'; MAX_MAIL_BYTES + 1];
        assert_eq!(
            parse_mail(&big, &opts()).unwrap_err(),
            ParseError::TooLarge(MAX_MAIL_BYTES + 1)
        );
    }

    #[test]
    fn own_ids_are_recognised() {
        let o = opts();
        assert!(o.is_own_id("aduan.adu-7k3m9qxp.0a0b@aduan.test"));
        assert!(o.is_own_id("<aduan.x@ADUAN.TEST>"));
        assert!(!o.is_own_id("aduan.x@example.id"));
        assert!(!o.is_own_id("abc@aduan.test"));
    }
}
