//! The HTTP face of aduan: health and metrics, the intake and ticket API, and the mount
//! point of every connector's webhooks. `app(state, webhooks)` builds the whole router; it
//! is served by the binary and tested in memory with `tower::ServiceExt::oneshot`.

pub mod attachments;
pub mod auth;
mod desk;
pub mod error;
mod extract;
mod hooks;
mod intake;
mod keys;
mod officials;
mod open311;
mod pages;
mod public;
mod serve;
pub mod session;
mod stats;
mod tickets;
mod users;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use aduan_connector::{BlobStore, Telemetry, Webhook};
use aduan_store::Store;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// The free-space floor of the attachment store (it lives with [`BlobStore`] in
/// `aduan-connector`).
pub use aduan_connector::StorageFloor;
pub use error::ApiError;
pub use open311::Service as Open311Service;
pub use serve::{ServeLimits, serve, serve_counted};

/// What the web layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Largest JSON body accepted (default 10 MiB).
    pub max_json_bytes: usize,
    /// Where attachments are written, by content hash (the [`BlobStore`] of
    /// [`AppState::new`]; [`AppState::with_blobs`] brings its own).
    pub attachments_dir: PathBuf,
    /// The URL providers call us at, without a trailing slash (Twilio signs it).
    pub public_url: String,
    /// The OPD codes of the registry; `None` accepts any code.
    pub opds: Option<BTreeSet<String>>,
    /// OPD names by code (from the registry), shown on pages.
    pub opd_names: BTreeMap<String, String>,
    /// Largest multipart body accepted (the public form with a photo; default 25 MiB).
    pub max_multipart_bytes: usize,
    /// Sign-in attempts per minute per account (four times as many per client address).
    pub login_attempts_per_minute: u32,
    /// Requests per minute per client address on the public pages and API.
    pub public_requests_per_minute: u32,
    /// How long a session lasts.
    pub session_hours: i64,
    /// The Open311 services (the configured categories); a request's `service_code` becomes
    /// its ticket's category.
    pub services: Vec<Open311Service>,
    /// The country calling code contact phones from `/lapor` and Open311 must have
    /// (`[intake] sms_country_prefix`, default `+62`).
    pub sms_country_prefix: String,
    /// When set, `GET /metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// Attachment bytes one client address may upload through the public form per hour.
    pub upload_bytes_per_hour: u64,
    /// The free space the attachment store keeps; a write that would leave less is refused.
    pub storage_floor: StorageFloor,
    /// The services are the registry's OPDs (it has no categories): a request names its OPD
    /// in its text instead of setting a category (see the `open311` module).
    pub services_are_opds: bool,
    /// The key officials' action links are signed with (`/aksi/{token}`); `None`: the
    /// links are refused.
    pub action_key: Option<aduan_core::action_link::ActionKey>,
}

impl WebConfig {
    /// Cookies get `Secure` when the public URL is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            max_json_bytes: 10 * 1024 * 1024,
            attachments_dir: PathBuf::from("data/attachments"),
            public_url: "http://127.0.0.1:8080".into(),
            opds: None,
            opd_names: BTreeMap::new(),
            max_multipart_bytes: 25 * 1024 * 1024,
            login_attempts_per_minute: 5,
            public_requests_per_minute: 60,
            session_hours: 12,
            services: Vec::new(),
            sms_country_prefix: aduan_core::DEFAULT_SMS_COUNTRY_PREFIX.to_owned(),
            metrics_token: None,
            upload_bytes_per_hour: 100 * 1024 * 1024,
            storage_floor: StorageFloor::default(),
            services_are_opds: false,
            action_key: None,
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Store,
    pub telemetry: Arc<Telemetry>,
    pub config: WebConfig,
    /// The attachment store uploads are written to.
    pub blobs: BlobStore,
    keys: auth::KeyCache,
    limits: session::Limits,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// A state whose attachment store is `config.attachments_dir` with
    /// `config.storage_floor`.
    pub fn new(store: Store, telemetry: Arc<Telemetry>, config: WebConfig) -> AppState {
        let blobs = BlobStore::new(&config.attachments_dir, config.storage_floor);
        AppState::with_blobs(store, telemetry, config, blobs)
    }

    /// A state sharing the daemon's attachment store (the one the connectors write to).
    pub fn with_blobs(
        store: Store,
        telemetry: Arc<Telemetry>,
        config: WebConfig,
        blobs: BlobStore,
    ) -> AppState {
        let limits = session::Limits::new(&config);
        AppState(Arc::new(Shared {
            store,
            telemetry,
            config,
            blobs,
            keys: auth::KeyCache::default(),
            limits,
        }))
    }

    /// Keys held by the sign-in rate limiters: bounded by distinct (account, address)
    /// pairs seen in the last minute, whatever the requests carried.
    pub fn login_limiter_keys(&self) -> usize {
        self.limits.login_keys()
    }
}

