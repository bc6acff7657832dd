//! The desk's fast paths (issue 19.2 and 19.3): canned answers (`jawaban siap pakai`),
//! operators taking triage tickets, bulk actions from the inbox list and the live inbox.
//!
//! - **Canned answers**: admins manage them on `/canned` (CSRF, an audit entry per change);
//!   the ticket page lists the global ones and those of the ticket's category, each with
//!   its text filled ([`fill`]: `{kode}`, `{opd}`, `{nama}`, the last falling back to
//!   "Bapak/Ibu"; unknown placeholders stay as typed). Picking one is a GET
//!   (`/tickets/{code}?canned=ID`) that pre-fills the answer box, so it works without
//!   JavaScript; `static/inbox.js` fills the box at once from the option's `data-text`.
//! - **Taking a ticket**: `POST /tickets/{code}/take` ("saya tangani") and `/release`
//!   ("lepaskan") set `tickets.assignee` through `Store::set_handler` (a `handler` event);
//!   the inbox filters `assignee=me`. With `[inbox] round_robin` the daemon hands new
//!   triage tickets to the operators on duty (`POST /duty`, each operator's own toggle;
//!   `Store::round_robin`).
//! - **Bulk**: `POST /bulk` with `code` repeated, `action` = `assign` (with `opd`), `merge`
//!   (into the oldest of them) or `reject` (with `reason`); each ticket goes through the
//!   same checks as its single action (officials can neither dispose nor merge) and gets
//!   its own event; the answer page lists what failed and why.
//! - **Live inbox**: `GET /inbox/rows` answers the inbox's table body for the same filters,
//!   or 204 when the store's version (`X-Inbox-Version`, `Store::inbox_version`: newest ids)
//!   is the one the client already has. The version comes from the store, so every
//!   instance over one PostgreSQL sees every change; `static/inbox.js` polls it every
//!   2 seconds, swaps the rows and counts new triage rows in the title.

use std::collections::HashMap;

use aduan_core::{Status, TicketCode};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::pages::{Nav, PageUser, admin_form, admin_only, csrf_error, error_page, render};
use crate::session::{Act, Principal, csrf_ok};
use crate::tickets;

/// The greeting `{nama}` becomes when the resident's name is not known (or not shown).
pub const DEFAULT_NAME: &str = "Bapak/Ibu";

/// A canned answer's text for one ticket: `{kode}` the ticket code, `{opd}` the OPD's name
/// (or code; "OPD terkait" before disposition), `{nama}` the resident's name or
/// [`DEFAULT_NAME`]. Any other `{…}` stays as typed.
pub fn fill(body: &str, code: &str, opd: Option<&str>, name: Option<&str>) -> String {
    let name = name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(DEFAULT_NAME);
    body.replace("{kode}", code)
        .replace("{opd}", opd.unwrap_or("OPD terkait"))
        .replace("{nama}", name)
}

// ---- Canned answers: admin page ----

struct CannedRow {
    id: i64,
    title: String,
    body: String,
    category: String,
}

#[derive(Template)]
#[template(path = "canned.html")]
struct CannedPage {
    nav: Option<Nav>,
    csrf: String,
    rows: Vec<CannedRow>,
}

/// `GET /canned`: the list with a form per answer and one to add.
pub(crate) async fn canned_list(State(state): State<AppState>, PageUser(s): PageUser) -> Response {
    if let Some(r) = admin_only(&s) {
        return r;
    }
    let rows = match state.store.canned_answers().await {
        Ok(rows) => rows,
        Err(e) => return error_page(Nav::of(&s), &e.into(), None),
    };
    let page = CannedPage {
        nav: Nav::of(&s),
        csrf: s.csrf_token.clone(),
        rows: rows
            .into_iter()
            .map(|a| CannedRow {
                id: a.id,
                title: a.title,
                body: a.body,
                category: a.category.unwrap_or_default(),
            })
            .collect(),
    };
    render(StatusCode::OK, &page)
}

