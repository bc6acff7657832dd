//! The operator inbox: server-rendered pages (askama, which escapes every value), no
//! JavaScript. Every form carries the session's CSRF token; every action goes through the
//! same checks and store calls as the JSON API (`tickets::do_*`).

use std::collections::HashMap;

use aduan_core::{Channel, EventKind, Status, TicketCode, texts};
use aduan_store::{Session, TicketSummary, TicketView};
use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};

use crate::AppState;
use crate::auth::hash_token;
use crate::error::ApiError;
use crate::intake::MAX_TEXT_CHARS;
use crate::session::{
    CSRF_COOKIE, MAX_LOGIN_FIELD_BYTES, Principal, Reach, SESSION_COOKIE, client_ip, cookie,
    csrf_ok, dummy_hash, random_token, set_cookie, verify_password,
};
use crate::tickets;

// ---- Labels and formatting ----

/// The status as pages show it: [`texts::status_title`], the words of every message.
pub(crate) fn status_label(s: Status) -> &'static str {
    texts::status_title(s)
}

/// The channel's text badge (issue 19.4): plain ASCII, so it renders with any font (a
/// headless browser without an emoji font showed the old glyphs as empty boxes).
pub(crate) fn channel_icon(c: Channel) -> &'static str {
    match c {
        Channel::Email => "Email",
        Channel::Sms => "SMS",
        Channel::Telegram => "TG",
        Channel::Whatsapp => "WA",
        Channel::Messenger => "FB",
        Channel::Instagram => "IG",
        Channel::X => "X",
        Channel::Web => "Web",
        Channel::Open311 => "311",
    }
}

fn event_label(k: EventKind) -> &'static str {
    match k {
        EventKind::Created => "dibuat",
        EventKind::MessageReceived => "pesan masuk",
        EventKind::Replied => "dibalas",
        EventKind::StatusChanged => "status diubah",
        EventKind::Assigned => "didisposisikan",
        EventKind::Merged => "digabung ke",
        EventKind::Absorbed => "menyerap",
        EventKind::Paused => "tenggat dihentikan",
        EventKind::Resumed => "tenggat berjalan lagi",
        EventKind::Routed => "dirutekan otomatis",
        EventKind::ReporterUpdated => "identitas pelapor diperbarui",
        EventKind::Notified => "pemberitahuan dikirim",
        EventKind::Categorized => "kategori ditetapkan",
        EventKind::AttachmentRefused => "lampiran ditolak",
        EventKind::Confirmation => "konfirmasi pelapor",
        EventKind::Handler => "penanggung jawab",
        EventKind::Incident => "insiden",
    }
}

/// A time in the office's zone (the `[sla] timezone`): [`texts::local_time`], e.g.
/// `29 November 2026 17.40 WIB`.
pub(crate) fn local(_state: &AppState, t: DateTime<Utc>) -> String {
    texts::local_time(t)
}

/// "sisa 3 j 20 m", "lewat 2 j 5 m", or "sudah ditanggapi".
fn countdown(t: &TicketSummary, now: DateTime<Utc>) -> String {
    if t.first_responded_at.is_some() {
        return "sudah ditanggapi".into();
    }
    if !Status::OPEN.contains(&t.status) {
        return "—".into();
    }
    let d = t.first_response_due_at - now;
    let mins = d.num_minutes().abs();
    let span = if mins >= 60 * 24 {
        format!("{} h {} j", mins / (60 * 24), (mins / 60) % 24)
    } else {
        format!("{} j {} m", mins / 60, mins % 60)
    };
    if d.num_seconds() >= 0 { format!("sisa {span}") } else { format!("lewat {span}") }
}

// ---- Page plumbing ----

pub(crate) struct Nav {
    pub(crate) email: String,
    pub(crate) role: &'static str,
    pub(crate) opd: Option<String>,
    pub(crate) csrf: String,
}

