//! What survives the process dying: SIGKILL in the middle of a burst of posts loses no
//! acknowledged message and stores none twice; SIGTERM lets in-flight requests finish.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aduan_tests::{Binary, Config, Daemon, PgDatabase};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{
    all_ticket_codes, client, is_ticket_code, post_message, repeated, send, tickets,
};

/// Concurrent clients of the kill -9 burst.
const KILL_TASKS: usize = 32;
/// Acknowledged posts wanted before the kill.
const MIN_ACKED: usize = 300;
/// How long the burst runs at least before the kill.
const BURST: Duration = Duration::from_millis(1500);

/// What one post of a burst came to, as the client saw it.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// 201 with this ticket code: the daemon promised the message is stored.
    Acked(String),
    /// Sent, but no complete answer came back: stored or not, nobody was told.
    Unknown(String),
    /// The connection was refused: the request never reached the daemon.
    Refused,
    /// An answer that is not a fresh 201.
    Failed(String),
}

#[derive(Debug, Clone)]
struct Attempt {
    external_id: String,
    body: Value,
    outcome: Outcome,
}

/// The body of post `i` of client `task`: senders vary (account id, phone, email, none),
/// and the text carries the external id, so a stored message says which post it was.
fn burst_body(prefix: &str, task: usize, i: usize) -> Value {
    let id = format!("{prefix}-{task}-{i}");
    let text = format!("Lampu jalan mati di RT {task} [{id}]");
    match i % 4 {
        0 => json!({
            "external_id": id,
            "sender": {"name": format!("Warga {task}"), "id": format!("u-{task}")},
            "text": text,
        }),
        1 => json!({
            "external_id": id,
            "sender": {"phone": format!("+62812{task:04}{:04}", i % 10_000)},
            "text": text,
            "location": {"lat": -7.4246, "lon": 109.2396},
        }),
        2 => json!({
            "external_id": id,
            "sender": {"name": "Siti", "email": format!("warga{task}.{i}@example.id")},
            "text": text,
        }),
        _ => json!({"external_id": id, "text": text}),
    }
}

/// The external id a burst message's text carries.
fn id_in_text(text: &str) -> Option<&str> {
    let start = text.rfind('[')? + 1;
    let end = text[start..].find(']')? + start;
    Some(&text[start..end])
}

/// One client: posts fresh external ids one after another until `stop` is set or a post
/// does not come back as a fresh 201 (the daemon went away, or something failed).
async fn burst_client(
    http: reqwest::Client,
    url: String,
    token: String,
    prefix: &'static str,
    task: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let body = burst_body(prefix, task, i);
        let outcome = match send(http.post(&url).bearer_auth(&token).json(&body)).await {
            Err(e) if e.is_connect() => Outcome::Refused,
            Err(e) => Outcome::Unknown(format!("{e:?}")),
            Ok(r)
                if r.status == StatusCode::CREATED
                    && r.body["duplicate"] == false
                    && r.body["ticket"].as_str().is_some_and(is_ticket_code) =>
            {
                acked.fetch_add(1, Ordering::SeqCst);
                Outcome::Acked(r.body["ticket"].as_str().unwrap_or_default().to_owned())
            }
            Ok(r) => Outcome::Failed(format!("{}: {}", r.status, r.text)),
        };
        let done = !matches!(outcome, Outcome::Acked(_));
        attempts.push(Attempt {
            external_id: body["external_id"].as_str().unwrap_or_default().to_owned(),
            body,
            outcome,
        });
        if done {
            break;
        }
    }
    attempts
}

/// Re-posts every attempt's body, 16 at a time; answers in the same order.
async fn repost(
    http: &reqwest::Client,
    daemon: &Daemon,
    token: &str,
    attempts: &[&Attempt],
) -> Vec<crate::common::Reply> {
    futures::stream::iter(attempts.iter().map(|a| async move {
        post_message(http, daemon, token, &a.body)
            .await
            .unwrap_or_else(|e| panic!("re-posting {} after the restart: {e}", a.external_id))
    }))
    .buffered(16)
    .collect()
    .await
}

fn failures(attempts: &[Attempt]) -> Vec<String> {
    attempts
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Failed(why) => Some(format!("{}: {why}", a.external_id)),
            _ => None,
        })
        .collect()
}

