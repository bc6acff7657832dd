//! The HTTP API, in memory: the router is driven with `oneshot` against a real SQLite store.

use std::collections::BTreeSet;
use std::sync::Arc;

use aduan_connector::{Rejection, Telemetry, Webhook, WebhookReply, WebhookRequest};
use aduan_core::{Channel, Identity, IdentityKind, InboundMessage, Sender, ThreadHints};
use aduan_store::{Scope, Store, StoreOptions, TicketFilter};
use aduan_web::auth::{generate_token, hash_token};
use aduan_web::{AppState, WebConfig, app};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Fixture {
    app: Router,
    store: Store,
    intake: String,
    read: String,
    admin: String,
    dir: tempfile::TempDir,
}

/// A webhook that accepts `X-Secret: s3cret` and turns `{"id","from","text"}` into a message.
struct FakeHook;

impl Webhook for FakeHook {
    fn path(&self) -> &'static str {
        "fake"
    }
    fn channel(&self) -> Channel {
        Channel::Telegram
    }
    fn precheck(&self, req: &WebhookRequest) -> Result<(), Rejection> {
        let secret = req.headers.get("x-secret").ok_or(Rejection::Unauthenticated("X-Secret"))?;
        if secret != "s3cret" {
            return Err(Rejection::Forbidden("X-Secret"));
        }
        Ok(())
    }
    fn handle(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        let secret = req.headers.get("x-secret").ok_or(Rejection::Unauthenticated("X-Secret"))?;
        if secret != "s3cret" {
            return Err(Rejection::Forbidden("X-Secret"));
        }
        let v: Value =
            serde_json::from_slice(&req.body).map_err(|e| Rejection::Malformed(e.to_string()))?;
        let field = |k: &str| {
            v[k].as_str().map(str::to_owned).ok_or_else(|| Rejection::Invalid(format!("no {k}")))
        };
        Ok(WebhookReply::Store {
            messages: vec![InboundMessage {
                channel: Channel::Telegram,
                provider_id: field("id")?,
                sender: Sender {
                    identity: Some(Identity::new(IdentityKind::Telegram, &field("from")?).unwrap()),
                    ..Sender::default()
                },
                text: field("text")?,
                attachments: vec![],
                location: None,
                received_at: chrono::Utc::now(),
                thread: ThreadHints::default(),
            }],
            body: None,
        })
    }
}

async fn fixture_with(config: impl FnOnce(&mut WebConfig)) -> Fixture {
    fixture_opts(StoreOptions::default(), config).await
}

