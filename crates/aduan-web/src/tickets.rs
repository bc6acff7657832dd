//! The ticket endpoints of `/api/v1/tickets`.

use std::collections::HashMap;

use aduan_core::{Channel, Direction, Status, TicketCode, privacy};
use aduan_store::{Cursor, TicketFilter, TicketView};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Fields, JsonObject};
use crate::intake::MAX_TEXT_CHARS;
use crate::session::{Act, Principal, Reach};

/// A code from the path; one that can't exist is simply not found.
type RawCode = Result<Path<String>, PathRejection>;

/// A code from the path; one that can't exist is simply not found.
pub(crate) fn code(raw: RawCode) -> Result<TicketCode, ApiError> {
    let Ok(Path(raw)) = raw else {
        return Err(ApiError::not_found("no such ticket"));
    };
    raw.parse().map_err(|_| ApiError::not_found(format!("ticket {raw} does not exist")))
}

pub(crate) fn filter(q: &HashMap<String, String>) -> Result<TicketFilter, ApiError> {
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
    f.category = get("category").map(str::to_owned);
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

/// Confines a filter to what the principal may see: an official's list is their OPD's.
pub(crate) fn confine(p: &Principal, f: &mut TicketFilter) -> Result<(), ApiError> {
    if let Reach::Opd(opd) = p.reach() {
        if f.opd.as_ref().is_some_and(|o| o != &opd) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "officials see only their own OPD's tickets",
            ));
        }
        f.opd = Some(opd);
    }
    Ok(())
}

/// The ticket as an official may read it (issues 14.8 and 21.7), the same way the
/// notification mails show it (`aduan_core::privacy`):
/// - phone numbers, NIK and email addresses masked in every message text and note;
/// - the reporter's name masked (`S*** A***`) and their contacts shown as hints; a reporter
///   who asked for *rahasia* shows no name, address or contact at all, and their name's
///   words and address are masked in the texts;
/// - a resident's later message answering the identity request (`Nama: … Alamat: …`) is
///   replaced by [`privacy::IDENTITY_ANSWER_MASK`].
///
/// Operators and admins (and API keys) see the ticket as stored.
pub(crate) fn redact_for_officials(view: &mut TicketView) {
    // A resident's other tickets are not the official's (issue 20).
    view.resident = None;
    let (name, address, confidential) = match &view.reporter {
        Some(r) => (r.name.clone(), r.address.clone(), r.confidential),
        None => (None, None, false),
    };
    let who =
        privacy::Reporter { name: name.as_deref(), address: address.as_deref(), confidential };
    if let Some(r) = &mut view.reporter {
        if r.confidential {
            r.name = None;
            r.address = None;
            r.identities.clear();
        } else {
            r.name = r.name.as_deref().map(privacy::mask_name);
            for id in &mut r.identities {
                *id = crate::session::mask_identity(id);
            }
        }
    }
    let mut inbound = 0;
    for m in &mut view.messages {
        if m.direction == Direction::In {
            m.author =
                if confidential { None } else { m.author.as_deref().map(privacy::mask_name) };
            inbound += 1;
            if inbound > 1 && privacy::is_identity_answer(&m.text) {
                m.text = privacy::IDENTITY_ANSWER_MASK.to_owned();
                continue;
            }
        }
        m.text = privacy::for_officials(&m.text, &who);
        // A bounce's reason may quote the resident's address.
        if let Some(e) = m.receipt.as_mut().and_then(|d| d.error.as_mut()) {
            *e = privacy::for_officials(e, &who);
        }
    }
    for e in &mut view.events {
        if let Some(n) = &mut e.note {
            *n = privacy::for_officials(n, &who);
        }
    }
}

/// The ticket as `p` may see it: 404 when it does not exist, 403 when it is not theirs.
pub(crate) async fn visible(
    state: &AppState,
    p: &Principal,
    code: TicketCode,
) -> Result<TicketView, ApiError> {
    p.require_read()?;
    let mut view = state
        .store
        .ticket(code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("ticket {code} does not exist")))?;
    p.require_ticket(&view.summary)?;
    p.redact(&mut view);
    Ok(view)
}

/// Checks that `p` may do `act` on ticket `code`.
pub(crate) async fn may_act(
    state: &AppState,
    p: &Principal,
    code: TicketCode,
    act: Act,
) -> Result<(), ApiError> {
    p.require_act(act)?;
    if p.reach() != Reach::All {
        visible(state, p, code).await?;
    }
    Ok(())
}

pub(crate) async fn do_assign(
    state: &AppState,
    p: &Principal,
    code: TicketCode,
    opd: &str,
    note: Option<String>,
) -> Result<(), ApiError> {
    may_act(state, p, code, Act::Assign).await?;
    if let Some(known) = &state.config.opds
        && !known.contains(opd)
    {
        return Err(ApiError::field("opd", format!("{opd} is not an OPD of the registry")));
    }
    state.store.assign(code, opd.to_owned(), p.actor(), note).await?;
    Ok(())
}

