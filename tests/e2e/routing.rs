//! Routing in the real daemon: the identity flow on the API channel, and `aduan routing
//! eval` on the labelled Lapor Mas Bup set.

use std::time::Duration;

use aduan_tests::{Binary, Config, Daemon, workspace_root};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{client, get, post_message, ticket_until};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_reporter_without_a_name_is_asked_and_the_answer_routes_the_ticket() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(&bin, Config::sqlite().env("ADUAN__ROUTING__POLL_MS", "100")).await;
    let http = client();
    let admin = daemon.apikey("app", "admin");
    let sender = json!({"id": "u-5", "email": "warga@example.id"});
    let posted = post_message(&http, &daemon, &admin, &json!({
        "external_id": "app-1",
        "sender": sender,
        "text": "Sampah numpuk di TPS desa karangklesm kec purwokerto selatan udh seminggu, bau bgt",
    }))
    .await
    .unwrap();
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    let code = posted.body["ticket"].as_str().unwrap().to_owned();

    let t = ticket_until(&http, &daemon, &admin, &code, "awaiting_identity", WAIT, |t| {
        t["status"] == "awaiting_identity"
    })
    .await;
    assert_eq!(t["paused"], true);
    let asked: Vec<&Value> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["purpose"] == "identity_request")
        .collect();
    assert_eq!(asked.len(), 1, "{t}");
    assert_eq!(asked[0]["channel"], "email", "the app user left an email: {t}");
    assert_eq!(asked[0]["delivery"], "pending");
    assert!(asked[0]["text"].as_str().unwrap().contains("nama lengkap"), "{t}");

    // The answer through the intake API, naming the ticket.
    let answer = post_message(
        &http,
        &daemon,
        &admin,
        &json!({
            "external_id": "app-2",
            "ticket": code,
            "sender": sender,
            "text": "Nama: Budi Santoso, alamat Desa Karangklesem Kec. Purwokerto Selatan. RAHASIA",
        }),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.body["ticket"], code.as_str());

    let t = ticket_until(&http, &daemon, &admin, &code, "assigned", WAIT, |t| {
        t["status"] == "assigned"
    })
    .await;
    assert_eq!(t["opd"], "DLH", "{t}");
    assert_eq!(t["category"], "sampah");
    assert_eq!(t["place"], "Karangklesem");
    assert_eq!(t["kecamatan"], "Purwokerto Selatan");
    assert_eq!(t["paused"], false);
    assert_eq!(t["reporter"]["name"], "Budi Santoso");
    assert_eq!(t["reporter"]["confidential"], true);
    let kinds: Vec<&str> =
        t["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in ["paused", "reporter_updated", "resumed", "assigned", "routed"] {
        assert!(kinds.contains(&k), "no {k} event in {kinds:?}");
    }
    let m = get(&http, &daemon, "/metrics", None).await;
    assert!(m.text.contains("aduan_tickets_overdue{opd=\"unassigned\"} 0"), "{}", m.text);
}

#[test]
fn routing_eval_prints_the_contract_line() {
    let Some(bin) = Binary::locate() else { return };
    let csv = workspace_root()
        .join("crates/aduan-routing/tests/fixtures/lapormasbup/lapormasbup_kategori.csv");
    let out = bin
        .command()
        .current_dir(workspace_root())
        .args(["routing", "eval", "--csv"])
        .arg(&csv)
        .args(["--text-column", "text", "--label-column", "kategori", "--train-fraction", "0.8"])
        .output()
        .expect("run aduan routing eval");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    let fields: Vec<&str> = last.split(' ').collect();
    assert_eq!(fields.len(), 4, "{last}");
    for (field, key) in fields.iter().zip(["accuracy=", "top3=", "n=", "labels="]) {
        assert!(field.starts_with(key), "{last}");
    }
    assert_eq!(fields[2], "n=167", "the last 20% of 834 rows");
    assert_eq!(fields[3], "labels=6");
    let acc: f64 = fields[0].trim_start_matches("accuracy=").parse().unwrap();
    assert!(acc > 0.6 && fields[0].len() == "accuracy=0.000".len(), "{last}");

    let bad = bin
        .command()
        .args(["routing", "eval", "--csv"])
        .arg(&csv)
        .args(["--text-column", "isi", "--label-column", "kategori"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no column \"isi\""));
}
