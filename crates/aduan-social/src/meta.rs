//! Meta's one webhook for Messenger (`object: page`), Instagram (`object: instagram`) and
//! the WhatsApp Cloud API (`object: whatsapp_business_account`): the GET verification
//! handshake, the `X-Hub-Signature-256` check over the raw body, and the payload parser.
//! Everything here is pure.

use aduan_connector::{Rejection, ReplyBody, Webhook, WebhookReply, WebhookRequest};
use aduan_core::{
    AttachmentRef, Channel, Identity, IdentityKind, InboundMessage, Location, Sender, ThreadHints,
};
use aduan_store::{DeliveryReceipt, ReceiptStatus};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::json::{id, is_true, nonempty, str_at, time};
use crate::{Parsed, SocialError, UNSUPPORTED_TEXT, sig};

/// Parses a verified Meta webhook body. One body may carry many entries and events: every
/// resident message becomes an [`InboundMessage`], delivery receipts become
/// [`DeliveryReceipt`]s, and everything else (echoes of our own messages, read events,
/// reactions, opt-ins, account and template updates) is acknowledged and dropped. `now` is
/// used only for events without a time.
pub fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Parsed, SocialError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| SocialError::Json(e.to_string()))?;
    let object = doc
        .get("object")
        .and_then(Value::as_str)
        .ok_or_else(|| SocialError::Shape("no \"object\" string".into()))?;
    let entries = doc
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| SocialError::Shape("no \"entry\" list".into()))?;
    let mut out = Parsed::default();
    for entry in entries {
        match object {
            "page" => messaging_entry(entry, Channel::Messenger, now, &mut out),
            "instagram" => messaging_entry(entry, Channel::Instagram, now, &mut out),
            "whatsapp_business_account" => whatsapp_entry(entry, now, &mut out),
            _ => {}
        }
    }
    Ok(out)
}

fn identity_kind(channel: Channel) -> IdentityKind {
    match channel {
        Channel::Instagram => IdentityKind::InstagramId,
        Channel::Whatsapp => IdentityKind::Whatsapp,
        _ => IdentityKind::MessengerPsid,
    }
}

