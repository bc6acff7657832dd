//! Spam: mail written by machines for people who never asked for it, with none of the
//! signals of [`crate::classify`] (no DSN, no auto-reply header, no list header, a
//! person-like sender). Two layers, each enough on its own:
//!
//! 1. **The verdict of the mail server's filter** ([`filter_verdict`]), when it left one:
//!    SpamAssassin's `X-Spam-Flag: YES` / `X-Spam-Status: Yes, …`, rspamd's `X-Spam: yes`
//!    / `X-Spamd-Result: default: True […]`, Exchange's `X-MS-Exchange-Organization-SCL`
//!    of 5 or more. The filter sees what we don't (DNS block lists, Bayes, reputation), so
//!    its word is taken as it is. A sender can write these headers into their own mail,
//!    but only to their own harm.
//! 2. **A small scored rule set** in SpamAssassin's spirit ([`RULES`], [`score`]), for an
//!    intake mailbox behind no filter: each rule looks at one property of the mail and
//!    adds its points; [`THRESHOLD`] points or more is spam. No single rule reaches the
//!    threshold, and the phrase table is capped below it, so a complaint *about* spam
//!    (a resident quoting a gambling site's advert) needs two more independent oddities
//!    to be taken for it. Every human mail fixture of the project is checked against the
//!    rules (`tests/automated.rs`).
//!
//! Spam goes to `automated_mailbox` like every other class: no ticket, no answer, and an
//! operator can look at it there. It is not a weak class ([`crate::Automated::is_weak`]):
//! its attachments are never written to the attachment store, and a reply into a
//! resident's thread does not rescue it (a resident's reply would need two oddities of
//! spam on top of being HTML-only with a photo to reach the threshold).
//!
//! Cost: the rules run only on a mail that no header signal classified; they share one
//! lower-cased copy of the first [`SCAN_BYTES`] of the text and of the HTML ([`Facts`]).

use mail_parser::{Message, MimeHeaders, PartType};

/// Points from which a mail is spam.
pub const THRESHOLD: f32 = 5.0;
/// How much of the text and of the HTML the rules read.
pub const SCAN_BYTES: usize = 32 * 1024;
/// The most points the phrase table gives (below [`THRESHOLD`]).
pub const PHRASES_CAP: f32 = 3.0;
const _: () = assert!(PHRASES_CAP < THRESHOLD);

/// Whether the mail server's spam filter marked the mail as spam.
pub fn filter_verdict(msg: &Message<'_>) -> bool {
    let starts_yes =
        |v: &str| v.trim_start().get(..3).is_some_and(|y| y.eq_ignore_ascii_case("yes"));
    if msg.header_raw("X-Spam-Flag").is_some_and(starts_yes)
        || msg.header_raw("X-Spam-Status").is_some_and(starts_yes)
        || msg.header_raw("X-Spam").is_some_and(starts_yes)
    {
        return true;
    }
    // rspamd: `default: True [12.50 / 15.00]; SYMBOL(1.0)[…]`.
    if let Some(v) = msg.header_raw("X-Spamd-Result") {
        let v = v.trim_start();
        if let Some(rest) =
            v.get(..8).filter(|p| p.eq_ignore_ascii_case("default:")).map(|_| &v[8..])
            && rest.trim_start().get(..4).is_some_and(|t| t.eq_ignore_ascii_case("true"))
        {
            return true;
        }
    }
    // Exchange's spam confidence level: 5 and above is junk.
    msg.header_raw("X-MS-Exchange-Organization-SCL")
        .and_then(|v| v.trim().parse::<i32>().ok())
        .is_some_and(|scl| scl >= 5)
}

/// What the rules look at, computed once per mail.
pub struct Facts<'a> {
    pub msg: &'a Message<'a>,
    /// The subject, trimmed and lower-cased.
    pub subject: &'a str,
    /// The text people see (text/plain, else the HTML as text), lower-cased, at most
    /// [`SCAN_BYTES`].
    pub text: &'a str,
    /// The raw HTML of the first HTML part, lower-cased, at most [`SCAN_BYTES`] ("" without).
    pub html: String,
    /// An HTML body and no text/plain one.
    pub html_only: bool,
    /// Image parts.
    pub images: usize,
}

