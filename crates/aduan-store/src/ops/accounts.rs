//! Web users, sessions, API keys and the audit log (aduan-web).

use aduan_core::Actor;
use chrono::{DateTime, Duration, Utc};

use super::common::{audit, parse};
use crate::db::{Db, Row, args};
use crate::types::{ApiKey, AuditEntry, NewUser, Scope, Session, User};
use crate::{Result, Store, StoreError, clean, now};

pub(crate) async fn add_user<D: Db>(c: &mut D, user: NewUser, now: DateTime<Utc>) -> Result<i64> {
    let email = user.email.trim().to_lowercase();
    let exists: Option<i64> =
        c.fetch_optional_scalar("SELECT id FROM users WHERE email = $1", args![&email]).await?;
    if exists.is_some() {
        return Err(StoreError::Conflict(format!("a user with email {email} exists")));
    }
    c.fetch_one_scalar(
        "INSERT INTO users (email, name, role, opd, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        args![&email, &user.name, user.role.as_str(), &user.opd, &user.password_hash, now],
    )
    .await
}

pub(crate) async fn add_api_key<D: Db>(
    c: &mut D,
    name: String,
    scope: Scope,
    token_hash: String,
    now: DateTime<Utc>,
) -> Result<i64> {
    c.fetch_one_scalar(
        "INSERT INTO api_keys (name, scope, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id", args![name, scope.as_str(), token_hash, now])
    .await
}

pub(crate) async fn api_key_by_hash<D: Db>(c: &mut D, token_hash: &str) -> Result<Option<ApiKey>> {
    let row = c
        .fetch_optional(
            "SELECT id, name, scope, revoked_at FROM api_keys WHERE token_hash = $1",
            args![token_hash],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let revoked_at: Option<DateTime<Utc>> = row.get("revoked_at")?;
    Ok(Some(ApiKey {
        id: row.get("id")?,
        name: row.get("name")?,
        scope: parse(&row.get::<String>("scope")?, "scope")?,
        revoked: revoked_at.is_some(),
    }))
}

/// Revokes API key `id` (with an audit entry); the key as it is now, `None` when there is
/// no such key. Revoking a revoked key keeps its first revocation time.
pub(crate) async fn revoke_api_key<D: Db>(
    c: &mut D,
    id: i64,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Option<ApiKey>> {
    let row = c
        .fetch_optional(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING id, name, scope",
            args![id, now],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let key = ApiKey {
        id: row.get("id")?,
        name: row.get("name")?,
        scope: parse(&row.get::<String>("scope")?, "scope")?,
        revoked: true,
    };
    audit(c, &actor, "api_key_revoked", Some(&format!("{} ({})", key.name, key.id)), None, now)
        .await?;
    Ok(Some(key))
}

fn user_row(row: &Row) -> Result<User> {
    Ok(User {
        id: row.get("id")?,
        email: row.get("email")?,
        name: row.get("name")?,
        role: parse(&row.get::<String>("role")?, "role")?,
        opd: row.get("opd")?,
        disabled: row.get("disabled")?,
        created_at: row.get("created_at")?,
    })
}

const USER_COLUMNS: &str = "u.id, u.email, u.name, u.role, u.opd, u.disabled, u.created_at";

/// The user with this email (lower-cased) and their password hash, disabled or not.
pub(crate) async fn user_for_login<D: Db>(
    c: &mut D,
    email: &str,
) -> Result<Option<(User, String)>> {
    let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1");
    let Some(row) = c.fetch_optional(&sql, args![email.trim().to_lowercase()]).await? else {
        return Ok(None);
    };
    Ok(Some((user_row(&row)?, row.get("password_hash")?)))
}

pub(crate) async fn users<D: Db>(c: &mut D) -> Result<Vec<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.email");
    c.fetch_all(&sql, args![]).await?.iter().map(user_row).collect()
}

pub(crate) async fn audit_log<D: Db>(c: &mut D, limit: i64) -> Result<Vec<AuditEntry>> {
    let rows = c
        .fetch_all(
            "SELECT at, actor, action, target, note FROM audit ORDER BY id DESC LIMIT $1",
            args![limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                at: r.get("at")?,
                actor: parse(&r.get::<String>("actor")?, "actor")?,
                action: r.get("action")?,
                target: r.get("target")?,
                note: r.get("note")?,
            })
        })
        .collect()
}

