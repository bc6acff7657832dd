//! Twilio (and Twilio-compatible gateways): the inbound-message webhook `/hooks/twilio`,
//! signed with `X-Twilio-Signature`, and the Messages API for answers.
//!
//! The signature is base64(HMAC-SHA1(auth token, URL + every POST parameter as name+value,
//! sorted by name)) over the URL exactly as configured at Twilio — `[server] public_url` +
//! `/hooks/twilio` + the query. Validators also accept the URL with the default port added
//! or removed, as Twilio's SDKs do. A JSON body is signed through the URL's `bodySHA256`.

use aduan_connector::{Rejection, ReplyBody, Webhook, WebhookReply, WebhookRequest};
use aduan_core::{AttachmentRef, Channel, InboundMessage, Location, Sender, ThreadHints};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::{Gateway, form_pairs, phone};

type HmacSha1 = Hmac<Sha1>;

fn mac(token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    // HMAC takes keys of any length; `new_from_slice` can't fail for it.
    let mut mac = HmacSha1::new_from_slice(token.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// The `X-Twilio-Signature` Twilio sends for `params` posted to `url`.
pub fn signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(token, url, params).finalize().into_bytes())
}

/// `url` as given, and with its default port removed or added.
pub fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let (host, port) = match hostport.find(']') {
        Some(end) => {
            let (h, rest) = hostport.split_at(end + 1);
            (h, rest.strip_prefix(':'))
        }
        None => match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    match port {
        Some(p) if p == default => out.push(format!("{scheme}://{userinfo}{host}{tail}")),
        Some(_) => {}
        None => out.push(format!("{scheme}://{userinfo}{host}:{default}{tail}")),
    }
    out
}

/// Checks `header` against `url` (and its port variants) and `params`, in constant time.
pub fn signature_ok(token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let Ok(expected) = STANDARD.decode(header.trim()) else {
        return false;
    };
    url_variants(url).iter().any(|u| mac(token, u, params).verify_slice(&expected).is_ok())
}

