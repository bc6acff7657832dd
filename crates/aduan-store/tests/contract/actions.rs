//! Operators' actions: status, assignment, replies, identity requests, merges, category.

use aduan_core::{
    Actor, Channel, Direction, EventKind, Identity, IdentityKind, OutboxState, Purpose, Status,
    TicketCode, TransitionError,
};
use aduan_store::{StoreError, StoreOptions};
use chrono::Duration;

use crate::{email, inbound, msg, no_receipts, op, phone, stores, tg, ticket_of};

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
        let code = ticket_of(&store, msg(Channel::Telegram, "t1", tg("42"), "x")).await;
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

/// An answer that quotes an official's mail (its one-click links included) reaches the
/// resident, and shows on the ticket, without the links' tokens: a token acts in that
/// official's name. The answer is kept whole otherwise.
#[tokio::test]
async fn an_answer_never_carries_an_officials_action_link() {
    for (store, _g) in stores(no_receipts()).await {
        let code = ticket_of(&store, msg(Channel::Telegram, "t1", tg("42"), "x")).await;
        let token = "YTEKQURVLUFDQjRZSkdDCkRQVQp0ZXJpbWEK.h12CLdlm2vx4EhBtCsqiqg";
        let answer = format!(
            "Sudah kami tambal kemarin.\n\n> Tindak lanjut satu klik:\n> - Selesai: \
             https://aduan.example.id/aksi/{token}\n> Lihat: https://aduan.example.id/lacak/{code}"
        );
        store.reply(code, answer, op()).await.unwrap();
        let items =
            store.outbox_claim(vec![Channel::Telegram], 10, Duration::seconds(60)).await.unwrap();
        let sent = &items.iter().find(|i| i.purpose == Purpose::Reply).unwrap().text;
        assert!(!sent.contains(token), "{sent}");
        assert!(sent.contains("> - Selesai: https://aduan.example.id/aksi/…\n"), "{sent}");
        assert!(sent.starts_with("Sudah kami tambal kemarin."), "{sent}");
        assert!(sent.ends_with(&format!("/lacak/{code}")), "other links stay: {sent}");
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(&view.messages.last().unwrap().text, sent);
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
async fn merging_moves_the_thread_and_redirects_later_messages() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let a = ticket_of(&store, msg(Channel::Sms, "s1", tg("1"), "Jalan rusak Kemangkon")).await;
        let b = ticket_of(
            &store,
            msg(Channel::Email, "e1", email("b@example.id"), "Jalan rusak di Kemangkon"),
        )
        .await;
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
async fn a_relayed_answer_is_queued_to_the_resident_once() {
    for (store, _g) in stores(no_receipts()).await {
        let code = ticket_of(
            &store,
            msg(Channel::Email, "m1@warga", email("siti@example.id"), "Sampah menumpuk"),
        )
        .await;
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

#[tokio::test]
async fn setting_an_unset_category_is_an_event() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let m = msg(Channel::Web, "c1", None, "jalan rusak");
        let code = store.ingest(m).await.unwrap().ticket.unwrap();
        let before = store.ticket(code).await.unwrap().unwrap().events.len();
        assert!(store.set_category_if_unset(code, "jalan".into()).await.unwrap());
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.category.as_deref(), Some("jalan"));
        assert_eq!(view.events.len(), before + 1, "{}", store.backend_name());
        let e = view.events.last().unwrap();
        assert_eq!(
            (e.kind, e.actor.clone(), e.from.as_deref(), e.to.as_deref()),
            (EventKind::Categorized, Actor::System, None, Some("jalan"))
        );
        // A ticket that has a category keeps it, and nothing is recorded.
        assert!(!store.set_category_if_unset(code, "lain".into()).await.unwrap());
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.category.as_deref(), Some("jalan"));
        assert_eq!(view.events.len(), before + 1);
    }
}

// --- confirm: asking the resident when a ticket is resolved ---

/// The confirmation questions queued on a ticket, with their delivery.
fn confirm_requests(view: &aduan_store::TicketView) -> Vec<(Channel, Option<OutboxState>, String)> {
    view.messages
        .iter()
        .filter(|m| m.purpose == Some(Purpose::ConfirmRequest))
        .map(|m| (m.channel, m.delivery, m.text.clone()))
        .collect()
}

