//! Scale-out: three `aduan serve` instances on one PostgreSQL database, one intake mailbox
//! (the real Dovecot + Postfix of `cargo xtask test`) and one shared attachment directory,
//! as behind a load balancer. Intake arrives at all three at once (the API, with a client that
//! retries elsewhere like a load balancer, and mail); the instance holding the IMAP lease is
//! killed with SIGKILL in the middle. Then:
//! - every acknowledged message is stored exactly once (redeliveries to another instance are
//!   recognised), and every mail is one ticket, none twice, none left unread;
//! - exactly one instance polled the mailbox at a time (the lease), and after the kill a
//!   survivor took the lease over and read the mails that came afterwards;
//! - every receipt (an outbox row, claimed by whichever instance's outbound worker) reached
//!   its resident once. The one allowed exception is a row whose SMTP transaction the killed
//!   instance finished in the instant before SIGKILL, before it could mark the row sent: a
//!   survivor sends it again, with the same Message-ID (so mail clients show it once).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aduan_email::testkit::{MailPeer, plain_mail, unique_tag};
use aduan_tests::{Binary, Config, Daemon, PgDatabase};
use serde_json::json;

use crate::common::{all_ticket_codes, client, send, tickets};
use crate::email::email_config;

const INSTANCES: usize = 3;
const MAILS_BEFORE: usize = 60;
const MAILS_AFTER: usize = 30;
const API_MESSAGES: usize = 240;

/// The instances holding a lease whose name starts with `email:`, by `GET /metrics`
/// (`aduan_lease_held{lease="email:…"} 1`). Dead instances hold nothing.
async fn email_lease_holders(
    http: &reqwest::Client,
    urls: &[String],
    alive: &[bool],
) -> Vec<usize> {
    let mut holders = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        if !alive[i] {
            continue;
        }
        let Ok(r) = send(http.get(format!("{url}/metrics"))).await else { continue };
        let held = r.text.lines().any(|line| {
            line.starts_with("aduan_lease_held{lease=\"email:") && line.ends_with(" 1")
        });
        if held {
            holders.push(i);
        }
    }
    holders
}

