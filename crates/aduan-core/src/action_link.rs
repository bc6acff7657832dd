//! Signed one-click action links for officials (issue 19 item 5).
//!
//! Every mail to an OPD's officials about a ticket (disposition, warning, escalation, the
//! daily digest) carries four links `{public_url}/aksi/{token}`, one per [`OfficialAction`]:
//! *terima*, *bukan wewenang kami*, *minta info*, *selesai*. A token binds, in this order:
//! a version, the ticket, the OPD the ticket was sent to, the action, the official the mail
//! went to (their address, the actor of the audit event), the expiry (Unix seconds) and a
//! random nonce. It is `base64url(payload) "." base64url(mac)`, the payload being those
//! fields joined by `\n` and the MAC HMAC-SHA256 over the length-prefixed fields under an
//! [`ActionKey`], truncated to 128 bits and compared in constant time.
//!
//! What the token proves is only that this desk wrote the link for that official, ticket,
//! OPD and action before the expiry. The rest is checked where the link is used:
//! single use (the nonce is stored when the action is taken, a second use is refused), the
//! ticket still being with that OPD, and the action being possible in the ticket's status.
//! Opening a link (GET) never acts; it shows a confirmation page whose form posts the token.
//!
//! The key is `[server] action_link_key` (at least [`MIN_KEY_BYTES`] bytes) or, unset,
//! derived from the email reply-token key with [`ActionKey::derive`] under the label
//! [`DERIVE_LABEL`] (domain separation: an action token is never a reply token).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::TicketCode;

/// The shortest key accepted.
pub const MIN_KEY_BYTES: usize = 16;
/// The label a key derived from another secret is made under.
pub const DERIVE_LABEL: &str = "aduan/action-link/v1";
/// The version bound into every token.
const VERSION: &str = "a1";
/// Bytes of the MAC kept in a token.
const MAC_BYTES: usize = 16;
/// Longest token read (a longer one is malformed without decoding).
const MAX_TOKEN_CHARS: usize = 1024;

/// What an official can do from a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfficialAction {
    /// *terima*: the OPD takes the ticket up (`assigned` → `in_progress`).
    Accept,
    /// *bukan wewenang kami*: back to triage with a reason; the OPD is recorded as refusing.
    NotOurs,
    /// *minta info*: a question to the resident through the desk; the clocks wait.
    AskInfo,
    /// *selesai*: resolved, with a note that is the answer to the resident.
    Resolve,
}

impl OfficialAction {
    pub const ALL: [OfficialAction; 4] = [
        OfficialAction::Accept,
        OfficialAction::NotOurs,
        OfficialAction::AskInfo,
        OfficialAction::Resolve,
    ];

    /// The word in tokens and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            OfficialAction::Accept => "terima",
            OfficialAction::NotOurs => "bukan-wewenang",
            OfficialAction::AskInfo => "minta-info",
            OfficialAction::Resolve => "selesai",
        }
    }

    /// The label officials read in mails and on the confirmation page.
    pub fn label_id(self) -> &'static str {
        crate::texts::official_action_label(self)
    }

    /// Whether the official must write something (a reason, a question, a note).
    pub fn needs_text(self) -> bool {
        !matches!(self, OfficialAction::Accept)
    }
}

impl fmt::Display for OfficialAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OfficialAction {
    type Err = LinkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OfficialAction::ALL.into_iter().find(|a| a.as_str() == s).ok_or(LinkError::Malformed)
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionClaim {
    pub ticket: TicketCode,
    /// The OPD's registry code the ticket was sent to.
    pub opd: String,
    pub action: OfficialAction,
    /// The official the mail went to (lower case): the actor of the audit event.
    pub official: String,
    pub expires_at: DateTime<Utc>,
    /// Random, unique per link: stored when the link is used.
    pub nonce: String,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the action link is malformed")]
    Malformed,
    #[error("the action link's signature does not match")]
    BadSignature,
    #[error("the action link has expired")]
    Expired,
    #[error("the action link key is shorter than {MIN_KEY_BYTES} bytes")]
    ShortKey,
}

/// The secret links are signed with (`Debug` never shows it).
#[derive(Clone)]
pub struct ActionKey(Vec<u8>);

impl fmt::Debug for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ActionKey(***)")
    }
}

impl ActionKey {
    /// A key from a configured secret of at least [`MIN_KEY_BYTES`] bytes (surrounding
    /// whitespace does not count).
    pub fn new(secret: &[u8]) -> Result<ActionKey, LinkError> {
        if secret.trim_ascii().len() < MIN_KEY_BYTES {
            return Err(LinkError::ShortKey);
        }
        Ok(ActionKey(secret.to_vec()))
    }

