//! X's Account Activity webhook: the CRC challenge (GET), the
//! `x-twitter-webhooks-signature` check over the raw body (POST), and the parser for
//! direct messages and mentions. Pure.
//!
//! **The CRC is not a signing oracle.** X computes both the CRC `response_token` and the
//! POST signature as HMAC-SHA256 with the consumer secret, with no domain separation; we
//! can't change X's scheme. So the CRC answers only tokens shaped like X's (at most
//! [`MAX_CRC_TOKEN`] bytes of letters, digits and `-_+/=`: UUIDs and base64) and refuses
//! anything else with 400. A body the POST side accepts is a JSON object, which needs a
//! `{`, a byte no CRC token may hold: no answer of the CRC is ever a valid POST signature.

use aduan_connector::{Rejection, ReplyBody, Webhook, WebhookReply, WebhookRequest};
use aduan_core::{
    AttachmentRef, Channel, Identity, IdentityKind, InboundMessage, Sender, ThreadHints,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::json::{id, nonempty, str_at, time};
use crate::{Parsed, SocialError, sig};

/// The provider-id prefix of a public mention. Direct-message events keep their bare id;
/// the sender answers a ticket opened by a mention publicly with the code only.
pub const TWEET_PREFIX: &str = "tweet:";

/// Parses a verified Account Activity body. Direct messages from residents and public
/// tweets that mention (or reply to) the account become messages; our own DMs and tweets
/// (`sender == for_user_id`), retweets, likes, follows and typing or read indicators are
/// dropped.
pub fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Parsed, SocialError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| SocialError::Json(e.to_string()))?;
    if !doc.is_object() {
        return Err(SocialError::Shape("not a JSON object".into()));
    }
    let me = id(doc.get("for_user_id"));
    let mut out = Parsed::default();
    for ev in doc.get("direct_message_events").and_then(Value::as_array).into_iter().flatten() {
        if let Some(m) = direct_message(ev, &doc, me.as_deref(), now) {
            out.messages.push(m);
        }
    }
    for tw in doc.get("tweet_create_events").and_then(Value::as_array).into_iter().flatten() {
        if let Some(m) = mention(tw, me.as_deref(), now) {
            out.messages.push(m);
        }
    }
    Ok(out)
}

fn direct_message(
    ev: &Value,
    doc: &Value,
    me: Option<&str>,
    now: DateTime<Utc>,
) -> Option<InboundMessage> {
    if ev.get("type").and_then(Value::as_str) != Some("message_create") {
        return None;
    }
    let event_id = id(ev.get("id"))?;
    let create = ev.get("message_create")?;
    let sender_id = id(create.get("sender_id"))?;
    if me == Some(sender_id.as_str()) {
        return None;
    }
    let data = create.get("message_data");
    let text =
        unescape_html(data.and_then(|d| d.get("text")).and_then(Value::as_str).unwrap_or(""));
    let mut attachments = Vec::new();
    if let Some(media) = data.and_then(|d| d.pointer("/attachment/media"))
        && let Some(url) = nonempty(media.get("media_url_https").and_then(Value::as_str))
    {
        let content_type = match media.get("type").and_then(Value::as_str) {
            Some("photo") => "image/*",
            Some("video" | "animated_gif") => "video/*",
            _ => "application/octet-stream",
        };
        attachments.push(AttachmentRef {
            filename: None,
            content_type: content_type.to_owned(),
            size: 0,
            sha256: String::new(),
            provider_ref: Some(url.to_owned()),
        });
    }
    let display_name = doc
        .get("users")
        .and_then(|u| u.get(&sender_id))
        .and_then(|u| nonempty(u.get("name").and_then(Value::as_str)))
        .map(str::to_owned);
    Some(InboundMessage {
        channel: Channel::X,
        provider_id: event_id,
        sender: Sender {
            identity: Some(Identity::new(IdentityKind::XUser, &sender_id).ok()?),
            display_name,
            contacts: Vec::new(),
        },
        text,
        attachments,
        location: None,
        received_at: time(ev.get("created_timestamp")).unwrap_or(now),
        thread: ThreadHints::default(),
    })
}

