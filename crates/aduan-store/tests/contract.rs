//! The store contract: every test runs on SQLite, and on PostgreSQL when
//! `ADUAN_TEST_PG_URL` names a server (the full suite, `cargo xtask test`, always sets it and
//! sets `ADUAN_TEST_FULL=1`, under which a missing server is a failure, not a skip).

use std::sync::Arc;

use aduan_core::{
    Actor, AttachmentRef, Channel, Direction, EventKind, Identity, IdentityKind, InboundMessage,
    Location, OutboxState, Purpose, Sender, SlaPolicy, Status, ThreadHints, TicketCode,
    TransitionError,
};
use aduan_store::{Scope, Store, StoreError, StoreOptions, TicketFilter};
use chrono::{Duration, Utc};

/// A fresh, migrated store of each backend; the SQLite one lives in a temp dir kept alive by
/// the returned guard.
async fn stores(opts: StoreOptions) -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
    let sqlite = Store::open(&url, opts.clone()).await.unwrap();
    sqlite.migrate().await.unwrap();
    let mut out = vec![(sqlite, Some(dir))];
    if let Some(url) = fresh_pg_database().await {
        let pg = Store::open(&url, opts).await.unwrap();
        pg.migrate().await.unwrap();
        out.push((pg, None));
    }
    out
}

/// Creates an empty database on the test server and returns its URL.
async fn fresh_pg_database() -> Option<String> {
    let base = match std::env::var("ADUAN_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("ADUAN_TEST_FULL").is_err(),
                "ADUAN_TEST_FULL is set but ADUAN_TEST_PG_URL is not: the PostgreSQL half of the \
                 store contract can't run. Use `cargo xtask test`."
            );
            eprintln!("ADUAN_TEST_PG_URL unset: PostgreSQL half of the contract skipped");
            return None;
        }
    };
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect to ADUAN_TEST_PG_URL");
    let name = format!("aduan_t{}", rand_suffix());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (head, _) = base.rsplit_once('/').expect("URL with a database path");
    Some(format!("{head}/{name}"))
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        Utc::now().timestamp_micros(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn msg(
    channel: Channel,
    provider_id: &str,
    sender: Option<Identity>,
    text: &str,
) -> InboundMessage {
    InboundMessage {
        channel,
        provider_id: provider_id.to_owned(),
        sender: Sender { identity: sender, display_name: Some("Siti".into()), contacts: vec![] },
        text: text.to_owned(),
        attachments: vec![],
        location: None,
        received_at: Utc::now(),
        thread: ThreadHints::default(),
    }
}

fn tg(id: &str) -> Option<Identity> {
    Some(Identity::new(IdentityKind::Telegram, id).unwrap())
}

/// Options without the automatic receipt, for tests about the outbox mechanics.
fn no_receipts() -> StoreOptions {
    StoreOptions { ack_template: None, ..StoreOptions::default() }
}

fn email(addr: &str) -> Option<Identity> {
    Some(Identity::email(addr).unwrap())
}

fn op() -> Actor {
    Actor::User("operator@banyumaskab.go.id".into())
}

#[tokio::test]
async fn the_same_provider_message_is_stored_once() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let m = msg(Channel::Telegram, "upd-1", tg("42"), "Jalan berlubang di Desa Karangklesem");
        let first = store.ingest(m.clone()).await.unwrap();
        assert!(!first.duplicate && first.ticket_created);
        let again = store.ingest(m).await.unwrap();
        assert!(again.duplicate && !again.ticket_created);
        assert_eq!(again.ticket, first.ticket);
        assert_eq!(again.message_id, first.message_id);
        let view = store.ticket(first.ticket.unwrap()).await.unwrap().unwrap();
        let inbound = view.messages.iter().filter(|m| m.direction == Direction::In).count();
        assert_eq!(inbound, 1);
        assert_eq!(view.summary.status, Status::New);
        // The same provider id on another channel is another message.
        let other = store.ingest(msg(Channel::Sms, "upd-1", None, "lain")).await.unwrap();
        assert!(!other.duplicate);
    }
}

#[tokio::test]
async fn concurrent_deliveries_of_one_message_make_one_ticket() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let m = msg(Channel::Web, "app-123", None, "Lampu jalan mati");
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (store, m) = (store.clone(), m.clone());
                tokio::spawn(async move { store.ingest(m).await.unwrap() })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(results.iter().filter(|r| !r.duplicate).count(), 1, "{}", store.backend_name());
        let code = results[0].ticket.unwrap();
        assert!(results.iter().all(|r| r.ticket == Some(code)));
        let page = store.tickets(&TicketFilter { limit: 50, ..Default::default() }).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(store.ticket(code).await.unwrap().unwrap().messages.len(), 1);
    }
}

#[tokio::test]
async fn concurrent_distinct_messages_all_commit() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let m =
                        msg(Channel::Web, &format!("app-{i}"), None, &format!("aduan nomor {i}"));
                    store.ingest(m).await.unwrap()
                })
            })
            .collect();
        let mut codes = std::collections::HashSet::new();
        for t in tasks {
            let r = t.await.unwrap();
            assert!(!r.duplicate);
            codes.insert(r.ticket.unwrap());
        }
        assert_eq!(codes.len(), 300);
    }
}

#[tokio::test]
async fn a_failing_write_does_not_spoil_its_batch() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let missing: TicketCode = "ADU-00000000".parse().unwrap();
        let mut tasks = Vec::new();
        for i in 0..50 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    let r = store.assign(missing, "DPU".into(), op(), None).await;
                    assert!(matches!(r, Err(StoreError::TicketNotFound(_))), "{r:?}");
                } else {
                    store.ingest(msg(Channel::Web, &format!("b-{i}"), None, "teks")).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let page = store.tickets(&TicketFilter { limit: 100, ..Default::default() }).await.unwrap();
        assert_eq!(page.items.len(), 25);
    }
}

#[tokio::test]
async fn a_quoted_code_joins_its_ticket() {
    for (store, _g) in stores(StoreOptions::default()).await {
        // The reporter's own identities join by code, on any channel.
        let mut first =
            msg(Channel::Sms, "s1", Some(Identity::phone("081234567890").unwrap()), "Sampah");
        first.sender.contacts = vec![Identity::email("siti@example.id").unwrap()];
        let code = store.ingest(first).await.unwrap().ticket.unwrap();
        let text = format!("{} bagaimana?", code.to_string().to_lowercase());
        let follow =
            store.ingest(msg(Channel::Email, "e1", email("siti@example.id"), &text)).await.unwrap();
        assert_eq!(follow.ticket, Some(code));
        assert!(!follow.ticket_created);
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.messages.iter().filter(|m| m.direction == Direction::In).count(), 2);
        assert!(view.events.iter().any(|e| e.kind == EventKind::MessageReceived));
        // A code that doesn't exist opens a new ticket instead.
        let stray = store.ingest(msg(Channel::Email, "e2", None, "ADU-ZZZZZZZZ")).await.unwrap();
        assert!(stray.ticket_created);
    }
}

#[tokio::test]
async fn a_reply_to_a_stored_message_joins_its_ticket() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let warga = email("warga@example.id");
        let first = store.ingest(msg(Channel::Email, "<a@x>", warga.clone(), "Banjir")).await;
        let first = first.unwrap();
        let mut m = msg(Channel::Email, "<b@x>", warga, "tambahan foto");
        m.thread.references = vec!["<unknown@x>".into(), "<a@x>".into()];
        let r = store.ingest(m).await.unwrap();
        assert_eq!(r.ticket, first.ticket);
        // Another address replying to the same thread is not the reporter: its own ticket.
        let mut m = msg(Channel::Email, "<c@x>", email("lain@example.id"), "saya juga");
        m.thread.references = vec!["<a@x>".into()];
        let other = store.ingest(m).await.unwrap();
        assert!(other.ticket_created);
        assert_ne!(other.ticket, first.ticket);
    }
}

