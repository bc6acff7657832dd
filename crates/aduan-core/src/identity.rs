//! Who sent a message, as the channel knows them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of address a channel identifies a sender by. Values are stored and shown in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    Email,
    /// A phone number in E.164 (`+62…`), for SMS.
    Phone,
    /// A Telegram user id.
    Telegram,
    /// A Facebook page-scoped id (PSID).
    MessengerPsid,
    /// An Instagram-scoped id (IGSID).
    InstagramId,
    /// A WhatsApp id (the sender's phone number as WhatsApp reports it, digits only).
    Whatsapp,
    /// An X user id.
    XUser,
    /// An account id in a caller's app or web form, scoped by that caller.
    AppUser,
}

impl IdentityKind {
    pub const ALL: [IdentityKind; 8] = [
        IdentityKind::Email,
        IdentityKind::Phone,
        IdentityKind::Telegram,
        IdentityKind::MessengerPsid,
        IdentityKind::InstagramId,
        IdentityKind::Whatsapp,
        IdentityKind::XUser,
        IdentityKind::AppUser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Email => "email",
            IdentityKind::Phone => "phone",
            IdentityKind::Telegram => "telegram",
            IdentityKind::MessengerPsid => "messenger_psid",
            IdentityKind::InstagramId => "instagram_id",
            IdentityKind::Whatsapp => "whatsapp",
            IdentityKind::XUser => "x_user",
            IdentityKind::AppUser => "app_user",
        }
    }

    /// Whether we can write to this identity ourselves (an app-user id alone can't be reached).
    pub fn is_reachable(self) -> bool {
        !matches!(self, IdentityKind::AppUser)
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentityKind {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdentityKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| IdentityError::UnknownKind(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("unknown identity kind {0:?}")]
    UnknownKind(String),
    #[error("an email address needs one @ with text on both sides")]
    BadEmail,
    #[error("a phone number has 6 to 15 digits, optionally after +")]
    BadPhone,
    #[error("an identity value can't be empty or longer than 320 characters")]
    BadValue,
}

/// A sender address in normalised form, so the same person on the same channel is always
/// the same `(kind, value)` pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub kind: IdentityKind,
    pub value: String,
}

impl Identity {
    /// Validates and normalises: emails lower-cased, phones to E.164 (Indonesian `08…` and
    /// `62…` become `+62…`), other ids trimmed.
    pub fn new(kind: IdentityKind, value: &str) -> Result<Identity, IdentityError> {
        let value = value.trim();
        if value.is_empty() || value.chars().count() > 320 {
            return Err(IdentityError::BadValue);
        }
        let value = match kind {
            IdentityKind::Email => normalize_email(value)?,
            IdentityKind::Phone => normalize_phone(value)?,
            IdentityKind::Whatsapp => normalize_phone(value)?.trim_start_matches('+').to_owned(),
            _ => value.to_owned(),
        };
        Ok(Identity { kind, value })
    }

    pub fn email(value: &str) -> Result<Identity, IdentityError> {
        Identity::new(IdentityKind::Email, value)
    }

    pub fn phone(value: &str) -> Result<Identity, IdentityError> {
        Identity::new(IdentityKind::Phone, value)
    }
}

fn normalize_email(value: &str) -> Result<String, IdentityError> {
    let (local, domain) = value.rsplit_once('@').ok_or(IdentityError::BadEmail)?;
    let bad =
        |s: &str| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>');
    if bad(local) || bad(domain) || local.contains('@') {
        return Err(IdentityError::BadEmail);
    }
    // Local parts are case-sensitive in theory and never in practice; one person, one key.
    Ok(value.to_lowercase())
}

/// Normalises a phone number to E.164. Indonesian local forms (`0812…`, `62812…`) are
/// rewritten to `+62812…`; spaces, dots, dashes and parentheses are dropped.
pub fn normalize_phone(value: &str) -> Result<String, IdentityError> {
    let value = value.trim();
    let plus = value.starts_with('+');
    let digits: String = value.chars().filter(|c| c.is_ascii_digit()).collect();
    let only_punct =
        value.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'));
    if !only_punct || value.matches('+').count() > usize::from(plus) {
        return Err(IdentityError::BadPhone);
    }
    let e164 = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("62{rest}")
    } else {
        digits
    };
    if !(6..=15).contains(&e164.len()) {
        return Err(IdentityError::BadPhone);
    }
    Ok(format!("+{e164}"))
}

/// The country calling code contact phones from unverified sources must have by default.
pub const DEFAULT_SMS_COUNTRY_PREFIX: &str = "+62";

/// Whether `prefix` is a country calling code: `+` and one to four digits.
pub fn valid_country_prefix(prefix: &str) -> bool {
    prefix.strip_prefix('+').is_some_and(|d| {
        (1..=4).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0')
    })
}

impl Identity {
    /// Whether this is a phone number of the country whose calling code is `prefix`
    /// (`+62`). Phones are stored in E.164, so the test is on the normalised number.
    pub fn is_phone_in(&self, prefix: &str) -> bool {
        self.kind == IdentityKind::Phone
            && valid_country_prefix(prefix)
            && self.value.starts_with(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_checked_against_the_country() {
        assert!(Identity::phone("0812 3456 7890").unwrap().is_phone_in("+62"));
        assert!(!Identity::phone("+44 7700 900123").unwrap().is_phone_in("+62"));
        assert!(!Identity::email("a@b.id").unwrap().is_phone_in("+62"));
        assert!(
            !valid_country_prefix("62")
                && !valid_country_prefix("+")
                && !valid_country_prefix("+0")
        );
        assert!(valid_country_prefix("+62") && valid_country_prefix("+1"));
    }

    #[test]
    fn phones_normalise_to_e164() {
        for input in ["081234567890", "+62 812-3456-7890", "6281234567890", "(0812) 3456.7890"] {
            assert_eq!(normalize_phone(input).unwrap(), "+6281234567890", "{input}");
        }
        assert_eq!(normalize_phone("1708").unwrap_err(), IdentityError::BadPhone);
        assert_eq!(normalize_phone("08123x").unwrap_err(), IdentityError::BadPhone);
        assert_eq!(normalize_phone("+62+812345").unwrap_err(), IdentityError::BadPhone);
    }

    #[test]
    fn whatsapp_ids_are_digits() {
        let id = Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap();
        assert_eq!(id.value, "6281234567890");
    }

    #[test]
    fn emails_are_lower_cased() {
        assert_eq!(Identity::email(" Siti@Example.ID ").unwrap().value, "siti@example.id");
        assert!(Identity::email("siti").is_err());
        assert!(Identity::email("@example.id").is_err());
        assert!(Identity::email("siti@").is_err());
        assert!(Identity::email("si ti@example.id").is_err());
    }

    #[test]
    fn other_ids_are_kept_verbatim() {
        let id = Identity::new(IdentityKind::Telegram, " 123456789 ").unwrap();
        assert_eq!(id.value, "123456789");
        assert!(Identity::new(IdentityKind::AppUser, "   ").is_err());
        assert_eq!("x_user".parse::<IdentityKind>(), Ok(IdentityKind::XUser));
    }
}