fn mention(tw: &Value, me: Option<&str>, now: DateTime<Utc>) -> Option<InboundMessage> {
    let tweet_id = id(tw.get("id_str")).or_else(|| id(tw.get("id")))?;
    let user_id = id(tw.pointer("/user/id_str")).or_else(|| id(tw.pointer("/user/id")))?;
    if tw.get("retweeted_status").is_some() || me == Some(user_id.as_str()) {
        return None;
    }
    if let Some(me) = me {
        let mentioned = tw
            .pointer("/entities/user_mentions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|u| id(u.get("id_str")).or_else(|| id(u.get("id"))).as_deref() == Some(me));
        let replied = id(tw.get("in_reply_to_user_id_str")).as_deref() == Some(me);
        if !mentioned && !replied {
            return None;
        }
    }
    let text = str_at(tw, "/extended_tweet/full_text")
        .or_else(|| tw.get("full_text").and_then(Value::as_str))
        .or_else(|| tw.get("text").and_then(Value::as_str))
        .unwrap_or("");
    let references = id(tw.get("in_reply_to_status_id_str"))
        .map(|r| format!("{TWEET_PREFIX}{r}"))
        .into_iter()
        .collect();
    Some(InboundMessage {
        channel: Channel::X,
        provider_id: format!("{TWEET_PREFIX}{tweet_id}"),
        sender: Sender {
            identity: Some(Identity::new(IdentityKind::XUser, &user_id).ok()?),
            display_name: nonempty(str_at(tw, "/user/name")).map(str::to_owned),
            contacts: Vec::new(),
        },
        text: unescape_html(text),
        attachments: Vec::new(),
        location: None,
        received_at: time(tw.get("timestamp_ms"))
            .or_else(|| time(tw.get("created_at")))
            .unwrap_or(now),
        thread: ThreadHints { references, ..ThreadHints::default() },
    })
}

/// X escapes `&`, `<` and `>` (and sometimes quotes) in message text as HTML entities.
pub fn unescape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let entity =
            rest.get(1..).and_then(|r| r.find(';')).filter(|&end| end <= 10).and_then(|end| {
                let name = &rest[1..=end];
                let ch = match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => name
                        .strip_prefix("#x")
                        .or_else(|| name.strip_prefix("#X"))
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                        .and_then(char::from_u32),
                };
                ch.map(|c| (c, end + 2))
            });
        match entity {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The longest `crc_token` the CRC answers (X sends UUIDs and short base64 strings).
pub const MAX_CRC_TOKEN: usize = 128;

/// Whether `token` looks like one of X's CRC tokens: 1 to [`MAX_CRC_TOKEN`] bytes of
/// A–Z, a–z, 0–9, `-`, `_`, `+`, `/` and `=` (UUIDs, base64, base64url). Such a token can
/// never be a JSON object, so the CRC can't sign a body the POST side would accept.
pub fn crc_token_ok(token: &str) -> bool {
    (1..=MAX_CRC_TOKEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'='))
}

/// The `/hooks/x` webhook.
pub struct XWebhook {
    consumer_secret: String,
}

impl XWebhook {
    pub fn new(consumer_secret: String) -> XWebhook {
        XWebhook { consumer_secret }
    }

    fn crc(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        let query = req.query.as_deref().unwrap_or("");
        let token = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "crc_token")
            .map(|(_, v)| v.into_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Rejection::Malformed("crc_token is missing".into()))?;
        if !crc_token_ok(&token) {
            return Err(Rejection::Malformed(format!(
                "crc_token must be 1-{MAX_CRC_TOKEN} characters of A-Z, a-z, 0-9, -, _, +, / and ="
            )));
        }
        if self.consumer_secret.is_empty() {
            return Err(Rejection::Forbidden("consumer secret"));
        }
        let response_token = sig::x_signature(self.consumer_secret.as_bytes(), token.as_bytes());
        let body = serde_json::json!({ "response_token": response_token }).to_string();
        Ok(WebhookReply::Respond {
            status: 200,
            body: ReplyBody { content_type: "application/json", bytes: Bytes::from(body) },
        })
    }
}

impl Webhook for XWebhook {
    fn path(&self) -> &'static str {
        "x"
    }

    fn channel(&self) -> Channel {
        Channel::X
    }

    fn handle(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection> {
        if req.method == http::Method::GET {
            return self.crc(req);
        }
        if req.method != http::Method::POST {
            return Err(Rejection::Malformed("use GET or POST".into()));
        }
        let header = req
            .headers
            .get("x-twitter-webhooks-signature")
            .and_then(|h| h.to_str().ok())
            .ok_or(Rejection::Forbidden("x-twitter-webhooks-signature"))?;
        if self.consumer_secret.is_empty()
            || !sig::x_signature_ok(self.consumer_secret.as_bytes(), &req.body, header)
        {
            return Err(Rejection::Forbidden("x-twitter-webhooks-signature"));
        }
        let parsed = parse(&req.body, Utc::now()).map_err(Rejection::from)?;
        Ok(WebhookReply::Store { messages: parsed.messages, body: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_are_unescaped_once() {
        assert_eq!(unescape_html("Hello World &amp; good wishes."), "Hello World & good wishes.");
        assert_eq!(unescape_html("a &lt;b&gt; &quot;c&quot; &#39;d&#x27;"), "a <b> \"c\" 'd'");
        assert_eq!(unescape_html("&amp;lt;"), "&lt;");
        assert_eq!(unescape_html("R&D & co; &unknown; &"), "R&D & co; &unknown; &");
        assert_eq!(unescape_html("&#128512; ok"), "😀 ok");
    }

    #[test]
    fn crc_tokens_are_shaped_like_xs() {
        for ok in [
            "9b4507b3-9040-4669-9ca3-6b94edb50553",
            "abc",
            "NjM3ODU3NTYxNjEzNzQ2MDQ4OA==",
            "a_b-c+d/e=",
            &"A".repeat(MAX_CRC_TOKEN),
        ] {
            assert!(crc_token_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "{}",
            r#"{"for_user_id":"1","direct_message_events":[]}"#,
            " abc",
            "a b",
            "a\nb",
            "a.b",
            "ä",
            &"A".repeat(MAX_CRC_TOKEN + 1),
        ] {
            assert!(!crc_token_ok(bad), "{bad}");
        }
    }
}
