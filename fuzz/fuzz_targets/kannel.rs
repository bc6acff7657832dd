//! Kannel smsbox: `KannelWebhook::handle` with the right `secret`, for the `get-url` form
//! (everything in the query) and the `post-url` form (text in the body, the rest in the
//! query and `X-Kannel-*` headers). The input's first line is the query after the secret,
//! the rest is the POST body; `kannel::decode_text` is also run on the body under each
//! charset smsbox may name.
#![no_main]

use aduan_connector::{Rejection, Webhook};
use aduan_fuzz::{consume, request};
use aduan_sms::kannel::{KannelWebhook, decode_text};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-kannel-secret";

fuzz_target!(|input: &[u8]| {
    let (head, body) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &b""[..]),
    };
    let head = String::from_utf8_lossy(head).replace('#', "%23");
    let query = format!("secret={SECRET}&{head}");
    let hook = KannelWebhook::new(SECRET);
    let authorised = |reply: &Result<_, Rejection>| {
        assert!(
            !matches!(reply, Err(Rejection::Forbidden(_) | Rejection::Unauthenticated(_))),
            "the right secret was refused"
        );
    };

    let reply = hook.handle(&request(http::Method::GET, "kannel", Some(&query), &[], b""));
    authorised(&reply);
    consume(reply);

    let len = body.len().to_string();
    let reply = hook.handle(&request(
        http::Method::POST,
        "kannel",
        Some(&query),
        &[("content-length", len)],
        body,
    ));
    authorised(&reply);
    consume(reply);

    let headers = [
        ("content-type", "text/plain; charset=\"UTF-16BE\"".to_owned()),
        ("x-kannel-from", "+6281234567890".to_owned()),
        ("x-kannel-coding", "2".to_owned()),
        ("x-kannel-time", head.chars().take(40).collect()),
    ];
    let reply = hook.handle(&request(http::Method::POST, "kannel", Some(&query), &headers, body));
    authorised(&reply);
    consume(reply);

    for (charset, coding) in
        [(None, None), (None, Some("2")), (Some("UTF-16BE"), None), (Some("ISO-8859-1"), Some("0"))]
    {
        std::hint::black_box(decode_text(body, charset, coding));
    }
});