/// `POST /canned` (`id` empty: a new one) and `POST /canned/{id}/delete`.
pub(crate) async fn canned_save(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(r) = admin_form(&s, &form, "/canned") {
        return r;
    }
    let get = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let result = async {
        let id = match get("id") {
            Some(v) => {
                Some(v.parse::<i64>().map_err(|_| ApiError::field("id", "is not a number"))?)
            }
            None => None,
        };
        let title = get("title").ok_or_else(|| ApiError::field("title", "is required"))?;
        let body = get("body").ok_or_else(|| ApiError::field("body", "is required"))?;
        if title.chars().count() > 100 {
            return Err(ApiError::field("title", "is longer than 100 characters"));
        }
        if body.chars().count() > crate::intake::MAX_TEXT_CHARS {
            return Err(ApiError::field("body", "is too long"));
        }
        let category = get("category").map(str::to_owned);
        if category.as_ref().is_some_and(|c| c.chars().count() > 100) {
            return Err(ApiError::field("category", "is longer than 100 characters"));
        }
        let actor = Principal::User(s.clone()).actor();
        state
            .store
            .save_canned_answer(id, title.to_owned(), body.to_owned(), category, actor)
            .await?
            .ok_or_else(|| ApiError::not_found("Jawaban siap pakai itu tidak ada."))
    };
    match result.await {
        Ok(id) => {
            tracing::info!(canned_answer = id, user_id = s.user.id, "Canned answer saved.");
            Redirect::to("/canned").into_response()
        }
        Err(e) => error_page(Nav::of(&s), &e, Some("/canned".into())),
    }
}

pub(crate) async fn canned_delete(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    Path(raw): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(r) = admin_form(&s, &form, "/canned") {
        return r;
    }
    let Ok(id) = raw.parse::<i64>() else {
        return error_page(Nav::of(&s), &ApiError::not_found("no such canned answer"), None);
    };
    let actor = Principal::User(s.clone()).actor();
    match state.store.delete_canned_answer(id, actor).await {
        Ok(true) => {
            tracing::info!(canned_answer = id, user_id = s.user.id, "Canned answer deleted.");
            Redirect::to("/canned").into_response()
        }
        Ok(false) => error_page(
            Nav::of(&s),
            &ApiError::not_found("Jawaban siap pakai itu tidak ada."),
            Some("/canned".into()),
        ),
        Err(e) => error_page(Nav::of(&s), &e.into(), Some("/canned".into())),
    }
}

// ---- Taking a ticket ----

/// "saya tangani" (`take`) or "lepaskan" (`release`) by a signed-in operator or admin.
pub(crate) async fn do_handle(
    state: &AppState,
    p: &Principal,
    code: TicketCode,
    take: bool,
) -> Result<(), ApiError> {
    tickets::may_act(state, p, code, Act::Assign).await?;
    let Principal::User(s) = p else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a signed-in operator takes a ticket",
        ));
    };
    let handler = take.then(|| s.user.email.clone());
    state.store.set_handler(code, handler, p.actor()).await?;
    Ok(())
}

/// `POST /duty` (`on` = `1` or `0`): an operator's own on-duty toggle for the round-robin.
pub(crate) async fn duty(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !csrf_ok(&s.csrf_token, form.get("csrf").map(String::as_str)) {
        return error_page(Nav::of(&s), &csrf_error(), Some("/".into()));
    }
    let p = Principal::User(s.clone());
    if let Err(e) = p.require_act(Act::Assign) {
        return error_page(Nav::of(&s), &e, Some("/".into()));
    }
    let on = form.get("on").map(String::as_str) == Some("1");
    match state.store.set_on_duty(s.user.id, on, p.actor()).await {
        Ok(_) => {
            tracing::info!(user_id = s.user.id, on_duty = on, "On-duty toggled.");
            Redirect::to("/").into_response()
        }
        Err(e) => error_page(Nav::of(&s), &e.into(), Some("/".into())),
    }
}

// ---- Bulk ----

struct BulkRow {
    code: String,
    ok: bool,
    message: String,
}

#[derive(Template)]
#[template(path = "bulk.html")]
struct BulkPage {
    nav: Option<Nav>,
    action: String,
    rows: Vec<BulkRow>,
    failed: usize,
}

/// The most tickets one bulk form acts on.
pub const MAX_BULK: usize = 200;

