//! Intake: dedup, threading, reopening, receipts, strangers, the sanitiser.

use aduan_core::{
    Actor, AttachmentRef, Channel, Direction, EventKind, Identity, IdentityKind, Location, Purpose,
    Status, TicketCode,
};
use aduan_store::{StoreOptions, TicketFilter};
use chrono::{Duration, Utc};

use crate::{
    docs_and_stale, email, fresh_pg_with, inbound, msg, no_receipts, op, phone, stores, tg,
    ticket_of,
};

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
        // Once resolved and confirmed (issue 17: until then the resident's next message is
        // read as their answer), a new message without the code is a new complaint.
        store.set_status(a.ticket.unwrap(), Status::Resolved, op(), None).await.unwrap();
        let e = store.ingest(msg(Channel::Telegram, "t5", tg("7"), "1")).await.unwrap();
        assert_eq!(e.ticket, a.ticket);
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
        let code = ticket_of(&store, msg(Channel::Sms, "s1", tg("1"), "Air PDAM mati")).await;
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
async fn a_resident_reopening_a_ticket_resolved_before_its_disposition_owes_it_again() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code = ticket_of(&store, msg(Channel::Sms, "r1", tg("7"), "Air PDAM mati")).await;
        store.assign(code, "PDAM".into(), op(), None).await.unwrap();
        // Resolved before the OPD's disposition mail went out: nothing is owed while resolved.
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        let owed = || async { store.undisposed(100, Utc::now()).await.unwrap() };
        assert!(owed().await.is_empty(), "{}", store.backend_name());
        let r = store
            .ingest(msg(Channel::Sms, "r2", tg("7"), &format!("{code} masih mati")))
            .await
            .unwrap();
        assert!(r.reopened);
        let list = owed().await;
        let owed: Vec<_> =
            list.iter().map(|t| (t.summary.code, t.summary.opd.as_deref())).collect();
        assert_eq!(owed, vec![(code, Some("PDAM"))], "{}", store.backend_name());
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