pub(crate) async fn do_reply(
    state: &AppState,
    p: &Principal,
    code: TicketCode,
    text: String,
) -> Result<aduan_store::Replied, ApiError> {
    may_act(state, p, code, Act::Reply).await?;
    Ok(state.store.reply(code, text, p.actor()).await?)
}

/// The text of an identity request when the operator writes none: the automatic request's
/// words ([`aduan_core::texts::identity_request`]), asking for a name and a contact.
pub(crate) fn identity_request_text(code: TicketCode) -> String {
    use aduan_core::IdentityField::{Contact, Name};
    aduan_core::texts::identity_request(code, &[Name, Contact])
}

pub(crate) async fn do_request_identity(
    state: &AppState,
    p: &Principal,
    code: TicketCode,
    text: Option<String>,
) -> Result<aduan_store::Replied, ApiError> {
    may_act(state, p, code, Act::Reply).await?;
    let text = text.unwrap_or_else(|| identity_request_text(code));
    Ok(state.store.request_identity(code, text, p.actor()).await?)
}

pub(crate) async fn do_status(
    state: &AppState,
    p: &Principal,
    code: TicketCode,
    to: Status,
    note: Option<String>,
) -> Result<(), ApiError> {
    may_act(state, p, code, Act::Status).await?;
    state.store.set_status(code, to, p.actor(), note).await?;
    Ok(())
}

pub(crate) async fn do_merge(
    state: &AppState,
    p: &Principal,
    code: TicketCode,
    into: TicketCode,
) -> Result<(), ApiError> {
    may_act(state, p, code, Act::Merge).await?;
    state.store.merge(code, into, p.actor()).await?;
    Ok(())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    p.require_read()?;
    let Query(q) = q.map_err(|e| {
        ApiError::new(axum::http::StatusCode::BAD_REQUEST, "malformed_query", e.body_text())
    })?;
    if let Some(raw) = q.get("incident") {
        return incident_list(&state, &p, raw).await;
    }
    let mut f = filter(&q)?;
    confine(&p, &mut f)?;
    let page = state.store.tickets(&f).await?;
    Ok(Json(json!(page)))
}

pub(crate) async fn get_one(
    State(state): State<AppState>,
    p: Principal,
    raw: RawCode,
) -> Result<Json<Value>, ApiError> {
    p.require_read()?;
    let code = code(raw)?;
    Ok(Json(view_json(&visible(&state, &p, code).await?)))
}

/// An action on one ticket: a principal, an existing-looking code, and a JSON object
/// body, checked in that order.
pub(crate) struct Action {
    p: Principal,
    code: TicketCode,
    body: JsonObject,
}

impl FromRequest<AppState> for Action {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let p = Principal::from_request_parts(&mut parts, state).await?;
        if matches!(p, Principal::Key(_)) {
            p.require_act(Act::Reply)?;
        }
        let code = code(Path::<String>::from_request_parts(&mut parts, state).await)?;
        let body = JsonObject::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Action { p, code, body })
    }
}

impl Action {
    fn fields(&self) -> Fields<'_> {
        Fields::new(&self.body.0)
    }

    async fn current(&self, state: &AppState) -> Result<Json<Value>, ApiError> {
        Ok(Json(view_json(&visible(state, &self.p, self.code).await?)))
    }
}

pub(crate) async fn assign(
    State(state): State<AppState>,
    a: Action,
) -> Result<Json<Value>, ApiError> {
    let f = a.fields();
    let opd = f.req_str("opd", 50)?;
    let note = f.opt_str("note", 2000)?.map(str::to_owned);
    do_assign(&state, &a.p, a.code, opd, note).await?;
    a.current(&state).await
}

pub(crate) async fn reply(
    State(state): State<AppState>,
    a: Action,
) -> Result<Json<Value>, ApiError> {
    let text = a.fields().req_str("text", MAX_TEXT_CHARS)?.to_owned();
    let replied = do_reply(&state, &a.p, a.code, text).await?;
    let Json(mut view) = a.current(&state).await?;
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
    do_status(&state, &a.p, a.code, to, note).await?;
    a.current(&state).await
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
    do_merge(&state, &a.p, a.code, into).await?;
    a.current(&state).await
}

pub(crate) async fn request_identity(
    State(state): State<AppState>,
    a: Action,
) -> Result<Json<Value>, ApiError> {
    let text = a.fields().opt_str("text", MAX_TEXT_CHARS)?.map(str::to_owned);
    let sent = do_request_identity(&state, &a.p, a.code, text).await?;
    let Json(mut view) = a.current(&state).await?;
    view["reply"] = json!(sent);
    Ok(Json(view))
}