/// A user added through the inbox, with its audit entry.
pub(crate) async fn add_user_by<D: Db>(
    c: &mut D,
    user: NewUser,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<i64> {
    let email = user.email.trim().to_lowercase();
    let note = format!("role {}", user.role.as_str());
    let id = add_user(c, user, now).await?;
    audit(c, &actor, "user_added", Some(&email), Some(&note), now).await?;
    Ok(id)
}

/// Disables or enables a user; disabling ends every session of theirs.
pub(crate) async fn set_user_disabled<D: Db>(
    c: &mut D,
    id: i64,
    disabled: bool,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let email: Option<String> = c
        .fetch_optional_scalar(
            "UPDATE users SET disabled = $2 WHERE id = $1 RETURNING email",
            args![id, disabled],
        )
        .await?;
    let Some(email) = email else {
        return Err(StoreError::Invalid(format!("there is no user {id}")));
    };
    if disabled {
        c.execute("DELETE FROM sessions WHERE user_id = $1", args![id]).await?;
    }
    let action = if disabled { "user_disabled" } else { "user_enabled" };
    audit(c, &actor, action, Some(&email), None, now).await
}

/// Starts a session (the caller verified the password) and records the sign-in. Expired
/// sessions of everyone are swept on the way.
pub(crate) async fn create_session<D: Db>(
    c: &mut D,
    token_hash: String,
    user_id: i64,
    csrf_token: String,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    c.execute("DELETE FROM sessions WHERE expires_at < $1", args![now]).await?;
    let email: Option<String> = c
        .fetch_optional_scalar(
            "SELECT email FROM users WHERE id = $1 AND NOT disabled",
            args![user_id],
        )
        .await?;
    let Some(email) = email else {
        return Err(StoreError::Invalid(format!("user {user_id} can't sign in")));
    };
    c.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
        args![token_hash, user_id, csrf_token, now, expires_at],
    )
    .await?;
    audit(c, &Actor::User(email), "login", None, None, now).await
}

/// The live session with this token hash, of a user who is not disabled.
pub(crate) async fn session<D: Db>(
    c: &mut D,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Session>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at FROM sessions s \
         JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND NOT u.disabled"
    );
    let Some(row) = c.fetch_optional(&sql, args![token_hash, now]).await? else {
        return Ok(None);
    };
    Ok(Some(Session {
        user: user_row(&row)?,
        csrf_token: row.get("csrf_token")?,
        expires_at: row.get("expires_at")?,
    }))
}

