//! The documented API, over TCP against the real process.

use std::collections::BTreeSet;
use std::sync::Arc;

use aduan_tests::{Binary, Config, Daemon};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{all_ticket_codes, client, get, is_ticket_code, metric, post_message};

/// The complaint of the README tour.
fn readme_complaint() -> Value {
    json!({
        "external_id": "app-123",
        "sender": {"name": "Siti", "id": "u-77", "phone": "+6281234567890", "email": "siti@example.id"},
        "text": "Jalan berlubang di Desa Karangklesem",
        "location": {"lat": -7.4246, "lon": 109.2396}
    })
}

#[tokio::test]
async fn the_readme_tour_works() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(&bin, Config::sqlite()).await;
    let http = client();
    let admin = daemon.apikey("tour", "admin");

    let health = get(&http, &daemon, "/healthz", None).await;
    assert_eq!((health.status, health.text.as_str()), (StatusCode::OK, "ok"));
    let before = get(&http, &daemon, "/metrics", None).await;
    assert_eq!(
        metric(&before.text, "aduan_messages_received_total{channel=\"web\"}"),
        Some(0.0),
        "{}",
        before.text
    );

    // Without a key nothing is stored.
    let anonymous =
        crate::common::send(http.post(daemon.url("/api/v1/messages")).json(&readme_complaint()))
            .await
            .expect("POST without a key");
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{}", anonymous.text);
    assert_eq!(anonymous.body["error"]["code"], "unauthenticated");

    let posted = post_message(&http, &daemon, &admin, &readme_complaint())
        .await
        .expect("POST the complaint");
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    let code = posted.body["ticket"].as_str().unwrap_or_default().to_owned();
    assert!(is_ticket_code(&code), "{code:?} is not ADU-<8 Crockford base32>");
    assert_eq!(posted.body["duplicate"], false);
    assert!(posted.body["message_id"].is_string(), "{}", posted.text);

    let t = get(&http, &daemon, &format!("/api/v1/tickets/{code}"), Some(&admin)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    assert_eq!(t.body["code"], code.as_str());
    // The routing worker may have disposed it already ("jalan berlubang" is DPU's).
    assert!(
        ["new", "assigned"].contains(&t.body["status"].as_str().unwrap_or_default()),
        "{}",
        t.text
    );
    assert_eq!(t.body["channel"], "web");
    assert_eq!(t.body["location"], json!({"lat": -7.4246, "lon": 109.2396}));
    assert_eq!(t.body["reporter"]["name"], "Siti");
    let messages: Vec<Value> = t.body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["direction"] == "in")
        .collect();
    assert_eq!(messages.len(), 1, "{}", t.text);
    assert_eq!(messages[0]["text"], "Jalan berlubang di Desa Karangklesem");
    assert_eq!(messages[0]["direction"], "in");

    let m = get(&http, &daemon, "/metrics", None).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.text.lines().any(|l| l == "aduan_messages_received_total{channel=\"web\"} 1"),
        "no `aduan_messages_received_total{{channel=\"web\"}} 1` in:\n{}",
        m.text
    );
    assert_eq!(
        metric(&m.text, "aduan_tickets_created_total{channel=\"web\"}"),
        Some(1.0),
        "{}",
        m.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_posts_of_one_external_id_make_one_ticket_over_tcp() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Arc::new(Daemon::start(&bin, Config::sqlite()).await);
    let intake = daemon.apikey("app", "intake");
    let read = daemon.apikey("dashboard", "read");
    let http = client();
    let body = json!({
        "external_id": "same-id",
        "sender": {"name": "Siti", "id": "u-77"},
        "text": "Sampah menumpuk di pasar",
    });
    let start = Arc::new(tokio::sync::Barrier::new(200));
    let posts: Vec<_> = (0..200)
        .map(|_| {
            let (http, daemon, token, body, start) =
                (http.clone(), daemon.clone(), intake.clone(), body.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                post_message(&http, &daemon, &token, &body).await
            })
        })
        .collect();
    let mut created = 0;
    let mut codes = BTreeSet::new();
    let mut message_ids = BTreeSet::new();
    for p in posts {
        let r = p.await.expect("a client panicked").expect("a concurrent post got no answer");
        match r.status {
            StatusCode::CREATED => {
                created += 1;
                assert_eq!(r.body["duplicate"], false, "{}", r.text);
            }
            StatusCode::OK => assert_eq!(r.body["duplicate"], true, "{}", r.text),
            other => panic!("a concurrent post of one id answered {other}: {}", r.text),
        }
        codes.insert(r.body["ticket"].as_str().unwrap_or_default().to_owned());
        message_ids.insert(r.body["message_id"].to_string());
    }
    assert_eq!(created, 1, "one post creates, the other 199 are duplicates");
    assert_eq!(codes.len(), 1, "answers name several tickets: {codes:?}");
    assert_eq!(message_ids.len(), 1, "answers name several messages");

    let listed = all_ticket_codes(&http, &daemon, &read).await;
    assert_eq!(listed, codes.into_iter().collect::<Vec<_>>());
    let t = get(&http, &daemon, &format!("/api/v1/tickets/{}", listed[0]), Some(&read)).await;
    let inbound =
        t.body["messages"].as_array().map(|m| m.iter().filter(|m| m["direction"] == "in").count());
    assert_eq!(inbound, Some(1), "{}", t.text);
    let m = get(&http, &daemon, "/metrics", None).await;
    assert_eq!(
        metric(&m.text, "aduan_messages_received_total{channel=\"web\"}"),
        Some(1.0),
        "{}",
        m.text
    );
}
