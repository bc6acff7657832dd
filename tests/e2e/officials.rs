//! Officials act from their mailbox (issue 19 items 5 and 6), in the real daemon against the
//! real Dovecot + Postfix and a real Chromium: four residents mail complaints → the routing
//! worker disposes each to DPU → the official's mails arrive with four signed links each →
//! the test reads the links from the mails, opens each in the browser, fills and submits the
//! confirmation page → the ticket's state is checked through the API: *terima* takes the
//! ticket up, *minta info* reaches the resident by mail and pauses the clocks, *bukan
//! wewenang kami* puts it back in triage, *selesai* resolves it and the note reaches the
//! resident. Opening a link changes nothing; a used link says "sudah digunakan".

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aduan_email::testkit::{MailPeer, plain_mail, unique_tag};
use aduan_tests::{Binary, Config, Daemon};
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::browser::{browser, eventually, webdriver};
use crate::common::{client, registry_with_dpu_official, ticket};
use crate::email::email_config;

fn text_of(raw: &[u8]) -> String {
    let parsed = mail_parser::MessageParser::default().parse(raw).expect("a mail we sent parses");
    let subject = parsed.subject().unwrap_or_default().to_owned();
    let body = parsed.body_text(0).map(|b| b.into_owned()).unwrap_or_default();
    format!("{subject}\n{body}")
}

/// The action links of a mail, by label (`Terima`, `Minta info`, …).
fn links(mail: &str) -> BTreeMap<String, String> {
    mail.lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| l.split_once(": http"))
        .filter(|(_, url)| url.contains("/aksi/"))
        .map(|(label, url)| (label.to_owned(), format!("http{url}")))
        .collect()
}

