//! The routing worker and the deadline watcher end to end on a real store (SQLite always,
//! PostgreSQL when `ADUAN_TEST_PG_URL` is set; required under `ADUAN_TEST_FULL`), with the
//! clock injected and moved by the test.

use std::path::Path;
use std::sync::Arc;

use aduan_core::{
    Actor, Channel, Direction, Identity, IdentityKind, InboundMessage, OutboxState, Purpose,
    Sender, Status, ThreadHints, TicketCode,
};
use aduan_routing::worker::{ManualClock, Routing, WorkerConfig};
use aduan_routing::{Gazetteer, OpdFile, Router, RouterConfig};
use aduan_store::{Store, StoreOptions, TicketView};
use chrono::{Duration, Utc};

/// SQLite always; PostgreSQL too when `ADUAN_TEST_PG_URL` is set (required under the full
/// suite): the store's own test helper.
async fn stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    aduan_store::testing::stores(StoreOptions::default()).await
}

fn registry() -> OpdFile {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    toml::from_str(&std::fs::read_to_string(root.join("config/opd.toml")).unwrap()).unwrap()
}

fn worker(store: &Store, clock: Arc<ManualClock>) -> Routing {
    let router =
        Router::new(registry(), Gazetteer::for_kabupaten("33.02"), RouterConfig::default());
    let cfg = WorkerConfig {
        admins: vec![Identity::email("admin@banyumaskab.go.id").unwrap()],
        public_url: "https://aduan.example.go.id".into(),
        ..WorkerConfig::default()
    };
    Routing::new(store.clone(), router, clock, cfg)
}

fn message(
    channel: Channel,
    id: &str,
    from: Identity,
    name: Option<&str>,
    text: &str,
) -> InboundMessage {
    InboundMessage {
        channel,
        provider_id: id.to_owned(),
        sender: Sender {
            identity: Some(from),
            display_name: name.map(str::to_owned),
            contacts: vec![],
        },
        text: text.to_owned(),
        attachments: vec![],
        location: None,
        received_at: Utc::now(),
        thread: ThreadHints::default(),
    }
}

async fn view(store: &Store, code: TicketCode) -> TicketView {
    store.ticket(code).await.unwrap().unwrap()
}

