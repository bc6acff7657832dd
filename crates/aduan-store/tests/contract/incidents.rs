//! Incidents (issue 20): candidates, suggestions, dismissals, joining by hand and by
//! itself, acting once for every member, one notification per incident.

use aduan_core::incident::IncidentPolicy;
use aduan_core::{
    Channel, Direction, EventKind, Identity, IdentityKind, Location, Purpose, Status, TicketCode,
};
use aduan_store::{IncidentAction, RouteAction, RouteResult, Store, StoreError, StoreOptions};
use chrono::Utc;

use crate::{fresh_pg, msg, op, stores};

/// Alun-alun Purwokerto, and points some metres north of it.
fn near(metres_north: f64) -> Location {
    Location { lat: -7.4245 + metres_north / 111_320.0, lon: 109.2302 }
}

async fn report(
    store: &Store,
    channel: Channel,
    pid: &str,
    who: &str,
    text: &str,
    at: Option<Location>,
) -> TicketCode {
    let id = match channel {
        Channel::Telegram => Identity::new(IdentityKind::Telegram, who).unwrap(),
        Channel::Sms => Identity::new(IdentityKind::Phone, who).unwrap(),
        _ => Identity::email(who).unwrap(),
    };
    let mut m = msg(channel, pid, Some(id), text);
    m.location = at;
    store.ingest(m).await.unwrap().ticket.unwrap()
}

async fn route(store: &Store, code: TicketCode, category: &str, opd: &str) {
    let mut r = RouteResult::new(RouteAction::Assign { opd: opd.into(), note: "test".into() });
    r.category = Some(category.into());
    r.place = Some("Sokanegara".into());
    r.kecamatan = Some("Purwokerto Timur".into());
    assert!(store.route_done(code, r, Utc::now()).await.unwrap());
}

fn auto_join() -> StoreOptions {
    StoreOptions {
        ack_template: None,
        incidents: IncidentPolicy { auto_join: true, ..IncidentPolicy::default() },
        ..StoreOptions::default()
    }
}

const DRAIN: &str = "Saluran air tersumbat sampah, air meluap ke jalan depan pasar";

#[tokio::test]
async fn suggestions_explain_the_candidate_and_a_dismissal_is_remembered() {
    let opts = StoreOptions { ack_template: None, ..StoreOptions::default() };
    for (store, _g) in stores(opts).await {
        let a = report(&store, Channel::Telegram, "a", "1", DRAIN, Some(near(0.0))).await;
        route(&store, a, "drainase", "DPU").await;
        let b = report(
            &store,
            Channel::Telegram,
            "b",
            "2",
            "selokan tersumbat sampah, airnya meluap",
            Some(near(120.0)),
        )
        .await;
        route(&store, b, "drainase", "DPU").await;
        // Two kilometres away: another place, never a candidate.
        let far = report(&store, Channel::Telegram, "c", "3", DRAIN, Some(near(2000.0))).await;
        route(&store, far, "drainase", "DPU").await;

        let v = store.ticket(b).await.unwrap().unwrap();
        assert_eq!(v.incident, None, "auto_join is off by default");
        assert_eq!(v.incident_suggestions.len(), 1, "{:?}", v.incident_suggestions);
        let s = &v.incident_suggestions[0];
        assert_eq!(s.code, a);
        assert!(s.score >= 0.5 && s.score <= 1.0, "{s:?}");
        assert_eq!(s.why, format!("kemungkinan sama dengan {a} (1 laporan, 120 m, 0 jam)"));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["incident_suggestions"][0]["code"], a.to_string());
        assert!(json.get("incident").is_none(), "absent when the ticket has none");
        assert!(store.ticket(far).await.unwrap().unwrap().incident_suggestions.is_empty());

        // "Not the same problem": never again, on either ticket's page.
        store.incident_action(b, IncidentAction::Dismiss(a), op()).await.unwrap();
        assert!(store.ticket(b).await.unwrap().unwrap().incident_suggestions.is_empty());
        let va = store.ticket(a).await.unwrap().unwrap();
        assert!(va.incident_suggestions.iter().all(|s| s.code != b), "{va:?}");
        let ev = store.ticket(b).await.unwrap().unwrap().events;
        let ev = ev.iter().rev().find(|e| e.kind == EventKind::Incident).unwrap();
        assert_eq!(
            (ev.from.as_deref(), ev.to.as_deref()),
            (Some(&*a.to_string()), Some("dismissed"))
        );
        // Dismissing twice changes nothing.
        store.incident_action(b, IncidentAction::Dismiss(a), op()).await.unwrap();
    }
}