impl Nav {
    pub(crate) fn of(s: &Session) -> Option<Nav> {
        Some(Nav {
            email: s.user.email.clone(),
            role: s.user.role.as_str(),
            opd: s.user.opd.clone(),
            csrf: s.csrf_token.clone(),
        })
    }
}

pub(crate) fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (
            status,
            [(header::CACHE_CONTROL, "no-store"), (header::X_FRAME_OPTIONS, "DENY")],
            Html(html),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "A page failed to render.");
            ApiError::internal().into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    nav: Option<Nav>,
    heading: String,
    message: String,
    back: Option<String>,
}

/// An API error as a page.
pub(crate) fn error_page(nav: Option<Nav>, e: &ApiError, back: Option<String>) -> Response {
    let heading = match e.status {
        StatusCode::FORBIDDEN => "Tidak diizinkan",
        StatusCode::NOT_FOUND => "Tidak ditemukan",
        StatusCode::TOO_MANY_REQUESTS => "Terlalu banyak permintaan",
        s if s.is_client_error() => "Permintaan tidak dapat diproses",
        _ => "Terjadi gangguan",
    };
    render(e.status, &ErrorPage { nav, heading: heading.into(), message: e.message.clone(), back })
}

/// The signed-in user of a page; without a session the browser goes to `/login`.
pub(crate) struct PageUser(pub Session);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match crate::session::session_of(state, &parts.headers).await {
            Ok(Some(s)) => Ok(PageUser(s)),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(error_page(None, &e, None)),
        }
    }
}

// ---- Sign-in ----

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    email: String,
    error: Option<String>,
}

/// The double-submit token of a visitor's forms: the one in their cookie, or a new one
/// (returned with the `Set-Cookie` to send).
pub(crate) fn visitor_csrf(
    state: &AppState,
    headers: &HeaderMap,
) -> (String, Option<header::HeaderValue>) {
    match cookie(headers, CSRF_COOKIE) {
        Some(t) if t.len() >= 32 => (t.to_owned(), None),
        _ => {
            let t = random_token();
            let c = set_cookie(CSRF_COOKIE, &t, state.config.secure_cookies(), None);
            (t, Some(c))
        }
    }
}

fn with_cookie(mut resp: Response, c: Option<header::HeaderValue>) -> Response {
    if let Some(c) = c {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

pub(crate) async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (csrf, set) = visitor_csrf(&state, &headers);
    let page = LoginPage { nav: None, csrf, email: String::new(), error: None };
    with_cookie(render(StatusCode::OK, &page), set)
}

pub(crate) async fn login(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let headers = &parts.headers;
    let (csrf, set) = visitor_csrf(&state, headers);
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            // Oversize (413, over MAX_LOGIN_BODY_BYTES) or not a form: refused before any
            // limiter or store is touched.
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "Formulir masuk terlalu besar."
            } else {
                "Formulir masuk tidak dapat dibaca."
            };
            let page = LoginPage {
                nav: None,
                csrf: csrf.clone(),
                email: String::new(),
                error: Some(message.to_owned()),
            };
            return with_cookie(render(status, &page), set);
        }
    };
    let email = form.get("email").map(|e| e.trim().to_lowercase()).unwrap_or_default();
    if email.len() > MAX_LOGIN_FIELD_BYTES {
        let page = LoginPage {
            nav: None,
            csrf: csrf.clone(),
            email: String::new(),
            error: Some("Alamat email terlalu panjang.".to_owned()),
        };
        return with_cookie(render(StatusCode::UNPROCESSABLE_ENTITY, &page), set);
    }
    let again = |status: StatusCode, error: &str| {
        let page = LoginPage {
            nav: None,
            csrf: csrf.clone(),
            email: email.clone(),
            error: Some(error.to_owned()),
        };
        with_cookie(render(status, &page), set.clone())
    };
    let given = form.get("csrf").map(String::as_str);
    if !cookie(headers, CSRF_COOKIE).is_some_and(|c| csrf_ok(c, given)) {
        return again(StatusCode::FORBIDDEN, "Sesi formulir kedaluwarsa. Silakan coba lagi.");
    }
    let ip = client_ip(&parts.extensions);
    if !state.limits.login_allowed(&email, &ip) {
        tracing::warn!("Sign-in attempts rate-limited.");
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            "Terlalu banyak percobaan masuk. Tunggu sebentar lalu coba lagi.",
        );
    }
    let password = form.get("password").cloned().unwrap_or_default();
    let found = match state.store.user_for_login(&email).await {
        Ok(found) => found,
        Err(e) => return error_page(None, &e.into(), Some("/login".into())),
    };
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, dummy_hash().to_owned()),
    };
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            tracing::info!("Sign-in refused.");
            return again(StatusCode::UNAUTHORIZED, "Email atau kata sandi salah.");
        }
    };
    let token = random_token();
    let ttl = chrono::Duration::hours(state.config.session_hours);
    if let Err(e) =
        state.store.create_session(hash_token(&token), user.id, random_token(), ttl).await
    {
        return error_page(None, &e.into(), Some("/login".into()));
    }
    tracing::info!(user_id = user.id, "Signed in.");
    let secure = state.config.secure_cookies();
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, secure, Some(ttl.num_seconds())),
    );
    resp
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !csrf_ok(&s.csrf_token, form.get("csrf").map(String::as_str)) {
        return error_page(Nav::of(&s), &csrf_error(), Some("/".into()));
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.store.delete_session(hash_token(token)).await
    {
        return error_page(None, &e.into(), None);
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", state.config.secure_cookies(), Some(0)),
    );
    resp
}

