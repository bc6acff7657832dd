//! Twilio and SMS Gateway for Android end to end, in one process: signed requests go
//! through the real router into a real SQLite store, the outbound worker sends the
//! answers, and a local HTTP server plays Twilio's Messages API and media, the Android
//! gateway's `/message`, and a Kannel `sendsms`, recording every request (Twilio and the
//! phone app have no server we could run here).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_core::{Actor, Direction, OutboxState, Purpose};
use aduan_sms::{AndroidConfig, DEFAULT_MAX_PARTS, KannelConfig, TwilioConfig, android, twilio};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body_util::BodyExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use tower::ServiceExt;

const PUBLIC: &str = "https://aduan.example.go.id";
const SID: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "twilio-auth-token";
const KEY: &str = "android-signing-key";
const INVALID_NUMBER: &str = "+6289999999999";

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    auth: Option<String>,
    body: String,
}

#[derive(Clone)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == key).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

async fn fake(
    State(f): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = String::from_utf8_lossy(&body).into_owned();
    let n = {
        let mut seen = f.seen.lock().unwrap();
        seen.push(Seen {
            method: method.clone(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            auth: auth.clone(),
            body: body.clone(),
        });
        seen.len()
    };
    let parts: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (Method::POST, ["2010-04-01", "Accounts", sid, "Messages.json"]) => {
            if *sid != SID || auth.as_deref() != Some(&basic(SID, TOKEN)) {
                return (StatusCode::UNAUTHORIZED, axum::Json(json!({"code": 20003})))
                    .into_response();
            }
            if form_value(&body, "To").as_deref() == Some(INVALID_NUMBER) {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400})),
                )
                    .into_response();
            }
            (
                StatusCode::CREATED,
                axum::Json(json!({"sid": format!("SMout{n}"), "status": "queued"})),
            )
                .into_response()
        }
        (Method::GET, ["media", name]) => {
            if auth.as_deref() != Some(&basic(SID, TOKEN)) {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            ([("content-type", "image/jpeg")], format!("JPEG bytes of {name}")).into_response()
        }
        (Method::POST, ["message"]) => {
            if auth.as_deref() != Some(&basic("aduan", "phone-pass")) {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            (StatusCode::ACCEPTED, axum::Json(json!({"id": format!("and{n}"), "state": "Pending"})))
                .into_response()
        }
        (Method::GET, ["cgi-bin", "sendsms"]) => {
            (StatusCode::ACCEPTED, "0: Accepted for delivery").into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

struct World {
    env: common::Env,
    seen: Arc<Mutex<Vec<Seen>>>,
    base: String,
}

async fn world() -> World {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().fallback(fake).with_state(Fake { seen: seen.clone() });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let b = base.clone();
    let env = common::env(PUBLIC, |cfg| {
        // Kannel first in the default order: the tests show answers follow the resident.
        cfg.kannel = Some(KannelConfig {
            secret: "kannel-secret".into(),
            sendsms_url: format!("{b}/cgi-bin/sendsms"),
            username: "aduan".into(),
            password: "secret".into(),
            from: Some("1708".into()),
            per_second: 10,
            max_parts: DEFAULT_MAX_PARTS,
            dlr_url: Some(format!("{PUBLIC}/hooks/kannel-dlr")),
        });
        cfg.twilio = Some(TwilioConfig {
            account_sid: SID.into(),
            auth_token: TOKEN.into(),
            from: Some("+15005550006".into()),
            api_url: b.clone(),
            segments_per_second: 10,
            max_parts: DEFAULT_MAX_PARTS,
            media_hosts: Vec::new(),
            status_callback: Some(format!("{PUBLIC}/hooks/twilio-status")),
        });
        cfg.android = Some(AndroidConfig {
            signing_key: KEY.into(),
            api_url: Some(b.clone()),
            username: "aduan".into(),
            password: "phone-pass".into(),
            per_minute: 60,
            max_parts: DEFAULT_MAX_PARTS,
        });
    })
    .await;
    World { env, seen, base }
}

impl World {
    async fn call(&self, req: Request<Body>) -> (StatusCode, String) {
        let resp = self.env.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn twilio(&self, params: &[(&str, String)], token: &str) -> (StatusCode, String) {
        let owned: Vec<(String, String)> =
            params.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let url = format!("{PUBLIC}/hooks/twilio");
        let sig = twilio::signature(token, &url, &owned);
        let body = owned
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect::<Vec<_>>()
            .join("&");
        let req = Request::post("/hooks/twilio")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(Body::from(body))
            .unwrap();
        self.call(req).await
    }

    async fn android(&self, body: &Value, key: &str, ts: i64) -> (StatusCode, String) {
        let body = body.to_string();
        let ts = ts.to_string();
        let req = Request::post("/hooks/android-sms")
            .header("content-type", "application/json")
            .header("x-signature", android::signature(key, body.as_bytes(), &ts))
            .header("x-timestamp", ts)
            .body(Body::from(body))
            .unwrap();
        self.call(req).await
    }

    async fn wait_seen(&self, what: &str, pred: impl Fn(&Seen) -> bool) -> Seen {
        for _ in 0..300 {
            if let Some(s) = self.seen.lock().unwrap().iter().find(|s| pred(s)) {
                return s.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the fake gateway never received {what}; it got {:#?}", self.seen.lock().unwrap());
    }

    fn count(&self, pred: impl Fn(&Seen) -> bool) -> usize {
        self.seen.lock().unwrap().iter().filter(|s| pred(s)).count()
    }
}

fn sms(sid: &str, from: &str, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ToCountry", "US".into()),
        ("SmsMessageSid", sid.into()),
        ("NumMedia", "0".into()),
        ("SmsSid", sid.into()),
        ("SmsStatus", "received".into()),
        ("Body", body.into()),
        ("FromCountry", "ID".into()),
        ("To", "+15005550006".into()),
        ("NumSegments", "1".into()),
        ("MessageSid", sid.into()),
        ("AccountSid", SID.into()),
        ("From", from.into()),
        ("ApiVersion", "2010-04-01".into()),
    ]
}

fn is_twilio_send(s: &Seen) -> bool {
    s.method == Method::POST && s.path.ends_with("/Messages.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_end_to_end() {
    let w = world().await;

    // An MMS: stored with its photo, answered through Twilio (not Kannel, first in order).
    let mut mms =
        sms("SM10000000000000000000000000000001", "+6281234567890", "Pohon tumbang menutup jalan");
    mms.retain(|(k, _)| *k != "NumMedia");
    mms.push(("NumMedia", "1".into()));
    mms.push(("MediaUrl0", format!("{}/media/pohon.jpg", w.base)));
    mms.push(("MediaContentType0", "image/jpeg".into()));
    let (status, body) = w.twilio(&mms, TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("<Response></Response>"), "{body}");
    let tickets = w.env.sms_tickets().await;
    assert_eq!(tickets.len(), 1);
    let code = tickets[0].summary.code;
    let ack = w.wait_seen("the receipt", is_twilio_send).await;
    assert_eq!(ack.auth.as_deref(), Some(basic(SID, TOKEN).as_str()));
    assert_eq!(form_value(&ack.body, "To").as_deref(), Some("+6281234567890"));
    assert_eq!(form_value(&ack.body, "From").as_deref(), Some("+15005550006"));
    let text = form_value(&ack.body, "Body").unwrap();
    assert!(text.contains(&code.to_string()), "{text}");
    assert_eq!(aduan_sms::split::parts(&text), 1, "{text}");
    assert_eq!(w.count(|s| s.path == "/cgi-bin/sendsms"), 0);
    let t = w
        .env
        .wait_tickets(10, "the photo fetched and the receipt sent", |t| {
            let m = &t[0].messages;
            m.iter().any(|m| m.attachments.iter().any(|a| !a.sha256.is_empty()))
                && m.iter().any(|m| {
                    m.purpose == Some(Purpose::Ack) && m.delivery == Some(OutboxState::Sent)
                })
        })
        .await;
    let photo = &t[0].messages[0].attachments[0];
    let h = &photo.sha256;
    let stored = std::fs::read(w.env.attachments.join(&h[..2]).join(&h[2..4]).join(h)).unwrap();
    assert_eq!(stored, b"JPEG bytes of pohon.jpg");
    assert_eq!(photo.content_type, "image/jpeg");

    // Delivered again (Twilio retries): one message, one receipt.
    let (status, _) = w.twilio(&mms, TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = w.env.sms_tickets().await;
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].messages.iter().filter(|m| m.direction == Direction::In).count(), 1);
    assert_eq!(w.count(is_twilio_send), 1);

    // Forged: 403 and nothing stored.
    let forged = sms("SM10000000000000000000000000000002", "+6281111111111", "Palsu");
    let (status, _) = w.twilio(&forged, "guessed-token").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(w.env.sms_tickets().await.len(), 1);

    // The same resident writes again through Kannel: the operator's answer goes by Kannel.
    let q = format!(
        "secret=kannel-secret&from=%2B6281234567890&to=1708&text=Sudah+dua+hari&charset=UTF-8&coding=0&ts={}&id=7f0e3a52-0000-4000-8000-000000000001",
        chrono::Utc::now().timestamp()
    );
    let (status, _) =
        w.call(Request::get(format!("/hooks/kannel?{q}")).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let tickets = w.env.sms_tickets().await;
    let via_kannel = tickets
        .iter()
        .find(|t| t.messages.iter().any(|m| m.text == "Sudah dua hari"))
        .expect("stored");
    w.env
        .store
        .reply(
            via_kannel.summary.code,
            "Petugas sedang menuju lokasi.".into(),
            Actor::User("op@aduan.test".into()),
        )
        .await
        .unwrap();
    let sent = w.wait_seen("the answer by Kannel", |s| s.query.contains("Petugas")).await;
    assert!(sent.query.contains("to=%2B6281234567890"), "{}", sent.query);

    // A number Twilio refuses: the receipt ends `dead` on the ticket, it is not retried.
    let bad = sms("SM10000000000000000000000000000003", INVALID_NUMBER, "Jalan rusak");
    assert_eq!(w.twilio(&bad, TOKEN).await.0, StatusCode::OK);
    w.env
        .wait_tickets(10, "the receipt to an invalid number dead", |t| {
            t.iter().any(|t| {
                t.messages.iter().any(|m| {
                    m.purpose == Some(Purpose::Ack) && m.delivery == Some(OutboxState::Dead)
                })
            })
        })
        .await;
    assert_eq!(w.count(|s| is_twilio_send(s) && s.body.contains("6289999999999")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn android_gateway_end_to_end() {
    let w = world().await;
    let now = chrono::Utc::now().timestamp();
    let event = |id: &str, text: &str| {
        json!({
            "deviceId": "ffffffffceb0b1db0000018e937c815b",
            "event": "sms:received",
            "id": id,
            "payload": {"messageId": "abc", "message": text, "phoneNumber": "+6285600000002",
                        "simNumber": 1, "receivedAt": "2026-11-29T09:00:00.000+07:00"},
            "webhookId": "wh"
        })
    };
    // Stale and badly signed requests: 403, nothing stored.
    let (status, _) = w.android(&event("ev-old", "Lama"), KEY, now - 600).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.android(&event("ev-bad", "Palsu"), "other-key", now).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(w.env.sms_tickets().await.is_empty());

    let (status, body) =
        w.android(&event("ev-1", "Saluran air tersumbat di Kelurahan Sokanegara"), KEY, now).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The app retries: the same event id stores nothing new.
    assert_eq!(
        w.android(&event("ev-1", "Saluran air tersumbat di Kelurahan Sokanegara"), KEY, now)
            .await
            .0,
        StatusCode::OK
    );
    let tickets = w.env.sms_tickets().await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].messages.iter().filter(|m| m.direction == Direction::In).count(), 1);
    let code = tickets[0].summary.code.to_string();
    let sent = w.wait_seen("the receipt", |s| s.path == "/message").await;
    assert_eq!(sent.auth.as_deref(), Some(basic("aduan", "phone-pass").as_str()));
    let doc: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(doc["phoneNumbers"], json!(["+6285600000002"]));
    assert!(doc["textMessage"]["text"].as_str().unwrap().contains(&code));
    w.env
        .wait_tickets(10, "the receipt sent", |t| {
            t[0].messages
                .iter()
                .any(|m| m.purpose == Some(Purpose::Ack) && m.delivery == Some(OutboxState::Sent))
        })
        .await;
    assert_eq!(w.count(|s| s.path == "/cgi-bin/sendsms" || is_twilio_send(s)), 0);
}

// --- receipts: Twilio status callbacks and Kannel delivery reports ---

impl World {
    /// A status callback as Twilio posts it to `{PUBLIC}/hooks/twilio-status?{query}`.
    async fn twilio_status(
        &self,
        query: &str,
        params: &[(&str, &str)],
        token: &str,
    ) -> (StatusCode, String) {
        let owned: Vec<(String, String)> =
            params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let url = format!("{PUBLIC}/hooks/twilio-status?{query}");
        let sig = twilio::signature(token, &url, &owned);
        let body = owned
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect::<Vec<_>>()
            .join("&");
        let req = Request::post(format!("/hooks/twilio-status?{query}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(Body::from(body))
            .unwrap();
        self.call(req).await
    }

    /// The delivery shown on the `nth` answer of the (only) SMS ticket.
    async fn shown(&self, nth: usize) -> (String, Option<String>) {
        let tickets = self.env.sms_tickets().await;
        let m = tickets[0].messages.iter().filter(|m| m.direction == Direction::Out).nth(nth);
        let d = m.and_then(|m| m.receipt.as_ref()).unwrap_or_else(|| panic!("no answer {nth}"));
        (d.status.to_owned(), d.error.clone())
    }

    async fn metrics(&self) -> String {
        self.call(Request::get("/metrics").body(Body::empty()).unwrap()).await.1
    }
}

fn status(sid: &str, status: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MessageSid", sid.to_owned()),
        ("SmsSid", sid.to_owned()),
        ("MessageStatus", status.to_owned()),
        ("SmsStatus", status.to_owned()),
        ("AccountSid", SID.to_owned()),
        ("From", "+15005550006".to_owned()),
        ("To", "+6281234567890".to_owned()),
        ("ApiVersion", "2010-04-01".to_owned()),
    ]
}

fn borrowed<'a>(p: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    p.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_status_callbacks_become_receipts() {
    let w = world().await;
    let inbound = sms("SM20000000000000000000000000000001", "+6281234567890", "Lampu jalan mati");
    assert_eq!(w.twilio(&inbound, TOKEN).await.0, StatusCode::OK);
    // The answer asks Twilio for status callbacks naming its outbox row.
    let ack = w.wait_seen("the receipt", is_twilio_send).await;
    let callback = form_value(&ack.body, "StatusCallback").expect("a StatusCallback");
    let row: i64 = callback
        .strip_prefix(&format!("{PUBLIC}/hooks/twilio-status?row="))
        .unwrap_or_else(|| panic!("{callback}"))
        .parse()
        .unwrap();
    w.env
        .wait_tickets(10, "the receipt sent", |t| {
            t[0].messages.iter().any(|m| m.delivery == Some(OutboxState::Sent))
        })
        .await;
    let sid = w.env.store.outbox_row(row).await.unwrap().unwrap().provider_id.unwrap();
    let sid = sid.strip_prefix("twilio:").unwrap().to_owned();
    let q = format!("row={row}");

    // Delivered, then a late "sent" and a "queued": the receipt stays delivered.
    for s in ["delivered", "sent", "queued"] {
        let (code, body) = w.twilio_status(&q, &borrowed(&status(&sid, s)), TOKEN).await;
        assert_eq!(code, StatusCode::OK, "{s}: {body}");
    }
    assert_eq!(w.shown(0).await, ("delivered".into(), None));

    // Forged, tampered and malformed callbacks change nothing.
    let failed = {
        let mut p = status(&sid, "undelivered");
        p.push(("ErrorCode", "30003".into()));
        p
    };
    let (code, _) = w.twilio_status(&q, &borrowed(&failed), "guessed-token").await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = w.twilio_status("row=abc", &borrowed(&failed), TOKEN).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let mut no_status = status(&sid, "failed");
    no_status.retain(|(k, _)| *k != "MessageStatus" && *k != "SmsStatus");
    let (code, _) = w.twilio_status(&q, &borrowed(&no_status), TOKEN).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.shown(0).await, ("delivered".into(), None));
    assert!(w.metrics().await.contains("aduan_delivery_failed_total{channel=\"sms\"} 0"));

    // An operator's answer Twilio could not deliver: failed with its code, counted, final.
    let code = w.env.sms_tickets().await[0].summary.code;
    w.env
        .store
        .reply(code, "Petugas akan datang.".into(), Actor::User("op@aduan.test".into()))
        .await
        .unwrap();
    let answer =
        w.wait_seen("the answer", |s| is_twilio_send(s) && s.body.contains("Petugas")).await;
    let row2: i64 = form_value(&answer.body, "StatusCallback")
        .unwrap()
        .rsplit('=')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    w.env
        .wait_tickets(10, "the answer sent", |t| {
            t[0].messages.iter().filter(|m| m.delivery == Some(OutboxState::Sent)).count() == 2
        })
        .await;
    let sid2 = w.env.store.outbox_row(row2).await.unwrap().unwrap().provider_id.unwrap();
    let sid2 = sid2.strip_prefix("twilio:").unwrap().to_owned();
    let mut failed = status(&sid2, "undelivered");
    failed.push(("ErrorCode", "30003".into()));
    let q2 = format!("row={row2}");
    assert_eq!(w.twilio_status(&q2, &borrowed(&failed), TOKEN).await.0, StatusCode::OK);
    assert_eq!(
        w.twilio_status(&q2, &borrowed(&status(&sid2, "delivered")), TOKEN).await.0,
        StatusCode::OK
    );
    assert_eq!(
        w.shown(1).await,
        ("failed".into(), Some("delivery failed: twilio undelivered (error 30003)".into()))
    );
    assert_eq!(w.env.store.outbox_row(row2).await.unwrap().unwrap().state, OutboxState::Dead);
    let metrics = w.metrics().await;
    assert!(metrics.contains("aduan_delivery_failed_total{channel=\"sms\"} 1"), "{metrics}");
    // The first answer's receipt is untouched by the second's callbacks.
    assert_eq!(w.shown(0).await, ("delivered".into(), None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_delivery_reports_become_receipts() {
    let w = world().await;
    let q = format!(
        "secret=kannel-secret&from=%2B6281234567891&to=1708&text=Banjir+di+Pasir+Kulon&charset=UTF-8&coding=0&ts={}&id=7f0e3a52-0000-4000-8000-0000000000d1",
        chrono::Utc::now().timestamp()
    );
    let (code, _) =
        w.call(Request::get(format!("/hooks/kannel?{q}")).body(Body::empty()).unwrap()).await;
    assert_eq!(code, StatusCode::OK);
    let sent = w.wait_seen("the receipt by Kannel", |s| s.path == "/cgi-bin/sendsms").await;
    // sendsms asks for every kind of report, at a URL naming the row, with the secret.
    assert_eq!(form_value(&sent.query, "dlr-mask").as_deref(), Some("31"));
    let dlr = form_value(&sent.query, "dlr-url").expect("a dlr-url");
    let prefix = format!("{PUBLIC}/hooks/kannel-dlr?secret=kannel-secret&row=");
    let rest = dlr.strip_prefix(&prefix).unwrap_or_else(|| panic!("{dlr}"));
    let (row, tail) = rest.split_once('&').unwrap();
    assert_eq!(tail, "type=%d&answer=%A");
    let row: i64 = row.parse().unwrap();
    w.env
        .wait_tickets(10, "the receipt sent", |t| {
            t[0].messages.iter().any(|m| m.delivery == Some(OutboxState::Sent))
        })
        .await;
    // smsbox calls the URL with %d and %A filled in.
    let report = |url: &str, kind: &str, answer: &str| {
        let path = url
            .strip_prefix(PUBLIC)
            .unwrap()
            .replace("%d", kind)
            .replace("%A", &utf8_percent_encode(answer, NON_ALPHANUMERIC).to_string());
        Request::get(path).body(Body::empty()).unwrap()
    };
    for kind in ["1", "8", "4"] {
        let (code, body) = w.call(report(&dlr, kind, "ACK/")).await;
        assert_eq!(code, StatusCode::OK, "{kind}: {body}");
    }
    assert_eq!(w.shown(0).await, ("delivered".into(), None));
    let sent_row = w.env.store.outbox_row(row).await.unwrap().unwrap();
    assert_eq!(sent_row.provider_id, Some(format!("kannel:out-{row}")));

    // Without the secret, with another one, or garbled: refused, nothing changes.
    let forged = dlr.replace("secret=kannel-secret", "secret=guess");
    assert_eq!(w.call(report(&forged, "16", "")).await.0, StatusCode::FORBIDDEN);
    let bare = dlr.replace("secret=kannel-secret&", "");
    assert_eq!(w.call(report(&bare, "16", "")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(w.call(report(&dlr, "x", "")).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(w.call(report(&dlr, "3", "")).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.shown(0).await, ("delivered".into(), None));

    // An answer the SMSC rejects: failed with the SMPP codes, never the quoted text.
    let code = w.env.sms_tickets().await[0].summary.code;
    w.env
        .store
        .reply(code, "Tim BPBD menuju lokasi.".into(), Actor::User("op@aduan.test".into()))
        .await
        .unwrap();
    let answer = w.wait_seen("the answer", |s| s.query.contains("BPBD")).await;
    let dlr2 = form_value(&answer.query, "dlr-url").unwrap();
    let row2: i64 = dlr2.split("row=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
    w.env
        .wait_tickets(10, "the answer sent", |t| {
            t[0].messages.iter().filter(|m| m.delivery == Some(OutboxState::Sent)).count() == 2
        })
        .await;
    let smpp = "id:0123 sub:001 dlvrd:000 submit date:2612041200 done date:2612041201 stat:REJECTD err:088 text:Tim BPBD menuju";
    assert_eq!(w.call(report(&dlr2, "16", smpp)).await.0, StatusCode::OK);
    let (shown, error) = w.shown(1).await;
    assert_eq!(shown, "failed");
    assert_eq!(
        error.as_deref(),
        Some("delivery failed: kannel DLR 16: rejected by the SMSC (stat:REJECTD err:088)")
    );
    assert_eq!(w.env.store.outbox_row(row2).await.unwrap().unwrap().state, OutboxState::Dead);
    let metrics = w.metrics().await;
    assert!(metrics.contains("aduan_delivery_failed_total{channel=\"sms\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn android_status_events_become_receipts() {
    let w = world().await;
    let now = chrono::Utc::now().timestamp();
    let received = json!({
        "deviceId": "ffffffffceb0b1db0000018e937c815b", "event": "sms:received", "id": "ev-r1",
        "payload": {"messageId": "abc", "message": "Jembatan retak di Desa Ledug",
                    "phoneNumber": "+6285600000003", "simNumber": 1,
                    "receivedAt": "2026-11-29T09:00:00.000+07:00"},
        "webhookId": "wh"
    });
    assert_eq!(w.android(&received, KEY, now).await.0, StatusCode::OK);
    w.wait_seen("the receipt", |s| s.path == "/message").await;
    w.env
        .wait_tickets(10, "the receipt sent", |t| {
            t[0].messages.iter().any(|m| m.delivery == Some(OutboxState::Sent))
        })
        .await;
    let sent = w.env.store.outbox_row(1).await.unwrap().unwrap().provider_id.unwrap();
    let id = sent.strip_prefix("android:").unwrap().to_owned();
    let event = |kind: &str, ev: &str, id: &str, extra: Value| {
        let mut payload = json!({"messageId": id, "phoneNumber": "+6285600000003", "simNumber": 1});
        payload.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"deviceId": "ffffffffceb0b1db0000018e937c815b", "event": kind, "id": ev,
               "payload": payload, "webhookId": "wh2"})
    };
    let delivered = event(
        "sms:delivered",
        "ev-d1",
        &id,
        json!({"deliveredAt": "2026-11-29T09:01:00.000+07:00"}),
    );
    // Forged: refused, nothing changes.
    assert_eq!(w.android(&delivered, "other-key", now).await.0, StatusCode::FORBIDDEN);
    assert_eq!(w.shown(0).await, ("sent".into(), None));
    assert_eq!(w.android(&delivered, KEY, now).await.0, StatusCode::OK);
    let late = event("sms:sent", "ev-s1", &id, json!({"sentAt": "2026-11-29T09:00:30.000+07:00"}));
    assert_eq!(w.android(&late, KEY, now).await.0, StatusCode::OK);
    assert_eq!(w.shown(0).await, ("delivered".into(), None));
    let no_id = event("sms:failed", "ev-f0", "", json!({}));
    assert_eq!(w.android(&no_id, KEY, now).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    let code = w.env.sms_tickets().await[0].summary.code;
    w.env
        .store
        .reply(code, "Sudah kami laporkan.".into(), Actor::User("op@aduan.test".into()))
        .await
        .unwrap();
    w.env
        .wait_tickets(10, "the answer sent", |t| {
            t[0].messages.iter().filter(|m| m.delivery == Some(OutboxState::Sent)).count() == 2
        })
        .await;
    let sent = w.env.store.outbox_row(2).await.unwrap().unwrap().provider_id.unwrap();
    let failed = event(
        "sms:failed",
        "ev-f1",
        sent.strip_prefix("android:").unwrap(),
        json!({"reason": "RESULT_ERROR_GENERIC_FAILURE", "failedAt": "2026-11-29T09:05:00.000+07:00"}),
    );
    assert_eq!(w.android(&failed, KEY, now).await.0, StatusCode::OK);
    assert_eq!(
        w.shown(1).await,
        ("failed".into(), Some("delivery failed: android: RESULT_ERROR_GENERIC_FAILURE".into()))
    );
    assert!(w.metrics().await.contains("aduan_delivery_failed_total{channel=\"sms\"} 1"));
}