#[tokio::test]
async fn joining_by_hand_leaving_and_refusals() {
    for (store, _g) in stores(StoreOptions { ack_template: None, ..Default::default() }).await {
        let a = report(&store, Channel::Telegram, "a", "1", DRAIN, Some(near(0.0))).await;
        let b = report(&store, Channel::Telegram, "b", "2", "lampu jalan mati", None).await;
        let c = report(&store, Channel::Telegram, "c", "3", "jembatan retak", None).await;
        store.incident_action(b, IncidentAction::Join(a), op()).await.unwrap();
        let va = store.ticket(a).await.unwrap().unwrap();
        let inc = va.incident.clone().unwrap();
        assert_eq!(inc.reports, 2);
        assert_eq!(store.ticket(b).await.unwrap().unwrap().incident, Some(inc.clone()));
        let json = serde_json::to_value(&va).unwrap();
        assert_eq!(json["incident"], serde_json::json!({"id": inc.id, "reports": 2}));
        store.incident_action(c, IncidentAction::Join(b), op()).await.unwrap();
        let members: Vec<TicketCode> =
            store.incident_tickets(inc.id).await.unwrap().iter().map(|t| t.code).collect();
        assert_eq!(members, vec![a, b, c]);
        assert_eq!(store.reported_by(c).await.unwrap(), 3);
        assert_eq!(store.incident_counts(None, None).await.unwrap(), (1, 3));

        // Leaving an incident of three leaves two; then the last pair dissolves.
        store.incident_action(c, IncidentAction::Leave, op()).await.unwrap();
        assert_eq!(store.ticket(a).await.unwrap().unwrap().incident.unwrap().reports, 2);
        store.incident_action(a, IncidentAction::Leave, op()).await.unwrap();
        assert_eq!(store.ticket(b).await.unwrap().unwrap().incident, None);
        assert!(store.incident_tickets(inc.id).await.unwrap().is_empty());

        // Refused, changing nothing: a ticket with itself, leaving none, a merged ticket.
        let own = store.incident_action(a, IncidentAction::Join(a), op()).await;
        assert!(matches!(own, Err(StoreError::Invalid(_))), "{own:?}");
        let none = store.incident_action(a, IncidentAction::Leave, op()).await;
        assert!(matches!(none, Err(StoreError::Conflict(_))), "{none:?}");
        store.merge(c, b, op()).await.unwrap();
        let merged = store.incident_action(a, IncidentAction::Join(c), op()).await;
        assert!(matches!(merged, Err(StoreError::Conflict(_))), "{merged:?}");
        assert_eq!(store.ticket(a).await.unwrap().unwrap().incident, None);
        let missing: TicketCode = "ADU-00000000".parse().unwrap();
        let gone = store.incident_action(a, IncidentAction::Join(missing), op()).await;
        assert!(matches!(gone, Err(StoreError::TicketNotFound(_))), "{gone:?}");
    }
}

