//! Every mail of `tests/fixtures-automated` (231 real machine mails, see its SOURCE.txt).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aduan_email::parse_mail;

mod common;
use common::{emls, opts};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures-automated")
}

/// Every fixture through the real parser and classifier: each is automated (so it opens no
/// ticket, keeps no sender identity, and is never answered), and the per-class counts are
/// kept here (refresh with `UPDATE_EXPECT=1` and review).
#[test]
fn every_automated_fixture_is_recognised() {
    let all = emls(&root());
    assert_eq!(all.len(), 231, "the fixture set changed");
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut people = Vec::new();
    for path in &all {
        let raw = std::fs::read(path).unwrap();
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        let m = parse_mail(&raw, &opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
        match m.automated {
            Some(class) => {
                assert!(m.message.thread.automated, "{name}");
                assert_eq!(m.message.sender.identity, None, "{name} keeps a sender identity");
                *kinds.entry(class.as_str().to_owned()).or_default() += 1;
            }
            None => people.push(name),
        }
    }
    // BounceParser keeps four plain spams as its not-a-bounce controls; they are `spam`.
    assert!(people.is_empty(), "taken for people: {people:?}");
    expect_test::expect![[r#"
        {
            "auto-reply": 1,
            "auto-submitted": 3,
            "bounce": 205,
            "bulk": 7,
            "challenge-response": 1,
            "delivery-warning": 10,
            "spam": 4,
        }"#]]
    .assert_eq(&format!("{kinds:#?}"));
}

/// The human corpora: every mail of `tests/fixtures` (real mails from four projects' test
/// suites) and of `../shared/fixtures/email-*` other than the automated set.
fn human_corpora() -> Vec<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = emls(&here.join("tests/fixtures"));
    let shared = here.join("../../../shared/fixtures");
    if let Ok(dirs) = std::fs::read_dir(&shared) {
        for d in dirs.flatten() {
            let name = d.file_name().to_string_lossy().into_owned();
            if name.starts_with("email-") && name != "email-automated" {
                all.extend(emls(&d.path()));
            }
        }
    }
    all
}

/// Spam rules and the filter's verdict against every human mail the project has: none is
/// taken for spam except the four that are (two carry `X-Spam-Status: Yes` from the server
/// that received them, a Western Union scam and a Russian advert; two are commercial
/// newsletters, a card issuer's and a shop's, with their opt-out text and tracking links).
#[test]
fn no_human_fixture_is_taken_for_spam() {
    let all = human_corpora();
    assert!(all.len() >= 299, "{} human fixtures", all.len());
    let mut spam = std::collections::BTreeSet::new();
    for path in &all {
        let raw = std::fs::read(path).unwrap();
        let Ok(m) = parse_mail(&raw, &opts()) else { continue };
        if m.automated == Some(aduan_email::Automated::Spam) {
            let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let subject = msg.subject().unwrap_or("").trim().to_lowercase();
            let text = msg.body_text(0).map(|t| t.to_lowercase()).unwrap_or_default();
            let facts = aduan_email::spam::Facts::new(&msg, &subject, &text);
            let (points, rules) = aduan_email::spam::score(&facts);
            let verdict = aduan_email::spam::filter_verdict(&msg);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            spam.insert(format!("{name}: filter {verdict}, {points} {rules:?}"));
        }
    }
    expect_test::expect![[r#"
        content_transfer_encoding_7-bit.eml: filter false, 6 ["OBFUSCATED_WORDS", "OPT_OUT_TEXT", "LINK_HEAVY", "SPAM_PHRASES"]
        content_transfer_encoding_with_8bits.eml: filter false, 6 ["HTML_ONLY", "HTML_HIDDEN_TEXT", "OPT_OUT_TEXT", "LINK_HEAVY"]
        empty_group_lists.eml: filter true, 1 ["SPAM_PHRASES"]
        raw_email_bad_time.eml: filter true, 0 []
    "#]]
    .assert_eq(&spam.iter().map(|s| format!("{s}\n")).collect::<String>());
}

/// Our Message-ID of an answer about ADU-7K3M9QXP (`compose::message_id`'s format).
const OURS: &str = "aduan.adu-7k3m9qxp.0a1b2c3d4e5f6a7b@aduan.test";

/// A fixture with the last occurrence of `from` replaced by `to`.
fn edited(name: &str, edits: &[(&str, &str)]) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(&std::fs::read(root().join(name)).unwrap()).into_owned();
    for (from, to) in edits {
        let at = text.rfind(from).unwrap_or_else(|| panic!("{from} not in {name}"));
        text.replace_range(at..at + from.len(), to);
    }
    text.into_bytes()
}

/// Real bounces from four mail systems, with the original message (or its headers, or the
/// ENVID, or the return path) made ours: each finds our mail, and its ticket is told.
#[test]
fn bounces_of_our_mail_name_it() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Postfix, the whole message returned as message/rfc822.
        (
            "message/rfc822",
            edited(
                "bounceparser/spam-rejection.eml",
                &[("20091104221004.0EDE91658210@server4.example.co.uk", OURS)],
            ),
        ),
        // Postfix, the headers only (text/rfc822-headers).
        (
            "text/rfc822-headers",
            edited(
                "bounceparser/spam-rejection8.eml",
                &[("20101101105716.2DC3A16581BC@server4.dianomi.co.uk", OURS)],
            ),
        ),
        // Exim: X-Failed-Recipients, the message quoted below its text.
        (
            "exim",
            edited(
                "flufl-bounce/exim_01.eml",
                &[("19990920022322.A19735@stereo.rotzorg.org", OURS)],
            ),
        ),
        // An X.400 gateway's DSN whose Original-Envelope-Id is ours (xtext-encoded), the
        // enclosed message someone else's.
        (
            "Original-Envelope-Id",
            edited(
                "flufl-bounce/dsn_02.eml",
                &[(
                    "[/PRMD=UK.AC/ADMD= /C=GB/;<LNBBLJKPBEHFEDALKOLCMEEDIFAA.ti]",
                    "aduan.adu-7k3m9qxp.0a1b2c3d4e5f6a7b+40aduan.test",
                )],
            ),
        ),
        // VERP: a Postfix bounce sent to our return path; what it encloses is not ours.
        (
            "VERP",
            edited(
                "bounceparser/spam-rejection.eml",
                &[
                    (
                        "automated-bounces+CDA1FF80-C98E-11DE-B9FE-8D86DD31F8F5@example.com",
                        "intake+B.ADU-7K3M9QXP.0A1B2C3D4E5F6A7B@aduan.test",
                    ),
                    (
                        "automated-bounces+cda1ff80-c98e-11de-b9fe-8d86dd31f8f5@example.com",
                        "intake+b.adu-7k3m9qxp.0a1b2c3d4e5f6a7b@aduan.test",
                    ),
                ],
            ),
        ),
    ];
    for (name, raw) in cases {
        let m = parse_mail(&raw, &opts()).unwrap();
        assert_eq!(m.automated, Some(aduan_email::Automated::Bounce), "{name}");
        assert!(m.bounced.iter().any(|id| id == OURS), "{name}: {:?}", m.bounced);
        assert!(m.message.thread.references.iter().any(|id| id == OURS), "{name}");
        assert!(m.message.text.starts_with(aduan_email::parse::BOUNCE_NOTE), "{name}");
        assert_eq!(m.message.sender.identity, None, "{name}");
    }
    // The same bounces unedited name nothing of ours.
    for name in ["bounceparser/spam-rejection.eml", "flufl-bounce/dsn_02.eml"] {
        let m = parse_mail(&std::fs::read(root().join(name)).unwrap(), &opts()).unwrap();
        assert!(!m.bounced.iter().any(|id| id.ends_with("@aduan.test")), "{name}");
    }
}

/// A vacation reply sent to our return path is not a bounce: it names no failed mail.
#[test]
fn an_auto_reply_to_our_return_path_fails_nothing() {
    let raw = "From: budi@example.id\r\nTo: intake+b.adu-7k3m9qxp.0a1b2c3d4e5f6a7b@aduan.test\r\n\
               Auto-Submitted: auto-replied\r\nSubject: Cuti\r\nMessage-ID: <v@example.id>\r\n\r\n\
               Saya sedang cuti.\r\n";
    let m = parse_mail(raw.as_bytes(), &opts()).unwrap();
    assert_eq!(m.automated, Some(aduan_email::Automated::AutoSubmitted));
    assert!(m.bounced.is_empty());
}
