//! Signed-in people: argon2id passwords, server-side sessions in the store, CSRF tokens,
//! login rate limits, and roles. [`Principal`] is whoever calls the ticket API: an API key
//! (bearer token) or a session (cookie, with the session's CSRF token in `X-CSRF-Token` on
//! every request that changes something).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::OnceLock;

use aduan_core::{Actor, Identity, IdentityKind};
use aduan_store::{ApiKey, Role, Scope, Session, TicketSummary, TicketView};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use base64::Engine;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::auth::{Caller, hash_token};
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "aduan_session";
/// The double-submit token of forms shown before signing in (`/login`, `/lapor`).
pub const CSRF_COOKIE: &str = "aduan_csrf";
/// The header carrying a session's CSRF token on API calls made with the session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An argon2id PHC string for `password` (what `aduan user add` stores).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC string; a malformed hash verifies nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the account does not exist, so that unknown accounts
/// cost the same time as wrong passwords.
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_token()).unwrap_or_default())
}

/// The value of cookie `name` in a request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: always `HttpOnly` and `SameSite=Strict`, `Secure` when the public
/// URL is https; `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        s.push_str("; Secure");
    }
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Constant-time comparison of a CSRF token with the one a request carries.
pub fn csrf_ok(expected: &str, given: Option<&str>) -> bool {
    match given {
        Some(g) if !expected.is_empty() => expected.as_bytes().ct_eq(g.as_bytes()).into(),
        _ => false,
    }
}

