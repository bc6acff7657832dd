//! Kannel: the smsbox `sms-service` calls `/hooks/kannel` for every inbound SMS
//! (`get-url`, or `post-url` with the text as the body), and answers go out through the
//! smsbox `sendsms` interface.
//!
//! The service line this webhook expects (README, "SMS"):
//!
//! ```text
//! group = sms-service
//! keyword = default
//! catch-all = true
//! get-url = "http://127.0.0.1:8080/hooks/kannel?secret=SECRET&from=%p&to=%P&text=%b&charset=%C&coding=%c&ts=%T&id=%I&smsc=%i"
//! max-messages = 0
//! ```
//!
//! `%I` (Kannel's message id) is the dedupe key: Kannel redelivers a message whose webhook
//! call failed (`http-request-retry`) with the same id. `%b` is the text as it came, in the
//! charset `%C` names (UTF-8 with `mo-recode = true`, else GSM text, WINDOWS-1252 or
//! UTF-16BE); `%a` (words squeezed) works too.

use aduan_connector::{Rejection, Webhook, WebhookReply, WebhookRequest};
use aduan_core::{Channel, InboundMessage, Sender, ThreadHints};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{Gateway, form_pairs, phone, split};

/// `/hooks/kannel`.
pub struct KannelWebhook {
    secret: String,
}

impl KannelWebhook {
    pub fn new(secret: impl Into<String>) -> KannelWebhook {
        KannelWebhook { secret: secret.into() }
    }
}

/// Decodes an SMS text Kannel passed as bytes in `charset` (its `%C`), with `coding` (its
/// `%c`) as a hint when the charset is missing.
pub fn decode_text(bytes: &[u8], charset: Option<&str>, coding: Option<&str>) -> String {
    let charset = charset.map(|c| c.trim().to_ascii_uppercase());
    let utf16 = match charset.as_deref() {
        Some("UTF-16BE" | "UCS-2" | "UTF-16") => true,
        Some(_) => false,
        None => coding == Some("2"),
    };
    let text = if utf16 && bytes.len().is_multiple_of(2) {
        let units = bytes.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
        char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}')).collect()
    } else {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            // WINDOWS-1252 / ISO-8859-1: one byte, one character (Latin-1 view).
            Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
        }
    };
    text.replace('\0', "")
}

/// Kannel's `%T` (Unix seconds) or `%t` (`YYYY-MM-DD HH:MM[:SS]`, read as UTC).
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<i64>() {
        return Utc.timestamp_opt(secs, 0).single();
    }
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
        .map(|t| t.and_utc())
}

/// Compares two secrets in constant time (their SHA-256 digests, so lengths don't leak).
pub(crate) fn secret_eq(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    Sha256::digest(a.as_bytes()).ct_eq(&Sha256::digest(b.as_bytes())).into()
}

fn header<'a>(req: &'a WebhookRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The `secret` query parameter against the configured one: all of smsbox's authentication,
/// checked before the body is read ([`Webhook::precheck`]) and again in [`parse`].
pub fn check_secret(req: &WebhookRequest, secret: &str) -> Result<(), Rejection> {
    let pairs = form_pairs(req.query.as_deref().unwrap_or(""));
    let Some((_, given)) = pairs.iter().find(|(k, _)| k == "secret") else {
        return Err(Rejection::Unauthenticated("secret"));
    };
    // An empty configured secret authenticates nobody (check-config refuses it too).
    if secret.is_empty() || !secret_eq(&String::from_utf8_lossy(given), secret) {
        return Err(Rejection::Forbidden("secret"));
    }
    Ok(())
}

