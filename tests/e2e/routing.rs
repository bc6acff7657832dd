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

// --- model: history import, train, explain ---

fn out_text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A complaint about a road in words none of the registry's keywords match: only a model
/// that learned from history can route it.
const NO_KEYWORD_ROAD: &str = "ruas menuju kantor desa amblas dan berkerikil, motor sering \
    terjatuh, mohon segera ditambal";

#[tokio::test]
async fn history_is_imported_once_trained_stored_and_used_by_another_instance() {
    let Some(bin) = Binary::locate() else { return };
    let site = aduan_tests::Site::new(&bin, Config::sqlite());
    let csv = workspace_root()
        .join("crates/aduan-routing/tests/fixtures/lapormasbup/lapormasbup_kategori.csv");
    let csv = csv.to_str().unwrap();
    let import = ["routing", "import", "--csv", csv, "--text-column", "text"];
    let import: Vec<&str> = import.iter().copied().chain(["--label-column", "kategori"]).collect();

    // Sector labels are no OPD codes: listed with their counts, and nothing is stored.
    let out = site.cli(&import);
    let (stdout, stderr) = out_text(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("Pelayanan Publik\t254"), "{stderr}");
    assert!(stderr.contains("Infrastruktur\t228"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    let out = site.cli(&["routing", "train"]);
    assert!(!out.status.success(), "nothing to learn from yet: {:?}", out_text(&out));
    let out = site.cli(&["routing", "explain", NO_KEYWORD_ROAD]);
    let (stdout, stderr) = out_text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("model: none trained"), "{stdout}");
    assert!(stdout.contains("keyword hits: none"), "{stdout}");
    assert!(stdout.contains("action: triage"), "{stdout}");

    // A map into registry codes (here a TOML one; a code the registry lacks is refused).
    let bad_map = site.dir().join("bad.toml");
    std::fs::write(&bad_map, "\"Infrastruktur\" = \"NOPE\"\n").unwrap();
    let bad_map = bad_map.to_str().unwrap().to_owned();
    let out = site.cli(&[import.as_slice(), &["--map", &bad_map]].concat());
    assert!(!out.status.success());
    assert!(out_text(&out).1.contains("NOPE"), "{:?}", out_text(&out));
    let map = site.dir().join("sektor.toml");
    std::fs::write(
        &map,
        "\"Infrastruktur\" = \"DPU\"\n\"Pelayanan Publik\" = \"DINDUKCAPIL\"\n\
         \"Sosial dan Ekonomi\" = \"DINSOS\"\n\"Ketertiban\" = \"SATPOLPP\"\n\
         \"Pendidikan\" = \"DINDIK\"\n\"Lingkungan\" = \"DLH\"\n",
    )
    .unwrap();
    let map = map.to_str().unwrap().to_owned();
    let with_map = [import.as_slice(), &["--map", &map]].concat();
    let out = site.cli(&with_map);
    let (stdout, stderr) = out_text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let first: u64 = stdout
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(first > 800, "{stdout}");
    // Again: nothing new.
    let out = site.cli(&with_map);
    let (stdout, _) = out_text(&out);
    assert!(stdout.starts_with("imported 0 new rows"), "{stdout}");

    let out = site.cli(&["routing", "train"]);
    let (stdout, stderr) = out_text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("examples={first} labels=6")), "{stdout}");

    let out = site.cli(&["routing", "explain", NO_KEYWORD_ROAD]);
    let (stdout, stderr) = out_text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for part in ["normalised: ruas menuju kantor", "place: ", "keyword hits: none", "model top-3"] {
        assert!(stdout.contains(part), "{part}: {stdout}");
    }
    let model_line = stdout.lines().find(|l| l.starts_with("model top-3")).unwrap();
    assert!(model_line.contains(": DPU 0."), "{stdout}");

    // Another daemon on the same database loads the stored model and routes with it.
    let db = format!("sqlite://{}", site.dir().join("aduan.db").display());
    let daemon = Daemon::start(
        &bin,
        Config::postgres(db)
            .env("ADUAN__ROUTING__POLL_MS", "100")
            .env("ADUAN__ROUTING__ASK_IDENTITY", "false"),
    )
    .await;
    let http = client();
    let admin = daemon.apikey("app", "admin");
    let posted = post_message(
        &http,
        &daemon,
        &admin,
        &json!({
            "external_id": "road-1",
            "sender": {"id": "u-9", "name": "Budi", "email": "budi@example.id"},
            "text": NO_KEYWORD_ROAD,
        }),
    )
    .await
    .unwrap();
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    let code = posted.body["ticket"].as_str().unwrap().to_owned();
    // No keyword matches it: only the stored model can suggest DPU (the daemon logs that
    // it loaded stored model 1).
    let t = ticket_until(&http, &daemon, &admin, &code, "suggested by the model", WAIT, |t| {
        t["suggestions"][0]["opd"] == "DPU"
    })
    .await;
    assert!(t["suggestions"][0]["score"].as_f64().unwrap() > 0.2, "{t}");
}
