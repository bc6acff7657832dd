//! Faults around the real daemon, each of which must cost nothing acknowledged and double
//! nothing:
//!
//! * the SMTP server stops for a while → the receipts wait and go out when it returns, each
//!   once;
//! * the IMAP server "restarts" in the middle of a FETCH of 200 mails, twice → every mail is
//!   one ticket, none is lost or stored twice;
//! * PostgreSQL is stopped (fast, then immediate) and started again → `/readyz` answers 503
//!   while it is away and 200 again after, intake answers 5xx (not 201) meanwhile and works
//!   again after;
//! * the Telegram Bot API answers 429 and 5xx for a while → every receipt is delivered once,
//!   after waits that honour `retry_after` and the doubling backoff;
//! * the attachment store is full, then read-only → the message gets a clear JSON error
//!   (507 / 503) and is not stored; once there is room it is accepted.
//!
//! The shared peers of `cargo xtask test` are never stopped (other tests use them): SMTP and
//! IMAP go through a [`Proxy`] the test stops and starts; PostgreSQL is a private cluster;
//! the attachment store is a private tmpfs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aduan_email::testkit::{MailPeer, plain_mail, unique_tag};
use aduan_tests::faults::{Cut, PgCluster, Proxy, Tmpfs};
use aduan_tests::{Binary, Config, Daemon, toml_str};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    all_ticket_codes, client, eventually, get, metric, post_message, registry_with_dpu_official,
    send, tickets,
};
use crate::email::email_config;
use crate::fake_bot::{Failure, FakeBot, TOKEN};

/// `GET /metrics` as text.
async fn metrics(http: &reqwest::Client, daemon: &Daemon) -> String {
    let m = get(http, daemon, "/metrics", None).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    m.text
}

/// The email channel's config with IMAP and/or SMTP pointed at proxies.
fn via_proxies(
    config: Config,
    peer: &MailPeer,
    imap: Option<&Proxy>,
    smtp: Option<&Proxy>,
) -> Config {
    let mut extra = config.extra_toml.clone();
    if let Some(p) = imap {
        let from = format!("imap_port = {}\n", peer.imap.port());
        assert!(extra.contains(&from), "email_config no longer writes {from:?}");
        extra = extra.replace(&from, &format!("imap_port = {}\n", p.addr().port()));
    }
    if let Some(p) = smtp {
        let from = toml_str(&format!("smtp://{}", peer.smtp));
        assert!(extra.contains(&from), "email_config no longer writes {from}");
        extra = extra.replace(&from, &toml_str(&format!("smtp://{}", p.addr())));
    }
    Config { extra_toml: extra, ..config }
}

/// The codes of the receipts in `raws` (each mail's first ADU- code).
fn receipt_codes(raws: &[Vec<u8>]) -> Vec<String> {
    raws.iter()
        .map(|raw| {
            let text = String::from_utf8_lossy(raw);
            aduan_core::TicketCode::find_all(&text)
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("a receipt without a code:\n{text}"))
                .to_string()
        })
        .collect()
}