/// Messenger and Instagram: `entry[].messaging[]` (and `standby[]`, messages that arrived
/// while another app held the conversation), plus Instagram's `changes[]` with
/// `field: "messages"` (what the dashboard's test button sends).
fn messaging_entry(entry: &Value, channel: Channel, now: DateTime<Utc>, out: &mut Parsed) {
    let entry_time = time(entry.get("time"));
    let lists = ["messaging", "standby"]
        .into_iter()
        .filter_map(|k| entry.get(k).and_then(Value::as_array))
        .flatten();
    let changes = entry
        .get("changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("field").and_then(Value::as_str) == Some("messages"))
        .filter_map(|c| c.get("value"));
    for event in lists.chain(changes) {
        messaging_event(event, channel, entry_time.unwrap_or(now), out);
    }
}

fn messaging_event(ev: &Value, channel: Channel, fallback: DateTime<Utc>, out: &mut Parsed) {
    let at = time(ev.get("timestamp")).unwrap_or(fallback);
    if let Some(delivery) = ev.get("delivery") {
        let at = time(delivery.get("watermark")).unwrap_or(at);
        for mid in delivery.get("mids").and_then(Value::as_array).into_iter().flatten() {
            if let Some(mid) = id(Some(mid)) {
                out.receipts.push(DeliveryReceipt {
                    channel,
                    provider_id: mid,
                    status: ReceiptStatus::Delivered,
                    at,
                    error: None,
                });
            }
        }
        return;
    }
    let Some(psid) = id(ev.pointer("/sender/id")) else {
        return;
    };
    let Ok(identity) = Identity::new(identity_kind(channel), &psid) else {
        return;
    };
    let sender = Sender { identity: Some(identity), display_name: None, contacts: Vec::new() };
    if let Some(m) = ev.get("message") {
        // Our own messages come back as echoes; unsent messages are withdrawn, not new.
        if is_true(m.get("is_echo")) || is_true(m.get("is_deleted")) {
            return;
        }
        let Some(mid) = id(m.get("mid")) else {
            return;
        };
        let mut text = nonempty(m.get("text").and_then(Value::as_str)).unwrap_or("").to_owned();
        if is_true(m.get("is_unsupported")) && text.is_empty() {
            text = UNSUPPORTED_TEXT.to_owned();
        }
        let mut attachments = Vec::new();
        let mut location = None;
        for a in m.get("attachments").and_then(Value::as_array).into_iter().flatten() {
            let kind = a.get("type").and_then(Value::as_str).unwrap_or("file");
            let coords = a.pointer("/payload/coordinates");
            if let Some(c) = coords {
                let lat = c.get("lat").and_then(Value::as_f64);
                let lon = c.get("long").and_then(Value::as_f64);
                if let (Some(lat), Some(lon)) = (lat, lon) {
                    location = Location::new(lat, lon).ok();
                }
                continue;
            }
            let url = ["/payload/url", "/payload/story_media_url"]
                .into_iter()
                .find_map(|p| nonempty(str_at(a, p)));
            if let Some(url) = url {
                attachments.push(AttachmentRef {
                    filename: None,
                    content_type: content_family(kind).to_owned(),
                    size: 0,
                    sha256: String::new(),
                    provider_ref: Some(url.to_owned()),
                });
            }
        }
        let references = id(m.pointer("/reply_to/mid")).into_iter().collect::<Vec<String>>();
        out.messages.push(InboundMessage {
            channel,
            provider_id: mid,
            sender,
            text,
            attachments,
            location,
            received_at: at,
            thread: ThreadHints { references, ..ThreadHints::default() },
        });
    } else if let Some(pb) = ev.get("postback") {
        // A button press: its title is what the resident saw and chose.
        let text = nonempty(pb.get("title").and_then(Value::as_str))
            .or_else(|| nonempty(pb.get("payload").and_then(Value::as_str)))
            .unwrap_or("")
            .to_owned();
        // Older postbacks have no mid; sender and time identify a redelivery.
        let provider_id = id(pb.get("mid")).unwrap_or_else(|| {
            let raw = id(ev.get("timestamp")).unwrap_or_default();
            format!("postback:{psid}:{raw}")
        });
        out.messages.push(InboundMessage {
            channel,
            provider_id,
            sender,
            text,
            attachments: Vec::new(),
            location: None,
            received_at: at,
            thread: ThreadHints::default(),
        });
    }
}

/// Messenger and Instagram name attachment kinds, not MIME types; the real type is learnt
/// when the file is fetched.
fn content_family(kind: &str) -> &'static str {
    match kind {
        "image" | "story_mention" | "ig_story" | "ig_post" | "share" => "image/*",
        "video" | "reel" | "ig_reel" => "video/*",
        "audio" => "audio/*",
        _ => "application/octet-stream",
    }
}

/// WhatsApp: `entry[].changes[]` with `field: "messages"`; `value.messages[]` from
/// residents, `value.statuses[]` about what we sent, `value.contacts[]` with profile names.
fn whatsapp_entry(entry: &Value, now: DateTime<Utc>, out: &mut Parsed) {
    for change in entry.get("changes").and_then(Value::as_array).into_iter().flatten() {
        if change.get("field").and_then(Value::as_str) != Some("messages") {
            continue;
        }
        let Some(value) = change.get("value") else {
            continue;
        };
        let contacts = value.get("contacts").and_then(Value::as_array);
        let name_of = |wa_id: &str| -> Option<String> {
            let contacts = contacts?;
            let c = contacts
                .iter()
                .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(wa_id))
                .or(if contacts.len() == 1 { contacts.first() } else { None })?;
            nonempty(str_at(c, "/profile/name")).map(str::to_owned)
        };
        for m in value.get("messages").and_then(Value::as_array).into_iter().flatten() {
            if let Some(msg) = whatsapp_message(m, &name_of, now) {
                out.messages.push(msg);
            }
        }
        for s in value.get("statuses").and_then(Value::as_array).into_iter().flatten() {
            if let Some(r) = whatsapp_status(s, now) {
                out.receipts.push(r);
            }
        }
    }
}

