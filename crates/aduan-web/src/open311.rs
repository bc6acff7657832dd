//! Open311 GeoReport v2 under `/open311/v2/` (JSON only): services, service definitions,
//! posting a request (form-encoded, `api_key` of scope `intake`, channel `open311`), listing
//! and reading requests. `service_request_id` is the ticket code. Errors are the spec's
//! arrays `[{"code": <http status>, "description": "…"}]`.
//!
//! Requests are public in GeoReport, and these endpoints need no key, so they show only
//! what anybody may see ([`public_request`]): requests that came in through Open311 (a
//! ticket of another channel is not a public request, and its code is what `/lacak` and
//! CEK answer on), never one whose reporter asked for *rahasia*, with no description,
//! reporter, address or media (free text carries names and contacts; the service says what
//! it is about), coordinates rounded to three decimals (about 100 m, not a house), and a
//! merge named only when it went into another public request.
//!
//! Services are the registry's categories; a registry without categories (the contract's
//! plain `[[opd]]` list) has one service per OPD instead ([`crate::WebConfig::services_are_opds`]:
//! `service_code` = OPD code, `service_name` = OPD name, description from its keywords). A
//! request to such a service is not disposed on the spot: it goes through the routing
//! worker like every complaint (identity first, as the desk's rule asks), its text ending
//! with `Layanan: <OPD name> (<code>)`. An OPD's name and code are keywords of that OPD
//! (`aduan_routing::rules`), so the worker disposes it there — unless the description's own
//! keywords point more strongly at another OPD, which leaves it in triage for an operator.
//! Such a request shows the OPD it went to as its `service_code`, and `service_code`
//! filters the list by OPD.

use std::collections::HashMap;

use aduan_core::{
    Channel, Identity, IdentityKind, InboundMessage, Location, Sender, Status, ThreadHints,
    TicketCode,
};
use aduan_store::{Scope, TicketFilter, TicketSummary, TicketView};
use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::hash_token;
use crate::error::ApiError;
use crate::intake::MAX_TEXT_CHARS;

/// A GeoReport service: one of the configured categories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub service_code: String,
    pub service_name: String,
    pub description: String,
    pub group: String,
    pub keywords: Vec<String>,
}

/// An error in the spec's shape.
struct GeoError(StatusCode, String);

impl IntoResponse for GeoError {
    fn into_response(self) -> Response {
        (self.0, Json(json!([{"code": self.0.as_u16(), "description": self.1}]))).into_response()
    }
}

/// The spec's statuses: 404 missing, 403 for the key, 400 for every other client error
/// (429 and 5xx kept: they are not the client's request's fault).
impl From<ApiError> for GeoError {
    fn from(e: ApiError) -> GeoError {
        let status = match e.status {
            s @ (StatusCode::NOT_FOUND | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS) => {
                s
            }
            s if s.is_server_error() => s,
            _ => StatusCode::BAD_REQUEST,
        };
        GeoError(status, e.message)
    }
}

impl From<aduan_store::StoreError> for GeoError {
    fn from(e: aduan_store::StoreError) -> GeoError {
        ApiError::from(e).into()
    }
}

fn bad(m: impl Into<String>) -> GeoError {
    GeoError(StatusCode::BAD_REQUEST, m.into())
}

fn service<'a>(state: &'a AppState, code: &str) -> Option<&'a Service> {
    state.config.services.iter().find(|s| s.service_code == code)
}

pub(crate) async fn services(State(state): State<AppState>) -> Response {
    let list: Vec<Value> = state
        .config
        .services
        .iter()
        .map(|s| {
            json!({
                "service_code": s.service_code,
                "service_name": s.service_name,
                "description": s.description,
                "metadata": false,
                "type": "realtime",
                "keywords": s.keywords.join(","),
                "group": s.group,
            })
        })
        .collect();
    Json(list).into_response()
}

