//! Outbound mails, built without IO: answers and receipts to residents (from a claimed
//! outbox row) and the routed-ticket notification to an OPD's officials.
//!
//! Every mail carries our own `Message-ID` (`<aduan.<code>.<random>@<domain>>`, returned so
//! the outbox can record it and replies thread back), `In-Reply-To`/`References` built from
//! the ticket's stored ids, the tracking code in the subject (`[ADU-…]`), and
//! `X-Auto-Response-Suppress: All`; automatic ones (every purpose but a person's reply,
//! and notifications) also `Auto-Submitted: auto-replied` / `auto-generated` (RFC 3834).

use std::time::SystemTime;

use aduan_core::{Channel, Purpose, TicketCode};
use aduan_store::OutboxItem;
use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use crate::message_id::{OWN_ID_PREFIX, valid_id};
use crate::token::{Recipient, ReplyKey, reply_address};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("the recipient {0:?} is not an email address")]
    BadRecipient(String),
    #[error("the mail could not be built: {0}")]
    Build(String),
}

/// Who our mails come from.
#[derive(Debug, Clone)]
pub struct Composer {
    pub from: Mailbox,
    /// Signs the `Reply-To` of mails to officials (see [`crate::token`]); without it they
    /// are answered to `from` and no answer can be verified.
    pub reply_key: Option<ReplyKey>,
}

/// A built mail and the Message-ID it carries (without angle brackets).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub message: Message,
    pub message_id: String,
}

/// A file to attach to a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAttachment {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// The routed-ticket notification to an OPD's officials. The routing worker decides when
/// one goes out and fills this in from the ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub code: TicketCode,
    /// The officials' addresses (`emails` of the OPD in the registry).
    pub to: Vec<String>,
    pub opd_code: String,
    pub opd_name: String,
    /// The complaint as the resident wrote it (numbers that look like NIK or phone numbers
    /// are masked in the mail).
    pub complaint: String,
    /// The channel the complaint came in on.
    pub channel: Channel,
    /// Where, as the resident or the map gave it.
    pub place: Option<String>,
    /// The first-response deadline.
    pub deadline: DateTime<Utc>,
    /// The reporter's name; shown masked (`S*** A***`), never with contact details.
    pub reporter: Option<String>,
    pub attachments: Vec<FileAttachment>,
    /// Provider ids of earlier mails about the ticket, newest first (for `References`).
    pub thread_refs: Vec<String>,
}

fn header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_owned())
}

/// Our Message-ID for a mail about `code`; `random` makes it unique.
pub fn message_id(code: TicketCode, random: [u8; 8], from: &Mailbox) -> String {
    format!(
        "{OWN_ID_PREFIX}{}.{}@{}",
        code.to_string().to_ascii_lowercase(),
        hex::encode(random),
        from.email.domain()
    )
}

/// `In-Reply-To` (the newest id) and `References` (oldest first) from ids newest first.
fn threading(refs: &[String]) -> Option<(String, String)> {
    // Only real Message-IDs: a stored mail without one has a `sha256:` id of our own.
    let valid: Vec<&str> = refs
        .iter()
        .map(String::as_str)
        .filter(|r| valid_id(r) && r.contains('@') && !r.starts_with("sha256:"))
        .take(20)
        .collect();
    let newest = valid.first()?;
    let references: Vec<String> = valid.iter().rev().map(|r| format!("<{r}>")).collect();
    Some((format!("<{newest}>"), references.join(" ")))
}

fn subject_for(purpose: Purpose, code: TicketCode) -> String {
    let what = match purpose {
        Purpose::Ack => "Aduan Anda sudah kami terima",
        Purpose::Reply => "Tanggapan atas aduan Anda",
        Purpose::Status => "Status aduan Anda",
        Purpose::IdentityRequest => "Mohon lengkapi identitas Anda",
        Purpose::Disposition => "Aduan untuk ditindaklanjuti",
        Purpose::Warning => "Peringatan batas waktu aduan",
        Purpose::Escalation => "Eskalasi: aduan melewati batas waktu",
    };
    format!("[{code}] {what}")
}

fn mailbox(address: &str) -> Result<Mailbox, ComposeError> {
    address
        .parse::<lettre::Address>()
        .map(|a| Mailbox::new(None, a))
        .map_err(|_| ComposeError::BadRecipient(address.to_owned()))
}

