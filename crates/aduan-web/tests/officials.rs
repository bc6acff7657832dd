//! Officials' one-click action links (`/aksi/{token}`, issue 19 item 5), in memory: a GET
//! never acts, a POST acts once, a used, expired, tampered, cross-site or other-OPD link is
//! refused with its status and changes nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use aduan_connector::Telemetry;
use aduan_core::action_link::{ActionClaim, ActionKey, OfficialAction};
use aduan_core::{
    Actor, Channel, Identity, InboundMessage, Sender, Status, ThreadHints, TicketCode,
};
use aduan_store::{Store, StoreOptions};
use aduan_web::{AppState, WebConfig, app};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

struct Fx {
    app: Router,
    store: Store,
    _dir: tempfile::TempDir,
}

fn key() -> ActionKey {
    ActionKey::new(b"web-officials-test-key-0123").unwrap()
}

async fn fx() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
    let opts = StoreOptions { ack_template: None, ..StoreOptions::default() };
    let store = Store::open(&url, opts).await.unwrap();
    store.migrate().await.unwrap();
    let mut config = WebConfig {
        attachments_dir: dir.path().join("att"),
        public_url: "https://aduan.example.go.id".into(),
        public_requests_per_minute: 1000,
        action_key: Some(key()),
        ..WebConfig::default()
    };
    config.opd_names.insert("DPU".into(), "Dinas Pekerjaan Umum".into());
    let app = app(AppState::new(store.clone(), Arc::new(Telemetry::new()), config), vec![]);
    Fx { app, store, _dir: dir }
}

async fn ticket(store: &Store, id: &str) -> TicketCode {
    let m = InboundMessage {
        channel: Channel::Telegram,
        provider_id: id.into(),
        sender: Sender {
            identity: Some(Identity::new(aduan_core::IdentityKind::Telegram, id).unwrap()),
            display_name: Some("Siti Aminah".into()),
            contacts: vec![],
        },
        text: "jalan berlubang".into(),
        attachments: vec![],
        location: None,
        received_at: chrono::Utc::now(),
        thread: ThreadHints::default(),
    };
    let code = store.ingest(m).await.unwrap().ticket.unwrap();
    let op = Actor::User("operator@kab.go.id".into());
    store.assign(code, "DPU".into(), op, None).await.unwrap();
    code
}

fn link(code: TicketCode, action: OfficialAction, nonce: &str) -> String {
    link_with(code, "DPU", action, nonce, chrono::Duration::days(7))
}

fn link_with(
    code: TicketCode,
    opd: &str,
    action: OfficialAction,
    nonce: &str,
    valid: chrono::Duration,
) -> String {
    let claim = ActionClaim {
        ticket: code,
        opd: opd.into(),
        action,
        official: "pengaduan.dpu@example.go.id".into(),
        expires_at: chrono::Utc::now() + valid,
        nonce: nonce.into(),
    };
    format!("/aksi/{}", key().sign(&claim).unwrap())
}

async fn send(app: &Router, mut req: Request<Body>) -> (StatusCode, String) {
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 4000))));
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post(path: &str, origin: Option<&str>, fields: &[(&str, &str)]) -> Request<Body> {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        b = b.header(header::ORIGIN, o);
    }
    b.body(Body::from(body)).unwrap()
}

async fn state(store: &Store, code: TicketCode) -> (Status, usize) {
    let v = store.ticket(code).await.unwrap().unwrap();
    (v.summary.status, v.events.len())
}

const OURS: Option<&str> = Some("https://aduan.example.go.id");

#[tokio::test]
async fn opening_a_link_never_acts_and_posting_acts_once() {
    let f = fx().await;
    let code = ticket(&f.store, "1").await;
    let before = state(&f.store, code).await;
    let path = link(code, OfficialAction::Accept, "n-accept");
    for _ in 0..3 {
        let (status, html) = send(&f.app, get(&path)).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains(&code.to_string()) && html.contains("Dinas Pekerjaan Umum"));
        assert!(html.contains("<form method=\"post\""), "{html}");
    }
    assert_eq!(state(&f.store, code).await, before, "a GET changed the ticket");
    let (status, html) = send(&f.app, post(&path, OURS, &[])).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(aduan_core::texts::OFFICIAL_ACTION_DONE));
    let v = f.store.ticket(code).await.unwrap().unwrap();
    assert_eq!(v.summary.status, Status::InProgress);
    assert_eq!(v.events.last().unwrap().actor, Actor::User("pengaduan.dpu@example.go.id".into()));
    // Second use: "sudah digunakan", nothing changes; the page says so on GET as well.
    let after = state(&f.store, code).await;
    let (status, html) = send(&f.app, post(&path, OURS, &[])).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(html.contains("sudah digunakan"), "{html}");
    let (status, _) = send(&f.app, get(&path)).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(state(&f.store, code).await, after);
}