async fn fixture_opts(opts: StoreOptions, config: impl FnOnce(&mut WebConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
    let store = Store::open(&url, opts).await.unwrap();
    store.migrate().await.unwrap();
    let mut tokens = Vec::new();
    for (name, scope) in [("app", Scope::Intake), ("dashboard", Scope::Read), ("ops", Scope::Admin)]
    {
        let token = generate_token();
        store.add_api_key(name.into(), scope, hash_token(&token)).await.unwrap();
        tokens.push(token);
    }
    let mut cfg =
        WebConfig { attachments_dir: dir.path().join("attachments"), ..WebConfig::default() };
    config(&mut cfg);
    let state = AppState::new(store.clone(), Arc::new(Telemetry::new()), cfg);
    let app = app(state, vec![Arc::new(FakeHook)]);
    let admin = tokens.pop().unwrap();
    let read = tokens.pop().unwrap();
    let intake = tokens.pop().unwrap();
    Fixture { app, store, intake, read, admin, dir }
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

struct Reply {
    status: StatusCode,
    body: Value,
    text: String,
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, body, text }
}

fn post(path: &str, token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(body.into()).unwrap()
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

fn complaint(id: &str) -> String {
    json!({
        "external_id": id,
        "sender": {"name": "Siti", "id": "u-77", "phone": "+6281234567890", "email": "siti@example.id"},
        "text": "Jalan berlubang di Desa Karangklesem",
        "location": {"lat": -7.4246, "lon": 109.2396}
    })
    .to_string()
}

async fn ticket_count(store: &Store) -> usize {
    store.tickets(&TicketFilter { limit: 500, ..Default::default() }).await.unwrap().items.len()
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi() {
    let f = fixture().await;
    let r = send(&f.app, get("/healthz", None)).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(send(&f.app, get("/readyz", None)).await.status, StatusCode::OK);
    let m = send(&f.app, get("/metrics", None)).await;
    for name in [
        "aduan_messages_received_total",
        "aduan_tickets_created_total",
        "aduan_outbound_sent_total",
        "aduan_outbound_failed_total",
    ] {
        assert!(m.text.contains(name), "{name} missing");
    }
    let doc = send(&f.app, get("/api/openapi.json", None)).await;
    assert_eq!(doc.body["openapi"], "3.0.3");
    for path in [
        "/api/v1/messages",
        "/api/v1/tickets",
        "/api/v1/tickets/{code}",
        "/api/v1/tickets/{code}/assign",
        "/api/v1/tickets/{code}/reply",
        "/api/v1/tickets/{code}/status",
        "/api/v1/tickets/{code}/merge",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(doc.body["paths"][path].is_object(), "{path} undocumented");
    }
    // Every documented path exists (a 404 from the fallback would say otherwise).
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        let concrete = path.replace("{code}", "ADU-00000000");
        for method in item.as_object().unwrap().keys() {
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let r = send(&f.app, req).await;
            assert!(
                r.status != StatusCode::NOT_FOUND || r.body["error"]["message"] != "no such path",
                "{method} {path} is documented but not routed"
            );
        }
    }
}

#[tokio::test]
async fn a_complaint_becomes_a_ticket_once() {
    let f = fixture().await;
    let first = send(&f.app, post("/api/v1/messages", Some(&f.intake), complaint("app-123"))).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let code = first.body["ticket"].as_str().unwrap().to_owned();
    assert!(regex_like_code(&code), "{code}");
    assert_eq!(first.body["duplicate"], false);
    assert!(first.body["message_id"].is_string());

    let again = send(&f.app, post("/api/v1/messages", Some(&f.intake), complaint("app-123"))).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["ticket"], code.as_str());
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["message_id"], first.body["message_id"]);

    // Codes are case-insensitive on input.
    let t =
        send(&f.app, get(&format!("/api/v1/tickets/{}", code.to_lowercase()), Some(&f.read))).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.body["code"], code.as_str());
    assert_eq!(t.body["status"], "new");
    assert_eq!(t.body["channel"], "web");
    assert_eq!(t.body["opd"], Value::Null);
    assert_eq!(t.body["overdue"], false);
    assert_eq!(t.body["location"], json!({"lat": -7.4246, "lon": 109.2396}));
    assert_eq!(t.body["reporter"]["name"], "Siti");
    let messages = t.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["direction"], "in");
    assert_eq!(messages[0]["channel"], "web");
    assert_eq!(messages[0]["text"], "Jalan berlubang di Desa Karangklesem");
    assert!(messages[0]["at"].as_str().unwrap().ends_with("+07:00"));
    assert!(t.body["first_response_due_at"].as_str().is_some());
    assert_eq!(t.body["events"][0]["kind"], "created");
    assert_eq!(ticket_count(&f.store).await, 1);
}

