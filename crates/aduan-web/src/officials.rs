//! Officials acting from their mailbox (issue 19 item 5): `GET /aksi/{token}` shows what a
//! signed link from a notification will do and a form; `POST /aksi/{token}` does it.
//!
//! The token ([`aduan_core::action_link`]) is the credential: no session, no CSRF cookie.
//! A GET never changes anything (mail scanners and link previews open links). The POST is
//! refused when the browser says it comes from another site (`Origin` not ours, or
//! `Sec-Fetch-Site: cross-site`); the token itself is unguessable and single-use. Both are
//! rate-limited per client address like every public page.
//!
//! Answers: a token that can't be read or whose signature is wrong, 403; expired, 410; used
//! before, 410 ("sudah digunakan"); the ticket has left the link's OPD, 403; the action is
//! not possible in the ticket's status, 409; a missing reason/question/note, 422. None of
//! them changes the ticket. The action is audited as `user:<official's address>`.

use std::collections::HashMap;

use aduan_core::action_link::{ActionClaim, LinkError, OfficialAction};
use aduan_core::texts;
use aduan_store::{LinkOutcome, TicketSummary};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use crate::AppState;
use crate::error::ApiError;
use crate::intake::MAX_TEXT_CHARS;
use crate::pages::{Nav, error_page, render, status_label};
use crate::public::limited;

struct TicketFacts {
    code: String,
    opd: String,
    category: String,
    status: &'static str,
    official: String,
}

struct ActionForm {
    token: String,
    effect: String,
    field: Option<&'static str>,
    text: String,
    button: &'static str,
}

#[derive(Template)]
#[template(path = "aksi.html")]
struct ActionPage {
    nav: Option<Nav>,
    heading: String,
    ticket: Option<TicketFacts>,
    notice: Option<String>,
    error: Option<String>,
    form: Option<ActionForm>,
}

fn opd_name(state: &AppState, code: &str) -> String {
    state.config.opd_names.get(code).cloned().unwrap_or_else(|| code.to_owned())
}

fn heading(action: OfficialAction) -> String {
    format!("{}: konfirmasi tindakan", action.label_id())
}

fn facts(state: &AppState, claim: &ActionClaim, t: &TicketSummary) -> TicketFacts {
    TicketFacts {
        code: t.code.to_string(),
        opd: opd_name(state, &claim.opd),
        category: t.category.clone().unwrap_or_else(|| "-".into()),
        status: status_label(t.status),
        official: claim.official.clone(),
    }
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    error_page(None, &ApiError::new(status, code, message), None)
}

/// The claim of a token, or the error page for it.
fn read_token(state: &AppState, token: &str) -> Result<ActionClaim, ApiError> {
    let Some(key) = &state.config.action_key else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", texts::ACTION_LINK_INVALID));
    };
    key.verify(token, chrono::Utc::now()).map_err(|e| match e {
        LinkError::Expired => {
            ApiError::new(StatusCode::GONE, "expired", texts::ACTION_LINK_EXPIRED)
        }
        _ => ApiError::new(StatusCode::FORBIDDEN, "invalid_link", texts::ACTION_LINK_INVALID),
    })
}

/// The page for a link that can't act now.
fn refusal_page(
    state: &AppState,
    claim: &ActionClaim,
    t: &TicketSummary,
    why: &LinkOutcome,
) -> Response {
    let (status, message) = match why {
        LinkOutcome::Used => (StatusCode::GONE, texts::ACTION_LINK_USED.to_owned()),
        LinkOutcome::OtherOpd => (StatusCode::FORBIDDEN, texts::ACTION_LINK_OTHER_OPD.to_owned()),
        LinkOutcome::NotNow(s) => (StatusCode::CONFLICT, texts::action_link_not_now(*s)),
        LinkOutcome::NeedsText => {
            (StatusCode::UNPROCESSABLE_ENTITY, texts::ACTION_LINK_NEEDS_TEXT.to_owned())
        }
        LinkOutcome::Done => (StatusCode::OK, texts::OFFICIAL_ACTION_DONE.to_owned()),
    };
    let page = ActionPage {
        nav: None,
        heading: heading(claim.action),
        ticket: Some(facts(state, claim, t)),
        notice: None,
        error: Some(message),
        form: None,
    };
    render(status, &page)
}

fn form(state: &AppState, claim: &ActionClaim, token: &str, text: String) -> ActionForm {
    ActionForm {
        token: token.to_owned(),
        effect: texts::official_action_effect(claim.action, &opd_name(state, &claim.opd)),
        field: texts::official_action_field(claim.action),
        text,
        button: claim.action.label_id(),
    }
}