/// The `bodySHA256` a JSON-bodied request's URL carries.
fn body_sha256(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    form_pairs(query)
        .into_iter()
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

/// `/hooks/twilio`.
pub struct TwilioWebhook {
    auth_token: String,
    /// When set, requests for another account are refused.
    account_sid: Option<String>,
}

impl TwilioWebhook {
    pub fn new(auth_token: impl Into<String>, account_sid: Option<String>) -> TwilioWebhook {
        TwilioWebhook { auth_token: auth_token.into(), account_sid }
    }
}

/// The empty TwiML answer: no reply message (answers go through the Messages API).
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

fn lossy_pairs(raw: &str) -> Vec<(String, String)> {
    form_pairs(raw)
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

/// Verifies a request and returns its parameters (the form fields of a POST, the query of
/// a GET).
pub fn verify(req: &WebhookRequest, token: &str) -> Result<Vec<(String, String)>, Rejection> {
    let Some(sig) = req.headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()) else {
        return Err(Rejection::Unauthenticated("X-Twilio-Signature"));
    };
    // An empty auth token authenticates nobody (check-config refuses it too).
    if token.is_empty() {
        return Err(Rejection::Forbidden("X-Twilio-Signature"));
    }
    if req.method == http::Method::GET {
        if !req.body.is_empty() {
            return Err(Rejection::Malformed("a GET carries no body".into()));
        }
        if !signature_ok(token, &req.url, &[], sig) {
            return Err(Rejection::Forbidden("X-Twilio-Signature"));
        }
        return Ok(lossy_pairs(req.query.as_deref().unwrap_or("")));
    }
    if let Some(expected) = body_sha256(&req.url) {
        // A JSON body: the URL (with the body's hash) is signed, the body is checked by hash.
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        if !signature_ok(token, &req.url, &[], sig) {
            return Err(Rejection::Forbidden("X-Twilio-Signature"));
        }
        let actual = hex::encode(Sha256::digest(&req.body));
        if !bool::from(actual.as_bytes().ct_eq(expected.to_ascii_lowercase().as_bytes())) {
            return Err(Rejection::Forbidden("bodySHA256"));
        }
        return Err(Rejection::Invalid("a JSON body is not an inbound message".into()));
    }
    let body = std::str::from_utf8(&req.body).unwrap_or("");
    let params = lossy_pairs(body);
    if !signature_ok(token, &req.url, &params, sig) {
        return Err(Rejection::Forbidden("X-Twilio-Signature"));
    }
    if std::str::from_utf8(&req.body).is_err() {
        return Err(Rejection::Malformed("the form is not UTF-8".into()));
    }
    Ok(params)
}

/// The message a verified parameter set carries (`None`: a status callback or an empty
/// message).
pub fn parse(params: &[(String, String)]) -> Result<Option<InboundMessage>, Rejection> {
    let get = |name: &str| {
        params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    };
    let text = get("Body").unwrap_or("").replace('\0', "");
    // Status callbacks (`MessageStatus`) describe what we sent; they carry no Body.
    if get("MessageStatus").is_some() && get("Body").is_none() {
        return Ok(None);
    }
    let id = get("MessageSid")
        .or_else(|| get("SmsMessageSid"))
        .or_else(|| get("SmsSid"))
        .ok_or_else(|| Rejection::Invalid("missing MessageSid".into()))?;
    let from = get("From").ok_or_else(|| Rejection::Invalid("missing From".into()))?;
    if from.starts_with("whatsapp:") || from.starts_with("messenger:") {
        // Another channel relayed by Twilio: its answers could not go back by SMS.
        return Err(Rejection::Invalid(
            "a WhatsApp or Messenger message through Twilio is not handled (SMS only)".into(),
        ));
    }
    let identity = phone(from, "From").map_err(|e| Rejection::Invalid(e.to_string()))?;
    let media: usize = get("NumMedia").and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    let mut attachments = Vec::new();
    for n in 0..media.min(10) {
        let Some(url) = get(&format!("MediaUrl{n}")) else { continue };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Rejection::Invalid(format!("MediaUrl{n} is not a URL")));
        }
        attachments.push(AttachmentRef {
            filename: None,
            content_type: get(&format!("MediaContentType{n}"))
                .unwrap_or("application/octet-stream")
                .to_owned(),
            size: 0,
            sha256: String::new(),
            provider_ref: Some(url.to_owned()),
        });
    }
    let location = match (get("Latitude"), get("Longitude")) {
        (Some(lat), Some(lon)) => match (lat.trim().parse(), lon.trim().parse()) {
            (Ok(lat), Ok(lon)) => Location::new(lat, lon).ok(),
            _ => None,
        },
        _ => None,
    };
    if text.trim().is_empty() && attachments.is_empty() && location.is_none() {
        return Ok(None);
    }
    Ok(Some(InboundMessage {
        channel: Channel::Sms,
        provider_id: Gateway::Twilio.provider_id(id),
        sender: Sender {
            identity: Some(identity),
            display_name: get("ProfileName").map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
            contacts: Vec::new(),
        },
        text,
        attachments,
        location,
        received_at: chrono::Utc::now(),
        thread: ThreadHints::default(),
    }))
}

impl Webhook for TwilioWebhook {
    fn path(&self) -> &'static str {
        "twilio"
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn handle(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        let params = verify(req, &self.auth_token)?;
        if let Some(expected) = &self.account_sid
            && let Some((_, got)) = params.iter().find(|(k, _)| k == "AccountSid")
            && got != expected
        {
            return Err(Rejection::Forbidden("AccountSid"));
        }
        let messages = parse(&params)?.into_iter().collect();
        Ok(WebhookReply::Store {
            messages,
            body: Some(ReplyBody {
                content_type: "text/xml",
                bytes: bytes::Bytes::from_static(EMPTY_TWIML.as_bytes()),
            }),
        })
    }
}

/// One call to the Messages API.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageCall {
    pub url: String,
    pub account_sid: String,
    pub form: Vec<(&'static str, String)>,
}