impl<'a> Facts<'a> {
    pub fn new(msg: &'a Message<'a>, subject: &'a str, text: &'a str) -> Facts<'a> {
        let is_plain = |i: &u32| {
            matches!(msg.parts.get(*i as usize).map(|p| &p.body), Some(PartType::Text(_)))
        };
        let is_html = |i: &u32| {
            matches!(msg.parts.get(*i as usize).map(|p| &p.body), Some(PartType::Html(_)))
        };
        let has_plain = msg.text_body.iter().any(is_plain);
        let html_part = msg.html_body.iter().find(|i| is_html(i));
        let html = match html_part.and_then(|i| msg.parts.get(*i as usize)).map(|p| &p.body) {
            Some(PartType::Html(h)) => lower_prefix(h),
            _ => String::new(),
        };
        let images = msg
            .parts
            .iter()
            .filter(|p| p.content_type().is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("image")))
            .count();
        Facts { msg, subject, text, html, html_only: html_part.is_some() && !has_plain, images }
    }
}

/// The first [`SCAN_BYTES`] of `s` (on a character boundary), lower-cased.
pub(crate) fn lower_prefix(s: &str) -> String {
    let mut end = s.len().min(SCAN_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_lowercase()
}

/// One rule: its name (as SpamAssassin would write it), the points it gives at most, and
/// the test, which returns the points it gives this mail (0 = it does not fire).
pub struct Rule {
    pub name: &'static str,
    pub max: f32,
    pub test: fn(&Facts<'_>) -> f32,
}

fn fires(yes: bool, points: f32) -> f32 {
    if yes { points } else { 0.0 }
}

/// The rules, in no particular order (the sum counts).
pub const RULES: &[Rule] = &[
    Rule { name: "HTML_ONLY", max: 1.5, test: |f| fires(f.html_only, 1.5) },
    Rule { name: "IMAGE_WITH_LITTLE_TEXT", max: 2.0, test: image_with_little_text },
    Rule { name: "FORGED_MUA_OUTLOOK", max: 2.5, test: forged_outlook },
    Rule { name: "DATE_ABSURD", max: 1.5, test: date_absurd },
    Rule {
        name: "OBFUSCATED_WORDS",
        max: 2.5,
        test: |f| fires(obfuscated_words(f.text) >= 3, 2.5),
    },
    Rule { name: "HTML_HIDDEN_TEXT", max: 2.0, test: |f| fires(hidden_html_text(&f.html), 2.0) },
    Rule { name: "OPT_OUT_TEXT", max: 1.5, test: opt_out_text },
    Rule { name: "LINK_HEAVY", max: 1.0, test: link_heavy },
    Rule { name: "EMPTY_REPLY", max: 1.0, test: empty_reply },
    Rule { name: "SPAM_PHRASES", max: PHRASES_CAP, test: spam_phrases },
];

/// The points of `facts` and the rules that fired.
pub fn score(facts: &Facts<'_>) -> (f32, Vec<&'static str>) {
    let mut total = 0.0;
    let mut fired = Vec::new();
    for rule in RULES {
        let points = (rule.test)(facts);
        if points > 0.0 {
            total += points;
            fired.push(rule.name);
        }
    }
    (total, fired)
}

/// Whether the rules take `facts` for spam.
pub fn is_spam(facts: &Facts<'_>) -> bool {
    let mut total = 0.0;
    for rule in RULES {
        total += (rule.test)(facts);
        if total >= THRESHOLD {
            return true;
        }
    }
    false
}

/// An image and next to no text (the advert is the picture).
fn image_with_little_text(f: &Facts<'_>) -> f32 {
    let chars = f.text.chars().filter(|c| c.is_alphanumeric()).take(30).count();
    fires(f.images > 0 && chars < 30, 2.0)
}

/// `X-Mailer` names Outlook Express, whose Message-IDs always carry `$`
/// (`<001601c6b45d$9a47e900$af08000a@host>`): one without was not written by it (the
/// receiving server added it to a mail that had none). Outlook proper is left out: its
/// 2000 edition wrote ids without `$`.
fn forged_outlook(f: &Facts<'_>) -> f32 {
    let Some(mailer) = f.msg.header_raw("X-Mailer") else { return 0.0 };
    let outlook = mailer.to_ascii_lowercase().contains("outlook express");
    fires(outlook && !f.msg.message_id().is_some_and(|id| id.contains('$')), 2.5)
}

/// A `Date` whose zone can't exist (`+0360`, `-1900`), or more than four days before the
/// first server received the mail (spam tools reuse old templates).
fn date_absurd(f: &Facts<'_>) -> f32 {
    if let Some(raw) = f.msg.header_raw("Date") {
        let zone = raw.split_whitespace().find(|t| {
            t.len() == 5
                && (t.starts_with('+') || t.starts_with('-'))
                && t[1..].bytes().all(|b| b.is_ascii_digit())
        });
        if let Some(z) = zone {
            let (hours, minutes) = (&z[1..3], &z[3..5]);
            if minutes >= "60" || hours > "14" {
                return 1.5;
            }
        }
    }
    let Some(date) = f.msg.date().filter(|d| d.is_valid()) else { return 0.0 };
    // The last Received header is the first server's.
    let received = f.msg.received_all().filter_map(|r| r.date()).filter(|d| d.is_valid()).last();
    let Some(received) = received else { return 0.0 };
    fires(received.to_timestamp() - date.to_timestamp() > 4 * 24 * 3600, 1.5)
}

/// Words with a letter swapped for a look-alike between letters (`p0rn`, `m@nual`,
/// `inc1uded`, `th@t`). Addresses, links and our tracking codes don't count.
pub(crate) fn obfuscated_words(text: &str) -> usize {
    let mut found = 0;
    for word in text.split_whitespace() {
        if word.contains("://") || word.starts_with("www.") {
            continue;
        }
        if let Some((_, domain)) = word.split_once('@')
            && domain.contains('.')
        {
            continue;
        }
        // A word, not a code, an encoded line or a tracking code: short, mostly letters,
        // nothing but letters, digits and the look-alikes inside.
        let word = word.trim_matches(|c: char| !c.is_alphanumeric());
        let b = word.as_bytes();
        let letters = b.iter().filter(|c| c.is_ascii_lowercase()).count();
        if !(3..=16).contains(&b.len())
            || letters * 2 < b.len()
            || word.starts_with("adu")
            || !b.iter().all(|c| c.is_ascii_alphanumeric() || b"@$!|(".contains(c))
        {
            continue;
        }
        let odd = b.windows(3).any(|w| {
            w[0].is_ascii_lowercase()
                && w[2].is_ascii_lowercase()
                && matches!(w[1], b'0' | b'1' | b'@' | b'$' | b'!' | b'|')
        });
        if odd {
            found += 1;
            if found >= 8 {
                break;
            }
        }
    }
    found
}

/// Text coloured (nearly) white, or a font too small to read: words for filters, not
/// people.
pub(crate) fn hidden_html_text(html: &str) -> bool {
    if html.is_empty() {
        return false;
    }
    let mut rest = html;
    while let Some(at) = rest.find("color") {
        let before = &rest[..at];
        let after = &rest[at + 5..];
        rest = after;
        if before.ends_with("bg") || before.ends_with("background-") || before.ends_with("border-")
        {
            continue;
        }
        let value = after.trim_start_matches([':', '=', '"', '\'', ' ']);
        let hex = value.strip_prefix('#').unwrap_or(value);
        let Some(hex) = hex.get(..6) else { continue };
        let light = hex.as_bytes().chunks(2).all(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|c| u8::from_str_radix(c, 16).ok())
                .is_some_and(|v| v >= 0xf0)
        });
        if light {
            return true;
        }
    }
    [
        "font-size: 0",
        "font-size:0",
        "font-size: 1px",
        "font-size:1px",
        "font-size: .5em",
        "font-size:.5em",
    ]
    .iter()
    .any(|s| html.contains(s))
}

