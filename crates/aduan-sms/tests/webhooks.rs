//! The three webhooks as pure functions: Twilio's signature vectors and the real form
//! fields of `tests/fixtures/twilio`, the Android gateway's signing and clock checks,
//! Kannel's secret, and the compliance kit for each.

use aduan_connector::compliance::assert_webhook_contract;
use aduan_connector::{Rejection, Webhook, WebhookReply, WebhookRequest};
use aduan_sms::android::{self, AndroidWebhook};
use aduan_sms::kannel::KannelWebhook;
use aduan_sms::twilio::{self, TwilioWebhook};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/twilio");

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn form(params: &[(String, String)]) -> String {
    params.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn request(method: Method, url: &str, headers: &[(&str, &str)], body: &[u8]) -> WebhookRequest {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    WebhookRequest {
        method,
        query: url.split_once('?').map(|(_, q)| q.to_owned()),
        headers: map,
        body: Bytes::copy_from_slice(body),
        url: url.to_owned(),
    }
}

fn messages(reply: Result<WebhookReply, Rejection>) -> Vec<aduan_core::InboundMessage> {
    match reply {
        Ok(WebhookReply::Store { messages, .. }) => messages,
        other => panic!("not stored: {other:?}"),
    }
}

// ---- Twilio ----

fn vectors() -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/signature_vectors.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

fn params_of(case: &Value) -> Vec<(String, String)> {
    case["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn twilio_signature_vectors() {
    let cases = vectors();
    assert_eq!(cases.len(), 6);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let token = case["auth_token"].as_str().unwrap();
        let url = case["url"].as_str().unwrap();
        let expected = case["expected_signature"].as_str().unwrap();
        let params = params_of(case);
        assert_eq!(twilio::signature(token, url, &params), expected, "{name}");
        assert!(twilio::signature_ok(token, url, &params, expected), "{name}");
        assert!(!twilio::signature_ok("54321", url, &params, expected), "{name}: other token");

        // Through the webhook: the same request as Twilio would send it.
        let hook = TwilioWebhook::new(token, None);
        let body = match case.get("raw_body") {
            Some(raw) => raw.as_str().unwrap().as_bytes().to_vec(),
            None => form(&params).into_bytes(),
        };
        let req = request(Method::POST, url, &[("x-twilio-signature", expected)], &body);
        match hook.handle(&req) {
            // Voice-call parameters and a JSON body are genuine but no inbound SMS.
            Err(Rejection::Invalid(_)) => {}
            other => panic!("{name}: a genuine request was answered {other:?}"),
        }
        let forged = request(
            Method::POST,
            url,
            &[("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B9=")],
            &body,
        );
        assert_eq!(hook.handle(&forged), Err(Rejection::Forbidden("X-Twilio-Signature")), "{name}");
        if case.get("raw_body").is_some() {
            let mut other = body.clone();
            other.push(b' ');
            let tampered = request(Method::POST, url, &[("x-twilio-signature", expected)], &other);
            assert_eq!(hook.handle(&tampered), Err(Rejection::Forbidden("bodySHA256")), "{name}");
        }
    }
    // SDKs accept the URL with or without the default port, whichever Twilio signed.
    let basic = &cases[0];
    let params = params_of(basic);
    let with_443 = cases.iter().find(|c| c["name"] == "https_with_port_443_added").unwrap();
    assert!(twilio::signature_ok(
        "12345",
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        &params,
        with_443["expected_signature"].as_str().unwrap()
    ));
    let with_80 = cases.iter().find(|c| c["name"] == "http_with_port_80_added").unwrap();
    assert!(twilio::signature_ok(
        "12345",
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        &params,
        with_80["expected_signature"].as_str().unwrap()
    ));
    assert!(twilio::signature_ok(
        "12345",
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        &params,
        basic["expected_signature"].as_str().unwrap()
    ));
}

const PUBLIC: &str = "https://aduan.example.go.id/hooks/twilio";

fn twilio_request(params: &[(String, String)], token: &str) -> WebhookRequest {
    let sig = twilio::signature(token, PUBLIC, params);
    request(
        Method::POST,
        PUBLIC,
        &[("x-twilio-signature", &sig), ("content-type", "application/x-www-form-urlencoded")],
        form(params).as_bytes(),
    )
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The documented inbound example (protocols.md §4a) with an Indonesian sender.
fn inbound_example() -> Vec<(String, String)> {
    pairs(&[
        ("ToCountry", "US"),
        ("ToState", "FL"),
        ("SmsMessageSid", "SM00000000000000000000000000000001"),
        ("NumMedia", "0"),
        ("ToCity", "FORT MEADE"),
        ("FromZip", ""),
        ("SmsSid", "SM00000000000000000000000000000001"),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        ("Body", "Jalan berlubang di Desa Karangklesem, mohon segera diperbaiki!"),
        ("FromCountry", "ID"),
        ("To", "+12345678901"),
        ("MessagingServiceSid", "MG00000000000000000000000000000001"),
        ("ToZip", "33841"),
        ("NumSegments", "1"),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("From", "+6281234567890"),
        ("ApiVersion", "2010-04-01"),
    ])
}

#[test]
fn twilio_webhook_contract() {
    let hook = TwilioWebhook::new("tok", Some("AC00000000000000000000000000000001".into()));
    let params = inbound_example();
    let genuine = twilio_request(&params, "tok");
    let forged = twilio_request(&params, "not-the-token");
    assert_webhook_contract(&hook, &genuine, &forged);

    let reply = hook.handle(&genuine).unwrap();
    let WebhookReply::Store { messages, body } = reply else { panic!() };
    assert_eq!(body.unwrap().content_type, "text/xml");
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.provider_id, "twilio:SM00000000000000000000000000000001");
    assert_eq!(m.sender.identity.as_ref().unwrap().value, "+6281234567890");
    assert_eq!(m.text, "Jalan berlubang di Desa Karangklesem, mohon segera diperbaiki!");

    // No header: 401; a parameter added after signing: 403; another account: 403.
    let mut unsigned = genuine.clone();
    unsigned.headers.remove("x-twilio-signature");
    assert_eq!(hook.handle(&unsigned), Err(Rejection::Unauthenticated("X-Twilio-Signature")));
    let mut extra = genuine.clone();
    extra.body = Bytes::from(format!("{}&Body=palsu", form(&params)));
    assert_eq!(hook.handle(&extra), Err(Rejection::Forbidden("X-Twilio-Signature")));
    let mut other = params.clone();
    other.iter_mut().find(|(k, _)| k == "AccountSid").unwrap().1 = "AC9".into();
    assert_eq!(
        hook.handle(&twilio_request(&other, "tok")),
        Err(Rejection::Forbidden("AccountSid"))
    );
    // Signed for another URL (path or host): 403.
    let mut moved = genuine.clone();
    moved.url = "https://evil.example/hooks/twilio".into();
    assert_eq!(hook.handle(&moved), Err(Rejection::Forbidden("X-Twilio-Signature")));
}

#[test]
fn twilio_mms_and_status_callbacks() {
    let hook = TwilioWebhook::new("tok", None);
    let mut mms = inbound_example();
    mms.retain(|(k, _)| k != "NumMedia");
    mms.extend(pairs(&[
        ("NumMedia", "2"),
        ("MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"),
        ("MediaContentType0", "image/jpeg"),
        ("MediaUrl1", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2"),
        ("MediaContentType1", "video/mp4"),
    ]));
    let m = messages(hook.handle(&twilio_request(&mms, "tok")));
    let a = &m[0].attachments;
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].content_type, "image/jpeg");
    assert!(a[0].sha256.is_empty(), "fetched later by the connector");
    assert!(a[1].provider_ref.as_deref().unwrap().ends_with("/Media/ME2"));

    let status = pairs(&[
        ("MessageSid", "SM5"),
        ("MessageStatus", "delivered"),
        ("AccountSid", "AC1"),
        ("From", "+15005550006"),
    ]);
    assert!(messages(hook.handle(&twilio_request(&status, "tok"))).is_empty());

    // NUL bytes (tw_L28's case, with a valid number) are dropped from the text.
    let mut nul = inbound_example();
    nul.iter_mut().find(|(k, _)| k == "Body").unwrap().1 = "remove\0 null bytes\0".into();
    assert_eq!(messages(hook.handle(&twilio_request(&nul, "tok")))[0].text, "remove null bytes");
}