/// A 3-byte JPEG reference named `name`, its hash `byte` repeated.
fn jpeg(name: &str, byte: &str) -> AttachmentRef {
    AttachmentRef {
        filename: Some(name.into()),
        content_type: "image/jpeg".into(),
        size: 3,
        sha256: byte.repeat(32),
        provider_ref: None,
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
        m.attachments = vec![jpeg("foto.jpg", "ab")];
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
async fn tickets_are_found_by_the_ids_of_their_messages() {
    for (store, _g) in stores(no_receipts()).await {
        let a = ticket_of(&store, msg(Channel::Email, "a@x", email("a@example.id"), "satu")).await;
        let b = ticket_of(&store, msg(Channel::Email, "b@x", email("b@example.id"), "dua")).await;
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
async fn a_stranger_quoting_a_code_gets_their_own_ticket() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code =
            ticket_of(&store, msg(Channel::Sms, "s1", phone("081200000001"), "Air PDAM mati"))
                .await;
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

// Resident-facing texts come from `aduan_core::texts`.

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

// --- confirm: the resident's next message answers the confirmation ---

#[tokio::test]
async fn belum_reopens_to_the_same_opd_and_restarts_the_resolution_clock() {
    let mut opts = no_receipts();
    // A clock in hours, so that a restart a moment later is a later deadline.
    opts.sla.resolution = aduan_core::Budget::Hours(1);
    for (store, _g) in stores(opts.clone()).await {
        let code =
            ticket_of(&store, msg(Channel::Telegram, "t1", tg("42"), "Lampu jalan mati")).await;
        store.assign(code, "DPU".into(), op(), None).await.unwrap();
        let before = store.ticket(code).await.unwrap().unwrap().summary.resolution_due_at.unwrap();
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let r = store
            .ingest(msg(Channel::Telegram, "t2", tg("42"), "belum pak, lampunya masih mati"))
            .await
            .unwrap();
        assert_eq!(r.ticket, Some(code));
        assert!(!r.ticket_created && r.reopened);
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.status, Status::Assigned);
        assert_eq!(view.summary.opd.as_deref(), Some("DPU"));
        assert_eq!(view.summary.resolved_at, None);
        let after = view.summary.resolution_due_at.unwrap();
        let restarted = after - before;
        assert!(restarted >= Duration::milliseconds(50), "restarted: {before} → {after}");
        assert!(after - Utc::now() > Duration::minutes(59), "an hour from the answer: {after}");
        let last_in = view.messages.iter().rev().find(|m| m.direction == Direction::In).unwrap();
        assert_eq!(last_in.text, "belum pak, lampunya masih mati");
        let kinds: Vec<_> = view
            .events
            .iter()
            .rev()
            .take(2)
            .map(|e| (e.kind, e.to.clone(), e.actor.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (EventKind::StatusChanged, Some("assigned".into()), Actor::Resident),
                (EventKind::Confirmation, Some("not_fixed".into()), Actor::Resident),
            ]
        );
        // Resolved again, "1 5": closed with the rating.
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        let r = store.ingest(msg(Channel::Telegram, "t3", tg("42"), "1 5")).await.unwrap();
        assert_eq!(r.ticket, Some(code));
        assert!(!r.reopened);
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.status, Status::Closed);
        let ev = view.events.iter().rev().find(|e| e.kind == EventKind::Confirmation).unwrap();
        assert_eq!((ev.to.as_deref(), ev.note.as_deref()), (Some("fixed"), Some("rating 5")));
        // Answered: the next message is a new complaint again.
        let r = store.ingest(msg(Channel::Telegram, "t4", tg("42"), "Ada sampah")).await.unwrap();
        assert!(r.ticket_created);
    }
}

#[tokio::test]
async fn an_unclear_answer_stays_on_the_ticket_and_the_question_stays_pending() {
    for (store, _g) in stores(no_receipts()).await {
        let code = store.ingest(msg(Channel::Sms, "s1", phone("081234567890"), "x")).await.unwrap();
        let code = code.ticket.unwrap();
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        let text = "belum sempat cek tapi sudah beres kayaknya";
        let r = store.ingest(msg(Channel::Sms, "s2", phone("081234567890"), text)).await.unwrap();
        assert_eq!(r.ticket, Some(code));
        assert!(!r.ticket_created && !r.reopened);
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.status, Status::Resolved);
        let ev = view.events.iter().rev().find(|e| e.kind == EventKind::Confirmation).unwrap();
        assert_eq!(ev.to.as_deref(), Some("unclear"));
        // Still pending: "sdh" now closes it.
        store.ingest(msg(Channel::Sms, "s3", phone("081234567890"), "sdh")).await.unwrap();
        assert_eq!(store.ticket(code).await.unwrap().unwrap().summary.status, Status::Closed);
    }
}

#[tokio::test]
async fn a_status_question_or_another_channel_does_not_answer_the_confirmation() {
    for (store, _g) in stores(no_receipts()).await {
        let code = ticket_of(&store, msg(Channel::Telegram, "t1", tg("42"), "x")).await;
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        let cek = format!("CEK {code}");
        store.ingest(msg(Channel::Telegram, "t2", tg("42"), &cek)).await.unwrap();
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.status, Status::Resolved);
        assert!(!view.events.iter().any(|e| e.to.as_deref() == Some("unclear")));
        // An automated message is not an answer.
        let mut auto = msg(Channel::Telegram, "t3", tg("42"), "2");
        auto.thread.automated = true;
        store.ingest(auto).await.unwrap();
        assert_eq!(store.ticket(code).await.unwrap().unwrap().summary.status, Status::Resolved);
    }
}

