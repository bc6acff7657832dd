//! Which mails are written by machines: bounces, delivery warnings, auto-replies,
//! challenge-responses, list and bulk mail, reports (ARF abuse reports, read receipts),
//! notification senders, and our own messages. None of them opens a ticket, keeps a sender
//! identity, or gets an answer (RFC 3834 §2); the poller moves them to
//! `[channels.email] automated_mailbox` (never deleted), and a bounce of one of our mails
//! marks that outbox row failed (`Store::outbox_bounced`) and joins its ticket with
//! [`crate::parse::BOUNCE_NOTE`] as its first line.
//!
//! [`classify`] checks layered signals, strongest first (see its docs); the heuristics for
//! mail systems that send no standard signal are tables ([`SUBJECT_STARTS`],
//! [`BODY_PHRASES`], [`CHALLENGE_HEADERS`], and the address table of
//! [`aduan_core::machine`], which the store's outbound guard shares). A DSN is read with
//! mail-parser (`multipart/report`, `message/delivery-status` `Action:` lines): `mail-auth`
//! would read ARF and DSN too, but its releases follow mail-parser 1.x (rustc 1.98) and pull
//! in a DNS resolver and a crypto backend, for what is here a header and a few lines.
//!
//! Near the boundary a person wins: subject and text heuristics are skipped on a reply or a
//! forward (`Re:`, `Fwd:`…) unless the subject itself names a failed delivery, the text is
//! read only above the first quote or forward marker, and a weak class (bulk, list) that
//! replies into a resident's thread is taken as the resident's (`poll::heard_in_thread`).
//! Plain spam carries none of these signals: [`crate::spam`] takes the mail server's
//! filter's verdict, else scores the mail with a small rule table, last of all.
//!
//! Cost: header signals come first and end the classification when one fires; only a mail
//! that none classified has its text read, lower-cased once (at most
//! [`crate::spam::SCAN_BYTES`]) and shared by the text heuristics and the spam rules.

use mail_parser::{Message, MimeHeaders, PartType};

/// Why a mail counts as automated: its class. The `Display` form is stable (golden files,
/// logs, the bench's per-class counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Automated {
    /// A delivery status notification or a mailer daemon's message: the mail failed.
    Bounce,
    /// A DSN or daemon's message that says the mail is only delayed (`Action: delayed`).
    DeliveryWarning,
    /// `Auto-Submitted` other than `no`.
    AutoSubmitted,
    /// `X-Autoreply`, `X-Autorespond`, or an out-of-office subject or text.
    AutoReply,
    /// A challenge-response system asking the sender to prove they are a person.
    ChallengeResponse,
    /// `Precedence`/`X-Precedence` `bulk`, `junk` or `list`.
    Bulk,
    /// `List-Id`, `List-Unsubscribe` or another `List-*` header.
    MailingList,
    /// A read receipt or an abuse (ARF) report.
    Report,
    /// From an address that never reads replies (`no-reply@…`) or a well-known
    /// notification sender (see [`aduan_core::machine`]).
    Notification,
    /// `Return-Path: <>`: a null sender, as automatic mail uses.
    NullSender,
    /// From one of our own addresses, or carrying one of our Message-IDs.
    OwnMessage,
    /// Spam: the mail server's filter says so, or the rules of [`crate::spam`] do.
    Spam,
}