/// Every real parameter set of the Chatwoot specs, signed and handled: what it becomes.
#[test]
fn twilio_fixture_forms_parse() {
    let hook = TwilioWebhook::new("tok", None);
    let dir = format!("{FIXTURES}/chatwoot_params");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}")).unwrap())
                .unwrap();
        let params: Vec<(String, String)> = doc
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            // The specs write NUL as the Ruby escape "\u0000"; Twilio sends the byte.
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().replace("\\u0000", "\0")))
            .collect();
        let line = match hook.handle(&twilio_request(&params, "tok")) {
            Ok(WebhookReply::Store { messages, .. }) if messages.is_empty() => {
                "nothing to store".into()
            }
            Ok(WebhookReply::Store { messages, .. }) => {
                let m = &messages[0];
                format!(
                    "{} from {} name {:?}: {:?}",
                    m.provider_id,
                    m.sender.identity.as_ref().unwrap().value,
                    m.sender.display_name,
                    m.text
                )
            }
            Ok(other) => format!("{other:?}"),
            Err(e) => format!("refused: {e}"),
        };
        out.push_str(&format!("{name}: {line}\n"));
    }
    expect_test::expect_file!["golden/twilio_fixtures.txt"].assert_eq(&out);
}

// ---- SMS Gateway for Android ----

