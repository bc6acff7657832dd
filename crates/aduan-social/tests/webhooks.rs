//! The pure webhooks against real payloads: every fixture, signed here, is accepted and
//! gives the messages of its golden file (`tests/golden/<set>/<fixture>.txt`; run with
//! `UPDATE_EXPECT=1` to rewrite them after a deliberate change). Forged, missing and
//! re-serialised signatures are refused; the GET handshakes answer as the providers expect.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aduan_connector::compliance::assert_webhook_contract;
use aduan_connector::{Rejection, Webhook, WebhookReply, WebhookRequest};
use aduan_core::{Channel, InboundMessage};
use aduan_social::meta::MetaWebhook;
use aduan_social::sig;
use aduan_social::x::XWebhook;
use aduan_store::DeliveryReceipt;
use bytes::Bytes;
use tokio::sync::mpsc;

const APP_SECRET: &str = "test_app_secret";
const VERIFY_TOKEN: &str = "verify-me";
const CONSUMER_SECRET: &str = "consumer_secret";

fn dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(rel)
}

fn fixtures(set: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(&format!("fixtures/{set}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn post(body: impl Into<Bytes>, headers: &[(&'static str, String)]) -> WebhookRequest {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, v.parse().unwrap());
    }
    WebhookRequest {
        method: http::Method::POST,
        query: None,
        headers: map,
        body: body.into(),
        url: "https://aduan.example.go.id/hooks/meta".into(),
    }
}

fn get(query: &str) -> WebhookRequest {
    WebhookRequest {
        method: http::Method::GET,
        query: Some(query.to_owned()),
        headers: http::HeaderMap::new(),
        body: Bytes::new(),
        url: format!("https://aduan.example.go.id/hooks/meta?{query}"),
    }
}

fn meta_signed(body: &[u8]) -> WebhookRequest {
    post(
        body.to_vec(),
        &[("x-hub-signature-256", sig::meta_signature(APP_SECRET.as_bytes(), body))],
    )
}

fn x_signed(body: &[u8]) -> WebhookRequest {
    post(
        body.to_vec(),
        &[("x-twitter-webhooks-signature", sig::x_signature(CONSUMER_SECRET.as_bytes(), body))],
    )
}

fn render(messages: &[InboundMessage], receipts: &[DeliveryReceipt]) -> String {
    let mut out = String::new();
    for m in messages {
        let _ = writeln!(out, "message {} {}", m.channel, m.provider_id);
        let who = m
            .sender
            .identity
            .as_ref()
            .map_or("-".to_owned(), |i| format!("{}:{}", i.kind, i.value));
        let _ = writeln!(out, "  from: {who} name={:?}", m.sender.display_name);
        let _ = writeln!(out, "  at: {}", m.received_at.to_rfc3339());
        let _ = writeln!(out, "  text: {:?}", m.text);
        for a in &m.attachments {
            let _ = writeln!(
                out,
                "  attachment: {} filename={:?} ref={:?} sha256={:?}",
                a.content_type, a.filename, a.provider_ref, a.sha256
            );
        }
        if let Some(l) = m.location {
            let _ = writeln!(out, "  location: {},{}", l.lat, l.lon);
        }
        if !m.thread.references.is_empty() {
            let _ = writeln!(out, "  references: {:?}", m.thread.references);
        }
        if m.thread.automated {
            let _ = writeln!(out, "  automated");
        }
    }
    for r in receipts {
        let _ = writeln!(
            out,
            "receipt {} {} {} at={} error={:?}",
            r.channel,
            r.provider_id,
            r.status.as_str(),
            r.at.to_rfc3339(),
            r.error
        );
    }
    if out.is_empty() {
        out.push_str("(nothing to store)\n");
    }
    out
}

/// Compares with the golden file, or writes it under `UPDATE_EXPECT=1`.
fn check_golden(set: &str, fixture: &Path, actual: &str, mismatches: &mut Vec<String>) {
    let name = fixture.file_stem().unwrap().to_string_lossy().into_owned();
    let path = dir(&format!("golden/{set}/{name}.txt"));
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        mismatches
            .push(format!("{}:\n--- expected\n{expected}--- actual\n{actual}", path.display()));
    }
}

