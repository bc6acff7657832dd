//! Mounts every connector's webhook at `/hooks/{path}`. The connector checks and parses; this
//! module stores what it returns and only then answers the provider, so a 2xx always means
//! the messages are durable.
//!
//! A connector's [`Webhook::precheck`] (a secret in the query or a header) runs before the
//! body is read, so a forged request is refused before its body reaches the in-flight budget.

use std::sync::Arc;

use aduan_connector::{Webhook, WebhookReply, WebhookRequest};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn router(webhooks: Vec<Arc<dyn Webhook>>) -> Router<AppState> {
    let mut router = Router::new();
    for hook in webhooks {
        let path = format!("/hooks/{}", hook.path());
        router = router.route(&path, any(handle).layer(Extension(hook)));
    }
    router
}

async fn handle(
    State(state): State<AppState>,
    Extension(hook): Extension<Arc<dyn Webhook>>,
    req: Request,
) -> Response {
    let channel = hook.channel();
    let (parts, body) = req.into_parts();
    let (method, uri, headers): (Method, Uri, HeaderMap) =
        (parts.method.clone(), parts.uri.clone(), parts.headers.clone());
    let url = match uri.query() {
        Some(q) => format!("{}{}?{q}", state.config.public_url, uri.path()),
        None => format!("{}{}", state.config.public_url, uri.path()),
    };
    let head = WebhookRequest {
        method: method.clone(),
        query: uri.query().map(str::to_owned),
        headers: headers.clone(),
        body: Bytes::new(),
        url: url.clone(),
    };
    if let Err(rejection) = hook.precheck(&head) {
        state.telemetry.webhook_rejected(channel, rejection.reason());
        return ApiError::from(rejection).into_response();
    }
    let body = Bytes::from_request(Request::from_parts(parts, body), &state).await;
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let reason = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "unreadable"
            };
            state.telemetry.webhook_rejected(channel, reason);
            return if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(state.config.max_json_bytes).into_response()
            } else {
                ApiError::malformed("the body could not be read").into_response()
            };
        }
    };
    if method != Method::GET && method != Method::POST {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET or POST",
        )
        .into_response();
    }
    let req = WebhookRequest { method, query: uri.query().map(str::to_owned), headers, body, url };
    match hook.handle(&req) {
        Err(rejection) => {
            state.telemetry.webhook_rejected(channel, rejection.reason());
            ApiError::from(rejection).into_response()
        }
        Ok(WebhookReply::Respond { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (status, [(header::CONTENT_TYPE, body.content_type)], body.bytes).into_response()
        }
        Ok(WebhookReply::Receipts { receipts, body }) => {
            let total = receipts.len();
            let failed = receipts
                .iter()
                .filter(|r| r.receipt.status == aduan_core::ReceiptStatus::Failed)
                .count();
            // Not acknowledged on failure: a provider that retries delivers it again, and
            // applying a receipt twice changes nothing.
            match state.store.outbox_callback_receipts(receipts).await {
                Ok(found) => {
                    let matched = found.iter().filter(|f| **f).count();
                    state.telemetry.receipts_applied(channel, total, matched, failed);
                }
                Err(e) => return ApiError::from(e).into_response(),
            }
            match body {
                Some(b) => (StatusCode::OK, [(header::CONTENT_TYPE, b.content_type)], b.bytes)
                    .into_response(),
                None => StatusCode::OK.into_response(),
            }
        }
        Ok(WebhookReply::Store { messages, body }) => {
            // One transaction for the provider's whole batch: stored together or not at all.
            // Not acknowledged on failure: the provider delivers again and what was stored
            // is recognised then.
            let channels: Vec<_> = messages.iter().map(|m| m.channel).collect();
            match state.store.ingest_all(messages).await {
                Ok(outcomes) => {
                    for (channel, outcome) in channels.into_iter().zip(&outcomes) {
                        state.telemetry.message_stored(channel, outcome);
                    }
                }
                Err(e) => return ApiError::from(e).into_response(),
            }
            match body {
                Some(b) => (StatusCode::OK, [(header::CONTENT_TYPE, b.content_type)], b.bytes)
                    .into_response(),
                None => StatusCode::OK.into_response(),
            }
        }
    }
}
