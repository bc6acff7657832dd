//! What residents and the public see: the complaint form `/lapor` (the same intake path as
//! `POST /api/v1/messages`, channel `web`), and a ticket's public status at `/lacak/{code}`
//! and `GET /api/v1/public/tickets/{code}`: status, OPD, dates and the answers published to
//! the resident; nothing about the reporter and none of their messages. Rate-limited per
//! client address.

use std::collections::HashMap;

use aduan_core::{
    AttachmentRef, Channel, Direction, Identity, InboundMessage, Location, Purpose, Sender,
    ThreadHints, TicketCode,
};
use aduan_store::TicketView;
use askama::Template;
use axum::Json;
use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::intake::MAX_TEXT_CHARS;
use crate::pages::{Nav, error_page, local, render, status_label, visitor_csrf};
use crate::session::{CSRF_COOKIE, client_ip, cookie, csrf_ok};

pub(crate) fn limited(state: &AppState, ext: &axum::http::Extensions) -> Result<(), ApiError> {
    let ip = client_ip(ext);
    state.limits.prune_if_due();
    state.limits.public_ip.check_key(&ip).map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Terlalu banyak permintaan. Coba lagi sebentar lagi.",
        )
    })
}

// ---- Public status ----

struct Answer {
    at: String,
    text: String,
    /// Not delivered yet: it waits for the resident to write again (the note says so).
    waiting: Option<&'static str>,
}

struct PublicTicket {
    code: String,
    status: &'static str,
    opd: String,
    created: String,
    due: String,
    responded: String,
    resolved: String,
    merged_into: Option<String>,
    answers: Vec<Answer>,
    /// The resident's own confirmation form: the key of their link (issue 17).
    confirm_key: Option<String>,
    /// Resolved and waiting for the resident's confirmation (shown to everyone).
    confirm_pending: bool,
    /// After the resident answered here.
    notice: Option<&'static str>,
    /// "dilaporkan oleh N warga" when the ticket's incident has several reports.
    reported_by: Option<String>,
}

/// The answers published to the resident: outbound replies (not receipts or requests).
fn answers(v: &TicketView) -> impl Iterator<Item = &aduan_store::MessageView> {
    v.messages.iter().filter(|m| m.direction == Direction::Out && m.purpose == Some(Purpose::Reply))
}

use aduan_core::time::format_rfc3339 as fmt;

fn public_json(state: &AppState, v: &TicketView) -> Value {
    let t = &v.summary;
    let opd_name = t.opd.as_ref().and_then(|o| state.config.opd_names.get(o));
    json!({
        "code": t.code,
        "status": t.status,
        "opd": t.opd,
        "opd_name": opd_name,
        "category": t.category,
        "created_at": fmt(&t.created_at),
        "first_response_due_at": fmt(&t.first_response_due_at),
        "first_responded_at": t.first_responded_at.as_ref().map(fmt),
        "resolved_at": t.resolved_at.as_ref().map(fmt),
        "overdue": t.overdue,
        "merged_into": t.merged_into,
        "answers": answers(v)
            .map(|m| json!({"at": fmt(&m.at), "text": public_text(m), "waiting": waiting(m)}))
            .collect::<Vec<_>>(),
        "reports": v.incident.as_ref().map_or(1, |i| i.reports),
    })
}

async fn lookup(state: &AppState, raw: &str) -> Result<TicketView, ApiError> {
    let missing = || ApiError::not_found(format!("Aduan {raw} tidak ditemukan."));
    let code = raw.trim().parse::<TicketCode>().map_err(|_| missing())?;
    state.store.ticket(code).await?.ok_or_else(missing)
}

pub(crate) async fn api_ticket(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    limited(&state, req.extensions())?;
    let v = lookup(&state, &raw).await?;
    Ok(Json(public_json(&state, &v)))
}

#[derive(Template)]
#[template(path = "lacak.html")]
struct TrackPage {
    nav: Option<Nav>,
    t: Option<PublicTicket>,
    error: Option<String>,
}

pub(crate) async fn track_lookup(Query(q): Query<HashMap<String, String>>) -> Response {
    match q.get("code").map(|c| c.trim()).filter(|c| !c.is_empty()) {
        Some(c) => {
            let c: String = c.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            Redirect::to(&format!("/lacak/{c}")).into_response()
        }
        None => render(StatusCode::OK, &TrackPage { nav: None, t: None, error: None }),
    }
}

