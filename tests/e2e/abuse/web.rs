//! Abuse scenarios: web. The HTTP surface against the real daemon: slow and idle
//! connections, held bodies, the sign-in limiter, uploads that would fill the disk, headers,
//! `/metrics` and API key revocation (issue 14.6, 14.10, 14.11; issue 21.6, 21.9).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use aduan_tests::{Binary, Config, Daemon};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{client, get, post_message, send};

/// Reads until the peer closes (or `limit` passes): what it sent, and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// The daemon's open file descriptors.
fn open_fds(daemon: &Daemon) -> usize {
    let pid = daemon.pid().expect("the daemon runs");
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn limited(config: Config) -> Config {
    config
        .env("ADUAN__SERVER__HEADER_READ_TIMEOUT_SECS", "2")
        .env("ADUAN__SERVER__BODY_READ_TIMEOUT_SECS", "3")
        .env("ADUAN__SERVER__MAX_CONNECTIONS", "16")
        .env("ADUAN__SERVER__MAX_JSON_BYTES", "1048576")
        .env("ADUAN__SERVER__MAX_MULTIPART_BYTES", "1048576")
        .env("ADUAN__SERVER__MAX_INFLIGHT_BODY_BYTES", "4194304")
}

/// Issue 21.6: a request head sent half (slowloris) is closed after the header-read
/// timeout, and a body sent half after the body-read timeout; today both stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_slow_bodies_are_closed_after_their_timeouts() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(&bin, limited(Config::sqlite())).await;

    let mut slow = TcpStream::connect(daemon.addr()).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1").await.expect("write");
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(closed, "a half-sent request head was still open after 10 s");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "closed only after {:?}",
        started.elapsed()
    );

    let token = daemon.apikey("slow-app", "intake");
    let mut slow = TcpStream::connect(daemon.addr()).await.expect("connect");
    let head = format!(
        "POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"text\":"
    );
    slow.write_all(head.as_bytes()).await.expect("write");
    let (answer, closed) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(closed, "a half-sent body was still open after 10 s: {answer}");
    assert!(!answer.contains(" 201 "), "{answer}");

    // Whole requests still go through.
    let r = get(&client(), &daemon, "/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// Issue 21.6: many idle connections (more than `max_connections`) keep the daemon's
/// descriptors bounded by the cap, and `/healthz` answers at once all the same. Today every
/// idle connection holds a descriptor until there are none left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_cap_do_not_hold_descriptors_or_stop_healthz() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(
        &bin,
        limited(Config::sqlite()).env("ADUAN__SERVER__HEADER_READ_TIMEOUT_SECS", "30"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = open_fds(&daemon);
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(TcpStream::connect(daemon.addr()).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = open_fds(&daemon);
    assert!(
        during <= before + 16 + 2,
        "64 idle connections took {} descriptors (cap 16)",
        during.saturating_sub(before)
    );
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = http.get(daemon.url("/healthz")).send().await.expect("/healthz answers");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(3), "/healthz took {:?}", started.elapsed());
    drop(idle);
}

/// Issue 21.6: bodies held open concurrently reserve the in-flight budget (4 MiB here) by
/// their Content-Length before a byte is read; the excess gets 503 at once instead of
/// being buffered. An unknown API key is refused before its body is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_large_bodies_stay_within_the_in_flight_budget() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(
        &bin,
        limited(Config::sqlite()).env("ADUAN__SERVER__BODY_READ_TIMEOUT_SECS", "30"),
    )
    .await;
    let token = daemon.apikey("bulk-app", "intake");
    let head = |token: &str| {
        format!(
            "POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
        )
    };
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(daemon.addr()).await.expect("connect");
        s.write_all(head(&token).as_bytes()).await.expect("write");
        held.push(s);
    }
    let mut busy = 0;
    for s in &mut held {
        let (answer, _) = read_until_closed(s, Duration::from_millis(1500)).await;
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.contains("server_busy"), "{answer}");
            busy += 1;
        }
    }
    // 4 MiB holds four bodies of 1 MB (a KiB-rounded reservation each).
    assert_eq!(busy, 6, "bodies beyond the in-flight budget were not refused at once");

    // Once the held bodies go away, the budget is free again; an unknown API key is
    // refused without waiting for its body.
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut forged = TcpStream::connect(daemon.addr()).await.expect("connect");
    forged.write_all(head("adu_forged").as_bytes()).await.expect("write");
    let (answer, _) = read_until_closed(&mut forged, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "an unknown key waited for its body: {answer}");
    let r = post_message(
        &client(),
        &daemon,
        &token,
        &json!({"external_id": "ok-1", "text": "Jalan rusak"}),
    )
    .await
    .expect("post");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// A client whose connections come from `ip` (a loopback address other than 127.0.0.1).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .local_address(IpAddr::V4(ip))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// The sign-in form's cookie and CSRF token for `http`.