/// `POST {api}/2010-04-01/Accounts/{sid}/Messages.json` with `To`, `Body` and `From` (or
/// `MessagingServiceSid` when `from` is an `MG…` service).
pub fn message_call(
    api_url: &str,
    account_sid: &str,
    from: &str,
    to: &str,
    text: &str,
) -> MessageCall {
    let sender = if from.starts_with("MG") { "MessagingServiceSid" } else { "From" };
    MessageCall {
        url: format!(
            "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
            api_url.trim_end_matches('/')
        ),
        account_sid: account_sid.to_owned(),
        form: vec![("To", to.to_owned()), (sender, from.to_owned()), ("Body", text.to_owned())],
    }
}

/// What the Messages API answered: the new message's `sid`, or why not.
pub fn message_answer(status: u16, body: &[u8]) -> Result<String, (bool, String)> {
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    if (200..300).contains(&status) {
        return doc
            .get("sid")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or((true, format!("Twilio answered {status} without a sid")));
    }
    let code = doc
        .get("code")
        .and_then(|v| v.as_i64())
        .map(|c| format!(" (error {c})"))
        .unwrap_or_default();
    let retry = status == 429 || status >= 500;
    Err((retry, format!("Twilio answered {status}{code}")))
}

// --- receipts: Twilio status callbacks ---
//
// Every answer is sent with `StatusCallback={public_url}/hooks/twilio-status?row=ID` (see
// [`status_callback_url`]); Twilio POSTs the message's status there, signed like an
// inbound webhook (the signed URL includes `?row=`, so the row is authenticated too).
// `MessageStatus` becomes a receipt for `twilio:<MessageSid>`: `sent` → sent, `delivered` →
// delivered, `read` → read, `undelivered`/`failed` → failed with `ErrorCode`; `queued`,
// `accepted`, `sending` and other intermediate states say nothing new and are acknowledged
// without a receipt. A forged request is 403, one without `MessageSid` or `MessageStatus`
// 422, a `row` that is not a number 400.

/// The `StatusCallback` of the answer in outbox row `row`: `base` is
/// `{public_url}/hooks/twilio-status`.
pub fn status_callback_url(base: &str, row: i64) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}row={row}")
}

/// The receipt a verified status callback carries (`None`: an intermediate status).
pub fn status_receipt(
    params: &[(String, String)],
    query: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<aduan_core::CallbackReceipt>, Rejection> {
    use aduan_core::{CallbackReceipt, DeliveryReceipt, ReceiptStatus};
    let get = |name: &str| {
        params.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    };
    let row = match form_pairs(query.unwrap_or("")).into_iter().find(|(k, _)| k == "row") {
        Some((_, v)) => Some(
            std::str::from_utf8(&v)
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|r| *r > 0)
                .ok_or_else(|| Rejection::Malformed("row is not an outbox row id".into()))?,
        ),
        None => None,
    };
    let sid = get("MessageSid")
        .or_else(|| get("SmsSid"))
        .ok_or_else(|| Rejection::Invalid("missing MessageSid".into()))?;
    if sid.len() > 64 || !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Rejection::Invalid("MessageSid is not a Twilio sid".into()));
    }
    let status = get("MessageStatus")
        .or_else(|| get("SmsStatus"))
        .ok_or_else(|| Rejection::Invalid("missing MessageStatus".into()))?;
    let (status, error) = match status.to_ascii_lowercase().as_str() {
        "sent" => (ReceiptStatus::Sent, None),
        "delivered" => (ReceiptStatus::Delivered, None),
        "read" => (ReceiptStatus::Read, None),
        "undelivered" | "failed" => {
            let code: String = get("ErrorCode")
                .unwrap_or("")
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(12)
                .collect();
            let code = if code.is_empty() { String::new() } else { format!(" (error {code})") };
            (ReceiptStatus::Failed, Some(format!("twilio {status}{code}")))
        }
        _ => return Ok(None),
    };
    Ok(Some(CallbackReceipt {
        outbox_id: row,
        receipt: DeliveryReceipt {
            channel: Channel::Sms,
            provider_id: Gateway::Twilio.provider_id(sid),
            status,
            at: now,
            error,
        },
    }))
}

/// `/hooks/twilio-status`: status callbacks of the answers we sent.
pub struct TwilioStatusWebhook {
    auth_token: String,
    /// When set, callbacks for another account are refused.
    account_sid: Option<String>,
}

