//! Abuse scenarios: privacy and races, against the real daemon.
//! - 14.3: the unauthenticated Open311 list must not show residents' tickets of other
//!   channels, their codes or their positions to the metre.
//! - 14.8 / 21.7: an official reads no phone number, NIK or email address in a complaint,
//!   and nothing of a *rahasia* reporter's identity; operators read everything.
//! - 21.5: opposite merges racing on PostgreSQL leave exactly one of each pair merged.

use std::time::Duration;

use aduan_tests::{Binary, Config, Daemon, PgDatabase};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{client, get, post_message, send, ticket_until};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn the_open311_list_shows_no_residents_tickets_or_homes() {
    let Some(bin) = Binary::locate() else { return };
    let daemon =
        Daemon::start(&bin, Config::sqlite().env("ADUAN__ROUTING__ENABLED", "false")).await;
    let http = client();
    let key = daemon.apikey("app", "intake");
    // A resident's report from home, through the intake API.
    let home = post_message(
        &http,
        &daemon,
        &key,
        &json!({
            "external_id": "home-1",
            "sender": {"name": "Siti Aminah", "phone": "081234567890"},
            "text": "Jalan berlubang depan rumah saya",
            "location": {"lat": -7.424_612, "lon": 109.239_612},
        }),
    )
    .await
    .unwrap();
    assert_eq!(home.status, StatusCode::CREATED, "{}", home.text);
    let private = home.body["ticket"].as_str().unwrap().to_owned();
    // A request through Open311 itself.
    let form = [
        ("api_key", key.as_str()),
        ("service_code", "jalan"),
        ("lat", "-7.424612"),
        ("long", "109.239612"),
        ("description", "Jalan berlubang, hubungi 081298765432"),
        ("first_name", "Budi"),
        ("email", "budi@example.id"),
    ];
    let body = urlencoded(&form);
    let r = send(
        http.post(daemon.url("/open311/v2/requests.json"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let public = r.body[0]["service_request_id"].as_str().unwrap().to_owned();

    let list = get(&http, &daemon, "/open311/v2/requests.json", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.text.contains(&private), "a web ticket's code is listed: {}", list.text);
    for leak in ["424612", "239612", "Siti", "Budi", "budi@", "0812", "berlubang"] {
        assert!(!list.text.contains(leak), "the public list shows {leak:?}: {}", list.text);
    }
    let ours = list.body.as_array().unwrap();
    assert_eq!(ours.len(), 1, "{}", list.text);
    assert_eq!(ours[0]["service_request_id"], public.as_str());
    assert_eq!((ours[0]["lat"].as_f64(), ours[0]["long"].as_f64()), (Some(-7.425), Some(109.24)));
    let one = get(&http, &daemon, &format!("/open311/v2/requests/{private}.json"), None).await;
    assert_eq!(one.status, StatusCode::NOT_FOUND, "{}", one.text);
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn urlencoded(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// Signs in through the login form; returns the session cookie (`name=value`).
async fn sign_in(daemon: &Daemon, email: &str, password: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    let page = http.get(daemon.url("/login")).send().await.unwrap();
    let visitor =
        page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    let token = &html[at..at + html[at..].find('"').unwrap()];
    let body = urlencoded(&[("csrf", token), ("email", email), ("password", password)]);
    let r = http
        .post(daemon.url("/login"))
        .header("cookie", visitor)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("aduan_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn officials_read_no_contacts_and_nothing_of_a_rahasia_reporter() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(&bin, Config::sqlite().env("ADUAN__ROUTING__POLL_MS", "100")).await;
    let password = "kata-sandi-pejabat-dlh";
    let out = daemon.site().cli_with_stdin(
        &["user", "add", "pejabat@dlh.example.go.id", "--role", "official", "--opd", "DLH"],
        &format!("{password}\n"),
    );
    assert!(out.status.success(), "user add: {}", String::from_utf8_lossy(&out.stderr));
    let http = client();
    let admin = daemon.apikey("ops", "admin");
    let sender = json!({"id": "u-9", "email": "warga.sembilan@example.id"});
    let complaint = "Sampah numpuk di TPS desa karangklesm kec purwokerto selatan udh seminggu, \
                     RT 03 RW 05. Hubungi saya 0812-3456-7890 atau warga.sembilan@example.id, \
                     NIK 3302011234567890";
    let r = post_message(
        &http,
        &daemon,
        &admin,
        &json!({"external_id": "p-1", "sender": sender, "text": complaint}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let code = r.body["ticket"].as_str().unwrap().to_owned();
    ticket_until(&http, &daemon, &admin, &code, "the ticket", WAIT, |t| {
        t["status"] == "awaiting_identity"
    })
    .await;
    let answer = "Nama: Wahyu Hidayat, alamat Desa Karangklesem Kec. Purwokerto Selatan. RAHASIA";
    let r = post_message(
        &http,
        &daemon,
        &admin,
        &json!({"external_id": "p-2", "ticket": code, "sender": sender, "text": answer}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let t = ticket_until(&http, &daemon, &admin, &code, "the ticket", WAIT, |t| t["opd"] == "DLH")
        .await;
    // The operator's view (an admin key) is the ticket as stored.
    assert_eq!(t["reporter"]["name"], "Wahyu Hidayat");
    assert!(t.to_string().contains("0812-3456-7890") && t.to_string().contains(answer));

    let cookie = sign_in(&daemon, "pejabat@dlh.example.go.id", password).await;
    for path in [format!("/api/v1/tickets/{code}"), format!("/tickets/{code}")] {
        let r = send(http.get(daemon.url(&path)).header("cookie", &cookie)).await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        for leak in [
            "0812-3456-7890",
            "3302011234567890",
            "warga.sembilan@",
            "Wahyu",
            "Hidayat",
            "W***",
            "Desa Karangklesem Kec. Purwokerto Selatan.",
        ] {
            assert!(!r.text.contains(leak), "{path} shows {leak:?} to an official");
        }
        for mask in ["[nomor disamarkan]", "[NIK disamarkan]", "[email disamarkan]"] {
            assert!(r.text.contains(mask), "{path} lacks {mask}");
        }
        assert!(r.text.contains("RT 03 RW 05"), "{path}: ordinary numbers stay");
    }
}

#[tokio::test]
async fn opposite_merges_racing_on_postgres_leave_one_of_each_pair() {
    let Some(bin) = Binary::locate() else { return };
    let Some(db) = PgDatabase::create().await else { return };
    let daemon =
        Daemon::start(&bin, Config::postgres(db.url()).env("ADUAN__ROUTING__ENABLED", "false"))
            .await;
    let http = client();
    let admin = daemon.apikey("ops", "admin");
    let mut pairs = Vec::new();
    for i in 0..40 {
        let code = |n: u32| {
            let (http, daemon, admin) = (&http, &daemon, &admin);
            async move {
                let body = json!({"external_id": format!("race-{i}-{n}"), "text": "Jalan rusak"});
                let r = post_message(http, daemon, admin, &body).await.unwrap();
                assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
                r.body["ticket"].as_str().unwrap().to_owned()
            }
        };
        pairs.push((code(0).await, code(1).await));
    }
    let merge = |from: String, into: String| {
        let (http, url, admin) =
            (http.clone(), daemon.url(&format!("/api/v1/tickets/{from}/merge")), admin.clone());
        tokio::spawn(async move {
            send(http.post(url).bearer_auth(admin).json(&json!({"into": into})))
                .await
                .unwrap()
                .status
        })
    };
    let tasks: Vec<_> = pairs
        .iter()
        .flat_map(|(a, b)| [merge(a.clone(), b.clone()), merge(b.clone(), a.clone())])
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let mut bad = Vec::new();
    for ((a, b), s) in pairs.iter().zip(statuses.chunks(2)) {
        let mut s = s.to_vec();
        s.sort();
        let ta = get(&http, &daemon, &format!("/api/v1/tickets/{a}"), Some(&admin)).await.body;
        let tb = get(&http, &daemon, &format!("/api/v1/tickets/{b}"), Some(&admin)).await.body;
        let merged = [&ta, &tb].iter().filter(|t| t["status"] == "merged").count();
        if s != [StatusCode::OK, StatusCode::CONFLICT] || merged != 1 {
            bad.push(format!("{a}/{b}: {s:?}, {merged} merged"));
        }
    }
    assert!(bad.is_empty(), "{} of 40 pairs went wrong: {bad:#?}", bad.len());
}