#[tokio::test]
async fn auto_join_gathers_one_problem_and_acts_once_for_all() {
    for (store, _g) in stores(auto_join()).await {
        let a = report(&store, Channel::Telegram, "a", "1", DRAIN, Some(near(0.0))).await;
        route(&store, a, "drainase", "DPU").await;
        // The OPD hears of the first report.
        let to = vec![Identity::email("dpu@example.go.id").unwrap()];
        let notify = |code| {
            let (store, to) = (store.clone(), to.clone());
            async move {
                let key = "disposition:DPU".to_owned();
                let text = "Aduan baru".to_owned();
                store.notify_once(code, key, Purpose::Disposition, to, text, Utc::now()).await
            }
        };
        assert!(notify(a).await.unwrap());

        let b = report(&store, Channel::Sms, "b", "081234567890", DRAIN, Some(near(60.0))).await;
        route(&store, b, "drainase", "DPU").await;
        let c = report(
            &store,
            Channel::Email,
            "c",
            "warga@example.com",
            "saluran air depan pasar tersumbat sampah dan meluap",
            Some(near(-40.0)),
        )
        .await;
        route(&store, c, "drainase", "DPU").await;
        // Another problem at the same spot stays apart.
        let lamp = report(
            &store,
            Channel::Telegram,
            "d",
            "4",
            "Lampu penerangan jalan mati sudah seminggu",
            Some(near(10.0)),
        )
        .await;
        route(&store, lamp, "penerangan", "DISHUB").await;

        let inc = store.ticket(a).await.unwrap().unwrap().incident.unwrap();
        assert_eq!(inc.reports, 3);
        for code in [b, c] {
            assert_eq!(store.ticket(code).await.unwrap().unwrap().incident, Some(inc.clone()));
        }
        assert_eq!(store.ticket(lamp).await.unwrap().unwrap().incident, None);
        let vb = store.ticket(b).await.unwrap().unwrap();
        let ev = vb.events.iter().find(|e| e.kind == EventKind::Incident).unwrap();
        assert_eq!(ev.to.as_deref(), Some("auto_joined"));
        // Deadlines run from the first report.
        let va = store.ticket(a).await.unwrap().unwrap();
        assert_eq!(vb.summary.first_response_due_at, va.summary.first_response_due_at);

        // One mail for the incident: the members' dispositions are claimed, not sent.
        assert!(!notify(b).await.unwrap());
        assert!(!notify(c).await.unwrap());
        assert!(
            store.undisposed(100, Utc::now()).await.unwrap().iter().all(|t| t.summary.code == lamp)
        );

        // One answer, three reporters, each on their own channel.
        store.reply(b, "Sudah kami jadwalkan pembersihan.".into(), op()).await.unwrap();
        for (code, channel) in [(a, Channel::Telegram), (b, Channel::Sms), (c, Channel::Email)] {
            let v = store.ticket(code).await.unwrap().unwrap();
            let out: Vec<_> = v
                .messages
                .iter()
                .filter(|m| m.direction == Direction::Out && m.purpose == Some(Purpose::Reply))
                .collect();
            assert_eq!(out.len(), 1, "{code}");
            assert_eq!(out[0].channel, channel);
        }
        assert!(
            store
                .ticket(lamp)
                .await
                .unwrap()
                .unwrap()
                .messages
                .iter()
                .all(|m| m.direction == Direction::In)
        );
        // One status change, every member.
        store.set_status(c, Status::Resolved, op(), None).await.unwrap();
        for code in [a, b, c] {
            assert_eq!(store.ticket(code).await.unwrap().unwrap().summary.status, Status::Resolved);
        }
        assert_eq!(store.ticket(lamp).await.unwrap().unwrap().summary.status, Status::Assigned);
    }
}