/// The whole HTTP API.
pub fn app(state: AppState, webhooks: Vec<Arc<dyn Webhook>>) -> Router {
    let limit = state.config.max_json_bytes;
    let api = Router::new()
        .route("/api/v1/messages", post(intake::post_message))
        .route("/api/v1/tickets", get(tickets::list))
        .route("/api/v1/tickets/{code}", get(tickets::get_one))
        .route("/api/v1/tickets/{code}/assign", post(tickets::assign))
        .route("/api/v1/tickets/{code}/reply", post(tickets::reply))
        .route("/api/v1/tickets/{code}/status", post(tickets::status))
        .route("/api/v1/tickets/{code}/merge", post(tickets::merge))
        .route("/api/v1/tickets/{code}/request-identity", post(tickets::request_identity))
        .route("/api/v1/tickets/{code}/incident", post(tickets::incident))
        .route("/api/v1/tickets/{code}/resident", post(tickets::resident))
        .route("/api/v1/public/tickets/{code}", get(public::api_ticket))
        .route("/api/v1/stats", get(stats::api_stats))
        .route("/api/v1/keys", post(keys::create))
        .route("/api/v1/keys/{id}/revoke", post(keys::revoke));
    let multipart = state.config.max_multipart_bytes;
    let pages = Router::new()
        .route(
            "/login",
            get(pages::login_form)
                .post(pages::login)
                .layer(DefaultBodyLimit::max(session::MAX_LOGIN_BODY_BYTES)),
        )
        .route("/logout", post(pages::logout))
        .route("/", get(pages::inbox))
        .route("/dashboard", get(stats::dashboard))
        .route("/users", get(users::list).post(users::add))
        .route("/users/{id}/{action}", post(users::set_disabled))
        .route("/open311/v2/services.json", get(open311::services))
        .route("/open311/v2/services/{file}", get(open311::service_definition))
        .route("/open311/v2/requests.json", get(open311::list_requests).post(open311::post_request))
        .route("/open311/v2/requests/{file}", get(open311::get_request))
        .route("/attachments/{id}", get(attachments::get))
        .route("/canned", get(desk::canned_list).post(desk::canned_save))
        .route("/canned/{id}/delete", post(desk::canned_delete))
        .route("/bulk", post(desk::bulk))
        .route("/duty", post(desk::duty))
        .route("/inbox/rows", get(desk::rows))
        .route("/attachments/{id}/thumb", get(attachments::thumb))
        .route("/tickets/{code}", get(pages::ticket))
        .route("/tickets/{code}/{action}", post(pages::ticket_action))
        .route(
            "/lapor",
            get(public::report_form).post(public::report).layer(DefaultBodyLimit::max(multipart)),
        )
        .route("/lacak", get(public::track_lookup))
        .route("/lacak/{code}", get(public::track))
        .route("/lacak/{code}/konfirmasi", post(public::confirm))
        .route("/aksi/{token}", get(officials::show).post(officials::act));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/static/aduan.css", get(stylesheet))
        .route("/static/inbox.js", get(script))
        .merge(api)
        .merge(pages)
        .merge(hooks::router(webhooks))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// The policy of every page: nothing inline (no script, no style attribute), nothing from
/// elsewhere, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Headers on every answer: `X-Content-Type-Options: nosniff`, `Referrer-Policy:
/// same-origin` and the [`CONTENT_SECURITY_POLICY`]; and `Cache-Control: no-store` on any
/// answer that did not set its own, so no JSON carrying names or contacts (the ticket API,
/// lists, errors) is kept by a browser or a shared cache. What may be cached (the
/// stylesheet) says so itself.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::HeaderValue;
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // An answer with a stricter policy of its own (an attachment) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/aduan.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/inbox.js"),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

/// How long `/readyz` waits for the store: a probe must get an answer (503) while the
/// database is away, not hang for the pool's whole acquire timeout.
const READY_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn readyz(State(state): State<AppState>) -> Response {
    let pinged = tokio::time::timeout(READY_PING_TIMEOUT, state.store.ping())
        .await
        .unwrap_or_else(|_| Err(aduan_store::StoreError::Internal("no answer within 2 s".into())));
    match pinged {
        Ok(()) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(%error, "Store is not answering; not ready.");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store does not answer",
            )
            .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &state.config.metrics_token {
        use subtle::ConstantTimeEq;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .unwrap_or_default();
        // Compared as SHA-256 digests: constant time whatever the lengths.
        use sha2::{Digest, Sha256};
        let ok: bool =
            Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes())).into();
        if !ok {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "/metrics needs Authorization: Bearer <metrics_token>",
            )
            .into_response();
        }
    }
    match state.store.overdue_by_opd().await {
        Ok(counts) => state.telemetry.set_overdue(&counts),
        Err(error) => tracing::warn!(%error, "Could not count overdue tickets for /metrics."),
    }
    match state.store.outbox_counts().await {
        Ok(counts) => state.telemetry.set_outbox(&counts),
        Err(error) => tracing::warn!(%error, "Could not count outbox rows for /metrics."),
    }
    match state.store.delivery_failed_counts().await {
        Ok(counts) => state.telemetry.set_delivery_failed(&counts),
        Err(error) => tracing::warn!(%error, "Could not count failed deliveries for /metrics."),
    }
    match state.store.auto_refused_counts().await {
        Ok(counts) => state.telemetry.set_auto_refused(&counts),
        Err(error) => {
            tracing::warn!(%error, "Could not count refused automatic messages for /metrics.");
        }
    }
    match state.store.routing_counts().await {
        Ok(counts) => state.telemetry.set_routing_counts(&counts),
        Err(error) => tracing::warn!(%error, "Could not read the routing counters for /metrics."),
    }
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.telemetry.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json")).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such path")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take that method",
    )
}