pub(crate) fn csrf_error() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "Formulir ini tidak membawa token keamanan yang benar. Muat ulang halaman lalu coba lagi.",
    )
}

/// The error page a non-admin gets on an admin-only page, or `None` for an admin.
pub(crate) fn admin_only(s: &aduan_store::Session) -> Option<Response> {
    Principal::User(s.clone())
        .require_admin()
        .err()
        .map(|e| error_page(Nav::of(s), &e, Some("/".into())))
}

/// The guard of every admin-only form post: the admin check, then the form's CSRF token
/// (an error page linking back to `back` when it is wrong).
pub(crate) fn admin_form(
    s: &aduan_store::Session,
    form: &HashMap<String, String>,
    back: &str,
) -> Option<Response> {
    admin_only(s).or_else(|| {
        (!csrf_ok(&s.csrf_token, form.get("csrf").map(String::as_str)))
            .then(|| error_page(Nav::of(s), &csrf_error(), Some(back.into())))
    })
}

// ---- Inbox ----

pub(crate) struct Opt {
    value: String,
    label: String,
    selected: bool,
}

struct Row {
    code: String,
    channel: &'static str,
    channel_icon: &'static str,
    status: &'static str,
    opd: String,
    category: String,
    created: String,
    deadline: String,
    overdue: bool,
    /// The operator handling it ("saya tangani").
    assignee: String,
    /// New and not yet disposed: what the desk still has to triage.
    triage: bool,
}

/// The inbox's table body alone (`GET /inbox/rows`, the live inbox).
#[derive(Template)]
#[template(path = "inbox_rows.html")]
struct InboxRows {
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    nav: Option<Nav>,
    rows: Vec<Row>,
    statuses: Vec<Opt>,
    channels: Vec<Opt>,
    confined: bool,
    opd: String,
    category: String,
    overdue: String,
    q: String,
    next: Option<String>,
    /// `assignee=me` is set.
    mine: bool,
    csrf: String,
    /// The OPDs a bulk disposition can go to.
    opds: Vec<Opt>,
    can_bulk_assign: bool,
    /// The version the rows are of (`desk::rows`).
    version: i64,
    /// Whether this operator is on duty (round-robin); `None` for officials.
    on_duty: Option<bool>,
}