/// SMTP stopped for a while: the receipts of the mails that arrive meanwhile, and the
/// notifications the routing worker sends the OPD's official, fail, are retried with
/// backoff and all go out once it is back, each exactly once. Without the retry (a failed
/// send given up, or dropped) the folders would stay short; a send recorded twice would
/// show as a mail too many. All receipts go to one resident, five in all, the RFC 3834
/// burst: failed attempts used to count against that limit, and a receipt retried through
/// the outage was then given up for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_for_a_while_receipts_and_notifications_go_out_when_it_returns_each_once() {
    const MAILS: usize = 4;
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let tag = unique_tag("smtpdown");
    let intake = peer.address("intake", Some(&tag));
    let resident = peer.address("warga", Some(&tag));
    let official = peer.address("kepala.dpu", Some(&tag));
    let mail = |i: usize| {
        plain_mail(
            &format!("Budi Santoso <{resident}>"),
            &intake,
            &format!("Jalan rusak {i}"),
            &format!("s{i}.{tag}@warga.example"),
            &format!(
                "Jalan rusak berlubang besar di Desa Kedungrandu Kec. Patikraja, RT {i}, sudah \
                 dua bulan belum diperbaiki dan membahayakan pengendara motor. [smtp-{i}]"
            ),
        )
    };
    let (_site, registry_path) = registry_with_dpu_official(&official);
    // The first mail is there before the daemon starts: its receipt and notification go
    // out while SMTP is up and leave pooled connections for the outage to cut.
    peer.append("intake", &tag, &mail(0)).await;
    let smtp = Proxy::start(peer.smtp).await;
    let config = via_proxies(email_config(Config::sqlite(), &peer, &tag), &peer, None, Some(&smtp))
        .env("ADUAN__ROUTING__OPD_FILE", registry_path.display().to_string())
        .env("ADUAN__ROUTING__POLL_MS", "100")
        .env("ADUAN__OUTBOUND__POLL_MS", "100")
        .env("ADUAN__OUTBOUND__BACKOFF_SECS", "1");
    let daemon = Daemon::start(&bin, config).await;
    let http = client();
    peer.wait_for("warga", &tag, 1, Duration::from_secs(30)).await;
    peer.wait_for("kepala.dpu", &tag, 1, Duration::from_secs(30)).await;

    smtp.stop();
    let down_at = Instant::now();
    let raws: Vec<Vec<u8>> = (1..=MAILS).map(mail).collect();
    peer.append_all("intake", &tag, &raws).await;
    // Every new receipt and notification tried at least twice against the stopped server
    // (after 1 s, then 2 s).
    eventually(
        "every mail failing twice while SMTP is down",
        &daemon,
        Duration::from_secs(40),
        async || {
            let m = metrics(&http, &daemon).await;
            let failed =
                metric(&m, "aduan_outbound_failed_total{channel=\"email\"}").unwrap_or(0.0);
            (failed >= (2 * 2 * MAILS) as f64).then_some(())
        },
    )
    .await;
    assert_eq!(
        (peer.count("warga", &tag).await, peer.count("kepala.dpu", &tag).await),
        (1, 1),
        "mail arrived although the SMTP server was down"
    );
    let m = metrics(&http, &daemon).await;
    assert_eq!(
        metric(&m, "aduan_outbox_rows{channel=\"email\",state=\"dead\"}").unwrap_or(0.0),
        0.0,
        "mails were given up during a short outage:\n{m}"
    );
    smtp.resume().await;
    let outage = down_at.elapsed();

    eventually(
        "every mail sent after SMTP came back",
        &daemon,
        Duration::from_secs(60),
        async || {
            let m = metrics(&http, &daemon).await;
            let sent = metric(&m, "aduan_outbox_rows{channel=\"email\",state=\"sent\"}");
            (sent == Some((2 * (MAILS + 1)) as f64)).then_some(())
        },
    )
    .await;
    let receipts = peer.wait_for("warga", &tag, MAILS + 1, Duration::from_secs(30)).await;
    let notices = peer.wait_for("kepala.dpu", &tag, MAILS + 1, Duration::from_secs(30)).await;
    // A little longer: a doubled send would arrive now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let read = daemon.apikey("smtp-check", "read");
    let tickets: BTreeSet<String> =
        all_ticket_codes(&http, &daemon, &read).await.into_iter().collect();
    assert_eq!(tickets.len(), MAILS + 1);
    for (who, mails) in [("warga", receipts), ("kepala.dpu", notices)] {
        let now = peer.count(who, &tag).await as usize;
        assert_eq!(now, MAILS + 1, "{who} got {now} mails, not one per ticket");
        let codes = receipt_codes(&mails);
        let distinct: BTreeSet<String> = codes.iter().cloned().collect();
        assert_eq!(distinct, tickets, "{who}'s mails are not one per ticket: {codes:?}");
    }
    let m = metrics(&http, &daemon).await;
    let failed = metric(&m, "aduan_outbound_failed_total{channel=\"email\"}").unwrap_or(0.0);
    eprintln!(
        "[smtp down] outage of {outage:?}: {failed} failed attempts, then {} receipts and {} \
         notifications, each once",
        MAILS + 1,
        MAILS + 1
    );
}

