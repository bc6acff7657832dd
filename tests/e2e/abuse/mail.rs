//! Abuse scenarios: mail. Against the real daemon and the real Dovecot + Postfix of
//! `cargo xtask test`:
//! - a forged `From: <official>` answer (issue 14.4) is kept as an unverified note, never
//!   relayed, and only a reply to the notification's `Reply-To` (with its reply token, and a
//!   pass from the trusted MTA's `Authentication-Results`) reaches the resident;
//! - one mail the store refuses on PostgreSQL is quarantined alone, the rest of its batch
//!   become tickets, and a NUL in an encoded subject stops nothing (issue 21.1);
//! - 50,000 quoted lines cost milliseconds, not the poller (issue 21.2);
//! - a mail over `max_message_bytes` is never fetched: quarantined, its human sender told,
//!   an automated sender not (issue 21.4).

use std::time::{Duration, Instant};

use aduan_email::testkit::{MailPeer, plain_mail, unique_tag};
use aduan_tests::{Binary, Config, Daemon, PgDatabase};
use serde_json::Value;

use crate::common::{all_ticket_codes, client, registry_with_dpu_official, ticket_until, tickets};
use crate::email::email_config;

fn parsed(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default().parse(raw).expect("a mail")
}

fn text_of(raw: &[u8]) -> String {
    let m = parsed(raw);
    let subject = m.subject().unwrap_or_default().to_owned();
    let body = m.body_text(0).map(|b| b.into_owned()).unwrap_or_default();
    format!("{subject}\n{body}")
}