/// The client address (from the listener); "unknown" when the server runs without it.
pub fn client_ip(parts_ext: &axum::http::Extensions) -> String {
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
        .map(|ip: IpAddr| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The longest account name a sign-in form may carry (an email address, RFC 5321).
pub const MAX_LOGIN_FIELD_BYTES: usize = 320;
/// The largest sign-in form body (413 above): an email, a password and a token fit easily.
pub const MAX_LOGIN_BODY_BYTES: usize = 8 * 1024;
/// How often the limiters drop the keys whose quota has fully refilled.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Above this many keys in one limiter, it is pruned at once rather than once a minute.
const PRUNE_ABOVE_KEYS: usize = 10_000;

/// Keyed rate limiters (governor, in memory per process). Keys are 64-bit keyed hashes
/// (random per process) of the account and the client address, never the raw fields: a
/// key costs the same few bytes whatever a client sends.
///
/// Sign-in is limited three ways, checked in this order and each only when the one before
/// allowed the attempt (a refused attempt spends nothing further):
/// - per client address: four times `login_attempts_per_minute`;
/// - per (account, client address): `login_attempts_per_minute`, the tight limit that
///   stops guessing;
/// - per account from all addresses together: ten times `login_attempts_per_minute`, a
///   looser ceiling on a distributed guess. A stranger failing from one address reaches
///   their own pair and address limits long before it, so they cannot lock the account's
///   owner out; it takes three or more addresses at full speed to hold the account.
pub(crate) struct Limits {
    pub login_ip: DefaultKeyedRateLimiter<u64>,
    pub login_pair: DefaultKeyedRateLimiter<u64>,
    pub login_account: DefaultKeyedRateLimiter<u64>,
    pub public_ip: DefaultKeyedRateLimiter<String>,
    /// KiB of uploads per client address per hour (`upload_bytes_per_hour`).
    pub upload_ip: DefaultKeyedRateLimiter<String>,
    hasher: std::hash::RandomState,
    last_prune: std::sync::Mutex<std::time::Instant>,
}

impl Limits {
    pub fn new(cfg: &crate::WebConfig) -> Limits {
        let per_min =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        let n = cfg.login_attempts_per_minute;
        Limits {
            login_ip: RateLimiter::keyed(per_min(n.saturating_mul(4))),
            login_pair: RateLimiter::keyed(per_min(n)),
            login_account: RateLimiter::keyed(per_min(n.saturating_mul(10))),
            public_ip: RateLimiter::keyed(per_min(cfg.public_requests_per_minute)),
            upload_ip: RateLimiter::keyed(Quota::per_hour(upload_kib(cfg.upload_bytes_per_hour))),
            hasher: std::hash::RandomState::new(),
            last_prune: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    fn key(&self, parts: &[&str]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(parts)
    }

    /// Whether a sign-in attempt for `account` (already lower-cased and at most
    /// [`MAX_LOGIN_FIELD_BYTES`]) from `ip` may go ahead; spends one attempt of each limit
    /// it passes.
    pub fn login_allowed(&self, account: &str, ip: &str) -> bool {
        self.prune_if_due();
        self.login_ip.check_key(&self.key(&["ip", ip])).is_ok()
            && self.login_pair.check_key(&self.key(&["pair", account, ip])).is_ok()
            && self.login_account.check_key(&self.key(&["account", account])).is_ok()
    }

    /// Spends `bytes` of the client address's hourly upload budget; 429 when it is spent
    /// (or `bytes` alone exceed it), and nothing is spent then.
    pub fn upload_allowed(&self, ip: &str, bytes: u64) -> Result<(), ApiError> {
        self.prune_if_due();
        let kib = upload_kib(bytes);
        match self.upload_ip.check_key_n(&ip.to_owned(), kib) {
            Ok(Ok(())) => Ok(()),
            _ => {
                tracing::warn!(bytes, "Upload budget of a client address spent; refused.");
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "upload_budget",
                    "Terlalu banyak unggahan dari alamat ini. Coba lagi dalam satu jam.",
                ))
            }
        }
    }

    /// Keys held by the sign-in limiters (for tests and the curious).
    pub fn login_keys(&self) -> usize {
        self.login_ip.len() + self.login_pair.len() + self.login_account.len()
    }

    /// Drops the keys whose quota has refilled, once a minute (or at once when a limiter
    /// holds more than [`PRUNE_ABOVE_KEYS`]), so an address or account seen once is not
    /// kept for the life of the process.
    pub(crate) fn prune_if_due(&self) {
        let crowded = self.login_ip.len() > PRUNE_ABOVE_KEYS
            || self.login_pair.len() > PRUNE_ABOVE_KEYS
            || self.login_account.len() > PRUNE_ABOVE_KEYS
            || self.public_ip.len() > PRUNE_ABOVE_KEYS
            || self.upload_ip.len() > PRUNE_ABOVE_KEYS;
        let Ok(mut last) = self.last_prune.lock() else { return };
        if !crowded && last.elapsed() < PRUNE_EVERY {
            return;
        }
        *last = std::time::Instant::now();
        drop(last);
        self.prune();
    }

    pub fn prune(&self) {
        self.login_ip.retain_recent();
        self.login_pair.retain_recent();
        self.login_account.retain_recent();
        self.public_ip.retain_recent();
        self.upload_ip.retain_recent();
        self.upload_ip.shrink_to_fit();
        self.login_ip.shrink_to_fit();
        self.login_pair.shrink_to_fit();
        self.login_account.shrink_to_fit();
        self.public_ip.shrink_to_fit();
    }
}

/// Bytes as whole KiB (at least 1), the unit of the upload budget.
fn upload_kib(bytes: u64) -> NonZeroU32 {
    let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
    NonZeroU32::new(kib).unwrap_or(NonZeroU32::MIN)
}

/// What a principal may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    All,
    /// An official: only tickets disposed to this OPD (`""` for an official without one:
    /// nothing).
    Opd(String),
}

/// Actions on a ticket, for role checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Assign,
    Reply,
    Status,
    Merge,
}

/// Whoever calls the ticket API or a page: an API key or a signed-in user.
#[derive(Debug, Clone)]
pub enum Principal {
    Key(ApiKey),
    User(Session),
}

fn forbidden(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", m)
}

