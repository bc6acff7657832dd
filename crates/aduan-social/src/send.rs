//! Outbound messages as data: which URL, which token, which JSON body; how to read the
//! provider's answer; when Meta's 24-hour customer window forbids a free-form reply. The
//! connectors only carry these calls over HTTP.

use std::time::Duration;

use aduan_connector::{Secret, SendError};
use aduan_core::{Channel, Purpose, TicketCode, UndeliverableReason};
use aduan_store::OutboxItem;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::x::TWEET_PREFIX;

/// Meta lets a business answer freely for 24 hours after the person's last message.
pub const CUSTOMER_WINDOW_HOURS: i64 = 24;

/// Longest text of one message: Messenger and Instagram 2,000 characters, WhatsApp 4,096,
/// an X direct message 10,000.
pub fn max_chars(channel: Channel) -> usize {
    match channel {
        Channel::Messenger | Channel::Instagram => 2000,
        Channel::Whatsapp => 4096,
        _ => 10_000,
    }
}

/// One HTTP POST with a bearer token and a JSON body. `Debug` hides the token (a
/// [`Secret`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub url: String,
    pub bearer: Secret,
    pub body: Value,
}

fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// Messenger and Instagram Send API: `POST {graph}/me/messages` with the page token (the
/// page, or the Instagram account linked to it, is the one the token belongs to).
pub fn messenger_call(graph_url: &str, page_token: &str, recipient: &str, text: &str) -> Call {
    Call {
        url: join(graph_url, "me/messages"),
        bearer: page_token.into(),
        body: json!({
            "recipient": { "id": recipient },
            "messaging_type": "RESPONSE",
            "message": { "text": text },
        }),
    }
}

/// WhatsApp Cloud API: `POST {graph}/{phone_number_id}/messages`.
pub fn whatsapp_call(
    graph_url: &str,
    token: &str,
    phone_number_id: &str,
    to: &str,
    text: &str,
) -> Call {
    Call {
        url: join(graph_url, &format!("{phone_number_id}/messages")),
        bearer: token.into(),
        body: json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": { "preview_url": false, "body": text },
        }),
    }
}

/// X direct message: `POST {api}/2/dm_conversations/with/{participant}/messages`.
pub fn x_dm_call(api_url: &str, bearer: &str, participant: &str, text: &str) -> Call {
    Call {
        url: join(api_url, &format!("2/dm_conversations/with/{participant}/messages")),
        bearer: bearer.into(),
        body: json!({ "text": text }),
    }
}

/// X public reply: `POST {api}/2/tweets` in reply to the mention.
pub fn x_reply_call(api_url: &str, bearer: &str, tweet_id: &str, text: &str) -> Call {
    Call {
        url: join(api_url, "2/tweets"),
        bearer: bearer.into(),
        body: json!({ "text": text, "reply": { "in_reply_to_tweet_id": tweet_id } }),
    }
}

/// How an X answer goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XRoute {
    /// The receipt of a ticket opened by a public mention: a public reply that holds the
    /// tracking code and an invitation to write by DM, and nothing else.
    PublicReply { tweet_id: String, text: String },
    /// Everything else goes by direct message.
    Dm,
}

/// The public receipt: only the code and an invitation to continue in private.
pub fn public_ack_text(code: TicketCode) -> String {
    format!(
        "Terima kasih, aduan Anda tercatat dengan kode {code}. Mohon lanjutkan lewat pesan \
         langsung (DM) ke akun ini, dan jangan tulis data pribadi di balasan publik."
    )
}

pub fn x_route(item: &OutboxItem) -> XRoute {
    if item.purpose == Purpose::Ack
        && let Some(tweet_id) = item.thread_refs.first().and_then(|r| r.strip_prefix(TWEET_PREFIX))
    {
        return XRoute::PublicReply {
            tweet_id: tweet_id.to_owned(),
            text: public_ack_text(item.ticket),
        };
    }
    XRoute::Dm
}

/// Splits a long answer into pieces of at most `max` characters, at whitespace when it can.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > max {
        let cut = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let head = &rest[..cut];
        let at = head.rfind(char::is_whitespace).filter(|&i| i > cut / 2).unwrap_or(cut);
        out.push(rest[..at].trim_end().to_owned());
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// What came back from a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `Retry-After` (seconds), or X's `x-rate-limit-reset` turned into a wait.
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