// --- intake: PostgreSQL group commit ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_racing_on_one_database_store_nothing_twice() {
    // Two stores on one PostgreSQL database (two aduan instances, each with its own group
    // writer) receive the same provider messages and the same senders at once: every
    // provider message is stored once, and every sender ends with one ticket.
    let Some(url) = aduan_store::testing::fresh_pg_url().await else { return };
    let opts = StoreOptions { max_connections: 8, ..no_receipts() };
    let a = aduan_store::Store::open(&url, opts.clone()).await.unwrap();
    a.migrate().await.unwrap();
    let b = aduan_store::Store::open(&url, opts).await.unwrap();
    const SENDERS: usize = 40;
    const EACH: usize = 5;
    let mut tasks = Vec::new();
    for round in 0..EACH {
        for s in 0..SENDERS {
            // Every message goes to both instances; the senders' messages interleave.
            for store in [&a, &b] {
                let store = store.clone();
                let m = msg(
                    Channel::Telegram,
                    &format!("race-{s}-{round}"),
                    tg(&format!("9{s:03}")),
                    "Sampah menumpuk di pasar",
                );
                tasks.push(tokio::spawn(async move { store.ingest(m).await }));
            }
        }
    }
    let mut stored = std::collections::HashMap::new();
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        if !r.duplicate {
            *stored.entry(r.message_id).or_insert(0) += 1;
        }
    }
    assert_eq!(stored.len(), SENDERS * EACH, "every provider message stored exactly once");
    assert!(stored.values().all(|&n| n == 1));
    let page = a.tickets(&TicketFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert!(page.next_cursor.is_none());
    let tickets: std::collections::HashSet<_> = page.items.iter().map(|t| t.code).collect();
    assert_eq!(tickets.len(), SENDERS, "one ticket per sender");
    for code in tickets {
        let view = a.ticket(code).await.unwrap().unwrap();
        assert_eq!(inbound(&view), EACH, "{code}");
    }
    a.close().await;
    b.close().await;
}

