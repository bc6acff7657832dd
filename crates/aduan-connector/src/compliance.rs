//! The compliance kit: checks every webhook connector must pass. Channel crates call these
//! from their tests with real provider payloads.

use crate::{Rejection, Webhook, WebhookReply, WebhookRequest};

/// Asserts the contract of a webhook for one genuine request and one forged copy of it:
///
/// - the genuine request yields at least one message, each on a channel and with a
///   non-empty provider id, and handling it twice yields the same ids (so redeliveries are
///   recognised);
/// - the forged request is refused as unauthenticated or forbidden;
/// - the genuine request cut short, emptied or replaced by junk is refused without a panic.
pub fn assert_webhook_contract(
    hook: &dyn Webhook,
    genuine: &WebhookRequest,
    forged: &WebhookRequest,
) {
    let ids = |req: &WebhookRequest| -> Vec<String> {
        match hook.handle(req) {
            Ok(WebhookReply::Store { messages, .. }) => {
                assert!(
                    !messages.is_empty(),
                    "{}: a genuine request produced no message",
                    hook.path()
                );
                for m in &messages {
                    assert!(
                        !m.provider_id.is_empty(),
                        "{}: message without provider id",
                        hook.path()
                    );
                }
                messages.into_iter().map(|m| m.provider_id).collect()
            }
            other => panic!("{}: genuine request not stored: {other:?}", hook.path()),
        }
    };
    let first = ids(genuine);
    assert_eq!(first, ids(genuine), "{}: provider ids differ between deliveries", hook.path());

    match hook.handle(forged) {
        Err(Rejection::Unauthenticated(_) | Rejection::Forbidden(_)) => {}
        other => panic!("{}: forged request not refused: {other:?}", hook.path()),
    }

    let mut junk = Vec::new();
    let body = &genuine.body;
    for cut in [0, 1, body.len() / 2, body.len().saturating_sub(1)] {
        junk.push(body.slice(..cut.min(body.len())));
    }
    junk.push(bytes::Bytes::from_static(b"{"));
    junk.push(bytes::Bytes::from_static(b"\xff\xfe\x00garbage"));
    for b in junk {
        if b == *body {
            continue;
        }
        let req = WebhookRequest { body: b.clone(), ..genuine.clone() };
        assert!(
            hook.handle(&req).is_err(),
            "{}: a damaged body ({} bytes) was accepted",
            hook.path(),
            b.len()
        );
    }
}
