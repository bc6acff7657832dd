//! Every answer reaches the resident and the resident closes the loop (issue 17 items 1 and
//! 4, the whole loop of item 6) on the real daemon, with a fake WhatsApp Cloud API recording
//! what is sent: a WhatsApp complaint written 30 hours ago → the operator's answer goes as the
//! approved template (the 24-hour window is closed) → the resident writes → the full answer
//! follows → resolved → the confirmation question reaches the resident on WhatsApp →
//! "belum" reopens the ticket → resolved again → asked again → "1" closes it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_social::sig;
use aduan_tests::{Binary, Config, Daemon};
use axum::Router;
use axum::extract::State;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{client, eventually, send, ticket, ticket_until};

const PHONE_NUMBER_ID: &str = "106540352242922";
const APP_SECRET: &str = "app-s3cret-0123456789";
const RESIDENT: &str = "6281234567890";

type Sent = Arc<Mutex<Vec<Value>>>;

/// The WhatsApp Cloud API's `POST /{phone-number-id}/messages`, recording each body.
async fn fake_whatsapp() -> (String, Sent, tokio::task::JoinHandle<()>) {
    let sent: Sent = Arc::default();
    let app = Router::new()
        .route(
            "/v21.0/{number}/messages",
            axum::routing::post(|State(s): State<Sent>, body: axum::Json<Value>| async move {
                let n = {
                    let mut s = s.lock().unwrap();
                    s.push(body.0.clone());
                    s.len()
                };
                axum::Json(json!({"messaging_product": "whatsapp",
                    "contacts": [{"input": body.0["to"], "wa_id": body.0["to"]}],
                    "messages": [{"id": format!("wamid.OUT{n}")}]}))
            }),
        )
        .with_state(sent.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("{base}/v21.0"), sent, task)
}

/// The Unix time `hours_ago` hours before now, as WhatsApp writes message timestamps.
fn secs_ago(hours_ago: u64) -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() - hours_ago * 3600).to_string())
        .unwrap_or_default()
}

/// The resident writes `text` on WhatsApp (a signed webhook delivery, timestamped now:
/// inside the 24-hour window).
async fn resident_writes(http: &reqwest::Client, daemon: &Daemon, id: &str, text: &str) {
    resident_wrote(http, daemon, id, text, 0).await;
}