#[tokio::test]
async fn chats_join_the_senders_open_ticket_within_the_window() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let a =
            store.ingest(msg(Channel::Telegram, "t1", tg("7"), "Jembatan rusak")).await.unwrap();
        let b =
            store.ingest(msg(Channel::Telegram, "t2", tg("7"), "di Desa Pageraji")).await.unwrap();
        assert_eq!(a.ticket, b.ticket);
        assert!(!b.ticket_created);
        // Another sender gets their own ticket.
        let c =
            store.ingest(msg(Channel::Telegram, "t3", tg("8"), "Jembatan rusak")).await.unwrap();
        assert_ne!(c.ticket, a.ticket);
        // Once resolved, a new message without the code is a new complaint.
        store.set_status(a.ticket.unwrap(), Status::Resolved, op(), None).await.unwrap();
        let d = store.ingest(msg(Channel::Telegram, "t4", tg("7"), "Lampu mati")).await.unwrap();
        assert!(d.ticket_created);
        assert_ne!(d.ticket, a.ticket);
    }
}

#[tokio::test]
async fn the_window_closes() {
    let mut opts = StoreOptions::default();
    opts.threading.default_window = Duration::milliseconds(1);
    for (store, _g) in stores(opts.clone()).await {
        let a = store.ingest(msg(Channel::Telegram, "t1", tg("7"), "satu")).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let b = store.ingest(msg(Channel::Telegram, "t2", tg("7"), "dua")).await.unwrap();
        assert_ne!(a.ticket, b.ticket);
    }
}

#[tokio::test]
async fn web_submissions_are_separate_reports() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let app = Some(Identity::new(IdentityKind::AppUser, "u-77").unwrap());
        let a = store.ingest(msg(Channel::Web, "w1", app.clone(), "satu")).await.unwrap();
        let b = store.ingest(msg(Channel::Web, "w2", app, "dua")).await.unwrap();
        assert_ne!(a.ticket, b.ticket);
    }
}

#[tokio::test]
async fn quoting_a_resolved_ticket_reopens_it() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code = store
            .ingest(msg(Channel::Sms, "s1", tg("1"), "Air PDAM mati"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        store.assign(code, "PDAM".into(), op(), None).await.unwrap();
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        assert!(store.ticket(code).await.unwrap().unwrap().summary.resolved_at.is_some());
        let r = store
            .ingest(msg(Channel::Sms, "s2", tg("1"), &format!("{code} masih mati")))
            .await
            .unwrap();
        assert!(r.reopened);
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.status, Status::Assigned);
        assert_eq!(view.summary.resolved_at, None);
        let last = view.events.last().unwrap();
        assert_eq!((last.kind, last.actor.clone()), (EventKind::MessageReceived, Actor::Resident));
        let reopen = &view.events[view.events.len() - 2];
        assert_eq!(reopen.kind, EventKind::StatusChanged);
        assert_eq!(
            (reopen.from.as_deref(), reopen.to.as_deref()),
            (Some("resolved"), Some("assigned"))
        );
    }
}

#[tokio::test]
async fn automated_mail_without_a_thread_opens_no_ticket() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let mut m = msg(Channel::Email, "<bounce@x>", None, "Delivery failed");
        m.thread.automated = true;
        let r = store.ingest(m.clone()).await.unwrap();
        assert_eq!(r.ticket, None);
        assert!(!r.ticket_created);
        // …and is still recognised when delivered again.
        assert!(store.ingest(m).await.unwrap().duplicate);
        assert!(
            store
                .tickets(&TicketFilter { limit: 10, ..Default::default() })
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }
}

#[tokio::test]
async fn the_status_machine_refuses_illegal_moves() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code = store.ingest(msg(Channel::Web, "w1", None, "x")).await.unwrap().ticket.unwrap();
        let err = store.set_status(code, Status::New, op(), None).await.unwrap_err();
        assert!(matches!(err, StoreError::Transition(TransitionError::Illegal { .. })), "{err}");
        let err = store.set_status(code, Status::Rejected, op(), None).await.unwrap_err();
        assert!(matches!(err, StoreError::Transition(TransitionError::NeedsReason)), "{err}");
        store.set_status(code, Status::Rejected, op(), Some("spam".into())).await.unwrap();
        let err = store.set_status(code, Status::Resolved, op(), None).await.unwrap_err();
        assert!(matches!(err, StoreError::Transition(TransitionError::Illegal { .. })), "{err}");
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.status, Status::Rejected);
        let ev = view.events.last().unwrap();
        assert_eq!(ev.note.as_deref(), Some("spam"));
        assert_eq!(ev.actor, op());
        // Nothing was written by the refused moves: created + one status change.
        assert_eq!(view.events.len(), 2);
        let missing: TicketCode = "ADU-00000000".parse().unwrap();
        assert!(matches!(
            store.set_status(missing, Status::Resolved, op(), None).await,
            Err(StoreError::TicketNotFound(_))
        ));
    }
}

#[tokio::test]
async fn assigning_records_the_opd_and_refuses_repeats() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code = store.ingest(msg(Channel::Web, "w1", None, "x")).await.unwrap().ticket.unwrap();
        store.assign(code, "DPU".into(), op(), Some("jalan".into())).await.unwrap();
        let err = store.assign(code, "DPU".into(), op(), None).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        store.assign(code, "DLH".into(), op(), None).await.unwrap();
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.opd.as_deref(), Some("DLH"));
        assert_eq!(view.summary.status, Status::Assigned);
        let kinds: Vec<_> =
            view.events.iter().map(|e| (e.kind, e.from.clone(), e.to.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (EventKind::Created, None, Some("new".into())),
                (EventKind::Assigned, None, Some("DPU".into())),
                (EventKind::StatusChanged, Some("new".into()), Some("assigned".into())),
                (EventKind::Assigned, Some("DPU".into()), Some("DLH".into())),
            ]
        );
        // Returning to triage clears the OPD.
        store.set_status(code, Status::New, op(), Some("bukan wewenang".into())).await.unwrap();
        assert_eq!(store.ticket(code).await.unwrap().unwrap().summary.opd, None);
    }
}

#[tokio::test]
async fn replies_queue_on_the_residents_channel_and_stop_the_clock() {
    for (store, _g) in stores(no_receipts()).await {
        let code = store
            .ingest(msg(Channel::Telegram, "t1", tg("42"), "x"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        let replied =
            store.reply(code, "Terima kasih, sedang kami cek.".into(), op()).await.unwrap();
        assert_eq!(replied.channel, Some(Channel::Telegram));
        assert_eq!(replied.delivery, OutboxState::Pending);
        let view = store.ticket(code).await.unwrap().unwrap();
        assert!(view.summary.first_responded_at.is_some());
        let out = view.messages.last().unwrap();
        assert_eq!(out.direction, Direction::Out);
        assert_eq!(out.delivery, Some(OutboxState::Pending));
        assert_eq!(out.author.as_deref(), Some("user:operator@banyumaskab.go.id"));
        assert_eq!(
            store.outbox_counts().await.unwrap(),
            vec![(Channel::Telegram, OutboxState::Pending, 1)]
        );
    }
}

#[tokio::test]
async fn web_residents_without_contacts_are_answered_on_the_tracking_page() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code = store.ingest(msg(Channel::Web, "w1", None, "x")).await.unwrap().ticket.unwrap();
        let replied = store.reply(code, "Sudah diperbaiki.".into(), op()).await.unwrap();
        assert_eq!((replied.channel, replied.delivery), (None, OutboxState::Published));
        let mut m =
            msg(Channel::Web, "w2", Some(Identity::new(IdentityKind::AppUser, "u1").unwrap()), "y");
        m.sender.contacts = vec![Identity::phone("081234567890").unwrap()];
        let code = store.ingest(m).await.unwrap().ticket.unwrap();
        let replied = store.reply(code, "Baik.".into(), op()).await.unwrap();
        assert_eq!((replied.channel, replied.delivery), (Some(Channel::Sms), OutboxState::Pending));
        let items =
            store.outbox_claim(vec![Channel::Sms], 10, Duration::seconds(60)).await.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].recipient, Identity::phone("+6281234567890").unwrap());
    }
}