const KEY: &str = "android-signing-key";

fn android_body(id: &str) -> Vec<u8> {
    serde_json::json!({
        "deviceId": "ffffffffceb0b1db0000018e937c815b",
        "event": "sms:received",
        "id": id,
        "payload": {
            "messageId": "abc123",
            "message": "Sampah menumpuk di pasar Wage, sudah tiga hari tidak diangkut",
            "phoneNumber": "081234567890",
            "simNumber": 1,
            "receivedAt": "2024-06-22T15:46:11.000+07:00"
        },
        "webhookId": "wh-1"
    })
    .to_string()
    .into_bytes()
}

fn android_request(body: &[u8], key: &str, ts: i64) -> WebhookRequest {
    let ts = ts.to_string();
    let sig = android::signature(key, body, &ts);
    request(
        Method::POST,
        "https://aduan.example.go.id/hooks/android-sms",
        &[("x-signature", &sig), ("x-timestamp", &ts), ("content-type", "application/json")],
        body,
    )
}

#[test]
fn android_signed_payload_is_accepted() {
    let hook = AndroidWebhook::new(KEY);
    let now = chrono::Utc::now().timestamp();
    let body = android_body("Ey6ECgOkVVFjz3CL48B8C");
    let genuine = android_request(&body, KEY, now);
    assert_webhook_contract(&hook, &genuine, &android_request(&body, "wrong-key", now));
    let m = messages(hook.handle(&genuine));
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].provider_id, "android:Ey6ECgOkVVFjz3CL48B8C");
    assert_eq!(m[0].sender.identity.as_ref().unwrap().value, "+6281234567890");
    assert_eq!(m[0].received_at.to_rfc3339(), "2024-06-22T08:46:11+00:00");
    // Other events are acknowledged and store nothing.
    let ping = br#"{"deviceId":"d","event":"system:ping","id":"p1","payload":{}}"#;
    assert!(messages(hook.handle(&android_request(ping, KEY, now))).is_empty());
}

#[test]
fn android_stale_and_badly_signed_requests_are_refused() {
    let hook = AndroidWebhook::new(KEY);
    let now = chrono::Utc::now().timestamp();
    let body = android_body("ev-2");
    // Correctly signed, but six minutes old (or ahead): a replay.
    assert_eq!(
        hook.handle(&android_request(&body, KEY, now - 360)),
        Err(Rejection::Forbidden("X-Timestamp"))
    );
    assert_eq!(
        hook.handle(&android_request(&body, KEY, now + 360)),
        Err(Rejection::Forbidden("X-Timestamp"))
    );
    assert!(hook.handle(&android_request(&body, KEY, now - 290)).is_ok());
    // A signature over another timestamp than the header's.
    let mut moved = android_request(&body, KEY, now);
    moved.headers.insert("x-timestamp", HeaderValue::from_str(&(now - 1).to_string()).unwrap());
    assert_eq!(hook.handle(&moved), Err(Rejection::Forbidden("X-Signature")));
    let mut bad = android_request(&body, KEY, now);
    bad.headers.insert("x-signature", HeaderValue::from_static("zz"));
    assert_eq!(hook.handle(&bad), Err(Rejection::Forbidden("X-Signature")));
    let mut none = android_request(&body, KEY, now);
    none.headers.remove("x-signature");
    assert_eq!(hook.handle(&none), Err(Rejection::Unauthenticated("x-signature")));
}

// ---- Kannel ----

fn kannel_get(query: &str) -> WebhookRequest {
    request(Method::GET, &format!("https://aduan.example.go.id/hooks/kannel?{query}"), &[], b"")
}

