//! The outbox: claims, leases, retries, receipts, bounces, the caps on automatic messages.

use aduan_core::{
    Channel, Direction, Identity, IdentityKind, InboundMessage, OutboxState, Purpose, ThreadHints,
};
use aduan_store::{StoreError, StoreOptions};
use chrono::{Duration, Utc};

use crate::{email, msg, no_receipts, op, phone, stores, tg, ticket_of};

#[tokio::test]
async fn outbox_rows_are_claimed_once_and_retried_until_dead() {
    for (store, _g) in stores(no_receipts()).await {
        let code = ticket_of(&store, msg(Channel::Telegram, "t1", tg("42"), "x")).await;
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
        let code = ticket_of(&store, msg(Channel::Telegram, "t1", tg("42"), "x")).await;
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
async fn a_bounce_marks_the_delivery_dead() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let code = ticket_of(
            &store,
            msg(Channel::Email, "m1@warga", email("siti@example.id"), "Lampu mati"),
        )
        .await;
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

#[tokio::test]
async fn no_automatic_message_goes_to_an_address_that_cant_be_a_resident() {
    for (store, _g) in stores(StoreOptions::default()).await {
        // A machine's mail that the channel failed to recognise opens a ticket, but its
        // receipt is kept on the ticket, published only, and counted.
        for (i, from) in
            ["no-reply@shop.example.com", "MAILER-DAEMON@mx.example.org"].into_iter().enumerate()
        {
            let m = msg(Channel::Email, &format!("m{i}@x"), email(from), "Pesanan Anda");
            let code = store.ingest(m).await.unwrap().ticket.unwrap();
            let view = store.ticket(code).await.unwrap().unwrap();
            let ack = view.messages.iter().find(|m| m.direction == Direction::Out).unwrap();
            assert_eq!(ack.delivery, Some(OutboxState::Published), "{}", store.backend_name());
        }
        // A person's address still gets its receipt.
        let m = msg(Channel::Email, "p@x", email("siti.noreplyfan@example.id"), "Jalan rusak");
        store.ingest(m).await.unwrap();
        let items =
            store.outbox_claim(Channel::ALL.to_vec(), 10, Duration::seconds(60)).await.unwrap();
        let to: Vec<&str> = items.iter().map(|i| i.recipient.value.as_str()).collect();
        assert_eq!(to, vec!["siti.noreplyfan@example.id"], "{}", store.backend_name());
        assert_eq!(
            store.auto_refused_counts().await.unwrap(),
            vec![("automated_recipient".to_owned(), 2)]
        );
    }
}

// --- receipts: receipts by outbox row (Twilio status callbacks, Kannel DLRs) ---

#[tokio::test]
async fn callback_receipts_find_their_row_move_forward_and_outrun_the_send() {
    use aduan_store::{CallbackReceipt, DeliveryReceipt, ReceiptStatus};
    for (store, _g) in stores(StoreOptions::default()).await {
        let be = store.backend_name();
        let code = ticket_of(
            &store,
            msg(Channel::Sms, "kannel:in-1", phone("+6281234567890"), "Lampu mati"),
        )
        .await;
        store.reply(code, "Segera kami periksa.".into(), op()).await.unwrap();
        let lease = Duration::seconds(60);
        let claimed = store.outbox_claim(vec![Channel::Sms], 10, lease).await.unwrap();
        assert_eq!(claimed.len(), 2, "{be}");
        let (kannel_row, twilio_row) = (claimed[0].id, claimed[1].id);
        let cr = |row: Option<i64>, id: &str, status, error: Option<&str>| CallbackReceipt {
            outbox_id: row,
            receipt: DeliveryReceipt {
                channel: Channel::Sms,
                provider_id: id.into(),
                status,
                at: Utc::now(),
                error: error.map(str::to_owned),
            },
        };
        let kannel_id = format!("kannel:out-{kannel_row}");

        // Kannel's "accepted by the SMSC" (8) and "delivered" (1) outrun the send's answer:
        // the row is still `sending`, the reports are kept, in order of their meaning.
        let applied = store
            .outbox_callback_receipts(vec![
                cr(Some(kannel_row), &kannel_id, ReceiptStatus::Delivered, None),
                cr(Some(kannel_row), &kannel_id, ReceiptStatus::Sent, None),
            ])
            .await
            .unwrap();
        assert_eq!(applied, vec![true, true], "{be}");
        store.outbox_sent(kannel_row, Some(kannel_id.clone())).await.unwrap();
        let row = store.outbox_row(kannel_row).await.unwrap().unwrap();
        assert_eq!(
            (row.state, row.receipt),
            (OutboxState::Sent, Some(ReceiptStatus::Delivered)),
            "{be}"
        );

        // A report naming a row of another channel, or a row sent with another id, is
        // not applied.
        let wrong = cr(Some(kannel_row), "kannel:out-999", ReceiptStatus::Failed, Some("x"));
        let other_channel = CallbackReceipt {
            receipt: DeliveryReceipt { channel: Channel::Whatsapp, ..wrong.receipt.clone() },
            ..wrong.clone()
        };
        assert_eq!(
            store.outbox_callback_receipts(vec![wrong, other_channel]).await.unwrap(),
            vec![false, false],
            "{be}"
        );
        assert_eq!(
            store.outbox_row(kannel_row).await.unwrap().unwrap().receipt,
            Some(ReceiptStatus::Delivered)
        );

        // Twilio: "undelivered" while the row is still being sent; the send's answer then
        // finds the row failed and it ends dead. Later receipts don't revive it.
        let sid = "twilio:SM0123";
        assert_eq!(
            store
                .outbox_callback_receipts(vec![cr(
                    Some(twilio_row),
                    sid,
                    ReceiptStatus::Failed,
                    Some("twilio undelivered (error 30003)"),
                )])
                .await
                .unwrap(),
            vec![true]
        );
        assert_eq!(
            store.outbox_row(twilio_row).await.unwrap().unwrap().state,
            OutboxState::Sending,
            "{be}"
        );
        store.outbox_sent(twilio_row, Some(sid.into())).await.unwrap();
        store
            .outbox_callback_receipts(vec![
                cr(Some(twilio_row), sid, ReceiptStatus::Delivered, None),
                cr(None, sid, ReceiptStatus::Read, None),
            ])
            .await
            .unwrap();
        let row = store.outbox_row(twilio_row).await.unwrap().unwrap();
        assert_eq!(
            (row.state, row.receipt),
            (OutboxState::Dead, Some(ReceiptStatus::Failed)),
            "{be}"
        );
        assert_eq!(
            row.last_error.as_deref(),
            Some("delivery failed: twilio undelivered (error 30003)")
        );

        // The ticket shows each answer's delivery; failures are counted per channel.
        let view = store.ticket(code).await.unwrap().unwrap();
        let shown: Vec<(&str, Option<&str>)> = view
            .messages
            .iter()
            .filter_map(|m| m.receipt.as_ref())
            .map(|d| (d.status, d.error.as_deref()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("delivered", None),
                ("failed", Some("delivery failed: twilio undelivered (error 30003)"))
            ],
            "{be}"
        );
        assert!(view.messages.iter().filter_map(|m| m.receipt.as_ref()).all(|d| d.at.is_some()));
        assert_eq!(store.delivery_failed_counts().await.unwrap(), vec![(Channel::Sms, 1)], "{be}");
    }
}

#[tokio::test]
async fn a_bounce_shows_as_failed_with_its_reason_and_counts() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let be = store.backend_name();
        let code = ticket_of(
            &store,
            msg(Channel::Email, "m1@warga", email("siti@warga.id"), "Jalan rusak"),
        )
        .await;
        let claimed =
            store.outbox_claim(vec![Channel::Email], 10, Duration::seconds(60)).await.unwrap();
        store.outbox_sent(claimed[0].id, Some("aduan.1@aduan.test".into())).await.unwrap();
        let view = store.ticket(code).await.unwrap().unwrap();
        let out = view.messages.iter().find(|m| m.direction == Direction::Out).unwrap();
        assert_eq!(out.receipt.as_ref().map(|d| d.status), Some("sent"), "{be}");
        store
            .outbox_bounced(
                Channel::Email,
                vec!["aduan.1@aduan.test".into()],
                "550 user unknown".into(),
            )
            .await
            .unwrap();
        let view = store.ticket(code).await.unwrap().unwrap();
        let out = view.messages.iter().find(|m| m.direction == Direction::Out).unwrap();
        let d = out.receipt.as_ref().unwrap();
        assert_eq!((d.status, d.error.as_deref()), ("failed", Some("550 user unknown")), "{be}");
        assert_eq!(
            store.delivery_failed_counts().await.unwrap(),
            vec![(Channel::Email, 1)],
            "{be}"
        );
    }
}

