//! What the in-memory web tests share: a SQLite store with one account per role and an
//! API key per scope, the app over it, and requests sent through it as from one client.
#![allow(dead_code)] // each test binary uses its own part of this

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use aduan_connector::Telemetry;
use aduan_store::{NewUser, Role, Scope, Store, StoreOptions};
use aduan_web::auth::{generate_token, hash_token};
use aduan_web::session::hash_password;
use aduan_web::{AppState, WebConfig, app};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const PASSWORD: &str = "kata-sandi-rahasia";

pub struct Fx {
    pub app: Router,
    pub state: AppState,
    pub store: Store,
    pub admin_key: String,
    pub read_key: String,
    pub intake_key: String,
    pub dir: tempfile::TempDir,
}

/// The accounts, all with [`PASSWORD`]: an admin, two operators, an official of DPU and
/// one of DINKES; keys of scope admin, read and intake; the OPDs DPU and DINKES; one
/// Open311 service (`jalan`). `cfg` changes the web config before the app is built.
pub async fn fx_with(cfg: impl FnOnce(&mut WebConfig)) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    // One hash for every account keeps the test fast (argon2 is slow on purpose).
    let hash = hash_password(PASSWORD).unwrap();
    for (email, role, opd) in [
        ("admin@kab.go.id", Role::Admin, None),
        ("operator@kab.go.id", Role::Operator, None),
        ("operator2@kab.go.id", Role::Operator, None),
        ("dpu@kab.go.id", Role::Official, Some("DPU")),
        ("dinkes@kab.go.id", Role::Official, Some("DINKES")),
    ] {
        let user = NewUser {
            email: email.into(),
            name: None,
            role,
            opd: opd.map(str::to_owned),
            password_hash: hash.clone(),
        };
        store.add_user(user).await.unwrap();
    }
    let mut keys = Vec::new();
    for (name, scope) in [("ops", Scope::Admin), ("dash", Scope::Read), ("app", Scope::Intake)] {
        let t = generate_token();
        store.add_api_key(name.into(), scope, hash_token(&t)).await.unwrap();
        keys.push(t);
    }
    let mut config = WebConfig {
        attachments_dir: dir.path().join("att"),
        opds: Some(BTreeSet::from(["DPU".to_string(), "DINKES".to_string()])),
        login_attempts_per_minute: 50,
        public_requests_per_minute: 1000,
        ..WebConfig::default()
    };
    config.opd_names.insert("DPU".into(), "Dinas Pekerjaan Umum".into());
    config.services.push(aduan_web::Open311Service {
        service_code: "jalan".into(),
        service_name: "Jalan rusak".into(),
        description: "Jalan berlubang, rusak, longsor".into(),
        group: "Infrastruktur".into(),
        keywords: vec!["jalan".into(), "lubang".into()],
    });
    cfg(&mut config);
    let state = AppState::new(store.clone(), Arc::new(Telemetry::new()), config);
    let app = app(state.clone(), vec![]);
    let intake_key = keys.pop().unwrap();
    let read_key = keys.pop().unwrap();
    let admin_key = keys.pop().unwrap();
    Fx { app, state, store, admin_key, read_key, intake_key, dir }
}

pub async fn fx() -> Fx {
    fx_with(|_| {}).await
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub bytes: Vec<u8>,
    /// `bytes` as text (lossy).
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }
    pub fn location(&self) -> &str {
        self.header(header::LOCATION)
    }
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

/// Sends `req` through the app, from 10.0.0.1 unless the request says otherwise.
pub async fn send(app: &Router, mut req: Request<Body>) -> Resp {
    if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 4000))));
    }
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Resp { status, headers, bytes, text }
}

/// A form POST; `cookie` empty: none sent.
pub fn form(path: &str, cookie: &str, fields: &[(&str, &str)]) -> Request<Body> {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if !cookie.is_empty() {
        b = b.header(header::COOKIE, cookie);
    }
    b.body(Body::from(body)).unwrap()
}

pub fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

/// The value of `name="…" value="…"` in a page.
pub fn input_value(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).expect("field on the page");
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The `name=value` part of a Set-Cookie.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// A visitor's cookie and the CSRF token of the form at `path`.
pub async fn visitor(app: &Router, path: &str) -> (String, String) {
    let r = send(app, get(path, None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let cookie = cookie_pair(&r.cookies()[0]);
    (cookie, input_value(&r.text, "csrf"))
}

/// A signed-in user: the session cookie and the session's CSRF token.
pub struct User {
    pub cookie: String,
    pub csrf: String,
}

/// Signs `email` in with [`PASSWORD`].
pub async fn login(app: &Router, email: &str) -> User {
    let (vc, token) = visitor(app, "/login").await;
    let r = send(
        app,
        form("/login", &vc, &[("csrf", &token), ("email", email), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.location(), "/");
    let set = r.cookies().into_iter().find(|c| c.starts_with("aduan_session=")).unwrap();
    let cookie = cookie_pair(&set);
    let page = send(app, get("/", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = input_value(&page.text, "csrf");
    User { cookie, csrf }
}
