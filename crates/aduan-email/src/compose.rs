//! Outbound mails, built without IO: answers and receipts to residents and notices to
//! officials (each from a claimed outbox row; the routing worker writes the officials'
//! notices with `aduan_routing::notify`, which also masks personal data for them).
//!
//! Every mail carries our own `Message-ID` (`<aduan.<code>.<random>@<domain>>`, returned so
//! the outbox can record it and replies thread back), `In-Reply-To`/`References` built from
//! the ticket's stored ids, the tracking code in the subject (`[ADU-…]`), and
//! `X-Auto-Response-Suppress: All`; automatic ones (every purpose but a person's reply)
//! also `Auto-Submitted: auto-replied` / `auto-generated` (RFC 3834).

use std::time::SystemTime;

use aduan_core::{Purpose, TicketCode};
use aduan_store::OutboxItem;
use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};

use crate::message_id::{OWN_ID_PREFIX, valid_id, verp_sender};
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
        Purpose::ConfirmRequest => "Apakah masalahnya sudah beres?",
        Purpose::FollowUp => "Keterangan tambahan dari pelapor",
        // Not about its anchor ticket: no code, so a reply is never that ticket's answer.
        Purpose::Digest => return "Ringkasan harian aduan".to_owned(),
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
        // VERP: the return path names this mail (see `message_id::VERP_TAG`).
        let verp = verp_sender(self.from.email.user(), self.from.email.domain(), &id)
            .and_then(|s| s.parse::<lettre::Address>().ok())
            .and_then(|s| lettre::address::Envelope::new(Some(s), vec![to.email.clone()]).ok());
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .date(now)
            .message_id(Some(format!("<{id}>")))
            .raw_header(header("X-Auto-Response-Suppress", "All"));
        if let Some(envelope) = verp {
            builder = builder.envelope(envelope);
        }
        let mut subject = subject_for(item.purpose, item.ticket);
        if item.purpose.is_internal() {
            // To officials: a mail of its own (not threaded under the resident's mails),
            // answered to our intake address with the reply token of this ticket and this
            // official, and the code in the subject.
            let reply_to = if item.purpose == Purpose::Digest {
                self.from.clone()
            } else {
                self.reply_to(item.ticket, Recipient::Official(&item.recipient.value))
            };
            builder =
                builder.reply_to(reply_to).raw_header(header("Auto-Submitted", "auto-generated"));
        } else {
            if let Some((in_reply_to, references)) = threading(&item.thread_refs) {
                builder = builder.in_reply_to(in_reply_to).references(references);
                subject = format!("Re: {subject}");
            }
            if item.purpose.is_automatic() {
                builder = builder.raw_header(header("Auto-Submitted", "auto-replied"));
            }
        }
        let body = if item.purpose == Purpose::Digest {
            item.text.clone()
        } else if item.purpose.is_internal() {
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

#[cfg(test)]
mod tests {
    use aduan_core::{Channel, Identity};
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
        // The return path names the mail (VERP), on the From's domain; the header From
        // and the recipient stay as they were.
        let envelope = out.message.envelope();
        assert_eq!(
            envelope.from().map(ToString::to_string).as_deref(),
            Some("intake+b.adu-7k3m9qxp.0101010101010101@aduan.test")
        );
        assert_eq!(
            envelope.to().iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["siti@example.id"]
        );
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
}