/// An IMAP server that goes away — the connection cut, new connections refused for 1.5 s —
/// three times while the daemon reads 200 mails: half-way through the answer to a FETCH,
/// just before the MOVE of a stored batch, and in a FETCH again. After it every mail is
/// exactly one ticket and none is left in the intake folder. A poller that moved mail
/// before storing it would lose the batch cut off; one that did not dedupe would store the
/// batch whose MOVE was lost twice; one that did not reconnect would never finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_restarted_mid_fetch_loses_and_repeats_nothing() {
    const MAILS: usize = 200;
    let (Some(bin), Some(peer)) = (Binary::locate(), MailPeer::from_env()) else { return };
    let tag = unique_tag("imapcut");
    let intake = peer.address("intake", Some(&tag));
    let raws: Vec<Vec<u8>> = (0..MAILS)
        .map(|i| {
            plain_mail(
                &format!("Warga {i} <warga{i}@example.id>"),
                &intake,
                &format!("Drainase tersumbat {i}"),
                &format!("i{i}.{tag}@example.id"),
                &format!("Drainase tersumbat di gang {i} [imap-{i}]"),
            )
        })
        .collect();
    peer.append_all("intake", &tag, &raws).await;
    let processed = format!("{tag}-processed");

    let imap = Proxy::start(peer.imap).await;
    // 1. The greeting, login, SELECT and SEARCH are well under 4 KB: a cut after 12 KB falls
    //    in the FETCH of the first batch (100 mails).
    // 2. When the poller asks to MOVE a stored batch, the command never reaches the server:
    //    the batch is stored but still in the intake folder, and is read again.
    // 3. Again 50 KB into the answers that follow: in a FETCH again.
    let cuts_wanted =
        [Cut::Downstream(12_000), Cut::Upstream(b"MOVE ".to_vec()), Cut::Downstream(50_000)];
    let mut next = imap.cut_after(12_000);
    let config = via_proxies(email_config(Config::sqlite(), &peer, &tag), &peer, Some(&imap), None)
        .env("ADUAN__ROUTING__ENABLED", "false");
    let daemon = Daemon::start(&bin, config).await;
    let http = client();
    let token = daemon.apikey("imap-check", "read");

    let mut cuts = Vec::new();
    for (round, when) in cuts_wanted.iter().enumerate() {
        let at = tokio::time::timeout(Duration::from_secs(30), next)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "cut {} ({when:?}) did not happen within 30 s ({} bytes relayed); log:\n{}",
                    round + 1,
                    imap.downstream(),
                    daemon.log()
                )
            })
            .expect("the proxy dropped the cut");
        let moved = peer.count("intake", &processed).await as usize;
        let stored = all_ticket_codes(&http, &daemon, &token).await.len();
        assert!(moved < MAILS, "cut {} came after the whole mailbox was read", round + 1);
        cuts.push(format!("{when:?} at {at} bytes: {stored} stored, {moved} moved"));
        // Down for a while: the poller's reconnects are refused.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!imap.is_up());
        next = match cuts_wanted.get(round + 1) {
            Some(Cut::Downstream(bytes)) => imap.cut_after(*bytes),
            Some(other) => imap.cut(other.clone()),
            None => {
                imap.disarm();
                tokio::sync::oneshot::channel().1
            }
        };
        imap.resume().await;
    }
    drop(next);
    assert!(
        imap.cut_connections() >= cuts_wanted.len(),
        "the cuts found no open connection to cut ({} cut)",
        imap.cut_connections()
    );

    eventually(
        "every mail processed after the restarts",
        &daemon,
        Duration::from_secs(90),
        async || {
            let done = peer.count("intake", &processed).await as usize;
            let left = peer.count("intake", &tag).await;
            (done == MAILS && left == 0).then_some(())
        },
    )
    .await;
    assert_eq!(peer.count("intake", &format!("{tag}-quarantine")).await, 0);

    let codes = all_ticket_codes(&http, &daemon, &token).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for view in tickets(&http, &daemon, &token, &codes).await {
        let inbound: Vec<&Value> = view["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["direction"] == "in")
            .collect();
        assert_eq!(inbound.len(), 1, "a ticket with several mails: {view}");
        let text = inbound[0]["text"].as_str().unwrap_or_default();
        let marker = text.rsplit('[').next().unwrap_or_default().trim_end_matches(']').to_owned();
        *seen.entry(marker).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "mails stored twice: {twice:?}");
    let expected: BTreeSet<String> = (0..MAILS).map(|i| format!("imap-{i}")).collect();
    let stored: BTreeSet<String> = seen.keys().cloned().collect();
    let lost: Vec<_> = expected.difference(&stored).collect();
    assert!(lost.is_empty(), "mails lost: {lost:?}");
    assert_eq!(codes.len(), MAILS);
    eprintln!(
        "[imap restart] cuts: {cuts:#?}; {} connections, {} cut; all {MAILS} stored once",
        imap.accepted(),
        imap.cut_connections()
    );
}

