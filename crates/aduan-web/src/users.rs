//! User administration for admins: `/users` lists users and the audit log, adds users
//! (argon2id, like `aduan user add`), disables and re-enables them (disabling ends their
//! sessions). Every change is an audit entry with the admin as actor.

use std::collections::HashMap;

use aduan_store::{NewUser, Role};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::pages::{Nav, PageUser, admin_form, admin_only, error_page, local, render};
use crate::session::{Principal, hash_password};

struct UserRow {
    id: i64,
    email: String,
    name: String,
    role: &'static str,
    opd: String,
    disabled: bool,
    is_self: bool,
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    note: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Option<Nav>,
    csrf: String,
    users: Vec<UserRow>,
    audit: Vec<AuditRow>,
}

pub(crate) async fn list(State(state): State<AppState>, PageUser(s): PageUser) -> Response {
    if let Some(r) = admin_only(&s) {
        return r;
    }
    let loaded = async {
        Ok::<_, ApiError>((state.store.users().await?, state.store.audit_log(100).await?))
    };
    let (users, audit) = match loaded.await {
        Ok(x) => x,
        Err(e) => return error_page(Nav::of(&s), &e, None),
    };
    let page = UsersPage {
        nav: Nav::of(&s),
        csrf: s.csrf_token.clone(),
        users: users
            .into_iter()
            .map(|u| UserRow {
                id: u.id,
                is_self: u.id == s.user.id,
                email: u.email,
                name: u.name.unwrap_or_default(),
                role: u.role.as_str(),
                opd: u.opd.unwrap_or_default(),
                disabled: u.disabled,
            })
            .collect(),
        audit: audit
            .into_iter()
            .map(|e| AuditRow {
                at: local(&state, e.at),
                actor: e.actor.to_string(),
                action: e.action,
                target: e.target.unwrap_or_default(),
                note: e.note.unwrap_or_default(),
            })
            .collect(),
    };
    render(StatusCode::OK, &page)
}

pub(crate) async fn add(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(r) = admin_form(&s, &form, "/users") {
        return r;
    }
    let get = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let result = async {
        let email = get("email")
            .filter(|e| e.contains('@') && e.len() <= 320)
            .ok_or_else(|| ApiError::field("email", "is not an email address"))?
            .to_owned();
        let role = get("role")
            .unwrap_or("operator")
            .parse::<Role>()
            .map_err(|e| ApiError::field("role", e))?;
        let opd = get("opd").map(str::to_owned);
        if role == Role::Official {
            let Some(o) = &opd else {
                return Err(ApiError::field("opd", "an official needs an OPD"));
            };
            if let Some(known) = &state.config.opds
                && !known.contains(o)
            {
                return Err(ApiError::field("opd", format!("{o} is not an OPD of the registry")));
            }
        }
        let password = form.get("password").cloned().unwrap_or_default();
        if password.chars().count() < 10 {
            return Err(ApiError::field("password", "needs at least 10 characters"));
        }
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|_| ApiError::internal())?;
        let user = NewUser {
            email,
            name: get("name").map(str::to_owned),
            role,
            opd: if role == Role::Official { opd } else { None },
            password_hash: hash,
        };
        state.store.add_user_by(user, Principal::User(s.clone()).actor()).await?;
        Ok(())
    };
    match result.await {
        Ok(()) => Redirect::to("/users").into_response(),
        Err(e) => error_page(Nav::of(&s), &e, Some("/users".into())),
    }
}

pub(crate) async fn set_disabled(
    State(state): State<AppState>,
    PageUser(s): PageUser,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(r) = admin_form(&s, &form, "/users") {
        return r;
    }
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return error_page(Nav::of(&s), &ApiError::not_found("no such action"), None),
    };
    if id == s.user.id {
        let e = ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "Anda tidak dapat menonaktifkan diri sendiri.",
        );
        return error_page(Nav::of(&s), &e, Some("/users".into()));
    }
    match state.store.set_user_disabled(id, disabled, Principal::User(s.clone()).actor()).await {
        Ok(()) => Redirect::to("/users").into_response(),
        Err(e) => error_page(Nav::of(&s), &e.into(), Some("/users".into())),
    }
}