// --- pgintake: a group sharing a message with another writer ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_sharing_a_message_with_another_writer_stores_it_once_and_answers_both() {
    // Instance A stores provider batches (one group: its own message and a shared one, from
    // new senders with contacts); instance B gets the shared message alone at the same time.
    // The shared message is stored once, and both callers get its message id and ticket.
    let Some(url) = aduan_store::testing::fresh_pg_url().await else { return };
    let opts = StoreOptions { max_connections: 8, ..no_receipts() };
    let a = aduan_store::Store::open(&url, opts.clone()).await.unwrap();
    a.migrate().await.unwrap();
    let b = aduan_store::Store::open(&url, opts).await.unwrap();
    const N: usize = 60;
    let sender = |n: usize| {
        let mut m = msg(Channel::Whatsapp, "", None, "Lampu jalan mati");
        m.sender.identity =
            Some(Identity::new(IdentityKind::Whatsapp, &format!("62857{n:08}")).unwrap());
        m.sender.contacts = vec![Identity::email(&format!("warga{n}@example.id")).unwrap()];
        m
    };
    let mut tasks = Vec::new();
    for n in 0..N {
        let (a, b) = (a.clone(), b.clone());
        let mut own = sender(2 * n);
        own.provider_id = format!("own-{n}");
        let mut shared = sender(2 * n + 1);
        shared.provider_id = format!("shared-{n}");
        let again = shared.clone();
        tasks.push(tokio::spawn(async move {
            let (batch, alone) = tokio::join!(a.ingest_all(vec![own, shared]), b.ingest(again));
            (batch.unwrap(), alone.unwrap())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (batch, alone) = t.await.unwrap();
        let (own, shared) = (&batch[0], &batch[1]);
        assert!(!own.duplicate && own.ticket_created);
        assert!(shared.duplicate != alone.duplicate, "stored once: {shared:?} {alone:?}");
        assert_eq!(shared.message_id, alone.message_id, "both callers get the stored message");
        assert_eq!(shared.ticket, alone.ticket);
        assert!(shared.ticket.is_some());
        assert!(ids.insert(own.message_id) && ids.insert(shared.message_id));
    }
    let page = a.tickets(&TicketFilter { limit: 500, ..Default::default() }).await.unwrap();
    assert_eq!(page.items.len(), 2 * N, "one ticket per sender");
    // Every sender's contact went with its reporter (one statement for all their rows).
    for t in &page.items {
        let view = a.ticket(t.code).await.unwrap().unwrap();
        assert_eq!(inbound(&view), 1);
        let ids = &view.reporter.as_ref().unwrap().identities;
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids.iter().any(|i| i.kind == IdentityKind::Email));
    }
    a.close().await;
    b.close().await;
}

// --- pgintake: a new sender in one statement, the first search document (issue 22 item 4) ---

/// A new sender's message that names no ticket (on PostgreSQL one statement writes the
/// reporter, its identities, the ticket and the message): the same rows as any other path.
/// The contact someone else owns stays theirs; an automated first message, a message quoting
/// a code and a second message of the sender still thread as before.
#[tokio::test]
async fn a_new_senders_message_stores_reporter_contacts_and_ticket() {
    for (store, _g) in stores(no_receipts()).await {
        let name = store.backend_name();
        let owner = msg(Channel::Email, "mail-0", email("darto@example.com"), "Banjir");
        let owner = store.ingest(owner).await.unwrap().ticket.unwrap();

        let mut m = msg(Channel::Telegram, "tg:1", tg("77"), "Lampu jalan mati di Desa Kober");
        m.sender.display_name = Some("Pak Darto".into());
        m.sender.contacts =
            vec![email("darto@example.com").unwrap(), email("darto2@example.com").unwrap()];
        let first = store.ingest(m).await.unwrap();
        assert!(first.ticket_created && !first.duplicate, "{name}");
        let view = store.ticket(first.ticket.unwrap()).await.unwrap().unwrap();
        assert_eq!(inbound(&view), 1, "{name}");
        assert_eq!(view.messages[0].text, "Lampu jalan mati di Desa Kober", "{name}");
        let reporter = view.reporter.as_ref().unwrap();
        assert_eq!(reporter.name.as_deref(), Some("Pak Darto"), "{name}");
        let mut values: Vec<_> = reporter.identities.iter().map(|i| i.value.clone()).collect();
        values.sort();
        assert_eq!(values, ["77", "darto2@example.com"], "{name}");
        let owned = store.ticket(owner).await.unwrap().unwrap().reporter.unwrap().identities;
        assert!(owned.iter().any(|i| i.value == "darto@example.com"), "{name}");

        // The sender's next message joins the ticket; a repeat is a duplicate.
        let mut again = msg(Channel::Telegram, "tg:2", tg("77"), "Sudah tiga hari");
        again.sender.display_name = Some("Pak Darto".into());
        let joined = store.ingest(again.clone()).await.unwrap();
        assert_eq!((joined.ticket, joined.ticket_created), (first.ticket, false), "{name}");
        assert!(store.ingest(again).await.unwrap().duplicate, "{name}");

        // A new sender quoting a code, and a new sender's automated first message.
        let code = first.ticket.unwrap();
        let quoting = msg(Channel::Telegram, "tg:3", tg("78"), &format!("Soal {code}: mati"));
        let quoted = store.ingest(quoting).await.unwrap();
        assert!(!quoted.duplicate && quoted.ticket.is_some(), "{name}");
        let mut auto = msg(Channel::Email, "mail-1", email("robot@example.com"), "Auto reply");
        auto.thread.automated = true;
        let robot = store.ingest(auto).await.unwrap();
        assert!(!robot.duplicate, "{name}");
        let stored = store.ticket_of_message(Channel::Email, vec!["mail-1".into()]).await.unwrap();
        assert_eq!(stored, robot.ticket, "{name}");
    }
}

/// PostgreSQL: a new sender's message that names no ticket is one read and ONE write
/// (`new_sender_ticket_pg`: the reporter, its identities, the ticket and the message), not a
/// write of the reporter and another of the ticket (counted, not timed).
#[tokio::test]
async fn a_new_senders_message_is_one_read_and_one_write_on_postgres() {
    let Some((store, _)) = fresh_pg_with(no_receipts()).await else { return };
    let statements = || aduan_store::testing::pg_statements(&store).unwrap();
    let mut m = msg(Channel::Telegram, "tg:1", tg("77"), "Lampu jalan mati di Desa Kober");
    m.sender.contacts = vec![email("darto@example.com").unwrap()];
    let before = statements();
    let stored = store.ingest(m).await.unwrap();
    assert_eq!(statements() - before, 2, "the read, then one write");
    assert!(stored.ticket_created);
    let view = store.ticket(stored.ticket.unwrap()).await.unwrap().unwrap();
    assert_eq!(inbound(&view), 1);
    assert_eq!(view.reporter.unwrap().identities.len(), 2, "the contact went with it");
    store.close().await;
}

/// PostgreSQL: the new senders of one group are checked and written in one statement
/// (`batch_insert` in `ops/intake.rs`), not a read and a write each; their tickets,
/// reporters and search documents are what one by one would make.
#[tokio::test]
async fn a_groups_new_senders_are_one_statement_on_postgres() {
    let Some((store, mut c)) = fresh_pg_with(no_receipts()).await else { return };
    let statements = || aduan_store::testing::pg_statements(&store).unwrap();
    let msgs: Vec<_> = (0..6)
        .map(|i| {
            let text = format!("Lampu jalan mati nomor {i}");
            msg(Channel::Telegram, &format!("g-{i}"), tg(&format!("61{i}")), &text)
        })
        .collect();
    let before = statements();
    let stored = store.ingest_all(msgs).await.unwrap();
    assert_eq!(statements() - before, 1, "one statement for the six");
    assert!(stored.iter().all(|s| s.ticket_created && !s.duplicate), "{stored:?}");
    let codes: std::collections::HashSet<_> = stored.iter().map(|s| s.ticket.unwrap()).collect();
    assert_eq!(codes.len(), 6);
    for (i, s) in stored.iter().enumerate() {
        let view = store.ticket(s.ticket.unwrap()).await.unwrap().unwrap();
        assert_eq!(view.messages.len(), 1);
        assert_eq!(view.messages[0].id, s.message_id);
        assert_eq!(view.messages[0].text, format!("Lampu jalan mati nomor {i}"));
        let reporter = view.reporter.unwrap();
        let ids: Vec<_> = reporter.identities.iter().map(|i| i.value.clone()).collect();
        assert_eq!(ids, vec![format!("61{i}")]);
    }
    assert_eq!(docs_and_stale(&mut c).await, (6, 0), "(documents, stale)");
    let found = store
        .tickets(&TicketFilter { q: Some("nomor 3".into()), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(
        found.items.iter().map(|t| t.code).collect::<Vec<_>>(),
        vec![stored[3].ticket.unwrap()]
    );
    store.close().await;
}

/// PostgreSQL: the rows the planner believes `messages` has (-1: never analysed) and whether
/// an ANALYZE other than autovacuum's ran after `since`.
async fn messages_statistics(
    c: &mut sqlx::PgConnection,
    since: chrono::DateTime<Utc>,
) -> (f32, bool) {
    sqlx::query_as(
        "SELECT (SELECT reltuples FROM pg_class WHERE relname = 'messages'), \
         COALESCE(last_analyze > $1, FALSE) FROM pg_stat_user_tables WHERE relname = 'messages'",
    )
    .bind(since)
    .fetch_one(c)
    .await
    .unwrap()
}

/// PostgreSQL: a young table that doubles is analysed within seconds (`keep_statistics`),
/// not after autovacuum's minute: the planner sees the rows intake wrote.
#[tokio::test]
async fn a_new_databases_messages_are_analysed_once_they_grow_on_postgres() {
    let Some((store, mut c)) = fresh_pg_with(no_receipts()).await else { return };
    let start = Utc::now();
    assert_eq!(messages_statistics(&mut c, start).await, (-1.0, false), "a new database");
    for batch in 0..12 {
        let msgs = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                msg(Channel::Telegram, &format!("s-{n}"), tg(&format!("8{n:04}")), "Jalan rusak")
            })
            .collect();
        store.ingest_all(msgs).await.unwrap();
    }
    let mut seen = (-1.0, false);
    for _ in 0..200 {
        seen = messages_statistics(&mut c, start).await;
        if seen.1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen.1 && seen.0 >= 1000.0, "messages analysed by the store: {seen:?}");
    store.close().await;
}

/// PostgreSQL: when a batched new ticket's random code is taken, that sender's message still
/// gets a ticket of its own (another code, one reporter, the message once) and the others of
/// the group are not held up. A test trigger gives the first new ticket after it is armed an
/// existing code, once.
#[tokio::test]
async fn a_taken_code_in_a_batch_still_gets_the_message_its_own_ticket_on_postgres() {
    let Some((store, mut c)) = fresh_pg_with(no_receipts()).await else { return };
    let taken = ticket_of(&store, msg(Channel::Telegram, "x-0", tg("900"), "Lampu mati")).await;
    let sql = format!(
        "CREATE TABLE collide_once (armed boolean); INSERT INTO collide_once VALUES (TRUE); \
         CREATE FUNCTION collide() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF EXISTS (SELECT 1 FROM collide_once WHERE armed) THEN \
             UPDATE collide_once SET armed = FALSE; NEW.code := '{taken}'; \
           END IF; RETURN NEW; END $$; \
         CREATE TRIGGER collide BEFORE INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION collide();"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
    let msgs: Vec<_> = (1..=4)
        .map(|i| msg(Channel::Telegram, &format!("x-{i}"), tg(&format!("90{i}")), "Jalan rusak"))
        .collect();
    let stored = store.ingest_all(msgs).await.unwrap();
    let armed: bool =
        sqlx::query_scalar("SELECT armed FROM collide_once").fetch_one(&mut c).await.unwrap();
    assert!(!armed, "the trigger made a code collide");
    assert!(stored.iter().all(|s| s.ticket_created && !s.duplicate), "{stored:?}");
    let codes: std::collections::HashSet<_> = stored.iter().map(|s| s.ticket.unwrap()).collect();
    assert_eq!(codes.len(), 4);
    assert!(!codes.contains(&taken));
    for s in &stored {
        let view = store.ticket(s.ticket.unwrap()).await.unwrap().unwrap();
        let ids: Vec<_> = view.messages.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![s.message_id]);
        assert_eq!(view.reporter.unwrap().identities.len(), 1);
    }
    let (reporters, messages): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM reporters), (SELECT count(*) FROM messages)")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!((reporters, messages), (5, 5), "one reporter and one message per sender");
    assert_eq!(inbound(&store.ticket(taken).await.unwrap().unwrap()), 1, "the old ticket");
    store.close().await;
}