#[tokio::test]
async fn resolving_asks_the_resident_to_confirm_on_their_channel() {
    let opts =
        StoreOptions { public_url: Some("https://aduan.example.id".into()), ..no_receipts() };
    for (store, _g) in stores(opts.clone()).await {
        let code = ticket_of(&store, msg(Channel::Telegram, "t1", tg("42"), "x")).await;
        store.set_status(code, Status::InProgress, op(), None).await.unwrap();
        assert!(confirm_requests(&store.ticket(code).await.unwrap().unwrap()).is_empty());
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        let view = store.ticket(code).await.unwrap().unwrap();
        let asked = confirm_requests(&view);
        assert_eq!(asked.len(), 1, "{asked:?}");
        let (channel, delivery, text) = &asked[0];
        assert_eq!((*channel, *delivery), (Channel::Telegram, Some(OutboxState::Pending)));
        assert!(text.contains("Balas 1 jika sudah beres, 2 jika belum"), "{text}");
        let link = format!("https://aduan.example.id/lacak/{code}?k=");
        assert!(text.contains(&link), "{text}");
        // Whoever reads the ticket (an official included) never sees the key: only the
        // message sent to the resident carries it.
        assert!(text.ends_with("?k=…"), "{text}");
        let sent = store.outbox_claim(vec![Channel::Telegram], 10, Duration::seconds(30)).await;
        let sent = sent.unwrap().into_iter().find(|i| i.purpose == Purpose::ConfirmRequest);
        let sent = sent.unwrap().text;
        assert!(sent.contains(&link) && !sent.ends_with("?k=…"), "{sent}");
        // The key in the link opens the confirmation; the code alone or another key doesn't.
        let key = sent.split("?k=").nth(1).unwrap().trim();
        assert!(store.confirmation_pending(code, key).await.unwrap());
        assert!(!store.confirmation_pending(code, "").await.unwrap());
        assert!(!store.confirmation_pending(code, &code.to_string()).await.unwrap());
        let ev = view.events.iter().find(|e| e.kind == EventKind::Confirmation).unwrap();
        assert_eq!(ev.to.as_deref(), Some("asked"));
        // The question is an automatic message to a resident: never on the public answers.
        assert!(!Purpose::ConfirmRequest.is_internal() && Purpose::ConfirmRequest.is_auto_reply());
    }
}

#[tokio::test]
async fn no_confirmation_request_to_anonymous_reporters_or_machine_addresses() {
    for (store, _g) in stores(no_receipts()).await {
        // A web report without any contact: nobody to ask.
        let anon = store.ingest(msg(Channel::Web, "w1", None, "x")).await.unwrap().ticket.unwrap();
        store.set_status(anon, Status::Resolved, op(), None).await.unwrap();
        let view = store.ticket(anon).await.unwrap().unwrap();
        assert!(confirm_requests(&view).is_empty());
        assert!(view.messages.iter().all(|m| m.direction == Direction::In));
        // A phone typed into the web form: nobody verified it, so nobody is asked there.
        let typed = ticket_of(&store, msg(Channel::Web, "w2", phone("+6281234567891"), "x")).await;
        store.set_status(typed, Status::Resolved, op(), None).await.unwrap();
        assert!(confirm_requests(&store.ticket(typed).await.unwrap().unwrap()).is_empty());
        // A machine address: kept on the ticket, never sent.
        let robot =
            ticket_of(&store, msg(Channel::Email, "<r@x>", email("noreply@example.com"), "x"))
                .await;
        store.set_status(robot, Status::Resolved, op(), None).await.unwrap();
        let asked = confirm_requests(&store.ticket(robot).await.unwrap().unwrap());
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].1, Some(OutboxState::Published));
        let claimed =
            store.outbox_claim(vec![Channel::Email], 10, Duration::seconds(30)).await.unwrap();
        assert!(claimed.is_empty(), "{claimed:?}");
    }
}