// --- windows: undeliverable answers, the fallback chain, waiting for the resident ---

mod windows {
    use aduan_core::{
        Channel, DEFAULT_FALLBACK_ORDER, Direction, Identity, IdentityKind, OutboxState, Purpose,
        Sender, UndeliverableReason as R,
    };
    use aduan_store::{OutboxItem, Store, TicketView, Undelivered};
    use chrono::{DateTime, Duration, Utc};

    use crate::{msg, no_receipts, op, stores};

    const SENDABLE: [Channel; 4] =
        [Channel::Whatsapp, Channel::Sms, Channel::Email, Channel::Telegram];

    fn wa() -> Identity {
        Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// A WhatsApp resident who also left an email address, answered by an operator.
    async fn answered(store: &Store) -> aduan_core::TicketCode {
        let mut m = msg(Channel::Whatsapp, "wamid.1", Some(wa()), "Jalan berlubang");
        m.sender = Sender {
            identity: Some(wa()),
            display_name: Some("Siti".into()),
            contacts: vec![Identity::email("siti@example.id").unwrap()],
        };
        let code = store.ingest(m).await.unwrap().ticket.unwrap();
        store.reply(code, "Jalan sudah ditambal.".into(), op()).await.unwrap();
        code
    }

    async fn claim(store: &Store, channel: Channel) -> Vec<OutboxItem> {
        store.outbox_claim(vec![channel], 10, Duration::seconds(60)).await.unwrap()
    }

    async fn undeliverable(store: &Store, id: i64, why: R, now: &str) -> Undelivered {
        let order = DEFAULT_FALLBACK_ORDER.to_vec();
        store.outbox_undeliverable(id, why, None, SENDABLE.to_vec(), order, at(now)).await.unwrap()
    }

    fn answer(view: &TicketView) -> &aduan_store::MessageView {
        view.messages
            .iter()
            .find(|m| m.direction == Direction::Out && m.purpose == Some(Purpose::Reply))
            .unwrap()
    }

    #[tokio::test]
    async fn an_undeliverable_answer_tries_the_reporters_other_identities_in_order_once() {
        for (store, _g) in stores(no_receipts()).await {
            let code = answered(&store).await;
            let first = claim(&store, Channel::Whatsapp).await;
            assert_eq!(first.len(), 1);
            let sms = Identity::phone("+6281234567890").unwrap();
            let to_sms =
                undeliverable(&store, first[0].id, R::WindowClosed, "2026-12-03T10:00:00Z").await;
            assert!(
                matches!(&to_sms, Undelivered::Fallback { channel: Channel::Sms, to, .. } if *to == sms),
                "{to_sms:?}"
            );
            let view = store.ticket(code).await.unwrap().unwrap();
            assert_eq!(answer(&view).delivery, Some(OutboxState::Pending));
            assert_eq!(
                answer(&view).delivery_note.as_deref(),
                Some("dialihkan ke SMS: jendela WhatsApp 24 jam tertutup")
            );
            assert_eq!(view.messages.iter().filter(|m| m.direction == Direction::Out).count(), 1);

            // The same answer, on SMS; then email; then nothing is left.
            let on_sms = claim(&store, Channel::Sms).await;
            assert_eq!(on_sms[0].text, "Jalan sudah ditambal.");
            assert_eq!(on_sms[0].recipient, sms);
            let to_mail =
                undeliverable(&store, on_sms[0].id, R::NotOnChannel, "2026-12-03T10:01:00Z").await;
            assert!(matches!(to_mail, Undelivered::Fallback { channel: Channel::Email, .. }));
            let on_mail = claim(&store, Channel::Email).await;
            assert_eq!(on_mail[0].recipient, Identity::email("siti@example.id").unwrap());
            store.outbox_sent(on_mail[0].id, Some("<m1@aduan>".into())).await.unwrap();
            let view = store.ticket(code).await.unwrap().unwrap();
            assert_eq!(answer(&view).delivery, Some(OutboxState::Sent));
            assert_eq!(
                answer(&view).delivery_note.as_deref(),
                Some("terkirim via email: alamat tidak terdaftar di SMS")
            );
            assert_eq!(answer(&view).deliveries.len(), 3);
            for ch in SENDABLE {
                assert!(claim(&store, ch).await.is_empty(), "{ch}: {}", store.backend_name());
            }
        }
    }

    #[tokio::test]
    async fn with_every_way_spent_the_answer_waits_and_goes_where_the_resident_next_writes() {
        for (store, _g) in stores(no_receipts()).await {
            let code = answered(&store).await;
            // Only WhatsApp and SMS can send here; the phone behind the WhatsApp number
            // takes no SMS either.
            let sendable = vec![Channel::Whatsapp, Channel::Sms];
            let order = DEFAULT_FALLBACK_ORDER.to_vec();
            let first = claim(&store, Channel::Whatsapp).await;
            let now = at("2026-12-03T10:00:00Z");
            let next = store
                .outbox_undeliverable(
                    first[0].id,
                    R::WindowClosed,
                    None,
                    sendable.clone(),
                    order.clone(),
                    now,
                )
                .await
                .unwrap();
            assert!(
                matches!(next, Undelivered::Fallback { channel: Channel::Sms, .. }),
                "{next:?}"
            );
            let sms = claim(&store, Channel::Sms).await;
            let now = at("2026-12-03T10:01:00Z");
            let next = store
                .outbox_undeliverable(sms[0].id, R::NotOnChannel, None, sendable, order, now)
                .await
                .unwrap();
            assert_eq!(next, Undelivered::Waiting);
            let view = store.ticket(code).await.unwrap().unwrap();
            assert_eq!(answer(&view).delivery, Some(OutboxState::WaitingForResident));
            assert_eq!(
                answer(&view).delivery_note.as_deref(),
                Some(
                    "menunggu warga menulis lagi (jendela WhatsApp 24 jam tertutup; alamat tidak terdaftar di SMS)"
                )
            );
            for ch in SENDABLE {
                assert!(claim(&store, ch).await.is_empty());
            }

            // Days later the resident writes by email (another channel, a new conversation):
            // the waiting answer goes there, once.
            let mail = Identity::email("siti@example.id").unwrap();
            let m = msg(
                Channel::Email,
                "<w1@mail.example>",
                Some(mail.clone()),
                "Bagaimana aduan saya?",
            );
            store.ingest(m).await.unwrap();
            let on_mail = claim(&store, Channel::Email).await;
            assert_eq!(on_mail.len(), 1, "{}", store.backend_name());
            assert_eq!((on_mail[0].ticket, on_mail[0].recipient.clone()), (code, mail.clone()));
            assert_eq!(on_mail[0].text, "Jalan sudah ditambal.");
            let m = msg(Channel::Email, "<w2@mail.example>", Some(mail), "Halo?");
            store.ingest(m).await.unwrap();
            store.outbox_sent(on_mail[0].id, None).await.unwrap();
            assert!(claim(&store, Channel::Email).await.is_empty());
            let view = store.ticket(code).await.unwrap().unwrap();
            assert_eq!(answer(&view).delivery, Some(OutboxState::Sent));
            assert_eq!(answer(&view).deliveries.len(), 3);
        }
    }

    #[tokio::test]
    async fn after_a_whatsapp_template_the_answer_waits_for_the_residents_next_message() {
        for (store, _g) in stores(no_receipts()).await {
            let code = answered(&store).await;
            let first = claim(&store, Channel::Whatsapp).await;
            let order = DEFAULT_FALLBACK_ORDER.to_vec();
            let notice = Some(Some("wamid.TEMPLATE".to_owned()));
            let next = store
                .outbox_undeliverable(
                    first[0].id,
                    R::WindowClosed,
                    notice,
                    SENDABLE.to_vec(),
                    order,
                    at("2026-12-03T10:00:00Z"),
                )
                .await
                .unwrap();
            assert_eq!(next, Undelivered::Waiting, "no fallback after a template");
            let view = store.ticket(code).await.unwrap().unwrap();
            assert!(
                answer(&view)
                    .delivery_note
                    .as_deref()
                    .unwrap()
                    .starts_with("templat WhatsApp terkirim")
            );
            assert!(claim(&store, Channel::Sms).await.is_empty());
            store
                .ingest(msg(Channel::Whatsapp, "wamid.2", Some(wa()), "Baik, apa jawabannya?"))
                .await
                .unwrap();
            let again = claim(&store, Channel::Whatsapp).await;
            assert_eq!(again.len(), 1);
            assert_eq!(
                (again[0].text.as_str(), again[0].recipient.clone()),
                ("Jalan sudah ditambal.", wa())
            );
        }
    }

    #[tokio::test]
    async fn receipts_and_status_answers_have_no_fallback() {
        for (store, _g) in stores(aduan_store::StoreOptions::default()).await {
            let code = answered(&store).await;
            let rows = claim(&store, Channel::Whatsapp).await;
            let ack = rows.iter().find(|i| i.purpose == Purpose::Ack).unwrap();
            let next = undeliverable(&store, ack.id, R::Blocked, "2026-12-03T10:00:00Z").await;
            assert_eq!(next, Undelivered::Dead);
            assert!(claim(&store, Channel::Sms).await.is_empty());
            assert!(store.ticket(code).await.unwrap().is_some());
        }
    }
}
