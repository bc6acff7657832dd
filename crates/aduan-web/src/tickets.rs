//! The ticket endpoints of `/api/v1/tickets`.

use std::collections::HashMap;

use aduan_core::{Channel, Status, TicketCode};
use aduan_store::{Cursor, Scope, TicketFilter};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Fields, JsonObject};
use crate::intake::MAX_TEXT_CHARS;

/// A code from the path; one that can't exist is simply not found.
type RawCode = Result<Path<String>, PathRejection>;

/// A code from the path; one that can't exist is simply not found.
fn code(raw: RawCode) -> Result<TicketCode, ApiError> {
    let Ok(Path(raw)) = raw else {
        return Err(ApiError::not_found("no such ticket"));
    };
    raw.parse().map_err(|_| ApiError::not_found(format!("ticket {raw} does not exist")))
}

fn filter(q: &HashMap<String, String>) -> Result<TicketFilter, ApiError> {
    let get = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut f = TicketFilter { limit: 50, ..Default::default() };
    if let Some(s) = get("status") {
        f.status = Some(s.parse::<Status>().map_err(|e| ApiError::field("status", e.to_string()))?);
    }
    if let Some(c) = get("channel") {
        f.channel =
            Some(c.parse::<Channel>().map_err(|e| ApiError::field("channel", e.to_string()))?);
    }
    f.opd = get("opd").map(str::to_owned);
    if let Some(o) = get("overdue") {
        f.overdue = Some(match o {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(ApiError::field("overdue", "must be true or false")),
        });
    }
    f.q = get("q").map(|s| s.chars().take(200).collect());
    if let Some(c) = get("cursor") {
        f.cursor = Some(c.parse::<Cursor>().map_err(|e| ApiError::field("cursor", e.to_string()))?);
    }
    if let Some(l) = get("limit") {
        f.limit = l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=200).contains(l))
            .ok_or_else(|| ApiError::field("limit", "must be a whole number from 1 to 200"))?;
    }
    Ok(f)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let Query(q) = q.map_err(|e| {
        ApiError::new(axum::http::StatusCode::BAD_REQUEST, "malformed_query", e.body_text())
    })?;
    let page = state.store.tickets(&filter(&q)?).await?;
    Ok(Json(json!(page)))
}

pub(crate) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    raw: RawCode,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Read)?;
    let code = code(raw)?;
    let view = state
        .store
        .ticket(code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("ticket {code} does not exist")))?;
    Ok(Json(json!(view)))
}

/// Answers an action with the ticket as it is now.
async fn current(state: &AppState, code: TicketCode) -> Result<Json<Value>, ApiError> {
    let view = state
        .store
        .ticket(code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("ticket {code} does not exist")))?;
    Ok(Json(json!(view)))
}

/// An operator's action on one ticket: a caller with scope `admin`, an existing-looking
/// code, and a JSON object body, checked in that order.
pub(crate) struct Action {
    caller: Caller,
    code: TicketCode,
    body: JsonObject,
}

impl FromRequest<AppState> for Action {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await?;
        caller.require(Scope::Admin)?;
        let code = code(Path::<String>::from_request_parts(&mut parts, state).await)?;
        let body = JsonObject::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Action { caller, code, body })
    }
}

impl Action {
    fn fields(&self) -> Fields<'_> {
        Fields::new(&self.body.0)
    }
}

pub(crate) async fn assign(
    State(state): State<AppState>,
    a: Action,
) -> Result<Json<Value>, ApiError> {
    let f = a.fields();
    let opd = f.req_str("opd", 50)?;
    if let Some(known) = &state.config.opds
        && !known.contains(opd)
    {
        return Err(ApiError::field("opd", format!("{opd} is not an OPD of the registry")));
    }
    let note = f.opt_str("note", 2000)?.map(str::to_owned);
    state.store.assign(a.code, opd.to_owned(), a.caller.actor(), note).await?;
    current(&state, a.code).await
}

pub(crate) async fn reply(
    State(state): State<AppState>,
    a: Action,
) -> Result<Json<Value>, ApiError> {
    let text = a.fields().req_str("text", MAX_TEXT_CHARS)?.to_owned();
    let replied = state.store.reply(a.code, text, a.caller.actor()).await?;
    let Json(mut view) = current(&state, a.code).await?;
    view["reply"] = json!(replied);
    Ok(Json(view))
}

pub(crate) async fn status(
    State(state): State<AppState>,
    a: Action,
) -> Result<Json<Value>, ApiError> {
    let f = a.fields();
    let to = f
        .req_str("status", 40)?
        .parse::<Status>()
        .map_err(|e| ApiError::field("status", e.to_string()))?;
    let note = f.opt_str("note", 2000)?.map(str::to_owned);
    state.store.set_status(a.code, to, a.caller.actor(), note).await?;
    current(&state, a.code).await
}

pub(crate) async fn merge(
    State(state): State<AppState>,
    a: Action,
) -> Result<Json<Value>, ApiError> {
    let into = a
        .fields()
        .req_str("into", 20)?
        .parse::<TicketCode>()
        .map_err(|e| ApiError::field("into", e.to_string()))?;
    state.store.merge(a.code, into, a.caller.actor()).await?;
    current(&state, a.code).await
}
