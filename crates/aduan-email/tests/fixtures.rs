//! Every real mail of `tests/fixtures` (Chatwoot, Mailgun flanker, the Ruby `mail` gem and
//! mail-parser's own corpus: replies, bounces, auto-replies, torture tests, broken MIME)
//! through the intake parser: none panics, the machines among them are recognised, and
//! what each becomes is kept in a golden file per corpus (`tests/golden/*.txt`; refresh
//! with `UPDATE_EXPECT=1 cargo test -p aduan-email --test fixtures` and review the diff).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aduan_email::parse_mail;

mod common;
use common::{emls, opts};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// What the parser made of one mail, as a golden-file section.
fn describe(name: &str, raw: &[u8]) -> String {
    let mut s = format!("=== {name}\n");
    let m = match parse_mail(raw, &opts()) {
        Ok(m) => m,
        Err(e) => {
            s.push_str(&format!("error: {e}\n\n"));
            return s;
        }
    };
    let msg = &m.message;
    s.push_str(&format!("provider_id: {}\n", msg.provider_id));
    s.push_str(&format!(
        "from: {}  identity: {}  name: {}\n",
        m.from.as_ref().map_or("-", |f| f.value.as_str()),
        msg.sender.identity.as_ref().map_or("-", |f| f.value.as_str()),
        msg.sender.display_name.as_deref().unwrap_or("-"),
    ));
    s.push_str(&format!(
        "automated: {}  at: {}\n",
        m.automated.map_or("no", |a| a.as_str()),
        msg.received_at.to_rfc3339()
    ));
    if !m.bounced.is_empty() {
        s.push_str(&format!("bounced: {}\n", m.bounced.join(" ")));
    }
    if !msg.thread.references.is_empty() {
        s.push_str(&format!("references: {}\n", msg.thread.references.join(" ")));
    }
    if let Some(code) = msg.thread.ticket {
        s.push_str(&format!("ticket: {code}\n"));
    }
    for a in &msg.attachments {
        s.push_str(&format!(
            "attachment: {} | {} | {} bytes | {}\n",
            a.filename.as_deref().unwrap_or("-"),
            a.content_type,
            a.size,
            &a.sha256[..12]
        ));
    }
    let text: String = msg.text.chars().take(600).collect();
    s.push_str("text:\n");
    for line in text.lines() {
        s.push_str(&format!("  | {line}\n"));
    }
    let total = msg.text.chars().count();
    if total > 600 {
        s.push_str(&format!("  … ({total} characters in all)\n"));
    }
    s.push('\n');
    s
}

fn golden(corpus: &str) -> String {
    let root = fixtures().join(corpus);
    let mut out = String::new();
    for path in emls(&root) {
        let raw = std::fs::read(&path).unwrap();
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        out.push_str(&describe(&name, &raw));
    }
    out
}

#[test]
fn golden_chatwoot() {
    expect_test::expect_file!["golden/chatwoot-helpdesk.txt"]
        .assert_eq(&golden("chatwoot-helpdesk"));
}

#[test]
fn golden_flanker() {
    expect_test::expect_file!["golden/mailgun-flanker.txt"].assert_eq(&golden("mailgun-flanker"));
}

#[test]
fn golden_mikel() {
    expect_test::expect_file!["golden/mikel-mail.txt"].assert_eq(&golden("mikel-mail"));
}

#[test]
fn golden_stalwart() {
    expect_test::expect_file!["golden/stalwart-mail-parser.txt"]
        .assert_eq(&golden("stalwart-mail-parser"));
}

/// The classification of every fixture: how many of each kind, and by name the ones a
/// helpdesk must get right.
#[test]
fn machines_among_the_fixtures_are_recognised() {
    let root = fixtures();
    let all = emls(&root);
    assert_eq!(all.len(), 299, "the fixture set changed");
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for path in &all {
        let raw = std::fs::read(path).unwrap();
        let kind = match parse_mail(&raw, &opts()) {
            Ok(m) => m.automated.map_or("person".to_owned(), |a| a.as_str().to_owned()),
            Err(_) => "unreadable".to_owned(),
        };
        *kinds.entry(kind.clone()).or_default() += 1;
        by_name.insert(path.strip_prefix(&root).unwrap().display().to_string(), kind);
    }
    let kind = |name: &str| by_name.get(name).map(String::as_str).unwrap_or("missing");
    // Bounces of all sorts: Gmail, Office 365, Postfix, a DSN without From, a broken one.
    for name in [
        "chatwoot-helpdesk/bounced_gmail.eml",
        "chatwoot-helpdesk/bounced_with_no_from.eml",
        "mailgun-flanker/tests/fixtures/messages/bounce/gmail-invalid-address.eml",
        "mailgun-flanker/tests/fixtures/messages/bounce/office365.eml",
        "mailgun-flanker/tests/fixtures/messages/bounce/mailbox-full.eml",
    ] {
        assert_eq!(kind(name), "bounce", "{name}");
    }
    // Delivery warnings: the mail is still being retried (`Action: delayed`).
    for name in [
        "mailgun-flanker/tests/fixtures/messages/bounce/no-mx.eml",
        "mikel-mail/spec/fixtures/emails/multipart_report_emails/report_422.eml",
    ] {
        assert_eq!(kind(name), "delivery-warning", "{name}");
    }
    for (name, expected) in [
        ("chatwoot-helpdesk/auto_reply.eml", "auto-reply"),
        ("chatwoot-helpdesk/auto_reply_with_auto_submitted.eml", "auto-submitted"),
        ("mailgun-flanker/tests/fixtures/messages/disposition-notification.eml", "report"),
        ("chatwoot-helpdesk/reply.eml", "person"),
        ("chatwoot-helpdesk/support.eml", "person"),
        ("chatwoot-helpdesk/only_html.eml", "person"),
    ] {
        assert_eq!(kind(name), expected, "{name}");
    }
    expect_test::expect![[r#"
        {
            "auto-reply": 1,
            "auto-submitted": 2,
            "bounce": 15,
            "bulk": 5,
            "delivery-warning": 3,
            "mailing-list": 1,
            "notification": 2,
            "person": 263,
            "report": 3,
            "spam": 4,
        }"#]]
    .assert_eq(&format!("{kinds:#?}"));
}