impl Automated {
    pub const ALL: [Automated; 12] = [
        Automated::Bounce,
        Automated::DeliveryWarning,
        Automated::AutoSubmitted,
        Automated::AutoReply,
        Automated::ChallengeResponse,
        Automated::Bulk,
        Automated::MailingList,
        Automated::Report,
        Automated::Notification,
        Automated::NullSender,
        Automated::OwnMessage,
        Automated::Spam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Automated::Bounce => "bounce",
            Automated::DeliveryWarning => "delivery-warning",
            Automated::AutoSubmitted => "auto-submitted",
            Automated::AutoReply => "auto-reply",
            Automated::ChallengeResponse => "challenge-response",
            Automated::Bulk => "bulk",
            Automated::MailingList => "mailing-list",
            Automated::Report => "report",
            Automated::Notification => "notification",
            Automated::NullSender => "null-sender",
            Automated::OwnMessage => "own-message",
            Automated::Spam => "spam",
        }
    }

    /// A class that a person's mail can carry too (list software and bulk senders add
    /// these headers to what people write): a mail of such a class that replies into a
    /// resident's thread is taken as the resident's (see `poll`).
    pub fn is_weak(self) -> bool {
        matches!(self, Automated::Bulk | Automated::MailingList)
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

/// Whether a header's name starts with `prefix` (ASCII, any case), without allocating.
fn has_header(msg: &Message<'_>, prefix: &str) -> bool {
    msg.headers().iter().any(|h| {
        h.name()
            .as_bytes()
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
    })
}

/// The report type of a top-level `multipart/report`.
fn report_type(msg: &Message<'_>) -> Option<String> {
    let ct = msg.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"));
    is_report.then(|| ct.attribute("report-type").unwrap_or("").to_ascii_lowercase())
}

/// The `message/delivery-status` parts (some bounces wrap them in something other than a
/// top-level `multipart/report`).
fn delivery_status_parts<'a>(msg: &'a Message<'a>) -> impl Iterator<Item = &'a [u8]> + 'a {
    msg.parts
        .iter()
        .filter(|p| {
            p.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("message")
                    && ct.subtype().is_some_and(|s| {
                        s.eq_ignore_ascii_case("delivery-status")
                            || s.eq_ignore_ascii_case("global-delivery-status")
                    })
            })
        })
        .map(|p| p.contents())
}

/// Whether every `Action:` of the delivery-status parts is `delayed` (a warning, the mail
/// is still being retried). `None` when there is no delivery-status part.
fn only_delayed(msg: &Message<'_>) -> Option<bool> {
    let mut any_part = false;
    let (mut delayed, mut other) = (false, false);
    for part in delivery_status_parts(msg) {
        any_part = true;
        for line in String::from_utf8_lossy(part).lines() {
            let Some((name, value)) = line.split_once(':') else { continue };
            if name.trim().eq_ignore_ascii_case("action") {
                if value.trim().eq_ignore_ascii_case("delayed") {
                    delayed = true;
                } else {
                    other = true;
                }
            }
        }
    }
    any_part.then_some(delayed && !other)
}

fn local_part(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(l, _)| l)
}

/// The From address, lower-cased.
pub(crate) fn from_address(msg: &Message<'_>) -> Option<String> {
    msg.from()?.first()?.address().map(|a| a.trim().to_lowercase())
}

/// Whether a (normalised) local part is a mail system's own: its messages are bounces.
fn daemon_local_part(local: &str) -> bool {
    let l: String = local.chars().filter(|c| !matches!(c, '.' | '-' | '_')).collect();
    ["mailerdaemon", "postmaster", "mailerdeamon", "maildaemon", "mmdf"]
        .iter()
        .any(|d| l.starts_with(d))
}

/// Headers only challenge-response systems send.
const CHALLENGE_HEADERS: &[&str] =
    &["X-Bluebottle-Request", "X-Boxbe-Challenge", "X-Spamarrest-Challenge", "X-Tmda-Confirm"];