/// A group mixing new senders (stored together on PostgreSQL), an SMS sender, a known
/// sender's follow-up and a redelivery stores each as it would alone: contacts, place,
/// photo and receipt of the new tickets, the follow-up on its ticket, the repeat a duplicate
/// (on PostgreSQL the last two are candidates of the batch that it finds not new).
#[tokio::test]
async fn a_group_stores_each_message_as_it_would_alone() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let known = msg(Channel::Telegram, "k-1", tg("700"), "Sampah menumpuk di pasar");
        let known_code = ticket_of(&store, known.clone()).await;
        let other = msg(Channel::Telegram, "k-9", tg("704"), "Drainase mampet");
        let other_code = ticket_of(&store, other.clone()).await;
        let mut a = msg(Channel::Telegram, "n-1", tg("701"), "Jalan berlubang");
        a.sender.contacts = vec![Identity::email("Warga@Example.id").unwrap()];
        a.location = Some(Location::new(-7.4246, 109.2396).unwrap());
        a.attachments = vec![jpeg("lubang.jpg", "cd")];
        let b = msg(Channel::Sms, "n-2", phone("081200000701"), "Lampu mati");
        let again = msg(Channel::Telegram, "k-2", tg("700"), "Masih menumpuk");
        let c = msg(Channel::Telegram, "n-3", tg("703"), "Got mampet");
        // `again` and the redelivery of `other` are each alone with their sender in the
        // group: stored together with the new senders' unless the store sees them known.
        let stored = store.ingest_all(vec![a, b, again, c, other]).await.unwrap();
        let created: Vec<bool> = stored.iter().map(|s| s.ticket_created).collect();
        assert_eq!(created, vec![true, true, false, true, false], "{stored:?}");
        assert_eq!(stored[2].ticket, Some(known_code));
        assert!(stored[4].duplicate && stored[4].ticket == Some(other_code));

        let view = store.ticket(stored[0].ticket.unwrap()).await.unwrap().unwrap();
        let ids: Vec<_> =
            view.reporter.unwrap().identities.iter().map(|i| (i.kind, i.value.clone())).collect();
        assert_eq!(
            ids,
            vec![
                (IdentityKind::Telegram, "701".to_owned()),
                (IdentityKind::Email, "warga@example.id".to_owned())
            ]
        );
        assert_eq!(view.summary.location, Some(Location { lat: -7.4246, lon: 109.2396 }));
        assert_eq!(view.messages[0].attachments[0].filename.as_deref(), Some("lubang.jpg"));
        assert_eq!(inbound(&store.ticket(known_code).await.unwrap().unwrap()), 2);

        // One receipt for each new ticket (the first message's included), none for the rest.
        let items =
            store.outbox_claim(Channel::ALL.to_vec(), 20, Duration::seconds(60)).await.unwrap();
        let mut acks: Vec<_> =
            items.iter().filter(|i| i.purpose == Purpose::Ack).map(|i| i.ticket).collect();
        acks.sort();
        let mut want = vec![
            known_code,
            other_code,
            stored[0].ticket.unwrap(),
            stored[1].ticket.unwrap(),
            stored[3].ticket.unwrap(),
        ];
        want.sort();
        assert_eq!(acks, want);
    }
}