    /// A key derived from another secret (`parent`, at least [`MIN_KEY_BYTES`] bytes):
    /// HMAC-SHA256(parent, [`DERIVE_LABEL`]).
    pub fn derive(parent: &[u8]) -> Result<ActionKey, LinkError> {
        if parent.len() < MIN_KEY_BYTES {
            return Err(LinkError::ShortKey);
        }
        let mut mac = Self::hmac(parent);
        mac.update(DERIVE_LABEL.as_bytes());
        Ok(ActionKey(mac.finalize().into_bytes().to_vec()))
    }

    fn hmac(key: &[u8]) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    fn mac(&self, fields: &[&str]) -> Hmac<Sha256> {
        let mut mac = Self::hmac(&self.0);
        for f in fields {
            mac.update(&(f.len() as u64).to_be_bytes());
            mac.update(f.as_bytes());
        }
        mac
    }

    /// The token for `claim`. Fields holding a newline can't be signed (`None`).
    pub fn sign(&self, claim: &ActionClaim) -> Option<String> {
        let ticket = claim.ticket.to_string();
        let official = claim.official.trim().to_lowercase();
        let expires = claim.expires_at.timestamp().to_string();
        let fields = [
            VERSION,
            &ticket,
            &claim.opd,
            claim.action.as_str(),
            &official,
            &expires,
            &claim.nonce,
        ];
        if fields.iter().any(|f| f.contains('\n')) {
            return None;
        }
        let tag = self.mac(&fields).finalize().into_bytes();
        Some(format!("{}.{}", B64.encode(fields.join("\n")), B64.encode(&tag[..MAC_BYTES])))
    }

    /// Reads and checks a token: well formed, signed with this key, not expired at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<ActionClaim, LinkError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(LinkError::Malformed);
        }
        let (payload, tag) = token.split_once('.').ok_or(LinkError::Malformed)?;
        let payload = B64.decode(payload).map_err(|_| LinkError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| LinkError::Malformed)?;
        let payload = String::from_utf8(payload).map_err(|_| LinkError::Malformed)?;
        let fields: Vec<&str> = payload.split('\n').collect();
        let [version, ticket, opd, action, official, expires, nonce] = fields[..] else {
            return Err(LinkError::Malformed);
        };
        if version != VERSION || tag.len() != MAC_BYTES {
            return Err(LinkError::Malformed);
        }
        self.mac(&fields).verify_truncated_left(&tag).map_err(|_| LinkError::BadSignature)?;
        let expires_at = expires
            .parse::<i64>()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .ok_or(LinkError::Malformed)?;
        let claim = ActionClaim {
            ticket: ticket.parse().map_err(|_| LinkError::Malformed)?,
            opd: opd.to_owned(),
            action: action.parse()?,
            official: official.to_owned(),
            expires_at,
            nonce: nonce.to_owned(),
        };
        if now >= claim.expires_at {
            return Err(LinkError::Expired);
        }
        Ok(claim)
    }
}

/// The path every action link has: `{public_url}/aksi/{token}`.
pub const PATH: &str = "/aksi/";