fn regex_like_code(code: &str) -> bool {
    code.len() == 12
        && code.starts_with("ADU-")
        && code[4..].chars().all(|c| "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c))
}

#[tokio::test]
async fn two_hundred_concurrent_posts_of_one_id_make_one_ticket() {
    let f = fixture().await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let app = f.app.clone();
        let token = f.intake.clone();
        tasks.push(tokio::spawn(async move {
            send(&app, post("/api/v1/messages", Some(&token), complaint("same-id"))).await
        }));
    }
    let mut created = 0;
    let mut codes = BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.status == StatusCode::CREATED || r.status == StatusCode::OK, "{}", r.text);
        if r.status == StatusCode::CREATED {
            created += 1;
        }
        codes.insert(r.body["ticket"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1);
    assert_eq!(codes.len(), 1);
    assert_eq!(ticket_count(&f.store).await, 1);
    let code = codes.into_iter().next().unwrap();
    let view = f.store.ticket(code.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(view.messages.len(), 1);
}

#[tokio::test]
async fn bad_requests_are_refused_and_leave_no_trace() {
    let f = fixture_with(|c| c.max_json_bytes = 64 * 1024).await;
    let cases: Vec<(Request<Body>, StatusCode, &str, Option<&str>)> = vec![
        (post("/api/v1/messages", Some(&f.intake), "{\"external_id\": "), StatusCode::BAD_REQUEST, "malformed_json", None),
        (post("/api/v1/messages", Some(&f.intake), "[1,2]"), StatusCode::BAD_REQUEST, "malformed_json", None),
        (post("/api/v1/messages", Some(&f.intake), "{\"external_id\":\"a\"}"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("text")),
        (post("/api/v1/messages", Some(&f.intake), "{\"text\":\"a\"}"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("external_id")),
        (post("/api/v1/messages", Some(&f.intake), "{\"external_id\":5,\"text\":\"a\"}"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("external_id")),
        (post("/api/v1/messages", Some(&f.intake), "{\"external_id\":\"a\",\"text\":\"   \"}"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("text")),
        (
            post("/api/v1/messages", Some(&f.intake), json!({"external_id":"a","text":"t","sender":{"phone":"nomor saya"}}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("sender.phone"),
        ),
        (
            post("/api/v1/messages", Some(&f.intake), json!({"external_id":"a","text":"t","sender":{"email":"siti"}}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("sender.email"),
        ),
        (
            post("/api/v1/messages", Some(&f.intake), json!({"external_id":"a","text":"t","location":{"lat":95,"lon":1}}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("location.lat"),
        ),
        (
            post("/api/v1/messages", Some(&f.intake), json!({"external_id":"a","text":"t","location":{"lat":-7}}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("location.lon"),
        ),
        (
            post("/api/v1/messages", Some(&f.intake), json!({"external_id":"a","text":"t","attachments":[{"filename":"a.jpg","content_type":"image/jpeg","data_base64":"%%%"}]}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("attachments[0].data_base64"),
        ),
        (
            post("/api/v1/messages", Some(&f.intake), json!({"external_id":"a","text":"t","attachments":"foto"}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("attachments"),
        ),
        (
            post("/api/v1/messages", Some(&f.intake), json!({"external_id":"a","text":"t","ticket":"ADU-1"}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("ticket"),
        ),
        (post("/api/v1/messages", None, complaint("a")), StatusCode::UNAUTHORIZED, "unauthenticated", None),
        (post("/api/v1/messages", Some("adu_wrong"), complaint("a")), StatusCode::UNAUTHORIZED, "unauthenticated", None),
        (post("/api/v1/messages", Some(&f.read), complaint("a")), StatusCode::FORBIDDEN, "insufficient_scope", None),
        (
            post("/api/v1/messages", Some(&f.intake), json!({"external_id":"a","text":"x".repeat(70_000)}).to_string()),
            StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None,
        ),
        (
            Request::post("/api/v1/messages")
                .header(header::AUTHORIZATION, format!("Bearer {}", f.intake))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(complaint("a")))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", None,
        ),
        (get("/api/v1/tickets/ADU-00000000", Some(&f.read)), StatusCode::NOT_FOUND, "not_found", None),
        (get("/api/v1/tickets/not-a-code", Some(&f.read)), StatusCode::NOT_FOUND, "not_found", None),
        (get("/api/v1/tickets?status=open", Some(&f.read)), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("status")),
        (get("/api/v1/tickets?limit=0", Some(&f.read)), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("limit")),
        (get("/api/v1/tickets?cursor=zzz", Some(&f.read)), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("cursor")),
        (get("/api/v1/tickets", Some(&f.intake)), StatusCode::FORBIDDEN, "insufficient_scope", None),
        (get("/nowhere", None), StatusCode::NOT_FOUND, "not_found", None),
        (get("/api/v1/tickets/%ff%fe", Some(&f.read)), StatusCode::NOT_FOUND, "not_found", None),
    ];
    for (req, status, code, field) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let r = send(&f.app, req).await;
        assert_eq!(r.status, status, "{what}: {}", r.text);
        assert_eq!(r.body["error"]["code"], code, "{what}: {}", r.text);
        assert!(r.body["error"]["message"].is_string(), "{what}");
        if let Some(field) = field {
            assert_eq!(r.body["error"]["field"], field, "{what}: {}", r.text);
        }
    }
    assert_eq!(ticket_count(&f.store).await, 0);
    assert!(!f.dir.path().join("attachments").exists());
}

#[tokio::test]
async fn junk_never_causes_a_server_error() {
    let f = fixture().await;
    let junk: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"\"text\"".to_vec(),
        b"{\"external_id\":{},\"text\":[]}".to_vec(),
        b"{\"external_id\":\"x\",\"text\":\"t\",\"sender\":[],\"location\":\"here\"}".to_vec(),
        b"{\"external_id\":\"x\",\"text\":\"t\",\"attachments\":[1,null,{}]}".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        "{\"external_id\":\"\u{0}\",\"text\":\"\u{feff}\"}".as_bytes().to_vec(),
        b"{\"opd\":null,\"status\":7,\"into\":false,\"text\":{}}".to_vec(),
    ];
    for path in [
        "/api/v1/messages",
        "/api/v1/tickets/ADU-00000000/assign",
        "/api/v1/tickets/ADU-00000000/reply",
        "/api/v1/tickets/ADU-00000000/status",
        "/api/v1/tickets/ADU-00000000/merge",
    ] {
        for body in &junk {
            let token = if path.ends_with("messages") { &f.intake } else { &f.admin };
            let r = send(&f.app, post(path, Some(token), body.clone())).await;
            assert!(r.status.is_client_error(), "{path} {body:?}: {} {}", r.status, r.text);
            assert!(r.body["error"]["code"].is_string(), "{path}: {}", r.text);
        }
    }
    assert_eq!(ticket_count(&f.store).await, 0);
}

#[tokio::test]
async fn attachments_are_written_by_content_hash() {
    let f = fixture().await;
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(b"\xff\xd8\xff\xe0 foto jalan");
    let body = json!({"external_id": "att-1", "text": "foto", "attachments": [
        {"filename": "../foto.jpg", "content_type": "image/jpeg", "data_base64": data}]});
    let r = send(&f.app, post("/api/v1/messages", Some(&f.intake), body.to_string())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let t = send(
        &f.app,
        get(&format!("/api/v1/tickets/{}", r.body["ticket"].as_str().unwrap()), Some(&f.read)),
    )
    .await;
    let a = &t.body["messages"][0]["attachments"][0];
    assert_eq!(a["filename"], "foto.jpg");
    assert_eq!(a["content_type"], "image/jpeg");
    assert_eq!(a["size"], 15);
    let hash = a["sha256"].as_str().unwrap();
    let path = f.dir.path().join("attachments").join(&hash[0..2]).join(&hash[2..4]).join(hash);
    assert_eq!(std::fs::read(path).unwrap(), b"\xff\xd8\xff\xe0 foto jalan");
}

#[tokio::test]
async fn api_attachments_over_the_senders_budget_are_not_written_and_the_ticket_says_so() {
    use base64::Engine;
    let opts = StoreOptions { attachment_bytes_per_hour: Some(100), ..StoreOptions::default() };
    let f = fixture_opts(opts, |_| {}).await;
    let photo = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![0xffu8; n]);
    let body = |id: &str, sizes: &[usize]| {
        let attachments: Vec<Value> = sizes
            .iter()
            .map(|n| json!({"filename": "f.jpg", "content_type": "image/jpeg", "data_base64": photo(*n)}))
            .collect();
        json!({"external_id": id, "sender": {"name": "Siti", "phone": "+6281234567890"},
               "text": "foto jalan", "attachments": attachments})
        .to_string()
    };
    // 60 bytes fit; the next 60 don't (100 an hour), the message is stored all the same.
    let r = send(&f.app, post("/api/v1/messages", Some(&f.intake), body("b1", &[60, 60]))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let code = r.body["ticket"].as_str().unwrap().to_owned();
    let t = send(&f.app, get(&format!("/api/v1/tickets/{code}"), Some(&f.read))).await;
    let atts = t.body["messages"][0]["attachments"].as_array().cloned().unwrap_or_default();
    let stored: Vec<bool> =
        atts.iter().map(|a| a["sha256"].as_str().is_some_and(|h| !h.is_empty())).collect();
    assert_eq!(stored, [true, false], "{}", t.text);
    assert!(t.text.contains("attachment_refused"), "{}", t.text);
    let files = walkdir(&f.dir.path().join("attachments"));
    assert_eq!(files, 1, "only the photo within the budget is on disk");
}

fn walkdir(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { walkdir(&e.path()) } else { 1 }).sum()
}

#[tokio::test]
async fn ticket_actions_follow_the_rules() {
    let f = fixture_with(|c| c.opds = Some(["DPU".to_string(), "DLH".to_string()].into())).await;
    let code = send(&f.app, post("/api/v1/messages", Some(&f.intake), complaint("a1"))).await.body
        ["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = send(&f.app, post("/api/v1/messages", Some(&f.intake), complaint("a2"))).await.body
        ["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = |action: &str| format!("/api/v1/tickets/{code}/{action}");

    let r =
        send(&f.app, post(&path("assign"), Some(&f.read), json!({"opd": "DPU"}).to_string())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r =
        send(&f.app, post(&path("assign"), Some(&f.admin), json!({"opd": "DINSOS"}).to_string()))
            .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("opd"))
    );
    let r = send(
        &f.app,
        post(&path("assign"), Some(&f.admin), json!({"opd": "DPU", "note": "jalan"}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["status"].clone(), r.body["opd"].clone()),
        (json!("assigned"), json!("DPU"))
    );

    let r = send(
        &f.app,
        post(&path("status"), Some(&f.admin), json!({"status": "rejected"}).to_string()),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("invalid_transition"))
    );
    let r = send(
        &f.app,
        post(&path("status"), Some(&f.admin), json!({"status": "finished"}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = send(
        &f.app,
        post(&path("status"), Some(&f.admin), json!({"status": "in_progress"}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["first_responded_at"].is_string());

    // The web resident left an email: the answer is queued for email, pending until the
    // email channel exists.
    let r = send(
        &f.app,
        post(&path("reply"), Some(&f.admin), json!({"text": "Sedang kami tangani."}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["reply"]["channel"], "email");
    assert_eq!(r.body["reply"]["delivery"], "pending");
    let out = r.body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (out["direction"].clone(), out["delivery"].clone()),
        (json!("out"), json!("pending"))
    );
    assert_eq!(out["author"], "apikey:ops");

    let r =
        send(&f.app, post(&path("merge"), Some(&f.admin), json!({"into": code}).to_string())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = send(
        &f.app,
        post(&path("merge"), Some(&f.admin), json!({"into": "ADU-ZZZZZZZZ"}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(
        &f.app,
        post(&path("merge"), Some(&f.admin), json!({"into": other.to_lowercase()}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["status"].clone(), r.body["merged_into"].clone()),
        (json!("merged"), json!(other))
    );

    let events: Vec<String> =
        send(&f.app, get(&format!("/api/v1/tickets/{code}"), Some(&f.read))).await.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(
        events,
        ["created", "assigned", "status_changed", "status_changed", "replied", "merged"]
    );
}

#[tokio::test]
async fn listing_pages_and_filters_over_http() {
    let f = fixture().await;
    for i in 0..5 {
        send(&f.app, post("/api/v1/messages", Some(&f.intake), complaint(&format!("l{i}")))).await;
    }
    let p1 = send(&f.app, get("/api/v1/tickets?limit=2", Some(&f.read))).await;
    assert_eq!(p1.body["items"].as_array().unwrap().len(), 2);
    let cursor = p1.body["next_cursor"].as_str().unwrap();
    let p2 =
        send(&f.app, get(&format!("/api/v1/tickets?limit=2&cursor={cursor}"), Some(&f.read))).await;
    assert_eq!(p2.body["items"].as_array().unwrap().len(), 2);
    assert_ne!(p1.body["items"][0]["code"], p2.body["items"][0]["code"]);
    let web = send(
        &f.app,
        get("/api/v1/tickets?channel=web&status=new&overdue=false&q=berlubang", Some(&f.admin)),
    )
    .await;
    assert_eq!(web.body["items"].as_array().unwrap().len(), 5);
    let sms = send(&f.app, get("/api/v1/tickets?channel=sms", Some(&f.read))).await;
    assert_eq!(sms.body["items"].as_array().unwrap().len(), 0);
    assert_eq!(sms.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn webhooks_store_before_they_answer_and_refuse_forgeries() {
    let f = fixture().await;
    let hook = |secret: Option<&str>, body: &str| {
        let mut b = Request::post("/hooks/fake");
        if let Some(s) = secret {
            b = b.header("x-secret", s);
        }
        b.body(Body::from(body.to_owned())).unwrap()
    };
    let body = json!({"id": "u-1", "from": "42", "text": "Lampu jalan mati"}).to_string();
    let r = send(&f.app, hook(None, &body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&f.app, hook(Some("guess"), &body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&f.app, hook(Some("s3cret"), "{not json")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(ticket_count(&f.store).await, 0);

    let r = send(&f.app, hook(Some("s3cret"), &body)).await;
    assert_eq!(r.status, StatusCode::OK);
    // Acknowledged means stored.
    assert_eq!(ticket_count(&f.store).await, 1);
    let r = send(&f.app, hook(Some("s3cret"), &body)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ticket_count(&f.store).await, 1);

    let m = send(&f.app, get("/metrics", None)).await.text;
    assert!(
        m.contains("aduan_webhook_rejected_total{channel=\"telegram\",reason=\"forbidden\"} 1"),
        "{m}"
    );
    assert!(m.contains(
        "aduan_webhook_rejected_total{channel=\"telegram\",reason=\"unauthenticated\"} 1"
    ));
    assert!(m.contains("aduan_messages_received_total{channel=\"telegram\"} 1"));
    assert!(m.contains("aduan_tickets_created_total{channel=\"telegram\"} 1"));
}

#[tokio::test]
async fn overdue_tickets_show_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
    let mut opts = StoreOptions::default();
    opts.sla.first_response = chrono::Duration::hours(-2);
    let store = Store::open(&url, opts).await.unwrap();
    store.migrate().await.unwrap();
    let token = generate_token();
    store.add_api_key("app".into(), Scope::Admin, hash_token(&token)).await.unwrap();
    let app = app(AppState::new(store, Arc::new(Telemetry::new()), WebConfig::default()), vec![]);
    let code =
        send(&app, post("/api/v1/messages", Some(&token), complaint("o1"))).await.body["ticket"]
            .as_str()
            .unwrap()
            .to_owned();
    send(
        &app,
        post(
            &format!("/api/v1/tickets/{code}/assign"),
            Some(&token),
            json!({"opd": "DPU"}).to_string(),
        ),
    )
    .await;
    let m = send(&app, get("/metrics", None)).await.text;
    assert!(m.contains("aduan_tickets_overdue{opd=\"DPU\"} 1"), "{m}");
    let overdue = send(&app, get("/api/v1/tickets?overdue=true", Some(&token))).await;
    assert_eq!(overdue.body["items"][0]["overdue"], true);
}

#[tokio::test]
async fn the_ticket_field_is_no_key_for_another_sender() {
    let f = fixture().await;
    let first = send(&f.app, post("/api/v1/messages", Some(&f.intake), complaint("k1"))).await;
    let code = first.body["ticket"].as_str().unwrap().to_owned();
    // Another app user names the ticket: they get their own.
    let stranger = json!({
        "external_id": "k2",
        "ticket": code,
        "sender": {"id": "u-99", "name": "Budi"},
        "text": "Nama: Budi. Alamat: Jl. Palsu 1",
    });
    let r = send(&f.app, post("/api/v1/messages", Some(&f.intake), stranger.to_string())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_ne!(r.body["ticket"], code.as_str(), "a stranger joined by code");
    let view = f.store.ticket(code.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        view.messages.iter().filter(|m| m.direction == aduan_core::Direction::In).count(),
        1
    );
    // The reporter naming it joins.
    let own = json!({
        "external_id": "k3",
        "ticket": code,
        "sender": {"id": "u-77"},
        "text": "tambahan",
    });
    let r = send(&f.app, post("/api/v1/messages", Some(&f.intake), own.to_string())).await;
    assert_eq!((r.status, r.body["ticket"].as_str()), (StatusCode::CREATED, Some(code.as_str())));
}

#[tokio::test]
async fn a_nul_in_text_or_name_is_cleaned_not_a_server_error() {
    let f = fixture().await;
    let body = json!({
        "external_id": "n\u{0}1",
        "sender": {"id": "u-1", "name": "Bu\u{0}di"},
        "text": "a\u{0}b",
    });
    let r = send(&f.app, post("/api/v1/messages", Some(&f.intake), body.to_string())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let code = r.body["ticket"].as_str().unwrap().parse().unwrap();
    let view = f.store.ticket(code).await.unwrap().unwrap();
    assert_eq!(view.messages[0].text, "ab");
    assert_eq!(view.reporter.unwrap().name.as_deref(), Some("Budi"));
}

/// A request body that never arrives and records whether anyone tried to read it.
struct Tripwire(Arc<std::sync::atomic::AtomicBool>);

impl http_body::Body for Tripwire {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        std::task::Poll::Pending
    }
}

/// Issue 21.6: a forged request with a 10 MiB body is refused before its body is read, when
/// the secret is in a header (webhooks) or the query (Open311 `api_key`).
#[tokio::test]
async fn a_wrong_secret_is_refused_before_the_body_is_read() {
    let f = fixture_with(|c| {
        c.services.push(aduan_web::Open311Service {
            service_code: "jalan".into(),
            service_name: "Jalan rusak".into(),
            description: "Jalan berlubang".into(),
            group: "Infrastruktur".into(),
            keywords: vec!["jalan".into()],
        });
    })
    .await;
    let ten_mib = (10 * 1024 * 1024).to_string();
    for (path, secret, content_type, want) in [
        ("/hooks/fake", Some("forged"), "application/json", StatusCode::FORBIDDEN),
        ("/hooks/fake", None, "application/json", StatusCode::UNAUTHORIZED),
        (
            "/open311/v2/requests.json?api_key=forged",
            None,
            "application/x-www-form-urlencoded",
            StatusCode::FORBIDDEN,
        ),
    ] {
        let read = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut b = Request::post(path)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, &ten_mib);
        if let Some(s) = secret {
            b = b.header("x-secret", s);
        }
        let req = b.body(Body::new(Tripwire(read.clone()))).unwrap();
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), send(&f.app, req))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer without the body"));
        assert_eq!(answer.status, want, "{path}: {}", answer.text);
        assert!(!read.load(std::sync::atomic::Ordering::SeqCst), "{path}: the body was read");
    }
    assert_eq!(ticket_count(&f.store).await, 0);

    // A valid api_key in the query is enough for Open311; the form needs none.
    let form = "service_code=jalan&address_string=Karangklesem&description=Jalan%20berlubang%20di%20Desa%20Karangklesem";
    let req = Request::post(format!("/open311/v2/requests.json?api_key={}", f.intake))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let answer = send(&f.app, req).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(ticket_count(&f.store).await, 1);
}

// --- incidents: one incident, many reports (issue 20) ---

#[tokio::test]
async fn incident_endpoints_need_scope_admin_and_answer_the_contract_shape() {
    let f = fixture().await;
    let mut codes = Vec::new();
    for id in ["i1", "i2", "i3"] {
        let r = send(&f.app, post("/api/v1/messages", Some(&f.intake), complaint(id))).await;
        let code = r.body["ticket"].as_str().unwrap().to_owned();
        // What the routing worker does for every new ticket.
        f.store.incident_index(code.parse().unwrap()).await.unwrap();
        codes.push(code);
    }
    let (a, b) = (&codes[0], &codes[1]);
    let path = format!("/api/v1/tickets/{b}/incident");
    let join = json!({"join": a}).to_string();
    // Scope read may not; bad bodies are 422 and change nothing.
    let r = send(&f.app, post(&path, Some(&f.read), join.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    for bad in [
        json!({}),
        json!({"join": a, "leave": true}),
        json!({"leave": false}),
        json!({"join": "ADU-nope"}),
        json!({"dismiss": 5}),
    ] {
        let r = send(&f.app, post(&path, Some(&f.admin), bad.to_string())).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", r.text);
    }
    let r = send(&f.app, post(&path, Some(&f.admin), json!({"join": b}).to_string())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a ticket with itself: {}", r.text);
    let r = send(&f.app, get(&format!("/api/v1/tickets/{b}"), Some(&f.admin))).await;
    assert!(r.body.get("incident").is_none(), "{}", r.text);
    assert_eq!(r.body["incident_suggestions"][0]["code"], json!(a), "{}", r.text);

    // Joined: the ticket JSON carries the incident, the list filter names its members.
    let r = send(&f.app, post(&path, Some(&f.admin), join)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["incident"]["id"].as_i64().unwrap();
    assert_eq!(r.body["incident"], json!({"id": id, "reports": 2}));
    let r = send(&f.app, get(&format!("/api/v1/tickets?incident={id}"), Some(&f.read))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let listed: Vec<&str> =
        r.body["items"].as_array().unwrap().iter().map(|t| t["code"].as_str().unwrap()).collect();
    assert_eq!(listed, [a.as_str(), b.as_str()]);
    let r = send(&f.app, get("/api/v1/tickets?incident=abc", Some(&f.read))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // The same complaint at the same spot is suggested to the third ticket, until dismissed.
    let c = &codes[2];
    let r = send(&f.app, get(&format!("/api/v1/tickets/{c}"), Some(&f.admin))).await;
    let s = &r.body["incident_suggestions"];
    assert_eq!(s.as_array().unwrap().len(), 1, "{}", r.text);
    assert!(s[0]["score"].as_f64().unwrap() >= 0.5, "{s}");
    assert!(s[0]["why"].as_str().unwrap().contains("(2 laporan, 0 m, 0 jam)"), "{s}");
    let dismiss = json!({"dismiss": s[0]["code"]}).to_string();
    let r =
        send(&f.app, post(&format!("/api/v1/tickets/{c}/incident"), Some(&f.admin), dismiss)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["incident_suggestions"], json!([]), "{}", r.text);

    // Leaving dissolves an incident of two.
    let r = send(&f.app, post(&path, Some(&f.admin), json!({"leave": true}).to_string())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body.get("incident").is_none(), "{}", r.text);
    let r = send(&f.app, get("/api/v1/stats", None)).await;
    assert_eq!(
        (r.body["incidents"].clone(), r.body["incident_reports"].clone()),
        (json!(0), json!(0))
    );
}
