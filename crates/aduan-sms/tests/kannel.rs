//! End to end through a real Kannel (bearerbox + smsbox, fake SMSC) with fakesmsc as the
//! phone network, as `cargo xtask test` starts it (`xtask/src/kannel.rs`): an SMS typed
//! into fakesmsc reaches `/hooks/kannel` through smsbox, becomes a ticket, and the receipt
//! comes back to fakesmsc through `sendsms`.
//!
//! The scenarios run in one test, one after another: smsbox calls one address
//! (`ADUAN_TEST_KANNEL_MO_ADDR`), which only one server can hold.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aduan_core::{Actor, Direction, IdentityKind, Purpose};
use aduan_sms::testkit::{KannelPeer, Mt, parse_received};
use aduan_sms::{KannelConfig, split};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

fn received(out: &str) -> Vec<Mt> {
    parse_received(&std::fs::read_to_string(out).unwrap_or_default())
}

fn utf16(data: &[u8]) -> String {
    let units: Vec<u16> = data.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
    String::from_utf16_lossy(&units)
}

async fn wait_mts(out: &str, what: &str, pred: impl Fn(&[Mt]) -> bool) -> Vec<Mt> {
    for _ in 0..400 {
        let mts = received(out);
        if pred(&mts) {
            return mts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fakesmsc never received {what}; it got {:#?}", received(out));
}

/// In front of the real router: records every query smsbox sends, and can turn the
/// answer to the next successful call into a 503 (the message is stored, Kannel is told
/// otherwise and delivers it again).
#[derive(Clone)]
struct Front {
    app: Router,
    seen: Arc<Mutex<Vec<String>>>,
    fail_next: Arc<AtomicBool>,
    /// smsbox's calls of the dlr-url (delivery reports), kept apart from the inbound SMS.
    dlrs: Arc<Mutex<Vec<String>>>,
}

async fn front(State(f): State<Front>, req: Request<Body>) -> Response {
    if req.uri().path() == "/hooks/kannel-dlr" {
        f.dlrs.lock().unwrap().push(req.uri().query().unwrap_or("").to_owned());
        return f.app.clone().oneshot(req).await.unwrap();
    }
    f.seen.lock().unwrap().push(req.uri().query().unwrap_or("").to_owned());
    let resp = f.app.clone().oneshot(req).await.unwrap();
    if resp.status().is_success() && f.fail_next.swap(false, Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
    }
    resp
}

fn id_of(query: &str) -> Option<String> {
    query.split('&').find_map(|p| p.strip_prefix("id=")).map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_end_to_end_with_fakesmsc() {
    let Some(p) = KannelPeer::from_env() else { return };
    let env = common::env("http://127.0.0.1:8080", |cfg| {
        cfg.kannel = Some(KannelConfig {
            secret: p.secret.clone().into(),
            sendsms_url: p.sendsms_url.clone(),
            username: p.user.clone(),
            password: p.password.clone().into(),
            from: Some("1708".into()),
            per_second: 10,
            max_parts: aduan_sms::DEFAULT_MAX_PARTS,
            dlr_url: Some(format!("http://{}/hooks/kannel-dlr", p.mo_addr)),
        });
    })
    .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fail_next = Arc::new(AtomicBool::new(false));
    let dlrs = Arc::new(Mutex::new(Vec::new()));
    let front_app = Router::new().fallback(front).with_state(Front {
        app: env.app.clone(),
        seen: seen.clone(),
        fail_next: fail_next.clone(),
        dlrs: dlrs.clone(),
    });
    let listener = tokio::net::TcpListener::bind(&p.mo_addr).await.unwrap();
    let stop = env.shutdown.clone();
    tokio::spawn(async move {
        let _ =
            axum::serve(listener, front_app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });

    // 1. An SMS becomes one ticket with the phone as identity; the receipt reaches the phone.
    let before = received(&p.out).len();
    p.inject("+6281234567890", "Lampu jalan mati di Desa Kedungrandu");
    let tickets = env
        .wait_tickets(20, "the SMS as a ticket", |t| {
            t.iter().any(|t| t.messages.iter().any(|m| m.text.contains("Kedungrandu")))
        })
        .await;
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0];
    let code = t.summary.code.to_string();
    let inbound: Vec<_> = t.messages.iter().filter(|m| m.direction == Direction::In).collect();
    assert_eq!(inbound.len(), 1);
    assert_eq!(inbound[0].text, "Lampu jalan mati di Desa Kedungrandu");
    let ids = &t.reporter.as_ref().unwrap().identities;
    assert!(
        ids.iter().any(|i| i.kind == IdentityKind::Phone && i.value == "+6281234567890"),
        "{ids:?}"
    );
    let mts =
        wait_mts(&p.out, "the receipt", |m| m[before..].iter().any(|m| m.text.contains(&code)))
            .await;
    let ack: Vec<&Mt> = mts[before..].iter().filter(|m| m.text.contains(&code)).collect();
    assert_eq!(ack.len(), 1, "{ack:?}");
    assert_eq!((ack[0].from.as_str(), ack[0].to.as_str()), ("1708", "+6281234567890"));
    assert_eq!(ack[0].part, None, "the receipt is one SMS: {ack:?}");
    assert!(ack[0].text.starts_with("Aduan Anda diterima dengan kode"), "{ack:?}");
    env.wait_tickets(10, "the receipt recorded as sent", |t| {
        t[0].messages.iter().any(|m| {
            m.purpose == Some(Purpose::Ack) && m.delivery == Some(aduan_core::OutboxState::Sent)
        })
    })
    .await;
    // Kannel reports on the receipt at the dlr-url we gave (with the secret and the row):
    // bearerbox itself sends 8 (accepted by the SMSC) when fakesmsc takes the message, and
    // the fake SMSC then reports it delivered (1).
    let row = 1;
    for _ in 0..400 {
        let receipt = env.store.outbox_row(row).await.unwrap().unwrap().receipt;
        if receipt == Some(aduan_core::ReceiptStatus::Delivered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reports = dlrs.lock().unwrap().clone();
    eprintln!("delivery reports from Kannel: {reports:?}");
    for kind in [8, 1] {
        assert!(
            reports.iter().any(|q| q.contains(&format!("row={row}&type={kind}"))),
            "no DLR {kind} for row {row}: {reports:?}"
        );
    }
    let ack_row = env.store.outbox_row(row).await.unwrap().unwrap();
    assert_eq!(ack_row.provider_id, Some(format!("kannel:out-{row}")));
    assert_eq!(ack_row.receipt, Some(aduan_core::ReceiptStatus::Delivered), "{ack_row:?}");

    // 2. The same SMS delivered twice (Kannel retries after our 503, same %I): one message.
    fail_next.store(true, Ordering::SeqCst);
    let calls_before = seen.lock().unwrap().len();
    let before = received(&p.out).len();
    p.inject("+6285700000001", "Jembatan putus di Desa Kalisalak");
    let mut deliveries = Vec::new();
    for _ in 0..200 {
        deliveries = seen.lock().unwrap()[calls_before..].to_vec();
        if deliveries.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(deliveries.len(), 2, "Kannel delivered {deliveries:?}");
    assert_eq!(id_of(&deliveries[0]), id_of(&deliveries[1]));
    assert!(id_of(&deliveries[0]).is_some_and(|id| id.len() == 36), "{deliveries:?}");
    let tickets = env
        .wait_tickets(10, "the second SMS as a ticket", |t| {
            t.iter().any(|t| t.messages.iter().any(|m| m.text.contains("Kalisalak")))
        })
        .await;
    let t =
        tickets.iter().find(|t| t.messages.iter().any(|m| m.text.contains("Kalisalak"))).unwrap();
    let inbound = t.messages.iter().filter(|m| m.direction == Direction::In).count();
    assert_eq!(inbound, 1, "stored twice: {:#?}", t.messages);
    let code2 = t.summary.code.to_string();
    wait_mts(&p.out, "the second receipt", |m| m[before..].iter().any(|m| m.text.contains(&code2)))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acks = received(&p.out)[before..].iter().filter(|m| m.text.contains(&code2)).count();
    assert_eq!(acks, 1, "one receipt for one message");

    // 3. A long answer arrives split into concatenated parts, in order.
    let answer = "Terima kasih atas laporan Anda. Tim Dinas Pekerjaan Umum sudah meninjau lokasi \
        di Desa Kedungrandu dan lampu penerangan jalan akan diganti paling lambat hari Jumat. \
        Jika lampu masih mati setelah itu, balas pesan ini dengan menyebut kode tiket Anda \
        supaya petugas kami dapat menindaklanjutinya kembali.";
    let expected_parts = split::split(answer);
    assert_eq!(expected_parts.len(), 2);
    let before = received(&p.out).len();
    let replied = env
        .store
        .reply(t.summary.code, answer.to_owned(), Actor::User("operator@aduan.test".into()))
        .await
        .unwrap();
    assert_eq!(replied.channel, Some(aduan_core::Channel::Sms));
    let mts = wait_mts(&p.out, "both parts of the answer", |m| {
        m[before..].iter().filter(|m| m.to == "+6285700000001" && m.part.is_some()).count() >= 2
    })
    .await;
    let parts: Vec<&Mt> =
        mts[before..].iter().filter(|m| m.to == "+6285700000001" && m.part.is_some()).collect();
    let seqs: Vec<(u8, u8)> =
        parts.iter().map(|m| m.part.map(|(_, n, s)| (n, s)).unwrap()).collect();
    assert_eq!(seqs, vec![(2, 1), (2, 2)], "parts out of order: {parts:#?}");
    assert_eq!(parts[0].part.unwrap().0, parts[1].part.unwrap().0, "one reference");
    let texts: Vec<&str> = parts.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, expected_parts, "Kannel split where we count");

    // 4. An answer outside the GSM alphabet goes as UCS-2: 67 characters per part.
    let answer = "Mohon maaf atas keterlambatan “perbaikan” lampu di Desa Kalisalak; \
        teknisi kami datang besok pagi.";
    assert_eq!(split::coding_of(answer), split::Coding::Ucs2);
    let expected_parts = split::split(answer);
    assert_eq!(expected_parts.len(), 2);
    let before = received(&p.out).len();
    env.store
        .reply(t.summary.code, answer.to_owned(), Actor::User("operator@aduan.test".into()))
        .await
        .unwrap();
    let mts = wait_mts(&p.out, "both UCS-2 parts", |m| {
        m[before..].iter().filter(|m| m.part.is_some()).count() >= 2
    })
    .await;
    let parts: Vec<&Mt> = mts[before..].iter().filter(|m| m.part.is_some()).collect();
    assert_eq!(parts.iter().map(|m| m.part.unwrap().2).collect::<Vec<_>>(), vec![1, 2]);
    let texts: Vec<String> = parts.iter().map(|m| utf16(&m.data)).collect();
    assert_eq!(texts, expected_parts, "UCS-2 parts as we count them");

    let view = env.store.ticket(t.summary.code).await.unwrap().unwrap();
    let out: Vec<_> = view.messages.iter().filter(|m| m.direction == Direction::Out).collect();
    assert_eq!(out.iter().filter(|m| m.purpose == Some(Purpose::Reply)).count(), 2);
}
