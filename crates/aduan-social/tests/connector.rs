//! The channels end to end, in one process: signed provider requests go through the real
//! router (`aduan_web::app`) into a real SQLite store; the connectors and the outbound worker
//! run as in the daemon; a local HTTP server plays the Graph API and the X API and records
//! every request it gets (Meta and X have no server we could run).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_connector::{Connector, ConnectorContext, Telemetry, outbound};
use aduan_core::{Channel, OutboxState, Purpose};
use aduan_social::{MetaConfig, MetaConnector, XConfig, XConnector, sig};
use aduan_store::{ReceiptStatus, Store, StoreOptions, TicketFilter, TicketView};
use aduan_web::{AppState, WebConfig};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const APP_SECRET: &str = "test_app_secret";
const VERIFY_TOKEN: &str = "verify-me";
const CONSUMER_SECRET: &str = "consumer_secret";
const PHONE_NUMBER_ID: &str = "106540352242922";

/// One request the fake provider received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    auth: Option<String>,
    body: Value,
}

#[derive(Clone)]
struct FakeState {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Speaks the documented answers of the Send API, the WhatsApp Cloud API (messages and
/// media), and X API v2 (DMs and tweets).
async fn fake(
    State(s): State<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut seen = s.seen.lock().unwrap();
        seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            auth: auth.clone(),
            body: body.clone(),
        });
        seen.len()
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let json = |status: StatusCode, v: Value| (status, axum::Json(v)).into_response();
    match (method, parts.as_slice()) {
        (Method::POST, ["v21.0", "me", "messages"]) => json(
            StatusCode::OK,
            json!({"recipient_id": body["recipient"]["id"], "message_id": format!("m_out{n}")}),
        ),
        (Method::POST, ["v21.0", number, "messages"]) if *number == PHONE_NUMBER_ID => json(
            StatusCode::OK,
            json!({"messaging_product": "whatsapp",
                   "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                   "messages": [{"id": format!("wamid.OUT{n}")}]}),
        ),
        (Method::GET, ["v21.0", media_id]) => {
            if auth.as_deref() != Some("Bearer wa-token") {
                return json(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": {"code": 190, "message": "bad token"}}),
                );
            }
            json(
                StatusCode::OK,
                json!({"messaging_product": "whatsapp", "url": format!("{}/cdn/{media_id}", s.base),
                       "mime_type": "image/jpeg", "sha256": "x", "file_size": 16, "id": media_id}),
            )
        }
        (Method::GET, ["cdn", media_id]) => {
            if auth.as_deref() != Some("Bearer wa-token") {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            ([("content-type", "image/jpeg")], format!("JPEG bytes of {media_id}")).into_response()
        }
        (Method::GET, ["redirect"]) => {
            let to = uri.query().and_then(|q| q.strip_prefix("to=")).unwrap_or("/").to_owned();
            (StatusCode::FOUND, [("location", to)]).into_response()
        }
        (Method::GET, ["page-cdn", name]) => {
            ([("content-type", "image/png")], format!("PNG bytes of {name}")).into_response()
        }
        (Method::POST, ["2", "dm_conversations", "with", _, "messages"]) => json(
            StatusCode::CREATED,
            json!({"data": {"dm_conversation_id": "1-2", "dm_event_id": format!("dm_out{n}")}}),
        ),
        (Method::POST, ["2", "tweets"]) => json(
            StatusCode::CREATED,
            json!({"data": {"id": format!("{n}000"), "text": body["text"]}}),
        ),
        _ => {
            json(StatusCode::NOT_FOUND, json!({"error": {"code": 803, "message": "unknown path"}}))
        }
    }
}

struct Env {
    app: Router,
    store: Store,
    seen: Arc<Mutex<Vec<Seen>>>,
    base: String,
    attachments: std::path::PathBuf,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let attachments = dir.path().join("attachments");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fake_app = Router::new()
        .fallback(fake)
        .with_state(FakeState { base: base.clone(), seen: seen.clone() });
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ =
            axum::serve(listener, fake_app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });

    let meta = Arc::new(MetaConnector::new(MetaConfig {
        app_secret: APP_SECRET.into(),
        verify_token: VERIFY_TOKEN.into(),
        page_access_token: Some("page-token".into()),
        whatsapp_token: Some("wa-token".into()),
        whatsapp_phone_number_id: Some(PHONE_NUMBER_ID.into()),
        graph_api_url: format!("{base}/v21.0"),
        media_hosts: aduan_social::META_MEDIA_HOSTS.iter().map(|h| (*h).to_owned()).collect(),
        whatsapp_template: Some(aduan_social::send::WhatsappTemplate {
            name: "status_aduan".into(),
            language: "id".into(),
            params: vec![
                aduan_social::send::TemplateParam::Code,
                aduan_social::send::TemplateParam::Status,
                aduan_social::send::TemplateParam::Link,
            ],
        }),
        human_agent_tag: false,
        public_url: "https://aduan.example.id".into(),
    }));
    let x = Arc::new(XConnector::new(XConfig {
        consumer_secret: CONSUMER_SECRET.into(),
        bearer_token: Some("x-token".into()),
        api_url: base.clone(),
    }));
    let connectors: Vec<Arc<dyn Connector>> = vec![meta.clone(), x.clone()];
    let telemetry = Arc::new(Telemetry::new());
    let webhooks = connectors.iter().flat_map(|c| c.webhooks()).collect();
    let web = WebConfig { attachments_dir: attachments.clone(), ..WebConfig::default() };
    let app = aduan_web::app(AppState::new(store.clone(), telemetry.clone(), web), webhooks);
    let cx = ConnectorContext {
        store: store.clone(),
        telemetry,
        blobs: aduan_connector::BlobStore::new(&attachments, Default::default()),
        shutdown: shutdown.clone(),
    };
    for c in &connectors {
        tokio::spawn(aduan_connector::supervise(c.clone(), cx.clone()));
    }
    let cfg = outbound::OutboundConfig {
        poll: Duration::from_millis(20),
        backoff: Duration::from_millis(100),
        ..outbound::OutboundConfig::default()
    };
    tokio::spawn(outbound::run(cx, connectors, cfg));
    Env { app, store, seen, base, attachments, shutdown, _dir: dir }
}

impl Env {
    async fn call(&self, req: Request<Body>) -> (StatusCode, Bytes) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    }

    async fn meta(&self, body: &[u8]) -> StatusCode {
        let sig = sig::meta_signature(APP_SECRET.as_bytes(), body);
        self.meta_with(body, Some(&sig)).await
    }

    async fn meta_with(&self, body: &[u8], signature: Option<&str>) -> StatusCode {
        let mut req = Request::post("/hooks/meta").header("content-type", "application/json");
        if let Some(s) = signature {
            req = req.header("x-hub-signature-256", s);
        }
        self.call(req.body(Body::from(body.to_vec())).unwrap()).await.0
    }

    async fn x(&self, body: &[u8]) -> StatusCode {
        let sig = sig::x_signature(CONSUMER_SECRET.as_bytes(), body);
        let req = Request::post("/hooks/x")
            .header("content-type", "application/json")
            .header("x-twitter-webhooks-signature", sig)
            .body(Body::from(body.to_vec()))
            .unwrap();
        self.call(req).await.0
    }

    async fn tickets(&self, channel: Channel) -> Vec<TicketView> {
        let filter = TicketFilter { channel: Some(channel), limit: 100, ..TicketFilter::default() };
        let page = self.store.tickets(&filter).await.unwrap();
        let mut out = Vec::new();
        for t in page.items {
            out.push(self.store.ticket(t.code).await.unwrap().unwrap());
        }
        out
    }

    /// Waits (up to 10 s) until the fake provider got a request matching `pred`.
    async fn wait_for(&self, what: &str, pred: impl Fn(&Seen) -> bool) -> Seen {
        for _ in 0..500 {
            if let Some(s) = self.seen.lock().unwrap().iter().find(|s| pred(s)) {
                return s.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the fake provider never received {what}; it got {:#?}", self.seen.lock().unwrap());
    }

    async fn wait_outbox(
        &self,
        id: i64,
        pred: impl Fn(&aduan_store::OutboxRow) -> bool,
    ) -> aduan_store::OutboxRow {
        for _ in 0..500 {
            if let Some(row) = self.store.outbox_row(id).await.unwrap()
                && pred(&row)
            {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("outbox row {id} never reached the state: {:?}", self.store.outbox_row(id).await);
    }

    async fn wait_sent(&self, n: usize) {
        for _ in 0..500 {
            if self.sent().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {n} sends, got {:#?}", self.sent());
    }

    fn sent(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.method == Method::POST).cloned().collect()
    }
}

fn fixture(rel: &str) -> Value {
    let path = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn now_secs() -> String {
    chrono::Utc::now().timestamp().to_string()
}

/// The WhatsApp text fixture, sent just now.
fn whatsapp_text(now: bool) -> Value {
    let mut doc = fixture("whatsapp-cloud-webhooks-pywa/message__text.json");
    if now {
        doc["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = now_secs().into();
    }
    doc
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_message_is_stored_once_and_acknowledged_on_whatsapp() {
    let env = env().await;
    let body = bytes(&whatsapp_text(true));
    assert_eq!(env.meta(&body).await, StatusCode::OK);
    // Meta delivers at least once: the same wamid again stores nothing new.
    assert_eq!(env.meta(&body).await, StatusCode::OK);
    let tickets = env.tickets(Channel::Whatsapp).await;
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0];
    let inbound: Vec<_> =
        t.messages.iter().filter(|m| m.direction == aduan_core::Direction::In).collect();
    assert_eq!(inbound.len(), 1);
    assert_eq!(inbound[0].text, "Body Text");
    assert_eq!(inbound[0].author.as_deref(), Some("Test Name"));

    let code = t.summary.code.to_string();
    let ack = env.wait_for("the WhatsApp receipt", |s| s.path.ends_with("/messages")).await;
    assert_eq!(ack.path, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(ack.auth.as_deref(), Some("Bearer wa-token"));
    assert_eq!(ack.body["to"], "972987654321");
    assert_eq!(ack.body["messaging_product"], "whatsapp");
    let text = ack.body["text"]["body"].as_str().unwrap();
    assert!(text.contains(&code) && text.starts_with("Terima kasih"), "{text}");
    let row = env.wait_outbox(1, |r| r.state == OutboxState::Sent).await;
    assert_eq!(row.purpose, Purpose::Ack);
    let wamid = row.provider_id.clone().unwrap();
    assert!(wamid.starts_with("wamid.OUT"), "{wamid}");
    assert_eq!(env.sent().len(), 1, "one receipt, not one per delivery");

    // WhatsApp then reports on what we sent: statuses update the row, and create nothing.
    let mut status = fixture("whatsapp-cloud-webhooks-pywa/message_status__delivered.json");
    status["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = wamid.clone().into();
    assert_eq!(env.meta(&bytes(&status)).await, StatusCode::OK);
    let row = env.wait_outbox(1, |r| r.receipt == Some(ReceiptStatus::Delivered)).await;
    assert_eq!(row.state, OutboxState::Sent);
    // An older receipt arriving late does not move it back.
    let mut sent = fixture("whatsapp-cloud-webhooks-pywa/message_status__sent.json");
    sent["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = wamid.clone().into();
    assert_eq!(env.meta(&bytes(&sent)).await, StatusCode::OK);
    let mut failed = fixture("whatsapp-cloud-webhooks-pywa/message_status__failed.json");
    failed["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = wamid.into();
    assert_eq!(env.meta(&bytes(&failed)).await, StatusCode::OK);
    let row = env.wait_outbox(1, |r| r.state == OutboxState::Dead).await;
    assert_eq!(row.receipt, Some(ReceiptStatus::Failed));
    assert!(row.last_error.as_deref().unwrap().contains("130472"), "{row:?}");
    assert_eq!(env.tickets(Channel::Whatsapp).await.len(), 1, "statuses open no ticket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messenger_and_instagram_receipts_reach_the_send_api() {
    let env = env().await;
    let mut fb = fixture(
        "messenger-webhooks-botman/FacebookDriver__it_returns_the_message__b40c64587d.json",
    );
    fb["entry"][0]["messaging"][0]["timestamp"] = (chrono::Utc::now().timestamp_millis()).into();
    let mut ig = fixture("instagram-webhooks-chatwoot/instagram__incoming_ig_text_message.json");
    ig["entry"][0]["messaging"][0]["timestamp"] = chrono::Utc::now().to_rfc3339().into();
    assert_eq!(env.meta(&bytes(&fb)).await, StatusCode::OK);
    assert_eq!(env.meta(&bytes(&ig)).await, StatusCode::OK);
    for (channel, psid) in
        [(Channel::Messenger, "1433960459967306"), (Channel::Instagram, "Sender-id-1")]
    {
        let tickets = env.tickets(channel).await;
        assert_eq!(tickets.len(), 1, "{channel}");
        let code = tickets[0].summary.code.to_string();
        let seen = env.wait_for("a Send API call", |s| s.body["recipient"]["id"] == psid).await;
        assert_eq!(seen.path, "/v21.0/me/messages");
        assert_eq!(seen.auth.as_deref(), Some("Bearer page-token"));
        assert_eq!(seen.body["messaging_type"], "RESPONSE");
        assert!(seen.body["message"]["text"].as_str().unwrap().contains(&code));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_24_hour_window_nothing_is_sent_and_operators_see_why() {
    let env = env().await;
    // The fixture's own time: October 2023.
    assert_eq!(env.meta(&bytes(&whatsapp_text(false))).await, StatusCode::OK);
    // A receipt has no fallback: it ends dead, with the reason.
    let row = env.wait_outbox(1, |r| r.state == OutboxState::Dead).await;
    assert_eq!(row.last_error.as_deref(), Some("undeliverable: window_closed"), "{row:?}");
    assert_eq!(row.attempts, 1, "not retried");
    assert!(env.sent().is_empty(), "nothing may be sent: {:?}", env.sent());
    let t = &env.tickets(Channel::Whatsapp).await[0];
    assert!(t.messages.iter().any(|m| m.delivery == Some(OutboxState::Dead)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_missing_and_reserialised_signatures_store_nothing() {
    let env = env().await;
    let doc = whatsapp_text(true);
    let body = serde_json::to_vec_pretty(&doc).unwrap();
    let genuine = sig::meta_signature(APP_SECRET.as_bytes(), &body);
    let compact = serde_json::to_vec(&doc).unwrap();
    assert_eq!(env.meta_with(&body, None).await, StatusCode::FORBIDDEN);
    assert_eq!(env.meta_with(&body, Some("sha256=00")).await, StatusCode::FORBIDDEN);
    assert_eq!(env.meta_with(&compact, Some(&genuine)).await, StatusCode::FORBIDDEN);
    let forged_x = Request::post("/hooks/x")
        .header("x-twitter-webhooks-signature", "sha256=AAAA")
        .body(Body::from(bytes(&fixture("x/dm_hello.json"))))
        .unwrap();
    assert_eq!(env.call(forged_x).await.0, StatusCode::FORBIDDEN);
    for channel in [Channel::Whatsapp, Channel::X] {
        assert!(env.tickets(channel).await.is_empty());
    }
    // The genuine bytes pass.
    assert_eq!(env.meta_with(&body, Some(&genuine)).await, StatusCode::OK);
    assert_eq!(env.tickets(Channel::Whatsapp).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_many_entries_is_stored_in_one_go() {
    let env = env().await;
    let one = whatsapp_text(true);
    let mut entries = Vec::new();
    for (i, from) in ["6281111111111", "6282222222222", "6283333333333"].into_iter().enumerate() {
        let mut entry = one["entry"][0].clone();
        let value = &mut entry["changes"][0]["value"];
        value["contacts"][0]["wa_id"] = from.into();
        value["messages"][0]["from"] = from.into();
        value["messages"][0]["id"] = format!("wamid.batch{i}").into();
        value["messages"][0]["text"]["body"] = format!("Jalan rusak nomor {i}").into();
        entries.push(entry);
    }
    let batch = json!({"object": "whatsapp_business_account", "entry": entries});
    assert_eq!(env.meta(&bytes(&batch)).await, StatusCode::OK);
    assert_eq!(env.meta(&bytes(&batch)).await, StatusCode::OK);
    let tickets = env.tickets(Channel::Whatsapp).await;
    assert_eq!(tickets.len(), 3);
    env.wait_sent(3).await;
    let mut to: Vec<String> =
        env.sent().iter().map(|s| s.body["to"].as_str().unwrap().to_owned()).collect();
    to.sort();
    assert_eq!(to, ["6281111111111", "6282222222222", "6283333333333"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_and_messenger_media_are_fetched_into_the_attachment_store() {
    let env = env().await;
    let mut image = fixture("whatsapp-cloud-webhooks-pywa/message__image.json");
    image["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = now_secs().into();
    assert_eq!(env.meta(&bytes(&image)).await, StatusCode::OK);
    let mut fb = fixture(
        "messenger-webhooks-botman/FacebookImageDriver__getCorrectRequestData__b701c817fa.json",
    );
    let event = &mut fb["entry"][0]["messaging"][0];
    event["timestamp"] = chrono::Utc::now().timestamp_millis().into();
    event["message"]["attachments"] =
        json!([{"type": "image", "payload": {"url": format!("{}/page-cdn/photo.png", env.base)}}]);
    assert_eq!(env.meta(&bytes(&fb)).await, StatusCode::OK);

    let attachment = loop_until_fetched(&env, Channel::Whatsapp).await;
    assert_eq!(attachment.content_type, "image/jpeg");
    let data = std::fs::read(
        env.attachments
            .join(&attachment.sha256[0..2])
            .join(&attachment.sha256[2..4])
            .join(&attachment.sha256),
    )
    .unwrap();
    assert_eq!(data, b"JPEG bytes of 65463453");
    assert_eq!(attachment.size, data.len() as u64);
    let lookup = env
        .wait_for("the media lookup", |s| s.method == Method::GET && s.path == "/v21.0/65463453")
        .await;
    assert_eq!(lookup.auth.as_deref(), Some("Bearer wa-token"));

    let page = loop_until_fetched(&env, Channel::Messenger).await;
    assert_eq!(page.content_type, "image/png", "the real type replaces image/*");
    assert_eq!(page.size, "PNG bytes of photo.png".len() as u64);
}

async fn loop_until_fetched(env: &Env, channel: Channel) -> aduan_core::AttachmentRef {
    for _ in 0..500 {
        let tickets = env.tickets(channel).await;
        if let Some(a) = tickets
            .iter()
            .flat_map(|t| &t.messages)
            .flat_map(|m| &m.attachments)
            .find(|a| !a.sha256.is_empty())
        {
            return a.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the {channel} attachment was never fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_dms_are_answered_by_dm_and_mentions_publicly_with_the_code_only() {
    let env = env().await;
    let crc = Request::get("/hooks/x?crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553")
        .body(Body::empty())
        .unwrap();
    let (status, body) = env.call(crc).await;
    assert_eq!(status, StatusCode::OK);
    let token =
        sig::x_signature(CONSUMER_SECRET.as_bytes(), b"9b4507b3-9040-4669-9ca3-6b94edb50553");
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), json!({"response_token": token}));

    assert_eq!(env.x(&bytes(&fixture("x/dm_hello.json"))).await, StatusCode::OK);
    assert_eq!(env.x(&bytes(&fixture("x/dm_echo.json"))).await, StatusCode::OK);
    let dm = env.wait_for("a DM", |s| s.path.starts_with("/2/dm_conversations")).await;
    assert_eq!(dm.path, "/2/dm_conversations/with/272953809/messages");
    assert_eq!(dm.auth.as_deref(), Some("Bearer x-token"));
    let tickets = env.tickets(Channel::X).await;
    assert_eq!(tickets.len(), 1, "the echo opened nothing");
    assert_eq!(tickets[0].messages[0].text, "Hello World & good wishes.");
    assert!(dm.body["text"].as_str().unwrap().contains(&tickets[0].summary.code.to_string()));

    assert_eq!(env.x(&bytes(&fixture("x/mention.json"))).await, StatusCode::OK);
    let reply = env.wait_for("a public reply", |s| s.path == "/2/tweets").await;
    assert_eq!(reply.body["reply"]["in_reply_to_tweet_id"], "1332557345071644672");
    let tickets = env.tickets(Channel::X).await;
    let mention = tickets.iter().find(|t| t.messages[0].text.contains("Save this")).unwrap();
    let code = mention.summary.code;
    assert_eq!(reply.body["text"], aduan_social::send::public_ack_text(code));
    let text = reply.body["text"].as_str().unwrap();
    assert!(!text.contains("Tanu") && !text.contains("24 jam"), "only the code in public: {text}");
    assert_eq!(env.sent().len(), 2, "one DM, one public reply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_verification_through_the_router() {
    let env = env().await;
    let get = |q: &str| Request::get(format!("/hooks/meta?{q}")).body(Body::empty()).unwrap();
    let (status, body) = env
        .call(get("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me"))
        .await;
    assert_eq!((status, body.as_ref()), (StatusCode::OK, b"1158201444".as_ref()));
    let (status, _) =
        env.call(get("hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Issue 14.1: the CRC signs what it is given with the consumer secret, exactly as X signs
/// a POST body. Asking it to sign a DM body must not yield a signature that gets the body
/// stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_x_crc_is_not_a_signing_oracle() {
    let env = env().await;
    let body = bytes(&fixture("x/dm_hello.json"));
    // The same DM as one compact line, the way an attacker would put it in a query.
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    for forged in [&body, &compact] {
        let token: String = form_urlencoded::byte_serialize(forged).collect();
        let crc = Request::get(format!("/hooks/x?crc_token={token}")).body(Body::empty()).unwrap();
        let (status, answer) = env.call(crc).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&answer));
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert!(answer.get("response_token").is_none(), "{answer}");
        assert!(answer["error"]["message"].is_string(), "a JSON error: {answer}");
        // Whatever the CRC answered, it does not sign the body.
        let signature = answer["response_token"].as_str().unwrap_or("sha256=").to_owned();
        let post = Request::post("/hooks/x")
            .header("content-type", "application/json")
            .header("x-twitter-webhooks-signature", signature)
            .body(Body::from(forged.clone()))
            .unwrap();
        assert_eq!(env.call(post).await.0, StatusCode::FORBIDDEN);
    }
    // Over-long and non-X-shaped tokens are refused; X's own shape is still answered.
    for bad in ["%7B%7D", "a%20b", &"A".repeat(129)] {
        let crc = Request::get(format!("/hooks/x?crc_token={bad}")).body(Body::empty()).unwrap();
        assert_eq!(env.call(crc).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }
    let crc = Request::get("/hooks/x?crc_token=NjM3ODU3NTYxNjEzNzQ2MDQ4OA%3D%3D")
        .body(Body::empty())
        .unwrap();
    assert_eq!(env.call(crc).await.0, StatusCode::OK);
    assert!(env.tickets(Channel::X).await.is_empty(), "nothing was stored");
}

/// Issue 14.9: a Messenger attachment URL naming a service on the daemon's network, or a
/// provider URL that redirects there, is never fetched; the message keeps the attachment
/// as an unfetched reference, and the real media is still fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_urls_on_internal_hosts_or_behind_redirects_are_not_fetched() {
    let env = env().await;
    let hits = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = hits.clone();
    let internal = Router::new().fallback(move |uri: Uri| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(uri.path().to_owned());
            "internal secrets"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let internal_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, internal).await;
    });

    let mut fb = fixture(
        "messenger-webhooks-botman/FacebookImageDriver__getCorrectRequestData__b701c817fa.json",
    );
    let event = &mut fb["entry"][0]["messaging"][0];
    event["timestamp"] = chrono::Utc::now().timestamp_millis().into();
    event["message"]["attachments"] = json!([
        {"type": "image", "payload": {"url": format!("{internal_base}/latest/meta-data")}},
        {"type": "image", "payload": {"url": format!("http://localhost:{}/x", internal_base.rsplit(':').next().unwrap())}},
        {"type": "image", "payload": {"url": format!("{}/redirect?to={internal_base}/admin", env.base)}},
        {"type": "image", "payload": {"url": format!("{}/page-cdn/real.png", env.base)}},
    ]);
    assert_eq!(env.meta(&bytes(&fb)).await, StatusCode::OK);
    let page = loop_until_fetched(&env, Channel::Messenger).await;
    assert_eq!(page.size, "PNG bytes of real.png".len() as u64);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tickets = env.tickets(Channel::Messenger).await;
    let attachments: Vec<_> =
        tickets.iter().flat_map(|t| &t.messages).flat_map(|m| &m.attachments).collect();
    assert_eq!(attachments.len(), 4, "the message keeps every attachment: {attachments:?}");
    assert_eq!(attachments.iter().filter(|a| a.sha256.is_empty()).count(), 3, "{attachments:?}");
    assert!(
        hits.lock().unwrap().is_empty(),
        "the internal service was reached: {:?}",
        hits.lock().unwrap()
    );
    // The redirect was asked for, and not followed.
    assert!(env.seen.lock().unwrap().iter().any(|s| s.path == "/redirect"));
}

// --- windows: an answer after the window: the template, then the answer ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_after_30_hours_goes_as_the_template_and_in_full_when_the_resident_writes() {
    let env = env().await;
    // The resident wrote 30 hours ago.
    let mut doc = whatsapp_text(false);
    let then = chrono::Utc::now() - chrono::Duration::hours(30);
    doc["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] =
        then.timestamp().to_string().into();
    assert_eq!(env.meta(&bytes(&doc)).await, StatusCode::OK);
    let code = env.tickets(Channel::Whatsapp).await[0].summary.code;
    env.wait_outbox(1, |r| r.state == OutboxState::Dead).await;
    let op = aduan_core::Actor::User("operator@banyumaskab.go.id".into());
    let reply = env.store.reply(code, "Jalan sudah ditambal.".into(), op).await.unwrap();

    // Not the answer (WhatsApp would refuse it: 131047) but the approved template.
    let tpl = env.wait_for("the template", |s| s.body["type"] == "template").await;
    assert_eq!(tpl.path, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(tpl.body["to"], "972987654321");
    assert_eq!(tpl.body["template"]["name"], "status_aduan");
    assert_eq!(tpl.body["template"]["language"]["code"], "id");
    let params: Vec<&str> = tpl.body["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    let link = format!("https://aduan.example.id/lacak/{code}");
    assert_eq!(params, [code.to_string().as_str(), "baru", link.as_str()]);
    let row =
        env.wait_outbox(reply.outbox_id, |r| r.state == OutboxState::WaitingForResident).await;
    assert!(row.provider_id.as_deref().unwrap().starts_with("wamid.OUT"), "{row:?}");
    assert!(!env.sent().iter().any(|s| s.body["type"] == "text"), "{:?}", env.sent());
    let view = env.store.ticket(code).await.unwrap().unwrap();
    let answer = view.messages.iter().find(|m| m.purpose == Some(Purpose::Reply)).unwrap();
    assert!(answer.delivery_note.as_deref().unwrap().starts_with("templat WhatsApp terkirim"));

    // The resident answers the template: their message opens the window, the answer goes.
    let mut again = whatsapp_text(true);
    again["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.AGAIN".into();
    assert_eq!(env.meta(&bytes(&again)).await, StatusCode::OK);
    let full = env
        .wait_for("the full answer", |s| s.body["text"]["body"] == "Jalan sudah ditambal.")
        .await;
    assert_eq!(full.body["to"], "972987654321");
    let view = env.store.ticket(code).await.unwrap().unwrap();
    let answer = view.messages.iter().find(|m| m.purpose == Some(Purpose::Reply)).unwrap();
    assert_eq!(answer.deliveries.len(), 2, "{answer:?}");
}