#[tokio::test]
async fn outbox_rows_are_claimed_once_and_retried_until_dead() {
    for (store, _g) in stores(no_receipts()).await {
        let code = store
            .ingest(msg(Channel::Telegram, "t1", tg("42"), "x"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        store.reply(code, "satu".into(), op()).await.unwrap();
        store.reply(code, "dua".into(), op()).await.unwrap();
        let lease = Duration::seconds(60);
        assert!(store.outbox_claim(vec![Channel::Email], 10, lease).await.unwrap().is_empty());
        let claimed = store.outbox_claim(vec![Channel::Telegram], 10, lease).await.unwrap();
        assert_eq!(claimed.iter().map(|i| i.text.as_str()).collect::<Vec<_>>(), ["satu", "dua"]);
        assert_eq!(claimed[0].ticket, code);
        assert_eq!(claimed[0].attempts, 1);
        assert_eq!(claimed[0].thread_refs, vec!["t1".to_string()]);
        assert!(store.outbox_claim(vec![Channel::Telegram], 10, lease).await.unwrap().is_empty());

        store.outbox_sent(claimed[0].id, Some("tg-msg-9".into())).await.unwrap();
        assert!(matches!(
            store.outbox_sent(claimed[0].id, None).await,
            Err(StoreError::Conflict(_))
        ));
        // A failure with a retry time comes back when due…
        store
            .outbox_failed(
                claimed[1].id,
                "HTTP 502".into(),
                Some(Utc::now() - Duration::seconds(1)),
            )
            .await
            .unwrap();
        let again = store.outbox_claim(vec![Channel::Telegram], 10, lease).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        // …and without one it is dead.
        store.outbox_failed(again[0].id, "HTTP 400".into(), None).await.unwrap();
        assert!(store.outbox_claim(vec![Channel::Telegram], 10, lease).await.unwrap().is_empty());
        let mut counts = store.outbox_counts().await.unwrap();
        counts.sort_by_key(|c| c.1.as_str());
        assert_eq!(
            counts,
            vec![
                (Channel::Telegram, OutboxState::Dead, 1),
                (Channel::Telegram, OutboxState::Sent, 1)
            ]
        );
        // What we sent is a thread reference now.
        let r = store
            .ingest(InboundMessage {
                thread: ThreadHints { references: vec!["tg-msg-9".into()], ..Default::default() },
                ..msg(Channel::Telegram, "t9", tg("42"), "balas")
            })
            .await
            .unwrap();
        assert_eq!(r.ticket, Some(code));
    }
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again() {
    for (store, _g) in stores(no_receipts()).await {
        let code = store
            .ingest(msg(Channel::Telegram, "t1", tg("42"), "x"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        store.reply(code, "satu".into(), op()).await.unwrap();
        let first = store
            .outbox_claim(vec![Channel::Telegram], 10, Duration::milliseconds(-1))
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        let second =
            store.outbox_claim(vec![Channel::Telegram], 10, Duration::seconds(60)).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].attempts, 2);
    }
}

#[tokio::test]
async fn merging_moves_the_thread_and_redirects_later_messages() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let a = store
            .ingest(msg(Channel::Sms, "s1", tg("1"), "Jalan rusak Kemangkon"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        let b = store
            .ingest(msg(Channel::Email, "e1", email("b@example.id"), "Jalan rusak di Kemangkon"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        assert!(matches!(store.merge(a, a, op()).await, Err(StoreError::Invalid(_))));
        store.merge(b, a, op()).await.unwrap();
        let va = store.ticket(a).await.unwrap().unwrap();
        let vb = store.ticket(b).await.unwrap().unwrap();
        assert_eq!(inbound(&va), 2);
        assert_eq!(vb.summary.status, Status::Merged);
        assert_eq!(vb.summary.merged_into, Some(a));
        assert_eq!(va.events.last().unwrap().kind, EventKind::Absorbed);
        // The merged ticket's reporter quoting its code lands in the surviving ticket.
        let r = store.ingest(msg(Channel::Email, "e2", email("b@example.id"), &format!("Re: {b}")));
        assert_eq!(r.await.unwrap().ticket, Some(a));
        assert!(matches!(store.reply(b, "x".into(), op()).await, Err(StoreError::Conflict(_))));
        assert!(matches!(store.merge(a, b, op()).await, Err(StoreError::Conflict(_))));
    }
}

#[tokio::test]
async fn listing_filters_and_pages() {
    let opts = StoreOptions {
        sla: SlaPolicy { first_response: Duration::hours(-1), ..SlaPolicy::default() },
        ..StoreOptions::default()
    };
    for (store, _g) in stores(opts.clone()).await {
        let mut codes = Vec::new();
        for i in 0..7 {
            let ch = if i % 2 == 0 { Channel::Web } else { Channel::Sms };
            let text = if i == 3 { "Pohon TUMBANG di jalan" } else { "lainnya 100%" };
            let m = msg(ch, &format!("p{i}"), None, text);
            codes.push(store.ingest(m).await.unwrap().ticket.unwrap());
        }
        store.assign(codes[1], "DPU".into(), op(), None).await.unwrap();
        store.reply(codes[2], "ok".into(), op()).await.unwrap();

        // The codes a filter finds, with `limit: 50` unless it sets one.
        let find = |f: TicketFilter| {
            let store = store.clone();
            async move {
                let f = TicketFilter { limit: if f.limit == 0 { 50 } else { f.limit }, ..f };
                let page = store.tickets(&f).await.unwrap();
                (page.items.iter().map(|t| t.code).collect::<Vec<_>>(), page.next_cursor)
            }
        };
        let none = TicketFilter::default;

        let (page1, next) = find(TicketFilter { limit: 3, ..none() }).await;
        assert_eq!(page1, vec![codes[6], codes[5], codes[4]]);
        let cursor = Some(next.unwrap().parse().unwrap());
        let (page2, next) = find(TicketFilter { limit: 3, cursor, ..none() }).await;
        assert_eq!(page2, vec![codes[3], codes[2], codes[1]]);
        let cursor = Some(next.unwrap().parse().unwrap());
        let (page3, next) = find(TicketFilter { limit: 3, cursor, ..none() }).await;
        assert_eq!((page3, next), (vec![codes[0]], None));

        let by = |f: TicketFilter| async move { find(f).await.0 };
        assert_eq!(by(TicketFilter { channel: Some(Channel::Sms), ..none() }).await.len(), 3);
        assert_eq!(by(TicketFilter { opd: Some("DPU".into()), ..none() }).await, vec![codes[1]]);
        assert_eq!(
            by(TicketFilter { status: Some(Status::Assigned), ..none() }).await,
            vec![codes[1]]
        );
        assert_eq!(by(TicketFilter { q: Some("tumbang".into()), ..none() }).await, vec![codes[3]]);
        let code_q = Some(codes[5].to_string().to_lowercase());
        assert_eq!(by(TicketFilter { q: code_q, ..none() }).await, vec![codes[5]]);
        // LIKE wildcards in the query are literal.
        assert_eq!(by(TicketFilter { q: Some("0%".into()), ..none() }).await.len(), 6);
        assert!(by(TicketFilter { q: Some("_".into()), ..none() }).await.is_empty());
        // Every ticket was due an hour before it was made; the one answered is not overdue.
        let overdue = store
            .tickets(&TicketFilter { overdue: Some(true), limit: 50, ..none() })
            .await
            .unwrap();
        assert_eq!(overdue.items.len(), 6);
        assert!(overdue.items.iter().all(|t| t.overdue));
        assert_eq!(by(TicketFilter { overdue: Some(false), ..none() }).await, vec![codes[2]]);
        let by_opd = store.overdue_by_opd().await.unwrap();
        assert_eq!(by_opd, vec![(None, 5), (Some("DPU".to_string()), 1)]);
    }
}

#[tokio::test]
async fn reporters_locations_and_attachments_are_kept() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let mut m = msg(
            Channel::Web,
            "w1",
            Some(Identity::new(IdentityKind::AppUser, "u-77").unwrap()),
            "foto",
        );
        m.sender.contacts = vec![Identity::email("Siti@Example.id").unwrap()];
        m.location = Some(Location::new(-7.4246, 109.2396).unwrap());
        m.attachments = vec![AttachmentRef {
            filename: Some("foto.jpg".into()),
            content_type: "image/jpeg".into(),
            size: 3,
            sha256: "ab".repeat(32),
            provider_ref: None,
        }];
        let code = store.ingest(m).await.unwrap().ticket.unwrap();
        let view = store.ticket(code).await.unwrap().unwrap();
        let reporter = view.reporter.unwrap();
        assert_eq!(reporter.name.as_deref(), Some("Siti"));
        assert_eq!(
            reporter.identities.iter().map(|i| (i.kind, i.value.as_str())).collect::<Vec<_>>(),
            vec![(IdentityKind::AppUser, "u-77"), (IdentityKind::Email, "siti@example.id")]
        );
        assert_eq!(view.summary.location, Some(Location { lat: -7.4246, lon: 109.2396 }));
        assert_eq!(view.messages[0].attachments.len(), 1);
        assert_eq!(view.messages[0].attachments[0].filename.as_deref(), Some("foto.jpg"));
    }
}

#[tokio::test]
async fn checkpoints_users_and_keys() {
    for (store, _g) in stores(StoreOptions::default()).await {
        store.ping().await.unwrap();
        assert_eq!(store.checkpoint("email", "uid").await.unwrap(), None);
        store.set_checkpoint("email".into(), "uid".into(), "41".into()).await.unwrap();
        store.set_checkpoint("email".into(), "uid".into(), "42".into()).await.unwrap();
        assert_eq!(store.checkpoint("email", "uid").await.unwrap().as_deref(), Some("42"));

        let user = aduan_store::NewUser {
            email: "Kepala.DPU@banyumaskab.go.id".into(),
            name: None,
            role: aduan_store::Role::Official,
            opd: Some("DPU".into()),
            password_hash: "$argon2id$…".into(),
        };
        store.add_user(user.clone()).await.unwrap();
        assert!(matches!(store.add_user(user).await, Err(StoreError::Conflict(_))));

        store.add_api_key("app".into(), Scope::Intake, "h1".into()).await.unwrap();
        let key = store.api_key_by_hash("h1").await.unwrap().unwrap();
        assert_eq!((key.name.as_str(), key.scope, key.revoked), ("app", Scope::Intake, false));
        assert_eq!(store.api_key_by_hash("h2").await.unwrap(), None);
        let admin = aduan_core::Actor::User("admin@kab.go.id".into());
        let revoked = store.revoke_api_key(key.id, admin.clone()).await.unwrap().unwrap();
        assert!(revoked.revoked && revoked.name == "app");
        assert!(store.api_key_by_hash("h1").await.unwrap().unwrap().revoked);
        assert_eq!(store.revoke_api_key(key.id + 1000, admin).await.unwrap(), None);
    }
}

#[tokio::test]
async fn sqlite_writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let code = store.ingest(msg(Channel::Web, "w1", None, "x")).await.unwrap().ticket.unwrap();
    store.close().await;
    assert!(matches!(
        store.ingest(msg(Channel::Web, "w2", None, "y")).await,
        Err(StoreError::Closed)
    ));
    let store = Arc::new(Store::open(&url, StoreOptions::default()).await.unwrap());
    store.migrate().await.unwrap();
    assert!(store.ticket(code).await.unwrap().is_some());
}

#[tokio::test]
async fn a_new_chat_ticket_gets_one_receipt_with_its_code() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let first =
            store.ingest(msg(Channel::Telegram, "t1", tg("42"), "Jalan rusak")).await.unwrap();
        let code = first.ticket.unwrap();
        // A follow-up, a redelivery, a web submission and an auto-reply get none.
        store.ingest(msg(Channel::Telegram, "t2", tg("42"), "di Pageraji")).await.unwrap();
        store.ingest(msg(Channel::Telegram, "t1", tg("42"), "Jalan rusak")).await.unwrap();
        store.ingest(msg(Channel::Web, "w1", tg("43"), "lewat web")).await.unwrap();
        let web_email = Some(Identity::email("warga@example.id").unwrap());
        store.ingest(msg(Channel::Web, "w2", web_email, "lewat formulir")).await.unwrap();
        let mut auto = msg(Channel::Email, "<a@x>", Some(Identity::email("a@x.id").unwrap()), "x");
        auto.thread.automated = true;
        store.ingest(auto).await.unwrap();

        let items =
            store.outbox_claim(Channel::ALL.to_vec(), 10, Duration::seconds(60)).await.unwrap();
        assert_eq!(items.len(), 1, "{items:?}");
        let ack = &items[0];
        assert_eq!((ack.ticket, ack.channel, ack.purpose), (code, Channel::Telegram, Purpose::Ack));
        assert_eq!(ack.recipient, Identity::new(IdentityKind::Telegram, "42").unwrap());
        assert!(ack.text.contains(&code.to_string()) && ack.text.contains("CEK"), "{}", ack.text);
        // The receipt is in the thread but is no answer: the response clock still runs.
        let view = store.ticket(code).await.unwrap().unwrap();
        let out: Vec<_> = view.messages.iter().filter(|m| m.direction == Direction::Out).collect();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].purpose, Some(Purpose::Ack));
        assert_eq!(out[0].author.as_deref(), Some("system"));
        assert_eq!(view.summary.first_responded_at, None);
    }
}

