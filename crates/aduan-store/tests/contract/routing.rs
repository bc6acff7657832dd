//! The routing worker's and deadline watcher's queries.

use aduan_core::{Channel, Identity, Purpose, Status};
use aduan_store::StoreOptions;
use chrono::Utc;

use crate::{msg, op, stores};

#[tokio::test]
async fn dispositions_owed_follow_assignment_notification_and_status() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let mut codes = Vec::new();
        for i in 0..4 {
            let m = msg(Channel::Web, &format!("d{i}"), None, "jalan rusak");
            codes.push(store.ingest(m).await.unwrap().ticket.unwrap());
        }
        let owed = || {
            let store = store.clone();
            async move {
                let list = store.undisposed(100, Utc::now()).await.unwrap();
                list.iter()
                    .map(|t| (t.summary.code, t.summary.opd.clone().unwrap()))
                    .collect::<Vec<_>>()
            }
        };
        assert!(owed().await.is_empty(), "tickets in triage are owed nothing");
        for c in &codes[..3] {
            store.assign(*c, "DPU".into(), op(), None).await.unwrap();
        }
        let dpu = |i: usize| (codes[i], "DPU".to_string());
        assert_eq!(owed().await, vec![dpu(0), dpu(1), dpu(2)]);

        let notify = |code, key: &str| {
            let store = store.clone();
            let key = key.to_owned();
            async move {
                let to = vec![Identity::email("dpu@example.go.id").unwrap()];
                store
                    .notify_once(code, key, Purpose::Disposition, to, "t".into(), Utc::now())
                    .await
                    .unwrap()
            }
        };
        // Another OPD's notification does not pay the debt; the ticket's own does, once.
        // (A later assignment to that other OPD finds it paid: keys are per ticket and OPD.)
        notify(codes[0], "disposition:DLH").await;
        assert_eq!(owed().await, vec![dpu(0), dpu(1), dpu(2)]);
        assert!(notify(codes[0], "disposition:DPU").await);
        assert!(!notify(codes[0], "disposition:DPU").await);
        assert_eq!(owed().await, vec![dpu(1), dpu(2)]);
        // Moved to another OPD: owed again, to the new one; its old notification stays sent.
        store.assign(codes[0], "DINSOS".into(), op(), None).await.unwrap();
        assert_eq!(owed().await[0], (codes[0], "DINSOS".to_string()));
        notify(codes[0], "disposition:DINSOS").await;
        // Work started still owes it; resolved does not; reopened owes it again.
        store.set_status(codes[1], Status::InProgress, op(), None).await.unwrap();
        store.set_status(codes[2], Status::Resolved, op(), Some("done".into())).await.unwrap();
        assert_eq!(owed().await, vec![dpu(1)]);
        store.set_status(codes[2], Status::InProgress, op(), None).await.unwrap();
        assert_eq!(owed().await, vec![dpu(1), dpu(2)]);
        // Merged away: nothing is owed for it.
        store.merge(codes[2], codes[3], op()).await.unwrap();
        assert_eq!(owed().await, vec![dpu(1)]);
    }
}

// --- confirm: no answer in time closes the ticket ---

#[tokio::test]
async fn no_answer_within_the_working_days_closes_the_ticket() {
    use aduan_core::EventKind;
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    for (store, _g) in stores(StoreOptions::default()).await {
        let tg = Identity::new(aduan_core::IdentityKind::Telegram, "42").ok();
        let code = store.ingest(msg(Channel::Telegram, "t1", tg, "x")).await.unwrap();
        let code = code.ticket.unwrap();
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        // Asked on Monday 7 December 2026, 09.00 WIB: 3 working days → Thursday 09.00 WIB.
        store.ask_confirmation(code, at("2026-12-07T02:00:00Z")).await.unwrap().unwrap();
        let none = store.expire_confirmations(100, at("2026-12-10T01:59:00Z")).await.unwrap();
        assert!(none.is_empty(), "{none:?}");
        assert_eq!(store.ticket(code).await.unwrap().unwrap().summary.status, Status::Resolved);
        let closed = store.expire_confirmations(100, at("2026-12-10T02:01:00Z")).await.unwrap();
        assert_eq!(closed, vec![code]);
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.status, Status::Closed);
        let ev = view.events.iter().rev().find(|e| e.kind == EventKind::Confirmation).unwrap();
        assert_eq!(ev.to.as_deref(), Some("expired"));
        // No closing message to the resident; a second pass changes nothing.
        assert!(
            store.expire_confirmations(100, at("2026-12-31T00:00:00Z")).await.unwrap().is_empty()
        );
        // Reopened by the operator before the deadline: not closed by the watcher.
        let code2 = store.ingest(msg(Channel::Web, "w2", None, "y")).await.unwrap().ticket.unwrap();
        store.set_status(code2, Status::Resolved, op(), None).await.unwrap();
        store.set_status(code2, Status::InProgress, op(), None).await.unwrap();
        let far = Utc::now() + chrono::Duration::days(60);
        assert!(store.expire_confirmations(100, far).await.unwrap().is_empty());
        assert_eq!(store.ticket(code2).await.unwrap().unwrap().summary.status, Status::InProgress);
    }
}

