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