#[tokio::test]
async fn a_provider_batch_is_stored_whole_or_not_at_all() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let batch = vec![
            msg(Channel::Whatsapp, "wamid.1", tg("1"), "satu"),
            msg(Channel::Whatsapp, "wamid.2", tg("2"), "dua"),
        ];
        let stored = store.ingest_all(batch.clone()).await.unwrap();
        assert_eq!(stored.iter().filter(|r| r.ticket_created).count(), 2);
        let again = store.ingest_all(batch).await.unwrap();
        assert!(again.iter().all(|r| r.duplicate));
        assert_eq!(
            again.iter().map(|r| r.ticket).collect::<Vec<_>>(),
            stored.iter().map(|r| r.ticket).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn the_last_inbound_time_is_per_sender_and_channel() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let wa = Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap();
        assert_eq!(store.last_inbound_at(Channel::Whatsapp, &wa).await.unwrap(), None);
        let day_ago = Utc::now() - Duration::hours(26);
        let recent = Utc::now() - Duration::minutes(5);
        for (id, at) in [("wamid.1", recent), ("wamid.0", day_ago)] {
            let mut m = msg(Channel::Whatsapp, id, Some(wa.clone()), "Lampu jalan mati");
            m.received_at = at;
            store.ingest(m).await.unwrap();
        }
        let last = store.last_inbound_at(Channel::Whatsapp, &wa).await.unwrap().unwrap();
        assert_eq!(last.timestamp_millis(), recent.timestamp_millis());
        // Our own answers don't open the window, and other senders don't count.
        let other = Identity::new(IdentityKind::Whatsapp, "6289999999999").unwrap();
        assert_eq!(store.last_inbound_at(Channel::Whatsapp, &other).await.unwrap(), None);
    }
}