#[tokio::test]
async fn the_resident_answers_on_their_link_and_a_stranger_with_the_code_cannot() {
    use aduan_core::confirm::{Confirmation, Verdict};
    for (store, _g) in stores(no_receipts()).await {
        let code = ticket_of(&store, msg(Channel::Telegram, "t1", tg("42"), "x")).await;
        store.assign(code, "DPU".into(), op(), None).await.unwrap();
        store.set_status(code, Status::Resolved, op(), None).await.unwrap();
        let key = store.ask_confirmation(code, chrono::Utc::now()).await.unwrap().unwrap();
        let fixed = Confirmation { verdict: Verdict::Fixed, rating: Some(4) };
        // A ticket code is not a key.
        for guess in [code.to_string(), String::new(), "0".repeat(48)] {
            assert!(!store.confirm_with_key(code, guess, fixed, None).await.unwrap());
        }
        assert_eq!(store.ticket(code).await.unwrap().unwrap().summary.status, Status::Resolved);
        assert!(store.confirm_with_key(code, key.clone(), fixed, None).await.unwrap());
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.status, Status::Closed);
        let ev = view.events.iter().rev().find(|e| e.kind == EventKind::Confirmation).unwrap();
        assert_eq!((ev.to.as_deref(), ev.note.as_deref()), (Some("fixed"), Some("rating 4")));
        // Used once.
        assert!(!store.confirm_with_key(code, key, fixed, None).await.unwrap());
        // An operator may still reopen a closed ticket.
        store.set_status(code, Status::InProgress, op(), None).await.unwrap();
    }
}

// --- inbox: operator assignment ---

#[tokio::test]
async fn an_operator_takes_a_triage_ticket_and_lets_it_go() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code =
            store.ingest(msg(Channel::Web, "w-take", None, "x")).await.unwrap().ticket.unwrap();
        let other =
            store.ingest(msg(Channel::Web, "w-other", None, "y")).await.unwrap().ticket.unwrap();
        let before = store.inbox_version().await.unwrap();
        let me = "operator@banyumaskab.go.id".to_string();
        store.set_handler(code, Some(me.clone()), op()).await.unwrap();
        assert!(store.inbox_version().await.unwrap() > before, "taking is a change the inbox sees");
        // Again: nothing new.
        store.set_handler(code, Some(me.clone()), op()).await.unwrap();
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.assignee.as_deref(), Some(me.as_str()));
        let taken: Vec<_> = view.events.iter().filter(|e| e.kind == EventKind::Handler).collect();
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].from.as_deref(), taken[0].to.as_deref()), (None, Some(me.as_str())));

        let mine = aduan_store::TicketFilter {
            assignee: Some(me.clone()),
            limit: 50,
            ..Default::default()
        };
        let page = store.tickets(&mine).await.unwrap();
        assert_eq!(page.items.iter().map(|t| t.code).collect::<Vec<_>>(), vec![code]);
        assert_eq!(store.ticket(other).await.unwrap().unwrap().summary.assignee, None);

        // Disposed tickets are no longer triage: they can't be taken, only let go.
        store.assign(other, "DPU".into(), op(), None).await.unwrap();
        let err = store.set_handler(other, Some(me.clone()), op()).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        store.assign(code, "DPU".into(), op(), None).await.unwrap();
        store.set_handler(code, None, op()).await.unwrap();
        let view = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(view.summary.assignee, None);
        let last = view.events.iter().rev().find(|e| e.kind == EventKind::Handler).unwrap();
        assert_eq!((last.from.as_deref(), last.to.as_deref()), (Some(me.as_str()), None));
        assert!(store.tickets(&mine).await.unwrap().items.is_empty());
    }
}

// --- officials: one-click action links (issue 19 item 5) ---

fn claim(
    code: TicketCode,
    opd: &str,
    action: aduan_core::action_link::OfficialAction,
    nonce: &str,
) -> aduan_core::action_link::ActionClaim {
    aduan_core::action_link::ActionClaim {
        ticket: code,
        opd: opd.into(),
        action,
        official: "pejabat@dpu.example.id".into(),
        expires_at: chrono::Utc::now() + Duration::days(7),
        nonce: nonce.into(),
    }
}