/// `POST /bulk`: `csrf`, `action`, `code` (repeated), `opd` or `reason`.
pub(crate) async fn bulk(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let nav = || Nav::of(&s);
    let one = |k: &str| {
        form.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    };
    if !csrf_ok(&s.csrf_token, one("csrf")) {
        return error_page(nav(), &csrf_error(), Some("/".into()));
    }
    let p = Principal::User(s.clone());
    let mut codes: Vec<TicketCode> = Vec::new();
    for (_, v) in form.iter().filter(|(n, _)| n == "code") {
        match v.trim().parse::<TicketCode>() {
            Ok(c) if !codes.contains(&c) => codes.push(c),
            Ok(_) => {}
            Err(_) => {
                let e = ApiError::field("code", format!("{v:?} is not a ticket code"));
                return error_page(nav(), &e, Some("/".into()));
            }
        }
    }
    if codes.is_empty() || codes.len() > MAX_BULK {
        let e = ApiError::field("code", format!("choose 1 to {MAX_BULK} tickets"));
        return error_page(nav(), &e, Some("/".into()));
    }
    let action = one("action").unwrap_or_default().to_owned();
    // Refused as a whole before any ticket is touched: a role that can't do this at all,
    // a missing OPD or reason.
    let checked = match action.as_str() {
        "assign" => p.require_act(Act::Assign).and_then(|()| {
            one("opd").map(str::to_owned).ok_or_else(|| ApiError::field("opd", "is required"))
        }),
        "merge" => p.require_act(Act::Merge).map(|()| String::new()),
        "reject" => p.require_act(Act::Status).and_then(|()| {
            one("reason")
                .filter(|r| r.chars().count() <= 2000)
                .map(str::to_owned)
                .ok_or_else(|| ApiError::field("reason", "is required (at most 2000 characters)"))
        }),
        _ => Err(ApiError::field("action", "must be assign, merge or reject")),
    };
    let arg = match checked {
        Ok(a) => a,
        Err(e) => return error_page(nav(), &e, Some("/".into())),
    };
    let mut rows = Vec::new();
    let mut record = |code: TicketCode, r: Result<(), ApiError>, done: &str| {
        if r.is_ok() {
            tracing::info!(ticket = %code, action = %action, user_id = s.user.id, "Bulk action done.");
        }
        rows.push(BulkRow {
            code: code.to_string(),
            ok: r.is_ok(),
            message: r.map(|()| done.to_owned()).unwrap_or_else(|e| e.message),
        });
    };
    match action.as_str() {
        "assign" => {
            for code in codes {
                let r = tickets::do_assign(&state, &p, code, &arg, None).await;
                record(code, r, &format!("didisposisikan ke {arg}"));
            }
        }
        "reject" => {
            for code in codes {
                let r =
                    tickets::do_status(&state, &p, code, Status::Rejected, Some(arg.clone())).await;
                record(code, r, "ditolak");
            }
        }
        _ => {
            // Merge into the oldest ticket of those the user may see.
            let mut seen = Vec::new();
            for code in codes {
                match tickets::visible(&state, &p, code).await {
                    Ok(v) => seen.push((v.summary.created_at, code)),
                    Err(e) => record(code, Err(e), ""),
                }
            }
            seen.sort_by_key(|(at, _)| *at);
            if let Some(&(_, target)) = seen.first() {
                record(target, Ok(()), "aduan tujuan penggabungan");
                for &(_, code) in &seen[1..] {
                    let r = tickets::do_merge(&state, &p, code, target).await;
                    record(code, r, &format!("digabung ke {target}"));
                }
            }
        }
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    let status = if failed == 0 { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(status, &BulkPage { nav: nav(), action, rows, failed })
}

// ---- Live inbox ----

/// `GET /inbox/rows?<the inbox's filters>&since=V`: 204 when nothing changed since version
/// `V`, else the table body; the current version in `X-Inbox-Version` either way.
pub(crate) async fn rows(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let version = match state.store.inbox_version().await {
        Ok(v) => v,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let header_of = |mut r: Response| {
        r.headers_mut().insert("x-inbox-version", HeaderValue::from(version));
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    };
    if q.get("since").and_then(|v| v.parse::<i64>().ok()) == Some(version) {
        return header_of(StatusCode::NO_CONTENT.into_response());
    }
    header_of(crate::pages::inbox_rows(&state, &s, &q).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        let body = "Yth. {nama}, aduan {kode} sudah diteruskan ke {opd}. {lainnya}";
        assert_eq!(
            fill(body, "ADU-7K3M9Q2X", Some("Dinas Pekerjaan Umum"), Some("Siti")),
            "Yth. Siti, aduan ADU-7K3M9Q2X sudah diteruskan ke Dinas Pekerjaan Umum. {lainnya}"
        );
        assert_eq!(
            fill("{nama} {nama} {opd}", "X", None, Some("  ")),
            "Bapak/Ibu Bapak/Ibu OPD terkait"
        );
        assert_eq!(fill("{NAMA} {kode", "X", None, None), "{NAMA} {kode");
    }
}