fn short(s: &str) -> String {
    let s: String = s.chars().take(200).collect();
    s.replace(['\n', '\r'], " ")
}

/// Meta error codes worth another try: throttling (4, 17, 32, 613, 80007, 130429, 131048,
/// 131056, 133016) and temporary faults (1, 2, 131000, 131016, 133004).
const META_RETRY_CODES: [i64; 14] =
    [1, 2, 4, 17, 32, 613, 80007, 130429, 131000, 131016, 131048, 131056, 133004, 133016];

/// Reads a Graph API answer: the id of the sent message, or why it failed.
pub fn meta_answer(channel: Channel, answer: &Answer) -> Result<Option<String>, SendError> {
    let doc: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if (200..300).contains(&answer.status) {
        let id = doc
            .get("message_id")
            .and_then(Value::as_str)
            .or_else(|| doc.pointer("/messages/0/id").and_then(Value::as_str))
            .map(str::to_owned);
        return Ok(id);
    }
    let code = doc.pointer("/error/code").and_then(Value::as_i64);
    let subcode = doc.pointer("/error/error_subcode").and_then(Value::as_i64);
    let message = doc.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
    let reason = match code {
        Some(c) => format!("{channel} error {c}: {}", short(message)),
        None => format!("{channel} answered HTTP {}", answer.status),
    };
    // Not deliverable to this person now: a reason, not a blind failure (see below).
    if let Some(why) = meta_undeliverable(code, subcode) {
        return Err(SendError::Undeliverable(why));
    }
    let pair_limit = code == Some(131_056);
    if answer.status == 429
        || answer.status >= 500
        || code.is_some_and(|c| META_RETRY_CODES.contains(&c))
    {
        let after = answer.retry_after.or(pair_limit.then_some(Duration::from_secs(6)));
        return Err(SendError::Retry { reason, after });
    }
    Err(SendError::Permanent(reason))
}

/// Reads an X API v2 answer: the DM event id or the tweet id (prefixed `tweet:`).
pub fn x_answer(answer: &Answer, tweet: bool) -> Result<Option<String>, SendError> {
    let doc: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if (200..300).contains(&answer.status) {
        let id = if tweet {
            doc.pointer("/data/id").and_then(Value::as_str).map(|id| format!("{TWEET_PREFIX}{id}"))
        } else {
            doc.pointer("/data/dm_event_id").and_then(Value::as_str).map(str::to_owned)
        };
        return Ok(id);
    }
    let detail = doc
        .get("detail")
        .and_then(Value::as_str)
        .or_else(|| doc.pointer("/errors/0/message").and_then(Value::as_str))
        .or_else(|| doc.get("title").and_then(Value::as_str))
        .unwrap_or("");
    let reason = format!("x answered HTTP {}: {}", answer.status, short(detail));
    if answer.status == 429 || answer.status >= 500 {
        return Err(SendError::Retry { reason, after: answer.retry_after });
    }
    Err(SendError::Permanent(reason))
}

// --- windows: Meta's windows, the WhatsApp template, the HUMAN_AGENT tag ---

/// Messenger and Instagram let a person answer up to 7 days after the resident's last
/// message with the `HUMAN_AGENT` tag (the app needs Meta's Human Agent permission).
pub const HUMAN_AGENT_WINDOW_DAYS: i64 = 7;

/// The Graph API errors that mean "not deliverable to this person now": 131047 (WhatsApp
/// re-engagement: the 24-hour window closed) and 10/2018278 (Messenger, Instagram: outside
/// the allowed window); 131026 (WhatsApp: not on WhatsApp, or cannot receive it);
/// 551 and 200/1545041 (Messenger: the person is not available or does not receive our
/// messages: blocked); 100/2018001 (no matching user).
pub fn meta_undeliverable(code: Option<i64>, subcode: Option<i64>) -> Option<UndeliverableReason> {
    use UndeliverableReason as R;
    match (code, subcode) {
        (Some(131_047), _) | (_, Some(2_018_278)) => Some(R::WindowClosed),
        (Some(131_026), _) => Some(R::NotOnChannel),
        (Some(551), _) | (_, Some(1_545_041)) => Some(R::Blocked),
        (_, Some(2_018_001)) => Some(R::RecipientInvalid),
        _ => None,
    }
}