#[tokio::test]
async fn the_incident_mail_counts_reports_and_places() {
    for (store, _g) in stores(auto_join()).await {
        let a = report(&store, Channel::Telegram, "a", "1", DRAIN, Some(near(0.0))).await;
        route(&store, a, "drainase", "DPU").await;
        let b = report(&store, Channel::Telegram, "b", "2", DRAIN, Some(near(30.0))).await;
        route(&store, b, "drainase", "DPU").await;
        let to = vec![Identity::email("dpu@example.go.id").unwrap()];
        let key = "disposition:DPU".to_owned();
        let sent = store
            .notify_once(b, key, Purpose::Disposition, to, "Aduan baru".into(), Utc::now())
            .await
            .unwrap();
        assert!(sent);
        let v = store.ticket(b).await.unwrap().unwrap();
        let mail = v.messages.iter().find(|m| m.purpose == Some(Purpose::Disposition)).unwrap();
        assert!(mail.text.starts_with("Aduan baru"), "{}", mail.text);
        assert!(
            mail.text.contains(&format!("Insiden: 2 laporan warga ({a}, {b})")),
            "{}",
            mail.text
        );
        assert!(mail.text.contains("Lokasi: Sokanegara, Kec. Purwokerto Timur."), "{}", mail.text);
    }
}

// --- residents: one resident across channels ---

fn wa(digits: &str) -> Identity {
    Identity::new(IdentityKind::Whatsapp, digits).unwrap()
}

async fn from(
    store: &Store,
    channel: Channel,
    pid: &str,
    who: Identity,
    contacts: Vec<Identity>,
) -> TicketCode {
    let mut m = msg(channel, pid, Some(who), "jalan rusak di depan rumah");
    m.sender.display_name = None;
    m.sender.contacts = contacts;
    store.ingest(m).await.unwrap().ticket.unwrap()
}

#[tokio::test]
async fn verified_phones_link_reporters_across_channels_and_typed_ones_do_not() {
    for (store, _g) in stores(StoreOptions { ack_template: None, ..Default::default() }).await {
        let phone = Identity::phone("081234567890").unwrap();
        // Typed into the web form first: links nothing later.
        let mut typed = msg(Channel::Web, "w1", None, "lampu mati");
        typed.sender.contacts = vec![Identity::phone("081299990000").unwrap()];
        let web = store.ingest(typed).await.unwrap().ticket.unwrap();
        let wa_typed = from(&store, Channel::Whatsapp, "x1", wa("6281299990000"), vec![]).await;
        let v = store.ticket(wa_typed).await.unwrap().unwrap();
        assert_eq!(v.resident.as_ref().unwrap().id, None, "a typed contact never links: {v:?}");
        assert!(v.resident.unwrap().tickets.iter().all(|t| t.code != web));

        // WhatsApp today, SMS tomorrow, Telegram with the shared contact: one resident.
        let a = from(&store, Channel::Whatsapp, "a1", wa("6281234567890"), vec![]).await;
        let b = from(&store, Channel::Sms, "b1", phone.clone(), vec![]).await;
        let tg = Identity::new(IdentityKind::Telegram, "777").unwrap();
        let c = from(&store, Channel::Telegram, "c1", tg, vec![phone]).await;
        let vb = store.ticket(b).await.unwrap().unwrap();
        let r = vb.resident.clone().unwrap();
        assert!(r.id.is_some(), "{r:?}");
        let codes: Vec<TicketCode> = r.tickets.iter().map(|t| t.code).collect();
        assert_eq!(codes, vec![c, a], "newest first, every channel");
        let json = serde_json::to_value(&vb).unwrap();
        assert_eq!(json["resident"]["tickets"][0]["channel"], "telegram");
        let va = store.ticket(a).await.unwrap().unwrap();
        assert_eq!(va.resident.unwrap().id, r.id);
    }
}

