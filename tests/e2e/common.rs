//! HTTP helpers shared by the scenarios.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aduan_tests::Daemon;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

/// A client for the scenarios: no retries of its own, a generous timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client")
}

/// Whether `code` looks like `^ADU-[0-9A-HJKMNP-TV-Z]{8}$` (Crockford base32).
pub fn is_ticket_code(code: &str) -> bool {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    code.len() == 12 && code.starts_with("ADU-") && code[4..].chars().all(|c| ALPHABET.contains(c))
}

/// A response read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

/// Sends a request and reads the whole answer; transport errors are errors.
pub async fn send(req: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Reply { status, body, text })
}

/// `POST /api/v1/messages`.
pub async fn post_message(
    http: &reqwest::Client,
    daemon: &Daemon,
    token: &str,
    body: &Value,
) -> Result<Reply, reqwest::Error> {
    send(http.post(daemon.url("/api/v1/messages")).bearer_auth(token).json(body)).await
}

/// `GET path`, which must get an answer.
pub async fn get(
    http: &reqwest::Client,
    daemon: &Daemon,
    path: &str,
    token: Option<&str>,
) -> Reply {
    let mut req = http.get(daemon.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    send(req).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Every ticket code of `GET /api/v1/tickets`, paging through with the cursor (limit 200),
/// in the order listed.
pub async fn all_ticket_codes(http: &reqwest::Client, daemon: &Daemon, token: &str) -> Vec<String> {
    let mut codes = Vec::new();
    let mut cursor: Option<String> = None;
    for _page in 0..10_000 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/tickets?limit=200&cursor={c}"),
            None => "/api/v1/tickets?limit=200".to_owned(),
        };
        let r = get(http, daemon, &path, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
        let items = r.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {path}: no items: {}", r.text));
        assert!(items.len() <= 200, "GET {path}: more than the limit");
        for item in items {
            let code = item["code"]
                .as_str()
                .unwrap_or_else(|| panic!("a listed ticket without a code: {item}"));
            codes.push(code.to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(next) => {
                assert!(!items.is_empty(), "GET {path}: an empty page with a next cursor");
                cursor = Some(next.to_owned());
            }
            None => return codes,
        }
    }
    panic!("GET /api/v1/tickets never ended");
}

/// `GET /api/v1/tickets/{code}` for many codes, 16 at a time; answers in the codes' order.
pub async fn tickets(
    http: &reqwest::Client,
    daemon: &Daemon,
    token: &str,
    codes: &[String],
) -> Vec<Value> {
    futures::stream::iter(codes.iter().map(|code| async move {
        let path = format!("/api/v1/tickets/{code}");
        let r = get(http, daemon, &path, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
        r.body
    }))
    .buffered(16)
    .collect()
    .await
}

/// The value of one sample line of `GET /metrics`, e.g.
/// `aduan_messages_received_total{channel="web"}`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// Codes listed more than once.
pub fn repeated(codes: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    codes.iter().filter(|c| !seen.insert(c.as_str())).cloned().collect()
}

/// Polls `check` every 50 ms until it gives a value; after `timeout` it panics naming `what`,
/// with the tail of the daemon's log.
pub async fn eventually<T>(
    what: &str,
    daemon: &Daemon,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; log:\n{}",
            aduan_tests::tail(&daemon.log(), 80)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /api/v1/tickets/{code}`, which must answer 200.
pub async fn ticket(http: &reqwest::Client, daemon: &Daemon, token: &str, code: &str) -> Value {
    let t = get(http, daemon, &format!("/api/v1/tickets/{code}"), Some(token)).await;
    assert_eq!(t.status, StatusCode::OK, "GET ticket {code}: {}", t.text);
    t.body
}

/// Polls the ticket until `done` holds, for at most `timeout`.
pub async fn ticket_until(
    http: &reqwest::Client,
    daemon: &Daemon,
    token: &str,
    code: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, daemon, timeout, async || {
        let t = ticket(http, daemon, token, code).await;
        done(&t).then_some(t)
    })
    .await
}

/// The shipped OPD registry (`config/opd.toml`) with DPU's officials replaced by `official`,
/// written into a temp dir that lives as long as the returned guard.
pub fn registry_with_dpu_official(official: &str) -> (tempfile::TempDir, PathBuf) {
    let site = tempfile::tempdir().expect("temp dir");
    let registry =
        std::fs::read_to_string(aduan_tests::opd_file()).expect("the OPD registry").replace(
            "emails = [\"pengaduan.dpu@example.go.id\"]",
            &format!("emails = [\"{official}\"]"),
        );
    assert!(registry.contains(official), "the DPU entry of config/opd.toml changed");
    let path = site.path().join("opd.toml");
    std::fs::write(&path, registry).expect("write the registry");
    (site, path)
}