/// Ends a session and records the sign-out; `false` when there was none.
pub(crate) async fn delete_session<D: Db>(
    c: &mut D,
    token_hash: String,
    now: DateTime<Utc>,
) -> Result<bool> {
    let email: Option<String> = c
        .fetch_optional_scalar(
            "DELETE FROM sessions WHERE token_hash = $1 \
             RETURNING (SELECT email FROM users WHERE users.id = sessions.user_id)",
            args![token_hash],
        )
        .await?;
    match email {
        Some(email) => {
            audit(c, &Actor::User(email), "logout", None, None, now).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

impl Store {
    pub async fn add_user(&self, user: NewUser) -> Result<i64> {
        let now = now();
        write!(self, |c| add_user(c, user, now))
    }

    /// Stores a new API key by the SHA-256 of its token.
    pub async fn add_api_key(&self, name: String, scope: Scope, token_hash: String) -> Result<i64> {
        let now = now();
        write!(self, |c| add_api_key(c, name, scope, token_hash, now))
    }

    pub async fn api_key_by_hash(&self, token_hash: &str) -> Result<Option<ApiKey>> {
        let token_hash = token_hash.to_owned();
        read!(self, |c| api_key_by_hash(c, &token_hash))
    }

    /// Revokes API key `id` on behalf of `actor`, with an audit entry; `None` when there is
    /// no such key.
    pub async fn revoke_api_key(&self, id: i64, actor: Actor) -> Result<Option<ApiKey>> {
        let now = now();
        write!(self, |c| revoke_api_key(c, id, actor, now))
    }

    /// The user signing in with `email` (case-insensitive) and their argon2id hash.
    pub async fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>> {
        let email = email.to_owned();
        read!(self, |c| user_for_login(c, &email))
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        read!(self, |c| users(c))
    }

    /// Adds a user on behalf of `actor` (an admin in the inbox), with an audit entry.
    pub async fn add_user_by(&self, user: NewUser, actor: Actor) -> Result<i64> {
        let now = now();
        write!(self, |c| add_user_by(c, user, actor, now))
    }

    /// Disables (ending their sessions) or re-enables a user, with an audit entry.
    pub async fn set_user_disabled(&self, id: i64, disabled: bool, actor: Actor) -> Result<()> {
        let now = now();
        write!(self, |c| set_user_disabled(c, id, disabled, actor, now))
    }

    /// Starts a session for a user whose password the caller verified; records the sign-in.
    pub async fn create_session(
        &self,
        token_hash: String,
        user_id: i64,
        csrf_token: String,
        ttl: Duration,
    ) -> Result<()> {
        let now = now();
        let expires_at = now + ttl;
        write!(self, |c| create_session(c, token_hash, user_id, csrf_token, expires_at, now))
    }

    /// The live session with this token hash (of a user still enabled).
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let now = now();
        let token_hash = token_hash.to_owned();
        read!(self, |c| session(c, &token_hash, now))
    }

    /// Ends a session and records the sign-out; `false` when there was none.
    pub async fn delete_session(&self, token_hash: String) -> Result<bool> {
        let now = now();
        write!(self, |c| delete_session(c, token_hash, now))
    }

    /// Records an action that is not about one ticket (ticket actions have their events).
    pub async fn audit(
        &self,
        actor: Actor,
        action: String,
        target: Option<String>,
        note: Option<String>,
    ) -> Result<()> {
        let note = note.map(clean);
        let now = now();
        write!(self, |c| audit(c, &actor, &action, target.as_deref(), note.as_deref(), now))
    }

    /// The newest `limit` entries of the audit log.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        read!(self, |c| audit_log(c, limit))
    }
}

// --- inbox: canned answers ---
//
// `jawaban siap pakai` (issue 19.2, migration 0019): texts an operator picks on the ticket
// page, global (`category` NULL) or for one category. Only admins change them; each change
// is an audit entry (`canned_answer_added`, `canned_answer_changed`, `canned_answer_deleted`,
// target = the id). The placeholders are filled by the web layer, not here.

/// A canned answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CannedAnswer {
    pub id: i64,
    pub title: String,
    pub body: String,
    /// `None`: for every ticket.
    pub category: Option<String>,
}

fn canned_row(r: &crate::db::Row) -> Result<CannedAnswer> {
    Ok(CannedAnswer {
        id: r.get("id")?,
        title: r.get("title")?,
        body: r.get("body")?,
        category: r.get("category")?,
    })
}

pub(crate) async fn canned_answers<D: Db>(c: &mut D) -> Result<Vec<CannedAnswer>> {
    c.fetch_all(
        "SELECT id, title, body, category FROM canned_answers \
         ORDER BY category IS NOT NULL, category, title, id",
        args![],
    )
    .await?
    .iter()
    .map(canned_row)
    .collect()
}

pub(crate) async fn canned_answer<D: Db>(c: &mut D, id: i64) -> Result<Option<CannedAnswer>> {
    c.fetch_optional(
        "SELECT id, title, body, category FROM canned_answers WHERE id = $1",
        args![id],
    )
    .await?
    .as_ref()
    .map(canned_row)
    .transpose()
}

