//! Abuse scenarios: channels. Each reproduces an attack of the security review (issue 14)
//! or the robustness review (issue 21) against the real daemon.
//!
//! - 14.1: the X CRC must not sign a DM body for a stranger;
//! - 14.5: an empty or short webhook secret (inline, from the environment, or an empty
//!   `*_file`) stops `check-config` and `serve`;
//! - 14.9: a Twilio MMS naming an internal URL (directly or through a redirect) fetches
//!   nothing from it and sends the account's credentials nowhere but the API;
//! - 21.8: a numeric secret from the environment is taken as written and never printed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aduan_social::sig;
use aduan_tests::{Binary, Config, Daemon, Site, toml_str};
use axum::Router;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{client, get, send};

const X_SECRET: &str = "x-consumer-secret-0123456789";

fn texts(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Issue 14.1: the CRC answers HMAC(consumer_secret, crc_token), and X signs a POST body
/// with the same HMAC. Asked to "CRC" a DM body, the daemon must refuse, and the body must
/// not be stored whatever signature comes with it.
#[tokio::test]
async fn the_x_crc_does_not_sign_a_forged_dm() {
    let Some(bin) = Binary::locate() else { return };
    let config = Config::sqlite()
        .env("ADUAN__CHANNELS__X__ENABLED", "true")
        .env("ADUAN__CHANNELS__X__CONSUMER_SECRET", X_SECRET);
    let daemon = Daemon::start(&bin, config).await;
    let http = client();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string();
    let body = json!({
        "for_user_id": "835740314006511618",
        "direct_message_events": [{
            "type": "message_create", "id": "958501034212560001", "created_timestamp": now_ms,
            "message_create": {"target": {"recipient_id": "835740314006511618"},
                               "sender_id": "272953809",
                               "message_data": {"text": "Pesan palsu atas nama warga"}}}],
    })
    .to_string();

    let crc = send(http.get(daemon.url("/hooks/x")).query(&[("crc_token", &body)])).await.unwrap();
    assert_eq!(crc.status, StatusCode::BAD_REQUEST, "{}", crc.text);
    assert!(crc.body["response_token"].is_null(), "{}", crc.text);
    assert!(crc.body["error"]["message"].is_string(), "a JSON error: {}", crc.text);
    let signature = crc.body["response_token"].as_str().unwrap_or("sha256=").to_owned();
    let post = send(
        http.post(daemon.url("/hooks/x"))
            .header("content-type", "application/json")
            .header("x-twitter-webhooks-signature", signature)
            .body(body),
    )
    .await
    .unwrap();
    assert_eq!(post.status, StatusCode::FORBIDDEN, "{}", post.text);

    // X's own CRC is still answered.
    let token = "9b4507b3-9040-4669-9ca3-6b94edb50553";
    let ok = get(&http, &daemon, &format!("/hooks/x?crc_token={token}"), None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["response_token"], sig::x_signature(X_SECRET.as_bytes(), token.as_bytes()));

    let admin = daemon.apikey("abuse-x", "admin");
    let list = get(&http, &daemon, "/api/v1/tickets?channel=x", Some(&admin)).await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(0), "{}", list.text);
}