/// Marketing's way out, in a mail that is not from a list (list mail never gets here).
fn opt_out_text(f: &Facts<'_>) -> f32 {
    const WAYS_OUT: &[&str] = &[
        "opt-out",
        "opt out",
        "unsubscribe",
        "remove your email",
        "to be removed",
        "no longer to receive",
        "no longer wish to receive",
        "berhenti berlangganan",
    ];
    fires(WAYS_OUT.iter().any(|w| f.text.contains(w) || f.html.contains(w)), 1.5)
}

/// Links where text should be: two or more, and fewer than 40 words per link.
fn link_heavy(f: &Facts<'_>) -> f32 {
    let source = if f.html.is_empty() { f.text } else { f.html.as_str() };
    let links = source.matches("http://").count() + source.matches("https://").count();
    let words = f.text.split_whitespace().count();
    fires(links >= 2 && words < 40 * links, 1.0)
}

/// `Re:` and nothing else, answering nothing (no `In-Reply-To`, no `References`).
fn empty_reply(f: &Facts<'_>) -> f32 {
    let bare = f.subject.trim_end_matches([':', ' ']).trim();
    let answers =
        f.msg.header_raw("In-Reply-To").is_some() || f.msg.header_raw("References").is_some();
    fires((bare == "re" || bare.is_empty()) && !answers && !f.subject.is_empty(), 1.0)
}

