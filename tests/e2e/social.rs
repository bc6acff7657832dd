//! Meta and X webhooks on the real daemon, configured through the environment as an
//! operator would: handshakes, signed deliveries stored once, forged ones refused and counted.

use aduan_social::sig;
use aduan_tests::{Binary, Config, Daemon};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{client, get, metric, send};

#[tokio::test]
async fn meta_and_x_webhooks_on_the_real_daemon() {
    let Some(bin) = Binary::locate() else { return };
    let config = Config::sqlite()
        .env("ADUAN__CHANNELS__META__ENABLED", "true")
        .env("ADUAN__CHANNELS__META__APP_SECRET", "app-s3cret-0123456789")
        .env("ADUAN__CHANNELS__META__VERIFY_TOKEN", "verify-me-0123456789")
        .env("ADUAN__CHANNELS__X__ENABLED", "true")
        .env("ADUAN__CHANNELS__X__CONSUMER_SECRET", "consumer-s3cret-0123456789");
    let daemon = Daemon::start(&bin, config).await;
    let http = client();

    let hello = get(
        &http,
        &daemon,
        "/hooks/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me-0123456789",
        None,
    )
    .await;
    assert_eq!((hello.status, hello.text.as_str()), (StatusCode::OK, "1158201444"));
    let wrong = get(
        &http,
        &daemon,
        "/hooks/meta?hub.mode=subscribe&hub.challenge=1&hub.verify_token=x",
        None,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "6281100000000", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Siti"}, "wa_id": "6281234567890"}],
            "messages": [{"from": "6281234567890", "id": "wamid.E2E1",
                          "timestamp": chrono_now(), "type": "text",
                          "text": {"body": "Jalan berlubang di Desa Karangklesem"}}]}}]}]
    }))
    .unwrap();
    let signature = sig::meta_signature(b"app-s3cret-0123456789", &body);
    for _ in 0..2 {
        let r = send(
            http.post(daemon.url("/hooks/meta"))
                .header("content-type", "application/json")
                .header("x-hub-signature-256", &signature)
                .body(body.clone()),
        )
        .await
        .unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let forged = send(
        http.post(daemon.url("/hooks/meta"))
            .header("x-hub-signature-256", sig::meta_signature(b"guess", &body))
            .body(body.clone()),
    )
    .await
    .unwrap();
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let crc = get(&http, &daemon, "/hooks/x?crc_token=abc", None).await;
    assert_eq!(crc.status, StatusCode::OK);
    assert_eq!(crc.body["response_token"], sig::x_signature(b"consumer-s3cret-0123456789", b"abc"));

    let admin = daemon.apikey("ops", "admin");
    let list = get(&http, &daemon, "/api/v1/tickets?channel=whatsapp", Some(&admin)).await;
    let items = list.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{}", list.text);
    let metrics = get(&http, &daemon, "/metrics", None).await.text;
    assert_eq!(metric(&metrics, "aduan_messages_received_total{channel=\"whatsapp\"}"), Some(1.0));
    assert_eq!(
        metric(
            &metrics,
            "aduan_webhook_rejected_total{channel=\"messenger\",reason=\"forbidden\"}"
        ),
        Some(2.0),
        "the wrong verify token and the forged POST"
    );
}

fn chrono_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default()
}