impl Composer {
    /// The `Reply-To` of a mail to officials about `ticket`: our address with the reply
    /// token for `to` in its plus-part.
    pub fn reply_to(&self, ticket: TicketCode, to: Recipient<'_>) -> Mailbox {
        let Some(key) = &self.reply_key else { return self.from.clone() };
        let address = reply_address(self.from.email.as_ref(), &key.token(ticket, to));
        match address.parse::<lettre::Address>() {
            Ok(a) => Mailbox::new(self.from.name.clone(), a),
            Err(_) => self.from.clone(),
        }
    }

    /// The mail for one claimed outbox row.
    pub fn outbox_mail(
        &self,
        item: &OutboxItem,
        random: [u8; 8],
        now: SystemTime,
    ) -> Result<Outgoing, ComposeError> {
        let to = mailbox(&item.recipient.value)?;
        let id = message_id(item.ticket, random, &self.from);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .date(now)
            .message_id(Some(format!("<{id}>")))
            .raw_header(header("X-Auto-Response-Suppress", "All"));
        let mut subject = subject_for(item.purpose, item.ticket);
        if item.purpose.is_internal() {
            // To officials: a mail of its own (not threaded under the resident's mails),
            // answered to our intake address with the reply token of this ticket and this
            // official, and the code in the subject.
            builder = builder
                .reply_to(self.reply_to(item.ticket, Recipient::Official(&item.recipient.value)))
                .raw_header(header("Auto-Submitted", "auto-generated"));
        } else {
            if let Some((in_reply_to, references)) = threading(&item.thread_refs) {
                builder = builder.in_reply_to(in_reply_to).references(references);
                subject = format!("Re: {subject}");
            }
            if item.purpose.is_automatic() {
                builder = builder.raw_header(header("Auto-Submitted", "auto-replied"));
            }
        }
        let body = if item.purpose.is_internal() {
            format!(
                "{}\n\n-- \nKode aduan: {code}\nMohon jangan mengubah kode [{code}] pada subjek \
                 saat membalas.\n",
                item.text.trim_end(),
                code = item.ticket
            )
        } else {
            format!(
                "{}\n\n-- \nKode aduan: {code}\nBalas email ini untuk menambahkan keterangan. \
                 Mohon jangan mengubah kode [{code}] pada subjek.\n",
                item.text.trim_end(),
                code = item.ticket
            )
        };
        let message = builder
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| ComposeError::Build(e.to_string()))?;
        Ok(Outgoing { message, message_id: id })
    }

    /// The notification of a routed ticket to its OPD's officials. Replies go to our
    /// intake address with the reply token of this ticket and OPD, and carry the code, so
    /// an official's answer finds the ticket and is known to answer this mail.
    pub fn notification_mail(
        &self,
        n: &Notification,
        random: [u8; 8],
        now: SystemTime,
    ) -> Result<Outgoing, ComposeError> {
        if n.to.is_empty() {
            return Err(ComposeError::BadRecipient(String::new()));
        }
        let id = message_id(n.code, random, &self.from);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .reply_to(self.reply_to(n.code, Recipient::Opd(&n.opd_code)))
            .date(now)
            .message_id(Some(format!("<{id}>")))
            .raw_header(header("Auto-Submitted", "auto-generated"))
            .raw_header(header("X-Auto-Response-Suppress", "All"));
        for to in &n.to {
            builder = builder.to(mailbox(to)?);
        }
        if let Some((in_reply_to, references)) = threading(&n.thread_refs) {
            builder = builder.in_reply_to(in_reply_to).references(references);
        }
        let subject = format!("[{}] Aduan untuk {}: {}", n.code, n.opd_code, summary(&n.complaint));
        let body = notification_text(n);
        let message = if n.attachments.is_empty() {
            builder.subject(subject).header(ContentType::TEXT_PLAIN).body(body)
        } else {
            let mut parts = MultiPart::mixed()
                .boundary(format!("aduan-{}", hex::encode(random)))
                .singlepart(SinglePart::plain(body));
            for a in &n.attachments {
                let ct = ContentType::parse(&a.content_type).unwrap_or_else(|_| {
                    ContentType::parse("application/octet-stream")
                        .unwrap_or(ContentType::TEXT_PLAIN)
                });
                parts =
                    parts.singlepart(Attachment::new(a.filename.clone()).body(a.data.clone(), ct));
            }
            builder.subject(subject).multipart(parts)
        }
        .map_err(|e| ComposeError::Build(e.to_string()))?;
        Ok(Outgoing { message, message_id: id })
    }
}