#[tokio::test]
async fn delivery_receipts_move_forward_and_failures_are_dead() {
    use aduan_store::{DeliveryReceipt, ReceiptStatus};
    for (store, _g) in stores(StoreOptions::default()).await {
        let wa = Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap();
        store
            .ingest(msg(Channel::Whatsapp, "wamid.in", Some(wa), "Sampah menumpuk"))
            .await
            .unwrap();
        let lease = Duration::seconds(60);
        let claimed = store.outbox_claim(vec![Channel::Whatsapp], 10, lease).await.unwrap();
        let id = claimed[0].id;
        store.outbox_sent(id, Some("wamid.out".into())).await.unwrap();
        let receipt = |status, error: Option<&str>| DeliveryReceipt {
            channel: Channel::Whatsapp,
            provider_id: "wamid.out".into(),
            status,
            at: Utc::now(),
            error: error.map(str::to_owned),
        };
        let unknown = DeliveryReceipt {
            provider_id: "wamid.other".into(),
            ..receipt(ReceiptStatus::Read, None)
        };
        assert!(!store.outbox_receipt(unknown).await.unwrap());
        assert!(store.outbox_receipt(receipt(ReceiptStatus::Read, None)).await.unwrap());
        assert!(store.outbox_receipt(receipt(ReceiptStatus::Delivered, None)).await.unwrap());
        let row = store.outbox_row(id).await.unwrap().unwrap();
        assert_eq!((row.state, row.receipt), (OutboxState::Sent, Some(ReceiptStatus::Read)));
        assert!(row.receipt_at.is_some());
        store
            .outbox_receipt(receipt(
                ReceiptStatus::Failed,
                Some("whatsapp error 131026: Message undeliverable"),
            ))
            .await
            .unwrap();
        let row = store.outbox_row(id).await.unwrap().unwrap();
        assert_eq!((row.state, row.receipt), (OutboxState::Dead, Some(ReceiptStatus::Failed)));
        assert_eq!(
            row.last_error.as_deref(),
            Some("delivery failed: whatsapp error 131026: Message undeliverable")
        );
        assert!(store.outbox_row(id + 100).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn provider_media_is_queued_until_fetched_or_given_up() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let wa = Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap();
        let mut m = msg(Channel::Whatsapp, "wamid.img", Some(wa), "");
        let media = |r: &str| AttachmentRef {
            filename: None,
            content_type: "image/jpeg".into(),
            size: 0,
            sha256: String::new(),
            provider_ref: Some(r.into()),
        };
        m.attachments = vec![media("111"), media("222"), media("333")];
        store.ingest(m).await.unwrap();
        let due = store.attachments_unfetched(vec![Channel::Whatsapp], 3, 10).await.unwrap();
        assert_eq!(
            due.iter().map(|a| a.provider_ref.as_str()).collect::<Vec<_>>(),
            ["111", "222", "333"]
        );
        assert!(
            store.attachments_unfetched(vec![Channel::Messenger], 3, 10).await.unwrap().is_empty()
        );
        store
            .attachment_fetched(due[0].id, "ab".repeat(32), 1234, "image/png".into())
            .await
            .unwrap();
        // A retry waits for its time; giving up removes it from the queue for good.
        let later = Utc::now() + Duration::hours(1);
        store.attachment_fetch_failed(due[1].id, "HTTP 500".into(), Some(later)).await.unwrap();
        store.attachment_fetch_failed(due[2].id, "HTTP 404".into(), None).await.unwrap();
        assert!(
            store.attachments_unfetched(vec![Channel::Whatsapp], 3, 10).await.unwrap().is_empty()
        );
        store
            .attachment_fetch_failed(
                due[1].id,
                "HTTP 500".into(),
                Some(Utc::now() - Duration::seconds(1)),
            )
            .await
            .unwrap();
        let again = store.attachments_unfetched(vec![Channel::Whatsapp], 3, 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].provider_ref.as_str(), again[0].attempts), ("222", 2));
        assert!(
            store.attachments_unfetched(vec![Channel::Whatsapp], 2, 10).await.unwrap().is_empty()
        );
        let code = store
            .tickets(&TicketFilter { limit: 10, ..TicketFilter::default() })
            .await
            .unwrap()
            .items[0]
            .code;
        let view = store.ticket(code).await.unwrap().unwrap();
        let a = &view.messages[0].attachments[0];
        assert_eq!((a.sha256.len(), a.size, a.content_type.as_str()), (64, 1234, "image/png"));
    }
}

#[tokio::test]
async fn an_edit_is_a_revision_on_the_originals_ticket_and_reopens_nothing() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let first =
            store.ingest(msg(Channel::Telegram, "42:5", tg("42"), "Lampu mati")).await.unwrap();
        let code = first.ticket.unwrap();
        store.set_status(code, Status::Resolved, op(), Some("sudah".into())).await.unwrap();
        let mut edit = msg(Channel::Telegram, "42:5@1700000100", tg("42"), "Lampu jalan mati");
        edit.thread.revision_of = Some("42:5".into());
        let out = store.ingest(edit).await.unwrap();
        assert_eq!((out.ticket, out.ticket_created, out.reopened), (Some(code), false, false));
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.status, Status::Resolved, "an edit is not a new message");
        let inbound: Vec<_> =
            view.messages.iter().filter(|m| m.direction == Direction::In).collect();
        assert_eq!(inbound.len(), 2);
        assert_eq!(inbound[1].revision_of, Some(first.message_id));
        assert_eq!(inbound[0].revision_of, None);
        let receipts = view.messages.iter().filter(|m| m.purpose == Some(Purpose::Ack)).count();
        assert_eq!(receipts, 1, "an edit is not acknowledged");

        // An edit of a message we never stored is an ordinary message.
        let mut stray = msg(Channel::Telegram, "43:9@1700000100", tg("43"), "Sampah menumpuk");
        stray.thread.revision_of = Some("43:9".into());
        let out = store.ingest(stray).await.unwrap();
        assert!(out.ticket_created);
    }
}

#[tokio::test]
async fn attachments_at_the_provider_are_offered_until_fetched_or_given_up() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let at_provider = |file_id: &str| AttachmentRef {
            filename: None,
            content_type: "image/jpeg".into(),
            size: 0,
            sha256: String::new(),
            provider_ref: Some(file_id.into()),
        };
        let mut m = msg(Channel::Telegram, "42:7", tg("42"), "Foto jalan");
        m.attachments = vec![at_provider("file-a"), at_provider("file-b")];
        let code = store.ingest(m).await.unwrap().ticket.unwrap();
        let mut other = msg(Channel::Whatsapp, "wamid.1", None, "foto");
        other.attachments = vec![at_provider("media-1")];
        store.ingest(other).await.unwrap();

        let pending = store.attachments_unfetched(vec![Channel::Telegram], 8, 10).await.unwrap();
        let refs: Vec<_> = pending.iter().map(|p| p.provider_ref.as_str()).collect();
        assert_eq!(refs, ["file-a", "file-b"], "only the channel's own, oldest first");
        let (ab, ct) = ("ab".repeat(32), pending[0].content_type.clone());
        store.attachment_fetched(pending[0].id, ab, 1234, ct).await.unwrap();
        store.attachment_fetch_failed(pending[1].id, "file is too big".into(), None).await.unwrap();
        assert!(
            store.attachments_unfetched(vec![Channel::Telegram], 8, 10).await.unwrap().is_empty()
        );

        let view = store.ticket(code).await.unwrap().unwrap();
        let a = &view.messages[0].attachments;
        assert_eq!((a[0].sha256.as_str(), a[0].size), ("ab".repeat(32).as_str(), 1234));
        assert_eq!((a[1].sha256.as_str(), a[1].provider_ref.as_deref()), ("", Some("file-b")));
    }
}

#[tokio::test]
async fn a_relayed_answer_is_queued_to_the_resident_once() {
    for (store, _g) in stores(no_receipts()).await {
        let code = store
            .ingest(msg(Channel::Email, "m1@warga", email("siti@example.id"), "Sampah menumpuk"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        store.assign(code, "DLH".into(), op(), None).await.unwrap();
        let official = Actor::User("kepala.dlh@example.go.id".into());
        let first = store
            .relay_reply(code, "Sudah diangkut.".into(), official.clone(), "email:r1@dlh".into())
            .await
            .unwrap()
            .expect("first relay");
        assert_eq!((first.channel, first.delivery), (Some(Channel::Email), OutboxState::Pending));
        // The same mail read again relays nothing.
        let again = store
            .relay_reply(code, "Sudah diangkut.".into(), official.clone(), "email:r1@dlh".into())
            .await
            .unwrap();
        assert_eq!(again, None);
        let view = store.ticket(code).await.unwrap().unwrap();
        assert!(view.summary.first_responded_at.is_some());
        let out: Vec<_> = view.messages.iter().filter(|m| m.direction == Direction::Out).collect();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].author.as_deref(), Some("user:kepala.dlh@example.go.id"));
        let items = store.outbox_claim(vec![Channel::Email], 10, Duration::seconds(60)).await;
        let items = items.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].recipient, Identity::email("siti@example.id").unwrap());
        // An unknown ticket is an error and relays nothing.
        let unknown = TicketCode::from_entropy([9; 5]);
        assert!(matches!(
            store.relay_reply(unknown, "x".into(), official, "email:r2@dlh".into()).await,
            Err(StoreError::TicketNotFound(_))
        ));
    }
}