/// Subject beginnings (lower case) and the class they mean. Checked only on a subject
/// that isn't a person's reply or forward (`Re:`, `Fwd:`…), so a resident forwarding a
/// bounce is still heard.
const SUBJECT_STARTS: &[(&str, Automated)] = &[
    ("automatic reply:", Automated::AutoReply),
    ("auto reply:", Automated::AutoReply),
    ("auto-reply:", Automated::AutoReply),
    ("autoreply:", Automated::AutoReply),
    ("auto:", Automated::AutoReply),
    ("out of office", Automated::AutoReply),
    ("out of the office", Automated::AutoReply),
    ("abwesenheitsnotiz", Automated::AutoReply),
    ("balasan otomatis", Automated::AutoReply),
    ("jawaban otomatis", Automated::AutoReply),
    ("delayed mail", Automated::DeliveryWarning),
    ("delivery delayed", Automated::DeliveryWarning),
    ("mail delivery warning", Automated::DeliveryWarning),
    ("delivery status notification (delay)", Automated::DeliveryWarning),
    ("warning: could not send message", Automated::DeliveryWarning),
    ("warning: message", Automated::DeliveryWarning),
    ("undelivered mail", Automated::Bounce),
    ("undeliverable", Automated::Bounce),
    ("undeliverable mail", Automated::Bounce),
    ("returned mail", Automated::Bounce),
    ("mail delivery failed", Automated::Bounce),
    ("mail delivery failure", Automated::Bounce),
    ("mail delivery problem", Automated::Bounce),
    ("delivery failure", Automated::Bounce),
    ("failure delivery", Automated::Bounce),
    ("delivery notification: delivery has failed", Automated::Bounce),
    ("delivery status notification", Automated::Bounce),
    ("failure notice", Automated::Bounce),
    ("non delivery report", Automated::Bounce),
    ("non-delivery report", Automated::Bounce),
    ("nondeliverable", Automated::Bounce),
    ("mail could not be delivered", Automated::Bounce),
    ("message could not be delivered", Automated::Bounce),
    ("mail failed, returning to sender", Automated::Bounce),
    ("mail system error", Automated::Bounce),
    ("returned to sender", Automated::Bounce),
    ("could not deliver", Automated::Bounce),
    ("permanent delivery failure", Automated::Bounce),
    ("message delivery failure", Automated::Bounce),
    ("nicht zustellbar", Automated::Bounce),
    ("gagal terkirim", Automated::Bounce),
    ("please confirm your message", Automated::ChallengeResponse),
    ("please confirm your e-mail", Automated::ChallengeResponse),
    ("verify your email to", Automated::ChallengeResponse),
];

/// Phrases (lower case) that mail systems, vacation programs and challenge-response
/// systems open their text with. Looked for only in the first lines of the mail's own text
/// (quoted and forwarded text excluded) and only when the subject is not a reply or a
/// forward, so a resident quoting a bounce is still heard.
const BODY_PHRASES: &[(&str, Automated)] = &[
    ("this is the mail system at host", Automated::Bounce),
    ("this is the qmail-send program", Automated::Bounce),
    ("this message was created automatically by mail delivery software", Automated::Bounce),
    ("i'm afraid i wasn't able to deliver your message", Automated::Bounce),
    ("a message that you sent could not be delivered", Automated::Bounce),
    ("your message did not reach some or all of the intended recipients", Automated::Bounce),
    ("delivery has failed to these recipients", Automated::Bounce),
    ("delivery to the following recipient", Automated::Bounce),
    ("the following addresses had permanent fatal errors", Automated::Bounce),
    ("the original message was received at", Automated::Bounce),
    ("your message cannot be delivered to the following recipients", Automated::Bounce),
    ("your message could not be delivered", Automated::Bounce),
    ("message could not be delivered to", Automated::Bounce),
    ("could not be delivered to one or more", Automated::Bounce),
    ("was undeliverable", Automated::Bounce),
    ("your document:", Automated::Bounce),
    ("delivery failure:", Automated::Bounce),
    ("mail delivery failed", Automated::Bounce),
    ("unable to deliver your message", Automated::Bounce),
    ("message delivery has failed", Automated::Bounce),
    ("this is an automatically generated delivery status notification", Automated::Bounce),
    ("dma: ", Automated::Bounce),
    ("dragonfly mail agent", Automated::Bounce),
    ("returned mail:", Automated::Bounce),
    ("i am out of the office", Automated::AutoReply),
    ("i'm out of the office", Automated::AutoReply),
    ("i will be out of the office", Automated::AutoReply),
    ("this is an automated response", Automated::AutoReply),
    ("this is an automatic reply", Automated::AutoReply),
    ("this is an automated reply", Automated::AutoReply),
    ("this account is protected by bluebottle", Automated::ChallengeResponse),
    ("boxbe", Automated::ChallengeResponse),
    ("please verify that you are a real person", Automated::ChallengeResponse),
];