const KANNEL_QUERY: &str = "secret=s3cret&from=%2B6281234567890&to=1708&text=Lampu+jalan++mati+di+Desa+Kedungrandu&charset=UTF-8&coding=0&ts=1795973927&id=cacb6258-0204-4f5e-bbae-e549bda9e319&smsc=fake";

#[test]
fn kannel_get_url_contract() {
    let hook = KannelWebhook::new("s3cret");
    let genuine = kannel_get(KANNEL_QUERY);
    let forged = kannel_get(&KANNEL_QUERY.replace("secret=s3cret", "secret=guess"));
    assert_webhook_contract(&hook, &genuine, &forged);
    let m = messages(hook.handle(&genuine));
    assert_eq!(m[0].provider_id, "kannel:cacb6258-0204-4f5e-bbae-e549bda9e319");
    assert_eq!(m[0].text, "Lampu jalan  mati di Desa Kedungrandu", "%b keeps the text as sent");
    assert_eq!(m[0].received_at.timestamp(), 1795973927);
    assert_eq!(
        hook.handle(&kannel_get(&KANNEL_QUERY.replace("secret=s3cret&", ""))),
        Err(Rejection::Unauthenticated("secret"))
    );
    // The number forms Kannel passes on (national, international prefix) are one identity.
    for from in ["081234567890", "006281234567890", "6281234567890"] {
        let q = KANNEL_QUERY.replace("%2B6281234567890", from);
        let m = messages(hook.handle(&kannel_get(&q)));
        assert_eq!(m[0].sender.identity.as_ref().unwrap().value, "+6281234567890", "{from}");
    }
    // UCS-2 as Kannel passes it without mo-recode.
    let q = KANNEL_QUERY
        .replace("text=Lampu+jalan++mati+di+Desa+Kedungrandu", "text=%A8%01%A8%02")
        .replace("charset=UTF-8&coding=0", "charset=UTF-16BE&coding=2");
    assert_eq!(messages(hook.handle(&kannel_get(&q)))[0].text, "\u{a801}\u{a802}");
    // Without %I nothing can be deduplicated: refused.
    let q = KANNEL_QUERY.replace("&id=cacb6258-0204-4f5e-bbae-e549bda9e319", "");
    assert!(matches!(hook.handle(&kannel_get(&q)), Err(Rejection::Invalid(_))));
}

#[test]
fn kannel_post_url_takes_the_text_from_the_body() {
    let hook = KannelWebhook::new("s3cret");
    let query =
        "secret=s3cret&from=%2B6281234567890&id=0b0e3c9e-1111-2222-3333-444455556666&ts=1795973927";
    let body = "Banjir setinggi lutut di Jalan Gatot Subroto".as_bytes();
    let len = body.len().to_string();
    let url = format!("https://aduan.example.go.id/hooks/kannel?{query}");
    let genuine = request(
        Method::POST,
        &url,
        &[("content-type", "text/plain; charset=UTF-8"), ("content-length", &len)],
        body,
    );
    let forged = request(
        Method::POST,
        &url.replace("s3cret", "nope"),
        &[("content-type", "text/plain; charset=UTF-8"), ("content-length", &len)],
        body,
    );
    assert_webhook_contract(&hook, &genuine, &forged);
    assert_eq!(
        messages(hook.handle(&genuine))[0].text,
        "Banjir setinggi lutut di Jalan Gatot Subroto"
    );
}

/// Issue 14.5: a gateway configured with an empty secret must not accept requests signed
/// with (or carrying) the empty secret. Configuration refuses such keys; the webhooks
/// refuse them too.
#[test]
fn an_empty_configured_secret_authenticates_nobody() {
    let kannel = KannelWebhook::new("");
    let forged = kannel_get(&KANNEL_QUERY.replace("secret=s3cret", "secret="));
    assert_eq!(kannel.handle(&forged), Err(Rejection::Forbidden("secret")));

    let twilio = TwilioWebhook::new("", None);
    let forged = twilio_request(&inbound_example(), "");
    assert_eq!(twilio.handle(&forged), Err(Rejection::Forbidden("X-Twilio-Signature")));

    let android = AndroidWebhook::new("");
    let now = chrono::Utc::now().timestamp();
    let forged = android_request(&android_body("ev-empty"), "", now);
    assert_eq!(android.handle(&forged), Err(Rejection::Forbidden("X-Signature")));
}