#[tokio::test]
async fn tickets_are_found_by_the_ids_of_their_messages() {
    for (store, _g) in stores(no_receipts()).await {
        let a = store
            .ingest(msg(Channel::Email, "a@x", email("a@example.id"), "satu"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        let b = store
            .ingest(msg(Channel::Email, "b@x", email("b@example.id"), "dua"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        let find = |ids: &[&str]| {
            let store = store.clone();
            let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
            async move { store.ticket_of_message(Channel::Email, ids).await.unwrap() }
        };
        assert_eq!(find(&["nope@x", "b@x", "a@x"]).await, Some(b));
        assert_eq!(find(&["nope@x"]).await, None);
        // Another channel's ids don't count.
        assert_eq!(store.ticket_of_message(Channel::Sms, vec!["a@x".into()]).await.unwrap(), None);
        // A merged ticket's messages lead to the ticket it was merged into.
        store.merge(a, b, op()).await.unwrap();
        assert_eq!(find(&["a@x"]).await, Some(b));
    }
}

#[tokio::test]
async fn a_bounce_marks_the_delivery_dead() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code = store
            .ingest(msg(Channel::Email, "m1@warga", email("siti@example.id"), "Lampu mati"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        let lease = Duration::seconds(60);
        let ack = store.outbox_claim(vec![Channel::Email], 10, lease).await.unwrap();
        assert_eq!(ack.len(), 1);
        assert_eq!(ack[0].purpose, Purpose::Ack);
        store.outbox_sent(ack[0].id, Some("aduan.x.1@aduan.test".into())).await.unwrap();
        // Inbound ids and unknown ids change nothing.
        let none = store
            .outbox_bounced(Channel::Email, vec!["m1@warga".into(), "zz@q".into()], "550".into())
            .await
            .unwrap();
        assert!(none.is_empty());
        let codes = store
            .outbox_bounced(Channel::Email, vec!["aduan.x.1@aduan.test".into()], "bounced".into())
            .await
            .unwrap();
        assert_eq!(codes, vec![code]);
        let view = store.ticket(code).await.unwrap().unwrap();
        let out = view.messages.iter().find(|m| m.direction == Direction::Out).unwrap();
        assert_eq!(out.delivery, Some(OutboxState::Dead));
        assert_eq!(
            store.outbox_counts().await.unwrap(),
            vec![(Channel::Email, OutboxState::Dead, 1)]
        );
    }
}

#[tokio::test]
async fn sessions_live_until_expiry_logout_or_disabling_and_are_audited() {
    use aduan_store::{NewUser, Role};
    for (store, _g) in stores(StoreOptions::default()).await {
        let admin = Actor::User("admin@banyumaskab.go.id".into());
        let new = NewUser {
            email: "Op@Banyumaskab.go.id".into(),
            name: Some("Op".into()),
            role: Role::Operator,
            opd: None,
            password_hash: "$argon2id$v=19$x".into(),
        };
        let id = store.add_user_by(new, admin.clone()).await.unwrap();
        let (user, hash) = store.user_for_login(" OP@banyumaskab.go.id ").await.unwrap().unwrap();
        assert_eq!((user.id, user.role, hash.as_str()), (id, Role::Operator, "$argon2id$v=19$x"));
        assert_eq!(store.user_for_login("nobody@x.id").await.unwrap(), None);

        store
            .create_session("h-live".into(), id, "csrf1".into(), Duration::hours(1))
            .await
            .unwrap();
        store
            .create_session("h-old".into(), id, "csrf2".into(), Duration::hours(-1))
            .await
            .unwrap();
        let s = store.session("h-live").await.unwrap().unwrap();
        assert_eq!(
            (s.user.email.as_str(), s.csrf_token.as_str()),
            ("op@banyumaskab.go.id", "csrf1")
        );
        assert_eq!(store.session("h-old").await.unwrap(), None, "expired");
        assert_eq!(store.session("nope").await.unwrap(), None);

        assert!(store.delete_session("h-live".into()).await.unwrap());
        assert!(!store.delete_session("h-live".into()).await.unwrap());
        assert_eq!(store.session("h-live").await.unwrap(), None);

        store.create_session("h-2".into(), id, "c".into(), Duration::hours(1)).await.unwrap();
        store.set_user_disabled(id, true, admin.clone()).await.unwrap();
        assert_eq!(store.session("h-2").await.unwrap(), None, "disabling ends sessions");
        assert!(matches!(
            store.create_session("h-3".into(), id, "c".into(), Duration::hours(1)).await,
            Err(StoreError::Invalid(_))
        ));
        store.set_user_disabled(id, false, admin.clone()).await.unwrap();
        assert_eq!(store.users().await.unwrap().len(), 1);

        let log = store.audit_log(50).await.unwrap();
        let actions: Vec<(String, String)> =
            log.iter().map(|e| (e.actor.to_string(), e.action.clone())).collect();
        let op = "user:op@banyumaskab.go.id".to_string();
        let ad = "user:admin@banyumaskab.go.id".to_string();
        assert_eq!(
            actions,
            vec![
                (ad.clone(), "user_enabled".into()),
                (ad.clone(), "user_disabled".into()),
                (op.clone(), "login".into()),
                (op.clone(), "logout".into()),
                (op.clone(), "login".into()),
                (op.clone(), "login".into()),
                (ad, "user_added".into()),
            ]
        );
    }
}

#[tokio::test]
async fn stats_count_by_group_with_deadline_compliance() {
    use aduan_store::{StatsGroup, StatsQuery};
    let opts = StoreOptions {
        sla: SlaPolicy { first_response: Duration::hours(-1), ..SlaPolicy::default() },
        ..StoreOptions::default()
    };
    for (store, _g) in stores(opts.clone()).await {
        let mut codes = Vec::new();
        for i in 0..4 {
            let ch = if i < 3 { Channel::Web } else { Channel::Sms };
            codes.push(
                store.ingest(msg(ch, &format!("s{i}"), None, "x")).await.unwrap().ticket.unwrap(),
            );
        }
        store.assign(codes[0], "DPU".into(), op(), None).await.unwrap();
        store.assign(codes[1], "DPU".into(), op(), None).await.unwrap();
        // Answered after the deadline (it was an hour before creation).
        store.reply(codes[0], "ok".into(), op()).await.unwrap();
        store.set_status(codes[0], Status::Resolved, op(), None).await.unwrap();
        assert!(store.set_category_if_unset(codes[1], "jalan".into()).await.unwrap());
        assert!(!store.set_category_if_unset(codes[1], "lain".into()).await.unwrap());

        let q = |group_by| StatsQuery { from: None, to: None, group_by, offset_secs: 7 * 3600 };
        let by_opd = store.stats(q(StatsGroup::Opd)).await.unwrap();
        let summary: Vec<_> = by_opd
            .iter()
            .map(|r| (r.key.clone(), r.total, r.open, r.resolved, r.overdue, r.responded_late))
            .collect();
        assert_eq!(summary, vec![(None, 2, 2, 0, 2, 2), (Some("DPU".into()), 2, 1, 1, 1, 2)]);
        assert_eq!(by_opd[1].compliance, Some(0.0));
        let by_channel = store.stats(q(StatsGroup::Channel)).await.unwrap();
        let keys: Vec<_> = by_channel.iter().map(|r| (r.key.clone(), r.total)).collect();
        assert_eq!(keys, vec![(Some("sms".into()), 1), (Some("web".into()), 3)]);
        let by_kec = store.stats(q(StatsGroup::Kecamatan)).await.unwrap();
        assert_eq!(
            by_kec.iter().map(|r| (r.key.clone(), r.total)).collect::<Vec<_>>(),
            vec![(None, 4)]
        );
        let by_cat = store.stats(q(StatsGroup::Category)).await.unwrap();
        assert_eq!(by_cat.iter().map(|r| r.total).sum::<i64>(), 4);
        let today = (Utc::now() + Duration::hours(7)).format("%Y-%m-%d").to_string();
        let by_day = store.stats(q(StatsGroup::Day)).await.unwrap();
        assert_eq!(
            by_day.iter().map(|r| (r.key.clone(), r.total)).collect::<Vec<_>>(),
            vec![(Some(today.clone()), 4)]
        );
        let future =
            StatsQuery { from: Some(Utc::now() + Duration::hours(1)), ..q(StatsGroup::Opd) };
        assert!(store.stats(future).await.unwrap().is_empty());
        let per_day =
            store.per_day_by_channel(Utc::now() - Duration::days(1), 7 * 3600).await.unwrap();
        assert_eq!(
            per_day.iter().map(|d| (d.day.clone(), d.channel, d.count)).collect::<Vec<_>>(),
            vec![(today.clone(), Channel::Sms, 1), (today, Channel::Web, 3)]
        );
        let by_cat_filter =
            TicketFilter { category: Some("jalan".into()), limit: 10, ..Default::default() };
        let listed = store.tickets(&by_cat_filter).await.unwrap();
        assert_eq!(listed.items.iter().map(|t| t.code).collect::<Vec<_>>(), vec![codes[1]]);
    }
}

#[tokio::test]
async fn an_identity_request_goes_out_and_waits_for_the_resident() {
    for (store, _g) in stores(no_receipts()).await {
        let code = store.ingest(msg(Channel::Telegram, "i1", tg("77"), "x")).await.unwrap();
        let code = code.ticket.unwrap();
        let r = store.request_identity(code, "Siapa nama Anda?".into(), op()).await.unwrap();
        assert_eq!(r.channel, Some(Channel::Telegram));
        let v = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(v.summary.status, Status::AwaitingIdentity);
        let out = v.messages.iter().find(|m| m.direction == Direction::Out).unwrap();
        assert_eq!(out.purpose, Some(Purpose::IdentityRequest));
        assert!(v.summary.first_responded_at.is_some());
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        assert!(matches!(
            store.request_identity(code, "lagi".into(), op()).await,
            Err(StoreError::Transition(_))
        ));
    }
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    use std::time::Duration;
    for (store, _g) in stores(StoreOptions::default()).await {
        let long = Duration::from_secs(30);
        assert!(store.lease_acquire("email:inbox", "a", long).await.unwrap());
        assert!(!store.lease_acquire("email:inbox", "b", long).await.unwrap());
        // Renewal by the holder succeeds; other names are independent.
        assert!(store.lease_acquire("email:inbox", "a", long).await.unwrap());
        assert!(store.lease_acquire("telegram:polling", "b", long).await.unwrap());
        assert_eq!(store.lease_holder("email:inbox").await.unwrap().as_deref(), Some("a"));

        // Someone else's release changes nothing; the holder's frees it at once.
        store.lease_release("email:inbox", "b").await.unwrap();
        assert!(!store.lease_acquire("email:inbox", "b", long).await.unwrap());
        store.lease_release("email:inbox", "a").await.unwrap();
        assert_eq!(store.lease_holder("email:inbox").await.unwrap(), None);
        assert!(store.lease_acquire("email:inbox", "b", long).await.unwrap());

        // A holder that stops renewing loses the lease once it expires.
        assert!(store.lease_acquire("imap:x", "dead", Duration::from_millis(50)).await.unwrap());
        assert!(!store.lease_acquire("imap:x", "c", long).await.unwrap());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(store.lease_holder("imap:x").await.unwrap(), None);
        assert!(store.lease_acquire("imap:x", "c", long).await.unwrap());
        assert!(!store.lease_acquire("imap:x", "dead", long).await.unwrap());
    }
}

#[tokio::test]
async fn racing_instances_get_one_lease() {
    use std::time::Duration;
    for (store, _g) in stores(StoreOptions::default()).await {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .lease_acquire("race", &format!("i{i}"), Duration::from_secs(30))
                    .await
                    .unwrap()
            });
        }
        let won = tasks.join_all().await.into_iter().filter(|w| *w).count();
        assert_eq!(won, 1);
    }
}

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

// ---- A ticket code is not a key (issue 14.2) -------------------------------------------

fn phone(p: &str) -> Option<Identity> {
    Some(Identity::phone(p).unwrap())
}

fn inbound(view: &aduan_store::TicketView) -> usize {
    view.messages.iter().filter(|m| m.direction == Direction::In).count()
}

#[tokio::test]
async fn a_stranger_quoting_a_code_gets_their_own_ticket() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code = store
            .ingest(msg(Channel::Sms, "s1", phone("081200000001"), "Air PDAM mati"))
            .await
            .unwrap()
            .ticket
            .unwrap();
        store.assign(code, "PDAM".into(), op(), None).await.unwrap();
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        // On SMS, X and the intake API's `ticket` field alike: no join, no reopening.
        let sms = msg(Channel::Sms, "s2", phone("081299999999"), &format!("{code} masih mati"));
        let x = msg(
            Channel::X,
            "x1",
            Some(Identity::new(IdentityKind::XUser, "666").unwrap()),
            &format!("{code} bohong"),
        );
        let mut api = msg(
            Channel::Web,
            "k:1",
            Some(Identity::new(IdentityKind::AppUser, "k:u-9").unwrap()),
            "tambahan",
        );
        api.thread.ticket = Some(code);
        for m in [sms, x, api] {
            let r = store.ingest(m).await.unwrap();
            assert!(r.ticket_created && !r.reopened, "{} {r:?}", store.backend_name());
            assert_ne!(r.ticket, Some(code));
        }
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.status, Status::Resolved);
        assert_eq!(inbound(&view), 1);
        // The reporter quoting it still joins and reopens.
        let own = msg(Channel::Sms, "s3", phone("+6281200000001"), &format!("{code} masih mati"));
        let r = store.ingest(own).await.unwrap();
        assert_eq!((r.ticket, r.reopened), (Some(code), true));
    }
}

