//! Officials' action links in the mails and the daily digest (issue 19 item 5), on a real
//! store (SQLite always, PostgreSQL when `ADUAN_TEST_PG_URL` is set), with the clock
//! injected.

use std::path::Path;
use std::sync::Arc;

use aduan_core::action_link::{ActionKey, OfficialAction};
use aduan_core::{
    Calendar, Channel, Direction, Identity, IdentityKind, InboundMessage, Purpose, Sender,
    ThreadHints, TicketCode,
};
use aduan_routing::links::{LinkSigner, digest_day};
use aduan_routing::worker::{ManualClock, Routing, WorkerConfig};
use aduan_routing::{Gazetteer, OpdFile, Router, RouterConfig};
use aduan_store::testing::sent_texts;
use aduan_store::{Store, StoreOptions, TicketView};
use chrono::{DateTime, Duration, NaiveDate, Utc};

fn registry() -> OpdFile {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    toml::from_str(&std::fs::read_to_string(root.join("config/opd.toml")).unwrap()).unwrap()
}

fn key() -> ActionKey {
    ActionKey::new(b"officials-test-key-0123456789").unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// 2026-12-25 (Friday) is a holiday in this calendar.
fn calendar() -> Calendar {
    Calendar::new(aduan_core::time::wib(), [NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()])
}

fn worker(store: &Store, clock: Arc<ManualClock>, links: bool) -> Routing {
    let router =
        Router::new(registry(), Gazetteer::for_kabupaten("33.02"), RouterConfig::default());
    let cfg = WorkerConfig {
        admins: vec![Identity::email("admin@banyumaskab.go.id").unwrap()],
        public_url: "https://aduan.example.go.id".into(),
        calendar: calendar(),
        links: links.then(|| LinkSigner {
            key: key(),
            public_url: "https://aduan.example.go.id".into(),
            valid_for: Duration::days(7),
        }),
        digest_hour: Some(7),
        ..WorkerConfig::default()
    };
    Routing::new(store.clone(), router, clock, cfg)
}

async fn road_ticket(store: &Store, id: &str) -> TicketCode {
    say(store, id, id, "jalan rusak berlubang di desa kedungwringin kec jatilawang").await
}

async fn view(store: &Store, code: TicketCode) -> TicketView {
    store.ticket(code).await.unwrap().unwrap()
}

fn out(v: &TicketView, purpose: Purpose) -> Vec<String> {
    v.messages
        .iter()
        .filter(|m| m.direction == Direction::Out && m.purpose == Some(purpose))
        .map(|m| m.text.clone())
        .collect()
}

/// The tokens of the `/aksi/` links in a text.
fn tokens(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix("https://aduan.example.go.id/aksi/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_disposition_carries_links_signed_for_each_official() {
    for (store, _g) in aduan_store::testing::stores(StoreOptions::default()).await {
        let now = Utc::now();
        let clock = Arc::new(ManualClock::new(now));
        let w = worker(&store, clock.clone(), true);
        let code = road_ticket(&store, "71").await;
        w.route_once().await.unwrap();
        w.dispose_once().await.unwrap();
        let v = view(&store, code).await;
        let mails = sent_texts(&store, code, Purpose::Disposition).await;
        assert_eq!(mails.len(), 1, "{mails:?}");
        let text = &mails[0];
        let toks = tokens(text);
        assert_eq!(toks.len(), 4, "{text}");
        // Whoever reads the ticket sees where the links were, not their tokens: a token
        // acts in this official's name.
        let shown = out(&v, Purpose::Disposition);
        assert_eq!(tokens(&shown[0]), ["…"; 4], "{}", shown[0]);
        assert!(toks.iter().all(|t| !shown[0].contains(t.as_str())), "{}", shown[0]);
        assert!(shown[0].starts_with(text.split("/aksi/").next().unwrap()), "the rest as sent");
        let mut nonces = Vec::new();
        for (t, action) in toks.iter().zip(OfficialAction::ALL) {
            let c = key().verify(t, now).unwrap();
            assert_eq!((c.ticket, c.opd.as_str(), c.action), (code, "DPU", action));
            assert_eq!(c.official, "pengaduan.dpu@example.go.id");
            assert_eq!(c.expires_at.timestamp(), (now + Duration::days(7)).timestamp());
            nonces.push(c.nonce);
        }
        nonces.dedup();
        assert_eq!(nonces.len(), 4, "a nonce per link");
        assert!(
            text.contains("Terima: https://") && text.contains("Bukan wewenang kami: https://")
        );
        // Without a signer the mail is as before: no links.
        let code2 = road_ticket(&store, "72").await;
        let plain = worker(&store, clock, false);
        plain.route_once().await.unwrap();
        plain.dispose_once().await.unwrap();
        let mails = out(&view(&store, code2).await, Purpose::Disposition);
        assert!(tokens(&mails[0]).is_empty());
    }
}

#[test]
fn the_digest_is_due_on_working_days_from_its_hour() {
    let cal = calendar();
    // Monday 7 Dec 2026, 06:59 and 07:00 WIB.
    assert_eq!(digest_day(&cal, Some(7), at("2026-12-06T23:59:00Z")), None);
    assert_eq!(
        digest_day(&cal, Some(7), at("2026-12-07T00:00:00Z")),
        NaiveDate::from_ymd_opt(2026, 12, 7)
    );
    // Later that day still the same day; unset hour: never.
    assert_eq!(
        digest_day(&cal, Some(7), at("2026-12-07T10:00:00Z")),
        NaiveDate::from_ymd_opt(2026, 12, 7)
    );
    assert_eq!(digest_day(&cal, None, at("2026-12-07T03:00:00Z")), None);
    // Saturday, and the Christmas holiday (a Friday).
    assert_eq!(digest_day(&cal, Some(7), at("2026-12-12T03:00:00Z")), None);
    assert_eq!(digest_day(&cal, Some(7), at("2026-12-25T03:00:00Z")), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_digest_per_opd_and_day_whichever_instance() {
    for (store, _g) in aduan_store::testing::stores(StoreOptions::default()).await {
        // Friday 11 Dec 2026, 06:30 WIB.
        let clock = Arc::new(ManualClock::new(at("2026-12-10T23:30:00Z")));
        let (a, b, c) = (
            worker(&store, clock.clone(), true),
            worker(&store, clock.clone(), true),
            worker(&store, clock.clone(), true),
        );
        let code = road_ticket(&store, "81").await;
        a.route_once().await.unwrap();
        a.dispose_once().await.unwrap();
        assert_eq!(a.digest_once().await.unwrap(), 0, "before the hour");
        clock.set(at("2026-12-11T00:00:00Z"));
        let (x, y, z) = tokio::join!(a.digest_once(), b.digest_once(), c.digest_once());
        assert_eq!(x.unwrap() + y.unwrap() + z.unwrap(), 1, "{}", store.backend_name());
        assert_eq!(a.digest_once().await.unwrap(), 0);
        let digests = sent_texts(&store, code, Purpose::Digest).await;
        assert_eq!(digests.len(), 1);
        let text = &digests[0];
        assert!(
            text.starts_with("Ringkasan harian aduan untuk Dinas Pekerjaan Umum, 11 Desember 2026"),
            "{text}"
        );
        assert!(text.contains(&format!("[{code}]")), "{text}");
        let toks = tokens(text);
        assert!(toks.len() >= 4, "{text}");
        assert_eq!(
            key().verify(&toks[0], at("2026-12-11T00:00:00Z")).unwrap().official,
            "kepala.dpu@example.go.id"
        );
        // Saturday and a holiday: no digest.
        clock.set(at("2026-12-12T03:00:00Z"));
        assert_eq!(a.digest_once().await.unwrap(), 0, "weekend");
        clock.set(at("2026-12-25T03:00:00Z"));
        assert_eq!(b.digest_once().await.unwrap(), 0, "holiday");
    }
}

/// The resident `sender` writes `text` (a follow-up joins their open ticket).
async fn say(store: &Store, sender: &str, provider_id: &str, text: &str) -> TicketCode {
    let m = InboundMessage {
        channel: Channel::Telegram,
        provider_id: provider_id.to_owned(),
        sender: Sender {
            identity: Some(Identity::new(IdentityKind::Telegram, sender).unwrap()),
            display_name: Some("Siti Aminah".into()),
            contacts: vec![],
        },
        text: text.into(),
        attachments: vec![],
        location: None,
        received_at: Utc::now(),
        thread: ThreadHints::default(),
    };
    store.ingest(m).await.unwrap().ticket.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_residents_answer_to_minta_info_reaches_the_opd_once() {
    for (store, _g) in aduan_store::testing::stores(StoreOptions::default()).await {
        let now = Utc::now();
        let clock = Arc::new(ManualClock::new(now));
        let (a, b) = (worker(&store, clock.clone(), true), worker(&store, clock.clone(), true));
        let code = road_ticket(&store, "91").await;
        // Written before the OPD was sent the ticket: the disposition carries it.
        say(&store, "91", "91-b", "lubangnya sudah dua meter").await;
        assert_eq!(a.follow_up_once().await.unwrap(), 0, "not with an OPD yet");
        a.route_once().await.unwrap();
        say(&store, "91", "91-c", "tolong segera, sudah ada yang jatuh").await;
        a.dispose_once().await.unwrap();
        assert_eq!(a.follow_up_once().await.unwrap(), 0, "the disposition carried it");
        let disposition = &sent_texts(&store, code, Purpose::Disposition).await[0];
        assert!(disposition.contains("sudah ada yang jatuh"), "{disposition}");

        // The official asks through their link; the resident answers twice.
        let ask = key().verify(&tokens(disposition)[2], now).unwrap();
        assert_eq!(ask.action, OfficialAction::AskInfo);
        let outcome = store
            .official_act(ask, "Dinas Pekerjaan Umum".into(), Some("Di RT berapa?".into()))
            .await
            .unwrap();
        assert_eq!(outcome, aduan_store::LinkOutcome::Done);
        assert!(view(&store, code).await.summary.paused);
        say(&store, "91", "91-d", "RT 03 RW 02, depan masjid").await;
        say(&store, "91", "91-e", "dekat jembatan kecil").await;
        assert!(!view(&store, code).await.summary.paused, "the answer resumes");
        let (x, y) = tokio::join!(a.follow_up_once(), b.follow_up_once());
        assert_eq!(x.unwrap() + y.unwrap(), 1, "{}", store.backend_name());
        assert_eq!(a.follow_up_once().await.unwrap(), 0, "relayed once");
        let relayed = sent_texts(&store, code, Purpose::FollowUp).await;
        assert_eq!(relayed.len(), 1, "one official, one mail: {relayed:?}");
        let mail = &relayed[0];
        assert!(mail.starts_with(&format!("[{code}] Keterangan tambahan dari pelapor")), "{mail}");
        let (news, rest) = mail.split_once("Kode aduan").unwrap();
        assert!(news.contains("> RT 03 RW 02, depan masjid\n\n> dekat jembatan kecil"), "{mail}");
        assert!(!news.contains("sudah ada yang jatuh"), "only what is new: {mail}");
        assert!(rest.contains("> tolong segera, sudah ada yang jatuh"), "the ticket below: {mail}");
        assert!(!rest.contains("depan masjid"), "{mail}");
        assert_eq!(tokens(mail).len(), 4, "the official's links again: {mail}");

        // A later message is relayed on its own.
        say(&store, "91", "91-f", "sekarang airnya menggenang").await;
        assert_eq!(b.follow_up_once().await.unwrap(), 1);
        let relayed = out(&view(&store, code).await, Purpose::FollowUp);
        assert_eq!(relayed.len(), 2);
        let (news, _) = relayed[1].split_once("Kode aduan").unwrap();
        assert!(news.contains("menggenang") && !news.contains("masjid"), "{}", relayed[1]);
        assert_eq!(a.follow_up_once().await.unwrap(), 0);
    }
}