#[tokio::test]
async fn each_action_through_its_form() {
    let f = fx().await;
    // Minta info: the question goes to the resident on their channel; the clocks wait.
    let a = ticket(&f.store, "2").await;
    let path = link(a, OfficialAction::AskInfo, "q");
    let (status, html) = send(&f.app, get(&path)).await;
    assert!(status == StatusCode::OK && html.contains("<textarea name=\"teks\""), "{html}");
    let (status, _) = send(&f.app, post(&path, OURS, &[("teks", "")])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an empty question");
    let (status, _) = send(&f.app, post(&path, OURS, &[("teks", "Di RT berapa, Bu?")])).await;
    assert_eq!(status, StatusCode::OK);
    let v = f.store.ticket(a).await.unwrap().unwrap();
    assert!(v.summary.paused);
    let q = v.messages.iter().rev().find(|m| m.direction == aduan_core::Direction::Out).unwrap();
    assert!(q.text.contains("Di RT berapa, Bu?"), "{}", q.text);
    assert_eq!(q.channel, Channel::Telegram);
    // Selesai: the note is the answer to the resident; resolved.
    let path = link(a, OfficialAction::Resolve, "s");
    let (status, _) = send(&f.app, post(&path, OURS, &[("teks", "Sudah kami tambal.")])).await;
    assert_eq!(status, StatusCode::OK);
    let v = f.store.ticket(a).await.unwrap().unwrap();
    assert_eq!(v.summary.status, Status::Resolved);
    assert!(v.messages.iter().any(|m| m.text == "Sudah kami tambal."));
    // Bukan wewenang kami: back to triage, the refusal in the audit; later links refused.
    let b = ticket(&f.store, "3").await;
    let path = link(b, OfficialAction::NotOurs, "r");
    let (status, _) = send(&f.app, post(&path, OURS, &[("teks", "Urusan Dinkes")])).await;
    assert_eq!(status, StatusCode::OK);
    let v = f.store.ticket(b).await.unwrap().unwrap();
    assert_eq!((v.summary.status, v.summary.opd.as_deref()), (Status::New, None));
    assert!(
        v.events.iter().any(
            |e| e.note.as_deref() == Some("Bukan wewenang Dinas Pekerjaan Umum: Urusan Dinkes")
        )
    );
    let before = state(&f.store, b).await;
    let (status, html) =
        send(&f.app, post(&link(b, OfficialAction::Accept, "late"), OURS, &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("sudah tidak ditangani OPD Anda"));
    assert_eq!(state(&f.store, b).await, before);
}

#[tokio::test]
async fn bad_links_are_refused_and_change_nothing() {
    let f = fx().await;
    let code = ticket(&f.store, "4").await;
    let before = state(&f.store, code).await;
    let good = link(code, OfficialAction::Accept, "x");
    // Tampered: one character of the payload changed.
    let mut tampered = good.clone().into_bytes();
    let i = "/aksi/".len() + 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other_key = {
        let k = ActionKey::new(b"another-key-entirely-000").unwrap();
        let c = ActionClaim {
            ticket: code,
            opd: "DPU".into(),
            action: OfficialAction::Accept,
            official: "x@example.go.id".into(),
            expires_at: chrono::Utc::now() + chrono::Duration::days(1),
            nonce: "k".into(),
        };
        format!("/aksi/{}", k.sign(&c).unwrap())
    };
    let expired =
        link_with(code, "DPU", OfficialAction::Accept, "e", chrono::Duration::seconds(-1));
    let other_opd =
        link_with(code, "DINKES", OfficialAction::Accept, "o", chrono::Duration::days(1));
    for (path, want) in [
        (tampered.as_str(), StatusCode::FORBIDDEN),
        (other_key.as_str(), StatusCode::FORBIDDEN),
        ("/aksi/bukan-token", StatusCode::FORBIDDEN),
        (expired.as_str(), StatusCode::GONE),
        (other_opd.as_str(), StatusCode::FORBIDDEN),
    ] {
        let (s, html) = send(&f.app, get(path)).await;
        assert_eq!(s, want, "GET {path}: {html}");
        let (s, _) = send(&f.app, post(path, OURS, &[])).await;
        assert_eq!(s, want, "POST {path}");
    }
    // Posted from another site: refused before anything is read.
    let (s, _) = send(&f.app, post(&good, Some("https://evil.example"), &[])).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut req = post(&good, None, &[]);
    req.headers_mut().insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(send(&f.app, req).await.0, StatusCode::FORBIDDEN);
    assert_eq!(state(&f.store, code).await, before);
    // The good link still works afterwards (nothing above used it).
    assert_eq!(send(&f.app, post(&good, OURS, &[])).await.0, StatusCode::OK);
}