/// The public view of a ticket: masked answers, no identities (a code is not a key).
fn public_ticket(state: &AppState, v: &TicketView) -> PublicTicket {
    let t = &v.summary;
    let dash = || "—".to_owned();
    PublicTicket {
        code: t.code.to_string(),
        status: status_label(t.status),
        opd: match &t.opd {
            Some(o) => state.config.opd_names.get(o).cloned().unwrap_or_else(|| o.clone()),
            None => aduan_core::texts::NO_OPD_YET.into(),
        },
        created: local(state, t.created_at),
        due: local(state, t.first_response_due_at),
        responded: t.first_responded_at.map(|d| local(state, d)).unwrap_or_else(dash),
        resolved: t.resolved_at.map(|d| local(state, d)).unwrap_or_else(dash),
        merged_into: t.merged_into.map(|c| c.to_string()),
        answers: answers(v)
            .map(|m| Answer {
                at: local(state, m.at),
                text: public_text(m),
                waiting: waiting(m).then_some(aduan_core::texts::WAITING_PUBLIC),
            })
            .collect(),
        confirm_key: None,
        confirm_pending: t.status == aduan_core::Status::Resolved,
        notice: None,
        reported_by: v
            .incident
            .as_ref()
            .filter(|i| i.reports > 1)
            .map(|i| aduan_core::texts::reported_by(i.reports)),
    }
}

pub(crate) async fn track(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    req: Request,
) -> Response {
    if let Err(e) = limited(&state, req.extensions()) {
        return error_page(None, &e, Some("/lacak".into()));
    }
    let v = match lookup(&state, &raw).await {
        Ok(v) => v,
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            let page = TrackPage { nav: None, t: None, error: Some(e.message) };
            return render(StatusCode::NOT_FOUND, &page);
        }
        Err(e) => return error_page(None, &e, None),
    };
    let t = &v.summary;
    let page = public_ticket(&state, &v);
    let page = with_confirmation(&state, t.code, req.uri().query(), page).await;
    render(StatusCode::OK, &TrackPage { nav: None, t: Some(page), error: None })
}

// ---- The complaint form ----

#[derive(Template)]
#[template(path = "lapor.html")]
struct ReportPage {
    nav: Option<Nav>,
    csrf: String,
    nonce: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "lapor_ok.html")]
struct ReportDone {
    nav: Option<Nav>,
    code: String,
}

pub(crate) async fn report_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (csrf, set) = visitor_csrf(&state, &headers);
    let page = ReportPage { nav: None, csrf, nonce: crate::session::random_token(), error: None };
    let mut resp = render(StatusCode::OK, &page);
    if let Some(c) = set {
        resp.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    resp
}

/// The form's fields, checked.
#[derive(Default)]
struct Report {
    csrf: Option<String>,
    nonce: Option<String>,
    name: Option<String>,
    contact: Option<String>,
    text: Option<String>,
    lat: Option<String>,
    lon: Option<String>,
    photo: Option<(Option<String>, String, Vec<u8>)>,
}

async fn read_form(mut mp: Multipart) -> Result<Report, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "malformed_form", m);
    let mut r = Report::default();
    while let Some(field) = mp.next_field().await.map_err(|e| bad(e.body_text()))? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "photo" {
            let filename = field.file_name().map(str::to_owned);
            let ct = field.content_type().unwrap_or("application/octet-stream").to_owned();
            let data = field.bytes().await.map_err(|e| bad(e.body_text()))?;
            if !data.is_empty() {
                crate::intake::check_image("photo", &ct, &data)?;
                r.photo = Some((filename, ct, data.to_vec()));
            }
            continue;
        }
        let value = field.text().await.map_err(|e| bad(e.body_text()))?;
        let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
        match name.as_str() {
            "csrf" => r.csrf = value,
            "nonce" => r.nonce = value,
            "name" => r.name = value,
            "contact" => r.contact = value,
            "text" => r.text = value,
            "lat" => r.lat = value,
            "lon" => r.lon = value,
            _ => {}
        }
    }
    Ok(r)
}

