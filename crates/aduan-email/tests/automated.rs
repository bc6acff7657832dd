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
    // Plain spam, kept in BounceParser's corpus as its not-a-bounce controls: no machine
    // signal at all (a person-like sender, no DSN, no auto-reply header, no list header).
    // Spam is the MTA's filter's job (see the module docs of `classify`); these four are
    // named here so that any other fixture taken for a person fails the test.
    let spam = [
        "bounceparser/spam-bogus-email-in-report.eml",
        "bounceparser/spam-lots-of-bogus-addresses.eml",
        "bounceparser/spam-with-badly-parsed-email.eml",
        "bounceparser/spam-with-image.eml",
    ];
    assert_eq!(people, spam, "taken for people");
    expect_test::expect![[r#"
        {
            "auto-reply": 1,
            "auto-submitted": 3,
            "bounce": 205,
            "bulk": 7,
            "challenge-response": 1,
            "delivery-warning": 10,
        }"#]]
    .assert_eq(&format!("{kinds:#?}"));
}
