//! The Telegram channel against a local Bot API server (`fake_bot`), the real store
//! (SQLite in a temp dir), the real outbound worker and the real shared HTTP router.

mod fake_bot;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aduan_connector::outbound::{self, OutboundConfig};
use aduan_connector::{
    Connector, ConnectorContext, SendError, Telemetry, WebhookRequest, compliance,
};
use aduan_core::{Channel, Direction, Identity, IdentityKind, OutboxState, Purpose, TicketCode};
use aduan_store::{OutboxItem, Store, StoreOptions, TicketFilter, TicketView};
use aduan_telegram::reply::{START_TEXT, STATUS_HELP_TEXT};
use aduan_telegram::update::{Action, ParseOptions, Parsed, parse_update};
use aduan_telegram::{
    CHECKPOINT_KEY, Mode, TelegramConfig, TelegramConnector, TelegramWebhook, checkpoint_value,
    resume_offset,
};
use expect_test::{Expect, expect};
use fake_bot::{Failure, FakeBot, TOKEN};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(name)).expect(name);
    serde_json::from_str(&text).expect(name)
}

/// A Message fixture as the update Telegram would deliver it.
fn wrap(update_id: i64, message: Value) -> Value {
    json!({"update_id": update_id, "message": message})
}

fn render(p: &Parsed) -> String {
    match &p.action {
        Action::Store(m) => {
            let mut out = format!(
                "update {} → store {} at {}\n  from {:?} {:?}\n  text {:?}",
                p.update_id,
                m.provider_id,
                m.received_at.to_rfc3339(),
                m.sender.identity.as_ref().map(|i| format!("{}:{}", i.kind, i.value)),
                m.sender.display_name,
                m.text,
            );
            for a in &m.attachments {
                out.push_str(&format!(
                    "\n  attachment {} {} bytes {:?} ref {}",
                    a.content_type,
                    a.size,
                    a.filename,
                    a.provider_ref.as_deref().unwrap_or("-")
                ));
            }
            if let Some(l) = m.location {
                out.push_str(&format!("\n  location {} {}", l.lat, l.lon));
            }
            if !m.thread.references.is_empty() || m.thread.revision_of.is_some() {
                out.push_str(&format!(
                    "\n  references {:?} revision of {:?}",
                    m.thread.references, m.thread.revision_of
                ));
            }
            out
        }
        other => format!("update {} → {other:?}", p.update_id),
    }
}

fn check(update: Value, opts: ParseOptions, expect: Expect) {
    let bytes = serde_json::to_vec(&update).unwrap();
    let parsed = parse_update(&bytes, opts).expect("a real update must parse");
    expect.assert_eq(&render(&parsed));
}

