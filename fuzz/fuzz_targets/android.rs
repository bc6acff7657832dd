//! SMS Gateway for Android: `AndroidWebhook::handle` on a JSON body signed as the app signs
//! it (`X-Signature` = hex HMAC-SHA256 of body + `X-Timestamp`, with a fresh timestamp), so
//! the parser behind the check is reached; and `android::parse` directly.
#![no_main]

use aduan_connector::{Rejection, Webhook};
use aduan_fuzz::{consume, request};
use aduan_sms::android::{AndroidWebhook, parse, signature};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "fuzz-signing-key";

fuzz_target!(|body: &[u8]| {
    consume(parse(body).map(|m| aduan_connector::WebhookReply::Store {
        messages: m.into_iter().collect(),
        body: None,
    }));
    let hook = AndroidWebhook::new(KEY);
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = signature(KEY, body, &ts);
    let req = request(
        http::Method::POST,
        "android-sms",
        None,
        &[("x-signature", sig), ("x-timestamp", ts)],
        body,
    );
    let reply = hook.handle(&req);
    assert!(
        !matches!(reply, Err(Rejection::Forbidden(_) | Rejection::Unauthenticated(_))),
        "a correctly signed body was refused"
    );
    consume(reply);
});
