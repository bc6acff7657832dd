//! A local Bot API server (axum on 127.0.0.1:0) speaking what the connector uses, as the
//! Bot API documents it: `getUpdates` (offset confirms earlier updates, long polls wait),
//! `getFile` and the file download, `sendMessage` (recorded; 429 with `retry_after` or a
//! 5xx on demand), `setWebhook`, `deleteWebhook`. Every call is recorded.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const TOKEN: &str = "123456:TEST-token_for-aduan";

#[derive(Debug, Clone)]
pub struct Sent {
    pub chat_id: i64,
    pub text: String,
    pub reply_to: Option<i64>,
    pub at: Instant,
}

/// A failing answer to sendMessage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// 429 with `parameters.retry_after` (seconds).
    TooManyRequests(u64),
    /// A 5xx with the Bot API's JSON error body.
    Server(u16),
    /// A 5xx with an HTML body, as a proxy in front of the Bot API answers.
    Gateway(u16),
}

/// One sendMessage call as the fake saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub chat_id: i64,
    pub at: Instant,
    pub status: u16,
}

#[derive(Default)]
struct St {
    /// Updates not yet confirmed, in id order.
    queue: Mutex<Vec<Value>>,
    /// Offsets of the getUpdates calls answered (`None`: no offset).
    offsets: Mutex<Vec<Option<i64>>>,
    /// When set, a getUpdates that would confirm updates never arrives (the process "died"
    /// while sending it): it hangs and confirms nothing.
    hold_confirmations: AtomicBool,
    held: AtomicI64,
    sent: Mutex<Vec<Sent>>,
    /// `retry_after` seconds of the next sendMessage answers (429), in order.
    throttle: Mutex<VecDeque<u64>>,
    throttled_at: Mutex<Vec<Instant>>,
    /// Scripted failures of sendMessage per chat, in order.
    failures: Mutex<HashMap<i64, VecDeque<Failure>>>,
    /// Every sendMessage call: chat, when, the status answered.
    attempts: Mutex<Vec<Attempt>>,
    files: Mutex<HashMap<String, (String, Vec<u8>)>>,
    downloads: Mutex<Vec<String>>,
    calls: Mutex<Vec<(String, Value)>>,
    next_message_id: AtomicI64,
}

#[derive(Clone)]
pub struct FakeBot {
    pub url: String,
    st: Arc<St>,
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn err(status: StatusCode, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({"ok": false, "error_code": status.as_u16(), "description": description});
    if let Some(p) = parameters {
        body["parameters"] = p;
    }
    (status, Json(body)).into_response()
}

impl FakeBot {
    pub async fn start() -> FakeBot {
        let st = Arc::new(St::default());
        st.next_message_id.store(9000, Ordering::SeqCst);
        let app = Router::new()
            .route("/{bot}/{method}", post(method))
            .route("/file/{bot}/{*path}", get(file))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeBot { url, st }
    }

    /// Queues updates for getUpdates.
    pub fn push_updates(&self, updates: impl IntoIterator<Item = Value>) {
        let mut q = self.st.queue.lock().unwrap();
        q.extend(updates);
        q.sort_by_key(|u| u["update_id"].as_i64());
    }

    pub fn add_file(&self, file_id: &str, path: &str, bytes: &[u8]) {
        self.st.files.lock().unwrap().insert(file_id.into(), (path.into(), bytes.to_vec()));
    }

    pub fn throttle_next_send(&self, retry_after: u64) {
        self.st.throttle.lock().unwrap().push_back(retry_after);
    }

    pub fn hold_confirmations(&self, on: bool) {
        self.st.hold_confirmations.store(on, Ordering::SeqCst);
    }

    /// getUpdates calls that hung because confirmations are held.
    pub fn held(&self) -> i64 {
        self.st.held.load(Ordering::SeqCst)
    }

    pub fn offsets(&self) -> Vec<Option<i64>> {
        self.st.offsets.lock().unwrap().clone()
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.st.sent.lock().unwrap().clone()
    }

    /// The next sendMessage calls to `chat_id` fail so, one each, in order.
    pub fn fail_sends(&self, chat_id: i64, failures: impl IntoIterator<Item = Failure>) {
        self.st.failures.lock().unwrap().entry(chat_id).or_default().extend(failures);
    }

    /// Every sendMessage call so far (also the failed ones).
    pub fn attempts(&self) -> Vec<Attempt> {
        self.st.attempts.lock().unwrap().clone()
    }

    pub fn throttled_at(&self) -> Vec<Instant> {
        self.st.throttled_at.lock().unwrap().clone()
    }

    pub fn downloads(&self) -> Vec<String> {
        self.st.downloads.lock().unwrap().clone()
    }

    /// Every call but getUpdates and sendMessage: (method, JSON body).
    pub fn calls(&self, name: &str) -> Vec<Value> {
        let calls = self.st.calls.lock().unwrap();
        calls.iter().filter(|(m, _)| m == name).map(|(_, v)| v.clone()).collect()
    }
}

/// The fields of a `multipart/form-data` body as a JSON object of strings (teloxide sends
/// methods that may carry a file, such as setWebhook, this way). Values that are JSON
/// (`allowed_updates`) are parsed.
fn form_fields(boundary: &str, body: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(body).ok()?;
    let mut fields = serde_json::Map::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else { continue };
        let name = head.split("name=\"").nth(1)?.split('"').next()?;
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let parsed = serde_json::from_str::<Value>(value)
            .ok()
            .filter(|v| v.is_array() || v.is_object())
            .unwrap_or_else(|| Value::String(value.to_owned()));
        fields.insert(name.to_owned(), parsed);
    }
    Some(Value::Object(fields))
}