#[test]
fn real_updates_become_messages_commands_or_nothing() {
    let private = ParseOptions::default();
    check(
        fixture("telegram-teloxide-json/update__update__message.json"),
        private,
        expect![[r#"
            update 892252934 → store 218485655:6557 at 2019-09-26T17:19:02+00:00
              from Some("telegram:218485655") Some("Waffle")
              text "hello there""#]],
    );
    check(
        fixture("telegram-teloxide-json/update__update__de_private_chat_text_message.json"),
        private,
        expect![[r#"
            update 306197398 → store 408258968:154 at 2020-02-11T19:20:57+00:00
              from Some("telegram:408258968") Some("Hirrolot")
              text "4""#]],
    );
    check(
        wrap(
            10001,
            fixture("telegram-teloxide-json/object__message__show_caption_above_media.json"),
        ),
        private,
        expect![[r#"
            update 10001 → store 1459074222:140 at 2025-02-08T19:06:55+00:00
              from Some("telegram:1459074222") Some("shadowchain")
              text "El Psy Kongroo"
              attachment image/jpeg 358 bytes None ref AgACAgIAAxkBAAOMZ6erTx2-IA9WEXr4NkeUY5AjdvQAArTxMRtfc0FJ1gKSaUEGAfMBAAMCAANtAAM2BA"#]],
    );
    check(
        wrap(10002, fixture("telegram-teloxide-json/object__message__de_image.json")),
        private,
        expect![[r#"
            update 10002 → store 250918540:199791 at 2019-09-12T12:17:02+00:00
              from Some("telegram:250918540") Some("Андрей Власов")
              text ""
              attachment image/jpeg 75245 bytes None ref AgADAgAD36sxG-PX0UvQSXIn9rccdw-ACA4ABAEAAwIAA3kAAyTcBAABFgQ"#]],
    );
    check(
        wrap(10003, fixture("telegram-teloxide-json/object__message__issue_481.json")),
        private,
        expect![[r#"
            update 10003 → store 0:0 at 1970-01-01T00:00:00+00:00
              from Some("telegram:0") None
              text "Title, Address"
              location 0 0"#]],
    );
    check(
        wrap(10004, fixture("telegram-teloxide-json/object__message__de_media_forwarded.json")),
        private,
        expect![[r#"
            update 10004 → store 250918540:198283 at 2019-09-08T07:20:21+00:00
              from Some("telegram:250918540") Some("Андрей Власов")
              text ""
              attachment video/mp4 1381334 bytes None ref BAADAgADpgQAAgX9qEud6QcgPiOAlhYE"#]],
    );
    check(
        fixture("telegram-bot-api-docs/edited_message.json"),
        private,
        expect![[r#"
            update 10000 → store 1111111:1365@1441646600 at 2015-09-07T17:23:20+00:00
              from Some("telegram:1111111") Some("Test Firstname Test Lastname")
              text "Edited text"
              references ["1111111:1365"] revision of Some("1111111:1365")"#]],
    );
    // A supergroup: ignored by default; with groups on, a command for another bot.
    let group = fixture("telegram-teloxide-json/update__update__issue_1107_1.json");
    check(group.clone(), private, expect![[r#"update 439432600 → Ignore("not a private chat")"#]]);
    check(
        group,
        ParseOptions { allow_groups: true },
        expect![[r#"update 439432600 → Ignore("a command for another bot")"#]],
    );
    check(
        fixture("telegram-teloxide-json/update__update__issue_523.json"),
        private,
        expect![[r#"update 0 → Ignore("an update kind aduan does not take")"#]],
    );
    // The same group message with a complaint: kept when groups are on, threaded by its reply.
    check(
        group_update("Jalan di depan balai desa berlubang"),
        ParseOptions { allow_groups: true },
        expect![[r#"
        update 439432600 → store -1001293752024:134546 at 2024-07-21T20:09:40+00:00
          from Some("telegram:5964236329") Some("the Cable Guy")
          text "Jalan di depan balai desa berlubang"
          references ["-1001293752024:134545"] revision of None"#]],
    );
}

/// `issue_1107_1` (a supergroup message replying to another) with another text.
fn group_update(text: &str) -> Value {
    let mut u = fixture("telegram-teloxide-json/update__update__issue_1107_1.json");
    u["message"]["text"] = json!(text);
    u["message"].as_object_mut().unwrap().remove("entities");
    u
}

// ---------------------------------------------------------------------------------------
// Running the connector.

struct Site {
    fake: FakeBot,
    store: Store,
    telemetry: Arc<Telemetry>,
    dir: tempfile::TempDir,
}

impl Site {
    async fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
        let store = Store::open(&url, StoreOptions::default()).await.unwrap();
        store.migrate().await.unwrap();
        Site { fake: FakeBot::start().await, store, telemetry: Arc::new(Telemetry::new()), dir }
    }

    fn attachments(&self) -> PathBuf {
        self.dir.path().join("attachments")
    }

    fn config(&self) -> TelegramConfig {
        let mut c = TelegramConfig::new(TOKEN);
        c.api_url = self.fake.url.clone();
        c.poll_timeout = Duration::from_secs(1);
        c
    }

    fn cx(&self, shutdown: &CancellationToken) -> ConnectorContext {
        ConnectorContext {
            store: self.store.clone(),
            telemetry: self.telemetry.clone(),
            blobs: aduan_connector::BlobStore::new(self.attachments(), Default::default()),
            shutdown: shutdown.clone(),
        }
    }

    /// Runs the connector (and the outbound worker, if `send`) until the token is cancelled
    /// or the tasks are aborted.
    fn run(
        &self,
        connector: &Arc<TelegramConnector>,
        send: bool,
    ) -> (CancellationToken, Vec<tokio::task::JoinHandle<()>>) {
        let shutdown = CancellationToken::new();
        let cx = self.cx(&shutdown);
        let c = connector.clone();
        let mut tasks = vec![tokio::spawn(async move {
            let _ = c.run(cx).await;
        })];
        if send {
            let cfg = OutboundConfig {
                poll: Duration::from_millis(50),
                backoff: Duration::from_secs(1),
                ..OutboundConfig::default()
            };
            let cx = self.cx(&shutdown);
            let connectors: Vec<Arc<dyn Connector>> = vec![connector.clone()];
            tasks.push(tokio::spawn(outbound::run(cx, connectors, cfg)));
        }
        (shutdown, tasks)
    }

    async fn tickets(&self) -> Vec<TicketView> {
        let page = self
            .store
            .tickets(&TicketFilter { limit: 100, ..TicketFilter::default() })
            .await
            .unwrap();
        let mut views = Vec::new();
        for t in page.items.iter().rev() {
            views.push(self.store.ticket(t.code).await.unwrap().unwrap());
        }
        views
    }

    async fn ticket_of(&self, provider_text: &str) -> TicketView {
        self.tickets()
            .await
            .into_iter()
            .find(|t| t.messages.iter().any(|m| m.text == provider_text))
            .unwrap_or_else(|| panic!("no ticket with a message {provider_text:?}"))
    }
}

/// Polls `check` until it returns `Some` (15 s at most).
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn text_update() -> Value {
    fixture("telegram-teloxide-json/update__update__message.json")
}

/// An edit of `text_update()`'s message, as Telegram sends one: same chat and message id,
/// new text, `edit_date`.
fn edit_update() -> Value {
    let mut m = text_update()["message"].clone();
    m["text"] = json!("hello there, jalan di depan rumah berlubang");
    m["edit_date"] = json!(1569518400);
    json!({"update_id": 892252937, "edited_message": m})
}

/// `de_private_chat_text_message` with another text.
fn text_from_hirrolot(update_id: i64, message_id: i64, text: &str) -> Value {
    let mut u = fixture("telegram-teloxide-json/update__update__de_private_chat_text_message.json");
    u["update_id"] = json!(update_id);
    u["message"]["message_id"] = json!(message_id);
    u["message"]["text"] = json!(text);
    u
}

const PHOTO_ID: &str =
    "AgACAgIAAxkBAAOMZ6erTx2-IA9WEXr4NkeUY5AjdvQAArTxMRtfc0FJ1gKSaUEGAfMBAAMCAANtAAM2BA";
const PHOTO_BYTES: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF jalan berlubang";

#[tokio::test]
async fn polling_stores_text_photo_location_and_edits_then_answers_in_the_chat() {
    let site = Site::new().await;
    site.fake.add_file(PHOTO_ID, "photos/file_140.jpg", PHOTO_BYTES);
    site.fake.push_updates([
        text_update(),
        wrap(
            892252935,
            fixture("telegram-teloxide-json/object__message__show_caption_above_media.json"),
        ),
        wrap(892252936, fixture("telegram-teloxide-json/object__message__issue_481.json")),
        edit_update(),
        text_from_hirrolot(892252938, 155, "/start"),
        text_from_hirrolot(892252939, 156, "CEK ADU-00000000"),
        text_from_hirrolot(892252940, 157, "cek"),
    ]);
    let connector = Arc::new(TelegramConnector::new(site.config()).unwrap());
    let (shutdown, tasks) = site.run(&connector, true);

    // Three tickets (text, photo, location), their three receipts and three command answers.
    let sent = eventually("receipts and command answers", async || {
        let sent = site.fake.sent();
        (sent.len() >= 6).then_some(sent)
    })
    .await;
    let photo_sha = eventually("the photo fetched", async || {
        let t = site.ticket_of("El Psy Kongroo").await;
        let a = &t.messages[0].attachments[0];
        (!a.sha256.is_empty()).then(|| a.sha256.clone())
    })
    .await;
    let offset = eventually("the offset checkpointed", async || {
        let v = site.store.checkpoint("telegram", CHECKPOINT_KEY).await.unwrap()?;
        resume_offset(Some(&v), chrono::Utc::now()).filter(|o| *o == 892252941)
    })
    .await;
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(offset, 892252941);
    assert!(site.fake.calls("deleteWebhook").len() == 1, "polling starts by removing a webhook");
    assert!(site.fake.calls("setWebhook").is_empty());

    let tickets = site.tickets().await;
    assert_eq!(tickets.len(), 3, "the edit and the commands open no ticket");

    // Text, and its edit kept as a revision on the same ticket.
    let text = site.ticket_of("hello there").await;
    assert_eq!(text.summary.channel, Channel::Telegram);
    let inbound: Vec<_> = text.messages.iter().filter(|m| m.direction == Direction::In).collect();
    assert_eq!(inbound.len(), 2);
    assert_eq!(inbound[1].text, "hello there, jalan di depan rumah berlubang");
    assert_eq!(inbound[1].revision_of, Some(inbound[0].id));
    let reporter = text.reporter.as_ref().unwrap();
    assert_eq!(
        reporter.identities,
        vec![Identity::new(IdentityKind::Telegram, "218485655").unwrap()]
    );

    // Photo: the largest size, fetched into the attachment store by content hash.
    let photo = site.ticket_of("El Psy Kongroo").await;
    let a = &photo.messages[0].attachments[0];
    assert_eq!((a.content_type.as_str(), a.size), ("image/jpeg", PHOTO_BYTES.len() as u64));
    assert_eq!(a.provider_ref.as_deref(), Some(PHOTO_ID));
    let blob = site.attachments().join(&photo_sha[0..2]).join(&photo_sha[2..4]).join(&photo_sha);
    assert_eq!(std::fs::read(blob).unwrap(), PHOTO_BYTES);
    assert_eq!(site.fake.downloads(), vec!["photos/file_140.jpg".to_owned()]);

    // Location (a venue): the ticket's location.
    let venue = site.ticket_of("Title, Address").await;
    let loc = venue.summary.location.expect("the venue's location on the ticket");
    assert_eq!((loc.lat, loc.lon), (0.0, 0.0));

    // Each receipt went to its resident's chat with its ticket's code, and is recorded sent.
    for (ticket, chat) in [(&text, 218485655), (&photo, 1459074222), (&venue, 0)] {
        let code = ticket.summary.code.to_string();
        let to_chat: Vec<_> = sent.iter().filter(|s| s.chat_id == chat).collect();
        assert_eq!(to_chat.len(), 1, "one message to chat {chat}: {sent:?}");
        assert!(to_chat[0].text.contains(&code), "{:?} lacks {code}", to_chat[0].text);
        let ack = site.store.ticket(ticket.summary.code).await.unwrap().unwrap();
        let out: Vec<_> = ack.messages.iter().filter(|m| m.direction == Direction::Out).collect();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].purpose, out[0].delivery),
            (Some(Purpose::Ack), Some(OutboxState::Sent))
        );
    }

    // The commands were answered in their chat and stored nothing.
    let answers: Vec<&str> =
        sent.iter().filter(|s| s.chat_id == 408258968).map(|s| s.text.as_str()).collect();
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0], START_TEXT);
    assert!(answers[1].contains("ADU-00000000") && answers[1].contains("tidak ditemukan"));
    assert_eq!(answers[2], STATUS_HELP_TEXT);
    let inbound: Vec<&str> = tickets
        .iter()
        .flat_map(|t| t.messages.iter().filter(|m| m.direction == Direction::In))
        .map(|m| m.text.as_str())
        .collect();
    assert!(
        inbound.iter().all(|t| !t.contains("CEK") && *t != "cek" && *t != "/start"),
        "{inbound:?}"
    );
    assert_eq!(inbound.len(), 4, "text, its edit, photo, venue: {inbound:?}");
}

#[tokio::test]
async fn cek_answers_status_opd_and_deadline_and_nothing_personal() {
    let site = Site::new().await;
    site.fake.push_updates([text_update()]);
    let mut config = site.config();
    config.allow_groups = true;
    let connector = Arc::new(TelegramConnector::new(config).unwrap());
    let (shutdown, tasks) = site.run(&connector, true);
    let ticket = eventually("the ticket", async || site.tickets().await.into_iter().next()).await;
    let code = ticket.summary.code;
    site.store.assign(code, "DPU".into(), aduan_core::Actor::System, None).await.unwrap();
    let mut in_group = group_update(&format!("CEK {code}"));
    in_group["update_id"] = json!(892252951);
    site.fake.push_updates([text_from_hirrolot(892252950, 200, &format!("/cek {code}")), in_group]);
    let answer = eventually("the status answer", async || {
        site.fake.sent().into_iter().find(|s| s.chat_id == 408258968)
    })
    .await;
    let group_answer = eventually("the status answer in the group", async || {
        site.fake.sent().into_iter().find(|s| s.chat_id == -1001293752024)
    })
    .await;
    assert_eq!(group_answer.text, answer.text);
    assert_eq!(group_answer.reply_to, Some(134546), "in a group the answer quotes the request");
    assert_eq!(answer.reply_to, None);
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    // The same words as the `CEK` answer by SMS or email (`aduan_core::texts`).
    let due = aduan_core::texts::local_time(ticket.summary.first_response_due_at);
    assert_eq!(
        answer.text,
        format!(
            "Status aduan {code}: terdisposisi, ditangani oleh DPU. Batas waktu tindak lanjut: {due}."
        )
    );
    for personal in ["Waffle", "hello there", "218485655"] {
        assert!(!answer.text.contains(personal), "{personal} in {:?}", answer.text);
    }
}

#[tokio::test]
async fn a_crash_between_storing_and_the_checkpoint_redelivers_without_duplicates() {
    let site = Site::new().await;
    let first = 892252934;
    // Where the previous run left off.
    let before = checkpoint_value(first, chrono::Utc::now());
    site.store
        .set_checkpoint("telegram".into(), CHECKPOINT_KEY.into(), before.clone())
        .await
        .unwrap();
    site.fake.push_updates([
        text_update(),
        wrap(
            892252935,
            fixture("telegram-teloxide-json/object__message__show_caption_above_media.json"),
        ),
    ]);
    // The process dies before its next getUpdates reaches Telegram: the batch stays
    // unconfirmed there.
    site.fake.hold_confirmations(true);
    let connector = Arc::new(TelegramConnector::new(site.config()).unwrap());
    let (_shutdown, tasks) = site.run(&connector, false);
    eventually("the batch stored and the next getUpdates sent", async || {
        (site.tickets().await.len() == 2 && site.fake.held() == 1).then_some(())
    })
    .await;
    for t in &tasks {
        t.abort(); // kill -9: no shutdown, nothing more runs
    }
    for t in tasks {
        let _ = t.await;
    }
    let stored = site.store.checkpoint("telegram", CHECKPOINT_KEY).await.unwrap().unwrap();
    assert_eq!(resume_offset(Some(&stored), chrono::Utc::now()), Some(892252936));
    // The kill landed between the commit of the batch and the checkpoint write: the
    // checkpoint still says where the previous round ended.
    site.store.set_checkpoint("telegram".into(), CHECKPOINT_KEY.into(), before).await.unwrap();
    site.fake.hold_confirmations(false);
    let answered_before = site.fake.offsets().len();

    let connector = Arc::new(TelegramConnector::new(site.config()).unwrap());
    let (shutdown, tasks) = site.run(&connector, false);
    eventually("the redelivered batch confirmed", async || {
        site.fake.offsets()[answered_before..].contains(&Some(892252936)).then_some(())
    })
    .await;
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        site.fake.offsets()[answered_before],
        Some(first),
        "the restarted poller asks again from the old offset and gets the batch again"
    );
    let tickets = site.tickets().await;
    assert_eq!(tickets.len(), 2, "no ticket opened twice");
    for t in &tickets {
        let inbound = t.messages.iter().filter(|m| m.direction == Direction::In).count();
        let receipts = t.messages.iter().filter(|m| m.purpose == Some(Purpose::Ack)).count();
        assert_eq!((inbound, receipts), (1, 1), "{}", t.summary.code);
    }
    let metrics = site.telemetry.render();
    assert!(
        metrics.contains("aduan_messages_duplicate_total{channel=\"telegram\"} 2"),
        "{metrics}"
    );
}

fn outbox_item(id: i64, chat: &str, text: &str) -> OutboxItem {
    OutboxItem {
        id,
        ticket: "ADU-7K3M9QXP".parse::<TicketCode>().unwrap(),
        channel: Channel::Telegram,
        recipient: Identity::new(IdentityKind::Telegram, chat).unwrap(),
        text: text.into(),
        purpose: Purpose::Reply,
        attempts: 1,
        thread_refs: Vec::new(),
    }
}

#[tokio::test]
async fn a_5xx_json_or_html_is_retried_not_given_up() {
    let site = Site::new().await;
    let connector = TelegramConnector::new(site.config()).unwrap();
    site.fake.fail_sends(51, [Failure::Server(500)]);
    site.fake.fail_sends(52, [Failure::Gateway(502)]);
    // teloxide pauses 10 s after a 5xx before it answers: both at once.
    let (to_51, to_52) = (outbox_item(1, "51", "Terima kasih"), outbox_item(2, "52", "Halo"));
    let (json_error, html_error) = tokio::join!(connector.send(&to_51), connector.send(&to_52));
    for (what, result) in [("500 with JSON", json_error), ("502 with HTML", html_error)] {
        assert!(matches!(result, Err(SendError::Retry { after: None, .. })), "{what}: {result:?}");
    }
    let attempts = site.fake.attempts();
    let statuses: Vec<u16> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses.len(), 2);
    let apart = attempts[1].at.saturating_duration_since(attempts[0].at);
    assert!(apart < Duration::from_secs(5), "the two chats were tried {apart:?} apart");
    assert!(statuses.contains(&500) && statuses.contains(&502), "{statuses:?}");
    // The next attempt goes through.
    assert!(connector.send(&outbox_item(3, "51", "Terima kasih")).await.is_ok());
    assert!(site.fake.attempts().iter().any(|a| a.chat_id == 51 && a.status == 200));
}

#[tokio::test]
async fn a_429_holds_the_chat_for_retry_after_and_the_worker_sends_later() {
    let site = Site::new().await;
    let connector = TelegramConnector::new(site.config()).unwrap();

    // Direct: the 429 comes back as Retry with Telegram's delay; the next send to that chat
    // is not tried during the hold; after it, the message goes out.
    site.fake.fail_sends(42, [Failure::TooManyRequests(2)]);
    let first = connector.send(&outbox_item(1, "42", "Terima kasih")).await;
    assert_eq!(
        first,
        Err(SendError::Retry {
            reason: "429 Too Many Requests".into(),
            after: Some(Duration::from_secs(2))
        })
    );
    match connector.send(&outbox_item(2, "42", "Terima kasih")).await {
        Err(SendError::Retry { after: Some(left), .. }) => assert!(left <= Duration::from_secs(2)),
        other => panic!("a held chat was tried: {other:?}"),
    }
    assert!(site.fake.sent().is_empty());
    assert_eq!(site.fake.throttled_at().len(), 1, "the held send never reached the API");
    // Other chats are not held.
    assert!(connector.send(&outbox_item(3, "43", "Halo")).await.is_ok());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let sent = connector.send(&outbox_item(4, "42", "Terima kasih")).await.unwrap();
    assert!(sent.is_some_and(|id| id.starts_with("42:")));

    // Through the outbound worker: the receipt hit by a 429 is delivered after the delay.
    site.fake.throttle_next_send(2);
    site.fake.push_updates([text_update()]);
    let connector = Arc::new(TelegramConnector::new(site.config()).unwrap());
    let (shutdown, tasks) = site.run(&connector, true);
    let receipt = eventually("the receipt", async || {
        site.fake.sent().into_iter().find(|s| s.chat_id == 218485655)
    })
    .await;
    let throttled = *site.fake.throttled_at().last().unwrap();
    assert!(
        receipt.at.duration_since(throttled) >= Duration::from_millis(1900),
        "sent {:?} after the 429",
        receipt.at.duration_since(throttled)
    );
    let t = eventually("the receipt recorded sent", async || {
        let t = site.ticket_of("hello there").await;
        let out = t.messages.iter().find(|m| m.direction == Direction::Out)?;
        (out.delivery == Some(OutboxState::Sent)).then_some(t)
    })
    .await;
    shutdown.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(receipt.text.contains(&t.summary.code.to_string()));
}

#[tokio::test]
async fn messages_to_one_chat_are_paced_one_a_second() {
    let site = Site::new().await;
    let connector = TelegramConnector::new(site.config()).unwrap();
    for i in 0..3 {
        connector.send(&outbox_item(i, "77", &format!("pesan {i}"))).await.unwrap();
    }
    connector.send(&outbox_item(9, "78", "lain")).await.unwrap();
    let sent = site.fake.sent();
    let to77: Vec<_> = sent.iter().filter(|s| s.chat_id == 77).collect();
    assert_eq!(to77.len(), 3);
    for pair in to77.windows(2) {
        assert!(pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(900));
    }
    let other = sent.iter().find(|s| s.chat_id == 78).unwrap();
    assert!(
        other.at.duration_since(to77[2].at) < Duration::from_millis(900),
        "chat 78 waited for 77"
    );
}

// ---------------------------------------------------------------------------------------
// Webhook mode.

const SECRET: &str = "s3cret_token-for-aduan";

fn hook_request(secret: Option<&str>, body: &Value) -> WebhookRequest {
    let mut headers = http::HeaderMap::new();
    if let Some(s) = secret {
        headers.insert("x-telegram-bot-api-secret-token", s.parse().unwrap());
    }
    WebhookRequest {
        method: http::Method::POST,
        query: None,
        headers,
        body: serde_json::to_vec(body).unwrap().into(),
        url: "https://aduan.example.go.id/hooks/telegram".into(),
    }
}

#[test]
fn the_webhook_passes_the_compliance_kit() {
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let hook = TelegramWebhook::new(SECRET, ParseOptions::default(), tx);
    for update in [
        text_update(),
        wrap(
            10001,
            fixture("telegram-teloxide-json/object__message__show_caption_above_media.json"),
        ),
        fixture("telegram-bot-api-docs/edited_message.json"),
    ] {
        let genuine = hook_request(Some(SECRET), &update);
        let forged = hook_request(Some("s3cret_token-for-aduaN"), &update);
        compliance::assert_webhook_contract(&hook, &genuine, &forged);
        assert_eq!(
            aduan_connector::Webhook::handle(&hook, &hook_request(None, &update)),
            Err(aduan_connector::Rejection::Unauthenticated("X-Telegram-Bot-Api-Secret-Token"))
        );
    }
}

#[tokio::test]
async fn webhook_mode_registers_checks_the_secret_stores_and_answers() {
    use tower::ServiceExt;
    let site = Site::new().await;
    let mut config = site.config();
    config.mode = Mode::Webhook;
    config.secret_token = Some(SECRET.into());
    config.webhook_url = "https://aduan.example.go.id/hooks/telegram".into();
    let connector = Arc::new(TelegramConnector::new(config).unwrap());
    let web = aduan_web::WebConfig { attachments_dir: site.attachments(), ..Default::default() };
    let app = aduan_web::app(
        aduan_web::AppState::new(site.store.clone(), site.telemetry.clone(), web),
        connector.webhooks(),
    );
    let (shutdown, tasks) = site.run(&connector, true);

    let registered = eventually("setWebhook", async || site.fake.calls("setWebhook").pop()).await;
    assert_eq!(registered["url"], "https://aduan.example.go.id/hooks/telegram");
    assert_eq!(registered["secret_token"], SECRET);
    assert_eq!(registered["allowed_updates"], json!(["message", "edited_message"]));

    let post = |secret: Option<&str>, update: &Value| {
        let mut req =
            http::Request::post("/hooks/telegram").header("content-type", "application/json");
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        let req = req.body(axum::body::Body::from(serde_json::to_vec(update).unwrap())).unwrap();
        let app = app.clone();
        async move { app.oneshot(req).await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None, &text_update()).await, 401);
    assert_eq!(post(Some("wrong"), &text_update()).await, 403);
    assert!(site.tickets().await.is_empty(), "a refused update stored something");

    assert_eq!(post(Some(SECRET), &text_update()).await, 200);
    assert_eq!(post(Some(SECRET), &text_update()).await, 200, "a redelivery is answered 2xx");
    let tickets = site.tickets().await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].messages.iter().filter(|m| m.direction == Direction::In).count(), 1);
    let code = tickets[0].summary.code;

    // The receipt, then a status request answered through the connector's task.
    eventually("the receipt", async || {
        site.fake
            .sent()
            .into_iter()
            .find(|s| s.chat_id == 218485655 && s.text.contains(&code.to_string()))
    })
    .await;
    assert_eq!(post(Some(SECRET), &text_from_hirrolot(5, 300, &format!("CEK {code}"))).await, 200);
    let answer = eventually("the status answer", async || {
        site.fake.sent().into_iter().find(|s| s.chat_id == 408258968)
    })
    .await;
    assert!(answer.text.starts_with(&format!("Status aduan {code}: baru.")), "{}", answer.text);
    assert_eq!(
        post(Some(SECRET), &json!({"update_id": 6})).await,
        200,
        "unknown kinds are acknowledged"
    );
    assert_eq!(post(Some(SECRET), &json!({"no": "update"})).await, 422);
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(site.tickets().await.len(), 1);
    let metrics = site.telemetry.render();
    for line in [
        "aduan_webhook_rejected_total{channel=\"telegram\",reason=\"unauthenticated\"} 1",
        "aduan_webhook_rejected_total{channel=\"telegram\",reason=\"forbidden\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
}
