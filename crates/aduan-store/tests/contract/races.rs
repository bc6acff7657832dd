//! Operators racing on the same tickets (row locks on PostgreSQL, one writer on SQLite).

use aduan_core::{Channel, EventKind, Status};
use aduan_store::StoreOptions;

use crate::{is_conflict, msg, no_receipts, op, stores, ticket_of};

#[tokio::test]
async fn opposite_merges_racing_leave_exactly_one_merged() {
    for (store, _g) in stores(StoreOptions { max_connections: 16, ..no_receipts() }).await {
        const PAIRS: usize = 40;
        let mut pairs = Vec::new();
        for i in 0..PAIRS {
            let code = |n: usize| {
                let m = msg(Channel::Web, &format!("merge-{i}-{n}"), None, "Jalan rusak");
                let store = store.clone();
                async move { store.ingest(m).await.unwrap().ticket.unwrap() }
            };
            pairs.push((code(0).await, code(1).await));
        }
        // Every pair merged both ways at once: A → B and B → A.
        let tasks: Vec<_> = pairs
            .iter()
            .flat_map(|&(a, b)| [(a, b), (b, a)])
            .map(|(from, into)| {
                let store = store.clone();
                tokio::spawn(async move { store.merge(from, into, op()).await })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        // Every pair: exactly one merge won, the other was refused as a conflict (409),
        // and the survivor is reachable (not merged; the other points at it).
        let mut wrong = Vec::new();
        for (i, (&(a, b), r)) in pairs.iter().zip(results.chunks(2)).enumerate() {
            let va = store.ticket(a).await.unwrap().unwrap().summary;
            let vb = store.ticket(b).await.unwrap().unwrap().summary;
            let merged: Vec<_> =
                [&va, &vb].into_iter().filter(|v| v.status == Status::Merged).collect();
            let won = r.iter().filter(|r| r.is_ok()).count();
            let refused = r.iter().filter(|r| r.as_ref().is_err_and(is_conflict)).count();
            let reachable = merged.len() == 1
                && [&va, &vb]
                    .into_iter()
                    .any(|v| v.merged_into.is_none() && merged[0].merged_into == Some(v.code));
            if won != 1 || refused != 1 || !reachable {
                let said: Vec<String> = r
                    .iter()
                    .map(|r| r.as_ref().map_or_else(|e| e.to_string(), |_| "ok".into()))
                    .collect();
                wrong.push(format!("pair {i}: {said:?}, {} merged", merged.len()));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {PAIRS} pairs wrong ({}): {wrong:#?}",
            wrong.len(),
            store.backend_name()
        );
    }
}

#[tokio::test]
async fn conflicting_status_changes_racing_have_one_winner() {
    for (store, _g) in stores(StoreOptions { max_connections: 16, ..no_receipts() }).await {
        const TICKETS: usize = 40;
        let mut codes = Vec::new();
        for i in 0..TICKETS {
            let m = msg(Channel::Web, &format!("status-{i}"), None, "Lampu jalan mati");
            codes.push(store.ingest(m).await.unwrap().ticket.unwrap());
        }
        // Resolved and rejected exclude each other (neither may become the other), so of
        // the two requests on one ticket exactly one may win.
        let tasks: Vec<_> = codes
            .iter()
            .flat_map(|&c| [(c, Status::Resolved), (c, Status::Rejected)])
            .map(|(code, to)| {
                let store = store.clone();
                tokio::spawn(async move {
                    store.set_status(code, to, op(), Some("sudah ditangani".into())).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        for (i, (&code, r)) in codes.iter().zip(results.chunks(2)).enumerate() {
            let won: Vec<Status> = r
                .iter()
                .zip([Status::Resolved, Status::Rejected])
                .filter(|(r, _)| r.is_ok())
                .map(|(_, s)| s)
                .collect();
            assert_eq!(won.len(), 1, "ticket {i}: {r:?} ({})", store.backend_name());
            for e in r.iter().filter_map(|r| r.as_ref().err()) {
                assert!(is_conflict(e), "ticket {i}: {e}");
            }
            let v = store.ticket(code).await.unwrap().unwrap();
            assert_eq!(v.summary.status, won[0]);
            // The audit log tells one story: one change, from new.
            let changes: Vec<_> =
                v.events.iter().filter(|e| e.kind == EventKind::StatusChanged).collect();
            assert_eq!(changes.len(), 1, "ticket {i} ({})", store.backend_name());
            assert_eq!(changes[0].from.as_deref(), Some("new"));
        }
        // A merge racing a resolution: one of them, never a resolved ticket that is merged.
        let mut pairs = Vec::new();
        for i in 0..TICKETS {
            let a =
                ticket_of(&store, msg(Channel::Web, &format!("mr-{i}-a"), None, "Sampah")).await;
            let b =
                ticket_of(&store, msg(Channel::Web, &format!("mr-{i}-b"), None, "Sampah")).await;
            pairs.push((a, b));
        }
        let tasks: Vec<_> = pairs
            .iter()
            .map(|&(a, b)| {
                let store = store.clone();
                tokio::spawn(async move {
                    let (m, s) = tokio::join!(
                        store.merge(a, b, op()),
                        store.set_status(a, Status::Resolved, op(), None)
                    );
                    (m, s)
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let (m, s) = t.await.unwrap();
            assert!(m.is_ok() != s.is_ok(), "pair {i}: {m:?} {s:?} ({})", store.backend_name());
            let v = store.ticket(pairs[i].0).await.unwrap().unwrap().summary;
            assert_eq!(v.status, if m.is_ok() { Status::Merged } else { Status::Resolved });
        }
    }
}