// --- search: the deadline watcher's index ---

/// The deadline scan reads only the tickets whose next alert is due, or whose clocks
/// changed since the watcher looked (migration 0022); a schedule computed from a state
/// that has changed since is not written.
#[tokio::test]
async fn the_deadline_scan_reads_only_tickets_whose_alert_is_due() {
    use aduan_store::AlertSchedule;
    for (store, _g) in crate::stores(aduan_store::StoreOptions::default()).await {
        let name = store.backend_name();
        let mut codes = Vec::new();
        for i in 0..3 {
            let m = crate::msg(Channel::Web, &format!("w{i}"), crate::tg(&format!("{i}")), "x");
            codes.push(store.ingest(m).await.unwrap().ticket.unwrap());
        }
        let now = Utc::now();
        let scan = |at| {
            let store = store.clone();
            async move {
                let mut c: Vec<_> = store
                    .deadline_scan(100, at)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|t| t.summary.code)
                    .collect();
                c.sort();
                c
            }
        };
        let mut all = codes.clone();
        all.sort();
        // New tickets: looked at once, at once.
        assert_eq!(scan(now).await, all, "{name}");
        let seen = store.deadline_scan(100, now).await.unwrap();
        let later = now + chrono::Duration::hours(18);
        let plan: Vec<_> =
            seen.iter().map(|t| AlertSchedule::of(&t.summary, Some(later))).collect();
        assert_eq!(store.alert_reschedule(plan.clone()).await.unwrap(), 3, "{name}");
        assert!(scan(now).await.is_empty(), "{name}: nothing due before 18 h");
        assert_eq!(scan(later + chrono::Duration::minutes(1)).await, all, "{name}");

        // A first answer changes a clock: that ticket is looked at again now, and the
        // schedule made from its old state is not written over it.
        store.reply(codes[1], "Kami cek".into(), crate::op()).await.unwrap();
        assert_eq!(scan(now).await, vec![codes[1]], "{name}");
        assert_eq!(store.alert_reschedule(plan).await.unwrap(), 2, "{name}");
        assert_eq!(scan(now).await, vec![codes[1]], "{name}");
        // No alert left: it leaves the index.
        let t = store.deadline_scan(100, now).await.unwrap().remove(0);
        assert_eq!(
            store.alert_reschedule(vec![AlertSchedule::of(&t.summary, None)]).await.unwrap(),
            1
        );
        assert!(
            scan(now + chrono::Duration::days(400)).await.iter().all(|c| *c != codes[1]),
            "{name}"
        );
        // Closed tickets are never read.
        store
            .set_status(codes[0], Status::Rejected, crate::op(), Some("spam".into()))
            .await
            .unwrap();
        assert_eq!(scan(now + chrono::Duration::days(400)).await, vec![codes[2]], "{name}");
    }
}

// --- officials: per-recipient notifications and the daily digest (issue 19 item 5) ---