/// `GET /readyz` with its own short timeout: the status, or `None` when no answer came.
async fn readyz(http: &reqwest::Client, daemon: &Daemon) -> Option<StatusCode> {
    http.get(daemon.url("/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()
        .map(|r| r.status())
}

fn report(id: &str) -> Value {
    json!({
        "external_id": id,
        "sender": {"name": "Rina", "phone": "+6281311112222"},
        "text": format!("Jembatan retak di dusun [{id}]"),
    })
}

/// PostgreSQL stopped (`fast`: sessions ended; then `immediate`: like a crash) and started
/// again under the running daemon. While it is away `/readyz` answers 503 (promptly, not
/// after the pool's acquire timeout) and intake answers an error rather than 201; after it
/// is back the daemon reconnects by itself: `/readyz` 200, intake works, what was
/// acknowledged before is there once, and what was refused during the outage was not
/// stored. A pool that kept its dead connections would stay unready; a `/readyz` that
/// does not ask the store would never go 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_the_daemon_reconnects_and_readyz_recovers() {
    let Some(bin) = Binary::locate() else { return };
    let Some(pg) = PgCluster::start() else { return };
    let pg = std::sync::Arc::new(pg);
    let daemon = Daemon::start(&bin, Config::postgres(pg.url())).await;
    let intake = daemon.apikey("pg-app", "intake");
    let read = daemon.apikey("pg-dashboard", "read");
    let http = client();

    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut refused = Vec::new();
    for mode in ["fast", "immediate"] {
        let before = format!("pg-{mode}-before");
        let r = post_message(&http, &daemon, &intake, &report(&before)).await.expect("post");
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        acked.insert(before, r.body["ticket"].as_str().unwrap_or_default().to_owned());

        let cluster = pg.clone();
        let m = mode.to_owned();
        tokio::task::spawn_blocking(move || cluster.stop_server(&m)).await.expect("pg_ctl stop");
        assert!(!pg.accepts_connections(), "PostgreSQL still listens after pg_ctl stop");
        let stopped = Instant::now();
        let status = eventually(
            "/readyz to answer 503 with PostgreSQL down",
            &daemon,
            Duration::from_secs(20),
            async || readyz(&http, &daemon).await.filter(|s| *s != StatusCode::OK),
        )
        .await;
        let unready_after = stopped.elapsed();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "[{mode}] /readyz with the store down");
        // A probe gets its answer in time (Kubernetes' default probe timeout is 1 s; the
        // daemon bounds the ping at 2 s).
        let asked = Instant::now();
        assert_eq!(readyz(&http, &daemon).await, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert!(asked.elapsed() < Duration::from_secs(4), "/readyz took {:?}", asked.elapsed());

        let during = format!("pg-{mode}-during");
        let r = post_message(&http, &daemon, &intake, &report(&during))
            .await
            .expect("intake must answer while PostgreSQL is down");
        assert!(
            r.status.is_server_error() && r.body["error"]["code"].is_string(),
            "[{mode}] intake with PostgreSQL down answered {}: {}",
            r.status,
            r.text
        );
        refused.push(during);

        let cluster = pg.clone();
        tokio::task::spawn_blocking(move || cluster.start_server()).await.expect("pg_ctl start");
        let started = Instant::now();
        eventually("/readyz to answer 200 again", &daemon, Duration::from_secs(30), async || {
            (readyz(&http, &daemon).await == Some(StatusCode::OK)).then_some(())
        })
        .await;
        let ready_after = started.elapsed();

        let after = format!("pg-{mode}-after");
        let r = post_message(&http, &daemon, &intake, &report(&after)).await.expect("post");
        assert_eq!(r.status, StatusCode::CREATED, "[{mode}] intake after the restart: {}", r.text);
        acked.insert(after, r.body["ticket"].as_str().unwrap_or_default().to_owned());
        eprintln!(
            "[postgres {mode}] /readyz 503 {unready_after:?} after the stop, 200 again \
             {ready_after:?} after the start"
        );
    }

    // Everything acknowledged is there once; what was refused was not stored.
    for (id, code) in &acked {
        let r = post_message(&http, &daemon, &intake, &report(id)).await.expect("re-post");
        assert_eq!(
            (r.status, &r.body["duplicate"], &r.body["ticket"]),
            (StatusCode::OK, &json!(true), &json!(code)),
            "{id} acknowledged before: {}",
            r.text
        );
    }
    for id in &refused {
        let r = post_message(&http, &daemon, &intake, &report(id)).await.expect("re-post");
        assert_eq!(r.status, StatusCode::CREATED, "{id} was refused, yet stored: {}", r.text);
    }
    let codes = all_ticket_codes(&http, &daemon, &read).await;
    assert_eq!(codes.len(), acked.len() + refused.len());
}

/// A Bot API that answers 429 (`retry_after`) and 500/503/502 for a while: every receipt
/// is delivered once, after the failures, and the waits between the attempts to one chat
/// honour `retry_after` and the doubling backoff (1 s, then 2 s here). Without the retry
/// a 5xx would drop the receipt (its chat would get none); without the backoff the
/// attempts would follow each other within the outbound poll (100 ms); with the sends of
/// a claim made one after another, the healthy chat would wait behind the failing ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_api_answering_429_and_5xx_delivers_every_receipt_once_with_backoff() {
    let Some(bin) = Binary::locate() else { return };
    let fake = FakeBot::start().await;
    let script: [(i64, Vec<Failure>); 4] = [
        (5_001, vec![Failure::TooManyRequests(2)]),
        (5_002, vec![Failure::Server(500), Failure::Server(503)]),
        (5_003, vec![Failure::Gateway(502)]),
        (5_004, vec![]),
    ];
    for (i, (chat, failures)) in script.iter().enumerate() {
        fake.fail_sends(*chat, failures.iter().copied());
        fake.push_updates([json!({
            "update_id": 700_000 + i as i64,
            "message": {
                "message_id": 10 + i as i64,
                "date": 1_800_000_000,
                "chat": {"id": chat, "type": "private", "first_name": "Warga"},
                "from": {"id": chat, "is_bot": false, "first_name": "Warga"},
                "text": format!("Lampu penerangan jalan mati di gang {i}"),
            }
        })]);
    }
    let telegram = format!(
        "[channels.telegram]\nenabled = true\ntoken = {}\napi_url = {}\npoll_timeout_secs = 1\n",
        toml_str(TOKEN),
        toml_str(&fake.url)
    );
    let config = Config { extra_toml: telegram, ..Config::sqlite() }
        .env("ADUAN__ROUTING__ENABLED", "false")
        .env("ADUAN__OUTBOUND__POLL_MS", "100")
        .env("ADUAN__OUTBOUND__BACKOFF_SECS", "1");
    let daemon = Daemon::start(&bin, config).await;
    let http = client();

    eventually("a delivered receipt in every chat", &daemon, Duration::from_secs(40), async || {
        let attempts = fake.attempts();
        script
            .iter()
            .all(|(chat, _)| attempts.iter().any(|a| a.chat_id == *chat && a.status == 200))
            .then_some(())
    })
    .await;
    // Until nothing is left to send (a doubled send would show up meanwhile).
    eventually("an empty outbox", &daemon, Duration::from_secs(10), async || {
        let m = metrics(&http, &daemon).await;
        let sent = metric(&m, "aduan_outbox_rows{channel=\"telegram\",state=\"sent\"}");
        let busy = ["pending", "sending"].iter().any(|s| {
            metric(&m, &format!("aduan_outbox_rows{{channel=\"telegram\",state=\"{s}\"}}"))
                .unwrap_or(0.0)
                > 0.0
        });
        (sent == Some(4.0) && !busy).then_some(())
    })
    .await;

    let read = daemon.apikey("tg-faults", "read");
    let codes = all_ticket_codes(&http, &daemon, &read).await;
    assert_eq!(codes.len(), 4, "one ticket per chat");
    let attempts = fake.attempts();
    let sent = fake.sent();
    let mut receipt_codes = BTreeSet::new();
    for (chat, failures) in &script {
        let mine: Vec<_> = attempts.iter().filter(|a| a.chat_id == *chat).collect();
        let statuses: Vec<u16> = mine.iter().map(|a| a.status).collect();
        let mut expected: Vec<u16> = failures
            .iter()
            .map(|f| match f {
                Failure::TooManyRequests(_) => 429,
                Failure::Server(s) | Failure::Gateway(s) => *s,
            })
            .collect();
        expected.push(200);
        assert_eq!(statuses, expected, "sendMessage answers to chat {chat}");
        for (k, f) in failures.iter().enumerate() {
            let gap = mine[k + 1].at.duration_since(mine[k].at);
            let floor = match f {
                Failure::TooManyRequests(after) => Duration::from_secs(*after),
                // backoff_secs · 2^(attempt - 1)
                _ => Duration::from_secs(1 << k),
            };
            assert!(
                gap >= floor,
                "chat {chat}: attempt {} came {gap:?} after the {f:?}, before the {floor:?} due",
                k + 2
            );
        }
        let delivered: Vec<_> = sent.iter().filter(|s| s.chat_id == *chat).collect();
        assert_eq!(delivered.len(), 1, "chat {chat} got {} receipts", delivered.len());
        let code = aduan_core::TicketCode::find_all(&delivered[0].text)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("a receipt without a code: {}", delivered[0].text))
            .to_string();
        receipt_codes.insert(code);
        eprintln!(
            "[bot api] chat {chat}: {statuses:?} at {:?}",
            mine.iter().map(|a| a.at.duration_since(mine[0].at)).collect::<Vec<_>>()
        );
    }
    assert_eq!(receipt_codes, codes.into_iter().collect::<BTreeSet<_>>());
    // The chat whose receipt never failed was not kept waiting by the others' failures
    // (teloxide pauses 10 s after a 5xx before it returns; the rows of one claim are sent
    // concurrently, one recipient after another only within a recipient).
    let first = attempts.iter().map(|a| a.at).min().expect("attempts");
    let smooth = attempts.iter().find(|a| a.chat_id == 5_004).expect("chat 5004's receipt");
    assert!(
        smooth.at.duration_since(first) < Duration::from_secs(5),
        "chat 5004's receipt waited {:?} behind the failing chats",
        smooth.at.duration_since(first)
    );
    let m = metrics(&http, &daemon).await;
    assert_eq!(metric(&m, "aduan_outbound_failed_total{channel=\"telegram\"}"), Some(4.0), "{m}");
    assert_eq!(metric(&m, "aduan_outbound_sent_total{channel=\"telegram\"}"), Some(4.0), "{m}");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() { todo.push(p) } else { out.push(p) }
        }
    }
    out
}