/// `services/{code}.json`: no service has extra attributes.
pub(crate) async fn service_definition(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Response {
    let Some(code) = file.strip_suffix(".json") else {
        return bad("only .json is served").into_response();
    };
    match service(&state, code) {
        Some(s) => Json(json!({"service_code": s.service_code, "attributes": []})).into_response(),
        None => GeoError(StatusCode::NOT_FOUND, format!("service_code {code} not found"))
            .into_response(),
    }
}

fn status_of(s: Status) -> &'static str {
    if Status::OPEN.contains(&s) { "open" } else { "closed" }
}

/// A coordinate rounded to three decimals (about 110 m of latitude): the street, not the
/// house.
fn coarse(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Whether a ticket is a public request: it came in through Open311 and its reporter did
/// not ask for *rahasia*.
fn is_public(v: &TicketView) -> bool {
    v.summary.channel == Channel::Open311 && !v.reporter.as_ref().is_some_and(|r| r.confidential)
}

/// Ticket `code` as a public request, `None` when it is not one (see the module docs).
async fn public_request(state: &AppState, code: TicketCode) -> Result<Option<Value>, GeoError> {
    let Some(v) = state.store.ticket(code).await?.filter(is_public) else {
        return Ok(None);
    };
    let merged_into = match v.summary.merged_into {
        Some(m) => state.store.ticket(m).await?.filter(is_public).map(|t| t.summary.code),
        None => None,
    };
    Ok(Some(request_json(state, &v.summary, merged_into)))
}

/// A public request in GeoReport's shape; `merged_into` only when that ticket is public too.
fn request_json(state: &AppState, t: &TicketSummary, merged_into: Option<TicketCode>) -> Value {
    let service_code = if state.config.services_are_opds { &t.opd } else { &t.category };
    let svc = service_code.as_deref().and_then(|c| service(state, c));
    let fmt = aduan_core::time::format_rfc3339;
    json!({
        "service_request_id": t.code,
        "status": status_of(t.status),
        "status_notes": match (t.status, merged_into) {
            (Status::Merged, Some(m)) => Some(format!("merged into {m}")),
            (Status::Merged, None) => Some("merged into another request".to_owned()),
            _ => None,
        },
        "service_name": svc.map(|s| s.service_name.clone()),
        "service_code": service_code,
        "description": null,
        "agency_responsible": t.opd,
        "service_notice": null,
        "requested_datetime": fmt(&t.created_at),
        "updated_datetime": fmt(&t.updated_at),
        "expected_datetime": fmt(&t.first_response_due_at),
        "address": null,
        "address_id": null,
        "zipcode": null,
        "lat": t.location.as_ref().map(|l| coarse(l.lat)),
        "long": t.location.as_ref().map(|l| coarse(l.lon)),
        "media_url": null,
    })
}

fn parse_time(field: &str, v: &str) -> Result<DateTime<Utc>, GeoError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad(format!("{field} must be a W3C (RFC 3339) date-time")))
}