fn whatsapp_message(
    m: &Value,
    name_of: &dyn Fn(&str) -> Option<String>,
    now: DateTime<Utc>,
) -> Option<InboundMessage> {
    let wamid = id(m.get("id"))?;
    let from = id(m.get("from"))?;
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("unknown");
    let mut references: Vec<String> = id(m.pointer("/context/id")).into_iter().collect();
    let text: String;
    let mut attachments = Vec::new();
    let mut location = None;
    // An edit carries the new version of an earlier message; it threads onto the original.
    let (kind, body) = if kind == "edit" {
        references.extend(id(m.pointer("/edit/original_message_id")));
        let inner = m.pointer("/edit/message")?;
        (inner.get("type").and_then(Value::as_str).unwrap_or("unknown"), inner)
    } else {
        (kind, m)
    };
    match kind {
        "text" => text = str_at(body, "/text/body").unwrap_or("").to_owned(),
        "image" | "video" | "audio" | "document" | "sticker" => {
            let media = body.get(kind)?;
            text = nonempty(media.get("caption").and_then(Value::as_str)).unwrap_or("").to_owned();
            attachments.push(AttachmentRef {
                filename: nonempty(media.get("filename").and_then(Value::as_str))
                    .map(str::to_owned),
                content_type: nonempty(media.get("mime_type").and_then(Value::as_str))
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
                size: 0,
                sha256: String::new(),
                provider_ref: Some(id(media.get("id"))?),
            });
        }
        "location" => {
            let l = body.get("location")?;
            let lat = l.get("latitude").and_then(Value::as_f64);
            let lon = l.get("longitude").and_then(Value::as_f64);
            if let (Some(lat), Some(lon)) = (lat, lon) {
                location = Location::new(lat, lon).ok();
            }
            let parts: Vec<&str> = ["name", "address"]
                .into_iter()
                .filter_map(|k| nonempty(l.get(k).and_then(Value::as_str)))
                .collect();
            text = parts.join("\n");
        }
        "contacts" => {
            // Contact cards the resident shared (a witness, a village head): their names
            // and numbers are message content, not the sender's identity.
            let cards: Vec<String> = body
                .get("contacts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| {
                    let name = str_at(c, "/name/formatted_name").unwrap_or("").trim();
                    let phones: Vec<&str> = c
                        .get("phones")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|p| nonempty(p.get("phone").and_then(Value::as_str)))
                        .collect();
                    format!("{name} {}", phones.join(", ")).trim().to_owned()
                })
                .collect();
            text = format!("Kontak: {}", cards.join("; "));
        }
        "interactive" => {
            let sub = str_at(body, "/interactive/type").unwrap_or("");
            if sub == "call_permission_reply" {
                // An answer to a call-permission request: no complaint.
                return None;
            }
            let reply = ["/interactive/button_reply/title", "/interactive/list_reply/title"]
                .into_iter()
                .find_map(|p| nonempty(str_at(body, p)));
            text = match (reply, str_at(body, "/interactive/nfm_reply/response_json")) {
                (Some(title), _) => title.to_owned(),
                (None, Some(form)) => flow_answers(form),
                (None, None) => UNSUPPORTED_TEXT.to_owned(),
            };
        }
        "button" => text = str_at(body, "/button/text").unwrap_or("").to_owned(),
        // Reactions, withdrawn messages and system notices (number changes) are no
        // complaint.
        "reaction" | "revoke" | "system" | "ephemeral" => return None,
        _ => text = UNSUPPORTED_TEXT.to_owned(),
    }
    let identity = Identity::new(IdentityKind::Whatsapp, &from).ok();
    let display_name = name_of(&from);
    Some(InboundMessage {
        channel: Channel::Whatsapp,
        provider_id: wamid,
        sender: Sender { identity, display_name, contacts: Vec::new() },
        text,
        attachments,
        location,
        received_at: time(m.get("timestamp")).unwrap_or(now),
        thread: ThreadHints { references, ..ThreadHints::default() },
    })
}

/// A WhatsApp Flow (an in-chat form) returns its fields as a JSON string: one `name: value`
/// line per field, without the technical `flow_token`.
fn flow_answers(form: &str) -> String {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(form) else {
        return UNSUPPORTED_TEXT.to_owned();
    };
    let lines: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k.as_str() != "flow_token")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect();
    if lines.is_empty() { UNSUPPORTED_TEXT.to_owned() } else { lines.join("\n") }
}