/// Issue 14.5: `secret = ""` (Kannel), `auth_token = "short"` (Twilio) and an empty
/// `signing_key_file` (Android gateway) are configuration errors: `check-config` names the
/// key and fails, and `serve` refuses to start.
#[test]
fn empty_or_short_webhook_secrets_stop_check_config_and_serve() {
    let Some(bin) = Binary::locate() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let empty_file = dir.path().join("signing_key");
    std::fs::write(&empty_file, "\n").expect("write the empty secret file");
    let cases = [
        (
            "channels.kannel.secret",
            "[channels.kannel]\nenabled = true\nsecret = \"\"\n\
             sendsms_url = \"http://127.0.0.1:9/cgi-bin/sendsms\"\n"
                .to_owned(),
        ),
        (
            "channels.twilio.auth_token",
            "[channels.twilio]\nenabled = true\naccount_sid = \"AC1\"\n\
             auth_token = \"tw-short-9f3a\"\n"
                .to_owned(),
        ),
        (
            "channels.android_sms.signing_key_file",
            format!(
                "[channels.android_sms]\nenabled = true\nsigning_key_file = {}\n",
                toml_str(&empty_file.display().to_string())
            ),
        ),
    ];
    for (key, extra) in cases {
        let site = Site::new(&bin, Config { extra_toml: extra, ..Config::sqlite() });
        let out = site.cli(&["check-config"]);
        let all = texts(&out);
        assert_eq!(out.status.code(), Some(1), "check-config with a bad {key}:\n{all}");
        assert!(all.lines().any(|l| l.starts_with(&format!("{key}: "))), "{key} not named:\n{all}");
        assert!(!all.contains("tw-short-9f3a"), "the value is printed:\n{all}");
        let out = site.cli(&["serve"]);
        let all = texts(&out);
        assert!(!out.status.success(), "serve started with a bad {key}:\n{all}");
        assert!(all.contains(key), "serve does not name {key}:\n{all}");
        assert!(!all.contains("tw-short-9f3a"), "the value is printed:\n{all}");
    }
    // The same through the environment, empty.
    let site = Site::new(
        &bin,
        Config::sqlite()
            .env("ADUAN__CHANNELS__KANNEL__ENABLED", "true")
            .env("ADUAN__CHANNELS__KANNEL__SECRET", "")
            .env("ADUAN__CHANNELS__KANNEL__SENDSMS_URL", "http://127.0.0.1:9/cgi-bin/sendsms"),
    );
    let out = site.cli(&["serve"]);
    assert!(!out.status.success(), "{}", texts(&out));
    assert!(texts(&out).contains("channels.kannel.secret"), "{}", texts(&out));
}

/// Issue 21.8: `ADUAN__…SECRET=987654321` was refused with "invalid type: found unsigned
/// int 987654321". A numeric secret is taken exactly as written (leading zero included),
/// and an unusable one is named, never printed.
#[tokio::test]
async fn numeric_secrets_from_the_environment_work_and_are_never_printed() {
    let Some(bin) = Binary::locate() else { return };
    let kannel = |secret: &str| {
        Config::sqlite()
            .env("ADUAN__CHANNELS__KANNEL__ENABLED", "true")
            .env("ADUAN__CHANNELS__KANNEL__SENDSMS_URL", "http://127.0.0.1:9/cgi-bin/sendsms")
            .env("ADUAN__CHANNELS__KANNEL__SECRET", secret)
    };
    let site = Site::new(&bin, kannel("987654321"));
    let out = site.cli(&["check-config"]);
    let all = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("channels.kannel.secret"), "{all}");
    assert!(!all.contains("987654321"), "the secret is printed:\n{all}");

    let secret = "01234567890123456789";
    let daemon = Daemon::start(&bin, kannel(secret)).await;
    assert!(!daemon.log().contains(secret), "the secret is in the log");
    let http = client();
    let sms = |s: &str| {
        format!(
            "/hooks/kannel?secret={s}&from=%2B6281234567001&to=1708&text=Lampu+jalan+mati\
             &charset=UTF-8&coding=0&id=abuse-numeric-secret-1"
        )
    };
    // Without the leading zero (what parsing it as a number kept) it is refused.
    let wrong = get(&http, &daemon, &sms("1234567890123456789"), None).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
    let right = get(&http, &daemon, &sms(secret), None).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.text);
}

/// A request seen: its URI and its `Authorization` header.
type SeenRequest = (String, Option<String>);

/// What the fake Twilio API and the "internal" service received.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<SeenRequest>>>);

impl Seen {
    fn push(&self, uri: &Uri, headers: &HeaderMap) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.0.lock().expect("lock").push((uri.path().to_owned(), auth));
    }

    fn all(&self) -> Vec<(String, Option<String>)> {
        self.0.lock().expect("lock").clone()
    }
}