#[tokio::test]
async fn each_recipient_gets_its_own_text_once() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code = store.ingest(msg(Channel::Web, "e1", None, "x")).await.unwrap().ticket.unwrap();
        store.assign(code, "DPU".into(), op(), None).await.unwrap();
        let mails = vec![
            (Identity::email("a@dpu.example.id").unwrap(), "untuk a".to_owned()),
            (Identity::email("b@dpu.example.id").unwrap(), "untuk b".to_owned()),
        ];
        let key = "disposition:DPU".to_owned();
        let p = Purpose::Disposition;
        assert!(
            store.notify_once_each(code, key.clone(), p, mails.clone(), Utc::now()).await.unwrap()
        );
        assert!(!store.notify_once_each(code, key, p, mails, Utc::now()).await.unwrap());
        let v = store.ticket(code).await.unwrap().unwrap();
        let sent: Vec<_> =
            v.messages.iter().filter(|m| m.purpose == Some(p)).map(|m| m.text.as_str()).collect();
        assert_eq!(sent, ["untuk a", "untuk b"]);
        assert!(store.undisposed(10, Utc::now()).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_digest_is_claimed_once_per_opd_and_day() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let a = store.ingest(msg(Channel::Web, "g1", None, "x")).await.unwrap().ticket.unwrap();
        let b = store.ingest(msg(Channel::Web, "g2", None, "y")).await.unwrap().ticket.unwrap();
        store.assign(a, "DPU".into(), op(), None).await.unwrap();
        store.assign(b, "DINKES".into(), op(), None).await.unwrap();
        let now = Utc::now();
        let listed = store.digest_tickets("DPU".into(), 10, now).await.unwrap();
        assert_eq!(listed.iter().map(|t| t.summary.code).collect::<Vec<_>>(), [a]);
        assert_eq!(listed[0].disposed_at, None);
        let head =
            || vec![(Identity::email("kepala@dpu.example.id").unwrap(), "ringkasan".to_owned())];
        let day = |d: &str| d.to_owned();
        assert_eq!(store.last_digest("DPU".into(), day("2026-12-07")).await.unwrap(), None);
        assert!(store.digest_once("DPU".into(), day("2026-12-07"), a, head(), now).await.unwrap());
        // A second instance finds the day claimed: nothing queued.
        assert!(!store.digest_once("DPU".into(), day("2026-12-07"), a, head(), now).await.unwrap());
        // Another OPD, another day: their own claims.
        assert!(
            store.digest_once("DINKES".into(), day("2026-12-07"), b, head(), now).await.unwrap()
        );
        let last = store.last_digest("DPU".into(), day("2026-12-08")).await.unwrap();
        assert_eq!(last.map(|t| t.timestamp()), Some(now.timestamp()));
        assert!(store.digest_once("DPU".into(), day("2026-12-08"), a, head(), now).await.unwrap());
        let v = store.ticket(a).await.unwrap().unwrap();
        let digests = v.messages.iter().filter(|m| m.purpose == Some(Purpose::Digest)).count();
        assert_eq!(digests, 2);
        // Closed tickets are not listed.
        store.set_status(a, Status::Resolved, op(), None).await.unwrap();
        assert!(store.digest_tickets("DPU".into(), 10, now).await.unwrap().is_empty());
    }
}

// --- model: routing history and stored models ---

#[tokio::test]
async fn routing_history_imports_once_and_models_are_newest_first() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let rows = |n: usize| {
            (0..n)
                .map(|i| (format!("jalan rusak nomor {i}"), "DPU".to_string()))
                .chain([("sampah menumpuk".to_string(), "DLH".to_string())])
                .collect::<Vec<_>>()
        };
        assert_eq!(store.routing_history_import(rows(3), Some("a.csv".into())).await.unwrap(), 4);
        // The same rows again add nothing; a new row is added; the same text for another
        // OPD is another example.
        assert_eq!(store.routing_history_import(rows(4), None).await.unwrap(), 1);
        let same_text_other_opd = vec![("sampah menumpuk".to_string(), "DPU".to_string())];
        assert_eq!(store.routing_history_import(same_text_other_opd, None).await.unwrap(), 1);
        let history = store.routing_history(1000).await.unwrap();
        assert_eq!(history.len(), 6);
        assert_eq!(history[0], ("jalan rusak nomor 0".to_string(), "DPU".to_string()));
        assert_eq!(store.routing_history(2).await.unwrap().len(), 2, "the newest two");

        assert_eq!(store.routing_model_latest_id().await.unwrap(), None);
        assert!(store.routing_model_latest().await.unwrap().is_none());
        let first = store.routing_model_save(2, 6, 2, &[1, 2, 3, 0, 255]).await.unwrap();
        let second = store.routing_model_save(2, 7, 2, &[9; 1000]).await.unwrap();
        assert!(second > first);
        assert_eq!(store.routing_model_latest_id().await.unwrap(), Some(second));
        let m = store.routing_model_latest().await.unwrap().unwrap();
        assert_eq!((m.id, m.format, m.examples, m.labels), (second, 2, 7, 2));
        assert_eq!(m.bytes, vec![9; 1000]);

        // Dispositions by people, with when the ticket came in.
        let code = store.ingest(msg(Channel::Web, "h1", None, "lampu mati")).await.unwrap();
        let code = code.ticket.unwrap();
        assert!(store.training_examples_dated(10).await.unwrap().is_empty());
        store.assign(code, "DISHUB".into(), op(), None).await.unwrap();
        let dated = store.training_examples_dated(10).await.unwrap();
        assert_eq!(dated.len(), 1);
        assert_eq!((dated[0].0.as_str(), dated[0].1.as_str()), ("lampu mati", "DISHUB"));
        assert!((Utc::now() - dated[0].2).num_seconds().abs() < 60);
    }
}