#[tokio::test]
async fn an_identity_answer_given_once_counts_for_the_linked_reporter() {
    for (store, _g) in stores(StoreOptions { ack_template: None, ..Default::default() }).await {
        let a = from(&store, Channel::Whatsapp, "a1", wa("6281234567890"), vec![]).await;
        let mut r = RouteResult::new(RouteAction::Triage { note: "t".into() });
        r.reporter = Some(aduan_store::ReporterUpdate {
            name: Some("Budi Santoso".into()),
            address: Some("Desa Karanglewas".into()),
            confidential: false,
        });
        assert!(store.route_done(a, r, Utc::now()).await.unwrap());
        let b = from(&store, Channel::Sms, "b1", Identity::phone("081234567890").unwrap(), vec![])
            .await;
        let jobs = store.route_claim(10, chrono::Duration::seconds(60), Utc::now()).await.unwrap();
        let job = jobs.iter().find(|j| j.code == b).unwrap();
        assert_eq!(job.reporter.name.as_deref(), Some("Budi Santoso"));
        assert_eq!(job.reporter.address.as_deref(), Some("Desa Karanglewas"));
    }
}

#[tokio::test]
async fn operators_link_and_unlink_by_hand_and_an_unlink_holds() {
    use aduan_store::ResidentAction;
    for (store, _g) in stores(StoreOptions { ack_template: None, ..Default::default() }).await {
        let a = from(&store, Channel::Whatsapp, "a1", wa("6281234567890"), vec![]).await;
        let b = from(&store, Channel::Sms, "b1", Identity::phone("081234567890").unwrap(), vec![])
            .await;
        assert!(store.ticket(b).await.unwrap().unwrap().resident.unwrap().id.is_some());
        store.resident_action(b, ResidentAction::Unlink, op()).await.unwrap();
        assert_eq!(store.ticket(b).await.unwrap().unwrap().resident.unwrap().id, None);
        // The same number writes again: the operator's unlink holds.
        let b2 = from(&store, Channel::Sms, "b2", Identity::phone("081234567890").unwrap(), vec![])
            .await;
        let vb2 = store.ticket(b2).await.unwrap().unwrap();
        assert_eq!(vb2.resident.unwrap().id, None);
        let log = store.audit_log(10).await.unwrap();
        assert!(log.iter().any(|e| e.action == "resident_unlinked"), "{log:?}");
        assert!(log.iter().any(|e| e.action == "resident_linked_auto"), "{log:?}");

        // Linked again by hand.
        store.resident_action(b, ResidentAction::Link(a), op()).await.unwrap();
        let r = store.ticket(a).await.unwrap().unwrap().resident.unwrap();
        assert!(r.id.is_some() && r.tickets.iter().any(|t| t.code == b), "{r:?}");
        // Refused: a ticket with itself; unlinking a reporter linked to nobody.
        let own = store.resident_action(a, ResidentAction::Link(a), op()).await;
        assert!(matches!(own, Err(StoreError::Invalid(_))), "{own:?}");
        let tg = Identity::new(IdentityKind::Telegram, "5").unwrap();
        let lone = from(&store, Channel::Telegram, "t1", tg, vec![]).await;
        let none = store.resident_action(lone, ResidentAction::Unlink, op()).await;
        assert!(matches!(none, Err(StoreError::Conflict(_))), "{none:?}");
    }
}

#[tokio::test]
async fn the_same_name_in_the_same_desa_is_only_suggested() {
    for (store, _g) in stores(StoreOptions { ack_template: None, ..Default::default() }).await {
        let mut codes = Vec::new();
        for (i, who) in ["1", "2"].iter().enumerate() {
            let id = Identity::new(IdentityKind::Telegram, who).unwrap();
            let mut m = msg(Channel::Telegram, &format!("n{i}"), Some(id), "jalan rusak");
            m.sender.display_name = Some("Siti Aminah".into());
            let code = store.ingest(m).await.unwrap().ticket.unwrap();
            route(&store, code, "jalan", "DPU").await;
            codes.push(code);
        }
        let r = store.ticket(codes[1]).await.unwrap().unwrap().resident.unwrap();
        assert_eq!(r.id, None, "never linked automatically");
        assert_eq!(r.suggested.iter().map(|t| t.code).collect::<Vec<_>>(), vec![codes[0]]);
    }
}