fn message(r: &Report, sms_country_prefix: &str) -> Result<InboundMessage, ApiError> {
    let text = r.text.clone().ok_or_else(|| ApiError::field("text", "Isi aduan wajib diisi."))?;
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::field("text", "Isi aduan terlalu panjang."));
    }
    let nonce = r
        .nonce
        .clone()
        .filter(|n| n.len() <= 64)
        .ok_or_else(|| ApiError::field("nonce", "Muat ulang formulir lalu coba lagi."))?;
    let mut sender = Sender {
        display_name: r.name.clone().map(|n| n.chars().take(200).collect()),
        ..Sender::default()
    };
    if let Some(c) = &r.contact {
        let id = if c.contains('@') { Identity::email(c) } else { Identity::phone(c) };
        let id = id.map_err(|_| {
            ApiError::field("contact", "Isi nomor HP (08…) atau alamat email yang benar.")
        })?;
        // Nobody verified this number: no SMS abroad on a stranger's word (SMS pumping).
        if id.kind == aduan_core::IdentityKind::Phone && !id.is_phone_in(sms_country_prefix) {
            return Err(ApiError::field(
                "contact",
                format!(
                    "Nomor HP harus nomor dalam negeri ({sms_country_prefix}… atau 08…), \
                     atau isi alamat email."
                ),
            ));
        }
        sender.identity = Some(id);
    }
    let location = match (&r.lat, &r.lon) {
        (None, None) => None,
        (Some(lat), Some(lon)) => {
            let parse = |s: &str| s.replace(',', ".").parse::<f64>().ok();
            let (Some(lat), Some(lon)) = (parse(lat), parse(lon)) else {
                return Err(ApiError::field("lat", "Lintang dan bujur harus berupa angka."));
            };
            Some(
                Location::new(lat, lon)
                    .map_err(|_| ApiError::field("lat", "Lokasi di luar jangkauan."))?,
            )
        }
        _ => return Err(ApiError::field("lat", "Isi lintang dan bujur, atau kosongkan keduanya.")),
    };
    Ok(InboundMessage {
        channel: Channel::Web,
        provider_id: format!("lapor:{nonce}"),
        sender,
        text,
        attachments: Vec::new(),
        location,
        received_at: aduan_store::now(),
        thread: ThreadHints::default(),
    })
}

pub(crate) async fn report(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let again = |csrf: String, e: &ApiError| {
        let page = ReportPage {
            nav: None,
            csrf,
            nonce: crate::session::random_token(),
            error: Some(e.message.clone()),
        };
        render(e.status, &page)
    };
    if let Err(e) = limited(&state, &parts.extensions) {
        return error_page(None, &e, Some("/lapor".into()));
    }
    // Without the form's cookie the post can't pass the CSRF check: refused before its
    // body is read (or any budget spent).
    if cookie(&parts.headers, CSRF_COOKIE).is_none() {
        let e = ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "Sesi formulir kedaluwarsa. Muat ulang halaman lalu kirim lagi.",
        );
        return error_page(None, &e, Some("/lapor".into()));
    }
    // The upload budget is spent by what the client declares it sends, before it is read.
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(state.config.max_multipart_bytes as u64);
    if let Err(e) = state.limits.upload_allowed(&client_ip(&parts.extensions), declared) {
        return error_page(None, &e, Some("/lapor".into()));
    }
    let csrf_cookie = cookie(&parts.headers, CSRF_COOKIE).map(str::to_owned);
    let mp = match <Multipart as axum::extract::FromRequest<AppState>>::from_request(
        Request::from_parts(parts, body),
        &state,
    )
    .await
    {
        Ok(mp) => mp,
        Err(e) => {
            let err = ApiError::new(e.status(), "malformed_form", e.body_text());
            return error_page(None, &err, Some("/lapor".into()));
        }
    };
    let r = match read_form(mp).await {
        Ok(r) => r,
        Err(e) => return error_page(None, &e, Some("/lapor".into())),
    };
    let Some(csrf) = csrf_cookie.filter(|c| csrf_ok(c, r.csrf.as_deref())) else {
        let e = ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "Sesi formulir kedaluwarsa. Muat ulang halaman lalu kirim lagi.",
        );
        return error_page(None, &e, Some("/lapor".into()));
    };
    let mut msg = match message(&r, &state.config.sms_country_prefix) {
        Ok(m) => m,
        Err(e) => return again(csrf, &e),
    };
    if let Some((filename, ct, data)) = r.photo {
        let size = data.len() as u64;
        match state.blobs.put(data).await {
            Ok(sha256) => msg.attachments.push(AttachmentRef {
                filename: filename.map(|f| f.rsplit(['/', '\\']).next().unwrap_or("").to_owned()),
                content_type: ct.to_ascii_lowercase(),
                size,
                sha256,
                provider_ref: None,
            }),
            Err(error) => {
                let api = crate::intake::storage_error(&error);
                // The same status and code as the API, the text for the resident.
                let e = ApiError::new(
                    api.status,
                    api.code,
                    "Laporan belum terkirim: foto belum dapat disimpan. Coba lagi nanti.",
                );
                return again(csrf, &e);
            }
        }
    }
    match state.store.ingest(msg).await {
        Ok(outcome) => {
            state.telemetry.message_stored(Channel::Web, &outcome);
            match outcome.ticket {
                Some(code) => {
                    tracing::info!(ticket = %code, duplicate = outcome.duplicate, "Public form report stored.");
                    render(StatusCode::OK, &ReportDone { nav: None, code: code.to_string() })
                }
                None => error_page(None, &ApiError::internal(), None),
            }
        }
        Err(e) => again(csrf, &e.into()),
    }
}