/// A report with a photo of `size` bytes (content depends on `seed`).
fn photo_report(id: &str, seed: u8, size: usize) -> Value {
    let photo: Vec<u8> =
        (0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect();
    json!({
        "external_id": id,
        "sender": {"name": "Siti Aminah", "phone": "+6281234567890", "email": "siti.aminah@example.id"},
        "text": format!("Foto jalan berlubang dekat sekolah [{id}]"),
        "attachments": [{
            "content_type": "image/jpeg",
            "filename": "jalan.jpg",
            "data_base64": base64::engine::general_purpose::STANDARD.encode(&photo),
        }],
    })
}

/// The attachment store full (a 64 KiB tmpfs and a 200 KB photo), then read-only: the
/// report gets 507 `storage_full` / 503 `storage_unavailable` as JSON, is not stored (no
/// ticket; the same external id is created later, not a duplicate), leaves no half-written
/// file behind to keep the disk full, and the log names no personal data. Once the store
/// has room (remounted bigger / read-write) the same report is accepted. A daemon that
/// stored the message without its photo, or answered 201 before the write, fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_store_full_or_read_only_refuses_the_message_clearly_until_there_is_room() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(&bin, Config::sqlite()).await;
    let intake = daemon.apikey("disk-app", "intake");
    let read = daemon.apikey("disk-dashboard", "read");
    let http = client();
    let Some(disk) = Tmpfs::mount(&daemon.site().dir().join("attachments"), "64k") else {
        return;
    };

    let full = photo_report("disk-full", 1, 200_000);
    let r = post_message(&http, &daemon, &intake, &full).await.expect("post to a full disk");
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::INSUFFICIENT_STORAGE, Some("storage_full")),
        "a photo on a full disk: {}",
        r.text
    );
    let left = files_under(disk.path());
    assert!(left.is_empty(), "the failed write left files behind: {left:?}");
    assert_eq!(all_ticket_codes(&http, &daemon, &read).await, Vec::<String>::new());

    disk.remount("ro");
    let ro = photo_report("disk-ro", 2, 10_000);
    let r = post_message(&http, &daemon, &intake, &ro).await.expect("post to a read-only disk");
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("storage_unavailable")),
        "a photo on a read-only disk: {}",
        r.text
    );
    assert_eq!(all_ticket_codes(&http, &daemon, &read).await, Vec::<String>::new());

    let log = daemon.log();
    assert!(log.contains("Could not write an attachment"), "the failure is not logged:\n{log}");
    for personal in ["Siti", "6281234567890", "siti.aminah", "berlubang", "jalan.jpg"] {
        assert!(!log.contains(personal), "the log names {personal:?}:\n{log}");
    }

    // Room again: both reports are accepted now, as new messages.
    disk.remount("rw,size=4m");
    let mut stored = Vec::new();
    for body in [&full, &ro] {
        let r = send(http.post(daemon.url("/api/v1/messages")).bearer_auth(&intake).json(body))
            .await
            .expect("post after the disk has room");
        assert_eq!(
            (r.status, &r.body["duplicate"]),
            (StatusCode::CREATED, &json!(false)),
            "{}: {}",
            body["external_id"],
            r.text
        );
        stored.push(r.body["ticket"].as_str().unwrap_or_default().to_owned());
    }
    let views = tickets(&http, &daemon, &read, &stored).await;
    for view in &views {
        let inbound = view["messages"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["direction"] == "in"))
            .cloned()
            .unwrap_or_default();
        let size = &inbound["attachments"][0]["size"];
        assert!(size == 200_000 || size == 10_000, "the photo is not on the ticket: {view}");
    }
    assert_eq!(files_under(disk.path()).len(), 2, "two photos in the store");
    assert_eq!(all_ticket_codes(&http, &daemon, &read).await.len(), 2);
    drop(daemon);
    drop(disk);
}
