//! Telegram: `parse_update` (the webhook body, one element of a `getUpdates` answer) with
//! and without groups allowed, and `TelegramWebhook::handle` with the right secret header so
//! every body reaches the parser behind the check.
#![no_main]

use aduan_fuzz::{consume, request};
use aduan_telegram::webhook::SECRET_HEADER;
use aduan_telegram::{ParseOptions, TelegramWebhook, parse_update};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-token";

fuzz_target!(|body: &[u8]| {
    for allow_groups in [false, true] {
        if let Ok(parsed) = parse_update(body, ParseOptions { allow_groups }) {
            std::hint::black_box(format!("{parsed:?}"));
        }
    }
    // The command queue is full at once: the handler must cope (it logs and goes on).
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let hook = TelegramWebhook::new(SECRET, ParseOptions { allow_groups: true }, tx);
    let req =
        request(http::Method::POST, "telegram", None, &[(SECRET_HEADER, SECRET.into())], body);
    let reply = aduan_connector::Webhook::handle(&hook, &req);
    assert!(
        !matches!(
            reply,
            Err(aduan_connector::Rejection::Forbidden(_)
                | aduan_connector::Rejection::Unauthenticated(_))
        ),
        "the right secret was refused"
    );
    consume(reply);
});
