//! The loop the product exists for, in the real daemon against the real Dovecot + Postfix
//! of `cargo xtask test`: a resident mails a complaint → receipt with the code → the routing
//! worker disposes it to the OPD → the OPD's official gets the mail → the official answers by
//! replying → the answer reaches the resident's mailbox and is on the ticket.

use std::time::{Duration, Instant};

use aduan_email::testkit::{MailPeer, plain_mail, unique_tag};
use aduan_tests::{Binary, Config, Daemon};

use crate::common::{client, registry_with_dpu_official, ticket};
use crate::email::email_config;

fn text_of(raw: &[u8]) -> String {
    let parsed = mail_parser::MessageParser::default().parse(raw).expect("a mail we sent parses");
    let subject = parsed.subject().unwrap_or_default().to_owned();
    let body = parsed.body_text(0).map(|b| b.into_owned()).unwrap_or_default();
    format!("{subject}\n{body}")
}

fn header(raw: &[u8], name: &str) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse(raw)?;
    parsed.header_raw(name).map(|v| v.trim().to_owned())
}

#[tokio::test]
async fn a_mailed_complaint_is_routed_answered_by_the_official_and_the_answer_reaches_the_resident()
{
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let tag = unique_tag("loop");
    let official = peer.address("kepala.dpu", Some(&tag));
    let resident = peer.address("warga", Some(&tag));
    let intake = peer.address("intake", Some(&tag));

    let (_site, registry_path) = registry_with_dpu_official(&official);
    let config = email_config(Config::sqlite(), &peer, &tag)
        .env("ADUAN__ROUTING__OPD_FILE", registry_path.display().to_string())
        .env("ADUAN__ROUTING__POLL_MS", "100")
        .env("ADUAN__OUTBOUND__POLL_MS", "100");
    let mut daemon = Daemon::start(&bin, config).await;

    // 1. The resident mails the complaint.
    let complaint = plain_mail(
        &format!("Budi Santoso <{resident}>"),
        &intake,
        "Jalan rusak",
        &format!("c1.{tag}@warga.example"),
        "Jalan rusak berlubang besar di Desa Kedungrandu Kec. Patikraja, sudah dua bulan \
         belum diperbaiki dan membahayakan pengendara motor.",
    );
    peer.smtp_send(&resident, &[&intake], &complaint).await;

    // 2. The receipt with the tracking code reaches the resident.
    let inbox = peer.wait_for("warga", &tag, 1, Duration::from_secs(30)).await;
    let receipt = text_of(&inbox[0]);
    let code = aduan_core::TicketCode::find_all(&receipt)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no code in the receipt: {receipt}\n{}", daemon.log()))
        .to_string();
    assert!(receipt.contains("sudah kami terima"), "{receipt}");

    // 3. The routing worker disposes it to DPU, whose official is sent the complaint.
    let http = client();
    let admin = daemon.apikey("loop", "admin");
    let official_mails = peer.wait_for("kepala.dpu", &tag, 1, Duration::from_secs(30)).await;
    assert_eq!(official_mails.len(), 1, "one disposition mail, not more");
    let notice = text_of(&official_mails[0]);
    assert!(notice.contains(&format!("[{code}]")), "{notice}");
    assert!(notice.contains("Kedungrandu"), "{notice}");
    let t = ticket(&http, &daemon, &admin, &code).await;
    assert_eq!(t["status"], "assigned", "{t}");
    assert_eq!(t["opd"], "DPU", "{t}");
    assert_eq!(t["place"], "Kedungrandu", "{t}");

    // 4. The official answers by replying to that mail.
    let notice_id = header(&official_mails[0], "Message-ID").expect("our Message-ID");
    // Like a mail program: to the Reply-To, which carries the reply token of this ticket
    // and this official (`intake+<tag>+<token>@`).
    let reply_to = header(&official_mails[0], "Reply-To").expect("a Reply-To");
    let reply_to = reply_to
        .rsplit_once('<')
        .map_or(reply_to.as_str(), |(_, a)| a.trim_end_matches('>'))
        .to_owned();
    let (intake_local, intake_domain) = intake.split_once('@').unwrap();
    assert!(
        reply_to.starts_with(&format!("{intake_local}+")) && reply_to.ends_with(intake_domain),
        "answers go to the intake address with a token: {reply_to}"
    );
    let answer = format!(
        "From: Petugas DPU <{official}>\r\nTo: {reply_to}\r\nSubject: Re: [{code}] Aduan untuk \
         ditindaklanjuti\r\nMessage-ID: <a1.{tag}@dpu.example>\r\nIn-Reply-To: {notice_id}\r\n\
         References: {notice_id}\r\nDate: Mon, 20 Apr 2026 11:00:00 +0700\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nTim kami akan menambal jalan tersebut \
         pada hari Kamis.\r\n\r\nOn Mon, Lapak Aduan wrote:\r\n> Aduan masyarakat berikut\r\n"
    );
    peer.smtp_send(&official, &[&reply_to], answer.as_bytes()).await;

    // 5. The resident receives the answer, threaded under their complaint, once.
    let inbox = peer.wait_for("warga", &tag, 2, Duration::from_secs(30)).await;
    let answered = text_of(&inbox[1]);
    assert!(answered.contains("menambal jalan tersebut pada hari Kamis"), "{answered}");
    assert!(!answered.contains("Aduan masyarakat berikut"), "quoted history leaked: {answered}");
    assert!(answered.contains(&format!("[{code}]")), "{answered}");
    let start = Instant::now();
    let t = loop {
        let t = ticket(&http, &daemon, &admin, &code).await;
        let sent =
            t["messages"].as_array().unwrap().iter().any(|m| {
                m["direction"] == "out" && m["purpose"] == "reply" && m["delivery"] == "sent"
            });
        if sent {
            break t;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "answer not recorded as sent: {t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(t["status"], "in_progress", "the OPD's answer takes the ticket up: {t}");
    assert!(t["first_responded_at"].is_string(), "the answer stops the response clock: {t}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(peer.count("warga", &tag).await, 2, "the resident got something twice");
    assert_eq!(peer.count("kepala.dpu", &tag).await, 1, "the official got something twice");
    daemon.terminate().await;
}