#[tokio::test]
async fn a_strangers_status_question_is_answered_without_joining() {
    for (store, _g) in stores(no_receipts()).await {
        let mut first = msg(Channel::Sms, "s1", phone("081200000001"), "Lampu jalan mati");
        first.sender.display_name = Some("Siti Aminah".into());
        let code = store.ingest(first).await.unwrap().ticket.unwrap();
        let asked = msg(Channel::Sms, "s2", phone("081299999999"), &format!("CEK {code}"));
        let r = store.ingest(asked).await.unwrap();
        assert!(!r.ticket_created && r.ticket.is_none(), "{r:?}");
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(inbound(&view), 1, "the question joined the ticket");
        let items =
            store.outbox_claim(Channel::ALL.to_vec(), 10, Duration::seconds(60)).await.unwrap();
        assert_eq!(items.len(), 1, "{items:?}");
        let answer = &items[0];
        assert_eq!(answer.purpose, Purpose::Status);
        assert_eq!(answer.recipient, Identity::phone("081299999999").unwrap());
        assert!(answer.text.contains(&code.to_string()), "{}", answer.text);
        for private in ["Siti", "Aminah", "081200000001", "6281200000001"] {
            assert!(!answer.text.contains(private), "{}", answer.text);
        }
    }
}

#[tokio::test]
async fn a_stranger_cannot_answer_the_identity_request() {
    for (store, _g) in stores(no_receipts()).await {
        let code = store.ingest(msg(Channel::Telegram, "i1", tg("77"), "Jalan rusak")).await;
        let code = code.unwrap().ticket.unwrap();
        store.request_identity(code, "Siapa nama Anda?".into(), op()).await.unwrap();
        // Nothing else waits for the router.
        let now = Utc::now();
        while !store.route_claim(10, Duration::seconds(60), now).await.unwrap().is_empty() {}
        let fake = format!("{code} Nama: Budi Palsu. Alamat: Jl. Palsu 1");
        let r = store.ingest(msg(Channel::Telegram, "i2", tg("66"), &fake)).await.unwrap();
        assert_ne!(r.ticket, Some(code));
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(inbound(&view), 1);
        assert_eq!(view.reporter.as_ref().and_then(|r| r.name.as_deref()), Some("Siti"));
        let jobs = store.route_claim(10, Duration::seconds(60), Utc::now()).await.unwrap();
        assert!(jobs.iter().all(|j| j.code != code), "the stranger's answer reached the router");
        // The reporter's own answer does.
        let own = msg(Channel::Telegram, "i3", tg("77"), "Nama: Siti. Alamat: Jl. Asli 2");
        assert_eq!(store.ingest(own).await.unwrap().ticket, Some(code));
        let jobs = store.route_claim(10, Duration::seconds(60), Utc::now()).await.unwrap();
        assert!(jobs.iter().any(|j| j.code == code));
    }
}

#[tokio::test]
async fn an_answer_goes_to_the_reporter_not_to_whoever_wrote_last() {
    for (store, _g) in stores(no_receipts()).await {
        let code = store.ingest(msg(Channel::Telegram, "t1", tg("42"), "Banjir")).await;
        let code = code.unwrap().ticket.unwrap();
        // A stranger writes quoting the code, and a stranger's auto-reply is recorded on it.
        store
            .ingest(msg(Channel::Telegram, "t2", tg("666"), &format!("{code} ini saya")))
            .await
            .unwrap();
        let mut auto = msg(Channel::Telegram, "t3", tg("667"), &format!("{code} otomatis"));
        auto.thread.automated = true;
        assert_eq!(store.ingest(auto).await.unwrap().ticket, Some(code));
        let replied = store.reply(code, "Segera ditangani.".into(), op()).await.unwrap();
        let items =
            store.outbox_claim(Channel::ALL.to_vec(), 10, Duration::seconds(60)).await.unwrap();
        let item = items.iter().find(|i| i.id == replied.outbox_id).unwrap();
        assert_eq!(item.recipient, tg("42").unwrap());
    }
}