// --- pgintake: the keys of reporters from before 0021, and intake's link gate ---

/// A store's database reached past the store, to put it in the state of an older release.
enum Raw {
    Sqlite(std::path::PathBuf),
    Pg(String),
}

impl Raw {
    fn engine(&self) -> &'static str {
        match self {
            Raw::Sqlite(_) => "sqlite",
            Raw::Pg(_) => "postgres",
        }
    }

    /// Runs one statement; returns the first column of its first row as a count, if any.
    async fn run(&self, sql: &str) -> Option<i64> {
        match self {
            Raw::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                let mut stmt = c.prepare(sql).unwrap();
                let mut rows = stmt.raw_query();
                let row = rows.next().unwrap();
                row.map(|r| r.get::<_, i64>(0).unwrap())
            }
            Raw::Pg(url) => {
                use sqlx::{Connection as _, Row as _};
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
                rows.first().map(|r| r.get::<i64, _>(0))
            }
        }
    }
}

/// A migrated SQLite store and, when there is a server, a PostgreSQL one, each with the
/// way to its database.
async fn stores_with_raw(opts: StoreOptions) -> Vec<(Store, Raw, Option<tempfile::TempDir>)> {
    let (sqlite, dir) = aduan_store::testing::sqlite(opts.clone()).await;
    let path = dir.path().join("aduan.db");
    let mut out = vec![(sqlite, Raw::Sqlite(path), Some(dir))];
    if let Some(url) = aduan_store::testing::fresh_pg_url().await {
        let pg = Store::open(&url, opts).await.unwrap();
        pg.migrate().await.unwrap();
        out.push((pg, Raw::Pg(url), None));
    }
    out
}

#[tokio::test]
async fn reporters_from_before_0021_get_their_verified_keys_back_from_0023() {
    for (store, raw, _g) in
        stores_with_raw(StoreOptions { ack_template: None, ..Default::default() }).await
    {
        // They wrote before migration 0021: WhatsApp, mail, a Telegram user sharing their
        // own number, and a web form with a typed number (which never links).
        let a = from(&store, Channel::Whatsapp, "old-wa", wa("6281234500001"), vec![]).await;
        let mail = Identity::email("warga@example.id").unwrap();
        from(&store, Channel::Email, "old-mail", mail, vec![]).await;
        let tg = Identity::new(IdentityKind::Telegram, "4242").unwrap();
        let shared = vec![Identity::phone("081234500002").unwrap()];
        let t = from(&store, Channel::Telegram, "old-tg", tg, shared).await;
        let mut typed = msg(Channel::Web, "old-web", None, "lampu mati");
        typed.sender.contacts = vec![Identity::phone("081234500003").unwrap()];
        store.ingest(typed).await.unwrap();
        raw.run("DELETE FROM reporter_keys").await;
        let file = format!(
            "{}/../../migrations/{}/0023_reporter_keys_backfill.sql",
            env!("CARGO_MANIFEST_DIR"),
            raw.engine()
        );
        raw.run(&std::fs::read_to_string(file).unwrap()).await;
        assert_eq!(
            raw.run("SELECT COUNT(*) FROM reporter_keys").await,
            Some(3),
            "{}",
            raw.engine()
        );

        // New reporters with the same numbers on other channels find them.
        let phone = Identity::phone("081234500001").unwrap();
        let b = from(&store, Channel::Sms, "new-sms", phone, vec![]).await;
        let w = from(&store, Channel::Whatsapp, "new-wa", wa("6281234500002"), vec![]).await;
        for (old, new) in [(a, b), (t, w)] {
            let r = store.ticket(new).await.unwrap().unwrap().resident.unwrap();
            assert!(r.id.is_some(), "{}: {r:?}", raw.engine());
            assert!(r.tickets.iter().any(|x| x.code == old), "{}: {r:?}", raw.engine());
        }
        let typed_again =
            from(&store, Channel::Whatsapp, "new-wa3", wa("6281234500003"), vec![]).await;
        let r = store.ticket(typed_again).await.unwrap().unwrap().resident.unwrap();
        assert_eq!(r.id, None, "{}: a typed number is no key", raw.engine());
    }
}

