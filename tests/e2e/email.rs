//! The email channel in the real daemon, against the real Dovecot + Postfix of
//! `cargo xtask test`: SIGKILL while a mailbox of 200 complaints is being read, six times at
//! different moments, and after the last restart every mail is exactly one ticket, none is stored twice, and none
//! is left unread in the intake folder.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aduan_email::testkit::{MailPeer, plain_mail, unique_tag};
use aduan_tests::{Binary, Config, Daemon, PgDatabase, toml_str};

use crate::common::{all_ticket_codes, client, tickets};

const MAILS: usize = 200;

pub(crate) fn email_config(base: Config, peer: &MailPeer, tag: &str) -> Config {
    let intake = peer.address("intake", Some(tag));
    let extra = format!(
        "[channels.email]\nenabled = true\nimap_host = \"127.0.0.1\"\nimap_port = {imap}\n\
         imap_tls = \"none\"\nimap_user = {user}\nimap_password = {password}\nmailbox = {tag}\n\
         processed_mailbox = {processed}\nquarantine_mailbox = {quarantine}\n\
         smtp_url = {smtp}\nfrom = {from}\npoll_secs = 30\n",
        imap = peer.imap.port(),
        user = toml_str(&peer.address("intake", None)),
        password = toml_str(&peer.password),
        tag = toml_str(tag),
        processed = toml_str(&format!("{tag}-processed")),
        quarantine = toml_str(&format!("{tag}-quarantine")),
        smtp = toml_str(&format!("smtp://{}", peer.smtp)),
        from = toml_str(&format!("Lapak Aduan <{intake}>")),
    );
    Config { extra_toml: format!("{}{extra}", base.extra_toml), ..base }
}

