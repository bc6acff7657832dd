//! Helpers shared by the fuzz targets: building the `WebhookRequest` a provider would send,
//! and reading what a handler answered. A handler's `Err` is an answer (a 4xx), never a
//! finding: only panics, hangs and running out of memory are.

use aduan_connector::{Rejection, WebhookReply, WebhookRequest};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// The public URL the daemon is configured with (`[server] public_url`).
pub const PUBLIC_URL: &str = "https://aduan.example.go.id";

/// A request to `/hooks/{path}` with `headers` (values that are not valid header values are
/// left out, as no HTTP server would pass them on).
pub fn request(
    method: Method,
    path: &str,
    query: Option<&str>,
    headers: &[(&'static str, String)],
    body: &[u8],
) -> WebhookRequest {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            map.append(HeaderName::from_static(name), v);
        }
    }
    let url = match query {
        Some(q) => format!("{PUBLIC_URL}/hooks/{path}?{q}"),
        None => format!("{PUBLIC_URL}/hooks/{path}"),
    };
    WebhookRequest {
        method,
        query: query.map(str::to_owned),
        headers: map,
        body: Bytes::copy_from_slice(body),
        url,
    }
}

/// Touches everything an accepted reply carries, as the server does when it stores the
/// messages (so lazily wrong values would show), and checks the invariants every webhook
/// promises: a stored message has a provider id and a channel.
pub fn consume(reply: Result<WebhookReply, Rejection>) {
    match reply {
        Ok(WebhookReply::Store { messages, body }) => {
            for m in messages {
                assert!(!m.provider_id.is_empty(), "a stored message without a provider id");
                std::hint::black_box(format!("{m:?}"));
            }
            std::hint::black_box(body);
        }
        Ok(WebhookReply::Respond { status, body }) => {
            std::hint::black_box((status, body));
        }
        Ok(WebhookReply::Receipts { receipts, body }) => {
            for r in receipts {
                assert!(!r.receipt.provider_id.is_empty(), "a receipt without a provider id");
                std::hint::black_box(format!("{r:?}"));
            }
            std::hint::black_box(body);
        }
        Err(rejection) => {
            // Rejections are rendered into the 4xx answer and counted.
            std::hint::black_box(rejection.to_string());
        }
    }
}