// ---- Automatic messages are capped (issue 14.7) ----------------------------------------

#[tokio::test]
async fn automatic_messages_are_capped_per_recipient_and_per_hour() {
    let mut opts = StoreOptions {
        auto_limits: aduan_store::AutoLimits { per_recipient_per_day: 2, per_hour: 3 },
        ..StoreOptions::default()
    };
    opts.threading.default_window = Duration::zero();
    for (store, _g) in stores(opts.clone()).await {
        let mut codes = Vec::new();
        for (i, p) in
            ["081200000001", "081200000001", "081200000001", "081200000002"].into_iter().enumerate()
        {
            let m = msg(Channel::Sms, &format!("s{i}"), phone(p), "Jalan rusak");
            codes.push(store.ingest(m).await.unwrap().ticket.unwrap());
        }
        // The fifth receipt is over the hourly cap, whoever it is for.
        let m = msg(Channel::Sms, "s9", phone("081200000003"), "Jalan rusak");
        codes.push(store.ingest(m).await.unwrap().ticket.unwrap());
        // And a stranger's status questions are automatic messages too.
        let asked = msg(Channel::Sms, "q1", phone("081200000004"), &format!("CEK {}", codes[0]));
        store.ingest(asked).await.unwrap();

        let items =
            store.outbox_claim(Channel::ALL.to_vec(), 50, Duration::seconds(60)).await.unwrap();
        let to: Vec<String> = items.iter().map(|i| i.recipient.value.clone()).collect();
        assert_eq!(
            to,
            vec!["+6281200000001", "+6281200000001", "+6281200000002"],
            "{}",
            store.backend_name()
        );
        // The refused ones are kept on their tickets, published only, and counted.
        let third = store.ticket(codes[2]).await.unwrap().unwrap();
        let ack = third.messages.iter().find(|m| m.direction == Direction::Out).unwrap();
        assert_eq!(ack.delivery, Some(OutboxState::Published));
        assert_eq!(
            store.auto_refused_counts().await.unwrap(),
            vec![("hour".to_owned(), 2), ("recipient_day".to_owned(), 1)]
        );
        // A person's answer is never capped.
        let r = store.reply(codes[2], "Sudah kami teruskan.".into(), op()).await.unwrap();
        assert_eq!(r.delivery, OutboxState::Pending);
    }
}

// ---- One sanitiser at the store (issue 21.1) -------------------------------------------

#[tokio::test]
async fn nul_and_control_characters_are_cleaned_on_the_way_in() {
    for (store, _g) in stores(no_receipts()).await {
        let mut m = msg(Channel::Web, "k:a\u{0}1", phone("081200000001"), "a\u{0}b\r\nc\u{1b}");
        m.sender.display_name = Some("Bu\u{0}di".into());
        m.attachments.push(AttachmentRef {
            filename: Some("foto\u{0}.jpg".into()),
            content_type: "image/jpeg".into(),
            size: 3,
            sha256: "ab".repeat(32),
            provider_ref: None,
        });
        let r = store.ingest(m).await.unwrap();
        let code = r.ticket.unwrap();
        // A batch with a NUL in it is stored whole.
        let batch = vec![
            msg(Channel::Whatsapp, "w1", tg("5"), "satu\u{0}"),
            msg(Channel::Whatsapp, "w2", tg("6"), "dua"),
        ];
        assert_eq!(store.ingest_all(batch).await.unwrap().len(), 2);
        store.reply(code, "jawab\u{0}an".into(), op()).await.unwrap();
        store.assign(code, "DPU".into(), op(), Some("cat\u{0}atan".into())).await.unwrap();
        let v = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(v.messages[0].text, "ab\nc");
        assert_eq!(v.messages[0].attachments[0].filename.as_deref(), Some("foto.jpg"));
        assert_eq!(v.reporter.as_ref().and_then(|r| r.name.as_deref()), Some("Budi"));
        assert!(v.messages.iter().any(|m| m.text == "jawaban"));
        assert!(v.events.iter().any(|e| e.note.as_deref() == Some("catatan")));
        // The cleaned provider id still deduplicates.
        let again = msg(Channel::Web, "k:a\u{0}1", None, "lagi");
        assert!(store.ingest(again).await.unwrap().duplicate);
    }
}

/// Whether a store error is one the API answers with 409 (an illegal move or a conflict).
fn is_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(_) | StoreError::Transition(_))
}

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
            let a = store
                .ingest(msg(Channel::Web, &format!("mr-{i}-a"), None, "Sampah"))
                .await
                .unwrap()
                .ticket
                .unwrap();
            let b = store
                .ingest(msg(Channel::Web, &format!("mr-{i}-b"), None, "Sampah"))
                .await
                .unwrap()
                .ticket
                .unwrap();
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

// --- texts: resident-facing texts from `aduan_core::texts` ---

#[tokio::test]
async fn texts_an_sms_receipt_is_one_part_built_from_the_code_and_the_deadline() {
    use aduan_core::texts;
    let opts = StoreOptions::default();
    let hours = opts.sla.first_response.num_hours();
    for (store, _g) in stores(opts.clone()).await {
        let by_sms = msg(Channel::Sms, "r1", phone("081200000011"), "Lampu jalan mati");
        let sms_code = store.ingest(by_sms).await.unwrap().ticket.unwrap();
        let by_chat = msg(Channel::Telegram, "r2", tg("4242"), "Jalan berlubang");
        let chat_code = store.ingest(by_chat).await.unwrap().ticket.unwrap();
        let items =
            store.outbox_claim(Channel::ALL.to_vec(), 10, Duration::seconds(60)).await.unwrap();
        let ack = |code| items.iter().find(|i| i.ticket == code && i.purpose == Purpose::Ack);
        // The default template takes two SMS; the SMS receipt is written from the data, and
        // the thread shows what the resident got.
        assert_eq!(ack(sms_code).unwrap().text, texts::sms_receipt(sms_code, Some(hours)));
        let template = opts.ack_template.as_deref().unwrap();
        assert_eq!(ack(chat_code).unwrap().text, texts::receipt(template, chat_code, hours));
    }
}

#[tokio::test]
async fn texts_the_status_answer_is_one_text_on_every_channel() {
    let mut opts = no_receipts();
    opts.opd_names.insert("DPU".into(), "Dinas Pekerjaan Umum".into());
    for (store, _g) in stores(opts.clone()).await {
        let absorbed = msg(Channel::Sms, "m1", phone("081200000021"), "Got mampet");
        let absorbed = store.ingest(absorbed).await.unwrap().ticket.unwrap();
        let live = msg(Channel::Web, "m2", None, "Got mampet di Pasar Wage");
        let live = store.ingest(live).await.unwrap().ticket.unwrap();
        store.assign(live, "DPU".into(), op(), None).await.unwrap();
        store.merge(absorbed, live, op()).await.unwrap();
        // A stranger asks by SMS about the absorbed code: the answer queued at intake is the
        // one the chat bot gets from `status_answer`.
        let asked = msg(Channel::Sms, "m3", phone("081299999921"), &format!("CEK {absorbed}"));
        store.ingest(asked).await.unwrap();
        let items =
            store.outbox_claim(Channel::ALL.to_vec(), 10, Duration::seconds(60)).await.unwrap();
        let answers: Vec<_> = items.iter().filter(|i| i.purpose == Purpose::Status).collect();
        assert_eq!(answers.len(), 1, "{items:?}");
        let text = &answers[0].text;
        assert_eq!(store.status_answer(absorbed).await.unwrap().as_ref(), Some(text));
        assert!(
            text.starts_with(&format!(
                "Aduan {absorbed} sudah digabung ke aduan {live}. Status aduan {live}: \
                 terdisposisi, ditangani oleh Dinas Pekerjaan Umum. Batas waktu tindak lanjut: "
            )),
            "{text}"
        );
        let unknown: TicketCode = "ADU-00000000".parse().unwrap();
        assert_eq!(store.status_answer(unknown).await.unwrap(), None);
    }
}