async fn kill_9_while_reading_mail(bin: &Binary, peer: &MailPeer, base: Config, label: &str) {
    let tag = unique_tag("kill");
    let intake = peer.address("intake", Some(&tag));
    let mails: Vec<Vec<u8>> = (0..MAILS)
        .map(|i| {
            plain_mail(
                &format!("Warga {i} <warga{i}@example.id>"),
                &intake,
                &format!("Lampu jalan mati {i}"),
                &format!("k{i}.{tag}@example.id"),
                &format!("Lampu di RT {i} mati [mail-{i}]"),
            )
        })
        .collect();
    peer.append_all("intake", &tag, &mails).await;
    let processed = format!("{tag}-processed");

    let mut daemon = Daemon::start(bin, email_config(base, peer, &tag)).await;
    // SIGKILL again and again at different moments of the reading (login, fetch, the
    // attachment writes, the store's commit, the move, the checkpoint), then let it finish.
    let mut moved_at_kill = Vec::new();
    for delay_ms in [60, 0, 120, 30, 200, 90] {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        daemon.kill9();
        moved_at_kill.push(peer.count("intake", &processed).await);
        daemon.restart().await;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = peer.count("intake", &processed).await as usize;
        let left = peer.count("intake", &tag).await;
        if done == MAILS && left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "[{label}] {done} of {MAILS} mails processed and {left} left in the intake folder after 90 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(peer.count("intake", &format!("{tag}-quarantine")).await, 0);

    let token = daemon.apikey("kill-check", "read");
    let http = client();
    let codes = all_ticket_codes(&http, &daemon, &token).await;
    let views = tickets(&http, &daemon, &token, &codes).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for view in &views {
        let inbound: Vec<&serde_json::Value> = view["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "in")
            .collect();
        assert_eq!(inbound.len(), 1, "[{label}] a ticket with several mails: {view}");
        let text = inbound[0]["text"].as_str().unwrap();
        let marker = text.rsplit('[').next().unwrap().trim_end_matches(']').to_owned();
        *seen.entry(marker).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "[{label}] mails stored twice: {twice:?}");
    assert_eq!(seen.len(), MAILS, "[{label}] {} distinct mails stored, not {MAILS}", seen.len());
    assert_eq!(codes.len(), MAILS);
    eprintln!(
        "[{label}] killed 6 times, with {moved_at_kill:?} of {MAILS} mails moved; all {MAILS} \
         stored once after the last restart"
    );
    daemon.terminate().await;
}

#[tokio::test]
async fn kill_9_while_reading_a_mailbox_loses_and_repeats_nothing_sqlite() {
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    kill_9_while_reading_mail(&bin, &peer, Config::sqlite(), "sqlite").await;
}

#[tokio::test]
async fn kill_9_while_reading_a_mailbox_loses_and_repeats_nothing_postgres() {
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let Some(db) = PgDatabase::create().await else { return };
    kill_9_while_reading_mail(&bin, &peer, Config::postgres(db.url()), "postgres").await;
}

/// Every real automated mail of `crates/aduan-email/tests/fixtures-automated` (231 bounces,
/// delivery warnings, auto-replies, challenge-responses, reports, list mail, spam; see its
/// SOURCE.txt) and the older bounce and out-of-office fixtures, in the intake folder of a
/// daemon: not one ticket, not one mail sent, every mail moved to `automated_mailbox` and
/// counted by class in `aduan_email_automated_total` (issue 16).
#[tokio::test]
async fn automated_mail_opens_no_ticket_and_gets_no_answer() {
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let root = aduan_tests::workspace_root().join("crates/aduan-email/tests");
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["fixtures-automated/bounceparser", "fixtures-automated/flufl-bounce"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    for name in [
        "chatwoot-helpdesk/bounced_gmail.eml",
        "chatwoot-helpdesk/bounced_with_no_from.eml",
        "chatwoot-helpdesk/auto_reply.eml",
        "chatwoot-helpdesk/auto_reply_with_auto_submitted.eml",
        "mailgun-flanker/tests/fixtures/messages/bounce/gmail-invalid-address.eml",
        "mailgun-flanker/tests/fixtures/messages/bounce/office365.eml",
        "mailgun-flanker/tests/fixtures/messages/bounce/mailbox-full.eml",
        "mailgun-flanker/tests/fixtures/messages/bounce/no-mx.eml",
    ] {
        files.push(root.join("fixtures").join(name));
    }
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    let mails: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(mails.len(), 231 + 8, "the fixture set changed");
    // What the classifier makes of each, counted by class: the daemon must count the same.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for raw in &mails {
        let class = aduan_email::parse_mail(raw, &aduan_email::ParseOptions::default())
            .unwrap()
            .automated
            .expect("every fixture is automated");
        *expected.entry(class.as_str().to_owned()).or_default() += 1;
    }
    assert_eq!(expected.get("spam"), Some(&4), "{expected:?}");

    let tag = unique_tag("machines");
    let automated = format!("{tag}-automated");
    peer.append_all("intake", &tag, &mails).await;
    let mut config = email_config(Config::sqlite(), &peer, &tag);
    config.extra_toml.push_str(&format!("automated_mailbox = {}\n", toml_str(&automated)));
    let mut daemon = Daemon::start(&bin, config).await;

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let moved = peer.count("intake", &automated).await as usize;
        let left = peer.count("intake", &tag).await;
        if moved == mails.len() && left == 0 {
            break;
        }
        let processed = peer.count("intake", &format!("{tag}-processed")).await;
        let quarantined = peer.count("intake", &format!("{tag}-quarantine")).await;
        assert!(
            Instant::now() < deadline,
            "{moved} of {} mails in {automated}, {processed} processed, {quarantined} \
             quarantined, {left} left after 120 s",
            mails.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(peer.count("intake", &format!("{tag}-processed")).await, 0);
    assert_eq!(peer.count("intake", &format!("{tag}-quarantine")).await, 0);

    let token = daemon.apikey("machines-check", "read");
    let http = client();
    let codes = all_ticket_codes(&http, &daemon, &token).await;
    assert!(codes.is_empty(), "automated mail opened tickets: {codes:?}");
    // Nothing queued, nothing sent: no outbox row of any state, and no mail from this
    // daemon (its From carries the tag) at the peer's catch-all for outside addresses.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = crate::common::get(&http, &daemon, "/metrics", None).await.text;
    for line in metrics.lines().filter(|l| l.starts_with("aduan_outbox_rows{")) {
        assert!(line.ends_with(" 0"), "an outbox row: {line}");
    }
    let counted: BTreeMap<String, u64> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("aduan_email_automated_total{class=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(class, n)| (class.to_owned(), n.trim().parse().unwrap()))
        .collect();
    assert_eq!(counted, expected, "machine mail counted by class");
    let sent = peer.messages("outbox", "INBOX").await;
    let ours = sent.iter().filter(|m| String::from_utf8_lossy(m).contains(&tag)).count();
    assert_eq!(ours, 0, "{ours} mails sent to automated senders");
    daemon.terminate().await;
}