/// Phrases of adverts and scams (lower case) and their points; the sum is capped at
/// [`PHRASES_CAP`].
pub const PHRASES: &[(&str, f32)] = &[
    ("gift card", 1.0),
    ("viagra", 2.0),
    ("cialis", 2.0),
    ("porn", 1.5),
    ("p0rn", 1.5),
    ("pills", 1.0),
    ("casino", 1.0),
    ("lottery", 1.0),
    ("you have won", 1.5),
    ("you've won", 1.5),
    ("claim your prize", 1.5),
    ("hey baby", 1.0),
    ("sexy", 1.0),
    ("sluts", 1.5),
    ("enlarge", 1.0),
    ("free shipping", 1.0),
    ("best value", 0.5),
    ("on sale", 0.5),
    ("check it out", 0.5),
    ("wire transfer", 1.0),
    ("western union", 1.0),
    ("million dollars", 1.5),
    ("100% free", 1.0),
    ("act now", 1.0),
    ("limited time offer", 1.0),
    ("selamat! anda", 1.0),
    ("pemenang undian", 1.5),
    ("obat kuat", 1.5),
];

fn spam_phrases(f: &Facts<'_>) -> f32 {
    let mut total = 0.0;
    for (phrase, points) in PHRASES {
        if f.subject.contains(phrase) || f.text.contains(phrase) {
            total += points;
            if total >= PHRASES_CAP {
                return PHRASES_CAP;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    /// The points one rule gives the mail `raw`.
    fn points(rule: &str, raw: &str) -> f32 {
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        let subject = msg.subject().unwrap_or("").trim().to_lowercase();
        let text = msg.body_text(0).map(|t| lower_prefix(&t)).unwrap_or_default();
        let facts = Facts::new(&msg, &subject, &text);
        let rule = RULES.iter().find(|r| r.name == rule).unwrap();
        (rule.test)(&facts)
    }

    fn plain(headers: &str, body: &str) -> String {
        format!(
            "From: Siti <siti@example.id>\r\nTo: intake@aduan.test\r\nMessage-ID: <m@x>\r\n{headers}\r\n{body}\r\n"
        )
    }

    /// One row per rule: a mail it fires on and one near it that it does not.
    #[test]
    fn each_rule_fires_on_its_mail_only() {
        let table: Vec<(&str, String, String)> = vec![
            (
                "HTML_ONLY",
                plain("Subject: x\r\nContent-Type: text/html\r\n", "<p>Halo</p>"),
                plain("Subject: x\r\nContent-Type: multipart/alternative; boundary=b\r\n", "--b\r\nContent-Type: text/plain\r\n\r\nHalo\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Halo</p>\r\n--b--"),
            ),
            (
                "IMAGE_WITH_LITTLE_TEXT",
                plain("Subject: x\r\nContent-Type: multipart/related; boundary=b\r\n", "--b\r\nContent-Type: text/plain\r\n\r\n7181B 4\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--"),
                plain("Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n", "--b\r\nContent-Type: text/plain\r\n\r\nLampu jalan di RT 3 mati sejak minggu lalu, ini fotonya.\r\n--b\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n/9j/4AAQ\r\n--b--"),
            ),
            (
                "FORGED_MUA_OUTLOOK",
                "From: a@b.example\r\nMessage-Id: <200608162052.k7GKq9CD025423@mx.example.com>\r\nX-Mailer: Microsoft Outlook Express 6.00.2800.1106\r\nSubject: x\r\n\r\nhi\r\n".into(),
                "From: a@b.example\r\nMessage-Id: <001601c6b45d$9a47e900$af08000a@pc>\r\nX-Mailer: Microsoft Outlook Express 6.00.2800.1106\r\nSubject: x\r\n\r\nhi\r\n".into(),
            ),
            (
                "DATE_ABSURD",
                plain("Subject: x\r\nDate: Wed, 16 Aug 2006 20:52:12 +0360\r\n", "hi"),
                plain("Subject: x\r\nDate: Wed, 16 Aug 2006 20:52:12 +0700\r\n", "hi"),
            ),
            (
                "DATE_ABSURD",
                plain("Received: from a by b; Wed, 7 Jun 2006 11:26:18 -0700\r\nSubject: x\r\nDate: Fri, 2 Jan 2004 11:43:19 -0330\r\n", "hi"),
                plain("Received: from a by b; Wed, 7 Jun 2006 11:26:18 -0700\r\nSubject: x\r\nDate: Wed, 7 Jun 2006 11:20:00 -0700\r\n", "hi"),
            ),
            (
                "OBFUSCATED_WORDS",
                plain("Subject: x\r\n", "Steel P@ck@ge: 10 P@tches, free m@nual inc1uded, kn0vv"),
                plain("Subject: x\r\n", "Kode ADU-7K1M0QXP, email siti@example.id, B 1234 XY, RT01/RW02, www.pu1.go.id"),
            ),
            (
                "HTML_HIDDEN_TEXT",
                plain("Subject: x\r\nContent-Type: text/html\r\n", "<body bgcolor=\"#FFFFFF\"><p style=\"color: #FefFfE\">words words</p></body>"),
                plain("Subject: x\r\nContent-Type: text/html\r\n", "<body bgcolor=\"#FFFFFF\"><p style=\"color: #333333\">Jalan rusak</p></body>"),
            ),
            (
                "OPT_OUT_TEXT",
                plain("Subject: x\r\n", "If you wish no longer to receive our offers you may opt-out here."),
                plain("Subject: x\r\n", "Saya sudah melapor ke kelurahan tetapi belum ada tanggapan."),
            ),
            (
                "LINK_HEAVY",
                plain("Subject: x\r\n", "HAVE A LOOK http://a.example/x and http://b.example/remove"),
                plain("Subject: x\r\n", "Berita terkait: https://news.example/jalan-rusak. Mohon segera ditangani, jalan ini dilalui anak sekolah setiap pagi dan sore hari."),
            ),
            (
                "EMPTY_REPLY",
                plain("Subject: Re:\r\n", "hi"),
                plain("Subject: Re:\r\nIn-Reply-To: <aduan.x@aduan.test>\r\n", "hi"),
            ),
            (
                "SPAM_PHRASES",
                plain("Subject: Get a $1000.00 gift card on us\r\n", "Claim your prize"),
                plain("Subject: Sampah menumpuk\r\n", "Sampah di pasar menumpuk sejak Senin."),
            ),
        ];
        for (rule, fires_on, spares) in table {
            assert!(points(rule, &fires_on) > 0.0, "{rule} did not fire");
            assert_eq!(points(rule, &spares), 0.0, "{rule} fired on its near miss");
        }
        // Every rule has a row.
        for rule in RULES {
            assert!(
                [
                    "HTML_ONLY",
                    "IMAGE_WITH_LITTLE_TEXT",
                    "FORGED_MUA_OUTLOOK",
                    "DATE_ABSURD",
                    "OBFUSCATED_WORDS",
                    "HTML_HIDDEN_TEXT",
                    "OPT_OUT_TEXT",
                    "LINK_HEAVY",
                    "EMPTY_REPLY",
                    "SPAM_PHRASES"
                ]
                .contains(&rule.name),
                "{} has no test row",
                rule.name
            );
            assert!(rule.max < THRESHOLD, "{} alone reaches the threshold", rule.name);
        }
    }

    #[test]
    fn phrases_alone_never_reach_the_threshold() {
        let raw = plain(
            "Subject: Judi online, viagra, casino, lottery di kampung kami\r\n",
            "Ada yang jualan viagra dan cialis, dan iklan casino, lottery, you have won di tiang listrik.",
        );
        assert_eq!(points("SPAM_PHRASES", &raw), PHRASES_CAP);
    }

    /// Residents' complaints as they come: plain, HTML-only from a phone, a photo with a
    /// line of text, a link to the news, a complaint about gambling adverts, a reply that
    /// quotes our receipt. None is spam.
    #[test]
    fn complaints_are_not_spam() {
        let complaints = [
            plain(
                "Subject: Jalan berlubang\r\n",
                "Jalan di depan SD 1 berlubang besar, sudah dua minggu dan membahayakan pengendara.\r\nMohon segera diperbaiki. Terima kasih.\r\n\r\n-- \r\nWarga",
            ),
            plain(
                "Subject: Sampah\r\nContent-Type: text/html; charset=utf-8\r\n",
                "<div dir=\"ltr\">Sampah di pasar Wage menumpuk sejak Senin, bau sekali.<br><br>Dikirim dari iPhone saya</div>",
            ),
            plain(
                "Subject: foto\r\nContent-Type: multipart/mixed; boundary=b\r\n",
                "--b\r\nContent-Type: text/html\r\n\r\n<div>ini fotonya</div>\r\n--b\r\nContent-Type: image/jpeg; name=IMG_0001.jpg\r\nContent-Disposition: attachment; filename=IMG_0001.jpg\r\nContent-Transfer-Encoding: base64\r\n\r\n/9j/4AAQ\r\n--b--",
            ),
            plain(
                "Subject: Banjir lagi\r\n",
                "Lihat beritanya https://news.example/banjir dan videonya https://video.example/v/1 mohon ditindaklanjuti.",
            ),
            plain(
                "Subject: Iklan judi di tiang listrik\r\n",
                "Banyak iklan casino, slot gacor dan viagra ditempel di tiang listrik RT 02. Tolong dicabut. Kalau mau berhenti berlangganan info ini bagaimana?",
            ),
            plain(
                "Subject: Re: [ADU-7K1M0QXP] Aduan Anda sudah kami terima\r\nIn-Reply-To: <aduan.adu-7k1m0qxp.0a@aduan.test>\r\n",
                "Masih rusak pak.\r\n\r\n> Kode aduan: ADU-7K1M0QXP",
            ),
        ];
        for raw in complaints {
            let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
            let subject = msg.subject().unwrap_or("").trim().to_lowercase();
            let text = msg.body_text(0).map(|t| lower_prefix(&t)).unwrap_or_default();
            let facts = Facts::new(&msg, &subject, &text);
            assert!(!is_spam(&facts), "{:?} in {raw}", score(&facts));
            assert!(!filter_verdict(&msg));
        }
    }

    #[test]
    fn the_filters_verdict_is_taken() {
        for (header, spam) in [
            ("X-Spam-Flag: YES", true),
            ("X-Spam-Flag: NO", false),
            ("X-Spam-Status: Yes, score=7.1 required=5.0 tests=HTML_MESSAGE", true),
            ("X-Spam-Status: No, score=0.1 required=5.0", false),
            ("X-Spam: Yes", true),
            ("X-Spam: no", false),
            ("X-Spamd-Result: default: True [16.20 / 15.00]; R_SPF_FAIL(1.0)[-all]", true),
            ("X-Spamd-Result: default: False [1.20 / 15.00]; R_SPF_ALLOW(-0.2)[+ip4]", false),
            ("X-MS-Exchange-Organization-SCL: 9", true),
            ("X-MS-Exchange-Organization-SCL: -1", false),
            ("X-Spam-Level: ****", false),
        ] {
            let raw = plain(&format!("Subject: x\r\n{header}\r\n"), "halo");
            let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
            assert_eq!(filter_verdict(&msg), spam, "{header}");
        }
    }
}