/// Waits until exactly one live instance holds the mailbox's lease; returns it.
async fn wait_for_one_holder(http: &reqwest::Client, urls: &[String], alive: &[bool]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let holders = email_lease_holders(http, urls, alive).await;
        assert!(holders.len() <= 1, "several instances hold the mailbox lease: {holders:?}");
        if let [one] = holders[..] {
            return one;
        }
        assert!(Instant::now() < deadline, "no live instance took the mailbox lease within 40 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Each mail's resident has an address of their own (automatic mail to one address is
/// rate-limited, RFC 3834): `warga+<folder>@…`, delivered into that folder of `warga`.
fn resident(i: usize, tag: &str) -> String {
    format!("{tag}r{i}")
}

fn complaint(i: usize, peer: &MailPeer, tag: &str) -> Vec<u8> {
    plain_mail(
        &format!("Warga {i} <{}>", peer.address("warga", Some(&resident(i, tag)))),
        &peer.address("intake", Some(tag)),
        &format!("Saluran tersumbat {i}"),
        &format!("s{i}.{tag}@example.id"),
        &format!("Saluran air di RT {i} tersumbat [mail-{i}]"),
    )
}

/// Posts API message `i` to instance `i % n`, and on a transport error or 5xx to the next
/// instance, as a load balancer would; a fifth of them is then delivered again to another
/// instance, which must recognise it. Returns the ticket of the acknowledgement.
async fn post_until_acknowledged(
    http: &reqwest::Client,
    urls: &[String],
    token: &str,
    i: usize,
) -> String {
    let body = json!({
        "external_id": format!("scale-{i}"),
        "sender": {"name": format!("Warga {i}"), "id": format!("u-scale-{i}")},
        "text": format!("Jalan berlubang di RT {i} [api-{i}]"),
    });
    let mut ticket = None;
    for attempt in 0..urls.len() * 4 {
        let url = &urls[(i + attempt) % urls.len()];
        let req = http.post(format!("{url}/api/v1/messages")).bearer_auth(token).json(&body);
        match send(req).await {
            Ok(r) if r.status.is_success() => {
                ticket = Some(r.body["ticket"].as_str().expect("a ticket code").to_owned());
                break;
            }
            Ok(r) if r.status.is_server_error() => {}
            Ok(r) => panic!("message {i}: {} {}", r.status, r.text),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ticket = ticket.unwrap_or_else(|| panic!("message {i} was acknowledged by no instance"));
    if i.is_multiple_of(5) {
        for attempt in 1..urls.len() * 4 {
            let url = &urls[(i + attempt) % urls.len()];
            let req = http.post(format!("{url}/api/v1/messages")).bearer_auth(token).json(&body);
            if let Ok(r) = send(req).await
                && r.status.is_success()
            {
                assert_eq!(r.body["duplicate"], true, "redelivery of {i} stored again: {}", r.text);
                assert_eq!(r.body["ticket"], ticket.as_str(), "redelivery of {i}: another ticket");
                break;
            }
        }
    }
    ticket
}

#[tokio::test]
async fn three_instances_on_postgres_lose_and_double_nothing_when_one_is_killed() {
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let Some(db) = PgDatabase::create().await else { return };
    let tag = unique_tag("scale");
    let shared = tempfile::tempdir().expect("temp dir");
    let attachments = shared.path().join("attachments");
    let base =
        Config::postgres(db.url()).env("ADUAN__STORAGE__DIR", attachments.display().to_string());
    let config = email_config(base, &peer, &tag);

    let first = (0..MAILS_BEFORE).map(|i| complaint(i, &peer, &tag)).collect::<Vec<_>>();
    peer.append_all("intake", &tag, &first).await;

    let mut daemons = Vec::new();
    for _ in 0..INSTANCES {
        daemons.push(Daemon::start(&bin, config.clone()).await);
    }
    let urls: Vec<String> = daemons.iter().map(Daemon::base_url).collect();
    let mut alive = vec![true; INSTANCES];
    let http = client();
    let token = daemons[0].apikey("scale", "admin");

    let holder = wait_for_one_holder(&http, &urls, &alive).await;

    // Intake at all three, 12 requests in flight.
    let acked = Arc::new(AtomicUsize::new(0));
    let load = {
        let (http, urls, token, acked) = (http.clone(), urls.clone(), token.clone(), acked.clone());
        tokio::spawn(async move {
            use futures::StreamExt;
            futures::stream::iter(0..API_MESSAGES)
                .map(|i| {
                    let (http, urls, token, acked) = (&http, &urls, &token, &acked);
                    async move {
                        let t = post_until_acknowledged(http, urls, token, i).await;
                        acked.fetch_add(1, Ordering::Relaxed);
                        (i, t)
                    }
                })
                .buffer_unordered(12)
                .collect::<BTreeMap<usize, String>>()
                .await
        })
    };

    // Kill the poller's instance in the middle of the load and of the mailbox.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::Relaxed) < API_MESSAGES / 3 {
        assert!(Instant::now() < deadline, "the API load made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processed = format!("{tag}-processed");
    let moved_before_kill = peer.count("intake", &processed).await;
    daemons[holder].kill9();
    alive[holder] = false;
    let killed_at = Instant::now();
    let later = (MAILS_BEFORE..MAILS_BEFORE + MAILS_AFTER)
        .map(|i| complaint(i, &peer, &tag))
        .collect::<Vec<_>>();
    peer.append_all("intake", &tag, &later).await;

    let successor = wait_for_one_holder(&http, &urls, &alive).await;
    assert_ne!(successor, holder);
    let failover = killed_at.elapsed();
    let api_tickets = load.await.expect("the load task");
    assert_eq!(api_tickets.len(), API_MESSAGES);

    // Every mail read, by whoever held the lease.
    let mails = MAILS_BEFORE + MAILS_AFTER;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = peer.count("intake", &processed).await as usize;
        let left = peer.count("intake", &tag).await;
        if done == mails && left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {mails} mails processed and {left} left in the intake folder after 90 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every acknowledged message stored exactly once; every mail one ticket.
    let survivor = &daemons[successor];
    let codes = all_ticket_codes(&http, survivor, &token).await;
    let views = tickets(&http, survivor, &token, &codes).await;
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for view in &views {
        let code = view["code"].as_str().unwrap_or_default().to_owned();
        for m in view["messages"].as_array().expect("messages") {
            if m["direction"] != "in" {
                continue;
            }
            let text = m["text"].as_str().unwrap_or_default();
            let marker = text.rsplit('[').next().unwrap_or_default().trim_end_matches(']');
            seen.entry(marker.to_owned()).or_default().push(code.clone());
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, t)| t.len() > 1).collect();
    assert!(twice.is_empty(), "messages stored more than once: {twice:?}");
    for (i, ticket) in &api_tickets {
        assert_eq!(
            seen.get(&format!("api-{i}")).map(Vec::as_slice),
            Some(std::slice::from_ref(ticket)),
            "acknowledged API message {i} is not stored once on its ticket"
        );
    }
    let mail_tickets: BTreeSet<String> = (0..mails)
        .map(|i| {
            let t = seen.get(&format!("mail-{i}")).unwrap_or_else(|| panic!("mail {i} not stored"));
            t[0].clone()
        })
        .collect();
    assert_eq!(mail_tickets.len(), mails, "two mails on one ticket");
    assert_eq!(codes.len(), API_MESSAGES + mails);

    // Every receipt reached the resident once (see the module comment for the one exception).
    let mail_ticket = |i: usize| seen[&format!("mail-{i}")][0].clone();
    // Rows the killed instance had claimed but not sent come back when their outbound lease
    // (120 s) runs out, so a receipt may take that long after the kill.
    let deadline = killed_at + Duration::from_secs(150);
    let mut receipts = 0;
    let mut resent = 0;
    for i in 0..mails {
        let got = loop {
            let got = peer.messages("warga", &resident(i, &tag)).await;
            if !got.is_empty() {
                break got;
            }
            assert!(Instant::now() < deadline, "no receipt for mail {i} within 150 s of the kill");
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let ids: BTreeSet<String> = got.iter().map(|m| message_id(m)).collect();
        assert_eq!(ids.len(), 1, "mail {i}: receipts sent twice as different mails");
        for m in &got {
            assert_eq!(
                receipt_code(m),
                Some(mail_ticket(i)),
                "mail {i}: a receipt for another ticket"
            );
        }
        receipts += got.len();
        resent += got.len() - 1;
    }
    // Give a late repeat the chance to show up before judging.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut total = 0;
    for i in 0..mails {
        total += peer.count("warga", &resident(i, &tag)).await as usize;
    }
    resent += total - receipts;
    assert!(
        resent <= 1,
        "{resent} receipts delivered twice; only a row in flight at the kill may be"
    );

    // The killed instance had taken the lease, the successor took it over; nobody else polled.
    let took = |d: &Daemon| d.log().matches("Lease taken").count();
    assert!(took(&daemons[holder]) >= 1, "the killed instance never took the lease");
    for (i, d) in daemons.iter().enumerate() {
        if i != holder && i != successor {
            assert_eq!(took(d), 0, "instance {i} polled the mailbox too:\n{}", d.log());
        }
    }
    eprintln!(
        "scale-out: {INSTANCES} instances, {API_MESSAGES} API messages ({} redelivered to \
         another instance), {mails} mails ({moved_before_kill} moved before the kill of \
         instance {holder}); poller on instance {successor} {:.1} s after the kill; \
         {total} receipts, {resent} resent",
        API_MESSAGES.div_ceil(5),
        failover.as_secs_f64(),
    );
    for d in &mut daemons {
        if d.is_running() {
            d.terminate().await;
        }
    }
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
        .map(str::trim)
}

/// The ticket code in a receipt's subject (`… [ADU-…]`).
fn receipt_code(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let parsed = mail_parser::MessageParser::default().parse(text.as_bytes())?;
    let subject = parsed.subject()?;
    let start = subject.find("ADU-")?;
    subject.get(start..start + 12).map(str::to_owned)
}

fn message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    header(&text, "Message-ID").unwrap_or_default().to_owned()
}