#[tokio::test]
async fn an_action_link_acts_once_as_the_official() {
    use aduan_core::action_link::OfficialAction as A;
    use aduan_store::LinkOutcome;
    for (store, _g) in stores(no_receipts()).await {
        let code = ticket_of(&store, msg(Channel::Telegram, "t1", tg("42"), "jalan rusak")).await;
        store.assign(code, "DPU".into(), op(), None).await.unwrap();
        // The check reads only.
        let (t, why) =
            store.official_link_check(claim(code, "DPU", A::Accept, "n1")).await.unwrap();
        assert_eq!((t.status, why), (Status::Assigned, None));
        let c = claim(code, "DPU", A::Accept, "n1");
        assert_eq!(
            store.official_act(c.clone(), "DPU".into(), None).await.unwrap(),
            LinkOutcome::Done
        );
        let v = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(v.summary.status, Status::InProgress);
        let ev = v.events.last().unwrap();
        assert_eq!(ev.actor, Actor::User("pejabat@dpu.example.id".into()));
        // Used: refused, by the check and by acting, and nothing changes.
        assert_eq!(store.official_link_check(c.clone()).await.unwrap().1, Some(LinkOutcome::Used));
        let events = v.events.len();
        assert_eq!(store.official_act(c, "DPU".into(), None).await.unwrap(), LinkOutcome::Used);
        assert_eq!(store.ticket(code).await.unwrap().unwrap().events.len(), events);
        // Accepting again with a fresh link: not in this status.
        let again = claim(code, "DPU", A::Accept, "n2");
        assert_eq!(
            store.official_act(again, "DPU".into(), None).await.unwrap(),
            LinkOutcome::NotNow(Status::InProgress)
        );
        // A link of another OPD.
        let other = claim(code, "DINKES", A::Resolve, "n3");
        assert_eq!(
            store.official_act(other, "Dinkes".into(), Some("x".into())).await.unwrap(),
            LinkOutcome::OtherOpd
        );
        // A note is required to resolve; without one nothing is stored (the nonce neither).
        let resolve = claim(code, "DPU", A::Resolve, "n4");
        assert_eq!(
            store.official_act(resolve.clone(), "DPU".into(), Some("  ".into())).await.unwrap(),
            LinkOutcome::NeedsText
        );
        assert_eq!(
            store
                .official_act(resolve, "DPU".into(), Some("Sudah ditambal.".into()))
                .await
                .unwrap(),
            LinkOutcome::Done
        );
        let v = store.ticket(code).await.unwrap().unwrap();
        assert_eq!(v.summary.status, Status::Resolved);
        let answer = v.messages.iter().find(|m| m.text == "Sudah ditambal.").unwrap();
        assert_eq!((answer.direction, answer.channel), (Direction::Out, Channel::Telegram));
    }
}