/// Parses one smsbox request into the message it carries (`None`: an empty SMS).
pub fn parse(req: &WebhookRequest, secret: &str) -> Result<Option<InboundMessage>, Rejection> {
    let pairs = form_pairs(req.query.as_deref().unwrap_or(""));
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice());
    let text_param = |name: &str| param(name).map(|v| String::from_utf8_lossy(v).into_owned());

    check_secret(req, secret)?;
    let (bytes, charset) = if req.method == http::Method::GET {
        if !req.body.is_empty() {
            return Err(Rejection::Malformed("a GET from smsbox carries no body".into()));
        }
        (param("text").unwrap_or_default().to_vec(), text_param("charset"))
    } else if req.method == http::Method::POST {
        // post-url: the text is the body; a body shorter or longer than announced is cut.
        if let Some(len) =
            header(req, "content-length").and_then(|v| v.trim().parse::<usize>().ok())
            && len != req.body.len()
        {
            return Err(Rejection::Malformed("the body is not as long as announced".into()));
        }
        match param("text") {
            Some(t) => (t.to_vec(), text_param("charset")),
            None => {
                let ct_charset = header(req, "content-type").and_then(|ct| {
                    ct.split(';')
                        .find_map(|p| p.trim().strip_prefix("charset="))
                        .map(|c| c.trim_matches('"').to_owned())
                });
                (req.body.to_vec(), text_param("charset").or(ct_charset))
            }
        }
    } else {
        return Err(Rejection::Malformed("use GET or POST".into()));
    };
    let coding = text_param("coding").or_else(|| header(req, "x-kannel-coding").map(str::to_owned));
    let text = decode_text(&bytes, charset.as_deref(), coding.as_deref());

    let from = text_param("from")
        .or_else(|| header(req, "x-kannel-from").map(str::to_owned))
        .ok_or_else(|| Rejection::Invalid("missing from (%p)".into()))?;
    let identity = phone(&from, "from").map_err(|e| Rejection::Invalid(e.to_string()))?;
    let id = text_param("id")
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| Rejection::Invalid("missing id (%I)".into()))?;
    if id.len() > 200 {
        return Err(Rejection::Invalid("id longer than 200 characters".into()));
    }
    let received_at = text_param("ts")
        .or_else(|| header(req, "x-kannel-time").map(str::to_owned))
        .and_then(|t| parse_time(&t))
        .unwrap_or_else(Utc::now);
    if text.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(InboundMessage {
        channel: Channel::Sms,
        provider_id: Gateway::Kannel.provider_id(id.trim()),
        sender: Sender { identity: Some(identity), display_name: None, contacts: Vec::new() },
        text,
        attachments: Vec::new(),
        location: None,
        received_at,
        thread: ThreadHints::default(),
    }))
}

impl Webhook for KannelWebhook {
    fn path(&self) -> &'static str {
        "kannel"
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn precheck(&self, req: &WebhookRequest) -> Result<(), Rejection> {
        check_secret(req, &self.secret)
    }

    fn handle(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        let messages = parse(req, &self.secret)?.into_iter().collect();
        // With `max-messages = 0` Kannel sends nothing back; an empty body either way.
        Ok(WebhookReply::Store { messages, body: None })
    }
}

/// Characters escaped in a sendsms query: everything but letters and digits.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// The `sendsms` URL that sends `text` to `to` (E.164). Kannel splits a long text itself
/// into concatenated parts (UDH), 153 septets or 67 UCS-2 units each.
pub fn sendsms_url(
    base: &str,
    username: &str,
    password: &str,
    from: Option<&str>,
    to: &str,
    text: &str,
) -> String {
    let coding = split::coding_of(text).kannel_coding().to_string();
    let mut pairs: Vec<(&str, &str)> = vec![("username", username), ("password", password)];
    if let Some(from) = from {
        pairs.push(("from", from));
    }
    pairs.extend([("to", to), ("text", text), ("charset", "UTF-8"), ("coding", &coding)]);
    let query: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY))).collect();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", query.join("&"))
}

/// What a sendsms answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `0: Accepted for delivery`.
    Accepted,
    /// `3: Queued for later delivery`: bearerbox holds it until an SMSC takes it.
    Queued,
    Retry(String),
    Permanent(String),
}