async fn kill_9_scenario(bin: &Binary, config: Config, label: &str) {
    let mut daemon = Daemon::start(bin, config).await;
    let intake = daemon.apikey("burst-app", "intake");
    let read = daemon.apikey("burst-dashboard", "read");
    let http = client();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));

    let started = Instant::now();
    let clients: Vec<_> = (0..KILL_TASKS)
        .map(|task| {
            tokio::spawn(burst_client(
                http.clone(),
                daemon.url("/api/v1/messages"),
                intake.clone(),
                "kill",
                task,
                stop.clone(),
                acked.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(BURST).await;
    while acked.load(Ordering::SeqCst) < MIN_ACKED && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let still_posting = clients.iter().filter(|c| !c.is_finished()).count();
    // SIGKILL with the clients still posting: requests are in flight.
    daemon.kill9();
    let burst_time = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut attempts = Vec::new();
    for c in clients {
        attempts.extend(c.await.expect("a burst client panicked"));
    }

    let failed = failures(&attempts);
    assert!(
        failed.is_empty(),
        "[{label}] posts of fresh external ids were answered with something else than 201:\n{}",
        failed.join("\n")
    );
    assert_eq!(still_posting, KILL_TASKS, "[{label}] some clients had stopped before the kill");
    let acked: BTreeMap<&str, &str> = attempts
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Acked(code) => Some((a.external_id.as_str(), code.as_str())),
            _ => None,
        })
        .collect();
    let unknown: Vec<&Attempt> =
        attempts.iter().filter(|a| matches!(a.outcome, Outcome::Unknown(_))).collect();
    let refused = attempts.iter().filter(|a| a.outcome == Outcome::Refused).count();
    assert!(
        acked.len() >= MIN_ACKED,
        "[{label}] only {} posts were acknowledged in {burst_time:?}; the test needs {MIN_ACKED}",
        acked.len()
    );
    assert!(
        !unknown.is_empty(),
        "[{label}] no request was in flight when the daemon was killed ({} acked, {refused} \
         refused): the kill did not hit a burst",
        acked.len()
    );
    let acked_codes: BTreeSet<&str> = acked.values().copied().collect();
    assert_eq!(
        acked_codes.len(),
        acked.len(),
        "[{label}] two acknowledged posts got the same ticket"
    );

    daemon.restart().await;

    // What is stored: each ticket once, with one message, of a post that was sent.
    let listed = all_ticket_codes(&http, &daemon, &read).await;
    assert_eq!(repeated(&listed), Vec::<String>::new(), "[{label}] tickets listed twice");
    let views = tickets(&http, &daemon, &read, &listed).await;
    let sent: BTreeSet<&str> = attempts
        .iter()
        .filter(|a| a.outcome != Outcome::Refused)
        .map(|a| a.external_id.as_str())
        .collect();
    let mut stored: BTreeMap<String, String> = BTreeMap::new();
    for (code, view) in listed.iter().zip(&views) {
        // The resident's messages (the routing worker may have written to them meanwhile).
        let messages: Vec<Value> = view["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m["direction"] == "in")
            .collect();
        assert_eq!(
            messages.len(),
            1,
            "[{label}] ticket {code} has {} messages, not 1: {view}",
            messages.len()
        );
        let text = messages[0]["text"].as_str().unwrap_or_default();
        let id = id_in_text(text)
            .unwrap_or_else(|| panic!("[{label}] ticket {code} holds a stranger: {text:?}"));
        assert!(sent.contains(id), "[{label}] ticket {code} holds {id}, which was never sent");
        if let Some(other) = stored.insert(id.to_owned(), code.clone()) {
            panic!("[{label}] {id} is stored twice: in {other} and in {code}");
        }
    }
    let lost: Vec<&str> = acked.keys().filter(|id| !stored.contains_key(**id)).copied().collect();
    assert!(
        lost.is_empty(),
        "[{label}] {} acknowledged messages are gone after the kill: {lost:?}",
        lost.len()
    );
    for (id, code) in &acked {
        assert_eq!(stored[*id], *code, "[{label}] {id} was acknowledged with another ticket");
    }

    // Every acknowledged post, sent again, is recognised as the one already stored.
    let acked_attempts: Vec<&Attempt> =
        attempts.iter().filter(|a| matches!(a.outcome, Outcome::Acked(_))).collect();
    for (a, r) in acked_attempts.iter().zip(repost(&http, &daemon, &intake, &acked_attempts).await)
    {
        assert_eq!(
            (r.status, &r.body["duplicate"], &r.body["ticket"]),
            (StatusCode::OK, &json!(true), &json!(acked[a.external_id.as_str()])),
            "[{label}] re-posting acknowledged {}: {}",
            a.external_id,
            r.text
        );
    }

    // Posts whose fate the client never learnt: stored once (duplicate now) or not at all
    // (created now). Never an error.
    let mut recovered = 0;
    let mut created_now = 0;
    for (a, r) in unknown.iter().zip(repost(&http, &daemon, &intake, &unknown).await) {
        match (r.status, stored.get(&a.external_id)) {
            (StatusCode::OK, Some(code)) => {
                assert_eq!(r.body["duplicate"], true, "[{label}] {}: {}", a.external_id, r.text);
                assert_eq!(r.body["ticket"], code.as_str(), "[{label}] {}", a.external_id);
                recovered += 1;
            }
            (StatusCode::CREATED, None) => {
                assert_eq!(r.body["duplicate"], false, "[{label}] {}: {}", a.external_id, r.text);
                created_now += 1;
            }
            (status, stored) => panic!(
                "[{label}] re-posting in-flight {} (stored before: {stored:?}) answered \
                 {status}: {}",
                a.external_id, r.text
            ),
        }
    }
    assert_eq!(
        listed.len(),
        acked.len() + recovered,
        "[{label}] tickets after the restart vs. acknowledged + recovered posts"
    );
    let after = all_ticket_codes(&http, &daemon, &read).await;
    assert_eq!(
        after.len(),
        listed.len() + created_now,
        "[{label}] re-posting made another number of tickets than it said"
    );
    println!(
        "[{label}] kill -9 after {burst_time:?}: acked={} unknown={} recovered={recovered} \
         (stored, never acknowledged) lost_unacked={created_now} refused={refused}; \
         tickets after restart={}",
        acked.len(),
        unknown.len(),
        listed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_no_acknowledged_message_and_doubles_none() {
    let Some(bin) = Binary::locate() else { return };
    kill_9_scenario(&bin, Config::sqlite(), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_no_acknowledged_message_and_doubles_none_on_postgres() {
    let Some(bin) = Binary::locate() else { return };
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    kill_9_scenario(&bin, Config::postgres(db.url()), "postgres").await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let Some(bin) = Binary::locate() else { return };
    const GRACE_SECS: u64 = 10;
    let mut daemon = Daemon::start(&bin, Config::sqlite().shutdown_grace_secs(GRACE_SECS)).await;
    let intake = daemon.apikey("term-app", "intake");
    let read = daemon.apikey("term-dashboard", "read");
    let http = client();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..16)
        .map(|task| {
            tokio::spawn(burst_client(
                http.clone(),
                daemon.url("/api/v1/messages"),
                intake.clone(),
                "term",
                task,
                stop.clone(),
                acked.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    while acked.load(Ordering::SeqCst) < 50 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A request the daemon has begun to read when SIGTERM comes: the head and half the body.
    let slow_body = json!({
        "external_id": "term-slow",
        "sender": {"name": "Budi", "phone": "+6281298765432"},
        "text": "Pohon tumbang menutup jalan [term-slow]",
    })
    .to_string();
    let (first_half, second_half) = slow_body.split_at(slow_body.len() / 2);
    let mut slow =
        tokio::net::TcpStream::connect(daemon.addr()).await.expect("connect for the slow request");
    slow.write_all(
        format!(
            "POST /api/v1/messages HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {intake}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n\
             {first_half}",
            daemon.addr(),
            slow_body.len()
        )
        .as_bytes(),
    )
    .await
    .expect("send the first half of the slow request");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let acked_before = acked.load(Ordering::SeqCst);
    let still_posting = clients.iter().filter(|c| !c.is_finished()).count();

    daemon.send_sigterm();
    let signalled = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(status) = daemon.exited() {
        panic!(
            "aduan serve exited ({status}) within 0.5 s of SIGTERM although a request was still \
             being received; log:\n{}",
            daemon.log()
        );
    }
    // While it drains, the daemon takes no new connection: they are refused.
    let late =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(daemon.addr()))
            .await
            .expect("a connection attempt during shutdown hung");
    assert!(
        matches!(&late, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "a new connection during the shutdown was not refused: {late:?}"
    );
    slow.write_all(second_half.as_bytes()).await.expect("send the second half of the slow request");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut raw))
        .await
        .expect("no answer to the slow request within 10 s")
        .expect("read the answer to the slow request");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    assert!(
        raw.starts_with("HTTP/1.1 201"),
        "the request in flight at SIGTERM was not finished with 201:\n{raw}"
    );
    let slow_answer: Value = raw
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or_else(|| panic!("the answer to the slow request has no JSON body:\n{raw}"));
    let slow_code = slow_answer["ticket"].as_str().unwrap_or_default().to_owned();
    assert!(is_ticket_code(&slow_code), "{raw}");

    let status = daemon.wait_exit(Duration::from_secs(GRACE_SECS)).await.unwrap_or_else(|| {
        panic!(
            "aduan serve still ran {GRACE_SECS} s (its grace period) after SIGTERM; log:\n{}",
            daemon.log()
        )
    });
    let exit_time = signalled.elapsed();
    // The clients stop at their first post that is not a 201; give them a bound all the same.
    let mut attempts = Vec::new();
    for c in clients {
        let done = tokio::time::timeout(Duration::from_secs(30), c)
            .await
            .expect("a client still posts 30 s after the daemon exited");
        attempts.extend(done.expect("a burst client panicked"));
    }
    stop.store(true, Ordering::SeqCst);

    assert_eq!(
        status.code(),
        Some(0),
        "aduan serve exited with {status} after SIGTERM; log:\n{}",
        daemon.log()
    );
    assert_eq!(still_posting, 16, "some clients stopped before SIGTERM");
    let failed = failures(&attempts);
    assert!(
        failed.is_empty(),
        "requests answered with something else than 201 around SIGTERM:\n{}",
        failed.join("\n")
    );
    let acked_attempts: Vec<&Attempt> =
        attempts.iter().filter(|a| matches!(a.outcome, Outcome::Acked(_))).collect();
    let interrupted: Vec<&Attempt> =
        attempts.iter().filter(|a| matches!(a.outcome, Outcome::Unknown(_))).collect();
    let refused = attempts.iter().filter(|a| a.outcome == Outcome::Refused).count();
    assert!(acked_before >= 50, "only {acked_before} posts acknowledged before SIGTERM");
    println!(
        "[sigterm] exit 0 {exit_time:?} after SIGTERM: acked={} ({} after the signal was sent) \
         + 1 half-sent request finished, refused={refused} cut_off={}",
        acked_attempts.len(),
        acked_attempts.len() - acked_before,
        interrupted.len()
    );

    daemon.restart().await;
    let listed = all_ticket_codes(&http, &daemon, &read).await;
    assert_eq!(repeated(&listed), Vec::<String>::new(), "tickets listed twice");
    // Everything acknowledged is there, once.
    for (a, r) in acked_attempts.iter().zip(repost(&http, &daemon, &intake, &acked_attempts).await)
    {
        let Outcome::Acked(code) = &a.outcome else { unreachable!() };
        assert_eq!(
            (r.status, &r.body["duplicate"], &r.body["ticket"]),
            (StatusCode::OK, &json!(true), &json!(code)),
            "re-posting acknowledged {} after SIGTERM and restart: {}",
            a.external_id,
            r.text
        );
    }
    let again = send(
        http.post(daemon.url("/api/v1/messages"))
            .bearer_auth(&intake)
            .header("content-type", "application/json")
            .body(slow_body.clone()),
    )
    .await
    .expect("re-post the slow request");
    assert_eq!(
        (again.status, &again.body["duplicate"], &again.body["ticket"]),
        (StatusCode::OK, &json!(true), &json!(slow_code)),
        "the request finished during shutdown is not stored: {}",
        again.text
    );
    // A request cut off without an answer was not processed: graceful shutdown finishes
    // what it started, so nothing may have been stored for it.
    for (a, r) in interrupted.iter().zip(repost(&http, &daemon, &intake, &interrupted).await) {
        let Outcome::Unknown(error) = &a.outcome else { unreachable!() };
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{} got no answer before the daemon stopped ({error}), yet it was stored: {}",
            a.external_id,
            r.text
        );
    }
    assert_eq!(
        listed.len(),
        acked_attempts.len() + 1,
        "tickets after a graceful stop vs. acknowledged posts: a request was stored without \
         an answer, or an answer was given for nothing stored"
    );
}