impl Composer {
    /// The short answer to a person whose mail was larger than `limit` bytes and was not
    /// taken (RFC 3834 auto-reply, threaded under their mail).
    pub fn too_large_mail(
        &self,
        to: &str,
        in_reply_to: Option<&str>,
        limit: u64,
        random: [u8; 8],
        now: SystemTime,
    ) -> Result<Message, ComposeError> {
        let id =
            format!("{OWN_ID_PREFIX}besar.{}@{}", hex::encode(random), self.from.email.domain());
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(mailbox(to)?)
            .date(now)
            .message_id(Some(format!("<{id}>")))
            .raw_header(header("Auto-Submitted", "auto-replied"))
            .raw_header(header("X-Auto-Response-Suppress", "All"));
        if let Some(parent) = in_reply_to.filter(|p| valid_id(p)) {
            builder = builder.in_reply_to(format!("<{parent}>")).references(format!("<{parent}>"));
        }
        let limit_mb = limit.div_ceil(1024 * 1024);
        let body = format!(
            "Mohon maaf, email Anda lebih besar dari {limit_mb} MB, batas yang dapat kami \
             terima, sehingga tidak dapat kami proses.\n\nSilakan kirim ulang aduan Anda \
             dengan lampiran yang lebih kecil (misalnya foto yang diperkecil) atau tanpa \
             lampiran.\n"
        );
        builder
            .subject("Email Anda terlalu besar untuk kami proses")
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| ComposeError::Build(e.to_string()))
    }
}