/// The resident's message written `hours_ago` hours ago (WhatsApp's timestamp), delivered now.
async fn resident_wrote(
    http: &reqwest::Client,
    daemon: &Daemon,
    id: &str,
    text: &str,
    hours_ago: u64,
) {
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "6281100000000", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Siti"}, "wa_id": RESIDENT}],
            "messages": [{"from": RESIDENT, "id": id, "timestamp": secs_ago(hours_ago), "type": "text",
                          "text": {"body": text}}]}}]}]
    }))
    .unwrap();
    let r = send(
        http.post(daemon.url("/hooks/meta"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig::meta_signature(APP_SECRET.as_bytes(), &body))
            .body(body),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// The texts sent to the resident on WhatsApp so far.
fn texts(sent: &Sent) -> Vec<String> {
    sent.lock()
        .unwrap()
        .iter()
        .filter(|b| b["to"] == RESIDENT)
        .filter_map(|b| b["text"]["body"].as_str().map(str::to_owned))
        .collect()
}

async fn set_status(http: &reqwest::Client, daemon: &Daemon, admin: &str, code: &str, to: &str) {
    let r = send(
        http.post(daemon.url(&format!("/api/v1/tickets/{code}/status")))
            .bearer_auth(admin)
            .json(&json!({"status": to, "note": "jalan sudah ditambal"})),
    )
    .await
    .unwrap();
    assert!(r.status.is_success(), "status {to}: {} {}", r.status, r.text);
}

#[tokio::test]
async fn answer_after_30_h_goes_as_template_then_in_full_belum_reopens_1_closes() {
    let Some(bin) = Binary::locate() else { return };
    let (graph, sent, server) = fake_whatsapp().await;
    // In the file: the phone number id is a string, which an environment variable of
    // digits can't say.
    let meta = format!(
        "[channels.meta]\nenabled = true\napp_secret = \"{APP_SECRET}\"\n\
         verify_token = \"verify-me-0123456789\"\nwhatsapp_token = \"wa-token\"\n\
         whatsapp_phone_number_id = \"{PHONE_NUMBER_ID}\"\ngraph_api_url = \"{graph}\"\n\
         whatsapp_template = {{ name = \"status_aduan\", language = \"id\" }}\n"
    );
    let config =
        Config { extra_toml: meta, ..Config::sqlite() }.env("ADUAN__OUTBOUND__POLL_MS", "100");
    let daemon = Daemon::start(&bin, config).await;
    let http = client();
    let admin = daemon.apikey("ops", "admin");
    let wait = Duration::from_secs(30);

    // The complaint was written 30 hours ago (it reaches us late): no free text may go back.
    resident_wrote(&http, &daemon, "wamid.C1", "Jalan berlubang di Desa Karangklesem", 30).await;
    let code = eventually("the ticket", &daemon, wait, async || {
        let list =
            crate::common::get(&http, &daemon, "/api/v1/tickets?channel=whatsapp", Some(&admin))
                .await;
        list.body["items"][0]["code"].as_str().map(str::to_owned)
    })
    .await;

    // The operator's answer goes as the approved template, with the code; not as text.
    let answer = "Jalan akan kami tambal minggu ini.";
    let r = send(
        http.post(daemon.url(&format!("/api/v1/tickets/{code}/reply")))
            .bearer_auth(&admin)
            .json(&json!({"text": answer})),
    )
    .await
    .unwrap();
    assert!(r.status.is_success(), "reply: {} {}", r.status, r.text);
    let template = eventually("the template", &daemon, wait, async || {
        sent.lock().unwrap().iter().find(|b| b["type"] == "template").cloned()
    })
    .await;
    assert_eq!(template["template"]["name"], "status_aduan", "{template}");
    assert!(template.to_string().contains(&code), "{template}");
    assert!(!texts(&sent).iter().any(|t| t.contains(answer)), "free text outside the window");
    let t = ticket(&http, &daemon, &admin, &code).await;
    assert!(t.to_string().contains("templat WhatsApp terkirim"), "{t}");

    // The resident writes again (naming the ticket): the full answer follows at once.
    resident_writes(&http, &daemon, "wamid.C1b", &format!("Baik pak, ditunggu. {code}")).await;
    eventually("the full answer", &daemon, wait, async || {
        texts(&sent).iter().any(|t| t.contains(answer)).then_some(())
    })
    .await;

    // Resolved → the question reaches the resident on WhatsApp.
    set_status(&http, &daemon, &admin, &code, "resolved").await;
    let asked = |n: usize| {
        let sent = sent.clone();
        async move || {
            let q: Vec<String> = texts(&sent)
                .into_iter()
                .filter(|t| t.contains("Balas 1 jika sudah beres, 2 jika belum"))
                .collect();
            (q.len() >= n).then_some(q)
        }
    };
    let q = eventually("the confirmation question", &daemon, wait, asked(1)).await;
    assert!(q[0].contains(&code) && q[0].contains("/lacak/"), "{}", q[0]);

    // "belum" → reopened, not a new ticket.
    resident_writes(&http, &daemon, "wamid.C2", "belum pak, jalannya masih berlubang").await;
    let t = ticket_until(&http, &daemon, &admin, &code, "reopened", wait, |t| {
        t["status"] != "resolved"
    })
    .await;
    assert!(matches!(t["status"].as_str(), Some("new" | "assigned")), "{t}");
    let list =
        crate::common::get(&http, &daemon, "/api/v1/tickets?channel=whatsapp", Some(&admin)).await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1), "{}", list.text);

    // Resolved again → asked again → "1" → closed.
    if t["status"] == "new" {
        let r = send(
            http.post(daemon.url(&format!("/api/v1/tickets/{code}/assign")))
                .bearer_auth(&admin)
                .json(&json!({"opd": "DPU"})),
        )
        .await
        .unwrap();
        assert!(r.status.is_success(), "{}", r.text);
    }
    set_status(&http, &daemon, &admin, &code, "resolved").await;
    eventually("the second question", &daemon, wait, asked(2)).await;
    resident_writes(&http, &daemon, "wamid.C3", "1").await;
    let t =
        ticket_until(&http, &daemon, &admin, &code, "closed", wait, |t| t["status"] == "closed")
            .await;
    let events = t["events"].as_array().cloned().unwrap_or_default();
    let confirmations: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "confirmation")
        .filter_map(|e| e["to"].as_str())
        .collect();
    assert_eq!(confirmations, ["asked", "not_fixed", "asked", "fixed"], "{t}");
    let _ = ticket(&http, &daemon, &admin, &code).await;
    server.abort();
}