async fn method(
    State(st): State<Arc<St>>,
    Path((bot, name)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    if bot != format!("bot{TOKEN}") {
        return err(StatusCode::NOT_FOUND, "Not Found", None);
    }
    let content_type =
        headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let parsed = match content_type.split_once("boundary=") {
        Some((_, boundary)) if content_type.starts_with("multipart/form-data") => {
            form_fields(boundary.trim_matches('"'), &body)
        }
        _ => serde_json::from_slice::<Value>(&body).ok(),
    };
    let Some(body) = parsed else {
        return err(StatusCode::BAD_REQUEST, "Bad Request: can't parse the request", None);
    };
    // "All methods in the Bot API are case-insensitive" (teloxide sends `SendMessage`).
    let name = match name.to_ascii_lowercase().as_str() {
        "getupdates" => "getUpdates",
        "sendmessage" => "sendMessage",
        "getfile" => "getFile",
        "setwebhook" => "setWebhook",
        "deletewebhook" => "deleteWebhook",
        _ => return err(StatusCode::NOT_FOUND, "Not Found: method not found", None),
    }
    .to_owned();
    match name.as_str() {
        "getUpdates" => get_updates(st, body).await,
        "sendMessage" => send_message(&st, &body),
        "getFile" => {
            st.calls.lock().unwrap().push((name, body.clone()));
            let id = body["file_id"].as_str().unwrap_or_default();
            match st.files.lock().unwrap().get(id) {
                Some((path, bytes)) => ok(json!({
                    "file_id": id, "file_unique_id": format!("u-{id}"),
                    "file_size": bytes.len(), "file_path": path,
                })),
                None => err(StatusCode::BAD_REQUEST, "Bad Request: invalid file_id", None),
            }
        }
        "setWebhook" | "deleteWebhook" => {
            st.calls.lock().unwrap().push((name, body));
            ok(json!(true))
        }
        _ => err(StatusCode::NOT_FOUND, "Not Found: method not found", None),
    }
}

async fn get_updates(st: Arc<St>, body: Value) -> Response {
    let offset = body["offset"].as_i64();
    let timeout = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0));
    let confirms = offset.is_some_and(|o| {
        st.queue.lock().unwrap().iter().any(|u| u["update_id"].as_i64().is_some_and(|id| id < o))
    });
    if confirms && st.hold_confirmations.load(Ordering::SeqCst) {
        st.held.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
    st.offsets.lock().unwrap().push(offset);
    let deadline = Instant::now() + timeout;
    loop {
        let batch: Vec<Value> = {
            let mut q = st.queue.lock().unwrap();
            if let Some(o) = offset {
                q.retain(|u| u["update_id"].as_i64().is_some_and(|id| id >= o));
            }
            q.iter().take(100).cloned().collect()
        };
        if !batch.is_empty() || Instant::now() >= deadline {
            return ok(Value::Array(batch));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn send_message(st: &St, body: &Value) -> Response {
    let response = answer_send(st, body);
    if let Some(chat_id) = body["chat_id"].as_i64() {
        st.attempts.lock().unwrap().push(Attempt {
            chat_id,
            at: Instant::now(),
            status: response.status().as_u16(),
        });
    }
    response
}

fn answer_send(st: &St, body: &Value) -> Response {
    let scripted = body["chat_id"]
        .as_i64()
        .and_then(|chat| st.failures.lock().unwrap().get_mut(&chat)?.pop_front());
    match scripted {
        Some(Failure::TooManyRequests(after)) => {
            st.throttled_at.lock().unwrap().push(Instant::now());
            return err(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too Many Requests: retry after {after}"),
                Some(json!({"retry_after": after})),
            );
        }
        Some(Failure::Server(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return err(status, status.canonical_reason().unwrap_or("Internal Server Error"), None);
        }
        Some(Failure::Gateway(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            let html = format!("<html><body><h1>{status}</h1>nginx</body></html>");
            return (status, [("content-type", "text/html")], html).into_response();
        }
        None => {}
    }
    if let Some(after) = st.throttle.lock().unwrap().pop_front() {
        st.throttled_at.lock().unwrap().push(Instant::now());
        return err(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too Many Requests: retry after {after}"),
            Some(json!({"retry_after": after})),
        );
    }
    let Some(chat_id) = body["chat_id"].as_i64() else {
        return err(StatusCode::BAD_REQUEST, "Bad Request: chat not found", None);
    };
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    if text.is_empty() || text.chars().count() > 4096 {
        return err(
            StatusCode::BAD_REQUEST,
            "Bad Request: message text is empty or too long",
            None,
        );
    }
    let reply_to = body["reply_parameters"]["message_id"].as_i64();
    st.sent.lock().unwrap().push(Sent {
        chat_id,
        text: text.clone(),
        reply_to,
        at: Instant::now(),
    });
    let id = st.next_message_id.fetch_add(1, Ordering::SeqCst);
    let chat = if chat_id < 0 {
        json!({"id": chat_id, "type": "supergroup", "title": "Grup"})
    } else {
        json!({"id": chat_id, "type": "private", "first_name": "Warga"})
    };
    ok(json!({
        "message_id": id,
        "date": 1_800_000_000,
        "chat": chat,
        "from": {"id": 123456, "is_bot": true, "first_name": "Aduan", "username": "aduan_bot"},
        "text": text,
    }))
}

async fn file(State(st): State<Arc<St>>, Path((bot, path)): Path<(String, String)>) -> Response {
    if bot != format!("bot{TOKEN}") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let files = st.files.lock().unwrap();
    match files.values().find(|(p, _)| *p == path) {
        Some((_, bytes)) => {
            st.downloads.lock().unwrap().push(path.clone());
            bytes.clone().into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