/// The inbox's filter and the rows it finds (`assignee=me` is the signed-in user).
async fn inbox_page_rows(
    state: &AppState,
    s: &Session,
    q: &HashMap<String, String>,
) -> Result<(aduan_store::TicketFilter, Vec<Row>, Option<String>), ApiError> {
    let p = Principal::User(s.clone());
    let mut f = tickets::filter(q)?;
    tickets::confine(&p, &mut f)?;
    if q.get("assignee").map(String::as_str) == Some("me") {
        f.assignee = Some(s.user.email.clone());
    }
    let page = state.store.tickets(&f).await?;
    let now = Utc::now();
    let rows = page.items.iter().map(|t| row(state, t, now)).collect();
    Ok((f, rows, page.next_cursor))
}

fn row(state: &AppState, t: &TicketSummary, now: DateTime<Utc>) -> Row {
    Row {
        code: t.code.to_string(),
        channel: t.channel.as_str(),
        channel_icon: channel_icon(t.channel),
        status: status_label(t.status),
        opd: t.opd.clone().unwrap_or_else(|| "—".into()),
        category: t.category.clone().unwrap_or_else(|| "—".into()),
        created: local(state, t.created_at),
        deadline: countdown(t, now),
        overdue: t.overdue,
        assignee: t.assignee.clone().unwrap_or_default(),
        triage: matches!(t.status, Status::New | Status::AwaitingIdentity) && t.opd.is_none(),
    }
}

