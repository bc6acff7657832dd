//! Plain data exchanged between the store and the connectors: an outbox row claimed by a
//! sender, a provider's delivery receipt, an attachment still at the provider. They live here,
//! not in `aduan-store`, so pure modules (parsers, composers) and fuzz targets can use them
//! without pulling in a database crate; `aduan_store` re-exports them.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Channel, Identity, Purpose, TicketCode};

/// An outbox row claimed by a sender.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub ticket: TicketCode,
    pub channel: Channel,
    pub recipient: Identity,
    pub text: String,
    pub purpose: Purpose,
    /// Attempts including this one.
    pub attempts: i64,
    /// Provider ids of the ticket's messages, newest first, for threading the answer.
    pub thread_refs: Vec<String>,
}

/// What a provider reports about a message we sent (WhatsApp `statuses[]`, Messenger
/// `delivery`). Receipts only move forward: `sent` → `delivered` → `read`; `failed` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Sent => "sent",
            ReceiptStatus::Delivered => "delivered",
            ReceiptStatus::Read => "read",
            ReceiptStatus::Failed => "failed",
        }
    }
}

impl FromStr for ReceiptStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sent" => Ok(ReceiptStatus::Sent),
            "delivered" => Ok(ReceiptStatus::Delivered),
            "read" => Ok(ReceiptStatus::Read),
            "failed" => Ok(ReceiptStatus::Failed),
            _ => Err(format!("unknown receipt status {s:?}")),
        }
    }
}

/// A delivery receipt for one outbound message, identified by the provider's message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    pub channel: Channel,
    pub provider_id: String,
    pub status: ReceiptStatus,
    pub at: DateTime<Utc>,
    /// The provider's reason for a failure (error code and title; never message text).
    pub error: Option<String>,
}

/// An attachment known only by a provider handle (a media id, a CDN URL), waiting to be
/// fetched into the attachment store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfetchedAttachment {
    pub id: i64,
    pub channel: Channel,
    pub provider_ref: String,
    pub content_type: String,
    /// Failed attempts so far.
    pub attempts: i64,
}

// --- receipts: receipts by outbox row, the delivery shown per outbound message ---
//
// Twilio's `StatusCallback` and Kannel's `dlr-url` are URLs we hand the provider with each
// send, so they name the outbox row (`?row=ID`): a receipt that outruns the send call's
// answer (Kannel's "accepted by SMSC" report often does) still finds its row. Every
// outbound message shows one [`DeliveryView`]: the newest receipt when there is one, else
// what the outbox knows (`pending`, `sending`, `sent`, `failed` for a row given up,
// `published` for an answer on the tracking page only).

/// A receipt as a provider's callback delivered it, with the outbox row its URL named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackReceipt {
    /// The outbox row named by the callback URL; `None`: matched by provider id only.
    pub outbox_id: Option<i64>,
    pub receipt: DeliveryReceipt,
}

/// How an outbound message fared, as the ticket JSON and page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryView {
    /// `sent`, `delivered`, `read`, `failed` (a receipt or a given-up row), or the outbox
    /// state while there is no receipt (`pending`, `sending`, `published`, …).
    pub status: &'static str,
    /// When that status was reported (the receipt's time, else the time it was sent).
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub at: Option<DateTime<Utc>>,
    /// Why it failed (the provider's code and title, a bounce's reason); only on `failed`.
    pub error: Option<String>,
}

impl DeliveryView {
    /// The view of an outbox row: `receipt` wins over `state` (receipts only move forward,
    /// `failed` is final); a row given up (`dead`) is `failed` with its last error.
    pub fn of(
        state: crate::OutboxState,
        receipt: Option<ReceiptStatus>,
        receipt_at: Option<DateTime<Utc>>,
        sent_at: Option<DateTime<Utc>>,
        last_error: Option<String>,
    ) -> DeliveryView {
        let status = match (receipt, state) {
            (Some(r), _) => r.as_str(),
            (None, crate::OutboxState::Dead) => ReceiptStatus::Failed.as_str(),
            (None, s) => s.as_str(),
        };
        let failed = status == ReceiptStatus::Failed.as_str();
        let at = match receipt {
            Some(_) => receipt_at.or(sent_at),
            None => sent_at.filter(|_| status == ReceiptStatus::Sent.as_str()),
        };
        DeliveryView { status, at, error: last_error.filter(|_| failed) }
    }
}

#[cfg(test)]
mod receipt_tests {
    use super::*;
    use crate::OutboxState;

    #[test]
    fn a_receipt_wins_over_the_outbox_state_and_failures_carry_their_reason() {
        let t = Utc::now();
        let v = DeliveryView::of(OutboxState::Sent, Some(ReceiptStatus::Read), Some(t), None, None);
        assert_eq!((v.status, v.at, v.error), ("read", Some(t), None));
        let v = DeliveryView::of(OutboxState::Sent, None, None, Some(t), None);
        assert_eq!((v.status, v.at), ("sent", Some(t)));
        let v = DeliveryView::of(OutboxState::Pending, None, None, None, Some("HTTP 502".into()));
        assert_eq!((v.status, v.at, v.error), ("pending", None, None));
        // A bounce: receipt failed without a time; the reason is shown.
        let v = DeliveryView::of(
            OutboxState::Dead,
            Some(ReceiptStatus::Failed),
            None,
            Some(t),
            Some("550 5.1.1 user unknown".into()),
        );
        assert_eq!(
            (v.status, v.at, v.error.as_deref()),
            ("failed", Some(t), Some("550 5.1.1 user unknown"))
        );
        let v = DeliveryView::of(OutboxState::Dead, None, None, None, Some("HTTP 400".into()));
        assert_eq!((v.status, v.error.as_deref()), ("failed", Some("HTTP 400")));
        let v = DeliveryView::of(OutboxState::Published, None, None, None, None);
        assert_eq!(v.status, "published");
    }
}