pub(crate) async fn save_canned_answer<D: Db>(
    c: &mut D,
    id: Option<i64>,
    title: String,
    body: String,
    category: Option<String>,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let (id, action) = match id {
        Some(id) => {
            let changed = c
                .execute(
                    "UPDATE canned_answers SET title = $2, body = $3, category = $4, \
                     updated_at = $5 WHERE id = $1",
                    args![id, &title, &body, &category, now],
                )
                .await?;
            if changed == 0 {
                return Ok(None);
            }
            (id, "canned_answer_changed")
        }
        None => {
            let id: i64 = c
                .fetch_one_scalar(
                    "INSERT INTO canned_answers (title, body, category, updated_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    args![&title, &body, &category, now],
                )
                .await?;
            (id, "canned_answer_added")
        }
    };
    audit(c, &actor, action, Some(&id.to_string()), Some(&title), now).await?;
    Ok(Some(id))
}

pub(crate) async fn delete_canned_answer<D: Db>(
    c: &mut D,
    id: i64,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<bool> {
    let gone = c.execute("DELETE FROM canned_answers WHERE id = $1", args![id]).await?;
    if gone > 0 {
        audit(c, &actor, "canned_answer_deleted", Some(&id.to_string()), None, now).await?;
    }
    Ok(gone > 0)
}

impl Store {
    /// Every canned answer: the global ones first, then by category and title.
    pub async fn canned_answers(&self) -> Result<Vec<CannedAnswer>> {
        read!(self, |c| canned_answers(c))
    }

    /// Canned answer `id`.
    pub async fn canned_answer(&self, id: i64) -> Result<Option<CannedAnswer>> {
        read!(self, |c| canned_answer(c, id))
    }

    /// Adds (`id` `None`) or changes a canned answer, with an audit entry; its id, `None`
    /// when there is no canned answer `id` to change.
    pub async fn save_canned_answer(
        &self,
        id: Option<i64>,
        title: String,
        body: String,
        category: Option<String>,
        actor: Actor,
    ) -> Result<Option<i64>> {
        let (title, body) = (clean(title), clean(body));
        let now = now();
        write!(self, |c| save_canned_answer(c, id, title, body, category, actor, now))
    }

    /// Deletes canned answer `id`, with an audit entry; `false` when there was none.
    pub async fn delete_canned_answer(&self, id: i64, actor: Actor) -> Result<bool> {
        let now = now();
        write!(self, |c| delete_canned_answer(c, id, actor, now))
    }
}

// On duty (`users.on_duty`, migration 0019): an operator's own toggle for the round-robin
// of new triage tickets; each change is an audit entry (`on_duty` / `off_duty`).

pub(crate) async fn set_on_duty<D: Db>(
    c: &mut D,
    user_id: i64,
    on: bool,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<bool> {
    let email: Option<String> = c
        .fetch_optional_scalar(
            "UPDATE users SET on_duty = $2 WHERE id = $1 RETURNING email",
            args![user_id, on],
        )
        .await?;
    let Some(email) = email else { return Ok(false) };
    let action = if on { "on_duty" } else { "off_duty" };
    audit(c, &actor, action, Some(&email), None, now).await?;
    Ok(true)
}

pub(crate) async fn on_duty<D: Db>(c: &mut D, user_id: i64) -> Result<bool> {
    let on: Option<bool> =
        c.fetch_optional_scalar("SELECT on_duty FROM users WHERE id = $1", args![user_id]).await?;
    Ok(on.unwrap_or(false))
}

impl Store {
    /// Marks user `user_id` on or off duty, with an audit entry; `false` when no such user.
    pub async fn set_on_duty(&self, user_id: i64, on: bool, actor: Actor) -> Result<bool> {
        let now = now();
        write!(self, |c| set_on_duty(c, user_id, on, actor, now))
    }

    /// Whether user `user_id` is on duty.
    pub async fn on_duty(&self, user_id: i64) -> Result<bool> {
        read!(self, |c| on_duty(c, user_id))
    }
}