async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// Issue 14.9: a (signed) Twilio MMS names its media by URL. One names a service on the
/// daemon's own network, one a URL of the provider that redirects there: neither is
/// fetched, the message is stored with the failure recorded on those attachments, the
/// real media is fetched, and the account's credentials go to the API only.
#[tokio::test]
async fn mms_media_on_internal_hosts_or_behind_redirects_is_not_fetched() {
    let Some(bin) = Binary::locate() else { return };
    let internal_seen = Seen::default();
    let seen = internal_seen.clone();
    let internal = listen(Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            seen.push(&uri, &headers);
            "internal secrets"
        }
    }))
    .await;
    let api_seen = Seen::default();
    let seen = api_seen.clone();
    let target = format!("{internal}/latest/meta-data");
    let api = listen(Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let seen = seen.clone();
        let target = target.clone();
        async move {
            seen.push(&uri, &headers);
            let resp: Response = match uri.path() {
                "/media/ok.jpg" => ([("content-type", "image/jpeg")], "JPEG bytes").into_response(),
                "/media/redirect.jpg" => {
                    (StatusCode::FOUND, [("location", target.as_str())]).into_response()
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            };
            resp
        }
    }))
    .await;

    let sid = "AC0123456789abcdef0123456789abcdef";
    let token = "twilio-auth-token-0123456789";
    let extra = format!(
        "[channels.twilio]\nenabled = true\naccount_sid = {}\nauth_token = {}\napi_url = {}\n",
        toml_str(sid),
        toml_str(token),
        toml_str(&api)
    );
    let daemon = Daemon::start(&bin, Config { extra_toml: extra, ..Config::sqlite() }).await;
    let http = client();
    let media = [
        format!("{internal}/latest/meta-data/iam"),
        format!("{api}/media/redirect.jpg"),
        format!("{api}/media/ok.jpg"),
    ];
    let mut params: Vec<(String, String)> = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", sid),
        ("From", "+6281234567002"),
        ("To", "+15005550006"),
        ("Body", "Foto jalan rusak"),
        ("NumMedia", "3"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (i, url) in media.iter().enumerate() {
        params.push((format!("MediaUrl{i}"), url.clone()));
        params.push((format!("MediaContentType{i}"), "image/jpeg".to_owned()));
    }
    let url = daemon.url("/hooks/twilio");
    let signature = aduan_sms::twilio::signature(token, &url, &params);
    let resp =
        send(http.post(&url).header("x-twilio-signature", signature).form(&params)).await.unwrap();
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);

    // Wait until every attachment is fetched or given up.
    let db = daemon.site().dir().join("aduan.db");
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows: Vec<(String, String, Option<String>)> = {
            let conn = rusqlite::Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open the database");
            let mut stmt = conn
                .prepare("SELECT provider_ref, sha256, fetch_error FROM attachments ORDER BY id")
                .expect("prepare");
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        let settled = rows.len() == 3
            && rows.iter().all(|(_, sha, err): &(String, String, Option<String>)| {
                !sha.is_empty() || err.is_some()
            });
        if settled {
            break rows;
        }
        assert!(Instant::now() < deadline, "attachments never settled: {rows:?}\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The message is stored with all three; only the provider's real media was fetched.
    assert!(rows[0].1.is_empty() && rows[1].1.is_empty(), "{rows:?}");
    for (_, _, err) in &rows[..2] {
        let err = err.as_deref().unwrap_or("");
        assert!(err.contains("not an allowed media host"), "{rows:?}");
    }
    assert!(!rows[2].1.is_empty(), "the real media was not fetched: {rows:?}");
    assert!(
        internal_seen.all().is_empty(),
        "the internal service was reached: {:?}",
        internal_seen.all()
    );
    // Credentials went to the configured API, and there only.
    let api_requests = api_seen.all();
    assert!(
        api_requests
            .iter()
            .all(|(_, auth)| auth.as_deref().is_some_and(|a| a.starts_with("Basic "))),
        "{api_requests:?}"
    );
    assert!(api_requests.iter().any(|(p, _)| p == "/media/ok.jpg"), "{api_requests:?}");
}