/// What a parameter of the WhatsApp template is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateParam {
    /// The tracking code (`ADU-7K3M9QXP`).
    Code,
    /// The ticket's status in a sentence (`ditindaklanjuti`).
    Status,
    /// The public tracking page (`{public_url}/lacak/{code}`).
    Link,
}

fn default_params() -> Vec<TemplateParam> {
    vec![TemplateParam::Code, TemplateParam::Status, TemplateParam::Link]
}

/// `[channels.meta] whatsapp_template`: the approved template (category *utility*) sent
/// instead of an answer outside WhatsApp's 24-hour window; its body parameters, in order,
/// are filled from `params`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappTemplate {
    pub name: String,
    /// The template's language code (`id`).
    pub language: String,
    #[serde(default = "default_params")]
    pub params: Vec<TemplateParam>,
}

/// The values of one answer's template parameters.
#[derive(Debug, Clone, Copy)]
pub struct TemplateValues<'a> {
    pub code: TicketCode,
    pub status: &'a str,
    pub link: &'a str,
}

/// WhatsApp Cloud API template message: `POST {graph}/{phone_number_id}/messages` with
/// `type: template` and one body component holding the parameters as text.
pub fn whatsapp_template_call(
    graph_url: &str,
    token: &str,
    phone_number_id: &str,
    to: &str,
    template: &WhatsappTemplate,
    values: TemplateValues<'_>,
) -> Call {
    let code = values.code.to_string();
    let parameters: Vec<Value> = template
        .params
        .iter()
        .map(|p| {
            let text = match p {
                TemplateParam::Code => code.as_str(),
                TemplateParam::Status => values.status,
                TemplateParam::Link => values.link,
            };
            json!({ "type": "text", "text": text })
        })
        .collect();
    let mut tpl = json!({ "name": template.name, "language": { "code": template.language } });
    if !parameters.is_empty() {
        tpl["components"] = json!([{ "type": "body", "parameters": parameters }]);
    }
    Call {
        url: join(graph_url, &format!("{phone_number_id}/messages")),
        bearer: token.to_owned().into(),
        body: json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": tpl,
        }),
    }
}

/// A person's answer on Messenger or Instagram 24 hours to 7 days after the resident's last
/// message: `messaging_type: MESSAGE_TAG`, `tag: HUMAN_AGENT`.
pub fn messenger_human_agent_call(
    graph_url: &str,
    page_token: &str,
    recipient: &str,
    text: &str,
) -> Call {
    let mut call = messenger_call(graph_url, page_token, recipient, text);
    call.body["messaging_type"] = json!("MESSAGE_TAG");
    call.body["tag"] = json!("HUMAN_AGENT");
    call
}

/// How a Meta answer may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaRoute {
    /// Inside the 24-hour window: free text.
    Free,
    /// Messenger/Instagram, a person's answer within 7 days: free text tagged `HUMAN_AGENT`.
    HumanAgent,
    /// WhatsApp outside the window: the approved template; the answer waits.
    Template,
}