/// The table body of the inbox for these filters (the live inbox's poll).
pub(crate) async fn inbox_rows(
    state: &AppState,
    s: &Session,
    q: &HashMap<String, String>,
) -> Response {
    match inbox_page_rows(state, s, q).await {
        Ok((_, rows, _)) => render(StatusCode::OK, &InboxRows { rows }),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn inbox(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = Principal::User(s.clone());
    let nav = || Nav::of(&s);
    // Read before the rows: a change between the two shows up at the next poll.
    let version = state.store.inbox_version().await.unwrap_or_default();
    let (f, rows, next_cursor) = match inbox_page_rows(&state, &s, &q).await {
        Ok(x) => x,
        Err(e) => return error_page(nav(), &e, Some("/".into())),
    };
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let next = next_cursor.map(|c| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for k in ["status", "channel", "opd", "category", "overdue", "q", "limit", "assignee"] {
            if let Some(v) = q.get(k).filter(|v| !v.is_empty()) {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("cursor", &c);
        format!("/?{}", ser.finish())
    });
    let statuses = Status::ALL
        .iter()
        .map(|s| Opt {
            value: s.as_str().into(),
            label: status_label(*s).into(),
            selected: f.status == Some(*s),
        })
        .collect();
    let channels = Channel::ALL
        .iter()
        .map(|c| Opt {
            value: c.as_str().into(),
            label: format!("[{}] {}", channel_icon(*c), c.as_str()),
            selected: f.channel == Some(*c),
        })
        .collect();
    let page = InboxPage {
        nav: nav(),
        rows,
        statuses,
        channels,
        confined: p.reach() != Reach::All,
        opd: get("opd"),
        category: get("category"),
        overdue: get("overdue"),
        q: get("q"),
        next,
        mine: f.assignee.is_some(),
        csrf: s.csrf_token.clone(),
        opds: opd_options(&state, None),
        can_bulk_assign: p.require_act(crate::session::Act::Assign).is_ok(),
        version,
        on_duty: match p.require_act(crate::session::Act::Assign) {
            Ok(()) => Some(state.store.on_duty(s.user.id).await.unwrap_or(false)),
            Err(_) => None,
        },
    };
    render(StatusCode::OK, &page)
}

// ---- Ticket ----

struct TicketHead {
    code: String,
    status: &'static str,
    channel: &'static str,
    channel_icon: &'static str,
    opd: String,
    category: String,
    created: String,
    due: String,
    deadline: String,
    overdue: bool,
    merged_into: Option<String>,
    location: Option<String>,
    /// OpenStreetMap at the ticket's coordinates.
    map: Option<String>,
    /// The gazetteer place and kecamatan recognised in the complaint.
    place: Option<String>,
}

/// An attachment in the thread: a link to it, with a thumbnail for a picture.
struct AttRow {
    url: String,
    thumb: Option<String>,
    label: String,
}

struct MsgRow {
    direction: &'static str,
    channel: &'static str,
    channel_icon: &'static str,
    at: String,
    author: Option<String>,
    delivery: Option<&'static str>,
    text: String,
    /// How an answer fared (`texts::delivery_label`), and why it failed.
    receipt: Option<&'static str>,
    receipt_error: Option<String>,
    attachments: Vec<AttRow>,
    location: Option<String>,
    map: Option<String>,
    /// Where the answer went and why, when not simply where it was sent.
    delivery_note: Option<String>,
}

struct EventRow {
    at: String,
    actor: String,
    what: String,
    note: String,
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage {
    nav: Option<Nav>,
    csrf: String,
    t: TicketHead,
    reporter: String,
    messages: Vec<MsgRow>,
    events: Vec<EventRow>,
    can_assign: bool,
    can_merge: bool,
    opds: Vec<Opt>,
    statuses: Vec<Opt>,
    identity_text: String,
    /// The operator handling the ticket; whether this user may take it or let it go.
    handler: Option<String>,
    can_take: bool,
    can_release: bool,
    /// The canned answers for this ticket, filled; the answer box's text (a picked one).
    canned: Vec<CannedOpt>,
    reply_text: String,
    /// "dilaporkan oleh N warga · insiden #ID" when the ticket belongs to an incident.
    incident: Option<String>,
    /// (code, "kemungkinan sama dengan …") for the join / dismiss buttons.
    incident_suggestions: Vec<(String, String)>,
    /// The resident's other tickets across channels: (code, "kanal · status · masuk").
    resident_tickets: Vec<(String, String)>,
    /// Same name, same desa: tickets whose reporter may be this resident.
    resident_suggested: Vec<(String, String)>,
    /// The reporter is linked to others (an unlink button).
    resident_linked: bool,
}

struct CannedOpt {
    id: i64,
    title: String,
    text: String,
    selected: bool,
}

fn place(l: &aduan_core::Location) -> String {
    format!("{:.5}, {:.5}", l.lat, l.lon)
}

/// The registry's OPDs as options, `selected` first.
fn opd_options(state: &AppState, selected: Option<&str>) -> Vec<Opt> {
    let mut opds: Vec<Opt> = match &state.config.opds {
        Some(codes) => codes
            .iter()
            .map(|c| Opt {
                value: c.clone(),
                label: match state.config.opd_names.get(c) {
                    Some(n) => format!("{c} — {n}"),
                    None => c.clone(),
                },
                selected: selected == Some(c),
            })
            .collect(),
        None => Vec::new(),
    };
    opds.sort_by_key(|o| !o.selected);
    opds
}

/// OpenStreetMap centred on `l` with a marker, zoom 17.
pub(crate) fn osm_link(l: &aduan_core::Location) -> String {
    format!(
        "https://www.openstreetmap.org/?mlat={lat:.6}&mlon={lon:.6}#map=17/{lat:.6}/{lon:.6}",
        lat = l.lat,
        lon = l.lon
    )
}

/// `Karangwangkal, Kec. Purwokerto Utara` from the place and kecamatan the router found.
fn place_name(place: Option<&str>, kecamatan: Option<&str>) -> Option<String> {
    match (place, kecamatan) {
        (Some(p), Some(k)) if !p.eq_ignore_ascii_case(k) => Some(format!("{p}, Kec. {k}")),
        (_, Some(k)) => Some(format!("Kec. {k}")),
        (Some(p), None) => Some(p.to_owned()),
        (None, None) => None,
    }
}

fn ticket_page(
    state: &AppState,
    s: &Session,
    p: &Principal,
    v: TicketView,
    canned: Vec<aduan_store::CannedAnswer>,
    picked: Option<i64>,
) -> TicketPage {
    let t = &v.summary;
    let now = Utc::now();
    let head = TicketHead {
        code: t.code.to_string(),
        status: status_label(t.status),
        channel: t.channel.as_str(),
        channel_icon: channel_icon(t.channel),
        opd: match &t.opd {
            Some(o) => match state.config.opd_names.get(o) {
                Some(name) => format!("{o} — {name}"),
                None => o.clone(),
            },
            None => texts::NO_OPD_YET.into(),
        },
        category: t.category.clone().unwrap_or_else(|| "—".into()),
        created: local(state, t.created_at),
        due: local(state, t.first_response_due_at),
        deadline: countdown(t, now),
        overdue: t.overdue,
        merged_into: t.merged_into.map(|c| c.to_string()),
        location: t.location.as_ref().map(place),
        map: t.location.as_ref().map(osm_link),
        place: place_name(t.place.as_deref(), t.kecamatan.as_deref()),
    };
    let title = aduan_core::texts::identity_title;
    let reporter = match &v.reporter {
        Some(r) => {
            let mut parts: Vec<String> = r.name.iter().cloned().collect();
            parts.extend(r.identities.iter().map(|i| format!("{}: {}", title(i.kind), i.value)));
            if r.confidential {
                parts.push("(identitas dirahasiakan)".into());
            }
            if parts.is_empty() { "anonim".into() } else { parts.join(" · ") }
        }
        None => "anonim".into(),
    };
    let messages = v
        .messages
        .iter()
        .map(|m| MsgRow {
            direction: if m.direction == aduan_core::Direction::In { "in" } else { "out" },
            channel: m.channel.as_str(),
            channel_icon: channel_icon(m.channel),
            at: local(state, m.at),
            author: m.author.clone(),
            delivery: m.delivery.map(|d| d.as_str()),
            text: m.text.clone(),
            receipt: m.receipt.as_ref().map(|d| texts::delivery_label(d.status)),
            receipt_error: m.receipt.as_ref().and_then(|d| d.error.clone()),
            attachments: m
                .attachments
                .iter()
                .zip(&m.attachment_ids)
                .map(|(a, id)| {
                    let url = crate::attachments::url(*id);
                    let stored = !a.sha256.is_empty();
                    AttRow {
                        thumb: (stored && crate::attachments::is_thumbnailable(&a.content_type))
                            .then(|| format!("{url}/thumb")),
                        url: if stored { url } else { String::new() },
                        label: format!(
                            "{} ({}, {} KB)",
                            a.filename.as_deref().unwrap_or("lampiran"),
                            a.content_type,
                            a.size.div_ceil(1024)
                        ),
                    }
                })
                .collect(),
            location: m.location.as_ref().map(place),
            map: m.location.as_ref().map(osm_link),
            delivery_note: m.delivery_note.clone(),
        })
        .collect();
    let events = v
        .events
        .iter()
        .map(|e| {
            let mut what = event_label(e.kind).to_owned();
            match (&e.from, &e.to) {
                (Some(f), Some(t)) if e.kind != EventKind::MessageReceived => {
                    what.push_str(&format!(": {f} → {t}"))
                }
                (None, Some(t))
                    if !matches!(e.kind, EventKind::MessageReceived | EventKind::Replied) =>
                {
                    what.push_str(&format!(": {t}"))
                }
                _ => {}
            }
            EventRow {
                at: local(state, e.at),
                actor: e.actor.to_string(),
                what,
                note: e.note.clone().unwrap_or_default(),
            }
        })
        .collect();
    let mut opds: Vec<Opt> = match &state.config.opds {
        Some(codes) => codes
            .iter()
            .map(|c| Opt {
                value: c.clone(),
                label: match state.config.opd_names.get(c) {
                    Some(n) => format!("{c} — {n}"),
                    None => c.clone(),
                },
                selected: t.opd.as_deref() == Some(c),
            })
            .collect(),
        None => Vec::new(),
    };
    opds.sort_by_key(|o| !o.selected);
    let statuses = [Status::InProgress, Status::Resolved, Status::Closed]
        .iter()
        .map(|s| Opt { value: s.as_str().into(), label: status_label(*s).into(), selected: false })
        .collect();
    let can_handle = p.require_act(crate::session::Act::Assign).is_ok();
    TicketPage {
        nav: Nav::of(s),
        csrf: s.csrf_token.clone(),
        t: head,
        reporter,
        messages,
        events,
        can_assign: p.require_act(crate::session::Act::Assign).is_ok(),
        can_merge: p.require_act(crate::session::Act::Merge).is_ok(),
        opds,
        statuses,
        identity_text: tickets::identity_request_text(t.code),
        handler: t.assignee.clone(),
        can_take: can_handle
            && t.assignee.as_deref() != Some(s.user.email.as_str())
            && matches!(t.status, Status::New | Status::AwaitingIdentity),
        can_release: can_handle && t.assignee.is_some(),
        reply_text: canned
            .iter()
            .find(|c| Some(c.id) == picked)
            .map(|c| fill_canned(state, p, &v, &c.body))
            .unwrap_or_default(),
        canned: canned
            .iter()
            .filter(|c| c.category.is_none() || c.category == t.category)
            .map(|c| CannedOpt {
                id: c.id,
                title: c.title.clone(),
                text: fill_canned(state, p, &v, &c.body),
                selected: Some(c.id) == picked,
            })
            .collect(),
        incident: v
            .incident
            .as_ref()
            .map(|i| format!("{} · insiden #{}", texts::reported_by(i.reports), i.id)),
        incident_suggestions: v
            .incident_suggestions
            .iter()
            .map(|g| (g.code.to_string(), g.why.clone()))
            .collect(),
        resident_tickets: resident_rows(state, v.resident.as_ref().map(|r| &r.tickets)),
        resident_suggested: resident_rows(state, v.resident.as_ref().map(|r| &r.suggested)),
        resident_linked: v.resident.as_ref().is_some_and(|r| r.id.is_some()),
    }
}

fn resident_rows(
    state: &AppState,
    list: Option<&Vec<aduan_store::ResidentTicket>>,
) -> Vec<(String, String)> {
    list.into_iter()
        .flatten()
        .map(|t| {
            let what = format!(
                "{} {} · {} · {}",
                channel_icon(t.channel),
                t.channel.as_str(),
                status_label(t.status),
                local(state, t.created_at)
            );
            (t.code.to_string(), what)
        })
        .collect()
}

/// A canned answer's text for ticket `v` as `p` sees it: `{nama}` is the reporter's name
/// only for whoever sees it unmasked (never for a confidential reporter).
fn fill_canned(state: &AppState, p: &Principal, v: &TicketView, body: &str) -> String {
    let t = &v.summary;
    let opd = t.opd.as_ref().map(|o| state.config.opd_names.get(o).unwrap_or(o).as_str());
    let name = match &v.reporter {
        Some(r) if !r.confidential && p.reach() == Reach::All => r.name.as_deref(),
        _ => None,
    };
    crate::desk::fill(body, &t.code.to_string(), opd, name)
}

pub(crate) async fn ticket(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = Principal::User(s.clone());
    let code = match raw.parse::<TicketCode>() {
        Ok(c) => c,
        Err(_) => {
            let e = ApiError::not_found(format!("Aduan {raw} tidak ada."));
            return error_page(Nav::of(&s), &e, Some("/".into()));
        }
    };
    let picked = q.get("canned").and_then(|c| c.parse::<i64>().ok());
    let loaded = async {
        let v = tickets::visible(&state, &p, code).await?;
        Ok::<_, ApiError>((v, state.store.canned_answers().await?))
    };
    match loaded.await {
        Ok((v, canned)) => render(StatusCode::OK, &ticket_page(&state, &s, &p, v, canned, picked)),
        Err(e) => error_page(Nav::of(&s), &e, Some("/".into())),
    }
}

/// `POST /tickets/{code}/{assign|reply|status|merge|reject}` from the ticket page's forms.
pub(crate) async fn ticket_action(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    Path((raw, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let back = format!("/tickets/{raw}");
    let nav = || Nav::of(&s);
    if !csrf_ok(&s.csrf_token, form.get("csrf").map(String::as_str)) {
        return error_page(nav(), &csrf_error(), Some(back));
    }
    let Ok(code) = raw.parse::<TicketCode>() else {
        return error_page(nav(), &ApiError::not_found("Aduan tidak ada."), Some("/".into()));
    };
    let p = Principal::User(s.clone());
    let field = |k: &str, max: usize| -> Result<Option<String>, ApiError> {
        match form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(v) if v.chars().count() > max => {
                Err(ApiError::field(k, format!("is longer than {max} characters")))
            }
            Some(v) => Ok(Some(v.to_owned())),
            None => Ok(None),
        }
    };
    let required =
        |k: &str, max: usize| field(k, max)?.ok_or_else(|| ApiError::field(k, "is required"));
    let result: Result<(), ApiError> = async {
        match action.as_str() {
            "assign" => {
                let opd = required("opd", 50)?;
                tickets::do_assign(&state, &p, code, &opd, field("note", 2000)?).await
            }
            "reply" => {
                let text = required("text", MAX_TEXT_CHARS)?;
                tickets::do_reply(&state, &p, code, text).await.map(|_| ())
            }
            "status" => {
                let to = required("status", 40)?
                    .parse::<Status>()
                    .map_err(|e| ApiError::field("status", e.to_string()))?;
                tickets::do_status(&state, &p, code, to, field("note", 2000)?).await
            }
            "identity" => {
                tickets::do_request_identity(&state, &p, code, field("text", MAX_TEXT_CHARS)?)
                    .await
                    .map(|_| ())
            }
            "reject" => {
                let reason = required("reason", 2000)?;
                tickets::do_status(&state, &p, code, Status::Rejected, Some(reason)).await
            }
            "take" => crate::desk::do_handle(&state, &p, code, true).await,
            "release" => crate::desk::do_handle(&state, &p, code, false).await,
            "merge" => {
                let into = required("into", 20)?
                    .parse::<TicketCode>()
                    .map_err(|e| ApiError::field("into", e.to_string()))?;
                tickets::do_merge(&state, &p, code, into).await
            }
            // Issue 20: the suggestion's one-click join and dismiss, and leaving.
            "incident-join" | "incident-dismiss" => {
                use aduan_store::IncidentAction::{Dismiss, Join};
                let other = required("other", 20)?
                    .parse::<TicketCode>()
                    .map_err(|e| ApiError::field("other", e.to_string()))?;
                let act = if action == "incident-join" { Join(other) } else { Dismiss(other) };
                tickets::do_incident(&state, &p, code, act).await
            }
            "incident-leave" => {
                let act = aduan_store::IncidentAction::Leave;
                tickets::do_incident(&state, &p, code, act).await
            }
            "resident-link" => {
                let other = required("other", 20)?
                    .parse::<TicketCode>()
                    .map_err(|e| ApiError::field("other", e.to_string()))?;
                let act = aduan_store::ResidentAction::Link(other);
                tickets::do_resident(&state, &p, code, act).await
            }
            "resident-unlink" => {
                let act = aduan_store::ResidentAction::Unlink;
                tickets::do_resident(&state, &p, code, act).await
            }
            _ => Err(ApiError::not_found("no such action")),
        }
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!(ticket = %code, action = %action, user_id = s.user.id, "Inbox action done.");
            Redirect::to(&format!("/tickets/{code}")).into_response()
        }
        Err(e) => error_page(nav(), &e, Some(back)),
    }
}
