//! Abuse scenarios: tickets.
//!
//! - A ticket code is not a key (issue 14.2): a second intake-API sender naming the first
//!   one's ticket gets their own, and their "answer" to the identity request changes nothing.
//! - SMS pumping (issue 14.7): Open311 refuses a foreign contact phone, and automatic
//!   messages over the per-recipient cap are kept, not sent, and counted in `/metrics`.
//! - A NUL in the text or the sender's name (issue 21.1) is cleaned, on PostgreSQL too: 201,
//!   never 503.

use std::time::Duration;

use aduan_tests::{Binary, Config, Daemon, PgDatabase};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{client, get, metric, post_message, send, ticket_until};

const WAIT: Duration = Duration::from_secs(15);

fn inbound(t: &Value) -> usize {
    t["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "in").count()
}

#[tokio::test]
async fn a_strangers_message_naming_a_ticket_does_not_join_it() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(&bin, Config::sqlite().env("ADUAN__ROUTING__POLL_MS", "100")).await;
    let http = client();
    let admin = daemon.apikey("app", "admin");
    let posted = post_message(
        &http,
        &daemon,
        &admin,
        &json!({
            "external_id": "r-1",
            "sender": {"id": "u-1", "email": "warga@example.id"},
            "text": "Sampah numpuk di TPS desa karangklesem kec purwokerto selatan udh seminggu",
        }),
    )
    .await
    .unwrap();
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    let code = posted.body["ticket"].as_str().unwrap().to_owned();
    ticket_until(&http, &daemon, &admin, &code, "the ticket", WAIT, |t| {
        t["status"] == "awaiting_identity"
    })
    .await;

    // Another app user answers the identity request in the reporter's place.
    let forged = post_message(
        &http,
        &daemon,
        &admin,
        &json!({
            "external_id": "s-1",
            "ticket": code,
            "sender": {"id": "u-666", "phone": "081299999999"},
            "text": "Nama: Penyusup, alamat Jl. Palsu 1 Desa Karangklesem",
        }),
    )
    .await
    .unwrap();
    assert_eq!(forged.status, StatusCode::CREATED, "{}", forged.text);
    assert_ne!(forged.body["ticket"], code.as_str(), "a stranger joined by quoting the code");
    // A stranger's "CEK" is answered, and does not join either.
    let asked = post_message(
        &http,
        &daemon,
        &admin,
        &json!({
            "external_id": "s-2",
            "sender": {"id": "u-667"},
            "text": format!("CEK {code}"),
        }),
    )
    .await
    .unwrap();
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.text);
    assert_ne!(asked.body["ticket"], code.as_str());

    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = get(&http, &daemon, &format!("/api/v1/tickets/{code}"), Some(&admin)).await.body;
    assert_eq!(t["status"], "awaiting_identity", "{t}");
    assert_eq!(inbound(&t), 1, "{t}");
    assert!(t["reporter"]["name"].is_null(), "the stranger named the reporter: {t}");
    assert!(!t.to_string().contains("Penyusup"), "{t}");
}

#[tokio::test]
async fn open311_refuses_a_foreign_phone_and_automatic_messages_are_capped() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(
        &bin,
        Config::sqlite()
            .env("ADUAN__ROUTING__POLL_MS", "100")
            .env("ADUAN__INTAKE__AUTO_MESSAGES_PER_RECIPIENT_PER_DAY", "1"),
    )
    .await;
    let http = client();
    let admin = daemon.apikey("app", "admin");
    let intake = daemon.apikey("kiosk", "intake");

    let form = |phone: &str| {
        let enc = |v: &str| v.replace('+', "%2B").replace(' ', "+");
        [
            ("api_key", intake.as_str()),
            ("service_code", "jalan"),
            ("lat", "-7.4246"),
            ("long", "109.2396"),
            ("description", "Jalan berlubang di depan pasar"),
            ("phone", phone),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
    };
    let post311 = |body: String| {
        http.post(daemon.url("/open311/v2/requests.json"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let r = send(post311(form("+447700900123"))).await.unwrap();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // Two unnamed reports with one phone: the router asks both for a name by SMS; the
    // second request is over the cap of 1 a day and is kept on its ticket only.
    let mut codes = Vec::new();
    for i in 0..2 {
        let r = post_message(
            &http,
            &daemon,
            &admin,
            &json!({
                "external_id": format!("p-{i}"),
                "sender": {"phone": "081211112222"},
                "text": "Sampah numpuk di TPS desa karangklesem kec purwokerto selatan",
            }),
        )
        .await
        .unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        codes.push(r.body["ticket"].as_str().unwrap().to_owned());
    }
    let mut deliveries = Vec::new();
    for code in &codes {
        let t = ticket_until(&http, &daemon, &admin, code, "the ticket", WAIT, |t| {
            t["status"] == "awaiting_identity"
        })
        .await;
        let asked = t["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["purpose"] == "identity_request")
            .cloned()
            .unwrap_or_else(|| panic!("no identity request: {t}"));
        deliveries.push(asked["delivery"].as_str().unwrap().to_owned());
    }
    deliveries.sort();
    assert_eq!(deliveries, vec!["pending", "published"], "{codes:?}");
    let m = get(&http, &daemon, "/metrics", None).await;
    assert_eq!(
        metric(&m.text, "aduan_auto_messages_refused_total{reason=\"recipient_day\"}"),
        Some(1.0),
        "{}",
        m.text
    );
}

async fn nul_is_cleaned(config: Config) {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(&bin, config).await;
    let http = client();
    let admin = daemon.apikey("app", "admin");
    let r = post_message(
        &http,
        &daemon,
        &admin,
        &json!({
            "external_id": "nul-1",
            "sender": {"id": "u-1", "name": "Bu\u{0}di"},
            "text": "a\u{0}b",
        }),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let code = r.body["ticket"].as_str().unwrap();
    let t = get(&http, &daemon, &format!("/api/v1/tickets/{code}"), Some(&admin)).await.body;
    assert_eq!(t["messages"][0]["text"], "ab", "{t}");
    assert_eq!(t["reporter"]["name"], "Budi", "{t}");
}

#[tokio::test]
async fn a_nul_in_an_api_message_is_cleaned_on_sqlite() {
    nul_is_cleaned(Config::sqlite()).await;
}

#[tokio::test]
async fn a_nul_in_an_api_message_is_cleaned_on_postgres_not_a_503() {
    let Some(db) = PgDatabase::create().await else { return };
    nul_is_cleaned(Config::postgres(db.url())).await;
    drop(db);
}