impl TwilioStatusWebhook {
    pub fn new(auth_token: impl Into<String>, account_sid: Option<String>) -> TwilioStatusWebhook {
        TwilioStatusWebhook { auth_token: auth_token.into(), account_sid }
    }
}

impl Webhook for TwilioStatusWebhook {
    fn path(&self) -> &'static str {
        "twilio-status"
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn handle(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        if req.method != http::Method::POST {
            return Err(Rejection::Malformed("status callbacks are POSTed".into()));
        }
        let params = verify(req, &self.auth_token)?;
        if let Some(expected) = &self.account_sid
            && let Some((_, got)) = params.iter().find(|(k, _)| k == "AccountSid")
            && got != expected
        {
            return Err(Rejection::Forbidden("AccountSid"));
        }
        let receipts = status_receipt(&params, req.query.as_deref(), chrono::Utc::now())?
            .into_iter()
            .collect();
        Ok(WebhookReply::Receipts { receipts, body: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_are_tried_both_ways() {
        assert_eq!(
            url_variants("https://example.com/hooks/twilio?a=1"),
            vec![
                "https://example.com/hooks/twilio?a=1",
                "https://example.com:443/hooks/twilio?a=1"
            ]
        );
        assert_eq!(
            url_variants("http://example.com:80/x"),
            vec!["http://example.com:80/x", "http://example.com/x"]
        );
        assert_eq!(url_variants("http://example.com:1234/x"), vec!["http://example.com:1234/x"]);
    }

    #[test]
    fn messages_api_calls_and_answers() {
        let call = message_call("https://api.twilio.com/", "AC1", "+15005550006", "+62812", "Halo");
        assert_eq!(call.url, "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json");
        assert_eq!(call.form[1], ("From", "+15005550006".to_owned()));
        let svc = message_call("https://api.twilio.com", "AC1", "MG9", "+62812", "Halo");
        assert_eq!(svc.form[1], ("MessagingServiceSid", "MG9".to_owned()));
        assert_eq!(
            message_answer(201, br#"{"sid":"SM123","status":"queued"}"#),
            Ok("SM123".into())
        );
        assert_eq!(
            message_answer(400, br#"{"code":21211,"message":"The 'To' number is not valid."}"#),
            Err((false, "Twilio answered 400 (error 21211)".into()))
        );
        assert!(matches!(message_answer(429, b"{}"), Err((true, _))));
        assert!(matches!(message_answer(503, b"oops"), Err((true, _))));
    }
}

// --- windows: Twilio errors that mean "not deliverable to this number" ---

/// The Twilio error codes of a refused send that say this number can't get our SMS:
/// 21610 (the recipient answered STOP), 21614 (not a mobile number), 21211 (not a valid
/// number). The outbound worker then tries the resident's other identities.
pub fn undeliverable(body: &[u8]) -> Option<aduan_core::UndeliverableReason> {
    use aduan_core::UndeliverableReason as R;
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    match doc.get("code")?.as_i64()? {
        21610 => Some(R::Blocked),
        21614 => Some(R::NotOnChannel),
        21211 => Some(R::RecipientInvalid),
        _ => None,
    }
}

#[cfg(test)]
mod undeliverable_tests {
    use super::undeliverable;
    use aduan_core::UndeliverableReason as R;

    #[test]
    fn stop_and_landlines_are_reasons() {
        // The shape of Twilio's REST error answer.
        let body = |code: i64| {
            format!(
                r#"{{"code": {code}, "message": "...", "more_info": "https://www.twilio.com/docs/errors/{code}", "status": 400}}"#
            )
        };
        assert_eq!(undeliverable(body(21610).as_bytes()), Some(R::Blocked));
        assert_eq!(undeliverable(body(21614).as_bytes()), Some(R::NotOnChannel));
        assert_eq!(undeliverable(body(21211).as_bytes()), Some(R::RecipientInvalid));
        assert_eq!(undeliverable(body(20003).as_bytes()), None);
        assert_eq!(undeliverable(b"oops"), None);
    }
}