/// The outbound messages of a purpose: (channel, text).
fn sent(v: &TicketView, purpose: Purpose) -> Vec<String> {
    v.messages
        .iter()
        .filter(|m| m.direction == Direction::Out && m.purpose == Some(purpose))
        .map(|m| format!("{} {}", m.channel, m.text.lines().next().unwrap_or("")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_notified_warned_escalated_once_and_an_answer_stops_the_clock() {
    for (store, _guard) in stores().await {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        // Two daemons' workers on the same database.
        let a = worker(&store, clock.clone());
        let b = worker(&store, clock.clone());
        let tg = |id: &str| Identity::new(IdentityKind::Telegram, id).unwrap();
        let road = store
            .ingest(message(Channel::Telegram, "u1", tg("42"), Some("Siti Aminah"),
                "pak jln di ds kedungwringin kec jatilawang rusakkk bgt, byk lubang, tolong diaspal"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        let school = store
            .ingest(message(
                Channel::Telegram,
                "u2",
                tg("43"),
                Some("Budi"),
                "Di SMPN 2 Sokaraja ada pungutan uang gedung buat wali murid",
            ))
            .await
            .unwrap()
            .ticket
            .unwrap();

        let (ra, rb) = tokio::join!(a.route_once(), b.route_once());
        assert_eq!(ra.unwrap() + rb.unwrap(), 2, "{}", store.backend_name());
        let v = view(&store, road).await;
        assert_eq!((v.summary.status, v.summary.opd.as_deref()), (Status::Assigned, Some("DPU")));
        assert_eq!(v.summary.category.as_deref(), Some("jalan"));
        assert_eq!(v.summary.place.as_deref(), Some("Kedungwringin"));
        assert_eq!(v.summary.kecamatan.as_deref(), Some("Jatilawang"));
        // The category "jalan" has 10 working days to resolution.
        let res_due = v.summary.resolution_due_at.unwrap();
        assert!(res_due - v.summary.created_at >= Duration::days(12), "{res_due}");
        assert_eq!(view(&store, school).await.summary.opd.as_deref(), Some("DINDIK"));

        // The officials get the ticket, once, whichever watcher runs.
        let (wa, wb) = tokio::join!(a.watch_once(), b.watch_once());
        assert_eq!(wa.unwrap() + wb.unwrap(), 2);
        assert_eq!(a.watch_once().await.unwrap(), 0);
        let v = view(&store, road).await;
        assert_eq!(
            sent(&v, Purpose::Disposition),
            ["email [ADU-XXXXXXXX] Aduan baru untuk Dinas Pekerjaan Umum"
                .replace("ADU-XXXXXXXX", &road.to_string())]
        );
        let disposition =
            v.messages.iter().find(|m| m.purpose == Some(Purpose::Disposition)).unwrap();
        assert!(
            disposition.text.contains("Pelapor               : Siti Aminah"),
            "{}",
            disposition.text
        );

        // The DINDIK official answers in time: its first-response clock stops.
        store
            .reply(
                school,
                "Terima kasih, akan kami cek ke sekolah.".into(),
                Actor::User("pengaduan.dindik@example.go.id".into()),
            )
            .await
            .unwrap();

        // 19 hours later (past 75% of 24 h) the DPU officials are warned, once.
        clock.advance(Duration::hours(19));
        let (wa, wb) = tokio::join!(a.watch_once(), b.watch_once());
        assert_eq!(wa.unwrap() + wb.unwrap(), 1);
        assert_eq!(sent(&view(&store, road).await, Purpose::Warning).len(), 1);
        assert!(sent(&view(&store, school).await, Purpose::Warning).is_empty());

        // Past 24 hours: the escalation to the head of DPU and the admin, once.
        clock.advance(Duration::hours(6));
        assert_eq!(a.watch_once().await.unwrap(), 1);
        assert_eq!(b.watch_once().await.unwrap(), 0);
        let v = view(&store, road).await;
        assert_eq!(sent(&v, Purpose::Escalation).len(), 2, "head and admin");
        assert!(sent(&view(&store, school).await, Purpose::Escalation).is_empty());
        let kinds: Vec<String> = v
            .events
            .iter()
            .filter(|e| e.kind == aduan_core::EventKind::Notified)
            .filter_map(|e| e.to.clone())
            .collect();
        assert_eq!(
            kinds,
            ["disposition:DPU", "warning:first_response", "escalation:first_response"]
        );
        assert!(
            store
                .tickets(&aduan_store::TicketFilter {
                    overdue: Some(true),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap()
                .items
                .iter()
                .all(|t| t.code != school)
        );
    }
}

#[tokio::test]
async fn identity_is_asked_on_the_api_channel_and_the_answer_moves_the_ticket_on() {
    for (store, _guard) in stores().await {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let w = worker(&store, clock.clone());
        // An app user who left an email but no name, as the intake API stores them.
        let mut m = message(
            Channel::Web,
            "app-1",
            Identity::new(IdentityKind::AppUser, "app:u-9").unwrap(),
            None,
            "Sampah numpuk di TPS desa karangklesm kec purwokerto selatan udh seminggu",
        );
        m.sender.contacts = vec![Identity::email("warga@example.id").unwrap()];
        let code = store.ingest(m).await.unwrap().ticket.unwrap();
        assert_eq!(w.route_once().await.unwrap(), 1);
        let v = view(&store, code).await;
        assert_eq!(v.summary.status, Status::AwaitingIdentity);
        assert!(v.summary.paused);
        let asked = sent(&v, Purpose::IdentityRequest);
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(asked[0].starts_with("email Aduan Anda"), "{asked:?}");
        let due_before = v.summary.first_response_due_at;
        // Paused: never overdue, no warnings.
        clock.advance(Duration::hours(30));
        assert_eq!(w.watch_once().await.unwrap(), 0);
        assert_eq!(w.route_once().await.unwrap(), 0, "nothing to do until the resident answers");

        // The answer comes through the intake API naming the ticket.
        let mut answer = message(
            Channel::Web,
            "app-2",
            Identity::new(IdentityKind::AppUser, "app:u-9").unwrap(),
            None,
            "Nama: Budi Santoso, alamat Desa Karangklesem Kec. Purwokerto Selatan. RAHASIA",
        );
        answer.thread.ticket = Some(code);
        store.ingest(answer).await.unwrap();
        assert_eq!(w.route_once().await.unwrap(), 1);
        let v = view(&store, code).await;
        assert_eq!((v.summary.status, v.summary.opd.as_deref()), (Status::Assigned, Some("DLH")));
        let r = v.reporter.clone().unwrap();
        assert_eq!(r.name.as_deref(), Some("Budi Santoso"));
        assert!(r.confidential);
        assert!(!v.summary.paused);
        // The pause gave the first-response clock its time back (about the 30 h paused,
        // measured by the store's real clock here: at least not earlier than before).
        assert!(v.summary.first_response_due_at >= due_before);
        // Officials don't see a confidential reporter's name.
        w.watch_once().await.unwrap();
        let v = view(&store, code).await;
        let mail = v.messages.iter().find(|m| m.purpose == Some(Purpose::Disposition)).unwrap();
        assert!(mail.text.contains("dirahasiakan") && !mail.text.contains("Budi"), "{}", mail.text);
        assert_eq!(sent(&v, Purpose::IdentityRequest).len(), 1, "asked once");
    }
}

#[tokio::test]
async fn identity_by_email_and_cek_on_any_channel() {
    for (store, _guard) in stores().await {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let w = worker(&store, clock.clone());
        let from = Identity::email("warga@example.id").unwrap();
        let code = store
            .ingest(message(
                Channel::Email,
                "<m1@example.id>",
                from.clone(),
                None,
                "Air PDAM mati udah 3 hari di perumahan kami",
            ))
            .await
            .unwrap()
            .ticket
            .unwrap();
        w.route_once().await.unwrap();
        let v = view(&store, code).await;
        assert_eq!(v.summary.status, Status::AwaitingIdentity);
        assert_eq!(sent(&v, Purpose::IdentityRequest).len(), 1);
        // The resident replies by email quoting the code (as mail clients do in the subject).
        store
            .ingest(message(Channel::Email, "<m2@example.id>", from.clone(), None,
                &format!("Re: {code}\n\nNama saya Wahyu Hidayat\nDesa Pliken, Kembaran\n\n> Aduan Anda ({code}) sudah kami terima")))
            .await
            .unwrap();
        w.route_once().await.unwrap();
        let v = view(&store, code).await;
        assert_eq!((v.summary.status, v.summary.opd.as_deref()), (Status::Assigned, Some("PDAM")));
        assert_eq!(v.reporter.as_ref().and_then(|r| r.name.as_deref()), Some("Wahyu Hidayat"));

        // "CEK ADU-…" from a Telegram account that is not the reporter's answers on Telegram
        // with the status, OPD and deadline, and joins nothing (a code is not a key).
        let tg = Identity::new(IdentityKind::Telegram, "77").unwrap();
        let r = store
            .ingest(message(Channel::Telegram, "c1", tg, None, &format!("cek {code}")))
            .await
            .unwrap();
        assert_eq!(r.ticket, None);
        let v = view(&store, code).await;
        let answers = sent(&v, Purpose::Status);
        assert_eq!(answers.len(), 1);
        assert!(
            answers[0].starts_with(&format!("telegram Status aduan {code}: terdisposisi")),
            "{answers:?}"
        );
        assert_eq!(v.summary.status, Status::Assigned);
    }
}

/// Fails every email row that is due, for good: what an SMTP server refusing an official's
/// address does. Returns how many rows were failed.
async fn fail_all_email(store: &Store) -> usize {
    let rows = store.outbox_claim(vec![Channel::Email], 100, Duration::minutes(2)).await.unwrap();
    for r in &rows {
        store
            .outbox_failed(r.id, "the SMTP server refused the mail (code 550)".into(), None)
            .await
            .unwrap();
    }
    rows.len()
}

/// Issue 21.3: a notification to officials that goes dead is retried after a pause, a
/// bounded number of times, and then the admins are told once; the alert itself is retried
/// but never alerted about. Real time (the outbox claims by the wall clock), a short pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_disposition_is_retried_then_escalated_to_the_admins_once() {
    const PAUSE_MS: u64 = 400;
    for (store, _guard) in stores().await {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let pausing = |store: &Store| {
            let router =
                Router::new(registry(), Gazetteer::for_kabupaten("33.02"), RouterConfig::default());
            let cfg = WorkerConfig {
                admins: vec![Identity::email("admin@banyumaskab.go.id").unwrap()],
                public_url: "https://aduan.example.go.id".into(),
                notify_revive_after: Duration::milliseconds(PAUSE_MS as i64),
                ..WorkerConfig::default()
            };
            Routing::new(store.clone(), router, clock.clone(), cfg)
        };
        let (a, b) = (pausing(&store), pausing(&store));
        let later = || async {
            tokio::time::sleep(std::time::Duration::from_millis(PAUSE_MS + 50)).await;
            clock.set(Utc::now());
        };
        let tg = Identity::new(IdentityKind::Telegram, "42").unwrap();
        let road = store
            .ingest(message(Channel::Telegram, "u1", tg, Some("Siti Aminah"),
                "pak jln di ds kedungwringin kec jatilawang rusakkk bgt, byk lubang, tolong diaspal"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        a.route_once().await.unwrap();
        assert_eq!(a.dispose_once().await.unwrap(), 1);
        let dispositions = fail_all_email(&store).await;
        assert!(dispositions >= 1);
        let dead = |v: &TicketView, p: Purpose| {
            v.messages
                .iter()
                .filter(|m| m.purpose == Some(p) && m.delivery == Some(OutboxState::Dead))
                .count()
        };
        assert_eq!(dead(&view(&store, road).await, Purpose::Disposition), dispositions);

        // Not before the pause.
        clock.set(Utc::now());
        assert_eq!(a.revive_once().await.unwrap(), 0);
        // Three revivals, each after the pause, each one more attempt; two watchers revive
        // each row once.
        for round in 1..=3 {
            later().await;
            let (ra, rb) = tokio::join!(a.revive_once(), b.revive_once());
            assert_eq!(ra.unwrap() + rb.unwrap(), dispositions, "round {round}");
            assert_eq!(dead(&view(&store, road).await, Purpose::Disposition), 0);
            assert_eq!(fail_all_email(&store).await, dispositions, "retried in round {round}");
        }
        assert!(sent(&view(&store, road).await, Purpose::Escalation).is_empty());

        // Spent: the admin is alerted, once per row, whichever watcher runs.
        later().await;
        let (ra, rb) = tokio::join!(a.revive_once(), b.revive_once());
        assert_eq!(ra.unwrap() + rb.unwrap(), dispositions);
        assert_eq!(a.revive_once().await.unwrap(), 0);
        let v = view(&store, road).await;
        let alerts = sent(&v, Purpose::Escalation);
        assert_eq!(alerts.len(), dispositions, "{alerts:?}");
        assert!(alerts[0].contains("Pemberitahuan gagal terkirim"), "{alerts:?}");
        let alert = v.messages.iter().find(|m| m.purpose == Some(Purpose::Escalation)).unwrap();
        assert!(alert.text.contains("code 550"), "{}", alert.text);
        assert_eq!(dead(&v, Purpose::Disposition), dispositions, "still shown as dead");
        let notes: Vec<String> = v
            .events
            .iter()
            .filter(|e| e.kind == aduan_core::EventKind::Notified)
            .filter_map(|e| e.to.clone())
            .collect();
        assert_eq!(notes.iter().filter(|k| k.starts_with("revived:")).count(), 3 * dispositions);
        assert_eq!(notes.iter().filter(|k| k.starts_with("undelivered:")).count(), dispositions);

        // The alert dies too: it is retried like any notification, never alerted about.
        assert_eq!(fail_all_email(&store).await, dispositions);
        for round in 1..=3 {
            later().await;
            assert_eq!(a.revive_once().await.unwrap(), dispositions, "alert round {round}");
            assert_eq!(fail_all_email(&store).await, dispositions);
        }
        later().await;
        assert_eq!(a.revive_once().await.unwrap(), 0);
        assert_eq!(sent(&view(&store, road).await, Purpose::Escalation).len(), dispositions);
    }
}

// --- confirm: the deadline watcher closes tickets nobody confirmed ---

#[tokio::test]
async fn the_watcher_closes_resolved_tickets_without_a_confirmation_in_time() {
    for (store, _g) in stores().await {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let w = worker(&store, clock.clone());
        let tg = Identity::new(IdentityKind::Telegram, "77").unwrap();
        let code = store
            .ingest(message(Channel::Telegram, "c1", tg, Some("Siti"), "Lampu jalan mati"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        let op = Actor::User("operator@banyumaskab.go.id".into());
        store.set_status(code, Status::Resolved, op, None).await.unwrap();
        let asked = sent(&view(&store, code).await, Purpose::ConfirmRequest);
        assert_eq!(asked.len(), 1, "{asked:?}");
        w.watch_once().await.unwrap();
        assert_eq!(view(&store, code).await.summary.status, Status::Resolved);
        // Three working days are at most a week away, holidays of the default calendar aside.
        clock.advance(Duration::days(8));
        w.watch_once().await.unwrap();
        let v = view(&store, code).await;
        assert_eq!(v.summary.status, Status::Closed);
        let last = v.events.last().unwrap();
        assert_eq!((last.from.as_deref(), last.to.as_deref()), (Some("resolved"), Some("closed")));
        // Nothing is sent to the resident on closing.
        assert_eq!(sent(&v, Purpose::ConfirmRequest).len(), 1);
        assert_eq!(v.messages.iter().filter(|m| m.direction == Direction::Out).count(), 2);
    }
}

// --- search: the deadline watcher's index ---

/// A round reads only what is due: after looking at a ticket the watcher files it under its
/// next alert (the warning at 75% of 24 h, then the deadline), so rounds in between read
/// nothing, and the alerts still go out on time.
#[tokio::test]
async fn the_watcher_files_each_ticket_under_its_next_alert() {
    use aduan_routing::worker::Clock;
    for (store, _guard) in stores().await {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let w = worker(&store, clock.clone());
        let tg = Identity::new(IdentityKind::Telegram, "77").unwrap();
        let text = "jalan di desa kedungwringin kec jatilawang rusak parah banyak lubang";
        let code = store
            .ingest(message(Channel::Telegram, "n1", tg, Some("Siti"), text))
            .await
            .unwrap()
            .ticket
            .unwrap();
        assert_eq!(w.route_once().await.unwrap(), 1);
        let due = |at| {
            let store = store.clone();
            async move { store.deadline_scan(100, at).await.unwrap().len() }
        };
        clock.advance(Duration::seconds(1));
        assert_eq!(due(clock.now()).await, 1, "a new ticket is looked at once");
        w.watch_once().await.unwrap();
        assert_eq!(
            due(clock.now()).await,
            0,
            "{}: then not before its warning",
            store.backend_name()
        );
        assert_eq!(due(clock.now() + Duration::hours(17)).await, 0);
        clock.advance(Duration::hours(19));
        assert_eq!(due(clock.now()).await, 1, "the warning is due");
        assert_eq!(w.watch_once().await.unwrap(), 1);
        assert_eq!(due(clock.now()).await, 0, "then not before the deadline");
        clock.advance(Duration::hours(6));
        assert_eq!(due(clock.now()).await, 1);
        assert_eq!(w.watch_once().await.unwrap(), 1);
        let v = view(&store, code).await;
        assert_eq!(sent(&v, Purpose::Warning).len(), 1);
        assert!(!sent(&v, Purpose::Escalation).is_empty());
        // Next: the resolution clock's warning, days away.
        assert_eq!(due(clock.now() + Duration::hours(1)).await, 0);
    }
}

// --- model: retraining from imported history, the stored model shared by instances ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_trains_without_dispositions_and_every_instance_loads_the_stored_model() {
    for (store, _guard) in stores().await {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let (a, b) = (worker(&store, clock.clone()), worker(&store, clock.clone()));
        // Nothing to learn from: no model, nothing stored.
        assert_eq!(a.retrain().await.unwrap(), None);
        assert_eq!(store.routing_model_latest_id().await.unwrap(), None);
        // 30 imported rows (fewer than the 200 dispositions needed without history).
        let mut rows = Vec::new();
        for i in 0..10 {
            rows.push((format!("aspal ruas pasar {i} mengelupas"), "DPU".to_string()));
            rows.push((format!("tumpukan plastik {i} menyengat"), "DLH".to_string()));
            rows.push((format!("bidan posyandu {i} jarang datang"), "DINKES".to_string()));
        }
        assert_eq!(store.routing_history_import(rows, None).await.unwrap(), 30);
        assert_eq!(a.retrain().await.unwrap(), Some(30));
        let id = store.routing_model_latest_id().await.unwrap().unwrap();
        assert_eq!(a.router().model().unwrap().labels(), ["DINKES", "DLH", "DPU"]);
        // A second instance picks the stored model up instead of training its own.
        assert!(b.router().model().is_none());
        assert_eq!(b.retrain().await.unwrap(), Some(30));
        assert_eq!(store.routing_model_latest_id().await.unwrap(), Some(id), "not retrained");
        assert_eq!(b.router().model(), a.router().model());
        assert!(!b.refresh_model().await.unwrap(), "already the newest");
        // Once the stored model is older than `retrain_every`, the next retrain fits anew
        // with a disposition added; the other instance loads it on its next check.
        let code = store
            .ingest(message(
                Channel::Web,
                "w-1",
                Identity::email("warga@example.id").unwrap(),
                Some("Siti"),
                "lampu jalan padam",
            ))
            .await
            .unwrap()
            .ticket
            .unwrap();
        store.assign(code, "DINHUB".into(), Actor::User("op@x.id".into()), None).await.unwrap();
        clock.advance(Duration::hours(2));
        assert_eq!(a.retrain().await.unwrap(), Some(31));
        let newer = store.routing_model_latest_id().await.unwrap().unwrap();
        assert!(newer > id);
        assert!(b.refresh_model().await.unwrap());
        assert_eq!(b.router().model().unwrap().labels().len(), 4);
    }
}