fn whatsapp_status(s: &Value, now: DateTime<Utc>) -> Option<DeliveryReceipt> {
    let status = match s.get("status").and_then(Value::as_str)? {
        "sent" => ReceiptStatus::Sent,
        "delivered" => ReceiptStatus::Delivered,
        "read" | "played" => ReceiptStatus::Read,
        "failed" => ReceiptStatus::Failed,
        _ => return None,
    };
    let error = s.get("errors").and_then(Value::as_array).and_then(|e| e.first()).map(|e| {
        let code = id(e.get("code")).unwrap_or_else(|| "?".into());
        let title = e.get("title").and_then(Value::as_str).unwrap_or("");
        format!("whatsapp error {code}: {title}").trim_end_matches([':', ' ']).to_owned()
    });
    Some(DeliveryReceipt {
        channel: Channel::Whatsapp,
        provider_id: id(s.get("id"))?,
        status,
        at: time(s.get("timestamp")).unwrap_or(now),
        error,
    })
}

/// The `/hooks/meta` webhook.
pub struct MetaWebhook {
    app_secret: String,
    verify_token: String,
    /// Delivery receipts go to the connector's loop, which applies them to the outbox.
    receipts: Option<mpsc::Sender<DeliveryReceipt>>,
}

impl MetaWebhook {
    pub fn new(
        app_secret: String,
        verify_token: String,
        receipts: Option<mpsc::Sender<DeliveryReceipt>>,
    ) -> MetaWebhook {
        MetaWebhook { app_secret, verify_token, receipts }
    }

    fn handshake(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        let query = req.query.as_deref().unwrap_or("");
        let mut mode = None;
        let mut token = None;
        let mut challenge = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "hub.mode" => mode = Some(v.into_owned()),
                "hub.verify_token" => token = Some(v.into_owned()),
                "hub.challenge" => challenge = Some(v.into_owned()),
                _ => {}
            }
        }
        // An empty configured token would let anyone subscribe.
        let Some(token) = token.filter(|_| !self.verify_token.is_empty()) else {
            return Err(Rejection::Forbidden("hub.verify_token"));
        };
        if !sig::secret_eq(token.as_bytes(), self.verify_token.as_bytes()) {
            return Err(Rejection::Forbidden("hub.verify_token"));
        }
        if mode.as_deref() != Some("subscribe") {
            return Err(Rejection::Invalid("hub.mode must be subscribe".into()));
        }
        let challenge = challenge
            .filter(|c| !c.is_empty() && c.len() <= 1024)
            .ok_or_else(|| Rejection::Invalid("hub.challenge is missing".into()))?;
        Ok(WebhookReply::Respond {
            status: 200,
            body: ReplyBody { content_type: "text/plain", bytes: Bytes::from(challenge) },
        })
    }
}

impl Webhook for MetaWebhook {
    fn path(&self) -> &'static str {
        "meta"
    }

    fn channel(&self) -> Channel {
        // Rejections are counted before the body says which Meta product it is.
        Channel::Messenger
    }

    fn handle(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        if req.method == http::Method::GET {
            return self.handshake(req);
        }
        if req.method != http::Method::POST {
            return Err(Rejection::Malformed("use GET or POST".into()));
        }
        // Absent or wrong, the answer is the same 403: nothing unsigned is read.
        let header = req
            .headers
            .get("x-hub-signature-256")
            .and_then(|h| h.to_str().ok())
            .ok_or(Rejection::Forbidden("X-Hub-Signature-256"))?;
        // An empty app secret signs nothing: anyone could compute the HMAC.
        if self.app_secret.is_empty()
            || !sig::meta_signature_ok(self.app_secret.as_bytes(), &req.body, header)
        {
            return Err(Rejection::Forbidden("X-Hub-Signature-256"));
        }
        let parsed = parse(&req.body, Utc::now()).map_err(Rejection::from)?;
        if let Some(tx) = &self.receipts {
            for r in parsed.receipts {
                if tx.try_send(r).is_err() {
                    tracing::warn!(
                        channel = "meta",
                        "Receipt queue full; a delivery receipt was dropped."
                    );
                }
            }
        }
        Ok(WebhookReply::Store { messages: parsed.messages, body: None })
    }
}
