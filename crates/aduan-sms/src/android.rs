//! SMS Gateway for Android (capcom6/android-sms-gateway): the `sms:received` webhook
//! `/hooks/android-sms` and the phone's `/message` API for answers.
//!
//! Every webhook request carries `X-Timestamp` (Unix seconds) and `X-Signature`: hex
//! HMAC-SHA256 with the signing key over the raw body followed by the timestamp. Requests
//! more than five minutes off are refused (a replay of an old request can't store
//! anything); the event `id` is the dedupe key (the app retries for two days).

use aduan_connector::{Rejection, Webhook, WebhookReply, WebhookRequest};
use aduan_core::{Channel, InboundMessage, Sender, ThreadHints};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::{Gateway, phone};

type HmacSha256 = Hmac<Sha256>;

/// How far `X-Timestamp` may be from our clock.
pub const MAX_SKEW_SECS: i64 = 300;

fn mac(key: &str, body: &[u8], timestamp: &str) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` can't fail for it.
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac
}

/// The `X-Signature` the app sends for `body` at `timestamp`.
pub fn signature(key: &str, body: &[u8], timestamp: &str) -> String {
    hex::encode(mac(key, body, timestamp).finalize().into_bytes())
}

fn header<'a>(req: &'a WebhookRequest, name: &'static str) -> Result<&'a str, Rejection> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or(Rejection::Unauthenticated(name))
}

/// Checks the signature and the timestamp's age against `now`, in constant time.
pub fn verify(req: &WebhookRequest, key: &str, now: DateTime<Utc>) -> Result<(), Rejection> {
    let sig = header(req, "x-signature")?;
    let ts = header(req, "x-timestamp")?;
    let Ok(expected) = hex::decode(sig) else {
        return Err(Rejection::Forbidden("X-Signature"));
    };
    // An empty signing key authenticates nobody (check-config refuses it too).
    if key.is_empty() {
        return Err(Rejection::Forbidden("X-Signature"));
    }
    if mac(key, &req.body, ts).verify_slice(&expected).is_err() {
        return Err(Rejection::Forbidden("X-Signature"));
    }
    let Ok(secs) = ts.parse::<i64>() else {
        return Err(Rejection::Forbidden("X-Timestamp"));
    };
    if (now.timestamp() - secs).abs() > MAX_SKEW_SECS {
        return Err(Rejection::Forbidden("X-Timestamp"));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    event: String,
    id: String,
    #[serde(default)]
    payload: Option<Payload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    received_at: Option<String>,
}

/// The message of a verified body (`None`: another event, or an empty SMS).
pub fn parse(body: &[u8]) -> Result<Option<InboundMessage>, Rejection> {
    let event: Event = serde_json::from_slice(body)
        .map_err(|e| Rejection::Malformed(format!("not an event: {}", e.classify_name())))?;
    if event.id.trim().is_empty() {
        return Err(Rejection::Invalid("missing id".into()));
    }
    if event.event != "sms:received" {
        return Ok(None);
    }
    let payload = event.payload.ok_or_else(|| Rejection::Invalid("missing payload".into()))?;
    let from = payload
        .phone_number
        .ok_or_else(|| Rejection::Invalid("missing payload.phoneNumber".into()))?;
    let identity =
        phone(&from, "payload.phoneNumber").map_err(|e| Rejection::Invalid(e.to_string()))?;
    let text = payload.message.unwrap_or_default().replace('\0', "");
    if text.trim().is_empty() {
        return Ok(None);
    }
    let received_at = payload
        .received_at
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now);
    Ok(Some(InboundMessage {
        channel: Channel::Sms,
        provider_id: Gateway::Android.provider_id(event.id.trim()),
        sender: Sender { identity: Some(identity), display_name: None, contacts: Vec::new() },
        text,
        attachments: Vec::new(),
        location: None,
        received_at,
        thread: ThreadHints::default(),
    }))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected fields",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

/// `/hooks/android-sms`.
pub struct AndroidWebhook {
    signing_key: String,
}

impl AndroidWebhook {
    pub fn new(signing_key: impl Into<String>) -> AndroidWebhook {
        AndroidWebhook { signing_key: signing_key.into() }
    }
}

impl Webhook for AndroidWebhook {
    fn path(&self) -> &'static str {
        "android-sms"
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn handle(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        verify(req, &self.signing_key, Utc::now())?;
        if let Some(receipt) = status_receipt(&req.body, Utc::now())? {
            return Ok(WebhookReply::Receipts { receipts: vec![receipt], body: None });
        }
        let messages = parse(&req.body)?.into_iter().collect();
        Ok(WebhookReply::Store { messages, body: None })
    }
}

/// The send call: `POST {api_url}/message` on the phone (local mode), or
/// `{api_url}/messages` when `api_url` is the cloud's `…/3rdparty/v1`.
pub fn message_url(api_url: &str) -> String {
    let base = api_url.trim_end_matches('/');
    if base.ends_with("/3rdparty/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/message")
    }
}

/// The JSON body of a send.
pub fn message_body(to: &str, text: &str) -> serde_json::Value {
    serde_json::json!({ "textMessage": { "text": text }, "phoneNumbers": [to] })
}

/// The id of the accepted message, or why not (`true`: worth retrying).
pub fn message_answer(status: u16, body: &[u8]) -> Result<String, (bool, String)> {
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    if (200..300).contains(&status) {
        return doc
            .get("id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or((true, format!("the gateway answered {status} without an id")));
    }
    let retry = status == 429 || status >= 500;
    Err((retry, format!("the gateway answered {status}")))
}

// --- receipts: the gateway's sms:sent, sms:delivered and sms:failed events ---
//
// Registered on the same URL as `sms:received` (one registration per event), they name
// the message by the `id` our send got back (`payload.messageId`): receipts for
// `android:<id>`, matched by provider id. `sms:failed` carries the phone's `reason`.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusEvent {
    event: String,
    #[serde(default)]
    payload: Option<StatusPayload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusPayload {
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    sent_at: Option<String>,
    #[serde(default)]
    delivered_at: Option<String>,
    #[serde(default)]
    failed_at: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The receipt a verified `sms:sent`/`sms:delivered`/`sms:failed` event carries (`None`:
/// another event).
pub fn status_receipt(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<aduan_core::CallbackReceipt>, Rejection> {
    use aduan_core::{CallbackReceipt, DeliveryReceipt, ReceiptStatus};
    let event: StatusEvent = serde_json::from_slice(body)
        .map_err(|e| Rejection::Malformed(format!("not an event: {}", e.classify_name())))?;
    let status = match event.event.as_str() {
        "sms:sent" => ReceiptStatus::Sent,
        "sms:delivered" => ReceiptStatus::Delivered,
        "sms:failed" => ReceiptStatus::Failed,
        _ => return Ok(None),
    };
    let p = event.payload.ok_or_else(|| Rejection::Invalid("missing payload".into()))?;
    let id = p
        .message_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 200)
        .ok_or_else(|| Rejection::Invalid("missing payload.messageId".into()))?;
    let at = [&p.sent_at, &p.delivered_at, &p.failed_at]
        .into_iter()
        .flatten()
        .find_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(now, |t| t.with_timezone(&Utc));
    let error = (status == ReceiptStatus::Failed).then(|| {
        let reason: String = p
            .reason
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(120)
            .collect();
        if reason.trim().is_empty() {
            "the phone reported a failure".to_owned()
        } else {
            format!("android: {}", reason.trim())
        }
    });
    Ok(Some(CallbackReceipt {
        outbox_id: None,
        receipt: DeliveryReceipt {
            channel: Channel::Sms,
            provider_id: Gateway::Android.provider_id(id),
            status,
            at,
            error,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_signature_vector() {
        // protocols.md §4c: key `signing_key`, this body, timestamp 1719046000.
        let body = br#"{"deviceId":"ffffffffceb0b1db0000018e937c815b","event":"sms:received"}"#;
        assert_eq!(
            signature("signing_key", body, "1719046000"),
            "9d88f10772b680b64c8f3efb2231dbfa6b3306d1f14c246e8ba78e8e885b46ee"
        );
    }

    #[test]
    fn send_calls() {
        assert_eq!(message_url("http://phone.local:8080/"), "http://phone.local:8080/message");
        assert_eq!(
            message_url("https://api.sms-gate.app/3rdparty/v1"),
            "https://api.sms-gate.app/3rdparty/v1/messages"
        );
        assert_eq!(
            message_body("+6281234567890", "Halo"),
            serde_json::json!({"textMessage": {"text": "Halo"}, "phoneNumbers": ["+6281234567890"]})
        );
        assert_eq!(message_answer(202, br#"{"id":"m1","state":"Pending"}"#), Ok("m1".into()));
        assert_eq!(message_answer(401, b""), Err((false, "the gateway answered 401".into())));
        assert!(matches!(message_answer(500, b""), Err((true, _))));
    }
}