/// `GET /aksi/{token}`: the confirmation page. Never acts.
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ext: axum::http::Extensions,
) -> Response {
    if let Err(e) = limited(&state, &ext) {
        return error_page(None, &e, None);
    }
    let claim = match read_token(&state, &token) {
        Ok(c) => c,
        Err(e) => return error_page(None, &e, None),
    };
    let (t, refusal) = match state.store.official_link_check(claim.clone()).await {
        Ok(x) => x,
        Err(e) => return error_page(None, &e.into(), None),
    };
    if let Some(why) = refusal {
        return refusal_page(&state, &claim, &t, &why);
    }
    let page = ActionPage {
        nav: None,
        heading: heading(claim.action),
        ticket: Some(facts(&state, &claim, &t)),
        notice: None,
        error: None,
        form: Some(form(&state, &claim, &token, String::new())),
    };
    render(StatusCode::OK, &page)
}

/// Whether the browser says the form was posted from another site.
fn cross_site(state: &AppState, headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let ours = state.config.public_url.trim_end_matches('/');
    // Our origin is the public URL's scheme, host and port.
    let ours = match ours.find("://").map(|i| i + 3) {
        Some(start) => match ours[start..].find('/') {
            Some(slash) => &ours[..start + slash],
            None => ours,
        },
        None => ours,
    };
    !origin.eq_ignore_ascii_case(ours)
}

fn outcome_name(o: &LinkOutcome) -> &'static str {
    match o {
        LinkOutcome::Done => "done",
        LinkOutcome::Used => "used",
        LinkOutcome::OtherOpd => "other_opd",
        LinkOutcome::NotNow(_) => "not_now",
        LinkOutcome::NeedsText => "needs_text",
    }
}

/// `POST /aksi/{token}` (form: `teks` for the reason, question or note): takes the action
/// once.
pub(crate) async fn act(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    body: Result<axum::Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let Err(e) = limited(&state, &ext) {
        return error_page(None, &e, None);
    }
    if cross_site(&state, &headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "cross_site",
            "Formulir ini hanya dapat dikirim dari halaman konfirmasi.",
        );
    }
    let claim = match read_token(&state, &token) {
        Ok(c) => c,
        Err(e) => return error_page(None, &e, None),
    };
    let Ok(axum::Form(f)) = body else {
        return refused(StatusCode::BAD_REQUEST, "malformed_form", "Formulir tidak dapat dibaca.");
    };
    let text = f.get("teks").map(|t| t.chars().take(MAX_TEXT_CHARS).collect::<String>());
    let name = opd_name(&state, &claim.opd);
    let outcome = match state.store.official_act(claim.clone(), name, text.clone()).await {
        Ok(o) => o,
        Err(e) => return error_page(None, &e.into(), None),
    };
    let t = match state.store.ticket(claim.ticket).await {
        Ok(Some(v)) => v.summary,
        Ok(None) => return refused(StatusCode::NOT_FOUND, "not_found", "Aduan tidak ditemukan."),
        Err(e) => return error_page(None, &e.into(), None),
    };
    match outcome {
        LinkOutcome::Done => {
            tracing::info!(ticket = %claim.ticket, opd = claim.opd, action = claim.action.as_str(), "Official acted from an action link.");
            state.telemetry.official_action(claim.action.as_str(), "done");
            let page = ActionPage {
                nav: None,
                heading: heading(claim.action),
                ticket: Some(facts(&state, &claim, &t)),
                notice: Some(texts::OFFICIAL_ACTION_DONE.to_owned()),
                error: None,
                form: None,
            };
            render(StatusCode::OK, &page)
        }
        LinkOutcome::NeedsText => {
            state.telemetry.official_action(claim.action.as_str(), "needs_text");
            let page = ActionPage {
                nav: None,
                heading: heading(claim.action),
                ticket: Some(facts(&state, &claim, &t)),
                notice: None,
                error: Some(texts::ACTION_LINK_NEEDS_TEXT.to_owned()),
                form: Some(form(&state, &claim, &token, text.unwrap_or_default())),
            };
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        why => {
            state.telemetry.official_action(claim.action.as_str(), outcome_name(&why));
            tracing::info!(ticket = %claim.ticket, opd = claim.opd, action = claim.action.as_str(), outcome = ?why, "Action link refused.");
            refusal_page(&state, &claim, &t, &why)
        }
    }
}