/// PostgreSQL: a new ticket's search document is written by the message trigger directly
/// (migration 0031), without `aduan_search_refresh`/`aduan_search_doc` (which read the
/// ticket's messages back), and it equals the document built from scratch.
#[tokio::test]
async fn a_new_tickets_search_document_is_built_once_without_reading_it_back() {
    use sqlx::Connection;
    let Some(url) = aduan_store::testing::fresh_pg_url().await else { return };
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let db: String =
        sqlx::query_scalar("SELECT current_database()").fetch_one(&mut c).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE {db} SET track_functions = 'pl'")))
        .execute(&mut c)
        .await
        .unwrap();
    let store = aduan_store::Store::open(&url, no_receipts()).await.unwrap();
    store.migrate().await.unwrap();
    let mut codes = Vec::new();
    for i in 0..5 {
        let text = format!("Jalán rusak nomor {i}");
        let m = msg(Channel::Telegram, &format!("n-{i}"), tg(&format!("5{i}")), &text);
        codes.push(store.ingest(m).await.unwrap().ticket.unwrap());
    }
    // A follow-up appends; a new ticket of a known sender gets its document the same way.
    let mut more = msg(Channel::Telegram, "n-0b", tg("50"), "Masih rusak");
    more.thread.ticket = Some(codes[0]);
    store.ingest(more).await.unwrap();
    store.close().await;
    // The backends flush their function statistics when they exit.
    let mut calls = (0i64, 0i64, 0i64);
    for _ in 0..100 {
        calls = sqlx::query_as(
            "SELECT COALESCE(SUM(calls) FILTER (WHERE funcname = 'ticket_search_message_trg'), 0)::int8, \
             COALESCE(SUM(calls) FILTER (WHERE funcname = 'aduan_search_refresh'), 0)::int8, \
             COALESCE(SUM(calls) FILTER (WHERE funcname = 'aduan_search_doc'), 0)::int8 \
             FROM pg_stat_user_functions",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        if calls.0 >= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        c.close().await.unwrap();
        c = sqlx::PgConnection::connect(&url).await.unwrap();
    }
    assert_eq!(calls, (6, 0, 0), "(message trigger, refresh, doc) calls");
    let (docs, differ) = docs_and_stale(&mut c).await;
    assert_eq!((docs, differ), (5, 0));
}
