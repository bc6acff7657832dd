//! Meta (WhatsApp Cloud API, Messenger, Instagram): `MetaWebhook::handle` on a POST whose
//! `X-Hub-Signature-256` is computed over the fuzzed body, so the parser behind the check is
//! reached; the body again as the query of the GET subscription handshake; and
//! `meta::parse` directly.
#![no_main]

use aduan_connector::{Rejection, Webhook};
use aduan_fuzz::{consume, request};
use aduan_social::meta::{MetaWebhook, parse};
use aduan_social::sig::meta_signature;
use libfuzzer_sys::fuzz_target;

const APP_SECRET: &str = "fuzz-app-secret";

fuzz_target!(|body: &[u8]| {
    if let Ok(parsed) = parse(body, chrono::Utc::now()) {
        std::hint::black_box(format!("{:?} {:?}", parsed.messages, parsed.receipts));
    }
    // Receipts go to a small queue nobody drains: a full queue must not matter.
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let hook = MetaWebhook::new(APP_SECRET.into(), "fuzz-verify".into(), Some(tx));
    let sig = meta_signature(APP_SECRET.as_bytes(), body);
    let req = request(http::Method::POST, "meta", None, &[("x-hub-signature-256", sig)], body);
    let reply = hook.handle(&req);
    assert!(
        !matches!(reply, Err(Rejection::Forbidden(_) | Rejection::Unauthenticated(_))),
        "a correctly signed body was refused"
    );
    consume(reply);

    let query = String::from_utf8_lossy(body);
    consume(hook.handle(&request(http::Method::GET, "meta", Some(&query), &[], b"")));
});