/// Waits until the ticket satisfies `ok` (15 s at most).
async fn ticket_until(
    http: &reqwest::Client,
    daemon: &Daemon,
    key: &str,
    code: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let t = ticket(http, daemon, key, code).await;
        if ok(&t) {
            return t;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never reached: {t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `url`, checks the confirmation page names the ticket, types `text` into the form's
/// field when given, and submits; waits for the answer page.
async fn confirm(c: &Client, url: &str, code: &str, text: Option<&str>) {
    c.goto(url).await.expect("open the link");
    let facts = eventually(c, "#code", |t| !t.is_empty()).await;
    assert_eq!(facts, code);
    let form = c.form(Locator::Css("form#aksi")).await.expect("the confirmation form");
    if let Some(t) = text {
        form.set_by_name("teks", t).await.expect("type into the form");
    }
    form.submit().await.expect("submit");
    eventually(c, "#notice", |t| t.contains("tindakan Anda sudah dicatat")).await;
}

#[tokio::test]
async fn an_official_completes_each_mailbox_action_in_a_real_browser() {
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let Some((wd, chromium)) = webdriver() else { return };
    let tag = unique_tag("aksi");
    let official = peer.address("kepala.dpu", Some(&tag));
    let intake = peer.address("intake", Some(&tag));
    let (_site, registry_path) = registry_with_dpu_official(&official);
    let config = email_config(Config::sqlite(), &peer, &tag)
        .env("ADUAN__ROUTING__OPD_FILE", registry_path.display().to_string())
        .env("ADUAN__ROUTING__POLL_MS", "100")
        .env("ADUAN__OUTBOUND__POLL_MS", "100");
    let mut daemon = Daemon::start(&bin, config).await;

    // Four residents, each with a folder of their own (`warga+<tag>N@`).
    let places = ["Kedungrandu", "Karangklesem", "Kedungwringin", "Pasinggangan"];
    let mut codes = Vec::new();
    for (i, place) in places.iter().enumerate() {
        let folder = format!("{tag}w{i}");
        let resident = peer.address("warga", Some(&folder));
        let mail = plain_mail(
            &format!("Warga {i} Santoso <{resident}>"),
            &intake,
            "Jalan rusak",
            &format!("c{i}.{tag}@warga.example"),
            &format!(
                "Jalan rusak berlubang besar di Desa {place}, sudah dua bulan belum \
                 diperbaiki dan membahayakan pengendara motor."
            ),
        );
        peer.smtp_send(&resident, &[&intake], &mail).await;
        let receipt =
            text_of(&peer.wait_for("warga", &folder, 1, Duration::from_secs(30)).await[0]);
        let code = aduan_core::TicketCode::find_all(&receipt)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no code in the receipt: {receipt}\n{}", daemon.log()))
            .to_string();
        codes.push(code);
    }

    // The official's mails, one per ticket, each with the four links.
    let mails = peer.wait_for("kepala.dpu", &tag, 4, Duration::from_secs(30)).await;
    let mut by_code: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for raw in &mails {
        let text = text_of(raw);
        let code = codes.iter().find(|c| text.contains(&format!("[{c}]"))).expect("a code").clone();
        let l = links(&text);
        assert_eq!(l.len(), 4, "four links in {text}");
        for url in l.values() {
            assert!(url.starts_with(&daemon.url("/aksi/")), "{url}");
        }
        by_code.insert(code, l);
    }
    assert_eq!(by_code.len(), 4);
    let link = |i: usize, label: &str| by_code[&codes[i]][label].clone();

    let http = client();
    let admin = daemon.apikey("aksi", "admin");

    // The ticket as a key of scope `read` gets it shows where the links were, never their
    // tokens: a token acts in the official's name, and `read` may not act at all.
    let reader = daemon.apikey("aksi-read", "read");
    let shown = ticket(&http, &daemon, &reader, &codes[0]).await.to_string();
    assert!(shown.contains("/aksi/…"), "{shown}");
    for url in by_code[&codes[0]].values() {
        let token = url.rsplit('/').next().expect("a token");
        assert!(!shown.contains(token), "{shown}");
    }
    let profile = tempfile::tempdir().expect("profile dir");
    let c = browser(&wd, &chromium, profile.path()).await;

    // Opening a link shows what will happen and changes nothing.
    c.goto(&link(0, "Terima")).await.expect("open the link");
    eventually(&c, "#effect", |t| t.contains("diterima")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ticket(&http, &daemon, &admin, &codes[0]).await["status"], "assigned");

    // Terima → in_progress, audited as the official.
    confirm(&c, &link(0, "Terima"), &codes[0], None).await;
    let t = ticket_until(&http, &daemon, &admin, &codes[0], |t| t["status"] == "in_progress").await;
    let last = t["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], format!("user:{}", official.to_lowercase()), "{last}");
    // The same link again: used.
    c.goto(&link(0, "Terima")).await.expect("open the used link");
    eventually(&c, "#error", |t| t.contains("sudah digunakan")).await;

    // Minta info → the question reaches the resident's mailbox; the clocks wait.
    let question = "Di RT berapa tepatnya lubang itu, Bu/Pak?";
    confirm(&c, &link(1, "Minta info"), &codes[1], Some(question)).await;
    let got = peer.wait_for("warga", &format!("{tag}w1"), 2, Duration::from_secs(30)).await;
    let asked = text_of(&got[1]);
    assert!(asked.contains(question) && asked.contains(&codes[1]), "{asked}");
    let t = ticket(&http, &daemon, &admin, &codes[1]).await;
    assert_eq!(t["paused"], true, "{t}");

    // Bukan wewenang kami → back in triage, no OPD, the reason in the audit.
    confirm(
        &c,
        &link(2, "Bukan wewenang kami"),
        &codes[2],
        Some("Jalan provinsi, bukan kabupaten"),
    )
    .await;
    let t = ticket_until(&http, &daemon, &admin, &codes[2], |t| t["status"] == "new").await;
    assert!(t["opd"].is_null(), "{t}");
    assert!(t.to_string().contains("Jalan provinsi, bukan kabupaten"), "{t}");

    // Selesai → resolved; the note reaches the resident as the answer.
    let note = "Lubang sudah kami tambal pada hari Kamis.";
    confirm(&c, &link(3, "Selesai"), &codes[3], Some(note)).await;
    ticket_until(&http, &daemon, &admin, &codes[3], |t| t["status"] == "resolved").await;
    let got = peer.wait_for("warga", &format!("{tag}w3"), 2, Duration::from_secs(30)).await;
    assert!(got.iter().any(|m| text_of(m).contains(note)), "the note never reached the resident");

    c.close().await.expect("close the session");
    daemon.terminate().await;
}
