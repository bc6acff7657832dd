//! Bearer API keys. A token is shown once when created; the store keeps its SHA-256 only.
//! (Tokens carry 256 random bits, so a fast hash is enough; passwords use argon2.)

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use aduan_core::Actor;
use aduan_store::{ApiKey, Scope};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

const TOKEN_PREFIX: &str = "adu_";
/// How long a verified key is trusted without asking the store again: the longest a key
/// revoked elsewhere (`aduan` on another instance) keeps working here. A key revoked
/// through this instance's API is forgotten at once.
const CACHE_TTL: Duration = Duration::from_secs(10);

/// A key name: 1 to 100 characters, no `:` (names prefix provider ids, `name:external_id`),
/// no control characters.
pub fn valid_key_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err("a key name has 1 to 100 characters".into());
    }
    if name.contains(':') {
        return Err("a key name may not contain ':' (it prefixes provider ids)".into());
    }
    if name.chars().any(char::is_control) {
        return Err("a key name may not contain control characters".into());
    }
    Ok(())
}

/// A new random token: `adu_` and 43 URL-safe base64 characters.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The hex SHA-256 a token is stored and looked up by.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Default)]
pub(crate) struct KeyCache {
    keys: RwLock<HashMap<String, (ApiKey, Instant)>>,
}

impl KeyCache {
    fn get(&self, hash: &str) -> Option<ApiKey> {
        let keys = self.keys.read().ok()?;
        let (key, at) = keys.get(hash)?;
        (at.elapsed() < CACHE_TTL).then(|| key.clone())
    }

    /// Forgets every cached entry of key `id` (it was revoked).
    pub(crate) fn forget(&self, id: i64) {
        if let Ok(mut keys) = self.keys.write() {
            keys.retain(|_, (k, _)| k.id != id);
        }
    }

    fn put(&self, hash: String, key: ApiKey) {
        if let Ok(mut keys) = self.keys.write() {
            if keys.len() > 10_000 {
                keys.clear();
            }
            keys.insert(hash, (key, Instant::now()));
        }
    }
}

/// The API key a request was made with.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
}

impl Caller {
    pub fn require(&self, needed: Scope) -> Result<(), ApiError> {
        if self.key.scope.allows(needed) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!(
                    "this key has scope {}; this needs {}",
                    self.key.scope.as_str(),
                    needed.as_str()
                ),
            ))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor::ApiKey(self.key.name.clone())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthenticated =
            |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", m);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthenticated("send an API key as Authorization: Bearer <token>"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("the Authorization header must be Bearer <token>"))?;
        let hash = hash_token(token);
        let key = match state.keys.get(&hash) {
            Some(key) => key,
            None => {
                let key = state
                    .store
                    .api_key_by_hash(&hash)
                    .await?
                    .ok_or_else(|| unauthenticated("unknown API key"))?;
                state.keys.put(hash, key.clone());
                key
            }
        };
        if key.revoked {
            return Err(unauthenticated("this API key was revoked"));
        }
        Ok(Caller { key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert!(a.starts_with("adu_") && a.len() == 4 + 43);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(hash_token("x").len(), 64);
    }

    #[test]
    fn key_names_have_no_colon() {
        assert!(valid_key_name("mobile-app").is_ok());
        assert!(valid_key_name("app:1").is_err());
        assert!(valid_key_name(" ").is_err());
        assert!(valid_key_name(&"x".repeat(101)).is_err());
        assert!(valid_key_name("a\nb").is_err());
    }
}