/// Runs every fixture of a Meta set through the webhook, signed, and checks the goldens.
fn meta_set(set: &str) -> (usize, usize) {
    let (tx, mut rx) = mpsc::channel(1024);
    let hook = MetaWebhook::new(APP_SECRET.into(), VERIFY_TOKEN.into(), Some(tx));
    let mut mismatches = Vec::new();
    let (mut files, mut messages_total) = (0, 0);
    for fixture in fixtures(set) {
        let body = std::fs::read(&fixture).unwrap();
        let reply = hook.handle(&meta_signed(&body));
        let Ok(WebhookReply::Store { messages, body: None }) = reply else {
            panic!("{}: a signed genuine payload was not accepted: {reply:?}", fixture.display());
        };
        let mut receipts = Vec::new();
        while let Ok(r) = rx.try_recv() {
            receipts.push(r);
        }
        files += 1;
        messages_total += messages.len();
        check_golden(set, &fixture, &render(&messages, &receipts), &mut mismatches);
    }
    assert!(
        mismatches.is_empty(),
        "{} golden mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    (files, messages_total)
}

#[test]
fn every_whatsapp_fixture_is_accepted_and_matches_its_golden() {
    let (files, messages) = meta_set("whatsapp-cloud-webhooks-pywa");
    assert_eq!((files, messages), (74, 28));
}

#[test]
fn every_messenger_fixture_is_accepted_and_matches_its_golden() {
    let (files, messages) = meta_set("messenger-webhooks-botman");
    assert_eq!((files, messages), (22, 13));
}

#[test]
fn every_instagram_fixture_is_accepted_and_matches_its_golden() {
    let (files, messages) = meta_set("instagram-webhooks-chatwoot");
    assert_eq!((files, messages), (15, 12));
}

#[test]
fn every_x_fixture_is_accepted_and_matches_its_golden() {
    let hook = XWebhook::new(CONSUMER_SECRET.into());
    let mut mismatches = Vec::new();
    let mut count = 0;
    for fixture in fixtures("x") {
        let body = std::fs::read(&fixture).unwrap();
        let Ok(WebhookReply::Store { messages, .. }) = hook.handle(&x_signed(&body)) else {
            panic!("{}: not accepted", fixture.display());
        };
        count += messages.len();
        check_golden("x", &fixture, &render(&messages, &[]), &mut mismatches);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(count, 3, "two DMs from the resident and one mention");
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(dir(&format!("fixtures/{rel}"))).unwrap()
}

#[test]
fn statuses_echoes_and_read_events_create_no_message() {
    let hook = MetaWebhook::new(APP_SECRET.into(), VERIFY_TOKEN.into(), None);
    for rel in [
        "whatsapp-cloud-webhooks-pywa/message_status__sent.json",
        "whatsapp-cloud-webhooks-pywa/message_status__failed.json",
        "whatsapp-cloud-webhooks-pywa/outgoing_message__text.json",
        "messenger-webhooks-botman/FacebookDriver__it_matches_the_request__70f3c8fb29.json",
        "messenger-webhooks-botman/FacebookDriver__it_calls_delivery_event__d48249c84e.json",
        "messenger-webhooks-botman/FacebookDriver__it_calls_read_event__d1e3cd0367.json",
        "instagram-webhooks-chatwoot/instagram__instagram_story_mention_event_with_echo.json",
        "instagram-webhooks-chatwoot/instagram__messaging_seen_event.json",
    ] {
        let reply = hook.handle(&meta_signed(&fixture(rel))).unwrap();
        assert_eq!(reply, WebhookReply::Store { messages: vec![], body: None }, "{rel}");
    }
    let x = XWebhook::new(CONSUMER_SECRET.into());
    let reply = x.handle(&x_signed(&fixture("x/dm_echo.json"))).unwrap();
    assert_eq!(reply, WebhookReply::Store { messages: vec![], body: None });
}

#[test]
fn the_compliance_kit_passes_for_every_meta_product_and_x() {
    let meta = MetaWebhook::new(APP_SECRET.into(), VERIFY_TOKEN.into(), None);
    for rel in [
        "whatsapp-cloud-webhooks-pywa/message__text.json",
        "messenger-webhooks-botman/FacebookDriver__it_returns_the_message__b40c64587d.json",
        "instagram-webhooks-chatwoot/instagram__instagram_message_create_event.json",
    ] {
        let body = fixture(rel);
        let forged = post(
            body.clone(),
            &[("x-hub-signature-256", sig::meta_signature(b"someone else's secret", &body))],
        );
        assert_webhook_contract(&meta, &meta_signed(&body), &forged);
    }
    let x = XWebhook::new(CONSUMER_SECRET.into());
    let body = fixture("x/dm_hello.json");
    let forged =
        post(body.clone(), &[("x-twitter-webhooks-signature", sig::x_signature(b"nope", &body))]);
    assert_webhook_contract(&x, &x_signed(&body), &forged);
}

#[test]
fn forged_missing_and_reserialised_signatures_are_refused() {
    let meta = MetaWebhook::new(APP_SECRET.into(), VERIFY_TOKEN.into(), None);
    let body = fixture("whatsapp-cloud-webhooks-pywa/message__text.json");
    let genuine = sig::meta_signature(APP_SECRET.as_bytes(), &body);
    // The same document, re-serialised (compact): same meaning, other bytes.
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let compact = serde_json::to_vec(&value).unwrap();
    assert_ne!(compact, body);
    let cases = [
        ("missing", post(body.clone(), &[])),
        (
            "forged",
            post(body.clone(), &[("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))]),
        ),
        ("sha1 only", post(body.clone(), &[("x-hub-signature", "sha1=abc".into())])),
        ("re-serialised", post(compact, &[("x-hub-signature-256", genuine.clone())])),
        (
            "wrong secret",
            post(body.clone(), &[("x-hub-signature-256", sig::meta_signature(b"x", &body))]),
        ),
    ];
    for (what, req) in cases {
        assert_eq!(
            meta.handle(&req),
            Err(Rejection::Forbidden("X-Hub-Signature-256")),
            "{what} must answer 403"
        );
    }
    // A non-ASCII body signed over its escaped bytes (as Meta sends it) is accepted as is.
    let escaped = br#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"7"},"recipient":{"id":"1"},"timestamp":1700000000000,"message":{"mid":"m.1","text":"\u00e4\u00f6\u00e5 jalan"}}]}]}"#;
    let Ok(WebhookReply::Store { messages, .. }) = meta.handle(&meta_signed(escaped)) else {
        panic!("escaped body refused");
    };
    assert_eq!(messages[0].text, "äöå jalan");

    let x = XWebhook::new(CONSUMER_SECRET.into());
    let body = fixture("x/dm_hello.json");
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let compact = serde_json::to_vec(&value).unwrap();
    let genuine = sig::x_signature(CONSUMER_SECRET.as_bytes(), &body);
    for (what, req) in [
        ("missing", post(body.clone(), &[])),
        ("forged", post(body.clone(), &[("x-twitter-webhooks-signature", "sha256=AAAA".into())])),
        ("re-serialised", post(compact, &[("x-twitter-webhooks-signature", genuine)])),
    ] {
        assert_eq!(
            x.handle(&req),
            Err(Rejection::Forbidden("x-twitter-webhooks-signature")),
            "{what} must answer 403"
        );
    }
}

#[test]
fn signed_but_unexpected_bodies_are_refused_without_panic() {
    let meta = MetaWebhook::new(APP_SECRET.into(), VERIFY_TOKEN.into(), None);
    assert!(matches!(meta.handle(&meta_signed(b"{\"object\":")), Err(Rejection::Malformed(_))));
    assert!(matches!(meta.handle(&meta_signed(b"[1,2]")), Err(Rejection::Invalid(_))));
    assert!(matches!(
        meta.handle(&meta_signed(b"{\"object\":\"page\"}")),
        Err(Rejection::Invalid(_))
    ));
    // Unknown objects and odd events are acknowledged and dropped, so Meta stops retrying.
    let odd = br#"{"object":"page","entry":[{"messaging":[{"sender":{"id":""},"message":{"mid":"x"}},{"sender":{"id":"1"},"message":{"text":"no mid"}},7,null]},"nonsense"]}"#;
    assert_eq!(
        meta.handle(&meta_signed(odd)),
        Ok(WebhookReply::Store { messages: vec![], body: None })
    );
    assert_eq!(
        meta.handle(&meta_signed(br#"{"object":"user","entry":[{"changes":[]}]}"#)),
        Ok(WebhookReply::Store { messages: vec![], body: None })
    );
}

#[test]
fn empty_secrets_accept_nothing() {
    let meta = MetaWebhook::new(String::new(), String::new(), None);
    let body = fixture("whatsapp-cloud-webhooks-pywa/message__text.json");
    let signed = post(body.clone(), &[("x-hub-signature-256", sig::meta_signature(b"", &body))]);
    assert_eq!(meta.handle(&signed), Err(Rejection::Forbidden("X-Hub-Signature-256")));
    assert_eq!(
        meta.handle(&get("hub.mode=subscribe&hub.challenge=1&hub.verify_token=")),
        Err(Rejection::Forbidden("hub.verify_token"))
    );
    let x = XWebhook::new(String::new());
    let body = fixture("x/dm_hello.json");
    let signed =
        post(body.clone(), &[("x-twitter-webhooks-signature", sig::x_signature(b"", &body))]);
    assert_eq!(x.handle(&signed), Err(Rejection::Forbidden("x-twitter-webhooks-signature")));
}

#[test]
fn meta_verification_handshake() {
    let meta = MetaWebhook::new(APP_SECRET.into(), VERIFY_TOKEN.into(), None);
    let ok =
        meta.handle(&get("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me"));
    let Ok(WebhookReply::Respond { status: 200, body }) = ok else { panic!("{ok:?}") };
    assert_eq!(body.bytes, Bytes::from_static(b"1158201444"));
    assert_eq!(body.content_type, "text/plain");
    // Percent-encoded values are decoded before comparing.
    let ok =
        meta.handle(&get("hub.mode=subscribe&hub.challenge=a%20b&hub.verify_token=verify%2Dme"));
    assert!(matches!(ok, Ok(WebhookReply::Respond { status: 200, body }) if body.bytes == "a b"));
    assert_eq!(
        meta.handle(&get("hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong")),
        Err(Rejection::Forbidden("hub.verify_token"))
    );
    assert_eq!(
        meta.handle(&get("hub.mode=subscribe&hub.challenge=1")),
        Err(Rejection::Forbidden("hub.verify_token"))
    );
    assert!(matches!(
        meta.handle(&get("hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=verify-me")),
        Err(Rejection::Invalid(_))
    ));
}

#[test]
fn x_crc_handshake() {
    // X DevRel's sample secret and token; the expected token computed independently.
    let x = XWebhook::new("z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu".into());
    let reply = x.handle(&get("crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553")).unwrap();
    let WebhookReply::Respond { status: 200, body } = reply else { panic!("{reply:?}") };
    assert_eq!(body.content_type, "application/json");
    let json: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"response_token": "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="})
    );
    assert!(matches!(x.handle(&get("other=1")), Err(Rejection::Malformed(_))));
}

#[test]
fn a_whatsapp_batch_keeps_every_message_in_order() {
    // Two entries, three messages, one status: one reply with all three messages.
    let text =
        String::from_utf8(fixture("whatsapp-cloud-webhooks-pywa/message__text.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = doc["entry"][0].clone();
    let mut second = entry.clone();
    second["changes"][0]["value"]["messages"][0]["id"] = "wamid.two".into();
    let mut third = entry["changes"][0]["value"]["messages"][0].clone();
    third["id"] = "wamid.three".into();
    second["changes"][0]["value"]["messages"].as_array_mut().unwrap().push(third);
    second["changes"][0]["value"]["statuses"] = serde_json::json!([{"id": "wamid.out", "status": "read", "timestamp": "1698266945", "recipient_id": "972987654321"}]);
    doc["entry"] = serde_json::json!([entry, second]);
    let body = serde_json::to_vec(&doc).unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let meta = MetaWebhook::new(APP_SECRET.into(), VERIFY_TOKEN.into(), Some(tx));
    let Ok(WebhookReply::Store { messages, .. }) = meta.handle(&meta_signed(&body)) else {
        panic!()
    };
    let ids: Vec<&str> = messages.iter().map(|m| m.provider_id.as_str()).collect();
    assert_eq!(ids, ["wamid.xyzxyz", "wamid.two", "wamid.three"]);
    assert!(messages.iter().all(|m| m.channel == Channel::Whatsapp));
    let r = rx.try_recv().unwrap();
    assert_eq!((r.provider_id.as_str(), r.status.as_str()), ("wamid.out", "read"));
}