/// Reads smsbox's answer to `sendsms`.
pub fn answer(status: u16, body: &str) -> Outcome {
    let line = body.lines().next().unwrap_or("").trim();
    let short: String = line.chars().take(120).collect();
    match status {
        200..=299 if line.starts_with("0:") => Outcome::Accepted,
        200..=299 if line.starts_with("3:") => Outcome::Queued,
        200..=299 => Outcome::Retry(format!("sendsms answered {status} {short:?}")),
        500..=599 | 429 | 408 => Outcome::Retry(format!("sendsms answered {status} {short:?}")),
        _ => Outcome::Permanent(format!("sendsms answered {status} {short:?}")),
    }
}

// --- receipts: Kannel delivery reports ---
//
// Every answer is sent with `dlr-mask=31` (all five report kinds) and a `dlr-url` on us:
// `{dlr base}?secret=SECRET&row=ID&type=%d&answer=%A` ([`dlr_url`]). smsbox fills in `%d`
// (the report kind) and `%A` (the SMSC's answer) and calls it; the secret in the query is
// checked before the body is read, as on `/hooks/kannel`. The kinds become receipts for
// `kannel:out-ID`: 1 delivered → delivered, 2 not delivered → failed, 4 buffered at the
// SMSC → sent, 8 accepted by the SMSC → sent, 16 rejected by the SMSC → failed. Of the
// SMSC's answer only the SMPP `stat:`/`err:` codes are kept (an SMPP report quotes the
// first characters of the text, which stays out of the store).

/// All five DLR kinds: delivered, not delivered, buffered, accepted by and rejected by
/// the SMSC.
pub const DLR_MASK: u8 = 1 | 2 | 4 | 8 | 16;

/// The `dlr-url` of the answer in outbox row `row`: `base` is the DLR webhook's URL as
/// smsbox reaches it (`{public_url}/hooks/kannel-dlr` unless configured).
pub fn dlr_url(base: &str, secret: &str, row: i64) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}secret={}&row={row}&type=%d&answer=%A", utf8_percent_encode(secret, QUERY))
}

/// `url` (a [`sendsms_url`]) asking for delivery reports at `dlr_url`.
pub fn with_dlr(url: &str, dlr_url: &str) -> String {
    format!("{url}&dlr-mask={DLR_MASK}&dlr-url={}", utf8_percent_encode(dlr_url, QUERY))
}

/// The codes of an SMSC answer worth keeping (`stat:UNDELIV err:013`), never its text.
fn smsc_codes(answer: &str) -> Option<String> {
    let codes: Vec<&str> = answer
        .split_whitespace()
        .filter(|w| w.starts_with("stat:") || w.starts_with("err:"))
        .map(|w| &w[..w.len().min(24)])
        .collect();
    (!codes.is_empty()).then(|| codes.join(" "))
}

/// The receipt one verified delivery report carries.
pub fn dlr_receipt(
    req: &WebhookRequest,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<aduan_core::CallbackReceipt, Rejection> {
    use aduan_core::{CallbackReceipt, DeliveryReceipt, ReceiptStatus};
    check_secret(req, secret)?;
    let pairs = form_pairs(req.query.as_deref().unwrap_or(""));
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_owned())
    };
    let row = param("row")
        .and_then(|r| r.parse::<i64>().ok())
        .filter(|r| *r > 0)
        .ok_or_else(|| Rejection::Malformed("row is not an outbox row id".into()))?;
    let kind = param("type")
        .and_then(|t| t.parse::<u8>().ok())
        .ok_or_else(|| Rejection::Malformed("type (%d) is not a DLR kind".into()))?;
    let codes = param("answer").as_deref().and_then(smsc_codes);
    let failed = |what: &str| {
        let mut e = format!("kannel DLR {kind}: {what}");
        if let Some(c) = &codes {
            e.push_str(&format!(" ({c})"));
        }
        Some(e)
    };
    let (status, error) = match kind {
        1 => (ReceiptStatus::Delivered, None),
        2 => (ReceiptStatus::Failed, failed("not delivered")),
        4 | 8 => (ReceiptStatus::Sent, None),
        16 => (ReceiptStatus::Failed, failed("rejected by the SMSC")),
        _ => return Err(Rejection::Invalid(format!("unknown DLR kind {kind}"))),
    };
    Ok(CallbackReceipt {
        outbox_id: Some(row),
        receipt: DeliveryReceipt {
            channel: Channel::Sms,
            provider_id: Gateway::Kannel.provider_id(&format!("out-{row}")),
            status,
            at: now,
            error,
        },
    })
}