/// The first line of a complaint, at most 60 characters, for a subject.
pub fn summary(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("(tanpa teks)");
    let line = mask_numbers(line);
    let mut out: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// A name shown to officials without giving the person away: `Siti Aminah` → `S*** A***`.
pub fn mask_name(name: &str) -> String {
    let words: Vec<String> = name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{c}***"))
        .collect();
    if words.is_empty() { "(tanpa nama)".to_owned() } else { words.join(" ") }
}

/// Masks numbers of 9 or more digits (phone numbers, the 16-digit NIK), keeping the last
/// three: `0812-3456-7890` → `****-****-*890`. Groups of three or more digits joined by one
/// space, dash or dot count as one number (`0812 3456 7890`); dates do not
/// (`20-04-2026 10.00`).
pub fn mask_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let digits_from = |mut i: usize| {
        while i < n && chars[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < n {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        let mut end = digits_from(i);
        while end + 1 < n && matches!(chars[end], ' ' | '-' | '.') {
            let group_end = digits_from(end + 1);
            if group_end - (end + 1) < 3 {
                break;
            }
            end = group_end;
        }
        let run = &chars[start..end];
        let digits = run.iter().filter(|c| c.is_ascii_digit()).count();
        if digits >= 9 {
            let mut seen = 0;
            for &c in run {
                if c.is_ascii_digit() {
                    out.push(if seen + 3 >= digits { c } else { '*' });
                    seen += 1;
                } else {
                    out.push(c);
                }
            }
        } else {
            out.extend(run);
        }
        i = end;
    }
    out
}

fn notification_text(n: &Notification) -> String {
    let deadline = n
        .deadline
        .with_timezone(&aduan_core::time::display_offset())
        .format("%d-%m-%Y %H.%M (UTC%:z)");
    let mut text = format!(
        "Yth. {opd},\n\n\
         Aduan berikut didisposisikan kepada {opd}. Mohon ditanggapi paling lambat {deadline}.\n\n\
         Kode     : {code}\n\
         Kanal    : {channel}\n",
        opd = n.opd_name,
        code = n.code,
        channel = n.channel,
    );
    if let Some(place) = &n.place {
        text.push_str(&format!("Lokasi   : {}\n", mask_numbers(place)));
    }
    text.push_str(&format!(
        "Pelapor  : {}\nTenggat  : {deadline}\n",
        n.reporter.as_deref().map_or_else(|| "(anonim)".to_owned(), mask_name)
    ));
    if !n.attachments.is_empty() {
        text.push_str(&format!("Lampiran : {} berkas\n", n.attachments.len()));
    }
    text.push_str(&format!(
        "\nIsi aduan:\n{}\n\n\
         Untuk menanggapi, balas email ini. Tanggapan Anda dicatat pada aduan {code} dan \
         diteruskan kepada pelapor. Tulis tanggapan di atas kutipan dan jangan ubah kode \
         [{code}] pada subjek.\n",
        mask_numbers(n.complaint.trim()),
        code = n.code,
    ));
    text
}

#[cfg(test)]
mod tests {
    use aduan_core::Identity;
    use expect_test::expect;

    use super::*;

    fn composer() -> Composer {
        Composer {
            from: "Lapak Aduan <intake@aduan.test>".parse().unwrap(),
            reply_key: Some(ReplyKey::new(b"compose-test-secret-0123").unwrap()),
        }
    }

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_776_650_000)
    }

    fn code() -> TicketCode {
        "ADU-7K3M9QXP".parse().unwrap()
    }

    fn item(purpose: Purpose, refs: &[&str]) -> OutboxItem {
        OutboxItem {
            id: 1,
            ticket: code(),
            channel: Channel::Email,
            recipient: Identity::email("siti@example.id").unwrap(),
            text: "Terima kasih, aduan Anda sudah kami terima dengan kode ADU-7K3M9QXP.".into(),
            purpose,
            attempts: 1,
            thread_refs: refs.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn headers(m: &Message) -> String {
        let raw = String::from_utf8(m.formatted()).unwrap();
        raw.split("\r\n\r\n").next().unwrap().replace("\r\n", "\n")
    }

    #[test]
    fn a_receipt_threads_under_the_residents_mail_and_says_it_is_automatic() {
        let out = composer()
            .outbox_mail(
                &item(Purpose::Ack, &["r2@example.id", "sha256:ab", "first@example.id"]),
                [1; 8],
                at(),
            )
            .unwrap();
        assert_eq!(out.message_id, "aduan.adu-7k3m9qxp.0101010101010101@aduan.test");
        expect![[r#"
            From: "Lapak Aduan" <intake@aduan.test>
            To: siti@example.id
            Date: Mon, 20 Apr 2026 01:53:20 +0000
            Message-ID: <aduan.adu-7k3m9qxp.0101010101010101@aduan.test>
            X-Auto-Response-Suppress: All
            In-Reply-To: <r2@example.id>
            References: <first@example.id> <r2@example.id>
            Auto-Submitted: auto-replied
            Subject: Re: [ADU-7K3M9QXP] Aduan Anda sudah kami terima
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: quoted-printable"#]]
        .assert_eq(&headers(&out.message));
    }

    #[test]
    fn an_officials_notice_stands_alone_and_is_answered_to_the_intake_address() {
        let mut notice = item(Purpose::Disposition, &["r2@example.id"]);
        notice.recipient = Identity::email("dpu@banyumaskab.go.id").unwrap();
        let out = composer().outbox_mail(&notice, [3; 8], at()).unwrap();
        let h = headers(&out.message);
        assert!(!h.contains("In-Reply-To"), "{h}");
        // Answered to our address with the reply token of this ticket and this official.
        let key = composer().reply_key.unwrap();
        let token = key.token(code(), Recipient::Official("dpu@banyumaskab.go.id"));
        assert!(
            h.contains(&format!("Reply-To: \"Lapak Aduan\" <intake+{token}@aduan.test>")),
            "{h}"
        );
        let other = key.token(code(), Recipient::Official("dlh@banyumaskab.go.id"));
        assert_ne!(token, other);
        assert!(h.contains("Auto-Submitted: auto-generated"), "{h}");
        assert!(h.contains("Subject: [ADU-7K3M9QXP] Aduan untuk ditindaklanjuti"), "{h}");
        let raw = String::from_utf8(out.message.formatted()).unwrap();
        assert!(!raw.contains("menambahkan keterangan"), "{raw}");
    }

    #[test]
    fn a_too_large_mail_gets_a_short_automatic_answer() {
        let m = composer()
            .too_large_mail(
                "siti@example.id",
                Some("big@example.id"),
                25 * 1024 * 1024,
                [4; 8],
                at(),
            )
            .unwrap();
        let h = headers(&m);
        assert!(h.contains("Auto-Submitted: auto-replied"), "{h}");
        assert!(h.contains("In-Reply-To: <big@example.id>"), "{h}");
        let raw = String::from_utf8(m.formatted()).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert!(parsed.body_text(0).unwrap().contains("lebih besar dari 25 MB"));
    }

    #[test]
    fn a_persons_answer_is_not_marked_automatic() {
        let out = composer().outbox_mail(&item(Purpose::Reply, &[]), [2; 8], at()).unwrap();
        let h = headers(&out.message);
        assert!(!h.contains("Auto-Submitted"), "{h}");
        assert!(!h.contains("In-Reply-To"), "{h}");
        assert!(h.contains("Subject: [ADU-7K3M9QXP] Tanggapan atas aduan Anda"), "{h}");
        let body = String::from_utf8(out.message.formatted()).unwrap();
        assert!(body.contains("Kode aduan: ADU-7K3M9QXP"), "{body}");
    }

    #[test]
    fn a_bad_recipient_is_refused() {
        let mut bad = item(Purpose::Reply, &[]);
        bad.recipient =
            Identity { kind: aduan_core::IdentityKind::Email, value: "not an address".into() };
        assert!(matches!(
            composer().outbox_mail(&bad, [0; 8], at()),
            Err(ComposeError::BadRecipient(_))
        ));
    }

    #[test]
    fn officials_get_the_complaint_with_the_reporter_masked() {
        let n = Notification {
            code: code(),
            to: vec!["kepala.dpu@example.go.id".into()],
            opd_code: "DPU".into(),
            opd_name: "Dinas Pekerjaan Umum".into(),
            complaint: "Jalan berlubang di depan SD 1 Karangklesem, hubungi saya di 0812-3456-7890 (NIK 3302123456780001).".into(),
            channel: Channel::Email,
            place: Some("-7.4246, 109.2396".into()),
            deadline: chrono::DateTime::from_timestamp(1_776_736_400, 0).unwrap(),
            reporter: Some("Siti Aminah".into()),
            attachments: vec![FileAttachment {
                filename: "foto.jpg".into(),
                content_type: "image/jpeg".into(),
                data: vec![0xff, 0xd8, 0xff],
            }],
            thread_refs: vec![],
        };
        let out = composer().notification_mail(&n, [3; 8], at()).unwrap();
        let raw = String::from_utf8(out.message.formatted()).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(
            parsed.subject(),
            Some(
                "[ADU-7K3M9QXP] Aduan untuk DPU: Jalan berlubang di depan SD 1 Karangklesem, hubungi saya di …"
            )
        );
        // Answered to our address with the reply token of this ticket and OPD.
        let key = composer().reply_key.unwrap();
        let token = key.token(code(), Recipient::Opd("DPU"));
        assert_eq!(
            parsed.reply_to().and_then(|r| r.first()).and_then(|a| a.address()),
            Some(format!("intake+{token}@aduan.test").as_str())
        );
        assert_eq!(parsed.header_raw("Auto-Submitted").map(str::trim), Some("auto-generated"));
        assert_eq!(parsed.attachment_count(), 1);
        expect![[r#"
            Yth. Dinas Pekerjaan Umum,

            Aduan berikut didisposisikan kepada Dinas Pekerjaan Umum. Mohon ditanggapi paling lambat 21-04-2026 08.53 (UTC+07:00).

            Kode     : ADU-7K3M9QXP
            Kanal    : email
            Lokasi   : -7.4246, 109.2396
            Pelapor  : S*** A***
            Tenggat  : 21-04-2026 08.53 (UTC+07:00)
            Lampiran : 1 berkas

            Isi aduan:
            Jalan berlubang di depan SD 1 Karangklesem, hubungi saya di ****-****-*890 (NIK *************001).

            Untuk menanggapi, balas email ini. Tanggapan Anda dicatat pada aduan ADU-7K3M9QXP dan diteruskan kepada pelapor. Tulis tanggapan di atas kutipan dan jangan ubah kode [ADU-7K3M9QXP] pada subjek.
        "#]]
        .assert_eq(&parsed.body_text(0).unwrap().replace("\r\n", "\n"));
    }

    #[test]
    fn numbers_that_identify_people_are_masked_and_dates_are_not() {
        assert_eq!(mask_numbers("+62 812 3456 7890"), "+** *** **** *890");
        assert_eq!(mask_numbers("NIK 3302123456780001."), "NIK *************001.");
        assert_eq!(mask_numbers("20-04-2026 10.00, RT 3 RW 12"), "20-04-2026 10.00, RT 3 RW 12");
        assert_eq!(mask_numbers("Rp 1.500.000"), "Rp 1.500.000");
        assert_eq!(mask_name("  Siti   Aminah "), "S*** A***");
        assert_eq!(mask_name(""), "(tanpa nama)");
        assert_eq!(summary("\n\n  Lampu mati  \nlagi"), "Lampu mati");
    }
}