// --- windows: answers waiting for the resident, on the public page ---

/// An answer kept until the resident writes again (every channel failed, or only a
/// WhatsApp template could go).
fn waiting(m: &aduan_store::MessageView) -> bool {
    m.delivery == Some(aduan_core::OutboxState::WaitingForResident)
}

/// An answer as the public page shows it: a tracking code is not a key, so phone numbers,
/// NIK and email addresses in it are masked; where it was tried is never shown.
fn public_text(m: &aduan_store::MessageView) -> String {
    aduan_core::privacy::mask_personal(&m.text)
}

// --- confirm: the resident's confirmation on /lacak (issue 17 item 4) ---

/// Adds the confirmation form when the query's `k` is the key of the ticket's pending
/// confirmation (the link in the resident's confirmation message). A ticket code is not a
/// key: without the key, the page only says a confirmation is pending.
async fn with_confirmation(
    state: &AppState,
    code: TicketCode,
    query: Option<&str>,
    mut page: PublicTicket,
) -> PublicTicket {
    let key = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "k").map(|(_, v)| v.into_owned())
    });
    if let Some(key) = key.filter(|k| !k.is_empty() && k.len() <= 128)
        && state.store.confirmation_pending(code, &key).await.unwrap_or(false)
    {
        page.confirm_key = Some(key);
    }
    page
}

/// `POST /lacak/{code}/konfirmasi` (form: `k`, `jawaban` 1 or 2, optional `nilai` 1–5 and
/// `pesan`): the resident's answer from their link. No CSRF token: the key is the
/// credential, checked by the store against the hash it keeps; rate-limited like every
/// public page. A wrong or used key is 403 and changes nothing.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ext: axum::http::Extensions,
    form: Result<axum::Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    use aduan_core::confirm::{Confirmation, Verdict};
    if let Err(e) = limited(&state, &ext) {
        return error_page(None, &e, Some("/lacak".into()));
    }
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "malformed_form", m.to_owned());
    let Ok(axum::Form(f)) = form else {
        return error_page(None, &bad("Formulir tidak dapat dibaca."), None);
    };
    let Ok(code) = raw.trim().parse::<TicketCode>() else {
        return error_page(
            None,
            &ApiError::not_found(format!("Aduan {raw} tidak ditemukan.")),
            None,
        );
    };
    let verdict = match f.get("jawaban").map(String::as_str) {
        Some("1") => Verdict::Fixed,
        Some("2") => Verdict::NotFixed,
        _ => return error_page(None, &bad("Pilih sudah beres atau belum beres."), None),
    };
    let rating = match f.get("nilai").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.parse::<u8>() {
            Ok(n @ 1..=5) => Some(n),
            _ => return error_page(None, &bad("Nilai harus 1 sampai 5."), None),
        },
    };
    let words = f.get("pesan").map(|w| w.chars().take(MAX_TEXT_CHARS).collect::<String>());
    let key = f.get("k").cloned().unwrap_or_default();
    if key.is_empty() || key.len() > 128 {
        return forbidden();
    }
    let answer = Confirmation { verdict, rating };
    match state.store.confirm_with_key(code, key, answer, words).await {
        Ok(true) => {
            tracing::info!(ticket = %code, verdict = verdict.as_str(), "Resident answered the confirmation on the tracking page.");
            match lookup(&state, &code.to_string()).await {
                Ok(v) => {
                    let mut page = public_ticket(&state, &v);
                    page.confirm_pending = false;
                    page.notice = Some(aduan_core::texts::CONFIRM_THANKS);
                    render(StatusCode::OK, &TrackPage { nav: None, t: Some(page), error: None })
                }
                Err(e) => error_page(None, &e, None),
            }
        }
        Ok(false) => forbidden(),
        Err(e) => error_page(None, &e.into(), None),
    }
}

fn forbidden() -> Response {
    let e = ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_key",
        "Tautan konfirmasi ini tidak berlaku (salah, atau sudah dipakai).",
    );
    error_page(None, &e, Some("/lacak".into()))
}