/// Decides how an answer on `channel` may go, given when the resident last wrote there
/// (`None`: never). Outside every window it is `Undeliverable(WindowClosed)`: the worker
/// tries the resident's other channels. Only a person's answer (or the identity request,
/// which the resident must answer) is worth a template; the tag is for people's answers.
pub fn meta_route(
    channel: Channel,
    purpose: Purpose,
    last_inbound: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    human_agent_tag: bool,
    template: bool,
) -> Result<MetaRoute, SendError> {
    let age = last_inbound.map(|at| now - at);
    if age.is_some_and(|a| a <= chrono::Duration::hours(CUSTOMER_WINDOW_HOURS)) {
        return Ok(MetaRoute::Free);
    }
    let closed = Err(SendError::Undeliverable(UndeliverableReason::WindowClosed));
    match channel {
        Channel::Messenger | Channel::Instagram => {
            let tagged = human_agent_tag
                && purpose == Purpose::Reply
                && age.is_some_and(|a| a <= chrono::Duration::days(HUMAN_AGENT_WINDOW_DAYS));
            if tagged { Ok(MetaRoute::HumanAgent) } else { closed }
        }
        Channel::Whatsapp
            if template && matches!(purpose, Purpose::Reply | Purpose::IdentityRequest) =>
        {
            Ok(MetaRoute::Template)
        }
        _ => closed,
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, retry_after: None, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn graph_errors_that_mean_not_now_are_reasons() {
        use UndeliverableReason as R;
        let cases = [
            (
                Channel::Whatsapp,
                r#"{"error":{"code":131047,"message":"Re-engagement message"}}"#,
                R::WindowClosed,
            ),
            (
                Channel::Whatsapp,
                r#"{"error":{"code":131026,"message":"Message undeliverable"}}"#,
                R::NotOnChannel,
            ),
            (
                Channel::Messenger,
                r#"{"error":{"code":10,"error_subcode":2018278,"message":"(#10) This message is sent outside of allowed window."}}"#,
                R::WindowClosed,
            ),
            (
                Channel::Messenger,
                r#"{"error":{"code":551,"message":"This person isn't available right now."}}"#,
                R::Blocked,
            ),
            (
                Channel::Instagram,
                r#"{"error":{"code":200,"error_subcode":1545041,"message":"This person isn't receiving messages from you right now."}}"#,
                R::Blocked,
            ),
            (
                Channel::Messenger,
                r#"{"error":{"code":100,"error_subcode":2018001,"message":"No matching user found"}}"#,
                R::RecipientInvalid,
            ),
        ];
        for (channel, body, reason) in cases {
            assert_eq!(
                meta_answer(channel, &answer(400, body)),
                Err(SendError::Undeliverable(reason)),
                "{body}"
            );
        }
        // A bad parameter is still a plain permanent failure, throttling still a retry.
        assert!(matches!(
            meta_answer(
                Channel::Whatsapp,
                &answer(
                    400,
                    r#"{"error":{"code":132001,"message":"Template name does not exist"}}"#
                )
            ),
            Err(SendError::Permanent(_))
        ));
    }

    #[test]
    fn the_template_call_has_the_documented_shape() {
        let tpl = WhatsappTemplate {
            name: "status_aduan".into(),
            language: "id".into(),
            params: vec![TemplateParam::Code, TemplateParam::Status, TemplateParam::Link],
        };
        let values = TemplateValues {
            code: "ADU-7K3M9QXP".parse().unwrap(),
            status: "sudah ditindaklanjuti",
            link: "https://aduan.banyumaskab.go.id/lacak/ADU-7K3M9QXP",
        };
        let c = whatsapp_template_call(
            "http://g/v21.0",
            "tok",
            "106540352242922",
            "6281234567890",
            &tpl,
            values,
        );
        assert_eq!(c.url, "http://g/v21.0/106540352242922/messages");
        // protocols.md: {"messaging_product":"whatsapp","to":"628…","type":"template",
        // "template":{"name":"status_aduan","language":{"code":"id"},"components":[{"type":
        // "body","parameters":[{"type":"text","text":"ADU-7K3M9QXP"},…]}]}}
        assert_eq!(
            c.body,
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": "6281234567890", "type": "template",
                   "template": {"name": "status_aduan", "language": {"code": "id"},
                     "components": [{"type": "body", "parameters": [
                       {"type": "text", "text": "ADU-7K3M9QXP"},
                       {"type": "text", "text": "sudah ditindaklanjuti"},
                       {"type": "text", "text": "https://aduan.banyumaskab.go.id/lacak/ADU-7K3M9QXP"}]}]}})
        );
        let bare = WhatsappTemplate { params: vec![], ..tpl };
        let c = whatsapp_template_call("http://g", "t", "1", "62", &bare, values);
        assert!(c.body["template"].get("components").is_none());
        let parsed: WhatsappTemplate =
            serde_json::from_value(json!({"name": "status_aduan", "language": "id"})).unwrap();
        assert_eq!(parsed.params, default_params());
    }

    #[test]
    fn the_human_agent_tag_call_has_the_documented_shape() {
        let c =
            messenger_human_agent_call("http://g/v21.0", "tok", "PSID", "Jalan sudah ditambal.");
        assert_eq!(
            c.body,
            json!({"recipient": {"id": "PSID"}, "messaging_type": "MESSAGE_TAG",
                   "tag": "HUMAN_AGENT", "message": {"text": "Jalan sudah ditambal."}})
        );
    }

    #[test]
    fn windows_per_channel() {
        use MetaRoute::*;
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let ago = |h: i64| Some(now - chrono::Duration::hours(h));
        let closed = Err(SendError::Undeliverable(UndeliverableReason::WindowClosed));
        let r = |ch, purpose, last, tag, tpl| meta_route(ch, purpose, last, now, tag, tpl);
        for ch in [Channel::Whatsapp, Channel::Messenger, Channel::Instagram] {
            assert_eq!(r(ch, Purpose::Reply, ago(23), true, true), Ok(Free));
        }
        // WhatsApp after 30 hours: the template when there is one.
        assert_eq!(r(Channel::Whatsapp, Purpose::Reply, ago(30), false, true), Ok(Template));
        assert_eq!(r(Channel::Whatsapp, Purpose::Reply, None, false, true), Ok(Template));
        assert_eq!(r(Channel::Whatsapp, Purpose::Reply, ago(30), false, false), closed);
        assert_eq!(r(Channel::Whatsapp, Purpose::Ack, ago(30), false, true), closed);
        // Messenger and Instagram: the tag up to 7 days, for people's answers, when enabled.
        assert_eq!(r(Channel::Messenger, Purpose::Reply, ago(30), true, false), Ok(HumanAgent));
        assert_eq!(r(Channel::Instagram, Purpose::Reply, ago(24 * 7), true, false), Ok(HumanAgent));
        assert_eq!(r(Channel::Instagram, Purpose::Reply, ago(24 * 7 + 1), true, false), closed);
        assert_eq!(r(Channel::Messenger, Purpose::Reply, ago(30), false, false), closed);
        assert_eq!(r(Channel::Messenger, Purpose::Status, ago(30), true, false), closed);
        assert_eq!(r(Channel::Messenger, Purpose::Reply, None, true, false), closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aduan_core::{Identity, IdentityKind};

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, retry_after: None, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn requests_have_the_documented_shape() {
        let c = whatsapp_call("http://g/v21.0/", "tok", "106540352242922", "6281234567890", "Halo");
        assert_eq!(c.url, "http://g/v21.0/106540352242922/messages");
        assert_eq!(
            c.body,
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": "6281234567890", "type": "text",
                   "text": {"preview_url": false, "body": "Halo"}})
        );
        let c = messenger_call("http://g/v21.0", "tok", "1433960459967306", "Halo");
        assert_eq!(c.url, "http://g/v21.0/me/messages");
        assert_eq!(c.body["recipient"]["id"], "1433960459967306");
        assert_eq!(c.body["messaging_type"], "RESPONSE");
        let c = x_dm_call("https://api.x.com", "b", "272953809", "Halo");
        assert_eq!(c.url, "https://api.x.com/2/dm_conversations/with/272953809/messages");
        assert!(!format!("{c:?}").contains("\"b\""), "the token must not be printed");
    }

    #[test]
    fn graph_answers_are_classified() {
        assert_eq!(
            meta_answer(
                Channel::Whatsapp,
                &answer(
                    200,
                    r#"{"messaging_product":"whatsapp","contacts":[{"input":"1","wa_id":"1"}],"messages":[{"id":"wamid.X"}]}"#
                )
            ),
            Ok(Some("wamid.X".into()))
        );
        assert_eq!(
            meta_answer(
                Channel::Messenger,
                &answer(200, r#"{"recipient_id":"1","message_id":"m_1"}"#)
            ),
            Ok(Some("m_1".into()))
        );
        let window = meta_answer(
            Channel::Whatsapp,
            &answer(400, r#"{"error":{"code":131047,"message":"Re-engagement message"}}"#),
        );
        assert_eq!(window, Err(SendError::Undeliverable(UndeliverableReason::WindowClosed)));
        let pair = meta_answer(
            Channel::Whatsapp,
            &answer(400, r#"{"error":{"code":131056,"message":"pair rate limit"}}"#),
        );
        assert_eq!(
            pair,
            Err(SendError::Retry {
                reason: "whatsapp error 131056: pair rate limit".into(),
                after: Some(Duration::from_secs(6))
            })
        );
        assert!(matches!(
            meta_answer(Channel::Messenger, &answer(503, "")),
            Err(SendError::Retry { .. })
        ));
        assert!(matches!(
            meta_answer(Channel::Messenger, &answer(400, r#"{"error":{"code":100,"message":"(#100) bad recipient"}}"#)),
            Err(SendError::Permanent(r)) if r == "messenger error 100: (#100) bad recipient"
        ));
    }

    #[test]
    fn x_answers_are_classified() {
        assert_eq!(
            x_answer(
                &answer(201, r#"{"data":{"dm_conversation_id":"1-2","dm_event_id":"99"}}"#),
                false
            ),
            Ok(Some("99".into()))
        );
        assert_eq!(
            x_answer(&answer(201, r#"{"data":{"id":"7","text":"t"}}"#), true),
            Ok(Some("tweet:7".into()))
        );
        assert!(matches!(x_answer(&answer(429, "{}"), false), Err(SendError::Retry { .. })));
        assert!(matches!(
            x_answer(&answer(403, r#"{"detail":"You cannot send messages to this user."}"#), false),
            Err(SendError::Permanent(r)) if r.contains("cannot send")
        ));
    }

    #[test]
    fn long_texts_are_split_at_spaces() {
        assert_eq!(split_text("satu dua tiga", 8), ["satu dua", "tiga"]);
        assert_eq!(split_text("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(split_text("pendek", 2000), ["pendek"]);
        let long = "kata ".repeat(1000);
        let parts = split_text(&long, 2000);
        assert!(parts.iter().all(|p| p.chars().count() <= 2000));
        assert_eq!(parts.concat().replace(' ', ""), long.replace(' ', ""));
    }

    #[test]
    fn mentions_get_a_public_receipt_with_the_code_only() {
        let code: TicketCode = "ADU-7K3M9QXP".parse().unwrap();
        let mut item = OutboxItem {
            id: 1,
            ticket: code,
            channel: Channel::X,
            recipient: Identity::new(IdentityKind::XUser, "1247048165561270272").unwrap(),
            text: "Terima kasih, Tanu Learns …".into(),
            purpose: Purpose::Ack,
            attempts: 1,
            thread_refs: vec!["tweet:1332557345071644672".into()],
        };
        let XRoute::PublicReply { tweet_id, text } = x_route(&item) else {
            panic!("a mention's receipt is a public reply")
        };
        assert_eq!(tweet_id, "1332557345071644672");
        assert_eq!(text, public_ack_text(code));
        assert!(text.contains("ADU-7K3M9QXP") && text.contains("DM"));
        item.purpose = Purpose::Reply;
        assert_eq!(x_route(&item), XRoute::Dm, "answers by people never go public");
        item.purpose = Purpose::Ack;
        item.thread_refs = vec!["958501034212564996".into()];
        assert_eq!(x_route(&item), XRoute::Dm);
    }

    #[test]
    fn debug_of_configs_and_calls_never_shows_a_secret() {
        let call = messenger_call("https://graph.example", "page-token-zq", "123", "halo");
        let meta = crate::MetaConfig {
            app_secret: "app-secret-zq".into(),
            verify_token: "verify-token-zq".into(),
            page_access_token: Some("page-token-zq".into()),
            whatsapp_token: Some("wa-token-zq".into()),
            whatsapp_phone_number_id: Some("1055".into()),
            graph_api_url: "https://graph.example".into(),
            media_hosts: Vec::new(),
            whatsapp_template: None,
            human_agent_tag: false,
            public_url: "https://aduan.example".into(),
        };
        let x = crate::XConfig {
            consumer_secret: "consumer-secret-zq".into(),
            bearer_token: Some("bearer-zq".into()),
            api_url: "https://api.example".into(),
        };
        let shown = format!("{call:?} {meta:?} {x:#?}");
        assert!(!shown.contains("-zq"), "{shown}");
        assert!(shown.contains("graph.example") && shown.contains("1055"), "{shown}");
    }
}
