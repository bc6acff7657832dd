//! Twilio: `TwilioWebhook::handle` on a form POST whose `X-Twilio-Signature` is computed
//! over the URL and the fuzzed form's parameters (so the parser behind the check is
//! reached), on a signed GET carrying the input as its query, and `twilio::url_variants` on
//! the input as a URL.
#![no_main]

use aduan_connector::{Rejection, Webhook};
use aduan_fuzz::{consume, request};
use aduan_sms::twilio::{TwilioWebhook, signature, url_variants};
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "fuzz-auth-token";

/// The form's parameters as Twilio signs them: every `name=value` pair percent-decoded
/// (`+` is a space), in order, duplicates kept.
fn params(body: &[u8]) -> Vec<(String, String)> {
    let Ok(form) = std::str::from_utf8(body) else {
        return Vec::new();
    };
    let decode = |s: &str| {
        let spaced = s.replace('+', " ");
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(&spaced).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    form.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fuzz_target!(|body: &[u8]| {
    let hook = TwilioWebhook::new(TOKEN, None);

    let mut req = request(http::Method::POST, "twilio", None, &[], body);
    let sig = signature(TOKEN, &req.url, &params(body));
    req = request(http::Method::POST, "twilio", None, &[("x-twilio-signature", sig)], body);
    let reply = hook.handle(&req);
    assert!(
        !matches!(reply, Err(Rejection::Forbidden(_) | Rejection::Unauthenticated(_))),
        "a correctly signed form was refused"
    );
    consume(reply);

    let query = String::from_utf8_lossy(body).replace('#', "%23");
    let unsigned = request(http::Method::GET, "twilio", Some(&query), &[], b"");
    let sig = signature(TOKEN, &unsigned.url, &[]);
    let req =
        request(http::Method::GET, "twilio", Some(&query), &[("x-twilio-signature", sig)], b"");
    let reply = hook.handle(&req);
    assert!(
        !matches!(reply, Err(Rejection::Forbidden(_) | Rejection::Unauthenticated(_))),
        "a correctly signed GET was refused"
    );
    consume(reply);

    std::hint::black_box(url_variants(&String::from_utf8_lossy(body)));
});