/// `/hooks/kannel-dlr`: smsbox's delivery reports for the answers we sent.
pub struct KannelDlrWebhook {
    secret: String,
}

impl KannelDlrWebhook {
    pub fn new(secret: impl Into<String>) -> KannelDlrWebhook {
        KannelDlrWebhook { secret: secret.into() }
    }
}

impl Webhook for KannelDlrWebhook {
    fn path(&self) -> &'static str {
        "kannel-dlr"
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn precheck(&self, req: &WebhookRequest) -> Result<(), Rejection> {
        check_secret(req, &self.secret)
    }

    fn handle(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        let receipt = dlr_receipt(req, &self.secret, Utc::now())?;
        Ok(WebhookReply::Receipts { receipts: vec![receipt], body: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_decoded_by_charset() {
        assert_eq!(decode_text("café".as_bytes(), Some("UTF-8"), Some("0")), "café");
        assert_eq!(
            decode_text(&[0x00, 0x41, 0xa8, 0x01], Some("UTF-16BE"), Some("2")),
            "A\u{a801}"
        );
        assert_eq!(decode_text(&[0x00, 0x42], None, Some("2")), "B");
        assert_eq!(decode_text(&[0x63, 0x61, 0x66, 0xe9], Some("WINDOWS-1252"), None), "café");
        assert_eq!(decode_text(b"a\0b", None, None), "ab");
    }

    #[test]
    fn times_are_epoch_or_kannel_dates() {
        assert_eq!(parse_time("1719046000").unwrap().to_rfc3339(), "2024-06-22T08:46:40+00:00");
        assert_eq!(
            parse_time("2024-06-22 08:46:40").unwrap().to_rfc3339(),
            "2024-06-22T08:46:40+00:00"
        );
        assert_eq!(
            parse_time("2024-06-22 08:46").unwrap().to_rfc3339(),
            "2024-06-22T08:46:00+00:00"
        );
        assert!(parse_time("kemarin").is_none());
    }

    #[test]
    fn sendsms_urls_escape_the_plus_and_pick_the_coding() {
        let url = sendsms_url(
            "http://127.0.0.1:13013/cgi-bin/sendsms",
            "aduan",
            "s&cret",
            Some("1708"),
            "+6281234567890",
            "Kode ADU-7K3M9QXP & 100%",
        );
        assert_eq!(
            url,
            "http://127.0.0.1:13013/cgi-bin/sendsms?username=aduan&password=s%26cret&from=1708\
             &to=%2B6281234567890&text=Kode%20ADU-7K3M9QXP%20%26%20100%25&charset=UTF-8&coding=0"
        );
        let ucs = sendsms_url("http://k/s?x=1", "u", "p", None, "+62812", "Banjir “parah”");
        assert!(ucs.starts_with("http://k/s?x=1&username=u&password=p&to="), "{ucs}");
        assert!(ucs.ends_with("&coding=2"), "{ucs}");
    }

    #[test]
    fn sendsms_answers() {
        assert_eq!(answer(202, "0: Accepted for delivery"), Outcome::Accepted);
        assert_eq!(answer(202, "3: Queued for later delivery"), Outcome::Queued);
        assert!(matches!(answer(503, "Temporal failure, try again later."), Outcome::Retry(_)));
        assert!(matches!(answer(403, "Authorization failed for sendsms"), Outcome::Permanent(_)));
        assert!(matches!(answer(400, "Receiver number missing"), Outcome::Permanent(_)));
    }
}