async fn login_form(http: &reqwest::Client, daemon: &Daemon) -> (String, String) {
    let r = http.get(daemon.url("/login")).send().await.expect("GET /login");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("aduan_csrf="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .expect("a CSRF cookie");
    let html = r.text().await.unwrap_or_default();
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    let token = html[at..at + html[at..].find('"').unwrap_or(0)].to_owned();
    (cookie, token)
}

async fn sign_in(
    http: &reqwest::Client,
    daemon: &Daemon,
    form: &(String, String),
    email: &str,
    password: &str,
) -> StatusCode {
    let r = http
        .post(daemon.url("/login"))
        .header("cookie", &form.0)
        .form(&[("csrf", form.1.as_str()), ("email", email), ("password", password)])
        .send()
        .await
        .expect("POST /login");
    r.status()
}

/// Issue 14.6: a 1 MiB email field is refused (413) without a limiter key, and a stranger
/// failing five times from 127.0.0.2 does not lock the admin out of 127.0.0.1. Today the
/// per-account limit keyed on the email refuses the admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_lock_the_admin_out_and_huge_sign_in_forms_are_refused() {
    let Some(bin) = Binary::locate() else { return };
    let daemon = Daemon::start(&bin, Config::sqlite()).await;
    let out = daemon.site().cli_with_stdin(
        &["user", "add", "admin@kab.go.id", "--role", "admin"],
        "kata-sandi-admin-yang-panjang\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stranger = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let form = login_form(&stranger, &daemon).await;
    let huge = "a".repeat(1024 * 1024);
    assert_eq!(sign_in(&stranger, &daemon, &form, &huge, "x").await, StatusCode::PAYLOAD_TOO_LARGE);
    for _ in 0..5 {
        let s = sign_in(&stranger, &daemon, &form, "admin@kab.go.id", "tebak").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let s = sign_in(&stranger, &daemon, &form, "admin@kab.go.id", "tebak").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);

    let admin = client_from(Ipv4Addr::LOCALHOST);
    let form = login_form(&admin, &daemon).await;
    let s =
        sign_in(&admin, &daemon, &form, "admin@kab.go.id", "kata-sandi-admin-yang-panjang").await;
    assert_eq!(s, StatusCode::SEE_OTHER, "the admin was locked out by a stranger");
}

fn multipart_report(csrf: &str, nonce: &str, photo: &[u8], ct: &str) -> (String, Vec<u8>) {
    let b = "AbUsEbOuNdArY";
    let mut body = Vec::new();
    for (k, v) in [("csrf", csrf), ("nonce", nonce), ("text", "Jalan berlubang di depan pasar")] {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"f.jpg\"\r\n\
             Content-Type: {ct}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(photo);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

async fn report(daemon: &Daemon, nonce: &str, photo: &[u8], ct: &str) -> (StatusCode, String) {
    let http = client();
    let r = http.get(daemon.url("/lapor")).send().await.expect("GET /lapor");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("aduan_csrf="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .expect("a CSRF cookie");
    let html = r.text().await.unwrap_or_default();
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    let csrf = &html[at..at + html[at..].find('"').unwrap_or(0)];
    let (ct_header, body) = multipart_report(csrf, nonce, photo, ct);
    let r = http
        .post(daemon.url("/lapor"))
        .header("cookie", cookie)
        .header("content-type", ct_header)
        .body(body)
        .send()
        .await
        .expect("POST /lapor");
    let status = r.status();
    (status, r.text().await.unwrap_or_default())
}

fn jpeg(size: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.extend((0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

/// Issue 14.10: the public form takes images only (magic bytes), spends a per-address
/// upload budget, and refuses with 507 below the free-space floor — on the API as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_images_within_a_budget_and_above_the_free_space_floor() {
    let Some(bin) = Binary::locate() else { return };
    let daemon =
        Daemon::start(&bin, Config::sqlite().env("ADUAN__SERVER__UPLOAD_BYTES_PER_HOUR", "307200"))
            .await;
    let (s, text) =
        report(&daemon, "n-html", b"<html><script>alert(1)</script>", "image/jpeg").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let (s, _) = report(&daemon, "n-svg", b"<svg onload=alert(1)/>", "image/svg+xml").await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // 300 KiB an hour: the first 100 KB photo goes through, a few more spend the rest.
    let (s, text) = report(&daemon, "n-1", &jpeg(100_000, 1), "image/jpeg").await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let mut refused = 0;
    for i in 2..6 {
        let (s, _) = report(&daemon, &format!("n-{i}"), &jpeg(100_000, i), "image/jpeg").await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused >= 2, "the per-address upload budget did not hold ({refused} refused)");
    drop(daemon);

    let daemon = Daemon::start(
        &bin,
        Config::sqlite()
            .env("ADUAN__STORAGE__MIN_FREE_BYTES", "1125899906842624")
            .env("ADUAN__STORAGE__MIN_FREE_MAX_PERCENT", "100"),
    )
    .await;
    let (s, text) = report(&daemon, "n-floor", &jpeg(1000, 9), "image/jpeg").await;
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{text}");
    let token = daemon.apikey("floor-app", "intake");
    let body = json!({"external_id": "f1", "text": "Foto", "attachments": [
        {"content_type": "image/jpeg", "data_base64": "/9j/4AAQ"}]});
    let r = post_message(&client(), &daemon, &token, &body).await.expect("post");
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::INSUFFICIENT_STORAGE, Some("storage_full")),
        "{}",
        r.text
    );
}

/// Issue 14.11 and 21.9: pages carry a CSP without inline script or style, nosniff and
/// Referrer-Policy; personal JSON is `no-store`; `/metrics` wants its token; a key revoked
/// through the API stops at once; key names with ':' are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_metrics_token_and_key_revocation() {
    let Some(bin) = Binary::locate() else { return };
    let metrics_token = "metrics-token-0123456789abcdef";
    let daemon =
        Daemon::start(&bin, Config::sqlite().env("ADUAN__SERVER__METRICS_TOKEN", metrics_token))
            .await;
    let http = client();
    let r = http.get(daemon.url("/login")).send().await.expect("GET /login");
    let h = r.headers().clone();
    let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]));
    assert_eq!(h.get("referrer-policy").map(|v| v.as_bytes()), Some(&b"same-origin"[..]));
    let html = r.text().await.unwrap_or_default();
    // Scripts only from /static (the live inbox's inbox.js), never inline.
    let html = html.replace(r#"<script src="/static/inbox.js" defer></script>"#, "");
    assert!(!html.contains("<style") && !html.contains("style=") && !html.contains("<script"));
    let css = get(&http, &daemon, "/static/aduan.css", None).await;
    assert_eq!(css.status, StatusCode::OK);

    assert_eq!(get(&http, &daemon, "/metrics", None).await.status, StatusCode::UNAUTHORIZED);
    let r = get(&http, &daemon, "/metrics", Some("wrong-token-wrong-token")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = get(&http, &daemon, "/metrics", Some(metrics_token)).await;
    assert_eq!(r.status, StatusCode::OK);

    let admin = daemon.apikey("ops", "admin");
    let out = daemon.site().cli(&["apikey", "create", "app:1", "--scope", "intake"]);
    assert!(!out.status.success(), "a key name with ':' was accepted");
    let r = send(
        http.post(daemon.url("/api/v1/keys"))
            .bearer_auth(&admin)
            .json(&json!({"name": "app:2", "scope": "intake"})),
    )
    .await
    .expect("POST /api/v1/keys");
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = send(
        http.post(daemon.url("/api/v1/keys"))
            .bearer_auth(&admin)
            .json(&json!({"name": "mobile", "scope": "read"})),
    )
    .await
    .expect("POST /api/v1/keys");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (id, key) = (r.body["id"].as_i64().unwrap(), r.body["token"].as_str().unwrap().to_owned());
    let r = get(&http, &daemon, "/api/v1/tickets", Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK);
    let resp = http
        .get(daemon.url("/api/v1/tickets"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("GET /api/v1/tickets");
    assert_eq!(resp.headers().get("cache-control").map(|v| v.as_bytes()), Some(&b"no-store"[..]));
    let r = send(http.post(daemon.url(&format!("/api/v1/keys/{id}/revoke"))).bearer_auth(&admin))
        .await
        .expect("revoke");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = get(&http, &daemon, "/api/v1/tickets", Some(&key)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a revoked key still works: {}", r.text);
}