#[tokio::test]
async fn a_known_sender_who_shares_a_verified_number_later_is_linked() {
    // Intake skips linking for a known sender whose keys are recorded and linked; a known
    // Telegram user sharing their own number for the first time is neither.
    for (store, _g) in stores(StoreOptions { ack_template: None, ..Default::default() }).await {
        let a = from(&store, Channel::Whatsapp, "k-wa", wa("6281234500009"), vec![]).await;
        let tg = Identity::new(IdentityKind::Telegram, "9009").unwrap();
        from(&store, Channel::Telegram, "k-tg1", tg.clone(), vec![]).await;
        let shared = vec![Identity::phone("081234500009").unwrap()];
        let t = from(&store, Channel::Telegram, "k-tg2", tg.clone(), shared.clone()).await;
        let r = store.ticket(t).await.unwrap().unwrap().resident.unwrap();
        assert!(r.id.is_some(), "{r:?}");
        assert!(r.tickets.iter().any(|x| x.code == a), "{r:?}");
        // Unlinked by an operator: the same share again links nothing.
        store.resident_action(t, aduan_store::ResidentAction::Unlink, op()).await.unwrap();
        from(&store, Channel::Telegram, "k-tg3", tg, shared).await;
        assert_eq!(store.ticket(t).await.unwrap().unwrap().resident.unwrap().id, None);
    }
}

// --- pgsearch: per-ticket plans on a young table ---

/// PostgreSQL: a ticket's messages are read through the ticket's own index also by a
/// generic plan made after ANALYZE saw a young table (five tickets with forty messages
/// each) that then grew (20,000 tickets): the statistics say a handful of messages per
/// ticket whatever was sampled (migration 0032). Without that, the generic plan of
/// `index_ticket`'s `ORDER BY id LIMIT 20` walked `messages_pkey` from the oldest message.
#[tokio::test]
async fn a_tickets_messages_are_read_through_its_index_by_a_generic_plan_on_a_young_table() {
    let Some((store, mut c)) = fresh_pg().await else { return };
    let insert = "INSERT INTO messages (ticket_id, direction, channel, text, automated, \
                  sent_at, stored_at) SELECT ";
    for sql in [
        "ALTER TABLE messages DISABLE TRIGGER ticket_search_message_ai",
        "INSERT INTO tickets (code, status, channel, created_at, updated_at, \
         last_message_at, first_response_due_at) SELECT 'ADU-' || lpad(i::text, 8, '0'), \
         'new', 'sms', now(), now(), now(), now() FROM generate_series(1, 20005) i",
        &format!(
            "{insert} 1 + i % 5, CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END, 'sms', \
             'pesan', i % 2 = 1, now(), now() FROM generate_series(1, 200) i"
        ),
        "ANALYZE messages",
        &format!(
            "{insert} 6 + i / 2, CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END, 'sms', \
             'pesan', i % 2 = 1, now(), now() FROM generate_series(0, 39999) i"
        ),
        "SET plan_cache_mode = force_generic_plan",
        // `index_ticket`'s statement (crates/aduan-store/src/ops/incidents.rs).
        "PREPARE texts(bigint, boolean) AS SELECT text FROM messages WHERE ticket_id = $1 \
         AND direction = 'in' AND automated = $2 ORDER BY id LIMIT 20",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
    }
    let plan: Vec<String> =
        sqlx::query_scalar("EXPLAIN EXECUTE texts(15000, false)").fetch_all(&mut c).await.unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("messages_ticket"), "the ticket's index:\n{plan}");
    assert!(!plan.contains("messages_pkey"), "no walk of every message:\n{plan}");
    store.close().await;
}