impl Principal {
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Key(k) => Actor::ApiKey(k.name.clone()),
            Principal::User(s) => Actor::User(s.user.email.clone()),
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Principal::Key(_) => None,
            Principal::User(s) => Some(s.user.role),
        }
    }

    pub fn reach(&self) -> Reach {
        match self {
            Principal::User(s) if s.user.role == Role::Official => {
                Reach::Opd(s.user.opd.clone().unwrap_or_default())
            }
            _ => Reach::All,
        }
    }

    /// Reading tickets: any signed-in user; a key with scope `read` or `admin`.
    pub fn require_read(&self) -> Result<(), ApiError> {
        match self {
            Principal::Key(k) => Caller { key: k.clone() }.require(Scope::Read),
            Principal::User(_) => Ok(()),
        }
    }

    /// Acting on tickets: admins and operators everything; officials answer and move the
    /// status of their OPD's tickets but neither dispose nor merge; keys need scope `admin`.
    pub fn require_act(&self, act: Act) -> Result<(), ApiError> {
        match self {
            Principal::Key(k) => Caller { key: k.clone() }.require(Scope::Admin),
            Principal::User(s) => match (s.user.role, act) {
                (Role::Admin | Role::Operator, _) => Ok(()),
                (Role::Official, Act::Reply | Act::Status) => Ok(()),
                (Role::Official, _) => {
                    Err(forbidden("officials can't dispose or merge tickets; ask an operator"))
                }
            },
        }
    }

    /// Only admins manage users.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Principal::Key(k) => Caller { key: k.clone() }.require(Scope::Admin),
            Principal::User(s) if s.user.role == Role::Admin => Ok(()),
            Principal::User(_) => Err(forbidden("only admins may do this")),
        }
    }

    /// Whether this principal may see `ticket` (officials: their OPD's only).
    pub fn require_ticket(&self, ticket: &TicketSummary) -> Result<(), ApiError> {
        match self.reach() {
            Reach::All => Ok(()),
            Reach::Opd(opd) if !opd.is_empty() && ticket.opd.as_deref() == Some(&opd) => Ok(()),
            Reach::Opd(_) => {
                Err(forbidden(format!("ticket {} is not disposed to your OPD", ticket.code)))
            }
        }
    }

    /// The ticket as this principal may see it: masked for officials (`tickets::
    /// redact_for_officials`); operators, admins and API keys see it as stored.
    pub fn redact(&self, view: &mut TicketView) {
        if self.reach() != Reach::All {
            crate::tickets::redact_for_officials(view);
        }
    }
}

/// `Siti Aminah` → `S*** A***`.
pub fn mask_name(name: &str) -> String {
    aduan_core::privacy::mask_name(name)
}

/// Keeps what tells the kind apart: `+62812****7890`, `s***@example.id`, `***` otherwise.
pub fn mask_identity(id: &Identity) -> Identity {
    let v = &id.value;
    let value = match id.kind {
        IdentityKind::Phone | IdentityKind::Whatsapp => {
            let chars: Vec<char> = v.chars().collect();
            if chars.len() > 8 {
                let head: String = chars[..chars.len().min(6)].iter().collect();
                let tail: String = chars[chars.len() - 3..].iter().collect();
                format!("{head}****{tail}")
            } else {
                "****".into()
            }
        }
        IdentityKind::Email => match v.split_once('@') {
            Some((user, domain)) => {
                let first: String = user.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        },
        _ => "***".into(),
    };
    Identity { kind: id.kind, value }
}

/// Finds the session of a request's cookie.
pub(crate) async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(state.store.session(&hash_token(token)).await?)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let caller = Caller::from_request_parts(parts, state).await?;
            return Ok(Principal::Key(caller.key));
        }
        let Some(session) = session_of(state, &parts.headers).await? else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send an API key as Authorization: Bearer <token>, or sign in",
            ));
        };
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let given = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if !csrf_ok(&session.csrf_token, given) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "a session's API calls carry its CSRF token in X-CSRF-Token",
                ));
            }
        }
        Ok(Principal::User(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("rahasia").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("rahasia", &h));
        assert!(!verify_password("Rahasia", &h));
        assert!(!verify_password("rahasia", "not a hash"));
    }

    #[test]
    fn cookies_are_found_and_set_strictly() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; aduan_session=tok; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
        let v = set_cookie("x", "y", true, Some(0));
        assert_eq!(v, "x=y; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0");
        assert!(!set_cookie("x", "y", false, None).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn csrf_needs_the_exact_token() {
        assert!(csrf_ok("abc", Some("abc")));
        assert!(!csrf_ok("abc", Some("abd")));
        assert!(!csrf_ok("abc", None));
        assert!(!csrf_ok("", Some("")));
    }

    #[test]
    fn masks_keep_only_hints() {
        assert_eq!(mask_name("Siti  Aminah"), "S*** A***");
        let phone = Identity::phone("081234567890").unwrap();
        assert_eq!(mask_identity(&phone).value, "+62812****890");
        let mail = Identity::email("siti@example.id").unwrap();
        assert_eq!(mask_identity(&mail).value, "s***@example.id");
    }
}