#[tokio::test]
async fn new_triage_tickets_go_around_the_operators_on_duty() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let admin = Actor::User("admin@banyumaskab.go.id".into());
        let mut ids = Vec::new();
        for (email, role) in [
            ("a@banyumaskab.go.id", aduan_store::Role::Operator),
            ("b@banyumaskab.go.id", aduan_store::Role::Operator),
            ("c@banyumaskab.go.id", aduan_store::Role::Operator),
            ("k@banyumaskab.go.id", aduan_store::Role::Official),
        ] {
            let user = aduan_store::NewUser {
                email: email.into(),
                name: None,
                role,
                opd: None,
                password_hash: "$argon2id$x".into(),
            };
            ids.push(store.add_user(user).await.unwrap());
        }
        let mut codes = Vec::new();
        for i in 0..5 {
            let m = msg(Channel::Web, &format!("rr-{i}"), None, "x");
            codes.push(store.ingest(m).await.unwrap().ticket.unwrap());
        }
        // Nobody on duty: nothing handed out.
        assert!(store.round_robin(50).await.unwrap().is_empty());
        assert!(!store.on_duty(ids[0]).await.unwrap());
        // A disposed ticket and one taken and let go stay with the desk.
        store.assign(codes[0], "DPU".into(), op(), None).await.unwrap();
        store.set_handler(codes[1], Some("c@banyumaskab.go.id".into()), op()).await.unwrap();
        store.set_handler(codes[1], None, op()).await.unwrap();
        for id in [ids[0], ids[1], ids[3]] {
            assert!(store.set_on_duty(id, true, admin.clone()).await.unwrap());
        }
        assert!(store.on_duty(ids[0]).await.unwrap());
        assert!(!store.set_on_duty(9999, true, admin.clone()).await.unwrap());
        let handed = store.round_robin(50).await.unwrap();
        let who: Vec<(TicketCode, &str)> = handed.iter().map(|(c, e)| (*c, e.as_str())).collect();
        assert_eq!(
            who,
            vec![
                (codes[2], "a@banyumaskab.go.id"),
                (codes[3], "b@banyumaskab.go.id"),
                (codes[4], "a@banyumaskab.go.id"),
            ],
            "in turn, operators only"
        );
        let v = store.ticket(codes[3]).await.unwrap().unwrap();
        assert_eq!(v.summary.assignee.as_deref(), Some("b@banyumaskab.go.id"));
        let ev = v.events.iter().find(|e| e.kind == EventKind::Handler).unwrap();
        assert_eq!(ev.actor, Actor::System);
        // Once handed, never again.
        assert!(store.round_robin(50).await.unwrap().is_empty());
        // Off duty: the next one goes to the other.
        store.set_on_duty(ids[0], false, admin.clone()).await.unwrap();
        let next =
            store.ingest(msg(Channel::Web, "rr-9", None, "x")).await.unwrap().ticket.unwrap();
        let handed = store.round_robin(50).await.unwrap();
        assert_eq!(handed, vec![(next, "b@banyumaskab.go.id".to_string())]);
        let log = store.audit_log(1).await.unwrap();
        assert_eq!(
            (log[0].action.as_str(), log[0].target.as_deref()),
            ("off_duty", Some("a@banyumaskab.go.id"))
        );
    }
}

#[tokio::test]
async fn not_ours_returns_to_triage_and_ask_info_pauses() {
    use aduan_core::action_link::OfficialAction as A;
    use aduan_store::LinkOutcome;
    for (store, _g) in stores(no_receipts()).await {
        let new = |id: &'static str| {
            let store = store.clone();
            async move {
                store.ingest(msg(Channel::Telegram, id, tg(id), "x")).await.unwrap().ticket.unwrap()
            }
        };
        let a = new("41").await;
        store.assign(a, "DPU".into(), op(), None).await.unwrap();
        let c = claim(a, "DPU", A::NotOurs, "r1");
        let out = store.official_act(c, "Dinas PU".into(), Some("urusan Dinkes".into())).await;
        assert_eq!(out.unwrap(), LinkOutcome::Done);
        let v = store.ticket(a).await.unwrap().unwrap();
        assert_eq!((v.summary.status, v.summary.opd.as_deref()), (Status::New, None));
        assert!(
            v.events
                .iter()
                .any(|e| e.note.as_deref() == Some("Bukan wewenang Dinas PU: urusan Dinkes")),
            "{:?}",
            v.events
        );
        // The ticket has left DPU: its other links no longer act.
        let late = claim(a, "DPU", A::Accept, "r2");
        assert_eq!(
            store.official_act(late, "Dinas PU".into(), None).await.unwrap(),
            LinkOutcome::OtherOpd
        );

        let b = new("43").await;
        store.assign(b, "DPU".into(), op(), None).await.unwrap();
        let c = claim(b, "DPU", A::AskInfo, "q1");
        let out = store.official_act(c, "Dinas PU".into(), Some("Di RT berapa?".into())).await;
        assert_eq!(out.unwrap(), LinkOutcome::Done);
        let v = store.ticket(b).await.unwrap().unwrap();
        assert!(v.summary.paused);
        assert_eq!(v.summary.status, Status::Assigned);
        let q = v.messages.iter().find(|m| m.direction == Direction::Out).unwrap();
        assert!(q.text.contains("Di RT berapa?") && q.text.contains("Dinas PU"), "{}", q.text);
        assert_eq!(q.channel, Channel::Telegram);
    }
}
