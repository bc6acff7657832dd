//! API keys over the API (admins): `POST /api/v1/keys` creates one (the token is in the
//! answer, once), `POST /api/v1/keys/{id}/revoke` revokes one. A revocation takes effect at
//! once on this instance (its key cache forgets the key) and within the cache's lifetime
//! ([`crate::auth`]) on other instances.

use aduan_store::Scope;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{generate_token, hash_token, valid_key_name};
use crate::error::ApiError;
use crate::extract::{Fields, JsonObject};
use crate::session::Principal;

pub(crate) async fn create(
    State(state): State<AppState>,
    p: Principal,
    body: JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    p.require_admin()?;
    let f = Fields::new(&body.0);
    let name = f.req_str("name", 100)?;
    valid_key_name(name).map_err(|m| ApiError::field("name", m))?;
    let scope = match f.opt_str("scope", 20)? {
        Some(s) => s.parse::<Scope>().map_err(|e| ApiError::field("scope", e))?,
        None => Scope::Intake,
    };
    let token = generate_token();
    let id = state.store.add_api_key(name.to_owned(), scope, hash_token(&token)).await?;
    let actor = p.actor();
    state
        .store
        .audit(actor, "api_key_created".into(), Some(format!("{name} ({id})")), None)
        .await?;
    tracing::info!(key_id = id, scope = scope.as_str(), "API key created.");
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "name": name, "scope": scope.as_str(), "token": token})),
    ))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    p.require_admin()?;
    let missing = || ApiError::not_found("no such API key");
    let id = id.parse::<i64>().map_err(|_| missing())?;
    let key = state.store.revoke_api_key(id, p.actor()).await?.ok_or_else(missing)?;
    state.keys.forget(key.id);
    tracing::info!(key_id = key.id, "API key revoked.");
    Ok(Json(json!({"id": key.id, "name": key.name, "scope": key.scope.as_str(), "revoked": true})))
}
