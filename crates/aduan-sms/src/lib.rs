//! The SMS channel: three gateways, one channel (`sms`), one resident identity (the phone
//! number in E.164).
//!
//! - [`kannel`]: Kannel smsbox `get-url`/`post-url` in, `sendsms` out.
//! - [`twilio`]: Twilio's form webhook (`X-Twilio-Signature`) in, the Messages API out.
//! - [`android`]: SMS Gateway for Android's `sms:received` webhook (`X-Signature`,
//!   `X-Timestamp`) in, its `/message` API out.
//!
//! Everything that parses, verifies or builds a request is a pure function; [`connector`]
//! is the thin IO shell (reqwest, governor). Provider ids carry the gateway as a prefix
//! (`kannel:<%I>`, `twilio:<MessageSid>`, `android:<event id>`): ids of different gateways
//! can never collide, and an answer goes back through the gateway of the newest message of
//! its ticket ([`Gateway::of_refs`]).

pub mod android;
pub mod connector;
pub mod kannel;
pub mod section;
pub mod split;
pub mod testkit;
pub mod twilio;

use aduan_core::Identity;
use aduan_store::OutboxItem;

pub use connector::{
    AndroidConfig, DEFAULT_MAX_PARTS, KannelConfig, SmsConfig, SmsConnector, TWILIO_MEDIA_HOSTS,
    TwilioConfig,
};
pub use section::{AndroidSmsSection, KannelSection, TwilioSection};

/// Errors of this crate's pure parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    #[error("bad phone number in {0}")]
    Phone(&'static str),
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{0}")]
    Malformed(String),
}

/// The gateways an SMS can come through and go out by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gateway {
    Kannel,
    Twilio,
    Android,
}

impl Gateway {
    pub const ALL: [Gateway; 3] = [Gateway::Kannel, Gateway::Twilio, Gateway::Android];

    pub fn as_str(self) -> &'static str {
        match self {
            Gateway::Kannel => "kannel",
            Gateway::Twilio => "twilio",
            Gateway::Android => "android",
        }
    }

    /// The provider id of a message of this gateway.
    pub fn provider_id(self, id: &str) -> String {
        format!("{}:{id}", self.as_str())
    }

    /// The gateway of a provider id written by [`Gateway::provider_id`].
    pub fn of_provider_id(id: &str) -> Option<Gateway> {
        let (prefix, _) = id.split_once(':')?;
        Gateway::ALL.into_iter().find(|g| g.as_str() == prefix)
    }

    /// The gateway of the newest message among `refs` (newest first, as
    /// `OutboxItem::thread_refs` lists them) that came or went through one.
    pub fn of_refs(refs: &[String]) -> Option<Gateway> {
        refs.iter().find_map(|r| Gateway::of_provider_id(r))
    }
}

/// A sender's number as a phone identity. Besides the forms `Identity::phone` accepts
/// (`+62…`, `62…`, `08…`), the international prefix `00` is read as `+`.
pub fn phone(raw: &str, field: &'static str) -> Result<Identity, SmsError> {
    let raw = raw.trim();
    let raw = match raw.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => raw.to_owned(),
    };
    Identity::phone(&raw).map_err(|_| SmsError::Phone(field))
}

/// The text an outbox row goes out with by SMS: the row's text as the store wrote it. The
/// store already writes the SMS receipt in one part (`aduan_core::texts::receipt_on`), so
/// nothing is rewritten here.
pub fn outgoing_text(item: &OutboxItem) -> String {
    item.text.clone()
}

/// Percent-decodes one form value into bytes (`+` is a space).
pub(crate) fn form_bytes(raw: &str) -> Vec<u8> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).collect()
}

/// The pairs of a form-encoded string, values as bytes, in order (duplicates kept).
pub(crate) fn form_pairs(raw: &str) -> Vec<(String, Vec<u8>)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (String::from_utf8_lossy(&form_bytes(k)).into_owned(), form_bytes(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gateway_form_of_a_number_is_one_identity() {
        for raw in ["+6281234567890", "6281234567890", "081234567890", "006281234567890"] {
            assert_eq!(phone(raw, "from").unwrap().value, "+6281234567890", "{raw}");
        }
        assert_eq!(phone("1708", "from"), Err(SmsError::Phone("from")));
        assert_eq!(phone("+62 abc", "from"), Err(SmsError::Phone("from")));
    }

    #[test]
    fn gateways_are_read_back_from_provider_ids() {
        let refs =
            vec!["email-id".to_owned(), Gateway::Twilio.provider_id("SM1"), "kannel:x".into()];
        assert_eq!(Gateway::of_refs(&refs), Some(Gateway::Twilio));
        assert_eq!(Gateway::of_refs(&[]), None);
        assert_eq!(Gateway::of_provider_id("android:abc"), Some(Gateway::Android));
        assert_eq!(Gateway::of_provider_id("fax:1"), None);
    }

    #[test]
    fn the_sms_receipt_fits_in_one_part() {
        use aduan_core::{Purpose, texts};
        let code = aduan_core::TicketCode::from_entropy([9, 8, 7, 6, 5]);
        let text =
            texts::receipt_on(aduan_core::Channel::Sms, texts::DEFAULT_ACK_TEMPLATE, code, 24);
        assert_eq!(split::parts(&text), 1, "{text}");
        assert!(text.contains(&code.to_string()) && text.contains("24 jam"), "{text}");
        assert_eq!(split::parts(&texts::sms_receipt(code, None)), 1);
        // Rows go out as the store wrote them, answers by people and receipts alike.
        let item = OutboxItem {
            id: 1,
            ticket: code,
            channel: aduan_core::Channel::Sms,
            recipient: Identity::phone("+6281234567890").unwrap(),
            text: texts::receipt(texts::DEFAULT_ACK_TEMPLATE, code, 24),
            purpose: Purpose::Reply,
            attempts: 1,
            thread_refs: vec![],
        };
        assert_eq!(outgoing_text(&item), item.text);
    }
}