/// The ticket JSON: the view as serialized, each attachment with its `url`
/// (`GET /attachments/{id}`, contract v2).
pub(crate) fn view_json(view: &TicketView) -> Value {
    let mut out = json!(view);
    if let Some(messages) = out.get_mut("messages").and_then(Value::as_array_mut) {
        for (m, json) in view.messages.iter().zip(messages.iter_mut()) {
            let Some(list) = json.get_mut("attachments").and_then(Value::as_array_mut) else {
                continue;
            };
            for (id, a) in m.attachment_ids.iter().zip(list.iter_mut()) {
                a["url"] = json!(crate::attachments::url(*id));
            }
        }
    }
    out
}

// --- incidents: one incident, many reports (issue 20) ---

/// `GET /api/v1/tickets?incident=ID`: the incident's tickets, oldest first, in one page
/// (an official sees their OPD's among them).
async fn incident_list(
    state: &AppState,
    p: &Principal,
    raw: &str,
) -> Result<Json<Value>, ApiError> {
    let id =
        raw.trim().parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| {
            ApiError::field("incident", "must be an incident id (a whole number)")
        })?;
    let mut items = state.store.incident_tickets(id).await?;
    if p.reach() != Reach::All {
        items.retain(|t| p.require_ticket(t).is_ok());
    }
    Ok(Json(json!({ "items": items, "next_cursor": null })))
}

/// Joins, leaves or dismisses for ticket `code` (scope `admin`; operators and admins).
pub(crate) async fn do_incident(
    state: &AppState,
    p: &Principal,
    code: TicketCode,
    action: aduan_store::IncidentAction,
) -> Result<(), ApiError> {
    may_act(state, p, code, Act::Merge).await?;
    state.store.incident_action(code, action, p.actor()).await?;
    Ok(())
}

/// `POST /api/v1/tickets/{code}/incident` with exactly one of `{"join": "ADU-…"}` (join that
/// ticket's incident, made when it has none), `{"leave": true}` or `{"dismiss": "ADU-…"}`
/// ("not the same problem": never suggested again). Answers the ticket as it is now.
pub(crate) async fn incident(
    State(state): State<AppState>,
    a: Action,
) -> Result<Json<Value>, ApiError> {
    use aduan_store::IncidentAction;
    let obj = &a.body.0;
    let given: Vec<&str> =
        ["join", "leave", "dismiss"].into_iter().filter(|k| obj.contains_key(*k)).collect();
    let code_of = |k: &str| -> Result<TicketCode, ApiError> {
        a.fields()
            .req_str(k, 20)?
            .parse::<TicketCode>()
            .map_err(|e| ApiError::field(k, e.to_string()))
    };
    let action = match given.as_slice() {
        ["join"] => IncidentAction::Join(code_of("join")?),
        ["dismiss"] => IncidentAction::Dismiss(code_of("dismiss")?),
        ["leave"] if obj.get("leave") == Some(&Value::Bool(true)) => IncidentAction::Leave,
        ["leave"] => return Err(ApiError::field("leave", "must be true")),
        _ => {
            return Err(ApiError::field(
                "join",
                "give exactly one of join (a ticket code), leave (true) or dismiss (a ticket code)",
            ));
        }
    };
    do_incident(&state, &a.p, a.code, action).await?;
    a.current(&state).await
}

// --- residents: one resident across channels (issue 20) ---

/// Links or unlinks ticket `code`'s reporter (operators and admins; keys need `admin`).
pub(crate) async fn do_resident(
    state: &AppState,
    p: &Principal,
    code: TicketCode,
    action: aduan_store::ResidentAction,
) -> Result<(), ApiError> {
    may_act(state, p, code, Act::Merge).await?;
    state.store.resident_action(code, action, p.actor()).await?;
    Ok(())
}

/// `POST /api/v1/tickets/{code}/resident` with `{"link": "ADU-…"}` (this reporter and that
/// ticket's reporter are one resident) or `{"unlink": true}` (not linked, and never linked
/// automatically again). Audited. Answers the ticket as it is now.
pub(crate) async fn resident(
    State(state): State<AppState>,
    a: Action,
) -> Result<Json<Value>, ApiError> {
    use aduan_store::ResidentAction;
    let obj = &a.body.0;
    let action = match (obj.get("link"), obj.get("unlink")) {
        (Some(_), None) => ResidentAction::Link(
            a.fields()
                .req_str("link", 20)?
                .parse::<TicketCode>()
                .map_err(|e| ApiError::field("link", e.to_string()))?,
        ),
        (None, Some(Value::Bool(true))) => ResidentAction::Unlink,
        (None, Some(_)) => return Err(ApiError::field("unlink", "must be true")),
        _ => {
            return Err(ApiError::field(
                "link",
                "give exactly one of link (a ticket code) or unlink (true)",
            ));
        }
    };
    do_resident(&state, &a.p, a.code, action).await?;
    a.current(&state).await
}