/// `text` with the token of every action link (`…/aksi/{token}`) replaced by `…`.
///
/// A token acts in the name of the official it was signed for, so only the mail to that
/// official may carry it. The ticket as anyone else reads it (operators, other officials,
/// an API key of scope `read`) and every message to a resident (an official's answer that
/// quotes the mail it answers) shows `…/aksi/…` instead: a link copied from there would
/// let its reader act, and be audited, as that official.
pub fn hide_tokens(text: &str) -> Cow<'_, str> {
    let token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    crate::privacy::hide_keys(text, PATH, token_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ActionKey {
        ActionKey::new(b"action-link-test-key-0123").unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn claim() -> ActionClaim {
        ActionClaim {
            ticket: TicketCode::from_entropy([1, 2, 3, 4, 5]),
            opd: "dpu".into(),
            action: OfficialAction::Accept,
            official: "Pejabat@DPU.example.id".into(),
            expires_at: at("2026-12-10T00:00:00Z"),
            nonce: "bm9uY2Utbm9uY2U".into(),
        }
    }

    #[test]
    fn a_signed_claim_verifies_until_it_expires() {
        let token = key().sign(&claim()).unwrap();
        let got = key().verify(&token, at("2026-12-09T23:59:59Z")).unwrap();
        assert_eq!(got, ActionClaim { official: "pejabat@dpu.example.id".into(), ..claim() });
        assert_eq!(key().verify(&token, at("2026-12-10T00:00:00Z")), Err(LinkError::Expired));
        assert!(token.len() < 200, "{}", token.len());
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    }

    #[test]
    fn every_field_is_bound() {
        let now = at("2026-12-05T00:00:00Z");
        let token = key().sign(&claim()).unwrap();
        let (payload, tag) = token.split_once('.').unwrap();
        let fields: Vec<String> = String::from_utf8(B64.decode(payload).unwrap())
            .unwrap()
            .split('\n')
            .map(str::to_owned)
            .collect();
        let tampered = [
            "a1",
            "ADU-XXXXXXXX",
            "dinkes",
            "selesai",
            "lain@dpu.example.id",
            "1999999999",
            "another-nonce",
        ];
        for (i, value) in tampered.iter().enumerate().skip(1) {
            let mut f = fields.clone();
            f[i] = (*value).to_owned();
            let forged = format!("{}.{tag}", B64.encode(f.join("\n")));
            assert_eq!(key().verify(&forged, now), Err(LinkError::BadSignature), "field {i}");
        }
        // Another version is not read at all.
        let mut f = fields.clone();
        f[0] = "a2".into();
        assert_eq!(
            key().verify(&format!("{}.{tag}", B64.encode(f.join("\n"))), now),
            Err(LinkError::Malformed)
        );
        // A flipped bit in the MAC.
        let mut t = B64.decode(tag).unwrap();
        t[0] ^= 1;
        assert_eq!(
            key().verify(&format!("{payload}.{}", B64.encode(&t)), now),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn another_key_or_garbage_is_refused() {
        let now = at("2026-12-05T00:00:00Z");
        let token = key().sign(&claim()).unwrap();
        let other = ActionKey::new(b"another-key-0123456789").unwrap();
        assert_eq!(other.verify(&token, now), Err(LinkError::BadSignature));
        for junk in
            ["", ".", "abc", "abc.def", "!!.??", &"a".repeat(5000), &token[..token.len() - 3]]
        {
            assert!(key().verify(junk, now).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn keys_are_long_enough_and_derived_apart() {
        assert_eq!(ActionKey::new(b"").unwrap_err(), LinkError::ShortKey);
        assert_eq!(ActionKey::new(b"   short   \n     ").unwrap_err(), LinkError::ShortKey);
        assert_eq!(ActionKey::derive(b"short").unwrap_err(), LinkError::ShortKey);
        let parent = b"the-email-reply-token-key";
        let derived = ActionKey::derive(parent).unwrap();
        let token = derived.sign(&claim()).unwrap();
        let now = at("2026-12-05T00:00:00Z");
        assert!(derived.verify(&token, now).is_ok());
        // The parent secret itself does not sign valid links.
        let parent_key = ActionKey::new(parent).unwrap();
        assert_eq!(parent_key.verify(&token, now), Err(LinkError::BadSignature));
        assert_eq!(format!("{derived:?}"), "ActionKey(***)");
    }

    #[test]
    fn a_newline_is_never_signed() {
        let c = ActionClaim { opd: "dpu\nx".into(), ..claim() };
        assert_eq!(key().sign(&c), None);
    }

    #[test]
    fn tokens_are_hidden_wherever_a_link_is_in_a_text() {
        let token = key().sign(&claim()).unwrap();
        let mail = format!(
            "Tindak lanjut:\n- Terima: https://aduan.example.id/aksi/{token}\n\
             - Selesai: https://aduan.example.id/aksi/{token}."
        );
        let hidden = hide_tokens(&mail);
        assert_eq!(
            hidden,
            "Tindak lanjut:\n- Terima: https://aduan.example.id/aksi/…\n\
             - Selesai: https://aduan.example.id/aksi/…"
        );
        assert!(!hidden.contains(token.split('.').next_back().unwrap()));
        // Quoted in a reply (`> `), or as a bare path: hidden the same way.
        assert_eq!(hide_tokens(&format!("> /aksi/{token} ok")), "> /aksi/… ok");
        // A text without a link is not copied; the path alone stays as it is.
        assert!(matches!(hide_tokens("jalan rusak"), Cow::Borrowed("jalan rusak")));
        assert_eq!(hide_tokens("lihat /aksi/ dan /aksi/…"), "lihat /aksi/ dan /aksi/…");
    }
}