/// Words of a subject that says a delivery failed, anywhere in it.
const SUBJECT_FAILURE_WORDS: &[&str] =
    &["could not be delivered", "delivery failed", "undeliverable", "non remis"];

/// The prefixes of a person's reply or forward.
fn reply_or_forward(subject: &str) -> bool {
    ["re:", "fw:", "fwd:", "aw:", "wg:", "tr:", "balas:", "terusan:"]
        .iter()
        .any(|p| subject.starts_with(p))
}

/// The class the first lines of the mail's own text (before any quote or forward marker)
/// suggest. `text` is lower-cased already.
fn body_signal(text: &str) -> Option<Automated> {
    let mut seen = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('>')
            || line.contains("forwarded message")
            || line.contains("original message")
            || line.contains("pesan asli")
            || line.contains("pesan terusan")
            || line.ends_with("wrote:")
            || line.ends_with("menulis:")
        {
            return None;
        }
        if let Some((_, class)) = BODY_PHRASES.iter().find(|(p, _)| line.contains(p)) {
            return Some(*class);
        }
        seen += 1;
        if seen >= 12 {
            return None;
        }
    }
    None
}

/// Decides whether `msg` is automated, and its class. `own` are our addresses (lower case)
/// and `own_id` tells our Message-IDs.
///
/// The signals, strongest first; the first that fires names the class:
/// 1. a DSN (`multipart/report; report-type=delivery-status` or a `message/delivery-status`
///    part, `Action: delayed` only → a warning), `X-Failed-Recipients`, or a mail system's
///    sender (`mailer-daemon`, `postmaster`, "Mail Delivery System");
/// 2. other `multipart/report`s (ARF feedback reports, read receipts);
/// 3. challenge-response headers; `Auto-Submitted` ≠ `no`; `X-Autoreply`/`X-Autorespond`;
/// 4. `Precedence: bulk|junk|list`, `List-*` (weak: see [`Automated::is_weak`]);
/// 5. our own address or Message-ID;
/// 6. a sender that never reads replies ([`aduan_core::machine`]);
/// 7. the spam filter's verdict ([`crate::spam::filter_verdict`]);
/// 8. the subject ([`SUBJECT_STARTS`]) and the first lines of the text ([`BODY_PHRASES`]),
///    for mail systems that send none of the above (qmail, Exchange, Domino, DMA…);
/// 9. a null reverse path (`Return-Path: <>`);
/// 10. the spam rules ([`crate::spam::is_spam`]), on a mail nothing else classified.
pub fn classify(
    msg: &Message<'_>,
    own: &[String],
    own_id: &dyn Fn(&str) -> bool,
) -> Option<Automated> {
    let from = from_address(msg);
    let daemon = from.as_deref().map(local_part).is_some_and(daemon_local_part)
        || (from.is_none()
            // The raw header: some daemons write a From that mail-parser can't read.
            && msg.header_raw("From").is_some_and(|raw| {
                let raw = raw.to_ascii_lowercase();
                raw.contains("mailer-daemon") || raw.contains("postmaster")
            }))
        || msg.from().and_then(|a| a.first()).and_then(|a| a.name()).is_some_and(|name| {
            let name = name.to_lowercase();
            name.contains("mail delivery")
                || name.contains("mailer-daemon")
                || name.contains("mailer daemon")
        });
    let subject = msg.subject().map(|s| s.trim().to_lowercase()).unwrap_or_default();
    let subject_class = if reply_or_forward(&subject) {
        None
    } else {
        SUBJECT_STARTS.iter().find(|(p, _)| subject.starts_with(p)).map(|(_, c)| *c).or_else(|| {
            // `Your message to … could not be delivered.`
            SUBJECT_FAILURE_WORDS.iter().any(|w| subject.contains(w)).then_some(Automated::Bounce)
        })
    };

    // 1. Delivery reports.
    let report = report_type(msg);
    let delayed = only_delayed(msg);
    if report.as_deref() == Some("delivery-status")
        || delayed.is_some()
        || daemon
        || msg.header_raw("X-Failed-Recipients").is_some()
    {
        if delayed == Some(true) || subject_class == Some(Automated::DeliveryWarning) {
            return Some(Automated::DeliveryWarning);
        }
        return Some(Automated::Bounce);
    }
    // 2. Other reports: ARF (feedback-report), MDN (disposition-notification).
    if report.is_some() {
        return Some(Automated::Report);
    }
    // 3. Auto-replies by header.
    if CHALLENGE_HEADERS.iter().any(|h| msg.header_raw(*h).is_some()) {
        return Some(Automated::ChallengeResponse);
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
    // 4. Bulk and list mail.
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
    // 5. Ours.
    if from.as_ref().is_some_and(|f| own.iter().any(|o| o == f))
        || msg.message_id().is_some_and(own_id)
    {
        return Some(Automated::OwnMessage);
    }
    // 6. Senders that never read replies.
    if from.as_deref().is_some_and(aduan_core::machine::is_machine_address) {
        return Some(Automated::Notification);
    }
    // 7. The spam filter's verdict.
    if crate::spam::filter_verdict(msg) {
        return Some(Automated::Spam);
    }
    // 8. Subject and text of mail systems without the standard signals.
    if let Some(class) = subject_class {
        return Some(class);
    }
    // From here on the text is read: once, lower-cased, shared.
    let text = msg.body_text(0).map(|t| crate::spam::lower_prefix(&t)).unwrap_or_default();
    // A reply's or forward's text counts only when its subject names a failed delivery
    // too (some MTAs answer `RE: <subject> (delivery failed)`).
    let failure_subject = SUBJECT_FAILURE_WORDS.iter().any(|w| subject.contains(w));
    if (!reply_or_forward(&subject) || failure_subject)
        && let Some(class) = body_signal(&text)
    {
        return Some(class);
    }
    // 9. A null reverse path.
    let null_sender = msg
        .header_raw("Return-Path")
        .is_some_and(|r| r.trim().trim_start_matches('<').trim_end_matches('>').trim().is_empty());
    if null_sender {
        return Some(Automated::NullSender);
    }
    // 10. The spam rules.
    if crate::spam::is_spam(&crate::spam::Facts::new(msg, &subject, &text)) {
        return Some(Automated::Spam);
    }
    None
}

/// The Message-IDs of the messages a bounce reports on: its `Original-Envelope-Id`s, those
/// of enclosed messages and header parts (`message/rfc822`, `text/rfc822-headers`), and
/// `Message-ID:` lines quoted in its text. (The VERP return path it was sent to is read by
/// the parser, which knows our domain: `message_id::verp_ids`.)
pub fn bounced_ids(msg: &Message<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    let mut push = |id: &str| {
        let id = id.trim().trim_matches(['<', '>']).trim();
        if crate::message_id::valid_id(id) && !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    };
    // The ENVID we would have given the mail (RFC 3461), in the delivery-status parts.
    for part in delivery_status_parts(msg) {
        for line in String::from_utf8_lossy(part).lines() {
            if let Some((name, value)) = line.split_once(':')
                && name.trim().eq_ignore_ascii_case("original-envelope-id")
            {
                push(&crate::message_id::xtext_decode(value.trim()));
            }
        }
    }
    // Every part, the root too: old Exim and qmail bounces are one text part that quotes
    // the returned message's headers below their own text.
    for part in &msg.parts {
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

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn class_of(headers: &str, body: &str) -> Option<Automated> {
        let raw = format!(
            "From: Siti <siti@example.id>\r\nTo: intake@aduan.test\r\nMessage-ID: <m@x>\r\n\
             {headers}\r\n{body}\r\n"
        );
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        classify(&msg, &["intake@aduan.test".to_owned()], &|id| id.starts_with("aduan."))
    }

    /// The headers and the body of a DSN whose one recipient has `action`.
    fn dsn(action: &str) -> (String, String) {
        (
            "Subject: x\r\nContent-Type: multipart/report; report-type=delivery-status; \
             boundary=\"B\"\r\n"
                .to_owned(),
            format!(
                "--B\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n\
                 --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n\
                 Final-Recipient: rfc822; a@b\r\nAction: {action}\r\nStatus: 4.4.7\r\n--B--"
            ),
        )
    }

    /// One row per signal: the headers (a `Subject:` included when the signal is the
    /// subject), the body, and the class expected.
    #[test]
    fn each_signal_names_its_class() {
        let (dsn_failed, dsn_failed_body) = dsn("failed");
        let (dsn_delayed, dsn_delayed_body) = dsn("delayed");
        let table: Vec<(&str, String, String, Option<Automated>)> = vec![
            ("null reverse path", "Return-Path: <>\r\nSubject: hi\r\n".into(), "x".into(), Some(Automated::NullSender)),
            ("DSN", dsn_failed, dsn_failed_body, Some(Automated::Bounce)),
            ("DSN delayed", dsn_delayed, dsn_delayed_body, Some(Automated::DeliveryWarning)),
            ("ARF", "Subject: x\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\r\n".into(), "--B\r\n\r\nx\r\n--B--".into(), Some(Automated::Report)),
            ("MDN", "Subject: x\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"B\"\r\n".into(), "--B\r\n\r\nx\r\n--B--".into(), Some(Automated::Report)),
            ("Auto-Submitted", "Subject: x\r\nAuto-Submitted: auto-replied\r\n".into(), "x".into(), Some(Automated::AutoSubmitted)),
            ("Auto-Submitted: no", "Subject: x\r\nAuto-Submitted: no\r\n".into(), "x".into(), None),
            ("X-Autoreply", "Subject: x\r\nX-Autoreply: yes\r\n".into(), "x".into(), Some(Automated::AutoReply)),
            ("X-Autorespond", "Subject: x\r\nX-Autorespond: yes\r\n".into(), "x".into(), Some(Automated::AutoReply)),
            ("Precedence bulk", "Subject: x\r\nPrecedence: bulk\r\n".into(), "x".into(), Some(Automated::Bulk)),
            ("Precedence junk", "Subject: x\r\nPrecedence: junk\r\n".into(), "x".into(), Some(Automated::Bulk)),
            ("Precedence list", "Subject: x\r\nPrecedence: list\r\n".into(), "x".into(), Some(Automated::Bulk)),
            ("List-Id", "Subject: x\r\nList-Id: <a.b>\r\n".into(), "x".into(), Some(Automated::MailingList)),
            ("List-Unsubscribe", "Subject: x\r\nList-Unsubscribe: <mailto:u@b>\r\n".into(), "x".into(), Some(Automated::MailingList)),
            ("X-Failed-Recipients", "Subject: x\r\nX-Failed-Recipients: a@b\r\n".into(), "x".into(), Some(Automated::Bounce)),
            ("challenge header", "Subject: x\r\nX-Bluebottle-Request: <1>\r\n".into(), "x".into(), Some(Automated::ChallengeResponse)),
            ("subject bounce", "Subject: Undelivered Mail Returned to Sender\r\n".into(), "x".into(), Some(Automated::Bounce)),
            ("subject warning", "Subject: Delayed Mail (still being retried)\r\n".into(), "x".into(), Some(Automated::DeliveryWarning)),
            ("subject out of office", "Subject: AUTO: Budi is out of the office\r\n".into(), "x".into(), Some(Automated::AutoReply)),
            ("qmail text", "Subject: x\r\n".into(), "Hi. This is the qmail-send program at mx.\r\nI'm afraid".into(), Some(Automated::Bounce)),
            ("Exchange text", "Subject: x\r\n".into(), "Your message did not reach some or all of the intended recipients.".into(), Some(Automated::Bounce)),
            ("Domino text", "Subject: x\r\n".into(), "Your document:\r\nwas not delivered to".into(), Some(Automated::Bounce)),
            ("vacation text", "Subject: x\r\n".into(), "I am out of the office until Monday.".into(), Some(Automated::AutoReply)),
            ("person", "Subject: Jalan rusak\r\n".into(), "Jalan di RT 3 rusak.".into(), None),
            ("filter verdict", "Subject: Jalan rusak\r\nX-Spam-Flag: YES\r\n".into(), "x".into(), Some(Automated::Spam)),
            ("spam rules", "Subject: Hey baby, check it out\r\nContent-Type: text/html\r\n".into(), "<p style=\"color:#fffffe\">x</p>Steel P@ck@ge m@nual inc1uded <a href=\"http://a.example/\">here</a> <a href=\"http://a.example/u\">opt-out</a>".into(), Some(Automated::Spam)),
            ("spam filter after a DSN", "Subject: x\r\nX-Spam-Flag: YES\r\nX-Failed-Recipients: a@b\r\n".into(), "x".into(), Some(Automated::Bounce)),
        ];
        for (name, headers, body, expected) in table {
            assert_eq!(class_of(&headers, &body), expected, "{name}");
        }
    }

    /// The sender signal: mail systems' and no-reply senders.
    #[test]
    fn senders_that_never_read_replies() {
        for (from, expected) in [
            ("MAILER-DAEMON@mx.example.org", Some(Automated::Bounce)),
            ("postmaster@example.org", Some(Automated::Bounce)),
            ("\"Mail Delivery System\" <system@example.org>", Some(Automated::Bounce)),
            ("no-reply@shop.example.com", Some(Automated::Notification)),
            ("post_master@example.jp", Some(Automated::Bounce)),
            ("staff@hotmail.com", Some(Automated::Notification)),
            ("bounce+x=y@lists.example.org", Some(Automated::Notification)),
            ("siti@example.id", None),
            ("intake@aduan.test", Some(Automated::OwnMessage)),
        ] {
            let raw = format!("From: {from}\r\nSubject: hi\r\nMessage-ID: <m@x>\r\n\r\nhalo\r\n");
            let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
            let got = classify(&msg, &["intake@aduan.test".to_owned()], &|_| false);
            assert_eq!(got, expected, "{from}");
        }
    }

    /// Human mail near the boundary stays human.
    #[test]
    fn people_near_the_boundary_are_heard() {
        // A resident forwards a bounce they got: the subject is a forward, the text theirs.
        let fwd = class_of(
            "Subject: Fwd: Undelivered Mail Returned to Sender\r\n",
            "Pak, email saya ke dinas ditolak, mohon dibantu.\r\n\r\n\
             ---------- Forwarded message ---------\r\nThis is the mail system at host mx.",
        );
        assert_eq!(fwd, None, "a forwarded bounce");
        // A reply that quotes a bounce.
        let quoted = class_of(
            "Subject: Re: Aduan jalan\r\n",
            "Alamat saya yang benar siti@example.id.\r\n\r\n> This is the mail system at host mx.\r\n\
             > I'm afraid I wasn't able to deliver your message",
        );
        assert_eq!(quoted, None, "a reply quoting a bounce");
        // A complaint forwarded by a person, with the machine text far below their own.
        let forwarded = class_of(
            "Subject: Fwd: keluhan warga\r\n",
            "Diteruskan dari tetangga saya.\r\n\r\n-----Original Message-----\r\n\
             Your message could not be delivered",
        );
        assert_eq!(forwarded, None, "a complaint forwarded by a person");
        // A resident with an auto-signature ("sent from my phone", a disclaimer).
        let signed = class_of(
            "Subject: Sampah menumpuk\r\n",
            "Sampah di pasar menumpuk sejak Senin.\r\n\r\n-- \r\nDikirim dari ponsel saya\r\n\
             This email and any attachments are confidential.",
        );
        assert_eq!(signed, None, "an auto-signature");
        // A complaint about a parcel: "not delivered" in a person's words.
        let parcel = class_of(
            "Subject: Paket tidak sampai\r\n",
            "The package was not delivered to my house, kantor pos tutup.",
        );
        assert_eq!(parcel, None, "a person's 'not delivered'");
    }
}