fn notes(t: &Value) -> Vec<String> {
    t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .filter(|text| text.starts_with(aduan_email::official::NOTE_PREFIX))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_forged_official_answer_is_an_unverified_note_and_only_the_reply_token_answers() {
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let tag = unique_tag("forge");
    let official = peer.address("kepala.dpu", Some(&tag));
    let resident = peer.address("warga", Some(&tag));
    let intake = peer.address("intake", Some(&tag));
    let (_site, registry_path) = registry_with_dpu_official(&official);
    // Our MTA is `mx.aduan.test` (the peer's myhostname); its Authentication-Results count.
    let config = email_config(Config::sqlite(), &peer, &tag)
        .env("ADUAN__ROUTING__OPD_FILE", registry_path.display().to_string())
        .env("ADUAN__ROUTING__POLL_MS", "100")
        .env("ADUAN__OUTBOUND__POLL_MS", "100")
        .env("ADUAN__CHANNELS__EMAIL__TRUSTED_AUTHSERV_ID", "mx.aduan.test");
    let mut daemon = Daemon::start(&bin, config).await;

    let complaint = plain_mail(
        &format!("Budi Santoso <{resident}>"),
        &intake,
        "Jalan rusak",
        &format!("c1.{tag}@warga.example"),
        "Jalan rusak berlubang besar di Desa Kedungrandu Kec. Patikraja, sudah dua bulan \
         belum diperbaiki dan membahayakan pengendara motor.",
    );
    peer.smtp_send(&resident, &[&intake], &complaint).await;
    let receipt = text_of(&peer.wait_for("warga", &tag, 1, Duration::from_secs(30)).await[0]);
    let code = aduan_core::TicketCode::find_all(&receipt)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no code in the receipt: {receipt}\n{}", daemon.log()))
        .to_string();
    let notice = peer.wait_for("kepala.dpu", &tag, 1, Duration::from_secs(30)).await;
    let notice = parsed(&notice[0]);
    let notice_id = notice.message_id().expect("our Message-ID").to_owned();
    let reply_to = notice
        .reply_to()
        .and_then(|r| r.first())
        .and_then(|a| a.address())
        .expect("a Reply-To")
        .to_owned();
    assert_ne!(reply_to, intake, "the Reply-To carries a token");
    let http = client();
    let admin = daemon.apikey("forge", "admin");

    let answer = |n: u32, to: &str, extra: &str, text: &str| {
        format!(
            "From: Kepala DPU <{official}>\r\nTo: {to}\r\nSubject: Re: [{code}] Aduan untuk \
             ditindaklanjuti\r\nMessage-ID: <f{n}.{tag}@dpu.example>\r\nIn-Reply-To: <{notice_id}>\r\n\
             {extra}Date: Mon, 20 Apr 2026 11:00:00 +0700\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
        )
    };
    // 1. Anyone can write `From: <official>` and the code: no token, no answer.
    let forged = answer(1, &intake, "", "Sudah selesai, silakan transfer biaya ke rekening kami.");
    peer.smtp_send(&official, &[&intake], forged.as_bytes()).await;
    // 2. The right token, but our MTA says the sender's domain did not authenticate.
    let fail = "Authentication-Results: mx.aduan.test; dmarc=fail header.from=aduan.test;\r\n \
                dkim=none; spf=fail smtp.mailfrom=aduan.test\r\n\
                Authentication-Results: evil.example; dmarc=pass header.from=aduan.test\r\n";
    let unauthenticated = answer(2, &reply_to, fail, "Jawaban kedua tanpa autentikasi.");
    peer.smtp_send(&official, &[&reply_to], unauthenticated.as_bytes()).await;
    let t = ticket_until(
        &http,
        &daemon,
        &admin,
        &code,
        "two unverified notes",
        Duration::from_secs(30),
        |t| notes(t).len() == 2,
    )
    .await;
    for note in notes(&t) {
        assert!(note.contains(aduan_email::official::UNVERIFIED_PREFIX), "{note}");
    }
    assert_eq!(t["status"], "assigned", "a forged answer moves nothing: {t}");
    assert!(t["first_responded_at"].is_null(), "a forged answer stops no clock: {t}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(peer.count("warga", &tag).await, 1, "a forged answer reached the resident");

    // 3. A reply to the Reply-To, authenticated by our MTA: the OPD's answer.
    let pass = "Authentication-Results: mx.aduan.test; dkim=pass header.d=aduan.test\r\n";
    let real = answer(3, &reply_to, pass, "Tim kami akan menambal jalan tersebut hari Kamis.");
    peer.smtp_send(&official, &[&reply_to], real.as_bytes()).await;
    let inbox = peer.wait_for("warga", &tag, 2, Duration::from_secs(30)).await;
    let relayed = text_of(&inbox[1]);
    assert!(relayed.contains("menambal jalan tersebut hari Kamis"), "{relayed}");
    let t = ticket_until(
        &http,
        &daemon,
        &admin,
        &code,
        "the answer taken up",
        Duration::from_secs(30),
        |t| t["status"] == "in_progress",
    )
    .await;
    assert!(t["first_responded_at"].is_string(), "{t}");
    let all = format!("{t}");
    assert!(!inbox.iter().any(|m| text_of(m).contains("rekening")), "{all}");
    daemon.terminate().await;
}

#[tokio::test]
async fn one_mail_the_store_refuses_is_quarantined_alone_on_postgres() {
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let Some(db) = PgDatabase::create().await else { return };
    let tag = unique_tag("poison");
    let intake = peer.address("intake", Some(&tag));
    peer.create_folder("intake", &tag).await;
    let mut daemon =
        Daemon::start(&bin, email_config(Config::postgres(db.url()), &peer, &tag)).await;
    // A mail the store refuses, whatever the sanitiser lets through: the database itself
    // refuses one marker (as it refused a NUL before the sanitiser).
    let pool = sqlx::PgPool::connect(db.url()).await.expect("connect");
    sqlx::query(
        "ALTER TABLE messages ADD CONSTRAINT abuse_refused CHECK (text NOT LIKE '%TOLAK-SIMPAN%')",
    )
    .execute(&pool)
    .await
    .expect("add the constraint");
    pool.close().await;

    let mail = |n: u32, subject: &str, body: &str| {
        plain_mail(
            &format!("Warga {n} <warga{n}@example.id>"),
            &intake,
            subject,
            &format!("p{n}.{tag}@example.id"),
            body,
        )
    };
    // The NUL of the review, in an encoded subject, then the refused mail, then good ones:
    // one APPEND session, so they are one batch.
    let mails = vec![
        mail(1, "Lampu mati 1", "Lampu di RT 1 mati [baik-1]"),
        mail(2, "=?utf-8?q?Sampah=00menumpuk?=", "Sampah di pasar [nul-2]"),
        mail(3, "Jalan rusak 3", "Jalan berlubang TOLAK-SIMPAN [buruk-3]"),
        mail(4, "Lampu mati 4", "Lampu di RT 4 mati [baik-4]"),
        mail(5, "Lampu mati 5", "Lampu di RT 5 mati [baik-5]"),
    ];
    peer.append_all("intake", &tag, &mails).await;

    let quarantine = format!("{tag}-quarantine");
    let processed = format!("{tag}-processed");
    let start = Instant::now();
    loop {
        let (q, p) =
            (peer.count("intake", &quarantine).await, peer.count("intake", &processed).await);
        if q == 1 && p == 4 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{p} processed, {q} quarantined, {} left\n{}",
            peer.count("intake", &tag).await,
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(peer.count("intake", &tag).await, 0, "mail left unread");
    let set_aside = peer.messages("intake", &quarantine).await;
    assert!(String::from_utf8_lossy(&set_aside[0]).contains("buruk-3"));

    let http = client();
    let token = daemon.apikey("poison", "read");
    let codes = all_ticket_codes(&http, &daemon, &token).await;
    let views = tickets(&http, &daemon, &token, &codes).await;
    let texts: Vec<String> =
        views.iter().map(|v| v["messages"][0]["text"].as_str().unwrap().to_owned()).collect();
    for marker in ["baik-1", "nul-2", "baik-4", "baik-5"] {
        assert!(texts.iter().any(|t| t.contains(marker)), "{marker} is no ticket: {texts:?}");
    }
    assert_eq!(texts.len(), 4, "{texts:?}");
    let nul = texts.iter().find(|t| t.contains("nul-2")).unwrap();
    assert!(nul.starts_with("Sampahmenumpuk") && !nul.contains('\0'), "{nul:?}");
    let log = daemon.log();
    assert!(!log.contains("TOLAK-SIMPAN") && !log.contains("warga3@"), "personal data logged");
    daemon.terminate().await;
}

#[tokio::test]
async fn fifty_thousand_quoted_lines_cost_milliseconds() {
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let tag = unique_tag("quote");
    let intake = peer.address("intake", Some(&tag));
    let mut body = String::from("Lampu jalan mati di RT 2 [kutipan]\n");
    for i in 0..50_000 {
        body.push_str(&format!("> baris lama {i}\n"));
    }
    body.push_str("Terima kasih.\n");
    peer.append(
        "intake",
        &tag,
        &plain_mail("warga@example.id", &intake, "Lampu", &format!("q.{tag}@w"), &body),
    )
    .await;
    peer.append(
        "intake",
        &tag,
        &plain_mail(
            "warga@example.id",
            &intake,
            "Sampah",
            &format!("q2.{tag}@w"),
            "Sampah [sesudah]",
        ),
    )
    .await;
    let mut daemon = Daemon::start(&bin, email_config(Config::sqlite(), &peer, &tag)).await;
    let started = Instant::now();
    // The old scan took many seconds of CPU for this mail (30 s for 80,000 lines).
    let processed = format!("{tag}-processed");
    while peer.count("intake", &processed).await < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the quoted mail held the poller for {:?}\n{}",
            started.elapsed(),
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("two mails, one of 50,000 quoted lines, processed in {:?}", started.elapsed());
    daemon.terminate().await;
}

#[tokio::test]
async fn a_mail_over_max_message_bytes_is_not_fetched_and_its_sender_is_told() {
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let tag = unique_tag("big");
    let intake = peer.address("intake", Some(&tag));
    let resident = peer.address("warga", Some(&tag));
    let big_body = "Foto terlampir. ".repeat(160_000); // 2.5 MB
    let big = plain_mail(&resident, &intake, "Banjir", &format!("b1.{tag}@w"), &big_body);
    let robot = format!(
        "From: {resident}\r\nTo: {intake}\r\nSubject: Laporan otomatis\r\nMessage-ID: <b2.{tag}@w>\r\n\
         Auto-Submitted: auto-generated\r\n\r\n{big_body}\r\n"
    );
    let small = plain_mail(&resident, &intake, "Banjir kecil", &format!("b3.{tag}@w"), "Air naik.");
    peer.append_all("intake", &tag, &[big, robot.into_bytes(), small]).await;
    let config = email_config(Config::sqlite(), &peer, &tag)
        .env("ADUAN__CHANNELS__EMAIL__MAX_MESSAGE_BYTES", "1048576");
    let mut daemon = Daemon::start(&bin, config).await;
    let quarantine = format!("{tag}-quarantine");
    let start = Instant::now();
    while peer.count("intake", &quarantine).await < 2 {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The person is told (once); the receipt of the small mail is the other mail.
    let inbox = peer.wait_for("warga", &tag, 2, Duration::from_secs(30)).await;
    let texts: Vec<String> = inbox.iter().map(|m| text_of(m)).collect();
    let told: Vec<&String> = texts.iter().filter(|t| t.contains("terlalu besar")).collect();
    assert_eq!(told.len(), 1, "{texts:?}");
    assert!(told[0].contains("1 MB"), "{}", told[0]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The automated sender gets nothing (the rest are the receipt and the identity
    // request of the small mail's ticket).
    let texts: Vec<String> =
        peer.messages("warga", &tag).await.iter().map(|m| text_of(m)).collect();
    let told = texts.iter().filter(|t| t.contains("terlalu besar")).count();
    assert_eq!(told, 1, "the automated sender was answered: {texts:?}");
    let http = client();
    let token = daemon.apikey("big", "read");
    assert_eq!(all_ticket_codes(&http, &daemon, &token).await.len(), 1);
    daemon.terminate().await;
}
