//! Which mails are written by machines: bounces, auto-replies, list mail, reports and our
//! own messages. None of them opens a ticket or gets an acknowledgement (RFC 3834 §2).

use mail_parser::{Message, MimeHeaders, PartType};

/// Why a mail counts as automated. The `Display` form is stable (golden files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Automated {
    /// A delivery status notification or a mailer daemon's message.
    Bounce,
    /// `Auto-Submitted` other than `no`.
    AutoSubmitted,
    /// `X-Autoreply`, `X-Autorespond` or an out-of-office subject.
    AutoReply,
    /// `Precedence`/`X-Precedence` `bulk`, `junk` or `list`.
    Bulk,
    /// `List-Id`, `List-Unsubscribe` or another `List-*` header.
    MailingList,
    /// A read receipt or an abuse (ARF) report.
    Report,
    /// `Return-Path: <>`: a null sender, as automatic mail uses.
    NullSender,
    /// From one of our own addresses, or carrying one of our Message-IDs.
    OwnMessage,
}

impl Automated {
    pub fn as_str(self) -> &'static str {
        match self {
            Automated::Bounce => "bounce",
            Automated::AutoSubmitted => "auto-submitted",
            Automated::AutoReply => "auto-reply",
            Automated::Bulk => "bulk",
            Automated::MailingList => "mailing-list",
            Automated::Report => "report",
            Automated::NullSender => "null-sender",
            Automated::OwnMessage => "own-message",
        }
    }
}

impl std::fmt::Display for Automated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text of a header that mail-parser keeps raw or as text, trimmed and lower-cased.
fn header_text(msg: &Message<'_>, name: &str) -> Option<String> {
    let value = msg.header_raw(name)?;
    Some(value.trim().to_ascii_lowercase())
}

fn has_header(msg: &Message<'_>, prefix: &str) -> bool {
    msg.headers().iter().any(|h| h.name().to_ascii_lowercase().starts_with(prefix))
}

/// The report type of a top-level `multipart/report`.
fn report_type(msg: &Message<'_>) -> Option<String> {
    let ct = msg.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"));
    is_report.then(|| ct.attribute("report-type").unwrap_or("").to_ascii_lowercase())
}

/// Whether the message contains a `message/delivery-status` part (some bounces wrap it
/// in something other than a top-level `multipart/report`).
fn has_delivery_status(msg: &Message<'_>) -> bool {
    msg.parts.iter().any(|p| {
        p.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct.subtype().is_some_and(|s| {
                    s.eq_ignore_ascii_case("delivery-status")
                        || s.eq_ignore_ascii_case("global-delivery-status")
                })
        })
    })
}

fn local_part(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(l, _)| l)
}

/// The From address, lower-cased.
pub(crate) fn from_address(msg: &Message<'_>) -> Option<String> {
    msg.from()?.first()?.address().map(|a| a.trim().to_lowercase())
}

/// Decides whether `msg` is automated. `own` are our addresses (lower case) and
/// `own_id` tells our Message-IDs.
pub fn classify(
    msg: &Message<'_>,
    own: &[String],
    own_id: &dyn Fn(&str) -> bool,
) -> Option<Automated> {
    let from = from_address(msg);
    let daemon = from.as_deref().map(local_part).is_some_and(|l| {
        l.eq_ignore_ascii_case("mailer-daemon") || l.eq_ignore_ascii_case("postmaster")
    });
    let report = report_type(msg);
    if report.as_deref() == Some("delivery-status")
        || has_delivery_status(msg)
        || daemon
        || msg.header_raw("X-Failed-Recipients").is_some()
    {
        return Some(Automated::Bounce);
    }
    if report.is_some() {
        return Some(Automated::Report);
    }
    if let Some(v) = header_text(msg, "Auto-Submitted")
        && v.split(';').next().is_some_and(|v| v.trim() != "no")
    {
        return Some(Automated::AutoSubmitted);
    }
    if msg.header_raw("X-Autoreply").is_some()
        || msg.header_raw("X-Autorespond").is_some()
        || msg.header_raw("X-Autoresponder").is_some()
    {
        return Some(Automated::AutoReply);
    }
    for name in ["Precedence", "X-Precedence"] {
        if let Some(v) = header_text(msg, name)
            && matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply")
        {
            return Some(Automated::Bulk);
        }
    }
    if has_header(msg, "list-") {
        return Some(Automated::MailingList);
    }
    if from.as_ref().is_some_and(|f| own.iter().any(|o| o == f))
        || msg.message_id().is_some_and(own_id)
    {
        return Some(Automated::OwnMessage);
    }
    if let Some(subject) = msg.subject() {
        let s = subject.trim().to_lowercase();
        const OUT_OF_OFFICE: &[&str] = &[
            "automatic reply:",
            "auto reply:",
            "autoreply:",
            "out of office:",
            "out of the office:",
            "balasan otomatis:",
            "jawaban otomatis:",
        ];
        if OUT_OF_OFFICE.iter().any(|p| s.starts_with(p)) {
            return Some(Automated::AutoReply);
        }
    }
    let null_sender = msg
        .header_raw("Return-Path")
        .is_some_and(|r| r.trim().trim_start_matches('<').trim_end_matches('>').trim().is_empty());
    if null_sender {
        return Some(Automated::NullSender);
    }
    None
}

/// The Message-IDs of the messages a bounce reports on: those of enclosed messages and
/// header parts (`message/rfc822`, `text/rfc822-headers`), and `Message-ID:` lines quoted
/// in its text.
pub fn bounced_ids(msg: &Message<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    let mut push = |id: &str| {
        let id = id.trim().trim_matches(['<', '>']).trim();
        if crate::message_id::valid_id(id) && !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    };
    for part in msg.parts.iter().skip(1) {
        match &part.body {
            PartType::Message(inner) => {
                if let Some(id) = inner.message_id() {
                    push(id);
                }
            }
            PartType::Text(_) | PartType::Binary(_) | PartType::InlineBinary(_)
                if part.content_type().is_some_and(|ct| {
                    ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
                }) =>
            {
                let text: &str = match &part.body {
                    PartType::Text(t) => t,
                    _ => std::str::from_utf8(part.contents()).unwrap_or(""),
                };
                scan_ids(text, &mut push);
            }
            PartType::Text(text) => scan_ids(text, &mut push),
            _ => {}
        }
    }
    ids
}

/// Feeds the ids of `Message-ID:` lines in `text` to `push`.
fn scan_ids(text: &str, push: &mut impl FnMut(&str)) {
    for line in text.lines() {
        let line = line.trim_start_matches(['>', ' ']);
        if line.len() > 11 && line.as_bytes()[..11].eq_ignore_ascii_case(b"message-id:") {
            push(&line[11..]);
        }
    }
}
