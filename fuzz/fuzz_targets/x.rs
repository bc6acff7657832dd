//! X (Account Activity API): `XWebhook::handle` on a POST whose
//! `x-twitter-webhooks-signature` is computed over the fuzzed body, so the parser behind the
//! check is reached; the body again as the query of the GET CRC check; and `x::parse`.
#![no_main]

use aduan_connector::{Rejection, Webhook};
use aduan_fuzz::{consume, request};
use aduan_social::sig::x_signature;
use aduan_social::x::{XWebhook, parse, unescape_html};
use libfuzzer_sys::fuzz_target;

const CONSUMER_SECRET: &str = "fuzz-consumer-secret";

fuzz_target!(|body: &[u8]| {
    if let Ok(parsed) = parse(body, chrono::Utc::now()) {
        std::hint::black_box(format!("{:?}", parsed.messages));
    }
    std::hint::black_box(unescape_html(&String::from_utf8_lossy(body)));
    let hook = XWebhook::new(CONSUMER_SECRET.into());
    let sig = x_signature(CONSUMER_SECRET.as_bytes(), body);
    let req =
        request(http::Method::POST, "x", None, &[("x-twitter-webhooks-signature", sig)], body);
    let reply = hook.handle(&req);
    assert!(
        !matches!(reply, Err(Rejection::Forbidden(_) | Rejection::Unauthenticated(_))),
        "a correctly signed body was refused"
    );
    consume(reply);

    let query = String::from_utf8_lossy(body);
    consume(hook.handle(&request(http::Method::GET, "x", Some(&query), &[], b"")));
});