fn query_map(req: &Request) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// `GET requests.json`: `service_request_id` (comma-separated), or `service_code`,
/// `start_date`, `end_date`, `status` (`open`/`closed`) over the newest 1,000 requests of
/// the last 90 days (the spec's defaults).
pub(crate) async fn list_requests(State(state): State<AppState>, req: Request) -> Response {
    let allowed = crate::public::limited(&state, req.extensions());
    let q = query_map(&req);
    drop(req);
    let run = async {
        allowed?;
        let get = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        if let Some(ids) = get("service_request_id") {
            let mut out = Vec::new();
            for id in ids.split(',').map(str::trim).filter(|s| !s.is_empty()).take(100) {
                if let Ok(code) = id.parse::<TicketCode>()
                    && let Some(v) = public_request(&state, code).await?
                {
                    out.push(v);
                }
            }
            return Ok::<_, GeoError>(out);
        }
        let now = Utc::now();
        let start = get("start_date").map(|v| parse_time("start_date", v)).transpose()?;
        let end = get("end_date").map(|v| parse_time("end_date", v)).transpose()?;
        let start = start.unwrap_or_else(|| end.unwrap_or(now) - chrono::Duration::days(90));
        let want = match get("status") {
            None => None,
            Some(s @ ("open" | "closed")) => Some(s.to_owned()),
            Some(_) => return Err(bad("status must be open or closed")),
        };
        let mut out = Vec::new();
        // Public requests only: Open311's own, none of a reporter who asked for rahasia.
        let by_opd = state.config.services_are_opds;
        let mut f = TicketFilter {
            category: get("service_code").filter(|_| !by_opd).map(str::to_owned),
            opd: get("service_code").filter(|_| by_opd).map(str::to_owned),
            channel: Some(Channel::Open311),
            confidential: Some(false),
            limit: 200,
            ..TicketFilter::default()
        };
        'pages: loop {
            let page = state.store.tickets(&f).await?;
            for t in &page.items {
                if t.created_at < start {
                    break 'pages;
                }
                if end.is_some_and(|e| t.created_at > e)
                    || t.status == Status::Merged
                    || want.as_deref().is_some_and(|w| w != status_of(t.status))
                {
                    continue;
                }
                out.push(request_json(&state, t, None));
                if out.len() >= 1000 {
                    break 'pages;
                }
            }
            match page.next_cursor.and_then(|c| c.parse().ok()) {
                Some(c) => f.cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    };
    match run.await {
        Ok(list) => Json(list).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET requests/{id}.json`.
pub(crate) async fn get_request(
    State(state): State<AppState>,
    Path(file): Path<String>,
    req: Request,
) -> Response {
    let allowed = crate::public::limited(&state, req.extensions());
    drop(req);
    let run = async {
        allowed?;
        let id = file.strip_suffix(".json").ok_or_else(|| bad("only .json is served"))?;
        let missing =
            || GeoError(StatusCode::NOT_FOUND, format!("service_request_id {id} not found"));
        let code = id.parse::<TicketCode>().map_err(|_| missing())?;
        let v = public_request(&state, code).await?.ok_or_else(missing)?;
        Ok::<_, GeoError>(vec![v])
    };
    match run.await {
        Ok(list) => Json(list).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST requests.json` (form-encoded). An `api_key` in the query string is checked before
/// the body is read (a forged request is refused before its body is); one in the form is
/// checked after.
pub(crate) async fn post_request(State(state): State<AppState>, req: Request) -> Response {
    let mut checked = None;
    if let Some(token) = query_map(&req).get("api_key").map(|v| v.trim().to_owned()) {
        match intake_key(&state, &token).await {
            Ok(k) => checked = Some(k),
            Err(e) => return e.into_response(),
        }
    }
    let headers = req.headers().clone();
    let body = match axum::body::Bytes::from_request(req, &state).await {
        Ok(b) => b,
        Err(rejection) => return rejection.into_response(),
    };
    match post(&state, &headers, &body, checked).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The API key of scope `intake` that `token` is, or 403.
async fn intake_key(state: &AppState, token: &str) -> Result<aduan_store::ApiKey, GeoError> {
    state
        .store
        .api_key_by_hash(&hash_token(token))
        .await?
        .filter(|k| !k.revoked && k.scope.allows(Scope::Intake))
        .ok_or_else(|| GeoError(StatusCode::FORBIDDEN, "api_key is not valid for posting".into()))
}

async fn post(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    checked: Option<aduan_store::ApiKey>,
) -> Result<Value, GeoError> {
    let ct =
        headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(bad("send the request form-encoded (application/x-www-form-urlencoded)"));
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());

    let key = match checked {
        Some(k) => k,
        None => {
            let token = get("api_key")
                .ok_or_else(|| GeoError(StatusCode::FORBIDDEN, "api_key is required".into()))?;
            intake_key(state, token).await?
        }
    };

    let code = get("service_code").ok_or_else(|| bad("service_code is required"))?;
    let svc = service(state, code)
        .ok_or_else(|| GeoError(StatusCode::NOT_FOUND, format!("service_code {code} not found")))?
        .clone();
    let location = match (get("lat"), get("long")) {
        (Some(lat), Some(lon)) => {
            let (Ok(lat), Ok(lon)) = (lat.parse::<f64>(), lon.parse::<f64>()) else {
                return Err(bad("lat and long must be numbers"));
            };
            Some(Location::new(lat, lon).map_err(|e| bad(e.to_string()))?)
        }
        (None, None) => None,
        _ => return Err(bad("send both lat and long")),
    };
    let address = get("address_string");
    if location.is_none() && address.is_none() && get("address_id").is_none() {
        return Err(bad("a location is required: lat and long, address_string or address_id"));
    }
    let description = get("description").unwrap_or("");
    if description.chars().count() > 4000 {
        return Err(bad("description has at most 4,000 characters"));
    }
    let mut text = description.to_owned();
    if let Some(a) = address {
        text =
            if text.is_empty() { format!("Alamat: {a}") } else { format!("{text}\n\nAlamat: {a}") };
    }
    if state.config.services_are_opds {
        // The OPD chosen, for the routing worker (see the module docs) and the operator.
        let line = format!("Layanan: {} ({})", svc.service_name, svc.service_code);
        text = if text.is_empty() { line } else { format!("{text}\n\n{line}") };
    }
    if text.is_empty() {
        text = svc.service_name.clone();
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(bad("address_string is too long"));
    }

    let mut ids = Vec::new();
    if let Some(a) = get("account_id") {
        ids.push(
            Identity::new(IdentityKind::AppUser, &format!("{}:{a}", key.name))
                .map_err(|e| bad(format!("account_id: {e}")))?,
        );
    }
    if let Some(e) = get("email") {
        ids.push(Identity::email(e).map_err(|e| bad(format!("email: {e}")))?);
    }
    if let Some(p) = get("phone") {
        let phone = Identity::phone(p).map_err(|e| bad(format!("phone: {e}")))?;
        // Nobody verified this number: no SMS abroad on a caller's word (SMS pumping).
        let prefix = &state.config.sms_country_prefix;
        if !phone.is_phone_in(prefix) {
            return Err(GeoError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("phone: only numbers of this country ({prefix}…) are accepted"),
            ));
        }
        ids.push(phone);
    }
    let name =
        [get("first_name"), get("last_name")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let mut sender =
        Sender { display_name: Some(name).filter(|n| !n.is_empty()), ..Sender::default() };
    if !ids.is_empty() {
        sender.identity = Some(ids.remove(0));
        sender.contacts = ids;
    }
    let nonce: [u8; 12] = rand::random();
    let msg = InboundMessage {
        channel: Channel::Open311,
        provider_id: format!("{}:{}", key.name, hex::encode(nonce)),
        sender,
        text,
        attachments: Vec::new(),
        location,
        received_at: aduan_store::now(),
        thread: ThreadHints::default(),
    };
    let outcome = state.store.ingest(msg).await?;
    state.telemetry.message_stored(Channel::Open311, &outcome);
    let ticket = outcome
        .ticket
        .ok_or_else(|| GeoError(StatusCode::INTERNAL_SERVER_ERROR, "no ticket".into()))?;
    if !state.config.services_are_opds {
        state.store.set_category_if_unset(ticket, svc.service_code.clone()).await?;
    }
    tracing::info!(ticket = %ticket, key = %key.name, "Open311 request stored.");
    Ok(json!([{
        "service_request_id": ticket,
        "service_notice": format!("Lacak di {}/lacak/{ticket}", state.config.public_url),
        "account_id": null,
    }]))
}
